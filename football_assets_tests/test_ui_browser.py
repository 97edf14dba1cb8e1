"""The Dagster UI as its users use it, in a real Chromium driven by Playwright.

`football-assets ui` runs on a free loopback port in an empty folder, as on a fresh clone before
any refresh: it creates the project's instance there and an embedded PostgreSQL. The browser
opens the URL it printed (the asset graph, every group open) and does what a new user does
first and nothing before it: "Materialize all" -> All -> "Launch backfill".
That click works only because `competition_partitions_sensor` (on by default) registered the
`competitions` partitions on its first tick; the test waits for the button, never registers
anything itself. It then checks that every asset is materialized (all 13 partitions of
raw_teams), reads the graph, the checks, the competitions' names beside their partitions, the
summary's metadata, its freshness (evaluated by the daemon's freshness loop) and its lineage.
Screenshots land in test-output/; FOOTBALL_UPDATE_DOCS_IMAGES=1 also copies the ones the docs
show (DOCS_IMAGES) into docs/images/.

Needs /usr/bin/chromium (`apt-get install chromium`): Playwright's own browser downloads are
not used. Without it the test skips, except in CI (CI=true), where it fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Locator, Page, ViewportSize, expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "test-output"
DOCS = REPO / "docs" / "images"
# What the docs show: the README's graph, and docs/ui.md's walk through a first launch.
DOCS_IMAGES = (
    "asset-graph.png",
    "materialize-all.png",
    "backfill-in-progress.png",
    "raw-competitions.png",
    "raw-teams-partition.png",
    "summary-freshness.png",
)

ASSETS = [
    "raw_competitions",
    "raw_teams",
    "dim_competitions",
    "dim_teams",
    "fact_competitions",
    "dim_teams_history",
    "competition_membership_history",
    "summary_csv",
]
HISTORY = {"dim_teams_history", "competition_membership_history"}
PARTITION_COUNT = 13  # competitions in the bundled snapshot
ZERO_TEAMS = "Campeonato Brasileiro Série A"  # competition 2013: no teams in the snapshot
WARNED_FRESHNESS = "Warns if more than 26 hours since last materialization"
# The UI shows the 50 h fail window rounded to whole days.
FAILED_FRESHNESS = "Fails if more than 2 days since last materialization"
SERVER_START_TIMEOUT = 120.0
# From the code location loaded (the daemon starts with it): the partitions sensor ticks at
# once, then every 30 s; three ticks, so a busy machine does not fail the test.
SENSOR_TIMEOUT = 90.0
# A backfill needs three 30 s ticks of the backfill daemon (raw_competitions, raw_teams, the
# rest); with room for a busy machine.
RUN_TIMEOUT = 240.0
# The daemon evaluates freshness every 30 s (Dagster's FRESHNESS_DAEMON_INTERVAL_SECONDS).
FRESHNESS_TIMEOUT = 90.0
UI_TIMEOUT_MS = 30_000
# Wide enough that the graph, zoomed to fit, draws full asset cards (kinds, owner, description).
GRAPH_VIEWPORT: ViewportSize = {"width": 1920, "height": 1080}
TALL_VIEWPORT: ViewportSize = {"width": 1600, "height": 2200}  # the summary, whole

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]

T = TypeVar("T")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class UiServer:
    """A running `football-assets ui`: its URL, its log, its process group, when it started."""

    url: str
    log: Path
    process: subprocess.Popen[bytes]
    started: float  # time.monotonic() when the process was started
    ready: float = 0.0  # time.monotonic() when its code location had loaded
    graph_url: str = ""  # the URL it printed
    dagster_log: Path = Path("/nonexistent")  # dagster dev's output, in the instance

    def log_tail(self, lines: int = 40) -> str:
        """What football-assets ui printed, then the end of Dagster's log (ui.log)."""
        printed = self.log.read_text(encoding="utf-8", errors="replace")
        dagster = (
            self.dagster_log.read_text(encoding="utf-8", errors="replace")
            if (self.dagster_log.exists())
            else ""
        )
        return printed + "\n".join(dagster.splitlines()[-lines:])

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.load(response)
        if answer.get("errors"):
            raise AssertionError(f"GraphQL errors: {answer['errors']}")
        return answer["data"]

    def stop(self) -> None:
        """SIGTERM its group (it then stops dagster dev's, which it started), then SIGKILL."""
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=20)
        # The group may outlive its leader (runs, code servers): make sure it is gone.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def wait_for(
    what: str, probe: Callable[[], T | None], server: UiServer, timeout: float = RUN_TIMEOUT
) -> T:
    """Poll `probe` every half second until it returns something; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"football-assets ui exited while waiting for {what}:\n{server.log_tail()}")
        result = probe()
        if result is not None:
            return result
        time.sleep(0.5)
    pytest.fail(f"Timed out after {timeout:.0f} s waiting for {what}.\n{server.log_tail()}")


def _processes_under(pid: int) -> set[int]:
    """Every process descended from `pid` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


