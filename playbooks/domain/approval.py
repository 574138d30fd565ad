"""
The approval step's values: the requests the enrichment prepares, the approval as the bot reads it
from the orchestration's custom status, and the record the approval comment is rendered from.

Pure code shared by the approval orchestration (`playbooks.functions.approval_flow`), the enrichment activity
that prepares the requests, the bot, and the local run that writes `card.json`. It imports neither
azure.functions nor the Graph SDK.

One request per account whose plan needs approval, each waited on by its own sub-orchestration
(`approval_instance_id`): the bot finds the request by the instance id on the card's buttons, and two
suspects in one incident never share a decision. The request's clock starts when the incident
orchestration asked for the enrichment (`requested_at`, the orchestration's own time), so the card's
"decide by", the bot's expiry check and the orchestration's timer are one and the same instant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from common.errors import InputError
from common.settings import Settings
from enrichment.domain.model import Account
from enrichment.render.story import Context, Identity
from playbooks.domain import codec
from playbooks.domain.authorization import ApprovalRequest
from playbooks.domain.incident import SentinelIncident
from playbooks.domain.plan import ActionResult, ActionStatus, ContainmentPlan, Decision
from playbooks.domain.workflow import ApprovalDecision, ApprovalInput, ApprovalPhase, ApprovalStatus, Phase
from playbooks.render import card as cards

#: Most accounts of one incident that get an approval card (the rest are named in the comment only).
MAX_APPROVALS = 10
#: Why a plan whose suspect has no object id gets no card.
NO_OBJECT_ID = (
    "the suspect {upn} has no Entra object id (the sign-in logs carried none and it was not resolved in the directory); "
    "no approval card was posted, because a card without it cannot tell the suspect apart from an approver; "
    "contain the account by hand"
)


def approval_instance_id(parent_instance_id: str, index: int, requested_at: datetime) -> str:
    """
    The sub-orchestration of the `index`-th account of one run of an incident's orchestration.

    Deterministic (the time is the orchestration's own), so a replay schedules the same instance;
    a later run of the same incident gets new instances, and the cards of the earlier run are
    answered "no longer waiting" instead of deciding the new request.
    """
    return f"{parent_instance_id}:approval:{index}:{requested_at.strftime('%Y%m%dT%H%M%S')}"


def card_incident(incident: SentinelIncident) -> cards.CardIncident:
    """What the card says about the incident."""
    return cards.CardIncident(incident.name, incident.number, incident.title, incident.link)


def card_context(incident: SentinelIncident, account: Account, identity: Identity | None = None) -> Context:
    """
    What the card's brief is told beyond the evidence: the incident's addresses and who the person
    is (`identity`: the facts read before approval; else the name the incident gave).
    """
    if identity is None:
        name = incident.display_name(account)
        identity = Identity(display_name=name) if name else None
    return Context(incident_ips=incident.ips, identity=identity)


def approval_requests(
    incident: SentinelIncident,
    outcomes: Sequence[Any],
    *,
    parent_instance_id: str,
    requested_at: datetime,
    settings: Settings,
    problems: Mapping[int, str] | None = None,
    identities: Mapping[int, Identity] | None = None,
    earlier: Mapping[str, str] | None = None,
) -> dict[int, ApprovalInput]:
    """
    Per account index, the request its approval sub-orchestration starts from: the pending card
    (built here, where the evidence is, so history keeps a card of at most 26 KB, not the
    evidence), the plan, the sub-orchestration's id and the deadline.

    `outcomes` are `playbooks.services.enrich.AccountOutcome`s; only plans that need approval get one.
    A plan that names no object id for the suspect gets no card (the problem says why; `problems`
    gives the reason the directory could not resolve it), and neither does an account in `problems`.
    `identities` (by account index) are who each person is, as the card's Who shows them. Each
    request carries the account's mailbox footholds (`outcome.inbox_rules`, `outcome.forwarding`).
    A plan an earlier run of the incident already asked for (`earlier`: plan digest -> that
    request's instance id, still waiting or decided) gets no request: one plan, one card, one decision.
    """
    expires_at = requested_at + timedelta(hours=settings.approval_timeout_hours)
    requests: dict[int, ApprovalInput] = {}
    for index, outcome in enumerate(outcomes):
        if not outcome.plan.needs_approval or outcome.plan.digest in (earlier or {}) or len(requests) >= MAX_APPROVALS:
            continue
        instance_id = approval_instance_id(parent_instance_id, index, requested_at)
        problem = (problems or {}).get(index) or (
            "" if outcome.plan.account.object_id else NO_OBJECT_ID.format(upn=outcome.plan.account.upn)
        )
        rules, forwarding = tuple(outcome.inbox_rules), tuple(outcome.forwarding)
        if problem:
            requests[index] = ApprovalInput(
                incident,
                outcome.plan,
                instance_id,
                requested_at,
                expires_at,
                problem=problem,
                inbox_rules=rules,
                forwarding=forwarding,
            )
            continue
        try:
            card = cards.card_for(
                card_incident(incident),
                outcome.evidence,
                outcome.assessment,
                outcome.plan,
                instance_id=instance_id,
                expires_at=expires_at,
                context=card_context(incident, outcome.evidence.account, (identities or {}).get(index)),
            )
            requests[index] = ApprovalInput(
                incident, outcome.plan, instance_id, requested_at, expires_at, card=card, inbox_rules=rules, forwarding=forwarding
            )
        except InputError as error:  # e.g. an account the bot could never match a click to
            requests[index] = ApprovalInput(
                incident,
                outcome.plan,
                instance_id,
                requested_at,
                expires_at,
                problem=f"no approval card can be made for this account: {error}",
                inbox_rules=rules,
                forwarding=forwarding,
            )
    return requests


def all_failed(plan: ContainmentPlan, detail: str) -> tuple[ActionResult, ...]:
    """Every planned action marked FAILED with `detail` (when containment could not run at all)."""
    return tuple(ActionResult(action.kind, ActionStatus.FAILED, detail) for action in plan.actions)


# -- the approval as the bot reads it ----------------------------------------------------------------


class BotView(StrEnum):
    """Where one orchestration stands on its approval, as the bot sees it."""

    PENDING = "pending"
    DECIDED = "decided"
    EXPIRED = "expired"
    CLOSED = "closed"  # no such instance, it never waited, or it finished without a decision


@dataclass(frozen=True, slots=True)
class ApprovalState:
    """
    The approval as the orchestration published it: the request it waits on (never taken from a
    click), the decision once made, or why it is closed.
    """

    phase: BotView
    request: ApprovalRequest | None = None
    decision: Decision | None = None
    decided_by_name: str = ""
    detail: str = ""


_WAITING = frozenset({"Running", "Pending"})


def approval_status(
    request: ApprovalRequest, phase: ApprovalPhase, decision: Decision | None = None, name: str = ""
) -> ApprovalStatus:
    """The custom status the approval orchestration publishes for `request` (with its decision once made)."""
    decided = ApprovalDecision.of(decision, name) if decision is not None else None
    return ApprovalStatus(phase, request.incident_id, request.target, request.plan_digest, request.created_at, decided)


def approval_state(runtime_status: str | None, custom_status: object) -> ApprovalState:
    """Read an orchestration's runtime status and custom status into an `ApprovalState`."""
    if runtime_status is None:
        return ApprovalState(BotView.CLOSED, detail="no containment request with this id is known")
    status: ApprovalStatus | None
    try:
        status = codec.decode(ApprovalStatus, custom_status) if custom_status not in (None, "") else None
    except InputError:
        status = None
    if status is None:
        detail = (
            "the request is not waiting for a decision"
            if runtime_status in _WAITING
            else f"the request is {runtime_status.lower()}"
        )
        return ApprovalState(BotView.CLOSED, detail=detail)
    request = ApprovalRequest(status.incident_id, status.target, status.plan_digest, status.created_at)
    if status.phase is ApprovalPhase.DECIDED:
        if status.decision is None:
            return ApprovalState(BotView.CLOSED, request, detail="the request's recorded decision is unreadable")
        return ApprovalState(BotView.DECIDED, request, status.decision.decision, status.decision.decided_by_name)
    if status.phase is ApprovalPhase.EXPIRED:
        return ApprovalState(BotView.EXPIRED, request)
    if runtime_status in _WAITING:
        return ApprovalState(BotView.PENDING, request)
    return ApprovalState(BotView.CLOSED, request, detail=f"the request is {runtime_status.lower()}")


# -- the record the approval comment is rendered from ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Person:
    """Someone who clicked, as the comment names them: UPN when the directory said, else name and object id."""

    object_id: str
    name: str = ""
    upn: str = ""

    @property
    def label(self) -> str:
        if self.upn:
            return f"{self.upn} ({self.name})" if self.name and self.name.lower() != self.upn.lower() else self.upn
        if self.name:
            return f"{self.name} (object id {self.object_id})" if self.object_id else self.name
        return self.object_id or "an unidentified person"


@dataclass(frozen=True, slots=True)
class AttemptLine:
    """A refused click: who, when, what they tried, why it was refused."""

    person: Person
    at: datetime
    approve: bool
    reason: str


@dataclass(frozen=True, slots=True)
class ApprovalRecord:
    """Everything the approval comment says about one account's request."""

    target: Account
    plan: ContainmentPlan
    phase: Phase
    requested_at: datetime
    expires_at: datetime
    attempts: tuple[AttemptLine, ...] = ()
    approved: bool | None = None
    decided_by: Person | None = None
    decided_at: datetime | None = None
    results: tuple[ActionResult, ...] = ()
    notes: tuple[str, ...] = field(default=())
    problem: str = ""
