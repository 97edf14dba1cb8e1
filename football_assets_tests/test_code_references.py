"""Every asset links to the code that builds it: its file and line in a checkout; in an image
built with `--build-arg GIT_URL=... --build-arg GIT_COMMIT=...`, that file at that commit."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from football_assets import build_info
from football_assets.definitions import build_definitions, defs

REPO = Path(__file__).resolve().parents[1]
ASSETS = {
    "raw_competitions",
    "raw_teams",
    "dim_competitions",
    "dim_teams",
    "dim_teams_history",
    "competition_membership_history",
    "fact_competitions",
    "summary_csv",
}
COMMIT = "0123456789abcdef0123456789abcdef01234567"
GIT_URL = "https://github.com/example/football-assets"


def references(definitions: dg.Definitions) -> dict[str, list[object]]:
    found = {}
    for spec in definitions.resolve_all_asset_specs():
        value = spec.metadata.get("dagster/code_references")
        found[spec.key.to_user_string()] = list(value.code_references) if value else []
    return found


def defined_at(path: Path, line: int) -> str:
    """The name of the function whose decorators or `def` cover `line`."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            if first <= line <= node.lineno:
                return node.name
    return ""


def test_every_asset_points_at_the_function_that_builds_it() -> None:
    found = references(defs)
    assert set(found) == ASSETS
    for asset, refs in found.items():
        assert len(refs) == 1, (asset, refs)
        (ref,) = refs
        assert isinstance(ref, dg.LocalFileCodeReference), (asset, ref)
        path = Path(ref.file_path)
        assert path.is_file() and path.is_relative_to(REPO / "football_assets"), ref
        assert ref.line_number is not None
        builder = defined_at(path, ref.line_number)
        # The tables and their histories come from one step (warehouse_tables), the others
        # from their own.
        in_step = asset.startswith(("dim_", "fact_", "competition_membership"))
        expected = "warehouse_tables" if in_step else asset
        assert builder == expected, (asset, ref)


def test_an_image_with_its_commit_links_to_the_repository_at_that_commit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(build_info, "GIT_URL", GIT_URL)
    monkeypatch.setattr(build_info, "GIT_COMMIT", COMMIT)
    found = references(build_definitions())
    assert set(found) == ASSETS
    for asset, refs in found.items():
        (ref,) = refs
        assert isinstance(ref, dg.UrlCodeReference), (asset, ref)
        local = references(defs)[asset][0]
        assert isinstance(local, dg.LocalFileCodeReference)
        relative = Path(local.file_path).relative_to(REPO).as_posix()
        assert ref.url == f"{GIT_URL}/tree/{COMMIT}/{relative}#L{local.line_number}"


def test_the_build_writes_the_commit_into_the_package(tmp_path: Path) -> None:
    """What the Dockerfile runs: build args in, build_info.py out; bad ones stop the build."""
    package = tmp_path / "football_assets"
    package.mkdir()
    source = REPO / "football_assets" / "build_info.py"
    (package / "build_info.py").write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    script = str(REPO / "deploy" / "write_build_info.py")

    def build(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, script, *args], cwd=tmp_path, capture_output=True, text=True
        )

    assert build("", "").returncode == 0  # no build args: local references, file unchanged
    assert (package / "build_info.py").read_text() == source.read_text()
    refused = build("https://example.com/repo", COMMIT)
    assert refused.returncode == 2 and "GitHub or GitLab" in refused.stdout
    assert build(GIT_URL, "main; rm -rf /").returncode == 2
    assert build(GIT_URL + "/", COMMIT).returncode == 0
    written: dict[str, object] = {}
    exec((package / "build_info.py").read_text(), written)  # noqa: S102 - the file just written
    assert written["GIT_URL"] == GIT_URL and written["GIT_COMMIT"] == COMMIT
