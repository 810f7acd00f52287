"""The tile's commands over a :class:`~lowbit.sw.host.transport.Transport`: :class:`TileInterface`, one
``async`` method per command, with the words on the wire counted in :class:`StreamStats`."""

from lowbit.sw.host.transport import TileError, enum_name
from lowbit.sw.kinds import Family
from lowbit.sw.protocol import MAX_LENGTH, Opcode, Response, TileGeometry, header, parse_header

__all__ = ["StreamStats", "TileInterface", "vectors_per_run"]


class StreamStats:
    """Words on the wire: per command kind the commands, header and payload words sent; the response
    header and payload words received."""

    def __init__(self):
        self.sent = {op.name: {"commands": 0, "header": 0, "payload": 0} for op in Opcode}
        self.received = {"header": 0, "payload": 0}

    def count_command(self, opcode, payload):
        entry = self.sent.setdefault(enum_name(Opcode, opcode), {"commands": 0, "header": 0, "payload": 0})
        entry["commands"] += 1
        entry["header"] += 1
        entry["payload"] += payload

    @property
    def header_words(self):
        return sum(entry["header"] for entry in self.sent.values())

    @property
    def payload_words(self):
        return sum(entry["payload"] for entry in self.sent.values())

    def as_dict(self):
        return {
            "sent": {name: dict(entry) for name, entry in self.sent.items() if entry["commands"]},
            "sent_header_words": self.header_words,
            "sent_payload_words": self.payload_words,
            "received": dict(self.received),
        }


class TileInterface:
    """The tile's commands over a :class:`Transport`, one ``async`` method each.

    Every method sends one command, reads its one response, checks the response's header and length,
    and raises :class:`TileError` on ERROR or on a malformed response. ``geometry`` (from
    :meth:`identify`, or given) and the last configured layer (``layer``) or resident model (``model``, its
    layers) let :meth:`run` check DATA's length.
    ``stats`` counts the words; ``log`` lists the commands (opcode, words, cycles where the transport
    has a clock, and the ``tag`` set by the caller, e.g. the layer index).
    """

    def __init__(self, transport, geometry=None):
        self.transport = transport
        self.geometry = geometry
        self.layer = None
        self.model = None
        self.stats = StreamStats()
        self.log = []
        self.tag = None

    async def _command(self, opcode, payload, response, expected_length, batch=None):
        payload = [int(w) for w in payload]
        start = self.transport.cycle
        self.stats.count_command(opcode, len(payload))
        await self.transport.write([header(opcode, len(payload)), *payload])
        reply, length = parse_header((await self.transport.read(1))[0])
        self.stats.received["header"] += 1
        if reply == Response.ERROR and length == 1:
            word = (await self.transport.read(1))[0]
            self.stats.received["payload"] += 1
            code, about = word & 0xFF, (word >> 8) & 0xFF
            raise TileError(
                code,
                opcode,
                None if about == int(opcode) else f"the error names opcode 0x{about:02x}, not the command sent",
            )
        if reply != response or (expected_length is not None and length != expected_length):
            want = f"{response.name} of {'any length' if expected_length is None else expected_length}"
            raise TileError(None, opcode, f"header {enum_name(Response, reply)} with length {length}, expected {want}")
        words = await self.transport.read(length) if length else []
        self.stats.received["payload"] += length
        self.log.append(
            {
                "opcode": enum_name(Opcode, opcode),
                "tag": self.tag,
                "payload": len(payload),
                "response": length,
                "batch": batch,
                "start_cycle": start,
                "end_cycle": self.transport.cycle,
            }
        )
        return words

    async def identify(self):
        """The tile's :class:`TileGeometry` (also kept as ``self.geometry``)."""
        words = await self._command(Opcode.IDENTIFY, [], Response.DATA, len(_PROBE.encode()))
        try:
            self.geometry = TileGeometry.decode(words)
        except ValueError as error:
            raise TileError(None, Opcode.IDENTIFY, f"the parameters do not decode: {error}") from None
        return self.geometry

    async def configure(self, layer_config):
        """Make ``layer_config`` the tile's layer; its weights and thresholds are forgotten (and a resident
        model, with its loads)."""
        self.layer = self.model = None
        await self._command(Opcode.CONFIGURE, layer_config.encode(), Response.OK, 0)
        self.layer = layer_config

    async def load_model(self, layers):
        """LOAD_MODEL: make ``layers`` (:class:`LayerConfig`, layer 0 first) the tile's resident model; the
        previous layer or model and its loads are forgotten. LOAD_WEIGHTS, LOAD_THRESHOLDS and RUN then
        take the whole model's words (:meth:`TileGeometry.model_weight_words`, ...), RUN answers the last
        layer's outputs."""
        layers = list(layers)
        self.layer = self.model = None
        await self._command(Opcode.LOAD_MODEL, (self.geometry or _PROBE).model_words(layers), Response.OK, 0)
        self.model = layers

    async def load_weights(self, words):
        await self._command(Opcode.LOAD_WEIGHTS, words, Response.OK, 0)

    async def load_thresholds(self, words):
        await self._command(Opcode.LOAD_THRESHOLDS, words, Response.OK, 0)

    async def run(self, batch_words, batch):
        """RUN on ``batch`` input vectors (``batch_words``: their packed words); returns DATA's words (a
        resident model's: the last layer's outputs)."""
        expected = None
        last = self.model[-1] if self.model else self.layer
        if self.geometry is not None and last is not None:
            expected = batch * self.geometry.output_words(last)
        return await self._command(Opcode.RUN, batch_words, Response.DATA, expected, batch)

    async def classify(self, batch_words, batch):
        """CLASSIFY on ``batch`` input vectors of the resident model (``batch_words``: their packed words, as
        for RUN); returns DATA's words, each vector's class index."""
        return await self._command(Opcode.CLASSIFY, batch_words, Response.DATA, batch, batch)


#: Any geometry: only the length of its encoding is used.
_PROBE = TileGeometry(Family.POPCOUNT, 1, 1, 1, 1, 1)


def vectors_per_run(words_per_vector, batch, max_batch=None):
    """Vectors per RUN command for a batch: all of them, unless the RUN or its DATA (``words_per_vector``:
    the larger of the two per vector) would exceed ``MAX_LENGTH`` words, or ``max_batch``."""
    size = min(batch, MAX_LENGTH // words_per_vector)
    return max(1, min(size, max_batch) if max_batch else size)
