"""A full refresh in the real world: a flaky API, a strict one, a wrong key, a database that
goes away, a run killed outright, and a key that must stay secret through all of it.

Everything is real except the API (the loopback double, faults injected) and the minute (scaled
to TEST_WINDOW seconds): Dagster runs in an on-disk instance, PostgreSQL is a real server.
"""

from __future__ import annotations

import csv
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from football_assets import settings
from football_assets.definitions import build_definitions
from football_assets.refresh import RefreshFailed, refresh
from football_assets.resources.api import LiveFootballDataApi
from football_assets.resources.output import OutputLocation
from football_assets.resources.warehouse import Warehouse
from football_assets.resources.warehouse_errors import DatabaseUnavailable, WarehouseError
from football_assets.resources.warehouse_schema import validate_schema_name
from football_assets_tests.conftest import (
    TEST_KEY,
    TEST_LIMIT,
    TEST_WINDOW,
    live_api,
    read_table,
    replace_table,
)
from test_support import refresh_process
from test_support.api_double import (
    MSG_RESTRICTED,
    ApiData,
    Fault,
    FootballApiDouble,
    make_competition,
    make_team,
)

FAST = {"backoff_seconds": 0.02, "read_timeout_seconds": 0.5, "max_retry_seconds": 10.0}
TABLES = ("dim_competitions", "dim_teams", "fact_competitions")


# ---- what "exactly the right tables" means --------------------------------------------------


def expected_tables(data: ApiData) -> dict[str, Any]:
    """The tables as the API's data says they must be, derived without the pipeline's code."""
    teams = {t["id"]: t["name"] for c in data.competitions for t in data.teams.get(c["id"], [])}
    return {
        "dim_competitions": {c["id"]: c["name"] for c in data.competitions},
        "dim_teams": teams,
        "fact_competitions": {
            (c["id"], t["id"]) for c in data.competitions for t in data.teams.get(c["id"], [])
        },
    }


def actual_tables(warehouse: Warehouse) -> dict[str, Any]:
    return {
        "dim_competitions": {r["id"]: r["name"] for r in read_table(warehouse, "dim_competitions")},
        "dim_teams": {r["id"]: r["name"] for r in read_table(warehouse, "dim_teams")},
        "fact_competitions": {
            (r["competition_id"], r["team_id"]) for r in read_table(warehouse, "fact_competitions")
        },
    }


def whole_tables(warehouse: Warehouse) -> dict[str, list[dict[str, Any]]]:
    """Every row and column, in key order: to prove that nothing at all changed."""
    return {name: sorted(read_table(warehouse, name), key=_primary_key) for name in TABLES}


def _primary_key(row: dict[str, Any]) -> tuple[int, ...]:
    return (row["id"],) if "id" in row else (row["competition_id"], row["team_id"])


def expected_summary(data: ApiData) -> list[dict[str, str]]:
    rows = [
        {
            "competition_id": str(c["id"]),
            "competition_code": c.get("code") or "",
            "competition_name": c["name"],
            "number_of_teams": str(len({t["id"] for t in data.teams.get(c["id"], [])})),
        }
        for c in data.competitions
    ]
    return sorted(rows, key=lambda r: (-int(r["number_of_teams"]), int(r["competition_id"])))


def read_summary(output_dir: Path) -> list[dict[str, str]]:
    with (output_dir / "summary.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def attempts(instance: dg.DagsterInstance, asset: str, partition: str | None = None) -> int:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(asset), asset_partitions=[partition] if partition else None
        ),
        limit=1,
    ).records
    return int(records[0].asset_materialization.metadata["attempts"].value)  # type: ignore[union-attr]


def defs_for(api: Any, warehouse: Warehouse, output_dir: Path) -> dg.Definitions:
    return build_definitions(api, warehouse, OutputLocation(location=str(output_dir)))


