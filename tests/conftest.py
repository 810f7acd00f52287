import pytest

from lowbit.sw.paths import build_root


def pytest_report_header(config):
    return f"lowbit build folder: {build_root()} (waves: LOWBIT_WAVES=1)"


@pytest.fixture
def seed(request):
    """A fixed seed per test, shown in the test id via parametrization or printed here on failure."""
    value = getattr(request, "param", 20261123)
    print(f"seed = {value}")
    return value
