"""Model files and the golden model: :func:`load_model`, :func:`save_model`, :func:`cost`, :func:`report`,
:func:`test_images`, :func:`golden`, :func:`predict`, :func:`accuracy`."""

from pathlib import Path

from lowbit.sw.api._common import _check_int


def _model(model):
    """A :class:`LowbitModel`, read from a file when ``model`` is a path."""
    from lowbit.sw.model.file import LowbitModel

    if isinstance(model, LowbitModel):
        return model
    if isinstance(model, (str, Path)):
        return load_model(model)
    raise TypeError(f"model must be a LowbitModel or the path of a model file, not {type(model).__name__}")


def load_model(path):
    """Read the model file ``path`` (checked); a file that is not a valid model raises
    :class:`lowbit.sw.model.file.ModelFileError` (a :class:`ValueError`) naming it."""
    from lowbit.sw.model.file import ModelFileError
    from lowbit.sw.model.file import load_model as read_model

    if Path(path).is_dir():
        raise ModelFileError(f"model file {str(path)!r}: is a directory, not a model file")
    return read_model(path)


def save_model(model, path):
    """Write ``model`` (checked first) to the file ``path``, creating its folder."""
    from lowbit.sw.model.file import LowbitModel
    from lowbit.sw.model.file import save_model as write_model

    if not isinstance(model, LowbitModel):
        raise TypeError(f"model must be a LowbitModel, not {type(model).__name__}")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"path {str(path)!r} is a directory, not a model file")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_model(model, path)
    return path


def cost(model):
    """MACs, ACE, CPU64, weight bits and size of ``model``: a :class:`lowbit.sw.model.report.ModelCost`
    (``.to_dict()`` for JSON)."""
    from lowbit.sw.model.report import model_cost

    return model_cost(_model(model))


def report(model):
    """The cost table of ``model`` as text (what ``lowbit report`` prints)."""
    from lowbit.sw.model.report import format_report

    return format_report(cost(model))


def test_images(limit=None):
    """The digits test split (360 images; the first ``limit`` of them): ``(pixels, labels)``, pixels
    ``uint8`` ``(N, 64)`` in ``0 .. 16``, labels ``int64``."""
    from lowbit.sw.train.data import load_digits_split

    _check_int("limit", limit, 1, optional=True)
    split = load_digits_split()
    return split.x_test[:limit], split.y_test[:limit]


test_images.__test__ = False  # not a test, for pytest


def golden(model, pixels):
    """The golden model's last-layer accumulators of ``model`` on ``pixels``: ``(batch, classes)`` ``int64``
    (``float64`` for a float model). Every tile output must equal them."""
    from lowbit.sw.golden import GoldenNetwork

    return GoldenNetwork(_model(model)).run(pixels)


def predict(model, pixels):
    """The golden model's predicted classes of ``model`` on ``pixels`` (argmax, first index on ties:
    :func:`lowbit.sw.golden.class_index`)."""
    from lowbit.sw.golden import class_index

    return class_index(golden(model, pixels))


def accuracy(outputs_or_model, labels, pixels=None):
    """The share of ``labels`` predicted right: from last-layer ``outputs`` ``(batch, classes)``, or from
    a model run by the golden model on ``pixels``."""
    import numpy as np

    if pixels is not None:
        outputs_or_model = golden(outputs_or_model, pixels)
    outputs = np.asarray(outputs_or_model)
    labels = np.asarray(labels)
    if outputs.ndim != 2 or len(outputs) != len(labels):
        raise ValueError(f"outputs must be (batch, classes) with one row per label, not of shape {outputs.shape}")
    from lowbit.sw.golden import class_index

    return float(np.mean(class_index(outputs) == labels)) if len(labels) else 0.0
