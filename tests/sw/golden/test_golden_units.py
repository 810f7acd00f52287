"""The golden per-unit functions: the papers' worked examples (docs/arithmetic.md), exactly, then against
plain integer references."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowbit.sw.golden import (
    binary_dot,
    bitserial_dot,
    fatnn_dot,
    fgq_dot,
    multithreshold,
    nhot_dot,
    ternary_binary_dot,
    ternary_dot,
)
from lowbit.sw.kinds.encodings import (
    bit_planes,
    encode_fatnn_activation,
    encode_ternary,
    nhot_nearest,
    nhot_terms,
    nhot_values,
)
from lowbit.sw.kinds.packing import encode_binary, pack_bits, valid_mask

RANDOM_SEEDS = range(12)
LENGTHS = (1, 7, 63, 64, 65, 130)


def word(bits):
    return int(pack_bits(bits)[0])


# --- the papers' worked examples ------------------------------------------------------------------------------------


def test_binary_example():
    a = encode_binary([0.7, -1.2, 0, 3.5, -0.1, 2.2, -4, 0.3])
    w = encode_binary([0.5, -0.2, -0.8, 0.1, 0.3, -0.4, 0.6, -0.05])
    assert (word(a), word(w)) == (0xAD, 0x59)
    assert binary_dot(pack_bits(a), pack_bits(w), n=8) == -2
    assert binary_dot(pack_bits(a), pack_bits(w), n=6) == 0


def test_twn_example_bitserial():
    t = np.array([1, -1, 0, -1, 1, 0, -1, 0])
    x = np.arange(10, 90, 10)
    nz, sign = encode_ternary(t)
    assert (word(nz), word(sign)) == (0x5B, 0x4A)
    assert bitserial_dot(x, 7, False, pack_bits(nz), pack_bits(sign)) == -70
    assert bitserial_dot(x, 8, False, pack_bits(nz), pack_bits(sign)) == -70
    t75 = np.array([1, 0, 0, -1, 1, 0, -1, 0])
    nz, sign = encode_ternary(t75)
    assert bitserial_dot(x, 7, False, pack_bits(nz), pack_bits(sign)) == -50


def test_fatnn_example():
    w = np.array([-1, 0, 0, 0, 1, 0, 0, -1])
    a = np.array([0, 1, 1, 2, 0, 1, 2, 2])
    a_nz, a_sign = encode_fatnn_activation(a)
    w_nz, w_sign = encode_ternary(w)
    assert (word(a_nz), word(a_sign), word(w_nz), word(w_sign)) == (0xD9, 0x11, 0x91, 0x81)
    m = word(a_nz) & word(w_nz)
    assert (bin(m).count("1"), bin(m & (word(a_sign) ^ word(w_sign))).count("1")) == (3, 2)
    got = fatnn_dot(pack_bits(a_nz), pack_bits(a_sign), pack_bits(w_nz), pack_bits(w_sign), w.sum())
    assert got == -2 == int(a @ w)


def test_nhot_example():
    q = np.array([105, -52, 15, -127, 72, 6, -34, 84])
    x = np.array([3, -7, 12, 5, -1, 9, 4, -2])
    rounded = nhot_nearest(q, 2, 8)
    assert rounded.tolist() == [112, -48, 15, -127, 72, 6, -34, 80]
    present, sign, exponent = nhot_terms(rounded, 2, 8)
    assert nhot_dot(x, present, sign, exponent) == -97
    assert int(q @ x) == -98
    assert [len(nhot_values(n, 8)) for n in (1, 2, 3)] == [15, 87, 207]


def test_fgq_example():
    a = np.array([12, 200, 7, 90, 255, 3, 64, 18])
    t = np.array([1, 0, 1, -1, 0, 0, 0, 1])
    assert fgq_dot(a, t, np.array([113, 179]), 4) == 113 * -71 + 179 * 18 == -4801


def test_multithreshold_examples():
    thresholds = np.array([[-1, 2, 5], [0, 0, 0], [5, 2, -1]])
    acc = np.array([[-2, 0, 2], [5, -7, 7]])
    assert multithreshold(acc, thresholds, [False, False, True]).tolist() == [[0, 3, 2], [3, 0, 0]]
    assert multithreshold(np.array([0, 1]), np.array([[1], [1]])).tolist() == [0, 1]  # binary: one threshold
    assert multithreshold(np.array([0, 1]), np.array([[1], [1]]), True).tolist() == [1, 1]


# --- errors ---------------------------------------------------------------------------------------------


def test_bitserial_wrong_k():
    with pytest.raises(ValueError, match=r"k must be an integer from 1 to 8, not 9"):
        bitserial_dot(np.zeros(4, int), 9, False, pack_bits(np.ones(4, np.uint8)), pack_bits(np.zeros(4, np.uint8)))


def test_bitserial_value_out_of_range():
    with pytest.raises(ValueError, match=r"a must lie in 0 .. 15 for 4-bit unsigned values, not 16"):
        bitserial_dot(np.array([16]), 4, False, pack_bits([1]), pack_bits([0]))
    with pytest.raises(ValueError, match=r"-8 .. 7 for 4-bit signed values, not -9"):
        bitserial_dot(np.array([-9]), 4, True, pack_bits([1]), pack_bits([0]))


def test_nhot_terms_not_representable():
    with pytest.raises(ValueError, match=r"q = 21 \(at index \(1,\)\) is not representable with 2 .* it needs 3"):
        nhot_terms(np.array([3, 21]), 2, 8)
    with pytest.raises(ValueError, match=r"q = 91 .* it needs 4"):
        nhot_terms(np.array([91]), 3, 8)
    with pytest.raises(ValueError, match=r"-127 .. 127 for 8-bit signed weights, not 128"):
        nhot_terms(np.array([128]), 4, 8)


def test_fgq_dot_wrong_groups():
    with pytest.raises(ValueError, match=r"multiple of group_size \(4\)"):
        fgq_dot(np.zeros(6, int), np.zeros(6, int), np.zeros(2, int), 4)
    with pytest.raises(ValueError, match=r"alpha_q must have 2 groups"):
        fgq_dot(np.zeros(8, int), np.zeros(8, int), np.zeros(3, int), 4)
    with pytest.raises(ValueError, match=r"0 .. 255, not 256"):
        fgq_dot(np.zeros(4, int), np.zeros(4, int), np.array([256]), 4)


def test_multithreshold_wrong_shape():
    with pytest.raises(ValueError, match=r"acc has 3 channels .* thresholds 2"):
        multithreshold(np.zeros((1, 3), int), np.zeros((2, 1), int))


def test_ternary_dot_word_mismatch():
    with pytest.raises(ValueError, match=r"same number of words"):
        ternary_dot(np.zeros(1, np.uint64), np.zeros(1, np.uint64), np.zeros(2, np.uint64), np.zeros(2, np.uint64))


def test_encode_ternary_bad_value():
    with pytest.raises(ValueError, match=r"t must hold only -1, 0, 1, not 2 \(at index \(1,\)\)"):
        encode_ternary(np.array([0, 2]))


# --- against plain integer references (seeded; the seed is in every message) -------------------------------


def _ternary(rng, shape):
    return rng.integers(-1, 2, size=shape)


def _planes(t):
    nz, sign = encode_ternary(t)
    return pack_bits(nz), pack_bits(sign)


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_ternary_dot_random(seed):
    rng = np.random.default_rng(seed)
    for n in LENGTHS:
        a, w = _ternary(rng, (5, n)), _ternary(rng, (3, n))
        got = ternary_dot(*(p[:, None] for p in _planes(a)), *_planes(w))
        expected = a @ w.T
        assert np.array_equal(got, expected), f"seed {seed}, n {n}: got {got}, expected {expected}"


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_ternary_binary_dot_random(seed):
    rng = np.random.default_rng(seed)
    for n in LENGTHS:
        bits, w = rng.integers(0, 2, size=(4, n)), _ternary(rng, (3, n))
        valid = valid_mask(int(rng.integers(0, n + 1)), n)
        got = ternary_binary_dot(pack_bits(bits)[:, None], pack_bits(valid), *_planes(w))
        expected = ((2 * bits - 1) * valid) @ w.T
        assert np.array_equal(got, expected), f"seed {seed}, n {n}: got {got}, expected {expected}"


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_fatnn_dot_random(seed):
    rng = np.random.default_rng(seed)
    for n in LENGTHS:
        a, w = rng.integers(0, 3, size=(4, n)), _ternary(rng, (3, n))
        a_nz, a_sign = encode_fatnn_activation(a)
        got = fatnn_dot(pack_bits(a_nz)[:, None], pack_bits(a_sign)[:, None], *_planes(w), w.sum(axis=1))
        expected = a @ w.T
        assert np.array_equal(got, expected), f"seed {seed}, n {n}: got {got}, expected {expected}"


def test_fatnn_identity_exhaustive():
    """Σ a'·w = pc(m) - 2 pc(m & (sa ^ sw)) for every pair of one tap (and so for every vector)."""
    for a in (0, 1, 2):
        for w in (-1, 0, 1):
            a_nz, a_sign = encode_fatnn_activation(np.array([a]))
            got = fatnn_dot(pack_bits(a_nz), pack_bits(a_sign), *_planes(np.array([w])), w)
            assert got == a * w, f"a {a}, w {w}: got {got}"


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
@pytest.mark.parametrize("signed", [False, True])
def test_bitserial_dot_random(seed, signed):
    rng = np.random.default_rng(seed)
    for k in range(1, 9):
        n = int(rng.choice(LENGTHS))
        low, high = (-(1 << (k - 1)), 1 << (k - 1)) if signed else (0, 1 << k)
        a = rng.integers(low, high, size=(4, 1, n))
        w = _ternary(rng, (3, n))
        got = bitserial_dot(a, k, signed, *_planes(w))
        expected = a[:, 0] @ w.T
        assert np.array_equal(got, expected), (
            f"seed {seed}, k {k}, signed {signed}, n {n}: got {got}, expected {expected}"
        )


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_bitserial_swapped_roles(seed):
    """k-bit signed weights against binary activations: the same unit, roles swapped."""
    rng = np.random.default_rng(seed)
    n = int(rng.choice(LENGTHS))
    w = rng.integers(-127, 128, size=(3, n))
    bits = rng.integers(0, 2, size=(4, n))
    valid = np.broadcast_to(pack_bits(np.ones(n, np.uint8)), (4, 1, pack_bits(np.ones(n, np.uint8)).shape[-1]))
    got = bitserial_dot(w[None], 8, True, valid, pack_bits(1 - bits)[:, None])
    expected = (2 * bits - 1) @ w.T
    assert np.array_equal(got, expected), f"seed {seed}: got {got}, expected {expected}"


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
@pytest.mark.parametrize("n_terms", [1, 2, 3, 4])
def test_nhot_dot_random(seed, n_terms):
    rng = np.random.default_rng(seed)
    n = int(rng.choice(LENGTHS))
    q = nhot_nearest(rng.integers(-127, 128, size=(3, n)), n_terms, 8)
    x = rng.integers(-255, 256, size=(4, 1, n))
    got = nhot_dot(x, *nhot_terms(q, n_terms, 8))
    expected = x[:, 0] @ q.T
    assert np.array_equal(got, expected), f"seed {seed}, n_terms {n_terms}: got {got}, expected {expected}"


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
@pytest.mark.parametrize("group_size", [1, 4, 64])
def test_fgq_dot_random(seed, group_size):
    rng = np.random.default_rng(seed)
    n = group_size * int(rng.integers(1, 5))
    a = rng.integers(0, 256, size=(4, 1, n))
    t = _ternary(rng, (3, n))
    alpha = rng.integers(0, 256, size=(3, n // group_size))
    got = fgq_dot(a, t, alpha, group_size)
    expected = a[:, 0] @ (t * np.repeat(alpha, group_size, axis=1)).T
    assert np.array_equal(got, expected), f"seed {seed}, N {group_size}: got {got}, expected {expected}"


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_multithreshold_random(seed):
    rng = np.random.default_rng(seed)
    channels, count = 5, int(rng.choice([1, 2, 3, 15, 255]))
    thresholds = np.sort(rng.integers(-50, 50, size=(channels, count)), axis=1)
    descending = rng.integers(0, 2, size=channels).astype(bool)
    thresholds[descending] = thresholds[descending, ::-1]
    acc = rng.integers(-60, 60, size=(7, channels))
    got = multithreshold(acc, thresholds, descending)
    expected = np.zeros_like(acc)
    for b in range(acc.shape[0]):
        for c in range(channels):
            for th in thresholds[c]:
                expected[b, c] += (acc[b, c] <= th) if descending[c] else (acc[b, c] >= th)
    assert np.array_equal(got, expected), f"seed {seed}: got {got}, expected {expected}"
    assert got.dtype == np.uint8


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-127, 127), min_size=1, max_size=40), st.integers(1, 4))
def test_nhot_terms_round_trip(values, n_terms):
    q = nhot_nearest(np.array(values), n_terms, 8)
    present, sign, exponent = nhot_terms(q, n_terms, 8)
    rebuilt = (present * np.where(sign, -1, 1) * (1 << exponent.astype(np.int64))).sum(axis=-1)
    assert np.array_equal(rebuilt, q)
    assert np.all(np.diff(np.where(present, exponent.astype(int), -1), axis=-1) <= 0)  # largest exponent first
    assert np.all(exponent <= 7)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-1, 1), st.integers(-1, 1)), min_size=1, max_size=150))
def test_ternary_dot_property(pairs):
    a, w = (np.array(v) for v in zip(*pairs))
    assert ternary_dot(*_planes(a), *_planes(w)) == int(a @ w)


def test_bit_planes_twos_complement():
    planes = bit_planes(np.array([-8, -1, 0, 7]), 4, signed=True)
    assert planes.T.tolist() == [[0, 0, 0, 1], [1, 1, 1, 1], [0, 0, 0, 0], [1, 1, 1, 0]]
