"""BitSerialDotProduct and AddTreeDotProduct: construction, parameter errors, and Amaranth-simulator
checks against the golden bitserial_dot (==), latency, throughput, back-pressure and PEArray form."""

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from amaranth.lib import data
from amaranth.sim import Simulator

from lowbit.hw.units.kbit_dot import AddTreeDotProduct, BitSerialDotProduct, KBitDotInput, kbit_dot_width
from lowbit.hw.units.unit import PEArray
from lowbit.sw.golden import bitserial_dot
from lowbit.sw.kinds.packing import bits_to_int, pack_bits
from tests.hw import streamsim

UNITS = [BitSerialDotProduct, AddTreeDotProduct]


def activation_range(k, is_signed):
    return (-(1 << (k - 1)), (1 << (k - 1)) - 1) if is_signed else (0, (1 << k) - 1)


def random_vectors(rng, count, n, k, is_signed, weights):
    """``(a, w_nz, w_sign, planes)``: activations ``(count, n)``, the golden weight planes (a binary weight
    is ``w_nz = valid``, ``w_sign = ~w & valid``) and the payload weight planes (``w_nz, w_sign`` or
    ``w, valid``). Corner rows first: all-zero weights (binary: every tap padding), all-zero
    activations, the extreme activations against all +1 and all -1 weights."""
    low, high = activation_range(k, is_signed)
    a = rng.integers(low, high + 1, (count, n))
    p, q = rng.integers(0, 2, (2, count, n), dtype=np.uint8)
    a[1] = 0
    a[2:4], a[4:6] = high, low
    if weights == "ternary":  # p = w_nz, q = w_sign
        p[0] = 0
        p[2:6], q[2:6:2], q[3:6:2] = 1, 0, 1
        return a, p, q & p, (p, q)
    q[0] = 0  # p = w (1 = +1), q = valid
    q[2:6], p[2:6:2], p[3:6:2] = 1, 1, 0
    return a, q, (1 - p) & q, (p, q)


def payloads(a, planes, weights):
    names = ("w_nz", "w_sign") if weights == "ternary" else ("w", "valid")
    return [{"a": row.tolist(), names[0]: bits_to_int(x), names[1]: bits_to_int(y)} for row, x, y in zip(a, *planes)]


def golden(a, k, is_signed, w_nz, w_sign):
    return bitserial_dot(a, k, is_signed, pack_bits(w_nz), pack_bits(w_sign)).tolist()


# --- construction -----------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", UNITS)
def test_init(cls):
    unit = cls(13, 4, True, "binary", 3)
    assert unit.i.payload.shape() == KBitDotInput(13, 4, True, "binary")
    assert unit.i.payload.shape()["a"].shape == data.ArrayLayout(signed(4), 13)
    assert unit.o.payload.shape() == signed(kbit_dot_width(13, 4, True)) == signed(8)  # [-104, 104]
    assert unit.SHARED_FIELDS == ("a", "valid") and cls(8, 2).SHARED_FIELDS == ("a",)
    assert list(dict(cls(8, 2).i.payload.shape())) == ["a", "w_nz", "w_sign"]
    assert cls(8, 8).i.payload.shape()["a"].shape == data.ArrayLayout(unsigned(8), 8)
    assert cls(64, 8).o.payload.shape() == signed(15)  # [-16320, 16320]
    assert cls(1, 2, True).o.payload.shape() == signed(3)  # [-2, 2]


def test_init_timing_attributes():
    bitserial = BitSerialDotProduct(64, 8, pipeline_depth=7)
    assert (bitserial.latency, bitserial.cycles_per_vector, bitserial.pipeline_depth) == (8, 8, 7)
    assert BitSerialDotProduct(1, 3).latency == 2  # the one-leaf tree has depth 1
    tree = AddTreeDotProduct(64, 8, pipeline_depth=7)
    assert (tree.latency, tree.cycles_per_vector) == (7, 1)
    assert AddTreeDotProduct(1, 3).latency == 1


