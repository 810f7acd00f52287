"""cocotb benches: each module is a cocotb test module run by :func:`lowbit.sim.verilator.run_bench`."""
