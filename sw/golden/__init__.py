"""The golden model: NumPy, integer-exact. It is the specification the hardware is compared with ``==``.

Each hardware unit has a golden function here with the same name and integer semantics
(:mod:`.units`); :mod:`.network` runs a whole exported model with them.
No Amaranth (and no PyTorch) import is allowed in this package.
"""

from lowbit.sw.golden.network import GoldenNetwork, class_index, predict, run_network
from lowbit.sw.golden.units import (
    binary_dot,
    bitserial_dot,
    fatnn_dot,
    fgq_dot,
    multithreshold,
    nhot_dot,
    ternary_binary_dot,
    ternary_dot,
    xor_popcount,
)

__all__ = [
    "binary_dot",
    "xor_popcount",
    "ternary_dot",
    "ternary_binary_dot",
    "fatnn_dot",
    "bitserial_dot",
    "nhot_dot",
    "fgq_dot",
    "multithreshold",
    "GoldenNetwork",
    "run_network",
    "predict",
    "class_index",
]
