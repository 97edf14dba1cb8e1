"""The rule that puts a test in the slow lane: it starts a process or runs refresh()."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from football_assets_tests.conftest import _is_slow
from test_support import refresh_process


def _spawns() -> None:
    subprocess.run([sys.executable, "-c", "pass"], check=True)


def _through_a_helper() -> None:
    _spawns()


def _the_cli() -> None:
    refresh_process.cli("status", cwd=None, env={})  # type: ignore[arg-type]


def _a_refresh_imported_inside() -> None:
    from football_assets.refresh import refresh

    refresh(None, None)  # type: ignore[arg-type]


def _in_a_nested_function() -> None:
    def later() -> None:
        _spawns()

    later()


def _pure() -> int:
    return sum(range(3))


# Referred to by this table only, so the tests below are not themselves slow.
SAMPLES: dict[str, tuple[Callable[..., Any], bool]] = {
    "subprocess": (_spawns, True),
    "helper of the module": (_through_a_helper, True),
    "the CLI helper": (_the_cli, True),
    "refresh imported inside": (_a_refresh_imported_inside, True),
    "nested function": (_in_a_nested_function, True),
    "in-process only": (_pure, False),
}


@pytest.mark.parametrize("sample", SAMPLES, ids=SAMPLES.keys())
def test_what_a_test_calls_decides_its_lane(sample: str) -> None:
    function, slow = SAMPLES[sample]
    assert _is_slow(SimpleNamespace(function=function)) is slow  # type: ignore[arg-type]


def test_this_module_is_in_the_fast_lane(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("slow") is None
