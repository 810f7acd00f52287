"""The quantized network of the main job (64 inputs -> [convolutions] -> hidden layers -> 10), its per-layer
configuration and the integer forward pass that export and the golden model must reproduce exactly.

A hidden layer is ``linear -> batch-norm -> [DPReLU] -> activation quantizer``; a convolution is the same
with a ``k x k`` convolution in place of the linear map (its input padded with the code
:func:`lowbit.sw.kinds.encodings.pad_code`, the value the golden model pads with) and ``max-pooling`` after
the quantizer (on codes, see :mod:`lowbit.sw.model.conv`). Between layers the activations travel
flattened in HWC order, as the model file and the golden model keep them. The last layer is a bare
linear layer (no bias, one positive scale for the whole layer), so its raw integer accumulator has the
argmax of the float logits. The input of layer 0 is the unsigned k-bit pixel codes of
:func:`lowbit.sw.model.inputs.input_codes`.

Two forward passes:

- :meth:`QuantMLP.forward` (training, float32, fake-quantized, straight-through gradients);
- :meth:`QuantMLP.integer_forward`: integer weights and activation codes, exact integer accumulators,
  and each hidden layer's output code from :meth:`QuantLayer.fold_code`, the float64 function of the
  integer accumulator ``quantizer(activation(batchnorm(acc * acc_scale)))`` that export turns into
  integer thresholds. The golden model on an exported file equals this pass exactly.
"""

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from lowbit.sw.kinds import InputKind, WeightKind
from lowbit.sw.kinds.encodings import activation_values, pad_code
from lowbit.sw.model.conv import ConvShape, pooled_rows, window_rows
from lowbit.sw.model.inputs import input_scale
from lowbit.sw.train import quant
from lowbit.sw.train.data import CLASSES, FEATURES, IMAGE_MAP

__all__ = ["WeightSpec", "ActivationSpec", "ConvSpec", "NetworkConfig", "QuantLayer", "QuantMLP", "WEIGHT_KINDS"]

WEIGHT_KINDS = tuple(str(kind) for kind in WeightKind)
HIDDEN_ACTIVATIONS = tuple(str(kind) for kind in InputKind)


@dataclass(frozen=True)
class WeightSpec:
    """Weights of one layer. ``kind`` in :data:`WEIGHT_KINDS`; ``bits`` for ``int``/``nhot``; ``n_terms`` for
    ``nhot``; ``group_size`` for ``fgq``; ``granularity`` of the scale (``channel`` or ``layer``), ``k`` and
    ``method`` for TWN/FGQ."""

    kind: str
    bits: int = 8
    n_terms: int = 2
    group_size: int = 4
    granularity: str = "channel"
    k: float = 0.7
    method: str = "threshold"

    def __post_init__(self):
        if self.kind not in WEIGHT_KINDS:
            raise ValueError(f"weight kind must be one of {', '.join(WEIGHT_KINDS)}, not {self.kind!r}")

    def quantizer(self):
        if self.kind == "float":
            return quant.FloatWeight()
        if self.kind == "binary":
            return quant.BinaryWeight(self.granularity)
        if self.kind == "ternary":
            return quant.TernaryWeight(self.k, self.granularity, self.method)
        if self.kind == "fatnn":
            return quant.FatnnWeight()
        if self.kind == "fgq":
            return quant.FGQWeight(self.group_size, self.k, self.method)
        if self.kind == "int":
            return quant.UniformWeight(self.bits, self.granularity)
        return quant.NHotWeight(self.n_terms, self.bits, self.granularity)


@dataclass(frozen=True)
class ActivationSpec:
    """A hidden activation: ``kind`` an input kind of :mod:`lowbit.sw.kinds` (``float binary ternary fatnn uint
    int``); ``bits`` for ``uint`` and ``int``;
    ``B`` the binarizer's clip bound; ``clip`` the initial PACT clip; ``dprelu`` puts PokeBNN's DPReLU
    between batch-norm and the quantizer."""

    kind: str
    bits: int = 4
    B: float = 3.0
    clip: float = 3.0
    dprelu: bool = False

    def __post_init__(self):
        if self.kind not in HIDDEN_ACTIVATIONS:
            raise ValueError(f"activation kind must be one of {', '.join(HIDDEN_ACTIVATIONS)}, not {self.kind!r}")

    def quantizer(self):
        return quant.ACTIVATION_QUANTIZERS[self.kind](self)


