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
from enrichment.adapters.exports import TABLES, WATCHLIST_TABLE
from enrichment.adapters.loganalytics import LogAnalyticsEngine, Retries
from enrichment.domain.attribution import attribute
from enrichment.domain.model import Account, Coverage, QueryOutcome, Table, UserEvidence
from enrichment.queries import kql, rows
from enrichment.render.scope_document import activity_document
from enrichment.services.gather import baseline_window, evidence_window, gather_evidence
from enrichment.services.investigate import investigate
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
                UniqueTokenIdentifier=ATTACKER_TOKENS[minutes % 2],
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
    _activity(con)
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


ATTACKER_TOKENS = ("tokAttacker-1", "tokAttacker-2")
#: The optional tables this workspace has; CloudAppEvents is left out, so both engines must say it is not collected.
PRESENT = (*TABLES, "MicrosoftGraphActivityLogs", "OfficeActivity", "IdentityInfo", "AADRiskyUsers", "AADUserRiskEvents")


def _graph(
    minutes: int, ip: str, token: str, uri: str, *, method: str = "GET", agent: str = "python-requests/2.32"
) -> dict[str, Any]:
    return {
        "TimeGenerated": AT - timedelta(minutes=minutes),
        "UserId": ALICE.object_id,
        "IPAddress": ip,
        "SignInActivityId": token,
        "RequestUri": uri,
        "RequestMethod": method,
        "ResponseStatusCode": 200,
        "ResponseSizeBytes": 4096,
        "UserAgent": agent,
        "AppId": "14d82eec-204b-4c2f-b7e8-296a70dab67e",
    }


def _office(minutes: int, operation: str, client_ip: str, token: str, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "TimeGenerated": AT - timedelta(minutes=minutes),
        "UserId": "Alice@Contoso.com",
        "Operation": operation,
        "ClientIP": client_ip,
        "MailboxOwnerUPN": "alice@contoso.com",
        "AppAccessContext": {"AADSessionId": SESSION, "UniqueTokenId": token, "IssuedAtTime": "2026-04-14T08:00:00Z"},
    }
    row.update(extra)
    return row


def _parameters(**values: str) -> str:
    return json.dumps([{"Name": name, "Value": value} for name, value in values.items()])


def _activity(con: duckdb.DuckDBPyConnection) -> None:
    """What Alice's stolen session did (and what she did herself), and who she is, in the optional tables."""
    reads = [
        _graph(45 - n, ATTACKER_IP, ATTACKER_TOKENS[0], f"https://graph.microsoft.com/v1.0/me/messages?$skip={n}")
        for n in range(22)
    ]
    insert_rows(
        con,
        "MicrosoftGraphActivityLogs",
        [
            *reads,
            _graph(30, "2001:db8::66", ATTACKER_TOKENS[1], "https://graph.microsoft.com/v1.0/me/sendMail", method="POST"),
            _graph(100, HOME_IP, "tokAlice-own", "https://graph.microsoft.com/v1.0/me/messages", agent="Outlook-iOS/2.0"),
        ],
    )
    rule = _parameters(
        Name=".", MoveToFolder="RSS Subscriptions", SubjectContainsWords="invoice;payment", StopProcessingRules="True"
    )
    own_rule = _parameters(Name="Newsletters", MoveToFolder="Newsletters", From="news@shop.example")
    insert_rows(
        con,
        "OfficeActivity",
        [
            _office(40, "New-InboxRule", f"{ATTACKER_IP}:40123", "tokOther", Parameters=rule, OfficeObjectId="Alice\\."),
            _office(
                35,
                "Set-Mailbox",
                "[2001:db8::66]:443",
                ATTACKER_TOKENS[1],
                Parameters=_parameters(ForwardingSmtpAddress="smtp:drop@exfil.example", DeliverToMailboxAndForward="True"),
            ),
            _office(
                33,
                "MailItemsAccessed",
                "",
                "tokSession",
                Folders=json.dumps([{"FolderItems": [{"Id": "m1"}, {"Id": "m2"}, {"Id": "m3"}], "Id": "f1", "Path": "\\Inbox"}]),
                OperationProperties=_parameters(MailAccessType="Bind"),
            ),
            _office(90, "New-InboxRule", f"{HOME_IP}:5555", "tokAlice-own", Parameters=own_rule),
        ],
    )
    insert_rows(
        con,
        "AuditLogs",
        [
            {
                "TimeGenerated": AT - timedelta(minutes=25),
                "OperationName": "Consent to application",
                "Result": "success",
                "InitiatedBy": {
                    "user": {"userPrincipalName": "alice@contoso.com", "id": ALICE.object_id, "ipAddress": ATTACKER_IP}
                },
                "TargetResources": [
                    {
                        "displayName": "Mail Sync Pro",
                        "id": "5a5a5a5a-0000-4000-8000-00000000a550",
                        "modifiedProperties": [
                            {"displayName": "TargetId.ServicePrincipalNames", "newValue": "7e7e7e7e-0000-4000-8000-00000000a991"}
                        ],
                    }
                ],
            }
        ],
    )
    insert_rows(
        con,
        "IdentityInfo",
        [
            {
                "TimeGenerated": AT - timedelta(days=3),
                "AccountUPN": "Alice@Contoso.com",
                "AccountObjectId": ALICE.object_id,
                "AccountDisplayName": "Alice Martin",
                "Department": "Finance",
                "JobTitle": "CFO",
                "Manager": "ceo",
                "AssignedRoles": ["Global Administrator", "Reports Reader"],
            }
        ],
    )
    insert_rows(
        con,
        "AADRiskyUsers",
        [
            {
                "TimeGenerated": AT - timedelta(days=2),
                "UserPrincipalName": "alice@contoso.com",
                "Id": ALICE.object_id,
                "RiskLevel": "low",
                "RiskState": "atRisk",
            },
            {
                "TimeGenerated": AT - timedelta(hours=1),
                "UserPrincipalName": "alice@contoso.com",
                "Id": ALICE.object_id,
                "RiskLevel": "high",
                "RiskState": "atRisk",
            },
        ],
    )
    detection = {"UserPrincipalName": "alice@contoso.com", "UserId": ALICE.object_id, "IpAddress": ATTACKER_IP}
    insert_rows(
        con,
        "AADUserRiskEvents",
        [
            {
                **detection,
                "TimeGenerated": AT - timedelta(minutes=40),
                "Id": "det-1",
                "RiskEventType": "anomalousToken",
                "RiskLevel": "medium",
                "RiskState": "atRisk",
                "DetectedDateTime": AT - timedelta(minutes=45),
            },
            {
                **detection,
                "TimeGenerated": AT - timedelta(minutes=10),
                "Id": "det-1",
                "RiskEventType": "anomalousToken",
                "RiskLevel": "high",
                "RiskState": "atRisk",
                "DetectedDateTime": AT - timedelta(minutes=45),
            },
        ],
    )


