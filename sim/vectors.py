"""Test vectors for the units, with the expected outputs from the golden model.

Each generator returns ``(inputs, expected)``: payloads as integers laid out by the unit's input
layout, and the golden outputs, ready for :func:`lowbit.sim.verilator.run_vectors`.
"""

import numpy as np

from lowbit.hw.units.binary_dot import BinaryDotInput
from lowbit.sw.golden import xor_popcount
from lowbit.sw.kinds.packing import bits_to_int, pack_bits

__all__ = ["pack_field", "pack_payloads", "unpack_array", "binary_corner_vectors", "xor_popcount_vectors"]


def pack_field(values, element_width):
    """Rows of integers ``(count, m)`` (or scalars ``(count,)``) as Python ints, element ``i`` of a row
    at bits ``i * element_width``, each in two's complement of ``element_width`` bits."""
    values = np.asarray(values)
    if values.ndim == 1:
        values = values[:, None]
    mask = (1 << element_width) - 1
    weights = [1 << (i * element_width) for i in range(values.shape[1])]
    return [sum((int(v) & mask) * wt for v, wt in zip(row, weights)) for row in values]


def _element_width(shape):
    from amaranth.hdl import Shape
    from amaranth.lib import data

    if isinstance(shape, data.ArrayLayout):
        return Shape.cast(shape.elem_shape).width
    return 1  # a plain unsigned(n) field is a vector of n bits (or one scalar, see pack_payloads)


def pack_payloads(layout, **fields):
    """Payload integers of ``layout`` (a ``StructLayout``) from one array per field.

    A field that is an ``ArrayLayout`` takes rows ``(count, length)`` of integers; a plain field takes
    rows of 0/1 ``(count, width)`` (a bit vector, element ``i`` at bit ``i``) or, given as ``(count,)``,
    one integer per payload (two's complement: a signed ``w_sum`` or ``acc``).
    """
    names = set(layout.members)
    if set(fields) != names:
        raise ValueError(f"fields {sorted(fields)} do not match the layout's {sorted(names)}")
    count = {len(np.asarray(v)) for v in fields.values()}
    if len(count) != 1:
        raise ValueError(f"every field needs the same number of payloads, not {sorted(count)}")
    total = [0] * count.pop()
    for name, values in fields.items():
        field = layout[name]
        values = np.asarray(values)
        width = field.width if values.ndim == 1 else _element_width(field.shape)
        for j, word in enumerate(pack_field(values, width)):
            total[j] |= word << field.offset
    return total


def unpack_array(words, length, element_width, signed=True):
    """Inverse of :func:`pack_field` for one packed int per row: ``int64`` ``(count, length)``."""
    mask = (1 << element_width) - 1
    rows = [[(w >> (i * element_width)) & mask for i in range(length)] for w in words]
    out = np.array(rows, dtype=np.int64).reshape(len(words), length)
    if signed:
        out = np.where(out >= 1 << (element_width - 1), out - (1 << element_width), out)
    return out


def binary_corner_vectors(n):
    """(a, w) bit vectors: all agreeing, all disagreeing, alternating, one lane agreeing at either end."""
    zeros, ones = np.zeros(n, np.uint8), np.ones(n, np.uint8)
    alternating = (np.arange(n) % 2).astype(np.uint8)
    first, last = np.eye(1, n, 0, dtype=np.uint8)[0], np.eye(1, n, n - 1, dtype=np.uint8)[0]
    return [
        (zeros, zeros),  # no disagreement (dot product n): the minimum
        (ones, ones),  # 0
        (ones, zeros),  # n disagreements (dot product -n): the maximum
        (zeros, ones),  # n
        (alternating, 1 - alternating),  # n
        (alternating, alternating),  # 0
        (first, zeros),  # 1
        (last, ones),  # n - 1
    ]


def xor_popcount_vectors(n, count, seed):
    """The corner vectors then ``count`` random ones, as payload integers of :func:`BinaryDotInput`, and
    the golden results (``xor_popcount``)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2, (count, n), dtype=np.uint8)
    w = rng.integers(0, 2, (count, n), dtype=np.uint8)
    a, w = (np.stack(column) for column in zip(*(binary_corner_vectors(n) + list(zip(a, w)))))
    layout = BinaryDotInput(n)
    inputs = [bits_to_int(x) << layout["a"].offset | bits_to_int(y) << layout["w"].offset for x, y in zip(a, w)]
    return inputs, xor_popcount(pack_bits(a), pack_bits(w), n=n).tolist()
