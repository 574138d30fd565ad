"""The workflow contract: every payload type round-trips through the one codec, and bad payloads are refused by name."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from common.errors import InputError
from enrichment.domain.model import Account, Verdict
from playbooks.domain import codec
from playbooks.domain.approval import BotView, approval_state, approval_status
from playbooks.domain.authorization import ApprovalRequest
from playbooks.domain.footholds import AttackerForwarding, AttackerInboxRule
from playbooks.domain.incident import SentinelIncident
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
    PAYLOAD_TYPES,
    AccountSummary,
    ApprovalAttempt,
    ApprovalCommentInput,
    ApprovalDecision,
    ApprovalEnd,
    ApprovalInput,
    ApprovalOutcome,
    ApprovalPhase,
    ApprovalRecordState,
    ApprovalStatus,
    CardPosted,
    CardUpdated,
    CommentWritten,
    Contained,
    ContainInput,
    EarlierRequest,
    Enriched,
    EnrichInput,
    EnrichmentSummary,
    EntitiesFound,
    EntitiesInput,
    Failure,
    FollowUp,
    IncidentCommentInput,
    IncidentRunInput,
    IncidentRunResult,
    IncidentRunStatus,
    LabelInput,
    Labelled,
    LabelState,
    MessageReference,
    Phase,
    PostCardInput,
    Record,
    RunEnd,
    RunRef,
    UpdateCardInput,
    activity_result,
    read_activity_result,
    run_input_of,
)

AT = datetime(2026, 11, 5, 14, 0, tzinfo=UTC)
TARGET = Account("adele.vance@contoso.example", "3f2a1b0c-1111-4222-8333-444455556666")
APPROVER = "aaaaaaaa-0000-4000-8000-000000000001"
INCIDENT = SentinelIncident(
    "d0cfe6b2-9ac0-4464-9919-dccaee2e48c0",
    "soc-rg",
    "soc-ws",
    "73e01a99-5cd7-4139-a149-9f2736ff2ab5",
    84,
    "Token replay <b>for</b> Alice",
    "Medium",
    AT,
    (TARGET, Account("bob@contoso.example", "")),
    unresolved=("CONTOSO\\svc",),
    entity_kinds=(("Account", 3), ("Ip", 1)),
    workspace_id="8a1b2c3d-0000-4000-8000-000000000001",
    url="https://portal.azure.com/#asset/incident/84",
    provider_url="https://security.microsoft.com/incidents/84",
    unresolved_total=1,
    ips=("203.0.113.9",),
    display_names=(("adele.vance@contoso.example", "Adele Vance"),),
    ips_total=1,
)
PLAN = ContainmentPlan(
    INCIDENT.name,
    TARGET,
    tuple(ProposedAction(k, ACTION_DESCRIPTIONS[k]) for k in (ActionKind.REVOKE_SESSIONS, ActionKind.AUDIT_MFA_METHODS)),
    True,
    "score 92: a token replay is likely",
    ((ActionKind.DISABLE_ACCOUNT, "Defender's automatic attack disruption (the incident title says so)"),),
    ("Remove the forwarding to drop@evil.example: Set-Mailbox -Identity 'adele.vance@contoso.example' ...",),
)
CARD: dict[str, Any] = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "approve?"}]}
DECISION = ApprovalDecision(True, PLAN.digest, APPROVER, "alex@contoso.example", AT + timedelta(minutes=7), "Alex Wilber")
ATTEMPT = ApprovalAttempt(
    "bbbbbbbb-0000-4000-8000-000000000002", "Mallory", True, AT, "not an approver", "mallory@contoso.example"
)
RESULTS = (
    ActionResult(ActionKind.REVOKE_SESSIONS, ActionStatus.SUCCEEDED, "sessions revoked", "req-1"),
    ActionResult(ActionKind.AUDIT_MFA_METHODS, ActionStatus.FAILED, "Graph throttled: 503", transient=True),
)
FAILURE = Failure("write the incident comment", "Sentinel: conflict (HTTP 409)", "run it again", "Sentinel", 409, True)
RUN = RunRef("incident-x", AT)
REFERENCE = MessageReference("https://smba.example/", "19:x;messageid=1", "1", "bot", "tenant")
RULE = AttackerInboxRule("adele.vance@contoso.example", "..", AT - timedelta(minutes=5), "203.0.113.9")
FORWARDING = AttackerForwarding("adele.vance@contoso.example", "drop@evil.example", AT - timedelta(minutes=4), "203.0.113.9")
REQUEST = ApprovalInput(
    INCIDENT, PLAN, "incident-x:approval:0:20261105T140000", AT, AT + timedelta(hours=4), CARD, "", (RULE,), (FORWARDING,)
)
SUMMARY = EnrichmentSummary(
    Verdict.REPLAY_LIKELY, (AccountSummary(TARGET, Verdict.REPLAY_LIKELY, 92, ("203.0.113.9",), ("a signal",), PLAN),), 2
)
ALERT_IDS = ("7a1e0000-0000-4000-8000-000000000001", "da638123456789_-1234")
EARLIER = EarlierRequest("incident-x:approval:0:20261105T140000", PLAN.digest)
FOLLOW_UP = FollowUp(ALERT_IDS[1:], ("incident-x",))
COMMENT = CommentWritten("c0ffee00-0000-4000-8000-000000000001", False, 1234)

#: One sample of every payload type, with optional fields filled in so the round trip sees them.
SAMPLES: tuple[Any, ...] = (
    FAILURE,
    EntitiesInput(dataclasses.replace(INCIDENT, accounts=None)),
    EntitiesFound(INCIDENT),
    EnrichInput(INCIDENT, RUN, AT),
    EnrichInput(INCIDENT, RUN, AT, FOLLOW_UP, (EARLIER,)),
    IncidentRunInput(INCIDENT, ALERT_IDS, FOLLOW_UP, (EARLIER,)),
    IncidentRunStatus(ALERT_IDS, True, (EARLIER,)),
    Enriched(SUMMARY, COMMENT, (REQUEST, dataclasses.replace(REQUEST, card=None, problem="no card"))),
    Enriched(SUMMARY, None, (), FAILURE, "<p>enrichment</p>"),
    LabelInput(INCIDENT, Verdict.SUSPICIOUS),
    Labelled(True),
    IncidentCommentInput(INCIDENT, RUN, Record.FAILURE, AT, "", FAILURE),
    COMMENT,
    IncidentRunResult(
        84, INCIDENT.name, RunEnd.FAILED, Verdict.BENIGN, LabelState.FAILED, SUMMARY.accounts, (), FAILURE, True, RUN.key
    ),
    REQUEST,
    ApprovalOutcome(REQUEST.instance_id, ApprovalEnd.APPROVED, 2, RESULTS, "", ("result-revoke_sessions",)),
    DECISION,
    ATTEMPT,
    ApprovalStatus(ApprovalPhase.DECIDED, INCIDENT.name, TARGET, PLAN.digest, AT, DECISION),
    PostCardInput(INCIDENT, REQUEST.instance_id, CARD),
    CardPosted(REFERENCE),
    UpdateCardInput(INCIDENT, REQUEST.instance_id, REFERENCE, CARD, DECISION, RESULTS, False),
    CardUpdated(),
    ContainInput(INCIDENT, REQUEST.instance_id, PLAN, DECISION, (ActionKind.AUDIT_MFA_METHODS,), (RULE,), (FORWARDING,)),
    Contained(RESULTS, ("MFA audit: 2 method(s) registered",)),
    ApprovalCommentInput(
        INCIDENT,
        REQUEST.instance_id,
        PLAN,
        AT,
        AT + timedelta(hours=4),
        ApprovalRecordState(Phase.DECIDED, (ATTEMPT,), DECISION, RESULTS, ("a note",), ""),
        AT + timedelta(minutes=9),
    ),
)


def test_every_payload_type_has_a_sample() -> None:
    """A type added to the contract without a sample here fails, so the round trip below always covers all of them."""
    assert {type(sample) for sample in SAMPLES} == set(PAYLOAD_TYPES)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda sample: type(sample).__name__)
def test_every_payload_round_trips_through_json_text(sample: Any) -> None:
    """encode -> JSON text (as Durable stores it) -> decode gives the same value back."""
    text = json.dumps(codec.encode(sample))

    assert codec.decode(type(sample), json.loads(text)) == sample
    assert codec.decode(type(sample), text) == sample


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda sample: type(sample).__name__)
def test_every_payload_round_trips_as_an_activity_result(sample: Any) -> None:
    """What an activity answers reads back as the same typed value (or the same Failure)."""
    assert read_activity_result(type(sample), json.loads(json.dumps(activity_result(sample)))) == sample


@pytest.mark.parametrize("verdict", list(Verdict), ids=lambda verdict: verdict.value)
def test_every_verdict_round_trips_through_the_run_contracts(verdict: Verdict) -> None:
    """insufficient_evidence (and every other verdict) survives the enrichment summary, the label input and the run result."""
    summary = EnrichmentSummary(verdict, (dataclasses.replace(SUMMARY.accounts[0], verdict=verdict),), 1)
    samples = (summary, LabelInput(INCIDENT, verdict), IncidentRunResult(84, INCIDENT.name, RunEnd.ENRICHED, verdict))

    for sample in samples:
        assert codec.decode(type(sample), json.dumps(codec.encode(sample))) == sample
    assert codec.encode(summary)["verdict"] == verdict.value


class TestStrictness:
    def test_unknown_field_is_refused_by_name(self) -> None:
        """A key the contract does not have (a renamed field, a crafted event) is an error, not ignored."""
        data = {**codec.encode(DECISION), "approved_by_mallory": True}
        with pytest.raises(InputError, match=r"ApprovalDecision: unknown field\(s\) approved_by_mallory"):
            codec.decode(ApprovalDecision, data)

    def test_missing_field_is_refused_by_name(self) -> None:
        """A required field that is absent is named."""
        data = codec.encode(DECISION)
        del data["plan_digest"]
        with pytest.raises(InputError, match=r"ApprovalDecision: missing field\(s\) plan_digest"):
            codec.decode(ApprovalDecision, data)

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("approved", "yes", "ApprovalDecision.approved: expected bool"),
            ("approved", 1, "ApprovalDecision.approved: expected bool"),
            ("decided_at", "2026-11-05T14:00:00", "ApprovalDecision.decided_at: the time .* has no time zone"),
            ("decided_at", "tomorrow", "ApprovalDecision.decided_at: not an ISO 8601 time"),
            ("decided_by_upn", None, "ApprovalDecision.decided_by_upn: expected str, got null"),
        ],
    )
    def test_wrong_types_are_refused_with_the_path(self, field: str, value: Any, message: str) -> None:
        """Booleans are not numbers or text, times carry a zone, null is only where the contract allows it."""
        with pytest.raises(InputError, match=message):
            codec.decode(ApprovalDecision, {**codec.encode(DECISION), field: value})

    def test_nested_errors_name_the_whole_path(self) -> None:
        """An error deep inside a payload says where it is."""
        data = codec.encode(SAMPLES[-1])
        data["record"]["results"][1]["status"] = "maybe"
        with pytest.raises(InputError, match=r"ApprovalCommentInput\.record\.results\[1\]\.status: \"maybe\" is not one of"):
            codec.decode(ApprovalCommentInput, data)

    @pytest.mark.parametrize("raw", ["not json", "[]", "null", "42"])
    def test_payloads_that_are_no_object_are_refused(self, raw: str) -> None:
        """Event data that is not a JSON object (or its text) is an input error."""
        with pytest.raises(InputError):
            codec.decode(ApprovalAttempt, raw)

    def test_a_plan_that_does_not_match_its_digest_is_refused(self) -> None:
        """A stored plan whose actions were altered no longer matches the digest a decision is bound to."""
        data = codec.encode(PLAN)
        data["actions"] = data["actions"][:1]
        with pytest.raises(InputError, match="does not match its digest"):
            codec.decode(ContainmentPlan, data)

    def test_a_plan_stored_before_disruption_and_manual_steps_still_reads(self) -> None:
        """A plan an earlier release left in history (no already_done, no manual) reads back with neither."""
        data = codec.encode(PLAN)
        del data["already_done"], data["manual"]
        assert codec.decode(ContainmentPlan, data) == dataclasses.replace(PLAN, already_done=(), manual=())

    def test_a_damaged_already_done_entry_is_refused_with_its_path(self) -> None:
        """What attack disruption did is read strictly: an unknown action kind names its place."""
        data = codec.encode(PLAN)
        data["already_done"] = [{"kind": "format_disk", "by": "someone"}]
        with pytest.raises(InputError, match=r"already_done\[0\]\.kind"):
            codec.decode(ContainmentPlan, data)

    def test_a_stored_incident_is_validated_again(self) -> None:
        """Incident segments become ARM URLs, so a tampered id in history is refused."""
        data = {**codec.encode(INCIDENT), "name": "../../other"}
        with pytest.raises(InputError, match="not a valid incident id"):
            codec.decode(SentinelIncident, data)

    def test_an_activity_answer_that_is_no_result_is_refused(self) -> None:
        """An answer without the ok/value or ok/failure envelope is an error for the orchestrator to report."""
        with pytest.raises(InputError, match="expected"):
            read_activity_result(Labelled, {"ok": True, "changed": True})


class TestApprovalStatus:
    REQUEST = ApprovalRequest(INCIDENT.name, TARGET, "c" * 32, AT)
    DECIDED = Decision(False, "c" * 32, APPROVER, "alex@contoso.example", AT + timedelta(minutes=3))

    def test_published_statuses_read_back_with_their_request(self) -> None:
        """Pending, decided and expired statuses published by the orchestration read back with the request they wait on."""
        pending = approval_state("Running", codec.encode(approval_status(self.REQUEST, ApprovalPhase.PENDING)))
        assert (pending.phase, pending.request) == (BotView.PENDING, self.REQUEST)
        text = json.dumps(codec.encode(approval_status(self.REQUEST, ApprovalPhase.DECIDED, self.DECIDED, "Alex")))
        decided = approval_state("Completed", text)
        assert (decided.phase, decided.decision, decided.decided_by_name) == (BotView.DECIDED, self.DECIDED, "Alex")
        expired = approval_state("Running", codec.encode(approval_status(self.REQUEST, ApprovalPhase.EXPIRED)))
        assert expired.phase is BotView.EXPIRED

    def test_a_pending_status_of_a_finished_run_is_closed(self) -> None:
        """A run that ended while it still said pending is no longer waiting."""
        state = approval_state("Completed", codec.encode(approval_status(self.REQUEST, ApprovalPhase.PENDING)))
        assert state.phase is BotView.CLOSED

    def test_a_status_that_is_not_the_contract_is_closed(self) -> None:
        """A custom status that does not decode (another orchestration's, a crafted one) never opens a request."""
        assert approval_state("Running", {"phase": "pending", "incident_id": "x"}).phase is BotView.CLOSED


class TestRunInput:
    def test_a_bare_incident_of_an_earlier_release_reads_as_a_run_without_alerts(self) -> None:
        """An orchestration started before alert ids were kept (its input a bare incident) still runs: no alerts, no follow-up."""
        assert run_input_of(codec.encode(INCIDENT)) == IncidentRunInput(INCIDENT)
        assert run_input_of(json.dumps(codec.encode(INCIDENT))) == IncidentRunInput(INCIDENT)

    def test_a_run_input_with_an_unknown_field_is_refused_by_name(self) -> None:
        """The run input is as strict as every other payload: an extra key is named, never ignored."""
        data = {**codec.encode(IncidentRunInput(INCIDENT, ALERT_IDS)), "skip_approvals": True}
        with pytest.raises(InputError, match=r"IncidentRunInput: unknown field\(s\) skip_approvals"):
            run_input_of(data)
