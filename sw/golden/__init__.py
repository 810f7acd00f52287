"""The golden model: NumPy, integer-exact. It is the specification the hardware is compared with ``==``.

Each hardware unit has a golden function here with the same name and integer semantics.
No Amaranth import is allowed in this package.
"""

from .units import binary_dot

__all__ = ["binary_dot"]
