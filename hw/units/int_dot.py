"""The baseline: an integer dot product built from plain multipliers and an adder tree."""

from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import data

from lowbit.hw.units.tree import tree_levels
from lowbit.hw.units.unit import PipelinedUnit, check_positive_int

__all__ = ["IntDotInput", "int_dot_range", "IntDotProduct"]


def IntDotInput(n, a_bits=8, w_bits=8, signed_operands=True):
    """Activations ``a`` and weights ``w``: ``n`` integers each, of ``a_bits`` / ``w_bits`` bits, two's
    complement when ``signed_operands`` (otherwise unsigned). Element ``i`` is ``a[i]`` / ``w[i]``
    (bits ``i*a_bits ..`` of the field). Padding taps have ``a = 0`` or ``w = 0``.
    """
    kind = signed if signed_operands else unsigned
    return data.StructLayout({"a": data.ArrayLayout(kind(a_bits), n), "w": data.ArrayLayout(kind(w_bits), n)})


def int_dot_range(n, a_bits, w_bits, signed_operands=True):
    """The least and greatest value of ``sum_i a_i * w_i`` over all operands."""
    if signed_operands:
        a_lo, a_hi = -(1 << (a_bits - 1)), (1 << (a_bits - 1)) - 1
        w_lo, w_hi = -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1
    else:
        a_lo, a_hi, w_lo, w_hi = 0, (1 << a_bits) - 1, 0, (1 << w_bits) - 1
    products = [a * w for a in (a_lo, a_hi) for w in (w_lo, w_hi)]
    return n * min(products), n * max(products)


class IntDotProduct(PipelinedUnit):
    """The multiplier baseline: ``sum_i a_i * w_i`` over ``n`` pairs of ``a_bits``- and ``w_bits``-bit
    integers, each product an Amaranth ``*`` (a plain multiplier; yosys maps it to LUTs or DSPs).

    Parameters
    ----------
    n : int
        Taps, at least 1.
    a_bits, w_bits : int
        Operand widths, 1 to 32 (at least 2 when ``signed``).
    signed : bool
        Two's-complement operands (default) or unsigned ones.
    pipeline_depth : int or None
        Register stages, 1 (registered output only) to ``1 + ceil(log2(n))`` (a register after the
        multipliers and after every adder level); default 2 (or 1 for ``n = 1``).

    Ports
    -----
    i : In(stream.Signature(IntDotInput(n, a_bits, w_bits, signed)))
        ``{"a": ArrayLayout(signed(a_bits), n), "w": ArrayLayout(signed(w_bits), n)}`` (unsigned
        elements when ``signed=False``).
    o : Out(stream.Signature(shape))
        The exact sum, ``shape`` the narrowest (signed when ``signed``) shape holding
        :func:`int_dot_range`.

    Latency ``pipeline_depth`` cycles; one vector per cycle; whole-pipeline stall under back-pressure.
    In a :class:`lowbit.hw.units.unit.PEArray` the activations ``a`` are shared.
    """

    SHARED_FIELDS = ("a",)

    def __init__(self, n, a_bits=8, w_bits=8, signed=True, pipeline_depth=None):
        check_positive_int(n, "n")
        if not isinstance(signed, bool):
            raise TypeError(f"signed must be a bool, not {signed!r}")
        check_positive_int(a_bits, "a_bits", 2 if signed else 1, 32)
        check_positive_int(w_bits, "w_bits", 2 if signed else 1, 32)
        self.n, self.a_bits, self.w_bits, self.signed = n, a_bits, w_bits, signed
        lo, hi = int_dot_range(n, a_bits, w_bits, signed)
        result_shape = Shape.cast(range(lo, hi + 1))
        super().__init__(IntDotInput(n, a_bits, w_bits, signed), result_shape, pipeline_depth)

    def describe(self):
        return f"n={self.n}, a_bits={self.a_bits}, w_bits={self.w_bits}, signed={self.signed}"

    def levels(self):
        # The multipliers, then the adder levels.
        return 1 + tree_levels(self.n)

    def datapath(self, m, pipe, payload):
        products = [payload.a[i] * payload.w[i] for i in range(self.n)]
        if 1 in self.registered:
            products = [pipe.stage(p, name=f"product{i}") for i, p in enumerate(products)]
        # The tree grows one bit per level; the root is truncated to the exact shape, which holds it.
        total, _ = pipe.reduce(products, self.registered, first_level=2)
        return total
