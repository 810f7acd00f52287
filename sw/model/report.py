"""Cost of an exported model, per layer and in total, and ``lowbit report FILE``.

Definitions (per inference of one sample; see ``docs/arithmetic.md``):

- **MACs**: ``in_features * out_features`` of a dense layer; a convolution does that at each of its
  ``OH * OW`` output positions (``in_features = k * k * C``), so ``OH * OW * k * k * C * out``.
- **ACE** (PokeBNN): ``MACs * weight_bits * activation_bits``; a float operand counts 16 bits. Ternary
  weights and activations (TWN, FGQ's ``t``, FATNN's {-1, 0, 1} and {0, 1, 2}) count 2 bits. n-hot counts
  ``n`` (its partial products; a lowbit choice). FGQ adds one ``8 x activation_bits`` multiply per group.
- **CPU64** (Bi-Real / ReActNet): ``FLOPs + BOPs / 64``; a layer's MACs are BOPs when both operands are
  1-bit (binary x binary) and FLOPs otherwise.
- **Weight bits**: storage of the weights at ``ceil(log2(number of values))`` each: 1 binary, 2 ternary,
  b for b-bit, 4/7/8 for 8-bit n-hot with n = 1/2/3, 32 float.
- **Size**: weight bits plus FGQ's Q0.8 group scales, the thresholds (``accumulator bits + 1`` each, the
  range they occupy) and one direction bit per channel; float layers add a float32 scale and shift per channel.
- **Multiplications removed**: FGQ ``1 - 1/N`` (one multiply per group); n-hot 100 % (each product is at
  most n shift-adds; the mean number of terms per weight is reported too).
"""

import math
from dataclasses import asdict, dataclass

from lowbit.sw.kinds import INPUTS, WEIGHTS
from lowbit.sw.kinds.encodings import nhot_term_count, nhot_values, signed_bits

__all__ = ["LayerCost", "ModelCost", "model_cost", "format_report"]


def _bits(rule, layer):
    """A registry bit count: a number, or the name of the layer field that gives it."""
    if rule == "nhot":
        return math.ceil(math.log2(len(nhot_values(layer.n_terms, layer.weight_bits))))
    return {"bits": layer.weight_bits, "n_terms": layer.n_terms}.get(rule, rule)


@dataclass
class LayerCost:
    index: int
    shape: str
    input: str
    weights: str
    macs: int
    weight_bits: int  # per weight, as ACE counts it
    activation_bits: int
    ace: int
    flops: int
    bops: int
    weight_storage_bits: int  # total, all weights of the layer
    aux_bits: int  # alpha_q, thresholds, directions (float: scale, shift)
    accumulator_bits: int
    mults_removed: float | None
    terms_per_weight: float | None


@dataclass
class ModelCost:
    scheme: str
    layers: list

    @property
    def total_macs(self):
        return sum(layer.macs for layer in self.layers)

    @property
    def total_ace(self):
        return sum(layer.ace for layer in self.layers)

    @property
    def total_cpu64(self):
        return sum(layer.flops for layer in self.layers) + sum(layer.bops for layer in self.layers) / 64

    @property
    def total_weight_bits(self):
        return sum(layer.weight_storage_bits for layer in self.layers)

    @property
    def total_size_bits(self):
        return sum(layer.weight_storage_bits + layer.aux_bits for layer in self.layers)

    @property
    def mults_removed(self):
        """Share of all MACs whose multiplication is removed, or ``None`` when no layer removes any."""
        if all(layer.mults_removed is None for layer in self.layers):
            return None
        return sum(layer.macs * (layer.mults_removed or 0) for layer in self.layers) / self.total_macs

    def describe(self):
        """Short per-layer precision, input x weights, such as ``u8 x bin, bin x bin, bin x int8``."""
        return ", ".join(f"{layer.input} x {layer.weights}" for layer in self.layers)

    def to_dict(self):
        return {
            "scheme": self.scheme,
            "layers": [asdict(layer) for layer in self.layers],
            "total": {
                "macs": self.total_macs,
                "ace": self.total_ace,
                "cpu64": self.total_cpu64,
                "weight_bits": self.total_weight_bits,
                "size_bits": self.total_size_bits,
                "mults_removed": self.mults_removed,
            },
        }


