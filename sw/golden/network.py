"""Whole-network inference on an exported model, built from the per-unit golden functions.

Each layer runs on the golden unit the kinds registry names for its pair of weight and input kinds
(:func:`lowbit.sw.kinds.golden_unit`, tabulated in ``docs/arithmetic.md``).

Hidden layers end in :func:`multithreshold`; the last layer returns its raw ``int64`` accumulators.
A float (``fp32``) model is evaluated in float64 as a reference; it has no hardware unit.
Vectorised: packed words and ``np.bitwise_count``, batches processed in chunks to bound memory.
"""

import numpy as np

from lowbit.sw.golden.units import (
    binary_dot,
    bitserial_dot,
    fatnn_dot,
    fgq_dot,
    multithreshold,
    nhot_dot,
    ternary_binary_dot,
    ternary_dot,
)
from lowbit.sw.kinds import INPUTS, golden_unit, nhot_terms_needed
from lowbit.sw.kinds.encodings import activation_values, encode_fatnn_activation, encode_ternary, nhot_terms
from lowbit.sw.kinds.packing import pack_bits
from lowbit.sw.model.conv import layer_outputs, layer_taps
from lowbit.sw.model.inputs import model_input

__all__ = ["GoldenNetwork", "run_network", "predict", "class_index"]


def class_index(accumulators):
    """The predicted class of each row of last-layer ``accumulators`` ``(batch, classes)``: the index of its
    largest value, the first of equal ones (``int64``, ``(batch,)``). The tile's CLASSIFY answers this."""
    return np.argmax(np.asarray(accumulators), axis=-1).astype(np.int64)


_CHUNK_ELEMENTS = 1 << 22


class GoldenNetwork:
    """A loaded :class:`lowbit.sw.model.file.LowbitModel` with its weight encodings packed once."""

    def __init__(self, model):
        self.model = model
        self._prepared = [_prepare(layer) for layer in model.layers]

    def input(self, pixels):
        """Digits pixels ``(batch, 64)`` in ``0 .. 16`` to the first layer's input (codes, or float values)."""
        return model_input(self.model, pixels)

    def run(self, pixels, trace=False):
        """Last-layer accumulators ``(batch, classes)`` (``int64``; float64 for a float model).

        With ``trace``, a dict of per-layer lists: ``codes`` (each layer's input) and ``accumulators``.
        """
        return self.run_codes(self.input(pixels), trace)

    def run_codes(self, codes, trace=False):
        """As :meth:`run`, from first-layer input codes ``(batch, input_size)``.

        A convolution's input codes and accumulators are recorded flattened in HWC order
        (:mod:`lowbit.sw.model.conv`): ``(batch, H * W * C)`` and ``(batch, OH * OW * out)`` (before pooling).
        """
        record = {"codes": [], "accumulators": []}
        x = np.asarray(codes)
        for layer, prepared in zip(self.model.layers, self._prepared):
            record["codes"].append(x)
            if x.ndim != 2:
                raise ValueError(f"codes must have shape (batch, {layer.input_size}), not {x.shape}")
            if x.shape[1] != layer.input_size:
                raise ValueError(f"layer takes {layer.input_size} inputs, not {x.shape[1]}")
            batch = len(x)
            taps = layer_taps(layer, x)
            if layer.weight_kind == "float":
                acc = taps.astype(np.float64) @ layer.weights.astype(np.float64).T
            else:
                acc = _chunked(layer, prepared, taps.astype(np.int64))
            record["accumulators"].append(acc.reshape(batch, -1))
            if layer.output_kind == "relu":
                x = np.maximum(acc * layer.scale + layer.shift, 0.0)
            elif layer.output_kind == "threshold":
                x = multithreshold(acc, layer.thresholds, layer.descending).astype(np.int64)
            x = layer_outputs(layer, x, batch)
        return record if trace else record["accumulators"][-1]

    def predict(self, pixels):
        """Predicted classes: :func:`class_index` of the last layer's accumulators."""
        return class_index(self.run(pixels))


