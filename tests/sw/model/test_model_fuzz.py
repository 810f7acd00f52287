"""Corrupted model files, generated from fixed seeds: every one is refused with one clear line, or accepted
and valid. Never a traceback.

Three small valid models (integer kinds of every family, and a float model) are the bases. Variants are
(a) truncations, (b) random byte flips and (c) containers re-signed with a valid checksum around a mutated
header, array table, array contents or raw header text, so that the checks behind the checksum run. Each
variant goes through :func:`model_from_bytes` and through ``lowbit report`` (in process). A failure names
the variant (base, kind of mutation, seed, index) so that it can be replayed.
"""

import copy
import hashlib
import json
import struct
import time

import numpy as np
import pytest

from lowbit.sw.cli import main
from lowbit.sw.golden import GoldenNetwork
from lowbit.sw.kinds import INPUTS, WEIGHTS, InputKind, WeightKind
from lowbit.sw.kinds.encodings import nhot_nearest
from lowbit.sw.model.file import (
    FORMAT_VERSION,
    MAGIC,
    LayerRecord,
    LowbitModel,
    ModelFileError,
    model_from_bytes,
    model_to_bytes,
    read_container,
    validate_model,
    write_container,
)

SEED = 20240611
PREFIX = "lowbit report: error: "


# --- the valid bases ----------------------------------------------------------------------------------


def _thresholds(layer, levels, rng, descending):
    lo, hi = layer.accumulator_range()
    t = np.sort(rng.integers(lo[:, None] - 1, hi[:, None] + 2, (layer.out_features, levels - 1)), axis=1)
    t[descending] = t[descending, ::-1]
    return t


def mixed_model():
    """FGQ (uint8 in) -> 2-hot (uint4 in) -> ternary (ternary in) -> 10."""
    rng = np.random.default_rng(0)
    l0 = LayerRecord(
        64,
        8,
        "fgq",
        2,
        "uint",
        8,
        "threshold",
        rng.integers(-1, 2, (8, 64)).astype(np.int8),
        output_levels=16,
        group_size=4,
        alpha_q=rng.integers(0, 256, (8, 16)).astype(np.uint8),
    )
    l0.descending = rng.random(8) < 0.5
    l0.thresholds = _thresholds(l0, 16, rng, l0.descending)
    l1 = LayerRecord(
        8,
        6,
        "nhot",
        8,
        "uint",
        4,
        "threshold",
        nhot_nearest(rng.integers(-127, 128, (6, 8)), 2, 8).astype(np.int8),
        output_levels=3,
        n_terms=2,
    )
    l1.descending = np.array([False, True, False, True, False, False])
    l1.thresholds = _thresholds(l1, 3, rng, l1.descending)
    l2 = LayerRecord(6, 10, "ternary", 2, "ternary", 2, "accumulator", rng.integers(-1, 2, (10, 6)).astype(np.int8))
    return LowbitModel("mixed", 10, [l0, l1, l2], {"note": "fuzz base", "seed": 0})


def popcount_model():
    """Binary (uint2 in) -> FATNN (FATNN in) -> 4-bit int (binary in) -> 10."""
    rng = np.random.default_rng(1)
    l0 = LayerRecord(
        64, 12, "binary", 1, "uint", 2, "threshold", rng.choice([-1, 1], (12, 64)).astype(np.int8), output_levels=3
    )
    l0.descending = rng.random(12) < 0.3
    l0.thresholds = _thresholds(l0, 3, rng, l0.descending)
    l1 = LayerRecord(
        12, 8, "fatnn", 2, "fatnn", 2, "threshold", rng.integers(-1, 2, (8, 12)).astype(np.int8), output_levels=2
    )
    l1.descending = rng.random(8) < 0.3
    l1.thresholds = _thresholds(l1, 2, rng, l1.descending)
    l2 = LayerRecord(8, 10, "int", 4, "binary", 1, "accumulator", rng.integers(-7, 8, (10, 8)).astype(np.int8))
    return LowbitModel("popcount", 10, [l0, l1, l2], {"nested": {"list": [1, 2.5, None, "x"]}})


