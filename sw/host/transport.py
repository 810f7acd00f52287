"""The tile's word stream as the host sees it: :class:`Transport` (a reference tile in Python, a
simulation, a serial link) and the errors of a command: :class:`TransportError`, :class:`TileError`."""

import abc

from lowbit.sw.protocol import ErrorCode, Opcode

__all__ = ["Transport", "TransportError", "TileError", "enum_name"]

#: What each error code means, for messages (the codes themselves live in :class:`ErrorCode`).
ERROR_TEXT = {
    ErrorCode.UNKNOWN_OPCODE: "the header's opcode is not a command",
    ErrorCode.BAD_LENGTH: "the length does not match what the command needs for the layer",
    ErrorCode.UNSUPPORTED: "this tile cannot run the layer",
    ErrorCode.TOO_LARGE: "the layer does not fit the tile's memories",
    ErrorCode.NOT_CONFIGURED: "LOAD_* or RUN before a valid CONFIGURE",
    ErrorCode.NOT_LOADED: "RUN before the layer's weights and thresholds are loaded",
}


def enum_name(enum_type, value):
    try:
        return enum_type(value).name
    except ValueError:
        return f"0x{int(value):02x}"


class TransportError(RuntimeError):
    """The transport cannot deliver: e.g. a read of more words than the tile has answered."""


class TileError(Exception):
    """The tile answered ERROR (``code`` is an :class:`ErrorCode`), or a response was malformed
    (``code`` is ``None`` and ``detail`` says what was wrong). ``opcode`` is the command concerned."""

    def __init__(self, code, opcode, detail=None):
        self.code = ErrorCode(code) if code is not None and code in set(ErrorCode) else code
        self.opcode = opcode
        self.detail = detail
        command = enum_name(Opcode, opcode)
        if code is None:
            message = f"malformed response to {command}: {detail}"
        elif isinstance(self.code, ErrorCode):
            message = f"the tile refused {command}: {self.code.name} ({ERROR_TEXT[self.code]})"
        else:
            message = f"the tile refused {command} with an unknown error code 0x{code:02x}"
        if code is not None and detail:
            message += f"; {detail}"
        super().__init__(message)


# --- transports -----------------------------------------------------------------------------------------


class Transport(abc.ABC):
    """A bidirectional stream of 32-bit words to a tile. ``cycle`` is the current clock cycle where the
    transport has a clock (a simulation), else ``None``."""

    cycle = None

    @abc.abstractmethod
    async def write(self, words):
        """Send ``words`` (integers ``0 .. 2**32 - 1``) to the tile."""

    @abc.abstractmethod
    async def read(self, count):
        """Receive exactly ``count`` words from the tile, as a list of integers."""

    async def close(self):  # noqa: B027 (a transport with nothing to release keeps this default)
        """Release the transport."""
