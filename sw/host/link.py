"""The host side of the serial link (``docs/serial.md``): frames, an incremental decoder,
:class:`LinkTransport`, a :class:`lowbit.sw.host.Transport` over a byte port, and the real port:
:func:`open_serial` and :class:`SerialTransport` (``lowbit run --backend serial``).

The frame format, its limits and the CRC are defined once in :mod:`lowbit.sw.protocol.frames` and imported here.
Pure Python: no Amaranth elaboration; pyserial is imported only when a serial port is opened (a
``serial.Serial`` is one possible port; a test passes its own).
"""

import dataclasses
import errno
import inspect
import os
import time

from lowbit.sw.host import Transport, TransportError
from lowbit.sw.protocol.frames import (
    BITS_PER_CHARACTER,
    CRC_BYTES,
    DEFAULT_BAUD,
    HEADER_BYTES,
    MAX_FRAME_BYTES,
    MAX_FRAME_WORDS,
    SEQ_BEHIND,
    SOF,
    WINDOW_FRAMES,
    FrameKind,
    crc16,
)

__all__ = [
    "Frame",
    "FrameError",
    "encode_frame",
    "FrameDecoder",
    "LinkStats",
    "LinkTransport",
    "DEFAULT_BAUD",
    "open_serial",
    "SerialTransport",
]


@dataclasses.dataclass(frozen=True)
class Frame:
    """A received frame with a good CRC. ``kind`` is a :class:`FrameKind` or, if unknown, the raw byte."""

    kind: int
    seq: int
    words: tuple = ()


@dataclasses.dataclass(frozen=True)
class FrameError:
    """A frame that was dropped: ``reason`` is ``"crc"``, ``"count"`` (above :data:`MAX_FRAME_WORDS`) or
    ``"truncated"`` (cut short: :meth:`FrameDecoder.expire` was called inside it)."""

    reason: str
    detail: str = ""


def encode_frame(kind, seq, words=()):
    """The bytes of one frame: SOF, ``kind``, ``seq``, the word count (uint16 LE), the words (uint32 LE),
    the CRC-16/CCITT-FALSE of ``kind`` .. the last word byte, high byte first."""
    words = [int(w) for w in words]
    if not 0 <= int(kind) <= 0xFF:
        raise ValueError(f"kind must be a byte, not {kind!r}")
    if not 0 <= seq <= 0xFF:
        raise ValueError(f"seq must be between 0 and 255, not {seq!r}")
    if len(words) > MAX_FRAME_WORDS:
        raise ValueError(f"a frame holds at most {MAX_FRAME_WORDS} words, not {len(words)}")
    for word in words:
        if not 0 <= word <= 0xFFFFFFFF:
            raise ValueError(f"words are 32-bit unsigned integers, not {word}")
    body = bytes([int(kind), seq]) + len(words).to_bytes(2, "little")
    body += b"".join(word.to_bytes(4, "little") for word in words)
    return bytes([SOF]) + body + crc16(body).to_bytes(2, "big")


