"""``lowbit plan FILE --board B [--luts N]``: the tile sized for the model on the board (PE x SIMD, memories,
mode) within the board's LUT budget or ``--luts N``, with its predicted LUTs and block RAM, cycles and
images/s (MAC array and serial link) and the layer that bounds the rate; then the board's own tiles
(:mod:`lowbit.boards.planner`)."""

from pathlib import Path

from lowbit.sw import api
from lowbit.sw.cli import CommandError
from lowbit.sw.cli.arguments import positive_int

__all__ = ["add_plan_arguments", "run_plan"]


def add_plan_arguments(parser):
    from lowbit.boards.build import BOARDS
    from lowbit.boards.planner import OBJECTIVES

    parser.add_argument("file", type=Path, help="a lowbit model file (from lowbit train)")
    parser.add_argument("--board", required=True, choices=sorted(BOARDS), help="the board to plan for")
    parser.add_argument(
        "--luts", type=positive_int, help="LUT4 positions the tile may take (default: the board's budget)"
    )
    parser.add_argument(
        "--objective",
        choices=OBJECTIVES,
        default="link",
        help="maximize the images/s delivered over the board's link (default), the MAC array's alone "
        "(compute), or the MAC array's per LUT4 (efficiency)",
    )


def run_plan(args):
    from lowbit.boards.planner import plan_board, search_board

    model = api.load_model(args.file)
    found = search_board(model, args.board, luts=args.luts, objective=args.objective)
    print(found.text())
    print(f"the board's own tiles ({args.board}: GEOMETRIES, built by lowbit build --board {args.board}):")
    for plan in plan_board(model, args.board):
        print("  " + plan.text().replace("\n", "\n  "))
    if found.best is None:
        raise CommandError(f"no tile for {args.file} fits {args.board} within {found.budget.text()}")
    if args.objective == "link":
        budget = "" if args.luts is None else f" --luts {args.luts}"
        print(f"lowbit build --board {args.board} --model {args.file}{budget} builds the planned tile")
    else:
        print("lowbit build --model builds the tile planned for the link (--objective link)")
    return 0
