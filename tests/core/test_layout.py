"""The house rules of the repository, read from the code itself (docs/layout.md draws them).

- Five folders, five distributions, one package: ``core/binsight/`` (the only ``binsight/__init__.py``,
  which gathers the parts' folders into its path) and ``<part>/binsight/<part>/`` for device, server,
  training and demo. No file is a symlink.
- device, server and training each stand on the core only; the core on none of them; only the demo
  composes the three. Every ``import`` counts, lazy ones inside functions too.
- No function or method over 80 lines unless a ``# long: <reason>`` comment sits right above it.
- The five pyproject.toml files state one version, the core's ``binsight.version``.
"""

from __future__ import annotations

import ast
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PARTS = ("device", "server", "training", "demo")
# Which binsight sub-packages each folder may import (the core's own modules are always allowed).
ALLOWED = {"core": set(), "device": {"device"}, "server": {"server"}, "training": {"training"},
           "demo": {"device", "server", "training", "demo"}}  # fmt: skip
MAX_LINES = 80


def _sources(folder: str) -> list[Path]:
    root = REPO / folder / "binsight"
    return sorted(root.glob("*.py") if folder == "core" else (root / folder).rglob("*.py"))


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            # `from binsight import device` names a part as well as `import binsight.device`
            if node.module == "binsight":
                found += [(node.lineno, f"binsight.{alias.name}") for alias in node.names]
    return found


def test_no_symlinks_are_committed() -> None:
    staged = subprocess.run(["git", "ls-files", "-s"], cwd=REPO, capture_output=True, text=True, check=True)
    links = [line.split("\t", 1)[1] for line in staged.stdout.splitlines() if line.startswith("120000")]
    assert links == []


def test_binsight_is_one_package_over_five_folders() -> None:
    assert not (REPO / "binsight").exists(), "the core lives in core/binsight/"
    assert "extend_path" in (REPO / "core" / "binsight" / "__init__.py").read_text()
    for folder in ("core", *PARTS):
        assert (REPO / folder / "pyproject.toml").is_file()
    for part in PARTS:
        assert not (REPO / part / "binsight" / "__init__.py").exists(), "only the core owns binsight/"
    for part in PARTS:
        assert (REPO / part / "binsight" / part / "__init__.py").is_file()
        extra = sorted(p.name for p in (REPO / part / "binsight").iterdir() if p.name != "__pycache__")
        assert extra == [part], f"{part}/binsight holds only {part}/, not {extra}"


@pytest.mark.parametrize("folder", ["core", *PARTS])
def test_parts_import_only_the_core(folder: str) -> None:
    bad = []
    for path in _sources(folder):
        for line, module in _imported(ast.parse(path.read_text(), str(path))):
            parts = module.split(".")
            if parts[0] != "binsight" or len(parts) < 2:
                continue
            sub = parts[1]
            if sub in PARTS and sub not in ALLOWED[folder]:  # a part, not one of the core's modules
                bad.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    assert not bad, "\n".join(sorted(set(bad)))


def _long_functions(path: Path) -> list[str]:
    text = path.read_text()
    lines = text.splitlines()
    out = []
    for node in ast.walk(ast.parse(text, str(path))):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        assert node.end_lineno is not None
        length = node.end_lineno - node.lineno + 1
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        above = lines[first - 2].strip() if first >= 2 else ""
        if length > MAX_LINES and not re.match(r"# long: \S", above):
            out.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({length} lines)")
    return out


@pytest.mark.parametrize("folder", ["core", *PARTS])
def test_no_long_function_without_a_reason(folder: str) -> None:
    long = [f for path in _sources(folder) for f in _long_functions(path)]
    assert not long, "over 80 lines with no '# long: <reason>' above:\n" + "\n".join(long)


def test_one_version_for_every_distribution() -> None:
    version = re.search(r'__version__ = "([^"]+)"', (REPO / "core/binsight/version.py").read_text())
    assert version
    for folder in ("core", *PARTS):
        project = tomllib.loads((REPO / folder / "pyproject.toml").read_text())["project"]
        assert project["version"] == version.group(1), folder
        pins = [d for d in project.get("dependencies", []) if d.startswith("binsight")]
        assert all(d.endswith(f"=={version.group(1)}") for d in pins), (folder, pins)
