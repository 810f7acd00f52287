"""Planning a model on a board: which of the board's tiles runs it, what each layer costs per image in
MAC-array cycles and in words on the serial link, and which bounds the rate (``lowbit plan``).

The figures follow the tile's contract: a layer's cycles per vector are
:meth:`lowbit.sw.protocol.TileGeometry.cycles_per_vector` (what the Verilator tests assert the tile's
MAC array works), its words those of RUN (:meth:`~lowbit.sw.protocol.TileGeometry.input_words` up,
:meth:`~lowbit.sw.protocol.TileGeometry.output_words` down): on a tile that holds the whole model
(resident mode, :func:`lowbit.sw.host.resident_mode` in mode ``auto``, as the driver picks it) only the
first layer's inputs and the last layer's outputs cross the link, else every layer's. The link's
bytes add each DATA frame's header and CRC and the other side's ACK frame, at 10 bits per byte (8N1);
loads (CONFIGURE or LOAD_MODEL, LOAD_WEIGHTS, LOAD_THRESHOLDS) happen once per batch and are left
out.

:func:`plan_board` costs the tiles a board declares (``GEOMETRIES``); :func:`search_board` sizes a tile
for the model, in the spirit of FINN's folding: for every PE x SIMD (powers of two) and both modes
(resident, a layer at a time) the memories, accumulator, thresholds and input bits the model needs
(:func:`lowbit.sw.host.default_geometry`; a layer at a time, the memories halved into output parts
until they fit the block RAM; on the UP5K also with a weight memory deep enough for its SPRAMs), the
LUT4 positions and block RAMs :mod:`lowbit.boards.resources` predicts
for the board, and of those within the budget (the board's ``LUT_BUDGET`` share of its logic, or
``luts``; all its block RAM and DSPs) the one with the most images/s, the fewer LUTs between equals.
The images/s are, by default (objective ``"link"``), what the board delivers: the lesser of the MAC
array's rate at the board's clock and the serial link's, so that a tile no faster than the link can feed
is preferred to a larger one; with objective ``"compute"``, the MAC array's alone (a host link faster
than the UART, or the compute-bound figures of a benchmark); with ``"efficiency"``, the MAC array's per
predicted LUT4 position (the images/s per LUT a benchmark compares with FINN's).
"""

import dataclasses
from dataclasses import dataclass

from lowbit.sw.host.plan import default_geometry, has_windows, output_parts, resident_layers, tile_layers
from lowbit.sw.host.runner import resident_mode
from lowbit.sw.protocol import ProtocolError
from lowbit.sw.protocol.frames import BITS_PER_CHARACTER, CRC_BYTES, HEADER_BYTES, MAX_FRAME_WORDS

__all__ = [
    "LayerCost",
    "TilePlan",
    "plan_board",
    "Budget",
    "board_budget",
    "Search",
    "search_board",
    "plan_tile",
    "OBJECTIVES",
    "objective_rate",
]

#: Bytes of a frame besides its words (header and CRC), and of an ACK frame.
FRAME_BYTES = HEADER_BYTES + CRC_BYTES


@dataclass(frozen=True)
class LayerCost:
    """One layer on a tile, per image: ``cycles`` of the MAC array, ``input_words`` sent up and
    ``output_words`` received, over all its output parts."""

    index: int
    in_features: int
    out_features: int
    cycles: int
    input_words: int
    output_words: int


def _link_bytes(words):
    """Bytes ``words`` words take on one direction, in full frames, and the ACK bytes they cause the
    other direction to send (per image, so frames are counted fractionally)."""
    frames = words / MAX_FRAME_WORDS
    return 4 * words + FRAME_BYTES * frames, FRAME_BYTES * frames


