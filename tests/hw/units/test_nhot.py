"""NHotDotProduct: construction, errors, and Amaranth-simulator checks against golden nhot_dot (== only)."""

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from lowbit.hw.units.nhot import NHotDotInput, NHotDotProduct, NHotExponentSerial, exponent_bits, nhot_dot_width
from lowbit.hw.units.unit import PEArray
from lowbit.sw.golden import nhot_dot
from lowbit.sw.kinds.encodings import nhot_nearest, nhot_terms
from tests.hw import streamsim


def term_payload(present, sign, exponent):
    """Terms ``(n, n_terms)`` as the ``terms`` field: a list (per activation) of lists of dicts."""
    return [
        [{"present": int(p), "sign": int(s), "exponent": int(e)} for p, s, e in zip(*row)]
        for row in zip(present, sign, exponent)
    ]


def payload(x, present, sign, exponent):
    return {"x": [int(v) for v in x], "terms": term_payload(present, sign, exponent)}


def random_terms(rng, count, n, n_terms, weight_bits):
    """Arbitrary terms (not only non-adjacent forms: the unit must add any), legal exponents."""
    present, sign = rng.integers(0, 2, (2, count, n, n_terms))
    exponent = rng.integers(0, weight_bits, (count, n, n_terms))
    return present, sign, exponent


def random_x(rng, count, n, k, signed_x):
    low, high = (-(1 << (k - 1)), 1 << (k - 1)) if signed_x else (0, 1 << k)
    return rng.integers(low, high, (count, n))


def test_init():
    unit = NHotDotProduct(8, 2)
    assert unit.latency == 2 and unit.levels() == 5
    assert unit.o.payload.shape() == signed(nhot_dot_width(8, 2)) == signed(20)
    layout = unit.i.payload.shape()
    assert layout == NHotDotInput(8, 2)
    assert layout["x"].shape == data.ArrayLayout(signed(8), 8)
    term = data.StructLayout({"present": 1, "sign": 1, "exponent": 3})
    assert layout["terms"].shape == data.ArrayLayout(data.ArrayLayout(term, 2), 8)
    assert NHotDotProduct(3, 1, 4, False, 4).i.payload.shape()["x"].shape == data.ArrayLayout(unsigned(4), 3)
    assert NHotDotProduct.SHARED_FIELDS == ("x",)
    assert NHotDotProduct(1, 1).levels() == 1 and NHotDotProduct(1, 1).latency == 1


def test_exponent_bits():
    assert [exponent_bits(b) for b in range(2, 9)] == [1, 2, 2, 3, 3, 3, 3]


def test_width_is_exact():
    # n * n_terms * max|x| * 2**(b-1): signed 8-bit x, 8-bit weights, 8 x 2 terms: 16 * 128 * 128 = 2**18.
    assert nhot_dot_width(8, 2) == 20
    assert nhot_dot_width(1, 1, 2, True, 2) == 4  # [-4, 4]: (-2) * (-2)
    assert nhot_dot_width(1, 1, 2, False, 2) == 4  # [-6, 6]: 3 << 1
    assert nhot_dot_width(13, 3, 5, False, 6) == (13 * 3 * 31 * 32).bit_length() + 1


@pytest.mark.parametrize(
    "args, error, message",
    [
        ((0, 2), ValueError, "n must be at least 1, not 0"),
        ((4, 5), ValueError, "n_terms must be between 1 and 4, not 5"),
        ((4, 0), ValueError, "n_terms must be between 1 and 4, not 0"),
        ((4, 2, 9), ValueError, "k must be between 2 and 8, not 9"),
        ((4, 2, 1), ValueError, "k must be between 2 and 8, not 1"),
        ((4, 2, 8, True, 9), ValueError, "weight_bits must be between 2 and 8, not 9"),
        ((4, 2, 8, True, 1), ValueError, "weight_bits must be between 2 and 8, not 1"),
        ((4, 2, 8, 1), TypeError, "signed must be True or False, not 1"),
        ((4.0, 2), TypeError, "n must be an integer, not 4.0"),
        ((4, True), TypeError, "n_terms must be an integer, not True"),
        (
            (4, 2, 8, True, 8, 5),
            ValueError,
            "pipeline_depth must be between 1 and 4 for n=4, n_terms=2, k=8, signed=True, weight_bits=8, not 5",
        ),
        ((4, 2, 8, True, 8, 0), ValueError, "pipeline_depth must be between 1 and 4 for .*, not 0"),
    ],
)
def test_init_wrong(args, error, message):
    with pytest.raises(error, match=message):
        NHotDotProduct(*args)


