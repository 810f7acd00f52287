"""TernaryDotProduct: construction, errors, and Amaranth-simulator checks against a plain integer sum."""

import numpy as np
import pytest
from amaranth.hdl import signed

from lowbit.hw.units.ternary_dot import TernaryBinaryDotInput, TernaryDotInput, TernaryDotProduct
from lowbit.sw.kinds.packing import bits_to_int
from tests.hw import streamsim


def planes(t):
    """Two-plane encoding of ternary values: (non-zero, negative)."""
    t = np.asarray(t)
    return (t != 0).astype(np.uint8), (t < 0).astype(np.uint8)


def test_init():
    unit = TernaryDotProduct(12, "binary", 3)
    assert unit.latency == 3 and unit.o.payload.shape() == signed(5)
    assert unit.i.payload.shape() == TernaryBinaryDotInput(12)
    assert TernaryDotProduct(12).i.payload.shape() == TernaryDotInput(12)


def test_init_wrong_activations():
    with pytest.raises(ValueError, match="activations must be one of ternary, binary, not 'int4'"):
        TernaryDotProduct(8, "int4")


def test_init_wrong_n():
    with pytest.raises(TypeError, match="n must be a positive integer, not 0"):
        TernaryDotProduct(0)


def test_seeds_twn_example():
    # TWN's worked example (docs/arithmetic.md): t = [1, -1, 0, -1, 1, 0, -1, 0]; against x = [1, 1, ...]
    # the sum is t's sum.
    t = np.array([1, -1, 0, -1, 1, 0, -1, 0])
    w_nz, w_sign = planes(t)
    assert bits_to_int(w_nz) == 0x5B and bits_to_int(w_sign) == 0x4A
    ones = np.ones(8, np.uint8)
    payload = {"a_nz": bits_to_int(ones), "a_sign": 0, "w_nz": 0x5B, "w_sign": 0x4A}
    outputs, _ = streamsim.simulate(TernaryDotProduct(8), [payload])
    assert outputs == [int(t.sum())]


@pytest.mark.parametrize("n, depth", [(1, 1), (8, 2), (13, 3), (64, 7)])
def test_ternary_random(n, depth, seed=31):
    rng = np.random.default_rng(seed + n)
    a, w = rng.integers(-1, 2, (2, 80, n))
    a[0], w[1], a[2], w[2] = 1, 0, 1, -1  # corners: all +1 activations, all-zero weights, the minimum
    payloads = []
    for ak, wk in zip(a, w):
        (a_nz, a_sign), (w_nz, w_sign) = planes(ak), planes(wk)
        payloads.append(
            {
                "a_nz": bits_to_int(a_nz),
                "a_sign": bits_to_int(a_sign),
                "w_nz": bits_to_int(w_nz),
                "w_sign": bits_to_int(w_sign),
            }
        )
    outputs, _ = streamsim.simulate(
        TernaryDotProduct(n, "ternary", depth), payloads, ready_pattern=(1, 1, 0), valid_pattern=(1, 0, 1, 1)
    )
    assert outputs == (a * w).sum(axis=1).tolist(), f"seed {seed + n}"


@pytest.mark.parametrize("n", [1, 9, 64])
def test_binary_activations_random(n, seed=41):
    rng = np.random.default_rng(seed + n)
    bits = rng.integers(0, 2, (60, n), dtype=np.uint8)
    valid = rng.integers(0, 2, (60, n), dtype=np.uint8)
    w = rng.integers(-1, 2, (60, n))
    payloads = []
    for b, v, wk in zip(bits, valid, w):
        w_nz, w_sign = planes(wk)
        payloads.append(
            {"a": bits_to_int(b), "valid": bits_to_int(v), "w_nz": bits_to_int(w_nz), "w_sign": bits_to_int(w_sign)}
        )
    outputs, _ = streamsim.simulate(TernaryDotProduct(n, "binary"), payloads, ready_pattern=(0, 1))
    reference = ((2 * bits.astype(int) - 1) * w * valid).sum(axis=1)
    assert outputs == reference.tolist(), f"seed {seed + n}"
