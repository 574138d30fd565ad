"""
The Log Analytics engine: runs a `Query` on the Sentinel workspace through azure-monitor-query.

Its one job is to turn the SDK's answers into `QueryOutcome` values and its failures into
`UpstreamError`s an operator can act on. Nothing Azure is imported until an engine is created or
run, so importing this module (the CLI does) costs nothing.

Who retries what: exactly one layer owns each failure kind, so no request is ever retried by two
layers and every wait is bounded.

* **azure-core's RetryPolicy** (inside the SDK, `sdk_total` retries, exponential backoff capped
  at `sdk_backoff_max`) owns what it already retries for a POST: 500 and 503, and any response
  carrying `Retry-After` (429 included), which it honours. Two changes, made by the shared
  `common.azure_retry.bounded_retry_policy`:
  a `Retry-After` longer than `retry_after_max` is not slept (azure-core would sleep any value,
  for hours if told to); it surfaces at once as `TransientUpstreamError` so the caller (the
  function's own retry, a queue's visibility timeout) reschedules the whole operation instead of
  holding a worker. And 504 is not retried: Log Analytics answers 504 when the query overran its
  server timeout, and running it again costs the same timeout again.
* **tenacity** (here, `attempts` in total, jittered exponential wait capped at `wait_max`) owns
  only what azure-core leaves alone for a POST: 429 without `Retry-After`, 502 and 408, and
  connection failures (refused, reset, dropped mid-response). A query is a read, so sending it
  again is safe. Between attempts the failure is a `TransientUpstreamError`.
* **Nobody retries in-process** a read timeout or a 504 (the query is too slow: retrying doubles
  the wait; the hint says to raise REPLAY_QUERY_TIMEOUT_SECONDS or narrow the window), a
  `Retry-After` beyond the cap, nor 400/401/403/404 (retrying cannot fix them). Timeouts and
  throttling surface as `TransientUpstreamError`, the rest as plain `UpstreamError`.

Worst case, a run sends `attempts x (sdk_total + 1)` requests, and waits at most
`attempts x sdk_total x max(sdk_backoff_max, retry_after_max) + (attempts - 1) x wait_max` seconds
between them: with the defaults (2, 3, 30, 60, 20), 8 requests and 380 s, inside a Function's
timeout; tests shrink every bound to milliseconds through `Retries`.

How many at once: Log Analytics runs at most 5 queries at a time per identity (more wait in its queue
and then fail with 429). Every engine of the process shares one budget of `MAX_CONCURRENT_QUERIES`
slots, held for each request, so the three questions of an incident run side by side when slots are
free and queue in the process when they are not (five activities at once never send fifteen).

Answers that are not failures: a partial result (HTTP 200 with an `error`) keeps its rows and adds a
warning naming the error; a 204 (the workspace has no data) is no rows and a warning. The SDK raises
`json.JSONDecodeError` on any body that is not JSON, so the status is read from a response hook: a
204 is "no data", an error page (a proxy's HTML 502) is mapped by its status like any other failure,
and an unreadable 200 stays an error, never silently "no rows".
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common.azure_retry import bounded_retry_policy
from common.credentials import default_credential
from common.errors import SettingsError, TransientUpstreamError, UpstreamError
from common.logs import get_logger
from common.settings import Settings
from enrichment.domain.model import QueryOutcome
from enrichment.queries.kql import Query

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.exceptions import AzureError, HttpResponseError
    from azure.monitor.query import LogsQueryClient, LogsTable

SERVICE = "Log Analytics"

#: The token audience of the query API. Always passed: without it the SDK derives the scope from
#: the endpoint, which is wrong for any endpoint other than the default (sovereign clouds, tests).
LOG_ANALYTICS_AUDIENCE = "https://api.loganalytics.io"

#: Seconds added to the server timeout to get the client's read timeout, so the service's own
#: timeout (an error that says so) fires before the socket gives up.
READ_TIMEOUT_MARGIN = 30

HINT_ACCESS = (
    "grant the managed identity Log Analytics Reader on the workspace (role assignments can take up to 60 minutes to apply)"
)
HINT_WORKSPACE = "check REPLAY_WORKSPACE_ID (the workspace id GUID, not its resource id or name)"
HINT_TIMEOUT = (
    "raise REPLAY_QUERY_TIMEOUT_SECONDS (at most 600) or narrow the window (REPLAY_WINDOW_BEFORE_HOURS, REPLAY_BASELINE_DAYS)"
)
HINT_THROTTLED = "the workspace is throttling this identity (200 queries per 30 s, 5 at a time); retry the operation later"
HINT_UNAVAILABLE = "Log Analytics is failing or unreachable; retry the operation later"
HINT_QUERY = (
    "the workspace refused the query; check that Entra ID diagnostic settings send SigninLogs and "
    "AADNonInteractiveUserSignInLogs to this workspace, otherwise report the message"
)
HINT_CREDENTIAL = (
    "no token for Log Analytics: check the Function App's managed identity and AZURE_CLIENT_ID (or az login locally)"
)

_log = get_logger("loganalytics")

#: Log Analytics' limit of concurrent queries per identity; one process is one identity (the Function
#: App's managed identity), so every engine in it shares these slots.
MAX_CONCURRENT_QUERIES = 5
_SLOTS = threading.BoundedSemaphore(MAX_CONCURRENT_QUERIES)


@dataclass(frozen=True, slots=True)
class Retries:
    """
    Retry bounds for both owners (see the module docstring); tests shrink them to milliseconds.

    `sdk_*` and `retry_after_max` configure azure-core's policy; `attempts`, `wait_initial` and
    `wait_max` configure tenacity, for the failures azure-core does not retry.
    """

    sdk_total: int = 3
    sdk_backoff_factor: float = 0.8
    sdk_backoff_max: float = 30.0
    retry_after_max: float = 60.0
    attempts: int = 2
    wait_initial: float = 1.0
    wait_max: float = 20.0

    def __post_init__(self) -> None:
        if self.sdk_total < 0 or self.attempts < 1:
            msg = "sdk_total must be >= 0 and attempts >= 1"
            raise ValueError(msg)
        if min(self.sdk_backoff_factor, self.sdk_backoff_max, self.retry_after_max, self.wait_initial, self.wait_max) < 0:
            msg = "retry waits must not be negative"
            raise ValueError(msg)


class _RetriedHere(TransientUpstreamError):
    """A transient failure that azure-core does not retry, so tenacity does (and only this one)."""


def _owned_by_sdk(status: int, headers: Any) -> bool:
    """Whether azure-core's policy already retried this response (mirrors `RetryPolicy.is_retry` for POST)."""
    return bool(headers.get("Retry-After")) or status in (500, 503)


