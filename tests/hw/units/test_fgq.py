"""FGQDotProduct: construction, parameter errors, and Amaranth-simulator checks against fgq_dot (== only)."""

import numpy as np
import pytest
from amaranth.hdl import signed
from amaranth.sim import Simulator

from lowbit.hw.units.fgq import FGQDotInput, FGQDotProduct, fgq_dot_width
from lowbit.hw.units.unit import PEArray
from lowbit.sw.golden import fgq_dot
from lowbit.sw.kinds.encodings import encode_ternary
from lowbit.sw.kinds.packing import bits_to_int
from tests.hw import streamsim


def test_init():
    unit = FGQDotProduct(64, 4, 8, False, 3)
    assert (unit.n, unit.group_size, unit.groups, unit.k, unit.signed) == (64, 4, 16, 8, False)
    assert unit.latency == unit.pipeline_depth == 3
    assert unit.i.payload.shape() == FGQDotInput(64, 4, 8, False)
    # Levels: tap selection, 3 adder levels in a group of 4 (its taps and its count of -1 taps), the
    # multiply, 4 levels over 16 groups.
    assert unit.levels() == 9
    assert unit.SHARED_FIELDS == ("a",)
    # |result| <= 255 * 64 * 255 = 4161600 < 2**22: 23 bits signed.
    assert unit.o.payload.shape() == signed(fgq_dot_width(64, 8, False)) == signed(23)
    # Signed 4-bit activations: |t * a| <= 8; 255 * 12 * 8 = 24480 < 2**15.
    assert FGQDotProduct(12, 4, 4, True).o.payload.shape() == signed(16)
    assert FGQDotProduct(1, 1).levels() == 3
    assert FGQDotProduct(8, 4).latency == 2


def test_init_not_a_multiple():
    with pytest.raises(ValueError, match=r"n must be a multiple of group_size, not n=6 with group_size=4"):
        FGQDotProduct(6, 4)


@pytest.mark.parametrize(
    "args, error, message",
    [
        ((0, 1), ValueError, "n must be at least 1, not 0"),
        ((8.0, 4), TypeError, "n must be an integer, not 8.0"),
        ((8, 0), ValueError, "group_size must be at least 1, not 0"),
        ((8, True), TypeError, "group_size must be an integer, not True"),
        ((8, 4, 9), ValueError, "k must be between 2 and 8, not 9"),
        ((8, 4, 1), ValueError, "k must be between 2 and 8, not 1"),
        ((8, 4, 8, 1), TypeError, "signed must be a bool, not 1"),
        (
            (8, 4, 8, False, 7),
            ValueError,
            r"pipeline_depth must be between 1 and 6 for n=8, group_size=4, k=8, signed=False, not 7",
        ),
        ((8, 4, 8, False, 0), ValueError, r"pipeline_depth must be between 1 and 6 .*, not 0"),
    ],
)
def test_init_wrong_parameters(args, error, message):
    with pytest.raises(error, match=message):
        FGQDotProduct(*args)


def payload(a, t, alpha):
    nz, sign = encode_ternary(t)
    return {
        "a": [int(x) for x in a],
        "t_nz": bits_to_int(nz),
        "t_sign": bits_to_int(sign),
        "alpha": [int(x) for x in alpha],
    }


