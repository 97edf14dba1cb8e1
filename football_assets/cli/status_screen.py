"""The one screen of `football-assets status` (`status.collect` gathers it)."""

from __future__ import annotations

from football_assets.status import Status


def _utc(iso: str) -> str:
    return iso.replace("T", " ").replace("+00:00", " UTC")


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} days ago"


def render(status: Status) -> list[str]:
    """The one screen of `football-assets status`, as lines."""
    lines = [f"Warehouse   {status.warehouse}, schema {status.schema}: {status.database}"]
    if status.embedded_pid:
        lines[-1] += f" (pid {status.embedded_pid})"
    if status.rows is not None:
        counts = ", ".join(
            f"{name}={'not created' if n is None else n}" for name, n in status.rows.items()
        )
        lines.append(f"Rows        {counts}")
    else:
        lines.append("Rows        unknown while the database is not reachable")
    lines.append(f"Dagster     {status.dagster_home}: {status.instance}")
    rows = [("asset", "last materialized", "from", "freshness")]
    for a in status.assets:
        when = (
            f"{_utc(a.last_materialized)} ({_ago(a.age_seconds)})"
            if a.last_materialized
            else "never"
        )
        if a.freshness == "NOT_APPLICABLE":
            fresh = "no policy"
        else:
            fresh = f"{a.freshness} ({a.freshness_policy})"
            if a.freshness_recorded and a.freshness_recorded != a.freshness:
                fresh += f"; Dagster's daemon last recorded {a.freshness_recorded}"
        name = f"{a.asset} ({a.partitions})" if a.partitions else a.asset
        rows.append((name, when, a.source or "", fresh))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines.append("")
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
        lines.append("  ".join([*cells, row[3]]))
    lines.append("Freshness: each asset's FreshnessPolicy applied to its last materialization,")
    lines.append("as Dagster's evaluator does (its daemon records a state only while it runs).")
    changes = [
        f"{a.asset} +{c['inserted']} ~{c['updated']} -{c['deleted']}"
        for a in status.assets
        if (c := a.last_change) is not None
    ]
    if changes:
        # Tables record a materialization only when their rows change: this is the last change.
        lines.append(f"Last change {', '.join(changes)} (rows inserted ~updated -deleted)")
    lines.append("")
    zero = status.zero_team_competitions
    if zero is None:
        lines.append("Zero teams  unknown (no warehouse to read, no summary yet)")
    else:
        note = "" if status.zero_teams_from == "warehouse" else f" (from {status.zero_teams_from})"
        lines.append(f"Zero teams  {', '.join(zero) or 'none'}{note}")
    if status.summary:
        lines.append(f"Summary     {status.summary}")
    api = status.api
    if api.get("source") == "live":
        lines.append(f"API         live {api['url']}, budget {api['configured']}")
        problem = api.get("problem")
        if problem and problem in api["budget"]:  # nothing could be read: the problem says why
            lines.append(f"API budget  {api['budget']}")
        else:
            lines.append(f"API budget  {api['budget']} (as the server last said)")
            if problem:  # read, but the next refresh would stop there
                lines.append(f"            {problem}")
    else:
        lines.append("API         offline snapshot (no FOOTBALL_DATA_API_KEY): no request budget")
    last = api.get("last_answer")
    if last:
        reset = last.get("reset_seconds")
        lines.append(
            f"            the last answer stored ({_utc(last['at'])}) said "
            f"{last['requests_available']} requests remained"
            + (f", resetting {reset} s later" if reset is not None else "")
        )
    return lines
