"""``lowbit run`` and ``lowbit demo``: the golden backend on every kind of model, the one rule for options a
backend does not use, and bad input refused with one line."""

import pytest

from lowbit.sw.cli import main
from lowbit.sw.cli.run import BACKENDS, OPTIONS
from lowbit.sw.model.file import save_model


@pytest.fixture
def saved(tmp_path, tiny_models):
    """``saved(name)``: the path of the tiny model ``name`` written to a file."""

    def save(name):
        path = tmp_path / f"{name}.lbm"
        save_model(tiny_models[name], path)
        return path

    return save


def test_tiny_models_cover_every_scheme(tiny_models):
    from lowbit.sw.train.qat import ALL_SCHEMES

    assert set(ALL_SCHEMES) <= {model.scheme for model in tiny_models.values()}


def test_golden_runs_every_model(tiny_models, saved, capsys):
    """Every scheme lowbit train makes (fp32, fgq, fgq64, uniform8 ...) and every pair of weight and input
    kinds of the tiny models: the accuracy on the test split, no tile, no cycles, no self-comparison."""
    from lowbit.sw import api

    kinds = set()
    for name, model in tiny_models.items():
        kinds.update((layer.weight_kind, layer.input_kind) for layer in model.layers)
        path = saved(name)
        assert main(["run", str(path), "--backend", "golden", "--limit", "40"]) == 0
        out = capsys.readouterr().out.splitlines()
        pixels, labels = api.test_images(40)
        correct = int((api.predict(model, pixels) == labels).sum())
        assert out == [
            f"model {path} ({name}, {len(model.layers)} layers), backend golden, 40 test images",
            f"accuracy: {correct / 40:.4f} ({correct} of 40)",
        ]
    weights = {w for w, _ in kinds}
    assert {"float", "binary", "ternary", "fgq", "fatnn", "int", "nhot"} <= weights, weights


def test_golden_on_the_whole_test_split(saved, capsys):
    assert main(["run", str(saved("fp32")), "--backend", "golden"]) == 0
    assert "backend golden, 360 test images" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["fp32"])
