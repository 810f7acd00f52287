"""The binary unit's generated Verilog in Verilator (cocotb), compared with == against the golden model:
XorPopcount against xor_popcount, for every tree (the generic adder tree and the iCE40 and ECP5
compressor trees, whose cell models Verilator runs).

Each run covers the corner vectors and 2000 random vectors (lowbit.sim.vectors), with and without idle
cycles on the input and back-pressure on the output (the generic bench parametrizes over both). The seed
is in the test id and in every assertion message.
"""

import pytest

from lowbit.hw.units.binary_dot import XorPopcount
from lowbit.hw.units.compressor import Column
from lowbit.sim.vectors import xor_popcount_vectors
from lowbit.sim.verilator import BenchFailure, run_vectors

pytestmark = pytest.mark.verilator


@pytest.mark.parametrize(
    "n, depth, target, seed",
    [
        # each target at its default depth, every stage registered and a depth between; lanes of one, a
        # non-power of two and more than the widest tree level (a Verilator build each: the Amaranth
        # simulations in tests/hw/units cover more shapes)
        (1, None, "generic", 1001),
        (100, None, "ecp5", 1100),
        (64, 7, "ecp5", 2064),
        (7, 1, "ice40", 2007),
        (64, 3, "ice40", 3065),
        (33, 3, "ecp5", 3033),
    ],
)
def test_popcount_matches_golden(n, depth, target, seed):
    inputs, expected = xor_popcount_vectors(n, 2000, seed)
    unit = XorPopcount(n, depth, target)
    run_vectors(
        unit, inputs, expected, toplevel=f"xor_popcount_n{n}_{target}", seed=seed, name=f"seed{seed}", signed=False
    )


class _WrongSumBit(XorPopcount):
    """A deliberately broken unit: the INIT of one adder cell of its ECP5 tree has a bit flipped."""

    def plan(self, target):
        plan = super().plan(target)
        position = next(i for i, cell in enumerate(plan.stages[0].chain) if isinstance(cell, Column))
        plan.patches[(0, position)] = 1 << 5  # A = 1, C = 1: the sum of two disagreeing lanes
        return plan


def test_bench_catches_a_broken_unit():
    with pytest.raises(BenchFailure, match="tests failed"):
        inputs, expected = xor_popcount_vectors(7, 50, 5)
        run_vectors(
            _WrongSumBit(7, target="ecp5"),
            inputs,
            expected,
            toplevel="xor_popcount_broken",
            seed=5,
            name="broken",
            signed=False,
        )
