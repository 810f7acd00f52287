"""The tile's command decoder in Amaranth's simulator: every malformed command gets ERROR, its payload
is drained, and the tile then answers the next command normally."""

import pytest

from lowbit.hw.tile.tile import Tile
from lowbit.sw.protocol import (
    ErrorCode,
    Family,
    InputKind,
    LayerConfig,
    Opcode,
    Response,
    TileGeometry,
    WeightKind,
    header,
    parse_header,
)
from tests.hw import streamsim

GEOMETRY = TileGeometry(Family.POPCOUNT, 4, 32, max_in_features=128, max_out_features=64, max_weight_rows=64)
BINARY = LayerConfig(40, 6, WeightKind.BINARY, 1, 0, InputKind.BINARY, 1, 0)
OK = header(Response.OK, 0)
IDENTIFY = [header(Opcode.IDENTIFY, 0)]
IDENTIFIED = [header(Response.DATA, 5)] + GEOMETRY.encode()


def error(code, opcode):
    return [header(Response.ERROR, 1), int(code) | (int(opcode) << 8)]


def configure(layer):
    return [header(Opcode.CONFIGURE, 3)] + layer.encode()


def exchange(words, count, **flow):
    return streamsim.exchange(Tile(GEOMETRY), words, count, **flow)


def test_identify():
    assert exchange(IDENTIFY, 6) == IDENTIFIED
    assert TileGeometry.decode(IDENTIFIED[1:]) == GEOMETRY


def test_configure_accepts_a_layer_that_fits():
    assert exchange(configure(BINARY) + IDENTIFY, 7) == [OK] + IDENTIFIED


MALFORMED = [
    ([header(0x77, 3), 1, 2, 3], error(ErrorCode.UNKNOWN_OPCODE, 0x77)),
    ([header(0x00, 0)], error(ErrorCode.UNKNOWN_OPCODE, 0x00)),
    # Every wrong length of the fixed-length commands (a payload word taken as a command would answer
    # something else, or nothing).
    *[
        (
            [header(Opcode.CONFIGURE, n)] + BINARY.encode()[:n] + [7] * (n - 3),
            error(ErrorCode.BAD_LENGTH, Opcode.CONFIGURE),
        )
        for n in (0, 1, 2, 4, 5)
    ],
    *[
        ([header(Opcode.IDENTIFY, n)] + [header(Opcode.IDENTIFY, 0)] * n, error(ErrorCode.BAD_LENGTH, Opcode.IDENTIFY))
        for n in (1, 2)
    ],
    ([header(Opcode.LOAD_WEIGHTS, 2), 1, 2], error(ErrorCode.NOT_CONFIGURED, Opcode.LOAD_WEIGHTS)),
    ([header(Opcode.LOAD_THRESHOLDS, 1), 1], error(ErrorCode.NOT_CONFIGURED, Opcode.LOAD_THRESHOLDS)),
    ([header(Opcode.RUN, 1), 5], error(ErrorCode.NOT_CONFIGURED, Opcode.RUN)),
    (configure(BINARY) + [header(Opcode.RUN, 2), 5, 6], [OK] + error(ErrorCode.NOT_LOADED, Opcode.RUN)),
    (
        configure(BINARY) + [header(Opcode.LOAD_WEIGHTS, 3), 1, 2, 3],
        [OK] + error(ErrorCode.BAD_LENGTH, Opcode.LOAD_WEIGHTS),
    ),
    (
        configure(BINARY) + [header(Opcode.LOAD_THRESHOLDS, 5)] + [0] * 5,
        [OK] + error(ErrorCode.BAD_LENGTH, Opcode.LOAD_THRESHOLDS),
    ),
    (
        configure(LayerConfig(129, 6, WeightKind.BINARY, 1, 0, InputKind.BINARY, 1, 0)),
        error(ErrorCode.TOO_LARGE, Opcode.CONFIGURE),
    ),
    (
        configure(LayerConfig(128, 64, WeightKind.INT, 8, 0, InputKind.BINARY, 1, 0)),  # 128 weight rows
        error(ErrorCode.TOO_LARGE, Opcode.CONFIGURE),
    ),
    (
        configure(LayerConfig(40, 6, WeightKind.NHOT, 8, 2, InputKind.UINT, 8, 0)),
        error(ErrorCode.UNSUPPORTED, Opcode.CONFIGURE),
    ),
    (
        configure(LayerConfig(40, 6, WeightKind.BINARY, 1, 0, InputKind.BINARY, 1, 16)),  # 15 thresholds
        error(ErrorCode.UNSUPPORTED, Opcode.CONFIGURE),
    ),
    (
        configure(LayerConfig(0, 6, WeightKind.BINARY, 1, 0, InputKind.BINARY, 1, 0)),
        error(ErrorCode.UNSUPPORTED, Opcode.CONFIGURE),
    ),
]


