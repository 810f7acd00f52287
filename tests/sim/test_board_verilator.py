"""The iCEBreaker's top level in Verilator (BoardCore: the tile behind the serial link, the heartbeat and
the error LED; BoardTop adds only pin buffers), driven by the host driver over the serial link bit by
bit: a small trained model end to end in resident mode (LOAD_MODEL once, then only the inputs and the
results on the wire) with flipped frames both ways, every output equal to the golden model (==), no word
lost or duplicated, the error LED dark after a clean IDENTIFY and lit after the faults, the heartbeat's
period; IDENTIFY with the board's 24-bit heartbeat; a second session after one abandoned mid-command.
Every bench runs the board's own 3 Mbaud UART (6 cycles per bit of its 18 MHz PLL clock) and 0.1 s ACK
timeout. The tile is the iCEBreaker's resident one (``icebreaker.RESIDENT_GEOMETRY``, which the UP5K
holds: BINARY PE 2 x SIMD 16, 3 layers; the tile lowbit plan sizes for the digits model); a layer at a
time over the link is tests/sim/test_link_verilator.py's, and a small binary CNN's here (the host cutting
its windows)."""

import asyncio
import math

import numpy as np
import pytest

from lowbit.boards import icebreaker
from lowbit.boards.build import BoardCore
from lowbit.sim.reference import ModelTile
from lowbit.sim.tile_transport import geometry_to_json
from lowbit.sim.verilator import run_board_bench
from lowbit.sw.golden import GoldenNetwork
from lowbit.sw.host import TileInterface, default_geometry, run_model
from lowbit.sw.host.plan import first_windows
from lowbit.sw.protocol import Opcode, parse_header
from lowbit.sw.protocol.frames import MAX_FRAME_WORDS, WINDOW_FRAMES

pytestmark = pytest.mark.verilator

#: The iCEBreaker's resident tile (see the module's docstring).
GEOMETRY = icebreaker.RESIDENT_GEOMETRY
#: Clock cycles per bit: the board's own (3 Mbaud at its 18 MHz PLL clock). The line takes nearly all of
#: the simulated time (about 5500 bytes for the model below), so the run time scales with it.
DIVISOR = icebreaker.DIVISOR
#: The board's clock: its ACK timeout is ACK_TIMEOUT_SECONDS of it (BoardCore's clock_hz), which the
#: bench's host outwaits.
CLOCK_HZ = icebreaker.CLOCK_HZ
ACK_TIMEOUT_CYCLES = BoardCore(GEOMETRY, DIVISOR, clock_hz=CLOCK_HZ).link.bridge.ack_timeout_cycles
#: A heartbeat period of 256 cycles instead of 2**24, so that the bench sees it toggle.
HEARTBEAT_BITS = 8
IMAGES = 20
#: 8 vectors per RUN: three RUNs per layer (8, 8, 4).
MAX_BATCH = 8
SEED = 20261124
TRAIN_SEED = 5


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import torch

    from lowbit.sw.model.file import load_model, save_model
    from lowbit.sw.train.data import load_digits_split
    from lowbit.sw.train.export import export_model
    from lowbit.sw.train.qat import TrainSettings, train_scheme

    torch.set_num_threads(1)
    split = load_digits_split()
    settings = TrainSettings(hidden=(32,), epochs=3, pretrain_epochs=3, progress=False, seed=TRAIN_SEED)
    path = tmp_path_factory.mktemp("board_model") / "binary.lbm"
    save_model(export_model(train_scheme("binary", settings, split).net, "binary"), path)
    return path, load_model(path), split.x_test[:IMAGES]


class _RecordingTile(ModelTile):
    """:class:`ModelTile` that lists the commands written to it: ``[opcode, words sent, words answered]``."""

    def __init__(self, geometry):
        super().__init__(geometry)
        self.commands = []

    async def write(self, words):
        self.commands.append([Opcode(parse_header(words[0])[0]), len(words), 0])
        await super().write(words)

    async def read(self, count):
        self.commands[-1][2] += count
        return await super().read(count)