@dataclass(frozen=True)
class TilePlan:
    """A tile of the board (``tile``, ``geometry``, ``clock_hz``) with ``baud`` on the link, and the
    model's ``layers`` on it, ``resident`` when the tile holds them all; ``error`` says why the tile does not
    run the model (``layers`` empty)."""

    tile: str
    geometry: object
    clock_hz: int
    baud: int
    layers: tuple = ()
    error: str = None
    resident: bool = False
    resources: object = None

    @property
    def up_words(self):
        """Words per image sent to the tile in RUN commands."""
        sent = self.layers[:1] if self.resident else self.layers
        return sum(layer.input_words for layer in sent)

    @property
    def down_words(self):
        """Words per image received in RUN's DATA."""
        received = self.layers[-1:] if self.resident else self.layers
        return sum(layer.output_words for layer in received)

    @property
    def cycles_per_image(self):
        return sum(layer.cycles for layer in self.layers)

    @property
    def images_per_s(self):
        """Images per second at the tile's clock, bound by the MAC array alone."""
        return self.clock_hz / self.cycles_per_image

    @property
    def link_images_per_s(self):
        """Images per second the serial link carries (the busier direction's bytes at 10 bits each)."""
        up, acks_down = _link_bytes(self.up_words)
        down, acks_up = _link_bytes(self.down_words)
        return self.baud / BITS_PER_CHARACTER / max(up + acks_up, down + acks_down)

    @property
    def delivered_images_per_s(self):
        """Images per second the board delivers: the lesser of the MAC array's and the link's."""
        return min(self.images_per_s, self.link_images_per_s)

    @property
    def bounding_layer(self):
        """The layer with the most MAC-array cycles per image."""
        return max(self.layers, key=lambda layer: layer.cycles)

    def text(self):
        if self.error:
            return f"{self.tile} tile ({self.geometry.label()}): does not run the model: {self.error}"
        bound = self.bounding_layer
        share = bound.cycles / self.cycles_per_image
        compute, link = self.images_per_s, self.link_images_per_s
        lines = [
            f"{self.tile} tile ({self.geometry.label()}, {self.geometry.pe * self.geometry.simd} lanes) at "
            f"{self.clock_hz / 1e6:g} MHz: {self.cycles_per_image} cycles per image, {compute:,.0f} images/s "
            f"(MAC array); {link:,.0f} images/s over the {self.baud}-baud link",
            *([f"  predicted: {self.resources.text()}"] if self.resources is not None else []),
            f"  {'resident (LOAD_MODEL): the model loaded once' if self.resident else 'a layer at a time'}; "
            f"{self.up_words} words up, {self.down_words} down per image",
            f"  bound by the {'link' if link < compute else 'MAC array'}; layer {bound.index} "
            f"({bound.in_features} -> {bound.out_features}) takes {share:.0%} of the cycles",
        ]
        last = len(self.layers) - 1
        for layer in self.layers:
            text = f"  layer {layer.index}: {layer.in_features} -> {layer.out_features}, {layer.cycles} cycles"
            if not self.resident:
                text += f", {layer.input_words} words up, {layer.output_words} down per image"
            elif layer.index in (0, last):  # resident: only the first layer's inputs and the last's outputs
                up = f"{layer.input_words} words up" if layer.index == 0 else ""
                down = f"{layer.output_words} down" if layer.index == last else ""
                text += ", " + ", ".join(filter(None, (up, down))) + " per image"
            lines.append(text)
        return "\n".join(lines)


def _layer_costs(model, geometry, resident=False):
    """Each layer's cost per image, summed over its output parts (:func:`lowbit.sw.host.output_parts`: a
    layer larger than the tile runs in parts, each taking the whole input vector again); a convolution's
    vectors are its windows, which the host cuts and sends (:func:`lowbit.sw.host.has_windows`), one per
    output position. ``resident`` on a tile that walks maps: each layer's walk
    (:func:`~lowbit.sw.host.plan.resident_layers`), the first layer's input the image or the map of its
    windows."""
    if resident and has_windows(model):
        return tuple(
            LayerCost(
                index,
                config.in_features,
                config.out_features,
                geometry.cycles_per_vector(config),
                geometry.input_words(config),
                geometry.output_words(config),
            )
            for index, config in enumerate(resident_layers(model, geometry))
        )
    costs = []
    for index, (layer, config) in enumerate(zip(model.layers, tile_layers(model, geometry))):
        parts = [
            dataclasses.replace(config, out_features=stop - start) for start, stop in output_parts(config, geometry)
        ]
        vectors = layer.positions
        costs.append(
            LayerCost(
                index,
                config.in_features,
                config.out_features,
                vectors * sum(geometry.cycles_per_vector(part) for part in parts),
                vectors * sum(geometry.input_words(part) for part in parts),
                vectors * sum(geometry.output_words(part) for part in parts),
            )
        )
    return tuple(costs)


