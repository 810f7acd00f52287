"""Every integer scheme lowbit trains on the hardware (a benchmark): the trained digits model of each
scheme through the Verilog tile in Verilator on the 360 test images, and which tiles of the boards run it.

``python bench/schemes.py`` writes ``bench/results/schemes.{json,md}`` and the README's ``schemes`` table.
For each scheme of :data:`lowbit.sw.train.schemes.INTEGER_SCHEMES` (fp32, the float reference, has no
tile), its model trained with the default settings (or reused from ``build/models`` as ``make demo``
does) runs on its family's default array (:func:`lowbit.sw.host.default_geometry`), resident when the
tile holds it, through the driver, the compiled harness and the Verilator tile; the table gives the
outputs equal to the golden model, the MAC-array cycles per image (from the tile's own count of working
cycles), the images/s that makes at 100 MHz and the MAC-array utilization. Per board, the tiles a
bitstream of ``lowbit build --board B`` holds (``GEOMETRIES``) that run the model (a layer at a time,
in output parts where a layer does not fit), and the tile ``lowbit plan`` sizes for it within the
board's budget (or why there is none).
"""

import argparse
import sys
import time

import numpy as np
from readme import publish

BOARDS = ("icebreaker", "ulx3s")


def board_tiles(model, board):
    """``(names of the board's declared tiles that run the model, the planned tile's label or why none)``."""
    from lowbit.boards.planner import plan_board, search_board
    from lowbit.sw.protocol import ProtocolError

    runs = [plan.tile for plan in plan_board(model, board) if plan.error is None]
    try:
        found = search_board(model, board)
        planned = found.best.geometry.label() if found.best else "none fits the budget"
    except ProtocolError as error:
        planned = f"none: {str(error).split(', so ')[0]}"
    return runs, planned


def _weights(config):
    """A layer's weights in a few characters: ``binary``, ``int8``, ``nhot8/2``, ``fgq/g4``."""
    kind = config.weight_kind.value
    if kind in ("int", "nhot"):
        kind += str(config.weight_bits) + (f"/{config.n_terms}" if config.n_terms else "")
    return f"{kind}/g{config.group_size}" if config.group_size else kind


def run_scheme(scheme, images, progress):
    from lowbit.sim.tile_transport import run_model_on_tile
    from lowbit.sw.cli.demo import cached_model
    from lowbit.sw.golden import GoldenNetwork
    from lowbit.sw.host import default_geometry, tile_layers
    from lowbit.sw.model.file import load_model
    from lowbit.sw.train.data import load_digits_split

    path = cached_model(scheme, progress=progress)
    model = load_model(path)
    pixels = load_digits_split().x_test[:images]
    golden = GoldenNetwork(model).run(pixels)
    geometry = default_geometry(model, resident=True)
    print(f"{scheme}: {geometry.label()} ...", file=sys.stderr, flush=True)
    result = run_model_on_tile(path, pixels, geometry, mode="auto", progress=progress, quiet=True)
    configs = tile_layers(model, geometry)
    useful = len(pixels) * sum(c.in_features * c.out_features * geometry.planes(c) for c in configs)
    beats = result["mac_beats"]
    entry = {
        "scheme": scheme,
        "kinds": ", ".join(f"{c.input_kind.value}{c.input_bits} x {_weights(c)}" for c in configs),
        "tile": geometry.label(),
        "family": geometry.family.name,
        "mode": result["mode"],
        "images": len(pixels),
        "equal": int((np.asarray(result["outputs"]) == golden).sum()),
        "total": int(golden.size),
        "cycles_per_image": beats / len(pixels),
        "images_per_second_at_100MHz": 100e6 * len(pixels) / beats,
        "utilization": useful / (geometry.pe * geometry.simd * beats),
        "boards": {},
    }
    for board in BOARDS:
        runs, planned = board_tiles(model, board)
        entry["boards"][board] = {"declared_tiles": runs, "planned": planned}
    return entry


def markdown(entries, images):
    lines = [
        f"| scheme | input x weights per layer | tile (default array) | mode | outputs equal ({images} images) "
        "| MAC cycles / image | images/s at 100 MHz | MAC utilization | iCEBreaker tiles | ULX3S tiles |",
        "|---|---|---|---|---|---:|---:|---:|---|---|",
    ]
    for e in entries:
        boards = []
        for board in BOARDS:
            b = e["boards"][board]
            declared = ", ".join(b["declared_tiles"]) or "none"
            planned = b["planned"] if b["planned"].startswith("none") else f"planned: {b['planned']}"
            boards.append(f"{declared}; {planned}")
        lines.append(
            f"| {e['scheme']} | {e['kinds']} | {e['tile']} | {e['mode']} | {e['equal']} of {e['total']} "
            f"| {e['cycles_per_image']:.1f} | {e['images_per_second_at_100MHz']:,.0f} | "
            f"{100 * e['utilization']:.1f} % | {boards[0]} | {boards[1]} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    parser.add_argument(
        "--schemes", nargs="+", metavar="SCHEME", help="only these schemes: printed, the results and README kept"
    )
    parser.add_argument("--images", type=int, default=360, help="test images per scheme (default all 360)")
    args = parser.parse_args(argv)
    from lowbit.sw.train.schemes import INTEGER_SCHEMES

    schemes = args.schemes or list(INTEGER_SCHEMES)
    unknown = sorted(set(schemes) - set(INTEGER_SCHEMES))
    if unknown:
        parser.error(f"unknown schemes {unknown}; choose from {', '.join(INTEGER_SCHEMES)}")
    start = time.perf_counter()
    entries = [run_scheme(scheme, args.images, args.progress) for scheme in schemes]
    text = markdown(entries, args.images)
    if args.schemes is None and args.images == 360:
        publish("schemes", entries, text)
    print(text)
    print(f"total {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
