"""Convolutional networks on the tile: the digits CNN of each scheme in Verilator, and FINN's CNV-W1A1
topology planned on the ULX3S (a benchmark).

``python bench/cnn.py`` writes ``bench/results/cnn.{json,md}`` and the README section ``cnn``:

- per scheme (binary, twn, fatnn, nhot2; the models ``lowbit demo --arch cnn`` trains, reused from
  ``build/models``): the 360 test digits through the Verilog tile in Verilator on the family's default
  array, a layer at a time with the host cutting the windows; outputs equal to the golden model, and per
  layer the windows per image, the RUN cycles per image and the MAC utilization (useful MACs, ``windows *
  k*k*C * out * planes``, over ``PE * SIMD * RUN cycles``);
- per scheme, the same digits resident on the same array with the tile walking the maps (``maps=True``;
  only the image goes in, or the first layer's windows where they take no more words): outputs equal, the
  RUN cycles per image, the MAC beats against
  the cycle model, and per layer the cycles of its walk and its MAC utilization (the useful MACs of the
  positions it walks over ``PE * SIMD`` times its cycles), and the words per image over the link;
- per scheme and board: the board's declared tile that runs the model (``lowbit plan``'s cycle model),
  images/s of its MAC array at the tile's clock and over the board's serial link (which carries every
  window: the host cuts them);
- per board, the binary digits CNN on the tile ``lowbit plan`` sizes for it (the most images/s over the
  link: on the ULX3S a resident tile that walks maps, on the iCEBreaker, where a walk does not fit beside an
  array, a layer at a time), built to a bitstream (``--no-build`` leaves this out): LUT4 positions against
  the planner's prediction, block RAM, DSP, Fmax; the 360 digits through that tile in Verilator, outputs
  equal, MAC beats against the plan's cycles, and images/s at Fmax, at the board's clock and over the link;
- CNV-W1A1 (FINN's binary CNN for CIFAR-10: six 3x3 convolutions 64-64-128-128-256-256 without padding,
  2x2 max-pooling after the second and fourth, dense 512-512-10; 8-bit input, binary weights and
  activations, the classifier's weights 8-bit as lowbit's binary scheme has them), random weights: the
  tile ``lowbit plan --board ulx3s`` sizes for it (objective: MAC-array images/s per LUT4), its cycles per
  image from the tile's cycle model, checked against the reference tile (ModelTile's busy cycles on one
  image, == the model), and images/s per predicted LUT4 beside FINN's 0.117 (CNV-W1A1 on its 26,072
  LUTs at 3,052 images/s).
"""

import argparse
import sys
import time

import numpy as np
from readme import publish

from boards import board_report

SCHEMES = ("binary", "twn", "fatnn", "nhot2")
BOARDS = ("icebreaker", "ulx3s")
FINN_CNV = {"luts": 26_072, "images_per_s": 3_052, "images_per_s_per_lut": 0.117}
UTILIZATION_TARGET = 0.80


