"""The tile's Packer alone, in Amaranth's simulator: output folds in, RUN's DATA words out as
``docs/protocol.md`` lays them out (a sign-extended accumulator word per channel for the last layer, the
codes of a vector as one bit string otherwise), under idle input and back-pressure."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from lowbit.hw.tile.config import LayerLayout
from lowbit.hw.tile.engine import FoldLayout
from lowbit.hw.tile.packer import Packer
from lowbit.sw.protocol import WORD_BITS, Family, TileGeometry
from tests.hw import streamsim

GEOMETRY = TileGeometry(
    Family.POPCOUNT, 4, 32, max_in_features=128, max_out_features=64, max_weight_rows=64, max_thresholds=15
)
FLOWS = {"steady": {}, "stalls": {"ready_pattern": (1, 0, 0, 1), "valid_pattern": (1, 0, 1)}}


class Bench(wiring.Component):
    """The packer with a fixed layer."""

    def __init__(self, geometry, layer):
        self.geometry, self.layer = geometry, layer
        super().__init__({"i": In(stream.Signature(FoldLayout(geometry))), "o": Out(stream.Signature(WORD_BITS))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.packer = packer = Packer(self.geometry)
        wiring.connect(m, wiring.flipped(self.i), packer.i)
        wiring.connect(m, packer.o, wiring.flipped(self.o))
        m.d.comb += packer.layer.eq(LayerLayout(self.geometry).const(self.layer))
        return m


def bit_string_words(codes, k):
    """The codes of a vector, code ``j`` at bit ``j * k``, cut into words, the last zero-padded."""
    bits = sum(code << (j * k) for j, code in enumerate(codes))
    count = -(-len(codes) * k // WORD_BITS)
    return [(bits >> (WORD_BITS * w)) & (2**WORD_BITS - 1) for w in range(count)]


@pytest.mark.parametrize("flow", FLOWS)
@pytest.mark.parametrize("k, ofolds", [(1, 3), (1, 16), (2, 5), (3, 7), (4, 1), (4, 9)])
def test_hidden_layer_codes(k, ofolds, flow):
    g = GEOMETRY
    rng = random.Random(f"{k}-{ofolds}")
    vectors = 3
    layer = {"ofolds": ofolds, "out_k": k, "fold_bits": k * g.pe, "last_layer": 0}
    folds, expected = [], []
    for _ in range(vectors):
        codes = [rng.randrange(2**k) for _ in range(ofolds * g.pe)]
        for f in range(ofolds):
            # bits above out_k are not the packer's to send
            noisy = [code | (rng.randrange(16) << k) for code in codes[f * g.pe : (f + 1) * g.pe]]
            folds.append({"acc": [rng.randrange(-100, 100) for _ in range(g.pe)], "codes": noisy})
        expected += bit_string_words(codes, k)
    got = streamsim.exchange(Bench(g, layer), folds, len(expected), **FLOWS[flow])
    assert got == expected


@pytest.mark.parametrize("flow", FLOWS)
def test_last_layer_accumulators(flow):
    g = GEOMETRY
    rng = random.Random(5)
    layer = {"ofolds": 3, "out_k": 1, "fold_bits": WORD_BITS * g.pe, "last_layer": 1}
    acc_max = 2 ** (g.acc_width - 1)
    values = [
        rng.choice([-acc_max, acc_max - 1, -1, 0]) if rng.random() < 0.3 else rng.randrange(-acc_max, acc_max)
        for _ in range(6 * g.pe)
    ]
    folds = [{"acc": values[f * g.pe : (f + 1) * g.pe], "codes": [1] * g.pe} for f in range(6)]
    expected = [value & (2**WORD_BITS - 1) for value in values]
    got = streamsim.exchange(Bench(g, layer), folds, len(expected), **FLOWS[flow])
    assert got == expected