def session(model, pixels, mode):
    """The commands of the bench's session (IDENTIFY, then :func:`run_model` in ``mode``), in order:
    ``(layer, opcode name, the how-many-th such command of the layer, words sent, words answered)``; a
    resident model's commands are all "layer" 0."""
    tile = _RecordingTile(GEOMETRY)

    async def run():
        interface = TileInterface(tile)
        await interface.identify()
        await run_model(interface, model, pixels, max_batch=MAX_BATCH, mode=mode)

    asyncio.run(run())
    commands, layer, seen = [], -1, {}
    for opcode, sent, answered in tile.commands:
        if opcode in (Opcode.CONFIGURE, Opcode.LOAD_MODEL):
            layer, seen = layer + 1, {}
        seen[opcode] = seen.get(opcode, -1) + 1
        commands.append((layer, opcode.name, seen[opcode], sent, answered))
    return commands


def host_frames(commands):
    """The host's DATA frames on a clean line, in order: ``(layer, opcode name, occurrence, frame of the
    command)``. LinkTransport sends each command in frames of at most MAX_FRAME_WORDS words."""
    return [
        (layer, name, occurrence, k)
        for layer, name, occurrence, sent, _ in commands
        for k in range(math.ceil(sent / MAX_FRAME_WORDS))
    ]


