"""The tile's output packer: a vector's output folds into response words."""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from lowbit.sw.protocol import WORD_BITS, output_code_bits

from .config import LayerLayout
from .engine import FoldLayout

__all__ = ["Packer"]


class Packer(wiring.Component):
    """The words of RUN's DATA from a tile of ``geometry``'s output folds (``docs/protocol.md``).

    Last layer: a fold's ``pe`` accumulators, a sign-extended word each. Hidden layers: the ``out_k``-bit
    codes of a vector's ``ofolds`` folds as one bit string (channel ``j`` at bit ``j * out_k``), cut into
    words as they fill, the vector's last word zero-padded.

    Ports:

    - ``i`` (in, stream of :func:`~lowbit.hw.tile.engine.FoldLayout`): the folds, ``ofolds`` per
      vector; ``acc`` is read for a last layer, ``codes`` for a hidden one (bits above ``out_k``
      ignored);
    - ``layer`` (in, :class:`~lowbit.hw.tile.config.LayerLayout`): ``last_layer``, ``out_k``,
      ``fold_bits``, ``ofolds``;
    - ``o`` (out, stream of 32-bit words).

    Latency: a fold's first word is on ``o`` the cycle after the fold is taken. Throughput: a fold is
    taken while the words of the one before leave (with the last of them), so a fold whose bits fill
    ``n`` words takes ``n`` cycles.
    """

    def __init__(self, geometry):
        self.geometry = geometry
        self.out_bits_max = output_code_bits(geometry.max_thresholds + 1)
        super().__init__(
            {
                "i": In(stream.Signature(FoldLayout(geometry))),
                "layer": In(LayerLayout(geometry)),
                "o": Out(stream.Signature(WORD_BITS)),
            }
        )

    def elaborate(self, platform):
        g = self.geometry
        m = Module()
        layer, fold = self.layer, self.i.payload
        word_log2 = exact_log2(WORD_BITS)

        # `buf` holds the words not yet sent, `left` of them.
        fold_bits_max = g.pe * self.out_bits_max
        joined_words = -(-(WORD_BITS + fold_bits_max) // WORD_BITS)
        words_max = max(g.pe, joined_words)
        buf = [Signal(WORD_BITS, name=f"out{j}") for j in range(words_max)]
        left = Signal(range(words_max + 1))
        can_load = (left == 0) | ((left == 1) & self.o.ready)
        load = self.i.valid & can_load
        m.d.comb += [self.o.valid.eq(left != 0), self.o.payload.eq(buf[0]), self.i.ready.eq(can_load)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [left.eq(left - 1)] + [buf[j].eq(buf[j + 1]) for j in range(words_max - 1)]

        # Hidden layers: `pending` holds the `pos` bits of the vector not yet in a word.
        codes = Signal(fold_bits_max)
        with m.Switch(layer.out_k):
            for k in range(1, self.out_bits_max + 1):
                with m.Case(k):
                    m.d.comb += codes.eq(Cat(fold.codes[c][:k] for c in range(g.pe)))
        pending, pos = Signal(WORD_BITS), Signal(range(WORD_BITS))
        packed_folds = Signal(16)  # the folds of the current vector packed so far
        joined = Signal(joined_words * WORD_BITS)
        bit_count = Signal(range(WORD_BITS + g.pe * WORD_BITS + 1))
        last_fold = packed_folds == layer.ofolds - 1
        m.d.comb += [joined.eq(pending | (codes << pos)), bit_count.eq(pos + layer.fold_bits)]
        complete = bit_count >> word_log2  # words of `joined` that are complete
        joined_word = [joined[j * WORD_BITS : (j + 1) * WORD_BITS] for j in range(joined_words)]
        with m.If(load):
            for j in range(words_max):
                accumulator = fold.acc[j].as_signed() if j < g.pe else Const(0, WORD_BITS)
                code_word = joined_word[j] if j < joined_words else Const(0, WORD_BITS)
                m.d.sync += buf[j].eq(Mux(layer.last_layer, accumulator, code_word))
            with m.If(layer.last_layer):
                m.d.sync += left.eq(g.pe)
            with m.Elif(last_fold):
                m.d.sync += [
                    left.eq((bit_count + WORD_BITS - 1) >> word_log2),
                    pending.eq(0),
                    pos.eq(0),
                    packed_folds.eq(0),
                ]
            with m.Else():
                m.d.sync += [
                    left.eq(complete),
                    pending.eq(Array(joined_word)[complete]),
                    pos.eq(bit_count[:word_log2]),
                    packed_folds.eq(packed_folds + 1),
                ]
        return m
