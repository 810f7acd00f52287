"""lowbit's Python API: the functions under the ``lowbit`` command, for scripts and notebooks.

A walk-through is ``docs/python-api.md``. Every function takes a model as a
:class:`lowbit.sw.model.file.LowbitModel` or as the path of a model file, and digits pixels as an array
``(batch, 64)`` of integers ``0 .. 16`` (:func:`test_images`). Nothing here needs ``asyncio``: the tile
runs are synchronous, also inside a notebook's event loop.

- training: :func:`train` (one scheme, returns the exported model), :func:`train_and_check` (also what
  ``lowbit train`` prints), :func:`train_all`;
- the model file: :func:`load_model`, :func:`save_model`, :func:`cost`, :func:`report`;
- the golden model: :func:`golden` (last-layer accumulators), :func:`predict`, :func:`accuracy`;
- a tile: :func:`default_geometry`, :func:`check_fit`, :func:`run_mode`, :func:`run_on_tile` (outputs),
  :func:`tile_run` (outputs and what the run measured) on the reference tile in Python (``backend="model"``),
  the Verilog tile in Verilator (``"sim"``) or a board (``"serial"``), a layer at a time or, on a tile
  with resident mode, the whole model loaded at once (``mode=``);
- hardware: :func:`unit`, :func:`verilog`, :func:`synthesize`, :func:`build`; :func:`cache` shows or
  cleans the per-user cache of compiled simulators.

Errors of the arguments are :class:`ValueError` naming the parameter. Importing this module is light:
PyTorch, Amaranth and scikit-learn are imported by the functions that need them.
"""

from lowbit.sw.api.hardware import UNITS, build, cache, synthesize, unit, verilog
from lowbit.sw.api.models import accuracy, cost, golden, load_model, predict, report, save_model, test_images
from lowbit.sw.api.tile import (
    BACKENDS,
    MODES,
    SIM_SEED,
    TILE_OPTIONS,
    SessionError,
    TileRun,
    check_fit,
    default_geometry,
    run_mode,
    run_on_tile,
    tile_run,
)
from lowbit.sw.api.training import SCHEMES, train, train_all, train_and_check

__all__ = [
    "cache",
    "SCHEMES",
    "BACKENDS",
    "MODES",
    "TILE_OPTIONS",
    "SIM_SEED",
    "train",
    "train_and_check",
    "train_all",
    "load_model",
    "save_model",
    "cost",
    "report",
    "test_images",
    "golden",
    "predict",
    "accuracy",
    "default_geometry",
    "check_fit",
    "run_mode",
    "TileRun",
    "SessionError",
    "tile_run",
    "run_on_tile",
    "UNITS",
    "unit",
    "verilog",
    "synthesize",
    "build",
]
