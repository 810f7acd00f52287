"""Golden functions of the arithmetic units, one per hardware block (see ``docs/arithmetic.md``).

Vectors are packed with :func:`lowbit.sw.kinds.packing.pack_bits` into 64-bit words (``WORD_WIDTH``).
"""

import numpy as np

from lowbit.sw.kinds.encodings import bit_planes
from lowbit.sw.kinds.packing import WORD_WIDTH, pack_bits, valid_mask

__all__ = [
    "binary_dot",
    "ternary_dot",
    "ternary_binary_dot",
    "fatnn_dot",
    "bitserial_dot",
    "nhot_dot",
    "fgq_dot",
    "multithreshold",
]


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


def xor_popcount(a, w, *, n):
    """``popcount(a ^ w)`` over taps ``0 .. n-1`` of packed binary vectors ``a``, ``w`` (shape
    ``(..., nwords)``): the Hamming distance, which the binary lanes count. ``binary_dot`` of the same
    taps is ``n - 2 * xor_popcount``. Returns ``int64`` of shape ``(...)``."""
    a, w = _words(a, "a"), _words(w, "w")
    if a.shape[-1:] != w.shape[-1:]:
        raise ValueError(f"a and w must have the same number of words, not {a.shape[-1]} and {w.shape[-1]}")
    return np.bitwise_count((a ^ w) & _valid_words(None, n, a.shape[-1])).astype(np.int64).sum(axis=-1)


# --- ternary, FATNN, bit-serial, n-hot, FGQ and threshold units ---------------------------------------


def _pc(x):
    """Popcount summed over the word axis: ``int64`` of shape ``x.shape[:-1]``."""
    return np.bitwise_count(x).astype(np.int64).sum(axis=-1)


def _same_words(**planes):
    widths = {name: p.shape[-1] for name, p in planes.items()}
    if len(set(widths.values())) > 1:
        raise ValueError(
            "packed operands must have the same number of words, not "
            + ", ".join(f"{name}: {w}" for name, w in widths.items())
        )


def ternary_dot(a_nz, a_sign, w_nz, w_sign):
    """Dot product of packed ternary vectors (two-plane encoding): ``sum(a * w)`` for a, w in {-1, 0, +1}.

    Computes ``pc(m & ~(sa ^ sw)) - pc(m & (sa ^ sw))`` with ``m = a_nz & w_nz``: a product is non-zero
    where both are non-zero and negative where the signs differ. Padding taps have ``nz`` = 0 on
    either side. Operands are ``uint64`` words ``(..., nwords)`` (broadcast); returns ``int64`` ``(...)``.
    """
    a_nz, a_sign = _words(a_nz, "a_nz"), _words(a_sign, "a_sign")
    w_nz, w_sign = _words(w_nz, "w_nz"), _words(w_sign, "w_sign")
    _same_words(a_nz=a_nz, a_sign=a_sign, w_nz=w_nz, w_sign=w_sign)
    m = a_nz & w_nz
    differ = a_sign ^ w_sign
    return _pc(m & ~differ) - _pc(m & differ)


def ternary_binary_dot(a, valid, w_nz, w_sign):
    """Binary activations (bit 1 = +1, bit 0 = -1) against ternary weights (two planes): ``sum(a * w)``.

    With ``m = valid & w_nz``, a product is +1 where ``a ^ w_sign`` is 1 and -1 where it is 0:
    ``2 * pc(m & (a ^ w_sign)) - pc(m)``. Taps with ``valid`` = 0 count 0. Packed ``uint64`` words
    ``(..., nwords)`` (broadcast); returns ``int64`` ``(...)``.
    """
    a, valid = _words(a, "a"), _words(valid, "valid")
    w_nz, w_sign = _words(w_nz, "w_nz"), _words(w_sign, "w_sign")
    _same_words(a=a, valid=valid, w_nz=w_nz, w_sign=w_sign)
    m = valid & w_nz
    return 2 * _pc(m & (a ^ w_sign)) - _pc(m)


