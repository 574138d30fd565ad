"""
The Durable orchestration of one incident, and the activities that do its I/O (a `df.Blueprint`).

    [entities from Sentinel, if the trigger had none] -> enrich (gather, score, write the comment)
        -> labels / severity -> [an approval sub-orchestration per account whose plan needs one] -> end

The orchestrator is a deterministic generator: no I/O, no clock but `context.current_utc_datetime`,
no settings. Activities do the I/O and never raise for an expected failure: they return
`{"ok": False, "failure": ...}`, and the orchestrator then writes the failure comment (what failed,
what to check) and ends, so a broken workspace or a missing role never turns into a retry loop.
An activity that raises anyway (a defect) is caught the same way.

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

import time
import typing
from collections.abc import Generator
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import structlog

from common.errors import ReplayError
from common.logs import get_logger
from enrichment.domain.model import Verdict
from playbooks import wiring
from playbooks.domain import approval
from playbooks.domain.incident import IncidentRef, account_from_json, comment_id, incident_update, resolve_accounts
from playbooks.services import enrich

bp = df.Blueprint()

ORCHESTRATOR = "incident_orchestrator"
ACTIVITY_ENTITIES = "incident_entities"
ACTIVITY_ENRICH = "enrich_incident"
ACTIVITY_LABELS = "label_incident"
ACTIVITY_NOTICE = "comment_incident"

#: The purpose part of the one comment id this orchestration writes.
COMMENT_PURPOSE = "enrichment"

_log = get_logger("orchestration")

Result = dict[str, Any]
#: What an activity takes and returns. `typing.Dict`, not `dict[...]`: the Functions worker refuses
#: a builtin generic (`types.GenericAlias`) as a binding annotation and would drop the function.
Payload = typing.Dict[str, Any]  # noqa: UP006


# -- the orchestrator ------------------------------------------------------------------------------


@bp.orchestration_trigger(context_name="context", orchestration=ORCHESTRATOR)  # type: ignore[untyped-decorator]
def incident_orchestrator(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Result]:
    """The Durable entry point; the steps are in `orchestrate`."""
    wiring.configure()
    return (yield from orchestrate(context))


def orchestrate(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Result]:
    """Entities if needed, enrichment and comment, labels; on a failure, the failure comment."""
    incident = IncidentRef.from_json(context.get_input())
    if incident.accounts is None:
        found = yield from call_activity(context, ACTIVITY_ENTITIES, incident.to_json())
        if not found.get("ok"):
            return (yield from _failed(context, incident, found))
        incident = IncidentRef.from_json(found["incident"])
    if not incident.accounts:
        notice = yield from call_activity(context, ACTIVITY_NOTICE, {"incident": incident.to_json(), "notice": "no_account"})
        return _finish(context, incident, "no_account", comment_written=bool(notice.get("ok")))

    asked = {"instance_id": context.instance_id, "requested_at": approval.iso(context.current_utc_datetime)}
    enriched = yield from call_activity(context, ACTIVITY_ENRICH, {"incident": incident.to_json(), "approval": asked})
    if not enriched.get("ok"):
        return (yield from _failed(context, incident, enriched))
    summary = enriched["summary"]
    labels = "unchanged"
    if summary.get("verdict"):
        labelled = yield from call_activity(
            context, ACTIVITY_LABELS, {"incident": incident.to_json(), "verdict": summary["verdict"]}
        )
        labels = ("updated" if labelled.get("changed") else "unchanged") if labelled.get("ok") else "failed"
    approvals = yield from _approvals(context, incident, summary["accounts"])
    accounts = [{k: v for k, v in a.items() if k != "approval"} for a in summary["accounts"]]
    details: Result = {"verdict": summary.get("verdict"), "labels": labels, "accounts": accounts}
    return _finish(context, incident, "enriched", **details, **({"approvals": approvals} if approvals else {}))


def _approvals(
    context: df.DurableOrchestrationContext, incident: IncidentRef, accounts: list[Result]
) -> Generator[Any, Any, list[Result]]:
    """One approval sub-orchestration per prepared request, run side by side; their outcomes, or why they failed."""
    requests = [(a, a["approval"]) for a in accounts if a.get("approval")]
    if not requests:
        return []
    tasks = [
        context.call_sub_orchestrator(
            approval.APPROVAL_ORCHESTRATOR,
            approval.request_input(incident, account_from_json(a["account"]), a["plan"], request),
            request["instance_id"],
        )
        for a, request in requests
    ]
    try:
        outcomes = yield context.task_all(tasks)
    except Exception as error:  # a defect in the sub-orchestration: recorded, the run still ends cleanly
        if not context.is_replaying:
            _log.error("approval_failed", instance_id=context.instance_id, error=str(error)[:500])
        return [{"outcome": "failed", "error": str(error)[:500]}]
    return [dict(o) if isinstance(o, dict) else {"outcome": str(o)} for o in outcomes]


def call_activity(context: df.DurableOrchestrationContext, name: str, payload: Result) -> Generator[Any, Any, Result]:
    """Call an activity; a raise (a defect, or the host giving up) becomes a failure value."""
    try:
        result = yield context.call_activity(name, payload)
    except Exception as error:
        failure = enrich.Failure(
            f"run the {name} step", str(error).strip()[:500], "report this with the Function App's logs", "bug"
        )
        return {"ok": False, "failure": failure.to_json()}
    if not isinstance(result, dict):
        return {"ok": False, "failure": enrich.Failure.from_json(result).to_json()}
    return result


def _failed(context: df.DurableOrchestrationContext, incident: IncidentRef, result: Result) -> Generator[Any, Any, Result]:
    failure = enrich.Failure.from_json(result.get("failure"))
    notice = yield from call_activity(
        context, ACTIVITY_NOTICE, {"incident": incident.to_json(), "notice": "failure", "failure": failure.to_json()}
    )
    return _finish(context, incident, "failed", failure=failure.to_json(), comment_written=bool(notice.get("ok")))


def _finish(context: df.DurableOrchestrationContext, incident: IncidentRef, outcome: str, **details: Any) -> Result:
    result: Result = {"incident": incident.number, "incident_id": incident.name, "outcome": outcome, **details}
    if not context.is_replaying:
        _log.info(
            "incident_orchestrated",
            instance_id=context.instance_id,
            incident=incident.number,
            incident_id=incident.name,
            outcome=outcome,
            verdict=details.get("verdict"),
            labels=details.get("labels"),
            failure=(details.get("failure") or {}).get("error"),
        )
    return result


# -- the activities ----------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _failure(what: str, error: BaseException) -> Result:
    return {"ok": False, "failure": enrich.Failure.from_error(what, error).to_json()}


def log_activity(activity: str, invocation_id: str, started: float, result: Result, **ids: Any) -> Result:
    """The one summary line of an activity invocation: which step, which incident, the outcome and the time."""
    failure = result.get("failure") or {}
    _log.info(
        "activity_done",
        activity=activity,
        invocation_id=invocation_id,
        **ids,
        outcome="ok" if result.get("ok") else "failed",
        failure=failure.get("error"),
        hint=failure.get("hint"),
        ms=round((time.monotonic() - started) * 1000),
    )
    return result


def _logged(activity: str, context: func.Context, incident: IncidentRef, started: float, result: Result) -> Result:
    return log_activity(activity, context.invocation_id, started, result, incident=incident.number, incident_id=incident.name)


@bp.activity_trigger(input_name="payload", activity=ACTIVITY_ENTITIES)  # type: ignore[untyped-decorator]
def incident_entities(payload: Payload, context: func.Context) -> Payload:
    """Read the incident's entities from Sentinel and resolve its accounts."""
    started = time.monotonic()
    incident = IncidentRef.from_json(payload)
    with structlog.contextvars.bound_contextvars(invocation_id=context.invocation_id):
        try:
            services = wiring.current()
            entities = services.sentinel().list_entities(incident)
            resolution = resolve_accounts(entities, max_accounts=services.settings().max_accounts)
            result: Result = {"ok": True, "incident": incident.with_accounts(resolution).to_json()}
        except ReplayError as error:
            result = _failure("read the incident's entities from Sentinel", error)
        return _logged(ACTIVITY_ENTITIES, context, incident, started, result)


