"""The approval sub-orchestration replayed from Durable history: approve, reject, timeout, refused clicks, failures."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from enrichment.domain.model import Account, Verdict
from playbooks.domain import codec
from playbooks.domain.approval import approval_instance_id
from playbooks.domain.footholds import AttackerForwarding, AttackerInboxRule
from playbooks.domain.plan import (
    ACTION_DESCRIPTIONS,
    ActionKind,
    ActionResult,
    ActionStatus,
    ContainmentPlan,
    Decision,
    ProposedAction,
)
from playbooks.domain.workflow import (
    APPROVAL_EVENT,
    APPROVAL_ORCHESTRATOR,
    ATTEMPT_EVENT,
    AccountSummary,
    ApprovalAttempt,
    ApprovalCommentInput,
    ApprovalDecision,
    ApprovalEnd,
    ApprovalInput,
    ApprovalOutcome,
    ApprovalStatus,
    CardPosted,
    CardUpdated,
    Contained,
    ContainInput,
    Enriched,
    EnrichInput,
    EnrichmentSummary,
    Failure,
    IncidentRunResult,
    Labelled,
    MessageReference,
    Phase,
    RunEnd,
    UpdateCardInput,
    activity_result,
    run_result_of,
)
from playbooks.functions.approval_flow import (
    ACTIVITY_COMMENT,
    ACTIVITY_CONTAIN,
    ACTIVITY_POST_CARD,
    ACTIVITY_UPDATE_CARD,
    CONTAIN_ATTEMPTS,
    MAX_REFUSED_RECORDS,
)
from playbooks.functions.orchestrator import ACTIVITY_COMMENT as ACTIVITY_INCIDENT_COMMENT
from playbooks.functions.orchestrator import ACTIVITY_ENRICH, ACTIVITY_LABELS
from tests.app.durable_history import Played, play
from tests.app.test_orchestrator import COMMENT_WRITTEN as COMMENT
from tests.app.test_orchestrator import INCIDENT, INCIDENT_REF

ACCOUNT = Account("alice@contoso.com", "0f6f2a3e-51a5-4c5e-9b8e-2c9a1e7d4b10")
APPROVER = "aaaaaaaa-0000-4000-8000-000000000001"
OUTSIDER = "bbbbbbbb-0000-4000-8000-000000000002"
REQUESTED = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
EXPIRES = REQUESTED + timedelta(hours=4)
PARENT = f"incident-{INCIDENT_REF.name}"
INSTANCE = approval_instance_id(PARENT, 0, REQUESTED)
PLAN = ContainmentPlan(
    INCIDENT_REF.name,
    ACCOUNT,
    tuple(ProposedAction(k, ACTION_DESCRIPTIONS[k]) for k in (ActionKind.REVOKE_SESSIONS, ActionKind.AUDIT_MFA_METHODS)),
    True,
    "score 92: a token replay is likely",
)
CARD = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "approve?"}]}
REFERENCE = MessageReference("https://smba.example/", "19:x", "1", "b", "t")
RESULTS = (
    ActionResult(ActionKind.REVOKE_SESSIONS, ActionStatus.SUCCEEDED, "sessions revoked", "req-1"),
    ActionResult(ActionKind.AUDIT_MFA_METHODS, ActionStatus.SUCCEEDED, "2 methods; none flagged", "req-2"),
)
REQUEST = ApprovalInput(INCIDENT_REF, PLAN, INSTANCE, REQUESTED, EXPIRES, card=CARD)


def _input(**change: Any) -> dict[str, Any]:
    return codec.encode(dataclasses.replace(REQUEST, **change))  # type: ignore[no-any-return]


def _decision(approved: bool = True, digest: str = PLAN.digest, who: str = APPROVER) -> tuple[str, str, dict[str, Any]]:
    decision = Decision(approved, digest, who, "", REQUESTED + timedelta(minutes=7))
    return ("event", APPROVAL_EVENT, codec.encode(ApprovalDecision.of(decision, "Alex Wilber")))


def _refusal(minutes: int = 3) -> tuple[str, str, dict[str, Any]]:
    attempt = ApprovalAttempt(OUTSIDER, "Mallory", True, REQUESTED + timedelta(minutes=minutes), "not in the approver group")
    return ("event", ATTEMPT_EVENT, codec.encode(attempt))


def _skipped(kind: ActionKind) -> ActionResult:
    return ActionResult(kind, ActionStatus.SKIPPED, "already completed by an earlier delivery of this approval")


class Activities:
    """Answers every activity as a healthy deployment would, or with the failure it is told to give."""

    def __init__(self, contain: Callable[[], Contained] | None = None, **fail: Failure) -> None:
        self.fail = fail
        self.contain = contain or (lambda: Contained(RESULTS, ("MFA audit: 2 method(s) registered",)))

    def __call__(self, name: str, payload: dict[str, Any]) -> Any:
        if name in self.fail:
            return activity_result(self.fail[name])
        answer = {
            ACTIVITY_POST_CARD: lambda: CardPosted(REFERENCE),
            ACTIVITY_UPDATE_CARD: CardUpdated,
            ACTIVITY_CONTAIN: self.contain,
            ACTIVITY_COMMENT: lambda: COMMENT,
        }[name]()
        return activity_result(answer)


def _approval(script: list[Any], activities: Activities | None = None, **change: Any) -> Played:
    return play(_input(**change), activities or Activities(), script, orchestrator=APPROVAL_ORCHESTRATOR, instance_id=INSTANCE)


def _comments(played: Played) -> list[Any]:
    """The approval records the orchestration asked to write, decoded as the comment activity decodes them."""
    return [codec.decode(ApprovalCommentInput, payload).record for name, payload in played.called if name == ACTIVITY_COMMENT]


def _outcome(played: Played) -> ApprovalOutcome:
    return codec.decode(ApprovalOutcome, played.output)


def _phases(played: Played) -> list[str | None]:
    return [codec.decode(ApprovalStatus, s).phase.value if s else None for s in played.statuses]


class TestDecisions:
    def test_approval_contains_refreshes_the_card_and_records_each_state(self) -> None:
        """Approve: pending, decided (before containment), then contain once and record each action's result."""
        played = _approval([_decision()])

        assert played.names() == [
            ACTIVITY_POST_CARD,
            ACTIVITY_COMMENT,
            ACTIVITY_UPDATE_CARD,
            ACTIVITY_COMMENT,
            ACTIVITY_CONTAIN,
            ACTIVITY_COMMENT,
            ACTIVITY_UPDATE_CARD,
            ACTIVITY_COMMENT,
        ]
        assert _outcome(played).outcome is ApprovalEnd.APPROVED
        assert _outcome(played).results == RESULTS
        assert _phases(played)[0] == "pending"
        assert _phases(played)[-1] == "decided"
        contain = codec.decode(ContainInput, dict(played.called)[ACTIVITY_CONTAIN])
        assert (contain.decision.approved, contain.decision.plan_digest, contain.completed) == (True, PLAN.digest, ())
        records = _comments(played)
        assert [r.state for r in records] == ["pending", "decided", "result-revoke_sessions", "result-audit_mfa_methods"]
        assert (records[1].decision.decided_by_object_id, records[1].results) == (APPROVER, ())
        assert [r.results for r in records[2:]] == [(RESULTS[0],), (RESULTS[1],)]
        assert codec.decode(UpdateCardInput, played.called[-2][1]).results == RESULTS

    def test_the_attackers_mailbox_footholds_reach_the_contain_activity(self) -> None:
        """The request's inbox rules and forwarding are handed to containment in its typed input, on every attempt."""
        rule = AttackerInboxRule(ACCOUNT.upn, "..", REQUESTED - timedelta(minutes=5), "203.0.113.9")
        forwarding = AttackerForwarding(ACCOUNT.upn, "drop@evil.example", REQUESTED - timedelta(minutes=4), "203.0.113.9")
        played = _approval([_decision()], inbox_rules=(rule,), forwarding=(forwarding,))

        contain = codec.decode(ContainInput, dict(played.called)[ACTIVITY_CONTAIN])
        assert (contain.inbox_rules, contain.forwarding) == ((rule,), (forwarding,))

    def test_rejection_changes_nothing_and_is_recorded(self) -> None:
        """Reject: no containment activity runs; the card and the decided record say who rejected."""
        played = _approval([_decision(approved=False)])

        assert ACTIVITY_CONTAIN not in played.names()
        assert _outcome(played).outcome is ApprovalEnd.REJECTED
        final = _comments(played)[-1]
        assert (final.phase, final.decision.approved, final.results) == (Phase.DECIDED, False, ())

    def test_timeout_expires_the_request_and_does_nothing(self) -> None:
        """No decision before the deadline: status expired, card refreshed as expired, the record says nothing was done."""
        played = _approval([("timeout",)])

        assert ACTIVITY_CONTAIN not in played.names()
        assert _outcome(played).outcome is ApprovalEnd.EXPIRED
        assert _phases(played)[-1] == "expired"
        assert codec.decode(UpdateCardInput, next(p for n, p in played.called if n == ACTIVITY_UPDATE_CARD)).expired is True
        assert [r.phase for r in _comments(played)] == [Phase.PENDING, Phase.EXPIRED]

    def test_the_timer_is_set_at_the_requests_deadline(self) -> None:
        """The orchestration's timer fires exactly when the card's "decide by" and the bot's expiry say."""
        from tests.app.durable_history import History, atomic_actions, run

        history = History(_input(), INSTANCE, APPROVAL_ORCHESTRATOR)
        history.completed(ACTIVITY_POST_CARD, activity_result(CardPosted(REFERENCE)))
        history.completed(ACTIVITY_COMMENT, activity_result(COMMENT))

        timers = [a for a in atomic_actions(run(history)) if a["actionType"] == 5]
        assert [datetime.fromisoformat(t["fireAt"].replace("Z", "+00:00")) for t in timers] == [EXPIRES]

    def test_every_record_is_written_once_under_its_own_name(self) -> None:
        """Each state change is a comment of its own: no two records of a request share a name (so none is rewritten)."""
        played = _approval([_refusal(), _refusal(minutes=4), _decision()])

        states = [r.state for r in _comments(played)]
        assert len(states) == len(set(states))
        assert states[:3] == ["pending", "refused-1", "refused-2"]


