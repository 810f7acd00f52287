"""The same scheme and seed give the same model file, byte for byte, through every entry point that
trains: ``lowbit train --scheme``, ``lowbit train --all`` and the accuracy benchmark (``bench/accuracy.py``
calls :func:`lowbit.sw.train.qat.train_all`, as ``--all`` does)."""

import pytest
import torch

from lowbit.sw.cli import main
from lowbit.sw.train.qat import TrainSettings, train_all

#: Small and quick: the property does not depend on the size.
HIDDEN, EPOCHS, SEED = (24,), 2, 7


@pytest.mark.parametrize("scheme", ["twn", "uniform8", "nhot2"])
def test_same_seed_same_model_through_every_entry_point(tmp_path, scheme):
    threads = torch.get_num_threads()
    try:
        cli_file = tmp_path / "cli" / f"{scheme}.lbm"
        cli_file.parent.mkdir()
        assert (
            main(
                [
                    "train",
                    "--scheme",
                    scheme,
                    "--out",
                    str(cli_file),
                    "--hidden",
                    "24",
                    "--epochs",
                    str(EPOCHS),
                    "--pretrain-epochs",
                    str(EPOCHS),
                    "--seed",
                    str(SEED),
                    "--no-progress",
                ]
            )
            == 0
        )
        all_file = tmp_path / "all" / f"{scheme}.lbm"
        torch.set_num_threads(1)  # as bench/accuracy.py does
        settings = TrainSettings(hidden=HIDDEN, epochs=EPOCHS, pretrain_epochs=EPOCHS, seed=SEED, progress=False)
        train_all(all_file.parent, settings, (scheme,), log=lambda line: None)
    finally:
        torch.set_num_threads(threads)
    assert cli_file.read_bytes() == all_file.read_bytes(), f"{scheme}, seed {SEED}: the model files differ"
