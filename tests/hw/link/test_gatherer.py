"""WordGatherer on its own in Amaranth's simulator: words in, frames held in the buffer until released,
the flush after ``flush_cycles`` idle, a full frame at once, ``clear``."""

from amaranth.sim import Simulator

from lowbit.hw.link.gatherer import WordGatherer
from lowbit.sw.protocol.frames import MAX_FRAME_WORDS

FLUSH = 10


def run(items, *, hold=5, clear_at=(), cycles=600):
    """Offer ``items`` (words, or ``("gap", cycles)``) on ``i``; each frame offered on ``o`` is read back
    through ``buffer`` and released ``hold`` cycles after that. Returns the words accepted and
    the frames ``(words, cycle it became valid)``."""
    dut = WordGatherer(FLUSH)
    accepted, frames = [], []

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
        cycle, release_at = 0, None
        while cycle < cycles:
            ctx.set(dut.clear, cycle in clear_at)
            ctx.set(dut.o.ready, cycle == release_at)
            if ctx.get(dut.i.valid) and ctx.get(dut.i.ready):
                accepted.append((ctx.get(dut.i.payload), cycle))
            if ctx.get(dut.o.valid):
                assert not ctx.get(dut.i.ready), "the buffer is held"
                if release_at is None:
                    valid_since = cycle
                    count = ctx.get(dut.o.payload)
                    words = []
                    for k in range(count):  # read back through the read port: data one cycle after addr
                        ctx.set(dut.buffer.addr, k)
                        await ctx.tick()
                        cycle += 1
                        words.append(ctx.get(dut.buffer.data))
                    frames.append((tuple(words), valid_since))
                    release_at = cycle + hold
                    continue
                if ctx.get(dut.o.ready):
                    release_at = None
            else:
                release_at = None  # released, or dropped by ``clear``
            await ctx.tick()
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source, background=True)
    sim.add_testbench(sink)
    sim.run()
    return accepted, frames


def test_words_are_flushed_after_an_idle_time():
    accepted, frames = run([1, 2, ("gap", FLUSH - 1), 3, ("gap", 100), 4], hold=20)
    assert [w for w, _ in accepted] == [1, 2, 3, 4]
    assert [words for words, _ in frames] == [(1, 2, 3), (4,)]
    assert frames[0][1] == accepted[2][1] + FLUSH + 2  # the flush latency
    assert accepted[3][1] >= frames[0][1] + 20  # ``i`` waits while the frame is held


def test_a_full_frame_is_offered_at_once():
    words = list(range(1000, 1000 + MAX_FRAME_WORDS + 2))
    accepted, frames = run(words)
    assert [words for words, _ in frames] == [tuple(words[:MAX_FRAME_WORDS]), tuple(words[MAX_FRAME_WORDS:])]
    assert frames[0][1] == accepted[MAX_FRAME_WORDS - 1][1] + 2


def test_clear_drops_the_words_and_the_held_frame():
    accepted, frames = run([1, 2, ("gap", 2), 3, ("gap", 100), 4, 5], hold=200, clear_at=(1, 40))
    # word 1 (cycle 0) and 2 (cycle 1, taken in the cycle of the clear) are dropped; 3 is held, then
    # dropped at cycle 40 before its release; 4 and 5 make the next frame.
    assert [w for w, _ in accepted] == [1, 2, 3, 4, 5]
    assert [words for words, _ in frames] == [(3,), (4, 5)]
