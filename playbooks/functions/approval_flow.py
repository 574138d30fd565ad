"""
The approval sub-orchestration of one account, and the activities that do its I/O (a `df.Blueprint`).

    publish "pending" -> post the card -> comment "awaiting approval"
        -> wait for the first of: a decision event, a refused-click event (recorded, keep waiting), the deadline
        -> decided: publish it, refresh the card, [approved: contain through Graph, refresh the card with results]
        -> expired: publish it, refresh the card as expired
        -> the approval comment with the outcome, each action's result and every refused attempt

The orchestrator is deterministic: no I/O, no clock but `context.current_utc_datetime`, no
settings (the deadline arrives in its input). The bot decides who may decide
(`playbooks.services.approval_clicks`); this orchestration takes only the first valid decision for
its own plan digest, so a re-delivered or late approval never acts twice. Activities answer a
`Failure` for expected failures and the orchestration carries on: a card that cannot be refreshed
is a note on the comment, a card that cannot be posted ends the request with nothing done, and
nothing destructive runs without a decision.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from common.errors import InputError, ReplayError
from common.logs import get_logger
from enrichment.domain.model import Account, Assessment, Baseline, TimeWindow, UserEvidence
from playbooks import wiring
from playbooks.domain import codec
from playbooks.domain.approval import ApprovalRecord, AttemptLine, Person, all_failed, approval_status
from playbooks.domain.authorization import ApprovalRequest
from playbooks.domain.incident import AccountResolution, SentinelIncident, comment_id
from playbooks.domain.workflow import (
    APPROVAL_EVENT,
    APPROVAL_ORCHESTRATOR,
    ATTEMPT_EVENT,
    ApprovalAttempt,
    ApprovalCommentInput,
    ApprovalDecision,
    ApprovalEnd,
    ApprovalInput,
    ApprovalOutcome,
    ApprovalPhase,
    ApprovalRecordState,
    CardPosted,
    CardUpdated,
    CommentWritten,
    Contained,
    ContainInput,
    Failure,
    MessageReference,
    Phase,
    PostCardInput,
    UpdateCardInput,
)
from playbooks.functions.steps import Payload, Step, call
from playbooks.render.card import Card, refreshed_card
from playbooks.render.comment import approval_comment
from playbooks.services import enrich

bp = df.Blueprint()

POST_CARD = Step("post_approval_card", "post the approval card to Teams", PostCardInput, CardPosted)
UPDATE_CARD = Step("update_approval_card", "refresh the approval card in Teams", UpdateCardInput, CardUpdated)
CONTAIN = Step("contain_account", "contain the account through Microsoft Graph", ContainInput, Contained)
COMMENT = Step("comment_approval", "write the approval comment", ApprovalCommentInput, CommentWritten)
ACTIVITY_POST_CARD = POST_CARD.name
ACTIVITY_UPDATE_CARD = UPDATE_CARD.name
ACTIVITY_CONTAIN = CONTAIN.name
ACTIVITY_COMMENT = COMMENT.name

#: The purpose part of the approval comment's id (one comment per incident and account).
COMMENT_PURPOSE = "approval"
#: How long the comment activity waits for the directory to name a clicker before it shows their object id.
NAME_LOOKUP_SECONDS = 10.0

_log = get_logger("approval")


# -- the orchestrator ----------------------------------------------------------------------------------


@bp.orchestration_trigger(context_name="context", orchestration=APPROVAL_ORCHESTRATOR)  # type: ignore[untyped-decorator]
def approval_orchestrator(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Payload]:
    """The Durable entry point; the steps are in `run_approval`."""
    wiring.configure()
    outcome = yield from run_approval(context)
    return codec.encode(outcome)  # type: ignore[no-any-return]


def run_approval(context: df.DurableOrchestrationContext) -> Generator[Any, Any, ApprovalOutcome]:
    """Post, wait, decide or expire, contain when approved, record everything on the incident."""
    request = codec.decode(ApprovalInput, context.get_input())
    waiting = ApprovalRequest.for_plan(request.plan, request.requested_at)
    if request.problem or request.card is None:
        problem = request.problem or "the request carries no card"
        yield from _comment(context, request, ApprovalRecordState(Phase.NOT_POSTED, problem=problem))
        return _finish(context, request, ApprovalOutcome(request.instance_id, ApprovalEnd.CARD_NOT_POSTED, problem=problem))
    card = request.card

    context.set_custom_status(codec.encode(approval_status(waiting, ApprovalPhase.PENDING)))
    posted = yield from call(context, POST_CARD, PostCardInput(request.incident, request.instance_id, card))
    if isinstance(posted, Failure):
        context.set_custom_status(None)
        yield from _comment(context, request, ApprovalRecordState(Phase.NOT_POSTED, problem=posted.sentence))
        outcome = ApprovalOutcome(request.instance_id, ApprovalEnd.CARD_NOT_POSTED, problem=posted.sentence)
        return _finish(context, request, outcome)
    reference = posted.reference
    attempts: list[ApprovalAttempt] = []
    yield from _comment(context, request, ApprovalRecordState(Phase.PENDING))

    decided = yield from _wait_for_decision(context, request, attempts)
    if decided is None:
        context.set_custom_status(codec.encode(approval_status(waiting, ApprovalPhase.EXPIRED)))
        notes = yield from _refresh(context, request, reference, card, expired=True)
        yield from _comment(context, request, ApprovalRecordState(Phase.EXPIRED, tuple(attempts), notes=notes))
        return _finish(context, request, ApprovalOutcome(request.instance_id, ApprovalEnd.EXPIRED, len(attempts)))

    context.set_custom_status(
        codec.encode(approval_status(waiting, ApprovalPhase.DECIDED, decided.decision, decided.decided_by_name))
    )
    notes = yield from _refresh(context, request, reference, card, decision=decided)
    results: tuple[Any, ...] = ()
    if decided.approved:
        contained = yield from call(context, CONTAIN, ContainInput(request.incident, request.instance_id, request.plan, decided))
        if isinstance(contained, Failure):
            results = all_failed(request.plan, f"containment did not run: {contained.error}")
            notes = (*((contained.hint,) if contained.hint else ()), *notes)
        else:
            results, notes = contained.results, (*contained.notes, *notes)
        notes = (*notes, *(yield from _refresh(context, request, reference, card, decision=decided, results=results)))
    record = ApprovalRecordState(Phase.DECIDED, tuple(attempts), decided, results, notes)
    yield from _comment(context, request, record)
    end = ApprovalEnd.APPROVED if decided.approved else ApprovalEnd.REJECTED
    return _finish(context, request, ApprovalOutcome(request.instance_id, end, len(attempts), results))


def _wait_for_decision(
    context: df.DurableOrchestrationContext, request: ApprovalInput, attempts: list[ApprovalAttempt]
) -> Generator[Any, Any, ApprovalDecision | None]:
    """
    The first valid decision on this plan, or None when the deadline comes first.

    Refused clicks arrive as their own events: each is added to `attempts` and the comment rewritten,
    and the wait goes on. A decision event that is unreadable or names another plan is logged and
    ignored (the bot never sends one; anyone else with the host's key might).
    """
    timer = context.create_timer(request.expires_at)
    decision_task = context.wait_for_external_event(APPROVAL_EVENT)
    while True:
        attempt_task = context.wait_for_external_event(ATTEMPT_EVENT)
        winner = yield context.task_any([decision_task, attempt_task, timer])
        if winner is attempt_task:
            try:
                attempts.append(codec.decode(ApprovalAttempt, attempt_task.result))
            except InputError as error:
                _warn(context, "approval.bad_attempt_event", error)
                continue
            yield from _comment(context, request, ApprovalRecordState(Phase.PENDING, tuple(attempts)))
            continue
        if winner is not decision_task:
            return None
        try:
            decided = codec.decode(ApprovalDecision, decision_task.result)
            if decided.plan_digest != request.plan.digest:
                msg = f"decision for plan {decided.plan_digest[:12]}, not {request.plan.digest[:12]}"
                raise InputError(msg)
        except InputError as error:
            _warn(context, "approval.bad_decision_event", error)
            decision_task = context.wait_for_external_event(APPROVAL_EVENT)
            continue
        timer.cancel()
        return decided


def _comment(
    context: df.DurableOrchestrationContext, request: ApprovalInput, record: ApprovalRecordState
) -> Generator[Any, Any, CommentWritten | Failure]:
    payload = ApprovalCommentInput(
        request.incident, request.instance_id, request.plan, request.requested_at, request.expires_at, record
    )
    return (yield from call(context, COMMENT, payload))


def _refresh(
    context: df.DurableOrchestrationContext,
    request: ApprovalInput,
    reference: MessageReference,
    card: Card,
    *,
    decision: ApprovalDecision | None = None,
    results: tuple[Any, ...] | None = None,
    expired: bool = False,
) -> Generator[Any, Any, tuple[str, ...]]:
    """Refresh the posted card; a failure becomes a note for the comment (the decision stands regardless)."""
    update = UpdateCardInput(request.incident, request.instance_id, reference, card, decision, results, expired)
    updated = yield from call(context, UPDATE_CARD, update)
    if isinstance(updated, Failure):
        return (f"The Teams card could not be refreshed: {updated.error}",)
    return ()


def _warn(context: df.DurableOrchestrationContext, event: str, error: Exception) -> None:
    if not context.is_replaying:
        _log.warning(event, instance_id=context.instance_id, error=str(error))


def _finish(context: df.DurableOrchestrationContext, request: ApprovalInput, outcome: ApprovalOutcome) -> ApprovalOutcome:
    if not context.is_replaying:
        _log.info(
            "approval_orchestrated",
            instance_id=context.instance_id,
            incident=request.incident.number,
            outcome=outcome.outcome.value,
        )
    return outcome


# -- the activities ----------------------------------------------------------------------------------------


@bp.activity_trigger(input_name="payload", activity=POST_CARD.name)  # type: ignore[untyped-decorator]
async def post_approval_card(payload: Payload, context: func.Context) -> Payload:
    """Post the pending card to the approval channel; returns where it lives."""

    async def step(value: PostCardInput) -> CardPosted:
        return CardPosted(await wiring.current().connector().post(value.card))

    return await POST_CARD.run(payload, context, step)


@bp.activity_trigger(input_name="payload", activity=UPDATE_CARD.name)  # type: ignore[untyped-decorator]
async def update_approval_card(payload: Payload, context: func.Context) -> Payload:
    """Replace the posted card with its decided (and, later, completed) or expired state."""

    async def step(value: UpdateCardInput) -> CardUpdated:
        decided = value.decision
        card = refreshed_card(
            value.card,
            decision=decided.decision if decided is not None else None,
            results=value.results,
            expired=value.expired,
            decided_by_name=decided.decided_by_name if decided is not None else "",
        )
        await wiring.current().connector().update(value.reference, card)
        return CardUpdated()

    return await UPDATE_CARD.run(payload, context, step)


def _evidence_or_bare(
    incident: SentinelIncident, account: Account, services: wiring.Services
) -> tuple[tuple[UserEvidence, Assessment], list[str]]:
    """
    The account's evidence read again now (so the MFA audit also sees registrations made while the
    card waited), or, when the workspace cannot answer, bare evidence: revoking sessions must not
    depend on Log Analytics, and the note says the audit could not match registrations.
    """
    from enrichment.domain.scoring import assess

    settings = services.settings()
    try:
        enriched = enrich.enrich(incident.with_accounts(AccountResolution((account,))), services.engine(), settings)
        outcome = enriched.accounts[0]
        return (outcome.evidence, outcome.assessment), []
    except ReplayError as error:
        window = TimeWindow(incident.at - timedelta(hours=settings.window_before_hours), incident.at)
        baseline = Baseline(TimeWindow(window.start - timedelta(days=settings.baseline_days), window.start))
        bare = UserEvidence(account, incident.at, window, (), baseline)
        note = (
            f"The sign-in evidence could not be read again ({error}): the MFA audit lists methods without matching registrations."
        )
        return (bare, assess(bare, settings)), [note]


@bp.activity_trigger(input_name="payload", activity=CONTAIN.name)  # type: ignore[untyped-decorator]
async def contain_account(payload: Payload, context: func.Context) -> Payload:
    """Carry out the approved plan through Graph: one result per action, with Graph's request id."""
    from playbooks.services.containment import contain

    async def step(value: ContainInput) -> Contained:
        services = wiring.current()
        (evidence, assessment), notes = await asyncio.to_thread(_evidence_or_bare, value.incident, value.plan.account, services)
        report = await contain(
            value.plan, value.decision.decision, evidence, services.graph(), datetime.now(UTC), assessment=assessment
        )
        notes += [*report.notes, *([f"MFA audit: {report.audit.summary()}"] if report.audit is not None else [])]
        return Contained(report.results, tuple(notes))

    return await CONTAIN.run(payload, context, step)


