"""The payload words of each command for a layer, and RUN's DATA back into codes or accumulators
(NumPy, vectorised). The word formats are those of :class:`lowbit.sw.protocol.TileGeometry`
(``docs/protocol.md``); the bit orders are :mod:`lowbit.sw.kinds.packing`'s."""

import numpy as np

from lowbit.sw.host.plan import fits_signed, layer_config
from lowbit.sw.kinds import FGQ_SCALE_BITS, Family, InputKind, WeightKind, nhot_terms_needed
from lowbit.sw.kinds.encodings import encode_ternary, nhot_terms
from lowbit.sw.kinds.packing import pack_bits, unpack_bits
from lowbit.sw.protocol import WORD_BITS, ProtocolError, output_code_bits, refusal_reason, walk_of

__all__ = [
    "pack_weights",
    "pack_thresholds",
    "pack_model_weights",
    "pack_model_thresholds",
    "pack_inputs",
    "unpack_outputs",
    "clamp_thresholds",
    "order_thresholds",
    "words_of_rows",
    "rows_of_words",
    "padded_shape",
    "tile_bias",
    "unpack_inputs",
    "input_rows_of_words",
    "signed32",
    "int_plane_weights",
    "fgq_tile_scales",
    "lane_pad_code",
    "pixel_lanes",
    "WORD_MASK",
]

WORD_MASK = (1 << WORD_BITS) - 1


def words_of_rows(bits):
    """``(rows, n)`` 0/1 -> the rows' words, flat: each row a little-endian bit string, zero-padded."""
    return pack_bits(bits, WORD_BITS).astype(np.uint32).reshape(-1)


def rows_of_words(words, rows, nbits):
    """Inverse of :func:`words_of_rows`: ``(rows, nbits)`` ``uint8``."""
    words = np.asarray(words, dtype=np.uint64).reshape(rows, -1)
    return unpack_bits(words, nbits, WORD_BITS)


def _pad(array, shape):
    out = np.zeros(shape + array.shape[len(shape) :], dtype=array.dtype)
    out[tuple(slice(0, n) for n in array.shape[: len(shape)])] = array
    return out


def padded_shape(config, geometry):
    return (geometry.out_folds(config) * geometry.pe, geometry.in_folds(config) * geometry.simd)


def lane_pad_code(config):
    """The code of an input lane beyond a layer's inputs (a row's padding lanes): 1 for ternary and FATNN
    (both planes of ``code - 1`` zero), else 0. It contributes nothing: the lane's weights are zero."""
    return 1 if config.input_kind in (InputKind.TERNARY, InputKind.FATNN) else 0


def pixel_lanes(values, config, geometry, fill):
    """Per-pixel values ``(n, pixels * C)`` (``C`` = ``in_features`` of a layer that walks a map) padded to
    whole rows per pixel, ``(n, pixels * groups * simd)``, the new lanes ``fill``: how a map lies in the
    input memory, and how a walk's weights lie in its rows (each tap's channels in whole rows). A dense
    layer's values are padded to its ``in_folds * simd`` lanes."""
    values = np.asarray(values)
    channels, lanes = config.in_features, geometry.channel_groups(config) * geometry.simd
    pixels = values.shape[1] // channels
    out = np.full((len(values), pixels, lanes), fill, dtype=values.dtype)
    out[..., :channels] = values.reshape(len(values), pixels, channels)
    return out.reshape(len(values), pixels * lanes)


def _int_planes(w, bits):
    """k two's-complement bit-planes of ``w`` ``(out, in)``, plane 0 the most significant: ``(k, out, in)``."""
    code = w & ((1 << bits) - 1)
    shifts = np.arange(bits - 1, -1, -1, dtype=np.int64)[:, None, None]
    return ((code[None] >> shifts) & 1).astype(np.uint8)


def int_plane_weights(bits):
    """What each weight plane of :func:`_int_planes` weighs: ``-2**(k-1), 2**(k-2), ..., 1``."""
    weights = np.int64(1) << np.arange(bits - 1, -1, -1, dtype=np.int64)
    weights[0] = -weights[0]
    return weights


def _weight_terms(layer_weights, config, geometry):
    """n-hot terms ``(present, sign, exponent)`` of the padded weights, each ``(OP, IP, geometry.n_terms)``."""
    n = nhot_terms_needed(config.weight_kind, config.weight_bits, config.n_terms)
    present, sign, exponent = nhot_terms(layer_weights, n, config.weight_bits)
    extra = ((0, 0), (0, 0), (0, geometry.n_terms - n))
    return tuple(np.pad(x, extra) for x in (present, sign, exponent))


