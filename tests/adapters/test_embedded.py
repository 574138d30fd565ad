"""EmbeddedEngine: the production KQL run by real duckdb-kql over exports loaded by the real loader."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import duckdb_kql
import pytest

from common.errors import InputError, UpstreamError
from enrichment.adapters.embedded import TRANSLATIONS_TABLE, EmbeddedEngine
from enrichment.adapters.exports import CACHE_NAME, load_exports
from enrichment.domain.model import Account, TimeWindow
from enrichment.queries import kql
from enrichment.queries.kql import Query
from tests.reference import REFERENCE

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
REALDATA = REFERENCE / "realdata"

VICTIM = "victim@contoso.example"
VICTIM_ID = "6f0c2a8e-1d4b-4c3a-9e7f-0a1b2c3d4e5f"
AT = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
WINDOW = TimeWindow.around(AT, before=timedelta(hours=24), after=timedelta(hours=6))
BASELINE = TimeWindow(WINDOW.start - timedelta(days=14), WINDOW.start)
SESSION = "0b7e4c1d-5a6f-4e2d-8c9b-1a2b3c4d5e6f"


def portal_csv(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([header, *rows])
    return out.getvalue()


def location(country: str, city: str) -> dict[str, Any]:
    return {"countryOrRegion": country, "city": city, "geoCoordinates": {"latitude": 1.5, "longitude": 2.5}}


def write_incident_exports(folder: Path) -> Path:
    """A victim's day: an interactive sign-in, refreshes from home, then the same session from elsewhere."""
    folder.mkdir(parents=True, exist_ok=True)
    header = [
        "TimeGenerated [UTC]",
        "UserPrincipalName",
        "UserId",
        "IPAddress",
        "AutonomousSystemNumber",
        "SessionId",
        "AppId",
        "LocationDetails",
        "DeviceDetail",
        "AuthenticationDetails",
    ]
    auth = json.dumps([{"authenticationMethod": "Password", "succeeded": True}])
    device = json.dumps({"deviceId": "d-1", "displayName": "LAPTOP-1", "operatingSystem": "Windows10", "isCompliant": True})
    signins = [
        [
            "6/15/2026, 11:50:00.000 AM",
            VICTIM,
            VICTIM_ID,
            "192.0.2.10",
            "7922",
            SESSION,
            "app-1",
            json.dumps(location("US", "Seattle")),
            device,
            auth,
        ],
        [
            "6/10/2026, 9:00:00.000 AM",
            VICTIM,
            VICTIM_ID,
            "192.0.2.10",
            "7922",
            "older-session",
            "app-1",
            json.dumps(location("US", "Seattle")),
            device,
            auth,
        ],
        ["6/15/2026, 11:51:00.000 AM", "someone.else@contoso.example", "", "192.0.2.99", "7922", "x", "app-1", "{}", "{}", "[]"],
    ]
    (folder / "SigninLogs.csv").write_text(portal_csv(header, signins), encoding="utf-8-sig")
    refresh = {
        "UserPrincipalName": VICTIM.upper(),
        "UserId": VICTIM_ID,
        "SessionId": SESSION,
        "AppId": "app-2",
        "IncomingTokenType": "refreshToken",
        "AuthenticationDetails": json.dumps(
            [
                {
                    "authenticationMethod": "Previously satisfied",
                    "authenticationStepResultDetail": "MFA requirement satisfied by claim in the token",
                }
            ]
        ),
        "DeviceDetail": json.dumps({"deviceId": "", "operatingSystem": "Linux"}),
    }
    rows = [
        {
            **refresh,
            "TimeGenerated": "2026-06-15T11:55:00Z",
            "IPAddress": "192.0.2.10",
            "AutonomousSystemNumber": "7922",
            "LocationDetails": json.dumps(location("US", "Seattle")),
        },
        {
            **refresh,
            "TimeGenerated": "2026-06-15T12:02:00.1234567Z",
            "IPAddress": "203.0.113.66",
            "AutonomousSystemNumber": "64500",
            "LocationDetails": json.dumps(location("NG", "Lagos")),
        },
    ]
    (folder / "AADNonInteractiveUserSignInLogs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    audit = {
        "TimeGenerated": "2026-06-15T12:10:00Z",
        "OperationName": "User registered security info",
        "Result": "success",
        "InitiatedBy": {"user": {"userPrincipalName": VICTIM, "id": VICTIM_ID, "ipAddress": "203.0.113.66"}},
        "TargetResources": [{"userPrincipalName": VICTIM, "id": VICTIM_ID, "displayName": "Authenticator app"}],
    }
    (folder / "AuditLogs.json").write_text(json.dumps([audit]), encoding="utf-8")
    (folder / "watchlists").mkdir()
    travel = portal_csv(["UserPrincipalName", "Country", "StartTime", "EndTime"], [[VICTIM, "no", "2026-06-14", "2026-06-20"]])
    (folder / "watchlists" / "TravelRecords.csv").write_text(travel, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedEngine]:
    folder = write_incident_exports(tmp_path_factory.mktemp("incident") / "exports")
    with EmbeddedEngine.open(folder) as opened:
        yield opened


