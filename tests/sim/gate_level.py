"""The gate-level check of test_gates_ice40.py: a small trained binary model run on the tile's netlist of
vendor cells (:mod:`lowbit.sim.gates`) through the compiled harness, 40 digits images under idle input
and back-pressure, every output equal to the golden model's."""

from lowbit.sim.tile_transport import run_model_on_tile
from lowbit.sw.host import default_geometry

from .trained import check_tile_run, train_models

IMAGES, SEED = 40, 20261206


def check_gate_level(family, folder):
    from lowbit.sw.train.data import load_digits_split

    path, model = train_models(folder, {"binary": ((32, 24), None)}, epochs=3, seed=5)["binary"]
    pixels = load_digits_split().x_test[:IMAGES]
    geometry = default_geometry(model, 4, 8)
    result = run_model_on_tile(path, pixels, geometry, idle=True, backpressure=True, seed=SEED, netlist=family)
    check_tile_run(result, model, pixels, geometry, f"{family} netlist, seed {SEED}")