@pytest.mark.parametrize("cls", UNITS)
@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"n": 0}, ValueError, "n must be at least 1, not 0"),
        ({"n": 2.0}, TypeError, "n must be an integer, not 2.0"),
        ({"k": 1}, ValueError, "k must be between 2 and 8, not 1"),
        ({"k": 9}, ValueError, "k must be between 2 and 8, not 9"),
        ({"k": True}, TypeError, "k must be an integer, not True"),
        ({"signed": 1}, TypeError, "signed must be a bool, not 1"),
        ({"weights": "int2"}, ValueError, "weights must be one of ternary, binary, not 'int2'"),
        ({"pipeline_depth": 0}, ValueError, "pipeline_depth must be between 1 and 5 for n=16, not 0"),
        ({"pipeline_depth": 6}, ValueError, "pipeline_depth must be between 1 and 5 for n=16, not 6"),
        ({"pipeline_depth": "2"}, TypeError, "pipeline_depth must be an integer, not '2'"),
    ],
)
def test_init_wrong_params(cls, kwargs, error, message):
    params = {"n": 16, "k": 4, "signed": False, "weights": "ternary", "pipeline_depth": None, **kwargs}
    with pytest.raises(error, match=f"^{message}$"):
        cls(**params)


# --- arithmetic ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", UNITS)
def test_seeds_twn_example(cls):
    # TWN's worked example (docs/arithmetic.md): t = [1, -1, 0, -1, 1, 0, -1, 0] (planes 0x5B / 0x4A),
    # x = [10, 20, ..., 80]: -70.
    # As binary weights the zero taps become padding: w = ~w_sign, valid = w_nz.
    x = list(range(10, 90, 10))
    ternary = {"a": x, "w_nz": 0x5B, "w_sign": 0x4A}
    binary = {"a": x, "w": ~0x4A & 0xFF, "valid": 0x5B}
    assert streamsim.simulate(cls(8, 8, False, "ternary"), [ternary])[0] == [-70]
    assert streamsim.simulate(cls(8, 8, False, "binary"), [binary])[0] == [-70]
    assert golden(
        np.array([x]), 8, False, np.array([[1, 1, 0, 1, 1, 0, 1, 0]]), np.array([[0, 1, 0, 1, 0, 0, 1, 0]])
    ) == [-70]


@pytest.mark.parametrize("cls", UNITS)
@pytest.mark.parametrize(
    "n, k, is_signed, weights, depth, seed",
    [
        (1, 2, True, "ternary", 1, 101),
        (5, 3, False, "binary", 2, 105),
        (13, 8, True, "binary", 3, 113),
        (16, 4, False, "ternary", 5, 116),
        (64, 8, False, "ternary", None, 164),
    ],
)
def test_random(cls, n, k, is_signed, weights, depth, seed):
    rng = np.random.default_rng(seed)
    a, w_nz, w_sign, planes = random_vectors(rng, 30, n, k, is_signed, weights)
    outputs, _ = streamsim.simulate(
        cls(n, k, is_signed, weights, depth),
        payloads(a, planes, weights),
        ready_pattern=(1, 1, 0),
        valid_pattern=(1, 0, 1, 1),
    )
    assert outputs == golden(a, k, is_signed, w_nz, w_sign), f"seed {seed}"


# --- timing and flow control -----------------------------------------------------------------------


@pytest.mark.parametrize("cls", UNITS)
@pytest.mark.parametrize("n, k, depth", [(1, 2, 1), (16, 3, 2), (16, 8, 5)])
def test_latency_and_cycles_per_vector(cls, n, k, depth, seed=7):
    rng = np.random.default_rng(seed)
    a, w_nz, w_sign, planes = random_vectors(rng, 12, n, k, False, "ternary")
    unit = cls(n, k, pipeline_depth=depth)
    outputs, cycles = streamsim.simulate(unit, payloads(a, planes, "ternary"))
    assert outputs == golden(a, k, False, w_nz, w_sign), f"seed {seed}"
    # Payload j transfers at clock edge (j + 1) * cycles_per_vector (the first at edge 1 for a full-rate
    # unit, after its k planes for the bit-serial one) and its result `latency` edges later.
    per = unit.cycles_per_vector
    assert per == (k if cls is BitSerialDotProduct else 1)
    assert unit.latency == (depth + 1 if cls is BitSerialDotProduct else depth)
    assert cycles == [(j + 1) * per + unit.latency for j in range(12)]


