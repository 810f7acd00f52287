"""The map walk of a tile that walks maps (``TileGeometry.maps``), in Amaranth's simulator: the Sequencer
alone, its beats against a Python model of the walk (per pooled pixel, output fold, pool window position,
plane, tap and channel group: the weight row, the input row of the map or a pad row with its live lanes),
under back-pressure; and the layer fields the Configuration derives from LOAD_MODEL's words."""

import dataclasses
import itertools

import pytest

from lowbit.hw.tile.sequencer import Sequencer
from lowbit.sw.protocol import Family, LayerConfig, MapWalk, TileGeometry, walk_of, walk_sizes

from .test_sequencer import run

GEOMETRY = TileGeometry(
    Family.BINARY, 2, 8, max_in_features=512, max_out_features=16, max_weight_rows=1024, max_layers=2, maps=True
)

#: (walk, channels, outputs, planes, weight_plane_mode): stride 2 with padding, a pool of 3 that drops a row
#: and a column, two channel groups (12 channels: the second row has 4 live lanes), planes, padding of 2,
#: stride 2 with a pool, a dense layer.
CASES = [
    (MapWalk(5, 4, 3, 2, 1, 1, 3, 2), 8, 3, 1, 0),
    (MapWalk(7, 7, 3, 1, 1, 3, 2, 2), 3, 2, 1, 0),
    (MapWalk(4, 5, 2, 1, 0, 2, 1, 2), 12, 4, 2, 0),
    (MapWalk(3, 3, 3, 1, 2, 1, 5, 5), 12, 2, 3, 1),
    (MapWalk(7, 6, 3, 2, 1, 2, 2, 1), 5, 3, 1, 0),
    (None, 20, 5, 2, 0),
]


def layer_fields(g, config, planes, weight_plane_mode):
    """The sequencer's layer fields of ``config`` (what the Configuration derives, from walk_sizes)."""
    walk = walk_of(config)
    sizes = walk_sizes(config, g)
    fields = {name: getattr(walk, name) for name in (f.name for f in dataclasses.fields(MapWalk))}
    fields |= {name: sizes[name] for name in ("groups", "row_stride", "step_x", "step_y", "pool_x", "pool_y")}
    fields |= {"origin": sizes["origin"], "pool_step": sizes["pool_step"], "in_features": config.in_features}
    return fields | {
        "ifolds": g.in_folds(config),
        "ofolds": g.out_folds(config),
        "planes": planes,
        "weight_plane_mode": weight_plane_mode,
    }


def expected_walk(g, config, planes, weight_plane_mode, bank):
    """(first, last, double, neg, o_fold, plane, weight row, input row or None, pad, live) of each beat."""
    walk = walk_of(config)
    groups, ifolds, ofolds = g.channel_groups(config), g.in_folds(config), g.out_folds(config)
    beats = []
    pixels = itertools.product(range(walk.out_height), range(walk.out_width))
    for (py, px), of in itertools.product(pixels, range(ofolds)):
        for dy, dx, p in itertools.product(range(walk.pool), range(walk.pool), range(planes)):
            oy, ox = py * walk.pool + dy, px * walk.pool + dx
            taps = itertools.product(range(walk.kernel), range(walk.kernel), range(groups))
            for fi, (ky, kx, cg) in enumerate(taps):
                iy, ix = oy * walk.stride + ky - walk.padding, ox * walk.stride + kx - walk.padding
                inside = 0 <= iy < walk.height and 0 <= ix < walk.width
                row = bank * g.max_in_folds + (iy * walk.width + ix) * groups + cg if inside else None
                w_row = (of * planes + p) * ifolds + fi if weight_plane_mode else of * ifolds + fi
                live = min(g.simd, config.in_features - cg * g.simd)
                first, last = p == 0 and fi == 0, p == planes - 1 and fi == ifolds - 1
                beats.append(
                    (int(first), int(last), int(p != 0 and fi == 0), int(bool(weight_plane_mode) and p == 0))
                    + (of, p, w_row, row, int(not inside), live)
                )
    return beats


def walk_beat(beat, w, i):
    """A beat as :func:`expected_walk` lists it (a pad beat's input row is not read)."""
    row = None if beat.pad else i
    return (beat.first, beat.last, beat.double, beat.neg, beat.o_fold, beat.plane, w, row, beat.pad, beat.live)


@pytest.mark.parametrize("case", CASES, ids=lambda c: "dense" if c[0] is None else "x".join(map(str, c[0].encode())))
@pytest.mark.parametrize("ready_pattern", [(1,), (1, 0, 1, 1, 0, 0)], ids=["ready", "backpressure"])
def test_walk_beats(case, ready_pattern):
    walk, channels, outputs, planes, weight_plane_mode = case
    config = LayerConfig(channels, outputs, "binary", 1, 0, "binary", 1, 2, walk=walk)
    assert GEOMETRY.check(config) is None
    fields = layer_fields(GEOMETRY, config, planes, weight_plane_mode)
    expected = [beat for bank in (0, 1) for beat in expected_walk(GEOMETRY, config, planes, weight_plane_mode, bank)]
    beats = run(fields, 2, ready_pattern, geometry=GEOMETRY, total=len(expected), beat_of=walk_beat)[0]
    assert beats == expected
    assert len(expected) == 2 * GEOMETRY.cycles_per_vector(config) // GEOMETRY.planes(config) * planes


def test_sequencer_of_a_plain_tile_has_no_walk():
    """A tile without maps keeps the plain walk (no map fields in its layer)."""
    plain = dataclasses.replace(GEOMETRY, maps=False)
    assert "height" not in Sequencer(plain).layer.shape().members
