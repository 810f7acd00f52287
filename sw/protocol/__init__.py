"""The tile's stream protocol, defined once: imported by the hardware (:mod:`lowbit.hw.tile.tile`), the host
driver (:mod:`lowbit.sw.host`) and the tests. ``docs/protocol.md`` describes it in prose.

Both directions carry 32-bit words. A message is a header word, ``opcode`` in bits 31..24 and
``length`` (the number of words that follow) in bits 23..0, then ``length`` payload words.

Standard library only (no NumPy, no Amaranth): plain integers, enums and the tile geometry (how many
words each command of a layer takes for a given ``PE`` x ``SIMD`` array). The kinds and which tile runs
which pair of them come from the kinds registry, :mod:`lowbit.sw.kinds`; :func:`configure_error` is the
CONFIGURE check, written once for Python integers and for the tile's Amaranth values.
"""

import enum
from dataclasses import dataclass

from lowbit.sw.kinds import (
    FGQ_SCALE_BITS,
    INPUTS,
    Family,
    InputKind,
    WeightKind,
    kind_code,
    runs_on,
    support_error,
    unsupported_reason,
)

__all__ = [
    "WORD_BITS",
    "MAX_N_TERMS",
    "MAX_LENGTH",
    "SEARCH_FROM",
    "MODES",
    "Opcode",
    "RUN_OPCODES",
    "Response",
    "ErrorCode",
    "WeightKind",
    "InputKind",
    "Family",
    "ProtocolError",
    "header",
    "parse_header",
    "LayerConfig",
    "MapWalk",
    "DENSE",
    "walk_of",
    "walk_sizes",
    "walk_conditions",
    "TileGeometry",
    "output_code_bits",
    "configure_error",
    "count_weight_planes",
    "count_planes",
    "count_input_planes",
    "count_input_levels",
    "input_rows_per_word_log2",
    "chain_error",
    "model_error",
    "refusal_reason",
    "model_refusal_reason",
]

WORD_BITS = 32
#: The most signed power-of-two terms per weight an n-hot tile is generated with: 4, what an 8-bit integer
#: weight needs (:func:`lowbit.sw.kinds.int_weight_terms`), so that uniform 8-bit models run on the tile.
MAX_N_TERMS = 4
MAX_LENGTH = (1 << 24) - 1
#: How the host runs a model on a tile: ``"auto"`` resident where the tile holds the whole model, else
#: streaming; ``"resident"`` (LOAD_MODEL: the model loaded once, the activations stay on the tile;
#: refused when the tile cannot hold it); ``"streaming"`` (a layer at a time, the host sending each
#: layer's outputs back as the next layer's inputs).
MODES = ("auto", "resident", "streaming")


class Opcode(enum.IntEnum):
    """Host -> tile commands."""

    CONFIGURE = 0x01  #: 3 words: :class:`LayerConfig`; replaces the layer, forgets its weights
    LOAD_WEIGHTS = 0x02  #: the layer's weight rows (:meth:`TileGeometry.weight_words`)
    LOAD_THRESHOLDS = 0x03  #: per output channel: bias, descending flag, thresholds
    RUN = 0x04  #: a batch of input vectors (:meth:`TileGeometry.input_words` each)
    IDENTIFY = 0x05  #: no payload; answered with DATA: the tile's parameters
    LOAD_MODEL = 0x06  #: 1 + 3 L words (5 L on a tile that walks maps): L, then every layer's words: resident mode
    CLASSIFY = 0x07  #: RUN of a resident model, answered with each vector's class index (one word)


#: The commands that carry input vectors (RUN's payload) through the layer or the resident model.
RUN_OPCODES = (Opcode.RUN, Opcode.CLASSIFY)


class Response(enum.IntEnum):
    """Tile -> host responses: exactly one per command, in order."""

    OK = 0x80  #: length 0: CONFIGURE / LOAD_* done
    DATA = 0x81  #: RUN's outputs, IDENTIFY's parameters
    ERROR = 0xEE  #: length 1: one word, error code in bits 7..0, the offending opcode in bits 15..8


class ErrorCode(enum.IntEnum):
    UNKNOWN_OPCODE = 0x01  #: the header's opcode is not a command
    BAD_LENGTH = 0x02  #: the length does not match what the command needs for the layer
    UNSUPPORTED = 0x03  #: this tile cannot run the layer (kind, bits, sizes of zero)
    TOO_LARGE = 0x04  #: the layer does not fit the weight, threshold or input memories
    NOT_CONFIGURED = 0x05  #: LOAD_* or RUN before a valid CONFIGURE
    NOT_LOADED = 0x06  #: RUN before the layer's weights and thresholds are loaded


class ProtocolError(ValueError):
    """A word sequence or a layer that the protocol cannot express."""


def header(opcode, length):
    """The header word of a message."""
    if not 0 <= int(opcode) <= 0xFF:
        raise ProtocolError(f"opcode must fit in 8 bits, not {opcode!r}")
    if not 0 <= length <= MAX_LENGTH:
        raise ProtocolError(f"length must be between 0 and {MAX_LENGTH}, not {length}")
    return (int(opcode) << 24) | length


