"""The delivery stage of the board's link: :class:`FrameDelivery`."""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from lowbit.hw.link.layouts import (
    BUFFER_ADDR_WIDTH,
    SLOT_BITS,
    ControlFrame,
    FrameEnd,
    buffer_write_signature,
    seq_behind,
    seq_distance,
)
from lowbit.sw.protocol.frames import MAX_FRAME_WORDS, WINDOW_FRAMES, FrameKind

__all__ = ["FrameDelivery"]


class FrameDelivery(wiring.Component):
    """The receiving end of the host's window of DATA frames ("go back N", ``docs/serial.md``, "Rules"):
    :data:`WINDOW_FRAMES` receive slots, the ``seq`` accepted next, the delivery of accepted frames' words
    on ``cmd`` in order, and the answers to the host's frames.

    Ports:

    - ``buffer`` (out, :func:`~lowbit.hw.link.layouts.buffer_write_signature`): the write port of the
      slot the next frame goes to (the ring's tail: a frame's word ``k`` at address ``k``), for the frame
      receiver. The slots are one Memory of ``WINDOW_FRAMES * MAX_FRAME_WORDS`` words.
    - ``frame`` (in, ``stream.Signature(FrameEnd, always_ready=True)``): the end of each host frame
      (:class:`~lowbit.hw.link.layouts.FrameEnd`). A dropped frame is answered NAK(expected). A good DATA
      frame with ``seq`` = expected that was ``stored`` is accepted (its slot joins the ring, ``expected``
      advances); one behind ``expected`` (``(expected - seq) mod 256`` in 1..128) is answered ACK(the last
      delivered seq) if it has been delivered, else ignored (its ACK follows the delivery); any other is
      ignored and answered NAK(expected), once until ``expected`` changes. A good SYNC starts a session.
      ACK, NAK and unknown kinds are ignored.
    - ``full`` (out, 1 bit): every slot holds an accepted frame: the frame beginning now cannot be kept
      (the receiver's ``hold``).
    - ``cmd`` (out, ``stream.Signature(32)``): the accepted frames' words, in order; a frame's first word
      the cycle after it was accepted (or after the frame before it left), one word per cycle while
      ``cmd.ready`` is high.
    - ``reply`` (out, ``stream.Signature(ControlFrame, always_ready=True)``): a frame for the sender:
      ACK(seq) in the cycle ``cmd`` takes a frame's last word (an accepted frame without words: the cycle
      after it is accepted), the answers above, and SYNC(0) on a session start. At most one per cycle:
      SYNC wins, then the ACK of a finished delivery.
    - ``session_start`` (out, 1 bit): a one-cycle pulse in the cycle a good SYNC frame ends: the accepted
      frames are dropped and ``expected`` restarts at 0. For the tile's reset and the other parts of the
      link.

    Latency: the first word is on ``cmd`` one cycle after the frame's end. Throughput: one word per cycle.
    """

    def __init__(self):
        super().__init__(
            {
                "buffer": Out(buffer_write_signature()),
                "frame": In(stream.Signature(FrameEnd, always_ready=True)),
                "full": Out(1),
                "cmd": Out(stream.Signature(32)),
                "reply": Out(stream.Signature(ControlFrame, always_ready=True)),
                "session_start": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.slots = slots = Memory(shape=32, depth=WINDOW_FRAMES * MAX_FRAME_WORDS, init=[])
        write, read = slots.write_port(), slots.read_port()

        head, tail = Signal(SLOT_BITS), Signal(SLOT_BITS)  # the slot delivered / written next
        filled = Signal(range(WINDOW_FRAMES + 1))  # accepted frames not yet delivered
        counts = Array(Signal(range(MAX_FRAME_WORDS + 1), name=f"count{k}") for k in range(WINDOW_FRAMES))
        expected = Signal(8)  # seq of the next host DATA frame to accept
        naked = Signal()  # NAK(expected) has been sent since `expected` last changed
        index = Signal(range(MAX_FRAME_WORDS))  # the word of the head frame on `cmd`
        head_seq = seq_distance(expected, filled)  # the head frame's seq; the last delivered is the one before
        m.d.comb += [
            self.full.eq(filled == WINDOW_FRAMES),
            write.addr.eq(Cat(self.buffer.addr, tail)),
            write.data.eq(self.buffer.data),
            write.en.eq(self.buffer.en),
        ]

        def reply(kind, seq):
            m.d.comb += [self.reply.valid.eq(1), self.reply.payload.kind.eq(kind), self.reply.payload.seq.eq(seq)]

        # --- the end of a host frame ------------------------------------------------------------------
        end = self.frame.payload
        behind = seq_distance(expected, end.seq)
        accept = Signal()
        with m.If(self.frame.valid):
            with m.If(~end.ok):
                reply(FrameKind.NAK, expected)
                m.d.sync += naked.eq(1)
            with m.Elif(end.kind == FrameKind.DATA):
                with m.If((end.seq == expected) & end.stored):
                    m.d.comb += accept.eq(1)
                    m.d.sync += [counts[tail].eq(end.count), tail.eq(tail + 1), expected.eq(expected + 1)]
                    m.d.sync += naked.eq(0)
                with m.Elif(seq_behind(expected, end.seq)):  # a resend of an accepted frame
                    with m.If(behind > filled):  # delivered: acknowledge what has been
                        reply(FrameKind.ACK, (head_seq - 1)[:8])
                with m.Elif(~naked):
                    reply(FrameKind.NAK, expected)
                    m.d.sync += naked.eq(1)
            with m.Elif(end.kind == FrameKind.SYNC):
                m.d.comb += self.session_start.eq(1)

        # --- the head frame's words on cmd -------------------------------------------------------------
        # The read port's address runs one word ahead on a transfer, so ``read.data`` is always the word
        # at ``index`` of the head slot (``index`` rests at 0 between frames).
        count = counts[head]
        waiting = filled != 0
        transfer = self.cmd.valid & self.cmd.ready
        last = Signal()  # the head frame leaves this cycle
        m.d.comb += [
            read.addr.eq(
                Mux(
                    last,
                    Cat(Const(0, BUFFER_ADDR_WIDTH), (head + 1)[:SLOT_BITS]),
                    Cat((index + transfer)[:BUFFER_ADDR_WIDTH], head),
                )
            ),
            self.cmd.payload.eq(read.data),
            self.cmd.valid.eq(waiting & (count != 0)),
        ]
        with m.If(transfer):
            m.d.sync += index.eq(index + 1)
        with m.If(waiting & ((count == 0) | (transfer & (index + 1 == count)))):
            m.d.comb += last.eq(1)
            m.d.sync += [index.eq(0), head.eq(head + 1)]
            reply(FrameKind.ACK, head_seq)  # takes precedence over a frame's answer this cycle
        m.d.sync += filled.eq(filled + accept - last)

        with m.If(self.session_start):  # drop the accepted frames, answer SYNC
            m.d.sync += [index.eq(0), head.eq(0), tail.eq(0), filled.eq(0), expected.eq(0), naked.eq(0)]
            reply(FrameKind.SYNC, 0)
        return m
