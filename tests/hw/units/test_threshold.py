"""MultiThreshold: construction, parameter errors, Amaranth-simulator checks against multithreshold (==)."""

import numpy as np
import pytest
from amaranth.hdl import unsigned

from lowbit.hw.units.threshold import MultiThreshold, MultiThresholdInput
from lowbit.hw.units.unit import PEArray
from lowbit.sw.golden import multithreshold
from tests.hw import streamsim


def test_init():
    unit = MultiThreshold(20, 4, 3)
    assert (unit.acc_width, unit.bits, unit.count) == (20, 4, 15)
    assert unit.latency == unit.pipeline_depth == 3
    assert unit.i.payload.shape() == MultiThresholdInput(20, 4)
    assert unit.o.payload.shape() == unsigned(4)
    assert unit.levels() == 5  # the comparators, then 4 adder levels over 15 bits
    assert unit.SHARED_FIELDS == ()
    assert MultiThreshold(7, 1).levels() == MultiThreshold(7, 1).latency == 1
    assert MultiThreshold(7, 8).o.payload.shape() == unsigned(8)
    assert MultiThreshold(40, 8).levels() == 9


@pytest.mark.parametrize(
    "args, error, message",
    [
        ((1, 2), ValueError, "acc_width must be between 2 and 40, not 1"),
        ((41, 2), ValueError, "acc_width must be between 2 and 40, not 41"),
        (("20", 2), TypeError, "acc_width must be an integer, not '20'"),
        ((20, 0), ValueError, "bits must be between 1 and 8, not 0"),
        ((20, 9), ValueError, "bits must be between 1 and 8, not 9"),
        ((20, 2.0), TypeError, "bits must be an integer, not 2.0"),
        ((20, 1, 2), ValueError, "pipeline_depth must be between 1 and 1 for acc_width=20, bits=1, not 2"),
        ((20, 4, 6), ValueError, "pipeline_depth must be between 1 and 5 for acc_width=20, bits=4, not 6"),
    ],
)
def test_init_wrong_parameters(args, error, message):
    with pytest.raises(error, match=message):
        MultiThreshold(*args)


def vectors(acc_width, bits, count, rng):
    """Random ``(acc, thresholds, descending)`` rows (unsorted thresholds), the first ones corner cases:
    thresholds and accumulators at the extremes of ``signed(acc_width)``, all thresholds equal to the
    accumulator, both directions."""
    low, high = -(2 ** (acc_width - 1)), 2 ** (acc_width - 1) - 1
    levels = 2**bits - 1
    acc = rng.integers(low, high + 1, count)
    thresholds = rng.integers(low, high + 1, (count, levels))
    descending = rng.integers(0, 2, count).astype(bool)
    # Accumulators near the thresholds too, so that every count occurs, not only 0 and the maximum.
    near = rng.integers(0, 2, count).astype(bool)
    thresholds[near] = np.clip(acc[near, None] + rng.integers(-2, 3, (near.sum(), levels)), low, high)
    corners = [(low, low), (low, high), (high, low), (high, high), (0, 0)]
    for i, (a, th) in enumerate(corners):
        for d in (False, True):
            row = 2 * i + d
            acc[row], thresholds[row], descending[row] = a, th, d
    thresholds[10, ::2], thresholds[11, ::2] = low, low  # a mix of both extremes against acc = 0
    thresholds[10, 1::2], thresholds[11, 1::2] = high, high
    acc[10:12], descending[10:12] = 0, (False, True)
    return acc, thresholds, descending


def payloads(acc, thresholds, descending):
    return [
        {"acc": int(a), "thresholds": [int(x) for x in th], "descending": int(d)}
        for a, th, d in zip(acc, thresholds, descending)
    ]


def test_golden_examples():
    # The examples of the golden model's tests: three channels, the last one descending.
    thresholds = np.array([[-1, 2, 5], [0, 0, 0], [5, 2, -1]])
    acc = np.array([[-2, 0, 2], [5, -7, 7]])
    descending = np.array([False, False, True])
    rows = [(acc[v, c], thresholds[c], descending[c]) for v in range(2) for c in range(3)]
    outputs, _ = streamsim.simulate(MultiThreshold(4, 2), payloads(*zip(*rows)))
    assert outputs == [0, 3, 2, 3, 0, 0]


@pytest.mark.parametrize(
    "acc_width, bits, depth",
    [
        (2, 1, 1),
        (7, 2, 3),
        (8, 3, 2),
        (20, 4, 5),
        (13, 6, 1),
        (40, 5, 4),
    ],
)
def test_random(acc_width, bits, depth, seed=2016):
    rng = np.random.default_rng(seed + acc_width + bits)
    acc, thresholds, descending = vectors(acc_width, bits, 40, rng)
    outputs, _ = streamsim.simulate(MultiThreshold(acc_width, bits, depth), payloads(acc, thresholds, descending))
    assert outputs == multithreshold(acc, thresholds, descending).tolist(), f"seed {seed + acc_width + bits}"


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_latency_and_full_rate(depth):
    acc, thresholds, descending = vectors(7, 3, 20, np.random.default_rng(4))
    outputs, cycles = streamsim.simulate(MultiThreshold(7, 3, depth), payloads(acc, thresholds, descending))
    assert outputs == multithreshold(acc, thresholds, descending).tolist()
    assert cycles == list(range(1 + depth, 1 + depth + 20))


def test_backpressure_and_idle(seed=88):
    acc, thresholds, descending = vectors(10, 3, 60, np.random.default_rng(seed))
    outputs, _ = streamsim.simulate(
        MultiThreshold(10, 3, 3),
        payloads(acc, thresholds, descending),
        ready_pattern=(1, 0, 1, 1, 0, 0),
        valid_pattern=(1, 1, 0),
    )
    assert outputs == multithreshold(acc, thresholds, descending).tolist(), f"seed {seed}"


def test_full_count_range():
    # Every count 0 .. 15 against sorted thresholds 0 .. 14, in both directions.
    thresholds = np.tile(np.arange(15), (17, 1))
    acc = np.arange(-1, 16)
    for descending in (False, True):
        outputs, _ = streamsim.simulate(MultiThreshold(6, 4), payloads(acc, thresholds, [descending] * 17))
        assert outputs == multithreshold(acc, thresholds, descending).tolist()
        assert sorted(set(outputs)) == list(range(16))


def test_pe_array_without_shared_fields(seed=31):
    # SHARED_FIELDS is empty: the array's shared layout has no members and every field is per channel.
    pe, acc_width, bits = 4, 9, 2
    array = PEArray(lambda: MultiThreshold(acc_width, bits), pe)
    assert list(array.shared_layout.members) == [] and array.shared_layout.size == 0
    assert array.i.payload.shape().size == pe * MultiThresholdInput(acc_width, bits).size
    acc, thresholds, descending = vectors(acc_width, bits, 10 * pe, np.random.default_rng(seed))
    rows = payloads(acc, thresholds, descending)
    outputs, _ = streamsim.simulate(
        array, [{"shared": {}, "channels": rows[v * pe : (v + 1) * pe]} for v in range(10)], ready_pattern=(1, 0)
    )
    got = [out[c] for out in outputs for c in range(pe)]
    assert got == multithreshold(acc, thresholds, descending).tolist(), f"seed {seed}"
