"""The tile's memories, their shapes and the signatures of their ports, in one place for the tile that
builds them and the blocks that use their ports."""

from amaranth.hdl import unsigned
from amaranth.lib.memory import Memory, ReadPort, WritePort
from amaranth.utils import ceil_log2

from lowbit.sw.protocol import WORD_BITS

__all__ = [
    "record_fields",
    "fold_bits",
    "granularity",
    "record_field_bits",
    "input_banks",
    "shape_depth",
    "make_memory",
    "memory_kinds",
    "read_port_signature",
    "write_port_signature",
]


def record_field_bits(geometry):
    """Bits of each field of a threshold record: ``acc_width`` (the bias and the thresholds are kept to
    the accumulator's width; the direction is one bit)."""
    return geometry.acc_width


def record_fields(geometry):
    """Fields of a channel's record in the ``"thresholds"`` memory: bias and direction, then the
    thresholds unless the tile searches them (they are then in the level memories)."""
    return 2 if geometry.search_levels else 2 + geometry.max_thresholds


def fold_bits(geometry):
    """Bits of an output fold's address in the threshold memories."""
    return ceil_log2(geometry.max_out_folds)


def input_banks(geometry):
    """Banks of ``max_in_folds`` input rows: the host's two, plus one for a resident model's activations."""
    return 3 if geometry.max_layers else 2


def shape_depth(geometry, kind):
    """``(shape, depth)`` of the memory ``kind`` of a tile of ``geometry``:

    - ``"weights"``: a weight row per address (``weight_row_words`` words), ``max_weight_rows`` rows;
    - ``"inputs"``: an input row per address, two banks of ``max_in_folds`` rows (the host's vectors), and
      a third on a tile with resident models (``max_layers``: the activations between layers);
    - ``"thresholds"``: one channel's record per output fold (bias, direction and, unless the tile
      searches them, :attr:`~lowbit.sw.protocol.TileGeometry.search_levels`, ``max_thresholds``
      thresholds: :func:`record_field_bits` each, the low bits of LOAD_THRESHOLDS' words: all the tile
      computes with), ``max_out_folds`` records; a tile has ``pe`` of these;
    - ``"level<k>"`` (a searching tile, ``k`` in ``0 .. search_levels - 1``): one channel's thresholds
      of search level ``k``, ``2**k`` per output fold (address: the fold, then the ``k`` bits of the
      search so far); a searching tile has ``pe`` of each.
    """
    g = geometry
    if kind == "weights":
        return unsigned(g.weight_row_words * WORD_BITS), g.max_weight_rows
    if kind == "inputs":
        return unsigned(g.max_input_row_words * WORD_BITS), input_banks(g) * g.max_in_folds
    if kind == "thresholds":
        return unsigned(record_fields(g) * record_field_bits(g)), g.max_out_folds
    if kind.startswith("level") and kind[5:].isdigit() and int(kind[5:]) < g.search_levels:
        return unsigned(record_field_bits(g)), 1 << (fold_bits(g) + int(kind[5:]))
    raise ValueError(f"kind must be 'weights', 'inputs', 'thresholds' or a searching tile's 'level<k>', not {kind!r}")


def make_memory(geometry, kind):
    """The memory ``kind`` (:func:`shape_depth`), empty; its write ports write single words. The inputs and
    thresholds are marked ``ram_style = "block"``: yosys maps them to block RAM even where distributed RAM
    would be cheaper by its cost model (an ECP5 maps a shallow memory, such as a PE's threshold records,
    to TRELLIS_DPR16X4 cells, about six LUT4 positions each: thousands of LUTs for a wide array), so that
    a tile's logic is its arithmetic and control and its block RAM what :mod:`lowbit.boards.resources`
    counts. The weights are not (deep enough for block RAM anyway; on the iCE40UP5K, the SPRAMs)."""
    shape, depth = shape_depth(geometry, kind)
    return Memory(shape=shape, depth=depth, init=[], attrs={} if kind == "weights" else {"ram_style": "block"})


def memory_kinds(geometry):
    """``(kind, copies)`` of every memory of a tile of ``geometry``."""
    kinds = [("weights", 1), ("inputs", 1), ("thresholds", geometry.pe)]
    kinds += [(f"level{k}", geometry.pe) for k in range(geometry.search_levels)]
    return kinds


def read_port_signature(geometry, kind):
    """The signature of a (synchronous) read port of the memory ``kind``."""
    shape, depth = shape_depth(geometry, kind)
    return ReadPort.Signature(addr_width=ceil_log2(depth), shape=shape)


def granularity(geometry, kind):
    """Bits per write enable of the memory ``kind``: a word, or a threshold record's field."""
    return record_field_bits(geometry) if kind == "thresholds" or kind.startswith("level") else WORD_BITS


def write_port_signature(geometry, kind):
    """The signature of a write port of the memory ``kind``, with a write enable per word (per field of
    a threshold record)."""
    shape, depth = shape_depth(geometry, kind)
    return WritePort.Signature(addr_width=ceil_log2(depth), shape=shape, granularity=granularity(geometry, kind))
