"""Whole models on a tile: :func:`run_codes` loads each layer once and streams the whole batch through it,
the outputs becoming the next layer's input; or, on a tile with resident mode, loads the whole model once
(LOAD_MODEL) and streams the batch through all its layers at once."""

import numpy as np

from lowbit.sw.golden.network import class_index
from lowbit.sw.host.interface import vectors_per_run
from lowbit.sw.host.packing import (
    pack_inputs,
    pack_model_thresholds,
    pack_model_weights,
    pack_thresholds,
    pack_weights,
    unpack_outputs,
)
from lowbit.sw.host.plan import (
    NO_RESIDENT_WINDOWS,
    has_windows,
    layer_config,
    layer_part,
    output_parts,
    resident_input,
    resident_layers,
    tile_layers,
)
from lowbit.sw.model.conv import layer_outputs, layer_taps
from lowbit.sw.model.inputs import model_input
from lowbit.sw.protocol import MODES, ProtocolError, model_refusal_reason

__all__ = ["MODES", "run_model", "run_codes", "resident_mode", "check_mode"]


async def run_model(interface, model, pixels, progress=None, *, max_batch=None, mode="auto", classes=False):
    """Run ``model`` on digits ``pixels`` ``(batch, 64)`` on the tile; return the last layer's accumulators
    ``(batch, classes)`` ``int64`` (with ``classes``, the class indices ``(batch,)``). :func:`run_codes`
    with the model's first-layer input codes."""
    codes = model_input(model, pixels)
    return await run_codes(interface, model, codes, progress, max_batch=max_batch, mode=mode, classes=classes)


def check_mode(mode):
    """``mode`` if it is one of :data:`MODES`, else :class:`ValueError` naming them."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, not {mode!r}")
    return mode


def resident_mode(configs, geometry, mode="auto", *, model=None):
    """Whether :func:`run_codes` runs the layers ``configs`` (:class:`LayerConfig`, from :func:`tile_layers`)
    resident on a tile of ``geometry`` in ``mode``: ``"streaming"`` never; ``"auto"`` when the tile has
    resident mode (``max_layers`` > 0) and holds the model (:meth:`TileGeometry.model_check`; a layer that
    needs output parts never fits); ``"resident"`` always, raising :class:`ProtocolError` with the reason
    (:func:`lowbit.sw.protocol.model_refusal_reason`) when the tile cannot hold the model. A ``model`` (the
    layers' model) with convolutions (:func:`lowbit.sw.host.plan.has_windows`) runs resident only on a tile
    that walks maps, as its :func:`~lowbit.sw.host.plan.map_layers`."""
    check_mode(mode)
    if mode == "streaming":
        return False
    if model is not None and has_windows(model):
        if not geometry.maps:
            if mode == "resident":
                raise ProtocolError(f"the tile cannot hold the model resident: {NO_RESIDENT_WINDOWS}")
            return False
        configs = resident_layers(model, geometry)
    code = geometry.model_check(configs)
    if mode == "auto":
        return bool(geometry.max_layers) and code is None
    if code is not None:
        reason = model_refusal_reason(configs, geometry) or code.name
        raise ProtocolError(f"the tile cannot hold the model resident ({code.name}): {reason}")
    return True


async def run_codes(interface, model, codes, progress=None, *, max_batch=None, mode="auto", classes=False):
    """Run ``model`` on first-layer input ``codes`` ``(batch, in_features)`` on the tile; return the last
    layer's accumulators ``(batch, classes)`` ``int64``, or with ``classes`` each vector's class index
    ``(batch,)`` (:func:`lowbit.sw.golden.class_index`): resident, the tile answers it (CLASSIFY, one word
    per vector instead of the last layer's accumulators); a layer at a time, the host takes it from the
    accumulators.

    Every layer is checked (:func:`tile_layers`; resident, also the whole model: :func:`resident_mode`,
    which picks the mode) and packed before the first word is sent.

    Streaming: each layer (each part of :func:`output_parts`, for a layer larger than the tile) is
    configured and loaded once and the whole batch streams through it in RUN commands of at most
    ``max_batch`` vectors (and never beyond ``MAX_LENGTH`` words), its outputs becoming the next layer's
    input. A convolution's vectors are the windows of each image (the host cuts them and pools the
    outputs: :func:`lowbit.sw.model.conv.layer_taps`, :func:`~lowbit.sw.model.conv.layer_outputs`).
    ``progress(layer, done, batch)`` is called after each RUN; the commands are tagged with the layer index.

    Resident: LOAD_MODEL, LOAD_WEIGHTS and LOAD_THRESHOLDS of the whole model once, then the batch in RUN
    commands (bounded as above by layer 0's input and the last layer's output words), each answered with
    the last layer's accumulators; ``progress(len(layers) - 1, done, batch)`` after each RUN (every layer
    has then seen ``done`` vectors); the commands are tagged ``"model"``.

    The words sent are in ``interface.stats``, the commands in ``interface.log``.
    """
    check_mode(mode)
    geometry = interface.geometry or await interface.identify()
    configs = tile_layers(model, geometry)
    codes = np.asarray(codes)
    if resident_mode(configs, geometry, mode, model=model):
        # a CNN's walks, and its image or its first layer's windows (where they take no more words)
        configs, codes = resident_layers(model, geometry, configs), resident_input(model, geometry, codes)
        return await _run_resident(interface, model, configs, codes, progress, max_batch, classes)
    plans = []
    for layer, config in zip(model.layers, configs):
        parts = []
        for start, stop in output_parts(config, geometry):
            part = layer_part(layer, start, stop)
            parts.append(
                (start, stop, layer_config(part), pack_weights(part, geometry), pack_thresholds(part, geometry))
            )
        plans.append(parts)
    images = len(codes)
    for index, (layer, config, parts) in enumerate(zip(model.layers, configs, plans)):
        interface.tag = index
        codes = layer_taps(layer, codes)
        batch = len(codes)
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
        codes = layer_outputs(layer, outputs, images)
    interface.tag = None
    return class_index(codes) if classes else codes.astype(np.int64)


async def _run_resident(interface, model, configs, codes, progress, max_batch, classes):
    """:func:`run_codes` in resident mode: the whole model loaded once, the batch through all its layers
    (RUN, or CLASSIFY for ``classes``)."""
    geometry = interface.geometry
    first, last = configs[0], configs[-1]
    weights = pack_model_weights(model.layers, geometry, configs)
    thresholds = pack_model_thresholds(model.layers, geometry)
    batch = len(codes)
    interface.tag = "model"
    await interface.load_model(configs)
    await interface.load_weights(weights.tolist())
    await interface.load_thresholds(thresholds.tolist())
    outputs = np.zeros((batch,) if classes else (batch, last.out_features), np.int64)
    output_words = 1 if classes else geometry.output_words(last)
    size = vectors_per_run(max(geometry.input_words(first), output_words), batch, max_batch)
    for start in range(0, batch, size):
        chunk = codes[start : start + size]
        words = pack_inputs(chunk, first, geometry).tolist()
        if classes:
            outputs[start : start + len(chunk)] = await interface.classify(words, len(chunk))
        else:
            words = await interface.run(words, len(chunk))
            outputs[start : start + len(chunk)] = unpack_outputs(words, last, geometry, len(chunk))
        if progress is not None:
            progress(len(configs) - 1, start + len(chunk), batch)
    interface.tag = None
    return outputs
