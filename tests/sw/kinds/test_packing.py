import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lowbit.sw.kinds.packing import (
    WORD_WIDTH,
    bits_to_int,
    decode_binary,
    encode_binary,
    int_to_bits,
    pack_bits,
    unpack_bits,
    valid_mask,
    words_for,
)


def test_element_i_is_bit_i():
    bits = np.zeros(70, np.uint8)
    bits[[0, 3, 64, 69]] = 1
    words = pack_bits(bits)
    assert words.dtype == np.uint64 and words.shape == (2,)
    assert int(words[0]) == 0b1001 and int(words[1]) == (1 << 0) | (1 << 5)
    assert bits_to_int(bits) == (1 << 0) | (1 << 3) | (1 << 64) | (1 << 69)


def test_seeds_example_bits():
    a = encode_binary([0.7, -1.2, 0, 3.5, -0.1, 2.2, -4, 0.3])  # zero maps to +1
    w = encode_binary([0.5, -0.2, -0.8, 0.1, 0.3, -0.4, 0.6, -0.05])
    assert bits_to_int(a) == 0xAD and bits_to_int(w) == 0x59
    assert decode_binary(a).tolist() == [1, -1, 1, 1, -1, 1, -1, 1]


@given(
    arrays(np.uint8, st.tuples(st.integers(1, 3), st.integers(0, 200)), elements=st.integers(0, 1)),
    st.sampled_from([1, 7, 8, 32, 64]),
)
def test_pack_unpack_roundtrip(bits, word_width):
    words = pack_bits(bits, word_width)
    assert words.shape == bits.shape[:-1] + (words_for(bits.shape[-1], word_width),)
    if word_width < 64:
        assert (words < (1 << word_width)).all()
    assert np.array_equal(unpack_bits(words, bits.shape[-1], word_width), bits)


@given(st.integers(1, 300), st.integers(0, 2**32))
def test_int_roundtrip(n, seed):
    bits = np.random.default_rng(seed).integers(0, 2, n, dtype=np.uint8)
    assert np.array_equal(int_to_bits(bits_to_int(bits), n), bits)


def test_pack_matches_bits_to_int_across_words():
    bits = np.random.default_rng(5).integers(0, 2, 100, dtype=np.uint8)
    words = pack_bits(bits)
    assert int(words[0]) | (int(words[1]) << WORD_WIDTH) == bits_to_int(bits)


def test_valid_mask():
    assert valid_mask(3, 5).tolist() == [1, 1, 1, 0, 0]
    with pytest.raises(ValueError, match="valid count must be between 0 and 5, not 6"):
        valid_mask(6, 5)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.array([0, 2]), "only 0 and 1"),
        (np.array([0.0, 1.0]), "integer or boolean"),
    ],
)
def test_pack_rejects_non_bits(bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        pack_bits(bad)


@pytest.mark.parametrize("width", [0, 65, 8.0])
def test_bad_word_width(width):
    with pytest.raises(ValueError, match="word_width must be an integer from 1 to 64"):
        pack_bits(np.zeros(3, np.uint8), width)


def test_unpack_wrong_word_count():
    with pytest.raises(ValueError, match="100 elements need 2 words of 64 bits, not 1"):
        unpack_bits(np.zeros(1, np.uint64), 100)
