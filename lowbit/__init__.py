"""lowbit: an FPGA hardware generator for low-bit (binary, ternary, power-of-two) neural networks.

``import lowbit`` is light (no PyTorch, no Amaranth, no NumPy): the functions of the Python API
(:mod:`lowbit.sw.api`, ``docs/python-api.md``: ``lowbit.train``, ``lowbit.load_model``, ``lowbit.golden``,
``lowbit.run_on_tile``, ``lowbit.verilog``, ...) are imported from there when first used.
"""

from importlib import metadata as _metadata

__version__ = _metadata.version("lowbit")

#: The names of :mod:`lowbit.sw.api` that ``lowbit`` offers (``lowbit.train`` is ``lowbit.sw.api.train``); the
#: API module itself is light to import: its functions import what they need.
from lowbit.sw.api import __all__ as _API  # noqa: E402

__all__ = ["__version__", *_API]


def __getattr__(name):
    if name in _API:
        from lowbit.sw import api

        value = getattr(api, name)
        globals()[name] = value  # later look-ups do not come here
        return value
    raise AttributeError(f"module 'lowbit' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_API))
