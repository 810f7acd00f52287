"""The host driver of the accelerator tile: packing, the command interface, whole-model runs, and
:class:`ModelTile`, the reference implementation of the tile in Python.

Three layers, as in Glasgow's applets:

- **words**: :func:`pack_weights`, :func:`pack_thresholds`, :func:`pack_inputs` and :func:`unpack_outputs`
  turn a layer of a :class:`lowbit.sw.model_file.LowbitModel` into the payload words of each command (and
  RUN's DATA back into codes or accumulators); NumPy, vectorised. :func:`tile_layers` maps a model to the
  tile's :class:`~lowbit.hw.protocol.LayerConfig` list and refuses, before anything is sent, a model the
  tile cannot run.
- **commands**: :class:`TileInterface` over a :class:`Transport` has one ``async`` method per command; it
  checks each response and raises :class:`TileError` on ERROR or on a malformed response.
- **models**: :func:`run_model` loads each layer once and streams the whole batch through it, feeding the
  outputs back as the next layer's input.

The protocol itself (opcodes, header and word formats, the geometry arithmetic) is defined once in
:mod:`lowbit.hw.protocol` and described in ``docs/protocol.md``; nothing here repeats it.
"""

import abc
import collections
import dataclasses

import numpy as np

from ..hw.protocol import (MAX_LENGTH, WORD_BITS, ErrorCode, Family, InputKind, LayerConfig, Opcode,
                           ProtocolError, Response, TileGeometry, WeightKind, header, output_code_bits,
                           parse_header)
from .encodings import (encode_fatnn_activation, encode_ternary, int_weight_terms, nhot_terms)
from .golden import GoldenNetwork
from .golden.units import (bitserial_dot, fatnn_dot, multithreshold, nhot_dot, ternary_binary_dot,
                           ternary_dot)
from .packing import pack_bits, unpack_bits

__all__ = [
    "Transport", "TransportError", "TileError", "StreamStats", "TileInterface", "ModelTile",
    "layer_config", "tile_layers", "output_parts", "layer_part", "clamp_thresholds", "pack_weights",
    "pack_thresholds", "pack_inputs", "unpack_outputs", "vectors_per_run", "run_model", "run_codes",
]

_WORD_MASK = (1 << WORD_BITS) - 1

#: What each error code means, for messages (the codes themselves live in :class:`ErrorCode`).
_ERROR_TEXT = {
    ErrorCode.UNKNOWN_OPCODE: "the header's opcode is not a command",
    ErrorCode.BAD_LENGTH: "the length does not match what the command needs for the layer",
    ErrorCode.UNSUPPORTED: "this tile cannot run the layer",
    ErrorCode.TOO_LARGE: "the layer does not fit the tile's memories",
    ErrorCode.NOT_CONFIGURED: "LOAD_* or RUN before a valid CONFIGURE",
    ErrorCode.NOT_LOADED: "RUN before the layer's weights and thresholds are loaded",
}


def _name(enum_type, value):
    try:
        return enum_type(value).name
    except ValueError:
        return f"0x{int(value):02x}"


class TransportError(RuntimeError):
    """The transport cannot deliver: e.g. a read of more words than the tile has answered."""


class TileError(Exception):
    """The tile answered ERROR (``code`` is an :class:`ErrorCode`), or a response was malformed
    (``code`` is ``None`` and ``detail`` says what was wrong). ``opcode`` is the command concerned."""

    def __init__(self, code, opcode, detail=None):
        self.code = ErrorCode(code) if code is not None and code in set(ErrorCode) else code
        self.opcode = opcode
        self.detail = detail
        command = _name(Opcode, opcode)
        if code is None:
            message = f"malformed response to {command}: {detail}"
        elif isinstance(self.code, ErrorCode):
            message = f"the tile refused {command}: {self.code.name} ({_ERROR_TEXT[self.code]})"
        else:
            message = f"the tile refused {command} with an unknown error code 0x{code:02x}"
        if code is not None and detail:
            message += f"; {detail}"
        super().__init__(message)


# --- transports -----------------------------------------------------------------------------------------

class Transport(abc.ABC):
    """A bidirectional stream of 32-bit words to a tile. ``cycle`` is the current clock cycle where the
    transport has a clock (a simulation), else ``None``."""

    cycle = None

    @abc.abstractmethod
    async def write(self, words):
        """Send ``words`` (integers ``0 .. 2**32 - 1``) to the tile."""

    @abc.abstractmethod
    async def read(self, count):
        """Receive exactly ``count`` words from the tile, as a list of integers."""

    async def close(self):
        """Release the transport."""


