"""
A Log Analytics query endpoint on 127.0.0.1 that runs the KQL it receives with duckdb-kql.

It speaks the v1 REST wire format (`POST /v1/workspaces/{id}/query`, JSON body `{"query",
"timespan"}`, answer `{"tables": [{"name", "columns": [{"name", "type"}], "rows"}]}` with Kusto
types) over HTTPS, because azure-core will not send a bearer token over plain http. The real
`LogsQueryClient` is pointed at it, so tests exercise the SDK's parsing, errors and retry policy,
not a mock of them. The data is a DuckDB connection the test fills, the same one an
`EmbeddedEngine` can read, so both engines answer from the same rows.

Every request is recorded (path, query name, sizes, status) for counting, and faults are scripted
per test: each scripted `Fault` answers one request (optionally only a request for one query),
in order, then the endpoint goes back to executing queries.

`limits=IdentityLimits()` (off by default) enforces Log Analytics' documented per-identity limits:
at most 5 queries at once and 200 per 30 s for each caller identity (the bearer token), answering
429 with a `Retry-After` header past them. The service itself queues a sixth concurrent query for up
to 3 minutes before its 429; the fake answers at once, which is stricter: a client that stays within
the fake's limits stays within the service's. The limits run on the clock the caller gives, so a
benchmark can compress time (see `IdentityLimits`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import duckdb
import duckdb_kql
from azure.core.credentials import AccessToken
from duckdb_kql.types import kusto_type

from tests.fakes.tls import fake_tls

_QUERY_PATH = re.compile(r"^/v1/workspaces/([^/?]+)/query$")


def query_name_hint(text: str) -> str:
    """Which production query a KQL text is, by its body ("other" if none): the `let` lines before it carry the values."""
    from enrichment.queries.kql import QUESTIONS

    for question in QUESTIONS:
        if text.endswith(question.body):
            return question.name
    return "other"


@dataclass(frozen=True, slots=True)
class Fault:
    """
    One scripted answer: `body` as JSON, else `raw` bytes. `execute` runs the query and adds its
    tables to `body` (a partial error); `delay` holds the answer back.
    """

    status: int
    body: dict[str, Any] | None = None
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    execute: bool = False
    raw: bytes = b""


def _oneapi(code: str, message: str, inner_code: str = "", inner_message: str = "") -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if inner_code or inner_message:
        error["innererror"] = {"code": inner_code or code, "message": inner_message or message}
    return {"error": error}


def throttled(retry_after: int | float | str | None = None) -> Fault:
    """429, with or without a Retry-After header (seconds)."""
    headers = (("Retry-After", str(retry_after)),) if retry_after is not None else ()
    return Fault(429, _oneapi("TooManyRequests", "Too many requests: rate limit reached"), headers)


def server_error(status: int = 500, retry_after: int | float | None = None) -> Fault:
    """A 5xx with a OneAPI body (500, 502, 503, 504...)."""
    headers = (("Retry-After", str(retry_after)),) if retry_after is not None else ()
    codes = {500: "InternalServerError", 502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout"}
    return Fault(status, _oneapi(codes.get(status, "ServerError"), f"the service answered {status}"), headers)


def partial(
    code: str = "E_QUERY_RESULT_SET_TOO_LARGE", message: str = "Query result set has exceeded the internal record count limit"
) -> Fault:
    """200 with the query's real tables plus `"error": {"code": "PartialError", "details": [...]}`."""
    body = {
        "error": {
            "code": "PartialError",
            "message": "There were some errors when processing your query.",
            "details": [
                {
                    "code": "EngineError",
                    "message": "Something went wrong processing your query on the server.",
                    "innererror": {"code": code, "message": message},
                }
            ],
        }
    }
    return Fault(200, body, execute=True)


def gateway_page(status: int = 502) -> Fault:
    """A 5xx whose body is not JSON at all (an HTML error page from a proxy in front of the service)."""
    return Fault(status, body=None, headers=(("Content-Type", "text/html"),), raw=b"<html><body>Bad Gateway</body></html>")


