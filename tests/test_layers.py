"""The package's architecture: layers, imports only downward, no cycles.

Every import between sktransfer's modules counts, function-level ones too
(they only hide a cycle until someone moves them to the top). Each module
belongs to one layer and may import only from layers below it, so a cycle
cannot form. The size limits keep one concept per module.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "sktransfer"

#: from the bottom up; a module imports only from layers before its own
LAYERS = [
    # Keras/TF internals, graph utilities, backend fast paths, file formats
    [
        "_version",
        "_keras_compat",
        "_graph",
        "_backend",
        "_files",
        "_archive",
        "_docs",
        "_cloning",
        "datasets",
    ],
    # seeding and runtime; input validation
    ["_runtime", "_validation"],
    # freeze specs; network surgery; pooled compiled trainers
    ["_freeze", "_network", "_pool"],
    # the training loop; sources; the feature cache
    ["_training", "_sources", "_cache", "_probe"],
    # the training recipe; fits on a shared frozen source
    ["_recipe", "_detached"],
    # the scikeras seam, then what the classifiers share (no scikeras)
    ["_base"],
    ["_classifier"],
    # the estimators (the classifiers; the feature transformer); load()
    ["_pretrained", "_transfer", "_features"],
    ["_load"],
    # the command line (a package with the demo); the public entry points
    ["_cli"],
    ["__main__", "__init__"],
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
MAX_MODULE_LINES = 450
MAX_CLASS_CODE_LINES = 300


def _modules():
    return sorted(PACKAGE.rglob("*.py"))


def _name(path):
    """``_cli._parser`` for sktransfer/_cli/_parser.py, ``_base`` for _base.py."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path):
    """sktransfer modules imported anywhere in ``path`` (functions too)."""
    name = _name(path)
    package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
    if path.name == "__init__.py" and path.parent == PACKAGE:
        package = []
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
            elif node.module and node.module.split(".")[0] == "sktransfer":
                base, node_module = [], node.module.split(".", 1)[1:]
                found.update(_targets(base + node_module, node.names))
                continue
            else:
                continue
            module = base + (node.module.split(".") if node.module else [])
            found.update(_targets(module, node.names))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "sktransfer" and len(parts) > 1:
                    found.add(".".join(parts[1:]))
    found.discard(name)
    return found


def _targets(module, names):
    """``from .x import y``: module x, or submodule x.y when y is a module."""
    result = set()
    for alias in names:
        candidate = module + [alias.name]
        as_path = PACKAGE.joinpath(*candidate)
        if as_path.with_suffix(".py").exists() or (as_path / "__init__.py").exists():
            result.add(".".join(candidate))
        elif module:
            result.add(".".join(module))
    return result


def _top(name):
    return name.split(".")[0] if name else "__init__"


GRAPH = {_name(path): _imports(path) for path in _modules()}


def test_every_module_has_a_layer():
    missing = sorted({_top(name) for name in GRAPH} - set(RANK))
    assert not missing, f"modules without a layer in LAYERS: {missing}"


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_only_go_down(module):
    rank = RANK[_top(module)]
    upward = [
        target
        for target in sorted(GRAPH[module])
        if _top(target) != _top(module) and RANK[_top(target)] >= rank
    ]
    assert not upward, f"{module} imports from its own or a higher layer: {upward}"


def test_no_import_cycles():
    """Depth-first search over every import, the top layer's package too."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(GRAPH.get(node, ())):
            if state.get(target) == "open":
                cycle = stack[stack.index(target) :] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for node in sorted(GRAPH):
        if node not in state:
            visit(node)


def test_the_cycle_check_sees_function_level_imports(tmp_path):
    source = "def f():\n    from ._base import X\n    import sktransfer._cache\n"
    path = PACKAGE / "_probe_for_layers_test.py"
    try:
        path.write_text(source)
        assert _imports(path) == {"_base", "_cache"}
    finally:
        path.unlink()


@pytest.mark.parametrize("path", _modules(), ids=_name)
def test_modules_and_classes_stay_small(path):
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{path.name} is too long"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            lines = set(range(node.lineno, node.end_lineno + 1))
            for inner in ast.walk(node):
                body = getattr(inner, "body", None)
                if (
                    isinstance(body, list)
                    and body
                    and isinstance(body[0], ast.Expr)
                    and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)
                ):
                    doc = body[0]
                    lines -= set(range(doc.lineno, doc.end_lineno + 1))
            assert len(lines) <= MAX_CLASS_CODE_LINES, (
                f"class {node.name} in {path.name} has {len(lines)} lines of code"
            )


def test_only_the_seam_imports_scikeras():
    importers = []
    for path in _modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            if any(name.split(".")[0] == "scikeras" for name in names):
                importers.append(_name(path))
    assert sorted(set(importers)) == ["_base"]
