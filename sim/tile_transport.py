"""The tile in simulation: a cocotb :class:`~lowbit.sw.host.Transport` on its streams, and whole-model
runs of the driver against the Verilog of :class:`lowbit.hw.tile.tile.Tile` in Verilator.

- :class:`CocotbTransport` drives the tile's ``i`` stream with the command words and collects the ``o``
  stream in the background (so a long RUN never deadlocks on a full output), with optional random idle
  cycles on the input and back-pressure on the output, and counts clock cycles.
- :func:`run_model_on_tile` runs a model file on the tile through :func:`lowbit.sim.verilator.run_bench`
  and the bench :mod:`lowbit.sim.benches.tile_model`, and returns what the bench measured.
- :func:`default_geometry` picks a :class:`TileGeometry` (family, ``PE`` x ``SIMD``, memory sizes,
  accumulator width) that runs a model.
"""

import dataclasses
import hashlib
import json
import math
from pathlib import Path

import numpy as np

from lowbit.sw.host import Transport, TransportError, layer_config
from lowbit.sw.kinds import Family, family_for, nhot_terms_needed
from lowbit.sw.protocol import ProtocolError, TileGeometry

__all__ = [
    "CocotbTransport",
    "default_geometry",
    "geometry_to_json",
    "geometry_from_json",
    "run_model_on_tile",
    "DEFAULT_ARRAY",
]

#: (PE, SIMD) of :func:`default_geometry` per family: the n-hot array's shift-add lanes are larger.
DEFAULT_ARRAY = {Family.POPCOUNT: (8, 16), Family.NHOT: (4, 8)}
#: The most terms per weight an n-hot tile is generated with (:class:`TileGeometry` checks it too).
MAX_NHOT_TERMS = 3


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


def _signed_bits(lo, hi):
    """Bits of the smallest two's-complement integer holding ``lo .. hi``."""
    return (
        max(
            int(lo).bit_length() if lo >= 0 else (~int(lo)).bit_length(),
            int(hi).bit_length() if hi >= 0 else (~int(hi)).bit_length(),
        )
        + 1
    )


def default_geometry(model, pe=None, simd=None):
    """A :class:`TileGeometry` that runs every layer of ``model``: the family its layers need, ``pe`` x
    ``simd`` (default :data:`DEFAULT_ARRAY`), memories sized to the largest layer, the accumulator
    width its accumulators and thresholds need, the most thresholds and input bits of any layer.
    Raises :class:`ProtocolError` naming a layer no family runs, or a model that needs both families."""
    configs, families = [], set()
    for index, layer in enumerate(model.layers):
        try:
            config = layer_config(layer)
        except ProtocolError as error:
            raise ProtocolError(f"layer {index}: {error}") from None
        family = family_for(config.weight_kind, config.input_kind)
        if family is None:
            raise ProtocolError(
                f"layer {index}: no tile runs {layer.weight_kind} weights against {layer.input_kind} input"
            )
        configs.append(config)
        families.add(family)
    if len(families) != 1:
        raise ProtocolError("the model needs both a popcount and an n-hot tile; one tile runs one family")
    family = families.pop()
    default_pe, default_simd = DEFAULT_ARRAY[family]
    pe, simd = pe or default_pe, simd or default_simd
    width = 2
    for layer, config in zip(model.layers, configs):
        lo, hi = layer.accumulator_range()
        lo, hi = (lo.min(), hi.max()) if config.last else (lo.min() - 1, hi.max() + 1)
        width = max(width, _signed_bits(lo, hi))
    n_terms = 0
    if family == Family.NHOT:
        terms = [nhot_terms_needed(c.weight_kind, c.weight_bits, c.n_terms) for c in configs]
        n_terms = max(terms)
        if n_terms > MAX_NHOT_TERMS:
            index = terms.index(n_terms)
            raise ProtocolError(
                f"layer {index}: its weights need {n_terms} terms, an n-hot tile has at most {MAX_NHOT_TERMS}"
            )
    uint_bits = [c.input_bits for c in configs if c.input_kind == "uint"]
    probe = TileGeometry(family, pe, simd, 1, 1, 1, n_terms=n_terms)
    return TileGeometry(
        family,
        pe,
        simd,
        max_in_features=max(c.in_features for c in configs),
        max_out_features=max(c.out_features for c in configs),
        max_weight_rows=max(probe.weight_rows(c) for c in configs),
        acc_width=min(width, 32),
        max_thresholds=max(1, max(c.thresholds for c in configs)),
        max_input_bits=max(uint_bits, default=1),
        n_terms=n_terms,
    )


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
    progress=False,
    name=None,
    quiet=True,
):
    """Run the model file ``model_path`` on digits ``pixels`` ``(batch, 64)`` on the Verilog of
    ``Tile(geometry)`` in Verilator, through the driver (:func:`lowbit.sw.host.run_model`) over a
    :class:`CocotbTransport`; return the bench's measurements as a dict:

    ``outputs`` (last-layer accumulators, a list per image), ``cycles`` (the whole run, loads included),
    ``layers`` (per layer: ``run_cycles``, ``runs`` (a list of ``{"batch", "cycles"}``), ``load_cycles``,
    ``busy_cycles`` the MAC array's busy-cycle estimate), ``run_cycles``, ``busy_cycles``, ``mac_beats`` (the
    tile's count of working MAC-array cycles, ``None`` without that port), ``stream``
    (words sent per command kind, header and payload words; words received), ``geometry``, ``seed``.
    ``max_batch`` bounds the vectors per RUN; ``progress`` draws a bar on standard error.
    Raises :class:`lowbit.sim.verilator.BenchFailure` if the tile refused a command or stopped answering.
    """
    from lowbit.hw.tile.tile import Tile
    from lowbit.sim.verilator import run_bench
    from lowbit.sw.paths import build_dir

    pixels = np.asarray(pixels)
    model_path = Path(model_path).resolve()  # the bench runs in its own folder
    geometry_text = geometry_to_json(geometry)
    key = hashlib.sha256(geometry_text.encode() + pixels.tobytes() + str(model_path).encode()).hexdigest()[:10]
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
        "LOWBIT_PROGRESS": int(progress),
    }
    run_bench(
        Tile(geometry), toplevel="tile", test_module="lowbit.sim.benches.tile_model", env=env, name=name, quiet=quiet
    )
    return json.loads(output.read_text())
