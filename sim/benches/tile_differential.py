"""cocotb bench: word streams sent back to back to the tile, its responses recorded for a comparison outside.

``LOWBIT_STREAMS`` names a JSON file ``{"seed": int, "streams": [[word, ...], ...], "counts": [int, ...]}``:
the streams, sent in order through a :class:`~lowbit.sim.tile_transport.CocotbTransport` with random idle
input and output back-pressure (from ``seed``), and the number of response words to read after each
(what the reference tile answered). Each stream must leave the tile idle (every declared length
completed, its responses all read). ``LOWBIT_OUTPUT`` names the JSON file written at the end:
``{"received": [[word, ...], ...], "extra": [word, ...], "error": str or null}``, the words read per
stream, any words that came after the last stream's, and why the bench stopped early (a stream that the
tile neither took nor answered within its cycle budget). The bench itself does not compare: the test
does, and names the stream and its seed.
"""

import json
import os
from pathlib import Path

import cocotb
from cocotb.triggers import ClockCycles, SimTimeoutError, with_timeout

from lowbit.sim.benches.streams import start_clock_and_reset
from lowbit.sim.tile_transport import CocotbTransport
from lowbit.sw.host.transport import TransportError

#: Cycles the tile may take per stream beyond its words: the slowest layer's compute, back-pressure.
_BASE_CYCLES = 50_000
_CYCLES_PER_WORD = 16
_TIMEOUT_CYCLES = 20_000  # no new response word for this long: the tile has stopped answering


@cocotb.test(timeout_time=3600, timeout_unit="sec")
async def streams_on_tile(dut):
    spec = json.loads(Path(os.environ["LOWBIT_STREAMS"]).read_text())
    await start_clock_and_reset(dut)
    transport = CocotbTransport(dut, idle=True, backpressure=True, seed=spec["seed"], timeout_cycles=_TIMEOUT_CYCLES)
    received, error = [], None

    async def exchange(words, count):
        await transport.write(words)
        return await transport.read(count)

    for index, (words, count) in enumerate(zip(spec["streams"], spec["counts"])):
        budget = _BASE_CYCLES + _CYCLES_PER_WORD * (len(words) + count)
        try:
            received.append(await with_timeout(exchange(words, count), 10 * budget, "ns"))
        except (TransportError, SimTimeoutError) as failure:
            received.append(list(transport.sink.received[transport._consumed :]))
            error = f"stream {index}: {type(failure).__name__}: {failure}"
            break
    await ClockCycles(dut.clk, 200)  # nothing more may come out
    extra = [] if error else list(transport.sink.received[transport._consumed :])
    await transport.close()
    Path(os.environ["LOWBIT_OUTPUT"]).write_text(json.dumps({"received": received, "extra": extra, "error": error}))
