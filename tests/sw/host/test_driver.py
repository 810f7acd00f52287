"""The host driver against ModelTile, the reference tile: word formats (against an independent bit-by-bit
packer and the example of docs/protocol.md), every error response, threshold clamping, and whole
trained models equal to the golden model (==)."""

import asyncio
import dataclasses

import numpy as np
import pytest

from lowbit.sim.reference import ModelTile
from lowbit.sim.tile_transport import geometry_from_json, geometry_to_json
from lowbit.sw.golden import GoldenNetwork
from lowbit.sw.golden.units import multithreshold
from lowbit.sw.host import (
    TileError,
    TileInterface,
    Transport,
    TransportError,
    clamp_thresholds,
    default_geometry,
    layer_config,
    order_thresholds,
    output_parts,
    pack_inputs,
    pack_thresholds,
    pack_weights,
    run_model,
    tile_layers,
    unpack_outputs,
)
from lowbit.sw.kinds.encodings import nhot_nearest, nhot_terms
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
    output_code_bits,
)


def run(coroutine):
    return asyncio.run(coroutine)


def popcount(pe, simd, **kw):
    return TileGeometry(
        Family.POPCOUNT,
        pe,
        simd,
        kw.pop("max_in", 256),
        kw.pop("max_out", 256),
        kw.pop("rows", 4096),
        **{"acc_width": 24, "max_thresholds": 255, **kw},
    )


def nhot(pe, simd, n_terms=3, **kw):
    return TileGeometry(
        Family.NHOT,
        pe,
        simd,
        kw.pop("max_in", 256),
        kw.pop("max_out", 256),
        kw.pop("rows", 4096),
        **{"acc_width": 24, "max_thresholds": 255, "n_terms": n_terms, **kw},
    )


# --- an independent, bit-by-bit reading of docs/protocol.md ---------------------------------------------


def words_of(value, count):
    return [(value >> (32 * k)) & 0xFFFFFFFF for k in range(count)]


def reference_weights(layer, g):
    c = layer_config(layer)
    w = np.asarray(layer.weights, dtype=np.int64)
    planes = g.weight_planes(c)
    n = c.n_terms if c.weight_kind == WeightKind.NHOT else (c.weight_bits + 1) // 2
    words = []
    for o_fold in range(g.out_folds(c)):
        for p in range(planes):
            for i_fold in range(g.in_folds(c)):
                row = 0
                for slot in range(g.pe):
                    for tap in range(g.simd):
                        ch, i = o_fold * g.pe + slot, i_fold * g.simd + tap
                        value = int(w[ch, i]) if ch < c.out_features and i < c.in_features else 0
                        if g.family == Family.POPCOUNT:
                            if c.weight_kind == WeightKind.INT:
                                nz, sign = (value >> (c.weight_bits - 1 - p)) & 1, 0
                            else:
                                nz, sign = int(value != 0), int(value < 0)
                            row |= nz << (slot * 2 * g.simd + tap) | sign << (slot * 2 * g.simd + g.simd + tap)
                        else:
                            present, sign, exponent = nhot_terms(np.array([value]), n, c.weight_bits)
                            for j in range(n):
                                base = ((slot * g.simd + tap) * g.n_terms + j) * (2 + g.exponent_bits)
                                row |= (
                                    int(present[0, j]) << base
                                    | int(sign[0, j]) << (base + 1)
                                    | int(exponent[0, j]) << (base + 2)
                                )
                words += words_of(row, g.weight_row_words)
    return words


def reference_inputs(codes, c, g):
    """The rows of each vector, written out tap by tap; rows of at most 16 bits share words, as many as
    the largest power of two that fits (32 // bits for 1, 2, 4, 8 and 16 bits), a vector a new word."""
    words, bits = [], g.input_row_bits(c)
    per = 1
    while (2 * per) * bits <= 32:
        per *= 2
    for vector in codes:
        rows = []
        for i_fold in range(g.in_folds(c)):
            row = 0
            for tap in range(g.simd):
                i = i_fold * g.simd + tap
                if i >= c.in_features:
                    continue  # padding: all-zero bits
                code = int(vector[i])
                if g.family == Family.NHOT:
                    row |= code << (tap * g.max_input_bits)
                elif c.input_kind == InputKind.BINARY:
                    row |= code << tap
                elif c.input_kind in (InputKind.TERNARY, InputKind.FATNN):
                    row |= int(code != 1) << tap | int(code == 0) << (g.simd + tap)
                else:
                    for plane in range(c.input_bits):
                        row |= ((code >> (c.input_bits - 1 - plane)) & 1) << (plane * g.simd + tap)
            rows.append(row)
        for first in range(0, len(rows), per):
            word = sum(row << (j * bits) for j, row in enumerate(rows[first : first + per]))
            words += words_of(word, g.input_row_words(c))
    return words


