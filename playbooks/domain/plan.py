"""
The containment plan: which actions to propose for one user, decided from the assessment alone.

Pure values and one pure function. The plan is what a person approves, so it is bound to the
incident, the user's object id and the exact actions by `digest`: an approval for one plan can never
be replayed against another.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from common.settings import Settings
from enrichment.domain.model import Account, Assessment, Verdict
from playbooks.domain.footholds import AttackerForwarding, forwarding_step


class ActionKind(StrEnum):
    """
    Containment actions; the two first are always proposed, the rest only when enabled in settings.
    The order is the plan's order (and so part of every digest): new kinds go at the end.
    """

    REVOKE_SESSIONS = "revoke_sessions"
    AUDIT_MFA_METHODS = "audit_mfa_methods"
    CONFIRM_COMPROMISED = "confirm_compromised"
    DISABLE_ACCOUNT = "disable_account"
    DELETE_FLAGGED_METHODS = "delete_flagged_methods"
    REQUIRE_PASSWORD_CHANGE = "require_password_change"  # noqa: S105 (an action name, not a password)
    DELETE_ATTACKER_DEVICES = "delete_attacker_devices"
    REMOVE_INBOX_RULES = "remove_inbox_rules"


#: What each action does, in the words shown on the card and in the comment before approval.
ACTION_DESCRIPTIONS: dict[ActionKind, str] = {
    ActionKind.REVOKE_SESSIONS: "Revoke all of the user's sign-in sessions and refresh tokens",
    ActionKind.AUDIT_MFA_METHODS: (
        "List the user's MFA methods and devices again and flag any registered during the suspicious window or from a suspect IP"
    ),
    ActionKind.CONFIRM_COMPROMISED: "Confirm the user compromised in Entra ID Protection (user risk: high)",
    ActionKind.DISABLE_ACCOUNT: "Disable the user's account (blocks every new sign-in)",
    ActionKind.DELETE_FLAGGED_METHODS: "Delete the MFA methods flagged by the audit",
    ActionKind.REQUIRE_PASSWORD_CHANGE: "Require a password change at the user's next sign-in (the phished password stops working)",
    ActionKind.DELETE_ATTACKER_DEVICES: "Delete the devices registered or joined from a suspect IP in the window",
    ActionKind.REMOVE_INBOX_RULES: "Remove the inbox rules the mailbox audit attributes to the attacker's session",
}

#: Actions that change the tenant; auditing reads only.
DESTRUCTIVE = frozenset(set(ActionKind) - {ActionKind.AUDIT_MFA_METHODS})

#: What revoking does not do, said wherever revoking is proposed or reported.
REVOKE_LIMITS = (
    "Revoking ends refresh tokens and session cookies, not access tokens already issued: those stay valid until they "
    "expire (typically 60-90 minutes) unless the app supports continuous access evaluation"
)

#: Incident labels (tags) and title marks Microsoft Defender XDR puts on an incident its automatic attack disruption acted on.
DISRUPTION_TAG = "attack disruption"
#: What automatic attack disruption does to the user in an AiTM or BEC attack (Defender XDR docs): it disables the account.
DISRUPTION_DOES = (ActionKind.DISABLE_ACCOUNT,)


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
    already_done: tuple[tuple[ActionKind, str], ...] = ()  # (kind, who did it): not proposed again
    manual: tuple[str, ...] = ()  # steps no Graph permission can do, for a person

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


def attack_disruption(title: str, labels: Iterable[str] = ()) -> str:
    """
    How the incident shows that Defender XDR's automatic attack disruption acted, or "".

    Defender tags a disrupted incident "Attack Disruption" (a Sentinel label once synchronised) and the
    API adds "(attack disruption)" to its title.
    """
    if any(label.strip().lower() == DISRUPTION_TAG for label in labels):
        return "the incident carries Microsoft Defender XDR's 'Attack Disruption' tag"
    if f"({DISRUPTION_TAG})" in title.lower():
        return "the incident title says Microsoft Defender XDR's automatic attack disruption acted"
    return ""


def plan_containment(
    incident_id: str,
    account: Account,
    assessment: Assessment,
    settings: Settings,
    *,
    disruption: str = "",
    forwarding: Sequence[AttackerForwarding] = (),
) -> ContainmentPlan:
    """
    Propose containment only for `replay_likely`, and only what settings enable.

    `disruption` (from `attack_disruption`) marks what Defender's automatic attack disruption
    already did as done rather than proposing it again; `forwarding` set by the attacker becomes a
    step by hand, with its exact Exchange Online command (Graph v1.0 cannot remove it).
    """
    if assessment.verdict is not Verdict.REPLAY_LIKELY:
        return ContainmentPlan(incident_id, account, (), False, f"verdict is {assessment.verdict.value}: no containment proposed")
    if not settings.containment_enabled:
        return ContainmentPlan(incident_id, account, (), False, "containment is disabled (REPLAY_CONTAINMENT_ENABLED=false)")
    kinds = [ActionKind.REVOKE_SESSIONS, ActionKind.AUDIT_MFA_METHODS]
    kinds += [kind for kind in ActionKind if kind.value in settings.optional_actions]
    done = tuple((kind, f"Defender's automatic attack disruption ({disruption})") for kind in DISRUPTION_DOES if disruption)
    actions = tuple(ProposedAction(kind, ACTION_DESCRIPTIONS[kind]) for kind in kinds if kind not in dict(done))
    manual = tuple(map(forwarding_step, forwarding))
    return ContainmentPlan(
        incident_id, account, actions, True, f"score {assessment.score}: a token replay is likely", done, manual
    )


def plan_remarks(plan: ContainmentPlan) -> tuple[str, ...]:
    """
    What the approver must read beside the actions: what revoking does not do, what someone else
    already did (so it is not repeated), and the steps no Graph permission can do, for a person.
    """
    remarks: list[str] = []
    if any(a.kind is ActionKind.REVOKE_SESSIONS for a in plan.actions):
        remarks.append(f"{REVOKE_LIMITS}.")
    remarks += [f"Not repeated: {kind.value.replace('_', ' ')}, already done by {who}." for kind, who in plan.already_done]
    remarks += [f"By hand: {step}" for step in plan.manual]
    return tuple(remarks)


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
