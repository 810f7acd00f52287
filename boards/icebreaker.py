"""The iCEBreaker (iCE40UP5K-SG48, 12 MHz): the tile behind the serial link on the FTDI UART.

Geometry (:data:`GEOMETRY`): POPCOUNT array, PE = 2 output channels x SIMD = 16 inputs per cycle,
up to 1024 input and 512 output features per layer (larger layers run in parts of output channels,
:func:`lowbit.sw.host.output_parts`), 16384 weight rows of 64 bits, a 16-bit accumulator, one
threshold per channel (binary outputs; the last layer returns the raw accumulator) and uint inputs of up
to 8 bits. The weight memory (1 Mbit) is the four 256-kbit SPRAMs: the tile's weight memory has one
address for reading and writing (loads and runs never overlap), which yosys maps to SB_SPRAM256KA with
``synth_ice40 -spram`` once the memory's (all-zero) initial contents are dropped: an SPRAM has none, and
the tile never reads a weight it has not loaded. It runs the repository's binary digits model
(64 -> 256 -> 256 -> 10, 8-bit pixels, an int8 last layer) and FINN's LFC topology
(784 -> 1024 -> 1024 -> 1024 -> 10, binary). FATNN (2 thresholds) and TWN (15) hidden layers need more
thresholds than it keeps: each PE's threshold memory is 2 + thresholds fields of 16 bits wide. No
resident mode (``max_layers`` 0): the layer table, runner, activation writer and third input bank take
about 1300 logic cells, and this geometry with ``max_layers`` 4 needs 5714 of the UP5K's 5280; models run
a layer at a time.

Clock: the PLL makes :data:`CLOCK_HZ` = 18 MHz from the 12 MHz oscillator (both tiles meet about
20 MHz), six cycles per bit of the UART's 3 Mbaud exactly (the FT2232H makes 3 Mbaud exactly too).

Pins: UART rx 6 / tx 9 at 3 Mbaud (:data:`DIVISOR` = 6 cycles per bit at 18 MHz); green LED: heartbeat
(a blink every 0.9 s); red LED: lit once the link has dropped a frame or the UART a
character (sticky until reset).
"""

from amaranth_boards.icebreaker import ICEBreakerPlatform

from lowbit.boards.build import BoardTop, divisor_for
from lowbit.sw.protocol import Family, TileGeometry
from lowbit.sw.protocol.frames import DEFAULT_BAUD

__all__ = [
    "GEOMETRY",
    "BINARY_GEOMETRY",
    "RESIDENT_GEOMETRY",
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
    "TOOLCHAIN_OVERRIDES",
    "Top",
]