def evidence(engine: EmbeddedEngine, accounts: Sequence[Account] = (Account(upn=VICTIM),)) -> list[dict[str, Any]]:
    """The evidence rows in a fixed order (a query's rows have none)."""
    rows = engine.run(kql.evidence_query(accounts, WINDOW, AT, row_cap=100)).rows
    return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True, default=str))


# --------------------------------------------------------------------------------------------
# the three production queries on hand-made exports
# --------------------------------------------------------------------------------------------


def test_engine_is_named_embedded(engine: EmbeddedEngine) -> None:
    """Logs and warnings name the engine."""
    assert engine.name == "embedded"


def test_evidence_query_returns_both_tables_for_the_victim_only(engine: EmbeddedEngine) -> None:
    """The interactive and non-interactive sign-ins of the same session come back; the other user does not."""
    rows = evidence(engine)
    assert sorted((r["SourceTable"], r["IPAddress"], r["SessionId"]) for r in rows) == [
        ("AADNonInteractiveUserSignInLogs", "192.0.2.10", SESSION),
        ("AADNonInteractiveUserSignInLogs", "203.0.113.66", SESSION),
        ("SigninLogs", "192.0.2.10", SESSION),
    ]
    assert {r["User"] for r in rows} == {VICTIM}


def test_evidence_rows_carry_fields_from_json_text_and_dynamic_columns(engine: EmbeddedEngine) -> None:
    """Country comes from JSON text in one table and dynamic JSON in the other; times are naive UTC."""
    by_ip = {(r["SourceTable"], r["IPAddress"]): r for r in evidence(engine)}
    replay = by_ip[("AADNonInteractiveUserSignInLogs", "203.0.113.66")]
    assert (replay["Country"], replay["City"], replay["Asn"], replay["Latitude"]) == ("NG", "Lagos", "64500", 1.5)
    assert replay["TokenOnly"] is True
    assert replay["FirstSeen"] == datetime(2026, 6, 15, 12, 2, 0, 123456)
    assert replay["FirstSeen"].tzinfo is None
    interactive = by_ip[("SigninLogs", "192.0.2.10")]
    assert (interactive["Country"], interactive["DeviceId"], interactive["DeviceName"], interactive["IsCompliant"]) == (
        "US",
        "d-1",
        "LAPTOP-1",
        "true",
    )
    assert interactive["AuthMethod"] == "Password"
    assert interactive["Count"] == 1


def test_accounts_are_matched_by_object_id_too(engine: EmbeddedEngine) -> None:
    """An incident naming only the object id finds the same rows."""
    assert len(evidence(engine, (Account(object_id=VICTIM_ID),))) == 3


def test_baseline_query_summarises_the_days_before(engine: EmbeddedEngine) -> None:
    """The sign-in of 10 June is the baseline; the incident-day rows are not in it."""
    rows = engine.run(kql.baseline_query([Account(upn=VICTIM)], BASELINE)).rows
    table = [r for r in rows if r["Scope"] == "table"]
    assert [(r["SourceTable"], r["Events"], r["DaysActive"]) for r in table] == [("SigninLogs", 1, 1)]
    ips = table[0]["Ips"]
    assert (json.loads(ips) if isinstance(ips, str) else ips) == ["192.0.2.10"]
    assert [(r["Scope"], r["Day"]) for r in rows if r["Scope"] == "day"] == [("day", datetime(2026, 6, 10))]


