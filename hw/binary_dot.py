"""The binary (XNOR-popcount) dot-product unit."""

from amaranth.hdl import Module, Signal, Cat, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .tree import StallPipeline, tree_levels, register_levels

__all__ = ["BinaryDotInput", "binary_dot_width", "BinaryDotProduct"]


def BinaryDotInput(n):
    """Payload of the input stream: ``a``, ``w`` and ``valid``, ``n`` bits each, in that order from bit 0.

    Element ``i`` of each vector is bit ``i`` of its field (see ``docs/packing.md``).
    """
    return data.StructLayout({"a": n, "w": n, "valid": n})


def binary_dot_width(n):
    """Signed width that holds every result in ``[-n, n]``."""
    return n.bit_length() + 1


class BinaryDotProduct(wiring.Component):
    """Bipolar dot product of two ``n``-element binary vectors.

    Computes ``dot = 2 * popcount(~(a ^ w) & valid) - popcount(valid)``, with bit 1 = +1 and bit 0 = -1
    (FINN's bipolar convention); taps whose ``valid`` bit is 0 count as 0, which is how a layer whose
    width is not a multiple of ``n`` pads its last fold. This is :func:`lowbit.sw.golden.binary_dot`.

    Parameters
    ----------
    n : int
        Number of taps, at least 1.
    pipeline_depth : int or None
        Register stages (default: 2, or 1 where the tree is that shallow), from 1 (registered output only) to ``max_pipeline_depth(n)``
        (``ceil(log2(n)) + 1``: a register after every adder level).

    Attributes
    ----------
    latency : int
        Cycles from an input transfer to its result on ``o`` without back-pressure; equals
        ``pipeline_depth``.

    Ports
    -----
    i : In(stream.Signature(BinaryDotInput(n)))
    o : Out(stream.Signature(signed(n.bit_length() + 1)))

    Throughput is one vector per cycle. All stages advance together when ``o`` is empty or being read,
    so back-pressure stalls the whole pipeline and no result is lost or duplicated.
    """

    DEFAULT_PIPELINE_DEPTH = 2

    @staticmethod
    def max_pipeline_depth(n):
        return tree_levels(n) + 1

    def __init__(self, n, pipeline_depth=None):
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise TypeError(f"n must be a positive integer, not {n!r}")
        max_depth = self.max_pipeline_depth(n)
        if pipeline_depth is None:
            pipeline_depth = min(self.DEFAULT_PIPELINE_DEPTH, max_depth)
        if not isinstance(pipeline_depth, int) or isinstance(pipeline_depth, bool):
            raise TypeError(f"pipeline_depth must be an integer, not {pipeline_depth!r}")
        if not 1 <= pipeline_depth <= max_depth:
            raise ValueError(f"pipeline_depth must be between 1 and {max_depth} for n={n}, "
                             f"not {pipeline_depth}")
        self.n = n
        self.pipeline_depth = pipeline_depth
        self.latency = pipeline_depth
        super().__init__({
            "i": In(stream.Signature(BinaryDotInput(n))),
            "o": Out(stream.Signature(signed(binary_dot_width(n)))),
        })

    def elaborate(self, platform):
        m = Module()
        pipe = StallPipeline(m, self.i, self.o, self.pipeline_depth, name="dot")
        levels = tree_levels(self.n) + 1  # the adder levels, then the final 2*agree - valid
        registered = register_levels(levels, self.pipeline_depth)

        # One tree over 2-bit leaves u = 2*(agree & valid) + ~valid, which is 0 or 2 on a valid tap and
        # 1 on padding: sum(u) - n = 2*pc(agree & valid) - pc(valid). One tree of 2-bit leaves maps to
        # fewer LUTs than two popcount trees (bench/synth_binary_dot.py measured both).
        p = self.i.payload
        leaves = [Cat(~p.valid[k], ~(p.a[k] ^ p.w[k]) & p.valid[k]) for k in range(self.n)]
        total, level = pipe.reduce(leaves, registered)
        result = total - self.n
        m.d.comb += self.o.payload.eq(pipe.stage(result, self.o.payload.shape(), name="result")
                                      if level in registered else result)
        return m
