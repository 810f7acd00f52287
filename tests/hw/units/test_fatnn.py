"""FATNNDotProduct: construction, errors, and Amaranth-simulator checks against golden fatnn_dot."""

import numpy as np
import pytest
from amaranth.hdl import signed

from lowbit.hw.units.fatnn import FATNNDotInput, FATNNDotProduct
from lowbit.sw.golden import fatnn_dot
from lowbit.sw.kinds.encodings import encode_fatnn_activation, encode_ternary
from lowbit.sw.kinds.packing import bits_to_int, pack_bits
from tests.hw import streamsim


def fatnn_case(a, w):
    """Payload dict and golden result for FATNN activations ``a`` in {0,1,2} and ternary weights ``w``."""
    (a_nz, a_sign), (w_nz, w_sign) = encode_fatnn_activation(a), encode_ternary(w)
    payload = {
        "a_nz": bits_to_int(a_nz),
        "a_sign": bits_to_int(a_sign),
        "w_nz": bits_to_int(w_nz),
        "w_sign": bits_to_int(w_sign),
        "w_sum": int(w.sum()),
    }
    golden = int(fatnn_dot(pack_bits(a_nz), pack_bits(a_sign), pack_bits(w_nz), pack_bits(w_sign), w.sum()))
    return payload, golden


def test_init():
    unit = FATNNDotProduct(64)
    assert unit.latency == 2 and unit.o.payload.shape() == signed(9)  # [-128, 128]
    assert unit.i.payload.shape() == FATNNDotInput(64)
    assert FATNNDotInput(64)["w_sum"].shape == signed(8)
    # One more leaf (w_sum): 65 leaves need 7 adder levels, plus the final subtraction.
    assert FATNNDotProduct.max_pipeline_depth(64) == 8


def test_init_wrong_n():
    with pytest.raises(TypeError, match="n must be a positive integer, not -3"):
        FATNNDotProduct(-3)


def test_init_wrong_depth():
    with pytest.raises(ValueError, match="pipeline_depth must be between 1 and 5 for n=8, not 6"):
        FATNNDotProduct(8, 6)


def test_seeds_example():
    # FATNN's worked example (docs/arithmetic.md): w = [-1,0,0,0,1,0,0,-1], a = [0,1,1,2,0,1,2,2]
    # -> masks 0xD9/0x11, 0x91/0x81, -2.
    payload, golden = fatnn_case(np.array([0, 1, 1, 2, 0, 1, 2, 2]), np.array([-1, 0, 0, 0, 1, 0, 0, -1]))
    assert (payload["a_nz"], payload["a_sign"], payload["w_nz"], payload["w_sign"]) == (0xD9, 0x11, 0x91, 0x81)
    outputs, _ = streamsim.simulate(FATNNDotProduct(8), [payload])
    assert outputs == [golden] == [-2]


@pytest.mark.parametrize("n, depth", [(1, 1), (8, 2), (13, 3), (64, 8)])
def test_random(n, depth, seed=41):
    rng = np.random.default_rng(seed + n)
    a, w = rng.integers(0, 3, (60, n)), rng.integers(-1, 2, (60, n))
    a[0], w[0] = 2, 1  # maximum: 2n
    a[1], w[1] = 2, -1  # minimum: -2n
    w[2] = 0  # all-zero weights
    a[3] = 0  # a = 0 everywhere: the result is 0 (a' = -1 cancels w_sum)
    cases = [fatnn_case(ak, wk) for ak, wk in zip(a, w)]
    outputs, _ = streamsim.simulate(
        FATNNDotProduct(n, depth), [p for p, _ in cases], ready_pattern=(1, 0, 1), valid_pattern=(1, 1, 0)
    )
    assert outputs == [g for _, g in cases] == (a * w).sum(axis=1).tolist(), f"seed {seed + n}"


def test_latency_and_rate():
    cases = [fatnn_case(np.full(16, i % 3), np.ones(16, int)) for i in range(10)]
    unit = FATNNDotProduct(16, 3)
    outputs, cycles = streamsim.simulate(unit, [p for p, _ in cases])
    assert outputs == [g for _, g in cases]
    assert cycles == list(range(unit.latency + 1, unit.latency + 11))  # one per cycle after the latency
