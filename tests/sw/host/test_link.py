"""The host side of the serial link: frame encoding and decoding (against the example of docs/serial.md),
and LinkTransport against an in-memory loopback to a Python model of the board's link rules that
corrupts, truncates, drops and duplicates frames on purpose (seeded): the words arrive exactly once and
in order, at most WINDOW_FRAMES frames in flight, and the driver runs layers through it exactly as on
ModelTile. The go-back-N rules one at a time against a scripted board (ScriptedPort): cumulative ACKs,
ignored ACKs and NAKs, going back on a NAK and on the timeout, a late NAK, a busy tile's slow ACKs, seqs
wrapping inside the window, retries exhausted."""

import asyncio
import random

import numpy as np
import pytest

from lowbit.sim.reference import ModelTile
from lowbit.sw.host import TileInterface, TransportError
from lowbit.sw.host.link import Frame, FrameDecoder, FrameError, LinkTransport, encode_frame
from lowbit.sw.protocol import Family, InputKind, LayerConfig, TileGeometry, WeightKind
from lowbit.sw.protocol.frames import MAX_FRAME_WORDS, SOF, WINDOW_FRAMES, FrameKind, crc16
from tests.sw.host.link_board import BoardModel, tile_app


def run(coroutine):
    return asyncio.run(coroutine)


# --- frames ---------------------------------------------------------------------------------------------


def test_example_frame_of_the_docs():
    """docs/serial.md: IDENTIFY's header word in a DATA frame, and an ACK (the CRC function is checked
    against the catalogue's check value below)."""
    assert encode_frame(FrameKind.DATA, 0, [0x05000000]).hex(" ") == "a5 01 00 01 00 00 00 00 05 63 e8"
    assert encode_frame(FrameKind.ACK, 0).hex(" ") == "a5 02 00 00 00 69 a8"
    assert encode_frame(FrameKind.ACK, 7).hex(" ") == "a5 02 07 00 00 ec 38"


def test_crc_check_value():
    assert crc16(b"123456789") == 0x29B1
    assert crc16(encode_frame(FrameKind.NAK, 200)[1:]) == 0


@pytest.mark.parametrize(
    "kind, seq, words, message",
    [
        (0x100, 0, [], "kind must be a byte"),
        (FrameKind.DATA, 256, [], "seq must be between 0 and 255, not 256"),
        (FrameKind.DATA, 0, [0] * 65, "at most 64 words, not 65"),
        (FrameKind.DATA, 0, [1 << 32], "32-bit"),
    ],
)
def test_encode_wrong(kind, seq, words, message):
    with pytest.raises(ValueError, match=message):
        encode_frame(kind, seq, words)


def test_decoder_incremental_skips_junk_and_reports_errors():
    good = encode_frame(FrameKind.DATA, 3, [1, 0xA5A5A5A5, 0xFFFFFFFF])
    bad = bytearray(good)
    bad[7] ^= 0x40
    too_many = bytes([SOF, FrameKind.DATA, 0]) + (MAX_FRAME_WORDS + 1).to_bytes(2, "little")
    stream = b"\x00\x13" + good + bytes(bad) + too_many + encode_frame(FrameKind.ACK, 9) + good[:6]
    decoder, events = FrameDecoder(), []
    for byte in stream:  # one byte at a time
        events += decoder.feed([byte])
    assert events[0] == Frame(FrameKind.DATA, 3, (1, 0xA5A5A5A5, 0xFFFFFFFF))
    assert isinstance(events[1], FrameError) and events[1].reason == "crc"
    assert isinstance(events[2], FrameError) and events[2].reason == "count"
    assert events[3] == Frame(FrameKind.ACK, 9, ())
    assert len(events) == 4 and decoder.in_frame and decoder.skipped == 2
    assert [e.reason for e in decoder.expire()] == ["truncated"] and not decoder.in_frame
    assert decoder.feed(good) == [events[0]]