def test_context_query_reads_audit_logs_and_the_travel_watchlist(engine: EmbeddedEngine) -> None:
    """`_GetWatchlist("TravelRecords")` resolves to the loaded watchlist; the audit row is found by actor."""
    rows = engine.run(kql.context_query([Account(upn=VICTIM)], WINDOW, travel_watchlist="TravelRecords")).rows
    audit = [r for r in rows if r["Kind"] == "audit"]
    travel = [r for r in rows if r["Kind"] == "travel"]
    assert [(r["OperationName"], r["Actor"], r["ActorIp"], r["Detail"]) for r in audit] == [
        ("User registered security info", VICTIM, "203.0.113.66", "Authenticator app")
    ]
    assert [(r["User"], r["Country"], r["StartTime"], r["EndTime"]) for r in travel] == [
        (VICTIM, "NO", datetime(2026, 6, 14), datetime(2026, 6, 20))
    ]


def test_an_unknown_watchlist_alias_returns_no_travel_rows(engine: EmbeddedEngine) -> None:
    """Another alias reads nothing from the TravelRecords rows."""
    rows = engine.run(kql.context_query([Account(upn=VICTIM)], WINDOW, travel_watchlist="Trips")).rows
    assert [r["Kind"] for r in rows if r["Kind"] != "presence"] == ["audit"]


def test_the_watchlist_function_is_not_registered_process_wide(engine: EmbeddedEngine) -> None:
    """duckdb-kql's default registry is left as found, and a default someone else set does not leak in."""
    saved = duckdb_kql.get_functions()
    duckdb_kql.set_functions(["function _GetWatchlist(watchlistAlias:string) { AuditLogs | take 0 }"])
    try:
        before = duckdb_kql.get_functions()
        rows = engine.run(kql.context_query([Account(upn=VICTIM)], WINDOW, travel_watchlist="TravelRecords")).rows
        assert [r["Kind"] for r in rows if r["Kind"] == "travel"] == ["travel"]
        assert duckdb_kql.get_functions() == before
    finally:
        duckdb_kql.set_functions(saved)


def test_queries_from_several_threads_get_the_same_answer(engine: EmbeddedEngine) -> None:
    """The one connection is shared safely: concurrent runs neither fail nor mix results."""
    expected = evidence(engine)
    results: list[list[dict[str, Any]]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(evidence(engine))
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results == [expected] * 3


def test_warnings_say_which_tables_the_exports_lack(tmp_path: Path) -> None:
    """Exports without the non-interactive table say, with every answer, that it is missing."""
    folder = tmp_path / "only-interactive"
    folder.mkdir()
    (folder / "SigninLogs.csv").write_text(
        portal_csv(["TimeGenerated [UTC]", "UserPrincipalName"], [["6/15/2026, 11:50:00 AM", VICTIM]]), encoding="utf-8"
    )
    with EmbeddedEngine.open(folder) as opened:
        outcome = opened.run(kql.evidence_query([Account(upn=VICTIM)], WINDOW, AT, row_cap=10))
    assert len(outcome.rows) == 1
    assert "the exports hold no AADNonInteractiveUserSignInLogs rows" in outcome.warnings
    assert "the exports hold no AuditLogs rows" in outcome.warnings
    assert "the exports hold no SigninLogs rows" not in outcome.warnings


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SigninLogs | where NoSuchColumn == 1", r"query probe: the exported data \(.*\) has no column 'NoSuchColumn'"),
        ("SigninLogs | project Ip = IPAdress", r"has no column 'IPAdress'"),
        ("OfficeActivity | take 1", r"has no table 'OfficeActivity'"),
    ],
)
def test_unknown_columns_and_tables_are_input_errors_naming_them(engine: EmbeddedEngine, text: str, message: str) -> None:
    """A name the data lacks is reported by name, not as a DuckDB binder dump."""
    with pytest.raises(InputError, match=message):
        engine.run(Query("probe", text))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SigninLogs | evaluate bag_unpack(LocationDetails)", "does not translate this KQL|unsupported KQL construct"),
        ("SigninLogs | whre x", "could not parse KQL"),
        (".set-or-replace SigninLogs <| datatable(x:long)[1]", "unsupported"),
    ],
)
def test_kql_the_engine_cannot_run_is_an_upstream_error(engine: EmbeddedEngine, text: str, message: str) -> None:
    """Untranslatable, unparsable or writing KQL fails as the engine's own error, naming the query."""
    with pytest.raises(UpstreamError, match=message) as caught:
        engine.run(Query("probe", text))
    assert caught.value.service == "embedded engine (duckdb-kql)"
    assert "query probe" in str(caught.value)


