"""The model file: round trip, and clear errors for truncated, corrupt and inconsistent files."""

import hashlib
import json
import os
import struct

import numpy as np
import pytest

from lowbit.sw.golden import run_network
from lowbit.sw.kinds.encodings import nhot_nearest
from lowbit.sw.model.file import (
    FORMAT_VERSION,
    MAGIC,
    LayerRecord,
    LowbitModel,
    ModelFileError,
    load_model,
    model_from_bytes,
    model_to_bytes,
    read_container,
    save_model,
    write_container,
)


def small_model():
    """A hand-made three-layer model: FGQ (uint8 in) -> 2-hot (uint4 in) -> ternary (ternary in) -> 10."""
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
        thresholds=np.sort(rng.integers(-2000, 2000, (8, 15)), axis=1),
        descending=np.zeros(8, bool),
    )
    descending = np.array([False, True, False, True, False, False])
    t1 = np.sort(rng.integers(-300, 300, (6, 2)), axis=1)
    t1[descending] = t1[descending, ::-1]
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
        thresholds=t1,
        descending=descending,
    )
    l2 = LayerRecord(6, 10, "ternary", 2, "ternary", 2, "accumulator", rng.integers(-1, 2, (10, 6)).astype(np.int8))
    return LowbitModel("custom", 10, [l0, l1, l2], {"note": "hand-made"})


def rebuild(model, header_change=None, array_change=None):
    """Bytes of ``model`` after changing its header or arrays, with a valid checksum."""
    header, arrays = read_container(model_to_bytes(model))
    header.pop("arrays")
    if header_change:
        header_change(header)
    if array_change:
        array_change(arrays)
    return write_container(header, arrays)


def test_round_trip():
    model = small_model()
    back = model_from_bytes(model_to_bytes(model))
    assert back.scheme == "custom" and back.classes == 10 and back.metadata == {"note": "hand-made"}
    for a, b in zip(model.layers, back.layers):
        assert (a.weight_kind, a.input_kind, a.output_kind, a.output_levels) == (
            b.weight_kind,
            b.input_kind,
            b.output_kind,
            b.output_levels,
        )
        for name, array in a.arrays().items():
            assert np.array_equal(array, getattr(b, name)), name
    pixels = np.random.default_rng(1).integers(0, 17, (20, 64))
    assert np.array_equal(run_network(model, pixels), run_network(back, pixels))


def test_save_and_load(tmp_path):
    path = tmp_path / "m.lbm"
    save_model(small_model(), path)
    assert path.read_bytes()[:8] == MAGIC
    assert load_model(path).layers[1].n_terms == 2


def test_load_names_the_file(tmp_path):
    path = tmp_path / "broken.lbm"
    path.write_bytes(model_to_bytes(small_model())[:100])
    with pytest.raises(ModelFileError, match=r"model file '.*broken.lbm': truncated"):
        load_model(path)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.lbm")


def test_save_refuses_inconsistent_model(tmp_path):
    model = small_model()
    model.layers[2].weights[0, 0] = 5
    with pytest.raises(ModelFileError, match=r"layer 2: ternary weights must hold -1, 0 or \+1, not 5 at \(0, 0\)"):
        save_model(model, tmp_path / "m.lbm")


# --- truncated and corrupt ------------------------------------------------------------------------------


@pytest.mark.parametrize("keep", [0, 5, 23, 24, 100, -33, -1])
def test_truncated(keep):
    data = model_to_bytes(small_model())
    with pytest.raises(ModelFileError, match=r"^truncated: "):
        model_from_bytes(data[:keep] if keep >= 0 else data[: len(data) + keep])


def test_trailing_bytes():
    with pytest.raises(ModelFileError, match=r"3 trailing bytes after the checksum"):
        model_from_bytes(model_to_bytes(small_model()) + b"abc")


