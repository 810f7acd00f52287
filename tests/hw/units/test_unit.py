"""PipelinedUnit's combinational core and the PEArray form, checked on the popcount units."""

import numpy as np
import pytest
from amaranth.hdl import signed
from amaranth.lib import data
from amaranth.sim import Simulator

from lowbit.hw.units.binary_dot import XorPopcount
from lowbit.hw.units.ternary_dot import TernaryDotProduct
from lowbit.hw.units.unit import PEArray
from lowbit.sw.kinds.packing import bits_to_int
from tests.hw import streamsim
from tests.hw.units.test_ternary_dot import fatnn_case


def test_pe_array_layout():
    array = PEArray(lambda: TernaryDotProduct(10), 4)
    assert array.pe == 4 and array.latency == 2
    payload = array.i.payload.shape()
    assert set(payload["shared"].shape.members) == {"a_nz", "a_sign"}
    assert payload["channels"].shape == data.ArrayLayout(array.channel_layout, 4)
    assert set(array.channel_layout.members) == {"w_nz", "w_sign"}
    assert array.o.payload.shape() == data.ArrayLayout(signed(5), 4)


def test_pe_array_wrong_pe():
    with pytest.raises(ValueError, match="pe must be at least 1, not 0"):
        PEArray(lambda: XorPopcount(8), 0)
    with pytest.raises(TypeError, match="pe must be an integer, not 2.0"):
        PEArray(lambda: XorPopcount(8), 2.0)


def test_pe_array_wrong_shared_fields():
    class Broken(XorPopcount):
        SHARED_FIELDS = ("a", "x")

    with pytest.raises(ValueError, match=r"Broken.SHARED_FIELDS names fields it does not have: \['x'\]"):
        PEArray(lambda: Broken(8), 2)


@pytest.mark.parametrize("pe, n", [(1, 5), (3, 16)])
def test_pe_array_fatnn(pe, n, seed=7):
    """Each channel equals its own unit on the shared activations, under idle input and back-pressure."""
    rng = np.random.default_rng(seed + pe)
    payloads, expected = [], []
    for _ in range(40):
        a = rng.integers(0, 3, n)
        cases = [fatnn_case(a, rng.integers(-1, 2, n)) for _ in range(pe)]
        payloads.append(
            {
                "shared": {"a_nz": cases[0][0]["a_nz"], "a_sign": cases[0][0]["a_sign"]},
                "channels": [{k: p[k] for k in ("w_nz", "w_sign")} for p, _ in cases],
            }
        )
        expected.append([g for _, g in cases])
    array = PEArray(lambda: TernaryDotProduct(n), pe)
    outputs, _ = streamsim.simulate(array, payloads, ready_pattern=(0, 1, 1), valid_pattern=(1, 0))
    assert [list(o) for o in outputs] == expected, f"seed {seed + pe}"


@pytest.mark.parametrize("target", ["generic", "ice40", "ecp5"])
def test_combinational_core_matches_pipeline(target):
    """The core without registers computes the same function in the same cycle."""
    unit = XorPopcount(12, 3, target)
    core = unit.combinational()
    rng = np.random.default_rng(3)
    cases = [tuple(bits_to_int(rng.integers(0, 2, 12)) for _ in range(2)) for _ in range(50)]
    bits = lambda x: np.array([(x >> i) & 1 for i in range(12)])
    expected = [int((bits(a) != bits(w)).sum()) for a, w in cases]

    async def bench(ctx):
        for (a, w), e in zip(cases, expected):
            ctx.set(core.payload, {"a": a, "w": w})
            assert ctx.get(core.result) == e

    sim = Simulator(core)
    sim.add_testbench(bench)
    sim.run()
    outputs, _ = streamsim.simulate(unit, [{"a": a, "w": w} for a, w in cases])
    assert outputs == expected
