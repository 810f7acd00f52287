"""The board's side of the serial link in Python, for the host-side tests (``test_link.py`` through an
in-memory loopback, ``test_serial.py`` through a pseudo-terminal): :class:`BoardModel` follows the
board's link rules of ``docs/serial.md`` with an application behind it, e.g. :func:`tile_app` of a
:class:`lowbit.sim.reference.ModelTile`."""

from lowbit.sw.host.link import FrameDecoder, FrameError, encode_frame
from lowbit.sw.protocol.frames import MAX_FRAME_WORDS, SEQ_BEHIND, WINDOW_FRAMES, FrameKind

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
    "go back N" too: up to :data:`WINDOW_FRAMES` unacknowledged, ACK(s) cumulative, NAK(e) of a frame in
    the window (or of the one after it) acknowledges the frames before e and sends those from e again,
    and no ACK within ``ack_timeout`` sends the whole window again."""

    def __init__(self, to_host, app, ack_timeout=0.5, on_sync=None):
        self.to_host, self.app, self.ack_timeout, self.on_sync = to_host, app, ack_timeout, on_sync
        self.decoder = FrameDecoder()
        self.expected, self.tx_seq = 0, 0
        self.nak_sent = False  # a NAK(expected) has been sent since expected last changed
        self.outbox = []  # words for the host not yet framed
        self.window = []  # (seq, frame) of the DATA frames sent and not yet ACKed, oldest first
        self.sent_at = 0.0  # when the window last moved or was sent
        self.delivered = []

    def receive(self, data, now):
        events = self.decoder.feed(data)
        self._handle(events, now)

    def silence(self, now):
        """The line was silent: cut a frame short; resend an unACKed frame after its timeout; frame words."""
        self._handle(self.decoder.expire(), now)
        if self.window and now - self.sent_at >= self.ack_timeout:
            self._resend(now)
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
            elif event.kind in (FrameKind.ACK, FrameKind.NAK) and self.window:
                # the frames before the acknowledged one (through it, for an ACK) are done
                done = ((event.seq - self.window[0][0]) & 0xFF) + (event.kind == FrameKind.ACK)
                if done <= len(self.window):  # of a frame in the window (a NAK: or of the one after it)
                    del self.window[:done]
                    self.sent_at = now
                    if event.kind == FrameKind.NAK:
                        self._resend(now)
            elif event.kind == FrameKind.SYNC:  # a session starts: drop everything, reset the app
                self.expected, self.tx_seq, self.outbox, self.window, self.nak_sent = 0, 0, [], [], False
                if self.on_sync is not None:
                    self.on_sync()
                self.to_host.put(encode_frame(FrameKind.SYNC, 0))
        self._frame_words(now)

    def _nak(self):
        self.nak_sent = True
        self.to_host.put(encode_frame(FrameKind.NAK, self.expected))

    def _frame_words(self, now):
        while len(self.window) < WINDOW_FRAMES and self.outbox:
            chunk, self.outbox = self.outbox[:MAX_FRAME_WORDS], self.outbox[MAX_FRAME_WORDS:]
            self.window.append((self.tx_seq, encode_frame(FrameKind.DATA, self.tx_seq, chunk)))
            self.tx_seq = (self.tx_seq + 1) & 0xFF
            self.sent_at = now
            self.to_host.put(self.window[-1][1])

    def _resend(self, now):
        """Every unacknowledged frame again, in order (go back N)."""
        self.sent_at = now
        for _, frame in self.window:
            self.to_host.put(frame)
