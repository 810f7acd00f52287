"""FGQ's group-scaled ternary dot product: add/subtract inside each group, one multiply per group."""

from amaranth.hdl import Cat, Const, Shape, Value
from amaranth.lib import data

from lowbit.hw.units.tree import tree_levels
from lowbit.hw.units.unit import PipelinedUnit, check_positive_int
from lowbit.sw.kinds import FGQ_SCALE_BITS

__all__ = ["ALPHA_BITS", "FGQDotInput", "fgq_tap_bound", "fgq_dot_width", "FGQDotProduct"]

#: Width of a group scale: unsigned Q0.8, the integers 0 .. 255 (FGQ, docs/arithmetic.md).
ALPHA_BITS = FGQ_SCALE_BITS


def FGQDotInput(n, group_size, k=8, signed=False):
    """``a``: ``n`` activations of ``k`` bits (two's complement when ``signed``), element ``i`` at index ``i``;
    ``t_nz``, ``t_sign``: the ternary weights as two ``n``-bit planes (bit ``i`` of ``t_nz`` is 1 where
    ``t_i != 0``, of ``t_sign`` where ``t_i = -1``; :func:`lowbit.sw.kinds.encodings.encode_ternary`);
    ``alpha``: ``n // group_size`` unsigned Q0.8 group scales, group ``g`` being taps
    ``g * group_size .. (g + 1) * group_size - 1``.
    """
    return data.StructLayout(
        {
            "a": data.ArrayLayout(Shape(k, signed), n),
            "t_nz": n,
            "t_sign": n,
            "alpha": data.ArrayLayout(ALPHA_BITS, n // group_size),
        }
    )


def fgq_tap_bound(k, signed=False):
    """The largest ``|t * a|`` for a ``k``-bit activation ``a``: ``2**k - 1``, or ``2**(k-1)`` when signed
    (``t = -1`` against ``a = -2**(k-1)``)."""
    return 2 ** (k - 1) if signed else 2**k - 1


def fgq_dot_width(n, k=8, signed=False):
    """Signed width that holds every result: ``|result| <= 255 * n * fgq_tap_bound(k, signed)``, and the
    bound is reached (``alpha = 255`` everywhere, every tap at its bound with one sign)."""
    return ((2**ALPHA_BITS - 1) * n * fgq_tap_bound(k, signed)).bit_length() + 1


class FGQDotProduct(PipelinedUnit):
    """FGQ's group-scaled ternary dot product (:func:`lowbit.sw.golden.fgq_dot`)::

        result = sum_g alpha[g] * s_g,    s_g = sum_{i in group g} t_i * a_i

    with ternary weights ``t_i`` in {-1, 0, +1}, ``k``-bit activations ``a_i`` and ``n // group_size``
    group scales ``alpha[g]`` in unsigned Q0.8 (the integers 0 .. 255).

    The partial sums ``s_g`` use only additions and subtractions (each tap is ``a_i``, ``-a_i`` or 0);
    each group then has exactly one multiplier, ``alpha[g] * s_g``, and a balanced adder tree sums the
    groups. The Q0.8 scale is exact: the unit does no rounding and no shifting, its result is the exact
    integer ``sum_g alpha_q[g] * s_g``. The factor ``2**-8`` of Q0.8 and the layer's common scale (which
    made every ``alpha_g < 1``) stay outside the integer datapath, folded into the thresholds that
    follow (FGQ, docs/arithmetic.md).

    Parameters: ``n`` taps (``n % group_size == 0``), ``group_size`` >= 1 (FGQ uses 4 or 64), ``k`` in
    2 .. 8 activation bits, ``signed`` activations (two's complement) or unsigned, ``pipeline_depth`` in
    1 .. :meth:`levels`.

    Ports: ``i`` carries :func:`FGQDotInput`; ``o`` the signed result, exactly :func:`fgq_dot_width` bits. Logic
    levels (the possible register positions): the tap selection ``y_i = t_i * a_i - [t_i = -1]`` (the bits of
    ``a_i``, inverted under a set sign bit where ``t_i = -1``: a LUT per bit, no carry chain: on iCE40, 64 lanes
    take 7 % fewer LUT4 than with a conditional negation ``-a_i`` at depths 1 and 2), ``ceil(log2(group_size +
    1))`` adder levels (the group's ``y_i`` and its count of -1 taps, which restores ``t_i * a_i``), the
    multiply, ``ceil(log2(n / group_size))`` adder levels. Latency ``pipeline_depth`` cycles (default 2), one
    vector per cycle, whole-pipeline stall under back-pressure. In a :class:`lowbit.hw.units.unit.PEArray` the
    activations ``a`` are shared and each channel has its own weights and scales.
    """

    SHARED_FIELDS = ("a",)

    def __init__(self, n, group_size, k=8, signed=False, pipeline_depth=None):
        self.n = check_positive_int(n, "n")
        self.group_size = check_positive_int(group_size, "group_size")
        if n % group_size:
            raise ValueError(f"n must be a multiple of group_size, not n={n} with group_size={group_size}")
        self.k = check_positive_int(k, "k", 2, 8)
        if not isinstance(signed, bool):
            raise TypeError(f"signed must be a bool, not {signed!r}")
        self.signed = signed
        self.groups = n // group_size
        super().__init__(
            FGQDotInput(n, group_size, k, signed), Shape(fgq_dot_width(n, k, signed), True), pipeline_depth
        )
        # The multiply is the deepest level: a register spread to just before it moves to just after it
        # (at depth 2 on the ECP5-85F, 64 lanes: 64.8 MHz in bench/synth_units.py, 50.1 before it).
        multiply = self.levels() - tree_levels(self.groups)
        if multiply - 1 in self.registered and multiply not in self.registered:
            self.registered = sorted({multiply if r == multiply - 1 else r for r in self.registered})

    def describe(self):
        return f"n={self.n}, group_size={self.group_size}, k={self.k}, signed={self.signed}"

    def levels(self):
        return 1 + tree_levels(self.group_size + 1) + 1 + tree_levels(self.groups)

    def datapath(self, m, pipe, payload):
        last = self.levels()

        def after(level, values):
            return [pipe.stage(v) for v in values] if level in self.registered else values

        # Level 1: each tap contributes a_i, -a_i or 0 (no multiplier) as y_i = t_i * a_i - [t_i = -1]:
        # the bits of a_i, inverted where t_i = -1, below a sign bit that is 1 there (-a_i - 1 in two's
        # complement), zero where t_i = 0: one LUT per bit, no negation's carry chain. Each group adds
        # the count of its -1 taps back as one more leaf of its tree.
        neg, y = [], []
        for i in range(self.n):
            a, nz = Value.cast(payload.a[i]), payload.t_nz[i]
            minus = nz & payload.t_sign[i]
            top = a[-1] if self.signed else Const(0, 1)  # a as k + 1 bits, two's complement
            body = Cat(a, top) ^ minus.replicate(self.k + 1)
            y.append((body & nz.replicate(self.k + 1)).as_signed())
            neg.append(minus)
        taps = after(1, y + neg)
        signs = taps[self.n :]
        # Levels 2 ..: one add/subtract tree per group, all groups side by side.
        partial_sums, level = [], 2
        for g in range(self.groups):
            group = slice(g * self.group_size, (g + 1) * self.group_size)
            count, _ = pipe.reduce(signs[group], ())  # a balanced tree, not registered
            s_g, level = pipe.reduce([*taps[group], count], self.registered, first_level=2)
            partial_sums.append(s_g)
        # The scales travel beside the taps through the registers before the multiply.
        alpha = [payload.alpha[g] for g in range(self.groups)]
        for _ in (r for r in self.registered if r < level):
            alpha = [pipe.stage(alpha_g) for alpha_g in alpha]
        # The one multiply per group; then the tree over the groups, whose root is the registered output,
        # staged at the result's exact width.
        products = [alpha_g * s_g for alpha_g, s_g in zip(alpha, partial_sums)]
        if level == last:
            return pipe.stage(products[0], self._result_shape, name="result")
        products = after(level, products)
        total, _ = pipe.reduce(products, [r for r in self.registered if r != last], first_level=level + 1)
        return pipe.stage(total, self._result_shape, name="result")
