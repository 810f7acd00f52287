"""``lowbit run``: a model on the digits test split, through a backend, against the golden model.

Backends: ``golden`` (the NumPy golden model itself), ``model`` (the host driver against
:class:`lowbit.sw.driver.ModelTile`, the reference tile in Python) and ``sim`` (the driver against the
Verilog tile in Verilator, :func:`lowbit.sim.tile_transport.run_model_on_tile`). Prints the accuracy,
how many outputs equal the golden model's (exit code 1 unless all do), cycles per image, the MAC
array's utilization (useful MACs / (PE * SIMD * cycles)) and images per second at 100 MHz. The
``golden`` and ``model`` backends have no clock: their cycles are the MAC array's busy cycles
(:meth:`TileGeometry.cycles_per_vector`), an estimate that leaves out the streaming of words.
"""

import asyncio
import sys
from pathlib import Path

__all__ = ["BACKENDS", "CLOCK_HZ", "add_run_arguments", "run_run"]

BACKENDS = ("golden", "model", "sim")
#: The clock the images-per-second figure assumes.
CLOCK_HZ = 100_000_000


def _positive(text):
    value = int(text)
    if value < 1:
        raise ValueError(f"expected a positive integer, not {text}")
    return value


def add_run_arguments(parser):
    parser.add_argument("model", type=Path, help="a lowbit model file (lowbit train --out)")
    parser.add_argument("--backend", choices=BACKENDS, default="model",
                        help="golden: the golden model; model: the driver on the Python reference tile; "
                             "sim: the driver on the Verilog tile in Verilator (default: model)")
    parser.add_argument("--pe", type=_positive, help="output channels of the MAC array (default per family)")
    parser.add_argument("--simd", type=_positive, help="inputs per cycle of the MAC array (default per family)")
    parser.add_argument("--limit", type=_positive, help="only the first N test images")
    parser.add_argument("--max-batch", type=_positive,
                        help="at most N vectors per RUN command (default: the whole batch in one RUN per layer)")
    parser.add_argument("--idle", action="store_true", help="sim: random idle cycles on the tile's input")
    parser.add_argument("--backpressure", action="store_true", help="sim: random back-pressure on its output")
    parser.add_argument("--seed", type=int, default=20261123, help="seed of --idle / --backpressure")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def _model_backend(model, pixels, geometry, progress, max_batch):
    from .driver import ModelTile, TileInterface, run_model

    tile = ModelTile(geometry)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(model.layers) * len(pixels), desc="model tile", unit="vector", leave=False,
                   file=sys.stderr)

    def update(layer, done, batch):
        if bar is not None:
            bar.n = layer * batch + done
            bar.refresh()

    outputs = asyncio.run(run_model(TileInterface(tile, geometry), model, pixels, update,
                                   max_batch=max_batch))
    if bar is not None:
        bar.close()
    return outputs, tile.busy_cycles


def run_run(args):
    import numpy as np

    from ..sim.tile_transport import default_geometry
    from .data import load_digits_split
    from .driver import tile_layers
    from .golden import GoldenNetwork
    from .model_file import load_model

    model = load_model(args.model)
    geometry = default_geometry(model, args.pe, args.simd)
    configs = tile_layers(model, geometry)              # a model the tile cannot run fails here
    split = load_digits_split()
    pixels, labels = split.x_test[:args.limit], split.y_test[:args.limit]
    images = len(pixels)
    golden = GoldenNetwork(model).run(pixels)
    estimate = images * sum(geometry.cycles_per_vector(c) for c in configs)
    print(f"model {args.model} ({model.scheme}, {len(model.layers)} layers), backend {args.backend}, "
          f"{geometry.family.name.lower()} tile PE={geometry.pe} SIMD={geometry.simd} "
          f"acc_width={geometry.acc_width}, {images} test images")
    if args.backend == "golden":
        outputs, cycles, measured = golden, estimate, False
    elif args.backend == "model":
        outputs, cycles = _model_backend(model, pixels, geometry, args.progress, args.max_batch)
        measured = False
    else:
        from ..sim.tile_transport import run_model_on_tile
        result = run_model_on_tile(args.model.resolve(), pixels, geometry, idle=args.idle,
                                   backpressure=args.backpressure, seed=args.seed, progress=args.progress,
                                   max_batch=args.max_batch)
        outputs, cycles, measured = np.asarray(result["outputs"], dtype=np.int64), result["run_cycles"], True
        print(f"simulated cycles: {result['cycles']} in all, {result['run_cycles']} in RUN commands, "
              f"MAC array busy {result['mac_beats']} (estimate {result['busy_cycles']}); words sent: "
              f"{result['stream']['sent_payload_words']} payload + {result['stream']['sent_header_words']} header")
    outputs = np.asarray(outputs, dtype=np.int64).reshape(golden.shape)
    equal = int((outputs == golden).sum())
    correct = int((np.argmax(outputs, axis=1) == labels).sum())
    useful = images * sum(c.in_features * c.out_features for c in configs)
    kind = "simulated, RUN commands" if measured else "estimate: MAC-array busy cycles"
    per_image = cycles / images if images else 0.0
    print(f"accuracy: {correct / images:.4f} ({correct} of {images})")
    print(f"outputs equal to the golden model: {equal} of {golden.size}"
          f"{'' if equal == golden.size else '  MISMATCH'}")
    print(f"cycles per image: {per_image:.1f} ({kind})")
    print(f"MAC-array utilization: {100 * useful / (geometry.pe * geometry.simd * cycles) if cycles else 0:.1f} % "
          f"(useful MACs / (PE*SIMD*cycles))")
    print(f"images per second at {CLOCK_HZ // 1_000_000} MHz: {CLOCK_HZ / per_image if per_image else 0:.0f}")
    return 0 if equal == golden.size else 1
