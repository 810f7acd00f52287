"""The schemes whose weights are not popcount planes on the Verilog tile in Verilator: uniform 8-bit
integer weights (four signed power-of-two terms each, on the n-hot array) and FGQ (ternary weights with
a Q0.8 scale per group of N = 4 or 64 inputs, on the FGQ array), end to end against the golden model
(==), at two geometries each, resident and a layer at a time, with random idle input and back-pressure;
and the FGQ tile's refusal of a group size that is not a multiple of its own."""

import dataclasses

import pytest

from lowbit.sim.reference import ModelTile
from lowbit.sim.tile_transport import run_model_on_tile
from lowbit.sw.golden import GoldenNetwork
from lowbit.sw.host import default_geometry, pack_inputs, pack_thresholds, pack_weights, tile_layers
from lowbit.sw.protocol import ErrorCode, Opcode, Response, header

from .test_tile_verilator import _responses
from .trained import check_script, check_tile_run, train_models

pytestmark = pytest.mark.verilator

IMAGES = 40
#: scheme -> (hidden widths, hidden activation override), trained as the tile tests' models are.
MODELS = {"uniform8": ((24,), None), "fgq": ((24,), None), "fgq64": ((64,), None)}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from lowbit.sw.train.data import load_digits_split

    trained = train_models(tmp_path_factory.mktemp("models"), MODELS, epochs=2, seed=7)
    return trained, load_digits_split().x_test[:IMAGES]


@pytest.mark.parametrize(
    "scheme, pe, simd, resident, group_size",
    [
        # 64 inputs in 8 folds, 24 hidden outputs in 6 folds; then 24 -> 10 with SIMD 16: a padded fold.
        ("uniform8", 4, 8, True, 0),
        ("uniform8", 2, 16, False, 0),
        # FGQ N = 4: the tile's groups are the layer's (4 to a fold of 16, 2 to a fold of 8).
        ("fgq", 4, 16, True, 4),
        ("fgq", 2, 8, False, 4),
        # FGQ N = 64: groups larger than a fold; each of the layer's scales repeated over 16 / 8 lanes.
        ("fgq64", 4, 16, True, 16),
        ("fgq64", 2, 8, False, 8),
    ],
)
def test_scheme_on_tile(models, scheme, pe, simd, resident, group_size, seed=20261207):
    trained, pixels = models
    path, model = trained[scheme]
    geometry = default_geometry(model, pe, simd, resident=resident)
    assert geometry.group_size == group_size
    mode = "resident" if resident else "streaming"
    result = run_model_on_tile(path, pixels, geometry, idle=True, backpressure=True, seed=seed, mode=mode, quiet=True)
    check_tile_run(result, model, pixels, geometry, f"{scheme} PE {pe} SIMD {simd} {mode} seed {seed}")


def test_fgq_group_sizes_refused(models, seed=78):
    """CONFIGURE of an FGQ layer whose group size is not a multiple of the tile's (2 on a tile of groups
    of 4; 0) is refused with UNSUPPORTED, and the tile then runs the layer with its own group size
    exactly: the responses of the Verilog tile == the reference tile's, word for word."""
    trained, pixels = models
    _, model = trained["fgq"]
    geometry = default_geometry(model, 2, 8)
    layer, config = model.layers[0], tile_layers(model, geometry)[0]
    assert geometry.group_size == config.group_size == 4
    codes = GoldenNetwork(model).input(pixels[:4])
    weights = [int(w) for w in pack_weights(layer, geometry)]
    thresholds = [int(w) for w in pack_thresholds(layer, geometry)]
    inputs = [int(w) for w in pack_inputs(codes, config, geometry)]
    commands = [
        [header(Opcode.CONFIGURE, 3)] + dataclasses.replace(config, group_size=2).encode(),
        [header(Opcode.CONFIGURE, 3)] + dataclasses.replace(config, group_size=0).encode(),
        [header(Opcode.CONFIGURE, 3)] + dataclasses.replace(config, group_size=6).encode(),
        [header(Opcode.CONFIGURE, 3)] + config.encode(),
        [header(Opcode.LOAD_WEIGHTS, len(weights))] + weights,
        [header(Opcode.LOAD_THRESHOLDS, len(thresholds))] + thresholds,
        [header(Opcode.RUN, len(inputs))] + inputs,
    ]
    reference = ModelTile(geometry)
    steps = []
    for words in commands:
        steps += [{"send": words}, {"expect": _responses(reference, words)}]
    expects = [s["expect"] for s in steps if "expect" in s]
    refused = [header(Response.ERROR, 1), ErrorCode.UNSUPPORTED | (Opcode.CONFIGURE << 8)]
    assert expects[:3] == [refused] * 3 and expects[3] == [header(Response.OK, 0)]
    assert expects[6][0] == header(Response.DATA, 4 * geometry.output_words(config))
    check_script(geometry, steps, seed)
