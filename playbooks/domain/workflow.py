"""
The Durable workflow's contract: every activity input and output, external event and custom status.

Two orchestrations talk through these values: the incident orchestration
(`playbooks.functions.orchestrator`) and one approval sub-orchestration per account
(`playbooks.functions.approval_flow`), plus the approval bot, which reads the approval's custom status
and raises its events. Each is a frozen dataclass; `playbooks.domain.codec` turns them into the JSON
Durable stores and reads them back strictly. Nothing crosses the orchestration boundary as a bare
dict: an activity decodes its input at the edge and returns an encoded `ActivityResult`, and an
orchestrator reads typed values (`Enriched`, `Failure`, ...) rather than keys.

Pure values only: no I/O, no clock, no settings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from common.errors import InputError, SettingsError, TransientUpstreamError, UpstreamError
from enrichment.domain.model import Account, Verdict
from playbooks.domain import codec
from playbooks.domain.footholds import AttackerForwarding, AttackerInboxRule
from playbooks.domain.incident import SentinelIncident
from playbooks.domain.plan import ActionKind, ActionResult, ContainmentPlan, Decision
from playbooks.render.card import Card

T = TypeVar("T")

#: The orchestrations' function names.
INCIDENT_ORCHESTRATOR = "incident_orchestrator"
APPROVAL_ORCHESTRATOR = "approval_orchestrator"
#: The event the approval orchestration waits for (`context.wait_for_external_event(APPROVAL_EVENT)`).
APPROVAL_EVENT = "ApprovalDecision"
#: The event that tells the approval orchestration about a refused click, so the incident records it.
ATTEMPT_EVENT = "ApprovalAttempt"


# -- failures, and the envelope every activity answers in -------------------------------------------


@dataclass(frozen=True, slots=True)
class Failure:
    """
    Why a step did not complete: `what` was being done, `error` says what went wrong, `hint` what
    to check. `transient` failures (throttling, timeouts, 5xx, conflicts) may succeed on a re-run.
    """

    what: str
    error: str
    hint: str = ""
    service: str = ""
    status: int | None = None
    transient: bool = False

    @classmethod
    def from_error(cls, what: str, error: BaseException) -> Failure:
        if isinstance(error, UpstreamError):
            return cls(what, str(error), error.hint, error.service, error.status, isinstance(error, TransientUpstreamError))
        if isinstance(error, SettingsError):
            return cls(
                "read the app settings",
                str(error),
                "fix these app settings of the Function App and run the playbook again",
                "settings",
            )
        if isinstance(error, InputError):
            return cls(what, str(error), "the incident or the data could not be used as they are; see the error", "input")
        # Not one of ours: a defect. Say so plainly; the log line has the traceback.
        return cls(
            what, f"unexpected {type(error).__name__}: {str(error)[:300]}", "report this with the Function App's logs", "bug"
        )

    @property
    def sentence(self) -> str:
        """The error with its hint, for a record on the incident."""
        return f"{self.error} ({self.hint})" if self.hint else self.error


def activity_result(value: object) -> dict[str, Any]:
    """What an activity returns: `{"ok": true, "value": ...}`, or `{"ok": false, "failure": ...}` for a `Failure`."""
    if isinstance(value, Failure):
        return {"ok": False, "failure": codec.encode(value)}
    return {"ok": True, "value": codec.encode(value)}


def read_activity_result(cls: type[T], raw: object) -> T | Failure:
    """The typed value or the `Failure` an activity answered; `InputError` when the answer is neither."""
    data = codec.decode(dict[str, Any], raw) if not isinstance(raw, dict) else raw
    ok = data.get("ok")
    if ok is True and set(data) == {"ok", "value"}:
        return codec.decode(cls, data["value"])
    if ok is False and set(data) == {"ok", "failure"}:
        return codec.decode(Failure, data["failure"])
    msg = f"{cls.__name__} result: expected {{ok, value}} or {{ok: false, failure}}, got the keys {sorted(data)}"
    raise InputError(msg)


# -- the incident orchestration ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EntitiesInput:
    """`incident_entities`: read the incident's entities from Sentinel."""

    incident: SentinelIncident


@dataclass(frozen=True, slots=True)
class EntitiesFound:
    """The incident with the accounts its entities name."""

    incident: SentinelIncident


@dataclass(frozen=True, slots=True)
class RunRef:
    """
    One run of the incident orchestration: its instance id and the time it started, by its own
    clock. Every record the run writes is named after it, so a retried write lands on the same
    comment and a later run (a re-delivery, a manual re-run) never overwrites an earlier run's record.
    """

    instance_id: str
    started_at: datetime

    @property
    def key(self) -> str:
        return f"{self.instance_id}@{self.started_at.strftime('%Y%m%dT%H%M%S.%fZ')}"


