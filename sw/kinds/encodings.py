"""Encodings of low-bit values as bit-planes and shift-add terms: the one definition (see ``docs/arithmetic.md``).

NumPy only. Every function is vectorised over leading axes and returns small unsigned planes (``uint8``
0/1 arrays) that :func:`lowbit.sw.kinds.packing.pack_bits` packs into words.

- Ternary ``t`` in {-1, 0, +1}: two planes, ``nz`` (1 for non-zero) and ``sign`` (1 for negative).
- FATNN activations ``a`` in {0, 1, 2}: the ternary planes of ``a' = a - 1``.
- k-bit integers: ``k`` bit-planes, plane ``b`` holding bit ``b`` (two's complement when signed).
- n-hot weights: ``q = sum_j s_j * 2**e_j`` in the non-adjacent form, largest exponent first.
- Activation codes: what a threshold unit emits and the next layer consumes (:func:`activation_values`).
"""

import numpy as np

from lowbit.sw.kinds import INPUTS, InputKind, tap_pad_code

__all__ = [
    "ACTIVATION_KINDS",
    "encode_ternary",
    "decode_ternary",
    "encode_fatnn_activation",
    "bit_planes",
    "activation_levels",
    "activation_values",
    "activation_value_range",
    "pad_code",
    "accumulator_range",
    "signed_bits",
    "nhot_term_count",
    "nhot_values",
    "nhot_nearest",
    "nhot_terms",
]

#: Integer activation kinds (:class:`lowbit.sw.kinds.InputKind` but float): ``binary`` (code 1 = +1, 0 = -1),
#: ``ternary`` (code c means c - 1), ``fatnn`` (code c means c, in {0, 1, 2}) and ``uint`` (k-bit, c means c).
ACTIVATION_KINDS = tuple(str(kind) for kind in InputKind if kind != InputKind.FLOAT)


def _int_array(x, name):
    x = np.asarray(x)
    if x.dtype == bool:
        return x.astype(np.int64)
    if not np.issubdtype(x.dtype, np.integer):
        raise TypeError(f"{name} must be an integer array, not {x.dtype}")
    return x.astype(np.int64)


def _check_values(x, allowed, name):
    bad = ~np.isin(x, allowed)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} must hold only {', '.join(map(str, allowed))}, not {int(x[index])} (at index {index})"
        )


def _check_bits(bits, name="k", low=1, high=8):
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not low <= bits <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, not {bits!r}")
    return int(bits)


def encode_ternary(t):
    """Ternary values {-1, 0, +1} to the planes ``(nz, sign)``: ``nz`` = 1 for non-zero, ``sign`` = 1 for -1.

    Returns two ``uint8`` 0/1 arrays of the shape of ``t``. Zero has ``sign`` = 0.
    """
    t = _int_array(t, "t")
    _check_values(t, (-1, 0, 1), "t")
    return (t != 0).astype(np.uint8), (t < 0).astype(np.uint8)


def decode_ternary(nz, sign):
    """Inverse of :func:`encode_ternary`: ``nz * (1 - 2 * sign)`` as ``int8`` (``sign`` is ignored where ``nz`` = 0)."""
    nz, sign = _int_array(nz, "nz"), _int_array(sign, "sign")
    _check_values(nz, (0, 1), "nz")
    _check_values(sign, (0, 1), "sign")
    return (nz * (1 - 2 * sign)).astype(np.int8)


def encode_fatnn_activation(a):
    """FATNN activations ``a`` in {0, 1, 2} to the ternary planes ``(nz, sign)`` of ``a' = a - 1``.

    Padding taps must be encoded as ``a' = 0`` (``nz`` = 0) and carry ``w_nz`` = 0 on the weight side,
    so they add nothing to the popcounts *and* nothing to ``sum(w)`` (padding weights are 0).
    """
    a = _int_array(a, "a")
    _check_values(a, (0, 1, 2), "a")
    return encode_ternary(a - 1)