def test_a_model_no_tile_runs_points_to_golden(saved, capsys, name):
    assert main(["run", str(saved(name)), "--backend", "model", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lowbit run: error: no tile runs this model: layer 0: ")
    assert err.endswith("; --backend golden runs every model\n") and len(err.splitlines()) == 1


def test_model_backend(saved, capsys):
    """As before the golden backend changed: the driver on the reference tile equals the golden model."""
    path = saved("fatnn")
    assert main(["run", str(path), "--backend", "model", "--limit", "30", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "backend model, popcount tile PE=8 SIMD=16" in out
    assert "outputs equal to the golden model: 300 of 300" in out
    assert "accuracy: " in out and "cycles per image: " in out and "MAC-array utilization: " in out
    assert "images per second at 100 MHz: " in out
    assert main(["run", str(path), "--pe", "3"]) == 2
    assert "pe must be a power of two, not 3" in capsys.readouterr().err


@pytest.mark.parametrize("mode", [None, "auto", "streaming", "resident"])
def test_model_backend_modes(saved, capsys, mode):
    """--mode: auto (the default) streams on the default tile, which runs a layer at a time; resident sizes the
    tile for the whole model and loads it at once. The header line names the mode taken."""
    path = saved("binary")
    given = [] if mode is None else ["--mode", mode]
    assert main(["run", str(path), "--backend", "model", "--limit", "20", "--no-progress", *given]) == 0
    out = capsys.readouterr().out.splitlines()
    taken = "resident" if mode == "resident" else "streaming"
    assert out[0].startswith(f"model {path} (binary, 3 layers), backend model, binary tile PE=8 SIMD=16 ")
    assert out[0].endswith(f", 20 test images, {taken}")
    assert "outputs equal to the golden model: 200 of 200" in out


@pytest.mark.parametrize("mode", ["streaming", "resident"])
def test_classes(saved, capsys, mode):
    """--classes: each image's class index against the golden model's; resident, the tile answers it
    (CLASSIFY), a layer at a time the driver takes it from the accumulators."""
    path = saved("binary")
    argv = ["run", str(path), "--backend", "model", "--limit", "25", "--no-progress", "--mode", mode, "--classes"]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith(f", 25 test images, {mode}")
    assert "class indices equal to the golden model's: 25 of 25" in out
    golden_line = [line for line in out if line.startswith("accuracy: ")]
    assert main(["run", str(path), "--backend", "golden", "--limit", "25"]) == 0
    assert golden_line == [line for line in capsys.readouterr().out.splitlines() if line.startswith("accuracy: ")]


def test_a_bad_mode_is_refused_at_parse_time(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "m.lbm", "--mode", "whole"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "lowbit run: error: argument --mode: invalid choice: 'whole' (choose from 'auto', 'resident', 'streaming')"
    )


# --- the one rule: an option the backend does not use is an error -------------------------------------------

VALUES = {
    "--pe": "4",
    "--simd": "4",
    "--max-batch": "4",
    "--mode": "resident",
    "--idle": None,
    "--backpressure": None,
    "--seed": "1",
    "--port": "/dev/ttyUSB1",
    "--baud": "9600",
    "--timeout": "0.5",
    "--retries": "2",
    "--classes": None,
    "--waves": "run.vcd",
    "--netlist": "ice40",
}


def test_the_table_covers_every_option():
    assert set(OPTIONS) == set(VALUES)
    assert OPTIONS["--port"] == ("serial",) and OPTIONS["--idle"] == ("sim",)
    assert OPTIONS["--pe"] == ("model", "sim") and OPTIONS["--max-batch"] == ("model", "sim", "serial")
    assert OPTIONS["--mode"] == ("model", "sim", "serial")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("option", list(VALUES))
def test_an_option_the_backend_does_not_use(tmp_path, capsys, backend, option):
    given = [option] + ([VALUES[option]] if VALUES[option] is not None else [])
    serial = ["--port", "/dev/ttyUSB1"] if backend == "serial" and option != "--port" else []
    code = main(["run", str(tmp_path / "unused.lbm"), "--backend", backend, *given, *serial])
    err = capsys.readouterr().err
    if backend in OPTIONS[option]:  # used: the run goes on to the (missing) model file
        assert code == 2 and "unused.lbm" in err and "only, not" not in err
    else:
        users = OPTIONS[option]
        names = users[0] if len(users) == 1 else ", ".join(users[:-1]) + " or " + users[-1]
        assert code == 2
        assert err == f"lowbit run: error: {option} is for --backend {names} only, not --backend {backend}\n"


def test_waves_must_be_vcd_or_fst(saved, tmp_path, capsys):
    path = tmp_path / "run.txt"
    assert main(["run", str(saved("binary")), "--backend", "sim", "--waves", str(path), "--limit", "2"]) == 2
    assert capsys.readouterr().err == f"lowbit run: error: waves must name a .vcd or .fst file, not {str(path)!r}\n"
    assert not path.exists()


def test_serial_needs_a_port(tmp_path, capsys):
    assert main(["run", str(tmp_path / "unused.lbm"), "--backend", "serial"]) == 2
    assert capsys.readouterr().err.startswith("lowbit run: error: --backend serial needs --port DEVICE")


# --- bad input: one line, exit code 2 -------------------------------------------------------------------------


def one_line_error(capsys, prefix):
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(prefix), err
    return err


@pytest.mark.parametrize("command", [["run", "{}", "--backend", "golden"], ["run", "{}"], ["report", "{}"]])
def test_a_directory_as_the_model(tmp_path, capsys, command):
    assert main([part.format(tmp_path) for part in command]) == 2
    err = one_line_error(capsys, f"lowbit {command[0]}: error: ")
    assert str(tmp_path) in err and "directory" in err


def test_a_missing_model(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing.lbm")]) == 2
    assert "missing.lbm" in one_line_error(capsys, "lowbit report: error: ")


@pytest.mark.parametrize(
    "command, option",
    [
        (["run", "m.lbm", "--limit", "0"], "--limit"),
        (["run", "m.lbm", "--limit", "-3"], "--limit"),
        (["run", "m.lbm", "--max-batch", "0"], "--max-batch"),
        (["demo", "--limit", "0"], "--limit"),
        (["demo", "--limit", "x"], "--limit"),
        (["demo", "--pe", "0"], "--pe"),
    ],
)
def test_counts_refused_at_parse_time(capsys, command, option):
    with pytest.raises(SystemExit) as exit_info:
        main(command)
    assert exit_info.value.code == 2
    value = command[command.index(option) + 1]
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"lowbit {command[0]}: error: argument {option}: invalid value '{value}': expected a positive integer"
    )


def test_demo_mode_refused_at_parse_time(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--mode", "fast"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "lowbit demo: error: argument --mode: invalid choice: 'fast' (choose from 'auto', 'resident', 'streaming')"
    )
