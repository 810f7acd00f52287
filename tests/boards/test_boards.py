"""Board top levels (iCEBreaker, ULX3S), the build report parser, ``lowbit verilog --board`` and one real
iCEBreaker bitstream build (``pytest.mark.synth``)."""

import re
import time

import pytest

from lowbit.boards import icebreaker, ulx3s
from lowbit.boards.build import BOARDS, board_module, build, divisor_for, parse_report, top_verilog
from lowbit.sw.cli import main

# --- the top levels ---------------------------------------------------------------------------------------

PORTS = {
    "icebreaker": ["uart_0__rx__io", "uart_0__tx__io", "led_g_0__io", "led_r_0__io", "clk12_0__io"],
    "ulx3s": ["uart_0__rx__io", "uart_0__tx__io", "led_0__io", "led_7__io", "uart_tx_enable_0__io", "clk25_0__io"],
}


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_top_verilog(board):
    text = top_verilog(board)
    header = re.search(r"^module top\((.*)\);", text, re.M)
    assert header, f"{board}: no top module"
    assert set(PORTS[board]) <= {p.strip() for p in header.group(1).split(",")}, header.group(1)
    assert "module \\top.core.link.tile " in text and "module \\top.core.link.bridge " in text
    assert ("SB_PLL40_PAD" if board == "icebreaker" else "EHXPLLL") in text  # the tile's clock


def test_board_clocks():
    """Both boards run the UART at 3 Mbaud, a whole number of their PLL clock's cycles per bit."""
    assert icebreaker.BAUD == ulx3s.BAUD == 3_000_000
    assert (icebreaker.DIVISOR, ulx3s.DIVISOR) == (6, 10)
    for module in (icebreaker, ulx3s):
        for clock_hz in module.CLOCKS_HZ.values():
            assert clock_hz % module.BAUD == 0 and clock_hz // module.BAUD >= 4
        assert set(module.CLOCKS_HZ) == set(module.GEOMETRIES)
    assert ulx3s.CLOCKS_HZ == {"popcount": 30_000_000, "binary": 30_000_000}


def test_divisors():
    assert divisor_for(12_000_000, 115200) == 104 and divisor_for(48_000_000, 3_000_000) == 16


