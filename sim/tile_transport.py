"""The tile in simulation: whole-model runs of the driver, and scripts of commands, against the Verilog of
:class:`lowbit.hw.tile.tile.Tile` in Verilator's compiled harness.

- :func:`run_model_on_tile` runs a model file through the driver on the tile in the compiled harness
  (:mod:`lowbit.sim.harness`), and returns the outputs and what it measured.
- :func:`run_script_on_tile` runs a script of words, resets and expected responses on it (protocol
  errors, a reset in the middle of a command).
- :func:`geometry_to_json` / :func:`geometry_from_json`: a :class:`TileGeometry` for a bench's arguments.
"""

import dataclasses
import functools
import json

import numpy as np

from lowbit.sw.host import TransportError
from lowbit.sw.kinds import Family
from lowbit.sw.protocol import RUN_OPCODES, TileGeometry

__all__ = [
    "geometry_to_json",
    "geometry_from_json",
    "check_sim_options",
    "run_model_on_tile",
    "run_script_on_tile",
    "tile_library",
]


# --- geometry -------------------------------------------------------------------------------------------


def geometry_to_json(geometry):
    fields = dataclasses.asdict(geometry)
    fields["family"] = geometry.family.name
    return json.dumps(fields, sort_keys=True)


def geometry_from_json(text):
    fields = json.loads(text)
    fields["family"] = Family[fields["family"]]
    return TileGeometry(**fields)


# --- whole models on the simulated tile -----------------------------------------------------------------


RUNS = tuple(opcode.name for opcode in RUN_OPCODES)  # as the command log names them


def _resident_figures(interface, configs, geometry):
    """The figures of a resident run: one entry, the whole model (its layers never leave the tile)."""
    entries = [e for e in interface.log if e["tag"] == "model"]
    runs = [{"batch": e["batch"], "cycles": e["end_cycle"] - e["start_cycle"]} for e in entries if e["opcode"] in RUNS]
    per_vector = sum(geometry.cycles_per_vector(config) for config in configs)
    return [
        {
            "runs": runs,
            "run_cycles": sum(r["cycles"] for r in runs),
            "load_cycles": sum(e["end_cycle"] - e["start_cycle"] for e in entries if e["opcode"] not in RUNS),
            "busy_cycles": sum(r["batch"] for r in runs) * per_vector,
        }
    ]


def _layer_figures(interface, configs, geometry):
    layers = []
    for index, config in enumerate(configs):
        entries = [e for e in interface.log if e["tag"] == index]
        runs = [
            {"batch": e["batch"], "cycles": e["end_cycle"] - e["start_cycle"]} for e in entries if e["opcode"] == "RUN"
        ]
        # A layer larger than the tile runs in parts (driver.output_parts), each over the whole batch;
        # the parts' folds add up to the layer's.
        parts = max(1, sum(e["opcode"] == "CONFIGURE" for e in entries))
        layers.append(
            {
                "runs": runs,
                "run_cycles": sum(r["cycles"] for r in runs),
                "load_cycles": sum(e["end_cycle"] - e["start_cycle"] for e in entries if e["opcode"] != "RUN"),
                "busy_cycles": sum(r["batch"] for r in runs) // parts * geometry.cycles_per_vector(config),
            }
        )
    return layers


@functools.lru_cache(maxsize=8)
def _tile_verilog(geometry):
    """``Tile(geometry)``'s Verilog, elaborated once per process (a large tile takes minutes)."""
    from lowbit.hw.tile.tile import Tile
    from lowbit.sim.verilator import verilog_of

    return verilog_of(Tile(geometry), "tile")


def check_sim_options(waves=None, netlist=None):
    """The simulation options checked before anything runs: ``waves`` a ``.vcd`` / ``.fst`` file (its
    suffix returned, or None), ``netlist`` one of :data:`lowbit.sim.gates.GATE_FAMILIES`, not both."""
    from lowbit.sim.gates import check_family
    from lowbit.sim.harness import wave_format

    if netlist is not None:
        check_family(netlist)
        if waves is not None:
            raise ValueError("waves are written for the RTL tile, not a netlist")
    return None if waves is None else wave_format(waves)


def tile_library(geometry, *, waves=None, quiet=False):
    """The compiled harness (:func:`lowbit.sim.harness.build_harness`) of ``Tile(geometry)``'s Verilog;
    ``waves``: ``".vcd"`` / ``".fst"`` for a build that writes waveforms. Amaranth's Verilog uses the clock
    only at its edges: an edge without new inputs runs the clocked logic alone (``edge_only``)."""
    from lowbit.sim.harness import build_harness

    return build_harness(_tile_verilog(geometry), "tile", mac_beats=True, edge_only=True, waves=waves, quiet=quiet)


