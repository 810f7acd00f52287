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
        "BINARY": [2462.1315, 2.0265, 6.3834, 4.6591, 1.0131, 1556.1136, 2.8997],
        "NHOT": [2860.2364, 9.5776, 8.757, 4.2586, 0.6909, 968.3264, 0.0],
        "POPCOUNT": [2439.4176, 4.0694, 4.0622, 4.3489, 0.2861, 1860.6606, 2.0915],
    },
}
LINK_BLOCKS = {"icebreaker": 6, "ulx3s": 2}
