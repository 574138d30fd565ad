"""The brief (story, the incident's addresses, next steps, classification), the pivots, the text and the report picture."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import re
import xml.etree.ElementTree as ET
from datetime import timedelta
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from enrichment.domain.model import Account, Assessment, Explanation, ExplanationKind, Gap, Signal, Verdict
from enrichment.queries.kql import InvalidQueryInput
from enrichment.queries.pivots import advanced_hunting_link, entra_signins_link, log_analytics_link, pivot, pivot_query
from enrichment.render.asn_names import asn_label, source
from enrichment.render.html import account_html, esc
from enrichment.render.report import ReportSection, report_html
from enrichment.render.story import Approval, Context, Identity, brief, name_asns
from enrichment.render.text import TEXT_SIGNALS, text_report
from enrichment.render.timeline import timeline_svg
from tests.unit import card_samples as s

WORKSPACE = "/subscriptions/0e230931-2f08-47d3-b5e7-ff5258ec1737/resourceGroups/rg-soc/providers/Microsoft.OperationalInsights/workspaces/law-soc"


def _replay() -> tuple[object, Assessment]:
    return s.typical()


def test_story_names_the_lifted_session_where_it_was_born_and_used_when_and_for_what() -> None:
    """One sentence: the client and place the session was opened at, the suspect place, times in UTC, count and apps."""
    evidence, assessment = s.typical()
    summary = brief(evidence, assessment)
    assert summary.story == (
        "The session opened in Microsoft Teams at Amsterdam, NL (AS64500) at 14:00 UTC was used from "
        "Moscow, RU (AS136787 PacketHub S.A.) at 14:40: 57 sign-in(s) to Microsoft Teams until 14:45 UTC."
    )
    assert [x.session_id for x in summary.sessions] == ["sess-1"]


def test_headline_shows_the_points_found_only_when_the_score_is_capped() -> None:
    """'score 100/100 (182 points found)' when capped; the plain score otherwise."""
    evidence, assessment = s.typical()
    assert brief(evidence, assessment).headline == "Token replay likely: score 85/100"
    capped = dataclasses.replace(assessment, score=100, signals=(*assessment.signals, Signal("x", 97, "more", ())))
    assert brief(evidence, capped).headline == "Token replay likely: score 100/100 (182 points found)"


def test_the_incidents_own_addresses_are_answered() -> None:
    """Suspect, explained and absent addresses of the incident each get their own line."""
    evidence, assessment = s.typical()
    lines = brief(evidence, assessment, Context(incident_ips=("198.51.100.7", "203.0.113.10", "192.0.2.99"))).incident_lines
    assert lines[0].startswith(
        "The incident's address 198.51.100.7 (Moscow, RU (AS136787 PacketHub S.A.)) is suspect: 57 sign-in(s)"
    )
    assert (
        lines[1]
        == "The incident's address 203.0.113.10 (Amsterdam, NL (AS64500)) is explained by corporate VPN: 203.0.113.0/24 is a corporate VPN egress."
    )
    assert lines[2].startswith("The incident's address 192.0.2.99 is not in this user's sign-ins between")


def test_replay_next_steps_follow_the_token_theft_playbook_and_name_the_deadline() -> None:
    """Approve by the deadline, reset the password, remove methods and devices, review rules and consents, block the IP."""
    evidence, assessment = s.typical()
    context = Context(approval=Approval(deadline=s.EXPIRES), identity=Identity(display_name="Adele Vance"))
    steps = brief(evidence, assessment, context).next_steps
    assert steps[0].startswith(
        "Approve or reject containment on the Teams card by 2026-11-05 18:00 UTC: approving revokes Adele Vance's sessions"
    )
    joined = " ".join(steps)
    for words in (
        "Reset the password",
        "MFA methods and devices",
        "inbox rules and forwarding",
        "app consents",
        "Block 198.51.100.7",
    ):
        assert words in joined
    problem = brief(evidence, assessment, Context(approval=Approval(problem="bot not configured"))).next_steps[0]
    assert problem.startswith("No approval card was posted (bot not configured): revoke")


def test_benign_suggests_a_sentinel_classification_and_reason() -> None:
    """Explained activity: BenignPositive (SuspiciousButExpected); nothing unusual: FalsePositive (IncorrectAlertLogic)."""
    evidence, _ = s.typical()
    explained = Assessment(5, Verdict.BENIGN, (), (Explanation("198.51.100.7", ExplanationKind.TRAVEL, "trip"),), ())
    assert brief(evidence, explained).classification.label == "BenignPositive (SuspiciousButExpected)"
    assert brief(evidence, explained).next_steps[0].startswith("Close the incident as BenignPositive (SuspiciousButExpected)")
    quiet = Assessment(0, Verdict.BENIGN, (), (), ())
    assert brief(evidence, quiet).classification.label == "FalsePositive (IncorrectAlertLogic)"
    assert brief(*s.typical()).classification.label == "TruePositive (SuspiciousActivity)"


def test_insufficient_evidence_next_step_is_one_short_line_naming_tables_not_rules() -> None:
    """Missing evidence: one step naming each table's problem (shared problems once) and a count of checks, no rule ids."""
    evidence, _ = s.typical()
    rules = tuple(f"rule_{i}" for i in range(30))
    window = "not read: no rows between 2026-06-14 10:00 UTC and 2026-06-15 16:00 UTC"
    gaps = (
        Gap("SigninLogs", window, rules),
        Gap("AADNonInteractiveUserSignInLogs", window, rules, (ExplanationKind.TRAVEL,)),
        Gap("AuditLogs", "column(s) InitiatedBy absent", ("security_info_changed",)),
    )
    missing = Assessment(0, Verdict.INSUFFICIENT_EVIDENCE, (), (), (), gaps)

    (step,) = brief(evidence, missing).next_steps

    assert step == (
        "Find out why the evidence is incomplete (SigninLogs, AADNonInteractiveUserSignInLogs: " + window + "; "
        "AuditLogs: column(s) InitiatedBy absent), then run the playbook again. "
        "32 checks could not run (listed under missing evidence)."
    )
    assert "rule_0" not in step
    assert len(step) < 300


