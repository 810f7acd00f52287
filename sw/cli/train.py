"""``lowbit train``: train a scheme (or ``--all``) on the digits, export it, and check that the golden model's
predictions equal the PyTorch integer pass (exit code 1 when they differ). Every option is checked before
training starts."""

import argparse
from pathlib import Path

from lowbit.sw import api
from lowbit.sw.cli.arguments import int_from, integer, non_negative_int, positive_float, positive_int, widths
from lowbit.sw.train.qat import summary_line
from lowbit.sw.train.schemes import ARCHS

__all__ = ["add_train_arguments", "run_train"]


def _activation(text):
    """A hidden activation the training accepts (``binary``, ``ternary``, ``uint4``...)."""
    from lowbit.sw.train.qat import scheme_config

    try:
        scheme_config("twn", (1,), activation=text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: {error}") from None
    return text


def add_train_arguments(parser):
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--scheme", choices=api.SCHEMES, help="the scheme to train")
    group.add_argument("--all", action="store_true", help="train every scheme and write the accuracy table")
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        help="model file to write (with --all: a directory for <scheme>.lbm and accuracy.json/md); "
        "a missing folder is created before training starts",
    )
    parser.add_argument(
        "--arch",
        choices=ARCHS,
        default="mlp",
        help="the network: mlp (dense layers) or cnn (three 3x3 convolutions of 32, 32 and 64 channels, the "
        "last two with 2x2 max-pooling, then the classifier) (default mlp)",
    )
    parser.add_argument(
        "--hidden",
        type=widths,
        default=None,
        metavar="W,W,...",
        help="widths of the hidden dense layers, comma-separated (default 256,256 for mlp, none for cnn)",
    )
    parser.add_argument(
        "--input-bits", type=int_from(1, 8), default=8, help="bits of the input pixel codes, 1 to 8 (default 8)"
    )
    parser.add_argument(
        "--act",
        type=_activation,
        default=None,
        help="override the hidden activations: binary, ternary, fatnn, uint<k> (k = 1..8), ...",
    )
    parser.add_argument("--epochs", type=positive_int, default=None, help="epochs (default: per scheme)")
    parser.add_argument(
        "--pretrain-epochs",
        type=positive_int,
        default=None,
        help="epochs of the first stage (fp32 for fgq, uniform8 for n-hot; default: its own)",
    )
    parser.add_argument(
        "--finetune-epochs", type=non_negative_int, default=0, help="FGQ's optional fine-tuning epochs (default 0)"
    )
    parser.add_argument(
        "--fgq-method",
        choices=("threshold", "exact"),
        default="threshold",
        help="FGQ's per-group rule: TWN's threshold k * mean|w| (default) or the exact optimum",
    )
    parser.add_argument("--lr", type=positive_float, default=None, help="learning rate (default: per scheme)")
    parser.add_argument(
        "--batch-size", type=int_from(2), default=64, help="samples per batch, at least 2 for batch norm (default 64)"
    )
    parser.add_argument(
        "--seed",
        type=integer,
        default=0,
        help="seed of the initial weights and the batch order (the data split is fixed)",
    )
    parser.add_argument("--threads", type=positive_int, default=1, help="PyTorch CPU threads (default 1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _prepare_out(out, all_schemes, scheme):
    """Check ``--out`` and create its folder, before any training."""
    folder = out if all_schemes else out.parent
    if all_schemes and out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; with --all it is the folder for the models and the accuracy table")
    if not all_schemes and out.is_dir():
        raise ValueError(f"--out {out} is a directory; give the model file to write, such as {out / (scheme + '.lbm')}")
    blocking = next((p for p in [folder, *folder.parents] if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise ValueError(f"--out {out}: {blocking} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"--out {out}: cannot create the folder {folder}: {error.strerror}") from None


def run_train(args):
    _prepare_out(args.out, args.all, args.scheme)
    options = dict(
        seed=args.seed,
        epochs=args.epochs,
        hidden=args.hidden,
        arch=args.arch,
        input_bits=args.input_bits,
        activation=args.act,
        pretrain_epochs=args.pretrain_epochs,
        finetune_epochs=args.finetune_epochs,
        fgq_method=args.fgq_method,
        lr=args.lr,
        batch_size=args.batch_size,
        threads=args.threads,
        progress=not args.no_progress,
    )
    if args.all:
        summaries = api.train_all(args.out, log=print, **options)
        print(f"wrote {args.out / 'accuracy.json'} and {args.out / 'accuracy.md'}")
        return 0 if all(s["golden_equals_pytorch"] for s in summaries) else 1
    _, summary = api.train_and_check(args.scheme, out=args.out, **options)
    print(summary_line(summary))
    return 0 if summary["golden_equals_pytorch"] else 1
