"""Coefficients of :mod:`lowbit.boards.resources`' logic model, per board and tile family, in the order
of :data:`lowbit.boards.resources.FEATURES`; the block RAMs each board's link adds. Written by
``python bench/resources.py`` (do not edit)."""

COEFFICIENTS = {
    "icebreaker": {
        "BINARY": [3516.6079, 12.4412, 0.0, 5.0621, 0.2465, 1120.6514, 0.0],
        "NHOT": [3297.9968, 9.8433, 13.4553, 4.0824, 0.0, 772.7494, 0.0],
        "POPCOUNT": [3303.4256, 7.1524, 9.6852, 4.3035, 0.0, 1282.7794, 0.0],
    },
    "ulx3s": {
        "BINARY": [2462.1315, 2.0265, 6.3834, 4.6591, 1.0131, 1556.1136, 2.8997],
        "NHOT": [2860.2364, 9.5776, 8.757, 4.2586, 0.6909, 968.3264, 0.0],
        "POPCOUNT": [2439.4176, 4.0694, 4.0622, 4.3489, 0.2861, 1860.6606, 2.0915],
    },
}
LINK_BLOCKS = {"icebreaker": 6, "ulx3s": 2}
