"""The reference tile (:class:`lowbit.sim.reference.ModelTile`) against the Verilog tile in Verilator, word
for word, on seeded random and mutated word streams: in-spec layers (real computation, INT weight rows with
their sign bits set included), wrong opcodes and lengths, commands out of order, CONFIGUREs with random
fields, truncated commands continued by the next command's words, random payloads, long drains, IDENTIFY.

Per geometry one Verilator build (the compiled harness, :mod:`lowbit.sim.harness`) and one simulation run
every stream back to back, under random idle input and output back-pressure; the expected responses are
those of one fresh ModelTile fed the same streams in the same order. Every stream completes every length
it declares and ends with IDENTIFY, so that the tile is idle between streams.
"""

import asyncio
import copy
import math
import random
from types import SimpleNamespace

import numpy as np
import pytest

from lowbit.sim.reference import ModelTile
from lowbit.sw.host import pack_inputs, pack_weights
from lowbit.sw.kinds import InputKind, WeightKind, int_weight_terms
from lowbit.sw.kinds.encodings import nhot_terms
from lowbit.sw.protocol import ErrorCode, Family, LayerConfig, Opcode, Response, TileGeometry, header, parse_header

pytestmark = pytest.mark.verilator

GEOMETRIES = {
    "binary-4x32": TileGeometry(
        Family.BINARY,
        4,
        32,
        max_in_features=80,
        max_out_features=16,
        max_weight_rows=96,
        acc_width=14,
        max_thresholds=3,
        max_input_bits=4,
    ),
    # out_features up to 1024: a RUN of 16,384 one-word vectors would answer 2**24 words (BAD_LENGTH)
    "popcount-2x8": TileGeometry(
        Family.POPCOUNT,
        2,
        8,
        max_in_features=32,
        max_out_features=1024,
        max_weight_rows=512,
        acc_width=12,
        max_thresholds=3,
        max_input_bits=4,
    ),
    "popcount-4x16": TileGeometry(
        Family.POPCOUNT,
        4,
        16,
        max_in_features=48,
        max_out_features=12,
        max_weight_rows=48,
        acc_width=16,
        max_thresholds=2,
        max_input_bits=3,
    ),
    "nhot-2x4": TileGeometry(
        Family.NHOT,
        2,
        4,
        max_in_features=16,
        max_out_features=8,
        max_weight_rows=16,
        acc_width=32,
        max_thresholds=20,  # a searching threshold unit (protocol.SEARCH_FROM), 5 levels, not all slots used
        max_input_bits=4,
        n_terms=2,
        exponent_bits=3,
    ),
    "nhot-1x8": TileGeometry(
        Family.NHOT,
        1,
        8,
        max_in_features=24,
        max_out_features=4,
        max_weight_rows=12,
        acc_width=20,
        max_thresholds=1,
        max_input_bits=8,
        n_terms=3,
        exponent_bits=3,
    ),
}
SEEDS = {"binary-4x32": 3500, "popcount-2x8": 3100, "popcount-4x16": 3200, "nhot-2x4": 3300, "nhot-1x8": 3400}
STREAMS = 400
#: A header met while framing a random stream whose length exceeds this gets a short length instead.
MAX_FRAME = 2500
#: A stream whose reference responses or MAC-array cycles exceed these is drawn again.
MAX_RESPONSE_WORDS, MAX_BUSY_CYCLES = 3000, 6000
IDENTIFY = header(Opcode.IDENTIFY, 0)
OVERFLOW_STREAM = 5  # popcount-2x8: the stream that asks for 2**24 words of DATA