def float_model():
    """Float 64 -> 16 (relu) -> 10."""
    rng = np.random.default_rng(2)
    l0 = LayerRecord(
        64,
        16,
        "float",
        32,
        "float",
        32,
        "relu",
        rng.normal(size=(16, 64)).astype(np.float32),
        scale=rng.normal(size=16),
        shift=rng.normal(size=16),
    )
    l1 = LayerRecord(16, 10, "float", 32, "float", 32, "accumulator", rng.normal(size=(10, 16)).astype(np.float32))
    return LowbitModel("fp32", 10, [l0, l1])


BASES = {"mixed": mixed_model, "popcount": popcount_model, "float": float_model}


@pytest.fixture(scope="module")
def bases():
    return {name: model_to_bytes(build()) for name, build in BASES.items()}


# --- building variants --------------------------------------------------------------------------------


def sign(header_bytes, payload, version=FORMAT_VERSION, header_len=None, payload_len=None):
    """A container around raw header bytes and a payload, with a valid checksum."""
    header_len = len(header_bytes) if header_len is None else header_len
    payload_len = len(payload) if payload_len is None else payload_len
    body = struct.pack("<8sIIQ", MAGIC, version, header_len, payload_len) + header_bytes + payload
    return body + hashlib.sha256(body).digest()


def split(data):
    """``(header dict with its table, payload bytes)`` of valid container bytes."""
    header_len, payload_len = struct.unpack_from("<IQ", data, 12)
    header = json.loads(data[24 : 24 + header_len])
    return header, data[24 + header_len : 24 + header_len + payload_len]


BAD_VALUES = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2,
    3,
    4,
    7,
    8,
    9,
    15,
    16,
    17,
    31,
    32,
    33,
    255,
    256,
    257,
    1 << 20,
    (1 << 20) + 1,
    2**31,
    2**63,
    -(2**63),
    10**30,
    0.5,
    1.0,
    -0.0,
    1e300,
    "",
    "3",
    "x" * 300,
    "binary",
    "ternary",
    "fatnn",
    "fgq",
    "int",
    "nhot",
    "float",
    "uint",
    "threshold",
    "accumulator",
    "relu",
    "layers.0.weights",
    [],
    [1],
    [2, 3],
    [[1]],
    {},
    {"a": 1},
    "\n",
    "\x00",
]
KIND_NAMES = [str(k) for k in WeightKind] + [str(k) for k in InputKind] + ["threshold", "accumulator", "relu"]