@dataclass(frozen=True)
class ConvSpec:
    """A ``kernel x kernel`` convolution of ``channels`` outputs, ``stride``, ``padding`` taps on each side
    and ``pool x pool`` max-pooling (1: none) after its activation."""

    channels: int
    kernel: int = 3
    stride: int = 1
    padding: int = 1
    pool: int = 1

    def __post_init__(self):
        for name, low in (("channels", 1), ("kernel", 1), ("stride", 1), ("padding", 0), ("pool", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"convolution {name} must be an integer of at least {low}, not {value!r}")
        if self.padding >= self.kernel or self.stride > self.kernel:
            raise ValueError(
                f"a {self.kernel}x{self.kernel} convolution takes padding 0 .. {self.kernel - 1} and stride "
                f"1 .. {self.kernel}, not padding {self.padding} and stride {self.stride}"
            )


@dataclass(frozen=True)
class NetworkConfig:
    """Per-layer precision: ``input_bits`` (0 = float input), ``convs`` (:class:`ConvSpec`, first), hidden
    widths, one :class:`WeightSpec` per layer and one :class:`ActivationSpec` per convolution and hidden
    layer (the output of layer ``l``, the input of ``l + 1``)."""

    input_bits: int
    hidden: tuple
    weights: tuple
    activations: tuple
    name: str = "custom"
    convs: tuple = ()

    def __post_init__(self):
        inner = len(self.convs) + len(self.hidden)
        what = (
            f"{len(self.convs)} convolutions and {len(self.hidden)} hidden layers"
            if self.convs
            else (f"{len(self.hidden)} hidden layers")
        )
        if len(self.weights) != inner + 1:
            raise ValueError(f"{what} need {inner + 1} weight specs, not {len(self.weights)}")
        if len(self.activations) != inner:
            raise ValueError(f"{what} need {inner} activation specs, not {len(self.activations)}")
        for width in self.hidden:
            if isinstance(width, bool) or not isinstance(width, int) or width < 1:
                raise ValueError(f"hidden widths must be positive integers, not {width!r}")
        for spec in self.convs:
            if not isinstance(spec, ConvSpec):
                raise ValueError(f"convs must be ConvSpec entries, not {spec!r}")
        for index, (spec, shape) in enumerate(zip(self.convs, self.conv_shapes)):
            if min(shape.output_map[:2]) < 1:
                height, width, _ = shape.input_map
                raise ValueError(
                    f"convolution {index} ({spec.kernel}x{spec.kernel}, padding {spec.padding}, stride "
                    f"{spec.stride}, pooling {spec.pool}) leaves nothing of its {height}x{width} input map"
                )
        if self.input_bits != 0 and not (isinstance(self.input_bits, int) and 1 <= self.input_bits <= 8):
            raise ValueError(f"input_bits must be 0 (float) or an integer from 1 to 8, not {self.input_bits!r}")
        floats = [spec.kind == "float" for spec in self.weights + self.activations]
        if any(floats) and not (all(floats) and self.input_bits == 0):
            raise ValueError(
                "a float network has float weights, float activations and input_bits 0 throughout; "
                "lowbit does not mix float and integer layers"
            )
        if self.input_bits == 0 and not all(floats):
            raise ValueError("input_bits 0 (float input) needs float weights and activations throughout")
        last = self.weights[-1]
        if last.kind in ("binary", "ternary", "int", "nhot") and last.granularity != "layer":
            raise ValueError(
                "the last layer needs one scale for the whole layer (granularity='layer'), so that "
                "the argmax of its raw integer accumulator is the argmax of the logits"
            )

    @property
    def conv_shapes(self):
        """The :class:`ConvShape` of each convolution, from the digit's map (:data:`IMAGE_MAP`) on."""
        shapes, input_map = [], IMAGE_MAP
        for spec in self.convs:
            shapes.append(ConvShape(input_map, spec.kernel, spec.stride, spec.padding, spec.pool, spec.channels))
            input_map = shapes[-1].output_map
        return tuple(shapes)

    @property
    def widths(self):
        """Inputs of the first dense layer (the last map flattened, or the 64 pixels), the hidden widths
        and the classes."""
        first = int(np.prod(self.conv_shapes[-1].output_map)) if self.convs else FEATURES
        return (first,) + tuple(self.hidden) + (CLASSES,)

    def replace(self, **changes):
        return replace(self, **changes)


class QuantLayer(nn.Module):
    """One layer: ``z = linear(x, fake_quant(W))``, then ``out_quant(dprelu(bn(z)))`` (hidden layers) or
    ``z * logit_scale`` (the last layer).

    With ``conv`` (a :class:`ConvShape`) the layer is a convolution: ``W`` is the ``(out, k * k * C)``
    matrix of the model file (``(ky, kx, c)`` order), applied to every window of the input map padded
    with ``pad_value``, and its output is max-pooled; ``x`` is the map flattened in HWC order.
    """

    def __init__(self, in_features, out_features, weight_spec, activation_spec=None, conv=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.conv, self.pad_value = conv, 0.0  # the network sets a convolution's pad value (QuantMLP)
        self.weight_spec, self.activation_spec = weight_spec, activation_spec
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        self.weight_quant = weight_spec.quantizer()
        if isinstance(self.weight_quant, quant.FatnnWeight):
            self.weight_quant.init_from(self.weight)
        self.last = activation_spec is None
        if self.last:
            # A positive temperature for training the softmax; it does not change the argmax.
            self.log_logit_scale = nn.Parameter(torch.tensor(0.0), requires_grad=weight_spec.kind != "float")
        else:
            self.bn = nn.BatchNorm1d(out_features) if conv is None else nn.BatchNorm2d(out_features)
            self.dprelu = quant.DPReLU(out_features) if activation_spec.dprelu else None
            self.out_quant = activation_spec.quantizer()

    def forward(self, x):
        w = self.weight_quant(self.weight)
        if self.conv is None:
            z = F.linear(x, w)
        else:
            (height, width, channels), k, p = self.conv.input_map, self.conv.kernel, self.conv.padding
            maps = x.reshape(len(x), height, width, channels).permute(0, 3, 1, 2)
            maps = F.pad(maps, (p, p, p, p), value=self.pad_value)
            z = F.conv2d(
                maps, w.reshape(self.out_features, k, k, channels).permute(0, 3, 1, 2), stride=self.conv.stride
            )
        if self.last:
            return z * torch.exp(self.log_logit_scale)
        z = self.bn(z)
        if self.dprelu is not None:
            z = self.dprelu(z) if self.conv is None else self.dprelu(z.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        y = self.out_quant(z)
        if self.conv is not None:
            y = F.max_pool2d(y, self.conv.pool) if self.conv.pool > 1 else y
            y = y.permute(0, 2, 3, 1).reshape(len(x), -1)
        return y

    def integer_weight(self):
        """The :class:`lowbit.sw.train.quant.IntegerWeight` export writes and the integer pass computes with."""
        return self.weight_quant.integer(self.weight)

    def float_output(self, z):
        """A float (fp32) hidden layer's output in float64: ``relu(bn(z))`` (channels on the last axis)."""
        scale, shift = self.bn_affine()
        return torch.relu(z * scale + shift)

    def bn_affine(self):
        """Eval-mode batch-norm as float64 ``(scale, shift)``: ``bn(z) = z * scale + shift``."""
        bn = self.bn
        scale = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)
        shift = bn.bias.detach().double() - bn.running_mean.double() * scale
        return scale, shift

    def acc_scale(self, input_step):
        """Real value of one accumulator step per output channel: input step times weight scale (float64)."""
        scale = self.integer_weight().scale
        return (torch.as_tensor(input_step, dtype=torch.float64) * scale).expand(self.out_features)

    def fold_code(self, acc, input_step):
        """Output code of a hidden layer as a float64 function of integer accumulators ``(..., out_features)``.

        ``code = out_quant.code(dprelu(acc * acc_scale * bn_scale + bn_shift))``: monotone in ``acc`` (rising
        where the batch-norm scale is positive, falling where negative), so it folds into thresholds.
        """
        with torch.no_grad():
            scale, shift = self.bn_affine()
            z = torch.as_tensor(acc, dtype=torch.float64) * self.acc_scale(input_step) * scale + shift
            if self.dprelu is not None:
                z = self.dprelu(z)
            return self.out_quant.code(z)


class QuantMLP(nn.Module):
    """The network of :class:`NetworkConfig` (an MLP, or convolutions then dense layers). Inputs are pixel
    *codes* ``(batch, 64)`` (a float tensor of integers)."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        shapes, widths = config.conv_shapes, config.widths
        inner = len(config.activations)
        layers = []
        for index, spec in enumerate(config.weights):
            act = config.activations[index] if index < inner else None
            if index < len(shapes):
                shape = shapes[index]
                layer = QuantLayer(shape.taps, shape.channels, spec, act, conv=shape)
            else:
                dense = index - len(shapes)
                layer = QuantLayer(widths[dense], widths[dense + 1], spec, act)
            layers.append(layer)
        self.layers = nn.ModuleList(layers)
        steps = self.input_steps()
        for index, layer in enumerate(self.layers):
            if layer.conv is not None and not self.is_float:
                kind, bits = self.layer_input(index)
                layer.pad_value = float(activation_values(pad_code(kind, bits), kind, bits)) * float(steps[index])

    def layer_input(self, index):
        """``(kind, bits)`` of the input activation of layer ``index``."""
        if index == 0:
            return self.input_kind()
        quantizer = self.layers[index - 1].out_quant
        return quantizer.kind, quantizer.bits

    @property
    def is_float(self):
        return self.config.input_bits == 0

    def input_step(self):
        return 1.0 / 16 if self.is_float else input_scale(self.config.input_bits)

    def input_kind(self):
        return ("float", 32) if self.is_float else ("uint", self.config.input_bits)

    def forward(self, codes):
        x = codes * self.input_step()
        for layer in self.layers:
            x = layer(x)
        return x

    def input_steps(self):
        """Real value of one integer step of each layer's input activation."""
        steps = [self.input_step()]
        for layer in self.layers[:-1]:
            steps.append(layer.out_quant.scale() if not self.is_float else 1.0)
        return steps

    @torch.no_grad()
    def integer_forward(self, codes, trace=False):
        """The integer pass. Returns the last layer's accumulators (``int64``), or with ``trace`` a dict of
        per-layer lists ``codes`` (each layer's input codes), ``accumulators``.

        A float (``fp32``) network runs the same structure in float64 and returns float64 logits.
        """
        if self.is_float:
            return self._float_forward(codes, trace)
        codes = torch.as_tensor(codes, dtype=torch.float64)
        steps = self.input_steps()
        record = {"codes": [], "accumulators": []}
        for index, layer in enumerate(self.layers):
            record["codes"].append(codes.to(torch.int64))
            kind, bits = self.layer_input(index)
            taps = _taps(layer, codes, pad_code(kind, bits))
            values = taps if index == 0 else self.layers[index - 1].out_quant.value(taps)
            iw = layer.integer_weight()
            acc = values @ iw.effective().T  # exact: integers far below 2**53
            record["accumulators"].append(acc.reshape(len(codes), -1).to(torch.int64))
            if layer.last:
                break
            codes = _pooled(layer, layer.fold_code(acc, steps[index]), len(codes))
        return record if trace else record["accumulators"][-1]

    def _float_forward(self, codes, trace):
        x = torch.as_tensor(codes, dtype=torch.float64) * self.input_step()
        record = {"codes": [], "accumulators": []}
        for layer in self.layers:
            record["codes"].append(x)
            z = _taps(layer, x, 0.0) @ layer.weight.detach().double().T
            record["accumulators"].append(z.reshape(len(x), -1))
            if layer.last:
                break
            x = _pooled(layer, layer.float_output(z), len(x))
        return record if trace else record["accumulators"][-1]


def _taps(layer, x, pad):
    """``x`` ``(batch, features)`` itself for a dense layer; a convolution's
    :func:`lowbit.sw.model.conv.window_rows`, padded with ``pad``."""
    return x if layer.conv is None else torch.from_numpy(window_rows(layer.conv, x.numpy(), pad))


def _pooled(layer, y, batch):
    """A layer's output per image: ``y`` itself for a dense layer; a convolution's
    :func:`lowbit.sw.model.conv.pooled_rows`."""
    return y if layer.conv is None else torch.from_numpy(pooled_rows(layer.conv, y.numpy(), batch))
