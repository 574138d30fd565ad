"""The approval sub-orchestration replayed from Durable history: approve, reject, timeout, refused clicks, failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from enrichment.domain.model import Account
from playbooks.adapters.teams import (
    APPROVAL_EVENT,
    APPROVAL_STATUS_KEY,
    ATTEMPT_EVENT,
    RefusedAttempt,
    attempt_payload,
    decision_payload,
)
from playbooks.domain.approval import APPROVAL_ORCHESTRATOR, Phase, approval_instance_id, request_input
from playbooks.domain.incident import IncidentRef
from playbooks.domain.plan import ACTION_DESCRIPTIONS, ActionKind, ContainmentPlan, Decision, ProposedAction
from playbooks.functions.approval_flow import ACTIVITY_COMMENT, ACTIVITY_CONTAIN, ACTIVITY_POST_CARD, ACTIVITY_UPDATE_CARD
from playbooks.functions.orchestrator import ACTIVITY_ENRICH, ACTIVITY_LABELS
from playbooks.services.enrich import plan_json
from tests.app.durable_history import Played, play
from tests.app.test_orchestrator import INCIDENT

ACCOUNT = Account("alice@contoso.com", "0f6f2a3e-51a5-4c5e-9b8e-2c9a1e7d4b10")
APPROVER = "aaaaaaaa-0000-4000-8000-000000000001"
OUTSIDER = "bbbbbbbb-0000-4000-8000-000000000002"
REQUESTED = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
EXPIRES = REQUESTED + timedelta(hours=4)
PARENT = f"incident-{INCIDENT['name']}"
INSTANCE = approval_instance_id(PARENT, 0, REQUESTED)
PLAN = ContainmentPlan(
    INCIDENT["name"],
    ACCOUNT,
    tuple(ProposedAction(k, ACTION_DESCRIPTIONS[k]) for k in (ActionKind.REVOKE_SESSIONS, ActionKind.AUDIT_MFA_METHODS)),
    True,
    "score 92: a token replay is likely",
)
CARD = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "approve?"}]}
REFERENCE = {
    "service_url": "https://smba.example/",
    "conversation_id": "19:x",
    "activity_id": "1",
    "bot_app_id": "b",
    "tenant_id": "t",
}
RESULTS = [
    {"kind": "revoke_sessions", "status": "succeeded", "detail": "sessions revoked", "request_id": "req-1"},
    {"kind": "audit_mfa_methods", "status": "succeeded", "detail": "2 methods; none flagged", "request_id": "req-2"},
]


def _input(**change: Any) -> dict[str, Any]:
    incident = IncidentRef.from_json(INCIDENT)
    request = {"instance_id": INSTANCE, "requested_at": REQUESTED.isoformat(), "expires_at": EXPIRES.isoformat(), "card": CARD}
    return {**request_input(incident, ACCOUNT, plan_json(PLAN), request), **change}


def _decision(approved: bool = True, digest: str = PLAN.digest, who: str = APPROVER) -> tuple[str, str, dict[str, Any]]:
    decision = Decision(approved, digest, who, "", REQUESTED + timedelta(minutes=7))
    return ("event", APPROVAL_EVENT, decision_payload(decision, "Alex Wilber"))


def _refusal() -> tuple[str, str, dict[str, Any]]:
    attempt = RefusedAttempt(OUTSIDER, "Mallory", True, REQUESTED + timedelta(minutes=3), "not in the approver group")
    return ("event", ATTEMPT_EVENT, attempt_payload(attempt))


class Activities:
    """Answers every activity as a healthy deployment would, or as told to fail."""

    def __init__(self, **fail: dict[str, Any]) -> None:
        self.fail = fail

    def __call__(self, name: str, payload: dict[str, Any]) -> Any:
        if name in self.fail:
            return {"ok": False, "failure": self.fail[name]}
        return {
            ACTIVITY_POST_CARD: {"ok": True, "reference": REFERENCE},
            ACTIVITY_UPDATE_CARD: {"ok": True},
            ACTIVITY_CONTAIN: {"ok": True, "results": RESULTS, "notes": ["MFA audit: 2 method(s) registered"]},
            ACTIVITY_COMMENT: {"ok": True},
        }[name]


def _approval(script: list[Any], activities: Activities | None = None, **change: Any) -> Played:
    return play(_input(**change), activities or Activities(), script, orchestrator=APPROVAL_ORCHESTRATOR, instance_id=INSTANCE)


def _comments(played: Played) -> list[dict[str, Any]]:
    return [payload["record"] for name, payload in played.called if name == ACTIVITY_COMMENT]


def _phases(played: Played) -> list[str | None]:
    return [(s or {}).get(APPROVAL_STATUS_KEY, {}).get("phase") if isinstance(s, dict) else None for s in played.statuses]


class TestDecisions:
    def test_approval_contains_refreshes_the_card_and_records_the_outcome(self) -> None:
        """Approve: publish pending, post, comment, then decided, card refreshed, contain once, card with results, final comment."""
        played = _approval([_decision()])

        assert played.names() == [
            ACTIVITY_POST_CARD,
            ACTIVITY_COMMENT,
            ACTIVITY_UPDATE_CARD,
            ACTIVITY_CONTAIN,
            ACTIVITY_UPDATE_CARD,
            ACTIVITY_COMMENT,
        ]
        assert played.output["outcome"] == "approved"
        assert _phases(played)[0] == "pending"
        assert _phases(played)[-1] == "decided"
        contain = dict(played.called)[ACTIVITY_CONTAIN]
        assert (contain["decision"]["approved"], contain["decision"]["plan_digest"]) == (True, PLAN.digest)
        final = _comments(played)[-1]
        assert (final["phase"], final["decision"]["decided_by_object_id"], final["results"]) == (Phase.DECIDED, APPROVER, RESULTS)
        assert played.called[-2][1]["results"] == RESULTS

    def test_rejection_changes_nothing_and_is_recorded(self) -> None:
        """Reject: no containment activity runs; the card and the comment say who rejected."""
        played = _approval([_decision(approved=False)])

        assert ACTIVITY_CONTAIN not in played.names()
        assert played.output["outcome"] == "rejected"
        final = _comments(played)[-1]
        assert (final["phase"], final["decision"]["approved"], final["results"]) == (Phase.DECIDED, False, [])

    def test_timeout_expires_the_request_and_does_nothing(self) -> None:
        """No decision before the deadline: status expired, card refreshed as expired, comment says nothing was done."""
        played = _approval([("timeout",)])

        assert ACTIVITY_CONTAIN not in played.names()
        assert played.output["outcome"] == "expired"
        assert _phases(played)[-1] == "expired"
        assert next(p for n, p in played.called if n == ACTIVITY_UPDATE_CARD)["expired"] is True
        assert _comments(played)[-1]["phase"] == Phase.EXPIRED

    def test_the_timer_is_set_at_the_requests_deadline(self) -> None:
        """The orchestration's timer fires exactly when the card's "decide by" and the bot's expiry say."""
        from tests.app.durable_history import History, atomic_actions, run

        history = History(_input(), INSTANCE, APPROVAL_ORCHESTRATOR)
        history.completed(ACTIVITY_POST_CARD, {"ok": True, "reference": REFERENCE})
        history.completed(ACTIVITY_COMMENT, {"ok": True})

        timers = [a for a in atomic_actions(run(history)) if a["actionType"] == 5]
        assert [datetime.fromisoformat(t["fireAt"].replace("Z", "+00:00")) for t in timers] == [EXPIRES]