def fgq_tile_scales(layer, config, geometry):
    """An FGQ layer's scales per group of the tile: ``(OP, IP / group_size)`` integers, the scale of the
    layer's group each of the tile's groups lies in (the tile's ``group_size`` divides the layer's);
    padding channels and taps 0 (their weights are 0 too)."""
    per_tap = np.repeat(np.asarray(layer.alpha_q, dtype=np.int64), config.group_size, axis=1)  # (out, in)
    return _pad(per_tap, padded_shape(config, geometry))[:, :: geometry.group_size]


def pack_weights(layer, geometry, config=None):
    """LOAD_WEIGHTS' payload of a model-file layer: ``uint32`` words, :meth:`TileGeometry.weight_words` of them.
    ``config``: the layer's :class:`LayerConfig` on the tile (default :func:`layer_config`; a walk's lays
    each tap's ``in_features`` weights in whole rows, :func:`pixel_lanes`).

    Row ``(o_fold * weight_planes + p) * in_folds + i_fold`` holds output channels ``o_fold * PE + c`` and
    inputs ``i_fold * SIMD + t``; padding channels and taps are all-zero. Binary family: slot ``c`` at
    bit ``c * SIMD``, one bit per tap (1 = +1, 0 = -1; int weights: ``k`` planes as below). Popcount
    family: slot ``c`` at bit ``c * 2 * SIMD``, ``w_nz`` then ``w_sign`` (int weights: ``k`` planes,
    plane 0 the most significant bit as ``nz``, ``sign`` 0). N-hot family: slot ``c``, tap ``t``, term ``j`` at
    ``((c * SIMD + t) * T + j) * (2 + E)``: present, sign, exponent (``E`` bits). FGQ family: slot ``c`` at
    bit ``c * slot_bits``: ``w_nz`` (SIMD bits), ``w_sign`` (SIMD bits), then the ``SIMD / group_size``
    scales of :func:`fgq_tile_scales`, 8 bits each.
    """
    config = layer_config(layer) if config is None else config
    if geometry.check(config) is not None:
        raise ProtocolError(f"the tile cannot run the layer: {refusal_reason(config, geometry)}")
    out_pad, in_pad = padded_shape(config, geometry)
    of, nf, pe, simd = geometry.out_folds(config), geometry.in_folds(config), geometry.pe, geometry.simd
    w = np.asarray(layer.weights, dtype=np.int64)
    if config.walk is not None:
        w = pixel_lanes(w, config, geometry, 0)
    w = _pad(w, (out_pad, in_pad))
    if geometry.family == Family.BINARY:
        planes = _int_planes(w, config.weight_bits) if config.weight_kind == WeightKind.INT else (w > 0)[None]
        slots = planes.astype(np.uint8).reshape(len(planes), of, pe, nf, simd).transpose(1, 0, 3, 2, 4)
    elif geometry.family == Family.POPCOUNT:
        if config.weight_kind == WeightKind.INT:
            nz = _int_planes(w, config.weight_bits)
            sign = np.zeros_like(nz)
        else:
            nz, sign = (plane[None] for plane in encode_ternary(w))
        planes = nz.shape[0]
        slots = np.stack([nz, sign], axis=-2)  # (P, OP, 2, IP)
        slots = slots.reshape(planes, of, pe, 2, nf, simd).transpose(1, 0, 4, 2, 3, 5)  # (OF, P, IF, PE, 2, SIMD)
    elif geometry.family == Family.FGQ:
        nz, sign = encode_ternary(w)  # (OP, IP)
        scales = fgq_tile_scales(layer, config, geometry)  # (OP, IP / G)
        scale_bits = (scales[..., None] >> np.arange(FGQ_SCALE_BITS)) & 1
        fields = [plane.reshape(of, pe, nf, -1).astype(np.uint8) for plane in (nz, sign, scale_bits)]
        slots = np.concatenate(fields, axis=-1).transpose(0, 2, 1, 3)  # (OF, IF, PE, slot_bits)
    else:
        present, sign, exponent = _weight_terms(w, config, geometry)  # (OP, IP, T)
        e_bits = (exponent[..., None] >> np.arange(geometry.exponent_bits)) & 1
        terms = np.concatenate([present[..., None], sign[..., None], e_bits], axis=-1).astype(np.uint8)
        slots = terms.reshape(of, pe, nf, simd, -1).transpose(0, 2, 1, 3, 4)  # (OF, IF, PE, SIMD, T*(2+E))
    return words_of_rows(slots.reshape(geometry.weight_rows(config), geometry.weight_row_bits))


