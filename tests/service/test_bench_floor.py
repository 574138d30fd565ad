"""The benchmark's floor (bench/floor.py, hand-written DuckDB SQL) answers the triage's questions with the product's rows."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from common.settings import Settings
from enrichment.adapters.embedded import EmbeddedEngine
from enrichment.adapters.exports import INDEX_SCAN_MAX_ROWS, KNOWN_TABLES, WATCHLIST_FOLDER, WATCHLIST_TABLE
from enrichment.domain.model import Account
from enrichment.domain.scoring import assess
from enrichment.queries import kql
from enrichment.services.gather import ScopeRequest, baseline_window, evidence_window, gather_evidence, scope_request
from enrichment.services.investigate import followed_addresses
from sample_tenant.generate import Options, generate
from tests.reference import REFERENCE

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import floor

pytestmark = pytest.mark.slow  # generates a tenant and loads exports into DuckDB

BEC = REFERENCE / "realdata" / "bec_telemetry"


def _normal(value: object) -> object:
    """Aware UTC datetimes; JSON text of a list parsed; lists sorted (sets promise no order in either)."""
    if isinstance(value, datetime):
        return (value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)).isoformat()
    if isinstance(value, str) and value[:1] == "[":
        try:
            value = json.loads(value)
        except ValueError:
            return value
    if isinstance(value, list):
        return sorted((_normal(item) for item in value), key=repr)
    return value


def _rows(rows: Any) -> list[str]:
    return sorted(json.dumps({k: _normal(v) for k, v in row.items()}, sort_keys=True, default=str) for row in rows)


def _product(engine: EmbeddedEngine, accounts: list[Account], at: datetime, settings: Settings) -> dict[str, list[str]]:
    window = evidence_window(at, settings)
    queries = (
        kql.evidence_query(accounts, window, at, row_cap=settings.row_cap),
        kql.baseline_query(accounts, baseline_window(window, settings)),
        kql.context_query(accounts, window, travel_watchlist=settings.travel_watchlist),
    )
    return {query.name: _rows(engine.run(query).rows) for query in queries}


def _floor(cache: Path, accounts: list[Account], at: datetime, settings: Settings) -> dict[str, list[str]]:
    upns = sorted({a.upn.lower() for a in accounts if a.upn})
    ids = sorted({a.object_id.lower() for a in accounts if a.object_id})
    with floor.connect(str(cache)) as con:
        found = floor.answer(con, upns, ids, at, **floor.options(settings))
    return {name: _rows(rows) for name, rows in found.items()}


def _suspects(engine: EmbeddedEngine, accounts: list[Account], at: datetime, settings: Settings) -> ScopeRequest | None:
    """The scope question's subjects as `investigate` makes them (None when no account has suspects)."""
    evidence = gather_evidence(engine, accounts, at, settings)
    return scope_request(evidence, [followed_addresses(assess(e, settings)) for e in evidence])


def _scopes(
    engine: EmbeddedEngine, cache: Path, at: datetime, settings: Settings, asked: ScopeRequest
) -> tuple[list[str], list[str]]:
    """(product, floor) scope rows for the same accounts and suspects: `kql.scope_query` on the engine, `floor.answer` on the cache."""
    accounts = asked.accounts
    suspects = floor.suspect_keywords(asked)
    product = _rows(engine.run(kql.scope_query(accounts, asked.window, **suspects)).rows)
    upns = sorted({a.upn.lower() for a in accounts if a.upn})
    ids = sorted({a.object_id.lower() for a in accounts if a.object_id})
    with floor.connect(str(cache)) as con:
        found = floor.answer(con, upns, ids, at, **floor.options(settings), **suspects)
    return product, _rows(found["scope"])


