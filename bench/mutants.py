"""Mutation testing: how many plausible bugs the fast test suite catches (a benchmark).

``python bench/mutants.py`` plants each edit of :data:`MUTANTS` (a curated set of plausible single-site
bugs across the golden model, export, the model file, packing, the arithmetic units, the tile, the host
driver and the serial link) in its source file, one at a time, runs the tests of its area and restores
the file's original bytes. A mutant is *caught* when a test fails (or the run times out), *survived* when
every test passes. It writes ``bench/results/mutants.{json,md}`` and the README's section ``mutants``
(the score: caught / total).

Each mutant runs ``python -m pytest -x -q -p no:cacheprovider -m "not verilator and not synth"`` on its
area's test folders (``tests``: the tests of that part of the code, not a test picked for the mutant).
The Verilator and synthesis tests are left out: each builds the design it simulates or synthesizes (a
minute or more per test), too slow to run once per mutant; the fast suite is what the score measures.
Hypothesis runs with a fixed seed and a fresh example database, and the build folder is a fresh
temporary one per run, so one mutant's run cannot leave anything behind for the next.

Before the first mutant: the runner refuses to start if a file it would mutate has uncommitted changes,
checks that every ``old`` string occurs exactly once in its file, and runs each distinct test set once
without a mutant (it must pass). The original bytes (and modification time) of a mutated file are
restored after its run, whatever happens (a failure, a timeout, Ctrl-C).

Run: ``python bench/mutants.py [--only NAME ...] [--area AREA] [--timeout 300] [--list] [--report-only]``.
Only a run of the whole set writes the results and the README; ``--only`` / ``--area`` print theirs;
``--report-only`` rewrites ``mutants.md`` and the README from ``mutants.json`` without running.
"""

import argparse
import dataclasses
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from readme import publish

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
#: Seconds before a mutant's test run is stopped (counted as caught: a hang fails CI); the slowest area
#: set takes about a minute.
TIMEOUT = 300
#: The score the project aims at on this set.
TARGET = 0.95
#: The slow markers left out of every run (when pyproject.toml declares them).
SLOW_MARKERS = ("verilator", "synth")

#: The test folders of each area.
GOLDEN_TESTS = ("tests/sw/golden", "tests/sw/kinds")
EXPORT_TESTS = ("tests/sw/golden", "tests/sw/train")
MODEL_TESTS = ("tests/sw/model",)
PACKING_TESTS = ("tests/sw/kinds", "tests/sw/host")
UNIT_TESTS = ("tests/hw/units",)
TILE_TESTS = ("tests/hw/tile",)
DRIVER_TESTS = ("tests/sw/host",)
LINK_TESTS = ("tests/hw/link", "tests/sw/host")


@dataclasses.dataclass(frozen=True)
class Mutant:
    """One plausible bug: ``new`` in place of ``old`` (which occurs exactly once in ``path``)."""

    name: str
    area: str
    path: str
    old: str
    new: str
    why: str
    tests: tuple


def _m(name, area, path, old, new, why, tests):
    return Mutant(name, area, path, old, new, why, tuple(tests))