@pytest.fixture
def fast_defs(
    api_double: FootballApiDouble, warehouse: Warehouse, limiter_dir: Path, output_dir: Path
) -> dg.Definitions:
    return defs_for(live_api(api_double, limiter_dir, **FAST), warehouse, output_dir)


# ---- the API misbehaves ---------------------------------------------------------------------


@pytest.mark.rate_limit
def test_transient_faults_end_green_with_exactly_the_right_tables(
    fast_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    warehouse: Warehouse,
    output_dir: Path,
) -> None:
    faulted = {
        "2021": Fault.drop(),
        "2002": Fault.delay(2.0),  # past the 0.5 s read timeout
        "2014": Fault.status(502, "<html><body>Bad Gateway</body></html>"),
        "2015": Fault.body("<html>maintenance</html>"),
        "2019": Fault.rate_limited(1),
        "2152": Fault.body('{"count": 10, "tea', content_type="application/json"),
    }
    api_double.inject(r"/competitions$", Fault.status(503))
    for key, fault in faulted.items():
        api_double.inject(rf"/competitions/{key}/teams$", fault)

    refresh(fast_defs, instance)

    assert actual_tables(warehouse) == expected_tables(api_double.data)
    assert read_summary(output_dir) == expected_summary(api_double.data)
    assert api_double.pending_faults() == 0
    # Each fault cost exactly one retry, recorded where a user looks: the materialization.
    assert attempts(instance, "raw_competitions") == 2
    # Faults by id in the URL; partitions by code: BL1 is 2002, PD 2014, FL1 2015, SA 2019 ...
    faulted_keys = {"PL", "BL1", "PD", "FL1", "SA", "CLI"}
    for key in instance.get_dynamic_partitions("competitions"):
        assert attempts(instance, "raw_teams", key) == (2 if key in faulted_keys else 1), key
    # One answer stored per partition: retries leave no duplicates behind.
    stored = warehouse.query(
        f'SELECT count(*) AS n FROM "{warehouse.schema}".raw_responses WHERE asset = :a',
        a="raw_teams",
    )
    assert stored == [{"n": 13}]
    assert api_double.refused_count() == 1  # the injected 429, nothing else
    assert api_double.max_requests_in_any_window(TEST_WINDOW) <= TEST_LIMIT


class WindowSpentOnArrival(FootballApiDouble):
    """The double, with its window spent by someone else just as our first request arrives:
    then, however long the refresh took to start, nothing could have known it was spent."""

    spent = False

    def _admit(self, path: str, query: str, token: str | None, peer_port: int) -> Any:
        if not self.spent:
            with self._lock:
                self.spent = True
                self._window_start, self._used = time.monotonic(), self._limit
        return super()._admit(path, query, token, peer_port)


def test_a_server_tighter_than_configured_refuses_only_the_first_request(
    api_data: ApiData,
    instance: dg.DagsterInstance,
    warehouse: Warehouse,
    limiter_dir: Path,
    output_dir: Path,
) -> None:
    """6 per window while 10 are configured, and someone else already spent this window."""
    with WindowSpentOnArrival(
        api_data, api_key=TEST_KEY, limit=6, window_seconds=TEST_WINDOW
    ) as double:
        refresh(defs_for(live_api(double, limiter_dir, **FAST), warehouse, output_dir), instance)

    ours = double.requests
    assert ours[0].refused  # nothing could know the window was spent
    assert not any(r.refused for r in ours[1:])  # after that, the headers said it all
    assert len(ours) == 15  # 14 requests and the one retry
    assert actual_tables(warehouse) == expected_tables(double.data)
    assert read_summary(output_dir) == expected_summary(double.data)


class MeetAtTheList(FootballApiDouble):
    """The double, answering GET /competitions only once `parties` clients have asked for it:
    the refreshes that ask are then certainly running at the same time."""

    def __init__(self, data: ApiData, parties: int, **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        self.meeting = threading.Barrier(parties)

    def _route(self, path: str, token: str | None) -> tuple[int, bytes]:
        if path == "/v4/competitions":
            self.meeting.wait(timeout=300)
        return super()._route(path, token)


def data_directory(pg_url: str) -> str:
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(sa.text("SHOW data_directory")).scalar_one())
    finally:
        engine.dispose()