@pytest.mark.parametrize("cls", UNITS)
@pytest.mark.parametrize(
    "ready_pattern, valid_pattern",
    [
        ((0, 1), (1,)),
        ((1, 1, 1, 0), (1, 1, 0)),
        ((0, 0, 0, 0, 0, 1), (1,)),  # long stalls: the result must wait, not be overwritten
        ((1, 0, 0, 1, 1, 1, 1, 0, 1), (0, 0, 1)),
        ((0,) * 7 + (1,) * 9, (1, 0)),
    ],
)
def test_backpressure(cls, ready_pattern, valid_pattern, seed=23):
    rng = np.random.default_rng(seed)
    a, w_nz, w_sign, planes = random_vectors(rng, 25, 9, 3, True, "binary")
    outputs, _ = streamsim.simulate(
        cls(9, 3, True, "binary", 2),
        payloads(a, planes, "binary"),
        ready_pattern=ready_pattern,
        valid_pattern=valid_pattern,
    )
    assert outputs == golden(a, 3, True, w_nz, w_sign), f"seed {seed}"


@pytest.mark.parametrize("cls", UNITS)
@pytest.mark.parametrize("weights", ["ternary", "binary"])
def test_pe_array(cls, weights, pe=3, n=6, k=4, seed=53):
    """Three channels share the activations (and, for binary weights, the valid mask) and stay in
    lockstep under idle input and back-pressure: every channel's result is its own golden sum."""
    rng = np.random.default_rng(seed)
    array = PEArray(lambda: cls(n, k, True, weights, 2), pe)
    assert array.latency == array.units[0].latency
    count = 15
    a = rng.integers(-8, 8, (count, n))
    valid = rng.integers(0, 2, (count, n), dtype=np.uint8)
    expected, items = [], []
    channel_planes = rng.integers(0, 2, (pe, 2, count, n), dtype=np.uint8)
    for j in range(count):
        channels, sums = [], []
        for c in range(pe):
            p, q = channel_planes[c, :, j]
            if weights == "ternary":
                channels.append({"w_nz": bits_to_int(p), "w_sign": bits_to_int(q)})
                w_nz, w_sign = p, q & p
            else:
                channels.append({"w": bits_to_int(p)})
                w_nz, w_sign = valid[j], (1 - p) & valid[j]
            sums.append(golden(a[j : j + 1], k, True, w_nz[None], w_sign[None])[0])
        shared = {"a": a[j].tolist()} | ({"valid": bits_to_int(valid[j])} if weights == "binary" else {})
        items.append({"shared": shared, "channels": channels})
        expected.append(sums)
    outputs, _ = streamsim.simulate(array, items, ready_pattern=(1, 0, 1, 1, 0, 0), valid_pattern=(1, 1, 0))
    assert [[out[c] for c in range(pe)] for out in outputs] == expected, f"seed {seed}"
    # At full rate the array keeps the unit's timing.
    outputs, cycles = streamsim.simulate(array, items[:4])
    per = array.cycles_per_vector
    assert cycles == [(j + 1) * per + array.latency for j in range(4)]


@pytest.mark.parametrize(
    "n, k, is_signed, weights, seed",
    [
        (1, 8, True, "binary", 301),
        (13, 4, False, "ternary", 313),
    ],
)
def test_add_tree_combinational_core(n, k, is_signed, weights, seed):
    """The register-free core that the formal proofs use computes the same sums as the pipelined unit."""
    rng = np.random.default_rng(seed)
    a, w_nz, w_sign, planes = random_vectors(rng, 20, n, k, is_signed, weights)
    core = AddTreeDotProduct(n, k, is_signed, weights).combinational()
    results = []

    async def testbench(ctx):
        for payload in payloads(a, planes, weights):
            ctx.set(core.payload, payload)
            results.append(ctx.get(core.result))

    sim = Simulator(core)
    sim.add_testbench(testbench)
    sim.run()
    assert results == golden(a, k, is_signed, w_nz, w_sign), f"seed {seed}"