def _scenario_scopes(
    engine: EmbeddedEngine, cache: Path, settings: Settings, scenarios: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The product's scope rows (parsed) for every scenario user it would follow, each user's checked equal to the floor's."""
    answered: list[dict[str, Any]] = []
    for scenario in scenarios:
        at = _at(scenario["at"])
        asked = _suspects(engine, [Account(upn=scenario["user"])], at, settings)
        if asked is not None:
            product, found = _scopes(engine, cache, at, settings, asked)
            assert found == product, scenario["user"]
            answered.extend({**json.loads(row), "_user": scenario["user"]} for row in product)
    return answered


@pytest.fixture(scope="module")
def tenant_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tenant")
    generate(Options(out=folder, users=40, days=5, variants=1, compress=True))
    return folder


@pytest.fixture(scope="module")
def tenant(tenant_folder: Path) -> Iterator[tuple[EmbeddedEngine, Path, Settings, list[dict[str, Any]]]]:
    folder = tenant_folder
    cache = folder.parent / "cache.duckdb"
    settings = Settings.from_file(folder / "settings.json")
    scenarios = json.loads((folder / "scenarios.json").read_text(encoding="utf-8"))
    with EmbeddedEngine.open(folder, cache=cache) as engine:
        yield engine, cache, settings, scenarios


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_floor_returns_the_products_rows_for_every_scenario_user(tenant: Any) -> None:
    """Evidence, baseline and context rows are the same, question for question, for each scenario's user at its time."""
    engine, cache, settings, scenarios = tenant
    for scenario in scenarios[:12]:
        accounts, at = [Account(upn=scenario["user"])], _at(scenario["at"])
        product = _product(engine, accounts, at, settings)
        assert product["evidence"], scenario["user"]
        assert _floor(cache, accounts, at, settings) == product, scenario["user"]


def test_the_floor_returns_the_products_rows_for_several_accounts_and_object_ids(tenant: Any) -> None:
    """Accounts named by object id, and several accounts cut at a small row cap, give the same rows in both."""
    engine, cache, settings, scenarios = tenant
    first = engine.run(kql.Query("ids", "SigninLogs | where isnotempty(UserId) | summarize by UserId | take 2")).rows
    accounts = [Account(upn=scenarios[0]["user"]), *(Account(object_id=str(row["UserId"])) for row in first)]
    capped = replace(settings, row_cap=100)
    at = _at(scenarios[0]["at"])
    product = _product(engine, accounts, at, capped)
    assert len(product["evidence"]) > 100
    assert _floor(cache, accounts, at, capped) == product


@pytest.mark.skipif(not BEC.is_dir(), reason=f"reference exports not present at {BEC}")
def test_the_floor_returns_the_products_rows_on_the_real_capture(tmp_path: Path) -> None:
    """On the recorded token replay (portal CSV exports) the floor's rows are the product's."""
    cache = tmp_path / "bec.duckdb"
    with EmbeddedEngine.open(BEC, cache=cache) as engine:
        accounts, at = [Account(upn="isaacdunham@corp.local")], datetime(2026, 6, 15, 16, 30, tzinfo=UTC)
        product = _product(engine, accounts, at, Settings())
    assert product["evidence"]
    assert _floor(cache, accounts, at, Settings()) == product


def test_the_floor_returns_the_products_scope_rows_for_every_scenario_user_with_suspects(tenant: Any) -> None:
    """For each scenario user the product would follow, the floor's scope rows (graph, mailbox, directory, coverage) are the product's."""
    engine, cache, settings, scenarios = tenant
    answered = _scenario_scopes(engine, cache, settings, scenarios)
    assert len({row["_user"] for row in answered}) >= 3
    assert any(row["Kind"] != "coverage" for row in answered)


def _cloud_app_event(office: dict[str, Any], index: int) -> dict[str, Any]:
    """
    An OfficeActivity row as Defender for Cloud Apps records it: the audit record in RawEventData, its
    address (ports kept) in one of three places, or none at all with no token id (tied by its session only).
    """
    address = office["ClientIP"] or office["Client_IPAddress"]
    where = ("ClientIP", "IPAddress", "ClientIPAddress", "")[index % 4]
    context = dict(office["AppAccessContext"] or {})
    if not where:
        context.pop("UniqueTokenId", None)
    raw = {
        "UserId": office["UserId"].upper() if index % 3 == 0 else office["UserId"],
        "ClientIP": address if where == "ClientIP" else "",
        "ClientIPAddress": address if where == "ClientIPAddress" else "",
        "ClientInfoString": office["ClientInfoString"],
        "AppId": office["AppId"],
        "MailboxOwnerUPN": office["MailboxOwnerUPN"],
        "ObjectId": office["OfficeObjectId"],
        "AppAccessContext": context,
        "OperationProperties": office["OperationProperties"],
    }
    for name in ("Folders", "Parameters", "Item"):
        if office[name]:
            raw[name] = json.loads(office[name])
    return {
        "TimeGenerated": office["TimeGenerated"],
        "ActionType": office["Operation"],
        "AccountObjectId": "",
        "IPAddress": address if where == "IPAddress" else "",
        "UserAgent": office["UserAgent"],
        "ObjectName": office["SourceFileName"],
        "RawEventData": raw,
    }


def _item(uri: str, item: int) -> str:
    """The request's path one segment deeper (query kept), so a group gathers more distinct paths than the sample cap."""
    path, mark, query = uri.partition("?")
    return f"{path.rstrip('/')}/Item{item}{mark}{query}"


def _lines(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def test_the_floor_returns_the_products_scope_rows_from_cloud_app_events_and_failed_graph_requests(
    tenant: Any, tenant_folder: Path, tmp_path: Path
) -> None:
    """With the mailbox audit in CloudAppEvents (some records tied by session only) and Graph requests that fail or outgrow the sample cap, the rows are the product's."""
    _, _, settings, scenarios = tenant
    source = tmp_path / "cloud"
    source.mkdir()
    for path in tenant_folder.iterdir():
        if path.is_file() and not path.name.startswith(("OfficeActivity", "MicrosoftGraphActivityLogs")):
            shutil.copy(path, source / path.name)
    events = [_cloud_app_event(row, index) for index, row in enumerate(_lines(tenant_folder / "OfficeActivity.jsonl.gz"))]
    requests = [
        {**row, "ResponseStatusCode": (200, 399, 400, 503)[index % 4], "RequestUri": _item(row["RequestUri"], index % 25)}
        for index, row in enumerate(_lines(tenant_folder / "MicrosoftGraphActivityLogs.jsonl.gz"))
    ]
    (source / "CloudAppEvents.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    (source / "MicrosoftGraphActivityLogs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in requests), encoding="utf-8")
    cache = tmp_path / "cloud.duckdb"
    with EmbeddedEngine.open(source, cache=cache) as engine:
        answered = _scenario_scopes(engine, cache, settings, scenarios)
    assert {row["Source"] for row in answered} == {"MicrosoftGraphActivityLogs", "CloudAppEvents", "AuditLogs"}
    assert any(row["Kind"] == "mailbox" and row["Ip"] == "" for row in answered)
    assert any(row["Kind"] == "graph" and row["Failures"] for row in answered)
    assert any(row["Kind"] == "graph" and row["Count"] > len(row["Samples"]) == floor.SCOPE_SAMPLE_CAP for row in answered)


@pytest.mark.skipif(not BEC.is_dir(), reason=f"reference exports not present at {BEC}")
def test_the_floor_returns_the_products_scope_rows_on_the_real_capture(tmp_path: Path) -> None:
    """On the recorded token replay the floor finds what the product ties to the attacker's address (the inbox rules from 10.0.0.1)."""
    cache = tmp_path / "bec.duckdb"
    at = datetime(2026, 6, 15, 16, 30, tzinfo=UTC)
    with EmbeddedEngine.open(BEC, cache=cache) as engine:
        asked = _suspects(engine, [Account(upn="isaacdunham@corp.local")], at, Settings())
        assert asked is not None
        assert "10.0.0.1" in asked.suspect_ips
        product, found = _scopes(engine, cache, at, Settings(), asked)
    assert any(json.loads(row)["Kind"] != "coverage" for row in product)
    assert found == product


def test_the_floors_restated_constants_are_the_products() -> None:
    """What the floor restates rather than imports (operations, caps, the shapes of bound values) is the product's, so rows absent from the data cannot differ."""
    for name in (
        "SECURITY_OPERATIONS",
        "RULE_OPERATIONS",
        "MAILBOX_OPERATIONS",
        "DIRECTORY_OPERATIONS",
        "APPLICATION_CREDENTIALS",
    ):
        assert getattr(floor, name) == getattr(kql, name), name
    for name in (
        "SCOPE_SAMPLE_CAP",
        "SCOPE_TEXT_CAP",
        "SCOPE_BINDING_CAP",
        "IDENTITY_LOOKBACK",
        "RISK_LOOKBACK",
        "RISK_DETECTIONS_CAP",
    ):
        assert getattr(floor, name) == getattr(kql, name), name
    for name in ("_ADDRESS", "_TOKEN_ID", "_SESSION_ID"):
        assert getattr(floor, name).pattern == getattr(kql, name).pattern, name
    assert floor.INDEX_SCAN_MAX_ROWS == INDEX_SCAN_MAX_ROWS


def test_the_floor_asks_no_scope_question_without_suspects(tenant: Any) -> None:
    """Like the product, the floor answers the scope only when given suspect addresses, tokens or sessions."""
    _, cache, settings, scenarios = tenant
    with floor.connect(str(cache)) as con:
        found = floor.answer(con, [scenarios[0]["user"]], [], _at(scenarios[0]["at"]), **floor.options(settings))
    assert set(found) == {"evidence", "baseline", "context"}


def test_the_floor_imports_nothing_of_the_product(tenant: Any) -> None:
    """As a script it is the smallest process answering the questions: neither duckdb-kql nor any module of ours loads."""
    _, cache, _, scenarios = tenant
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['floor.py', 'ask', *sys.argv[1:]]\n"
        "try:\n"
        f"    runpy.run_path({floor.__file__!r}, run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'duckdb_kql', 'enrichment', 'common', 'structlog'}))"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            probe,
            str(cache),
            scenarios[0]["user"],
            scenarios[0]["at"],
            *("--suspect-ip", "203.0.113.7", "--suspect-ip", "198.51.100.9", "--token-id", "tok-1", "--session-id", "ses-1"),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(floor.__file__).parent,
    )
    counts, modules = done.stdout.strip().splitlines()
    assert counts.startswith("evidence=")
    assert " scope=" in counts
    assert modules == "[]"


