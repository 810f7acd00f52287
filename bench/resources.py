"""Calibration of the planner's resource model (:mod:`lowbit.boards.resources`).

``python bench/resources.py`` synthesizes each board's whole top level (the build's own yosys script,
:func:`lowbit.boards.build.synth_board`, no place and route; cached) at a fixed sample of tile geometries
per tile family, fits the logic model's coefficients (non-negative least squares over
:data:`lowbit.boards.resources.FEATURES`), writes them to ``boards/resource_model.py`` and reports in
``bench/results/resources.{json,md}``: per sample the synthesized and the predicted LUT4 positions and
block RAMs, and the fit's error, in-sample and leave-one-out (each sample predicted by a fit without
it). ``--board`` / ``--family`` restrict the run (the other entries of the coefficient file are kept).
"""

import argparse
import dataclasses
import json
import random
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from readme import update_section
from scipy.optimize import nnls

from lowbit.boards.build import BOARDS, board_module, synth_board
from lowbit.boards.resources import FEATURES, block_ram, features, lut_positions, predict_blocks
from lowbit.sw.protocol import Family, TileGeometry

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
MODEL_FILE = ROOT / "boards" / "resource_model.py"
SEED = 20261206

#: Per board: the PE and SIMD values sampled, samples per family, and the memory sizes drawn from.
GRID = {
    "icebreaker": {"pe": [1, 2, 4], "simd": [8, 16, 32], "samples": 14, "in": [256, 512, 1024], "out": [128, 256, 512]},
    "ulx3s": {"pe": [2, 4, 8, 16], "simd": [16, 32, 64], "samples": 16, "in": [512, 1024], "out": [256, 512, 1024]},
}
FAMILIES = [Family.BINARY, Family.POPCOUNT, Family.NHOT]
#: Per board: wide arrays (PE, SIMD) sampled besides the grid for the popcount families, with the largest
#: memories of the grid and 1-bit inputs: the shapes the planner picks for wide binary layers (LFC's
#: 1024-wide rows), which the grid alone does not reach.
WIDE = {"icebreaker": [(1, 64), (2, 64)], "ulx3s": [(4, 256), (8, 128), (2, 256)]}


