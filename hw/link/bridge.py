"""The board side of the serial link: the CRC as Amaranth logic, :class:`LinkBridge` and :class:`LinkTile`.
The frame format and the pure-Python CRC are :mod:`lowbit.sw.protocol.frames`, shared with the host side
(:mod:`lowbit.sw.host.link`). ``docs/serial.md`` describes the link in prose.

A frame, in both directions (bytes)::

    SOF 0xA5 | kind | seq | count (uint16 LE) | count x word (uint32 LE) | CRC-16 (high byte first)

``kind`` is :class:`FrameKind` (DATA carries words; ACK and NAK have ``count`` 0); ``count`` is at most
:data:`MAX_FRAME_WORDS`; the CRC is CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, no
reflection, no final XOR) of every byte from ``kind`` to the last word byte. Each direction is
stop-and-wait with its own sequence numbers (0..255, wrapping): a receiver delivers a good DATA frame
with the expected ``seq`` once and answers ACK(seq); the previous ``seq`` again (its ACK was lost) is
answered ACK(seq) and not delivered; a bad CRC, a ``count`` above the maximum or a frame cut short (no
byte for :data:`INTERBYTE_TIMEOUT` bit times inside a frame) is dropped and answered NAK(expected seq).
A sender keeps its last DATA frame until it is ACKed and resends it on NAK or after a timeout. A
session starts with SYNC: the board drops whatever it was sending or delivering, resets the tile
behind it and both sequence numbers to 0, and answers SYNC; a host (re)starting against a board in
any state is then in step with it.
"""

from amaranth.hdl import Cat, Module, ResetInserter, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from lowbit.hw.link.uart import UARTReceiver, UARTTransmitter, check_divisor
from lowbit.sw.protocol.frames import (
    ACK_TIMEOUT_BITS,
    BITS_PER_CHARACTER,
    CRC_INIT,
    CRC_POLY,
    FLUSH_IDLE_BITS,
    INTERBYTE_TIMEOUT,
    MAX_FRAME_BYTES,
    MAX_FRAME_WORDS,
    SOF,
    FrameKind,
)

__all__ = ["crc16_update", "LinkBridge", "LinkTile"]


def _crc16_taps():
    """The CRC step as XOR equations: for each bit of the next register, a 24-bit mask of the inputs it
    XORs (bits 0..15: the register, 16..23: the byte). The CRC is linear, so running :func:`crc16`'s loop
    on symbolic bits (each a mask of inputs) gives them."""
    crc = [1 << k for k in range(16)]
    for k in range(7, -1, -1):
        feedback = crc[15] ^ (1 << (16 + k))
        crc = [(crc[j - 1] if j else 0) ^ (feedback if (CRC_POLY >> j) & 1 else 0) for j in range(16)]
    return crc


_CRC16_TAPS = _crc16_taps()


def crc16_update(crc, byte):
    """Amaranth: the CRC-16/CCITT-FALSE register ``crc`` (16 bits) after the 8-bit value ``byte``, most
    significant bit first, as one XOR of inputs per bit; the same arithmetic as
    :func:`lowbit.sw.protocol.frames.crc16`."""
    inputs = Cat(crc, byte)
    return Cat(*(_xor(inputs[k] for k in range(24) if (mask >> k) & 1) for mask in _CRC16_TAPS))


