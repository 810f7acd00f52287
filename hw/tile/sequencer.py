"""The tile's sequencer: the walk over one input vector, a beat per MAC-array cycle."""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2, exact_log2

from .config import LayerLayout
from .memories import input_banks

__all__ = ["BeatLayout", "BanksSignature", "WalkSignature", "Sequencer"]

#: The side information of one beat (one MAC-array cycle): ``first``: the beat starts an output fold's
#: accumulation; ``last``: it ends it; ``double``: it starts a later plane (the accumulator doubles);
#: ``neg``: the beat's products count negative (the sign plane of int weights); ``o_fold`` and
#: ``plane``: where in the walk it is.
#: ``pad`` (a tile that walks maps): the beat's tap lies outside the map, so its input row is the pad
#: code's (:func:`~lowbit.hw.tile.config.pad_planes`) on its ``live`` lanes (the channels the row holds).
BeatLayout = data.StructLayout(
    {"first": 1, "last": 1, "double": 1, "neg": 1, "o_fold": 16, "plane": 4, "pad": 1, "live": 16},
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
    the vector's last layer) frees it and moves to the other one. On a tile that walks maps, ``folds``
    counts the output folds the walk has handed the engine since ``start``, and ``busy`` stays high
    until the last beat is taken."""

    def __init__(self, geometry):
        g = geometry
        rows = range(max(g.max_weight_rows, 2))
        super().__init__(
            ({"folds": In(32)} if g.maps else {})
            | {
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

    On a tile that walks maps (:attr:`~lowbit.sw.protocol.TileGeometry.maps`) the walk is that of the
    layer's :class:`~lowbit.sw.protocol.MapWalk` over the map in the bank (``docs/conv.md``)::

        for each pooled pixel (py, px), row by row:
            for o_fold in range(ofolds):
                for (dy, dx) in the pool window: (oy, ox) = (py * pool + dy, px * pool + dx)
                    for plane in range(planes):
                        for ky, kx in the kernel, for each channel group g:
                            input row (oy * stride + ky - padding, ox * stride + kx - padding, g), or a
                            padded tap outside the map; emit a beat

    so that each pooled pixel's ``pool**2`` output folds of one ``o_fold`` leave the engine one after
    another (the activation writer pools them). The rows' addresses are kept as sums (no multiplier):
    a row is its map row's first row plus the columns walked, the steps are the layer's
    ``row_stride``, ``step_*`` and ``pool_*``. A dense layer is the walk of one 1 x 1 pixel.

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
        if g.maps:
            return self._elaborate_maps(m, full, write_bank, bank, busy)
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

    def _elaborate_maps(self, m, full, write_bank, bank, busy):
        """The walk of a tile that walks maps (the class's second loop nest)."""
        g, layer, beat, walk = self.geometry, self.layer, self.o.payload, self.walk
        rows = range(max(g.max_weight_rows, 2))
        w_addr, w_base, w_layer = Signal(rows), Signal(rows), Signal(rows)  # the row, the fold's, the layer's
        read_bank, f_base = Signal(2), Signal(range(max(g.max_out_folds, 2)))
        of, p = Signal.like(layer.ofolds), Signal(4)
        py, px, dy, dx = Signal(8), Signal(8), Signal(4), Signal(4)
        ky, kx, cg, col = Signal(4), Signal(4), Signal.like(layer.groups), Signal.like(layer.step_x)
        # Rows (signed: a window's first rows may lie before the map): the first row of the current pooled
        # pixel row, of the pooled pixel, of the pool window's row, of the position, of the map row walked.
        address = signed(len(layer.pool_y) + 2)
        row_base, win_base, dy_base, pos_base, line = (
            Signal(address, name=n) for n in ("row_base", "win_base", "dy_base", "pos_base", "line")
        )
        # Input pixel coordinates: the pooled pixel's first window's top left, the position's, the tap's.
        coord = signed(10)
        wy, wx, oy0, ox0 = (Signal(coord, name=n) for n in ("wy", "wx", "oy0", "ox0"))
        iy, ix = Signal(coord), Signal(coord)
        m.d.comb += [iy.eq(oy0 + ky), ix.eq(ox0 + kx)]
        inside = (iy >= 0) & (iy < layer.height) & (ix >= 0) & (ix < layer.width)
        folds = Signal(32)  # output folds handed to the engine since the walk started

        advance = ~self.o.valid | self.o.ready
        issue = busy & advance
        cg_last, kx_last, ky_last = cg == layer.groups - 1, kx == layer.kernel - 1, ky == layer.kernel - 1
        tap_first = (cg == 0) & (kx == 0) & (ky == 0)
        tap_last = cg_last & kx_last & ky_last
        p_last, of_last = p == layer.planes - 1, of == layer.ofolds - 1
        dx_last, dy_last = dx == layer.pool - 1, dy == layer.pool - 1
        px_last, py_last = px == layer.out_width - 1, py == layer.out_height - 1
        row = Signal(address)
        m.d.comb += [
            row.eq(line + col),
            self.w_addr.eq(w_addr),
            self.i_addr.eq(read_bank * g.max_in_folds + row[: len(self.i_addr)]),
            self.read.eq(advance),
        ]
        model = Signal()
        m.d.comb += [model.eq(walk.model), walk.busy.eq(busy | self.o.valid), walk.host_bank.eq(bank)]
        m.d.comb += [walk.folds.eq(folds), walk.host_full.eq(full.bit_select(bank, 1))]

        def begin(src, weights, records):
            origin = -layer.origin
            pad = -layer.padding
            return [
                busy.eq(1),
                read_bank.eq(src),
                f_base.eq(records),
                w_addr.eq(weights),
                w_base.eq(weights),
                w_layer.eq(weights),
                of.eq(0),
                p.eq(0),
                py.eq(0),
                px.eq(0),
                dy.eq(0),
                dx.eq(0),
                ky.eq(0),
                kx.eq(0),
                cg.eq(0),
                col.eq(0),
                row_base.eq(origin),
                win_base.eq(origin),
                dy_base.eq(origin),
                pos_base.eq(origin),
                line.eq(origin),
                wy.eq(pad),
                wx.eq(pad),
                oy0.eq(pad),
                ox0.eq(pad),
                folds.eq(0),
            ]

        with m.If(model & walk.start):
            m.d.sync += begin(walk.src, walk.w_base, walk.f_base)
        with m.If(walk.release):
            m.d.sync += [bank.eq(~bank), full.bit_select(bank, 1).eq(0)]
        with m.If(~model & ~busy & full.bit_select(bank, 1)):
            m.d.sync += begin(bank, 0, 0)
        with m.If(self.o.valid & self.o.ready & beat.last):
            m.d.sync += folds.eq(folds + 1)
        # The beat, registered beside the memories' read data.
        live = Signal(range(g.simd + 1))
        left = Signal(signed(18))
        m.d.comb += left.eq(layer.in_features - (cg << exact_log2(g.simd)))
        m.d.comb += live.eq(Mux(left >= g.simd, g.simd, left))
        with m.If(advance):
            m.d.sync += [
                self.o.valid.eq(issue),
                beat.plane.eq(p),
                beat.first.eq((p == 0) & tap_first),
                beat.last.eq(p_last & tap_last),
                beat.double.eq((p != 0) & tap_first),
                beat.neg.eq(layer.weight_plane_mode & (p == 0)),
                beat.o_fold.eq(of + f_base),
                beat.pad.eq(~inside),
                beat.live.eq(live),
            ]

        def position(base):  # the walk moves to the position whose first row is `base`
            return [pos_base.eq(base), line.eq(base)]

        with m.If(issue):
            with m.If(~tap_last):  # the next tap: a channel group, a column, a map row
                m.d.sync += w_addr.eq(w_addr + 1)
                with m.If(~cg_last):
                    m.d.sync += [cg.eq(cg + 1), col.eq(col + 1)]
                with m.Elif(~kx_last):
                    m.d.sync += [cg.eq(0), kx.eq(kx + 1), col.eq(col + 1)]
                with m.Else():
                    m.d.sync += [cg.eq(0), kx.eq(0), ky.eq(ky + 1), col.eq(0), line.eq(line + layer.row_stride)]
            with m.Else():
                m.d.sync += [cg.eq(0), kx.eq(0), ky.eq(0), col.eq(0)]
                with m.If(~p_last):  # the next plane of the position
                    m.d.sync += [p.eq(p + 1), line.eq(pos_base)]
                    m.d.sync += w_addr.eq(Mux(layer.weight_plane_mode, w_addr + 1, w_base))
                with m.Else():
                    m.d.sync += p.eq(0)
                    with m.If(~(dx_last & dy_last)):  # the next position of the pool window: the fold's rows again
                        m.d.sync += w_addr.eq(w_base)
                        with m.If(~dx_last):
                            m.d.sync += [dx.eq(dx + 1), ox0.eq(ox0 + layer.stride)] + position(pos_base + layer.step_x)
                        with m.Else():
                            m.d.sync += [dx.eq(0), dy.eq(dy + 1), oy0.eq(oy0 + layer.stride), ox0.eq(wx)]
                            m.d.sync += [dy_base.eq(dy_base + layer.step_y)] + position(dy_base + layer.step_y)
                    with m.Else():
                        m.d.sync += [dx.eq(0), dy.eq(0)]
                        with m.If(~of_last):  # the next output fold of the pooled pixel
                            m.d.sync += [of.eq(of + 1), w_addr.eq(w_addr + 1), w_base.eq(w_addr + 1)]
                            m.d.sync += [oy0.eq(wy), ox0.eq(wx), dy_base.eq(win_base)] + position(win_base)
                        with m.Else():
                            m.d.sync += [of.eq(0), w_addr.eq(w_layer), w_base.eq(w_layer)]
                            with m.If(~px_last):  # the next pooled pixel of the row
                                nx = win_base + layer.pool_x
                                m.d.sync += [px.eq(px + 1), wx.eq(wx + layer.pool_step), ox0.eq(wx + layer.pool_step)]
                                m.d.sync += [oy0.eq(wy), win_base.eq(nx), dy_base.eq(nx)] + position(nx)
                            with m.Elif(~py_last):  # the next row of pooled pixels
                                ny = row_base + layer.pool_y
                                m.d.sync += [px.eq(0), py.eq(py + 1), wy.eq(wy + layer.pool_step)]
                                m.d.sync += [
                                    oy0.eq(wy + layer.pool_step),
                                    wx.eq(-layer.padding),
                                    ox0.eq(-layer.padding),
                                ]
                                m.d.sync += [row_base.eq(ny), win_base.eq(ny), dy_base.eq(ny)] + position(ny)
                            with m.Else():  # the walk is done
                                m.d.sync += busy.eq(0)
                                with m.If(~model):
                                    m.d.sync += [bank.eq(~bank), full.bit_select(bank, 1).eq(0)]
        with m.If(self.banks.filled):
            m.d.sync += [write_bank.eq(~write_bank), full.bit_select(write_bank, 1).eq(1)]
        return m