@pytest.fixture
def football_ui(tmp_path: Path) -> Iterator[UiServer]:
    """`football-assets ui` as a new user runs it on a fresh clone, before any refresh.

    Fresh means nothing of a user's: the project's default instance created in the working
    folder by the command itself (its dagster.yaml included), a new embedded PostgreSQL, no
    request budget state (XDG_STATE_HOME), no summary. Sensors, the backfill daemon and
    freshness keep Dagster's defaults, as a user has them.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("FOOTBALL_", "DAGSTER_"))
        and name not in {"DATABASE_URL", "XDG_STATE_HOME", "FRESHNESS_DAEMON_INTERVAL_SECONDS"}
    }
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    OUTPUT.mkdir(exist_ok=True)
    log = OUTPUT / "football-assets-ui.log"
    port = _free_port()
    executable = Path(sys.executable).with_name("football-assets")
    command = [str(executable), "ui", "--port", str(port)]
    started = time.monotonic()
    with log.open("wb") as log_file:
        # cwd outside the repo: no developer's .env (API key, database) leaks into the test.
        process = subprocess.Popen(
            command,
            cwd=tmp_path,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = UiServer(url=f"http://127.0.0.1:{port}", log=log, process=process, started=started)
    server.dagster_log = tmp_path / ".dagster_home" / "ui.log"
    started_processes: set[int] = set()
    try:

        def printed() -> str | None:
            found = re.search(r"http://127\.0\.0\.1:\d+/asset-groups\S*", log.read_text("utf-8"))
            return found[0] if found else None

        server.graph_url = wait_for("the printed URL", printed, server, SERVER_START_TIMEOUT)

        def loaded() -> bool | None:
            try:
                statuses = server.graphql(
                    "{ locationStatusesOrError { ... on WorkspaceLocationStatusEntries"
                    " { entries { name loadStatus } } } }"
                )
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                return None
            entries = statuses["locationStatusesOrError"]["entries"]
            return True if entries and entries[0]["loadStatus"] == "LOADED" else None

        wait_for("the code location to load", loaded, server, SERVER_START_TIMEOUT)
        server.ready = time.monotonic()
        started_processes = _processes_under(process.pid)
        yield server
    finally:
        server.stop()
        # football-assets ui stops what it started; should it not have, nothing outlives us.
        for pid in started_processes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        subprocess.run(
            [str(executable), "db", "stop"], cwd=tmp_path, env=env, capture_output=True, timeout=60
        )


RUNS_QUERY = """
{ runsOrError(limit: 100) { ... on Runs { results {
    runId status tags { key value } assetSelection { path } } } } }
"""


def runs(server: UiServer) -> list[dict[str, Any]]:
    found = server.graphql(RUNS_QUERY)["runsOrError"]["results"]
    for run in found:
        run["tags"] = {tag["key"]: tag["value"] for tag in run["tags"]}
        run["assets"] = {".".join(key["path"]) for key in run["assetSelection"] or []}
    return found


def no_failed_runs(server: UiServer) -> list[dict[str, Any]]:
    found = runs(server)
    failed = [r for r in found if r["status"] in {"FAILURE", "CANCELED"}]
    if failed:
        pytest.fail(
            f"Run(s) failed: {[(r['runId'], sorted(r['assets'])) for r in failed]}; see "
            f"{server.url}/runs/{failed[0]['runId']}\n{server.log_tail()}"
        )
    return found


BACKFILL_QUERY = """
query Backfill($id: String!) { partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { status assetBackfillData { assetBackfillStatuses {
        ... on AssetPartitionsStatusCounts {
            assetKey { path } numPartitionsTargeted numPartitionsMaterialized }
        ... on UnpartitionedAssetStatus { assetKey { path } materialized } } } } } }