# --- the loopback -----------------------------------------------------------------------------------------


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Channel:
    """Frames (one write each) on their way, with faults: each frame is corrupted, truncated, dropped or
    duplicated with probability ``rate`` (seeded), or as ``script`` says (``{frame number: fault}``, the
    frames counted from 0; a fault is ``"flip"``, ``"cut"``, ``"drop"`` or ``"duplicate"``)."""

    FAULTS = ("flip", "cut", "drop", "duplicate")

    def __init__(self, rng, rate, script=None):
        self.rng, self.rate, self.script = rng, rate, script or {}
        self.bytes, self.faults, self.frames = bytearray(), 0, 0

    def put(self, frame):
        frame = bytearray(frame)
        roll = self.rng.random()
        fault = self.script.get(
            self.frames, self.FAULTS[min(3, int(roll / self.rate))] if roll < 4 * self.rate else None
        )
        self.frames += 1
        if fault == "flip":
            frame[self.rng.randrange(len(frame))] ^= 1 << self.rng.randrange(8)
        elif fault == "cut":  # cut short
            frame = frame[: self.rng.randrange(1, len(frame))]
        elif fault == "drop":  # lost
            frame = bytearray()
        elif fault == "duplicate":
            frame = frame + frame
        self.faults += fault is not None
        self.bytes += frame
        return frame


class LoopbackPort:
    """A byte port (``write``, ``read(n)``) to a :class:`BoardModel` through two faulty channels (``to_board``
    and ``to_host`` scripts: see :class:`Channel`). A read that finds nothing lets ``step`` seconds pass
    (the port's timeout) and the board notice the silence. ``log`` records, in order, ``("sent", seq)`` for
    each DATA frame the host writes and ``("read", seq)`` for each good ACK the host has read in full."""

    def __init__(self, app, seed, rate, step=0.05, to_board=None, to_host=None):
        rng = random.Random(seed)
        self.clock, self.step = Clock(), step
        self.to_board, self.to_host = Channel(rng, rate, to_board), Channel(rng, rate, to_host)
        self.board = BoardModel(self.to_host, app)
        self.log, self._host_view = [], FrameDecoder()  # the host's decoder, mirrored

    def write(self, data):
        if data[1] == FrameKind.DATA:
            self.log.append(("sent", data[2]))
        frame = self.to_board.put(data)
        self.to_board.bytes.clear()
        self.board.receive(frame, self.clock.now)

    def read(self, n):
        data = self._read(n)
        events = self._host_view.feed(data) if data else self._host_view.expire()
        self.log += [("read", e.seq) for e in events if isinstance(e, Frame) and e.kind == FrameKind.ACK]
        return data

    def _read(self, n):
        if not self.to_host.bytes:
            self.clock.now += self.step
            self.board.silence(self.clock.now)
            if not self.to_host.bytes:
                return b""
        # Return one frame's worth at most, so that a truncated frame is followed by silence.
        data = bytes(self.to_host.bytes[:n])
        del self.to_host.bytes[:n]
        return data

    def most_in_flight(self):
        """The most DATA frames the host had sent (each counted once) and not yet seen acknowledged, by the
        cumulative rule, from :attr:`log`."""
        unacked, most = [], 0
        for what, seq in self.log:
            if what == "sent" and seq not in unacked:
                unacked.append(seq)
                most = max(most, len(unacked))
            elif what == "read" and seq in unacked:
                del unacked[: unacked.index(seq) + 1]
        return most


def echo(words):
    return [(w * 3 + 1) & 0xFFFFFFFF for w in words]


