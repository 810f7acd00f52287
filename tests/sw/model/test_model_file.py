"""The model file: round trip, and clear errors for truncated, corrupt and inconsistent files."""

import hashlib
import struct

import numpy as np
import pytest

from lowbit.sw.kinds.encodings import nhot_nearest
from lowbit.sw.golden import run_network
from lowbit.sw.model.file import (FORMAT_VERSION, MAGIC, LayerRecord, LowbitModel, ModelFileError, load_model,
                                  model_from_bytes, model_to_bytes, read_container, save_model, write_container)


def small_model():
    """A hand-made three-layer model: FGQ (uint8 in) -> 2-hot (uint4 in) -> ternary (ternary in) -> 10."""
    rng = np.random.default_rng(0)
    l0 = LayerRecord(64, 8, "fgq", 2, "uint", 8, "threshold", rng.integers(-1, 2, (8, 64)).astype(np.int8),
                     output_levels=16, group_size=4, alpha_q=rng.integers(0, 256, (8, 16)).astype(np.uint8),
                     thresholds=np.sort(rng.integers(-2000, 2000, (8, 15)), axis=1),
                     descending=np.zeros(8, bool))
    descending = np.array([False, True, False, True, False, False])
    t1 = np.sort(rng.integers(-300, 300, (6, 2)), axis=1)
    t1[descending] = t1[descending, ::-1]
    l1 = LayerRecord(8, 6, "nhot", 8, "uint", 4, "threshold",
                     nhot_nearest(rng.integers(-127, 128, (6, 8)), 2, 8).astype(np.int8), output_levels=3,
                     n_terms=2, thresholds=t1, descending=descending)
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
        assert (a.weight_kind, a.input_kind, a.output_kind, a.output_levels) == \
               (b.weight_kind, b.input_kind, b.output_kind, b.output_levels)
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
        model_from_bytes(data[:keep] if keep >= 0 else data[:len(data) + keep])


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
    with pytest.raises(ModelFileError, match=rf"unsupported format version {FORMAT_VERSION + 1}; "
                                             rf"this lowbit reads version {FORMAT_VERSION}"):
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
    "weights shape": (None, _set_array("layers.0.weights", lambda w: w[:, :60]),
                      r"layer 0: weights has shape \(8, 60\), expected \(8, 64\)"),
    "ternary value": (None, _set_array("layers.2.weights", lambda w: _put(w, (3, 1), 2)),
                      r"layer 2: ternary weights must hold -1, 0 or \+1, not 2 at \(3, 1\)"),
    "n-hot value": (None, _set_array("layers.1.weights", lambda w: _put(w, (0, 0), 91)),
                    r"layer 1: 2-hot weights must hold sums of at most 2 signed powers of two, not 91"),
    "int range": (None, _set_array("layers.1.weights", lambda w: _put(w, (0, 0), -128)),
                  r"layer 1: 8-bit weights must hold integers in -127 .. 127, not -128"),
    "unsorted": (None, _set_array("layers.0.thresholds", lambda t: t[:, ::-1]),
                 r"layer 0: thresholds of channel 0 are not non-decreasing"),
    "unsorted descending": (None, _set_array("layers.1.thresholds", lambda t: np.sort(t, axis=1)),
                            r"layer 1: thresholds of channel 1 are not non-increasing \(descending channel\)"),
    "threshold range": (None, _set_array("layers.0.thresholds", lambda t: _put(t, (2, slice(None)), 10 ** 7)),
                        r"layer 0: threshold 10000000 of channel 2 lies outside"),
    "thresholds shape": (None, _set_array("layers.1.thresholds", lambda t: t[:, :1]),
                         r"layer 1: thresholds has shape \(6, 1\), expected \(6, 2\)"),
    "classes": (lambda h: h.update(classes=12), None, r"the last layer has 10 outputs, the model 12 classes"),
    "chain": (_set(1, in_features=9), _set_array("layers.1.weights", lambda w: np.pad(w, ((0, 0), (0, 1)))),
              r"layer 1: in_features 9 does not match the 8 outputs of layer 0"),
    "levels": (_set(0, output_levels=4), _set_array("layers.0.thresholds", lambda t: t[:, :3]),
               r"layer 0: emits 4 levels but layer 1 takes uint input of 16 levels"),
    "alpha dtype": (None, _set_array("layers.0.alpha_q", lambda a: a.astype(np.int16)),
                    r"layer 0: alpha_q has dtype <i2, expected \|u1"),
    "alpha shape": (None, _set_array("layers.0.alpha_q", lambda a: a[:, :8]),
                    r"layer 0: alpha_q has shape \(8, 8\), expected \(8, 16\)"),
    "group size": (_set(0, group_size=5), None, r"layer 0: in_features 64 is not a multiple of group_size 5"),
    "missing thresholds": (lambda h: h["layers"][1]["arrays"].pop("thresholds"), None,
                           r"layer 1: a hidden layer needs thresholds and descending"),
    "unknown kind": (_set(2, weight_kind="quaternary"), None, r"layer 2: unknown weight kind 'quaternary'"),
    "weight bits": (_set(2, weight_bits=3), None,
                    r"layer 2: weight_bits of ternary weights must be an integer from 2 to 2, not 3"),
    "input bits": (_set(1, input_bits=9), None, r"layer 1: input_bits of uint input must be an integer from 1 to 8"),
    "last output": (_set(2, output_kind="threshold"), None,
                    r"layer 2: the last layer must output its raw accumulator, not 'threshold'"),
    "first input": (_set(0, input_kind="binary", input_bits=1), None, r"layer 0: input kind must be 'uint'"),
    "no layers": (lambda h: h.update(layers=[]), None, r"header 'layers' must be a non-empty list"),
    "no scheme": (lambda h: h.pop("scheme"), None, r"header lacks 'scheme'"),
    "header version": (lambda h: h.update(version=2), None,
                       r"header names format 'lowbit-model' version 2, expected 'lowbit-model' version 1"),
    "missing field": (lambda h: h["layers"][0].pop("out_features"), None, r"layer 0: header lacks out_features"),
    "unknown array": (lambda h: h["layers"][0]["arrays"].update(bias="layers.0.weights"), None,
                      r"layer 0: unknown array 'bias'"),
    "dangling array": (lambda h: h["layers"][0]["arrays"].update(weights="nowhere"), None,
                       r"layer 0: array 'nowhere' is not in the array table"),
}


@pytest.mark.parametrize("case", INCONSISTENT)
def test_inconsistent(case):
    header_change, array_change, message = INCONSISTENT[case]
    data = rebuild(small_model(), header_change, array_change)
    with pytest.raises(ModelFileError, match=message):
        model_from_bytes(data)


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