def _queries(settings: Settings) -> list[kql.Query]:
    window = evidence_window(AT, settings)
    return [
        kql.evidence_query(ACCOUNTS, window, AT, row_cap=settings.row_cap),
        kql.baseline_query(ACCOUNTS, baseline_window(window, settings)),
        kql.context_query(ACCOUNTS, window, travel_watchlist=settings.travel_watchlist),
        kql.scope_query(ACCOUNTS, window, suspect_ips=(ATTACKER_IP,), token_ids=ATTACKER_TOKENS, session_ids=(SESSION,)),
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
    create_schema_tables(connection, (*PRESENT, WATCHLIST_TABLE))
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
    @pytest.mark.parametrize("index", [0, 1, 2, 3], ids=["evidence", "baseline", "context", "scope"])
    def test_every_production_query_gives_the_same_rows(
        self, expected: dict[str, QueryOutcome], la: LogAnalyticsServer, index: int
    ) -> None:
        """Evidence, baseline, context and scope: identical rows after normalising datetimes and dynamic values."""
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
        assert (la.count("evidence"), la.count("baseline"), la.count("context"), la.count("scope")) == (2, 2, 1, 1)
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
                assert answer.rows == ()
                assert answer.warnings == (f"{query.name} query: workspace returned no data (204)",)
                # Without the optional tables only AuditLogs answers the scope's coverage, with no rows.
                assert [r for r in local.run(query).rows if r.get("Kind") != "coverage" or r["Source"] != "AuditLogs"] == []
            assert la.count() == 4
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
        investigate(EmbeddedEngine(con), ACCOUNTS, AT, _settings())
        investigate(_remote(la), ACCOUNTS, AT, _settings())
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


class TestScope:
    def test_investigation_is_equal_on_both_engines_in_four_requests(
        self, con: duckdb.DuckDBPyConnection, la: LogAnalyticsServer
    ) -> None:
        """Evidence, identity, scope and assessment come out equal from either engine; the workspace sees four requests."""
        local = investigate(EmbeddedEngine(con), ACCOUNTS, AT, _settings())
        remote = investigate(_remote(la), ACCOUNTS, AT, _settings())
        assert remote == local
        assert sorted(r.query_name for r in la.requests) == ["baseline", "context", "evidence", "scope"]

    def test_the_attackers_acts_are_tied_to_the_stolen_session_and_alices_own_are_not(
        self, con: duckdb.DuckDBPyConnection
    ) -> None:
        """Graph reads and the sent mail by token, the rule by address, the mail access by session; Alice's own rule and Graph use are absent."""
        (alice, assessment), *_ = investigate(EmbeddedEngine(con), ACCOUNTS, AT, _settings())
        assert ATTACKER_IP in assessment.suspect_ips
        assert alice.scope is not None
        assert alice.scope.asked
        (session,) = attribute(alice, assessment.suspect_ips)
        assert session.session_id == SESSION
        ties = {(a.record.operation, a.tie.value, a.ip) for a in session.acts}
        assert ties >= {
            ("mail_read", "address", ATTACKER_IP),
            ("mail_send", "token", ATTACKER_IP),
            ("New-InboxRule", "address", ATTACKER_IP),
            ("Set-Mailbox", "token", ATTACKER_IP),
            ("MailItemsAccessed", "session", ATTACKER_IP),
            ("Consent to application", "address", ATTACKER_IP),
        }
        (reads,) = [a.record for a in session.acts if a.record.operation == "mail_read"]
        assert (reads.count, reads.bytes, reads.client) == (22, 22 * 4096, "python-requests/2.32")
        (access,) = [a.record for a in session.acts if a.record.operation == "MailItemsAccessed"]
        assert access.items == 3
        assert [(r.name, r.move_to) for r, _ in session.rules()] == [(".", "RSS Subscriptions")]
        assert [(f.address, f.deliver_and_forward) for f, _ in session.forwarding()] == [("drop@exfil.example", True)]
        assert all("Newsletters" not in r.name for r in (r for rec in alice.scope.records for r in rec.rules))
        assert all(rec.ip != HOME_IP for rec in alice.scope.records)
        fired = {s.id for s in assessment.signals}
        assert fired >= {"inbox_rule_hides_mail", "mail_forwarded_outside", "mass_mail_access_scripted", "consent_to_unknown_app"}

    def test_identity_context_names_the_tables_that_answered(self, con: duckdb.DuckDBPyConnection) -> None:
        """Alice's profile, privileged role and Entra risk come from the three workspace tables, each facet naming its table."""
        alice, bob, _ = gather_evidence(EmbeddedEngine(con), ACCOUNTS, AT, _settings())
        identity = alice.identity
        assert (identity.display_name, identity.department, identity.job_title) == ("Alice Martin", "Finance", "CFO")
        assert identity.privileged_roles == ("Global Administrator",)
        assert (identity.risk_level, identity.risk_state) == ("high", "atRisk")
        assert [(d.kind, d.level, d.ip) for d in identity.risk_detections] == [("anomalousToken", "high", ATTACKER_IP)]
        assert {(a.facet.value, a.source) for a in identity.answers} == {
            ("profile", "IdentityInfo"),
            ("roles", "IdentityInfo"),
            ("risk", "AADRiskyUsers, AADUserRiskEvents"),
        }
        assert bob.identity.risk_level == "none"  # AADRiskyUsers is collected and has no record of Bob: no risk recorded
        assert "IdentityInfo holds no record" in bob.identity.answers[0].problem

    def test_a_workspace_without_the_activity_tables_says_what_could_not_be_seen(self, la: LogAnalyticsServer) -> None:
        """Sign-ins and AuditLogs only: both engines ask the scope and answer that Graph and Microsoft 365 audit are not collected."""
        bare = duckdb_kql.connect()
        create_schema_tables(bare)
        _dataset_signins_only(bare)
        try:
            with LogAnalyticsServer(bare, workspace_id=WORKSPACE, functions=[WATCHLIST_FUNCTION]) as endpoint:
                remote = investigate(_remote(endpoint), [ALICE], AT, _settings())
            local = investigate(EmbeddedEngine(bare), [ALICE], AT, _settings())
        finally:
            bare.close()
        assert remote == local
        ((alice, assessment),) = local
        document = activity_document(alice, assessment.suspect_ips)
        assert document["asked"] is True
        # AuditLogs is collected: the consent and the security-info registration are all that can be seen.
        assert {act["kind"] for session in document["sessions"] for act in session["acts"]} == {"directory"}
        assert "MicrosoftGraphActivityLogs is not collected: Graph use by the stolen token cannot be seen" in document["not_seen"]
        assert any(
            line.startswith("Microsoft 365 audit is missing (OfficeActivity is not collected; CloudAppEvents is not collected)")
            for line in document["not_seen"]
        )
        assert [a.problem.split(":")[0] for a in alice.identity.answers] == [
            "IdentityInfo is not collected",
            "IdentityInfo is not collected",
            "AADRiskyUsers is not collected",
        ]

    def test_scope_bytes_per_account_stay_flat_when_activity_grows_tenfold(self) -> None:
        """The scope is summarised in KQL: ten times the attacker's Graph reads and mail access add no rows and no bytes to speak of."""
        tenant = duckdb_kql.connect()
        create_schema_tables(tenant, (*PRESENT, WATCHLIST_TABLE))
        _dataset(tenant)
        query = _queries(_settings())[3]
        sizes, rows = [], []
        with LogAnalyticsServer(tenant, workspace_id=WORKSPACE, functions=[WATCHLIST_FUNCTION]) as endpoint:
            for growth in (20, 180):
                insert_rows(
                    tenant,
                    "MicrosoftGraphActivityLogs",
                    [
                        _graph(40 - n % 30, ATTACKER_IP, ATTACKER_TOKENS[0], "https://graph.microsoft.com/v1.0/me/messages")
                        for n in range(growth)
                    ],
                )
                insert_rows(tenant, "OfficeActivity", [_office(33, "MailItemsAccessed", "", "tokSession") for _ in range(growth)])
                before = len(endpoint.requests)
                answer = _remote(endpoint).run(query)
                (request,) = endpoint.requests[before:]
                sizes.append(request.response_bytes)
                rows.append(len(answer.rows))
        tenant.close()
        assert rows[0] == rows[1]
        assert abs(sizes[1] / sizes[0] - 1) <= 0.05, sizes


def _dataset_signins_only(con: duckdb.DuckDBPyConnection) -> None:
    """The dataset's sign-ins and audit rows, into a workspace that has none of the optional tables."""
    full = duckdb_kql.connect()
    create_schema_tables(full, (*PRESENT, WATCHLIST_TABLE))
    _dataset(full)
    for table in (Table.INTERACTIVE.value, Table.NON_INTERACTIVE.value, "AuditLogs"):
        names = [c[0] for c in full.execute(f'SELECT * FROM "{table}" LIMIT 0').description or ()]
        for record in full.execute(f'SELECT * FROM "{table}"').fetchall():
            insert_rows(con, table, [dict(zip(names, record, strict=True))])
    full.close()


class TestCloudAppEvents:
    def test_defender_for_cloud_apps_answers_the_mailbox_audit_when_office_activity_is_absent(
        self, la: LogAnalyticsServer
    ) -> None:
        """CloudAppEvents' raw audit record gives the same rule, from the same address and session, on both engines."""
        tenant = duckdb_kql.connect()
        create_schema_tables(tenant, (*TABLES, "CloudAppEvents", WATCHLIST_TABLE))
        raw = {
            "UserId": "Alice@Contoso.com",
            "ClientIP": f"{ATTACKER_IP}:51234",
            "ObjectId": "Alice\\\\.",
            "MailboxOwnerUPN": "alice@contoso.com",
            "Parameters": [{"Name": "Name", "Value": "."}, {"Name": "DeleteMessage", "Value": "True"}],
            "AppAccessContext": {"AADSessionId": SESSION, "UniqueTokenId": "tokOther"},
        }
        insert_rows(
            tenant,
            "CloudAppEvents",
            [
                {
                    "TimeGenerated": AT - timedelta(minutes=40),
                    "ActionType": "New-InboxRule",
                    "AccountObjectId": ALICE.object_id,
                    "IPAddress": ATTACKER_IP,
                    "RawEventData": raw,
                }
            ],
        )
        query = kql.scope_query([ALICE], evidence_window(AT, _settings()), suspect_ips=(ATTACKER_IP,))
        try:
            with LogAnalyticsServer(tenant, workspace_id=WORKSPACE, functions=[WATCHLIST_FUNCTION]) as endpoint:
                remote = _remote(endpoint).run(query)
            local = EmbeddedEngine(tenant).run(query)
        finally:
            tenant.close()
        assert _normalised(remote) == _normalised(local)
        (row,) = [r for r in local.rows if r["Kind"] == "mailbox"]
        record = rows.activity_record(row)
        assert (record.source, record.ip, record.session_id, record.operation) == (
            "CloudAppEvents",
            ATTACKER_IP,
            SESSION,
            "New-InboxRule",
        )
        assert [(r.name, r.delete, r.mailbox) for r in record.rules] == [(".", True, "alice@contoso.com")]
        assert {r["Source"] for r in local.rows if r["Kind"] == "coverage"} == {"CloudAppEvents", "AuditLogs"}