def _query_timed_out(status: int, retry_after: float | None) -> bool:
    """A 504 without Retry-After: the query overran its server timeout, and running it again costs the same."""
    return status == 504 and retry_after is None


def _retry_policy(retries: Retries) -> Any:
    """azure-core's RetryPolicy with the two changes the module docstring explains."""
    return bounded_retry_policy(
        total=retries.sdk_total,
        backoff_factor=retries.sdk_backoff_factor,
        backoff_max=retries.sdk_backoff_max,
        retry_after_max=retries.retry_after_max,
        extra_no_retry=_query_timed_out,
    )


class LogAnalyticsEngine:
    """
    `QueryEngine` over a Log Analytics workspace.

    Built with `create` in production; the constructor takes a ready `LogsQueryClient` so the
    pipeline (credential, retry policy, TLS) is decided in one place.
    """

    name = "log-analytics"

    def __init__(self, client: LogsQueryClient, workspace_id: str, *, server_timeout: int, retries: Retries) -> None:
        self._client = client
        self._workspace_id = workspace_id
        self._server_timeout = server_timeout
        self._retries = retries

    @classmethod
    def create(
        cls,
        settings: Settings,
        credential: TokenCredential | None = None,
        *,
        connection_verify: bool | str = True,
        retries: Retries | None = None,
        read_timeout: float | None = None,
    ) -> LogAnalyticsEngine:
        """
        An engine for `settings.workspace_id` at `settings.logs_endpoint`.

        Without a credential it uses the Function App's managed identity: the user-assigned one
        named by AZURE_CLIENT_ID when set, else DefaultAzureCredential (system-assigned identity,
        or `az login` on a laptop). `connection_verify` is a CA bundle path for endpoints with a
        private CA (the test fake); `read_timeout` overrides the socket read timeout, which
        otherwise is the server timeout plus a margin.
        """
        if not settings.workspace_id:
            raise SettingsError(["REPLAY_WORKSPACE_ID: required to query Log Analytics"])
        from azure.monitor.query import LogsQueryClient

        chosen = retries or Retries()
        client = LogsQueryClient(
            credential if credential is not None else default_credential(settings),
            endpoint=settings.logs_endpoint,
            audience=LOG_ANALYTICS_AUDIENCE,
            retry_policy=_retry_policy(chosen),
            connection_verify=connection_verify,
            connection_timeout=min(30.0, settings.query_timeout_seconds),
            read_timeout=read_timeout if read_timeout is not None else settings.query_timeout_seconds + READ_TIMEOUT_MARGIN,
        )
        return cls(client, settings.workspace_id, server_timeout=settings.query_timeout_seconds, retries=chosen)

    def close(self) -> None:
        """Close the client's HTTP session (the engine is reusable until then)."""
        self._client.close()

    def __enter__(self) -> LogAnalyticsEngine:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def run(self, query: Query) -> QueryOutcome:
        """Run `query` on the workspace; see the module docstring for what is retried and raised."""
        import tenacity

        started = time.monotonic()
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self._retries.attempts),
            wait=tenacity.wait_random_exponential(multiplier=self._retries.wait_initial, max=self._retries.wait_max),
            retry=tenacity.retry_if_exception_type(_RetriedHere),
            reraise=True,
            before_sleep=lambda state: _log.warning(
                "log_analytics_retry",
                query=query.name,
                attempt=state.attempt_number,
                error=str(state.outcome.exception()) if state.outcome else "",
            ),
        )
        try:
            outcome = retrying(self._attempt, query)
        except UpstreamError as error:
            _log.error(
                "log_analytics_failed",
                query=query.name,
                status=error.status,
                error=str(error),
                elapsed_ms=round((time.monotonic() - started) * 1000),
            )
            raise
        _log.info(
            "log_analytics_query",
            query=query.name,
            rows=len(outcome.rows),
            warnings=list(outcome.warnings),
            elapsed_ms=round((time.monotonic() - started) * 1000),
        )
        return outcome

    def _attempt(self, query: Query) -> QueryOutcome:
        from azure.core.exceptions import AzureError, HttpResponseError
        from azure.monitor.query import LogsQueryStatus

        answers: list[Any] = []  # the raw HTTP response of every attempt azure-core made

        def remember(response: Any) -> None:
            answers.append(response.http_response)

        try:
            with _SLOTS:
                result = self._client.query_workspace(
                    self._workspace_id,
                    query.text,
                    timespan=None,
                    server_timeout=self._server_timeout,
                    raw_response_hook=remember,
                )
        except json.JSONDecodeError as error:
            # azure-monitor-query 2.0.0 calls .json() on the empty 204 body, and on an error body
            # that is not JSON (a gateway's HTML page); the status says which it was.
            last: Any = answers[-1] if answers else None
            status = last.status_code if last is not None else None
            if status == 204:
                return QueryOutcome(rows=(), warnings=(f"{query.name} query: workspace returned no data (204)",), complete=False)
            if status is not None and status >= 400:
                raise _status_failure(query, status, last.headers, last.reason or "") from error
            raise UpstreamError(SERVICE, f"the {query.name} query got a response that is not JSON", status=status) from error
        except HttpResponseError as error:
            raise _http_failure(query, error) from error
        except AzureError as error:
            raise _connection_failure(query, error) from error

        if result.status == LogsQueryStatus.PARTIAL:
            partial = result.partial_error
            return QueryOutcome(
                rows=_rows(result.partial_data),
                warnings=(f"{query.name} query: partial result from Log Analytics: {_describe_error(partial)}",),
                complete=False,
            )
        return QueryOutcome(rows=_rows(result.tables))