POPCOUNT_PAIRS = [
    (w, a)
    for w in (WeightKind.BINARY, WeightKind.TERNARY, WeightKind.FATNN)
    for a in (InputKind.BINARY, InputKind.TERNARY, InputKind.FATNN, InputKind.UINT)
] + [(WeightKind.INT, InputKind.BINARY)] * 4
NHOT_PAIRS = [(WeightKind.NHOT, InputKind.UINT), (WeightKind.INT, InputKind.UINT)]
BINARY_PAIRS = [(WeightKind.BINARY, InputKind.BINARY), (WeightKind.BINARY, InputKind.UINT)] + [
    (WeightKind.INT, InputKind.BINARY)
] * 2
PAIRS = {Family.BINARY: BINARY_PAIRS, Family.POPCOUNT: POPCOUNT_PAIRS, Family.NHOT: NHOT_PAIRS}


_NHOT_VALUES = {}


def _nhot_values(bits, n_terms):
    """The weights of ``bits`` bits that ``n_terms`` signed powers of two make."""
    key = (bits, n_terms)
    if key not in _NHOT_VALUES:
        values = []
        for v in range(-(1 << (bits - 1)) + 1, 1 << (bits - 1)):
            try:
                nhot_terms(np.array([v]), n_terms, bits)
            except ValueError:
                continue
            values.append(v)
        _NHOT_VALUES[key] = np.array(values)
    return _NHOT_VALUES[key]


