"""``lowbit plan FILE --board B``: which of the board's tiles runs the model, its cycles and images per
second per tile (MAC array and serial link), and the layer that bounds the rate
(:mod:`lowbit.boards.planner`)."""

from pathlib import Path

from lowbit.sw import api
from lowbit.sw.cli import CommandError

__all__ = ["add_plan_arguments", "run_plan"]


def add_plan_arguments(parser):
    from lowbit.boards.build import BOARDS

    parser.add_argument("file", type=Path, help="a lowbit model file (from lowbit train)")
    parser.add_argument("--board", required=True, choices=sorted(BOARDS), help="the board to plan for")


def run_plan(args):
    from lowbit.boards.planner import plan_board

    model = api.load_model(args.file)
    plans = plan_board(model, args.board)
    for plan in plans:
        print(plan.text())
    chosen = next((plan for plan in plans if plan.error is None), None)
    if chosen is None:
        raise CommandError(f"no tile of {args.board} runs {args.file}")
    print(f"lowbit build --board {args.board} --model {args.file} builds the {chosen.tile} tile")
    return 0
