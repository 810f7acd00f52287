"""The tile in simulation: a cocotb :class:`~lowbit.sw.host.Transport` on its streams, and whole-model
runs of the driver against the Verilog of :class:`lowbit.hw.tile.tile.Tile` in Verilator.

- :class:`CocotbTransport` drives the tile's ``i`` stream with the command words and collects the ``o``
  stream in the background (so a long RUN never deadlocks on a full output), with optional random idle
  cycles on the input and back-pressure on the output, and counts clock cycles.
- :func:`run_model_on_tile` runs a model file on the tile through :func:`lowbit.sim.verilator.run_bench`
  and the bench :mod:`lowbit.sim.benches.tile_model`, and returns what the bench measured.
- :func:`geometry_to_json` / :func:`geometry_from_json`: a :class:`TileGeometry` for a bench's arguments.
"""

import dataclasses
import hashlib
import json
import math
from pathlib import Path

import numpy as np

from lowbit.sw.host import Transport, TransportError
from lowbit.sw.kinds import Family
from lowbit.sw.protocol import TileGeometry

__all__ = [
    "CocotbTransport",
    "geometry_to_json",
    "geometry_from_json",
    "run_model_on_tile",
]


class CocotbTransport(Transport):
    """Words to and from a tile's ``i`` / ``o`` streams in a running cocotb simulation.

    The clock and reset must be running (:func:`lowbit.sim.benches.streams.start_clock_and_reset`).
    ``idle`` / ``backpressure`` insert random gaps on the input / hold ``o__ready`` low at random
    (:func:`~lowbit.sim.benches.streams.flow_pattern` from ``seed``). ``cycle`` counts rising clock edges
    since the transport was made. A :meth:`read` that sees no new word for ``timeout_cycles`` cycles
    raises :class:`TransportError` instead of hanging.
    """

    def __init__(self, dut, *, idle=False, backpressure=False, seed=0, timeout_cycles=200_000):
        import cocotb

        from lowbit.sim.benches.streams import StreamSink, StreamSource, flow_pattern

        self.dut = dut
        self.source = StreamSource(dut, "i", flow_pattern(idle, seed + 1))
        self.sink = StreamSink(dut, "o", flow_pattern(backpressure, seed + 2))
        self.timeout_cycles = timeout_cycles
        self.cycle = 0
        self._consumed = 0
        self._tasks = [
            cocotb.start_soon(self._count()),
            # The sink collects forever (count = inf): responses never wait for a read.
            cocotb.start_soon(self.sink.receive(math.inf)),
        ]

    async def _count(self):
        from cocotb.triggers import RisingEdge

        while True:
            await RisingEdge(self.dut.clk)
            self.cycle += 1

    async def write(self, words):
        await self.source.send([int(w) for w in words])

    async def read(self, count):
        from cocotb.triggers import RisingEdge

        waited, have = 0, len(self.sink.received)
        while len(self.sink.received) < self._consumed + count:
            await RisingEdge(self.dut.clk)
            waited = 0 if len(self.sink.received) != have else waited + 1
            have = len(self.sink.received)
            if waited > self.timeout_cycles:
                raise TransportError(
                    f"the tile sent no word for {self.timeout_cycles} cycles while "
                    f"{self._consumed + count - have} more were expected (cycle {self.cycle})"
                )
        words = self.sink.received[self._consumed : self._consumed + count]
        self._consumed += count
        return words

    async def close(self):
        for task in self._tasks:
            task.cancel()


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
    name=None,
    quiet=True,
):
    """Run the model file ``model_path`` on digits ``pixels`` ``(batch, 64)`` on the Verilog of
    ``Tile(geometry)`` in Verilator, through the driver (:func:`lowbit.sw.host.run_model`) over a
    :class:`CocotbTransport`; return the bench's measurements as a dict:

    ``outputs`` (last-layer accumulators, a list per image; with ``classes``, each image's class index, which
    a resident model's tile answers to CLASSIFY), ``cycles`` (the whole run, loads included),
    ``layers`` (per layer: ``run_cycles``, ``runs`` (a list of ``{"batch", "cycles"}``), ``load_cycles``,
    ``busy_cycles`` the MAC array's busy-cycle estimate), ``run_cycles``, ``busy_cycles``, ``mac_beats`` (the
    tile's count of working MAC-array cycles, ``None`` without that port), ``stream``
    (words sent per command kind, header and payload words; words received), ``geometry``, ``seed``.
    ``max_batch`` bounds the vectors per RUN; ``mode`` is the driver's (:data:`lowbit.sw.host.MODES`; the
    result's ``mode`` says which ran: ``"resident"`` has one entry in ``layers``, the whole model);
    ``progress`` draws a bar on standard error.
    Raises :class:`lowbit.sim.verilator.BenchFailure` if the tile refused a command or stopped answering.
    """
    from lowbit.hw.tile.tile import Tile
    from lowbit.sim.verilator import run_bench
    from lowbit.sw.paths import build_dir

    pixels = np.asarray(pixels)
    model_path = Path(model_path).resolve()  # the bench runs in its own folder
    geometry_text = geometry_to_json(geometry)
    key = hashlib.sha256(
        geometry_text.encode() + pixels.tobytes() + str(model_path).encode() + mode.encode() + bytes([classes])
    ).hexdigest()[:10]
    name = name or f"model-{key}-idle{int(idle)}-bp{int(backpressure)}-s{seed}"
    folder = build_dir("tile_runs") / name
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "pixels.npy", pixels)
    (folder / "geometry.json").write_text(geometry_text)
    output = folder / "result.json"
    output.unlink(missing_ok=True)
    env = {
        "LOWBIT_MODEL": str(model_path),
        "LOWBIT_PIXELS": folder / "pixels.npy",
        "LOWBIT_GEOMETRY": folder / "geometry.json",
        "LOWBIT_OUTPUT": output,
        "LOWBIT_IDLE": int(idle),
        "LOWBIT_BACKPRESSURE": int(backpressure),
        "LOWBIT_SEED": seed,
        "LOWBIT_MAX_BATCH": max_batch or 0,
        "LOWBIT_MODE": mode,
        "LOWBIT_CLASSES": int(classes),
        "LOWBIT_PROGRESS": int(progress),
    }
    run_bench(
        Tile(geometry), toplevel="tile", test_module="lowbit.sim.benches.tile_model", env=env, name=name, quiet=quiet
    )
    return json.loads(output.read_text())
