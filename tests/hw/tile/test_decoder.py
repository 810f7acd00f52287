"""The tile's command Decoder alone, in Amaranth's simulator, with its neighbours modelled in Python: a
configuration check with a chosen error code, memories that record the writes, two input banks that a
pretend walk empties, and output words that appear once a vector is in. Every response word, every
memory write and the bank handshake are compared with what the protocol (``docs/protocol.md``) says,
under idle input and back-pressure."""

import pytest
from amaranth.sim import Simulator

from lowbit.hw.tile.config import CHECK_LATENCY
from lowbit.hw.tile.decoder import Decoder
from lowbit.sw.protocol import (
    WORD_BITS,
    ErrorCode,
    Family,
    InputKind,
    LayerConfig,
    Opcode,
    Response,
    TileGeometry,
    WeightKind,
    header,
    input_rows_per_word_log2,
)
from tests.hw import streamsim

GEOMETRY = TileGeometry(
    Family.POPCOUNT, 2, 32, max_in_features=128, max_out_features=16, max_weight_rows=64, max_input_bits=4
)
# 70 inputs (3 input folds of 2 words: ternary planes), 5 outputs (3 output folds), 3 levels
LAYER = LayerConfig(70, 5, WeightKind.TERNARY, 2, 0, InputKind.TERNARY, 2, 3)
IDENTIFY = [header(Opcode.IDENTIFY, 0)]
IDENTIFIED = [header(Response.DATA, 5)] + GEOMETRY.encode()
OK = header(Response.OK, 0)
FLOWS = {"steady": {}, "stalls": {"ready_pattern": (1, 0, 1, 1, 0), "valid_pattern": (1, 1, 0)}}


def layer_fields(g, layer):
    return {
        "ifolds": g.in_folds(layer),
        "input_rows": g.input_rows(layer),
        "ofolds": g.out_folds(layer),
        "weight_words": g.weight_words(layer),
        "threshold_words": g.threshold_words(layer),
        "in_row_words": g.input_row_words(layer),
        "in_rows_log2": input_rows_per_word_log2(g.input_row_bits(layer)),
        "in_row_bits": g.input_row_bits(layer),
        "record_words": layer.thresholds + 2,
        "input_words": g.input_words(layer),
        "output_words": g.output_words(layer),
    }


def run(words, count, error=0, ready_pattern=(1,), valid_pattern=(1,), walk=6, geometry=GEOMETRY, layer=LAYER):
    """Send ``words``, take ``count`` response words. The checked layer is ``layer`` (``error`` its code);
    a bank is emptied ``walk`` cycles after it is filled (the oldest first), and the vector's output
    words (``output_words`` of them) are offered then. Returns the responses and the events seen."""
    g = geometry
    dut = Decoder(g)
    fields = layer_fields(g, layer)
    got, accepts, writes, fills = [], [], {"w": [], "t": [], "i": []}, []
    state = {"full": [0, 0], "bank": 0, "ready_at": [], "outputs": 0, "offered": 0}

    async def source(ctx):
        ctx.set(dut.check.error, error)
        for field, value in fields.items():
            ctx.set(dut.layer[field], value)
        await streamsim.send(ctx, dut.i, words, valid_pattern)

    async def neighbours(ctx):
        """Banks, output words and the record of every write, one clock edge at a time."""
        cycle = 0
        while True:
            ctx.set(dut.banks.free, not state["full"][state["bank"]])
            ctx.set(dut.banks.bank, state["bank"])
            # the pretend walk: the oldest full bank is empty `walk` cycles after it was filled
            if state["ready_at"] and state["ready_at"][0][1] <= cycle:
                bank, _ = state["ready_at"].pop(0)
                state["full"][bank] = 0
                state["outputs"] += fields["output_words"]
            offer = state["offered"] < state["outputs"]
            ctx.set(dut.outputs.valid, offer)
            ctx.set(dut.outputs.payload, 0xA000 + state["offered"])
            sampled = await ctx.tick().sample(
                dut.check.accept,
                dut.check.words,
                dut.w_wr.en,
                dut.w_wr.addr,
                dut.w_wr.data,
                dut.i_wr.en,
                dut.i_wr.addr,
                dut.i_wr.data,
                dut.banks.filled,
                dut.outputs.ready,
                *(port for c in range(g.pe) for port in (dut.t_wr[c].en, dut.t_wr[c].addr, dut.t_wr[c].data)),
            )
            cycle += 1
            accept, cfg, w_en, w_addr, w_data, i_en, i_addr, i_data, filled, out_ready, *t = sampled[2:]
            if accept:
                accepts.append((cycle, list(cfg)))
            if w_en:
                writes["w"].append((w_addr, w_en, w_data))
            if i_en:
                writes["i"].append((i_addr, i_en, i_data))
            for c in range(g.pe):
                if t[3 * c]:
                    writes["t"].append((c, t[3 * c + 1], t[3 * c], t[3 * c + 2]))
            if filled:
                fills.append((cycle, state["bank"]))
                state["full"][state["bank"]] = 1
                state["ready_at"].append((state["bank"], cycle + walk))
                state["bank"] ^= 1
            if offer and out_ready:
                state["offered"] += 1

    async def sink(ctx):
        cycle = 0
        while len(got) < count:
            assert cycle < 20_000, f"{len(got)} of {count} words: {got}"
            ctx.set(dut.o.ready, ready_pattern[cycle % len(ready_pattern)])
            _, _, payload, valid, ready = await ctx.tick().sample(dut.o.payload, dut.o.valid, dut.o.ready)
            cycle += 1
            if valid and ready:
                got.append(payload)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_testbench(neighbours, background=True)
    sim.add_testbench(sink)
    sim.run()
    return got, accepts, writes, fills


