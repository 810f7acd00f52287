"""A model on a tile: :func:`default_geometry`, :func:`check_fit`, :func:`tile_run`, :func:`run_on_tile`, on the
reference tile in Python, the Verilog tile in Verilator or a board."""

import time
from dataclasses import dataclass
from pathlib import Path

from lowbit.sw.api._common import _check_int, _run
from lowbit.sw.api.models import _model
from lowbit.sw.protocol import MODES  # noqa: F401  (re-exported: how a model runs on a tile, ``mode``)

#: The tile backends of :func:`tile_run`.
BACKENDS = ("model", "sim", "serial")
#: The options of :func:`tile_run` and the backends that use each; any other backend refuses it.
TILE_OPTIONS = {
    "geometry": ("model", "sim"),
    "pe": ("model", "sim"),
    "simd": ("model", "sim"),
    "max_batch": ("model", "sim", "serial"),
    "mode": ("model", "sim", "serial"),
    "idle": ("sim",),
    "backpressure": ("sim",),
    "seed": ("sim",),
    "waves": ("sim",),
    "netlist": ("sim",),
    "port": ("serial",),
    "baud": ("serial",),
    "timeout": ("serial",),
    "retries": ("serial",),
    "classes": ("model", "sim", "serial"),
}
#: The seed of the simulation's random idle cycles and back-pressure when none is given.
SIM_SEED = 20261123


def default_geometry(model, pe=None, simd=None, *, resident=False):
    """A :class:`lowbit.sw.protocol.TileGeometry` whose tile runs every layer of ``model`` (``pe`` x ``simd``,
    default per family; ``resident``: one that also holds the whole model, LOAD_MODEL); raises
    :class:`lowbit.sw.protocol.ProtocolError` for a model no tile runs (a float model, or one that no one
    tile family runs)."""
    from lowbit.sw.host import default_geometry as pick

    _check_int("pe", pe, 1, optional=True)
    _check_int("simd", simd, 1, optional=True)
    return pick(_model(model), pe, simd, resident=bool(resident))


def _check_mode(mode):
    from lowbit.sw.host.runner import check_mode

    return check_mode("auto" if mode is None else mode)


def check_fit(model, geometry, *, tile="the tile", mode="auto"):
    """The :class:`LayerConfig` of each layer of ``model`` on a tile of ``geometry``; raises
    :class:`ProtocolError` ``"the model does not fit <tile>: layer ..."`` when the tile cannot run it, or
    (``mode="resident"``) cannot hold the whole model (:data:`lowbit.sw.protocol.MODES`)."""
    from lowbit.sw.host import resident_mode, tile_layers
    from lowbit.sw.protocol import ProtocolError

    mode = _check_mode(mode)
    model = _model(model)
    try:
        configs = tile_layers(model, geometry)
        resident_mode(configs, geometry, mode, model=model)
    except ProtocolError as error:
        raise ProtocolError(f"the model does not fit {tile}: {error}") from None
    return configs


def run_mode(configs, geometry, mode="auto", *, model=None):
    """How :func:`tile_run` runs the layers ``configs`` (:func:`check_fit`) of ``model`` on a tile of
    ``geometry`` in ``mode`` (``"auto"``, ``"resident"``, ``"streaming"``): ``"resident"`` or ``"streaming"``
    (always for a model with convolutions)."""
    from lowbit.sw.host import resident_mode

    model = None if model is None else _model(model)
    return "resident" if resident_mode(configs, geometry, _check_mode(mode), model=model) else "streaming"


@dataclass
class TileRun:
    """What :func:`tile_run` gives: ``outputs`` (last-layer accumulators, ``(batch, classes)`` ``int64``; with
    ``classes``, each image's class index, ``(batch,)``),
    the tile's ``geometry``, the layers' ``configs``, ``cycles`` (sim: the simulated cycles of the RUN
    commands; model: the MAC array's busy cycles, an estimate without the streaming of words; serial:
    ``None``), whether they were ``measured`` (simulated), ``simulation`` (sim: everything the bench
    measured, see :func:`lowbit.sim.tile_transport.run_model_on_tile`), ``link`` (serial: the link's
    :class:`lowbit.sw.host.link.LinkStats`), ``seconds`` (wall clock of the run) and ``mode``, how the
    model ran: ``"resident"`` (loaded whole, LOAD_MODEL) or ``"streaming"`` (a layer at a time)."""

    backend: str
    outputs: object
    geometry: object
    configs: list
    cycles: int | None
    measured: bool
    seconds: float
    simulation: dict | None = None
    link: object = None
    mode: str | None = None
    macs_per_image: int | None = None

    @property
    def useful_macs(self):
        """MACs of the model on the whole batch: ``macs_per_image`` (:func:`lowbit.sw.model.report.model_cost`:
        ``in_features * out_features`` per dense layer, times the output positions of a convolution) per image."""
        if self.macs_per_image is not None:
            return len(self.outputs) * self.macs_per_image
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


