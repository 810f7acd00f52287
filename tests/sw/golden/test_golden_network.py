"""Whole networks: the golden model on exported files equals the PyTorch integer pass on every test sample,
its accumulators equal a plain integer matmul, and the folded thresholds equal the float64 fold exactly."""

import copy

import numpy as np
import pytest
import torch

from lowbit.sw.golden import GoldenNetwork, multithreshold
from lowbit.sw.kinds.encodings import activation_values
from lowbit.sw.model.inputs import input_codes, input_scale
from lowbit.sw.train.export import export_model, layer_input
from lowbit.sw.train.mlp import ActivationSpec, NetworkConfig, WeightSpec
from lowbit.sw.train.qat import scheme_config


def torch_codes(result, pixels):
    net = result.net
    if net.is_float:
        return torch.as_tensor(pixels, dtype=torch.float64)
    return torch.as_tensor(input_codes(pixels, net.config.input_bits), dtype=torch.float64)


def test_golden_equals_pytorch_integer_pass(integer_name, tiny_nets, tiny_models, split):
    name = integer_name
    golden = GoldenNetwork(tiny_models[name])
    got = golden.run(split.x_test)
    expected = tiny_nets[name].net.integer_forward(torch_codes(tiny_nets[name], split.x_test)).numpy()
    assert got.dtype == np.int64
    mismatch = np.argwhere(got != expected)
    if len(mismatch):
        sample = mismatch[0][0]
        pytest.fail(f"{name}: sample {sample} got {got[sample]}, expected {expected[sample]}")
    assert np.array_equal(golden.predict(split.x_test), expected.argmax(axis=1))


def test_golden_float_reference(tiny_nets, tiny_models, split):
    got = GoldenNetwork(tiny_models["fp32"]).run(split.x_test)
    expected = tiny_nets["fp32"].net.integer_forward(torch.as_tensor(split.x_test, dtype=torch.float64)).numpy()
    assert np.allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert np.array_equal(got.argmax(axis=1), expected.argmax(axis=1))


def reference_layer(layer, codes):
    """Plain integer reference of one layer: matmul of the input values and the effective weights."""
    values = activation_values(codes, layer.input_kind, layer.input_bits)
    acc = values @ layer.effective_weights().T
    if layer.output_kind != "threshold":
        return acc, None
    out = np.zeros_like(acc)
    for level in range(layer.thresholds.shape[1]):
        t = layer.thresholds[:, level]
        out += np.where(layer.descending, acc <= t, acc >= t)
    return acc, out


def test_accumulators_equal_integer_matmul(integer_name, tiny_nets, tiny_models, split):
    name = integer_name
    model = tiny_models[name]
    trace = GoldenNetwork(model).run(split.x_test, trace=True)
    torch_trace = tiny_nets[name].net.integer_forward(torch_codes(tiny_nets[name], split.x_test), trace=True)
    for index, layer in enumerate(model.layers):
        acc, out = reference_layer(layer, trace["codes"][index])
        assert np.array_equal(trace["accumulators"][index], acc), f"{name}: layer {index} accumulators"
        assert np.array_equal(trace["accumulators"][index], torch_trace["accumulators"][index].numpy()), (
            f"{name}: layer {index} accumulators differ from PyTorch"
        )
        assert np.array_equal(trace["codes"][index], torch_trace["codes"][index].numpy()), (
            f"{name}: layer {index} input codes differ from PyTorch"
        )
        if out is not None:
            assert np.array_equal(trace["codes"][index + 1], out), f"{name}: layer {index} thresholds"
    lo, hi = model.layers[0].accumulator_range()
    assert np.all(trace["accumulators"][0] >= lo) and np.all(trace["accumulators"][0] <= hi)


