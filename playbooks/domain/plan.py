"""
The containment plan: which actions to propose for one user, decided from the assessment alone.

Pure values and one pure function. The plan is what a person approves, so it is bound to the
incident, the user's object id and the exact actions by `digest`: an approval for one plan can never
be replayed against another.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from common.settings import Settings
from enrichment.domain.model import Account, Assessment, Verdict


class ActionKind(StrEnum):
    """Containment actions; the two first are always proposed, the rest only when enabled in settings."""

    REVOKE_SESSIONS = "revoke_sessions"
    AUDIT_MFA_METHODS = "audit_mfa_methods"
    CONFIRM_COMPROMISED = "confirm_compromised"
    DISABLE_ACCOUNT = "disable_account"
    DELETE_FLAGGED_METHODS = "delete_flagged_methods"


#: What each action does, in the words shown on the card and in the comment before approval.
ACTION_DESCRIPTIONS: dict[ActionKind, str] = {
    ActionKind.REVOKE_SESSIONS: "Revoke all of the user's sign-in sessions and refresh tokens",
    ActionKind.AUDIT_MFA_METHODS: "List the user's MFA methods and flag any registered during the suspicious window or from a suspect IP",
    ActionKind.CONFIRM_COMPROMISED: "Confirm the user compromised in Entra ID Protection (user risk: high)",
    ActionKind.DISABLE_ACCOUNT: "Disable the user's account (blocks every new sign-in)",
    ActionKind.DELETE_FLAGGED_METHODS: "Delete the MFA methods flagged by the audit",
}

#: Actions that change the tenant; auditing reads only.
DESTRUCTIVE = frozenset(
    {ActionKind.REVOKE_SESSIONS, ActionKind.CONFIRM_COMPROMISED, ActionKind.DISABLE_ACCOUNT, ActionKind.DELETE_FLAGGED_METHODS}
)


@dataclass(frozen=True, slots=True)
class ProposedAction:
    kind: ActionKind
    description: str

    @property
    def destructive(self) -> bool:
        return self.kind in DESTRUCTIVE


@dataclass(frozen=True, slots=True)
class ContainmentPlan:
    """
    The actions proposed for one user of one incident.

    `needs_approval` is false when nothing is proposed (the verdict does not call for containment, or
    containment is disabled); `reason` says which, for the comment.
    """

    incident_id: str
    account: Account
    actions: tuple[ProposedAction, ...]
    needs_approval: bool
    reason: str

    @property
    def digest(self) -> str:
        """A stable fingerprint of (incident, user object id or UPN, actions) that a decision is bound to."""
        material = "|".join(
            (
                self.incident_id.lower(),
                (self.account.object_id or self.account.upn).lower(),
                *[a.kind.value for a in self.actions],
            )
        )
        return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


def plan_containment(incident_id: str, account: Account, assessment: Assessment, settings: Settings) -> ContainmentPlan:
    """Propose containment only for `replay_likely`, and only what settings enable."""
    if assessment.verdict is not Verdict.REPLAY_LIKELY:
        return ContainmentPlan(incident_id, account, (), False, f"verdict is {assessment.verdict.value}: no containment proposed")
    if not settings.containment_enabled:
        return ContainmentPlan(incident_id, account, (), False, "containment is disabled (REPLAY_CONTAINMENT_ENABLED=false)")
    kinds = [ActionKind.REVOKE_SESSIONS, ActionKind.AUDIT_MFA_METHODS]
    kinds += [kind for kind in ActionKind if kind.value in settings.optional_actions]
    actions = tuple(ProposedAction(kind, ACTION_DESCRIPTIONS[kind]) for kind in kinds)
    return ContainmentPlan(incident_id, account, actions, True, f"score {assessment.score}: a token replay is likely")


class ActionStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class ActionResult:
    """
    What one action did; `request_id` is Graph's request-id header for support cases. A FAILED
    result is `transient` when Graph was throttling or failing (a later attempt may succeed).
    """

    kind: ActionKind
    status: ActionStatus
    detail: str
    request_id: str = ""
    transient: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """A person's approve/reject, bound to the plan it was made on."""

    approved: bool
    plan_digest: str
    decided_by_object_id: str
    decided_by_upn: str
    decided_at: datetime