def _xor(bits):
    bits = list(bits)
    value = bits[0]
    for bit in bits[1:]:
        value = value ^ bit
    return value


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
      characters the UART dropped (framing errors and overruns). For status LEDs and tests.

    Host -> tile: a DATA frame is written into a buffer (a Memory of :data:`MAX_FRAME_WORDS` words) as it
    arrives and delivered on ``cmd`` only after its CRC has been checked, so a bad frame delivers
    nothing. Its ACK is sent once ``cmd`` has accepted the frame's last word: the host's stop-and-wait
    is the flow control. While a frame is being delivered, further DATA frames (the host's resends of
    it) are dropped silently; its ACK follows the delivery.

    Tile -> host: words from ``resp`` are gathered into a buffer (a second Memory of
    :data:`MAX_FRAME_WORDS` words). The frame is sent when it is full, or when ``resp`` has been idle
    for ``flush_cycles`` (default :data:`FLUSH_IDLE_BITS` bit times), and kept until the host ACKs its
    ``seq``; a NAK, or no ACK within ``ack_timeout_cycles`` of its last byte (default
    :data:`ACK_TIMEOUT_BITS` bit times), sends it again. ``resp`` is not ready while a frame waits for
    its ACK. ACK/NAK frames and DATA frames share the transmitter; a pending ACK/NAK goes first at the
    next frame boundary.

    Latency: a host word reaches ``cmd`` a few cycles after the last CRC byte of its frame has been
    received (the middle of its stop bit). A tile word reaches the wire after at most
    ``flush_cycles`` plus the frame being sent. Throughput: bounded by the line, 10 bit times per byte,
    5 + 4 * count + 2 bytes per DATA frame, and one ACK round trip per frame in each direction.
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
        m.submodules.receiver = receiver = UARTReceiver(self.divisor)
        m.submodules.transmitter = transmitter = UARTTransmitter(self.divisor)
        m.d.comb += [receiver.rx.eq(self.rx), self.tx.eq(transmitter.tx)]
        m.d.comb += self.uart_errors.eq(receiver.framing_errors + receiver.overruns)

        m.submodules.rx_buffer = rx_mem = Memory(shape=32, depth=MAX_FRAME_WORDS, init=[])
        m.submodules.tx_buffer = tx_mem = Memory(shape=32, depth=MAX_FRAME_WORDS, init=[])
        rx_wr, rx_rd = rx_mem.write_port(), rx_mem.read_port()
        tx_wr, tx_rd = tx_mem.write_port(), tx_mem.read_port()

        # --- requests between the parts ---------------------------------------------------------------
        ctl_request = Signal()  # queue an ACK/NAK frame (comb, this cycle)
        ctl_request_kind, ctl_request_seq = Signal(8), Signal(8)
        ack_seen, nak_seen, seen_seq = Signal(), Signal(), Signal(8)  # a good ACK/NAK arrived

        def request(kind, seq):
            return [ctl_request.eq(1), ctl_request_kind.eq(kind), ctl_request_seq.eq(seq)]

        expected = Signal(8)  # seq of the next host DATA frame to deliver
        delivering = Signal()
        deliver_count, deliver_index = Signal(range(MAX_FRAME_WORDS + 1)), Signal(range(MAX_FRAME_WORDS))
        deliver_seq = Signal(8)

        # --- receive: parse frames ----------------------------------------------------------------------
        byte, got = receiver.o.payload, receiver.o.valid
        m.d.comb += receiver.o.ready.eq(1)
        kind, seq, count = Signal(8), Signal(8), Signal(16)
        index = Signal(range(4 * MAX_FRAME_WORDS))  # payload byte of the frame
        word = Signal(32)
        crc = Signal(16, init=CRC_INIT)
        writable = Signal()  # the buffer was free when the frame began
        gap = Signal(range(self.interbyte_timeout_cycles + 1))
        crc_next = crc16_update(crc, byte)
        new_count = Cat(count[:8], byte)

        def drop():
            """Drop the frame: NAK(expected)."""
            return request(FrameKind.NAK, expected), [self.bad_frames.eq(self.bad_frames + 1)]

        with m.FSM():
            with m.State("HUNT"):
                with m.If(got & (byte == SOF)):
                    m.d.sync += [crc.eq(CRC_INIT), gap.eq(0), writable.eq(~delivering)]
                    m.next = "KIND"

            def in_frame(state):
                """A state inside a frame: on a byte, update the CRC and run ``state``'s body (yielded);
                on a long silence, drop the frame."""
                return _InFrame(m, state, got, gap, self.interbyte_timeout_cycles, crc, crc_next, drop)

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
                    comb, sync = drop()
                    m.d.comb += comb
                    m.d.sync += sync
                    m.next = "HUNT"
                with m.Elif(new_count == 0):
                    m.next = "CRC_HIGH"
                with m.Else():
                    m.next = "PAYLOAD"
            with in_frame("PAYLOAD"):
                m.d.sync += [word.eq(Cat(word[8:], byte)), index.eq(index + 1)]
                with m.If((index[:2] == 3) & (kind == FrameKind.DATA) & writable):
                    m.d.comb += [rx_wr.addr.eq(index[2:]), rx_wr.data.eq(Cat(word[8:], byte)), rx_wr.en.eq(1)]
                with m.If(index + 1 == count * 4):
                    m.next = "CRC_HIGH"
            with in_frame("CRC_HIGH"):
                m.next = "CRC_LOW"
            with in_frame("CRC_LOW"):
                m.next = "HUNT"
                with m.If(crc_next != 0):
                    comb, sync = drop()
                    m.d.comb += comb
                    m.d.sync += sync
                with m.Elif(kind == FrameKind.DATA):
                    with m.If(delivering | ~writable):
                        pass  # a resend of the frame being delivered: its ACK follows
                    with m.Elif(seq == expected):
                        with m.If(count == 0):
                            m.d.comb += request(FrameKind.ACK, seq)
                            m.d.sync += expected.eq(expected + 1)
                        with m.Else():
                            m.d.sync += [delivering.eq(1), deliver_count.eq(count), deliver_seq.eq(seq)]
                    with m.Elif(seq == (expected - 1)[:8]):
                        m.d.comb += request(FrameKind.ACK, seq)  # its ACK was lost: again, no delivery
                with m.Elif(kind == FrameKind.ACK):
                    m.d.comb += [ack_seen.eq(1), seen_seq.eq(seq)]
                with m.Elif(kind == FrameKind.NAK):
                    m.d.comb += [nak_seen.eq(1), seen_seq.eq(seq)]
                with m.Elif(kind == FrameKind.SYNC):
                    m.d.comb += self.session_start.eq(1)

        # --- deliver a checked frame on cmd -------------------------------------------------------------
        # The read port's address runs one word ahead on a transfer, so ``rx_rd.data`` is always the
        # word at ``deliver_index`` (which rests at 0 between frames).
        transfer = self.cmd.valid & self.cmd.ready
        m.d.comb += [
            rx_rd.addr.eq(deliver_index + transfer),
            self.cmd.payload.eq(rx_rd.data),
            self.cmd.valid.eq(delivering),
        ]
        with m.If(transfer):
            m.d.sync += deliver_index.eq(deliver_index + 1)
            with m.If(deliver_index + 1 == deliver_count):
                m.d.sync += [deliver_index.eq(0), delivering.eq(0), expected.eq(deliver_seq + 1)]
                m.d.comb += request(FrameKind.ACK, deliver_seq)  # takes precedence over a NAK this cycle
        with m.If(self.session_start):  # SYNC: drop the frame being delivered, answer SYNC
            m.d.sync += [deliver_index.eq(0), delivering.eq(0), expected.eq(0)]
            m.d.comb += request(FrameKind.SYNC, 0)

        # --- ACK/NAK frames waiting for the transmitter (a newer request replaces an older one) --------
        ctl_pending, ctl_kind, ctl_seq = Signal(), Signal(8), Signal(8)
        ctl_taken = Signal()
        with m.If(ctl_taken):
            m.d.sync += ctl_pending.eq(0)
        with m.If(ctl_request):
            m.d.sync += [ctl_pending.eq(1), ctl_kind.eq(ctl_request_kind), ctl_seq.eq(ctl_request_seq)]

        # --- gather resp words into a DATA frame, keep it until ACKed -----------------------------------
        fill, tx_seq = Signal(range(MAX_FRAME_WORDS + 1)), Signal(8)
        idle = Signal(range(self.flush_cycles + 1))
        wait = Signal(range(self.ack_timeout_cycles + 1))
        data_ready, data_sent = Signal(), Signal()

        def restart():
            """SYNC (last in each state, so it wins): drop the words gathered and the unACKed frame."""
            with m.If(self.session_start):
                m.d.sync += [tx_seq.eq(0), fill.eq(0), idle.eq(0)]
                m.next = "FILL"

        with m.FSM():
            with m.State("FILL"):
                m.d.comb += [
                    self.resp.ready.eq(fill != MAX_FRAME_WORDS),
                    tx_wr.addr.eq(fill),
                    tx_wr.data.eq(self.resp.payload),
                    tx_wr.en.eq(self.resp.valid & self.resp.ready),
                ]
                with m.If(self.resp.valid & self.resp.ready):
                    m.d.sync += [fill.eq(fill + 1), idle.eq(0)]
                with m.Elif(idle != self.flush_cycles):
                    m.d.sync += idle.eq(idle + 1)
                with m.If((fill == MAX_FRAME_WORDS) | ((fill != 0) & (idle == self.flush_cycles))):
                    m.next = "SEND"
                restart()
            with m.State("SEND"):
                m.d.comb += data_ready.eq(1)
                with m.If(data_sent):
                    m.d.sync += wait.eq(0)
                    m.next = "WAIT_ACK"
                restart()
            with m.State("WAIT_ACK"):
                m.d.sync += wait.eq(wait + 1)
                with m.If(ack_seen & (seen_seq == tx_seq)):
                    m.d.sync += [tx_seq.eq(tx_seq + 1), fill.eq(0), idle.eq(0)]
                    m.next = "FILL"
                with m.Elif(nak_seen | (wait == self.ack_timeout_cycles)):
                    m.d.sync += self.resent_frames.eq(self.resent_frames + 1)
                    m.next = "SEND"
                restart()

        # --- send frames byte by byte -------------------------------------------------------------------
        s_kind, s_seq, s_count = Signal(8), Signal(8), Signal(range(MAX_FRAME_WORDS + 1))
        s_index = Signal(range(4 * MAX_FRAME_WORDS))
        s_crc = Signal(16)
        s_data = Signal()  # the frame is the DATA frame of the buffer
        stale = Signal()  # the byte's source (memory) settles for one cycle
        m.d.sync += stale.eq(0)
        sent = transmitter.i.valid & transmitter.i.ready
        m.d.comb += tx_rd.addr.eq(s_index[2:])

        s_byte, s_byte_valid = Signal(8), Signal()  # the byte offered to the transmitter
        m.d.comb += [transmitter.i.payload.eq(s_byte), transmitter.i.valid.eq(s_byte_valid)]

        def emit(value, then, checked=True):
            m.d.comb += [s_byte.eq(value), s_byte_valid.eq(~stale)]
            with m.If(sent):
                m.d.sync += stale.eq(1)
                if checked:
                    m.d.sync += s_crc.eq(crc16_update(s_crc, s_byte))
                m.next = then

        with m.FSM():
            with m.State("IDLE"):
                m.d.sync += [s_crc.eq(CRC_INIT), s_index.eq(0)]
                with m.If(ctl_pending):
                    m.d.comb += ctl_taken.eq(1)
                    m.d.sync += [s_kind.eq(ctl_kind), s_seq.eq(ctl_seq), s_count.eq(0), s_data.eq(0)]
                    m.next = "SOF"
                with m.Elif(data_ready):
                    m.d.sync += [s_kind.eq(FrameKind.DATA), s_seq.eq(tx_seq), s_count.eq(fill), s_data.eq(1)]
                    m.next = "SOF"
            with m.State("SOF"):
                emit(SOF, "KIND", checked=False)
            with m.State("KIND"):
                emit(s_kind, "SEQ")
            with m.State("SEQ"):
                emit(s_seq, "COUNT_LOW")
            with m.State("COUNT_LOW"):
                emit(s_count, "COUNT_HIGH")
            with m.State("COUNT_HIGH"):
                emit(0, "PAYLOAD")
                with m.If(sent & (s_count == 0)):
                    m.next = "CRC_HIGH"
            with m.State("PAYLOAD"):
                emit(tx_rd.data.word_select(s_index[:2], 8), "PAYLOAD")
                with m.If(sent):
                    m.d.sync += s_index.eq(s_index + 1)
                    with m.If(s_index + 1 == s_count * 4):
                        m.next = "CRC_HIGH"
            with m.State("CRC_HIGH"):
                emit(s_crc[8:], "CRC_LOW", checked=False)
            with m.State("CRC_LOW"):
                emit(s_crc[:8], "IDLE", checked=False)
                with m.If(sent):
                    m.d.comb += data_sent.eq(s_data)
        return m


