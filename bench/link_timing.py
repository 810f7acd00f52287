"""The serial link's timing model (``bench/boards.py``'s link-bound figures) against a timed bit-level
simulation: each board's top level (``BoardCore`` of the tile ``lowbit plan`` sizes for the digits model,
at the board's clock and 3 Mbaud) in Verilator, the host driver on a bit-level UART
(``sim/benches/board_bench.py``, no faults), the digits model resident on ``--images`` test images; and
the model's figures for the same session (the driver's command log on the reference tile): the link's
seconds (:func:`boards.link_seconds`, the busier direction's bytes at 10 bits each) and the MAC array's
(its busy cycles at the clock).

``python bench/link_timing.py`` writes ``bench/results/link-timing.{json,md}``.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from boards import link_seconds, session_log
from lowbit.boards.build import BOARDS, BoardCore, board_module, board_tile
from lowbit.sim.tile_transport import geometry_to_json
from lowbit.sim.verilator import run_board_bench
from lowbit.sw.golden import GoldenNetwork

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SEED = 20261207


def simulate(board, path, pixels, geometry):
    """The bit-level session's result on ``board`` (``board_bench.model_over_the_link``'s, no faults)."""
    module = board_module(board)
    core = BoardCore(geometry, module.DIVISOR, clock_hz=module.CLOCK_HZ)
    spec = {
        "seed": SEED,
        "divisor": module.DIVISOR,
        "ack_timeout_cycles": core.link.bridge.ack_timeout_cycles,
        "geometry": geometry_to_json(geometry),
        "heartbeat_bits": 24,
        "model": str(path),
        "max_batch": None,
        "mode": "resident",
        "flip_host_seqs": [],
        "cut_host_seqs": [],
        "flip_board_seqs": [],
        "cut_board_seqs": [],
    }
    return run_board_bench(core, "model_over_the_link", spec, name=f"link-timing-{board}-{len(pixels)}", pixels=pixels)


def measure(board, path, model, pixels):
    """One board's record: the measured and the modelled seconds of the session."""
    module = board_module(board)
    _, geometry, clock = board_tile(board, model)
    started = time.monotonic()
    result = simulate(board, path, pixels, geometry)
    wall = time.monotonic() - started
    golden = GoldenNetwork(model)
    got, expected = np.array(result["outputs"]), golden.run(pixels)
    if not (got == expected).all():
        raise SystemExit(
            f"{board}: {int((got != expected).sum())} of {expected.size} outputs differ from the golden model"
        )
    log, busy_cycles = session_log(model, geometry, golden.input(pixels))
    link = link_seconds(log, module.BAUD)["seconds"]
    compute = busy_cycles / clock
    measured = result["cycles"] / clock
    return {
        "board": board,
        "images": len(pixels),
        "geometry": geometry.label(),
        "clock_hz": clock,
        "baud": module.BAUD,
        "measured_seconds": measured,
        "model_link_seconds": link,
        "model_compute_seconds": compute,
        "measured_over_model": measured / max(link, compute),
        "host_link_stats": result["host"],
        "wall_seconds": wall,
    }


def markdown(records):
    images = records[0]["images"]
    lines = [
        "# The link's timing model against a bit-level simulation",
        "",
        f"Written by `python bench/link_timing.py --images {images}`: each board's `BoardCore` with the tile "
        "`lowbit plan` sizes for the digits model, at the board's clock and baud rate, in Verilator; the "
        "driver on a bit-level UART; the digits model resident (LOAD_MODEL, LOAD_WEIGHTS, LOAD_THRESHOLDS, "
        "RUN), no faults; every output equal to the golden model. Images/s of the whole session, loads "
        "included.",
        "",
        "| board | tile | clock | measured s | images/s | model: link s | model: MAC array s | "
        "model images/s (the larger) | measured / model |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        model = max(r["model_link_seconds"], r["model_compute_seconds"])
        lines.append(
            f"| {r['board']} | {r['geometry']} | {r['clock_hz'] / 1e6:g} MHz | {r['measured_seconds']:.4f} | "
            f"{r['images'] / r['measured_seconds']:,.0f} | {r['model_link_seconds']:.4f} | "
            f"{r['model_compute_seconds']:.4f} | {r['images'] / model:,.0f} | {r['measured_over_model']:.3f} |"
        )
    lines += [
        "",
        "The model leaves out the time the link and the MAC array wait for each other (a command's answer "
        "waits for its last input word, the next command for that answer), so its figures are upper bounds.",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=360, help="test images in the session (default 360)")
    parser.add_argument("--boards", nargs="+", default=sorted(BOARDS), choices=sorted(BOARDS))
    args = parser.parse_args(argv)
    from lowbit.sw.cli.demo import cached_model
    from lowbit.sw.model.file import load_model
    from lowbit.sw.train.data import load_digits_split

    path = cached_model("binary")
    model = load_model(path)
    pixels = load_digits_split().x_test[: args.images]
    records = [measure(board, path, model, pixels) for board in args.boards]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "link-timing.json").write_text(json.dumps(records, indent=1) + "\n")
    text = markdown(records)
    (RESULTS / "link-timing.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