def vectors(n, group_size, k, is_signed, count, rng):
    """Random ``(a, t, alpha)`` rows, the first ones corner cases: all-zero weights, the largest
    ``|partial sums|`` with ``alpha = 255`` (both signs), ``alpha = 0``."""
    low, high = (-(2 ** (k - 1)), 2 ** (k - 1)) if is_signed else (0, 2**k)
    a = rng.integers(low, high, (count, n))
    t = rng.integers(-1, 2, (count, n))
    alpha = rng.integers(0, 256, (count, n // group_size))
    extreme = low if is_signed else high - 1  # the activation with the largest |t * a|
    t[0] = 0
    a[1:3], t[1], t[2], alpha[1:3] = extreme, 1, -1, 255  # the two extremes of the result
    alpha[3] = 0
    return a, t, alpha


def run(unit, a, t, alpha, **flow):
    outputs, cycles = streamsim.simulate(unit, [payload(*row) for row in zip(a, t, alpha)], **flow)
    return outputs, cycles


def test_seeds_fgq_example():
    # FGQ's worked example with N = 4 (docs/arithmetic.md): s = (-71, 18), alpha = (113, 179) in Q0.8.
    a = [12, 200, 7, 90, 255, 3, 64, 18]
    t = [1, 0, 1, -1, 0, 0, 0, 1]
    outputs, _ = run(FGQDotProduct(8, 4), [a], [t], [[113, 179]])
    assert outputs == [-4801] == [fgq_dot(np.array(a), np.array(t), np.array([113, 179]), 4)]


@pytest.mark.parametrize(
    "n, group_size, k, is_signed, depth",
    [
        (1, 1, 2, True, 2),
        (8, 4, 8, False, 1),
        (12, 4, 4, True, 3),
        (12, 3, 5, False, 6),
        (16, 16, 8, True, 4),
        (20, 1, 3, False, 2),
    ],
)
def test_random(n, group_size, k, is_signed, depth, seed=1705):
    rng = np.random.default_rng(seed + n + group_size)
    a, t, alpha = vectors(n, group_size, k, is_signed, 40, rng)
    outputs, _ = run(FGQDotProduct(n, group_size, k, is_signed, depth), a, t, alpha)
    assert outputs == fgq_dot(a, t, alpha, group_size).tolist(), f"seed {seed + n + group_size}"


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_latency_and_full_rate(depth):
    a, t, alpha = vectors(8, 4, 8, False, 20, np.random.default_rng(5))
    outputs, cycles = run(FGQDotProduct(8, 4, pipeline_depth=depth), a, t, alpha)
    assert outputs == fgq_dot(a, t, alpha, 4).tolist()
    # The first vector transfers at the first edge, its result `depth` edges later, then one per cycle.
    assert cycles == list(range(1 + depth, 1 + depth + 20))


@pytest.mark.parametrize("depth", [1, 4])
def test_backpressure_and_idle(depth, seed=77):
    a, t, alpha = vectors(16, 4, 6, True, 60, np.random.default_rng(seed))
    outputs, _ = run(
        FGQDotProduct(16, 4, 6, True, depth), a, t, alpha, ready_pattern=(1, 0, 1, 1, 0, 0), valid_pattern=(1, 1, 0)
    )
    assert outputs == fgq_dot(a, t, alpha, 4).tolist(), f"seed {seed}"


def test_combinational_core(seed=9):
    unit = FGQDotProduct(12, 4, 4, True, 3)
    core = unit.combinational()
    a, t, alpha = vectors(12, 4, 4, True, 20, np.random.default_rng(seed))
    got = []

    async def testbench(ctx):
        for row in zip(a, t, alpha):
            ctx.set(core.payload, payload(*row))
            got.append(ctx.get(core.result))

    sim = Simulator(core)
    sim.add_testbench(testbench)
    sim.run()
    assert got == fgq_dot(a, t, alpha, 4).tolist(), f"seed {seed}"


def test_pe_array(seed=23):
    pe, n, group_size = 3, 8, 4
    array = PEArray(lambda: FGQDotProduct(n, group_size, 8, True), pe)
    assert list(array.shared_layout.members) == ["a"]
    assert list(array.channel_layout.members) == ["t_nz", "t_sign", "alpha"]
    rng = np.random.default_rng(seed)
    count = 12
    a = rng.integers(-128, 128, (count, n))
    t = rng.integers(-1, 2, (count, pe, n))
    alpha = rng.integers(0, 256, (count, pe, n // group_size))
    t[0] = 0
    payloads = []
    for v in range(count):
        channels = [payload(a[v], t[v, c], alpha[v, c]) for c in range(pe)]
        for channel in channels:
            del channel["a"]
        payloads.append({"shared": {"a": [int(x) for x in a[v]]}, "channels": channels})
    outputs, _ = streamsim.simulate(array, payloads, ready_pattern=(1, 1, 0))
    got = [[out[c] for c in range(pe)] for out in outputs]
    assert got == fgq_dot(a[:, None, :], t, alpha, group_size).tolist(), f"seed {seed}"