def test_the_cache_is_not_written_by_queries(tmp_path: Path) -> None:
    """The engine opens the cache read-only: a write attempt fails and the file is byte-for-byte unchanged."""
    folder = write_incident_exports(tmp_path / "exports")
    cache = folder / CACHE_NAME
    with EmbeddedEngine.open(folder) as opened:
        before = cache.read_bytes()
        with pytest.raises(UpstreamError):
            opened.run(Query("write", ".append SigninLogs <| SigninLogs | take 1"))
    assert cache.read_bytes() == before


# --------------------------------------------------------------------------------------------
# translated once, kept in the cache, run on cursors
# --------------------------------------------------------------------------------------------


def test_each_question_is_translated_once_and_kept_in_the_cache(tmp_path: Path) -> None:
    """Opening a folder stores one translation per question in the cache; a warm run never imports duckdb-kql."""
    folder = write_incident_exports(tmp_path / "exports")
    with EmbeddedEngine.open(folder):
        pass
    with duckdb.connect(str(folder / CACHE_NAME), read_only=True) as con:
        assert con.execute(f"SELECT count(*) FROM {TRANSLATIONS_TABLE}").fetchall() == [(len(kql.QUESTIONS),)]
    code = (
        "import sys; from datetime import datetime, UTC, timedelta\n"
        "from enrichment.adapters.embedded import EmbeddedEngine\n"
        "from enrichment.domain.model import Account, TimeWindow\n"
        "from enrichment.queries import kql\n"
        f"at = datetime.fromisoformat({AT.isoformat()!r}); w = TimeWindow.around(at, before=timedelta(hours=6), after=timedelta(hours=1))\n"
        f"a = [Account({VICTIM!r})]\n"
        f"with EmbeddedEngine.open(__import__('pathlib').Path({str(folder)!r})) as e:\n"
        "    n = [len(e.run(q).rows) for q in (kql.evidence_query(a, w, at, row_cap=9), kql.baseline_query(a, w),"
        " kql.context_query(a, w, travel_watchlist='TravelRecords'))]\n"
        "print(n, 'duckdb_kql' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    # context: 2 audit or travel rows and a presence row for each of the three tables holding rows in the window
    assert done.stdout.split() == ["[3,", "4,", "5]", "False"], done.stderr


def test_a_cache_open_elsewhere_in_this_process_is_not_written(tmp_path: Path) -> None:
    """While an engine has the file open, another open translates in memory rather than write under it."""
    folder = write_incident_exports(tmp_path / "exports")
    built = load_exports(folder).database
    with EmbeddedEngine.open(built) as first:
        with EmbeddedEngine.open(folder) as second:
            assert len(evidence(second)) == len(evidence(first)) == 3
        with duckdb.connect(str(built), read_only=True) as con:
            tables = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert TRANSLATIONS_TABLE not in tables
    with EmbeddedEngine.open(folder):
        pass
    with duckdb.connect(str(built), read_only=True) as con:
        assert con.execute(f"SELECT count(*) FROM {TRANSLATIONS_TABLE}").fetchall() == [(len(kql.QUESTIONS),)]


def test_a_question_about_some_accounts_reads_only_their_sign_ins(engine: EmbeddedEngine) -> None:
    """The engine narrows the sign-in tables to the subjects; a plain query on the same engine still sees every user."""
    everyone = engine.run(Query("all", "SigninLogs | distinct UserPrincipalName")).rows
    assert len(everyone) > 1
    assert {row["User"] for row in evidence(engine)} == {VICTIM}


# --------------------------------------------------------------------------------------------
# opening
# --------------------------------------------------------------------------------------------


def test_open_accepts_a_duckdb_file_built_by_the_loader(tmp_path: Path) -> None:
    """A `.duckdb` path is opened directly, read-only, with no load report."""
    folder = write_incident_exports(tmp_path / "exports")
    built = load_exports(folder, cache=tmp_path / "built.duckdb").database
    with EmbeddedEngine.open(built) as opened:
        assert opened.report is None
        assert opened.notes == ()
        assert len(evidence(opened)) == 3


def test_open_on_a_folder_keeps_the_load_report(tmp_path: Path) -> None:
    """The report of the load travels with the engine, for the CLI to show."""
    folder = write_incident_exports(tmp_path / "exports")
    with EmbeddedEngine.open(folder, cache=tmp_path / "c.duckdb") as opened:
        assert opened.report is not None
        assert opened.report.rows("AADNonInteractiveUserSignInLogs") == 2
        assert opened.report.rows("Watchlists") == 1


def test_open_with_a_mapping_loads_an_oddly_named_file(tmp_path: Path) -> None:
    """`tables=` is passed through to the loader."""
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "signins-june.csv").write_text(
        portal_csv(["TimeGenerated [UTC]", "UserPrincipalName"], [["6/15/2026, 11:50:00 AM", VICTIM]]), encoding="utf-8"
    )
    with EmbeddedEngine.open(folder, tables={"signins-june.csv": "SigninLogs"}) as opened:
        assert len(evidence(opened)) == 1