def plan_board(model, board):
    """A :class:`TilePlan` of ``model`` (a :class:`lowbit.sw.model.file.LowbitModel`) on each of ``board``'s
    tiles (:func:`lowbit.boards.build.board_tiles`); the first without ``error`` is the tile
    :func:`lowbit.boards.build.board_tile` builds."""
    from lowbit.boards.build import board_module, board_tiles

    module = board_module(board)
    plans = []
    for tile, geometry in board_tiles(board):
        clock_hz = module.CLOCKS_HZ[tile]
        try:
            resident = resident_mode(tile_layers(model, geometry), geometry, model=model)
            layers = _layer_costs(model, geometry, resident)
        except ProtocolError as error:
            plans.append(TilePlan(tile, geometry, clock_hz, module.BAUD, error=str(error)))
            continue
        plans.append(TilePlan(tile, geometry, clock_hz, module.BAUD, layers, resident=resident))
    return plans


@dataclass(frozen=True)
class Budget:
    """What a tile may use of a board's FPGA: ``luts`` (LUT4 positions), ``blocks`` ({block RAM type:
    count}), ``dsp``, and ``row_bits``, the widest weight row (bits the MAC array reads from the weight
    memory each cycle) that still routes (``None``: no limit besides the others)."""

    luts: int
    blocks: dict
    dsp: int
    row_bits: int = None

    def holds_blocks(self, blocks):
        """Whether ``blocks`` ({block type: count}) are within the budget (a type it lacks: none)."""
        return all(count <= self.blocks.get(name, 0) for name, count in blocks.items())

    def holds(self, resources, geometry=None):
        """Whether predicted ``resources`` (:class:`lowbit.boards.resources.Resources`; LUTs ``None``: not
        modelled) of a tile of ``geometry`` are within the budget."""
        if geometry is not None and self.row_bits is not None and geometry.weight_row_bits > self.row_bits:
            return False
        return resources.luts is not None and resources.luts <= self.luts and self.holds_blocks(resources.blocks)

    def text(self):
        blocks = ", ".join(f"{count} {name}" for name, count in self.blocks.items())
        rows = "" if self.row_bits is None else f", weight rows of up to {self.row_bits} bits"
        return f"{self.luts} LUT4, {blocks}, {self.dsp} DSP{rows}"


def board_budget(board, luts=None):
    """The :class:`Budget` of ``board``: its ``DEVICE``'s block RAM and DSPs, and ``luts`` LUT4 positions
    (default: the board's ``LUT_BUDGET`` share of the device's, what place and route still routes), and
    the board's ``MAX_WEIGHT_ROW_BITS``. Raises :class:`ValueError` for ``luts`` that is not a positive integer."""
    from lowbit.boards.build import board_module

    module = board_module(board)
    device = module.DEVICE
    if luts is None:
        luts = int(device["luts"] * module.LUT_BUDGET)
    elif not isinstance(luts, int) or isinstance(luts, bool) or luts < 1:
        raise ValueError(f"luts must be a positive integer, not {luts!r}")
    return Budget(luts, dict(device["blocks"]), device["dsp"], module.MAX_WEIGHT_ROW_BITS)


@dataclass(frozen=True)
class Search:
    """What :func:`search_board` found: the ``best`` :class:`TilePlan` (``None`` if no geometry fits the
    ``budget``), the number of geometries ``considered`` and of those that ``fit``, and the
    smallest predicted LUTs of any geometry (``smallest``) for the message when none fits."""

    board: str
    budget: Budget
    best: TilePlan
    considered: int
    fit: int
    smallest: int = None
    objective: str = "link"

    def text(self):
        head = (
            f"planned for {self.board} within {self.budget.text()}: {self.fit} of {self.considered} geometries fit"
            f"; the most {OBJECTIVE_TEXT[self.objective]}"
        )
        if self.best is None:
            if self.smallest is None:
                return f"{head}; no geometry runs the model"
            return f"{head}; the smallest needs {self.smallest} LUT4"
        return head + "\n" + self.best.text()


def _powers(limit, start=1):
    value = start
    while value <= max(limit, start):
        yield value
        value *= 2