def sample_geometries(board, family):
    """The board's declared tile of ``family`` (if any) and a fixed random sample of geometries."""
    grid = GRID[board]
    rng = random.Random(f"{SEED}-{board}-{family.name}")
    declared = [g for g in board_module(board).GEOMETRIES.values() if g.family == family]
    out = list(declared)
    if family != Family.NHOT:
        for pe, simd in WIDE[board]:
            out.append(
                TileGeometry(
                    family,
                    pe=pe,
                    simd=simd,
                    max_in_features=max(grid["in"]),
                    max_out_features=max(grid["out"]),
                    max_weight_rows=1024 if board == "ulx3s" else 16384,
                    acc_width=12,
                    max_thresholds=1 if family == Family.BINARY else 3,
                    max_input_bits=1 if family == Family.BINARY else 2,
                )
            )
    count = len(out) - len(declared) + (grid["samples"] if family != Family.NHOT else grid["samples"] // 2)
    while len(out) < count:
        pe, simd = rng.choice(grid["pe"]), rng.choice(grid["simd"])
        n_terms = rng.choice([1, 2]) if family == Family.NHOT else 0
        if family == Family.NHOT:
            simd = max(4, simd // 4)
        layers = rng.choice([0, 0, 2, 4])
        g = TileGeometry(
            family,
            pe=pe,
            simd=simd,
            max_in_features=rng.choice(grid["in"]),
            max_out_features=rng.choice(grid["out"]),
            max_weight_rows=rng.choice([256, 1024, 4096]) if board == "ulx3s" else rng.choice([1024, 4096, 16384]),
            acc_width=rng.choice([12, 16, 20, 24]),
            max_thresholds=rng.choice([1, 3, 7, 15]),
            max_input_bits=rng.choice([2, 4, 8] if family == Family.NHOT else [1, 2, 4, 8]),  # n-hot codes: 2+
            n_terms=n_terms,
            max_layers=layers,
        )
        if g not in out:
            out.append(g)
    return out


def fit(rows, targets):
    """Non-negative least-squares coefficients of ``rows`` (feature vectors) for ``targets``."""
    a = np.array(rows, dtype=float)
    b = np.array(targets, dtype=float)
    scale = np.maximum(a.max(axis=0), 1)
    coefficients, _ = nnls(a / scale, b)
    return coefficients / scale


def _synthesize(task):
    """``(cells, seconds)`` of one sample, or ``(None, the error's last line)`` where yosys failed (its
    ABC9 pass has crashed on the odd ECP5 netlist: the sample is left out of the fit, not the run)."""
    board, geometry = task
    started = time.monotonic()
    try:
        cells = synth_board(board, geometry)
    except RuntimeError as error:
        return None, str(error).strip().splitlines()[-1]
    return cells, time.monotonic() - started


def run(boards, families, jobs):
    """Synthesize every sample (``jobs`` at a time); the samples' records by ``board/FAMILY``."""
    results = json.loads((RESULTS / "resources.json").read_text()) if (RESULTS / "resources.json").exists() else {}
    results.setdefault("samples", {})
    failed = results.setdefault("failed", {})  # samples yosys failed on, by board/FAMILY (this run's boards anew)
    for key in [key for key in failed if key.split("/")[0] in boards]:
        del failed[key]
    tasks = [(board, family, g) for board in boards for family in families for g in sample_geometries(board, family)]
    with ProcessPoolExecutor(jobs) as pool:
        done = pool.map(_synthesize, [(board, g) for board, _, g in tasks])
        entries = {}
        for (board, family, geometry), (cells, seconds) in zip(tasks, done):
            fpga = BOARDS[board][1]
            key = f"{board}/{family.name}"
            if cells is None:
                print(f"{key} {geometry.label()}: yosys failed, left out ({seconds})", flush=True)
                failed.setdefault(key, []).append(geometry.label())
                continue
            entries.setdefault(key, []).append(
                {
                    "geometry": dataclasses.asdict(geometry) | {"family": family.name},
                    "luts": lut_positions(fpga, cells),
                    "cells": {k: v for k, v in cells.items() if k[0].isupper()},
                }
            )  # features and blocks: analyse's, of the current model
            print(f"{key} {geometry.label()} {entries[key][-1]['luts']} LUT4 ({seconds:.0f} s)", flush=True)
    results["samples"].update(entries)
    return results


def analyse(results):
    """Fit each board and family, with the in-sample and leave-one-out errors; the coefficients."""
    coefficients, link_blocks, summary = {}, {}, {}
    for key, entries in sorted(results["samples"].items()):
        board, family = key.split("/")
        fpga = BOARDS[board][1]
        for e in entries:  # the features and blocks of the current model, from each sample's geometry
            geometry = TileGeometry(**(e["geometry"] | {"family": Family[e["geometry"]["family"]]}))
            e["features"], e["blocks"] = list(features(geometry)), predict_blocks(fpga, geometry)
        rows = [e["features"] for e in entries]
        targets = [e["luts"] for e in entries]
        c = fit(rows, targets)
        predicted = np.array(rows, dtype=float) @ c
        loo = []
        for i in range(len(entries)):
            keep = [j for j in range(len(entries)) if j != i]
            ci = fit([rows[j] for j in keep], [targets[j] for j in keep])
            loo.append(float(np.array(rows[i], dtype=float) @ ci))
        errors = [p / t - 1 for p, t in zip(predicted, targets)]
        loo_errors = [p / t - 1 for p, t in zip(loo, targets)]
        for e, p, q in zip(entries, predicted, loo):
            e["predicted"], e["predicted_loo"] = round(float(p)), round(float(q))
        coefficients.setdefault(board, {})[family] = [round(float(x), 4) for x in c]
        # The link's block RAMs: what synthesis maps beyond the tile's memories, the most over the samples
        # (so that the prediction is an upper bound: the planner keeps within the device with it).
        ram = block_ram(fpga)
        extra = [e["cells"].get(ram, 0) - e["blocks"].get(ram, 0) for e in entries]
        link_blocks.setdefault(board, []).extend(extra)
        summary[key] = {
            "samples": len(entries),
            "max_error": max(abs(x) for x in errors),
            "mean_error": float(np.mean(np.abs(errors))),
            "max_error_loo": max(abs(x) for x in loo_errors),
            "mean_error_loo": float(np.mean(np.abs(loo_errors))),
            "block_extra": [min(extra), max(extra)],
        }
    link_blocks = {board: max(extra) for board, extra in link_blocks.items()}
    for key, s in summary.items():  # block RAM predicted (with the link's) minus synthesized, the range
        link, (low, high) = link_blocks[key.split("/")[0]], s.pop("block_extra")
        s["block_error"] = [link - high, link - low]
    results["coefficients"], results["link_blocks"], results["summary"] = coefficients, link_blocks, summary
    return results


def write_model(results):
    text = (
        '"""Coefficients of :mod:`lowbit.boards.resources`\' logic model, per board and tile family, in the order\n'
        "of :data:`lowbit.boards.resources.FEATURES`; the block RAMs each board's link adds. Written by\n"
        '``python bench/resources.py`` (do not edit)."""\n\n'
        "COEFFICIENTS = {\n"
        + "".join(
            f'    "{board}": {{\n'
            + "".join(f'        "{family}": {json.dumps(c)},\n' for family, c in families.items())
            + "    },\n"
            for board, families in results["coefficients"].items()
        )
        + "}\n"
        f"LINK_BLOCKS = {json.dumps(results['link_blocks'])}\n"
    )  # as ruff formats it
    MODEL_FILE.write_text(text)


def markdown(results):
    lines = [
        "# Planner resource model: fit against synthesis",
        "",
        "Written by `python bench/resources.py`: each board's top level synthesized by the build's yosys script",
        "at sampled tile geometries; LUT4 positions (iCE40: SB_LUT4 + SB_CARRY; ECP5: LUT4 + 2 x CCU2C +",
        "6 x TRELLIS_DPR16X4) against the linear model's prediction (non-negative least squares over",
        ", ".join(FEATURES) + "). Left out: each sample predicted by a fit to the others. Block RAM:",
        "the memories' blocks plus the link's (the most over the samples: an upper bound), against yosys's.",
        "",
        "| board / family | samples | mean error | max error | mean error, left out | max error, left out "
        "| block RAM predicted - synthesized |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, s in results["summary"].items():
        lines.append(
            f"| {key} | {s['samples']} | {s['mean_error']:.1%} | {s['max_error']:.1%} | "
            f"{s['mean_error_loo']:.1%} | {s['max_error_loo']:.1%} | "
            f"{s['block_error'][0]:+d} .. {s['block_error'][1]:+d} |"
        )
    lines += [
        "",
        "| board / family | PE x SIMD | acc | thresholds | input bits | layers | LUT4 synth | predicted | left out |",
    ]
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for key, entries in results["samples"].items():
        for e in entries:
            g = e["geometry"]
            lines.append(
                f"| {key} | {g['pe']} x {g['simd']} | {g['acc_width']} | {g['max_thresholds']} | "
                f"{g['max_input_bits']} | {g['max_layers']} | {e['luts']} | {e.get('predicted')} | "
                f"{e.get('predicted_loo')} |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", choices=sorted(GRID), action="append", help="only this board (repeatable)")
    parser.add_argument("--family", choices=[f.name.lower() for f in FAMILIES], action="append")
    parser.add_argument("--fit-only", action="store_true", help="refit the stored samples without synthesis")
    parser.add_argument("--jobs", type=int, default=2, help="syntheses at a time (default 2)")
    args = parser.parse_args(argv)
    boards = args.board or sorted(GRID)
    families = [Family[name.upper()] for name in args.family] if args.family else FAMILIES
    if args.fit_only:
        results = json.loads((RESULTS / "resources.json").read_text())
    else:
        results = run(boards, families, args.jobs)
    results = analyse(results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "resources.json").write_text(json.dumps(results, indent=1) + "\n")
    (RESULTS / "resources.md").write_text(markdown(results))
    write_model(results)
    text = markdown(results)
    update_section("resources", text.split("\n\n", 1)[1].split("\n\n| board / family | PE")[0])
    print(text)


if __name__ == "__main__":
    main()
