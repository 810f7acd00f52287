"""Where lowbit writes what it builds, defined once (standard library only).

Everything generated (Verilog, Verilator builds, synthesis and proof runs, board builds, cached
models) goes under :func:`build_root`: ``$LOWBIT_BUILD_DIR`` if set, else ``build/`` in the working
directory. Each kind of artefact has its own folder, :func:`build_dir`.
"""

import os
from pathlib import Path

__all__ = ["BUILD_DIR_VARIABLE", "build_root", "build_dir"]

#: The environment variable that moves the build root.
BUILD_DIR_VARIABLE = "LOWBIT_BUILD_DIR"


def build_root():
    """The build root: ``$LOWBIT_BUILD_DIR`` or ``./build``, as an absolute path."""
    return Path(os.environ.get(BUILD_DIR_VARIABLE, Path.cwd() / "build")).resolve()


def build_dir(kind):
    """The folder of one kind of artefact (``sim``, ``synth``, ``formal``, ``board``, ``models``, ...)."""
    return build_root() / kind
