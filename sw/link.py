"""The host side of the serial link (``docs/serial.md``): frames, an incremental decoder, and
:class:`LinkTransport`, a :class:`lowbit.sw.driver.Transport` over a byte port.

The frame format, its limits and the CRC are defined once in :mod:`lowbit.hw.link` and imported here.
Pure Python: no Amaranth elaboration, no pyserial import (a ``serial.Serial`` is one possible port).
"""

import dataclasses
import inspect
import time

from ..hw.link import (CRC_BYTES, HEADER_BYTES, MAX_FRAME_WORDS, SOF, FrameKind, crc16)
from .driver import Transport, TransportError

__all__ = ["Frame", "FrameError", "encode_frame", "FrameDecoder", "LinkStats", "LinkTransport"]


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
        self._frame = None      # the bytes of the frame being received, from kind on
        self._need = 0          # bytes still missing of it
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
            if len(self._frame) == HEADER_BYTES - 1:              # kind, seq, count
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
        words = tuple(int.from_bytes(body[4 + 4 * k:8 + 4 * k], "little") for k in range(count))
        try:
            kind = FrameKind(kind)
        except ValueError:
            pass
        return Frame(kind, seq, words)


@dataclasses.dataclass
class LinkStats:
    """What the host side of the link did (for tests and reports)."""
    data_frames: int = 0        #: DATA frames sent for the first time
    resent: int = 0             #: DATA frames sent again (NAK or timeout)
    acks_sent: int = 0
    naks_sent: int = 0
    received: int = 0           #: board DATA frames delivered
    duplicates: int = 0         #: board DATA frames received again and dropped (ACKed again)
    bad_frames: int = 0         #: bad CRC, count too large, cut short
    naks_received: int = 0


async def _maybe_await(value):
    return await value if inspect.isawaitable(value) else value


class LinkTransport(Transport):
    """The tile's word streams over the serial link: a :class:`lowbit.sw.driver.Transport` on a byte
    ``port`` with ``write(bytes)`` and ``read(n) -> bytes`` (at most ``n`` bytes, fewer or none when its
    own timeout passes: a ``serial.Serial`` made with a ``timeout`` of a few byte times). The port's
    methods may also be coroutines (a simulated port).

    :meth:`write` splits the words into DATA frames of at most :data:`MAX_FRAME_WORDS` and sends them
    one at a time (stop-and-wait); a NAK or no ACK within ``timeout`` seconds sends the frame again,
    up to ``retries`` more times, then :class:`TransportError` names the frame and the attempts.
    :meth:`read` waits for the board's words; after ``timeout`` seconds without a new DATA frame it sends
    NAK(expected seq), which makes the board resend a frame it still holds, up to ``retries`` times, then
    raises :class:`TransportError`. Meanwhile, and in :meth:`write`, the board's DATA frames are ACKed (a duplicate, whose ACK was lost,
    is ACKed again and dropped) and their words queued for :meth:`read`; a bad frame is answered
    NAK(expected seq). A port read that returns nothing inside a frame counts as the end of the frame
    (cut short). ``clock`` gives the time in seconds (default :func:`time.monotonic`; a simulation
    passes its own). ``stats`` counts what happened (:class:`LinkStats`).
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
        self._tx_seq = 0                 # seq of our next DATA frame
        self._rx_expected = 0            # seq of the board's next DATA frame
        self._words = []                 # words received, not yet read
        self._acked = None               # seq of the last ACK received
        self._nak = False                # a NAK arrived since the last send

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

    async def _handle(self, event):
        if isinstance(event, FrameError):
            self.stats.bad_frames += 1
            await self._control(FrameKind.NAK, self._rx_expected)
        elif event.kind == FrameKind.DATA:
            if event.seq == self._rx_expected:
                self._words.extend(event.words)
                self._rx_expected = (self._rx_expected + 1) & 0xFF
                self.stats.received += 1
                await self._control(FrameKind.ACK, event.seq)
            elif event.seq == (self._rx_expected - 1) & 0xFF:
                self.stats.duplicates += 1
                await self._control(FrameKind.ACK, event.seq)
        elif event.kind == FrameKind.ACK:
            self._acked = event.seq
        elif event.kind == FrameKind.NAK:
            self.stats.naks_received += 1
            self._nak = True

    async def _control(self, kind, seq):
        if kind == FrameKind.ACK:
            self.stats.acks_sent += 1
        else:
            self.stats.naks_sent += 1
        await self._send(encode_frame(kind, seq))

    async def write(self, words):
        words = [int(w) for w in words]
        for start in range(0, len(words), MAX_FRAME_WORDS):
            await self._send_frame(words[start:start + MAX_FRAME_WORDS])

    async def _send_frame(self, chunk):
        seq = self._tx_seq
        frame = encode_frame(FrameKind.DATA, seq, chunk)
        self.stats.data_frames += 1
        for attempt in range(1, self.retries + 2):
            if attempt > 1:
                self.stats.resent += 1
            self._acked, self._nak = None, False
            await self._send(frame)
            deadline = self.clock() + self.timeout
            while self._acked != seq and not self._nak and self.clock() < deadline:
                await self._poll()
            if self._acked == seq:
                self._tx_seq = (seq + 1) & 0xFF
                return
        raise TransportError(f"DATA frame seq {seq} ({len(chunk)} words) was not acknowledged after "
                             f"{self.retries + 1} attempts: the board does not answer")

    async def read(self, count):
        attempts, deadline = 1, self.clock() + self.timeout
        while len(self._words) < count:
            have = len(self._words)
            await self._poll()
            if len(self._words) != have:
                attempts, deadline = 1, self.clock() + self.timeout
            elif self.clock() >= deadline:
                if attempts > self.retries:
                    raise TransportError(f"the board sent no DATA for {attempts} x {self.timeout} s (NAKed "
                                         f"{attempts - 1} times) while {count - have} more words were expected: "
                                         f"the board does not answer")
                # A NAK makes the board resend a DATA frame it still holds (its frame or our ACK was lost).
                await self._control(FrameKind.NAK, self._rx_expected)
                attempts, deadline = attempts + 1, self.clock() + self.timeout
        words, self._words = self._words[:count], self._words[count:]
        return words