def no_content() -> Fault:
    """204 with an empty body: what the service says when the workspace has no data."""
    return Fault(204)


def empty_ok() -> Fault:
    """200 with an empty body (what the service sends a request without a JSON body)."""
    return Fault(200)


def slow(seconds: float) -> Fault:
    """Answer normally, but only after `seconds`."""
    return Fault(200, delay=seconds, execute=True)


def bad_request(message: str = "Query could not be parsed at 'x' on line [1,5]") -> Fault:
    """400 with a nested OneAPI error, as a syntax error gets."""
    return Fault(400, _oneapi("BadArgumentError", "The request had some invalid properties", "SyntaxError", message))


def forbidden(code: str = "InsufficientAccessError") -> Fault:
    """403, as a new role assignment gets for up to an hour."""
    return Fault(403, _oneapi(code, "The provided credentials have insufficient access to perform the requested operation"))


@dataclass(frozen=True, slots=True)
class IdentityLimits:
    """
    Log Analytics' per-identity query limits (Microsoft's "Azure Monitor service limits", log queries:
    5 concurrent queries per user, 200 queries per 30 s per user; a managed identity is one user).

    `clock` gives seconds on the run's clock (a benchmark's compressed simulated time, or real
    monotonic time); `time_scale` is how many of those seconds pass per wall-clock second, so the
    `Retry-After` sent (wall seconds, which is what the client sleeps) is the clock's wait divided by
    it: whole seconds at scale 1, as the service sends them, fractions under compression.
    `busy_retry_after` is the wait asked of a query refused for the concurrency limit.
    """

    concurrent: int = 5
    per_window: int = 200
    window: float = 30.0
    busy_retry_after: float = 1.0
    clock: Callable[[], float] = time.monotonic
    time_scale: float = 1.0

    def retry_after(self, clock_seconds: float) -> str:
        """The `Retry-After` header for a wait of `clock_seconds` on the run's clock."""
        wall = max(clock_seconds, 0.0) / self.time_scale
        return str(max(1, math.ceil(wall))) if self.time_scale == 1 else f"{max(wall, 0.001):.3f}"


@dataclass
class LimitStats:
    """What the limiter saw: refusals by limit, and the most each identity had at once and in one window."""

    refused_busy: int = 0
    refused_rate: int = 0
    max_concurrent: int = 0
    max_in_window: int = 0


class _Limiter:
    """Per-identity admission: a slot count and the admitted queries' times within the window."""

    def __init__(self, limits: IdentityLimits) -> None:
        self.limits = limits
        self.stats = LimitStats()
        self._in_flight: dict[str, int] = {}
        self._admitted: dict[str, deque[float]] = {}

    def admit(self, identity: str) -> str | None:
        """None when the query may run (its slot taken), else the Retry-After of its 429. Called under the server's lock."""
        now = self.limits.clock()
        times = self._admitted.setdefault(identity, deque())
        while times and times[0] <= now - self.limits.window:
            times.popleft()
        if len(times) >= self.limits.per_window:
            self.stats.refused_rate += 1
            return self.limits.retry_after(times[0] + self.limits.window - now)
        running = self._in_flight.get(identity, 0)
        if running >= self.limits.concurrent:
            self.stats.refused_busy += 1
            return self.limits.retry_after(self.limits.busy_retry_after)
        self._in_flight[identity] = running + 1
        times.append(now)
        self.stats.max_concurrent = max(self.stats.max_concurrent, running + 1)
        self.stats.max_in_window = max(self.stats.max_in_window, len(times))
        return None

    def release(self, identity: str) -> None:
        self._in_flight[identity] -= 1


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """What one request asked and what it got."""

    method: str
    path: str
    query_name: str
    query: str
    timespan: str | None
    prefer: str
    authorization: str
    request_bytes: int
    response_bytes: int
    status: int


