"""``lowbit verilog``: the Verilog of a hardware unit (``--unit``, ``-n``, ``--pipeline-depth``), of the tile
that runs a model (``--model FILE``, ``--pe``, ``--simd``) or of a board's top level (``--board``, with
``--model FILE`` the tile ``lowbit plan`` sizes for that model, within ``--luts``)."""

from pathlib import Path

from lowbit.sw import api
from lowbit.sw.cli.arguments import non_negative_int, positive_int

__all__ = ["add_verilog_arguments", "run_verilog"]

#: What each option belongs to: a unit, a model's tile or a board (given together, they are an error).
_TARGETS = {
    "unit": ("--unit", "-n", "--pipeline-depth"),
    "model": ("--model", "--pe", "--simd"),
    "board": ("--board", "--luts"),
}


def add_verilog_arguments(parser):
    from lowbit.boards.build import BOARDS

    parser.add_argument("--unit", choices=api.UNITS, help="the unit to write (the default: xor_popcount)")
    parser.add_argument("-n", type=positive_int, help="the unit's taps (lanes) (default 64)")
    parser.add_argument("--pipeline-depth", type=non_negative_int, help="the unit's register stages (default 2)")
    parser.add_argument(
        "--model", type=Path, metavar="FILE", help="write the tile that runs this model file instead of a unit"
    )
    parser.add_argument("--pe", type=positive_int, help="with --model: output channels of the MAC array")
    parser.add_argument("--simd", type=positive_int, help="with --model: inputs per cycle of the MAC array")
    parser.add_argument(
        "--board",
        choices=sorted(BOARDS),
        help="write the top level of this board (its pins, LEDs and tile; with --model, the tile lowbit plan "
        "sizes for the model) instead of a unit",
    )
    parser.add_argument(
        "--luts", type=positive_int, help="with --model and --board: the LUT4 budget of the tile (lowbit plan --luts)"
    )
    parser.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")


def _given(args):
    """The targets (unit, model, board) whose options were given, each with those options."""
    given = {}
    for target, options in _TARGETS.items():
        names = [o for o in options if getattr(args, o.lstrip("-").replace("-", "_")) is not None]
        if names:
            given[target] = names
    return given


def run_verilog(args):
    given = _given(args)
    if "board" in given and given.get("model") == ["--model"]:
        given.pop("model")  # --model FILE --board B: the board's tile for the model
    if len(given) > 1:
        (first, a), (second, b) = list(given.items())[:2]
        raise ValueError(
            f"{' and '.join(a)} ({first}) and {' and '.join(b)} ({second}) do not go together: "
            f"lowbit verilog writes a unit, a model's tile (--model), a board (--board) or a board's tile for a "
            "model (--model and --board)"
        )
    if "board" in given:
        text = api.verilog(args.model, board=args.board, luts=args.luts)
    elif "model" in given:
        if args.model is None:
            names = given["model"]
            raise ValueError(
                f"{' and '.join(names)} {'is' if len(names) == 1 else 'are'} for --model FILE only, "
                "the model whose tile to write"
            )
        text = api.verilog(args.model, pe=args.pe, simd=args.simd)
    else:
        name = args.unit or api.UNITS[0]
        n = 64 if args.n is None else args.n
        text = api.verilog(api.unit(name, n, args.pipeline_depth), name=name)
    if args.output:
        if args.output.is_dir():
            raise ValueError(f"-o {args.output} is a directory; give the file to write")
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        print(f"wrote {args.output} ({len(text.splitlines())} lines)")
    else:
        print(text)
    return 0
