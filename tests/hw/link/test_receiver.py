"""FrameReceiver on its own in Amaranth's simulator: bytes in, buffer writes and frame ends out, each
compared with what the host-side FrameDecoder makes of the same bytes."""

import pytest
from amaranth.sim import Simulator

from lowbit.hw.link.receiver import FrameReceiver
from lowbit.sw.host.link import Frame, FrameDecoder, encode_frame
from lowbit.sw.protocol.frames import MAX_FRAME_WORDS, SOF, FrameKind

TIMEOUT = 30


def run(items, *, hold=lambda cycle: 0, tail=2 * TIMEOUT):
    """Feed ``items`` (bytes, one every 3 cycles, or ``("gap", cycles)``) to a FrameReceiver; return the
    buffer writes, frame ends, acknowledgements (each with its cycle) and ``bad_frames``."""
    dut = FrameReceiver(TIMEOUT)
    seen = {"writes": [], "frames": [], "acks": [], "bad": None}

    def cycles():
        for item in items:
            if isinstance(item, tuple):
                yield from [None] * item[1]
            else:
                yield from (item, None, None)
        yield from [None] * tail

    async def bench(ctx):
        for cycle, byte in enumerate(cycles()):
            ctx.set(dut.hold, hold(cycle))
            ctx.set(dut.i.valid, byte is not None)
            ctx.set(dut.i.payload, byte or 0)
            if byte is not None:
                assert ctx.get(dut.i.ready)
            if ctx.get(dut.buffer.en):
                seen["writes"].append((ctx.get(dut.buffer.addr), ctx.get(dut.buffer.data)))
            if ctx.get(dut.frame.valid):
                end = ctx.get(dut.frame.payload)
                fields = {name: getattr(end, name) for name in ("kind", "seq", "count", "ok", "stored")}
                seen["frames"].append((fields, cycle))
            if ctx.get(dut.ack.valid):
                seen["acks"].append(((ctx.get(dut.ack.payload.seq), ctx.get(dut.ack.payload.nak)), cycle))
            await ctx.tick()
        seen["bad"] = ctx.get(dut.bad_frames)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return seen


def decoded(data, *, stored=1):
    """The frame ends the receiver should report for ``data``, from the host-side decoder."""
    ends = []
    for event in FrameDecoder().feed(data):
        if isinstance(event, Frame):
            ends.append({"kind": event.kind, "seq": event.seq, "count": len(event.words), "ok": 1, "stored": stored})
        else:
            ends.append(None)  # dropped: only ``ok`` is defined
    return ends


def test_good_frames_write_their_words_and_end_once():
    words = [0x01020304, 0xFFFFFFFF, SOF, 0]
    data = (
        bytes([0x00, 0x13, SOF ^ 1])  # junk outside a frame: skipped
        + encode_frame(FrameKind.DATA, 7, words)
        + encode_frame(FrameKind.ACK, 3)
        + encode_frame(FrameKind.NAK, 9)
        + encode_frame(FrameKind.SYNC, 0)
        + encode_frame(0x77, 1, [5])  # an unknown kind is passed on
        + encode_frame(FrameKind.DATA, 8, [])
    )
    seen = run(data)
    assert seen["writes"] == list(enumerate(words))
    assert [end for end, _ in seen["frames"]] == decoded(data)
    assert [ack for ack, _ in seen["acks"]] == [(3, 0), (9, 1)]
    assert seen["bad"] == 0
    # The end of a frame is reported in the cycle of its last byte (a byte every 3 cycles from cycle 0).
    last_byte = 3 * (3 + len(encode_frame(FrameKind.DATA, 7, words)) - 1)
    assert seen["frames"][0][1] == last_byte
    assert seen["acks"][0][1] == seen["frames"][1][1]


def test_dropped_frames():
    good = encode_frame(FrameKind.DATA, 0, [10, 20])
    flipped = bytearray(good)
    flipped[6] ^= 0x10  # a payload bit
    too_many = bytes([SOF, FrameKind.DATA, 0]) + (MAX_FRAME_WORDS + 1).to_bytes(2, "little")
    bad_ack = bytearray(encode_frame(FrameKind.ACK, 0))
    bad_ack[-1] ^= 1
    seen = run([*flipped, *too_many, *bad_ack, *good[:7], ("gap", 2 * TIMEOUT), *good])
    assert [end["ok"] for end, _ in seen["frames"]] == [0, 0, 0, 0, 1]
    assert [end for end, _ in seen["frames"]][-1] == decoded(good)[0]
    assert seen["acks"] == [] and seen["bad"] == 4
    # A bad CRC is only known at the end: the words were written already (delivery waits for the end).
    assert seen["writes"][:2] == [(0, 10 ^ (0x10 << 8)), (1, 20)]
    # The count is refused at its second byte; the cut frame after a silence of the timeout.
    count_byte = 3 * (len(flipped) + len(too_many) - 1)
    assert seen["frames"][1][1] == count_byte
    cut_last_byte = 3 * (len(flipped) + len(too_many) + len(bad_ack) + 6)
    assert seen["frames"][3][1] == cut_last_byte + 1 + TIMEOUT


def test_a_frame_of_the_largest_size_is_taken():
    """A DATA frame of exactly MAX_FRAME_WORDS words (the host's full frames) is stored and ends ok."""
    words = [(0x01000193 * k) & 0xFFFFFFFF for k in range(MAX_FRAME_WORDS)]
    data = encode_frame(FrameKind.DATA, 5, words)
    seen = run(data)
    assert seen["writes"] == list(enumerate(words))
    assert [end for end, _ in seen["frames"]] == decoded(data)
    assert seen["bad"] == 0


def test_silence_outside_a_frame_is_not_a_frame():
    seen = run([("gap", 5 * TIMEOUT)])
    assert seen["frames"] == [] and seen["bad"] == 0


@pytest.mark.parametrize("hold_at_sof", [0, 1])
def test_hold_is_sampled_at_sof(hold_at_sof):
    """A DATA frame that begins while the buffer is in use writes nothing; ``hold`` later in the frame
    does not matter."""
    data = encode_frame(FrameKind.DATA, 2, [0xAB])
    seen = run(data, hold=lambda cycle: hold_at_sof if cycle == 0 else 1 - hold_at_sof)
    assert [end for end, _ in seen["frames"]] == decoded(data, stored=1 - hold_at_sof)
    assert seen["writes"] == ([] if hold_at_sof else [(0, 0xAB)])
