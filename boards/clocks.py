"""The boards' clocks: a PLL that turns the board's oscillator into the clock the tile runs at.

The tile runs faster than the boards' oscillators (12 MHz on the iCEBreaker, 25 MHz on the ULX3S), and
the UART's 3 Mbaud needs a clock that is a whole number of bit periods: :func:`ice40_pll` and
:func:`ecp5_pll` find the PLL settings that give a requested frequency exactly (the data sheets' ranges:
Lattice iCE40 sysCLOCK PLL Design and Usage Guide, TN1251; ECP5 sysCLOCK PLL/DLL Design and Usage
Guide, TN1263), :class:`PLLClock` builds the PLL and :func:`add_pll_domain` the top level's ``sync``
domain on it, held in reset until the PLL locks.
"""

from dataclasses import dataclass
from fractions import Fraction

from amaranth.hdl import ClockDomain, ClockSignal, Const, Elaboratable, Instance, Module, ResetSignal, Signal
from amaranth.lib import io

__all__ = ["PLLSettings", "ice40_pll", "ecp5_pll", "PLLClock", "add_pll_domain"]

MHZ = 1_000_000


@dataclass(frozen=True)
class PLLSettings:
    """A PLL's dividers (``params``, the primitive's parameters) for ``f_in`` -> ``f_out`` (Hz, exact)."""

    family: str
    f_in: int
    f_out: int
    params: dict


