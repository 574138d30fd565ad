"""
The enrichment pipeline for one incident, shared by the Function's activities and the local run.

Gather (three queries for all the incident's accounts, then the scope of the suspect sessions) ->
decide (assess each account, plan its containment) -> render (the comment, the result document, a compact summary). Nothing here writes
anywhere: the caller applies the result, to Sentinel (the activity) or to files (`python -m
playbooks run`). So the laptop run is the same code as production, minus the write.

Expected failures are raised as our errors (`common.errors`); the activity wrapper turns them into
the workflow's `Failure` value with the operator's hint. This module must not import
azure.functions or the Graph SDK: the local run imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from common.errors import ReplayError
from common.settings import Settings
from enrichment.domain.attribution import attacker_forwarding, attacker_rules, attribute
from enrichment.domain.model import Account, Assessment, UserEvidence, Verdict
from enrichment.ports import QueryEngine
from enrichment.render.story import Approval, Context, Identity
from playbooks.domain import codec
from playbooks.domain.footholds import AccountFacts, AttackerForwarding, AttackerInboxRule
from playbooks.domain.incident import SentinelIncident, account_json, overall_verdict
from playbooks.domain.plan import ContainmentPlan, attack_disruption, plan_containment
from playbooks.domain.workflow import AccountSummary, ApprovalInput, EnrichmentSummary, Failure, FollowUp
from playbooks.render import comment
from playbooks.render.identity import identity_of

if TYPE_CHECKING:
    from playbooks.adapters.graph import DirectoryUser, Reply

#: How many suspect IPs and signals the compact summary keeps (the comment has the rest).
SUMMARY_IPS = 20
SUMMARY_SIGNALS = 3


@dataclass(frozen=True, slots=True)
class AccountOutcome:
    """
    One account: its evidence, the assessment made from it, and the containment proposed; `facts`
    (who the person is, the methods and devices registered) once read before approval, and the
    mailbox footholds the audit attributes to the suspect sessions.
    """

    evidence: UserEvidence
    assessment: Assessment
    plan: ContainmentPlan
    facts: AccountFacts | None = None
    inbox_rules: tuple[AttackerInboxRule, ...] = ()
    forwarding: tuple[AttackerForwarding, ...] = ()


def mailbox_footholds(
    evidence: UserEvidence, assessment: Assessment
) -> tuple[tuple[AttackerInboxRule, ...], tuple[AttackerForwarding, ...]]:
    """The inbox rules and mailbox forwarding the scope attributes to the suspect sessions: what containment removes or names."""
    sessions = attribute(evidence, assessment.suspect_ips)
    rules = tuple(
        AttackerInboxRule(rule.mailbox, rule.name, rule.time, act.ip, rule.operation) for rule, act in attacker_rules(sessions)
    )
    forwarding = tuple(
        AttackerForwarding(forward.mailbox, forward.address, forward.time, act.ip)
        for forward, act in attacker_forwarding(sessions)
    )
    return rules, forwarding


@dataclass(frozen=True, slots=True)
class Enrichment:
    """Everything decided about one incident."""

    incident: SentinelIncident
    accounts: tuple[AccountOutcome, ...]
    warnings: tuple[str, ...] = ()

    @property
    def verdict(self) -> Verdict | None:
        return overall_verdict(a.assessment.verdict for a in self.accounts)


# -- gather and decide ------------------------------------------------------------------------------


def enrich(incident: SentinelIncident, engine: QueryEngine, settings: Settings) -> Enrichment:
    """
    Gather evidence for every account of `incident`, assess each, and plan its containment.

    Raises `UpstreamError` when the engine gets nothing usable and `InputError` for unusable data;
    an incident without accounts gives an enrichment without accounts.
    """
    from enrichment.services.investigate import investigate

    if not incident.accounts:
        return Enrichment(incident, ())
    disruption = attack_disruption(incident.title, incident.labels)
    outcomes = []
    for evidence, assessment in investigate(engine, incident.accounts, incident.at, settings):
        plan = plan_containment(incident.name, evidence.account, assessment, settings, disruption=disruption)
        rules, forwarding = mailbox_footholds(evidence, assessment)
        outcomes.append(AccountOutcome(evidence, assessment, plan, inbox_rules=rules, forwarding=forwarding))
    return Enrichment(incident, tuple(outcomes))


def with_facts(enrichment: Enrichment, facts: Mapping[int, AccountFacts], warnings: tuple[str, ...] = ()) -> Enrichment:
    """The enrichment with the facts read before approval (by account index) and what could not be read."""
    accounts = tuple(replace(a, facts=facts.get(i, a.facts)) for i, a in enumerate(enrichment.accounts))
    return replace(enrichment, accounts=accounts, warnings=(*enrichment.warnings, *warnings))


def account_identity(enrichment: Enrichment, index: int) -> Identity | None:
    """Who account `index` is: the facts read before approval, else the display name the incident gave."""
    outcome = enrichment.accounts[index]
    name = enrichment.incident.display_name(outcome.evidence.account)
    if outcome.facts is not None:
        return identity_of(outcome.facts, name)
    return Identity(display_name=name) if name else None


# -- who the suspect is ------------------------------------------------------------------------------


class SuspectDirectory(Protocol):
    """The directory read that names a suspect by object id (`playbooks.adapters.graph.GraphDirectory` is the real one)."""

    async def identify(self, user_id: str) -> Reply[DirectoryUser]: ...


def unresolved_suspects(enrichment: Enrichment) -> list[int]:
    """The accounts whose plan needs approval but names no object id (their sign-in rows had no UserId)."""
    return [i for i, a in enumerate(enrichment.accounts) if a.plan.needs_approval and not a.plan.account.object_id]


async def resolve_suspects(enrichment: Enrichment, directory: SuspectDirectory) -> tuple[Enrichment, dict[int, str]]:
    """
    Resolve the object id of every suspect whose plan needs approval and lacks it, before any card
    is made: a card without the suspect's object id cannot tell the suspect from an approver by id,
    and would bind the decision to a UPN that can be renamed. The plan is made again for the
    resolved account (its digest covers the object id). An account the directory cannot resolve
    gets a problem instead, and no card.
    """
    outcomes = list(enrichment.accounts)
    problems: dict[int, str] = {}
    for index in unresolved_suspects(enrichment):
        outcome = outcomes[index]
        account = outcome.plan.account
        try:
            found = (await directory.identify(account.upn)).value
        except ReplayError as error:
            problems[index] = (
                f"the suspect {account.upn} has no Entra object id in the sign-in logs and the directory could not resolve it "
                f"({error}); no approval card was posted, because a card without the object id cannot tell the suspect "
                "apart from an approver; contain the account by hand"
            )
            continue
        resolved = Account(account.upn or found.upn, found.object_id)
        outcomes[index] = replace(outcome, plan=replace(outcome.plan, account=resolved))
    return replace(enrichment, accounts=tuple(outcomes)), problems


# -- render ---------------------------------------------------------------------------------------------


def account_context(
    enrichment: Enrichment,
    index: int,
    approvals: Mapping[int, ApprovalInput] | None = None,
    earlier: Mapping[str, str] | None = None,
) -> Context:
    """
    What the brief of account `index` is told beyond its evidence: the incident's addresses, the
    person's display name, and where its approval waits (`approvals`: the requests
    `approval.approval_requests` made, by account index), why no card could be made, or the earlier
    run's request for the same plan (`earlier`: plan digest -> request id).
    """
    incident = enrichment.incident
    request = (approvals or {}).get(index)
    waiting: Approval | None = None
    if request is not None:
        waiting = Approval(deadline=request.expires_at if request.card is not None else None, problem=request.problem)
    elif (asked := (earlier or {}).get(enrichment.accounts[index].plan.digest)) is not None:
        waiting = Approval(earlier=asked or "of an earlier run")
    return Context(incident_ips=incident.ips, approval=waiting, identity=account_identity(enrichment, index))


def follow_up_note(follow_up: FollowUp | None) -> str:
    """What a follow-up run's comment says first: why it was written, and that the earlier records stand."""
    if follow_up is None:
        return ""
    count = len(follow_up.new_alert_ids)
    shown = ", ".join(follow_up.new_alert_ids[:5]) + (f" and {count - 5} more" if count > 5 else "")
    return (
        f"Follow-up for {count} newly added alert(s) ({shown}): the incident was enriched again as it is now, "
        "every account included; the earlier enrichment comment stays as it was written."
    )


