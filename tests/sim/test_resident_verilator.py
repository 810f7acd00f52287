"""Resident models on the Verilog tile in Verilator: trained models loaded once (LOAD_MODEL) and run through
all their layers on the tile, the hidden activations written back into the tile's input memory, every
output equal to the golden model (==), and their class indices (CLASSIFY) equal to the golden model's; and
the error responses of LOAD_MODEL and CLASSIFY word for word against the reference tile, with a reset in
the middle of a LOAD_MODEL."""

import asyncio

import numpy as np
import pytest

from lowbit.sim.reference import ModelTile
from lowbit.sim.tile_transport import run_model_on_tile
from lowbit.sw.golden import GoldenNetwork, class_index
from lowbit.sw.host import (
    default_geometry,
    pack_inputs,
    pack_model_thresholds,
    pack_model_weights,
    pack_thresholds,
    pack_weights,
    tile_layers,
)
from lowbit.sw.protocol import ErrorCode, LayerConfig, Opcode, Response, header

from .trained import check_script, train_tile_models

pytestmark = pytest.mark.verilator

IMAGES = 40


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from lowbit.sw.train.data import load_digits_split

    trained = train_tile_models(tmp_path_factory.mktemp("resident"))
    return trained, load_digits_split().x_test[:IMAGES]


@pytest.mark.parametrize(
    "scheme, pe, simd, idle, backpressure, classes",
    [
        ("binary", 16, 8, True, True, False),  # PE > SIMD: a fold fills two rows
        ("fatnn", 16, 4, True, False, False),  # ternary planes, 40 outputs: a part-filled last fold
        ("nhot2", 4, 8, False, True, False),  # uint codes; PE < SIMD: two folds fill a row
        # CLASSIFY, on the same Verilog: 10 classes on PE 16, six padded channels skipped
        ("binary", 16, 8, True, True, True),
        ("fatnn", 16, 4, True, True, True),
    ],
)
def test_resident_model_on_tile(models, scheme, pe, simd, idle, backpressure, classes, seed=20261206):
    trained, pixels = models
    path, model = trained[scheme]
    geometry = default_geometry(model, pe, simd, resident=True)
    result = run_model_on_tile(
        path,
        pixels,
        geometry,
        idle=idle,
        backpressure=backpressure,
        seed=seed,
        max_batch=16,
        mode="resident",
        classes=classes,
        quiet=True,
    )
    assert result["mode"] == "resident"
    accumulators = GoldenNetwork(model).run(pixels)
    got, expected = np.array(result["outputs"]), class_index(accumulators) if classes else accumulators
    assert got.shape == expected.shape
    assert (got == expected).all(), (
        f"{scheme} PE {pe} SIMD {simd} seed {seed}: {int((got != expected).sum())} of {expected.size} outputs differ"
    )
    # Every layer of every image went through the MAC array on the tile, and nothing else did.
    configs = tile_layers(model, geometry)
    assert result["mac_beats"] == IMAGES * sum(geometry.cycles_per_vector(c) for c in configs)
    # Only the inputs and the last layer's accumulators (or one class index per image) crossed the stream.
    stream, run = result["stream"], "CLASSIFY" if classes else "RUN"
    assert stream["sent"][run]["payload"] == IMAGES * geometry.input_words(configs[0])
    assert set(stream["sent"]) == {"IDENTIFY", "LOAD_MODEL", "LOAD_WEIGHTS", "LOAD_THRESHOLDS", run}
    per_image = 1 if classes else geometry.output_words(configs[-1])
    assert stream["received"]["payload"] == 5 + IMAGES * per_image  # IDENTIFY's words, then the outputs


def _responses(tile, words):
    asyncio.run(tile.write(words))
    return asyncio.run(tile.read(tile.pending))


