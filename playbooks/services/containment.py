"""
Apply an approved containment plan through the Graph adapter, one result per action.

Gather -> decide -> apply, at the scale of one user: read the target and its directory roles,
decide (pure, `playbooks.domain.footholds`: which methods, devices and inbox rules look like the
attacker's persistence, which roles put the user out of the app's reach), then act in plan order:
revoke sessions, audit MFA methods, and the optional actions the plan holds (confirm compromised,
disable, delete flagged methods, require a password change, delete the attacker's devices, remove
the attacker's inbox rules). A failure of one action never stops the next: revoking sessions
matters even when the audit cannot read methods. The audits run again here even though the
enrichment showed them before the click: the attacker may have added more while the card waited.

Idempotency (approvals are delivered more than once, activities are retried):

* the caller passes the action kinds already completed for this plan (the approval orchestration
  keeps them from its earlier attempts: an action that failed transiently, marked `transient`, is
  tried again later while the done ones are passed here) and those are reported SKIPPED, not repeated;
* revoking sessions is safe to repeat anyway (it moves signInSessionsValidFromDateTime to now);
* disabling reads accountEnabled first and does nothing to a disabled account;
* deleting a method, a device or an inbox rule that is already gone (404) counts as done;
* requiring a password change twice leaves the requirement set;
* confirming a user compromised twice leaves the risk at high;
* auditing only reads.

Nothing acts unless the decision approves exactly this plan (same digest).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol, TypeVar

from common.errors import TransientUpstreamError
from common.logs import get_logger
from enrichment.domain.model import Assessment, TimeWindow, UserEvidence
from playbooks.adapters.graph import DirectoryUser, GraphError, Reply
from playbooks.domain.directory import AuthMethod, MessageRule, RegisteredDevice
from playbooks.domain.footholds import (
    AttackerForwarding,
    AttackerInboxRule,
    DeviceAudit,
    MfaAudit,
    RuleAudit,
    audit_devices,
    audit_inbox_rules,
    audit_methods,
    describe_device,
    forwarding_step,
    suspicious_window,
)
from playbooks.domain.footholds import describe_method as _describe
from playbooks.domain.permissions import DirectoryRole, privileged_target_note, protected_roles
from playbooks.domain.plan import REVOKE_LIMITS, ActionKind, ActionResult, ActionStatus, ContainmentPlan, Decision, plan_remarks

__all__ = ["ContainmentReport", "Directory", "MfaAudit", "audit_methods", "contain", "suspicious_window"]

log = get_logger("containment")

T = TypeVar("T")

#: Actions Entra ID treats as sensitive on holders of administrator roles.
_SENSITIVE = frozenset(
    {
        ActionKind.REVOKE_SESSIONS,
        ActionKind.DISABLE_ACCOUNT,
        ActionKind.DELETE_FLAGGED_METHODS,
        ActionKind.REQUIRE_PASSWORD_CHANGE,
    }
)


class Directory(Protocol):
    """The Graph operations containment uses (playbooks.adapters.graph.GraphDirectory implements it)."""

    async def get_user(self, user_id: str) -> Reply[DirectoryUser]: ...
    async def privileged_roles(self, user_object_id: str) -> Reply[tuple[DirectoryRole, ...]]: ...
    async def revoke_sessions(self, user_id: str) -> Reply[bool]: ...
    async def list_auth_methods(self, user_id: str) -> Reply[tuple[AuthMethod, ...]]: ...
    async def confirm_compromised(self, user_object_id: str) -> Reply[None]: ...
    async def disable_account(self, user_id: str) -> Reply[None]: ...
    async def delete_auth_method(self, user_id: str, method: AuthMethod) -> Reply[None]: ...
    async def require_password_change(self, user_id: str) -> Reply[None]: ...
    async def list_registered_devices(self, user_id: str) -> Reply[tuple[RegisteredDevice, ...]]: ...
    async def delete_device(self, device: RegisteredDevice) -> Reply[None]: ...
    async def list_inbox_rules(self, user_id: str) -> Reply[tuple[MessageRule, ...]]: ...
    async def delete_inbox_rule(self, user_id: str, rule: MessageRule) -> Reply[None]: ...


@dataclass(frozen=True, slots=True)
class ContainmentReport:
    """What containment did: one result per planned action, plus what it learnt about the target."""

    results: tuple[ActionResult, ...]
    target: DirectoryUser | None = None
    roles: tuple[DirectoryRole, ...] = ()
    audit: MfaAudit | None = None
    notes: tuple[str, ...] = ()
    devices: DeviceAudit | None = None
    rules: RuleAudit | None = None

    @property
    def completed(self) -> frozenset[ActionKind]:
        """The kinds to add to the orchestrator's completed set."""
        return frozenset(r.kind for r in self.results if r.status is ActionStatus.SUCCEEDED)