@pytest.mark.parametrize("where", ["header", "payload", "checksum"])
def test_corrupt_byte(where):
    data = bytearray(model_to_bytes(small_model()))
    header_len = struct.unpack_from("<I", data, 12)[0]
    position = {"header": 24 + header_len // 2, "payload": 24 + header_len + 50, "checksum": len(data) - 5}[where]
    data[position] ^= 0x10
    with pytest.raises(ModelFileError, match=r"checksum mismatch: the file is corrupt"):
        model_from_bytes(bytes(data))


def test_not_a_model_file():
    with pytest.raises(ModelFileError, match=r"not a lowbit model file: magic b'PK\\x03\\x04"):
        model_from_bytes(b"PK\x03\x04" + bytes(100))


def test_other_version():
    data = bytearray(model_to_bytes(small_model()))
    struct.pack_into("<I", data, 8, FORMAT_VERSION + 1)
    with pytest.raises(
        ModelFileError,
        match=rf"unsupported format version {FORMAT_VERSION + 1}; "
        rf"this lowbit reads versions 1, {FORMAT_VERSION}",
    ):
        model_from_bytes(bytes(data))


def test_header_not_json():
    header = b"{not json"
    body = struct.pack("<8sIIQ", MAGIC, FORMAT_VERSION, len(header), 0) + header
    with pytest.raises(ModelFileError, match=r"corrupt header: not UTF-8 JSON"):
        model_from_bytes(body + hashlib.sha256(body).digest())


# --- inconsistent (valid checksum) ----------------------------------------------------------------------


def _set_array(key, function):
    def change(arrays):
        arrays[key] = function(arrays[key].copy())

    return change


def _set(layer, **fields):
    def change(header):
        header["layers"][layer].update(fields)

    return change


def _put(array, index, value):
    array[index] = value
    return array


INCONSISTENT = {
    "weights shape": (
        None,
        _set_array("layers.0.weights", lambda w: w[:, :60]),
        r"layer 0: weights has shape \(8, 60\), expected \(8, 64\)",
    ),
    "ternary value": (
        None,
        _set_array("layers.2.weights", lambda w: _put(w, (3, 1), 2)),
        r"layer 2: ternary weights must hold -1, 0 or \+1, not 2 at \(3, 1\)",
    ),
    "n-hot value": (
        None,
        _set_array("layers.1.weights", lambda w: _put(w, (0, 0), 91)),
        r"layer 1: 2-hot weights must hold sums of at most 2 signed powers of two, not 91",
    ),
    "int range": (
        None,
        _set_array("layers.1.weights", lambda w: _put(w, (0, 0), -128)),
        r"layer 1: 8-bit weights must hold integers in -127 .. 127, not -128",
    ),
    "unsorted": (
        None,
        _set_array("layers.0.thresholds", lambda t: t[:, ::-1]),
        r"layer 0: thresholds of channel 0 are not non-decreasing",
    ),
    "unsorted descending": (
        None,
        _set_array("layers.1.thresholds", lambda t: np.sort(t, axis=1)),
        r"layer 1: thresholds of channel 1 are not non-increasing \(descending channel\)",
    ),
    "threshold range": (
        None,
        _set_array("layers.0.thresholds", lambda t: _put(t, (2, slice(None)), 10**7)),
        r"layer 0: threshold 10000000 of channel 2 lies outside",
    ),
    "thresholds shape": (
        None,
        _set_array("layers.1.thresholds", lambda t: t[:, :1]),
        r"layer 1: thresholds has shape \(6, 1\), expected \(6, 2\)",
    ),
    "classes": (lambda h: h.update(classes=12), None, r"the last layer has 10 outputs, the model 12 classes"),
    "chain": (
        _set(1, in_features=9),
        _set_array("layers.1.weights", lambda w: np.pad(w, ((0, 0), (0, 1)))),
        r"layer 1: in_features 9 does not match the 8 outputs of layer 0",
    ),
    "levels": (
        _set(0, output_levels=4),
        _set_array("layers.0.thresholds", lambda t: t[:, :3]),
        r"layer 0: emits 4 levels but layer 1 takes uint input of 16 levels",
    ),
    "alpha dtype": (
        None,
        _set_array("layers.0.alpha_q", lambda a: a.astype(np.int16)),
        r"layer 0: alpha_q has dtype <i2, expected \|u1",
    ),
    "alpha shape": (
        None,
        _set_array("layers.0.alpha_q", lambda a: a[:, :8]),
        r"layer 0: alpha_q has shape \(8, 8\), expected \(8, 16\)",
    ),
    "group size": (_set(0, group_size=5), None, r"layer 0: in_features 64 is not a multiple of group_size 5"),
    "missing thresholds": (
        lambda h: h["layers"][1]["arrays"].pop("thresholds"),
        None,
        r"layer 1: a hidden layer needs thresholds and descending",
    ),
    "unknown kind": (_set(2, weight_kind="quaternary"), None, r"layer 2: unknown weight kind 'quaternary'"),
    "weight bits": (
        _set(2, weight_bits=3),
        None,
        r"layer 2: weight_bits of ternary weights must be an integer from 2 to 2, not 3",
    ),
    "input bits": (_set(1, input_bits=9), None, r"layer 1: input_bits of uint input must be an integer from 1 to 8"),
    "last output": (
        _set(2, output_kind="threshold"),
        None,
        r"layer 2: the last layer must output its raw accumulator, not 'threshold'",
    ),
    "first input": (_set(0, input_kind="binary", input_bits=1), None, r"layer 0: input kind must be 'uint'"),
    "no layers": (lambda h: h.update(layers=[]), None, r"header 'layers' must be a non-empty list"),
    "no scheme": (lambda h: h.pop("scheme"), None, r"header lacks 'scheme'"),
    "header version": (
        lambda h: h.update(version=1),
        None,
        r"header names format 'lowbit-model' version 1, expected 'lowbit-model' version 2 \(the preamble's\)",
    ),
    "missing field": (lambda h: h["layers"][0].pop("out_features"), None, r"layer 0: header lacks out_features"),
    "unknown array": (
        lambda h: h["layers"][0]["arrays"].update(bias="layers.0.weights"),
        None,
        r"layer 0: unknown array 'bias'",
    ),
    "dangling array": (
        lambda h: h["layers"][0]["arrays"].update(weights="nowhere"),
        None,
        r"layer 0: array 'nowhere' is not in the array table",
    ),
}


@pytest.mark.parametrize("case", INCONSISTENT)
def test_inconsistent(case):
    header_change, array_change, message = INCONSISTENT[case]
    data = rebuild(small_model(), header_change, array_change)
    with pytest.raises(ModelFileError, match=message):
        model_from_bytes(data)


@pytest.mark.parametrize("side", ["low", "high"])
def test_threshold_range_boundary(side):
    """Thresholds may lie one step outside the reachable accumulator range ("always" / "never"), not two."""
    model = small_model()
    lo, hi = model.layers[0].accumulator_range()
    edge = int(lo[2]) - 1 if side == "low" else int(hi[2]) + 1
    beyond = edge - 1 if side == "low" else edge + 1
    accepted = model_from_bytes(
        rebuild(model, None, _set_array("layers.0.thresholds", lambda t: _put(t, (2, slice(None)), edge)))
    )
    assert (accepted.layers[0].thresholds[2] == edge).all()
    with pytest.raises(
        ModelFileError,
        match=rf"layer 0: threshold {beyond} of channel 2 lies outside {int(lo[2]) - 1} \.\. {int(hi[2]) + 1} ",
    ):
        model_from_bytes(
            rebuild(model, None, _set_array("layers.0.thresholds", lambda t: _put(t, (2, slice(None)), beyond)))
        )


def test_array_beyond_payload():
    data = write_container({"scheme": "x"}, {"a": np.zeros(4, np.int8)})
    header, _ = read_container(data)
    header["arrays"]["a"]["offset"] = 6
    header_bytes = __import__("json").dumps(header).encode()
    body = struct.pack("<8sIIQ", MAGIC, FORMAT_VERSION, len(header_bytes), 8) + header_bytes + bytes(8)
    with pytest.raises(ModelFileError, match=r"array 'a': bytes 6 .. 10 lie beyond the 8-byte payload"):
        read_container(body + hashlib.sha256(body).digest())


def test_trained_models_round_trip(tiny_models):
    """Every tiny trained model survives the file (the fixture reads each back from its bytes)."""
    for name, model in tiny_models.items():
        again = model_from_bytes(model_to_bytes(model))
        for a, b in zip(model.layers, again.layers):
            for key, array in a.arrays().items():
                assert np.array_equal(array, getattr(b, key)), f"{name}: {key}"


# --- the file itself ----------------------------------------------------------------------------------


def test_load_a_directory(tmp_path):
    with pytest.raises(ModelFileError, match=rf"^model file '{tmp_path}': is a directory, not a lowbit model file$"):
        load_model(tmp_path)


def test_load_a_fifo_does_not_hang(tmp_path):
    fifo = tmp_path / "pipe.lbm"
    os.mkfifo(fifo)
    with pytest.raises(ModelFileError, match=r"^model file '.*pipe.lbm': is not a regular file, not a lowbit model"):
        load_model(fifo)


def test_load_an_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "secret.lbm"
    save_model(small_model(), path)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("builtins.open", refuse)
    with pytest.raises(ModelFileError, match=r"^model file '.*secret.lbm': cannot be read \(Permission denied\)$"):
        load_model(path)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"^model file '.*missing.lbm': no such file$"):
        load_model(tmp_path / "missing.lbm")