MUTANTS = [
    # --- golden model -------------------------------------------------------------------------------
    _m(
        "golden-threshold-strict",
        "golden",
        "sw/golden/units.py",
        "hit = np.where(descending[:, None], acc <= thresholds, acc >= thresholds)",
        "hit = np.where(descending[:, None], acc <= thresholds, acc > thresholds)",
        "a rising channel counts acc > T where FINN's MultiThreshold counts acc >= T",
        GOLDEN_TESTS,
    ),
    _m(
        "golden-fatnn-no-wsum",
        "golden",
        "sw/golden/units.py",
        "return _pc(m) - 2 * _pc(m & (a_sign ^ w_sign)) + w_sum.astype(np.int64)",
        "return _pc(m) - 2 * _pc(m & (a_sign ^ w_sign))",
        "FATNN's kernel drops the sum(w) term of a = a' + 1",
        GOLDEN_TESTS,
    ),
    _m(
        "golden-bitserial-msb-positive",
        "golden",
        "sw/golden/units.py",
        "    if signed:\n        weight[-1] = -weight[-1]\n",
        "",
        "the bit-serial dot product weighs a signed value's top plane +2**(k-1), not -2**(k-1)",
        GOLDEN_TESTS,
    ),
    _m(
        "golden-ternary-binary-sign",
        "golden",
        "sw/golden/units.py",
        "return 2 * _pc(m & (a ^ w_sign)) - _pc(m)",
        "return 2 * _pc(m & ~(a ^ w_sign)) - _pc(m)",
        "binary activations against ternary weights: the product's sign the wrong way round",
        GOLDEN_TESTS,
    ),
    # --- export (training -> model file) ------------------------------------------------------------
    _m(
        "bn-mean-unscaled",
        "export",
        "sw/train/mlp.py",
        "shift = bn.bias.detach().double() - bn.running_mean.double() * scale",
        "shift = bn.bias.detach().double() - bn.running_mean.double()",
        "batch-norm's running mean subtracted without the scale in the folded shift",
        EXPORT_TESTS,
    ),
    _m(
        "descending-never-at-lo",
        "export",
        "sw/train/export.py",
        "    left = np.where(desc, lo - 1, lo)",
        "    left = np.where(desc, lo, lo)",
        "a falling channel that never reaches a level exports lo (reached) instead of lo - 1 (never)",
        ("tests/sw/golden",),
    ),
    _m(
        "ascending-never-at-hi",
        "export",
        "sw/train/export.py",
        "    right = np.where(desc, hi, hi + 1)",
        "    right = np.where(desc, hi, hi)",
        "the bisection of a rising channel has no 'never' value above hi",
        EXPORT_TESTS,
    ),
    _m(
        "export-levels-from-zero",
        "export",
        "sw/train/export.py",
        "level = torch.arange(1, levels, dtype=torch.float64)[:, None]",
        "level = torch.arange(0, levels - 1, dtype=torch.float64)[:, None]",
        "threshold i searched for code i instead of code i + 1",
        EXPORT_TESTS,
    ),
    # --- the model file -----------------------------------------------------------------------------
    _m(
        "threshold-range-off-by-one",
        "model-file",
        "sw/model/file.py",
        "outside = (t < lo[:, None] - 1) | (t > hi[:, None] + 1)",
        "outside = (t < lo[:, None] - 1) | (t > hi[:, None] + 2)",
        "a threshold two steps above the accumulator range is accepted",
        MODEL_TESTS,
    ),
    _m(
        "array-end-unchecked",
        "model-file",
        "sw/model/file.py",
        "if offset + nbytes > len(payload):",
        "if offset > len(payload):",
        "an array that starts inside the payload but runs past its end is not refused",
        MODEL_TESTS,
    ),
    _m(
        "int-weight-limit-off-by-one",
        "model-file",
        "sw/model/file.py",
        "limit = (1 << (layer.weight_bits - 1)) - 1",
        "limit = 1 << (layer.weight_bits - 1)",
        "b-bit weights accepted down to -2**(b-1), outside the symmetric range",
        MODEL_TESTS,
    ),
    _m(
        "header-depth-off-by-one",
        "model-file",
        "sw/model/file.py",
        "if depth > MAX_HEADER_DEPTH:",
        "if depth >= MAX_HEADER_DEPTH:",
        "a header exactly MAX_HEADER_DEPTH levels deep is refused",
        MODEL_TESTS,
    ),
    # --- packing (bit order, words, thresholds for the tile) ----------------------------------------
    _m(
        "words-for-floor",
        "packing",
        "sw/kinds/packing.py",
        "return -(-int(n) // word_width)",
        "return int(n) // word_width",
        "the words that hold n bits rounded down instead of up",
        PACKING_TESTS,
    ),
    _m(
        "ternary-padding-code-0",
        "packing",
        "sw/host/packing.py",
        "return 1 if config.input_kind in (InputKind.TERNARY, InputKind.FATNN) else 0",
        "return 0 if config.input_kind in (InputKind.TERNARY, InputKind.FATNN) else 0",
        "ternary and FATNN padding taps filled with code 0 (value -1) instead of code 1 (value 0)",
        PACKING_TESTS,
    ),
    _m(
        "int-planes-lsb-first",
        "packing",
        "sw/host/packing.py",
        "shifts = np.arange(bits - 1, -1, -1, dtype=np.int64)[:, None, None]",
        "shifts = np.arange(bits, dtype=np.int64)[:, None, None]",
        "int weight planes packed least significant first, where plane 0 is the sign bit",
        PACKING_TESTS,
    ),
    _m(
        "clamp-never-at-hi",
        "packing",
        "sw/host/packing.py",
        "ascending = np.where(t > hi, hi + 1, np.where(t <= lo, lo, t))",
        "ascending = np.where(t > hi, hi, np.where(t <= lo, lo, t))",
        "a rising threshold above the range clamped to hi (reached) instead of hi + 1 (never)",
        PACKING_TESTS,
    ),
    # --- arithmetic units ---------------------------------------------------------------------------
    _m(
        "fgq-no-minus-count",
        "units",
        "hw/units/fgq.py",
        "s_g, level = pipe.reduce([*taps[group], count], self.registered, first_level=2)",
        "s_g, level = pipe.reduce([*taps[group], count - count], self.registered, first_level=2)",
        "FGQ's taps t*a - [t = -1] summed without the group's count of -1 taps: each -1 tap one short",
        UNIT_TESTS,
    ),
    _m(
        "walk-dy-step-not-strided",
        "tile",
        "hw/tile/sequencer.py",
        "oy0.eq(oy0 + layer.stride)",
        "oy0.eq(oy0 + 1)",
        "the map walk moves down a pool window by one input row instead of the stride",
        TILE_TESTS,
    ),
    _m(
        "pool-keeps-smallest",
        "tile",
        "hw/tile/writeback.py",
        "(fold[c] > pooled[c])",
        "(fold[c] < pooled[c])",
        "max-pooling keeps each channel's smallest code of the pool window",
        TILE_TESTS,
    ),
    _m(
        "walk-padding-up-to-kernel",
        "packing",
        "sw/protocol/__init__.py",
        "| (walk.padding >= walk.kernel)",
        "| (walk.padding > walk.kernel)",
        "a walk's padding equal to its kernel accepted (a window of padding only)",
        PACKING_TESTS,
    ),
    _m(
        "stall-on-ready-only",
        "units",
        "hw/units/tree.py",
        "m.d.comb += self.advance.eq(~o_stream.valid | o_stream.ready)",
        "m.d.comb += self.advance.eq(o_stream.ready)",
        "the pipeline advances only on o.ready, not when its output register is empty",
        UNIT_TESTS,
    ),
    _m(
        "threshold-unit-strict",
        "units",
        "hw/units/threshold.py",
        "hits = [Mux(descending, t, acc) >= Mux(descending, acc, t) for t in payload.thresholds]",
        "hits = [Mux(descending, t, acc) > Mux(descending, acc, t) for t in payload.thresholds]",
        "the threshold comparators are strict: an accumulator equal to T does not count",
        UNIT_TESTS,
    ),
    _m(
        "search-strict",
        "tile",
        "hw/tile/search.py",
        "Mux(desc_k, t >= x_k, x_k >= t)",
        "Mux(desc_k, t >= x_k, x_k > t)",
        "the threshold search's comparator is strict: an accumulator equal to T does not count",
        TILE_TESTS,
    ),
    _m(
        "fgq-scales-repeated-per-tile-group",
        "packing",
        "sw/host/packing.py",
        "np.repeat(np.asarray(layer.alpha_q, dtype=np.int64), config.group_size, axis=1)",
        "np.repeat(np.asarray(layer.alpha_q, dtype=np.int64), geometry.group_size, axis=1)",
        "an FGQ layer's scales repeated over the tile's group size instead of the layer's N",
        PACKING_TESTS,
    ),
    _m(
        "thresholds-unordered",
        "packing",
        "sw/host/packing.py",
        "    t = np.sort(np.asarray(thresholds, dtype=np.int64), axis=1)",
        "    t = np.asarray(thresholds, dtype=np.int64)",
        "LOAD_THRESHOLDS sends the model file's order: a searching tile finds the wrong prefix",
        PACKING_TESTS,
    ),
    _m(
        "bitserial-lsb-first",
        "units",
        "hw/units/kbit_dot.py",
        "                    bit = k - 1 - step",
        "                    bit = step",
        "the planes enter least significant first into an accumulator that doubles for MSB first",
        UNIT_TESTS,
    ),
    _m(
        "popcount-width-narrow",
        "units",
        "hw/units/binary_dot.py",
        "    return n.bit_length()",
        "    return (n - 1).bit_length()",
        "the popcount's width from n - 1: a power-of-two lane count overflows when every lane counts",
        UNIT_TESTS,
    ),
    _m(
        "tree-drops-odd-leaf",
        "units",
        "hw/units/tree.py",
        "            if len(values) % 2:\n                paired.append(values[-1])\n",
        "",
        "the adder tree drops the unpaired value of a level with an odd count",
        UNIT_TESTS,
    ),
    # --- the tile -----------------------------------------------------------------------------------
    _m(
        "configure-length-4",
        "tile",
        "hw/tile/decoder.py",
        "                            with m.If(in_hdr_len == 3):",
        "                            with m.If((in_hdr_len == 3) | (in_hdr_len == 4)):",
        "CONFIGURE with a length of 4 is taken as a configuration",
        TILE_TESTS,
    ),
    _m(
        "threshold-slot-extra",
        "tile",
        "hw/tile/engine.py",
        "value = Mux(t < layer.thresholds, value, Mux(descending, never_down, never_up))",
        "value = Mux(t <= layer.thresholds, value, Mux(descending, never_down, never_up))",
        "one threshold slot beyond the layer's count is read from the record",
        TILE_TESTS,
    ),
    _m(
        "engine-ignores-neg",
        "tile",
        "hw/tile/engine.py",
        "            term = Mux(s_neg, -d, d)",
        "            term = d",
        "the sign plane of int weights is added instead of subtracted",
        TILE_TESTS,
    ),
    _m(
        "packer-drops-partial-word",
        "tile",
        "hw/tile/packer.py",
        "left.eq((bit_count + WORD_BITS - 1) >> word_log2),",
        "left.eq(bit_count >> word_log2),",
        "a vector's last, partly filled word of codes is counted down, not up, and never sent",
        TILE_TESTS,
    ),
    _m(
        "run-remainder-accepted",
        "tile",
        "hw/tile/decoder.py",
        "with m.If((run_left < input_words) | (data_words > MAX_LENGTH)):",
        "with m.If(data_words > MAX_LENGTH):",
        "RUN's length is not checked to be a whole number of input vectors",
        TILE_TESTS,
    ),
    _m(
        "input-word-one-row",
        "tile",
        "hw/tile/decoder.py",
        "m.d.sync += pending.eq(Mux(last_row, 0, rows_left))",
        "m.d.sync += pending.eq(0)",
        "a RUN word that carries several narrow input rows is written as its first row only",
        TILE_TESTS,
    ),
    # --- the host driver ----------------------------------------------------------------------------
    _m(
        "host-seq-no-wrap",
        "driver",
        "sw/host/link.py",
        "self._rx_expected, self._rx_naked = (self._rx_expected + 1) & 0xFF, False",
        "self._rx_expected, self._rx_naked = self._rx_expected + 1, False",
        "the host's expected seq of the board's frames does not wrap at 256",
        DRIVER_TESTS,
    ),
    _m(
        "host-ack-not-cumulative",
        "driver",
        "sw/host/link.py",
        "                del self._window[: acked + 1]",
        "                del self._window[:acked]",
        "an ACK releases the frames before the acknowledged one but not the frame itself",
        DRIVER_TESTS,
    ),
    _m(
        "host-window-five",
        "driver",
        "sw/host/link.py",
        "            while len(self._window) >= WINDOW_FRAMES:",
        "            while len(self._window) > WINDOW_FRAMES:",
        "one DATA frame more in flight than the board has receive slots",
        DRIVER_TESTS,
    ),
    _m(
        "error-code-bytes-swapped",
        "driver",
        "sw/host/interface.py",
        "code, about = word & 0xFF, (word >> 8) & 0xFF",
        "about, code = word & 0xFF, (word >> 8) & 0xFF",
        "ERROR's code and opcode bytes read the wrong way round",
        DRIVER_TESTS,
    ),
    _m(
        "run-batch-over-max-length",
        "driver",
        "sw/host/interface.py",
        "size = min(batch, MAX_LENGTH // words_per_vector)",
        "size = min(batch, MAX_LENGTH // words_per_vector + 1)",
        "one vector more per RUN than MAX_LENGTH words hold",
        DRIVER_TESTS,
    ),
    # --- the board's serial link --------------------------------------------------------------------
    _m(
        "receiver-crc-not-reset",
        "link",
        "hw/link/receiver.py",
        "m.d.sync += [crc.eq(CRC_INIT), gap.eq(0), stored.eq(~self.hold)]",
        "m.d.sync += [gap.eq(0), stored.eq(~self.hold)]",
        "the receiver's CRC register is initialised at reset only, not at each frame's SOF",
        LINK_TESTS,
    ),
    _m(
        "receiver-drops-full-frame",
        "link",
        "hw/link/receiver.py",
        "with m.If(new_count > MAX_FRAME_WORDS):",
        "with m.If(new_count >= MAX_FRAME_WORDS):",
        "a DATA frame of exactly MAX_FRAME_WORDS words is dropped as too long",
        LINK_TESTS,
    ),
    _m(
        "uart-rx-seven-bits",
        "link",
        "hw/link/uart.py",
        "                    with m.If(bit == 7):",
        "                    with m.If(bit == 6):",
        "the UART receiver stops after 7 data bits",
        LINK_TESTS,
    ),
    _m(
        "crc-lsb-first",
        "link",
        "hw/link/crc.py",
        "    for k in range(7, -1, -1):",
        "    for k in range(8):",
        "the board's CRC takes a byte least significant bit first (the UART's order), not MSB first",
        LINK_TESTS,
    ),
    _m(
        "sender-ignores-nak",
        "link",
        "hw/link/sender.py",
        "                m.d.sync += next_seq.eq(self.ack.payload.seq)",
        "                m.d.sync += next_seq.eq(next_seq)",
        "the board's NAKed frames are released up to the NAKed one but sent again only after the timeout",
        LINK_TESTS,
    ),
    _m(
        "sender-ack-not-cumulative",
        "link",
        "hw/link/sender.py",
        "m.d.comb += self.release.eq(distance + 1)",
        "m.d.comb += self.release.eq(1)",
        "an ACK of a later frame releases one transmit slot, not every frame up to it",
        LINK_TESTS,
    ),
    _m(
        "host-takes-ahead-as-duplicate",
        "link",
        "sw/host/link.py",
        "elif 1 <= (self._rx_expected - event.seq) & 0xFF <= SEQ_BEHIND:",
        "elif 1 <= (self._rx_expected - event.seq) & 0xFF:",
        "the host answers a board frame ahead of the expected one (one before it lost) as a duplicate, no NAK",
        LINK_TESTS,
    ),
]

