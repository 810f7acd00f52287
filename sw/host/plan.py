"""Which commands run a model on a tile: a model-file layer as the tile's :class:`LayerConfig`, the
refusal of a model the tile cannot run (before anything is sent), and the output parts of a layer
larger than the tile's memories."""

import dataclasses

from lowbit.sw.kinds import InputKind, WeightKind, family_for
from lowbit.sw.protocol import ErrorCode, LayerConfig, ProtocolError, refusal_reason

__all__ = ["layer_config", "tile_layers", "output_parts", "layer_part", "fits_signed"]


def layer_config(layer):
    """The :class:`LayerConfig` of a model-file layer (:class:`lowbit.sw.model.file.LayerRecord`).

    The last layer (``output_kind`` ``accumulator``) gets
    ``output_levels`` 0. Raises :class:`ProtocolError` for a layer the protocol cannot express.
    """
    try:
        weight_kind, input_kind = WeightKind.parse(layer.weight_kind), InputKind.parse(layer.input_kind)
    except ValueError as error:
        raise ProtocolError(str(error)) from None
    if family_for(weight_kind, input_kind) is None:
        raise ProtocolError(f"no tile runs {weight_kind} weights against {input_kind} input")
    levels = 0 if layer.output_kind == "accumulator" else int(layer.output_levels)
    return LayerConfig(
        int(layer.in_features),
        int(layer.out_features),
        weight_kind,
        int(layer.weight_bits),
        int(layer.n_terms),
        input_kind,
        int(layer.input_bits),
        levels,
    )


def _accumulator_span(layer, config):
    """The values the tile's accumulator (and, for a hidden layer, its clamped thresholds) must hold."""
    lo, hi = layer.accumulator_range()
    return (lo, hi) if config.last else (lo - 1, hi + 1)


def fits_signed(values, width):
    return (values >= -(1 << (width - 1))) & (values < (1 << (width - 1)))


def tile_layers(model, geometry):
    """The :class:`LayerConfig` of every layer of ``model`` on a tile of ``geometry``.

    Raises :class:`ProtocolError` naming the first layer the tile cannot run and why (its kind, a size
    beyond the tile's memories, an accumulator wider than ``acc_width``), before anything is sent.
    """
    configs = []
    for index, layer in enumerate(model.layers):
        try:
            config = layer_config(layer)
        except ProtocolError as error:
            raise ProtocolError(f"layer {index}: {error}") from None
        code = geometry.check(config)
        if code == ErrorCode.TOO_LARGE:
            parts = output_parts(config, geometry)
            if parts is None:
                raise ProtocolError(
                    f"layer {index} ({config.in_features} -> {config.out_features}) is too large for the tile, "
                    f"even one output fold at a time: it holds {geometry.max_in_features} inputs, "
                    f"{geometry.max_out_features} outputs and {geometry.max_weight_rows} weight rows; one fold "
                    f"of {geometry.pe} outputs needs {geometry.weight_rows(_part(config, 0, geometry.pe))} rows"
                )
            code = geometry.check(_part(config, *parts[0]))
        if code is not None:
            raise ProtocolError(
                f"layer {index}: the tile cannot run it ({code.name}): {refusal_reason(config, geometry)}"
            )
        lo, hi = _accumulator_span(layer, config)
        if not (fits_signed(lo, geometry.acc_width) & fits_signed(hi, geometry.acc_width)).all():
            raise ProtocolError(
                f"layer {index}: accumulators (and thresholds) span {int(lo.min())} .. "
                f"{int(hi.max())}, beyond the tile's {geometry.acc_width}-bit accumulator; "
                f"the layer needs a wider accumulator"
            )
        configs.append(config)
    return configs


def _part(config, start, stop):
    return dataclasses.replace(config, out_features=stop - start)


def output_parts(config, geometry):
    """The output channels ``[(start, stop), ...]`` a layer runs in on a tile of ``geometry``.

    One range when the layer fits the tile's memories. A layer with more outputs or weight rows than the
    tile holds (but inputs within ``max_in_features``) runs in parts of whole output folds: each part is
    configured, loaded and run over the batch by :func:`run_model` and the outputs are concatenated, as
    a tile with room for the whole layer computes them (an output channel depends only on its own
    weights and thresholds). ``None`` when even one fold of ``pe`` outputs does not fit.
    """
    if geometry.check(config) != ErrorCode.TOO_LARGE:
        return [(0, config.out_features)]
    if config.in_features > geometry.max_in_features:
        return None
    rows_per_fold = geometry.weight_rows(_part(config, 0, geometry.pe))
    folds = min(geometry.max_out_features // geometry.pe, geometry.max_weight_rows // rows_per_fold)
    if folds < 1:
        return None
    size = folds * geometry.pe
    return [(start, min(start + size, config.out_features)) for start in range(0, config.out_features, size)]


def layer_part(layer, start, stop):
    """Output channels ``start .. stop - 1`` of a model-file layer, as a layer of its own."""
    arrays = {name: array[start:stop] for name, array in layer.arrays().items()}
    return dataclasses.replace(layer, out_features=stop - start, **arrays)
