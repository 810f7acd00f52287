"""The accelerator tile: a command decoder, weight / threshold / input memories, a PE x SIMD MAC array,
accumulators, the threshold unit and an output packer, behind one 32-bit command stream.

The blocks (``docs/tile.md``): :class:`~lowbit.hw.tile.config.Configuration` (CONFIGURE's words to the
layer's fields and the error code), :class:`~lowbit.hw.tile.decoder.Decoder` (the protocol, the memory
writes, the response words), :class:`~lowbit.hw.tile.sequencer.Sequencer` (the walk over a vector: memory
reads and a stream of beats), :class:`~lowbit.hw.tile.engine.Engine` (MAC array, accumulators,
thresholds) and :class:`~lowbit.hw.tile.packer.Packer` (output folds to words). This module holds the
memories and connects the blocks.

The protocol is :mod:`lowbit.sw.protocol` (``docs/protocol.md``). The host configures a layer, loads
its weights and thresholds once, and streams a batch of input vectors; the tile answers every command
with exactly one response. A malformed command is drained and answered with ERROR; the tile is then
ready for the next command.

Data path of one input vector (held in one of two input banks, so that the next vector loads while
this one computes)::

    for o_fold in ceil(out / PE):          # PE output channels at a time
        for p in planes:                   # bit-planes of a k-bit side, most significant first
            for i_fold in ceil(in / SIMD): # one MAC-array cycle each
                acc = (first ? 0 : (i_fold == 0 ? 2 * acc : acc)) + (negative plane ? -d : d)
        result = acc + bias  ->  thresholds (hidden layer) or the raw accumulator (last layer)

so a layer takes ``ceil(out/PE) * ceil(in/SIMD) * planes`` array cycles per vector
(:meth:`lowbit.sw.protocol.TileGeometry.cycles_per_vector`). The accumulator wraps modulo
``2**acc_width``; the host checks that every result fits (then the wrapped partial sums are exact).

Families (:class:`lowbit.sw.protocol.Family`): POPCOUNT is a :class:`~lowbit.hw.units.unit.PEArray` of
:class:`~lowbit.hw.units.ternary_dot.TernaryDotProduct`, fed binary / ternary / FATNN activations as ternary
planes, uint activations bit-serially (one plane per pass) and, for k-bit integer weights against binary
activations, the weight planes bit-serially; FATNN's ``sum(w)`` correction is the per-channel bias.
NHOT is a PEArray of :class:`~lowbit.hw.units.nhot.NHotDotProduct` against uint activations.
"""

from amaranth.hdl import Module, Mux
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from lowbit.hw.units.nhot import exponent_bits
from lowbit.sw.protocol import WORD_BITS, Family, TileGeometry, output_code_bits

from .classes import ClassIndex
from .config import CHECK_LATENCY, Configuration
from .decoder import Decoder
from .engine import Engine
from .memories import granularity, make_memory
from .packer import Packer
from .sequencer import Sequencer
from .writeback import Writeback

__all__ = ["Tile", "CHECK_LATENCY"]


