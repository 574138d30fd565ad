"""
The Durable orchestration of one incident, and the activities that do its I/O (a `df.Blueprint`).

    [entities from Sentinel, if the trigger had none] -> enrich (gather, score, write the comment; a comment
        whose write failed transiently is written again from the text it answered) -> labels / severity
        -> [an approval sub-orchestration per account whose plan needs one] -> end

The orchestrator is a deterministic generator: no I/O, no clock but `context.current_utc_datetime`,
no settings. It reads typed values (`playbooks.domain.workflow`) through `steps.call`.

Failures: an activity answers a `Failure` for an expected failure; a transient one (throttling, 5xx,
conflicts) is first retried by Durable (`steps.ACTIVITY_RETRY`). A run whose record did not reach
the incident ends **Failed** (its runtime status), with its result, the enrichment included when there
is one, in its output (`RunFailed`): the enrichment comment that cannot be written, a label that
cannot be set, an approval record that cannot be written, or a step that failed for good (then the
failure notice says what failed and what to check). Only successful runs suppress a re-delivery
(`playbooks.functions.http_api`), so the next delivery of the incident runs again and writes again.

Records are append-only: every state change is a comment of its own, named after the run
(`RunRef`: the instance id and the time the run started) and the record (`comment_id`): the
enrichment, the "no account" notice, the failure notice. A retried write lands on the same comment;
a later run writes new comments and never overwrites an earlier run's (the Defender portal never
shows an edited comment).

Approval: the enrichment activity prepares, for each account whose plan needs approval, the request
(`playbooks.domain.approval.approval_requests`: the pending card, the deadline, the sub-orchestration id),
timed from this orchestration's clock when it asked for the enrichment. After the labels, one
approval sub-orchestration per request (`playbooks.functions.approval_flow`) posts the card, waits for the
decision or the deadline, contains and records; this orchestration waits for all of them, so a
duplicate delivery of the incident finds it running and starts nothing.

Follow-ups: the input (`IncidentRunInput`) carries the alert ids the delivery had and, for a run
started because alerts were added (`follow_up`), the new ones, which its comment names; the
approvals earlier runs asked for (`earlier_requests`) get no second request. The run publishes the
alerts it covers as its custom status (`IncidentRunStatus`) and, once enriched, the approvals it
asked for, which is what the HTTP starter compares the next delivery with.
"""

from __future__ import annotations

import asyncio
import dataclasses
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
    ApprovalEnd,
    ApprovalInput,
    ApprovalOutcome,
    CommentWritten,
    EarlierRequest,
    Enriched,
    EnrichInput,
    EntitiesFound,
    EntitiesInput,
    Failure,
    IncidentCommentInput,
    IncidentRunResult,
    IncidentRunStatus,
    LabelInput,
    Labelled,
    LabelState,
    Record,
    RunEnd,
    RunFailed,
    RunRef,
    run_input_of,
)
from playbooks.functions.steps import HINT_BUG, Payload, Step, call
from playbooks.services import enrich

bp = df.Blueprint()

ORCHESTRATOR = INCIDENT_ORCHESTRATOR
ENTITIES = Step("incident_entities", "read the incident's entities from Sentinel", EntitiesInput, EntitiesFound)
ENRICH = Step("enrich_incident", "enrich the incident", EnrichInput, Enriched)
LABELS = Step("label_incident", "update the incident's labels", LabelInput, Labelled)
COMMENT = Step("comment_incident", "write the incident comment", IncidentCommentInput, CommentWritten)
ACTIVITY_ENTITIES = ENTITIES.name
ACTIVITY_ENRICH = ENRICH.name
ACTIVITY_LABELS = LABELS.name
ACTIVITY_COMMENT = COMMENT.name

_log = get_logger("orchestration")


# -- the orchestrator ------------------------------------------------------------------------------


@bp.orchestration_trigger(context_name="context", orchestration=ORCHESTRATOR)  # type: ignore[untyped-decorator]
def incident_orchestrator(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Payload]:
    """The Durable entry point; the steps are in `orchestrate`."""
    wiring.configure()
    result = yield from orchestrate(context)
    return codec.encode(result)  # type: ignore[no-any-return]