class FakeCredential:
    """A TokenCredential that hands out a dummy token and records the scopes it was asked for."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("fake-la-token", int(time.time()) + 3600)


@dataclass
class _Script:
    faults: list[tuple[str | None, Fault]] = field(default_factory=list)

    def take(self, query_name: str) -> Fault | None:
        for index, (wanted, fault) in enumerate(self.faults):
            if wanted is None or wanted == query_name:
                del self.faults[index]
                return fault
        return None


class LogAnalyticsServer:
    """
    The endpoint; use as a context manager (`with LogAnalyticsServer(con) as server:`).

    `dynamic` chooses how dynamic values travel: "json" (inline JSON values, as the query API
    sends them and azure-monitor-query passes them on) or "text" (the same JSON as a string, the
    shape exports and older clients show), so tests can prove the product reads both.
    `functions` are duckdb-kql stored-function definitions (e.g. `_GetWatchlist`).
    `workspace_id` None accepts any workspace. `limits` enforces the per-identity limits (off by default).
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        workspace_id: str | None = None,
        functions: Sequence[str] = (),
        dynamic: str = "json",
        name_hint: Callable[[str], str] = query_name_hint,
        limits: IdentityLimits | None = None,
    ) -> None:
        if dynamic not in ("text", "json"):
            msg = "dynamic must be 'text' or 'json'"
            raise ValueError(msg)
        self._con = con
        self._workspace_id = workspace_id
        self._functions = list(functions)
        self._dynamic = dynamic
        self._name_hint = name_hint
        self._limiter = _Limiter(limits) if limits is not None else None
        self._lock = threading.Lock()
        self._db_lock = threading.Lock()
        self._script = _Script()
        self._stopping = threading.Event()
        self.requests: list[RecordedRequest] = []
        self._in_flight = 0
        self.max_in_flight = 0  # the most queries answered at the same time since the last reset()
        self._generation = 0  # bumped by reset(): a late answer to an earlier test is not counted in the next
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> LogAnalyticsServer:
        handler = _handler_for(self)
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        # Handler threads are joined on stop (block_on_close), so no thread touches DuckDB after a test.
        httpd.daemon_threads = False
        httpd.block_on_close = True
        httpd.socket = fake_tls().server_context().wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LogAnalyticsServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start the server first"
        return f"https://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def ca_path(self) -> str:
        """The CA bundle a client passes as `connection_verify`."""
        return fake_tls().ca_path

    # -- scripting and counting ----------------------------------------------------------------

    def fail(self, *faults: Fault, query: str | None = None) -> None:
        """Queue faults; each answers the next request (for `query` only, when given)."""
        with self._lock:
            self._script.faults.extend((query, fault) for fault in faults)

    def pending_faults(self) -> int:
        with self._lock:
            return len(self._script.faults)

    def count(self, query: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests if query is None or r.query_name == query)

    def reset(self) -> None:
        """Forget requests and pending faults; answers still in flight from before are not recorded."""
        with self._lock:
            self.requests.clear()
            self._script.faults.clear()
            self._generation += 1
            self._in_flight = self.max_in_flight = 0
            if self._limiter is not None:
                self._limiter.stats = LimitStats()

    @property
    def limit_stats(self) -> LimitStats:
        """What the per-identity limiter refused and the most it admitted (zeros when limits are off)."""
        with self._lock:
            stats = self._limiter.stats if self._limiter is not None else LimitStats()
            return LimitStats(stats.refused_busy, stats.refused_rate, stats.max_concurrent, stats.max_in_window)

    def _admit(self, identity: str) -> str | None:
        """None when the identity may run one more query now, else the Retry-After of its 429."""
        if self._limiter is None:
            return None
        with self._lock:
            return self._limiter.admit(identity)

    def _release(self, identity: str) -> None:
        if self._limiter is not None:
            with self._lock:
                self._limiter.release(identity)

    def _started(self, generation: int) -> bool:
        """One query of this test is being answered (until its answer starts to leave), for `max_in_flight`."""
        with self._lock:
            if generation != self._generation:
                return False
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            return True

    def _finished(self, generation: int) -> None:
        with self._lock:
            if generation == self._generation:
                self._in_flight -= 1

    # -- request handling (called from handler threads) ---------------------------------------

    def _take_fault(self, query_name: str) -> Fault | None:
        with self._lock:
            return self._script.take(query_name)

    def _current_generation(self) -> int:
        with self._lock:
            return self._generation

    def _record(self, entry: RecordedRequest, generation: int) -> None:
        with self._lock:
            if generation == self._generation:
                self.requests.append(entry)

    def _execute(self, text: str) -> dict[str, Any]:
        """Run the KQL on a cursor of the shared connection and shape it as a v1 table."""
        with self._db_lock:
            cursor = self._con.cursor()
            try:
                relation = duckdb_kql.kql(cursor, text, functions=self._functions or None)
                names = list(relation.columns)
                types = [kusto_type(t) for t in relation.types]
                rows = relation.fetchall()
            finally:
                cursor.close()
        return {
            "name": "PrimaryResult",
            "columns": [{"name": n, "type": t} for n, t in zip(names, types, strict=True)],
            "rows": [[self._wire(v, t) for v, t in zip(row, types, strict=True)] for row in rows],
        }

    def _wire(self, value: Any, kind: str) -> Any:
        """A DuckDB value as the query API writes it for a column of Kusto type `kind`."""
        if value is None:
            return None
        if kind == "datetime":
            if isinstance(value, dt.datetime):
                if value.tzinfo is not None:
                    value = value.astimezone(dt.UTC).replace(tzinfo=None)
                return value.isoformat(timespec="microseconds") + "Z"
            if isinstance(value, dt.date):
                return f"{value.isoformat()}T00:00:00Z"
            return str(value)
        if kind == "dynamic":
            parsed = json.loads(value) if isinstance(value, str) else _jsonable(value)
            return json.dumps(parsed, separators=(",", ":"), ensure_ascii=False) if self._dynamic == "text" else parsed
        if kind == "timespan" and isinstance(value, dt.timedelta):
            return _timespan(value)
        if kind in ("guid", "decimal"):
            return str(value)
        if kind == "real" and isinstance(value, float) and not math.isfinite(value):
            return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        return value

    def _wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat() + ("Z" if value.tzinfo is None else "")
    if isinstance(value, (Decimal, uuid.UUID)):
        return str(value)
    return value


