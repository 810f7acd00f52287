"""The gatherer of the board's link: :class:`WordGatherer`."""

from amaranth.hdl import Array, Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from lowbit.hw.link.layouts import BUFFER_ADDR_WIDTH, SLOT_BITS, slots_read_signature
from lowbit.sw.protocol.frames import MAX_FRAME_WORDS, WINDOW_FRAMES

__all__ = ["WordGatherer"]


class WordGatherer(wiring.Component):
    """The tile's words gathered into DATA frames in the transmit slots (:data:`WINDOW_FRAMES` slots of
    :data:`MAX_FRAME_WORDS` words, one Memory, a ring), each frame held in its slot until the host has
    acknowledged it, so that up to :data:`WINDOW_FRAMES` frames can be in flight.

    The ``k``-th frame since the last ``clear`` (counting from 0) is in slot ``k mod WINDOW_FRAMES``: the
    sender, whose frame ``k`` has seq ``k mod 256``, finds a frame's slot from its seq.

    Ports:

    - ``i`` (in, ``stream.Signature(32)``): the words; word ``k`` of a frame is written to word ``k`` of
      its slot. Ready while a slot is free (fewer than :data:`WINDOW_FRAMES` frames held), except in the
      cycle a frame is completed.
    - ``frames`` (out, ``range(WINDOW_FRAMES + 1)``): the frames held (gathered, not yet released). A
      frame joins two cycles after the transfer of the word that filled it, or ``flush_cycles`` + 2
      cycles after the transfer of its last word when ``i`` has had no word since.
    - ``slot`` (in, :data:`~lowbit.hw.link.layouts.SLOT_BITS`), ``count`` (out,
      ``range(MAX_FRAME_WORDS + 1)``): the words (1 .. :data:`MAX_FRAME_WORDS`) of the frame held in slot
      ``slot``, in the same cycle.
    - ``release`` (in, ``range(WINDOW_FRAMES + 1)``): that many of the oldest frames held are
      acknowledged (at most ``frames``): their slots are free from the next cycle.
    - ``buffer`` (out, :func:`~lowbit.hw.link.layouts.slots_read_signature`): a read port of the slots,
      for the sender; ``data`` follows ``addr`` by one cycle.
    - ``clear`` (in, 1 bit): a session starts: the words gathered and the frames held are dropped, the
      next frame goes to slot 0 (it overrides everything else in that cycle).

    Latency: see ``frames``. Throughput: one word per cycle into a slot, and a cycle between frames.
    """

    def __init__(self, flush_cycles):
        if not isinstance(flush_cycles, int) or isinstance(flush_cycles, bool) or flush_cycles < 1:
            raise ValueError(f"flush_cycles must be a positive integer, not {flush_cycles!r}")
        self.flush_cycles = flush_cycles
        super().__init__(
            {
                "i": In(stream.Signature(32)),
                "frames": Out(range(WINDOW_FRAMES + 1)),
                "slot": In(SLOT_BITS),
                "count": Out(range(MAX_FRAME_WORDS + 1)),
                "release": In(range(WINDOW_FRAMES + 1)),
                "buffer": Out(slots_read_signature()),
                "clear": In(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.slots = slots = Memory(shape=32, depth=WINDOW_FRAMES * MAX_FRAME_WORDS, init=[])
        write = slots.write_port()
        wiring.connect(m, wiring.flipped(self.buffer), slots.read_port())

        tail = Signal(SLOT_BITS)  # the slot being filled
        fill = Signal(range(MAX_FRAME_WORDS + 1))  # its words so far
        counts = Array(Signal(range(MAX_FRAME_WORDS + 1), name=f"count{k}") for k in range(WINDOW_FRAMES))
        idle = Signal(range(self.flush_cycles + 1))  # cycles without a word on ``i``, up to the limit
        m.d.comb += self.count.eq(counts[self.slot])

        transfer = self.i.valid & self.i.ready
        complete = (fill == MAX_FRAME_WORDS) | ((fill != 0) & (idle == self.flush_cycles))
        m.d.comb += [
            self.i.ready.eq((self.frames != WINDOW_FRAMES) & ~complete),
            write.addr.eq(Cat(fill[:BUFFER_ADDR_WIDTH], tail)),
            write.data.eq(self.i.payload),
            write.en.eq(transfer),
        ]
        with m.If(transfer):
            m.d.sync += [fill.eq(fill + 1), idle.eq(0)]
        with m.Elif(idle != self.flush_cycles):
            m.d.sync += idle.eq(idle + 1)
        with m.If(complete):
            m.d.sync += [counts[tail].eq(fill), tail.eq(tail + 1), fill.eq(0), idle.eq(0)]
        m.d.sync += self.frames.eq(self.frames + complete - self.release)
        with m.If(self.clear):
            m.d.sync += [self.frames.eq(0), tail.eq(0), fill.eq(0), idle.eq(0)]
        return m
