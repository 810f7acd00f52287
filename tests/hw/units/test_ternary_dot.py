"""TernaryDotProduct: construction, errors, and Amaranth-simulator checks against a plain integer sum and
against golden fatnn_dot (FATNN's kernel, which the tile runs on this unit)."""

import numpy as np
import pytest
from amaranth.hdl import signed

from lowbit.hw.units.ternary_dot import TernaryDotInput, TernaryDotProduct
from lowbit.sw.golden import fatnn_dot
from lowbit.sw.kinds.encodings import encode_fatnn_activation, encode_ternary
from lowbit.sw.kinds.packing import bits_to_int, pack_bits
from tests.hw import streamsim


def planes(t):
    """Two-plane encoding of ternary values: (non-zero, negative)."""
    t = np.asarray(t)
    return (t != 0).astype(np.uint8), (t < 0).astype(np.uint8)


def test_init():
    unit = TernaryDotProduct(12, 3)
    assert unit.latency == 3 and unit.o.payload.shape() == signed(5)
    assert unit.i.payload.shape() == TernaryDotInput(12)
    assert TernaryDotProduct.max_pipeline_depth(64) == 7


def test_init_wrong_depth():
    with pytest.raises(ValueError, match="pipeline_depth must be between 1 and 4 for n=8, not 5"):
        TernaryDotProduct(8, 5)


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
        TernaryDotProduct(n, depth), payloads, ready_pattern=(1, 1, 0), valid_pattern=(1, 0, 1, 1)
    )
    assert outputs == (a * w).sum(axis=1).tolist(), f"seed {seed + n}"


def fatnn_case(a, w):
    """Payload dict and golden result for FATNN activations ``a`` in {0,1,2} and ternary weights ``w``: the
    planes of ``a' = a - 1`` and of ``w``, and ``fatnn_dot`` without ``sum(w)``, which the tile adds as the
    channel's bias."""
    (a_nz, a_sign), (w_nz, w_sign) = encode_fatnn_activation(a), encode_ternary(w)
    payload = {
        "a_nz": bits_to_int(a_nz),
        "a_sign": bits_to_int(a_sign),
        "w_nz": bits_to_int(w_nz),
        "w_sign": bits_to_int(w_sign),
    }
    golden = int(fatnn_dot(pack_bits(a_nz), pack_bits(a_sign), pack_bits(w_nz), pack_bits(w_sign), 0))
    return payload, golden


def test_seeds_fatnn_example():
    # FATNN's worked example (docs/arithmetic.md): w = [-1,0,0,0,1,0,0,-1], a = [0,1,1,2,0,1,2,2]
    # -> masks 0xD9/0x11, 0x91/0x81, -2 (with sum(w) = -1 added as the bias).
    w = np.array([-1, 0, 0, 0, 1, 0, 0, -1])
    payload, golden = fatnn_case(np.array([0, 1, 1, 2, 0, 1, 2, 2]), w)
    assert (payload["a_nz"], payload["a_sign"], payload["w_nz"], payload["w_sign"]) == (0xD9, 0x11, 0x91, 0x81)
    outputs, _ = streamsim.simulate(TernaryDotProduct(8), [payload])
    assert outputs == [golden] and golden + w.sum() == -2


@pytest.mark.parametrize("n, depth", [(1, 1), (8, 2), (13, 3), (64, 7)])
def test_fatnn_random(n, depth, seed=41):
    rng = np.random.default_rng(seed + n)
    a, w = rng.integers(0, 3, (60, n)), rng.integers(-1, 2, (60, n))
    a[0], w[0] = 2, 1  # maximum: 2n
    a[1], w[1] = 2, -1  # minimum: -2n
    w[2] = 0  # all-zero weights
    a[3] = 0  # a = 0 everywhere: the product is 0 (a' = -1 cancels the bias sum(w))
    cases = [fatnn_case(ak, wk) for ak, wk in zip(a, w)]
    outputs, _ = streamsim.simulate(
        TernaryDotProduct(n, depth), [p for p, _ in cases], ready_pattern=(1, 0, 1), valid_pattern=(1, 1, 0)
    )
    assert outputs == [g for _, g in cases], f"seed {seed + n}"
    assert (np.array(outputs) + w.sum(axis=1)).tolist() == (a * w).sum(axis=1).tolist(), f"seed {seed + n}"