# --- model layers -> tile layers ------------------------------------------------------------------------

def layer_config(layer):
    """The :class:`LayerConfig` of a model-file layer (:class:`lowbit.sw.model_file.LayerRecord`).

    Kinds map by name (``"fatnn"`` -> ``FATNN``); the last layer (``output_kind`` ``accumulator``) gets
    ``output_levels`` 0. Raises :class:`ProtocolError` for a layer the protocol cannot express.
    """
    if layer.weight_kind == "float" or layer.input_kind == "float":
        raise ProtocolError("float layers have no tile: the tile runs integer layers only")
    try:
        weight_kind, input_kind = WeightKind[layer.weight_kind.upper()], InputKind[layer.input_kind.upper()]
    except KeyError:
        raise ProtocolError(f"weight kind {layer.weight_kind!r} / input kind {layer.input_kind!r} "
                            f"is not a kind of the protocol") from None
    levels = 0 if layer.output_kind == "accumulator" else int(layer.output_levels)
    return LayerConfig(int(layer.in_features), int(layer.out_features), weight_kind, int(layer.weight_bits),
                       int(layer.n_terms), input_kind, int(layer.input_bits), levels)


def _unsupported_reason(config, geometry):
    """Why :meth:`TileGeometry.check` refuses ``config`` with UNSUPPORTED, in words."""
    kinds = f"{config.weight_kind.name.lower()} weights against {config.input_kind.name.lower()} input"
    if geometry.family == Family.POPCOUNT:
        if config.weight_kind in (WeightKind.BINARY, WeightKind.TERNARY, WeightKind.FATNN):
            if config.input_kind == InputKind.UINT and config.input_bits > geometry.max_input_bits:
                return f"{config.input_bits}-bit inputs exceed the tile's {geometry.max_input_bits}"
        elif config.weight_kind == WeightKind.INT:
            if config.input_kind != InputKind.BINARY:
                return f"a popcount tile runs int weights against binary input only, not {kinds}"
        else:
            return f"a popcount tile runs binary, ternary and FATNN weights (and int against binary), not {kinds}"
    else:
        if config.weight_kind not in (WeightKind.NHOT, WeightKind.INT) or config.input_kind != InputKind.UINT:
            return f"an n-hot tile runs n-hot and int weights against uint input, not {kinds}"
        if config.input_bits > geometry.max_input_bits:
            return f"{config.input_bits}-bit inputs exceed the tile's {geometry.max_input_bits}"
        terms = config.n_terms if config.weight_kind == WeightKind.NHOT else int_weight_terms(config.weight_bits)
        if terms > geometry.n_terms:
            return f"the weights need {terms} terms, the tile has {geometry.n_terms}"
        if config.weight_bits > 1 << geometry.exponent_bits:
            return (f"{config.weight_bits}-bit weights need exponents beyond the tile's "
                    f"{geometry.exponent_bits} exponent bits")
    if config.thresholds > geometry.max_thresholds:
        return f"{config.thresholds} thresholds per channel exceed the tile's {geometry.max_thresholds}"
    return f"{kinds} with these bit widths"


def _accumulator_span(layer, config):
    """The values the tile's accumulator (and, for a hidden layer, its clamped thresholds) must hold."""
    lo, hi = layer.accumulator_range()
    return (lo, hi) if config.last else (lo - 1, hi + 1)


def _fits(values, width):
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
                    f"of {geometry.pe} outputs needs {geometry.weight_rows(_part(config, 0, geometry.pe))} rows")
            code = geometry.check(_part(config, *parts[0]))
        if code is not None:
            raise ProtocolError(f"layer {index}: the tile cannot run it ({code.name}): "
                                f"{_unsupported_reason(config, geometry)}")
        lo, hi = _accumulator_span(layer, config)
        if not (_fits(lo, geometry.acc_width) & _fits(hi, geometry.acc_width)).all():
            raise ProtocolError(f"layer {index}: accumulators (and thresholds) span {int(lo.min())} .. "
                                f"{int(hi.max())}, beyond the tile's {geometry.acc_width}-bit accumulator; "
                                f"the layer needs a wider accumulator")
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


# --- packing --------------------------------------------------------------------------------------------

def _words_of_rows(bits):
    """``(rows, n)`` 0/1 -> the rows' words, flat: each row a little-endian bit string, zero-padded."""
    return pack_bits(bits, WORD_BITS).astype(np.uint32).reshape(-1)