class TestWhoMayDecide:
    def test_unauthorised_click_is_recorded_and_the_request_stays_open(self) -> None:
        """A refused click is written to the incident with who and when; the wait goes on and nothing is contained."""
        played = _approval([_refusal(), ("timeout",)])

        assert ACTIVITY_CONTAIN not in played.names()
        pending = _comments(played)[1]
        assert (pending["phase"], [a["person_object_id"] for a in pending["attempts"]]) == (Phase.PENDING, [OUTSIDER])
        final = _comments(played)[-1]
        assert (final["phase"], final["attempts"][0]["reason"]) == (Phase.EXPIRED, "not in the approver group")

    def test_refused_click_then_an_approval_contains(self) -> None:
        """After a refused click an approver can still decide; the final comment keeps the refused attempt."""
        played = _approval([_refusal(), _decision()])

        assert played.names().count(ACTIVITY_CONTAIN) == 1
        assert [a["person_name"] for a in _comments(played)[-1]["attempts"]] == ["Mallory"]

    def test_a_decision_on_another_plan_is_ignored(self) -> None:
        """An event whose plan digest is not this request's cannot approve it; the request then expires."""
        played = _approval([_decision(digest="f" * 32), ("timeout",)])

        assert ACTIVITY_CONTAIN not in played.names()
        assert played.output["outcome"] == "expired"

    def test_an_unreadable_decision_is_ignored(self) -> None:
        """Event data that is no decision is logged and ignored; a valid decision after it still counts."""
        played = _approval([("event", APPROVAL_EVENT, {"approved": "yes"}), _decision(approved=False)])

        assert played.output["outcome"] == "rejected"

    def test_a_second_approval_never_acts_twice(self) -> None:
        """Once decided the orchestration stops listening: a re-delivered approval finds nobody waiting."""
        played = _approval([_decision(), _decision(who=OUTSIDER)])

        assert played.names().count(ACTIVITY_CONTAIN) == 1
        assert played.unused == [_decision(who=OUTSIDER)]


