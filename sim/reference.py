"""The reference tile: :class:`ModelTile`, the tile's protocol on the golden unit functions, in Python.

It is a :class:`~lowbit.sw.host.transport.Transport`, so the host driver talks to it as to the Verilog
tile in simulation or a board; the tests compare the two word for word.
"""

import collections
import dataclasses

import numpy as np

from lowbit.sw.golden.network import class_index
from lowbit.sw.golden.units import (
    bitserial_dot,
    fatnn_dot,
    fgq_dot,
    multithreshold,
    nhot_dot,
    ternary_binary_dot,
    ternary_dot,
    xor_popcount,
)
from lowbit.sw.host.packing import (
    WORD_MASK,
    int_plane_weights,
    lane_pad_code,
    padded_shape,
    pixel_lanes,
    rows_of_words,
    signed32,
    unpack_inputs,
    words_of_rows,
)
from lowbit.sw.host.transport import Transport, TransportError
from lowbit.sw.kinds import FGQ_SCALE_BITS, Family, InputKind, WeightKind, tile_unit
from lowbit.sw.kinds.encodings import encode_fatnn_activation, encode_ternary, pad_code
from lowbit.sw.kinds.packing import pack_bits
from lowbit.sw.model.conv import max_pool, windows
from lowbit.sw.protocol import (
    MAX_LENGTH,
    ErrorCode,
    LayerConfig,
    MapWalk,
    Opcode,
    Response,
    TileGeometry,
    header,
    model_error,
    output_code_bits,
    parse_header,
    walk_of,
)

__all__ = ["ModelTile", "search_thresholds"]


class _Refusal(Exception):
    def __init__(self, code):
        self.code = code


#: What LOAD_MODEL reads a layer whose kind fields name no kind as: a layer
#: :func:`~lowbit.sw.protocol.configure_error` refuses with UNSUPPORTED (it has no inputs), as CONFIGURE
#: refuses the undecodable layer, in the layer's place of the check order.
_UNDECODABLE = LayerConfig(0, 0, WeightKind.BINARY, 1, 0, InputKind.BINARY, 1, 0)


def _decode_layer(words):
    """The layer of its LOAD_MODEL words: CONFIGURE's three, and on a tile that walks maps its walk's two."""
    try:
        walk = MapWalk.decode(words[3:]) if len(words) > 3 else None
        return dataclasses.replace(LayerConfig.decode(words[:3]), walk=walk)
    except ValueError:  # a kind field that names no kind, or a walk's field out of range
        return _UNDECODABLE


def search_thresholds(acc, thresholds, descending, levels):
    """The codes a tile that searches its thresholds gives (``docs/tile.md``): ``levels`` comparisons per
    code, most significant bit first, at slot ``(2 p + 1) * 2**(levels - 1 - k) - 1`` of each channel's
    row, a hit only below the row's length. For rows in LOAD_THRESHOLDS' order (ascending; descending
    where ``descending``) this is :func:`multithreshold`; for rows out of order, what the tile answers.
    ``acc`` ``(B, C)``, ``thresholds`` ``(C, n)``, ``descending`` ``(C,)``."""
    acc, t = np.asarray(acc, dtype=np.int64), np.asarray(thresholds, dtype=np.int64)
    falling = np.asarray(descending, dtype=bool)[None, :]
    n, channels = t.shape[1], np.arange(t.shape[0])[None, :]
    p = np.zeros(acc.shape, np.int64)
    for k in range(levels):
        slot = ((2 * p + 1) << (levels - 1 - k)) - 1
        value = t[channels, np.minimum(slot, max(n - 1, 0))] if n else np.zeros_like(acc)
        hit = (slot < n) & np.where(falling, value >= acc, acc >= value)
        p = 2 * p + hit
    return p


