"""FATNN's fast ternary kernel: activations in {0, 1, 2} against ternary weights, two popcounts."""

from amaranth.hdl import signed
from amaranth.lib import data

from lowbit.hw.units.signed_taps import SignedTapSum, signed_tap_width

__all__ = ["FATNNDotInput", "fatnn_dot_width", "FATNNDotProduct"]


def FATNNDotInput(n):
    """The planes of ``a' = a - 1`` (``a_nz``, ``a_sign``), of the weights (``w_nz``, ``w_sign``), ``n`` bits
    each, and ``w_sum``: the channel's ``sum(w)``, signed, in ``[-n, n]``.

    The activation planes come from :func:`lowbit.sw.kinds.encodings.encode_fatnn_activation`, the weight planes
    from :func:`lowbit.sw.kinds.encodings.encode_ternary`. Padding taps have ``a_nz = w_nz = 0``.
    """
    return data.StructLayout({"a_nz": n, "a_sign": n, "w_nz": n, "w_sign": n, "w_sum": signed(signed_tap_width(n))})


def fatnn_dot_width(n):
    """Signed width of the result, which lies in ``[-2n, 2n]``."""
    return (2 * n).bit_length() + 1


class FATNNDotProduct(SignedTapSum):
    """FATNN's kernel: ``sum_k a_k * w_k`` for ``a`` in {0, 1, 2} and ternary ``w``, as
    ``pc(m) - 2 * pc(m & (a_sign ^ w_sign)) + w_sum`` with ``m = a_nz & w_nz`` on the planes of ``a' = a - 1``
    (:func:`lowbit.sw.golden.fatnn_dot`).

    The two popcounts are merged into one tree of 2-bit leaves (``pc(m) - 2 pc(m & x)`` is the sum of
    taps that are +1 where ``m & ~x`` and -1 where ``m & x``; see :class:`SignedTapSum`), and the
    per-channel correction ``w_sum`` is one more leaf of the same tree, so it is pipelined with it.

    Ports: ``i`` carries :func:`FATNNDotInput`; ``o`` the signed result (:func:`fatnn_dot_width`).
    Latency ``pipeline_depth`` cycles (default 2), one vector per cycle, whole-pipeline stall under
    back-pressure. In a :class:`lowbit.hw.units.unit.PEArray` the activation planes are shared.
    """

    EXTRA_LEAVES = 1
    SHARED_FIELDS = ("a_nz", "a_sign")
    TAP_FIELDS = ("a_nz", "a_sign", "w_nz", "w_sign")

    def __init__(self, n, pipeline_depth=None, target="auto"):
        super().__init__(
            n,
            pipeline_depth,
            FATNNDotInput,
            result_width=fatnn_dot_width(n) if isinstance(n, int) else None,
            target=target,
        )

    def tap(self, payload, k):
        return payload.a_nz[k] & payload.w_nz[k], payload.a_sign[k] ^ payload.w_sign[k]

    def extra_leaves(self, payload):
        return [payload.w_sum]
