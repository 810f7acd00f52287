"""The lowbit model file: a versioned, checksummed container of an exported integer network.

Layout (all integers little-endian; see ``docs/model_file.md``)::

    offset 0    8 bytes   magic  b"LOWBITM\\n"
    offset 8    uint32    format version (FORMAT_VERSION)
    offset 12   uint32    header length H
    offset 16   uint64    payload length P
    offset 24   H bytes   header: UTF-8 JSON (scheme, layers, array table, metadata)
    24 + H      P bytes   payload: the arrays, each 8-byte aligned, at the offsets the header gives
    24 + H + P  32 bytes  SHA-256 of bytes 0 .. 24 + H + P - 1

Loading checks, in this order, the magic, the version, the length (truncated or trailing bytes), the
checksum (corruption), the header, the array table, and the network (shapes, value ranges, the chain of
layers). Each failure raises :class:`ModelFileError` with a message that names the problem.
NumPy only: the golden model reads these files.
"""

import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lowbit.sw.kinds import INPUTS, WEIGHTS, InputKind, WeightKind
from lowbit.sw.kinds.encodings import accumulator_range, activation_levels, nhot_term_count

__all__ = [
    "FORMAT_VERSION", "MAGIC", "ModelFileError", "LayerRecord", "LowbitModel", "validate_model",
    "save_model", "load_model", "model_to_bytes", "model_from_bytes", "write_container", "read_container",
]

MAGIC = b"LOWBITM\n"
FORMAT_VERSION = 1
_PREAMBLE = struct.Struct("<8sIIQ")
_DIGEST = 32
_MAX_HEADER = 1 << 24
_DTYPES = {"weights": ("|i1", "<f4"), "alpha_q": ("|u1",), "thresholds": ("<i4", "<i8"), "descending": ("|u1",),
           "scale": ("<f8",), "shift": ("<f8",)}


class ModelFileError(ValueError):
    """A model file (or model) that is truncated, corrupt, of another version or inconsistent."""


@dataclass
class LayerRecord:
    """One exported layer.

    ``weights``: ``int8`` ``(out, in)`` integer weights (±1 binary; -1/0/+1 ternary, FATNN, FGQ's ``t``;
    b-bit integers for ``int`` and ``nhot``), or ``float32`` for a float layer. ``input_kind``/``input_bits``
    say what the layer consumes (``uint``, ``binary``, ``ternary``, ``fatnn``, ``float``). ``output_kind`` is
    ``threshold`` (codes ``0 .. output_levels - 1`` from ``thresholds`` ``(out, output_levels - 1)`` and
    per-channel ``descending``), ``accumulator`` (the last layer: raw integer accumulators) or ``relu``
    (float layers: ``relu(z * scale + shift)``). FGQ layers carry ``alpha_q`` ``uint8`` ``(out, in/group_size)``.
    """
    in_features: int
    out_features: int
    weight_kind: str
    weight_bits: int
    input_kind: str
    input_bits: int
    output_kind: str
    weights: np.ndarray
    output_levels: int = 0
    n_terms: int = 0
    group_size: int = 0
    alpha_q: np.ndarray | None = None
    thresholds: np.ndarray | None = None
    descending: np.ndarray | None = None
    scale: np.ndarray | None = None
    shift: np.ndarray | None = None

    def effective_weights(self):
        """``int64`` ``(out, in)``: the integer each tap multiplies by in the accumulator (FGQ: ``t * alpha_q``)."""
        w = np.asarray(self.weights).astype(np.int64)
        if self.alpha_q is not None:
            w = w * np.repeat(self.alpha_q.astype(np.int64), self.group_size, axis=1)
        return w

    def accumulator_range(self):
        """Per-channel ``(lo, hi)`` of the accumulator over every input the layer accepts (integer layers)."""
        return accumulator_range(self.effective_weights(), self.input_kind, self.input_bits)

    def arrays(self):
        names = ("weights", "alpha_q", "thresholds", "descending", "scale", "shift")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}


