"""The serial transport on a real pseudo-terminal: pyserial's ``serial.Serial``, opened by
:func:`open_serial` on the slave side, and on the master side a thread that plays the board (the link
rules of :class:`BoardModel` with a :class:`ModelTile` behind them), corrupting some of its frames and
cutting one of the host's. ``lowbit run --backend serial`` end to end through it, and its errors: a
board that does not answer, a port that does not exist, a model too large for the board, options of the
wrong backend."""

import asyncio
import dataclasses
import os
import random
import re
import select
import sys
import threading
import time

import pytest

from lowbit.sim.reference import ModelTile
from lowbit.sw.cli import main
from lowbit.sw.host import TileInterface, TransportError
from lowbit.sw.host.link import DEFAULT_BAUD, SerialTransport, open_serial
from lowbit.sw.protocol import Family, InputKind, LayerConfig, Opcode, TileGeometry, WeightKind, header
from lowbit.sw.protocol.frames import MAX_FRAME_WORDS, SOF, FrameKind
from tests.sw.host.link_board import BoardModel, tile_app

if sys.platform == "win32":
    pytest.skip("pseudo-terminals are POSIX", allow_module_level=True)

import tty  # noqa: E402  (POSIX only)

#: The iCEBreaker's tile (docs/boards.md): PE 2 x SIMD 16, layers up to 64 x 64.
ICEBREAKER = TileGeometry(
    Family.POPCOUNT,
    pe=2,
    simd=16,
    max_in_features=64,
    max_out_features=64,
    max_weight_rows=256,
    acc_width=16,
    max_thresholds=1,
    max_input_bits=8,
)
#: The emulated board's inter-byte timeout. A pseudo-terminal has no baud rate: a write arrives at once.
INTERBYTE_SECONDS = 0.02


class PtyBoard:
    """A board at the master end of a new pseudo-terminal (``name`` is the slave's device, for
    :func:`open_serial`). Unless ``answer`` is false, a thread runs :class:`BoardModel` with a
    :class:`ModelTile` of ``geometry`` behind it. Every ``corrupt_every``-th frame to the host gets a bit
    flipped (not in SOF or the count, so that the host sees a bad CRC at once); the ``cut_host_frame``-th
    DATA frame from the host is cut in half. :meth:`close` stops the thread and re-raises its error."""

    def __init__(self, geometry=ICEBREAKER, *, answer=True, corrupt_every=0, cut_host_frame=None, seed=1):
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.name = os.ttyname(self._slave)
        os.set_blocking(self.master, False)
        self.rng = random.Random(seed)
        self.corrupt_every, self.cut_host_frame = corrupt_every, cut_host_frame
        self.frames_to_host = self.corrupted = self.host_data_frames = self.cut = 0
        self.tile = ModelTile(geometry)

        def new_tile():  # SYNC resets the board's tile
            self.tile = ModelTile(geometry)

        self.board = BoardModel(self, lambda words: tile_app(self.tile)(words), on_sync=new_tile)
        self.error = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"board on {self.name}", daemon=True)
        if answer:
            self._thread.start()

    def put(self, frame):
        """BoardModel's line to the host."""
        frame = bytearray(frame)
        self.frames_to_host += 1
        if self.corrupt_every and self.frames_to_host % self.corrupt_every == 0:
            index = self.rng.choice([1, 2, *range(5, len(frame))])
            frame[index] ^= 1 << self.rng.randrange(8)
            self.corrupted += 1
        try:
            os.write(self.master, frame)
        except BlockingIOError:  # nobody reads: the bytes are lost, as on a UART
            pass

    def _receive(self, data):
        # The host writes a frame at a time, so a chunk that starts a DATA frame holds (at least) that frame.
        if data[:2] == bytes([SOF, FrameKind.DATA]):
            self.host_data_frames += 1
            if self.host_data_frames == self.cut_host_frame:
                data = data[: len(data) // 2]
                self.cut += 1
        self.board.receive(data, time.monotonic())

    def _serve(self):
        last = time.monotonic()
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([self.master], [], [], 0.005)
                now = time.monotonic()
                if ready:
                    self._receive(os.read(self.master, 4096))
                    last = now
                elif now - last >= INTERBYTE_SECONDS:
                    self.board.silence(now)
        except BaseException as error:  # re-raised in the test's thread by close()
            self.error = error

    def close(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        alive = self._thread.is_alive()
        os.close(self.master)
        os.close(self._slave)
        assert not alive, f"the board thread on {self.name} did not stop"
        if self.error is not None:
            raise self.error


@pytest.fixture
def make_board():
    """``make_board(**kw) -> PtyBoard``; every board is closed (its thread stopped) after the test."""
    boards = []

    def make(**kw):
        boards.append(PtyBoard(**kw))
        return boards[-1]

    yield make
    for board in boards:
        board.close()


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """A small binary digits model (64 -> 32 -> 10) that fits the iCEBreaker's tile."""
    import torch

    from lowbit.sw.model.file import save_model
    from lowbit.sw.train.data import load_digits_split
    from lowbit.sw.train.export import export_model
    from lowbit.sw.train.qat import TrainSettings, train_scheme

    torch.set_num_threads(1)
    settings = TrainSettings(hidden=(32,), epochs=2, pretrain_epochs=2, progress=False, seed=5)
    path = tmp_path_factory.mktemp("serial") / "binary.lbm"
    save_model(export_model(train_scheme("binary", settings, load_digits_split()).net, "binary"), path)
    return path


def run_serial(model_path, port, *options):
    return main(["run", str(model_path), "--backend", "serial", "--port", port, "--no-progress", *options])


# --- open_serial ------------------------------------------------------------------------------------------


def test_open_serial_settings_and_flush(make_board):
    board = make_board(answer=False)
    os.write(board.master, b"stale bytes of an earlier session")
    connection = open_serial(board.name)
    try:
        assert (connection.port, connection.baudrate, connection.bytesize, connection.parity, connection.stopbits) == (
            board.name,
            DEFAULT_BAUD,
            8,
            "N",
            1,
        )
        assert not (connection.xonxoff or connection.rtscts or connection.dsrdtr)
        assert connection.timeout == 0.05 and connection.write_timeout == 1.0
        assert connection.in_waiting == 0 and connection.read(1) == b""
    finally:
        connection.close()
    slow = open_serial(board.name, baud=300)  # 20 byte times at 300 baud, four frames' time
    try:
        assert slow.timeout == pytest.approx(20 * 10 / 300) and slow.write_timeout == pytest.approx(4 * 263 * 10 / 300)
    finally:
        slow.close()


def test_default_baud_is_the_boards():
    from lowbit.boards import icebreaker, ulx3s

    assert DEFAULT_BAUD == icebreaker.BAUD == ulx3s.BAUD


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"baud": 0}, "baud must be a positive integer, not 0"),
        ({"read_timeout": 0}, "read_timeout must be a positive number"),
        ({"write_timeout": -1}, "write_timeout must be a positive number"),
    ],
)
def test_open_serial_wrong(kw, message):
    with pytest.raises(ValueError, match=message):
        open_serial("/dev/nonexistent-lowbit", **kw)


