"""The binary units' generated Verilog in Verilator (cocotb), compared with == against the golden model:
BinaryDotProduct against binary_dot and XorPopcount against xor_popcount, for every tree (the generic
adder tree and the iCE40 and ECP5 compressor trees, whose cell models Verilator runs).

Each run covers the corner vectors and 2000 random vectors (lowbit.sim.vectors), with and without idle
cycles on the input and back-pressure on the output (the generic bench parametrizes over both). The seed
is in the test id and in every assertion message.
"""

import pytest

from lowbit.hw.units.binary_dot import BinaryDotProduct, XorPopcount
from lowbit.hw.units.compressor import Column
from lowbit.sim.vectors import binary_dot_vectors
from lowbit.sim.verilator import BenchFailure, run_vectors

pytestmark = pytest.mark.verilator


@pytest.mark.parametrize(
    "n, depth, target, seed",
    [
        (1, None, "generic", 1001),
        (7, None, "generic", 1007),
        (64, None, "ice40", 1064),
        (100, None, "ecp5", 1100),
        (64, 7, "ecp5", 2064),
        (7, 1, "ice40", 2007),
    ],
)
def test_dot_matches_golden(n, depth, target, seed):
    unit = BinaryDotProduct(n, depth, target)
    inputs, expected = binary_dot_vectors(n, 2000, seed)
    run_vectors(unit, inputs, expected, toplevel=f"binary_dot_n{n}_{target}", seed=seed, name=f"seed{seed}")


@pytest.mark.parametrize("n, target, seed", [(64, "generic", 3064), (64, "ice40", 3065), (33, "ecp5", 3033)])
def test_popcount_matches_golden(n, target, seed):
    inputs, expected = binary_dot_vectors(n, 2000, seed, result="popcount")
    unit = XorPopcount(n, 3, target)
    run_vectors(
        unit, inputs, expected, toplevel=f"xor_popcount_n{n}_{target}", seed=seed, name=f"seed{seed}", signed=False
    )


class _WrongSumBit(BinaryDotProduct):
    """A deliberately broken unit: the INIT of one adder cell of its ECP5 tree has a bit flipped."""

    def plan(self, target):
        plan = super().plan(target)
        position = next(i for i, cell in enumerate(plan.stages[0].chain) if isinstance(cell, Column))
        plan.patches[(0, position)] = 1 << 5  # A = 1, C = 1: the sum of two disagreeing lanes
        return plan


def test_bench_catches_a_broken_unit():
    with pytest.raises(BenchFailure, match="tests failed"):
        inputs, expected = binary_dot_vectors(7, 50, 5)
        run_vectors(
            _WrongSumBit(7, target="ecp5"), inputs, expected, toplevel="binary_dot_broken", seed=5, name="broken"
        )
