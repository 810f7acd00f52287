"""The tile's command decoder: the protocol's state machine, the response words and the memory writes."""

from types import SimpleNamespace

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from lowbit.sw.protocol import MAX_LENGTH, WORD_BITS, ErrorCode, Opcode, Response, chain_error, header

from .config import CHECK_LATENCY, CheckSignature, LayerLayout, field_bits, max_in_rows_log2, walk_fields
from .memories import record_field_bits, record_fields, write_port_signature
from .search import SearchWrite
from .sequencer import BanksSignature, WalkSignature
from .writeback import row_mode

__all__ = ["Decoder"]

#: The decoder's responses: OK, ERROR (its code and the command's opcode), IDENTIFY's DATA, RUN's DATA header.
RESP_OK, RESP_ERROR, RESP_IDENTIFY, RESP_DATA = range(4)


class Decoder(wiring.Component):
    """The command decoder of a tile of ``geometry`` (:mod:`lowbit.sw.protocol`, ``docs/protocol.md``).

    It answers every command with exactly one response; a malformed command is drained (its payload
    taken) and answered with ERROR. States: IDLE (a header), DRAIN, CONFIG (the three words) and CHECK
    (``CHECK_LATENCY`` cycles for ``check.error``), WEIGHTS and THRESHOLDS (a payload word per cycle
    into the memories), DIVIDE (RUN's length counted off in vectors of ``input_words``, a vector per
    cycle, their output words summed for the DATA header; not whole vectors or more than ``MAX_LENGTH``
    output words: BAD_LENGTH), RESPOND (the response words, a word per cycle, made from the response's
    kind: no response is stored), then, for RUN, INPUTS (the batch's words into the input banks, a row
    per cycle while a bank is free: a word of several rows is written row by row, the host's stream
    waiting) and OUTPUTS (until the last output word has left).

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
    - ``s_wr`` (out, a tile that :attr:`~lowbit.sw.protocol.TileGeometry.search_levels` its thresholds only): the
      thresholds of LOAD_THRESHOLDS' records (their slot, channel and fold), for the search's level
      memories (:class:`~lowbit.hw.tile.search.ThresholdSearch`); ``t_wr`` then keeps bias and direction;
    - ``banks`` (flipped :class:`~lowbit.hw.tile.sequencer.BanksSignature`): the input banks.

    On a tile with resident models (``max_layers``), LOAD_MODEL's layers go into a table (a memory of
    their CONFIGURE words) and are checked one by one through ``check`` (MODEL_*: each layer's error
    code, then :func:`~lowbit.sw.protocol.chain_error` with the layer before, then the totals), and a
    second state machine, the *runner*, takes each vector of a RUN through the layers: it makes layer
    ``l`` the configuration (its words from the table through ``check``), has the sequencer walk the bank
    that holds the layer's input (``walk``), points the activation writer (``wb_*``) at the other bank,
    and waits until the layer's last fold has left the engine (``fold_taken``); after the last layer it
    frees the host's bank. The host's words wait while the writer uses the input memory's write port
    (``wb_writing``). ``model`` is high in model mode. CLASSIFY is a RUN of the resident model answered
    with a word per vector: ``classify`` is high while it runs (the outputs then come from a
    :class:`~lowbit.hw.tile.classes.ClassIndex`), ``classes`` and ``class_words`` are the model's last
    layer's ``out_features`` and ``output_words``. Outside model mode (and on a tile without resident
    models) CLASSIFY is refused with UNSUPPORTED, after RUN's NOT_CONFIGURED and NOT_LOADED.
    """

    def __init__(self, geometry):
        self.geometry = g = geometry
        super().__init__(
            {
                "i": In(stream.Signature(WORD_BITS)),
                "o": Out(stream.Signature(WORD_BITS)),
                "outputs": In(stream.Signature(WORD_BITS)),
                "check": Out(CheckSignature(g.model_layer_words)),
                "layer": In(LayerLayout(g)),
                "w_wr": In(write_port_signature(g, "weights")),
                "i_wr": In(write_port_signature(g, "inputs")),
                "t_wr": In(write_port_signature(g, "thresholds")).array(g.pe),
                "banks": In(BanksSignature()),
            }
            | ({"s_wr": Out(SearchWrite(g))} if g.search_levels else {})
            | (
                {
                    "walk": Out(WalkSignature(g)),
                    "model": Out(1),
                    "fold_taken": In(1),
                    "wb_start": Out(1),
                    "wb_dst": Out(2),
                    "wb_mode": Out(2),
                    "wb_bits": Out(4),
                    "wb_writing": In(1),
                    "classify": Out(1),
                    "classes": Out(LayerLayout(g).members["out_features"]),
                    "class_words": Out(LayerLayout(g).members["output_words"]),
                }
                if g.max_layers
                else {}
            )
        )

    def elaborate(self, platform):
        g = self.geometry
        m = Module()
        config_valid, weights_loaded, thresholds_loaded = Signal(), Signal(), Signal()
        remaining = Signal(24)
        opcode = Signal(8)
        # The response being sent: its kind (RESP_*) and the index of its word; the words follow from the
        # kind, the command's opcode and error code, RUN's output words and the geometry (IDENTIFY).
        resp_kind, resp_idx = Signal(2), Signal(3)
        # a word of a weight row, an input row, CONFIGURE or a layer table entry (rows of over 256 words:
        # the n-hot tile at PE 16 x SIMD 64 has 320)
        chunk = Signal(range(max(g.weight_row_words, g.max_input_row_words, g.model_layer_words + 1)))
        row = Signal(range(max(g.max_weight_rows, 2 * g.max_in_folds, 2) + 1))
        channel, word = Signal(16), Signal(9)
        out_left = Signal(24)  # RUN's output words still to leave (at most MAX_LENGTH)
        run_left = Signal(24)  # RUN's words not yet divided into vectors (DIVIDE)
        vector_words = Signal.like(self.layer.output_words)  # RUN's (CLASSIFY's) DATA words per vector
        check_wait = Signal(range(CHECK_LATENCY + 1))

        w_wr, t_wr, layer = self.w_wr, self.t_wr, self.layer

        # --- resident models: the layer table and the model's totals --------------------------------
        model_mode = Signal()  # 1 after an accepted LOAD_MODEL (never on a tile without resident models)
        resident = bool(g.max_layers)
        per_layer = g.model_layer_words  # words per layer in LOAD_MODEL and the table
        if resident:
            m.submodules.table = table = Memory(shape=WORD_BITS, depth=per_layer * g.max_layers, init=[])
            tab_wr, tab_rd = table.write_port(), table.read_port()
            n_layers, layer_idx = Signal(8), Signal(8)
            table_addr = Signal(range(per_layer * (g.max_layers + 2)))
            # The sums over the model's layers (each within the tile's memories, or CONFIGURE refuses it).
            total_rows = Signal(field_bits(g.max_layers * g.max_weight_rows))
            total_folds = Signal(field_bits(g.max_layers * g.max_out_folds))
            total_wwords = Signal(field_bits(g.max_layers * g.max_weight_rows * g.weight_row_words))
            total_twords = Signal.like(layer.threshold_words)
            model_in_words, model_out_words = Signal.like(layer.input_words), Signal.like(layer.output_words)
            model_in_row_words, model_ifolds = Signal.like(layer.in_row_words), Signal.like(layer.input_rows)
            model_in_rows_log2, model_in_row_bits = Signal.like(layer.in_rows_log2), Signal.like(layer.in_row_bits)
            prev = SimpleNamespace(out_features=Signal(16), output_levels=Signal(9), walk=None)
            if g.maps:  # the pooled map the layer before emits
                prev.walk = SimpleNamespace(out_height=Signal(8, init=1), out_width=Signal(8, init=1))
            m.d.comb += [
                self.model.eq(model_mode),
                self.classify.eq(model_mode & (opcode == Opcode.CLASSIFY)),
                self.classes.eq(prev.out_features),
                self.class_words.eq(model_out_words),
            ]

        # The model's value of each count the commands check, in model mode; the configured layer's else.
        model_counts = {}
        if resident:
            model_counts = {
                "weight_words": total_wwords,
                "threshold_words": total_twords,
                "record_words": Const(g.record_words),
                "input_words": model_in_words,
                "output_words": model_out_words,
                "in_row_words": model_in_row_words,
                "in_rows_log2": model_in_rows_log2,
                "in_row_bits": model_in_row_bits,
                "input_rows": model_ifolds,
            }

        def count(name):
            """``layer.<name>``, or the model's value of it in model mode."""
            if not resident:
                return layer[name]
            return Mux(model_mode, model_counts[name], layer[name])

        def cfg_fields(words):
            """The fields of a layer's CONFIGURE (and walk) words that :func:`chain_error` reads."""
            return SimpleNamespace(
                in_features=words[0][:16],
                out_features=words[0][16:],
                input_kind=words[1][12:16],
                input_bits=words[1][16:20],
                output_levels=words[2][:9],
                walk=walk_fields([words[3], words[4]]) if g.maps else None,
            )

        in_hdr_op, in_hdr_len = self.i.payload[24:], self.i.payload[:24]

        pending_error = Signal(8)  # the error code of a refused command (ERROR's second word)

        def respond(kind):
            return [resp_kind.eq(kind), resp_idx.eq(0)]

        def respond_error(code):
            return [pending_error.eq(code)] + respond(RESP_ERROR)

        def respond_ok():
            return respond(RESP_OK)

        # The response's words and its last word's index, per kind.
        identify = [header(Response.DATA, 5)] + g.encode()
        resp_word, resp_last = Signal(WORD_BITS), Signal(3)
        with m.Switch(resp_kind):
            with m.Case(RESP_OK):
                m.d.comb += [resp_word.eq(header(Response.OK, 0)), resp_last.eq(0)]
            with m.Case(RESP_ERROR):
                first = header(Response.ERROR, 1)
                m.d.comb += [resp_word.eq(Mux(resp_idx == 0, first, Cat(pending_error, opcode))), resp_last.eq(1)]
            with m.Case(RESP_IDENTIFY):
                m.d.comb += [resp_word.eq(Array(Const(w, WORD_BITS) for w in identify)[resp_idx]), resp_last.eq(5)]
            with m.Case(RESP_DATA):  # RUN's DATA header: its output words, the inputs follow
                m.d.comb += [resp_word.eq(Cat(out_left, Const(Response.DATA, 8))), resp_last.eq(0)]

        # The response mux: the decoder's words while responding, else the output words.
        outputs = self.outputs
        responding = Signal()
        m.d.comb += [
            self.o.valid.eq(Mux(responding, 1, outputs.valid)),
            self.o.payload.eq(Mux(responding, resp_word, outputs.payload)),
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
                            m.d.sync += model_mode.eq(0)
                            with m.If(in_hdr_len == 3):
                                m.next = "CONFIG"
                            with m.Else():
                                reject(ErrorCode.BAD_LENGTH)
                        with m.Case(Opcode.LOAD_MODEL):
                            m.d.sync += [config_valid.eq(0), weights_loaded.eq(0), thresholds_loaded.eq(0)]
                            m.d.sync += model_mode.eq(0)
                            with m.If(in_hdr_len == 0):
                                reject(ErrorCode.BAD_LENGTH)
                            with m.Else():
                                m.next = "MODEL_COUNT"
                        with m.Case(Opcode.LOAD_WEIGHTS):
                            start_load(
                                count("weight_words"),
                                weights_loaded,
                                "WEIGHTS",
                            )
                        with m.Case(Opcode.LOAD_THRESHOLDS):
                            start_load(
                                count("threshold_words"),
                                thresholds_loaded,
                                "THRESHOLDS",
                            )
                        with m.Case(Opcode.RUN, Opcode.CLASSIFY):
                            with m.If(~config_valid):
                                reject(ErrorCode.NOT_CONFIGURED)
                            with m.Elif(~weights_loaded | ~thresholds_loaded):
                                reject(ErrorCode.NOT_LOADED)
                            with m.Elif((in_hdr_op == Opcode.CLASSIFY) & ~model_mode):
                                reject(ErrorCode.UNSUPPORTED)
                            with m.Elif(in_hdr_len == 0):
                                reject(ErrorCode.BAD_LENGTH)
                            with m.Else():
                                # the DATA words per vector, registered for DIVIDE: CLASSIFY answers one
                                classify = (in_hdr_op == Opcode.CLASSIFY) if resident else Const(0)
                                m.d.sync += vector_words.eq(Mux(classify, 1, count("output_words")))
                                m.d.sync += [run_left.eq(in_hdr_len), out_left.eq(0)]
                                m.next = "DIVIDE"
                        with m.Case(Opcode.IDENTIFY):
                            with m.If(in_hdr_len != 0):
                                reject(ErrorCode.BAD_LENGTH)
                            with m.Else():
                                m.d.sync += respond(RESP_IDENTIFY)
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
                if g.maps:  # CONFIGURE's layer is dense: no walk words
                    m.d.sync += [self.check.words[3].eq(0), self.check.words[4].eq(0)]
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
                pe_log2, field = exact_log2(g.pe), record_field_bits(g)
                for c in range(g.pe):
                    m.d.comb += [
                        t_wr[c].addr.eq(channel >> pe_log2),
                        t_wr[c].data.eq(Cat(self.i.payload[:field] for _ in range(record_fields(g)))),
                        t_wr[c].en.eq(Mux(self.i.valid & ((channel & (g.pe - 1)) == c), 1 << word, 0)),
                    ]
                if g.search_levels:  # the thresholds go to the search's level memories, the rest to the record
                    m.d.comb += [
                        self.s_wr.en.eq(self.i.valid & (word >= 2)),
                        self.s_wr.channel.eq(channel & (g.pe - 1)),
                        self.s_wr.fold.eq(channel >> pe_log2),
                        self.s_wr.slot.eq(word - 2),
                        self.s_wr.data.eq(self.i.payload[:field]),
                    ]
                record_last = count("record_words") - 1
                load_word(word, record_last, channel, thresholds_loaded)

            with m.State("DIVIDE"):  # RUN's length into vectors: a vector per cycle, their output words summed
                input_words = count("input_words")
                data_words = out_left + vector_words
                with m.If((run_left < input_words) | (data_words > MAX_LENGTH)):
                    reject(ErrorCode.BAD_LENGTH)  # not whole vectors, or more output words than DATA can carry
                with m.Else():
                    m.d.sync += [run_left.eq(run_left - input_words), out_left.eq(data_words)]
                    with m.If(run_left == input_words):  # the last vector
                        m.d.sync += respond(RESP_DATA)
                        m.next = "RESPOND"

            with m.State("INPUTS"):  # the batch's words into the input banks, a vector per bank
                self._inputs(m, count, remaining, chunk, row)

            with m.State("MODEL_COUNT"):  # LOAD_MODEL's first word: the number of layers
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    count = self.i.payload
                    m.d.sync += remaining.eq(remaining - 1)
                    with m.If(remaining - 1 != count * per_layer):
                        reject(ErrorCode.BAD_LENGTH)
                    with m.Elif(count == 0):
                        reject(ErrorCode.UNSUPPORTED)
                    with m.Elif(count > g.max_layers):
                        reject(ErrorCode.TOO_LARGE)
                    if resident:
                        with m.Else():
                            m.d.sync += n_layers.eq(count)
                            m.next = "MODEL_WORDS"

            if resident:
                with m.State("MODEL_WORDS"):  # the layers' CONFIGURE words into the table
                    m.d.comb += [
                        self.i.ready.eq(1),
                        tab_wr.addr.eq(row),
                        tab_wr.data.eq(self.i.payload),
                        tab_wr.en.eq(self.i.valid),
                    ]
                    with m.If(self.i.valid):
                        m.d.sync += [remaining.eq(remaining - 1), row.eq(row + 1)]
                        with m.If(remaining == 1):
                            m.d.sync += [layer_idx.eq(0), table_addr.eq(0), chunk.eq(0)]
                            m.d.sync += [total_rows.eq(0), total_folds.eq(0), total_wwords.eq(0)]
                            m.next = "MODEL_LOAD"

                with m.State("MODEL_LOAD"):  # layer `layer_idx`'s words from the table into `check`
                    m.d.comb += [tab_rd.addr.eq(table_addr + chunk), tab_rd.en.eq(1)]
                    m.d.sync += chunk.eq(chunk + 1)
                    for k in range(per_layer):
                        with m.If(chunk == k + 1):
                            m.d.sync += self.check.words[k].eq(tab_rd.data)
                    with m.If(chunk == per_layer):
                        m.d.sync += check_wait.eq(0)
                        m.next = "MODEL_CHECK"

                with m.State("MODEL_CHECK"):  # the layer's own check, then its chaining to the one before
                    m.d.sync += check_wait.eq(check_wait + 1)
                    with m.If(check_wait == CHECK_LATENCY):
                        fields = cfg_fields(self.check.words)
                        last = layer_idx == n_layers - 1
                        chain = Mux(
                            layer_idx == 0, chain_error(None, fields, last, Mux), chain_error(prev, fields, last, Mux)
                        )
                        code = Mux(self.check.error != 0, self.check.error, chain)
                        with m.If(code != 0):
                            m.d.sync += respond_error(code)
                            m.next = "RESPOND"
                        with m.Else():
                            m.d.comb += self.check.accept.eq(1)
                            m.d.sync += [
                                prev.out_features.eq(fields.out_features),
                                prev.output_levels.eq(fields.output_levels),
                            ]
                            if g.maps:
                                m.d.sync += [
                                    prev.walk.out_height.eq(fields.walk.out_height),
                                    prev.walk.out_width.eq(fields.walk.out_width),
                                ]
                            m.next = "MODEL_SUM"

                with m.State("MODEL_SUM"):  # the accepted layer's fields into the model's totals
                    m.d.sync += [
                        total_rows.eq(total_rows + layer.weight_rows),
                        total_folds.eq(total_folds + layer.ofolds),
                        total_wwords.eq(total_wwords + layer.weight_words),
                    ]
                    with m.If(layer_idx == 0):
                        m.d.sync += [
                            model_in_words.eq(layer.input_words),
                            model_in_row_words.eq(layer.in_row_words),
                            model_in_rows_log2.eq(layer.in_rows_log2),
                            model_in_row_bits.eq(layer.in_row_bits),
                            model_ifolds.eq(layer.input_rows),
                        ]
                    with m.If(layer_idx == n_layers - 1):
                        m.d.sync += model_out_words.eq(layer.output_words)
                        m.next = "MODEL_TOTAL"
                    with m.Else():
                        m.d.sync += [layer_idx.eq(layer_idx + 1), table_addr.eq(table_addr + per_layer), chunk.eq(0)]
                        m.next = "MODEL_LOAD"

                with m.State("MODEL_TOTAL"):  # the memories hold the whole model, or TOO_LARGE
                    with m.If((total_rows > g.max_weight_rows) | (total_folds > g.max_out_folds)):
                        m.d.sync += respond_error(Const(ErrorCode.TOO_LARGE, 8))
                    with m.Else():
                        m.d.sync += [
                            model_mode.eq(1),
                            config_valid.eq(1),
                            total_twords.eq(total_folds * (g.pe * g.record_words)),
                        ] + respond_ok()
                    m.next = "RESPOND"

            with m.State("OUTPUTS"):  # the last vectors compute and their outputs leave
                with m.If((out_left == 0) | ((out_left == 1) & outputs.valid & outputs.ready)):
                    m.next = "IDLE"

            with m.State("RESPOND"):
                m.d.comb += responding.eq(1)
                with m.If(self.o.ready):
                    m.d.sync += resp_idx.eq(resp_idx + 1)
                    with m.If(resp_idx == resp_last):
                        with m.If(resp_kind == RESP_DATA):
                            m.next = "INPUTS"
                        with m.Else():
                            m.next = "IDLE"

        if resident:
            self._runner(m, model_mode, n_layers, tab_rd)
        return m

    def _inputs(self, m, count, remaining, chunk, row):
        """RUN's words into the input rows of bank ``banks.bank``, a row per cycle: a row of several words
        word by word (``chunk``), a word of several rows (``in_rows_log2``) row by row, the rest of the
        word held while the host's stream waits; the vector's last row fills the bank. After the batch's
        last row: OUTPUTS."""
        g, banks, i_wr = self.geometry, self.banks, self.i_wr
        resident = bool(g.max_layers)
        port_free = ~self.wb_writing if resident else Const(1)  # the activation writer shares the port
        take = self.i.valid & self.i.ready
        rows_log2 = max_in_rows_log2(g)
        if rows_log2:  # rows below a word: the rest of the word, and its rows not yet written
            held, pending = Signal(WORD_BITS), Signal(rows_log2 + 1)
            from_held = pending != 0
        else:
            from_held = Const(0)
        source = Mux(from_held, held, self.i.payload) if rows_log2 else self.i.payload
        write = take | (from_held & port_free)
        m.d.comb += [
            self.i.ready.eq(banks.free & port_free & ~from_held),
            i_wr.addr.eq(Mux(banks.bank, g.max_in_folds, 0) + row),
            i_wr.data.eq(Cat(source for _ in range(g.max_input_row_words))),
            i_wr.en.eq(Mux(write, 1 << chunk, 0)),
        ]
        left = remaining - take  # the batch's words not yet taken after this cycle
        with m.If(take):
            m.d.sync += remaining.eq(left)
        last_row = row == count("input_rows") - 1
        with m.If(write):
            with m.If(chunk == count("in_row_words") - 1):  # the row is written
                m.d.sync += chunk.eq(0)
                with m.If(last_row):
                    m.d.sync += row.eq(0)
                    m.d.comb += banks.filled.eq(1)
                    with m.If(left == 0):
                        m.next = "OUTPUTS"
                with m.Else():
                    m.d.sync += row.eq(row + 1)
                if rows_log2:
                    # the word's next rows: the rest of a word just taken, one fewer from the held rest;
                    # none after the vector's last row (the rest of its last word is padding)
                    rows_left = Mux(from_held, pending - 1, (1 << count("in_rows_log2")) - 1)
                    m.d.sync += pending.eq(Mux(last_row, 0, rows_left))
                    planes = range(1, g.max_input_bits + 1) if g.plane_inputs else [g.max_input_bits]
                    with m.Switch(count("in_row_bits")):
                        for bits in sorted({p * g.simd for p in planes if p * g.simd <= WORD_BITS // 2}):
                            with m.Case(bits):
                                m.d.sync += held.eq(source >> bits)
            with m.Else():
                m.d.sync += chunk.eq(chunk + 1)

    def _runner(self, m, model_mode, n_layers, tab_rd):
        """The layer runner of a resident model: each vector of a RUN through the model's layers."""
        g, walk, layer = self.geometry, self.walk, self.layer
        per_layer = g.model_layer_words
        index, addr, step = Signal(8), Signal(range(per_layer * (g.max_layers + 2))), Signal(3)
        wait = Signal(range(CHECK_LATENCY + 1))
        w_base, f_base = Signal.like(walk.w_base), Signal.like(walk.f_base)
        folds = Signal.like(walk.folds if g.maps else layer.ofolds)  # the layer's folds that have left the engine
        next_input = Signal(8)  # the next layer's input kind and bits (bits 19..12 of its CONFIGURE word 1)
        if g.maps:  # the layer is done when every fold its walk issued (walk.folds, once it is done) has left
            done = ~walk.busy & (folds == walk.folds)
        else:  # ... when its ofolds-th fold leaves
            done = self.fold_taken & (folds == layer.ofolds - 1)
        odd = index[0]  # even layers read the host's bank and write the activation bank, odd ones the reverse
        m.d.comb += [
            walk.model.eq(model_mode),
            walk.src.eq(Mux(odd, 2, walk.host_bank)),
            walk.w_base.eq(w_base),
            walk.f_base.eq(f_base),
            self.wb_dst.eq(Mux(odd, walk.host_bank, 2)),
            self.wb_mode.eq(row_mode(next_input[:4])),
            self.wb_bits.eq(next_input[4:]),
        ]
        with m.FSM(name="runner"):
            with m.State("IDLE"):  # a vector in the host's bank: layer 0
                with m.If(model_mode & walk.host_full):
                    m.d.sync += [index.eq(0), addr.eq(0), step.eq(0), w_base.eq(0), f_base.eq(0)]
                    m.next = "LOAD"
            with m.State("LOAD"):  # the layer's words into `check`, then the next layer's word 1
                m.d.comb += [tab_rd.addr.eq(addr + Mux(step == per_layer, per_layer + 1, step)), tab_rd.en.eq(1)]
                m.d.sync += step.eq(step + 1)
                for k in range(per_layer):
                    with m.If(step == k + 1):
                        m.d.sync += self.check.words[k].eq(tab_rd.data)
                with m.If(step == per_layer + 1):
                    m.d.sync += [next_input.eq(tab_rd.data[12:20]), wait.eq(0)]
                    m.next = "CHECK"
            with m.State("CHECK"):  # the configuration's pipeline, then the layer is the tile's
                m.d.sync += wait.eq(wait + 1)
                with m.If(wait == CHECK_LATENCY):
                    m.d.comb += self.check.accept.eq(1)
                    m.next = "START"
            with m.State("START"):
                m.d.comb += [walk.start.eq(1), self.wb_start.eq(1)]
                m.d.sync += folds.eq(0)
                m.next = "WAIT"
            with m.State("WAIT"):  # until the layer's last fold has left the engine
                with m.If(self.fold_taken):
                    m.d.sync += folds.eq(folds + 1)
                with m.If(done):
                    with m.If(index == n_layers - 1):
                        m.d.comb += walk.release.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [
                            index.eq(index + 1),
                            addr.eq(addr + per_layer),
                            step.eq(0),
                            w_base.eq(w_base + layer.weight_rows),
                            f_base.eq(f_base + layer.ofolds),
                        ]
                        m.next = "LOAD"