def _sites(value, path=()):
    """Every (path) inside a JSON value: the places a mutation can touch."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield path + (key,)
            yield from _sites(child, path + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield path + (index,)
            yield from _sites(child, path + (index,))


def _get(value, path):
    for key in path:
        value = value[key]
    return value


def mutate_value(rng, old):
    """A replacement for a JSON value: a bad value, a kind name, or a nearby/far integer."""
    choice = rng.integers(0, 4)
    if choice == 0 and isinstance(old, int) and not isinstance(old, bool):
        return int(old + rng.choice([-9, -8, -2, -1, 1, 2, 7, 8, 64, 1 << 16, -old - 1, old]))
    if choice == 1:
        return str(rng.choice(KIND_NAMES))
    return copy.deepcopy(BAD_VALUES[rng.integers(0, len(BAD_VALUES))])


def mutate_header(rng, header, table_too):
    """Mutate one random place of ``header`` in place (delete, replace, add a key, swap with a sibling)."""
    sites = [s for s in _sites(header) if table_too or s[0] != "arrays"]
    # weight the layers' fields and the table, where the checks are
    focus = [s for s in sites if s[0] in ("layers", "arrays")]
    pool = focus if focus and rng.random() < 0.8 else sites
    path = pool[rng.integers(0, len(pool))]
    parent, key = _get(header, path[:-1]), path[-1]
    op = rng.integers(0, 10)
    if op == 0:
        del parent[key]
        return f"delete {path}"
    if op == 1 and isinstance(parent, dict):
        parent["extra"] = mutate_value(rng, None)
        return f"add key extra to {path[:-1]}"
    if op == 2 and isinstance(parent, list) and len(parent) > 1:
        other = int(rng.integers(0, len(parent)))
        parent[key], parent[other] = parent[other], parent[key]
        return f"swap {path} with {other}"
    if op == 3 and isinstance(parent[key], (dict, list)) and isinstance(parent, dict):
        parent[key] = copy.deepcopy(parent[key])
        if isinstance(parent[key], list):
            parent[key].append(mutate_value(rng, None))
            return f"append to {path}"
    parent[key] = mutate_value(rng, parent[key])
    return f"set {path} = {parent[key]!r:.40}"


def retype_layer(rng, header):
    """Give one layer another weight or input kind with a bit width in that kind's range (and, maybe, the
    fields n-hot and FGQ need), so that the checks of weight values, kinds and the chain are reached."""
    index = int(rng.integers(0, len(header["layers"])))
    layer = header["layers"][index]
    if rng.random() < 0.5:
        kind = rng.choice(list(WEIGHTS))
        layer["weight_kind"], layer["weight_bits"] = str(kind), int(rng.integers(*WEIGHTS[kind].bits, endpoint=True))
        layer["n_terms"] = int(rng.integers(1, layer["weight_bits"] + 1)) if "n_terms" in WEIGHTS[kind].fields else 0
        layer["group_size"] = int(rng.choice([1, 2, 4, 8])) if "group_size" in WEIGHTS[kind].fields else 0
        return f"layer {index} weights as {kind} {layer['weight_bits']}"
    kind = rng.choice(list(INPUTS))
    layer["input_kind"], layer["input_bits"] = str(kind), int(rng.integers(*INPUTS[kind].bits, endpoint=True))
    return f"layer {index} input as {kind} {layer['input_bits']}"


def mutate_arrays(rng, arrays):
    """Mutate one array's contents, dtype or shape (the table follows: write_container rebuilds it)."""
    key = sorted(arrays)[rng.integers(0, len(arrays))]
    a = arrays[key].copy()
    op = rng.integers(0, 9)
    if op == 0 and a.size:
        info = np.iinfo(a.dtype) if np.issubdtype(a.dtype, np.integer) else None
        value = rng.choice([info.min, info.max, 2, -2, 5]) if info else rng.choice([np.nan, np.inf, -np.inf, 1e30])
        a.flat[rng.integers(0, a.size)] = value
        what = f"set an element of {key} to {value}"
    elif op == 1:
        a = a[..., ::-1].copy()
        what = f"reverse {key}"
    elif op == 2:
        dtype = rng.choice(["int8", "uint8", "int16", "int32", "int64", "float32", "float64", "uint16"])
        with np.errstate(invalid="ignore"):  # NaN and inf as integers: whatever the cast gives
            a = a.astype(dtype)
        what = f"{key} as {dtype}"
    elif op == 3:
        a = a.T.copy() if a.ndim == 2 else a[:, None]
        what = f"transpose {key}"
    elif op == 4:
        a = a[:-1] if len(a) > 1 else a[:0]
        what = f"drop a row of {key}"
    elif op == 5:
        a = np.concatenate([a, a[:1]])
        what = f"repeat a row of {key}"
    elif op == 6:
        a = a.reshape(-1)
        what = f"flatten {key}"
    elif op == 7 and key.endswith("descending"):
        a[:] = rng.integers(0, 256, a.shape)
        what = f"random bytes in {key}"
    else:
        a = np.zeros_like(a)
        what = f"zero {key}"
    arrays[key] = a
    return what


