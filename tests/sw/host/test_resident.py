"""Resident models (LOAD_MODEL) through the host driver and ModelTile, the reference tile: whole trained and
random models equal to the golden model and to streaming mode (==), the word formats and the example of
docs/protocol.md, every LOAD_MODEL refusal against ``model_error``, the model-mode length checks, and the
driver's choice of mode."""

import asyncio
import dataclasses

import numpy as np
import pytest

from lowbit.sim.reference import ModelTile
from lowbit.sw.golden import GoldenNetwork, class_index
from lowbit.sw.host import (
    MODES,
    TileError,
    TileInterface,
    default_geometry,
    pack_inputs,
    pack_model_thresholds,
    pack_model_weights,
    pack_thresholds,
    pack_weights,
    resident_mode,
    run_codes,
    run_model,
    tile_layers,
)
from lowbit.sw.host.packing import signed32
from lowbit.sw.kinds.encodings import nhot_nearest
from lowbit.sw.model.file import LayerRecord, LowbitModel
from lowbit.sw.protocol import (
    MAX_LENGTH,
    ErrorCode,
    Family,
    InputKind,
    LayerConfig,
    Opcode,
    ProtocolError,
    Response,
    TileGeometry,
    WeightKind,
    header,
    model_error,
    model_refusal_reason,
)


def run(coroutine):
    return asyncio.run(coroutine)


class Counting(ModelTile):
    """A ModelTile that counts the words written to it."""

    words = 0

    async def write(self, words):
        self.words += len(words)
        await super().write(words)


# --- whole trained models: resident == golden == streaming ------------------------------------------------

#: The tiny networks of tests/sw/conftest.py that a tile runs: every family, and every scheme a tile runs.
ON_A_TILE = {
    "binary": Family.BINARY,
    "twn": Family.POPCOUNT,
    "fatnn": Family.POPCOUNT,
    "nhot1": Family.NHOT,
    "nhot2": Family.NHOT,
    "nhot3": Family.NHOT,
    "uniform8": Family.NHOT,  # 8-bit weights: four terms
    "fgq": Family.FGQ,
    "fgq64": Family.FGQ,
    "fgq-uint4": Family.FGQ,
    "twn-ternary-act": Family.POPCOUNT,
    "twn-binary-act": Family.POPCOUNT,
}


def test_the_tiny_models_a_tile_runs(tiny_models):
    """ON_A_TILE is every tiny network a tile runs; the others are refused by every tile."""
    for name, model in tiny_models.items():
        if name in ON_A_TILE:
            assert default_geometry(model).family == ON_A_TILE[name], name
        else:
            with pytest.raises(ProtocolError):
                default_geometry(model)


@pytest.mark.parametrize("name", ON_A_TILE)
@pytest.mark.parametrize("array", ["default", "small"])
def test_resident_equals_golden_and_streaming(tiny_models, split, name, array):
    model = tiny_models[name]
    pe_simd = (2, 4) if array == "small" else (None, None)
    geometry = default_geometry(model, *pe_simd, resident=True)
    configs = tile_layers(model, geometry)
    assert geometry.max_layers == len(configs) >= 2 and geometry.model_check(configs) is None
    # a streaming-only tile of the same size: the same layers, one at a time
    assert default_geometry(model, *pe_simd) == dataclasses.replace(
        geometry,
        max_layers=0,
        max_weight_rows=max(geometry.weight_rows(c) for c in configs),
        max_out_features=max(c.out_features for c in configs),
    )
    pixels = split.x_test
    expected = GoldenNetwork(model).run(pixels)

    tile = ModelTile(geometry)
    interface = TileInterface(tile)
    calls = []
    got = run(run_model(interface, model, pixels, lambda *call: calls.append(call), max_batch=100))
    assert got.dtype == np.int64 and got.shape == expected.shape
    assert (got == expected).all(), f"{name}: {int((got != expected).sum())} outputs differ from the golden model"

    streaming_tile = ModelTile(geometry)
    streaming = TileInterface(streaming_tile, geometry)
    assert (run(run_model(streaming, model, pixels, mode="streaming")) == got).all()
    assert tile.busy_cycles == streaming_tile.busy_cycles == 360 * sum(geometry.cycles_per_vector(c) for c in configs)

    last = len(configs) - 1
    assert calls == [(last, 100, 360), (last, 200, 360), (last, 300, 360), (last, 360, 360)]
    commands = [(e["opcode"], e["tag"], e["payload"], e["batch"]) for e in interface.log]
    assert commands == [
        ("IDENTIFY", None, 0, None),
        ("LOAD_MODEL", "model", 1 + 3 * len(configs), None),
        ("LOAD_WEIGHTS", "model", geometry.model_weight_words(configs), None),
        ("LOAD_THRESHOLDS", "model", geometry.model_threshold_words(configs), None),
        *[("RUN", "model", n * geometry.input_words(configs[0]), n) for n in (100, 100, 100, 60)],
    ]
    assert interface.stats.received["payload"] == 5 + 360 * geometry.output_words(configs[-1])
    assert "LOAD_MODEL" not in streaming.stats.as_dict()["sent"]
    assert streaming.stats.sent["CONFIGURE"]["commands"] == len(configs)


