"""The lowbit model file: a versioned, checksummed container of an exported integer network.

Layout (all integers little-endian; see ``docs/model_file.md``)::

    offset 0    8 bytes   magic  b"LOWBITM\\n"
    offset 8    uint32    format version (FORMAT_VERSION)
    offset 12   uint32    header length H
    offset 16   uint64    payload length P
    offset 24   H bytes   header: UTF-8 JSON (scheme, layers, array table, metadata)
    24 + H      P bytes   payload: the arrays, each 8-byte aligned, at the offsets the header gives
    24 + H + P  32 bytes  SHA-256 of bytes 0 .. 24 + H + P - 1

Loading checks, in this order, the magic, the version, the lengths (header size; truncated or trailing
bytes), the checksum (corruption), the header (UTF-8 JSON, at most :data:`MAX_HEADER_DEPTH` levels deep),
the array table (dtypes, shapes, aligned and non-overlapping offsets inside the payload), the header's
fields and types (each layer's keys and array references), the network (kinds, integer ranges, shapes,
value ranges, the chain of layers) and finally that every array belongs to a layer. Each failure raises
:class:`ModelFileError` with a one-line message that names the field, the value and what is allowed.
NumPy only: the golden model reads these files.
"""

import hashlib
import json
import os
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lowbit.sw.kinds import INPUTS, WEIGHTS, InputKind, WeightKind
from lowbit.sw.kinds.encodings import accumulator_range, activation_levels, nhot_term_count
from lowbit.sw.model.conv import ConvShape

__all__ = [
    "FORMAT_VERSION",
    "READABLE_VERSIONS",
    "MAGIC",
    "ModelFileError",
    "LayerRecord",
    "LowbitModel",
    "validate_model",
    "save_model",
    "load_model",
    "model_to_bytes",
    "model_from_bytes",
    "write_container",
    "read_container",
]