class StreamMaker:
    """Draws the commands of one stream from ``rng``; ``layer`` is the last valid layer it configured
    (a guess at the tile's state, used to give later RUNs plausible lengths)."""

    def __init__(self, geometry, rng, layer):
        self.g, self.rng, self.layer = geometry, rng, layer
        self.np = np.random.default_rng(rng.randrange(1 << 32))
        self.int_sign_rows = 0

    def words(self, n):
        return [self.rng.getrandbits(32) for _ in range(n)]

    # --- in-spec layers -------------------------------------------------------------------------------
    def config(self):
        g, rng = self.g, self.rng
        while True:
            w, a = rng.choice(PAIRS[g.family])
            wb = {WeightKind.BINARY: 1, WeightKind.TERNARY: 2, WeightKind.FATNN: 2}.get(w)
            n_terms = 0
            if w == WeightKind.INT:
                wb = rng.randint(2, 8 if g.family != Family.NHOT else min(8, 2 * g.n_terms))
            elif w == WeightKind.NHOT:
                wb = rng.randint(2, 8)
                n_terms = rng.randint(1, min(g.n_terms, wb))
            ab = {InputKind.BINARY: 1, InputKind.TERNARY: 2, InputKind.FATNN: 2}.get(a) or rng.randint(
                1, g.max_input_bits
            )
            if rng.random() < 0.15:  # fields the kinds give no meaning to: any value
                if w in (WeightKind.BINARY, WeightKind.TERNARY, WeightKind.FATNN):
                    wb = rng.randrange(16)
                if w != WeightKind.NHOT:
                    n_terms = rng.randrange(16)
                if a != InputKind.UINT:
                    ab = rng.randrange(16)
            in_f = rng.randint(1, g.max_in_features)
            out_f = rng.randint(1, min(g.max_out_features, 3 * g.pe if rng.random() < 0.9 else 64))
            levels = rng.choice([0, rng.randint(2, g.max_thresholds + 1)])
            config = LayerConfig(in_f, out_f, w, wb, n_terms, a, ab, levels)
            if g.check(config) is None:
                return config

    def weights(self, config):
        """Random weights of the layer's kind, ``(out, in)``."""
        shape, rng = (config.out_features, config.in_features), self.np
        w, b = config.weight_kind, config.weight_bits
        if w == WeightKind.BINARY:
            return rng.choice([-1, 1], shape)
        if w in (WeightKind.TERNARY, WeightKind.FATNN):
            return rng.integers(-1, 2, shape)
        if w == WeightKind.INT and self.g.family != Family.NHOT:
            return rng.integers(-(1 << (b - 1)) + 1, 1 << (b - 1), shape)
        n = config.n_terms if w == WeightKind.NHOT else int_weight_terms(b)
        return rng.choice(_nhot_values(b, n), shape)

    def weight_words(self, config, w):
        g = self.g
        layer = SimpleNamespace(
            weight_kind=config.weight_kind,
            input_kind=config.input_kind,
            in_features=config.in_features,
            out_features=config.out_features,
            weight_bits=config.weight_bits,
            n_terms=config.n_terms,
            input_bits=config.input_bits,
            output_levels=config.output_levels,
            output_kind="accumulator" if config.last else "codes",
            weights=w,
        )
        words = [int(x) for x in pack_weights(layer, g)]
        if g.family == Family.POPCOUNT and config.weight_kind == WeightKind.INT and self.rng.random() < 0.6:
            # sign bits in INT weight rows: the tile ignores them
            plane = (1 << g.simd) - 1
            mask = sum(plane << (c * 2 * g.simd + g.simd) for c in range(g.pe))
            rw = g.weight_row_words
            for r in range(g.weight_rows(config)):
                extra = self.rng.getrandbits(g.weight_row_bits) & mask
                for k in range(rw):
                    words[r * rw + k] |= (extra >> (32 * k)) & 0xFFFFFFFF
            self.int_sign_rows += 1
        return words

    def threshold_words(self, config, w):
        g, rng = self.g, self.rng
        a_max = {InputKind.BINARY: 1, InputKind.TERNARY: 1, InputKind.FATNN: 2}.get(config.input_kind) or (
            1 << config.input_bits
        ) - 1
        w_max = int(np.abs(w).max()) or 1
        spread = max(1.0, math.sqrt(config.in_features) * w_max * a_max)
        limit = (1 << (g.acc_width - 1)) - 1
        words = []
        for c in range(g.out_folds(config) * g.pe):
            bias = int(w[c].sum()) if c < config.out_features and config.input_kind == InputKind.FATNN else 0
            if rng.random() < 0.15:
                bias = rng.randint(-8, 8)
            descending = rng.getrandbits(1) | (rng.getrandbits(32) & ~1 if rng.random() < 0.1 else 0)
            thresholds = [max(-limit - 1, min(limit, int(rng.gauss(0, spread)))) for _ in range(config.thresholds)]
            if rng.random() < 0.1:
                thresholds = self.words(config.thresholds)  # beyond acc_width: the tile keeps the low bits
            # LOAD_THRESHOLDS' order (by the low acc_width bits the tile keeps): a searching tile needs it
            half = 1 << (g.acc_width - 1)
            kept = [((t + half) & ((half << 1) - 1)) - half for t in thresholds]
            order = sorted(range(len(kept)), key=kept.__getitem__, reverse=bool(descending & 1))
            thresholds = [thresholds[i] for i in order]
            words += [bias & 0xFFFFFFFF, descending & 0xFFFFFFFF] + [t & 0xFFFFFFFF for t in thresholds]
        return words

    def input_words(self, config, batch):
        rng = self.np
        levels = {InputKind.BINARY: 2, InputKind.TERNARY: 3, InputKind.FATNN: 3}.get(
            config.input_kind
        ) or 1 << config.input_bits
        codes = rng.integers(0, levels, (batch, config.in_features))
        return [int(x) for x in pack_inputs(codes, config, self.g)]

    def valid_layer(self):
        """CONFIGURE, LOAD_WEIGHTS, LOAD_THRESHOLDS and RUNs of an in-spec layer, now and then out of order,
        with a load skipped, a wrong length, or out-of-spec (random) weight or input words."""
        rng, g = self.rng, self.g
        config = self.config()
        self.layer = config
        w = self.weights(config)
        weights = self.weight_words(config, w)
        if rng.random() < 0.08:
            weights = self.words(len(weights))
        thresholds = self.threshold_words(config, w)
        configure = [header(Opcode.CONFIGURE, 3)] + config.encode()
        if rng.random() < 0.1:  # the reserved bits of CONFIGURE
            configure[2] |= rng.getrandbits(12) << 20
            configure[3] |= rng.getrandbits(23) << 9
        load_w = [header(Opcode.LOAD_WEIGHTS, len(weights))] + weights
        load_t = [header(Opcode.LOAD_THRESHOLDS, len(thresholds))] + thresholds
        runs = []
        for _ in range(rng.choice([1, 1, 2])):
            inputs = self.input_words(config, rng.randint(1, 3 if rng.random() < 0.8 else 8))
            if rng.random() < 0.08:
                inputs = self.words(len(inputs))
            runs.append([header(Opcode.RUN, len(inputs))] + inputs)
        choice = rng.random()
        if choice < 0.55:
            return [configure, load_w, load_t, *runs]
        if choice < 0.7:
            return [configure, load_t, load_w, *runs]
        if choice < 0.8:
            return [configure, runs[0], load_w, runs[0], load_t, *runs]
        if choice < 0.9:
            n = g.input_words(config)
            bad = rng.choice([0, n - 1, n + 1, 2 * n + 1]) if n > 1 else 0
            return [configure, load_w, load_t, [header(Opcode.RUN, bad)] + self.words(bad), *runs]
        wrong = [load_w, load_t][rng.getrandbits(1)]
        n = len(wrong) - 1 + rng.choice([-1, 1, 2])
        return [configure, [wrong[0] & ~0xFFFFFF | n] + self.words(n), *runs]

    # --- everything else ------------------------------------------------------------------------------
    def identify(self):
        if self.rng.random() < 0.3:
            n = self.rng.randint(1, 4)
            return [[header(Opcode.IDENTIFY, n)] + self.words(n)]
        return [[IDENTIFY]]

    def unknown_opcode(self):
        opcode = self.rng.choice([0, self.rng.randint(6, 0xFF)])
        n = self.rng.randint(0, 6)
        return [[header(opcode, n)] + self.words(n)]

    def random_configure(self):
        rng, g = self.rng, self.g

        def size(high):
            return rng.choice([0, rng.randint(1, high), rng.randint(1, high), high, high + 1, rng.randint(1, 0xFFFF)])

        w0 = size(g.max_in_features) | size(g.max_out_features) << 16
        w1 = (
            rng.randrange(16)
            | rng.randrange(16) << 4
            | rng.randrange(16) << 8
            | rng.randrange(16) << 12
            | rng.randrange(16) << 16
        )
        if rng.random() < 0.5:  # a supported pair, random widths
            w, a = rng.choice(PAIRS[g.family])
            w1 = w1 & ~0xF00F | w.code | a.code << 12
        if rng.random() < 0.2:
            w1 |= rng.getrandbits(12) << 20
        w2 = rng.choice([0, 1, 2, 3, 4, 5, rng.getrandbits(9), rng.getrandbits(32)])
        n = 3 if rng.random() < 0.85 else rng.choice([0, 1, 2, 4, 5])
        payload = ([w0, w1, w2] + self.words(2))[:n]
        return [[header(Opcode.CONFIGURE, n)] + payload]

    def out_of_order(self):
        """LOAD_* and RUN without a configured layer, or RUN after a new CONFIGURE and before its loads."""
        rng = self.rng
        commands = []
        if rng.random() < 0.5:
            commands.append([header(Opcode.CONFIGURE, 2)] + self.words(2))  # leaves the tile unconfigured
        else:
            config = self.config()
            self.layer = config
            commands.append([header(Opcode.CONFIGURE, 3)] + config.encode())
        for _ in range(rng.randint(1, 3)):
            opcode = rng.choice([Opcode.LOAD_WEIGHTS, Opcode.LOAD_THRESHOLDS, Opcode.RUN])
            n = rng.randint(0, 12)
            commands.append([header(opcode, n)] + self.words(n))
        return commands

    def random_command(self):
        """A known opcode with a random length and random payload; a RUN of whole random vectors for the
        last layer."""
        rng = self.rng
        if self.layer is not None and rng.random() < 0.4:
            n = self.g.input_words(self.layer) * rng.randint(1, 3)
        else:
            n = rng.randint(0, 40)
        opcode = rng.choice(list(Opcode) + [Opcode.RUN] * 2)
        return [[header(opcode, n)] + self.words(n)]

    def large_drain(self):
        rng = self.rng
        n = rng.randint(300, MAX_FRAME)
        opcode = rng.choice(
            [
                rng.randint(6, 0xFF),
                Opcode.CONFIGURE,
                Opcode.IDENTIFY,
                Opcode.LOAD_WEIGHTS,
                Opcode.LOAD_THRESHOLDS,
                Opcode.RUN,
            ]
        )
        return [[header(opcode, n)] + self.words(n)]

    def mutated_layer(self):
        """An in-spec layer with bits flipped, words dropped, inserted or repeated."""
        rng = self.rng
        words = [w for command in self.valid_layer() for w in command]
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(words))
            kind = rng.random()
            if kind < 0.5:
                words[i] ^= 1 << rng.randrange(32)
            elif kind < 0.7:
                del words[i]
            elif kind < 0.9:
                words.insert(i, rng.getrandbits(32))
            else:
                words[i:i] = words[i : i + rng.randint(1, 8)]
            if not words:
                words = [IDENTIFY]
        return [words]

    PIECES = (
        ("valid_layer", 6),
        ("mutated_layer", 3),
        ("identify", 1),
        ("unknown_opcode", 1),
        ("random_configure", 2),
        ("out_of_order", 2),
        ("random_command", 2),
        ("large_drain", 0.4),
    )

    def stream(self):
        """The words of one stream: a few pieces, commands truncated now and then (the next command's words
        complete them), framed so that no length is huge, completed and ended with IDENTIFY."""
        rng = self.rng
        names, weights = zip(*self.PIECES)
        commands = []
        for _ in range(rng.randint(1, 5)):
            commands += [list(c) for c in getattr(self, rng.choices(names, weights)[0])()]
        for command in commands:
            if len(command) > 1 and rng.random() < 0.08:  # truncate: the next words become its payload
                del command[rng.randint(1, len(command) - 1) :]
        words = [w for command in commands for w in command]
        start = 0
        while start < len(words):
            _, length = parse_header(words[start])
            if length > MAX_FRAME:  # a payload word read as a header: keep the stream short
                words[start] = words[start] & ~0xFFFFFF | length & 0xFF
                length &= 0xFF
            start += 1 + length
        words += [IDENTIFY] * (start - len(words)) + [IDENTIFY]
        return words