def fatnn_dot(a_nz, a_sign, w_nz, w_sign, w_sum):
    """FATNN's fast ternary kernel: ``sum(a * w)`` for activations a in {0, 1, 2} and ternary weights w.

    The activation planes are those of ``a' = a - 1`` (:func:`lowbit.sw.kinds.encodings.encode_fatnn_activation`).
    Returns ``pc(m) - 2 * pc(m & (sa ^ sw)) + w_sum`` with ``m = a_nz & w_nz``: two popcounts, because
    ``sum(a' * w) = pc(m) - 2 * pc(m & (sa ^ sw))`` and ``sum(a * w) = sum(a' * w) + sum(w)``.
    ``w_sum`` (int, broadcast to the result) is ``sum(w)`` per output channel; padding weights are 0 and
    add nothing to it. Returns ``int64`` ``(...)``.
    """
    a_nz, a_sign = _words(a_nz, "a_nz"), _words(a_sign, "a_sign")
    w_nz, w_sign = _words(w_nz, "w_nz"), _words(w_sign, "w_sign")
    _same_words(a_nz=a_nz, a_sign=a_sign, w_nz=w_nz, w_sign=w_sign)
    w_sum = np.asarray(w_sum)
    if not np.issubdtype(w_sum.dtype, np.integer):
        raise TypeError(f"w_sum must be an integer array, not {w_sum.dtype}")
    m = a_nz & w_nz
    return _pc(m) - 2 * _pc(m & (a_sign ^ w_sign)) + w_sum.astype(np.int64)


def bitserial_dot(a, k, signed, w_nz, w_sign):
    """k-bit integer activations against packed binary or ternary weights, bit-serially: ``sum(a * w)``.

    ``a`` is an integer array ``(..., n)`` of k-bit values (two's complement when ``signed``), ``w_nz`` and
    ``w_sign`` are the packed weight planes ``(..., nwords)`` (a binary weight is ternary with ``nz`` = 1
    on every valid tap). Plane ``b`` of ``a`` (bit ``b``, 0/1) meets the weights in two popcounts,
    ``d_b = pc(p_b & w_nz & ~w_sign) - pc(p_b & w_nz & w_sign)``, and the result is
    ``sum_b 2**b * d_b``, the MSB plane weighing ``-2**(k-1)`` when ``signed``. Returns ``int64`` ``(...)``.

    By symmetry the same unit multiplies k-bit *weights* by binary activations: pass the weights as ``a``
    and the activations as planes with ``nz`` = valid and ``sign`` = 1 for -1.
    """
    planes = bit_planes(a, k, signed)  # (k, ..., n)
    w_nz, w_sign = _words(w_nz, "w_nz"), _words(w_sign, "w_sign")
    packed = pack_bits(planes)  # (k, ..., nwords)
    _same_words(a=packed, w_nz=w_nz, w_sign=w_sign)
    pos, neg = w_nz & ~w_sign, w_nz & w_sign
    d = _pc(packed & pos) - _pc(packed & neg)  # (k, ...)
    weight = np.int64(1) << np.arange(k, dtype=np.int64)
    if signed:
        weight[-1] = -weight[-1]
    return np.tensordot(weight, d, axes=(0, 0))


