"""The frame receiver of the board's link: :class:`FrameReceiver`."""

from contextlib import contextmanager

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from lowbit.hw.link.crc import crc16_update
from lowbit.hw.link.layouts import Acknowledgement, FrameEnd, buffer_write_signature
from lowbit.sw.protocol.frames import CRC_INIT, MAX_FRAME_WORDS, SOF, FrameKind

__all__ = ["FrameReceiver"]


class FrameReceiver(wiring.Component):
    """Bytes from the host (the UART receiver's stream) -> checked frames (``docs/serial.md``, "Frames").

    Ports:

    - ``i`` (in, ``stream.Signature(8)``): the received bytes; always ready (a byte is taken the cycle it
      is valid).
    - ``hold`` (in, 1 bit): no receive slot is free (each holds a frame waiting for delivery); sampled at
      a frame's SOF: a DATA frame that begins while it is high writes nothing and ends with ``stored`` 0.
    - ``buffer`` (in, :func:`~lowbit.hw.link.layouts.buffer_write_signature`): the write port of the
      receive slot the frame goes to; word ``k`` of a DATA frame is written to address ``k`` in the cycle
      its last byte arrives, before the CRC is known.
    - ``frame`` (out, ``stream.Signature(FrameEnd, always_ready=True)``): one transfer per frame, in the
      cycle it ends: its last CRC byte arrived (``ok`` is the CRC check), or it was dropped (``ok`` 0):
      ``count`` above :data:`MAX_FRAME_WORDS` (at its second count byte) or no byte for ``timeout_cycles``
      inside it (the cycle after the silence reached the limit). :class:`~lowbit.hw.link.layouts.FrameEnd`.
    - ``ack`` (out, ``stream.Signature(Acknowledgement, always_ready=True)``): a good ACK or NAK frame, in
      the same cycle as its ``frame`` transfer.
    - ``bad_frames`` (out, 16 bits, wrapping): the frames dropped (``frame`` transfers with ``ok`` 0).

    Bytes outside a frame that are not SOF are skipped. The CRC register runs along with the bytes, so the
    check costs no time. Latency: ``frame`` (and ``ack``) are valid combinationally in the cycle the last
    CRC byte is valid on ``i``. Throughput: one byte per cycle.
    """

    def __init__(self, timeout_cycles):
        if not isinstance(timeout_cycles, int) or isinstance(timeout_cycles, bool) or timeout_cycles < 1:
            raise ValueError(f"timeout_cycles must be a positive integer, not {timeout_cycles!r}")
        self.timeout_cycles = timeout_cycles
        super().__init__(
            {
                "i": In(stream.Signature(8)),
                "hold": In(1),
                "buffer": In(buffer_write_signature()),
                "frame": Out(stream.Signature(FrameEnd, always_ready=True)),
                "ack": Out(stream.Signature(Acknowledgement, always_ready=True)),
                "bad_frames": Out(16),
            }
        )

    def elaborate(self, platform):
        m = Module()
        byte, got = self.i.payload, self.i.valid
        m.d.comb += self.i.ready.eq(1)

        kind, seq, count = Signal(8), Signal(8), Signal(16)
        index = Signal(range(4 * MAX_FRAME_WORDS))  # payload byte of the frame
        word = Signal(32)  # the last bytes of the payload, the newest in the top byte
        crc = Signal(16, init=CRC_INIT)
        stored = Signal()  # the buffer was free when the frame began
        gap = Signal(range(self.timeout_cycles + 1))  # cycles since the frame's last byte
        crc_next = crc16_update(crc, byte)
        new_count = Cat(count[:8], byte)

        end = self.frame.payload
        m.d.comb += [end.kind.eq(kind), end.seq.eq(seq), end.count.eq(count), end.stored.eq(stored)]
        m.d.comb += [self.ack.payload.seq.eq(seq), self.ack.payload.nak.eq(kind == FrameKind.NAK)]
        with m.If(self.frame.valid & ~end.ok):
            m.d.sync += self.bad_frames.eq(self.bad_frames + 1)

        def drop():
            m.d.comb += self.frame.valid.eq(1)  # ``ok`` stays 0
            m.next = "HUNT"

        @contextmanager
        def in_frame(state):
            """A state inside a frame: the body runs when a byte arrives (the CRC register takes it as
            well); a silence of ``timeout_cycles`` drops the frame."""
            with m.State(state):
                with m.If(got):
                    m.d.sync += [gap.eq(0), crc.eq(crc_next)]
                    yield
                with m.Elif(gap == self.timeout_cycles):
                    drop()
                with m.Else():
                    m.d.sync += gap.eq(gap + 1)

        with m.FSM():
            with m.State("HUNT"):
                with m.If(got & (byte == SOF)):
                    m.d.sync += [crc.eq(CRC_INIT), gap.eq(0), stored.eq(~self.hold)]
                    m.next = "KIND"
            with in_frame("KIND"):
                m.d.sync += kind.eq(byte)
                m.next = "SEQ"
            with in_frame("SEQ"):
                m.d.sync += seq.eq(byte)
                m.next = "COUNT_LOW"
            with in_frame("COUNT_LOW"):
                m.d.sync += count[:8].eq(byte)
                m.next = "COUNT_HIGH"
            with in_frame("COUNT_HIGH"):
                m.d.sync += [count.eq(new_count), index.eq(0)]
                with m.If(new_count > MAX_FRAME_WORDS):
                    drop()
                with m.Elif(new_count == 0):
                    m.next = "CRC_HIGH"
                with m.Else():
                    m.next = "PAYLOAD"
            with in_frame("PAYLOAD"):
                m.d.sync += [word.eq(Cat(word[8:], byte)), index.eq(index + 1)]
                with m.If((index[:2] == 3) & (kind == FrameKind.DATA) & stored):
                    m.d.comb += [
                        self.buffer.addr.eq(index[2:]),
                        self.buffer.data.eq(Cat(word[8:], byte)),
                        self.buffer.en.eq(1),
                    ]
                with m.If(index + 1 == count * 4):
                    m.next = "CRC_HIGH"
            with in_frame("CRC_HIGH"):
                m.next = "CRC_LOW"
            with in_frame("CRC_LOW"):
                m.d.comb += [self.frame.valid.eq(1), end.ok.eq(crc_next == 0)]
                with m.If((crc_next == 0) & ((kind == FrameKind.ACK) | (kind == FrameKind.NAK))):
                    m.d.comb += self.ack.valid.eq(1)
                m.next = "HUNT"
        return m
