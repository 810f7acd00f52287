"""The tile's own CONFIGURE check, in Amaranth's simulator, against the kinds registry.

Every pair of 4-bit kind codes (the defined kinds and the undefined ones) with bit widths, terms and
output levels on and around each bound, on popcount and n-hot tiles of several geometries: the error
code of the tile's check (its Configuration block) must be what :meth:`TileGeometry.check`, derived
from :mod:`lowbit.sw.kinds`, predicts for the same words, and the whole tile answers a sample of the
same CONFIGUREs with OK or ERROR and that code. So the hardware and the host cannot disagree on which
layers a tile runs.
"""

import itertools
import random

import pytest
from amaranth.sim import Simulator

from lowbit.hw.tile.config import CHECK_LATENCY, Configuration
from lowbit.hw.tile.tile import Tile
from lowbit.sw.kinds import TILE_SUPPORT, Family, InputKind, WeightKind
from lowbit.sw.protocol import ErrorCode, LayerConfig, Opcode, Response, TileGeometry, header
from tests.hw import streamsim

GEOMETRIES = {
    "binary-8x16": TileGeometry(
        Family.BINARY,
        8,
        16,
        max_in_features=256,
        max_out_features=64,
        max_weight_rows=200,
        max_input_bits=6,
        max_thresholds=2,
    ),
    "popcount-4x32": TileGeometry(
        Family.POPCOUNT,
        4,
        32,
        max_in_features=128,
        max_out_features=64,
        max_weight_rows=64,
        max_input_bits=4,
        max_thresholds=3,
    ),
    "popcount-2x16": TileGeometry(
        Family.POPCOUNT,
        2,
        16,
        max_in_features=64,
        max_out_features=16,
        max_weight_rows=300,
        max_input_bits=8,
        max_thresholds=1,
    ),
    "nhot-2x8-3": TileGeometry(
        Family.NHOT,
        2,
        8,
        max_in_features=32,
        max_out_features=8,
        max_weight_rows=16,
        max_input_bits=8,
        n_terms=3,
        exponent_bits=3,
        max_thresholds=3,
    ),
    "nhot-4x4-2": TileGeometry(
        Family.NHOT,
        4,
        4,
        max_in_features=16,
        max_out_features=16,
        max_weight_rows=64,
        max_input_bits=4,
        n_terms=2,
        exponent_bits=3,
        max_thresholds=7,
    ),
}
SEED = 20261206


def configure_words(in_features, out_features, weight_kind, weight_bits, n_terms, input_kind, input_bits, levels):
    """CONFIGURE's words from raw fields (kind codes may name no kind)."""
    return [
        header(Opcode.CONFIGURE, 3),
        in_features | (out_features << 16),
        weight_kind | (weight_bits << 4) | (n_terms << 8) | (input_kind << 12) | (input_bits << 16),
        levels,
    ]


def expected_answer(geometry, fields):
    """What the registry says the tile answers: OK, or ERROR with :func:`expected_code`."""
    code = expected_code(geometry, fields)
    if code == 0:
        return [header(Response.OK, 0)]
    return [header(Response.ERROR, 1), code | (int(Opcode.CONFIGURE) << 8)]