class TestFailures:
    FAILURE = {"what": "post the approval card to Teams", "error": "403 forbidden", "hint": "install the bot", "kind": "upstream"}

    def test_card_that_cannot_be_posted_ends_with_nothing_done(self) -> None:
        """No card, no wait: the comment says why, no timer is set and nothing is contained."""
        played = _approval([], Activities(**{ACTIVITY_POST_CARD: self.FAILURE}))

        assert played.names() == [ACTIVITY_POST_CARD, ACTIVITY_COMMENT]
        record = _comments(played)[0]
        assert (record["phase"], record["problem"]) == (Phase.NOT_POSTED, "403 forbidden (install the bot)")
        assert played.output["outcome"] == "card_not_posted"

    def test_request_without_a_card_is_reported(self) -> None:
        """A request the enrichment could not make a card for is said on the incident, not dropped."""
        played = _approval([], card=None, problem="no approval card can be made for this account: bad id")

        assert played.names() == [ACTIVITY_COMMENT]
        assert _comments(played)[0]["problem"].startswith("no approval card")

    def test_containment_that_fails_marks_every_action_failed(self) -> None:
        """When the containment activity fails, every planned action is recorded FAILED with the reason."""
        failure = {"what": "contain", "error": "Graph unreachable", "hint": "check egress", "kind": "upstream"}
        played = _approval([_decision()], Activities(**{ACTIVITY_CONTAIN: failure}))

        final = _comments(played)[-1]
        assert [(r["kind"], r["status"]) for r in final["results"]] == [
            ("revoke_sessions", "failed"),
            ("audit_mfa_methods", "failed"),
        ]
        assert "check egress" in final["notes"]

    def test_card_refresh_failure_is_a_note_not_a_stop(self) -> None:
        """A card Teams will not refresh does not stop containment; the comment notes it."""
        failure = {"what": "refresh", "error": "404 not found", "hint": "", "kind": "upstream"}
        played = _approval([_decision()], Activities(**{ACTIVITY_UPDATE_CARD: failure}))

        assert played.names().count(ACTIVITY_CONTAIN) == 1
        assert any("could not be refreshed" in n for n in _comments(played)[-1]["notes"])


class TestIncidentOrchestration:
    def _summary(self) -> dict[str, Any]:
        request = {
            "instance_id": INSTANCE,
            "requested_at": REQUESTED.isoformat(),
            "expires_at": EXPIRES.isoformat(),
            "card": CARD,
        }
        account = {"upn": ACCOUNT.upn, "object_id": ACCOUNT.object_id}
        return {
            "verdict": "replay_likely",
            "accounts": [
                {
                    "account": account,
                    "verdict": "replay_likely",
                    "score": 92,
                    "suspect_ips": ["203.0.113.9"],
                    "signals": [],
                    "plan": plan_json(PLAN),
                    "approval": request,
                }
            ],
            "warnings": 0,
        }

    def test_replay_result_starts_one_approval_per_prepared_request_and_waits_for_it(self) -> None:
        """After the labels the incident orchestration runs the approval sub-orchestration and ends with its outcome."""
        calls: list[tuple[str, dict[str, Any]]] = []

        def execute(name: str, payload: dict[str, Any]) -> Any:
            calls.append((name, payload))
            if name == ACTIVITY_ENRICH:
                return {"ok": True, "summary": self._summary()}
            if name == ACTIVITY_LABELS:
                return {"ok": True, "changed": True}
            return {"instance_id": INSTANCE, "outcome": "approved"}

        played = play(INCIDENT, execute, [], instance_id=PARENT)

        assert played.names() == [ACTIVITY_ENRICH, ACTIVITY_LABELS, APPROVAL_ORCHESTRATOR]
        asked = calls[0][1]["approval"]
        assert asked["instance_id"] == PARENT
        sub = calls[2][1]
        assert (sub["instance_id"], sub["plan"]["digest"], sub["account"]["upn"]) == (INSTANCE, PLAN.digest, ACCOUNT.upn)
        assert played.output["approvals"] == [{"instance_id": INSTANCE, "outcome": "approved"}]
        assert "approval" not in played.output["accounts"][0]

    def test_a_failed_approval_still_ends_the_incident_run(self) -> None:
        """A sub-orchestration that fails (a defect) is recorded in the output; the incident run ends cleanly."""

        def execute(name: str, payload: dict[str, Any]) -> Any:
            if name == ACTIVITY_ENRICH:
                return {"ok": True, "summary": self._summary()}
            if name == ACTIVITY_LABELS:
                return {"ok": True, "changed": True}
            raise RuntimeError("orchestrator bug")

        played = play(INCIDENT, execute, [], instance_id=PARENT)

        assert played.output["approvals"][0]["outcome"] == "failed"
        assert played.output["outcome"] == "enriched"


@pytest.mark.parametrize("index", [0, 3])
def test_approval_instance_ids_are_valid_for_the_card(index: int) -> None:
    """The sub-orchestration id fits what the bot accepts on a button, whatever the incident."""
    from playbooks.render.card import _INSTANCE_ID

    assert _INSTANCE_ID.match(approval_instance_id(PARENT, index, REQUESTED))
