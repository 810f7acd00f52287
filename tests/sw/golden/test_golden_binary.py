import numpy as np
import pytest

from lowbit.sw.golden import binary_dot
from lowbit.sw.kinds.packing import decode_binary, encode_binary, pack_bits, valid_mask


def test_seeds_example():
    a = pack_bits(encode_binary([0.7, -1.2, 0, 3.5, -0.1, 2.2, -4, 0.3]))
    w = pack_bits(encode_binary([0.5, -0.2, -0.8, 0.1, 0.3, -0.4, 0.6, -0.05]))
    assert binary_dot(a, w, n=8) == -2
    assert binary_dot(a, w, pack_bits(valid_mask(6, 8))) == 0  # the last two taps as padding


@pytest.mark.parametrize("n", [1, 7, 63, 64, 65, 100, 200])
def test_matches_integer_reference(n, seed=7):
    rng = np.random.default_rng(seed + n)
    a, w, v = (rng.integers(0, 2, (500, n), dtype=np.uint8) for _ in range(3))
    reference = (decode_binary(a).astype(np.int64) * decode_binary(w) * v).sum(axis=-1)
    got = binary_dot(pack_bits(a), pack_bits(w), pack_bits(v))
    assert np.array_equal(got, reference), f"seed {seed + n}"
    assert np.array_equal(
        binary_dot(pack_bits(a), pack_bits(w), n=n), (decode_binary(a).astype(np.int64) * decode_binary(w)).sum(axis=-1)
    )


def test_extremes():
    ones = pack_bits(np.ones(100, np.uint8))
    zeros = pack_bits(np.zeros(100, np.uint8))
    assert binary_dot(ones, ones, n=100) == 100
    assert binary_dot(ones, zeros, n=100) == -100
    assert binary_dot(ones, zeros, zeros) == 0


def test_errors():
    a = pack_bits(np.ones(10, np.uint8))
    with pytest.raises(TypeError, match="exactly one of valid"):
        binary_dot(a, a)
    with pytest.raises(ValueError, match="same number of words"):
        binary_dot(a, np.zeros(2, np.uint64), n=10)
    with pytest.raises(ValueError, match="n must be between 0 and 64"):
        binary_dot(a, a, n=65)
    with pytest.raises(TypeError, match="packed integer words"):
        binary_dot(np.ones(1), a, n=1)
