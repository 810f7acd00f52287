"""Export a trained :class:`lowbit.sw.train.mlp.QuantMLP` to a :class:`lowbit.sw.model.file.LowbitModel`.

Weights become integers (:meth:`QuantLayer.integer_weight`). Batch-norm, DPReLU and the next activation
quantizer of each hidden layer fold into per-channel integer thresholds: ``T_i`` is the exact integer
accumulator at which :meth:`QuantLayer.fold_code` (a monotone float64 function of the accumulator)
reaches code ``i``, found by bisection over the accumulator's reachable range. A negative batch-norm
scale makes the function fall, and the channel is marked ``descending`` (``out = sum_i [acc <= T_i]``).
Thresholds that no reachable accumulator crosses sit just outside the range (``lo - 1`` or ``hi + 1``).

A convolution has no descending channel: export negates the weights of such a channel (every weight
kind is symmetric) and its thresholds, ``acc <= T`` being ``-acc >= -T``, so that each channel's code rises
with its accumulator and max-pooling the codes is max-pooling the accumulators (``docs/conv.md``).
"""

import numpy as np
import torch

from lowbit.sw.kinds import WEIGHTS
from lowbit.sw.kinds.encodings import accumulator_range
from lowbit.sw.model.file import LayerRecord, LowbitModel, validate_model
from lowbit.sw.train.quant import DPReLU, FatnnActivation

__all__ = ["export_model", "fold_thresholds", "layer_input"]


def layer_input(net, index):
    """``(kind, bits)`` of the input activation of layer ``index`` of ``net``."""
    return net.layer_input(index)


def _check_foldable(index, layer):
    """The folded function must be monotone: positive DPReLU slopes and quantizer parameters."""
    if isinstance(layer.dprelu, DPReLU):
        for name, slope in zip(("slope_pos", "slope_neg"), layer.dprelu.slopes()):
            slope = slope.detach()
            if (slope <= 0).any():
                channel = int(torch.nonzero(slope <= 0)[0])
                raise ValueError(
                    f"layer {index}: DPReLU channel {channel} has {name} = {float(slope[channel]):.4g} "
                    "<= 0, so the activation is not monotone and cannot fold into thresholds"
                )
    quantizer = layer.out_quant
    if isinstance(quantizer, FatnnActivation):
        for name in ("alpha0", "alpha1"):
            if not float(getattr(quantizer, name)) > 0:
                raise ValueError(
                    f"layer {index}: FATNN activation {name} = {float(getattr(quantizer, name))} must be positive"
                )
    if isinstance(getattr(quantizer, "clip", None), torch.Tensor) and not float(quantizer.clip) > 0:
        raise ValueError(f"layer {index}: activation clip = {float(quantizer.clip)} must be positive")


