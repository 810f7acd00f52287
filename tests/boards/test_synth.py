import pytest

from lowbit.boards.synth import synthesize
from lowbit.hw.units.binary_dot import BinaryDotProduct


@pytest.mark.synth
def test_synthesize_counts_cells():
    counts = synthesize(BinaryDotProduct(8, 1), "ice40", name="test_binary_dot_n8")
    assert counts["lut4"] > 8 and counts["ff"] == BinaryDotProduct(8, 1).o.payload.shape().width + 1
    assert counts["cells"]["SB_LUT4"] == counts["lut4"]


def test_synthesize_wrong_family():
    with pytest.raises(ValueError, match="family must be one of \\['ecp5', 'ice40'\\], not 'xc7'"):
        synthesize(BinaryDotProduct(8), "xc7")
