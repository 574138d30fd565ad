"""
Who may decide a containment plan: pure rules over values gathered beforehand.

The Teams bot gathers the facts (who clicked, from the activity; whether they are in the approver
group, from Graph; the decision already recorded, from the orchestration) and passes them in with
`now`. This module never does I/O and never raises for an expected outcome: every click gets a
value back, and every value has an `audit_line` for the incident, refused attempts included.

Rules, in the order they are checked (the first that applies wins):

1. The click must be bound to this request: same incident, same target user, same plan digest.
   A card left over from an earlier plan must not approve a different one.
2. A request already decided stays decided: a late or second click is answered "already decided
   by X" and changes nothing.
3. A request expires with the orchestration's timeout (created_at + approval_timeout_hours).
4. The suspect can never decide their own containment, whatever groups they are in: a stolen
   session of an approver is exactly the attacker we are containing. The clicker is matched to the
   suspect by object id AND by UPN (both resolved for the clicker), and a clicker whose UPN could
   not be resolved is refused: they cannot be told apart from the suspect by name.
5. Only members of the configured Entra group (membership gathered via Graph) or the explicit
   allow-list of object ids may decide. Unknown membership is a refusal, never a pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from common.settings import Settings
from common.times import utc_text
from enrichment.domain.model import Account
from playbooks.domain.plan import ContainmentPlan, Decision


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """
    The open question "contain this user?" for one plan, as created when the card was posted.

    Built from the orchestration's own state, never from the click: `created_at` sets the deadline.
    """

    incident_id: str
    target: Account
    plan_digest: str
    created_at: datetime

    @classmethod
    def for_plan(cls, plan: ContainmentPlan, created_at: datetime) -> ApprovalRequest:
        return cls(plan.incident_id, plan.account, plan.digest, created_at)

    def expires_at(self, settings: Settings) -> datetime:
        """The same deadline the orchestration's timer uses, so a click and the timer never disagree."""
        return self.created_at + timedelta(hours=settings.approval_timeout_hours)


@dataclass(frozen=True, slots=True)
class Attempt:
    """
    One click on the card: what the card was bound to and who clicked.

    `target_object_id` / `target_upn` are the card's user (the UPN matters only for a plan whose
    account had no object id). `person_object_id` comes from the (authenticated) click; `person_upn`
    is the directory's answer for that object id (empty when it could not be read), and so is
    `in_approver_group`. The card's fields can be crafted; that is why the deadline comes from the
    request, not the card.

    `in_approver_group` is the Graph answer for the approver group: True/False, or None when it was
    not asked (no group configured) or could not be answered.
    """

    incident_id: str
    target_object_id: str
    plan_digest: str
    approve: bool
    person_object_id: str
    person_upn: str
    at: datetime
    in_approver_group: bool | None = None
    target_upn: str = ""


@dataclass(frozen=True, slots=True)
class Authorised:
    """The person may decide; `decision` is what to record and hand to the orchestration."""

    decision: Decision


@dataclass(frozen=True, slots=True)
class Refused:
    """The person may not decide this plan; `reason` is shown to them and recorded."""

    reason: str


@dataclass(frozen=True, slots=True)
class AlreadyDecided:
    """Someone decided first; the click changes nothing."""

    decision: Decision


@dataclass(frozen=True, slots=True)
class Expired:
    """The request timed out before this click; the click changes nothing."""

    expired_at: datetime


Outcome = Authorised | Refused | AlreadyDecided | Expired


def _same(left: str, right: str) -> bool:
    return bool(left) and left.strip().lower() == right.strip().lower()


def _is_target(attempt: Attempt, target: Account) -> bool:
    return _same(attempt.person_object_id, target.object_id) or _same(attempt.person_upn, target.upn)


def authorise(
    request: ApprovalRequest,
    attempt: Attempt,
    *,
    decided: Decision | None,
    settings: Settings,
    now: datetime,
) -> Outcome:
    """Apply the rules of the module docstring, in order; `decided` is the decision already recorded, if any."""
    target = request.target
    same_target = _same(attempt.target_object_id, target.object_id) if target.object_id else _same(attempt.target_upn, target.upn)
    if not (same_target and _same(attempt.incident_id, request.incident_id) and attempt.plan_digest == request.plan_digest):
        return Refused("this card belongs to a different incident, user or plan; use the latest card for this incident")
    if decided is not None:
        return AlreadyDecided(decided)
    deadline = request.expires_at(settings)
    if now > deadline:
        return Expired(deadline)
    if not attempt.person_object_id.strip():
        return Refused("the click carried no Entra object id, so the person cannot be identified")
    if _is_target(attempt, request.target):
        return Refused("the suspect user cannot decide their own containment")
    if not attempt.person_upn.strip():
        return Refused(
            "the clicker's UPN could not be checked in the directory, so they cannot be told apart from the suspect; "
            "nothing was decided"
        )
    if not settings.approver_group_id and not settings.approver_object_ids:
        return Refused("no approvers are configured (REPLAY_APPROVER_GROUP_ID / REPLAY_APPROVER_OBJECT_IDS)")
    allowed = attempt.person_object_id.strip().lower() in settings.approver_object_ids
    if not allowed and settings.approver_group_id:
        if attempt.in_approver_group is None:
            return Refused("membership of the approver group could not be checked; nothing was decided")
        allowed = attempt.in_approver_group
    if not allowed:
        return Refused("only members of the approver group or the listed approvers may decide")
    decision = Decision(
        approved=attempt.approve,
        plan_digest=request.plan_digest,
        decided_by_object_id=attempt.person_object_id.strip().lower(),
        decided_by_upn=attempt.person_upn.strip(),
        decided_at=now,
    )
    return Authorised(decision)


def _when(moment: datetime) -> str:
    return utc_text(moment, seconds=True)


def _person(upn: str, object_id: str) -> str:
    return upn.strip() or object_id.strip() or "an unidentified person"


def audit_line(request: ApprovalRequest, attempt: Attempt, outcome: Outcome) -> str:
    """
    The sentence recorded on the incident for this click, with the person's UPN and the time.

    Raw text: UPNs and reasons are data, and the comment or card writer escapes them.
    """
    who = _person(attempt.person_upn, attempt.person_object_id)
    verb = "approved" if attempt.approve else "rejected"
    subject = f"containment of {request.target.key} (incident {request.incident_id}, plan {request.plan_digest[:12]})"
    match outcome:
        case Authorised(decision):
            done = "approved" if decision.approved else "rejected"
            return f"{_when(decision.decided_at)}: {who} {done} {subject}."
        case Refused(reason):
            return f"{_when(attempt.at)}: {who} tried to decide ({verb}) {subject} and was refused: {reason}."
        case AlreadyDecided(decision):
            first = _person(decision.decided_by_upn, decision.decided_by_object_id)
            done = "approved" if decision.approved else "rejected"
            return (
                f"{_when(attempt.at)}: {who} clicked {verb} on {subject}; nothing changed: "
                f"already {done} by {first} at {_when(decision.decided_at)}."
            )
        case Expired(expired_at):
            return f"{_when(attempt.at)}: {who} clicked {verb} on {subject}; nothing changed: the request expired at {_when(expired_at)}."