MAGIC = b"LOWBITM\n"
#: Version 2 added convolutional layers (``kernel``, ``stride``, ``padding``, ``pool``, ``input_map``);
#: version 1 files (dense layers only) still load.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
_PREAMBLE = struct.Struct("<8sIIQ")
_DIGEST = 32
_MAX_HEADER = 1 << 24
#: Deepest nesting of JSON objects and lists the header may have (the header object itself is level 1).
MAX_HEADER_DEPTH = 64
_ALIGN = 8
_MAX_DIM = (1 << 31) - 1
#: dtypes the array table may name (each array's own rule, :data:`_DTYPES`, is checked with its layer).
_TABLE_DTYPES = ("|i1", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", "<f4", "<f8")
_ENTRY_KEYS = ("dtype", "shape", "offset", "nbytes")
_DTYPES = {
    "weights": ("|i1", "<f4"),
    "alpha_q": ("|u1",),
    "thresholds": ("<i4", "<i8"),
    "descending": ("|u1",),
    "scale": ("<f8",),
    "shift": ("<f8",),
}
_HEADER_KEYS = ("format", "version", "scheme", "classes", "layers", "metadata", "arrays")
_MAX_SCHEME = 64
_MAX_FEATURES = 1 << 20
#: Largest convolution kernel and pooling window.
_MAX_KERNEL = 16


class ModelFileError(ValueError):
    """A model file (or model) that is truncated, corrupt, of another version or inconsistent."""


def _show(value, limit=60):
    """``repr(value)`` cut to ``limit`` characters, so that a message stays one short line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class LayerRecord:
    """One exported layer.

    ``weights``: ``int8`` ``(out, in)`` integer weights (±1 binary; -1/0/+1 ternary, FATNN, FGQ's ``t``;
    b-bit integers for ``int`` and ``nhot``), or ``float32`` for a float layer. ``input_kind``/``input_bits``
    say what the layer consumes (``uint``, ``binary``, ``ternary``, ``fatnn``, ``float``). ``output_kind`` is
    ``threshold`` (codes ``0 .. output_levels - 1`` from ``thresholds`` ``(out, output_levels - 1)`` and
    per-channel ``descending``), ``accumulator`` (the last layer: raw integer accumulators) or ``relu``
    (float layers: ``relu(z * scale + shift)``). FGQ layers carry ``alpha_q`` ``uint8`` ``(out, in/group_size)``.

    A convolution (``kernel`` > 0) applies its weights, ``(out, kernel * kernel * C)`` in ``(ky, kx, c)``
    order (``in_features`` = ``kernel * kernel * C``), to every window of its ``input_map`` ``(H, W, C)``
    with ``stride`` and ``padding``, then max-pools its output codes over ``pool x pool`` (1: none); see
    :mod:`lowbit.sw.model.conv`. A dense layer has ``kernel = stride = padding = pool = 0`` and no map;
    after a convolution it takes the flattened map (HWC order).
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
    kernel: int = 0
    stride: int = 0
    padding: int = 0
    pool: int = 0
    input_map: tuple = ()

    @property
    def is_conv(self):
        return self.kernel != 0

    @property
    def conv_shape(self):
        """The :class:`lowbit.sw.model.conv.ConvShape` of a convolution."""
        return ConvShape(tuple(self.input_map), self.kernel, self.stride, self.padding, self.pool, self.out_features)

    @property
    def conv_map(self):
        """``(OH, OW)`` of a convolution's output before pooling."""
        return self.conv_shape.conv_map

    @property
    def output_map(self):
        """``(PH, PW, out)``: a convolution's output feature map after pooling."""
        return self.conv_shape.output_map

    @property
    def input_size(self):
        """Values the layer consumes per image: ``H * W * C`` of a convolution, ``in_features`` of a dense layer."""
        return int(np.prod(self.input_map)) if self.is_conv else self.in_features

    @property
    def output_size(self):
        """Values the layer emits per image: ``PH * PW * out`` of a convolution, ``out_features`` of a dense layer."""
        return int(np.prod(self.output_map)) if self.is_conv else self.out_features

    @property
    def positions(self):
        """Output positions per image (``OH * OW`` for a convolution, 1 for a dense layer): dot products per channel."""
        return self.conv_shape.positions if self.is_conv else 1

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
    """Check and split container bytes into ``(header, arrays)``; raises :class:`ModelFileError`.

    Checks the preamble (length, magic, version, lengths), the checksum, the header (UTF-8 JSON object,
    no duplicate keys, at most :data:`MAX_HEADER_DEPTH` levels deep) and the array table (each entry's
    dtype, shape and byte count, 8-byte aligned offsets inside the payload, no two arrays overlapping).
    """
    data = bytes(data)
    minimum = _PREAMBLE.size + _DIGEST
    if len(data) < _PREAMBLE.size:
        raise ModelFileError(
            f"truncated: {len(data)} bytes, shorter than the {_PREAMBLE.size}-byte preamble "
            f"(a lowbit model file has at least {minimum} bytes)"
        )
    magic, version, header_len, payload_len = _PREAMBLE.unpack_from(data)
    if magic != MAGIC:
        raise ModelFileError(f"not a lowbit model file: magic {magic!r}, expected {MAGIC!r}")
    if version not in READABLE_VERSIONS:
        raise ModelFileError(
            f"unsupported format version {version}; this lowbit reads versions {', '.join(map(str, READABLE_VERSIONS))}"
        )
    if header_len > _MAX_HEADER:
        raise ModelFileError(f"corrupt preamble: header length {header_len} exceeds {_MAX_HEADER} bytes")
    expected = _PREAMBLE.size + header_len + payload_len + _DIGEST
    if len(data) < expected:
        raise ModelFileError(
            f"truncated: the preamble announces {expected} bytes (header {header_len}, "
            f"payload {payload_len}, checksum {_DIGEST}), the file has {len(data)}"
        )
    if len(data) > expected:
        raise ModelFileError(
            f"{len(data) - expected} trailing bytes after the checksum (the preamble announces {expected} bytes)"
        )
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    actual = hashlib.sha256(body).digest()
    if actual != digest:
        raise ModelFileError(
            f"checksum mismatch: the file is corrupt (SHA-256 of its contents is "
            f"{actual.hex()[:16]}..., the file records {digest.hex()[:16]}...)"
        )
    start = _PREAMBLE.size
    header = _parse_header(data[start : start + header_len])
    payload = data[start + header_len : start + header_len + payload_len]
    if "arrays" not in header:
        raise ModelFileError("header has no array table ('arrays')")
    table = header["arrays"]
    if not isinstance(table, dict):
        raise ModelFileError(f"header 'arrays' (the array table) must be a JSON object, not {_show(table)}")
    arrays, spans = {}, []
    for name, entry in table.items():
        arrays[name], offset, nbytes = _read_array(name, entry, payload)
        if nbytes:
            spans.append((offset, offset + nbytes, name))
    spans.sort()
    for (start_a, end_a, name_a), (start_b, end_b, name_b) in zip(spans, spans[1:]):
        if start_b < end_a:
            raise ModelFileError(
                f"array {_show(name_b)}: bytes {start_b} .. {end_b} overlap array {_show(name_a)} "
                f"(bytes {start_a} .. {end_a}); arrays may not share bytes"
            )
    return header, arrays


def _unique_keys(pairs):
    """``object_pairs_hook`` of the header: a JSON object, refusing a key given twice."""
    result = {}
    for key, value in pairs:
        if key in result:
            raise ModelFileError(f"corrupt header: key {_show(key)} appears twice in one JSON object")
        result[key] = value
    return result


def _refuse_constant(name):
    raise ModelFileError(f"corrupt header: {name} is not a JSON number")


def _finite_float(text):
    value = float(text)
    if not np.isfinite(value):
        raise ModelFileError(f"corrupt header: number {_show(text)} is out of range")
    return value


def _parse_header(raw):
    """The header bytes as a JSON object (``dict``), at most :data:`MAX_HEADER_DEPTH` levels deep."""
    deep = f"corrupt header: JSON nested more than {MAX_HEADER_DEPTH} levels deep"
    try:
        header = json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_unique_keys,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
        )
    except ModelFileError:
        raise
    except RecursionError:
        raise ModelFileError(deep) from None
    except ValueError as error:  # UnicodeDecodeError, JSONDecodeError, an integer of too many digits
        raise ModelFileError(f"corrupt header: not UTF-8 JSON ({error})") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"corrupt header: expected a JSON object, not {type(header).__name__}")
    stack = [(header, 1)]
    while stack:  # iterative: the depth bound must hold before anything recurses into the header
        value, depth = stack.pop()
        if depth > MAX_HEADER_DEPTH:
            raise ModelFileError(deep)
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return header


