"""Convolutional layers in software: the sliding window and pooling against PyTorch, the padding code of
each activation kind, the model file's convolutions (version 2; version 1 still loads), the golden model
against a per-pixel reference, trained CNNs of every scheme (golden == PyTorch integer pass, negative
batch-norm scales folded away) and the cost report."""

import copy

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from lowbit.sw.golden import GoldenNetwork
from lowbit.sw.host import default_geometry, resident_mode, tile_layers
from lowbit.sw.host.plan import layer_config
from lowbit.sw.kinds.encodings import activation_values, pad_code
from lowbit.sw.model.conv import max_pool, windows
from lowbit.sw.model.file import (
    LayerRecord,
    LowbitModel,
    ModelFileError,
    model_from_bytes,
    model_to_bytes,
    read_container,
    validate_model,
    write_container,
)
from lowbit.sw.model.inputs import input_codes
from lowbit.sw.model.report import format_report, model_cost
from lowbit.sw.protocol import ProtocolError
from lowbit.sw.train.data import load_digits_split
from lowbit.sw.train.export import export_model
from lowbit.sw.train.mlp import ConvSpec, QuantMLP
from lowbit.sw.train.qat import DIGITS_CNN, fgq_from_float, fit, scheme_config

SEED = 20261207


# --- the window and the pooling ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kernel,stride,padding", [(1, 1, 0), (3, 1, 1), (3, 2, 1), (3, 1, 0), (2, 2, 0), (5, 1, 2), (3, 3, 2)]
)
def test_windows_are_pytorch_conv2d(kernel, stride, padding):
    print(f"seed = {SEED}")
    rng = np.random.default_rng(SEED)
    maps = rng.integers(-4, 5, (3, 7, 6, 5))
    weights = rng.integers(-3, 4, (4, kernel, kernel, 5))  # (out, ky, kx, c): the model file's row order
    got = windows(maps, kernel, stride, padding, 2) @ weights.reshape(4, -1).T
    padded = F.pad(torch.tensor(maps).permute(0, 3, 1, 2).double(), (padding,) * 4, value=2.0)
    expected = F.conv2d(padded, torch.tensor(weights).permute(0, 3, 1, 2).double(), stride=stride)
    assert np.array_equal(got, expected.permute(0, 2, 3, 1).numpy())


@pytest.mark.parametrize("pool", [1, 2, 3])
def test_max_pool_is_pytorch_max_pool2d(pool):
    rng = np.random.default_rng(SEED)
    maps = rng.integers(0, 16, (2, 7, 8, 3))
    expected = maps if pool == 1 else F.max_pool2d(torch.tensor(maps).permute(0, 3, 1, 2).double(), pool)
    expected = expected if pool == 1 else expected.permute(0, 2, 3, 1).numpy()
    assert np.array_equal(max_pool(maps, pool), expected)


@pytest.mark.parametrize(
    "kind,bits,value", [("binary", 1, 1), ("ternary", 2, 0), ("fatnn", 2, 0), ("uint", 4, 0), ("int", 3, 0)]
)
def test_pad_code_is_zero_or_plus_one(kind, bits, value):
    code = pad_code(kind, bits)
    assert activation_values(code, kind, bits) == value


# --- the model file ----------------------------------------------------------------------------------


def conv_model(weight_kind="ternary", input_kind="ternary", seed=SEED, pool=2, stride=1, padding=1):
    """A random valid model: conv 3x3 over 6x5x1 uint4 pixels -> conv 3x3 -> dense 2 classes."""
    rng = np.random.default_rng(seed)
    first = LayerRecord(9, 4, "ternary", 2, "uint", 4, "threshold", rng.integers(-1, 2, (4, 9)).astype(np.int8))
    first.kernel, first.stride, first.padding, first.pool, first.input_map = 3, 1, 1, 1, (6, 5, 1)
    levels = {"ternary": 3, "binary": 2, "fatnn": 3, "uint": 16}[input_kind]
    first.output_levels = levels
    lo, hi = first.accumulator_range()
    first.thresholds = np.sort(rng.integers(lo[:, None], hi[:, None] + 1, (4, levels - 1)), axis=1)
    first.descending = np.zeros(4, bool)
    in_bits = {"ternary": 2, "binary": 1, "fatnn": 2, "uint": 4}[input_kind]
    w_bits = {"ternary": 2, "binary": 1, "fatnn": 2, "int": 4}[weight_kind]
    w = rng.integers(-1, 2, (3, 36)) if weight_kind != "binary" else rng.choice([-1, 1], (3, 36))
    if weight_kind == "int":
        w = rng.integers(-7, 8, (3, 36))
    second = LayerRecord(36, 3, weight_kind, w_bits, input_kind, in_bits, "threshold", w.astype(np.int8))
    second.kernel, second.stride, second.padding, second.pool = 3, stride, padding, pool
    second.input_map = (6, 5, 4)
    second.output_levels = 2
    lo, hi = second.accumulator_range()
    second.thresholds = rng.integers(lo[:, None], hi[:, None] + 1, (3, 1))
    second.descending = np.zeros(3, bool)
    size = int(np.prod(second.output_map))
    last = LayerRecord(size, 2, "binary", 1, "binary", 1, "accumulator", rng.choice([-1, 1], (2, size)).astype(np.int8))
    model = LowbitModel("test-cnn", 2, [first, second, last])
    validate_model(model)
    return model


