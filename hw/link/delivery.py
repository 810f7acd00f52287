"""The delivery stage of the board's link: :class:`FrameDelivery`."""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from lowbit.hw.link.layouts import ControlFrame, FrameEnd, buffer_write_signature
from lowbit.sw.protocol.frames import MAX_FRAME_WORDS, FrameKind

__all__ = ["FrameDelivery"]


class FrameDelivery(wiring.Component):
    """The receiving end of the host's stop-and-wait: the receive buffer, the ``seq`` expected next, the
    delivery of a checked DATA frame's words on ``cmd`` and the answers to the host's frames
    (``docs/serial.md``, "Rules").

    Ports:

    - ``buffer`` (out, :func:`~lowbit.hw.link.layouts.buffer_write_signature`): the write port of the
      receive buffer (a Memory of :data:`MAX_FRAME_WORDS` words), for the frame receiver.
    - ``frame`` (in, ``stream.Signature(FrameEnd, always_ready=True)``): the end of each host frame
      (:class:`~lowbit.hw.link.layouts.FrameEnd`). A dropped frame is answered NAK(expected). A good DATA
      frame with ``seq`` = expected is delivered (one without words is answered ACK(seq) at once and
      ``expected`` advances); with ``seq`` = expected - 1 (its ACK was lost) it is answered ACK(seq) and
      not delivered; any other, and one not ``stored`` (a resend that arrived while the buffer was being
      delivered), is ignored. A good SYNC starts a session. ACK, NAK and unknown kinds are ignored.
    - ``busy`` (out, 1 bit): a frame is being delivered: the buffer must not be written.
    - ``cmd`` (out, ``stream.Signature(32)``): the delivered frame's words, in order; ``valid`` from the
      cycle after its ``frame`` transfer, one word per cycle while ``cmd.ready`` is high.
    - ``reply`` (out, ``stream.Signature(ControlFrame, always_ready=True)``): a frame for the sender:
      ACK(seq) in the cycle ``cmd`` accepts a frame's last word (which then advances ``expected``), the
      immediate ACK/NAK answers above, and SYNC(0) on a session start. At most one per cycle: SYNC wins,
      then the ACK of a finished delivery.
    - ``session_start`` (out, 1 bit): a one-cycle pulse in the cycle a good SYNC frame ends: the frame
      being delivered is dropped and ``expected`` restarts at 0. For the tile's reset and the other parts
      of the link.

    Latency: the first word is on ``cmd`` one cycle after the frame's end. Throughput: one word per cycle.
    """

    def __init__(self):
        super().__init__(
            {
                "buffer": Out(buffer_write_signature()),
                "frame": In(stream.Signature(FrameEnd, always_ready=True)),
                "busy": Out(1),
                "cmd": Out(stream.Signature(32)),
                "reply": Out(stream.Signature(ControlFrame, always_ready=True)),
                "session_start": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.buffer = buffer = Memory(shape=32, depth=MAX_FRAME_WORDS, init=[])
        wiring.connect(m, wiring.flipped(self.buffer), buffer.write_port())
        read = buffer.read_port()

        expected = Signal(8)  # seq of the next host DATA frame to deliver
        delivering = self.busy
        count, index = Signal(range(MAX_FRAME_WORDS + 1)), Signal(range(MAX_FRAME_WORDS))
        delivered_seq = Signal(8)

        def reply(kind, seq):
            m.d.comb += [self.reply.valid.eq(1), self.reply.payload.kind.eq(kind), self.reply.payload.seq.eq(seq)]

        # --- the end of a host frame ------------------------------------------------------------------
        end = self.frame.payload
        with m.If(self.frame.valid):
            with m.If(~end.ok):
                reply(FrameKind.NAK, expected)
            with m.Elif(end.kind == FrameKind.DATA):
                with m.If(delivering | ~end.stored):
                    pass  # a resend of the frame being delivered: its ACK follows the delivery
                with m.Elif(end.seq == expected):
                    with m.If(end.count == 0):
                        reply(FrameKind.ACK, end.seq)
                        m.d.sync += expected.eq(expected + 1)
                    with m.Else():
                        m.d.sync += [delivering.eq(1), count.eq(end.count), delivered_seq.eq(end.seq)]
                with m.Elif(end.seq == (expected - 1)[:8]):
                    reply(FrameKind.ACK, end.seq)  # its ACK was lost: again, no delivery
            with m.Elif(end.kind == FrameKind.SYNC):
                m.d.comb += self.session_start.eq(1)

        # --- the checked frame's words on cmd ----------------------------------------------------------
        # The read port's address runs one word ahead on a transfer, so ``read.data`` is always the word
        # at ``index`` (which rests at 0 between frames).
        transfer = self.cmd.valid & self.cmd.ready
        m.d.comb += [read.addr.eq(index + transfer), self.cmd.payload.eq(read.data), self.cmd.valid.eq(delivering)]
        with m.If(transfer):
            m.d.sync += index.eq(index + 1)
            with m.If(index + 1 == count):
                m.d.sync += [index.eq(0), delivering.eq(0), expected.eq(delivered_seq + 1)]
                reply(FrameKind.ACK, delivered_seq)  # takes precedence over a NAK this cycle

        with m.If(self.session_start):  # drop the frame being delivered, answer SYNC
            m.d.sync += [index.eq(0), delivering.eq(0), expected.eq(0)]
            reply(FrameKind.SYNC, 0)
        return m