# --- random layers of every kind pair each family runs --------------------------------------------------

# name: (weight kind, weight bits, n_terms, input kind, input bits, family)
KINDS = {
    "binary-binary": ("binary", 1, 0, "binary", 1, Family.POPCOUNT),
    "binary-uint8": ("binary", 1, 0, "uint", 8, Family.POPCOUNT),
    "ternary-ternary": ("ternary", 2, 0, "ternary", 2, Family.POPCOUNT),
    "ternary-fatnn": ("ternary", 2, 0, "fatnn", 2, Family.POPCOUNT),
    "fatnn-uint3": ("fatnn", 2, 0, "uint", 3, Family.POPCOUNT),
    "ternary-binary": ("ternary", 2, 0, "binary", 1, Family.POPCOUNT),
    "int8-binary": ("int", 8, 0, "binary", 1, Family.POPCOUNT),
    "int4-binary": ("int", 4, 0, "binary", 1, Family.POPCOUNT),
    "nhot2-uint8": ("nhot", 8, 2, "uint", 8, Family.NHOT),
    "nhot1-uint4": ("nhot", 6, 1, "uint", 4, Family.NHOT),
    "int5-uint6": ("int", 5, 0, "uint", 6, Family.NHOT),
}


def random_layer(name, n_in, n_out, rng, levels=0):
    """A layer of kind ``name`` with random weights, its corners first; thresholds when ``levels``."""
    wkind, wbits, n_terms, ikind, ibits, _ = KINDS[name]
    limit = (1 << (wbits - 1)) - 1
    if wkind == "binary":
        w = rng.choice([-1, 1], (n_out, n_in))
    elif wkind in ("ternary", "fatnn"):
        w = rng.integers(-1, 2, (n_out, n_in))
    else:
        w = rng.integers(-limit, limit + 1, (n_out, n_in))
        w[0] = limit
        w[-1] = -limit
        if wkind == "nhot":
            w = nhot_nearest(w, n_terms, wbits)
    layer = LayerRecord(n_in, n_out, wkind, wbits, ikind, ibits, "accumulator", w.astype(np.int8), n_terms=n_terms)
    if levels:
        lo, hi = layer.accumulator_range()
        t = np.sort(rng.integers(lo[:, None] - 3, hi[:, None] + 4, (n_out, levels - 1)), axis=1)
        descending = rng.random(n_out) < 0.5
        t[descending] = t[descending][:, ::-1]
        layer = dataclasses.replace(
            layer, output_kind="threshold", output_levels=levels, thresholds=t, descending=descending
        )
    return layer


def random_codes(layer, batch, rng):
    levels = {"binary": 2, "ternary": 3, "fatnn": 3}.get(layer.input_kind, 1 << layer.input_bits)
    codes = rng.integers(0, levels, (batch, layer.in_features))
    codes[0], codes[1] = 0, levels - 1  # the extremes of every input
    return codes


def geometry_for(name, pe, simd):
    return popcount(pe, simd) if KINDS[name][5] == Family.POPCOUNT else nhot(pe, simd, n_terms=3, exponent_bits=3)


async def run_layer(interface, layer, codes):
    config = layer_config(layer)
    g = interface.geometry
    await interface.configure(config)
    await interface.load_weights(pack_weights(layer, g).tolist())
    await interface.load_thresholds(pack_thresholds(layer, g).tolist())
    words = await interface.run(pack_inputs(codes, config, g).tolist(), len(codes))
    return unpack_outputs(words, config, g, len(codes))


def golden_layer(layer, codes):
    last = dataclasses.replace(layer, output_kind="accumulator", output_levels=0, thresholds=None, descending=None)
    acc = GoldenNetwork(LowbitModel("test", layer.out_features, [last])).run_codes(codes)
    if layer.output_kind == "threshold":
        return multithreshold(acc, layer.thresholds, layer.descending).astype(np.int64)
    return acc


@pytest.mark.parametrize("name", KINDS)
@pytest.mark.parametrize("pe, simd", [(4, 8), (2, 16)])
def test_word_formats_and_counts(name, pe, simd):
    seed = 7000 + list(KINDS).index(name) * 10 + pe
    rng = np.random.default_rng(seed)
    g = geometry_for(name, pe, simd)
    layer = random_layer(name, 37, 11, rng, levels=3)
    config = layer_config(layer)
    weights, thresholds = pack_weights(layer, g), pack_thresholds(layer, g)
    assert len(weights) == g.weight_words(config) and len(thresholds) == g.threshold_words(config)
    assert weights.tolist() == reference_weights(layer, g), f"seed {seed}"
    codes = random_codes(layer, 5, rng)
    inputs = pack_inputs(codes, config, g)
    assert len(inputs) == 5 * g.input_words(config)
    assert inputs.tolist() == reference_inputs(codes, config, g), f"seed {seed}"
    assert all(0 <= w < 1 << 32 for w in weights.tolist() + thresholds.tolist() + inputs.tolist())


