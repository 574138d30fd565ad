"""The approval comment: each phase said plainly, every clicker-supplied value escaped, the size bound kept."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from enrichment.domain.model import Account
from playbooks.domain.approval import ApprovalRecord, AttemptLine, Person
from playbooks.domain.incident import SentinelIncident
from playbooks.domain.plan import ACTION_DESCRIPTIONS, ActionKind, ActionResult, ActionStatus, ContainmentPlan, ProposedAction
from playbooks.domain.workflow import Phase
from playbooks.render.comment import approval_comment

AT = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
TARGET = Account("alice@contoso.com", "0f6f2a3e-51a5-4c5e-9b8e-2c9a1e7d4b10")
INCIDENT = SentinelIncident(
    "d0cfe6b2-9ac0-4464-9919-dccaee2e48c0",
    "soc-rg",
    "soc-ws",
    "73e01a99-5cd7-4139-a149-9f2736ff2ab5",
    84,
    "Token replay",
    "",
    AT,
    (TARGET,),
)
PLAN = ContainmentPlan(
    INCIDENT.name,
    TARGET,
    tuple(ProposedAction(k, ACTION_DESCRIPTIONS[k]) for k in (ActionKind.REVOKE_SESSIONS, ActionKind.AUDIT_MFA_METHODS)),
    True,
    "score 92",
)
HOSTILE = '<img src=x onerror=alert(1)>"Mallory"'


def _record(phase: Phase, **change: object) -> ApprovalRecord:
    values: dict[str, object] = {
        "target": TARGET,
        "plan": PLAN,
        "phase": phase,
        "requested_at": AT,
        "expires_at": AT + timedelta(hours=4),
        **change,
    }
    return ApprovalRecord(**values)  # type: ignore[arg-type]


def _render(record: ApprovalRecord, max_chars: int = 30_000) -> str:
    return approval_comment(INCIDENT, record, max_chars=max_chars, generated_at=AT + timedelta(minutes=9))


@pytest.mark.parametrize(
    ("phase", "sentence"),
    [
        (Phase.PENDING, "awaits approval in Teams</b> (requested 2026-03-01 10:00 UTC; decide by 2026-03-01 14:00 UTC)"),
        (Phase.EXPIRED, "the request expired and nothing was done"),
        (Phase.NOT_POSTED, "could not be posted to Teams</b>: bot not installed"),
    ],
)
def test_each_waiting_phase_says_what_happened(phase: Phase, sentence: str) -> None:
    """Pending names the deadline, expired says nothing was done, an unposted card says why."""
    assert sentence in _render(_record(phase, problem="bot not installed"))


def test_decision_names_the_decider_by_upn_and_lists_each_result_with_its_request_id() -> None:
    """Approved by UPN (display name) at the time; one row per action with its outcome and Graph request id."""
    record = _record(
        Phase.DECIDED,
        approved=True,
        decided_by=Person("aaaa", "Alex Wilber", "alex@contoso.com"),
        decided_at=AT + timedelta(minutes=7),
        results=(
            ActionResult(ActionKind.REVOKE_SESSIONS, ActionStatus.SUCCEEDED, "sessions revoked", "req-1"),
            ActionResult(
                ActionKind.AUDIT_MFA_METHODS, ActionStatus.FAILED, "403: grant UserAuthenticationMethod.Read.All", "req-2"
            ),
        ),
    )
    html = _render(record)
    assert "<b>Approved</b> by alex@contoso.com (Alex Wilber) at 2026-03-01 10:07 UTC" in html
    assert "<td>revoke_sessions</td><td>done</td><td>sessions revoked</td><td>req-1</td>" in html
    assert "<td>audit_mfa_methods</td><td>FAILED</td>" in html


def test_rejection_says_nothing_was_changed() -> None:
    """A rejection names who rejected and promises no change."""
    record = _record(Phase.DECIDED, approved=False, decided_by=Person("aaaa", "Alex"), decided_at=AT)
    assert (
        "<b>Rejected</b> by Alex (object id aaaa) at 2026-03-01 10:00 UTC (containment of alice@contoso.com). Nothing was changed."
        in (_render(record))
    )


def test_clicker_supplied_values_are_escaped() -> None:
    """A display name or reason carrying markup is shown as text, never as a tag."""
    attempt = AttemptLine(Person("bbbb", HOSTILE), AT, True, f"refused for {HOSTILE}")
    html = _render(_record(Phase.PENDING, attempts=(attempt,), notes=(HOSTILE,)))
    assert "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;&quot;Mallory&quot; (object id bbbb) tried to approve and was refused" in html


def test_many_refused_attempts_stay_within_the_size_limit() -> None:
    """Hundreds of refused clicks never push the comment past its limit; the decision line survives."""
    attempts = tuple(AttemptLine(Person(f"id-{i}", "x" * 200), AT, True, "not an approver " * 10) for i in range(500))
    html = _render(_record(Phase.PENDING, attempts=attempts), max_chars=4000)
    assert len(html) <= 4000
    assert "awaits approval in Teams" in html
    assert "more attempts not shown" in html


def test_each_state_change_says_what_happened() -> None:
    """A refused click keeps the request open; an approval promises each result as its own record; a result shows its one row."""
    refused = _render(_record(Phase.REFUSED, attempts=(AttemptLine(Person("bbbb", "Mallory"), AT, True, "not an approver"),)))
    approved = _render(
        _record(Phase.DECIDED, approved=True, decided_by=Person("aaaa", "Alex", "alex@contoso.com"), decided_at=AT)
    )
    result = _render(
        _record(Phase.RESULT, results=(ActionResult(ActionKind.REVOKE_SESSIONS, ActionStatus.SUCCEEDED, "revoked", "req-1"),))
    )

    assert (
        "was refused</b>; nothing was changed, and the request stays open for the approvers until 2026-03-01 14:00 UTC" in refused
    )
    assert "Mallory (object id bbbb) tried to approve and was refused: not an approver" in refused
    assert "each action's result is recorded as a comment of its own" in approved
    assert "<td>revoke_sessions</td><td>done</td><td>revoked</td><td>req-1</td>" in result
    assert "Proposed actions" not in result
    assert "Proposed actions" not in refused


def test_the_record_links_the_defender_portal_when_the_incident_offers_it() -> None:
    """providerIncidentUrl is the link on every record; the Azure portal's when it is all the incident has."""
    defender = replace(INCIDENT, url="https://portal.azure.com/#x", provider_url="https://security.microsoft.com/incidents/84")
    html = approval_comment(defender, _record(Phase.PENDING), max_chars=30_000, generated_at=AT)
    azure_only = approval_comment(
        replace(INCIDENT, url="https://portal.azure.com/#x"), _record(Phase.PENDING), max_chars=30_000, generated_at=AT
    )

    assert '<a href="https://security.microsoft.com/incidents/84">Open the incident in the Defender portal</a>' in html
    assert '<a href="https://portal.azure.com/#x">Open the incident in the Azure portal</a>' in azure_only
