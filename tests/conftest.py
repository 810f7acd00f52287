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


def pytest_collection_modifyitems(config, items):
    """The Verilator and synthesis tests first: `make test`'s two workers take whole files in this order
    (pytest-xdist ``--dist loadfile``), so the long files start early and the short ones fill the end."""
    items.sort(key=lambda item: not (item.get_closest_marker("verilator") or item.get_closest_marker("synth")))