# --- random models of every family, odd sizes ---------------------------------------------------------------

# Per family, a chain of layers (weight kind, bits, n_terms, input kind, input bits, outputs, output levels):
# each layer's input has as many codes as the layer before emits, the last emits accumulators.
CHAINS = {
    "binary": (
        Family.BINARY,
        [
            ("binary", 1, 0, "uint", 4, 19, 2),
            ("int", 3, 0, "binary", 1, 11, 2),
            ("binary", 1, 0, "binary", 1, 7, 2),
            ("int", 4, 0, "binary", 1, 5, 0),
        ],
    ),
    "popcount": (
        Family.POPCOUNT,
        [
            ("ternary", 2, 0, "uint", 3, 13, 3),
            ("fatnn", 2, 0, "fatnn", 2, 9, 3),
            ("ternary", 2, 0, "ternary", 2, 10, 2),
            ("int", 4, 0, "binary", 1, 6, 4),
            ("binary", 1, 0, "uint", 2, 5, 0),
        ],
    ),
    "nhot": (
        Family.NHOT,
        [
            ("nhot", 8, 2, "uint", 4, 11, 16),
            ("int", 5, 0, "uint", 4, 9, 8),
            ("nhot", 6, 1, "uint", 3, 7, 0),
        ],
    ),
}


def random_chain(family, rng, n_in=37):
    layers = []
    for wkind, wbits, n_terms, ikind, ibits, n_out, levels in CHAINS[family][1]:
        limit = (1 << (wbits - 1)) - 1
        if wkind == "binary":
            w = rng.choice([-1, 1], (n_out, n_in))
        elif wkind in ("ternary", "fatnn"):
            w = rng.integers(-1, 2, (n_out, n_in))
        else:
            w = rng.integers(-limit, limit + 1, (n_out, n_in))
            if wkind == "nhot":
                w = nhot_nearest(w, n_terms, wbits)
        output = "threshold" if levels else "accumulator"
        layer = LayerRecord(n_in, n_out, wkind, wbits, ikind, ibits, output, w.astype(np.int8), n_terms=n_terms)
        if levels:
            lo, hi = layer.accumulator_range()
            t = np.sort(rng.integers(lo[:, None] - 2, hi[:, None] + 3, (n_out, levels - 1)), axis=1)
            descending = rng.random(n_out) < 0.5
            t[descending] = t[descending][:, ::-1]
            layer = dataclasses.replace(layer, output_levels=levels, thresholds=t, descending=descending)
        layers.append(layer)
        n_in = n_out
    return LowbitModel(family, layers[-1].out_features, layers)


def random_codes(model, batch, rng):
    first = model.layers[0]
    codes = rng.integers(0, 1 << first.input_bits, (batch, first.in_features))
    codes[0], codes[1] = 0, (1 << first.input_bits) - 1
    return codes


@pytest.mark.parametrize("family", CHAINS)
@pytest.mark.parametrize("pe, simd", [(2, 4), (4, 8), (8, 16)])
def test_random_chains_resident(family, pe, simd):
    seed = 9100 + list(CHAINS).index(family) * 10 + pe
    rng = np.random.default_rng(seed)
    model = random_chain(family, rng)
    codes = random_codes(model, 50, rng)
    geometry = dataclasses.replace(default_geometry(model, pe, simd, resident=True), max_layers=255)
    assert geometry.family == CHAINS[family][0]
    expected = GoldenNetwork(model).run_codes(codes)
    tile = ModelTile(geometry)
    interface = TileInterface(tile, geometry)
    got = run(run_codes(interface, model, codes, max_batch=16, mode="resident"))
    assert (got == expected).all(), f"seed {seed}: {int((got != expected).sum())} outputs differ"
    assert interface.stats.sent["RUN"]["commands"] == 4 and "CONFIGURE" not in interface.stats.as_dict()["sent"]
    streaming = run(run_codes(TileInterface(ModelTile(geometry), geometry), model, codes, mode="streaming"))
    assert (streaming == got).all()


