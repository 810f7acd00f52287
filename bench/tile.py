"""Benchmark of the whole simulated path: host driver -> compiled harness -> Verilator tile, on trained
digits models.

``python bench/tile.py`` writes ``bench/results/tile.{json,md}`` (``--cases binary ...``: only those models'
cases, printed and not written). For each model (trained or reused from
``build/models`` as ``make demo`` does) and tile geometry it measures, in one run:

- the Verilator build of the tile's harness, timed in an empty cache (a temporary ``LOWBIT_CACHE_DIR``,
  unless ``--keep-cache``), and the same call again as a second working directory makes it (the Verilog
  elaborated again, the build reused);
- the simulation speed of the whole path: simulated cycles per wall-clock second and images per second
  of the driver's session (packing, the harness, the checks of the responses; the build and a warm-up
  run are not timed);
- per layer, at batch 16 and at the whole test split (360): the MAC array's utilization, useful MACs
  (``in * out * planes``, the planes of a bit-serial layer included) over ``PE * SIMD * cycles of the RUN
  command``, and its two factors: busy cycles / RUN cycles and lane occupancy (useful / (PE*SIMD*busy));
- the share of the stream's words that carry payload while streaming weights and inputs (LOAD_WEIGHTS
  and RUN: payload words over payload + header words), and the share of those payload bits that carry
  information (weight bits x weights, input bits x inputs) rather than padding or the popcount tile's
  non-zero plane.

Targets: utilization >= 80 % on the hidden layers at batch >= 16; payload share >= 90 %.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from readme import update_section

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"

#: (scheme, PE, SIMD); None = the default array of the family.
CASES = [
    ("binary", 8, 16),
    ("binary", 16, 64),
    ("nhot2", 8, 16),
    ("nhot2", 16, 64),
    ("fatnn", None, None),
    ("twn", None, None),
]


def layer_figures(model, geometry, configs, result):
    rows = []
    for index, (layer, config, figures) in enumerate(zip(model.layers, configs, result["layers"])):
        batch = sum(r["batch"] for r in figures["runs"])
        planes = geometry.planes(config)
        useful = batch * config.in_features * config.out_features * planes
        cycles, busy = figures["run_cycles"], figures["busy_cycles"]
        lanes = geometry.pe * geometry.simd
        rows.append(
            {
                "layer": index,
                "shape": f"{config.in_features}x{config.out_features}",
                "kind": f"{layer.input_kind}{config.input_bits if layer.input_kind == 'uint' else ''} x "
                f"{layer.weight_kind}",
                "planes": planes,
                "hidden": 0 < index < len(configs) - 1,
                "batch": batch,
                "run_cycles": cycles,
                "busy_cycles": busy,
                "busy_share": busy / cycles,
                "lane_occupancy": useful / (lanes * busy),
                "utilization": useful / (lanes * cycles),
            }
        )
    return rows


def stream_figures(model, geometry, configs, result, images):
    sent = result["stream"]["sent"]
    words = {k: sent[k]["payload"] for k in ("LOAD_WEIGHTS", "RUN")}
    headers = {k: sent[k]["header"] for k in ("LOAD_WEIGHTS", "RUN")}
    info_bits = sum(layer.in_features * layer.out_features * layer.weight_bits for layer in model.layers)
    info_bits += images * sum(
        c.in_features * (c.input_bits if c.input_kind.name == "UINT" else {"BINARY": 1}.get(c.input_kind.name, 2))
        for c in configs
    )
    payload = sum(words.values())
    return {
        "payload_words": payload,
        "header_words": sum(headers.values()),
        "payload_share": payload / (payload + sum(headers.values())),
        "information_share": info_bits / (32 * payload),
    }


def run_case(scheme, pe, simd, progress):
    from lowbit.sim.tile_transport import _tile_verilog, run_model_on_tile, tile_library
    from lowbit.sw.cli.demo import cached_model
    from lowbit.sw.golden import GoldenNetwork
    from lowbit.sw.host import default_geometry, tile_layers
    from lowbit.sw.model.file import load_model
    from lowbit.sw.train.data import load_digits_split

    path = cached_model(scheme, progress=progress)
    model = load_model(path)
    geometry = default_geometry(model, pe, simd)
    configs = tile_layers(model, geometry)
    pixels = load_digits_split().x_test
    golden = GoldenNetwork(model).run(pixels)
    label = f"{scheme} PE={geometry.pe} SIMD={geometry.simd}"
    print(f"{label}: building and warming up ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    library = tile_library(geometry)
    build_seconds = time.perf_counter() - started
    _tile_verilog.cache_clear()  # as in another process: the Verilog elaborated again, the build reused
    started = time.perf_counter()
    assert tile_library(geometry) == library
    reuse_seconds = time.perf_counter() - started
    run_model_on_tile(path, pixels[:4], geometry)
    entry = {
        "scheme": scheme,
        "pe": geometry.pe,
        "simd": geometry.simd,
        "verilog_bytes": (library.parent / "tile.v").stat().st_size,
        "build_seconds": build_seconds,
        "reuse_seconds": reuse_seconds,
        "family": geometry.family.name,
        "acc_width": geometry.acc_width,
        "batches": {},
    }
    for batch in (16, len(pixels)):
        print(f"{label}: {len(pixels)} images, {batch} per RUN ...", file=sys.stderr, flush=True)
        result = run_model_on_tile(
            path,
            pixels,
            geometry,
            max_batch=batch,
            progress=progress,
        )
        seconds = result["seconds"]
        equal = int((np.asarray(result["outputs"]) == golden).sum())
        entry["batches"][batch] = {
            "seconds": seconds,
            "cycles": result["cycles"],
            "run_cycles": result["run_cycles"],
            "simulated_cycles_per_second": result["cycles"] / seconds,
            "simulated_images_per_second": len(pixels) / seconds,
            "equal": equal,
            "total": int(golden.size),
            "cycles_per_image": result["run_cycles"] / len(pixels),
            "images_per_second_at_100MHz": 100e6 * len(pixels) / result["run_cycles"],
            "layers": layer_figures(model, geometry, configs, result),
            "stream": stream_figures(model, geometry, configs, result, len(pixels)),
        }
    return entry


def markdown(entries):
    lines = [
        "# The tile in simulation (driver -> compiled harness -> Verilator)",
        "",
        "Written by `bench/tile.py`; all figures from one run. Utilization = useful MACs (x planes for "
        "bit-serial layers) / (PE x SIMD x cycles of the RUN command).",
        "",
        "| model | PE x SIMD | batch | outputs equal | cycles / image | images/s at 100 MHz | "
        "sim cycles/s | sim images/s | payload share (words) | information share (bits) |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for e in entries:
        for batch, b in e["batches"].items():
            lines.append(
                f"| {e['scheme']} | {e['pe']} x {e['simd']} | {batch} | {b['equal']} of {b['total']} | "
                f"{b['cycles_per_image']:.1f} | {b['images_per_second_at_100MHz']:.0f} | "
                f"{b['simulated_cycles_per_second']:.0f} | {b['simulated_images_per_second']:.1f} | "
                f"{100 * b['stream']['payload_share']:.2f} % | "
                f"{100 * b['stream']['information_share']:.1f} % |"
            )
    lines += [
        "",
        "| model | PE x SIMD | Verilog | Verilator build (empty cache) | again (reused) |",
        "|---|---|---:|---:|---:|",
    ]
    for e in entries:
        lines.append(
            f"| {e['scheme']} | {e['pe']} x {e['simd']} | {e['verilog_bytes'] / 1e6:.2f} MB | "
            f"{e['build_seconds']:.0f} s | {e['reuse_seconds']:.2f} s |"
        )
    lines += [
        "",
        "## MAC-array utilization per layer (target >= 80 % on hidden layers at batch >= 16)",
        "",
        "| model | PE x SIMD | batch | layer | shape | input x weights | planes | busy / RUN cycles | "
        "lane occupancy | utilization | target |",
        "|---|---|---:|---|---|---|---:|---:|---:|---:|---|",
    ]
    for e in entries:
        for batch, b in e["batches"].items():
            for row in b["layers"]:
                target = ("met" if row["utilization"] >= 0.8 else "**missed**") if row["hidden"] else ""
                lines.append(
                    f"| {e['scheme']} | {e['pe']} x {e['simd']} | {batch} | {row['layer']} | {row['shape']} | "
                    f"{row['kind']} | {row['planes']} | {100 * row['busy_share']:.1f} % | "
                    f"{100 * row['lane_occupancy']:.1f} % | {100 * row['utilization']:.1f} % | {target} |"
                )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    parser.add_argument("--keep-cache", action="store_true", help="use the user's cache (builds not timed fresh)")
    schemes = sorted({scheme for scheme, _, _ in CASES})
    parser.add_argument(
        "--cases",
        nargs="+",
        choices=schemes,
        metavar="SCHEME",
        help=f"only the cases of these models ({', '.join(schemes)}): printed, the results and README kept",
    )
    args = parser.parse_args(argv)
    cases = [case for case in CASES if args.cases is None or case[0] in args.cases]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lowbit-bench-cache-") as cache:
        if not args.keep_cache:
            os.environ["LOWBIT_CACHE_DIR"] = cache
        entries = [run_case(scheme, pe, simd, args.progress) for scheme, pe, simd in cases]
    text = markdown(entries)
    if args.cases is None:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "tile.json").write_text(json.dumps(entries, indent=1))
        (RESULTS / "tile.md").write_text(text)
        update_section("tile", "\n\n".join(text.split("\n\n")[2:4]))  # the README quotes the whole path, the builds
    print(text)
    print(f"total {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
