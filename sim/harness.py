"""The compiled stream harness: a component with a word stream in and a word stream out, built by
Verilator into a shared library with a C++ pump (``harness.cpp`` beside this file), called through
ctypes once per batch of words instead of once per word and cycle as a cocotb bench does.

- :func:`build_harness` verilates the component's Verilog and links the pump into ``lib<top>.so``, once
  per design, in the per-user cache (:func:`lowbit.sw.paths.cache_dir`; the folder is keyed by a hash of
  the Verilog, the pump's source, the Verilator version and the flags, so every working directory shares
  it); a line on standard error says when it builds and where.
- :class:`Harness` is one running simulation of that library: reset, then :meth:`Harness.pump` offers
  words and collects words under the seeded idle / back-pressure patterns, with a cycle count.
- :class:`HarnessTransport` is the driver's :class:`~lowbit.sw.host.Transport` on a harness: what the
  simulation backend of ``lowbit run`` and :func:`lowbit.sim.tile_transport.run_model_on_tile` use.

The patterns: with ``idle`` the source holds back a word it could offer in :data:`IDLE_PERMILLE` of the
cycles, with ``backpressure`` the sink is not ready in :data:`STALL_PERMILLE`; both from ``seed``.
"""

import ctypes
import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

from lowbit.sw import paths
from lowbit.sw.host import Transport, TransportError

__all__ = [
    "IDLE_PERMILLE",
    "STALL_PERMILLE",
    "WAVE_FORMATS",
    "Harness",
    "HarnessTransport",
    "build_harness",
    "wave_format",
]

SOURCE = Path(__file__).with_name("harness.cpp")
#: Cycles (per thousand) in which the source holds back / the sink refuses a word, when asked for.
IDLE_PERMILLE, STALL_PERMILLE = 300, 300
#: Verilator's options for the harness: optimised C++, X values resolved once, no assertions.
VERILATOR_FLAGS = ("-Wno-fatal", "-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert")
CXX_FLAGS = "-fPIC -std=c++20"
#: The C++ optimisation: -O3 (the binary tile simulates about 30 % faster than at -O1), but -O1 for Verilog
#: above LARGE_VERILOG bytes (the n-hot tile with 8-bit activations at 4 x 8 when it compared its 255
#: thresholds at once, 2.3 MB: 1.5 minutes to build on two cores instead of over 5; with the threshold search,
#: 3.4 MB at 8 x 16, mostly memory contents, in about a minute).
FAST, SMALL, LARGE_VERILOG = "-O3", "-O1", 1_000_000
RESET_CYCLES = 2
#: Room for the words a component answers while :meth:`HarnessTransport.reset` sends the words before it.
RESET_ROOM = 1 << 20

_U64P = ctypes.POINTER(ctypes.c_uint64)


#: The waveform formats a harness can write, by file suffix: Verilator's option and the pump's macro.
WAVE_FORMATS = {".vcd": ("--trace", "HARNESS_TRACE_VCD"), ".fst": ("--trace-fst", "HARNESS_TRACE_FST")}


def wave_format(path):
    """The suffix of a waveform file, checked: ``.vcd`` or ``.fst``."""
    suffix = Path(path).suffix.lower()
    if suffix not in WAVE_FORMATS:
        raise ValueError(f"waves must name a .vcd or .fst file, not {str(path)!r}")
    return suffix


