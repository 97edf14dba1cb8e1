"""The terminal's live display of a refresh (rich, which Dagster itself depends on)."""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any, TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from football_assets.cli.display import PHASES, Display, RefreshState, clock
from football_assets.progress import Phase

WAITING_PHASES = (Phase.COMPETITIONS, Phase.TEAMS)

LABELS = {phase: phase.value for phase in PHASES}


class LiveDisplay(Display):
    """Redrawn eight times a second, so a wait counts down while the run sleeps through it.

    With `verbose`, Dagster's log lines (written to stderr by its console logger) and anything
    printed scroll above the display instead of going to the log file.
    """

    def __init__(self, state: RefreshState, out: TextIO, *, verbose: bool = False) -> None:
        super().__init__(state, out)
        self.console = Console(file=self.out, highlight=False)
        utf8 = (self.console.encoding or "").lower().startswith("utf")
        self.marks = ("✔", "▶", "·", "✘") if utf8 else ("+", ">", ".", "x")
        self.live = Live(
            console=self.console,
            get_renderable=self.render,
            refresh_per_second=8,
            redirect_stdout=True,
            redirect_stderr=verbose,
            transient=False,
        )

    def __enter__(self) -> LiveDisplay:
        self.live.start(refresh=True)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            with self.lock:
                self.state.wait = None
            self.live.refresh()
        finally:
            self.live.stop()  # shows the cursor again, whatever ended the display

    def line(self, text: str) -> None:
        # The display itself shows competitions, waits and phases; lines above it are for what
        # it does not show: warnings and what the refresh decided.
        if text.startswith(("warning:", "football-assets:")):
            self.console.print(Text(text, style="yellow" if text.startswith("warning") else ""))

    def render(self) -> RenderableType:
        # The size of the terminal this display writes to, read from its own descriptor: rich
        # asks stdin, stdout and stderr, which Dagster points at log files while a step runs.
        with contextlib.suppress(OSError, ValueError):
            self.console.size = os.get_terminal_size(self.out.fileno())
        with self.lock:
            return self._render(time.monotonic())

    def _row(self, name: Phase) -> tuple[Text, Text, Any]:
        s = self.state
        done, now_mark, pending, _ = self.marks
        if name == s.failed:
            mark = Text(self.marks[3], style="bold red")
        elif name in s.done:
            mark = Text(done, style="green")
        elif name == s.phase:
            mark = Text(now_mark, style="bold yellow")
        else:
            mark = Text(pending, style="dim")
        label = Text(LABELS[name], style="bold" if name == s.phase else "")
        note = s.notes.get(name, "")
        if name is Phase.TEAMS and s.total is not None:
            row = Table.grid(padding=(0, 1))
            row.add_row(
                Text(f"{s.fetched}/{s.total}"),
                ProgressBar(total=max(s.total, 1), completed=s.fetched, width=24),
                Text(s.detail, style="dim", no_wrap=True, overflow="ellipsis"),
            )
            return mark, label, row
        if name == s.phase and not note:
            note = {
                Phase.COMPETITIONS: "GET /competitions",
                Phase.WAREHOUSE: "checking and loading the tables",
                Phase.SUMMARY: "writing summary.csv",
            }.get(name, "")
        return mark, label, Text(note, style="dim" if name not in s.done else "")

    def _render(self, now: float) -> RenderableType:
        s = self.state
        header = Text.assemble(
            ("football-assets refresh", "bold"),
            f"  {s.budget()}  elapsed {clock(now - s.started)}",
        )
        # The marks and the labels keep their width; the details take what is left, cut short.
        grid = Table.grid(padding=(0, 1), expand=True)
        grid.add_column(min_width=1, no_wrap=True)
        grid.add_column(min_width=12, no_wrap=True)
        grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        for name in PHASES:
            grid.add_row(*self._row(name))
            if name is Phase.TEAMS and s.wait is not None and s.phase in WAITING_PHASES:
                left = max(0.0, s.wait.ends - now)
                grid.add_row(
                    Text(""),
                    Text("waiting", style="bold magenta"),
                    Text.assemble(
                        (f"{left:4.1f} s ", "bold magenta"),
                        f"before {s.wait.position} ",
                        (f"(GET {s.wait.endpoint})", "dim"),
                        f": {s.wait.text}",
                    ),
                )
        parts: list[RenderableType] = [header, grid]
        eta = s.eta(now)
        remaining = s.remaining_requests()
        if eta is not None and remaining:
            line = Text.assemble(
                ("ETA ", "bold"),
                (clock(eta), "bold cyan"),
                f"  {remaining} request{'s' if remaining != 1 else ''} left"
                + (f" at {s.budget()}" if s.live_api else " (offline snapshot)")
                + ", then the warehouse and the summary",
            )
            line.no_wrap, line.overflow = True, "ellipsis"
            parts.append(line)
        elif s.phase in (Phase.WAREHOUSE, Phase.SUMMARY):
            parts.append(Text("ETA a few seconds: the API part is done", style="dim"))
        return Group(*parts)
