"""The serial link's timing model (``bench/boards.py``'s link-bound figures) against a timed bit-level
simulation: the iCEBreaker's top level (``BoardCore`` of the tile ``lowbit plan`` sizes for the digits
model, :data:`lowbit.boards.icebreaker.RESIDENT_GEOMETRY`, at the board's 18 MHz and 3 Mbaud) in
Verilator, the host driver on a bit-level UART (``sim/benches/board_bench.py``, no faults), the digits
model resident on ``--images`` test images; and the model's figures for the same session (the driver's
command log on the reference tile): the link's seconds (:func:`boards.link_seconds`, the busier
direction's bytes at 10 bits each) and the MAC array's (its busy cycles at the clock).

``python bench/link_timing.py`` writes ``bench/results/link-timing.{json,md}``.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from boards import link_seconds, session_log
from lowbit.boards import icebreaker
from lowbit.boards.build import BoardCore
from lowbit.sim.tile_transport import geometry_to_json
from lowbit.sim.verilator import run_bench
from lowbit.sw.golden import GoldenNetwork
from lowbit.sw.paths import build_root

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SEED = 20261207


def simulate(path, model, pixels, geometry):
    """The bit-level session's result (``board_bench.model_over_the_link``'s, no faults)."""
    folder = build_root() / "board_runs" / f"link-timing-{len(pixels)}"
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "pixels.npy", pixels)
    output = folder / "result.json"
    output.unlink(missing_ok=True)
    core = BoardCore(geometry, icebreaker.DIVISOR, clock_hz=icebreaker.CLOCK_HZ)
    spec = {
        "seed": SEED,
        "divisor": icebreaker.DIVISOR,
        "ack_timeout_cycles": core.link.bridge.ack_timeout_cycles,
        "geometry": geometry_to_json(geometry),
        "heartbeat_bits": 24,
        "model": str(path),
        "pixels": str(folder / "pixels.npy"),
        "max_batch": None,
        "mode": "resident",
        "flip_host_seqs": [],
        "cut_host_seqs": [],
        "flip_board_seqs": [],
        "cut_board_seqs": [],
        "output": str(output),
    }
    (folder / "spec.json").write_text(json.dumps(spec))
    run_bench(
        core,
        toplevel="board_core",
        test_module="lowbit.sim.benches.board_bench",
        testcase="model_over_the_link",
        env={"LOWBIT_BOARD": folder / "spec.json", "LOWBIT_SEED": SEED},
        name="link-timing",
        quiet=True,
    )
    return json.loads(output.read_text())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=120, help="test images in the session (default 120)")
    args = parser.parse_args(argv)
    from lowbit.sw.cli.demo import cached_model
    from lowbit.sw.model.file import load_model
    from lowbit.sw.train.data import load_digits_split

    path = cached_model("binary")
    model, geometry = load_model(path), icebreaker.RESIDENT_GEOMETRY
    pixels = load_digits_split().x_test[: args.images]
    started = time.monotonic()
    result = simulate(path, model, pixels, geometry)
    wall = time.monotonic() - started
    got, expected = np.array(result["outputs"]), GoldenNetwork(model).run(pixels)
    if not (got == expected).all():
        raise SystemExit(f"{int((got != expected).sum())} of {expected.size} outputs differ from the golden model")
    clock, baud = icebreaker.CLOCK_HZ, icebreaker.BAUD
    log, busy_cycles = session_log(model, geometry, GoldenNetwork(model).input(pixels))
    link = link_seconds(log, baud)
    measured = result["cycles"] / clock
    record = {
        "images": len(pixels),
        "geometry": geometry.label(),
        "clock_hz": clock,
        "baud": baud,
        "measured_seconds": measured,
        "measured_images_per_s": len(pixels) / measured,
        "model_link_seconds": link["seconds"],
        "model_compute_seconds": busy_cycles / clock,
        "model_seconds": max(link["seconds"], busy_cycles / clock),
        "host_link_stats": result["host"],
        "wall_seconds": wall,
    }
    record["measured_over_model"] = measured / record["model_seconds"]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "link-timing.json").write_text(json.dumps(record, indent=1) + "\n")
    text = (
        "# The link's timing model against a bit-level simulation\n\n"
        f"Written by `python bench/link_timing.py --images {len(pixels)}`: the iCEBreaker's `BoardCore` "
        f"({geometry.label()}, {clock / 1e6:g} MHz, {baud} baud) in Verilator, the driver on a bit-level UART, "
        "the digits model resident (LOAD_MODEL, LOAD_WEIGHTS, LOAD_THRESHOLDS, RUN), no faults; every output "
        "equal to the golden model.\n\n"
        "| | seconds | images/s |\n|---|---:|---:|\n"
        f"| measured (simulated time of the whole session) | {measured:.4f} | {len(pixels) / measured:,.0f} |\n"
        f"| model: the link (busier direction, 10 bits per byte) | {link['seconds']:.4f} | "
        f"{len(pixels) / link['seconds']:,.0f} |\n"
        f"| model: the MAC array (busy cycles at the clock) | {busy_cycles / clock:.4f} | "
        f"{len(pixels) * clock / busy_cycles:,.0f} |\n"
        f"| model: the larger of the two | {record['model_seconds']:.4f} | "
        f"{len(pixels) / record['model_seconds']:,.0f} |\n\n"
        f"Measured / model: {record['measured_over_model']:.3f} (the model leaves out the time the link and the "
        "MAC array do not overlap: a command's answer waits for its last input word, the next command for "
        "that answer).\n"
    )
    (RESULTS / "link-timing.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
