"""What walking feature maps costs a tile: the same resident tile synthesized with and without
``maps=True`` (the map walk in the sequencer, its checks and address steps in the configuration, the
pad rows, pooling in the activation writer), per FPGA family, at two arrays (a benchmark).

``python bench/walk_cost.py`` writes ``bench/results/walk_cost.{json,md}``, the README section
``walk-cost`` and ``boards/walk_model.py``: per family the largest difference measured, which
:func:`lowbit.boards.resources.predict_luts` adds to a tile that walks maps (the board's logic model is
fitted to tiles without the walk).
"""

import argparse
import json
import sys
import time
from pathlib import Path

from readme import publish

ROOT = Path(__file__).resolve().parent.parent
MODEL_FILE = ROOT / "boards" / "walk_model.py"
#: Per family, the arrays (PE, SIMD) measured: a small one and one of the boards' sizes.
ARRAYS = {"ice40": ((8, 16), (4, 32)), "ecp5": ((8, 16), (16, 64))}


def geometry(pe, simd, maps):
    from lowbit.sw.protocol import Family, TileGeometry

    return TileGeometry(
        Family.BINARY,
        pe,
        simd,
        max_in_features=4096,
        max_out_features=512,
        max_weight_rows=4096,
        acc_width=16,
        max_thresholds=1,
        max_input_bits=8,
        max_layers=8,
        maps=maps,
    )


def measure(family, pe, simd):
    from lowbit.boards.resources import lut_positions
    from lowbit.boards.synth import synthesize
    from lowbit.hw.tile.tile import Tile

    row = {"family": family, "pe": pe, "simd": simd}
    for maps in (False, True):
        started = time.perf_counter()
        result = synthesize(Tile(geometry(pe, simd, maps)), family, name=f"walk-{pe}x{simd}-{int(maps)}")
        key = "walk" if maps else "plain"
        row[key] = {"lut4": lut_positions(family, result["cells"]), "ff": result["ff"]}
        print(f"{family} PE {pe} x SIMD {simd} maps={maps}: {row[key]} ({time.perf_counter() - started:.0f} s)")
    row["lut4_added"] = row["walk"]["lut4"] - row["plain"]["lut4"]
    row["ff_added"] = row["walk"]["ff"] - row["plain"]["ff"]
    return row


def markdown(result):
    lines = [
        "| family | array | LUT4 without / with the walk | added LUT4 | FF without / with | added FF |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['family']} | PE {r['pe']} x SIMD {r['simd']} | {r['plain']['lut4']:,} / {r['walk']['lut4']:,} "
            f"| {r['lut4_added']:,} | {r['plain']['ff']:,} / {r['walk']['ff']:,} | {r['ff_added']:,} |"
        )
    lines += [
        "",
        "- A binary resident tile (8 layers, 4096 inputs, 512 outputs, 4096 weight rows, 16-bit accumulators); "
        "LUT4 positions as the boards count them (iCE40: SB_LUT4 + SB_CARRY; ECP5: LUT4 + 2 per CCU2C). The "
        "planner adds the largest difference per family to a tile that walks maps: "
        + ", ".join(f"{family} {luts:,}" for family, luts in result["model"].items())
        + ".",
        f"- Run: `python bench/walk_cost.py`, {result['seconds']:.0f} s.",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(ARRAYS))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = [measure(family, pe, simd) for family in args.families.split(",") for pe, simd in ARRAYS[family]]
    model = {family: max(r["lut4_added"] for r in rows if r["family"] == family) for family in ARRAYS}
    result = {"rows": rows, "model": model, "seconds": time.perf_counter() - started}
    result["command"] = "bench/walk_cost.py " + " ".join(sys.argv[1:] if argv is None else argv)
    text = markdown(result)
    publish("walk_cost", result, text, section="walk-cost")
    MODEL_FILE.write_text(
        '"""LUT4 positions a tile that walks feature maps adds, per FPGA family: the largest difference\n'
        "``python bench/walk_cost.py`` measured (do not edit); :func:`lowbit.boards.resources.predict_luts`\n"
        'adds it."""\n\n'
        f"WALK_LUTS = {json.dumps(model)}\n"
    )
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
