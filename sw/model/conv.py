"""Feature maps of convolutional layers: shapes, padding, the sliding window and max-pooling.

The one definition (NumPy) that the golden model, the integer pass of training and the export share
(``docs/conv.md``):

- A feature map is ``(batch, height, width, channels)`` and travels flattened in that order (HWC, channels
  innermost), as FINN streams them; a dense layer after a convolution takes the flattened map.
- A ``k x k`` convolution's weight row is ``(ky, kx, c)`` flattened the same way, so its dot product is a
  dense layer of ``k * k * channels`` inputs applied to each window (im2col).
- Padding taps carry :func:`lowbit.sw.kinds.encodings.pad_code` (value 0, binary +1); the output side is
  ``(size + 2 * padding - k) // stride + 1``.
- Max-pooling of ``p x p`` windows with stride ``p`` (no padding, a partial last window dropped) on the
  layer's output codes, after the thresholds.
"""

from dataclasses import dataclass

import numpy as np

from lowbit.sw.kinds.encodings import pad_code

__all__ = [
    "ConvShape",
    "conv_output_size",
    "pooled_size",
    "windows",
    "max_pool",
    "window_rows",
    "pooled_rows",
    "layer_taps",
    "layer_outputs",
]


def conv_output_size(size, kernel, stride, padding):
    """Output rows (or columns) of a ``kernel`` convolution of ``stride`` over ``size`` rows padded by
    ``padding`` on each side: ``(size + 2 * padding - kernel) // stride + 1`` (0 when the kernel does not fit)."""
    return max(0, (size + 2 * padding - kernel) // stride + 1)


def pooled_size(size, pool):
    """Rows (or columns) after ``pool x pool`` max-pooling of stride ``pool`` (1: no pooling)."""
    return size // pool


@dataclass(frozen=True)
class ConvShape:
    """A convolution's geometry: ``input_map`` ``(H, W, C)``, ``kernel``, ``stride``, ``padding``, ``pool`` and
    ``channels`` out."""

    input_map: tuple
    kernel: int
    stride: int
    padding: int
    pool: int
    channels: int

    @property
    def taps(self):
        """Inputs of each dot product: ``kernel * kernel * C`` (the weight matrix's width)."""
        return self.kernel * self.kernel * self.input_map[2]

    @property
    def conv_map(self):
        """``(OH, OW)`` of the output before pooling."""
        return tuple(conv_output_size(size, self.kernel, self.stride, self.padding) for size in self.input_map[:2])

    @property
    def output_map(self):
        """``(PH, PW, channels)``: the output feature map after pooling."""
        return tuple(pooled_size(size, self.pool) for size in self.conv_map) + (self.channels,)

    @property
    def positions(self):
        """Output positions before pooling, ``OH * OW``: the dot products per output channel."""
        return self.conv_map[0] * self.conv_map[1]


def windows(maps, kernel, stride, padding, pad_value):
    """Every ``kernel x kernel`` window of feature maps ``(batch, H, W, C)``, padded by ``padding`` taps of
    ``pad_value`` on each side: ``(batch, OH, OW, kernel * kernel * C)`` in ``(ky, kx, c)`` order."""
    maps = np.asarray(maps)
    if maps.ndim != 4:
        raise ValueError(f"feature maps must have shape (batch, height, width, channels), not {maps.shape}")
    if padding:
        maps = np.pad(maps, ((0, 0), (padding, padding), (padding, padding), (0, 0)), constant_values=pad_value)
    view = np.lib.stride_tricks.sliding_window_view(maps, (kernel, kernel), axis=(1, 2))
    view = view[:, ::stride, ::stride]  # (batch, OH, OW, C, ky, kx)
    batch, oh, ow, channels = view.shape[:4]
    return np.ascontiguousarray(view.transpose(0, 1, 2, 4, 5, 3)).reshape(batch, oh, ow, kernel * kernel * channels)


def max_pool(maps, pool):
    """``pool x pool`` max-pooling of stride ``pool`` of ``(batch, H, W, C)``: ``(batch, H // pool, W // pool, C)``."""
    maps = np.asarray(maps)
    if pool == 1:
        return maps
    batch, height, width, channels = maps.shape
    ph, pw = pooled_size(height, pool), pooled_size(width, pool)
    cut = maps[:, : ph * pool, : pw * pool]
    return cut.reshape(batch, ph, pool, pw, pool, channels).max(axis=(2, 4))


def window_rows(shape, x, pad_value):
    """The windows of a convolution of :class:`ConvShape` ``shape`` on its input maps ``x`` ``(batch, H * W *
    C)`` (flattened HWC), padded with ``pad_value``: one row per window, ``(batch * OH * OW, taps)``, image by
    image and row-major over the positions."""
    maps = np.asarray(x).reshape(len(x), *shape.input_map)
    return windows(maps, shape.kernel, shape.stride, shape.padding, pad_value).reshape(-1, shape.taps)


def pooled_rows(shape, y, batch):
    """A convolution's outputs per image from one row per window ``y`` (``(batch * OH * OW, channels)``, in
    :func:`window_rows`' order): max-pooled and flattened (HWC), ``(batch, PH * PW * channels)``."""
    return max_pool(np.asarray(y).reshape(batch, *shape.conv_map, shape.channels), shape.pool).reshape(batch, -1)


def layer_taps(layer, x):
    """The dot products' inputs of a model-file layer (:class:`lowbit.sw.model.file.LayerRecord`) on its
    input ``x`` ``(batch, input_size)``: ``x`` itself for a dense layer; for a convolution its
    :func:`window_rows`, padded with the input kind's :func:`pad_code` (0.0 for float layers)."""
    if not layer.is_conv:
        return x
    pad = 0.0 if layer.input_kind == "float" else pad_code(layer.input_kind, layer.input_bits)
    return window_rows(layer.conv_shape, x, pad)


def layer_outputs(layer, y, batch):
    """A layer's output per image from its dot products' outputs ``y``: a convolution's
    :func:`pooled_rows`, ``(batch, output_size)``; ``y`` itself for a dense layer."""
    if not layer.is_conv:
        return y
    return pooled_rows(layer.conv_shape, y, batch)
