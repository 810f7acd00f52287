"""The gatherer of the board's link: :class:`WordGatherer`."""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from lowbit.hw.link.layouts import buffer_read_signature
from lowbit.sw.protocol.frames import MAX_FRAME_WORDS

__all__ = ["WordGatherer"]


class WordGatherer(wiring.Component):
    """The tile's words gathered into the transmit buffer (a Memory of :data:`MAX_FRAME_WORDS` words),
    one DATA frame at a time, and held there until the host has acknowledged it.

    Ports:

    - ``i`` (in, ``stream.Signature(32)``): the words; word ``k`` of a frame is written to address ``k``.
      Ready while the buffer is filling and not full.
    - ``o`` (out, ``stream.Signature(range(MAX_FRAME_WORDS + 1))``): a frame of ``o.payload`` (1 ..
      :data:`MAX_FRAME_WORDS`) words is in the buffer. Valid two cycles after the transfer of the word
      that filled the buffer, or ``flush_cycles`` + 2 cycles after the transfer of the last word when
      ``i`` has had no word since; the transfer (the sender's, once the frame is acknowledged) empties
      the buffer, and ``i`` is ready again in the next cycle.
    - ``buffer`` (out, :func:`~lowbit.hw.link.layouts.buffer_read_signature`): a read port of the buffer,
      for the sender; ``data`` follows ``addr`` by one cycle.
    - ``clear`` (in, 1 bit): a session starts: the words gathered and a frame held are dropped (it
      overrides everything else in that cycle).

    Latency: see ``o``. Throughput: one word per cycle into the buffer, then nothing until the frame is released.
    """

    def __init__(self, flush_cycles):
        if not isinstance(flush_cycles, int) or isinstance(flush_cycles, bool) or flush_cycles < 1:
            raise ValueError(f"flush_cycles must be a positive integer, not {flush_cycles!r}")
        self.flush_cycles = flush_cycles
        super().__init__(
            {
                "i": In(stream.Signature(32)),
                "o": Out(stream.Signature(range(MAX_FRAME_WORDS + 1))),
                "buffer": Out(buffer_read_signature()),
                "clear": In(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.buffer = buffer = Memory(shape=32, depth=MAX_FRAME_WORDS, init=[])
        write = buffer.write_port()
        wiring.connect(m, wiring.flipped(self.buffer), buffer.read_port())

        fill = Signal(range(MAX_FRAME_WORDS + 1))
        idle = Signal(range(self.flush_cycles + 1))  # cycles without a word on ``i``, up to the limit
        m.d.comb += self.o.payload.eq(fill)

        held = Signal()  # a frame waits in the buffer for its acknowledgement
        m.d.comb += self.o.valid.eq(held)
        with m.If(~held):
            transfer = self.i.valid & self.i.ready
            m.d.comb += [
                self.i.ready.eq(fill != MAX_FRAME_WORDS),
                write.addr.eq(fill),
                write.data.eq(self.i.payload),
                write.en.eq(transfer),
            ]
            with m.If(transfer):
                m.d.sync += [fill.eq(fill + 1), idle.eq(0)]
            with m.Elif(idle != self.flush_cycles):
                m.d.sync += idle.eq(idle + 1)
            with m.If((fill == MAX_FRAME_WORDS) | ((fill != 0) & (idle == self.flush_cycles))):
                m.d.sync += held.eq(1)
        with m.Elif(self.o.ready):
            m.d.sync += [held.eq(0), fill.eq(0), idle.eq(0)]
        with m.If(self.clear):
            m.d.sync += [held.eq(0), fill.eq(0), idle.eq(0)]
        return m
