"""Both engines answer every production query with the same rows, and gather the same evidence, from the same data."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import duckdb_kql
import pytest

from common.errors import UpstreamError
from common.settings import Settings
from enrichment.adapters import embedded as embedded_module
from enrichment.adapters.embedded import WATCHLIST_FUNCTION, EmbeddedEngine
from enrichment.adapters.loganalytics import LogAnalyticsEngine, Retries
from enrichment.domain.model import Account, Coverage, QueryOutcome, Table, UserEvidence
from enrichment.queries import kql
from enrichment.services.gather import baseline_window, evidence_window, gather_evidence
from tests.fakes.loganalytics_server import (
    FakeCredential,
    LogAnalyticsServer,
    forbidden,
    no_content,
    partial,
    server_error,
    slow,
    throttled,
)
from tests.fakes.workspace_tables import create_schema_tables, insert_rows

pytestmark = pytest.mark.slow

WORKSPACE = "6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d"
AT = datetime(2026, 4, 14, 9, 0, tzinfo=UTC)
FAST = Retries(
    sdk_total=3, sdk_backoff_factor=0.01, sdk_backoff_max=0.05, retry_after_max=5, attempts=2, wait_initial=0.01, wait_max=0.05
)

ALICE = Account("alice@contoso.com", "a11ce000-0000-4000-8000-000000000001")
BOB = Account("bob@contoso.com", "")
GUEST = Account("", "9e57e000-0000-4000-8000-000000000003")  # known only by object id
ACCOUNTS = (ALICE, BOB, GUEST)

HOME_IP, ATTACKER_IP, OFFICE_IP = "192.0.2.10", "203.0.113.66", "198.51.100.20"
SESSION = "5e55a000-0000-4000-8000-00000000beef"
OUTLOOK = ("00000002-0000-0ff1-ce00-000000000000", "Office 365 Exchange Online")


def _location(city: str, country: str, lat: float, lon: float) -> dict[str, Any]:
    return {"city": city, "state": "", "countryOrRegion": country, "geoCoordinates": {"latitude": lat, "longitude": lon}}


def _device(device_id: str, name: str, *, compliant: bool) -> dict[str, Any]:
    return {
        "deviceId": device_id,
        "displayName": name,
        "operatingSystem": "Windows 11",
        "browser": "Edge 124.0",
        "isCompliant": compliant,
        "isManaged": compliant,
        "trustType": "Azure AD joined" if compliant else "",
    }


def _signin(user: Account, at: datetime, ip: str, asn: str, where: dict[str, Any], **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "TimeGenerated": at,
        "UserPrincipalName": user.upn or "guest_fabrikam.com#EXT#@contoso.onmicrosoft.com",
        "UserId": user.object_id or "b0b00000-0000-4000-8000-000000000002",
        "IPAddress": ip,
        "AutonomousSystemNumber": asn,
        "LocationDetails": where,
        "SessionId": SESSION,
        "AppId": "d3590ed6-52b3-4102-aeff-aad2292ab01c",
        "AppDisplayName": "Microsoft Office",
        "ResourceIdentity": OUTLOOK[0],
        "ResourceDisplayName": OUTLOOK[1],
        "UserAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Edg/124.0",
        "ClientAppUsed": "Browser",
        "AuthenticationProtocol": "none",
        "IncomingTokenType": "none",
        "DeviceDetail": _device("dev-alice-1", "ALICE-LAPTOP", compliant=True),
        "ResultType": "0",
        "AuthenticationRequirement": "multiFactorAuthentication",
        "AuthenticationDetails": json.dumps([{"authenticationMethod": "Password", "succeeded": True}]),
        "TokenProtectionStatusDetails": {"signInSessionStatus": "unbound", "signInSessionStatusCode": 1002},
        "RiskLevelDuringSignIn": "none",
        "RiskEventTypes_V2": "[]",
        "NetworkLocationDetails": "[]",
    }
    row.update(extra)
    return row


def _dataset(con: duckdb.DuckDBPyConnection) -> None:
    """Three users over both tables: history, an interactive sign-in, token refreshes, a replay, an MFA change, a trip."""
    paris = _location("Paris", "FR", 48.8566, 2.3522)
    lagos = _location("Lagos", "NG", 6.4550, 3.3941)
    tokyo = _location("Tokyo", "JP", 35.6762, 139.6503)
    office = json.dumps([{"networkType": "trustedNamedLocation", "networkNames": ["Paris HQ"]}])
    interactive = [
        _signin(ALICE, AT - timedelta(hours=2), HOME_IP, "7922", paris),
        _signin(ALICE, AT - timedelta(days=3, hours=1), HOME_IP, "7922", paris),
        _signin(ALICE, AT - timedelta(days=6), OFFICE_IP, "3215", paris, NetworkLocationDetails=office),
        _signin(BOB, AT - timedelta(hours=5), "198.51.100.77", "2516", tokyo, SessionId="b0b5e55-1"),
        _signin(BOB, AT - timedelta(days=4), OFFICE_IP, "3215", paris, SessionId="b0b5e55-0"),
        _signin(ALICE, AT - timedelta(days=40), HOME_IP, "7922", paris),  # before the baseline: never read
    ]
    refresh = {
        "AuthenticationDetails": json.dumps([{"authenticationMethod": "Previously satisfied", "succeeded": True}]),
        "AuthenticationRequirement": "singleFactorAuthentication",
        "IncomingTokenType": "refreshToken",
        "ClientAppUsed": "Mobile Apps and Desktop clients",
        "AuthenticationProtocol": "none",
    }
    non_interactive = []
    for minutes in (0, 3, 7, 31, 64):
        non_interactive.append(
            _signin(ALICE, AT - timedelta(hours=2) + timedelta(minutes=minutes), HOME_IP, "7922", paris, **refresh)
        )
    for minutes in (5, 6, 9, 12):
        non_interactive.append(
            _signin(
                ALICE,
                AT - timedelta(minutes=50) + timedelta(minutes=minutes),
                ATTACKER_IP,
                "136787",
                lagos,
                UserAgent="python-requests/2.32",
                DeviceDetail=_device("", "", compliant=False),
                RiskLevelDuringSignIn="medium",
                RiskEventTypes_V2='["unfamiliarFeatures","anomalousToken"]',
                **refresh,
            )
        )
    for day in range(1, 12):
        non_interactive.append(_signin(ALICE, AT - timedelta(days=day, hours=3), HOME_IP, "7922", paris, **refresh))
    non_interactive.append(_signin(GUEST, AT + timedelta(hours=1), "198.51.100.200", "8075", paris, SessionId="9e57", **refresh))
    non_interactive.append(_signin(GUEST, AT - timedelta(days=2), "198.51.100.200", "8075", paris, SessionId="9e57", **refresh))
    # The non-interactive table stores its JSON columns as text.
    for row in non_interactive:
        for column in ("LocationDetails", "DeviceDetail", "TokenProtectionStatusDetails"):
            row[column] = json.dumps(row[column])
    insert_rows(con, Table.INTERACTIVE.value, interactive)
    insert_rows(con, Table.NON_INTERACTIVE.value, non_interactive)
    insert_rows(
        con,
        "AuditLogs",
        [
            {
                "TimeGenerated": AT - timedelta(minutes=30),
                "OperationName": "User registered security info",
                "Result": "success",
                "InitiatedBy": {
                    "user": {"userPrincipalName": "Alice@Contoso.com", "id": ALICE.object_id, "ipAddress": ATTACKER_IP}
                },
                "TargetResources": [{"userPrincipalName": "alice@contoso.com", "id": ALICE.object_id, "displayName": "Alice"}],
            },
            {
                "TimeGenerated": AT - timedelta(minutes=20),
                "OperationName": "Update application",
                "Result": "success",
                "InitiatedBy": {"user": {"userPrincipalName": "alice@contoso.com", "id": ALICE.object_id, "ipAddress": HOME_IP}},
                "TargetResources": [{"displayName": "Some app"}],
            },
        ],
    )
    insert_rows(
        con,
        "Watchlists",
        [
            {
                "WatchlistAlias": "TravelRecords",
                "SearchKey": "bob@contoso.com",
                "UserPrincipalName": "bob@contoso.com",
                "Country": "jp",
                "StartTime": "2026-04-10T00:00:00Z",
                "EndTime": "2026-04-20T00:00:00Z",
            },
            {
                "WatchlistAlias": "OtherList",
                "SearchKey": "alice@contoso.com",
                "UserPrincipalName": "alice@contoso.com",
                "Country": "NG",
                "StartTime": "2026-04-10T00:00:00Z",
                "EndTime": "2026-04-20T00:00:00Z",
            },
        ],
    )


def _queries(settings: Settings) -> list[kql.Query]:
    window = evidence_window(AT, settings)
    return [
        kql.evidence_query(ACCOUNTS, window, AT, row_cap=settings.row_cap),
        kql.baseline_query(ACCOUNTS, baseline_window(window, settings)),
        kql.context_query(ACCOUNTS, window, travel_watchlist=settings.travel_watchlist),
    ]


def _normal(value: object) -> object:
    """
    Aware UTC datetimes; JSON text of a list/object parsed (dynamic values travel either way); lists
    of scalars sorted, because `make_set` promises no order on either engine.
    """
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    if isinstance(value, list) and all(isinstance(item, (str, int, float)) for item in value):
        return sorted(value, key=repr)
    return value


def _normalised(outcome: QueryOutcome) -> list[dict[str, object]]:
    rows = [{column: _normal(value) for column, value in row.items()} for row in outcome.rows]
    return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True, default=str))


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb_kql.connect()
    create_schema_tables(connection)
    _dataset(connection)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def embedded(con: duckdb.DuckDBPyConnection) -> EmbeddedEngine:
    return EmbeddedEngine(con)


@pytest.fixture(scope="module")
def expected(embedded: EmbeddedEngine) -> dict[str, QueryOutcome]:
    """The embedded engine's answers, computed once (translation is the slow part) and compared many times."""
    return {query.name: embedded.run(query) for query in _queries(_settings())}