def test_every_asn_is_named_from_the_shipped_database() -> None:
    """AS numbers outside the curated tables get their registry name; the source names the npm package and version."""
    assert asn_label(8220) == "AS8220 COLT Technology Services Group Limited"
    assert asn_label(3352) == "AS3352 TELEFONICA DE ESPANA S.A.U."
    assert asn_label(None) == ""
    assert source().startswith("npm @ip-location-db/asn ")
    assert name_asns("from 192.0.2.1 (AS8220, ES)") == "from 192.0.2.1 (AS8220 COLT Technology Services Group Limited, ES)"


# ---------------------------------------------------------------------------------------------- pivots


def test_pivot_query_covers_both_tables_and_links_decode_back_to_it() -> None:
    """The Log Analytics link (gzip+base64, URL-encoded twice) and the advanced hunting link (UTF-16LE) carry the query."""
    evidence, assessment = s.typical()
    found = pivot(
        evidence.account, evidence.window, session_ids=["sess-1"], ips=assessment.suspect_ips, workspace_resource_id=WORKSPACE
    )
    assert found is not None
    assert "(SigninLogs" in found.query
    assert "(AADNonInteractiveUserSignInLogs" in found.query
    assert 'SessionId in ("sess-1") or IPAddress in ("198.51.100.7")' in found.query
    encoded = found.log_analytics.split("/q/")[1].split("/timespan/")[0]
    assert gzip.decompress(base64.b64decode(unquote(unquote(encoded)))).decode() == found.query
    assert "resourceId/%2Fsubscriptions%2F" in found.log_analytics
    query = found.advanced_hunting.split("query=")[1].split("&")[0]
    assert gzip.decompress(base64.urlsafe_b64decode(query + "=" * (-len(query) % 4))).decode("utf-16-le") == found.query
    assert found.entra_signins.endswith(f"/SignIns/userId/{s.USER_ID}")
    assert advanced_hunting_link("x").endswith("&timeRangeId=month")


