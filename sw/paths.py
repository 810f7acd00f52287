"""Where lowbit writes what it builds, defined once.

Everything generated for one working directory (Verilog, synthesis and proof runs, board builds, cached
models, simulation runs) goes under :func:`build_root`: ``$LOWBIT_BUILD_DIR`` if set, else ``build/`` in
the working directory. Each kind of artefact has its own folder, :func:`build_dir`.

Compiled simulators (Verilator builds, which take minutes and do not depend on the working directory)
go to the per-user cache, :func:`cache_root`: ``$LOWBIT_CACHE_DIR`` if set, else the platform's user
cache folder (``~/.cache/lowbit`` on Linux, from ``platformdirs``), shared by every working directory;
each build's folder is keyed by a hash of what it was built from. ``lowbit cache`` shows and cleans it.
"""

import os
from pathlib import Path

__all__ = ["BUILD_DIR_VARIABLE", "CACHE_DIR_VARIABLE", "build_root", "build_dir", "cache_root", "cache_dir"]

#: The environment variable that moves the build root.
BUILD_DIR_VARIABLE = "LOWBIT_BUILD_DIR"
#: The environment variable that moves the cache of compiled simulators.
CACHE_DIR_VARIABLE = "LOWBIT_CACHE_DIR"


def build_root():
    """The build root: ``$LOWBIT_BUILD_DIR`` or ``./build``, as an absolute path."""
    return Path(os.environ.get(BUILD_DIR_VARIABLE, Path.cwd() / "build")).resolve()


def build_dir(kind):
    """The folder of one kind of artefact (``synth``, ``formal``, ``board``, ``models``, ...)."""
    return build_root() / kind


def cache_root():
    """The cache of compiled simulators: ``$LOWBIT_CACHE_DIR`` or the user cache folder, absolute."""
    if os.environ.get(CACHE_DIR_VARIABLE):
        return Path(os.environ[CACHE_DIR_VARIABLE]).resolve()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("lowbit")).resolve()


def cache_dir(kind):
    """The cache folder of one kind of compiled simulator (``verilator``: cocotb builds; ``harness``)."""
    return cache_root() / kind
