"""The 8N1 UART in Amaranth's simulator: the transmitter's exact bit timing, the receiver on back-to-back
bytes, at +-3 % baud mismatch, after a framing error and on overrun, and the two in a loop."""

import random

import pytest
from amaranth.sim import Simulator

from lowbit.hw.link.uart import UARTReceiver, UARTTransmitter


def line_of(data, bit_cycles, *, idle=20, stop=1, gap=0):
    """Levels of the line, one per clock cycle: ``idle`` cycles high, then each byte as start, 8 data bits
    (LSB first), stop bit ``stop`` (an int or a per-byte list), ``gap`` idle bits between characters.
    ``bit_cycles`` may be fractional: bit edges fall at the rounded multiples (a sender off baud)."""
    bits = []
    stops = stop if isinstance(stop, list) else [stop] * len(data)
    for byte, stop_bit in zip(data, stops):
        bits += [0] + [(byte >> k) & 1 for k in range(8)] + [stop_bit] + [1] * gap
    levels = [1] * idle
    for k, bit in enumerate(bits):
        levels += [bit] * (round((k + 1) * bit_cycles) - round(k * bit_cycles))
    return levels + [1] * int(12 * bit_cycles)


def receive(divisor, levels, ready=lambda cycle: 1):
    """Drive ``rx`` with ``levels``; return the bytes on ``o``, the cycles of ``error`` pulses and the
    final framing-error and overrun counts."""
    dut = UARTReceiver(divisor)
    got, errors, counts = [], [], {}

    async def bench(ctx):
        for cycle, level in enumerate(levels):
            ctx.set(dut.rx, level)
            ctx.set(dut.o.ready, ready(cycle))
            _, _, valid, rdy, payload, error = await ctx.tick().sample(
                dut.o.valid, dut.o.ready, dut.o.payload, dut.error
            )
            if valid and rdy:
                got.append(payload)
            if error:
                errors.append(cycle)
        counts["framing"], counts["overrun"] = ctx.get(dut.framing_errors), ctx.get(dut.overruns)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got, errors, counts


def transmit(divisor, data, cycles, valid=lambda cycle: 1):
    """Offer ``data`` on ``i`` (pausing where ``valid`` is 0); return the level of ``tx`` in each cycle."""
    dut = UARTTransmitter(divisor)
    levels = []

    async def source(ctx):
        cycle = 0
        for byte in data:
            while not valid(cycle):
                ctx.set(dut.i.valid, 0)
                await ctx.tick()
                cycle += 1
            ctx.set(dut.i.payload, byte)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            cycle += 1
        ctx.set(dut.i.valid, 0)

    async def monitor(ctx):
        for _ in range(cycles):
            levels.append(ctx.get(dut.tx))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_testbench(monitor)
    sim.run()
    return levels


def decode_line(levels, divisor):
    """An ideal 8N1 decoder of a line sampled once per cycle: ``(byte, start cycle)`` per character."""
    out, cycle = [], 0
    while cycle < len(levels):
        if levels[cycle]:
            cycle += 1
            continue
        middle = cycle + divisor // 2
        if middle + 9 * divisor >= len(levels):
            break
        bits = [levels[middle + k * divisor] for k in range(10)]
        assert bits[0] == 0 and bits[9] == 1, f"bad character at cycle {cycle}: {bits}"
        out.append((sum(b << k for k, b in enumerate(bits[1:9])), cycle))
        cycle = middle + 9 * divisor
    return out


@pytest.mark.parametrize("component", [UARTReceiver, UARTTransmitter])
@pytest.mark.parametrize("divisor", [3, 0, -8, 8.0, True, "16"])
def test_init_wrong_divisor(component, divisor):
    with pytest.raises(ValueError, match=r"divisor \(clock cycles per bit\) must be an integer of at least 4, not"):
        component(divisor)


