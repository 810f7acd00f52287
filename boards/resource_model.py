"""Coefficients of :mod:`lowbit.boards.resources`' logic model, per board and tile family, in the order
of :data:`lowbit.boards.resources.FEATURES`; the block RAMs each board's link adds. Written by
``python bench/resources.py`` (do not edit)."""

COEFFICIENTS = {
    "icebreaker": {
        "BINARY": [3046.8863, 5.8911, 5.5864, 5.1145, 0.9475, 1219.0984, 0.0],
        "NHOT": [2948.0157, 8.4592, 17.4454, 3.7056, 0.0, 856.2876, 0.0],
        "POPCOUNT": [2936.0598, 5.2387, 9.2447, 4.574, 1.2147, 1296.2868, 0.0],
    },
    "ulx3s": {
        "BINARY": [2449.3593, 1.9381, 6.3467, 4.6564, 0.8674, 1131.8895, 1.8218],
        "NHOT": [2959.3627, 5.4203, 9.9145, 4.2162, 3.0195, 1179.2663, 3.0006],
        "POPCOUNT": [2302.0925, 3.3579, 6.03, 4.4107, 1.2974, 1627.1685, 1.253],
    },
}
LINK_BLOCKS = {"icebreaker": 6, "ulx3s": 2}
