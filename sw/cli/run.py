"""``lowbit run``: a model on the digits test split through a backend.

Backends: ``golden`` (the NumPy golden model, the specification: it runs every model ``lowbit train``
makes, the float ``fp32`` reference included, and prints the accuracy), and three that run the host
driver on a tile and compare every output with the golden model's (exit code 1 unless all are equal):
``model`` (the reference tile in Python, :class:`lowbit.sim.reference.ModelTile`), ``sim`` (the Verilog
tile in Verilator) and ``serial`` (a board on its serial port, ``--port DEVICE``).

``model`` and ``sim`` run a tile of :func:`lowbit.sw.api.default_geometry` (``--pe``, ``--simd``) and
print cycles per image, the MAC array's utilization (useful MACs / (PE * SIMD * cycles)) and images per
second at 100 MHz; ``model`` has no clock, so its cycles are the MAC array's busy cycles
(:meth:`TileGeometry.cycles_per_vector`), an estimate that leaves out the streaming of words.

``serial`` takes the tile's geometry from the board (IDENTIFY) and prints it, refuses a model the board's
tile cannot run (naming the layer), and prints the link's statistics and the images per second measured
over the wire (wall clock of configuring, loading and running every layer). A board that does not
answer, or a port that cannot be opened, is an error naming the port (exit code 2).

``model``, ``sim`` and ``serial`` take ``--mode``: ``auto`` (the default) loads the whole model at once (LOAD_MODEL,
resident mode) where the tile holds it, else runs it a layer at a time; ``resident`` or ``streaming``
choose (``resident`` refuses a model the tile cannot hold, naming why; on ``model`` and ``sim`` it sizes the tile for
the whole model: :func:`lowbit.sw.api.default_geometry` ``(resident=True)``). The header line names the
mode taken.

An option the chosen backend does not use is an error naming the option and the backends that use it
(:data:`OPTIONS`, from :data:`lowbit.sw.api.TILE_OPTIONS`); ``--limit`` and ``--no-progress`` apply to
every backend.
"""

import argparse
from pathlib import Path

from lowbit.sim.gates import GATE_FAMILIES
from lowbit.sw import api
from lowbit.sw.cli import CommandError
from lowbit.sw.cli.arguments import integer, non_negative_int, positive_float, positive_int
from lowbit.sw.protocol.frames import DEFAULT_BAUD

__all__ = ["BACKENDS", "OPTIONS", "MODES", "CLOCK_HZ", "add_run_arguments", "run_run", "run_arguments"]

BACKENDS = ("golden",) + api.BACKENDS
#: ``--option``: the backends that use it (golden uses none of them).
OPTIONS = {"--" + name.replace("_", "-"): backends for name, backends in api.TILE_OPTIONS.items() if name != "geometry"}
#: The options that are flags (``store_true``): ``False`` when not given.
_FLAGS = ("--idle", "--backpressure", "--classes")
#: The clock the images-per-second figure assumes.
CLOCK_HZ = 100_000_000
#: The values of ``--mode``.
MODES = api.MODES
#: Defaults of the serial options (they are ``None`` when not given, so that a given one can be refused).
_DEFAULT_TIMEOUT, _DEFAULT_RETRIES = 1.0, 8
#: Why a board may not answer the start of a session (SYNC, then IDENTIFY).
_FRESH_BOARD = (
    "Is the board programmed (lowbit build --board B) and connected, and does --baud match its UART "
    f"({DEFAULT_BAUD} for the boards of lowbit.boards)?"
)


def _users(option):
    backends = OPTIONS[option]
    return backends[0] if len(backends) == 1 else ", ".join(backends[:-1]) + " or " + backends[-1]