GEOMETRY = TileGeometry(
    Family.POPCOUNT,
    pe=2,
    simd=16,
    max_in_features=1024,
    max_out_features=512,
    max_weight_rows=16384,
    acc_width=16,
    max_thresholds=1,
    max_input_bits=8,
)
#: The BINARY family's tile for binary models (binary weights, uint or binary input, an int last layer):
#: PE 2 x SIMD 32, twice the lanes of GEOMETRY in the same weight memory (4 SPRAMs of 16 bits).
#: ``lowbit`` builds :data:`GEOMETRY` by default; the boards benchmark measures both.
BINARY_GEOMETRY = TileGeometry(
    Family.BINARY,
    pe=2,
    simd=32,
    max_in_features=1024,
    max_out_features=512,
    max_weight_rows=16384,
    acc_width=16,
    max_thresholds=1,
    max_input_bits=8,
)
#: A tile that holds a small binary model resident (LOAD_MODEL: up to 3 layers of at most 256 inputs, 522
#: output channels in all), the tile ``lowbit plan`` sizes for the digits model 64-256-256-10 on this board:
#: BINARY PE 2 x SIMD 16, the weights in two SPRAMs (16384 rows: shallower, yosys maps them to the block
#: RAMs, about 50 of the 30 there are). Built with placer seed 1 (the seed ``lowbit build`` gives a tile the
#: board does not declare): 5,242 of the 5,280 logic cells, 24 block RAMs, 2 SPRAMs, 19.41 MHz against the
#: 18 MHz clock. Not among GEOMETRIES, the tiles for every model of their family.
RESIDENT_GEOMETRY = TileGeometry(
    Family.BINARY,
    pe=2,
    simd=16,
    max_in_features=256,
    max_out_features=522,
    max_weight_rows=16384,
    acc_width=15,
    max_thresholds=1,
    max_input_bits=8,
    max_layers=3,
)
#: The board's tiles by name.
GEOMETRIES = {"popcount": GEOMETRY, "binary": BINARY_GEOMETRY}
#: The tile's clock from the PLL, per tile of GEOMETRIES (the 12 MHz oscillator feeds the PLL only).
CLOCKS_HZ = {"popcount": 18_000_000, "binary": 18_000_000}
CLOCK_HZ = CLOCKS_HZ["popcount"]
#: nextpnr's placer seed that builds each tile: near the UP5K's limit the router does not converge with
#: every seed (POPCOUNT at 4608 LC: 5 and 1 routed, 3, 4 and 7 not within 5 minutes; at 4101 LC, since the
#: decoder's control shrank: 1 in 69 s at 20.89 MHz, 5 not within 14 minutes; BINARY, 4731 LC before the
#: link's receive slots: with 2 and 3, not with 1); ``lowbit build`` and ``boards.build.build`` use it
#: unless given a seed.
SEEDS = {"popcount": 1, "binary": 2}
#: The FPGA's resources (iCE40UP5K): logic cells, block RAMs by type, DSPs; the planner's budget.
DEVICE = {"luts": 5280, "blocks": {"SB_RAM40_4K": 30, "SB_SPRAM256KA": 4}, "dsp": 8}
#: The share of the logic cells ``lowbit plan`` fills by default, in the resource model's LUT4 positions
#: (nextpnr packs them into about 7 % more logic cells): up to 93 %, so that the digits model's resident
#: tile (:data:`RESIDENT_GEOMETRY`, predicted 4,897) is chosen; it routes with placer seed 1 at 99 % of the
#: cells. Near the limit nextpnr converges only with some seeds (:data:`SEEDS`): a planned tile that
#: does not route is built with another ``lowbit build --seed`` or planned smaller (``--luts``).
LUT_BUDGET = 0.93
#: The widest weight row ``lowbit plan`` gives a tile: 64 bits (PE 1 x SIMD 64 routes at 4,310 cells;
#: PE 2 x SIMD 64, 128-bit rows from eight block RAMs into one array, still had 9,920 wires overused
#: after 10 minutes of routing at 3,955 cells, 74 %).
MAX_WEIGHT_ROW_BITS = 64
BAUD = DEFAULT_BAUD
DIVISOR = divisor_for(CLOCK_HZ, BAUD)
Platform = ICEBreakerPlatform

#: Amaranth toolchain overrides of the build. ``-spram`` lets yosys put the weight memory in the SPRAMs,
#: after the script drops that memory's initial contents (``$meminit``). The tile's control logic
#: multiplies (a layer's word counts, computed in a pipeline after CONFIGURE, and a batch's response
#: length): as LUTs these products cost about 2000 of the 5280 LUTs and make ABC9 run for over ten
#: minutes; with ``-dsp`` alone yosys puts every product in SB_MAC16s (more than the 8 there are). So
#: before synthesis the copies are merged (``opt_merge``) and the narrow products (an operand below 15
#: bits after ``wreduce``) are mapped to logic; the wide ones go to DSPs.
TOOLCHAIN_OVERRIDES = {
    "synth_opts": "-dsp -spram",
    "script_after_read": "proc; flatten; delete t:$meminit_v2 r:MEMID=*weights %i; "
    "opt_expr; opt_merge; opt_clean; wreduce; opt_clean; "
    "techmap -map +/techmap.v t:$mul r:A_WIDTH<15 %i t:$mul r:B_WIDTH<15 %i %u",
}


class Top(BoardTop):
    """:class:`lowbit.hw.link.bridge.LinkTile` of :data:`GEOMETRY` on the iCEBreaker's UART, with a heartbeat
    on the green LED and the link's error indicator on the red LED."""

    def __init__(self, geometry=GEOMETRY, clock_hz=CLOCK_HZ):
        super().__init__(
            geometry,
            family="ice40",
            clock_hz=clock_hz,
            baud=BAUD,
            heartbeat_led=("led_g", 0),
            error_led=("led_r", 0),
        )
