"""`dagster-webserver` for the materialize benchmark: started in its own process group on a free
loopback port, a run launched through its GraphQL API as the UI's Materialize button does."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

# The warehouse step cannot be subset: its five tables (two of them history) go together.
SELECTION = (
    "dim_competitions",
    "dim_teams",
    "fact_competitions",
    "dim_teams_history",
    "competition_membership_history",
    "summary_csv",
)
MODULE = "football_assets.definitions"

LAUNCH = """
mutation Launch($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}
"""
RUN_STATUS = """
query Status($runId: ID!) {
  runOrError(runId: $runId) { __typename ... on Run { status } ... on Error { message } }
}
"""
WORKSPACE = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { name repositories { name } }
          ... on PythonError { message }
        }
      }
    }
  }
}
"""
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def graphql(url: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = requests.post(
        f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60
    )
    answer.raise_for_status()
    body = answer.json()
    if body.get("errors"):
        raise RuntimeError(f"GraphQL error: {body['errors'][0].get('message')}")
    return dict(body["data"])


@contextmanager
def webserver(env: dict[str, str], cwd: Path, timeout: float = 180.0) -> Iterator[dict[str, str]]:
    """`dagster-webserver` on a free loopback port, in its own process group, stopped (the
    whole group: code server and run workers too) however this ends. Yields its URL, code
    location and repository once the code location has loaded."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (cwd / "webserver.log").open("wb")
    args = [sys.executable, "-m", "dagster_webserver", "-m", MODULE, "-h", "127.0.0.1"]
    proc = subprocess.Popen(
        [*args, "-p", str(port)],
        env=env,
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"dagster-webserver exited ({proc.returncode}); see its log")
            if time.monotonic() > deadline:
                raise RuntimeError(f"dagster-webserver did not load {MODULE} in {timeout:.0f} s")
            try:
                workspace = graphql(url, WORKSPACE)["workspaceOrError"]
            except (requests.RequestException, RuntimeError):
                time.sleep(0.5)
                continue
            for entry in workspace.get("locationEntries") or []:
                location = entry.get("locationOrLoadError") or {}
                if location.get("__typename") == "PythonError":
                    raise RuntimeError(f"code location failed: {location.get('message')}")
                if location.get("__typename") == "RepositoryLocation":
                    yield {
                        "url": url,
                        "location": location["name"],
                        "repository": location["repositories"][0]["name"],
                    }
                    return
            time.sleep(0.5)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)
        log.close()


def launch(server: dict[str, str], run_config: dict[str, Any], timeout: float) -> tuple[str, float]:
    """Launch the selection as the UI does; wait for the run to finish. (run id, launched at)."""
    params = {
        "selector": {
            "repositoryLocationName": server["location"],
            "repositoryName": server["repository"],
            "jobName": "__ASSET_JOB",
            "assetSelection": [{"path": [key]} for key in SELECTION],
        },
        "runConfigData": run_config,
        "mode": "default",
        "executionMetadata": {"tags": []},
    }
    launched = time.time()
    answer = graphql(server["url"], LAUNCH, {"executionParams": params})["launchRun"]
    if answer["__typename"] != "LaunchRunSuccess":
        why = answer.get("message") or json.dumps(answer.get("errors"))
        raise RuntimeError(f"launchRun: {answer['__typename']}: {why}")
    run_id = answer["run"]["runId"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = graphql(server["url"], RUN_STATUS, {"runId": run_id})["runOrError"]
        if status.get("status") in FINISHED:
            if status["status"] != "SUCCESS":
                raise RuntimeError(f"run {run_id} launched through GraphQL: {status['status']}")
            return run_id, launched
        time.sleep(0.1)
    raise RuntimeError(f"run {run_id} launched through GraphQL did not finish in {timeout:.0f} s")
