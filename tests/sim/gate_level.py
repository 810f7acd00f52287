"""The gate-level check of test_gates_ice40.py: a small trained binary model run on the tile's netlist of
vendor cells (:mod:`lowbit.sim.gates`) through the compiled harness, 100 digits images under idle input
and back-pressure, every output equal to the golden model's."""

import numpy as np

from lowbit.sim.tile_transport import run_model_on_tile
from lowbit.sw.golden import GoldenNetwork
from lowbit.sw.host import default_geometry, tile_layers

from .trained import train_models

IMAGES, SEED = 100, 20261206


def check_gate_level(family, folder):
    from lowbit.sw.train.data import load_digits_split

    path, model = train_models(folder, {"binary": ((32, 24), None)}, epochs=3, seed=5)["binary"]
    pixels = load_digits_split().x_test[:IMAGES]
    geometry = default_geometry(model, 4, 8)
    result = run_model_on_tile(path, pixels, geometry, idle=True, backpressure=True, seed=SEED, netlist=family)
    got, expected = np.array(result["outputs"]), GoldenNetwork(model).run(pixels)
    assert got.shape == expected.shape
    assert (got == expected).all(), (
        f"{family} netlist, seed {SEED}: {int((got != expected).sum())} of {expected.size} outputs differ"
    )
    configs = tile_layers(model, geometry)
    assert result["mac_beats"] == IMAGES * sum(geometry.cycles_per_vector(c) for c in configs)