def _rows_of_words(words, rows, nbits):
    """Inverse of :func:`_words_of_rows`: ``(rows, nbits)`` ``uint8``."""
    words = np.asarray(words, dtype=np.uint64).reshape(rows, -1)
    return unpack_bits(words, nbits, WORD_BITS)


def _pad(array, shape):
    out = np.zeros(shape + array.shape[len(shape):], dtype=array.dtype)
    out[tuple(slice(0, n) for n in array.shape[:len(shape)])] = array
    return out


def _padded_shape(config, geometry):
    return (geometry.out_folds(config) * geometry.pe, geometry.in_folds(config) * geometry.simd)


def _int_planes(w, bits):
    """k two's-complement bit-planes of ``w`` ``(out, in)``, plane 0 the most significant: ``(k, out, in)``."""
    code = w & ((1 << bits) - 1)
    shifts = np.arange(bits - 1, -1, -1, dtype=np.int64)[:, None, None]
    return ((code[None] >> shifts) & 1).astype(np.uint8)


def _int_plane_weights(bits):
    """What each weight plane of :func:`_int_planes` weighs: ``-2**(k-1), 2**(k-2), ..., 1``."""
    weights = np.int64(1) << np.arange(bits - 1, -1, -1, dtype=np.int64)
    weights[0] = -weights[0]
    return weights


def _weight_terms(layer_weights, config, geometry):
    """n-hot terms ``(present, sign, exponent)`` of the padded weights, each ``(OP, IP, geometry.n_terms)``."""
    n = config.n_terms if config.weight_kind == WeightKind.NHOT else int_weight_terms(config.weight_bits)
    present, sign, exponent = nhot_terms(layer_weights, n, config.weight_bits)
    extra = ((0, 0), (0, 0), (0, geometry.n_terms - n))
    return tuple(np.pad(x, extra) for x in (present, sign, exponent))


def pack_weights(layer, geometry):
    """LOAD_WEIGHTS' payload of a model-file layer: ``uint32`` words, :meth:`TileGeometry.weight_words` of them.

    Row ``(o_fold * weight_planes + p) * in_folds + i_fold`` holds output channels ``o_fold * PE + c`` and
    inputs ``i_fold * SIMD + t``; padding channels and taps are all-zero. Popcount family: slot ``c`` at bit
    ``c * 2 * SIMD``, ``w_nz`` then ``w_sign`` (int weights: ``k`` planes, plane 0 the most significant bit
    as ``nz``, ``sign`` 0). N-hot family: slot ``c``, tap ``t``, term ``j`` at
    ``((c * SIMD + t) * T + j) * (2 + E)``: present, sign, exponent (``E`` bits).
    """
    config = layer_config(layer)
    if geometry.check(config) is not None:
        raise ProtocolError(f"the tile cannot run the layer: {_unsupported_reason(config, geometry)}")
    out_pad, in_pad = _padded_shape(config, geometry)
    of, nf, pe, simd = geometry.out_folds(config), geometry.in_folds(config), geometry.pe, geometry.simd
    w = _pad(np.asarray(layer.weights, dtype=np.int64), (out_pad, in_pad))
    if geometry.family == Family.POPCOUNT:
        if config.weight_kind == WeightKind.INT:
            nz = _int_planes(w, config.weight_bits)
            sign = np.zeros_like(nz)
        else:
            nz, sign = (plane[None] for plane in encode_ternary(w))
        planes = nz.shape[0]
        slots = np.stack([nz, sign], axis=-2)                          # (P, OP, 2, IP)
        slots = slots.reshape(planes, of, pe, 2, nf, simd).transpose(1, 0, 4, 2, 3, 5)  # (OF, P, IF, PE, 2, SIMD)
    else:
        present, sign, exponent = _weight_terms(w, config, geometry)  # (OP, IP, T)
        e_bits = (exponent[..., None] >> np.arange(geometry.exponent_bits)) & 1
        terms = np.concatenate([present[..., None], sign[..., None], e_bits], axis=-1).astype(np.uint8)
        slots = terms.reshape(of, pe, nf, simd, -1).transpose(0, 2, 1, 3, 4)  # (OF, IF, PE, SIMD, T*(2+E))
    return _words_of_rows(slots.reshape(geometry.weight_rows(config), geometry.weight_row_bits))