def test_two_refreshes_with_their_own_dagster_homes_share_one_budget(
    tmp_path: Path, api_data: ApiData, pg_url: str, schema: str
) -> None:
    """As a user would: two `football-assets refresh` at once, each with its DAGSTER_HOME, on
    the embedded PostgreSQL (no DATABASE_URL), against a server whose limit is exactly the
    configured one. The budget is the user's, not the instance's: not one request refused."""
    with MeetAtTheList(
        api_data, parties=2, api_key=TEST_KEY, limit=TEST_LIMIT, window_seconds=TEST_WINDOW
    ) as double:
        envs = [
            refresh_process.user_env(
                FOOTBALL_DATA_API_KEY=TEST_KEY,
                FOOTBALL_DATA_API_URL=double.base_url,
                FOOTBALL_DATA_REQUESTS_PER_MINUTE=str(TEST_LIMIT),
                FOOTBALL_DATA_RATE_WINDOW_SECONDS=str(TEST_WINDOW),
                FOOTBALL_EMBEDDED_PGDATA=data_directory(pg_url),  # the session's server
                FOOTBALL_DB_SCHEMA=schema,
                DAGSTER_HOME=str(tmp_path / f"home_{n}"),
                FOOTBALL_OUTPUT_DIR=str(tmp_path / f"output_{n}"),
            )
            for n in (1, 2)
        ]
        assert envs[0]["XDG_STATE_HOME"] == envs[1]["XDG_STATE_HOME"]  # one user
        processes = [refresh_process.start("refresh", cwd=tmp_path, env=env) for env in envs]
        try:
            outputs = [process.communicate(timeout=300) for process in processes]
        finally:
            for process in processes:
                refresh_process.kill_group(process)

    assert [p.returncode for p in processes] == [0, 0], [err for _, err in outputs]
    assert double.count() == 28  # each refresh asked for everything, once
    assert double.refused_count() == 0
    assert double.max_requests_in_any_window(TEST_WINDOW) <= TEST_LIMIT