def _rows(tables: Iterable[LogsTable]) -> tuple[dict[str, object], ...]:
    """The primary table's rows as column -> value dicts (datetimes as the SDK parsed them)."""
    for table in tables:
        columns = table.columns
        return tuple(dict(zip(columns, row, strict=True)) for row in table.rows)
    return ()


def _innermost(detail: Any) -> str:
    """`code: message` of the deepest `innererror` of one error detail (the engine's own words)."""
    node = detail
    while hasattr(node, "get") and hasattr(node.get("innererror"), "get"):
        node = node.get("innererror")
    parts = [str(p) for p in (node.get("code"), node.get("message")) if p] if hasattr(node, "get") else [str(node)]
    return ": ".join(parts)


def _describe_error(error: Any) -> str:
    """`code: message (inner code: inner message; ...)` of a LogsQueryError, for warnings and messages."""
    if error is None:
        return "no error details"
    code = getattr(error, "code", "") or ""
    message = getattr(error, "message", "") or ""
    text = f"{code}: {message}" if code and message else (code or message)
    inner = [_innermost(detail) for detail in (getattr(error, "details", None) or ())]
    shown = "; ".join(part for part in inner if part and part != text)
    if shown:
        text = f"{text} ({shown})" if text else shown
    return text or "no error details"