def clamp_thresholds(thresholds, descending, lo, hi, acc_width):
    """Thresholds ``(C, T)`` moved into ``signed(acc_width)`` without changing any output of
    :func:`multithreshold` on accumulators in ``lo .. hi`` (per channel).

    Ascending ``[acc >= T]``: ``T > hi`` -> ``hi + 1`` (never), ``T <= lo`` -> ``lo`` (always). Descending
    ``[acc <= T]``: ``T >= hi`` -> ``hi`` (always), ``T < lo`` -> ``lo - 1`` (never). Raises
    :class:`ProtocolError` when ``lo - 1`` or ``hi + 1`` does not fit: the layer needs a wider accumulator.
    """
    t = np.asarray(thresholds, dtype=np.int64)
    lo, hi = np.asarray(lo, dtype=np.int64)[:, None], np.asarray(hi, dtype=np.int64)[:, None]
    fits = _fits(lo - 1, acc_width) & _fits(hi + 1, acc_width)
    if not fits.all():
        channel = int(np.argwhere(~fits)[0][0])
        raise ProtocolError(f"channel {channel}: accumulators {int(lo[channel, 0])} .. {int(hi[channel, 0])} and "
                            f"their thresholds do not fit a {acc_width}-bit accumulator; the layer needs a "
                            f"wider accumulator")
    descending = np.broadcast_to(np.asarray(descending, dtype=bool), (t.shape[0],))[:, None]
    ascending = np.where(t > hi, hi + 1, np.where(t <= lo, lo, t))
    falling = np.where(t >= hi, hi, np.where(t < lo, lo - 1, t))
    return np.where(descending, falling, ascending)


def pack_thresholds(layer, geometry):
    """LOAD_THRESHOLDS' payload of a model-file layer: ``uint32`` words, per padded output channel ``bias``
    (``sum(w)`` for FATNN input, else 0), ``descending`` and the :func:`clamp_thresholds` thresholds,
    each a 32-bit two's-complement word."""
    config = layer_config(layer)
    out_pad = _padded_shape(config, geometry)[0]
    w = np.asarray(layer.weights, dtype=np.int64)
    bias = w.sum(axis=1) if config.input_kind == InputKind.FATNN else np.zeros(config.out_features, np.int64)
    if config.last:
        thresholds = np.zeros((config.out_features, 0), np.int64)
        descending = np.zeros(config.out_features, np.int64)
    else:
        lo, hi = layer.accumulator_range()
        thresholds = clamp_thresholds(layer.thresholds, layer.descending, lo, hi, geometry.acc_width)
        descending = np.asarray(layer.descending, dtype=np.int64)
    table = np.concatenate([bias[:, None], descending[:, None], thresholds], axis=1)
    return (_pad(table, (out_pad,)) & _WORD_MASK).astype(np.uint32).reshape(-1)


def _input_planes(codes, config, geometry):
    """Padded input codes ``(batch, IP)`` to the input rows' bits ``(batch * in_folds, input_row_bits)``,
    as :meth:`TileGeometry.input_row_bits` lays them out."""
    if geometry.family == Family.NHOT:
        fields = (codes[..., None] >> np.arange(geometry.max_input_bits)) & 1      # (batch, IP, B)
        return fields.reshape(-1, geometry.input_row_bits(config))
    if config.input_kind == InputKind.BINARY:
        planes = codes[None]
    elif config.input_kind in (InputKind.TERNARY, InputKind.FATNN):
        # Padding taps hold code 1 (value 0): both planes zero.
        planes = np.stack(encode_ternary(codes - 1))                                 # nz, sign
    else:
        k = config.input_bits
        planes = (codes[None] >> np.arange(k - 1, -1, -1)[:, None, None]) & 1        # the MSB first
    batch, simd = codes.shape[0], geometry.simd
    planes = planes.reshape(len(planes), batch, -1, simd).transpose(1, 2, 0, 3)      # (batch, IF, P, SIMD)
    return planes.reshape(-1, geometry.input_row_bits(config))