@dataclass
class LowbitModel:
    """An exported network: ``layers`` from input to output, ``classes`` outputs, free-form ``metadata``."""
    scheme: str
    classes: int
    layers: list
    metadata: dict = field(default_factory=dict)

    @property
    def input_kind(self):
        return self.layers[0].input_kind

    @property
    def input_bits(self):
        return self.layers[0].input_bits


# --- the container ------------------------------------------------------------------------------------

def write_container(header, arrays, version=FORMAT_VERSION):
    """Bytes of a container: ``header`` (a JSON-able dict, to which the array table is added) and named arrays.

    Low level: nothing is validated, so tests can build inconsistent files with a valid checksum.
    """
    table, chunks, offset = {}, [], 0
    for name, array in arrays.items():
        array = np.ascontiguousarray(array)
        dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
        data = array.astype(dtype).tobytes()
        table[name] = {"dtype": dtype.str, "shape": list(array.shape), "offset": offset, "nbytes": len(data)}
        pad = -len(data) % 8
        chunks.append(data + b"\0" * pad)
        offset += len(data) + pad
    header = dict(header, arrays=table)
    header_bytes = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    payload = b"".join(chunks)
    body = _PREAMBLE.pack(MAGIC, version, len(header_bytes), len(payload)) + header_bytes + payload
    return body + hashlib.sha256(body).digest()


def read_container(data):
    """Check and split container bytes into ``(header, arrays)``; raises :class:`ModelFileError`."""
    data = bytes(data)
    minimum = _PREAMBLE.size + _DIGEST
    if len(data) < _PREAMBLE.size:
        raise ModelFileError(f"truncated: {len(data)} bytes, shorter than the {_PREAMBLE.size}-byte preamble "
                             f"(a lowbit model file has at least {minimum} bytes)")
    magic, version, header_len, payload_len = _PREAMBLE.unpack_from(data)
    if magic != MAGIC:
        raise ModelFileError(f"not a lowbit model file: magic {magic!r}, expected {MAGIC!r}")
    if version != FORMAT_VERSION:
        raise ModelFileError(f"unsupported format version {version}; this lowbit reads version {FORMAT_VERSION}")
    if header_len > _MAX_HEADER:
        raise ModelFileError(f"corrupt preamble: header length {header_len} exceeds {_MAX_HEADER} bytes")
    expected = _PREAMBLE.size + header_len + payload_len + _DIGEST
    if len(data) < expected:
        raise ModelFileError(f"truncated: the preamble announces {expected} bytes (header {header_len}, "
                             f"payload {payload_len}, checksum {_DIGEST}), the file has {len(data)}")
    if len(data) > expected:
        raise ModelFileError(f"{len(data) - expected} trailing bytes after the checksum "
                             f"(the preamble announces {expected} bytes)")
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    actual = hashlib.sha256(body).digest()
    if actual != digest:
        raise ModelFileError(f"checksum mismatch: the file is corrupt (SHA-256 of its contents is "
                             f"{actual.hex()[:16]}..., the file records {digest.hex()[:16]}...)")
    start = _PREAMBLE.size
    try:
        header = json.loads(data[start:start + header_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"corrupt header: not UTF-8 JSON ({error})") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"corrupt header: expected a JSON object, not {type(header).__name__}")
    payload = data[start + header_len:start + header_len + payload_len]
    table = header.get("arrays")
    if not isinstance(table, dict):
        raise ModelFileError("header has no array table ('arrays')")
    arrays = {}
    for name, entry in table.items():
        arrays[name] = _read_array(name, entry, payload)
    return header, arrays


def _read_array(name, entry, payload):
    try:
        dtype, shape, offset, nbytes = entry["dtype"], entry["shape"], entry["offset"], entry["nbytes"]
        dtype = np.dtype(dtype)
        shape = tuple(int(s) for s in shape)
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(f"array {name!r}: malformed table entry {entry!r} ({error})") from None
    if any(s < 0 for s in shape) or not isinstance(offset, int) or not isinstance(nbytes, int) or offset < 0:
        raise ModelFileError(f"array {name!r}: malformed table entry {entry!r}")
    if nbytes != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
        raise ModelFileError(f"array {name!r}: {nbytes} bytes do not hold shape {shape} of {dtype.str}")
    if offset + nbytes > len(payload):
        raise ModelFileError(f"array {name!r}: bytes {offset} .. {offset + nbytes} lie beyond the "
                             f"{len(payload)}-byte payload")
    count = int(np.prod(shape, dtype=np.int64))
    return np.frombuffer(payload, dtype=dtype, count=count, offset=offset).reshape(shape).copy()


