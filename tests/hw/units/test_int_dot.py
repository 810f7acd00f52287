"""IntDotProduct (the multiplier baseline): construction, errors, and Amaranth-simulator checks against
NumPy integer dot products."""

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from lowbit.hw.units.int_dot import IntDotInput, IntDotProduct, int_dot_range
from lowbit.hw.units.unit import PEArray
from tests.hw import streamsim


def payloads(a, w):
    return [{"a": [int(x) for x in ak], "w": [int(x) for x in wk]} for ak, wk in zip(a, w)]


def test_init():
    unit = IntDotProduct(64)
    assert unit.latency == 2 and unit.registered == [4, 7]
    assert unit.i.payload.shape() == data.StructLayout(
        {"a": data.ArrayLayout(signed(8), 64), "w": data.ArrayLayout(signed(8), 64)}
    )
    # 64 * (-128) * (-128) = 2**20 needs 22 signed bits.
    assert unit.o.payload.shape() == signed(22)
    assert IntDotProduct(3, 4, 2, signed=False, pipeline_depth=1).o.payload.shape() == unsigned(8)  # 3*15*3
    assert IntDotInput(2, 3, 5, False)["w"].shape == data.ArrayLayout(unsigned(5), 2)


def test_range():
    assert int_dot_range(2, 8, 8) == (-2 * 128 * 127, 2 * 128 * 128)
    assert int_dot_range(4, 2, 3, signed_operands=False) == (0, 4 * 3 * 7)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"n": 0}, ValueError, "n must be at least 1, not 0"),
        ({"n": 4, "a_bits": 33}, ValueError, "a_bits must be between 2 and 32, not 33"),
        ({"n": 4, "w_bits": 1}, ValueError, "w_bits must be between 2 and 32, not 1"),
        ({"n": 4, "signed": 1}, TypeError, "signed must be a bool, not 1"),
        ({"n": 4, "pipeline_depth": 4}, ValueError, "pipeline_depth must be between 1 and 3 .*, not 4"),
    ],
)
def test_init_wrong(kwargs, error, message):
    with pytest.raises(error, match=message):
        IntDotProduct(**kwargs)


def test_init_unsigned_one_bit():
    assert IntDotProduct(4, 1, 1, signed=False).o.payload.shape() == unsigned(3)


def extremes(n, a_bits, w_bits, is_signed):
    """Corner vectors: every pairing of the operand extremes, and zero."""
    if is_signed:
        a_ext = (-(1 << (a_bits - 1)), (1 << (a_bits - 1)) - 1)
        w_ext = (-(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1)
    else:
        a_ext, w_ext = (0, (1 << a_bits) - 1), (0, (1 << w_bits) - 1)
    pairs = [(x, y) for x in a_ext for y in w_ext] + [(0, w_ext[0])]
    return [np.full(n, x) for x, _ in pairs], [np.full(n, y) for _, y in pairs]


@pytest.mark.parametrize(
    "n, a_bits, w_bits, is_signed, depth, seed",
    [
        (1, 8, 8, True, 1, 11),
        (5, 4, 3, True, 2, 12),
        (8, 8, 8, True, 4, 13),
        (16, 8, 8, True, None, 14),
        (7, 3, 5, False, 3, 15),
        (64, 8, 8, True, 1, 16),
    ],
)
def test_random(n, a_bits, w_bits, is_signed, depth, seed):
    rng = np.random.default_rng(seed)
    lo_a, hi_a = (-(1 << (a_bits - 1)), 1 << (a_bits - 1)) if is_signed else (0, 1 << a_bits)
    lo_w, hi_w = (-(1 << (w_bits - 1)), 1 << (w_bits - 1)) if is_signed else (0, 1 << w_bits)
    a_corner, w_corner = extremes(n, a_bits, w_bits, is_signed)
    a = np.concatenate([a_corner, rng.integers(lo_a, hi_a, (40, n))])
    w = np.concatenate([w_corner, rng.integers(lo_w, hi_w, (40, n))])
    unit = IntDotProduct(n, a_bits, w_bits, is_signed, depth)
    outputs, _ = streamsim.simulate(unit, payloads(a, w), ready_pattern=(1, 1, 0), valid_pattern=(1, 0, 1))
    expected = (a.astype(np.int64) * w.astype(np.int64)).sum(axis=1).tolist()
    assert outputs == expected, f"seed {seed}"
    # The corner vectors reach the ends of the result range.
    assert set(int_dot_range(n, a_bits, w_bits, is_signed)) <= set(expected)


def test_latency_full_rate():
    unit = IntDotProduct(8, pipeline_depth=4)
    a = np.arange(-40, 40).reshape(10, 8)
    _, cycles = streamsim.simulate(unit, payloads(a, a[::-1]))
    # Input taken at edge 1, result transferred pipeline_depth edges later; one per cycle after that.
    assert cycles == list(range(5, 15))


def test_pe_array_shares_activations(seed=17):
    rng = np.random.default_rng(seed)
    array = PEArray(lambda: IntDotProduct(4, 4, 4), 3)
    a = rng.integers(-8, 8, (20, 4))
    w = rng.integers(-8, 8, (20, 3, 4))
    inputs = [
        {"shared": {"a": [int(x) for x in ak]}, "channels": [{"w": [int(x) for x in wc]} for wc in wk]}
        for ak, wk in zip(a, w)
    ]
    outputs, _ = streamsim.simulate(array, inputs, ready_pattern=(1, 0))
    expected = np.einsum("vi,vci->vc", a, w)
    assert [[out[c] for c in range(3)] for out in outputs] == expected.tolist(), f"seed {seed}"