@bp.activity_trigger(input_name="payload", activity=ACTIVITY_ENRICH)  # type: ignore[untyped-decorator]
def enrich_incident(payload: Payload, context: func.Context) -> Payload:
    """Gather, score and write the enrichment comment; returns the compact summary."""
    started = time.monotonic()
    incident = IncidentRef.from_json(payload["incident"])
    services = wiring.current()
    with structlog.contextvars.bound_contextvars(invocation_id=context.invocation_id):
        try:
            settings = services.settings()
            result_value = enrich.enrich(incident, services.engine(), settings)
        except ReplayError as error:
            return _logged(ACTIVITY_ENRICH, context, incident, started, _failure("query the sign-in logs", error))
        asked = payload.get("approval")
        requests = (
            approval.approval_requests(
                incident,
                result_value.accounts,
                parent_instance_id=str(asked["instance_id"]),
                requested_at=approval.parse_time(asked["requested_at"], "requested_at"),
                settings=settings,
            )
            if isinstance(asked, dict)
            else {}
        )
        html = enrich.comment_html(result_value, settings, generated_at=_now(), approvals=requests)
        try:
            written = services.sentinel().upsert_comment(incident, comment_id(incident, COMMENT_PURPOSE), html)
        except ReplayError as error:
            return _logged(ACTIVITY_ENRICH, context, incident, started, _failure("write the incident comment", error))
        summary = enrich.summary(result_value)
        for index, request in requests.items():
            summary["accounts"][index]["approval"] = request
        result: Result = {
            "ok": True,
            "summary": summary,
            "comment": {"id": written.comment_id, "created": written.created, "chars": len(html)},
        }
        return _logged(ACTIVITY_ENRICH, context, incident, started, result)