def test_malformed_commands_then_ready():
    """Each malformed command gets its error response, then the tile still answers IDENTIFY (nothing
    hangs, nothing is misread). One simulation runs them all, under idle input and back-pressure."""
    words = [w for case, _ in MALFORMED for w in case + IDENTIFY]
    expected = [[*answer, *IDENTIFIED] for _, answer in MALFORMED]
    # A few hundred cycles per command: a tile that misreads a payload word as a command fails in seconds.
    flow = {"ready_pattern": (1, 0), "valid_pattern": (1, 1, 0), "max_cycles": 20_000}
    got = exchange(words, sum(map(len, expected)), **flow)
    for index, answer in enumerate(expected):
        assert got[: len(answer)] == answer, f"case {index}: {MALFORMED[index][0]}"
        got = got[len(answer) :]


@pytest.mark.parametrize(
    "words, expected",
    [case for case in MALFORMED if parse_header(case[0][0])[0] == Opcode.CONFIGURE and len(case[0]) == 4],
)
def test_hardware_check_agrees_with_host(words, expected):
    """The tile's CONFIGURE checks (seen above) are TileGeometry.check, which the host uses."""
    code = GEOMETRY.check(LayerConfig.decode(words[1:4]))
    assert expected[1] & 0xFF == code


def test_failed_configure_forgets_the_layer():
    bad = configure(LayerConfig(129, 6, WeightKind.BINARY, 1, 0, InputKind.BINARY, 1, 0))
    words = configure(BINARY) + bad + [header(Opcode.RUN, 1), 0]
    assert exchange(words, 5) == (
        [OK] + error(ErrorCode.TOO_LARGE, Opcode.CONFIGURE) + error(ErrorCode.NOT_CONFIGURED, Opcode.RUN)
    )


def test_int_weight_rows_ignore_the_sign_plane():
    """INT weight rows carry the two's-complement planes in ``nz``; the tile ignores their sign plane (the
    protocol says it is 0): rows with every sign bit set compute as the reference tile does, which
    ignores it too, and as the same rows with the sign plane clear."""
    import asyncio
    from types import SimpleNamespace

    import numpy as np

    from lowbit.sim.reference import ModelTile
    from lowbit.sw.host import pack_inputs, pack_weights

    config = LayerConfig(40, 6, WeightKind.INT, 3, 0, InputKind.BINARY, 1, 0)
    rng = np.random.default_rng(11)
    layer = SimpleNamespace(
        weight_kind="int",
        input_kind="binary",
        in_features=40,
        out_features=6,
        weight_bits=3,
        n_terms=0,
        input_bits=1,
        output_levels=0,
        output_kind="accumulator",
        weights=rng.integers(-3, 4, (6, 40)),
    )
    clear = [int(w) for w in pack_weights(layer, GEOMETRY)]
    sign_plane = sum(((1 << GEOMETRY.simd) - 1) << (c * 2 * GEOMETRY.simd + GEOMETRY.simd) for c in range(GEOMETRY.pe))
    rw = GEOMETRY.weight_row_words
    set_ = [w | (sign_plane >> (32 * (k % rw))) & 0xFFFFFFFF for k, w in enumerate(clear)]
    assert set_ != clear
    inputs = [int(w) for w in pack_inputs(rng.integers(0, 2, (2, 40)), config, GEOMETRY)]
    thresholds = [0] * GEOMETRY.threshold_words(config)

    def words(weights):
        return (
            configure(config)
            + [header(Opcode.LOAD_WEIGHTS, len(weights))]
            + weights
            + [header(Opcode.LOAD_THRESHOLDS, len(thresholds))]
            + thresholds
            + [header(Opcode.RUN, len(inputs))]
            + inputs
        )

    reference = ModelTile(GEOMETRY)
    asyncio.run(reference.write(words(set_)))
    expected = asyncio.run(reference.read(reference.pending))
    assert expected[3] == header(Response.DATA, 2 * GEOMETRY.output_words(config))
    assert exchange(words(set_), len(expected)) == expected
    assert exchange(words(clear), len(expected)) == expected
