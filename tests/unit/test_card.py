"""The approval card: structure, escaping of hostile values, the 28 KB bound, the refreshed variants and the button data."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.errors import InputError
from enrichment.domain.model import Assessment, Explanation, ExplanationKind, Gap, Signal, Verdict
from playbooks.domain.plan import ActionKind, ActionResult, ActionStatus, Decision
from playbooks.render.card import (
    APPROVE,
    CARD_BUDGET,
    DATA_MARKER,
    REJECT,
    SCHEMA_VERSION,
    TEAMS_CARD_LIMIT,
    ActionData,
    CardIncident,
    already_decided_card,
    card_for,
    card_size,
    clean_text,
    escape_markdown,
    expired_card,
    parse_action_data,
    recorded_card,
    refreshed_card,
    refused_card,
    stale_card,
)
from tests.unit import card_samples as s

_ESCAPABLE = set("\\`*_[]<>#|~{}&")


def _texts(node: Any) -> Iterator[str]:
    """Every string Teams renders as Markdown (TextBlock, FactSet), and each RichTextBlock's runs joined as one line."""
    if isinstance(node, dict):
        if node.get("type") == "TextBlock":
            yield node["text"]
        if node.get("type") == "RichTextBlock":
            yield "".join(run["text"] for run in node["inlines"])
            return
        if node.get("type") == "FactSet":
            for fact in node["facts"]:
                yield fact["title"]
                yield fact["value"]
        for key, value in node.items():
            if key not in ("data", "fallback"):
                yield from _texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _texts(item)


def _all_text(card: dict[str, Any]) -> str:
    return "\n".join(_texts(card))


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _pending(evidence: Any = None, assessment: Any = None, **kwargs: Any) -> dict[str, Any]:
    if evidence is None:
        evidence, assessment = s.typical()
    return card_for(
        s.INCIDENT, evidence, assessment, s.plan_for(assessment), instance_id=s.INSTANCE_ID, expires_at=s.EXPIRES, **kwargs
    )


def _decision(approved: bool = True) -> Decision:
    return Decision(
        approved,
        s.plan_for(s.typical()[1]).digest,
        "aaaaaaaa-0000-4000-8000-000000000001",
        "alex@contoso.example",
        s.AT + timedelta(minutes=12),
    )


# ---------------------------------------------------------------------------------------------- escaping


def test_hostile_link_is_escaped_into_literal_text() -> None:
    """A Markdown link in a value has its brackets escaped, so Teams shows it as text, not as a link."""
    assert escape_markdown("[Approve](https://evil)") == r"\[Approve\](https://evil)"


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("**bold**", r"\*\*bold\*\*"),
        ("_italic_", r"\_italic\_"),
        ("`code`", r"\`code\`"),
        ("<at>Alex</at>", r"\<at\>Alex\</at\>"),
        ("&amp;", r"\&amp;"),
        ("{{DATE(2017-02-14T06:00:00Z, SHORT)}}", r"\{\{DATE(2017-02-14T06:00:00Z, SHORT)\}\}"),
        ("# Heading", r"\# Heading"),
        ("- item", r"\- item"),
        ("+ item", r"\+ item"),
        ("1. item", r"1\. item"),
        ("42) item", r"42\) item"),
        ("> quote", r"\> quote"),
        ("a\\b", r"a\\b"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"),
    ],
)
def test_markdown_syntax_is_escaped(raw: str, escaped: str) -> None:
    """Each Markdown construct Teams honours (emphasis, code, tags, entities, date functions, block starts) is neutralised."""
    assert escape_markdown(raw) == escaped


def test_line_breaks_become_spaces_so_no_value_starts_a_block() -> None:
    """Every kind of line break is flattened, so '- item' or '# title' inside a value cannot start a line."""
    assert escape_markdown("a\r\n- b\n# c\r1. d\u2028e\u2029f\x85g") == r"a - b \# c 1. d e f g"


def test_invisible_and_reordering_characters_are_dropped() -> None:
    """Zero-width, control and bidi-override characters are removed so text reads as it is."""
    assert clean_text("Ap\u200bprove\u202edlrow\x00\u2066x\ufeff") == "Approvedlrowx"


