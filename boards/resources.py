"""What a tile of a given geometry costs on a board's FPGA, predicted without synthesizing it: logic
(LUT4 positions), block RAM and DSPs. ``lowbit plan`` searches geometries with it.

**Logic** is a linear model of the geometry (:func:`features`), one per board and tile family, whose
coefficients (:data:`lowbit.boards.resource_model.COEFFICIENTS`, non-negative) ``python
bench/resources.py`` fits to yosys syntheses of the board's whole top level (the build's own script,
:func:`lowbit.boards.build.synth_board`) at sampled geometries; that bench states the fit's error, and
``bench/boards.py`` the error against nextpnr's counts of the built bitstreams. The features are the
parts of the tile that grow with the geometry: the MAC lanes (``pe x simd`` taps of ``tap_bits`` weight
bits; on the NHOT array, of ``n_terms`` shift-adds of a ``max_input_bits`` code), the accumulators (``pe
x acc_width``), the threshold comparators (``pe x acc_width`` per threshold of the code width, or per level of
a tile that searches its thresholds), the
input row (``simd x max_input_bits`` bits: the plane select) and, on a tile with resident models, the
layer table, runner and activation writer (a constant and the input row again),
besides a constant for the link, the decoder and the sequencer.

The **LUT4 positions** are what nextpnr fills: on an iCE40 the logic cells (an ``SB_LUT4`` with its
``SB_CARRY`` and flip-flop; yosys's LUT4 + carry count is within a few % of nextpnr's), on an ECP5
the slice LUT4s (a ``CCU2C`` adder cell takes two, :mod:`lowbit.boards.synth`, and a distributed RAM
cell six: the link's FIFOs; the tile's memories are block RAM, :func:`lowbit.hw.tile.memories.make_memory`).

**Block RAM** is counted per memory (:func:`lowbit.hw.tile.memories.shape_depth`) in the block shape
that needs the fewest blocks, as yosys maps them (iCE40: ``SB_RAM40_4K`` 256 x 16 .. 2048 x 2, and the
weights in ``SB_SPRAM256KA`` of 16384 x 16 where yosys's cost model prefers them; ECP5: ``DP16KD`` 512 x 36 ..
16384 x 1), each write field (a word, a threshold record's field) in whole write-enable bytes of a block,
plus the link's FIFOs and what else yosys maps beyond the tile's memories: the most any calibration
sample had, so that the count is an upper bound (yosys packs some memories tighter than this count).
"""

import math
from dataclasses import dataclass

from lowbit.sw.protocol import Family, TileGeometry, output_code_bits

__all__ = [
    "FEATURES",
    "features",
    "lut_positions",
    "modelled",
    "predict_luts",
    "predict_blocks",
    "deep_weight_rows",
    "block_ram",
    "Resources",
    "predict",
]

#: The features of the logic model, in the order of the coefficients.
FEATURES = ("constant", "lanes", "accumulators", "comparators", "input_row", "resident", "resident_row")


def features(geometry: TileGeometry):
    """The values of :data:`FEATURES` for ``geometry``."""
    g = geometry
    # One comparator per threshold of the widest code, or per level of a searching tile.
    comparators = g.search_levels or 2 ** output_code_bits(g.max_thresholds + 1) - 1
    resident = 1 if g.max_layers else 0
    input_row = g.simd * g.max_input_bits
    # A lane: a tap's weight bits (XNOR / AND gates into the popcount), or an n-hot tap's shift-adds of the
    # input code (each term's k-bit input shifted by its exponent).
    lane = g.n_terms * g.max_input_bits if g.family == Family.NHOT else g.tap_bits
    return (
        1,
        g.pe * g.simd * lane,
        g.pe * g.acc_width,
        g.pe * g.acc_width * comparators,
        input_row,
        resident,
        resident * input_row,
    )


def lut_positions(family, cells):
    """LUT4 positions of yosys's cell counts ``cells`` (``{type: count}``) on ``family`` (``"ice40"``:
    SB_LUT4 + SB_CARRY; ``"ecp5"``: LUT4 + 2 x CCU2C + 6 x TRELLIS_DPR16X4, a distributed RAM taking six
    of nextpnr's LUT4 positions)."""
    if family == "ice40":
        return cells.get("SB_LUT4", 0) + cells.get("SB_CARRY", 0)
    return cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0) + 6 * cells.get("TRELLIS_DPR16X4", 0)


def modelled(board, family):
    """Whether the LUT model of ``board`` has been fitted for tiles of ``family``
    (``bench/resources.py`` fits it to syntheses of the board's top level)."""
    from lowbit.boards.resource_model import COEFFICIENTS

    return COEFFICIENTS.get(board, {}).get(Family(family).name) is not None