@pytest.mark.parametrize("name", KINDS)
@pytest.mark.parametrize("levels", [0, 2, 4])
def test_model_tile_layer_equals_golden(name, levels):
    seed = 8000 + list(KINDS).index(name) * 10 + levels
    rng = np.random.default_rng(seed)
    for pe, simd in ((4, 8), (8, 32)):
        g = geometry_for(name, pe, simd)
        layer = random_layer(name, 45, 13, rng, levels=levels)
        codes = random_codes(layer, 40, rng)
        got = run(run_layer(TileInterface(ModelTile(g), g), layer, codes))
        expected = golden_layer(layer, codes)
        assert got.shape == expected.shape
        assert (got == expected).all(), (
            f"seed {seed}, PE {pe}, SIMD {simd}: first mismatch at {np.argwhere(got != expected)[0]}"
        )


@pytest.mark.parametrize("levels, k", [(2, 1), (3, 2), (16, 4), (256, 8)])
def test_unpack_outputs_round_trip(levels, k):
    assert output_code_bits(levels) == k
    g = popcount(8, 8)
    config = LayerConfig(8, 19, WeightKind.BINARY, 1, 0, InputKind.BINARY, 1, levels)
    codes = np.random.default_rng(levels).integers(0, levels, (3, 24))
    words = []
    for vector in codes:  # per vector: the 24 codes of k bits, channel j at bit j * k
        value = sum(int(code) << (j * k) for j, code in enumerate(vector))
        words += words_of(value, -(-24 * k // 32))
    assert len(words) == 3 * g.output_words(config)
    assert (unpack_outputs(words, config, g, 3) == codes[:, :19]).all()
    last = dataclasses.replace(config, output_levels=0)
    acc = np.array([[-(1 << 23), -1, 0, 1, (1 << 23) - 1] + [5] * 19] * 2)
    assert (unpack_outputs((acc & 0xFFFFFFFF).reshape(-1), last, g, 2) == acc[:, :19]).all()


def test_documented_example():
    g = TileGeometry(Family.POPCOUNT, 2, 4, 16, 16, 16, acc_width=8, max_thresholds=2)
    w = np.array([[1, -1, 0, 0, 1, 0], [0, 1, 1, -1, 0, 0], [-1, -1, -1, 0, 0, 1]], np.int8)
    layer = LayerRecord(
        6,
        3,
        "ternary",
        2,
        "fatnn",
        2,
        "threshold",
        w,
        output_levels=3,
        thresholds=np.array([[0, 2], [-9, 1], [-1, 0]]),
        descending=np.array([0, 0, 1], bool),
    )
    config = layer_config(layer)
    assert g.encode() == [0x00088300, 0x00040002, 0x00100010, 0x10, 2]
    assert [header(Opcode.CONFIGURE, 3)] + config.encode() == [0x01000003, 0x00030006, 0x00023021, 3]
    assert pack_weights(layer, g).tolist() == [0x8E23, 0x1, 0x77, 0x2]
    m = 0xFFFFFFFF
    assert pack_thresholds(layer, g).tolist() == [1, 0, 0, 2, 1, 0, -2 & m, 1, -2 & m, 1, 0, -1 & m, 0, 0, 0, 0]
    codes = np.array([[2, 0, 1, 2, 2, 1], [0, 0, 0, 0, 0, 0]])
    assert pack_inputs(codes, config, g).tolist() == [0x12B, 0x33FF]
    tile = ModelTile(g)

    async def session():
        interface = TileInterface(tile, g)
        out = await run_layer(interface, layer, codes)
        await tile.write([header(Opcode.RUN, 2), 0x12B, 0x33FF])
        data = await tile.read(3)
        await tile.write(
            [header(Opcode.CONFIGURE, 3), *config.encode(), header(Opcode.RUN, 2), 0x12B, 0x33FF, 0x7F000000]
        )
        return out, data, await tile.read(5)

    out, data, errors = run(session())
    assert out.tolist() == [[2, 1, 2], [1, 1, 1]]
    assert data == [0x81000002, 0xA6, 0x95]
    assert errors == [0x80000000, 0xEE000001, 0x406, 0xEE000001, 0x7F01]


# --- errors ---------------------------------------------------------------------------------------------

SMALL = popcount(4, 8, max_in=64, max_out=32, rows=64, max_thresholds=3)
TERNARY = LayerConfig(40, 20, WeightKind.TERNARY, 2, 0, InputKind.TERNARY, 2, 3)


def refused(coroutine_factory, code, opcode):
    """Run ``coroutine_factory(interface)`` on a fresh ModelTile; it must raise TileError(code, opcode)."""
    tile = ModelTile(SMALL)
    interface = TileInterface(tile, SMALL)
    with pytest.raises(TileError, match=code.name) as error:
        run(coroutine_factory(interface))
    assert error.value.code == code and error.value.opcode == opcode
    return tile, interface


def test_identify():
    tile = ModelTile(SMALL)
    assert run(TileInterface(tile).identify()) == SMALL
    assert geometry_from_json(geometry_to_json(SMALL)) == SMALL


def test_unknown_opcode_is_drained():
    async def bad(interface):
        await interface._command(0x7F, [Opcode.IDENTIFY << 24, 5], Response.OK, 0)

    tile, interface = refused(bad, ErrorCode.UNKNOWN_OPCODE, 0x7F)
    assert run(interface.identify()) == SMALL  # the payload was consumed, the tile is in step


@pytest.mark.parametrize("case", ["configure", "identify", "weights", "thresholds", "run", "run-empty"])
def test_bad_length(case):
    async def bad(interface):
        if case == "configure":
            await interface._command(Opcode.CONFIGURE, TERNARY.encode()[:2], Response.OK, 0)
        elif case == "identify":
            await interface._command(Opcode.IDENTIFY, [0], Response.DATA, None)
        await interface.configure(TERNARY)
        words = SMALL.weight_words(TERNARY)
        await interface.load_weights([0] * (words - 1 if case == "weights" else words))
        words = SMALL.threshold_words(TERNARY)
        await interface.load_thresholds([0] * (words + 1 if case == "thresholds" else words))
        await interface.run([0] * (0 if case == "run-empty" else SMALL.input_words(TERNARY) + 1), 1)

    opcode = {
        "configure": Opcode.CONFIGURE,
        "identify": Opcode.IDENTIFY,
        "weights": Opcode.LOAD_WEIGHTS,
        "thresholds": Opcode.LOAD_THRESHOLDS,
    }.get(case, Opcode.RUN)
    refused(bad, ErrorCode.BAD_LENGTH, opcode)


@pytest.mark.parametrize(
    "config",
    [
        dataclasses.replace(TERNARY, in_features=65),
        dataclasses.replace(TERNARY, out_features=33),
        dataclasses.replace(
            TERNARY,
            in_features=64,
            out_features=32,
            weight_kind=WeightKind.INT,
            weight_bits=8,
            input_kind=InputKind.BINARY,
        ),  # 8 * 8 * 8 = 512 rows > 64
    ],
    ids=["inputs", "outputs", "rows"],
)
def test_layer_too_large(config):
    async def bad(interface):
        await interface.configure(config)

    refused(bad, ErrorCode.TOO_LARGE, Opcode.CONFIGURE)


@pytest.mark.parametrize(
    "config",
    [
        dataclasses.replace(TERNARY, weight_kind=WeightKind.FGQ),
        dataclasses.replace(
            TERNARY, weight_kind=WeightKind.NHOT, weight_bits=8, n_terms=2, input_kind=InputKind.UINT, input_bits=8
        ),
        dataclasses.replace(
            TERNARY, weight_kind=WeightKind.INT, weight_bits=8, input_kind=InputKind.UINT, input_bits=4
        ),
        dataclasses.replace(TERNARY, output_levels=16),  # 15 thresholds > 3
        dataclasses.replace(TERNARY, output_levels=1),
    ],
    ids=["fgq", "nhot-on-popcount", "int-against-uint", "thresholds", "one-level"],
)
def test_unsupported(config):
    async def bad(interface):
        await interface.configure(config)

    refused(bad, ErrorCode.UNSUPPORTED, Opcode.CONFIGURE)


def test_unsupported_kind_code():
    async def bad(interface):
        words = TERNARY.encode()
        await interface._command(Opcode.CONFIGURE, [words[0], words[1] | 0xF, words[2]], Response.OK, 0)

    refused(bad, ErrorCode.UNSUPPORTED, Opcode.CONFIGURE)


@pytest.mark.parametrize("loaded", ["nothing", "weights", "thresholds"])
def test_run_before_loads(loaded):
    async def bad(interface):
        await interface.configure(TERNARY)
        if loaded == "weights":
            await interface.load_weights([0] * SMALL.weight_words(TERNARY))
        if loaded == "thresholds":
            await interface.load_thresholds([0] * SMALL.threshold_words(TERNARY))
        await interface.run([0] * SMALL.input_words(TERNARY), 1)

    refused(bad, ErrorCode.NOT_LOADED, Opcode.RUN)


@pytest.mark.parametrize("opcode", [Opcode.LOAD_WEIGHTS, Opcode.LOAD_THRESHOLDS, Opcode.RUN])
@pytest.mark.parametrize("after", ["reset", "refused-configure"])
def test_not_configured(opcode, after):
    async def bad(interface):
        if after == "refused-configure":
            await interface.configure(TERNARY)
            with pytest.raises(TileError, match="TOO_LARGE"):
                await interface.configure(dataclasses.replace(TERNARY, in_features=1000))
        await interface._command(opcode, [0] * 4, Response.OK, 0)

    refused(bad, ErrorCode.NOT_CONFIGURED, opcode)


def test_reconfigure_forgets_the_loads():
    async def bad(interface):
        await interface.configure(TERNARY)
        await interface.load_weights([0] * SMALL.weight_words(TERNARY))
        await interface.load_thresholds([0] * SMALL.threshold_words(TERNARY))
        await interface.run([0] * SMALL.input_words(TERNARY), 1)
        await interface.configure(TERNARY)
        await interface.run([0] * SMALL.input_words(TERNARY), 1)

    refused(bad, ErrorCode.NOT_LOADED, Opcode.RUN)


class Scripted(Transport):
    """A transport that answers every command with the same words."""

    def __init__(self, answer):
        self.answer, self.queue = answer, []

    async def write(self, words):
        self.queue += self.answer

    async def read(self, count):
        words, self.queue = self.queue[:count], self.queue[count:]
        return words


@pytest.mark.parametrize(
    "answer, text",
    [
        ([header(Response.DATA, 0)], "header DATA with length 0, expected OK"),
        ([header(Response.OK, 2), 0, 0], "header OK with length 2"),
        ([0x42000000], "header 0x42"),
        ([header(Response.ERROR, 1), (Opcode.RUN << 8) | 3], "UNSUPPORTED.*names opcode 0x04"),
        ([header(Response.ERROR, 1), (Opcode.CONFIGURE << 8) | 0x99], "unknown error code 0x99"),
    ],
)
def test_malformed_responses(answer, text):
    with pytest.raises(TileError, match=text):
        run(TileInterface(Scripted(answer)).configure(TERNARY))


def test_read_beyond_the_answers():
    with pytest.raises(TransportError, match="read of 2 words, but the tile has answered only 0"):
        run(ModelTile(SMALL).read(2))


# --- thresholds -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_clamping_keeps_multithreshold(seed):
    rng = np.random.default_rng(seed)
    lo = rng.integers(-300, 0, 6)
    hi = lo + rng.integers(0, 400, 6)
    lo[0] = hi[0] = 7  # a constant channel
    extremes = np.array([-(1 << 40), lo[1] - 1, lo[1], lo[1] + 1, hi[1] - 1, hi[1], hi[1] + 1, 1 << 40])
    t = np.sort(
        np.concatenate([rng.integers(-(1 << 40), 1 << 40, (6, 5)), np.broadcast_to(extremes, (6, 8))], axis=1), axis=1
    )
    descending = np.array([0, 1, 0, 1, 0, 1], bool)
    t[descending] = t[descending][:, ::-1]
    clamped = clamp_thresholds(t, descending, lo, hi, 11)
    assert clamped.min() >= -(1 << 10) and clamped.max() < 1 << 10, f"seed {seed}"
    for c in range(6):
        acc = np.arange(lo[c], hi[c] + 1)[:, None]  # every reachable accumulator
        assert (
            multithreshold(acc, t[c : c + 1], descending[c]) == multithreshold(acc, clamped[c : c + 1], descending[c])
        ).all(), f"seed {seed}, channel {c}"


def test_thresholds_are_sent_in_order():
    """LOAD_THRESHOLDS' order whatever the model file's: ascending, descending for a falling channel (a
    tile that searches its thresholds needs it); the codes do not change."""
    g = TileGeometry(Family.POPCOUNT, 2, 4, 16, 16, 16, acc_width=8, max_thresholds=2)
    w = np.array([[1, -1, 0, 0, 1, 0], [0, 1, 1, -1, 0, 0], [-1, -1, -1, 0, 0, 1]], np.int8)
    thresholds = {"unordered": [[2, 0], [1, -9], [-1, 0]], "ordered": [[0, 2], [-9, 1], [0, -1]]}
    packed = {}
    for name, t in thresholds.items():
        layer = LayerRecord(6, 3, "ternary", 2, "fatnn", 2, "threshold", w, output_levels=3, thresholds=np.array(t))
        layer.descending = np.array([0, 0, 1], bool)
        packed[name] = pack_thresholds(layer, g).tolist()
    m = 0xFFFFFFFF
    assert packed["unordered"] == packed["ordered"] == [1, 0, 0, 2, 1, 0, -2 & m, 1, -2 & m, 1, 0, -1 & m, 0, 0, 0, 0]
    rng = np.random.default_rng(7)
    t, descending = rng.integers(-50, 50, (5, 9)), np.array([0, 1, 1, 0, 1], bool)
    ordered = order_thresholds(t, descending)
    assert (np.sort(ordered, axis=1) == np.sort(t, axis=1)).all()
    assert (np.diff(ordered[~descending], axis=1) >= 0).all() and (np.diff(ordered[descending], axis=1) <= 0).all()


def test_clamping_needs_a_wide_enough_accumulator():
    with pytest.raises(ProtocolError, match="channel 1: .* do not fit a 8-bit accumulator.*wider accumulator"):
        clamp_thresholds([[0], [0]], False, np.array([-10, -128]), np.array([10, 0]), 8)
    clamp_thresholds([[0], [0]], False, np.array([-10, -127]), np.array([10, 126]), 8)


# --- whole trained models -------------------------------------------------------------------------------

MODELS = {"binary": (32, 24), "fatnn": (32, 24), "nhot2": (32,)}


@pytest.fixture(scope="module")
def models(split):
    import torch

    from lowbit.sw.model.file import model_from_bytes, model_to_bytes
    from lowbit.sw.train.export import export_model
    from lowbit.sw.train.qat import TrainSettings, train_scheme

    torch.set_num_threads(1)
    trained = {}
    for scheme, hidden in MODELS.items():
        settings = TrainSettings(hidden=hidden, epochs=2, pretrain_epochs=2, progress=False, seed=3)
        net = train_scheme(scheme, settings, split).net
        trained[scheme] = model_from_bytes(model_to_bytes(export_model(net, scheme)))
    return trained


@pytest.mark.parametrize("scheme", MODELS)
@pytest.mark.parametrize("array", ["default", "small"])
def test_model_through_model_tile(models, split, scheme, array):
    model = models[scheme]
    geometry = default_geometry(model, *((2, 4) if array == "small" else (None, None)))
    family = {"nhot2": Family.NHOT, "binary": Family.BINARY}.get(scheme, Family.POPCOUNT)
    assert geometry.family == family
    tile = ModelTile(geometry)
    interface = TileInterface(tile)
    layers = []
    got = run(run_model(interface, model, split.x_test, lambda layer, done, batch: layers.append((layer, done))))
    expected = GoldenNetwork(model).run(split.x_test)
    assert got.dtype == np.int64 and got.shape == (360, 10)
    assert (got == expected).all(), (
        f"{scheme} PE {geometry.pe} SIMD {geometry.simd}: {int((got != expected).sum())} outputs differ"
    )
    configs = tile_layers(model, geometry)
    sent = interface.stats.sent
    assert layers == [(i, 360) for i in range(len(configs))]
    assert sent["IDENTIFY"]["commands"] == 1
    assert sent["CONFIGURE"] == {"commands": len(configs), "header": len(configs), "payload": 3 * len(configs)}
    assert sent["LOAD_WEIGHTS"]["payload"] == sum(geometry.weight_words(c) for c in configs)
    assert sent["RUN"]["payload"] == 360 * sum(geometry.input_words(c) for c in configs)
    assert interface.stats.received["payload"] == 5 + 360 * sum(geometry.output_words(c) for c in configs)
    assert tile.busy_cycles == 360 * sum(geometry.cycles_per_vector(c) for c in configs)


def test_model_in_chunks(models, split):
    model = models["fatnn"]
    geometry = default_geometry(model)
    interface = TileInterface(ModelTile(geometry), geometry)
    got = run(run_model(interface, model, split.x_test[:50], max_batch=16))
    assert (got == GoldenNetwork(model).run(split.x_test[:50])).all()
    assert interface.stats.sent["RUN"]["commands"] == 3 * 4
    assert [e["batch"] for e in interface.log if e["opcode"] == "RUN" and e["tag"] == 0] == [16, 16, 16, 2]
    config = tile_layers(model, geometry)[0]
    per_vector = max(geometry.input_words(config), geometry.output_words(config))
    assert MAX_LENGTH // per_vector > 360  # one RUN per layer without max_batch


class Counting(ModelTile):
    words = 0

    async def write(self, words):
        self.words += len(words)
        await super().write(words)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda m: [dataclasses.replace(m.layers[0], weight_kind="float")],
            "layer 0: no tile runs float weights against uint input",
        ),
        (
            lambda m: [m.layers[0], dataclasses.replace(m.layers[1], weight_kind="fgq")],
            "layer 1: no tile runs fgq weights against binary input",
        ),
        (lambda m: [dataclasses.replace(m.layers[0], in_features=300)], "layer 0 \\(300 -> 32\\) is too large"),
        (
            lambda m: m.layers[:1],
            "layer 0: accumulators .* beyond the tile's 8-bit accumulator; the layer needs a wider",
        ),
    ],
    ids=["float", "fgq", "too-large", "accumulator"],
)
def test_models_the_tile_cannot_run(models, split, change, message):
    model = models["binary"]
    geometry = default_geometry(model)
    if "8-bit" in message:
        geometry = dataclasses.replace(geometry, acc_width=8)
    tile = Counting(geometry)
    bad = dataclasses.replace(model, layers=change(model) + model.layers[len(change(model)) :])
    with pytest.raises(ProtocolError, match=message):
        run(run_model(TileInterface(tile, geometry), bad, split.x_test[:4]))
    assert tile.words == 0  # refused before a word was sent


