"""
Apply an approved containment plan through the Graph adapter, one result per action.

Gather -> decide -> apply, at the scale of one user: read the target and its directory roles,
decide (pure: which methods look like the attacker's persistence, which roles put the user out of
the app's reach), then act in plan order: revoke sessions, audit MFA methods, and the optional
actions the plan holds. A failure of one action never stops the next: revoking sessions matters
even when the audit cannot read methods.

Idempotency (approvals are delivered more than once, activities are retried):

* the caller passes the action kinds already completed for this plan (the orchestrator keeps
  them) and those are reported SKIPPED, not repeated;
* revoking sessions is safe to repeat anyway (it moves signInSessionsValidFromDateTime to now);
* disabling reads accountEnabled first and does nothing to a disabled account;
* deleting a method that is already gone (404) counts as done;
* confirming a user compromised twice leaves the risk at high;
* auditing only reads.

Nothing acts unless the decision approves exactly this plan (same digest).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from common.logs import get_logger
from common.times import utc_text
from enrichment.domain.model import Assessment, SecurityEvent, TimeWindow, UserEvidence
from playbooks.adapters.graph import AuthMethod, DirectoryUser, GraphError, Reply
from playbooks.domain.permissions import DirectoryRole, privileged_target_note, protected_roles
from playbooks.domain.plan import ActionKind, ActionResult, ActionStatus, ContainmentPlan, Decision

log = get_logger("containment")

#: AuditLogs operations that add a method (see enrichment.queries.kql.SECURITY_OPERATIONS for all we read).
REGISTRATION_OPERATIONS = frozenset(
    {"user registered security info", "user registered all required security info", "admin registered security info"}
)
#: How far a method's createdDateTime and its AuditLogs registration may be apart and still be the same event.
MATCH_TOLERANCE = timedelta(minutes=10)

#: Actions Entra ID treats as sensitive on holders of administrator roles.
_SENSITIVE = frozenset({ActionKind.REVOKE_SESSIONS, ActionKind.DISABLE_ACCOUNT, ActionKind.DELETE_FLAGGED_METHODS})


class Directory(Protocol):
    """The Graph operations containment uses (playbooks.adapters.graph.GraphDirectory implements it)."""

    async def get_user(self, user_id: str) -> Reply[DirectoryUser]: ...
    async def privileged_roles(self, user_object_id: str) -> Reply[tuple[DirectoryRole, ...]]: ...
    async def revoke_sessions(self, user_id: str) -> Reply[bool]: ...
    async def list_auth_methods(self, user_id: str) -> Reply[tuple[AuthMethod, ...]]: ...
    async def confirm_compromised(self, user_object_id: str) -> Reply[None]: ...
    async def disable_account(self, user_id: str) -> Reply[None]: ...
    async def delete_auth_method(self, user_id: str, method: AuthMethod) -> Reply[None]: ...


@dataclass(frozen=True, slots=True)
class MethodFinding:
    """A method that looks like the attacker's, with every reason that says so."""

    method: AuthMethod
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MfaAudit:
    """
    The MFA audit's verdict on each method.

    `unmatched` are registrations from a suspect IP that no listed method could be tied to (phone,
    e-mail and OATH methods carry no creation time): an analyst must look at them, nothing is
    deleted on their account. `suspect_changes` are the other security-info changes from suspect IPs.
    """

    window: TimeWindow
    methods: tuple[AuthMethod, ...]
    flagged: tuple[MethodFinding, ...]
    unmatched: tuple[SecurityEvent, ...] = ()
    suspect_changes: tuple[SecurityEvent, ...] = ()

    def summary(self) -> str:
        parts = [f"{len(self.methods)} method(s) registered"]
        if self.flagged:
            parts.append(
                f"{len(self.flagged)} flagged: "
                + "; ".join(f"{_describe(f.method)} ({', '.join(f.reasons)})" for f in self.flagged)
            )
        else:
            parts.append(
                f"none registered between {utc_text(self.window.start)} and {utc_text(self.window.end)} or from a suspect IP"
            )
        parts.extend(
            f"review: {e.operation} from suspect IP {e.actor_ip} at {utc_text(e.time)} matches no listed method"
            for e in self.unmatched
        )
        parts.extend(f"review: {e.operation} from suspect IP {e.actor_ip} at {utc_text(e.time)}" for e in self.suspect_changes)
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class ContainmentReport:
    """What containment did: one result per planned action, plus what it learnt about the target."""

    results: tuple[ActionResult, ...]
    target: DirectoryUser | None = None
    roles: tuple[DirectoryRole, ...] = ()
    audit: MfaAudit | None = None
    notes: tuple[str, ...] = ()

    @property
    def completed(self) -> frozenset[ActionKind]:
        """The kinds to add to the orchestrator's completed set."""
        return frozenset(r.kind for r in self.results if r.status is ActionStatus.SUCCEEDED)


def _describe(method: AuthMethod) -> str:
    return f"{method.kind} method {method.label!r}" if method.label else f"{method.kind} method {method.id}"


