"""The accelerator tile: a command decoder, weight / threshold / input memories, a PE x SIMD MAC array,
accumulators, the threshold unit and an output packer, behind one 32-bit command stream.

The protocol is :mod:`lowbit.sw.protocol` (``docs/protocol.md``). The host configures a layer, loads
its weights and thresholds once, and streams a batch of input vectors; the tile answers every command
with exactly one response. A malformed command is drained and answered with ERROR; the tile is then
ready for the next command.

Data path of one input vector (held in one of two input banks, so that the next vector loads while
this one computes)::

    for o_fold in ceil(out / PE):          # PE output channels at a time
        for p in planes:                   # bit-planes of a k-bit side, most significant first
            for i_fold in ceil(in / SIMD): # one MAC-array cycle each
                acc = (first ? 0 : (i_fold == 0 ? 2 * acc : acc)) + (negative plane ? -d : d)
        result = acc + bias  ->  thresholds (hidden layer) or the raw accumulator (last layer)

so a layer takes ``ceil(out/PE) * ceil(in/SIMD) * planes`` array cycles per vector
(:meth:`lowbit.sw.protocol.TileGeometry.cycles_per_vector`). The accumulator wraps modulo
``2**acc_width``; the host checks that every result fits (then the wrapped partial sums are exact).

Families (:class:`lowbit.sw.protocol.Family`): POPCOUNT is a :class:`~lowbit.hw.units.unit.PEArray` of
:class:`~lowbit.hw.units.ternary_dot.TernaryDotProduct`, fed binary / ternary / FATNN activations as ternary
planes, uint activations bit-serially (one plane per pass) and, for k-bit integer weights against binary
activations, the weight planes bit-serially; FATNN's ``sum(w)`` correction is the per-channel bias.
NHOT is a PEArray of :class:`~lowbit.hw.units.nhot.NHotDotProduct` against uint activations.
"""

from types import SimpleNamespace

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from lowbit.hw.units.nhot import NHotDotProduct, exponent_bits
from lowbit.hw.units.ternary_dot import TernaryDotProduct
from lowbit.hw.units.threshold import MultiThreshold
from lowbit.hw.units.unit import PEArray
from lowbit.sw.protocol import (
    MAX_LENGTH,
    WORD_BITS,
    ErrorCode,
    Family,
    InputKind,
    Opcode,
    Response,
    TileGeometry,
    WeightKind,
    configure_error,
    header,
    output_code_bits,
)

__all__ = ["Tile", "CHECK_LATENCY"]

#: Cycles between a CONFIGURE's last word and its check: the configuration arithmetic (folds, word
#: counts, weight rows and the error code) is a pipeline of four register stages.
CHECK_LATENCY = 4


def _ceil_shift(value, log2):
    """``ceil(value / 2**log2)`` for an unsigned value."""
    return (value + (1 << log2) - 1) >> log2