class TestContainmentRetries:
    TRANSIENT = ActionResult(ActionKind.REVOKE_SESSIONS, ActionStatus.FAILED, "failed: throttled (HTTP 503)", "req-9", True)

    def test_an_action_that_failed_transiently_is_tried_again_skipping_the_done_ones(self) -> None:
        """Revoke throttled, audit done: after a back-off containment runs again with the audit passed as completed."""
        answers = iter([Contained((self.TRANSIENT, RESULTS[1])), Contained((RESULTS[0], _skipped(ActionKind.AUDIT_MFA_METHODS)))])
        played = _approval([_decision()], Activities(contain=lambda: next(answers)))

        contains = [codec.decode(ContainInput, p) for n, p in played.called if n == ACTIVITY_CONTAIN]
        assert [c.completed for c in contains] == [(), (ActionKind.AUDIT_MFA_METHODS,)]
        assert _outcome(played).results == RESULTS
        results = [r.results[0] for r in _comments(played) if r.phase is Phase.RESULT]
        assert results == [RESULTS[1], RESULTS[0]]  # each recorded once, when final: the audit first

    def test_an_action_that_keeps_failing_is_recorded_failed_after_the_last_attempt(self) -> None:
        """A transient failure on every attempt is recorded as failed once, after CONTAIN_ATTEMPTS runs; nothing loops."""
        played = _approval([_decision()], Activities(contain=lambda: Contained((self.TRANSIENT, RESULTS[1]))))

        assert played.names().count(ACTIVITY_CONTAIN) == CONTAIN_ATTEMPTS
        assert _outcome(played).results == (self.TRANSIENT, RESULTS[1])
        assert [r.results[0].kind for r in _comments(played) if r.phase is Phase.RESULT] == [
            ActionKind.AUDIT_MFA_METHODS,
            ActionKind.REVOKE_SESSIONS,
        ]