@pytest.fixture(scope="module")
def expected_evidence(embedded: EmbeddedEngine) -> tuple[UserEvidence, ...]:
    return gather_evidence(embedded, ACCOUNTS, AT, _settings())


@pytest.fixture(scope="module")
def server(con: duckdb.DuckDBPyConnection) -> Iterator[LogAnalyticsServer]:
    """The endpoint, sending dynamic values inline as the query API does."""
    with LogAnalyticsServer(con, workspace_id=WORKSPACE, functions=[WATCHLIST_FUNCTION]) as endpoint:
        yield endpoint


@pytest.fixture
def la(server: LogAnalyticsServer) -> LogAnalyticsServer:
    server.reset()
    return server


def _settings(url: str = "https://api.loganalytics.io") -> Settings:
    return Settings.from_values({"REPLAY_WORKSPACE_ID": WORKSPACE, "REPLAY_LOGS_ENDPOINT": url})


def _remote(la: LogAnalyticsServer) -> LogAnalyticsEngine:
    return LogAnalyticsEngine.create(_settings(la.url), FakeCredential(), connection_verify=la.ca_path, retries=FAST)


def _rows_only(evidence: tuple[UserEvidence, ...]) -> tuple[UserEvidence, ...]:
    """The evidence without its warnings and without what it says about the tables: the rows and what they became."""
    return tuple(replace(item, warnings=(), coverage=Coverage()) for item in evidence)


