"""The base of the pipelined arithmetic units, their combinational cores and their PE-wide array form.

A :class:`PipelinedUnit` is a ``wiring.Component`` with one input stream ``i`` (the operands) and one
output stream ``o`` (the result). A subclass describes its arithmetic once, in :meth:`datapath`, with
a *pipe* that places registers: :class:`lowbit.hw.units.tree.StallPipeline` in the unit itself, and
:class:`CombinationalPipe` (no registers at all) in :meth:`PipelinedUnit.combinational`, the core that
the formal proofs check against an independent specification. Both are built by the same code.

:class:`PEArray` puts ``pe`` units side by side: they share the fields of the payload that the unit
class names in ``SHARED_FIELDS`` (the activation vector) and each has its own copy of the others (the
weights of one output channel).
"""

from amaranth.hdl import Module, Shape, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from lowbit.hw.units.tree import StallPipeline, register_levels

__all__ = ["check_positive_int", "check_pipeline_depth", "CombinationalPipe", "PipelinedUnit", "PEArray"]


def check_positive_int(value, name, low=1, high=None):
    """Check that ``value`` is an ``int`` (not a ``bool``) in ``low .. high``; return it."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name} must be {bounds}, not {value}")
    return value


def check_pipeline_depth(pipeline_depth, max_depth, describe, default=2):
    """``pipeline_depth`` checked to be an integer in ``1 .. max_depth`` (``describe`` names the unit's
    parameters in the message); ``None`` gives ``min(default, max_depth)``."""
    if pipeline_depth is None:
        return min(default, max_depth)
    if not isinstance(pipeline_depth, int) or isinstance(pipeline_depth, bool):
        raise TypeError(f"pipeline_depth must be an integer, not {pipeline_depth!r}")
    if not 1 <= pipeline_depth <= max_depth:
        raise ValueError(f"pipeline_depth must be between 1 and {max_depth} for {describe}, not {pipeline_depth}")
    return pipeline_depth


class CombinationalPipe:
    """A pipe without registers: :meth:`stage` passes its value through, so the datapath built with it
    is one combinational function of the payload."""

    def __init__(self, m, platform=None):
        self.m, self.platform = m, platform
        self._count = 0

    def stage(self, value, shape=None, *, name=None):
        shape = Shape.cast(value.shape() if shape is None else shape)
        wire = Signal(shape, name=name or f"comb{self._count}")
        self._count += 1
        self.m.d.comb += wire.eq(value)
        return wire

    reduce = StallPipeline.reduce


class PipelinedUnit(wiring.Component):
    """A unit whose result is a pipelined function of one input payload.

    Subclasses call ``super().__init__(payload_layout, result_shape, pipeline_depth)`` after checking
    their own parameters, and implement :meth:`levels` (the number of logic levels a register can
    follow) and :meth:`datapath`. ``self.registered`` holds the levels after which the pipeline places
    its registers (the last level always: the output is registered).

    Latency is ``pipeline_depth`` cycles; one payload is taken per cycle; all stages advance together
    when ``o`` is empty or being read, so back-pressure stalls the pipeline and loses nothing.
    """

    DEFAULT_PIPELINE_DEPTH = 2

    #: Payload fields shared by the channels of a :class:`PEArray` (the activations).
    SHARED_FIELDS = ()

    def __init__(self, payload_layout, result_shape, pipeline_depth=None):
        max_depth = self.levels()
        pipeline_depth = check_pipeline_depth(pipeline_depth, max_depth, self.describe(), self.DEFAULT_PIPELINE_DEPTH)
        self.pipeline_depth = pipeline_depth
        self.latency = pipeline_depth
        self.registered = register_levels(max_depth, pipeline_depth)
        self._payload_layout = (
            payload_layout if isinstance(payload_layout, data.Layout) else data.StructLayout(payload_layout)
        )
        self._result_shape = Shape.cast(result_shape)
        super().__init__(
            {
                "i": In(stream.Signature(self._payload_layout)),
                "o": Out(stream.Signature(self._result_shape)),
            }
        )

    def describe(self):
        """The unit's parameters, for messages: ``"n=64"``."""
        return type(self).__name__

    def levels(self):
        """Logic levels of the datapath; ``pipeline_depth`` can be 1 .. ``levels()``."""
        raise NotImplementedError

    def datapath(self, m, pipe, payload):
        """Build the arithmetic on ``payload`` with ``pipe.stage`` / ``pipe.reduce`` at the levels in
        ``self.registered``; return the result (registered when ``pipe`` is a pipeline)."""
        raise NotImplementedError

    def elaborate(self, platform):
        m = Module()
        pipe = StallPipeline(m, self.i, self.o, self.pipeline_depth, name="unit")
        pipe.platform = platform
        m.d.comb += self.o.payload.eq(self.datapath(m, pipe, self.i.payload))
        return m

    def combinational(self):
        """The datapath of this unit without registers or handshake: a component with ``payload``
        (input, the unit's payload layout) and ``result`` (output). Used by the formal proofs."""
        return _CombinationalCore(self)


