"""The host side of the tile: packing, the command interface, whole-model runs, the serial link.

- :mod:`.transport`: :class:`Transport`, the word stream to a tile, and the errors of a command;
- :mod:`.plan`: a model's layers as the tile's :class:`~lowbit.sw.protocol.LayerConfig`, refused before
  anything is sent when the tile cannot run them, and split into output parts when too large; the
  geometry of a tile that runs a model (:func:`default_geometry`);
- :mod:`.packing`: the payload words of each command, and RUN's DATA back into codes or accumulators;
- :mod:`.interface`: :class:`TileInterface`, one ``async`` method per command;
- :mod:`.runner`: :func:`run_model` / :func:`run_codes`, a whole model over a batch, a layer at a time
  (streaming) or loaded whole (resident, on a tile with ``max_layers``: :data:`MODES`);
- :mod:`.link`: the framed serial link and :class:`SerialTransport` to a board.

The protocol itself is :mod:`lowbit.sw.protocol`; the reference tile in Python is
:class:`lowbit.sim.reference.ModelTile`.
"""

from lowbit.sw.host.interface import StreamStats, TileInterface, vectors_per_run
from lowbit.sw.host.packing import (
    clamp_thresholds,
    order_thresholds,
    pack_inputs,
    pack_model_thresholds,
    pack_model_weights,
    pack_thresholds,
    pack_weights,
    unpack_outputs,
)
from lowbit.sw.host.plan import default_geometry, has_windows, layer_config, layer_part, output_parts, tile_layers
from lowbit.sw.host.runner import MODES, resident_mode, run_codes, run_model
from lowbit.sw.host.transport import TileError, Transport, TransportError

__all__ = [
    "Transport",
    "TransportError",
    "TileError",
    "StreamStats",
    "TileInterface",
    "default_geometry",
    "layer_config",
    "tile_layers",
    "has_windows",
    "output_parts",
    "layer_part",
    "clamp_thresholds",
    "order_thresholds",
    "pack_weights",
    "pack_thresholds",
    "pack_model_weights",
    "pack_model_thresholds",
    "pack_inputs",
    "unpack_outputs",
    "vectors_per_run",
    "MODES",
    "resident_mode",
    "run_model",
    "run_codes",
]