def comment_html(
    enrichment: Enrichment,
    settings: Settings,
    *,
    generated_at: datetime,
    approvals: Mapping[int, ApprovalInput] | None = None,
    earlier: Mapping[str, str] | None = None,
    follow_up: FollowUp | None = None,
) -> str:
    """
    The incident comment: the enrichment, or the "no account" notice when there was nobody to assess.
    A follow-up's (`follow_up`) says first that it is one; `earlier` as in `account_context`.
    """
    warnings = _warnings(enrichment)
    if not enrichment.accounts:
        return comment.no_account_comment(
            enrichment.incident, max_chars=settings.comment_max_chars, generated_at=generated_at, warnings=warnings
        )
    reports = [
        comment.AccountReport(a.evidence, a.assessment, account_context(enrichment, i, approvals, earlier), settings.tenant_id)
        for i, a in enumerate(enrichment.accounts)
    ]
    return comment.enrichment_comment(
        enrichment.incident,
        reports,
        max_chars=settings.comment_max_chars,
        generated_at=generated_at,
        warnings=warnings,
        tuning=settings.scoring_changes(),
        lead=follow_up_note(follow_up),
    )


def _warnings(enrichment: Enrichment) -> tuple[str, ...]:
    """What intake left out (accounts over REPLAY_MAX_ACCOUNTS, unlisted names and addresses), then the run's own warnings."""
    return (*enrichment.incident.intake_notes(), *enrichment.warnings)


