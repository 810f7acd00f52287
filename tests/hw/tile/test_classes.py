"""The tile's ClassIndex alone, in Amaranth's simulator: a last layer's accumulator words in (sign-extended,
``words`` per vector), each vector's class index out, equal to the golden model's
``lowbit.sw.golden.class_index`` over the first ``classes`` channels: ties (the first of equals), all
negative accumulators, the most negative and most positive ``acc_width``-bit values, padded channels that
hold the largest value (skipped), one class, under idle input and output back-pressure."""

import random

import numpy as np
import pytest

from lowbit.hw.tile.classes import ClassIndex
from lowbit.sw.golden import class_index
from lowbit.sw.host.packing import WORD_MASK
from lowbit.sw.protocol import Family, TileGeometry

from ..streamsim import exchange

ACC_WIDTH = 12


def _geometry(pe):
    return TileGeometry(Family.BINARY, pe, 8, 64, 64, 64, acc_width=ACC_WIDTH, max_layers=2)


def _vectors(rng, batch, classes, words):
    """``(batch, words)`` accumulators: the first ``classes`` the layer's, the rest padded channels."""
    low, high = -(1 << (ACC_WIDTH - 1)), (1 << (ACC_WIDTH - 1)) - 1
    acc = np.array([[rng.randint(low, high) for _ in range(words)] for _ in range(batch)], dtype=np.int64)
    acc[0, :classes] = 7  # all equal: class 0
    if batch > 1:
        acc[1, :classes] = rng.randint(low, -1)  # all negative and equal; the padding above them
        acc[1, classes:] = high
        acc[1, classes - 1] = acc[1, 0] + 1  # the last class wins
    if batch > 2:
        acc[2, :classes] = low  # the most negative value everywhere, then a tie of the largest
        acc[2, classes // 2 :: 2][: max(0, classes - classes // 2)] = high
        acc[2, classes:] = high
    if batch > 3 and classes > 2:
        acc[3, :classes] = low
        acc[3, [1, classes - 1]] = 5  # a tie after the first channel: class 1
    return acc


@pytest.mark.parametrize(
    "pe, classes, folds, valid_pattern, ready_pattern",
    [
        (4, 10, 3, (1,), (1,)),  # two padded channels in the last fold
        (8, 8, 1, (1, 0, 1), (0, 1, 1)),  # no padding; idle input and back-pressure
        (4, 1, 1, (1,), (1, 0)),  # one class: always 0
        (2, 5, 4, (0, 1), (1,)),  # three padded channels (one fold and a half)
    ],
)
def test_class_index(pe, classes, folds, valid_pattern, ready_pattern, seed=20261206):
    rng = random.Random(seed)
    per_vector = pe * folds
    batch = 12
    acc = _vectors(rng, batch, classes, per_vector)
    words = [int(v) & WORD_MASK for v in acc.reshape(-1)]
    expected = class_index(acc[:, :classes]).tolist()
    unit = ClassIndex(_geometry(pe))
    inputs = [(unit.classes, classes), (unit.words, per_vector)]
    got = exchange(unit, words, batch, ready_pattern, valid_pattern, 100 + 4 * len(words), inputs)
    assert got == expected, f"seed {seed}: got {got}, expected {expected}"
    if classes > 2:
        assert expected[:4] == [0, classes - 1, classes // 2, 1]  # the corner cases are what they say
