"""Walks of feature maps in the protocol and the host: MapWalk's words, the checks of a walk and of its
chaining (error codes and reasons), a tile's `maps` in IDENTIFY, LOAD_MODEL's five words a layer, the
host's walks of a CNN (map_layers), the weights laid per tap in whole rows, and resident CNNs on the
reference tile == the golden model for every input kind's pad code."""

import asyncio
import dataclasses

import numpy as np
import pytest

from lowbit.sim.reference import ModelTile
from lowbit.sw.golden import GoldenNetwork
from lowbit.sw.host import TileInterface, default_geometry, pack_weights, run_model
from lowbit.sw.host.plan import first_windows, map_layers
from lowbit.sw.kinds import tap_pad_code
from lowbit.sw.kinds.encodings import pad_code
from lowbit.sw.protocol import (
    DENSE,
    ErrorCode,
    Family,
    LayerConfig,
    MapWalk,
    ProtocolError,
    TileGeometry,
    model_refusal_reason,
    refusal_reason,
)

from ..model.test_conv import conv_model

GEOMETRY = TileGeometry(
    Family.BINARY, 4, 8, max_in_features=256, max_out_features=64, max_weight_rows=512, max_layers=3, maps=True
)


def layer(channels=8, outputs=4, walk=None, levels=2, input_kind="binary", bits=1):
    return LayerConfig(channels, outputs, "binary", 1, 0, input_kind, bits, levels, walk=walk)


def test_walk_words_round_trip_and_dense():
    walk = MapWalk(30, 28, 3, 2, 1, 2, 7, 7)
    assert MapWalk.decode(walk.encode()) == walk
    assert walk.encode()[0] == 30 | 28 << 8 | 3 << 16 | 2 << 20 | 1 << 24 | 2 << 28
    assert DENSE.encode() == [0, 0] and MapWalk.decode([0, 0]) is None
    assert MapWalk.decode([0x12, 0xFFFF]) is None  # a kernel of 0: dense, the other bits not read
    assert layer(walk=DENSE).walk is None and layer(walk=walk).dot_length == 9 * 8
    with pytest.raises(ProtocolError, match=r"^stride must be an integer from 1 to 15, not 0$"):
        MapWalk(4, 4, 3, 0, 1, 1, 4, 4)
    with pytest.raises(ProtocolError, match=r"^walk must be a MapWalk or None"):
        layer(walk=(4, 4))


def test_maps_in_identify_and_its_limits():
    assert TileGeometry.decode(GEOMETRY.encode()) == GEOMETRY and GEOMETRY.encode()[4] >> 15 & 1
    assert "walk feature maps" in GEOMETRY.describe()
    for bad in (dict(max_layers=0), dict(family=Family.FGQ, group_size=4)):
        with pytest.raises(ProtocolError, match=r"^only a resident tile \(max_layers > 0\) of a family other"):
            dataclasses.replace(GEOMETRY, **bad)


@pytest.mark.parametrize(
    "walk, levels, code, reason",
    [
        (MapWalk(6, 6, 3, 3, 1, 1, 2, 2), 2, ErrorCode.UNSUPPORTED, "stride 1 or 2, not 3"),
        (MapWalk(6, 6, 3, 1, 3, 1, 6, 6), 2, ErrorCode.UNSUPPORTED, "padding 3 must be less than the kernel (3)"),
        (MapWalk(2, 2, 2, 1, 0, 2, 1, 1), 0, ErrorCode.UNSUPPORTED, "the last layer cannot pool"),
        (MapWalk(6, 6, 3, 1, 1, 2, 4, 3), 2, ErrorCode.UNSUPPORTED, "4 pooled outputs do not fit a map height of 6"),
        (MapWalk(6, 8, 3, 1, 0, 1, 4, 7), 2, ErrorCode.UNSUPPORTED, "7 pooled outputs do not fit a map width of 8"),
        (MapWalk(40, 1, 1, 1, 0, 1, 40, 1), 2, ErrorCode.TOO_LARGE, "its input rows (40) exceed the tile's 32"),
        (MapWalk(5, 5, 3, 1, 1, 1, 5, 5), 2, None, None),
        (MapWalk(5, 5, 3, 2, 1, 2, 1, 1), 0, ErrorCode.UNSUPPORTED, "the last layer cannot pool"),
    ],
)
def test_walk_checks(walk, levels, code, reason):
    config = layer(walk=walk, levels=levels)
    assert GEOMETRY.check(config) == code
    if reason is None:
        assert refusal_reason(config, GEOMETRY) is None
    else:
        assert reason in refusal_reason(config, GEOMETRY)
    plain = dataclasses.replace(GEOMETRY, maps=False)
    assert plain.check(config) == ErrorCode.UNSUPPORTED
    assert refusal_reason(config, plain) == "the tile does not walk feature maps"