@dataclass(frozen=True, slots=True)
class EarlierRequest:
    """
    An approval an earlier run of the incident asked for (its sub-orchestration and the plan it
    waits on): a later run asks no second time for the same plan while it waits or once decided.
    """

    instance_id: str
    plan_digest: str


@dataclass(frozen=True, slots=True)
class FollowUp:
    """
    Why a run is a follow-up: alerts were added to an incident an earlier run (`earlier_runs`)
    already enriched. `new_alert_ids` are the alerts none of those runs saw.
    """

    new_alert_ids: tuple[str, ...]
    earlier_runs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IncidentRunInput:
    """
    The input of one run of the incident orchestration: the incident, the ids of the alerts it
    carried when delivered (`alert_ids`, sorted), and for a follow-up why it runs. `earlier_requests`
    are approvals earlier runs asked for that still wait or were decided: no second card for them.
    """

    incident: SentinelIncident
    alert_ids: tuple[str, ...] = ()
    follow_up: FollowUp | None = None
    earlier_requests: tuple[EarlierRequest, ...] = ()


@dataclass(frozen=True, slots=True)
class IncidentRunStatus:
    """
    The incident orchestration's custom status, read by the HTTP starter when the incident is
    delivered again: the alerts this run covers, and, once its enrichment is done (`enriched`), the
    approvals it asked for. Until then a delivery bringing new alerts is asked to come back later.
    """

    alert_ids: tuple[str, ...]
    enriched: bool = False
    approvals: tuple[EarlierRequest, ...] = ()


def run_input_of(raw: object) -> IncidentRunInput:
    """
    The orchestration's input: an `IncidentRunInput`, or a bare incident (what runs started before
    alert ids were kept carry), read as a run without alert ids. `InputError` for anything else.
    """
    data = codec.decode(dict[str, Any], raw) if not isinstance(raw, dict) else raw
    if "incident" in data:
        return codec.decode(IncidentRunInput, data)
    return IncidentRunInput(codec.decode(SentinelIncident, data))


@dataclass(frozen=True, slots=True)
class EnrichInput:
    """
    `enrich_incident`: gather, score, write the comment as this run's record, prepare the approval requests.

    `requested_at` is when the orchestration asked, by its own clock: the approval requests'
    deadlines and sub-orchestration ids are fixed from it. A follow-up (`follow_up`) says so in its
    comment; plans in `earlier_requests` get no second approval request.
    """

    incident: SentinelIncident
    run: RunRef
    requested_at: datetime
    follow_up: FollowUp | None = None
    earlier_requests: tuple[EarlierRequest, ...] = ()


@dataclass(frozen=True, slots=True)
class AccountSummary:
    """One account as the orchestration keeps it: decisions and the plan, not the evidence."""

    account: Account
    verdict: Verdict
    score: int
    suspect_ips: tuple[str, ...]
    signals: tuple[str, ...]
    plan: ContainmentPlan


@dataclass(frozen=True, slots=True)
class EnrichmentSummary:
    """The compact result of an enrichment; `verdict` is the most severe account's (None without accounts)."""

    verdict: Verdict | None
    accounts: tuple[AccountSummary, ...]
    warnings: int


@dataclass(frozen=True, slots=True)
class CommentWritten:
    """A comment on the incident: its id, whether it was new, its length."""

    comment_id: str
    created: bool
    chars: int = 0


@dataclass(frozen=True, slots=True)
class ApprovalInput:
    """
    One account's approval request: the input of its approval sub-orchestration.

    `card` is the pending Adaptive Card (built where the evidence is, so history keeps a card of at
    most 26 KB, not the evidence); without one, `problem` says why none could be made.
    `inbox_rules` and `forwarding` are what the mailbox audit attributes to the suspect sessions:
    containment removes the rules when the plan says so and names the forwarding as a step by hand.
    """

    incident: SentinelIncident
    plan: ContainmentPlan
    instance_id: str
    requested_at: datetime
    expires_at: datetime
    card: Card | None = None
    problem: str = ""
    inbox_rules: tuple[AttackerInboxRule, ...] = ()
    forwarding: tuple[AttackerForwarding, ...] = ()

    @property
    def account(self) -> Account:
        return self.plan.account


