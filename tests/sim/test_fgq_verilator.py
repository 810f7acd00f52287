"""FGQDotProduct's Verilog in Verilator against fgq_dot (== only), widths not a multiple of 8 included."""

import numpy as np
import pytest

from lowbit.hw.units.fgq import FGQDotProduct
from lowbit.sim.verilator import run_vectors
from lowbit.sw.golden import fgq_dot
from lowbit.sw.kinds.encodings import encode_ternary
from lowbit.sw.kinds.packing import bits_to_int

pytestmark = pytest.mark.verilator


def vectors(n, group_size, k, is_signed, count, rng):
    """Random ``(a, t, alpha)`` rows, the first 64 corner cases."""
    low, high = (-(2 ** (k - 1)), 2 ** (k - 1) - 1) if is_signed else (0, 2**k - 1)
    extreme = low if is_signed else high  # the activation with the largest |t * a|
    groups = n // group_size
    a = rng.integers(low, high + 1, (count, n))
    t = rng.integers(-1, 2, (count, n))
    alpha = rng.integers(0, 256, (count, groups))
    t[0:8] = 0  # all-zero weights, any activations and scales
    a[8:16], alpha[8:16] = extreme, 255  # maximal |partial sums| with alpha = 255:
    t[8:12], t[12:16] = 1, -1  # the maximum and the minimum of the result
    a[16:20], t[16:20], alpha[16:20] = high, 1, 255  # and with the other extreme activation
    a[20:24], t[20:24], alpha[20:24] = low, -1, 255
    alpha[24:32] = 0  # alpha = 0: nothing counts
    alpha[32:40] = rng.choice([0, 255], (8, groups))  # groups at both scale extremes, weights random
    a[40:48] = rng.choice([low, high], (8, n))  # activations at their extremes, weights random
    alpha[40:48] = 255
    t[48:56] = np.where(np.arange(n) // group_size % 2, 1, -1)  # groups of alternating sign
    a[48:56], alpha[48:56] = extreme, 255
    a[56:64] = 0
    return a, t, alpha


def payloads(unit, a, t, alpha):
    layout = unit.i.payload.shape()
    rows = []
    for a_row, t_row, alpha_row in zip(a, t, alpha):
        nz, sign = encode_ternary(t_row)
        rows.append(
            layout.const(
                {"a": a_row.tolist(), "t_nz": bits_to_int(nz), "t_sign": bits_to_int(sign), "alpha": alpha_row.tolist()}
            ).as_bits()
        )
    return rows


@pytest.mark.parametrize(
    "n, group_size, k, is_signed, depth, seed",
    [
        (12, 4, 4, True, 1, 1204),  # 12 taps of 4 bits: a 48-bit activation field
        (64, 4, 8, False, None, 6404),  # FGQ's N = 4, 16 groups, default pipeline
        (64, 64, 8, True, 8, 6464),  # FGQ's N = 64: one multiply; every level registered
    ],
)
def test_fgq_dot(n, group_size, k, is_signed, depth, seed):
    unit = FGQDotProduct(n, group_size, k, is_signed, depth)
    a, t, alpha = vectors(n, group_size, k, is_signed, 1000, np.random.default_rng(seed))
    expected = fgq_dot(a, t, alpha, group_size)
    bound = 255 * n * (2 ** (k - 1) if is_signed else 2**k - 1)
    assert expected.max() == bound and expected.min() == -bound  # the corners reach the extremes
    kind = "s" if is_signed else "u"
    run_vectors(
        unit,
        payloads(unit, a, t, alpha),
        expected.tolist(),
        toplevel=f"fgq_dot_n{n}_g{group_size}_{kind}{k}",
        seed=seed,
        name=f"seed{seed}",
    )
