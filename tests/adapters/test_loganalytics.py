"""LogAnalyticsEngine through the real LogsQueryClient against a local HTTPS Log Analytics endpoint."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import duckdb_kql
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from common.errors import SettingsError, TransientUpstreamError, UpstreamError
from common.settings import Settings
from enrichment.adapters.loganalytics import (
    HINT_ACCESS,
    HINT_TIMEOUT,
    MAX_CONCURRENT_QUERIES,
    LogAnalyticsEngine,
    Retries,
    default_credential,
)
from enrichment.queries.kql import Query
from tests.fakes.loganalytics_server import (
    FakeCredential,
    LogAnalyticsServer,
    bad_request,
    empty_ok,
    forbidden,
    gateway_page,
    no_content,
    partial,
    server_error,
    slow,
    throttled,
)
from tests.fakes.tls import fake_tls
from tests.fakes.workspace_tables import create_schema_tables, insert_rows

WORKSPACE = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
ROOT = Path(__file__).resolve().parents[2]

#: Waits shrunk to milliseconds: the tests count requests, they do not sleep.
FAST = Retries(
    sdk_total=3, sdk_backoff_factor=0.01, sdk_backoff_max=0.05, retry_after_max=5, attempts=2, wait_initial=0.01, wait_max=0.05
)

SIGNINS = Query(
    "signins",
    "SigninLogs | project TimeGenerated, UserPrincipalName, IPAddress, LocationDetails, City = tostring(LocationDetails.city)"
    " | order by TimeGenerated asc",
)


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb_kql.connect()
    create_schema_tables(connection)
    insert_rows(
        connection,
        "SigninLogs",
        [
            {
                "TimeGenerated": datetime(2026, 3, 2, 9, 30, 15, 250000, tzinfo=UTC),
                "UserPrincipalName": "alice@contoso.com",
                "IPAddress": "198.51.100.4",
                "LocationDetails": {"city": "Lyon", "countryOrRegion": "FR"},
            },
            {
                "TimeGenerated": datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
                "UserPrincipalName": "alice@contoso.com",
                "IPAddress": "203.0.113.9",
                "LocationDetails": {"city": "Lagos", "countryOrRegion": "NG"},
            },
        ],
    )
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def server(con: duckdb.DuckDBPyConnection) -> Iterator[LogAnalyticsServer]:
    with LogAnalyticsServer(con, workspace_id=WORKSPACE) as endpoint:
        yield endpoint


@pytest.fixture
def la(server: LogAnalyticsServer) -> LogAnalyticsServer:
    server.reset()
    return server


def _settings(url: str, **values: str) -> Settings:
    return Settings.from_values({"REPLAY_WORKSPACE_ID": WORKSPACE, "REPLAY_LOGS_ENDPOINT": url, **values})


def _engine(la: LogAnalyticsServer, credential: Any = None, *, retries: Retries = FAST, **kwargs: Any) -> LogAnalyticsEngine:
    return LogAnalyticsEngine.create(
        _settings(la.url), credential or FakeCredential(), connection_verify=la.ca_path, retries=retries, **kwargs
    )


class TestSuccess:
    def test_rows_come_back_as_dicts_with_aware_datetimes(self, la: LogAnalyticsServer) -> None:
        """A 200 becomes one dict per row; datetime columns are timezone-aware UTC, dynamic as the SDK gives it."""
        outcome = _engine(la).run(SIGNINS)
        assert outcome.warnings == ()
        assert [r["IPAddress"] for r in outcome.rows] == ["198.51.100.4", "203.0.113.9"]
        first = outcome.rows[0]
        moment = first["TimeGenerated"]
        assert isinstance(moment, datetime)
        assert moment.utcoffset() is not None
        assert moment.astimezone(UTC) == datetime(2026, 3, 2, 9, 30, 15, 250000, tzinfo=UTC)
        assert first["City"] == "Lyon"
        assert first["LocationDetails"] == {"city": "Lyon", "countryOrRegion": "FR"}

    def test_dynamic_values_sent_as_text_come_back_as_text(self, con: duckdb.DuckDBPyConnection) -> None:
        """When dynamic values arrive as JSON text, the engine passes the text through unchanged."""
        with LogAnalyticsServer(con, workspace_id=WORKSPACE, dynamic="text") as endpoint:
            outcome = _engine(endpoint).run(SIGNINS)
        assert outcome.rows[1]["LocationDetails"] == '{"city":"Lagos","countryOrRegion":"NG"}'

    def test_request_is_one_post_with_the_query_text_and_server_timeout(self, la: LogAnalyticsServer) -> None:
        """The query travels verbatim in one POST, with no timespan and Prefer: wait=<REPLAY_QUERY_TIMEOUT_SECONDS>."""
        engine = LogAnalyticsEngine.create(
            _settings(la.url, REPLAY_QUERY_TIMEOUT_SECONDS="45"), FakeCredential(), connection_verify=la.ca_path, retries=FAST
        )
        engine.run(SIGNINS)
        [request] = la.requests
        assert (request.method, request.path, request.status) == ("POST", f"/v1/workspaces/{WORKSPACE}/query", 200)
        assert request.query == SIGNINS.text
        assert request.timespan is None
        assert request.prefer == "wait=45"
        assert request.authorization == "Bearer fake-la-token"

    def test_token_scope_is_the_log_analytics_audience_not_the_endpoint(self, la: LogAnalyticsServer) -> None:
        """Pointed at 127.0.0.1, the engine still asks for https://api.loganalytics.io/.default."""
        credential = FakeCredential()
        _engine(la, credential).run(SIGNINS)
        assert credential.scopes == [("https://api.loganalytics.io/.default",)]

    def test_engine_name(self, la: LogAnalyticsServer) -> None:
        """Warnings and logs name the engine "log-analytics"."""
        assert _engine(la).name == "log-analytics"

    def test_engine_is_reusable_until_closed(self, la: LogAnalyticsServer) -> None:
        """One engine runs many queries on one client; leaving its `with` block closes the session."""
        with _engine(la) as engine:
            engine.run(SIGNINS)
            engine.run(SIGNINS)
        assert la.count() == 2


