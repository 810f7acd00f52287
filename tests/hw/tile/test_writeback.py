"""The tile's Writeback alone, in Amaranth's simulator: a hidden layer's output folds in, the next layer's
input rows out on the input memory's write port, each row equal to the host's RUN row
(``lowbit.sw.host.packing.pack_inputs``) of the same codes (binary, ternary and FATNN planes, uint planes,
n-hot codes; padding all zero), in bank ``dst``, for PE below, equal to and above SIMD, with idle cycles
between folds; on a tile that walks maps, each pool window's folds max-pooled and each pixel's rows after
the one before (the host's rows of the pooled map)."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from lowbit.hw.tile.writeback import ROW_BINARY, ROW_TERNARY, ROW_UINT, Writeback
from lowbit.sw.host.packing import input_rows_of_words, pack_inputs
from lowbit.sw.protocol import Family, InputKind, LayerConfig, MapWalk, TileGeometry, WeightKind

#: (input kind, bits, the writer's mode, codes drawn from, tile family)
KINDS = {
    "binary": (InputKind.BINARY, 1, ROW_BINARY, 2, Family.POPCOUNT),
    "ternary": (InputKind.TERNARY, 2, ROW_TERNARY, 3, Family.POPCOUNT),
    "fatnn": (InputKind.FATNN, 2, ROW_TERNARY, 3, Family.POPCOUNT),
    "uint4": (InputKind.UINT, 4, ROW_UINT, 16, Family.POPCOUNT),
    "uint2": (InputKind.UINT, 2, ROW_UINT, 4, Family.POPCOUNT),
    "nhot-uint4": (InputKind.UINT, 4, ROW_UINT, 16, Family.NHOT),
}


def geometry_of(family, pe, simd, maps=False):
    return TileGeometry(
        family,
        pe,
        simd,
        max_in_features=256 if maps else 64,  # a bank holds the pooled map
        max_out_features=64,
        max_weight_rows=64,
        max_thresholds=15,
        max_input_bits=4,
        n_terms=1 if family == Family.NHOT else 0,
        max_layers=2,
        maps=maps,
    )


def run_writeback(geometry, folds, *, mode, bits, out_features, dst, idle, ofolds=None, pool_area=1):
    """Feed ``folds`` (lists of ``pe`` codes) after a start pulse; return ``{address: row}`` written.
    ``ofolds`` (default: every fold) per pixel and ``pool_area`` folds per pool window on a tile that walks
    maps."""
    dut = Writeback(geometry)
    writes = {}
    ofolds = len(folds) if ofolds is None else ofolds

    async def source(ctx):
        if geometry.maps:
            ctx.set(dut.pool_area, pool_area)
            ctx.set(dut.out_groups, -(-out_features // geometry.simd))
        ctx.set(dut.dst, dst)
        ctx.set(dut.mode, mode)
        ctx.set(dut.bits, bits)
        ctx.set(dut.out_features, out_features)
        ctx.set(dut.ofolds, ofolds)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for index, fold in enumerate(folds):
            ctx.set(dut.i.payload, {"acc": [0] * geometry.pe, "codes": fold})
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)
            for _ in range(idle[index % len(idle)]):
                await ctx.tick()
        for _ in range(4):
            await ctx.tick()

    async def memory(ctx):
        async for _, _, en, addr, data in ctx.tick().sample(dut.wr.en, dut.wr.addr, dut.wr.data):
            if en:
                assert en == 2 ** len(dut.wr.en) - 1, f"a partial row write {en:b} at {addr}"
                assert addr not in writes, f"row {addr} written twice"
                writes[addr] = data

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_process(memory)
    sim.run_until(1e-8 * (len(folds) * (geometry.pe // geometry.simd + 1 + max(idle)) + 20))
    return writes


@pytest.mark.parametrize("pe, simd", [(2, 8), (8, 8), (16, 4), (4, 32)])
@pytest.mark.parametrize("kind", KINDS)
def test_rows_are_the_hosts(kind, pe, simd):
    input_kind, bits, mode, levels, family = KINDS[kind]
    if family == Family.NHOT and simd > 8:
        pytest.skip("n-hot rows of 32 codes x 4 bits: covered by the narrower shapes")
    geometry = geometry_of(family, pe, simd)
    seed = f"{kind}-{pe}-{simd}"
    rng = random.Random(seed)
    for out_features in (pe, 3 * pe - 1, 20, 37, 64):
        ofolds = -(-out_features // pe)
        codes = [rng.randrange(levels) for _ in range(out_features)]
        if rng.random() < 0.5:  # corner: every code the largest, or the smallest
            codes = [rng.choice([0, levels - 1])] * out_features
        # The writer sees whole folds; codes beyond out_features are the threshold unit's of padding channels.
        padded = codes + [rng.randrange(levels) for _ in range(ofolds * pe - out_features)]
        folds = [padded[f * pe : (f + 1) * pe] for f in range(ofolds)]
        dst = rng.randrange(3)
        writes = run_writeback(geometry, folds, mode=mode, bits=bits, out_features=out_features, dst=dst, idle=(0, 2))
        config = LayerConfig(out_features, 8, WeightKind.BINARY, 1, 0, input_kind, bits, 2)
        words = pack_inputs(np.array([codes]), config, geometry)
        rows = [
            sum(int(bit) << j for j, bit in enumerate(row)) for row in input_rows_of_words(words, config, geometry, 1)
        ]
        base = dst * geometry.max_in_folds
        expected = {base + r: row for r, row in enumerate(rows)}
        mask = 2 ** geometry.input_row_bits(config) - 1
        got = {addr: data & mask for addr, data in writes.items()}
        assert got == expected, f"seed {seed!r}, out_features {out_features}"
        assert all(data & ~mask == 0 for data in writes.values()), "bits beyond the row's planes"


@pytest.mark.parametrize("pe, simd", [(2, 8), (16, 4), (4, 4)])
@pytest.mark.parametrize("kind", ["binary", "fatnn", "uint4", "nhot-uint4"])
@pytest.mark.parametrize("pool", [1, 2, 3])
def test_pooled_map_rows_are_the_hosts(kind, pe, simd, pool):
    """A map of 3 x 2 pooled pixels: per pixel, per output fold, ``pool**2`` folds (a pool window's
    positions) in; out, each channel's largest code, the pixels' rows one after another, == the host's rows
    of the pooled map (pack_inputs of a walk's input)."""
    input_kind, bits, mode, levels, family = KINDS[kind]
    geometry = geometry_of(family, pe, simd, maps=True)
    seed = f"pool-{kind}-{pe}-{simd}-{pool}"
    rng = random.Random(seed)
    height, width = 3, 2
    for out_features in (pe, 2 * pe - 1, 9):
        ofolds = -(-out_features // pe)
        folds, pooled = [], []
        for _ in range(height * width):
            pixel = []
            for _ in range(ofolds):
                members = [[rng.randrange(levels) for _ in range(pe)] for _ in range(pool * pool)]
                folds += members
                pixel += [max(codes) for codes in zip(*members)]
            pooled += pixel[:out_features]
        dst = rng.randrange(3)
        writes = run_writeback(
            geometry,
            folds,
            mode=mode,
            bits=bits,
            out_features=out_features,
            dst=dst,
            idle=(0, 1),
            ofolds=ofolds,
            pool_area=pool * pool,
        )
        walk = MapWalk(height, width, 1, 1, 0, 1, height, width)
        config = LayerConfig(out_features, 8, WeightKind.BINARY, 1, 0, input_kind, bits, 2, walk=walk)
        words = pack_inputs(np.array([pooled]), config, geometry)
        rows = [
            sum(int(bit) << j for j, bit in enumerate(row)) for row in input_rows_of_words(words, config, geometry, 1)
        ]
        base = dst * geometry.max_in_folds
        mask = 2 ** geometry.input_row_bits(config) - 1
        got = {addr: data & mask for addr, data in writes.items()}
        assert got == {base + r: row for r, row in enumerate(rows)}, f"seed {seed!r}, out_features {out_features}"
