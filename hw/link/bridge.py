"""The board side of the serial link: :class:`LinkBridge` and :class:`LinkTile` (and, from
:mod:`lowbit.hw.link.crc`, :func:`crc16_update`, the CRC as Amaranth logic). The frame format and the
pure-Python CRC are :mod:`lowbit.sw.protocol.frames`, shared with the host side (:mod:`lowbit.sw.host.link`).
``docs/serial.md`` describes the link in prose.

A frame, in both directions (bytes)::

    SOF 0xA5 | kind | seq | count (uint16 LE) | count x word (uint32 LE) | CRC-16 (high byte first)

``kind`` is :class:`FrameKind` (DATA carries words; ACK and NAK have ``count`` 0); ``count`` is at most
:data:`MAX_FRAME_WORDS`; the CRC is CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, no
reflection, no final XOR) of every byte from ``kind`` to the last word byte. Each direction has its own
sequence numbers (0..255, wrapping). Host -> board, up to :data:`WINDOW_FRAMES` DATA frames are in flight
("go back N"): the board accepts the frame of the expected ``seq`` into a free receive slot, delivers
accepted frames in order and answers ACK(seq) after each frame's last word (cumulative); a resend of a
delivered frame is answered ACK(the last delivered), one still waiting is ignored; a frame ahead of the
expected one is ignored and NAKed once; a bad CRC, a ``count`` above the maximum or a frame cut short
(no byte for :data:`INTERBYTE_TIMEOUT` bit times inside a frame) is dropped and answered NAK(expected
seq). Board -> host is "go back N" too: the board sends up to :data:`WINDOW_FRAMES` DATA frames without
waiting, keeps each until it is ACKed (cumulative) and sends the unacknowledged ones again from the NAKed
frame, or from the oldest after a timeout. A
session starts with SYNC: the board drops the frame it was delivering and the DATA frame it held,
resets the tile behind it and both sequence numbers to 0, and answers SYNC; a host (re)starting against a board in
any state is then in step with it.
"""

from amaranth.hdl import Module, ResetInserter
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from lowbit.hw.link.crc import crc16_update
from lowbit.hw.link.delivery import FrameDelivery
from lowbit.hw.link.gatherer import WordGatherer
from lowbit.hw.link.receiver import FrameReceiver
from lowbit.hw.link.sender import FrameSender
from lowbit.hw.link.uart import UARTReceiver, UARTTransmitter, check_divisor
from lowbit.sw.protocol.frames import (
    ACK_TIMEOUT_BITS,
    BITS_PER_CHARACTER,
    FLUSH_IDLE_BITS,
    INTERBYTE_TIMEOUT,
    MAX_FRAME_BYTES,
)

__all__ = ["crc16_update", "LinkBridge", "LinkTile"]