def nhot_dot(x, present, sign, exponent):
    """Shift-add dot product with n-hot weights: ``sum_i sum_j present_ij * (-1)**sign_ij * (x_i << e_ij)``.

    ``x`` is an integer array ``(..., n)`` (any sign; the shift is an exact multiplication by ``2**e``);
    ``present``, ``sign``, ``exponent`` are the terms ``(..., n, n_terms)`` from
    :func:`lowbit.sw.kinds.encodings.nhot_terms`, broadcast against ``x[..., None]``. Returns ``int64`` ``(...)``.
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.integer):
        raise TypeError(f"x must be an integer array, not {x.dtype}")
    present, sign, exponent = (np.asarray(v) for v in (present, sign, exponent))
    if not (present.shape == sign.shape == exponent.shape):
        raise ValueError(
            f"present, sign and exponent must have one shape, not {present.shape}, {sign.shape} and {exponent.shape}"
        )
    if present.ndim < 2 or present.shape[-2] != x.shape[-1]:
        raise ValueError(
            f"terms of shape {present.shape} do not fit {x.shape[-1]} activations: "
            f"expected (..., {x.shape[-1]}, n_terms)"
        )
    if exponent.size and (exponent.min() < 0 or exponent.max() > 30):
        raise ValueError(f"exponents must lie in 0 .. 30, not {int(exponent.max())}")
    shifted = np.left_shift(x.astype(np.int64)[..., None], exponent.astype(np.int64))
    term = np.where(sign.astype(bool), -shifted, shifted) * present.astype(bool)
    return term.sum(axis=(-2, -1))


def fgq_dot(a, t, alpha_q, group_size):
    """FGQ's group-scaled ternary dot product: ``sum_g alpha_q[g] * s_g`` with ``s_g = sum_{i in g} t_i * a_i``.

    ``a``: integer activations ``(..., n)``; ``t``: ternary weights ``(..., n)`` (broadcast against ``a``);
    ``alpha_q``: unsigned Q0.8 group scales (integers ``0 .. 255``) of shape ``(..., n / group_size)``,
    group ``g`` being taps ``g*group_size .. (g+1)*group_size - 1``. The partial sums are add/subtract
    only, the one multiply per group is exact (no rounding); the layer's common scale stays outside.
    Returns ``int64`` ``(...)``.
    """
    a, t, alpha_q = np.asarray(a), np.asarray(t), np.asarray(alpha_q)
    for name, v in (("a", a), ("t", t), ("alpha_q", alpha_q)):
        if not np.issubdtype(v.dtype, np.integer):
            raise TypeError(f"{name} must be an integer array, not {v.dtype}")
    if isinstance(group_size, bool) or not isinstance(group_size, (int, np.integer)) or group_size < 1:
        raise ValueError(f"group_size must be a positive integer, not {group_size!r}")
    n = a.shape[-1]
    if t.shape[-1] != n:
        raise ValueError(f"a and t must have the same number of taps, not {n} and {t.shape[-1]}")
    if n % group_size:
        raise ValueError(f"the number of taps ({n}) must be a multiple of group_size ({group_size})")
    if alpha_q.shape[-1] != n // group_size:
        raise ValueError(f"alpha_q must have {n // group_size} groups on its last axis, not {alpha_q.shape[-1]}")
    if t.size and (t.min() < -1 or t.max() > 1):
        raise ValueError(f"t must hold only -1, 0 and +1, not {int(t.max() if t.max() > 1 else t.min())}")
    if alpha_q.size and (alpha_q.min() < 0 or alpha_q.max() > 255):
        raise ValueError(
            f"alpha_q must hold unsigned Q0.8 integers 0 .. 255, "
            f"not {int(alpha_q.max() if alpha_q.max() > 255 else alpha_q.min())}"
        )
    product = a.astype(np.int64) * t.astype(np.int64)
    s = product.reshape(product.shape[:-1] + (n // group_size, group_size)).sum(axis=-1)
    return (s * alpha_q.astype(np.int64)).sum(axis=-1)


def multithreshold(acc, thresholds, descending=False):
    """FINN's MultiThreshold: ``out = sum_i [acc >= T_i]`` per channel, or ``sum_i [acc <= T_i]`` where descending.

    ``acc``: integer accumulators ``(..., C)``; ``thresholds``: integers ``(C, L)`` (``L = 2**k - 1`` for a
    k-bit output, 1 for binary, 2 for ternary/FATNN codes); ``descending``: a bool or a bool per channel
    ``(C,)``, for channels whose batch-norm scale is negative (the comparison flips). The count does not
    depend on the order of a row. Returns ``uint8`` (``uint16`` when ``L`` > 255) of shape ``(..., C)``.
    """
    acc, thresholds = np.asarray(acc), np.asarray(thresholds)
    for name, v in (("acc", acc), ("thresholds", thresholds)):
        if not np.issubdtype(v.dtype, np.integer):
            raise TypeError(f"{name} must be an integer array, not {v.dtype}")
    if thresholds.ndim != 2:
        raise ValueError(f"thresholds must have shape (channels, levels - 1), not {thresholds.shape}")
    channels = thresholds.shape[0]
    if acc.shape[-1:] != (channels,):
        raise ValueError(
            f"acc has {acc.shape[-1] if acc.ndim else 0} channels on its last axis, the thresholds {channels}"
        )
    descending = np.broadcast_to(np.asarray(descending, dtype=bool), (channels,))
    acc = acc.astype(np.int64)[..., None]
    thresholds = thresholds.astype(np.int64)
    hit = np.where(descending[:, None], acc <= thresholds, acc >= thresholds)
    return hit.sum(axis=-1).astype(np.uint8 if thresholds.shape[1] <= 255 else np.uint16)
