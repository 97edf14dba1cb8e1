"""Configuration as `football-assets` reads it: every variable checked before anything runs.

Each bad value exits 1 with one line on stderr naming the variable and what it accepts, no
traceback, and nothing started: no instance folder, no output folder, no embedded server. Empty
variables count as unset, `.env` is read (variables already set win over it), and
`--output-dir` wins over FOOTBALL_OUTPUT_DIR.
"""

from __future__ import annotations

import csv
import errno
import os
import subprocess
from pathlib import Path

import pytest

from football_assets import settings
from test_support import refresh_process

# (variable, value, what the line must say it accepts)
BAD_VALUES = [
    ("FOOTBALL_DATA_RATE_WINDOW_SECONDS", "nan", "a number of seconds greater than 0"),
    ("FOOTBALL_DATA_RATE_WINDOW_SECONDS", "inf", "a number of seconds greater than 0"),
    ("FOOTBALL_DATA_RATE_WINDOW_SECONDS", "-60", "a number of seconds greater than 0"),
    ("FOOTBALL_DATA_CONNECT_TIMEOUT", "1e308", "at most 86400, e.g. 5"),
    ("FOOTBALL_DATA_READ_TIMEOUT", "soon", "a number of seconds greater than 0"),
    ("FOOTBALL_DATA_MAX_RETRY_SECONDS", "0", "a number of seconds greater than 0"),
    ("FOOTBALL_DATA_REQUESTS_PER_MINUTE", "ten", "a whole number from 1 to 1000000, e.g. 10"),
    ("FOOTBALL_DATA_REQUESTS_PER_MINUTE", "0", "a whole number from 1 to 1000000, e.g. 10"),
    ("FOOTBALL_DATA_REQUESTS_PER_MINUTE", str(10**30), "a whole number from 1 to 1000000"),
    ("FOOTBALL_DATA_API_URL", "ftp://api.example/v4", "http(s) URL with a host"),
    ("FOOTBALL_DATA_API_URL", "not a url", "http(s) URL with a host"),
    ("FOOTBALL_DATA_API_URL", "https://api.example:port/v4", "e.g. https://"),
    ("DATABASE_URL", "postgresql://user:pw-9f3e@db.example:port/db", "a number from 1 to 65535"),
    ("DATABASE_URL", "mysql://user:pw-9f3e@db.example/db", "e.g. postgresql://"),
    ("FOOTBALL_DB_SCHEMA", "Football; drop", "lower-case letters, digits and underscores"),
    ("FOOTBALL_DB_SCHEMA", "public", "a private schema such as 'football'"),
    ("FOOTBALL_LOG_FORMAT", "xml", "json or text"),
    ("FOOTBALL_OUTPUT_DIR", "s3://", "s3://bucket/prefix or a folder"),
    ("FOOTBALL_OUTPUT_DIR", "ftp://host/out", "a folder or s3://bucket/prefix"),
    ("FOOTBALL_OUTPUT_DIR", "{file}", "set it to a folder"),
    ("FOOTBALL_OUTPUT_DIR", "{file}/below", "so the folder cannot exist"),
    # Root passes os.access on /proc, where nothing can be created: probed by writing.
    ("FOOTBALL_OUTPUT_DIR", "/proc/x", "/proc/x cannot be created in /proc"),
    ("DAGSTER_HOME", "/proc/x", "/proc/x cannot be created in /proc"),
    ("FOOTBALL_EMBEDDED_PGDATA", "/proc/x/pgdata", "cannot be created in /proc"),
    ("DAGSTER_HOME", "{file}", "set it to a folder"),
    ("FOOTBALL_EMBEDDED_PGDATA", "{file}", "set it to a folder"),
]


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    BAD_VALUES,
    ids=[f"{variable}={value}" for variable, value, _ in BAD_VALUES],
)
def test_a_bad_value_is_one_line_naming_the_variable_and_nothing_starts(
    variable: str, value: str, accepted: str, tmp_path: Path
) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    untouched = {
        "DAGSTER_HOME": tmp_path / "home",
        "FOOTBALL_OUTPUT_DIR": tmp_path / "output",
        "FOOTBALL_EMBEDDED_PGDATA": tmp_path / "pgdata",
    }
    env = refresh_process.user_env(
        FOOTBALL_DATA_API_KEY="key-for-the-config-test",
        **{name: str(path) for name, path in untouched.items()},
    )
    env[variable] = value.format(file=a_file)

    done = refresh_process.run("refresh", cwd=tmp_path, env=env, timeout=120)

    assert done.returncode == 1, done.stdout
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"football-assets: {variable}"), line
    assert accepted in line, line
    assert "Traceback" not in done.stderr and "pw-9f3e" not in line
    for name, path in untouched.items():
        assert not path.exists(), f"{name} was created although the configuration is bad"


def test_empty_variables_count_as_unset() -> None:
    names = [
        "FOOTBALL_DATA_API_KEY",
        "FOOTBALL_DATA_API_URL",
        "FOOTBALL_DATA_REQUESTS_PER_MINUTE",
        "FOOTBALL_DATA_RATE_WINDOW_SECONDS",
        "FOOTBALL_DATA_CONNECT_TIMEOUT",
        "FOOTBALL_DATA_READ_TIMEOUT",
        "FOOTBALL_DATA_MAX_RETRY_SECONDS",
        "DATABASE_URL",
        "FOOTBALL_DB_SCHEMA",
        "FOOTBALL_EMBEDDED_PGDATA",
        "FOOTBALL_OUTPUT_DIR",
        "DAGSTER_HOME",
        "FOOTBALL_LOG_FORMAT",
    ]
    base = {"HOME": "/home/someone", "XDG_STATE_HOME": "/state"}
    empty = settings.load({**base, **dict.fromkeys(names, "")})
    blank = settings.load({**base, **dict.fromkeys(names, "  ")})
    assert empty == blank == settings.load(base)
    assert empty.api_key is None and empty.database_url is None and empty.dagster_home is None


