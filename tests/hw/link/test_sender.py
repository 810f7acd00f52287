"""FrameSender on its own in Amaranth's simulator: its bytes are compared with the host-side encoder
(``encode_frame``); DATA frames kept until ACKed, resent on NAK and timeout; ACK/NAK/SYNC first at a
frame boundary; ``restart``."""

import pytest
from amaranth.sim import Simulator

from lowbit.hw.link.sender import FrameSender
from lowbit.sw.host.link import FrameDecoder, encode_frame
from lowbit.sw.protocol.frames import MAX_FRAME_WORDS, WINDOW_FRAMES, FrameKind

ACK_TIMEOUT = 300
BYTE_CYCLES = 10  # the sink (a UART transmitter's stand-in) takes a byte every this many cycles

ACK, NAK, SYNC, DATA = FrameKind.ACK, FrameKind.NAK, FrameKind.SYNC, FrameKind.DATA


def ack(seq):
    return ("ack", {"seq": seq, "nak": 0})


def nak(seq):
    return ("ack", {"seq": seq, "nak": 1})


def reply(kind, seq):
    return ("reply", {"kind": kind, "seq": seq})


class Bench:
    """A FrameSender with the gatherer's transmit slots modelled behind ``frames``, ``slot`` / ``count``,
    ``release`` and ``buffer``: ``frames`` (a list of word lists) join the slots in order, at most
    WINDOW_FRAMES held, the ``k``-th since a restart in slot ``k mod WINDOW_FRAMES``; a byte sink on
    ``o``. ``host(bench)`` plays the other side: a generator that yields, for each cycle, ``None``, an
    action (:func:`ack`, :func:`nak`, :func:`reply`, ``("restart", None)``) or a list of them."""

    def __init__(self, frames):
        self.dut = FrameSender(ACK_TIMEOUT)
        self.frames = [list(words) for words in frames]  # not yet released (held, then waiting for a slot)
        self.bytes = []  # (byte, cycle)
        self.sent = []  # (bytes of one frame, cycle of its last byte)
        self.released = []  # (cycle, frames released)
        self.resent = None

    def run(self, host, cycles):
        dut = self.dut
        decoder = FrameDecoder()
        actions = host(self)

        async def machine(ctx):
            address, busy_until, start = 0, 0, 0
            slots = [[] for _ in range(WINDOW_FRAMES)]
            for cycle in range(cycles):
                now = next(actions, None) or []
                now = dict(now if isinstance(now, list) else [now])
                for name in ("ack", "reply"):
                    port = getattr(dut, name)
                    ctx.set(port.valid, name in now)
                    if name in now:
                        ctx.set(port.payload, now[name])
                ctx.set(dut.restart, "restart" in now)
                held = min(len(self.frames), WINDOW_FRAMES)
                if "restart" in now:  # the gatherer drops its frames in the same cycle
                    del self.frames[:held]
                    self.base, held = 0, 0
                for k in range(held):  # the frames held, oldest first, in their slots
                    slots[(self.base + k) % WINDOW_FRAMES] = self.frames[k]
                ctx.set(dut.frames, held)
                ctx.set(dut.count, len(slots[ctx.get(dut.slot)]))
                words = slots[address // MAX_FRAME_WORDS]
                word = address % MAX_FRAME_WORDS
                ctx.set(dut.buffer.data, words[word] if word < len(words) else 0)
                ctx.set(dut.o.ready, cycle >= busy_until)
                if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                    busy_until = cycle + BYTE_CYCLES
                    self.bytes.append((ctx.get(dut.o.payload), cycle))
                    if decoder.feed([self.bytes[-1][0]]):
                        self.sent.append((bytes(b for b, _ in self.bytes[start:]), cycle))
                        start = len(self.bytes)
                released = ctx.get(dut.release)
                assert released <= held, f"cycle {cycle}: {released} frames released of {held}"
                if released:
                    self.released.append((cycle, released))
                    del self.frames[:released]
                    self.base += released
                address = ctx.get(dut.buffer.addr)
                await ctx.tick()
            self.resent = ctx.get(dut.resent_frames)

        self.base = 0  # the number of the oldest frame held (since the last restart)
        sim = Simulator(dut)
        sim.add_clock(1e-8)
        sim.add_testbench(machine)
        sim.run()
        return self

    def frames_sent(self, count):
        """(In a host generator: ``yield from bench.frames_sent(n)``.) Wait until ``count`` frames are out."""
        while len(self.sent) < count:
            yield None


def wait(cycles):
    yield from [None] * cycles


def test_a_window_of_data_frames_kept_until_acked():
    """The frames held go out back to back without waiting for ACKs; an ACK of no frame sent is ignored;
    each ACK releases its frame and the earlier ones (cumulative)."""
    frames = [[0x01020304, 0xFFFFFFFF, 0xA5], [7], [8, 9], [10]]

    def host(b):
        yield ack(0)  # nothing sent yet: ignored
        yield from b.frames_sent(3)
        yield ack(5)  # not in the window: ignored
        yield from wait(50)
        yield ack(0)
        yield from wait(50)
        yield ack(2)  # releases 1 and 2
        yield from b.frames_sent(4)
        yield ack(3)

    b = Bench(frames).run(host, 4000)
    assert [data for data, _ in b.sent] == [encode_frame(DATA, seq, words) for seq, words in enumerate(frames)]
    assert [count for _, count in b.released] == [1, 2, 1]
    assert b.sent[2][1] + 50 < b.released[0][0] < b.released[1][0] < b.released[2][0]
    assert b.bytes[0][1] == 1  # the SOF in the cycle after the frame is offered
    first_frame_cycles = [c for _, c in b.bytes[: len(b.sent[0][0])]]
    assert all(c2 - c1 == BYTE_CYCLES for c1, c2 in zip(first_frame_cycles, first_frame_cycles[1:]))
    # the next frame follows at once (two cycles for the byte source to settle)
    assert b.bytes[len(b.sent[0][0])][1] - b.sent[0][1] <= BYTE_CYCLES + 2
    assert b.resent == 0


def test_resent_on_nak_and_after_the_timeout():
    words = [1, 2]

    def host(b):
        yield nak(0)  # before the frame is sent: no effect
        yield from b.frames_sent(1)
        yield nak(9)  # not of the frame sent or the next one: ignored
        yield from wait(20)
        yield nak(0)  # sent again
        yield from b.frames_sent(3)  # the third after the timeout
        yield nak(1)  # the host has the frame (its ACK was lost): released, nothing sent
        yield from wait(ACK_TIMEOUT + 500)

    b = Bench([words]).run(host, 3000)
    frame = encode_frame(DATA, 0, words)
    assert [data for data, _ in b.sent] == [frame] * 3
    assert b.resent == 2 and [count for _, count in b.released] == [1]
    first_byte_of_third = b.bytes[2 * len(frame)][1]
    assert first_byte_of_third - b.sent[1][1] == ACK_TIMEOUT + 3  # the timeout runs from the last byte
    # The NAK, not the timeout, sent the second: it starts right after the first (and the NAK).
    first_byte_of_second = b.bytes[len(frame)][1]
    assert first_byte_of_second - b.sent[0][1] < ACK_TIMEOUT // 4


def test_going_back_from_a_nak_inside_the_window():
    """Four frames out; NAK(2) releases 0 and 1 and sends 2 and 3 again, then the fifth frame (a slot
    freed); a timeout sends every unacknowledged frame again, from the oldest."""
    frames = [[k] for k in range(5)]

    def host(b):
        yield from b.frames_sent(4)
        yield nak(2)
        yield from b.frames_sent(7)
        yield from b.frames_sent(10)  # the timeout: 2, 3, 4 again
        yield ack(4)

    b = Bench(frames).run(host, 4000)
    data = [encode_frame(DATA, seq, [seq]) for seq in range(5)]
    assert [frame for frame, _ in b.sent] == data[:4] + data[2:] + data[2:]
    assert [count for _, count in b.released] == [2, 3]
    assert b.resent == 5


def test_control_frames_go_first_at_a_frame_boundary():
    words = [5, 6, 7]

    def host(b):
        yield from wait(30)  # inside the DATA frame
        yield reply(NAK, 4)
        yield reply(ACK, 5)  # replaces the NAK
        yield from b.frames_sent(2)
        yield [nak(0), reply(SYNC, 0)]  # both due at the next boundary: the control frame goes first
        yield from b.frames_sent(4)
        yield ack(0)

    b = Bench([words]).run(host, 2000)
    assert [data for data, _ in b.sent] == [
        encode_frame(DATA, 0, words),
        encode_frame(ACK, 5),
        encode_frame(SYNC, 0),
        encode_frame(DATA, 0, words),
    ]


@pytest.mark.parametrize(
    "first, second, sent",
    [
        ((NAK, 4), (ACK, 3), (NAK, 4)),  # an ACK before the NAK's frame: dropped, the host goes back on the NAK
        ((NAK, 1), (ACK, 129), (NAK, 1)),  # 128 before (mod 256): still dropped
        ((NAK, 1), (ACK, 128), (ACK, 128)),  # 127 after: the NAK's frame was delivered, the ACK replaces it
        ((NAK, 4), (ACK, 4), (ACK, 4)),
        ((ACK, 4), (ACK, 2), (ACK, 2)),  # otherwise the newer one wins
        ((ACK, 4), (NAK, 2), (NAK, 2)),
        ((NAK, 4), (SYNC, 0), (SYNC, 0)),
    ],
)
def test_which_waiting_control_frame_is_sent(first, second, sent):
    def host(b):
        yield from wait(30)  # inside the DATA frame: both wait for its end
        yield reply(*first)
        yield reply(*second)
        yield from b.frames_sent(2)

    b = Bench([[5, 6, 7]]).run(host, 800)
    assert [data for data, _ in b.sent][:2] == [encode_frame(DATA, 0, [5, 6, 7]), encode_frame(*sent)]


def test_restart_forgets_the_frame_and_its_seq():
    def host(b):
        yield from b.frames_sent(1)
        yield ack(0)
        yield from b.frames_sent(2)  # DATA 1, not ACKed
        yield ("restart", None)
        b.frames.append([3])
        yield from b.frames_sent(3)
        yield ack(0)

    b = Bench([[1], [2]]).run(host, 2000 + ACK_TIMEOUT)
    assert [data for data, _ in b.sent] == [
        encode_frame(DATA, 0, [1]),
        encode_frame(DATA, 1, [2]),
        encode_frame(DATA, 0, [3]),  # seq 0 again, and DATA 1 is never resent
    ]
    assert b.resent == 0
