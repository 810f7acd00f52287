"""The kinds registry: every weight and activation kind lowbit knows, declared once.

Standard library only (no NumPy, no PyTorch, no Amaranth), so that the hardware, the host, the golden
model and the model file all import it. ``docs/arithmetic.md`` explains the arithmetic of each kind,
``docs/adding-a-kind.md`` how to add one.

A kind is a member of :class:`WeightKind` or :class:`InputKind`. Both are ``str`` enums whose value is the
name the model file uses (``WeightKind.BINARY == "binary"``), and both carry the 4-bit code the tile's
CONFIGURE command uses (:attr:`WeightKind.code`). Each member has a :class:`WeightInfo` /
:class:`InputInfo`: its bit widths, its values, its cost (ACE, CPU64, storage), the extra model-file
fields it needs. :func:`golden_unit` names the golden function that computes a (weight kind x input
kind) pair, and :data:`TILE_SUPPORT` lists, per tile family, the pairs its MAC array runs and the bounds
on their bit widths: :func:`support_error` is the one rule that the tile's CONFIGURE check (in
hardware), the host driver's refusal, the simulation's choice of a tile and the reference tile all use.

The rule is written once for two evaluators: plain Python integers, and Amaranth values (the tile
evaluates it on the configuration words it received). It therefore uses only ``==``, ``!=``, ``<``,
``<=``, ``>=``, ``+``, ``>>``, ``&`` and ``|`` on its operands.
"""

import enum
from dataclasses import dataclass
from functools import reduce

__all__ = [
    "tap_pad_code",
    "WeightKind",
    "InputKind",
    "Family",
    "WeightInfo",
    "InputInfo",
    "Bound",
    "Multiple",
    "Pairing",
    "FGQ_SCALE_BITS",
    "WEIGHTS",
    "INPUTS",
    "TILE_SUPPORT",
    "golden_unit",
    "nhot_terms_needed",
    "int_weight_terms",
    "pairings",
    "kind_code",
    "runs_on",
    "family_for",
    "support_error",
    "unsupported_reason",
    "tile_unit",
]


class _Kind(enum.StrEnum):
    """A kind: its value is the model file's name, :attr:`code` the tile's 4-bit code."""

    def __new__(cls, name, code):
        member = str.__new__(cls, name)
        member._value_ = name
        member.code = code
        return member

    @classmethod
    def parse(cls, value, what=None):
        """The member named ``value`` (a member, its model-file name or its code); a clear ``ValueError``
        naming the allowed names otherwise (``what``: how the message calls the value)."""
        what = what or " ".join(cls.__name__.lower().partition("kind")[:2]).strip()
        if isinstance(value, cls):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            for member in cls:
                if member.code == value:
                    return member
        elif isinstance(value, str) and value in cls._value2member_map_:
            return cls(value)
        raise ValueError(f"unknown {what} {value!r} (expected one of {', '.join(m.value for m in cls)})")

    @classmethod
    def from_code(cls, code):
        """The member with the 4-bit ``code``; ``ValueError`` for a code that names no kind."""
        if isinstance(code, int):
            for member in cls:
                if member.code == code:
                    return member
        raise ValueError(f"{code!r} is not the code of a {cls.__name__}")

    def __repr__(self):
        return f"{type(self).__name__}.{self.name}"


class WeightKind(_Kind):
    """Weight kinds. ``code`` is the 4-bit field of CONFIGURE (``docs/protocol.md``)."""

    BINARY = "binary", 0  #: {-1, +1} (PokeBNN, bipolar binary)
    TERNARY = "ternary", 1  #: {-1, 0, +1} (TWN)
    FATNN = "fatnn", 2  #: {-1, 0, +1} against FATNN's {0, 1, 2} activations (FATNN)
    FGQ = "fgq", 3  #: {-1, 0, +1} per tap, one unsigned Q0.8 scale per group of N taps (FGQ)
    INT = "int", 4  #: b-bit signed integers, symmetric: |w| <= 2**(b-1) - 1 (uniform baseline)
    NHOT = "nhot", 5  #: b-bit integers that are sums of at most n signed powers of two (n-hot)
    FLOAT = "float", 15  #: float32: the reference network; no tile runs it


