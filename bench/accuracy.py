"""Accuracy and cost of every scheme on the digits test split: writes bench/results/accuracy.{json,md}.

Trains each scheme (fp32 once, as FGQ's starting point; uniform8 once, as n-hot's first stage), exports it,
reloads the file, runs the golden model and checks that its predictions equal the PyTorch integer pass.
The table's figures are those of training seed 0 (the model files); with several ``--seeds`` it adds the
mean and range of the golden accuracy over them, since one test sample is 0.28 points.
Model files go to build/accuracy-models/seed<k>/ (not kept in git). One PyTorch thread. The README's
accuracy table is the Markdown table written here (section ``accuracy`` of README.md).

Each scheme is trained by :func:`lowbit.sw.train.qat.train_all`, the code path of ``lowbit train --all``,
so seed k gives here the model ``lowbit train --scheme S --seed k`` writes (tests/sw/train/test_reproducible.py).

``--arch cnn`` trains the digits CNN instead (models in build/accuracy-models/cnn-seed<k>/) and writes
bench/results/accuracy_cnn.{json,md}, and the README section ``accuracy-cnn``: each scheme's CNN beside its
MLP of bench/results/accuracy.json (accuracy, weight bits, MACs).

    .venv/bin/python bench/accuracy.py [--arch mlp|cnn] [--hidden 256,256] [--seeds 0,1,2] [--schemes fp32,...]
"""

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from readme import update_section

from lowbit.sw.train.qat import TABLE_SCHEMES, TrainSettings, train_all, write_results
from lowbit.sw.train.schemes import ARCHS

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=ARCHS, default="mlp", help="the network (default mlp)")
    parser.add_argument(
        "--hidden", default=None, help="hidden widths, comma-separated (default: the architecture's, 256,256 for mlp)"
    )
    parser.add_argument("--seeds", default="0,1,2", help="training seeds; the first one's models fill the table")
    parser.add_argument("--schemes", default=",".join(TABLE_SCHEMES))
    parser.add_argument("--results", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--models", default=str(ROOT / "build" / "accuracy-models"))
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    hidden = None if args.hidden is None else tuple(int(w) for w in args.hidden.split(",") if w.strip())
    settings = TrainSettings(hidden=hidden, arch=args.arch, seed=seeds[0], progress=not args.no_progress)
    name = "accuracy" if args.arch == "mlp" else f"accuracy_{args.arch}"
    prefix = "" if args.arch == "mlp" else f"{args.arch}-"
    schemes = tuple(s for s in args.schemes.split(",") if s)
    start = time.perf_counter()
    runs = {}
    for seed in seeds:
        print(f"training seed {seed}", flush=True)
        runs[seed] = train_all(Path(args.models) / f"{prefix}seed{seed}", replace(settings, seed=seed), schemes)
    seconds = time.perf_counter() - start
    seed_accuracy = {
        s["scheme"]: [next(r["golden_accuracy"] for r in runs[seed] if r["scheme"] == s["scheme"]) for seed in seeds]
        for s in runs[seeds[0]]
    }
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    write_results(
        runs[seeds[0]],
        results / f"{name}.json",
        results / f"{name}.md",
        settings,
        round(seconds, 1),
        seed_accuracy if len(seeds) > 1 else None,
        seeds,
    )
    table = (results / f"{name}.md").read_text()
    if args.arch != "mlp" and (results / "accuracy.json").exists():
        table = beside_mlp(
            json.loads((results / "accuracy.json").read_text()), json.loads((results / f"{name}.json").read_text())
        )
        (results / f"{name}_vs_mlp.md").write_text(table)
    if args.results == str(ROOT / "bench" / "results"):
        update_section(name.replace("_", "-"), table)
    print(table)
    print(f"total {seconds:.0f} s; wrote {results / name}.json and .md")
    return 0 if all(s["golden_equals_pytorch"] for run in runs.values() for s in run) else 1


def _mean(row):
    return row.get("mean_accuracy") if row.get("mean_accuracy") is not None else row["golden_accuracy"]


def beside_mlp(mlp, other):
    """Markdown: each scheme of ``other`` (a CNN's accuracy.json) beside its MLP: golden accuracy (seed 0
    and the mean over seeds), weight bits and MACs, and whether the CNN is at least as accurate (on the
    means) with fewer weight bits."""
    mlps = {r["scheme"]: r for r in mlp["results"]}
    lines = [
        "| scheme | MLP golden % (mean) | CNN golden % (mean) | MLP weight bits | CNN weight bits | MLP MACs "
        "| CNN MACs | golden == PyTorch | CNN at least as accurate (means), fewer weight bits |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in other["results"]:
        base = mlps.get(row["scheme"])
        pct = lambda r: f"{100 * r['golden_accuracy']:.2f} ({100 * _mean(r):.2f})"  # noqa: E731
        if base is None:
            lines.append(
                f"| {row['scheme']} | — | {pct(row)} | — | {row['weight_bits']:,} | — | {row['macs']:,} | — | — |"
            )
            continue
        verdict = (
            f"{'yes' if _mean(row) >= _mean(base) else '**no**'}, "
            f"{'yes' if row['weight_bits'] < base['weight_bits'] else '**no**'}"
        )
        lines.append(
            f"| {row['scheme']} | {pct(base)} | {pct(row)} | {base['weight_bits']:,} | {row['weight_bits']:,} "
            f"| {base['macs']:,} | {row['macs']:,} "
            f"| {'yes' if row['golden_equals_pytorch'] else '**no**'} | {verdict} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
