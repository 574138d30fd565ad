"""
The enrichment pipeline for one incident, shared by the Function's activities and the local run.

Gather (three queries for all the incident's accounts) -> decide (assess each account, plan its
containment) -> render (the comment, the result document, a compact summary). Nothing here writes
anywhere: the caller applies the result, to Sentinel (the activity) or to files (`python -m
playbooks run`). So the laptop run is the same code as production, minus the write.

Expected failures are values: `Failure` carries what failed, the error and the operator's hint, so
an activity can return it to the orchestration instead of raising (a raise would be retried by
nobody useful and would lose the hint). This module must not import azure.functions or the Graph
SDK: the local run imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from common.errors import InputError, SettingsError, TransientUpstreamError, UpstreamError
from common.settings import Settings
from enrichment.domain.model import Assessment, UserEvidence, Verdict
from enrichment.ports import QueryEngine
from enrichment.render.story import Approval, Context, Identity
from playbooks.domain.incident import IncidentRef, account_json, overall_verdict
from playbooks.domain.plan import ContainmentPlan, plan_containment
from playbooks.render import comment

#: How many suspect IPs and signals the compact summary keeps (the comment has the rest).
SUMMARY_IPS = 20
SUMMARY_SIGNALS = 3


@dataclass(frozen=True, slots=True)
class AccountOutcome:
    """One account: its evidence, the assessment made from it, and the containment proposed."""

    evidence: UserEvidence
    assessment: Assessment
    plan: ContainmentPlan


@dataclass(frozen=True, slots=True)
class Enrichment:
    """Everything decided about one incident."""

    incident: IncidentRef
    accounts: tuple[AccountOutcome, ...]
    warnings: tuple[str, ...] = ()

    @property
    def verdict(self) -> Verdict | None:
        return overall_verdict(a.assessment.verdict for a in self.accounts)


@dataclass(frozen=True, slots=True)
class Failure:
    """
    Why a step did not complete: `what` was being done, `error` says what went wrong, `hint` what
    to check. `transient` failures (throttling, timeouts, 5xx) may succeed on a re-run.
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

    def to_json(self) -> dict[str, Any]:
        return {
            "what": self.what,
            "error": self.error,
            "hint": self.hint,
            "service": self.service,
            "status": self.status,
            "transient": self.transient,
        }

    @classmethod
    def from_json(cls, data: Any) -> Failure:
        if not isinstance(data, dict):
            return cls(
                "run the enrichment",
                f"an activity answered {str(data)[:200]!r}",
                "report this with the Function App's logs",
                "bug",
            )
        status = data.get("status")
        return cls(
            str(data.get("what") or "run the enrichment"),
            str(data.get("error") or "unknown error"),
            str(data.get("hint") or ""),
            str(data.get("service") or ""),
            status if isinstance(status, int) else None,
            bool(data.get("transient")),
        )


# -- gather and decide ------------------------------------------------------------------------------


def enrich(incident: IncidentRef, engine: QueryEngine, settings: Settings) -> Enrichment:
    """
    Gather evidence for every account of `incident`, assess each, and plan its containment.

    Raises `UpstreamError` when the engine gets nothing usable and `InputError` for unusable data;
    an incident without accounts gives an enrichment without accounts.
    """
    from enrichment.domain.scoring import assess
    from enrichment.services.gather import gather_evidence

    if not incident.accounts:
        return Enrichment(incident, ())
    outcomes = []
    for evidence in gather_evidence(engine, incident.accounts, incident.at, settings):
        assessment = assess(evidence, settings)
        outcomes.append(
            AccountOutcome(evidence, assessment, plan_containment(incident.name, evidence.account, assessment, settings))
        )
    return Enrichment(incident, tuple(outcomes))


# -- render ---------------------------------------------------------------------------------------------


