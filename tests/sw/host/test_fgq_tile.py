"""The FGQ family on the host side: its geometry and CONFIGURE fields, the rule of which group sizes it
runs, the weight rows' scales, and trained FGQ models on the reference tile against the golden model."""

import asyncio
import dataclasses

import numpy as np
import pytest

from lowbit.sim.reference import ModelTile
from lowbit.sw.golden import GoldenNetwork
from lowbit.sw.host import TileInterface, default_geometry, run_codes, tile_layers
from lowbit.sw.host.packing import fgq_tile_scales, pack_weights
from lowbit.sw.host.plan import fgq_group_size
from lowbit.sw.kinds import Family, InputKind, WeightKind
from lowbit.sw.protocol import ErrorCode, LayerConfig, ProtocolError, TileGeometry, refusal_reason

FGQ = TileGeometry(Family.FGQ, 2, 8, 64, 32, 64, acc_width=24, max_thresholds=255, group_size=4)


def fgq_layer(in_features=64, out_features=10, group_size=4, input_bits=8, levels=0):
    return LayerConfig(in_features, out_features, WeightKind.FGQ, 2, 0, InputKind.UINT, input_bits, levels, group_size)


def test_geometry_and_config_round_trip():
    assert TileGeometry.decode(FGQ.encode()) == FGQ and FGQ.encode()[4] == 255 | (4 << 16)
    assert "a scale per 4 inputs" in FGQ.describe()
    layer = fgq_layer(group_size=64, levels=256)
    assert LayerConfig.decode(layer.encode()) == layer and layer.encode()[2] == 256 | (64 << 16)
    # a slot: 8 taps of nz and sign, then 8 / 4 scales of 8 bits
    assert FGQ.slot_bits == 2 * 8 + 2 * 8 and FGQ.weight_row_bits == 2 * 32


@pytest.mark.parametrize(
    "family, simd, group_size, message",
    [
        (Family.FGQ, 8, 0, "an fgq tile needs group_size a power of two from 1 to simd \\(8\\), not 0"),
        (Family.FGQ, 8, 6, "an fgq tile needs group_size a power of two from 1 to simd \\(8\\), not 6"),
        (Family.FGQ, 8, 16, "an fgq tile needs group_size a power of two from 1 to simd \\(8\\), not 16"),
        (Family.NHOT, 8, 4, "only an fgq tile has a group_size, not a nhot tile"),
    ],
)
def test_geometry_refuses_bad_group_sizes(family, simd, group_size, message):
    with pytest.raises(ProtocolError, match=message):
        TileGeometry(family, 2, simd, 64, 32, 64, n_terms=2 if family == Family.NHOT else 0, group_size=group_size)


@pytest.mark.parametrize("group_size, accepted", [(4, True), (8, True), (64, True), (12, True), (2, False), (6, False)])
def test_the_tile_runs_whole_groups_of_its_own(group_size, accepted):
    layer = fgq_layer(in_features=48 if group_size in (6, 12) else 64, group_size=group_size)
    assert (FGQ.check(layer) is None) == accepted
    if not accepted:
        assert FGQ.check(layer) == ErrorCode.UNSUPPORTED
        assert refusal_reason(layer, FGQ) == (
            f"fgq weights against uint input: group size {group_size} is not a multiple of the tile's 4"
        )


def test_fgq_group_size_of_a_tile():
    assert fgq_group_size([4, 4], 16) == 4
    assert fgq_group_size([64, 64], 16) == 16 and fgq_group_size([64], 8) == 8
    assert fgq_group_size([64, 4], 16) == 4 and fgq_group_size([12], 16) == 4 and fgq_group_size([3], 8) == 1


def test_scales_repeated_over_the_tiles_groups(tiny_models):
    model = tiny_models["fgq64"]
    geometry = default_geometry(model, 2, 8)  # groups of 8: each scale over eight of them
    layer = model.layers[0]
    config = tile_layers(model, geometry)[0]
    scales = fgq_tile_scales(layer, config, geometry)
    assert scales.shape == (layer.out_features, 64 // 8)
    assert (scales == np.repeat(layer.alpha_q.astype(np.int64), 8, axis=1)).all()
    assert len(pack_weights(layer, geometry)) == geometry.weight_words(config)


@pytest.mark.parametrize("name", ["fgq", "fgq64", "fgq-uint4"])
@pytest.mark.parametrize("pe, simd, resident", [(None, None, False), (2, 4, True), (4, 32, False)])
def test_fgq_models_on_the_reference_tile(tiny_models, split, name, pe, simd, resident):
    model = tiny_models[name]
    geometry = default_geometry(model, pe, simd, resident=resident)
    assert geometry.family == Family.FGQ
    codes = GoldenNetwork(model).input(split.x_test[:60])
    tile = TileInterface(ModelTile(geometry), geometry)
    got = asyncio.run(run_codes(tile, model, codes, mode="resident" if resident else "streaming"))
    assert (got == GoldenNetwork(model).run_codes(codes)).all(), f"{name} on {geometry.label()}"
    layer = dataclasses.replace(tile_layers(model, geometry)[0], group_size=geometry.group_size // 2 or 3)
    assert geometry.check(layer) == ErrorCode.UNSUPPORTED
