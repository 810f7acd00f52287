"""Bit packing: the one definition of how lowbit lays vectors into words.

Element ``i`` of a vector is bit ``i`` of the packed value (little-endian, least significant first);
word ``k`` of a packed vector holds elements ``k*word_width ... (k+1)*word_width - 1``. Binary values
use FINN's bipolar convention: bit 1 is +1, bit 0 is -1. See ``docs/packing.md``.

Everything here is vectorised over leading axes: ``bits`` has shape ``(..., n)``, ``words`` has shape
``(..., words_for(n, word_width))``.
"""

import numpy as np

__all__ = [
    "WORD_WIDTH",
    "words_for",
    "pack_bits",
    "unpack_bits",
    "bits_to_int",
    "int_to_bits",
    "encode_binary",
    "decode_binary",
    "valid_mask",
]

#: The default word width of packed vectors in host memory (NumPy ``uint64``).
WORD_WIDTH = 64


def _check_word_width(word_width):
    if not isinstance(word_width, int) or not 1 <= word_width <= 64:
        raise ValueError(f"word_width must be an integer from 1 to 64, not {word_width!r}")


def words_for(n, word_width=WORD_WIDTH):
    """Number of ``word_width``-bit words that hold ``n`` elements of one bit."""
    _check_word_width(word_width)
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer, not {n!r}")
    return -(-int(n) // word_width)


def _as_bits(bits):
    bits = np.asarray(bits)
    if bits.dtype == bool:
        return bits.astype(np.uint8)
    if not np.issubdtype(bits.dtype, np.integer):
        raise TypeError(f"bits must be an integer or boolean array, not {bits.dtype}")
    if bits.size and (bits.min() < 0 or bits.max() > 1):
        raise ValueError("bits must hold only 0 and 1 (use encode_binary for ±1 values)")
    return bits.astype(np.uint8)


def pack_bits(bits, word_width=WORD_WIDTH):
    """Pack a ``(..., n)`` array of 0/1 into ``(..., words_for(n))`` ``uint64`` words.

    Element ``i`` goes to bit ``i % word_width`` of word ``i // word_width``; unused high bits
    of the last word are zero.
    """
    _check_word_width(word_width)
    bits = _as_bits(bits)
    n = bits.shape[-1]
    nwords = words_for(n, word_width)
    padded = np.zeros(bits.shape[:-1] + (nwords * word_width,), dtype=np.uint64)
    padded[..., :n] = bits
    padded = padded.reshape(bits.shape[:-1] + (nwords, word_width))
    shifts = np.arange(word_width, dtype=np.uint64)
    return np.bitwise_or.reduce(padded << shifts, axis=-1).astype(np.uint64)


def unpack_bits(words, n, word_width=WORD_WIDTH):
    """Inverse of :func:`pack_bits`: ``(..., nwords)`` words to a ``(..., n)`` ``uint8`` array."""
    _check_word_width(word_width)
    words = np.asarray(words, dtype=np.uint64)
    if words.shape[-1] != words_for(n, word_width):
        raise ValueError(
            f"{n} elements need {words_for(n, word_width)} words of {word_width} bits, not {words.shape[-1]}"
        )
    shifts = np.arange(word_width, dtype=np.uint64)
    bits = (words[..., :, None] >> shifts) & np.uint64(1)
    return bits.reshape(words.shape[:-1] + (-1,))[..., :n].astype(np.uint8)


def bits_to_int(bits):
    """One vector of 0/1 (any length) as a Python integer, element ``i`` at bit ``i``.

    This is the value of a hardware bus that carries the vector.
    """
    bits = _as_bits(bits)
    if bits.ndim != 1:
        raise ValueError(f"bits_to_int takes one vector, not an array of shape {bits.shape}")
    return int.from_bytes(np.packbits(bits, bitorder="little").tobytes(), "little")


def int_to_bits(value, n):
    """Inverse of :func:`bits_to_int`: the low ``n`` bits of ``value`` as a ``uint8`` vector."""
    if value < 0:
        raise ValueError(f"value must be non-negative, not {value}")
    raw = np.frombuffer(int(value).to_bytes(-(-n // 8) or 1, "little"), dtype=np.uint8)
    return np.unpackbits(raw, bitorder="little")[:n].copy()


def encode_binary(values):
    """±1 (or any real: sign, with 0 → +1) to bits: bit 1 is +1, bit 0 is -1."""
    return (np.asarray(values) >= 0).astype(np.uint8)


def decode_binary(bits):
    """Bits to ±1 as ``int8``: bit 1 is +1, bit 0 is -1."""
    return (2 * _as_bits(bits).astype(np.int8) - 1).astype(np.int8)


def valid_mask(n, total):
    """A 0/1 vector of length ``total`` whose first ``n`` elements are valid (1), the rest padding."""
    if not 0 <= n <= total:
        raise ValueError(f"valid count must be between 0 and {total}, not {n}")
    mask = np.zeros(total, dtype=np.uint8)
    mask[:n] = 1
    return mask