def suspicious_window(evidence: UserEvidence, suspect_ips: Collection[str], now: datetime) -> TimeWindow:
    """
    From the first sign-in from a suspect IP (or the evidence window's start) until now.

    It runs to `now`, not to the end of the evidence window, because the attacker may register a
    method while the approval is pending.
    """
    firsts = [s.first for s in evidence.signins if s.ip in suspect_ips]
    start = min(firsts) if firsts else evidence.window.start
    return TimeWindow(start, max(now, evidence.window.end, start))


def audit_methods(
    methods: Iterable[AuthMethod],
    events: Iterable[SecurityEvent],
    *,
    window: TimeWindow,
    suspect_ips: Collection[str],
    tolerance: timedelta = MATCH_TOLERANCE,
) -> MfaAudit:
    """
    Flag methods added during the suspicious window or registered from a suspect IP (pure).

    A method is tied to an AuditLogs registration when its createdDateTime is within `tolerance`
    of the event. The password is never flagged: it is not a registration and cannot be deleted.
    """
    listed = tuple(methods)
    changes = [e for e in events if e.actor_ip and e.actor_ip in suspect_ips and e.result.lower() in ("success", "")]
    registrations = [e for e in changes if e.operation.lower() in REGISTRATION_OPERATIONS]
    matched: set[SecurityEvent] = set()
    flagged: list[MethodFinding] = []
    for method in listed:
        created = method.created_at
        if method.kind == "password" or created is None:
            continue
        reasons: list[str] = []
        if window.contains(created):
            reasons.append(f"registered {utc_text(created)}, inside the suspicious window")
        for event in registrations:
            if abs(created - event.time) <= tolerance:
                matched.add(event)
                reasons.append(f"registered from suspect IP {event.actor_ip} at {utc_text(event.time)}")
        if reasons:
            flagged.append(MethodFinding(method, tuple(dict.fromkeys(reasons))))
    unmatched = tuple(e for e in registrations if e not in matched)
    others = tuple(e for e in changes if e.operation.lower() not in REGISTRATION_OPERATIONS)
    return MfaAudit(window, listed, tuple(flagged), unmatched, others)


def _explain(error: GraphError | ValueError) -> str:
    hint = error.hint if isinstance(error, GraphError) else ""
    return f"{error}. Fix: {hint}" if hint else str(error)


def _failure(kind: ActionKind, error: GraphError | ValueError, privileged: str) -> ActionResult:
    if isinstance(error, ValueError):
        return ActionResult(kind, ActionStatus.FAILED, f"not attempted: {error}")
    status = f"HTTP {error.status}" if error.status else "no response"
    what = f"{error.graph_message} ({status}{', ' + error.code if error.code else ''})"
    if error.forbidden and privileged and kind in _SENSITIVE:
        detail = f"Graph refused: {what}. Reason: {privileged}"
    elif error.hint:
        detail = f"Graph refused: {what}. Fix: {error.hint}" if error.forbidden else f"failed: {what}. {error.hint}"
    else:
        detail = f"failed: {what}"
    return ActionResult(kind, ActionStatus.FAILED, detail, error.request_id)


class _Run:
    """One containment run's state: the target, its roles and the audit, filled in as actions go."""

    def __init__(
        self, plan: ContainmentPlan, evidence: UserEvidence, graph: Directory, window: TimeWindow, suspect: frozenset[str]
    ):
        self.plan = plan
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
        except (GraphError, ValueError) as error:
            return _failure(kind, error, self.privileged)

    async def revoke(self) -> ActionResult:
        reply = await self.graph.revoke_sessions(self.user_ref)
        detail = (
            "sign-in sessions and refresh tokens revoked; access tokens already issued stay valid until they expire "
            "(about an hour, sooner for apps that support continuous access evaluation)"
        )
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
        audit, request_id = await self._audit()
        return ActionResult(ActionKind.AUDIT_MFA_METHODS, ActionStatus.SUCCEEDED, audit.summary(), request_id)

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
        done: list[str] = []
        failed: list[ActionResult] = []
        for method in targets:
            try:
                reply = await self.graph.delete_auth_method(self.user_ref, method)
            except GraphError as error:
                if error.not_found:
                    done.append(f"{_describe(method)} was already gone")
                    request_id = error.request_id or request_id
                    continue
                failed.append(_failure(kind, error, self.privileged))
                continue
            done.append(f"deleted {_describe(method)}")
            request_id = reply.request_id or request_id
        if failed:
            detail = "; ".join([*done, *(f"{r.detail}" for r in failed)])
            return ActionResult(kind, ActionStatus.FAILED, detail, failed[0].request_id)
        return ActionResult(kind, ActionStatus.SUCCEEDED, self._caveat(kind, "; ".join(done)), request_id)


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
) -> ContainmentReport:
    """
    Carry out `plan` as approved by `decision`; `completed` are kinds done by an earlier delivery.

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
    run = _Run(plan, evidence, graph, suspicious_window(evidence, suspect, now), suspect)
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
    return ContainmentReport(tuple(results), run.user, run.roles, run.audit, tuple(run.notes))
