"""What the parts of :class:`lowbit.hw.link.bridge.LinkBridge` pass to each other: the
:mod:`amaranth.lib.data` layouts of their event streams and the shape of their frame buffers. The frame
format itself (kinds, limits, CRC) is :mod:`lowbit.sw.protocol.frames`.

The parts, in the order a word passes them (``docs/serial.md``):

- :class:`~lowbit.hw.link.receiver.FrameReceiver`: bytes from the UART receiver -> the words of a DATA
  frame written into a receive slot, then one :class:`FrameEnd` per frame, and an
  :class:`Acknowledgement` for each good ACK/NAK frame;
- :class:`~lowbit.hw.link.delivery.FrameDelivery`: owns the receive slots and the host's sequence number;
  the accepted frames' words out on ``cmd``, in order, and :class:`ControlFrame` requests (ACK, NAK, SYNC);
- :class:`~lowbit.hw.link.gatherer.WordGatherer`: owns the transmit slots; the tile's words gathered into
  DATA frames, each held until it is acknowledged;
- :class:`~lowbit.hw.link.sender.FrameSender`: ACK/NAK/SYNC and DATA frames, byte by byte, to the UART
  transmitter; the board's window of DATA frames, going back on NAK or timeout.
"""

from amaranth.lib import data
from amaranth.lib.memory import ReadPort, WritePort
from amaranth.utils import exact_log2

from lowbit.sw.protocol.frames import MAX_FRAME_WORDS, SEQ_BEHIND, WINDOW_FRAMES

__all__ = [
    "BUFFER_ADDR_WIDTH",
    "SLOT_BITS",
    "slots_read_signature",
    "buffer_write_signature",
    "FrameEnd",
    "Acknowledgement",
    "ControlFrame",
    "seq_distance",
    "seq_behind",
]

#: Address bits of a frame buffer (a Memory of :data:`MAX_FRAME_WORDS` 32-bit words).
BUFFER_ADDR_WIDTH = (MAX_FRAME_WORDS - 1).bit_length()
#: Address bits of a slot among :data:`WINDOW_FRAMES` (a frame's slot is its seq modulo the window).
SLOT_BITS = exact_log2(WINDOW_FRAMES)


def seq_distance(reference, seq):
    """How many seqs ``seq`` is before ``reference``, modulo 256 (an 8-bit value)."""
    return (reference - seq)[:8]


def seq_behind(reference, seq):
    """``seq`` is an earlier frame than ``reference``: 1 to :data:`SEQ_BEHIND` seqs before it (modulo 256)."""
    distance = seq_distance(reference, seq)
    return (distance != 0) & (distance <= SEQ_BEHIND)


def buffer_write_signature():
    """The write port of a frame buffer, as the buffer's owner offers it (``Out``); the writer takes it ``In``."""
    return WritePort.Signature(addr_width=BUFFER_ADDR_WIDTH, shape=32)


def slots_read_signature():
    """The read port of :data:`WINDOW_FRAMES` frame slots (one Memory; a slot's word ``k`` at address
    ``Cat(k, slot)``; one cycle from ``addr`` to ``data``), as the slots' owner offers it (``Out``); the
    reader takes it ``In``."""
    return ReadPort.Signature(addr_width=BUFFER_ADDR_WIDTH + SLOT_BITS, shape=32)


class FrameEnd(data.Struct):
    """The end of a frame from the host, good or dropped.

    ``ok``: the frame was complete and its CRC good. A frame dropped (bad CRC, ``count`` above
    :data:`MAX_FRAME_WORDS`, cut short by the inter-byte timeout) has ``ok`` 0, and its other fields are
    what had arrived of it. ``kind``, ``seq``, ``count``: the frame's header fields (``kind`` is the raw
    byte: an unknown kind is passed on). ``stored``: the frame's words, if it is DATA, were written into
    a receive slot (one was free when the frame began)."""

    kind: 8
    seq: 8
    count: range(MAX_FRAME_WORDS + 1)
    ok: 1
    stored: 1


class Acknowledgement(data.Struct):
    """A good ACK (``nak`` 0) or NAK (``nak`` 1) frame from the host, of ``seq``."""

    seq: 8
    nak: 1


class ControlFrame(data.Struct):
    """A frame without words for the board to send: ``kind`` ACK, NAK or SYNC (a
    :class:`~lowbit.sw.protocol.frames.FrameKind`), ``seq``."""

    kind: 8
    seq: 8
