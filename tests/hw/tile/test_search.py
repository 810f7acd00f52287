"""The searching threshold unit in Amaranth's simulator: thresholds written as LOAD_THRESHOLDS writes them
(ordered, slot by slot), folds searched under idle input and back-pressure, every code equal to the golden
multithreshold's count; ties, the thresholds' own values and their neighbours, the accumulator's extremes,
layers with fewer thresholds than the tile holds and falling channels included."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from lowbit.hw.tile.memories import shape_depth
from lowbit.hw.tile.search import ThresholdSearch
from lowbit.sim.reference import search_thresholds
from lowbit.sw.golden.units import multithreshold
from lowbit.sw.host.packing import order_thresholds
from lowbit.sw.protocol import SEARCH_FROM, Family, TileGeometry

from ..streamsim import simulate

SEED = 20261206


def geometry(max_thresholds, pe, out_features, acc_width):
    return TileGeometry(
        Family.NHOT, pe, 8, 16, out_features, 16, acc_width=acc_width, max_thresholds=max_thresholds, n_terms=2
    )


def case(g, n, seed):
    """Per fold and channel: ordered thresholds (``n`` of them, with ties), a direction; and the folds to
    search with their accumulators (corner cases first, then random)."""
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (g.acc_width - 1)), (1 << (g.acc_width - 1)) - 1
    folds = g.max_out_folds
    thresholds = rng.integers(lo // 4, hi // 4, size=(folds, g.pe, n))
    thresholds[:, :, n // 2 :] = np.maximum(thresholds[:, :, n // 2 :], thresholds[:, :, :1])  # ties
    descending = rng.integers(0, 2, size=(folds, g.pe))
    ordered = np.stack([order_thresholds(thresholds[f], descending[f]) for f in range(folds)])
    searches_ = []
    for f in range(folds):
        values = sorted({lo, lo + 1, hi - 1, hi, 0} | {int(v) + d for v in ordered[f].ravel() for d in (-1, 0, 1)})
        values = [v for v in values if lo <= v <= hi]
        for start in range(0, len(values), g.pe):
            acc = (values[start : start + g.pe] * g.pe)[: g.pe]
            searches_.append((f, acc))
        searches_ += [(f, rng.integers(lo, hi + 1, size=g.pe).tolist()) for _ in range(4)]
    random.Random(seed).shuffle(searches_)
    return ordered, descending, searches_


def run(g, n, seed, ready_pattern=(1,), valid_pattern=(1,)):
    dut = ThresholdSearch(g)
    ordered, descending, folds = case(g, n, seed)

    async def load(ctx):
        for f in range(g.max_out_folds):
            for c in range(g.pe):
                for slot in range(n):
                    ctx.set(dut.wr, {"en": 1, "channel": c, "fold": f, "slot": slot, "data": int(ordered[f, c, slot])})
                    await ctx.tick()
        ctx.set(dut.wr.en, 0)

    items = [{"fold": f, "acc": acc, "descending": descending[f].tolist(), "n": n} for f, acc in folds]
    max_cycles = 1000 + 50 * len(folds) + g.max_out_folds * g.pe * n
    outputs, cycles = simulate(dut, items, ready_pattern, valid_pattern, max_cycles, before=load)
    outputs = [[int(x) for x in payload] for payload in outputs]
    for (f, acc), got in zip(folds, outputs):
        want = multithreshold(np.array(acc), ordered[f], descending[f].astype(bool)).tolist()
        searched = search_thresholds(np.array([acc]), ordered[f], descending[f], g.search_levels)[0].tolist()
        assert searched == want, f"seed {seed}, n {n}: the reference tile's search {searched}, expected {want}"
        assert got == want, (
            f"seed {seed}, n {n}: fold {f}, accumulators {acc}, directions {descending[f].tolist()}, "
            f"thresholds {ordered[f].tolist()}: codes {got}, expected {want}"
        )
    return cycles


@pytest.mark.parametrize(
    ("max_thresholds", "n", "pe", "out_features", "acc_width"),
    [(20, 20, 4, 12, 10), (20, 7, 4, 12, 10), (20, 1, 2, 4, 6), (255, 255, 2, 4, 12), (255, 3, 2, 2, 8)],
    ids=["20-of-20", "7-of-20", "1-of-20", "255-of-255", "3-of-255"],
)
def test_codes_equal_golden(max_thresholds, n, pe, out_features, acc_width):
    g = geometry(max_thresholds, pe, out_features, acc_width)
    run(g, n, SEED + n, ready_pattern=(1, 1, 0, 1, 0, 0, 1), valid_pattern=(1, 0, 1, 1, 0))


def test_a_fold_per_cycle():
    """Without idle input or back-pressure a code leaves every cycle, ``levels + 1`` cycles after its
    fold went in: a search that lost throughput or stalled would fail here."""
    g = geometry(20, 4, 12, 10)
    cycles = run(g, 20, SEED)
    assert cycles == list(range(cycles[0], cycles[0] + len(cycles))), f"seed {SEED}: cycles {cycles}"


def test_memories():
    g = geometry(255, 8, 256, 23)
    assert g.search_levels == 8 and geometry(SEARCH_FROM, 8, 256, 23).search_levels == 5
    assert geometry(SEARCH_FROM - 1, 8, 256, 23).search_levels == 0
    assert shape_depth(g, "thresholds")[0].width == 2 * 23  # bias and direction only
    assert sum(shape_depth(g, f"level{k}")[1] for k in range(8)) == 255 * g.max_out_folds
    with pytest.raises(ValueError, match="level8"):
        shape_depth(g, "level8")
    with pytest.raises(ValueError, match="at once"):
        ThresholdSearch(geometry(3, 4, 12, 10))


def test_rows_out_of_order():
    """Out of LOAD_THRESHOLDS' order the search answers what the reference tile's model of it says (and
    not the count): the differential tests compare out-of-spec streams too."""
    g = geometry(20, 2, 4, 10)
    dut = ThresholdSearch(g)
    rows = np.array([[5, -3, 9, 0, 1], [-7, 8, 2, 2, -1]])
    descending, accs = np.array([0, 1]), [[-8, -8], [0, 2], [3, 9], [9, -1], [10, 8]]
    outputs = []

    async def bench(ctx):
        for c in range(2):
            for slot in range(5):
                ctx.set(dut.wr, {"en": 1, "channel": c, "fold": 0, "slot": slot, "data": int(rows[c, slot])})
                await ctx.tick()
        ctx.set(dut.wr.en, 0)
        ctx.set(dut.o.ready, 1)
        for acc in accs:
            ctx.set(dut.i.payload, {"fold": 0, "acc": acc, "descending": descending.tolist(), "n": 5})
            ctx.set(dut.i.valid, 1)
            await ctx.tick()
            ctx.set(dut.i.valid, 0)
            for _ in range(g.search_levels + 1):
                _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
                if valid:
                    outputs.append([int(x) for x in payload])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    want = search_thresholds(np.array(accs), rows, descending, g.search_levels).tolist()
    assert outputs == want
    assert want != multithreshold(np.array(accs), rows, descending.astype(bool)).tolist()