def _explain(error: GraphError | ValueError) -> str:
    hint = error.hint if isinstance(error, GraphError) else ""
    return f"{error}. Fix: {hint}" if hint else str(error)


def _failure(kind: ActionKind, error: GraphError | ValueError, privileged: str) -> ActionResult:
    if isinstance(error, ValueError):
        return ActionResult(kind, ActionStatus.FAILED, f"not attempted: {error}")
    transient = isinstance(error, TransientUpstreamError)
    status = f"HTTP {error.status}" if error.status else "no response"
    what = f"{error.graph_message} ({status}{', ' + error.code if error.code else ''})"
    if error.forbidden and privileged and kind in _SENSITIVE:
        detail = f"Graph refused: {what}. Reason: {privileged}"
    elif error.hint:
        detail = f"Graph refused: {what}. Fix: {error.hint}" if error.forbidden else f"failed: {what}. {error.hint}"
    else:
        detail = f"failed: {what}"
    return ActionResult(kind, ActionStatus.FAILED, detail, error.request_id, transient)


class _Run:
    """One containment run's state: the target, its roles and the audit, filled in as actions go."""

    def __init__(
        self,
        plan: ContainmentPlan,
        evidence: UserEvidence,
        graph: Directory,
        window: TimeWindow,
        suspect: frozenset[str],
        *,
        attacker_rules: Sequence[AttackerInboxRule] = (),
    ):
        self.plan = plan
        self.attacker_rules = tuple(attacker_rules)
        self.devices: DeviceAudit | None = None
        self.devices_request_id = ""
        self.rules: RuleAudit | None = None
        self.evidence = evidence
        self.graph = graph
        self.window = window
        self.suspect = suspect
        self.user: DirectoryUser | None = None
        self.user_request_id = ""
        self.roles: tuple[DirectoryRole, ...] = ()
        self.privileged = ""
        self.audit: MfaAudit | None = None
        self.audit_request_id = ""
        self.notes: list[str] = []

    @property
    def user_ref(self) -> str:
        return self.user.object_id if self.user else (self.plan.account.object_id or self.plan.account.upn)

    @property
    def object_id(self) -> str:
        return self.user.object_id if self.user else self.plan.account.object_id

    async def lookup(self) -> GraphError | None:
        """Read the user and its roles; a 404 is returned (nothing can be done), other failures become notes."""
        try:
            found = await self.graph.get_user(self.plan.account.object_id or self.plan.account.upn)
        except GraphError as error:
            if error.not_found:
                return error
            self.notes.append(f"could not read the user ({_explain(error)}); acting on {self.user_ref}")
        except ValueError as error:
            self.notes.append(f"could not read the user: {error}")
        else:
            self.user, self.user_request_id = found.value, found.request_id
        if self.user is not None and self.user.external:
            self.notes.append(
                f"{self.user.upn} is an external (guest) user: revoking here does not end sessions issued by the home tenant"
            )
        if not self.object_id:
            self.notes.append("the user's object id is unknown: directory roles were not checked")
            return None
        try:
            self.roles = (await self.graph.privileged_roles(self.object_id)).value
        except (GraphError, ValueError) as error:
            self.notes.append(
                f"could not read the user's directory roles ({_explain(error)}); a refusal on an administrator stays possible"
            )
        self.privileged = privileged_target_note(self.roles)
        if self.privileged:
            self.notes.append(self.privileged)
        return None

    def _caveat(self, kind: ActionKind, detail: str) -> str:
        if self.privileged and kind in _SENSITIVE:
            names = ", ".join(role.name for role in protected_roles(self.roles))
            return f"{detail} (note: the user holds {names})"
        return detail

    async def act(self, kind: ActionKind) -> ActionResult:
        try:
            match kind:
                case ActionKind.REVOKE_SESSIONS:
                    return await self.revoke()
                case ActionKind.AUDIT_MFA_METHODS:
                    return await self.audit_mfa()
                case ActionKind.CONFIRM_COMPROMISED:
                    return await self.confirm()
                case ActionKind.DISABLE_ACCOUNT:
                    return await self.disable()
                case ActionKind.DELETE_FLAGGED_METHODS:
                    return await self.delete_flagged()
                case ActionKind.REQUIRE_PASSWORD_CHANGE:
                    return await self.require_password_change()
                case ActionKind.DELETE_ATTACKER_DEVICES:
                    return await self.delete_devices()
                case ActionKind.REMOVE_INBOX_RULES:
                    return await self.remove_rules()
        except (GraphError, ValueError) as error:
            return _failure(kind, error, self.privileged)

    async def revoke(self) -> ActionResult:
        reply = await self.graph.revoke_sessions(self.user_ref)
        detail = f"sign-in sessions and refresh tokens revoked. {REVOKE_LIMITS}"
        return ActionResult(
            ActionKind.REVOKE_SESSIONS, ActionStatus.SUCCEEDED, self._caveat(ActionKind.REVOKE_SESSIONS, detail), reply.request_id
        )

    async def _audit(self) -> tuple[MfaAudit, str]:
        """List and judge the methods once per run; deletion reuses the audit's listing."""
        if self.audit is None:
            reply = await self.graph.list_auth_methods(self.user_ref)
            self.audit = audit_methods(reply.value, self.evidence.security_events, window=self.window, suspect_ips=self.suspect)
            self.audit_request_id = reply.request_id
        return self.audit, self.audit_request_id

    async def audit_mfa(self) -> ActionResult:
        """The methods, and (read-only, a failure only noted) the devices: both may have grown while the card waited."""
        audit, request_id = await self._audit()
        try:
            devices, _ = await self.audit_device_registrations()
        except (GraphError, ValueError) as error:
            self.notes.append(f"could not list the user's devices again ({_explain(error)})")
            return ActionResult(ActionKind.AUDIT_MFA_METHODS, ActionStatus.SUCCEEDED, audit.summary(), request_id)
        detail = f"{audit.summary()}; devices: {devices.summary()}"
        return ActionResult(ActionKind.AUDIT_MFA_METHODS, ActionStatus.SUCCEEDED, detail, request_id)

    async def confirm(self) -> ActionResult:
        if not self.object_id:
            return ActionResult(
                ActionKind.CONFIRM_COMPROMISED, ActionStatus.FAILED, "not attempted: the user's object id is unknown"
            )
        reply = await self.graph.confirm_compromised(self.object_id)
        return ActionResult(
            ActionKind.CONFIRM_COMPROMISED,
            ActionStatus.SUCCEEDED,
            "user confirmed compromised (user risk: high)",
            reply.request_id,
        )

    async def disable(self) -> ActionResult:
        if self.user is not None and self.user.account_enabled is False:
            return ActionResult(
                ActionKind.DISABLE_ACCOUNT,
                ActionStatus.SUCCEEDED,
                "account already disabled; nothing changed",
                self.user_request_id,
            )
        reply = await self.graph.disable_account(self.user_ref)
        detail = self._caveat(ActionKind.DISABLE_ACCOUNT, "account disabled: every new sign-in is blocked")
        return ActionResult(ActionKind.DISABLE_ACCOUNT, ActionStatus.SUCCEEDED, detail, reply.request_id)

    async def delete_flagged(self) -> ActionResult:
        kind = ActionKind.DELETE_FLAGGED_METHODS
        audit, request_id = await self._audit()
        targets = [f.method for f in audit.flagged if f.method.deletable]
        if not targets:
            return ActionResult(kind, ActionStatus.SKIPPED, "the audit flagged no method to delete", request_id)
        return await self._delete_each(
            kind, targets, lambda method: self.graph.delete_auth_method(self.user_ref, method), _describe, request_id
        )

    async def _delete_each(
        self,
        kind: ActionKind,
        targets: Sequence[T],
        delete: Callable[[T], Awaitable[Reply[None]]],
        describe: Callable[[T], str],
        request_id: str,
    ) -> ActionResult:
        """Delete every target; one already gone (404) counts as done, one refused fails the action but not the rest."""
        done: list[str] = []
        failed: list[ActionResult] = []
        for target in targets:
            try:
                reply = await delete(target)
            except GraphError as error:
                if error.not_found:
                    done.append(f"{describe(target)} was already gone")
                    request_id = error.request_id or request_id
                    continue
                failed.append(_failure(kind, error, self.privileged))
                continue
            done.append(f"deleted {describe(target)}")
            request_id = reply.request_id or request_id
        if failed:
            detail = "; ".join([*done, *(f"{r.detail}" for r in failed)])
            return ActionResult(kind, ActionStatus.FAILED, detail, failed[0].request_id, any(r.transient for r in failed))
        return ActionResult(kind, ActionStatus.SUCCEEDED, self._caveat(kind, "; ".join(done)), request_id)

    async def require_password_change(self) -> ActionResult:
        kind = ActionKind.REQUIRE_PASSWORD_CHANGE
        reply = await self.graph.require_password_change(self.user_ref)
        detail = "the user must change the password at the next sign-in: the phished password no longer gets in"
        return ActionResult(kind, ActionStatus.SUCCEEDED, self._caveat(kind, detail), reply.request_id)

    async def audit_device_registrations(self) -> tuple[DeviceAudit, str]:
        """List and judge the devices once per run; deleting reuses the audit's listing."""
        if self.devices is None:
            reply = await self.graph.list_registered_devices(self.user_ref)
            events = self.evidence.security_events
            self.devices = audit_devices(reply.value, events, window=self.window, suspect_ips=self.suspect)
            self.devices_request_id = reply.request_id
        return self.devices, self.devices_request_id

    async def delete_devices(self) -> ActionResult:
        kind = ActionKind.DELETE_ATTACKER_DEVICES
        audit, request_id = await self.audit_device_registrations()
        targets = [f.device for f in audit.flagged]
        if not targets:
            return ActionResult(
                kind, ActionStatus.SKIPPED, f"no device registered from a suspect IP: {audit.summary()}", request_id
            )
        return await self._delete_each(kind, targets, self.graph.delete_device, describe_device, request_id)

    async def remove_rules(self) -> ActionResult:
        kind = ActionKind.REMOVE_INBOX_RULES
        if not self.attacker_rules:
            return ActionResult(kind, ActionStatus.SKIPPED, "the mailbox audit attributes no inbox rule to a suspect session")
        reply = await self.graph.list_inbox_rules(self.user_ref)
        self.rules = audit_inbox_rules(reply.value, self.attacker_rules)
        gone = [f"rule {g.name!r} is no longer in the inbox" for g in self.rules.gone]
        if not self.rules.flagged:
            return ActionResult(kind, ActionStatus.SUCCEEDED, "; ".join(gone), reply.request_id)
        result = await self._delete_each(
            kind,
            [f.rule for f in self.rules.flagged],
            lambda rule: self.graph.delete_inbox_rule(self.user_ref, rule),
            lambda rule: f"inbox rule {rule.name!r}",
            reply.request_id,
        )
        return replace(result, detail="; ".join([result.detail, *gone]))


