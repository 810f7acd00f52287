"""The tile's sequencer: the walk over one input vector, a beat per MAC-array cycle."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from .config import LayerLayout
from .memories import input_banks

__all__ = ["BeatLayout", "BanksSignature", "WalkSignature", "Sequencer"]

#: The side information of one beat (one MAC-array cycle): ``first``: the beat starts an output fold's
#: accumulation; ``last``: it ends it; ``double``: it starts a later plane (the accumulator doubles);
#: ``neg``: the beat's products count negative (the sign plane of int weights); ``o_fold`` and
#: ``plane``: where in the walk it is.
BeatLayout = data.StructLayout(
    {"first": 1, "last": 1, "double": 1, "neg": 1, "o_fold": 16, "plane": 4},
)


class BanksSignature(wiring.Signature):
    """The two input banks, seen from their reader: the writer fills bank ``bank`` while ``free``, and
    pulses ``filled`` for a cycle after the vector's last word; the banks alternate, 0 first."""

    def __init__(self):
        super().__init__({"bank": Out(1), "free": Out(1), "filled": In(1)})


class WalkSignature(wiring.Signature):
    """A resident model's walks, seen from their controller (the decoder's layer runner). With ``model``
    high the sequencer walks only when told: ``start`` (a pulse) walks the rows of bank ``src`` (0, 1: the
    host's banks; 2: the activations) for the current layer, its weight rows from ``w_base`` and its
    threshold records from ``f_base``; ``busy`` is high while it walks. ``host_bank`` is the host's bank
    that holds (or will hold) the next vector, ``host_full`` says it does; ``release`` (a pulse, after
    the vector's last layer) frees it and moves to the other one."""

    def __init__(self, geometry):
        g = geometry
        rows = range(max(g.max_weight_rows, 2))
        super().__init__(
            {
                "model": Out(1),
                "start": Out(1),
                "src": Out(2),
                "w_base": Out(rows),
                "f_base": Out(range(max(g.max_out_folds, 2))),
                "release": Out(1),
                "busy": In(1),
                "host_bank": In(1),
                "host_full": In(1),
            }
        )