def test_open_serial_errors_name_the_port(tmp_path, monkeypatch):
    with pytest.raises(
        TransportError, match="cannot open the serial port /dev/nonexistent-lowbit: No such file or directory$"
    ):
        open_serial("/dev/nonexistent-lowbit")
    not_a_tty = tmp_path / "file"
    not_a_tty.write_bytes(b"")
    with pytest.raises(TransportError, match=f"cannot open the serial port {not_a_tty}: Could not configure port"):
        open_serial(not_a_tty)
    if os.geteuid() != 0:  # root opens anything
        not_a_tty.chmod(0)
        with pytest.raises(TransportError, match="Permission denied; is your user in the group"):
            open_serial(not_a_tty)
    monkeypatch.setitem(sys.modules, "serial", None)
    with pytest.raises(TransportError, match="the serial transport needs pyserial"):
        open_serial("/dev/nonexistent-lowbit")


def test_serial_transport_closes_the_port_and_names_it_in_io_errors(make_board):
    board = make_board(answer=False)
    with SerialTransport(board.name, write_timeout=0.05) as link:
        assert link.connection.is_open
        # Nobody reads the master end: the pseudo-terminal's buffer fills and the write times out.
        with pytest.raises(TransportError, match=f"writing to the serial port {board.name} failed: Write timeout"):
            link.port.write(bytes(1 << 20))
    assert not link.connection.is_open


# --- lowbit run --backend serial --------------------------------------------------------------------------


@pytest.mark.parametrize("faults", [False, True], ids=["clean", "faults"])
def test_run_on_the_board(model_path, make_board, capsys, faults):
    """20 test images through the emulated iCEBreaker; with faults, 1 in 10 of the board's frames has a
    flipped bit and the host's third DATA frame is cut in half: frames are resent, the outputs still
    equal the golden model's."""
    board = make_board(corrupt_every=10 if faults else 0, cut_host_frame=3 if faults else None)
    assert run_serial(model_path, board.name, "--limit", "20", "--timeout", "0.2") == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert (
        f"board on {board.name} (3000000 baud): popcount tile PE=2 SIMD=16 acc_width=16, layers up to 64 "
        f"inputs and 64 outputs, 256 weight rows, 1 threshold per channel, inputs up to 8 bits"
    ) in out
    assert "(binary, 2 layers), backend serial, popcount tile PE=2 SIMD=16 acc_width=16, 20 test images" in out
    assert "outputs equal to the golden model: 200 of 200\n" in out
    assert re.search(r"images per second over the wire: [\d.]+ \(20 images in [\d.]+ s, wall clock\)", out)
    sent, resent, received, bad = map(
        int, re.search(r"link: (\d+) DATA frames sent, (\d+) resent, (\d+) received, (\d+) bad frames", out).groups()
    )
    assert sent > 0 and received > 0
    if faults:
        assert board.cut == 1 and board.corrupted >= 2
        assert resent > 0 and bad > 0, out
    else:
        assert resent == bad == 0, out