def account_context(enrichment: Enrichment, index: int, approvals: Mapping[int, Mapping[str, Any]] | None = None) -> Context:
    """
    What the brief of account `index` is told beyond its evidence: the incident's addresses, the
    person's display name, and where its approval waits (`approvals`: the requests
    `approval.approval_requests` made, by account index) or why no card could be made.
    """
    incident = enrichment.incident
    outcome = enrichment.accounts[index]
    request = (approvals or {}).get(index)
    waiting: Approval | None = None
    if request is not None:
        deadline = request.get("expires_at")
        waiting = Approval(
            deadline=datetime.fromisoformat(str(deadline)) if deadline and "card" in request else None,
            problem=str(request.get("problem") or ""),
        )
    name = incident.display_name(outcome.evidence.account)
    return Context(incident_ips=incident.ips, approval=waiting, identity=Identity(display_name=name) if name else None)


def comment_html(
    enrichment: Enrichment,
    settings: Settings,
    *,
    generated_at: datetime,
    approvals: Mapping[int, Mapping[str, Any]] | None = None,
) -> str:
    """The incident comment: the enrichment, or the "no account" notice when there was nobody to assess."""
    warnings = _warnings(enrichment)
    if not enrichment.accounts:
        return comment.no_account_comment(
            enrichment.incident, max_chars=settings.comment_max_chars, generated_at=generated_at, warnings=warnings
        )
    reports = [
        comment.AccountReport(a.evidence, a.assessment, account_context(enrichment, i, approvals), settings.tenant_id)
        for i, a in enumerate(enrichment.accounts)
    ]
    return comment.enrichment_comment(
        enrichment.incident,
        reports,
        max_chars=settings.comment_max_chars,
        generated_at=generated_at,
        warnings=warnings,
        tuning=settings.scoring_changes(),
    )


def _warnings(enrichment: Enrichment) -> tuple[str, ...]:
    """What intake left out (accounts over REPLAY_MAX_ACCOUNTS, unlisted names and addresses), then the run's own warnings."""
    return (*enrichment.incident.intake_notes(), *enrichment.warnings)


def report_html(
    enrichment: Enrichment,
    settings: Settings,
    *,
    generated_at: datetime,
    approvals: Mapping[int, Mapping[str, Any]] | None = None,
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


def failure_html(incident: IncidentRef, failure: Failure, settings: Settings, *, generated_at: datetime) -> str:
    return comment.failure_comment(
        incident,
        what=failure.what,
        error=failure.error,
        hint=failure.hint,
        max_chars=settings.comment_max_chars,
        generated_at=generated_at,
    )


def plan_json(plan: ContainmentPlan) -> dict[str, Any]:
    return {
        "needs_approval": plan.needs_approval,
        "reason": plan.reason,
        "actions": [{"kind": a.kind.value, "description": a.description, "destructive": a.destructive} for a in plan.actions],
        "digest": plan.digest,
    }


def incident_json(incident: IncidentRef) -> dict[str, Any]:
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
                "plan": plan_json(a.plan),
            }
            for a in enrichment.accounts
        ],
        "unresolved_accounts": list(enrichment.incident.unresolved),
        "not_assessed_accounts": [account_json(a) for a in enrichment.incident.not_assessed],
        "not_assessed_total": enrichment.incident.not_assessed_total,
        "warnings": list(_warnings(enrichment)),
    }


def summary(enrichment: Enrichment) -> dict[str, Any]:
    """
    The compact result the activity returns to the orchestration (Durable keeps it in its history,
    so it carries decisions and plans, not evidence). The approval step reads `accounts[*].plan`.
    """
    verdict = enrichment.verdict
    return {
        "verdict": verdict.value if verdict is not None else None,
        "accounts": [
            {
                "account": account_json(a.evidence.account),
                "verdict": a.assessment.verdict.value,
                "score": a.assessment.score,
                "suspect_ips": list(a.assessment.suspect_ips[:SUMMARY_IPS]),
                "signals": [s.detail for s in a.assessment.strongest(SUMMARY_SIGNALS)],
                "plan": plan_json(a.plan),
            }
            for a in enrichment.accounts
        ],
        "warnings": len(enrichment.warnings) + sum(len(a.evidence.warnings) for a in enrichment.accounts),
    }