def test_model_packing():
    """The resident loads are the streaming loads concatenated, the threshold records padded with zeros."""
    rng = np.random.default_rng(9200)
    model = random_chain("popcount", rng)
    geometry = default_geometry(model, 4, 8, resident=True)
    configs = tile_layers(model, geometry)
    assert geometry.record_words == 2 + 3
    weights = pack_model_weights(model.layers, geometry)
    assert weights.dtype == np.uint32 and len(weights) == geometry.model_weight_words(configs)
    assert weights.tolist() == sum((pack_weights(layer, geometry).tolist() for layer in model.layers), [])
    thresholds = pack_model_thresholds(model.layers, geometry)
    assert thresholds.dtype == np.uint32 and len(thresholds) == geometry.model_threshold_words(configs)
    records = thresholds.reshape(-1, geometry.record_words)
    start = 0
    for layer, config in zip(model.layers, configs):
        own = pack_thresholds(layer, geometry).reshape(-1, 2 + config.thresholds)
        assert (records[start : start + len(own), : own.shape[1]] == own).all()
        assert (records[start : start + len(own), own.shape[1] :] == 0).all()
        padded = pack_thresholds(layer, geometry, record_words=geometry.record_words)
        assert (padded == records[start : start + len(own)].reshape(-1)).all()
        start += len(own)
    assert start == len(records)
    with pytest.raises(ProtocolError, match="a record of 3 words cannot hold bias, descending and 2 thresholds"):
        pack_thresholds(model.layers[0], geometry, record_words=3)
    assert pack_model_weights([], geometry).tolist() == pack_model_thresholds([], geometry).tolist() == []


# --- the example of docs/protocol.md ------------------------------------------------------------------------


def test_documented_resident_example():
    g = TileGeometry(Family.POPCOUNT, 2, 4, 16, 16, 16, acc_width=8, max_thresholds=2, max_layers=2)
    first = LayerRecord(
        6,
        3,
        "ternary",
        2,
        "fatnn",
        2,
        "threshold",
        np.array([[1, -1, 0, 0, 1, 0], [0, 1, 1, -1, 0, 0], [-1, -1, -1, 0, 0, 1]], np.int8),
        output_levels=3,
        thresholds=np.array([[0, 2], [-9, 1], [-1, 0]]),
        descending=np.array([0, 0, 1], bool),
    )
    second = LayerRecord(3, 2, "ternary", 2, "fatnn", 2, "accumulator", np.array([[1, 1, 0], [0, -1, 1]], np.int8))
    model = LowbitModel("example", 2, [first, second])
    configs = tile_layers(model, g)
    assert g.encode() == [0x02088300, 0x00040002, 0x00100010, 0x10, 2]
    assert [header(Opcode.LOAD_MODEL, 7)] + g.model_words(configs) == [
        0x06000007,
        2,
        0x00030006,
        0x00023021,
        0x00000003,
        0x00020003,
        0x00023021,
        0x00000000,
    ]
    assert pack_model_weights(model.layers, g).tolist() == [0x8E23, 0x1, 0x77, 0x2, 0x2603]
    m = 0xFFFFFFFF
    assert pack_model_thresholds(model.layers, g).tolist() == [
        *[1, 0, 0, 2, 1, 0, -2 & m, 1, -2 & m, 1, 0, -1 & m, 0, 0, 0, 0],
        *[2, 0, 0, 0, 0, 0, 0, 0],
    ]
    codes = np.array([[2, 0, 1, 2, 2, 1], [0, 0, 0, 0, 0, 0]])
    assert pack_inputs(codes, configs[0], g).tolist() == [0x12B, 0x33FF]
    tile = ModelTile(g)
    interface = TileInterface(tile, g)
    got = run(run_codes(interface, model, codes))
    assert got.tolist() == [[3, 1], [2, 0]] == GoldenNetwork(model).run_codes(codes).tolist()

    async def session():
        await tile.write([header(Opcode.RUN, 2), 0x12B, 0x33FF])
        data = await tile.read(5)
        await tile.write([header(Opcode.CLASSIFY, 2), 0x12B, 0x33FF])
        data += await tile.read(3)
        bad = LayerConfig(4, 2, WeightKind.TERNARY, 2, 0, InputKind.FATNN, 2, 0)  # 4 inputs after 3 outputs
        await tile.write([header(Opcode.LOAD_MODEL, 7), *g.model_words([configs[0], bad])])
        await tile.write([header(Opcode.RUN, 2), 0x12B, 0x33FF])
        await tile.write([header(Opcode.LOAD_MODEL, 7), *g.model_words(configs)])
        await tile.write([header(Opcode.RUN, 2), 0x12B, 0x33FF])
        return data, await tile.read(7)

    data, errors = run(session())
    assert data == [0x81000004, 3, 1, 2, 0] + [0x81000002, 0, 0]
    assert errors == [0xEE000001, 0x603, 0xEE000001, 0x405, 0x80000000, 0xEE000001, 0x406]

    async def streaming_only():  # the tile of the streaming example: no resident mode
        tile = ModelTile(dataclasses.replace(g, max_layers=0))
        await tile.write([header(Opcode.LOAD_MODEL, 7), *g.model_words(configs), header(Opcode.LOAD_MODEL, 1), 0])
        return await tile.read(4)

    assert run(streaming_only()) == [0xEE000001, 0x604, 0xEE000001, 0x603]


# --- LOAD_MODEL refusals --------------------------------------------------------------------------------------

