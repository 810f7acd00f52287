"""The schemes whose weights are not popcount planes on the Verilog tile in Verilator: uniform 8-bit
integer weights (four signed power-of-two terms each on the n-hot array), end to end against the golden
model (==), at two geometries each, resident and a layer at a time, with random idle input and
back-pressure."""

import pytest

from lowbit.sim.tile_transport import run_model_on_tile
from lowbit.sw.host import default_geometry

from .trained import check_tile_run, train_models

pytestmark = pytest.mark.verilator

IMAGES = 40
#: scheme -> (hidden widths, hidden activation override), trained as the tile tests' models are.
MODELS = {"uniform8": ((24,), None)}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from lowbit.sw.train.data import load_digits_split

    trained = train_models(tmp_path_factory.mktemp("models"), MODELS, epochs=2, seed=7)
    return trained, load_digits_split().x_test[:IMAGES]


@pytest.mark.parametrize(
    "scheme, pe, simd, resident",
    [
        # 64 inputs in 8 folds, 24 hidden outputs in 6 folds; then 24 -> 10 with SIMD 16: a padded fold.
        ("uniform8", 4, 8, True),
        ("uniform8", 2, 16, False),
    ],
)
def test_scheme_on_tile(models, scheme, pe, simd, resident, seed=20261207):
    trained, pixels = models
    path, model = trained[scheme]
    geometry = default_geometry(model, pe, simd, resident=resident)
    mode = "resident" if resident else "streaming"
    result = run_model_on_tile(path, pixels, geometry, idle=True, backpressure=True, seed=seed, mode=mode, quiet=True)
    check_tile_run(result, model, pixels, geometry, f"{scheme} PE {pe} SIMD {simd} {mode} seed {seed}")