def parse_header(word):
    """``(opcode, length)`` of a header word."""
    return (word >> 24) & 0xFF, word & MAX_LENGTH


def output_code_bits(levels):
    """Bits of an output code with ``levels`` values (2 -> 1, 3 -> 2, 2**k -> k)."""
    return max(1, (levels - 1).bit_length())


@dataclass(frozen=True)
class MapWalk:
    """How a resident layer walks a feature map on a tile that walks maps (:attr:`TileGeometry.maps`): its
    input map is ``height`` x ``width`` pixels of the layer's ``in_features`` channels, stored pixel by
    pixel (HWC) as ``ceil(in_features / simd)`` input rows each; the layer is a ``kernel`` x ``kernel``
    convolution of ``stride`` with ``padding`` taps of the input kind's pad code on each side, followed by
    ``pool`` x ``pool`` max-pooling of stride ``pool`` on the output codes, of which it computes the
    ``out_height`` x ``out_width`` pooled pixels (at most what fits: ``(out * pool - 1) * stride + kernel
    <= size + 2 * padding``). A dense layer is :data:`DENSE`: one pixel, a 1 x 1 kernel.

    Its two words follow the layer's CONFIGURE words in LOAD_MODEL: ``height | width << 8 | kernel << 16
    | stride << 20 | padding << 24 | pool << 28`` and ``out_height | out_width << 8``; a kernel of 0 is
    :data:`DENSE` (the other fields are then not read: a dense layer's two words are zero)."""

    height: int
    width: int
    kernel: int
    stride: int
    padding: int
    pool: int
    out_height: int
    out_width: int

    def __post_init__(self):
        for name, low, high in (
            ("height", 1, 255),
            ("width", 1, 255),
            ("kernel", 1, 15),
            ("stride", 1, 15),
            ("padding", 0, 15),
            ("pool", 1, 15),
            ("out_height", 1, 255),
            ("out_width", 1, 255),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ProtocolError(f"{name} must be an integer from {low} to {high}, not {value!r}")

    @property
    def taps(self):
        """Pixels in a window: ``kernel * kernel``."""
        return self.kernel * self.kernel

    @property
    def positions(self):
        """Output positions the layer computes per vector: every pooled pixel's ``pool * pool``."""
        return self.out_height * self.out_width * self.pool * self.pool

    def encode(self):
        """The two words that follow the layer's CONFIGURE words in LOAD_MODEL."""
        if self == DENSE:
            return [0, 0]
        first = (
            self.height
            | (self.width << 8)
            | (self.kernel << 16)
            | (self.stride << 20)
            | (self.padding << 24)
            | (self.pool << 28)
        )
        return [first, self.out_height | (self.out_width << 8)]

    @classmethod
    def decode(cls, words):
        """The walk of the two words (None for a kernel of 0: a dense layer); :class:`ProtocolError` for a
        field out of range."""
        first, second = words
        if (first >> 16) & 0xF == 0:
            return None
        fields = [first & 0xFF, (first >> 8) & 0xFF] + [(first >> s) & 0xF for s in (16, 20, 24, 28)]
        return cls(*fields, second & 0xFF, (second >> 8) & 0xFF)


#: The walk of a dense layer: one pixel, a 1 x 1 kernel, no padding or pooling.
DENSE = MapWalk(1, 1, 1, 1, 0, 1, 1, 1)


def walk_of(layer):
    """A layer's :class:`MapWalk`: its ``walk``, or :data:`DENSE`."""
    return DENSE if layer.walk is None else layer.walk


@dataclass(frozen=True)
class LayerConfig:
    """One layer as the tile sees it. ``output_levels`` is 0 for the last layer (raw accumulators),
    else the number of codes its thresholds emit (``thresholds`` per channel = ``output_levels - 1``);
    ``group_size`` is an FGQ layer's N (inputs per scale), 0 for every other kind. ``walk`` (a resident
    layer on a tile that walks maps: :class:`MapWalk`; None for a dense layer) makes ``in_features`` the
    channels of each input pixel; the layer's dot products then have ``kernel**2 * in_features`` inputs."""

    in_features: int
    out_features: int
    weight_kind: WeightKind
    weight_bits: int
    n_terms: int
    input_kind: InputKind
    input_bits: int
    output_levels: int
    group_size: int = 0
    walk: MapWalk | None = None

    def __post_init__(self):
        for name, high in (
            ("in_features", 0xFFFF),
            ("out_features", 0xFFFF),
            ("weight_bits", 15),
            ("n_terms", 15),
            ("input_bits", 15),
            ("output_levels", 0x1FF),
            ("group_size", 0xFFFF),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= high:
                raise ProtocolError(f"{name} must be an integer from 0 to {high}, not {value!r}")
        object.__setattr__(self, "weight_kind", WeightKind.parse(self.weight_kind))
        object.__setattr__(self, "input_kind", InputKind.parse(self.input_kind))
        if self.walk == DENSE:
            object.__setattr__(self, "walk", None)
        if self.walk is not None and not isinstance(self.walk, MapWalk):
            raise ProtocolError(f"walk must be a MapWalk or None, not {self.walk!r}")

    @property
    def dot_length(self):
        """Inputs of each of the layer's dot products: ``in_features``, times the window's pixels for a walk."""
        return self.in_features * walk_of(self).taps

    @property
    def last(self):
        return self.output_levels == 0

    @property
    def thresholds(self):
        """Thresholds per output channel."""
        return 0 if self.last else self.output_levels - 1

    def encode(self):
        """The three payload words of CONFIGURE (a walk is not among them: :meth:`TileGeometry.model_words`)."""
        return [
            self.in_features | (self.out_features << 16),
            self.weight_kind.code
            | (self.weight_bits << 4)
            | (self.n_terms << 8)
            | (self.input_kind.code << 12)
            | (self.input_bits << 16),
            self.output_levels | (self.group_size << 16),
        ]

    @classmethod
    def decode(cls, words):
        """The configuration of CONFIGURE's three words; ``ValueError`` for a kind code that names no kind."""
        w0, w1, w2 = words
        return cls(
            w0 & 0xFFFF,
            w0 >> 16,
            WeightKind.from_code(w1 & 0xF),
            (w1 >> 4) & 0xF,
            (w1 >> 8) & 0xF,
            InputKind.from_code((w1 >> 12) & 0xF),
            (w1 >> 16) & 0xF,
            w2 & 0x1FF,
            w2 >> 16,
        )


def _ceil_div(a, b):
    return -(-a // b)


#: Thresholds per channel from which a tile searches them, one comparison per bit of the code, instead of
#: comparing all of them at once: 16 and more, outputs of 5 bits and more (:attr:`TileGeometry.search_levels`).
SEARCH_FROM = 16


@dataclass(frozen=True)
class TileGeometry:
    """The parameters of a generated tile, and from them the words each command of a layer takes.

    ``family`` selects the MAC array; ``pe`` output channels x ``simd`` inputs per cycle; ``n_terms``
    and ``exponent_bits`` describe the n-hot array's weight terms, ``group_size`` the FGQ array's scale
    groups (inputs per scale, a power of two up to ``simd``; 0 on the other families); the ``max_*``
    fields size the memories; ``acc_width`` is the accumulator (and threshold) width; ``max_thresholds`` the
    thresholds per channel the threshold unit holds.
    """

    family: Family
    pe: int
    simd: int
    max_in_features: int
    max_out_features: int
    max_weight_rows: int
    acc_width: int = 24
    max_thresholds: int = 3
    max_input_bits: int = 8
    n_terms: int = 0
    exponent_bits: int = 3
    max_layers: int = 0
    group_size: int = 0
    maps: bool = False

    def __post_init__(self):
        object.__setattr__(self, "family", Family(self.family))
        for name, high in (
            ("pe", 0xFFFF),
            ("simd", 0xFFFF),
            ("max_in_features", 0xFFFF),
            ("max_out_features", 0xFFFF),
            ("max_weight_rows", 1 << 24),
            ("acc_width", WORD_BITS),
            ("max_thresholds", 255),
            ("max_input_bits", 8),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= high:
                raise ProtocolError(f"{name} must be an integer from 1 to {high}, not {value!r}")
        for name in ("pe", "simd"):
            value = getattr(self, name)
            if value & (value - 1):
                raise ProtocolError(f"{name} must be a power of two, not {value}")
        if self.family == Family.NHOT and not 1 <= self.n_terms <= MAX_N_TERMS:
            raise ProtocolError(f"an n-hot tile needs n_terms from 1 to {MAX_N_TERMS}, not {self.n_terms}")
        if self.family == Family.FGQ:
            g = self.group_size
            if not isinstance(g, int) or isinstance(g, bool) or g < 1 or g & (g - 1) or g > self.simd:
                raise ProtocolError(
                    f"an fgq tile needs group_size a power of two from 1 to simd ({self.simd}), not {g!r}"
                )
        elif self.group_size != 0:
            raise ProtocolError(f"only an fgq tile has a group_size, not a {self.family.name.lower()} tile")
        if not 2 <= self.acc_width <= WORD_BITS:
            raise ProtocolError(f"acc_width must be between 2 and {WORD_BITS}, not {self.acc_width}")
        if not isinstance(self.max_layers, int) or isinstance(self.max_layers, bool) or not 0 <= self.max_layers <= 255:
            raise ProtocolError(f"max_layers must be an integer from 0 to 255, not {self.max_layers!r}")
        if not isinstance(self.maps, bool):
            raise ProtocolError(f"maps must be True or False, not {self.maps!r}")
        if self.maps and (not self.max_layers or self.family == Family.FGQ):
            raise ProtocolError("only a resident tile (max_layers > 0) of a family other than fgq walks maps")

    # --- per tile -------------------------------------------------------------------------------------
    def encode(self):
        """The five words of IDENTIFY's DATA."""
        return [
            int(self.family)
            | (self.n_terms << 4)
            | (self.exponent_bits << 8)
            | (self.max_input_bits << 12)
            | (self.acc_width << 16)
            | (self.max_layers << 24),
            self.pe | (self.simd << 16),
            self.max_in_features | (self.max_out_features << 16),
            self.max_weight_rows,
            self.max_thresholds | (self.maps << 15) | (self.group_size << 16),
        ]

    @classmethod
    def decode(cls, words):
        w0, w1, w2, w3, w4 = words
        return cls(
            Family(w0 & 0xF),
            w1 & 0xFFFF,
            w1 >> 16,
            w2 & 0xFFFF,
            w2 >> 16,
            w3,
            acc_width=(w0 >> 16) & 0xFF,
            max_thresholds=w4 & 0x7FFF,
            max_input_bits=(w0 >> 12) & 0xF,
            n_terms=(w0 >> 4) & 0xF,
            exponent_bits=(w0 >> 8) & 0xF,
            max_layers=(w0 >> 24) & 0xFF,
            group_size=w4 >> 16,
            maps=bool((w4 >> 15) & 1),
        )

    def label(self):
        """The array in a few words: ``binary tile PE=8 SIMD=64 acc_width=24``."""
        return f"{self.family.name.lower()} tile PE={self.pe} SIMD={self.simd} acc_width={self.acc_width}"

    def describe(self):
        """Everything IDENTIFY reports, in words."""
        thresholds = f"{self.max_thresholds} threshold{'' if self.max_thresholds == 1 else 's'}"
        text = (
            f"{self.label()}, layers up to {self.max_in_features} inputs and {self.max_out_features} outputs, "
            f"{self.max_weight_rows} weight rows, {thresholds} per channel, inputs up to {self.max_input_bits} bits"
        )
        if self.n_terms:
            text += f", {self.n_terms} terms per weight with {self.exponent_bits} exponent bits"
        if self.group_size:
            text += f", a scale per {self.group_size} inputs"
        if self.max_layers:
            text += f", resident models of up to {self.max_layers} layers"
        if self.maps:
            text += " that walk feature maps"
        return text

    @property
    def search_levels(self):
        """The levels of the tile's threshold search, one per bit of its widest code, on a tile with
        :data:`SEARCH_FROM` or more thresholds per channel (it then needs each channel's thresholds in
        order, ``docs/protocol.md``); 0 on a tile that compares all of them at once."""
        return output_code_bits(self.max_thresholds + 1) if self.max_thresholds >= SEARCH_FROM else 0

    @property
    def max_in_folds(self):
        return _ceil_div(self.max_in_features, self.simd)

    @property
    def max_out_folds(self):
        return _ceil_div(self.max_out_features, self.pe)

    @property
    def plane_inputs(self):
        """Whether input rows are bit-planes (BINARY, POPCOUNT) rather than codes (NHOT, FGQ)."""
        return self.family in (Family.BINARY, Family.POPCOUNT)

    @property
    def tap_bits(self):
        """Weight bits per tap in a weight row: 1 (BINARY), 2 (POPCOUNT and FGQ: ``nz``, ``sign``), the n-hot
        terms. FGQ's rows also hold :attr:`scale_bits`."""
        if self.family == Family.BINARY:
            return 1
        if self.family in (Family.POPCOUNT, Family.FGQ):
            return 2
        return self.n_terms * (2 + self.exponent_bits)

    @property
    def scale_bits(self):
        """Bits of the group scales in one channel's slot of a weight row: ``simd / group_size`` scales of
        :data:`~lowbit.sw.kinds.FGQ_SCALE_BITS` bits on FGQ, 0 on the other families."""
        return self.simd // self.group_size * FGQ_SCALE_BITS if self.group_size else 0

    @property
    def slot_bits(self):
        """Bits of one channel's slot in a weight row: its taps' weight bits and its scales."""
        return self.simd * self.tap_bits + self.scale_bits

    @property
    def weight_row_bits(self):
        return self.pe * self.slot_bits

    @property
    def weight_row_words(self):
        return _ceil_div(self.weight_row_bits, WORD_BITS)

    # --- per layer ------------------------------------------------------------------------------------
    def input_planes(self, layer):
        """Bit-planes of one input row on the BINARY and POPCOUNT arrays: 1 (binary: the code), 2 (ternary, FATNN:
        the non-zero and sign planes of ``code - 1``), ``input_bits`` (uint: plane ``p`` holds bit
        ``input_bits - 1 - p``, the most significant first): :func:`count_input_planes`."""
        return count_input_planes(layer, _select)

    def input_row_bits(self, layer):
        """Bits of one input row (``simd`` inputs). BINARY and POPCOUNT: plane-major, plane ``j`` at bits
        ``j * simd .. (j + 1) * simd - 1`` (:meth:`input_planes`), input ``t`` at bit ``t`` of each plane.
        NHOT and FGQ: ``simd`` codes of ``max_input_bits`` bits each, code ``t`` at bit ``t * max_input_bits``."""
        if self.plane_inputs:
            return self.simd * self.input_planes(layer)
        return self.simd * self.max_input_bits

    def channel_groups(self, layer):
        """Input rows per pixel (per vector of a dense layer): ``ceil(in_features / simd)`` (:func:`walk_sizes`)."""
        return walk_sizes(layer, self)["groups"]

    def in_folds(self, layer):
        """Input folds of a dot product: the window's pixels times :meth:`channel_groups` (:func:`walk_sizes`)."""
        return walk_sizes(layer, self)["in_folds"]

    def input_rows(self, layer):
        """Input rows of one input vector, a walk's whole input map (:func:`walk_sizes`)."""
        return walk_sizes(layer, self)["input_rows"]

    def out_folds(self, layer):
        return _ceil_div(layer.out_features, self.pe)

    def weight_planes(self, layer):
        """Weight rows per (output fold, input fold): :func:`count_weight_planes`."""
        return count_weight_planes(layer, self, _select)

    def planes(self, layer):
        """Passes over the input folds per output fold: :func:`count_planes`."""
        return count_planes(layer, self, _select)

    def input_row_words(self, layer):
        """Words of one input row wider than a word (rows of a word or less share words:
        :meth:`input_rows_per_word`)."""
        return _ceil_div(self.input_row_bits(layer), WORD_BITS)

    def input_rows_per_word(self, layer):
        """Input rows in one word of RUN: :func:`input_rows_per_word_log2` of :meth:`input_row_bits`."""
        return 1 << input_rows_per_word_log2(self.input_row_bits(layer))

    @property
    def max_input_row_words(self):
        return _ceil_div(self.simd * self.max_input_bits, WORD_BITS)

    def weight_rows(self, layer):
        return self.out_folds(layer) * self.weight_planes(layer) * self.in_folds(layer)

    def weight_words(self, layer):
        return self.weight_rows(layer) * self.weight_row_words

    def threshold_words(self, layer):
        """Words of LOAD_THRESHOLDS: per padded output channel, bias, descending and the thresholds."""
        return self.out_folds(layer) * self.pe * (2 + layer.thresholds)

    def input_words(self, layer):
        """Words of one input vector in RUN: its :meth:`input_rows`, :meth:`input_rows_per_word` to a word
        (the last word of a vector zero-padded) or :meth:`input_row_words` words each."""
        return _ceil_div(self.input_rows(layer), self.input_rows_per_word(layer)) * self.input_row_words(layer)

    def output_words(self, layer):
        """Words of one output vector in RUN's DATA: the codes of its ``out_folds * pe`` (padded) channels
        as one bit string, channel ``j`` at bit ``j * k``, zero-padded to whole words; or (last layer) one
        sign-extended accumulator word per channel."""
        if layer.last:
            return self.out_folds(layer) * self.pe
        return _ceil_div(self.out_folds(layer) * self.pe * output_code_bits(layer.output_levels), WORD_BITS)

    def cycles_per_vector(self, layer):
        """MAC-array cycles per input vector: ceil(out/PE) * in_folds * planes, at every position of a walk."""
        return walk_of(layer).positions * self.out_folds(layer) * self.in_folds(layer) * self.planes(layer)

    def check(self, layer):
        """The :class:`ErrorCode` the tile answers CONFIGURE with, or ``None`` if it accepts the layer."""
        code = configure_error(layer, self, self.weight_rows(layer), lambda c, a, b: a if c else b)
        return ErrorCode(code) if code else None

    # --- per resident model (LOAD_MODEL) --------------------------------------------------------------
    @property
    def record_words(self):
        """Words per channel in a resident model's LOAD_THRESHOLDS: bias, descending and ``max_thresholds``."""
        return 2 + self.max_thresholds

    @property
    def model_layer_words(self):
        """Words per layer in LOAD_MODEL: CONFIGURE's three, and a walk's two on a tile that walks maps."""
        return 5 if self.maps else 3

    def model_words(self, layers):
        """The payload of LOAD_MODEL: the number of layers, then each layer's CONFIGURE words (and, on a tile
        that walks maps, its :class:`MapWalk`'s words). :class:`ProtocolError` for a walk on another tile."""
        words = [len(layers)]
        for index, layer in enumerate(layers):
            words += layer.encode()
            if self.maps:
                words += walk_of(layer).encode()
            elif layer.walk is not None:
                raise ProtocolError(f"layer {index} walks a feature map: the tile does not walk maps")
        return words

    def model_weight_words(self, layers):
        """Words of a resident model's LOAD_WEIGHTS: every layer's weight rows, layer 0 first."""
        return sum(self.weight_words(layer) for layer in layers)

    def model_threshold_words(self, layers):
        """Words of a resident model's LOAD_THRESHOLDS: every padded channel of every layer, in order, a
        record of :attr:`record_words` words (thresholds beyond the layer's are ignored)."""
        return sum(self.out_folds(layer) for layer in layers) * self.pe * self.record_words

    def model_check(self, layers):
        """The :class:`ErrorCode` the tile answers LOAD_MODEL with, or ``None`` if it accepts the model."""
        code = model_error(layers, self)
        return ErrorCode(code) if code else None


def _select(condition, if_true, if_false):
    """:func:`configure_error`'s ``select`` on Python integers (the hardware passes ``Mux``)."""
    return if_true if condition else if_false


def count_weight_planes(layer, geometry, select):
    """Weight rows per (output fold, input fold): the weight bit-planes of a layer that the family runs
    on its weight planes bit-serially (int weights against binary input on the popcount array), else 1.
    On integers or Amaranth values (``select`` as in :func:`configure_error`)."""
    return select(runs_on("weight_bitserial", layer, geometry.family), layer.weight_bits, 1)


def count_planes(layer, geometry, select):
    """Passes over the input folds per output fold: the input bit-planes of a layer run on its input
    planes bit-serially (uint input on the popcount array), else :func:`count_weight_planes`."""
    return select(
        runs_on("input_bitserial", layer, geometry.family),
        layer.input_bits,
        count_weight_planes(layer, geometry, select),
    )


def count_input_planes(layer, select):
    """Bit-planes of an input code on the popcount array: the kind's ``INPUTS[kind].planes``, or
    ``input_bits`` for the kinds whose codes are k-bit numbers."""
    planes = layer.input_bits
    for kind, info in INPUTS.items():
        if info.planes is not None:
            planes = select(kind_code(layer.input_kind) == kind.code, info.planes, planes)
    return planes


def input_rows_per_word_log2(row_bits):
    """log2 of the input rows of ``row_bits`` bits that one word of RUN carries: the largest power of two
    of rows that fits in a word (``row_bits`` of a power of two: 32 / ``row_bits``), 0 for rows of a word
    or more. Rows never straddle a word, and a vector starts at a new word. On an integer or an Amaranth
    value (a sum of comparisons)."""
    return sum((row_bits <= (WORD_BITS >> k) for k in range(1, WORD_BITS.bit_length())), 0)


def count_input_levels(layer, select):
    """The number of codes of a layer's input kind at its ``input_bits`` (``INPUTS[kind].levels``): what the
    layer before it must emit in a resident model. On integers or Amaranth values, as
    :func:`count_input_planes`."""
    levels = 0
    for kind, info in INPUTS.items():
        levels = select(kind_code(layer.input_kind) == kind.code, info.levels(layer.input_bits), levels)
    return levels


def chain_error(previous, layer, last, select):
    """The :class:`ErrorCode` of ``layer`` in a resident model after ``previous`` (None for layer 0), 0 when
    they chain: a hidden layer emits codes and the last its accumulators (``output_levels == 0`` exactly
    when ``last``); a layer takes as many inputs as the layer before emits outputs, and its input kind has
    as many codes as the layer before emits levels; its input map (:class:`MapWalk`) is the map the layer
    before emits, and the last layer emits one pixel. Else UNSUPPORTED. On integers or Amaranth values (as
    :func:`configure_error`; ``last`` is then a 1-bit value)."""
    walk = walk_of(layer)
    bad = ((layer.output_levels == 0) != last) | (last & ((walk.out_height != 1) | (walk.out_width != 1)))
    if previous is not None:
        before = walk_of(previous)
        bad = (
            bad
            | (layer.in_features != previous.out_features)
            | (count_input_levels(layer, select) != previous.output_levels)
            | (walk.height != before.out_height)
            | (walk.width != before.out_width)
        )
    return select(bad, int(ErrorCode.UNSUPPORTED), 0)


def model_error(layers, geometry):
    """The :class:`ErrorCode` of LOAD_MODEL for ``layers`` (:class:`LayerConfig`), 0 when the tile holds
    the model: UNSUPPORTED for no layers, TOO_LARGE for more than ``max_layers``; then per layer in order
    :func:`configure_error` and :func:`chain_error`; then TOO_LARGE when the layers' weight rows together
    exceed ``max_weight_rows`` or their output folds ``max_out_folds`` (the threshold memories). The tile
    evaluates the same checks in the same order (:mod:`lowbit.hw.tile.decoder`)."""
    g = geometry
    if not layers:
        return int(ErrorCode.UNSUPPORTED)
    if len(layers) > g.max_layers:
        return int(ErrorCode.TOO_LARGE)
    for index, layer in enumerate(layers):
        previous = layers[index - 1] if index else None
        code = configure_error(layer, g, g.weight_rows(layer), _select) or chain_error(
            previous, layer, index == len(layers) - 1, _select
        )
        if code:
            return code
    rows = sum(g.weight_rows(layer) for layer in layers)
    folds = sum(g.out_folds(layer) for layer in layers)
    if rows > g.max_weight_rows or folds > g.max_out_folds:
        return int(ErrorCode.TOO_LARGE)
    return 0


def model_refusal_reason(layers, geometry):
    """Why :func:`model_error` refuses ``layers`` on ``geometry``, in words (None if it does not)."""
    g = geometry
    if not layers:
        return "a model has at least one layer"
    if len(layers) > g.max_layers:
        if not g.max_layers:
            return "the tile runs one layer at a time (no resident mode)"
        return f"{len(layers)} layers exceed the tile's {g.max_layers} resident layers"
    for index, layer in enumerate(layers):
        reason = refusal_reason(layer, g)
        if reason:
            return f"layer {index}: {reason}"
        last = index == len(layers) - 1
        if (layer.output_levels == 0) != last:
            if last:
                return (
                    f"the last layer ({index}) emits accumulators (output_levels 0), not {layer.output_levels} levels"
                )
            return f"layer {index} is hidden: it must emit codes (output_levels >= 2), not accumulators"
        previous = layers[index - 1] if index else None
        walk = walk_of(layer)
        if last and (walk.out_height, walk.out_width) != (1, 1):
            return f"the last layer ({index}) emits a {walk.out_height}x{walk.out_width} map, not one pixel"
        if previous is not None and layer.in_features != previous.out_features:
            return f"layer {index} takes {layer.in_features} inputs, layer {index - 1} emits {previous.out_features}"
        if previous is not None:
            before = walk_of(previous)
            if (walk.height, walk.width) != (before.out_height, before.out_width):
                return (
                    f"layer {index} walks a {walk.height}x{walk.width} map, layer {index - 1} emits "
                    f"{before.out_height}x{before.out_width}"
                )
        if chain_error(previous, layer, last, _select):
            return (
                f"layer {index}'s {layer.input_kind} input has {count_input_levels(layer, _select)} codes, "
                f"layer {index - 1} emits {previous.output_levels} levels"
            )
    rows = sum(g.weight_rows(layer) for layer in layers)
    folds = sum(g.out_folds(layer) for layer in layers)
    if rows > g.max_weight_rows:
        return f"the model's {rows} weight rows exceed the tile's {g.max_weight_rows}"
    if folds > g.max_out_folds:
        return f"the model's {folds} output folds exceed the tile's {g.max_out_folds} threshold records"
    return None


def walk_sizes(layer, geometry, select=_select, stage=None):
    """The sizes of a layer's :class:`MapWalk`, on integers or Amaranth values (``select`` as in
    :func:`configure_error`): ``groups`` / ``out_groups`` (rows per input / output pixel), ``row_stride``
    (rows per map row), ``in_folds`` (a dot product's folds: the window's pixels times the channel
    groups), ``input_rows`` and ``output_rows`` (the input and pooled output maps' rows), ``reach_height`` /
    ``reach_width`` (how far into the padded map the last window walked reaches) and the walk's address
    steps in rows: ``step_x`` / ``step_y`` (the next position across / down), ``pool_x`` / ``pool_y`` (the
    next pooled pixel across / down), ``origin`` (the first window's top left, ``padding`` rows and columns
    before the map) and ``pool_step`` (input pixels between pooled pixels).

    ``stage(value, name)`` (the tile's: a register stage) is applied to the values that later ones are
    computed from, so that no product feeds a product in one cycle. A stride is 1 or 2 (:func:`walk_conditions`
    refuses others; the sizes of a refused walk are not used)."""
    stage = stage or (lambda value, name: value)
    walk, log2 = walk_of(layer), geometry.simd.bit_length() - 1

    def strided(value):
        return select(walk.stride == 2, value << 1, value)

    groups = stage((layer.in_features + geometry.simd - 1) >> log2, "groups")
    out_groups = stage((layer.out_features + geometry.simd - 1) >> log2, "out_groups")
    row_stride = stage(walk.width * groups, "row_stride")
    out_row = stage(walk.out_width * out_groups, "out_row")
    step_x, step_y = stage(strided(groups), "step_x"), stage(strided(row_stride), "step_y")
    return {
        "groups": groups,
        "out_groups": out_groups,
        "row_stride": row_stride,
        "in_folds": stage(walk.kernel * walk.kernel, "taps") * groups,
        "input_rows": walk.height * row_stride,
        "output_rows": walk.out_height * out_row,
        "reach_height": strided(walk.out_height * walk.pool - 1) + walk.kernel,
        "reach_width": strided(walk.out_width * walk.pool - 1) + walk.kernel,
        "step_x": step_x,
        "step_y": step_y,
        "pool_x": walk.pool * step_x,
        "pool_y": walk.pool * step_y,
        "origin": walk.padding * (row_stride + groups),
        "pool_step": strided(walk.pool),
    }


def walk_conditions(layer, geometry, sizes):
    """``(unsupported, too_large)`` of a layer's :class:`MapWalk` on a tile that walks maps, given its
    :func:`walk_sizes` ``sizes``: a kernel, stride (1 or 2), padding (less than the kernel) or pool out of
    range, a pooled last layer, a walk beyond the padded map; a dot product, an input map or a pooled
    output map of more than ``max_in_folds`` rows (a bank of the input memory)."""
    g, walk = geometry, walk_of(layer)
    unsupported = (
        (walk.kernel < 1)
        | (walk.stride < 1)
        | (walk.stride > 2)
        | (walk.padding >= walk.kernel)
        | (walk.pool < 1)
        | (walk.height < 1)
        | (walk.width < 1)
        | (walk.out_height < 1)
        | (walk.out_width < 1)
        | ((layer.output_levels == 0) & (walk.pool > 1))
        | (sizes["reach_height"] > walk.height + 2 * walk.padding)
        | (sizes["reach_width"] > walk.width + 2 * walk.padding)
    )
    too_large = (
        (sizes["in_folds"] > g.max_in_folds)
        | (sizes["input_rows"] > g.max_in_folds)
        | (((walk.out_height > 1) | (walk.out_width > 1)) & (sizes["output_rows"] > g.max_in_folds))
    )
    return unsupported, too_large


def configure_error(layer, geometry, weight_rows, select, sizes=None):
    """The :class:`ErrorCode` of CONFIGURE, 0 when the layer is accepted: UNSUPPORTED for a layer the
    tile's family cannot run (:func:`lowbit.sw.kinds.support_error`), a size of zero or more thresholds
    than the tile holds; then TOO_LARGE for a layer beyond its memories.

    Written once for two evaluators: ``layer`` has the fields of :class:`LayerConfig` as Python integers
    (``select`` = ``a if c else b``) or as the tile's Amaranth values (``select`` = ``Mux``, as
    :mod:`lowbit.hw.tile` does); ``weight_rows`` is :meth:`TileGeometry.weight_rows` of it.
    """
    g = geometry
    levels = layer.output_levels
    unsupported = (
        (layer.in_features == 0)
        | (layer.out_features == 0)
        | support_error(layer, g)
        | (levels == 1)
        | ((levels != 0) & (levels > g.max_thresholds + 1))
    )
    too_large = (
        (layer.in_features > g.max_in_features)
        | (layer.out_features > g.max_out_features)
        | (weight_rows > g.max_weight_rows)
    )
    if g.maps:
        walk_unsupported, walk_too_large = walk_conditions(layer, g, walk_sizes(layer, g) if sizes is None else sizes)
        unsupported, too_large = unsupported | walk_unsupported, too_large | walk_too_large
    elif layer.walk is not None:
        unsupported = True
    return select(unsupported, int(ErrorCode.UNSUPPORTED), select(too_large, int(ErrorCode.TOO_LARGE), 0))


def _walk_reason(layer, walk, sizes, g):
    """Why :func:`walk_conditions` refuses a walk, in words (None if it does not)."""
    if walk.stride > 2:
        return f"the tile walks maps with stride 1 or 2, not {walk.stride}"
    if walk.padding >= walk.kernel:
        return f"padding {walk.padding} must be less than the kernel ({walk.kernel})"
    if layer.output_levels == 0 and walk.pool > 1:
        return "the last layer cannot pool (its outputs are accumulators)"
    for axis in ("height", "width"):
        size = getattr(walk, axis)
        if sizes[f"reach_{axis}"] > size + 2 * walk.padding:
            return f"{getattr(walk, 'out_' + axis)} pooled outputs do not fit a map {axis} of {size}"
    for name in ("in_folds", "input_rows", "output_rows"):
        if sizes[name] > g.max_in_folds and (name != "output_rows" or walk.out_height * walk.out_width > 1):
            return f"its {name.replace('_', ' ')} ({sizes[name]}) exceed the tile's {g.max_in_folds} rows per bank"
    return None


def refusal_reason(layer, geometry):
    """Why :func:`configure_error` refuses ``layer`` (a :class:`LayerConfig`) on ``geometry``, in words."""
    g = geometry
    if layer.in_features == 0 or layer.out_features == 0:
        return "a layer needs at least one input and one output"
    reason = unsupported_reason(layer, g)
    if reason:
        return reason
    if layer.output_levels == 1:
        return "a hidden layer emits at least 2 levels"
    if layer.walk is not None and not g.maps:
        return "the tile does not walk feature maps"
    if layer.walk is not None:
        walk = layer.walk
        reason = _walk_reason(layer, walk, walk_sizes(layer, g), g)
        if reason:
            return reason
    if layer.thresholds > g.max_thresholds:
        return f"{layer.thresholds} thresholds per channel exceed the tile's {g.max_thresholds}"
    if g.check(layer) == ErrorCode.TOO_LARGE:
        return (
            f"the layer ({layer.in_features} -> {layer.out_features}, {g.weight_rows(layer)} weight rows) "
            f"exceeds the tile's {g.max_in_features} inputs, {g.max_out_features} outputs or "
            f"{g.max_weight_rows} weight rows"
        )
    return None