class TestAzureCoreOwnsRetryAfterAnd5xx:
    @pytest.mark.slow
    def test_429_with_retry_after_is_honoured_by_azure_core(self, la: LogAnalyticsServer) -> None:
        """Two 429s with Retry-After: 0.3 are waited out (>= 0.6 s) and retried by azure-core, then rows."""
        la.fail(throttled(0.3), throttled(0.3))
        started = time.monotonic()
        outcome = _engine(la).run(SIGNINS)
        elapsed = time.monotonic() - started
        assert len(outcome.rows) == 2
        assert la.count() == 3
        assert 0.6 <= elapsed < 5

    def test_persistent_429_with_retry_after_is_not_retried_again_by_tenacity(self, la: LogAnalyticsServer) -> None:
        """azure-core's retry_total bounds a Retry-After storm: 1 + 3 requests, then TransientUpstreamError."""
        la.fail(*[throttled(0.01)] * 10)
        with pytest.raises(TransientUpstreamError) as caught:
            _engine(la).run(SIGNINS)
        assert caught.value.status == 429
        assert la.count() == 1 + FAST.sdk_total

    def test_retry_after_beyond_the_cap_is_not_slept(self, la: LogAnalyticsServer) -> None:
        """A 429 asking for longer than retry_after_max fails at once as TransientUpstreamError naming the wait."""
        la.fail(*[throttled(2)] * 4)
        started = time.monotonic()
        with pytest.raises(TransientUpstreamError) as caught:
            _engine(la, retries=replace(FAST, retry_after_max=0.2)).run(SIGNINS)
        assert time.monotonic() - started < 1.5
        assert la.count() == 1
        assert "asked to wait 2 s" in caught.value.hint

    def test_unparseable_retry_after_falls_back_to_backoff(self, la: LogAnalyticsServer) -> None:
        """A Retry-After that is neither seconds nor a date is retried with backoff instead of crashing."""
        la.fail(throttled("soon"))
        assert len(_engine(la).run(SIGNINS).rows) == 2
        assert la.count() == 2

    @pytest.mark.parametrize("status", [500, 503])
    def test_500_and_503_are_retried_by_azure_core(self, la: LogAnalyticsServer, status: int) -> None:
        """A 500/503 then success costs exactly two requests."""
        la.fail(server_error(status))
        assert len(_engine(la).run(SIGNINS).rows) == 2
        assert la.count() == 2

    def test_persistent_500_fails_after_azure_cores_attempts_only(self, la: LogAnalyticsServer) -> None:
        """Endless 500s: 1 + sdk_total requests (tenacity adds none), then TransientUpstreamError."""
        la.fail(*[server_error(500)] * 20)
        with pytest.raises(TransientUpstreamError) as caught:
            _engine(la).run(SIGNINS)
        assert caught.value.status == 500
        assert la.count() == 1 + FAST.sdk_total