def test_permanent_errors_stop_with_the_promised_line_and_the_data_whole(
    fast_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    warehouse: Warehouse,
    limiter_dir: Path,
    output_dir: Path,
) -> None:
    refresh(fast_defs, instance)
    tables, summary = whole_tables(warehouse), (output_dir / "summary.csv").read_bytes()
    # Upstream changes that a partial load would betray.
    api_double.data.rename_team(5, "Bayern Renamed")
    api_double.data.remove_team(2021, 57)

    def bad_key() -> dg.Definitions:
        wrong = live_api(api_double, limiter_dir, api_key="wrong-key-91e0", **FAST)
        return defs_for(wrong, warehouse, output_dir)

    def outside_the_plan() -> dg.Definitions:
        api_double.data.restricted.add(2021)
        return fast_defs

    def team_without_an_id() -> dg.Definitions:
        api_double.data.restricted.clear()
        nameless = make_team(999_001, "Ghost FC")
        del nameless["id"]
        api_double.data.add_team(2014, nameless)
        return fast_defs

    def database_refusing() -> dg.Definitions:
        url = f"postgresql://football:s3cret-pw@127.0.0.1:{closed_port()}/warehouse"
        gone = Warehouse(database_url=url, schema_name=warehouse.schema)
        return defs_for(live_api(api_double, limiter_dir, **FAST), gone, output_dir)

    cases: list[tuple[Callable[[], dg.Definitions], str, str]] = [
        (
            bad_key,
            "raw_competitions: GET /competitions returned HTTP 400: Your API token is invalid. "
            "Check FOOTBALL_DATA_API_KEY (or unset it to run on the snapshot).",
            "",
        ),
        (
            outside_the_plan,
            f"raw_teams: GET /competitions/2021/teams returned HTTP 403: {MSG_RESTRICTED} "
            "Your plan (FOOTBALL_DATA_API_KEY) does not include competition 2021; "
            "upgrade the plan at football-data.org or use a key that has it.",
            "",
        ),
        (
            team_without_an_id,
            "raw_teams: raw_teams partition PD (GET /competitions/2014/teams): unusable "
            "answer, field 'teams.",
            ".id': field required",
        ),
        (
            database_refusing,
            "raw_competitions: PostgreSQL at postgresql://football:***@127.0.0.1:",
            "Connection refused); nothing was changed. "
            "Check DATABASE_URL and that the server is up, then re-run.",
        ),
    ]
    for make_defs, starts, ends in cases:
        before = api_double.count()
        with pytest.raises(RefreshFailed) as failed:
            refresh(make_defs(), instance)
        message = str(failed.value)
        assert message.startswith(starts) and message.endswith(ends), message
        assert "\n" not in message and "s3cret-pw" not in message
        assert whole_tables(warehouse) == tables, make_defs.__name__
        assert (output_dir / "summary.csv").read_bytes() == summary, make_defs.__name__
        if make_defs is outside_the_plan:  # failed fast: 2021 was asked once, not retried
            assert api_double.count("/competitions/2021/teams") - before <= 1

    # The cause fixed, the next refresh takes every change.
    api_double.data.teams[2014] = [t for t in api_double.data.teams[2014] if "id" in t]
    refresh(fast_defs, instance)
    assert actual_tables(warehouse) == expected_tables(api_double.data)
    assert read_summary(output_dir) == expected_summary(api_double.data)


# ---- the database goes away -----------------------------------------------------------------


@contextmanager
def row_locked(pg_url: str, schema: str, table: str, key: int) -> Iterator[sa.Connection]:
    """Hold a row lock, so a load that changes that row stops there, mid-transaction: its
    staging table is full and its DELETE done, uncommitted. Yields the locking connection."""
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        transaction = conn.begin()
        lock = f'SELECT 1 FROM "{schema}"."{table}" WHERE id = :k FOR UPDATE'  # noqa: S608
        conn.execute(sa.text(lock), {"k": key})
        try:
            yield conn
        finally:
            if transaction.is_active:  # the test may have let go already
                transaction.rollback()
    engine.dispose()


def blocked_load(pg_url: str, timeout: float = 60, exclude: set[int] | None = None) -> int:
    """The pid of the backend waiting for our row lock, once a load reaches it (not one of
    `exclude`: backends already terminated may linger a moment)."""
    # Autocommit: within one transaction pg_stat_activity would show the same snapshot forever.
    engine = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    deadline = time.monotonic() + timeout
    try:
        with engine.connect() as conn:
            while time.monotonic() < deadline:
                pid = conn.execute(
                    sa.text(
                        "SELECT pid FROM pg_stat_activity WHERE wait_event = 'transactionid' "
                        "AND datname = current_database() AND NOT pid = ANY(:exclude)"
                    ),
                    {"exclude": sorted(exclude or ())},
                ).scalar()
                if pid is not None:
                    return int(pid)
                time.sleep(0.05)
    finally:
        engine.dispose()
    raise AssertionError("no load reached the locked row")


def terminate(pg_url: str, pid: int) -> None:
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    engine.dispose()