def build_harness(
    verilog_text,
    toplevel,
    *,
    mac_beats=False,
    edge_only=False,
    waves=None,
    sources=(),
    flags=(),
    optimise=None,
    quiet=False,
):
    """The shared library of ``verilog_text`` (top module ``toplevel``) with the pump; built once per design.

    ``mac_beats``: the top has a ``mac_beats`` output, read by :meth:`Harness.mac_beats`. ``edge_only``: the
    top's clock drives nothing but clock edges (Amaranth's Verilog, not a netlist whose clock may pass
    through cells), so the pump runs only the model's clocked regions on an edge that brings no new input
    (``HARNESS_EDGE_ONLY`` in ``harness.cpp``: the same cycles in about half the time; not with ``waves``,
    whose writer follows what eval runs). ``waves``
    (``".vcd"`` / ``".fst"``): a build that can write waveforms of that format (another library).
    ``sources``: further Verilog files (the vendor cells' models of a netlist), ``flags``: further Verilator
    options; both are part of the build's identity. ``optimise``: the C++ compiler's optimisation flag
    (default ``LOWBIT_SIM_OPT``'s, :func:`lowbit.sim.verilator.sim_optimisation`, else :data:`FAST`, or
    :data:`SMALL` for Verilog above :data:`LARGE_VERILOG` bytes). Unless
    ``quiet``, a line on standard error says that Verilator is building and where, and another how long it
    took.
    """
    from lowbit.sim.verilator import build_notice, setup_verilator, sim_optimisation

    setup_verilator()
    edge_only = edge_only and waves is None
    if optimise is None:
        optimise = sim_optimisation() or (SMALL if len(verilog_text) > LARGE_VERILOG else FAST)
    key = hashlib.sha256(
        "\0".join(
            [
                verilog_text,
                SOURCE.read_text(),
                version("verilator"),
                " ".join(VERILATOR_FLAGS),
                CXX_FLAGS,
                optimise,
                str(mac_beats),
                str(edge_only),
                str(waves),
                *(Path(source).read_text() for source in sources),
                *flags,
            ]
        ).encode()
    ).hexdigest()[:16]
    folder = paths.cache_dir("harness") / f"{toplevel}-{key}"
    library = folder / f"lib{toplevel}.so"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if library.exists():
            return library
        source = folder / f"{toplevel}.v"
        source.write_text(verilog_text)
        prefix = f"V{toplevel}"
        defines = (
            f'-DHARNESS_TOP_HEADER=\\"{prefix}.h\\" -DHARNESS_TOP={prefix}'
            + (" -DHARNESS_MAC_BEATS" if mac_beats else "")
            + (" -DHARNESS_EDGE_ONLY" if edge_only else "")
        )
        trace = []
        if waves is not None:
            option, macro = WAVE_FORMATS[waves]
            trace, defines = [option], f"{defines} -DHARNESS_TRACE -D{macro}"
        started = time.monotonic()
        if not quiet:
            build_notice(
                f"building {toplevel} with Verilator into {folder} (once per design; a few minutes for a large one)"
            )
        verilate = [
            "verilator",
            "--cc",
            str(source),
            str(SOURCE),
            *(str(Path(source).resolve()) for source in sources),
            "--top-module",
            toplevel,
            "--prefix",
            prefix,
            *VERILATOR_FLAGS,
            *flags,
            *trace,
            "-Mdir",
            str(folder / "obj"),
            "--build",
            "-j",
            str(max(1, min(2, os.cpu_count() or 1))),
            "-CFLAGS",
            f"{CXX_FLAGS} {optimise} {defines}",
            # verilated.mk of the PyPI package leaves the precompiled header's flag empty.
            "-MAKEFLAGS",
            "CFG_CXXFLAGS_PCH_I=-include",
        ]
        link = [
            "g++",
            "-shared",
            "-o",
            str(library.with_suffix(".so.part")),
            "-Wl,--whole-archive",
            str(folder / "obj" / f"lib{prefix}.a"),
            "-Wl,--no-whole-archive",
            str(folder / "obj" / "libverilated.a"),
            "-pthread",
            *(["-lz"] if waves == ".fst" else []),
        ]
        log = folder / "build.log"
        with open(log, "w") as out:
            for command in (verilate, link):
                if subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, cwd=folder).returncode:
                    raise RuntimeError(f"building the harness of {toplevel} failed: see {log}")
        library.with_suffix(".so.part").rename(library)
        # The library is all a run loads: Verilator's C++ and objects (about 200 MB for a tile) would
        # otherwise stay in the cache for every design ever built.
        shutil.rmtree(folder / "obj")
        if not quiet:
            build_notice(f"built {toplevel} in {time.monotonic() - started:.0f} s")
    return library


def _load(library):
    lib = ctypes.CDLL(str(library))
    lib.harness_new.restype = ctypes.c_void_p
    lib.harness_new.argtypes = [ctypes.c_uint64, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_char_p]
    lib.harness_free.argtypes = [ctypes.c_void_p]
    lib.harness_cycle.restype = ctypes.c_uint64
    lib.harness_cycle.argtypes = [ctypes.c_void_p]
    lib.harness_pump.restype = ctypes.c_int
    lib.harness_pump.argtypes = [
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_uint64,
        _U64P,
        ctypes.c_void_p,
        ctypes.c_uint64,
        ctypes.c_uint64,
        _U64P,
        ctypes.c_uint64,
        ctypes.c_uint64,
        ctypes.c_int,
    ]
    lib.harness_reset.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    if hasattr(lib, "harness_mac_beats"):
        lib.harness_mac_beats.restype = ctypes.c_uint32
        lib.harness_mac_beats.argtypes = [ctypes.c_void_p]
    return lib


