"""The import rules of lowbit's layout (``docs/architecture.md``), checked on the source.

Every ``import`` statement counts, at module level or inside a function: a rule broken in a function
that runs rarely is still broken. The rules:

- the shared definitions (the kinds registry ``lowbit.sw.kinds``, the protocol ``lowbit.sw.protocol``,
  the build paths ``lowbit.sw.paths``) import only the standard library and each other (and the paths
  ``platformdirs``, for the user cache folder);
- ``hw`` imports nothing from ``sim``, ``boards`` or ``sw`` but those shared definitions;
- the golden model imports no PyTorch, no data set (scikit-learn, ``lowbit.sw.train``), no Amaranth;
- ``sw`` below the command line imports nothing from ``hw``, ``sim`` or ``boards``; the host imports
  nothing from training;
- nothing imports ``bench`` or the command line (but ``python -m lowbit``);
- the sub-packages import each other without cycles.
"""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"hw": "lowbit.hw", "sw": "lowbit.sw", "sim": "lowbit.sim", "boards": "lowbit.boards", "lowbit": "lowbit"}
#: The one third-party import of a shared definition: the per-user cache folder of lowbit.sw.paths.
ALLOWED_SHARED = {"lowbit.sw.paths": "platformdirs"}
SHARED_MODULES = {"lowbit.sw.kinds", "lowbit.sw.protocol", "lowbit.sw.protocol.frames", "lowbit.sw.paths"}
#: Sub-packages: the nodes of the import graph that must stay acyclic.
UNITS = (
    "lowbit.hw.units",
    "lowbit.hw.tile",
    "lowbit.hw.link",
    "lowbit.sw.kinds",
    "lowbit.sw.protocol",
    "lowbit.sw.paths",
    "lowbit.sw.train",
    "lowbit.sw.model",
    "lowbit.sw.golden",
    "lowbit.sw.host",
    "lowbit.sw.cli",
    "lowbit.sw.api",
    "lowbit.sim",
    "lowbit.boards",
)


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(FOLDERS[parts[0]].split(".") + parts[1:])


def imports_of(source, module, is_package):
    """Every module ``source`` imports (absolute names; relative imports resolved)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return found


def project_modules():
    modules = {}
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = module_name(path)
            modules[name] = imports_of(path.read_text(), name, path.name == "__init__.py")
    return modules


MODULES = project_modules()


def within(name, prefix):
    return name == prefix or name.startswith(prefix + ".")


def violations(modules, rule):
    return sorted(
        f"{module} imports {target}"
        for module, targets in modules.items()
        for target in targets
        if rule(module, target)
    )


def _top(name):
    return name.split(".")[0]


def shared(target):
    """A shared definition, or a name imported from one (``from lowbit.sw.protocol import Opcode``)."""
    return target in SHARED_MODULES or (target not in MODULES and target.rpartition(".")[0] in SHARED_MODULES)


RULES = {
    "shared definitions import only the standard library and each other": lambda m, t: (
        m in SHARED_MODULES
        and not (shared(t) or _top(t) in sys.stdlib_module_names or ALLOWED_SHARED.get(m) == _top(t))
    ),
    "hw imports only the shared definitions from sw, nothing from sim or boards": lambda m, t: (
        within(m, "lowbit.hw")
        and (within(t, "lowbit.sim") or within(t, "lowbit.boards") or (within(t, "lowbit.sw") and not shared(t)))
    ),
    "the golden model imports no torch, no data set, no amaranth": lambda m, t: (
        within(m, "lowbit.sw.golden")
        and (
            _top(t) in ("torch", "sklearn", "amaranth")
            or within(t, "lowbit.sw.train")
            or within(t, "lowbit.hw")
            or within(t, "lowbit.sim")
        )
    ),
    "sw below the command line imports nothing from hw, sim or boards": lambda m, t: (
        within(m, "lowbit.sw")
        and not within(m, "lowbit.sw.cli")
        and not within(m, "lowbit.sw.api")
        and any(within(t, p) for p in ("lowbit.hw", "lowbit.sim", "lowbit.boards"))
    ),
    "the host imports nothing from training": lambda m, t: (
        within(m, "lowbit.sw.host") and (within(t, "lowbit.sw.train") or _top(t) == "torch")
    ),
    "the model format imports no torch": lambda m, t: (
        within(m, "lowbit.sw.model") and (within(t, "lowbit.sw.train") or _top(t) == "torch")
    ),
    "nothing imports bench": lambda m, t: _top(t) == "bench",
    "only the command line itself and `python -m lowbit` import the command line": lambda m, t: (
        within(t, "lowbit.sw.cli") and not (within(m, "lowbit.sw.cli") or m == "lowbit.__main__")
    ),
}


@pytest.mark.parametrize("rule", RULES)
def test_import_rule(rule):
    broken = violations(MODULES, RULES[rule])
    assert not broken, f"{rule}:\n" + "\n".join(broken)


def unit_of(name):
    matches = [unit for unit in UNITS if within(name, unit)]
    return max(matches, key=len) if matches else None


def unit_graph(modules):
    graph = {unit: set() for unit in UNITS}
    for module, targets in modules.items():
        source = unit_of(module)
        for target in targets:
            destination = unit_of(target)
            if source and destination and destination != source:
                graph[source].add(destination)
    return graph


def find_cycle(graph):
    """A cycle of ``graph`` as a list of nodes, or ``None``."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt) :] + [nxt] if nxt in path else [node, nxt]
            if nxt not in state:
                cycle = visit(nxt, path + [nxt])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [node])
            if cycle:
                return cycle
    return None


def test_no_import_cycles_between_sub_packages():
    cycle = find_cycle(unit_graph(MODULES))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_build_paths_are_defined_once():
    users = sorted(name for name, path in _sources() if "LOWBIT_BUILD_DIR" in path.read_text())
    assert users == ["lowbit.sw.paths"], users


def _sources():
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield module_name(path), path


# --- the checker itself must catch what it is for ------------------------------------------------------


def test_checker_catches_forbidden_imports():
    modules = {
        "lowbit.hw.tile.tile": imports_of("from lowbit.sim.reference import ModelTile", "lowbit.hw.tile.tile", False),
        "lowbit.sw.golden.network": imports_of(
            "import torch\nfrom ..train import data", "lowbit.sw.golden.network", False
        ),
        "lowbit.sw.kinds": imports_of("import numpy", "lowbit.sw.kinds", True),
        "lowbit.sw.host.plan": imports_of("def f():\n    import bench.boards", "lowbit.sw.host.plan", False),
    }
    assert violations(modules, RULES["hw imports only the shared definitions from sw, nothing from sim or boards"])
    golden = violations(modules, RULES["the golden model imports no torch, no data set, no amaranth"])
    assert "lowbit.sw.golden.network imports torch" in golden
    assert "lowbit.sw.golden.network imports lowbit.sw.train" in golden
    assert violations(modules, RULES["shared definitions import only the standard library and each other"])
    assert violations(modules, RULES["nothing imports bench"])
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) is not None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_every_package_is_installed():
    """pyproject.toml lists every package folder, so that a wheel (not only an editable install) has them."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {module_name(path) for folder in FOLDERS for path in (ROOT / folder).rglob("__init__.py")}
    assert found == listed, (
        f"missing from pyproject.toml: {sorted(found - listed)}; listed, not found: {sorted(listed - found)}"
    )