class TestTenacityOwnsWhatAzureCoreSkips:
    def test_429_without_retry_after_is_retried_once_by_one_owner(self, la: LogAnalyticsServer) -> None:
        """A bare 429 then success: exactly 2 requests (azure-core does not retry a POST 429 without Retry-After)."""
        la.fail(throttled())
        assert len(_engine(la).run(SIGNINS).rows) == 2
        assert la.count() == 2

    def test_persistent_429_without_retry_after_stops_after_attempts(self, la: LogAnalyticsServer) -> None:
        """Bare 429s forever: `attempts` requests in all (not attempts x sdk attempts), then TransientUpstreamError."""
        la.fail(*[throttled()] * 10)
        with pytest.raises(TransientUpstreamError) as caught:
            _engine(la).run(SIGNINS)
        assert caught.value.status == 429
        assert la.count() == FAST.attempts

    @pytest.mark.parametrize("status", [502, 408])
    def test_502_and_408_are_retried_by_tenacity(self, la: LogAnalyticsServer, status: int) -> None:
        """502/408 on a POST: one more request, then rows."""
        la.fail(server_error(status))
        assert len(_engine(la).run(SIGNINS).rows) == 2
        assert la.count() == 2

    @pytest.mark.parametrize(("status", "requests"), [(502, FAST.attempts), (500, 1 + FAST.sdk_total)])
    def test_an_html_error_page_is_retried_by_its_owner_and_named(
        self, la: LogAnalyticsServer, status: int, requests: int
    ) -> None:
        """A 5xx HTML page (no OneAPI body; the SDK trips on its JSON) is retried by the owner of that status only."""
        la.fail(*[gateway_page(status)] * 10)
        with pytest.raises(TransientUpstreamError) as caught:
            _engine(la).run(SIGNINS)
        assert caught.value.status == status
        assert la.count() == requests

    def test_different_failures_are_each_retried_by_their_owner(self, la: LogAnalyticsServer) -> None:
        """502 (tenacity) then 500 (azure-core) then success: 3 requests, no failure retried twice."""
        la.fail(server_error(502), server_error(500))
        assert len(_engine(la).run(SIGNINS).rows) == 2
        assert la.count() == 3

    def test_dropped_connections_are_retried_by_tenacity(self) -> None:
        """A server that accepts and hangs up: `attempts` connections, then TransientUpstreamError."""
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.05)
        accepted: list[int] = []
        done = threading.Event()

        def serve() -> None:
            while not done.is_set():
                try:
                    connection, _ = listener.accept()
                except TimeoutError:
                    continue
                accepted.append(1)
                connection.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            url = f"https://127.0.0.1:{listener.getsockname()[1]}"
            engine = LogAnalyticsEngine.create(_settings(url), FakeCredential(), retries=FAST)
            with pytest.raises(TransientUpstreamError):
                engine.run(SIGNINS)
        finally:
            done.set()
            thread.join(timeout=5)
            listener.close()
        assert len(accepted) == FAST.attempts


class TestAnswersThatAreNotFailures:
    def test_partial_result_keeps_rows_and_names_the_error(self, la: LogAnalyticsServer) -> None:
        """A 200 with a PartialError keeps its rows; the warning names the code and the engine's message."""
        la.fail(partial("E_QUERY_RESULT_SET_TOO_LARGE", "Query result set has exceeded the internal record count limit"))
        outcome = _engine(la).run(SIGNINS)
        assert len(outcome.rows) == 2
        [warning] = outcome.warnings
        assert "PartialError" in warning
        assert "E_QUERY_RESULT_SET_TOO_LARGE: Query result set has exceeded the internal record count limit" in warning
        assert warning.startswith("signins query")

    def test_204_is_no_data_with_a_warning(self, la: LogAnalyticsServer) -> None:
        """A 204 (workspace has no data) is no rows and a warning, not the SDK's JSONDecodeError."""
        la.fail(no_content())
        outcome = _engine(la).run(SIGNINS)
        assert outcome.rows == ()
        assert outcome.warnings == ("signins query: workspace returned no data (204)",)
        assert la.count() == 1

    def test_empty_200_is_an_error_not_no_data(self, la: LogAnalyticsServer) -> None:
        """Only a 204 means "no data": an empty 200 body is an UpstreamError, so nothing is silently lost."""
        la.fail(empty_ok())
        with pytest.raises(UpstreamError, match="not JSON") as caught:
            _engine(la).run(SIGNINS)
        assert caught.value.status == 200