def _read_array(name, entry, payload):
    """One array of the table: ``(array, offset, nbytes)``."""
    where = f"array {_show(name)}"
    if not isinstance(entry, dict):
        raise ModelFileError(f"{where}: the table entry must be a JSON object, not {_show(entry)}")
    missing = [key for key in _ENTRY_KEYS if key not in entry]
    unknown = [key for key in entry if key not in _ENTRY_KEYS]
    if missing or unknown:
        raise ModelFileError(
            f"{where}: the table entry has keys {', '.join(map(_show, entry)) or 'none'}, "
            f"expected exactly {', '.join(_ENTRY_KEYS)}"
        )
    dtype, shape, offset, nbytes = (entry[key] for key in _ENTRY_KEYS)
    if dtype not in _TABLE_DTYPES or not isinstance(dtype, str):
        raise ModelFileError(f"{where}: dtype must be one of {', '.join(_TABLE_DTYPES)}, not {_show(dtype)}")
    if not isinstance(shape, list) or len(shape) > 2 or not all(_is_plain_int(s) and 0 <= s <= _MAX_DIM for s in shape):
        raise ModelFileError(
            f"{where}: shape must be a list of at most 2 integers from 0 to {_MAX_DIM}, not {_show(shape)}"
        )
    for key, value in (("offset", offset), ("nbytes", nbytes)):
        if not _is_plain_int(value) or value < 0:
            raise ModelFileError(f"{where}: {key} must be a non-negative integer, not {_show(value)}")
    dtype = np.dtype(dtype)
    count = 1
    for s in shape:
        count *= s
    if nbytes != count * dtype.itemsize:
        raise ModelFileError(
            f"{where}: {nbytes} bytes do not hold shape {tuple(shape)} of {dtype.str} ({count * dtype.itemsize} bytes)"
        )
    if offset + nbytes > len(payload):
        raise ModelFileError(f"{where}: bytes {offset} .. {offset + nbytes} lie beyond the {len(payload)}-byte payload")
    if offset % _ALIGN:
        raise ModelFileError(
            f"{where}: offset {offset} is not a multiple of {_ALIGN} (arrays are {_ALIGN}-byte aligned)"
        )
    array = np.frombuffer(payload, dtype=dtype, count=count, offset=offset).reshape(shape).copy()
    return array, offset, nbytes