class Harness:
    """One simulation of a harness library: reset on creation, freed with :meth:`close`.

    ``idle`` / ``backpressure``: the seeded flow patterns (see the module); ``seed`` fixes them. ``waves``:
    the waveform file to write (a library built with that format's ``waves``), closed by :meth:`close`.
    """

    def __init__(self, library, *, idle=False, backpressure=False, seed=0, waves=None):
        self._lib = _load(library)
        self._handle = self._lib.harness_new(
            seed,
            IDLE_PERMILLE if idle else 0,
            STALL_PERMILLE if backpressure else 0,
            RESET_CYCLES,
            None if waves is None else str(waves).encode(),
        )

    @property
    def cycle(self):
        """Rising clock edges since reset."""
        return self._lib.harness_cycle(self._handle)

    def mac_beats(self):
        """The component's ``mac_beats`` output, or ``None`` if it was built without it."""
        return self._lib.harness_mac_beats(self._handle) if hasattr(self._lib, "harness_mac_beats") else None

    def pump(self, words, want, *, quiet, limit=2**62, until_taken=False):
        """Offer ``words`` (``uint32`` array) and collect up to ``want`` words; returns ``(taken, out,
        status)``: how many of ``words`` the component took, the words it gave (an array), and 0 (``want``
        words came, or with ``until_taken`` every word of ``words`` was taken: the sink is not ready
        once ``want`` words came), 1 (``quiet`` cycles without a word either way) or 2 (``limit`` cycles
        ran)."""
        words = np.ascontiguousarray(words, dtype=np.uint32)
        out = np.empty(max(want, 1), dtype=np.uint32)
        taken, got = ctypes.c_uint64(), ctypes.c_uint64()
        status = self._lib.harness_pump(
            self._handle,
            words.ctypes.data,
            len(words),
            ctypes.byref(taken),
            out.ctypes.data,
            want,
            want,
            ctypes.byref(got),
            quiet,
            limit,
            int(until_taken),
        )
        return taken.value, out[: got.value], status

    def reset(self, cycles):
        """Hold the component's reset for ``cycles`` clock cycles (nothing offered, nothing taken)."""
        self._lib.harness_reset(self._handle, cycles)

    def close(self):
        if self._handle is not None:
            self._lib.harness_free(self._handle)
            self._handle = None


class HarnessTransport(Transport):
    """The driver's transport on a :class:`Harness` of a command/response component (the tile).

    :meth:`write` queues words; :meth:`read` runs the clock until ``count`` words came back, offering the
    queued words meanwhile (so a long RUN's answers flow while its vectors go in). ``cycle`` counts the
    clock edges since reset. A read that sees no word move for ``timeout_cycles`` raises
    :class:`TransportError` instead of hanging.
    """

    def __init__(self, library, *, idle=False, backpressure=False, seed=0, timeout_cycles=200_000, waves=None):
        self.harness = Harness(library, idle=idle, backpressure=backpressure, seed=seed, waves=waves)
        self.timeout_cycles = timeout_cycles
        self._pending = np.empty(0, dtype=np.uint32)
        self._early = np.empty(0, dtype=np.uint32)  # words that came while :meth:`reset` sent the pending ones

    @property
    def cycle(self):
        return self.harness.cycle

    async def write(self, words):
        self._pending = np.concatenate([self._pending, np.asarray(words, dtype=np.uint64).astype(np.uint32)])

    async def reset(self, cycles):
        """A reset in the middle of a command: offer the words written so far until the component has
        taken them all (what it answers meanwhile is kept for :meth:`read`), then hold its reset for
        ``cycles`` cycles."""
        while len(self._pending):
            taken, out, status = self.harness.pump(
                self._pending, RESET_ROOM, quiet=self.timeout_cycles, until_taken=True
            )
            self._pending = self._pending[taken:]
            self._early = np.concatenate([self._early, out])
            if status:
                raise TransportError(
                    f"the tile took no word for {self.timeout_cycles} cycles with {len(self._pending)} words "
                    f"still to send before the reset (cycle {self.cycle})"
                )
        self.harness.reset(cycles)

    async def read(self, count):
        received = [self._early[:count]]
        self._early = self._early[count:]
        have = len(received[0])
        while have < count:
            taken, out, status = self.harness.pump(self._pending, count - have, quiet=self.timeout_cycles)
            self._pending = self._pending[taken:]
            received.append(out)
            have += len(out)
            if status:
                raise TransportError(
                    f"the tile sent no word for {self.timeout_cycles} cycles while {count - have} more were "
                    f"expected (cycle {self.cycle}, {len(self._pending)} words not taken)"
                )
        return np.concatenate(received).tolist() if received else []

    def leftover(self, quiet=100):
        """The words the component sends beyond those read: any kept by :meth:`reset`, and any that come
        within ``quiet`` cycles while the words still queued are offered."""
        _, extra, _ = self.harness.pump(self._pending, 1, quiet=quiet)
        words = self._early.tolist() + extra.tolist()
        self._early = np.empty(0, dtype=np.uint32)
        return words

    async def close(self):
        self.harness.close()