def test_walks_chain_and_load_model_words():
    first = layer(walk=MapWalk(5, 5, 3, 1, 1, 2, 2, 2), input_kind="uint", bits=4, channels=3)
    last = layer(channels=4, outputs=5, walk=MapWalk(2, 2, 2, 1, 0, 1, 1, 1), levels=0)
    assert GEOMETRY.model_check([first, last]) is None
    words = GEOMETRY.model_words([first, last])
    assert len(words) == 1 + 5 * 2 and words[4:6] == first.walk.encode() and GEOMETRY.model_layer_words == 5
    wrong = dataclasses.replace(last, walk=MapWalk(2, 2, 1, 1, 0, 1, 2, 1))
    assert GEOMETRY.model_check([first, wrong]) == ErrorCode.UNSUPPORTED
    assert model_refusal_reason([first, wrong], GEOMETRY) == "the last layer (1) emits a 2x1 map, not one pixel"
    shifted = dataclasses.replace(last, walk=MapWalk(2, 3, 2, 1, 0, 1, 1, 1))
    assert model_refusal_reason([first, shifted], GEOMETRY) == "layer 1 walks a 2x3 map, layer 0 emits 2x2"
    assert model_refusal_reason([first, dataclasses.replace(last, walk=None, in_features=16)], GEOMETRY) == (
        "layer 1 takes 16 inputs, layer 0 emits 4"
    )
    with pytest.raises(ProtocolError, match=r"^layer 0 walks a feature map: the tile does not walk maps$"):
        dataclasses.replace(GEOMETRY, maps=False).model_words([first, last])


def test_pad_code_defined_once():
    for kind, bits in (("binary", 1), ("ternary", 2), ("fatnn", 2), ("uint", 4), ("int", 3)):
        assert tap_pad_code(kind, bits) == pad_code(kind, bits)
    assert [tap_pad_code(k, b) for k, b in (("binary", 1), ("ternary", 2), ("uint", 4))] == [1, 1, 0]


def test_map_layers_of_a_cnn_and_its_weights_per_tap():
    """The host's walks: the first convolution's windows as a 1 x 1 walk over its output map (or the
    convolution walked on the image), the second convolution walked as it is (in_features: its channels),
    the dense layer after a 3 x 3 map a 3 x 3 kernel; each tap's weights in whole rows of SIMD."""
    model = conv_model(stride=2, pool=1)
    geometry = default_geometry(model, 2, 8, resident=True)
    first, second, last = map_layers(model, geometry, "host")
    assert (first.in_features, first.walk) == (9, MapWalk(6, 5, 1, 1, 0, 1, 6, 5))
    assert (second.in_features, second.walk) == (4, MapWalk(6, 5, 3, 2, 1, 1, 3, 3))
    assert (last.in_features, last.walk) == (3, MapWalk(3, 3, 3, 1, 0, 1, 1, 1))
    image = map_layers(model, geometry, "tile")[0]
    assert (image.in_features, image.walk) == (1, MapWalk(6, 5, 3, 1, 1, 1, 6, 5))
    assert geometry.maps and geometry.model_check([first, second, last]) is None
    assert geometry.model_check([image, second, last]) is None  # the default geometry holds either
    # the second layer's weights: 9 taps of 4 channels, each tap one row of 8 lanes (4 zero)
    words = pack_weights(model.layers[1], geometry, second)
    assert len(words) == geometry.weight_words(second) == geometry.out_folds(second) * 9 * geometry.weight_row_words
    with pytest.raises(ProtocolError, match=r"^layer 2: a dense layer after a 3x2 map; the tile walks square maps$"):
        map_layers(conv_model(), geometry)
    with pytest.raises(ValueError, match=r"^windows must be one of 'host', 'tile', not 'both'$"):
        map_layers(model, geometry, "both")


@pytest.mark.parametrize("pe, simd, windows", [(2, 8, "tile"), (4, 4, "tile"), (2, 16, "host")])
def test_first_windows_cut_where_they_cost_fewer_words(pe, simd, windows):
    """The image (30 pixels of one 4-bit channel: a row each) against its windows (30 windows of 9 taps:
    ceil(9 / SIMD) rows each): the tile walks the image when it takes fewer words."""
    model = conv_model(stride=2, pool=1)
    geometry = default_geometry(model, pe, simd, resident=True)
    assert first_windows(model, geometry) == windows
    host, tile = (geometry.input_words(map_layers(model, geometry, w)[0]) for w in ("host", "tile"))
    assert (tile < host) == (windows == "tile")


@pytest.mark.parametrize(
    "input_kind, weight_kind", [("ternary", "ternary"), ("binary", "binary"), ("fatnn", "ternary")]
)
@pytest.mark.parametrize("pool, padding", [(1, 1), (3, 1), (1, 0)])
def test_resident_cnn_on_the_reference_tile(input_kind, weight_kind, pool, padding):
    """Every pad code (binary +1, ternary 0, FATNN's code 0) walked on the reference tile, resident, at
    four arrays (PE below, equal to and above SIMD; the image walked on the tile, or the host's windows)
    == the golden model, the busy cycles those of the walks."""
    model = conv_model(weight_kind, input_kind, stride=2, pool=pool, padding=padding)
    pixels = np.random.default_rng(5).integers(0, 17, (7, 30)).astype(float)
    golden = GoldenNetwork(model).run(pixels)
    for pe, simd in ((2, 8), (4, 4), (8, 4), (2, 16)):  # the image walked on the tile; the last: windows
        geometry = default_geometry(model, pe, simd, resident=True)
        tile = ModelTile(geometry)
        got = asyncio.run(run_model(TileInterface(tile, geometry), model, pixels, mode="resident"))
        assert np.array_equal(got, golden), (input_kind, pool, padding, pe, simd)
        walks = map_layers(model, geometry)
        assert tile.busy_cycles == len(pixels) * sum(geometry.cycles_per_vector(c) for c in walks)