def bit_planes(a, k, signed=False):
    """The ``k`` bit-planes of k-bit integers ``a``: ``uint8`` of shape ``(k,) + a.shape``, plane ``b`` = bit ``b``.

    Unsigned ``a`` must lie in ``0 .. 2**k - 1``; signed ``a`` in ``-2**(k-1) .. 2**(k-1) - 1`` and is
    taken in two's complement, so the value is ``sum_b plane_b * 2**b`` minus ``plane_{k-1} * 2**k``.
    """
    k = _check_bits(k)
    a = _int_array(a, "a")
    low, high = (-(1 << (k - 1)), (1 << (k - 1)) - 1) if signed else (0, (1 << k) - 1)
    if a.size and (a.min() < low or a.max() > high):
        bad = a[(a < low) | (a > high)].flat[0]
        raise ValueError(
            f"a must lie in {low} .. {high} for {k}-bit {'signed' if signed else 'unsigned'} values, not {int(bad)}"
        )
    code = a & ((1 << k) - 1)
    shifts = np.arange(k, dtype=np.int64).reshape((k,) + (1,) * a.ndim)
    return ((code[None] >> shifts) & 1).astype(np.uint8)


def _activation(kind, bits):
    """The registry entry of an integer activation kind, and its bits checked against the kind's range."""
    info = INPUTS.get(kind) if isinstance(kind, str) else None
    if info is None or kind == InputKind.FLOAT:  # float activations have no codes
        raise ValueError(f"activation kind must be one of {', '.join(ACTIVATION_KINDS)}, not {kind!r}")
    low, high = info.bits
    bits = low if low == high and bits is None else _check_bits(bits, "bits", low, high)
    return info, bits


def activation_levels(kind, bits=None):
    """Number of codes of an activation: 2 (binary), 3 (ternary, FATNN), ``2**bits`` (uint),
    ``2**bits - 1`` (int: symmetric)."""
    info, bits = _activation(kind, bits)
    return info.levels(bits)


def activation_value_range(kind, bits=None):
    """``(min, max)`` of the integer values of an activation kind (see :func:`activation_values`)."""
    info, bits = _activation(kind, bits)
    return info.value(0, bits), info.value(info.levels(bits) - 1, bits)


def activation_values(codes, kind, bits=None):
    """Activation codes (``0 .. levels - 1``) to the integer values that enter the dot products.

    ``binary``: ``2c - 1`` (bit 1 = +1); ``ternary``: ``c - 1``; ``fatnn`` and ``uint``: ``c``; ``int``:
    ``c - (2**(k-1) - 1)`` (:data:`lowbit.sw.kinds.INPUTS`). Returns ``int64``.
    """
    info, bits = _activation(kind, bits)
    levels = info.levels(bits)
    codes = _int_array(codes, "codes")
    if codes.size and (codes.min() < 0 or codes.max() >= levels):
        bad = codes[(codes < 0) | (codes >= levels)].flat[0]
        raise ValueError(f"{kind} activation codes must lie in 0 .. {levels - 1}, not {int(bad)}")
    return info.value(codes, bits)


def pad_code(kind, bits=None):
    """The code a padded tap of a convolution takes (:func:`lowbit.sw.kinds.tap_pad_code`: value 0, or for
    ``binary`` activations, which have no zero, +1), the kind and bits checked."""
    bits = _activation(kind, bits)[1]
    return tap_pad_code(kind, bits)


def signed_bits(lo, hi):
    """Bits of the smallest two's complement integer that holds every value in ``lo .. hi``."""
    lo, hi = int(lo), int(hi)
    return (
        max(lo.bit_length() if lo >= 0 else (~lo).bit_length(), hi.bit_length() if hi >= 0 else (~hi).bit_length()) + 1
    )


def accumulator_range(effective_weights, input_kind, input_bits=None):
    """Per-channel ``(lo, hi)`` (``int64``) of ``sum_i w_ci * a_i`` over every input the activation kind allows.

    ``effective_weights`` is the integer ``(out, in)`` matrix each tap multiplies by (FGQ: ``t * alpha_q``).
    """
    vmin, vmax = activation_value_range(input_kind, input_bits)
    w = np.asarray(effective_weights, dtype=np.int64)
    lo = np.minimum(w * vmin, w * vmax).sum(axis=-1)
    hi = np.maximum(w * vmin, w * vmax).sum(axis=-1)
    return lo, hi


# --- n-hot (sums of signed powers of two) -------------------------------------------------------------


def _naf_digits(q, digits):
    """Non-adjacent-form digits of ``q``: ``int64`` (..., digits), digit ``e`` in {-1, 0, +1} weighs ``2**e``."""
    sign = np.where(q < 0, -1, 1)
    m = np.abs(q)
    out = np.zeros(q.shape + (digits,), dtype=np.int64)
    for e in range(digits):
        d = np.where(m & 1, 2 - (m & 3), 0)
        out[..., e] = d * sign
        m = (m - d) >> 1
    if m.size and m.any():
        raise ValueError(f"values too large for {digits} signed digits")
    return out