def test_conv_model_round_trip():
    model = conv_model()
    again = model_from_bytes(model_to_bytes(model))
    for a, b in zip(model.layers, again.layers):
        assert (a.kernel, a.stride, a.padding, a.pool, tuple(a.input_map)) == (
            b.kernel,
            b.stride,
            b.padding,
            b.pool,
            tuple(b.input_map),
        )
        assert np.array_equal(a.weights, b.weights)
    assert again.layers[1].output_map == (3, 2, 3) and again.layers[2].in_features == 18


def test_version_1_files_still_load():
    """A version 1 file (dense layers, no convolution fields) reads as it did."""
    model = conv_model()
    model.layers = model.layers[2:]
    model.layers[0] = LayerRecord(18, 2, "binary", 1, "uint", 4, "accumulator", model.layers[0].weights.copy())
    header, arrays = read_container(model_to_bytes(model))
    for layer in header["layers"]:
        for name in ("kernel", "stride", "padding", "pool", "input_map"):
            del layer[name]
    header = dict(header, version=1)
    del header["arrays"]
    loaded = model_from_bytes(write_container(header, arrays, version=1))
    assert not loaded.layers[0].is_conv and loaded.layers[0].input_size == 18
    header["layers"][0]["kernel"] = 3
    with pytest.raises(ModelFileError, match=r"^layer 0: unknown key 'kernel' \(a version 1 layer has"):
        model_from_bytes(write_container(header, arrays, version=1))


def _changed(change):
    model = conv_model()
    change(model)
    return model


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda m: setattr(m.layers[1], "in_features", 35), r"layer 1: weights has shape|in_features 35 of a 3x3"),
        (lambda m: setattr(m.layers[1], "input_map", (6, 5, 3)), r"layer 1: in_features 36 of a 3x3 convolution"),
        (lambda m: setattr(m.layers[1], "padding", 3), r"layer 1: padding must be an integer from 0 to 2, not 3"),
        (lambda m: setattr(m.layers[1], "stride", 0), r"layer 1: stride must be an integer from 1 to 3, not 0"),
        (lambda m: setattr(m.layers[1], "pool", 0), r"layer 1: pool must be an integer from 1 to 16, not 0"),
        (lambda m: setattr(m.layers[1], "pool", 8), r"layer 1: 8x8 pooling of the 6x5 output map leaves nothing"),
        (
            lambda m: setattr(m.layers[1], "input_map", (6, 5)),
            r"layer 1: input_map must be \[height, width, channels\]",
        ),
        (lambda m: setattr(m.layers[2], "kernel", 3), r"layer 2: the last layer must be dense"),
        (
            lambda m: setattr(m.layers[2], "stride", 1),
            r"layer 2: stride must be 0 in a dense layer \(kernel 0\), not 1",
        ),
        (lambda m: setattr(m.layers[2], "input_map", (1, 1, 18)), r"layer 2: a dense layer \(kernel 0\) has input_map"),
        (
            lambda m: setattr(m.layers[0], "padding", 0),
            r"layer 1: input_map \[6, 5, 4\] does not match the \[4, 3, 4\]",
        ),
        (
            lambda m: setattr(m.layers[1], "pool", 1),
            r"layer 2: in_features 18 does not match the 90 outputs of layer 1",
        ),
        (
            lambda m: (setattr(m.layers[0], "input_map", (1, 1, 1)), setattr(m.layers[0], "padding", 0)),
            r"layer 0: a 3x3 kernel with padding 0 does not fit the 1x1 input map",
        ),
    ],
)
def test_conv_geometry_refused(change, message):
    model = conv_model()
    change(model)
    with pytest.raises(ModelFileError, match=message):
        validate_model(model)