def fold_thresholds(layer, input_step, lo, hi):
    """Integer thresholds ``(C, levels - 1)`` and ``descending`` ``(C,)`` equal to ``layer.fold_code`` on
    ``lo .. hi``: for every integer accumulator in range, ``multithreshold(acc, T, descending)`` equals
    ``fold_code(acc)``. Ascending rows are non-decreasing, descending rows non-increasing."""
    levels = layer.out_quant.levels
    bn_scale, _ = layer.bn_affine()
    descending = (bn_scale * layer.acc_scale(input_step) < 0).numpy()
    count = levels - 1
    level = torch.arange(1, levels, dtype=torch.float64)[:, None]  # (L-1, 1)
    lo = np.broadcast_to(np.asarray(lo, dtype=np.int64), (count, len(descending))).copy()
    hi = np.broadcast_to(np.asarray(hi, dtype=np.int64), (count, len(descending))).copy()
    desc = np.broadcast_to(descending, lo.shape)

    def reaches(acc):
        return (layer.fold_code(torch.from_numpy(acc).double(), input_step) >= level).numpy()

    # Ascending: the least t in [lo, hi + 1] with code(t) >= i (hi + 1 stands for "never").
    # Descending: the greatest t in [lo - 1, hi] with code(t) >= i (lo - 1 stands for "never").
    left = np.where(desc, lo - 1, lo)
    right = np.where(desc, hi, hi + 1)
    while (left < right).any():
        mid = np.where(desc, (left + right + 1) // 2, (left + right) // 2)
        ok = reaches(mid)
        active = left < right
        left = np.where(active & desc & ok, mid, left)
        right = np.where(active & desc & ~ok, mid - 1, right)
        right = np.where(active & ~desc & ok, mid, right)
        left = np.where(active & ~desc & ~ok, mid + 1, left)
    thresholds = left
    # Self-check: the code is reached at each threshold and not one step before (within range).
    inside = np.where(desc, thresholds >= lo, thresholds <= hi)
    before = np.where(desc, thresholds + 1, thresholds - 1)
    before_inside = np.where(desc, before <= hi, before >= lo)
    if (
        not (reaches(np.clip(thresholds, lo, hi)) | ~inside).all()
        or (reaches(np.clip(before, lo, hi)) & before_inside).any()
    ):
        raise RuntimeError("the folded activation is not monotone in the accumulator")
    return thresholds.T.copy(), descending.copy()


@torch.no_grad()
def export_model(net, scheme, metadata=None):
    """The :class:`LowbitModel` of a trained network (evaluated in eval mode: batch-norm running statistics)."""
    was_training = net.training
    net.eval()
    try:
        layers = _float_layers(net) if net.is_float else _integer_layers(net)
    finally:
        net.train(was_training)
    model = LowbitModel(scheme, net.layers[-1].out_features, layers, dict(metadata or {}))
    validate_model(model)
    return model


def _set_conv(record, conv):
    """A convolution's geometry (a :class:`lowbit.sw.model.conv.ConvShape`, or None) into its record."""
    if conv is not None:
        record.kernel, record.stride, record.padding = conv.kernel, conv.stride, conv.padding
        record.pool, record.input_map = conv.pool, tuple(conv.input_map)


def _rise(record):
    """Turn each descending channel of ``record`` into an ascending one: ``-w`` and ``-T``."""
    flip = record.descending.astype(bool)
    record.weights[flip] = -record.weights[flip]
    record.thresholds[flip] = -record.thresholds[flip]  # a non-increasing row becomes non-decreasing
    record.descending = np.zeros_like(record.descending)


def _float_layers(net):
    layers = []
    for layer in net.layers:
        record = LayerRecord(
            layer.in_features,
            layer.out_features,
            "float",
            32,
            "float",
            32,
            "accumulator" if layer.last else "relu",
            layer.weight.detach().float().numpy().copy(),
        )
        if not layer.last:
            scale, shift = layer.bn_affine()
            record.scale, record.shift = scale.numpy(), shift.numpy()
        _set_conv(record, layer.conv)
        layers.append(record)
    return layers


def _weight_bits(layer):
    quantizer = layer.weight_quant
    low, high = WEIGHTS[quantizer.kind].bits
    return low if low == high else quantizer.bits


def _integer_layers(net):
    layers = []
    steps = net.input_steps()
    for index, layer in enumerate(net.layers):
        iw = layer.integer_weight()
        conv = layer.conv
        input_kind, input_bits = layer_input(net, index)
        quantizer = layer.weight_quant
        record = LayerRecord(
            layer.in_features,
            layer.out_features,
            quantizer.kind,
            _weight_bits(layer),
            input_kind,
            input_bits,
            "accumulator" if layer.last else "threshold",
            iw.values.numpy().astype(np.int8),
            n_terms=getattr(quantizer, "n_terms", 0) if quantizer.kind == "nhot" else 0,
            group_size=quantizer.group_size if quantizer.kind == "fgq" else 0,
        )
        _set_conv(record, conv)
        if iw.alpha_q is not None:
            record.alpha_q = iw.alpha_q.numpy().astype(np.uint8)
        if layer.last:
            if iw.scale.numel() != 1 or not float(iw.scale) > 0:
                raise ValueError(
                    f"layer {index}: the last layer needs one positive scale for the layer, "
                    f"not {iw.scale.numel()} scales"
                )
        else:
            _check_foldable(index, layer)
            lo, hi = accumulator_range(iw.effective().numpy(), input_kind, input_bits)
            record.thresholds, record.descending = fold_thresholds(layer, steps[index], lo, hi)
            record.output_levels = layer.out_quant.levels
            if conv is not None:
                _rise(record)
        layers.append(record)
    return layers