class InputKind(_Kind):
    """Input (activation) kinds: what a layer's input codes mean."""

    UINT = "uint", 0  #: k-bit unsigned codes, value = code
    BINARY = "binary", 1  #: code 1 = +1, code 0 = -1
    TERNARY = "ternary", 2  #: code c means c - 1 in {-1, 0, +1}
    FATNN = "fatnn", 3  #: code c means c in {0, 1, 2} (FATNN)
    INT = "int", 4  #: k-bit signed, symmetric: code c means c - (2**(k-1) - 1)
    FLOAT = "float", 15  #: float activations of the reference network


class Family(enum.IntEnum):
    """The MAC array a tile is generated with (its 4-bit code in IDENTIFY)."""

    POPCOUNT = 0  #: popcount array on ternary planes: binary / ternary / FATNN weights, k-bit sides bit-serially
    NHOT = 1  #: n-hot shift-add array: n-hot or int weights against uint inputs
    BINARY = 2  #: XOR-popcount array on one weight plane: binary weights, uint inputs bit-serially
    FGQ = 3  #: FGQ's group-scaled ternary array: add/subtract per group of inputs, one multiply per group


#: Bits of an FGQ group scale: unsigned Q0.8, the integers 0 .. 255 (FGQ; ``alpha_q`` in the model file).
FGQ_SCALE_BITS = 8


@dataclass(frozen=True)
class WeightInfo:
    """What a weight kind is. ``bits``: the model file's ``weight_bits`` range; ``values``: the integer
    weights allowed, in words; ``ace_bits``: bits per weight as PokeBNN's ACE counts them (``"bits"``:
    the layer's ``weight_bits``, ``"n_terms"``: its number of terms); ``storage_bits``: bits a weight is
    stored in (``"bits"``, or ``"nhot"``: ceil(log2(number of n-hot values))); ``fields``: the model
    file's extra per-layer fields this kind needs (every other kind must leave them 0)."""

    bits: tuple
    values: str
    ace_bits: object
    storage_bits: object
    fields: tuple = ()
    short: str = ""


@dataclass(frozen=True)
class InputInfo:
    """What an input kind is. ``bits``: the model file's ``input_bits`` range; ``levels(bits)``: the number
    of codes (0 for float: no codes); ``value(code, bits)``: the integer a code means, rising with the code
    (works on integers and NumPy arrays); ``signed``: values below zero are two's complement on the
    bit-serial unit; ``planes``: bit-planes of a code on the popcount array (None: ``input_bits``);
    ``ace_bits``: bits per activation for ACE (``"bits"``: the layer's ``input_bits``); ``short``: its name in
    reports (``{bits}``: the layer's ``input_bits``)."""

    bits: tuple
    levels: object
    value: object
    planes: object
    ace_bits: object
    signed: bool = False
    short: str = ""


WEIGHTS = {
    WeightKind.BINARY: WeightInfo((1, 1), "-1 or +1", 1, 1, short="bin"),
    WeightKind.TERNARY: WeightInfo((2, 2), "-1, 0 or +1", 2, 2, short="tern"),
    WeightKind.FATNN: WeightInfo((2, 2), "-1, 0 or +1", 2, 2, short="fatnn"),
    WeightKind.FGQ: WeightInfo((2, 2), "-1, 0 or +1", 2, 2, fields=("group_size",)),
    WeightKind.INT: WeightInfo((2, 8), "integers in -(2**(b-1) - 1) .. 2**(b-1) - 1", "bits", "bits"),
    WeightKind.NHOT: WeightInfo(
        (2, 8), "sums of at most n signed powers of two", "n_terms", "nhot", fields=("n_terms",)
    ),
    WeightKind.FLOAT: WeightInfo((32, 32), "finite float32 numbers", 16, 32, short="f32"),
}

