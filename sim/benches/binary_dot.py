"""cocotb bench of :class:`lowbit.hw.binary_dot.BinaryDotProduct` against the golden ``binary_dot``.

Environment: ``LOWBIT_N`` (taps), ``LOWBIT_SEED``, ``LOWBIT_COUNT`` (random vectors). Every test runs
the corner vectors first, then the random ones; it is parametrized over idle cycles on the input and
back-pressure on the output.
"""

import json
from pathlib import Path

import cocotb
import numpy as np

from lowbit.hw.binary_dot import BinaryDotInput
from lowbit.sw.golden import binary_dot
from lowbit.sw.packing import bits_to_int, pack_bits

from .streams import StreamSink, StreamSource, env_int, flow_pattern, start_clock_and_reset


def corner_vectors(n):
    """(a, w, valid) bit vectors: all zeros, all ones, all disagreeing, nothing valid, every padding length."""
    zeros, ones = np.zeros(n, np.uint8), np.ones(n, np.uint8)
    alternating = (np.arange(n) % 2).astype(np.uint8)
    vectors = [
        (zeros, zeros, ones),                 # +n: the maximum
        (ones, ones, ones),                   # +n
        (ones, zeros, ones),                  # -n: the minimum
        (zeros, ones, ones),                  # -n
        (alternating, 1 - alternating, ones),  # -n
        (ones, ones, zeros),                  # nothing valid: 0
        (ones, zeros, zeros),                 # 0
    ]
    for valid_count in sorted({1, n // 2, n - 1} - {0, n}):  # padding at the end of a layer
        mask = (np.arange(n) < valid_count).astype(np.uint8)
        vectors += [(ones, ones, mask), (ones, zeros, mask), (alternating, alternating, mask)]
    return vectors


def random_vectors(n, count, rng):
    a = rng.integers(0, 2, (count, n), dtype=np.uint8)
    w = rng.integers(0, 2, (count, n), dtype=np.uint8)
    valid = np.where(rng.random((count, 1)) < 0.5, 1,  # half fully valid, half with a random mask
                     rng.integers(0, 2, (count, n), dtype=np.uint8)).astype(np.uint8)
    return list(zip(a, w, valid))


def payload(layout, a, w, valid):
    fields = {"a": a, "w": w, "valid": valid}
    return sum(bits_to_int(fields[name]) << layout[name].offset for name in fields)


@cocotb.parametrize(idle=[False, True], backpressure=[False, True])
@cocotb.test(timeout_time=10, timeout_unit="ms")
async def binary_dot_matches_golden(dut, idle, backpressure):
    n, seed = env_int("LOWBIT_N"), env_int("LOWBIT_SEED")
    count = env_int("LOWBIT_COUNT", 2000)
    rng = np.random.default_rng(seed)
    vectors = corner_vectors(n) + random_vectors(n, count, rng)
    a, w, valid = (np.stack(column) for column in zip(*vectors))
    expected = binary_dot(pack_bits(a), pack_bits(w), pack_bits(valid)).tolist()
    layout = BinaryDotInput(n)

    await start_clock_and_reset(dut)
    source = StreamSource(dut, "i", flow_pattern(idle, seed + 1))
    sink = StreamSink(dut, "o", flow_pattern(backpressure, seed + 2), signed=True)
    send = cocotb.start_soon(source.send([payload(layout, *vector) for vector in vectors]))
    got = await sink.receive(len(vectors))
    await send

    # The agreement count, for `lowbit demo`; written before the assertions so it exists on failure too.
    equal = sum(g == e for g, e in zip(got, expected))
    tag = f"idle{int(idle)}_backpressure{int(backpressure)}"
    Path(f"summary_{tag}.json").write_text(json.dumps({"n": n, "seed": seed, "equal": equal,
                                                         "total": len(expected), "received": len(got)}))
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g == e, (f"seed {seed}, n {n}, idle {idle}, backpressure {backpressure}, vector {i}: "
                        f"a={bits_to_int(a[i]):#x} w={bits_to_int(w[i]):#x} valid={bits_to_int(valid[i]):#x}: "
                        f"got {g}, expected {e}")
    assert len(got) == len(expected)
