"""The ternary unit (ternary and FATNN activations) on compressor trees of the FPGA's cells (two LUT4
leaves per tap, then carry-chain adders): every target against the golden functions in Amaranth's
simulator, with idle input and back-pressure."""

import numpy as np
import pytest

from lowbit.hw.units.ternary_dot import TernaryDotProduct
from lowbit.sw.golden import fatnn_dot, ternary_dot
from lowbit.sw.kinds.encodings import encode_fatnn_activation, encode_ternary
from lowbit.sw.kinds.packing import bits_to_int, pack_bits
from tests.hw import streamsim

TARGETS = ["generic", "ice40", "ecp5"]
FLOW = {"ready_pattern": (1, 0, 1, 1, 0), "valid_pattern": (1, 1, 0)}


def planes(values):
    nz, sign = encode_ternary(values)
    return bits_to_int(nz), bits_to_int(sign)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("n, depth", [(1, 1), (9, 2), (64, 3)])
def test_ternary(target, n, depth, seed=41):
    rng = np.random.default_rng(seed + n)
    a, w = rng.integers(-1, 2, (2, 30, n))
    payloads = []
    for x, y in zip(a, w):
        (a_nz, a_sign), (w_nz, w_sign) = planes(x), planes(y)
        payloads.append({"a_nz": a_nz, "a_sign": a_sign, "w_nz": w_nz, "w_sign": w_sign})
    outputs, _ = streamsim.simulate(TernaryDotProduct(n, depth, target), payloads, **FLOW)
    (a_nz, a_sign), (w_nz, w_sign) = encode_ternary(a), encode_ternary(w)
    expected = ternary_dot(pack_bits(a_nz), pack_bits(a_sign), pack_bits(w_nz), pack_bits(w_sign)).tolist()
    assert outputs == expected, f"seed {seed + n}, target {target}"


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("n, depth", [(3, 1), (64, 2)])
def test_fatnn(target, n, depth, seed=47):
    rng = np.random.default_rng(seed + n)
    a, w = rng.integers(0, 3, (30, n)), rng.integers(-1, 2, (30, n))
    a_nz, a_sign = encode_fatnn_activation(a)
    w_nz, w_sign = encode_ternary(w)
    payloads = [
        {
            "a_nz": bits_to_int(a_nz[i]),
            "a_sign": bits_to_int(a_sign[i]),
            "w_nz": bits_to_int(w_nz[i]),
            "w_sign": bits_to_int(w_sign[i]),
        }
        for i in range(30)
    ]
    outputs, _ = streamsim.simulate(TernaryDotProduct(n, depth, target), payloads, **FLOW)
    # fatnn_dot without sum(w), which the tile adds as the channel's bias
    expected = fatnn_dot(pack_bits(a_nz), pack_bits(a_sign), pack_bits(w_nz), pack_bits(w_sign), 0).tolist()
    assert outputs == expected, f"seed {seed + n}, target {target}"
    assert (np.array(expected) + w.sum(axis=1)).tolist() == (a * w).sum(axis=1).tolist()


def test_wrong_target():
    with pytest.raises(ValueError, match="target must be one of auto, generic, ice40, ecp5, not 'gowin'"):
        TernaryDotProduct(8, target="gowin")
