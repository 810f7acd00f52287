"""``lowbit demo`` and ``lowbit verilog``.

``lowbit demo`` runs the main job (:func:`run_demo`); ``lowbit verilog`` writes the Verilog of a unit.
"""

from pathlib import Path

__all__ = ["cached_model", "add_demo_arguments", "run_demo", "add_verilog_arguments", "run_verilog"]

UNITS = ("binary_dot",)


def _unit(name, n, pipeline_depth):
    if name not in UNITS:
        raise ValueError(f"unit must be one of {', '.join(UNITS)}, not {name!r}")
    from lowbit.hw.units.binary_dot import BinaryDotProduct
    return BinaryDotProduct(n, pipeline_depth)


def add_verilog_arguments(parser):
    parser.add_argument("--unit", default="binary_dot", choices=UNITS)
    parser.add_argument("-n", type=int, default=64, help="taps (lanes)")
    parser.add_argument("--pipeline-depth", type=int, default=None, help="register stages (default 2)")
    parser.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")
    from lowbit.boards.build import add_board_argument
    add_board_argument(parser)


def run_verilog(args):
    if getattr(args, "board", None):
        from lowbit.boards.build import top_verilog
        text = top_verilog(args.board)
    else:
        from lowbit.sim.verilator import verilog_of
        text = verilog_of(_unit(args.unit, args.n, args.pipeline_depth), args.unit)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        print(f"wrote {args.output} ({len(text.splitlines())} lines)")
    else:
        print(text)
    return 0


DEMO_SCHEMES = ("binary", "fatnn", "twn", "nhot2")


def add_demo_arguments(parser):
    parser.add_argument("--scheme", default="binary", choices=DEMO_SCHEMES,
                        help="the scheme to train and run (default binary)")
    parser.add_argument("--retrain", action="store_true", help="train again even if a model is cached")
    parser.add_argument("--limit", type=int, help="only the first N test images (default all 360)")
    parser.add_argument("--pe", type=int, help="output channels of the MAC array (default per family)")
    parser.add_argument("--simd", type=int, help="inputs per cycle of the MAC array (default per family)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")


def cached_model(scheme, *, retrain=False, progress=True, step=""):
    """The path of a trained model of ``scheme`` (default settings) in ``build/models``: reused when it
    loads, else trained, exported and saved there."""
    from lowbit.sw.paths import build_dir
    from lowbit.sw.model.file import ModelFileError, load_model

    path = build_dir("models") / f"{scheme}.lbm"
    if path.exists() and not retrain:
        try:
            load_model(path)
            print(f"{step} reusing the trained {scheme} model {path} (--retrain to train again)".strip())
            return path
        except ModelFileError as error:
            print(f"{step} the cached model is unusable ({error}); training again".strip())
    import torch

    from lowbit.sw.train.export import export_model
    from lowbit.sw.model.file import save_model
    from lowbit.sw.train.qat import TrainSettings, train_scheme
    torch.set_num_threads(1)  # as `lowbit train` does: one thread, so the trained model is reproducible
    print(f"{step} training the {scheme} scheme on the digits (quantization-aware), exporting {path} ...".strip(),
          flush=True)
    result = train_scheme(scheme, TrainSettings(progress=progress))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_model(export_model(result.net, scheme), path)
    print(f"      trained in {result.seconds:.0f} s: integer accuracy {100 * result.integer_accuracy:.2f} %")
    return path


def run_demo(args):
    """The main job: a digits model trained (or reused from ``build/models``), exported, and its test
    split run through the golden model and through the Verilog tile in Verilator (``lowbit run``)."""
    import argparse

    from lowbit.sw.cli.run import run_run

    path = cached_model(args.scheme, retrain=args.retrain, progress=args.progress, step="[1/2]")
    print("[2/2] the test split through the golden model and through the Verilog tile in Verilator "
          "(driver -> cocotb -> Verilator) ...", flush=True)
    run_args = argparse.Namespace(model=path, backend="sim", pe=args.pe, simd=args.simd, limit=args.limit,
                                  max_batch=None, idle=False, backpressure=False, seed=20261123,
                                  progress=args.progress)
    return run_run(run_args)