def test_a_connection_dropped_mid_load_rolls_back_with_one_line(
    warehouse: Warehouse, pg_url: str
) -> None:
    old = [{"id": i, "name": f"Team {i}"} for i in range(1, 40)]
    new = [{"id": i, "name": f"Renamed {i}"} for i in range(2, 50)]
    replace_table(warehouse, "dim_teams", old)
    failure: list[BaseException] = []

    def load() -> None:
        try:
            replace_table(warehouse, "dim_teams", new)
        except BaseException as exc:
            failure.append(exc)

    with row_locked(pg_url, warehouse.schema, "dim_teams", 7):
        loader = threading.Thread(target=load)
        loader.start()
        terminate(pg_url, blocked_load(pg_url))
    loader.join(timeout=30)

    (error,) = failure
    assert isinstance(error, DatabaseUnavailable)
    assert str(error) == (
        f"Lost the connection to PostgreSQL at {warehouse.describe()} during a load "
        "(terminating connection due to administrator command); it was rolled back, so every "
        "table keeps its previous contents. Re-run once the server is back."
    )
    assert sorted(r["name"] for r in read_table(warehouse, "dim_teams")) == sorted(
        r["name"] for r in old
    )
    replace_table(warehouse, "dim_teams", new)  # the same resource, a fresh connection
    assert {r["id"]: r["name"] for r in read_table(warehouse, "dim_teams")} == {
        r["id"]: r["name"] for r in new
    }


def test_a_bad_value_mid_copy_is_refused_with_one_line(warehouse: Warehouse) -> None:
    old = [{"id": i, "name": f"Team {i}"} for i in range(1, 10)]
    replace_table(warehouse, "dim_teams", old)
    bad = [*old[:5], {"id": 99, "name": "Bad", "founded": "long ago"}, *old[5:]]

    with pytest.raises(WarehouseError) as failed:
        replace_table(warehouse, "dim_teams", bad)

    assert str(failed.value) == (
        'PostgreSQL refused the load: invalid input syntax for type integer: "long ago"; '
        "every table keeps its previous contents."
    )
    assert len(read_table(warehouse, "dim_teams")) == len(old)


def test_dagster_retries_a_load_whose_connection_dropped(
    fast_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    warehouse: Warehouse,
    pg_url: str,
    output_dir: Path,
) -> None:
    refresh(fast_defs, instance)
    api_double.data.rename_team(57, "Arsenal Renamed")

    with row_locked(pg_url, warehouse.schema, "dim_teams", 57) as lock:
        dropped: list[int] = []

        def drop_the_loader() -> None:
            try:
                dropped.append(blocked_load(pg_url))
                terminate(pg_url, dropped[0])
            finally:
                lock.rollback()  # the server is "back": the retry goes through

        dropper = threading.Thread(target=drop_the_loader)
        dropper.start()
        report = refresh(fast_defs, instance)
        dropper.join(timeout=30)

    assert dropped, "the load never reached the locked row"

    assert actual_tables(warehouse) == expected_tables(api_double.data)
    assert read_summary(output_dir) == expected_summary(api_double.data)
    retries = [
        event
        for event in instance.all_logs(report.run_ids[-1])
        if event.dagster_event is not None and event.dagster_event.is_step_up_for_retry
    ]
    # The three tables load in one step (one transaction): that step is the one retried.
    assert [event.step_key for event in retries] == ["warehouse_tables"]
    assert "Lost the connection to PostgreSQL" in str(retries[0].dagster_event)


def test_retries_run_out_naming_the_last_cause_after_the_promised_delays(
    fast_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    warehouse: Warehouse,
    pg_url: str,
    output_dir: Path,
) -> None:
    refresh(fast_defs, instance)
    before, csv_before = whole_tables(warehouse), (output_dir / "summary.csv").read_bytes()
    api_double.data.rename_team(57, "Arsenal Renamed")
    dropped: list[int] = []
    done = threading.Event()

    def drop_every_attempt() -> None:
        while not done.is_set():
            try:
                dropped.append(blocked_load(pg_url, timeout=0.5, exclude=set(dropped)))
            except AssertionError:
                continue  # no attempt waiting yet (or any more)
            terminate(pg_url, dropped[-1])

    with row_locked(pg_url, warehouse.schema, "dim_teams", 57):
        dropper = threading.Thread(target=drop_every_attempt)
        dropper.start()
        try:
            with pytest.raises(RefreshFailed) as failed:
                refresh(fast_defs, instance)
        finally:
            done.set()
            dropper.join(timeout=30)

    assert len(dropped) == 3
    assert str(failed.value) == (
        f"warehouse_tables: Lost the connection to PostgreSQL at {warehouse.describe()} during "
        "a load (terminating connection due to administrator command); it was rolled back, so "
        "every table keeps its previous contents. Re-run once the server is back. "
        "(gave up after 3 attempts)"
    )
    retries = step_retries(instance, failed.value.run_id)
    # The README's promise: twice, after about 1 s and then about 3 s (exponential, jittered
    # by up to a second either way).
    assert [step for step, _ in retries] == ["warehouse_tables", "warehouse_tables"]
    first, second = (seconds for _, seconds in retries)
    assert 0 <= first <= 2 and 2 <= second <= 4, retries
    assert whole_tables(warehouse) == before
    assert (output_dir / "summary.csv").read_bytes() == csv_before


