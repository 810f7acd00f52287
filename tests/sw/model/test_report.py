"""Cost report: MACs, ACE, CPU64, weight bits, size and multiplications removed, on hand-made models."""

import numpy as np

from lowbit.sw.kinds.encodings import nhot_nearest
from lowbit.sw.model.file import LayerRecord, LowbitModel
from lowbit.sw.model.report import format_report, model_cost


def binary_model():
    """64 -> 32 (u8 x bin) -> 16 (bin x bin) -> 10 (bin x int8), as the binary scheme lays it out."""
    rng = np.random.default_rng(0)
    sign = lambda shape: rng.choice([-1, 1], shape).astype(np.int8)
    l0 = LayerRecord(
        64,
        32,
        "binary",
        1,
        "uint",
        8,
        "threshold",
        sign((32, 64)),
        output_levels=2,
        thresholds=np.zeros((32, 1), np.int64),
        descending=np.zeros(32, bool),
    )
    l1 = LayerRecord(
        32,
        16,
        "binary",
        1,
        "binary",
        1,
        "threshold",
        sign((16, 32)),
        output_levels=2,
        thresholds=np.zeros((16, 1), np.int64),
        descending=np.zeros(16, bool),
    )
    l2 = LayerRecord(16, 10, "int", 8, "binary", 1, "accumulator", rng.integers(-127, 128, (10, 16)).astype(np.int8))
    return LowbitModel("binary", 10, [l0, l1, l2])


def test_binary_costs():
    cost = model_cost(binary_model())
    assert [c.macs for c in cost.layers] == [2048, 512, 160]
    assert cost.total_macs == 2720
    assert [c.ace for c in cost.layers] == [2048 * 1 * 8, 512 * 1 * 1, 160 * 8 * 1]
    assert [(c.flops, c.bops) for c in cost.layers] == [(2048, 0), (0, 512), (160, 0)]
    assert cost.total_cpu64 == 2048 + 160 + 512 / 64
    assert cost.total_weight_bits == 2048 + 512 + 160 * 8
    # accumulators: u8 x ±1 over 64 taps is ±16320 (15 bits); ±1 x ±1 over 32 taps is ±32 (7 bits)
    assert [c.accumulator_bits for c in cost.layers[:2]] == [15, 7]
    assert [c.aux_bits for c in cost.layers] == [32 * 15 + 32, 16 * 7 + 16, 0]
    assert cost.total_size_bits == cost.total_weight_bits + 32 * 16 + 16 * 8
    assert cost.mults_removed is None
    assert cost.describe() == "u8 x bin, bin x bin, bin x int8"


def test_fgq_and_nhot_costs():
    rng = np.random.default_rng(1)
    l0 = LayerRecord(
        64,
        8,
        "fgq",
        2,
        "uint",
        8,
        "threshold",
        rng.integers(-1, 2, (8, 64)).astype(np.int8),
        output_levels=16,
        group_size=4,
        alpha_q=rng.integers(0, 256, (8, 16)).astype(np.uint8),
        thresholds=np.zeros((8, 15), np.int64),
        descending=np.zeros(8, bool),
    )
    l1 = LayerRecord(
        8,
        10,
        "nhot",
        8,
        "uint",
        4,
        "accumulator",
        nhot_nearest(rng.integers(-127, 128, (10, 8)), 2, 8).astype(np.int8),
        n_terms=2,
    )
    cost = model_cost(LowbitModel("mixed", 10, [l0, l1]))
    assert cost.layers[0].mults_removed == 0.75
    assert cost.layers[1].mults_removed == 1.0
    assert cost.mults_removed == (512 * 0.75 + 80) / 592
    assert cost.layers[0].ace == 512 * 2 * 8 + 128 * 8 * 8  # plus one 8-bit multiply per group
    assert cost.layers[1].ace == 80 * 2 * 4  # n-hot counts its n terms
    assert cost.layers[1].weight_storage_bits == 80 * 7  # 87 values -> 7 bits
    assert cost.layers[0].aux_bits > 128 * 8
    assert 1 <= cost.layers[1].terms_per_weight <= 2
    text = format_report(cost)
    assert "75.0 %" in text and "total" in text and "u8 x tern/g4" in text
