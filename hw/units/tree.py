"""Pipelined reduction trees, shared by every popcount / adder-tree unit.

A :class:`StallPipeline` advances all of its registers together: it moves when its output register is
empty or being read (``~o.valid | o.ready``). This gives one vector per cycle at full rate and exact
behaviour under back-pressure, at the price of a combinational ``ready`` path from output to input.
"""

from amaranth.hdl import Shape, Signal
from amaranth.utils import ceil_log2

__all__ = ["StallPipeline", "tree_levels", "register_levels"]


def tree_levels(n):
    """Adder levels of a balanced binary tree over ``n`` leaves."""
    return ceil_log2(max(n, 1))


def register_levels(levels, depth):
    """The levels (1 .. ``levels``) after which a ``depth``-stage pipeline places its registers.

    The last level is always registered (the output is a register); the others are spread evenly.
    """
    if not 1 <= depth <= levels:
        raise ValueError(f"pipeline depth must be between 1 and {levels}, not {depth}")
    return sorted({round((i + 1) * levels / depth) for i in range(depth)})


class StallPipeline:
    """Bookkeeping for a ``depth``-stage pipeline with one global advance signal.

    ``advance`` is true when the output register can take a new value; :meth:`stage` registers a value
    under it. The valid bits travel beside the data.
    """

    def __init__(self, m, i_stream, o_stream, depth, *, name="pipe"):
        self.m, self.depth = m, depth
        self.advance = Signal(name=f"{name}_advance")
        m.d.comb += self.advance.eq(~o_stream.valid | o_stream.ready)
        m.d.comb += i_stream.ready.eq(self.advance)
        valid = i_stream.valid
        for k in range(depth):
            v = Signal(name=f"{name}_valid{k}")
            with m.If(self.advance):
                m.d.sync += v.eq(valid)
            valid = v
        m.d.comb += o_stream.valid.eq(valid)
        self._count = 0

    def stage(self, value, shape=None, *, name=None):
        """A register that takes ``value`` when the pipeline advances."""
        shape = Shape.cast(value.shape() if shape is None else shape)
        reg = Signal(shape, name=name or f"stage{self._count}")
        self._count += 1
        with self.m.If(self.advance):
            self.m.d.sync += reg.eq(value)
        return reg

    def reduce(self, leaves, registered_after, *, first_level=1, combine=None):
        """Sum ``leaves`` in a balanced tree, registering after the levels in ``registered_after``.

        Level numbers start at ``first_level``. Returns the root and the next level number.
        """
        combine = combine or (lambda x, y: x + y)
        values = list(leaves)
        level = first_level
        while len(values) > 1:
            paired = [combine(values[i], values[i + 1]) for i in range(0, len(values) - 1, 2)]
            if len(values) % 2:
                paired.append(values[-1])
            values = paired
            if level in registered_after:
                values = [self.stage(v) for v in values]
            level += 1
        return values[0], level
