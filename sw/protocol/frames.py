"""The serial link's frame format, defined once (standard library only): the constants, the frame
kinds and the CRC, imported by the board side (:mod:`lowbit.hw.link.bridge`) and the host side
(:mod:`lowbit.sw.host.link`). ``docs/serial.md`` describes the link in prose.

A frame, in both directions (bytes)::

    SOF 0xA5 | kind | seq | count (uint16 LE) | count x word (uint32 LE) | CRC-16 (high byte first)

``kind`` is :class:`FrameKind` (DATA carries words; ACK, NAK and SYNC have ``count`` 0); ``count`` is at
most :data:`MAX_FRAME_WORDS`; the CRC is CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, no
reflection, no final XOR) of every byte from ``kind`` to the last word byte.
"""

import enum

__all__ = [
    "BITS_PER_CHARACTER",
    "DEFAULT_BAUD",
    "SOF",
    "FrameKind",
    "MAX_FRAME_WORDS",
    "WINDOW_FRAMES",
    "SEQ_BEHIND",
    "HEADER_BYTES",
    "CRC_BYTES",
    "MAX_FRAME_BYTES",
    "INTERBYTE_TIMEOUT",
    "ACK_TIMEOUT_BITS",
    "ACK_TIMEOUT_SECONDS",
    "FLUSH_IDLE_BITS",
    "CRC_POLY",
    "CRC_INIT",
    "crc16",
]

#: Bit times of one 8N1 character on the wire: a start bit, 8 data bits, a stop bit.
BITS_PER_CHARACTER = 10

#: The boards' UART rate (``BAUD`` of :mod:`lowbit.boards.icebreaker` and :mod:`lowbit.boards.ulx3s`) and
#: the host's default: 3 Mbaud, the ULX3S's FT231X's highest rate (the iCEBreaker's FT2232H goes to 12).
DEFAULT_BAUD = 3_000_000

SOF = 0xA5  #: the first byte of every frame


class FrameKind(enum.IntEnum):
    DATA = 0x01  #: ``count`` 32-bit words
    ACK = 0x02  #: ``seq``: the DATA frame received (count 0)
    NAK = 0x03  #: ``seq``: the DATA frame the receiver expects (count 0)
    SYNC = 0x04  #: host: start a session; board: the session has started (count 0, seq 0)


MAX_FRAME_WORDS = 64  #: the most words in one DATA frame
#: DATA frames in flight (sent, not yet acknowledged) in each direction: the host's window and the board's
#: receive slots (a frame in the window always finds a slot, because the board ACKs a frame only once the
#: tile has taken its words), and the board's window and transmit slots (it keeps each frame until it is
#: acknowledged). A power of two that divides 256, so that a frame's slot is its seq modulo the window.
WINDOW_FRAMES = 4
#: A seq up to this many before another (modulo 256) is behind it, an earlier frame; further is ahead.
SEQ_BEHIND = 128
HEADER_BYTES = 5  #: SOF, kind, seq, count (2)
CRC_BYTES = 2
MAX_FRAME_BYTES = HEADER_BYTES + 4 * MAX_FRAME_WORDS + CRC_BYTES
#: Bit times without a byte inside a frame after which the frame counts as cut short (two characters).
INTERBYTE_TIMEOUT = 2 * BITS_PER_CHARACTER
#: The board's default wait for an ACK, in bit times: four of the longest frames (one of its own, one
#: DATA frame of the host that may be on the wire before the ACK, and margin for the host's latency).
ACK_TIMEOUT_BITS = 4 * MAX_FRAME_BYTES * BITS_PER_CHARACTER
#: A board that knows its clock waits at least this long (seconds) for an ACK: a USB serial adapter holds
#: bytes for up to 16 ms on each way (an FTDI chip's latency timer), far more than ACK_TIMEOUT_BITS at
#: 3 Mbaud (3.5 ms); at 115200 baud the two are about equal (91 ms).
ACK_TIMEOUT_SECONDS = 0.1
#: The board sends a DATA frame shorter than the maximum once the tile has been idle this many bit
#: times (two word times on the wire), so that a response is never held back.
FLUSH_IDLE_BITS = 2 * 4 * BITS_PER_CHARACTER

CRC_POLY = 0x1021
CRC_INIT = 0xFFFF


def crc16(data, crc=CRC_INIT):
    """CRC-16/CCITT-FALSE of ``data`` (bytes), continuing from ``crc``. ``crc16(b"123456789") == 0x29B1``;
    a frame's bytes from ``kind`` through its two CRC bytes (high first) give 0."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ CRC_POLY) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc
