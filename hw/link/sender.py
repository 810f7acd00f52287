"""The frame sender of the board's link: :class:`FrameSender`."""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from lowbit.hw.link.crc import crc16_update
from lowbit.hw.link.layouts import Acknowledgement, ControlFrame, buffer_read_signature, seq_behind
from lowbit.sw.protocol.frames import CRC_INIT, MAX_FRAME_WORDS, SOF, FrameKind

__all__ = ["FrameSender"]


class FrameSender(wiring.Component):
    """Frames to the host, byte by byte, with their CRC, and the sending end of the board's stop-and-wait
    (``docs/serial.md``, "Rules"): the DATA frame in the transmit buffer is sent, kept until the host ACKs
    its ``seq``, and sent again on a NAK or when no ACK came within ``ack_timeout_cycles``.

    Ports:

    - ``reply`` (in, ``stream.Signature(ControlFrame, always_ready=True)``): an ACK, NAK or SYNC frame to
      send (:class:`~lowbit.hw.link.layouts.ControlFrame`). One waits at a time: a newer one replaces it,
      except an ACK of a seq before a waiting NAK's (``(nak - ack) mod 256`` from 1 to 128), which is
      dropped: the ACKs are cumulative, and the host goes back on the NAK.
    - ``data`` (in, ``stream.Signature(range(MAX_FRAME_WORDS + 1))``): a DATA frame of ``data.payload``
      words is in the transmit buffer. The transfer happens when the host has ACKed it (the buffer may
      then be refilled); until then the frame is sent and resent from the buffer.
    - ``buffer`` (in, :func:`~lowbit.hw.link.layouts.buffer_read_signature`): the transmit buffer's read
      port (``data`` one cycle after ``addr``).
    - ``ack`` (in, ``stream.Signature(Acknowledgement, always_ready=True)``): a good ACK or NAK frame from
      the host. ACK of the frame's ``seq`` releases it; a NAK (any ``seq``) sends it again. Both count
      only once the frame has been sent.
    - ``restart`` (in, 1 bit): a session starts: the DATA frame's ``seq`` restarts at 0 and an unACKed
      frame is forgotten (the gatherer drops it in the same cycle). A frame already on the way is
      finished.
    - ``o`` (out, ``stream.Signature(8)``): the bytes, for the UART transmitter.
    - ``resent_frames`` (out, 16 bits, wrapping): DATA frames sent again (NAK or timeout).

    Frames go one at a time; at a frame boundary a waiting ACK/NAK/SYNC goes first, then the DATA frame.
    The ACK timeout runs from the cycle after the frame's last byte was taken by ``o``.

    Latency: when the sender is idle, a frame's SOF is offered on ``o`` in the cycle after ``data``
    becomes valid, or two cycles after a ``reply`` transfer. Throughput: a byte every other cycle at
    most (a payload byte is read from the buffer in the cycle after the previous byte was taken); the
    UART is much slower.
    """

    def __init__(self, ack_timeout_cycles):
        if not isinstance(ack_timeout_cycles, int) or isinstance(ack_timeout_cycles, bool) or ack_timeout_cycles < 1:
            raise ValueError(f"ack_timeout_cycles must be a positive integer, not {ack_timeout_cycles!r}")
        self.ack_timeout_cycles = ack_timeout_cycles
        super().__init__(
            {
                "reply": In(stream.Signature(ControlFrame, always_ready=True)),
                "data": In(stream.Signature(range(MAX_FRAME_WORDS + 1))),
                "buffer": In(buffer_read_signature()),
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

        # --- the DATA frame: sent, then kept until ACKed ----------------------------------------------
        seq = Signal(8)  # of the DATA frame in the buffer
        wait = Signal(range(self.ack_timeout_cycles + 1))
        data_due, data_sent = Signal(), Signal()  # the frame should go out / its last byte went out
        acked = self.ack.valid & ~self.ack.payload.nak & (self.ack.payload.seq == seq)
        naked = self.ack.valid & self.ack.payload.nak

        with m.FSM():
            with m.State("SEND"):
                m.d.comb += data_due.eq(self.data.valid)
                with m.If(data_sent & self.data.valid):
                    m.d.sync += wait.eq(0)
                    m.next = "WAIT_ACK"
                with m.If(self.restart):  # last, so it wins
                    m.d.sync += seq.eq(0)
                    m.next = "SEND"
            with m.State("WAIT_ACK"):
                m.d.sync += wait.eq(wait + 1)
                with m.If(acked):
                    m.d.comb += self.data.ready.eq(1)
                    m.d.sync += seq.eq(seq + 1)
                    m.next = "SEND"
                with m.Elif(naked | (wait == self.ack_timeout_cycles)):
                    m.d.sync += self.resent_frames.eq(self.resent_frames + 1)
                    m.next = "SEND"
                with m.If(self.restart):  # last, so it wins
                    m.d.sync += seq.eq(0)
                    m.next = "SEND"

        # --- one frame, byte by byte --------------------------------------------------------------------
        f_kind, f_seq, f_count = Signal(8), Signal(8), Signal(range(MAX_FRAME_WORDS + 1))
        f_index = Signal(range(4 * MAX_FRAME_WORDS))  # payload byte
        f_crc = Signal(16)
        f_data = Signal()  # the frame is the DATA frame of the buffer
        stale = Signal()  # the byte's source (the buffer's read port) settles for one cycle after a byte
        m.d.sync += stale.eq(0)
        taken = self.o.valid & self.o.ready
        m.d.comb += self.buffer.addr.eq(f_index[2:])

        def emit(value, then, checked=True):
            m.d.comb += [self.o.payload.eq(value), self.o.valid.eq(~stale)]
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
                    m.d.sync += [f_kind.eq(FrameKind.DATA), f_seq.eq(seq), f_count.eq(self.data.payload), f_data.eq(1)]
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