class TestWhoMayDecide:
    def test_unauthorised_click_is_recorded_and_the_request_stays_open(self) -> None:
        """A refused click is written to the incident with who and when; the wait goes on and nothing is contained."""
        played = _approval([_refusal(), ("timeout",)])

        assert ACTIVITY_CONTAIN not in played.names()
        refused = _comments(played)[1]
        assert (refused.phase, [a.person_object_id for a in refused.attempts]) == (Phase.REFUSED, [OUTSIDER])
        final = _comments(played)[-1]
        assert (final.phase, final.attempts[0].reason) == (Phase.EXPIRED, "not in the approver group")

    def test_refused_click_then_an_approval_contains(self) -> None:
        """After a refused click an approver can still decide; the decided record keeps the refused attempt."""
        played = _approval([_refusal(), _decision()])

        assert played.names().count(ACTIVITY_CONTAIN) == 1
        decided = next(r for r in _comments(played) if r.phase is Phase.DECIDED)
        assert [a.person_name for a in decided.attempts] == ["Mallory"]

    def test_refused_clicks_beyond_the_cap_are_only_in_the_final_record(self) -> None:
        """A flood of refused clicks writes at most MAX_REFUSED_RECORDS comments; the final record lists every one."""
        played = _approval([*(_refusal(minutes=m) for m in range(MAX_REFUSED_RECORDS + 5)), ("timeout",)])

        records = _comments(played)
        assert sum(r.phase is Phase.REFUSED for r in records) == MAX_REFUSED_RECORDS
        assert len(records[-1].attempts) == MAX_REFUSED_RECORDS + 5

    def test_a_decision_on_another_plan_is_ignored(self) -> None:
        """An event whose plan digest is not this request's cannot approve it; the request then expires."""
        played = _approval([_decision(digest="f" * 32), ("timeout",)])

        assert ACTIVITY_CONTAIN not in played.names()
        assert _outcome(played).outcome is ApprovalEnd.EXPIRED

    def test_an_unreadable_decision_is_ignored(self) -> None:
        """Event data that is no decision is logged and ignored; a valid decision after it still counts."""
        played = _approval([("event", APPROVAL_EVENT, {"approved": "yes"}), _decision(approved=False)])

        assert _outcome(played).outcome is ApprovalEnd.REJECTED

    def test_a_second_approval_never_acts_twice(self) -> None:
        """Once decided the orchestration stops listening: a re-delivered approval finds nobody waiting."""
        played = _approval([_decision(), _decision(who=OUTSIDER)])

        assert played.names().count(ACTIVITY_CONTAIN) == 1
        assert played.unused == [_decision(who=OUTSIDER)]


