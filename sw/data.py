"""The data set of lowbit's main job: scikit-learn's 8x8 handwritten digits, with a fixed split.

Pixels are integers ``0 .. 16``. The first layer takes them as unsigned k-bit *codes*
(:func:`input_codes`); the value of a code is ``code * input_scale(bits)``, so every input precision
sees pixels in ``[0, 1]``. NumPy only (scikit-learn is imported when the data is loaded).
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["PIXEL_MAX", "FEATURES", "CLASSES", "DigitsSplit", "load_digits_split", "input_codes", "input_scale"]

#: Largest pixel value of the digits set.
PIXEL_MAX = 16
FEATURES = 64
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
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y)
    return DigitsSplit(x_train, y_train, x_test, y_test, seed, test_size)


def _check_input_bits(bits):
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 8:
        raise ValueError(f"input bits must be an integer from 1 to 8, not {bits!r}")
    return int(bits)


def input_codes(pixels, bits):
    """Digits pixels ``0 .. 16`` to unsigned ``bits``-bit codes, integer arithmetic only.

    With 5 or more bits the code is the pixel itself; with fewer, ``L = 2**bits - 1`` levels cover the
    range: ``code = floor(pixel * L / 16 + 1/2)`` (round half up). Returns ``uint8``.
    """
    bits = _check_input_bits(bits)
    pixels = np.asarray(pixels)
    if not np.issubdtype(pixels.dtype, np.integer):
        if not np.all(pixels == np.round(pixels)):
            raise ValueError("pixels must be integers 0 .. 16")
        pixels = pixels.astype(np.int64)
    pixels = pixels.astype(np.int64)
    if pixels.size and (pixels.min() < 0 or pixels.max() > PIXEL_MAX):
        bad = pixels.max() if pixels.max() > PIXEL_MAX else pixels.min()
        raise ValueError(f"pixels must lie in 0 .. {PIXEL_MAX}, not {int(bad)}")
    levels = (1 << bits) - 1
    if levels >= PIXEL_MAX:
        return pixels.astype(np.uint8)
    return ((2 * levels * pixels + PIXEL_MAX) // (2 * PIXEL_MAX)).astype(np.uint8)


def input_scale(bits):
    """Real value of one input code step: ``1/16`` with 5 or more bits, else ``1 / (2**bits - 1)``."""
    levels = (1 << _check_input_bits(bits)) - 1
    return 1.0 / min(levels, PIXEL_MAX)