def _drive(interface, model, pixels, progress, max_batch, desc, mode, classes=False):
    """:func:`lowbit.sw.host.run_model` on ``interface``, with a progress bar (one step per layer and
    vector) on standard error."""
    import sys

    from lowbit.sw.host import run_model

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(model.layers) * len(pixels), desc=desc, unit="vector", leave=False, file=sys.stderr)

    def update(layer, done, batch):
        if bar is not None:  # a convolution's batch is its windows: count images
            bar.n = layer * len(pixels) + done * len(pixels) // batch
            bar.refresh()

    try:
        return _run(run_model(interface, model, pixels, update, max_batch=max_batch, mode=mode, classes=classes))
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
    mode=None,
    idle=False,
    backpressure=False,
    seed=None,
    waves=None,
    netlist=None,
    port=None,
    baud=None,
    timeout=None,
    retries=None,
    progress=False,
    on_geometry=None,
    classes=False,
):
    """Run ``model`` on ``pixels`` through the host driver on a tile and return a :class:`TileRun`.

    ``backend``: ``"model"`` the reference tile in Python (:class:`lowbit.sim.reference.ModelTile`),
    ``"sim"`` the Verilog tile in Verilator (builds it on first use: about a minute), ``"serial"`` a board
    on the serial ``port`` (``baud``, ``timeout`` seconds, ``retries``; its tile's geometry comes from the
    board). ``geometry`` (or ``pe`` x ``simd`` for :func:`default_geometry`), ``max_batch`` (vectors per RUN
    command), ``mode`` (``"auto"``, the default, runs the model resident where the tile
    holds it whole, else a layer at a time; ``"resident"`` or ``"streaming"`` choose; ``"resident"`` on the
    model backend without ``geometry`` takes :func:`default_geometry` ``(resident=True)``), ``idle`` /
    ``backpressure`` (random flow on the simulated tile's streams, from ``seed``), ``waves`` (the simulated
    tile's signals written to this ``.vcd`` or ``.fst`` file; a build with tracing), ``netlist``
    (``"ice40"`` or ``"ecp5"``: the tile synthesized for that family and simulated as a netlist of its
    vendor cells, :mod:`lowbit.sim.gates`): an option the backend does not use (:data:`TILE_OPTIONS`) is a
    :class:`ValueError`. ``classes``: the outputs are each image's class index
    (:func:`lowbit.sw.golden.class_index`), which a tile holding the model resident answers itself
    (CLASSIFY: one word per image on the link instead of the last layer's accumulators).
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
            mode=mode,
            idle=idle,
            backpressure=backpressure,
            seed=seed,
            waves=waves,
            netlist=netlist,
            port=port,
            baud=baud,
            timeout=timeout,
            retries=retries,
            classes=classes,
        ).items()
        if value is not None and value is not False
    }
    _check_tile_options(backend, given)
    _check_int("max_batch", max_batch, 1, optional=True)
    if waves is not None or netlist is not None:
        from lowbit.sim.tile_transport import check_sim_options

        check_sim_options(waves, netlist)
    mode = _check_mode(mode)
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
            mode=mode,
            progress=progress,
            on_geometry=on_geometry,
            classes=classes,
        )
    if geometry is not None and (pe is not None or simd is not None):
        raise ValueError("give geometry or pe / simd, not both")
    geometry = geometry or default_geometry(model, pe, simd, resident=mode == "resident")
    configs = check_fit(model, geometry, mode=mode)
    if on_geometry is not None:
        on_geometry(geometry)
    start = time.perf_counter()
    if backend == "model":
        from lowbit.sim.reference import ModelTile
        from lowbit.sw.host import TileInterface

        tile = ModelTile(geometry)
        interface = TileInterface(tile, geometry)
        outputs = _drive(interface, model, pixels, progress, max_batch, "model tile", mode, classes)
        return TileRun(
            backend,
            np.asarray(outputs, dtype=np.int64),
            geometry,
            configs,
            tile.busy_cycles,
            False,
            time.perf_counter() - start,
            mode=run_mode(configs, geometry, mode, model=model),
            macs_per_image=_macs(model),
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
        mode=mode,
        classes=classes,
        waves=None if waves is None else Path(waves).resolve(),
        netlist=netlist,
    )
    outputs = np.asarray(result["outputs"], dtype=np.int64).reshape((len(pixels),) if classes else (len(pixels), -1))
    return TileRun(
        backend,
        outputs,
        geometry,
        configs,
        result["run_cycles"],
        True,
        time.perf_counter() - start,
        simulation=result,
        mode=result["mode"],
        macs_per_image=_macs(model),
    )


def _macs(model):
    """MACs of ``model`` per image (:func:`lowbit.sw.model.report.model_cost`)."""
    from lowbit.sw.model.report import model_cost

    return model_cost(model).total_macs


def _serial_run(model, pixels, *, port, baud, timeout, retries, max_batch, mode, progress, on_geometry, classes):
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
        configs = check_fit(model, geometry, tile="the board's tile", mode=mode)
        started = time.perf_counter()
        try:
            outputs = _drive(interface, model, pixels, progress, max_batch, "board", mode, classes)
        except (TransportError, TileError) as error:
            raise TransportError(f"{port}: {error}") from error
        seconds = time.perf_counter() - started
    return TileRun(
        "serial",
        np.asarray(outputs, dtype=np.int64),
        geometry,
        configs,
        None,
        False,
        seconds,
        link=link.stats,
        mode=run_mode(configs, geometry, mode, model=model),
        macs_per_image=_macs(model),
    )


def run_on_tile(model, pixels, *, backend="model", geometry=None, **options):
    """The last-layer accumulators ``(batch, classes)`` (``int64``) of ``model`` on ``pixels`` run on a tile:
    :func:`tile_run`'s ``outputs`` (same options). They equal :func:`golden`'s."""
    return tile_run(model, pixels, backend=backend, geometry=geometry, **options).outputs
