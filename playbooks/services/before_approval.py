"""
What the approver sees before clicking: who the account is, and which MFA methods and devices look
like the attacker's, read from Microsoft Graph (read-only) in the Function App.

The workspace answers what it can first (`IdentityInfo`, `AADRiskyUsers`, `AADUserRiskEvents`, the
AuditLogs registrations in the evidence); Graph fills only the identity facets the workspace could
not answer (`merged`), and lists the methods and devices registered so the footholds audits can tie
them to the suspect addresses. Every read that fails is said, with the permission it lacks; none
stops the others or the card. Containment runs the same audits again when it acts.

Runs as the containment identity (which already reads the user, its roles and its methods); the
local CLI never imports this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from enrichment.domain.identity import IdentityContext, merged
from enrichment.domain.model import Assessment, UserEvidence
from playbooks.adapters.graph import GraphError, Reply
from playbooks.domain.directory import AuthMethod, RegisteredDevice
from playbooks.domain.footholds import AccountFacts, DeviceAudit, MfaAudit, audit_devices, audit_methods, suspicious_window
from playbooks.domain.plan import ContainmentPlan

#: How far back "recent" Entra ID Protection detections go, from the incident time.
RISK_LOOKBACK = timedelta(days=30)


class ReadDirectory(Protocol):
    """The read-only Graph calls made before approval (GraphDirectory implements them)."""

    async def identity_context(self, user_id: str, *, since: datetime) -> IdentityContext: ...
    async def list_auth_methods(self, user_id: str) -> Reply[tuple[AuthMethod, ...]]: ...
    async def list_registered_devices(self, user_id: str) -> Reply[tuple[RegisteredDevice, ...]]: ...


def _said(what: str, error: GraphError | ValueError) -> str:
    hint = f". Fix: {error.hint}" if isinstance(error, GraphError) and error.hint else ""
    return f"{what} could not be read: {error}{hint}"


async def gather_account_facts(
    graph: ReadDirectory,
    evidence: UserEvidence,
    assessment: Assessment,
    now: datetime,
    *,
    workspace: IdentityContext | None = None,
) -> AccountFacts:
    """
    Read the account's identity context (Graph for the facets `workspace` left unanswered) and audit
    its MFA methods and devices against the evidence's registrations from suspect addresses.
    """
    account = evidence.account
    user = account.object_id or account.upn
    identity = workspace or IdentityContext()
    if identity.unanswered:
        identity = merged(identity, await graph.identity_context(user, since=evidence.at - RISK_LOOKBACK))
    suspect = frozenset(assessment.suspect_ips)
    window = suspicious_window(evidence, suspect, now)
    problems: list[str] = []
    mfa: MfaAudit | None = None
    devices: DeviceAudit | None = None
    try:
        methods = (await graph.list_auth_methods(user)).value
        mfa = audit_methods(methods, evidence.security_events, window=window, suspect_ips=suspect)
    except (GraphError, ValueError) as error:
        problems.append(_said("the MFA methods", error))
    try:
        registered = (await graph.list_registered_devices(user)).value
        devices = audit_devices(registered, evidence.security_events, window=window, suspect_ips=suspect)
    except (GraphError, ValueError) as error:
        problems.append(_said("the registered devices", error))
    return AccountFacts(identity, mfa, devices, tuple(problems))


async def facts_before_approval(
    graph: ReadDirectory,
    accounts: Sequence[tuple[UserEvidence, Assessment, ContainmentPlan]],
    now: datetime,
    *,
    workspace: Mapping[int, IdentityContext] | None = None,
) -> dict[int, AccountFacts]:
    """
    The facts of every account whose plan waits for an approval (by account index); the others get
    none, so a benign incident costs no Graph call. `workspace` is what the workspace's tables
    answered per account.
    """
    known = workspace or {}
    found: dict[int, AccountFacts] = {}
    for index, (evidence, assessment, plan) in enumerate(accounts):
        if plan.needs_approval:
            found[index] = await gather_account_facts(graph, evidence, assessment, now, workspace=known.get(index))
    return found