"""


def backfill_outcome(server: UiServer, backfill_id: str) -> dict[str, Any] | None:
    """None while the backfill runs; then its status and what it materialized, per asset."""
    no_failed_runs(server)
    backfill = server.graphql(BACKFILL_QUERY, {"id": backfill_id})["partitionBackfillOrError"]
    if backfill["status"] in {"REQUESTED", "CANCELING", "FAILING"}:
        return None
    done: dict[str, Any] = {"status": backfill["status"]}
    for asset in backfill["assetBackfillData"]["assetBackfillStatuses"]:
        name = asset["assetKey"]["path"][-1]
        if "materialized" in asset:
            done[name] = asset["materialized"]
        else:
            done[name] = f"{asset['numPartitionsMaterialized']}/{asset['numPartitionsTargeted']}"
    return done


# --- the browser ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _require_chromium() -> None:
    """Before any server starts: skip without Chromium, but never in CI."""
    if not CHROMIUM.exists():
        reason = (
            f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install chromium`; "
            ".ci/run does) to run the browser test"
        )
        if _in_ci():
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[Page]:
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # fresh: no stored UI settings
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport=GRAPH_VIEWPORT,
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(UI_TIMEOUT_MS)
            expect.set_options(timeout=UI_TIMEOUT_MS)
            yield page
            # What the browser showed last: the first thing to look at when the test failed.
            page.screenshot(path=OUTPUT / "last-page.png")
        finally:
            context.close()


SENSOR_QUERY = """
{ sensorOrError(sensorSelector: {repositoryName: "__repository__",
    repositoryLocationName: "football_assets", sensorName: "competition_partitions_sensor"}) {
    ... on Sensor { sensorState { status ticks(limit: 3) { status skipReason
        error { message } } } } }
  assetNodes(assetKeys: [{path: ["raw_teams"]}]) { partitionKeysByDimension { partitionKeys } } }
"""


def partitions_sensor_report(server: UiServer) -> str:
    """What a failing first click needs explained: the sensor's state and the partitions."""
    data = server.graphql(SENSOR_QUERY)
    state = data["sensorOrError"].get("sensorState") or {}
    keys = [
        k for d in data["assetNodes"][0]["partitionKeysByDimension"] for k in d["partitionKeys"]
    ]
    return (
        f"competition_partitions_sensor is {state.get('status')}, its last ticks: "
        f"{state.get('ticks')}; registered competitions: {keys or 'none'}"
    )


def launch_materialize_all(page: Page, server: UiServer) -> tuple[int, float]:
    """The user's first click: "Materialize all" -> All -> "Launch backfill".

    Dagster preselects no partitions and keeps "Launch backfill" disabled until some are
    picked; "All" picks every registered one. On a fresh instance only the partitions sensor
    registers them, so the dialog is reopened (the graph reloaded, as a user would) until its
    tick has: it never is by the test. Returns the attempts it took and the seconds from
    `football-assets ui` starting to the button seen enabled.
    """
    deadline = server.ready + SENSOR_TIMEOUT
    attempts = 0
    while True:
        attempts += 1
        page.goto(server.graph_url)
        page.get_by_role("button", name="Materialize all").click()
        dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize")
        expect(dialog.get_by_text("Partition selection")).to_be_visible()
        launch = dialog.get_by_role("button", name="Launch backfill")
        selected = dialog.get_by_text(f"{PARTITION_COUNT} partitions selected", exact=True)
        # A click before the partition keys arrived selects nothing: click again.
        for _ in range(3):
            dialog.get_by_role("button", name="All", exact=True).click()
            with contextlib.suppress(AssertionError):
                expect(selected).to_be_visible(timeout=3_000)
                break
        if selected.is_visible() and launch.is_enabled():
            enabled_after = time.monotonic() - server.started
            break
        if time.monotonic() > deadline or server.process.poll() is not None:
            page.screenshot(path=OUTPUT / "materialize-all-disabled.png")
            pytest.fail(
                f'"Launch backfill" did not enable with all {PARTITION_COUNT} competitions '
                f"within {SENSOR_TIMEOUT:.0f} s of the UI loading the code location: "
                f"{partitions_sensor_report(server)}\n{server.log_tail()}"
            )
        dialog.get_by_role("button", name="Cancel").click()
        expect(dialog).to_be_hidden()
        time.sleep(2)  # between attempts: the sensor ticks every 30 s
    page.screenshot(path=OUTPUT / "materialize-all.png")
    launch.click()
    expect(page.get_by_text(re.compile("^Created backfill"))).to_be_visible()
    return attempts, enabled_after