def test_cutting_happens_before_escaping() -> None:
    """A long value is cut with an ellipsis and never ends in half an escape."""
    escaped = escape_markdown("*" * 50, limit=10)
    assert escaped == r"\*" * 9 + "…"


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_escaping_round_trips_and_leaves_no_syntax(value: str) -> None:
    """Removing the escapes gives back the cleaned value, and every special character is escaped, on one line."""
    escaped = escape_markdown(value)
    assert _unescape(escaped) == clean_text(value)
    assert not re.search(r"[\r\n\u2028\u2029\x85]", escaped)
    unescaped_specials = re.sub(r"\\.", "", escaped)
    assert not (_ESCAPABLE & set(unescaped_specials))


# ---------------------------------------------------------------------------------------------- the pending card


def test_pending_card_has_schema_1_5_and_two_execute_buttons_with_submit_fallback() -> None:
    """Approve and Reject are Action.Execute with verbs, each falling back to Action.Submit with the same data."""
    card = _pending()
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == SCHEMA_VERSION == "1.5"
    executes = [a for a in card["actions"] if a["type"] == "Action.Execute"]
    assert [a["verb"] for a in executes] == [APPROVE, REJECT]
    for action in executes:
        assert action["fallback"]["type"] == "Action.Submit"
        assert action["fallback"]["data"] == action["data"]
        assert action["data"]["verb"] == action["verb"]


def test_button_data_binds_incident_user_plan_and_orchestration() -> None:
    """The data carries incident id, user object id, plan digest and instance id, and parses back."""
    evidence, assessment = s.typical()
    plan = s.plan_for(assessment)
    card = _pending(evidence, assessment)
    data = card["actions"][0]["data"]
    assert data[DATA_MARKER] == 1
    assert data["incident_id"] == s.INCIDENT.incident_id
    assert data["user_object_id"] == s.USER_ID
    assert data["plan_digest"] == plan.digest
    assert data["instance_id"] == s.INSTANCE_ID
    verb, parsed = parse_action_data(data)
    assert verb == APPROVE
    assert parsed.expires_at == s.EXPIRES


def test_pending_card_shows_incident_user_verdict_signals_ips_and_actions() -> None:
    """An analyst sees the incident, the user, the verdict and score, the reasons, the suspect IPs and the exact actions."""
    card = _pending()
    text = _unescape(_all_text(card))
    assert "Incident 4711: Token replay suspected for a privileged user" in text
    assert s.UPN in text
    assert "Verdict: Token replay likely: score 85/100" in text
    reasons = [line for line in text.splitlines() if line.startswith("• Session") or line.startswith("• AS136787")]
    assert reasons[0].startswith("• Session sess-1")  # heaviest first
    assert "• 198.51.100.7 · Moscow, RU · AS136787 PacketHub S.A. · 57 sign-ins · no benign explanation" in text
    assert "Object id" not in text
    assert "• 203.0.113.10: 203.0.113.0/24 is a corporate VPN egress" in text
    assert "• Changes the tenant: Revoke all of the user's sign-in sessions and refresh tokens" in text
    assert "• Read-only: List the user's MFA methods" in text
    assert "• Changes the tenant: Disable the user's account" in text
    urls = [a["url"] for a in card["actions"] if a["type"] == "Action.OpenUrl"]
    assert urls == [s.INCIDENT.url]


def test_pending_card_says_what_evidence_was_missing() -> None:
    """A replay found in incomplete evidence: the card names the missing table and why, next to the verdict."""
    evidence, assessment = s.typical()
    gap = Gap("AuditLogs", "not read: context query: partial result", ("security_info_changed",))
    text = _unescape(_all_text(_pending(evidence, replace(assessment, gaps=(gap,)))))
    assert "Missing evidence: AuditLogs: not read: context query: partial result. See the incident comment." in text
    assert "Missing evidence" not in _unescape(_all_text(_pending()))


