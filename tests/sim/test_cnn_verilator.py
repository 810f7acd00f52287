"""Convolutional networks on the Verilog tile in Verilator. A layer at a time: the host cuts each image's
windows (padded with the input kind's pad code) and pools the outputs, the tile runs every window as a
vector. Resident, on a tile that walks maps: the tile walks each map itself (padding, stride, pooling) and
only the first layer's windows go in. A small CNN per scheme (binary, TWN, FATNN, 2-hot) with stride 2,
padding 0 and 1, a pooling window that drops a row, and widths that divide neither PE nor SIMD, trained
briefly, with random idle input and back-pressure: every output == the golden model, the MAC beats == the
cycle model."""

import numpy as np
import pytest

from lowbit.sim.tile_transport import run_model_on_tile
from lowbit.sw import api
from lowbit.sw.host import default_geometry
from lowbit.sw.protocol import ProtocolError
from lowbit.sw.train.mlp import ConvSpec

from .trained import check_tile_run

pytestmark = pytest.mark.verilator

IMAGES = 24
#: 8x8x1 -> 8x8x8 (3x3, padding 1) -> 4x4x12 (stride 2) -> 4x4x10 pooled 3x3 to 1x1x10 (a row and a
#: column dropped) -> 10 classes. Dot products of 9, 72 and 108 inputs; 8, 12 and 10 outputs.
CNN = (ConvSpec(8), ConvSpec(12, stride=2), ConvSpec(10, pool=3))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    import torch

    from lowbit.sw.model.file import load_model, save_model
    from lowbit.sw.train.data import load_digits_split
    from lowbit.sw.train.export import export_model
    from lowbit.sw.train.mlp import QuantMLP
    from lowbit.sw.train.qat import fit, scheme_config

    torch.set_num_threads(1)
    split = load_digits_split()
    folder = tmp_path_factory.mktemp("cnn")
    trained = {}
    for scheme in ("binary", "twn", "fatnn", "nhot2"):
        torch.manual_seed(7)
        net = fit(QuantMLP(scheme_config(scheme, (), convs=CNN)), split, 2, 3e-3, progress=False, seed=7)
        path = folder / f"{scheme}.lbm"
        save_model(export_model(net, scheme), path)
        trained[scheme] = (path, load_model(path))
    return trained, split.x_test[:IMAGES]


@pytest.mark.parametrize("scheme, pe, simd", [("binary", 8, 16), ("twn", 4, 16), ("fatnn", 8, 16), ("nhot2", 4, 8)])
def test_cnn_on_tile(models, scheme, pe, simd, seed=20261207):
    trained, pixels = models
    path, model = trained[scheme]
    assert [layer.is_conv for layer in model.layers] == [True, True, True, False]
    geometry = default_geometry(model, pe, simd)
    result = run_model_on_tile(path, pixels, geometry, idle=True, backpressure=True, seed=seed, quiet=True)
    assert result["mode"] == "streaming"
    check_tile_run(result, model, pixels, geometry, f"{scheme} CNN PE {pe} SIMD {simd} seed {seed}")


#: Resident geometries: (PE, SIMD) with PE < SIMD, PE > SIMD and both small (maps of 8 x 8 pixels of 8
#: and 12 channels: one, two or three rows a pixel).
RESIDENT = [("binary", 4, 8), ("twn", 16, 8), ("fatnn", 8, 16), ("nhot2", 4, 4)]


@pytest.mark.parametrize("scheme, pe, simd", RESIDENT)
def test_resident_cnn_walks_its_maps_on_tile(models, scheme, pe, simd, seed=20261207):
    """The whole CNN resident on a tile that walks maps: LOAD_MODEL carries each layer's walk, RUN the
    first layer's windows; the tile pads, strides and pools on the chip. == golden, beats == cycle model."""
    trained, pixels = models
    path, model = trained[scheme]
    geometry = default_geometry(model, pe, simd, resident=True)
    assert geometry.maps
    result = run_model_on_tile(
        path, pixels, geometry, mode="resident", idle=True, backpressure=True, seed=seed, quiet=True
    )
    assert result["mode"] == "resident"
    check_tile_run(result, model, pixels, geometry, f"resident {scheme} CNN PE {pe} SIMD {simd} seed {seed}")
    assert result["mac_beats"] == result["busy_cycles"]


def test_cnn_on_the_reference_tile_and_resident_refused(models):
    """The reference tile runs the CNNs alike (== golden), a layer at a time and resident on a tile that
    walks maps; resident mode on a tile that does not is refused in one line."""
    trained, pixels = models
    for scheme, (path, model) in trained.items():
        run = api.tile_run(path, pixels, backend="model")
        assert run.mode == "streaming" and np.array_equal(run.outputs, api.golden(model, pixels)), scheme
        assert run.useful_macs == len(pixels) * api.cost(model).total_macs
        run = api.tile_run(path, pixels, backend="model", mode="resident")
        assert run.mode == "resident" and np.array_equal(run.outputs, api.golden(model, pixels)), scheme
    with pytest.raises(ProtocolError, match=r"the model has convolutions and the tile does not walk feature maps"):
        api.tile_run(path, pixels, backend="model", mode="resident", geometry=default_geometry(model))
