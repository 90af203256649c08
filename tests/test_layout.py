"""The architecture, checked: no import cycles inside deepscem/ or ui/ (imports inside
functions count: a lazy import hides a cycle, it does not remove it), and every module is
listed in docs/ARCHITECTURE.md."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module_name(path: Path, package_root: Path, package: str) -> str:
    parts = list(path.relative_to(package_root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([package, *parts])


def _imports(path: Path, module: str, is_package: bool) -> set[str]:
    """Every module ``module`` imports, absolute names, relative imports resolved."""
    found: set[str] = set()
    base = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                stem = base[:len(base) - node.level + 1]
                target = ".".join(stem + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names}  # `from pkg import module`
    return found


def _graph(folder: str, package: str) -> dict[str, set[str]]:
    root = ROOT / folder
    paths = {_module_name(p, root, package): p for p in root.rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        deps = _imports(path, name, path.name == "__init__.py")
        graph[name] = {d for d in deps if d in paths and d != name}
    # a package's __init__ re-exporting its modules is not a cycle with them
    for name in graph:
        graph[name] = {d for d in graph[name] if not name.startswith(d + ".")}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


def test_no_import_cycles_in_the_core():
    assert _cycles(_graph("deepscem", "deepscem")) == []


def test_no_import_cycles_in_the_gui():
    assert _cycles(_graph("ui", "ui")) == []


MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _python_files():
    for folder in ("deepscem", "ui"):
        yield from sorted((ROOT / folder).rglob("*.py"))


def test_modules_stay_small():
    """A module over ~400 lines does more than one job: split it by role."""
    big = {str(p.relative_to(ROOT)): n for p in _python_files()
           if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert big == {}


def test_long_functions_say_why():
    """A function over ~60 lines either splits or says in its docstring why it is long
    (a docstring line starting "Long because")."""
    long = []
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                doc = ast.get_docstring(node) or ""
                if length > MAX_FUNCTION_LINES and "Long because" not in doc:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert long == []


def test_every_module_is_described_in_the_architecture_page():
    page = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    missing = [str(p.relative_to(ROOT)) for folder in ("deepscem", "ui")
               for p in sorted((ROOT / folder).rglob("*.py"))
               if p.name != "__init__.py" and p.name not in page]
    assert missing == [], "describe these modules in docs/ARCHITECTURE.md"
