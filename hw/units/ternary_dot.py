"""Ternary dot products in the two-plane encoding (non-zero plane, sign plane)."""

from amaranth.lib import data

from lowbit.hw.units.signed_taps import SignedTapSum

__all__ = ["TernaryDotInput", "TernaryBinaryDotInput", "TernaryDotProduct"]


def TernaryDotInput(n):
    """Ternary activations and weights: ``a_nz``, ``a_sign``, ``w_nz``, ``w_sign``, ``n`` bits each.

    ``nz`` is 1 for a non-zero element and ``sign`` is 1 for a negative one (``encode_ternary``).
    Padding taps have ``nz = 0``.
    """
    return data.StructLayout({"a_nz": n, "a_sign": n, "w_nz": n, "w_sign": n})


def TernaryBinaryDotInput(n):
    """Binary activations (bit 1 = +1) with a valid mask, and ternary weights in two planes."""
    return data.StructLayout({"a": n, "valid": n, "w_nz": n, "w_sign": n})


class TernaryDotProduct(SignedTapSum):
    """Dot product of ternary weights with ternary or binary activations.

    With ``activations="ternary"``: ``sum_k a_k * w_k`` for ``a, w`` in ``{-1, 0, +1}``, that is
    ``pc(m & ~(a_sign ^ w_sign)) - pc(m & (a_sign ^ w_sign))`` with ``m = a_nz & w_nz``
    (:func:`lowbit.sw.golden.ternary_dot`). With ``activations="binary"``: activations are bipolar bits
    (1 = +1, 0 = -1) and taps whose ``valid`` bit is 0 count as 0
    (:func:`lowbit.sw.golden.ternary_binary_dot`).

    ``target`` picks the tree (:class:`lowbit.hw.units.signed_taps.SignedTapSum`: a compressor tree of
    the FPGA's cells, or the generic adder tree).

    Ports: ``i`` carries :func:`TernaryDotInput` or :func:`TernaryBinaryDotInput`; ``o`` the signed result
    in ``[-n, n]``. Latency ``pipeline_depth`` cycles, one vector per cycle, whole-pipeline stall under
    back-pressure.
    """

    ACTIVATIONS = ("ternary", "binary")

    def __init__(self, n, activations="ternary", pipeline_depth=None, target="auto"):
        if activations not in self.ACTIVATIONS:
            raise ValueError(f"activations must be one of {', '.join(self.ACTIVATIONS)}, not {activations!r}")
        self.activations = activations
        self.SHARED_FIELDS = ("a_nz", "a_sign") if activations == "ternary" else ("a", "valid")
        self.TAP_FIELDS = (*self.SHARED_FIELDS, "w_nz", "w_sign")
        layout = TernaryDotInput if activations == "ternary" else TernaryBinaryDotInput
        super().__init__(n, pipeline_depth, layout, target=target)

    def tap(self, payload, k):
        if self.activations == "ternary":
            return payload.a_nz[k] & payload.w_nz[k], payload.a_sign[k] ^ payload.w_sign[k]
        # A binary activation is non-zero where valid, and negative where its bit is 0.
        return payload.valid[k] & payload.w_nz[k], ~payload.a[k] ^ payload.w_sign[k]