def orchestrate(context: df.DurableOrchestrationContext) -> Generator[Any, Any, IncidentRunResult]:
    """Entities if needed, enrichment and its comment, labels, approvals; a run that fails ends Failed."""
    given = run_input_of(context.get_input())
    incident = given.incident
    run = RunRef(context.instance_id, context.current_utc_datetime)
    context.set_custom_status(codec.encode(IncidentRunStatus(given.alert_ids)))
    if incident.accounts is None:
        found = yield from call(context, ENTITIES, EntitiesInput(incident))
        if isinstance(found, Failure):
            return (yield from _failed(context, run, incident, found))
        incident = found.incident
    if not incident.accounts:
        notice = yield from _record(context, run, incident, Record.NO_ACCOUNT)
        failure = notice if isinstance(notice, Failure) else None
        outcome = RunEnd.FAILED if failure else RunEnd.NO_ACCOUNT
        return _finish(
            context,
            IncidentRunResult(incident.number, incident.name, outcome, failure=failure, comment_written=not failure, run=run.key),
        )

    asked = EnrichInput(incident, run, context.current_utc_datetime, given.follow_up, given.earlier_requests)
    enriched = yield from call(context, ENRICH, asked)
    if isinstance(enriched, Failure):
        return (yield from _failed(context, run, incident, enriched))
    # What a later delivery must not ask again: the requests whose card goes out (one without a card decides nothing).
    requests = tuple(EarlierRequest(r.instance_id, r.plan.digest) for r in enriched.approvals if r.card is not None)
    context.set_custom_status(codec.encode(IncidentRunStatus(given.alert_ids, enriched=True, approvals=requests)))
    summary = enriched.summary
    base = IncidentRunResult(
        incident.number, incident.name, RunEnd.ENRICHED, summary.verdict, accounts=summary.accounts, run=run.key
    )
    written: CommentWritten | Failure = enriched.comment or enriched.write_failure or _missing_comment()
    if isinstance(written, Failure) and written.transient and enriched.unwritten_html:
        # The same text again, by the comment activity, which Durable retries; no second query.
        written = yield from _record(context, run, incident, Record.ENRICHMENT, html=enriched.unwritten_html)
    if isinstance(written, Failure):
        # No failure notice: it would be written where the enrichment could not be, and the
        # enrichment is in this run's output; the next delivery writes it.
        return _finish(context, dataclasses.replace(base, outcome=RunEnd.FAILED, failure=written))

    labels, failure = LabelState.UNCHANGED, None
    if summary.verdict is not None:
        labelled = yield from call(context, LABELS, LabelInput(incident, summary.verdict))
        if isinstance(labelled, Failure):
            labels, failure = LabelState.FAILED, labelled
        elif labelled.changed:
            labels = LabelState.UPDATED
    approvals = yield from _approvals(context, enriched.approvals)
    unrecorded = [state for outcome in approvals for state in outcome.unrecorded]
    if failure is None and unrecorded:
        failure = Failure(
            "write the approval records on the incident",
            f"{len(unrecorded)} record(s) could not be written: {', '.join(unrecorded)}",
            "see each approval's outcome in this run's output; run the playbook again once Sentinel accepts writes",
            "Sentinel",
        )
    result = dataclasses.replace(
        base,
        outcome=RunEnd.FAILED if failure else RunEnd.ENRICHED,
        labels=labels,
        approvals=approvals,
        failure=failure,
        comment_written=True,
    )
    return _finish(context, result)


def _missing_comment() -> Failure:
    return Failure("write the incident comment", "the enrichment answered neither its comment nor why", HINT_BUG, "bug")


def _record(
    context: df.DurableOrchestrationContext,
    run: RunRef,
    incident: SentinelIncident,
    record: Record,
    *,
    html: str = "",
    failure: Failure | None = None,
) -> Generator[Any, Any, CommentWritten | Failure]:
    """Write one record of this run on the incident (a comment of its own)."""
    payload = IncidentCommentInput(incident, run, record, context.current_utc_datetime, html, failure)
    return (yield from call(context, COMMENT, payload))


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
    except Exception as error:  # a defect in the sub-orchestration: recorded, the run still ends
        if not context.is_replaying:
            _log.error("approval_failed", instance_id=context.instance_id, error=str(error)[:500])
        return (ApprovalOutcome("", ApprovalEnd.FAILED, problem=str(error)[:500]),)
    return tuple(codec.decode(ApprovalOutcome, outcome) for outcome in outcomes)


def _failed(
    context: df.DurableOrchestrationContext, run: RunRef, incident: SentinelIncident, failure: Failure
) -> Generator[Any, Any, IncidentRunResult]:
    """A step failed for good: the failure notice (what failed, what to check), then the run ends Failed."""
    notice = yield from _record(context, run, incident, Record.FAILURE, failure=failure)
    result = IncidentRunResult(
        incident.number,
        incident.name,
        RunEnd.FAILED,
        failure=failure,
        comment_written=not isinstance(notice, Failure),
        run=run.key,
    )
    return _finish(context, result)


def _finish(context: df.DurableOrchestrationContext, result: IncidentRunResult) -> IncidentRunResult:
    """Log the run's one line; a failed run raises `RunFailed`, so Durable records it as Failed."""
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
    if result.outcome is RunEnd.FAILED:
        raise RunFailed(result)
    return result


# -- the activities ----------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


