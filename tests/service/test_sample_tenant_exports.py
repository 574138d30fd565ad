"""The generated sample tenant is what the product reads: the loader takes it whole and the real queries find each story."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from common.settings import Settings
from enrichment.adapters.embedded import EmbeddedEngine
from enrichment.adapters.exports import load_exports
from enrichment.domain.model import Account, UserEvidence
from enrichment.services.gather import gather_evidence
from sample_tenant.generate import Options, Summary, generate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Summary]:
    folder = tmp_path_factory.mktemp("tenant")
    summary = generate(Options(out=folder, users=30, days=4, variants=2, compress=True))
    return folder, summary


@pytest.fixture(scope="module")
def engine(tenant: tuple[Path, Summary]) -> Iterator[EmbeddedEngine]:
    with EmbeddedEngine.open(tenant[0]) as opened:
        yield opened


def _scenarios(folder: Path, family: str) -> list[dict[str, Any]]:
    found = [s for s in json.loads((folder / "scenarios.json").read_text(encoding="utf-8")) if s["family"] == family]
    assert found
    return found


def _evidence(engine: EmbeddedEngine, folder: Path, scenario: dict[str, Any]) -> UserEvidence:
    settings = Settings.from_file(folder / "settings.json")
    at = datetime.fromisoformat(scenario["at"].replace("Z", "+00:00"))
    (evidence,) = gather_evidence(engine, [Account(scenario["user"], scenario["user_id"])], at, settings)
    return evidence


def test_the_loader_takes_every_row_and_column_without_complaint(tenant: tuple[Path, Summary]) -> None:
    """Every table loads in full from the gzip exports, with no missing or unknown column and no problem reported."""
    folder, summary = tenant
    report = load_exports(folder).report
    for table, rows in summary.rows.items():
        assert report.rows(table) == rows
    for file in report.files:
        assert file.missing_columns == ()
        assert file.unknown_columns == ()
        assert file.problems == ()
    assert report.rows("Watchlists") >= 2


def test_device_code_phishing_is_found_by_the_production_queries(engine: EmbeddedEngine, tenant: tuple[Path, Summary]) -> None:
    """The evidence query returns the attacker's sign-ins and the context query the device registered from that IP."""
    folder = tenant[0]
    for scenario in _scenarios(folder, "device_code_phishing"):
        evidence = _evidence(engine, folder, scenario)
        ips = {s.ip for s in evidence.signins}
        assert set(scenario["attacker_ips"]) <= ips
        assert set(scenario["victim_ips"]) <= ips
        registered = [e for e in evidence.security_events if e.operation == "Register device"]
        assert [e.actor_ip for e in registered] == [scenario["incident_ip"]]
        assert any(s.ip == scenario["incident_ip"] and s.incoming_token_type == "primaryRefreshToken" for s in evidence.signins)


def test_travel_records_reach_the_triage_through_the_watchlist_function(
    engine: EmbeddedEngine, tenant: tuple[Path, Summary]
) -> None:
    """`_GetWatchlist("TravelRecords")` returns the trip covering the incident, for the country the hotel rows are in."""
    folder = tenant[0]
    for scenario in _scenarios(folder, "travel_with_record"):
        evidence = _evidence(engine, folder, scenario)
        abroad = {s.country for s in evidence.signins if s.ip in scenario["explained_ips"]}
        assert len(abroad) == 1
        assert any(t.country in abroad and t.start <= evidence.at <= t.end for t in evidence.travel)


@pytest.mark.parametrize("family", ["aitm_residential_replay", "relay_replay"])
def test_every_attacker_address_of_the_new_replays_reaches_the_evidence(
    engine: EmbeddedEngine, tenant: tuple[Path, Summary], family: str
) -> None:
    """The production evidence query returns each address the attacker used, in the session it replayed."""
    folder = tenant[0]
    for scenario in _scenarios(folder, family):
        evidence = _evidence(engine, folder, scenario)
        by_ip: dict[str, set[str]] = {}
        for signin in evidence.signins:
            by_ip.setdefault(signin.ip, set()).add(signin.session_id)
        assert set(scenario["attacker_ips"]) <= set(by_ip)
        sessions = set.intersection(*(by_ip[ip] for ip in scenario["attacker_ips"]))
        assert sessions, scenario["id"]


def test_the_tenants_settings_name_its_security_service_edge(tenant: tuple[Path, Summary]) -> None:
    """settings.json carries REPLAY_SSE_PROVIDER for the product, and the SSE users' addresses are that provider's."""
    folder = tenant[0]
    settings = Settings.from_file(folder / "settings.json")
    assert len(settings.sse_providers) == 1
    for scenario in _scenarios(folder, "organisation_sse"):
        assert scenario["traits"]["provider"] in settings.sse_providers
