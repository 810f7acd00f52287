import os

import pytest

from lowbit.sw.paths import build_root, cache_root

# Verilator builds at -O0 (lowbit.sim.verilator.sim_optimisation): the suite's builds take most of its time
# and its simulations are short; set LOWBIT_SIM_OPT to test another optimisation.
os.environ.setdefault("LOWBIT_SIM_OPT", "-O0")


def pytest_report_header(config):
    return (
        f"lowbit build folder: {build_root()}, Verilator builds: {cache_root()} at {os.environ['LOWBIT_SIM_OPT']} "
        f"(waves: LOWBIT_WAVES=1)"
    )


@pytest.fixture
def seed(request):
    """A fixed seed per test, shown in the test id via parametrization or printed here on failure."""
    value = getattr(request, "param", 20261123)
    print(f"seed = {value}")
    return value


#: The longest test files of `make test`, longest first (their --durations in a fresh clone: 180 s down to
#: 60 s): each starts before every shorter file, so that neither worker is left with one of them at the end.
LONGEST_FILES = (
    "tests/boards/test_boards.py",
    "tests/sim/test_board_verilator.py",
    "tests/sim/test_resident_verilator.py",
    "tests/sim/test_tile_differential.py",
    "tests/sim/test_tile_verilator.py",
    "tests/sw/cli/test_plan_search.py",
    "tests/sim/test_gates_ice40.py",
    "tests/sim/test_nhot_verilator.py",
    "tests/sim/test_kbit_dot_verilator.py",
    "tests/sim/test_binary_dot_verilator.py",
)


def pytest_collection_modifyitems(config, items):
    """The longest files first (:data:`LONGEST_FILES`), then the other Verilator and synthesis tests, then
    the rest; within a file its Verilator and synthesis tests first. `make test`'s two workers take whole
    files in this order (pytest-xdist ``--dist loadfile --no-loadscope-reorder``), so the long files start
    early and the short ones fill the end."""

    def slow(item):
        return bool(item.get_closest_marker("verilator") or item.get_closest_marker("synth"))

    def file_rank(item):
        return LONGEST_FILES.index(path(item)) if path(item) in LONGEST_FILES else len(LONGEST_FILES)

    def path(item):
        return item.nodeid.split("::")[0]

    slow_files = {path(item) for item in items if slow(item)}
    first_seen, order = {}, {}
    for index, item in enumerate(items):
        first_seen.setdefault(path(item), index)
        order[item.nodeid] = index
    items.sort(
        key=lambda item: (
            file_rank(item),
            path(item) not in slow_files,
            first_seen[path(item)],
            not slow(item),
            order[item.nodeid],
        )
    )