def test_load_errors_are_one_line_for_the_command(tmp_path, capsys):
    from lowbit.sw.cli import main

    path = tmp_path / "m.lbm"
    path.write_bytes(rebuild(small_model(), _set(1, n_terms=None)))
    for target in (path, tmp_path, tmp_path / "missing.lbm"):
        assert main(["report", str(target)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"lowbit report: error: model file '{target}': ") and err.count("\n") == 1, err


# --- the header: types, JSON, nesting -----------------------------------------------------------------


def _raw(header_bytes, payload=b""):
    body = struct.pack("<8sIIQ", MAGIC, FORMAT_VERSION, len(header_bytes), len(payload)) + header_bytes + payload
    return body + hashlib.sha256(body).digest()


def _header_text(model=None):
    """``(header text, payload)`` of a valid model file."""
    data = model_to_bytes(model or small_model())
    header_len, payload_len = struct.unpack_from("<IQ", data, 12)
    return data[24 : 24 + header_len].decode(), data[24 + header_len : 24 + header_len + payload_len]


def _with_metadata(text, value):
    return text.replace('"metadata":{', f'"metadata":{{"x":{value},', 1)


def test_deep_nesting_is_refused():
    text, payload = _header_text()
    for depth in (63, 64, 100, 100_000):  # metadata is level 2: its value nests depth + 2 levels
        data = _raw(_with_metadata(text, "[" * depth + "]" * depth).encode(), payload)
        with pytest.raises(ModelFileError, match=r"^corrupt header: JSON nested more than 64 levels deep$"):
            model_from_bytes(data)
    deepest = _raw(_with_metadata(text, "[" * 62 + "]" * 62).encode(), payload)
    assert np.array(model_from_bytes(deepest).metadata["x"], dtype=object).shape == (1,) * 61 + (0,)
    assert model_from_bytes(_raw(_with_metadata(text, '{"a":' * 62 + "1" + "}" * 62).encode(), payload))


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda t: t.replace('"classes":10', '"classes":10,"classes":12', 1),
            r"^corrupt header: key 'classes' appears twice in one JSON object$",
        ),
        (lambda t: t.replace('"classes":10', '"classes":NaN', 1), r"^corrupt header: NaN is not a JSON number$"),
        (
            lambda t: t.replace('"classes":10', '"classes":1e999', 1),
            r"^corrupt header: number '1e999' is out of range$",
        ),
        (
            lambda t: t.replace('"classes":10', '"classes":1' + "0" * 5000, 1),
            r"^corrupt header: not UTF-8 JSON \(Exceeds the limit \(4300 digits\)",
        ),
        (lambda t: "[" + t + "]", r"^corrupt header: expected a JSON object, not list$"),
        (
            lambda t: t.replace('"version":2', '"version":true', 1),
            r"^header names format 'lowbit-model' version True, expected 'lowbit-model' version 2 \(the preamble's\)$",
        ),
        (
            lambda t: t.replace('"classes":10', '"classes":10.0', 1),
            r"^classes must be an integer from 2 to 1048576, not 10.0$",
        ),
        (
            lambda t: t.replace('"scheme":"custom"', '"scheme":"cus\\ntom"', 1),
            r"^scheme must be a string of 1 to 64 printable characters, not 'cus\\ntom'$",
        ),
    ],
)
def test_header_json_refused(change, message):
    text, payload = _header_text()
    with pytest.raises(ModelFileError, match=message):
        model_from_bytes(_raw(change(text).encode(), payload))


