"""cocotb bench: the host driver over the serial link, bit by bit, on the Verilog of
:class:`lowbit.hw.link.bridge.LinkTile`.

:class:`~lowbit.sim.benches.serial_port.SimSerialPort` is a UART model in Python on the ``rx`` / ``tx``
pins (``divisor`` clock cycles of 10 ns per bit) with the byte-port interface of
:class:`lowbit.sw.host.link.LinkTransport`, and injects faults on the wire: here a flipped bit or a cut in
chosen host DATA frames (counted as sent, resends included), a flipped bit in a chosen byte from the board.

``LOWBIT_LINK`` names a JSON file (written by ``tests/sim/test_link_verilator.py``)::

    {"seed", "divisor", "geometry" (geometry_to_json), "layer" (LayerConfig.encode() words),
     "weights", "thresholds", "inputs", "batch", "expected" (RUN's DATA words from ModelTile),
     "flip_host_frames": [n, ...], "cut_host_frames": [n, ...], "flip_board_bytes": [n, ...],
     "output": path}

The bench runs IDENTIFY, CONFIGURE, both loads and RUN (twice) through :class:`~lowbit.sw.host.TileInterface`
over :class:`~lowbit.sw.host.link.LinkTransport`, compares every response with ``==``, and writes the link
statistics and the board's counters to ``output``.
"""

import dataclasses
import json
import os
from pathlib import Path

import cocotb
from cocotb.triggers import Timer
from cocotb.utils import get_sim_time

from lowbit.sim.benches.serial_port import SimSerialPort
from lowbit.sim.benches.streams import start_clock_and_reset
from lowbit.sim.tile_transport import geometry_from_json
from lowbit.sw.host import TileInterface
from lowbit.sw.host.link import LinkTransport
from lowbit.sw.protocol import LayerConfig


@cocotb.test(timeout_time=300, timeout_unit="sec")
async def layer_over_the_link(dut):
    spec = json.loads(Path(os.environ["LOWBIT_LINK"]).read_text())
    seed, geometry = spec["seed"], geometry_from_json(spec["geometry"])
    await start_clock_and_reset(dut)
    port = SimSerialPort(
        dut,
        spec["divisor"],
        seed=seed,
        flip_host_frames=spec["flip_host_frames"],
        cut_host_frames=spec["cut_host_frames"],
        flip_board_bytes=spec["flip_board_bytes"],
    )
    # Seconds of simulated time: an ACK may wait behind one of the board's longest frames.
    link = LinkTransport(port, timeout=spec["timeout"], retries=8, clock=lambda: get_sim_time(unit="sec"))
    interface = TileInterface(link)

    identified = await interface.identify()
    assert identified == geometry, f"seed {seed}: IDENTIFY gave {identified}, the tile was built as {geometry}"
    await interface.configure(LayerConfig.decode(spec["layer"]))
    await interface.load_weights(spec["weights"])
    await interface.load_thresholds(spec["thresholds"])
    for attempt in range(2):
        got = await interface.run(spec["inputs"], spec["batch"])
        assert got == spec["expected"], (
            f"seed {seed}, RUN {attempt}: {sum(a != b for a, b in zip(got, spec['expected']))} words differ"
        )
    await Timer(2000 * port.bit_ns, unit="ns")  # nothing more may arrive
    assert not port.inbox, f"seed {seed}: unexpected bytes after the last response: {port.inbox.hex(' ')}"
    result = {
        "host": dataclasses.asdict(link.stats),
        "injected": port.injected,
        "board": {name: int(getattr(dut, name).value) for name in ("bad_frames", "resent_frames", "uart_errors")},
        "sim_us": get_sim_time(unit="us"),
    }
    port.close()
    Path(spec["output"]).write_text(json.dumps(result))
