"""``lowbit train`` and ``lowbit report`` end to end (tiny networks), a light ``lowbit --help``, and the
training options refused before any training."""

import json
import subprocess
import sys

import pytest

from lowbit.sw.cli import main


def test_help_does_not_import_torch():
    code = (
        "import sys\nfrom lowbit.sw.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO TORCH')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "train" in out and "report" in out
    assert out.strip().endswith("NO TORCH")


def test_train_and_report(tmp_path, capsys):
    path = tmp_path / "twn.lbm"
    assert (
        main(["train", "--scheme", "twn", "--hidden", "16", "--epochs", "1", "--no-progress", "--out", str(path)]) == 0
    )
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
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--scheme", "twn", "--hidden", "16,x", "--out", "x.lbm"])
    assert exit_info.value.code == 2
    assert (
        "argument --hidden: invalid value '16,x': expected comma-separated positive widths such as 256,256"
        in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    "option, value, expected",
    [
        ("--batch-size", "0", "an integer of at least 2"),
        ("--batch-size", "1", "an integer of at least 2"),
        ("--batch-size", "-5", "an integer of at least 2"),
        ("--epochs", "0", "a positive integer"),
        ("--epochs", "-1", "a positive integer"),
        ("--pretrain-epochs", "0", "a positive integer"),
        ("--finetune-epochs", "-1", "a non-negative integer"),
        ("--threads", "0", "a positive integer"),
        ("--lr", "0", "a positive number"),
        ("--input-bits", "9", "an integer from 1 to 8"),
        ("--seed", "x", "an integer"),
    ],
)
def test_training_options_refused_at_parse_time(tmp_path, capsys, option, value, expected):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--scheme", "twn", option, value, "--out", str(tmp_path / "m.lbm")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"lowbit train: error: argument {option}: invalid value '{value}': expected {expected}"
    )
    assert list(tmp_path.iterdir()) == []


def test_train_wrong_activation(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--scheme", "twn", "--act", "uint9", "--out", str(tmp_path / "m.lbm")])
    assert "argument --act: invalid value 'uint9': activation must be" in capsys.readouterr().err


def test_train_out_is_a_directory(tmp_path, capsys):
    assert main(["train", "--scheme", "twn", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"lowbit train: error: --out {tmp_path} is a directory; give the model file "
        f"to write, such as {tmp_path / 'twn.lbm'}\n"
    )


def test_train_out_below_a_file(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert main(["train", "--scheme", "twn", "--out", str(tmp_path / "file" / "m.lbm")]) == 2
    assert capsys.readouterr().err == (
        f"lowbit train: error: --out {tmp_path / 'file' / 'm.lbm'}: {tmp_path / 'file'} is a file, not a folder\n"
    )


def test_train_all_out_is_a_file(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert main(["train", "--all", "--out", str(tmp_path / "file")]) == 2
    assert "with --all it is the folder for the models" in capsys.readouterr().err


def test_train_settings_refused_before_training(tmp_path, capsys):
    """A network the scheme cannot build (FGQ with N = 64 on 16 inputs) fails before the fp32 stage trains."""
    assert (
        main(["train", "--scheme", "fgq64", "--hidden", "16", "--no-progress", "--out", str(tmp_path / "m.lbm")]) == 2
    )
    err = capsys.readouterr().err
    assert err == "lowbit train: error: FGQ needs the input width (16) to be a multiple of group_size (64)\n"
    assert main(["train", "--scheme", "fgq", "--act", "binary", "--out", str(tmp_path / "m.lbm")]) == 2
    assert "FGQ takes unsigned k-bit activations (uint<k>), not 'binary'" in capsys.readouterr().err


def test_train_creates_the_folder_of_out(tmp_path, capsys):
    path = tmp_path / "missing" / "dir" / "m.lbm"
    assert (
        main(["train", "--scheme", "twn", "--hidden", "16", "--epochs", "1", "--no-progress", "--out", str(path)]) == 0
    )
    assert path.exists() and f"-> {path}" in capsys.readouterr().out


def test_train_all(tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "--all",
                "--hidden",
                "64",
                "--epochs",
                "1",
                "--pretrain-epochs",
                "1",
                "--no-progress",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    document = json.loads((tmp_path / "accuracy.json").read_text())
    labels = [r["scheme"] for r in document["results"]]
    assert {"fp32", "binary", "twn", "fgq", "fatnn", "nhot1", "nhot2", "nhot3"} <= set(labels)
    assert all(r["golden_equals_pytorch"] for r in document["results"])
    assert all((tmp_path / f"{label}.lbm").exists() for label in labels)
    assert "| fgq |" in (tmp_path / "accuracy.md").read_text()
    out = capsys.readouterr().out
    assert "equals PyTorch" in out and f"wrote {tmp_path / 'accuracy.json'}" in out