async def _person(object_id: str, name: str, services: wiring.Services) -> Person:
    """The clicker named by UPN when the directory answers in time; otherwise by name and object id."""
    if not object_id:
        return Person(object_id, name)
    try:
        async with asyncio.timeout(NAME_LOOKUP_SECONDS):
            user = (await services.graph().get_user(object_id)).value
        return Person(object_id, name, user.upn)
    except (ReplayError, TimeoutError) as error:
        _log.warning("approval.name_lookup_failed", object_id=object_id, error=str(error) or type(error).__name__)
        return Person(object_id, name)


async def _record(value: ApprovalCommentInput, services: wiring.Services) -> ApprovalRecord:
    state = value.record
    attempts = []
    for attempt in state.attempts:
        person = await _person(attempt.person_object_id, attempt.person_name, services)
        attempts.append(AttemptLine(person, attempt.at, attempt.approve, attempt.reason))
    decided = state.decision
    return ApprovalRecord(
        target=value.plan.account,
        plan=value.plan,
        phase=state.phase,
        requested_at=value.requested_at,
        expires_at=value.expires_at,
        attempts=tuple(attempts),
        approved=decided.approved if decided is not None else None,
        decided_by=await _person(decided.decided_by_object_id, decided.decided_by_name, services) if decided else None,
        decided_at=decided.decided_at if decided is not None else None,
        results=state.results,
        notes=state.notes,
        problem=state.problem,
    )


@bp.activity_trigger(input_name="payload", activity=COMMENT.name)  # type: ignore[untyped-decorator]
async def comment_approval(payload: Payload, context: func.Context) -> Payload:
    """Write (or rewrite) the account's approval comment on the incident."""

    async def step(value: ApprovalCommentInput) -> CommentWritten:
        services = wiring.current()
        settings = services.settings()
        record = await _record(value, services)
        html = approval_comment(value.incident, record, max_chars=settings.comment_max_chars, generated_at=datetime.now(UTC))
        cid = comment_id(value.incident, COMMENT_PURPOSE, record.target.key)
        written = await asyncio.to_thread(services.sentinel().upsert_comment, value.incident, cid, html)
        return CommentWritten(written.comment_id, written.created, len(html))

    return await COMMENT.run(payload, context, step)
