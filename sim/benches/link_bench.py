"""cocotb bench: the host driver over the serial link, bit by bit, on the Verilog of
:class:`lowbit.hw.link.LinkTile`.

:class:`SimSerialPort` is a UART model in Python on the ``rx`` / ``tx`` pins (``divisor`` clock cycles of
10 ns per bit) with the byte-port interface of :class:`lowbit.sw.link.LinkTransport` (``write``,
``read``, both coroutines here), and injects faults on the wire: a flipped bit or a cut in chosen host
DATA frames, a flipped bit in a chosen byte from the board.

``LOWBIT_LINK`` names a JSON file (written by ``tests/sim/test_link_verilator.py``)::

    {"seed", "divisor", "geometry" (geometry_to_json), "layer" (LayerConfig.encode() words),
     "weights", "thresholds", "inputs", "batch", "expected" (RUN's DATA words from ModelTile),
     "flip_host_frames": [n, ...], "cut_host_frames": [n, ...], "flip_board_bytes": [n, ...],
     "output": path}

The bench runs IDENTIFY, CONFIGURE, both loads and RUN (twice) through :class:`~lowbit.sw.driver.TileInterface`
over :class:`~lowbit.sw.link.LinkTransport`, compares every response with ``==``, and writes the link
statistics and the board's counters to ``output``.
"""

import dataclasses
import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.triggers import FallingEdge, Timer
from cocotb.utils import get_sim_time

from lowbit.hw.link import FrameKind
from lowbit.hw.protocol import LayerConfig
from lowbit.sim.benches.streams import start_clock_and_reset
from lowbit.sim.tile_transport import geometry_from_json
from lowbit.sw.driver import TileInterface
from lowbit.sw.link import LinkTransport

CLOCK_NS = 10


class SimSerialPort:
    """A host's serial port on ``dut.rx`` / ``dut.tx``, 8N1 at ``divisor`` clock cycles per bit.

    ``write`` drives the bytes bit by bit and returns when the last stop bit has been sent; a monitor
    task decodes ``tx`` all along (sampling each bit in its middle). ``read(n)`` returns what has
    arrived, or waits up to ``read_timeout_bits`` bit times for a byte and then returns ``b""``.
    Faults: host DATA frames (counted from 1) in ``flip_host_frames`` get one payload bit flipped, in
    ``cut_host_frames`` lose their second half; board bytes (counted from 0) in ``flip_board_bytes``
    get one bit flipped on the way in. ``injected`` counts the faults applied.
    """

    def __init__(self, dut, divisor, *, seed, read_timeout_bits=40, flip_host_frames=(), cut_host_frames=(),
                 flip_board_bytes=()):
        self.dut, self.bit_ns = dut, divisor * CLOCK_NS
        self.read_timeout_bits = read_timeout_bits
        self.rng = random.Random(seed)
        self.flip_host_frames, self.cut_host_frames = set(flip_host_frames), set(cut_host_frames)
        self.flip_board_bytes = set(flip_board_bytes)
        self.inbox = bytearray()
        self.data_frames = 0
        self.board_bytes = 0
        self.injected = 0
        dut.rx.value = 1
        self._monitor = cocotb.start_soon(self._receive())

    async def _receive(self):
        while True:
            await FallingEdge(self.dut.tx)
            await Timer(self.bit_ns // 2, unit="ns")
            bits = []
            for _ in range(10):
                bits.append(int(self.dut.tx.value))
                if len(bits) < 10:
                    await Timer(self.bit_ns, unit="ns")
            assert bits[0] == 0 and bits[9] == 1, f"a malformed character from the board: {bits}"
            byte = sum(b << k for k, b in enumerate(bits[1:9]))
            if self.board_bytes in self.flip_board_bytes:
                byte ^= 1 << self.rng.randrange(8)
                self.injected += 1
            self.board_bytes += 1
            self.inbox.append(byte)

    async def write(self, data):
        data = bytearray(data)
        if data[1] == FrameKind.DATA:
            self.data_frames += 1
            if self.data_frames in self.flip_host_frames:
                data[5 + self.rng.randrange(len(data) - 7)] ^= 1 << self.rng.randrange(8)
                self.injected += 1
            elif self.data_frames in self.cut_host_frames:
                data = data[:len(data) // 2]
                self.injected += 1
        for byte in data:
            for bit in [0] + [(byte >> k) & 1 for k in range(8)] + [1]:
                self.dut.rx.value = bit
                await Timer(self.bit_ns, unit="ns")

    @property
    def in_waiting(self):
        return len(self.inbox)

    async def read(self, n):
        for _ in range(self.read_timeout_bits):
            if self.inbox:
                break
            await Timer(self.bit_ns, unit="ns")
        data = bytes(self.inbox[:n])
        del self.inbox[:n]
        return data

    def close(self):
        self._monitor.cancel()


@cocotb.test(timeout_time=300, timeout_unit="sec")
async def layer_over_the_link(dut):
    spec = json.loads(Path(os.environ["LOWBIT_LINK"]).read_text())
    seed, geometry = spec["seed"], geometry_from_json(spec["geometry"])
    await start_clock_and_reset(dut)
    port = SimSerialPort(dut, spec["divisor"], seed=seed, flip_host_frames=spec["flip_host_frames"],
                         cut_host_frames=spec["cut_host_frames"], flip_board_bytes=spec["flip_board_bytes"])
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
        assert got == spec["expected"], (f"seed {seed}, RUN {attempt}: "
                                         f"{sum(a != b for a, b in zip(got, spec['expected']))} words differ")
    await Timer(2000 * port.bit_ns, unit="ns")               # nothing more may arrive
    assert not port.inbox, f"seed {seed}: unexpected bytes after the last response: {port.inbox.hex(' ')}"
    result = {"host": dataclasses.asdict(link.stats), "injected": port.injected,
              "board": {name: int(getattr(dut, name).value) for name in ("bad_frames", "resent_frames", "uart_errors")},
              "sim_us": get_sim_time(unit="us")}
    port.close()
    Path(spec["output"]).write_text(json.dumps(result))