def valid_fields(geometry, rng):
    """Sizes and levels the tile accepts (most of the time), so the kinds decide the answer."""
    in_features = (
        rng.choice([1, 17, geometry.max_in_features])
        if rng.random() < 0.8
        else rng.choice([0, geometry.max_in_features + 1])
    )
    out_features = (
        rng.choice([1, 5, geometry.max_out_features // 2])
        if rng.random() < 0.8
        else rng.choice([0, geometry.max_out_features + 1])
    )
    levels = (
        rng.choice([0, 0, 2, 3])
        if rng.random() < 0.8
        else rng.choice([1, geometry.max_thresholds + 1, geometry.max_thresholds + 2, 256])
    )
    return in_features, out_features, levels


def cases(geometry, rng):
    """Every pair of kind codes with random bit widths, terms, sizes and levels (more draws for the
    defined kinds), and every bound of every pairing the registry lists, at and beyond both ends."""
    defined_weights = {kind.code for kind in WeightKind}
    defined_inputs = {kind.code for kind in InputKind}
    for weight_code, input_code in itertools.product(range(16), range(16)):
        draws = 12 if weight_code in defined_weights and input_code in defined_inputs else 1
        for _ in range(draws):
            in_features, out_features, levels = valid_fields(geometry, rng)
            weight_bits = rng.choice([1, 2, 8, 0, 3, 4, 7, 9, 15])
            input_bits = rng.choice([1, 2, 8, 0, 3, 4, 9, 15])
            n_terms = rng.choice([1, 2, 3, 0, 4, 15])
            yield (in_features, out_features, weight_code, weight_bits, n_terms, input_code, input_bits, levels)
    for entries in TILE_SUPPORT.values():
        for entry in entries:
            for weight_kind, input_kind in itertools.product(entry.weights, entry.inputs):
                for bits in itertools.product(range(0, 10), [0, 1, 2, 3, 4, 8, 9]):
                    weight_bits, input_bits = bits
                    in_features, out_features, levels = valid_fields(geometry, rng)
                    n_terms = rng.choice([0, 1, 2, 3, 4])
                    yield (
                        in_features,
                        out_features,
                        weight_kind.code,
                        weight_bits,
                        n_terms,
                        input_kind.code,
                        input_bits,
                        levels,
                    )


def expected_code(geometry, fields):
    """The error code the registry gives CONFIGURE's fields (0: accepted; UNSUPPORTED for a kind code that
    names no kind)."""
    try:
        layer = LayerConfig.decode(configure_words(*fields)[1:])
    except ValueError:
        return int(ErrorCode.UNSUPPORTED)
    code = geometry.check(layer)
    return 0 if code is None else int(code)


def check_codes(geometry, all_cases):
    """The Configuration block's error code for each case's words, ``CHECK_LATENCY`` cycles after them."""
    dut, codes = Configuration(geometry), []

    async def tb(ctx):
        for fields in all_cases:
            for k, word in enumerate(configure_words(*fields)[1:]):
                ctx.set(dut.check.words[k], word)
            await ctx.tick().repeat(CHECK_LATENCY)
            codes.append(ctx.get(dut.check.error))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return codes


@pytest.mark.parametrize("name", GEOMETRIES)
def test_configure_check_follows_the_registry(name):
    geometry = GEOMETRIES[name]
    rng = random.Random(f"{SEED}-{name}")
    all_cases = list(cases(geometry, rng))
    got = check_codes(geometry, all_cases)
    for fields, code in zip(all_cases, got):
        assert code == expected_code(geometry, fields), (
            f"seed {SEED}, {name}: CONFIGURE {fields} (in, out, weight code, weight bits, terms, input code, "
            f"input bits, levels) gave error code {code}, the registry says {expected_code(geometry, fields)}"
        )
    # the sweep reaches both answers, and every family's pairs
    accepted = got.count(0)
    assert 0 < accepted < len(all_cases), (accepted, len(all_cases))


#: Every how many-th case of the sweep the whole tile answers (its simulation is ~20 times slower).
TILE_SAMPLE = 7


@pytest.mark.parametrize("name", ["binary-8x16", "nhot-4x4-2"])
def test_the_tile_answers_its_check(name):
    """The whole tile, command decoder included, answers a sample of the sweep's CONFIGUREs with OK, or
    ERROR and the check's code, one response per command."""
    geometry = GEOMETRIES[name]
    rng = random.Random(f"{SEED}-{name}")
    sample = list(cases(geometry, rng))[::TILE_SAMPLE]
    words, expected = [], []
    for fields in sample:
        words += configure_words(*fields)
        expected.append(expected_answer(geometry, fields))
    got = streamsim.exchange(Tile(geometry), words, sum(map(len, expected)), max_cycles=50 * len(sample) + 1000)
    position = 0
    for fields, answer in zip(sample, expected):
        assert got[position : position + len(answer)] == answer, (
            f"seed {SEED}, {name}: CONFIGURE {fields} answered {got[position : position + len(answer)]}, "
            f"the registry says {answer}"
        )
        position += len(answer)
    assert {len(answer) for answer in expected} == {1, 2}, "the sample has both answers"
