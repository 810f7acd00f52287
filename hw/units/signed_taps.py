"""The shared core of the popcount dot products: a pipelined sum of taps that are each -1, 0 or +1."""

from amaranth.hdl import Cat, signed

from lowbit.hw.units.tree import tree_levels
from lowbit.hw.units.unit import PipelinedUnit

__all__ = ["signed_tap_width", "SignedTapSum"]


def signed_tap_width(n):
    """Signed width that holds every sum of ``n`` taps in ``{-1, 0, +1}``: ``[-n, n]``."""
    return n.bit_length() + 1


class SignedTapSum(PipelinedUnit):
    """Base of the units whose tap ``k`` contributes ``+1``, ``-1`` or ``0``.

    A subclass gives the input payload layout and :meth:`tap`, which returns two 1-bit expressions
    ``(nonzero, negative)`` for tap ``k``. The sum is built as one tree over 2-bit leaves
    ``u = 2 * (nonzero & ~negative) + ~nonzero`` (0, 1 or 2), and the result is ``sum(u) - n``: one
    tree of 2-bit leaves maps to fewer LUTs than separate popcounts of the +1 and -1 taps. A subclass
    may add a signed per-vector term with :meth:`extra_leaves` (it rides the same tree).

    Latency is ``pipeline_depth`` cycles; throughput one vector per cycle; all stages stall together
    under back-pressure on ``o`` (see :class:`lowbit.hw.units.unit.PipelinedUnit`).
    """

    #: Number of values :meth:`extra_leaves` returns.
    EXTRA_LEAVES = 0

    @classmethod
    def max_pipeline_depth(cls, n):
        return tree_levels(n + cls.EXTRA_LEAVES) + 1

    def __init__(self, n, pipeline_depth, payload_layout, result_width=None):
        """``payload_layout(n)`` gives the input payload layout once ``n`` is checked."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise TypeError(f"n must be a positive integer, not {n!r}")
        self.n = n
        super().__init__(payload_layout(n), signed(result_width or signed_tap_width(n)), pipeline_depth)

    def describe(self):
        return f"n={self.n}"

    def levels(self):
        return self.max_pipeline_depth(self.n)

    def tap(self, payload, k):
        raise NotImplementedError

    def extra_leaves(self, payload):
        """``EXTRA_LEAVES`` further (signed) values added into the tree; none by default."""
        return []

    def datapath(self, m, pipe, payload):
        leaves = []
        for k in range(self.n):
            nonzero, negative = self.tap(payload, k)
            leaves.append(Cat(~nonzero, nonzero & ~negative))
        leaves += self.extra_leaves(payload)
        # The adder levels, then the final subtraction of n, which the last register follows.
        total, level = pipe.reduce(leaves, self.registered)
        result = total - self.n
        if level in self.registered:
            return pipe.stage(result, self._result_shape, name="result")
        return result