class FrameDecoder:
    """Bytes in, :class:`Frame` s and :class:`FrameError` s out, as the board's receiver parses them:
    bytes outside a frame that are not SOF are skipped (counted in ``skipped``); a count above the
    maximum drops the frame at once; a bad CRC drops it at its end. The decoder has no clock: the
    caller calls :meth:`expire` when the line has been silent for the inter-byte timeout."""

    def __init__(self):
        self._frame = None  # the bytes of the frame being received, from kind on
        self._need = 0  # bytes still missing of it
        self.skipped = 0

    @property
    def in_frame(self):
        return self._frame is not None

    def feed(self, data):
        """Parse ``data``; return the frames and errors completed by it, in order."""
        events = []
        for byte in bytes(data):
            if self._frame is None:
                if byte == SOF:
                    self._frame, self._need = bytearray(), HEADER_BYTES - 1
                else:
                    self.skipped += 1
                continue
            self._frame.append(byte)
            self._need -= 1
            if len(self._frame) == HEADER_BYTES - 1:  # kind, seq, count
                count = int.from_bytes(self._frame[2:4], "little")
                if count > MAX_FRAME_WORDS:
                    events.append(FrameError("count", f"count {count} above {MAX_FRAME_WORDS}"))
                    self._frame = None
                    continue
                self._need = 4 * count + CRC_BYTES
            if self._need == 0:
                events.append(self._finish(bytes(self._frame)))
                self._frame = None
        return events

    def expire(self):
        """The line has been silent: a frame in progress was cut short. Returns ``[FrameError]`` or ``[]``."""
        if self._frame is None:
            return []
        got = len(self._frame) + 1
        self._frame = None
        return [FrameError("truncated", f"{got} bytes of a frame, then silence")]

    @staticmethod
    def _finish(body):
        if crc16(body) != 0:
            return FrameError("crc", f"kind 0x{body[0]:02x} seq {body[1]}: bad CRC")
        kind, seq, count = body[0], body[1], int.from_bytes(body[2:4], "little")
        words = tuple(int.from_bytes(body[4 + 4 * k : 8 + 4 * k], "little") for k in range(count))
        try:
            kind = FrameKind(kind)
        except ValueError:
            pass
        return Frame(kind, seq, words)


@dataclasses.dataclass
class LinkStats:
    """What the host side of the link did (for tests and reports)."""

    data_frames: int = 0  #: DATA frames sent for the first time
    resent: int = 0  #: DATA frames sent again (NAK or timeout)
    acks_sent: int = 0
    naks_sent: int = 0
    received: int = 0  #: board DATA frames delivered
    duplicates: int = 0  #: board DATA frames received again and dropped (ACKed again)
    ahead: int = 0  #: board DATA frames ahead of the expected seq (one before them was lost), dropped
    bad_frames: int = 0  #: bad CRC, count too large, cut short
    naks_received: int = 0
    syncs_sent: int = 0  #: SYNC frames sent (session starts, resends included)
    stale_frames: int = 0  #: frames of an earlier session dropped while waiting for the board's SYNC


async def _maybe_await(value):
    return await value if inspect.isawaitable(value) else value


