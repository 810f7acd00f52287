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
out. The LUTs a geometry takes are not predicted here: a board's tiles are the ones it declares
(``GEOMETRIES``), built and measured by ``bench/boards.py``.
"""

from dataclasses import dataclass

from lowbit.sw.host.plan import tile_layers
from lowbit.sw.host.runner import resident_mode
from lowbit.sw.protocol import ProtocolError
from lowbit.sw.protocol.frames import BITS_PER_CHARACTER, CRC_BYTES, HEADER_BYTES, MAX_FRAME_WORDS

__all__ = ["LayerCost", "TilePlan", "plan_board"]

#: Bytes of a frame besides its words (header and CRC), and of an ACK frame.
FRAME_BYTES = HEADER_BYTES + CRC_BYTES


@dataclass(frozen=True)
class LayerCost:
    """One layer on a tile, per image: ``cycles`` of the MAC array, ``input_words`` sent up and
    ``output_words`` received."""

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
            f"  {'resident (LOAD_MODEL): the model loaded once' if self.resident else 'a layer at a time'}; "
            f"{self.up_words} words up, {self.down_words} down per image",
            f"  bound by the {'link' if link < compute else 'MAC array'}; layer {bound.index} "
            f"({bound.in_features} -> {bound.out_features}) takes {share:.0%} of the cycles",
        ]
        for layer in self.layers:
            lines.append(
                f"  layer {layer.index}: {layer.in_features} -> {layer.out_features}, {layer.cycles} cycles, "
                f"{layer.input_words} words up, {layer.output_words} down per image"
            )
        return "\n".join(lines)


def _layer_costs(model, geometry):
    configs = tile_layers(model, geometry)
    return tuple(
        LayerCost(
            index,
            config.in_features,
            config.out_features,
            geometry.cycles_per_vector(config),
            geometry.input_words(config),
            geometry.output_words(config),
        )
        for index, config in enumerate(configs)
    )


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
            layers = _layer_costs(model, geometry)
        except ProtocolError as error:
            plans.append(TilePlan(tile, geometry, clock_hz, module.BAUD, error=str(error)))
            continue
        resident = resident_mode(tile_layers(model, geometry), geometry)
        plans.append(TilePlan(tile, geometry, clock_hz, module.BAUD, layers, resident=resident))
    return plans
