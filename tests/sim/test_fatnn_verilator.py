"""FATNN's kernel as the tile runs it, TernaryDotProduct on the planes of a' = a - 1, and a PEArray of it,
in Verilator against golden fatnn_dot without sum(w) (the tile adds it as the channel's bias; == only)."""

import numpy as np
import pytest

from lowbit.hw.units.ternary_dot import TernaryDotProduct
from lowbit.hw.units.unit import PEArray
from lowbit.sim.vectors import pack_payloads, unpack_array
from lowbit.sim.verilator import run_vectors
from lowbit.sw.golden import fatnn_dot
from lowbit.sw.kinds.encodings import encode_fatnn_activation, encode_ternary
from lowbit.sw.kinds.packing import pack_bits

pytestmark = pytest.mark.verilator


def fatnn_operands(n, count, rng):
    """FATNN activations {0,1,2} and ternary weights, the corners first."""
    a, w = rng.integers(0, 3, (count, n)), rng.integers(-1, 2, (count, n))
    a[:4], w[:4] = 2, 1  # maximum: 2n
    a[4:8], w[4:8] = 2, -1  # minimum: -2n
    w[8:12] = 0  # all-zero weights
    a[12:16] = 1  # a' = 0 everywhere: the product is sum(w), all in the bias
    a[16:20] = 0  # a' = -1 everywhere: -sum(w), cancelled by the bias
    return a, w


def planes(a, w):
    (a_nz, a_sign), (w_nz, w_sign) = encode_fatnn_activation(a), encode_ternary(w)
    return dict(a_nz=a_nz, a_sign=a_sign, w_nz=w_nz, w_sign=w_sign)


def golden(p):
    return fatnn_dot(*(pack_bits(p[k]) for k in ("a_nz", "a_sign", "w_nz", "w_sign")), 0)


@pytest.mark.parametrize("n, seed", [(1, 601), (13, 613), (64, 664), (100, 700)])
def test_fatnn(n, seed):
    unit = TernaryDotProduct(n)
    a, w = fatnn_operands(n, 1500, np.random.default_rng(seed))
    p = planes(a, w)
    expected = golden(p)
    # the golden model with the bias agrees with plain integers
    assert (expected + w.sum(axis=1)).tolist() == (a * w).sum(axis=1).tolist()
    inputs = pack_payloads(unit.i.payload.shape(), **p)
    run_vectors(unit, inputs, expected.tolist(), toplevel=f"fatnn_dot_n{n}", seed=seed, name=f"seed{seed}")


def test_fatnn_pe_array(n=20, pe=4, seed=720):
    """Four channels sharing one activation vector; the output packs the four signed results."""
    array = PEArray(lambda: TernaryDotProduct(n), pe)
    rng = np.random.default_rng(seed)
    a, _ = fatnn_operands(n, 800, rng)
    w = rng.integers(-1, 2, (pe, 800, n))
    w[:, 8:12] = 0
    channel = array.channel_layout
    shared = pack_payloads(array.shared_layout, **{k: v for k, v in planes(a, w[0]).items() if k.startswith("a")})
    expected = np.zeros((800, pe), np.int64)
    inputs = [s << array.i.payload.shape()["shared"].offset for s in shared]
    offset = array.i.payload.shape()["channels"].offset
    for c in range(pe):
        p = planes(a, w[c])
        expected[:, c] = golden(p)
        words = pack_payloads(channel, w_nz=p["w_nz"], w_sign=p["w_sign"])
        inputs = [x | (y << (offset + c * channel.size)) for x, y in zip(inputs, words)]
    width = TernaryDotProduct(n).o.payload.shape().width
    packed = [sum((int(v) & ((1 << width) - 1)) << (c * width) for c, v in enumerate(row)) for row in expected]
    assert (unpack_array(packed, pe, width) == expected).all()
    run_vectors(array, inputs, packed, toplevel=f"fatnn_array_pe{pe}_n{n}", seed=seed, name=f"seed{seed}", signed=False)
