"""
The approval sub-orchestration of one account, and the activities that do its I/O (a `df.Blueprint`).

    publish "pending" -> post the card -> record "pending"
        -> wait for the first of: a decision event, a refused-click event (recorded, keep waiting), the deadline
        -> decided: publish it, refresh the card, record "decided"
             [approved: contain through Graph (actions that fail transiently are tried again later, the
              done ones skipped), record each action's result, refresh the card with the results]
        -> expired: publish it, refresh the card as expired, record "expired"

The orchestrator is deterministic: no I/O, no clock but `context.current_utc_datetime`, no
settings (the deadline arrives in its input). The bot decides who may decide
(`playbooks.services.approval_clicks`); this orchestration is the single decider across app
instances: it takes only the first valid decision for its own plan digest and publishes it, so a
re-delivered or late approval never acts twice and every approver can be told the decision that
stands. Activities answer a `Failure` for expected failures and the orchestration carries on: a card
that cannot be refreshed is a note on the next record, a card that cannot be posted ends the request
with nothing done, and nothing destructive runs without a decision.

Records are append-only: each state change is a comment of its own (pending, each refused click up to
`MAX_REFUSED_RECORDS`, decided, each action's result, expired), named after this request's instance
id and the state, so a retried write lands on the same comment and nothing is ever rewritten. A record
that cannot be written for good is named in the outcome (`unrecorded`), and the incident run ends
Failed.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import OrderedDict
from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from common.errors import InputError, ReplayError
from common.logs import get_logger
from enrichment.domain.model import Assessment, Baseline, TimeWindow, UserEvidence
from playbooks import wiring
from playbooks.domain import codec
from playbooks.domain.approval import ApprovalRecord, AttemptLine, Person, all_failed, approval_status
from playbooks.domain.authorization import ApprovalRequest
from playbooks.domain.incident import AccountResolution, comment_id
from playbooks.domain.plan import ActionKind, ActionResult, ActionStatus
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

#: How often a containment whose actions fail transiently is run (the done actions skipped), and the wait before each retry.
CONTAIN_ATTEMPTS = 3
CONTAIN_BACKOFF = timedelta(minutes=2)
#: Refused clicks recorded each as a comment of its own; later ones are listed in the final record only.
MAX_REFUSED_RECORDS = 10
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
    """Post, wait, decide or expire, contain when approved, record every state change on the incident."""
    request = codec.decode(ApprovalInput, context.get_input())
    book = _Book(context, request)
    waiting = ApprovalRequest.for_plan(request.plan, request.requested_at)
    if request.problem or request.card is None:
        problem = request.problem or "the request carries no card"
        yield from book.write(ApprovalRecordState(Phase.NOT_POSTED, problem=problem))
        return book.finish(ApprovalOutcome(request.instance_id, ApprovalEnd.CARD_NOT_POSTED, problem=problem))
    card = request.card

    context.set_custom_status(codec.encode(approval_status(waiting, ApprovalPhase.PENDING)))
    posted = yield from call(context, POST_CARD, PostCardInput(request.incident, request.instance_id, card))
    if isinstance(posted, Failure):
        context.set_custom_status(None)
        yield from book.write(ApprovalRecordState(Phase.NOT_POSTED, problem=posted.sentence))
        return book.finish(ApprovalOutcome(request.instance_id, ApprovalEnd.CARD_NOT_POSTED, problem=posted.sentence))
    reference = posted.reference
    yield from book.write(ApprovalRecordState(Phase.PENDING))

    attempts: list[ApprovalAttempt] = []
    decided = yield from _wait_for_decision(context, request, attempts, book)
    if decided is None:
        context.set_custom_status(codec.encode(approval_status(waiting, ApprovalPhase.EXPIRED)))
        book.note(*(yield from _refresh(context, request, reference, card, expired=True)))
        yield from book.write(ApprovalRecordState(Phase.EXPIRED, tuple(attempts)))
        return book.finish(ApprovalOutcome(request.instance_id, ApprovalEnd.EXPIRED, len(attempts)))

    context.set_custom_status(
        codec.encode(approval_status(waiting, ApprovalPhase.DECIDED, decided.decision, decided.decided_by_name))
    )
    book.note(*(yield from _refresh(context, request, reference, card, decision=decided)))
    yield from book.write(ApprovalRecordState(Phase.DECIDED, tuple(attempts), decided))
    results: tuple[ActionResult, ...] = ()
    if decided.approved:
        results = yield from _contain(context, request, decided, book)
        book.note(*(yield from _refresh(context, request, reference, card, decision=decided, results=results)))
        yield from book.flush()
    end = ApprovalEnd.APPROVED if decided.approved else ApprovalEnd.REJECTED
    return book.finish(ApprovalOutcome(request.instance_id, end, len(attempts), results))


class _Book:
    """
    The approval's records on the incident: writes each state change as its own comment, carries
    the notes gathered since the last record into the next one, and remembers what could not be written.
    """

    def __init__(self, context: df.DurableOrchestrationContext, request: ApprovalInput) -> None:
        self._context = context
        self._request = request
        self._notes: list[str] = []
        self._held: ApprovalRecordState | None = None
        self.unrecorded: list[str] = []

    def note(self, *notes: str) -> None:
        self._notes.extend(notes)

    def write(self, record: ApprovalRecordState, *, hold: bool = False) -> Generator[Any, Any, None]:
        """Write `record` with the notes gathered so far; `hold` keeps it back to take later notes too (see `flush`)."""
        yield from self.flush()
        if hold:
            self._held = record
            return
        record = dataclasses.replace(record, notes=(*record.notes, *self._notes))
        self._notes.clear()
        request, context = self._request, self._context
        payload = ApprovalCommentInput(
            request.incident,
            request.instance_id,
            request.plan,
            request.requested_at,
            request.expires_at,
            record,
            context.current_utc_datetime,
        )
        written = yield from call(context, COMMENT, payload)
        if isinstance(written, Failure):
            self.unrecorded.append(record.state)
            _warn(context, "approval.record_not_written", RuntimeError(f"{record.state}: {written.error}"))

    def flush(self) -> Generator[Any, Any, None]:
        """Write the record held back, with the notes gathered meanwhile."""
        held, self._held = self._held, None
        if held is not None:
            yield from self.write(held)

    def finish(self, outcome: ApprovalOutcome) -> ApprovalOutcome:
        outcome = dataclasses.replace(outcome, unrecorded=tuple(self.unrecorded))
        if not self._context.is_replaying:
            _log.info(
                "approval_orchestrated",
                instance_id=self._context.instance_id,
                incident=self._request.incident.number,
                outcome=outcome.outcome.value,
                unrecorded=list(outcome.unrecorded),
            )
        return outcome


def _contain(
    context: df.DurableOrchestrationContext, request: ApprovalInput, decided: ApprovalDecision, book: _Book
) -> Generator[Any, Any, tuple[ActionResult, ...]]:
    """
    Run the approved plan, up to `CONTAIN_ATTEMPTS` times: an action that failed transiently
    (throttling, 5xx, after Graph's own retries) is tried again after a durable timer, and the
    actions already done are passed as `completed` so the next attempt skips them. Each action's
    result is recorded as soon as it is final; the last record is held back for the notes.
    """
    final: dict[ActionKind, ActionResult] = {}
    recorded: set[ActionKind] = set()
    for attempt in range(1, CONTAIN_ATTEMPTS + 1):
        done = tuple(kind for kind, result in final.items() if result.status is not ActionStatus.FAILED)
        payload = ContainInput(
            request.incident, request.instance_id, request.plan, decided, done, request.inbox_rules, request.forwarding
        )
        contained = yield from call(context, CONTAIN, payload)
        if isinstance(contained, Failure):
            detail = f"containment did not run: {contained.error}"
            final.update({r.kind: r for r in all_failed(request.plan, detail) if r.kind not in done})
            book.note(*((contained.hint,) if contained.hint else ()))
            again: list[ActionKind] = []
        else:
            final.update({r.kind: r for r in contained.results if r.kind not in done})
            book.note(*contained.notes)
            again = [kind for kind, r in final.items() if r.status is ActionStatus.FAILED and r.transient]
        last = not again or attempt == CONTAIN_ATTEMPTS
        for action in request.plan.actions:
            result = final.get(action.kind)
            if result is None or action.kind in recorded or (action.kind in again and not last):
                continue
            recorded.add(action.kind)
            yield from book.write(ApprovalRecordState(Phase.RESULT, results=(result,)), hold=True)
        if last:
            break
        yield context.create_timer(context.current_utc_datetime + CONTAIN_BACKOFF * attempt)
    return tuple(final[a.kind] for a in request.plan.actions if a.kind in final)


def _wait_for_decision(
    context: df.DurableOrchestrationContext, request: ApprovalInput, attempts: list[ApprovalAttempt], book: _Book
) -> Generator[Any, Any, ApprovalDecision | None]:
    """
    The first valid decision on this plan, or None when the deadline comes first.

    Refused clicks arrive as their own events: each is added to `attempts` and, up to
    `MAX_REFUSED_RECORDS`, recorded on the incident as it happens (all of them are in the final
    record), and the wait goes on. A decision event that is unreadable or names another plan is
    logged and ignored (the bot never sends one; anyone else with the host's key might).
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
            if len(attempts) <= MAX_REFUSED_RECORDS:
                yield from book.write(ApprovalRecordState(Phase.REFUSED, tuple(attempts)))
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


def _refresh(
    context: df.DurableOrchestrationContext,
    request: ApprovalInput,
    reference: MessageReference,
    card: Card,
    *,
    decision: ApprovalDecision | None = None,
    results: tuple[ActionResult, ...] | None = None,
    expired: bool = False,
) -> Generator[Any, Any, tuple[str, ...]]:
    """Refresh the posted card; a failure becomes a note for the next record (the decision stands regardless)."""
    update = UpdateCardInput(request.incident, request.instance_id, reference, card, decision, results, expired)
    updated = yield from call(context, UPDATE_CARD, update)
    if isinstance(updated, Failure):
        return (f"The Teams card could not be refreshed: {updated.error}",)
    return ()


def _warn(context: df.DurableOrchestrationContext, event: str, error: Exception) -> None:
    if not context.is_replaying:
        _log.warning(event, instance_id=context.instance_id, error=str(error))


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


#: Actions that need the account's evidence read again (the MFA audit matches registrations to sign-ins).
_NEED_EVIDENCE = frozenset({ActionKind.AUDIT_MFA_METHODS, ActionKind.DELETE_FLAGGED_METHODS})


def _evidence(value: ContainInput, services: wiring.Services) -> tuple[tuple[UserEvidence, Assessment], list[str]]:
    """
    The account's evidence read again now (so the MFA audit also sees registrations made while the
    card waited), or bare evidence: when no pending action needs it, or when the workspace cannot
    answer (revoking sessions must not depend on Log Analytics; the note says the audit could not
    match registrations).
    """
    from enrichment.domain.scoring import assess

    settings = services.settings()
    incident, account = value.incident, value.plan.account
    window = TimeWindow(incident.at - timedelta(hours=settings.window_before_hours), incident.at)
    bare = UserEvidence(
        account,
        incident.at,
        window,
        (),
        Baseline(TimeWindow(window.start - timedelta(days=settings.baseline_days), window.start)),
    )
    pending = {a.kind for a in value.plan.actions} - set(value.completed)
    if not pending & _NEED_EVIDENCE:
        return (bare, assess(bare, settings)), []
    try:
        enriched = enrich.enrich(incident.with_accounts(AccountResolution((account,))), services.engine(), settings)
        outcome = enriched.accounts[0]
        return (outcome.evidence, outcome.assessment), []
    except ReplayError as error:
        note = (
            f"The sign-in evidence could not be read again ({error}): the MFA audit lists methods without matching registrations."
        )
        return (bare, assess(bare, settings)), [note]


@bp.activity_trigger(input_name="payload", activity=CONTAIN.name)  # type: ignore[untyped-decorator]
async def contain_account(payload: Payload, context: func.Context) -> Payload:
    """Carry out the approved plan through Graph, skipping the actions already done: one result per action, with Graph's request id."""
    from playbooks.services.containment import contain

    async def step(value: ContainInput) -> Contained:
        services = wiring.current()
        (evidence, assessment), notes = await asyncio.to_thread(_evidence, value, services)
        report = await contain(
            value.plan,
            value.decision.decision,
            evidence,
            services.graph(),
            datetime.now(UTC),
            assessment=assessment,
            completed=frozenset(value.completed),
            attacker_rules=value.inbox_rules,
            forwarding=value.forwarding,
        )
        return Contained(report.results, (*notes, *report.notes))

    return await CONTAIN.run(payload, context, step)


#: UPNs of clickers the bot could not name, looked up here once per approval request and person.
_UPNS: OrderedDict[tuple[str, str], str] = OrderedDict()
_UPNS_KEPT = 1000


async def _person(instance_id: str, object_id: str, name: str, upn: str, services: wiring.Services) -> Person:
    """
    The clicker by the UPN the bot resolved; when it could not, by the directory's answer (once per
    request and person, within `NAME_LOOKUP_SECONDS`), else by name and object id.
    """
    if upn or not object_id:
        return Person(object_id, name, upn)
    key = (instance_id, object_id)
    if key not in _UPNS:
        try:
            async with asyncio.timeout(NAME_LOOKUP_SECONDS):
                _UPNS[key] = (await services.bot_graph().identify(object_id)).value.upn
        except (ReplayError, TimeoutError) as error:
            _log.warning("approval.name_lookup_failed", object_id=object_id, error=str(error) or type(error).__name__)
            _UPNS[key] = ""
        while len(_UPNS) > _UPNS_KEPT:
            _UPNS.popitem(last=False)
    return Person(object_id, name, _UPNS[key])


async def _record(value: ApprovalCommentInput, services: wiring.Services) -> ApprovalRecord:
    """The record to render: a refused-click record shows that click; the others every refused click so far."""
    state = value.record
    shown = state.attempts[-1:] if state.phase is Phase.REFUSED else state.attempts
    attempts = []
    for attempt in shown:
        person = await _person(value.instance_id, attempt.person_object_id, attempt.person_name, attempt.person_upn, services)
        attempts.append(AttemptLine(person, attempt.at, attempt.approve, attempt.reason))
    decided = state.decision
    decided_by = (
        await _person(value.instance_id, decided.decided_by_object_id, decided.decided_by_name, decided.decided_by_upn, services)
        if decided is not None
        else None
    )
    return ApprovalRecord(
        target=value.plan.account,
        plan=value.plan,
        phase=state.phase,
        requested_at=value.requested_at,
        expires_at=value.expires_at,
        attempts=tuple(attempts),
        approved=decided.approved if decided is not None else None,
        decided_by=decided_by,
        decided_at=decided.decided_at if decided is not None else None,
        results=state.results,
        notes=state.notes,
        problem=state.problem,
    )


@bp.activity_trigger(input_name="payload", activity=COMMENT.name)  # type: ignore[untyped-decorator]
async def comment_approval(payload: Payload, context: func.Context) -> Payload:
    """Write one state change of the account's approval as a comment of its own."""

    async def step(value: ApprovalCommentInput) -> CommentWritten:
        services = wiring.current()
        settings = services.settings()
        record = await _record(value, services)
        html = approval_comment(value.incident, record, max_chars=settings.comment_max_chars, generated_at=value.written_at)
        cid = comment_id(value.incident, value.instance_id, value.record.state, record.target.key)
        written = await asyncio.to_thread(services.sentinel().write_comment, value.incident, cid, html)
        return CommentWritten(written.comment_id, written.created, len(html))

    return await COMMENT.run(payload, context, step)