def test_model_over_the_link(trained):
    path, model, pixels = trained
    mode = "resident"
    commands = session(model, pixels, mode)
    plan = host_frames(commands)
    # Host frames: weight-load and RUN frames with a flipped bit (NAK, resend). No cut frames: recovering
    # one can wait out an ACK timeout (1.8 M cycles); tests/sim/test_link_verilator.py cuts frames.
    host_flip = [
        plan.index((0, "LOAD_WEIGHTS", 0, 0)) + 1,
        plan.index((0, "RUN", 1, 0)) + 1,
        plan.index((0, "RUN", 0, 1)) + 1,
        plan.index((0, "LOAD_WEIGHTS", 0, 2)) + 1,
    ]
    host_cut = []
    # Board DATA frames: 1 IDENTIFY's answer, 2..4 the OKs of LOAD_MODEL and the two loads, 5.. the answers
    # of the three RUNs (at least a frame each: the bridge sends a frame when it is full or when the tile
    # has been idle; how an answer splits depends on the timing), so 5 and 7 are in them.
    assert [c[1] for c in commands] == ["IDENTIFY", "LOAD_MODEL", "LOAD_WEIGHTS", "LOAD_THRESHOLDS"] + ["RUN"] * 3
    board_flip, board_cut = [3, 5, 7], []
    assert len(plan) < 256  # the faults are placed by seq (the board sends fewer frames than the host)
    geometry, divisor, clock_hz = GEOMETRY, DIVISOR, CLOCK_HZ
    spec = {
        "seed": SEED,
        "divisor": divisor,
        "ack_timeout_cycles": BoardCore(geometry, divisor, clock_hz=clock_hz).link.bridge.ack_timeout_cycles,
        "geometry": geometry_to_json(geometry),
        "heartbeat_bits": HEARTBEAT_BITS,
        "model": str(path),
        "max_batch": MAX_BATCH,
        "mode": mode,
        "flip_host_seqs": [n - 1 for n in host_flip],
        "cut_host_seqs": [n - 1 for n in host_cut],
        "flip_board_seqs": [n - 1 for n in board_flip],
        "cut_board_seqs": [n - 1 for n in board_cut],
    }
    core = BoardCore(geometry, divisor, clock_hz=clock_hz, heartbeat_bits=HEARTBEAT_BITS)
    result = run_board_bench(core, "model_over_the_link", spec, name=f"model-{mode}-{SEED}", pixels=pixels)
    where = f"{mode}, seed {SEED} (training seed {TRAIN_SEED})"

    got, expected = np.array(result["outputs"]), GoldenNetwork(model).run(pixels)
    assert got.shape == expected.shape, f"{where}: outputs of shape {got.shape}, expected {expected.shape}"
    assert (got == expected).all(), f"{where}: {int((got != expected).sum())} of {expected.size} outputs differ"
    # The hidden layer's codes never crossed the wire.
    assert set(result["words"]["sent"]) == {"IDENTIFY", "LOAD_MODEL", "LOAD_WEIGHTS", "LOAD_THRESHOLDS", "RUN"}

    board, host = result["board"], result["host"]
    host_faults, board_faults = len(host_flip + host_cut), len(board_flip + board_cut)
    # A board frame reaches the host twice when the board goes back over it twice: after a second NAK of
    # the same frame (the host NAKs every bad frame, also a second one in the window the board is already
    # resending), or after its ACK timeout when an ACK was lost (only a cut host frame loses an ACK: the
    # host's ACK that follows it on the wire is read as the rest of the cut frame until the line falls
    # silent). The host drops the copies.
    late = host["duplicates"]
    assert late <= WINDOW_FRAMES * (board_faults + len(host_cut)), f"{where}: {late} duplicates: {result}"

    # Every fault landed on the frame it was meant for: the first sending of the seqs planned (the seq of
    # a distinct frame n is n - 1).
    for side, flips, cuts in (("host", host_flip, host_cut), ("board", board_flip, board_cut)):
        seen = sorted((f["fault"], f["seq"]) for f in result["faults"] if f["on"] == side)
        assert seen == sorted([("flip", n - 1) for n in flips] + [("cut", n - 1) for n in cuts]), f"{where}: {side}"
    assert result["injected"] == host_faults + board_faults > 0, f"{where}: {result['faults']}"

    # The board NAKed each bad host frame, the host went back to it and resent its window (the bad frame
    # and at most WINDOW_FRAMES - 1 after it, twice where a NAK arrives after the host went back); the
    # host NAKed each bad board frame, and the board went back the same way; nothing else went wrong.
    assert board["bad_frames"] == host_faults, f"{where}: the board should have NAKed {host_faults} frames: {result}"
    # (A cut board frame can swallow a NAK the board sends right after it, as a cut host frame can an ACK:
    # the host's decoder reads the NAK as the rest of the cut frame. The host then resends after its own
    # timeout instead: still one resend per fault.)
    assert host_faults <= host["resent"] <= 2 * WINDOW_FRAMES * host_faults, f"{where}: {host}"
    assert host_faults - len(board_cut) <= host["naks_received"] <= host_faults, f"{where}: {host}"
    assert host["bad_frames"] == host["naks_sent"] == board_faults, f"{where}: {host}"
    assert sorted(result["host_dropped"]) == ["crc"] * len(board_flip) + ["truncated"] * len(board_cut), (
        f"{where}: the host should have seen bad CRCs and a frame cut short: {result['host_dropped']}"
    )
    assert board_faults <= board["resent_frames"] <= 2 * WINDOW_FRAMES * board_faults + late, f"{where}: {board}"
    assert board["uart_errors"] == 0, f"{where}: {board}"
    # Words neither lost nor duplicated: every host frame delivered once, every board frame once (its
    # other copies dropped as bad, duplicates or ahead of a lost one).
    assert host["data_frames"] == len(plan) and result["host_frames"] == len(plan) + host["resent"], (
        f"{where}: {result}"
    )
    assert host["received"] + board_faults + late + host["ahead"] == result["board_frames"], f"{where}: {result}"

    assert result["after_identify"] == {"bad_frames": 0, "resent_frames": 0, "uart_errors": 0, "error_led": 0}, (
        f"{where}: the error LED must stay dark through a clean IDENTIFY: {result['after_identify']}"
    )
    assert board["error_led"] == 1, f"{where}: the error LED must be lit after the bad frames: {board}"

    half = 2 ** (HEARTBEAT_BITS - 1)
    heartbeat = result["heartbeat"]
    assert heartbeat["half_periods"] == [half], f"{where}: heartbeat half periods {heartbeat}, expected {half} cycles"
    assert heartbeat["edges"] >= result["cycles"] // half - 2, (
        f"{where}: {heartbeat['edges']} heartbeat edges in {result['cycles']} cycles"
    )