class TestSameRows:
    @pytest.mark.parametrize("index", [0, 1, 2], ids=["evidence", "baseline", "context"])
    def test_every_production_query_gives_the_same_rows(
        self, expected: dict[str, QueryOutcome], la: LogAnalyticsServer, index: int
    ) -> None:
        """Evidence, baseline and context: identical rows after normalising datetimes and dynamic values."""
        query = _queries(_settings())[index]
        local = expected[query.name]
        remote = _remote(la).run(query)
        assert local.rows, f"the dataset must give the {query.name} query rows to compare"
        assert _normalised(remote) == _normalised(local)
        assert remote.warnings == local.warnings == ()

    def test_dynamic_values_as_text_give_the_same_rows(
        self, con: duckdb.DuckDBPyConnection, expected: dict[str, QueryOutcome]
    ) -> None:
        """With dynamic values sent as JSON text (not inline), the baseline's sets still match the embedded rows."""
        query = _queries(_settings())[1]
        with LogAnalyticsServer(con, workspace_id=WORKSPACE, functions=[WATCHLIST_FUNCTION], dynamic="text") as endpoint:
            remote = _remote(endpoint).run(query)
        assert all(isinstance(row["Ips"], str) for row in remote.rows if row["Scope"] == "table")
        assert _normalised(remote) == _normalised(expected[query.name])

    def test_faults_on_the_way_change_nothing_but_the_partial_warning(
        self, expected: dict[str, QueryOutcome], la: LogAnalyticsServer
    ) -> None:
        """429+Retry-After on evidence, 500 on baseline, a partial error on context: same rows, one warning."""
        la.fail(throttled(0.05), query="evidence")
        la.fail(server_error(500), query="baseline")
        la.fail(partial(), query="context")
        engine = _remote(la)
        for query in _queries(_settings()):
            remote = engine.run(query)
            assert _normalised(remote) == _normalised(expected[query.name])
            assert len(remote.warnings) == (1 if query.name == "context" else 0)
        assert (la.count("evidence"), la.count("baseline"), la.count("context")) == (2, 2, 1)
        assert la.pending_faults() == 0


