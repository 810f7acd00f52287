"""The tile's Sequencer alone, in Amaranth's simulator: the beats of each vector, in order, with the
memories' rows beside them, under idle input and back-pressure; the input banks' double buffer."""

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from lowbit.hw.tile.memories import shape_depth
from lowbit.hw.tile.sequencer import Sequencer
from lowbit.sw.protocol import Family, TileGeometry

GEOMETRY = TileGeometry(
    Family.POPCOUNT, 2, 16, max_in_features=64, max_out_features=16, max_weight_rows=256, max_input_bits=4
)


class Bench(wiring.Component):
    """The sequencer with memories whose every row holds its own address, so the data beside a beat
    name the rows read for it."""

    def __init__(self, geometry):
        self.sequencer = Sequencer(geometry)
        self.geometry = geometry
        super().__init__({})

    def elaborate(self, platform):
        from amaranth.lib.memory import Memory

        m = Module()
        m.submodules.sequencer = seq = self.sequencer
        for name, addr in (("weights", seq.w_addr), ("inputs", seq.i_addr)):
            shape, depth = shape_depth(self.geometry, name)
            m.submodules[name] = mem = Memory(shape=shape, depth=depth, init=range(depth))
            port = mem.read_port()
            m.d.comb += [port.addr.eq(addr), port.en.eq(seq.read)]
            setattr(self, f"{name}_data", port.data)
        return m


def expected_beats(g, ifolds, ofolds, planes, weight_plane_mode, bank):
    """(first, last, double, neg, o_fold, plane, weight row, input row) of each beat of a vector."""
    beats = []
    for of in range(ofolds):
        for p in range(planes):
            for fi in range(ifolds):
                w_row = (of * planes + p) * ifolds + fi if weight_plane_mode else of * ifolds + fi
                beats.append(
                    (
                        int(p == 0 and fi == 0),
                        int(p == planes - 1 and fi == ifolds - 1),
                        int(p != 0 and fi == 0),
                        int(weight_plane_mode and p == 0),
                        of,
                        p,
                        w_row,
                        bank * g.max_in_folds + fi,
                    )
                )
    return beats


def plain_beat(beat, w, i):
    """A beat as :func:`expected_beats` lists it."""
    return (beat.first, beat.last, beat.double, beat.neg, beat.o_fold, beat.plane, w, i)


def run(layer, vectors, ready_pattern=(1,), fill_gap=0, *, geometry=GEOMETRY, total=None, beat_of=plain_beat):
    """Fill ``vectors`` banks one after the other (waiting while none is free, then ``fill_gap`` idle
    cycles), take ``total`` beats (default: ``ifolds * ofolds * planes`` a vector; ready per
    ``ready_pattern``), each as ``beat_of(beat, weight row, input row)``; return the beats, the banks
    filled and the cycle of each beat."""
    bench = Bench(geometry)
    seq = bench.sequencer
    if total is None:
        total = vectors * layer["ifolds"] * layer["ofolds"] * layer["planes"]
    beats, banks, cycles, fills = [], [], [], []

    async def source(ctx):
        for field, value in layer.items():
            ctx.set(seq.layer[field], value)
        cycle = 0
        for _ in range(vectors):
            for _ in range(fill_gap):
                await ctx.tick()
                cycle += 1
            while not ctx.get(seq.banks.free):
                await ctx.tick()
                cycle += 1
            banks.append(ctx.get(seq.banks.bank))
            ctx.set(seq.banks.filled, 1)
            await ctx.tick()
            cycle += 1
            fills.append(cycle)
            ctx.set(seq.banks.filled, 0)

    async def sink(ctx):
        cycle = 0
        while len(beats) < total:
            assert cycle < 100 * total + 100, f"{len(beats)} of {total} beats"
            ctx.set(seq.o.ready, ready_pattern[cycle % len(ready_pattern)])
            _, _, beat, w, i, valid, ready = await ctx.tick().sample(
                seq.o.payload, bench.weights_data, bench.inputs_data, seq.o.valid, seq.o.ready
            )
            cycle += 1
            if valid and ready:
                beats.append(beat_of(beat, w, i))
                cycles.append(cycle)

    sim = Simulator(bench)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    return beats, banks, cycles, fills


LAYERS = [
    {"ifolds": 1, "ofolds": 1, "planes": 1, "weight_plane_mode": 0},
    {"ifolds": 3, "ofolds": 2, "planes": 1, "weight_plane_mode": 0},
    {"ifolds": 2, "ofolds": 3, "planes": 4, "weight_plane_mode": 0},  # uint activation planes
    {"ifolds": 4, "ofolds": 2, "planes": 3, "weight_plane_mode": 1},  # int weight planes
]


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: "-".join(map(str, layer.values())))
@pytest.mark.parametrize("ready_pattern", [(1,), (1, 0, 1, 1, 0, 0)], ids=["ready", "backpressure"])
def test_beats(layer, ready_pattern):
    vectors = 3
    beats, banks, _, _ = run(layer, vectors, ready_pattern)
    assert banks == [0, 1, 0]
    expected = [beat for bank in banks for beat in expected_beats(GEOMETRY, *layer.values(), bank)]
    assert beats == expected


def test_full_rate_and_latency():
    """Always ready: a vector's beats leave one per cycle, the first three cycles after ``filled``; with
    both banks full, the next vector follows its predecessor after one idle cycle."""
    layer = LAYERS[2]
    per_vector = layer["ifolds"] * layer["ofolds"] * layer["planes"]
    beats, banks, cycles, fills = run(layer, 3)
    assert cycles[0] == fills[0] + 3
    for v in range(3):
        vector = cycles[v * per_vector : (v + 1) * per_vector]
        assert vector == list(range(vector[0], vector[0] + per_vector))
    assert cycles[per_vector] == cycles[per_vector - 1] + 2


def test_banks_fill_while_the_walk_runs():
    """Idle cycles between fills: the walk waits for the next vector and reads the right bank."""
    layer = LAYERS[1]
    beats, banks, _, _ = run(layer, 4, ready_pattern=(1, 1, 0), fill_gap=7)
    assert banks == [0, 1, 0, 1]
    assert beats == [beat for bank in banks for beat in expected_beats(GEOMETRY, *layer.values(), bank)]