def _timespan(value: dt.timedelta) -> str:
    """.NET TimeSpan text (`[-][d.]hh:mm:ss[.fffffff]`), as Kusto writes a timespan."""
    sign = "-" if value < dt.timedelta(0) else ""
    rest = abs(value)
    hours, seconds = divmod(rest.seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    text = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    if rest.days:
        text = f"{rest.days}.{text}"
    if rest.microseconds:
        text = f"{text}.{rest.microseconds:06d}0"
    return sign + text


def _handler_for(server: LogAnalyticsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0: one request per connection, so no handler thread outlives a test on keep-alive.
        query_text = ""
        query_name = "other"
        timespan: str | None = None
        request_bytes = 0
        generation = 0
        counted = False
        admitted = ""  # the identity holding one of its concurrent-query slots for this request

        def log_message(self, *_args: object) -> None:  # keep test output clean
            return

        def do_GET(self) -> None:
            self.generation = server._current_generation()
            self._error(405, "MethodNotAllowed", "this fake serves POST /v1/workspaces/{id}/query")

        def do_POST(self) -> None:
            self.generation = server._current_generation()
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            self.request_bytes = len(raw)
            authorization = self.headers.get("Authorization") or ""
            match = _QUERY_PATH.match(self.path)
            if not match:
                self._error(404, "PathNotFoundError", f"The requested path does not exist: {self.path}")
                return
            if not authorization.startswith("Bearer ") or len(authorization) <= len("Bearer "):
                self._error(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
                return
            if "application/json" not in (self.headers.get("Content-Type") or "") or not raw:
                self._answer(200, b"", {})  # what the service does with no JSON body
                return
            try:
                body = json.loads(raw)
                self.query_text = str(body["query"])
                self.timespan = body.get("timespan")
            except (ValueError, KeyError, TypeError):
                self._error(
                    400, "BadArgumentError", "The request had some invalid properties", "InvalidBody", "no 'query' in the body"
                )
                return
            self.query_name = server._name_hint(self.query_text)
            if server._workspace_id is not None and match.group(1).lower() != server._workspace_id.lower():
                self._error(404, "WorkspaceNotFoundError", f"The workspace could not be found: {match.group(1)}")
                return
            retry_after = server._admit(authorization)
            if retry_after is not None:
                throttled_answer = _oneapi("TooManyRequests", "Too many requests: the identity's query limits were reached")
                self._answer_json(429, throttled_answer, {"Retry-After": retry_after})
                return
            self.admitted = authorization
            self.counted = server._started(self.generation)
            try:
                self._respond(server._take_fault(self.query_name))
            finally:
                self._uncount()

        def _uncount(self) -> None:
            # Before the answer leaves: a client that reads it may send its next query at once.
            if self.admitted:
                server._release(self.admitted)
                self.admitted = ""
            if self.counted:
                self.counted = False
                server._finished(self.generation)

        def _respond(self, fault: Fault | None) -> None:
            if fault is not None and fault.delay:
                server._wait(fault.delay)
                if server._stopping.is_set() or self.generation != server._current_generation():
                    self.close_connection = True
                    return
            if fault is not None and not fault.execute:
                if fault.body is None:
                    self._answer(fault.status, fault.raw, dict(fault.headers))
                else:
                    self._answer_json(fault.status, fault.body, dict(fault.headers))
                return
            try:
                table = server._execute(self.query_text)
            except (duckdb_kql.KqlError, duckdb.Error) as error:
                first_line = (str(error).splitlines() or [type(error).__name__])[0]
                self._error(400, "BadArgumentError", "The request had some invalid properties", "SemanticError", first_line)
                return
            payload: dict[str, Any] = {"tables": [table]}
            if fault is not None and fault.body is not None:
                payload.update(fault.body)
            self._answer_json(200 if fault is None else fault.status, payload)

        def _error(self, status: int, code: str, message: str, inner_code: str = "", inner_message: str = "") -> None:
            self._answer_json(status, _oneapi(code, message, inner_code, inner_message))

        def _answer_json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            self._answer(status, data, {"Content-Type": "application/json; charset=utf-8", **(headers or {})})

        def _answer(self, status: int, data: bytes, headers: dict[str, str]) -> None:
            self._uncount()
            server._record(
                RecordedRequest(
                    method=self.command,
                    path=self.path,
                    query_name=self.query_name,
                    query=self.query_text,
                    timespan=self.timespan,
                    prefer=self.headers.get("Prefer") or "",
                    authorization=self.headers.get("Authorization") or "",
                    request_bytes=self.request_bytes,
                    response_bytes=len(data),
                    status=status,
                ),
                self.generation,
            )
            try:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if status != 204:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if data and status != 204:
                    self.wfile.write(data)
            except OSError:
                # The client gave up (a read-timeout test); nobody is listening for the answer.
                self.close_connection = True

    return Handler


@contextmanager
def serving(con: duckdb.DuckDBPyConnection, **options: Any) -> Iterator[LogAnalyticsServer]:
    """`with serving(con) as server:` — a started endpoint, stopped on exit."""
    server = LogAnalyticsServer(con, **options)
    server.start()
    try:
        yield server
    finally:
        server.stop()