class ModelTile(Transport):
    """The reference model of the tile: the protocol of :mod:`lowbit.sw.protocol` on the golden unit
    functions, as a :class:`Transport` (the driver talks to it as to the hardware).

    Words are processed as soon as a whole message has arrived; responses queue until read. It decodes
    the wire formats itself (weights back into planes or terms, inputs into codes), computes each channel with
    the golden unit of its family (BINARY: ``xor_popcount`` per pass, scaled as the tile scales it; POPCOUNT:
    ``ternary_binary_dot``, ``ternary_dot``, ``fatnn_dot``, ``bitserial_dot``, the int weight planes; NHOT:
    ``nhot_dot``; FGQ: ``fgq_dot`` over the tile's scale groups), adds the bias, wraps to ``acc_width`` bits and
    applies ``multithreshold`` or returns the accumulators, as the tile does. The sign plane of INT weight rows
    (int weights on the POPCOUNT array) is ignored: those weights are two's-complement bit-planes in the ``nz``
    plane, and the tile ignores the sign bits too. Every refusal of the protocol is answered with ERROR after
    the command's payload has been drained:

    - an unknown opcode: UNKNOWN_OPCODE;
    - CONFIGURE of length other than 3, IDENTIFY of length other than 0, LOAD_* of another length than
      the configured layer needs, RUN of a length that is not a positive multiple of the vector's
      words or whose DATA would exceed ``MAX_LENGTH`` words: BAD_LENGTH;
    - CONFIGURE with an unknown kind, or one :meth:`TileGeometry.check` refuses: its code; a refused
      CONFIGURE leaves the tile unconfigured;
    - LOAD_* or RUN without a configured layer: NOT_CONFIGURED; RUN before both loads: NOT_LOADED.
      A refused LOAD_* leaves what was loaded before.

    Resident mode (``geometry.max_layers`` > 0): LOAD_MODEL holds a whole model of ``L`` layers. Its length
    must be ``1 + 3 L`` (``L`` = word 0; BAD_LENGTH, also for no payload); then it answers the code of
    :func:`~lowbit.sw.protocol.model_error` (a layer whose kind fields name no kind counts as one
    :func:`~lowbit.sw.protocol.configure_error` refuses with UNSUPPORTED, as CONFIGURE does). A refused
    LOAD_MODEL leaves the tile unconfigured, an accepted one forgets the previous layer or model and its
    loads; CONFIGURE leaves model mode. In model mode LOAD_WEIGHTS takes every layer's weight rows, layer 0
    first (:meth:`TileGeometry.model_weight_words`), LOAD_THRESHOLDS every layer's padded channels as
    records of :attr:`TileGeometry.record_words` words (:meth:`TileGeometry.model_threshold_words`; the
    thresholds beyond the layer's are ignored), and RUN takes layer 0's input vectors and answers the last
    layer's DATA: each vector runs through the layers one by one, exactly as in streaming mode, a hidden
    layer's output codes (its padded channels dropped) becoming the next layer's input codes (padded as
    RUN's inputs are). The length checks use the model's totals, layer 0's input words and the last
    layer's output words. CLASSIFY is RUN answered with one word per vector, the class index of the last
    layer's accumulators (:func:`~lowbit.sw.golden.class_index` over its ``out_features`` channels); after
    the checks of RUN's configuration and loads, outside model mode it is refused with UNSUPPORTED.

    ``busy_cycles`` estimates the MAC array's busy cycles (:meth:`TileGeometry.cycles_per_vector` per vector,
    of every layer in model mode).
    """

    def __init__(self, geometry):
        if not isinstance(geometry, TileGeometry):
            raise TypeError(f"geometry must be a TileGeometry, not {geometry!r}")
        self.geometry = geometry
        self._inbox = []
        self._outbox = collections.deque()
        self._layer = None  # streaming: the configured layer
        self._model = None  # model mode: the layers of LOAD_MODEL
        self._weights = None  # per layer (model mode: a list, one per layer)
        self._thresholds = None
        self._running = 0  # the index of the layer RUN is computing
        self.busy_cycles = 0

    @property
    def pending(self):
        """Response words written and not yet read."""
        return len(self._outbox)

    async def write(self, words):
        for word in words:
            word = int(word)
            if not 0 <= word <= WORD_MASK:
                raise TransportError(f"words are 32-bit unsigned integers, not {word}")
            self._inbox.append(word)
        start = 0
        while start < len(self._inbox):
            opcode, length = parse_header(self._inbox[start])
            if len(self._inbox) - start - 1 < length:
                break
            self._outbox.extend(self._execute(opcode, self._inbox[start + 1 : start + 1 + length]))
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
        handler = {
            Opcode.CONFIGURE: self._configure,
            Opcode.LOAD_WEIGHTS: self._load_weights,
            Opcode.LOAD_THRESHOLDS: self._load_thresholds,
            Opcode.RUN: self._run,
            Opcode.IDENTIFY: self._identify,
            Opcode.LOAD_MODEL: self._load_model,
            Opcode.CLASSIFY: self._classify,
        }[command]
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

    def _forget(self):
        self._layer = self._model = self._weights = self._thresholds = None

    def _configure(self, payload):
        self._forget()
        if len(payload) != 3:
            raise _Refusal(ErrorCode.BAD_LENGTH)
        try:
            config = LayerConfig.decode(payload)
        except ValueError:  # a kind field that names no kind
            raise _Refusal(ErrorCode.UNSUPPORTED) from None
        code = self.geometry.check(config)
        if code is not None:
            raise _Refusal(code)
        self._layer = config

    def _load_model(self, payload):
        self._forget()
        n = self.geometry.model_layer_words
        if not payload or len(payload) != 1 + n * payload[0]:
            raise _Refusal(ErrorCode.BAD_LENGTH)
        count = payload[0]
        if count > self.geometry.max_layers:  # model_error refuses the count before reading any layer
            layers = [_UNDECODABLE] * count
        else:
            layers = [_decode_layer(payload[1 + n * i : 1 + n * (i + 1)]) for i in range(count)]
        code = model_error(layers, self.geometry)
        if code:
            raise _Refusal(ErrorCode(code))
        self._model = layers

    def _configured(self):
        """The layers the loads and RUN are for: the configured layer, or the resident model's."""
        if self._model is not None:
            return self._model
        if self._layer is None:
            raise _Refusal(ErrorCode.NOT_CONFIGURED)
        return [self._layer]

    def _load_weights(self, payload):
        layers, g = self._configured(), self.geometry
        if len(payload) != sum(g.weight_words(config) for config in layers):
            raise _Refusal(ErrorCode.BAD_LENGTH)
        weights, start = [], 0
        for config in layers:
            weights.append(self._decode_weights(config, payload[start : start + g.weight_words(config)]))
            start += g.weight_words(config)
        self._weights = weights

    def _decode_weights(self, config, payload):
        """One layer's LOAD_WEIGHTS words back into the planes or terms of its padded weights."""
        g = self.geometry
        rows = rows_of_words(payload, g.weight_rows(config), g.weight_row_bits)
        of, nf = g.out_folds(config), g.in_folds(config)
        out_pad, in_pad = padded_shape(config, g)
        if g.family == Family.BINARY:
            planes = rows.reshape(of, g.weight_planes(config), nf, g.pe, g.simd).transpose(1, 0, 3, 2, 4)
            return {"bits": planes.reshape(-1, out_pad, in_pad)}  # (P, OP, IP)
        if g.family == Family.POPCOUNT:
            slots = rows.reshape(of, g.weight_planes(config), nf, g.pe, 2, g.simd)
            planes = slots.transpose(1, 4, 0, 3, 2, 5).reshape(-1, 2, out_pad, in_pad)  # (P, 2, OP, IP)
            return {"nz": planes[:, 0], "sign": planes[:, 1]}
        if g.family == Family.FGQ:
            slots = rows.reshape(of, nf, g.pe, g.slot_bits).transpose(0, 2, 1, 3).astype(np.int64)  # (OF, PE, IF, .)
            nz, sign = (slots[..., k * g.simd : (k + 1) * g.simd].reshape(out_pad, in_pad) for k in (0, 1))
            scale_bits = slots[..., 2 * g.simd :].reshape(out_pad, -1, FGQ_SCALE_BITS)
            scales = (scale_bits << np.arange(FGQ_SCALE_BITS)).sum(axis=-1)  # (OP, IP / group_size)
            return {"nz": nz, "sign": sign, "scales": scales}
        terms = rows.reshape(of, nf, g.pe, g.simd, g.n_terms, 2 + g.exponent_bits)
        terms = terms.transpose(0, 2, 1, 3, 4, 5).reshape(out_pad, in_pad, g.n_terms, -1).astype(np.int64)
        exponent = (terms[..., 2:] << np.arange(g.exponent_bits)).sum(axis=-1)
        return {"present": terms[..., 0], "sign": terms[..., 1], "exponent": exponent}

    def _load_thresholds(self, payload):
        layers, g = self._configured(), self.geometry
        if self._model is None:  # streaming: the layer's own thresholds per channel
            record = 2 + layers[0].thresholds
        else:  # model mode: every record padded to the threshold unit's size
            record = g.record_words
        if len(payload) != sum(g.out_folds(config) * g.pe for config in layers) * record:
            raise _Refusal(ErrorCode.BAD_LENGTH)
        table = np.asarray(payload, dtype=np.int64).reshape(-1, record)
        thresholds, start = [], 0
        for config in layers:
            channels = table[start : start + g.out_folds(config) * g.pe]
            start += len(channels)
            thresholds.append(
                {
                    "bias": signed32(channels[:, 0]),
                    "descending": (channels[:, 1] & 1).astype(bool),
                    "thresholds": self._wrap(signed32(channels[:, 2 : 2 + config.thresholds])),
                }
            )
        self._thresholds = thresholds

    def _wrap(self, values):
        """The low ``acc_width`` bits as a signed number: what the tile's registers hold."""
        half = 1 << (self.geometry.acc_width - 1)
        return ((values + half) & ((half << 1) - 1)) - half

    def _classify(self, payload):
        return self._run(payload, classify=True)

    def _run(self, payload, classify=False):
        layers, g = self._configured(), self.geometry
        if self._weights is None or self._thresholds is None:
            raise _Refusal(ErrorCode.NOT_LOADED)
        if classify and self._model is None:  # CLASSIFY is for resident models
            raise _Refusal(ErrorCode.UNSUPPORTED)
        first, last = layers[0], layers[-1]
        per_vector = g.input_words(first)
        if not payload or len(payload) % per_vector:
            raise _Refusal(ErrorCode.BAD_LENGTH)
        batch = len(payload) // per_vector
        if batch * (1 if classify else g.output_words(last)) > MAX_LENGTH:  # more than a DATA header can say
            raise _Refusal(ErrorCode.BAD_LENGTH)
        out = unpack_inputs(payload, first, g, batch)  # (batch, input rows * SIMD): every lane as sent
        for index, config in enumerate(layers):  # model mode: the hidden layers' codes never leave the tile
            self.busy_cycles += batch * g.cycles_per_vector(config)
            pooled = self._pooled(config, self._layer_outputs(index, config, self._taps(config, out)), batch)
            if index + 1 < len(layers):  # the next layer's rows: its live codes, zero bits beyond them
                live = pooled[..., : config.out_features].reshape(batch, -1)
                out = pixel_lanes(live, layers[index + 1], g, lane_pad_code(layers[index + 1]))
        out = pooled.reshape(batch, -1)  # the last layer's one pixel, its padded channels too
        if classify:
            return class_index(out[:, : last.out_features]).tolist()
        if last.last:
            return (out & WORD_MASK).reshape(-1).tolist()
        k = output_code_bits(last.output_levels)
        out_bits = ((out[..., None] >> np.arange(k)) & 1).reshape(batch, g.out_folds(last) * g.pe * k)
        return words_of_rows(out_bits).tolist()

    def _taps(self, config, rows):
        """The inputs ``(batch * positions, in_folds * simd)`` of a layer's dot products from its input rows'
        codes ``(batch, input rows * simd)``: a dense layer's one vector; a walk's windows at the positions
        it walks, a padded tap (outside the map) the input kind's pad code on the live lanes and zero bits
        (:func:`lane_pad_code`) beyond them, as the tile's pad row."""
        g, walk = self.geometry, walk_of(config)
        if config.walk is None:
            return rows
        lanes, p = g.channel_groups(config) * g.simd, walk.padding
        pad = np.full(lanes, lane_pad_code(config), dtype=np.int64)
        pad[: config.in_features] = pad_code(str(config.input_kind), config.input_bits)
        maps = np.empty((len(rows), walk.height + 2 * p, walk.width + 2 * p, lanes), dtype=np.int64)
        maps[:] = pad
        maps[:, p : p + walk.height, p : p + walk.width] = rows.reshape(len(rows), walk.height, walk.width, lanes)
        cut = windows(maps, walk.kernel, walk.stride, 0, 0)
        return cut[:, : walk.out_height * walk.pool, : walk.out_width * walk.pool].reshape(-1, walk.taps * lanes)

    def _pooled(self, config, out, batch):
        """A layer's outputs ``(batch * positions, OP)`` max-pooled: ``(batch, pooled pixels, OP)``."""
        walk = walk_of(config)
        maps = out.reshape(batch, walk.out_height * walk.pool, walk.out_width * walk.pool, -1)
        return max_pool(maps, walk.pool).reshape(batch, walk.out_height * walk.out_width, -1)

    def _layer_outputs(self, index, config, codes):
        """``(n, OP)`` outputs of layer ``index`` (``config``) on its padded input ``codes``: the
        accumulators of a last layer, else the output codes."""
        self._running, thresholds = index, self._thresholds[index]
        acc = self._wrap(self._accumulate(config, codes) + thresholds["bias"])
        if config.last:
            return acc
        if self.geometry.search_levels:
            return search_thresholds(
                acc, thresholds["thresholds"], thresholds["descending"], self.geometry.search_levels
            )
        return multithreshold(acc, thresholds["thresholds"], thresholds["descending"]).astype(np.int64)

    def _accumulate(self, config, codes):
        """``(batch, OP)`` dot products of the padded input codes with the loaded weights of the layer being
        run (``self._running``; no bias), on the unit the registry names for the layer on this tile
        (:func:`lowbit.sw.kinds.tile_unit`)."""
        w, unit = self._weights[self._running], tile_unit(config, self.geometry)
        if self.geometry.family == Family.BINARY:
            # Disagreements d per pass: -2 d for binary input, -d per uint plane (the most significant first),
            # s - d per int weight plane (s: the input's +1 bits).
            bits, n = pack_bits(w["bits"]), w["bits"].shape[-1]  # (P, OP, words)
            if unit == "weight_bitserial":
                a = pack_bits(codes)[:, None, :]
                s = xor_popcount(a, np.zeros_like(a), n=n)
                planes = [s - xor_popcount(a, bits[p], n=n) for p in range(len(bits))]
                return np.tensordot(int_plane_weights(config.weight_bits), np.stack(planes), axes=(0, 0))
            bits = bits[0]
            if unit == "xor_popcount":
                return -2 * xor_popcount(pack_bits(codes)[:, None, :], bits, n=n)
            total = np.zeros((len(codes), len(bits)), np.int64)
            for p in range(config.input_bits - 1, -1, -1):
                total = 2 * total - xor_popcount(pack_bits((codes >> p) & 1)[:, None, :], bits, n=n)
            return total
        if unit == "fgq":  # the tile's groups, each with its scale
            t = w["nz"] * (1 - 2 * w["sign"])
            return fgq_dot(codes[:, None, :], t, w["scales"], self.geometry.group_size)
        if unit == "nhot":
            step = max(1, (1 << 22) // w["present"].size)  # bound the (batch, OP, IP, T) temporary
            return np.concatenate(
                [
                    nhot_dot(codes[i : i + step, None, :], w["present"], w["sign"], w["exponent"])
                    for i in range(0, len(codes), step)
                ]
            )
        nz, sign = pack_bits(w["nz"]), pack_bits(w["sign"])  # (P, OP, words)
        if unit == "weight_bitserial":  # k-bit weight planes against binary input
            a = pack_bits(codes)[:, None, :]
            valid = np.full_like(a, ~np.uint64(0))
            planes = [ternary_binary_dot(a, valid, nz[p], np.zeros_like(nz[p])) for p in range(len(nz))]
            return np.tensordot(int_plane_weights(config.weight_bits), np.stack(planes), axes=(0, 0))
        nz, sign = nz[0], sign[0]
        if unit == "input_bitserial":
            return bitserial_dot(codes[:, None, :], config.input_bits, False, nz, sign)
        kind = config.input_kind  # ternary planes of binary / ternary / FATNN input
        if kind == InputKind.BINARY:
            a = pack_bits(codes)[:, None, :]
            return ternary_binary_dot(a, np.full_like(a, ~np.uint64(0)), nz, sign)
        a_nz, a_sign = encode_ternary(codes - 1) if kind == InputKind.TERNARY else encode_fatnn_activation(codes)
        a_nz, a_sign = pack_bits(a_nz)[:, None, :], pack_bits(a_sign)[:, None, :]
        if kind == InputKind.TERNARY:
            return ternary_dot(a_nz, a_sign, nz, sign)
        return fatnn_dot(a_nz, a_sign, nz, sign, np.int64(0))  # the bias carries sum(w)
