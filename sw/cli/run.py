"""``lowbit run``: a model on the digits test split, through a backend, against the golden model.

Backends: ``golden`` (the NumPy golden model itself), ``model`` (the host driver against
:class:`lowbit.sim.reference.ModelTile`, the reference tile in Python), ``sim`` (the driver against the
Verilog tile in Verilator, :func:`lowbit.sim.tile_transport.run_model_on_tile`) and ``serial`` (the
driver against a board over its serial port, ``--port DEVICE``, through
:class:`lowbit.sw.host.link.SerialTransport`). Prints the accuracy and how many outputs equal the golden
model's (exit code 1 unless all do). The ``golden``, ``model`` and ``sim`` backends then print cycles per
image, the MAC array's utilization (useful MACs / (PE * SIMD * cycles)) and images per second at
100 MHz; ``golden`` and ``model`` have no clock, so their cycles are the MAC array's busy cycles
(:meth:`TileGeometry.cycles_per_vector`), an estimate that leaves out the streaming of words.

The ``serial`` backend takes the tile's geometry from the board (IDENTIFY) and prints it, refuses a model
the board's tile cannot run (naming the layer), and prints the link's statistics and the images per
second measured over the wire (wall clock of configuring, loading and running every layer). A board
that does not answer, or a port that cannot be opened, is an error naming the port (exit code 2).
"""

import asyncio
import sys
import time
from pathlib import Path

from lowbit.sw.cli import CommandError

__all__ = ["BACKENDS", "CLOCK_HZ", "add_run_arguments", "run_run"]

BACKENDS = ("golden", "model", "sim", "serial")
#: The clock the images-per-second figure assumes.
CLOCK_HZ = 100_000_000
#: Why a board may not answer the start of a session (SYNC, then IDENTIFY).
_FRESH_BOARD = ("Is the board programmed (lowbit build --board B) and connected, and does --baud match its UART "
                "(115200 for the boards of lowbit.boards)?")


def _positive(text):
    value = int(text)
    if value < 1:
        raise ValueError(f"expected a positive integer, not {text}")
    return value


def _non_negative(text):
    value = int(text)
    if value < 0:
        raise ValueError(f"expected a non-negative integer, not {text}")
    return value


def _seconds(text):
    value = float(text)
    if not value > 0:
        raise ValueError(f"expected a positive number of seconds, not {text}")
    return value


def add_run_arguments(parser):
    from lowbit.sw.host.link import DEFAULT_BAUD

    parser.add_argument("model", type=Path, help="a lowbit model file (lowbit train --out)")
    parser.add_argument("--backend", choices=BACKENDS, default="model",
                        help="golden: the golden model; model: the driver on the Python reference tile; "
                             "sim: the driver on the Verilog tile in Verilator; serial: the driver on a board "
                             "over --port (default: model)")
    parser.add_argument("--pe", type=_positive, help="output channels of the MAC array (default per family)")
    parser.add_argument("--simd", type=_positive, help="inputs per cycle of the MAC array (default per family)")
    parser.add_argument("--limit", type=_positive, help="only the first N test images")
    parser.add_argument("--max-batch", type=_positive,
                        help="at most N vectors per RUN command (default: the whole batch in one RUN per layer)")
    parser.add_argument("--idle", action="store_true", help="sim: random idle cycles on the tile's input")
    parser.add_argument("--backpressure", action="store_true", help="sim: random back-pressure on its output")
    parser.add_argument("--seed", type=int, default=20261123, help="seed of --idle / --backpressure")
    parser.add_argument("--port", metavar="DEVICE",
                        help="serial: the board's serial port (/dev/ttyUSB1, COM3); required for serial only")
    parser.add_argument("--baud", type=_positive, default=DEFAULT_BAUD,
                        help=f"serial: the UART's baud rate (default: {DEFAULT_BAUD}, as the board top levels)")
    parser.add_argument("--timeout", type=_seconds, default=1.0, metavar="SECONDS",
                        help="serial: seconds without an ACK or an answer before a frame is asked for or sent "
                             "again (default: 1.0)")
    parser.add_argument("--retries", type=_non_negative, default=8, metavar="N",
                        help="serial: resends of a frame before the board counts as not answering (default: 8)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def _check_backend_arguments(args):
    port = getattr(args, "port", None)          # lowbit demo passes a Namespace without the serial options
    if args.backend == "serial":
        if port is None:
            raise ValueError("--backend serial needs --port DEVICE, the board's serial port (e.g. /dev/ttyUSB1)")
        if args.pe or args.simd:
            raise ValueError("--pe and --simd are not for --backend serial: the board reports its tile's geometry")
    elif port is not None:
        raise ValueError(f"--port is for --backend serial only, not --backend {args.backend}")


def _run_driver(interface, model, pixels, progress, max_batch, desc):
    """:func:`run_model` on ``interface``, with a progress bar (one step per layer and vector) on stderr."""
    from lowbit.sw.host import run_model

    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(model.layers) * len(pixels), desc=desc, unit="vector", leave=False, file=sys.stderr)

    def update(layer, done, batch):
        if bar is not None:
            bar.n = layer * batch + done
            bar.refresh()

    try:
        return asyncio.run(run_model(interface, model, pixels, update, max_batch=max_batch))
    finally:
        if bar is not None:
            bar.close()