#: A POPCOUNT tile of 3 resident layers: 64 inputs, 32 outputs (8 output folds of 4), 64 weight rows.
SMALL = TileGeometry(Family.POPCOUNT, 4, 8, 64, 32, 64, acc_width=24, max_thresholds=3, max_layers=3)
HIDDEN = LayerConfig(40, 12, WeightKind.TERNARY, 2, 0, InputKind.TERNARY, 2, 3)  # 3 folds, 15 rows
LAST = LayerConfig(12, 6, WeightKind.TERNARY, 2, 0, InputKind.TERNARY, 2, 0)  # 2 folds, 4 rows
GOOD = [HIDDEN, LAST]


def replace(config, **changes):
    return dataclasses.replace(config, **changes)


def undecodable(config):
    """The three CONFIGURE words of ``config`` with a weight kind code that names no kind."""
    words = config.encode()
    return [words[0], (words[1] & ~0xF) | 0xE, words[2]]


def model_payload(layers):
    """LOAD_MODEL's payload: ``layers`` are LayerConfigs or lists of three raw words."""
    words = [len(layers)]
    for layer in layers:
        words += layer if isinstance(layer, list) else layer.encode()
    return words


#: name: (payload, expected code). Payloads that decode are also checked against model_error.
REFUSALS = {
    "empty": ([], ErrorCode.BAD_LENGTH),
    "short": (model_payload(GOOD)[:-1], ErrorCode.BAD_LENGTH),
    "long": (model_payload(GOOD) + [0], ErrorCode.BAD_LENGTH),
    "count-beyond-8-bits": ([256 + 2] + model_payload(GOOD)[1:], ErrorCode.BAD_LENGTH),
    "count-all-ones": ([0xFFFFFFFF] + model_payload(GOOD)[1:], ErrorCode.BAD_LENGTH),
    "no-layers": ([0], ErrorCode.UNSUPPORTED),
    "too-many-layers": (model_payload([replace(HIDDEN, in_features=12)] * 3 + [LAST]), ErrorCode.TOO_LARGE),
    "too-many-before-undecodable": (model_payload([undecodable(HIDDEN)] * 4), ErrorCode.TOO_LARGE),
    "unsupported-kind": (model_payload([replace(HIDDEN, weight_kind=WeightKind.NHOT), LAST]), ErrorCode.UNSUPPORTED),
    "undecodable-kind": (model_payload([HIDDEN, undecodable(LAST)]), ErrorCode.UNSUPPORTED),
    "unsupported-levels": (model_payload([replace(HIDDEN, output_levels=1), LAST]), ErrorCode.UNSUPPORTED),
    "too-many-thresholds": (model_payload([replace(HIDDEN, output_levels=5), LAST]), ErrorCode.UNSUPPORTED),
    "layer-too-large": (model_payload([replace(HIDDEN, in_features=65), LAST]), ErrorCode.TOO_LARGE),
    "too-large-before-undecodable": (
        model_payload([replace(HIDDEN, in_features=65), undecodable(LAST)]),
        ErrorCode.TOO_LARGE,
    ),
    "undecodable-before-too-large": (
        model_payload([undecodable(HIDDEN), replace(LAST, in_features=65)]),
        ErrorCode.UNSUPPORTED,
    ),
    "features-mismatch": (model_payload([HIDDEN, replace(LAST, in_features=13)]), ErrorCode.UNSUPPORTED),
    "levels-mismatch": (model_payload([HIDDEN, replace(LAST, input_kind=InputKind.BINARY)]), ErrorCode.UNSUPPORTED),
    "levels-mismatch-uint": (
        model_payload([HIDDEN, replace(LAST, weight_kind=WeightKind.BINARY, input_kind=InputKind.UINT)]),
        ErrorCode.UNSUPPORTED,
    ),
    "hidden-accumulators": (model_payload([replace(HIDDEN, output_levels=0), LAST]), ErrorCode.UNSUPPORTED),
    "last-with-levels": (model_payload([HIDDEN, replace(LAST, output_levels=2)]), ErrorCode.UNSUPPORTED),
    "one-layer-with-levels": (model_payload([HIDDEN]), ErrorCode.UNSUPPORTED),
    "chain-before-too-large": (
        model_payload([replace(HIDDEN, output_levels=0), replace(LAST, in_features=65)]),
        ErrorCode.UNSUPPORTED,
    ),
    "rows-in-all": (
        # 24 + 48 + 4 = 76 weight rows > 64 (each layer fits alone), 3 + 3 + 2 = 8 output folds
        model_payload(
            [
                replace(HIDDEN, in_features=64, output_levels=2),
                LayerConfig(12, 12, WeightKind.INT, 8, 0, InputKind.BINARY, 1, 3),
                replace(LAST, in_features=12),
            ]
        ),
        ErrorCode.TOO_LARGE,
    ),
    "folds-in-all": (
        # 6 + 1 + 2 = 9 output folds > 8 (each layer fits alone)
        model_payload(
            [
                replace(HIDDEN, in_features=8, out_features=24),
                replace(HIDDEN, in_features=24, out_features=4),
                replace(LAST, in_features=4),
            ]
        ),
        ErrorCode.TOO_LARGE,
    ),
}