def _input_codes(bits, config, geometry, batch):
    """Inverse of :func:`_input_planes`: ``(batch, IP)`` codes (padding taps of ternary kinds read as 1)."""
    if geometry.family == Family.NHOT:
        fields = bits.reshape(batch, -1, geometry.max_input_bits).astype(np.int64)
        return (fields << np.arange(geometry.max_input_bits)).sum(axis=-1)
    count = geometry.input_planes(config)
    planes = bits.reshape(batch, -1, count, geometry.simd).astype(np.int64)
    planes = planes.transpose(2, 0, 1, 3).reshape(count, batch, -1)                 # (P, batch, IP)
    if config.input_kind == InputKind.BINARY:
        return planes[0]
    if config.input_kind in (InputKind.TERNARY, InputKind.FATNN):
        return planes[0] * (1 - 2 * planes[1]) + 1
    k = config.input_bits
    return np.tensordot(np.int64(1) << np.arange(k - 1, -1, -1), planes, axes=(0, 0))


def pack_inputs(codes, layer_config, geometry):
    """RUN's payload for input codes ``(batch, in_features)``: ``uint32`` words, per vector ``in_folds`` rows
    of :meth:`TileGeometry.input_row_words` words, each the bit string of :meth:`TileGeometry.input_row_bits`
    (popcount family: plane-major, binary the code, ternary and FATNN the ``nz`` and ``sign`` planes of
    ``code - 1``, uint the bits the most significant first; n-hot family: ``max_input_bits``-bit codes).
    Padding taps are all-zero bits."""
    codes = np.asarray(codes, dtype=np.int64)
    config = layer_config
    if codes.ndim != 2 or codes.shape[1] != config.in_features:
        raise ValueError(f"codes must have shape (batch, {config.in_features}), not {codes.shape}")
    if config.input_kind in (InputKind.TERNARY, InputKind.FATNN):
        limit, pad = 3, 1
    else:
        limit, pad = 1 << (1 if config.input_kind == InputKind.BINARY else config.input_bits), 0
    if codes.size and (codes.min() < 0 or codes.max() >= limit):
        raise ValueError(f"{config.input_kind.name.lower()} input codes must lie in 0 .. {limit - 1}, "
                         f"not {int(codes.max() if codes.max() >= limit else codes.min())}")
    in_pad = _padded_shape(config, geometry)[1]
    padded = np.full((len(codes), in_pad), pad, dtype=np.int64)
    padded[:, :config.in_features] = codes
    return _words_of_rows(_input_planes(padded, config, geometry))


def _signed32(words):
    words = np.asarray(words, dtype=np.int64) & _WORD_MASK
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
        values = _signed32(words).reshape(batch, of * pe)
    else:
        k = output_code_bits(config.output_levels)
        bits = _rows_of_words(words, batch, of * pe * k).reshape(batch, of * pe, k).astype(np.int64)
        values = (bits << np.arange(k)).sum(axis=-1)
    return values[:, :config.out_features]


# --- the command interface ------------------------------------------------------------------------------

class StreamStats:
    """Words on the wire: per command kind the commands, header and payload words sent; the response
    header and payload words received."""

    def __init__(self):
        self.sent = {op.name: {"commands": 0, "header": 0, "payload": 0} for op in Opcode}
        self.received = {"header": 0, "payload": 0}

    def count_command(self, opcode, payload):
        entry = self.sent.setdefault(_name(Opcode, opcode), {"commands": 0, "header": 0, "payload": 0})
        entry["commands"] += 1
        entry["header"] += 1
        entry["payload"] += payload

    @property
    def header_words(self):
        return sum(entry["header"] for entry in self.sent.values())

    @property
    def payload_words(self):
        return sum(entry["payload"] for entry in self.sent.values())

    def as_dict(self):
        return {"sent": {name: dict(entry) for name, entry in self.sent.items() if entry["commands"]},
                "sent_header_words": self.header_words, "sent_payload_words": self.payload_words,
                "received": dict(self.received)}


