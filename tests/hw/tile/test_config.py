"""The tile's Configuration alone, in Amaranth's simulator: from CONFIGURE's three words, the error
code :meth:`TileGeometry.check` predicts after ``CHECK_LATENCY`` cycles, and on ``accept`` the layer's
fields as :class:`TileGeometry` computes them."""

import pytest
from amaranth.sim import Simulator

from lowbit.hw.tile.config import ACT_BINARY, ACT_TERNARY, ACT_UINT, CHECK_LATENCY, Configuration
from lowbit.sw.protocol import (
    WORD_BITS,
    Family,
    InputKind,
    LayerConfig,
    TileGeometry,
    WeightKind,
    input_rows_per_word_log2,
    output_code_bits,
)

POPCOUNT = TileGeometry(
    Family.POPCOUNT, 4, 32, max_in_features=128, max_out_features=64, max_weight_rows=64, max_input_bits=8
)
NHOT = TileGeometry(
    Family.NHOT,
    2,
    8,
    max_in_features=32,
    max_out_features=8,
    max_weight_rows=16,
    max_input_bits=8,
    n_terms=2,
    exponent_bits=3,
    max_thresholds=3,
)
NARROW = TileGeometry(  # input rows of 4 to 32 bits: 8 .. 1 rows per RUN word
    Family.POPCOUNT, 2, 4, max_in_features=64, max_out_features=8, max_weight_rows=256, max_input_bits=8
)
NHOT_NARROW = TileGeometry(  # 8-bit rows: 4 per word
    Family.NHOT, 2, 2, max_in_features=16, max_out_features=4, max_weight_rows=32, max_input_bits=4, n_terms=1
)
B, T, F, I_, N = WeightKind.BINARY, WeightKind.TERNARY, WeightKind.FATNN, WeightKind.INT, WeightKind.NHOT
CASES = {
    "popcount": (
        POPCOUNT,
        [
            LayerConfig(40, 6, B, 1, 0, InputKind.BINARY, 1, 0),
            LayerConfig(128, 64, T, 2, 0, InputKind.TERNARY, 2, 2),
            LayerConfig(33, 5, F, 2, 0, InputKind.FATNN, 2, 3),
            LayerConfig(64, 17, B, 1, 0, InputKind.UINT, 8, 2),
            LayerConfig(100, 10, I_, 8, 0, InputKind.BINARY, 1, 0),
            LayerConfig(1, 1, I_, 3, 0, InputKind.BINARY, 1, 2),
            LayerConfig(128, 64, I_, 8, 0, InputKind.BINARY, 1, 0),  # 128 weight rows: too large
            LayerConfig(129, 6, B, 1, 0, InputKind.BINARY, 1, 0),  # too large
            LayerConfig(0, 6, B, 1, 0, InputKind.BINARY, 1, 0),  # unsupported
            LayerConfig(40, 6, B, 1, 0, InputKind.BINARY, 1, 1),  # unsupported: one level
            LayerConfig(40, 6, N, 8, 2, InputKind.UINT, 8, 0),  # unsupported kinds
        ],
    ),
    "nhot": (
        NHOT,
        [
            LayerConfig(32, 8, N, 8, 2, InputKind.UINT, 8, 0),
            LayerConfig(9, 3, N, 8, 1, InputKind.UINT, 4, 4),
            LayerConfig(16, 8, I_, 8, 0, InputKind.UINT, 8, 2),
            LayerConfig(32, 8, N, 8, 2, InputKind.UINT, 8, 5),  # 4 thresholds: unsupported
            LayerConfig(40, 8, N, 8, 2, InputKind.UINT, 8, 0),  # too large
            LayerConfig(16, 8, B, 1, 0, InputKind.BINARY, 1, 0),  # unsupported kinds
        ],
    ),
    "narrow": (
        NARROW,
        [
            LayerConfig(37, 3, B, 1, 0, InputKind.BINARY, 1, 2),
            LayerConfig(64, 8, T, 2, 0, InputKind.TERNARY, 2, 2),
            LayerConfig(5, 3, F, 2, 0, InputKind.FATNN, 2, 0),
            LayerConfig(37, 3, T, 2, 0, InputKind.UINT, 3, 2),
            LayerConfig(33, 3, B, 1, 0, InputKind.UINT, 4, 2),
            LayerConfig(40, 8, T, 2, 0, InputKind.UINT, 8, 0),
            LayerConfig(1, 1, B, 1, 0, InputKind.BINARY, 1, 0),
            LayerConfig(65, 3, B, 1, 0, InputKind.BINARY, 1, 2),  # too large
        ],
    ),
    "nhot-narrow": (
        NHOT_NARROW,
        [
            LayerConfig(15, 4, N, 8, 1, InputKind.UINT, 4, 0),
            LayerConfig(3, 2, N, 8, 1, InputKind.UINT, 4, 2),
            LayerConfig(17, 2, N, 8, 1, InputKind.UINT, 4, 2),  # too large
        ],
    ),
}