def decoded(payload):
    """The LayerConfigs of a LOAD_MODEL payload whose length and kinds decode, else None."""
    if not payload or len(payload) != 1 + 3 * payload[0]:
        return None
    try:
        return [LayerConfig.decode(payload[1 + 3 * i : 4 + 3 * i]) for i in range(payload[0])]
    except ValueError:
        return None


@pytest.mark.parametrize("case", REFUSALS)
@pytest.mark.parametrize("before", ["reset", "loaded-layer", "loaded-model"])
def test_load_model_refusals(case, before):
    payload, code = REFUSALS[case]
    layers = decoded(payload)
    if layers is not None:
        assert model_error(layers, SMALL) == code, case
        assert SMALL.model_check(layers) == code and model_refusal_reason(layers, SMALL)
    tile = ModelTile(SMALL)
    interface = TileInterface(tile, SMALL)

    async def session():
        if before == "loaded-layer":
            await interface.configure(HIDDEN)
            await interface.load_weights([0] * SMALL.weight_words(HIDDEN))
            await interface.load_thresholds([0] * SMALL.threshold_words(HIDDEN))
            await interface.run([0] * SMALL.input_words(HIDDEN), 1)
        elif before == "loaded-model":
            await load_good_model(interface)
        with pytest.raises(TileError, match=code.name) as error:
            await interface._command(Opcode.LOAD_MODEL, payload, Response.OK, 0)
        assert error.value.code == code and error.value.opcode == Opcode.LOAD_MODEL
        # the tile is left unconfigured, in step with the host
        for opcode in (Opcode.RUN, Opcode.LOAD_WEIGHTS, Opcode.LOAD_THRESHOLDS):
            with pytest.raises(TileError, match="NOT_CONFIGURED") as error:
                await interface._command(opcode, [0] * SMALL.input_words(HIDDEN), Response.DATA, None)
            assert error.value.opcode == opcode
        assert await interface.identify() == SMALL

    run(session())


def test_the_refusals_cover_every_check():
    codes = {code for _, code in REFUSALS.values()}
    assert codes == {ErrorCode.BAD_LENGTH, ErrorCode.UNSUPPORTED, ErrorCode.TOO_LARGE}
    assert model_error(GOOD, SMALL) == 0 and SMALL.model_check(GOOD) is None
    assert model_refusal_reason(GOOD, SMALL) is None
    assert model_refusal_reason([], SMALL) == "a model has at least one layer"
    assert model_refusal_reason(GOOD, dataclasses.replace(SMALL, max_layers=0)) == (
        "the tile runs one layer at a time (no resident mode)"
    )


async def load_good_model(interface, runs=True):
    """LOAD_MODEL of GOOD with zero weights and thresholds, and a RUN of one vector."""
    await interface.load_model(GOOD)
    await interface.load_weights([0] * SMALL.model_weight_words(GOOD))
    await interface.load_thresholds([0] * SMALL.model_threshold_words(GOOD))
    if runs:
        return await interface.run([0] * SMALL.input_words(HIDDEN), 1)


def test_load_model_words():
    assert SMALL.model_words(GOOD) == [2, *HIDDEN.encode(), *LAST.encode()]
    assert SMALL.model_weight_words(GOOD) == (15 + 4) * SMALL.weight_row_words
    assert SMALL.model_threshold_words(GOOD) == (3 + 2) * 4 * (2 + 3)
    tile = Counting(SMALL)
    interface = TileInterface(tile, SMALL)
    words = run(load_good_model(interface))
    assert len(words) == SMALL.output_words(LAST) == 8
    # RUN: 5 input folds of 16-bit rows (ternary planes, SIMD 8), two to a word: 3 words
    assert SMALL.input_words(HIDDEN) == 3
    assert tile.words == (1 + 7) + (1 + 19 * SMALL.weight_row_words) + (1 + 100) + (1 + 3)
    assert interface.model == GOOD and interface.layer is None
    assert interface.stats.sent["LOAD_MODEL"] == {"commands": 1, "header": 1, "payload": 7}


