"""The tile's activation writer: a resident model's hidden-layer output folds, as the next layer's input
rows, into the input memory."""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from lowbit.sw.protocol import WORD_BITS, InputKind, output_code_bits

from .config import ternary_planes
from .engine import FoldLayout
from .memories import write_port_signature

__all__ = ["ROW_BINARY", "ROW_TERNARY", "ROW_UINT", "Writeback"]

#: ``mode``: how a code becomes input-row bits on the BINARY and POPCOUNT arrays (the next layer's input
#: kind): the code's bit (binary), the ``nz`` and ``sign`` planes of ``code - 1`` (ternary, FATNN), or
#: ``bits`` planes, the most significant first (uint).
ROW_BINARY, ROW_TERNARY, ROW_UINT = 0, 1, 2


def row_mode(input_kind):
    """:data:`ROW_*` of an input kind code (an Amaranth value): the row format of ``docs/protocol.md``."""
    return Mux(
        input_kind == InputKind.UINT.code, ROW_UINT, Mux(input_kind == InputKind.BINARY.code, ROW_BINARY, ROW_TERNARY)
    )


class Writeback(wiring.Component):
    """A hidden layer's output codes, ``pe`` per fold, into input rows of ``simd`` inputs in the format of
    the next layer's input kind (the host's RUN rows, ``docs/protocol.md``), written into bank ``dst`` of
    the input memory; inputs at and beyond ``out_features`` are all-zero bits (padding).

    Ports:

    - ``i`` (in, stream of :func:`~lowbit.hw.tile.engine.FoldLayout`): the folds, ``codes`` read;
    - ``start`` (in, a pulse before a layer's first fold): the folds count from 0;
    - ``dst`` (in, 2 bits), ``mode`` (:data:`ROW_*`), ``bits`` (uint bits), ``out_features``,
      ``ofolds``: where and how, held still over a layer;
    - ``wr`` (a write port of the input memory): a whole row the cycle it is complete; ``wr.en`` is
      never high when no fold is taken, so the host's words may use the port in the other cycles.

    On a tile that walks maps, the folds are those of the pixels of a map, ``pool_area`` consecutive folds
    of each output fold (a pool window's positions, :class:`~lowbit.hw.tile.sequencer.Sequencer`) of which
    it keeps each channel's largest code (max-pooling, exact because every channel's codes rise with its
    accumulator), and each pooled pixel's ``out_groups`` rows follow the one before.

    Throughput: a fold per cycle when ``pe <= simd``, else a row per cycle (``pe / simd`` cycles a fold).
    """

    def __init__(self, geometry):
        self.geometry = g = geometry
        self.code_bits = output_code_bits(g.max_thresholds + 1)
        super().__init__(
            {
                "i": In(stream.Signature(FoldLayout(g))),
                "start": In(1),
                "dst": In(2),
                "mode": In(2),
                "bits": In(4),
                "out_features": In(16),
                "ofolds": In(17),
                "wr": Out(write_port_signature(g, "inputs")),
            }
            | ({"pool_area": In(8), "out_groups": In(16)} if g.maps else {})
        )

    def _encode(self, m, codes, row_index):
        """The input-row bits of ``simd`` codes, row ``row_index`` of the layer's activations."""
        g = self.geometry
        width = g.max_input_row_words * WORD_BITS
        bits = Signal(width)
        live = Signal(g.simd)  # inputs before out_features; the rest is padding
        # the row's live inputs, 0 .. simd: one subtraction for the row, then a small compare per input
        first = row_index << exact_log2(g.simd)
        left = Signal(signed(max(len(self.out_features), len(first)) + 1))
        m.d.comb += left.eq(self.out_features - first)
        in_row = Signal(range(g.simd + 1))
        m.d.comb += in_row.eq(Mux(left <= 0, 0, Mux(left >= g.simd, g.simd, left)))
        for t in range(g.simd):
            m.d.comb += live[t].eq(in_row > t)
        if not g.plane_inputs:  # NHOT: the uint codes, max_input_bits each
            k = g.max_input_bits
            for t in range(g.simd):
                m.d.comb += bits[t * k : (t + 1) * k].eq(Mux(live[t], codes[t], 0))
            return bits
        with m.Switch(self.mode):
            with m.Case(ROW_BINARY):
                m.d.comb += bits[: g.simd].eq(Cat(codes[t][0] & live[t] for t in range(g.simd)))
            with m.Case(ROW_TERNARY):  # nz, sign of code - 1
                planes = [ternary_planes(codes[t]) for t in range(g.simd)]
                m.d.comb += [
                    bits[: g.simd].eq(Cat(planes[t][0] & live[t] for t in range(g.simd))),
                    bits[g.simd : 2 * g.simd].eq(Cat(planes[t][1] & live[t] for t in range(g.simd))),
                ]
            with m.Case(ROW_UINT):  # plane j holds bit k - 1 - j
                with m.Switch(self.bits):
                    for k in range(1, min(self.code_bits, g.max_input_bits) + 1):
                        with m.Case(k):
                            for j in range(k):
                                plane = Cat(codes[t][k - 1 - j] & live[t] for t in range(g.simd))
                                m.d.comb += bits[j * g.simd : (j + 1) * g.simd].eq(plane)
        return bits

    def elaborate(self, platform):
        g = self.geometry
        m = Module()
        kb = self.code_bits
        fold = [self.i.payload.codes[c] for c in range(g.pe)]
        folds = Signal(17)  # folds taken in this layer (in this pixel, on a tile that walks maps)
        last_fold = folds == self.ofolds - 1
        arrived = self.i.valid & self.i.ready
        base = self.dst * g.max_in_folds
        if g.maps:  # max-pooling: the largest code of each channel over the pool window's folds
            member, pixel = Signal(8), Signal(range(g.max_in_folds + 1))
            pooled = [Signal(kb, name=f"pooled{c}") for c in range(g.pe)]
            best = [Signal(kb, name=f"best{c}") for c in range(g.pe)]
            for c in range(g.pe):
                m.d.comb += best[c].eq(Mux((member == 0) | (fold[c] > pooled[c]), fold[c], pooled[c]))
            last_member = member == self.pool_area - 1
            take = arrived & last_member
            fold = best
            with m.If(self.start):
                m.d.sync += [member.eq(0), pixel.eq(0)]
            with m.Elif(arrived):
                m.d.sync += [member.eq(Mux(last_member, 0, member + 1))] + [pooled[c].eq(best[c]) for c in range(g.pe)]
            with m.If(take & last_fold):  # the pixel's last fold: the next pixel's rows
                m.d.sync += pixel.eq(pixel + self.out_groups)
            base = base + pixel
        else:
            take, last_member = arrived, Const(1)
        with m.If(self.start):
            m.d.sync += folds.eq(0)
        with m.Elif(take):  # on a tile that walks maps, the folds count again from each pixel's first
            m.d.sync += folds.eq(Mux(last_fold, 0, folds + 1) if g.maps else folds + 1)
        m.d.comb += self.wr.data.eq(0)
        if g.pe <= g.simd:
            per_row = g.simd // g.pe  # folds per row
            pos = folds[: exact_log2(per_row)] if per_row > 1 else Const(0, 1)
            row_index = folds >> exact_log2(per_row)
            buf = [Signal(kb, name=f"code{t}") for t in range(g.simd)]
            codes = [Signal(kb, name=f"row_code{t}") for t in range(g.simd)]
            for t in range(g.simd):
                slot, c = divmod(t, g.pe)
                m.d.comb += codes[t].eq(Mux(pos == slot, fold[c], buf[t]))
                with m.If(take & (pos == slot)):
                    m.d.sync += buf[t].eq(fold[c])
            complete = (pos == per_row - 1) | last_fold
            m.d.comb += [
                self.i.ready.eq(1),
                self.wr.addr.eq(base + row_index),
                self.wr.data.eq(self._encode(m, codes, row_index)),
                self.wr.en.eq(Mux(take & complete, -1, 0)),
            ]
        else:
            rows = g.pe // g.simd  # rows per fold
            sub = Signal(range(rows))
            row_index = Cat(sub, folds)
            codes = Signal(g.simd * kb)
            m.d.comb += codes.eq(Array(Cat(fold[r * g.simd + t] for t in range(g.simd)) for r in range(rows))[sub])
            row_codes = [codes[t * kb : (t + 1) * kb] for t in range(g.simd)]
            last_sub = sub == rows - 1
            with m.If(self.start):
                m.d.sync += sub.eq(0)
            with m.Elif(self.i.valid & last_member):
                m.d.sync += sub.eq(Mux(last_sub, 0, sub + 1))
            needed = row_index * g.simd < self.out_features  # rows wholly beyond the outputs stay unwritten
            m.d.comb += [
                self.i.ready.eq(last_sub | ~last_member),
                self.wr.addr.eq(base + row_index),
                self.wr.data.eq(self._encode(m, row_codes, row_index)),
                self.wr.en.eq(Mux(self.i.valid & last_member & needed, -1, 0)),
            ]
        return m