def test_seeds_nhot_example():
    # n-hot's worked example (b = 8, n = 2, docs/arithmetic.md): q rounds to
    # [112, -48, 15, -127, 72, 6, -34, 80]; sum q * x = -97.
    q = nhot_nearest([105, -52, 15, -127, 72, 6, -34, 84], 2)
    assert q.tolist() == [112, -48, 15, -127, 72, 6, -34, 80]
    x = np.array([3, -7, 12, 5, -1, 9, 4, -2])
    present, sign, exponent = nhot_terms(q, 2)
    outputs, _ = streamsim.simulate(NHotDotProduct(8, 2), [payload(x, present, sign, exponent)])
    assert outputs == [-97] == [int(nhot_dot(x, present, sign, exponent))]


def cases(rng, count, n, n_terms, k, signed_x, weight_bits):
    """Random vectors with corners first: the extremes of the result, zero weights, zero activations."""
    x = random_x(rng, count, n, k, signed_x)
    present, sign, exponent = random_terms(rng, count, n, n_terms, weight_bits)
    x_extreme = -(1 << (k - 1)) if signed_x else (1 << k) - 1
    present[:2], exponent[:2], x[:2] = 1, weight_bits - 1, x_extreme  # largest |result|, both signs
    sign[0], sign[1] = 0, 1
    present[2] = 0  # all-zero weights
    x[3] = 0  # all-zero activations
    return x, present, sign, exponent


@pytest.mark.parametrize(
    "n, n_terms, k, signed_x, weight_bits, seed",
    [
        (1, 1, 2, True, 2, 101),
        (5, 2, 8, True, 8, 102),
        (7, 3, 5, False, 6, 103),
        (16, 3, 8, False, 8, 104),
        (3, 2, 3, True, 3, 105),
        (9, 4, 8, False, 8, 106),  # four terms: 8-bit integer weights
    ],
)
def test_random(n, n_terms, k, signed_x, weight_bits, seed):
    rng = np.random.default_rng(seed)
    x, present, sign, exponent = cases(rng, 60, n, n_terms, k, signed_x, weight_bits)
    expected = nhot_dot(x, present, sign, exponent)
    width = nhot_dot_width(n, n_terms, k, signed_x, weight_bits)
    extreme = n * n_terms * ((1 << (k - 1)) if signed_x else (1 << k) - 1) << (weight_bits - 1)
    assert sorted(expected[:2].tolist()) == [-extreme, extreme] and extreme.bit_length() + 1 == width
    unit = NHotDotProduct(n, n_terms, k, signed_x, weight_bits)
    outputs, _ = streamsim.simulate(unit, [payload(*v) for v in zip(x, present, sign, exponent)])
    assert outputs == expected.tolist(), f"seed {seed}"


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_pipeline_depths(depth, seed=211):
    """Every depth computes the same results and has a latency of ``depth`` cycles."""
    rng = np.random.default_rng(seed)
    x, present, sign, exponent = cases(rng, 20, 5, 1, 6, True, 8)  # 5 leaves: levels 1 + 3
    unit = NHotDotProduct(5, 1, 6, True, 8, depth)
    assert unit.latency == depth
    outputs, cycles = streamsim.simulate(unit, [payload(*v) for v in zip(x, present, sign, exponent)])
    assert outputs == nhot_dot(x, present, sign, exponent).tolist(), f"seed {seed}, depth {depth}"
    assert cycles == [depth + 1 + i for i in range(20)]  # one per cycle, the first after `depth` stages