class TestHardFailures:
    def test_400_carries_the_query_error_message(self, la: LogAnalyticsServer) -> None:
        """A 400 raises UpstreamError (not transient) with the innermost error message, after one request."""
        la.fail(bad_request("Query could not be parsed at 'x' on line [1,5]"))
        with pytest.raises(UpstreamError) as caught:
            _engine(la).run(SIGNINS)
        assert not isinstance(caught.value, TransientUpstreamError)
        assert caught.value.status == 400
        assert "Query could not be parsed at 'x' on line [1,5]" in str(caught.value)
        assert la.count() == 1

    def test_a_query_the_engine_refuses_is_a_400_with_its_reason(self, la: LogAnalyticsServer) -> None:
        """KQL naming a missing table is refused by the endpoint's real engine; the reason reaches the error."""
        with pytest.raises(UpstreamError) as caught:
            _engine(la).run(Query("broken", "NoSuchTable | take 1"))
        assert caught.value.status == 400
        assert "NoSuchTable" in str(caught.value)

    def test_403_hints_at_the_log_analytics_reader_role(self, la: LogAnalyticsServer) -> None:
        """A 403 says which role to grant and that assignments take up to an hour; it is not retried."""
        la.fail(forbidden())
        with pytest.raises(UpstreamError) as caught:
            _engine(la).run(SIGNINS)
        assert caught.value.status == 403
        assert caught.value.hint == HINT_ACCESS
        assert "InsufficientAccessError" in str(caught.value)
        assert la.count() == 1

    def test_unknown_workspace_hints_at_the_setting(self, la: LogAnalyticsServer) -> None:
        """A 404 for the workspace points at REPLAY_WORKSPACE_ID."""
        settings = Settings.from_values(
            {"REPLAY_WORKSPACE_ID": "99999999-9999-9999-9999-999999999999", "REPLAY_LOGS_ENDPOINT": la.url}
        )
        engine = LogAnalyticsEngine.create(settings, FakeCredential(), connection_verify=la.ca_path, retries=FAST)
        with pytest.raises(UpstreamError) as caught:
            engine.run(SIGNINS)
        assert caught.value.status == 404
        assert "REPLAY_WORKSPACE_ID" in caught.value.hint

    @pytest.mark.slow
    def test_read_timeout_is_not_retried_and_says_what_to_change(self, la: LogAnalyticsServer) -> None:
        """A slow answer past the read timeout fails once (the second scripted slow answer is never asked for)."""
        la.fail(slow(2.0), slow(2.0))
        started = time.monotonic()
        with pytest.raises(TransientUpstreamError) as caught:
            _engine(la, read_timeout=0.3).run(SIGNINS)
        assert time.monotonic() - started < 1.5
        assert caught.value.hint == HINT_TIMEOUT
        assert la.pending_faults() == 1

    def test_504_query_overran_is_not_rerun(self, la: LogAnalyticsServer) -> None:
        """504 (the query overran its server timeout) fails after one request with the timeout hint."""
        la.fail(server_error(504), server_error(504))
        with pytest.raises(TransientUpstreamError) as caught:
            _engine(la).run(SIGNINS)
        assert caught.value.status == 504
        assert caught.value.hint == HINT_TIMEOUT
        assert la.count() == 1

    def test_credential_failure_sends_nothing_and_hints_at_the_identity(self, la: LogAnalyticsServer) -> None:
        """When no token can be had, no request leaves and the error points at the managed identity."""

        class NoToken:
            def get_token(self, *_scopes: str, **_kwargs: Any) -> AccessToken:
                raise ClientAuthenticationError("ManagedIdentityCredential: no identity endpoint")

        with pytest.raises(UpstreamError) as caught:
            _engine(la, NoToken()).run(SIGNINS)
        assert "AZURE_CLIENT_ID" in caught.value.hint
        assert "no identity endpoint" in str(caught.value)
        assert la.count() == 0


