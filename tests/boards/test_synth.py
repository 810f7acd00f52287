import pytest

from lowbit.boards.synth import synthesize
from lowbit.hw.units.binary_dot import XorPopcount
from lowbit.hw.units.compressor import plan_popcount


@pytest.mark.synth
def test_synthesize_counts_cells():
    counts = synthesize(XorPopcount(8, 1), "ice40", name="test_xor_popcount_n8")
    assert counts["lut4"] > 8 and counts["ff"] == XorPopcount(8, 1).o.payload.shape().width + 1
    assert counts["cells"]["SB_LUT4"] == counts["lut4"]


@pytest.mark.synth
@pytest.mark.parametrize("family", ["ice40", "ecp5"])
def test_synthesis_keeps_the_compressor_tree(family):
    """Elaborated for the family, the popcount is the plan's cells: yosys keeps them (no adder rebuilt)."""
    plan = plan_popcount(32, family).counts()
    counts = synthesize(XorPopcount(32, 1), family, name="test_xor_popcount_n32")
    assert counts["carry"] == plan["carry"]
    # iCE40: the plan's LUT4s plus the pipeline's handshake; ECP5: no LUT4 for the lanes
    assert plan["lut4"] <= counts["lut4"] <= plan["lut4"] + 2


def test_synthesize_wrong_family():
    with pytest.raises(ValueError, match="family must be one of \\['ecp5', 'ice40'\\], not 'xc7'"):
        synthesize(XorPopcount(8), "xc7")
