"""The quantized MLP of the main job (64 inputs -> hidden layers -> 10), its per-layer configuration and
the integer forward pass that export and the golden model must reproduce exactly.

A hidden layer is ``linear -> batch-norm -> [DPReLU] -> activation quantizer``; the last layer is a bare
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

import torch
from torch import nn
from torch.nn import functional as F

from lowbit.sw.kinds import InputKind, WeightKind
from lowbit.sw.model.inputs import input_scale
from lowbit.sw.train import quant
from lowbit.sw.train.data import CLASSES, FEATURES

__all__ = ["WeightSpec", "ActivationSpec", "NetworkConfig", "QuantLayer", "QuantMLP", "WEIGHT_KINDS"]

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
class NetworkConfig:
    """Per-layer precision: ``input_bits`` (0 = float input), hidden widths, one :class:`WeightSpec` per layer
    and one :class:`ActivationSpec` per hidden layer (the output of layer ``l``, the input of ``l + 1``)."""

    input_bits: int
    hidden: tuple
    weights: tuple
    activations: tuple
    name: str = "custom"

    def __post_init__(self):
        if len(self.weights) != len(self.hidden) + 1:
            raise ValueError(
                f"{len(self.hidden)} hidden layers need {len(self.hidden) + 1} weight specs, not {len(self.weights)}"
            )
        if len(self.activations) != len(self.hidden):
            raise ValueError(
                f"{len(self.hidden)} hidden layers need {len(self.hidden)} activation specs, "
                f"not {len(self.activations)}"
            )
        for width in self.hidden:
            if isinstance(width, bool) or not isinstance(width, int) or width < 1:
                raise ValueError(f"hidden widths must be positive integers, not {width!r}")
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
    def widths(self):
        return (FEATURES,) + tuple(self.hidden) + (CLASSES,)

    def replace(self, **changes):
        return replace(self, **changes)


class QuantLayer(nn.Module):
    """One layer: ``z = linear(x, fake_quant(W))``, then ``out_quant(dprelu(bn(z)))`` (hidden layers) or
    ``z * logit_scale`` (the last layer)."""

    def __init__(self, in_features, out_features, weight_spec, activation_spec=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
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
            self.bn = nn.BatchNorm1d(out_features)
            self.dprelu = quant.DPReLU(out_features) if activation_spec.dprelu else None
            self.out_quant = activation_spec.quantizer()

    def forward(self, x):
        z = F.linear(x, self.weight_quant(self.weight))
        if self.last:
            return z * torch.exp(self.log_logit_scale)
        z = self.bn(z)
        if self.dprelu is not None:
            z = self.dprelu(z)
        return self.out_quant(z)

    def integer_weight(self):
        """The :class:`lowbit.sw.train.quant.IntegerWeight` export writes and the integer pass computes with."""
        return self.weight_quant.integer(self.weight)

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
    """The MLP of :class:`NetworkConfig`. Inputs are pixel *codes* ``(batch, 64)`` (a float tensor of integers)."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        widths = config.widths
        layers = []
        for index, spec in enumerate(config.weights):
            act = config.activations[index] if index < len(config.hidden) else None
            layers.append(QuantLayer(widths[index], widths[index + 1], spec, act))
        self.layers = nn.ModuleList(layers)

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
        values = codes
        for index, layer in enumerate(self.layers):
            record["codes"].append(codes.to(torch.int64))
            iw = layer.integer_weight()
            acc = values @ iw.effective().T  # exact: integers far below 2**53
            record["accumulators"].append(acc.to(torch.int64))
            if layer.last:
                break
            codes = layer.fold_code(acc, steps[index])
            values = layer.out_quant.value(codes)
        return record if trace else record["accumulators"][-1]

    def _float_forward(self, codes, trace):
        x = torch.as_tensor(codes, dtype=torch.float64) * self.input_step()
        record = {"codes": [], "accumulators": []}
        for layer in self.layers:
            record["codes"].append(x)
            z = x @ layer.weight.detach().double().T
            record["accumulators"].append(z)
            if layer.last:
                break
            scale, shift = layer.bn_affine()
            x = torch.relu(z * scale + shift)
        return record if trace else record["accumulators"][-1]
