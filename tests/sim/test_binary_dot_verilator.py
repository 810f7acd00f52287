"""BinaryDotProduct's generated Verilog in Verilator (cocotb), compared with == against binary_dot.

Each run covers the corner vectors and LOWBIT_COUNT random vectors, with and without idle cycles on the
input and back-pressure on the output (the bench parametrizes over both). The seed is in the test id
and in every assertion message.
"""

import pytest
from amaranth.hdl import Module

from lowbit.hw.binary_dot import BinaryDotProduct
from lowbit.sim.verilator import BenchFailure, run_bench

pytestmark = pytest.mark.verilator

BENCH = "lowbit.sim.benches.binary_dot"


@pytest.mark.parametrize("n, depth, seed", [
    (1, None, 1001), (7, None, 1007), (64, None, 1064), (100, None, 1100), (64, 7, 2064), (7, 1, 2007),
])
def test_matches_golden(n, depth, seed):
    unit = BinaryDotProduct(n, depth)
    run_bench(unit, toplevel=f"binary_dot_n{n}", test_module=BENCH, name=f"seed{seed}",
              env={"LOWBIT_N": n, "LOWBIT_SEED": seed, "LOWBIT_COUNT": 2000})


class _OffByOneOnPadding(BinaryDotProduct):
    """A deliberately broken unit: it ignores the valid bit of the last tap."""

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = BinaryDotProduct(self.n, self.pipeline_depth)
        payload = self.i.payload
        m.d.comb += [
            inner.i.valid.eq(self.i.valid), self.i.ready.eq(inner.i.ready),
            inner.i.payload.a.eq(payload.a), inner.i.payload.w.eq(payload.w),
            inner.i.payload.valid.eq(payload.valid | (1 << (self.n - 1))),
            self.o.valid.eq(inner.o.valid), self.o.payload.eq(inner.o.payload), inner.o.ready.eq(self.o.ready),
        ]
        return m


def test_bench_catches_a_broken_unit():
    with pytest.raises(BenchFailure, match="tests failed"):
        run_bench(_OffByOneOnPadding(7), toplevel="binary_dot_broken", test_module=BENCH, name="broken",
                  env={"LOWBIT_N": 7, "LOWBIT_SEED": 5, "LOWBIT_COUNT": 50})
