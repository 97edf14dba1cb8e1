"""The docker-compose topology, as processes: code server, webserver and daemon on Postgres.

No Docker engine runs here, so this starts what the three Dagster containers run, with the
commands of docker-compose.yml and the instance config of deploy/dagster.yaml, against a real
(embedded) PostgreSQL that holds Dagster's storage in a database of its own and the warehouse
in a schema of another. The graph is then driven the way an operator drives it: runs launched
through the webserver's GraphQL API, the daemon's queue starting them, and its automation
sensor rebuilding the tables and the report once the raw data changed.

The instance config differs from deploy/dagster.yaml only where a container differs from this
machine (`deployment_instance_config` lists and checks each difference).
"""

from __future__ import annotations

import copy
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
import yaml

from football_assets.resources.warehouse import Warehouse
from football_assets_tests.conftest import TEST_KEY, TEST_LIMIT, TEST_WINDOW
from test_support.api_double import FootballApiDouble

pytestmark = [pytest.mark.deployment, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
DEPLOY_INSTANCE = ROOT / "deploy" / "dagster.yaml"
BIN = Path(sys.executable).parent
LOCATION = "football_assets"
REPOSITORY = "__repository__"
AUTOMATION_SENSOR = "default_automation_condition_sensor"
DOWNSTREAM = ["dim_competitions", "dim_teams", "fact_competitions", "summary_csv"]

STARTUP_TIMEOUT = 60.0
RUN_TIMEOUT = 60.0
# The automation sensor ticks every 30 s; a tick and the run it starts fit well in 90 s.
AUTOMATION_TIMEOUT = 90.0
STOP_TIMEOUT = 15.0


# ---- the instance: deploy/dagster.yaml, adapted to a machine without Docker ----------------


def deployment_instance_config(socket_dir: str, home: Path) -> dict[str, Any]:
    """deploy/dagster.yaml with exactly these changes, each because of this machine:

    - run_launcher: DefaultRunLauncher (runs as processes of the code server), since there is
      no Docker engine for DockerRunLauncher;
    - storage: the same `postgres_db` settings from the same variables, plus `params.host`, as
      the embedded server listens on a unix socket only;
    - compute logs and artifacts: under this test's DAGSTER_HOME instead of the image's path.

    python_logs is used as shipped: the JSON lines the test reads come from the file's own
    handler, so a deploy/dagster.yaml without it fails the test.
    """
    config = yaml.safe_load(DEPLOY_INSTANCE.read_text(encoding="utf-8"))
    adapted = copy.deepcopy(config)
    adapted["run_launcher"] = {"module": "dagster", "class": "DefaultRunLauncher"}
    adapted["storage"]["postgres"]["postgres_db"]["params"] = {"host": socket_dir}
    adapted["compute_logs"]["config"]["base_dir"] = str(home / "storage" / "compute_logs")
    adapted["local_artifact_storage"]["config"]["base_dir"] = str(home / "storage")

    changed = {key for key in config if config[key] != adapted[key]}
    assert changed <= {
        "run_launcher",
        "storage",
        "compute_logs",
        "local_artifact_storage",
    }
    assert config["run_launcher"]["class"] == "DockerRunLauncher"
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert set(config["storage"]) == {"postgres"}
    return adapted


# ---- processes -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        """SIGTERM to its process group (it and the runs it spawned), SIGKILL if it lingers."""
        if self.process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, STOP_TIMEOUT)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue


class Topology:
    """The three Dagster services; every one is stopped on exit, whatever happened."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir, self.env = workdir, env
        self.services: list[Service] = []

    def start(self, name: str, *args: str) -> Service:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(BIN / args[0]), *args[1:]],
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, stopped as one
            )
        service = Service(name, process, log)
        self.services.append(service)
        return service

    def wait_until_healthy(self, grpc_port: int) -> None:
        """docker-compose.yml's healthcheck of the code server, polled."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            self.check_alive()
            probe = subprocess.run(
                [str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(grpc_port)],
                env=self.env,
                capture_output=True,
                timeout=30,
            )
            if probe.returncode == 0:
                return
            time.sleep(0.5)
        pytest.fail(f"The code server never became healthy.\n{self.logs()}")

    def check_alive(self) -> None:
        for service in self.services:
            if service.process.poll() is not None:
                pytest.fail(
                    f"{service.name} exited with {service.process.returncode}:\n"
                    f"{service.output()[-3000:]}"
                )

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {s.name} ---\n{s.output()[-4000:]}" for s in self.services)