def test_classes_from_a_resident_board(model_path, make_board, capsys):
    """--classes on a board whose tile holds the model: CLASSIFY, one word per image comes back, with a
    board frame in ten corrupted."""
    board = make_board(geometry=dataclasses.replace(ICEBREAKER, max_layers=2), corrupt_every=10)
    argv = ("--limit", "40", "--timeout", "0.2", "--classes", "--mode", "resident")
    assert run_serial(model_path, board.name, *argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert ", 40 test images, resident" in out and "class indices equal to the golden model's: 40 of 40\n" in out
    assert board.tile.pending == 0


def test_a_new_session_on_a_board_left_in_any_state(model_path, make_board, capsys):
    """A host that stopped in the middle of a command (sequence numbers advanced, LOAD_WEIGHTS half sent,
    a response unread) and a new `lowbit run` on the same board without a reset: SYNC puts both ends
    in step and resets the tile, the run's outputs equal the golden model's."""
    board = make_board()
    with SerialTransport(board.name, timeout=0.2, retries=4) as link:
        interface = TileInterface(link)
        asyncio.run(interface.identify())  # answered, seq 0 used in both directions
        config = LayerConfig(64, 64, WeightKind.BINARY, 1, 0, InputKind.BINARY, 1, 2)
        asyncio.run(interface.configure(config))
        words = ICEBREAKER.weight_words(config)
        # LOAD_WEIGHTS cut off after its first frames: the tile waits for the rest of its payload.
        asyncio.run(link.write([header(Opcode.LOAD_WEIGHTS, words)] + [0] * (MAX_FRAME_WORDS * 2 - 1)))
        assert board.tile.pending == 0
    assert board.board.expected == 4  # the board's sequence numbers moved on
    assert run_serial(model_path, board.name, "--limit", "20", "--timeout", "0.2") == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "outputs equal to the golden model: 200 of 200\n" in out


def test_a_board_that_does_not_answer(model_path, make_board, capsys):
    board = make_board(answer=False)
    start = time.monotonic()
    with SerialTransport(board.name, timeout=0.1, retries=1) as link:
        with pytest.raises(
            TransportError,
            match=r"DATA frame seq 0 \(1 words\) was not acknowledged after 2 "
            r"attempts: the board does not answer",
        ):
            asyncio.run(TileInterface(link).identify())
    assert time.monotonic() - start < 2
    start = time.monotonic()
    assert run_serial(model_path, board.name, "--timeout", "0.1", "--retries", "1") == 2
    assert time.monotonic() - start < 5
    err = capsys.readouterr().err
    assert err.startswith(
        f"lowbit run: error: {board.name}: starting the session failed: SYNC was not answered "
        f"after 2 attempts: the board does not answer"
    )
    assert "the board does not answer. Is the board programmed" in err


def test_a_port_that_does_not_exist(model_path, capsys):
    assert run_serial(model_path, "/dev/nonexistent-lowbit") == 2
    assert capsys.readouterr().err == (
        "lowbit run: error: cannot open the serial port /dev/nonexistent-lowbit: No such file or directory\n"
    )


def test_a_model_too_large_for_the_board(model_path, make_board, capsys):
    small = TileGeometry(
        Family.POPCOUNT,
        pe=2,
        simd=16,
        max_in_features=32,
        max_out_features=32,
        max_weight_rows=256,
        acc_width=16,
        max_thresholds=1,
        max_input_bits=8,
    )
    board = make_board(geometry=small)
    assert run_serial(model_path, board.name, "--limit", "2") == 2
    captured = capsys.readouterr()
    assert f"board on {board.name}" in captured.out
    assert captured.err.startswith("lowbit run: error: the model does not fit the board's tile: layer 0 (64 -> 32)")


@pytest.mark.parametrize(
    "options, message",
    [
        (["--backend", "model", "--port", "/dev/ttyUSB1"], "--port is for --backend serial only, not --backend model"),
        (
            ["--backend", "golden", "--port", "/dev/ttyUSB1"],
            "--port is for --backend serial only, not --backend golden",
        ),
        (["--backend", "serial"], "--backend serial needs --port DEVICE"),
        (
            ["--backend", "serial", "--port", "/dev/ttyUSB1", "--pe", "4"],
            "--pe is for --backend model or sim only, not --backend serial",
        ),
    ],
)
def test_wrong_backend_options(tmp_path, capsys, options, message):
    assert main(["run", str(tmp_path / "unused.lbm"), *options]) == 2
    assert capsys.readouterr().err.startswith(f"lowbit run: error: {message}")


@pytest.mark.parametrize("option", [["--timeout", "0"], ["--retries", "-1"], ["--baud", "0"]])
def test_wrong_serial_values(tmp_path, capsys, option):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(tmp_path / "unused.lbm"), "--backend", "serial", "--port", "/dev/ttyUSB1", *option])
    assert exit_info.value.code == 2
    assert f"argument {option[0]}: invalid" in capsys.readouterr().err
