"""The layout keeps its promises: one-way imports, small modules, a README that draws the code.

ARCHITECTURE.md draws the layers; these tests fail when a change breaks them, so the map stays
true without anyone re-reading the whole package.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

from football_assets.definitions import defs

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "football_assets"
MAX_LINES = 300


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


def test_no_module_of_the_package_benchmark_or_test_support_runs_over_300_lines() -> None:
    # No exemption note: a module that grows past the limit is split by concern.
    roots = [PACKAGE, REPO / "benchmarks", REPO / "test_support"]
    paths = [path for root in roots for path in root.rglob("*.py")]
    too_long = [
        f"{path.relative_to(REPO)}: {lines} lines"
        for path in paths
        if (lines := path.read_text(encoding="utf-8").count("\n")) > MAX_LINES
    ]
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


def test_every_module_says_what_it_owns_in_one_to_three_lines() -> None:
    too_long = []
    for path in PACKAGE.rglob("*.py"):
        name = path.relative_to(PACKAGE).as_posix()
        body = ast.parse(path.read_text(encoding="utf-8")).body
        first = body[0] if body else None
        if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)):
            too_long.append(f"{name}: no module docstring")
        elif (lines := (first.end_lineno or first.lineno) - first.lineno + 1) > 3:
            too_long.append(f"{name}: {lines} lines (the reasoning goes to ARCHITECTURE.md)")
    assert not too_long, too_long


# An entry of ARCHITECTURE.md's map: a path under football_assets/ that starts a line (after the
# arrow from the API, if any) and is followed by two spaces or the line's end; the text up to the
# next entry says what that file owns.
MAP_ENTRY = re.compile(
    r"^[ \t]*(?:football-data\.org[ \t]*──►[ \t]*)?((?:\w+/)*(?:\w+\.(?:py|json)|\w+/))"
    r"(?=[ \t]{2,}|[ \t]*$)",
    re.MULTILINE,
)


def architecture_map() -> dict[str, str]:
    """ARCHITECTURE.md's map (its first ``` block): {path under football_assets/: what it owns}."""
    text = (REPO / "ARCHITECTURE.md").read_text(encoding="utf-8")
    block = re.search(r"^```\n(.*?)^```", text, re.DOTALL | re.MULTILINE)
    assert block, "ARCHITECTURE.md has no map (a ``` block)"
    entries = list(MAP_ENTRY.finditer(block.group(1)))
    ends = [entry.start() for entry in entries[1:]] + [len(block.group(1))]
    return {
        entry.group(1): block.group(1)[entry.end(1) : end]
        for entry, end in zip(entries, ends, strict=True)
    }


def test_the_architecture_map_names_only_files_that_exist() -> None:
    missing = [path for path in architecture_map() if not (PACKAGE / path).exists()]
    assert not missing, f"ARCHITECTURE.md maps files football_assets/ does not have: {missing}"


def test_the_architecture_map_lists_every_module() -> None:
    listed = set(architecture_map())
    unlisted = [
        name
        for path in PACKAGE.rglob("*.py")
        if (name := path.relative_to(PACKAGE).as_posix()) not in listed
        # A package's __init__ holding only its docstring owns nothing.
        and not (path.name == "__init__.py" and len(ast.parse(path.read_text("utf-8")).body) == 1)
    ]
    assert not unlisted, f"ARCHITECTURE.md's map does not say what these own: {unlisted}"


def test_the_architecture_map_names_each_asset_beside_the_module_that_builds_it() -> None:
    owns = architecture_map()
    misplaced = []
    for assets_def in defs.resolve_asset_graph().assets_defs:
        if not assets_def.is_executable or not assets_def.keys:  # checks only
            continue
        source = inspect.getsourcefile(assets_def.op.compute_fn.decorated_fn)  # type: ignore[union-attr]
        module = Path(source or "").relative_to(PACKAGE).as_posix()
        for key in assets_def.keys:
            if not re.search(rf"\b{re.escape(key.to_user_string())}\b", owns.get(module, "")):
                misplaced.append(f"{key.to_user_string()} is built in {module}")
    assert not misplaced, misplaced