def run_network(model, pixels, trace=False):
    """:meth:`GoldenNetwork.run` of ``model`` on digits pixels."""
    return GoldenNetwork(model).run(pixels, trace)


def predict(model, pixels):
    """:meth:`GoldenNetwork.predict` of ``model`` on digits pixels."""
    return GoldenNetwork(model).predict(pixels)


def _prepare(layer):
    """The weight-side encodings of one layer, packed once."""
    kind = layer.weight_kind
    if kind == "float":
        return {}
    w = np.asarray(layer.weights).astype(np.int64)
    prepared = {"valid": pack_bits(np.ones(layer.in_features, np.uint8))}
    if kind in ("binary", "ternary", "fatnn"):
        nz, sign = encode_ternary(w)
        prepared.update(w_nz=pack_bits(nz), w_sign=pack_bits(sign), w_bits=pack_bits(w > 0), w_sum=w.sum(axis=1))
    elif golden_unit(kind, layer.input_kind) == "nhot_dot":
        prepared["terms"] = nhot_terms(w, nhot_terms_needed(kind, layer.weight_bits, layer.n_terms), layer.weight_bits)
    return prepared


def _chunked(layer, prepared, codes):
    """Accumulators ``(batch, out)`` of one integer layer, computed in batch chunks."""
    per_sample = layer.out_features * layer.in_features * max(layer.n_terms, layer.weight_bits, 1)
    rows = max(1, _CHUNK_ELEMENTS // per_sample)
    parts = [_accumulate(layer, prepared, codes[i : i + rows]) for i in range(0, len(codes), rows)]
    return np.concatenate(parts) if parts else np.zeros((0, layer.out_features), np.int64)


def _accumulate(layer, prepared, codes):
    """One layer's accumulators on the golden unit the registry names for its kinds
    (:func:`lowbit.sw.kinds.golden_unit`)."""
    wkind, akind, n = layer.weight_kind, layer.input_kind, layer.in_features
    if codes.shape[-1] != n:
        raise ValueError(f"layer takes {n} inputs, not {codes.shape[-1]}")
    unit = golden_unit(wkind, akind)
    values = activation_values(codes, akind, layer.input_bits)
    w = layer.weights.astype(np.int64)
    if unit == "fgq_dot":
        return fgq_dot(values[:, None, :], w, layer.alpha_q.astype(np.int64), layer.group_size)
    if unit == "nhot_dot":
        present, sign, exponent = prepared["terms"]
        return nhot_dot(values[:, None, :], present, sign, exponent)
    if unit == "bitserial_dot" and wkind == "int":
        # k-bit weights against binary activations: the bit-serial unit with the roles swapped.
        a_valid = np.broadcast_to(prepared["valid"], (len(codes), 1, prepared["valid"].shape[-1]))
        a_sign = pack_bits(1 - codes)[:, None, :]
        return bitserial_dot(w[None], layer.weight_bits, True, a_valid, a_sign)
    nz, sign = prepared["w_nz"], prepared["w_sign"]
    if unit == "binary_dot":
        return binary_dot(pack_bits(codes)[:, None, :], prepared["w_bits"], n=n)
    if unit == "ternary_binary_dot":
        return ternary_binary_dot(pack_bits(codes)[:, None, :], prepared["valid"], nz, sign)
    if unit == "ternary_dot":
        a_nz, a_sign = encode_ternary(values)
        return ternary_dot(pack_bits(a_nz)[:, None, :], pack_bits(a_sign)[:, None, :], nz, sign)
    if unit == "fatnn_dot":
        a_nz, a_sign = encode_fatnn_activation(codes)
        return fatnn_dot(pack_bits(a_nz)[:, None, :], pack_bits(a_sign)[:, None, :], nz, sign, prepared["w_sum"])
    if unit == "bitserial_dot":
        signed = INPUTS[akind].signed
        return bitserial_dot(values[:, None, :], layer.input_bits, signed, nz, sign)
    raise ValueError(f"no golden unit computes {wkind} weights against {akind} input")