def step_retries(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, float]]:
    """(step, seconds it was to wait) of each STEP_UP_FOR_RETRY of the run."""
    return [
        (
            str(event.dagster_event.step_key),
            float(event.dagster_event.event_specific_data.seconds_to_wait),  # type: ignore[union-attr]
        )
        for event in instance.all_logs(run_id)
        if event.dagster_event is not None and event.dagster_event.is_step_up_for_retry
    ]


def test_a_filesystem_error_writing_the_summary_fails_once(
    api_double: FootballApiDouble,
    warehouse: Warehouse,
    limiter_dir: Path,
    instance: dg.DagsterInstance,
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("in the way")
    where = blocker / "output"
    defs = defs_for(live_api(api_double, limiter_dir, **FAST), warehouse, where)

    with pytest.raises(RefreshFailed) as failed:
        refresh(defs, instance)

    assert str(failed.value).startswith(
        f"summary_csv: FOOTBALL_OUTPUT_DIR={where}: cannot write summary.csv in {where}: "
        "a path component is a file, not a folder ("
    ), str(failed.value)
    assert str(failed.value).endswith(
        "make that folder writable by this user or set FOOTBALL_OUTPUT_DIR to one that is"
    )
    assert step_retries(instance, failed.value.run_id) == []


def test_a_value_postgres_refuses_fails_once_and_changes_no_table(
    fast_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    api_double: FootballApiDouble,
    warehouse: Warehouse,
    output_dir: Path,
) -> None:
    """The refusal comes from the last table loaded, after the two others took new rows: all
    three keep their previous contents (they load in one transaction)."""
    refresh(fast_defs, instance)
    before, csv_before = whole_tables(warehouse), (output_dir / "summary.csv").read_bytes()
    with warehouse.get_engine().begin() as conn:  # a rule the pipeline does not know about
        conn.execute(
            sa.text(
                f'ALTER TABLE "{warehouse.schema}".fact_competitions '
                "ADD CONSTRAINT no_new_team CHECK (team_id <> 900101)"
            )
        )
    api_double.data.rename_team(57, "Arsenal Renamed")
    api_double.data.add_competition(
        make_competition(9001, "Liga Nueva", "LNU"), teams=[make_team(900101, "Club Nuevo")]
    )

    with pytest.raises(RefreshFailed) as failed:
        refresh(fast_defs, instance)

    assert str(failed.value) == (
        "warehouse_tables: PostgreSQL refused the load in fact_competitions: new row for "
        'relation "fact_competitions" violates check constraint "no_new_team" (Failing row '
        "contains (9001, 900101).); every table keeps its previous contents."
    )
    assert step_retries(instance, failed.value.run_id) == []
    assert whole_tables(warehouse) == before
    assert (output_dir / "summary.csv").read_bytes() == csv_before


# ---- the key stays secret -------------------------------------------------------------------


def test_the_key_appears_nowhere(
    tmp_path: Path,
    api_double: FootballApiDouble,
    warehouse: Warehouse,
    output_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A green refresh under faults, then a refresh with a wrong key: neither key is in the
    event log, the instance's files, the warehouse, the output, or anything printed."""
    wrong_key = "wrong-key-5b2e8d7c1a"
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("FOOTBALL_DATA_API_URL", api_double.base_url)
    monkeypatch.setenv("FOOTBALL_DATA_RATE_WINDOW_SECONDS", str(TEST_WINDOW))
    caplog.set_level("DEBUG")
    api_double.inject(r"/competitions$", Fault.status(503))
    api_double.inject(r"/teams$", Fault.rate_limited(1))

    with dg.instance_for_test(temp_dir=str(home)) as instance:
        for key in (TEST_KEY, wrong_key):
            monkeypatch.setenv("FOOTBALL_DATA_API_KEY", key)
            # As deployed: the key reaches the resource as dg.EnvVar, read when a run starts.
            defs = build_definitions(None, warehouse)
            api = (defs.resources or {})["football_api"]
            assert isinstance(api, LiveFootballDataApi)
            try:
                refresh(defs, instance)
            except RefreshFailed as failed:
                assert key == wrong_key and "HTTP 400" in str(failed)
                texts = [str(failed)]
            else:
                texts = []
        runs = instance.get_runs()
        assert len(runs) == 4  # three green runs, then the failed one
        events = [event for run in runs for event in instance.all_logs(run.run_id)]
        texts += [dg.serialize_value(event) for event in events]  # messages, metadata, errors
        texts += [dg.serialize_value(run) for run in runs]  # run config and tags

    texts += [path.read_bytes().decode("utf-8", "replace") for path in files_under(home)]
    state = settings.load().state_dir  # the request budget every process of this user shares
    texts += [path.read_bytes().decode("utf-8", "replace") for path in files_under(state)]
    texts += [path.read_bytes().decode("utf-8", "replace") for path in files_under(output_dir)]
    schema = warehouse.schema
    for table in ("raw_responses", *TABLES):
        texts += [
            row["t"]
            for row in warehouse.query(f'SELECT t::text AS t FROM "{schema}"."{table}" AS t')  # noqa: S608
        ]
    captured = capfd.readouterr()
    texts += [captured.out, captured.err, *(record.getMessage() for record in caplog.records)]

    assert api_double.count() > 14 and api_double.refused_count() >= 1  # it did all happen
    assert any(r.token == wrong_key for r in api_double.requests)
    for key in (TEST_KEY, wrong_key):
        leaks = [text[max(0, text.find(key) - 80) :][:200] for text in texts if key in text]
        assert leaks == [], f"{key} leaked: {leaks[:3]}"


def files_under(root: Path) -> list[Path]:
    files = [path for path in root.rglob("*") if path.is_file()]
    assert files, root
    return files


# ---- hostile identifiers --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["x; drop table y", 'x"; drop table y; --', "X", "pg_x", "1x"])
def test_a_hostile_schema_name_never_reaches_the_database(name: str, pg_url: str) -> None:
    with pytest.raises(WarehouseError, match="FOOTBALL_DB_SCHEMA"):
        validate_schema_name(name)
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE IF NOT EXISTS public.y (id int)"))
    try:
        with pytest.raises(WarehouseError, match="not a valid schema name|is reserved"):
            Warehouse(database_url=pg_url, schema_name=name).get_engine()
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT to_regclass('public.y')")).scalar() == "y"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS public.y"))
        engine.dispose()


def test_the_hostile_name_is_refused_with_one_clear_line() -> None:
    with pytest.raises(WarehouseError) as failed:
        validate_schema_name("x; drop table y")
    assert str(failed.value) == (
        "FOOTBALL_DB_SCHEMA='x; drop table y' is not a valid schema name: use lower-case "
        "letters, digits and underscores, starting with a letter (e.g. 'football')."
    )


def closed_port() -> int:
    """A local port nothing listens on: bound by the OS for us, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
