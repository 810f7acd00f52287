"""Convolutional networks on the Verilog tile in Verilator. A layer at a time: the host cuts each image's
windows (padded with the input kind's pad code) and pools the outputs, the tile runs every window as a
vector. Resident, on a tile that walks maps: the tile walks each map itself (padding, stride, pooling) and
only the image goes in (or the first layer's windows, where they take no more words). A small CNN per
scheme (binary, TWN, FATNN, 2-hot) with stride 2, padding 0 and 1, a pooling window that drops a row,
and widths that divide neither PE nor SIMD, trained briefly, with random idle input and back-pressure:
every output == the golden model, the MAC beats == the cycle model."""

import numpy as np
import pytest

from lowbit.sim.reference import ModelTile
from lowbit.sim.tile_transport import run_model_on_tile
from lowbit.sw import api
from lowbit.sw.host import default_geometry
from lowbit.sw.host.plan import first_windows
from lowbit.sw.protocol import LayerConfig, MapWalk, Opcode, ProtocolError, header
from lowbit.sw.train.mlp import ConvSpec

from .test_resident_verilator import _responses
from .trained import check_script, check_tile_run

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
#: and 12 channels: one, two or three rows a pixel), and who cuts the first layer's windows there (the
#: tile walks the image where it takes fewer words than the windows: a window's 9 taps fill 16 lanes).
RESIDENT = [("binary", 4, 8, "tile"), ("twn", 16, 8, "tile"), ("fatnn", 8, 16, "host"), ("nhot2", 4, 4, "tile")]


@pytest.mark.parametrize("scheme, pe, simd, windows", RESIDENT)
def test_resident_cnn_walks_its_maps_on_tile(models, scheme, pe, simd, windows, seed=20261207):
    """The whole CNN resident on a tile that walks maps: LOAD_MODEL carries each layer's walk, RUN the
    image (or the first layer's windows); the tile pads, strides and pools on the chip. == golden, beats ==
    cycle model."""
    trained, pixels = models
    path, model = trained[scheme]
    geometry = default_geometry(model, pe, simd, resident=True)
    assert geometry.maps and first_windows(model, geometry) == windows
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


def _walk_model(rng, geometry):
    """A random two- or three-layer model that walks maps (binary weights; uint 4-bit or binary input;
    binary activations), valid or not: random map sizes, kernels, strides, paddings and pools, the output maps as
    large as fit (or one larger), the last layer a walk as large as the map before (or dense after 1x1)."""
    layers, height, width = [], int(rng.integers(2, 7)), int(rng.integers(2, 7))
    channels, input_kind, bits = int(rng.integers(1, 20)), *(("uint", 4) if rng.random() < 0.5 else ("binary", 1))
    for _ in range(int(rng.integers(1, 3))):
        kernel = int(rng.integers(1, 4))
        stride, padding, pool = int(rng.integers(1, 3)), int(rng.integers(0, kernel)), int(rng.integers(1, 3))
        conv = [(size + 2 * padding - kernel) // stride + 1 for size in (height, width)]
        out = [max(1, c // pool + (rng.random() < 0.05)) for c in conv]
        walk = MapWalk(height, width, kernel, stride, padding, pool, *out)
        features = int(rng.integers(1, 24))
        layers.append(LayerConfig(channels, features, "binary", 1, 0, input_kind, bits, 2, walk=walk))
        height, width, channels, input_kind, bits = *out, features, "binary", 1
    side = MapWalk(height, width, height, 1, 0, 1, 1, 1) if (height, width) != (1, 1) else None
    layers.append(LayerConfig(channels, int(rng.integers(1, 12)), "binary", 1, 0, input_kind, bits, 0, walk=side))
    return layers


def _thresholds(rng, layers, geometry):
    """Random records (bias, descending, threshold) whose codes vary: the binary array's raw accumulator is
    -2 d (binary input) or -sum 2**p d_p (uint planes), so a bias about half its range and thresholds near 0."""
    records = []
    for layer in layers:
        span = layer.dot_length * (2 if str(layer.input_kind) == "binary" else 15)
        channels = geometry.out_folds(layer) * geometry.pe
        record = np.zeros((channels, geometry.record_words), np.int64)
        record[:, 0] = rng.integers(span // 4, 3 * span // 4 + 1, channels)
        record[:, 1] = rng.integers(0, 2, channels)
        record[:, 2] = rng.integers(-4, 5, channels)
        records.append(record.reshape(-1))
    return (np.concatenate(records) & 0xFFFFFFFF).astype(np.uint32).tolist()


def test_walks_against_the_reference_tile(models, seed=20261208):
    """LOAD_MODEL with walks on the Verilog tile that walks maps (the binary resident test's), word for word
    against the reference tile: random models (valid, and walks that do not fit, chain or are out of range:
    ERROR with the same code), random weights, thresholds and input words (padding lanes included), RUN's
    outputs; and LOAD_MODEL of three words a layer (BAD_LENGTH), random walk words."""
    trained, pixels = models
    _, model = trained["binary"]
    geometry = default_geometry(model, 4, 8, resident=True)  # the Verilog of the binary resident test

    rng = np.random.default_rng(seed)
    reference, steps, ran = ModelTile(geometry), [], 0

    def send(words):
        steps.extend([{"send": words}, {"expect": _responses(reference, words)}])

    for _ in range(60):
        layers = _walk_model(rng, geometry)
        words = [len(layers)]
        for layer in layers:
            walk = layer.walk.encode() if layer.walk is not None else [0, 0]
            if rng.random() < 0.05:  # a random walk word
                walk[int(rng.integers(0, 2))] = int(rng.integers(0, 1 << 32))
            words += layer.encode() + walk
        send([header(Opcode.LOAD_MODEL, len(words))] + words)
        if geometry.model_check(layers) is not None:
            continue
        ran += 1
        weights = rng.integers(0, 1 << 32, geometry.model_weight_words(layers)).tolist()
        thresholds = _thresholds(rng, layers, geometry)
        inputs = rng.integers(0, 1 << 32, geometry.input_words(layers[0]) * int(rng.integers(1, 4))).tolist()
        send([header(Opcode.LOAD_WEIGHTS, len(weights))] + weights)
        send([header(Opcode.LOAD_THRESHOLDS, len(thresholds))] + thresholds)
        send([header(Opcode.RUN, len(inputs))] + inputs)
    three = [1] + LayerConfig(9, 4, "binary", 1, 0, "uint", 4, 0).encode()
    send([header(Opcode.LOAD_MODEL, len(three))] + three)
    send([header(Opcode.IDENTIFY, 0)])
    assert ran >= 10
    check_script(geometry, steps, seed)