def mutate_table(rng, header, payload):
    """Mutate the array table directly: offsets, shapes, dtypes, byte counts, entries."""
    table = header["arrays"]
    key = sorted(table)[rng.integers(0, len(table))]
    entry = table[key]
    op = rng.integers(0, 9)
    if op == 0:
        entry["offset"] += int(rng.choice([-8, -1, 1, 2, 4, 8, 16, len(payload)]))
        what = f"offset of {key} moved"
    elif op == 1:
        other = table[sorted(table)[rng.integers(0, len(table))]]
        entry["offset"] = other["offset"]
        what = f"offset of {key} onto another array"
    elif op == 2:
        shape = entry["shape"]
        entry["shape"] = shape[::-1] if rng.random() < 0.5 else [int(np.prod(shape))]
        what = f"shape of {key} reshaped to {entry['shape']}"
    elif op == 3:
        entry["shape"] = [s + int(rng.choice([-1, 1])) for s in entry["shape"]]
        entry["nbytes"] = int(np.prod(entry["shape"])) * np.dtype(entry["dtype"]).itemsize
        what = f"shape of {key} to {entry['shape']} (nbytes following)"
    elif op == 4:
        dtype = str(
            rng.choice(
                ["|i1", "|u1", "<i2", "<i4", "<i8", "<f4", "<f8", ">i4", "O", "V8", "U2", "|b1", "<i4,<i4", "float64"]
            )
        )
        entry["dtype"] = dtype
        what = f"dtype of {key} to {dtype}"
    elif op == 5:
        entry["nbytes"] = int(entry["nbytes"] + rng.choice([-1, 1, 8, -8]))
        what = f"nbytes of {key} changed"
    elif op == 6:
        del table[key]
        what = f"drop table entry {key}"
    elif op == 7:
        table["spare"] = dict(entry)
        what = f"duplicate table entry {key}"
    else:
        entry["shape"] = [int(rng.choice([0, 2**31, 2**62, -1]))] + entry["shape"][1:]
        what = f"extreme shape of {key}"
    return what


def raw_text_variant(rng, header_bytes, payload, i):
    """Header text that JSON parsing must refuse or that nests deeply."""
    text = header_bytes.decode()
    depth = int(rng.choice([10, 62, 63, 64, 65, 200, 1000, 5000, 100000]))
    cases = [
        (
            "deep metadata list",
            text.replace('"metadata":', '"metadata":{"deep":' + "[" * depth + "]" * depth + '},"metadata_":', 1),
        ),
        ("deep metadata only", text.replace('"metadata":{', '"metadata":{"d":' + "[" * depth + "]" * depth + ",", 1)),
        (
            "deep objects",
            text.replace('"metadata":{', '"metadata":{"d":' + '{"a":' * depth + "1" + "}" * depth + ",", 1),
        ),
        ("unbalanced", text + "]" * (i % 5 + 1)),
        ("duplicate key", text.replace('"classes":', '"classes":10,"classes":', 1)),
        ("NaN", text.replace('"classes":10', '"classes":NaN', 1)),
        ("Infinity", text.replace('"classes":10', '"classes":-Infinity', 1)),
        ("1e999", text.replace('"classes":10', '"classes":1e999', 1)),
        ("long integer", text.replace('"classes":10', '"classes":1' + "0" * 5000, 1)),
        ("float classes", text.replace('"classes":10', '"classes":10.0', 1)),
        ("not UTF-8", None),
        ("top-level list", "[" + text + "]"),
        ("empty", ""),
        ("BOM", "\ufeff" + text),
        ("truncated JSON", text[: int(rng.integers(1, len(text)))]),
        ("control character", text.replace('"mixed"', '"mi\nxed"', 1).replace('"fp32"', '"f\x01p"', 1)),
        ("escaped scheme", text.replace('"scheme":"', '"scheme":"\\u0000', 1)),
        ("lone surrogate", text.replace('"scheme":"', '"scheme":"\\ud800', 1)),
        ("version true", text.replace('"version":2', '"version":true', 1)),
    ]
    name, new = cases[i % len(cases)]
    if new is None:
        raw = header_bytes.replace(b'"scheme":"', b'"scheme":"\xff\xfe', 1)
    else:
        raw = new.encode("utf-8", "surrogatepass")
    return name + (f" depth {depth}" if "deep" in name else ""), sign(raw, payload)