def responses(tile, words):
    asyncio.run(tile.write(words))
    return asyncio.run(tile.read(tile.pending))


def overflow_stream(geometry):
    """A RUN whose DATA would be 2**24 words, one more than a header carries: ERROR BAD_LENGTH."""
    config = LayerConfig(8, 1024, WeightKind.BINARY, 1, 0, InputKind.BINARY, 1, 0)
    assert geometry.check(config) is None and geometry.input_words(config) == 1
    assert geometry.output_words(config) == 1024
    weights, thresholds = geometry.weight_words(config), geometry.threshold_words(config)
    rng = random.Random(1)
    return (
        [header(Opcode.CONFIGURE, 3)]
        + config.encode()
        + [header(Opcode.LOAD_WEIGHTS, weights)]
        + [0x0000FFFF & rng.getrandbits(32) | 0xFF] * weights
        + [header(Opcode.LOAD_THRESHOLDS, thresholds)]
        + [0] * thresholds
        + [header(Opcode.RUN, 1 << 14)]
        + [rng.getrandbits(32) for _ in range(1 << 14)]
        + [IDENTIFY]
    )


def make_streams(name, count):
    """``count`` streams for geometry ``name`` and the reference's responses to each, in order, from
    one fresh ModelTile: a list of ``(seed, words, expected)``. A stream whose responses would be too
    long or whose layers too slow is drawn again (the seed says which draw)."""
    geometry = GEOMETRIES[name]
    reference, layer, streams, stats = ModelTile(geometry), None, [], {"int_sign_rows": 0}
    for index in range(count):
        if name == "popcount-2x8" and index == OVERFLOW_STREAM:
            words = overflow_stream(geometry)
            expected = responses(reference, words)
            assert expected[-8:-6] == [header(Response.ERROR, 1), ErrorCode.BAD_LENGTH | Opcode.RUN << 8]
            streams.append(("overflow", words, expected))
            continue
        for attempt in range(100):
            seed = f"{SEEDS[name] + index}.{attempt}"
            maker = StreamMaker(geometry, random.Random(seed), layer)
            words = maker.stream()
            trial = copy.deepcopy(reference)
            busy = trial.busy_cycles
            expected = responses(trial, words)
            if len(expected) <= MAX_RESPONSE_WORDS and trial.busy_cycles - busy <= MAX_BUSY_CYCLES:
                break
        else:
            raise AssertionError(f"{name}, stream {index}: every draw is too long or too slow")
        assert expected[-6:] == [header(Response.DATA, 5)] + geometry.encode(), f"seed {seed}: not framed"
        reference, layer = trial, maker.layer
        stats["int_sign_rows"] += maker.int_sign_rows
        streams.append((seed, words, expected))
    return streams, stats