def _model_backend(model, pixels, geometry, progress, max_batch):
    from lowbit.sim.reference import ModelTile
    from lowbit.sw.host import TileInterface

    tile = ModelTile(geometry)
    outputs = _run_driver(TileInterface(tile, geometry), model, pixels, progress, max_batch, "model tile")
    return outputs, tile.busy_cycles


def _tile_text(geometry):
    return (f"{geometry.family.name.lower()} tile PE={geometry.pe} SIMD={geometry.simd} "
            f"acc_width={geometry.acc_width}")


def _board_text(geometry):
    """Everything IDENTIFY reports, in words."""
    thresholds = f"{geometry.max_thresholds} threshold{'' if geometry.max_thresholds == 1 else 's'}"
    text = (f"{_tile_text(geometry)}, layers up to {geometry.max_in_features} inputs and "
            f"{geometry.max_out_features} outputs, {geometry.max_weight_rows} weight rows, {thresholds} per "
            f"channel, inputs up to {geometry.max_input_bits} bits")
    if geometry.n_terms:
        text += f", {geometry.n_terms} terms per weight with {geometry.exponent_bits} exponent bits"
    return text


def _print_header(args, model, geometry, images):
    print(f"model {args.model} ({model.scheme}, {len(model.layers)} layers), backend {args.backend}, "
          f"{_tile_text(geometry)}, {images} test images")


def _print_agreement(outputs, golden, labels):
    """Print the accuracy and how many outputs equal the golden model's; return whether all do."""
    import numpy as np

    outputs = np.asarray(outputs, dtype=np.int64).reshape(golden.shape)
    equal = int((outputs == golden).sum())
    correct = int((np.argmax(outputs, axis=1) == labels).sum())
    images = len(labels)
    print(f"accuracy: {correct / images:.4f} ({correct} of {images})")
    print(f"outputs equal to the golden model: {equal} of {golden.size}"
          f"{'' if equal == golden.size else '  MISMATCH'}")
    return equal == golden.size


def _test_images(model, limit):
    """The first ``limit`` digits test images, their labels and the golden model's outputs on them."""
    from lowbit.sw.train.data import load_digits_split
    from lowbit.sw.golden import GoldenNetwork

    split = load_digits_split()
    pixels, labels = split.x_test[:limit], split.y_test[:limit]
    return pixels, labels, GoldenNetwork(model).run(pixels)