def configure(layer=LAYER):
    return [header(Opcode.CONFIGURE, 3)] + layer.encode()


def replicated(word, count, bits=WORD_BITS):
    """``word`` (its low ``bits``) in each of ``count`` fields of ``bits``, as a write port's data."""
    return sum((word & ((1 << bits) - 1)) << (bits * k) for k in range(count))


@pytest.mark.parametrize("flow", FLOWS)
def test_identify_and_unknown(flow):
    words = IDENTIFY + [header(0x42, 2), 7, 8] + IDENTIFY
    expected = IDENTIFIED + [header(Response.ERROR, 1), int(ErrorCode.UNKNOWN_OPCODE) | (0x42 << 8)] + IDENTIFIED
    assert run(words, len(expected), **FLOWS[flow])[0] == expected


def test_configure_accepted_after_the_check():
    got, accepts, _, _ = run(configure() + IDENTIFY, 7)
    assert got == [OK] + IDENTIFIED
    assert [cfg for _, cfg in accepts] == [LAYER.encode()]


def test_configure_rejected_with_the_check_error():
    error = int(ErrorCode.TOO_LARGE)
    words = configure() + [header(Opcode.LOAD_WEIGHTS, 1), 0]
    got, accepts, writes, _ = run(words, 4, error=error)
    assert got == [header(Response.ERROR, 1), error | (Opcode.CONFIGURE << 8)] + [
        header(Response.ERROR, 1),
        int(ErrorCode.NOT_CONFIGURED) | (Opcode.LOAD_WEIGHTS << 8),
    ]
    assert accepts == [] and writes["w"] == []


def test_check_waits_check_latency_cycles():
    """``accept`` comes ``CHECK_LATENCY`` + 1 clock edges after the edge that takes the last word."""
    _, accepts, _, _ = run(configure(), 1)
    # the words go in at edges 1..4 (always valid, ready in IDLE and CONFIG)
    assert [cycle for cycle, _ in accepts] == [4 + CHECK_LATENCY + 1]