# --- model <-> container ------------------------------------------------------------------------------

_LAYER_FIELDS = ("in_features", "out_features", "weight_kind", "weight_bits", "input_kind", "input_bits",
                 "output_kind", "output_levels", "n_terms", "group_size")


def model_to_bytes(model):
    """Validate ``model`` and return the bytes of its model file."""
    validate_model(model)
    layers, arrays = [], {}
    for index, layer in enumerate(model.layers):
        entry = {name: getattr(layer, name) for name in _LAYER_FIELDS}
        entry["arrays"] = {}
        for name, array in layer.arrays().items():
            key = f"layers.{index}.{name}"
            if name == "descending":
                array = np.asarray(array, dtype=np.uint8)
            elif name == "thresholds":
                small = array.size == 0 or (array.min() >= -2 ** 31 and array.max() < 2 ** 31)
                array = array.astype(np.int32 if small else np.int64)
            arrays[key] = array
            entry["arrays"][name] = key
        layers.append(entry)
    header = {"format": "lowbit-model", "version": FORMAT_VERSION, "scheme": model.scheme,
              "classes": model.classes, "layers": layers, "metadata": model.metadata}
    return write_container(header, arrays)


def model_from_bytes(data):
    """Parse and validate model file bytes; raises :class:`ModelFileError` naming the problem."""
    header, arrays = read_container(data)
    if header.get("format") != "lowbit-model" or header.get("version") != FORMAT_VERSION:
        raise ModelFileError(f"header names format {header.get('format')!r} version {header.get('version')!r}, "
                             f"expected 'lowbit-model' version {FORMAT_VERSION}")
    for key in ("scheme", "classes", "layers"):
        if key not in header:
            raise ModelFileError(f"header lacks {key!r}")
    if not isinstance(header["layers"], list) or not header["layers"]:
        raise ModelFileError("header 'layers' must be a non-empty list")
    layers = []
    for index, entry in enumerate(header["layers"]):
        if not isinstance(entry, dict):
            raise ModelFileError(f"layer {index}: expected a JSON object, not {entry!r}")
        missing = [name for name in _LAYER_FIELDS + ("arrays",) if name not in entry]
        if missing:
            raise ModelFileError(f"layer {index}: header lacks {', '.join(missing)}")
        kwargs = {name: entry[name] for name in _LAYER_FIELDS}
        for name, key in entry["arrays"].items():
            if name not in _DTYPES:
                raise ModelFileError(f"layer {index}: unknown array {name!r}")
            if key not in arrays:
                raise ModelFileError(f"layer {index}: array {key!r} is not in the array table")
            array = arrays[key]
            if array.dtype.str not in _DTYPES[name]:
                raise ModelFileError(f"layer {index}: {name} has dtype {array.dtype.str}, expected "
                                     f"{' or '.join(_DTYPES[name])}")
            kwargs[name] = array.astype(bool) if name == "descending" else array
        if "weights" not in kwargs:
            raise ModelFileError(f"layer {index}: no weights array")
        layers.append(LayerRecord(**kwargs))
    model = LowbitModel(header["scheme"], header["classes"], layers, header.get("metadata", {}))
    validate_model(model)
    return model


def save_model(model, path):
    """Write ``model`` to ``path`` (validated first)."""
    Path(path).write_bytes(model_to_bytes(model))


def load_model(path):
    """Read a model file; raises :class:`ModelFileError` (naming the file and the problem) or ``FileNotFoundError``."""
    data = Path(path).read_bytes()
    try:
        return model_from_bytes(data)
    except ModelFileError as error:
        raise ModelFileError(f"model file {str(path)!r}: {error}") from None


# --- validation ---------------------------------------------------------------------------------------