class TestEmptyWorkspace:
    def test_204_and_an_empty_database_both_mean_no_rows(self, la: LogAnalyticsServer) -> None:
        """An empty embedded database gives no rows; a workspace answering 204 gives none too, with a warning."""
        empty = duckdb_kql.connect()
        create_schema_tables(empty)
        try:
            local = EmbeddedEngine(empty)
            remote = _remote(la)
            for query in _queries(_settings()):
                la.fail(no_content())
                answer = remote.run(query)
                assert local.run(query).rows == answer.rows == ()
                assert answer.warnings == (f"{query.name} query: workspace returned no data (204)",)
            assert la.count() == 3
        finally:
            empty.close()


class TestSameEvidence:
    def test_gathered_evidence_is_equal(self, expected_evidence: tuple[UserEvidence, ...], la: LogAnalyticsServer) -> None:
        """gather_evidence over either engine builds equal UserEvidence values, in three requests."""
        remote = gather_evidence(_remote(la), ACCOUNTS, AT, _settings())
        assert remote == expected_evidence
        assert la.count() == 3
        alice, bob, guest = expected_evidence
        assert alice.account.upn == "alice@contoso.com"
        assert {s.ip for s in alice.signins} >= {HOME_IP, ATTACKER_IP}
        assert [e.operation for e in alice.security_events] == ["User registered security info"]
        assert [(t.user, t.country) for t in bob.travel] == [("bob@contoso.com", "JP")]
        assert guest.signins
        assert guest.account.object_id == GUEST.object_id
        assert not alice.baseline.empty

    def test_evidence_cut_at_the_row_cap_is_not_read_whole(self, embedded: EmbeddedEngine) -> None:
        """A truncated answer keeps the nearest rows and marks both sign-in tables as not read whole, saying why."""
        settings = replace(_settings(), row_cap=2)  # below the setting's floor of 100: the fixture holds a few rows
        alice = gather_evidence(embedded, ACCOUNTS, AT, settings)[0]
        assert alice.truncated
        assert [(t.table, t.read) for t in alice.coverage.tables] == [
            (Table.INTERACTIVE.value, False),
            (Table.NON_INTERACTIVE.value, False),
            ("AuditLogs", True),
        ]
        assert all(t.problem.startswith("evidence truncated at 2 rows") for t in alice.coverage.tables[:2])

    def test_gathered_evidence_survives_faults(self, expected_evidence: tuple[UserEvidence, ...], la: LogAnalyticsServer) -> None:
        """Retried faults leave the evidence unchanged; a partial answer adds its warning and marks its table not read whole."""
        la.fail(throttled(0.05), query="evidence")
        la.fail(server_error(503), query="baseline")
        la.fail(partial(), query="context")
        remote = gather_evidence(_remote(la), ACCOUNTS, AT, _settings())
        assert _rows_only(remote) == _rows_only(expected_evidence)
        assert all(any("PartialError" in w for w in item.warnings) for item in remote)
        for item in remote:
            audit = item.coverage.table("AuditLogs")
            assert audit is not None
            assert not audit.read
            assert "PartialError" in audit.problem
            assert [t.read for t in item.coverage.tables if t.table != "AuditLogs"] == [True, True]
        assert la.count() == 5