def resigned_variants(base, seed, count):
    """``count`` containers with a valid checksum around mutated contents."""
    rng = np.random.default_rng(seed)
    header0, arrays0 = read_container(base)
    table_header, payload = split(base)
    header_bytes = base[24 : 24 + struct.unpack_from("<I", base, 12)[0]]
    for i in range(count):
        kind = i % 8
        if kind in (0, 1, 2):  # header fields, then write_container rebuilds a consistent table
            header = copy.deepcopy(header0)
            header.pop("arrays")
            if kind == 2 and rng.random() < 0.6:
                what = retype_layer(rng, header)
            else:
                what = "; ".join(mutate_header(rng, header, False) for _ in range(1 + (i % 3 == 2)))
            try:
                data = write_container(header, arrays0)
            except KeyError:  # the mutation deleted something the header needed to serialize
                continue
            yield what, data
        elif kind == 3:  # header fields and array contents
            header = copy.deepcopy(header0)
            header.pop("arrays")
            arrays = dict(arrays0)
            what = mutate_header(rng, header, False) + "; " + mutate_arrays(rng, arrays)
            yield what, write_container(header, arrays)
        elif kind in (4, 5):  # array contents, dtypes and shapes
            arrays = dict(arrays0)
            header = {k: v for k, v in copy.deepcopy(header0).items() if k != "arrays"}
            what = "; ".join(mutate_arrays(rng, arrays) for _ in range(1 + (i % 4 == 1)))
            yield what, write_container(header, arrays)
        elif kind == 6:  # the array table itself, or the whole header including the table
            header = copy.deepcopy(table_header)
            if rng.random() < 0.7:
                what = mutate_table(rng, header, payload)
            else:
                what = mutate_header(rng, header, True)
            yield what, sign(json.dumps(header, separators=(",", ":")).encode(), payload)
        else:  # raw header text and preamble fields
            if rng.random() < 0.8:
                yield raw_text_variant(rng, header_bytes, payload, i)
            elif rng.random() < 0.5:
                version = int(rng.choice([0, 3, 1 << 31]))
                yield f"version {version}", sign(header_bytes, payload, version=version)
            else:  # lengths in the preamble that disagree with the file, under a valid checksum
                delta = int(rng.choice([-8, -1, 1, 8, 1 << 30]))
                if rng.random() < 0.5:
                    yield f"header length {delta:+}", sign(header_bytes, payload, header_len=len(header_bytes) + delta)
                else:
                    yield f"payload length {delta:+}", sign(header_bytes, payload, payload_len=len(payload) + delta)


def truncations(base, seed, count):
    rng = np.random.default_rng(seed)
    lengths = {0, 1, 7, 8, 12, 23, 24, 25, len(base) - 33, len(base) - 32, len(base) - 1}
    header_end = 24 + struct.unpack_from("<I", base, 12)[0]
    lengths |= {header_end - 1, header_end, header_end + 1}
    while len(lengths) < count:
        lengths.add(int(rng.integers(0, len(base))))
    for n in sorted(lengths)[:count]:
        yield f"truncated to {n} bytes", base[:n]


def byte_flips(base, seed, count):
    rng = np.random.default_rng(seed)
    for i in range(count):
        data = bytearray(base)
        flips = 1 + int(rng.integers(0, 3)) if i % 3 else 1
        where = []
        for _ in range(flips):
            # a third of the flips land in the preamble, where lengths and version live
            position = int(rng.integers(0, 24)) if i % 3 == 0 else int(rng.integers(0, len(data)))
            data[position] ^= int(rng.integers(1, 256))
            where.append(position)
        yield f"flip bytes {where}", bytes(data)


# --- running one variant ------------------------------------------------------------------------------


