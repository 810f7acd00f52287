"""WordGatherer on its own in Amaranth's simulator: words in, frames held in the transmit slots (a ring of
WINDOW_FRAMES) until released, the flush after ``flush_cycles`` idle, a full frame at once, ``i`` waiting
while every slot holds a frame, several frames released at once, ``clear``."""

from amaranth.sim import Simulator

from lowbit.hw.link.gatherer import WordGatherer
from lowbit.sw.protocol.frames import MAX_FRAME_WORDS, WINDOW_FRAMES

FLUSH = 10


def run(items, *, release=None, clear_at=(), cycles=800):
    """Offer ``items`` (words, or ``("gap", cycles)``) on ``i``. Each frame that joins (``frames`` grows)
    is read back at once through ``slot`` / ``count`` and ``buffer`` (the ``k``-th frame since a clear in
    slot ``k mod WINDOW_FRAMES``). ``release(cycle, unreleased)`` gives how many of the frames read and not
    yet released to release in a cycle (default: all of them). Returns the words accepted ``(word,
    cycle)``, the frames ``(words, cycle it joined)`` and the most frames held at once."""
    dut = WordGatherer(FLUSH)
    accepted, frames, most = [], [], [0]

    async def source(ctx):
        for item in items:
            if isinstance(item, tuple):
                ctx.set(dut.i.valid, 0)
                await ctx.tick().repeat(item[1])
                continue
            ctx.set(dut.i.payload, item)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def sink(ctx):
        cycle, seen, released = 0, 0, 0  # frames read back and released since the last clear
        while cycle < cycles:
            cleared = cycle in clear_at
            ctx.set(dut.clear, cleared)
            held = ctx.get(dut.frames)
            most[0] = max(most[0], held)
            assert held == seen - released or held == seen - released + 1, (cycle, held, seen, released)
            count = 0 if cleared else (release or (lambda cycle, n: n))(cycle, seen - released)
            ctx.set(dut.release, count)
            released += count
            if ctx.get(dut.i.valid) and ctx.get(dut.i.ready):
                accepted.append((ctx.get(dut.i.payload), cycle))
            if held > seen - (released - count) and not cleared:  # a frame joined: read it back
                slot = seen % WINDOW_FRAMES
                ctx.set(dut.slot, slot)
                words = []
                for k in range(ctx.get(dut.count)):  # data one cycle after addr
                    ctx.set(dut.buffer.addr, slot * MAX_FRAME_WORDS + k)
                    await ctx.tick()
                    cycle += 1
                    ctx.set(dut.release, 0)
                    words.append(ctx.get(dut.buffer.data))
                frames.append((tuple(words), cycle - len(words)))
                seen += 1
                continue
            await ctx.tick()
            cycle += 1
            if cleared:
                seen, released = 0, 0

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source, background=True)
    sim.add_testbench(sink)
    sim.run()
    return accepted, frames, most[0]


def words_of(frames):
    return [words for words, _ in frames]


def test_words_are_flushed_after_an_idle_time():
    accepted, frames, _ = run([1, 2, ("gap", FLUSH - 1), 3, ("gap", 100), 4])
    assert [w for w, _ in accepted] == [1, 2, 3, 4]
    assert words_of(frames) == [(1, 2, 3), (4,)]
    assert frames[0][1] == accepted[2][1] + FLUSH + 2  # the flush latency


def test_a_full_frame_is_offered_at_once():
    words = list(range(1000, 1000 + MAX_FRAME_WORDS + 2))
    accepted, frames, _ = run(words)
    assert words_of(frames) == [tuple(words[:MAX_FRAME_WORDS]), tuple(words[MAX_FRAME_WORDS:])]
    assert frames[0][1] == accepted[MAX_FRAME_WORDS - 1][1] + 2
    # a cycle between frames: the next frame's first word is taken two cycles after the last one
    assert accepted[MAX_FRAME_WORDS][1] == accepted[MAX_FRAME_WORDS - 1][1] + 2


def test_every_slot_held_then_several_released_at_once():
    """Nothing released until cycle 600: WINDOW_FRAMES frames are held and ``i`` waits; then two are
    released in one cycle and two more frames join, each in the slot its number says."""
    groups = [[0x100 * k + j for j in range(k + 1)] for k in range(WINDOW_FRAMES + 2)]
    items = [item for group in groups for item in [*group, ("gap", FLUSH + 5)]]
    accepted, frames, most = run(items, release=lambda cycle, n: 2 if cycle == 600 and n >= 2 else 0, cycles=900)
    assert words_of(frames) == [tuple(group) for group in groups]
    assert most == WINDOW_FRAMES
    waiting = [cycle for word, cycle in accepted if word == groups[WINDOW_FRAMES][0]]
    assert waiting[0] > 600, "a word was taken while every slot held a frame"


def test_clear_drops_the_words_and_the_held_frames():
    accepted, frames, _ = run(
        [1, 2, ("gap", 2), 3, ("gap", 100), 4, 5],
        release=lambda cycle, n: 0,
        clear_at=(1, 40),
    )
    # word 1 (cycle 0) and 2 (cycle 1, taken in the cycle of the clear) are dropped; 3 makes a frame in
    # slot 0, dropped at cycle 40 unreleased; 4 and 5 make the next frame, in slot 0 again.
    assert [w for w, _ in accepted] == [1, 2, 3, 4, 5]
    assert words_of(frames) == [(3,), (4, 5)]