def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_int_field(index, name, value, low, high):
    if not _is_int(value) or not low <= value <= high:
        raise ModelFileError(f"layer {index}: {name} must be an integer from {low} to {high}, not {value!r}")


def _check_shape(index, name, array, shape):
    if tuple(array.shape) != tuple(shape):
        raise ModelFileError(f"layer {index}: {name} has shape {tuple(array.shape)}, expected {tuple(shape)}")


def _check_values(index, name, array, allowed_text, bad):
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ModelFileError(f"layer {index}: {name} must hold {allowed_text}, not {array[where]} at {where}")


def validate_model(model):
    """Check that ``model`` is a consistent network; raises :class:`ModelFileError` naming the problem."""
    if not isinstance(model.scheme, str):
        raise ModelFileError(f"scheme must be a string, not {model.scheme!r}")
    if not _is_int(model.classes) or model.classes < 2:
        raise ModelFileError(f"classes must be an integer of at least 2, not {model.classes!r}")
    if not model.layers:
        raise ModelFileError("a model needs at least one layer")
    is_float = model.layers[0].weight_kind == "float"
    for index, layer in enumerate(model.layers):
        _validate_layer(index, layer, last=index == len(model.layers) - 1)
        if (layer.weight_kind == "float") != is_float:
            raise ModelFileError(f"layer {index}: weight kind {layer.weight_kind!r} mixes float and integer layers")
        if index == 0 and layer.input_kind not in ("uint", "float"):
            raise ModelFileError(f"layer 0: input kind must be 'uint' (pixel codes) or 'float', "
                                 f"not {layer.input_kind!r}")
        if index > 0:
            prev = model.layers[index - 1]
            if layer.in_features != prev.out_features:
                raise ModelFileError(f"layer {index}: in_features {layer.in_features} does not match the "
                                     f"{prev.out_features} outputs of layer {index - 1}")
            if prev.output_kind == "threshold":
                levels = activation_levels(layer.input_kind, layer.input_bits)
                if prev.output_levels != levels:
                    raise ModelFileError(f"layer {index - 1}: emits {prev.output_levels} levels but layer {index} "
                                         f"takes {layer.input_kind} input of {levels} levels")
    last = model.layers[-1]
    if last.out_features != model.classes:
        raise ModelFileError(f"the last layer has {last.out_features} outputs, the model {model.classes} classes")