def test_load_model_errors_and_reset(models, seed=61):
    """Every LOAD_MODEL refusal gets the reference tile's ERROR and leaves the tile unconfigured; a reset in
    the middle of LOAD_MODEL leaves a tile that then loads and runs the whole model exactly."""
    trained, pixels = models
    _, model = trained["binary"]
    geometry = default_geometry(model, 16, 8, resident=True)  # the Verilog of the first model test
    configs = tile_layers(model, geometry)
    first, hidden, last = configs
    words = geometry.model_words(configs)
    load_model = [header(Opcode.LOAD_MODEL, len(words))] + words
    weights = [int(w) for w in pack_model_weights(model.layers, geometry)]
    thresholds = [int(w) for w in pack_model_thresholds(model.layers, geometry)]
    inputs = [int(w) for w in pack_inputs(GoldenNetwork(model).input(pixels[:6]), first, geometry)]

    def model_command(layers, count=None):
        payload = [len(layers) if count is None else count] + [w for c in layers for w in c.encode()]
        return [header(Opcode.LOAD_MODEL, len(payload))] + payload

    too_many = geometry.max_out_features + 1
    wide = LayerConfig(first.in_features, too_many, "binary", 1, 0, "uint", 8, 2)
    refused = {
        "zero length": [header(Opcode.LOAD_MODEL, 0)],
        "length not 1 + 3 L": model_command(configs, count=2),
        "no layers": model_command([]),
        "more than max_layers": model_command([first, hidden, hidden, last]),
        "unsupported layer": model_command([first, hidden, LayerConfig(24, 10, "nhot", 4, 2, "uint", 4, 0)]),
        "layer too large": model_command([wide, LayerConfig(too_many, 10, "int", 8, 0, "binary", 1, 0)]),
        "features do not chain": model_command([first, LayerConfig(24, 24, "binary", 1, 0, "binary", 1, 2), last]),
        "levels do not chain": model_command([first, LayerConfig(32, 24, "binary", 1, 0, "uint", 2, 2), last]),
        "hidden layer emits accumulators": model_command([LayerConfig(64, 32, "binary", 1, 0, "uint", 8, 0), hidden]),
        "last layer emits codes": model_command([first, hidden]),
    }
    reference = ModelTile(geometry)
    commands = [[header(Opcode.RUN, len(inputs))] + inputs]  # forgotten by the reset: NOT_CONFIGURED
    # A model whose first layer takes binary codes: rows of 8 bits, four to a word (its 3 folds in one)
    rng = np.random.default_rng(seed)
    narrow = [LayerConfig(24, 24, "binary", 1, 0, "binary", 1, 2), LayerConfig(24, 10, "binary", 1, 0, "binary", 1, 0)]
    assert geometry.input_words(narrow[0]) == 1
    narrow_words = geometry.model_words(narrow)
    narrow_weights = rng.integers(0, 1 << 32, geometry.model_weight_words(narrow)).tolist()
    narrow_thresholds = rng.integers(-8, 9, geometry.model_threshold_words(narrow)).astype(np.uint32).tolist()
    narrow_inputs = [int(w) for w in pack_inputs(rng.integers(0, 2, (5, 24)), narrow[0], geometry)]
    commands += [
        [header(Opcode.LOAD_MODEL, len(narrow_words))] + narrow_words,
        [header(Opcode.LOAD_WEIGHTS, len(narrow_weights))] + narrow_weights,
        [header(Opcode.LOAD_THRESHOLDS, len(narrow_thresholds))] + narrow_thresholds,
        [header(Opcode.RUN, len(narrow_inputs))] + narrow_inputs,
        [header(Opcode.CLASSIFY, len(narrow_inputs))] + narrow_inputs,
    ]
    for words_ in refused.values():
        commands += [load_model, words_, [header(Opcode.RUN, len(inputs))] + inputs]  # refused: unconfigured
    classify = [header(Opcode.CLASSIFY, len(inputs))] + inputs
    last_weights = [int(w) for w in pack_weights(model.layers[-1], geometry)]
    last_thresholds = [int(w) for w in pack_thresholds(model.layers[-1], geometry)]
    last_inputs = [int(w) for w in pack_inputs(np.zeros((2, last.in_features), np.int64), last, geometry)]
    commands += [
        [header(Opcode.CONFIGURE, 3)] + last.encode(),  # one layer, loaded: CLASSIFY is for resident models
        [header(Opcode.LOAD_WEIGHTS, len(last_weights))] + last_weights,
        [header(Opcode.LOAD_THRESHOLDS, len(last_thresholds))] + last_thresholds,
        [header(Opcode.CLASSIFY, len(last_inputs))] + last_inputs,  # UNSUPPORTED
        [header(Opcode.RUN, len(last_inputs))] + last_inputs,  # DATA: the layer is still loaded
        load_model,
        classify,  # NOT_LOADED
        [header(Opcode.RUN, len(inputs))] + inputs,  # NOT_LOADED
        [header(Opcode.LOAD_WEIGHTS, len(weights) - 1)] + weights[:-1],  # BAD_LENGTH
        [header(Opcode.LOAD_WEIGHTS, len(weights))] + weights,
        [header(Opcode.LOAD_THRESHOLDS, len(thresholds))] + thresholds,
        [header(Opcode.RUN, len(inputs) - 1)] + inputs[:-1],  # BAD_LENGTH
        [header(Opcode.RUN, len(inputs))] + inputs,  # DATA
        [header(Opcode.CLASSIFY, len(inputs) + 1)] + inputs + [0],  # BAD_LENGTH
        classify,  # DATA: six class indices
        [header(Opcode.IDENTIFY, 0)],
    ]
    steps = [
        {"send": load_model[: len(load_model) // 2]},
        {"reset": 3},
    ]
    for words_ in commands:
        steps += [{"send": words_}, {"expect": _responses(reference, words_)}]
    expects = [s["expect"] for s in steps if "expect" in s]
    codes = [e[1] & 0xFF for e in expects if e[0] == header(Response.ERROR, 1)]
    # Every refusal of the list and the model's own checks are among the answers, NOT_CONFIGURED after each.
    assert {int(c) for c in ErrorCode} - {ErrorCode.UNKNOWN_OPCODE} <= set(codes)
    assert expects[-4][0] == header(Response.DATA, 6 * geometry.output_words(last))
    assert expects[-2][0] == header(Response.DATA, 6) and expects[-2][1:] == list(
        class_index(GoldenNetwork(model).run(pixels[:6]))
    )
    check_script(geometry, steps, seed)