def test_hostile_values_never_reach_the_card_unescaped() -> None:
    """Sign-in values and signal details full of Markdown reach the card only as TextRuns (never Markdown), one line each, with no date function left."""
    evidence, assessment = s.hostile()
    card = _pending(evidence, assessment)
    markdown = "\n".join(b["text"] for b in _walk(card) if b.get("type") == "TextBlock")
    assert "[Approve](" not in markdown
    assert "**bold**" not in markdown
    runs = [r["text"] for b in _walk(card) if b.get("type") == "RichTextBlock" for r in b["inlines"]]
    assert any("[Approve](https://evil.example/pwn)" in r for r in runs)
    for run in runs:
        assert "\n" not in run
        assert "{{" not in run


def test_non_https_incident_link_is_left_out() -> None:
    """A link that is not plain https is dropped rather than offered as a button."""
    evidence, assessment = s.typical()
    incident = CardIncident(s.INCIDENT.incident_id, 1, "t", "javascript:alert(1)")
    card = card_for(incident, evidence, assessment, s.plan_for(assessment), instance_id=s.INSTANCE_ID, expires_at=s.EXPIRES)
    assert not [a for a in card["actions"] if a["type"] == "Action.OpenUrl"]
    assert card["actions"][0]["data"]["incident_url"] == ""


# ---------------------------------------------------------------------------------------------- size


def _huge(text: str, signals: int = 400, ips: int = 600) -> tuple[Any, Assessment]:
    rows = tuple(s.signin(f"10.{i // 256}.{i % 256}.1", country=text[:80], app=text, user_agent=text) for i in range(ips))
    assessment = Assessment(
        score=99,
        verdict=Verdict.REPLAY_LIKELY,
        signals=tuple(Signal(f"s{i}", i % 40, f"{text} #{i}", ()) for i in range(signals)),
        explanations=tuple(Explanation(f"10.9.{i}.1", ExplanationKind.MOBILE_CARRIER, text) for i in range(200)),
        suspect_ips=tuple(r.ip for r in rows),
    )
    return s.evidence(rows), assessment


def test_enormous_incident_stays_under_the_teams_limit_with_more_lines() -> None:
    """Hundreds of signals and IPs with long hostile, non-ASCII values still give a card under 28 KB that says what it left out."""
    evidence, assessment = _huge("𝕏 [Approve](https://evil) ünïcødé " * 40)
    card = _pending(evidence, assessment)
    assert card_size(card) <= CARD_BUDGET < TEAMS_CARD_LIMIT
    text = _all_text(card)
    assert "more signals" in text or "too large for a Teams card" in text
    assert [a["verb"] for a in card["actions"] if a["type"] == "Action.Execute"] == [APPROVE, REJECT]


def test_worst_case_drops_evidence_but_keeps_what_a_decision_needs() -> None:
    """When even short lists do not fit, the evidence gives way; user, verdict, actions and buttons stay."""
    evidence, assessment = _huge("\U0001f600" * 3000, signals=50, ips=50)
    incident = CardIncident(s.INCIDENT.incident_id, 4711, "\U0001f600" * 5000, s.INCIDENT.url)
    card = card_for(incident, evidence, assessment, s.plan_for(assessment), instance_id=s.INSTANCE_ID, expires_at=s.EXPIRES)
    assert card_size(card) < TEAMS_CARD_LIMIT
    text = _unescape(_all_text(card))
    assert s.UPN in text
    assert "score 99/100" in text
    assert "Revoke all of the user's sign-in sessions" in text
    assert len([a for a in card["actions"] if a["type"] == "Action.Execute"]) == 2


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(
    title=st.text(max_size=3000),
    detail=st.text(max_size=3000),
    value=st.text(max_size=500),
    signals=st.integers(0, 60),
    ips=st.integers(0, 60),
)
def test_any_incident_fits(title: str, detail: str, value: str, signals: int, ips: int) -> None:
    """Whatever the text and the counts, the card is under 28 KB and keeps its two buttons."""
    rows = tuple(s.signin(f"192.0.2.{i}", country=value, city=value, app=value, user_agent=value) for i in range(ips))
    assessment = Assessment(
        score=80,
        verdict=Verdict.REPLAY_LIKELY,
        signals=tuple(Signal(f"s{i}", i, detail, ()) for i in range(signals)),
        explanations=tuple(Explanation(f"198.51.100.{i}", ExplanationKind.TRAVEL, detail) for i in range(signals)),
        suspect_ips=tuple(r.ip for r in rows),
    )
    incident = CardIncident(s.INCIDENT.incident_id, 7, title, s.INCIDENT.url)
    card = card_for(
        incident, s.evidence(rows), assessment, s.plan_for(assessment), instance_id=s.INSTANCE_ID, expires_at=s.EXPIRES
    )
    assert card_size(card) < TEAMS_CARD_LIMIT
    assert len([a for a in card["actions"] if a["type"] == "Action.Execute"]) == 2