@pytest.mark.parametrize(
    ("sessions", "ips"),
    [(['a") or 1==1 //'], []), ([], ['1.2.3.4") | take 1']), ([], ["not an ip"]), ([], [])],
)
def test_hostile_pivot_values_are_refused(sessions: list[str], ips: list[str]) -> None:
    """A session id or address that is not one cannot reach the query text."""
    evidence, _ = s.typical()
    with pytest.raises(InvalidQueryInput):
        pivot_query(evidence.account, evidence.window, session_ids=sessions, ips=ips)


def test_links_need_a_real_workspace_and_user_id() -> None:
    """No Log Analytics link without a workspace resource id; no Entra link without an object id."""
    evidence, _ = s.typical()
    assert log_analytics_link("q", "", evidence.window) == ""
    assert entra_signins_link("adele@contoso.example") == ""
    query = pivot_query(Account("o'brien@contoso.example"), evidence.window, session_ids=[], ips=["2001:db8::1"])
    assert 'UserPrincipalName =~ "o\'brien@contoso.example"' in query


# ---------------------------------------------------------------------------------------------- text


def test_text_lists_every_signal_marks_suspects_and_times_to_the_minute() -> None:
    """No signal hidden (or 'and N more'), suspects starred, times with UTC and no seconds."""
    evidence, assessment = s.typical()
    many = dataclasses.replace(assessment, signals=tuple(Signal(f"s{i}", 1, f"signal {i}", ()) for i in range(TEXT_SIGNALS + 3)))
    text = text_report(evidence, many, brief(evidence, many))
    assert f"Signals ({TEXT_SIGNALS + 3}):" in text
    assert "  and 3 more" in text
    assert " * 198.51.100.7  Moscow, RU  AS136787 PacketHub S.A." in text
    assert "2026-11-05 14:40 to 2026-11-05 14:45 UTC" in text
    assert ":00.000" not in text
    assert "+00:00" not in text


def test_text_replaces_terminal_control_characters() -> None:
    """An escape sequence in a sign-in value cannot reach the terminal."""
    evidence, assessment = s.typical()
    rows = tuple(dataclasses.replace(r, city="\x1b[2Jwiped") for r in evidence.signins)
    text = text_report(
        dataclasses.replace(evidence, signins=rows), assessment, brief(dataclasses.replace(evidence, signins=rows), assessment)
    )
    assert "\x1b" not in text
    assert "?[2Jwiped" in text


# ---------------------------------------------------------------------------------------------- HTML and SVG escaping

_HOSTILE_TEXT = st.text(alphabet=st.sampled_from(list("<>&\"'/= abc{}\u2028\x1b:;")), min_size=1, max_size=80)


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=_HOSTILE_TEXT)
def test_hostile_values_stay_text_in_the_svg_and_the_report(value: str) -> None:
    """Whatever a sign-in row says, the SVG parses as XML with the value as text, and the report has no tag of it."""
    evidence, assessment = s.typical()
    rows = tuple(dataclasses.replace(r, app=value, city=value, ip=r.ip if i else value) for i, r in enumerate(evidence.signins))
    hostile = dataclasses.replace(evidence, signins=rows)
    svg = timeline_svg(hostile, assessment)
    tree = ET.fromstring(svg)
    titles = "".join(t.text or "" for t in tree.iter("{http://www.w3.org/2000/svg}title"))
    assert re.sub("[\x00-\x08\x0b\x0c\x0e-\x1f]", "?", value)[:30] in titles
    page = report_html("t", [ReportSection(hostile, assessment, brief(hostile, assessment))], generated_at=s.AT)
    assert "<script" not in page
    assert esc(value, 10_000) in page or not value.strip()
    assert "<" + value not in account_html(hostile, assessment, brief(hostile, assessment)) or "<" not in value


def test_report_is_self_contained_and_forbids_scripts_and_network() -> None:
    """One HTML file: a policy that allows no script or remote load, the picture inline, print CSS."""
    evidence, assessment = s.typical()
    page = report_html(
        "Report", [ReportSection(evidence, assessment, brief(evidence, assessment))], generated_at=s.AT + timedelta(hours=1)
    )
    assert "default-src 'none'" in page
    assert "<svg" in page
    assert "@media print" in page
    assert 'class="suspect-row"' in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "").replace("http://adaptivecards", "")
