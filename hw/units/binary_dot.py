"""The binary (XNOR-popcount) dot-product unit."""

from amaranth.lib import data

from lowbit.hw.units.signed_taps import SignedTapSum, signed_tap_width

__all__ = ["BinaryDotInput", "binary_dot_width", "BinaryDotProduct"]


def BinaryDotInput(n):
    """Payload of the input stream: ``a``, ``w`` and ``valid``, ``n`` bits each, in that order from bit 0.

    Element ``i`` of each vector is bit ``i`` of its field (see ``docs/packing.md``).
    """
    return data.StructLayout({"a": n, "w": n, "valid": n})


binary_dot_width = signed_tap_width


class BinaryDotProduct(SignedTapSum):
    """Bipolar dot product of two ``n``-element binary vectors.

    Computes ``dot = 2 * popcount(~(a ^ w) & valid) - popcount(valid)``, with bit 1 = +1 and bit 0 = -1
    (FINN's bipolar convention); taps whose ``valid`` bit is 0 count as 0, which is how a layer whose
    width is not a multiple of ``n`` pads its last fold. This is :func:`lowbit.sw.golden.binary_dot`.

    Parameters
    ----------
    n : int
        Number of taps, at least 1.
    pipeline_depth : int or None
        Register stages (default: 2, or 1 where the tree is that shallow), from 1 (registered output
        only) to ``max_pipeline_depth(n)`` (``ceil(log2(n)) + 1``: a register after every adder level).

    Attributes
    ----------
    latency : int
        Cycles from an input transfer to its result on ``o`` without back-pressure; equals
        ``pipeline_depth``.

    Ports
    -----
    i : In(stream.Signature(BinaryDotInput(n)))
    o : Out(stream.Signature(signed(n.bit_length() + 1)))

    Throughput is one vector per cycle. All stages advance together when ``o`` is empty or being read,
    so back-pressure stalls the whole pipeline and no result is lost or duplicated.
    """

    #: In a PEArray the activations and the valid mask (the layer's width) are shared.
    SHARED_FIELDS = ("a", "valid")

    def __init__(self, n, pipeline_depth=None):
        super().__init__(n, pipeline_depth, BinaryDotInput)

    def tap(self, payload, k):
        # A valid tap is +1 where a and w agree and -1 where they differ.
        return payload.valid[k], payload.a[k] ^ payload.w[k]
