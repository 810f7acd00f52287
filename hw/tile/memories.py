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
    """The memory ``kind`` (:func:`shape_depth`), empty; its write ports write single words."""
    shape, depth = shape_depth(geometry, kind)
    return Memory(shape=shape, depth=depth, init=[])


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