def test_a_convolution_after_a_dense_layer_refused():
    model = conv_model()
    dense = LayerRecord(30, 4, "ternary", 2, "uint", 4, "threshold", np.zeros((4, 30), np.int8))
    dense.output_levels, dense.thresholds, dense.descending = 3, np.zeros((4, 2), np.int64), np.zeros(4, bool)
    model.layers = [dense] + model.layers[1:]
    model.layers[1].input_map, model.layers[1].pool = (1, 1, 4), 1
    with pytest.raises(ModelFileError, match=r"^layer 1: a convolution follows the input or another convolution"):
        validate_model(model)


# --- the golden model --------------------------------------------------------------------------------


def per_pixel_reference(model, codes):
    """An independent reference: loops over output pixels, padding with the kind's pad code."""
    x = codes
    for layer in model.layers:
        w = layer.effective_weights()
        if layer.is_conv:
            height, width, channels = layer.input_map
            maps = x.reshape(len(x), height, width, channels)
            oh, ow = layer.conv_map
            acc = np.zeros((len(x), oh, ow, layer.out_features), np.int64)
            pad = pad_code(layer.input_kind, layer.input_bits)
            for i in range(oh):
                for j in range(ow):
                    taps = []
                    for ky in range(layer.kernel):
                        for kx in range(layer.kernel):
                            y, z = i * layer.stride + ky - layer.padding, j * layer.stride + kx - layer.padding
                            inside = 0 <= y < height and 0 <= z < width
                            taps.append(maps[:, y, z, :] if inside else np.full((len(x), channels), pad))
                    taps = np.concatenate(taps, axis=1)
                    acc[:, i, j] = activation_values(taps, layer.input_kind, layer.input_bits) @ w.T
        else:
            acc = activation_values(x, layer.input_kind, layer.input_bits) @ w.T
        if layer.output_kind == "accumulator":
            return acc
        out = np.zeros(acc.shape, np.int64)
        for level in range(layer.thresholds.shape[1]):
            out += acc >= layer.thresholds[:, level]
        if layer.is_conv:
            ph, pw, _ = layer.output_map
            pooled = np.zeros((len(x), ph, pw, layer.out_features), np.int64)
            for i in range(ph):
                for j in range(pw):
                    cell = out[:, i * layer.pool : (i + 1) * layer.pool, j * layer.pool : (j + 1) * layer.pool]
                    pooled[:, i, j] = cell.max(axis=(1, 2))
            out = pooled
        x = out.reshape(len(x), -1)


@pytest.mark.parametrize(
    "weight_kind,input_kind,stride,padding,pool",
    [
        ("ternary", "ternary", 1, 1, 2),
        ("binary", "binary", 1, 1, 2),
        ("binary", "binary", 2, 2, 1),
        ("ternary", "fatnn", 1, 0, 1),
        ("int", "uint", 2, 1, 2),
    ],
)
def test_golden_conv_equals_per_pixel_reference(weight_kind, input_kind, stride, padding, pool):
    print(f"seed = {SEED}")
    model = conv_model(weight_kind, input_kind, pool=pool, stride=stride, padding=padding)
    rng = np.random.default_rng(SEED)
    codes = rng.integers(0, 16, (50, 30))
    got = GoldenNetwork(model).run_codes(codes)
    assert np.array_equal(got, per_pixel_reference(model, codes))


def test_binary_padding_is_plus_one():
    """With binary input the padded taps count as +1: flipping the rule to -1 changes the accumulators."""
    model = conv_model("binary", "binary")
    codes = np.random.default_rng(SEED).integers(0, 16, (50, 30))
    trace = GoldenNetwork(model).run_codes(codes, trace=True)
    layer = model.layers[1]
    maps = trace["codes"][1].reshape(50, *layer.input_map)
    minus_one = windows(maps, 3, 1, 1, 0) * 2 - 1
    plus_one = windows(maps, 3, 1, 1, 1) * 2 - 1
    acc = trace["accumulators"][1].reshape(50, *layer.conv_map, 3)
    assert np.array_equal(acc, plus_one @ layer.weights.astype(np.int64).T)
    assert not np.array_equal(acc, minus_one @ layer.weights.astype(np.int64).T)


