"""The n-hot shift-add dot product: activations against weights that are sums of signed powers of two."""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.hdl import signed as signed_shape  # `signed` is also the parameter name
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from lowbit.hw.units.tree import tree_levels
from lowbit.hw.units.unit import PipelinedUnit, check_positive_int
from lowbit.sw.protocol import MAX_N_TERMS

__all__ = ["exponent_bits", "NHotDotInput", "nhot_dot_width", "NHotDotProduct", "NHotExponentSerial"]


def _check_params(n, n_terms, k, signed_x, weight_bits):
    check_positive_int(n, "n")
    check_positive_int(n_terms, "n_terms", 1, MAX_N_TERMS)
    check_positive_int(k, "k", 2, 8)
    check_positive_int(weight_bits, "weight_bits", 2, 8)
    if not isinstance(signed_x, bool):
        raise TypeError(f"signed must be True or False, not {signed_x!r}")


def exponent_bits(weight_bits):
    """Bits of a term's exponent: exponents lie in ``0 .. weight_bits - 1``
    (:func:`lowbit.sw.kinds.encodings.nhot_terms`), 3 bits for 8-bit weights."""
    return max(1, (weight_bits - 1).bit_length())


def NHotDotInput(n, n_terms, k=8, signed=True, weight_bits=8):
    """``x``: ``n`` k-bit activations (two's complement when ``signed``), element ``i`` at index ``i``;
    ``terms``: per activation ``n_terms`` terms ``{"present": 1, "sign": 1, "exponent": E}``
    (:func:`exponent_bits`), as :func:`lowbit.sw.kinds.encodings.nhot_terms` gives them (``sign`` = 1 for minus).
    """
    _check_params(n, n_terms, k, signed, weight_bits)
    term = data.StructLayout({"present": 1, "sign": 1, "exponent": exponent_bits(weight_bits)})
    x_shape = signed_shape(k) if signed else unsigned(k)
    return data.StructLayout(
        {"x": data.ArrayLayout(x_shape, n), "terms": data.ArrayLayout(data.ArrayLayout(term, n_terms), n)}
    )


def nhot_dot_width(n, n_terms, k=8, signed=True, weight_bits=8):
    """Signed width of the result: the least that holds every sum the payload can encode.

    Each of the ``n * n_terms`` terms is at most ``|x| << (weight_bits - 1)`` in magnitude, with either
    sign, so the result lies in ``[-M, M]``, ``M = n * n_terms * max|x| * 2**(weight_bits - 1)`` with
    ``max|x|`` = ``2**(k-1)`` (signed) or ``2**k - 1`` (unsigned). Both bounds are reached.
    """
    _check_params(n, n_terms, k, signed, weight_bits)
    max_x = 1 << (k - 1) if signed else (1 << k) - 1
    return (n * n_terms * max_x << (weight_bits - 1)).bit_length() + 1