@pytest.mark.parametrize(
    ("name", "message"),
    [("export.csv", "give a folder of exported logs or a .duckdb file"), ("absent", "no such folder or file")],
)
def test_open_refuses_anything_else(tmp_path: Path, name: str, message: str) -> None:
    """A lone CSV or a missing path is an input error naming it."""
    if name.endswith(".csv"):
        (tmp_path / name).write_text("TimeGenerated\r\n", encoding="utf-8")
    with pytest.raises(InputError, match=message):
        EmbeddedEngine.open(tmp_path / name)


def test_importing_the_engine_does_not_import_duckdb() -> None:
    """`python -m enrichment --help` stays fast: DuckDB and duckdb-kql load only when an engine opens."""
    code = "import sys, enrichment.adapters.embedded, enrichment.adapters.exports; print(sorted(m for m in sys.modules if m.startswith('duckdb')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------------------------
# real exports (reference data, read in place, never copied)
# --------------------------------------------------------------------------------------------

needs_realdata = pytest.mark.skipif(not REALDATA.is_dir(), reason=f"reference exports not present at {REALDATA}")


def realdata_engine(tmp_path_factory: pytest.TempPathFactory, folder: Path, **kwargs: Any) -> EmbeddedEngine:
    cache = tmp_path_factory.mktemp(folder.name) / "cache.duckdb"
    opened = EmbeddedEngine.open(folder, cache=cache, **kwargs)
    assert not (folder / CACHE_NAME).exists()
    return opened


def busiest_user(engine: EmbeddedEngine) -> tuple[str, datetime]:
    """The user with the most interactive sign-ins and the time of their last one (UTC)."""
    (row,) = engine.run(
        Query(
            "busiest", "SigninLogs | summarize n = count(), LastSeen = max(TimeGenerated) by UserPrincipalName | top 1 by n desc"
        )
    ).rows
    assert isinstance(row["LastSeen"], datetime)
    return str(row["UserPrincipalName"]), row["LastSeen"].replace(tzinfo=UTC)