class _InFrame:
    """``with _InFrame(...):`` a parser state inside a frame: the body runs when a byte arrives (after
    the CRC register takes it); a silence of the inter-byte timeout drops the frame."""

    def __init__(self, m, state, got, gap, limit, crc, crc_next, drop):
        self.m, self.state, self.got, self.gap, self.limit = m, state, got, gap, limit
        self.crc, self.crc_next, self.drop = crc, crc_next, drop

    def __enter__(self):
        m = self.m
        self._state = m.State(self.state)
        self._state.__enter__()
        self._timeout = m.If(~self.got & (self.gap == self.limit))
        with self._timeout:
            comb, sync = self.drop()
            m.d.comb += comb
            m.d.sync += sync
            m.next = "HUNT"
        with m.Elif(~self.got):
            m.d.sync += self.gap.eq(self.gap + 1)
        self._body = m.Else()
        self._body.__enter__()
        m.d.sync += [self.gap.eq(0), self.crc.eq(self.crc_next)]

    def __exit__(self, *exc):
        self._body.__exit__(*exc)
        return self._state.__exit__(*exc)


class LinkTile(wiring.Component):
    """:class:`LinkBridge` wired to a :class:`lowbit.hw.tile.tile.Tile`: the tile's command words arrive in
    frames on ``rx``, its responses leave in frames on ``tx``. A board's top level is this plus its
    pins, clock and LEDs.

    Ports: ``rx`` (in, idle high), ``tx`` (out, idle high), 8N1 at ``divisor`` cycles per bit; the
    bridge's ``bad_frames``, ``resent_frames``, ``uart_errors`` counters (16 bits each). Latency and
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
        ]
        return m