def digits_case(scheme, progress):
    from lowbit.boards.planner import plan_board
    from lowbit.sim.tile_transport import run_model_on_tile
    from lowbit.sw.cli.demo import cached_model
    from lowbit.sw.golden import GoldenNetwork
    from lowbit.sw.host import default_geometry, tile_layers
    from lowbit.sw.model.file import load_model
    from lowbit.sw.model.report import model_cost
    from lowbit.sw.train.data import load_digits_split

    path = cached_model(scheme, progress=progress, arch="cnn")
    model = load_model(path)
    geometry = default_geometry(model)
    configs = tile_layers(model, geometry)
    pixels = load_digits_split().x_test
    golden = GoldenNetwork(model).run(pixels)
    result = run_model_on_tile(path, pixels, geometry, progress=progress)
    images = len(pixels)
    layers, costs = [], model_cost(model).layers
    for index, (layer, config, figures) in enumerate(zip(model.layers, configs, result["layers"])):
        planes = geometry.planes(config)
        vectors = sum(r["batch"] for r in figures["runs"])
        useful = vectors * config.in_features * config.out_features * planes
        layers.append(
            {
                "layer": index,
                "shape": costs[index].shape,
                "windows_per_image": vectors // images,
                "cycles_per_image": figures["run_cycles"] / images,
                "busy_cycles_per_image": figures["busy_cycles"] / images,
                "utilization": useful / (geometry.pe * geometry.simd * figures["run_cycles"]),
                "conv3x3": layer.is_conv and layer.kernel == 3,
            }
        )
    resident = resident_case(path, model, pixels, golden, progress)
    boards = {}
    for board in BOARDS:
        plan = next((p for p in plan_board(model, board) if p.error is None), None)
        boards[board] = (
            {"tile": None}
            if plan is None
            else {
                "tile": f"{plan.tile} (PE {plan.geometry.pe} x SIMD {plan.geometry.simd}) "
                f"at {plan.clock_hz / 1e6:g} MHz",
                "cycles_per_image": plan.cycles_per_image,
                "images_per_s": plan.images_per_s,
                "link_images_per_s": plan.link_images_per_s,
            }
        )
    return {
        "scheme": scheme,
        "geometry": f"{geometry.family.name.lower()} PE {geometry.pe} x SIMD {geometry.simd}",
        "equal": int((np.asarray(result["outputs"]) == golden).sum()),
        "total": int(golden.size),
        "accuracy": float(model.metadata.get("integer_accuracy", float("nan"))),
        "cycles_per_image": result["run_cycles"] / images,
        "layers": layers,
        "resident": resident,
        "boards": boards,
    }


def resident_case(path, model, pixels, golden, progress):
    """The digits resident on the family's default array, the tile walking the maps."""
    from lowbit.sim.tile_transport import run_model_on_tile
    from lowbit.sw.host import default_geometry
    from lowbit.sw.host.plan import first_windows, map_layers
    from lowbit.sw.model.report import model_cost

    geometry = default_geometry(model, resident=True)
    result = run_model_on_tile(path, pixels, geometry, mode="resident", progress=progress)
    images, costs = len(pixels), model_cost(model).layers
    configs = map_layers(model, geometry)
    layers = []
    for index, (layer, config) in enumerate(zip(model.layers, configs)):
        cycles = geometry.cycles_per_vector(config)
        walk = config.walk
        positions = 1 if walk is None else walk.positions
        useful = positions * config.dot_length * config.out_features * geometry.planes(config)
        layers.append(
            {
                "layer": index,
                "shape": costs[index].shape,
                "walk": None
                if walk is None
                else f"{walk.height}x{walk.width} k{walk.kernel} s{walk.stride} p{walk.padding} pool{walk.pool}",
                "cycles_per_image": cycles,
                "utilization": useful / (geometry.pe * geometry.simd * cycles),
                "conv3x3": layer.is_conv and layer.kernel == 3,
            }
        )
    busy = sum(layer["cycles_per_image"] for layer in layers)
    return {
        "geometry": f"{geometry.family.name.lower()} PE {geometry.pe} x SIMD {geometry.simd}",
        "equal": int((np.asarray(result["outputs"]) == golden).sum()),
        "total": int(golden.size),
        "cycles_per_image": result["run_cycles"] / images,
        "busy_cycles_per_image": busy,
        "mac_beats_equal": result["mac_beats"] == busy * images,
        "first_windows": first_windows(model, geometry),
        "words_up_per_image": geometry.input_words(configs[0]),
        "words_down_per_image": geometry.output_words(configs[-1]),
        "layers": layers,
    }


