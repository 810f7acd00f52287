"""The FPGA cells of a compressor tree (:mod:`lowbit.hw.units.compressor`) in Amaranth.

Each cell is built as a *model*, plain Amaranth logic that evaluates the cell's ``INIT`` bits the way
the vendor's simulation model does (so Amaranth's simulator and Verilator run the very netlist that is
mapped), or as the vendor primitive itself (``SB_LUT4`` / ``SB_CARRY`` on iCE40, ``CCU2C`` on ECP5),
which synthesis keeps as it is. The primitive is chosen when the design is elaborated for a platform of
the plan's family: an amaranth-boards platform, or :class:`CellPlatform` for a synthesis or proof run
without a board.
"""

from amaranth.hdl import Cat, Const, Instance, Mux, Signal

from lowbit.hw.units.compressor import TARGETS, Column, Lane, Link, ecp5_pins, physical_chains

__all__ = ["UNIT_TARGETS", "CellPlatform", "cell_family", "check_target", "resolve_target", "build_plan"]

#: ``target`` values of the units with compressor trees: ``auto`` builds the cells of the platform it is
#: elaborated for (the generic tree without one), the others force that structure.
UNIT_TARGETS = ("auto", *TARGETS)


class CellPlatform:
    """A stand-in platform that only names a cell ``family`` (``"ice40"`` or ``"ecp5"``): elaborating
    with it builds the vendor primitives of that family (for yosys), with no pins or toolchain."""

    def __init__(self, family):
        if family not in ("ice40", "ecp5"):
            raise ValueError(f"family must be ice40 or ecp5, not {family!r}")
        self.family = family

    def __repr__(self):
        return f"CellPlatform({self.family!r})"


def cell_family(platform):
    """``"ice40"``, ``"ecp5"`` or ``None``: the cell family of ``platform`` (amaranth-boards names iCE40
    platforms' family ``"iCE40"``)."""
    family = str(getattr(platform, "family", "") or "").lower()
    return family if family in ("ice40", "ecp5") else None


def check_target(target):
    """``target`` checked to be one of :data:`UNIT_TARGETS`; returned."""
    if target not in UNIT_TARGETS:
        raise ValueError(f"target must be one of {', '.join(UNIT_TARGETS)}, not {target!r}")
    return target


def resolve_target(target, platform):
    """The tree a unit of ``target`` builds when elaborated for ``platform``: ``auto`` gives the
    platform's cell family, or ``generic`` without one."""
    return target if target != "auto" else (cell_family(platform) or "generic")


def _lut4_model(m, init, inputs, name):
    out = Signal(name=name)
    m.d.comb += out.eq(Const(init, 16).bit_select(Cat(*inputs), 1))
    return out