INPUTS = {
    InputKind.UINT: InputInfo((1, 8), lambda bits: 1 << bits, lambda code, bits: code, None, "bits", short="u{bits}"),
    InputKind.BINARY: InputInfo((1, 1), lambda bits: 2, lambda code, bits: 2 * code - 1, 1, 1, short="bin"),
    InputKind.TERNARY: InputInfo((2, 2), lambda bits: 3, lambda code, bits: code - 1, 2, 2, short="tern"),
    InputKind.FATNN: InputInfo((2, 2), lambda bits: 3, lambda code, bits: code, 2, 2, short="fat3"),
    InputKind.INT: InputInfo(
        (2, 8),
        lambda bits: (1 << bits) - 1,
        lambda code, bits: code - ((1 << (bits - 1)) - 1),
        None,
        "bits",
        signed=True,
        short="i{bits}",
    ),
    InputKind.FLOAT: InputInfo((32, 32), lambda bits: 0, None, None, 16, short="f32"),
}

_SIGNED_PLANES = (WeightKind.BINARY, WeightKind.TERNARY, WeightKind.FATNN)


def tap_pad_code(kind, bits):
    """The code a padded tap of a convolution takes for activations of ``kind`` at ``bits``: the code of
    value 0, or for ``binary`` activations, which have no zero, the code of +1, as Larq's ``pad_values=1``
    (Geiger and Team, "Larq: An open-source library for training binarized neural networks", JOSS 2020).
    Training, the golden model and the hardware all pad with it (``docs/conv.md``;
    :func:`lowbit.sw.kinds.encodings.pad_code` checks the kind and bits first)."""
    info = INPUTS[kind]
    values = [info.value(code, bits) for code in range(info.levels(bits))]
    return values.index(0) if 0 in values else values.index(1)


def golden_unit(weight_kind, input_kind):
    """The name of the golden function (:mod:`lowbit.sw.golden.units`) that computes a layer of these
    kinds, or ``None`` for a pair no unit computes. ``"float"`` for the float reference."""
    w, a = WeightKind.parse(weight_kind), InputKind.parse(input_kind)
    if (w == WeightKind.FLOAT) != (a == InputKind.FLOAT):
        return None
    if w == WeightKind.FLOAT:
        return "float"
    if w == WeightKind.FGQ:
        return "fgq_dot"
    if w == WeightKind.NHOT:
        return "nhot_dot"
    if w == WeightKind.INT:
        # binary input: the bit-serial unit with the roles swapped (the weights' bit-planes); otherwise every
        # b-bit value has ceil(b/2) signed power-of-two terms and runs on the n-hot unit
        return "bitserial_dot" if a == InputKind.BINARY else "nhot_dot"
    return {
        InputKind.BINARY: "binary_dot" if w == WeightKind.BINARY else "ternary_binary_dot",
        InputKind.TERNARY: "ternary_dot",
        InputKind.FATNN: "fatnn_dot",
        InputKind.UINT: "bitserial_dot",
        InputKind.INT: "bitserial_dot",
    }[a]


def int_weight_terms(bits):
    """Signed powers of two every ``bits``-bit weight needs at most: ``ceil(bits / 2)`` (the non-adjacent
    form of ``bits - 1`` magnitude bits has no more). Works on integers and Amaranth values."""
    return (bits + 1) >> 1


def nhot_terms_needed(weight_kind, weight_bits, n_terms):
    """Terms per weight on the n-hot unit: ``n_terms`` for n-hot weights, :func:`int_weight_terms` for int."""
    return n_terms if WeightKind.parse(weight_kind) == WeightKind.NHOT else int_weight_terms(weight_bits)


# --- which tile family runs which pair ---------------------------------------------------------------


