"""Quantization-aware training of the seed schemes on the digits MLP, export, and ``lowbit train``.

Schemes (:data:`SCHEMES`; per-layer precision in :func:`scheme_config`):

=========  ========================================================================================
fp32       float weights and activations (the reference)
binary     PokeBNN: 8-bit input x binary weights, binary activations (B = 3, DPReLU), 8-bit last layer
twn        TWN ternary weights (k = 0.7 per channel; last layer per layer), 4-bit activations
fgq        FGQ: the trained fp32 model ternarized in groups of N = 4, 8-bit activations, no retraining
fgq64      as fgq with N = 64 (add ``finetune_epochs`` for FGQ's optional fine-tuning)
fatnn      FATNN ternary weights and {0, 1, 2} activations, learned alpha0/alpha1 for both
uniform8   8-bit uniform weights, 8-bit activations (stage 1 of n-hot, and its baseline)
nhot1..3   n-hot weights (n = 1, 2, 3 terms of 8 bits), 8-bit activations: stage 2 fine-tunes uniform8
=========  ========================================================================================

:data:`VARIANTS` are labelled option settings of these schemes that the accuracy table also reports
(``fgq-exact``: FGQ with the exact per-group optimum; ``fgq64-ft``: N = 64 with FGQ's fine-tuning).

Every run uses the fixed digits split (:func:`lowbit.sw.train.data.load_digits_split`) and a fixed seed.
"""

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from lowbit.sw.golden import GoldenNetwork
from lowbit.sw.kinds import INPUTS, InputKind
from lowbit.sw.model.file import load_model, save_model
from lowbit.sw.model.inputs import input_codes
from lowbit.sw.train.data import load_digits_split
from lowbit.sw.train.export import export_model
from lowbit.sw.train.mlp import ActivationSpec, ConvSpec, NetworkConfig, QuantMLP, WeightSpec
from lowbit.sw.train.schemes import ALL_SCHEMES, ARCHS, SCHEMES, TABLE_SCHEMES, VARIANTS

__all__ = [
    "SCHEMES",
    "ALL_SCHEMES",
    "VARIANTS",
    "TABLE_SCHEMES",
    "ARCHS",
    "ARCHITECTURES",
    "DIGITS_CNN",
    "TrainSettings",
    "TrainResult",
    "scheme_config",
    "fit",
    "evaluate",
    "fgq_from_float",
    "train_scheme",
    "train_all",
    "check_golden",
    "write_results",
    "export_and_check",
    "summary_line",
]

DEFAULT_HIDDEN = (256, 256)
#: The digits CNN: three 3 x 3 convolutions (32, 32 and 64 channels, padding 1), the last two followed by
#: 2 x 2 max-pooling, then the classifier: 8x8x1 -> 8x8x32 -> 4x4x32 -> 2x2x64 -> 10 (30,496 weights).
DIGITS_CNN = (ConvSpec(32), ConvSpec(32, pool=2), ConvSpec(64, pool=2))
#: Per architecture of :data:`ARCHS`: its convolutions and the default widths of the dense layers after them.
ARCHITECTURES = {"mlp": ((), DEFAULT_HIDDEN), "cnn": (DIGITS_CNN, ())}
assert tuple(ARCHITECTURES) == ARCHS

# Epochs and learning rate per scheme (n-hot: the fine-tuning stage; uniform8 is its first stage).
_DEFAULT_EPOCHS = {
    "fp32": 60,
    "binary": 120,
    "twn": 80,
    "fatnn": 100,
    "uniform8": 60,
    "nhot1": 40,
    "nhot2": 40,
    "nhot3": 40,
    "fgq": 0,
    "fgq64": 0,
}
_DEFAULT_LR = {
    "fp32": 3e-3,
    "binary": 5e-3,
    "twn": 3e-3,
    "fatnn": 3e-3,
    "uniform8": 3e-3,
    "nhot1": 1e-3,
    "nhot2": 1e-3,
    "nhot3": 1e-3,
    "fgq": 1e-4,
    "fgq64": 1e-4,
}