class _Builder:
    def __init__(self, m, plan, fields, vendor):
        self.m, self.plan, self.fields, self.vendor = m, plan, fields, vendor
        self.nets = {}
        self.count = 0

    def name(self, kind):
        self.count += 1
        return f"{kind}{self.count}"

    def source(self, source):
        if source is None:
            return Const(0, 1)
        if isinstance(source, tuple):
            field, k = source
            return self.fields[field][k]
        return self.nets[source.id]

    def drive(self, net, value):
        if net is not None:
            signal = Signal(name=f"net{net.id}")
            self.m.d.comb += signal.eq(value)
            self.nets[net.id] = signal

    def lut4(self, init, inputs, out):
        inputs = [self.source(i) if not hasattr(i, "shape") else i for i in inputs]
        inputs += [Const(0, 1)] * (4 - len(inputs))
        if self.vendor and self.plan.target == "ice40":
            o = Signal(name=self.name("lut"))
            self.m.submodules[self.name("sb_lut4_")] = Instance(
                "SB_LUT4",
                p_LUT_INIT=Const(init, 16),
                **{f"i_I{i}": value for i, value in enumerate(inputs)},
                o_O=o,
            )
        elif self.vendor:  # ECP5's LUT4: Z = INIT[{D, C, B, A}]
            o = Signal(name=self.name("lut"))
            self.m.submodules[self.name("lut4_")] = Instance(
                "LUT4", p_INIT=Const(init, 16), **{f"i_{pin}": value for pin, value in zip("ABCD", inputs)}, o_Z=o
            )
        else:
            o = _lut4_model(self.m, init, inputs, self.name("lut"))
        self.drive(out, o)

    def ice40_chain(self, cells):
        """One physical iCE40 chain of ``(cell, init)``: a logic cell per entry (its LUT only where the
        cell has an output; a link without a feed starts the carry again from 0)."""
        ci = Const(0, 1)
        for cell, init in cells:
            if isinstance(cell, Column):
                i1, i2 = self.source(cell.op1), self.source(cell.op2)
                out = cell.sum
            else:
                i1 = i2 = self.source(cell.feed)
                out = cell.out
            if out is not None:
                self.lut4(init, [Const(0, 1), i1, i2, ci], out)
            if isinstance(cell, Link) and cell.feed is None:
                ci = Const(0, 1)
                continue
            co = Signal(name=self.name("co"))
            if self.vendor:
                self.m.submodules[self.name("sb_carry")] = Instance("SB_CARRY", i_I0=i1, i_I1=i2, i_CI=ci, o_CO=co)
            else:
                self.m.d.comb += co.eq((i1 & i2) | ((i1 | i2) & ci))
            ci = co

    def ecp5_chain(self, cells):
        """One physical ECP5 chain of ``(cell, init)``: two entries per CCU2C (a last odd one is paired
        with an empty link)."""
        cells = list(cells)
        if len(cells) % 2:
            cells.append((Link(None, None), 0))
        cin = Const(0, 1)
        for index in range(0, len(cells), 2):
            pair = cells[index : index + 2]
            # The outputs first: a half may read the other half's sum (a link's carry out).
            outputs = [Signal(name=self.name("s")) for _ in pair]
            for (cell, _), s in zip(pair, outputs):
                self.drive(cell.sum if isinstance(cell, Column) else cell.out, s)
            ports = {}
            for half, (cell, init) in enumerate(pair):
                pins = ecp5_pins(cell, lambda k: self.fields["a"][k], lambda k: self.fields["w"][k], self.source)
                for pin, value in zip("ABCD", pins):
                    ports[f"i_{pin}{half}"] = value if hasattr(value, "shape") else Const(value, 1)
                ports[f"p_INIT{half}"] = Const(init, 16)
            cout = Signal(name=self.name("cout"))
            if self.vendor:
                self.m.submodules[self.name("ccu2c")] = Instance(
                    "CCU2C",
                    **ports,
                    p_INJECT1_0="NO",
                    p_INJECT1_1="NO",
                    i_CIN=cin,
                    o_S0=outputs[0],
                    o_S1=outputs[1],
                    o_COUT=cout,
                )
            else:
                carry = cin
                for half, s in enumerate(outputs):
                    init = ports[f"p_INIT{half}"].value
                    pins = [ports[f"i_{pin}{half}"] for pin in "ABCD"]
                    p = _lut4_model(self.m, init, pins, self.name("p"))
                    g = Const(init & 0xF, 4).bit_select(Cat(pins[0], pins[1]), 1)
                    self.m.d.comb += s.eq(p ^ carry)
                    nxt = Signal(name=self.name("c"))
                    self.m.d.comb += nxt.eq(Mux(p, carry, g))
                    carry = nxt
                self.m.d.comb += cout.eq(carry)
            cin = cout


def _uses(plan):
    """For each net id and each input bit ``(field, k)``, the last stage that reads it."""
    last_net, last_lane = {}, {}

    def read(source, stage):
        if isinstance(source, tuple):
            last_lane[source] = stage
        elif isinstance(source, Lane):
            last_lane[("a", source.k)] = last_lane[("w", source.k)] = stage
        elif source is not None:
            last_net[source.id] = stage

    for index, stage in enumerate(plan.stages):
        for lut in stage.luts:
            for source in lut.inputs:
                read(source, index)
        for cell in stage.chain:
            for source in (cell.op1, cell.op2) if isinstance(cell, Column) else (cell.feed,):
                read(source, index)
    for bit in plan.result:
        read(bit, len(plan.stages))
    return last_net, last_lane


def build_plan(m, plan, fields, pipe, registered, platform):
    """Build ``plan`` in ``m`` on the input ``fields`` (``{name: Amaranth value}``: ``a`` and ``w`` for
    lanes, whatever its LUT leaves read otherwise); after each stage ``s + 1`` in ``registered`` every
    value still needed is registered with ``pipe.stage``. Returns the count (``plan.n.bit_length()``
    bits). The cells are the vendor's primitives when ``platform``'s family is the plan's
    (:func:`cell_family`), their models otherwise."""
    fields = {name: [value[k] for k in range(len(value))] for name, value in fields.items()}
    builder = _Builder(m, plan, fields, None)
    builder.vendor = cell_family(platform) == plan.target
    last_net, last_lane = _uses(plan)
    for stage in plan.stages:
        for lut in stage.luts:
            if stage is not plan.stages[0]:
                raise AssertionError("a plan's LUT4s are in its first stage")
            builder.lut4(lut.init, list(lut.inputs), lut.out)
    for index, cells in physical_chains(plan, registered):
        if plan.target == "ice40":
            builder.ice40_chain(cells)
        else:
            builder.ecp5_chain(cells)
        if index + 1 in registered:
            for net_id, signal in list(builder.nets.items()):
                if last_net.get(net_id, -1) > index:
                    builder.nets[net_id] = pipe.stage(signal, name=f"net{net_id}_s{index + 1}")
            for (field, k), last in last_lane.items():
                if last > index:
                    bits = builder.fields[field]
                    bits[k] = pipe.stage(bits[k], name=f"{field}{k}_s{index + 1}")
    return Cat(*(builder.source(bit) for bit in plan.result))