# ---------------------------------------------------------------------------------------------- after the decision


def test_approved_card_while_running_names_decider_and_time_without_buttons() -> None:
    """After approval the card shows who and when, says containment is running, and has no buttons."""
    card = _pending(decision=_decision())
    text = _unescape(_all_text(card))
    assert "Approved by alex@contoso.example at 2026-11-05 14:12 UTC" in text
    assert "Containment is running" in text
    assert not [a for a in card["actions"] if a["type"] in ("Action.Execute", "Action.Submit")]


def test_outcome_card_lists_each_action_result() -> None:
    """Once containment ran, each action's status, detail and request id are listed; a failure is marked."""
    results = (
        ActionResult(ActionKind.REVOKE_SESSIONS, ActionStatus.SUCCEEDED, "sessions revoked", "req-1"),
        ActionResult(
            ActionKind.AUDIT_MFA_METHODS, ActionStatus.SUCCEEDED, "2 methods, 1 flagged: phone [Approve](https://evil)", "req-2"
        ),
        ActionResult(ActionKind.DISABLE_ACCOUNT, ActionStatus.FAILED, "403 Authorization_RequestDenied", "req-3"),
    )
    card = _pending(decision=_decision(), results=results)
    texts = [t for t in _texts(card) if t.startswith(("✔", "✖", "–"))]
    assert texts[0] == "✔ Revoke sessions: succeeded. sessions revoked (request id req-1)"
    assert "[Approve](https://evil)" in texts[1]
    assert texts[2].startswith("✖ Disable account: failed. 403 Authorization_RequestDenied")
    failed = next(b for b in _walk(card) if b.get("type") == "TextRun" and b["text"].startswith("✖"))
    assert failed["color"] == "Attention"
    assert "Containment is running" not in _all_text(card)
    assert not [a for a in card["actions"] if a["type"] == "Action.Execute"]


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def test_rejected_card_says_nothing_changed() -> None:
    """A rejection names the decider and says nothing was changed."""
    text = _unescape(_all_text(_pending(decision=_decision(approved=False))))
    assert "Rejected by alex@contoso.example" in text
    assert "Nothing was changed." in text


def test_expired_card_has_no_buttons() -> None:
    """An expired request says so and offers no buttons."""
    card = _pending(expired=True)
    assert "Expired: nobody decided in time. Nothing was changed." in _all_text(card)
    assert not [a for a in card["actions"] if a["type"] == "Action.Execute"]


def test_posted_card_refreshes_from_its_own_json() -> None:
    """The orchestration can refresh the card it posted without the evidence: same result as building it afresh."""
    pending = json.loads(json.dumps(_pending()))
    running = refreshed_card(pending, decision=_decision())
    assert running == _pending(decision=_decision())
    assert "Decide by" not in _all_text(running)
    assert "approve containment?" not in _all_text(running)
    assert "Decide by" in _all_text(pending)  # the input is not changed


def test_refreshing_again_replaces_the_state_instead_of_adding_one() -> None:
    """Running, then outcome: the card shows one state section, the latest."""
    results = (ActionResult(ActionKind.REVOKE_SESSIONS, ActionStatus.SUCCEEDED, "done"),)
    outcome = refreshed_card(refreshed_card(_pending(), decision=_decision()), decision=_decision(), results=results)
    text = _all_text(outcome)
    assert text.count("Approved by") == 1
    assert "Containment is running" not in text
    assert "✔ Revoke sessions: succeeded. done" in text