# --- model <-> container ------------------------------------------------------------------------------

_LAYER_FIELDS = (
    "in_features",
    "out_features",
    "weight_kind",
    "weight_bits",
    "input_kind",
    "input_bits",
    "output_kind",
    "output_levels",
    "n_terms",
    "group_size",
)
#: Version 2's fields of a convolution (0 and ``[]`` in a dense layer; absent from version 1 files).
_CONV_FIELDS = ("kernel", "stride", "padding", "pool", "input_map")
_LAYER_STRINGS = {
    "weight_kind": tuple(WeightKind),
    "input_kind": tuple(InputKind),
    "output_kind": ("threshold", "accumulator", "relu"),
}


def model_to_bytes(model):
    """Validate ``model`` and return the bytes of its model file."""
    validate_model(model)
    layers, arrays = [], {}
    for index, layer in enumerate(model.layers):
        entry = {name: getattr(layer, name) for name in _LAYER_FIELDS}
        entry.update({name: getattr(layer, name) for name in _CONV_FIELDS[:-1]})
        entry["input_map"] = [int(size) for size in layer.input_map]
        entry["arrays"] = {}
        for name, array in layer.arrays().items():
            key = f"layers.{index}.{name}"
            if name == "descending":
                array = np.asarray(array, dtype=np.uint8)
            elif name == "thresholds":
                small = array.size == 0 or (array.min() >= -(2**31) and array.max() < 2**31)
                array = array.astype(np.int32 if small else np.int64)
            arrays[key] = array
            entry["arrays"][name] = key
        layers.append(entry)
    header = {
        "format": "lowbit-model",
        "version": FORMAT_VERSION,
        "scheme": model.scheme,
        "classes": model.classes,
        "layers": layers,
        "metadata": model.metadata,
    }
    return write_container(header, arrays)


def model_from_bytes(data):
    """Parse and validate model file bytes; raises :class:`ModelFileError` naming the problem."""
    header, arrays = read_container(data)
    fmt, version = header.get("format"), header.get("version")
    preamble_version = int.from_bytes(bytes(data)[8:12], "little")
    if fmt != "lowbit-model" or not _is_plain_int(version) or version != preamble_version:
        raise ModelFileError(
            f"header names format {_show(fmt)} version {_show(version)}, "
            f"expected 'lowbit-model' version {preamble_version} (the preamble's)"
        )
    for key in ("scheme", "classes", "layers"):
        if key not in header:
            raise ModelFileError(f"header lacks {key!r}")
    unknown = [key for key in header if key not in _HEADER_KEYS]
    if unknown:
        raise ModelFileError(
            f"header has unknown key {_show(unknown[0])} (a version {FORMAT_VERSION} header has "
            f"{', '.join(_HEADER_KEYS)}; free-form data belongs in 'metadata')"
        )
    metadata = header.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ModelFileError(f"header 'metadata' must be a JSON object, not {_show(metadata)}")
    if not isinstance(header["layers"], list) or not header["layers"]:
        raise ModelFileError(f"header 'layers' must be a non-empty list, not {_show(header['layers'])}")
    layers, used = [], {}
    for index, entry in enumerate(header["layers"]):
        layers.append(_layer_from_header(index, entry, arrays, used, version))
    model = LowbitModel(header["scheme"], header["classes"], layers, metadata)
    validate_model(model)
    unused = [key for key in arrays if key not in used]
    if unused:
        raise ModelFileError(f"array {_show(unused[0])} of the array table belongs to no layer")
    return model


