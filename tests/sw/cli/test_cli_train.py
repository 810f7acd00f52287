"""``lowbit train`` and ``lowbit report`` end to end (tiny networks), and a light ``lowbit --help``."""

import json
import subprocess
import sys

import pytest

from lowbit.sw.cli import main


def test_help_does_not_import_torch():
    code = ("import sys\nfrom lowbit.sw.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO TORCH')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "train" in out and "report" in out
    assert out.strip().endswith("NO TORCH")


def test_train_and_report(tmp_path, capsys):
    path = tmp_path / "twn.lbm"
    assert main(["train", "--scheme", "twn", "--hidden", "16", "--epochs", "1", "--no-progress",
                 "--out", str(path)]) == 0
    assert "equals PyTorch" in capsys.readouterr().out
    assert main(["report", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("scheme twn:") and "u8 x tern" in out and "total" in out
    assert main(["report", "--json", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["macs"] == 64 * 16 + 16 * 10


def test_report_corrupt_file(tmp_path, capsys):
    path = tmp_path / "bad.lbm"
    path.write_bytes(b"LOWBITM\n" + bytes(40))
    assert main(["report", str(path)]) == 2
    assert "unsupported format version 0" in capsys.readouterr().err


def test_train_wrong_hidden(capsys):
    assert main(["train", "--scheme", "twn", "--hidden", "16,x", "--out", "x.lbm"]) == 2
    assert "--hidden takes comma-separated widths" in capsys.readouterr().err


def test_train_all(tmp_path, capsys):
    assert main(["train", "--all", "--hidden", "64", "--epochs", "1", "--pretrain-epochs", "1", "--no-progress",
                 "--out", str(tmp_path)]) == 0
    document = json.loads((tmp_path / "accuracy.json").read_text())
    labels = [r["scheme"] for r in document["results"]]
    assert {"fp32", "binary", "twn", "fgq", "fatnn", "nhot1", "nhot2", "nhot3"} <= set(labels)
    assert all(r["golden_equals_pytorch"] for r in document["results"])
    assert all((tmp_path / f"{label}.lbm").exists() for label in labels)
    assert "| fgq |" in (tmp_path / "accuracy.md").read_text()