# --- model-mode loads and RUN: lengths and the order of the commands ------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        "weights-short",
        "weights-long",
        "weights-of-layer-0",
        "thresholds-short",
        "thresholds-unpadded",
        "run-empty",
        "run-not-a-multiple",
        "run-of-layer-1",
        "run-data-too-long",
    ],
)
def test_model_mode_bad_length(case):
    weights, thresholds = SMALL.model_weight_words(GOOD), SMALL.model_threshold_words(GOOD)
    opcode, words = {
        "weights-short": (Opcode.LOAD_WEIGHTS, weights - 1),
        "weights-long": (Opcode.LOAD_WEIGHTS, weights + 1),
        "weights-of-layer-0": (Opcode.LOAD_WEIGHTS, SMALL.weight_words(HIDDEN)),
        "thresholds-short": (Opcode.LOAD_THRESHOLDS, thresholds - 1),
        "thresholds-unpadded": (Opcode.LOAD_THRESHOLDS, SMALL.threshold_words(HIDDEN) + SMALL.threshold_words(LAST)),
        "run-empty": (Opcode.RUN, 0),
        "run-not-a-multiple": (Opcode.RUN, 3 * SMALL.input_words(HIDDEN) + 1),
        "run-of-layer-1": (Opcode.RUN, SMALL.input_words(LAST)),
        "run-data-too-long": (Opcode.RUN, (MAX_LENGTH // SMALL.output_words(LAST) + 1) * SMALL.input_words(HIDDEN)),
    }[case]
    assert words != {Opcode.LOAD_WEIGHTS: weights, Opcode.LOAD_THRESHOLDS: thresholds}.get(opcode)
    if case == "run-of-layer-1":
        assert words % SMALL.input_words(HIDDEN)  # a multiple of layer 1's vector, not of layer 0's
    if case == "run-data-too-long":
        assert words <= MAX_LENGTH  # the RUN fits its header, its DATA would not
    tile = ModelTile(SMALL)
    interface = TileInterface(tile, SMALL)

    async def session():
        first = await load_good_model(interface)
        with pytest.raises(TileError, match="BAD_LENGTH") as error:
            await interface._command(opcode, [0] * words, Response.OK, 0)
        assert error.value.opcode == opcode
        assert await interface.run([0] * SMALL.input_words(HIDDEN), 1) == first  # the loads are kept

    run(session())


@pytest.mark.parametrize("loaded", ["none", "weights", "thresholds"])
def test_model_mode_not_loaded(loaded):
    async def session(interface):
        await interface.load_model(GOOD)
        if loaded == "weights":
            await interface.load_weights([0] * SMALL.model_weight_words(GOOD))
        if loaded == "thresholds":
            await interface.load_thresholds([0] * SMALL.model_threshold_words(GOOD))
        await interface.run([0] * SMALL.input_words(HIDDEN), 1)

    with pytest.raises(TileError, match="NOT_LOADED") as error:
        run(session(TileInterface(ModelTile(SMALL), SMALL)))
    assert error.value.opcode == Opcode.RUN


@pytest.mark.parametrize("then", ["configure", "load-model"])
def test_a_new_configuration_forgets_the_model(then):
    """CONFIGURE leaves model mode, LOAD_MODEL replaces the model: their loads are forgotten."""

    async def session(interface):
        await load_good_model(interface)
        if then == "configure":
            await interface.configure(HIDDEN)
            assert interface.model is None and interface.layer == HIDDEN
            with pytest.raises(TileError, match="BAD_LENGTH"):  # the model's words no longer fit
                await interface.load_weights([0] * SMALL.model_weight_words(GOOD))
        else:
            await interface.load_model(GOOD)
        await interface.run([0] * SMALL.input_words(HIDDEN), 1)

    with pytest.raises(TileError, match="NOT_LOADED"):
        run(session(TileInterface(ModelTile(SMALL), SMALL)))


def test_model_mode_after_streaming_layer():
    """A layer's loads followed by LOAD_MODEL: RUN takes the model's vectors and answers the last layer's."""

    async def session(interface):
        await interface.configure(LAST)
        await interface.load_weights([0] * SMALL.weight_words(LAST))
        await interface.load_thresholds([0] * SMALL.threshold_words(LAST))
        streaming = await interface.run([0] * 2 * SMALL.input_words(LAST), 2)
        resident = await load_good_model(interface)
        return streaming, resident

    streaming, resident = run(session(TileInterface(ModelTile(SMALL), SMALL)))
    assert len(streaming) == 2 * SMALL.output_words(LAST) and len(resident) == SMALL.output_words(LAST)


# --- the driver's choice of mode ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_model():
    return random_chain("popcount", np.random.default_rng(9300))


def test_resident_needs_a_resident_tile(small_model, split):
    geometry = default_geometry(small_model, 4, 8)
    assert geometry.max_layers == 0
    codes = random_codes(small_model, 8, np.random.default_rng(9301))
    tile = Counting(geometry)
    with pytest.raises(
        ProtocolError,
        match=r"^the tile cannot hold the model resident \(TOO_LARGE\): the tile runs one layer at a time "
        r"\(no resident mode\)$",
    ):
        run(run_codes(TileInterface(tile, geometry), small_model, codes, mode="resident"))
    assert tile.words == 0  # refused before a word was sent
    # auto falls back to streaming on the same tile
    interface = TileInterface(ModelTile(geometry), geometry)
    got = run(run_codes(interface, small_model, codes))
    assert (got == GoldenNetwork(small_model).run_codes(codes)).all()
    assert "LOAD_MODEL" not in interface.stats.as_dict()["sent"]
    assert [e["tag"] for e in interface.log if e["opcode"] == "CONFIGURE"] == list(range(len(small_model.layers)))


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(max_layers=4), "5 layers exceed the tile's 4 resident layers"),
        (dict(max_weight_rows=49), "the model's 50 weight rows exceed the tile's 49"),
        (dict(max_out_features=52), "the model's 14 output folds exceed the tile's 13 threshold records"),
    ],
    ids=["layers", "rows", "folds"],
)
def test_auto_streams_what_the_tile_cannot_hold(small_model, change, message):
    whole = default_geometry(small_model, 4, 8, resident=True)
    configs = tile_layers(small_model, whole)
    assert [whole.weight_rows(c) for c in configs] == [20, 6, 6, 16, 2]
    assert [whole.out_folds(c) for c in configs] == [4, 3, 3, 2, 2]
    assert (whole.max_layers, whole.max_weight_rows, whole.max_out_folds) == (5, 50, 14)
    geometry = dataclasses.replace(whole, **change)
    assert resident_mode(configs, whole) and not resident_mode(configs, geometry)
    with pytest.raises(ProtocolError, match=f"\\(TOO_LARGE\\): {message}$"):
        resident_mode(configs, geometry, "resident")
    codes = random_codes(small_model, 8, np.random.default_rng(9302))
    interface = TileInterface(ModelTile(geometry), geometry)
    assert (run(run_codes(interface, small_model, codes)) == GoldenNetwork(small_model).run_codes(codes)).all()
    assert "LOAD_MODEL" not in interface.stats.as_dict()["sent"]


