"""Run payloads through a stream-in / stream-out unit in Amaranth's simulator."""

from amaranth.sim import Simulator


def simulate(unit, payloads, ready_pattern=(1,), valid_pattern=(1,), max_cycles=None):
    """Send ``payloads`` (dicts or ints) to ``unit.i``; return the outputs of ``unit.o`` and the cycle
    (counted in clock edges from the start) at which each was transferred.

    A unit that loses results would keep the sink waiting: after ``max_cycles`` (by default generous:
    100 per payload plus 1000) the simulation stops with an AssertionError saying how many came out."""
    if max_cycles is None:
        max_cycles = 1000 + 100 * len(payloads)
    outputs, cycles = [], []

    async def source(ctx):
        k = 0
        for payload in payloads:
            while not valid_pattern[k % len(valid_pattern)]:
                ctx.set(unit.i.valid, 0)
                await ctx.tick()
                k += 1
            ctx.set(unit.i.payload, payload)
            ctx.set(unit.i.valid, 1)
            await ctx.tick().until(unit.i.ready)
            k += 1
        ctx.set(unit.i.valid, 0)

    async def sink(ctx):
        cycle = 0
        while len(outputs) < len(payloads):
            assert cycle < max_cycles, (f"{len(outputs)} of {len(payloads)} results after {max_cycles} "
                                        f"cycles: the unit lost or withheld results")
            ctx.set(unit.o.ready, ready_pattern[cycle % len(ready_pattern)])
            _, _, payload, valid, ready = await ctx.tick().sample(unit.o.payload, unit.o.valid, unit.o.ready)
            cycle += 1
            if valid and ready:
                outputs.append(payload)
                cycles.append(cycle)

    sim = Simulator(unit)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    return outputs, cycles


def exchange(unit, words, count, ready_pattern=(1,), valid_pattern=(1,), max_cycles=200_000):
    """Send ``words`` on ``unit.i`` and collect ``count`` words from ``unit.o`` (a command/response
    component such as the tile); fails after ``max_cycles`` with what came out so far."""
    got = []

    async def source(ctx):
        k = 0
        for word in words:
            while not valid_pattern[k % len(valid_pattern)]:
                ctx.set(unit.i.valid, 0)
                await ctx.tick()
                k += 1
            ctx.set(unit.i.payload, word)
            ctx.set(unit.i.valid, 1)
            await ctx.tick().until(unit.i.ready)
            k += 1
        ctx.set(unit.i.valid, 0)

    async def sink(ctx):
        cycle = 0
        while len(got) < count:
            assert cycle < max_cycles, f"{len(got)} of {count} words after {max_cycles} cycles: {got}"
            ctx.set(unit.o.ready, ready_pattern[cycle % len(ready_pattern)])
            _, _, payload, valid, ready = await ctx.tick().sample(unit.o.payload, unit.o.valid, unit.o.ready)
            cycle += 1
            if valid and ready:
                got.append(payload)

    sim = Simulator(unit)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    return got