@pytest.mark.parametrize("flow", FLOWS)
def test_load_weights_and_thresholds(flow):
    g = GEOMETRY
    n_w, n_t = g.weight_words(LAYER), g.threshold_words(LAYER)
    weights = [0x1000 + k for k in range(n_w)]
    thresholds = [0x2000 + k for k in range(n_t)]
    words = (
        configure() + [header(Opcode.LOAD_WEIGHTS, n_w)] + weights + [header(Opcode.LOAD_THRESHOLDS, n_t)] + thresholds
    )
    got, _, writes, _ = run(words, 3, **FLOWS[flow])
    assert got == [OK, OK, OK]
    row_words = g.weight_row_words
    assert writes["w"] == [
        (k // row_words, 1 << (k % row_words), replicated(word, row_words)) for k, word in enumerate(weights)
    ]
    record = LAYER.thresholds + 2
    record_max = 2 + g.max_thresholds
    assert writes["t"] == [
        ((k // record) % g.pe, (k // record) // g.pe, 1 << (k % record), replicated(word, record_max, g.acc_width))
        for k, word in enumerate(thresholds)
    ]


def test_load_weights_of_rows_over_256_words():
    """A weight row of 320 words (PE 4 x SIMD 256 taps of two n-hot terms, 10 bits each; the n-hot tile at
    PE 16 x SIMD 64 has such rows): every word to its own write enable."""
    g = TileGeometry(
        Family.NHOT, 4, 256, max_in_features=256, max_out_features=4, max_weight_rows=2, max_thresholds=3, n_terms=2
    )
    layer = LayerConfig(256, 4, WeightKind.NHOT, 8, 2, InputKind.UINT, 8, 3)
    n_w = g.weight_words(layer)
    assert n_w == g.weight_row_words == 320
    weights = [0x1000 + k for k in range(n_w)]
    got, _, writes, _ = run(configure(layer) + [header(Opcode.LOAD_WEIGHTS, n_w)] + weights, 2, geometry=g, layer=layer)
    assert got == [OK, OK]
    assert writes["w"] == [(0, 1 << k, replicated(word, n_w)) for k, word in enumerate(weights)]


@pytest.mark.parametrize("flow", FLOWS)
def test_run(flow):
    """RUN: DATA's header, the vectors into alternating banks (waiting for a free one), the output
    words passed through, then the next command."""
    g = GEOMETRY
    batch = 5
    n_in, n_out, row_words = g.input_words(LAYER), g.output_words(LAYER), g.input_row_words(LAYER)
    load = [header(Opcode.LOAD_WEIGHTS, g.weight_words(LAYER))] + [0] * g.weight_words(LAYER)
    load += [header(Opcode.LOAD_THRESHOLDS, g.threshold_words(LAYER))] + [0] * g.threshold_words(LAYER)
    inputs = [0x3000 + k for k in range(batch * n_in)]
    words = configure() + load + [header(Opcode.RUN, len(inputs))] + inputs + IDENTIFY
    expected = [OK, OK, OK, header(Response.DATA, batch * n_out)]
    expected += [0xA000 + k for k in range(batch * n_out)] + IDENTIFIED
    got, _, writes, fills = run(words, len(expected), **FLOWS[flow])
    assert got == expected
    assert [bank for _, bank in fills] == [v % 2 for v in range(batch)]
    assert writes["i"] == [
        (
            (k // n_in) % 2 * g.max_in_folds + (k % n_in) // row_words,
            1 << (k % row_words),
            replicated(word, g.max_input_row_words),
        )
        for k, word in enumerate(inputs)
    ]


NARROW = TileGeometry(
    Family.POPCOUNT, 2, 4, max_in_features=64, max_out_features=8, max_weight_rows=128, max_input_bits=8
)
# 37 inputs: 10 input folds of SIMD 4, rows of 4 (binary), 8 (ternary), 12 / 16 / 32 bits (3-, 4-, 8-bit uint)
NARROW_LAYERS = {
    "binary": LayerConfig(37, 3, WeightKind.BINARY, 1, 0, InputKind.BINARY, 1, 2),
    "ternary": LayerConfig(37, 3, WeightKind.TERNARY, 2, 0, InputKind.TERNARY, 2, 2),
    "uint3": LayerConfig(37, 3, WeightKind.TERNARY, 2, 0, InputKind.UINT, 3, 2),
    "uint4": LayerConfig(37, 3, WeightKind.TERNARY, 2, 0, InputKind.UINT, 4, 2),
    "uint8": LayerConfig(37, 3, WeightKind.TERNARY, 2, 0, InputKind.UINT, 8, 2),
}


@pytest.mark.parametrize("flow", FLOWS)
@pytest.mark.parametrize("name", NARROW_LAYERS)
def test_run_rows_below_a_word(flow, name):
    """RUN on rows narrower than a word: each word carries the largest power of two of rows that fits
    (8, 4, 2, 2 and 1 here), written one row per cycle while the host's stream waits; a vector's last
    word is cut after its last row, and the next vector starts at a new word, in the other bank."""
    g, layer = NARROW, NARROW_LAYERS[name]
    bits, folds = g.input_row_bits(layer), g.in_folds(layer)
    per = 1 << input_rows_per_word_log2(bits)
    assert g.input_words(layer) == -(-folds // per)
    batch, n_in, n_out = 3, g.input_words(layer), g.output_words(layer)
    load = [header(Opcode.LOAD_WEIGHTS, g.weight_words(layer))] + [0] * g.weight_words(layer)
    load += [header(Opcode.LOAD_THRESHOLDS, g.threshold_words(layer))] + [0] * g.threshold_words(layer)
    inputs = [(0x9E3779B9 * (k + 1)) & 0xFFFFFFFF for k in range(batch * n_in)]
    words = configure(layer) + load + [header(Opcode.RUN, len(inputs))] + inputs + IDENTIFY
    expected = [OK, OK, OK, header(Response.DATA, batch * n_out)]
    expected += [0xA000 + k for k in range(batch * n_out)] + [header(Response.DATA, 5)] + g.encode()
    got, _, writes, fills = run(words, len(expected), geometry=g, layer=layer, **FLOWS[flow])
    assert got == expected
    assert [bank for _, bank in fills] == [v % 2 for v in range(batch)]
    assert writes["i"] == [
        (v % 2 * g.max_in_folds + f, 1, replicated(inputs[v * n_in + f // per] >> (f % per * bits), 1))
        for v in range(batch)
        for f in range(folds)
    ]


@pytest.mark.parametrize(
    "length, code",
    [(7, ErrorCode.BAD_LENGTH), (0, ErrorCode.BAD_LENGTH)],
)
def test_run_length_not_a_multiple(length, code):
    g = GEOMETRY
    load = [header(Opcode.LOAD_WEIGHTS, g.weight_words(LAYER))] + [0] * g.weight_words(LAYER)
    load += [header(Opcode.LOAD_THRESHOLDS, g.threshold_words(LAYER))] + [0] * g.threshold_words(LAYER)
    words = configure() + load + [header(Opcode.RUN, length)] + [0] * length + IDENTIFY
    got, _, writes, _ = run(words, 5 + 6)
    assert got == [OK, OK, OK, header(Response.ERROR, 1), int(code) | (Opcode.RUN << 8)] + IDENTIFIED
    assert writes["i"] == []
