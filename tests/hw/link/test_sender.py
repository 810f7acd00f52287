"""FrameSender on its own in Amaranth's simulator: its bytes are compared with the host-side encoder
(``encode_frame``); DATA frames kept until ACKed, resent on NAK and timeout; ACK/NAK/SYNC first at a
frame boundary; ``restart``."""

import pytest
from amaranth.sim import Simulator

from lowbit.hw.link.sender import FrameSender
from lowbit.sw.host.link import FrameDecoder, encode_frame
from lowbit.sw.protocol.frames import FrameKind

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
    """A FrameSender with a transmit buffer behind ``buffer`` holding ``frames[0]`` (a list of word
    lists, offered on ``data`` one after the other, the next after the transfer) and a byte sink on
    ``o``. ``host(bench)`` plays the other side: a generator that yields, for each cycle, ``None``, an
    action (:func:`ack`, :func:`nak`, :func:`reply`, ``("restart", None)``) or a list of them."""

    def __init__(self, frames):
        self.dut = FrameSender(ACK_TIMEOUT)
        self.frames = [list(words) for words in frames]
        self.bytes = []  # (byte, cycle)
        self.sent = []  # (bytes of one frame, cycle of its last byte)
        self.released = []  # cycles of ``data`` transfers
        self.resent = None

    def run(self, host, cycles):
        dut = self.dut
        decoder = FrameDecoder()
        actions = host(self)

        async def machine(ctx):
            address, busy_until, start = 0, 0, 0
            for cycle in range(cycles):
                now = next(actions, None) or []
                now = dict(now if isinstance(now, list) else [now])
                for name in ("ack", "reply"):
                    port = getattr(dut, name)
                    ctx.set(port.valid, name in now)
                    if name in now:
                        ctx.set(port.payload, now[name])
                ctx.set(dut.restart, "restart" in now)
                if "restart" in now:
                    self.frames.pop(0)  # the gatherer drops its frame in the same cycle
                words = self.frames[0] if self.frames else []
                ctx.set(dut.data.valid, bool(self.frames))
                ctx.set(dut.data.payload, len(words))
                ctx.set(dut.buffer.data, words[address] if address < len(words) else 0)
                ctx.set(dut.o.ready, cycle >= busy_until)
                if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                    busy_until = cycle + BYTE_CYCLES
                    self.bytes.append((ctx.get(dut.o.payload), cycle))
                    if decoder.feed([self.bytes[-1][0]]):
                        self.sent.append((bytes(b for b, _ in self.bytes[start:]), cycle))
                        start = len(self.bytes)
                if ctx.get(dut.data.valid) and ctx.get(dut.data.ready):
                    self.released.append(cycle)
                    self.frames.pop(0)
                address = ctx.get(dut.buffer.addr)
                await ctx.tick()
            self.resent = ctx.get(dut.resent_frames)

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


def test_data_frames_kept_until_acked():
    first, second = [0x01020304, 0xFFFFFFFF, 0xA5], [7]

    def host(b):
        yield from b.frames_sent(1)
        yield ack(1)  # not its seq: ignored
        yield from wait(50)
        yield ack(0)
        yield from b.frames_sent(2)
        yield ack(1)

    b = Bench([first, second]).run(host, 4000)
    assert [data for data, _ in b.sent] == [encode_frame(DATA, 0, first), encode_frame(DATA, 1, second)]
    assert len(b.released) == 2 and b.sent[0][1] + 50 < b.released[0] < b.sent[1][1] < b.released[1]
    assert b.bytes[0][1] == 1  # the SOF in the cycle after the frame is offered
    first_frame_cycles = [c for _, c in b.bytes[: len(b.sent[0][0])]]
    assert all(c2 - c1 == BYTE_CYCLES for c1, c2 in zip(first_frame_cycles, first_frame_cycles[1:]))
    assert b.resent == 0


def test_resent_on_nak_and_after_the_timeout():
    words = [1, 2]

    def host(b):
        yield nak(0)  # before the frame is sent: no effect
        yield from b.frames_sent(1)
        yield nak(9)  # a NAK of any seq: sent again
        yield from b.frames_sent(3)  # the third after the timeout
        yield ack(0)

    b = Bench([words]).run(host, 3000)
    frame = encode_frame(DATA, 0, words)
    assert [data for data, _ in b.sent] == [frame] * 3
    assert b.resent == 2 and len(b.released) == 1
    first_byte_of_third = b.bytes[2 * len(frame)][1]
    assert first_byte_of_third - b.sent[1][1] == ACK_TIMEOUT + 3  # the timeout runs from the last byte
    # The NAK, not the timeout, sent the second: it starts right after the first (and the NAK).
    first_byte_of_second = b.bytes[len(frame)][1]
    assert first_byte_of_second - b.sent[0][1] < ACK_TIMEOUT // 4


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
