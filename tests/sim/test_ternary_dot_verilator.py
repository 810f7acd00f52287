"""TernaryDotProduct's Verilog in Verilator against golden ternary_dot (== only)."""

import numpy as np
import pytest

from lowbit.hw.units.ternary_dot import TernaryDotProduct
from lowbit.sim.vectors import pack_payloads
from lowbit.sim.verilator import run_vectors
from lowbit.sw.golden import ternary_dot
from lowbit.sw.kinds.packing import pack_bits

pytestmark = pytest.mark.verilator


def corners(n, count, rng):
    a = rng.integers(-1, 2, (count, n))
    w = rng.integers(-1, 2, (count, n))
    a[:4], w[:4] = 0, 0  # all zero
    a[4:8], w[4:8] = 1, 1  # maximum: +n
    a[8:12], w[8:12] = 1, -1  # minimum: -n
    w[12:16] = 0  # all-zero weights
    return a, w


# 1 and 100 lanes; the same unit's Verilog at 13 and 64 lanes runs FATNN's vectors in test_fatnn_verilator.py
@pytest.mark.parametrize("n, seed", [(1, 301), (100, 400)])
def test_ternary_activations(n, seed):
    unit = TernaryDotProduct(n)
    a, w = corners(n, 1500, np.random.default_rng(seed))
    inputs = pack_payloads(unit.i.payload.shape(), a_nz=a != 0, a_sign=a < 0, w_nz=w != 0, w_sign=w < 0)
    expected = ternary_dot(pack_bits(a != 0), pack_bits(a < 0), pack_bits(w != 0), pack_bits(w < 0))
    assert expected.tolist() == (a * w).sum(axis=1).tolist()  # the golden model agrees with plain integers
    run_vectors(unit, inputs, expected.tolist(), toplevel=f"ternary_dot_n{n}", seed=seed, name=f"seed{seed}")