# --- trained CNNs ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def split():
    return load_digits_split()


@pytest.fixture(scope="module")
def fp32_cnn(split):
    torch.manual_seed(0)
    net = QuantMLP(scheme_config("fp32", (), convs=DIGITS_CNN))
    return fit(net, split, 2, 3e-3, progress=False)


#: Test images the trained CNNs are compared on (the golden model of an 8-bit CNN takes seconds on all 360).
IMAGES = 90


def _check_golden_equals_pytorch(net, split, scheme):
    model = model_from_bytes(model_to_bytes(export_model(net, scheme)))
    pixels = split.x_test[:IMAGES]
    codes = torch.as_tensor(np.asarray(pixels), dtype=torch.float64)
    if not net.is_float:
        codes = torch.as_tensor(input_codes(pixels, net.config.input_bits), dtype=torch.float64)
    golden = GoldenNetwork(model)
    trace = golden.run(pixels, trace=True)
    torch_trace = net.integer_forward(codes, trace=True)
    steps = net.input_steps()
    for index, layer in enumerate(net.layers):
        assert np.array_equal(trace["codes"][index], torch_trace["codes"][index].numpy()), f"layer {index} codes"
        if net.is_float:
            continue
        expected = torch_trace["accumulators"][index].numpy()
        if layer.conv is not None:  # export negates the channels whose code falls with the accumulator
            falling = (layer.bn_affine()[0] * layer.acc_scale(steps[index])).numpy() < 0
            expected = (expected.reshape(len(expected), -1, layer.out_features) * np.where(falling, -1, 1)).reshape(
                len(expected), -1
            )
        assert np.array_equal(trace["accumulators"][index], expected), f"layer {index} accumulators"
    assert np.array_equal(golden.predict(pixels), torch_trace["accumulators"][-1].numpy().argmax(axis=1))
    return model


@pytest.mark.parametrize("scheme", ["binary", "twn", "fatnn", "uniform8", "nhot2"])
def test_trained_cnn_golden_equals_pytorch(scheme, split):
    torch.manual_seed(0)
    net = QuantMLP(scheme_config(scheme, (), convs=DIGITS_CNN))
    fit(net, split, 1, 3e-3, progress=False)
    model = _check_golden_equals_pytorch(net, split, scheme)
    assert [layer.is_conv for layer in model.layers] == [True, True, True, False]
    assert model.layers[2].output_map == (2, 2, 64) and model.layers[3].in_features == 256


@pytest.mark.parametrize("group_size,groups", [(4, [1, 4, 4, 4]), (64, [1, 32, 32, 64])])
def test_fgq_cnn_from_the_float_cnn(fp32_cnn, split, group_size, groups):
    """FGQ's groups run along the input channels of a convolution: the first layer's one channel gives
    groups of 1, the next ones' 32 channels groups of min(N, 32)."""
    net = fgq_from_float(fp32_cnn, split, group_size)
    model = _check_golden_equals_pytorch(net, split, "fgq")
    assert [layer.group_size for layer in model.layers] == groups


def test_float_cnn_golden(fp32_cnn, split):
    model = export_model(fp32_cnn, "fp32")
    got = GoldenNetwork(model_from_bytes(model_to_bytes(model))).run(split.x_test)
    expected = fp32_cnn.integer_forward(torch.as_tensor(np.asarray(split.x_test), dtype=torch.float64)).numpy()
    assert np.allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_negative_batch_norm_scales_fold_into_the_weights(split):
    """Channels whose batch-norm scale is negative (code falling with the accumulator) export as rising
    channels with negated weights and thresholds, so that pooling the codes is exact; outputs unchanged."""
    torch.manual_seed(0)
    net = QuantMLP(scheme_config("twn", (), convs=(ConvSpec(8, pool=2), ConvSpec(8, pool=2))))
    fit(net, split, 1, 3e-3, progress=False)
    with torch.no_grad():
        for layer in net.layers[:2]:
            layer.bn.weight[::2] *= -1  # every other channel falls
    plain = copy.deepcopy(net)
    model = _check_golden_equals_pytorch(net, split, "twn")
    for index in (0, 1):
        layer = model.layers[index]
        assert not layer.descending.any()
        assert (np.diff(layer.thresholds.astype(np.int64), axis=1) >= 0).all()
        original = plain.layers[index].integer_weight().values.numpy()
        assert np.array_equal(layer.weights[::2], -original[::2]) and np.array_equal(
            layer.weights[1::2], original[1::2]
        )