def report_html(
    enrichment: Enrichment,
    settings: Settings,
    *,
    generated_at: datetime,
    approvals: Mapping[int, ApprovalInput] | None = None,
) -> str:
    """The offline report of `playbooks run`: the comment's content with a timeline picture per account."""
    from enrichment.render.report import ReportSection
    from enrichment.render.report import report_html as render
    from enrichment.render.story import brief

    sections = []
    notes = list(_warnings(enrichment))
    for index, outcome in enumerate(enrichment.accounts):
        report = comment.AccountReport(
            outcome.evidence, outcome.assessment, account_context(enrichment, index, approvals), settings.tenant_id
        )
        found, problem = comment.account_pivot(report, enrichment.incident)
        if problem:
            notes.append(f"{outcome.evidence.account.key}: {problem}")
        sections.append(
            ReportSection(
                outcome.evidence, outcome.assessment, brief(outcome.evidence, outcome.assessment, report.context), found
            )
        )
    incident = enrichment.incident
    title = f"Token replay enrichment: incident {incident.label}" + (f" {incident.title}" if incident.title else "")
    return render(title, sections, generated_at=generated_at, notes=notes)


def failure_html(incident: SentinelIncident, failure: Failure, settings: Settings, *, generated_at: datetime) -> str:
    return comment.failure_comment(
        incident,
        what=failure.what,
        error=failure.error,
        hint=failure.hint,
        max_chars=settings.comment_max_chars,
        generated_at=generated_at,
    )


def incident_json(incident: SentinelIncident) -> dict[str, Any]:
    return {"id": incident.resource_id, "name": incident.name, "number": incident.number, "title": incident.title}


def result_document(enrichment: Enrichment) -> dict[str, Any]:
    """`result.json` of the local run: the incident, per account the triage document and the plan."""
    from enrichment.render.triage import triage_document

    return {
        "incident": incident_json(enrichment.incident),
        "accounts": [
            {
                "account": account_json(a.evidence.account),
                "triage": triage_document(a.evidence, a.assessment),
                "plan": codec.plan_document(a.plan),
            }
            for a in enrichment.accounts
        ],
        "unresolved_accounts": list(enrichment.incident.unresolved),
        "not_assessed_accounts": [account_json(a) for a in enrichment.incident.not_assessed],
        "not_assessed_total": enrichment.incident.not_assessed_total,
        "warnings": list(_warnings(enrichment)),
    }


def summary(enrichment: Enrichment) -> EnrichmentSummary:
    """
    The compact result the activity returns to the orchestration (Durable keeps it in its history,
    so it carries decisions and plans, not evidence).
    """
    return EnrichmentSummary(
        enrichment.verdict,
        tuple(
            AccountSummary(
                a.evidence.account,
                a.assessment.verdict,
                a.assessment.score,
                tuple(a.assessment.suspect_ips[:SUMMARY_IPS]),
                tuple(s.detail for s in a.assessment.strongest(SUMMARY_SIGNALS)),
                a.plan,
            )
            for a in enrichment.accounts
        ),
        len(enrichment.warnings) + sum(len(a.evidence.warnings) for a in enrichment.accounts),
    )