def clamp_thresholds(thresholds, descending, lo, hi, acc_width):
    """Thresholds ``(C, T)`` moved into ``signed(acc_width)`` without changing any output of
    :func:`multithreshold` on accumulators in ``lo .. hi`` (per channel).

    Ascending ``[acc >= T]``: ``T > hi`` -> ``hi + 1`` (never), ``T <= lo`` -> ``lo`` (always). Descending
    ``[acc <= T]``: ``T >= hi`` -> ``hi`` (always), ``T < lo`` -> ``lo - 1`` (never). Raises
    :class:`ProtocolError` when ``lo - 1`` or ``hi + 1`` does not fit: the layer needs a wider accumulator.
    """
    t = np.asarray(thresholds, dtype=np.int64)
    lo, hi = np.asarray(lo, dtype=np.int64)[:, None], np.asarray(hi, dtype=np.int64)[:, None]
    fits = fits_signed(lo - 1, acc_width) & fits_signed(hi + 1, acc_width)
    if not fits.all():
        channel = int(np.argwhere(~fits)[0][0])
        raise ProtocolError(
            f"channel {channel}: accumulators {int(lo[channel, 0])} .. {int(hi[channel, 0])} and "
            f"their thresholds do not fit a {acc_width}-bit accumulator; the layer needs a "
            f"wider accumulator"
        )
    descending = np.broadcast_to(np.asarray(descending, dtype=bool), (t.shape[0],))[:, None]
    ascending = np.where(t > hi, hi + 1, np.where(t <= lo, lo, t))
    falling = np.where(t >= hi, hi, np.where(t < lo, lo - 1, t))
    return np.where(descending, falling, ascending)


def order_thresholds(thresholds, descending):
    """Each channel's thresholds ``(C, T)`` in LOAD_THRESHOLDS' order: ascending, or descending for a
    channel with ``descending`` set. The count of :func:`multithreshold` does not depend on the order;
    a tile that searches its thresholds (one comparison per output bit) needs it."""
    t = np.sort(np.asarray(thresholds, dtype=np.int64), axis=1)
    return np.where(np.asarray(descending, dtype=bool)[:, None], t[:, ::-1], t)


def tile_bias(config, weights, geometry):
    """The bias LOAD_THRESHOLDS gives each channel: the part of the dot product the array leaves out.

    - BINARY family: the array adds ``-2 d`` per binary pass and ``-d_p`` per uint plane, ``d`` counting
      the taps where the activation bit and the weight bit disagree (padding taps, both bits 0, never
      do). The bipolar dot product of ``n`` inputs is ``n - 2 d``; with k-bit inputs,
      ``sum(w * a) = sum_p 2**p (B - d_p) = (2**k - 1) B - sum_p 2**p d_p``, ``B`` the channel's number
      of +1 weights. So the bias is ``n`` (binary input) or ``(2**k - 1) * B`` (uint input). k-bit int
      weights against binary input add ``s - d_p`` per weight plane ``p`` (``s`` the input's +1 bits:
      ``sum(b * a) = s - d`` for a 0/1 plane ``b`` and bipolar ``a``), which is exact: bias 0.
    - POPCOUNT family, FATNN input: ``sum(w)`` (the array computes ``sum(a' * w)`` with ``a' = a - 1``).
    - otherwise 0.
    """
    w = np.asarray(weights, dtype=np.int64)
    if geometry.family == Family.BINARY:
        if config.weight_kind == WeightKind.INT:
            return np.zeros(config.out_features, np.int64)
        if config.input_kind == InputKind.BINARY:
            return np.full(config.out_features, config.dot_length, np.int64)
        return ((1 << config.input_bits) - 1) * (w > 0).sum(axis=1)
    if config.input_kind == InputKind.FATNN:
        return w.sum(axis=1)
    return np.zeros(config.out_features, np.int64)


