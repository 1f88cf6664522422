"""The package's layout holds: every module imports when it is the first of the package
to be imported (an import cycle fails here), and no module imports from the book."""

import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODULES = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for p in (ROOT / "coloc").rglob("*.py")
)
# One fresh interpreter; before each module, every coloc module is forgotten, so each is
# imported first, as in a fresh interpreter (third-party imports such as torch stay
# loaded, which keeps this fast and does not hide a cycle of ours).
PROGRAM = """
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "coloc" or m.startswith("coloc.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc().splitlines()[-1])
print("\\n".join(failed))
"""


def test_each_module_imports_first_without_a_cycle():
    result = subprocess.run([sys.executable, "-c", PROGRAM, *MODULES], capture_output=True,
                            text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", result.stdout
    assert "coloc.caml.method" in MODULES and "coloc.runs" in MODULES  # the walk found them


def test_the_package_never_imports_from_the_book():
    for path in (ROOT / "coloc").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == "book" or n.startswith("book.") for n in names), path


def _imports(path: pathlib.Path) -> set[str]:
    """The coloc modules ``path`` imports, at any depth of its code (lazy imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def test_no_import_cycle_even_through_lazy_imports():
    paths = {m: ROOT.joinpath(*m.split(".")).with_suffix(".py") for m in MODULES}
    paths = {m: p if p.is_file() else p.with_suffix("") / "__init__.py" for m, p in paths.items()}
    # a package's __init__ importing its own submodules is not a cycle
    edges = {m: {t for t in _imports(p) if t != m and not t.startswith(m + ".")
                 and not m.startswith(t + ".")} for m, p in paths.items()}
    state: dict[str, int] = {}

    def visit(module: str, stack: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges[module]):
            assert state.get(target) != 1, " -> ".join([*stack, module, target])
            if target not in state:
                visit(target, [*stack, module])
        state[module] = 2

    for module in MODULES:
        if module not in state:
            visit(module, [])