AREAS = ("golden", "export", "model-file", "packing", "units", "tile", "driver", "link")


def marker_expression(pyproject=ROOT / "pyproject.toml"):
    """``-m`` for pytest that leaves out :data:`SLOW_MARKERS`, or ``None`` if pyproject.toml does not
    declare them all (then there is nothing to leave out by marker)."""
    options = tomllib.loads(pyproject.read_text()).get("tool", {}).get("pytest", {}).get("ini_options", {})
    declared = {entry.split(":")[0].strip() for entry in options.get("markers", [])}
    if not all(marker in declared for marker in SLOW_MARKERS):
        return None
    return " and ".join(f"not {marker}" for marker in SLOW_MARKERS)


def pytest_command(tests):
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-rfE"]
    expression = marker_expression()
    if expression:
        command += ["-m", expression]
    return command + ["--hypothesis-seed=0", *tests]


def first_failure(output):
    """The node id of the first FAILED or ERROR line of pytest's summary, or ``None``."""
    for line in output.splitlines():
        found = re.match(r"(?:FAILED|ERROR) (.+?)(?: - .*)?$", line)
        if found:
            return found.group(1)
    return None


def summary_line(output):
    """pytest's last line (``3 passed in 1.2s``), without its ``=`` padding."""
    lines = [line.strip("= ") for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def run_tests(tests, timeout):
    """Run pytest on ``tests`` in a fresh build folder and Hypothesis database: ``(exit code or None on a
    timeout, seconds, output)``."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lowbit-mutants-") as scratch:
        env = dict(os.environ, LOWBIT_BUILD_DIR=str(Path(scratch) / "build"), PYTHONDONTWRITEBYTECODE="1")
        env["HYPOTHESIS_STORAGE_DIRECTORY"] = str(Path(scratch) / "hypothesis")
        process = subprocess.Popen(
            pytest_command(tests),
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group, stopped as a whole on a timeout
        )
        try:
            output, _ = process.communicate(timeout=timeout)
            code = process.returncode
        except BaseException as error:  # the timeout, or Ctrl-C: stop pytest and whatever it started
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:  # already gone
                pass
            output, _ = process.communicate()
            if not isinstance(error, subprocess.TimeoutExpired):
                raise
            code = None
    return code, time.perf_counter() - start, output


def check_mutant(mutant):
    """A clear error unless ``mutant``'s ``old`` occurs exactly once in its file and ``new`` differs."""
    text = (ROOT / mutant.path).read_text()
    count = text.count(mutant.old)
    if count != 1:
        raise SystemExit(f"mutant {mutant.name}: its 'old' string occurs {count} times in {mutant.path}, not once")
    if mutant.new == mutant.old:
        raise SystemExit(f"mutant {mutant.name}: 'new' equals 'old'")


def uncommitted(paths):
    """The paths among ``paths`` with uncommitted changes (staged or not), by ``git status``."""
    result = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "--", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return [line[3:] for line in result.stdout.splitlines() if line.strip()]


def run_mutant(mutant, timeout):
    """Plant ``mutant``, run its tests, restore the file's bytes and modification time; the result entry."""
    path = ROOT / mutant.path
    original = path.read_bytes()
    stat = path.stat()
    try:
        path.write_bytes(original.decode().replace(mutant.old, mutant.new, 1).encode())
        code, seconds, output = run_tests(mutant.tests, timeout)
    finally:
        path.write_bytes(original)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    if code is None:
        result = "caught (timeout)"
    elif code == 0:
        result = "survived"
    elif code in (1, 2):  # tests failed; 2: an error while collecting them (the mutant broke an import)
        result = "caught"
    else:
        result = f"error (pytest exit {code})"
    return {
        **{key: getattr(mutant, key) for key in ("name", "area", "path", "why", "old", "new")},
        "tests": list(mutant.tests),
        "result": result,
        "caught": result.startswith("caught"),
        "first_failure": first_failure(output),
        "summary": summary_line(output) if code is not None else f"stopped after {timeout} s",
        "seconds": round(seconds, 1),
    }


def _stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt  # so that the file being mutated is restored on the way out


def markdown(results):
    total, caught = results["total"], results["caught"]
    lines = [
        "# Mutation testing: plausible bugs against the fast test suite",
        "",
        "Written by `python bench/mutants.py` (commit " + results["commit"] + "): each mutant is one plausible",
        "bug planted in the source (`old` -> `new`, one site), run against the tests of its area with",
        f"`{results['pytest']}`; Verilator and synthesis tests left out. Caught: a test failed (or the run",
        f"timed out after {results['timeout']:g} s). Total time {results['seconds'] / 60:.1f} min.",
        "",
        f"**Score: {caught} of {total} mutants caught ({100 * caught / total:.1f} %)**; target "
        f"{100 * TARGET:.0f} %: {'met' if caught / total >= TARGET else 'missed'}.",
        "",
        "| area | mutants | caught | survived |",
        "|---|---:|---:|---:|",
    ]
    for area in AREAS:
        entries = [e for e in results["mutants"] if e["area"] == area]
        if entries:
            hits = sum(e["caught"] for e in entries)
            lines.append(f"| {area} | {len(entries)} | {hits} | {len(entries) - hits} |")
    lines += [
        "",
        "| name | area | file | why | result | first failing test | seconds |",
        "|---|---|---|---|---|---|---:|",
    ]
    for e in results["mutants"]:
        failure = f"`{e['first_failure']}`" if e["first_failure"] else "-"
        result = e["result"] if e["caught"] else f"**{e['result']}**"
        lines.append(
            f"| {e['name']} | {e['area']} | `{e['path']}` | {e['why']} | {result} | {failure} | {e['seconds']:.0f} |"
        )
    lines += ["", "Baseline (no mutant): " + "; ".join(f"`{k}` {v}" for k, v in results["baseline"].items()) + "."]
    return "\n".join(lines) + "\n"


def readme_text(results):
    total, caught = results["total"], results["caught"]
    survivors = [e for e in results["mutants"] if not e["caught"]]
    verdict = "met" if caught / total >= TARGET else "missed"
    lines = [
        f"**{caught} of {total} mutants caught ({100 * caught / total:.1f} %; target {100 * TARGET:.0f} %: "
        f"{verdict})**, commit {results['commit']}, {results['seconds'] / 60:.0f} min; every mutant, its edit's",
        "reason and the test that caught it in [bench/results/mutants.md](bench/results/mutants.md).",
    ]
    if survivors:
        lines += ["", "Survived (no test of the area fails):", ""]
        lines += [f"- `{e['name']}` (`{e['path']}`): {e['why']}" for e in survivors]
    return "\n".join(lines) + "\n"


def write_results(results):
    """``bench/results/mutants.{json,md}`` and the README's section."""
    publish("mutants", results, markdown(results), readme_text=readme_text(results))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", metavar="NAME", help="only this mutant (repeatable)")
    parser.add_argument("--area", choices=AREAS, help="only the mutants of this area")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite mutants.md and the README from bench/results/mutants.json, without running",
    )
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help=f"seconds per test run (default {TIMEOUT})")
    args = parser.parse_args(argv)

    if args.report_only:
        results = json.loads((RESULTS / "mutants.json").read_text())
        write_results(results)
        print(markdown(results))
        return 0
    names = {m.name for m in MUTANTS}
    unknown = sorted(set(args.only or ()) - names)
    if unknown:
        parser.error(f"no mutant named {', '.join(unknown)} (see --list)")
    selected = [m for m in MUTANTS if (not args.only or m.name in args.only) and (not args.area or m.area == args.area)]
    if args.list:
        for m in selected:
            print(f"{m.name:32} {m.area:10} {m.path:24} {m.why}")
        return 0
    if not selected:
        parser.error("no mutant matches --only and --area")
    whole_set = len(selected) == len(MUTANTS)

    paths = sorted({m.path for m in selected})
    dirty = uncommitted(paths)
    if dirty:
        raise SystemExit(f"refusing to start: uncommitted changes in {', '.join(dirty)} (commit or stash them first)")
    for m in selected:
        check_mutant(m)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)

    start = time.perf_counter()
    baseline = {}
    for tests in dict.fromkeys(m.tests for m in selected):
        key = " ".join(tests)
        code, seconds, output = run_tests(tests, args.timeout)
        if code != 0:
            why = "timed out" if code is None else f"failed ({first_failure(output) or summary_line(output)})"
            raise SystemExit(f"the unmutated tests {key} {why}: fix them before measuring mutants")
        baseline[key] = f"{summary_line(output)} ({seconds:.0f} s)"
        print(f"baseline {key}: {baseline[key]}", file=sys.stderr)

    entries = []
    for number, mutant in enumerate(selected, 1):
        entry = run_mutant(mutant, args.timeout)
        entries.append(entry)
        failure = f" by {entry['first_failure']}" if entry["first_failure"] else ""
        print(
            f"[{number}/{len(selected)}] {mutant.name}: {entry['result']}{failure} ({entry['seconds']:.0f} s)",
            file=sys.stderr,
        )

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    results = {
        "commit": commit.stdout.strip(),
        "pytest": shlex.join(["python", *pytest_command(["TESTS"])[1:]]),
        "timeout": args.timeout,
        "seconds": round(time.perf_counter() - start, 1),
        "baseline": baseline,
        "total": len(entries),
        "caught": sum(e["caught"] for e in entries),
        "survived": [e["name"] for e in entries if not e["caught"]],
        "mutants": entries,
    }
    results["score"] = results["caught"] / results["total"]
    if whole_set:
        write_results(results)
    else:
        print("(a part of the set: bench/results and the README are not written)", file=sys.stderr)
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
