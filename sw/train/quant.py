"""Quantizers for quantization-aware training of the five seed schemes (PyTorch).

Each quantizer is a small ``nn.Module`` whose parameters carry the paper's names. Forward computes the
quantized value; backward is the straight-through estimator of the scheme's paper (docs/arithmetic.md).

*Activation quantizers* map a pre-activation ``x`` to ``value(code(x)) * scale``:

- :meth:`code` gives the integer code a threshold unit emits (``0 .. levels - 1``), without gradient,
  in the dtype of ``x`` (export evaluates it in float64 on exact integer accumulators);
- :meth:`value` maps codes to the integers that enter the next dot product
  (see :func:`lowbit.sw.kinds.encodings.activation_values`);
- :meth:`scale` is the real value of one integer step.

*Weight quantizers* map a float weight matrix ``(out, in)`` to fake-quantized weights;
:meth:`integer` returns the :class:`IntegerWeight` that export writes and the integer model computes with:
``fake_quant(W) == values * scale`` (``scale`` per output channel or per layer; FGQ also has ``alpha_q``).
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lowbit.sw.kinds.encodings import nhot_nearest

__all__ = [
    "round_ste",
    "BinaryActivation",
    "TernaryActivation",
    "FatnnActivation",
    "UniformActivation",
    "SignedActivation",
    "FloatActivation",
    "ACTIVATION_QUANTIZERS",
    "DPReLU",
    "IntegerWeight",
    "FloatWeight",
    "BinaryWeight",
    "TernaryWeight",
    "FatnnWeight",
    "UniformWeight",
    "NHotWeight",
    "FGQWeight",
    "twn_ternarize",
    "fgq_alpha_scale",
]


def round_ste(x):
    """``round(x)`` forward (half to even, as ``torch.round``), identity gradient."""
    return x + (torch.round(x) - x).detach()


def _straight_through(x, y, mask=None):
    """Value ``y``; gradient with respect to ``x`` is 1 (or ``mask``) and none flows into ``y``."""
    passing = x if mask is None else x * mask
    return passing - passing.detach() + y.detach()


def _check_positive(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
        raise ValueError(f"{name} must be a positive number, not {value!r}")
    return float(value)


def _check_bits(bits, low=1, high=8, name="bits"):
    if isinstance(bits, bool) or not isinstance(bits, int) or not low <= bits <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, not {bits!r}")
    return bits


def _check_choice(value, choices, name):
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, not {value!r}")
    return value


# --- activations ------------------------------------------------------------------------------------------


class BinaryActivation(nn.Module):
    """PokeBNN's activation binarizer: ``y = B * (floor(clip(x / B, -(1 - 2**-7), 1 - 2**-7)) + 0.5)`` = ±B/2.

    ``x >= 0`` gives +B/2 (code 1, value +1). The straight-through gradient passes only where
    ``|x| < B * (1 - 2**-7)``. ``B`` is the clipping bound the paper tunes (lowbit default 3.0).
    """

    kind, bits, levels = "binary", 1, 2
    CLIP = 1 - 2**-7

    def __init__(self, B=3.0):
        super().__init__()
        self.B = _check_positive(B, "B")

    def _half(self, x):
        return torch.floor(torch.clamp(x / self.B, -self.CLIP, self.CLIP)) + 0.5

    def code(self, x):
        with torch.no_grad():
            return (self._half(x) > 0).to(x.dtype)

    def value(self, code):
        return 2 * code - 1

    def scale(self):
        return torch.tensor(self.B / 2, dtype=torch.float64)

    def forward(self, x):
        mask = (x.abs() < self.B * self.CLIP).to(x.dtype)
        return _straight_through(x, self.B * self._half(x), mask)


class TernaryActivation(nn.Module):
    """Symmetric ternary activations: ``y = scale * round(clamp(x / scale, -1, 1))`` in {-scale, 0, +scale}.

    The thresholds are ``±scale / 2`` (a tie rounds to 0); code ``c`` means ``c - 1``. The gradient
    passes where ``|x| < scale``. A lowbit addition for ternary-by-ternary layers, not one of the seeds.
    """

    kind, bits, levels = "ternary", 2, 3

    def __init__(self, scale=1.0):
        super().__init__()
        self.step = _check_positive(scale, "scale")

    def code(self, x):
        with torch.no_grad():
            return torch.round(torch.clamp(x / self.step, -1, 1)) + 1

    def value(self, code):
        return code - 1

    def scale(self):
        return torch.tensor(self.step, dtype=torch.float64)

    def forward(self, x):
        mask = (x.abs() < self.step).to(x.dtype)
        return _straight_through(x, self.step * torch.round(torch.clamp(x / self.step, -1, 1)), mask)


class FatnnActivation(nn.Module):
    """FATNN's activation quantizer with learned ``alpha0``, ``alpha1`` (both kept positive):
    ``y = round(clamp(x * alpha0, 0, 1)) + round(clamp((x - 1/alpha0) * alpha1, 0, 1))`` in {0, 1, 2}.

    Rounding is straight-through; each clamp passes gradient only inside its range. Code = value = ``y``.
    """

    kind, bits, levels = "fatnn", 2, 3

    def __init__(self, alpha0=1.0, alpha1=1.0):
        super().__init__()
        self.alpha0 = nn.Parameter(torch.tensor(_check_positive(alpha0, "alpha0")))
        self.alpha1 = nn.Parameter(torch.tensor(_check_positive(alpha1, "alpha1")))

    def _y(self, x, rounding):
        a0, a1 = self.alpha0.to(x.dtype), self.alpha1.to(x.dtype)
        return rounding(torch.clamp(x * a0, 0, 1)) + rounding(torch.clamp((x - 1 / a0) * a1, 0, 1))

    def code(self, x):
        with torch.no_grad():
            return self._y(x, torch.round)

    def value(self, code):
        return code

    def scale(self):
        return torch.tensor(1.0, dtype=torch.float64)

    def forward(self, x):
        return self._y(x, round_ste)


class UniformActivation(nn.Module):
    """Unsigned uniform k-bit activations (PACT): ``code = round(min(relu(x), clip) * L / clip)``, ``L = 2**k - 1``.

    ``y = code * clip / L``. The straight-through gradient passes for ``0 < x < clip``; ``clip`` is learned
    (PACT) unless ``learn_clip=False`` (post-training calibration, as FGQ uses).
    """

    kind = "uint"

    def __init__(self, bits, clip=3.0, learn_clip=True):
        super().__init__()
        self.bits = _check_bits(bits, name="k")
        self.levels = 1 << bits
        self.clip = nn.Parameter(torch.tensor(_check_positive(clip, "clip")), requires_grad=learn_clip)

    def _scaled(self, x):
        clip = self.clip.to(x.dtype)
        return torch.minimum(torch.relu(x), clip) * ((self.levels - 1) / clip)

    def code(self, x):
        with torch.no_grad():
            return torch.round(self._scaled(x))

    def value(self, code):
        return code

    def scale(self):
        return self.clip.detach().double() / (self.levels - 1)

    def forward(self, x):
        return round_ste(self._scaled(x)) * (self.clip / (self.levels - 1))


class SignedActivation(nn.Module):
    """Symmetric signed k-bit activations: ``code = round(clamp(x, -clip, clip) * H / clip) + H`` with
    ``H = 2**(k-1) - 1``, so ``2**k - 1`` codes whose values ``code - H`` run over ``-H .. H``.

    ``y = (code - H) * clip / H``. The straight-through gradient passes for ``|x| < clip``; ``clip`` is
    learned (as PACT learns its upper bound) unless ``learn_clip=False``. No ReLU: for networks whose
    hidden activations keep their sign.
    """

    kind = "int"

    def __init__(self, bits, clip=3.0, learn_clip=True):
        super().__init__()
        self.bits = _check_bits(bits, low=2, name="k")
        self.half = (1 << (bits - 1)) - 1
        self.levels = 2 * self.half + 1
        self.clip = nn.Parameter(torch.tensor(_check_positive(clip, "clip")), requires_grad=learn_clip)

    def _scaled(self, x):
        clip = self.clip.to(x.dtype)
        return torch.maximum(torch.minimum(x, clip), -clip) * (self.half / clip)

    def code(self, x):
        with torch.no_grad():
            return torch.round(self._scaled(x)) + self.half

    def value(self, code):
        return code - self.half

    def scale(self):
        return self.clip.detach().double() / self.half

    def forward(self, x):
        return round_ste(self._scaled(x)) * (self.clip / self.half)


class FloatActivation(nn.Module):
    """Full precision: ReLU. Only the ``fp32`` reference uses it."""

    kind, bits, levels = "float", 32, None

    def forward(self, x):
        return torch.relu(x)


#: The quantizer of each activation kind (:class:`lowbit.sw.kinds.InputKind`), made from a
#: :class:`lowbit.sw.train.mlp.ActivationSpec` (its ``bits``, ``B`` and ``clip``).
ACTIVATION_QUANTIZERS = {
    "float": lambda spec: FloatActivation(),
    "binary": lambda spec: BinaryActivation(spec.B),
    "ternary": lambda spec: TernaryActivation(1.0),
    "fatnn": lambda spec: FatnnActivation(),
    "uint": lambda spec: UniformActivation(spec.bits, spec.clip),
    "int": lambda spec: SignedActivation(spec.bits, spec.clip),
}


class DPReLU(nn.Module):
    """PokeBNN's dynamic PReLU, per channel:
    ``y = slope_pos * (x - b_x) - b_y`` where ``x - b_x >= 0``, else ``slope_neg * (x - b_x) - b_y``.

    Export folds it into integer thresholds, which needs it monotone, so the slopes in use are
    ``max(slope, min_slope)`` (lowbit default ``min_slope = 0.01``; the clamp is straight-through, so a
    slope below it still receives gradient). ``min_slope=None`` gives the paper's unconstrained form,
    which export refuses when a slope is not positive.
    """

    def __init__(self, channels, slope_pos=1.0, slope_neg=0.25, min_slope=0.01):
        super().__init__()
        self.slope_pos = nn.Parameter(torch.full((channels,), float(slope_pos)))
        self.slope_neg = nn.Parameter(torch.full((channels,), float(slope_neg)))
        self.b_x = nn.Parameter(torch.zeros(channels))
        self.b_y = nn.Parameter(torch.zeros(channels))
        self.min_slope = None if min_slope is None else _check_positive(min_slope, "min_slope")

    def slopes(self):
        """The slopes in use, ``(slope_pos, slope_neg)``, after the ``min_slope`` clamp."""
        if self.min_slope is None:
            return self.slope_pos, self.slope_neg
        return tuple(s + (s.clamp(min=self.min_slope) - s).detach() for s in (self.slope_pos, self.slope_neg))

    def forward(self, x):
        slope_pos, slope_neg = self.slopes()
        z = x - self.b_x.to(x.dtype)
        return torch.where(z >= 0, slope_pos.to(x.dtype) * z, slope_neg.to(x.dtype) * z) - self.b_y.to(x.dtype)


# --- weights ----------------------------------------------------------------------------------------------


@dataclass
class IntegerWeight:
    """Integer form of a quantized weight matrix: ``fake_quant == values * scale`` (FGQ: ``t * alpha_q * scale``).

    ``values``: float64 tensor ``(out, in)`` of integers; ``scale``: float64, shape ``(out,)`` or ``()``;
    ``alpha_q``: FGQ's unsigned Q0.8 group scales ``(out, in / group_size)`` or ``None``.
    """

    values: torch.Tensor
    scale: torch.Tensor
    alpha_q: torch.Tensor | None = None

    def effective(self):
        """The integer weight each tap multiplies by inside the accumulator (FGQ: ``t * alpha_q``)."""
        if self.alpha_q is None:
            return self.values
        group = self.values.shape[1] // self.alpha_q.shape[1]
        return self.values * self.alpha_q.repeat_interleave(group, dim=1)


def _rows(w, granularity):
    """``w`` as rows over which one scale is computed: per output channel, or one row for the layer."""
    return w if granularity == "channel" else w.reshape(1, -1)


def _per(scale_rows, w, granularity):
    return scale_rows.reshape(-1) if granularity == "channel" else scale_rows.reshape(())


class FloatWeight(nn.Module):
    """Full precision weights (the ``fp32`` reference): identity."""

    kind, bits = "float", 32

    def forward(self, w):
        return w

    def integer(self, w):
        raise TypeError("float weights have no integer form")


class BinaryWeight(nn.Module):
    """PokeBNN's weight binarizer: ``±max|w| / 2`` with one max per output channel (or per layer).

    ``w >= 0`` gives +1. The gradient always passes (straight through).
    """

    kind, bits = "binary", 1

    def __init__(self, granularity="channel"):
        super().__init__()
        self.granularity = _check_choice(granularity, ("channel", "layer"), "granularity")

    def integer(self, w):
        with torch.no_grad():
            w = w.detach().double()
            values = torch.where(w >= 0, 1.0, -1.0).double()
            scale = _rows(w, self.granularity).abs().amax(dim=1) / 2
            return IntegerWeight(values, _per(scale, w, self.granularity))

    def forward(self, w):
        q = self.integer(w)
        scale = q.scale.reshape(-1, 1) if q.scale.dim() else q.scale
        return _straight_through(w, (q.values * scale).to(w.dtype))


def twn_ternarize(w, k=0.7, method="threshold"):
    """TWN on each row of ``w`` (2-D): ``(t, alpha)`` with ``t`` in {-1, 0, +1} and ``alpha`` per row.

    ``method="threshold"``: ``delta = k * mean|w|``, ``t = sign(w)`` where ``|w| > delta``,
    ``alpha = mean(|w| where |w| > delta)`` (0 for a row with no weight above delta).
    ``method="exact"``: keep the ``m`` largest magnitudes maximising ``(sum |w|)**2 / m`` (ties by position).
    """
    _check_choice(method, ("threshold", "exact"), "method")
    mag = w.abs()
    if method == "threshold":
        delta = _check_positive(k, "k") * mag.mean(dim=1, keepdim=True)
        keep = mag > delta
    else:
        order = torch.sort(mag, dim=1, descending=True, stable=True)
        total = torch.cumsum(order.values, dim=1)
        m = torch.arange(1, w.shape[1] + 1, dtype=w.dtype)
        best = torch.argmax(total * total / m, dim=1, keepdim=True)
        rank = torch.empty_like(order.indices)
        rank.scatter_(1, order.indices, torch.arange(w.shape[1]).expand_as(rank).contiguous())
        keep = rank <= best
    t = torch.where(keep, torch.sign(w), torch.zeros_like(w))
    count = keep.sum(dim=1)
    alpha = torch.where(count > 0, (mag * keep).sum(dim=1) / count.clamp(min=1), torch.zeros_like(count, dtype=w.dtype))
    return t, alpha


class TernaryWeight(nn.Module):
    """TWN: ``t = +1 if w > delta, -1 if w < -delta, else 0``, ``alpha = mean(|w| > delta)``, ``delta = k * mean|w|``.

    ``k`` (lowbit default 0.7), ``granularity`` (``"channel"``, the lowbit default, or ``"layer"``) and
    ``method`` (``"threshold"`` or ``"exact"``, the exact optimum) are the paper's choices. Delta and alpha
    are recomputed every step; the gradient passes straight through to the float weights.
    """

    kind, bits = "ternary", 2

    def __init__(self, k=0.7, granularity="channel", method="threshold"):
        super().__init__()
        self.k = _check_positive(k, "k")
        self.granularity = _check_choice(granularity, ("channel", "layer"), "granularity")
        self.method = _check_choice(method, ("threshold", "exact"), "method")

    def integer(self, w):
        with torch.no_grad():
            w = w.detach().double()
            t, alpha = twn_ternarize(_rows(w, self.granularity), self.k, self.method)
            return IntegerWeight(t.reshape(w.shape), _per(alpha, w, self.granularity))

    def forward(self, w):
        q = self.integer(w)
        scale = q.scale.reshape(-1, 1) if q.scale.dim() else q.scale
        return _straight_through(w, (q.values * scale).to(w.dtype))


class FatnnWeight(nn.Module):
    """FATNN's ternary weights with learned ``alpha0``, ``alpha1``:
    ``y = round(clamp(w * alpha0, -1, 0)) + round(clamp(w * alpha1, 0, 1))`` in {-1, 0, +1} (scale 1).

    Rounding is straight-through, each clamp passes gradient only inside its range.
    :meth:`init_from` sets both so the thresholds start at TWN's ``±0.7 * mean|w|``.
    """

    kind, bits = "fatnn", 2

    def __init__(self, alpha0=1.0, alpha1=1.0):
        super().__init__()
        self.alpha0 = nn.Parameter(torch.tensor(_check_positive(alpha0, "alpha0")))
        self.alpha1 = nn.Parameter(torch.tensor(_check_positive(alpha1, "alpha1")))

    def init_from(self, w, k=0.7):
        with torch.no_grad():
            alpha = 0.5 / (k * float(w.abs().mean()))
            self.alpha0.fill_(alpha)
            self.alpha1.fill_(alpha)

    def _y(self, w, rounding):
        a0, a1 = self.alpha0.to(w.dtype), self.alpha1.to(w.dtype)
        return rounding(torch.clamp(w * a0, -1, 0)) + rounding(torch.clamp(w * a1, 0, 1))

    def integer(self, w):
        with torch.no_grad():
            return IntegerWeight(self._y(w.detach(), torch.round).double(), torch.tensor(1.0, dtype=torch.float64))

    def forward(self, w):
        return self._y(w, round_ste)


class UniformWeight(nn.Module):
    """Symmetric uniform b-bit weights: ``q = round(w / s)`` with ``s = max|w| / (2**(b-1) - 1)`` per channel
    (or per layer), so ``q`` lies in ``-(2**(b-1) - 1) .. 2**(b-1) - 1``. Straight-through gradient."""

    kind = "int"

    def __init__(self, bits=8, granularity="channel"):
        super().__init__()
        self.bits = _check_bits(bits, 2, 8)
        self.granularity = _check_choice(granularity, ("channel", "layer"), "granularity")
        self.limit = (1 << (bits - 1)) - 1
        self.top = self.limit  # the integer the largest magnitude maps to

    def _uniform(self, w):
        rows = _rows(w, self.granularity)
        s = rows.abs().amax(dim=1) / self.top
        s = torch.where(s > 0, s, torch.ones_like(s))
        q = torch.clamp(torch.round(rows / s[:, None]), -self.limit, self.limit).reshape(w.shape)
        return q, _per(s, w, self.granularity)

    def _round(self, q):
        return q

    def integer(self, w):
        with torch.no_grad():
            q, s = self._uniform(w.detach().double())
            return IntegerWeight(self._round(q), s)

    def forward(self, w):
        q = self.integer(w)
        scale = q.scale.reshape(-1, 1) if q.scale.dim() else q.scale
        return _straight_through(w, (q.values * scale).to(w.dtype))


class NHotWeight(UniformWeight):
    """n-hot: uniform b-bit first, then the nearest value with at most ``n_terms`` signed powers of two
    (ties toward the smaller magnitude; :func:`lowbit.sw.kinds.encodings.nhot_nearest`). Straight-through.

    The uniform step maps the largest magnitude to the largest n-hot value (64 for one term of 8 bits,
    127 otherwise), so no level is wasted and the quantizer is idempotent.

    Training is two-stage: uniform QAT (:class:`UniformWeight`), then fine-tuning with this quantizer.
    """

    kind = "nhot"

    def __init__(self, n_terms, bits=8, granularity="channel"):
        super().__init__(bits, granularity)
        self.n_terms = _check_bits(n_terms, 1, bits, "n_terms")
        table = nhot_nearest(np.arange(-self.limit, self.limit + 1), n_terms, bits)
        self.register_buffer("table", torch.tensor(table, dtype=torch.float64), persistent=False)
        self.top = int(table.max())  # 64 for one term of 8 bits, 127 for two or more

    def _round(self, q):
        return self.table[(q + self.limit).long()]


def fgq_alpha_scale(alpha_max, mode="pow2"):
    """FGQ's common scale ``S``: the group scales become ``alpha_q = round(alpha / S * 256)`` in Q0.8, all ≤ 255.

    ``mode="pow2"`` (lowbit default): the smallest power of two with ``alpha_max / S * 256 < 255.5``
    (``S = 1`` when every alpha < 0.998, as in FGQ's worked example); ``mode="max"``: ``S = alpha_max * 256 / 255``.
    """
    _check_choice(mode, ("pow2", "max"), "mode")
    alpha_max = float(alpha_max)
    if not alpha_max > 0:
        return 1.0
    if mode == "max":
        return alpha_max * 256 / 255
    e = math.floor(math.log2(alpha_max * 256 / 255.5)) + 1
    while alpha_max / 2.0**e * 256 >= 255.5:
        e += 1
    return 2.0**e


class FGQWeight(nn.Module):
    """FGQ: ternary weights in groups of ``group_size`` consecutive inputs, one ``alpha`` per group (TWN inside
    the group), ``alpha`` in unsigned Q0.8 after dividing the layer by a common scale ``S``.

    ``fake_quant(w) = t * alpha_q * S / 256``; the common scale ``S / 256`` is :attr:`IntegerWeight.scale`.
    ``method="threshold"`` (lowbit default) is TWN's rule ``delta = k * mean|w|`` inside each group;
    ``method="exact"`` is the exact optimum of ``||w - alpha * t||`` per group. With one shared alpha, FGQ's
    exhaustive search over separate thresholds ``delta_p``, ``delta_n`` finds that same optimum (the best
    ``m`` weights to keep are the ``m`` largest magnitudes, whatever their signs), so ``exact`` is that option.
    ``alpha_scale`` picks ``S`` (:func:`fgq_alpha_scale`). Meant for post-training use (:meth:`integer` on a
    trained float weight); as a module its gradient passes straight through, for the optional fine-tuning.
    """

    kind, bits = "fgq", 2

    def __init__(self, group_size=4, k=0.7, method="threshold", alpha_scale="pow2"):
        super().__init__()
        if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
            raise ValueError(f"group_size must be a positive integer, not {group_size!r}")
        self.group_size = group_size
        self.k = _check_positive(k, "k")
        self.method = _check_choice(method, ("threshold", "exact"), "method")
        self.alpha_scale = _check_choice(alpha_scale, ("pow2", "max"), "alpha_scale")

    def _groups(self, w):
        out, n = w.shape
        if n % self.group_size:
            raise ValueError(f"FGQ needs the input width ({n}) to be a multiple of group_size ({self.group_size})")
        return w.reshape(-1, self.group_size)

    def integer(self, w):
        with torch.no_grad():
            w = w.detach().double()
            t, alpha = twn_ternarize(self._groups(w), self.k, self.method)
            s = fgq_alpha_scale(alpha.max(), self.alpha_scale)
            alpha_q = torch.clamp(torch.round(alpha * (256 / s)), 0, 255)
            return IntegerWeight(
                t.reshape(w.shape), torch.tensor(s / 256, dtype=torch.float64), alpha_q.reshape(w.shape[0], -1)
            )

    def forward(self, w):
        q = self.integer(w)
        return _straight_through(w, (q.effective() * q.scale).to(w.dtype))