def test_mode_values(small_model):
    assert MODES == ("auto", "resident", "streaming")
    geometry = default_geometry(small_model, 4, 8, resident=True)
    configs = tile_layers(small_model, geometry)
    assert [resident_mode(configs, geometry, mode) for mode in MODES] == [True, True, False]
    codes = random_codes(small_model, 2, np.random.default_rng(9303))
    tile = Counting(geometry)
    with pytest.raises(ValueError, match="^mode must be one of 'auto', 'resident', 'streaming', not 'whole'$"):
        run(run_codes(TileInterface(tile, geometry), small_model, codes, mode="whole"))
    assert tile.words == 0


def test_a_layer_in_parts_runs_streaming(small_model):
    """A layer larger than the tile runs in output parts: never resident."""
    geometry = dataclasses.replace(default_geometry(small_model, 4, 8, resident=True), max_out_features=8)
    configs = tile_layers(small_model, geometry)
    assert geometry.check(configs[0]) == ErrorCode.TOO_LARGE  # 13 outputs, in parts of 8
    assert not resident_mode(configs, geometry)
    with pytest.raises(ProtocolError, match="layer 0: the layer .* exceeds the tile's"):
        resident_mode(configs, geometry, "resident")
    codes = random_codes(small_model, 8, np.random.default_rng(9304))
    got = run(run_codes(TileInterface(ModelTile(geometry), geometry), small_model, codes))
    assert (got == GoldenNetwork(small_model).run_codes(codes)).all()


# --- the geometry ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_layers", [0, 1, 7, 128, 255])
def test_geometry_round_trip_with_max_layers(max_layers):
    g = dataclasses.replace(SMALL, max_layers=max_layers, acc_width=32)
    words = g.encode()
    assert words[0] >> 24 == max_layers and (words[0] >> 16) & 0xFF == 32
    assert TileGeometry.decode(words) == g
    assert run(TileInterface(ModelTile(g)).identify()) == g
    assert ("resident models of up to" in g.describe()) == bool(max_layers)


@pytest.mark.parametrize("value", [-1, 256, True, 2.0])
def test_geometry_refuses_bad_max_layers(value):
    with pytest.raises(ProtocolError, match="max_layers must be an integer from 0 to 255"):
        dataclasses.replace(SMALL, max_layers=value)


def test_default_geometry_resident(small_model):
    streaming = default_geometry(small_model, 4, 8)
    resident = default_geometry(small_model, 4, 8, resident=True)
    configs = tile_layers(small_model, resident)
    assert resident.max_layers == len(configs) == 5 and streaming.max_layers == 0
    assert resident.max_weight_rows == sum(resident.weight_rows(c) for c in configs)
    assert resident.max_out_folds == sum(resident.out_folds(c) for c in configs)
    assert resident == dataclasses.replace(
        streaming, max_layers=5, max_weight_rows=50, max_out_features=max(streaming.max_out_features, 14 * 4)
    )
    many = LowbitModel("many", 3, [replace_layer(small_model.layers[-1], 3, 3)] * 256)
    with pytest.raises(ProtocolError, match="a resident model has at most 255 layers, not 256"):
        default_geometry(many, resident=True)