class Tile(wiring.Component):
    """The accelerator tile for one :class:`~lowbit.sw.protocol.TileGeometry`.

    Ports: ``i``, a stream of 32-bit command words from the host; ``o``, a stream of 32-bit response
    words. ``mac_beats`` counts the MAC-array cycles that did work (for utilization figures).
    ``pe`` and ``simd`` must be powers of two.
    """

    def __init__(self, geometry, *, mac_pipeline_depth=None):
        if not isinstance(geometry, TileGeometry):
            raise TypeError(f"geometry must be a TileGeometry, not {geometry!r}")
        g = self.geometry = geometry
        if g.family == Family.NHOT and g.exponent_bits != exponent_bits(8):
            raise ValueError(
                f"an n-hot tile takes 8-bit weights: exponent_bits must be {exponent_bits(8)}, not {g.exponent_bits}"
            )
        self.mac_pipeline_depth = mac_pipeline_depth
        self.out_bits_max = output_code_bits(g.max_thresholds + 1)
        super().__init__(
            {
                "i": In(stream.Signature(WORD_BITS)),
                "o": Out(stream.Signature(WORD_BITS)),
                "mac_beats": Out(32),
            }
        )

    # --- the MAC array of the family ------------------------------------------------------------------
    def _make_array(self):
        g = self.geometry
        if g.family == Family.POPCOUNT:
            unit = lambda: TernaryDotProduct(g.simd, "ternary", self.mac_pipeline_depth)
        else:
            unit = lambda: NHotDotProduct(g.simd, g.n_terms, g.max_input_bits, False, 8, self.mac_pipeline_depth)
        return PEArray(unit, g.pe)

    def elaborate(self, platform):
        g = self.geometry
        m = Module()
        pe_log2, simd_log2 = exact_log2(g.pe), exact_log2(g.simd)

        # --- memories --------------------------------------------------------------------------------
        m.submodules.weights = wmem = Memory(
            shape=unsigned(g.weight_row_words * WORD_BITS), depth=g.max_weight_rows, init=[]
        )
        w_wr, w_rd = wmem.write_port(granularity=WORD_BITS), wmem.read_port()
        # One address for both ports: LOAD_WEIGHTS writes and RUN reads never overlap (the decoder
        # leaves RUN only when the last output has left), so the memory is single-ported and maps
        # to the iCE40's SPRAMs as well as to any block RAM. The engine and the decoder drive views.
        w_rd_view = SimpleNamespace(addr=Signal.like(w_rd.addr), en=Signal(), data=w_rd.data)
        w_wr_view = SimpleNamespace(addr=Signal.like(w_wr.addr), en=w_wr.en, data=w_wr.data)
        writing = w_wr.en.any()
        m.d.comb += [
            w_rd.addr.eq(Mux(writing, w_wr_view.addr, w_rd_view.addr)),
            w_wr.addr.eq(w_rd.addr),
            w_rd.en.eq(w_rd_view.en & ~writing),
        ]
        m.submodules.inputs = imem = Memory(
            shape=unsigned(g.max_input_row_words * WORD_BITS), depth=2 * g.max_in_folds, init=[]
        )
        i_wr, i_rd = imem.write_port(granularity=WORD_BITS), imem.read_port()
        record_words_max = 2 + g.max_thresholds
        t_mems = []
        for c in range(g.pe):
            mem = Memory(shape=unsigned(record_words_max * WORD_BITS), depth=g.max_out_folds, init=[])
            m.submodules[f"thresholds{c}"] = mem
            t_mems.append((mem.write_port(granularity=WORD_BITS), mem.read_port()))

        # --- layer configuration: the raw words, and what follows from them ------------------------
        cfg = [Signal(WORD_BITS, name=f"cfg{k}") for k in range(3)]
        in_f, out_f = cfg[0][:16], cfg[0][16:]
        wk, wb, nt, ik, ib = cfg[1][0:4], cfg[1][4:8], cfg[1][8:12], cfg[1][12:16], cfg[1][16:20]
        levels = cfg[2][:9]
        popcount = g.family == Family.POPCOUNT

        # What follows from the configuration words: a pipeline of registers refreshed every cycle, so
        # that no path runs from cfg through a product into a decision. cfg holds still while the
        # decoder's CHECK state waits CHECK_LATENCY cycles for the pipeline's last stage.
        def stage(value, name):
            register = Signal(Value.cast(value).shape(), name=f"check_{name}")
            m.d.sync += register.eq(value)
            return register

        # stage 1: folds, planes, words per row, from the words themselves
        n_ifolds = stage(_ceil_shift(in_f, simd_log2), "ifolds")
        n_ofolds = stage(_ceil_shift(out_f, pe_log2), "ofolds")
        int_pop = Const(popcount) & (wk == WeightKind.INT.code)
        wplanes = Mux(int_pop, wb, 1)
        is_int_pop, n_wplanes = stage(int_pop, "int_pop"), stage(wplanes, "wplanes")
        n_planes = stage(
            Mux(Const(popcount) & (ik == InputKind.UINT.code), ib, wplanes) if popcount else Const(1, 4), "planes"
        )
        n_thresholds = stage(Mux(levels == 0, 0, levels - 1), "thresholds")
        out_k = Const(1, 4)
        for k in range(2, self.out_bits_max + 1):
            out_k = Mux(levels > (1 << (k - 1)), k, out_k)
        n_out_k = stage(out_k, "out_k")
        if popcount:
            n_in_planes = Mux(ik == InputKind.BINARY.code, 1, Mux(ik == InputKind.UINT.code, ib, 2))
            n_in_row_words = stage((n_in_planes * g.simd + WORD_BITS - 1) >> exact_log2(WORD_BITS), "in_row_words")
        else:
            n_in_row_words = Const(g.max_input_row_words, 8)
        # output bits per fold: PE accumulator words (last layer) or PE codes of out_k bits
        n_fold_bits = stage(Mux(levels == 0, g.pe * WORD_BITS, out_k * g.pe), "fold_bits")
        # stage 2: the word counts of a vector and of the thresholds; rows per input fold
        n_input_words = stage(n_ifolds * n_in_row_words, "input_words")
        n_output_words = stage((n_ofolds * n_fold_bits + WORD_BITS - 1) >> exact_log2(WORD_BITS), "output_words")
        n_threshold_words = stage(n_ofolds * g.pe * (n_thresholds + 2), "threshold_words")
        n_rows_per_ifold = stage(n_ofolds * n_wplanes, "rows_per_ifold")
        # stage 3: weight rows; stage 4: weight words and the error code
        n_weight_rows = stage(n_rows_per_ifold * n_ifolds, "weight_rows")
        n_weight_words = stage(n_weight_rows * g.weight_row_words, "weight_words")
        # the ErrorCode of the configuration in cfg (0: none): the protocol's own rule, on these values
        fields = SimpleNamespace(
            in_features=in_f,
            out_features=out_f,
            weight_kind=wk,
            weight_bits=wb,
            n_terms=nt,
            input_kind=ik,
            input_bits=ib,
            output_levels=levels,
        )
        check = Signal(8)  # an error code is 8 bits wide in the ERROR response
        m.d.comb += check.eq(configure_error(fields, g, n_weight_rows, Mux))
        error = stage(check, "error")

        # ... and the registers that hold them once a configuration is accepted (`derive`).
        derived = {
            "ifolds": (17, n_ifolds),
            "ofolds": (17, n_ofolds),
            "planes": (4, n_planes),
            "weight_plane_mode": (1, is_int_pop),
            "last_layer": (1, levels == 0),
            # 0 binary, 1 ternary planes (ternary, FATNN), 2 uint planes
            "act_mode": (2, Mux(ik == InputKind.BINARY.code, 0, Mux(ik == InputKind.UINT.code, 2, 1))),
            "thresholds": (9, n_thresholds),
            "out_k": (4, n_out_k),
            "weight_words": (48, n_weight_words),
            "threshold_words": (48, n_threshold_words),
            "in_row_words": (8, n_in_row_words),
            "record_words": (9, n_thresholds + 2),
            "input_words": (40, n_input_words),
            "fold_bits": (range(g.pe * WORD_BITS + 1), n_fold_bits),
            "output_words": (40, n_output_words),
        }
        layer = SimpleNamespace(**{name: Signal(shape, name=name) for name, (shape, _) in derived.items()})

        def derive():
            return [getattr(layer, name).eq(value) for name, (_, value) in derived.items()]

        # --- the engine: sequencer, read stage, MAC array, accumulators, thresholds, packer ---------
        full = Signal(2)  # input banks holding a complete vector
        engine_o = stream.Signature(WORD_BITS).create()
        release = self._engine(m, g, w_rd_view, i_rd, t_mems, full, engine_o, layer)

        # --- the command decoder ---------------------------------------------------------------------
        self._decoder(m, g, w_wr_view, i_wr, t_mems, cfg, error, derive, full, release, engine_o, layer)
        return m

    # -------------------------------------------------------------------------------------------------
    # -------------------------------------------------------------------------------------------------
    def _engine(self, m, g, w_rd, i_rd, t_mems, full, engine_o, layer):
        ifolds, ofolds, planes = layer.ifolds, layer.ofolds, layer.planes
        weight_plane_mode, act_mode, last_layer = layer.weight_plane_mode, layer.act_mode, layer.last_layer
        thresholds, out_k, fold_bits = layer.thresholds, layer.out_k, layer.fold_bits
        acc_width = g.acc_width

        m.submodules.array = array = self._make_array()
        release = Signal()  # the sequencer has read the last row of its bank

        # Sequencer: one beat per array cycle over (o_fold, plane, i_fold) of the vector in bank `bank`.
        busy, bank = Signal(), Signal()
        of, p, fi = Signal(16), Signal(4), Signal(16)
        w_addr, w_base = Signal(range(max(g.max_weight_rows, 2))), Signal(range(max(g.max_weight_rows, 2)))
        valid_b = Signal()
        adv_b = ~valid_b | array.i.ready
        issue = busy & adv_b
        fi_last, p_last, of_last = fi == ifolds - 1, p == planes - 1, of == ofolds - 1
        m.d.comb += [
            w_rd.addr.eq(w_addr),
            i_rd.addr.eq(Mux(bank, g.max_in_folds, 0) + fi),
            w_rd.en.eq(adv_b),
            i_rd.en.eq(adv_b),
        ]
        with m.If(~busy & full.bit_select(bank, 1)):
            m.d.sync += [busy.eq(1), of.eq(0), p.eq(0), fi.eq(0), w_addr.eq(0), w_base.eq(0)]
        # The beat's side information, registered beside the memories' read data (stage B).
        beat_p, beat_first, beat_last, beat_double, beat_neg, beat_of = (
            Signal(4),
            Signal(),
            Signal(),
            Signal(),
            Signal(),
            Signal(16),
        )
        with m.If(adv_b):
            m.d.sync += [
                valid_b.eq(issue),
                beat_p.eq(p),
                beat_first.eq((p == 0) & (fi == 0)),
                beat_last.eq(p_last & fi_last),
                beat_double.eq((p != 0) & (fi == 0)),
                beat_neg.eq(weight_plane_mode & (p == 0)),
                beat_of.eq(of),
            ]
        with m.If(issue):
            with m.If(~fi_last):
                m.d.sync += [fi.eq(fi + 1), w_addr.eq(w_addr + 1)]
            with m.Else():
                m.d.sync += fi.eq(0)
                with m.If(~p_last):
                    m.d.sync += [p.eq(p + 1), w_addr.eq(Mux(weight_plane_mode, w_addr + 1, w_base))]
                with m.Else():
                    m.d.sync += [p.eq(0), of.eq(of + 1), w_addr.eq(w_addr + 1), w_base.eq(w_addr + 1)]
                    with m.If(of_last):
                        m.d.comb += release.eq(1)
                        m.d.sync += [busy.eq(0), bank.eq(~bank), full.bit_select(bank, 1).eq(0)]

        # Stage B -> the MAC array: activations decoded from the input row, weights are the row itself.
        m.d.comb += array.i.valid.eq(valid_b)
        shared, channels = array.i.payload.shared, array.i.payload.channels
        row = i_rd.data
        if g.family == Family.POPCOUNT:
            plane = Signal(g.simd)
            with m.Switch(beat_p):
                for j in range(g.max_input_bits):
                    with m.Case(j):
                        m.d.comb += plane.eq(row[j * g.simd : (j + 1) * g.simd])
            with m.Switch(act_mode):
                with m.Case(0):  # binary: every tap non-zero, negative where the code is 0
                    m.d.comb += [shared.a_nz.eq(Const(-1, g.simd)), shared.a_sign.eq(~row[: g.simd])]
                with m.Case(1):  # ternary / FATNN: the non-zero plane, then the sign plane
                    m.d.comb += [shared.a_nz.eq(row[: g.simd]), shared.a_sign.eq(row[g.simd : 2 * g.simd])]
                with m.Default():  # uint: plane p as a 0/1 activation
                    m.d.comb += [shared.a_nz.eq(plane), shared.a_sign.eq(0)]
        else:
            m.d.comb += shared.x.as_value().eq(row[: len(shared.x.as_value())])
        m.d.comb += channels.as_value().eq(w_rd.data[: len(channels.as_value())])
        if g.family == Family.POPCOUNT:
            with m.If(weight_plane_mode):  # int weight planes: the sign plane carries no meaning
                m.d.comb += [channels[c].w_sign.eq(0) for c in range(g.pe)]
        beats = Signal(32)
        with m.If(array.i.valid & array.i.ready):
            m.d.sync += beats.eq(beats + 1)
        m.d.comb += self.mac_beats.eq(beats)

        # The beats' flags travel beside the array in a FIFO (the array is in order and lossless).
        m.submodules.sideband = side = SyncFIFO(width=4 + 16, depth=array.latency + 2)
        m.d.comb += [
            side.w_data.eq(Cat(beat_first, beat_last, beat_double, beat_neg, beat_of)),
            side.w_en.eq(array.i.valid & array.i.ready),
        ]
        s_first, s_last, s_double, s_neg, s_of = (
            side.r_data[0],
            side.r_data[1],
            side.r_data[2],
            side.r_data[3],
            side.r_data[4:20],
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
            term = Mux(s_neg, -d, d)
            base = Mux(s_first, 0, Mux(s_double, acc[c] << 1, acc[c]))
            new = (base + term)[:acc_width].as_signed()
            with m.If(take):
                m.d.sync += acc[c].eq(new)
            with m.If(take_r):
                m.d.sync += res[c].eq(new)
            _, t_rd = t_mems[c]
            m.d.comb += [t_rd.addr.eq(s_of), t_rd.en.eq(take_r)]
        with m.If(ready_r):
            m.d.sync += valid_r.eq(0)
        with m.If(take_r):
            m.d.sync += valid_r.eq(1)

        # Stage R -> thresholds (hidden layer) or straight to the packer (last layer).
        total = [Signal(signed(acc_width), name=f"total{c}") for c in range(g.pe)]
        for c in range(g.pe):
            record = t_mems[c][1].data
            m.d.comb += total[c].eq(res[c] + record[:acc_width].as_signed())
        count = 2**self.out_bits_max - 1
        m.submodules.threshold = thr = PEArray(lambda: MultiThreshold(acc_width + 1, self.out_bits_max), g.pe)
        never_up, never_down = (1 << acc_width) - 1, -(1 << acc_width)
        for c in range(g.pe):
            record = t_mems[c][1].data
            ch = thr.i.payload.channels[c]
            descending = record[WORD_BITS]
            m.d.comb += [ch.acc.eq(total[c]), ch.descending.eq(descending)]
            for t in range(count):
                if t < g.max_thresholds:
                    value = record[(2 + t) * WORD_BITS : (2 + t) * WORD_BITS + acc_width].as_signed()
                    value = Mux(t < thresholds, value, Mux(descending, never_down, never_up))
                else:
                    value = Mux(descending, never_down, never_up)
                m.d.comb += ch.thresholds[t].eq(value)

        # The packer. Last layer: a fold's PE accumulators, a word each. Hidden layers: the codes of a
        # vector's folds as one bit string (channel j at bit j * k) cut into words as they fill, the
        # vector's last word zero-padded; `pending` holds the `pos` bits not yet sent.
        fold_bits_max = g.pe * self.out_bits_max
        joined_words = -(-(WORD_BITS + fold_bits_max) // WORD_BITS)
        words_max = max(g.pe, joined_words)
        buf = [Signal(WORD_BITS, name=f"out{j}") for j in range(words_max)]
        left = Signal(range(words_max + 1))
        load = Signal()
        can_load = (left == 0) | ((left == 1) & engine_o.ready)
        m.d.comb += [
            engine_o.valid.eq(left != 0),
            engine_o.payload.eq(buf[0]),
            thr.i.valid.eq(valid_r & ~last_layer),
            thr.o.ready.eq(can_load & ~last_layer),
            ready_r.eq(Mux(last_layer, can_load, thr.i.ready)),
            load.eq(Mux(last_layer, valid_r & can_load, thr.o.valid & can_load)),
        ]
        with m.If(engine_o.valid & engine_o.ready):
            m.d.sync += [left.eq(left - 1)] + [buf[j].eq(buf[j + 1]) for j in range(words_max - 1)]
        codes = Signal(fold_bits_max)
        with m.Switch(out_k):
            for k in range(1, self.out_bits_max + 1):
                with m.Case(k):
                    m.d.comb += codes.eq(Cat(thr.o.payload[c][:k] for c in range(g.pe)))
        pending, pos = Signal(WORD_BITS), Signal(range(WORD_BITS))
        packed_folds = Signal(16)  # the folds of the current vector packed so far
        joined = Signal(joined_words * WORD_BITS)
        bit_count = Signal(range(WORD_BITS + g.pe * WORD_BITS + 1))
        last_fold = packed_folds == ofolds - 1
        m.d.comb += [joined.eq(pending | (codes << pos)), bit_count.eq(pos + fold_bits)]
        complete = bit_count >> exact_log2(WORD_BITS)  # words of `joined` that are complete
        joined_word = [joined[j * WORD_BITS : (j + 1) * WORD_BITS] for j in range(joined_words)]
        with m.If(load):
            for j in range(words_max):
                accumulator = total[j].as_signed() if j < g.pe else Const(0, WORD_BITS)
                code_word = joined_word[j] if j < joined_words else Const(0, WORD_BITS)
                m.d.sync += buf[j].eq(Mux(last_layer, accumulator, code_word))
            with m.If(last_layer):
                m.d.sync += left.eq(g.pe)
            with m.Elif(last_fold):
                m.d.sync += [
                    left.eq((bit_count + WORD_BITS - 1) >> exact_log2(WORD_BITS)),
                    pending.eq(0),
                    pos.eq(0),
                    packed_folds.eq(0),
                ]
            with m.Else():
                m.d.sync += [
                    left.eq(complete),
                    pending.eq(Array(joined_word)[complete]),
                    pos.eq(bit_count[: exact_log2(WORD_BITS)]),
                    packed_folds.eq(packed_folds + 1),
                ]
        return release

    # -------------------------------------------------------------------------------------------------
    def _decoder(self, m, g, w_wr, i_wr, t_mems, cfg, error, derive, full, release, engine_o, layer):
        config_valid, weights_loaded, thresholds_loaded = Signal(), Signal(), Signal()
        remaining = Signal(24)
        opcode = Signal(8)
        resp = Array(Signal(WORD_BITS, name=f"resp{k}") for k in range(6))
        resp_count, resp_idx = Signal(3), Signal(3)
        chunk, row = Signal(8), Signal(range(max(g.max_weight_rows, 2 * g.max_in_folds, 2) + 1))
        channel, word = Signal(16), Signal(9)
        out_left = Signal(40)
        write_bank = Signal()
        div_q, div_r, div_n, div_step = Signal(24), Signal(25), Signal(24), Signal(5)
        after_respond = Signal()  # 1: go on loading a RUN's inputs after the DATA header
        check_wait = Signal(range(CHECK_LATENCY + 1))

        in_hdr_op, in_hdr_len = self.i.payload[24:], self.i.payload[:24]
        take = self.i.valid & self.i.ready

        def respond_error(code):
            return [
                resp[0].eq(header(Response.ERROR, 1)),
                resp[1].eq(Cat(code, opcode)),
                resp_count.eq(2),
                resp_idx.eq(0),
                after_respond.eq(0),
            ]

        def respond_ok():
            return [resp[0].eq(header(Response.OK, 0)), resp_count.eq(1), resp_idx.eq(0), after_respond.eq(0)]

        pending_error = Signal(8)

        # The response mux: the decoder's words while responding, else the engine's outputs.
        responding = Signal()
        m.d.comb += [
            self.o.valid.eq(Mux(responding, 1, engine_o.valid)),
            self.o.payload.eq(Mux(responding, resp[resp_idx], engine_o.payload)),
            engine_o.ready.eq(~responding & self.o.ready),
        ]
        with m.If(engine_o.valid & engine_o.ready):
            m.d.sync += out_left.eq(out_left - 1)

        def reject(code):  # drain the command's payload, then answer ERROR(code)
            m.d.sync += pending_error.eq(code)
            m.next = "DRAIN"

        def start_load(expected_length, loaded, state):
            with m.If(~config_valid):
                reject(ErrorCode.NOT_CONFIGURED)
            with m.Elif(in_hdr_len != expected_length):
                reject(ErrorCode.BAD_LENGTH)
            with m.Else():
                m.d.sync += loaded.eq(0)
                m.next = state

        def load_word(word_index, last_word, record, loaded):
            """A LOAD_* payload word taken: the next word of the record (row / channel), the next record
            after ``last_word``; after the command's last word, ``loaded`` and OK."""
            with m.If(self.i.valid):
                m.d.sync += remaining.eq(remaining - 1)
                with m.If(word_index == last_word):
                    m.d.sync += [word_index.eq(0), record.eq(record + 1)]
                with m.Else():
                    m.d.sync += word_index.eq(word_index + 1)
                with m.If(remaining == 1):
                    m.d.sync += [loaded.eq(1)] + respond_ok()
                    m.next = "RESPOND"

        with m.FSM(name="decoder"):
            with m.State("IDLE"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    m.d.sync += [
                        opcode.eq(in_hdr_op),
                        remaining.eq(in_hdr_len),
                        chunk.eq(0),
                        row.eq(0),
                        channel.eq(0),
                        word.eq(0),
                    ]
                    with m.Switch(in_hdr_op):
                        with m.Case(Opcode.CONFIGURE):
                            m.d.sync += [config_valid.eq(0), weights_loaded.eq(0), thresholds_loaded.eq(0)]
                            with m.If(in_hdr_len == 3):
                                m.next = "CONFIG"
                            with m.Else():
                                reject(ErrorCode.BAD_LENGTH)
                        with m.Case(Opcode.LOAD_WEIGHTS):
                            start_load(layer.weight_words, weights_loaded, "WEIGHTS")
                        with m.Case(Opcode.LOAD_THRESHOLDS):
                            start_load(layer.threshold_words, thresholds_loaded, "THRESHOLDS")
                        with m.Case(Opcode.RUN):
                            with m.If(~config_valid):
                                reject(ErrorCode.NOT_CONFIGURED)
                            with m.Elif(~weights_loaded | ~thresholds_loaded):
                                reject(ErrorCode.NOT_LOADED)
                            with m.Else():
                                m.d.sync += [div_n.eq(in_hdr_len), div_q.eq(0), div_r.eq(0), div_step.eq(0)]
                                m.next = "DIVIDE"
                        with m.Case(Opcode.IDENTIFY):
                            with m.If(in_hdr_len != 0):
                                reject(ErrorCode.BAD_LENGTH)
                            with m.Else():
                                words = [header(Response.DATA, 5)] + g.encode()
                                m.d.sync += [resp[k].eq(w) for k, w in enumerate(words)]
                                m.d.sync += [resp_count.eq(6), resp_idx.eq(0), after_respond.eq(0)]
                                m.next = "RESPOND"
                        with m.Default():
                            reject(ErrorCode.UNKNOWN_OPCODE)

            with m.State("DRAIN"):  # consume the payload of a rejected command, then answer ERROR
                with m.If(remaining == 0):
                    m.d.sync += respond_error(pending_error)
                    m.next = "RESPOND"
                with m.Else():
                    m.d.comb += self.i.ready.eq(1)
                    with m.If(self.i.valid):
                        m.d.sync += remaining.eq(remaining - 1)

            with m.State("CONFIG"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    with m.Switch(chunk):
                        for k in range(3):
                            with m.Case(k):
                                m.d.sync += cfg[k].eq(self.i.payload)
                    m.d.sync += chunk.eq(chunk + 1)
                    with m.If(chunk == 2):
                        m.d.sync += check_wait.eq(0)
                        m.next = "CHECK"

            with m.State("CHECK"):  # the configuration words are in: wait for the check, accept or reject
                m.d.sync += check_wait.eq(check_wait + 1)
                with m.If(check_wait == CHECK_LATENCY):
                    with m.If(error != 0):
                        m.d.sync += respond_error(error)
                    with m.Else():
                        m.d.sync += derive() + [config_valid.eq(1)] + respond_ok()
                    m.next = "RESPOND"

            with m.State("WEIGHTS"):
                m.d.comb += [
                    self.i.ready.eq(1),
                    w_wr.addr.eq(row),
                    w_wr.data.eq(Cat(self.i.payload for _ in range(g.weight_row_words))),
                    w_wr.en.eq(Mux(self.i.valid, 1 << chunk, 0)),
                ]
                load_word(chunk, g.weight_row_words - 1, row, weights_loaded)

            with m.State("THRESHOLDS"):
                m.d.comb += self.i.ready.eq(1)
                pe_log2 = exact_log2(g.pe)
                for c, (t_wr, _) in enumerate(t_mems):
                    m.d.comb += [
                        t_wr.addr.eq(channel >> pe_log2),
                        t_wr.data.eq(Cat(self.i.payload for _ in range(2 + g.max_thresholds))),
                        t_wr.en.eq(Mux(self.i.valid & ((channel & (g.pe - 1)) == c), 1 << word, 0)),
                    ]
                load_word(word, layer.record_words - 1, channel, thresholds_loaded)

            with m.State("DIVIDE"):  # batch = length / input_words, restoring division over 24 steps
                trial = Cat(div_n[23], div_r[:24])
                fits = trial >= layer.input_words
                m.d.sync += [
                    div_n.eq(div_n << 1),
                    div_step.eq(div_step + 1),
                    div_r.eq(Mux(fits, trial - layer.input_words, trial)),
                    div_q.eq(Cat(fits, div_q[:23])),
                ]
                with m.If(div_step == 23):
                    m.next = "BATCH"

            with m.State("BATCH"):
                data_words = div_q * layer.output_words
                with m.If((div_r != 0) | (div_q == 0) | (data_words > MAX_LENGTH)):
                    reject(ErrorCode.BAD_LENGTH)
                with m.Else():
                    m.d.sync += [
                        resp[0].eq(Cat(data_words[:24], Const(Response.DATA, 8))),
                        resp_count.eq(1),
                        resp_idx.eq(0),
                        after_respond.eq(1),
                        out_left.eq(data_words),
                    ]
                    m.next = "RESPOND"

            with m.State("INPUTS"):  # the batch's words into the input banks, a vector per bank
                bank_free = ~full.bit_select(write_bank, 1)
                m.d.comb += [
                    self.i.ready.eq(bank_free),
                    i_wr.addr.eq(Mux(write_bank, g.max_in_folds, 0) + row),
                    i_wr.data.eq(Cat(self.i.payload for _ in range(g.max_input_row_words))),
                    i_wr.en.eq(Mux(take, 1 << chunk, 0)),
                ]
                with m.If(take):
                    m.d.sync += remaining.eq(remaining - 1)
                    with m.If(chunk == layer.in_row_words - 1):
                        m.d.sync += chunk.eq(0)
                        with m.If(row == layer.ifolds - 1):
                            m.d.sync += [row.eq(0), write_bank.eq(~write_bank), full.bit_select(write_bank, 1).eq(1)]
                        with m.Else():
                            m.d.sync += row.eq(row + 1)
                    with m.Else():
                        m.d.sync += chunk.eq(chunk + 1)
                    with m.If(remaining == 1):
                        m.next = "OUTPUTS"

            with m.State("OUTPUTS"):  # the last vectors compute and their outputs leave
                with m.If((out_left == 0) | ((out_left == 1) & engine_o.valid & engine_o.ready)):
                    m.next = "IDLE"

            with m.State("RESPOND"):
                m.d.comb += responding.eq(1)
                with m.If(self.o.ready):
                    m.d.sync += resp_idx.eq(resp_idx + 1)
                    with m.If(resp_idx == resp_count - 1):
                        with m.If(after_respond):
                            m.next = "INPUTS"
                        with m.Else():
                            m.next = "IDLE"
        return