def freshness_status(page: Page) -> Locator:
    """The "Freshness policy" cell of the asset overview's Status row: label and state."""
    return page.get_by_text("Freshness policy", exact=True).first.locator("xpath=..")


def reload_until(page: Page, what: str, condition: Locator, timeout: float) -> None:
    """Reload the page (its refresh, as a user would) until `condition` is visible."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(AssertionError):
            expect(condition).to_be_visible(timeout=5_000)
            return
        if time.monotonic() > deadline:
            page.screenshot(path=OUTPUT / "last-wait.png")
            pytest.fail(f"Timed out after {timeout:.0f} s waiting for {what}")
        page.reload()


def wait_for_materialized_graph(page: Page, shown: Sequence[str] = ASSETS) -> None:
    """Until every card shows its materialization and the graph stopped zooming into place."""
    unpartitioned = len(shown) - 1
    expect(page.get_by_text("Materialized", exact=True)).to_have_count(unpartitioned)
    expect(page.get_by_text("100% filled", exact=True)).to_be_visible()  # raw_teams
    wait_until_still(graph_node(page, "raw_competitions"))


def wait_until_still(locator: Locator, timeout: float = 10.0) -> None:
    """Until the element stops moving (the graph animates its zoom and pan)."""
    previous, deadline = None, time.monotonic() + timeout
    while time.monotonic() < deadline:
        box = locator.bounding_box()
        if box is not None and box == previous:
            return
        previous = box
        time.sleep(0.25)


def zoom_out_to_show(page: Page, first: str, last: str) -> None:
    """Zoom the graph out until the cards of `first` (leftmost) and `last` (rightmost) fit."""
    size = page.viewport_size
    assert size is not None
    graph_left = left_edge(page.get_by_role("button", name="Nearest Neighbors"))
    for _ in range(8):
        wait_until_still(graph_node(page, last))
        left = left_edge(graph_node(page, first))
        right_box = graph_node(page, last).bounding_box()
        assert right_box is not None
        # The card is wider than its title: keep a margin on both sides.
        if left > graph_left + 50 and right_box["x"] + 4 * right_box["width"] < size["width"]:
            return
        page.get_by_role("button", name="zoom_out").click()


def left_edge(locator: Locator) -> float:
    box = locator.bounding_box()
    assert box is not None, f"{locator} is not on screen"
    return box["x"]


def graph_node(page: Page, name: str) -> Locator:
    """An asset's box in the graph (its title is the asset name in monospace)."""
    return page.get_by_text(name, exact=True).last


