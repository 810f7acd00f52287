"""Stream source and sink for cocotb benches of Amaranth ``stream.Signature`` ports.

A port ``x`` of the top level appears in the Verilog as ``x__payload``, ``x__valid`` and ``x__ready``.
Both sides decide in the ReadOnly phase (values settled for this cycle) and act after the rising edge,
so a transfer is counted exactly when ``valid & ready`` is true at a clock edge.
"""

import itertools
import random

from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

__all__ = ["flow_pattern", "start_clock_and_reset", "StreamSource", "StreamSink"]


def flow_pattern(enabled, seed):
    """An endless 0/1 pattern: all ones when ``enabled`` is false, else a mix of fixed and random gaps."""
    if not enabled:
        return itertools.repeat(1)
    rng = random.Random(seed)
    fixed = itertools.cycle([1, 1, 1, 0])
    return (next(fixed) if rng.random() < 0.5 else int(rng.random() < 0.6) for _ in itertools.count())


async def start_clock_and_reset(dut, cycles=2):
    """Start a 10 ns clock on ``dut.clk`` and hold ``dut.rst`` for ``cycles`` cycles."""
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


class StreamSource:
    """Drives a stream input with payloads, pausing (valid low) where ``pattern`` yields 0."""

    def __init__(self, dut, name, pattern=None):
        self.clk = dut.clk
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.pattern = pattern or itertools.repeat(1)
        self.valid.value = 0
        self.sent = 0

    async def send(self, payloads):
        for item in payloads:
            while not next(self.pattern):
                self.valid.value = 0
                await RisingEdge(self.clk)
            self.valid.value = 1
            self.payload.value = item
            while True:
                await ReadOnly()
                fired = bool(self.ready.value)
                await RisingEdge(self.clk)
                if fired:
                    break
            self.sent += 1
        self.valid.value = 0


class StreamSink:
    """Collects ``count`` payloads from a stream output, holding ready low where ``pattern`` yields 0."""

    def __init__(self, dut, name, pattern=None, signed=False):
        self.clk = dut.clk
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.pattern = pattern or itertools.repeat(1)
        self.signed = signed
        self.ready.value = 0
        self.received = []

    async def receive(self, count):
        while len(self.received) < count:
            ready = next(self.pattern)
            self.ready.value = ready
            await ReadOnly()
            if ready and self.valid.value:
                value = self.payload.value
                if len(self.payload) == 1:  # cocotb 2 gives a 1-bit port as a Logic, not a LogicArray
                    self.received.append(int(value))
                else:
                    self.received.append(value.to_signed() if self.signed else value.to_unsigned())
            await RisingEdge(self.clk)
        self.ready.value = 0
        return self.received
