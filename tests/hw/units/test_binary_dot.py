"""XorPopcount: construction, parameter errors, and Amaranth-simulator checks of
every target (generic tree, iCE40 and ECP5 cell models) against the golden functions."""

import numpy as np
import pytest
from amaranth.hdl import unsigned

from lowbit.hw.units.binary_dot import BinaryDotInput, XorPopcount
from lowbit.hw.units.compressor import TARGETS, evaluate, plan_popcount
from lowbit.sw.golden import xor_popcount
from lowbit.sw.kinds.packing import bits_to_int, encode_binary, pack_bits
from tests.hw import streamsim


def test_init():
    unit = XorPopcount(100, 3)
    assert unit.n == 100 and unit.latency == 3
    assert unit.i.payload.shape() == BinaryDotInput(100)
    assert unit.o.payload.shape() == unsigned(7)  # [0, 100]
    assert XorPopcount(1).o.payload.shape() == unsigned(1)
    assert XorPopcount(64).o.payload.shape() == unsigned(7)  # [0, 64]
    assert XorPopcount(64).levels() == 7


@pytest.mark.parametrize("n", [0, -3, 2.5, "8", True, None])
def test_init_wrong_n(n):
    with pytest.raises((TypeError, ValueError), match=r"n must be"):
        XorPopcount(n)


@pytest.mark.parametrize("n, depth", [(64, 0), (64, 8), (1, 2)])
def test_init_wrong_pipeline_depth(n, depth):
    with pytest.raises(ValueError, match=rf"pipeline_depth must be between 1 and \d+ for n={n}, not {depth}"):
        XorPopcount(n, depth)


def test_init_wrong_target():
    with pytest.raises(ValueError, match="target must be one of auto, generic, ice40, ecp5, not 'xilinx'"):
        XorPopcount(8, target="xilinx")


def simulate(unit, vectors, **flow):
    payloads = [{"a": bits_to_int(a), "w": bits_to_int(w)} for a, w in vectors]
    return streamsim.simulate(unit, payloads, **flow)


def expected(vectors, n, golden=xor_popcount):
    a, w = (np.stack(c) for c in zip(*vectors))
    return golden(pack_bits(a), pack_bits(w), n=n).tolist()


def test_seeds_example():
    a = encode_binary([0.7, -1.2, 0, 3.5, -0.1, 2.2, -4, 0.3])
    w = encode_binary([0.5, -0.2, -0.8, 0.1, 0.3, -0.4, 0.6, -0.05])
    for target in TARGETS:
        outputs, _ = simulate(XorPopcount(8, target=target), [(a, w)])
        assert outputs == [5], target  # 5 disagreements: the bipolar dot product 8 - 2 * 5 = -2


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("depth", [1, 2, 4])
def test_latency_and_full_rate(depth, target):
    rng = np.random.default_rng(3)
    vectors = [tuple(rng.integers(0, 2, (2, 16), dtype=np.uint8)) for _ in range(20)]
    outputs, cycles = simulate(XorPopcount(16, depth, target), vectors)
    assert outputs == expected(vectors, 16)
    # The first vector transfers at the first edge; its result transfers `latency` edges later,
    # then one result follows per cycle.
    assert cycles == list(range(1 + depth, 1 + depth + 20))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("n, depth", [(1, 1), (5, 2), (33, 3), (64, 7)])
def test_popcount_with_backpressure_and_idle(n, depth, target, seed=11):
    rng = np.random.default_rng(seed + n)
    vectors = [tuple(rng.integers(0, 2, (2, n), dtype=np.uint8)) for _ in range(40)]
    outputs, _ = simulate(
        XorPopcount(n, depth, target), vectors, ready_pattern=(1, 0, 1, 1, 0, 0), valid_pattern=(1, 1, 0)
    )
    assert outputs == expected(vectors, n), f"seed {seed + n}, target {target}"


@pytest.mark.parametrize("target", ["ice40", "ecp5"])
def test_plans_exhaustive_and_random(target, seed=5):
    """Each plan's cells, evaluated from their INIT bits, give the popcount: every input up to 6 lanes,
    random and corner inputs up to 130."""
    rng = np.random.default_rng(seed)
    for n in list(range(2, 7)) + [7, 8, 9, 16, 31, 32, 33, 63, 64, 100, 130]:
        plan = plan_popcount(n, target)
        full = (1 << n) - 1
        if n <= 6:
            cases = [(a, w) for a in range(1 << n) for w in range(1 << n)]
        else:
            cases = [(0, 0), (0, full), (full, full), (1, full - 1)]
            cases += [(int(bits_to_int(x)), int(bits_to_int(y))) for x, y in rng.integers(0, 2, (200, 2, n))]
        for a, w in cases:
            assert evaluate(plan, a, w) == bin(a ^ w).count("1"), f"{target} n={n} a={a:#x} w={w:#x} seed {seed}"


def test_plan_costs():
    """The plans' cell counts at 64 lanes (the benchmark reports what yosys maps)."""
    ice40, ecp5 = plan_popcount(64, "ice40").counts(), plan_popcount(64, "ecp5").counts()
    assert ice40["lut4"] <= 2.25 * 64 and ecp5["lut4"] == 0
    assert ecp5["lut4_equiv"] <= 1.7 * 64


@pytest.mark.parametrize("target", ["ice40", "ecp5"])
def test_wide_trees_plan(target):
    """The tree of a wide array's lanes (a ternary SIMD-256 row has 512) is planned without running into
    Python's recursion limit, and a random vector of 2048 lanes counts right."""
    import sys

    n = 2048
    assert n > sys.getrecursionlimit()
    plan = plan_popcount(n, target)
    rng = np.random.default_rng(9)
    a, w = rng.integers(0, 2, (2, n), dtype=np.uint8)
    assert evaluate(plan, bits_to_int(a), bits_to_int(w)) == int((a ^ w).sum())