def add_run_arguments(parser):

    parser.add_argument("model", type=Path, help="a lowbit model file (lowbit train --out)")
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="model",
        help="golden: the golden model (any model, accuracy only); model: the driver on the "
        "Python reference tile; sim: the driver on the Verilog tile in Verilator; serial: "
        "the driver on a board over --port (default: model)",
    )
    parser.add_argument("--limit", type=positive_int, metavar="N", help="only the first N test images")
    parser.add_argument(
        "--pe", type=positive_int, help=f"{_users('--pe')}: output channels of the MAC array (default per family)"
    )
    parser.add_argument(
        "--simd", type=positive_int, help=f"{_users('--simd')}: inputs per cycle of the MAC array (default per family)"
    )
    parser.add_argument(
        "--max-batch",
        type=positive_int,
        metavar="N",
        help=f"{_users('--max-batch')}: at most N vectors per RUN command (default: the whole "
        "batch in one RUN per layer)",
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        help=f"{_users('--mode')}: resident loads the whole model into the tile at once (LOAD_MODEL), "
        "streaming a layer at a time; auto: resident where the tile holds the model (default: auto)",
    )
    parser.add_argument("--idle", action="store_true", help="sim: random idle cycles on the tile's input")
    parser.add_argument("--backpressure", action="store_true", help="sim: random back-pressure on its output")
    parser.add_argument("--seed", type=integer, help=f"sim: seed of --idle / --backpressure (default {api.SIM_SEED})")
    parser.add_argument(
        "--waves",
        type=Path,
        metavar="FILE",
        help="sim: write the tile's signals to FILE (.vcd or .fst; a separate, slower build with tracing)",
    )
    parser.add_argument(
        "--netlist",
        choices=tuple(GATE_FAMILIES),
        help="sim: run the tile synthesized by yosys for that family, a netlist of its vendor cells simulated "
        "with their models (gate level; minutes to build), instead of its RTL",
    )
    parser.add_argument(
        "--port", metavar="DEVICE", help="serial: the board's serial port (/dev/ttyUSB1, COM3); required for serial"
    )
    parser.add_argument(
        "--baud",
        type=positive_int,
        help=f"serial: the UART's baud rate (default: {DEFAULT_BAUD}, as the board top levels)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        metavar="SECONDS",
        help="serial: seconds without an ACK or an answer before a frame is asked for or sent "
        f"again (default: {_DEFAULT_TIMEOUT})",
    )
    parser.add_argument(
        "--retries",
        type=non_negative_int,
        metavar="N",
        help=f"serial: resends of a frame before the board counts as not answering (default: {_DEFAULT_RETRIES})",
    )
    parser.add_argument(
        "--classes",
        action="store_true",
        help=f"{_users('--classes')}: compare each image's class index instead of the last layer's accumulators "
        "(a tile holding the model resident answers it: one word per image)",
    )
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def run_arguments(model, backend, **given):
    """The arguments of ``lowbit run MODEL --backend BACKEND`` with the options in ``given`` (by their
    attribute names: ``pe``, ``limit``, ``progress``...) and every other one not given."""
    args = argparse.Namespace(model=Path(model), backend=backend, limit=None, progress=True)
    for option in OPTIONS:
        setattr(args, option[2:].replace("-", "_"), False if option in _FLAGS else None)
    for name, value in given.items():
        if not hasattr(args, name):
            raise TypeError(f"lowbit run has no option {name!r}")
        setattr(args, name, value)
    return args


def _check_backend_options(args):
    """The one rule: an option the chosen backend does not use is an error."""
    for option, backends in OPTIONS.items():
        value = getattr(args, option[2:].replace("-", "_"))
        if value is not None and value is not False and args.backend not in backends:
            raise ValueError(f"{option} is for --backend {_users(option)} only, not --backend {args.backend}")
    if args.backend == "serial" and args.port is None:
        raise ValueError("--backend serial needs --port DEVICE, the board's serial port (e.g. /dev/ttyUSB1)")


def _print_header(args, model, images, geometry=None, mode=None):
    tile = f"{geometry.label()}, " if geometry is not None else ""
    how = f", {mode}" if mode is not None else ""
    print(
        f"model {args.model} ({model.scheme}, {len(model.layers)} layers), backend {args.backend}, "
        f"{tile}{images} test images{how}",
        flush=True,
    )


def _print_accuracy(predicted, labels):
    correct = int((predicted == labels).sum())
    images = len(labels)
    print(f"accuracy: {correct / images:.4f} ({correct} of {images})")


def _print_agreement(outputs, golden, labels, classes=False):
    """Print the accuracy and how many outputs (``classes``: class indices) equal the golden model's; return
    whether all do."""
    import numpy as np

    from lowbit.sw.golden import class_index

    if classes:
        golden = class_index(golden)
    outputs = np.asarray(outputs, dtype=np.int64).reshape(golden.shape)
    equal = int((outputs == golden).sum())
    _print_accuracy(outputs if classes else class_index(outputs), labels)
    what = "class indices equal to the golden model's" if classes else "outputs equal to the golden model"
    print(f"{what}: {equal} of {golden.size}{'' if equal == golden.size else '  MISMATCH'}")
    return equal == golden.size


def _run_golden(args, model):
    pixels, labels = api.test_images(args.limit)
    from lowbit.sw.golden import class_index

    outputs = api.golden(model, pixels)
    _print_header(args, model, len(pixels))
    _print_accuracy(class_index(outputs), labels)
    return 0