@bp.activity_trigger(input_name="payload", activity=ACTIVITY_LABELS)  # type: ignore[untyped-decorator]
def label_incident(payload: Payload, context: func.Context) -> Payload:
    """Merge our verdict label into the incident (and raise its severity when configured)."""
    started = time.monotonic()
    incident = IncidentRef.from_json(payload["incident"])
    services = wiring.current()
    with structlog.contextvars.bound_contextvars(invocation_id=context.invocation_id):
        try:
            verdict = Verdict(payload["verdict"])
            settings = services.settings()
            changed = services.sentinel().update_incident(
                incident, lambda properties: incident_update(properties, verdict, raise_severity=settings.raise_severity)
            )
            result: Result = {"ok": True, "changed": changed}
        except ReplayError as error:
            result = _failure("update the incident's labels", error)
        return _logged(ACTIVITY_LABELS, context, incident, started, result)


@bp.activity_trigger(input_name="payload", activity=ACTIVITY_NOTICE)  # type: ignore[untyped-decorator]
def comment_incident(payload: Payload, context: func.Context) -> Payload:
    """Write the "no account" or the failure notice, in place of the enrichment comment."""
    started = time.monotonic()
    incident = IncidentRef.from_json(payload["incident"])
    services = wiring.current()
    with structlog.contextvars.bound_contextvars(invocation_id=context.invocation_id):
        try:
            settings = services.settings()
            if payload.get("notice") == "no_account":
                html = enrich.comment_html(enrich.Enrichment(incident, ()), settings, generated_at=_now())
            else:
                failure = enrich.Failure.from_json(payload.get("failure"))
                html = enrich.failure_html(incident, failure, settings, generated_at=_now())
            written = services.sentinel().upsert_comment(incident, comment_id(incident, COMMENT_PURPOSE), html)
            result: Result = {"ok": True, "comment": {"id": written.comment_id, "created": written.created}}
        except ReplayError as error:
            result = _failure("write the notice comment", error)
        return _logged(ACTIVITY_NOTICE, context, incident, started, result)
