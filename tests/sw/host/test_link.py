"""The host side of the serial link: frame encoding and decoding (against the example of docs/serial.md),
and LinkTransport against an in-memory loopback to a Python model of the board's link rules that
corrupts, truncates, drops and duplicates frames on purpose (seeded): the words arrive exactly once and
in order, and the driver runs layers through it exactly as on ModelTile."""

import asyncio
import random

import numpy as np
import pytest

from lowbit.sim.reference import ModelTile
from lowbit.sw.host import TileInterface, TransportError
from lowbit.sw.host.link import Frame, FrameDecoder, FrameError, LinkTransport, encode_frame
from lowbit.sw.protocol import Family, InputKind, LayerConfig, TileGeometry, WeightKind
from lowbit.sw.protocol.frames import MAX_FRAME_WORDS, SOF, FrameKind, crc16
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
    duplicated with probability ``rate`` (seeded)."""

    def __init__(self, rng, rate):
        self.rng, self.rate, self.bytes, self.faults = rng, rate, bytearray(), 0

    def put(self, frame):
        frame = bytearray(frame)
        roll = self.rng.random()
        if roll < self.rate:  # a flipped bit
            frame[self.rng.randrange(len(frame))] ^= 1 << self.rng.randrange(8)
        elif roll < 2 * self.rate:  # cut short
            frame = frame[: self.rng.randrange(1, len(frame))]
        elif roll < 3 * self.rate:  # lost
            frame = bytearray()
        elif roll < 4 * self.rate:  # duplicated
            frame = frame + frame
        self.faults += roll < 4 * self.rate
        self.bytes += frame
        self.gap = True
        return frame


class LoopbackPort:
    """A byte port (``write``, ``read(n)``) to a :class:`BoardModel` through two faulty channels. A read
    that finds nothing lets ``step`` seconds pass (the port's timeout) and the board notice the silence."""

    def __init__(self, app, seed, rate, step=0.05):
        rng = random.Random(seed)
        self.clock, self.step = Clock(), step
        self.to_board, self.to_host = Channel(rng, rate), Channel(rng, rate)
        self.board = BoardModel(self.to_host, app)

    def write(self, data):
        frame = self.to_board.put(data)
        self.to_board.bytes.clear()
        self.board.receive(frame, self.clock.now)

    def read(self, n):
        if not self.to_host.bytes:
            self.clock.now += self.step
            self.board.silence(self.clock.now)
            if not self.to_host.bytes:
                return b""
        # Return one frame's worth at most, so that a truncated frame is followed by silence.
        data = bytes(self.to_host.bytes[:n])
        del self.to_host.bytes[:n]
        return data


def echo(words):
    return [(w * 3 + 1) & 0xFFFFFFFF for w in words]


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_words_arrive_exactly_once_and_in_order(seed):
    port = LoopbackPort(echo, seed, rate=0.08)
    link = LinkTransport(port, timeout=0.3, retries=30, clock=port.clock)
    rng = random.Random(seed)
    sent, got = [], []
    for _ in range(25):
        words = [rng.randrange(1 << 32) for _ in range(rng.choice([1, 5, 64, 65, 150]))]
        run(link.write(words))
        sent += words
        got += run(link.read(len(words)))
    assert port.board.delivered == sent, f"seed {seed}: the board got words lost, duplicated or reordered"
    assert got == echo(sent), f"seed {seed}: the host got words lost, duplicated or reordered"
    faults = port.to_board.faults + port.to_host.faults
    assert faults > 10, f"seed {seed}: only {faults} faults injected"
    assert link.stats.resent > 0 and link.stats.bad_frames > 0


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