def test_back_pressure(seed=223):
    """Idle input cycles and a stalled output lose and duplicate nothing."""
    rng = np.random.default_rng(seed)
    x, present, sign, exponent = cases(rng, 40, 6, 2, 7, True, 7)
    outputs, _ = streamsim.simulate(
        NHotDotProduct(6, 2, 7, True, 7, 3),
        [payload(*v) for v in zip(x, present, sign, exponent)],
        ready_pattern=(1, 1, 0, 0, 1),
        valid_pattern=(1, 0, 1),
    )
    assert outputs == nhot_dot(x, present, sign, exponent).tolist(), f"seed {seed}"


def test_illegal_exponent_contributes_zero():
    # weight_bits = 6: exponents are 3 bits, 6 and 7 are not weights; such a term adds nothing.
    unit = NHotDotProduct(1, 2, 4, True, 6, 1)
    terms = [[1, 1], [0, 0], [6, 7]]
    outputs, _ = streamsim.simulate(
        unit, [payload([5], *([t] for t in terms)), payload([5], [[1, 1]], [[1, 0]], [[7, 5]])]
    )
    assert outputs == [0, 5 << 5]


@pytest.mark.parametrize("pe", [1, 3])
def test_pe_array(pe, seed=307):
    """Each channel of a PEArray equals golden nhot_dot of its own weights on the shared activations."""
    rng = np.random.default_rng(seed + pe)
    n, n_terms, k = 6, 2, 8
    payloads, expected = [], []
    for _ in range(30):
        x = random_x(rng, 1, n, k, True)[0]
        channels = [random_terms(rng, 1, n, n_terms, 8) for _ in range(pe)]
        payloads.append(
            {
                "shared": {"x": [int(v) for v in x]},
                "channels": [{"terms": term_payload(p[0], s[0], e[0])} for p, s, e in channels],
            }
        )
        expected.append([int(nhot_dot(x, p[0], s[0], e[0])) for p, s, e in channels])
    array = PEArray(lambda: NHotDotProduct(n, n_terms, k), pe)
    assert set(array.shared_layout.members) == {"x"} and set(array.channel_layout.members) == {"terms"}
    outputs, _ = streamsim.simulate(array, payloads, ready_pattern=(0, 1, 1), valid_pattern=(1, 1, 0))
    assert [[o[c] for c in range(pe)] for o in outputs] == expected, f"seed {seed + pe}"


@pytest.mark.parametrize(
    "n, n_terms, k, signed_x, weight_bits, depth, seed",
    [(1, 1, 2, True, 2, 1, 401), (5, 2, 8, True, 8, 2, 402), (7, 3, 5, False, 6, 3, 403), (16, 2, 8, True, 8, 2, 404)],
)
def test_exponent_serial(n, n_terms, k, signed_x, weight_bits, depth, seed):
    """The exponent-serial design computes the same function, one vector per ``weight_bits`` cycles, under
    idle input and back-pressure; illegal exponents contribute 0 there too."""
    rng = np.random.default_rng(seed)
    x, present, sign, exponent = cases(rng, 30, n, n_terms, k, signed_x, weight_bits)
    if weight_bits == 6:
        exponent[4:6] = 7  # encodable, above weight_bits - 1: counts 0
    unit = NHotExponentSerial(n, n_terms, k, signed_x, weight_bits, depth)
    assert unit.cycles_per_vector == weight_bits and unit.latency == depth + 1
    outputs, _ = streamsim.simulate(
        unit,
        [payload(*v) for v in zip(x, present, sign, exponent)],
        ready_pattern=(1, 0, 1, 1),
        valid_pattern=(1, 1, 0),
    )
    legal = present * (exponent < weight_bits)  # the golden function shifts by any exponent it is given
    assert outputs == nhot_dot(x, legal, sign, exponent).tolist(), f"seed {seed}"
