"""A searching threshold unit: FINN's MultiThreshold for many thresholds by binary search, one comparator
per level instead of one per threshold.

A hidden layer with ``k``-bit outputs has ``2**k - 1`` thresholds per channel; comparing all of them at
once (:class:`~lowbit.hw.units.threshold.MultiThreshold`) costs a comparator per threshold and an adder
tree over the hits: for 8-bit outputs, 255 comparators per channel and a threshold record of 257
fields read at once. When the thresholds of a channel are in order (ascending for a channel with
``descending`` = 0, descending else: LOAD_THRESHOLDS' order, ``docs/protocol.md``), the hits are a prefix
of the list and their count is found bit by bit, most significant first, like FINN's
binary-search thresholding (finn-rtllib ``thresholding``)::

    p = 0
    for level k in 0 .. K-1:                 slot s = (2 p + 1) * 2**(K-1-k) - 1
        hit = s < n and (acc >= T_s, or acc <= T_s when descending)
        p = 2 p + hit
    out = p                                  the count of hits, 0 .. n

over ``K`` = :attr:`~lowbit.sw.protocol.TileGeometry.search_levels` levels and the layer's ``n`` thresholds
(slots from ``n`` on never hit). Level ``k`` compares with one of ``2**k`` thresholds, so each level
has its own memory per channel (``"level<k>"``, :func:`~lowbit.hw.tile.memories.shape_depth`) holding
those thresholds of every output fold at address ``(fold, p)``; LOAD_THRESHOLDS' threshold ``s`` of a
record goes to level ``K - 1 - t`` at index ``(s + 1) >> (t + 1)``, ``t`` the trailing zeros of ``s + 1``.

Ports:

- ``i`` (in, stream of :func:`SearchInput`): an output fold's address, its ``pe`` accumulators (plus
  biases), their directions, and the layer's thresholds per channel ``n``;
- ``o`` (out, stream of ``pe`` codes, ``unsigned(K)`` each);
- ``wr`` (in, :func:`SearchWrite`): one threshold written (LOAD_THRESHOLDS): the channel in the PE
  array, the fold, the slot ``s`` and the value.

Latency ``K + 1`` cycles (a level per cycle: the level's memory is read as the fold enters it, then
compared; then the output register), one fold per cycle, the whole pipeline stalls under back-pressure
(the memories' read enables with it, so their data stays with the stage).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .memories import fold_bits, make_memory, record_field_bits

__all__ = ["SearchInput", "SearchWrite", "ThresholdSearch"]


def SearchInput(geometry):
    """A fold for the search: ``fold``, ``acc`` (``pe`` accumulators), ``descending`` (``pe`` bits) and
    ``n``, the layer's thresholds per channel."""
    g = geometry
    return data.StructLayout(
        {
            "fold": unsigned(fold_bits(g)),
            "acc": data.ArrayLayout(signed(g.acc_width), g.pe),
            "descending": data.ArrayLayout(1, g.pe),
            "n": unsigned(g.search_levels),
        }
    )


def SearchWrite(geometry):
    """One threshold written: ``en``, ``channel`` (in the PE array), ``fold``, ``slot`` (its place in the
    channel's ordered list) and ``data``."""
    g = geometry
    return data.StructLayout(
        {
            "en": 1,
            "channel": unsigned(max(1, (g.pe - 1).bit_length())),
            "fold": unsigned(fold_bits(g)),
            "slot": unsigned(g.search_levels),
            "data": signed(record_field_bits(g)),
        }
    )


class ThresholdSearch(wiring.Component):
    """The thresholds of a tile of ``geometry`` (a tile that searches them:
    :attr:`~lowbit.sw.protocol.TileGeometry.search_levels`),
    searched level by level; see the module's documentation."""

    def __init__(self, geometry):
        if not geometry.search_levels:
            raise ValueError(f"a {geometry.max_thresholds}-threshold tile compares its thresholds at once")
        self.geometry = g = geometry
        self.levels = g.search_levels
        super().__init__(
            {
                "i": In(stream.Signature(SearchInput(g))),
                "o": Out(stream.Signature(data.ArrayLayout(unsigned(self.levels), g.pe))),
                "wr": In(SearchWrite(g)),
            }
        )

    def elaborate(self, platform):
        g, K = self.geometry, self.levels
        m = Module()
        # Stage k (0 .. K-1) holds a fold while level k's threshold is compared; stage K the result.
        valid = [Signal(name=f"valid{k}") for k in range(K + 1)]
        advance = ~valid[K] | self.o.ready
        m.d.comb += [self.i.ready.eq(advance), self.o.valid.eq(valid[K])]
        with m.If(advance):
            m.d.sync += valid[0].eq(self.i.valid)
            m.d.sync += [valid[k + 1].eq(valid[k]) for k in range(K)]

        # The writes: slot s + 1 = (2 j + 1) * 2**(K-1-k) for level k and index j.
        wr = self.wr
        place = Signal(K + 1)
        m.d.comb += place.eq(wr.slot + 1)

        fold, n = self.i.payload.fold, self.i.payload.n
        x = [self.i.payload.acc[c] for c in range(g.pe)]
        desc = [self.i.payload.descending[c] for c in range(g.pe)]
        prefix = [Const(0, 0)] * g.pe
        for k in range(K):
            # stage k's registers, loaded from the previous stage (or the input) when advancing
            fold_k, n_k = Signal.like(fold, name=f"fold{k}"), Signal.like(n, name=f"n{k}")
            with m.If(advance):
                m.d.sync += [fold_k.eq(fold), n_k.eq(n)]
            shift = K - 1 - k
            writes_here = (place & ((1 << (shift + 1)) - 1)) == (1 << shift)
            slot_end = Cat(Const(0, shift), Const(1, 1))  # s + 1 = (2 p + 1) * 2**shift, with p below
            next_prefix = []
            for c in range(g.pe):
                x_k = Signal(signed(g.acc_width), name=f"x{k}_{c}")
                desc_k, p_k = Signal(name=f"desc{k}_{c}"), Signal(k, name=f"p{k}_{c}")
                with m.If(advance):
                    m.d.sync += [x_k.eq(x[c]), desc_k.eq(desc[c]), p_k.eq(prefix[c])]
                m.submodules[f"level{k}_{c}"] = mem = make_memory(g, f"level{k}")
                rd, wp = mem.read_port(), mem.write_port()
                # read as the fold enters the stage, held while it stalls there
                m.d.comb += [rd.addr.eq(Cat(prefix[c], fold)), rd.en.eq(advance)]
                m.d.comb += [
                    wp.addr.eq(Cat((place >> (shift + 1))[:k], wr.fold)),
                    wp.data.eq(wr.data),
                    wp.en.eq(wr.en & (wr.channel == c) & writes_here),
                ]
                t = rd.data.as_signed()
                hit = (Cat(slot_end, p_k) <= n_k) & Mux(desc_k, t >= x_k, x_k >= t)
                x[c], desc[c] = x_k, desc_k
                next_prefix.append(Cat(hit, p_k))
            fold, n, prefix = fold_k, n_k, next_prefix
        for c in range(g.pe):
            code = Signal(K, name=f"code{c}")
            with m.If(advance):
                m.d.sync += code.eq(prefix[c])
            m.d.comb += self.o.payload[c].eq(code)
        return m
