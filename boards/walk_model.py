"""LUT4 positions a tile that walks feature maps adds, per FPGA family: the largest difference
``python bench/walk_cost.py`` measured (do not edit); :func:`lowbit.boards.resources.predict_luts`
adds it."""

WALK_LUTS = {"ice40": 3556, "ecp5": 1940}