class TestSameBody:
    def test_both_engines_get_the_same_body_text(
        self, con: duckdb.DuckDBPyConnection, la: LogAnalyticsServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """What Log Analytics receives after its `let` lines is, question for question, what the embedded engine translates."""
        translated: list[str] = []
        real = embedded_module.translate

        def spy(name: str, declared: str, schema: Any) -> Any:
            translated.append(declared)
            return real(name, declared, schema)

        monkeypatch.setattr(embedded_module, "translate", spy)
        monkeypatch.setattr(embedded_module, "_MEMO", {})
        gather_evidence(EmbeddedEngine(con), ACCOUNTS, AT, _settings())
        gather_evidence(_remote(la), ACCOUNTS, AT, _settings())
        received = [re.sub(r"\A(?:let [a-z_]+ = [^\n]*;\n)+", "", request.query) for request in la.requests]
        declared = [re.sub(r"\Adeclare query_parameters\([^\n]*\);\n", "", text) for text in translated]
        assert sorted(received) == sorted(declared) == sorted(q.body for q in kql.QUESTIONS)
        assert all(request.query != body for request, body in zip(la.requests, received, strict=True))


class TestSideBySide:
    def test_the_three_questions_run_at_the_same_time(self, la: LogAnalyticsServer) -> None:
        """gather_evidence sends evidence, baseline and context together: all three are in flight at once."""
        for name in ("evidence", "baseline", "context"):
            la.fail(slow(0.5), query=name)
        gather_evidence(_remote(la), ACCOUNTS, AT, _settings())
        assert la.max_in_flight == 3
        assert la.count() == 3

    def test_a_failed_question_fails_the_gather_with_its_own_error(self, la: LogAnalyticsServer) -> None:
        """When one of the three fails, the caller gets that failure, not a silent partial picture."""
        la.fail(forbidden(), query="baseline")
        with pytest.raises(UpstreamError, match="baseline query failed") as caught:
            gather_evidence(_remote(la), ACCOUNTS, AT, _settings())
        assert caught.value.status == 403


class TestRowCapPerAccount:
    def test_a_busy_account_is_cut_without_pushing_the_others_out(self, embedded: EmbeddedEngine, la: LogAnalyticsServer) -> None:
        """With a cap of 3 groups, Alice (many groups) is truncated to her 3 nearest; Bob and the guest keep all of theirs."""
        settings = replace(_settings(), row_cap=3)
        uncapped = {e.account.key: e for e in gather_evidence(embedded, ACCOUNTS, AT, _settings())}
        for engine in (embedded, _remote(la)):
            alice, bob, guest = gather_evidence(engine, ACCOUNTS, AT, settings)
            assert len(uncapped["alice@contoso.com"].signins) > 3
            assert alice.truncated
            assert len(alice.signins) == 3
            assert any("evidence truncated at 3 rows" in w for w in alice.warnings)
            nearest = sorted(uncapped["alice@contoso.com"].signins, key=lambda s: abs((s.first - AT).total_seconds()))[:3]
            assert set(alice.signins) == set(nearest)
            for other in (bob, guest):
                assert not other.truncated
                assert other.signins == uncapped[other.account.key].signins
                assert not any("truncated" in w for w in other.warnings)


def _audit(upn: str, object_id: str, minutes: int) -> dict[str, Any]:
    return {
        "TimeGenerated": AT - timedelta(minutes=minutes),
        "OperationName": "User registered security info",
        "Result": "success",
        "InitiatedBy": {"user": {"userPrincipalName": upn, "id": object_id, "ipAddress": OFFICE_IP}},
        "TargetResources": [{"userPrincipalName": upn, "id": object_id, "displayName": upn}],
    }


def _app_audit(minutes: int) -> dict[str, Any]:
    """What apps and the directory itself write: no user, no user id (device and token operations)."""
    return {
        "TimeGenerated": AT - timedelta(minutes=minutes),
        "OperationName": "Register device",
        "Result": "success",
        "InitiatedBy": {"app": {"displayName": "Device Registration Service", "servicePrincipalId": "spn-1"}},
        "TargetResources": [{"displayName": f"DEVICE-{minutes}", "type": "Device"}],
    }


class TestContextBytesFlat:
    def test_context_bytes_stay_flat_when_other_users_audit_volume_grows_tenfold(self) -> None:
        """An account known only by UPN gets its own audit rows; other users' and app-initiated rows x10 add no bytes."""
        tenant = duckdb_kql.connect()
        create_schema_tables(tenant)
        insert_rows(tenant, "AuditLogs", [_audit("alice@contoso.com", ALICE.object_id, 30)])

        def grow(count: int) -> None:
            insert_rows(tenant, "AuditLogs", [_app_audit(minute % 600) for minute in range(count)])
            insert_rows(tenant, "AuditLogs", [_audit(f"user{n}@contoso.com", "", n % 600) for n in range(count)])

        query = kql.context_query(
            [Account("alice@contoso.com")], evidence_window(AT, _settings()), travel_watchlist="TravelRecords"
        )
        sizes, answers = [], []
        with LogAnalyticsServer(tenant, workspace_id=WORKSPACE, functions=[WATCHLIST_FUNCTION]) as endpoint:
            for count in (20, 180):
                grow(count)
                before = len(endpoint.requests)
                answers.append(_normalised(_remote(endpoint).run(query)))
                (request,) = endpoint.requests[before:]
                sizes.append(request.response_bytes)
        tenant.close()
        assert [row["Actor"] for row in answers[0] if row["Kind"] == "audit"] == ["alice@contoso.com"]
        assert answers[0] == answers[1]
        assert abs(sizes[1] / sizes[0] - 1) <= 0.05, sizes