def _run_serial(args, model):
    from lowbit.sw.protocol import ProtocolError
    from lowbit.sw.host import TileError, TileInterface, TransportError, tile_layers
    from lowbit.sw.host.link import SerialTransport

    pixels, labels, golden = _test_images(model, args.limit)
    try:
        link = SerialTransport(args.port, baud=args.baud, timeout=args.timeout, retries=args.retries)
    except TransportError as error:             # it names the port and the reason
        raise CommandError(str(error)) from error
    with link:
        interface = TileInterface(link)
        async def start():             # a session: SYNC (the board resets its tile), then IDENTIFY
            await link.synchronize()
            return await interface.identify()

        try:
            geometry = asyncio.run(start())
        except (TransportError, TileError) as error:
            raise CommandError(f"{args.port}: starting the session failed: {error}. {_FRESH_BOARD}") from error
        print(f"board on {args.port} ({args.baud} baud): {_board_text(geometry)}", flush=True)
        try:
            tile_layers(model, geometry)
        except ProtocolError as error:
            raise ProtocolError(f"the model does not fit the board's tile: {error}") from None
        _print_header(args, model, geometry, len(pixels))
        start = time.perf_counter()
        try:
            outputs = _run_driver(interface, model, pixels, args.progress, args.max_batch, "board")
        except (TransportError, TileError) as error:
            raise CommandError(f"{args.port}: {error}") from error
        seconds = time.perf_counter() - start
    all_equal = _print_agreement(outputs, golden, labels)
    stats = link.stats
    print(f"link: {stats.data_frames} DATA frames sent, {stats.resent} resent, {stats.received} received, "
          f"{stats.bad_frames} bad frames ({stats.naks_sent} NAKs sent, {stats.naks_received} received, "
          f"{stats.duplicates} duplicates)")
    print(f"images per second over the wire: {len(pixels) / seconds:.1f} ({len(pixels)} images in "
          f"{seconds:.2f} s, wall clock)")
    return 0 if all_equal else 1


def run_run(args):
    import numpy as np

    from lowbit.sim.tile_transport import default_geometry
    from lowbit.sw.host import tile_layers
    from lowbit.sw.model.file import load_model

    _check_backend_arguments(args)
    model = load_model(args.model)
    if args.backend == "serial":                         # the board reports its own geometry
        return _run_serial(args, model)
    geometry = default_geometry(model, args.pe, args.simd)
    configs = tile_layers(model, geometry)              # a model the tile cannot run fails here
    pixels, labels, golden = _test_images(model, args.limit)
    images = len(pixels)
    estimate = images * sum(geometry.cycles_per_vector(c) for c in configs)
    _print_header(args, model, geometry, images)
    if args.backend == "golden":
        outputs, cycles, measured = golden, estimate, False
    elif args.backend == "model":
        outputs, cycles = _model_backend(model, pixels, geometry, args.progress, args.max_batch)
        measured = False
    else:
        from lowbit.sim.tile_transport import run_model_on_tile
        result = run_model_on_tile(args.model.resolve(), pixels, geometry, idle=args.idle,
                                   backpressure=args.backpressure, seed=args.seed, progress=args.progress,
                                   max_batch=args.max_batch)
        outputs, cycles, measured = np.asarray(result["outputs"], dtype=np.int64), result["run_cycles"], True
        print(f"simulated cycles: {result['cycles']} in all, {result['run_cycles']} in RUN commands, "
              f"MAC array busy {result['mac_beats']} (estimate {result['busy_cycles']}); words sent: "
              f"{result['stream']['sent_payload_words']} payload + {result['stream']['sent_header_words']} header")
    all_equal = _print_agreement(outputs, golden, labels)
    useful = images * sum(c.in_features * c.out_features for c in configs)
    kind = "simulated, RUN commands" if measured else "estimate: MAC-array busy cycles"
    per_image = cycles / images if images else 0.0
    print(f"cycles per image: {per_image:.1f} ({kind})")
    print(f"MAC-array utilization: {100 * useful / (geometry.pe * geometry.simd * cycles) if cycles else 0:.1f} % "
          f"(useful MACs / (PE*SIMD*cycles))")
    print(f"images per second at {CLOCK_HZ // 1_000_000} MHz: {CLOCK_HZ / per_image if per_image else 0:.0f}")
    return 0 if all_equal else 1
