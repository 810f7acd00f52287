"""Binary or ternary weights against k-bit integer activations: bit-serial, or a direct add/subtract tree.

Both units compute the same function (:func:`lowbit.sw.golden.bitserial_dot`) on the same payload
(:func:`KBitDotInput`) and give the same exact signed result (:func:`kbit_dot_width`):

- :class:`BitSerialDotProduct` takes one vector per ``k`` cycles and reuses one popcount tree
  (:class:`lowbit.hw.units.ternary_dot.TernaryDotProduct`) for every bit-plane of the activations;
- :class:`AddTreeDotProduct` takes one vector per cycle and adds ``+a``, ``-a`` or 0 per tap in a
  pipelined tree of k-bit adders.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.hdl import signed as signed_shape
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from lowbit.hw.units.ternary_dot import TernaryDotProduct
from lowbit.hw.units.tree import tree_levels
from lowbit.hw.units.unit import PipelinedUnit, check_pipeline_depth, check_positive_int

__all__ = ["WEIGHT_KINDS", "KBitDotInput", "kbit_dot_width", "BitSerialDotProduct", "AddTreeDotProduct"]

#: The weight encodings both units accept.
WEIGHT_KINDS = ("ternary", "binary")


def _check_params(n, k, signed, weights):
    check_positive_int(n, "n")
    check_positive_int(k, "k", 2, 8)
    if not isinstance(signed, bool):
        raise TypeError(f"signed must be a bool, not {signed!r}")
    if weights not in WEIGHT_KINDS:
        raise ValueError(f"weights must be one of {', '.join(WEIGHT_KINDS)}, not {weights!r}")


def KBitDotInput(n, k, signed=False, weights="ternary"):
    """The payload: ``a``, ``n`` activations of ``k`` bits (``signed(k)`` or ``unsigned(k)``, element ``i``
    at bits ``i*k .. i*k+k-1``), and the weights, ``n`` bits per plane, element ``i`` at bit ``i``:

    - ``weights="ternary"``: ``w_nz`` (1 = non-zero) and ``w_sign`` (1 = negative), as
      :func:`lowbit.sw.kinds.encodings.encode_ternary` gives them; padding taps have ``w_nz = 0``;
    - ``weights="binary"``: ``w`` (1 = +1, 0 = -1) and ``valid`` (taps with ``valid = 0`` count 0).
    """
    _check_params(n, k, signed, weights)
    element = signed_shape(k) if signed else unsigned(k)
    planes = ("w_nz", "w_sign") if weights == "ternary" else ("w", "valid")
    return data.StructLayout({"a": data.ArrayLayout(element, n), **{name: n for name in planes}})


def kbit_dot_width(n, k, signed=False):
    """Width of the exact signed result: it lies in ``[-n * 2**(k-1), n * 2**(k-1)]`` for signed
    activations and in ``[-n * (2**k - 1), n * (2**k - 1)]`` for unsigned ones."""
    largest = n << (k - 1) if signed else n * ((1 << k) - 1)
    return largest.bit_length() + 1


def _shared_fields(weights):
    # The activations, and for binary weights the valid mask (padding is a property of the layer).
    return ("a",) if weights == "ternary" else ("a", "valid")


def _weight_planes(payload, weights):
    """``(w_nz, w_sign)`` of the weights: a binary weight is non-zero where valid, negative where 0."""
    if weights == "ternary":
        return payload.w_nz, payload.w_sign
    return payload.valid, ~payload.w


class BitSerialDotProduct(wiring.Component):
    """``sum_i a_i * w_i`` for k-bit activations ``a`` and binary or ternary weights ``w``, one bit-plane
    of ``a`` per cycle (:func:`lowbit.sw.golden.bitserial_dot`)::

        d_b = pc(p_b & w_nz & ~w_sign) - pc(p_b & w_nz & w_sign)      (p_b = bit b of every a_i)
        result = sum_b 2**b * d_b,  the plane b = k-1 weighing -2**(k-1) when signed

    The planes enter one popcount tree (a :class:`lowbit.hw.units.ternary_dot.TernaryDotProduct` with
    ``pipeline_depth`` stages; a plane is a ternary activation with ``a_nz = p_b`` and ``a_sign = 0``)
    most significant first, and a shift-accumulator takes ``acc = 2 * acc + d_b`` (``acc = -d_b`` or ``d_b``
    for the first plane), so no shift is variable. The accumulator is the output register.

    Ports: ``i``, a stream of :func:`KBitDotInput` (``n``, ``k``, ``signed``, ``weights``); ``o``, a stream of
    the signed result, :func:`kbit_dot_width` bits. The unit reads plane ``b`` of the payload it holds
    on each of ``k`` cycles and raises ``i.ready`` only with the last plane, so the source must offer
    the same payload from its first ``valid`` cycle until its transfer (the stream rule; if ``valid``
    pauses in between, the planes pause with it).

    Timing: ``cycles_per_vector = k`` (one payload transfer every ``k`` cycles at most); ``latency =
    pipeline_depth + 1`` cycles from the transfer of a payload (which is when its last plane enters the
    tree) to its result being valid on ``o``. Back-pressure on ``o`` stalls the accumulator, then the
    tree, then the input: nothing is lost or duplicated. The control state depends only on the
    handshakes, so units fed the same ``valid``/``ready`` stay in lockstep (:class:`lowbit.hw.units.unit.PEArray`,
    which shares the fields in ``SHARED_FIELDS``).

    ``pipeline_depth`` (default 2, or 1 for ``n = 1``) is the depth of the popcount tree: 1 ..
    ``TernaryDotProduct.max_pipeline_depth(n)``.
    """

    def __init__(self, n, k, signed=False, weights="ternary", pipeline_depth=None):
        _check_params(n, k, signed, weights)
        pipeline_depth = check_pipeline_depth(
            pipeline_depth, TernaryDotProduct.max_pipeline_depth(n), f"n={n}", PipelinedUnit.DEFAULT_PIPELINE_DEPTH
        )
        self.n, self.k, self.signed, self.weights = n, k, signed, weights
        self.pipeline_depth = pipeline_depth
        self.latency = pipeline_depth + 1
        self.cycles_per_vector = k
        self.SHARED_FIELDS = _shared_fields(weights)
        super().__init__(
            {
                "i": In(stream.Signature(KBitDotInput(n, k, signed, weights))),
                "o": Out(stream.Signature(signed_shape(kbit_dot_width(n, k, signed)))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        n, k = self.n, self.k
        m.submodules.popcount = tree = TernaryDotProduct(n, self.pipeline_depth)

        # Feeding side: `feed` counts the planes of the held payload already sent, MSB plane first.
        feed = Signal(range(k))
        last_feed = feed == k - 1
        plane = Signal(n)
        with m.Switch(feed):
            for step in range(k):
                with m.Case(step):
                    bit = k - 1 - step
                    m.d.comb += plane.eq(Cat(Value.cast(self.i.payload.a[i])[bit] for i in range(n)))
        w_nz, w_sign = _weight_planes(self.i.payload, self.weights)
        m.d.comb += [
            tree.i.payload.a_nz.eq(plane),
            tree.i.payload.a_sign.eq(0),
            tree.i.payload.w_nz.eq(w_nz),
            tree.i.payload.w_sign.eq(w_sign),
            tree.i.valid.eq(self.i.valid),
            self.i.ready.eq(tree.i.ready & last_feed),
        ]
        with m.If(tree.i.valid & tree.i.ready):
            m.d.sync += feed.eq(Mux(last_feed, 0, feed + 1))

        # Accumulating side: `take` counts the planes of the current vector already accumulated. The
        # accumulator is the output register; it takes a plane when it does not hold an unread result.
        take = Signal(range(k))
        last_take = take == k - 1
        acc = Signal(self.o.payload.shape())
        full = Signal()
        d = tree.o.payload
        m.d.comb += [
            tree.o.ready.eq(~full | self.o.ready),
            self.o.valid.eq(full),
            self.o.payload.eq(acc),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += full.eq(0)
        with m.If(tree.o.valid & tree.o.ready):
            with m.If(take == 0):
                m.d.sync += acc.eq(-d if self.signed else d)
            with m.Else():
                m.d.sync += acc.eq((acc << 1) + d)
            with m.If(last_take):
                m.d.sync += [take.eq(0), full.eq(1)]
            with m.Else():
                m.d.sync += take.eq(take + 1)
        return m


class AddTreeDotProduct(PipelinedUnit):
    """``sum_i t_i`` with ``t_i = w_nz_i ? (w_sign_i ? -a_i : a_i) : 0`` (a binary weight is ``w_nz = valid``,
    ``w_sign = ~w``): k-bit activations ``a`` against binary or ternary weights, one vector per cycle, with
    adders and no multiplier (:func:`lowbit.sw.golden.bitserial_dot`, the same function as
    :class:`BitSerialDotProduct`).

    Level 1 of the datapath selects each tap (negation and multiplexer); levels ``2 .. levels()`` are a
    balanced adder tree over the ``n`` taps, registered after the levels in ``self.registered``.

    Ports: ``i``, a stream of :func:`KBitDotInput` (``n``, ``k``, ``signed``, ``weights``); ``o``, a stream of
    the signed result, :func:`kbit_dot_width` bits. Latency ``pipeline_depth`` cycles (default 2, 1 ..
    ``ceil(log2(n)) + 1``), ``cycles_per_vector = 1``: one vector per cycle; all stages stall together
    under back-pressure on ``o`` (see :class:`lowbit.hw.units.unit.PipelinedUnit`). In a
    :class:`lowbit.hw.units.unit.PEArray` the fields in ``SHARED_FIELDS`` are shared.
    """

    cycles_per_vector = 1

    def __init__(self, n, k, signed=False, weights="ternary", pipeline_depth=None):
        _check_params(n, k, signed, weights)
        self.n, self.k, self.signed, self.weights = n, k, signed, weights
        self.SHARED_FIELDS = _shared_fields(weights)
        super().__init__(
            KBitDotInput(n, k, signed, weights), signed_shape(kbit_dot_width(n, k, signed)), pipeline_depth
        )

    def describe(self):
        return f"n={self.n}"

    def levels(self):
        return tree_levels(self.n) + 1

    def datapath(self, m, pipe, payload):
        w_nz, w_sign = _weight_planes(payload, self.weights)
        taps = []
        for i in range(self.n):
            a = Value.cast(payload.a[i])
            taps.append(Mux(w_nz[i], Mux(w_sign[i], -a, a), Const(0, signed_shape(self.k + 1))))
        last = self.levels()
        if 1 in self.registered and last > 1:
            taps = [pipe.stage(t, name=f"tap{i}") for i, t in enumerate(taps)]
        # The adder levels; the last level is registered below, at the exact width of the result.
        total, _ = pipe.reduce(taps, set(self.registered) - {last}, first_level=2)
        return pipe.stage(total, self._result_shape, name="result")
