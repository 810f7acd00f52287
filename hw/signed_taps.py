"""The shared core of the popcount dot products: a pipelined sum of taps that are each -1, 0 or +1."""

from amaranth.hdl import Module, Cat, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .tree import StallPipeline, tree_levels, register_levels

__all__ = ["signed_tap_width", "SignedTapSum"]


def signed_tap_width(n):
    """Signed width that holds every sum of ``n`` taps in ``{-1, 0, +1}``: ``[-n, n]``."""
    return n.bit_length() + 1


class SignedTapSum(wiring.Component):
    """Base of the units whose tap ``k`` contributes ``+1``, ``-1`` or ``0``.

    A subclass gives the input payload layout and :meth:`tap`, which returns two 1-bit expressions
    ``(nonzero, negative)`` for tap ``k``. The sum is built as one tree over 2-bit leaves
    ``u = 2 * (nonzero & ~negative) + ~nonzero`` (0, 1 or 2), and the result is ``sum(u) - n``: one
    tree of 2-bit leaves maps to fewer LUTs than separate popcounts of the +1 and -1 taps.

    Latency is ``pipeline_depth`` cycles; throughput one vector per cycle; all stages stall together
    under back-pressure on ``o`` (see :class:`lowbit.hw.tree.StallPipeline`).
    """

    DEFAULT_PIPELINE_DEPTH = 2

    @staticmethod
    def max_pipeline_depth(n):
        return tree_levels(n) + 1

    def __init__(self, n, pipeline_depth, payload_layout):
        """``payload_layout(n)`` gives the input payload layout once ``n`` is checked."""
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
            "i": In(stream.Signature(payload_layout(n))),
            "o": Out(stream.Signature(signed(signed_tap_width(n)))),
        })

    def tap(self, payload, k):
        raise NotImplementedError

    def elaborate(self, platform):
        m = Module()
        pipe = StallPipeline(m, self.i, self.o, self.pipeline_depth, name="dot")
        levels = tree_levels(self.n) + 1  # the adder levels, then the final subtraction of n
        registered = register_levels(levels, self.pipeline_depth)
        leaves = []
        for k in range(self.n):
            nonzero, negative = self.tap(self.i.payload, k)
            leaves.append(Cat(~nonzero, nonzero & ~negative))
        total, level = pipe.reduce(leaves, registered)
        result = total - self.n
        m.d.comb += self.o.payload.eq(pipe.stage(result, self.o.payload.shape(), name="result")
                                      if level in registered else result)
        return m