@pytest.mark.parametrize("mode", ["streaming", "resident"])
def test_cnn_over_the_link(tmp_path, mode):
    """A small binary CNN on the board core over the bit-level UART (stride 2, padding 1, a 3x3 pool
    dropping a row). Streaming, on the same board core: the host cuts each image's windows and pools the
    tile's outputs. Resident, on a board core whose tile (the same array) walks maps: the whole CNN on the
    tile, only the first layer's windows over the link (on 16 lanes a window takes a row, as a pixel
    would). Every output == the golden model, no frame bad or resent."""
    import torch

    from lowbit.sw.model.file import load_model, save_model
    from lowbit.sw.train.data import load_digits_split
    from lowbit.sw.train.export import export_model
    from lowbit.sw.train.mlp import ConvSpec, QuantMLP
    from lowbit.sw.train.qat import fit, scheme_config

    torch.set_num_threads(1)
    torch.manual_seed(TRAIN_SEED)
    split = load_digits_split()
    convs = (ConvSpec(8), ConvSpec(12, stride=2), ConvSpec(10, pool=3))
    net = fit(QuantMLP(scheme_config("binary", (), convs=convs)), split, 2, 3e-3, progress=False, seed=TRAIN_SEED)
    path = tmp_path / "binary-cnn.lbm"
    save_model(export_model(net, "binary"), path)
    model, pixels = load_model(path), split.x_test[:3]
    geometry = GEOMETRY
    if mode == "resident":
        geometry = default_geometry(model, GEOMETRY.pe, GEOMETRY.simd, resident=True)
        assert geometry.maps and first_windows(model, geometry) == "host"
    spec = {
        "seed": SEED,
        "divisor": DIVISOR,
        "ack_timeout_cycles": ACK_TIMEOUT_CYCLES,
        "geometry": geometry_to_json(geometry),
        "heartbeat_bits": HEARTBEAT_BITS,
        "model": str(path),
        "max_batch": 64,
        "mode": mode,
        "flip_host_seqs": [],
        "cut_host_seqs": [],
        "flip_board_seqs": [],
        "cut_board_seqs": [],
    }
    core = BoardCore(geometry, DIVISOR, clock_hz=CLOCK_HZ, heartbeat_bits=HEARTBEAT_BITS)
    result = run_board_bench(core, "model_over_the_link", spec, name=f"cnn-{mode}-{SEED}", pixels=pixels)
    got, expected = np.array(result["outputs"]), GoldenNetwork(model).run(pixels)
    where = f"seed {SEED} (training seed {TRAIN_SEED})"
    assert got.shape == expected.shape and (got == expected).all(), f"{where}: {got} != {expected}"
    assert result["board"]["bad_frames"] == 0 and result["host"]["resent"] == 0, f"{where}: {result}"


def test_identify_at_board_baud():
    """BoardCore exactly as the iCEBreaker runs it (its divisor, the 24-bit heartbeat): IDENTIFY at
    3 Mbaud answers the geometry."""
    spec = {
        "seed": SEED,
        "divisor": DIVISOR,
        "ack_timeout_cycles": ACK_TIMEOUT_CYCLES,
        "geometry": geometry_to_json(GEOMETRY),
    }
    core = BoardCore(GEOMETRY, DIVISOR, clock_hz=CLOCK_HZ)
    result = run_board_bench(core, "identify_at_board_baud", spec, name=f"identify-{SEED}")
    assert result["geometry"] == geometry_to_json(GEOMETRY), f"seed {SEED}: {result}"
    assert result["board"] == {"bad_frames": 0, "resent_frames": 0, "uart_errors": 0, "error_led": 0}, (
        f"seed {SEED}: {result}"
    )
    assert result["host"]["resent"] == result["host"]["bad_frames"] == 0, f"seed {SEED}: {result}"


def test_session_restart(trained):
    """A host that stopped in the middle of LOAD_WEIGHTS, then a new session on the same board without a
    reset: SYNC resets the tile and both sequence numbers, IDENTIFY answers and the model's outputs
    equal the golden model's."""
    path, model, pixels = trained
    spec = {
        "seed": SEED,
        "divisor": DIVISOR,
        "ack_timeout_cycles": ACK_TIMEOUT_CYCLES,
        "geometry": geometry_to_json(GEOMETRY),
        "model": str(path),
    }
    core = BoardCore(GEOMETRY, DIVISOR, clock_hz=CLOCK_HZ)  # as the iCEBreaker runs it: test_identify's build
    result = run_board_bench(core, "session_restart", spec, name=f"restart-{SEED}", pixels=pixels[:8])
    assert result["geometry"] == geometry_to_json(GEOMETRY), f"seed {SEED}: {result}"
    got, expected = np.array(result["outputs"]), GoldenNetwork(model).run(pixels[:8])
    assert (got == expected).all(), f"seed {SEED}: {int((got != expected).sum())} of {expected.size} outputs differ"
    assert result["first"]["data_frames"] == result["first_frames"] and result["second"]["syncs_sent"] == 1, (
        f"seed {SEED}: {result}"
    )
    assert result["board"]["bad_frames"] == 0, f"seed {SEED}: {result}"