def exhaustive_fold_check(net, model, limit=40_000):
    """For every hidden layer, every integer accumulator in range: multithreshold == fold_code."""
    steps = net.input_steps()
    for index, (layer, record) in enumerate(zip(net.layers[:-1], model.layers[:-1])):
        lo, hi = record.accumulator_range()
        start, stop = int(lo.min()), int(hi.max())
        grid = np.linspace(start, stop, min(limit, stop - start + 1)).round().astype(np.int64)
        grid = np.unique(
            np.concatenate(
                [grid, record.thresholds.ravel() - 1, record.thresholds.ravel(), record.thresholds.ravel() + 1]
            )
        )
        grid = grid[(grid >= start) & (grid <= stop)]
        acc = np.broadcast_to(grid[:, None], (len(grid), layer.out_features))
        got = multithreshold(acc, record.thresholds, record.descending)
        expected = layer.fold_code(torch.from_numpy(acc.copy()).double(), steps[index]).numpy()
        inside = (acc >= lo) & (acc <= hi)
        bad = np.argwhere((got != expected) & inside)
        assert not len(bad), (
            f"layer {index}: accumulator {acc[tuple(bad[0])]} channel {bad[0][1]}: "
            f"thresholds give {got[tuple(bad[0])]}, the fold {expected[tuple(bad[0])]}"
        )


@pytest.mark.parametrize("name", ["binary", "twn", "fatnn", "nhot2", "fgq", "twn-ternary-act"])
def test_thresholds_equal_fold(name, tiny_nets, tiny_models):
    exhaustive_fold_check(tiny_nets[name].net, tiny_models[name])


@pytest.mark.parametrize("name", ["twn", "binary", "fatnn", "fgq"])
def test_negative_batchnorm_scale(name, tiny_nets, split):
    net = copy.deepcopy(tiny_nets[name].net)
    with torch.no_grad():
        for layer in net.layers[:-1]:
            layer.bn.weight[::2] *= -1  # every other channel falls with the accumulator
            layer.bn.weight[1] = 0.0  # and one is constant
    model = export_model(net, name)
    for record in model.layers[:-1]:
        assert record.descending[::2].all() and not record.descending[1::2].any()
        lo, hi = record.accumulator_range()
        assert np.isin(record.thresholds[1], [lo[1], hi[1] + 1]).all()  # constant: always or never
    got = GoldenNetwork(model).run(split.x_test)
    expected = net.integer_forward(torch_codes(tiny_nets[name], split.x_test)).numpy()
    assert np.array_equal(got, expected)
    exhaustive_fold_check(net, model)


@pytest.mark.parametrize("name", ["binary", "twn", "nhot2"])
def test_bn_affine_is_pytorchs_batch_norm(name, tiny_nets):
    """The ``(scale, shift)`` that export and the integer pass fold into thresholds is the layer's own
    ``nn.BatchNorm1d`` in eval mode, checked against PyTorch's arithmetic (not against the fold, which
    shares the function): running statistics and affine parameters away from 0 and 1 on every channel."""
    net = copy.deepcopy(tiny_nets[name].net)
    rng = np.random.default_rng(3)
    for index, layer in enumerate(net.layers[:-1]):
        bn = layer.bn
        with torch.no_grad():
            channels = bn.num_features
            bn.running_mean.copy_(torch.from_numpy(rng.normal(0, 5, channels)))
            bn.running_var.copy_(torch.from_numpy(rng.uniform(0.1, 9, channels)))
            bn.weight.copy_(torch.from_numpy(rng.normal(0, 2, channels)))
            bn.bias.copy_(torch.from_numpy(rng.normal(0, 2, channels)))
        reference = copy.deepcopy(bn).double().eval()
        z = torch.from_numpy(rng.normal(0, 20, (256, channels)))
        scale, shift = layer.bn_affine()
        with torch.no_grad():
            expected = reference(z)
        got = z * scale + shift
        assert torch.allclose(got, expected, rtol=1e-9, atol=1e-9), (
            f"{name} layer {index}: bn_affine gives {got[0, :4].tolist()}, BatchNorm1d {expected[0, :4].tolist()}"
        )


