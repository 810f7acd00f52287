"""BitSerialDotProduct and AddTreeDotProduct in Verilator against the golden bitserial_dot (== only),
with and without idle input and output back-pressure (lowbit.sim.benches.stream_vectors)."""

import numpy as np
import pytest

from lowbit.hw.units.kbit_dot import AddTreeDotProduct, BitSerialDotProduct
from lowbit.sim.verilator import run_vectors
from lowbit.sw.golden import bitserial_dot
from lowbit.sw.kinds.packing import pack_bits

pytestmark = pytest.mark.verilator

VECTORS = 1000


def activation_range(k, is_signed):
    return (-(1 << (k - 1)), (1 << (k - 1)) - 1) if is_signed else (0, (1 << k) - 1)


def vectors(n, k, is_signed, weights, rng):
    """Activations ``a`` ``(VECTORS, n)`` and weights as ``sign`` (+1 / -1) and ``nonzero`` (the ternary
    non-zero plane, or the binary valid mask), with the corners first:

    rows 0-3 all-zero weights (for binary weights: every tap padding), 4-7 all-zero activations,
    8-15 the extreme accumulators (every ``a`` at its most positive, then most negative value, against
    all +1 and all -1 weights), 16-23 half the taps padding / zero, then random rows (for binary
    weights the first half of them fully valid, the rest with random padding).
    """
    low, high = activation_range(k, is_signed)
    a = rng.integers(low, high + 1, (VECTORS, n))
    sign = rng.integers(0, 2, (VECTORS, n)) * 2 - 1
    nonzero = rng.integers(0, 2, (VECTORS, n))
    if weights == "binary":
        nonzero[24 : (VECTORS + 24) // 2] = 1
    nonzero[:4] = 0
    a[4:8] = 0
    a[8:12], a[12:16] = high, low
    nonzero[8:16] = 1
    sign[8:16:2], sign[9:16:2] = 1, -1
    nonzero[16:24] = np.arange(n) < (n + 1) // 2
    return a, sign, nonzero


def payload_ints(unit, k, a, fields):
    """Payloads as integers: ``a`` element ``i`` at bits ``i*k`` of field ``a``, and each 0/1 plane in
    ``fields`` (name -> rows) at its field's offset, element ``i`` at bit ``i``."""
    layout = unit.i.payload.shape()
    n = a.shape[1]
    element_weights = 1 << (k * np.arange(n, dtype=object))
    total = ((a.astype(object) & ((1 << k) - 1)) * element_weights).sum(axis=1) << layout["a"].offset
    bit_weights = 1 << np.arange(n, dtype=object)
    for name, rows in fields.items():
        total = total + ((rows.astype(object) * bit_weights).sum(axis=1) << layout[name].offset)
    return total.tolist()


DESIGNS = [
    # unit, n, k, signed, weights, pipeline_depth, seed
    (BitSerialDotProduct, 1, 2, True, "ternary", 1, 601),
    (BitSerialDotProduct, 13, 4, False, "binary", None, 613),
    (BitSerialDotProduct, 64, 8, True, "binary", 7, 664),
    (AddTreeDotProduct, 1, 2, False, "binary", 1, 701),
    (AddTreeDotProduct, 13, 4, True, "ternary", 2, 713),
    (AddTreeDotProduct, 64, 8, False, "ternary", 3, 764),
]


@pytest.mark.parametrize(
    "cls, n, k, is_signed, weights, depth, seed",
    DESIGNS,
    ids=[f"{d[0].__name__}-n{d[1]}-k{d[2]}-{'s' if d[3] else 'u'}-{d[4]}-seed{d[6]}" for d in DESIGNS],
)
def test_matches_golden(cls, n, k, is_signed, weights, depth, seed):
    unit = cls(n, k, is_signed, weights, depth)
    rng = np.random.default_rng(seed)
    a, sign, nonzero = vectors(n, k, is_signed, weights, rng)
    negative = (sign < 0).astype(np.uint8)
    if weights == "ternary":
        # The sign plane is random where a weight is zero: the unit must ignore it there.
        sign_plane = np.where(nonzero == 1, negative, rng.integers(0, 2, (VECTORS, n)))
        inputs = payload_ints(unit, k, a, {"w_nz": nonzero, "w_sign": sign_plane})
    else:
        inputs = payload_ints(unit, k, a, {"w": 1 - negative, "valid": nonzero})
    expected = bitserial_dot(a, k, is_signed, pack_bits(nonzero), pack_bits(negative & nonzero))
    low, high = activation_range(k, is_signed)
    assert (
        expected[:8].tolist() == [0] * 8
        and expected[8:16].tolist() == [n * high, -n * high] * 2 + [n * low, -n * low] * 2
    ), f"seed {seed}: the corner vectors are not what they claim"
    kind = "bitserial" if cls is BitSerialDotProduct else "addtree"
    run_vectors(
        unit,
        inputs,
        expected.tolist(),
        seed=seed,
        name=f"seed{seed}",
        toplevel=f"kbit_{kind}_n{n}_k{k}_{'s' if is_signed else 'u'}_{weights}",
    )