class Sequencer(wiring.Component):
    """The walk over the input vector in an input bank, for a tile of ``geometry``::

        for o_fold in range(ofolds):
            for plane in range(planes):
                for i_fold in range(ifolds):
                    read weight row `w_addr`, input row `bank * max_in_folds + i_fold`; emit a beat

    Weight rows follow one another, except that without ``weight_plane_mode`` each plane of an output
    fold reads the fold's rows again.

    Ports:

    - ``banks`` (:class:`BanksSignature`): the double buffer of input vectors; a bank is free again
      from the cycle after the sequencer has read its last row;
    - ``layer`` (in, :class:`~lowbit.hw.tile.config.LayerLayout`): ``ifolds``, ``ofolds``, ``planes``,
      ``weight_plane_mode``; held still while a vector is walked;
    - ``w_addr``, ``i_addr``, ``read`` (out): the read ports of the weight and input memories (a
      synchronous read: data one cycle after ``read``);
    - ``o`` (out, stream of :data:`BeatLayout`): the beats. The memories' read data of a beat are
      valid beside it, for as long as it is on ``o`` (``read`` is low while a beat waits).

    - ``walk`` (flipped :class:`WalkSignature`, on a tile with resident models): walks on command, for
      the layers of a resident model; ``o_fold`` of a beat is then ``f_base`` plus the fold.

    Latency: the first beat is on ``o`` three cycles after ``filled`` (or ``start``). Throughput: a beat
    per cycle, and an idle cycle between two vectors.
    """

    def __init__(self, geometry):
        self.geometry = geometry
        g = geometry
        super().__init__(
            {
                "banks": Out(BanksSignature()),
                "layer": In(LayerLayout(g)),
                "w_addr": Out(range(max(g.max_weight_rows, 2))),
                "i_addr": Out(ceil_log2(input_banks(g) * g.max_in_folds)),
                "read": Out(1),
                "o": Out(stream.Signature(BeatLayout)),
            }
            | ({"walk": In(WalkSignature(g))} if g.max_layers else {})
        )

    def elaborate(self, platform):
        g = self.geometry
        m = Module()
        layer, beat = self.layer, self.o.payload

        # The banks: `full` holds a complete vector, the writer fills `write_bank`, the walk reads `bank`.
        full, write_bank, bank = Signal(2), Signal(), Signal()
        m.d.comb += [self.banks.bank.eq(write_bank), self.banks.free.eq(~full.bit_select(write_bank, 1))]

        busy = Signal()
        of, p, fi = Signal.like(self.layer.ofolds), Signal(4), Signal.like(self.layer.ifolds)
        w_addr, w_base = Signal(range(max(g.max_weight_rows, 2))), Signal(range(max(g.max_weight_rows, 2)))
        read_bank = Signal(2)  # the bank walked
        f_base = Signal(range(max(g.max_out_folds, 2)))  # its first threshold record
        advance = ~self.o.valid | self.o.ready
        issue = busy & advance
        fi_last, p_last, of_last = fi == layer.ifolds - 1, p == layer.planes - 1, of == layer.ofolds - 1
        m.d.comb += [
            self.w_addr.eq(w_addr),
            self.i_addr.eq(read_bank * g.max_in_folds + fi),
            self.read.eq(advance),
        ]
        model = Signal()
        if g.max_layers:
            walk = self.walk
            m.d.comb += [model.eq(walk.model), walk.busy.eq(busy), walk.host_bank.eq(bank)]
            m.d.comb += walk.host_full.eq(full.bit_select(bank, 1))
            with m.If(model & walk.start):
                m.d.sync += [busy.eq(1), of.eq(0), p.eq(0), fi.eq(0), read_bank.eq(walk.src), f_base.eq(walk.f_base)]
                m.d.sync += [w_addr.eq(walk.w_base), w_base.eq(walk.w_base)]
            with m.If(walk.release):
                m.d.sync += [bank.eq(~bank), full.bit_select(bank, 1).eq(0)]
        with m.If(~model & ~busy & full.bit_select(bank, 1)):
            m.d.sync += [busy.eq(1), of.eq(0), p.eq(0), fi.eq(0), w_addr.eq(0), w_base.eq(0), read_bank.eq(bank)]
            m.d.sync += f_base.eq(0)
        # The beat, registered beside the memories' read data.
        with m.If(advance):
            m.d.sync += [
                self.o.valid.eq(issue),
                beat.plane.eq(p),
                beat.first.eq((p == 0) & (fi == 0)),
                beat.last.eq(p_last & fi_last),
                beat.double.eq((p != 0) & (fi == 0)),
                beat.neg.eq(layer.weight_plane_mode & (p == 0)),
                beat.o_fold.eq(of + f_base),
            ]
        with m.If(issue):
            with m.If(~fi_last):
                m.d.sync += [fi.eq(fi + 1), w_addr.eq(w_addr + 1)]
            with m.Else():
                m.d.sync += fi.eq(0)
                with m.If(~p_last):
                    m.d.sync += [p.eq(p + 1), w_addr.eq(Mux(layer.weight_plane_mode, w_addr + 1, w_base))]
                with m.Else():
                    m.d.sync += [p.eq(0), of.eq(of + 1), w_addr.eq(w_addr + 1), w_base.eq(w_addr + 1)]
                    with m.If(of_last):
                        m.d.sync += busy.eq(0)
                        with m.If(~model):  # a resident model's walks leave the banks to the runner
                            m.d.sync += [bank.eq(~bank), full.bit_select(bank, 1).eq(0)]
        # (A bank being filled is never the one being read: `filled` and the walk's end touch distinct bits.)
        with m.If(self.banks.filled):
            m.d.sync += [write_bank.eq(~write_bank), full.bit_select(write_bank, 1).eq(1)]
        return m