class _CombinationalCore(wiring.Component):
    def __init__(self, unit):
        self._unit = unit
        super().__init__({"payload": In(unit._payload_layout), "result": Out(unit._result_shape)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.result.eq(self._unit.datapath(m, CombinationalPipe(m, platform), self.payload))
        return m


class PEArray(wiring.Component):
    """``pe`` units side by side, one per output channel, sharing the activation fields.

    ``make_unit()`` builds one unit (a :class:`PipelinedUnit` or any unit with ``i``/``o`` streams,
    ``latency`` and ``SHARED_FIELDS``). The payload of ``i`` is ``{"shared": <the SHARED_FIELDS>,
    "channels": ArrayLayout(<the other fields>, pe)}``; ``o`` carries ``ArrayLayout(result, pe)``,
    channel ``c`` at index ``c``. Every unit sees the same ``valid`` and ``ready``, so they run in
    lockstep: the array has the unit's ``latency`` and ``cycles_per_vector``.
    """

    def __init__(self, make_unit, pe):
        check_positive_int(pe, "pe")
        self.pe = pe
        self.units = [make_unit() for _ in range(pe)]
        unit = self.units[0]
        self.latency = unit.latency
        self.cycles_per_vector = getattr(unit, "cycles_per_vector", 1)
        layout = unit.i.payload.shape()
        fields = dict(layout)
        unknown = [f for f in unit.SHARED_FIELDS if f not in fields]
        if unknown:
            raise ValueError(f"{type(unit).__name__}.SHARED_FIELDS names fields it does not have: {unknown}")
        self.shared_layout = data.StructLayout({f: fields[f].shape for f in unit.SHARED_FIELDS})
        self.channel_layout = data.StructLayout({f: v.shape for f, v in fields.items() if f not in unit.SHARED_FIELDS})
        super().__init__(
            {
                "i": In(
                    stream.Signature(
                        data.StructLayout(
                            {"shared": self.shared_layout, "channels": data.ArrayLayout(self.channel_layout, pe)}
                        )
                    )
                ),
                "o": Out(stream.Signature(data.ArrayLayout(unit.o.payload.shape(), pe))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        for c, unit in enumerate(self.units):
            m.submodules[f"pe{c}"] = unit
            for name in self.shared_layout.members:
                m.d.comb += getattr(unit.i.payload, name).eq(getattr(self.i.payload.shared, name))
            for name in self.channel_layout.members:
                m.d.comb += getattr(unit.i.payload, name).eq(getattr(self.i.payload.channels[c], name))
            m.d.comb += [
                unit.i.valid.eq(self.i.valid),
                unit.o.ready.eq(self.o.ready),
                self.o.payload[c].eq(unit.o.payload),
            ]
        # The units are identical and see the same flow control: any one's handshake is all of theirs.
        m.d.comb += [self.i.ready.eq(self.units[0].i.ready), self.o.valid.eq(self.units[0].o.valid)]
        return m
