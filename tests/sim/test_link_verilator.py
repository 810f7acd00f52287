"""The serial link bit by bit in Verilator: the host driver over LinkTransport and a UART model on the
pins of LinkTile (the bridge wired to a small tile): IDENTIFY, a layer configured, loaded and run twice,
every response equal to ModelTile's (==), with faults on the wire (a flipped bit in a host frame, a host
frame cut short, a corrupted board frame that the host NAKs) and none of them losing or duplicating a
word."""

import asyncio
import json

import numpy as np
import pytest

from lowbit.hw.link.bridge import LinkTile
from lowbit.sim.reference import ModelTile
from lowbit.sim.tile_transport import geometry_to_json
from lowbit.sim.verilator import run_bench
from lowbit.sw.host import TileInterface, layer_config, pack_inputs, pack_thresholds, pack_weights
from lowbit.sw.model.file import LayerRecord
from lowbit.sw.paths import build_root
from lowbit.sw.protocol import Family, TileGeometry

pytestmark = pytest.mark.verilator

DIVISOR = 8
GEOMETRY = TileGeometry(
    Family.POPCOUNT,
    4,
    32,
    max_in_features=64,
    max_out_features=16,
    max_weight_rows=16,
    max_thresholds=3,
    max_input_bits=4,
)
BATCH = 8


def small_layer(rng):
    """Ternary weights against 4-bit inputs, 3 output levels: 40 -> 6."""
    n_in, n_out = 40, 6
    w = rng.integers(-1, 2, (n_out, n_in)).astype(np.int8)
    layer = LayerRecord(
        n_in,
        n_out,
        "ternary",
        2,
        "uint",
        4,
        "threshold",
        w,
        output_levels=3,
        thresholds=np.zeros((n_out, 2), np.int64),
        descending=np.zeros(n_out, bool),
    )
    lo, hi = layer.accumulator_range()
    t = np.sort(rng.integers(lo[:, None] // 2, hi[:, None] // 2 + 1, (n_out, 2)), axis=1)
    layer.thresholds[:] = t
    layer.descending[:] = rng.random(n_out) < 0.5
    layer.thresholds[layer.descending] = layer.thresholds[layer.descending][:, ::-1]
    return layer


def expected_words(config, weights, thresholds, inputs):
    tile = ModelTile(GEOMETRY)
    interface = TileInterface(tile, GEOMETRY)

    async def session():
        await interface.configure(config)
        await interface.load_weights(weights)
        await interface.load_thresholds(thresholds)
        return await interface.run(inputs, BATCH)

    return asyncio.run(session())


@pytest.mark.parametrize("seed", [20261123])
def test_layer_over_the_link_with_faults(seed):
    rng = np.random.default_rng(seed)
    layer = small_layer(rng)
    config = layer_config(layer)
    weights = [int(w) for w in pack_weights(layer, GEOMETRY)]
    thresholds = [int(w) for w in pack_thresholds(layer, GEOMETRY)]
    codes = rng.integers(0, 16, (BATCH, layer.in_features))
    codes[0] = 0
    codes[1] = 15
    inputs = [int(w) for w in pack_inputs(codes, config, GEOMETRY)]
    expected = expected_words(config, weights, thresholds, inputs)
    folder = build_root() / "link_runs" / f"layer-{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    spec = {
        "seed": seed,
        "divisor": DIVISOR,
        "geometry": geometry_to_json(GEOMETRY),
        "layer": config.encode(),
        "weights": weights,
        "thresholds": thresholds,
        "inputs": inputs,
        "batch": BATCH,
        "expected": expected,
        # host DATA frames as the port counts them, resends included: 1 IDENTIFY, 2 CONFIGURE (a bit
        # flipped), 3 its resend (cut short), 4 its second resend, 5 the first LOAD_WEIGHTS frame (a bit
        # flipped), 6 its resend, ... (RUN frames are hit in tests/sim/test_board_verilator.py)
        "flip_host_frames": [2, 5],
        "cut_host_frames": [3],
        # board bytes: 0..6 the ACK of IDENTIFY, then IDENTIFY's DATA frame: byte 17 is in its payload
        "flip_board_bytes": [17],
        "timeout": 2e-3,
        "output": str(folder / "result.json"),
    }
    (folder / "spec.json").write_text(json.dumps(spec))
    run_bench(
        LinkTile(GEOMETRY, DIVISOR),
        toplevel="link_tile",
        test_module="lowbit.sim.benches.link_bench",
        env={"LOWBIT_LINK": folder / "spec.json", "LOWBIT_SEED": seed},
        name=f"layer-{seed}",
    )
    result = json.loads((folder / "result.json").read_text())
    host, board = result["host"], result["board"]
    assert result["injected"] == 4, result
    assert board["bad_frames"] == 3, f"seed {seed}: the board should have NAKed the 3 bad host frames: {result}"
    assert host["resent"] >= 3 and host["naks_received"] >= 3, result
    assert host["bad_frames"] == 1 and host["naks_sent"] == 1, f"seed {seed}: the host NAKs the bad board frame"
    assert board["resent_frames"] >= 1 and board["uart_errors"] == 0, result
    assert host["duplicates"] == 0, result
