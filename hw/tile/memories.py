"""The tile's memories, their shapes and the signatures of their ports, in one place for the tile that
builds them and the blocks that use their ports."""

from amaranth.hdl import unsigned
from amaranth.lib.memory import Memory, ReadPort, WritePort
from amaranth.utils import ceil_log2

from lowbit.sw.protocol import WORD_BITS

__all__ = [
    "granularity",
    "record_field_bits",
    "input_banks",
    "shape_depth",
    "make_memory",
    "read_port_signature",
    "write_port_signature",
]


def record_field_bits(geometry):
    """Bits of each field of a threshold record: ``acc_width`` (the bias and the thresholds are kept to
    the accumulator's width; the direction is one bit)."""
    return geometry.acc_width


def input_banks(geometry):
    """Banks of ``max_in_folds`` input rows: the host's two, plus one for a resident model's activations."""
    return 3 if geometry.max_layers else 2


def shape_depth(geometry, kind):
    """``(shape, depth)`` of the memory ``kind`` of a tile of ``geometry``:

    - ``"weights"``: a weight row per address (``weight_row_words`` words), ``max_weight_rows`` rows;
    - ``"inputs"``: an input row per address, two banks of ``max_in_folds`` rows (the host's vectors), and
      a third on a tile with resident models (``max_layers``: the activations between layers);
    - ``"thresholds"``: one channel's record per output fold (bias, direction, ``max_thresholds``
      thresholds: :func:`record_field_bits` each, the low bits of LOAD_THRESHOLDS' words: all the tile
      computes with), ``max_out_folds`` records; a tile has ``pe`` of these.
    """
    g = geometry
    if kind == "weights":
        return unsigned(g.weight_row_words * WORD_BITS), g.max_weight_rows
    if kind == "inputs":
        return unsigned(g.max_input_row_words * WORD_BITS), input_banks(g) * g.max_in_folds
    if kind == "thresholds":
        return unsigned((2 + g.max_thresholds) * record_field_bits(g)), g.max_out_folds
    raise ValueError(f"kind must be 'weights', 'inputs' or 'thresholds', not {kind!r}")


def make_memory(geometry, kind):
    """The memory ``kind`` (:func:`shape_depth`), empty; its write ports write single words. The inputs and
    thresholds are marked ``ram_style = "block"``: yosys maps them to block RAM even where distributed RAM
    would be cheaper by its cost model (an ECP5 maps a shallow memory, such as a PE's threshold records,
    to TRELLIS_DPR16X4 cells, about six LUT4 positions each: thousands of LUTs for a wide array), so that
    a tile's logic is its arithmetic and control and its block RAM what :mod:`lowbit.boards.resources`
    counts. The weights are not (deep enough for block RAM anyway; on the iCE40UP5K, the SPRAMs)."""
    shape, depth = shape_depth(geometry, kind)
    return Memory(shape=shape, depth=depth, init=[], attrs={} if kind == "weights" else {"ram_style": "block"})


def read_port_signature(geometry, kind):
    """The signature of a (synchronous) read port of the memory ``kind``."""
    shape, depth = shape_depth(geometry, kind)
    return ReadPort.Signature(addr_width=ceil_log2(depth), shape=shape)


def granularity(geometry, kind):
    """Bits per write enable of the memory ``kind``: a word, or a threshold record's field."""
    return record_field_bits(geometry) if kind == "thresholds" else WORD_BITS


def write_port_signature(geometry, kind):
    """The signature of a write port of the memory ``kind``, with a write enable per word (per field of
    a threshold record)."""
    shape, depth = shape_depth(geometry, kind)
    return WritePort.Signature(addr_width=ceil_log2(depth), shape=shape, granularity=granularity(geometry, kind))
