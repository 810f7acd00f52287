"""lowbit: an FPGA hardware generator for low-bit (binary, ternary, power-of-two) neural networks.

``import lowbit`` is light (no PyTorch, no Amaranth); the functions of the Python API
(:mod:`lowbit.sw.api`, ``docs/python-api.md``) are imported from there when first used.
"""

from importlib import metadata as _metadata

__version__ = _metadata.version("lowbit")
