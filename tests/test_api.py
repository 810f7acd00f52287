"""The Python API (``lowbit.sw.api``, re-exported by ``lowbit``): the walk-through of ``docs/python-api.md``
run as it is written, a light ``import lowbit``, and the API's checks of its arguments."""

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lowbit.sw import api
from lowbit.sw.paths import BUILD_DIR_VARIABLE, build_root

DOC = Path(__file__).resolve().parent.parent / "docs" / "python-api.md"


def doc_examples():
    """The ``python`` code blocks of the walk-through: ``(title of their section, code)``."""
    text = DOC.read_text()
    blocks = []
    for match in re.finditer(r"```python\n(.*?)```", text, re.S):
        title = re.findall(r"^### (.*)$", text[: match.start()], re.M)[-1]
        blocks.append((title, match.group(1)))
    return blocks


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in ``tmp_path`` (the example writes ``models/``), with the usual build folder (Verilator caches)."""
    monkeypatch.setenv(BUILD_DIR_VARIABLE, str(build_root()))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_examples(skip_verilator):
    namespace = {}
    for title, code in doc_examples():
        if skip_verilator and "Verilator" in title:
            continue
        exec(compile(code, f"{DOC.name}: {title}", "exec"), namespace)
    return namespace


def test_the_walk_through_has_its_parts():
    titles = [title for title, _ in doc_examples()]
    assert titles == [
        "Train, export, save",
        "The golden model",
        "On a tile: the reference tile in Python",
        "On a tile: the Verilog in Verilator",
        "Verilog",
    ]


def test_the_walk_through(in_tmp, capsys):
    namespace = run_examples(skip_verilator=True)
    assert (in_tmp / "models" / "binary.lbm").exists() and (in_tmp / "models" / "copy.lbm").exists()
    assert namespace["expected"].shape == (20, 10)
    out = capsys.readouterr().out
    assert "binary ['64->32', '32->10']" in out and "scheme binary:" in out and "golden accuracy:" in out


@pytest.mark.verilator
def test_the_walk_through_with_verilator(in_tmp):
    namespace = run_examples(skip_verilator=False)
    assert namespace["outputs"].shape == (8, 10)


def test_import_lowbit_is_light():
    code = (
        "import sys, lowbit\n"
        "heavy = lambda: sorted(m for m in ('torch', 'amaranth', 'sklearn', 'numpy') "
        "if m in sys.modules)\n"
        "print(lowbit.__version__, heavy())\n"
        "lowbit.load_model, lowbit.run_on_tile, lowbit.verilog\n"
        "print(heavy())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    from importlib.metadata import version

    assert out.splitlines() == [f"{version('lowbit')} []", "[]"]  # the functions import what they need


def test_lowbit_offers_the_api():
    import lowbit

    assert lowbit.train is api.train and lowbit.run_on_tile is api.run_on_tile and lowbit.verilog is api.verilog
    assert "golden" in dir(lowbit)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = lowbit.nothing


def test_schemes_are_the_training_modules():
    from lowbit.sw.train.qat import ALL_SCHEMES, VARIANTS

    assert api.SCHEMES == ALL_SCHEMES + tuple(VARIANTS)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"epochs": 0}, "epochs must be a positive integer or None, not 0"),
        ({"batch_size": 1}, "batch_size must be an integer of at least 2, not 1"),
        ({"threads": 0}, "threads must be a positive integer or None, not 0"),
        ({"lr": -1.0}, "lr must be a positive number"),
        ({"hidden": (16, 0)}, "hidden must be a sequence of positive widths"),
        ({"activation": "binary", "scheme": "fgq"}, "FGQ takes unsigned k-bit activations"),
        ({"hidden": (16,), "scheme": "fgq64"}, r"input width \(16\) to be a multiple of group_size \(64\)"),
        ({"scheme": "ternary"}, "scheme must be one of fp32, binary"),
    ],
)
def test_train_checks_before_training(tmp_path, options, message):
    scheme = options.pop("scheme", "twn")
    with pytest.raises(ValueError, match=message):
        api.train(scheme, out=tmp_path / "x.lbm", **options)
    assert list(tmp_path.iterdir()) == []


def test_train_out_is_a_directory(tmp_path):
    with pytest.raises(ValueError, match="is a directory, not a model file"):
        api.train("twn", out=tmp_path)


def test_models_from_files_and_objects(tmp_path, tiny_models_api):
    model = tiny_models_api
    path = api.save_model(model, tmp_path / "a" / "b" / "m.lbm")
    pixels, labels = api.test_images(10)
    assert np.array_equal(api.golden(path, pixels), api.golden(model, pixels))
    assert api.accuracy(model, labels, pixels) == api.accuracy(api.golden(model, pixels), labels)
    with pytest.raises(ValueError, match="is a directory"):
        api.load_model(tmp_path)
    with pytest.raises(ValueError, match="is a directory"):
        api.save_model(model, tmp_path)


@pytest.fixture(scope="module")
def tiny_models_api():
    return api.train("binary", hidden=(16,), epochs=1, seed=3)


@pytest.mark.parametrize(
    "backend, options, message",
    [
        ("model", {"idle": True}, "idle is for backend 'sim' only, not backend 'model'"),
        ("model", {"port": "/dev/ttyUSB1"}, "port is for backend 'serial' only, not backend 'model'"),
        ("serial", {"pe": 4, "port": "x"}, "pe is for backend 'model' or 'sim' only, not backend 'serial'"),
        ("serial", {}, "backend 'serial' needs port"),
        ("golden", {}, "backend must be one of 'model', 'sim', 'serial'"),
    ],
)
def test_tile_options_the_backend_does_not_use(tiny_models_api, backend, options, message):
    with pytest.raises(ValueError, match=message):
        api.run_on_tile(tiny_models_api, np.zeros((1, 64), np.uint8), backend=backend, **options)


def test_tile_modes(tiny_models_api):
    """mode: auto streams on the default tile; resident sizes the tile for the whole model (LOAD_MODEL); a
    mode of another name is refused."""
    from lowbit.sw.host import MODES
    from lowbit.sw.protocol import ProtocolError

    model, (pixels, _) = tiny_models_api, api.test_images(12)
    expected = api.golden(model, pixels)
    assert api.MODES == MODES == ("auto", "resident", "streaming")
    runs = {mode: api.tile_run(model, pixels, mode=mode) for mode in (None, *MODES)}
    assert {mode: run.mode for mode, run in runs.items()} == {
        None: "streaming",
        "auto": "streaming",
        "resident": "resident",
        "streaming": "streaming",
    }
    for run in runs.values():
        assert np.array_equal(run.outputs, expected)
    assert runs["resident"].geometry == api.default_geometry(model, resident=True)
    assert runs["resident"].geometry.max_layers == len(model.layers)
    assert runs["resident"].cycles == runs[None].cycles
    resident = api.default_geometry(model, resident=True)
    assert api.run_mode(api.check_fit(model, resident), resident) == "resident"
    assert np.array_equal(api.run_on_tile(model, pixels, geometry=resident, mode="streaming"), expected)
    with pytest.raises(ValueError, match="^mode must be one of 'auto', 'resident', 'streaming', not 'whole'$"):
        api.run_on_tile(model, pixels, mode="whole")
    with pytest.raises(
        ProtocolError,
        match=r"^the model does not fit the tile: the tile cannot hold the model resident \(TOO_LARGE\): "
        r"the tile runs one layer at a time \(no resident mode\)$",
    ):
        api.run_on_tile(model, pixels, geometry=api.default_geometry(model), mode="resident")


def test_run_on_tile_inside_a_running_event_loop(tiny_models_api):
    """A notebook runs an event loop: run_on_tile still needs no await."""
    pixels, _ = api.test_images(6)

    async def notebook_cell():
        return api.run_on_tile(tiny_models_api, pixels)

    assert np.array_equal(asyncio.run(notebook_cell()), api.golden(tiny_models_api, pixels))


def test_a_float_model_runs_on_no_tile(tmp_path):
    model = api.train("fp32", hidden=(8,), epochs=1)
    assert api.golden(model, api.test_images(3)[0]).dtype == np.float64
    from lowbit.sw.protocol import ProtocolError

    with pytest.raises(ProtocolError, match="no tile runs float weights"):
        api.run_on_tile(model, api.test_images(3)[0])