class LinkBridge(wiring.Component):
    """The board side of the serial link: host DATA frames on ``rx`` become words on ``cmd``; words
    from ``resp`` go to the host in DATA frames on ``tx`` (:mod:`lowbit.sw.protocol.frames` has the frame format).

    Ports:

    - ``rx`` (in, 1 bit, idle high), ``tx`` (out, 1 bit, idle high): the 8N1 serial pins,
      ``divisor`` clock cycles per bit (:class:`~lowbit.hw.link.uart.UARTReceiver`,
      :class:`~lowbit.hw.link.uart.UARTTransmitter`).
    - ``cmd`` (out, ``stream.Signature(32)``): the host's words, in order, each exactly once.
    - ``resp`` (in, ``stream.Signature(32)``): words for the host.
    - ``bad_frames``, ``resent_frames``, ``uart_errors`` (out, 16 bits, wrapping): frames received and
      dropped (bad CRC, count too large, cut short), DATA frames sent again (NAK or timeout), and
      characters the UART dropped (framing errors and overruns). For tests and reports.
    - ``fault`` (out, 1 bit): a one-cycle pulse when a frame is dropped or the UART drops a character
      (when ``bad_frames`` or ``uart_errors`` counts): for a sticky error LED that needs no counter.
    - ``session_start`` (out, 1 bit): a one-cycle pulse when a good SYNC frame from the host ends (for
      the reset of the tile behind the bridge: :class:`LinkTile`).

    Host -> tile: a DATA frame is written into a free receive slot (:data:`WINDOW_FRAMES` of
    :data:`MAX_FRAME_WORDS` words) as it arrives and delivered on ``cmd``, in order, only after its CRC
    has been checked, so a bad frame delivers nothing. Its ACK is sent once ``cmd`` has accepted the
    frame's last word: the host's window is the flow control. The host's resends of a frame waiting in
    its slot are ignored; its ACK follows the delivery.

    Tile -> host: words from ``resp`` are gathered into transmit slots (a second Memory of
    :data:`WINDOW_FRAMES` x :data:`MAX_FRAME_WORDS` words). A frame is sent when it is full, or when
    ``resp`` has been idle for ``flush_cycles`` (default :data:`FLUSH_IDLE_BITS` bit times), without
    waiting for the ACKs of the frames before it, and kept until the host ACKs it (or a later one); a
    NAK sends the frames from the NAKed one again, and no ACK within ``ack_timeout_cycles`` (default
    :data:`ACK_TIMEOUT_BITS` bit times) every unacknowledged one. ``resp`` is not ready while every slot
    holds a frame. ACK/NAK frames and DATA frames share the transmitter; a pending ACK/NAK goes first at
    the next frame boundary.

    Latency: a host word reaches ``cmd`` a few cycles after the last CRC byte of its frame has been
    received (the middle of its stop bit). A tile word reaches the wire after at most
    ``flush_cycles`` plus the frame being sent. Throughput: bounded by the line, 10 bit times per byte,
    5 + 4 * count + 2 bytes per DATA frame, and an ACK round trip per window of frames in each direction.

    Structure: the UART (:class:`~lowbit.hw.link.uart.UARTReceiver`,
    :class:`~lowbit.hw.link.uart.UARTTransmitter`) and four parts, each a component tested on its own:
    :class:`~lowbit.hw.link.receiver.FrameReceiver` (bytes -> checked frames),
    :class:`~lowbit.hw.link.delivery.FrameDelivery` (the receive slots, the host's ``seq``, ``cmd``,
    the answers ACK/NAK/SYNC), :class:`~lowbit.hw.link.gatherer.WordGatherer` (the transmit buffer,
    ``resp``, the flush) and :class:`~lowbit.hw.link.sender.FrameSender` (frames onto the line, the
    board's window). This component only connects them.
    """

    def __init__(self, divisor, *, ack_timeout_cycles=None, flush_cycles=None):
        self.divisor = check_divisor(divisor)
        self.ack_timeout_cycles = self._cycles(
            "ack_timeout_cycles",
            ack_timeout_cycles,
            ACK_TIMEOUT_BITS * divisor,
            MAX_FRAME_BYTES * BITS_PER_CHARACTER * divisor,
        )
        self.flush_cycles = self._cycles("flush_cycles", flush_cycles, FLUSH_IDLE_BITS * divisor, 1)
        self.interbyte_timeout_cycles = INTERBYTE_TIMEOUT * divisor
        super().__init__(
            {
                "rx": In(1, init=1),
                "tx": Out(1, init=1),
                "cmd": Out(stream.Signature(32)),
                "resp": In(stream.Signature(32)),
                "bad_frames": Out(16),
                "resent_frames": Out(16),
                "uart_errors": Out(16),
                "fault": Out(1),
                "session_start": Out(1),
            }
        )

    @staticmethod
    def _cycles(name, value, default, minimum):
        if value is None:
            return default
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ValueError(f"{name} must be an integer of at least {minimum} cycles, not {value!r}")
        return value

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = uart_rx = UARTReceiver(self.divisor)
        m.submodules.uart_tx = uart_tx = UARTTransmitter(self.divisor)
        m.submodules.receiver = receiver = FrameReceiver(self.interbyte_timeout_cycles)
        m.submodules.delivery = delivery = FrameDelivery()
        m.submodules.gatherer = gatherer = WordGatherer(self.flush_cycles)
        m.submodules.sender = sender = FrameSender(self.ack_timeout_cycles)

        # host -> tile
        m.d.comb += uart_rx.rx.eq(self.rx)
        wiring.connect(m, uart_rx.o, receiver.i)
        wiring.connect(m, receiver.buffer, delivery.buffer)
        wiring.connect(m, receiver.frame, delivery.frame)
        m.d.comb += receiver.hold.eq(delivery.full)
        wiring.connect(m, delivery.cmd, wiring.flipped(self.cmd))

        # tile -> host
        wiring.connect(m, wiring.flipped(self.resp), gatherer.i)
        wiring.connect(m, gatherer.buffer, sender.buffer)
        m.d.comb += [
            sender.frames.eq(gatherer.frames),
            gatherer.slot.eq(sender.slot),
            sender.count.eq(gatherer.count),
            gatherer.release.eq(sender.release),
        ]
        wiring.connect(m, delivery.reply, sender.reply)
        wiring.connect(m, receiver.ack, sender.ack)
        wiring.connect(m, sender.o, uart_tx.i)
        m.d.comb += self.tx.eq(uart_tx.tx)

        # a session starts
        m.d.comb += [
            self.session_start.eq(delivery.session_start),
            gatherer.clear.eq(delivery.session_start),
            sender.restart.eq(delivery.session_start),
        ]

        m.d.comb += [
            self.bad_frames.eq(receiver.bad_frames),
            self.resent_frames.eq(sender.resent_frames),
            self.uart_errors.eq(uart_rx.framing_errors + uart_rx.overruns),
            self.fault.eq((receiver.frame.valid & ~receiver.frame.payload.ok) | uart_rx.error),
        ]
        return m