def test_the_env_file_is_read_and_the_environment_wins_over_it(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "DATABASE_URL=postgresql://reader:env-file-pw@envfile.example:6543/warehouse\n"
        "FOOTBALL_LOG_FORMAT=json\n",
        encoding="utf-8",
    )
    env = refresh_process.user_env(DAGSTER_HOME=str(tmp_path / "home"))

    from_file = refresh_process.run("db", "url", cwd=tmp_path, env=env)
    overridden = refresh_process.run(
        "db", "url", cwd=tmp_path, env={**env, "DATABASE_URL": "postgresql://me@shell.example/db"}
    )

    assert from_file.returncode == 0, from_file.stderr
    assert from_file.stdout.strip() == "postgresql://reader:***@envfile.example:6543/warehouse"
    assert overridden.returncode == 0, overridden.stderr
    assert overridden.stdout.strip() == "postgresql://me@shell.example/db"
    # A bad value in .env is caught like one in the environment.
    (tmp_path / ".env").write_text("FOOTBALL_LOG_FORMAT=xml\n", encoding="utf-8")
    bad = refresh_process.run("db", "url", cwd=tmp_path, env=env)
    assert bad.returncode == 1
    assert bad.stderr.startswith("football-assets: FOOTBALL_LOG_FORMAT='xml'")


def test_output_dir_wins_and_empty_variables_run_offline(
    tmp_path: Path, pg_url: str, schema: str
) -> None:
    chosen, configured = tmp_path / "chosen", tmp_path / "configured"
    env = refresh_process.user_env(
        DATABASE_URL=pg_url,
        FOOTBALL_DB_SCHEMA=schema,
        DAGSTER_HOME=str(tmp_path / "home"),
        FOOTBALL_OUTPUT_DIR=str(configured),
        # Empty, so unset: no key (the snapshot), default URL, budget, timeouts, log format.
        FOOTBALL_DATA_API_KEY="",
        FOOTBALL_DATA_API_URL="",
        FOOTBALL_DATA_REQUESTS_PER_MINUTE="",
        FOOTBALL_DATA_RATE_WINDOW_SECONDS="",
        FOOTBALL_DATA_CONNECT_TIMEOUT="",
        FOOTBALL_DATA_READ_TIMEOUT="",
        FOOTBALL_DATA_MAX_RETRY_SECONDS="",
        FOOTBALL_LOG_FORMAT="",
    )

    done = refresh_process.run("refresh", "--output-dir", str(chosen), cwd=tmp_path, env=env)

    assert done.returncode == 0, done.stderr
    assert "from the bundled snapshot (offline)" in done.stdout.splitlines()[0]
    with (chosen / "summary.csv").open(encoding="utf-8", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 13
    assert not configured.exists()
    assert f"Summary: {chosen / 'summary.csv'} (13 competitions" in done.stdout


def fill(folder: Path) -> None:
    """Write a file in `folder` until its file system says it is full."""
    filler = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(filler, bytes(4096)):
            pass
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(filler)


@pytest.mark.parametrize("variable", ["FOOTBALL_OUTPUT_DIR", "DAGSTER_HOME"])
def test_folders_are_checked_by_writing_not_by_permissions(variable: str, tmp_path: Path) -> None:
    """Where os.access says yes and a write says no: /proc (for root), a full file system."""
    if not os.access("/proc", os.W_OK | os.X_OK):
        pytest.skip("only root passes os.access on /proc")
    with pytest.raises(settings.ConfigError) as raised:
        settings.load({"HOME": str(tmp_path), variable: "/proc/x"})
    assert str(raised.value).startswith(f"{variable}='/proc/x': /proc/x cannot be created")
    full = tmp_path / "full"
    full.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(full)]
    if subprocess.run(mount, capture_output=True).returncode != 0:
        pytest.skip("no mount rights for a tiny file system to fill")
    try:
        fill(full)
        assert os.access(full, os.W_OK)
        with pytest.raises(settings.ConfigError) as raised:
            settings.load({"HOME": str(tmp_path), variable: str(full)})
        assert str(raised.value).startswith(f"{variable}='{full}': {full} cannot be written")
        assert "no space left on device" in str(raised.value)
        assert [p.name for p in full.iterdir()] == ["filler"]  # the probe left nothing
    finally:
        subprocess.run(["umount", str(full)], check=True)


@pytest.mark.parametrize("url", ["https:///v4", "http://:8080/v4", "https://", "https://@/v4"])
def test_an_api_url_without_a_host_is_refused(url: str) -> None:
    """Accepted, it would fail only at the first request, after the set-up, with a line about
    a connection rather than the variable."""
    base = {"HOME": "/home/someone", "XDG_STATE_HOME": "/state"}
    assert settings.load(
        {**base, "FOOTBALL_DATA_API_URL": "http://127.0.0.1:8080/v4/"}
    ).api_url == ("http://127.0.0.1:8080/v4")
    with pytest.raises(settings.ConfigError) as refused:
        settings.load({**base, "FOOTBALL_DATA_API_URL": url})
    assert str(refused.value) == (
        f"FOOTBALL_DATA_API_URL={url!r} is not an http(s) URL with a host; set it to e.g. "
        "https://api.football-data.org/v4."
    )