def test_header_not_utf8():
    text, payload = _header_text()
    with pytest.raises(ModelFileError, match=r"^corrupt header: not UTF-8 JSON \('utf-8' codec can't decode byte 0xff"):
        model_from_bytes(_raw(text.encode().replace(b'"custom"', b'"cu\xffstom"'), payload))


LAYER_TYPES = {
    "arrays null": (
        _set(0, arrays=None),
        r"^layer 0: arrays must be a JSON object mapping array names \(weights, "
        r"alpha_q, thresholds, descending, scale, shift\) to keys of the array "
        r"table, not None$",
    ),
    "arrays list": (_set(2, arrays=["layers.2.weights"]), r"^layer 2: arrays must be a JSON object .*, not \['layers"),
    "array key not a string": (
        lambda h: h["layers"][1]["arrays"].update(thresholds=["layers.1.thresholds"]),
        r"^layer 1: array thresholds must name a key of the array table \(a string\), "
        r"not \['layers.1.thresholds'\]$",
    ),
    "array key a number": (
        lambda h: h["layers"][0]["arrays"].update(weights=0),
        r"^layer 0: array weights must name a key of the array table \(a string\), not 0$",
    ),
    "unknown layer key": (
        _set(1, bias=0),
        r"^layer 1: unknown key 'bias' \(a version 2 layer has in_features, .* and arrays\)$",
    ),
    "n_terms null": (_set(1, n_terms=None), r"^layer 1: n_terms must be an integer from 1 to 8, not None$"),
    "n_terms string": (_set(1, n_terms="2"), r"^layer 1: n_terms must be an integer from 1 to 8, not '2'$"),
    "n_terms bool": (_set(1, n_terms=True), r"^layer 1: n_terms must be an integer from 1 to 8, not True$"),
    "n_terms float": (_set(1, n_terms=2.0), r"^layer 1: n_terms must be an integer from 1 to 8, not 2.0$"),
    "group_size null": (_set(0, group_size=None), r"^layer 0: group_size must be an integer from 1 to 64, not None$"),
    "in_features string": (
        _set(0, in_features="64"),
        r"^layer 0: in_features must be an integer from 1 to 1048576, not '64'$",
    ),
    "out_features bool": (
        _set(2, out_features=True),
        r"^layer 2: out_features must be an integer from 1 to 1048576, not True$",
    ),
    "weight_bits null": (
        _set(2, weight_bits=None),
        r"^layer 2: weight_bits of ternary weights must be an integer from 2 to 2, not None$",
    ),
    "input_bits string": (
        _set(1, input_bits="4"),
        r"^layer 1: input_bits of uint input must be an integer from 1 to 8, not '4'$",
    ),
    "output_levels bool": (
        _set(1, output_levels=True),
        r"^layer 1: output_levels must be an integer from 2 to 256, not True$",
    ),
    "weight kind code": (_set(2, weight_kind=1), r"^layer 2: weight_kind must be one of binary, ternary, .*, not 1$"),
    "input kind null": (_set(2, input_kind=None), r"^layer 2: input_kind must be one of uint, .*, not None$"),
    "output kind list": (
        _set(2, output_kind=["accumulator"]),
        r"^layer 2: output_kind must be one of threshold, accumulator, relu, not \['accumulator'\]$",
    ),
    "layer not an object": (lambda h: h["layers"].__setitem__(1, None), r"^layer 1: expected a JSON object, not None$"),
    "unknown header key": (
        lambda h: h.update(comment="x"),
        r"^header has unknown key 'comment' \(a version 2 header "
        r"has format, .*; free-form data belongs in 'metadata'\)$",
    ),
    "metadata list": (lambda h: h.update(metadata=[1]), r"^header 'metadata' must be a JSON object, not \[1\]$"),
    "scheme number": (
        lambda h: h.update(scheme=3),
        r"^scheme must be a string of 1 to 64 printable characters, not 3$",
    ),
    "scheme empty": (
        lambda h: h.update(scheme=""),
        r"^scheme must be a string of 1 to 64 printable characters, not ''$",
    ),
    "classes huge": (
        lambda h: h.update(classes=10**30),
        r"^classes must be an integer from 2 to 1048576, not 1000000000000000000000000000000$",
    ),
    "layers object": (lambda h: h.update(layers={}), r"^header 'layers' must be a non-empty list, not \{\}$"),
}