def test_refreshed_card_with_huge_results_still_fits() -> None:
    """A card already near the budget plus long hostile outcomes drops its evidence rather than exceed 28 KB."""
    evidence, assessment = _huge("\U0001f600 [x](https://evil) " * 200)
    pending = _pending(evidence, assessment)
    results = tuple(ActionResult(kind, ActionStatus.FAILED, "\U0001f600" * 5000, "r" * 500) for kind in ActionKind)
    outcome = refreshed_card(pending, decision=_decision(), results=results)
    assert card_size(outcome) < TEAMS_CARD_LIMIT
    assert len([t for t in _texts(outcome) if t.startswith("✖")]) == len(ActionKind)


# ---------------------------------------------------------------------------------------------- short answers to a click


def _data() -> ActionData:
    return ActionData.for_plan(s.INCIDENT, s.plan_for(s.typical()[1]), instance_id=s.INSTANCE_ID, expires_at=s.EXPIRES)


@pytest.mark.parametrize(
    ("card", "expected"),
    [
        (lambda: recorded_card(_data(), _decision()), "Approved by alex@contoso.example at 2026-11-05 14:12 UTC"),
        (lambda: already_decided_card(_data(), _decision(approved=False)), "Already rejected by alex@contoso.example"),
        (lambda: refused_card(_data(), "Mallory", "not a member of the approver group"), "Mallory may not decide"),
        (lambda: expired_card(_data()), "This request expired at 2026-11-05 18:00 UTC"),
        (lambda: stale_card(_data(), "the proposed actions changed"), "no longer matches a waiting request"),
    ],
)
def test_short_cards_say_what_happened_and_offer_no_buttons(card: Any, expected: str) -> None:
    """Each answer to a click names the incident and user, says what happened, and has no decision buttons."""
    built = card()
    text = _unescape(_all_text(built))
    assert expected in text
    assert "Incident 4711" in text
    assert s.UPN in text
    assert built["version"] == "1.5"
    assert not [a for a in built.get("actions", []) if a["type"] in ("Action.Execute", "Action.Submit")]


def test_decider_without_upn_is_shown_by_name_escaped() -> None:
    """Without a UPN the decider's Teams display name is shown, as a TextRun (literal, never Markdown)."""
    decision = Decision(True, "0" * 32, "aaaaaaaa-0000-4000-8000-000000000001", "", s.AT)
    card = already_decided_card(_data(), decision, name="**Eve** [x](https://evil)")
    assert "Already approved by **Eve** [x](https://evil)" in _all_text(card)
    assert not [b for b in _walk(card) if b.get("type") == "TextBlock" and "Eve" in b["text"]]


# ---------------------------------------------------------------------------------------------- button data contract


def _good() -> dict[str, Any]:
    return _data().to_data(REJECT)


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        (DATA_MARKER, 2, DATA_MARKER),
        ("verb", "delete", "verb"),
        ("verb", None, "verb"),
        ("plan_digest", "XYZ", "plan_digest"),
        ("instance_id", "../other", "instance_id"),
        ("instance_id", "", "instance_id"),
        ("user_object_id", "not-a-guid", "user_object_id"),
        ("incident_id", "id with spaces", "incident_id"),
        ("incident_url", "http://insecure.example/x", "incident_url"),
        ("incident_number", True, "incident_number"),
        ("incident_number", -1, "incident_number"),
        ("expires_at", "2026-11-05T18:00:00", "expires_at"),
        ("expires_at", "tomorrow", "expires_at"),
        ("expires_at", 5, "expires_at"),
    ],
)
def test_bad_button_data_is_refused_naming_the_field(field: str, value: Any, problem: str) -> None:
    """Crafted or damaged data is refused with an error naming the bad field."""
    data = _good()
    data[field] = value
    with pytest.raises(InputError, match=re.escape(problem)):
        parse_action_data(data)


def test_button_data_round_trips() -> None:
    """What a button carries parses back to the same values."""
    verb, parsed = parse_action_data(json.loads(json.dumps(_good())))
    assert verb == REJECT
    assert parsed == _data()


def test_plan_with_unusable_instance_id_is_refused_before_posting() -> None:
    """A card whose data the bot would refuse is never built."""
    evidence, assessment = s.typical()
    with pytest.raises(InputError, match="instance_id"):
        card_for(s.INCIDENT, evidence, assessment, s.plan_for(assessment), instance_id="bad/id", expires_at=s.EXPIRES)