def expected_fields(g, layer):
    """The derived fields of an accepted ``layer``, from :class:`TileGeometry`."""
    out_k = 1 if layer.last else output_code_bits(layer.output_levels)
    act_mode = {InputKind.BINARY: ACT_BINARY, InputKind.UINT: ACT_UINT}.get(layer.input_kind, ACT_TERNARY)
    if g.family == Family.NHOT:  # the n-hot array takes codes as they are: the mode is not read
        act_mode = ACT_TERNARY
    return {
        "ifolds": g.in_folds(layer),
        "input_rows": g.input_rows(layer),
        "ofolds": g.out_folds(layer),
        "planes": g.planes(layer),
        "weight_plane_mode": int(g.family == Family.POPCOUNT and layer.weight_kind == WeightKind.INT),
        "last_layer": int(layer.last),
        "act_mode": act_mode,
        "thresholds": layer.thresholds,
        "out_k": out_k,
        "weight_words": g.weight_words(layer),
        "threshold_words": g.threshold_words(layer),
        "in_row_words": g.input_row_words(layer),
        "in_rows_log2": input_rows_per_word_log2(g.input_row_bits(layer)),
        "in_row_bits": g.input_row_bits(layer),
        "record_words": layer.thresholds + 2,
        "input_words": g.input_words(layer),
        "fold_bits": g.pe * (WORD_BITS if layer.last else out_k),
        "output_words": g.output_words(layer),
    }


@pytest.mark.parametrize("name", CASES)
def test_error_and_fields(name):
    g, layers = CASES[name]
    dut = Configuration(g)
    seen = []

    async def tb(ctx):
        accepted = None
        for layer in layers:
            for k, word in enumerate(layer.encode()):
                ctx.set(dut.check.words[k], word)
            await ctx.tick().repeat(CHECK_LATENCY)
            error = ctx.get(dut.check.error)
            seen.append((layer, error))
            code = g.check(layer)
            assert error == (0 if code is None else int(code)), layer
            # the accepted layer holds until the next accept
            if accepted is not None:
                assert {f: ctx.get(dut.layer[f]) for f in accepted} == accepted
            if code is None:
                ctx.set(dut.check.accept, 1)
                await ctx.tick()
                ctx.set(dut.check.accept, 0)
                accepted = expected_fields(g, layer)
                got = {f: ctx.get(dut.layer[f]) for f in accepted}
                assert got == accepted, layer

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert len(seen) == len(layers)
    assert 0 < sum(error == 0 for _, error in seen) < len(layers)


def test_error_needs_check_latency_cycles():
    """``error`` is right ``CHECK_LATENCY`` clock edges after the words change; the weight rows' bound
    (a product of the folds and the planes) takes all of them."""
    g = POPCOUNT
    good, bad = CASES["popcount"][1][0], CASES["popcount"][1][6]
    dut = Configuration(g)
    trace = []

    async def tb(ctx):
        for k, word in enumerate(good.encode()):
            ctx.set(dut.check.words[k], word)
        await ctx.tick().repeat(CHECK_LATENCY + 1)
        for k, word in enumerate(bad.encode()):
            ctx.set(dut.check.words[k], word)
        for _ in range(CHECK_LATENCY + 1):
            trace.append(ctx.get(dut.check.error))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert trace == [0] * CHECK_LATENCY + [int(g.check(bad))]
