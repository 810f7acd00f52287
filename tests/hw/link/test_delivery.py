"""FrameDelivery on its own in Amaranth's simulator: frame ends in, words on ``cmd`` and ACK/NAK/SYNC
requests out, by the board's receiving rules of ``docs/serial.md`` (a window of frames in flight: receive
slots, cumulative ACKs after delivery, one NAK per loss)."""

from amaranth.sim import Simulator

from lowbit.hw.link.delivery import FrameDelivery
from lowbit.sw.protocol.frames import FrameKind


def end(kind, seq, count=0, *, ok=1, stored=1):
    return {"kind": kind, "seq": seq, "count": count, "ok": ok, "stored": stored}


def run(script, *, cmd_ready=lambda cycle: 1, cycles=200):
    """``script`` maps cycles to actions: ``("write", words)`` writes the buffer (one word per cycle from
    that cycle on, into the slot the next frame goes to), ``("end", fields)`` ends a frame. Returns the
    words on ``cmd``, the replies ``(kind, seq, cycle)``, the ``session_start`` cycles and the ``full``
    cycles."""
    dut = FrameDelivery()
    seen = {"cmd": [], "replies": [], "starts": [], "full": []}
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
            if ctx.get(dut.full):
                seen["full"].append(cycle)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return seen


ACK, NAK, SYNC, DATA = FrameKind.ACK, FrameKind.NAK, FrameKind.SYNC, FrameKind.DATA


def test_frames_delivered_in_order_and_acked_after_their_last_word():
    first, second = [0x11111111, 0x22222222, 0xFFFFFFFF], [5, 6]
    hold = 40  # cmd refuses words before this cycle
    seen = run(
        {
            0: ("write", first),
            10: ("end", end(DATA, 0, 3)),  # accepted into slot 0
            12: ("write", second),
            20: ("end", end(DATA, 1, 2)),  # slot 1, while frame 0 waits
            22: ("end", end(DATA, 0, 3, stored=0)),  # a resend of a frame waiting for delivery: ignored
            24: ("end", end(DATA, 1, 2)),  # the same
            60: ("end", end(DATA, 0, 3, stored=0)),  # a resend after the delivery: ACK of the last delivered
            61: ("write", [7]),
            70: ("end", end(DATA, 2, 1)),
        },
        cmd_ready=lambda cycle: cycle >= hold,
    )
    assert [w for w, _ in seen["cmd"]] == [*first, *second, 7]
    assert [c for _, c in seen["cmd"]] == [hold, hold + 1, hold + 2, hold + 3, hold + 4, 71]
    assert seen["replies"] == [(ACK, 0, hold + 2), (ACK, 1, hold + 4), (ACK, 1, 60), (ACK, 2, 71)]
    assert seen["full"] == [] and seen["starts"] == []


def test_a_full_window_and_one_nak_per_loss():
    frames = [[k, 100 + k] for k in range(4)]
    script = {}
    for k, words in enumerate(frames):
        script[10 * k] = ("write", words)
        script[10 * k + 5] = ("end", end(DATA, k, 2))
    script[50] = ("end", end(DATA, 4, 2, stored=0))  # no slot was free: NAK(4)
    script[52] = ("end", end(DATA, 5, 2, stored=0))  # ahead, NAK already sent: ignored
    script[54] = ("end", end(DATA, 6, 2, ok=0))  # a bad frame: always NAK(expected)
    script[60] = ("write", [4, 104])  # the resend of 4, once the window has room
    script[75] = ("end", end(DATA, 4, 2))
    script[80] = ("end", end(DATA, 6, 2, stored=0))  # ahead (5 is missing): NAK(5), expected has changed
    seen = run(script, cmd_ready=lambda cycle: cycle >= 56)
    assert [w for w, _ in seen["cmd"]] == [w for words in frames for w in words] + [4, 104]
    assert seen["full"] == list(range(36, 58))  # the fourth frame fills the slots until the first leaves
    assert seen["replies"] == [
        (NAK, 4, 50),
        (NAK, 4, 54),
        (ACK, 0, 57),
        (ACK, 1, 59),
        (ACK, 2, 61),
        (ACK, 3, 63),
        (ACK, 4, 77),
        (NAK, 5, 80),
    ]


def test_answers_without_delivery():
    seen = run(
        {
            5: ("end", end(DATA, 0, ok=0)),  # dropped: NAK(expected)
            6: ("end", end(DATA, 0, 0)),  # no words: accepted, ACK in the next cycle, expected -> 1
            9: ("end", end(DATA, 5, 0)),  # ahead: NAK(1), the first since expected changed
            10: ("end", end(DATA, 6, 0)),  # ahead again: ignored
            11: ("end", end(ACK, 1)),  # the host's ACK/NAK are the sender's business
            12: ("end", end(NAK, 1)),
            13: ("end", end(0x77, 1)),  # an unknown kind
            14: ("end", end(DATA, 0, 0)),  # behind and delivered: ACK of the last delivered
            15: ("end", end(DATA, 129, 0)),  # (1 - 129) mod 256 = 128 behind, the furthest: ACK
            16: ("end", end(DATA, 128, 0, stored=0)),  # 129 behind counts as ahead: ignored (NAK sent)
            17: ("end", end(NAK, 0, ok=0)),  # a dropped frame of any kind: NAK(expected)
        }
    )
    assert seen["replies"] == [(NAK, 0, 5), (ACK, 0, 7), (NAK, 1, 9), (ACK, 0, 14), (ACK, 0, 15), (NAK, 1, 17)]
    assert seen["cmd"] == [] and seen["full"] == []


def test_the_ack_of_a_delivery_wins_over_a_nak_in_the_same_cycle():
    seen = run({0: ("write", [1]), 2: ("end", end(DATA, 0, 1)), 3: ("end", end(DATA, 0, ok=0))})
    assert seen["cmd"] == [(1, 3)]
    assert seen["replies"] == [(ACK, 0, 3)]


def test_sync_drops_the_accepted_frames_and_restarts_the_sequence():
    seen = run(
        {
            0: ("write", [1, 2, 3, 4]),
            5: ("end", end(DATA, 0, 4)),  # delivered slowly
            6: ("write", [5]),
            8: ("end", end(DATA, 1, 1)),  # waits in slot 1
            15: ("end", end(SYNC, 0, ok=0)),  # a bad SYNC: NAK(expected), nothing else
            25: ("end", end(SYNC, 0)),
            40: ("write", [9]),
            45: ("end", end(DATA, 0, 1)),  # seq 0 again: a new frame
        },
        cmd_ready=lambda cycle: cycle % 10 == 0,
    )
    assert seen["starts"] == [25]
    assert seen["replies"] == [(NAK, 2, 15), (SYNC, 0, 25), (ACK, 0, 50)]
    assert seen["cmd"] == [(1, 10), (2, 20), (9, 50)]  # words 3, 4 and frame 1 were dropped
