"""cocotb bench: a whole model through the host driver on the tile's streams.

Reads its parameters from the environment (:func:`lowbit.sim.tile_transport.run_model_on_tile` sets them):

==================== =============================================================================
``LOWBIT_MODEL``     the model file
``LOWBIT_PIXELS``    ``.npy`` digits pixels ``(batch, 64)``
``LOWBIT_GEOMETRY``  the tile's geometry as JSON (:func:`~lowbit.sim.tile_transport.geometry_to_json`)
``LOWBIT_OUTPUT``    the JSON file to write
``LOWBIT_IDLE``, ``LOWBIT_BACKPRESSURE``  ``1`` for random input gaps / output back-pressure
``LOWBIT_SEED``      seed of those patterns
``LOWBIT_MAX_BATCH`` vectors per RUN (``0``: the whole batch)
``LOWBIT_MODE``      the driver's mode (``auto``, ``resident``, ``streaming``)
``LOWBIT_CLASSES``   ``1``: the class indices instead of the accumulators (resident: CLASSIFY)
``LOWBIT_PROGRESS``  ``1`` draws a progress bar on standard error
==================== =============================================================================

The driver first checks IDENTIFY against the geometry, then runs the model (:func:`lowbit.sw.host.run_model`).
The JSON holds the outputs (last-layer accumulators, or class indices), the total cycles, per layer the cycles of its
loads and of each RUN, the MAC array's busy-cycle estimate (and the tile's ``mac_beats`` count where it
has that port) and the words sent; comparing the outputs
with the golden model is the caller's job (so a mismatch still yields the figures).
"""

import json
import os
from pathlib import Path

import cocotb
import numpy as np

from lowbit.sim.benches.streams import start_clock_and_reset
from lowbit.sim.tile_transport import CocotbTransport, geometry_from_json
from lowbit.sw.host import TileInterface, resident_mode, run_model, tile_layers
from lowbit.sw.model.file import load_model
from lowbit.sw.protocol import RUN_OPCODES

RUNS = tuple(opcode.name for opcode in RUN_OPCODES)  # as the command log names them


def _flag(name):
    return os.environ.get(name, "0") == "1"


def _resident(interface, configs, geometry):
    """The figures of a resident run: one entry, the whole model (its layers never leave the tile)."""
    entries = [e for e in interface.log if e["tag"] == "model"]
    runs = [{"batch": e["batch"], "cycles": e["end_cycle"] - e["start_cycle"]} for e in entries if e["opcode"] in RUNS]
    per_vector = sum(geometry.cycles_per_vector(config) for config in configs)
    return [
        {
            "runs": runs,
            "run_cycles": sum(r["cycles"] for r in runs),
            "load_cycles": sum(e["end_cycle"] - e["start_cycle"] for e in entries if e["opcode"] not in RUNS),
            "busy_cycles": sum(r["batch"] for r in runs) * per_vector,
        }
    ]


def _per_layer(interface, configs, geometry):
    layers = []
    for index, config in enumerate(configs):
        entries = [e for e in interface.log if e["tag"] == index]
        runs = [
            {"batch": e["batch"], "cycles": e["end_cycle"] - e["start_cycle"]} for e in entries if e["opcode"] == "RUN"
        ]
        # A layer larger than the tile runs in parts (driver.output_parts), each over the whole batch;
        # the parts' folds add up to the layer's.
        parts = max(1, sum(e["opcode"] == "CONFIGURE" for e in entries))
        layers.append(
            {
                "runs": runs,
                "run_cycles": sum(r["cycles"] for r in runs),
                "load_cycles": sum(e["end_cycle"] - e["start_cycle"] for e in entries if e["opcode"] != "RUN"),
                "busy_cycles": sum(r["batch"] for r in runs) // parts * geometry.cycles_per_vector(config),
            }
        )
    return layers


@cocotb.test(timeout_time=2000, timeout_unit="sec")
async def model_on_tile(dut):
    model = load_model(os.environ["LOWBIT_MODEL"])
    pixels = np.load(os.environ["LOWBIT_PIXELS"])
    geometry = geometry_from_json(Path(os.environ["LOWBIT_GEOMETRY"]).read_text())
    seed = int(os.environ.get("LOWBIT_SEED", "0"))
    await start_clock_and_reset(dut)
    transport = CocotbTransport(dut, idle=_flag("LOWBIT_IDLE"), backpressure=_flag("LOWBIT_BACKPRESSURE"), seed=seed)
    interface = TileInterface(transport)
    identified = await interface.identify()
    assert identified == geometry, f"IDENTIFY gave {identified}, the tile was built as {geometry}"
    configs = tile_layers(model, geometry)
    mode = os.environ.get("LOWBIT_MODE", "auto")
    resident = resident_mode(configs, geometry, mode)

    bar = None
    if _flag("LOWBIT_PROGRESS"):
        from tqdm import tqdm

        bar = tqdm(total=len(configs) * len(pixels), desc="tile", unit="vector", leave=False)

    def progress(layer, done, batch):
        if bar is not None:
            bar.n = layer * batch + done
            bar.refresh()

    start = transport.cycle
    outputs = await run_model(
        interface,
        model,
        pixels,
        progress,
        max_batch=int(os.environ.get("LOWBIT_MAX_BATCH", "0")) or None,
        mode=mode,
        classes=_flag("LOWBIT_CLASSES"),
    )
    cycles = transport.cycle - start
    # The tile's own count of MAC-array cycles that did work, where it has the port.
    mac_beats = int(dut.mac_beats.value) if hasattr(dut, "mac_beats") else None
    if bar is not None:
        bar.close()
    await transport.close()
    layers = (_resident if resident else _per_layer)(interface, configs, geometry)
    result = {
        "outputs": outputs.tolist(),
        "cycles": cycles,
        "run_cycles": sum(layer["run_cycles"] for layer in layers),
        "busy_cycles": sum(layer["busy_cycles"] for layer in layers),
        "mac_beats": mac_beats,
        "layers": layers,
        "stream": interface.stats.as_dict(),
        "geometry": json.loads(Path(os.environ["LOWBIT_GEOMETRY"]).read_text()),
        "idle": _flag("LOWBIT_IDLE"),
        "backpressure": _flag("LOWBIT_BACKPRESSURE"),
        "seed": seed,
        "mode": "resident" if resident else "streaming",
    }
    Path(os.environ["LOWBIT_OUTPUT"]).write_text(json.dumps(result))
