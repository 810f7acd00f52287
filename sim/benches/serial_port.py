"""A host's serial port in cocotb: a UART model on a design's ``rx`` / ``tx`` pins with the byte-port
interface of :class:`lowbit.sw.host.link.LinkTransport`, and fault injection on the wire.

Used by the benches of :class:`lowbit.hw.link.bridge.LinkTile` (:mod:`lowbit.sim.benches.link_bench`) and of
the board's top level :class:`lowbit.boards.build.BoardCore` (:mod:`lowbit.sim.benches.board_bench`).
"""

import random

import cocotb
from cocotb.triggers import FallingEdge, Timer

from lowbit.sw.protocol.frames import CRC_BYTES, HEADER_BYTES, SOF, FrameKind

__all__ = ["CLOCK_NS", "SimSerialPort"]

#: The clock period of :func:`lowbit.sim.benches.streams.start_clock_and_reset`.
CLOCK_NS = 10


class _BoardFrame:
    """Where the monitor is inside a frame from the board: bytes seen, the header, and its fate."""

    def __init__(self):
        self.got = 0
        self.header = bytearray()
        self.length = None  # known once the count has arrived
        self.flip_at = None  # index of the byte to corrupt
        self.cut_from = None  # index of the first byte the host does not get


class SimSerialPort:
    """A host's serial port on ``dut.rx`` / ``dut.tx``, 8N1 at ``divisor`` clock cycles per bit.

    ``write`` drives the bytes bit by bit and returns when the last stop bit has been sent; a monitor
    task decodes ``tx`` all along (sampling each bit in its middle). ``read(n)`` returns what has
    arrived, or waits up to ``read_timeout_bits`` bit times for a byte and then returns ``b""``.

    Faults (all drawn from ``seed``):

    - host DATA frames, counted from 1 as they are sent (a resend is a frame of its own): those in
      ``flip_host_frames`` get one payload bit flipped, those in ``cut_host_frames`` lose their second half;
      or by seq, the first time a frame of that seq is sent (``flip_host_seqs``, ``cut_host_seqs``: where
      a fault makes the host resend a window of frames, their count depends on the timing, the seqs
      do not; for sessions of fewer than 256 host frames);
    - board DATA frames by seq, the first time a frame of that seq arrives (the board resends a window of
      frames too): those in ``flip_board_seqs`` get one payload bit flipped, those in ``cut_board_seqs``
      lose the second half of their bytes (the host sees the frame cut short, then silence);
    - board bytes, counted from 0 over everything the board sends: those in ``flip_board_bytes`` get one
      bit flipped.

    ``injected`` counts the faults applied and ``faults`` lists them (``{"on", "fault", "frame", "seq"}``
    for frame faults, the seq read from the frame). ``host_frames`` / ``board_frames`` count the DATA
    frames of each side.
    """

    def __init__(
        self,
        dut,
        divisor,
        *,
        seed,
        read_timeout_bits=40,
        flip_host_frames=(),
        cut_host_frames=(),
        flip_board_bytes=(),
        flip_host_seqs=(),
        cut_host_seqs=(),
        flip_board_seqs=(),
        cut_board_seqs=(),
    ):
        self.dut, self.bit_ns = dut, divisor * CLOCK_NS
        self.read_timeout_bits = read_timeout_bits
        self.rng = random.Random(seed)
        self.flip_host_frames, self.cut_host_frames = set(flip_host_frames), set(cut_host_frames)
        self.flip_board_bytes = set(flip_board_bytes)
        self.flip_host_seqs, self.cut_host_seqs = set(flip_host_seqs), set(cut_host_seqs)
        self.flip_board_seqs, self.cut_board_seqs = set(flip_board_seqs), set(cut_board_seqs)
        self._host_seqs = set()  # the seqs of the host DATA frames sent so far
        self._board_seqs = set()  # the seqs of the board DATA frames seen so far
        self.inbox = bytearray()
        self.host_frames = 0
        self.board_frames = 0
        self.board_bytes = 0
        self.injected = 0
        self.faults = []
        self._board_frame = None
        dut.rx.value = 1
        self._monitor = cocotb.start_soon(self._receive())

    def _fault(self, on, fault, frame, seq):
        self.injected += 1
        self.faults.append({"on": on, "fault": fault, "frame": frame, "seq": seq})

    async def _receive(self):
        while True:
            await FallingEdge(self.dut.tx)
            await Timer(self.bit_ns // 2, unit="ns")
            bits = []
            for _ in range(10):
                bits.append(int(self.dut.tx.value))
                if len(bits) < 10:
                    await Timer(self.bit_ns, unit="ns")
            assert bits[0] == 0 and bits[9] == 1, f"a malformed character from the board: {bits}"
            byte = self._board_byte(sum(b << k for k, b in enumerate(bits[1:9])))
            if byte is not None:
                self.inbox.append(byte)

    def _board_byte(self, byte):
        """The board's ``byte`` as the host receives it, or ``None`` where a cut drops it. The board's
        frames are well formed, so the monitor follows them on the bytes as sent."""
        received = byte
        if self.board_bytes in self.flip_board_bytes:
            received ^= 1 << self.rng.randrange(8)
            self.injected += 1
            self.faults.append({"on": "board", "fault": "flip byte", "byte": self.board_bytes})
        self.board_bytes += 1
        frame = self._board_frame
        if frame is None:
            if byte != SOF:
                return received
            frame = self._board_frame = _BoardFrame()
        index = frame.got
        frame.got += 1
        if index < HEADER_BYTES:
            frame.header.append(byte)
        if index == HEADER_BYTES - 1:
            count = int.from_bytes(frame.header[3:5], "little")
            frame.length = HEADER_BYTES + 4 * count + CRC_BYTES
            if frame.header[1] == FrameKind.DATA:
                self.board_frames += 1
                number, seq = self.board_frames, frame.header[2]
                first = seq not in self._board_seqs
                self._board_seqs.add(seq)
                if first and seq in self.flip_board_seqs and count:
                    frame.flip_at = self.rng.randrange(HEADER_BYTES, frame.length - CRC_BYTES)
                    self._fault("board", "flip", number, seq)
                elif first and seq in self.cut_board_seqs:
                    frame.cut_from = frame.length // 2
                    self._fault("board", "cut", number, seq)
        if index == frame.flip_at:
            received ^= 1 << self.rng.randrange(8)
        if frame.got == frame.length:
            self._board_frame = None
        if frame.cut_from is not None and index >= frame.cut_from:
            return None
        return received

    async def write(self, data):
        data = bytearray(data)
        if data[1] == FrameKind.DATA:
            self.host_frames += 1
            number, seq = self.host_frames, data[2]
            first = seq not in self._host_seqs
            self._host_seqs.add(seq)
            if number in self.flip_host_frames or (first and seq in self.flip_host_seqs):
                data[HEADER_BYTES + self.rng.randrange(len(data) - HEADER_BYTES - CRC_BYTES)] ^= (
                    1 << self.rng.randrange(8)
                )
                self._fault("host", "flip", number, seq)
            elif number in self.cut_host_frames or (first and seq in self.cut_host_seqs):
                data = data[: len(data) // 2]
                self._fault("host", "cut", number, seq)
        for byte in data:
            for bit in [0] + [(byte >> k) & 1 for k in range(8)] + [1]:
                self.dut.rx.value = bit
                await Timer(self.bit_ns, unit="ns")

    @property
    def in_waiting(self):
        return len(self.inbox)

    async def read(self, n):
        for _ in range(self.read_timeout_bits):
            if self.inbox:
                break
            await Timer(self.bit_ns, unit="ns")
        data = bytes(self.inbox[:n])
        del self.inbox[:n]
        return data

    def close(self):
        self._monitor.cancel()
