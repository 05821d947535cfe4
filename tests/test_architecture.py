"""The import graph of src/effnet against the layers the README lists: no circle, no import of a
higher layer, no private name taken from another module, and every function-local import of the
library outside the command line says why it is lazy."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "effnet"
TOP = "(top)"  # the package facade (effnet/__init__, __main__) sits above every layer


def layers() -> dict[str, int]:
    """Package -> layer index, read from the README's numbered list under 'How the code is layered'."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## How the code is layered", 1)[1].split("\n## ", 1)[0]
    order: dict[str, int] = {}
    for line in section.splitlines():
        m = re.match(r"^(\d+)\. ((?:`[\w.]+`(?:, )?)+):", line)
        if m:
            for name in re.findall(r"`([\w.]+)`", m.group(2)):
                order[name] = int(m.group(1))
    return order


def modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]):
    """(imported module, names, line, function-local?, source line) for each effnet import in a module."""
    tree = ast.parse(path.read_text())
    lines = path.read_text().splitlines()
    local = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
             for n in ast.walk(f)}
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    typing_only = {id(n) for guard in ast.walk(tree) if isinstance(guard, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(guard.test) for n in ast.walk(guard)}
    for node in ast.walk(tree):
        if id(node) in typing_only:  # annotations only: never executed, so no circle at run time
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            target, names = node.names[0].name, []
        else:
            continue
        if not target.startswith("effnet"):
            continue
        for mod in {f"{target}.{n}" if f"{target}.{n}" in known else target for n in names} or {target}:
            while mod not in known and "." in mod:
                mod = mod.rsplit(".", 1)[0]
            imported = [n for n in names if f"{target}.{n}" not in known]
            yield mod, imported, node.lineno, id(node) in local, lines[node.lineno - 1]


def package_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return TOP
    return parts[1]


@pytest.fixture(scope="module")
def graph():
    known = modules()
    return known, {name: list(imports(name, path, known)) for name, path in known.items()}


def test_the_readme_lists_every_package_in_a_layer():
    order = layers()
    packages = {package_of(m) for m in modules()} - {TOP}
    assert packages <= set(order), f"not in the README's layers: {sorted(packages - set(order))}"
    assert len(set(order.values())) >= 8


def upward(edges, order) -> list[str]:
    """Imports of a higher layer (or of the package facade) than the importer's."""
    wrong = []
    for src, found in edges.items():
        a = package_of(src)
        for dst, names, line, _, _ in found:
            b = package_of(dst)
            if a == b or a == TOP or (b == TOP and names and all(n.startswith("__") for n in names)):
                continue  # within a package, from the facade, or the facade's __version__
            if b == TOP or order[b] > order[a]:
                wrong.append(f"{src}:{line} imports {dst} ({a} is layer {order.get(a)}, {b} is {order.get(b, 'top')})")
    return wrong


def circles(edges) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    adjacency = {m: {dst for dst, *_ in found if dst != m} for m, found in edges.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in adjacency.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in adjacency:
        if v not in index:
            visit(v)
    return out


def private_imports(edges) -> list[str]:
    return [f"{src}:{line} takes {n} from {dst}" for src, found in edges.items()
            for dst, names, line, _, _ in found for n in names
            if n.startswith("_") and not (n.startswith("__") and n.endswith("__")) and dst != src]


def unexplained_lazy(edges) -> list[str]:
    return [f"{src}:{line}: {text.strip()}" for src, found in edges.items() if package_of(src) not in ("cli", TOP)
            for dst, _, line, local, text in found if local and "# lazy:" not in text]


def test_no_module_imports_a_higher_layer(graph):
    wrong = upward(graph[1], layers())
    assert not wrong, "\n".join(wrong)


def test_the_import_graph_has_no_circle(graph):
    found = circles(graph[1])
    assert not found, f"import circles: {found}"


def test_no_private_name_is_imported_from_another_module(graph):
    found = private_imports(graph[1])
    assert not found, "\n".join(found)


def test_library_imports_inside_functions_say_why_they_are_lazy(graph):
    found = unexplained_lazy(graph[1])
    assert not found, "function-local imports without a '# lazy: reason' comment:\n" + "\n".join(found)


def test_each_rule_finds_what_is_planted():
    order = {"arch": 2, "train": 7}
    edges = {"effnet.arch.a": [("effnet.train.t", ["_hidden"], 3, True, "    from ..train.t import _hidden")],
             "effnet.train.t": [("effnet.arch.a", ["scale"], 5, False, "from ..arch.a import scale")]}
    assert upward(edges, order) == ["effnet.arch.a:3 imports effnet.train.t (arch is layer 2, train is 7)"]
    assert circles(edges) == [["effnet.arch.a", "effnet.train.t"]]
    assert private_imports(edges) == ["effnet.arch.a:3 takes _hidden from effnet.train.t"]
    assert unexplained_lazy(edges) == ["effnet.arch.a:3: from ..train.t import _hidden"]
    edges["effnet.arch.a"][0] = ("effnet.train.t", [], 3, True, "    from ..train.t import x  # lazy: torch")
    assert unexplained_lazy(edges) == [] and private_imports(edges) == []


def test_the_study_core_never_imports_a_kind(graph):
    """search.kinds (and archsearch) build on the core of search; the core stands without them."""
    wrong = [f"{src}:{line} imports {dst}" for src, found in graph[1].items()
             if src.startswith("effnet.search") and not src.startswith("effnet.search.kinds")
             for dst, _, line, _, _ in found if dst.startswith("effnet.search.kinds")]
    assert not wrong, "\n".join(wrong)