@pytest.mark.parametrize("name", ["twn-ternary-act", "binary"])
def test_descending_channel_that_never_reaches_a_level(name, tiny_nets, split):
    """A falling channel (negative batch-norm scale) whose code never reaches a level within the
    accumulator range exports with that level's threshold at ``lo - 1`` ("never" for a descending
    channel), and the golden model still equals the PyTorch integer pass."""
    net = copy.deepcopy(tiny_nets[name].net)
    with torch.no_grad():
        for layer in net.layers[:-1]:
            layer.bn.weight[0] = -abs(float(layer.bn.weight[0])) - 0.5  # falling
            layer.bn.bias[0] = -1e6  # and below every level's step on the whole range
            layer.bn.weight[2] = -abs(float(layer.bn.weight[2])) - 0.5  # falling, reaching every level
    model = export_model(net, name)
    for index, record in enumerate(model.layers[:-1]):
        lo, hi = record.accumulator_range()
        assert record.descending[0] and record.descending[2]
        assert (record.thresholds[0] == lo[0] - 1).all(), f"layer {index}: {record.thresholds[0]}, lo {lo[0]}"
    got = GoldenNetwork(model).run(split.x_test)
    expected = net.integer_forward(torch_codes(tiny_nets[name], split.x_test)).numpy()
    assert np.array_equal(got, expected)
    exhaustive_fold_check(net, model)


def test_dprelu_not_monotone_is_refused(tiny_nets):
    net = copy.deepcopy(tiny_nets["binary"].net)
    dprelu = net.layers[0].dprelu
    dprelu.min_slope = None
    with torch.no_grad():
        dprelu.slope_neg[3] = -0.2
    with pytest.raises(ValueError, match=r"layer 0: DPReLU channel 3 has slope_neg = -0.2 <= 0"):
        export_model(net, "binary")


def test_last_layer_needs_one_scale():
    with pytest.raises(ValueError, match=r"the last layer needs one scale for the whole layer"):
        NetworkConfig(8, (16,), (WeightSpec("ternary"), WeightSpec("ternary")), (ActivationSpec("uint"),))


def test_mixed_float_refused():
    with pytest.raises(ValueError, match=r"does not mix float and integer layers"):
        NetworkConfig(
            8, (16,), (WeightSpec("float"), WeightSpec("ternary", granularity="layer")), (ActivationSpec("uint"),)
        )


def test_layer_input_kinds(tiny_nets):
    net = tiny_nets["binary-fatnn-act"].net
    assert [layer_input(net, i) for i in range(3)] == [("uint", 8), ("fatnn", 2), ("fatnn", 2)]


def test_scheme_configs():
    assert scheme_config("binary").weights[-1].kind == "int"
    assert scheme_config("fgq64").weights[0].group_size == 64
    assert scheme_config("nhot3").weights[0].n_terms == 3
    with pytest.raises(ValueError, match=r"scheme must be one of .* not 'ternary'"):
        scheme_config("ternary")


def test_input_codes():
    pixels = np.arange(17)
    assert np.array_equal(input_codes(pixels, 8), pixels)
    assert input_codes(pixels, 4).tolist() == [(2 * 15 * p + 16) // 32 for p in range(17)]
    assert input_codes(pixels, 4).max() == 15 and input_codes(pixels, 1).tolist() == [0] * 8 + [1] * 9
    assert input_scale(8) == 1 / 16 and input_scale(4) == 1 / 15
    with pytest.raises(ValueError, match=r"pixels must lie in 0 .. 16, not 17"):
        input_codes([17], 8)
    with pytest.raises(ValueError, match=r"input bits must be an integer from 1 to 8, not 9"):
        input_codes([1], 9)


def test_split_is_fixed(split):
    from lowbit.sw.train.data import load_digits_split

    again = load_digits_split()
    assert len(split.y_train) == 1437 and len(split.y_test) == 360
    assert np.array_equal(split.x_test, again.x_test) and np.array_equal(split.y_test, again.y_test)
    assert split.x_train.max() == 16 and split.x_train.dtype == np.uint8