class TestFailures:
    FAILURE = Failure("post the approval card to Teams", "403 forbidden", "install the bot", "Teams", 403)

    def test_card_that_cannot_be_posted_ends_with_nothing_done(self) -> None:
        """No card, no wait: the comment says why, no timer is set and nothing is contained."""
        played = _approval([], Activities(**{ACTIVITY_POST_CARD: self.FAILURE}))

        assert played.names() == [ACTIVITY_POST_CARD, ACTIVITY_COMMENT]
        record = _comments(played)[0]
        assert (record.phase, record.problem) == (Phase.NOT_POSTED, "403 forbidden (install the bot)")
        assert _outcome(played).outcome is ApprovalEnd.CARD_NOT_POSTED

    def test_request_without_a_card_is_reported(self) -> None:
        """A request the enrichment could not make a card for is said on the incident, not dropped."""
        played = _approval([], card=None, problem="no approval card can be made for this account: bad id")

        assert played.names() == [ACTIVITY_COMMENT]
        assert _comments(played)[0].problem.startswith("no approval card")

    def test_containment_that_fails_marks_every_action_failed(self) -> None:
        """When the containment activity fails, every planned action is recorded FAILED with the reason."""
        failure = Failure("contain", "Graph unreachable", "check egress", "Microsoft Graph")
        played = _approval([_decision()], Activities(**{ACTIVITY_CONTAIN: failure}))

        records = [r for r in _comments(played) if r.phase is Phase.RESULT]
        assert [(r.kind, r.status) for record in records for r in record.results] == [
            (ActionKind.REVOKE_SESSIONS, ActionStatus.FAILED),
            (ActionKind.AUDIT_MFA_METHODS, ActionStatus.FAILED),
        ]
        assert "containment did not run: Graph unreachable" in records[0].results[0].detail
        assert any("check egress" in r.notes for r in records)

    def test_card_refresh_failure_is_a_note_not_a_stop(self) -> None:
        """A card Teams will not refresh does not stop containment; the comment notes it."""
        failure = Failure("refresh", "404 not found", "", "Teams", 404)
        played = _approval([_decision()], Activities(**{ACTIVITY_UPDATE_CARD: failure}))

        assert played.names().count(ACTIVITY_CONTAIN) == 1
        decided, *results = [r for r in _comments(played) if r.phase in (Phase.DECIDED, Phase.RESULT)]
        assert any("could not be refreshed" in n for n in decided.notes)  # the refresh after the decision
        assert any("could not be refreshed" in n for n in results[-1].notes)  # and the one after the results

    def test_a_record_that_cannot_be_written_is_named_in_the_outcome(self) -> None:
        """A comment write that fails for good is not silent: the outcome lists the record, and the decision still stands."""
        failure = Failure("write the approval comment", "Sentinel: forbidden (HTTP 403)", "grant Responder", "Sentinel", 403)
        played = _approval([_decision()], Activities(**{ACTIVITY_COMMENT: failure}))

        outcome = _outcome(played)
        assert outcome.outcome is ApprovalEnd.APPROVED
        assert outcome.unrecorded == ("pending", "decided", "result-revoke_sessions", "result-audit_mfa_methods")