class LinkTransport(Transport):
    """The tile's word streams over the serial link: a :class:`lowbit.sw.host.Transport` on a byte
    ``port`` with ``write(bytes)`` and ``read(n) -> bytes`` (at most ``n`` bytes, fewer or none when its
    own timeout passes: a ``serial.Serial`` made with a ``timeout`` of a few byte times). The port's
    methods may also be coroutines (a simulated port).

    :meth:`write` splits the words into DATA frames of at most :data:`MAX_FRAME_WORDS` and sends them
    "go back N", by the rules of ``docs/serial.md`` ("Rules (both ends)"): up to :data:`WINDOW_FRAMES`
    frames are unacknowledged at a time, the next one is sent as soon as the window has room. ACK(s) of a
    frame in the window acknowledges it and every earlier one (cumulative); an ACK of no frame in the
    window is ignored. NAK(e) of a frame in the window, or no ACK of the oldest frame within ``timeout``
    seconds, sends every unacknowledged frame from e (from the oldest, on a timeout) again, in order.
    Once the oldest frame has been sent ``retries + 1`` times (counted from when it became the oldest)
    without an ACK, :class:`TransportError` names it and the attempts. :meth:`write` returns when every
    frame is acknowledged. :meth:`read` waits for the board's words; after ``timeout`` seconds without a
    new DATA frame it sends NAK(expected seq), which makes the board resend the frames it still holds, up
    to ``retries`` times, then raises :class:`TransportError`. Meanwhile, and in :meth:`write`, the
    board's DATA frames (its own window of up to :data:`WINDOW_FRAMES`) are taken in order and ACKed;
    a frame behind the expected seq (a resend, its ACK lost) is answered ACK(the last taken) and dropped;
    a bad frame is answered NAK(expected seq), and so is a frame ahead of it (one before it was lost),
    once until the expected seq changes; the words are queued for :meth:`read`. A
    port read that returns nothing inside a frame counts as the end of the frame (cut short). ``clock``
    gives the time in seconds (default :func:`time.monotonic`; a simulation passes its own). ``stats``
    counts what happened (:class:`LinkStats`).
    """

    def __init__(self, port, *, timeout=1.0, retries=8, clock=time.monotonic):
        if not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise ValueError(f"retries must be a non-negative integer, not {retries!r}")
        self.port = port
        self.timeout = timeout
        self.retries = retries
        self.clock = clock
        self.decoder = FrameDecoder()
        self.stats = LinkStats()
        self._tx_seq = 0  # seq of our next new DATA frame
        self._rx_expected = 0  # seq of the board's next DATA frame
        self._rx_naked = False  # NAK(expected) has been sent since `_rx_expected` last changed
        self._words = []  # words received, not yet read
        self._window = []  # (seq, frame bytes, word count) of our unacknowledged DATA frames, oldest first
        self._nak = None  # seq of the frame in the window to go back to (a NAK of it arrived), or None
        self._attempts = 0  # sends of the oldest frame in the window since it became the oldest
        self._deadline = 0.0  # when the oldest frame's ACK is overdue
        self._syncing = self._synced = False

    async def _send(self, data):
        await _maybe_await(self.port.write(data))

    async def _poll(self):
        """Read what the port has (or wait its timeout) and act on the frames it completes."""
        waiting = getattr(self.port, "in_waiting", 0) or 0
        data = await _maybe_await(self.port.read(max(1, min(waiting, 4096))))
        events = self.decoder.feed(data) if data else self.decoder.expire()
        for event in events:
            await self._handle(event)
        return bool(data)

    async def synchronize(self):
        """Start a session: send SYNC and wait for the board's SYNC, resending it after ``timeout``
        seconds, up to ``retries`` more times (then :class:`TransportError`). The board drops what it
        was sending or delivering and resets its tile; here both sequence numbers restart at 0, words not
        yet read are dropped, and whatever arrives before the board's SYNC (frames of an earlier session)
        is dropped unanswered. Call it first on a board in an unknown state (``lowbit run --backend
        serial`` does); a freshly reset board needs no SYNC."""
        self._syncing = True
        try:
            for _ in range(1, self.retries + 2):
                self._synced = False
                self.stats.syncs_sent += 1
                await self._send(encode_frame(FrameKind.SYNC, 0))
                deadline = self.clock() + self.timeout
                while not self._synced and self.clock() < deadline:
                    await self._poll()
                if self._synced:
                    self._tx_seq, self._rx_expected, self._rx_naked, self._words = 0, 0, False, []
                    self._window, self._nak = [], None
                    return
        finally:
            self._syncing = False
        raise TransportError(f"SYNC was not answered after {self.retries + 1} attempts: the board does not answer")

    async def _handle(self, event):
        if self._syncing:
            if isinstance(event, Frame) and event.kind == FrameKind.SYNC:
                self._synced = True
            else:
                self.stats.stale_frames += 1
            return
        if isinstance(event, FrameError):
            self.stats.bad_frames += 1
            await self._control(FrameKind.NAK, self._rx_expected)
        elif event.kind == FrameKind.DATA:
            if event.seq == self._rx_expected:
                self._words.extend(event.words)
                self._rx_expected, self._rx_naked = (self._rx_expected + 1) & 0xFF, False
                self.stats.received += 1
                await self._control(FrameKind.ACK, event.seq)
            elif 1 <= (self._rx_expected - event.seq) & 0xFF <= SEQ_BEHIND:  # a resend: ACK what we have
                self.stats.duplicates += 1
                await self._control(FrameKind.ACK, (self._rx_expected - 1) & 0xFF)
            else:  # ahead: a frame before it was lost; the board goes back on the NAK
                self.stats.ahead += 1
                if not self._rx_naked:
                    await self._control(FrameKind.NAK, self._rx_expected)
        elif event.kind == FrameKind.ACK:
            acked = self._in_window(event.seq)
            if acked is not None:  # cumulative: that frame and every earlier one
                del self._window[: acked + 1]
                if self._nak is not None and self._in_window(self._nak) is None:
                    self._nak = None  # the frame to go back to is acknowledged after all
                self._attempts, self._deadline = 1, self.clock() + self.timeout
        elif event.kind == FrameKind.NAK:
            self.stats.naks_received += 1
            if self._in_window(event.seq) is not None:
                self._nak = event.seq

    def _in_window(self, seq):
        """The index of the frame ``seq`` in the window (seqs compared modulo 256 from the oldest), or None."""
        if not self._window:
            return None
        index = (seq - self._window[0][0]) & 0xFF
        return index if index < len(self._window) else None

    async def _control(self, kind, seq):
        if kind == FrameKind.ACK:
            self.stats.acks_sent += 1
        else:
            self.stats.naks_sent += 1
            self._rx_naked = True
        await self._send(encode_frame(kind, seq))

    async def write(self, words):
        words = [int(w) for w in words]
        chunks = [words[start : start + MAX_FRAME_WORDS] for start in range(0, len(words), MAX_FRAME_WORDS)]
        for chunk in chunks:
            while len(self._window) >= WINDOW_FRAMES:
                await self._wait()
            seq, frame = self._tx_seq, encode_frame(FrameKind.DATA, self._tx_seq, chunk)
            self._tx_seq = (seq + 1) & 0xFF
            if not self._window:
                self._attempts, self._deadline = 1, self.clock() + self.timeout
            self._window.append((seq, frame, len(chunk)))
            self.stats.data_frames += 1
            await self._send(frame)
        while self._window:
            await self._wait()

    async def _wait(self):
        """Read what arrives (ACKs shrink the window), then go back on a NAK or on the oldest frame's timeout."""
        await self._poll()
        if self._nak is not None:
            await self._go_back(self._in_window(self._nak))
        elif self._window and self.clock() >= self._deadline:
            await self._go_back(0)

    async def _go_back(self, index):
        """Send every unacknowledged frame from ``index`` of the window again, in order."""
        self._nak = None
        if index == 0:
            if self._attempts > self.retries:
                seq, _, count = self._window[0]
                raise TransportError(
                    f"DATA frame seq {seq} ({count} words) was not acknowledged after "
                    f"{self._attempts} attempts: the board does not answer"
                )
            self._attempts, self._deadline = self._attempts + 1, self.clock() + self.timeout
        for _, frame, _ in self._window[index:]:
            self.stats.resent += 1
            await self._send(frame)

    async def read(self, count):
        attempts, deadline = 1, self.clock() + self.timeout
        while len(self._words) < count:
            have = len(self._words)
            await self._poll()
            if len(self._words) != have:
                attempts, deadline = 1, self.clock() + self.timeout
            elif self.clock() >= deadline:
                if attempts > self.retries:
                    raise TransportError(
                        f"the board sent no DATA for {attempts} x {self.timeout} s (NAKed "
                        f"{attempts - 1} times) while {count - have} more words were expected: "
                        f"the board does not answer"
                    )
                # A NAK makes the board resend a DATA frame it still holds (its frame or our ACK was lost).
                await self._control(FrameKind.NAK, self._rx_expected)
                attempts, deadline = attempts + 1, self.clock() + self.timeout
        words, self._words = self._words[:count], self._words[count:]
        return words