def check_variant(label, data, path, capsys, outcome):
    """Run ``data`` through the loader and ``lowbit report``; returns a failure text or None."""
    try:
        model = model_from_bytes(data)
    except ModelFileError as error:
        message = str(error)
        if "\n" in message or not message:
            return f"{label}: refusal is not one line: {message!r}"
        outcome.append(("refused", message))
        model = None
    except Exception as error:  # noqa: BLE001 - any other exception is the failure this test looks for
        return f"{label}: model_from_bytes raised {type(error).__name__}: {error}"
    else:
        outcome.append(("accepted", ""))
        try:
            validate_model(model)
            width = model.layers[0].in_features
            pixels = np.random.default_rng(7).integers(0, 17, (2, width))
            out = GoldenNetwork(model).run(pixels)
            if out.shape != (2, model.classes):
                return f"{label}: accepted, but the golden model returns shape {out.shape}"
            GoldenNetwork(model).run(np.zeros((2, width), np.uint8))
        except Exception as error:  # noqa: BLE001
            return f"{label}: accepted, but {type(error).__name__}: {error}"
    path.write_bytes(data)
    capsys.readouterr()
    try:
        code = main(["report", str(path)])
    except BaseException as error:  # noqa: BLE001 - a traceback (or an exit) out of the command
        return f"{label}: lowbit report raised {type(error).__name__}: {error}"
    out, err = capsys.readouterr()
    if model is None:
        lines = err.splitlines()
        if (
            code != 2
            or len(lines) != 1
            or not err.endswith("\n")
            or not lines[0].startswith(PREFIX)
            or str(path) not in lines[0]
        ):
            return f"{label}: lowbit report returned {code} with stderr {err!r}"
    elif code != 0 or err:
        return f"{label}: accepted by the loader, but lowbit report returned {code} with stderr {err!r}"
    return None


def run_variants(variants, tmp_path, capsys):
    failures, outcome, count = [], [], 0
    start = time.perf_counter()
    for label, data in variants:
        path = tmp_path / f"variant-{count}.lbm"
        failure = check_variant(f"variant {count} ({label})", data, path, capsys, outcome)
        if failure:
            failures.append(failure)
        count += 1
    elapsed = time.perf_counter() - start
    with capsys.disabled():
        accepted = sum(1 for state, _ in outcome if state == "accepted")
        print(f"\n{count} variants, {accepted} accepted, {len(failures)} failures, {elapsed:.2f} s")
    assert not failures, f"{len(failures)} of {count} variants failed:\n" + "\n".join(failures[:40])
    return count, outcome


def _labelled(name, seed, generator):
    for index, (label, data) in enumerate(generator):
        yield f"base {name}, seed {seed}, #{index}: {label}", data


def test_truncations(bases, tmp_path, capsys):
    variants = (
        v
        for i, (name, base) in enumerate(bases.items())
        for v in _labelled(name, SEED + i, truncations(base, SEED + i, 50))
    )
    count, outcome = run_variants(variants, tmp_path, capsys)
    assert count >= 150
    assert all(state == "refused" and message.startswith("truncated: ") for state, message in outcome)


def test_byte_flips(bases, tmp_path, capsys):
    variants = (
        v
        for i, (name, base) in enumerate(bases.items())
        for v in _labelled(name, SEED + 10 + i, byte_flips(base, SEED + 10 + i, 60))
    )
    count, outcome = run_variants(variants, tmp_path, capsys)
    assert count >= 180
    assert all(state == "refused" for state, _ in outcome)


def test_resigned_mutations(bases, tmp_path, capsys):
    variants = (
        v
        for i, (name, base) in enumerate(bases.items())
        for v in _labelled(name, SEED + 20 + i, resigned_variants(base, SEED + 20 + i, 240))
    )
    count, outcome = run_variants(variants, tmp_path, capsys)
    assert count >= 600
    messages = [message for state, message in outcome if state == "refused"]
    # the mutations reach the checks behind the checksum: the header, the table and the network
    assert not any(m.startswith("checksum") for m in messages)
    assert sum(m.startswith("layer ") for m in messages) >= 100
    assert sum(m.startswith("array ") for m in messages) >= 20
    assert sum(m.startswith("corrupt header") for m in messages) >= 20


def test_bases_are_valid(bases):
    for name, data in bases.items():
        model = model_from_bytes(data)
        assert GoldenNetwork(model).run(np.zeros((2, 64), np.uint8)).shape == (2, 10), name
