"""The frame sender of the board's link: :class:`FrameSender`."""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from lowbit.hw.link.crc import crc16_update
from lowbit.hw.link.layouts import (
    SLOT_BITS,
    Acknowledgement,
    ControlFrame,
    seq_behind,
    seq_distance,
    slots_read_signature,
)
from lowbit.sw.protocol.frames import CRC_INIT, MAX_FRAME_WORDS, SOF, WINDOW_FRAMES, FrameKind

__all__ = ["FrameSender"]


class FrameSender(wiring.Component):
    """Frames to the host, byte by byte, with their CRC, and the sending end of the board's window of
    DATA frames ("go back N", ``docs/serial.md``, "Rules"): the frames the gatherer holds are sent in
    order, up to :data:`WINDOW_FRAMES` unacknowledged; each is kept until the host acknowledges it (an ACK
    is cumulative), and on a NAK, or when no ACK came within ``ack_timeout_cycles``, the frames from the
    one the host expects (the oldest, on a timeout) are sent again.

    Ports:

    - ``reply`` (in, ``stream.Signature(ControlFrame, always_ready=True)``): an ACK, NAK or SYNC frame to
      send (:class:`~lowbit.hw.link.layouts.ControlFrame`). One waits at a time: a newer one replaces it,
      except an ACK of a seq before a waiting NAK's (``(nak - ack) mod 256`` from 1 to 128), which is
      dropped: the ACKs are cumulative, and the host goes back on the NAK.
    - ``frames`` (in, ``range(WINDOW_FRAMES + 1)``), ``slot`` (out), ``count`` (in), ``release`` (out),
      ``buffer`` (in, :func:`~lowbit.hw.link.layouts.slots_read_signature`): the gatherer's transmit
      slots (:class:`~lowbit.hw.link.gatherer.WordGatherer`): the frames held, the words of the frame in
      ``slot``, how many of the oldest frames are acknowledged this cycle, and the slots' read port
      (``data`` one cycle after ``addr``). The frame of seq ``s`` is in slot ``s mod WINDOW_FRAMES``.
    - ``ack`` (in, ``stream.Signature(Acknowledgement, always_ready=True)``): a good ACK or NAK frame from
      the host. ACK(s) of a frame sent and not yet acknowledged releases it and every earlier one;
      NAK(e) of such a frame, or of the frame after the last one sent, releases the frames before it and
      sends the frames from ``e`` again. Any other ACK or NAK is ignored.
    - ``restart`` (in, 1 bit): a session starts: the DATA frames' ``seq`` restarts at 0 and the unACKed
      frames are forgotten (the gatherer drops them in the same cycle). A frame already on the way is
      finished.
    - ``o`` (out, ``stream.Signature(8)``): the bytes, for the UART transmitter.
    - ``resent_frames`` (out, 16 bits, wrapping): DATA frames sent again (after a NAK or a timeout).

    At a frame boundary a waiting ACK/NAK/SYNC goes first, then the next DATA frame. The ACK timeout
    runs while frames are unacknowledged and no frame is being sent, from the cycle after the last byte
    of a DATA frame or the last acknowledgement that released one.

    Latency: when the sender is idle, a frame's SOF is offered on ``o`` in the cycle after ``frames``
    grows, or two cycles after a ``reply`` transfer. Throughput: a byte every other cycle at most (a
    payload byte is read from the slots in the cycle after the previous byte was taken); the UART is
    much slower.
    """

    def __init__(self, ack_timeout_cycles):
        if not isinstance(ack_timeout_cycles, int) or isinstance(ack_timeout_cycles, bool) or ack_timeout_cycles < 1:
            raise ValueError(f"ack_timeout_cycles must be a positive integer, not {ack_timeout_cycles!r}")
        self.ack_timeout_cycles = ack_timeout_cycles
        super().__init__(
            {
                "reply": In(stream.Signature(ControlFrame, always_ready=True)),
                "frames": In(range(WINDOW_FRAMES + 1)),
                "slot": Out(SLOT_BITS),
                "count": In(range(MAX_FRAME_WORDS + 1)),
                "release": Out(range(WINDOW_FRAMES + 1)),
                "buffer": In(slots_read_signature()),
                "ack": In(stream.Signature(Acknowledgement, always_ready=True)),
                "restart": In(1),
                "o": Out(stream.Signature(8)),
                "resent_frames": Out(16),
            }
        )

    def elaborate(self, platform):
        m = Module()

        # --- the ACK/NAK/SYNC frame waiting for the byte sender (a newer one replaces it, except that an
        # ACK of a frame before a waiting NAK's is dropped: the host's window goes back on the NAK, and
        # the ACK of the resent frames covers the earlier ones) -------------------------------------------
        control_waiting, control = Signal(), Signal(ControlFrame)
        control_taken = Signal()
        reply = self.reply.payload
        keep_nak = control_waiting & ~control_taken & (control.kind == FrameKind.NAK)
        keep_nak &= (reply.kind == FrameKind.ACK) & seq_behind(control.seq, reply.seq)
        with m.If(control_taken):
            m.d.sync += control_waiting.eq(0)
        with m.If(self.reply.valid & ~keep_nak):
            m.d.sync += [control_waiting.eq(1), control.eq(self.reply.payload)]

        # --- the window of DATA frames: base (the oldest unacknowledged) .. next (the next to send) ------
        base, next_seq = Signal(8), Signal(8)
        top = Signal(8)  # one after the last seq ever sent: a frame sent before it is a resend
        sent = seq_distance(next_seq, base)  # frames sent and not acknowledged (0 .. WINDOW_FRAMES)
        wait = Signal(range(self.ack_timeout_cycles + 1))
        data_sent, sending = Signal(), Signal()  # a DATA frame's last byte went out / a frame is on its way
        distance = seq_distance(self.ack.payload.seq, base)  # of the acknowledged seq from the base
        acked = self.ack.valid & ~self.ack.payload.nak & (distance < sent)
        naked = self.ack.valid & self.ack.payload.nak & (distance <= sent)
        data_due = sent < self.frames
        start_data = Signal()  # the byte sender starts the DATA frame of seq `next_seq`
        m.d.comb += self.slot.eq(next_seq[:SLOT_BITS])
        with m.If(start_data):
            m.d.sync += next_seq.eq(next_seq + 1)
            with m.If(next_seq == top):
                m.d.sync += top.eq(next_seq + 1)
            with m.Else():
                m.d.sync += self.resent_frames.eq(self.resent_frames + 1)

        timeout = wait == self.ack_timeout_cycles
        with m.If(data_sent | acked | naked | (sent == 0) | timeout):
            m.d.sync += wait.eq(0)
        with m.Elif(~sending):
            m.d.sync += wait.eq(wait + 1)
        with m.If(acked):
            m.d.comb += self.release.eq(distance + 1)
            m.d.sync += base.eq(self.ack.payload.seq + 1)
        with m.If(naked):
            m.d.comb += self.release.eq(distance)
            m.d.sync += base.eq(self.ack.payload.seq)
            with m.If(distance != sent):  # go back (a NAK of the frame after the last sent only releases)
                m.d.sync += next_seq.eq(self.ack.payload.seq)
        with m.Elif(timeout & ~acked):
            m.d.sync += next_seq.eq(base)
        with m.If(self.restart):  # last, so it wins
            m.d.comb += self.release.eq(0)
            m.d.sync += [base.eq(0), next_seq.eq(0), top.eq(0), wait.eq(0)]

        # --- one frame, byte by byte --------------------------------------------------------------------
        f_kind, f_seq, f_count = Signal(8), Signal(8), Signal(range(MAX_FRAME_WORDS + 1))
        f_index = Signal(range(4 * MAX_FRAME_WORDS))  # payload byte
        f_crc = Signal(16)
        f_data = Signal()  # the frame is a DATA frame
        stale = Signal()  # the byte's source (the slots' read port) settles for one cycle after a byte
        m.d.sync += stale.eq(0)
        taken = self.o.valid & self.o.ready
        m.d.comb += self.buffer.addr.eq(Cat(f_index[2:], f_seq[:SLOT_BITS]))

        def emit(value, then, checked=True):
            m.d.comb += [self.o.payload.eq(value), self.o.valid.eq(~stale), sending.eq(1)]
            with m.If(taken):
                m.d.sync += stale.eq(1)
                if checked:
                    m.d.sync += f_crc.eq(crc16_update(f_crc, self.o.payload))
                m.next = then

        with m.FSM():
            with m.State("IDLE"):
                m.d.sync += [f_crc.eq(CRC_INIT), f_index.eq(0)]
                with m.If(control_waiting):
                    m.d.comb += control_taken.eq(1)
                    m.d.sync += [f_kind.eq(control.kind), f_seq.eq(control.seq), f_count.eq(0), f_data.eq(0)]
                    m.next = "SOF"
                with m.Elif(data_due):
                    m.d.comb += start_data.eq(1)
                    m.d.sync += [f_kind.eq(FrameKind.DATA), f_seq.eq(next_seq), f_count.eq(self.count), f_data.eq(1)]
                    m.next = "SOF"
            with m.State("SOF"):
                emit(SOF, "KIND", checked=False)
            with m.State("KIND"):
                emit(f_kind, "SEQ")
            with m.State("SEQ"):
                emit(f_seq, "COUNT_LOW")
            with m.State("COUNT_LOW"):
                emit(f_count, "COUNT_HIGH")
            with m.State("COUNT_HIGH"):
                emit(0, "PAYLOAD")
                with m.If(taken & (f_count == 0)):
                    m.next = "CRC_HIGH"
            with m.State("PAYLOAD"):
                emit(self.buffer.data.word_select(f_index[:2], 8), "PAYLOAD")
                with m.If(taken):
                    m.d.sync += f_index.eq(f_index + 1)
                    with m.If(f_index + 1 == f_count * 4):
                        m.next = "CRC_HIGH"
            with m.State("CRC_HIGH"):
                emit(f_crc[8:], "CRC_LOW", checked=False)
            with m.State("CRC_LOW"):
                emit(f_crc[:8], "IDLE", checked=False)
                with m.If(taken):
                    m.d.comb += data_sent.eq(f_data)
        return m