# --- a real serial port ---------------------------------------------------------------------------------


def _positive_seconds(name, value):
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0):
        raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")


def open_serial(port, *, baud=DEFAULT_BAUD, read_timeout=None, write_timeout=None):
    """Open the serial device ``port`` (``/dev/ttyUSB1``, ``COM3``) as ``serial.Serial`` at ``baud``,
    8N1, no flow control, with its input buffer flushed (bytes left from an earlier session).

    ``read_timeout`` (seconds) bounds each ``read``: the port's silence that :class:`LinkTransport` takes
    for the end of a frame cut short. The default is 20 byte times but at least 50 ms: USB serial
    adapters deliver bytes in packets (an FTDI chip holds them up to its 16 ms latency timer), so a good
    frame can pause that long on the host's side; a read returns as soon as bytes are there, so a
    longer timeout costs no speed. ``write_timeout`` bounds each ``write`` (default four of the longest
    frames' times, at least 1 s).

    Raises :class:`TransportError` naming the port and the operating system's reason when it cannot be
    opened (no such device, permission denied, not a serial device), or when pyserial is not installed;
    :class:`ValueError` for a bad ``baud`` or timeout.
    """
    if not isinstance(baud, int) or isinstance(baud, bool) or baud <= 0:
        raise ValueError(f"baud must be a positive integer, not {baud!r}")
    byte_seconds = BITS_PER_CHARACTER / baud
    read_timeout = max(0.05, 20 * byte_seconds) if read_timeout is None else read_timeout
    write_timeout = max(1.0, 4 * MAX_FRAME_BYTES * byte_seconds) if write_timeout is None else write_timeout
    _positive_seconds("read_timeout", read_timeout)
    _positive_seconds("write_timeout", write_timeout)
    try:
        import serial
    except ImportError as error:
        raise TransportError(
            f"the serial transport needs pyserial, which cannot be imported ({error}); "
            f"install it with: pip install 'pyserial>=3.5'"
        ) from None
    try:
        connection = serial.Serial(
            os.fspath(port),
            baudrate=baud,
            bytesize=serial.EIGHTBITS,
            parity=serial.PARITY_NONE,
            stopbits=serial.STOPBITS_ONE,
            timeout=read_timeout,
            write_timeout=write_timeout,
            xonxoff=False,
            rtscts=False,
            dsrdtr=False,
        )
    except serial.SerialException as error:
        # pyserial's message repeats the port and the errno; the OS reason alone reads better.
        reason = os.strerror(error.errno) if error.errno else str(error)
        hint = (
            "; is your user in the group that owns the device (dialout, uucp)?" if error.errno == errno.EACCES else ""
        )
        raise TransportError(f"cannot open the serial port {port}: {reason}{hint}") from None
    connection.reset_input_buffer()  # bytes left from an earlier session
    return connection


