"""The tile's Engine alone, in Amaranth's simulator: beats with their weight and input rows in, each
output fold's accumulators (plus bias) or threshold codes out, against a Python model of the engine's
contract (``acc = (first ? 0 : double ? 2 acc : acc) + (neg ? -d : d)``, then ``Σ [acc + bias ≥ T_t]``),
under idle input and back-pressure."""

import random

import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator

from lowbit.hw.tile.config import ACT_BINARY, ACT_TERNARY, ACT_UINT
from lowbit.hw.tile.engine import Engine
from lowbit.hw.tile.memories import record_field_bits, shape_depth
from lowbit.sw.protocol import WORD_BITS, Family, TileGeometry

GEOMETRY = TileGeometry(
    Family.POPCOUNT,
    2,
    8,
    max_in_features=32,
    max_out_features=8,
    max_weight_rows=64,
    max_input_bits=4,
    max_thresholds=3,
    acc_width=16,
)
MASK = 2**WORD_BITS - 1


class Bench(Elaboratable):
    """The engine with threshold memories holding ``records[c][o_fold]`` (lists of signed words)."""

    def __init__(self, geometry, records):
        self.engine = Engine(geometry)
        self.geometry, self.records = geometry, records

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = engine = self.engine
        shape, depth = shape_depth(self.geometry, "thresholds")
        for c, channel in enumerate(self.records):
            # Each field of a record is kept to acc_width bits (memories.record_field_bits).
            bits = record_field_bits(self.geometry)
            init = [sum((word & (2**bits - 1)) << (bits * w) for w, word in enumerate(record)) for record in channel]
            m.submodules[f"thresholds{c}"] = mem = Memory(shape=shape, depth=depth, init=init)
            wiring.connect(m, engine.t_rd[c], mem.read_port())
        return m


def taps(nz, sign, n):
    return [(-1 if (sign >> t) & 1 else 1) if (nz >> t) & 1 else 0 for t in range(n)]


def dot(g, act_mode, inputs, plane, weights, c, weight_plane_mode):
    """The array's product of channel ``c`` for one beat."""
    n = g.simd
    low, high = inputs & (2**n - 1), (inputs >> n) & (2**n - 1)
    if act_mode == ACT_BINARY:
        a = taps(2**n - 1, ~low & (2**n - 1), n)
    elif act_mode == ACT_TERNARY:
        a = taps(low, high, n)
    else:
        a = taps((inputs >> (plane * n)) & (2**n - 1), 0, n)
    w_nz = (weights >> (2 * n * c)) & (2**n - 1)
    w_sign = 0 if weight_plane_mode else (weights >> (2 * n * c + n)) & (2**n - 1)
    return sum(x * y for x, y in zip(a, taps(w_nz, w_sign, n)))


def wrap(value, bits):
    value &= 2**bits - 1
    return value - 2**bits if value >> (bits - 1) else value


def case(layer, ifolds, ofolds, planes, seed):
    """Beats (as the sequencer walks a vector, twice), threshold records and the expected folds."""
    g = GEOMETRY
    rng = random.Random(seed)
    records = []
    for _ in range(g.pe):
        channel = []
        for _ in range(g.max_out_folds):
            thresholds = sorted(rng.randrange(-40, 40) for _ in range(g.max_thresholds))
            descending = rng.randrange(2)
            channel.append([rng.randrange(-20, 20), descending] + (thresholds[::-1] if descending else thresholds))
        records.append(channel)
    beats, expected = [], []
    acc = [0] * g.pe
    for _ in range(2):
        for of in range(ofolds):
            for p in range(planes):
                for fi in range(ifolds):
                    beat = {
                        "first": int(p == 0 and fi == 0),
                        "last": int(p == planes - 1 and fi == ifolds - 1),
                        "double": int(p != 0 and fi == 0),
                        "neg": int(layer["weight_plane_mode"] and p == 0),
                        "o_fold": of,
                        "plane": p,
                    }
                    weights = rng.getrandbits(g.weight_row_words * WORD_BITS)
                    inputs = rng.getrandbits(g.max_input_row_words * WORD_BITS)
                    beats.append((beat, weights, inputs))
                    for c in range(g.pe):
                        d = dot(g, layer["act_mode"], inputs, p, weights, c, layer["weight_plane_mode"])
                        base = 0 if beat["first"] else 2 * acc[c] if beat["double"] else acc[c]
                        acc[c] = wrap(base + (-d if beat["neg"] else d), g.acc_width)
            totals = [wrap(acc[c] + records[c][of][0], g.acc_width) for c in range(g.pe)]
            if layer["last_layer"]:
                expected.append(totals)
            else:
                codes = []
                for c in range(g.pe):
                    bias, descending, *ts = records[c][of]
                    ts = ts[: layer["thresholds"]]
                    codes.append(sum((totals[c] <= t) if descending else (totals[c] >= t) for t in ts))
                expected.append(codes)
    return beats, records, expected


def run(layer, beats, records, count, ready_pattern, valid_pattern):
    bench = Bench(GEOMETRY, records)
    engine = bench.engine
    got = []

    async def source(ctx):
        for field, value in layer.items():
            ctx.set(engine.layer[field], value)
        k = 0
        for beat, weights, inputs in beats:
            while not valid_pattern[k % len(valid_pattern)]:
                ctx.set(engine.i.valid, 0)
                await ctx.tick()
                k += 1
            ctx.set(engine.i.payload, beat)
            ctx.set(engine.weight_row, weights)
            ctx.set(engine.input_row, inputs)
            ctx.set(engine.i.valid, 1)
            await ctx.tick().until(engine.i.ready)
            k += 1
        ctx.set(engine.i.valid, 0)

    async def sink(ctx):
        cycle = 0
        while len(got) < count:
            assert cycle < 50 * len(beats) + 200, f"{len(got)} of {count} folds"
            ctx.set(engine.o.ready, ready_pattern[cycle % len(ready_pattern)])
            _, _, fold, valid, ready = await ctx.tick().sample(engine.o.payload, engine.o.valid, engine.o.ready)
            cycle += 1
            if valid and ready:
                got.append(list(fold.acc) if layer["last_layer"] else list(fold.codes))
        got.append(ctx.get(engine.mac_beats))

    sim = Simulator(bench)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    return got[:-1], got[-1]


LAYERS = {
    # name: (layer fields, ifolds, ofolds, planes)
    "binary-last": ({"act_mode": ACT_BINARY, "weight_plane_mode": 0, "last_layer": 1, "thresholds": 0}, 3, 4, 1),
    "ternary-hidden": ({"act_mode": ACT_TERNARY, "weight_plane_mode": 0, "last_layer": 0, "thresholds": 3}, 2, 3, 1),
    "uint-hidden": ({"act_mode": ACT_UINT, "weight_plane_mode": 0, "last_layer": 0, "thresholds": 2}, 2, 2, 4),
    "int-weights-last": ({"act_mode": ACT_BINARY, "weight_plane_mode": 1, "last_layer": 1, "thresholds": 0}, 4, 2, 3),
}
FLOWS = {"steady": ((1,), (1,)), "stalls": ((1, 0, 0, 1, 1), (1, 1, 0))}


@pytest.mark.parametrize("flow", FLOWS)
@pytest.mark.parametrize("name", LAYERS)
def test_folds(name, flow):
    layer, ifolds, ofolds, planes = LAYERS[name]
    beats, records, expected = case(layer, ifolds, ofolds, planes, seed=name)
    got, mac_beats = run(layer, beats, records, len(expected), *FLOWS[flow])
    assert got == expected
    assert mac_beats == len(beats)