def _http_failure(query: Query, error: HttpResponseError) -> UpstreamError:
    """Map a non-2xx answer to the error an operator can act on."""
    status = error.status_code
    if status is None:
        # azure-identity could not get a token: the request never left.
        return UpstreamError(SERVICE, f"{query.name} query: {error.message}", hint=HINT_CREDENTIAL)
    # A body that is not a OneAPI error leaves no model: the reason phrase stands in.
    has_model = error.model is not None and not isinstance(error.model, type)
    detail = _describe_error(error.model) if has_model else (error.reason or "")
    return _status_failure(query, status, getattr(error.response, "headers", None) or {}, detail)


def _status_failure(query: Query, status: int, headers: Any, detail: str) -> UpstreamError:
    """The error for an HTTP status, typed by who retried it: `_RetriedHere` only where azure-core did not."""
    message = f"{query.name} query failed: {detail}".rstrip(": ")
    if status in (401, 403):
        return UpstreamError(SERVICE, message, status=status, hint=HINT_ACCESS)
    if status == 404:
        return UpstreamError(SERVICE, message, status=status, hint=HINT_WORKSPACE)
    if status == 400:
        return UpstreamError(SERVICE, message, status=status, hint=HINT_QUERY)
    if status == 504:
        return TransientUpstreamError(SERVICE, f"{query.name} query ran out of time: {detail}", status=status, hint=HINT_TIMEOUT)
    if status == 429 or headers.get("Retry-After"):
        hint = HINT_THROTTLED
        if headers.get("Retry-After"):
            hint = f"Log Analytics asked to wait {headers.get('Retry-After')} s; {HINT_THROTTLED}"
        kind = TransientUpstreamError if _owned_by_sdk(status, headers) else _RetriedHere
        return kind(SERVICE, message, status=status, hint=hint)
    if status in (408, 502):
        return _RetriedHere(SERVICE, message, status=status, hint=HINT_UNAVAILABLE)
    if status >= 500:
        return TransientUpstreamError(SERVICE, message, status=status, hint=HINT_UNAVAILABLE)
    return UpstreamError(SERVICE, message, status=status)


def _connection_failure(query: Query, error: AzureError) -> UpstreamError:
    """No HTTP answer: a timeout is not retried here (see the module docstring), anything else is."""
    from azure.core.exceptions import ServiceRequestTimeoutError, ServiceResponseError, ServiceResponseTimeoutError

    if isinstance(error, ServiceResponseTimeoutError):
        return TransientUpstreamError(SERVICE, f"{query.name} query: no answer before the read timeout", hint=HINT_TIMEOUT)
    if isinstance(error, ServiceRequestTimeoutError):
        return _RetriedHere(SERVICE, f"{query.name} query: could not connect in time ({error.message})", hint=HINT_UNAVAILABLE)
    if isinstance(error, ServiceResponseError):
        return _RetriedHere(
            SERVICE, f"{query.name} query: connection lost before the answer ({error.message})", hint=HINT_UNAVAILABLE
        )
    return _RetriedHere(SERVICE, f"{query.name} query: could not reach the workspace ({error.message})", hint=HINT_UNAVAILABLE)
