"""The tile's layer configuration: CONFIGURE's three words in, the layer's derived fields and the
CONFIGURE error code out."""

from types import SimpleNamespace

from amaranth.hdl import Const, Module, Mux, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from lowbit.sw.kinds import INPUTS, runs_on, tap_pad_code
from lowbit.sw.protocol import (
    WORD_BITS,
    InputKind,
    configure_error,
    count_input_planes,
    count_planes,
    count_weight_planes,
    input_rows_per_word_log2,
    output_code_bits,
    walk_sizes,
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
    "walk_fields",
    "ternary_planes",
    "pad_planes",
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
    ``out_features``: its outputs (a resident model's hidden layer pads its activations beyond them);
    ``input_rows``: the rows of an input vector (a walk's whole input map).

    On a tile that walks maps (:attr:`~lowbit.sw.protocol.TileGeometry.maps`) also the layer's
    :class:`~lowbit.sw.protocol.MapWalk` (``height``, ``width``, ``kernel``, ``stride``, ``padding``,
    ``pool``, ``out_height``, ``out_width``), ``in_features`` (channels per pixel), ``groups`` and
    ``out_groups`` (rows per input and output pixel), ``pool_area`` (``pool**2``), ``pad_planes`` (which of
    the first two planes of a padded tap's row are set, :func:`pad_planes`) and the walk's address steps
    in rows: ``row_stride`` (a map row), ``step_x`` / ``step_y`` (the next position across / down),
    ``pool_x`` / ``pool_y`` (the next pooled pixel across / down), ``origin`` (from the first window's
    top left, ``padding`` rows and columns outside the map, to the map's first row) and ``pool_step``
    (``pool * stride``: input pixels between pooled pixels).
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
                "input_rows": field_bits(g.max_in_folds),
            }
            | (_walk_layout(g) if g.maps else {})
        )


def _walk_layout(geometry):
    rows, steps = field_bits(geometry.max_in_folds), field_bits(32 * geometry.max_in_folds)
    fields = {"height": 8, "width": 8, "kernel": 4, "stride": 2, "padding": 4, "pool": 4, "out_height": 8}
    fields |= {"out_width": 8, "in_features": 16, "groups": rows, "out_groups": rows, "pool_area": 8}
    fields |= {"pad_planes": 2, "row_stride": rows, "pool_step": 8}
    return fields | {name: steps for name in ("step_x", "step_y", "pool_x", "pool_y", "origin")}


def ternary_planes(code):
    """The ``nz`` and ``sign`` bits of ``code - 1`` (a ternary or FATNN input row's two planes) of a code 0, 1
    or 2, on an integer or an Amaranth value."""
    return code != 1, code == 0


def pad_planes(input_kind, input_bits):
    """Which of the first two bit-planes of an input row hold a padded tap's code
    (:func:`lowbit.sw.kinds.tap_pad_code`) as a 1 on the live lanes: bit ``j`` for plane ``j`` (binary
    +1: the code's plane; FATNN's code 0: both of ``code - 1``'s ``nz`` and ``sign``; the kinds whose pad
    code is all-zero bits, 0)."""
    code = tap_pad_code(input_kind, input_bits)
    if input_kind == "binary":
        return code
    if input_kind in ("ternary", "fatnn"):
        nz, sign = ternary_planes(code)
        return int(nz) | (int(sign) << 1)
    return 0 if code == 0 else None


def walk_fields(words):
    """The :class:`~lowbit.sw.protocol.MapWalk` of a layer's two walk words, as Amaranth values: a kernel
    of 0 is :data:`~lowbit.sw.protocol.DENSE` (as :meth:`~lowbit.sw.protocol.MapWalk.decode` reads it)."""
    first, second = words
    dense = first[16:20] == 0
    return SimpleNamespace(
        height=Mux(dense, 1, first[0:8]),
        width=Mux(dense, 1, first[8:16]),
        kernel=Mux(dense, 1, first[16:20]),
        stride=Mux(dense, 1, first[20:24]),
        padding=Mux(dense, 0, first[24:28]),
        pool=Mux(dense, 1, first[28:32]),
        out_height=Mux(dense, 1, second[0:8]),
        out_width=Mux(dense, 1, second[8:16]),
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
    ``words`` (and, on a tile that walks maps, the layer's two walk words after them: zero for CONFIGURE),
    reads ``error`` (an :class:`~lowbit.sw.protocol.ErrorCode`, 0: none) ``CHECK_LATENCY``
    cycles later, and pulses ``accept`` to make the words the layer."""

    def __init__(self, words=3):
        super().__init__({"words": Out(data.ArrayLayout(WORD_BITS, words)), "error": In(8), "accept": Out(1)})


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
                "check": In(CheckSignature(geometry.model_layer_words)),
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
        sizes = None
        if g.maps:  # the walk's sizes (protocol.walk_sizes), registered
            fields.walk = walk = walk_fields([cfg[3], cfg[4]])
            limit = g.max_in_folds + 1  # a size beyond a bank: refused whatever its value (saturated)

            def walk_stage(value, name):
                if name in ("groups", "out_groups", "row_stride", "out_row"):
                    value = Mux(value > limit, limit, value)[: field_bits(limit)]
                return stage(value, name)

            sizes = walk_sizes(fields, g, Mux, walk_stage)
            sizes = {name: stage(value, f"walk_{name}") for name, value in sizes.items()}
            n_ifolds, n_input_rows = sizes["in_folds"], sizes["input_rows"]
        else:  # a vector's rows (a walk's groups, in_folds and input_rows, as walk_sizes has them for DENSE)
            fields.walk = None
            n_ifolds = n_input_rows = stage(_ceil_shift(in_f, simd_log2), "groups")
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
            n_in_groups = _ceil_shift(n_input_rows, n_in_rows_log2)  # a word (or a wide row's words) each
        else:
            n_in_rows_log2, n_in_groups = Const(0, 1), n_input_rows
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
        m.d.comb += check.eq(configure_error(fields, g, n_weight_rows, Mux, sizes))
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
            "input_rows": n_input_rows,
        }
        if g.maps:
            derived |= self._walk_derived(sizes, fields, walk, ik)
        with m.If(self.check.accept):
            m.d.sync += [self.layer[name].eq(value) for name, value in derived.items()]
        return m

    def _walk_derived(self, sizes, fields, walk, ik):
        """The walk's fields of :class:`LayerLayout`: its words, and its sizes and steps (registers)."""
        g = self.geometry
        derived = {name: getattr(walk, name) for name in vars(walk)}
        planes = Const(0, 2)
        for kind in INPUTS:
            if g.plane_inputs and str(kind) in ("binary", "ternary", "fatnn"):
                planes = Mux(ik == kind.code, pad_planes(str(kind), 1 if str(kind) == "binary" else 2), planes)
        names = ("groups", "out_groups", "row_stride", "step_x", "step_y", "pool_x", "pool_y", "origin", "pool_step")
        derived |= {name: sizes[name] for name in names}
        derived |= {"in_features": fields.in_features, "pool_area": walk.pool * walk.pool, "pad_planes": planes}
        return derived
