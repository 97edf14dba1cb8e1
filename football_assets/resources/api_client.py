"""The football-data.org HTTP client: auth, the shared request budget, retries, one-line errors.
It knows HTTP and the API's conventions (X-Auth-Token, the rate headers, 429 bodies), nothing of
Dagster assets or SQL; `resources/api.py` wraps it as the `football_api` resource."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial

import dagster as dg
import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    wait_exponential,
    wait_random,
)

from football_assets.progress import wait_event
from football_assets.resources.api_answers import (
    ApiResponse,
    FootballDataPermanentError,
    FootballDataRateLimited,
    FootballDataTransientError,
    api_message,
    explain,
    int_header,
    partition_of,
    retry_after_429,
    root_cause,
)
from football_assets.resources.budget import RequestBudget, Wait
from football_assets.resources.defaults import (
    DEFAULT_API_URL,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RETRY_SECONDS,
    DEFAULT_READ_TIMEOUT,
)

# Captured into the Dagster event log inside a step; a plain Python logger elsewhere.
log = dg.get_dagster_logger("football_assets.api")

# Worth another attempt: the server or something in front of it is struggling.
_TRANSIENT_STATUSES = frozenset({408, 425, 500, 502, 503, 504})


class FootballDataClient:
    """HTTP client for football-data.org v4: one keep-alive session, within a shared budget,
    retried. Safe to share between threads: requests' Session pools its connections and the
    budget serializes its own bookkeeping.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        budget: RequestBudget,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        max_retry_seconds: float = DEFAULT_MAX_RETRY_SECONDS,
        backoff_seconds: float = 1.0,
        logger: logging.Logger | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key or None
        self._session = requests.Session()
        self._session.headers["Accept"] = "application/json"
        if api_key:
            self._session.headers["X-Auth-Token"] = api_key
        self._timeout = (connect_timeout, read_timeout)
        self._max_retry_seconds = max_retry_seconds
        # Exponential with jitter (b, 2b, 4b ... up to 30 s, plus up to b at random), so runs that
        # failed together do not retry in lockstep.
        self._backoff = wait_exponential(multiplier=backoff_seconds, max=30) + wait_random(
            0, backoff_seconds
        )
        self._budget = budget
        self._log = logger or log

    def close(self) -> None:
        self._session.close()
        self._budget.close()

    def get(self, endpoint: str) -> ApiResponse:
        """GET `endpoint` within the budget, retrying transient failures; raises one-line errors.

        The retries are bounded by `max_retry_seconds` of failing and backing off; time spent
        waiting for the budget is not failing, so it does not count, unless a 429 asked for it.
        """
        budget_waits = 0.0
        refused: FootballDataRateLimited | None = None  # the 429 the next wait answers

        def out_of_time(state: RetryCallState) -> bool:
            failing = (state.seconds_since_start or 0.0) - budget_waits
            error = state.outcome.exception() if state.outcome else None
            upcoming = error.wait if isinstance(error, FootballDataRateLimited) else 0.0
            return failing + state.upcoming_sleep + upcoming >= self._max_retry_seconds

        retrying = Retrying(
            retry=retry_if_exception_type(FootballDataTransientError),
            wait=self._backoff_unless_refused,
            stop=out_of_time,
            before_sleep=lambda state: self._log_retry(state, endpoint),
            reraise=True,
        )
        started = time.monotonic()
        try:
            for attempt in retrying:
                with attempt:
                    # A 429's wait is the server's word, recorded for every process: the
                    # budget waits it out here, as it does any other (logged as the retry).
                    waited = self._budget.spend(
                        on_wait=partial(self._log_wait, endpoint=endpoint, refused=refused)
                    )
                    if refused is None:
                        budget_waits += waited
                    refused = None
                    try:
                        response = self._get_once(endpoint)
                    except FootballDataRateLimited as exc:
                        refused = exc
                        raise
                    return replace(
                        response,
                        attempts=attempt.retry_state.attempt_number,
                        rate_wait_seconds=budget_waits,
                    )
        except FootballDataTransientError as exc:
            attempts = retrying.statistics.get("attempt_number", 1)
            raise FootballDataTransientError(
                f"{exc} Gave up after {attempts} attempt{'s' if attempts > 1 else ''} in "
                f"{time.monotonic() - started:.0f} s (FOOTBALL_DATA_MAX_RETRY_SECONDS="
                f"{self._max_retry_seconds:g}); re-run when the API is reachable."
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff_unless_refused(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return 0.0 if isinstance(error, FootballDataRateLimited) else self._backoff(state)

    def _log_retry(self, state: RetryCallState, endpoint: str) -> None:
        error = state.outcome.exception() if state.outcome else None
        asked = isinstance(error, FootballDataRateLimited)
        wait = error.wait if isinstance(error, FootballDataRateLimited) else state.upcoming_sleep
        how = "as the API asked" if asked else "backing off with jitter"
        self._log.info(
            "%s Waiting %s s (%s), then attempt %d.",
            error,
            _seconds(wait),
            how,
            state.attempt_number + 1,
            extra=wait_event(wait, "retry", endpoint, how),
        )

    def _log_wait(self, wait: Wait, endpoint: str, refused: FootballDataRateLimited | None) -> None:
        """Each wait for the budget is logged once, before it starts, with its reason."""
        if wait.reason == "server":
            if refused is not None:
                return  # announced with the 429 it answers (_log_retry)
            self._log.log(
                _wait_level(wait.seconds),
                "Waiting %s s before GET %s: the API said no requests remain until its "
                "counter resets.",
                _seconds(wait.seconds),
                endpoint,
                extra=wait_event(wait.seconds, "server", endpoint, "the API's counter resets"),
            )
            return
        limit, window = self._budget.limit, self._budget.window_seconds
        self._log.log(
            _wait_level(wait.seconds),
            "Waiting %s s before GET %s: the request budget (%d per %g s, shared by every "
            "process using this key) is spent.",
            _seconds(wait.seconds),
            endpoint,
            limit,
            window,
            extra=wait_event(
                wait.seconds, "budget", endpoint, f"{limit} requests per {window:g} s"
            ),
        )

    def _scrub(self, text: str) -> str:
        # Defence in depth: whatever a server or proxy echoes back, the key never leaves here.
        return text.replace(self._api_key, "[FOOTBALL_DATA_API_KEY]") if self._api_key else text

    def _get_once(self, endpoint: str) -> ApiResponse:
        url = f"{self.base_url}{endpoint}"
        sent_at = time.time()
        try:
            # No redirects: requests would forward X-Auth-Token to wherever they point.
            response = self._session.get(url, timeout=self._timeout, allow_redirects=False)
        except requests.ConnectTimeout:
            raise FootballDataTransientError(
                f"GET {endpoint}: no connection to {self.base_url} within "
                f"{self._timeout[0]:g} s (FOOTBALL_DATA_CONNECT_TIMEOUT)."
            ) from None
        except requests.Timeout:
            raise FootballDataTransientError(
                f"GET {endpoint}: no answer within {self._timeout[1]:g} s "
                "(FOOTBALL_DATA_READ_TIMEOUT)."
            ) from None
        except (
            requests.exceptions.InvalidSchema,
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
        ) as exc:
            # A malformed FOOTBALL_DATA_API_URL: no later attempt can do better.
            raise FootballDataPermanentError(
                f"GET {endpoint}: {self.base_url!r} is not a usable URL ({type(exc).__name__}); "
                "set FOOTBALL_DATA_API_URL to an http(s) URL such as " + DEFAULT_API_URL + "."
            ) from None
        except requests.ConnectionError as exc:
            reason = root_cause(exc)
            raise FootballDataTransientError(
                self._scrub(
                    f"GET {endpoint}: the connection to {self.base_url} failed or was dropped "
                    f"({reason})."
                )
            ) from None
        except requests.RequestException as exc:
            raise FootballDataTransientError(
                self._scrub(f"GET {endpoint} failed ({type(exc).__name__}).")
            ) from None

        available = int_header(response, "X-Requests-Available-Minute")
        reset = int_header(response, "X-RequestCounter-Reset")
        status = response.status_code
        message = self._scrub(api_message(response))
        if status == 429:
            wait = retry_after_429(message, reset, self._budget.window_seconds)
            # Every process on the machine holds off until then, not only this one.
            self._budget.server_said(sent_at, 0, wait)
            raise FootballDataRateLimited(
                explain(endpoint, status, message), wait=wait + self._budget.margin
            )
        self._budget.server_said(sent_at, available, reset)
        if status in _TRANSIENT_STATUSES:
            raise FootballDataTransientError(explain(endpoint, status, message))
        if 300 <= status < 400:
            raise FootballDataPermanentError(
                self._scrub(
                    f"GET {endpoint} returned HTTP {status}, a redirect to "
                    f"{response.headers.get('Location', 'nowhere')!r}, which is not followed; "
                    "check FOOTBALL_DATA_API_URL."
                )
            )
        if status != 200:
            raise FootballDataPermanentError(explain(endpoint, status, message))
        try:
            payload = response.json()
        except ValueError:
            # An HTML error page or a cut-off body from something between us and the API:
            # retried, as the next answer may well be whole.
            raise FootballDataTransientError(
                f"GET {endpoint} returned HTTP 200 but its body is not JSON "
                f"(Content-Type {response.headers.get('Content-Type', 'missing')!r}, "
                f"{len(response.content)} bytes){partition_of(endpoint)}."
            ) from None
        if not isinstance(payload, dict):
            raise FootballDataPermanentError(
                f"GET {endpoint} returned HTTP 200 but its body is a JSON "
                f"{type(payload).__name__}, not an object{partition_of(endpoint)}."
            )
        return ApiResponse(
            endpoint=endpoint,
            url=url,
            status=status,
            payload=payload,
            size_bytes=len(response.content),
            fetched_at=datetime.now(UTC),
            source="live",
            requests_available=available,
            reset_seconds=reset,
        )


def _seconds(value: float) -> str:
    return f"{value:.1f}" if value >= 0.1 else f"{value:.2f}"


def _wait_level(seconds: float) -> int:
    # Once a sliding window is full, slots free up at the pace the requests were sent: the
    # waits in between last milliseconds and would only bury the one that matters.
    return logging.INFO if seconds >= 0.1 else logging.DEBUG
