"""The binary (XNOR-popcount) unit: :class:`XorPopcount`.

The lanes count *disagreements*, ``d = popcount(a ^ w)`` (the Hamming distance); the bipolar dot
product ``n - 2 d`` is formed from ``d`` in the tile's accumulators and bias. The lanes carry no mask: a
layer whose width is not a multiple of the lanes pads
its last fold with taps that contribute nothing to ``d`` (an activation bit and a weight bit that
agree), and the constant this leaves in the dot product (``+1`` per padded tap) is the layer's to fold
into its bias (``docs/arithmetic.md``).
"""

from amaranth.hdl import unsigned
from amaranth.lib import data

from lowbit.hw.units.cells import build_plan, check_target, resolve_target
from lowbit.hw.units.compressor import plan_popcount
from lowbit.hw.units.tree import register_levels, tree_levels
from lowbit.hw.units.unit import PipelinedUnit, check_positive_int

__all__ = ["BinaryDotInput", "popcount_width", "XorPopcount"]


def BinaryDotInput(n):
    """Payload of the input stream: ``a`` and ``w``, ``n`` bits each, in that order from bit 0 (element
    ``i`` of each vector is bit ``i`` of its field; bit 1 is +1, bit 0 is -1)."""
    return data.StructLayout({"a": n, "w": n})


def popcount_width(n):
    """Bits of a popcount of ``n`` lanes."""
    return n.bit_length()


class XorPopcount(PipelinedUnit):
    """``popcount(a ^ w)`` over ``n`` lanes, the Hamming distance (:func:`lowbit.sw.golden.xor_popcount`).

    The tree is a compressor tree of the target's own cells (:mod:`lowbit.hw.units.compressor`): iCE40
    LUT4s and carry chains, ECP5 CCU2C adders with the lanes folded into them; or, for ``generic``, a
    plain adder tree that any synthesis tool maps.

    Parameters
    ----------
    n : int
        Lanes, at least 1.
    pipeline_depth : int or None
        Register stages, 1 (registered output only) to ``ceil(log2(n)) + 1``; default 2 (1 when the tree
        is that shallow). The registers are spread over the tree's stages.
    target : str
        ``"auto"`` (default: the cells of the platform the unit is elaborated for, the generic tree
        without one), ``"generic"``, ``"ice40"`` or ``"ecp5"``. A cell target builds its cells as models
        (simulation) unless the platform is of that family, then as the vendor's primitives.

    Ports: ``i`` (:func:`BinaryDotInput`), ``o`` (the result). Latency ``pipeline_depth`` cycles, one
    vector per cycle, every stage stalls together under back-pressure on ``o``.
    """

    SHARED_FIELDS = ("a",)

    def __init__(self, n, pipeline_depth=None, target="auto"):
        check_positive_int(n, "n")
        self.n, self.target = n, check_target(target)
        super().__init__(BinaryDotInput(n), unsigned(popcount_width(n)), pipeline_depth)

    def describe(self):
        return f"n={self.n}"

    def levels(self):
        return tree_levels(self.n) + 1

    def target_for(self, platform):
        """The tree this unit builds when elaborated for ``platform``."""
        return resolve_target(self.target, platform) if self.n >= 2 else "generic"

    def plan(self, target):
        """The compressor tree of a cell target (:func:`lowbit.hw.units.compressor.plan_popcount`)."""
        return plan_popcount(self.n, target)

    def datapath(self, m, pipe, payload):
        target = self.target_for(getattr(pipe, "platform", None))
        a, w = payload.a, payload.w
        if target == "generic":
            stages = tree_levels(self.n)
        else:
            plan = self.plan(target)
            stages = len(plan.stages)
        # pipeline_depth - 1 registers cut the tree's stages into runs of equal count (64 ECP5 lanes at
        # depth 2: a cut after stage 3 of 6 reached 131 MHz, after 2 128, after 4 107); the last register
        # is the output's, after the final step, and a depth beyond the stages adds registers there.
        inside = register_levels(stages, min(self.pipeline_depth, stages))[:-1] if stages else []
        if target == "generic":
            popcount, _ = pipe.reduce([a[k] ^ w[k] for k in range(self.n)], inside)
        else:
            popcount = build_plan(m, plan, {"a": a, "w": w}, pipe, inside, pipe.platform)
        result = popcount
        for _ in range(self.pipeline_depth - len(inside)):
            result = pipe.stage(result, self._result_shape, name="result")
        return result
