"""Small digits models trained for the simulation tests (accuracy is not the point: the bit-exact
comparison with the golden model is)."""

#: The models of the tile tests (tests/sim/test_tile_verilator.py, test_resident_verilator.py): scheme ->
#: (hidden widths, hidden activation override); binary hidden codes (one plane), FATNN's ternary planes,
#: 8-bit uint codes on the n-hot array (255 thresholds per channel: the threshold search). Both modules
#: train them alike, so that a shape they share is one Verilog and one Verilator build.
TILE_MODELS = {"binary": ((32, 24), None), "fatnn": ((40, 24), None), "nhot2": ((24,), None)}


def train_tile_models(folder):
    """:data:`TILE_MODELS`, trained as :func:`train_models` does (2 epochs, seed 7)."""
    return train_models(folder, TILE_MODELS, epochs=2, seed=7)


def train_models(folder, models, *, epochs, seed):
    """``{scheme: (path, model)}``: each ``scheme: (hidden widths, hidden activation override)`` of
    ``models`` trained on the digits for ``epochs`` (and as many pretraining epochs) from ``seed``,
    exported to ``folder / f"{scheme}.lbm"`` and read back."""
    import torch

    from lowbit.sw.model.file import load_model, save_model
    from lowbit.sw.train.data import load_digits_split
    from lowbit.sw.train.export import export_model
    from lowbit.sw.train.qat import TrainSettings, train_scheme

    torch.set_num_threads(1)
    split = load_digits_split()
    trained = {}
    for scheme, (hidden, activation) in models.items():
        settings = TrainSettings(
            hidden=hidden, activation=activation, epochs=epochs, pretrain_epochs=epochs, progress=False, seed=seed
        )
        path = folder / f"{scheme}.lbm"
        save_model(export_model(train_scheme(scheme, settings, split).net, scheme), path)
        trained[scheme] = (path, load_model(path))
    return trained


def check_tile_run(result, model, pixels, geometry, label):
    """A run of ``model`` on ``pixels`` (:func:`lowbit.sim.tile_transport.run_model_on_tile`'s ``result``):
    every output equal to the golden model's, and the MAC array busy exactly ``ceil(out/PE) *
    ceil(in/SIMD) * planes`` cycles per image and layer (per window of a convolution; resident on a tile that
    walks maps, per position it walks: :meth:`TileGeometry.cycles_per_vector` of the walks). ``label``
    (with the seed) heads a failure."""
    import numpy as np

    from lowbit.sw.golden import GoldenNetwork
    from lowbit.sw.host import tile_layers
    from lowbit.sw.host.plan import has_windows, resident_layers

    got, expected = np.array(result["outputs"]), GoldenNetwork(model).run(pixels)
    assert got.shape == expected.shape
    assert (got == expected).all(), f"{label}: {int((got != expected).sum())} of {expected.size} outputs differ"
    if result["mode"] == "resident" and has_windows(model):
        per_image = sum(geometry.cycles_per_vector(c) for c in resident_layers(model, geometry))
    else:
        configs = tile_layers(model, geometry)
        per_image = sum(layer.positions * geometry.cycles_per_vector(c) for layer, c in zip(model.layers, configs))
    assert result["mac_beats"] == len(pixels) * per_image


def check_script(geometry, steps, seed):
    """``steps`` (send / reset / expect, :func:`lowbit.sim.tile_transport.run_script_on_tile`) on the tile
    with idle input and back-pressure from ``seed``: every response ``==`` the expected words, nothing
    after the last."""
    from lowbit.sim.tile_transport import run_script_on_tile

    answers, extra = run_script_on_tile(geometry, steps, seed=seed, idle=True, backpressure=True)
    expected = [step["expect"] for step in steps if "expect" in step]
    for index, (got, want) in enumerate(zip(answers, expected)):
        assert got == want, (
            f"seed {seed}, expect step {index}: got {[hex(w) for w in got]}, expected {[hex(w) for w in want]}"
        )
    assert extra == [], f"seed {seed}: words after the last response: {[hex(w) for w in extra]}"