class TestIncidentOrchestration:
    def _execute(self, approval: Callable[[], Any], calls: list[tuple[str, dict[str, Any]]] | None = None) -> Any:
        account = AccountSummary(ACCOUNT, Verdict.REPLAY_LIKELY, 92, ("203.0.113.9",), (), PLAN)
        summary = EnrichmentSummary(Verdict.REPLAY_LIKELY, (account,), 0)

        def execute(name: str, payload: dict[str, Any]) -> Any:
            (calls if calls is not None else []).append((name, payload))
            if name == ACTIVITY_ENRICH:
                return activity_result(Enriched(summary, COMMENT, (REQUEST,)))
            if name == ACTIVITY_INCIDENT_COMMENT:
                return activity_result(COMMENT)
            if name == ACTIVITY_LABELS:
                return activity_result(Labelled(True))
            return approval()

        return execute

    def test_replay_result_starts_one_approval_per_prepared_request_and_waits_for_it(self) -> None:
        """After the labels the incident orchestration runs the approval sub-orchestration and ends with its outcome."""
        calls: list[tuple[str, dict[str, Any]]] = []
        execute = self._execute(lambda: codec.encode(ApprovalOutcome(INSTANCE, ApprovalEnd.APPROVED)), calls)

        played = play(INCIDENT, execute, [], instance_id=PARENT)

        assert played.names() == [ACTIVITY_ENRICH, ACTIVITY_LABELS, APPROVAL_ORCHESTRATOR]
        asked = codec.decode(EnrichInput, calls[0][1])
        assert (asked.run.instance_id, asked.requested_at) == (PARENT, asked.run.started_at)
        assert codec.decode(ApprovalInput, calls[2][1]) == REQUEST
        output = codec.decode(IncidentRunResult, played.output)
        assert output.approvals == (ApprovalOutcome(INSTANCE, ApprovalEnd.APPROVED),)
        assert "approval" not in played.output["accounts"][0]

    def test_a_failed_approval_still_ends_the_incident_run(self) -> None:
        """A sub-orchestration that fails (a defect) is recorded in the output; the incident run ends cleanly."""

        def crash() -> Any:
            raise RuntimeError("orchestrator bug")

        played = play(INCIDENT, self._execute(crash), [], instance_id=PARENT)

        output = codec.decode(IncidentRunResult, played.output)
        assert output.approvals[0].outcome is ApprovalEnd.FAILED
        assert output.outcome is RunEnd.ENRICHED

    def test_an_approval_record_that_could_not_be_written_ends_the_run_failed(self) -> None:
        """The decision stands, but a record missing from the incident makes the run Failed, naming it, for a re-delivery."""
        lost = ApprovalOutcome(INSTANCE, ApprovalEnd.REJECTED, unrecorded=("decided",))

        played = play(INCIDENT, self._execute(lambda: codec.encode(lost)), [], instance_id=PARENT)

        assert played.failed
        result = run_result_of(played.error)
        assert result is not None
        assert (result.outcome, result.approvals, result.comment_written) == (RunEnd.FAILED, (lost,), True)
        assert result.failure is not None
        assert "decided" in result.failure.error


@pytest.mark.parametrize("index", [0, 3])
def test_approval_instance_ids_are_valid_for_the_card(index: int) -> None:
    """The sub-orchestration id fits what the bot accepts on a button, whatever the incident."""
    from playbooks.render.card import _INSTANCE_ID

    assert _INSTANCE_ID.match(approval_instance_id(PARENT, index, REQUESTED))