class LinkTile(wiring.Component):
    """:class:`LinkBridge` wired to a :class:`lowbit.hw.tile.tile.Tile`: the tile's command words arrive in
    frames on ``rx``, its responses leave in frames on ``tx``. A board's top level is this plus its
    pins, clock and LEDs.

    Ports: ``rx`` (in, idle high), ``tx`` (out, idle high), 8N1 at ``divisor`` cycles per bit; the
    bridge's ``bad_frames``, ``resent_frames``, ``uart_errors`` counters (16 bits each) and ``fault``
    pulse. Latency and
    throughput: those of :class:`LinkBridge` plus the tile's (``docs/protocol.md``).
    """

    def __init__(self, geometry, divisor, **bridge_options):
        from lowbit.hw.tile.tile import Tile

        self.tile = Tile(geometry)
        self.bridge = LinkBridge(divisor, **bridge_options)
        self.geometry = geometry
        super().__init__(
            {
                "rx": In(1, init=1),
                "tx": Out(1, init=1),
                "bad_frames": Out(16),
                "resent_frames": Out(16),
                "uart_errors": Out(16),
                "fault": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.bridge = bridge = self.bridge
        # A SYNC frame resets the tile (a host that restarts may have left a command half sent).
        m.submodules.tile = ResetInserter(bridge.session_start)(self.tile)
        tile = self.tile
        wiring.connect(m, bridge.cmd, tile.i)
        wiring.connect(m, tile.o, bridge.resp)
        m.d.comb += [
            bridge.rx.eq(self.rx),
            self.tx.eq(bridge.tx),
            self.bad_frames.eq(bridge.bad_frames),
            self.resent_frames.eq(bridge.resent_frames),
            self.uart_errors.eq(bridge.uart_errors),
            self.fault.eq(bridge.fault),
        ]
        return m
