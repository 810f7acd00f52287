"""cocotb bench: the board's top level without its pins, :class:`lowbit.boards.build.BoardCore`, driven by
the host driver over the serial link, bit by bit through the UART receiver and transmitter.

``LOWBIT_BOARD`` names a JSON file (written by ``tests/sim/test_board_verilator.py``)::

    {"seed", "divisor", "geometry" (geometry_to_json: what the board was built with), "output": path,
     model_over_the_link only:
     "heartbeat_bits", "model" (model file), "pixels" (.npy), "max_batch",
     "flip_host_seqs", "cut_host_seqs" (host DATA frames by seq, their first sending),
     "flip_board_seqs", "cut_board_seqs" (board DATA frames by seq, their first sending)}

Tests (the caller selects one: each needs its own build of the board):

- ``model_over_the_link``: IDENTIFY (must answer the geometry the board was built with; the error LED
  is still dark), then the whole model through :func:`lowbit.sw.host.run_model` over
  :class:`~lowbit.sw.host.link.LinkTransport` on a :class:`~lowbit.sim.benches.serial_port.SimSerialPort`
  with faults on the wire; meanwhile every edge of ``heartbeat`` is timed. Writes the outputs, the
  host's link statistics (and why it dropped each bad frame), the board's counters, the LEDs, the faults
  injected and the heartbeat's half periods to ``output``; comparing them is the caller's job (so a mismatch
  still yields the figures).
- ``identify_at_board_baud``: IDENTIFY only, on a board built with its real divisor; writes what it
  answered and the board's counters to ``output``.
- ``session_restart``: a host session stops in the middle of LOAD_WEIGHTS (sequence numbers advanced,
  the tile waiting for the rest of the payload); a second host session on the same board, without a
  reset, starts with SYNC and runs the model (``model``, ``pixels``): writes IDENTIFY's answer, the
  outputs and both sessions' link statistics to ``output``.
"""

import dataclasses
import json
import math
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import Timer
from cocotb.utils import get_sim_time

from lowbit.sim.benches.serial_port import CLOCK_NS, SimSerialPort
from lowbit.sim.benches.streams import start_clock_and_reset
from lowbit.sim.tile_transport import geometry_from_json, geometry_to_json
from lowbit.sw.host import TileInterface, run_model, tile_layers
from lowbit.sw.host.link import FrameDecoder, FrameError, LinkTransport
from lowbit.sw.model.file import load_model
from lowbit.sw.protocol import Opcode, header
from lowbit.sw.protocol.frames import ACK_TIMEOUT_BITS, MAX_FRAME_WORDS

COUNTERS = ("bad_frames", "resent_frames", "uart_errors")


class _LoggingDecoder(FrameDecoder):
    """The host's frame decoder, keeping the reason of every frame it drops (``"crc"``, ``"truncated"``, ...)."""

    def __init__(self):
        super().__init__()
        self.dropped = []

    def feed(self, data):
        return self._log(super().feed(data))

    def expire(self):
        return self._log(super().expire())

    def _log(self, events):
        self.dropped += [event.reason for event in events if isinstance(event, FrameError)]
        return events


def _spec():
    return json.loads(Path(os.environ["LOWBIT_BOARD"]).read_text())


def _link(port, spec):
    """The host side. Its ACK wait is twice the board's (``spec["ack_timeout_cycles"]``, or
    ACK_TIMEOUT_BITS bit times): an ACK may queue behind one of the board's longest frames while the
    tile's output waits for the host's own ACK, and the board's own resend may be what frees it."""
    cycles = spec.get("ack_timeout_cycles", ACK_TIMEOUT_BITS * spec["divisor"])
    timeout = 2 * cycles * CLOCK_NS * 1e-9
    return LinkTransport(port, timeout=timeout, retries=8, clock=lambda: get_sim_time(unit="sec"))


def _cycle():
    return round(get_sim_time(unit="ns")) // CLOCK_NS


async def _time_edges(signal, edges):
    """Append the clock cycle of every change of ``signal`` to ``edges``, forever."""
    while True:
        await signal.value_change
        edges.append(_cycle())


async def _start_with_model(dut):
    """The spec, its seed, geometry, model and pixels; the clock started and the board reset."""
    spec = _spec()
    await start_clock_and_reset(dut)
    return (
        spec,
        spec["seed"],
        geometry_from_json(spec["geometry"]),
        load_model(spec["model"]),
        np.load(spec["pixels"]),
    )