def test_default_geometry(models):
    g = default_geometry(models["nhot2"])
    assert (g.family, g.pe, g.simd, g.n_terms, g.max_thresholds, g.max_in_features) == (Family.NHOT, 4, 8, 2, 255, 64)
    g = default_geometry(models["binary"], 16, 32)
    assert (g.family, g.pe, g.simd, g.max_input_bits, g.max_thresholds) == (Family.BINARY, 16, 32, 8, 1)
    for model in models.values():
        assert default_geometry(model).acc_width < 32
        tile_layers(model, default_geometry(model))  # fits, with no bit to spare:
        narrower = dataclasses.replace(default_geometry(model), acc_width=default_geometry(model).acc_width - 1)
        with pytest.raises(ProtocolError, match="wider accumulator"):
            tile_layers(model, narrower)
    with pytest.raises(ProtocolError, match="pe must be a power of two, not 3"):
        default_geometry(models["binary"], 3, 8)
    # The first family that runs every layer: binary layers beside a FATNN one go to POPCOUNT.
    fatnn = models["fatnn"].layers[1]
    with_fatnn = dataclasses.replace(models["binary"], layers=[*models["binary"].layers, fatnn])
    assert default_geometry(with_fatnn).family == Family.POPCOUNT
    mixed = dataclasses.replace(models["binary"], layers=[models["binary"].layers[0], models["nhot2"].layers[-1]])
    with pytest.raises(
        ProtocolError, match="no one tile runs every layer: the layers need a binary or popcount / a nhot"
    ):
        default_geometry(mixed)


