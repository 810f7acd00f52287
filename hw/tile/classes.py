"""The class index of a resident model's outputs (CLASSIFY): :class:`ClassIndex`."""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from lowbit.sw.protocol import WORD_BITS

from .config import LayerLayout

__all__ = ["ClassIndex"]


class ClassIndex(wiring.Component):
    """Each vector's class index from the last layer's accumulator words: the channel of the largest
    accumulator among the first ``classes``, the first of equal ones (``lowbit.sw.golden.class_index``).

    Ports:

    - ``i`` (in, stream of 32-bit words): the :class:`~lowbit.hw.tile.packer.Packer`'s words of a last
      layer, ``words`` per vector, each an accumulator sign-extended (its low ``acc_width`` bits compared),
      channel 0 first;
    - ``classes`` (in): the last layer's ``out_features``; the words beyond them (padded channels) are
      skipped;
    - ``words`` (in): words per vector (the last layer's ``output_words``, ``out_folds * PE``);
    - ``o`` (out, stream of 32-bit words): one word per vector, its class index.

    ``classes`` and ``words`` must hold while a vector's words arrive (the decoder's copies of the resident
    model's last layer). Latency: the index is on ``o`` the cycle after the vector's last word. Throughput:
    a word per cycle while ``o`` is ready.
    """

    def __init__(self, geometry):
        self.geometry = geometry
        fields = LayerLayout(geometry).members
        super().__init__(
            {
                "i": In(stream.Signature(WORD_BITS)),
                "classes": In(fields["out_features"]),
                "words": In(fields["output_words"]),
                "o": Out(stream.Signature(WORD_BITS)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        channel = Signal.like(self.words)  # of the word on `i`
        best = Signal(signed(self.geometry.acc_width))
        best_channel = Signal.like(self.words)
        result = Signal(WORD_BITS)
        full = Signal()  # `result` waits on `o`

        value = self.i.payload[: self.geometry.acc_width].as_signed()
        better = (channel < self.classes) & ((channel == 0) | (value > best))
        can_take = ~full | self.o.ready
        m.d.comb += [self.i.ready.eq(can_take), self.o.valid.eq(full), self.o.payload.eq(result)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += full.eq(0)
        with m.If(self.i.valid & can_take):
            with m.If(better):
                m.d.sync += [best.eq(value), best_channel.eq(channel)]
            with m.If(channel == self.words - 1):
                m.d.sync += [channel.eq(0), result.eq(Mux(better, channel, best_channel)), full.eq(1)]
            with m.Else():
                m.d.sync += channel.eq(channel + 1)
        return m
