"""
The Durable orchestration of one incident, and the activities that do its I/O (a `df.Blueprint`).

    [entities from Sentinel, if the trigger had none] -> enrich (gather, score, write the comment)
        -> labels / severity -> [an approval sub-orchestration per account whose plan needs one] -> end

The orchestrator is a deterministic generator: no I/O, no clock but `context.current_utc_datetime`,
no settings. It reads typed values (`playbooks.domain.workflow`) through `steps.call`; activities
never raise for an expected failure: they answer a `Failure`, and the orchestrator then writes the
failure comment (what failed, what to check) and ends, so a broken workspace or a missing role
never turns into a retry loop. An activity that raises anyway (a defect) is handled the same way.

Every comment this orchestration writes uses ONE comment id per incident (`comment_id(incident,
"enrichment")`): the enrichment, the "no account" notice and the failure notice replace each other,
so a re-run after a failure leaves the enrichment, not a stale error, and duplicates never pile up.

Approval: the enrichment activity prepares, for each account whose plan needs approval, the request
(`playbooks.domain.approval.approval_requests`: the pending card, the deadline, the sub-orchestration id),
timed from this orchestration's clock when it asked for the enrichment. After the labels, one
approval sub-orchestration per request (`playbooks.functions.approval_flow`) posts the card, waits for the
decision or the deadline, contains and comments; this orchestration waits for all of them, so a
duplicate delivery of the incident finds it running and starts nothing.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from common.errors import InputError, ReplayError
from common.logs import get_logger
from playbooks import wiring
from playbooks.domain import approval, codec
from playbooks.domain.incident import SentinelIncident, comment_id, incident_update, resolve_accounts
from playbooks.domain.workflow import (
    APPROVAL_ORCHESTRATOR,
    INCIDENT_ORCHESTRATOR,
    ApprovalClock,
    ApprovalEnd,
    ApprovalInput,
    ApprovalOutcome,
    CommentWritten,
    Enriched,
    EnrichInput,
    EntitiesFound,
    EntitiesInput,
    Failure,
    IncidentRunResult,
    LabelInput,
    Labelled,
    LabelState,
    Notice,
    NoticeInput,
    RunEnd,
)
from playbooks.functions.steps import Payload, Step, call
from playbooks.services import enrich

bp = df.Blueprint()

ORCHESTRATOR = INCIDENT_ORCHESTRATOR
ENTITIES = Step("incident_entities", "read the incident's entities from Sentinel", EntitiesInput, EntitiesFound)
ENRICH = Step("enrich_incident", "enrich the incident", EnrichInput, Enriched)
LABELS = Step("label_incident", "update the incident's labels", LabelInput, Labelled)
NOTICE = Step("comment_incident", "write the notice comment", NoticeInput, CommentWritten)
ACTIVITY_ENTITIES = ENTITIES.name
ACTIVITY_ENRICH = ENRICH.name
ACTIVITY_LABELS = LABELS.name
ACTIVITY_NOTICE = NOTICE.name

#: The purpose part of the one comment id this orchestration writes.
COMMENT_PURPOSE = "enrichment"

_log = get_logger("orchestration")


# -- the orchestrator ------------------------------------------------------------------------------


@bp.orchestration_trigger(context_name="context", orchestration=ORCHESTRATOR)  # type: ignore[untyped-decorator]
def incident_orchestrator(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Payload]:
    """The Durable entry point; the steps are in `orchestrate`."""
    wiring.configure()
    result = yield from orchestrate(context)
    return codec.encode(result)  # type: ignore[no-any-return]


def orchestrate(context: df.DurableOrchestrationContext) -> Generator[Any, Any, IncidentRunResult]:
    """Entities if needed, enrichment and comment, labels; on a failure, the failure comment."""
    incident = codec.decode(SentinelIncident, context.get_input())
    if incident.accounts is None:
        found = yield from call(context, ENTITIES, EntitiesInput(incident))
        if isinstance(found, Failure):
            return (yield from _failed(context, incident, found))
        incident = found.incident
    if not incident.accounts:
        notice = yield from call(context, NOTICE, NoticeInput(incident, Notice.NO_ACCOUNT))
        written = not isinstance(notice, Failure)
        return _finish(context, IncidentRunResult(incident.number, incident.name, RunEnd.NO_ACCOUNT, comment_written=written))

    clock = ApprovalClock(context.instance_id, context.current_utc_datetime)
    enriched = yield from call(context, ENRICH, EnrichInput(incident, clock))
    if isinstance(enriched, Failure):
        return (yield from _failed(context, incident, enriched))
    summary = enriched.summary
    labels = LabelState.UNCHANGED
    if summary.verdict is not None:
        labelled = yield from call(context, LABELS, LabelInput(incident, summary.verdict))
        if isinstance(labelled, Failure):
            labels = LabelState.FAILED
        elif labelled.changed:
            labels = LabelState.UPDATED
    approvals = yield from _approvals(context, enriched.approvals)
    result = IncidentRunResult(
        incident.number,
        incident.name,
        RunEnd.ENRICHED,
        summary.verdict,
        labels,
        summary.accounts,
        approvals,
        comment_written=True,
    )
    return _finish(context, result)


def _approvals(
    context: df.DurableOrchestrationContext, requests: tuple[ApprovalInput, ...]
) -> Generator[Any, Any, tuple[ApprovalOutcome, ...]]:
    """One approval sub-orchestration per prepared request, run side by side; their outcomes, or why they failed."""
    if not requests:
        return ()
    tasks = [
        context.call_sub_orchestrator(APPROVAL_ORCHESTRATOR, codec.encode(request), request.instance_id) for request in requests
    ]
    try:
        outcomes = yield context.task_all(tasks)
    except Exception as error:  # a defect in the sub-orchestration: recorded, the run still ends cleanly
        if not context.is_replaying:
            _log.error("approval_failed", instance_id=context.instance_id, error=str(error)[:500])
        return (ApprovalOutcome("", ApprovalEnd.FAILED, problem=str(error)[:500]),)
    return tuple(codec.decode(ApprovalOutcome, outcome) for outcome in outcomes)


def _failed(
    context: df.DurableOrchestrationContext, incident: SentinelIncident, failure: Failure
) -> Generator[Any, Any, IncidentRunResult]:
    notice = yield from call(context, NOTICE, NoticeInput(incident, Notice.FAILURE, failure))
    written = not isinstance(notice, Failure)
    return _finish(
        context, IncidentRunResult(incident.number, incident.name, RunEnd.FAILED, failure=failure, comment_written=written)
    )


def _finish(context: df.DurableOrchestrationContext, result: IncidentRunResult) -> IncidentRunResult:
    if not context.is_replaying:
        _log.info(
            "incident_orchestrated",
            instance_id=context.instance_id,
            incident=result.incident,
            incident_id=result.incident_id,
            outcome=result.outcome.value,
            verdict=result.verdict.value if result.verdict else None,
            labels=result.labels.value,
            failure=result.failure.error if result.failure else None,
        )
    return result


# -- the activities ----------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


@bp.activity_trigger(input_name="payload", activity=ENTITIES.name)  # type: ignore[untyped-decorator]
async def incident_entities(payload: Payload, context: func.Context) -> Payload:
    """Read the incident's entities from Sentinel and resolve its accounts."""

    def step(value: EntitiesInput) -> EntitiesFound:
        entities = wiring.current().sentinel().list_entities(value.incident)
        return EntitiesFound(value.incident.with_accounts(resolve_accounts(entities)))

    return await ENTITIES.run(payload, context, step)


