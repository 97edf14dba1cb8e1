"""What building and comparing rows (and the history tables) cost, before and after, in one sitting.
`python -m benchmarks.change_cost --code /path/to/old/checkout --code . --scale 4000x50`: the
warehouse load of unchanged rows in new bytes, timed per checkout (`measure`)."""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def worker(url: str, schema: str, scale: str, rounds: int) -> dict[str, list[float]]:
    """Runs inside the checkout measured (PYTHONPATH): per round, the same new answers loaded
    into two schemas, the tables alone and with the history, in alternating order."""
    from benchmarks.synthetic import synthetic_data
    from football_assets.assets import warehouse as assets
    from football_assets.resources.api_answers import ApiResponse
    from football_assets.resources.raw_records import RawRecord
    from football_assets.resources.warehouse import Warehouse
    from football_assets.resources.warehouse_sql import RawPartitions, RowsFromRaw

    competitions, teams_each = (int(n) for n in scale.split("x"))
    data = synthetic_data(competitions, teams_each)
    stores = {
        "tables": Warehouse(database_url=url, schema_name=f"{schema}_t"),
        "history": Warehouse(database_url=url, schema_name=f"{schema}_h"),
    }
    keys = [str(c["id"]) for c in data.competitions]

    def response(payload: bytes) -> ApiResponse:
        return ApiResponse(
            endpoint="/x",
            url="http://x",
            status=200,
            payload=json.loads(payload),
            size_bytes=len(payload),
            fetched_at=datetime.now(UTC),
            source="live",
        )

    def fetch(round_: int) -> dict[str, Any]:
        for c in data.competitions:
            (c.setdefault("currentSeason", {}) or {})["currentMatchday"] = round_
        for season in data.seasons.values():
            season["currentMatchday"] = round_
        listing = response(data.render_competitions())
        teams = [response(data.render_teams(k)[1]) for k in keys]
        for store in stores.values():
            store.append_raw("raw_competitions", "r", [RawRecord.from_response("", listing)])
            records = (RawRecord.from_response(k, t) for k, t in zip(keys, teams, strict=True))
            store.append_raw("raw_teams", "r", records)
        return listing.payload

    def load(variant: str, listing: dict[str, Any]) -> float:
        store = stores[variant]
        source = RawPartitions("raw_teams", tuple(keys))
        if hasattr(source, "competitions"):  # read per competition id (code keys), since keys
            source = source.competitions({k: int(k) for k in keys})
        loads: list[tuple[str, Any]] = [
            ("dim_competitions", assets.competition_rows(listing)),
            ("dim_teams", RowsFromRaw(assets.team_rows_sql(store.table("dim_teams")), source)),
            ("fact_competitions", RowsFromRaw(assets.MEMBERSHIP_ROWS_SQL, source)),
        ]
        kwargs: dict[str, Any] = {}
        accepted = inspect.signature(store.load_tables).parameters
        if "inputs_version" in accepted:
            kwargs = {"inputs_version": "benchmark", "run_id": "benchmark"}
        if variant == "history" and "history_columns" in accepted:
            kwargs["history_columns"] = assets.team_columns(store.table("dim_teams"))
        started = time.perf_counter()
        store.load_tables(loads, **kwargs)
        return time.perf_counter() - started

    first = fetch(1)  # cold: the tables fill
    for variant in stores:
        load(variant, first)
    times: dict[str, list[float]] = {variant: [] for variant in stores}
    for round_ in range(2, rounds + 2):
        listing = fetch(round_)
        order = list(stores) if round_ % 2 else list(reversed(stores))
        for variant in order:
            times[variant].append(load(variant, listing))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", action="append", default=[], help="checkout (repeatable)")
    parser.add_argument("--scale", default="4000x50")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        url, schema, scale, rounds = args.worker
        print(json.dumps(worker(url, schema, scale, int(rounds))))
        return
    from football_assets.resources.postgres_server import (
        start_embedded_postgres,
        stop_embedded_postgres,
    )

    pgdata = Path(tempfile.mkdtemp()) / "pg"
    url = args.database_url or start_embedded_postgres(pgdata)
    try:
        measure(args, url)
    finally:
        if not args.database_url:
            stop_embedded_postgres(pgdata)


def measure(args: argparse.Namespace, url: str) -> None:
    """For each checkout, in a subprocess importing that checkout, synthetic answers are stored
    and loaded once; then, `--repeat` times, the same answers with only `currentMatchday`
    advanced (new bytes, equal rows) are stored and the warehouse load is timed: the step's own
    work, without Dagster's fixed cost, so the ratio is the stricter one. The history's cost is
    the median of each round's pair (tables alone, with the history), timed back to back."""
    print(f"warehouse load, answers changed only in bytes, {args.scale}, {args.repeat} rounds")
    for n, code in enumerate(args.code or ["."]):
        env = {**os.environ, "PYTHONPATH": str(Path(code).resolve())}
        # As a script: `benchmarks` and `football_assets` then come from the checkout measured.
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", url]
        command += [f"bench_changes_{n}", args.scale, str(args.repeat)]
        done = subprocess.run(
            command, env=env, cwd=Path(code).resolve(), check=True, capture_output=True, text=True
        )
        times = json.loads(done.stdout.strip().splitlines()[-1])
        tables, history = times["tables"], times["history"]
        ratios = [h / t for t, h in zip(tables, history, strict=True)]
        print(
            f"{code:40} tables {statistics.median(tables):5.2f} s  + history "
            f"{statistics.median(history):5.2f} s  history's cost (median of pairs) "
            f"{statistics.median(ratios) - 1:+.0%}  pairs {[round(r - 1, 2) for r in ratios]}"
        )


if __name__ == "__main__":
    from football_assets.cli.stop import Stopped, stopping

    try:
        with stopping():
            main()
    except Stopped as stopped:  # a worker is killed with it; the PostgreSQL it started stopped
        print(f"change_cost: {stopped.line()}; only the rows above were measured", file=sys.stderr)
        sys.exit(stopped.exit_code)