def _check(f_in, f_out):
    for name, value in (("f_in", f_in), ("f_out", f_out)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be a positive integer (Hz), not {value!r}")


def ice40_pll(f_in, f_out):
    """SB_PLL40 settings for ``f_out`` exactly from ``f_in``: ``f_out = f_in (DIVF + 1) / ((DIVR + 1)
    2**DIVQ)`` with the phase detector's input ``f_in / (DIVR + 1)`` in 10 .. 133 MHz, the VCO in 533 ..
    1066 MHz, DIVR 0 .. 15, DIVF 0 .. 127, DIVQ 1 .. 6 (TN1251; ``icepll`` searches the same space).
    Raises :class:`ValueError` when no setting gives ``f_out`` exactly."""
    _check(f_in, f_out)
    for divq in range(1, 7):
        vco = f_out << divq
        if not 533 * MHZ <= vco <= 1066 * MHZ:
            continue
        for divr in range(16):
            pfd = Fraction(f_in, divr + 1)
            if not 10 * MHZ <= pfd <= 133 * MHZ:
                continue
            divf = Fraction(vco) / pfd - 1
            if divf.denominator == 1 and 0 <= divf <= 127:
                # The loop filter's range from the phase detector's frequency, as icepll chooses it.
                bounds = (17, 26, 44, 66, 101)
                filter_range = 1 + sum(pfd >= bound * MHZ for bound in bounds)
                params = {
                    "FEEDBACK_PATH": "SIMPLE",
                    "DIVR": divr,
                    "DIVF": int(divf),
                    "DIVQ": divq,
                    "FILTER_RANGE": filter_range,
                }
                return PLLSettings("ice40", f_in, f_out, params)
    raise ValueError(f"the iCE40 PLL cannot make exactly {f_out} Hz from {f_in} Hz")


def ecp5_pll(f_in, f_out):
    """EHXPLLL settings for ``f_out`` exactly from ``f_in``, fed back from CLKOP: ``f_out = f_in CLKFB_DIV
    / CLKI_DIV`` with the phase detector's input ``f_in / CLKI_DIV`` in 3.125 .. 400 MHz and the VCO
    ``f_out CLKOP_DIV`` in 400 .. 800 MHz, CLKI_DIV 1 .. 128, CLKFB_DIV 1 .. 80, CLKOP_DIV 1 .. 128
    (TN1263; ``ecppll`` searches the same space). Raises :class:`ValueError` when no setting gives
    ``f_out`` exactly."""
    _check(f_in, f_out)
    for clki_div in range(1, 129):
        pfd = Fraction(f_in, clki_div)
        if not Fraction(3125, 1000) * MHZ <= pfd <= 400 * MHZ:
            continue
        clkfb_div = Fraction(f_out) / pfd
        if clkfb_div.denominator != 1 or not 1 <= clkfb_div <= 80:
            continue
        for clkop_div in range(1, 129):
            if 400 * MHZ <= f_out * clkop_div <= 800 * MHZ:
                params = {
                    "CLKI_DIV": clki_div,
                    "CLKFB_DIV": int(clkfb_div),
                    "CLKOP_DIV": clkop_div,
                    "CLKOP_CPHASE": clkop_div - 1,
                    "CLKOP_FPHASE": 0,
                    "CLKOP_ENABLE": "ENABLED",
                    "FEEDBK_PATH": "CLKOP",
                    "OUTDIVIDER_MUXA": "DIVA",
                    "PLLRST_ENA": "DISABLED",
                    "INTFB_WAKE": "DISABLED",
                    "STDBY_ENABLE": "DISABLED",
                    "DPHASE_SOURCE": "DISABLED",
                }
                return PLLSettings("ecp5", f_in, f_out, params)
    raise ValueError(f"the ECP5 PLL cannot make exactly {f_out} Hz from {f_in} Hz")


#: The PLL solver of each family.
PLLS = {"ice40": ice40_pll, "ecp5": ecp5_pll}


class PLLClock(Elaboratable):
    """The family's PLL at ``f_out`` Hz from the platform's default clock: ``clk`` (the PLL's output, on
    a global network) and ``rst`` (high until the PLL has locked and ``hold_us`` more have passed: iCE40
    block RAMs read as zero for about 3 us after configuration, and Amaranth's own default domain waits
    15 us). The top level drives its ``sync`` domain from them (:func:`add_pll_domain`). nextpnr derives
    the output's frequency from the oscillator's constraint and the PLL's dividers, so the build's timing
    report checks the tile against the clock it runs at.

    On the iCE40 the oscillator's pin is the PLL's own pad (``SB_PLL40_PAD``): the UP5K's PLL sits on
    that I/O site, so an input buffer there and a core PLL cannot both be placed.
    """

    def __init__(self, family, f_out, *, hold_us=15):
        if family not in PLLS:
            raise ValueError(f"family must be one of {', '.join(PLLS)}, not {family!r}")
        self.family, self.f_out, self.hold_us = family, f_out, hold_us
        self.clk, self.rst = Signal(name="clk"), Signal(name="rst", init=1)

    def elaborate(self, platform):
        if platform is None:
            raise TypeError("a PLL clock needs its platform (the oscillator's pin)")
        m = Module()
        f_in = int(platform.default_clk_frequency)
        settings = PLLS[self.family](f_in, self.f_out)
        clk_port = platform.request(platform.default_clk, dir="-")
        locked = Signal()
        params = {f"p_{name}": value for name, value in settings.params.items()}
        if self.family == "ice40":
            m.submodules.pll = Instance(
                "SB_PLL40_PAD",
                **params,
                i_PACKAGEPIN=clk_port.io,
                i_RESETB=Const(1),
                i_BYPASS=Const(0),
                o_PLLOUTGLOBAL=self.clk,
                o_LOCK=locked,
            )
        else:
            m.submodules.clk_buf = clk_buf = io.Buffer("i", clk_port)
            m.submodules.pll = Instance(
                "EHXPLLL",
                a_FREQUENCY_PIN_CLKI=str(f_in / 1e6),
                a_FREQUENCY_PIN_CLKOP=str(self.f_out / 1e6),
                **params,
                i_CLKI=clk_buf.i,
                i_CLKFB=self.clk,
                i_RST=Const(0),
                i_STDBY=Const(0),
                i_PHASESEL0=Const(0),
                i_PHASESEL1=Const(0),
                i_PHASEDIR=Const(0),
                i_PHASESTEP=Const(0),
                i_PHASELOADREG=Const(0),
                i_PLLWAKESYNC=Const(0),
                i_ENCLKOP=Const(0),
                o_CLKOP=self.clk,
                o_LOCK=locked,
            )
        # A reset-less counter on the PLL's clock releases `rst` once the PLL has locked and hold_cycles
        # have passed.
        m.domains.pll = ClockDomain("pll", reset_less=True, local=True)
        m.d.comb += ClockSignal("pll").eq(self.clk)
        hold_cycles = max(1, int(self.hold_us * self.f_out / 1e6))
        timer = Signal(range(hold_cycles + 1))
        with m.If(~locked):
            m.d.pll += timer.eq(0)
        with m.Elif(timer != hold_cycles):
            m.d.pll += timer.eq(timer + 1)
        m.d.pll += self.rst.eq(~locked | (timer != hold_cycles))
        return m


def add_pll_domain(m, pll):
    """Define the ``sync`` domain of module ``m`` (a top level) on ``pll`` (a :class:`PLLClock`), added
    to ``m`` as submodule ``clock``."""
    m.submodules.clock = pll
    m.domains.sync = ClockDomain("sync")
    m.d.comb += [ClockSignal("sync").eq(pll.clk), ResetSignal("sync").eq(pll.rst)]
    return pll
