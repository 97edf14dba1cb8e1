"""The layout keeps its promises: one-way imports, small modules, a README that draws the code.

ARCHITECTURE.md draws the layers; these tests fail when a change breaks them, so the map stays
true without anyone re-reading the whole package.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from football_assets.definitions import defs

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "football_assets"
MAX_LINES = 300
# A module longer than MAX_LINES says why in its docstring, on a line starting with this.
SIZE_REASON = "Size:"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported_modules(path: Path) -> set[str]:
    """Project modules `path` imports, at any depth of the file (lazy imports count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from a.b import c` imports a.b, and a.b.c when c is a module.
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found |= {name for name in names if name in MODULES}
    return found


GRAPH = {name: imported_modules(path) - {name} for name, path in MODULES.items()}


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_package_has_no_import_cycle() -> None:
    visiting: list[str] = []
    done: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        if module in done:
            return
        if module in visiting:
            cycles.append([*visiting[visiting.index(module) :], module])
            return
        visiting.append(module)
        for imported in sorted(GRAPH[module]):
            visit(imported)
        visiting.pop()
        done.add(module)

    for module in sorted(GRAPH):
        visit(module)
    assert not cycles, [" -> ".join(c) for c in cycles]


def test_imports_run_one_way() -> None:
    # What each layer may not import: nothing low imports something high.
    above_resources = {"assets", "checks", "automation", "staleness", "refresh", "status", "cli"}
    forbidden = {
        "resources": above_resources | {"definitions", "settings", "policies"},
        "payloads": above_resources | {"resources", "definitions", "settings"},
        "redaction": {"resources", "assets", "definitions", "settings", "policies", "payloads"},
        "policies": above_resources | {"resources", "definitions", "settings"},
        "assets": {"checks", "automation", "staleness", "refresh", "status", "cli", "definitions"},
        "checks": {"automation", "staleness", "refresh", "status", "cli", "definitions"},
        "automation": {"staleness", "refresh", "status", "cli", "definitions"},
    }
    broken = [
        f"{module} imports {imported}"
        for module, imports in GRAPH.items()
        for imported in imports
        if layer(imported) in forbidden.get(layer(module), set())
    ]
    assert not broken, broken


def test_only_settings_reads_the_environment() -> None:
    readers = [
        module
        for module, path in MODULES.items()
        if re.search(r"os\.environ\b|os\.getenv\(", path.read_text(encoding="utf-8"))
        and module not in {"football_assets.settings", "football_assets.cli"}
    ]
    # The CLI only hands the environment to settings.load(); everything else gets values.
    assert not readers, readers


def test_modules_stay_small_or_say_why() -> None:
    too_long = []
    for module, path in MODULES.items():
        lines = path.read_text(encoding="utf-8").count("\n")
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        if lines > MAX_LINES and SIZE_REASON not in docstring:
            too_long.append(f"{module}: {lines} lines")
    assert not too_long, too_long


def readme_lineage() -> set[tuple[str, str]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```mermaid\n(graph LR\n.*?)```", text, re.DOTALL)
    assert block, "README.md has no ```mermaid graph LR``` lineage diagram"
    return set(re.findall(r"^\s*(\w+)\s*-->\s*(\w+)\s*$", block.group(1), re.MULTILINE))


def test_the_readme_lineage_is_the_code_lineage() -> None:
    graph = defs.resolve_asset_graph()
    code = {
        (parent.to_user_string(), key.to_user_string())
        for key in graph.get_all_asset_keys()
        for parent in graph.get(key).parent_keys
    }
    assert readme_lineage() == code


def test_the_wheel_ships_the_package_only() -> None:
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    # Not "football_assets*": that pattern also matches football_assets_tests.
    assert include == ["football_assets", "football_assets.*"]
