"""An 8N1 UART: a receiver and a transmitter, ``divisor`` clock cycles per bit.

A character on the line is a start bit (0), eight data bits, least significant first, and a stop bit
(1); the line idles high. Both blocks are :class:`amaranth.lib.wiring.Component` s with a byte stream
(``stream.Signature(8)``) on the inside and a pin on the outside. :mod:`lowbit.hw.link.bridge` builds the
framed, checked serial link of a board on them (``docs/serial.md``).
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from lowbit.sw.protocol.frames import BITS_PER_CHARACTER

__all__ = ["check_divisor", "UARTReceiver", "UARTTransmitter"]

#: The smallest divisor: the receiver needs a few cycles per bit to find the middle of a bit.
MIN_DIVISOR = 4


def check_divisor(divisor):
    """Raise a clear error unless ``divisor`` (clock cycles per bit) is an integer >= :data:`MIN_DIVISOR`."""
    if not isinstance(divisor, int) or isinstance(divisor, bool) or divisor < MIN_DIVISOR:
        raise ValueError(
            f"divisor (clock cycles per bit) must be an integer of at least {MIN_DIVISOR}, not {divisor!r}"
        )
    return divisor


class UARTReceiver(wiring.Component):
    """8N1 receiver: ``o.payload`` = the eight data bits of each well-formed character on ``rx``.

    Ports:

    - ``rx`` (in, 1 bit, idle high): the serial input; it passes a 2-flop synchronizer first.
    - ``o`` (out, ``stream.Signature(8)``): one received byte per transfer.
    - ``error`` (out, 1 bit): a one-cycle pulse when a character is dropped (a framing error or an
      overrun, below).
    - ``framing_errors`` and ``overruns`` (out, 16 bits each, wrapping): characters dropped because
      their stop bit read 0, or because ``o`` still held the previous byte (``o.ready`` low for a
      whole character time). A dropped byte never corrupts the bytes that follow.

    A falling edge of the (synchronized) line starts a character; the start bit is checked again in its
    middle (``divisor // 2`` cycles later: a shorter low pulse is a glitch and ignored), then every bit
    is sampled one ``divisor`` later, so the sampling point stays inside each bit for a sender whose bit
    time differs by a few per cent. After a framing error the receiver waits for the line to return
    high (a break) before it looks for the next start bit.

    Latency: a byte is valid on ``o`` 2 + ``divisor // 2`` + 9 * ``divisor`` cycles after its start
    bit's falling edge (the middle of its stop bit, plus the synchronizer). Throughput: one byte per
    character time (10 * ``divisor`` cycles); ``o`` holds a byte for a whole character time before the
    next one is counted as an overrun.
    """

    def __init__(self, divisor):
        self.divisor = check_divisor(divisor)
        super().__init__(
            {
                "rx": In(1, init=1),
                "o": Out(stream.Signature(8)),
                "error": Out(1),
                "framing_errors": Out(16),
                "overruns": Out(16),
            }
        )

    def elaborate(self, platform):
        m = Module()
        line = Signal(init=1)
        m.submodules.synchronizer = FFSynchronizer(self.rx, line, init=1, stages=2)

        timer = Signal(range(self.divisor))
        bit = Signal(range(8))
        shift = Signal(8)

        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(self.divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(self.divisor - 1), bit.eq(0)]
                    m.next = "DATA"
                    with m.If(line):  # not low in the middle of the start bit: a glitch
                        m.next = "IDLE"
            with m.State("DATA"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(self.divisor - 1), shift.eq(Cat(shift[1:], line)), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    with m.If(~line):
                        m.d.comb += self.error.eq(1)
                        m.d.sync += self.framing_errors.eq(self.framing_errors + 1)
                        m.next = "BREAK"
                    with m.Elif(self.o.valid & ~self.o.ready):
                        m.d.comb += self.error.eq(1)
                        m.d.sync += self.overruns.eq(self.overruns + 1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [self.o.payload.eq(shift), self.o.valid.eq(1)]
                        m.next = "IDLE"
            with m.State("BREAK"):
                with m.If(line):
                    m.next = "IDLE"
        return m


class UARTTransmitter(wiring.Component):
    """8N1 transmitter: each byte taken from ``i`` is sent on ``tx`` as start bit, ``i.payload`` least
    significant bit first, stop bit.

    Ports: ``i`` (in, ``stream.Signature(8)``), ``tx`` (out, 1 bit, idle high, driven by a flip-flop).

    Latency: the start bit begins the cycle after the transfer on ``i``. Throughput: one byte per
    10 * ``divisor`` cycles; ``i.ready`` rises in the last cycle of a stop bit, so bytes offered back to
    back leave without a gap between characters.
    """

    def __init__(self, divisor):
        self.divisor = check_divisor(divisor)
        super().__init__(
            {
                "i": In(stream.Signature(8)),
                "tx": Out(1, init=1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        # The character being sent, the next bit to appear on the line in bit 0; ones shift in behind
        # it, so the line idles high straight from the register.
        shift = Signal(BITS_PER_CHARACTER, init=(1 << BITS_PER_CHARACTER) - 1)
        bits_left = Signal(range(BITS_PER_CHARACTER + 1))
        timer = Signal(range(self.divisor))
        m.d.comb += [
            self.tx.eq(shift[0]),
            self.i.ready.eq((bits_left == 0) | ((bits_left == 1) & (timer == 0))),
        ]
        with m.If(bits_left != 0):
            m.d.sync += timer.eq(timer - 1)
            with m.If(timer == 0):
                m.d.sync += [shift.eq(Cat(shift[1:], 1)), bits_left.eq(bits_left - 1), timer.eq(self.divisor - 1)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [
                shift.eq(Cat(0, self.i.payload, 1)),
                bits_left.eq(BITS_PER_CHARACTER),
                timer.eq(self.divisor - 1),
            ]
        return m