def run_all_three(
    engine: EmbeddedEngine, upn: str, at: datetime, before: timedelta
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    accounts = [Account(upn=upn)]
    window = TimeWindow.around(at, before=before, after=timedelta(hours=6))
    found = engine.run(kql.evidence_query(accounts, window, at, row_cap=20_000)).rows
    history = engine.run(kql.baseline_query(accounts, TimeWindow(window.start - timedelta(days=14), window.start))).rows
    context = engine.run(kql.context_query(accounts, window, travel_watchlist="TravelRecords")).rows
    return list(found), list(history), list(context)


@needs_realdata
def test_bec_telemetry_portal_export_shows_the_replayed_session(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The attacker's 10.0.0.1 refreshes the victim's own session (seen from 192.168.1.1) in the non-interactive table."""
    with realdata_engine(tmp_path_factory, REALDATA / "bec_telemetry") as opened:
        assert opened.report is not None
        assert [f.problems for f in opened.report.files if f.table != "OfficeActivity"] == [(), (), ()]
        (office,) = [f for f in opened.report.files if f.table == "OfficeActivity"]
        assert office.rows == 20
        assert office.problems == (
            "TimeGenerated: 20 value(s) held only a time of day (re-saved by a spreadsheet?); the date was taken from Start_Time",
        )
        (victim_row,) = opened.run(
            Query("victim", 'SigninLogs | where IPAddress == "192.168.1.1" | distinct UserPrincipalName')
        ).rows
        victim = str(victim_row["UserPrincipalName"])
        first = opened.run(
            Query(
                "first-replay",
                f'AADNonInteractiveUserSignInLogs | where IPAddress == "10.0.0.1" and UserPrincipalName =~ {kql.string_literal(victim)}'
                " | summarize at = min(TimeGenerated)",
            )
        ).rows[0]["at"]
        assert isinstance(first, datetime)
        at = first.replace(tzinfo=UTC)
        assert at.date() == datetime(2026, 6, 15).date()
        found, history, context = run_all_three(opened, victim, at, timedelta(hours=24))
    assert {r["IPAddress"] for r in found} >= {"192.168.1.1", "10.0.0.1"}
    assert {r["User"] for r in found} == {victim.lower()}
    sessions_by_ip: dict[str, set[str]] = {}
    for r in found:
        sessions_by_ip.setdefault(r["IPAddress"], set()).add(r["SessionId"])
    replayed = {
        r["SessionId"] for r in found if r["IPAddress"] == "10.0.0.1" and r["SourceTable"] == "AADNonInteractiveUserSignInLogs"
    } & sessions_by_ip["192.168.1.1"]
    assert replayed, "no session seen from both the victim's and the attacker's address"
    assert all(r["Country"] for r in found if r["IPAddress"] == "192.168.1.1")
    assert history == []  # the export starts on the incident day: nothing before the window
    assert any(r["Kind"] == "audit" and r["ActorIp"] == "10.0.0.1" for r in context)


@needs_realdata
def test_msticpy_2020_json_lines_run_all_three_queries(tmp_path_factory: pytest.TempPathFactory) -> None:
    """`aad_logons.SigninLogs.jsonl` (table named by its last dotted part) loads and answers every query."""
    with realdata_engine(tmp_path_factory, REALDATA / "msticpy") as opened:
        assert opened.report is not None
        assert opened.report.rows("SigninLogs") == 86
        upn, last = busiest_user(opened)
        found, history, context = run_all_three(opened, upn, last, timedelta(hours=1))
    assert found
    assert {r["User"] for r in found} == {upn.lower()}
    assert all(r["Country"] for r in found)
    assert [r for r in history if r["Scope"] == "table"]
    assert [r["SourceTable"] for r in context if r["Kind"] == "presence"] == ["SigninLogs"]
    assert [r for r in context if r["Kind"] != "presence"] == []


@needs_realdata
def test_training_lab_ingestion_format_csv_runs_all_three_queries(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The X_dynamic / X_string export, mapped by name, loads with TimeGenerated from CreatedDateTime and locations merged."""
    folder = REALDATA / "sentinel_training_lab"
    with realdata_engine(tmp_path_factory, folder, tables={"sign-in_adelete.csv": "SigninLogs"}) as opened:
        assert opened.report is not None
        assert opened.report.rows("SigninLogs") == 56
        (file_report,) = opened.report.files
        assert "no TimeGenerated column: CreatedDateTime used instead" in file_report.problems
        assert "LocationDetails" not in file_report.missing_columns
        upn, last = busiest_user(opened)
        found, history, context = run_all_three(opened, upn, last, timedelta(minutes=30))
    assert found
    assert all(r["Country"] and r["City"] for r in found)
    assert [r for r in history if r["Scope"] == "table"]
    assert [r["SourceTable"] for r in context if r["Kind"] == "presence"] == ["SigninLogs"]
    assert [r for r in context if r["Kind"] != "presence"] == []


def test_the_translator_version_in_the_key_is_the_installed_one() -> None:
    """Translations are keyed by duckdb-kql's installed version, read without importing it."""
    from importlib.metadata import version

    from enrichment.adapters.embedded import _translator_version

    assert _translator_version() == version("duckdb-kql")