@dataclass(frozen=True)
class Bound:
    """``low <= value <= high`` on a layer field. ``value(layer)``, ``low(geometry)`` and
    ``high(geometry)`` are functions so that a bound can depend on the tile (``max_input_bits``)."""

    name: str
    value: object
    low: object
    high: object

    def holds(self, layer, geometry):
        return (self.value(layer) >= self.low(geometry)) & (self.value(layer) <= self.high(geometry))

    def reason(self, layer, geometry):
        """Why the bound does not hold, in words (Python integers), or None."""
        value, low, high = self.value(layer), self.low(geometry), self.high(geometry)
        return None if low <= value <= high else f"{self.name} {value} outside the tile's {low} .. {high}"


@dataclass(frozen=True)
class Multiple:
    """``value(layer)`` a non-zero multiple of ``step(geometry)``, a power of two (an FGQ layer's group size
    against the tile's scale groups)."""

    name: str
    value: object
    step: object

    def holds(self, layer, geometry):
        value, step = self.value(layer), self.step(geometry)
        return (value >= step) & ((value & (step - 1)) == 0)

    def reason(self, layer, geometry):
        value, step = self.value(layer), self.step(geometry)
        if value >= step and value % step == 0:
            return None
        return f"{self.name} {value} is not a multiple of the tile's {step}"


@dataclass(frozen=True)
class Pairing:
    """(weight kinds x input kinds) that a family's MAC array runs, the bounds on their bit widths, and
    how the tile runs them (``unit``, see :func:`tile_unit`)."""

    weights: tuple
    inputs: tuple
    unit: str
    bounds: tuple = ()

    def matches(self, layer):
        """1 when the layer's kinds are this pairing's (ints or Amaranth values)."""
        same = [kind_code(layer.weight_kind) == kind.code for kind in self.weights]
        feeds = [kind_code(layer.input_kind) == kind.code for kind in self.inputs]
        return reduce(lambda a, b: a | b, same) & reduce(lambda a, b: a | b, feeds)

    def holds(self, layer, geometry):
        condition = self.matches(layer)
        for bound in self.bounds:
            condition = condition & bound.holds(layer, geometry)
        return condition


def kind_code(kind):
    """A kind's code: members give theirs, integers and Amaranth values are codes already."""
    return kind.code if isinstance(kind, _Kind) else kind


def _const(value):
    return lambda geometry: value


_INPUT_BITS = Bound("input bits", lambda layer: layer.input_bits, _const(1), lambda g: g.max_input_bits)
_WEIGHT_BITS = Bound("weight bits", lambda layer: layer.weight_bits, _const(2), _const(8))
# An n-hot array's exponents address 2**exponent_bits weight bits.
_EXPONENT_REACH = Bound("weight bits", lambda layer: layer.weight_bits, _const(2), lambda g: 1 << g.exponent_bits)

#: Per family, the pairs its MAC array runs (``docs/protocol.md``, "What a tile runs").
TILE_SUPPORT = {
    # First: a model of binary layers only gets the dense one-plane array (family_for, default_geometry).
    Family.BINARY: (
        Pairing((WeightKind.BINARY,), (InputKind.BINARY,), "xor_popcount"),
        Pairing((WeightKind.BINARY,), (InputKind.UINT,), "input_bitserial", (_INPUT_BITS,)),
        Pairing((WeightKind.INT,), (InputKind.BINARY,), "weight_bitserial", (_WEIGHT_BITS,)),
    ),
    Family.POPCOUNT: (
        Pairing(_SIGNED_PLANES, (InputKind.BINARY, InputKind.TERNARY, InputKind.FATNN), "ternary_planes"),
        Pairing(_SIGNED_PLANES, (InputKind.UINT,), "input_bitserial", (_INPUT_BITS,)),
        Pairing((WeightKind.INT,), (InputKind.BINARY,), "weight_bitserial", (_WEIGHT_BITS,)),
    ),
    Family.NHOT: (
        Pairing(
            (WeightKind.NHOT,),
            (InputKind.UINT,),
            "nhot",
            (
                _INPUT_BITS,
                _WEIGHT_BITS,
                _EXPONENT_REACH,
                Bound("terms", lambda layer: layer.n_terms, _const(1), lambda g: g.n_terms),
            ),
        ),
        Pairing(
            (WeightKind.INT,),
            (InputKind.UINT,),
            "nhot",
            (
                _INPUT_BITS,
                _WEIGHT_BITS,
                _EXPONENT_REACH,
                Bound("terms", lambda layer: int_weight_terms(layer.weight_bits), _const(1), lambda g: g.n_terms),
            ),
        ),
    ),
    # The tile applies a scale per group of its own `group_size` inputs, so a layer's groups must be whole
    # numbers of them (the layer's scale repeated over each).
    Family.FGQ: (
        Pairing(
            (WeightKind.FGQ,),
            (InputKind.UINT,),
            "fgq",
            (_INPUT_BITS, Multiple("group size", lambda layer: layer.group_size, lambda g: g.group_size)),
        ),
    ),
}


