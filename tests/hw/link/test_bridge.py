"""The board side of the serial link (LinkBridge) in Amaranth's simulator, driven bit by bit: delivery
only of checked frames and only once, ACK after the last word is accepted, a window of frames back to
back in the receive slots and go-back-N after a bad one, NAK for a bad CRC, a count too large and a
frame cut short, skipped junk; the tile's words in DATA frames, the board's own window of them (up to
WINDOW_FRAMES unacknowledged), going back on NAK and on timeout."""

import pytest
from amaranth.sim import Simulator

from lowbit.hw.link.bridge import LinkBridge, crc16_update
from lowbit.sw.host.link import Frame, FrameDecoder, encode_frame
from lowbit.sw.protocol.frames import MAX_FRAME_WORDS, SOF, WINDOW_FRAMES, FrameKind, crc16

DIVISOR = 4
ACK_TIMEOUT = 12_000


class Bench:
    """A LinkBridge with a host on its pins (bytes sent bit by bit, ``tx`` decoded bit by bit), a sink on
    ``cmd`` (``cmd_ready(cycle)``) and a source on ``resp`` (``resp_words``, offered from ``resp_at``)."""

    def __init__(self, *, cmd_ready=lambda cycle: 1, resp_words=(), resp_at=0):
        self.dut = LinkBridge(DIVISOR, ack_timeout_cycles=ACK_TIMEOUT)
        self.cmd_ready, self.resp_words, self.resp_at = cmd_ready, list(resp_words), resp_at
        self.to_board = []  # bytes (or ("gap", cycles)) still to send
        self.cmd = []  # (word, cycle)
        self.frames = []  # (Frame or FrameError, cycle of its last byte)
        self.cycle = 0
        self.session_starts = []  # cycles of session_start pulses
        self._decoder = FrameDecoder()

    def send(self, data):
        self.to_board.extend(data)

    def pause(self, cycles):
        self.to_board.append(("gap", cycles))

    def run(self, script):
        """Run until ``script(ctx, bench)`` returns (it waits with :meth:`wait_frames`, which has a limit)."""
        dut = self.dut

        async def clock(ctx):
            while True:
                await ctx.tick()
                self.cycle += 1

        async def line(ctx):
            ctx.set(dut.rx, 1)
            while True:
                if not self.to_board:
                    await ctx.tick()
                    continue
                item = self.to_board.pop(0)
                if isinstance(item, tuple):
                    await ctx.tick().repeat(item[1])
                    continue
                for bit in [0] + [(item >> k) & 1 for k in range(8)] + [1]:
                    ctx.set(dut.rx, bit)
                    await ctx.tick().repeat(DIVISOR)

        async def monitor(ctx):
            while True:
                await ctx.tick()
                if ctx.get(dut.tx):
                    continue
                await ctx.tick().repeat(DIVISOR // 2)
                bits = [ctx.get(dut.tx)]
                for _ in range(9):
                    await ctx.tick().repeat(DIVISOR)
                    bits.append(ctx.get(dut.tx))
                assert bits[0] == 0 and bits[9] == 1, f"bad character from the board: {bits}"
                byte = sum(b << k for k, b in enumerate(bits[1:9]))
                self.frames += [(event, self.cycle) for event in self._decoder.feed([byte])]

        async def cmd_sink(ctx):
            while True:
                ctx.set(dut.cmd.ready, self.cmd_ready(self.cycle))
                _, _, valid, ready, payload = await ctx.tick().sample(dut.cmd.valid, dut.cmd.ready, dut.cmd.payload)
                if valid and ready:
                    self.cmd.append((payload, self.cycle))

        async def resp_source(ctx):
            if self.resp_at:
                await ctx.tick().repeat(self.resp_at)
            for word in self.resp_words:
                if isinstance(word, tuple):
                    ctx.set(dut.resp.valid, 0)
                    await ctx.tick().repeat(word[1])
                    continue
                ctx.set(dut.resp.payload, word)
                ctx.set(dut.resp.valid, 1)
                await ctx.tick().until(dut.resp.ready)
            ctx.set(dut.resp.valid, 0)

        async def session(ctx):
            async for _, _, start in ctx.tick().sample(dut.session_start):
                if start:
                    self.session_starts.append(self.cycle)

        async def host(ctx):
            await script(ctx, self)
            await ctx.tick().repeat(500)  # anything more would show up here
            self.resent = ctx.get(dut.resent_frames)

        sim = Simulator(dut)
        sim.add_clock(1e-8)
        for process in (clock, line, monitor, cmd_sink, resp_source, session):
            sim.add_testbench(process, background=True)
        sim.add_testbench(host)
        sim.run()
        return self

    async def wait_until(self, ctx, condition, limit=40_000):
        """Wait until ``condition()`` holds, checked after each frame from the board."""
        for _ in range(limit):
            if self.frames and condition():
                return
            await ctx.tick()
        raise AssertionError(f"the condition did not hold after {limit} cycles: {self.frames}")

    async def wait_frames(self, ctx, count, limit=40_000):
        """Wait until the board has sent ``count`` frames in all."""
        for _ in range(limit):
            if len(self.frames) >= count:
                return
            await ctx.tick()
        raise AssertionError(f"{len(self.frames)} of {count} frames from the board after {limit} cycles: {self.frames}")


def kinds(bench):
    return [
        (event.kind, event.seq, event.words) if isinstance(event, Frame) else event.reason for event, _ in bench.frames
    ]


def ack(seq):
    return (FrameKind.ACK, seq, ())


def nak(seq):
    return (FrameKind.NAK, seq, ())


def test_crc_definition():
    assert crc16(b"123456789") == 0x29B1
    frame = encode_frame(FrameKind.DATA, 7, [0x12345678])
    assert crc16(frame[1:]) == 0


def test_crc_logic_matches_the_function():
    from amaranth.hdl import Module, Signal
    from amaranth.sim import Simulator as Sim

    crc, byte, out = Signal(16), Signal(8), Signal(16)
    m = Module()
    m.d.comb += out.eq(crc16_update(crc, byte))
    cases = [(0xFFFF, 0x31), (0x0000, 0x00), (0x1234, 0xA5), (0x8000, 0x80), (0xFFFF, 0xFF), (0x5A5A, 0x3C)]

    async def bench(ctx):
        for c, b in cases:
            ctx.set(crc, c)
            ctx.set(byte, b)
            assert ctx.get(out) == crc16(bytes([b]), c), f"crc 0x{c:04x} byte 0x{b:02x}"

    sim = Sim(m)
    sim.add_testbench(bench)
    sim.run()


def test_init_wrong_parameters():
    with pytest.raises(ValueError, match="divisor"):
        LinkBridge(2)
    with pytest.raises(ValueError, match="ack_timeout_cycles must be an integer of at least"):
        LinkBridge(8, ack_timeout_cycles=10)
    with pytest.raises(ValueError, match="flush_cycles must be an integer of at least 1 cycles, not 0"):
        LinkBridge(8, flush_cycles=0)


def test_host_frames_delivered_once_and_acked_after_the_last_word():
    hold = 3000  # cmd refuses words until this cycle: the ACK must wait for it

    async def script(ctx, b):
        b.send([0x00, 0x13, SOF ^ 1])  # junk outside a frame: skipped
        b.send(encode_frame(FrameKind.DATA, 0, [1, 2, 0xFFFFFFFF]))
        await b.wait_frames(ctx, 1)
        b.send(encode_frame(FrameKind.DATA, 0, [1, 2, 0xFFFFFFFF]))  # its ACK was lost: resent
        await b.wait_frames(ctx, 2)
        b.send(encode_frame(FrameKind.DATA, 1, [0xA5A5A5A5, SOF]))
        await b.wait_frames(ctx, 3)

    b = Bench(cmd_ready=lambda cycle: cycle >= hold).run(script)
    assert [w for w, _ in b.cmd] == [1, 2, 0xFFFFFFFF, 0xA5A5A5A5, SOF]
    assert kinds(b) == [ack(0), ack(0), ack(1)]
    assert b.frames[0][1] > b.cmd[2][1] > hold  # the ACK follows the last accepted word


def test_a_window_of_frames_back_to_back():
    """WINDOW_FRAMES frames sent without waiting while the tile takes no word: each waits in its slot; the
    next frame finds no slot and is NAKed; the ACKs follow each frame's delivery, in order; a bad frame in
    the middle of the resent window is NAKed once and the frames after it are ignored until it comes
    again (go back N): every word reaches ``cmd`` once, in order."""
    hold = 20_000
    frames = [[0x1000 * k + j for j in range(3)] for k in range(WINDOW_FRAMES + 3)]
    data = [encode_frame(FrameKind.DATA, k, words) for k, words in enumerate(frames)]
    bad = bytearray(data[WINDOW_FRAMES + 1])
    bad[7] ^= 0x40

    n = WINDOW_FRAMES

    async def script(ctx, b):
        for k in range(n + 1):  # the last finds every slot taken
            b.send(data[k])
        await b.wait_frames(ctx, 1)
        assert kinds(b) == [nak(n)] and b.cmd == []
        await b.wait_until(ctx, lambda: kinds(b)[-1] == ack(n - 1))  # the tile takes the words
        acks = len(b.frames)
        b.send(data[n] + bytes(bad) + data[n + 2])  # go back to the NAKed frame
        await b.wait_frames(ctx, acks + 2)  # its ACK and the bad frame's NAK (the third is ignored)
        b.send(data[n + 1] + data[n + 2])
        await b.wait_until(ctx, lambda: kinds(b)[-1] == ack(n + 2))

    b = Bench(cmd_ready=lambda cycle: cycle >= hold).run(script)
    assert [w for w, _ in b.cmd] == [w for words in frames for w in words]
    assert min(c for _, c in b.cmd) >= hold
    # An ACK per delivered frame; one waiting to be sent is replaced by the next (they are cumulative).
    answers = kinds(b)
    first_acks = answers[1 : answers.index(ack(n - 1)) + 1]
    assert answers[0] == nak(n) and first_acks[0] == ack(0) and set(first_acks) <= {ack(k) for k in range(n)}
    assert [a[1] for a in first_acks] == sorted({a[1] for a in first_acks})
    assert answers[len(first_acks) + 1 : len(first_acks) + 3] == [ack(n), nak(n + 1)]
    assert answers[-1] == ack(n + 2) and set(answers[len(first_acks) + 3 :]) <= {ack(n + 1), ack(n + 2)}


def test_bad_frames_are_naked_and_deliver_nothing():
    good = encode_frame(FrameKind.DATA, 0, [10, 20, 30, 40])
    flipped = bytearray(good)
    flipped[9] ^= 0x08  # a payload bit
    too_many = bytes([SOF, FrameKind.DATA, 0]) + (MAX_FRAME_WORDS + 1).to_bytes(2, "little")

    async def script(ctx, b):
        b.send(flipped)
        await b.wait_frames(ctx, 1)
        b.send(good[:12])  # cut short
        await b.wait_frames(ctx, 2)
        b.send(too_many)
        await b.wait_frames(ctx, 3)
        b.pause(200)
        b.send(good)
        await b.wait_frames(ctx, 4)

    b = Bench().run(script)
    assert kinds(b) == [nak(0), nak(0), nak(0), ack(0)]
    assert [w for w, _ in b.cmd] == [10, 20, 30, 40]


def test_tile_words_framed_resent_on_nak_and_timeout():
    """The board's window: a NAK sends the frame again at once; the next frame goes out without waiting
    for the first one's ACK; with no answer both are sent again after the timeout; one cumulative ACK
    releases both (nothing more is sent)."""
    words = list(range(0x100, 0x100 + 5))

    async def script(ctx, b):
        await b.wait_frames(ctx, 1)
        b.send(encode_frame(FrameKind.NAK, 0))  # -> resent at once
        await b.wait_frames(ctx, 3)  # DATA 0 again, then DATA 1 (its words came after a gap)
        await b.wait_frames(ctx, 5, limit=ACK_TIMEOUT + 5000)  # no answer -> 0 and 1 after the timeout
        b.send(encode_frame(FrameKind.ACK, 1))
        await ctx.tick().repeat(ACK_TIMEOUT + 2000)

    b = Bench(resp_words=words[:3] + [("gap", 2000)] + words[3:], resp_at=50).run(script)
    first, second = (FrameKind.DATA, 0, tuple(words[:3])), (FrameKind.DATA, 1, tuple(words[3:]))
    assert kinds(b) == [first, first, second, first, second]
    assert b.frames[3][1] - b.frames[2][1] > ACK_TIMEOUT
    assert b.resent == 3


def test_a_window_of_tile_frames_and_going_back_from_a_nak():
    """Six frames of tile words (the tile pausing between them): the first WINDOW_FRAMES go out before any
    ACK, and no more; ACK(1) frees two slots, so two more follow; NAK(3) (frame 3 lost on the host's
    side) releases 2 and sends 3, 4, 5 again; ACK(5) ends it."""
    frames = [[0x1000 * k + j for j in range(4)] for k in range(6)]

    async def script(ctx, b):
        await b.wait_frames(ctx, WINDOW_FRAMES)
        await ctx.tick().repeat(5000)
        assert len(b.frames) == WINDOW_FRAMES, "a frame beyond the window"
        b.send(encode_frame(FrameKind.ACK, 1))
        await b.wait_frames(ctx, 6)
        b.send(encode_frame(FrameKind.NAK, 3))
        await b.wait_frames(ctx, 9)
        b.send(encode_frame(FrameKind.ACK, 5))
        await ctx.tick().repeat(ACK_TIMEOUT + 2000)

    gap = ("gap", 100 * DIVISOR)  # longer than the flush (80 bit times): one frame per group of words
    b = Bench(resp_words=[item for frame in frames for item in [*frame, gap]]).run(script)
    data = [(FrameKind.DATA, seq, tuple(frames[seq])) for seq in range(6)]
    assert kinds(b) == data + data[3:]
    assert b.resent == 3


def test_full_frames_of_tile_words():
    words = [(k * 0x01010101) & 0xFFFFFFFF for k in range(MAX_FRAME_WORDS + 3)]

    async def script(ctx, b):
        await b.wait_frames(ctx, 1)
        b.send(encode_frame(FrameKind.ACK, 0))
        await b.wait_frames(ctx, 2)

    b = Bench(resp_words=words).run(script)
    assert kinds(b) == [
        (FrameKind.DATA, 0, tuple(words[:MAX_FRAME_WORDS])),
        (FrameKind.DATA, 1, tuple(words[MAX_FRAME_WORDS:])),
    ]


def sync():
    return (FrameKind.SYNC, 0, ())


def test_sync_starts_a_session():
    """SYNC: the board drops the tile's words it holds (an unACKed frame) and the frame it delivers,
    answers SYNC, and both sequence numbers restart at 0; a SYNC with a bad CRC is NAKed and changes
    nothing. ``session_start`` (the tile's reset) pulses once per good SYNC."""
    words = [0x11, 0x22, 0x33]

    async def script(ctx, b):
        await b.wait_frames(ctx, 1)  # DATA 0 with the tile's words
        b.send(encode_frame(FrameKind.DATA, 0, [1]))  # delivered, expected -> 1
        b.send(encode_frame(FrameKind.DATA, 1, [2]))  # delivered, expected -> 2
        await b.wait_frames(ctx, 3)
        bad = bytearray(encode_frame(FrameKind.SYNC, 0))
        bad[-1] ^= 1
        b.send(bad)  # NAK(2): nothing reset
        await b.wait_frames(ctx, 4)
        b.send(encode_frame(FrameKind.SYNC, 0))
        await b.wait_frames(ctx, 5)
        b.send(encode_frame(FrameKind.DATA, 0, [3]))  # seq 0 again: a new frame
        await b.wait_frames(ctx, 6)
        await ctx.tick().repeat(ACK_TIMEOUT + 2000)  # the dropped DATA 0 is never resent

    b = Bench(resp_words=words).run(script)
    assert kinds(b) == [(FrameKind.DATA, 0, tuple(words)), ack(0), ack(1), nak(2), sync(), ack(0)], kinds(b)
    assert [w for w, _ in b.cmd] == [1, 2, 3]
    assert len(b.session_starts) == 1 and b.frames[3][1] < b.session_starts[0] < b.frames[4][1]
