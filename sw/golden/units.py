"""Golden functions of the arithmetic units, one per hardware block (see ``docs/arithmetic.md``).

Vectors are packed with :func:`lowbit.sw.packing.pack_bits` into 64-bit words (``WORD_WIDTH``).
"""

import numpy as np

from ..packing import WORD_WIDTH, pack_bits, valid_mask

__all__ = ["binary_dot"]


def _words(x, name):
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.integer):
        raise TypeError(f"{name} must hold packed integer words, not {x.dtype}")
    return x.astype(np.uint64)


def _valid_words(valid, n, nwords):
    if (valid is None) == (n is None):
        raise TypeError("give exactly one of valid (a packed mask) and n (the first n taps are valid)")
    if valid is not None:
        return _words(valid, "valid")
    if not 0 <= n <= nwords * WORD_WIDTH:
        raise ValueError(f"n must be between 0 and {nwords * WORD_WIDTH} for {nwords} words, not {n}")
    return pack_bits(valid_mask(n, nwords * WORD_WIDTH))


def binary_dot(a, w, valid=None, *, n=None):
    """Bipolar dot product of packed binary vectors: ``2 * popcount(~(a ^ w) & valid) - popcount(valid)``.

    ``a`` and ``w`` are packed words of shape ``(..., nwords)``; bit 1 is +1, bit 0 is -1. The valid
    taps are given either as a packed mask ``valid`` (taps whose bit is 0 count as 0) or as ``n``,
    meaning taps ``0 .. n-1``. Returns ``int64`` of shape ``(...)``.
    """
    a, w = _words(a, "a"), _words(w, "w")
    if a.shape[-1:] != w.shape[-1:]:
        raise ValueError(f"a and w must have the same number of words, not {a.shape[-1]} and {w.shape[-1]}")
    valid = _valid_words(valid, n, a.shape[-1])
    agree = np.bitwise_count(~(a ^ w) & valid).astype(np.int64).sum(axis=-1)
    return 2 * agree - np.bitwise_count(valid).astype(np.int64).sum(axis=-1)
