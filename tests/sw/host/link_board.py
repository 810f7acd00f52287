"""The board's side of the serial link in Python, for the host-side tests (``test_link.py`` through an
in-memory loopback, ``test_serial.py`` through a pseudo-terminal): :class:`BoardModel` follows the
board's link rules of ``docs/serial.md`` with an application behind it, e.g. :func:`tile_app` of a
:class:`lowbit.sim.reference.ModelTile`."""

from lowbit.sw.host.link import FrameDecoder, FrameError, encode_frame
from lowbit.sw.protocol.frames import MAX_FRAME_WORDS, SEQ_BEHIND, FrameKind

__all__ = ["BoardModel", "finish", "tile_app"]


def finish(coroutine):
    """The result of a coroutine that never suspends."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("the coroutine suspended")


def tile_app(tile):
    """``words -> response words`` of a :class:`ModelTile` (which never suspends), for :class:`BoardModel`."""

    def app(words):
        finish(tile.write(words))
        return finish(tile.read(tile.pending))

    return app


class BoardModel:
    """The board's link rules (docs/serial.md) in Python, with ``app`` (``words -> response words``)
    behind them; ``on_sync()`` is called on SYNC (the board resets its tile). ``to_host.put(frame_bytes)``
    sends a frame to the host; the caller passes the time (``now``, seconds) with every call.

    The host's DATA frames ("go back N"): the model delivers a frame at once (its tile is never busy, so a
    receive slot is always free), so a good frame with ``seq == expected`` is delivered and ACKed; a good
    frame behind ``expected`` (a resend) is answered ACK(expected - 1), the last frame delivered; any other
    good frame (ahead: one before it was lost) is ignored and answered NAK(expected) unless a NAK has been
    sent since ``expected`` last changed; a bad frame is answered NAK(expected). Its own DATA frames go
    one at a time (stop-and-wait)."""

    def __init__(self, to_host, app, ack_timeout=0.5, on_sync=None):
        self.to_host, self.app, self.ack_timeout, self.on_sync = to_host, app, ack_timeout, on_sync
        self.decoder = FrameDecoder()
        self.expected, self.tx_seq = 0, 0
        self.nak_sent = False  # a NAK(expected) has been sent since expected last changed
        self.outbox = []  # words for the host not yet framed
        self.pending = None  # (frame, sent at) until ACKed
        self.delivered = []

    def receive(self, data, now):
        events = self.decoder.feed(data)
        self._handle(events, now)

    def silence(self, now):
        """The line was silent: cut a frame short; resend an unACKed frame after its timeout; frame words."""
        self._handle(self.decoder.expire(), now)
        if self.pending and now - self.pending[1] >= self.ack_timeout:
            self._send_pending(now)
        self._frame_words(now)

    def _handle(self, events, now):
        for event in events:
            if isinstance(event, FrameError):
                self._nak()
            elif event.kind == FrameKind.DATA:
                if event.seq == self.expected:
                    self.delivered += event.words
                    self.outbox += self.app(event.words)
                    self.expected, self.nak_sent = (self.expected + 1) & 0xFF, False
                    self.to_host.put(encode_frame(FrameKind.ACK, event.seq))
                elif 1 <= (self.expected - event.seq) & 0xFF <= SEQ_BEHIND:  # behind: a resend, already delivered
                    self.to_host.put(encode_frame(FrameKind.ACK, (self.expected - 1) & 0xFF))
                elif not self.nak_sent:  # ahead: a frame before it was lost
                    self._nak()
            elif event.kind == FrameKind.ACK and self.pending and event.seq == self.tx_seq:
                self.pending, self.tx_seq = None, (self.tx_seq + 1) & 0xFF
            elif event.kind == FrameKind.NAK and self.pending:
                self._send_pending(now)
            elif event.kind == FrameKind.SYNC:  # a session starts: drop everything, reset the app
                self.expected, self.tx_seq, self.outbox, self.pending, self.nak_sent = 0, 0, [], None, False
                if self.on_sync is not None:
                    self.on_sync()
                self.to_host.put(encode_frame(FrameKind.SYNC, 0))
        self._frame_words(now)

    def _nak(self):
        self.nak_sent = True
        self.to_host.put(encode_frame(FrameKind.NAK, self.expected))

    def _frame_words(self, now):
        if self.pending is None and self.outbox:
            chunk, self.outbox = self.outbox[:MAX_FRAME_WORDS], self.outbox[MAX_FRAME_WORDS:]
            self.pending = (encode_frame(FrameKind.DATA, self.tx_seq, chunk), now)
            self.to_host.put(self.pending[0])

    def _send_pending(self, now):
        self.pending = (self.pending[0], now)
        self.to_host.put(self.pending[0])