class _SerialPort:
    """The byte port of :class:`SerialTransport`: a ``serial.Serial`` whose I/O errors (a write that times
    out, a device unplugged) raise :class:`TransportError` naming the device."""

    def __init__(self, connection):
        self.connection = connection

    def _failed(self, action, error):
        return TransportError(f"{action} the serial port {self.connection.port} failed: {error}")

    @property
    def in_waiting(self):
        try:
            return self.connection.in_waiting
        except OSError as error:  # serial.SerialException is an OSError
            raise self._failed("polling", error) from None

    def read(self, n):
        try:
            return self.connection.read(n)
        except OSError as error:
            raise self._failed("reading from", error) from None

    def write(self, data):
        try:
            return self.connection.write(data)
        except OSError as error:
            raise self._failed("writing to", error) from None

    def close(self):
        self.connection.close()


class SerialTransport(LinkTransport):
    """:class:`LinkTransport` on the serial device ``port``, opened by :func:`open_serial` (``baud``,
    ``read_timeout``, ``write_timeout``); ``timeout`` and ``retries`` are the link's. Errors of the port
    itself raise :class:`TransportError` naming it. A context manager: the port is closed on exit (or by
    :meth:`close`)::

        with SerialTransport("/dev/ttyUSB1") as link:
            geometry = asyncio.run(TileInterface(link).identify())
    """

    def __init__(self, port, *, baud=DEFAULT_BAUD, timeout=1.0, retries=8, read_timeout=None, write_timeout=None):
        super().__init__(None, timeout=timeout, retries=retries)  # checks timeout and retries first
        self.port = _SerialPort(open_serial(port, baud=baud, read_timeout=read_timeout, write_timeout=write_timeout))

    @property
    def connection(self):
        """The ``serial.Serial``."""
        return self.port.connection

    async def close(self):
        self.port.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.port.close()
