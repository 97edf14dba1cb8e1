"""Misbehaviours a test injects into the double's answers, and the queue they wait in."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal

from test_support.api_double.wire import JSON_CONTENT_TYPE, dumps, rate_limit_error

FaultKind = Literal["status", "drop", "delay", "body", "rate_limited"]


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour. Build with the classmethods (or the module aliases)."""

    kind: FaultKind
    status_code: int = 200
    payload: bytes = b""
    content_type: str = JSON_CONTENT_TYPE
    headers: tuple[tuple[str, str], ...] = ()
    seconds: float = 0.0

    @classmethod
    def status(
        cls,
        code: int,
        body: str | bytes | Mapping[str, Any] | list[Any] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Fault:
        """Answer ``code``. No body: the API's JSON error shape; str/bytes: text/html."""
        if body is None:
            try:
                reason = HTTPStatus(code).phrase
            except ValueError:
                reason = ""
            body = {"message": reason, "errorCode": code}
        if isinstance(body, (Mapping, list)):
            payload, content_type = dumps(body), JSON_CONTENT_TYPE
        else:
            payload = body.encode("utf-8") if isinstance(body, str) else body
            content_type = "text/html; charset=utf-8"
        return cls(
            "status",
            status_code=code,
            payload=payload,
            content_type=content_type,
            headers=tuple((headers or {}).items()),
        )

    @classmethod
    def drop(cls) -> Fault:
        """Close the connection without sending a single byte of response."""
        return cls("drop")

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Sleep, then answer normally (to trip the client's read timeout)."""
        return cls("delay", seconds=seconds)

    @classmethod
    def body(cls, text: str | bytes, content_type: str = "text/html; charset=utf-8") -> Fault:
        """Answer 200 with an arbitrary (e.g. non-JSON or truncated JSON) body."""
        payload = text.encode("utf-8") if isinstance(text, str) else text
        return cls("body", payload=payload, content_type=content_type)

    @classmethod
    def rate_limited(cls, wait_seconds: int) -> Fault:
        """A 429 exactly like the live one, claiming ``wait_seconds``; uses no budget."""
        return cls(
            "rate_limited",
            status_code=429,
            payload=dumps(rate_limit_error(wait_seconds)),
            seconds=float(wait_seconds),
        )


# Module-level spellings: ``inject(r"/teams", status(503))``.
status = Fault.status
drop = Fault.drop
delay = Fault.delay
body = Fault.body
rate_limited = Fault.rate_limited


@dataclass
class _Injection:
    pattern: re.Pattern[str]
    fault: Fault
    remaining: int


class FaultQueue:
    """The double's queued faults; its ``_lock`` guards them."""

    _lock: threading.Lock

    def __init__(self) -> None:
        self._injections: list[_Injection] = []

    def inject(self, path_regex: str, fault: Fault, times: int = 1) -> None:
        """Queue ``fault`` for the next ``times`` admitted requests whose path matches.

        ``path_regex`` is searched (re.search) in the path without query string, e.g.
        ``r"/competitions/2021/teams$"``. Queued faults are used in injection order.
        """
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._injections.append(_Injection(re.compile(path_regex), fault, times))

    def pending_faults(self) -> int:
        with self._lock:
            return sum(injection.remaining for injection in self._injections)

    def clear_faults(self) -> None:
        with self._lock:
            self._injections.clear()

    def _take_fault(self, path: str) -> Fault | None:
        # The caller holds _lock.
        for injection in self._injections:
            if injection.pattern.search(path):
                injection.remaining -= 1
                if injection.remaining <= 0:
                    self._injections.remove(injection)
                return injection.fault
        return None
