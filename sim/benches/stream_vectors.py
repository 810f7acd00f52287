"""A generic cocotb bench: stream input payloads through a unit and compare its outputs in order.

The pytest side computes the payloads and the expected outputs (from the golden model) and writes them
to a JSON file named by ``LOWBIT_VECTORS``: ``{"inputs": [int, ...], "expected": [int, ...],
"signed": bool, "seed": int}``. The test is parametrized over idle input cycles and output back-pressure.
"""

import json
import os
from pathlib import Path

import cocotb

from lowbit.sim.benches.streams import StreamSink, StreamSource, flow_pattern, start_clock_and_reset


@cocotb.parametrize(idle=[False, True], backpressure=[False, True])
@cocotb.test(timeout_time=50, timeout_unit="ms")
async def outputs_match_expected(dut, idle, backpressure):
    vectors = json.loads(Path(os.environ["LOWBIT_VECTORS"]).read_text())
    inputs, expected, seed = vectors["inputs"], vectors["expected"], vectors["seed"]
    await start_clock_and_reset(dut)
    source = StreamSource(dut, "i", flow_pattern(idle, seed + 1))
    sink = StreamSink(dut, "o", flow_pattern(backpressure, seed + 2), signed=vectors["signed"])
    send = cocotb.start_soon(source.send(inputs))
    got = await sink.receive(len(expected))
    await send
    tag = f"idle{int(idle)}_backpressure{int(backpressure)}"
    equal = sum(g == e for g, e in zip(got, expected))
    Path(f"summary_{tag}.json").write_text(json.dumps({"seed": seed, "equal": equal, "total": len(expected)}))
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g == e, (
            f"seed {seed}, idle {idle}, backpressure {backpressure}, vector {i}: "
            f"input {inputs[i]:#x}: got {g}, expected {e}"
        )
