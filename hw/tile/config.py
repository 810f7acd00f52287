"""The tile's layer configuration: CONFIGURE's three words in, the layer's derived fields and the
CONFIGURE error code out."""

from types import SimpleNamespace

from amaranth.hdl import Const, Module, Mux, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from lowbit.sw.kinds import runs_on
from lowbit.sw.protocol import (
    WORD_BITS,
    InputKind,
    configure_error,
    count_input_planes,
    count_planes,
    count_weight_planes,
    input_rows_per_word_log2,
    output_code_bits,
)

__all__ = [
    "field_bits",
    "max_in_rows_log2",
    "CHECK_LATENCY",
    "ACT_BINARY",
    "ACT_TERNARY",
    "ACT_UINT",
    "LayerLayout",
    "CheckSignature",
    "Configuration",
]

#: Cycles between a CONFIGURE's last word and its check: the configuration arithmetic (folds, word
#: counts, weight rows and the error code) is a pipeline of four register stages.
CHECK_LATENCY = 4

#: ``act_mode``: how the POPCOUNT array reads an input row (binary code, ternary planes, uint planes).
ACT_BINARY, ACT_TERNARY, ACT_UINT = 0, 1, 2


class LayerLayout(data.StructLayout):
    """The fields of an accepted layer that the tile's blocks work from, for a tile of ``geometry``.

    ``ifolds`` / ``ofolds``: input / output folds; ``planes``: passes over the input folds per output
    fold; ``weight_plane_mode``: the passes are int weight planes (the first one negative);
    ``last_layer``: accumulator words out instead of codes; ``act_mode``: ``ACT_*``; ``thresholds`` per
    channel; ``out_k``: bits per output code; ``weight_words`` / ``threshold_words`` / ``input_words``
    / ``output_words``: the lengths of LOAD_WEIGHTS, LOAD_THRESHOLDS, a RUN vector and its outputs;
    ``in_row_words``: words per input row; ``in_rows_log2``: log2 of the input rows per RUN word
    (:func:`~lowbit.sw.protocol.input_rows_per_word_log2`, rows below a word) and ``in_row_bits`` the
    bits of one; ``record_words``: words per channel in LOAD_THRESHOLDS;
    ``fold_bits``: output bits per output fold; ``weight_rows``: the layer's weight rows;
    ``out_features``: its outputs (a resident model's hidden layer pads its activations beyond them).
    """

    def __init__(self, geometry):
        g = geometry
        # Each field as wide as its largest value in a layer the tile accepts (CONFIGURE refuses larger).
        super().__init__(
            {
                "ifolds": field_bits(g.max_in_folds),
                "ofolds": field_bits(g.max_out_folds),
                "planes": 4,
                "weight_plane_mode": 1,
                "last_layer": 1,
                "act_mode": 2,
                "thresholds": field_bits(g.max_thresholds),
                "out_k": 4,
                "weight_words": field_bits(g.max_weight_rows * g.weight_row_words),
                "threshold_words": field_bits(g.max_out_folds * g.pe * (2 + g.max_thresholds)),
                "in_row_words": field_bits(g.max_input_row_words),
                "in_rows_log2": field_bits(max_in_rows_log2(g)),
                "in_row_bits": field_bits(g.simd * g.max_input_bits),
                "record_words": field_bits(2 + g.max_thresholds),
                "input_words": field_bits(g.max_in_folds * g.max_input_row_words),
                "fold_bits": range(g.pe * WORD_BITS + 1),
                "output_words": field_bits(g.max_out_folds * g.pe),
                "weight_rows": field_bits(g.max_weight_rows),
                "out_features": field_bits(g.max_out_features),
            }
        )


def max_in_rows_log2(geometry):
    """The largest ``in_rows_log2`` of a layer on the tile: its narrowest input row is ``simd`` bits (one
    plane) on the popcount families, ``simd * max_input_bits`` on NHOT."""
    g = geometry
    return input_rows_per_word_log2(g.simd if g.plane_inputs else g.simd * g.max_input_bits)


def field_bits(largest):
    """Bits of an unsigned field whose values are at most ``largest``."""
    return max(1, int(largest).bit_length())


class CheckSignature(wiring.Signature):
    """A CONFIGURE check, seen from the command decoder: it holds the command's three payload words on
    ``words``, reads ``error`` (an :class:`~lowbit.sw.protocol.ErrorCode`, 0: none) ``CHECK_LATENCY``
    cycles later, and pulses ``accept`` to make the words the layer."""

    def __init__(self):
        super().__init__({"words": Out(data.ArrayLayout(WORD_BITS, 3)), "error": In(8), "accept": Out(1)})


def _ceil_shift(value, log2):
    """``ceil(value / 2**log2)`` for an unsigned value (``log2`` an integer or a value)."""
    return (value + (1 << log2) - 1) >> log2


