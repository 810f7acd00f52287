"""Test vectors for the units, with the expected outputs from the golden model.

Each generator returns ``(inputs, expected)``: payloads as integers laid out by the unit's input
layout, and the golden outputs, ready for :func:`lowbit.sim.verilator.run_vectors`.
"""

import numpy as np

from lowbit.hw.binary_dot import BinaryDotInput
from lowbit.sw.golden import binary_dot
from lowbit.sw.packing import bits_to_int, pack_bits

__all__ = ["binary_corner_vectors", "binary_dot_vectors"]


def binary_corner_vectors(n):
    """(a, w, valid) bit vectors: all zeros, all ones, all disagreeing, nothing valid, padding lengths."""
    zeros, ones = np.zeros(n, np.uint8), np.ones(n, np.uint8)
    alternating = (np.arange(n) % 2).astype(np.uint8)
    vectors = [
        (zeros, zeros, ones),                 # +n: the maximum
        (ones, ones, ones),                   # +n
        (ones, zeros, ones),                  # -n: the minimum
        (zeros, ones, ones),                  # -n
        (alternating, 1 - alternating, ones),  # -n
        (ones, ones, zeros),                  # nothing valid: 0
        (ones, zeros, zeros),                 # 0
    ]
    for valid_count in sorted({1, n // 2, n - 1} - {0, n}):  # padding at the end of a layer
        mask = (np.arange(n) < valid_count).astype(np.uint8)
        vectors += [(ones, ones, mask), (ones, zeros, mask), (alternating, alternating, mask)]
    return vectors


def binary_dot_vectors(n, count, seed):
    """The corner vectors then ``count`` random ones (half fully valid, half with a random mask)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2, (count, n), dtype=np.uint8)
    w = rng.integers(0, 2, (count, n), dtype=np.uint8)
    valid = np.where(rng.random((count, 1)) < 0.5, 1,
                     rng.integers(0, 2, (count, n), dtype=np.uint8)).astype(np.uint8)
    vectors = binary_corner_vectors(n) + list(zip(a, w, valid))
    a, w, valid = (np.stack(column) for column in zip(*vectors))
    layout = BinaryDotInput(n)
    inputs = [sum(bits_to_int(bits) << layout[name].offset for name, bits in zip(("a", "w", "valid"), vector))
              for vector in zip(a, w, valid)]
    return inputs, binary_dot(pack_bits(a), pack_bits(w), pack_bits(valid)).tolist()
