"""The cycle of every result under idle input and back-pressure, for each pipelined unit and a PE array.

A pipelined unit takes one payload per cycle and advances all of its stages together when its output
register is empty or being read (``~o.valid | o.ready``). Checking only the values, or only the cycles
with ``o.ready`` always high, misses a pipeline that advances on ``o.ready`` alone: its values stay right
while its results come out cycles late (and a stage that never advances would deadlock). Here each
result's cycle is compared with a cycle model of that rule, driven by the same patterns as the bench.
"""

import numpy as np
import pytest

from lowbit.hw.units.binary_dot import XorPopcount
from lowbit.hw.units.fgq import FGQDotProduct
from lowbit.hw.units.int_dot import IntDotProduct
from lowbit.hw.units.nhot import NHotDotProduct
from lowbit.hw.units.ternary_dot import TernaryDotProduct
from lowbit.hw.units.threshold import MultiThreshold
from lowbit.hw.units.unit import PEArray
from tests.hw import streamsim

SEED = 5

UNITS = {
    "xor-popcount": lambda depth: XorPopcount(16, depth),
    "ternary": lambda depth: TernaryDotProduct(12, depth),
    "int8": lambda depth: IntDotProduct(4, pipeline_depth=depth),
    "fgq": lambda depth: FGQDotProduct(8, 4, pipeline_depth=depth),
    "nhot2": lambda depth: NHotDotProduct(4, 2, pipeline_depth=depth),
    "threshold": lambda depth: MultiThreshold(8, 2, depth),
    "pe-array": lambda depth: PEArray(lambda: XorPopcount(8, depth), 3),
}

#: (input valid pattern, output ready pattern), cycled; a pattern is a tuple of 0/1.
FLOWS = {
    "stalled-output": ((1,), (0, 0, 1)),
    "idle-input": ((1, 0, 0), (1,)),
    "both": ((1, 1, 0), (0, 1, 1, 0, 1)),
    "ready-late": ((1,), (0, 0, 0, 0, 0, 0, 1, 1, 1)),
}


def stall_pipeline_cycles(count, depth, valid_pattern, ready_pattern):
    """The cycles (clock edges from the start) at which a ``depth``-stage stall pipeline hands out each of
    ``count`` results, fed as :func:`tests.hw.streamsim.send` feeds it (a payload offered when the valid
    pattern says 1 at the source's step, held until taken) and read when the ready pattern (one entry per
    cycle) says 1."""
    stages = [False] * depth  # valid bits, stages[-1] the output register
    step, sent, offering, out = 0, 0, False, []
    cycle = 0
    while len(out) < count:
        assert cycle < 100 * (count + depth), "the model does not finish"
        idle_step = False
        if not offering and sent < count:
            if valid_pattern[step % len(valid_pattern)]:
                offering = True
            else:
                idle_step = True
        o_valid, o_ready = stages[-1], ready_pattern[cycle % len(ready_pattern)]
        advance = not o_valid or o_ready
        cycle += 1
        if o_valid and o_ready:
            out.append(cycle)
        if advance:
            stages = [offering] + stages[:-1]
            if offering:
                offering, sent, step = False, sent + 1, step + 1
        if idle_step:
            step += 1
    return out


def test_the_model_at_full_rate():
    """With nothing idle or stalled the model gives the latency and one result per cycle (the units'
    own tests check this against the hardware)."""
    assert stall_pipeline_cycles(5, 3, (1,), (1,)) == [4, 5, 6, 7, 8]
    # The output held for two cycles: the pipeline keeps its three results and takes no fourth.
    assert stall_pipeline_cycles(3, 2, (1,), (0, 0, 1)) == [3, 6, 9]


@pytest.mark.parametrize("flow", FLOWS)
@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("name", UNITS)
def test_result_cycles_under_back_pressure(name, depth, flow):
    unit = UNITS[name](depth)
    assert unit.latency == depth
    valid_pattern, ready_pattern = FLOWS[flow]
    count = 24
    rng = np.random.default_rng(SEED)
    layout = unit.i.payload.shape()
    width = len(unit.i.payload.as_value())
    payloads = [layout.from_bits(int.from_bytes(rng.bytes(64)) & ((1 << width) - 1)) for _ in range(count)]
    _, cycles = streamsim.simulate(unit, payloads, ready_pattern=ready_pattern, valid_pattern=valid_pattern)
    expected = stall_pipeline_cycles(count, depth, valid_pattern, ready_pattern)
    assert cycles == expected, (
        f"{name} depth {depth}, valid {valid_pattern}, ready {ready_pattern} (seed {SEED}): results at cycles "
        f"{cycles}, a stall pipeline gives {expected}"
    )