class NHotDotProduct(PipelinedUnit):
    """n-hot dot product: ``sum_i sum_j present_ij * (-1)**sign_ij * (x_i << e_ij)``
    (:func:`lowbit.sw.golden.nhot_dot`), by shifts and additions only.

    Parameters: ``n`` activations (at least 1), ``n_terms`` terms per weight (1 .. 4:
    :data:`~lowbit.sw.protocol.MAX_N_TERMS`, what an 8-bit integer weight needs), ``k``-bit
    activations (2 .. 8, two's complement when ``signed``, else unsigned), weights of ``weight_bits``
    bits (2 .. 8: exponents ``0 .. weight_bits - 1``), ``pipeline_depth`` 1 .. :meth:`levels`
    (default 2).

    Ports: ``i`` carries :func:`NHotDotInput`, ``o`` the signed result, :func:`nhot_dot_width` bits
    (exact: no sum the payload can encode overflows it). ``x`` is shared in a
    :class:`lowbit.hw.units.unit.PEArray`. An exponent above ``weight_bits - 1`` (encodable only when
    ``weight_bits`` is not a power of two; :func:`lowbit.sw.kinds.encodings.nhot_terms` never makes one)
    contributes 0.

    Datapath: each lane negates ``x`` once (one ``k + 1``-bit negation shared by its terms, since
    ``-(x << e) = (-x) << e``); a term selects ``x`` or ``-x`` by its sign, shifts it by its exponent and
    is zeroed when absent: one leaf of ``k + weight_bits`` signed bits, logic level 1. A balanced adder
    tree adds the ``n_terms`` leaves of each lane into the lane's product ``x_i * q_i`` and a second one
    the ``n`` products (levels 2 ..): ``n * n_terms - 1`` adders, as one tree over all leaves would have,
    and at most one level more (for 3 terms). The products exist as signals, which lets the formal proof
    (:mod:`lowbit.sim.formal`) match them with the specification's ``x_i * q_i``. No multiplier anywhere.

    The shift is Amaranth's variable shift ``v << e``, which yosys builds as a logarithmic shifter:
    ``E`` ranks of 2:1 multiplexers, one per exponent bit, each rank a single LUT per bit. A
    multiplexer over the ``weight_bits`` constant shifts (``Mux(e == s, v << s, ...)`` or an ``Array``
    indexed by ``e``) is the same function but is decoded per shift: on iCE40, for n = 8, two terms,
    8-bit x and weights, the whole unit took 1476 LUT4 with the shifter against 2053 (chain of Mux)
    and 2030 (Array), the adder carries and registers being equal (and the mux form hit a yosys ABC9
    assertion on ECP5).

    Latency ``pipeline_depth`` cycles, one vector per cycle, all stages stall together under
    back-pressure on ``o`` (:class:`lowbit.hw.units.unit.PipelinedUnit`).
    """

    SHARED_FIELDS = ("x",)

    def __init__(self, n, n_terms, k=8, signed=True, weight_bits=8, pipeline_depth=None):
        _check_params(n, n_terms, k, signed, weight_bits)
        self.n, self.n_terms, self.k, self.signed, self.weight_bits = n, n_terms, k, signed, weight_bits
        super().__init__(
            NHotDotInput(n, n_terms, k, signed, weight_bits),
            signed_shape(nhot_dot_width(n, n_terms, k, signed, weight_bits)),
            pipeline_depth,
        )

    def describe(self):
        return f"n={self.n}, n_terms={self.n_terms}, k={self.k}, signed={self.signed}, weight_bits={self.weight_bits}"

    def levels(self):
        """One level for the leaves (negate, select, shift), then the adder tree: the terms of each
        lane, then the lanes."""
        return 1 + tree_levels(self.n_terms) + tree_levels(self.n)

    def leaf_shape(self):
        """Shape of one term: ``±x << e`` for legal ``e`` fits ``k + weight_bits`` signed bits."""
        return signed_shape(self.k + self.weight_bits)

    def term(self, payload, i, j):
        """Term ``j`` of lane ``i``: ``present * (-1)**sign * (x << exponent)``, a signed value of
        :meth:`leaf_shape`."""
        x, term = payload.x[i], payload.terms[i][j]
        # -x is signed(k + 1), so -(-2**(k-1)) and -(2**k - 1) fit; the terms of a lane negate the same
        # x, and synthesis merges their identical negations into one (yosys opt_merge).
        shifted = (Mux(term.sign, -x, x) << term.exponent)[: self.leaf_shape().width].as_signed()
        keep = term.present
        if self.weight_bits < 1 << len(term.exponent):  # some exponents are illegal: they give 0
            keep &= term.exponent < self.weight_bits
        return Mux(keep, shifted, 0)

    def datapath(self, m, pipe, payload):
        lanes = []
        for i in range(self.n):
            leaves = [self.term(payload, i, j) for j in range(self.n_terms)]
            if 1 in self.registered:
                leaves = [pipe.stage(leaf, self.leaf_shape(), name=f"leaf{i}_{j}") for j, leaf in enumerate(leaves)]
            lane, level = pipe.reduce(leaves, self.registered, first_level=2)
            lanes.append(lane)
        total, _ = pipe.reduce(lanes, self.registered, first_level=level)
        return total


def _ExponentSliceInput(n, n_terms, k, signed, weight_bits):
    return data.StructLayout(
        {
            **{name: field.shape for name, field in NHotDotInput(n, n_terms, k, signed, weight_bits)},
            "e": exponent_bits(weight_bits),
        }
    )