class Tile(wiring.Component):
    """The accelerator tile for one :class:`~lowbit.sw.protocol.TileGeometry`.

    Ports: ``i``, a stream of 32-bit command words from the host; ``o``, a stream of 32-bit response
    words. ``mac_beats`` counts the MAC-array cycles that did work (for utilization figures).
    ``pe`` and ``simd`` must be powers of two.
    """

    def __init__(self, geometry, *, mac_pipeline_depth=None):
        if not isinstance(geometry, TileGeometry):
            raise TypeError(f"geometry must be a TileGeometry, not {geometry!r}")
        g = self.geometry = geometry
        if g.family == Family.NHOT and g.exponent_bits != exponent_bits(8):
            raise ValueError(
                f"an n-hot tile takes 8-bit weights: exponent_bits must be {exponent_bits(8)}, not {g.exponent_bits}"
            )
        self.mac_pipeline_depth = mac_pipeline_depth
        self.out_bits_max = output_code_bits(g.max_thresholds + 1)
        super().__init__(
            {
                "i": In(stream.Signature(WORD_BITS)),
                "o": Out(stream.Signature(WORD_BITS)),
                "mac_beats": Out(32),
            }
        )

    def elaborate(self, platform):
        g = self.geometry
        m = Module()
        m.submodules.config = config = Configuration(g)
        m.submodules.decoder = decoder = Decoder(g)
        m.submodules.sequencer = sequencer = Sequencer(g)
        m.submodules.engine = engine = Engine(g, mac_pipeline_depth=self.mac_pipeline_depth)
        m.submodules.packer = packer = Packer(g)

        # --- memories (the board builds map `*weights` to the iCE40's SPRAMs) -----------------------
        m.submodules.weights = wmem = make_memory(g, "weights")
        w_wr, w_rd = wmem.write_port(granularity=WORD_BITS), wmem.read_port()
        # One address for both ports: LOAD_WEIGHTS writes and RUN reads never overlap (the decoder
        # leaves RUN only when the last output has left), so the memory is single-ported and maps
        # to the iCE40's SPRAMs as well as to any block RAM.
        writing = decoder.w_wr.en.any()
        m.d.comb += [
            w_rd.addr.eq(Mux(writing, decoder.w_wr.addr, sequencer.w_addr)),
            w_wr.addr.eq(w_rd.addr),
            w_wr.data.eq(decoder.w_wr.data),
            w_wr.en.eq(decoder.w_wr.en),
            w_rd.en.eq(sequencer.read & ~writing),
        ]
        m.submodules.inputs = imem = make_memory(g, "inputs")
        i_wr, i_rd = imem.write_port(granularity=WORD_BITS), imem.read_port()
        if g.max_layers:
            # The input memory's one write port: the activation writer's rows first, the host's words
            # (which then wait, decoder.wb_writing) in the other cycles.
            m.submodules.writeback = writeback = Writeback(g)
            wb_writing = writeback.wr.en.any()
            m.d.comb += decoder.wb_writing.eq(wb_writing)
            for name in ("addr", "data", "en"):
                source = Mux(wb_writing, getattr(writeback.wr, name), getattr(decoder.i_wr, name))
                m.d.comb += getattr(i_wr, name).eq(source)
        else:
            wiring.connect(m, decoder.i_wr, i_wr)
        m.d.comb += [i_rd.addr.eq(sequencer.i_addr), i_rd.en.eq(sequencer.read)]
        for c in range(g.pe):  # a channel's records (bias, direction, thresholds) per output fold
            m.submodules[f"thresholds{c}"] = tmem = make_memory(g, "thresholds")
            wiring.connect(m, decoder.t_wr[c], tmem.write_port(granularity=granularity(g, "thresholds")))
            wiring.connect(m, engine.t_rd[c], tmem.read_port())
        if g.search_levels:  # the thresholds of a searching tile: in the search's level memories
            m.d.comb += engine.s_wr.eq(decoder.s_wr)

        # --- the blocks ----------------------------------------------------------------------------
        wiring.connect(m, wiring.flipped(self.i), decoder.i)
        wiring.connect(m, decoder.o, wiring.flipped(self.o))
        wiring.connect(m, decoder.check, config.check)
        wiring.connect(m, sequencer.banks, decoder.banks)
        wiring.connect(m, sequencer.o, engine.i)
        if g.max_layers:
            # A resident model's hidden layers go to the activation writer, its last layer to the packer.
            wiring.connect(m, decoder.walk, sequencer.walk)
            to_writer = decoder.model & ~config.layer.last_layer
            m.d.comb += [
                packer.i.payload.eq(engine.o.payload),
                writeback.i.payload.eq(engine.o.payload),
                packer.i.valid.eq(engine.o.valid & ~to_writer),
                writeback.i.valid.eq(engine.o.valid & to_writer),
                engine.o.ready.eq(Mux(to_writer, writeback.i.ready, packer.i.ready)),
                decoder.fold_taken.eq(engine.o.valid & engine.o.ready),
                writeback.start.eq(decoder.wb_start),
                writeback.dst.eq(decoder.wb_dst),
                writeback.mode.eq(decoder.wb_mode),
                writeback.bits.eq(decoder.wb_bits),
                writeback.out_features.eq(config.layer.out_features),
                writeback.ofolds.eq(config.layer.ofolds),
            ]
            if g.maps:
                m.d.comb += [
                    writeback.pool_area.eq(config.layer.pool_area),
                    writeback.out_groups.eq(config.layer.out_groups),
                ]
            # CLASSIFY: the last layer's accumulator words become a class index per vector.
            m.submodules.classes = classes = ClassIndex(g)
            classify = decoder.classify
            m.d.comb += [
                classes.i.payload.eq(packer.o.payload),
                classes.i.valid.eq(packer.o.valid & classify),
                packer.o.ready.eq(Mux(classify, classes.i.ready, decoder.outputs.ready)),
                decoder.outputs.payload.eq(Mux(classify, classes.o.payload, packer.o.payload)),
                decoder.outputs.valid.eq(Mux(classify, classes.o.valid, packer.o.valid)),
                classes.o.ready.eq(classify & decoder.outputs.ready),
                classes.classes.eq(decoder.classes),
                classes.words.eq(decoder.class_words),
            ]
        else:
            wiring.connect(m, engine.o, packer.i)
            wiring.connect(m, packer.o, decoder.outputs)
        m.d.comb += [
            decoder.layer.eq(config.layer),
            sequencer.layer.eq(config.layer),
            engine.layer.eq(config.layer),
            packer.layer.eq(config.layer),
            engine.weight_row.eq(w_rd.data),
            engine.input_row.eq(i_rd.data),
            self.mac_beats.eq(engine.mac_beats),
        ]
        return m