def pack_thresholds(layer, geometry, *, record_words=None):
    """LOAD_THRESHOLDS' payload of a model-file layer: ``uint32`` words, per padded output channel the
    :func:`tile_bias`, ``descending`` and the :func:`clamp_thresholds` thresholds in
    :func:`order_thresholds`' order, each a 32-bit
    two's-complement word. ``record_words``: pad each channel's record with zero words to this many (a
    resident model's records, :attr:`TileGeometry.record_words`); default ``2 + thresholds``, unpadded."""
    config = layer_config(layer)
    size = 2 + config.thresholds
    record_words = size if record_words is None else record_words
    if record_words < size:
        raise ProtocolError(
            f"a record of {record_words} words cannot hold bias, descending and {config.thresholds} thresholds"
        )
    out_pad = padded_shape(config, geometry)[0]
    bias = tile_bias(config, layer.weights, geometry)
    if config.last:
        thresholds = np.zeros((config.out_features, 0), np.int64)
        descending = np.zeros(config.out_features, np.int64)
    else:
        lo, hi = layer.accumulator_range()
        thresholds = clamp_thresholds(layer.thresholds, layer.descending, lo, hi, geometry.acc_width)
        descending = np.broadcast_to(np.asarray(layer.descending, dtype=np.int64), (config.out_features,))
        thresholds = order_thresholds(thresholds, descending)
    table = np.concatenate([bias[:, None], descending[:, None], thresholds], axis=1)
    table = np.pad(table, ((0, 0), (0, record_words - size)))
    return (_pad(table, (out_pad,)) & WORD_MASK).astype(np.uint32).reshape(-1)


def pack_model_weights(layers, geometry, configs=None):
    """LOAD_WEIGHTS' payload of a resident model (model-file ``layers``, their ``configs`` on the tile): every
    layer's :func:`pack_weights`, layer 0 first; :meth:`TileGeometry.model_weight_words` words."""
    configs = [None] * len(layers) if configs is None else configs
    words = [pack_weights(layer, geometry, config) for layer, config in zip(layers, configs)]
    return np.concatenate([np.zeros(0, np.uint32), *words])


def pack_model_thresholds(layers, geometry):
    """LOAD_THRESHOLDS' payload of a resident model (model-file ``layers``): every layer's
    :func:`pack_thresholds`, layer 0 first, each channel's record padded with zeros to
    :attr:`TileGeometry.record_words` words; :meth:`TileGeometry.model_threshold_words` words."""
    words = [pack_thresholds(layer, geometry, record_words=geometry.record_words) for layer in layers]
    return np.concatenate([np.zeros(0, np.uint32), *words])


def _input_planes(codes, config, geometry):
    """Padded input codes ``(batch, IP)`` to the input rows' bits ``(batch * in_folds, input_row_bits)``,
    as :meth:`TileGeometry.input_row_bits` lays them out."""
    if not geometry.plane_inputs:  # NHOT and FGQ: k-bit codes
        fields = (codes[..., None] >> np.arange(geometry.max_input_bits)) & 1  # (batch, IP, B)
        return fields.reshape(-1, geometry.input_row_bits(config))
    if config.input_kind == InputKind.BINARY:
        planes = codes[None]
    elif config.input_kind in (InputKind.TERNARY, InputKind.FATNN):
        # Padding taps hold code 1 (value 0): both planes zero.
        planes = np.stack(encode_ternary(codes - 1))  # nz, sign
    else:
        k = config.input_bits
        planes = (codes[None] >> np.arange(k - 1, -1, -1)[:, None, None]) & 1  # the MSB first
    batch, simd = codes.shape[0], geometry.simd
    planes = planes.reshape(len(planes), batch, -1, simd).transpose(1, 2, 0, 3)  # (batch, IF, P, SIMD)
    return planes.reshape(-1, geometry.input_row_bits(config))


