"""BinaryDotProduct's generated Verilog in Verilator (cocotb), compared with == against binary_dot.

Each run covers the corner vectors and 2000 random vectors (lowbit.sim.vectors), with and without idle
cycles on the input and back-pressure on the output (the generic bench parametrizes over both). The seed
is in the test id and in every assertion message.
"""

import pytest
from amaranth.hdl import Module

from lowbit.hw.units.binary_dot import BinaryDotProduct
from lowbit.sim.vectors import binary_dot_vectors
from lowbit.sim.verilator import BenchFailure, run_vectors

pytestmark = pytest.mark.verilator


@pytest.mark.parametrize(
    "n, depth, seed",
    [
        (1, None, 1001),
        (7, None, 1007),
        (64, None, 1064),
        (100, None, 1100),
        (64, 7, 2064),
        (7, 1, 2007),
    ],
)
def test_matches_golden(n, depth, seed):
    unit = BinaryDotProduct(n, depth)
    inputs, expected = binary_dot_vectors(n, 2000, seed)
    run_vectors(unit, inputs, expected, toplevel=f"binary_dot_n{n}", seed=seed, name=f"seed{seed}")


class _OffByOneOnPadding(BinaryDotProduct):
    """A deliberately broken unit: it ignores the valid bit of the last tap."""

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = BinaryDotProduct(self.n, self.pipeline_depth)
        payload = self.i.payload
        m.d.comb += [
            inner.i.valid.eq(self.i.valid),
            self.i.ready.eq(inner.i.ready),
            inner.i.payload.a.eq(payload.a),
            inner.i.payload.w.eq(payload.w),
            inner.i.payload.valid.eq(payload.valid | (1 << (self.n - 1))),
            self.o.valid.eq(inner.o.valid),
            self.o.payload.eq(inner.o.payload),
            inner.o.ready.eq(self.o.ready),
        ]
        return m


def test_bench_catches_a_broken_unit():
    with pytest.raises(BenchFailure, match="tests failed"):
        inputs, expected = binary_dot_vectors(7, 50, 5)
        run_vectors(_OffByOneOnPadding(7), inputs, expected, toplevel="binary_dot_broken", seed=5, name="broken")
