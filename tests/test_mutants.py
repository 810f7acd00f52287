"""The curated mutants of ``bench/mutants.py`` still apply to the code: each ``old`` string occurs exactly
once in its file and ``new`` differs from it, and each mutant's test paths exist. A change to the code
that moves a mutant's site fails here instead of making the mutation benchmark stop."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"


def _load():
    """``bench/mutants.py`` as a module (``bench`` is not a package; it imports ``readme`` beside it)."""
    spec = importlib.util.spec_from_file_location("bench_mutants", BENCH / "mutants.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def mutants():
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCH))
        return _load()


def test_mutants_apply(mutants):
    stale = []
    for m in mutants.MUTANTS:
        count = (ROOT / m.path).read_text().count(m.old)
        if count != 1:
            stale.append(f"{m.name}: 'old' occurs {count} times in {m.path}")
        if m.new == m.old:
            stale.append(f"{m.name}: 'new' equals 'old'")
    assert not stale, "\n".join(stale)


def test_mutants_tests_exist(mutants):
    missing = [f"{m.name}: {t}" for m in mutants.MUTANTS for t in m.tests if not (ROOT / t).exists()]
    assert not missing, "\n".join(missing)
    assert all(m.tests for m in mutants.MUTANTS)


def test_mutants_are_distinct_and_in_known_areas(mutants):
    names = [m.name for m in mutants.MUTANTS]
    assert len(names) == len(set(names))
    assert {m.area for m in mutants.MUTANTS} <= set(mutants.AREAS)
    assert len({(m.path, m.old) for m in mutants.MUTANTS}) == len(mutants.MUTANTS)
