"""MultiThreshold's Verilog in Verilator against multithreshold (== only): 1, 2, 4 and 8-bit codes."""

import numpy as np
import pytest

from lowbit.hw.units.threshold import MultiThreshold
from lowbit.hw.units.unit import PEArray
from lowbit.sim.verilator import run_vectors
from lowbit.sw.golden import multithreshold

pytestmark = pytest.mark.verilator


def vectors(acc_width, bits, count, rng):
    """Random ``(acc, thresholds, descending)`` rows with unsorted thresholds, half of them near the
    accumulator (so every count occurs); the first 48 rows are corner cases."""
    low, high = -(2 ** (acc_width - 1)), 2 ** (acc_width - 1) - 1
    levels = 2**bits - 1
    acc = rng.integers(low, high + 1, count)
    thresholds = rng.integers(low, high + 1, (count, levels))
    descending = rng.integers(0, 2, count).astype(bool)
    near = rng.integers(0, 2, count).astype(bool)
    thresholds[near] = np.clip(acc[near, None] + rng.integers(-3, 4, (near.sum(), levels)), low, high)
    # Accumulator and thresholds at the extremes of signed(acc_width), all combinations, both directions.
    values = (low, low + 1, 0, high - 1, high)
    row = 0
    for a in values:
        for th in (low, high):
            for d in (False, True):
                acc[row], thresholds[row], descending[row] = a, th, d
                row += 1
    # Rows mixing both extreme thresholds, against the extreme accumulators, both directions.
    for a in (low, high):
        for d in (False, True):
            acc[row], descending[row] = a, d
            thresholds[row] = rng.choice([low, high], levels)
            row += 1
    # Equal thresholds: every threshold equal to the accumulator, one below, one above.
    for offset in (0, -1, 1):
        for d in (False, True):
            acc[row], descending[row] = rng.integers(low + 1, high), d
            thresholds[row] = acc[row] + offset
            row += 1
    # Sorted ascending and descending rows of distinct thresholds, the accumulator in the middle.
    for d in (False, True):
        for order in (1, -1):
            th = np.sort(rng.choice(np.arange(-levels, levels + 1), levels, replace=False))[::order]
            acc[row], thresholds[row], descending[row] = 0, th, d
            row += 1
    return acc, thresholds, descending


def payloads(unit, acc, thresholds, descending):
    layout = unit.i.payload.shape()
    return [
        layout.const({"acc": int(a), "thresholds": th.tolist(), "descending": int(d)}).as_bits()
        for a, th, d in zip(acc, thresholds, descending)
    ]


@pytest.mark.parametrize(
    "acc_width, bits, depth, seed",
    [
        (7, 1, 1, 711),  # binary: one threshold, a 1-bit output
        (7, 2, 3, 702),  # ternary / 2-bit codes, every level registered
        (20, 4, None, 2004),  # 15 thresholds of 20 bits, default pipeline (the most a tile compares at
        # once: tiles with more search them, tests/sim/test_tile_differential.py)
    ],
)
def test_multithreshold(acc_width, bits, depth, seed):
    unit = MultiThreshold(acc_width, bits, depth)
    acc, thresholds, descending = vectors(acc_width, bits, 1000, np.random.default_rng(seed))
    expected = multithreshold(acc, thresholds, descending)
    assert set(expected.tolist()) >= {0, 2**bits - 1}
    run_vectors(
        unit,
        payloads(unit, acc, thresholds, descending),
        expected.tolist(),
        toplevel=f"multithreshold_w{acc_width}_b{bits}",
        seed=seed,
        name=f"seed{seed}",
        signed=False,
    )


def test_binary_in_pe_array(seed=701, pe=3):
    """bits = 1 (one threshold: the binary activation) as three channels of a PEArray, which has no
    shared field at all: each channel has its own accumulator, threshold and direction."""
    acc_width, count = 7, 1000
    array = PEArray(lambda: MultiThreshold(acc_width, 1, 1), pe)
    acc, thresholds, descending = vectors(acc_width, 1, count * pe, np.random.default_rng(seed))
    # Spread the corner rows over the channels: row v * pe + c is channel c of vector v.
    expected = multithreshold(acc, thresholds, descending).reshape(count, pe).astype(int)
    layout = array.i.payload.shape()
    inputs = [
        layout.const(
            {
                "shared": {},
                "channels": [
                    {"acc": int(acc[r]), "thresholds": thresholds[r].tolist(), "descending": int(descending[r])}
                    for r in range(v * pe, (v + 1) * pe)
                ],
            }
        ).as_bits()
        for v in range(count)
    ]
    packed = (expected << np.arange(pe)).sum(axis=1)  # channel c at bit c of the output
    run_vectors(
        array,
        inputs,
        packed.tolist(),
        toplevel=f"multithreshold_w{acc_width}_b1_pe{pe}",
        seed=seed,
        name=f"seed{seed}",
        signed=False,
    )