@pytest.mark.parametrize("case", LAYER_TYPES)
def test_header_types_refused(case):
    change, message = LAYER_TYPES[case]
    with pytest.raises(ModelFileError, match=message):
        model_from_bytes(rebuild(small_model(), change))


def test_type_errors_name_the_file(tmp_path):
    path = tmp_path / "m.lbm"
    path.write_bytes(rebuild(small_model(), _set(0, arrays=None)))
    with pytest.raises(ModelFileError, match=r"^model file '.*m.lbm': layer 0: arrays must be a JSON object"):
        load_model(path)


# --- ranges -------------------------------------------------------------------------------------------

RANGES = {
    "descending 2": (
        None,
        _set_array("layers.1.descending", lambda d: _put(d.astype(np.uint8), 3, 2)),
        r"^layer 1: descending must hold 0 or 1, not 2 at \(3,\)$",
    ),
    "descending 255": (
        None,
        _set_array("layers.0.descending", lambda d: _put(d.astype(np.uint8), 0, 255)),
        r"^layer 0: descending must hold 0 or 1, not 255 at \(0,\)$",
    ),
    "n_terms on ternary": (
        _set(2, n_terms=2),
        None,
        r"^layer 2: n_terms must be 0 for ternary weights \(only nhot "
        r"weights have n_terms\), not 2$",
    ),
    "n_terms on fgq": (_set(0, n_terms=-1), None, r"^layer 0: n_terms must be 0 for fgq weights"),
    "group_size on nhot": (
        _set(1, group_size=4),
        None,
        r"^layer 1: group_size must be 0 for nhot weights \(only fgq "
        r"weights have group_size\), not 4$",
    ),
    "group_size on ternary": (_set(2, group_size=None), None, r"^layer 2: group_size must be 0 for ternary weights"),
    "last output_levels negative": (
        _set(2, output_levels=-1),
        None,
        r"^layer 2: output_levels must be 0 for a layer with output 'accumulator' \(only "
        r"'threshold' layers emit codes\), not -1$",
    ),
    "last output_levels 257": (_set(2, output_levels=257), None, r"^layer 2: output_levels must be 0 .*, not 257$"),
    "last output_levels 10": (_set(2, output_levels=10), None, r"^layer 2: output_levels must be 0 .*, not 10$"),
    "hidden output_levels 257": (
        _set(1, output_levels=257),
        None,
        r"^layer 1: output_levels must be an integer from 2 to 256, not 257$",
    ),
    "array used twice": (
        lambda h: h["layers"][2]["arrays"].update(weights="layers.1.weights"),
        None,
        r"^layer 2: array 'layers.1.weights' is already layer 1's weights; each array belongs to "
        r"one layer$",
    ),
    "array of no layer": (
        lambda h: (
            h["layers"][0]["arrays"].pop("alpha_q") and h["layers"][0].update(weight_kind="ternary", group_size=0)
        ),
        None,
        r"^array 'layers.0.alpha_q' of the array table belongs to no layer$",
    ),
    "thresholds on last layer": (
        lambda h: h["layers"][2]["arrays"].update(thresholds="x.t", descending="x.d"),
        lambda a: a.update({"x.t": np.zeros((10, 1), np.int32), "x.d": np.zeros(10, np.uint8)}),
        r"^layer 2: a layer with output 'accumulator' has no thresholds$",
    ),
    "scale on a threshold layer": (
        lambda h: h["layers"][0]["arrays"].update(scale="extra.scale"),
        lambda a: a.update({"extra.scale": np.ones(8)}),
        r"^layer 0: a layer with output 'threshold' has no scale \(only 'relu' layers do\)$",
    ),
}


