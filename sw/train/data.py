"""The data set of lowbit's main job: scikit-learn's 8x8 handwritten digits, with a fixed split.

Pixels are integers ``0 .. 16``; how a model's first layer takes them is :mod:`lowbit.sw.model.inputs`.
NumPy only (scikit-learn is imported when the data is loaded).
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["FEATURES", "CLASSES", "IMAGE_MAP", "DigitsSplit", "load_digits_split"]

FEATURES = 64
#: A digit as a feature map ``(height, width, channels)``: its 64 pixels are row-major, so HWC with one channel.
IMAGE_MAP = (8, 8, 1)
CLASSES = 10


@dataclass(frozen=True)
class DigitsSplit:
    """A fixed train/test split: pixels as ``uint8`` ``(N, 64)`` in ``0 .. 16``, labels as ``int64``."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    seed: int
    test_size: float


def load_digits_split(seed=0, test_size=0.2):
    """scikit-learn's digits (1797 samples), split stratified with ``random_state=seed``.

    The defaults give the split every lowbit result is measured on: 1437 training and 360 test samples.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0 < test_size < 1:
        raise ValueError(f"test_size must lie strictly between 0 and 1, not {test_size!r}")
    digits = load_digits()
    x = digits.data.astype(np.uint8)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=test_size, random_state=seed, stratify=y)
    return DigitsSplit(x_train, y_train, x_test, y_test, seed, test_size)