class TestCreate:
    def test_missing_workspace_is_a_settings_error(self) -> None:
        """Without REPLAY_WORKSPACE_ID the engine is refused by name before any client exists."""
        with pytest.raises(SettingsError, match="REPLAY_WORKSPACE_ID"):
            LogAnalyticsEngine.create(Settings(), FakeCredential())

    def test_user_assigned_identity_is_used_when_named(self) -> None:
        """AZURE_CLIENT_ID selects ManagedIdentityCredential; without it DefaultAzureCredential is used."""
        from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

        named = Settings.from_values({"AZURE_CLIENT_ID": "5d2c1b0a-1111-2222-3333-444455556666"})
        assert isinstance(default_credential(named), ManagedIdentityCredential)
        assert isinstance(default_credential(Settings()), DefaultAzureCredential)

    def test_retry_bounds_are_validated(self) -> None:
        """Zero attempts or negative waits are refused when the bounds are built."""
        with pytest.raises(ValueError, match="attempts"):
            Retries(attempts=0)
        with pytest.raises(ValueError, match="negative"):
            Retries(retry_after_max=-1)

    @pytest.mark.slow
    def test_import_is_cheap_and_loads_no_azure_sdk(self) -> None:
        """Importing the module loads neither azure.* nor tenacity (the CLI imports it at start-up)."""
        probe = (
            "import sys, enrichment.adapters.loganalytics; "
            "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith(('azure', 'tenacity', 'msgraph'))}))"
        )
        result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
        assert result.stdout.strip() == "[]"


@pytest.mark.slow
class TestConcurrencyBudget:
    def test_no_more_queries_run_at_once_than_log_analytics_allows_an_identity(self, la: LogAnalyticsServer) -> None:
        """Eight queries started together from threads: at most five reach the workspace at a time, and all answer."""
        assert MAX_CONCURRENT_QUERIES == 5
        for _ in range(8):
            la.fail(slow(0.3))
        engine = _engine(la)
        outcomes: list[int] = []

        def run() -> None:
            outcomes.append(len(engine.run(SIGNINS).rows))

        threads = [threading.Thread(target=run) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert outcomes == [2] * 8
        assert la.max_in_flight == MAX_CONCURRENT_QUERIES


class TestFakeEndpointFidelity:
    @staticmethod
    def _post(la: LogAnalyticsServer, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            f"{la.url}/v1/workspaces/{WORKSPACE}/query", data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, context=fake_tls().client_context(), timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def test_a_request_without_a_bearer_token_is_refused(self, la: LogAnalyticsServer) -> None:
        """Like the service, the fake answers 401 AuthenticationFailed when no bearer token is sent."""
        status, body = self._post(la, {"query": "SigninLogs | take 1"}, {"Content-Type": "application/json"})
        assert status == 401
        assert body["error"]["code"] == "AuthenticationFailed"

    def test_wire_format_uses_kusto_types_and_iso_datetimes(self, la: LogAnalyticsServer) -> None:
        """Columns carry Kusto types; datetimes are ISO with Z, longs are numbers, dynamic values are inline JSON."""
        query = (
            'print When = datetime(2026-03-02T09:30:15.25Z), N = tolong(7), Flag = true, Ratio = 0.5, Name = "x",'
            ' Bag = dynamic({"a": [1, 2]})'
        )
        status, body = self._post(
            la, {"query": query, "timespan": None}, {"Content-Type": "application/json", "Authorization": "Bearer t"}
        )
        assert status == 200
        [table] = body["tables"]
        assert table["name"] == "PrimaryResult"
        assert [(c["name"], c["type"]) for c in table["columns"]] == [
            ("When", "datetime"),
            ("N", "long"),
            ("Flag", "bool"),
            ("Ratio", "real"),
            ("Name", "string"),
            ("Bag", "dynamic"),
        ]
        assert table["rows"] == [["2026-03-02T09:30:15.250000Z", 7, True, 0.5, "x", {"a": [1, 2]}]]