@pytest.mark.parametrize("case", RANGES)
def test_out_of_range_refused(case):
    header_change, array_change, message = RANGES[case]
    with pytest.raises(ModelFileError, match=message):
        model_from_bytes(rebuild(small_model(), header_change, array_change))


def test_descending_is_not_taken_as_true():
    """uint8 2 in descending used to read as True and change the outputs; the model checks refuse it too."""
    model = small_model()
    model.layers[1].descending = np.array([0, 2, 0, 1, 0, 0], np.uint8)
    with pytest.raises(ModelFileError, match=r"layer 1: descending must hold 0 or 1, not 2 at \(1,\)"):
        model_to_bytes(model)


def test_validate_refuses_extra_fields():
    model = small_model()
    model.layers[2].output_levels = 10
    with pytest.raises(ModelFileError, match=r"layer 2: output_levels must be 0"):
        model_to_bytes(model)
    model = small_model()
    model.layers[2].n_terms = 3
    with pytest.raises(ModelFileError, match=r"layer 2: n_terms must be 0 for ternary weights"):
        model_to_bytes(model)


# --- the array table ----------------------------------------------------------------------------------


def _table(change):
    """A valid model's bytes with its array table changed, re-signed."""
    text, payload = _header_text()
    header = json.loads(text)
    change(header["arrays"])
    return _raw(json.dumps(header).encode(), payload)


