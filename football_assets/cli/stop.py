"""SIGINT and SIGTERM mean "stop now" from a command's first line to its exit, never a retry:
`stopping()` owns both; Dagster's runs borrow them, and a wake-up pipe records which came."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)
SHOW_CURSOR = "\x1b[?25h"


class Stopped(KeyboardInterrupt):
    """A command stopped on a signal; `what` says what it left behind, for the one line."""

    def __init__(self, signum: int, what: str = "") -> None:
        super().__init__(signum)
        self.signum = signum
        self.what = what

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # what a shell reports for a process the signal ended

    def line(self) -> str:
        name = signal.Signals(self.signum).name
        return f"interrupted ({name})" + (f": {self.what}" if self.what else "")


class Stop:
    """The signals this command received, whoever handled them."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.leaving = False  # exiting already: a signal now changes nothing
        self.terminal_modes: list[Any] | None = None
        self._read, self._write = os.pipe()
        for fd in (self._read, self._write):
            os.set_blocking(fd, False)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.leaving:
            return
        if self.signum is not None:
            # Asked twice: the user wants out now, even if a clean-up is slow.
            _restore_terminal()
            os._exit(128 + self.signum)
        self.signum = signum
        raise Stopped(signum)

    def received(self) -> int | None:
        """The first SIGINT/SIGTERM this command got (Dagster's handlers included), or None."""
        with contextlib.suppress(BlockingIOError, OSError):
            for byte in os.read(self._read, 512):
                if self.signum is None and byte in SIGNALS:
                    self.signum = byte
        return self.signum

    def check(self) -> None:
        """Raise Stopped if a signal came, e.g. while a Dagster run held the handlers."""
        signum = self.received()
        if signum is not None:
            raise Stopped(signum)

    def restore_terminal(self) -> None:
        """After a signal: the cursor shown and the terminal's modes as the command found them."""
        if self.received() is not None:
            _restore_terminal(self.terminal_modes)

    def close(self) -> None:
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)


def _terminal_modes() -> list[Any] | None:
    with contextlib.suppress(ImportError, OSError, ValueError):
        import termios

        if sys.stdin is not None and sys.stdin.isatty():
            return termios.tcgetattr(sys.stdin.fileno())
    return None


def _restore_terminal(modes: list[Any] | None = None) -> None:
    """Cursor shown, and the terminal's modes (echo) as the command found them."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        if sys.__stdout__ is not None and sys.__stdout__.isatty():
            os.write(sys.__stdout__.fileno(), SHOW_CURSOR.encode())
    if modes is not None:
        with contextlib.suppress(ImportError, OSError, ValueError):
            import termios

            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, modes)


@contextlib.contextmanager
def stopping() -> Iterator[Stop]:
    """SIGINT and SIGTERM raise `Stopped` in the main thread until the block ends; on the way
    out the terminal gets its cursor and modes back, however the block ended."""
    stop = Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # only the main thread may own signals; a caller in a thread keeps its own
        stop.close()
        return
    stop.terminal_modes = _terminal_modes()
    saved = {signum: signal.getsignal(signum) for signum in SIGNALS}
    saved_fd = signal.set_wakeup_fd(stop._write, warn_on_full_buffer=False)
    for signum in SIGNALS:
        signal.signal(signum, stop._handle)
    try:
        yield stop
    finally:
        stop.leaving = True
        stop.restore_terminal()
        signal.set_wakeup_fd(saved_fd)
        for signum, handler in saved.items():
            signal.signal(signum, handler)
        stop.close()
