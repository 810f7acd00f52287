"""FrameDelivery on its own in Amaranth's simulator: frame ends in, words on ``cmd`` and ACK/NAK/SYNC
requests out, by the receiver rules of ``docs/serial.md``."""

from amaranth.sim import Simulator

from lowbit.hw.link.delivery import FrameDelivery
from lowbit.sw.protocol.frames import FrameKind


def end(kind, seq, count=0, *, ok=1, stored=1):
    return {"kind": kind, "seq": seq, "count": count, "ok": ok, "stored": stored}


def run(script, *, cmd_ready=lambda cycle: 1, cycles=200):
    """``script`` maps cycles to actions: ``("write", words)`` writes the buffer (one word per cycle from
    that cycle on), ``("end", fields)`` ends a frame. Returns the words on ``cmd``, the replies
    ``(kind, seq, cycle)``, the ``session_start`` cycles and the ``busy`` cycles."""
    dut = FrameDelivery()
    seen = {"cmd": [], "replies": [], "starts": [], "busy": []}
    writes = {}
    for at, (action, value) in script.items():
        if action == "write":
            writes.update({at + k: (k, word) for k, word in enumerate(value)})

    async def bench(ctx):
        for cycle in range(cycles):
            action = script.get(cycle, (None, None))
            ctx.set(dut.frame.valid, action[0] == "end")
            if action[0] == "end":
                ctx.set(dut.frame.payload, action[1])
            ctx.set(dut.buffer.en, cycle in writes)
            if cycle in writes:
                ctx.set(dut.buffer.addr, writes[cycle][0])
                ctx.set(dut.buffer.data, writes[cycle][1])
            ctx.set(dut.cmd.ready, cmd_ready(cycle))
            if ctx.get(dut.cmd.valid) and ctx.get(dut.cmd.ready):
                seen["cmd"].append((ctx.get(dut.cmd.payload), cycle))
            if ctx.get(dut.reply.valid):
                seen["replies"].append((ctx.get(dut.reply.payload.kind), ctx.get(dut.reply.payload.seq), cycle))
            if ctx.get(dut.session_start):
                seen["starts"].append(cycle)
            if ctx.get(dut.busy):
                seen["busy"].append(cycle)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return seen


ACK, NAK, SYNC, DATA = FrameKind.ACK, FrameKind.NAK, FrameKind.SYNC, FrameKind.DATA


def test_a_frame_is_delivered_once_then_acked():
    words = [0x11111111, 0x22222222, 0xFFFFFFFF]
    hold = 40  # cmd refuses words before this cycle
    seen = run(
        {
            0: ("write", words),
            10: ("end", end(DATA, 0, 3)),
            20: ("end", end(DATA, 0, 3, stored=0)),  # a resend while delivering: dropped silently
            60: ("end", end(DATA, 0, 3)),  # again after the delivery (its ACK was lost): ACK, no delivery
            70: ("write", [7]),
            80: ("end", end(DATA, 1, 1)),
        },
        cmd_ready=lambda cycle: cycle >= hold,
    )
    assert [w for w, _ in seen["cmd"]] == [*words, 7]
    assert [c for _, c in seen["cmd"]][:3] == [hold, hold + 1, hold + 2]
    assert seen["replies"] == [(ACK, 0, hold + 2), (ACK, 0, 60), (ACK, 1, 81)]
    assert seen["busy"] == list(range(11, hold + 3)) + [81]
    assert seen["starts"] == []


def test_answers_without_delivery():
    seen = run(
        {
            5: ("end", end(DATA, 0, ok=0)),  # dropped: NAK(expected)
            6: ("end", end(DATA, 0, 0)),  # no words: ACK at once, expected -> 1
            7: ("end", end(DATA, 5, 0)),  # neither expected nor expected - 1: ignored
            8: ("end", end(ACK, 1)),  # the host's ACK/NAK are the sender's business
            9: ("end", end(NAK, 1)),
            10: ("end", end(0x77, 1)),  # an unknown kind
            11: ("end", end(DATA, 0, 0)),  # the previous seq again: ACK, not delivered
            12: ("end", end(NAK, 0, ok=0)),  # a dropped frame of any kind: NAK(expected)
        }
    )
    assert seen["replies"] == [(NAK, 0, 5), (ACK, 0, 6), (ACK, 0, 11), (NAK, 1, 12)]
    assert seen["cmd"] == [] and seen["busy"] == []


def test_the_ack_of_a_delivery_wins_over_a_nak_in_the_same_cycle():
    seen = run({0: ("write", [1]), 2: ("end", end(DATA, 0, 1)), 3: ("end", end(DATA, 0, ok=0))})
    assert seen["cmd"] == [(1, 3)]
    assert seen["replies"] == [(ACK, 0, 3)]


def test_sync_drops_the_delivery_and_restarts_the_sequence():
    seen = run(
        {
            0: ("write", [1, 2, 3, 4]),
            5: ("end", end(DATA, 0, 0)),  # expected -> 1
            6: ("end", end(DATA, 1, 4)),  # delivered slowly
            15: ("end", end(SYNC, 0, ok=0)),  # a bad SYNC: NAK(expected), nothing else
            25: ("end", end(SYNC, 0)),
            40: ("write", [9]),
            45: ("end", end(DATA, 0, 1)),  # seq 0 again: a new frame
        },
        cmd_ready=lambda cycle: cycle % 10 == 0,
    )
    assert seen["starts"] == [25]
    assert seen["replies"] == [(ACK, 0, 5), (NAK, 1, 15), (SYNC, 0, 25), (ACK, 0, 50)]
    assert seen["cmd"] == [(1, 10), (2, 20), (9, 50)]  # words 3 and 4 were dropped
    assert seen["busy"] == list(range(7, 26)) + list(range(46, 51))
