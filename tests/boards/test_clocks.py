"""The PLL settings of the boards' clocks: every setting lies in the data sheets' ranges and gives the
requested frequency exactly; impossible requests get a clear error."""

import re
from fractions import Fraction

import pytest

from lowbit.boards import icebreaker, ulx3s
from lowbit.boards.clocks import PLLClock, ecp5_pll, ice40_pll

MHZ = 1_000_000


def ice40_output(s):
    p = s.params
    pfd = Fraction(s.f_in, p["DIVR"] + 1)
    vco = pfd * (p["DIVF"] + 1)
    assert 10 * MHZ <= pfd <= 133 * MHZ and 533 * MHZ <= vco <= 1066 * MHZ and 1 <= p["DIVQ"] <= 6
    assert p["FILTER_RANGE"] == (1 if pfd < 17 * MHZ else 2 if pfd < 26 * MHZ else p["FILTER_RANGE"])
    return vco / 2 ** p["DIVQ"]


def ecp5_output(s):
    p = s.params
    pfd = Fraction(s.f_in, p["CLKI_DIV"])
    out = pfd * p["CLKFB_DIV"]
    assert Fraction(3125, 1000) * MHZ <= pfd <= 400 * MHZ and 400 * MHZ <= out * p["CLKOP_DIV"] <= 800 * MHZ
    assert p["FEEDBK_PATH"] == "CLKOP" and 1 <= p["CLKFB_DIV"] <= 80
    return out


@pytest.mark.parametrize("f_out", [18 * MHZ, 15 * MHZ, 24 * MHZ, 48 * MHZ, 36 * MHZ])
def test_ice40_from_12_mhz(f_out):
    settings = ice40_pll(12 * MHZ, f_out)
    assert ice40_output(settings) == f_out


def test_ice40_board_settings():
    # icepll -i 12 -o 18: DIVR 0, DIVF 47, DIVQ 5, FILTER_RANGE 1
    settings = ice40_pll(12 * MHZ, icebreaker.CLOCK_HZ)
    assert {k: settings.params[k] for k in ("DIVR", "DIVF", "DIVQ", "FILTER_RANGE")} == {
        "DIVR": 0,
        "DIVF": 47,
        "DIVQ": 5,
        "FILTER_RANGE": 1,
    }


@pytest.mark.parametrize("f_out", [15 * MHZ, 30 * MHZ, 45 * MHZ, 60 * MHZ, 50 * MHZ])
def test_ecp5_from_25_mhz(f_out):
    assert ecp5_output(ecp5_pll(25 * MHZ, f_out)) == f_out


def test_ecp5_board_settings():
    for f_out in ulx3s.CLOCKS_HZ.values():
        assert ecp5_output(ecp5_pll(25 * MHZ, f_out)) == f_out


@pytest.mark.parametrize(
    "solver, f_in, f_out, message",
    [
        (ice40_pll, 12 * MHZ, 17_000_001, "the iCE40 PLL cannot make exactly 17000001 Hz from 12000000 Hz"),
        (ecp5_pll, 25 * MHZ, 42 * MHZ, "the ECP5 PLL cannot make exactly 42000000 Hz from 25000000 Hz"),
        (ice40_pll, 12 * MHZ, 0, "f_out must be a positive integer (Hz), not 0"),
        (ecp5_pll, 25.0e6, 30 * MHZ, "f_in must be a positive integer (Hz), not 25000000.0"),
    ],
)
def test_impossible(solver, f_in, f_out, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        solver(f_in, f_out)


def test_domain_wrong_family():
    with pytest.raises(ValueError, match="family must be one of ice40, ecp5, not 'gowin'"):
        PLLClock("gowin", 18 * MHZ)