@dataclass
class TrainSettings:
    """Training knobs. ``None`` means the scheme's default (epochs, lr)."""

    hidden: tuple | None = None  # the dense layers' widths; None: the architecture's (256, 256 for mlp, none for cnn)
    arch: str = "mlp"  # one of ARCHS
    input_bits: int = 8
    activation: str | None = None  # override of the hidden activations: binary ternary fatnn uint<k>
    epochs: int | None = None
    pretrain_epochs: int | None = None  # the fp32 (for fgq) or uniform8 (for nhot) first stage
    finetune_epochs: int = 0  # FGQ's optional fine-tuning
    fgq_method: str = "threshold"  # FGQ's per-group rule: TWN's threshold (default) or the exact optimum
    lr: float | None = None
    batch_size: int = 64
    seed: int = 0  # initial weights and batch order (the data split is fixed)
    progress: bool = True

    def layers(self):
        """``(convs, hidden)`` of the network: the architecture's convolutions and the dense widths."""
        convs, hidden = ARCHITECTURES[self.arch]
        return convs, hidden if self.hidden is None else tuple(self.hidden)


@dataclass
class TrainResult:
    """A trained network and its accuracies on the test split (fractions)."""

    scheme: str
    net: QuantMLP
    float_accuracy: float
    integer_accuracy: float
    seconds: float
    stages: list = field(default_factory=list)


def _activation_spec(name, dprelu=False):
    """A hidden activation by name, as an :class:`ActivationSpec`: an integer input kind of the registry
    (:data:`lowbit.sw.kinds.INPUTS`) whose bits are fixed (``binary``, ``ternary``, ``fatnn``), or one with a
    range of bits followed by the bits (``uint4``, ``int3``)."""
    names = []
    for kind, info in INPUTS.items():
        low, high = info.bits
        if kind == InputKind.FLOAT:
            continue
        if low == high:
            names.append(str(kind))
            if name == kind:
                return ActivationSpec(str(kind), dprelu=dprelu)
        else:
            names.append(f"{kind}<k> with k from {low} to {high}")
            bits = name[len(kind) :]
            if name.startswith(kind) and bits.isdigit() and low <= int(bits) <= high:
                return ActivationSpec(str(kind), bits=int(bits), dprelu=dprelu)
    raise ValueError(f"activation must be {', '.join(names[:-1])} or {names[-1]}, not {name!r}")


def scheme_config(
    scheme,
    hidden=DEFAULT_HIDDEN,
    input_bits=8,
    activation=None,
    group_size=None,
    fgq_method="threshold",
    convs=(),
):
    """The :class:`NetworkConfig` of a scheme: per-layer weight precision and hidden activations.

    ``activation`` (``binary``, ``ternary``, ``fatnn``, ``uint4``, ``uint8``...) overrides the scheme's
    hidden activations; ``group_size`` overrides FGQ's N, ``fgq_method`` its per-group rule. ``convs``
    (:class:`lowbit.sw.train.mlp.ConvSpec`) come before the hidden layers and take the scheme's hidden
    precision (weights and activations).
    """
    hidden, convs = tuple(hidden), tuple(convs)
    depth = len(convs) + len(hidden)
    if scheme == "fp32":
        return NetworkConfig(
            0,
            hidden,
            (WeightSpec("float"),) * (depth + 1),
            (ActivationSpec("float"),) * depth,
            name=scheme,
            convs=convs,
        )
    if scheme == "binary":
        weights = (WeightSpec("binary"),) * depth + (WeightSpec("int", bits=8, granularity="layer"),)
        act = "binary"
    elif scheme == "twn":
        weights = (WeightSpec("ternary"),) * depth + (WeightSpec("ternary", granularity="layer"),)
        act = "uint4"
    elif scheme in ("fgq", "fgq64"):
        n = group_size or (64 if scheme == "fgq64" else 4)
        weights = (WeightSpec("fgq", group_size=n, method=fgq_method),) * (depth + 1)
        act = "uint8"
    elif scheme == "fatnn":
        weights = (WeightSpec("fatnn"),) * (depth + 1)
        act = "fatnn"
    elif scheme == "uniform8":
        weights = (WeightSpec("int", bits=8),) * depth + (WeightSpec("int", bits=8, granularity="layer"),)
        act = "uint8"
    elif scheme in ("nhot1", "nhot2", "nhot3"):
        n = int(scheme[-1])
        weights = (WeightSpec("nhot", bits=8, n_terms=n),) * depth + (
            WeightSpec("nhot", bits=8, n_terms=n, granularity="layer"),
        )
        act = "uint8"
    else:
        raise ValueError(f"scheme must be one of {', '.join(ALL_SCHEMES)}, not {scheme!r}")
    act = activation or act
    specs = tuple(_activation_spec(act, dprelu=scheme == "binary") for _ in range(depth))
    if scheme in ("fgq", "fgq64"):
        specs = tuple(ActivationSpec("uint", bits=s.bits, clip=1.0) if s.kind == "uint" else s for s in specs)
    config = NetworkConfig(input_bits, hidden, weights, specs, name=scheme, convs=convs)
    if scheme in ("fgq", "fgq64") and convs:
        groups = [fgq_conv_group(n, shape.input_map[2]) for shape in config.conv_shapes]
        weights = tuple(replace(spec, group_size=g) for spec, g in zip(weights, groups))
        config = config.replace(weights=weights + config.weights[len(groups) :])
    return config


