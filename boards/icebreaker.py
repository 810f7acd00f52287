"""The iCEBreaker (iCE40UP5K-SG48, 12 MHz): the tile behind the serial link on the FTDI UART.

Geometry (:data:`GEOMETRY`): POPCOUNT array, PE = 2 output channels x SIMD = 16 inputs per cycle,
up to 64 input and 64 output features per layer, 256 weight rows, a 16-bit accumulator, one threshold
per channel (binary outputs; the last layer returns the raw accumulator) and uint inputs of up to 8 bits.
It runs binary-weight MLPs up to 64 -> 64 -> ... -> 10 whose first layer takes 8-bit pixels (the digits'
64 inputs), e.g. the digits binary model with a 64-wide hidden layer and an int8 last layer (checked: the
Verilog of ``Tile(GEOMETRY)`` in Verilator equals the golden model on it; ``docs/boards.md``). FATNN
(2 thresholds) and TWN (15) hidden layers need more thresholds than it keeps. The repository's default digits
models (hidden width 256) do **not** fit: a 256 x 256 binary layer alone is 131072 weight bits (2 bits per
tap) against 30 EBR x 4 kbit = 122880 bits of block RAM. Running them needs the four 256-kbit SPRAMs;
the tile's weight memory has a separate read and write port, while an SPRAM is single-ported, so that
needs a single-port weight memory in the tile (not done; ``docs/boards.md``).

Pins: UART rx 6 / tx 9 at 115200 baud (:data:`DIVISOR` = 104 cycles per bit at 12 MHz, +0.16 %);
green LED: heartbeat (a blink every 1.4 s); red LED: lit once the link has dropped a frame or the UART a
character (sticky until reset).
"""

from amaranth_boards.icebreaker import ICEBreakerPlatform

from lowbit.hw.protocol import Family, TileGeometry

from .build import BoardTop, divisor_for

__all__ = ["GEOMETRY", "CLOCK_HZ", "BAUD", "DIVISOR", "Platform", "TOOLCHAIN_OVERRIDES", "Top"]

GEOMETRY = TileGeometry(Family.POPCOUNT, pe=2, simd=16, max_in_features=64, max_out_features=64,
                        max_weight_rows=256, acc_width=16, max_thresholds=1, max_input_bits=8)
CLOCK_HZ = 12_000_000
BAUD = 115200
DIVISOR = divisor_for(CLOCK_HZ, BAUD)
Platform = ICEBreakerPlatform

#: Amaranth toolchain overrides of the build. The tile's control logic multiplies (the word counts of a
#: layer, computed at CONFIGURE, and the response length of a batch): as LUTs these products cost about
#: 2000 of the 5280 LUTs (the design then needs ~6500 logic cells) and make ABC9 run for over ten
#: minutes. With ``-dsp`` alone yosys puts every product in SB_MAC16s (14 of the 8 there are, a product
#: used three times counting three times). So before synthesis the copies are merged (``opt_merge``)
#: and the narrow products (an operand below 15 bits after ``wreduce``) are mapped to logic; the one
#: 24 x 40 bit product goes to DSPs.
TOOLCHAIN_OVERRIDES = {
    "synth_opts": "-dsp",
    "script_after_read": "proc; flatten; opt_expr; opt_merge; opt_clean; wreduce; opt_clean; "
                         "techmap -map +/techmap.v t:$mul r:A_WIDTH<15 %i t:$mul r:B_WIDTH<15 %i %u",
}


class Top(BoardTop):
    """:class:`lowbit.hw.link.LinkTile` of :data:`GEOMETRY` on the iCEBreaker's UART, with a heartbeat
    on the green LED and the link's error indicator on the red LED."""

    def __init__(self, geometry=GEOMETRY, divisor=DIVISOR):
        super().__init__(geometry, divisor, heartbeat_led=("led_g", 0), error_led=("led_r", 0))