@dataclass(frozen=True, slots=True)
class Enriched:
    """
    What `enrich_incident` answers: the summary, the approval requests to start, and the enrichment
    comment it wrote as this run's record (`comment`). When that write failed, `write_failure` says
    why and `unwritten_html` carries the comment (rendered where the evidence is), so the
    orchestration can write the very same text again without querying again; only then does the
    comment travel through Durable's history.
    """

    summary: EnrichmentSummary
    comment: CommentWritten | None
    approvals: tuple[ApprovalInput, ...] = ()
    write_failure: Failure | None = None
    unwritten_html: str = ""


@dataclass(frozen=True, slots=True)
class LabelInput:
    """`label_incident`: merge the verdict's label (and raise the severity when configured)."""

    incident: SentinelIncident
    verdict: Verdict


@dataclass(frozen=True, slots=True)
class Labelled:
    """Whether the incident was changed (False: it already said what we wanted)."""

    changed: bool


class Record(StrEnum):
    """The records one run of the incident orchestration writes on the incident, each a comment of its own."""

    ENRICHMENT = "enrichment"
    NO_ACCOUNT = "no_account"
    FAILURE = "failure"


@dataclass(frozen=True, slots=True)
class IncidentCommentInput:
    """
    `comment_incident`: write one record of run `run`: the enrichment (`html`, rendered by the
    enrichment, whose own write failed), the "no account" notice, or the failure notice for
    `failure`. `written_at` is the orchestration's time, so a retried write renders the same text.
    """

    incident: SentinelIncident
    run: RunRef
    record: Record
    written_at: datetime
    html: str = ""
    failure: Failure | None = None


class ApprovalEnd(StrEnum):
    """How an approval request ended."""

    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CARD_NOT_POSTED = "card_not_posted"
    FAILED = "failed"  # the sub-orchestration itself failed (a defect)


@dataclass(frozen=True, slots=True)
class ApprovalOutcome:
    """
    The approval sub-orchestration's output. `unrecorded` names the records that could not be
    written on the incident (their comment write failed for good): the incident run then ends Failed.
    """

    instance_id: str
    outcome: ApprovalEnd
    attempts: int = 0
    results: tuple[ActionResult, ...] = ()
    problem: str = ""
    unrecorded: tuple[str, ...] = ()


class RunEnd(StrEnum):
    """How a run of the incident orchestration ended."""

    ENRICHED = "enriched"
    NO_ACCOUNT = "no_account"
    FAILED = "failed"


class LabelState(StrEnum):
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class IncidentRunResult:
    """The incident orchestration's output: what happened to the incident in this run."""

    incident: int | None
    incident_id: str
    outcome: RunEnd
    verdict: Verdict | None = None
    labels: LabelState = LabelState.UNCHANGED
    accounts: tuple[AccountSummary, ...] = ()
    approvals: tuple[ApprovalOutcome, ...] = ()
    failure: Failure | None = None
    comment_written: bool = False
    run: str = ""


# -- the approval orchestration ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageReference:
    """Where a posted card lives in Teams, enough to update it later."""

    service_url: str
    conversation_id: str
    activity_id: str
    bot_app_id: str
    tenant_id: str


@dataclass(frozen=True, slots=True)
class ApprovalDecision:
    """
    The `ApprovalDecision` event: an authorised person's decision on one plan, with the display
    name the card shows.
    """

    approved: bool
    plan_digest: str
    decided_by_object_id: str
    decided_by_upn: str
    decided_at: datetime
    decided_by_name: str = ""

    @classmethod
    def of(cls, decision: Decision, name: str = "") -> ApprovalDecision:
        return cls(
            decision.approved,
            decision.plan_digest,
            decision.decided_by_object_id,
            decision.decided_by_upn,
            decision.decided_at,
            name,
        )

    @property
    def decision(self) -> Decision:
        return Decision(self.approved, self.plan_digest, self.decided_by_object_id, self.decided_by_upn, self.decided_at)


@dataclass(frozen=True, slots=True)
class ApprovalAttempt:
    """The `ApprovalAttempt` event: a refused click, as the incident records it."""

    person_object_id: str
    person_name: str
    approve: bool
    at: datetime
    reason: str
    person_upn: str = ""


class ApprovalPhase(StrEnum):
    """Where an approval stands, as the orchestration publishes it for the bot."""

    PENDING = "pending"
    DECIDED = "decided"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class ApprovalStatus:
    """
    The approval orchestration's custom status: the request it waits on (never taken from a click),
    and the decision once made. The bot reads it to authorise clicks on any app instance.
    """

    phase: ApprovalPhase
    incident_id: str
    target: Account
    plan_digest: str
    created_at: datetime
    decision: ApprovalDecision | None = None


@dataclass(frozen=True, slots=True)
class PostCardInput:
    """`post_approval_card`: post the pending card to the approval channel."""

    incident: SentinelIncident
    instance_id: str
    card: Card