def _entry(key, **fields):
    return lambda table: table[key].update(fields)


TABLE = {
    "offset null": (
        _entry("layers.2.weights", offset=None),
        r"^array 'layers.2.weights': offset must be a non-negative "
        r"integer, not None$",
    ),
    "offset bool": (_entry("layers.0.weights", offset=False), r"offset must be a non-negative integer, not False$"),
    "dtype object": (
        _entry("layers.0.weights", dtype="O"),
        r"^array 'layers.0.weights': dtype must be one of \|i1, \|u1, <i2, .*, not 'O'$",
    ),
    "dtype big-endian": (_entry("layers.0.thresholds", dtype=">i4"), r"dtype must be one of .*, not '>i4'$"),
    "dtype list": (_entry("layers.0.weights", dtype=["|i1"]), r"dtype must be one of .*, not \['\|i1'\]$"),
    "shape 3-d": (
        _entry("layers.2.weights", shape=[10, 6, 1]),
        r"^array 'layers.2.weights': shape must be a list of at most 2 integers from 0 to 2147483647, "
        r"not \[10, 6, 1\]$",
    ),
    "shape float": (_entry("layers.2.weights", shape=[10, 6.0]), r"shape must be a list .*, not \[10, 6.0\]$"),
    "shape huge": (_entry("layers.2.weights", shape=[2**62, 0]), r"shape must be a list .*, not \[4611686018"),
    "nbytes wrong": (
        _entry("layers.2.weights", nbytes=61),
        r"^array 'layers.2.weights': 61 bytes do not hold shape \(10, 6\) of \|i1 \(60 bytes\)$",
    ),
    "extra key": (
        _entry("layers.2.weights", order="C"),
        r"^array 'layers.2.weights': the table entry has keys .*'order', expected exactly dtype, shape, "
        r"offset, nbytes$",
    ),
    "entry null": (
        lambda t: t.update({"layers.2.weights": None}),
        r"^array 'layers.2.weights': the table entry must be a JSON object, not None$",
    ),
    "table list": (None, r"^header 'arrays' \(the array table\) must be a JSON object, not \[\]$"),
}


@pytest.mark.parametrize("case", TABLE)
def test_array_table_refused(case):
    change, message = TABLE[case]
    if change is None:
        text, payload = _header_text()
        header = json.loads(text)
        header["arrays"] = []
        data = _raw(json.dumps(header).encode(), payload)
    else:
        data = _table(change)
    with pytest.raises(ModelFileError, match=message):
        model_from_bytes(data)


def test_unaligned_and_overlapping_arrays():
    text, payload = _header_text()
    table = json.loads(text)["arrays"]
    first = min(table, key=lambda k: table[k]["offset"])
    second = sorted(table, key=lambda k: table[k]["offset"])[1]
    with pytest.raises(
        ModelFileError,
        match=rf"^array '{first}': offset 4 is not a multiple of 8 \(arrays are 8-byte "
        rf"aligned\)$",
    ):
        model_from_bytes(_table(_entry(first, offset=4)))
    both = f"({first}|{second})"
    with pytest.raises(
        ModelFileError,
        match=rf"^array '{both}': bytes 0 .. \d+ overlap array '{both}' \(bytes 0 "
        rf".. \d+\); arrays may not share bytes$",
    ):
        model_from_bytes(_table(_entry(second, offset=0)))
    with pytest.raises(
        ModelFileError,
        match=rf"^array '{first}': bytes {len(payload)} .. \d+ lie beyond the "
        rf"{len(payload)}-byte payload$",
    ):
        model_from_bytes(_table(_entry(first, offset=len(payload))))