def _input_words_of_rows(rows, config, geometry):
    """Input rows ``(batch * in_folds, input_row_bits)`` to RUN's words: per vector, its rows
    :meth:`TileGeometry.input_rows_per_word` to a word (row ``j`` of a word at bit ``j * input_row_bits``,
    the vector's last word zero-padded), or each row its :meth:`TileGeometry.input_row_words` words."""
    per, folds = geometry.input_rows_per_word(config), geometry.input_rows(config)
    row_bits = rows.shape[1]
    grouped = np.zeros((len(rows) // folds, -(-folds // per) * per, row_bits), dtype=rows.dtype)
    grouped[:, :folds] = rows.reshape(-1, folds, row_bits)
    return words_of_rows(grouped.reshape(-1, per * row_bits))


def input_rows_of_words(words, config, geometry, batch):
    """Inverse of :func:`_input_words_of_rows`: RUN's words of ``batch`` vectors to their input rows."""
    per, folds = geometry.input_rows_per_word(config), geometry.input_rows(config)
    row_bits = geometry.input_row_bits(config)
    groups = -(-folds // per)
    rows = rows_of_words(words, batch * groups, per * row_bits).reshape(batch, groups * per, row_bits)
    return rows[:, :folds].reshape(-1, row_bits)


def _input_codes_of_rows(bits, config, geometry, batch):
    """Inverse of :func:`_input_planes`: ``(batch, IP)`` codes (padding taps of ternary kinds read as 1)."""
    if not geometry.plane_inputs:
        fields = bits.reshape(batch, -1, geometry.max_input_bits).astype(np.int64)
        return (fields << np.arange(geometry.max_input_bits)).sum(axis=-1)
    count = geometry.input_planes(config)
    planes = bits.reshape(batch, -1, count, geometry.simd).astype(np.int64)
    planes = planes.transpose(2, 0, 1, 3).reshape(count, batch, -1)  # (P, batch, IP)
    if config.input_kind == InputKind.BINARY:
        return planes[0]
    if config.input_kind in (InputKind.TERNARY, InputKind.FATNN):
        return planes[0] * (1 - 2 * planes[1]) + 1
    k = config.input_bits
    return np.tensordot(np.int64(1) << np.arange(k - 1, -1, -1), planes, axes=(0, 0))


def pack_inputs(codes, layer_config, geometry):
    """RUN's payload for input codes ``(batch, in_features)`` (a walk's whole map, ``(batch, height * width *
    in_features)``, a pixel's codes in whole rows): ``uint32`` words, per vector :meth:`TileGeometry.input_rows` rows
    (:meth:`TileGeometry.input_words`: rows of less than a word share words), each the bit string of
    :meth:`TileGeometry.input_row_bits`
    (popcount family: plane-major, binary the code, ternary and FATNN the ``nz`` and ``sign`` planes of
    ``code - 1``, uint the bits the most significant first; n-hot and FGQ families: ``max_input_bits``-bit
    codes).
    Padding taps are all-zero bits."""
    codes = np.asarray(codes, dtype=np.int64)
    config = layer_config
    walk = walk_of(config)
    size = walk.height * walk.width * config.in_features
    if codes.ndim != 2 or codes.shape[1] != size:
        raise ValueError(f"codes must have shape (batch, {size}), not {codes.shape}")
    pad = lane_pad_code(config)
    if config.input_kind in (InputKind.TERNARY, InputKind.FATNN):
        limit = 3
    else:
        limit = 1 << (1 if config.input_kind == InputKind.BINARY else config.input_bits)
    if codes.size and (codes.min() < 0 or codes.max() >= limit):
        raise ValueError(
            f"{config.input_kind.name.lower()} input codes must lie in 0 .. {limit - 1}, "
            f"not {int(codes.max() if codes.max() >= limit else codes.min())}"
        )
    padded = pixel_lanes(codes, config, geometry, pad)
    return _input_words_of_rows(_input_planes(padded, config, geometry), config, geometry)


def unpack_inputs(words, layer_config, geometry, batch):
    """Inverse of :func:`pack_inputs`: ``(batch, padded in_features)`` codes (padding taps of ternary kinds
    read as 1)."""
    rows = input_rows_of_words(words, layer_config, geometry, batch)
    return _input_codes_of_rows(rows, layer_config, geometry, batch)


def signed32(words):
    words = np.asarray(words, dtype=np.int64) & WORD_MASK
    return words - ((words >> (WORD_BITS - 1)) << WORD_BITS)


def unpack_outputs(words, layer_config, geometry, batch):
    """RUN's DATA payload to ``int64`` ``(batch, out_features)``: accumulators (last layer) or output codes.

    Per vector: last layer, a sign-extended accumulator word per (padded) channel; else the codes of
    ``k = output_code_bits(levels)`` bits of its ``out_folds * PE`` channels as one bit string, channel
    ``j`` at bit ``j * k``, in whole words. Padded channels are dropped.
    """
    config = layer_config
    words = np.asarray(words, dtype=np.int64)
    expected = batch * geometry.output_words(config)
    if words.shape != (expected,):
        raise ValueError(f"{batch} output vectors are {expected} words, not {words.shape[0]}")
    of, pe = geometry.out_folds(config), geometry.pe
    if config.last:
        values = signed32(words).reshape(batch, of * pe)
    else:
        k = output_code_bits(config.output_levels)
        bits = rows_of_words(words, batch, of * pe * k).reshape(batch, of * pe, k).astype(np.int64)
        values = (bits << np.arange(k)).sum(axis=-1)
    return values[:, : config.out_features]