@pytest.mark.parametrize(
    "clock_hz, baud, message",
    [
        (0, 115200, "clock_hz must be a positive integer, not 0"),
        (12_000_000, 12.5, "baud must be a positive integer, not 12.5"),
        (12_000_000, 7_000_000, "7000000 baud is not within 2 %"),
    ],
)
def test_divisor_wrong(clock_hz, baud, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        divisor_for(clock_hz, baud)


def test_board_unknown():
    with pytest.raises(ValueError, match=re.escape("board must be one of icebreaker, ulx3s, not 'arty'")):
        board_module("arty")


def test_geometries_run_their_models():
    """Both boards run the digits binary model (64-256-256-10, 8-bit pixels, an int8 last layer) whole
    and FINN's LFC (784-1024-1024-1024-10, binary) in parts of output channels; the ULX3S keeps the
    15 thresholds of TWN's 4-bit activations."""
    import dataclasses

    from lowbit.sw.host import output_parts
    from lowbit.sw.protocol import InputKind, LayerConfig, WeightKind

    binary, uint, int_ = WeightKind.BINARY, InputKind.UINT, WeightKind.INT
    digits = [
        LayerConfig(64, 256, binary, 1, 0, uint, 8, 2),
        LayerConfig(256, 256, binary, 1, 0, InputKind.BINARY, 1, 2),
        LayerConfig(256, 10, int_, 8, 0, InputKind.BINARY, 1, 0),
    ]
    lfc = [
        LayerConfig(n_in, n_out, binary, 1, 0, InputKind.BINARY, 1, 0 if n_out == 10 else 2)
        for n_in, n_out in [(784, 1024), (1024, 1024), (1024, 1024), (1024, 10)]
    ]
    tiles = [
        (f"{board} {name}", g)
        for board, m in (("icebreaker", icebreaker), ("ulx3s", ulx3s))
        for name, g in m.GEOMETRIES.items()
    ]
    for board, g in tiles:
        for config in digits:
            assert g.check(config) is None, f"{board}: {config}"
        for config in lfc:
            parts = output_parts(config, g)
            assert parts is not None and parts[-1][1] == config.out_features, f"{board}: {config}"
            assert all(g.check(dataclasses.replace(config, out_features=b - a)) is None for a, b in parts)
    assert output_parts(lfc[1], icebreaker.GEOMETRY) == [(0, 512), (512, 1024)]
    assert output_parts(lfc[1], ulx3s.GEOMETRY) == [(0, 256), (256, 512), (512, 768), (768, 1024)]
    assert ulx3s.GEOMETRY.max_thresholds == 15
    for module in (icebreaker, ulx3s):  # the BINARY tile: twice the lanes in the same weight memory
        binary, popcount = module.BINARY_GEOMETRY, module.GEOMETRY
        assert binary.pe * binary.simd == 2 * popcount.pe * popcount.simd
        assert binary.weight_row_bits == popcount.weight_row_bits
        assert binary.max_weight_rows == popcount.max_weight_rows


def test_resident_geometry_is_the_digits_models_planned_tile():
    """The iCEBreaker's resident tile (the one its board benches run) is the tile ``lowbit plan`` and
    ``lowbit build --model`` choose for the digits model 64-256-256-10 within the board's default budget
    (the plan depends on the layers' shapes and kinds, so one epoch of training will do)."""
    from lowbit.boards.build import board_tile
    from lowbit.sw import api

    model = api.train("binary", hidden=(256, 256), epochs=1, seed=1)
    assert board_tile("icebreaker", model) == ("planned", icebreaker.RESIDENT_GEOMETRY, icebreaker.CLOCK_HZ)


def test_ulx3s_builds_without_openfpgaloader():
    assert "openFPGALoader" not in ulx3s.Platform().required_tools
    assert "nextpnr-ecp5" in ulx3s.Platform().required_tools


def test_cli_verilog_board(tmp_path, capsys):
    path = tmp_path / "icebreaker_top.v"
    assert main(["verilog", "--board", "icebreaker", "-o", str(path)]) == 0
    assert "module top(" in path.read_text()
    assert "wrote" in capsys.readouterr().out


def test_cli_verilog_unit_unchanged(capsys):
    assert main(["verilog", "-n", "8"]) == 0
    assert "module xor_popcount" in capsys.readouterr().out


# --- the report parser, on saved log text --------------------------------------------------------------

YOSYS_ECP5 = """
=== top ===

        +----------Local Count, excluding submodules.
        |
     2198   CCU2C
    15594   LUT4
     5468   TRELLIS_FF

=== design hierarchy ===

        +----------Count including submodules.
        |
        1 top
     2198   CCU2C
       18   DP16KD
    15594   LUT4
       12   MULT18X18D
     5468   TRELLIS_FF

2.52. Executing CHECK pass (checking for obvious problems).
"""

NEXTPNR_ECP5 = """Info: constraining clock net 'clk25_0__io' to 25.00 MHz

Info: Logic utilisation before packing:
Info:     Total LUT4s:     29704/83640    35%
Info:         logic LUTs:  15594/83640    18%

Info:      Total DFFs:      5468/83640     6%
Info: Device utilisation:
Info: 	          TRELLIS_IO:       8/    365     2%
Info: 	              DP16KD:      18/    208     8%
Info: 	          MULT18X18D:      12/    156     7%
Info: 	              ALU54B:       0/     78     0%
Info: 	          TRELLIS_FF:    5468/  83640     6%
Info: 	        TRELLIS_COMB:   30692/  83640    36%
Info: Max frequency for clock '$glbnet$clk': 41.20 MHz (PASS at 25.00 MHz)
Info: Max frequency for clock '$glbnet$clk': 38.71 MHz (PASS at 25.00 MHz)
"""

YOSYS_ICE40_OLD = """
=== top ===

   Number of cells:               5000
     SB_CARRY                      400
     SB_DFFE                      1500
     SB_DFFSR                      100
     SB_LUT4                      3000
     SB_RAM40_4K                    20

2.50. Executing CHECK pass (checking for obvious problems).
"""

NEXTPNR_ICE40_FULL = """Info: Device utilisation:
Info: 	         ICESTORM_LC:    6211/   5280   117%
Info: 	        ICESTORM_RAM:      20/     30    66%
Info: 	               SB_IO:       5/     96     5%
Info: 	         ICESTORM_DSP:       0/      8     0%
Info: 	      ICESTORM_SPRAM:       0/      4     0%
ERROR: Unable to place cell 'x', no BELs remaining to implement cell type 'ICESTORM_LC'
"""

NEXTPNR_ICE40_SLOW = """Info: Device utilisation:
Info: 	         ICESTORM_LC:    4000/   5280    75%
Info: 	        ICESTORM_RAM:      20/     30    66%
Info: 	         ICESTORM_DSP:       0/      8     0%
Info: 	      ICESTORM_SPRAM:       0/      4     0%
Info: Max frequency for clock '$PACKER_GND_NET_$glb_clk': 213.81 MHz (PASS at 12.00 MHz)
Info: Max frequency for clock              'cd_sync.clk': 11.66 MHz (FAIL at 12.00 MHz)
Info: Max frequency for clock              'cd_sync.clk': 10.50 MHz (FAIL at 12.00 MHz)
Info: Max frequency for clock '$PACKER_GND_NET_$glb_clk': 224.82 MHz (PASS at 12.00 MHz)
"""


def test_parse_report_ecp5():
    report = parse_report("ulx3s", YOSYS_ECP5, NEXTPNR_ECP5)
    assert (report.luts, report.carries, report.ffs) == (15594, 2198, 5468)
    assert report.logic_cells == {
        "total LUT4s": (29704, 83640),
        "total DFFs": (5468, 83640),
        "TRELLIS_COMB": (30692, 83640),
        "TRELLIS_FF": (5468, 83640),
    }
    assert report.bram == {"DP16KD": (18, 208)}
    assert report.dsp == {"MULT18X18D": (12, 156), "ALU54B": (0, 78)}
    assert (report.clock, report.fmax_mhz, report.target_mhz) == ("$glbnet$clk", 38.71, 25.0)  # after routing
    assert report.fits and report.meets_timing and report.error is None
    assert not report.ok  # no bitstream yet
    assert "38.71 MHz against 25.00 MHz (meets timing" in report.text()


def test_parse_report_does_not_fit():
    report = parse_report("icebreaker", YOSYS_ICE40_OLD, NEXTPNR_ICE40_FULL)
    assert (report.luts, report.carries, report.ffs) == (3000, 400, 1600)
    assert report.logic_cells == {"ICESTORM_LC": (6211, 5280)}
    assert report.bram == {"ICESTORM_RAM": (20, 30), "ICESTORM_SPRAM": (0, 4)}
    assert not report.fits and not report.ok and report.fmax_mhz is None
    assert "FAILED: Unable to place cell" in report.text()


def test_parse_report_misses_timing():
    report = parse_report("icebreaker", "", NEXTPNR_ICE40_SLOW)
    assert report.fits and not report.meets_timing and not report.ok
    assert report.luts is None
    assert (report.clock, report.fmax_mhz, report.target_mhz) == ("cd_sync.clk", 10.5, 12.0)
    assert "10.50 MHz against 12.00 MHz (MISSES TIMING" in report.text()


# --- one real bitstream ---------------------------------------------------------------------------------


@pytest.mark.synth
def test_build_icebreaker(tmp_path):
    started = time.monotonic()
    report = build("icebreaker", out_dir=tmp_path, timeout=900)  # a failure, not a hang, if nextpnr does not converge
    print(f"\n{report.text()}\n(test: {time.monotonic() - started:.0f} s)")
    assert report.ok, report.text()
    assert report.bitstream == tmp_path / "top.bin" and re.fullmatch(r"[0-9a-f]{64}", report.sha256)
    assert report.logic_cells["ICESTORM_LC"][0] <= 5280 and report.bram["ICESTORM_RAM"][0] <= 30
    assert report.luts > 0 and report.ffs > 0
    assert report.bram["ICESTORM_SPRAM"] == (4, 4), "the weight memory must be in the four SPRAMs"


def test_build_timeout(tmp_path):
    """A build still running after its timeout is stopped (every tool of it) and reported, not waited for;
    a bad timeout is refused."""
    report = build("icebreaker", out_dir=tmp_path, timeout=1)
    assert not report.ok and report.bitstream is None
    assert report.error == "the build did not finish within 1 s (nextpnr placer seed 1: try another seed)", (
        report.text()
    )
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds, not 0"):
        build("icebreaker", out_dir=tmp_path, timeout=0)