def _validate_layer(index, layer, last):
    try:
        layer.weight_kind = WeightKind.parse(layer.weight_kind, "weight kind")
        layer.input_kind = InputKind.parse(layer.input_kind, "input kind")
    except ValueError as error:
        raise ModelFileError(f"layer {index}: {error}") from None
    _check_int_field(index, "in_features", layer.in_features, 1, 1 << 20)
    _check_int_field(index, "out_features", layer.out_features, 1, 1 << 20)
    _check_int_field(index, f"weight_bits of {layer.weight_kind} weights", layer.weight_bits,
                     *WEIGHTS[layer.weight_kind].bits)
    _check_int_field(index, f"input_bits of {layer.input_kind} input", layer.input_bits,
                     *INPUTS[layer.input_kind].bits)
    is_float = layer.weight_kind == "float"
    if (layer.input_kind == "float") != is_float:
        raise ModelFileError(f"layer {index}: {layer.weight_kind} weights cannot take {layer.input_kind} input")
    out, n = layer.out_features, layer.in_features
    w = np.asarray(layer.weights)
    _check_shape(index, "weights", w, (out, n))
    if is_float:
        if w.dtype != np.float32:
            raise ModelFileError(f"layer {index}: float weights must be float32, not {w.dtype}")
        _check_values(index, "weights", w, "finite numbers", ~np.isfinite(w))
    else:
        if w.dtype != np.int8:
            raise ModelFileError(f"layer {index}: integer weights must be int8, not {w.dtype}")
        _validate_weight_values(index, layer, w.astype(np.int64))
    if layer.weight_kind == "fgq":
        _check_int_field(index, "group_size", layer.group_size, 1, n)
        if n % layer.group_size:
            raise ModelFileError(f"layer {index}: in_features {n} is not a multiple of group_size {layer.group_size}")
        if layer.alpha_q is None:
            raise ModelFileError(f"layer {index}: FGQ weights need alpha_q")
        _check_shape(index, "alpha_q", layer.alpha_q, (out, n // layer.group_size))
        if layer.alpha_q.dtype != np.uint8:
            raise ModelFileError(f"layer {index}: alpha_q must be uint8 (unsigned Q0.8), not {layer.alpha_q.dtype}")
    elif layer.alpha_q is not None:
        raise ModelFileError(f"layer {index}: {layer.weight_kind} weights have no alpha_q")
    _validate_output(index, layer, last, is_float)


def _validate_weight_values(index, layer, w):
    kind = layer.weight_kind
    if kind == "binary":
        _check_values(index, "binary weights", w, "-1 or +1", (w != -1) & (w != 1))
    elif kind in ("ternary", "fatnn", "fgq"):
        _check_values(index, f"{kind} weights", w, "-1, 0 or +1", np.abs(w) > 1)
    else:
        limit = (1 << (layer.weight_bits - 1)) - 1
        _check_values(index, f"{layer.weight_bits}-bit weights", w, f"integers in -{limit} .. {limit}",
                      np.abs(w) > limit)
        if kind == "nhot":
            _check_int_field(index, "n_terms", layer.n_terms, 1, layer.weight_bits)
            count = nhot_term_count(w, layer.weight_bits)
            _check_values(index, f"{layer.n_terms}-hot weights", w,
                          f"sums of at most {layer.n_terms} signed powers of two", count > layer.n_terms)


def _validate_output(index, layer, last, is_float):
    out = layer.out_features
    if last:
        if layer.output_kind != "accumulator":
            raise ModelFileError(f"layer {index}: the last layer must output its raw accumulator, "
                                 f"not {layer.output_kind!r}")
    elif is_float:
        if layer.output_kind != "relu":
            raise ModelFileError(f"layer {index}: a float hidden layer outputs 'relu', not {layer.output_kind!r}")
        for name in ("scale", "shift"):
            array = getattr(layer, name)
            if array is None:
                raise ModelFileError(f"layer {index}: a float hidden layer needs {name}")
            _check_shape(index, name, array, (out,))
            _check_values(index, name, array, "finite numbers", ~np.isfinite(array))
    else:
        if layer.output_kind != "threshold":
            raise ModelFileError(f"layer {index}: a hidden layer outputs 'threshold', not {layer.output_kind!r}")
        _check_int_field(index, "output_levels", layer.output_levels, 2, 256)
        t, d = layer.thresholds, layer.descending
        if t is None or d is None:
            raise ModelFileError(f"layer {index}: a hidden layer needs thresholds and descending")
        _check_shape(index, "thresholds", t, (out, layer.output_levels - 1))
        _check_shape(index, "descending", d, (out,))
        if not np.issubdtype(t.dtype, np.integer):
            raise ModelFileError(f"layer {index}: thresholds must be integers, not {t.dtype}")
        lo, hi = layer.accumulator_range()
        outside = (t < lo[:, None] - 1) | (t > hi[:, None] + 1)
        if outside.any():
            channel, level = (int(i) for i in np.argwhere(outside)[0])
            raise ModelFileError(f"layer {index}: threshold {int(t[channel, level])} of channel {channel} lies outside "
                                 f"{int(lo[channel]) - 1} .. {int(hi[channel]) + 1} (the reachable accumulator range "
                                 f"{int(lo[channel])} .. {int(hi[channel])}, one step either side)")
        step = np.diff(t.astype(np.int64), axis=1)
        unsorted = np.where(np.asarray(d, dtype=bool)[:, None], step > 0, step < 0).any(axis=1)
        if unsorted.any():
            channel = int(np.argmax(unsorted))
            order = "non-increasing (descending channel)" if d[channel] else "non-decreasing"
            raise ModelFileError(f"layer {index}: thresholds of channel {channel} are not {order}: "
                                 f"{t[channel].tolist()[:8]}")
    if last or is_float:
        if layer.thresholds is not None or layer.descending is not None:
            raise ModelFileError(f"layer {index}: a layer with output {layer.output_kind!r} has no thresholds")
