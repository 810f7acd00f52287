"""Ternary dot products in the two-plane encoding (non-zero plane, sign plane)."""

from amaranth.lib import data

from lowbit.hw.units.signed_taps import SignedTapSum

__all__ = ["TernaryDotInput", "TernaryDotProduct"]


def TernaryDotInput(n):
    """Ternary activations and weights: ``a_nz``, ``a_sign``, ``w_nz``, ``w_sign``, ``n`` bits each.

    ``nz`` is 1 for a non-zero element and ``sign`` is 1 for a negative one (``encode_ternary``).
    Padding taps have ``nz = 0``.
    """
    return data.StructLayout({"a_nz": n, "a_sign": n, "w_nz": n, "w_sign": n})


class TernaryDotProduct(SignedTapSum):
    """Dot product of ternary activations and weights: ``sum_k a_k * w_k`` for ``a, w`` in
    ``{-1, 0, +1}``, that is ``pc(m & ~(a_sign ^ w_sign)) - pc(m & (a_sign ^ w_sign))`` with
    ``m = a_nz & w_nz`` (:func:`lowbit.sw.golden.ternary_dot`).

    The tile's POPCOUNT array runs every popcount scheme on it, the activations as ternary planes: a
    binary activation is ``nz = 1`` with the sign of its bit, a ternary one its own planes, a unsigned
    activation's bit-plane ``b`` is ``nz = bit b``, ``sign = 0`` (one plane per beat), and FATNN's
    activation ``a`` in {0, 1, 2} is the planes of ``a' = a - 1``: this sum is then FATNN's kernel
    ``pc(m) - 2 pc(m & (a_sign ^ w_sign))`` (Chen et al., ICCV 2021), whose ``sum(w)`` the tile adds
    as the channel's bias (:func:`lowbit.sw.golden.fatnn_dot` with ``w_sum = 0``).

    ``target`` picks the tree (:class:`lowbit.hw.units.signed_taps.SignedTapSum`: a compressor tree of
    the FPGA's cells, or the generic adder tree).

    Ports: ``i`` carries :func:`TernaryDotInput`; ``o`` the signed result in ``[-n, n]``. Latency
    ``pipeline_depth`` cycles, one vector per cycle, whole-pipeline stall under back-pressure.
    """

    SHARED_FIELDS = ("a_nz", "a_sign")
    TAP_FIELDS = ("a_nz", "a_sign", "w_nz", "w_sign")

    def __init__(self, n, pipeline_depth=None, target="auto"):
        super().__init__(n, pipeline_depth, TernaryDotInput, target=target)

    def tap(self, payload, k):
        return payload.a_nz[k] & payload.w_nz[k], payload.a_sign[k] ^ payload.w_sign[k]
