"""``lowbit demo``: the main job.

A digits model is trained (or reused from ``build/models``), exported, and its test split run through the
golden model and through the Verilog tile in Verilator (as ``lowbit run MODEL --backend sim``).
:func:`cached_model` is also the benchmarks' way to the same trained models.
"""

from lowbit.sw import api
from lowbit.sw.cli.arguments import positive_int
from lowbit.sw.protocol import MODES
from lowbit.sw.train.schemes import ARCHS, INTEGER_SCHEMES

__all__ = ["DEMO_SCHEMES", "cached_model", "add_demo_arguments", "run_demo"]

#: Every scheme whose model a tile runs (all but fp32, the float reference).
DEMO_SCHEMES = INTEGER_SCHEMES


def add_demo_arguments(parser):
    parser.add_argument(
        "--scheme", default="binary", choices=DEMO_SCHEMES, help="the scheme to train and run (default binary)"
    )
    parser.add_argument(
        "--arch",
        choices=ARCHS,
        default="mlp",
        help="the network (default mlp); cnn: the digits CNN",
    )
    parser.add_argument("--retrain", action="store_true", help="train again even if a model is cached")
    parser.add_argument(
        "--limit", type=positive_int, metavar="N", help="only the first N test images (default all 360)"
    )
    parser.add_argument("--pe", type=positive_int, help="output channels of the MAC array (default per family)")
    parser.add_argument("--simd", type=positive_int, help="inputs per cycle of the MAC array (default per family)")
    parser.add_argument(
        "--mode",
        choices=MODES,
        help="as lowbit run's: resident loads the whole model into a tile that holds it (a CNN: a tile that "
        "walks the maps), streaming runs a layer at a time (default: auto)",
    )
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")


def cached_model(scheme, *, retrain=False, progress=True, step="", arch="mlp"):
    """The path of a trained model of ``scheme`` (default settings, network ``arch``) in ``build/models``:
    reused when it loads, else trained, exported and saved there."""
    from lowbit.sw.model.file import ModelFileError
    from lowbit.sw.paths import build_dir

    path = build_dir("models") / (f"{scheme}.lbm" if arch == "mlp" else f"{scheme}-{arch}.lbm")
    if path.exists() and not retrain:
        try:
            api.load_model(path)
            print(f"{step} reusing the trained {scheme} model {path} (--retrain to train again)".strip())
            return path
        except ModelFileError as error:
            print(f"{step} the cached model is unusable ({error}); training again".strip())
    print(
        f"{step} training the {scheme} {arch} on the digits (quantization-aware), exporting {path} ...".strip(),
        flush=True,
    )
    # One thread (as lowbit train): the trained model is reproducible.
    _, summary = api.train_and_check(scheme, out=path, threads=1, progress=progress, arch=arch)
    print(f"      trained in {summary['seconds']:.0f} s: integer accuracy {100 * summary['integer_accuracy']:.2f} %")
    return path


def run_demo(args):
    from lowbit.sw.cli.run import run_arguments, run_run

    path = cached_model(args.scheme, retrain=args.retrain, progress=args.progress, step="[1/2]", arch=args.arch)
    print(
        "[2/2] the test split through the golden model and through the Verilog tile in Verilator "
        "(driver -> compiled harness -> Verilator) ...",
        flush=True,
    )
    options = {"pe": args.pe, "simd": args.simd, "limit": args.limit, "progress": args.progress, "mode": args.mode}
    return run_run(run_arguments(path, "sim", **options))