def _hex(words, limit=24):
    text = " ".join(f"{w:08x}" for w in words[:limit])
    return text + (f" ... ({len(words)} words)" if len(words) > limit else "")


@pytest.mark.parametrize("name", list(GEOMETRIES))
def test_reference_and_verilog_tile_agree(name):
    geometry = GEOMETRIES[name]
    streams, stats = make_streams(name, STREAMS)
    if geometry.family == Family.POPCOUNT:
        assert stats["int_sign_rows"] >= 5  # INT weight rows with sign bits set were compared
    received, extra, error = run_streams(geometry, streams, SEEDS[name])
    for index, ((seed, words, expected), got) in enumerate(zip(streams, received)):
        if got != expected:
            first = next((k for k, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
            pytest.fail(
                f"{name}, stream {index} (seed {seed!r}, flow-control seed {SEEDS[name]}; the streams "
                f"before it ran first on both tiles): "
                f"the Verilog tile answered {len(got)} words, the reference {len(expected)}; first "
                f"difference at word {first}: got {_hex(got[first:], 8)}, expected "
                f"{_hex(expected[first:], 8)}.\nwords sent: {_hex(words, 64)}\n"
                f"expected: {_hex(expected, 32)}\ngot: {_hex(got, 32)}" + (f"\nharness: {error}" if error else "")
            )
    assert error is None, f"{name}: {error}"
    assert len(received) == len(streams)
    assert extra == [], f"{name}: the tile sent words nobody asked for: {_hex(extra)}"


def run_streams(geometry, streams, seed):
    """The streams sent back to back to ``Tile(geometry)`` in the compiled harness, with idle input and
    back-pressure from ``seed``, reading after each as many words as the reference answered. Returns the
    words read per stream, any words after the last (100 quiet cycles), and the error that stopped it (a
    stream the tile neither took nor answered within the quiet limit), or None."""
    from lowbit.sim.harness import HarnessTransport
    from lowbit.sim.tile_transport import tile_library
    from lowbit.sw.host import TransportError

    transport = HarnessTransport(
        tile_library(geometry, quiet=True), idle=True, backpressure=True, seed=seed, timeout_cycles=20_000
    )
    received = []
    try:
        for _, words, expected in streams:
            asyncio.run(transport.write(words))
            try:
                received.append(asyncio.run(transport.read(len(expected))))
            except TransportError as error:
                return received + [[]], [], str(error)
        return received, transport.leftover(), None
    finally:
        asyncio.run(transport.close())