def _run_serial(args, model):
    from lowbit.sw.host import TileError, TransportError

    baud = DEFAULT_BAUD if args.baud is None else args.baud
    pixels, labels = api.test_images(args.limit)
    golden = api.golden(model, pixels)

    def started(geometry):
        print(f"board on {args.port} ({baud} baud): {geometry.describe()}", flush=True)
        configs = api.check_fit(model, geometry, tile="the board's tile", mode=args.mode or "auto")
        _print_header(
            args, model, len(pixels), geometry, api.run_mode(configs, geometry, args.mode or "auto", model=model)
        )

    try:
        run = api.tile_run(
            model,
            pixels,
            backend="serial",
            port=args.port,
            baud=baud,
            timeout=args.timeout,
            retries=args.retries,
            max_batch=args.max_batch,
            mode=args.mode,
            progress=args.progress,
            on_geometry=started,
            classes=args.classes,
        )
    except api.SessionError as error:
        raise CommandError(f"{error}. {_FRESH_BOARD}") from error
    except (TransportError, TileError) as error:  # the message names the port and the reason
        raise CommandError(str(error)) from error
    all_equal = _print_agreement(run.outputs, golden, labels, args.classes)
    stats = run.link
    print(
        f"link: {stats.data_frames} DATA frames sent, {stats.resent} resent, {stats.received} received, "
        f"{stats.bad_frames} bad frames ({stats.naks_sent} NAKs sent, {stats.naks_received} received, "
        f"{stats.duplicates} duplicates)"
    )
    print(
        f"images per second over the wire: {len(pixels) / run.seconds:.1f} ({len(pixels)} images in "
        f"{run.seconds:.2f} s, wall clock)"
    )
    return 0 if all_equal else 1


def _tile_geometry(model, pe, simd, resident=False):
    """The geometry of ``--pe`` / ``--simd`` (``resident``: holding the whole model) for ``model``; a model no
    tile runs is an error that says which backend runs it."""
    from lowbit.sw.protocol import ProtocolError

    try:
        api.default_geometry(model)
    except ProtocolError as error:
        raise ProtocolError(f"no tile runs this model: {error}; --backend golden runs every model") from None
    return api.default_geometry(model, pe, simd, resident=resident)


def run_run(args):
    _check_backend_options(args)
    model = api.load_model(args.model)
    if args.backend == "golden":
        return _run_golden(args, model)
    if args.backend == "serial":  # the board reports its own geometry
        return _run_serial(args, model)
    mode = args.mode or "auto"
    geometry = _tile_geometry(model, args.pe, args.simd, resident=mode == "resident")
    configs = api.check_fit(model, geometry, mode=mode)  # a model the tile cannot run fails here
    pixels, labels = api.test_images(args.limit)
    golden = api.golden(model, pixels)
    _print_header(args, model, len(pixels), geometry, api.run_mode(configs, geometry, mode, model=model))
    run = api.tile_run(
        args.model,
        pixels,
        backend=args.backend,
        geometry=geometry,
        max_batch=args.max_batch,
        mode=args.mode,
        idle=args.idle,
        backpressure=args.backpressure,
        seed=args.seed,
        waves=args.waves,
        netlist=args.netlist,
        progress=args.progress,
        classes=args.classes,
    )
    if run.simulation is not None:
        result = run.simulation
        print(
            f"simulated cycles: {result['cycles']} in all, {result['run_cycles']} in RUN commands, "
            f"MAC array busy {result['mac_beats']} (estimate {result['busy_cycles']}); words sent: "
            f"{result['stream']['sent_payload_words']} payload + {result['stream']['sent_header_words']} header"
        )
        print(
            f"simulation: {result['seconds']:.2f} s, {result['cycles'] / max(result['seconds'], 1e-9):,.0f} "
            f"cycles/s (compiled harness{', ' + args.netlist + ' netlist' if args.netlist else ''})"
        )
        if args.waves is not None:
            waves = args.waves.resolve()
            print(f"waveforms: {waves} ({waves.stat().st_size / 2**20:.1f} MiB)")
    all_equal = _print_agreement(run.outputs, golden, labels, args.classes)
    images, cycles = len(pixels), run.cycles
    kind = "simulated, RUN commands" if run.measured else "estimate: MAC-array busy cycles"
    per_image = cycles / images
    print(f"cycles per image: {per_image:.1f} ({kind})")
    print(f"MAC-array utilization: {100 * (run.utilization or 0):.1f} % (useful MACs / (PE*SIMD*cycles))")
    print(f"images per second at {CLOCK_HZ // 1_000_000} MHz: {CLOCK_HZ / per_image if per_image else 0:.0f}")
    return 0 if all_equal else 1