@pytest.mark.parametrize("divisor", [4, 7, 16])
def test_transmitter_back_to_back(divisor, seed=11):
    rng = random.Random(seed)
    data = [0x00, 0xFF, 0x55, 0xA5] + [rng.randrange(256) for _ in range(8)]
    levels = transmit(divisor, data, 10 * divisor * len(data) + 40)
    assert levels[0] == 1
    chars = decode_line(levels, divisor)
    assert [b for b, _ in chars] == data, f"seed {seed}"
    starts = [c for _, c in chars]
    # Back to back: one character every 10 bit times, no gap between them.
    assert all(b - a == 10 * divisor for a, b in zip(starts, starts[1:])), starts
    # Each bit lasts exactly ``divisor`` cycles.
    first = levels[starts[0] : starts[0] + 10 * divisor]
    assert first == sum(([bit] * divisor for bit in [0] + [(data[0] >> k) & 1 for k in range(8)] + [1]), [])


def test_transmitter_with_idle_source(seed=12):
    rng = random.Random(seed)
    data = [rng.randrange(256) for _ in range(6)]
    levels = transmit(5, data, 2000, valid=lambda cycle: (cycle // 37) % 3 != 0)
    assert [b for b, _ in decode_line(levels, 5)] == data, f"seed {seed}"


@pytest.mark.parametrize("divisor", [4, 8, 16])
def test_receiver_back_to_back(divisor, seed=21):
    rng = random.Random(seed)
    data = [0x00, 0xFF, 0xA5, 0x5A] + [rng.randrange(256) for _ in range(12)]
    got, errors, counts = receive(divisor, line_of(data, divisor))
    assert got == data, f"seed {seed}"
    assert errors == [] and counts == {"framing": 0, "overrun": 0}


@pytest.mark.parametrize("rate", [0.97, 1.03])
def test_receiver_baud_mismatch(rate, seed=31):
    """A sender 3 % slow or fast, back to back: every byte still sampled inside its bits."""
    rng = random.Random(seed)
    data = [0x00, 0xFF, 0x01, 0x80] + [rng.randrange(256) for _ in range(16)]
    got, errors, counts = receive(16, line_of(data, 16 * rate))
    assert got == data, f"rate {rate}, seed {seed}"
    assert counts == {"framing": 0, "overrun": 0}


def test_receiver_ignores_a_glitch():
    levels = [1] * 20 + [0] * 2 + [1] * 40 + line_of([0x3C], 8, idle=0)
    got, errors, counts = receive(8, levels)
    assert got == [0x3C] and counts == {"framing": 0, "overrun": 0}


def test_receiver_framing_error_recovery():
    """A stop bit of 0 (and a break: the line held low) drops the byte, pulses ``error`` once, counts it;
    the bytes after the line returns high arrive intact."""
    levels = line_of([0x12, 0x34], 8, stop=[1, 0])[: -12 * 8] + [0] * 100 + line_of([0x56, 0x78], 8)
    got, errors, counts = receive(8, levels)
    assert got == [0x12, 0x56, 0x78]
    assert len(errors) == 1 and counts == {"framing": 1, "overrun": 0}


def test_receiver_overrun():
    """While ``o`` holds an unread byte, the next bytes are dropped and counted; the held byte and the
    bytes after ``o`` drains are intact."""
    first = line_of([0xA1, 0xB2, 0xC3], 8)
    hold = len(first)
    levels = first + line_of([0xD4], 8)
    got, errors, counts = receive(8, levels, ready=lambda cycle: cycle >= hold)
    assert got == [0xA1, 0xD4]
    assert counts == {"framing": 0, "overrun": 2} and len(errors) == 2


@pytest.mark.parametrize("divisor", [5, 9])
def test_loop(divisor, seed=41):
    """Transmitter into receiver at the same divisor: all bytes back."""
    rng = random.Random(seed + divisor)
    data = [rng.randrange(256) for _ in range(12)]
    levels = [1] * 5 + transmit(divisor, data, 10 * divisor * len(data) + 40)
    got, _, counts = receive(divisor, levels)
    assert got == data, f"seed {seed + divisor}"
