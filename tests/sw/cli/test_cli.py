import subprocess
import sys

from lowbit.sw.cli import COMMANDS, main


def test_help_lists_commands():
    result = subprocess.run([sys.executable, "-m", "lowbit", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for name in COMMANDS:
        assert name in result.stdout


def test_verilog_writes_file(tmp_path):
    out = tmp_path / "unit.v"
    assert main(["verilog", "-n", "5", "-o", str(out)]) == 0
    assert "module binary_dot" in out.read_text()


def test_bad_parameter_is_a_clear_error(capsys):
    assert main(["verilog", "-n", "0"]) == 2
    assert "n must be a positive integer, not 0" in capsys.readouterr().err