class TileInterface:
    """The tile's commands over a :class:`Transport`, one ``async`` method each.

    Every method sends one command, reads its one response, checks the response's header and length,
    and raises :class:`TileError` on ERROR or on a malformed response. ``geometry`` (from
    :meth:`identify`, or given) and the last configured layer let :meth:`run` check DATA's length.
    ``stats`` counts the words; ``log`` lists the commands (opcode, words, cycles where the transport
    has a clock, and the ``tag`` set by the caller, e.g. the layer index).
    """

    def __init__(self, transport, geometry=None):
        self.transport = transport
        self.geometry = geometry
        self.layer = None
        self.stats = StreamStats()
        self.log = []
        self.tag = None

    async def _command(self, opcode, payload, response, expected_length, batch=None):
        payload = [int(w) for w in payload]
        start = self.transport.cycle
        self.stats.count_command(opcode, len(payload))
        await self.transport.write([header(opcode, len(payload)), *payload])
        reply, length = parse_header((await self.transport.read(1))[0])
        self.stats.received["header"] += 1
        if reply == Response.ERROR and length == 1:
            word = (await self.transport.read(1))[0]
            self.stats.received["payload"] += 1
            code, about = word & 0xFF, (word >> 8) & 0xFF
            raise TileError(code, opcode, None if about == int(opcode) else
                            f"the error names opcode 0x{about:02x}, not the command sent")
        if reply != response or (expected_length is not None and length != expected_length):
            want = f"{response.name} of {'any length' if expected_length is None else expected_length}"
            raise TileError(None, opcode, f"header {_name(Response, reply)} with length {length}, expected {want}")
        words = await self.transport.read(length) if length else []
        self.stats.received["payload"] += length
        self.log.append({"opcode": _name(Opcode, opcode), "tag": self.tag, "payload": len(payload),
                         "response": length, "batch": batch, "start_cycle": start, "end_cycle": self.transport.cycle})
        return words

    async def identify(self):
        """The tile's :class:`TileGeometry` (also kept as ``self.geometry``)."""
        words = await self._command(Opcode.IDENTIFY, [], Response.DATA, len(_PROBE.encode()))
        try:
            self.geometry = TileGeometry.decode(words)
        except ValueError as error:
            raise TileError(None, Opcode.IDENTIFY, f"the parameters do not decode: {error}") from None
        return self.geometry

    async def configure(self, layer_config):
        """Make ``layer_config`` the tile's layer; its weights and thresholds are forgotten."""
        self.layer = None
        await self._command(Opcode.CONFIGURE, layer_config.encode(), Response.OK, 0)
        self.layer = layer_config

    async def load_weights(self, words):
        await self._command(Opcode.LOAD_WEIGHTS, words, Response.OK, 0)

    async def load_thresholds(self, words):
        await self._command(Opcode.LOAD_THRESHOLDS, words, Response.OK, 0)

    async def run(self, batch_words, batch):
        """RUN on ``batch`` input vectors (``batch_words``: their packed words); returns DATA's words."""
        expected = None
        if self.geometry is not None and self.layer is not None:
            expected = batch * self.geometry.output_words(self.layer)
        return await self._command(Opcode.RUN, batch_words, Response.DATA, expected, batch)


#: Any geometry: only the length of its encoding is used.
_PROBE = TileGeometry(Family.POPCOUNT, 1, 1, 1, 1, 1)


