"""``lowbit report FILE``: MACs, ACE, CPU64, weight bits and size of a model file, per layer and in total
(definitions: :mod:`lowbit.sw.model.report`)."""

import json
from pathlib import Path

from lowbit.sw import api

__all__ = ["add_report_arguments", "run_report"]


def add_report_arguments(parser):
    parser.add_argument("file", type=Path, help="a lowbit model file (from lowbit train)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run_report(args):
    model = api.load_model(args.file)
    print(json.dumps(api.cost(model).to_dict(), indent=2) if args.json else api.report(model))
    return 0
