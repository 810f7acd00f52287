"""Accuracy and cost of every scheme on the digits test split: writes bench/results/accuracy.{json,md}.

Trains each scheme (fp32 once, as FGQ's starting point; uniform8 once, as n-hot's first stage), exports it,
reloads the file, runs the golden model and checks that its predictions equal the PyTorch integer pass.
The table's figures are those of training seed 0 (the model files); with several ``--seeds`` it adds the
mean and range of the golden accuracy over them, since one test sample is 0.28 points.
Model files go to build/accuracy-models/seed<k>/ (not kept in git). One PyTorch thread. The README's
accuracy table is the Markdown table written here (section ``accuracy`` of README.md).

Each scheme is trained by :func:`lowbit.sw.train.qat.train_all`, the code path of ``lowbit train --all``,
so seed k gives here the model ``lowbit train --scheme S --seed k`` writes (tests/sw/train/test_reproducible.py).

    .venv/bin/python bench/accuracy.py [--hidden 256,256] [--seeds 0,1,2] [--schemes fp32,binary,...]
"""

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from readme import update_section

from lowbit.sw.train.qat import TABLE_SCHEMES, TrainSettings, train_all, write_results

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", default="256,256", help="hidden widths (default 256,256)")
    parser.add_argument("--seeds", default="0,1,2", help="training seeds; the first one's models fill the table")
    parser.add_argument("--schemes", default=",".join(TABLE_SCHEMES))
    parser.add_argument("--results", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--models", default=str(ROOT / "build" / "accuracy-models"))
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    settings = TrainSettings(
        hidden=tuple(int(w) for w in args.hidden.split(",")), seed=seeds[0], progress=not args.no_progress
    )
    schemes = tuple(s for s in args.schemes.split(",") if s)
    start = time.perf_counter()
    runs = {}
    for seed in seeds:
        print(f"training seed {seed}", flush=True)
        runs[seed] = train_all(Path(args.models) / f"seed{seed}", replace(settings, seed=seed), schemes)
    seconds = time.perf_counter() - start
    seed_accuracy = {
        s["scheme"]: [next(r["golden_accuracy"] for r in runs[seed] if r["scheme"] == s["scheme"]) for seed in seeds]
        for s in runs[seeds[0]]
    }
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    write_results(
        runs[seeds[0]],
        results / "accuracy.json",
        results / "accuracy.md",
        settings,
        round(seconds, 1),
        seed_accuracy if len(seeds) > 1 else None,
        seeds,
    )
    table = (results / "accuracy.md").read_text()
    if args.results == str(ROOT / "bench" / "results"):
        update_section("accuracy", table)
    print(table)
    print(f"total {seconds:.0f} s; wrote {results / 'accuracy.json'} and {results / 'accuracy.md'}")
    return 0 if all(s["golden_equals_pytorch"] for run in runs.values() for s in run) else 1


if __name__ == "__main__":
    sys.exit(main())
