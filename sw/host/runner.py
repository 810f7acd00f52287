"""Whole models on a tile: :func:`run_codes` loads each layer once and streams the whole batch through it,
the outputs becoming the next layer's input."""

import numpy as np

from lowbit.sw.host.interface import vectors_per_run
from lowbit.sw.host.packing import pack_inputs, pack_thresholds, pack_weights, unpack_outputs
from lowbit.sw.host.plan import layer_config, layer_part, output_parts, tile_layers
from lowbit.sw.model.inputs import model_input

__all__ = ["run_model", "run_codes"]


async def run_model(interface, model, pixels, progress=None, *, max_batch=None):
    """Run ``model`` on digits ``pixels`` ``(batch, 64)`` on the tile; return the last layer's accumulators
    ``(batch, classes)`` ``int64``. :func:`run_codes` with the model's first-layer input codes."""
    return await run_codes(interface, model, model_input(model, pixels), progress, max_batch=max_batch)


async def run_codes(interface, model, codes, progress=None, *, max_batch=None):
    """Run ``model`` on first-layer input ``codes`` ``(batch, in_features)`` on the tile; return the last
    layer's accumulators ``(batch, classes)`` ``int64``.

    Every layer is checked (:func:`tile_layers`) and packed before the first word is sent; then each
    (each part of :func:`output_parts`, for a layer larger than the tile) is configured and loaded once
    and the whole batch streams through it in RUN commands of at most ``max_batch`` vectors (and never
    beyond ``MAX_LENGTH`` words), its outputs becoming the next layer's input. ``progress(layer, done,
    batch)`` is called after each RUN. The words sent are in ``interface.stats``, the commands (tagged
    with the layer index) in ``interface.log``.
    """
    geometry = interface.geometry or await interface.identify()
    configs = tile_layers(model, geometry)
    plans = []
    for layer, config in zip(model.layers, configs):
        parts = []
        for start, stop in output_parts(config, geometry):
            part = layer_part(layer, start, stop)
            parts.append(
                (start, stop, layer_config(part), pack_weights(part, geometry), pack_thresholds(part, geometry))
            )
        plans.append(parts)
    codes = np.asarray(codes)
    batch = len(codes)
    for index, (config, parts) in enumerate(zip(configs, plans)):
        interface.tag = index
        outputs = np.zeros((batch, config.out_features), np.int64)
        for number, (first, last, part, weights, thresholds) in enumerate(parts):
            await interface.configure(part)
            await interface.load_weights(weights.tolist())
            await interface.load_thresholds(thresholds.tolist())
            size = vectors_per_run(max(geometry.input_words(part), geometry.output_words(part)), batch, max_batch)
            for start in range(0, batch, size):
                chunk = codes[start : start + size]
                words = await interface.run(pack_inputs(chunk, part, geometry).tolist(), len(chunk))
                outputs[start : start + len(chunk), first:last] = unpack_outputs(words, part, geometry, len(chunk))
                if progress is not None:
                    progress(index, (number * batch + start + len(chunk)) // len(parts), batch)
        codes = outputs
    interface.tag = None
    return codes.astype(np.int64)
