"""What a model's first layer takes: digits pixels ``0 .. 16`` as unsigned k-bit *codes*.

The value of a code is ``code * input_scale(bits)``, so every input precision sees pixels in ``[0, 1]``;
a float model takes ``pixel / 16``. NumPy only: the golden model, the host and training all use it.
"""

import numpy as np

__all__ = ["PIXEL_MAX", "input_codes", "input_scale", "model_input"]

#: Largest pixel value of the digits set.
PIXEL_MAX = 16


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


def model_input(model, pixels):
    """Digits pixels ``(batch, 64)`` to ``model``'s first-layer input: ``int64`` codes, or float values for a
    float model."""
    pixels = np.asarray(pixels)
    if model.input_kind == "float":
        return pixels.astype(np.float64) / PIXEL_MAX
    return input_codes(pixels, model.input_bits).astype(np.int64)
