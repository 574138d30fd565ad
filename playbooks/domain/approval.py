"""
The approval step's values: what one approval request is, and how it travels through Durable history.

Pure code shared by the approval orchestration (`playbooks.functions.approval_flow`), the enrichment activity
that prepares the requests, and the local run that writes `card.json`. It imports neither
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
from playbooks.domain.incident import IncidentRef, account_from_json, account_json
from playbooks.domain.plan import ACTION_DESCRIPTIONS, ActionKind, ActionResult, ActionStatus, ContainmentPlan, ProposedAction
from playbooks.render import card as cards

#: The approval sub-orchestration's function name.
APPROVAL_ORCHESTRATOR = "approval_orchestrator"
#: Most accounts of one incident that get an approval card (the rest are named in the comment only).
MAX_APPROVALS = 10


def approval_instance_id(parent_instance_id: str, index: int, requested_at: datetime) -> str:
    """
    The sub-orchestration of the `index`-th account of one run of an incident's orchestration.

    Deterministic (the time is the orchestration's own), so a replay schedules the same instance;
    a later run of the same incident gets new instances, and the cards of the earlier run are
    answered "no longer waiting" instead of deciding the new request.
    """
    return f"{parent_instance_id}:approval:{index}:{requested_at.strftime('%Y%m%dT%H%M%S')}"


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def parse_time(value: object, what: str) -> datetime:
    """An aware datetime from stored ISO text, or `InputError`."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError as error:
        msg = f"{what}: not an ISO 8601 time: {value!r}"
        raise InputError(msg) from error
    if moment.tzinfo is None:
        msg = f"{what}: has no time zone"
        raise InputError(msg)
    return moment


def card_incident(incident: IncidentRef) -> cards.IncidentRef:
    """What the card says about the incident."""
    return cards.IncidentRef(incident.name, incident.number, incident.title, incident.url)


def card_context(incident: IncidentRef, account: Account) -> Context:
    """What the card's brief is told beyond the evidence: the incident's addresses and the person's name."""
    name = incident.display_name(account)
    return Context(incident_ips=incident.ips, identity=Identity(display_name=name) if name else None)


def approval_requests(
    incident: IncidentRef,
    outcomes: Sequence[Any],
    *,
    parent_instance_id: str,
    requested_at: datetime,
    settings: Settings,
) -> dict[int, dict[str, Any]]:
    """
    Per account index, the request its approval sub-orchestration starts from: the pending card
    (built here, where the evidence is, so history keeps a card of at most 26 KB, not the
    evidence), the plan, the sub-orchestration's id and the deadline.

    `outcomes` are `playbooks.services.enrich.AccountOutcome`s; only plans that need approval get one.
    """
    expires_at = requested_at + timedelta(hours=settings.approval_timeout_hours)
    requests: dict[int, dict[str, Any]] = {}
    for index, outcome in enumerate(outcomes):
        if not outcome.plan.needs_approval or len(requests) >= MAX_APPROVALS:
            continue
        instance_id = approval_instance_id(parent_instance_id, index, requested_at)
        request: dict[str, Any] = {"instance_id": instance_id, "requested_at": iso(requested_at), "expires_at": iso(expires_at)}
        try:
            request["card"] = cards.card_for(
                card_incident(incident),
                outcome.evidence,
                outcome.assessment,
                outcome.plan,
                instance_id=instance_id,
                expires_at=expires_at,
                context=card_context(incident, outcome.evidence.account),
            )
        except InputError as error:  # e.g. an account the bot could never match a click to
            request["problem"] = f"no approval card can be made for this account: {error}"
        requests[index] = request
    return requests


# -- plans and results as stored JSON ---------------------------------------------------------------


def plan_from_json(incident_id: str, account: Account, data: Mapping[str, Any]) -> ContainmentPlan:
    """
    The plan a request was made for, rebuilt from history and checked against its digest.

    The digest is what a decision is bound to; a stored plan that does not reproduce it was
    damaged or altered, and nothing may act on it.
    """
    try:
        kinds = [ActionKind(item["kind"]) for item in data["actions"]]
        digest = str(data["digest"])
    except (KeyError, TypeError, ValueError) as error:
        msg = f"not a stored containment plan: {error}"
        raise InputError(msg) from error
    plan = ContainmentPlan(
        incident_id,
        account,
        tuple(ProposedAction(kind, ACTION_DESCRIPTIONS[kind]) for kind in kinds),
        bool(data.get("needs_approval", True)),
        str(data.get("reason", "")),
    )
    if plan.digest != digest:
        msg = "the stored containment plan does not match its digest"
        raise InputError(msg)
    return plan


def result_json(result: ActionResult) -> dict[str, str]:
    return {"kind": result.kind.value, "status": result.status.value, "detail": result.detail, "request_id": result.request_id}


def results_from_json(data: object) -> tuple[ActionResult, ...]:
    if not isinstance(data, list):
        return ()
    results = []
    for item in data:
        try:
            results.append(
                ActionResult(
                    ActionKind(item["kind"]),
                    ActionStatus(item["status"]),
                    str(item.get("detail", "")),
                    str(item.get("request_id", "")),
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            msg = f"not a stored action result: {error}"
            raise InputError(msg) from error
    return tuple(results)


def failed_results(plan_json: Mapping[str, Any], detail: str) -> list[dict[str, str]]:
    """Every planned action marked FAILED with `detail` (when containment could not run at all)."""
    return [
        {"kind": str(item.get("kind", "")), "status": ActionStatus.FAILED.value, "detail": detail, "request_id": ""}
        for item in plan_json.get("actions", [])
        if isinstance(item, Mapping)
    ]


# -- the record the approval comment is rendered from ----------------------------------------------


class Phase(StrEnum):
    """Where one approval stands, as the incident comment tells it."""

    NOT_POSTED = "not_posted"
    PENDING = "pending"
    DECIDED = "decided"
    EXPIRED = "expired"


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
    phase: str
    requested_at: datetime
    expires_at: datetime
    attempts: tuple[AttemptLine, ...] = ()
    approved: bool | None = None
    decided_by: Person | None = None
    decided_at: datetime | None = None
    results: tuple[ActionResult, ...] = ()
    notes: tuple[str, ...] = field(default=())
    problem: str = ""


def record_json(
    *,
    phase: str,
    attempts: Sequence[Mapping[str, Any]] = (),
    decision: Mapping[str, Any] | None = None,
    results: Sequence[Mapping[str, Any]] = (),
    notes: Sequence[str] = (),
    problem: str = "",
) -> dict[str, Any]:
    """The approval state the orchestration hands to the comment activity (plain JSON for history)."""
    return {
        "phase": phase,
        "attempts": list(attempts),
        "decision": dict(decision) if decision is not None else None,
        "results": list(results),
        "notes": list(notes),
        "problem": problem,
    }


def account_of(request: Mapping[str, Any]) -> Account:
    try:
        return account_from_json(request["account"])
    except (KeyError, TypeError, ValueError) as error:
        msg = f"approval request has no usable account: {error}"
        raise InputError(msg) from error


def request_input(incident: IncidentRef, account: Account, plan: Mapping[str, Any], request: Mapping[str, Any]) -> dict[str, Any]:
    """The approval sub-orchestration's input."""
    return {"incident": incident.to_json(), "account": account_json(account), "plan": dict(plan), **request}
