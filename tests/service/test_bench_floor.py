"""The benchmark's floor (bench/floor.py, hand-written DuckDB SQL) answers the triage's questions with the product's rows."""

from __future__ import annotations

import json
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
from enrichment.adapters.exports import KNOWN_TABLES, WATCHLIST_FOLDER, WATCHLIST_TABLE
from enrichment.domain.model import Account
from enrichment.queries import kql
from enrichment.services.gather import baseline_window, evidence_window
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


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tenant")
    generate(Options(out=folder, users=40, days=5, variants=1, compress=True))
    return folder


@pytest.fixture(scope="module")
def tenant(exports: Path) -> Iterator[tuple[EmbeddedEngine, Path, Settings, list[dict[str, Any]]]]:
    folder = exports
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
        [sys.executable, "-c", probe, str(cache), scenarios[0]["user"], scenarios[0]["at"]],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(floor.__file__).parent,
    )
    counts, modules = done.stdout.strip().splitlines()
    assert counts.startswith("evidence=")
    assert modules == "[]"


def test_the_floors_load_reads_every_file_the_product_loads(tenant: Any, exports: Path, tmp_path: Path) -> None:
    """Cold load is compared on the same files: the floor reads every table and watchlist the loader read, row for row."""
    engine, _, _, _ = tenant
    assert floor.TABLES == KNOWN_TABLES
    assert floor.WATCHLISTS == WATCHLIST_FOLDER
    loaded = {table: rows for table, rows in engine.report.table_rows if rows}
    read = floor.load(exports, tmp_path / "floor.duckdb")
    watchlists = sum(rows for table, rows in read.items() if table.startswith("watchlist_"))
    assert {table: rows for table, rows in read.items() if not table.startswith("watchlist_")} == {
        table: rows for table, rows in loaded.items() if table != WATCHLIST_TABLE
    }
    assert watchlists == loaded[WATCHLIST_TABLE] > 0