def _skipped_as_done(kind: ActionKind) -> ActionResult:
    return ActionResult(kind, ActionStatus.SKIPPED, "already completed by an earlier delivery of this approval")


def _all(plan: ContainmentPlan, status: ActionStatus, detail: str, request_id: str = "") -> tuple[ActionResult, ...]:
    return tuple(ActionResult(a.kind, status, detail, request_id) for a in plan.actions)


async def contain(
    plan: ContainmentPlan,
    decision: Decision,
    evidence: UserEvidence,
    graph: Directory,
    now: datetime,
    *,
    assessment: Assessment,
    completed: Collection[ActionKind] = frozenset(),
    attacker_rules: Sequence[AttackerInboxRule] = (),
    forwarding: Sequence[AttackerForwarding] = (),
) -> ContainmentReport:
    """
    Carry out `plan` as approved by `decision`; `completed` are kinds done by an earlier delivery.
    `attacker_rules` and `forwarding` are what the mailbox audit attributes to the suspect sessions:
    the rules are removed when the plan says so, the forwarding is named as a step by hand (Graph
    v1.0 cannot write it).

    Returns a value for every planned action, in plan order; Graph failures become FAILED results
    with Graph's request-id, never exceptions.
    """
    bound = {"incident": plan.incident_id, "plan": plan.digest[:12], "user": plan.account.key}
    if decision.plan_digest != plan.digest:
        return ContainmentReport(_all(plan, ActionStatus.SKIPPED, "not attempted: the decision was made on a different plan"))
    if not decision.approved:
        who = decision.decided_by_upn or decision.decided_by_object_id
        return ContainmentReport(_all(plan, ActionStatus.SKIPPED, f"not attempted: rejected by {who}"))
    suspect = frozenset(assessment.suspect_ips)
    run = _Run(plan, evidence, graph, suspicious_window(evidence, suspect, now), suspect, attacker_rules=attacker_rules)
    pending = [a.kind for a in plan.actions if a.kind not in completed]
    if pending:
        missing = await run.lookup()
        if missing is not None:
            log.warning("containment_target_missing", **bound, request_id=missing.request_id)
            detail = f"not attempted: user not found in the directory ({plan.account.key})"
            return ContainmentReport(
                tuple(
                    _skipped_as_done(a.kind)
                    if a.kind in completed
                    else ActionResult(a.kind, ActionStatus.FAILED, detail, missing.request_id)
                    for a in plan.actions
                ),
                notes=(detail,),
            )
    results: list[ActionResult] = []
    for action in plan.actions:
        result = _skipped_as_done(action.kind) if action.kind in completed else await run.act(action.kind)
        log.info(
            "containment_action", **bound, action=action.kind.value, status=result.status.value, request_id=result.request_id
        )
        results.append(result)
    return ContainmentReport(
        tuple(results),
        run.user,
        run.roles,
        run.audit,
        (*run.notes, *_afterwards(plan, results, run, forwarding)),
        run.devices,
        run.rules,
    )


def _afterwards(
    plan: ContainmentPlan, results: Sequence[ActionResult], run: _Run, forwarding: Sequence[AttackerForwarding]
) -> list[str]:
    """What the report must say beyond the actions: what revoking leaves, what others did, what a person must do."""
    steps = tuple(dict.fromkeys([*plan.manual, *map(forwarding_step, forwarding)]))
    notes = list(plan_remarks(replace(plan, manual=steps)))
    if run.user is not None and run.user.account_enabled is False and ActionKind.DISABLE_ACCOUNT not in {r.kind for r in results}:
        notes.append("the account was already disabled when containment ran (Defender's attack disruption or an administrator)")
    return notes