def built_case(board, progress):
    """The binary digits CNN on the tile ``lowbit plan`` sizes for it on ``board`` (the most images/s over
    the link), built to a bitstream (placer seed 1), and the 360 test digits through that tile in Verilator
    in the mode the driver picks for it."""
    from lowbit.boards.planner import search_board
    from lowbit.sim.tile_transport import run_model_on_tile
    from lowbit.sw.cli.demo import cached_model
    from lowbit.sw.golden import GoldenNetwork
    from lowbit.sw.model.file import load_model
    from lowbit.sw.train.data import load_digits_split

    path = cached_model("binary", progress=progress, arch="cnn")
    model = load_model(path)
    plan = search_board(model, board).best
    g = plan.geometry
    report = board_report(board, False, "cnn", g, plan.clock_hz, 1)  # build/board/<board>-cnn
    pixels = load_digits_split().x_test
    golden = GoldenNetwork(model).run(pixels)
    result = run_model_on_tile(path, pixels, g, progress=progress)
    images = len(pixels)
    cycles = result["run_cycles"] / images
    fmax = report.fmax_mhz * 1e6 if report.fmax_mhz else None
    return {
        "board": board,
        "geometry": f"{g.family.name.lower()} PE {g.pe} x SIMD {g.simd}{' walking maps' if g.maps else ''}",
        "mode": result["mode"],
        "equal": int((np.asarray(result["outputs"]) == golden).sum()),
        "total": int(golden.size),
        "predicted_luts": plan.resources.luts,
        "luts": report.lut_positions,
        "ffs": report.ffs,
        "bram": report.bram,
        "dsp": report.dsp,
        "fmax_mhz": report.fmax_mhz,
        "clock_hz": plan.clock_hz,
        "meets_timing": report.meets_timing,
        "build_seconds": report.seconds,
        "build_error": report.error,
        "mac_beats_per_image": result["mac_beats"] / images,
        "planned_cycles_per_image": plan.cycles_per_image,
        "run_cycles_per_image": cycles,
        "images_per_s_at_fmax": None if fmax is None else fmax / cycles,
        "images_per_s_at_clock": plan.clock_hz / cycles,
        "link_images_per_s": plan.link_images_per_s,
    }