def test_lowbit_run(models, tmp_path, capsys):
    from lowbit.sw.cli import main
    from lowbit.sw.model.file import save_model

    path = tmp_path / "fatnn.lbm"
    save_model(models["fatnn"], path)
    assert main(["run", str(path), "--backend", "model", "--limit", "30", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "outputs equal to the golden model: 300 of 300" in out
    assert "accuracy: " in out and "cycles per image: " in out and "MAC-array utilization: " in out
    assert "images per second at 100 MHz: " in out
    # the golden backend is the golden model: no tile, no cycles, nothing to compare with itself
    assert main(["run", str(path), "--backend", "golden", "--limit", "30", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "accuracy: " in out and "cycles" not in out and "outputs equal" not in out
    assert main(["run", str(path), "--pe", "3"]) == 2
    assert "pe must be a power of two, not 3" in capsys.readouterr().err


def test_lowbit_run_reports_a_mismatch(models, tmp_path, capsys, monkeypatch):
    from lowbit.sw.cli import main
    from lowbit.sw.model.file import save_model

    path = tmp_path / "nhot2.lbm"
    save_model(models["nhot2"], path)
    original = ModelTile._accumulate
    monkeypatch.setattr(ModelTile, "_accumulate", lambda self, config, codes: original(self, config, codes) + 1)
    assert main(["run", str(path), "--backend", "model", "--limit", "5", "--no-progress"]) == 1
    assert "outputs equal to the golden model: 0 of 50  MISMATCH" in capsys.readouterr().out


@pytest.mark.parametrize("scheme", MODELS)
@pytest.mark.parametrize("limit", ["outputs", "rows"])
def test_layers_larger_than_the_tile_run_in_parts(models, split, scheme, limit):
    """A tile with room for fewer outputs (or weight rows) than a layer has runs it in parts of whole output
    folds: outputs equal the golden model's, each part is configured and loaded once, and the MAC array
    works as many cycles as on a tile that holds the whole layer."""
    model = models[scheme]
    whole = default_geometry(model, 2, 4)
    configs = tile_layers(model, whole)
    if limit == "outputs":
        geometry = dataclasses.replace(whole, max_out_features=6)
    else:  # room for three output folds of the largest layer
        geometry = dataclasses.replace(
            whole, max_weight_rows=3 * max(whole.weight_rows(c) // whole.out_folds(c) for c in configs)
        )
    assert tile_layers(model, geometry) == configs
    parts = [output_parts(c, geometry) for c in configs]
    assert any(len(p) > 1 for p in parts), parts
    for config, ranges in zip(configs, parts):
        assert ranges[0][0] == 0 and ranges[-1][1] == config.out_features
        assert all(a[1] == b[0] and (a[1] - a[0]) % geometry.pe == 0 for a, b in zip(ranges, ranges[1:]))
        assert all(geometry.check(dataclasses.replace(config, out_features=b - a)) is None for a, b in ranges)
    tile = ModelTile(geometry)
    interface = TileInterface(tile)
    got = run(run_model(interface, model, split.x_test[:40], max_batch=16))
    expected = GoldenNetwork(model).run(split.x_test[:40])
    assert (got == expected).all(), f"{scheme}, limited {limit}: {int((got != expected).sum())} outputs differ"
    assert interface.stats.sent["CONFIGURE"]["commands"] == sum(len(p) for p in parts)
    assert interface.stats.sent["LOAD_WEIGHTS"]["commands"] == sum(len(p) for p in parts)
    assert tile.busy_cycles == 40 * sum(whole.cycles_per_vector(c) for c in configs)


def test_output_parts():
    g = popcount(4, 32, max_in=128, max_out=16, rows=32)
    layer = LayerConfig(100, 10, WeightKind.BINARY, 1, 0, InputKind.BINARY, 1, 2)
    assert output_parts(layer, g) == [(0, 10)]  # fits: one part
    wide = dataclasses.replace(layer, out_features=50)  # 16 outputs at most: 4 folds
    assert output_parts(wide, g) == [(0, 16), (16, 32), (32, 48), (48, 50)]
    uint = dataclasses.replace(layer, out_features=50, input_kind=InputKind.UINT, input_bits=4)
    assert output_parts(uint, g) == [(0, 16), (16, 32), (32, 48), (48, 50)]  # planes do not take rows
    int8 = dataclasses.replace(layer, out_features=10, weight_kind=WeightKind.INT, weight_bits=8)
    assert output_parts(int8, g) == [(0, 4), (4, 8), (8, 10)]  # 8 planes x 4 input folds: 1 fold
    assert output_parts(dataclasses.replace(layer, in_features=129), g) is None
    assert output_parts(dataclasses.replace(int8, in_features=128), g) == [(0, 4), (4, 8), (8, 10)]
    assert output_parts(int8, popcount(4, 32, max_in=128, max_out=16, rows=16)) is None  # a fold needs 32 rows


def test_a_layer_too_wide_even_for_one_fold_is_refused(models, split):
    model = models["binary"]
    geometry = dataclasses.replace(default_geometry(model, 2, 4), max_weight_rows=8)
    with pytest.raises(
        ProtocolError,
        match=r"layer 0 \(64 -> 32\) is too large for the tile, even one output "
        r"fold at a time: .* one fold of 2 outputs needs 16 rows",
    ):
        tile_layers(model, geometry)


@pytest.mark.parametrize("words_per_vector", [1, 2, 3, 7, 64, 1000])
def test_vectors_per_run_fill_a_command_and_no_more(words_per_vector):
    """A RUN (and its DATA) holds at most MAX_LENGTH words: the driver puts as many vectors in it as fit,
    at least one, and no more than max_batch."""
    from lowbit.sw.host.interface import vectors_per_run
    from lowbit.sw.protocol import MAX_LENGTH

    most = MAX_LENGTH // words_per_vector
    assert vectors_per_run(words_per_vector, 10**9) == most
    assert most * words_per_vector <= MAX_LENGTH < (most + 1) * words_per_vector
    assert vectors_per_run(words_per_vector, 5) == min(5, most)
    assert vectors_per_run(words_per_vector, 10**9, max_batch=3) == 3
    assert vectors_per_run(words_per_vector, 0) == 1