def _layer_from_header(index, entry, arrays, used, version=FORMAT_VERSION):
    """The :class:`LayerRecord` of one layer's header entry (types and arrays checked; values later)."""
    if not isinstance(entry, dict):
        raise ModelFileError(f"layer {index}: expected a JSON object, not {_show(entry)}")
    fields = _LAYER_FIELDS + (_CONV_FIELDS if version >= 2 else ())
    missing = [name for name in fields + ("arrays",) if name not in entry]
    if missing:
        raise ModelFileError(f"layer {index}: header lacks {', '.join(missing)}")
    unknown = [name for name in entry if name not in fields + ("arrays",)]
    if unknown:
        raise ModelFileError(
            f"layer {index}: unknown key {_show(unknown[0])} (a version {version} layer has "
            f"{', '.join(fields)} and arrays)"
        )
    shape = entry.get("input_map", [])
    if not isinstance(shape, list):
        raise ModelFileError(
            f"layer {index}: input_map must be a list [height, width, channels] or [], not {_show(shape)}"
        )
    for name, allowed in _LAYER_STRINGS.items():
        if not isinstance(entry[name], str):
            raise ModelFileError(f"layer {index}: {name} must be one of {', '.join(allowed)}, not {_show(entry[name])}")
    kwargs = {name: entry[name] for name in fields}
    kwargs["input_map"] = tuple(shape)
    refs = entry["arrays"]
    if not isinstance(refs, dict):
        raise ModelFileError(
            f"layer {index}: arrays must be a JSON object mapping array names "
            f"({', '.join(_DTYPES)}) to keys of the array table, not {_show(refs)}"
        )
    for name, key in refs.items():
        if name not in _DTYPES:
            raise ModelFileError(f"layer {index}: unknown array {_show(name)} (expected {', '.join(_DTYPES)})")
        if not isinstance(key, str):
            raise ModelFileError(
                f"layer {index}: array {name} must name a key of the array table (a string), not {_show(key)}"
            )
        if key not in arrays:
            raise ModelFileError(f"layer {index}: array {_show(key)} is not in the array table")
        if key in used:
            raise ModelFileError(
                f"layer {index}: array {_show(key)} is already {used[key]}; each array belongs to one layer"
            )
        used[key] = f"layer {index}'s {name}"
        array = arrays[key]
        if array.dtype.str not in _DTYPES[name]:
            raise ModelFileError(
                f"layer {index}: {name} has dtype {array.dtype.str}, expected {' or '.join(_DTYPES[name])}"
            )
        if name == "descending":
            _check_values(index, "descending", array, "0 or 1", array > 1)
            array = array.astype(bool)
        kwargs[name] = array
    if "weights" not in kwargs:
        raise ModelFileError(f"layer {index}: no weights array")
    return LayerRecord(**kwargs)


def save_model(model, path):
    """Write ``model`` to ``path`` (validated first)."""
    Path(path).write_bytes(model_to_bytes(model))


def load_model(path):
    """Read a model file; raises :class:`ModelFileError` naming the file and the problem, or
    ``FileNotFoundError`` (naming the file) when there is no such file."""
    name = str(path)
    try:
        mode = os.stat(path).st_mode
        # stat first: opening a pipe would wait for a writer, reading a device might never end
        data = None
        if stat.S_ISREG(mode):
            with open(path, "rb") as file:
                data = file.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"model file {name!r}: no such file") from None
    except (OSError, ValueError) as error:  # ValueError: a path with a NUL character
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise ModelFileError(f"model file {name!r}: cannot be read ({reason})") from None
    if data is None:
        what = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise ModelFileError(f"model file {name!r}: is {what}, not a lowbit model file")
    try:
        return model_from_bytes(data)
    except ModelFileError as error:
        raise ModelFileError(f"model file {name!r}: {error}") from None


