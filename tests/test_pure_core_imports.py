"""The pure layers (proto/, editor/) must not do I/O or read clocks.

Why: their tests pump state machines with an explicit `now` and fake
networks, and the editor layer runs on Neovim's keystroke path; a stray
`import time` or `import trio` there would make them untestable without
patching and tie them to one event loop (DESIGN.md section 1).
"""

import ast
from pathlib import Path

import pytest

FORBIDDEN = {"trio", "socket", "pynvim", "time", "asyncio", "threading"}
ROOT = Path(__file__).resolve().parent.parent / "covim_p2p"
PURE_PACKAGES = ("proto", "editor")


def forbidden_imports(source: str, filename: str = "<string>") -> list[str]:
    """Top-level names of forbidden modules imported anywhere in `source`
    (including inside functions), plus `__import__`/`import_module` calls on
    a forbidden literal name."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", None)) in ("__import__", "import_module")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        else:
            continue
        found += [f"{name} (line {node.lineno})" for name in names if name.split(".")[0] in FORBIDDEN]
    return found


def pure_files() -> list[Path]:
    return sorted(p for pkg in PURE_PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_pure_packages_exist_and_have_modules():
    files = pure_files()
    for pkg in PURE_PACKAGES:
        assert (ROOT / pkg / "__init__.py").is_file()
    assert any(f.name == "shadow.py" for f in files)  # the walk really reaches the sources


@pytest.mark.parametrize("path", pure_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_module_has_no_io_imports(path):
    bad = forbidden_imports(path.read_text(encoding="utf-8"), str(path))
    assert not bad, f"{path.relative_to(ROOT.parent)} imports {', '.join(bad)}"


@pytest.mark.parametrize(
    "source",
    [
        "import trio",
        "import os, socket",
        "from time import monotonic",
        "import asyncio.events",
        "def f():\n    import threading",
        "from pynvim import attach",
        "importlib.import_module('trio.lowlevel')",
        "__import__('time')",
    ],
)
def test_checker_catches(source):
    assert forbidden_imports(source)


@pytest.mark.parametrize(
    "source",
    ["import timeit", "from . import time", "import os.path", "from covim_p2p.editor import shadow", "x = 'time'"],
)
def test_checker_allows(source):
    assert forbidden_imports(source) == []
