"""The generated sample tenant is what the product reads: the loader takes it whole and the real queries find each story."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from common.settings import Settings
from enrichment.adapters.embedded import EmbeddedEngine
from enrichment.adapters.exports import load_exports
from enrichment.domain.attribution import attribute
from enrichment.domain.model import Account, Assessment, UserEvidence, Verdict
from enrichment.domain.scoring import assess
from enrichment.domain.signals import activity
from enrichment.domain.signals.rule import Rule
from enrichment.render.scope_document import activity_document
from enrichment.services.gather import gather_evidence
from enrichment.services.investigate import investigate
from sample_tenant.generate import Options, Summary, generate
from sample_tenant.workloads import WORKLOAD_TABLES

ACTIVITY_SIGNALS = tuple(r.id for r in vars(activity).values() if isinstance(r, Rule))

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Summary]:
    folder = tmp_path_factory.mktemp("tenant")
    summary = generate(Options(out=folder, users=34, days=4, variants=2, compress=True))
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


def _investigated(engine: EmbeddedEngine, folder: Path, scenario: dict[str, Any]) -> tuple[UserEvidence, Assessment]:
    settings = Settings.from_file(folder / "settings.json")
    at = datetime.fromisoformat(scenario["at"].replace("Z", "+00:00"))
    ((evidence, assessment),) = investigate(engine, [Account(scenario["user"], scenario["user_id"])], at, settings)
    return evidence, assessment


@pytest.mark.parametrize("family", ["aitm_cookie_replay", "refresh_token_replay"])
def test_the_stolen_sessions_rule_forwarding_and_graph_reads_are_found_under_that_session(
    engine: EmbeddedEngine, tenant: tuple[Path, Summary], family: str
) -> None:
    """The scope ties the attacker's inbox rule, forwarding and Graph mail reads to the replayed session, from the attacker's address."""
    folder = tenant[0]
    for scenario in _scenarios(folder, family):
        made = scenario["traits"]["workloads"]
        evidence, assessment = _investigated(engine, folder, scenario)
        document = activity_document(evidence, assessment.suspect_ips)
        (session,) = [s for s in document["sessions"] if s["session_id"] == made["session"]]
        assert set(session["ips"]) <= set(scenario["attacker_ips"])
        assert [r["name"] for r in session["inbox_rules"]] == [made["inbox_rule"]]
        forwarded = [f["address"] for f in session["forwarding"]] + [a for r in session["inbox_rules"] for a in r["forward_to"]]
        assert forwarded == [made["forwarding_to"]]
        reads = sum(a["count"] for a in session["acts"] if a["operation"] == "mail_read")
        assert reads == made["graph_mail_reads"]
        assert {"inbox_rule_hides_mail", "mail_forwarded_outside"} <= {s.id for s in assessment.signals}


def test_no_look_alike_is_pinned_on_an_attacker(engine: EmbeddedEngine, tenant: tuple[Path, Summary]) -> None:
    """Look-alikes and grey stories (their own rules, forwarding and Graph apps in the window) get no activity signal; benign sign-ins are not followed."""
    folder = tenant[0]
    scenarios = [s for s in json.loads((folder / "scenarios.json").read_text(encoding="utf-8")) if s["kind"] != "attack"]
    for scenario in scenarios:
        evidence, assessment = _investigated(engine, folder, scenario)
        assert not {s.id for s in assessment.signals} & set(ACTIVITY_SIGNALS), scenario["id"]
        assert evidence.scope is not None, scenario["id"]
        if scenario["kind"] == "grey":
            assert evidence.scope.asked, scenario["id"]
        else:
            assert not evidence.scope.asked, scenario["id"]
            assert attribute(evidence, assessment.suspect_ips) == (), scenario["id"]


def test_an_export_without_the_activity_tables_says_what_could_not_be_seen(tenant: tuple[Path, Summary], tmp_path: Path) -> None:
    """Sign-ins and AuditLogs only: the AiTM incident still ends replay_likely, and the scope names each table it lacked."""
    folder = tenant[0]
    bare = tmp_path / "bare"
    bare.mkdir()
    for path in folder.iterdir():
        if path.is_file() and not any(path.name.startswith(table) for table in WORKLOAD_TABLES):
            shutil.copy(path, bare / path.name)
    shutil.copytree(folder / "watchlists", bare / "watchlists")
    (scenario, *_) = _scenarios(folder, "aitm_cookie_replay")
    with EmbeddedEngine.open(bare) as opened:
        evidence, assessment = _investigated(opened, bare, scenario)
    document = activity_document(evidence, assessment.suspect_ips)
    assert assessment.verdict.value == "replay_likely"
    assert document["asked"] is True
    assert "MicrosoftGraphActivityLogs is not collected: Graph use by the stolen token cannot be seen" in document["not_seen"]
    assert any(s.startswith("Microsoft 365 audit is missing") for s in document["not_seen"])
    assert all(a.problem.endswith("cannot be read from the workspace") for a in evidence.identity.answers)


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


def _assessed(engine: EmbeddedEngine, folder: Path, kind: str) -> list[tuple[dict[str, Any], Assessment]]:
    settings = Settings.from_file(folder / "settings.json")
    scenarios = [s for s in json.loads((folder / "scenarios.json").read_text(encoding="utf-8")) if s["kind"] == kind]
    assert scenarios
    return [(s, assess(_evidence(engine, folder, s), settings)) for s in scenarios]


def test_grey_zone_stories_land_suspicious_with_their_own_address_to_ask_about(
    engine: EmbeddedEngine, tenant: tuple[Path, Summary]
) -> None:
    """A new home line on a new unmanaged laptop, a trip with no record: neither cleared nor accused, the address named."""
    for scenario, assessment in _assessed(engine, tenant[0], "grey"):
        assert assessment.verdict is Verdict.SUSPICIOUS, (scenario["id"], assessment.score)
        assert assessment.verdict.value == scenario["expected_verdict"]
        assert assessment.suspect_ips == (scenario["incident_ip"],), scenario["id"]


def test_look_alikes_land_benign_with_their_expected_explanation(engine: EmbeddedEngine, tenant: tuple[Path, Summary]) -> None:
    """Every benign look-alike of the tenant (a phone onto a new carrier, dual stack, relays...) is benign and explained as the truth says."""
    for scenario, assessment in _assessed(engine, tenant[0], "benign"):
        assert assessment.verdict is Verdict.BENIGN, (scenario["id"], [s.id for s in assessment.signals])
        found = {(e.ip, e.kind.value) for e in assessment.explanations}
        assert {(ip, scenario["expected_explanation"]) for ip in scenario["explained_ips"]} <= found, scenario["id"]