def replace_layer(layer, n_in, n_out):
    return dataclasses.replace(layer, in_features=n_in, out_features=n_out, weights=layer.weights[:n_out, :n_in])


# --- CLASSIFY: the class index of a resident model's outputs ------------------------------------------------


@pytest.mark.parametrize("name", ON_A_TILE)
def test_classify_equals_golden(tiny_models, split, name):
    """Resident, CLASSIFY answers one word per image, the golden model's class index; a layer at a time the
    driver takes the same indices from the accumulators."""
    model = tiny_models[name]
    geometry = default_geometry(model, 2, 4, resident=True)
    configs = tile_layers(model, geometry)
    pixels = split.x_test
    expected = class_index(GoldenNetwork(model).run(pixels))
    interface = TileInterface(ModelTile(geometry))
    got = run(run_model(interface, model, pixels, max_batch=150, classes=True))
    assert got.dtype == np.int64 and got.shape == (360,)
    assert (got == expected).all(), f"{name}: {int((got != expected).sum())} classes differ from the golden model"
    commands = [(e["opcode"], e["payload"], e["batch"]) for e in interface.log if e["opcode"] in ("RUN", "CLASSIFY")]
    assert commands == [("CLASSIFY", n * geometry.input_words(configs[0]), n) for n in (150, 150, 60)]
    assert interface.stats.received["payload"] == 5 + 360  # IDENTIFY's five words, then one word per image
    streaming = TileInterface(ModelTile(geometry), geometry)
    assert (run(run_model(streaming, model, pixels, mode="streaming", classes=True)) == expected).all()
    assert "CLASSIFY" not in streaming.stats.as_dict()["sent"]


def test_classify_ties_and_padding():
    """The first of equal accumulators wins, and the padded channels of the last fold (here larger than every
    class's accumulator) are not classes."""
    tile = ModelTile(SMALL)
    interface = TileInterface(tile, SMALL)

    async def session():
        await load_good_model(interface, runs=False)  # zero weights: every accumulator is its bias
        thresholds = [0] * SMALL.model_threshold_words(GOOD)
        base = SMALL.out_folds(HIDDEN) * SMALL.pe * SMALL.record_words  # the last layer's records
        biases = {0: -9, 1: -3, 2: -3, 3: -5, 4: -7, 5: -8}  # classes 1 and 2 tie; the padded channels' bias is 0
        for channel, bias in biases.items():
            thresholds[base + channel * SMALL.record_words] = bias & 0xFFFFFFFF
        await interface.load_thresholds(thresholds)
        accumulators = await interface.run([0] * SMALL.input_words(HIDDEN), 1)
        assert signed32(accumulators)[: LAST.out_features].tolist() == list(biases.values())
        assert max(signed32(accumulators)[LAST.out_features :]) == 0  # the padded channels
        return await interface.classify([0] * SMALL.input_words(HIDDEN) * 2, 2)

    assert LAST.out_features == 6 and SMALL.output_words(LAST) == 8
    assert run(session()) == [1, 1]


@pytest.mark.parametrize(
    "before, code",
    [
        ("reset", ErrorCode.NOT_CONFIGURED),
        ("model-not-loaded", ErrorCode.NOT_LOADED),
        ("loaded-layer", ErrorCode.UNSUPPORTED),  # CLASSIFY is for resident models
        ("loaded-last-layer", ErrorCode.UNSUPPORTED),
        ("bad-length", ErrorCode.BAD_LENGTH),
        ("no-resident-mode", ErrorCode.UNSUPPORTED),
    ],
)
def test_classify_refusals(before, code):
    geometry = dataclasses.replace(SMALL, max_layers=0) if before == "no-resident-mode" else SMALL
    interface = TileInterface(ModelTile(geometry), geometry)
    words = SMALL.input_words(HIDDEN)

    async def session():
        if before in ("loaded-layer", "loaded-last-layer", "no-resident-mode"):
            layer = LAST if before == "loaded-last-layer" else HIDDEN
            await interface.configure(layer)
            await interface.load_weights([0] * geometry.weight_words(layer))
            await interface.load_thresholds([0] * geometry.threshold_words(layer))
            words_ = geometry.input_words(layer)
        elif before == "model-not-loaded":
            await interface.load_model(GOOD)
            words_ = words
        elif before == "bad-length":
            first = await load_good_model(interface)
            words_ = words + 1
        else:
            words_ = words
        with pytest.raises(TileError, match=code.name) as error:
            await interface._command(Opcode.CLASSIFY, [0] * words_, Response.DATA, None)
        assert error.value.opcode == Opcode.CLASSIFY
        if before == "bad-length":  # the model stays loaded
            assert await interface.run([0] * words, 1) == first
            assert await interface.classify([0] * words, 1) == [0]

    run(session())
