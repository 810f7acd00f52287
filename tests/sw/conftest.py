"""Shared fixtures of the software tests: the digits split and tiny trained networks, once per session."""

import pytest


@pytest.fixture(scope="session")
def split():
    from lowbit.sw.train.data import load_digits_split

    return load_digits_split()


# Tiny networks: every scheme, plus configurations that reach the remaining golden units (ternary
# activations, binary activations against ternary/n-hot/FGQ weights, FATNN activations against binary
# weights, signed k-bit activations, 4-bit input). name: (scheme, hidden, activation override, input bits)
TINY = {
    "fp32": ("fp32", (32,), None, 8),
    "binary": ("binary", (32, 24), None, 8),
    "twn": ("twn", (32,), None, 8),
    "fgq": ("fgq", (32,), None, 8),
    "fgq64": ("fgq64", (64,), None, 8),
    "fatnn": ("fatnn", (32, 24), None, 8),
    "uniform8": ("uniform8", (32,), None, 8),
    "nhot1": ("nhot1", (32,), None, 8),
    "nhot2": ("nhot2", (32,), None, 8),
    "nhot3": ("nhot3", (32,), None, 8),
    "twn-ternary-act": ("twn", (32, 24), "ternary", 4),
    "twn-binary-act": ("twn", (32, 24), "binary", 8),
    "binary-fatnn-act": ("binary", (32, 24), "fatnn", 8),
    "binary-ternary-act": ("binary", (32,), "ternary", 3),
    "nhot2-binary-act": ("nhot2", (32, 24), "binary", 8),
    "uniform8-ternary-act": ("uniform8", (32,), "ternary", 8),
    "fgq-uint4": ("fgq", (32,), "uint4", 8),
    "twn-int-act": ("twn", (32, 24), "int4", 8),
    "binary-int-act": ("binary", (32, 24), "int3", 8),
    "uniform8-int-act": ("uniform8", (32,), "int4", 8),
}


def pytest_generate_tests(metafunc):
    """``integer_name``: one test per tiny integer network."""
    if "integer_name" in metafunc.fixturenames:
        metafunc.parametrize("integer_name", [name for name in TINY if name != "fp32"])


@pytest.fixture(scope="session")
def tiny_nets(split):
    """``{name: TrainResult}`` of tiny networks trained for two epochs (accuracy is not the point)."""
    import torch

    from lowbit.sw.train.qat import TrainSettings, train_scheme

    torch.set_num_threads(1)
    nets = {}
    for name, (scheme, hidden, activation, input_bits) in TINY.items():
        settings = TrainSettings(
            hidden=hidden,
            activation=activation,
            input_bits=input_bits,
            epochs=2,
            pretrain_epochs=2,
            progress=False,
            seed=1,
        )
        nets[name] = train_scheme(scheme, settings, split)
    return nets


@pytest.fixture(scope="session")
def tiny_models(tiny_nets):
    """``{name: LowbitModel}``: each tiny network exported and read back from its file bytes."""
    from lowbit.sw.model.file import model_from_bytes, model_to_bytes
    from lowbit.sw.train.export import export_model

    return {
        name: model_from_bytes(model_to_bytes(export_model(result.net, name))) for name, result in tiny_nets.items()
    }
