"""The double's HTTP server on loopback: its lifecycle, and how it answers one request."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from test_support.api_double.data import ApiData
from test_support.api_double.faults import Fault, FaultQueue
from test_support.api_double.rate_limit import FixedWindow, RateHeaders, refused_headers
from test_support.api_double.records import RequestLog, RequestRecord
from test_support.api_double.wire import (
    JSON_CONTENT_TYPE,
    MSG_INVALID_TOKEN,
    MSG_NOT_FOUND,
    MSG_RESTRICTED,
    dumps,
    error,
    rate_limit_error,
)

DEFAULT_API_KEY = "test-key"
_TEAMS_PATH = re.compile(r"^/v4/competitions/([^/]+)/teams$")


@dataclass(frozen=True)
class _Admission:
    record: RequestRecord
    refused_wait: int | None  # set: refuse with 429 claiming this wait
    fault: Fault | None
    rate_headers: RateHeaders


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 makes a burst of parallel connects wait for a
    # 1 s SYN retransmit, which would look like server slowness to concurrent clients.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], double: FootballApiDouble) -> None:
        self.double = double
        # Open keep-alive connections, so stop() can unblock their handler threads.
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every response sets Content-Length
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in separate writes; without NODELAY, Nagle holds the body's
        # tail until the client's delayed ACK (~40 ms per request), which no real server has.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass  # client already gone
        finally:
            with self.server.connections_lock:
                self.server.connections.discard(self.connection)

    def do_GET(self) -> None:  # http.server dispatches on the method name
        self.server.double._handle(self)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean


class FootballApiDouble(FixedWindow, FaultQueue, RequestLog):
    """The fake API on a loopback port, served from a daemon thread.

    ``api_key=None`` disables auth. Typical use::

        with FootballApiDouble(ApiData.from_sample_dir(), limit=10, window_seconds=1.0) as api:
            run_client(base_url=api.base_url, api_key="test-key")
            assert api.max_requests_in_any_window(1.0) <= 10
            api.data.rename_team(57, "Arsenal")  # served from the next request on
            api.inject(r"/teams$", Fault.status(503), times=2)

    Request handling order: rate limit -> injected fault -> auth -> routing. So a fault only
    hits a request the limiter admitted, and every admitted request (also faulted or failing
    auth) uses one request of the budget, except an injected ``rate_limited`` fault, a refusal.
    """

    def __init__(
        self,
        data: ApiData,
        *,
        api_key: str | None = DEFAULT_API_KEY,
        limit: int = 10,
        window_seconds: float = 60.0,
    ) -> None:
        FixedWindow.__init__(self, limit, window_seconds)
        FaultQueue.__init__(self)
        RequestLog.__init__(self)
        self.data = data
        self.api_key = api_key
        self.host = "127.0.0.1"
        self.port = 0  # bound by start(); kept, so a restart serves the same base_url
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> FootballApiDouble:
        """Bind and serve. A restart after stop() rebinds the same port, so base_url holds."""
        if self._server is not None:
            raise RuntimeError("FootballApiDouble already started")
        self._stopping.clear()
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # fast stop()
            name=f"football-api-double:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in a delay fault
        server.shutdown()
        with server.connections_lock:
            for conn in list(server.connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)  # unblock idle keep-alive readers
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FootballApiDouble:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FootballApiDouble not started")
        return f"http://{self.host}:{self.port}/v4"

    # ---- request handling ------------------------------------------------------------------

    def _admit(self, path: str, query: str, token: str | None, peer_port: int) -> _Admission:
        now = time.monotonic()
        with self._lock:
            record = RequestRecord(now, path, query, token, peer_port)
            self.requests.append(record)
            wait = self._spent_wait(now)
            if wait is not None:
                record.refused = True
                return _Admission(record, wait, None, refused_headers(wait))
            fault = self._take_fault(path)
            if fault is not None:
                record.fault = fault.kind
                if fault.kind == "rate_limited":
                    wait = int(fault.seconds)
                    record.refused = True
                    return _Admission(record, wait, fault, refused_headers(wait))
            return _Admission(record, None, fault, self._spend(now))

    def _handle(self, handler: _Handler) -> None:
        split = urlsplit(handler.path)
        path = split.path.rstrip("/") or "/"
        token = handler.headers.get("X-Auth-Token")
        admission = self._admit(path, split.query, token, handler.client_address[1])
        record, fault = admission.record, admission.fault

        if admission.refused_wait is not None:
            status_code, payload = 429, dumps(rate_limit_error(admission.refused_wait))
            self._send(handler, record, status_code, payload, JSON_CONTENT_TYPE, admission)
            return
        if fault is not None and fault.kind == "drop":
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault is not None and fault.kind in ("status", "body"):
            self._send(
                handler,
                record,
                fault.status_code,
                fault.payload,
                fault.content_type,
                admission,
                fault.headers,
            )
            return
        # A delay waits on the stop event, so stop() never waits for a sleeping handler.
        if fault is not None and fault.kind == "delay" and self._stopping.wait(fault.seconds):
            handler.close_connection = True
            return  # shutting down: don't answer

        status_code, payload = self._route(path, token)
        self._send(handler, record, status_code, payload, JSON_CONTENT_TYPE, admission)

    def _route(self, path: str, token: str | None) -> tuple[int, bytes]:
        if self.api_key is not None:
            if token is None:
                return 403, dumps(error(MSG_RESTRICTED, 403))
            if token != self.api_key:
                return 400, dumps(error(MSG_INVALID_TOKEN, 400))
        data = self.data  # read once: tests may swap the whole object
        if path == "/v4/competitions":
            return 200, data.render_competitions()
        match = _TEAMS_PATH.match(path)
        if match:
            return data.render_teams(match.group(1))
        return 404, dumps(error(MSG_NOT_FOUND, 404))

    def _send(
        self,
        handler: _Handler,
        record: RequestRecord,
        status_code: int,
        payload: bytes,
        content_type: str,
        admission: _Admission,
        extra_headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        record.status = status_code
        try:
            handler.send_response(status_code)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(payload)))
            handler.send_header("X-API-Version", "v4")
            handler.send_header("X-Authenticated-Client", self.data.client)
            for name, value in (*admission.rate_headers, *extra_headers):
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(payload)
        except OSError:
            handler.close_connection = True  # client gave up (e.g. read timeout)
