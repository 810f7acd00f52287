"""The ``lowbit`` command itself: its help, ``--version``, ``python -m lowbit``, ``lowbit verilog``, the shared
argument types, and output into a pipe that closes early."""

import argparse
import subprocess
import sys

import pytest

from lowbit.sw.cli import COMMANDS, arguments, main


def test_help_lists_commands():
    result = subprocess.run([sys.executable, "-m", "lowbit", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for name in COMMANDS:
        assert name in result.stdout
    assert "--version" in result.stdout


def test_version(capsys):
    from importlib.metadata import version

    import lowbit

    assert lowbit.__version__ == version("lowbit")
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"lowbit {lowbit.__version__}\n"


def test_python_dash_m_lowbit():
    import lowbit

    result = subprocess.run([sys.executable, "-m", "lowbit", "--version"], capture_output=True, text=True)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"lowbit {lowbit.__version__}\n", "")
    result = subprocess.run(
        [sys.executable, "-m", "lowbit", "run", "--limit", "0", "x.lbm"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert (
        result.stderr.splitlines()[-1]
        == "lowbit run: error: argument --limit: invalid value '0': expected a positive integer"
    )


def test_every_command_has_its_module():
    import importlib

    for name, (module, _) in COMMANDS.items():
        assert module == f"lowbit.sw.cli.{name}"
        loaded = importlib.import_module(module)
        assert callable(getattr(loaded, f"add_{name}_arguments")) and callable(getattr(loaded, f"run_{name}"))


def test_verilog_writes_file(tmp_path):
    out = tmp_path / "unit.v"
    assert main(["verilog", "-n", "5", "-o", str(out)]) == 0
    assert "module xor_popcount" in out.read_text()


def test_bad_parameter_is_a_clear_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["verilog", "-n", "0"])
    assert exit_info.value.code == 2
    assert "argument -n: invalid value '0': expected a positive integer" in capsys.readouterr().err


@pytest.mark.parametrize(
    "options, message",
    [
        (["--board", "icebreaker", "-n", "4"], "-n (unit) and --board (board) do not go together"),
        (["--model", "m.lbm", "--unit", "xor_popcount"], "--unit (unit) and --model (model) do not go together"),
        (["--pe", "4"], "--pe is for --model FILE only"),
    ],
)
def test_verilog_options_that_do_not_go_together(capsys, options, message):
    assert main(["verilog", *options]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lowbit verilog: error: {message}") and len(err.splitlines()) == 1


def test_verilog_of_a_models_tile(tmp_path, tiny_models, capsys):
    from lowbit.sw.model.file import save_model

    path = tmp_path / "twn.lbm"
    save_model(tiny_models["twn"], path)
    assert main(["verilog", "--model", str(path), "--pe", "2", "--simd", "4", "-o", str(tmp_path / "t.v")]) == 0
    assert "module tile" in (tmp_path / "t.v").read_text()


# --- the shared argument types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "type_, text, message",
    [
        (arguments.positive_int, "0", "invalid value '0': expected a positive integer"),
        (arguments.positive_int, "x", "invalid value 'x': expected a positive integer"),
        (arguments.non_negative_int, "-1", "invalid value '-1': expected a non-negative integer"),
        (arguments.int_from(2), "1", "invalid value '1': expected an integer of at least 2"),
        (arguments.int_from(1, 8), "9", "invalid value '9': expected an integer from 1 to 8"),
        (arguments.positive_float, "0", "invalid value '0': expected a positive number"),
        (arguments.positive_float, "nan", "invalid value 'nan': expected a positive number"),
        (arguments.integer, "1.5", "invalid value '1.5': expected an integer"),
        (arguments.widths, "16,x", "invalid value '16,x': expected comma-separated positive widths"),
        (arguments.widths, "16,0", "invalid value '16,0': expected comma-separated positive widths"),
    ],
)
def test_argument_types(type_, text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        type_(text)


def test_argument_types_accept():
    assert arguments.positive_int("3") == 3 and arguments.non_negative_int("0") == 0
    assert arguments.int_from(1, 8)("8") == 8 and arguments.positive_float("0.5") == 0.5
    assert arguments.widths("256, 128") == (256, 128) and arguments.integer("-4") == -4


# --- a pipe that closes early ------------------------------------------------------------------------------


def test_broken_pipe_ends_quietly(tmp_path, tiny_models):
    """``lowbit report m.lbm | head -3``: the reader has gone before lowbit writes; no traceback."""
    from lowbit.sw.model.file import save_model

    path = tmp_path / "binary.lbm"
    save_model(tiny_models["binary"], path)
    for command in (["report", str(path)], ["report", "--json", str(path)], ["--help"]):
        process = subprocess.Popen(
            [sys.executable, "-m", "lowbit", *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        process.stdout.close()  # before the interpreter has even started
        err = process.stderr.read().decode()
        process.stderr.close()
        code = process.wait()
        assert err == ""
        assert code == (0 if command == ["--help"] else 1)  # argparse itself ignores the closed pipe


def test_broken_pipe_in_main(monkeypatch, capsys, tmp_path, tiny_models):
    from lowbit.sw.model.file import save_model

    path = tmp_path / "binary.lbm"
    save_model(tiny_models["binary"], path)

    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["report", str(path)]) == 1
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--scheme", "twn", "--epochs", "0", "--out", "x.lbm"],
        ["run", "m.lbm", "--limit", "0"],
        ["demo", "--limit", "0"],
        ["frobnicate"],
    ],
)
def test_usage_errors_are_one_line(capsys, argv):
    try:
        code = main(argv)
    except SystemExit as exit:
        code = exit.code
    assert code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("lowbit") and ": error: " in err, err


@pytest.mark.synth
def test_synth_array_on_ecp5(capsys):
    assert main(["synth", "--unit", "xor_popcount", "-n", "8", "--pe", "2", "--family", "ecp5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("xor_popcount n=8 x PE 2 pipeline_depth=1 on ecp5: ")
    assert " CCU2C, " in out and "LUT4-equivalents per MAC (LUT4 + 2 x CCU2C)" in out


@pytest.mark.synth
@pytest.mark.parametrize("unit", ["ternary_dot", "bitserial4", "nhot1"])
def test_synth_each_unit(capsys, unit):
    assert main(["synth", "--unit", unit, "-n", "4"]) == 0
    assert f"{unit} n=4 pipeline_depth=1 on ice40: " in capsys.readouterr().out


def test_cache_show_and_clean(tmp_path, monkeypatch, capsys):
    """``lowbit cache`` counts the builds of the per-user cache ($LOWBIT_CACHE_DIR here) and their size;
    ``lowbit cache clean`` removes them, and a cache that does not exist yet is empty."""
    monkeypatch.setenv("LOWBIT_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["cache"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"{tmp_path / 'cache'}: 0 builds, 0.0 MiB"
    for kind, name in [("harness", "tile-1"), ("harness", "tile-2"), ("verilator", "unit-1")]:
        folder = tmp_path / "cache" / kind / name
        folder.mkdir(parents=True)
        (folder / "lib.so").write_bytes(bytes(2**20))
    assert main(["cache"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"{tmp_path / 'cache'}: 3 builds, 3.0 MiB"
    assert main(["cache", "clean"]) == 0
    assert capsys.readouterr().out == f"removed 3 builds (3.0 MiB) from {tmp_path / 'cache'}\n"
    assert main(["cache"]) == 0
    assert capsys.readouterr().out.startswith(f"{tmp_path / 'cache'}: 0 builds, 0.0 MiB")
    with pytest.raises(SystemExit):
        main(["cache", "wipe"])
    assert "invalid choice: 'wipe'" in capsys.readouterr().err