class _ExponentSlice(PipelinedUnit):
    """``sum_i sum_j [present_ij and exponent_ij == e] * (-1)**sign_ij * x_i``: the terms of one exponent
    ``e`` (a field of the payload), without shifts."""

    SHARED_FIELDS = ("x", "e")

    def __init__(self, n, n_terms, k, signed, weight_bits, pipeline_depth):
        self.n, self.n_terms, self.k, self.signed, self.weight_bits = n, n_terms, k, signed, weight_bits
        max_x = 1 << (k - 1) if signed else (1 << k) - 1
        super().__init__(
            _ExponentSliceInput(n, n_terms, k, signed, weight_bits),
            signed_shape((n * n_terms * max_x).bit_length() + 1),
            pipeline_depth,
        )

    def levels(self):
        return 1 + tree_levels(self.n * self.n_terms)

    def datapath(self, m, pipe, payload):
        leaves = []
        for i in range(self.n):
            x = payload.x[i]
            for j in range(self.n_terms):
                term = payload.terms[i][j]
                leaf = Mux(term.present & (term.exponent == payload.e), Mux(term.sign, -x, x), 0)
                leaves.append(pipe.stage(leaf, signed_shape(self.k + 1)) if 1 in self.registered else leaf)
        total, _ = pipe.reduce(leaves, self.registered, first_level=2)
        return total


class NHotExponentSerial(wiring.Component):
    """The n-hot dot product (:func:`lowbit.sw.golden.nhot_dot`, the same function and payload as
    :class:`NHotDotProduct`) one exponent per cycle, the largest first: on cycle ``c`` the terms whose
    exponent is ``e = weight_bits - 1 - c`` add ``±x`` (no shifter: an equality with the shared ``e`` and a
    sign select per term) and ``acc = 2 * acc + slice``, so ``weight_bits`` cycles per vector.

    The alternative design to the shift-add unit: it trades each term's shifter for ``weight_bits``
    cycles, as :class:`lowbit.hw.units.kbit_dot.BitSerialDotProduct` trades multipliers for ``k``.
    Ports, timing and stream rules as ``BitSerialDotProduct`` (``cycles_per_vector = weight_bits``,
    ``latency = pipeline_depth + 1``); ``pipeline_depth`` is the slice's, 1 .. ``1 + ceil(log2(n *
    n_terms))``.
    """

    def __init__(self, n, n_terms, k=8, signed=True, weight_bits=8, pipeline_depth=None):
        _check_params(n, n_terms, k, signed, weight_bits)
        self.n, self.n_terms, self.k, self.signed, self.weight_bits = n, n_terms, k, signed, weight_bits
        self.slice = _ExponentSlice(n, n_terms, k, signed, weight_bits, pipeline_depth)
        self.pipeline_depth = self.slice.pipeline_depth
        self.latency = self.pipeline_depth + 1
        self.cycles_per_vector = weight_bits
        self.SHARED_FIELDS = ("x",)
        super().__init__(
            {
                "i": In(stream.Signature(NHotDotInput(n, n_terms, k, signed, weight_bits))),
                "o": Out(stream.Signature(signed_shape(nhot_dot_width(n, n_terms, k, signed, weight_bits)))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        steps = self.weight_bits
        m.submodules.slice = part = self.slice
        feed = Signal(range(steps))
        last_feed = feed == steps - 1
        m.d.comb += [
            part.i.payload.x.eq(self.i.payload.x),
            part.i.payload.terms.eq(self.i.payload.terms),
            part.i.payload.e.eq(steps - 1 - feed),
            part.i.valid.eq(self.i.valid),
            self.i.ready.eq(part.i.ready & last_feed),
        ]
        with m.If(part.i.valid & part.i.ready):
            m.d.sync += feed.eq(Mux(last_feed, 0, feed + 1))
        take = Signal(range(steps))
        acc, full = Signal(self.o.payload.shape()), Signal()
        m.d.comb += [part.o.ready.eq(~full | self.o.ready), self.o.valid.eq(full), self.o.payload.eq(acc)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += full.eq(0)
        with m.If(part.o.valid & part.o.ready):
            m.d.sync += acc.eq(Mux(take == 0, part.o.payload, (acc << 1) + part.o.payload))
            m.d.sync += take.eq(Mux(take == steps - 1, 0, take + 1))
            with m.If(take == steps - 1):
                m.d.sync += full.eq(1)
        return m