# ---- the webserver's GraphQL API ------------------------------------------------------------


class GraphQL:
    def __init__(self, url: str, topology: Topology) -> None:
        self.url, self.topology = url, topology
        self.session = requests.Session()

    def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        response = self.session.post(
            self.url, json={"query": query, "variables": variables}, timeout=30
        )
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def wait_for(
        self, what: str, probe: Callable[[], Any], timeout: float, interval: float = 0.5
    ) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.topology.check_alive()
            try:
                found = probe()
            except requests.ConnectionError:
                found = None
            if found:
                return found
            time.sleep(interval)
        pytest.fail(f"Timed out after {timeout:.0f} s waiting for {what}.\n{self.topology.logs()}")

    def launch(self, assets: list[str], tags: dict[str, str]) -> str:
        data = self(
            LAUNCH_RUN,
            params={
                "selector": {
                    "repositoryLocationName": LOCATION,
                    "repositoryName": REPOSITORY,
                    "jobName": "__ASSET_JOB",
                    "assetSelection": [{"path": [name]} for name in assets],
                },
                "runConfigData": {},
                "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
            },
        )["launchRun"]
        assert data["__typename"] == "LaunchRunSuccess", data
        return str(data["run"]["runId"])

    def run_status(self, run_id: str) -> str | None:
        run = self(RUN_STATUS, runId=run_id)["runOrError"]
        return run.get("status")

    def wait_for_success(self, run_id: str, timeout: float = RUN_TIMEOUT) -> None:
        def finished() -> str | None:
            status = self.run_status(run_id)
            return status if status in {"SUCCESS", "FAILURE", "CANCELED"} else None

        status = self.wait_for(f"run {run_id}", finished, timeout)
        assert status == "SUCCESS", f"run {run_id} ended {status}\n{self.topology.logs()}"


LOCATION_STATUS = """
query { workspaceOrError { __typename ... on Workspace { locationEntries {
  name locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""
SENSOR_TICKS = """
query ($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) {
  __typename ... on Sensor { sensorState { status ticks(limit: 1) { status } } } } }
"""
LAUNCH_RUN = """
mutation ($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename
  ... on LaunchRunSuccess { run { runId } }
  ... on PythonError { message }
  ... on InvalidSubsetError { message }
  ... on RunConfigValidationInvalid { errors { message } } } }
"""
RUN_STATUS = """
query ($runId: ID!) { runOrError(runId: $runId) {
  __typename ... on Run { status } } }
"""
RUN_TAGS = """
query ($runId: ID!) { runOrError(runId: $runId) { ... on Run { tags { key value } } } }
"""
PARTITION_KEYS = """
query ($path: [String!]!) { assetNodeOrError(assetKey: {path: $path}) {
  __typename ... on AssetNode { partitionKeys } } }
"""
CHECK_EXECUTION = """
query ($path: [String!]!, $name: String!) {
  assetCheckExecutions(assetKey: {path: $path}, checkName: $name, limit: 1) { runId status } }
"""
INSTIGATORS = """
query ($selector: RepositorySelector!) {
  sensorsOrError(repositorySelector: $selector) {
    ... on Sensors { results { id name sensorState { status } } } }
  schedulesOrError(repositorySelector: $selector) {
    ... on Schedules { results { id name scheduleState { status } } } } }
"""
STOP_SENSOR = """
mutation ($id: String!) { stopSensor(id: $id) {
  __typename ... on StopSensorMutationResult { instigationState { status } }
  ... on PythonError { message } } }
"""
START_SCHEDULE = """
mutation ($selector: ScheduleSelector!) { startSchedule(scheduleSelector: $selector) {
  __typename ... on ScheduleStateResult { scheduleState { status } }
  ... on PythonError { message } } }
"""
STOP_SCHEDULE = """
mutation ($id: String!) { stopRunningSchedule(id: $id) {
  __typename ... on ScheduleStateResult { scheduleState { status } }
  ... on PythonError { message } } }
"""
LATEST_MATERIALIZATION = """
query ($path: [String!]!) { assetOrError(assetKey: {path: $path}) {
  __typename ... on Asset { assetMaterializations(limit: 1) { runId } } } }