def predict_luts(board, geometry):
    """Predicted LUT4 positions of ``board``'s top level with a tile of ``geometry``; ``None`` when the
    model of that board and family has not been fitted. A tile that walks maps adds what
    ``bench/walk_cost.py`` measured for the board's FPGA family (:mod:`lowbit.boards.walk_model`)."""
    from lowbit.boards.resource_model import COEFFICIENTS

    coefficients = COEFFICIENTS.get(board, {}).get(geometry.family.name)
    if coefficients is None:
        return None
    luts = round(sum(c * x for c, x in zip(coefficients, features(geometry))))
    if geometry.maps:  # the map walk, measured apart (the logic model's tiles have none)
        from lowbit.boards.build import BOARDS
        from lowbit.boards.walk_model import WALK_LUTS

        luts += WALK_LUTS[BOARDS[board][1]]
    return luts


#: Per family: the block RAM (type, its shapes (width, depth), the width of a write-enable byte: the
#: ECP5's DP16KD has one per 9 bits, the iCE40's SB_RAM40_4K a bit mask in its 16-bit shape only) and the
#: SPRAM (type, width, depth; iCE40UP5K only), which yosys takes for the weights where its cost model
#: prefers it (more than 8192 rows), whether or not the device has that many (the budget checks).
_BLOCKS = {
    "ice40": {
        "ram": ("SB_RAM40_4K", [(16, 256), (8, 512), (4, 1024), (2, 2048)], 1),
        "spram": ("SB_SPRAM256KA", 16, 16384),
    },
    "ecp5": {
        "ram": ("DP16KD", [(36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384)], 9),
        "spram": None,
    },
}


def _blocks(width, depth, granularity, shapes, byte):
    """Blocks of ``shapes`` for a memory of ``width`` x ``depth`` written in fields of ``granularity`` bits:
    each field takes whole write-enable bytes (``byte`` bits: a 24-bit field three 9-bit bytes of ECP5
    blocks); ``byte`` 1 is a bit mask, in the widest shape only (iCE40)."""
    if granularity == width:
        return min(math.ceil(width / w) * math.ceil(depth / d) for w, d in shapes)
    if byte == 1:  # iCE40: a bit mask, in the widest shape only
        w, d = shapes[0]
        return math.ceil(width / w) * math.ceil(depth / d)
    lanes = math.ceil(width / granularity) * math.ceil(granularity / byte)  # byte lanes, a field's own
    return min(math.ceil(lanes / (w // byte)) * math.ceil(depth / d) for w, d in shapes if w >= byte)


def block_ram(family):
    """The cell type of ``family``'s block RAM (``SB_RAM40_4K``, ``DP16KD``)."""
    return _BLOCKS[family]["ram"][0]


def deep_weight_rows(family):
    """The weight rows from which yosys keeps the weights in ``family``'s SPRAMs (its cost model: more than
    8192 rows; the SPRAM's 16384, where they cost nothing more), or ``None`` for a family without."""
    spram = _BLOCKS[family]["spram"]
    return None if spram is None else spram[2]


def predict_blocks(family, geometry, link_blocks=0):
    """``{block type: count}`` of ``geometry``'s memories on ``family``, plus ``link_blocks`` block RAMs."""
    from lowbit.hw.tile.memories import granularity, memory_kinds, shape_depth

    (ram, shapes, byte), spram = _BLOCKS[family]["ram"], _BLOCKS[family]["spram"]
    counts = {ram: link_blocks}
    for kind, copies in memory_kinds(geometry):
        shape, depth = shape_depth(geometry, kind)
        blocks = _blocks(shape.width, depth, granularity(geometry, kind), shapes, byte)
        if kind == "weights" and spram is not None:
            # yosys's cost model (ice40/spram.txt, brams.txt): an SPRAM costs 2048, a block RAM 64.
            name, width, size = spram
            needed = math.ceil(shape.width / width) * math.ceil(depth / size)
            if 2048 * needed < 64 * blocks:
                counts[name] = needed
                continue
        counts[ram] += copies * blocks
    return counts


@dataclass(frozen=True)
class Resources:
    """Predicted ``luts`` (LUT4 positions, ``None`` if not modelled), ``blocks`` ({type: count})."""

    luts: int
    blocks: dict

    def text(self):
        blocks = ", ".join(f"{count} {name}" for name, count in self.blocks.items() if count)
        return f"{self.luts} LUT4 positions, {blocks or 'no block RAM'}"


def predict(board, geometry):
    """:class:`Resources` of ``board``'s top level with a tile of ``geometry``."""
    from lowbit.boards.build import BOARDS
    from lowbit.boards.resource_model import LINK_BLOCKS

    family = BOARDS[board][1]
    return Resources(predict_luts(board, geometry), predict_blocks(family, geometry, LINK_BLOCKS.get(board, 0)))