def _enrich(value: EnrichInput) -> Enriched | Failure:
    """Gather, score and write the enrichment comment (runs in a worker thread: the engine and Sentinel calls block)."""
    incident = value.incident
    services = wiring.current()
    settings = services.settings()
    try:
        result = enrich.enrich(incident, services.engine(), settings)
    except ReplayError as error:
        return Failure.from_error("query the sign-in logs", error)
    requests = (
        approval.approval_requests(
            incident,
            result.accounts,
            parent_instance_id=value.approval.parent_instance_id,
            requested_at=value.approval.requested_at,
            settings=settings,
        )
        if value.approval is not None
        else {}
    )
    html = enrich.comment_html(result, settings, generated_at=_now())
    try:
        written = services.sentinel().upsert_comment(incident, comment_id(incident, COMMENT_PURPOSE), html)
    except ReplayError as error:
        return Failure.from_error("write the incident comment", error)
    comment = CommentWritten(written.comment_id, written.created, len(html))
    return Enriched(enrich.summary(result), comment, tuple(requests[index] for index in sorted(requests)))


@bp.activity_trigger(input_name="payload", activity=ENRICH.name)  # type: ignore[untyped-decorator]
async def enrich_incident(payload: Payload, context: func.Context) -> Payload:
    """Gather, score and write the enrichment comment; returns the compact summary and the approval requests."""
    return await ENRICH.run(payload, context, _enrich)


@bp.activity_trigger(input_name="payload", activity=LABELS.name)  # type: ignore[untyped-decorator]
async def label_incident(payload: Payload, context: func.Context) -> Payload:
    """Merge our verdict label into the incident (and raise its severity when configured)."""

    def step(value: LabelInput) -> Labelled:
        services = wiring.current()
        settings = services.settings()
        changed = services.sentinel().update_incident(
            value.incident,
            lambda properties: incident_update(properties, value.verdict, raise_severity=settings.raise_severity),
        )
        return Labelled(changed)

    return await LABELS.run(payload, context, step)


def _notice(value: NoticeInput) -> CommentWritten:
    services = wiring.current()
    settings = services.settings()
    incident = value.incident
    if value.notice is Notice.NO_ACCOUNT:
        html = enrich.comment_html(enrich.Enrichment(incident, ()), settings, generated_at=_now())
    elif value.failure is not None:
        html = enrich.failure_html(incident, value.failure, settings, generated_at=_now())
    else:
        msg = "a failure notice needs the failure it reports"
        raise InputError(msg)
    written = services.sentinel().upsert_comment(incident, comment_id(incident, COMMENT_PURPOSE), html)
    return CommentWritten(written.comment_id, written.created, len(html))


@bp.activity_trigger(input_name="payload", activity=NOTICE.name)  # type: ignore[untyped-decorator]
async def comment_incident(payload: Payload, context: func.Context) -> Payload:
    """Write the "no account" or the failure notice, in place of the enrichment comment."""
    return await NOTICE.run(payload, context, _notice)