def pairings(family):
    """The :class:`Pairing` entries of ``family``."""
    return TILE_SUPPORT[Family(family)]


def family_for(weight_kind, input_kind):
    """The tile family whose MAC array runs this pair of kinds (bit widths aside), or ``None``."""
    w, a = WeightKind.parse(weight_kind), InputKind.parse(input_kind)
    for family, entries in TILE_SUPPORT.items():
        if any(w in entry.weights and a in entry.inputs for entry in entries):
            return family
    return None


def support_error(layer, geometry):
    """1 when a tile of ``geometry`` cannot run ``layer``'s kinds and bit widths, else 0.

    ``layer`` has ``weight_kind``, ``input_kind`` (codes), ``weight_bits``, ``n_terms`` and ``input_bits``,
    as integers (the host) or Amaranth values (the tile's CONFIGURE check).
    """
    ok = reduce(lambda a, b: a | b, (entry.holds(layer, geometry) for entry in pairings(geometry.family)))
    return ok == 0


def runs_on(unit, layer, family):
    """1 when ``layer``'s kinds are those of a pairing of ``family`` that runs on ``unit`` (bit widths
    aside), else 0; on integers and on Amaranth values, as :func:`support_error`."""
    entries = [entry for entry in pairings(family) if entry.unit == unit]
    if not entries:
        return 0
    return reduce(lambda a, b: a | b, (entry.matches(layer) for entry in entries))


def tile_unit(layer, geometry):
    """How a tile of ``geometry`` runs ``layer`` (Python integers): the ``unit`` of the matching
    :class:`Pairing` (``xor_popcount``, ``ternary_planes``, ``input_bitserial``, ``weight_bitserial``,
    ``nhot``, ``fgq``), or None. ``input_bitserial`` is the input planes, one pass each, on the family's array
    (XOR popcounts on BINARY, ternary planes on POPCOUNT)."""
    for entry in pairings(geometry.family):
        if entry.holds(layer, geometry):
            return entry.unit
    return None


def unsupported_reason(layer, geometry):
    """Why :func:`support_error` refuses ``layer`` on ``geometry``, in words (``None`` if it does not)."""
    w, a = WeightKind.parse(layer.weight_kind), InputKind.parse(layer.input_kind)
    family = Family(geometry.family)
    kinds = f"{w} weights against {a} input"
    entries = [entry for entry in pairings(family) if entry.matches(layer)]
    if not entries:
        runs = "; ".join(
            f"{'/'.join(map(str, e.weights))} weights against {'/'.join(map(str, e.inputs))} input"
            for e in pairings(family)
        )
        return f"a {family.name.lower()} tile runs {runs}, not {kinds}"
    for entry in entries:
        for bound in entry.bounds:
            reason = bound.reason(layer, geometry)
            if reason:
                return f"{kinds}: {reason}"
    return None
