"""The ULX3S with an ECP5 LFE5U-85F (caBGA381, speed 6, 25 MHz): the tile behind the serial link on
the FTDI UART (the USB port marked US1).

Geometry (:data:`GEOMETRY`): POPCOUNT array, PE = 8 output channels x SIMD = 32 inputs per cycle, up to
1024 input and 1024 output features per layer (larger layers run in parts of output channels,
:func:`lowbit.sw.host.output_parts`), 1024 weight rows of 512 bits, a 24-bit accumulator, up to 15
thresholds per channel (4-bit outputs), uint inputs of up to 8 bits and resident models of up to 4
layers (LOAD_MODEL: the weights of all layers in the 1024 rows, the threshold records of all their
output folds in the 128 of each PE). It runs every popcount-family digits model of the repository
(binary, FATNN, TWN: 64 -> 256 -> 256 -> 10, see ``lowbit train``) resident: its layers need 64 + 256 +
128 = 448 weight rows (a 256 x 256 layer 32 output folds x 8 input folds, the int8 last layer of the
binary model 2 x 8 planes x 8) and 66 output folds; and FINN's LFC topology (784 -> 1024 -> 1024 -> 1024
-> 10, binary) a layer at a time (its 3 Mbit of weights exceed the weight memory), each 1024-output
layer in parts.

Clock: the PLL makes the tile's clock, 30 MHz, from the 25 MHz oscillator (:data:`CLOCKS_HZ`). The
tiles' Fmax is about 45-50 MHz at a 30 MHz target, but an ECP5 PLL can make from 25 MHz, with its phase
detector at 3.125 MHz or more, only 15, 30, 45, 60 or 75 MHz among the multiples of 3 MHz, which are
what give the UART's 3 Mbaud exactly (10 cycles per bit), and the BINARY tile built for 45 MHz
reached 44.65 MHz (placer seed 2).

Pins: UART rx M1 / tx L4 at 3 Mbaud (the FT231X's highest rate); ``uart_tx_enable`` is driven high;
LED 0: heartbeat (a blink every 0.56 s at 30 MHz); LED 7: lit once the link has
dropped a frame or the UART a character (sticky until reset).
"""

from amaranth_boards.ulx3s import ULX3S_85F_Platform

from lowbit.boards.build import BoardTop, divisor_for
from lowbit.sw.protocol import Family, TileGeometry
from lowbit.sw.protocol.frames import DEFAULT_BAUD

__all__ = [
    "GEOMETRY",
    "BINARY_GEOMETRY",
    "GEOMETRIES",
    "CLOCK_HZ",
    "CLOCKS_HZ",
    "SEEDS",
    "DEVICE",
    "LUT_BUDGET",
    "MAX_WEIGHT_ROW_BITS",
    "BAUD",
    "DIVISOR",
    "Platform",
    "Top",
]

GEOMETRY = TileGeometry(
    Family.POPCOUNT,
    pe=8,
    simd=32,
    max_in_features=1024,
    max_out_features=1024,
    max_weight_rows=1024,
    acc_width=24,
    max_thresholds=15,
    max_input_bits=8,
    max_layers=4,
)
#: The BINARY family's tile for binary models (binary weights, uint or binary input, an int last layer):
#: PE 8 x SIMD 64, twice the lanes of GEOMETRY in the same weight memory (rows of 512 bits).
#: ``lowbit`` builds :data:`GEOMETRY` by default; the boards benchmark measures both.
BINARY_GEOMETRY = TileGeometry(
    Family.BINARY,
    pe=8,
    simd=64,
    max_in_features=1024,
    max_out_features=1024,
    max_weight_rows=1024,
    acc_width=24,
    max_thresholds=15,
    max_input_bits=8,
    max_layers=4,
)
#: The board's tiles by name.
GEOMETRIES = {"popcount": GEOMETRY, "binary": BINARY_GEOMETRY}
#: The tile's clock from the PLL, per tile of GEOMETRIES (the 25 MHz oscillator feeds the PLL only).
CLOCKS_HZ = {"popcount": 30_000_000, "binary": 30_000_000}
CLOCK_HZ = CLOCKS_HZ["popcount"]
#: nextpnr's placer seed that builds each tile (the iCEBreaker's BINARY tile fills 93 % of the logic
#: cells and does not route with seed 1); ``lowbit build`` uses it unless given ``--seed``.
SEEDS = {"popcount": 1, "binary": 2}
#: The FPGA's resources (LFE5U-85F): LUT4s, block RAMs, DSPs (18 x 18 multipliers); the planner's budget.
DEVICE = {"luts": 83640, "blocks": {"DP16KD": 208}, "dsp": 156}
#: The share of the LUT4s ``lowbit plan`` fills by default (nextpnr's placement and timing degrade
#: beyond it).
LUT_BUDGET = 0.8
#: The widest weight row (PE x SIMD x bits per tap, read every cycle) ``lowbit plan`` gives a tile, the
#: widest that routed: LFC's PE 32 x SIMD 32 tile (1024 bits, 131 DP16KD, 9,160 LUT4) in 4 minutes, the
#: 512-bit tiles in 3-35; tiles with rows of 2048 bits (PE 8 x SIMD 256, 90 DP16KD, 9,562 LUT4) and 4096
#: bits (PE 32 x SIMD 128, 198 DP16KD) did not (35,500 and 53,400 wires still overused after 16 and 25
#: minutes): each row gathers the outputs of one DP16KD per 36 bits from across the device.
MAX_WEIGHT_ROW_BITS = 1024
BAUD = DEFAULT_BAUD
DIVISOR = divisor_for(CLOCK_HZ, BAUD)


class Platform(ULX3S_85F_Platform):
    """The ULX3S 85F platform without openFPGALoader among the required tools: it is needed only to
    program the board (``toolchain_program``), not to build the bitstream."""

    @property
    def required_tools(self):
        return [tool for tool in super().required_tools if tool != "openFPGALoader"]


class Top(BoardTop):
    """:class:`lowbit.hw.link.bridge.LinkTile` of :data:`GEOMETRY` on the ULX3S's FTDI UART, with a heartbeat
    on LED 0 and the link's error indicator on LED 7."""

    def __init__(self, geometry=GEOMETRY, clock_hz=CLOCK_HZ):
        super().__init__(
            geometry,
            family="ecp5",
            clock_hz=clock_hz,
            baud=BAUD,
            heartbeat_led=("led", 0),
            error_led=("led", 7),
            drive_high=[("uart_tx_enable", 0)],
        )
