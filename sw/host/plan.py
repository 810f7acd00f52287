"""Which commands run a model on a tile: a model-file layer as the tile's :class:`LayerConfig`, the
refusal of a model the tile cannot run (before anything is sent), and the output parts of a layer
larger than the tile's memories."""

import dataclasses

from lowbit.sw.kinds import TILE_SUPPORT, Family, InputKind, WeightKind, family_for, nhot_terms_needed, pairings
from lowbit.sw.kinds.encodings import signed_bits
from lowbit.sw.protocol import (
    MAX_N_TERMS,
    ErrorCode,
    LayerConfig,
    MapWalk,
    ProtocolError,
    TileGeometry,
    refusal_reason,
    walk_sizes,
)

__all__ = [
    "layer_config",
    "tile_layers",
    "output_parts",
    "layer_part",
    "fits_signed",
    "default_geometry",
    "fgq_group_size",
    "has_windows",
    "map_layers",
    "first_windows",
    "resident_input",
    "resident_layers",
    "FIRST_WINDOWS",
    "NO_RESIDENT_WINDOWS",
    "DEFAULT_ARRAY",
]


def layer_config(layer):
    """The :class:`LayerConfig` of a model-file layer (:class:`lowbit.sw.model.file.LayerRecord`).

    The last layer (``output_kind`` ``accumulator``) gets
    ``output_levels`` 0. A convolution's is that of its dot product (``k * k * C`` inputs), which the tile
    runs once per window (:func:`has_windows`). Raises :class:`ProtocolError` for a layer the protocol
    cannot express.
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
        int(layer.group_size) if weight_kind == WeightKind.FGQ else 0,
    )


def has_windows(model):
    """Whether ``model`` has convolutions. A layer at a time, the host cuts their windows and pools their
    outputs (:func:`lowbit.sw.model.conv.layer_taps`, :func:`~lowbit.sw.model.conv.layer_outputs`) and
    the tile runs each window as a vector; resident, on a tile that walks maps (:func:`map_layers`), the
    tile walks them itself."""
    return any(getattr(layer, "is_conv", False) for layer in model.layers)


#: Why a model with convolutions does not run resident on a tile that does not walk maps.
NO_RESIDENT_WINDOWS = (
    "the model has convolutions and the tile does not walk feature maps (a tile generated with maps=True "
    "does): it runs a layer at a time (mode streaming), the host cutting the windows"
)


#: Who cuts the windows of a resident CNN's first convolution (:func:`first_windows`): the host, or the tile.
FIRST_WINDOWS = ("host", "tile")


def map_layers(model, geometry, windows=None):
    """The :class:`LayerConfig` of each layer of ``model`` resident on a tile of ``geometry`` that walks
    maps, with its :class:`~lowbit.sw.protocol.MapWalk`. The first convolution's windows are cut by the host
    (``windows`` ``"host"``: the tile walks them as a 1 x 1 convolution over the map of windows and pools
    its outputs) or walked by the tile (``"tile"``: only the image goes in); default
    :func:`first_windows`. Every later convolution is walked as it is (``in_features``: its input
    channels); a dense layer after a square map of more than one pixel is the convolution of a kernel as
    large as the map. Dense layers after vectors are dense. :class:`ProtocolError` for a dense layer after
    a map that is not square."""
    windows = first_windows(model, geometry) if windows is None else windows
    if windows not in FIRST_WINDOWS:
        raise ValueError(f"windows must be one of {', '.join(map(repr, FIRST_WINDOWS))}, not {windows!r}")
    configs, pixels = [], (1, 1)  # the map the layer before emits
    for index, layer in enumerate(model.layers):
        try:
            config = layer_config(layer)
        except ProtocolError as error:
            raise ProtocolError(f"layer {index}: {error}") from None
        if layer.is_conv:
            shape = layer.conv_shape
            (oh, ow), (ph, pw) = shape.conv_map, shape.output_map[:2]
            if index == 0 and windows == "host":
                walk = MapWalk(oh, ow, 1, 1, 0, shape.pool, ph, pw)
            else:
                h, w, channels = shape.input_map
                walk = MapWalk(h, w, shape.kernel, shape.stride, shape.padding, shape.pool, ph, pw)
                config = dataclasses.replace(config, in_features=channels)
            pixels = (ph, pw)
        elif pixels != (1, 1):
            h, w = pixels
            if h != w:
                raise ProtocolError(f"layer {index}: a dense layer after a {h}x{w} map; the tile walks square maps")
            walk = MapWalk(h, w, h, 1, 0, 1, 1, 1)
            config = dataclasses.replace(config, in_features=config.in_features // (h * w))
            pixels = (1, 1)
        else:
            walk = None
        configs.append(dataclasses.replace(config, walk=walk))
    return configs


def first_windows(model, geometry):
    """Who cuts the first convolution's windows of ``model`` resident on a tile of ``geometry`` that walks
    maps: ``"tile"`` when the image takes fewer words of RUN than its windows (each pixel's few channels
    fill a row of ``SIMD`` lanes, each window's ``k * k * C`` taps fewer rows than ``k * k`` pixels: the
    link carries less, the MAC array walks the first layer's taps one pixel a fold), else ``"host"`` (the
    windows fill more of the lanes: fewer cycles for as many words or fewer)."""
    if not model.layers[0].is_conv:
        return "host"
    host, tile = (map_layers(model, geometry, windows)[0] for windows in FIRST_WINDOWS)
    return "tile" if geometry.input_words(tile) < geometry.input_words(host) else "host"


def resident_layers(model, geometry, configs=None):
    """The :class:`LayerConfig` of each layer of ``model`` as a tile of ``geometry`` runs it resident:
    :func:`map_layers` for a model with convolutions (:func:`has_windows`), else ``configs`` (default
    :func:`tile_layers`)."""
    if has_windows(model):
        return map_layers(model, geometry)
    return tile_layers(model, geometry) if configs is None else configs


def resident_input(model, geometry, codes):
    """The input vectors of ``model`` resident on a tile of ``geometry``, from its first layer's input
    ``codes`` ``(batch, input_size)``: a first convolution's windows (``(batch, positions * taps)``) when
    the host cuts them (:func:`first_windows`), else ``codes`` themselves (the image, or a dense layer's
    input)."""
    from lowbit.sw.model.conv import layer_taps

    if first_windows(model, geometry) == "host":
        return layer_taps(model.layers[0], codes).reshape(len(codes), -1)
    return codes


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


#: (PE, SIMD) of :func:`default_geometry` per family: the n-hot and FGQ arrays' k-bit lanes are larger.
DEFAULT_ARRAY = {Family.BINARY: (8, 16), Family.POPCOUNT: (8, 16), Family.NHOT: (4, 8), Family.FGQ: (4, 16)}


def fgq_group_size(group_sizes, simd):
    """The scale groups of an FGQ tile of ``simd`` lanes that runs layers of these ``group_sizes``: the
    largest power of two that divides each of them, at most ``simd`` (each layer's scale is then repeated
    over whole groups of the tile's)."""
    size = simd
    while any(n % size for n in group_sizes):
        size >>= 1
    return size


def default_geometry(model, pe=None, simd=None, *, resident=False):
    """A :class:`TileGeometry` that runs every layer of ``model``: the family its layers need, ``pe`` x
    ``simd`` (default :data:`DEFAULT_ARRAY`), memories sized to the largest layer, the accumulator
    width its accumulators and thresholds need, the most thresholds and input bits of any layer.
    ``resident``: a tile that also holds the whole model (LOAD_MODEL): ``max_layers`` its number of layers,
    the weight rows of all its layers and the output folds of all its layers (``max_out_features``).
    Raises :class:`ProtocolError` naming a layer no family runs, or a model no one family runs."""
    maps = resident and has_windows(model)
    configs, families = [], []
    for index, layer in enumerate(model.layers):
        try:
            config = layer_config(layer)
        except ProtocolError as error:
            raise ProtocolError(f"layer {index}: {error}") from None
        if family_for(config.weight_kind, config.input_kind) is None:
            raise ProtocolError(
                f"layer {index}: no tile runs {layer.weight_kind} weights against {layer.input_kind} input"
            )
        configs.append(config)
        families.append({f for f in TILE_SUPPORT if any(entry.matches(config) for entry in pairings(f))})
    # The first family (in the registry's order) that runs every layer.
    common = set.intersection(*families) if families else set()
    family = next((f for f in TILE_SUPPORT if f in common), None)
    if family is None:
        names = sorted({" or ".join(f.name.lower() for f in TILE_SUPPORT if f in each) for each in families})
        raise ProtocolError(f"no one tile runs every layer: the layers need a {' / a '.join(names)} tile")
    default_pe, default_simd = DEFAULT_ARRAY[family]
    pe, simd = pe or default_pe, simd or default_simd
    width = 2
    for layer, config in zip(model.layers, configs):
        lo, hi = layer.accumulator_range()
        lo, hi = (lo.min(), hi.max()) if config.last else (lo.min() - 1, hi.max() + 1)
        width = max(width, signed_bits(lo, hi))
    n_terms = 0
    if family == Family.NHOT:
        terms = [nhot_terms_needed(c.weight_kind, c.weight_bits, c.n_terms) for c in configs]
        n_terms = max(terms)
        if n_terms > MAX_N_TERMS:
            index = terms.index(n_terms)
            raise ProtocolError(
                f"layer {index}: its weights need {n_terms} terms, an n-hot tile has at most {MAX_N_TERMS}"
            )
    group_size = fgq_group_size([c.group_size for c in configs], simd) if family == Family.FGQ else 0
    uint_bits = [c.input_bits for c in configs if c.input_kind == "uint"]
    probe = TileGeometry(family, pe, simd, 1, 1, 1, n_terms=n_terms, group_size=group_size)
    out_features = max(c.out_features for c in configs)
    rows = max(probe.weight_rows(c) for c in configs)
    in_features = max(c.in_features for c in configs)
    max_layers = 0
    if resident:
        if len(configs) > 255:
            raise ProtocolError(f"a resident model has at most 255 layers, not {len(configs)}")
        max_layers = len(configs)
        if maps:  # the walks' dot products and maps, each in a bank of the input memory, either windows
            variants = [map_layers(model, probe, windows) for windows in FIRST_WINDOWS]
            configs = max(variants, key=lambda layers: sum(probe.weight_rows(c) for c in layers))
            sizes = [walk_sizes(c, probe) for layers in variants for c in layers]
            folds = max(max(x["in_folds"], x["input_rows"], x["output_rows"]) for x in sizes)
            in_features = max(in_features, folds * simd)
        out_features = max(out_features, sum(probe.out_folds(c) for c in configs) * pe)
        rows = sum(probe.weight_rows(c) for c in configs)
    if in_features > 0xFFFF:
        raise ProtocolError(f"the model needs {in_features} inputs per bank; a tile holds at most {0xFFFF}")
    return TileGeometry(
        family,
        pe,
        simd,
        max_in_features=in_features,
        max_out_features=out_features,
        max_weight_rows=rows,
        acc_width=min(width, 32),
        max_thresholds=max(1, max(c.thresholds for c in configs)),
        max_input_bits=max(uint_bits, default=1),
        n_terms=n_terms,
        max_layers=max_layers,
        group_size=group_size,
        maps=maps,
    )