def _board_state(dut):
    return {**{name: int(getattr(dut, name).value) for name in COUNTERS}, "error_led": int(dut.error.value)}


@cocotb.test(timeout_time=1, timeout_unit="sec")
async def model_over_the_link(dut):
    spec, seed, geometry, model, pixels = await _start_with_model(dut)
    edges = []
    beat = cocotb.start_soon(_time_edges(dut.heartbeat, edges))
    port = SimSerialPort(
        dut,
        spec["divisor"],
        seed=seed,
        flip_host_seqs=spec["flip_host_seqs"],
        cut_host_seqs=spec["cut_host_seqs"],
        flip_board_seqs=spec["flip_board_seqs"],
        cut_board_seqs=spec["cut_board_seqs"],
    )
    link = _link(port, spec)
    link.decoder = decoder = _LoggingDecoder()
    interface = TileInterface(link)

    identified = await interface.identify()
    assert identified == geometry, f"seed {seed}: IDENTIFY gave {identified}, the board was built as {geometry}"
    after_identify = _board_state(dut)
    outputs = await run_model(interface, model, pixels, max_batch=spec["max_batch"], mode=spec.get("mode", "auto"))
    await Timer(2000 * port.bit_ns, unit="ns")  # nothing more may arrive
    assert not port.inbox, f"seed {seed}: unexpected bytes after the last response: {port.inbox.hex(' ')}"
    beat.cancel()
    port.close()
    result = {
        "outputs": outputs.tolist(),
        "host": dataclasses.asdict(link.stats),
        "host_dropped": decoder.dropped,
        "words": interface.stats.as_dict(),
        "board": _board_state(dut),
        "after_identify": after_identify,
        "injected": port.injected,
        "faults": port.faults,
        "host_frames": port.host_frames,
        "board_frames": port.board_frames,
        "heartbeat": {"edges": len(edges), "half_periods": sorted({b - a for a, b in zip(edges, edges[1:])})},
        "cycles": _cycle(),
        "sim_us": get_sim_time(unit="us"),
    }
    Path(spec["output"]).write_text(json.dumps(result))


@cocotb.test(timeout_time=1, timeout_unit="sec")
async def identify_at_board_baud(dut):
    spec = _spec()
    seed, geometry = spec["seed"], geometry_from_json(spec["geometry"])
    await start_clock_and_reset(dut)
    port = SimSerialPort(dut, spec["divisor"], seed=seed)
    link = _link(port, spec)
    identified = await TileInterface(link).identify()
    port.close()
    result = {
        "geometry": geometry_to_json(identified),
        "host": dataclasses.asdict(link.stats),
        "board": _board_state(dut),
        "sim_us": get_sim_time(unit="us"),
    }
    Path(spec["output"]).write_text(json.dumps(result))
    assert identified == geometry, f"seed {seed}: IDENTIFY gave {identified}, the board was built as {geometry}"


@cocotb.test(timeout_time=1, timeout_unit="sec")
async def session_restart(dut):
    spec, seed, geometry, model, pixels = await _start_with_model(dut)
    port = SimSerialPort(dut, spec["divisor"], seed=seed)
    first = _link(port, spec)
    interface = TileInterface(first)
    await interface.identify()
    config = tile_layers(model, geometry)[0]
    await interface.configure(config)
    words = geometry.weight_words(config)
    assert words >= 2, f"the layer's {words} weight words cannot be cut in half"
    # The first session ends here: LOAD_WEIGHTS with half of its payload sent.
    await first.write([header(Opcode.LOAD_WEIGHTS, words)] + [0] * (words // 2))
    second = _link(port, spec)
    await second.synchronize()
    interface = TileInterface(second)
    identified = await interface.identify()
    outputs = await run_model(interface, model, pixels)
    await Timer(2000 * port.bit_ns, unit="ns")  # nothing more may arrive
    assert not port.inbox, f"seed {seed}: unexpected bytes after the last response: {port.inbox.hex(' ')}"
    port.close()
    result = {
        "geometry": geometry_to_json(identified),
        "outputs": outputs.tolist(),
        "first": dataclasses.asdict(first.stats),
        "first_frames": 2 + math.ceil((1 + words // 2) / MAX_FRAME_WORDS),  # IDENTIFY, CONFIGURE, the half
        "second": dataclasses.asdict(second.stats),
        "board": _board_state(dut),
    }
    Path(spec["output"]).write_text(json.dumps(result))