def _geometries(model, pe, simd, blocks_fit, deep_rows):
    """The geometries of ``model`` at ``pe`` x ``simd``: resident, and a layer at a time with its memories
    halved (output parts) until they fit the block RAM (``blocks_fit``, a function of a geometry); and
    each of the two with ``deep_rows`` weight rows, where the FPGA keeps so deep a weight memory in
    other blocks (the UP5K's SPRAMs, beside its block RAM; ``None``: no such blocks)."""
    streaming = default_geometry(model, pe, simd)
    try:  # a model with convolutions: a tile that walks maps (none where the walks need what it lacks)
        resident = default_geometry(model, pe, simd, resident=True)
    except ProtocolError:
        resident = None
    both = [g for g in (resident, streaming) if g is not None]
    deep = [] if deep_rows is None else [g for g in both if g.max_weight_rows < deep_rows]
    if resident is not None:
        yield resident
    yield from (dataclasses.replace(g, max_weight_rows=deep_rows) for g in deep)
    while not blocks_fit(streaming) and streaming.max_out_features > pe:
        streaming = dataclasses.replace(
            streaming,
            max_out_features=max(pe, streaming.max_out_features // 2),
            max_weight_rows=max(1, streaming.max_weight_rows // 2),
        )
    yield streaming


#: What :func:`search_board` maximizes: images/s delivered over the link, of the MAC array, or of the MAC
#: array per predicted LUT4 position.
OBJECTIVES = ("link", "compute", "efficiency")


#: What each objective maximizes, in words.
OBJECTIVE_TEXT = {
    "link": "images/s delivered over the link",
    "compute": "images/s of the MAC array",
    "efficiency": "images/s of the MAC array per LUT4",
}


def objective_rate(objective):
    """The figure of a :class:`TilePlan` that ``objective`` (one of :data:`OBJECTIVES`) maximizes."""
    if objective == "compute":
        return lambda plan: plan.images_per_s
    if objective == "efficiency":
        return lambda plan: plan.images_per_s / plan.resources.luts
    return lambda plan: plan.delivered_images_per_s


def plan_tile(model, board, geometry):
    """The :class:`TilePlan` of ``model`` on a tile of ``geometry`` on ``board`` (tile ``"planned"``, at the
    board's ``CLOCK_HZ``), with its predicted :class:`lowbit.boards.resources.Resources`. Raises
    :class:`lowbit.sw.protocol.ProtocolError` when the tile does not run the model."""
    from lowbit.boards.build import board_module
    from lowbit.boards.resources import predict

    module = board_module(board)
    resident = resident_mode(tile_layers(model, geometry), geometry, model=model)
    layers = _layer_costs(model, geometry, resident)
    return TilePlan(
        "planned", geometry, module.CLOCK_HZ, module.BAUD, layers, resident=resident, resources=predict(board, geometry)
    )


def search_board(model, board, *, luts=None, objective="link"):
    """A tile sized for ``model`` on ``board`` within its budget (:func:`board_budget`): a :class:`Search`
    whose ``best`` is the :func:`plan_tile` with the most images/s (``objective`` ``"link"``: delivered
    over the board's link, the lesser of the MAC array's and the link's; ``"compute"``: the MAC array's;
    ``"efficiency"``: the MAC array's per predicted LUT4 position), the fewer LUTs between equals. Raises
    :class:`lowbit.sw.protocol.ProtocolError` for a model no tile family runs, :class:`ValueError` for a
    bad ``luts`` or ``objective``."""
    from lowbit.boards.build import BOARDS
    from lowbit.boards.resources import deep_weight_rows, modelled, predict

    fpga = BOARDS[board][1]
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, not {objective!r}")
    budget = board_budget(board, luts)
    rate = objective_rate(objective)
    family = default_geometry(model).family  # raises ProtocolError for a model no one tile family runs
    if not modelled(board, family):
        raise ProtocolError(
            f"no resource model of {family.name.lower()} tiles on {board} yet, so no tile can be sized for "
            f"the model; it runs on the simulator (lowbit run --backend sim) at any --pe / --simd"
        )
    in_limit = max(layer.in_features for layer in model.layers)
    out_limit = max(layer.out_features for layer in model.layers)
    blocks_fit = lambda g: budget.holds_blocks(predict(board, g).blocks)
    best, considered, fit, smallest = None, 0, 0, None
    seen = set()
    for pe in _powers(min(out_limit, 64)):
        for simd in _powers(min(in_limit, 256), start=4):
            try:
                geometries = list(_geometries(model, pe, simd, blocks_fit, deep_weight_rows(fpga)))
            except (ProtocolError, ValueError):
                continue
            for geometry in geometries:
                if geometry in seen:
                    continue
                seen.add(geometry)
                try:
                    plan = plan_tile(model, board, geometry)
                except ProtocolError:
                    continue
                considered += 1
                if plan.resources.luts is not None:
                    smallest = plan.resources.luts if smallest is None else min(smallest, plan.resources.luts)
                if not budget.holds(plan.resources, geometry):
                    continue
                fit += 1
                if best is None or (-rate(plan), plan.resources.luts) < (-rate(best), best.resources.luts):
                    best = plan
    return Search(board, budget, best, considered, fit, smallest, objective)
