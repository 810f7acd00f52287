"""FINN's MultiThreshold activation: an accumulator against 2**bits - 1 thresholds, the count of hits."""

from amaranth.hdl import Mux, signed, unsigned
from amaranth.lib import data

from lowbit.hw.units.tree import tree_levels
from lowbit.hw.units.unit import PipelinedUnit, check_positive_int

__all__ = ["MultiThresholdInput", "MultiThreshold"]


def MultiThresholdInput(acc_width, bits):
    """``acc``: the accumulator, ``signed(acc_width)``; ``thresholds``: ``2**bits - 1`` thresholds of the
    channel, ``signed(acc_width)`` each, in any order; ``descending``: 1 for a channel whose batch-norm
    scale is negative (the comparison flips to ``acc <= T_i``)."""
    return data.StructLayout(
        {
            "acc": signed(acc_width),
            "thresholds": data.ArrayLayout(signed(acc_width), 2**bits - 1),
            "descending": 1,
        }
    )


class MultiThreshold(PipelinedUnit):
    """FINN's MultiThreshold for one channel (:func:`lowbit.sw.golden.multithreshold`)::

        out = sum_i [acc >= T_i]          (descending = 0)
        out = sum_i [acc <= T_i]          (descending = 1)

    over the ``2**bits - 1`` thresholds ``T_i``: the ``bits``-bit activation code that batch-norm and the
    next layer's quantizer fold into. The count does not depend on the order of the thresholds, and
    equal thresholds simply count twice.

    All comparators work in parallel (level 1); a balanced adder tree counts their results
    (``bits`` further levels when ``bits`` > 1). Each comparator swaps its operands when ``descending``
    (``T_i >= acc``) instead of having a second comparator: the swap takes one more LUT input per bit
    and no more logic.

    Parameters: ``acc_width`` in 2 .. 40, ``bits`` in 1 .. 8, ``pipeline_depth`` in 1 .. :meth:`levels`
    (``bits + 1``, or 1 when ``bits`` = 1), by default 2 (1 when ``bits`` = 1).

    Ports: ``i`` carries :func:`MultiThresholdInput`; ``o`` the count, ``unsigned(bits)``
    (0 .. ``2**bits - 1``). Latency ``pipeline_depth`` cycles, one accumulator per cycle,
    whole-pipeline stall under back-pressure. Every field is per channel (``SHARED_FIELDS`` is empty):
    in a :class:`lowbit.hw.units.unit.PEArray` each channel has its own accumulator and thresholds.
    """

    SHARED_FIELDS = ()

    def __init__(self, acc_width, bits, pipeline_depth=None):
        self.acc_width = check_positive_int(acc_width, "acc_width", 2, 40)
        self.bits = check_positive_int(bits, "bits", 1, 8)
        self.count = 2**bits - 1
        super().__init__(MultiThresholdInput(acc_width, bits), unsigned(bits), pipeline_depth)

    def describe(self):
        return f"acc_width={self.acc_width}, bits={self.bits}"

    def levels(self):
        return 1 + tree_levels(self.count)

    def datapath(self, m, pipe, payload):
        last = self.levels()
        acc, descending = payload.acc, payload.descending
        hits = [Mux(descending, t, acc) >= Mux(descending, acc, t) for t in payload.thresholds]
        if last == 1:
            return pipe.stage(hits[0], self._result_shape, name="result")
        if 1 in self.registered:
            hits = [pipe.stage(hit, name=f"hit{i}") for i, hit in enumerate(hits)]
        # The popcount; its root is the registered output, staged at the exact width of the count.
        total, _ = pipe.reduce(hits, [r for r in self.registered if r != last], first_level=2)
        return pipe.stage(total, self._result_shape, name="result")
