"""Training: :func:`train`, :func:`train_and_check`, :func:`train_all`."""

import time
from dataclasses import asdict
from pathlib import Path

from lowbit.sw.api._common import _check_int, _is_int
from lowbit.sw.train.schemes import TRAINABLE

#: What :func:`train` takes: the schemes and the labelled variants (:mod:`lowbit.sw.train.schemes`).
SCHEMES = TRAINABLE


def _check_out(out, scheme):
    """Refuse a directory as a model file and create the folder of ``out``, before any training."""
    out = Path(out)
    if out.is_dir():
        raise ValueError(
            f"out {str(out)!r} is a directory, not a model file; give a file path such as "
            f"{str(out / (scheme + '.lbm'))!r}"
        )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"out {str(out)!r}: cannot create its folder: {error.strerror}") from None
    return out


def _settings(
    scheme,
    *,
    seed,
    epochs,
    hidden,
    arch,
    input_bits,
    activation,
    pretrain_epochs,
    finetune_epochs,
    fgq_method,
    lr,
    batch_size,
    progress,
):
    """Check the training options (before anything is trained) and return ``TrainSettings``."""
    from lowbit.sw.train.qat import ALL_SCHEMES, ARCHS, VARIANTS, TrainSettings, scheme_config

    if scheme not in ALL_SCHEMES and scheme not in VARIANTS:
        raise ValueError(f"scheme must be one of {', '.join(ALL_SCHEMES + tuple(VARIANTS))}, not {scheme!r}")
    if not _is_int(seed):
        raise ValueError(f"seed must be an integer, not {seed!r}")
    _check_int("epochs", epochs, 1, optional=True)
    _check_int("pretrain_epochs", pretrain_epochs, 1, optional=True)
    _check_int("finetune_epochs", finetune_epochs, 0)
    _check_int("batch_size", batch_size, 2)  # batch norm needs two samples: smaller batches train nothing
    if lr is not None and not (isinstance(lr, (int, float)) and not isinstance(lr, bool) and 0 < lr < float("inf")):
        raise ValueError(f"lr must be a positive number or None, not {lr!r}")
    if fgq_method not in ("threshold", "exact"):
        raise ValueError(f"fgq_method must be 'threshold' or 'exact', not {fgq_method!r}")
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {', '.join(ARCHS)}, not {arch!r}")
    if hidden is not None:
        try:
            hidden = tuple(hidden)
        except TypeError:
            raise ValueError(
                f"hidden must be a sequence of positive widths such as (256, 256), not {hidden!r}"
            ) from None
        if not all(_is_int(w) and w >= 1 for w in hidden) or (arch == "mlp" and not hidden):
            raise ValueError(
                f"hidden must be a sequence of positive widths such as (256, 256){' or ()' * (arch != 'mlp')}, "
                f"not {hidden!r}"
            )
    from lowbit.sw.train.data import FEATURES
    from lowbit.sw.train.mlp import QuantMLP

    base = VARIANTS.get(scheme, (scheme, {}))[0]
    if base in ("fgq", "fgq64") and activation is not None and not activation.startswith("uint"):
        raise ValueError(f"FGQ takes unsigned k-bit activations (uint<k>), not {activation!r}")
    import torch

    settings = TrainSettings(
        hidden=hidden,
        arch=arch,
        input_bits=input_bits,
        activation=activation,
        epochs=epochs,
        pretrain_epochs=pretrain_epochs,
        finetune_epochs=finetune_epochs,
        fgq_method=fgq_method,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        progress=progress,
    )
    convs, widths = settings.layers()
    # checks the network (bits, kinds) and its weight quantizers (FGQ's groups need fitting widths)
    net = QuantMLP(scheme_config(base, widths, input_bits, activation, convs=convs))
    net.eval()
    with torch.no_grad():
        net(torch.zeros(2, FEATURES))
    return settings


