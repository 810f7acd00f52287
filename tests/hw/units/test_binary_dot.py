"""BinaryDotProduct: construction, parameter errors, and Amaranth-simulator checks against binary_dot."""

import numpy as np
import pytest
from amaranth.hdl import signed

from lowbit.hw.units.binary_dot import BinaryDotInput, BinaryDotProduct
from lowbit.sw.golden import binary_dot
from lowbit.sw.kinds.packing import bits_to_int, encode_binary, pack_bits
from tests.hw import streamsim


def test_init():
    unit = BinaryDotProduct(100, 3)
    assert unit.n == 100 and unit.latency == 3
    assert unit.i.payload.shape() == BinaryDotInput(100)
    assert unit.o.payload.shape() == signed(8)  # [-100, 100]
    assert BinaryDotProduct(1).o.payload.shape() == signed(2)
    assert BinaryDotProduct.max_pipeline_depth(64) == 7


@pytest.mark.parametrize("n", [0, -3, 2.5, "8", True, None])
def test_init_wrong_n(n):
    with pytest.raises(TypeError, match=r"n must be a positive integer, not"):
        BinaryDotProduct(n)


@pytest.mark.parametrize("n, depth", [(64, 0), (64, 8), (1, 2)])
def test_init_wrong_pipeline_depth(n, depth):
    with pytest.raises(ValueError, match=rf"pipeline_depth must be between 1 and \d+ for n={n}, not {depth}"):
        BinaryDotProduct(n, depth)


def test_init_wrong_pipeline_depth_type():
    with pytest.raises(TypeError, match="pipeline_depth must be an integer, not '2'"):
        BinaryDotProduct(8, "2")


def simulate(unit, vectors, **flow):
    payloads = [{"a": bits_to_int(a), "w": bits_to_int(w), "valid": bits_to_int(v)} for a, w, v in vectors]
    return streamsim.simulate(unit, payloads, **flow)


def expected(vectors):
    a, w, v = (np.stack(c) for c in zip(*vectors))
    return binary_dot(pack_bits(a), pack_bits(w), pack_bits(v)).tolist()


def test_seeds_example():
    a = encode_binary([0.7, -1.2, 0, 3.5, -0.1, 2.2, -4, 0.3])
    w = encode_binary([0.5, -0.2, -0.8, 0.1, 0.3, -0.4, 0.6, -0.05])
    padding = np.array([1, 1, 1, 1, 1, 1, 0, 0], np.uint8)
    outputs, _ = simulate(BinaryDotProduct(8), [(a, w, np.ones(8, np.uint8)), (a, w, padding)])
    assert outputs == [-2, 0]


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_latency_and_full_rate(depth):
    rng = np.random.default_rng(3)
    vectors = [tuple(rng.integers(0, 2, (3, 16), dtype=np.uint8)) for _ in range(20)]
    outputs, cycles = simulate(BinaryDotProduct(16, depth), vectors)
    assert outputs == expected(vectors)
    # The first vector transfers at the first edge; its result transfers `latency` edges later,
    # then one result follows per cycle.
    assert cycles == list(range(1 + depth, 1 + depth + 20))


@pytest.mark.parametrize("n, depth", [(1, 1), (5, 2), (33, 3), (64, 7)])
def test_random_with_backpressure_and_idle(n, depth, seed=11):
    rng = np.random.default_rng(seed + n)
    vectors = [tuple(rng.integers(0, 2, (3, n), dtype=np.uint8)) for _ in range(60)]
    outputs, _ = simulate(
        BinaryDotProduct(n, depth), vectors, ready_pattern=(1, 0, 1, 1, 0, 0), valid_pattern=(1, 1, 0)
    )
    assert outputs == expected(vectors), f"seed {seed + n}"
