"""NHotDotProduct's Verilog in Verilator against golden nhot_dot (== only), with corner vectors."""

import numpy as np
import pytest

from lowbit.hw.units.nhot import NHotDotProduct
from lowbit.sim.verilator import run_vectors
from lowbit.sw.golden import nhot_dot
from lowbit.sw.kinds.encodings import nhot_nearest, nhot_terms

pytestmark = pytest.mark.verilator


def pack(unit, x, present, sign, exponent):
    """Payload integers of ``unit.i`` from ``x`` ``(count, n)`` and terms ``(count, n, n_terms)``,
    at the offsets the unit's layout gives (x two's complement, k bits each)."""
    layout = unit.i.payload.shape()
    x_field, terms_field = layout["x"], layout["terms"]
    term = terms_field.shape.elem_shape.elem_shape
    k, term_width = x_field.shape.elem_shape.width, term.size
    fields = {"present": present, "sign": sign, "exponent": exponent}
    words = []
    for v in range(len(x)):
        word = 0
        for i, value in enumerate(x[v]):
            word |= (int(value) & ((1 << k) - 1)) << (x_field.offset + i * k)
        for i in range(present.shape[1]):
            for j in range(present.shape[2]):
                at = terms_field.offset + (i * present.shape[2] + j) * term_width
                for name, values in fields.items():
                    word |= int(values[v, i, j]) << (at + term[name].offset)
        words.append(word)
    return words


def vectors(n, n_terms, k, signed_x, weight_bits, count, rng):
    """Random x and terms (any terms, legal exponents) with the corners first: every term at the
    largest shift against the extreme activation with both signs (the two extremes of the result),
    all-zero weights, all-zero activations, and (for 8-bit weights) n-hot weights from nhot_terms."""
    low, high = (-(1 << (k - 1)), 1 << (k - 1)) if signed_x else (0, 1 << k)
    x = rng.integers(low, high, (count, n))
    present, sign = rng.integers(0, 2, (2, count, n, n_terms))
    exponent = rng.integers(0, weight_bits, (count, n, n_terms))
    x_extreme = low if signed_x else high - 1
    present[:4], exponent[:4], x[:4] = 1, weight_bits - 1, x_extreme
    sign[:4] = np.array([0, 1, 0, 1])[:, None, None]
    x[2:4] = high - 1 if signed_x else 0  # the other extreme of x
    present[4:8] = 0  # all-zero weights
    x[8:12] = 0  # all-zero activations
    present[12:14] = 1
    sign[12:14] = 0
    exponent[12:14] = 0  # weights +n_terms, random x
    if weight_bits == 8:  # real n-hot weights (non-adjacent form)
        q = nhot_nearest(rng.integers(-127, 128, (count - 20, n)), n_terms)
        present[20:], sign[20:], exponent[20:] = nhot_terms(q, n_terms)
    return x, present, sign, exponent


@pytest.mark.parametrize(
    "n, n_terms, k, signed_x, weight_bits, seed",
    [
        (1, 1, 8, True, 8, 601),
        (13, 2, 8, True, 8, 613),
        (13, 3, 5, False, 6, 623),
        (64, 2, 4, False, 8, 664),
        (64, 3, 8, True, 8, 674),
        (16, 4, 8, False, 8, 684),  # four terms: 8-bit integer weights
    ],
)
def test_nhot_dot(n, n_terms, k, signed_x, weight_bits, seed):
    unit = NHotDotProduct(n, n_terms, k, signed_x, weight_bits)
    rng = np.random.default_rng(seed)
    x, present, sign, exponent = vectors(n, n_terms, k, signed_x, weight_bits, 1000, rng)
    expected = nhot_dot(x, present, sign, exponent)
    # The corners reach both ends of the exact output range.
    max_x = (1 << (k - 1)) if signed_x else (1 << k) - 1
    extreme = n * n_terms * max_x << (weight_bits - 1)
    assert sorted(expected[:2].tolist()) == [-extreme, extreme], f"seed {seed}"
    assert (expected[4:12] == 0).all()
    inputs = pack(unit, x, present, sign, exponent)
    layout = unit.i.payload.shape()
    for v in (0, 1, 20):  # the packer agrees with Amaranth's own layout
        const = layout.const(
            {
                "x": [int(a) for a in x[v]],
                "terms": [
                    [{"present": int(p), "sign": int(s), "exponent": int(e)} for p, s, e in zip(*row)]
                    for row in zip(present[v], sign[v], exponent[v])
                ],
            }
        )
        assert const.as_bits() == inputs[v]
    name = f"nhot_n{n}_t{n_terms}_k{k}{'s' if signed_x else 'u'}_b{weight_bits}"
    run_vectors(unit, inputs, expected.tolist(), toplevel=name, seed=seed, name=f"seed{seed}")