def cnv_w1a1(seed=0):
    """FINN's CNV-W1A1 topology as a lowbit model file with random weights and thresholds."""
    from lowbit.sw.model.file import LayerRecord, LowbitModel, validate_model

    rng = np.random.default_rng(seed)
    layers, in_map = [], (32, 32, 3)
    convs = ((64, 1), (64, 2), (128, 1), (128, 2), (256, 1), (256, 1))
    for index, (channels, pool) in enumerate(convs):
        taps = 9 * in_map[2]
        first = index == 0
        layer = LayerRecord(
            taps,
            channels,
            "binary",
            1,
            "uint" if first else "binary",
            8 if first else 1,
            "threshold",
            rng.choice(np.array([-1, 1], np.int8), (channels, taps)),
            output_levels=2,
            kernel=3,
            stride=1,
            padding=0,
            pool=pool,
            input_map=in_map,
        )
        lo, hi = layer.accumulator_range()
        layer.thresholds = ((lo + hi) // 2)[:, None]
        layer.descending = np.zeros(channels, bool)
        layers.append(layer)
        in_map = layer.output_map
    width = int(np.prod(in_map))
    for out in (512, 512):
        layer = LayerRecord(
            width, out, "binary", 1, "binary", 1, "threshold", rng.choice([-1, 1], (out, width)).astype(np.int8)
        )
        layer.output_levels, layer.thresholds, layer.descending = 2, np.zeros((out, 1), np.int64), np.zeros(out, bool)
        layers.append(layer)
        width = out
    layers.append(
        LayerRecord(
            width, 10, "int", 8, "binary", 1, "accumulator", rng.integers(-127, 128, (10, width)).astype(np.int8)
        )
    )
    model = LowbitModel("cnv-w1a1", 10, layers)
    validate_model(model)
    return model


def cnv_case():
    import asyncio

    from lowbit.boards.planner import plan_tile, search_board
    from lowbit.sim.reference import ModelTile
    from lowbit.sw.host import TileInterface, run_codes
    from lowbit.sw.model.report import model_cost

    model = cnv_w1a1()
    search = search_board(model, "ulx3s", objective="efficiency")
    plan = search.best
    if plan is None:
        return {"error": search.text()}
    geometry = plan.geometry
    # The cycle model against the reference tile on one image.
    tile = ModelTile(geometry)
    codes = np.random.default_rng(1).integers(0, 256, (1, 32 * 32 * 3))
    started = time.perf_counter()
    asyncio.run(run_codes(TileInterface(tile, geometry), model, codes))
    reference_seconds = time.perf_counter() - started
    planned = plan_tile(model, "ulx3s", geometry)
    luts = plan.resources.luts
    return {
        "link_plan": _cnv_link_plan(model, codes),
        "geometry": f"{geometry.family.name.lower()} PE {geometry.pe} x SIMD {geometry.simd}",
        "macs_per_image": model_cost(model).total_macs,
        "cycles_per_image": planned.cycles_per_image,
        "reference_tile_busy_cycles": int(tile.busy_cycles),
        "cycle_model_equal": int(tile.busy_cycles) == planned.cycles_per_image,
        "reference_seconds": reference_seconds,
        "clock_hz": plan.clock_hz,
        "images_per_s": plan.images_per_s,
        "link_images_per_s": plan.link_images_per_s,
        "predicted_luts": luts,
        "images_per_s_per_lut": plan.images_per_s / luts,
        "lanes": geometry.pe * geometry.simd,
        "layers": [
            {"cycles": layer.cycles, "shape": f"{layer.in_features}x{layer.out_features}"} for layer in plan.layers
        ],
    }


def _cnv_link_plan(model, codes):
    """CNV-W1A1 on the ULX3S tile the planner sizes for images/s delivered over the link: resident on a tile
    that walks maps where one fits (only the first layer's windows cross the link); its cycles checked on
    the reference tile as above."""
    import asyncio

    from lowbit.boards.planner import search_board
    from lowbit.sim.reference import ModelTile
    from lowbit.sw.host import TileInterface, run_codes
    from lowbit.sw.host.plan import first_windows

    plan = search_board(model, "ulx3s", objective="link").best
    if plan is None:
        return None
    tile = ModelTile(plan.geometry)
    asyncio.run(run_codes(TileInterface(tile, plan.geometry), model, codes))
    g = plan.geometry
    return {
        "geometry": f"{g.family.name.lower()} PE {g.pe} x SIMD {g.simd}{' walking maps' if g.maps else ''}",
        "resident": plan.resident,
        "cycles_per_image": plan.cycles_per_image,
        "reference_tile_busy_cycles": int(tile.busy_cycles),
        "images_per_s": plan.images_per_s,
        "link_images_per_s": plan.link_images_per_s,
        "words_up_per_image": plan.up_words,
        "predicted_luts": plan.resources.luts,
        "images_per_s_per_lut": plan.images_per_s / plan.resources.luts,
        "first_windows": first_windows(model, g) if g.maps else "host",
    }


def markdown(result):
    lines = [
        "| scheme | tile (default array) | outputs equal | cycles per image "
        "| layer: windows per image, cycles per image, MAC utilization "
        "| iCEBreaker: tile, images/s (MAC array / link) | ULX3S: tile, images/s (MAC array / link) |",
        "|---|---|---:|---:|---|---|---|",
    ]
    for case in result["digits"]:
        layers = "; ".join(
            f"{r['layer']} {r['shape']}: {r['windows_per_image']}, {r['cycles_per_image']:,.0f}, "
            f"{100 * r['utilization']:.1f} %"
            for r in case["layers"]
        )
        boards = [
            "—" if b["tile"] is None else f"{b['tile']}: {b['images_per_s']:,.0f} / {b['link_images_per_s']:,.1f}"
            for b in (case["boards"][name] for name in BOARDS)
        ]
        lines.append(
            f"| {case['scheme']} | {case['geometry']} | {case['equal']} of {case['total']} "
            f"| {case['cycles_per_image']:,.0f} | {layers} | {boards[0]} | {boards[1]} |"
        )
    lines += [
        "",
        "Resident, the tile walking the maps (same array, `maps=True`; up the link the image, or the first "
        "layer's windows where they take no more words):",
        "",
        "| scheme | tile | outputs equal | cycles per image (MAC beats == cycle model) "
        "| layer: walk, cycles per image, MAC utilization | up the link | words per image up / down |",
        "|---|---|---:|---:|---|---|---:|",
    ]
    for case in result["digits"]:
        r = case["resident"]
        layers = "; ".join(
            f"{x['layer']} {x['shape']}: {x['walk'] or 'dense'}, {x['cycles_per_image']:,}, "
            f"{100 * x['utilization']:.1f} %"
            for x in r["layers"]
        )
        lines.append(
            f"| {case['scheme']} | {r['geometry']} | {r['equal']} of {r['total']} | {r['cycles_per_image']:,.0f} "
            f"({r['busy_cycles_per_image']:,} busy, {'yes' if r['mac_beats_equal'] else '**no**'}) | {layers} "
            f"| {'the image' if r['first_windows'] == 'tile' else 'the windows'} "
            f"| {r['words_up_per_image']:,} / {r['words_down_per_image']:,} |"
        )
    conv = [r["utilization"] for case in result["digits"] for r in case["layers"] if r["conv3x3"] and r["layer"] > 0]
    walked = [
        r["utilization"] for case in result["digits"] for r in case["resident"]["layers"] if r["conv3x3"] and r["layer"]
    ]
    lines += [
        "",
        f"- MAC utilization of the 3x3 convolutions after the first (target >= {100 * UTILIZATION_TARGET:.0f} %): "
        f"{100 * min(conv):.1f} to {100 * max(conv):.1f} % a layer at a time, {100 * min(walked):.1f} to "
        f"{100 * max(walked):.1f} % walked on the tile; the first layers are below it (as windows, 9 taps of "
        "one channel on 8 or 16 lanes; walked on the image, one channel's lane a fold).",
    ]
    cnv = result["cnv_w1a1"]
    if "error" in cnv:
        lines.append(f"- CNV-W1A1 on the ULX3S: {cnv['error']}")
    else:
        lines.append(
            f"- **CNV-W1A1 on the ULX3S** (the planner's tile for MAC-array images/s per LUT4: {cnv['geometry']}, "
            f"{cnv['lanes']} lanes, {cnv['predicted_luts']:,} LUT4 predicted, {cnv['clock_hz'] / 1e6:g} MHz): "
            f"{cnv['cycles_per_image']:,} cycles per image (the reference tile's busy cycles on one image: "
            f"{cnv['reference_tile_busy_cycles']:,}, {'equal' if cnv['cycle_model_equal'] else '**different**'}), "
            f"{cnv['images_per_s']:,.1f} images/s of the MAC array, **{cnv['images_per_s_per_lut']:.5f} images/s per "
            f"LUT4** against FINN's {FINN_CNV['images_per_s_per_lut']} ({FINN_CNV['images_per_s']:,} images/s on "
            f"{FINN_CNV['luts']:,} LUTs at 100 MHz; the same cycles at 100 MHz would give "
            f"{cnv['images_per_s_per_lut'] * 100e6 / cnv['clock_hz']:.3f}, a clock the board's tile does not run at); "
            f"{cnv['link_images_per_s']:.3f} images/s over the serial link, which carries every window (the host cuts "
            f"them). The first layer (27 taps of 8-bit pixels: 8 planes) takes "
            f"{100 * cnv['layers'][0]['cycles'] / cnv['cycles_per_image']:.0f} % of the cycles."
        )
        link = cnv.get("link_plan")
        if link is not None:
            up = "the image" if link["first_windows"] == "tile" else "the first layer's windows"
            lines.append(
                f"- CNV-W1A1 on the ULX3S tile the planner sizes for images/s over the link: {link['geometry']}, "
                f"{'resident' if link['resident'] else 'a layer at a time'}, "
                f"{link['predicted_luts']:,} LUT4 predicted: "
                f"{link['cycles_per_image']:,} cycles per image (reference tile: {link['reference_tile_busy_cycles']:,}"
                f", {'equal' if link['reference_tile_busy_cycles'] == link['cycles_per_image'] else '**different**'}), "
                f"{link['images_per_s']:,.1f} images/s of the MAC array ({link['images_per_s_per_lut']:.5f} per LUT4), "
                f"{link['link_images_per_s']:.2f} images/s over the link ({link['words_up_per_image']:,} words up per "
                f"image: {up})."
            )
    built = result.get("built", [])
    if built:
        lines += [
            "",
            "The binary digits CNN on the tile `lowbit plan` sizes for each board (the most images/s over the link), "
            "built to a bitstream (`lowbit.boards.build`, placer seed 1) and run on the 360 test digits in "
            "Verilator (RUN cycles: the commands that carry images, their words streamed at one a cycle):",
            "",
            "| board | planned tile | mode | outputs equal | LUT4 (predicted) | FF | block RAM | DSP "
            "| Fmax / clock | MAC beats per image (planned) | RUN cycles per image "
            "| images/s at Fmax / at the clock / over the link |",
            "|---|---|---|---:|---:|---:|---|---|---|---:|---:|---|",
        ]
        for b in built:
            if b["build_error"]:
                lines.append(f"| {b['board']} | {b['geometry']} | build failed: {b['build_error']} |")
                continue
            bram, dsp = (
                ", ".join(f"{used} {name}" for name, (used, _) in b[key].items() if used) or "0"
                for key in ("bram", "dsp")
            )
            at_fmax = "—" if b["images_per_s_at_fmax"] is None else f"{b['images_per_s_at_fmax']:,.0f}"
            mode = "resident" if b["mode"] == "resident" else "a layer at a time"
            lines.append(
                f"| {b['board']} | {b['geometry']} | {mode} | {b['equal']} of {b['total']} "
                f"| {b['luts']:,} ({b['predicted_luts']:,}) | {b['ffs']:,} | {bram} | {dsp} "
                f"| {b['fmax_mhz']:.2f} / {b['clock_hz'] / 1e6:g} MHz{'' if b['meets_timing'] else ' (**fails**)'} "
                f"| {b['mac_beats_per_image']:,.0f} ({b['planned_cycles_per_image']:,}) "
                f"| {b['run_cycles_per_image']:,.0f} | {at_fmax} / {b['images_per_s_at_clock']:,.0f} "
                f"/ {b['link_images_per_s']:,.1f} |"
            )
    lines.append(f"- Run: `python bench/cnn.py`, {result['seconds']:.0f} s.")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schemes", default=",".join(SCHEMES))
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    parser.add_argument(
        "--no-build", dest="build", action="store_false", help="leave out the planned tiles' bitstreams"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = {"digits": [digits_case(s, args.progress) for s in args.schemes.split(",") if s]}
    result["cnv_w1a1"] = cnv_case()
    if args.build:
        result["built"] = [built_case(board, args.progress) for board in BOARDS]
    result["seconds"] = time.perf_counter() - started
    result["command"] = "bench/cnn.py " + " ".join(sys.argv[1:] if argv is None else argv)
    text = markdown(result)
    publish("cnn", result, text)
    print(text)
    equal = all(c["equal"] == c["total"] and c["resident"]["equal"] == c["total"] for c in result["digits"])
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