# --- validation ---------------------------------------------------------------------------------------


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_plain_int(value):
    """A JSON integer: a Python ``int`` (not ``bool``)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int_field(index, name, value, low, high):
    if not _is_int(value) or not low <= value <= high:
        raise ModelFileError(f"layer {index}: {name} must be an integer from {low} to {high}, not {_show(value)}")


def _check_shape(index, name, array, shape):
    if tuple(array.shape) != tuple(shape):
        raise ModelFileError(f"layer {index}: {name} has shape {tuple(array.shape)}, expected {tuple(shape)}")


def _check_values(index, name, array, allowed_text, bad):
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ModelFileError(f"layer {index}: {name} must hold {allowed_text}, not {array[where]} at {where}")


def validate_model(model):
    """Check that ``model`` is a consistent network; raises :class:`ModelFileError` naming the problem."""
    scheme = model.scheme
    if not isinstance(scheme, str) or not 1 <= len(scheme) <= _MAX_SCHEME or not scheme.isprintable():
        raise ModelFileError(f"scheme must be a string of 1 to {_MAX_SCHEME} printable characters, not {_show(scheme)}")
    if not _is_int(model.classes) or not 2 <= model.classes <= _MAX_FEATURES:
        raise ModelFileError(f"classes must be an integer from 2 to {_MAX_FEATURES}, not {_show(model.classes)}")
    if not isinstance(model.metadata, dict):
        raise ModelFileError(f"metadata must be a dict (a JSON object), not {_show(model.metadata)}")
    if not model.layers:
        raise ModelFileError("a model needs at least one layer")
    is_float = model.layers[0].weight_kind == "float"
    for index, layer in enumerate(model.layers):
        _validate_layer(index, layer, last=index == len(model.layers) - 1)
        if (layer.weight_kind == "float") != is_float:
            raise ModelFileError(f"layer {index}: weight kind {layer.weight_kind!r} mixes float and integer layers")
        if index == 0 and layer.input_kind not in ("uint", "float"):
            raise ModelFileError(
                f"layer 0: input kind must be 'uint' (pixel codes) or 'float', not {layer.input_kind!r}"
            )
        if index > 0:
            prev = model.layers[index - 1]
            if layer.is_conv and not prev.is_conv:
                raise ModelFileError(
                    f"layer {index}: a convolution follows the input or another convolution, not a dense layer"
                )
            if layer.is_conv and tuple(layer.input_map) != prev.output_map:
                raise ModelFileError(
                    f"layer {index}: input_map {list(layer.input_map)} does not match the "
                    f"{list(prev.output_map)} output map (height, width, channels) of layer {index - 1}"
                )
            if not layer.is_conv and layer.in_features != prev.output_size:
                raise ModelFileError(
                    f"layer {index}: in_features {layer.in_features} does not match the "
                    f"{prev.output_size} outputs of layer {index - 1}"
                )
            if prev.output_kind == "threshold":
                levels = activation_levels(layer.input_kind, layer.input_bits)
                if prev.output_levels != levels:
                    raise ModelFileError(
                        f"layer {index - 1}: emits {prev.output_levels} levels but layer {index} "
                        f"takes {layer.input_kind} input of {levels} levels"
                    )
    last = model.layers[-1]
    if last.out_features != model.classes:
        raise ModelFileError(f"the last layer has {last.out_features} outputs, the model {model.classes} classes")


def _validate_layer(index, layer, last):
    try:
        layer.weight_kind = WeightKind.parse(layer.weight_kind, "weight kind")
        layer.input_kind = InputKind.parse(layer.input_kind, "input kind")
    except ValueError as error:
        raise ModelFileError(f"layer {index}: {error}") from None
    _check_int_field(index, "in_features", layer.in_features, 1, _MAX_FEATURES)
    _check_int_field(index, "out_features", layer.out_features, 1, _MAX_FEATURES)
    _validate_geometry(index, layer, last)
    _check_int_field(
        index, f"weight_bits of {layer.weight_kind} weights", layer.weight_bits, *WEIGHTS[layer.weight_kind].bits
    )
    _check_int_field(index, f"input_bits of {layer.input_kind} input", layer.input_bits, *INPUTS[layer.input_kind].bits)
    for name in ("n_terms", "group_size"):
        value = getattr(layer, name)
        if name not in WEIGHTS[layer.weight_kind].fields and (not _is_int(value) or value != 0):
            owners = " and ".join(str(kind) for kind, info in WEIGHTS.items() if name in info.fields)
            raise ModelFileError(
                f"layer {index}: {name} must be 0 for {layer.weight_kind} weights (only {owners} "
                f"weights have {name}), not {_show(value)}"
            )
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


def _validate_geometry(index, layer, last):
    """A convolution's kernel, stride, padding, pooling and input map; a dense layer's zeros."""
    _check_int_field(index, "kernel", layer.kernel, 0, _MAX_KERNEL)
    if not layer.is_conv:
        for name in _CONV_FIELDS[1:-1]:
            if not _is_int(getattr(layer, name)) or getattr(layer, name) != 0:
                raise ModelFileError(
                    f"layer {index}: {name} must be 0 in a dense layer (kernel 0), not {_show(getattr(layer, name))}"
                )
        if tuple(layer.input_map) != ():
            raise ModelFileError(
                f"layer {index}: a dense layer (kernel 0) has input_map [], not {_show(layer.input_map)}"
            )
        return
    if last:
        raise ModelFileError(f"layer {index}: the last layer must be dense (the classifier), not a convolution")
    _check_int_field(index, "stride", layer.stride, 1, layer.kernel)
    _check_int_field(index, "padding", layer.padding, 0, layer.kernel - 1)
    _check_int_field(index, "pool", layer.pool, 1, _MAX_KERNEL)
    shape = tuple(layer.input_map)
    if len(shape) != 3 or not all(_is_int(size) and 1 <= size <= _MAX_FEATURES for size in shape):
        raise ModelFileError(
            f"layer {index}: input_map must be [height, width, channels] of integers from 1 to {_MAX_FEATURES}, "
            f"not {_show(list(shape))}"
        )
    if int(np.prod(shape)) > _MAX_FEATURES:
        raise ModelFileError(f"layer {index}: input_map {list(shape)} holds more than {_MAX_FEATURES} values")
    taps = layer.kernel * layer.kernel * shape[2]
    if layer.in_features != taps:
        raise ModelFileError(
            f"layer {index}: in_features {layer.in_features} of a {layer.kernel}x{layer.kernel} convolution over "
            f"{shape[2]} channels must be {taps} (kernel * kernel * channels)"
        )
    if min(layer.conv_map) < 1:
        raise ModelFileError(
            f"layer {index}: a {layer.kernel}x{layer.kernel} kernel with padding {layer.padding} does not fit "
            f"the {shape[0]}x{shape[1]} input map"
        )
    if min(layer.output_map[:2]) < 1:
        raise ModelFileError(
            f"layer {index}: {layer.pool}x{layer.pool} pooling of the {layer.conv_map[0]}x{layer.conv_map[1]} "
            "output map leaves nothing"
        )


def _validate_weight_values(index, layer, w):
    kind = layer.weight_kind
    if kind == "binary":
        _check_values(index, "binary weights", w, "-1 or +1", (w != -1) & (w != 1))
    elif kind in ("ternary", "fatnn", "fgq"):
        _check_values(index, f"{kind} weights", w, "-1, 0 or +1", np.abs(w) > 1)
    else:
        limit = (1 << (layer.weight_bits - 1)) - 1
        _check_values(
            index, f"{layer.weight_bits}-bit weights", w, f"integers in -{limit} .. {limit}", np.abs(w) > limit
        )
        if kind == "nhot":
            _check_int_field(index, "n_terms", layer.n_terms, 1, layer.weight_bits)
            count = nhot_term_count(w, layer.weight_bits)
            _check_values(
                index,
                f"{layer.n_terms}-hot weights",
                w,
                f"sums of at most {layer.n_terms} signed powers of two",
                count > layer.n_terms,
            )


def _validate_output(index, layer, last, is_float):
    out = layer.out_features
    if last:
        if layer.output_kind != "accumulator":
            raise ModelFileError(
                f"layer {index}: the last layer must output its raw accumulator, not {_show(layer.output_kind)}"
            )
    elif is_float:
        if layer.output_kind != "relu":
            raise ModelFileError(f"layer {index}: a float hidden layer outputs 'relu', not {_show(layer.output_kind)}")
        for name in ("scale", "shift"):
            array = getattr(layer, name)
            if array is None:
                raise ModelFileError(f"layer {index}: a float hidden layer needs {name}")
            _check_shape(index, name, array, (out,))
            if not np.issubdtype(np.asarray(array).dtype, np.floating):
                raise ModelFileError(f"layer {index}: {name} must be float64, not {np.asarray(array).dtype}")
            _check_values(index, name, array, "finite numbers", ~np.isfinite(array))
    else:
        if layer.output_kind != "threshold":
            raise ModelFileError(f"layer {index}: a hidden layer outputs 'threshold', not {_show(layer.output_kind)}")
        _check_int_field(index, "output_levels", layer.output_levels, 2, 256)
        t, d = layer.thresholds, layer.descending
        if t is None or d is None:
            raise ModelFileError(f"layer {index}: a hidden layer needs thresholds and descending")
        _check_shape(index, "thresholds", t, (out, layer.output_levels - 1))
        _check_shape(index, "descending", d, (out,))
        if not np.issubdtype(t.dtype, np.integer):
            raise ModelFileError(f"layer {index}: thresholds must be integers, not {t.dtype}")
        d = np.asarray(d)
        _check_values(index, "descending", d, "0 or 1", (d != 0) & (d != 1))
        lo, hi = layer.accumulator_range()
        outside = (t < lo[:, None] - 1) | (t > hi[:, None] + 1)
        if outside.any():
            channel, level = (int(i) for i in np.argwhere(outside)[0])
            raise ModelFileError(
                f"layer {index}: threshold {int(t[channel, level])} of channel {channel} lies outside "
                f"{int(lo[channel]) - 1} .. {int(hi[channel]) + 1} (the reachable accumulator range "
                f"{int(lo[channel])} .. {int(hi[channel])}, one step either side)"
            )
        step = np.diff(t.astype(np.int64), axis=1)
        unsorted = np.where(d.astype(bool)[:, None], step > 0, step < 0).any(axis=1)
        if unsorted.any():
            channel = int(np.argmax(unsorted))
            order = "non-increasing (descending channel)" if d[channel] else "non-decreasing"
            raise ModelFileError(
                f"layer {index}: thresholds of channel {channel} are not {order}: {t[channel].tolist()[:8]}"
            )
    if last or is_float:
        if layer.thresholds is not None or layer.descending is not None:
            raise ModelFileError(f"layer {index}: a layer with output {layer.output_kind!r} has no thresholds")
        if not _is_int(layer.output_levels) or layer.output_levels != 0:
            raise ModelFileError(
                f"layer {index}: output_levels must be 0 for a layer with output "
                f"{layer.output_kind!r} (only 'threshold' layers emit codes), "
                f"not {_show(layer.output_levels)}"
            )
    if layer.output_kind != "relu":
        for name in ("scale", "shift"):
            if getattr(layer, name) is not None:
                raise ModelFileError(
                    f"layer {index}: a layer with output {layer.output_kind!r} has no {name} (only 'relu' layers do)"
                )
