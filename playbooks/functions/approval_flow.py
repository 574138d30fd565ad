"""
The approval sub-orchestration of one account, and the activities that do its I/O (a `df.Blueprint`).

    publish "pending" -> post the card -> comment "awaiting approval"
        -> wait for the first of: a decision event, a refused-click event (recorded, keep waiting), the deadline
        -> decided: publish it, refresh the card, [approved: contain through Graph, refresh the card with results]
        -> expired: publish it, refresh the card as expired
        -> the approval comment with the outcome, each action's result and every refused attempt

The orchestrator is deterministic: no I/O, no clock but `context.current_utc_datetime`, no
settings (the deadline arrives in its input). The bot decides who may decide (`playbooks.adapters.teams`); this
orchestration takes only the first valid decision for its own plan digest, so a re-delivered or late
approval never acts twice. Activities return `{"ok": False, "failure": ...}` for expected failures
and the orchestration carries on: a card that cannot be refreshed is a note on the comment, a card
that cannot be posted ends the request with nothing done, and nothing destructive runs without a
decision.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import structlog

from common.errors import InputError, ReplayError
from common.logs import get_logger
from enrichment.domain.model import Baseline, TimeWindow, UserEvidence
from playbooks import wiring
from playbooks.adapters.teams import (
    APPROVAL_EVENT,
    APPROVAL_STATUS_KEY,
    ATTEMPT_EVENT,
    MessageReference,
    attempt_from_payload,
    attempt_payload,
    decided_approval,
    decision_from_payload,
    decision_payload,
    expired_approval,
    pending_approval,
)
from playbooks.domain import approval
from playbooks.domain.approval import APPROVAL_ORCHESTRATOR, ApprovalRecord, AttemptLine, Person, Phase, record_json
from playbooks.domain.authorization import ApprovalRequest
from playbooks.domain.incident import IncidentRef, comment_id
from playbooks.domain.plan import Decision
from playbooks.functions.orchestrator import Payload, Result, call_activity, log_activity
from playbooks.render.card import refreshed_card
from playbooks.render.comment import approval_comment
from playbooks.services import enrich

bp = df.Blueprint()

ACTIVITY_POST_CARD = "post_approval_card"
ACTIVITY_UPDATE_CARD = "update_approval_card"
ACTIVITY_CONTAIN = "contain_account"
ACTIVITY_COMMENT = "comment_approval"

#: The purpose part of the approval comment's id (one comment per incident and account).
COMMENT_PURPOSE = "approval"
#: How long the comment activity waits for the directory to name a clicker before it shows their object id.
NAME_LOOKUP_SECONDS = 10.0

_log = get_logger("approval")


# -- the orchestrator ----------------------------------------------------------------------------------


@bp.orchestration_trigger(context_name="context", orchestration=APPROVAL_ORCHESTRATOR)  # type: ignore[untyped-decorator]
def approval_orchestrator(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Result]:
    """The Durable entry point; the steps are in `run_approval`."""
    wiring.configure()
    return (yield from run_approval(context))


def run_approval(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Result]:
    """Post, wait, decide or expire, contain when approved, record everything on the incident."""
    request: dict[str, Any] = context.get_input()
    incident = IncidentRef.from_json(request["incident"])
    account = approval.account_of(request)
    digest = str(request["plan"]["digest"])
    expires_at = approval.parse_time(request["expires_at"], "expires_at")
    waiting = ApprovalRequest(incident.name, account, digest, approval.parse_time(request["requested_at"], "requested_at"))
    base = {key: request[key] for key in ("incident", "account", "plan", "requested_at", "expires_at", "instance_id")}
    if request.get("problem") or not request.get("card"):
        problem = str(request.get("problem") or "the request carries no card")
        yield from _comment(context, base, record_json(phase=Phase.NOT_POSTED, problem=problem))
        return _finish(context, incident, "card_not_posted", problem=problem)
    card = request["card"]

    context.set_custom_status({APPROVAL_STATUS_KEY: pending_approval(waiting)})
    posted = yield from call_activity(context, ACTIVITY_POST_CARD, {**base, "card": card})
    if not posted.get("ok"):
        context.set_custom_status({APPROVAL_STATUS_KEY: None})
        failure = enrich.Failure.from_json(posted.get("failure"))
        problem = f"{failure.error} ({failure.hint})" if failure.hint else failure.error
        yield from _comment(context, base, record_json(phase=Phase.NOT_POSTED, problem=problem))
        return _finish(context, incident, "card_not_posted", problem=problem)
    reference = posted["reference"]
    attempts: list[dict[str, Any]] = []
    yield from _comment(context, base, record_json(phase=Phase.PENDING))

    waited = yield from _wait_for_decision(context, base, digest, expires_at, attempts)
    if waited is None:
        context.set_custom_status({APPROVAL_STATUS_KEY: expired_approval(waiting)})
        notes = yield from _refresh(context, base, reference, card, expired=True)
        yield from _comment(context, base, record_json(phase=Phase.EXPIRED, attempts=attempts, notes=notes))
        return _finish(context, incident, "expired", attempts=len(attempts))
    decision, name = waited

    decided = decision_payload(decision, name)
    context.set_custom_status({APPROVAL_STATUS_KEY: decided_approval(waiting, decision, name)})
    notes = yield from _refresh(context, base, reference, card, decision=decided)
    results: list[Any] = []
    if decision.approved:
        contained = yield from call_activity(context, ACTIVITY_CONTAIN, {**base, "decision": decided})
        if contained.get("ok"):
            results, notes = contained["results"], [*contained["notes"], *notes]
        else:
            failure = enrich.Failure.from_json(contained.get("failure"))
            results = approval.failed_results(request["plan"], f"containment did not run: {failure.error}")
            notes = [*([failure.hint] if failure.hint else []), *notes]
        notes = [*notes, *(yield from _refresh(context, base, reference, card, decision=decided, results=results))]
    record = record_json(phase=Phase.DECIDED, attempts=attempts, decision=decided, results=results, notes=notes)
    yield from _comment(context, base, record)
    outcome = "approved" if decision.approved else "rejected"
    return _finish(context, incident, outcome, attempts=len(attempts), results=[(r["kind"], r["status"]) for r in results])


def _wait_for_decision(
    context: df.DurableOrchestrationContext, base: Result, digest: str, expires_at: datetime, attempts: list[Result]
) -> Generator[Any, Any, tuple[Decision, str] | None]:
    """
    The first valid decision on this plan, or None when the deadline comes first.

    Refused clicks arrive as their own events: each is added to `attempts` and the comment rewritten,
    and the wait goes on. A decision event that is unreadable or names another plan is logged and
    ignored (the bot never sends one; anyone else with the host's key might).
    """
    timer = context.create_timer(expires_at)
    decision_task = context.wait_for_external_event(APPROVAL_EVENT)
    while True:
        attempt_task = context.wait_for_external_event(ATTEMPT_EVENT)
        winner = yield context.task_any([decision_task, attempt_task, timer])
        if winner is attempt_task:
            try:
                attempts.append(attempt_payload(attempt_from_payload(attempt_task.result)))
            except InputError as error:
                _warn(context, "approval.bad_attempt_event", error)
                continue
            yield from _comment(context, base, record_json(phase=Phase.PENDING, attempts=attempts))
            continue
        if winner is not decision_task:
            return None
        try:
            decision, name = decision_from_payload(decision_task.result)
            if decision.plan_digest != digest:
                msg = f"decision for plan {decision.plan_digest[:12]}, not {digest[:12]}"
                raise InputError(msg)
        except InputError as error:
            _warn(context, "approval.bad_decision_event", error)
            decision_task = context.wait_for_external_event(APPROVAL_EVENT)
            continue
        timer.cancel()
        return decision, name


def _comment(context: df.DurableOrchestrationContext, base: Result, record: Result) -> Generator[Any, Any, Result]:
    return (yield from call_activity(context, ACTIVITY_COMMENT, {**base, "record": record}))


def _refresh(
    context: df.DurableOrchestrationContext, base: Result, reference: Any, card: Any, **state: Any
) -> Generator[Any, Any, list[str]]:
    """Refresh the posted card; a failure becomes a note for the comment (the decision stands regardless)."""
    payload = {"incident": base["incident"], "instance_id": context.instance_id, "reference": reference, "card": card, **state}
    updated = yield from call_activity(context, ACTIVITY_UPDATE_CARD, payload)
    if updated.get("ok"):
        return []
    failure = enrich.Failure.from_json(updated.get("failure"))
    return [f"The Teams card could not be refreshed: {failure.error}"]


def _warn(context: df.DurableOrchestrationContext, event: str, error: Exception) -> None:
    if not context.is_replaying:
        _log.warning(event, instance_id=context.instance_id, error=str(error))


def _finish(context: df.DurableOrchestrationContext, incident: IncidentRef, outcome: str, **details: Any) -> Result:
    if not context.is_replaying:
        _log.info("approval_orchestrated", instance_id=context.instance_id, incident=incident.number, outcome=outcome)
    return {"instance_id": context.instance_id, "outcome": outcome, **details}


# -- the activities ----------------------------------------------------------------------------------------


def _failure(what: str, error: BaseException) -> Result:
    return {"ok": False, "failure": enrich.Failure.from_error(what, error).to_json()}


def _done(activity: str, context: func.Context, payload: Payload, started: float, result: Result) -> Result:
    """The activity's summary line, with the incident and the approval it serves."""
    raw = payload.get("incident")
    incident: dict[str, Any] = raw if isinstance(raw, dict) else {}
    ids = {"incident": incident.get("number"), "incident_id": incident.get("name"), "approval": payload.get("instance_id")}
    return log_activity(activity, context.invocation_id, started, result, **ids)


@bp.activity_trigger(input_name="payload", activity=ACTIVITY_POST_CARD)  # type: ignore[untyped-decorator]
async def post_approval_card(payload: Payload, context: func.Context) -> Payload:
    """Post the pending card to the approval channel; returns where it lives."""
    started = time.monotonic()
    with structlog.contextvars.bound_contextvars(invocation_id=context.invocation_id):
        try:
            reference = await wiring.current().teams().post(payload["card"])
            result: Result = {"ok": True, "reference": reference.to_dict()}
        except ReplayError as error:
            result = _failure("post the approval card to Teams", error)
        return _done(ACTIVITY_POST_CARD, context, payload, started, result)


@bp.activity_trigger(input_name="payload", activity=ACTIVITY_UPDATE_CARD)  # type: ignore[untyped-decorator]
async def update_approval_card(payload: Payload, context: func.Context) -> Payload:
    """Replace the posted card with its decided (and, later, completed) or expired state."""
    started = time.monotonic()
    with structlog.contextvars.bound_contextvars(invocation_id=context.invocation_id):
        try:
            decision, name = (None, "")
            if payload.get("decision") is not None:
                decision, name = decision_from_payload(payload["decision"])
            results = approval.results_from_json(payload.get("results")) if payload.get("results") is not None else None
            card = refreshed_card(
                payload["card"], decision=decision, results=results, expired=bool(payload.get("expired")), decided_by_name=name
            )
            await wiring.current().teams().update(MessageReference.from_dict(payload["reference"]), card)
            result: Result = {"ok": True}
        except ReplayError as error:
            result = _failure("refresh the approval card in Teams", error)
        return _done(ACTIVITY_UPDATE_CARD, context, payload, started, result)


def _evidence_or_bare(incident: IncidentRef, account: Any, services: wiring.Services) -> tuple[Any, list[str]]:
    """
    The account's evidence read again now (so the MFA audit also sees registrations made while the
    card waited), or, when the workspace cannot answer, bare evidence: revoking sessions must not
    depend on Log Analytics, and the note says the audit could not match registrations.
    """
    settings = services.settings()
    try:
        enriched = enrich.enrich(incident.with_accounts(_only(account)), services.engine(), settings)
        outcome = enriched.accounts[0]
        return (outcome.evidence, outcome.assessment), []
    except ReplayError as error:
        window = TimeWindow(incident.at - timedelta(hours=settings.window_before_hours), incident.at)
        baseline = Baseline(TimeWindow(window.start - timedelta(days=settings.baseline_days), window.start))
        bare = UserEvidence(account, incident.at, window, (), baseline)
        from enrichment.domain.scoring import assess

        note = (
            f"The sign-in evidence could not be read again ({error}): the MFA audit lists methods without matching registrations."
        )
        return (bare, assess(bare, settings)), [note]


def _only(account: Any) -> Any:
    from playbooks.domain.incident import AccountResolution

    return AccountResolution((account,), (), ())


@bp.activity_trigger(input_name="payload", activity=ACTIVITY_CONTAIN)  # type: ignore[untyped-decorator]
async def contain_account(payload: Payload, context: func.Context) -> Payload:
    """Carry out the approved plan through Graph: one result per action, with Graph's request id."""
    from playbooks.services.containment import contain

    started = time.monotonic()
    with structlog.contextvars.bound_contextvars(invocation_id=context.invocation_id):
        try:
            incident = IncidentRef.from_json(payload["incident"])
            account = approval.account_of(payload)
            plan = approval.plan_from_json(incident.name, account, payload["plan"])
            decision, _ = decision_from_payload(payload["decision"])
            services = wiring.current()
            (evidence, assessment), notes = await asyncio.to_thread(_evidence_or_bare, incident, account, services)
            report = await contain(plan, decision, evidence, services.graph(), datetime.now(UTC), assessment=assessment)
            notes += [*report.notes, *([f"MFA audit: {report.audit.summary()}"] if report.audit is not None else [])]
            result: Result = {"ok": True, "results": [approval.result_json(r) for r in report.results], "notes": notes}
        except ReplayError as error:
            result = _failure("contain the account through Microsoft Graph", error)
        return _done(ACTIVITY_CONTAIN, context, payload, started, result)


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


async def _record(payload: Mapping[str, Any], services: wiring.Services) -> tuple[IncidentRef, ApprovalRecord]:
    incident = IncidentRef.from_json(payload["incident"])
    account = approval.account_of(payload)
    plan = approval.plan_from_json(incident.name, account, payload["plan"])
    state = payload["record"]
    attempts = []
    for raw in state.get("attempts") or ():
        attempt = attempt_from_payload(raw)
        person = await _person(attempt.person_object_id, attempt.person_name, services)
        attempts.append(AttemptLine(person, attempt.at, attempt.approve, attempt.reason))
    approved, decided_by, decided_at = None, None, None
    if state.get("decision") is not None:
        decision, name = decision_from_payload(state["decision"])
        approved, decided_at = decision.approved, decision.decided_at
        decided_by = await _person(decision.decided_by_object_id, name, services)
    record = ApprovalRecord(
        target=account,
        plan=plan,
        phase=str(state.get("phase")),
        requested_at=approval.parse_time(payload["requested_at"], "requested_at"),
        expires_at=approval.parse_time(payload["expires_at"], "expires_at"),
        attempts=tuple(attempts),
        approved=approved,
        decided_by=decided_by,
        decided_at=decided_at,
        results=approval.results_from_json(state.get("results")),
        notes=tuple(str(n) for n in state.get("notes") or ()),
        problem=str(state.get("problem") or ""),
    )
    return incident, record


@bp.activity_trigger(input_name="payload", activity=ACTIVITY_COMMENT)  # type: ignore[untyped-decorator]
async def comment_approval(payload: Payload, context: func.Context) -> Payload:
    """Write (or rewrite) the account's approval comment on the incident."""
    started = time.monotonic()
    services = wiring.current()
    with structlog.contextvars.bound_contextvars(invocation_id=context.invocation_id):
        try:
            settings = services.settings()
            incident, record = await _record(payload, services)
            html = approval_comment(incident, record, max_chars=settings.comment_max_chars, generated_at=datetime.now(UTC))
            cid = comment_id(incident, COMMENT_PURPOSE, record.target.key)
            written = await asyncio.to_thread(services.sentinel().upsert_comment, incident, cid, html)
            result: Result = {"ok": True, "comment": {"id": written.comment_id, "created": written.created}}
        except ReplayError as error:
            result = _failure("write the approval comment", error)
        return _done(ACTIVITY_COMMENT, context, payload, started, result)