def run_model_on_tile(
    model_path,
    pixels,
    geometry,
    *,
    idle=False,
    backpressure=False,
    seed=20261123,
    max_batch=None,
    mode="auto",
    classes=False,
    progress=False,
    waves=None,
    netlist=None,
    quiet=False,
):
    """Run the model file ``model_path`` on digits ``pixels`` ``(batch, 64)`` on the Verilog of
    ``Tile(geometry)`` in Verilator, through the driver (:func:`lowbit.sw.host.run_model`) over the
    compiled harness (:class:`lowbit.sim.harness.HarnessTransport`; built once per design, a line on
    standard error says so unless ``quiet``); return the measurements as a dict:

    ``outputs`` (last-layer accumulators, a list per image; with ``classes``, each image's class index, which
    a resident model's tile answers to CLASSIFY), ``cycles`` (the whole run, loads included),
    ``layers`` (per layer: ``run_cycles``, ``runs`` (a list of ``{"batch", "cycles"}``), ``load_cycles``,
    ``busy_cycles`` the MAC array's busy-cycle estimate), ``run_cycles``, ``busy_cycles``, ``mac_beats`` (the
    tile's count of working MAC-array cycles), ``stream`` (words sent per command kind, header and payload
    words; words received), ``geometry``, ``idle``, ``backpressure``, ``seed``, ``mode``, ``seconds`` (the
    simulation's wall time, the build excluded).
    ``max_batch`` bounds the vectors per RUN; ``mode`` is the driver's (:data:`lowbit.sw.host.MODES`; the
    result's ``mode`` says which ran: ``"resident"`` has one entry in ``layers``, the whole model);
    ``progress`` draws a bar on standard error; ``waves`` names a ``.vcd`` or ``.fst`` file to write every
    signal of the run to (a build with tracing, slower); ``netlist`` (``"ice40"``, ``"ecp5"``) runs
    the tile's netlist of that family's vendor cells instead of its RTL (:mod:`lowbit.sim.gates`). Comparing
    the outputs with the golden model is the caller's job (so a mismatch still yields the figures).
    Raises :class:`lowbit.sw.host.TransportError` if the tile stopped answering and
    :class:`lowbit.sw.host.TileError` if it refused a command.
    """
    import asyncio
    import time

    from lowbit.sim.harness import HarnessTransport
    from lowbit.sw.host import TileInterface, resident_mode, run_model, tile_layers
    from lowbit.sw.host.plan import resident_layers
    from lowbit.sw.model.file import load_model

    model = load_model(model_path)
    pixels = np.asarray(pixels)
    suffix = check_sim_options(waves, netlist)
    if netlist is not None:
        from lowbit.sim.gates import gate_library

        library = gate_library(geometry, netlist, quiet=quiet)
    else:
        library = tile_library(geometry, waves=suffix, quiet=quiet)
    configs = tile_layers(model, geometry)
    resident = resident_mode(configs, geometry, mode, model=model)
    if resident:  # the layers as the tile runs them (a CNN's walks)
        configs = resident_layers(model, geometry, configs)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(configs) * len(pixels), desc="tile", unit="vector", leave=False)

    def advance(layer, done, batch):
        if bar is not None:  # a convolution's batch is its windows: count images
            bar.n = layer * len(pixels) + done * len(pixels) // batch
            bar.refresh()

    async def session(transport):
        interface = TileInterface(transport)
        identified = await interface.identify()
        if identified != geometry:
            raise TransportError(f"IDENTIFY gave {identified}, the tile was built as {geometry}")
        start = transport.cycle
        outputs = await run_model(interface, model, pixels, advance, max_batch=max_batch, mode=mode, classes=classes)
        return interface, outputs, transport.cycle - start

    transport = HarnessTransport(library, idle=idle, backpressure=backpressure, seed=seed, waves=waves)
    started = time.perf_counter()
    try:
        interface, outputs, cycles = asyncio.run(session(transport))
        mac_beats = transport.harness.mac_beats()
    finally:
        transport.harness.close()
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - started
    layers = (_resident_figures if resident else _layer_figures)(interface, configs, geometry)
    return {
        "outputs": np.asarray(outputs).tolist(),
        "cycles": cycles,
        "run_cycles": sum(layer["run_cycles"] for layer in layers),
        "busy_cycles": sum(layer["busy_cycles"] for layer in layers),
        "mac_beats": mac_beats,
        "layers": layers,
        "stream": interface.stats.as_dict(),
        "geometry": json.loads(geometry_to_json(geometry)),
        "idle": idle,
        "backpressure": backpressure,
        "seed": seed,
        "mode": "resident" if resident else "streaming",
        "seconds": seconds,
    }


def run_script_on_tile(geometry, steps, *, seed=0, idle=False, backpressure=False, timeout_cycles=100_000):
    """Run ``steps`` on ``Tile(geometry)`` in the compiled harness: ``{"send": [word, ...]}`` (queued),
    ``{"reset": cycles}`` (once the tile has taken every word sent, its reset held that long: a reset in the
    middle of a command) and ``{"expect": [word, ...]}`` (the next responses, as many as it lists). Flow
    as in :class:`~lowbit.sim.harness.HarnessTransport` (``idle`` / ``backpressure`` from ``seed``).

    Returns ``(answers, extra)``: per ``expect`` step the words the tile answered (compare them with
    ``==``), and any word it sent after the last (100 quiet cycles after it). A tile that stops answering
    raises :class:`TransportError` after ``timeout_cycles`` without a word."""
    import asyncio

    from lowbit.sim.harness import HarnessTransport

    transport = HarnessTransport(
        tile_library(geometry, quiet=True),
        idle=idle,
        backpressure=backpressure,
        seed=seed,
        timeout_cycles=timeout_cycles,
    )
    answers = []
    try:
        for step in steps:
            if "send" in step:
                asyncio.run(transport.write(step["send"]))
            elif "reset" in step:
                asyncio.run(transport.reset(step["reset"]))
            else:
                answers.append(asyncio.run(transport.read(len(step["expect"]))))
        return answers, transport.leftover()
    finally:
        asyncio.run(transport.close())