def _check_nhot_args(n_terms, bits):
    bits = _check_bits(bits, "bits", 2, 16)
    if isinstance(n_terms, bool) or not isinstance(n_terms, (int, np.integer)) or not 1 <= n_terms <= bits:
        raise ValueError(f"n_terms must be an integer from 1 to {bits}, not {n_terms!r}")
    return int(n_terms), bits


def _check_weight_range(q, bits, name="q"):
    limit = (1 << (bits - 1)) - 1
    if q.size and np.abs(q).max() > limit:
        bad = q[np.abs(q) > limit].flat[0]
        raise ValueError(f"{name} must lie in -{limit} .. {limit} for {bits}-bit signed weights, not {int(bad)}")


def nhot_term_count(q, bits=8):
    """The least number of signed powers of two that sum to each ``q`` (the weight of its non-adjacent form)."""
    bits = _check_bits(bits, "bits", 2, 16)
    q = _int_array(q, "q")
    _check_weight_range(q, bits)
    return np.count_nonzero(_naf_digits(q, bits + 1), axis=-1)


def nhot_values(n_terms, bits=8):
    """Sorted ``int64`` values of ``-(2**(bits-1) - 1) .. 2**(bits-1) - 1`` that are sums of at most ``n_terms``
    signed powers of two (15, 87, 207 values for ``n_terms`` = 1, 2, 3 at 8 bits)."""
    n_terms, bits = _check_nhot_args(n_terms, bits)
    limit = (1 << (bits - 1)) - 1
    q = np.arange(-limit, limit + 1, dtype=np.int64)
    return q[nhot_term_count(q, bits) <= n_terms]


def nhot_nearest(q, n_terms, bits=8):
    """Round b-bit signed integers ``q`` to the nearest value with at most ``n_terms`` terms.

    Ties go toward the smaller magnitude (the lowbit rule, docs/arithmetic.md): 84 -> 80 (not 88) for 2 terms.
    Returns ``int64`` of the shape of ``q``.
    """
    values = nhot_values(n_terms, bits)
    q = _int_array(q, "q")
    _check_weight_range(q, bits)
    upper = np.clip(np.searchsorted(values, q, side="left"), 0, len(values) - 1)
    lower = np.clip(upper - 1, 0, len(values) - 1)
    hi, lo = values[upper], values[lower]
    d_hi, d_lo = np.abs(hi - q), np.abs(q - lo)
    tie_pick = np.where(np.abs(lo) <= np.abs(hi), lo, hi)
    return np.where(d_lo < d_hi, lo, np.where(d_hi < d_lo, hi, tie_pick))


def nhot_terms(q, n_terms, bits=8):
    """Decompose n-hot integers into ``n_terms`` terms ``(present, sign, exponent)``, each ``uint8`` (..., n_terms).

    ``q = sum_j present_j * (-1)**sign_j * 2**exponent_j``. The terms are the non-adjacent form of ``q``
    (the unique decomposition with the fewest terms, no two exponents adjacent), largest exponent first;
    unused terms have ``present = sign = exponent = 0``. Exponents lie in ``0 .. bits - 1``.
    Raises ``ValueError`` naming the first value that needs more than ``n_terms`` terms or is out of range.
    """
    n_terms, bits = _check_nhot_args(n_terms, bits)
    q = _int_array(q, "q")
    _check_weight_range(q, bits)
    digits = _naf_digits(q, bits + 1)
    count = np.count_nonzero(digits, axis=-1)
    if q.size and count.max() > n_terms:
        index = tuple(int(i) for i in np.argwhere(count > n_terms)[0])
        raise ValueError(
            f"q = {int(q[index])} (at index {index}) is not representable with {n_terms} "
            f"signed powers of two of {bits} bits: it needs {int(count[index])}"
        )
    order = np.argsort(digits[..., ::-1] == 0, axis=-1, kind="stable")[..., :n_terms]  # non-zero first
    exponent = bits - order  # reversed digit index -> exponent (highest first)
    d = np.take_along_axis(digits, exponent, axis=-1)
    present = d != 0
    exponent = np.where(present, exponent, 0)
    return present.astype(np.uint8), (d < 0).astype(np.uint8), exponent.astype(np.uint8)
