"""cocotb bench: a script of words to send, resets, and the exact responses expected, on the tile.

``LOWBIT_SCRIPT`` names a JSON file: ``{"seed": int, "idle": bool, "backpressure": bool, "steps": [...]}``
with steps ``{"send": [word, ...]}``, ``{"expect": [word, ...]}`` (the next responses, compared with
``==``) and ``{"reset": cycles}`` (stop sending, hold ``rst`` high that long: a reset in the middle of
a command). A sink collects the responses all along; ``expect`` waits for them (with a timeout, so a
tile that stops answering fails instead of hanging).
"""

import json
import os
from pathlib import Path

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge

from lowbit.sim.benches.streams import StreamSink, StreamSource, flow_pattern, start_clock_and_reset

_TIMEOUT_CYCLES = 100_000


@cocotb.test(timeout_time=600, timeout_unit="sec")
async def script_on_tile(dut):
    script = json.loads(Path(os.environ["LOWBIT_SCRIPT"]).read_text())
    seed = script["seed"]
    await start_clock_and_reset(dut)
    source = StreamSource(dut, "i", flow_pattern(script["idle"], seed + 1))
    sink = StreamSink(dut, "o", flow_pattern(script["backpressure"], seed + 2), signed=False)
    collector = cocotb.start_soon(sink.receive(1 << 30))
    checked = 0
    for index, step in enumerate(script["steps"]):
        if "send" in step:
            await source.send(step["send"])
        elif "reset" in step:
            dut.rst.value = 1
            await ClockCycles(dut.clk, step["reset"])
            dut.rst.value = 0
        else:
            expected = step["expect"]
            for _ in range(_TIMEOUT_CYCLES):
                if len(sink.received) >= checked + len(expected):
                    break
                await RisingEdge(dut.clk)
            got = sink.received[checked : checked + len(expected)]
            assert got == expected, (
                f"seed {seed}, step {index}: got {[hex(w) for w in got]}, expected {[hex(w) for w in expected]}"
            )
            checked += len(expected)
    for _ in range(100):  # nothing more may come out
        await RisingEdge(dut.clk)
    assert len(sink.received) == checked, f"seed {seed}: unexpected words {sink.received[checked:]}"
    collector.cancel()
