"""The tile's engine: the MAC array, the accumulators and the threshold unit."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from lowbit.hw.units.binary_dot import XorPopcount
from lowbit.hw.units.fgq import FGQDotProduct
from lowbit.hw.units.nhot import NHotDotProduct
from lowbit.hw.units.ternary_dot import TernaryDotProduct
from lowbit.hw.units.threshold import MultiThreshold
from lowbit.hw.units.unit import PEArray
from lowbit.sw.protocol import WORD_BITS, Family, output_code_bits

from .config import ACT_BINARY, ACT_TERNARY, ACT_UINT, LayerLayout
from .memories import fold_bits, read_port_signature, record_field_bits
from .search import SearchWrite, ThresholdSearch
from .sequencer import BeatLayout

__all__ = ["FoldLayout", "Engine"]


def FoldLayout(geometry):
    """The results of one output fold: ``acc``, the ``pe`` accumulators plus their biases (a last
    layer's outputs), and ``codes``, their threshold counts (a hidden layer's outputs)."""
    g = geometry
    return data.StructLayout(
        {
            "acc": data.ArrayLayout(signed(g.acc_width), g.pe),
            "codes": data.ArrayLayout(output_code_bits(g.max_thresholds + 1), g.pe),
        }
    )


class Engine(wiring.Component):
    """The arithmetic of a tile of ``geometry``: a :class:`~lowbit.hw.units.unit.PEArray` of the family's
    unit (BINARY: :class:`~lowbit.hw.units.binary_dot.XorPopcount`; POPCOUNT:
    :class:`~lowbit.hw.units.ternary_dot.TernaryDotProduct`; NHOT:
    :class:`~lowbit.hw.units.nhot.NHotDotProduct`; FGQ: :class:`~lowbit.hw.units.fgq.FGQDotProduct` with the
    tile's ``group_size``), ``pe`` accumulators and a
    :class:`~lowbit.hw.units.threshold.MultiThreshold` per channel (or, on a tile with many thresholds
    per channel, :attr:`~lowbit.sw.protocol.TileGeometry.search_levels`, the
    :class:`~lowbit.hw.tile.search.ThresholdSearch` with its level memories).

    Per beat: ``acc = (first ? 0 : (double ? 2 * acc : acc)) + (neg ? -d : d)`` for the array's dot
    product ``d`` of each channel, wrapping modulo ``2**acc_width``; on BINARY, ``d`` is ``-2`` times the
    channel's count of disagreements for binary input and ``-1`` times it for a uint plane (the bias
    holds the rest of the dot product, ``docs/protocol.md``). After an output fold's last beat,
    the fold's bias, direction and thresholds are read (``t_rd``) and the fold leaves on ``o``: the
    accumulators plus the bias in ``acc``, and (hidden layers only) their codes in ``codes``.

    Ports:

    - ``i`` (in, stream of :data:`~lowbit.hw.tile.sequencer.BeatLayout`): the beats, with ``weight_row``
      (``pe`` channels of the unit's weight fields) and ``input_row`` beside;
    - ``t_rd`` (``pe`` read ports): the threshold memories (:mod:`~lowbit.hw.tile.memories`), a record
      (bias, direction, thresholds) per output fold;
    - ``s_wr`` (in, a searching tile only): the thresholds LOAD_THRESHOLDS writes into the search's
      level memories (:func:`~lowbit.hw.tile.search.SearchWrite`);
    - ``layer`` (in, :class:`~lowbit.hw.tile.config.LayerLayout`): ``act_mode``, ``weight_plane_mode``,
      ``last_layer``, ``thresholds``;
    - ``o`` (out, stream of :func:`FoldLayout`): a fold's results;
    - ``mac_beats`` (out, 32 bits): beats taken so far.

    Throughput: a beat per cycle. Latency: the array's, then two cycles (accumulate, read the
    thresholds) to a last layer's fold on ``o``, plus the threshold unit's for a hidden layer's.
    """

    def __init__(self, geometry, *, mac_pipeline_depth=None):
        self.geometry = g = geometry
        self.mac_pipeline_depth = mac_pipeline_depth
        self.out_bits_max = output_code_bits(g.max_thresholds + 1)
        ports = {
            "i": In(stream.Signature(BeatLayout)),
            "weight_row": In(g.weight_row_words * WORD_BITS),
            "input_row": In(g.max_input_row_words * WORD_BITS),
            "t_rd": In(read_port_signature(g, "thresholds")).array(g.pe),
            "layer": In(LayerLayout(g)),
            "o": Out(stream.Signature(FoldLayout(g))),
            "mac_beats": Out(32),
        }
        if g.search_levels:
            ports["s_wr"] = In(SearchWrite(g))
        super().__init__(ports)

    def _make_array(self):
        g = self.geometry
        if g.family == Family.BINARY:
            # One more unit than channels, its weights all 0: it counts the activation row's +1 bits,
            # which k-bit int weights against binary input need (see elaborate).
            return PEArray(lambda: XorPopcount(g.simd, self.mac_pipeline_depth), g.pe + 1)
        if g.family == Family.POPCOUNT:
            unit = lambda: TernaryDotProduct(g.simd, self.mac_pipeline_depth)
        elif g.family == Family.FGQ:
            unit = lambda: FGQDotProduct(g.simd, g.group_size, g.max_input_bits, False, self.mac_pipeline_depth)
        else:
            unit = lambda: NHotDotProduct(g.simd, g.n_terms, g.max_input_bits, False, 8, self.mac_pipeline_depth)
        return PEArray(unit, g.pe)

    def elaborate(self, platform):
        g = self.geometry
        m = Module()
        layer, beat = self.layer, self.i.payload
        acc_width = g.acc_width
        m.submodules.array = array = self._make_array()

        # The beat -> the MAC array: activations decoded from the input row, weights are the row itself.
        m.d.comb += [array.i.valid.eq(self.i.valid), self.i.ready.eq(array.i.ready)]
        shared, channels = array.i.payload.shared, array.i.payload.channels
        row = self.input_row
        if g.maps:  # a padded tap's row: the pad code's planes on the live lanes (config.pad_planes)
            live = Signal(g.simd)
            m.d.comb += [live[t].eq(beat.live > t) for t in range(g.simd)]
            pad_row = Cat(Mux(layer.pad_planes[0], live, 0), Mux(layer.pad_planes[1], live, 0))
            row = Mux(beat.pad, pad_row, self.input_row)
        if g.plane_inputs:
            plane = Signal(g.simd)
            with m.Switch(beat.plane):
                for j in range(g.max_input_bits):
                    with m.Case(j):
                        m.d.comb += plane.eq(row[j * g.simd : (j + 1) * g.simd])
        if g.family == Family.BINARY:  # uint: plane p per pass; binary: the code (its one plane) every pass
            m.d.comb += shared.a.eq(Mux(layer.act_mode == ACT_UINT, plane, row[: g.simd]))
        elif g.family == Family.POPCOUNT:
            with m.Switch(layer.act_mode):
                with m.Case(ACT_BINARY):  # every tap non-zero, negative where the code is 0
                    m.d.comb += [shared.a_nz.eq(Const(-1, g.simd)), shared.a_sign.eq(~row[: g.simd])]
                with m.Case(ACT_TERNARY):  # ternary / FATNN: the non-zero plane, then the sign plane
                    m.d.comb += [shared.a_nz.eq(row[: g.simd]), shared.a_sign.eq(row[g.simd : 2 * g.simd])]
                with m.Default():  # uint: plane p as a 0/1 activation
                    m.d.comb += [shared.a_nz.eq(plane), shared.a_sign.eq(0)]
        else:  # NHOT and FGQ: the row's k-bit codes
            codes = shared.x if g.family == Family.NHOT else shared.a
            m.d.comb += codes.as_value().eq(row[: len(codes.as_value())])
        if g.family == Family.BINARY:
            m.d.comb += [channels[c].w.eq(self.weight_row[c * g.simd : (c + 1) * g.simd]) for c in range(g.pe)]
            m.d.comb += channels[g.pe].w.eq(0)
        else:
            m.d.comb += channels.as_value().eq(self.weight_row[: len(channels.as_value())])
        if g.family == Family.POPCOUNT:
            with m.If(layer.weight_plane_mode):  # int weight planes: the sign plane carries no meaning
                m.d.comb += [channels[c].w_sign.eq(0) for c in range(g.pe)]
        beats = Signal(32)
        with m.If(array.i.valid & array.i.ready):
            m.d.sync += beats.eq(beats + 1)
        m.d.comb += self.mac_beats.eq(beats)

        # The beats' flags travel beside the array in a FIFO (the array is in order and lossless); the
        # output fold as wide as the tile's folds (the threshold memories' address).
        of_bits = fold_bits(g)
        m.submodules.sideband = side = SyncFIFO(width=4 + of_bits, depth=array.latency + 2)
        m.d.comb += [
            side.w_data.eq(Cat(beat.first, beat.last, beat.double, beat.neg, beat.o_fold[:of_bits])),
            side.w_en.eq(array.i.valid & array.i.ready),
        ]
        s_first, s_last, s_double, s_neg, s_of = (
            side.r_data[0],
            side.r_data[1],
            side.r_data[2],
            side.r_data[3],
            side.r_data[4:],
        )

        # Accumulators, and stage R: the finished accumulators of one output fold, with the fold's
        # bias / direction / thresholds read from the threshold memories beside them.
        acc = [Signal(signed(acc_width), name=f"acc{c}") for c in range(g.pe)]
        res = [Signal(signed(acc_width), name=f"res{c}") for c in range(g.pe)]
        valid_r, ready_r = Signal(), Signal()
        take_r = Signal()
        take = array.o.valid & array.o.ready
        m.d.comb += [array.o.ready.eq(~s_last | ~valid_r | ready_r), side.r_en.eq(take), take_r.eq(take & s_last)]
        for c in range(g.pe):
            d = array.o.payload[c]
            if g.family == Family.BINARY:
                # The array counts disagreements d (and s, the +1 activations): a binary pass adds -2 d, a
                # uint plane -d, an int weight plane s - d; the host's bias adds the rest (docs/protocol.md).
                s = array.o.payload[g.pe]
                d = Mux(
                    layer.weight_plane_mode,
                    s - d,
                    -Mux(layer.act_mode == ACT_BINARY, d << 1, d),
                )
            term = Mux(s_neg, -d, d)
            base = Mux(s_first, 0, Mux(s_double, acc[c] << 1, acc[c]))
            new = (base + term)[:acc_width].as_signed()
            with m.If(take):
                m.d.sync += acc[c].eq(new)
            with m.If(take_r):
                m.d.sync += res[c].eq(new)
            m.d.comb += [self.t_rd[c].addr.eq(s_of), self.t_rd[c].en.eq(take_r)]
        with m.If(ready_r):
            m.d.sync += valid_r.eq(0)
        with m.If(take_r):
            m.d.sync += valid_r.eq(1)

        # Stage R -> thresholds (hidden layer) or straight out (last layer).
        total = self.o.payload.acc
        for c in range(g.pe):
            m.d.comb += total[c].eq(res[c] + self.t_rd[c].data[:acc_width].as_signed())
        field = record_field_bits(g)  # the record's fields: bias, direction, thresholds
        if g.search_levels:
            m.submodules.threshold = thr = ThresholdSearch(g)
            fold_r = Signal.like(thr.i.payload.fold)
            with m.If(take_r):
                m.d.sync += fold_r.eq(s_of)
            m.d.comb += [thr.i.payload.fold.eq(fold_r), thr.i.payload.n.eq(layer.thresholds), thr.wr.eq(self.s_wr)]
            for c in range(g.pe):
                m.d.comb += [
                    thr.i.payload.acc[c].eq(total[c]),
                    thr.i.payload.descending[c].eq(self.t_rd[c].data[field]),
                ]
        else:
            thr = self._compare_all(m, total)
        last_layer = layer.last_layer
        m.d.comb += [
            self.o.payload.codes.eq(thr.o.payload.as_value()),
            self.o.valid.eq(Mux(last_layer, valid_r, thr.o.valid)),
            thr.i.valid.eq(valid_r & ~last_layer),
            thr.o.ready.eq(self.o.ready & ~last_layer),
            ready_r.eq(Mux(last_layer, self.o.ready, thr.i.ready)),
        ]
        return m

    def _compare_all(self, m, total):
        """The threshold unit that compares all of a fold's thresholds at once, fed from the records."""
        g, layer = self.geometry, self.layer
        acc_width, count = g.acc_width, 2**self.out_bits_max - 1
        m.submodules.threshold = thr = PEArray(lambda: MultiThreshold(acc_width + 1, self.out_bits_max), g.pe)
        never_up, never_down = (1 << acc_width) - 1, -(1 << acc_width)
        field = record_field_bits(g)
        for c in range(g.pe):
            record = self.t_rd[c].data
            ch = thr.i.payload.channels[c]
            descending = record[field]
            m.d.comb += [ch.acc.eq(total[c]), ch.descending.eq(descending)]
            for t in range(count):
                if t < g.max_thresholds:
                    value = record[(2 + t) * field : (3 + t) * field].as_signed()
                    value = Mux(t < layer.thresholds, value, Mux(descending, never_down, never_up))
                else:
                    value = Mux(descending, never_down, never_up)
                m.d.comb += ch.thresholds[t].eq(value)
        return thr