@dataclass(frozen=True, slots=True)
class CardPosted:
    reference: MessageReference


@dataclass(frozen=True, slots=True)
class UpdateCardInput:
    """`update_approval_card`: the posted card in its decided (later: completed) or expired state."""

    incident: SentinelIncident
    instance_id: str
    reference: MessageReference
    card: Card
    decision: ApprovalDecision | None = None
    results: tuple[ActionResult, ...] | None = None
    expired: bool = False


@dataclass(frozen=True, slots=True)
class CardUpdated:
    """The card was replaced for everyone."""


@dataclass(frozen=True, slots=True)
class ContainInput:
    """
    `contain_account`: carry out the approved plan through Graph, skipping the actions already
    `completed`; `inbox_rules` and `forwarding` are the request's (the attacker's mailbox footholds).
    """

    incident: SentinelIncident
    instance_id: str
    plan: ContainmentPlan
    decision: ApprovalDecision
    completed: tuple[ActionKind, ...] = ()
    inbox_rules: tuple[AttackerInboxRule, ...] = ()
    forwarding: tuple[AttackerForwarding, ...] = ()


@dataclass(frozen=True, slots=True)
class Contained:
    """One result per planned action, and what containment learnt on the way."""

    results: tuple[ActionResult, ...]
    notes: tuple[str, ...] = ()


class Phase(StrEnum):
    """The approval's state changes, each a comment of its own on the incident."""

    NOT_POSTED = "not_posted"
    PENDING = "pending"
    REFUSED = "refused"  # one refused click
    DECIDED = "decided"
    RESULT = "result"  # one containment action's result
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class ApprovalRecordState:
    """
    One state change of an approval, as its comment says it: the refused click (REFUSED: the last of
    `attempts`), the decision, one action's result (RESULT: `results` holds it), the deadline passing.
    """

    phase: Phase
    attempts: tuple[ApprovalAttempt, ...] = ()
    decision: ApprovalDecision | None = None
    results: tuple[ActionResult, ...] = ()
    notes: tuple[str, ...] = ()
    problem: str = ""

    @property
    def state(self) -> str:
        """The record's name within its approval (part of its comment id): one per state change."""
        if self.phase is Phase.REFUSED:
            return f"{self.phase.value}-{len(self.attempts)}"
        if self.phase is Phase.RESULT and self.results:
            return f"{self.phase.value}-{self.results[0].kind.value}"
        return self.phase.value


@dataclass(frozen=True, slots=True)
class ApprovalCommentInput:
    """`comment_approval`: write one record of the account's approval (`written_at`: the orchestration's time)."""

    incident: SentinelIncident
    instance_id: str
    plan: ContainmentPlan
    requested_at: datetime
    expires_at: datetime
    record: ApprovalRecordState
    written_at: datetime


#: Every type that crosses the orchestration boundary (the round-trip test covers each).
PAYLOAD_TYPES: tuple[type[Any], ...] = (
    Failure,
    IncidentRunInput,
    IncidentRunStatus,
    EntitiesInput,
    EntitiesFound,
    EnrichInput,
    Enriched,
    LabelInput,
    Labelled,
    IncidentCommentInput,
    CommentWritten,
    IncidentRunResult,
    ApprovalInput,
    ApprovalOutcome,
    ApprovalDecision,
    ApprovalAttempt,
    ApprovalStatus,
    PostCardInput,
    CardPosted,
    UpdateCardInput,
    CardUpdated,
    ContainInput,
    Contained,
    ApprovalCommentInput,
)


class RunFailed(Exception):
    """
    Ends a run of the incident orchestration as Failed (its runtime status), with the run's result
    (the enrichment, when there is one, and the failure) as the message Durable keeps as its output.
    Only successful runs suppress a re-delivery, so the next delivery of the incident runs again.
    """

    MARKER = "incident run failed: "

    def __init__(self, result: IncidentRunResult) -> None:
        self.result = result
        super().__init__(self.MARKER + codec.dumps(result))


def run_result_of(output: object) -> IncidentRunResult | None:
    """
    The result of a run from its Durable output: the returned value of a Completed run, or the
    result carried by the error text of a Failed one. None when the output is neither.
    """
    if isinstance(output, str) and RunFailed.MARKER in output:
        text = output[output.index(RunFailed.MARKER) + len(RunFailed.MARKER) :]
        try:
            output, _end = json.JSONDecoder().raw_decode(text)
        except ValueError:
            return None
    try:
        return codec.decode(IncidentRunResult, output)
    except InputError:
        return None