def vectors_per_run(words_per_vector, batch, max_batch=None):
    """Vectors per RUN command for a batch: all of them, unless the RUN or its DATA (``words_per_vector``:
    the larger of the two per vector) would exceed ``MAX_LENGTH`` words, or ``max_batch``."""
    size = min(batch, MAX_LENGTH // words_per_vector)
    return max(1, min(size, max_batch) if max_batch else size)


async def run_model(interface, model, pixels, progress=None, *, max_batch=None):
    """Run ``model`` on digits ``pixels`` ``(batch, 64)`` on the tile; return the last layer's accumulators
    ``(batch, classes)`` ``int64``. :func:`run_codes` with the model's first-layer input codes."""
    return await run_codes(interface, model, GoldenNetwork(model).input(pixels), progress, max_batch=max_batch)


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
            parts.append((start, stop, layer_config(part), pack_weights(part, geometry),
                          pack_thresholds(part, geometry)))
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
                chunk = codes[start:start + size]
                words = await interface.run(pack_inputs(chunk, part, geometry).tolist(), len(chunk))
                outputs[start:start + len(chunk), first:last] = unpack_outputs(words, part, geometry, len(chunk))
                if progress is not None:
                    progress(index, (number * batch + start + len(chunk)) // len(parts), batch)
        codes = outputs
    interface.tag = None
    return codes.astype(np.int64)


# --- the reference tile ---------------------------------------------------------------------------------

class _Refusal(Exception):
    def __init__(self, code):
        self.code = code


class ModelTile(Transport):
    """The reference model of the tile: the protocol of :mod:`lowbit.hw.protocol` on the golden unit
    functions, as a :class:`Transport` (the driver talks to it as to the hardware).

    Words are processed as soon as a whole message has arrived; responses queue until read. It decodes
    the wire formats itself (weights back into planes or terms, inputs into codes), computes each
    channel with the golden unit of its family (``ternary_binary_dot``, ``ternary_dot``, ``fatnn_dot``,
    ``bitserial_dot``, the int weight planes, ``nhot_dot``), adds the bias, wraps to ``acc_width`` bits
    and applies ``multithreshold`` or returns the accumulators, as the tile does. Every refusal of the
    protocol is answered with ERROR after the command's payload has been drained:

    - an unknown opcode: UNKNOWN_OPCODE;
    - CONFIGURE of length other than 3, IDENTIFY of length other than 0, LOAD_* of another length than
      the configured layer needs, RUN of a length that is not a positive multiple of the vector's
      words: BAD_LENGTH;
    - CONFIGURE with an unknown kind, or one :meth:`TileGeometry.check` refuses: its code; a refused
      CONFIGURE leaves the tile unconfigured;
    - LOAD_* or RUN without a configured layer: NOT_CONFIGURED; RUN before both loads: NOT_LOADED.
      A refused LOAD_* leaves what was loaded before.

    ``busy_cycles`` estimates the MAC array's busy cycles (:meth:`TileGeometry.cycles_per_vector` per vector).
    """

    def __init__(self, geometry):
        if not isinstance(geometry, TileGeometry):
            raise TypeError(f"geometry must be a TileGeometry, not {geometry!r}")
        self.geometry = geometry
        self._inbox = []
        self._outbox = collections.deque()
        self._layer = None
        self._weights = None
        self._thresholds = None
        self.busy_cycles = 0

    @property
    def pending(self):
        """Response words written and not yet read."""
        return len(self._outbox)

    async def write(self, words):
        for word in words:
            word = int(word)
            if not 0 <= word <= _WORD_MASK:
                raise TransportError(f"words are 32-bit unsigned integers, not {word}")
            self._inbox.append(word)
        start = 0
        while start < len(self._inbox):
            opcode, length = parse_header(self._inbox[start])
            if len(self._inbox) - start - 1 < length:
                break
            self._outbox.extend(self._execute(opcode, self._inbox[start + 1:start + 1 + length]))
            start += 1 + length
        del self._inbox[:start]

    async def read(self, count):
        if count > len(self._outbox):
            raise TransportError(f"read of {count} words, but the tile has answered only {len(self._outbox)}")
        return [self._outbox.popleft() for _ in range(count)]

    # --- commands -----------------------------------------------------------------------------------
    def _execute(self, opcode, payload):
        try:
            command = Opcode(opcode)
        except ValueError:
            return self._error(ErrorCode.UNKNOWN_OPCODE, opcode)
        handler = {Opcode.CONFIGURE: self._configure, Opcode.LOAD_WEIGHTS: self._load_weights,
                   Opcode.LOAD_THRESHOLDS: self._load_thresholds, Opcode.RUN: self._run,
                   Opcode.IDENTIFY: self._identify}[command]
        try:
            words = handler(payload)
        except _Refusal as refusal:
            return self._error(refusal.code, opcode)
        if words is None:
            return [header(Response.OK, 0)]
        return [header(Response.DATA, len(words)), *words]

    @staticmethod
    def _error(code, opcode):
        return [header(Response.ERROR, 1), (int(opcode) << 8) | int(code)]

    def _identify(self, payload):
        if payload:
            raise _Refusal(ErrorCode.BAD_LENGTH)
        return self.geometry.encode()

    def _configure(self, payload):
        self._layer = self._weights = self._thresholds = None
        if len(payload) != 3:
            raise _Refusal(ErrorCode.BAD_LENGTH)
        try:
            config = LayerConfig.decode(payload)
        except ValueError:                          # a kind field that names no kind
            raise _Refusal(ErrorCode.UNSUPPORTED) from None
        code = self.geometry.check(config)
        if code is not None:
            raise _Refusal(code)
        self._layer = config

    def _configured(self):
        if self._layer is None:
            raise _Refusal(ErrorCode.NOT_CONFIGURED)
        return self._layer

    def _load_weights(self, payload):
        config, g = self._configured(), self.geometry
        if len(payload) != g.weight_words(config):
            raise _Refusal(ErrorCode.BAD_LENGTH)
        rows = _rows_of_words(payload, g.weight_rows(config), g.weight_row_bits)
        of, nf = g.out_folds(config), g.in_folds(config)
        out_pad, in_pad = _padded_shape(config, g)
        if g.family == Family.POPCOUNT:
            slots = rows.reshape(of, g.weight_planes(config), nf, g.pe, 2, g.simd)
            planes = slots.transpose(1, 4, 0, 3, 2, 5).reshape(-1, 2, out_pad, in_pad)  # (P, 2, OP, IP)
            self._weights = {"nz": planes[:, 0], "sign": planes[:, 1]}
        else:
            terms = rows.reshape(of, nf, g.pe, g.simd, g.n_terms, 2 + g.exponent_bits)
            terms = terms.transpose(0, 2, 1, 3, 4, 5).reshape(out_pad, in_pad, g.n_terms, -1).astype(np.int64)
            exponent = (terms[..., 2:] << np.arange(g.exponent_bits)).sum(axis=-1)
            self._weights = {"present": terms[..., 0], "sign": terms[..., 1], "exponent": exponent}

    def _load_thresholds(self, payload):
        config, g = self._configured(), self.geometry
        if len(payload) != g.threshold_words(config):
            raise _Refusal(ErrorCode.BAD_LENGTH)
        table = np.asarray(payload, dtype=np.int64).reshape(-1, 2 + config.thresholds)
        self._thresholds = {"bias": _signed32(table[:, 0]), "descending": (table[:, 1] & 1).astype(bool),
                            "thresholds": self._wrap(_signed32(table[:, 2:]))}

    def _wrap(self, values):
        """The low ``acc_width`` bits as a signed number: what the tile's registers hold."""
        half = 1 << (self.geometry.acc_width - 1)
        return ((values + half) & ((half << 1) - 1)) - half

    def _run(self, payload):
        config, g = self._configured(), self.geometry
        if self._weights is None or self._thresholds is None:
            raise _Refusal(ErrorCode.NOT_LOADED)
        per_vector = g.input_words(config)
        if not payload or len(payload) % per_vector:
            raise _Refusal(ErrorCode.BAD_LENGTH)
        batch = len(payload) // per_vector
        rows = _rows_of_words(payload, batch * g.in_folds(config), g.input_row_bits(config))
        codes = _input_codes(rows, config, g, batch)                                 # (batch, IP)
        self.busy_cycles += batch * g.cycles_per_vector(config)
        acc = self._wrap(self._accumulate(config, codes) + self._thresholds["bias"])
        of, pe = g.out_folds(config), g.pe
        if config.last:
            return (acc & _WORD_MASK).reshape(-1).tolist()
        out = multithreshold(acc, self._thresholds["thresholds"], self._thresholds["descending"]).astype(np.int64)
        k = output_code_bits(config.output_levels)
        out_bits = ((out[..., None] >> np.arange(k)) & 1).reshape(batch, of * pe * k)
        return _words_of_rows(out_bits).tolist()

    def _accumulate(self, config, codes):
        """``(batch, OP)`` dot products of the padded input codes with the loaded weights (no bias)."""
        w = self._weights
        if self.geometry.family == Family.NHOT:
            step = max(1, (1 << 22) // w["present"].size)   # bound the (batch, OP, IP, T) temporary
            return np.concatenate([nhot_dot(codes[i:i + step, None, :], w["present"], w["sign"], w["exponent"])
                                   for i in range(0, len(codes), step)])
        nz, sign = pack_bits(w["nz"]), pack_bits(w["sign"])      # (P, OP, words)
        kind = config.input_kind
        if config.weight_kind == WeightKind.INT:             # weight planes against binary input
            a = pack_bits(codes)[:, None, :]
            valid = np.full_like(a, ~np.uint64(0))
            planes = [ternary_binary_dot(a, valid, nz[p], np.zeros_like(nz[p])) for p in range(len(nz))]
            return np.tensordot(_int_plane_weights(config.weight_bits), np.stack(planes), axes=(0, 0))
        nz, sign = nz[0], sign[0]
        if kind == InputKind.BINARY:
            a = pack_bits(codes)[:, None, :]
            return ternary_binary_dot(a, np.full_like(a, ~np.uint64(0)), nz, sign)
        if kind in (InputKind.TERNARY, InputKind.FATNN):
            a_nz, a_sign = (encode_ternary(codes - 1) if kind == InputKind.TERNARY
                            else encode_fatnn_activation(codes))
            a_nz, a_sign = pack_bits(a_nz)[:, None, :], pack_bits(a_sign)[:, None, :]
            if kind == InputKind.TERNARY:
                return ternary_dot(a_nz, a_sign, nz, sign)
            return fatnn_dot(a_nz, a_sign, nz, sign, np.int64(0))  # the bias carries sum(w)
        return bitserial_dot(codes[:, None, :], config.input_bits, False, nz, sign)