def train_and_check(
    scheme,
    *,
    seed=0,
    epochs=None,
    out=None,
    hidden=None,
    arch="mlp",
    input_bits=8,
    activation=None,
    pretrain_epochs=None,
    finetune_epochs=0,
    fgq_method="threshold",
    lr=None,
    batch_size=64,
    threads=1,
    progress=False,
):
    """:func:`train`, and check that the golden model's predictions equal the PyTorch integer pass.

    Returns ``(model, summary)``; ``summary`` is a row of the accuracy table
    (:func:`lowbit.sw.train.qat.export_and_check`): ``scheme``, ``float_accuracy``, ``integer_accuracy``
    (PyTorch), ``golden_accuracy`` (on the test split), ``golden_equals_pytorch``, the cost, ``seconds``
    (training) and ``file`` (``out`` or ``None``). With ``out`` the model is checked as read back from the file.
    """

    import torch

    from lowbit.sw.train.data import load_digits_split
    from lowbit.sw.train.qat import VARIANTS, TrainSettings, export_and_check, train_scheme

    settings = _settings(
        scheme,
        seed=seed,
        epochs=epochs,
        hidden=hidden,
        arch=arch,
        input_bits=input_bits,
        activation=activation,
        pretrain_epochs=pretrain_epochs,
        finetune_epochs=finetune_epochs,
        fgq_method=fgq_method,
        lr=lr,
        batch_size=batch_size,
        progress=progress,
    )
    _check_int("threads", threads, 1, optional=True)
    out = None if out is None else _check_out(out, scheme)
    if threads is not None:
        torch.set_num_threads(threads)
    split = load_digits_split()
    base, changes = VARIANTS.get(scheme, (scheme, {}))
    result = train_scheme(base, TrainSettings(**{**asdict(settings), **changes}), split)
    result.scheme = scheme
    return export_and_check(result, split, out, settings)


def train(
    scheme,
    *,
    seed=0,
    epochs=None,
    out=None,
    hidden=None,
    arch="mlp",
    input_bits=8,
    activation=None,
    pretrain_epochs=None,
    finetune_epochs=0,
    fgq_method="threshold",
    lr=None,
    batch_size=64,
    threads=1,
    progress=False,
):
    """Train ``scheme`` (one of :data:`SCHEMES`) on the digits with quantization-aware training, export it and
    return the :class:`LowbitModel`; with ``out``, also write it there (the folder is created).

    ``epochs`` (default: the scheme's), ``pretrain_epochs`` (the fp32 stage of FGQ, the uniform8 stage of
    n-hot), ``finetune_epochs`` (FGQ's optional fine-tuning), ``lr``, ``batch_size`` (at least 2),
    ``arch`` (``mlp`` or ``cnn``: the digits CNN, three 3 x 3 convolutions and 2 x 2 max-pooling), ``hidden``
    widths of the dense layers (default: 256, 256 for ``mlp``, none for ``cnn``), ``input_bits`` (1 .. 8),
    ``activation`` (``binary``, ``ternary``, ``fatnn``,
    ``uint<k>``: overrides the scheme's hidden activations), ``fgq_method`` (``threshold`` or ``exact``),
    ``seed`` (initial weights and batch order; the data split is fixed). ``threads`` sets PyTorch's CPU
    threads (default 1, as ``lowbit train``: the trained model is then reproducible; ``None`` leaves
    PyTorch's setting). Every option is checked before training starts.
    """
    return train_and_check(
        scheme,
        seed=seed,
        epochs=epochs,
        out=out,
        hidden=hidden,
        arch=arch,
        input_bits=input_bits,
        activation=activation,
        pretrain_epochs=pretrain_epochs,
        finetune_epochs=finetune_epochs,
        fgq_method=fgq_method,
        lr=lr,
        batch_size=batch_size,
        threads=threads,
        progress=progress,
    )[0]


def train_all(
    out_dir,
    *,
    schemes=None,
    seed=0,
    epochs=None,
    hidden=None,
    arch="mlp",
    input_bits=8,
    activation=None,
    pretrain_epochs=None,
    finetune_epochs=0,
    fgq_method="threshold",
    lr=None,
    batch_size=64,
    threads=1,
    progress=False,
    log=None,
):
    """Train every scheme and variant (or those of ``schemes``) as :func:`train`, write ``<label>.lbm`` and
    the accuracy table ``accuracy.json`` / ``accuracy.md`` into ``out_dir``, and return the per-scheme
    summaries (each with ``golden_equals_pytorch``). ``log(line)`` gets one line per scheme as it ends."""
    import torch

    from lowbit.sw.train.qat import TABLE_SCHEMES, write_results
    from lowbit.sw.train.qat import train_all as train_schemes

    settings = _settings(
        "fp32",
        seed=seed,
        epochs=epochs,
        hidden=hidden,
        arch=arch,
        input_bits=input_bits,
        activation=activation,
        pretrain_epochs=pretrain_epochs,
        finetune_epochs=finetune_epochs,
        fgq_method=fgq_method,
        lr=lr,
        batch_size=batch_size,
        progress=progress,
    )
    schemes = TABLE_SCHEMES if schemes is None else tuple(schemes)
    for scheme in schemes:
        _settings(scheme, **asdict(settings))  # each scheme's own network checked before any training
    _check_int("threads", threads, 1, optional=True)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"out_dir {str(out_dir)!r} is a file, not a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    if threads is not None:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    summaries = train_schemes(out_dir, settings, schemes, log=log or (lambda line: None))
    write_results(summaries, out_dir / "accuracy.json", out_dir / "accuracy.md", settings, time.perf_counter() - start)
    return summaries
