"""The shared core of the popcount dot products: a pipelined sum of taps that are each -1, 0 or +1."""

from types import SimpleNamespace

from amaranth.hdl import Cat, signed

from lowbit.hw.units.cells import build_plan, check_target, resolve_target
from lowbit.hw.units.compressor import plan_popcount
from lowbit.hw.units.tree import register_levels, tree_levels
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
    tree of 2-bit leaves maps to fewer LUTs than separate popcounts of the +1 and -1 taps.

    With a cell ``target`` (``"ice40"``, ``"ecp5"``, or ``"auto"`` elaborated for such a platform) the
    sum is a compressor tree of the FPGA's cells (:mod:`lowbit.hw.units.compressor`) over ``2 n`` bits,
    two LUT4s per tap of its four input bits (:attr:`TAP_FIELDS`): ``pos`` (the tap is +1) and
    ``notneg`` (it is not -1), whose count is ``sum(tap) + n``.

    Latency is ``pipeline_depth`` cycles; throughput one vector per cycle; all stages stall together
    under back-pressure on ``o`` (see :class:`lowbit.hw.units.unit.PipelinedUnit`).
    """

    #: The payload fields :meth:`tap` reads, one bit each per tap (a compressor tree's LUT inputs).
    TAP_FIELDS = ()

    @classmethod
    def max_pipeline_depth(cls, n):
        return tree_levels(n) + 1

    def __init__(self, n, pipeline_depth, payload_layout, target="auto"):
        """``payload_layout(n)`` gives the input payload layout once ``n`` is checked."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise TypeError(f"n must be a positive integer, not {n!r}")
        self.n, self.target = n, check_target(target)
        super().__init__(payload_layout(n), signed(signed_tap_width(n)), pipeline_depth)

    def describe(self):
        return f"n={self.n}"

    def levels(self):
        return self.max_pipeline_depth(self.n)

    def tap(self, payload, k):
        raise NotImplementedError

    def tap_luts(self):
        """The LUT4 inits of a tap's two bits, ``pos`` and ``notneg``, over :attr:`TAP_FIELDS` (bit ``i``
        of the LUT index is field ``i``): :meth:`tap` evaluated on every combination of its inputs."""
        fields = self.TAP_FIELDS
        pos = notneg = 0
        for index in range(1 << len(fields)):
            bits = SimpleNamespace(**{f: {0: (index >> i) & 1} for i, f in enumerate(fields)})
            nonzero, negative = (int(v) & 1 for v in self.tap(bits, 0))
            pos |= (nonzero & (1 - negative)) << index
            notneg |= (1 - (nonzero & negative)) << index
        return pos, notneg

    def datapath(self, m, pipe, payload):
        target = resolve_target(self.target, getattr(pipe, "platform", None))
        if target != "generic":
            return self._cell_datapath(m, pipe, payload, target)
        leaves = []
        for k in range(self.n):
            nonzero, negative = self.tap(payload, k)
            leaves.append(Cat(~nonzero, nonzero & ~negative))
        # The adder levels, then the final subtraction of n, which the last register follows.
        total, level = pipe.reduce(leaves, self.registered)
        result = total - self.n
        if level in self.registered:
            return pipe.stage(result, self._result_shape, name="result")
        return result

    def _cell_datapath(self, m, pipe, payload, target):
        pos, notneg = self.tap_luts()
        leaves = []
        for k in range(self.n):
            inputs = tuple((field, k) for field in self.TAP_FIELDS)
            leaves += [(inputs, pos), (inputs, notneg)]
        plan = plan_popcount(2 * self.n, target, leaves=leaves)
        stages = len(plan.stages)
        # As XorPopcount: pipeline_depth - 1 registers cut the stages into equal runs, the last follows
        # the final step.
        inside = register_levels(stages, min(self.pipeline_depth, stages))[:-1]
        fields = {field: getattr(payload, field) for field in self.TAP_FIELDS}
        count = build_plan(m, plan, fields, pipe, inside, pipe.platform)
        result = count - self.n
        for _ in range(self.pipeline_depth - len(inside)):
            result = pipe.stage(result, self._result_shape, name="result")
        return result