@bp.activity_trigger(input_name="payload", activity=ENTITIES.name)  # type: ignore[untyped-decorator]
async def incident_entities(payload: Payload, context: func.Context) -> Payload:
    """Read the incident's entities from Sentinel and resolve its accounts."""

    def step(value: EntitiesInput) -> EntitiesFound:
        services = wiring.current()
        entities = services.sentinel().list_entities(value.incident)
        resolution = resolve_accounts(entities, max_accounts=services.settings().max_accounts)
        return EntitiesFound(value.incident.with_accounts(resolution))

    return await ENTITIES.run(payload, context, step)


async def _enrich(value: EnrichInput) -> Enriched | Failure:
    """
    Gather and score (in a worker thread: the engine blocks), resolve the object id of a suspect
    whose plan needs approval and whose rows did not carry it, prepare the approval requests, and
    write the comment as this run's enrichment record. A failed write does not lose the enrichment:
    the answer carries the failure and the comment, for the orchestration to write again or report.
    """
    incident = value.incident
    services = wiring.current()
    settings = services.settings()
    try:
        result = await asyncio.to_thread(lambda: enrich.enrich(incident, services.engine(), settings))
    except ReplayError as error:
        return Failure.from_error("query the sign-in logs", error)
    problems: dict[int, str] = {}
    if enrich.unresolved_suspects(result):
        result, problems = await enrich.resolve_suspects(result, services.bot_graph())
    result = await _facts_before_approval(result, services, value.requested_at)
    earlier = {request.plan_digest: request.instance_id for request in value.earlier_requests}
    requests = approval.approval_requests(
        incident,
        result.accounts,
        parent_instance_id=value.run.instance_id,
        requested_at=value.requested_at,
        settings=settings,
        problems=problems,
        identities={i: who for i in range(len(result.accounts)) if (who := enrich.account_identity(result, i)) is not None},
        earlier=earlier,
    )
    html = enrich.comment_html(
        result, settings, generated_at=value.requested_at, approvals=requests, earlier=earlier, follow_up=value.follow_up
    )
    summary, approvals = enrich.summary(result), tuple(requests[index] for index in sorted(requests))
    cid = comment_id(incident, value.run.key, Record.ENRICHMENT.value)
    try:
        written = await asyncio.to_thread(services.sentinel().write_comment, incident, cid, html)
    except ReplayError as error:
        failure = Failure.from_error("write the incident comment", error)
        return Enriched(summary, None, approvals, failure, html if failure.transient else "")
    return Enriched(summary, CommentWritten(written.comment_id, written.created, len(html)), approvals)


async def _facts_before_approval(result: enrich.Enrichment, services: wiring.Services, now: datetime) -> enrich.Enrichment:
    """
    Who each account waiting for an approval is, and its MFA methods and devices tied to a suspect
    address, read from Graph as the containment identity (read-only) for the card and the comment.
    Each read that fails is said in the facts; Graph unreachable altogether is a warning, never a stop.
    """
    from playbooks.services.before_approval import facts_before_approval

    accounts = [(a.evidence, a.assessment, a.plan) for a in result.accounts]
    if not any(plan.needs_approval for _, _, plan in accounts):
        return result
    try:
        found = await facts_before_approval(services.graph(), accounts, now)
    except ReplayError as error:
        return enrich.with_facts(result, {}, (f"who the account is could not be read from Microsoft Graph: {error}",))
    return enrich.with_facts(result, found)


@bp.activity_trigger(input_name="payload", activity=ENRICH.name)  # type: ignore[untyped-decorator]
async def enrich_incident(payload: Payload, context: func.Context) -> Payload:
    """Gather, score, write the comment; returns the compact summary and the approval requests."""
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


def _write_record(value: IncidentCommentInput) -> CommentWritten:
    """Render the record (the enrichment arrives rendered) and write it as this run's comment for it."""
    services = wiring.current()
    settings = services.settings()
    incident = value.incident
    if value.record is Record.ENRICHMENT and value.html:
        html = value.html
    elif value.record is Record.NO_ACCOUNT:
        html = enrich.comment_html(enrich.Enrichment(incident, ()), settings, generated_at=value.written_at)
    elif value.record is Record.FAILURE and value.failure is not None:
        html = enrich.failure_html(incident, value.failure, settings, generated_at=value.written_at)
    else:
        msg = f"the {value.record.value} record needs its {'html' if value.record is Record.ENRICHMENT else 'failure'}"
        raise InputError(msg)
    written = services.sentinel().write_comment(incident, comment_id(incident, value.run.key, value.record.value), html)
    return CommentWritten(written.comment_id, written.created, len(html))


@bp.activity_trigger(input_name="payload", activity=COMMENT.name)  # type: ignore[untyped-decorator]
async def comment_incident(payload: Payload, context: func.Context) -> Payload:
    """Write one record of the run on the incident: the enrichment, the "no account" notice or the failure notice."""
    return await COMMENT.run(payload, context, _write_record)