def frames_of(words):
    return -(-len(words) // MAX_FRAME_WORDS)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_words_arrive_exactly_once_and_in_order(seed):
    """Go back N through seeded faults in both directions (frames in the middle of a window corrupted,
    cut, lost, duplicated; ACKs and NAKs too): every word reaches the board once and in order, and the host
    never has more than WINDOW_FRAMES frames unacknowledged."""
    port = LoopbackPort(echo, seed, rate=0.08)
    link = LinkTransport(port, timeout=0.3, retries=30, clock=port.clock)
    rng = random.Random(seed)
    sent, got = [], []
    for _ in range(25):
        words = [rng.randrange(1 << 32) for _ in range(rng.choice([1, 5, 64, 65, 150, 600]))]
        run(link.write(words))
        sent += words
        got += run(link.read(len(words)))
    assert port.board.delivered == sent, f"seed {seed}: the board got words lost, duplicated or reordered"
    assert got == echo(sent), f"seed {seed}: the host got words lost, duplicated or reordered"
    faults = port.to_board.faults + port.to_host.faults
    assert faults > 10, f"seed {seed}: only {faults} faults injected"
    assert link.stats.resent > 0 and link.stats.bad_frames > 0, f"seed {seed}: {link.stats}"
    assert link.stats.data_frames == port.board.expected, f"seed {seed}: {link.stats}"  # < 256 frames
    assert port.most_in_flight() == WINDOW_FRAMES, f"seed {seed}: {port.most_in_flight()} frames in flight"


@pytest.mark.parametrize("seed", [6, 7])
def test_sequence_numbers_wrap_through_faults(seed):
    """More than 256 frames through faults: the window crosses seq 255 -> 0 many times."""
    port = LoopbackPort(echo, seed, rate=0.05)
    link = LinkTransport(port, timeout=0.3, retries=30, clock=port.clock)
    rng = random.Random(seed)
    sent, frames = [], 0
    while frames < 300:
        words = [rng.randrange(1 << 32) for _ in range(rng.choice([3, 70, 200, 256]))]
        run(link.write(words))
        sent += words
        frames += frames_of(words)
        assert run(link.read(len(words))) == echo(words), f"seed {seed}"
    assert port.board.delivered == sent, f"seed {seed}: the board got words lost, duplicated or reordered"
    assert link.stats.data_frames == frames and port.board.expected == frames & 0xFF, f"seed {seed}"
    assert link.stats.resent > 0 and port.most_in_flight() == WINDOW_FRAMES, f"seed {seed}: {link.stats}"


def test_up_to_window_frames_in_flight_and_never_more():
    """No faults: the host sends frames 0..3 before it reads any ACK, then a frame per ACK; it never has
    more than WINDOW_FRAMES frames unacknowledged, and nothing is resent."""
    port = LoopbackPort(echo, 0, rate=0)
    link = LinkTransport(port, timeout=0.3, retries=0, clock=port.clock)
    words = list(range(10 * MAX_FRAME_WORDS + 7))
    run(link.write(words))
    assert port.log[:WINDOW_FRAMES] == [("sent", seq) for seq in range(WINDOW_FRAMES)]
    assert port.log[WINDOW_FRAMES] == ("read", 0)
    assert port.most_in_flight() == WINDOW_FRAMES
    assert [seq for what, seq in port.log if what == "sent"] == list(range(11))
    assert [seq for what, seq in port.log if what == "read"] == list(range(11))  # write waits for every ACK
    assert port.board.delivered == words
    assert (link.stats.data_frames, link.stats.resent, link.stats.naks_received) == (11, 0, 0)


@pytest.mark.parametrize("fault", ["flip", "cut", "drop"])
def test_a_bad_frame_in_the_middle_of_a_window_is_recovered_by_going_back(fault):
    """The host's second frame is damaged or lost; the frames after it are ahead of the board's ``expected``
    and ignored (one NAK in all). The host goes back to frame 1 and sends it and every frame after it
    again, in order: each word delivered once."""
    port = LoopbackPort(echo, 3, rate=0, to_board={1: fault})
    link = LinkTransport(port, timeout=0.3, retries=2, clock=port.clock)
    words = list(range(6 * MAX_FRAME_WORDS))
    run(link.write(words))
    assert port.board.delivered == words
    sent = [seq for what, seq in port.log if what == "sent"]
    back = sent.index(1, 2)  # where the host went back
    assert sent[:back] == list(range(back)) and back >= WINDOW_FRAMES
    assert sent[back:] == list(range(1, 6)), sent
    assert link.stats.resent == back - 1 and link.stats.data_frames == 6
    assert link.stats.naks_received == 1  # one NAK per loss (a lost frame: of the next one, ahead)


def test_the_board_model_follows_the_board_rules():
    """BoardModel, the board of these tests, frame by frame (docs/serial.md, the board receiving): in order
    delivered and ACKed; a resend behind ``expected`` ACKs the last frame delivered; a frame ahead is
    ignored and NAKed once per loss; a bad frame is always NAKed."""

    class Line(list):
        put = list.append

    line = Line()
    board = BoardModel(line, lambda words: [])

    def send(seq, bad=False):
        frame = bytearray(encode_frame(FrameKind.DATA, seq, [seq]))
        frame[-1] ^= bad
        line.clear()
        board.receive(bytes(frame), 0.0)
        return [(FrameKind(f[1]).name, f[2]) for f in line]

    assert send(0) == [("ACK", 0)] and send(1) == [("ACK", 1)]
    assert send(0) == [("ACK", 1)]  # behind: a resend, its ACK lost
    assert send(3) == [("NAK", 2)] and send(4) == []  # ahead: one NAK per loss
    assert send(2, bad=True) == [("NAK", 2)]  # a bad frame: NAKed every time
    assert send(2) == [("ACK", 2)] and send(4) == [("NAK", 3)]  # expected moved: a new NAK
    assert send(3) == [("ACK", 3)] and send(4) == [("ACK", 4)]
    assert send(133) == [("ACK", 4)]  # (5 - 133) mod 256 = 128: behind, the farthest
    assert send(132) == [("NAK", 5)]  # (5 - 132) mod 256 = 129: ahead
    assert board.delivered == [0, 1, 2, 3, 4] and board.expected == 5


# --- go back N, frame by frame ------------------------------------------------------------------------------


class ScriptedPort:
    """A port whose board is the test: ``answer(frames, port)`` returns the frames (bytes) the board sends
    when the host reads and nothing is waiting, given the DATA frames (:class:`Frame`) the host wrote since
    the last call; each such read lets ``step`` seconds pass. ``in_waiting`` as on a serial port, so that
    the host reads an answer at once. ``sent`` lists the seqs of every DATA frame the host wrote."""

    def __init__(self, answer, step=0.05):
        self.answer, self.step, self.clock = answer, step, Clock()
        self.decoder, self.new, self.sent, self.inbox = FrameDecoder(), [], [], bytearray()

    def write(self, data):
        for frame in self.decoder.feed(data):
            self.new.append(frame)
            self.sent.append(frame.seq)

    @property
    def in_waiting(self):
        return len(self.inbox)

    def read(self, n):
        if not self.inbox:
            self.clock.now += self.step
            frames, self.new = self.new, []
            self.inbox += b"".join(self.answer(frames, self))
            if not self.inbox:
                return b""
        data = bytes(self.inbox[:n])
        del self.inbox[:n]
        return data


def ack(seq):
    return encode_frame(FrameKind.ACK, seq)


def nak(seq):
    return encode_frame(FrameKind.NAK, seq)


def ack_all(frames, port):
    return [ack(frame.seq) for frame in frames]


def scripted(answer, frames, *, start=0, retries=2):
    """Write ``frames`` frames (the first of seq ``start``, after ``start`` one-word frames ACKed at once)
    through a :class:`ScriptedPort` with ``answer``; returns (port, link)."""
    port = ScriptedPort(ack_all)
    link = LinkTransport(port, timeout=0.3, retries=retries, clock=port.clock)
    for _ in range(start):
        run(link.write([0]))
    port.sent.clear()
    port.answer = answer
    run(link.write(list(range(frames * MAX_FRAME_WORDS))))
    return port, link


def test_a_cumulative_ack_acknowledges_the_earlier_frames():
    """The ACKs of frames 0..2 are lost, ACK(3) arrives: nothing is resent, and the window moves on."""
    port, link = scripted(lambda frames, port: [ack(f.seq) for f in frames if f.seq not in (0, 1, 2)], 6)
    assert port.sent == [0, 1, 2, 3, 4, 5]
    assert link.stats.resent == 0 and link.stats.data_frames == 6


def test_an_ack_of_no_frame_in_the_window_is_ignored():
    """ACK(4) (not sent yet) and ACK(255) (behind) while frames 0..3 are in flight: ignored, so the oldest
    frame's timeout sends all four again."""

    def answer(frames, port):
        return [ack(4), ack(255)] if port.sent == [0, 1, 2, 3] and frames else ack_all(frames, port)

    port, link = scripted(answer, 4)
    assert port.sent == [0, 1, 2, 3, 0, 1, 2, 3]
    assert link.stats.resent == 4 and link.stats.data_frames == 4


def test_a_nak_resends_from_the_naked_frame_in_order():
    """ACK(0) and NAK(2) arrive together (the ACK of 1 was lost, 2 was bad); a NAK of no frame in the window
    (9) is ignored: the host sends 2 and 3 again, then the new frames 4 and 5; ACK(5) acknowledges 1..5."""

    def answer(frames, port):
        if [f.seq for f in frames] == [0, 1, 2, 3]:
            return [nak(9), ack(0), nak(2)]
        return [ack(frames[-1].seq)] if frames else []

    port, link = scripted(answer, 6)
    assert port.sent == [0, 1, 2, 3, 2, 3, 4, 5]
    assert (link.stats.resent, link.stats.data_frames, link.stats.naks_received) == (2, 6, 2)


def test_a_nak_of_the_oldest_frame_resends_the_whole_window():
    def answer(frames, port):
        return [nak(0)] if len(port.sent) == 4 and frames else ack_all(frames, port)

    port, link = scripted(answer, 5)
    assert port.sent == [0, 1, 2, 3, 0, 1, 2, 3, 4]
    assert link.stats.resent == 4


@pytest.mark.parametrize("with_acks", [False, True], ids=["alone", "with-acks"])
def test_a_late_nak(with_acks):
    """Frames 1 and 2 both bad: the board answers NAK(1) twice, the second arrives after the host went back.
    Read on its own, it makes the host go back again (it cannot tell a NAK of the frames before its resend
    from one of the resend itself); read together with the ACKs of the resent frames (one poll), it is
    moot: ACK(2) acknowledges the frame it names (the ACK of 1 lost), and frames 3 and 4 are not sent again."""

    def answer(frames, port):
        seqs = [f.seq for f in frames]
        if seqs == [0, 1, 2, 3]:
            return [ack(0), nak(1)]
        if seqs == [1, 2, 3, 4] and port.sent.count(1) == 2:  # the first resend
            return [nak(1)] + ([ack(2)] if with_acks else [])
        if seqs:
            return [ack(seqs[-1])]
        return [ack(4)] if with_acks else []

    port, link = scripted(answer, 5)
    if with_acks:
        assert port.sent == [0, 1, 2, 3, 1, 2, 3, 4] and link.stats.resent == 3
    else:
        assert port.sent == [0, 1, 2, 3, 1, 2, 3, 4, 1, 2, 3, 4] and link.stats.resent == 7
    assert link.stats.naks_received == 2


def test_a_busy_tile_acks_slowly_without_resends():
    """The board ACKs a frame every 0.2 s (its tile takes that long to take a frame's words), the timeout
    is 0.3 s: the window is four frames, so the fourth frame's ACK comes 0.8 s after it was sent, but
    every ACK that moves the window restarts the oldest frame's timeout; nothing is sent again, and each
    ACK lets the next frame go."""
    acked = []

    def answer(frames, port):
        port.calls = getattr(port, "calls", 0) + 1
        if port.calls % 4 or len(acked) >= len(port.sent):
            return []
        acked.append(len(acked))
        return [ack(acked[-1])]

    port, link = scripted(answer, 8)
    assert port.sent == list(range(8)) and link.stats.resent == 0
    assert port.clock.now >= 8 * 0.2


def test_sequence_numbers_wrap_inside_the_window():
    """Frames 253, 254, 255, 0 in flight: ACK(254) and NAK(255) send 255 and 0 again, then 1 and 2; ACK(2)
    acknowledges 255..2 across the wrap, ACK(252) (behind the window) is ignored."""

    def answer(frames, port):
        if [f.seq for f in frames] == [253, 254, 255, 0]:
            return [ack(254), nak(255)]
        return [ack(252), ack(2)] if frames else []

    port, link = scripted(answer, 6, start=253)
    assert port.sent == [253, 254, 255, 0, 255, 0, 1, 2]
    assert link.stats.resent == 2 and link.stats.data_frames == 253 + 6


@pytest.mark.parametrize(
    "answer, seq, words, resent",
    [
        (lambda frames, port: [], 0, 64, 8),  # silent: the window sent three times, no fifth frame
        (lambda frames, port: [nak(0)] if frames else [], 0, 64, 8),  # NAKs the oldest frame every time
        # ACKs frames 0..2, then falls silent: frame 3 is the oldest; 3 and 4 sent three times
        (lambda frames, port: [ack(2)] if len(port.sent) == 4 else [], 3, 64, 4),
    ],
    ids=["silent", "naks", "silent-later"],
)
def test_retries_exhausted(answer, seq, words, resent):
    port = ScriptedPort(answer)
    link = LinkTransport(port, timeout=0.3, retries=2, clock=port.clock)
    with pytest.raises(
        TransportError,
        match=rf"^DATA frame seq {seq} \({words} words\) was not acknowledged after 3 "
        r"attempts: the board does not answer$",
    ):
        run(link.write(list(range(5 * MAX_FRAME_WORDS))))
    assert link.stats.resent == resent
    assert link.stats.data_frames == (4 if seq == 0 else 5)


def data(seq, bad=False):
    """The board's DATA frame ``seq`` (one word, ``seq``), its CRC broken if ``bad``."""
    frame = bytearray(encode_frame(FrameKind.DATA, seq, [seq]))
    frame[-1] ^= bad
    return bytes(frame)


def test_the_hosts_answers_to_the_boards_window():
    """The host receiving the board's window ("go back N" from the board, docs/serial.md): frames in order
    taken and ACKed; a bad frame NAKed and the frames after it (ahead) ignored without a second NAK; the
    board's resends from the NAKed frame taken; a resend behind ``expected`` (its ACK lost) answered with
    the ACK of the last frame taken; after the expected seq moves, a frame ahead is NAKed again."""
    rounds = iter(
        [
            [data(0), data(1, bad=True), data(2), data(3)],  # 1 damaged: NAK(1), 2 and 3 ignored
            [data(1), data(2), data(3), data(4)],  # the board goes back to 1
            [data(2)],  # a resend (the ACKs of 2.. lost): ACK(4), the last taken
            [data(6), data(7)],  # 5 lost: NAK(5) once
            [data(5), data(6), data(7)],
        ]
    )
    heard = []  # the host's frames

    def board(frames, port):
        heard.extend(frames)
        return next(rounds, [])

    port = ScriptedPort(board)
    link = LinkTransport(port, timeout=0.3, retries=2, clock=port.clock)
    assert run(link.read(8)) == list(range(8))
    answers = [(FrameKind(frame.kind).name, frame.seq) for frame in heard + port.new]
    assert answers == [
        ("ACK", 0), ("NAK", 1),
        ("ACK", 1), ("ACK", 2), ("ACK", 3), ("ACK", 4),
        ("ACK", 4),
        ("NAK", 5),
        ("ACK", 5), ("ACK", 6), ("ACK", 7),
    ]  # fmt: skip
    assert (link.stats.received, link.stats.duplicates, link.stats.bad_frames, link.stats.ahead) == (8, 1, 1, 4)


def test_the_board_model_sends_a_window():
    """BoardModel's own DATA frames: up to WINDOW_FRAMES sent at once, the next one as ACKs free the
    window (cumulative); NAK(e) sends the frames from e again; NAK of the frame after the window empties
    it; no ACK within the timeout sends the whole window again."""

    class Line(list):
        put = list.append

    line = Line()
    board = BoardModel(line, lambda words: list(range(len(words) * 8 * MAX_FRAME_WORDS)), ack_timeout=0.5)

    def answer(frame, now=0.0):
        line.clear()
        board.receive(frame, now)
        return [(FrameKind(f[1]).name, f[2]) for f in line]

    frames = answer(encode_frame(FrameKind.DATA, 0, [0]))  # the app answers 8 frames of words
    assert frames == [("ACK", 0)] + [("DATA", seq) for seq in range(WINDOW_FRAMES)]
    assert answer(ack(1)) == [("DATA", 4), ("DATA", 5)]  # frames 0 and 1 acknowledged
    assert answer(ack(1)) == []  # not in the window: ignored
    assert answer(nak(3)) == [("DATA", 3), ("DATA", 4), ("DATA", 5), ("DATA", 6)]
    assert answer(nak(7)) == [("DATA", 7)]  # 3..6 acknowledged, 7 sent
    line.clear()
    board.silence(0.4)
    assert line == []
    board.silence(0.6)
    assert [(FrameKind(f[1]).name, f[2]) for f in line] == [("DATA", 7)]  # the timeout
    assert answer(ack(7)) == [] and board.window == []


def test_layers_through_faults_equal_the_model_tile(seed=17):
    """TileInterface over LinkTransport over faults, against ModelTile behind the board model: the same
    responses as ModelTile directly."""
    geometry = TileGeometry(Family.POPCOUNT, 4, 32, max_in_features=128, max_out_features=64, max_weight_rows=64)
    layer = LayerConfig(40, 6, WeightKind.BINARY, 1, 0, InputKind.BINARY, 1, 0)
    port = LoopbackPort(tile_app(ModelTile(geometry)), seed, rate=0.1)
    interface = TileInterface(LinkTransport(port, timeout=0.3, retries=30, clock=port.clock))
    rng = np.random.default_rng(seed)
    weights = rng.integers(0, 1 << 32, geometry.weight_words(layer), dtype=np.uint64).tolist()
    thresholds = [0] * geometry.threshold_words(layer)
    inputs = rng.integers(0, 1 << 32, 20 * geometry.input_words(layer), dtype=np.uint64).tolist()

    async def session():
        assert await interface.identify() == geometry
        await interface.configure(layer)
        await interface.load_weights(weights)
        await interface.load_thresholds(thresholds)
        return await interface.run(inputs, 20)

    reference = TileInterface(ModelTile(geometry), geometry)

    async def direct():
        await reference.configure(layer)
        await reference.load_weights(weights)
        await reference.load_thresholds(thresholds)
        return await reference.run(inputs, 20)

    assert run(session()) == run(direct()), f"seed {seed}"


def test_silent_board_raises_a_clear_error():
    class Silent:
        def write(self, data):
            pass

        def read(self, n):
            clock.now += 0.1
            return b""

    clock = Clock()
    link = LinkTransport(Silent(), timeout=0.5, retries=2, clock=clock)
    with pytest.raises(
        TransportError,
        match=r"DATA frame seq 0 \(3 words\) was not acknowledged after 3 "
        r"attempts: the board does not answer",
    ):
        run(link.write([1, 2, 3]))
    with pytest.raises(TransportError, match="the board sent no DATA"):
        run(link.read(1))


@pytest.mark.parametrize(
    "kw, message",
    [({"timeout": 0}, "timeout must be a positive"), ({"retries": -1}, "retries must be a non-negative integer")],
)
def test_init_wrong(kw, message):
    with pytest.raises(ValueError, match=message):
        LinkTransport(object(), **kw)