def fgq_conv_group(n, channels):
    """FGQ's group size in a convolution of ``channels`` input channels: groups run along the input
    channels at one kernel position (Mellempudi et al., arXiv 1705.01462), so ``n``, or all ``channels``
    when there are fewer (the first layer's one channel: a scale per weight)."""
    if channels < n:
        return channels
    if channels % n:
        raise ValueError(f"FGQ groups of {n} do not divide a convolution's {channels} input channels")
    return n


def _codes(net, pixels):
    if net.is_float:
        return torch.as_tensor(np.asarray(pixels), dtype=torch.float32)
    return torch.as_tensor(input_codes(pixels, net.config.input_bits).astype(np.float32))


def fit(net, split, epochs, lr, batch_size=64, seed=0, progress=True, desc="train"):
    """Adam with a cosine learning-rate schedule and cross-entropy on the training split."""
    if epochs <= 0:
        return net
    from tqdm import tqdm

    generator = torch.Generator().manual_seed(seed)
    x, y = _codes(net, split.x_train), torch.as_tensor(split.y_train)
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    steps = epochs * -(-len(x) // batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    net.train()
    bar = tqdm(range(epochs), desc=desc, disable=not progress, leave=False, unit="epoch")
    for _ in bar:
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for start in range(0, len(x), batch_size):
            index = order[start : start + batch_size]
            if len(index) < 2:  # batch-norm needs two samples
                continue
            loss = F.cross_entropy(net(x[index]), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * len(index)
        bar.set_postfix(loss=f"{total / len(x):.4f}")
    net.eval()
    return net


@torch.no_grad()
def evaluate(net, split):
    """``(float_accuracy, integer_accuracy, integer_predictions)`` on the test split."""
    net.eval()
    x = _codes(net, split.x_test)
    y = np.asarray(split.y_test)
    float_pred = net(x).argmax(dim=1).numpy()
    int_pred = net.integer_forward(x.double()).argmax(dim=1).numpy()
    return float((float_pred == y).mean()), float((int_pred == y).mean()), int_pred


@torch.no_grad()
def fgq_from_float(float_net, split, group_size=4, act_bits=8, activation=None, method="threshold"):
    """FGQ post-training: ternarize a trained float network in groups (no retraining).

    Weights and batch-norm statistics are copied; each hidden activation's clip is calibrated to the
    largest post-ReLU value of the float network on the training split (``act_bits``-bit unsigned).
    """
    hidden, convs = float_net.config.hidden, float_net.config.convs
    activation = activation or f"uint{act_bits}"
    if not activation.startswith("uint"):
        raise ValueError(f"FGQ takes unsigned k-bit activations (uint<k>), not {activation!r}")
    config = scheme_config("fgq", hidden, activation=activation, group_size=group_size, fgq_method=method, convs=convs)
    net = QuantMLP(config)
    float_net.eval()
    # each hidden layer's output: the next layer's input in the float64 pass (pooling keeps the largest)
    outputs = float_net.integer_forward(torch.as_tensor(split.x_train, dtype=torch.float64), trace=True)["codes"][1:]
    for source, target, x in zip(float_net.layers, net.layers, outputs + [None]):
        target.weight.copy_(source.weight)
        if source.last:
            break
        target.bn.load_state_dict(source.bn.state_dict())
        target.out_quant.clip.fill_(float(x.max()) if float(x.max()) > 0 else 1.0)
    net.eval()
    return net


def _settings_for(scheme, settings):
    epochs = settings.epochs if settings.epochs is not None else _DEFAULT_EPOCHS[scheme]
    lr = settings.lr if settings.lr is not None else _DEFAULT_LR[scheme]
    return epochs, lr


def _new_net(scheme, settings):
    torch.manual_seed(settings.seed)
    convs, hidden = settings.layers()
    return QuantMLP(scheme_config(scheme, hidden, settings.input_bits, settings.activation, convs=convs))


def train_scheme(scheme, settings=None, split=None, pretrained=None):
    """Train one scheme and return its :class:`TrainResult`.

    ``pretrained``: for ``fgq``/``fgq64`` a trained fp32 :class:`TrainResult`, for ``nhot*`` a trained
    ``uniform8`` one (trained here when not given).
    """
    settings = settings or TrainSettings()
    split = split or load_digits_split()
    if scheme not in ALL_SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(ALL_SCHEMES)}, not {scheme!r}")
    start = time.perf_counter()
    stages, earlier = [], 0.0
    epochs, lr = _settings_for(scheme, settings)
    if scheme in ("fgq", "fgq64"):
        if pretrained is None:
            pretrained = train_scheme("fp32", _stage_settings(settings, "fp32"), split)
        else:
            earlier = pretrained.seconds
        stages.append(f"fp32 first ({pretrained.seconds:.1f} s)")
        net = fgq_from_float(
            pretrained.net,
            split,
            64 if scheme == "fgq64" else 4,
            activation=settings.activation or "uint8",
            method=settings.fgq_method,
        )
        if settings.finetune_epochs:
            fit(
                net,
                split,
                settings.finetune_epochs,
                lr,
                settings.batch_size,
                settings.seed,
                settings.progress,
                f"{scheme} fine-tune",
            )
            stages.append(f"fine-tuned {settings.finetune_epochs} epochs")
    elif scheme.startswith("nhot"):
        if pretrained is None:
            pretrained = train_scheme("uniform8", _stage_settings(settings, "uniform8"), split)
        else:
            earlier = pretrained.seconds
        stages.append(f"uniform8 first ({pretrained.seconds:.1f} s), then {epochs} epochs n-hot")
        net = _new_net(scheme, settings)
        net.load_state_dict(pretrained.net.state_dict())
        fit(net, split, epochs, lr, settings.batch_size, settings.seed, settings.progress, scheme)
    else:
        net = _new_net(scheme, settings)
        fit(net, split, epochs, lr, settings.batch_size, settings.seed, settings.progress, scheme)
        stages.append(f"{epochs} epochs")
    float_acc, int_acc, _ = evaluate(net, split)
    seconds = time.perf_counter() - start + earlier  # the first stage's time counts, once per scheme
    return TrainResult(scheme, net, float_acc, int_acc, seconds, stages)


def _stage_settings(settings, stage):
    """Settings of a first stage: its own default epochs/lr unless ``pretrain_epochs`` is given."""
    return TrainSettings(
        **{
            **asdict(settings),
            "epochs": settings.pretrain_epochs,
            "lr": None,
            "activation": None if stage == "fp32" else settings.activation,
        }
    )


def check_golden(model, net, split):
    """Golden-model predictions on the test split and whether they equal the PyTorch integer pass."""
    golden = GoldenNetwork(model)
    pred = golden.predict(split.x_test)
    _, _, torch_pred = evaluate(net, split)
    return pred, bool(np.array_equal(pred, torch_pred))


def _summary(result, model, path, split):
    from lowbit.sw.model.report import model_cost

    pred, same = check_golden(model, result.net, split)
    cost = model_cost(model)
    return {
        "scheme": result.scheme,
        "layers": cost.describe(),
        "float_accuracy": round(result.float_accuracy, 6),
        "integer_accuracy": round(result.integer_accuracy, 6),
        "golden_accuracy": round(float((pred == split.y_test).mean()), 6),
        "golden_equals_pytorch": same,
        "ace": cost.total_ace,
        "cpu64": cost.total_cpu64,
        "size_bits": cost.total_size_bits,
        "weight_bits": cost.total_weight_bits,
        "macs": cost.total_macs,
        "mults_removed": cost.mults_removed,
        "seconds": round(result.seconds, 1),
        "stages": result.stages,
        "file": None if path is None else str(path),
    }


def export_and_check(result, split, out, settings):
    """Export a trained :class:`TrainResult` (with its training metadata), write it to ``out`` and read it
    back (unless ``out`` is ``None``), and check that the golden model's predictions equal the PyTorch
    integer pass. Returns ``(model, summary)``: the summary is one row of :func:`write_results`."""
    metadata = {
        "seed": settings.seed,
        "arch": settings.arch,
        "hidden": list(settings.layers()[1]),
        "input_bits": settings.input_bits,
        "float_accuracy": result.float_accuracy,
        "integer_accuracy": result.integer_accuracy,
        "split": {"seed": split.seed, "test_size": split.test_size, "test_samples": len(split.y_test)},
    }
    model = export_model(result.net, result.scheme, metadata)
    if out is not None:
        save_model(model, out)
        model = load_model(out)
    return model, _summary(result, model, out, split)


def train_all(out_dir, settings=None, schemes=TABLE_SCHEMES, log=print):
    """Train, export, reload and check every scheme (or variant label of :data:`VARIANTS`); write
    ``<label>.lbm`` files into ``out_dir``.

    The fp32 model is FGQ's starting point and uniform8 is n-hot's first stage, each trained once.
    Returns the list of per-scheme summaries (see :func:`write_results`).
    """
    settings = settings or TrainSettings()
    split = load_digits_split()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    trained, summaries = {}, []

    def first_stage(stage):
        if stage not in trained:
            trained[stage] = train_scheme(stage, _stage_settings(settings, stage), split)
        return trained[stage]

    for label in schemes:
        scheme, changes = VARIANTS.get(label, (label, {}))
        pretrained = None
        if scheme in ("fgq", "fgq64"):
            pretrained = first_stage("fp32")
        elif scheme.startswith("nhot"):
            pretrained = first_stage("uniform8")
        result = trained.get(label) if not changes else None
        if result is None:
            result = train_scheme(scheme, TrainSettings(**{**asdict(settings), **changes}), split, pretrained)
        trained[label] = result
        result.scheme = label
        _, summary = export_and_check(result, split, out_dir / f"{label}.lbm", settings)
        summaries.append(summary)
        log(summary_line(summary))
    return summaries


def summary_line(s):
    """One scheme's result of :func:`export_and_check` as a line, as ``lowbit train`` prints it."""
    return (
        f"{s['scheme']:>9}: float {100 * s['float_accuracy']:.2f} %, integer {100 * s['integer_accuracy']:.2f} %, "
        f"golden {100 * s['golden_accuracy']:.2f} % "
        f"({'equals' if s['golden_equals_pytorch'] else 'DIFFERS FROM'} PyTorch), {s['seconds']:.1f} s "
        f"-> {s['file']}"
    )


def _within(label, reference, points):
    return lambda acc: acc[label] >= acc[reference] - points / 100 - 1e-9


TARGETS = {
    "fp32": ("at least 97 %", lambda acc: acc["fp32"] >= 0.97),
    "binary": ("within 3 points of fp32", _within("binary", "fp32", 3)),
    "twn": ("within 1.5 points of fp32", _within("twn", "fp32", 1.5)),
    "fgq": ("within 1.5 points of fp32", _within("fgq", "fp32", 1.5)),
    "fgq-exact": ("within 1.5 points of fp32", _within("fgq-exact", "fp32", 1.5)),
    "fatnn": ("within 1.5 points of fp32", _within("fatnn", "fp32", 1.5)),
    "nhot2": ("within 0.5 points of uniform8", _within("nhot2", "uniform8", 0.5)),
}


def _target_met(label, accuracy):
    target = TARGETS.get(label)
    try:
        return bool(target[1](accuracy)) if target else None
    except KeyError:  # the reference scheme was not run
        return None


def write_results(summaries, json_path, md_path, settings=None, seconds=None, seed_accuracy=None, seeds=None):
    """Write the accuracy table as JSON and Markdown: golden-model (integer) accuracy on the test split.

    ``seed_accuracy`` (optional): ``{label: [golden accuracy per training seed]}`` for the training ``seeds``;
    the table then adds the mean and the range over the seeds, and checks the targets on the means as well.
    """
    accuracy = {s["scheme"]: s["golden_accuracy"] for s in summaries}
    means = {k: float(np.mean(v)) for k, v in (seed_accuracy or {}).items()}
    rows = []
    for s in summaries:
        label = s["scheme"]
        row = dict(s, target=TARGETS[label][0] if label in TARGETS else "", target_met=_target_met(label, accuracy))
        if seed_accuracy:
            row.update(
                seed_accuracies=seed_accuracy.get(label),
                mean_accuracy=means.get(label),
                target_met_on_mean=_target_met(label, means),
            )
        rows.append(row)
    document = {
        "dataset": "sklearn digits, stratified 80/20 split (random_state 0): 1437 train, 360 test",
        "accuracy": "golden model on the exported file (equals the PyTorch integer pass) unless noted",
        "settings": asdict(settings) if settings else None,
        "seeds": list(seeds) if seeds else None,
        "total_seconds": seconds,
        "results": rows,
    }
    Path(json_path).write_text(json.dumps(document, indent=2, default=list) + "\n")
    head = ["scheme", "input x weights per layer", "QAT float %", "golden (integer) %"]
    head += [f"mean over seeds {', '.join(map(str, seeds or []))}: % (min-max)"] if seed_accuracy else []
    head += ["golden == PyTorch", "ACE", "CPU64", "weight bits", "size bits", "mults removed", "train s", "target"]
    text_columns = {"scheme", "input x weights per layer", "golden == PyTorch", "target"}
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if h in text_columns else "---:" for h in head) + "|"]
    for r in rows:
        removed = f"{100 * r['mults_removed']:.1f} %" if r["mults_removed"] is not None else "-"
        target = r["target"]
        if r["target_met"] is not None:
            target += f": {'met' if r['target_met'] else '**missed**'}"
            if seed_accuracy and r.get("target_met_on_mean") is not None:
                target += f" (mean: {'met' if r['target_met_on_mean'] else '**missed**'})"
        cells = [r["scheme"], r["layers"], f"{100 * r['float_accuracy']:.2f}", f"{100 * r['golden_accuracy']:.2f}"]
        if seed_accuracy:
            values = r.get("seed_accuracies") or []
            cells.append(
                f"{100 * np.mean(values):.2f} ({100 * min(values):.1f}-{100 * max(values):.1f})" if values else "-"
            )
        cells += [
            "yes" if r["golden_equals_pytorch"] else "**NO**",
            f"{r['ace']:,}",
            f"{r['cpu64']:,.0f}",
            f"{r['weight_bits']:,}",
            f"{r['size_bits']:,}",
            removed,
            f"{r['seconds']:.1f}",
            target,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    Path(md_path).write_text("\n".join(lines) + "\n")
    return rows