def _layer_cost(index, layer):
    macs = layer.positions * layer.in_features * layer.out_features
    kind, out = layer.weight_kind, layer.out_features
    a_info, w_info = INPUTS[layer.input_kind], WEIGHTS[kind]
    a_bits = layer.input_bits if a_info.ace_bits == "bits" else a_info.ace_bits
    w_bits, storage = _bits(w_info.ace_bits, layer), _bits(w_info.storage_bits, layer)
    ace = macs * w_bits * a_bits
    removed, terms = None, None
    aux = 0
    if kind == "fgq":
        groups = macs // layer.group_size
        ace += groups * 8 * a_bits
        removed = 1 - 1 / layer.group_size
        aux += layer.alpha_q.size * 8
    if kind in ("nhot", "int"):
        terms = float(nhot_term_count(layer.weights, layer.weight_bits).mean())
        removed = 1.0 if kind == "nhot" else None
    binary = layer.input_kind == "binary" and kind == "binary"
    if kind == "float":
        acc_bits = 32
        if layer.scale is not None:
            aux += 2 * 32 * out
    else:
        lo, hi = layer.accumulator_range()
        acc_bits = signed_bits(lo.min(), hi.max())
        if layer.thresholds is not None:
            aux += layer.thresholds.size * signed_bits(lo.min() - 1, hi.max() + 1) + out
    short_in = a_info.short.format(bits=layer.input_bits)
    short_w = (
        w_info.short
        or {
            "fgq": f"tern/g{layer.group_size}",
            "int": f"int{layer.weight_bits}",
            "nhot": f"{layer.n_terms}-hot{layer.weight_bits}",
        }[kind]
    )
    if layer.is_conv:
        (height, width, channels), k = layer.input_map, layer.kernel
        shape = f"conv{k}x{k}/{layer.stride} {height}x{width}x{channels}->{'x'.join(map(str, layer.output_map))}"
    else:
        shape = f"{layer.in_features}x{layer.out_features}"
    return LayerCost(
        index,
        shape,
        short_in,
        short_w,
        macs,
        w_bits,
        a_bits,
        ace,
        0 if binary else macs,
        macs if binary else 0,
        layer.in_features * out * storage,
        aux,
        acc_bits,
        removed,
        terms,
    )


def model_cost(model):
    """The :class:`ModelCost` of a :class:`lowbit.sw.model.file.LowbitModel`."""
    return ModelCost(model.scheme, [_layer_cost(i, layer) for i, layer in enumerate(model.layers)])


def format_report(cost):
    """A plain-text table of a :class:`ModelCost`."""
    header = (
        "layer",
        "shape",
        "input x weights",
        "MACs",
        "w bits",
        "a bits",
        "ACE",
        "CPU64",
        "weight bits",
        "aux bits",
        "acc bits",
        "mults removed",
        "terms/w",
    )
    rows = []
    for c in cost.layers:
        rows.append(
            (
                str(c.index),
                c.shape,
                f"{c.input} x {c.weights}",
                f"{c.macs:,}",
                str(c.weight_bits),
                str(c.activation_bits),
                f"{c.ace:,}",
                f"{c.flops + c.bops / 64:,.0f}",
                f"{c.weight_storage_bits:,}",
                f"{c.aux_bits:,}",
                str(c.accumulator_bits),
                "-" if c.mults_removed is None else f"{100 * c.mults_removed:.1f} %",
                "-" if c.terms_per_weight is None else f"{c.terms_per_weight:.2f}",
            )
        )
    removed = cost.mults_removed
    rows.append(
        (
            "total",
            "",
            "",
            f"{cost.total_macs:,}",
            "",
            "",
            f"{cost.total_ace:,}",
            f"{cost.total_cpu64:,.0f}",
            f"{cost.total_weight_bits:,}",
            f"{cost.total_size_bits - cost.total_weight_bits:,}",
            "",
            "-" if removed is None else f"{100 * removed:.1f} %",
            "",
        )
    )
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "  ".join(v.rjust(w) if i >= 3 else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths)))
    text = [
        f"scheme {cost.scheme}: {cost.total_macs:,} MACs, ACE {cost.total_ace:,}, CPU64 {cost.total_cpu64:,.0f}, "
        f"model size {cost.total_size_bits:,} bits ({cost.total_size_bits / 8192:.1f} KiB)",
        line(header),
        line(["-" * w for w in widths]),
    ]
    text += [line(r) for r in rows]
    return "\n".join(text)
