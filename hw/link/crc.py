"""The frame CRC as Amaranth logic: :func:`crc16_update`, one byte per clock cycle. The CRC itself
(CRC-16/CCITT-FALSE, :data:`~lowbit.sw.protocol.frames.CRC_POLY`, :data:`~lowbit.sw.protocol.frames.CRC_INIT`)
and its pure-Python form :func:`~lowbit.sw.protocol.frames.crc16` are defined in
:mod:`lowbit.sw.protocol.frames`; the frame receiver and the frame sender of the board's link use this."""

from amaranth.hdl import Cat

from lowbit.sw.protocol.frames import CRC_POLY

__all__ = ["crc16_update"]


def _crc16_taps():
    """The CRC step as XOR equations: for each bit of the next register, a 24-bit mask of the inputs it
    XORs (bits 0..15: the register, 16..23: the byte). The CRC is linear, so running :func:`crc16`'s loop
    on symbolic bits (each a mask of inputs) gives them."""
    crc = [1 << k for k in range(16)]
    for k in range(7, -1, -1):
        feedback = crc[15] ^ (1 << (16 + k))
        crc = [(crc[j - 1] if j else 0) ^ (feedback if (CRC_POLY >> j) & 1 else 0) for j in range(16)]
    return crc


_CRC16_TAPS = _crc16_taps()


def crc16_update(crc, byte):
    """Amaranth: the CRC-16/CCITT-FALSE register ``crc`` (16 bits) after the 8-bit value ``byte``, most
    significant bit first, as one XOR of inputs per bit; the same arithmetic as
    :func:`lowbit.sw.protocol.frames.crc16`."""
    inputs = Cat(crc, byte)
    return Cat(*(_xor(inputs[k] for k in range(24) if (mask >> k) & 1) for mask in _CRC16_TAPS))


def _xor(bits):
    bits = list(bits)
    value = bits[0]
    for bit in bits[1:]:
        value = value ^ bit
    return value