def test_first_click_materializes_everything_and_freshness_shows(
    football_ui: UiServer, browser_page: Page
) -> None:
    page, server = browser_page, football_ui
    started = time.monotonic()
    # Fresh: nothing ran, so whatever registers the partitions below is not a run of ours.
    assert runs(server) == [], "the instance is not fresh"

    # 1. The printed URL: the asset graph, three layers left to right, every group open with
    # every asset and its kinds, without touching a setting (a fresh browser profile).
    assert server.graph_url.startswith(f"{server.url}/asset-groups")
    page.goto(server.graph_url)
    if server.graphql("{ shouldShowNux }")["shouldShowNux"]:
        # A fresh instance on localhost greets the user with "Join the Dagster community" a
        # second after the first page loads; "Skip" dismisses it for good (in the instance).
        expect(page.get_by_text("Join the Dagster community")).to_be_visible()
        page.get_by_role("button", name="Skip", exact=True).click()
        expect(page.get_by_text("Join the Dagster community")).to_be_hidden()
    for group in ("ingestion", "warehouse", "reporting"):
        expect(page.get_by_text(group, exact=True).first).to_be_visible()
    for name in ASSETS:
        expect(graph_node(page, name)).to_be_visible()
    expect(page.get_by_text("Python", exact=True).first).to_be_visible()
    expect(page.get_by_text("Postgres", exact=True).first).to_be_visible()
    wait_until_still(graph_node(page, "summary_csv"))
    page.screenshot(path=OUTPUT / "asset-graph-fresh.png")
    x = {name: left_edge(graph_node(page, name)) for name in ASSETS}
    assert (
        x["raw_competitions"] < x["dim_competitions"] < x["fact_competitions"] < x["summary_csv"]
    ), x
    assert x["raw_teams"] < x["dim_teams"], x

    # 2. Never materialized: the summary's freshness policy is shown, not yet evaluated.
    page.goto(f"{server.url}/assets/summary_csv")
    expect(freshness_status(page)).to_have_text(re.compile(r"Not evaluated$"))
    expect(page.get_by_text("No materializations", exact=True)).to_be_visible()
    expect(page.get_by_text(WARNED_FRESHNESS, exact=True)).to_be_visible()
    expect(page.get_by_text(FAILED_FRESHNESS, exact=True)).to_be_visible()

    # 3. The first click, and nothing before it: "Materialize all" -> All -> "Launch backfill".
    before = time.time()
    attempts, enabled_after = launch_materialize_all(page, server)
    launched = time.monotonic()
    backfill_id = wait_for(
        "the backfill to be created",
        lambda: next(
            (
                b["id"]
                for b in server.graphql(
                    "{ partitionBackfillsOrError { ... on PartitionBackfills"
                    " { results { id timestamp } } } }"
                )["partitionBackfillsOrError"]["results"]
                if b["timestamp"] >= before - 1
            ),
            None,
        ),
        server,
    )
    # What the user sees while it runs (about 1-2 minutes: the backfill daemon's 30 s steps).
    page.goto(f"{server.url}/runs/b/{backfill_id}")
    expect(page.get_by_text("In progress", exact=True).first).to_be_visible()
    page.screenshot(path=OUTPUT / "backfill-in-progress.png")
    outcome = wait_for(
        f"backfill {backfill_id} to finish", lambda: backfill_outcome(server, backfill_id), server
    )
    waited = time.monotonic() - launched
    # Partitioned raw_teams (each partition reported by the asset itself) and the unpartitioned
    # assets, the three tables from their one step, all in the one backfill.
    assert outcome == {
        "status": "COMPLETED_SUCCESS",
        **{name: True for name in ASSETS},
        "raw_teams": f"{PARTITION_COUNT}/{PARTITION_COUNT}",
    }, outcome
    # What the user sees of it: the backfill page, every asset done.
    page.goto(f"{server.url}/runs/b/{backfill_id}")
    expect(page.get_by_text("Succeeded", exact=True).first).to_be_visible()
    expect(page.get_by_text("100% completed")).to_have_count(len(ASSETS))

    # 4. Readable names. raw_competitions: the table of key, id, code, name and teams.
    page.goto(f"{server.url}/assets/raw_competitions")
    # The overview lists it as "competitions [Show Markdown]"; the click shows the table.
    row = page.get_by_role("row").filter(
        has=page.get_by_role("cell", name="competitions", exact=True)
    )
    row.get_by_text("[Show Markdown]").click()
    table = page.locator("table").filter(has_text="teams (last fetched)").last
    expect(table).to_be_visible()
    premier_league = table.locator("tr").filter(has_text="Premier League")
    expect(premier_league.get_by_text("2021", exact=True)).to_be_visible()
    expect(premier_league.get_by_text("PL", exact=True).first).to_be_visible()
    expect(premier_league.get_by_role("link")).to_have_attribute(
        "href", re.compile(r"/assets/raw_teams\?view=partitions&partition=PL$")
    )
    expect(table.locator("tr").filter(has_text=ZERO_TEAMS).first).to_be_visible()
    page.screenshot(path=OUTPUT / "raw-competitions.png")
    # raw_teams' partitions, by code; BSA's metadata names it and says what its count counts.
    page.goto(f"{server.url}/assets/raw_teams?view=partitions&partition=BSA")
    expect(page.get_by_text(f"{PARTITION_COUNT} Partitions Selected")).to_be_visible()
    for key in ("WC", "BSA", "CLI"):
        expect(page.get_by_text(key, exact=True).first).to_be_visible()
    expect(page.get_by_text("teams_in_this_competition", exact=True)).to_be_visible()
    expect(page.get_by_text("competition_code", exact=True)).to_be_visible()
    expect(page.get_by_text("BSA", exact=True).first).to_be_visible()
    expect(page.get_by_text(ZERO_TEAMS, exact=True).first).to_be_visible()
    page.screenshot(path=OUTPUT / "raw-teams-partition.png")

    # The zero-team competition is a WARN of raw_teams' check, naming it.
    page.goto(f"{server.url}/assets/raw_teams?view=checks")
    expect(page.get_by_text(f"Zero teams: {ZERO_TEAMS} (BSA)")).to_be_visible()

    # 5. summary_csv's metadata: the summary itself, as markdown, zero-team competition included.
    page.set_viewport_size(TALL_VIEWPORT)
    page.goto(f"{server.url}/assets/summary_csv")
    # What a user sees first, minutes after the click (for the log: it depends on when the
    # daemon's 30 s freshness loop last ran).
    expect(freshness_status(page)).to_have_text(re.compile(r"^Freshness policy\s*\S"))
    first_seen = freshness_status(page).inner_text().replace("Freshness policy", "").strip()
    metadata = page.get_by_text("zero_team_competitions", exact=True)
    expect(metadata).to_be_visible()
    expect(page.get_by_text(f"{ZERO_TEAMS} (2013)", exact=True)).to_be_visible()
    summary_table = (
        page.locator("table")
        .filter(has_text="number_of_teams")
        .filter(has_text="UEFA Champions League")
    )
    expect(summary_table.last).to_be_visible()
    expect(summary_table.last.get_by_text(ZERO_TEAMS, exact=True)).to_be_visible()

    # 6. Its freshness: "Passing" once the daemon evaluated the new materialization (every
    # 30 s; until then the UI still says "Not evaluated").
    reload_until(
        page,
        "summary_csv's freshness to show Passing",
        freshness_status(page).filter(has_text=re.compile(r"Passing$")),
        FRESHNESS_TIMEOUT,
    )
    expect(page.get_by_text(re.compile(r"^Last materialized .+ ago$"))).to_be_visible()
    expect(page.get_by_text(WARNED_FRESHNESS, exact=True)).to_be_visible()
    expect(page.get_by_text(FAILED_FRESHNESS, exact=True)).to_be_visible()
    page.screenshot(path=OUTPUT / "summary-metadata.png")
    # The top of the page: the Status row and the Freshness policy panel, for docs/ui.md.
    page.screenshot(
        path=OUTPUT / "summary-freshness.png",
        clip={"x": 0, "y": 0, "width": TALL_VIEWPORT["width"], "height": 900},
    )

    # 7. The lineage of summary_csv: the whole upstream chain, back to the raw API answers.
    page.set_viewport_size(GRAPH_VIEWPORT)
    page.get_by_role("tab", name="Lineage").click()
    page.get_by_role("button", name="Upstream").click()
    page.get_by_role("button", name="All", exact=True).click()  # graph depth: all the way up
    expect(page).to_have_url(re.compile(r"lineageScope=upstream"))
    expect(page.get_by_text("Not all upstream")).to_have_count(0)
    upstream = [name for name in ASSETS if name not in HISTORY]  # history: beside, not upstream
    for name in upstream:
        expect(graph_node(page, name)).to_be_visible()
    wait_for_materialized_graph(page, upstream)
    zoom_out_to_show(page, "raw_competitions", "summary_csv")
    page.screenshot(path=OUTPUT / "summary-lineage.png")

    # 8. The printed URL again, now materialized: the graph the README shows, as the user has
    # it (no facet or setting changed).
    page.goto(server.graph_url)
    wait_for_materialized_graph(page)
    page.screenshot(path=OUTPUT / "asset-graph.png")
    if os.environ.get("FOOTBALL_UPDATE_DOCS_IMAGES") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        for name in DOCS_IMAGES:
            shutil.copyfile(OUTPUT / name, DOCS / name)

    print(
        f"browser test: {time.monotonic() - started:.0f} s in the UI; 'Launch backfill' "
        f"enabled at try {attempts}, {enabled_after:.0f} s after `football-assets ui` started; "
        f"'Materialize all' to Succeeded: {waited:.0f} s; "
        f"summary_csv's freshness right after the backfill: {first_seen}"
    )