def test_the_floors_load_reads_every_file_the_product_loads(tenant: Any, tenant_folder: Path, tmp_path: Path) -> None:
    """Cold load is compared on the same files: the floor reads every table and watchlist the loader read, row for row."""
    engine, _, _, _ = tenant
    assert floor.TABLES == KNOWN_TABLES
    assert floor.WATCHLISTS == WATCHLIST_FOLDER
    loaded = {table: rows for table, rows in engine.report.table_rows if rows}
    read = floor.load(tenant_folder, tmp_path / "floor.duckdb")
    watchlists = sum(rows for table, rows in read.items() if table.startswith("watchlist_"))
    assert {table: rows for table, rows in read.items() if not table.startswith("watchlist_")} == {
        table: rows for table, rows in loaded.items() if table != WATCHLIST_TABLE
    }
    assert watchlists == loaded[WATCHLIST_TABLE] > 0


def test_the_floors_load_rereads_a_file_whose_later_rows_break_duckdbs_type_guess(tmp_path: Path) -> None:
    """A column sampled as UUIDs that holds "" further down is read again with every row sampled, and named."""
    folder = tmp_path / "exports"
    folder.mkdir()
    rows = [
        {"UserId": f"00000000-0000-0000-0000-{index:012d}", "UserPrincipalName": f"u{index}@contoso.example"}
        for index in range(30_000)
    ]
    rows.append({"UserId": "", "UserPrincipalName": "late@contoso.example"})
    (folder / "SigninLogs.jsonl").write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    resampled: list[str] = []
    loaded = floor.load(folder, tmp_path / "floor.duckdb", resampled=resampled)
    assert loaded == {"SigninLogs": 30_001}
    assert resampled == ["SigninLogs"]