"""


# ---- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def dagster_database(pg_url: str) -> Iterator[str]:
    """A database of its own for Dagster's runs, events and schedules (the warehouse's schema
    is in the `postgres` database), dropped afterwards."""
    name = f"dagster_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield name
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture
def deployment(
    tmp_path: Path,
    pg_url: str,
    dagster_database: str,
    schema: str,
    api_double: FootballApiDouble,
) -> Iterator[tuple[GraphQL, Path, Topology]]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    url = sa.make_url(pg_url)
    socket_dir = str(url.query["host"])
    instance_config = deployment_instance_config(socket_dir, home)
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_config), encoding="utf-8")

    grpc_port, web_port = free_port(), free_port()
    # workspace.docker.yaml, pointed at this machine's code server.
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        yaml.safe_dump(
            {
                "load_from": [
                    {
                        "grpc_server": {
                            "host": "127.0.0.1",
                            "port": grpc_port,
                            "location_name": LOCATION,
                        }
                    }
                ]
            }
        ),
        encoding="utf-8",
    )
    output_dir = tmp_path / "output"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FOOTBALL_", "DAGSTER_")) and k != "DATABASE_URL"
    }
    env.update(
        {
            # The variables deploy/dagster.yaml reads, as docker-compose.yml sets them.
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_USERNAME": str(url.username or "postgres"),
            "DAGSTER_PG_PASSWORD": str(url.password or ""),
            "DAGSTER_PG_HOST": "localhost",  # the socket in params.host takes precedence
            "DAGSTER_PG_DB": dagster_database,
            "DAGSTER_PG_PORT": str(url.port or 5432),
            # The application: the live client against the loopback API, the warehouse schema.
            "DATABASE_URL": pg_url,
            "FOOTBALL_DB_SCHEMA": schema,
            "FOOTBALL_OUTPUT_DIR": str(output_dir),
            "FOOTBALL_DATA_API_KEY": TEST_KEY,
            "FOOTBALL_DATA_API_URL": api_double.base_url,
            "FOOTBALL_DATA_REQUESTS_PER_MINUTE": str(TEST_LIMIT),
            "FOOTBALL_DATA_RATE_WINDOW_SECONDS": str(TEST_WINDOW),
            "FOOTBALL_LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
        }
    )

    topology = Topology(tmp_path, env)
    try:
        # The commands of docker-compose.yml, on loopback ports.
        topology.start(
            "code_server",
            "dagster",
            "code-server",
            "start",
            "-h",
            "127.0.0.1",
            "-p",
            str(grpc_port),
            "-m",
            "football_assets.definitions",
        )
        # As compose's depends_on/healthcheck: the others start once the code server answers.
        topology.wait_until_healthy(grpc_port)
        topology.start(
            "webserver",
            "dagster-webserver",
            "-h",
            "127.0.0.1",
            "-p",
            str(web_port),
            "-w",
            str(workspace),
        )
        topology.start("daemon", "dagster-daemon", "run", "-w", str(workspace))
        graphql = GraphQL(f"http://127.0.0.1:{web_port}/graphql", topology)
        yield graphql, output_dir, topology
    finally:
        topology.stop()


# ---- the test -------------------------------------------------------------------------------


def test_the_deployment_materializes_the_full_graph_through_graphql(
    deployment: tuple[GraphQL, Path, Topology], pg_url: str, schema: str
) -> None:
    graphql, output_dir, topology = deployment
    started = time.monotonic()

    def location_loaded() -> bool:
        data = graphql(LOCATION_STATUS)["workspaceOrError"]
        entries = data.get("locationEntries") or []
        loaded = [e for e in entries if e["name"] == LOCATION]
        if not loaded or loaded[0]["locationOrLoadError"] is None:
            return False
        state = loaded[0]["locationOrLoadError"]
        assert state["__typename"] == "RepositoryLocation", state
        return True

    graphql.wait_for("the code location to load", location_loaded, STARTUP_TIMEOUT)

    # The automation sensor is on by default; its first tick only records where things stand,
    # so wait for it before changing anything it should react to.
    selector = {
        "repositoryLocationName": LOCATION,
        "repositoryName": REPOSITORY,
        "sensorName": AUTOMATION_SENSOR,
    }

    def automation_ticked() -> bool:
        sensor = graphql(SENSOR_TICKS, selector=selector)["sensorOrError"]
        assert sensor["__typename"] == "Sensor", sensor
        assert sensor["sensorState"]["status"] == "RUNNING"
        return bool(sensor["sensorState"]["ticks"])

    graphql.wait_for("the automation sensor's first tick", automation_ticked, STARTUP_TIMEOUT)

    # 1. The competition list: registers the 13 partitions.
    api = {"football/api": "true"}
    graphql.wait_for_success(graphql.launch(["raw_competitions"], api))
    keys = graphql(PARTITION_KEYS, path=["raw_teams"])["assetNodeOrError"]["partitionKeys"]
    assert len(keys) == 13 and keys[0] == "WC" and keys[-1] == "CLI"  # codes, in id order

    # 2. Every competition's teams: one run over the whole range (single-run backfill policy).
    range_tags = {
        **api,
        "dagster/asset_partition_range_start": keys[0],
        "dagster/asset_partition_range_end": keys[-1],
    }
    graphql.wait_for_success(graphql.launch(["raw_teams"], range_tags))

    # 3. The daemon's automation sensor sees both raw assets' data versions change and rebuilds
    # the tables and the report in one run.
    def summary_run() -> str | None:
        asset = graphql(LATEST_MATERIALIZATION, path=["summary_csv"])["assetOrError"]
        found = asset.get("assetMaterializations") or []
        return found[0]["runId"] if found else None

    run_id = graphql.wait_for("automation to materialize summary_csv", summary_run, 90.0)
    graphql.wait_for_success(run_id)
    tags = {t["key"]: t["value"] for t in graphql(RUN_TAGS, runId=run_id)["runOrError"]["tags"]}
    assert tags.get("dagster/from_automation_condition") == "true", tags
    for name in DOWNSTREAM:
        latest = graphql(LATEST_MATERIALIZATION, path=[name])["assetOrError"]
        assert latest["assetMaterializations"][0]["runId"] == run_id, name

    # The checks rode along with the automated run (they have no condition of their own).
    check = graphql(CHECK_EXECUTION, path=["summary_csv"], name="summary_has_every_competition")
    assert check["assetCheckExecutions"][0]["runId"] == run_id
    assert check["assetCheckExecutions"][0]["status"] == "SUCCEEDED"

    # The warehouse and the CSV hold the snapshot's answer.
    warehouse = Warehouse(database_url=pg_url, schema_name=schema)
    assert warehouse.count_rows("dim_competitions") == 13
    assert warehouse.count_rows("dim_teams") == 226
    assert warehouse.count_rows("fact_competitions") == 264
    with (output_dir / "summary.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 13
    serie_a = [r for r in rows if r["competition_id"] == "2013"]
    assert serie_a and serie_a[0]["number_of_teams"] == "0"
    assert serie_a[0]["competition_name"] == "Campeonato Brasileiro Série A"

    # Run logs reached stdout as JSON lines naming their run and step (FOOTBALL_LOG_FORMAT=json).
    lines = [line for line in topology.services[0].output().splitlines() if line.startswith("{")]
    events = [json.loads(line) for line in lines]
    assert any(
        e["run_id"] == run_id
        and e.get("step_key") == "summary_csv"
        and e["message"].startswith("Wrote 13 competitions")
        for e in events
        if "run_id" in e
    ), topology.logs()
    assert all(TEST_KEY not in line for line in lines)

    # All automation shows with its default state and toggles as the UI's switches do.
    repository = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
    listed = graphql(INSTIGATORS, selector=repository)
    sensors = {s["name"]: s for s in listed["sensorsOrError"]["results"]}
    schedules = {s["name"]: s for s in listed["schedulesOrError"]["results"]}
    assert {n: s["sensorState"]["status"] for n, s in sensors.items()} == {
        AUTOMATION_SENSOR: "RUNNING",
        # Registers the competitions on a fresh instance, so "Materialize all" works at once.
        "competition_partitions_sensor": "RUNNING",
        "new_competitions_sensor": "STOPPED",
    }
    assert schedules["daily_refresh_schedule"]["scheduleState"]["status"] == "STOPPED"
    stopped = graphql(STOP_SENSOR, id=sensors[AUTOMATION_SENSOR]["id"])["stopSensor"]
    assert stopped["instigationState"]["status"] == "STOPPED", stopped
    schedule = {**repository, "scheduleName": "daily_refresh_schedule"}
    started_schedule = graphql(START_SCHEDULE, selector=schedule)["startSchedule"]
    assert started_schedule["scheduleState"]["status"] == "RUNNING", started_schedule
    stopped_schedule = graphql(STOP_SCHEDULE, id=schedules["daily_refresh_schedule"]["id"])
    assert stopped_schedule["stopRunningSchedule"]["scheduleState"]["status"] == "STOPPED"
    assert time.monotonic() - started < 180
