"""The tile's command decoder: the protocol's state machine, the response words and the memory writes."""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from lowbit.sw.protocol import MAX_LENGTH, WORD_BITS, ErrorCode, Opcode, Response, header

from .config import CHECK_LATENCY, CheckSignature, LayerLayout
from .memories import write_port_signature
from .sequencer import BanksSignature

__all__ = ["Decoder"]


class Decoder(wiring.Component):
    """The command decoder of a tile of ``geometry`` (:mod:`lowbit.sw.protocol`, ``docs/protocol.md``).

    It answers every command with exactly one response; a malformed command is drained (its payload
    taken) and answered with ERROR. States: IDLE (a header), DRAIN, CONFIG (the three words) and CHECK
    (``CHECK_LATENCY`` cycles for ``check.error``), WEIGHTS and THRESHOLDS (a payload word per cycle
    into the memories), DIVIDE (RUN's batch = length / ``input_words``, 24 cycles) and BATCH (its
    check), RESPOND (the response words, a word per cycle), then, for RUN, INPUTS (the batch's words
    into the input banks, a word per cycle while a bank is free) and OUTPUTS (until the last output
    word has left).

    Ports:

    - ``i`` (in, stream of 32-bit words): the commands;
    - ``o`` (out, stream of 32-bit words): the responses; RUN's DATA words are the ``outputs``,
      passed through while the decoder has no word of its own to send;
    - ``outputs`` (in, stream of 32-bit words): the words of RUN's outputs;
    - ``check`` (:class:`~lowbit.hw.tile.config.CheckSignature`): CONFIGURE's words, its error code,
      ``accept``;
    - ``layer`` (in, :class:`~lowbit.hw.tile.config.LayerLayout`): the accepted layer's word counts;
    - ``w_wr``, ``i_wr`` and ``t_wr`` (``pe`` of these): write ports of the weight, input and
      threshold memories (:mod:`~lowbit.hw.tile.memories`), driven the cycle a payload word is taken:
      LOAD_WEIGHTS fills weight rows word by word, LOAD_THRESHOLDS channel ``c``'s record in memory
      ``c % pe`` at output fold ``c // pe``, RUN's vectors the input rows of bank ``banks.bank``;
    - ``banks`` (flipped :class:`~lowbit.hw.tile.sequencer.BanksSignature`): the input banks.
    """

    def __init__(self, geometry):
        self.geometry = g = geometry
        super().__init__(
            {
                "i": In(stream.Signature(WORD_BITS)),
                "o": Out(stream.Signature(WORD_BITS)),
                "outputs": In(stream.Signature(WORD_BITS)),
                "check": Out(CheckSignature()),
                "layer": In(LayerLayout(g)),
                "w_wr": In(write_port_signature(g, "weights")),
                "i_wr": In(write_port_signature(g, "inputs")),
                "t_wr": In(write_port_signature(g, "thresholds")).array(g.pe),
                "banks": In(BanksSignature()),
            }
        )

    def elaborate(self, platform):
        g = self.geometry
        m = Module()
        config_valid, weights_loaded, thresholds_loaded = Signal(), Signal(), Signal()
        remaining = Signal(24)
        opcode = Signal(8)
        resp = Array(Signal(WORD_BITS, name=f"resp{k}") for k in range(6))
        resp_count, resp_idx = Signal(3), Signal(3)
        chunk, row = Signal(8), Signal(range(max(g.max_weight_rows, 2 * g.max_in_folds, 2) + 1))
        channel, word = Signal(16), Signal(9)
        out_left = Signal(40)
        div_q, div_r, div_n, div_step = Signal(24), Signal(25), Signal(24), Signal(5)
        after_respond = Signal()  # 1: go on loading a RUN's inputs after the DATA header
        check_wait = Signal(range(CHECK_LATENCY + 1))

        w_wr, i_wr, t_wr, banks, layer = self.w_wr, self.i_wr, self.t_wr, self.banks, self.layer
        in_hdr_op, in_hdr_len = self.i.payload[24:], self.i.payload[:24]
        take = self.i.valid & self.i.ready

        def respond_error(code):
            return [
                resp[0].eq(header(Response.ERROR, 1)),
                resp[1].eq(Cat(code, opcode)),
                resp_count.eq(2),
                resp_idx.eq(0),
                after_respond.eq(0),
            ]

        def respond_ok():
            return [resp[0].eq(header(Response.OK, 0)), resp_count.eq(1), resp_idx.eq(0), after_respond.eq(0)]

        pending_error = Signal(8)

        # The response mux: the decoder's words while responding, else the output words.
        outputs = self.outputs
        responding = Signal()
        m.d.comb += [
            self.o.valid.eq(Mux(responding, 1, outputs.valid)),
            self.o.payload.eq(Mux(responding, resp[resp_idx], outputs.payload)),
            outputs.ready.eq(~responding & self.o.ready),
        ]
        with m.If(outputs.valid & outputs.ready):
            m.d.sync += out_left.eq(out_left - 1)

        def reject(code):  # drain the command's payload, then answer ERROR(code)
            m.d.sync += pending_error.eq(code)
            m.next = "DRAIN"

        def start_load(expected_length, loaded, state):
            with m.If(~config_valid):
                reject(ErrorCode.NOT_CONFIGURED)
            with m.Elif(in_hdr_len != expected_length):
                reject(ErrorCode.BAD_LENGTH)
            with m.Else():
                m.d.sync += loaded.eq(0)
                m.next = state

        def load_word(word_index, last_word, record, loaded):
            """A LOAD_* payload word taken: the next word of the record (row / channel), the next record
            after ``last_word``; after the command's last word, ``loaded`` and OK."""
            with m.If(self.i.valid):
                m.d.sync += remaining.eq(remaining - 1)
                with m.If(word_index == last_word):
                    m.d.sync += [word_index.eq(0), record.eq(record + 1)]
                with m.Else():
                    m.d.sync += word_index.eq(word_index + 1)
                with m.If(remaining == 1):
                    m.d.sync += [loaded.eq(1)] + respond_ok()
                    m.next = "RESPOND"

        with m.FSM(name="decoder"):
            with m.State("IDLE"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    m.d.sync += [
                        opcode.eq(in_hdr_op),
                        remaining.eq(in_hdr_len),
                        chunk.eq(0),
                        row.eq(0),
                        channel.eq(0),
                        word.eq(0),
                    ]
                    with m.Switch(in_hdr_op):
                        with m.Case(Opcode.CONFIGURE):
                            m.d.sync += [config_valid.eq(0), weights_loaded.eq(0), thresholds_loaded.eq(0)]
                            with m.If(in_hdr_len == 3):
                                m.next = "CONFIG"
                            with m.Else():
                                reject(ErrorCode.BAD_LENGTH)
                        with m.Case(Opcode.LOAD_WEIGHTS):
                            start_load(layer.weight_words, weights_loaded, "WEIGHTS")
                        with m.Case(Opcode.LOAD_THRESHOLDS):
                            start_load(layer.threshold_words, thresholds_loaded, "THRESHOLDS")
                        with m.Case(Opcode.RUN):
                            with m.If(~config_valid):
                                reject(ErrorCode.NOT_CONFIGURED)
                            with m.Elif(~weights_loaded | ~thresholds_loaded):
                                reject(ErrorCode.NOT_LOADED)
                            with m.Else():
                                m.d.sync += [div_n.eq(in_hdr_len), div_q.eq(0), div_r.eq(0), div_step.eq(0)]
                                m.next = "DIVIDE"
                        with m.Case(Opcode.IDENTIFY):
                            with m.If(in_hdr_len != 0):
                                reject(ErrorCode.BAD_LENGTH)
                            with m.Else():
                                words = [header(Response.DATA, 5)] + g.encode()
                                m.d.sync += [resp[k].eq(w) for k, w in enumerate(words)]
                                m.d.sync += [resp_count.eq(6), resp_idx.eq(0), after_respond.eq(0)]
                                m.next = "RESPOND"
                        with m.Default():
                            reject(ErrorCode.UNKNOWN_OPCODE)

            with m.State("DRAIN"):  # consume the payload of a rejected command, then answer ERROR
                with m.If(remaining == 0):
                    m.d.sync += respond_error(pending_error)
                    m.next = "RESPOND"
                with m.Else():
                    m.d.comb += self.i.ready.eq(1)
                    with m.If(self.i.valid):
                        m.d.sync += remaining.eq(remaining - 1)

            with m.State("CONFIG"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    with m.Switch(chunk):
                        for k in range(3):
                            with m.Case(k):
                                m.d.sync += self.check.words[k].eq(self.i.payload)
                    m.d.sync += chunk.eq(chunk + 1)
                    with m.If(chunk == 2):
                        m.d.sync += check_wait.eq(0)
                        m.next = "CHECK"

            with m.State("CHECK"):  # the configuration words are in: wait for the check, accept or reject
                m.d.sync += check_wait.eq(check_wait + 1)
                with m.If(check_wait == CHECK_LATENCY):
                    with m.If(self.check.error != 0):
                        m.d.sync += respond_error(self.check.error)
                    with m.Else():
                        m.d.comb += self.check.accept.eq(1)
                        m.d.sync += [config_valid.eq(1)] + respond_ok()
                    m.next = "RESPOND"

            with m.State("WEIGHTS"):
                m.d.comb += [
                    self.i.ready.eq(1),
                    w_wr.addr.eq(row),
                    w_wr.data.eq(Cat(self.i.payload for _ in range(g.weight_row_words))),
                    w_wr.en.eq(Mux(self.i.valid, 1 << chunk, 0)),
                ]
                load_word(chunk, g.weight_row_words - 1, row, weights_loaded)

            with m.State("THRESHOLDS"):
                m.d.comb += self.i.ready.eq(1)
                pe_log2 = exact_log2(g.pe)
                for c in range(g.pe):
                    m.d.comb += [
                        t_wr[c].addr.eq(channel >> pe_log2),
                        t_wr[c].data.eq(Cat(self.i.payload for _ in range(2 + g.max_thresholds))),
                        t_wr[c].en.eq(Mux(self.i.valid & ((channel & (g.pe - 1)) == c), 1 << word, 0)),
                    ]
                load_word(word, layer.record_words - 1, channel, thresholds_loaded)

            with m.State("DIVIDE"):  # batch = length / input_words, restoring division over 24 steps
                trial = Cat(div_n[23], div_r[:24])
                fits = trial >= layer.input_words
                m.d.sync += [
                    div_n.eq(div_n << 1),
                    div_step.eq(div_step + 1),
                    div_r.eq(Mux(fits, trial - layer.input_words, trial)),
                    div_q.eq(Cat(fits, div_q[:23])),
                ]
                with m.If(div_step == 23):
                    m.next = "BATCH"

            with m.State("BATCH"):
                data_words = div_q * layer.output_words
                with m.If((div_r != 0) | (div_q == 0) | (data_words > MAX_LENGTH)):
                    reject(ErrorCode.BAD_LENGTH)
                with m.Else():
                    m.d.sync += [
                        resp[0].eq(Cat(data_words[:24], Const(Response.DATA, 8))),
                        resp_count.eq(1),
                        resp_idx.eq(0),
                        after_respond.eq(1),
                        out_left.eq(data_words),
                    ]
                    m.next = "RESPOND"

            with m.State("INPUTS"):  # the batch's words into the input banks, a vector per bank
                m.d.comb += [
                    self.i.ready.eq(banks.free),
                    i_wr.addr.eq(Mux(banks.bank, g.max_in_folds, 0) + row),
                    i_wr.data.eq(Cat(self.i.payload for _ in range(g.max_input_row_words))),
                    i_wr.en.eq(Mux(take, 1 << chunk, 0)),
                ]
                with m.If(take):
                    m.d.sync += remaining.eq(remaining - 1)
                    with m.If(chunk == layer.in_row_words - 1):
                        m.d.sync += chunk.eq(0)
                        with m.If(row == layer.ifolds - 1):
                            m.d.sync += row.eq(0)
                            m.d.comb += banks.filled.eq(1)
                        with m.Else():
                            m.d.sync += row.eq(row + 1)
                    with m.Else():
                        m.d.sync += chunk.eq(chunk + 1)
                    with m.If(remaining == 1):
                        m.next = "OUTPUTS"

            with m.State("OUTPUTS"):  # the last vectors compute and their outputs leave
                with m.If((out_left == 0) | ((out_left == 1) & outputs.valid & outputs.ready)):
                    m.next = "IDLE"

            with m.State("RESPOND"):
                m.d.comb += responding.eq(1)
                with m.If(self.o.ready):
                    m.d.sync += resp_idx.eq(resp_idx + 1)
                    with m.If(resp_idx == resp_count - 1):
                        with m.If(after_respond):
                            m.next = "INPUTS"
                        with m.Else():
                            m.next = "IDLE"
        return m