def test_cost_report_counts_every_output_position(split):
    model = conv_model()
    cost = model_cost(model)
    assert cost.layers[0].macs == 6 * 5 * 9 * 4 and cost.layers[1].macs == 6 * 5 * 36 * 3
    assert cost.layers[1].weight_storage_bits == 36 * 3 * 2
    text = format_report(cost)
    assert "conv3x3/1 6x5x1->6x5x4" in text and "conv3x3/1 6x5x4->3x2x3" in text


def test_a_convolution_configures_the_tile_as_its_dot_product():
    """A layer at a time the host cuts the windows: CONFIGURE carries the dot product of k * k * C inputs;
    resident is refused on a tile that does not walk maps; a tile that does walks only square maps into a
    dense layer (this model's last map is 3 x 2)."""
    model = conv_model()
    assert [(c.in_features, c.out_features) for c in map(layer_config, model.layers)] == [(9, 4), (36, 3), (18, 2)]
    geometry = default_geometry(model)
    assert not geometry.maps
    with pytest.raises(
        ProtocolError, match=r"^the tile cannot hold the model resident: the model has convolutions and the tile"
    ):
        resident_mode(tile_layers(model, geometry), geometry, "resident", model=model)
    with pytest.raises(ProtocolError, match=r"^layer 2: a dense layer after a 3x2 map; the tile walks square maps$"):
        default_geometry(model, resident=True)


# --- the command line and the Python API -------------------------------------------------------------


def test_train_and_report_a_cnn_from_the_command_line(tmp_path, capsys):
    from lowbit.sw.cli import main

    path = tmp_path / "twn.lbm"
    assert (
        main(["train", "--scheme", "twn", "--arch", "cnn", "--epochs", "1", "--no-progress", "--out", str(path)]) == 0
    )
    assert "(equals PyTorch)" in capsys.readouterr().out
    assert main(["report", str(path)]) == 0
    out = capsys.readouterr().out
    assert "conv3x3/1 8x8x1->8x8x32" in out and "conv3x3/1 4x4x32->2x2x64" in out and "256x10" in out
    assert main(["run", str(path), "--backend", "model", "--limit", "4", "--mode", "resident"]) == 0
    out = capsys.readouterr().out
    assert "resident" in out and "outputs equal to the golden model: 40 of 40" in out


def test_arch_options_checked_before_training():
    from lowbit.sw import api

    with pytest.raises(ValueError, match=r"^arch must be one of mlp, cnn, not 'rnn'$"):
        api.train("twn", arch="rnn")
    with pytest.raises(
        ValueError, match=r"^hidden must be a sequence of positive widths such as \(256, 256\), not \(\)$"
    ):
        api.train("twn", hidden=())
    model = api.train(
        "twn", arch="cnn", hidden=(16,), epochs=1
    )  # a dense layer between the convolutions and the classifier
    assert [layer.is_conv for layer in model.layers] == [True, True, True, False, False]
    assert model.layers[3].in_features == 256 and model.layers[3].out_features == 16
    assert model.metadata["arch"] == "cnn" and model.metadata["hidden"] == [16]


def test_planner_counts_the_windows_as_the_reference_tile_runs_them():
    """lowbit plan's cycles per image for a CNN (windows x cycles per vector, per layer) == the reference
    tile's busy cycles on one image, and the words per image count every window."""
    import asyncio

    from lowbit.boards.planner import plan_tile
    from lowbit.sim.reference import ModelTile
    from lowbit.sw.host import TileInterface, run_codes

    model = conv_model()
    geometry = default_geometry(model, 2, 8)
    plan = plan_tile(model, "icebreaker", geometry)
    tile = ModelTile(geometry)
    codes = np.random.default_rng(SEED).integers(0, 16, (1, 30))
    asyncio.run(run_codes(TileInterface(tile, geometry), model, codes))
    assert plan.cycles_per_image == tile.busy_cycles
    assert not plan.resident and [layer.cycles for layer in plan.layers][:2] == [
        30 * geometry.cycles_per_vector(c) for c in tile_layers(model, geometry)[:2]
    ]
    assert plan.layers[0].input_words == 30 * geometry.input_words(tile_layers(model, geometry)[0])
