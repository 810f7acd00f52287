"""Run payloads through a stream-in / stream-out unit in Amaranth's simulator."""

from amaranth.sim import Simulator


async def send(ctx, port, items, valid_pattern=(1,)):
    """Drive the stream ``port`` (``valid``, ``payload``, ``ready``) with ``items``, one per transfer,
    pausing where ``valid_pattern`` (cycled) is 0; return after the last item is taken."""
    k = 0
    for item in items:
        while not valid_pattern[k % len(valid_pattern)]:
            ctx.set(port.valid, 0)
            await ctx.tick()
            k += 1
        ctx.set(port.payload, item)
        ctx.set(port.valid, 1)
        await ctx.tick().until(port.ready)
        k += 1
    ctx.set(port.valid, 0)


def _run(unit, items, count, ready_pattern, valid_pattern, max_cycles, inputs=None, before=None):
    """Send ``items`` to ``unit.i`` (pausing where ``valid_pattern`` is 0) while taking ``count`` payloads
        from ``unit.o`` (ready where ``ready_pattern`` is 1); return them and their cycles (clock edges from
        the start). ``inputs`` (``(signal, value)`` pairs) are set before the first item, and ``before(ctx)`` is
    awaited then (a unit's memories written, for example). A unit that loses or withholds
        results fails after ``max_cycles`` instead of hanging."""
    outputs, cycles = [], []

    async def source(ctx):
        for signal, value in inputs or ():
            ctx.set(signal, value)
        if before is not None:
            await before(ctx)
        await send(ctx, unit.i, items, valid_pattern)

    async def sink(ctx):
        cycle = 0
        while len(outputs) < count:
            assert cycle < max_cycles, (
                f"{len(outputs)} of {count} results after {max_cycles} cycles: the unit "
                f"lost or withheld results; so far {outputs}"
            )
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


def simulate(unit, payloads, ready_pattern=(1,), valid_pattern=(1,), max_cycles=None, before=None):
    """Send ``payloads`` (dicts or ints) to ``unit.i``, one result each; return the outputs of ``unit.o``
    and the cycle at which each was transferred. ``max_cycles`` defaults to 1000 + 100 per payload;
    ``before(ctx)``, if given, runs first (the cycles count from the start)."""
    if max_cycles is None:
        max_cycles = 1000 + 100 * len(payloads)
    return _run(unit, payloads, len(payloads), ready_pattern, valid_pattern, max_cycles, before=before)


def exchange(unit, words, count, ready_pattern=(1,), valid_pattern=(1,), max_cycles=200_000, inputs=None):
    """Send ``words`` on ``unit.i`` and collect ``count`` words from ``unit.o`` (a command/response
    component such as the tile, or one that reduces its input, ``inputs`` set beside)."""
    return _run(unit, words, count, ready_pattern, valid_pattern, max_cycles, inputs)[0]