class Configuration(wiring.Component):
    """What follows from a layer's CONFIGURE words on a tile of ``geometry``.

    Ports:

    - ``check`` (flipped :class:`CheckSignature`): ``words`` in, CONFIGURE's payload, held still while
      it is checked; ``error`` out, the :class:`~lowbit.sw.protocol.ErrorCode` of ``words`` (0:
      accepted), computed by :func:`lowbit.sw.protocol.configure_error`, the rule the host applies
      too; ``accept`` in, load ``layer`` from ``words`` at the next clock edge;
    - ``layer`` (out, :class:`LayerLayout`): the accepted layer's fields, registers (0 after reset).

    Latency: ``error`` and the derived fields follow ``words`` after ``CHECK_LATENCY`` clock edges (a
    pipeline of registers refreshed every cycle, so that no path runs from the words through a product
    into a decision); ``accept`` is valid from then on, as long as ``words`` hold still.
    """

    def __init__(self, geometry):
        self.geometry = geometry
        self.out_bits_max = output_code_bits(geometry.max_thresholds + 1)
        super().__init__(
            {
                "check": In(CheckSignature()),
                "layer": Out(LayerLayout(geometry)),
            }
        )

    def elaborate(self, platform):
        g = self.geometry
        m = Module()
        pe_log2, simd_log2 = exact_log2(g.pe), exact_log2(g.simd)
        cfg = self.check.words
        in_f, out_f = cfg[0][:16], cfg[0][16:]
        wk, wb, nt, ik, ib = cfg[1][0:4], cfg[1][4:8], cfg[1][8:12], cfg[1][12:16], cfg[1][16:20]
        levels, group_size = cfg[2][:9], cfg[2][16:]
        plane_inputs = g.plane_inputs

        def stage(value, name):
            register = Signal(Value.cast(value).shape(), name=f"check_{name}")
            m.d.sync += register.eq(value)
            return register

        # The layer's fields as values, for the protocol's own rules (the CONFIGURE check, the planes).
        fields = SimpleNamespace(
            in_features=in_f,
            out_features=out_f,
            weight_kind=wk,
            weight_bits=wb,
            n_terms=nt,
            input_kind=ik,
            input_bits=ib,
            output_levels=levels,
            group_size=group_size,
        )
        # stage 1: folds, planes, words per row, from the words themselves
        n_ifolds = stage(_ceil_shift(in_f, simd_log2), "ifolds")
        n_ofolds = stage(_ceil_shift(out_f, pe_log2), "ofolds")
        weight_serial = Value.cast(runs_on("weight_bitserial", fields, g.family))
        input_serial = Value.cast(runs_on("input_bitserial", fields, g.family))
        is_int_pop, n_wplanes = stage(weight_serial, "int_pop"), stage(count_weight_planes(fields, g, Mux), "wplanes")
        n_planes = stage(count_planes(fields, g, Mux), "planes")
        n_thresholds = stage(Mux(levels == 0, 0, levels - 1), "thresholds")
        out_k = Const(1, 4)
        for k in range(2, self.out_bits_max + 1):
            out_k = Mux(levels > (1 << (k - 1)), k, out_k)
        n_out_k = stage(out_k, "out_k")
        if plane_inputs:
            n_in_planes = count_input_planes(fields, Mux)
            row_bits = n_in_planes * g.simd
            n_in_row_words = stage((row_bits + WORD_BITS - 1) >> exact_log2(WORD_BITS), "in_row_words")
        else:
            row_bits = g.simd * g.max_input_bits
            n_in_row_words = Const(g.max_input_row_words, 8)
        # input rows per RUN word (log2): rows below a word share words
        n_in_row_bits = stage(row_bits, "in_row_bits") if plane_inputs else Const(row_bits)
        if max_in_rows_log2(g):
            n_in_rows_log2 = stage(input_rows_per_word_log2(row_bits), "in_rows_log2")
            n_in_groups = _ceil_shift(n_ifolds, n_in_rows_log2)  # a word (or a wide row's words) each
        else:
            n_in_rows_log2, n_in_groups = Const(0, 1), n_ifolds
        # output bits per fold: PE accumulator words (last layer) or PE codes of out_k bits
        n_fold_bits = stage(Mux(levels == 0, g.pe * WORD_BITS, out_k * g.pe), "fold_bits")
        # stage 2: the word counts of a vector and of the thresholds; rows per input fold
        n_input_words = stage(n_in_groups * n_in_row_words, "input_words")
        n_output_words = stage((n_ofolds * n_fold_bits + WORD_BITS - 1) >> exact_log2(WORD_BITS), "output_words")
        n_threshold_words = stage(n_ofolds * g.pe * (n_thresholds + 2), "threshold_words")
        n_rows_per_ifold = stage(n_ofolds * n_wplanes, "rows_per_ifold")
        # stage 3: weight rows; stage 4: weight words and the error code
        n_weight_rows = stage(n_rows_per_ifold * n_ifolds, "weight_rows")
        n_weight_words = stage(n_weight_rows * g.weight_row_words, "weight_words")
        check = Signal(8)  # an error code is 8 bits wide in the ERROR response
        m.d.comb += check.eq(configure_error(fields, g, n_weight_rows, Mux))
        m.d.sync += self.check.error.eq(check)

        act_mode = Mux(input_serial, ACT_UINT, Mux(ik == InputKind.BINARY.code, ACT_BINARY, ACT_TERNARY))
        derived = {
            "ifolds": n_ifolds,
            "ofolds": n_ofolds,
            "planes": n_planes,
            "weight_plane_mode": is_int_pop,
            "last_layer": levels == 0,
            "act_mode": act_mode,
            "thresholds": n_thresholds,
            "out_k": n_out_k,
            "weight_words": n_weight_words,
            "threshold_words": n_threshold_words,
            "in_row_words": n_in_row_words,
            "in_rows_log2": n_in_rows_log2,
            "in_row_bits": n_in_row_bits,
            "record_words": n_thresholds + 2,
            "input_words": n_input_words,
            "fold_bits": n_fold_bits,
            "output_words": n_output_words,
            "weight_rows": n_weight_rows,
            "out_features": out_f,
        }
        with m.If(self.check.accept):
            m.d.sync += [self.layer[name].eq(value) for name, value in derived.items()]
        return m
