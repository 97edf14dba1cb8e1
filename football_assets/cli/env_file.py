"""What the project's .env changed about this terminal: a local `.env` copied from a deployment's
turns `refresh`'s display into JSON lines, which must not go unexplained.
"""

from __future__ import annotations

from pathlib import Path

from football_assets.settings import Settings


def json_log_notice(config: Settings, env_file: Path) -> str | None:
    """The line naming `env_file` when it is what set FOOTBALL_LOG_FORMAT=json here."""
    if config.log_format != "json" or not env_file.is_file():
        return None
    from dotenv import dotenv_values

    value = dotenv_values(env_file).get("FOOTBALL_LOG_FORMAT") or ""
    if value.strip().lower() != "json":
        return None
    return (
        f"football-assets: JSON log lines, no live display: {env_file} sets "
        "FOOTBALL_LOG_FORMAT=json (deployments set it themselves); delete that line for the "
        "display"
    )
