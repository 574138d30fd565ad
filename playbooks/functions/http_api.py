"""
`POST /api/incidents`: a Sentinel incident in, its orchestration started (once), 202 out.

The body is the Logic App "Microsoft Sentinel incident" trigger body or a bare incident resource.
Bad input gets 400 with `{"error": ...}` (413 for a body over `MAX_BODY_BYTES`); bad app settings
get 500 naming every setting (never a value that could be a secret); otherwise 202 with Durable's
status URLs.

Incidents are delivered more than once (automation rules fire on create and on update, Logic Apps
retry), so the orchestration's instance id is derived from the incident and the starter looks before
it starts: an instance that is still pending or running, or that completed successfully within
`DUPLICATE_WINDOW`, is not started again; the answer is the same 202 with `"duplicate": true`.
Only successful runs suppress a delivery: a run that failed (runtime status Failed, or an output
whose outcome is `failed`), a terminated one or an older one is started again under the same id, as
a new run whose records are new comments (the earlier run's stay as they were).

Alerts added to an incident a run already covers are not a duplicate: the delivery's alert ids are
compared with those of the incident's runs (their input and custom status), and alerts none of them
saw start one follow-up run named after the alert set (`playbooks.domain.deliveries`). While a run
that counts has not finished its enrichment, such a delivery is answered 503 with Retry-After, which
the Logic App's retry policy sends again (its approvals must be known, so no plan gets two cards).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import azure.durable_functions as df
import azure.functions as func

from common.errors import InputError, SettingsError
from common.logs import get_logger
from playbooks import wiring
from playbooks.domain import codec, deliveries
from playbooks.domain.incident import BodyTooLarge, SentinelIncident, incident_body, instance_id, parse_incident
from playbooks.domain.workflow import (
    ApprovalEnd,
    EarlierRequest,
    IncidentRunStatus,
    RunEnd,
    run_input_of,
    run_result_of,
)
from playbooks.functions.orchestrator import ORCHESTRATOR

bp = df.Blueprint(http_auth_level=func.AuthLevel.FUNCTION)

#: A completed run this recent answers a new delivery of the same incident as a duplicate.
DUPLICATE_WINDOW = timedelta(minutes=60)
#: Runtime statuses of an instance that is still going: never start a second one beside it.
IN_PROGRESS = frozenset({"Pending", "Running", "ContinuedAsNew", "Suspended"})

_log = get_logger("http")


class DurableClient(Protocol):
    """The part of `DurableOrchestrationClient` the starter uses (tests pass their own)."""

    async def start_new(
        self, orchestration_function_name: str, instance_id: str | None = None, client_input: Any = None
    ) -> str: ...

    async def get_status(self, instance_id: str, *, show_input: bool = False) -> Any: ...

    async def get_status_by(self, *, instance_id_prefix: str | None = None) -> list[Any]: ...

    def create_check_status_response(self, request: func.HttpRequest, instance_id: str) -> func.HttpResponse: ...


def _json(status: int, body: dict[str, Any]) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


def runtime_status(status: Any) -> str | None:
    """The instance's runtime status name, or None when no instance has this id."""
    if not status:  # DurableOrchestrationStatus is falsy when the instance does not exist
        return None
    value = getattr(status, "runtime_status", None)
    if value is None:
        return None
    return str(getattr(value, "value", value))


def duplicate_reason(status: Any, now: datetime, window: timedelta = DUPLICATE_WINDOW) -> str | None:
    """Why an existing instance makes this delivery a duplicate, or None when a run may start."""
    name = runtime_status(status)
    if name in IN_PROGRESS:
        return f"an orchestration for this incident is {name.lower()}"
    if name == "Completed" and _succeeded(getattr(status, "output", None)):
        finished = getattr(status, "last_updated_time", None)
        if isinstance(finished, datetime):
            finished = finished if finished.tzinfo else finished.replace(tzinfo=UTC)
            if now - finished < window:
                minutes = max(0, int((now - finished).total_seconds() // 60))
                return f"this incident was enriched {minutes} minute(s) ago"
    return None


def _succeeded(output: object) -> bool:
    """Whether a Completed run's output says it succeeded (a run of this version that fails ends Failed instead)."""
    result = run_result_of(output)
    if result is not None:
        return result.outcome is not RunEnd.FAILED
    # An output this version cannot read (a run of an earlier version): its own word, when it has one.
    try:
        earlier = json.loads(output) if isinstance(output, str) else output
    except ValueError:
        return True
    return not (isinstance(earlier, dict) and earlier.get("outcome") == RunEnd.FAILED.value)


#: Approval outcomes after which the same plan may be asked for again (nobody decided it).
_UNDECIDED = frozenset({ApprovalEnd.EXPIRED, ApprovalEnd.CARD_NOT_POSTED, ApprovalEnd.FAILED})


def run_seen(status: Any, now: datetime) -> deliveries.RunSeen:
    """
    One run of the incident as `deliveries.decide` reads it: whether it counts, the alerts it covers
    (its input; else its custom status), whether its enrichment is done and the approvals it asked
    for that still wait or were decided (a completed run's expired or unposted requests do not count).
    """
    name = runtime_status(status)
    published: IncidentRunStatus | None = None
    custom = getattr(status, "custom_status", None) if status else None
    if custom not in (None, ""):
        try:
            published = codec.decode(IncidentRunStatus, custom)
        except InputError:
            published = None
    alerts: frozenset[str] | None = None
    given = getattr(status, "input_", None) if status else None
    if given not in (None, ""):
        try:
            alerts = frozenset(run_input_of(given).alert_ids)
        except InputError:
            alerts = None
    if alerts is None and published is not None:
        alerts = frozenset(published.alert_ids)
    requests: tuple[EarlierRequest, ...] = published.approvals if published is not None else ()
    result = run_result_of(getattr(status, "output", None)) if name == "Completed" else None
    if result is not None:
        ended = {outcome.instance_id for outcome in result.approvals if outcome.outcome in _UNDECIDED}
        if published is None:  # a run of an earlier version: every plan it asked for, to be safe
            requests = tuple(EarlierRequest("", a.plan.digest) for a in result.accounts if a.plan.needs_approval)
        requests = tuple(r for r in requests if r.instance_id not in ended)
    enriched = name not in IN_PROGRESS or (published is not None and published.enriched)
    return deliveries.RunSeen(
        str(getattr(status, "instance_id", "") or ""), duplicate_reason(status, now), alerts, enriched, requests
    )


async def _delivery(
    client: DurableClient, incident: SentinelIncident, delivered: tuple[str, ...], now: datetime
) -> deliveries.Delivery:
    """Read the incident's runs (the first, then its follow-ups when it counts) and decide what this delivery asks for."""
    iid = instance_id(incident)
    first_status = await client.get_status(iid, show_input=True)
    first = dataclasses.replace(run_seen(first_status, now), instance_id=iid)
    follow_ups: list[deliveries.RunSeen] = []
    covered = first.duplicate is not None and first.alert_ids is not None and set(delivered) <= first.alert_ids
    if runtime_status(first_status) is not None and not covered:
        listed = await client.get_status_by(instance_id_prefix=f"{iid}:alerts-")
        follow_ups = [
            run_seen(status, now)
            for status in listed
            if deliveries.is_follow_up(iid, str(getattr(status, "instance_id", "") or ""))
        ]
    return deliveries.decide(incident, delivered, first, follow_ups)


def _refused(error: Exception) -> bool:
    """
    Whether an exception is the Durable client reporting a refusal or an unreachable host.

    The client raises bare `Exception` for any unexpected answer and aiohttp's errors for the
    connection; anything else is a defect and must not be dressed up as a 503.
    """
    import aiohttp

    return type(error) is Exception or isinstance(error, OSError | TimeoutError | aiohttp.ClientError)


def _retry_later(body: dict[str, Any]) -> func.HttpResponse:
    """503 with Retry-After: the Logic App's retry policy sends the delivery again."""
    response = _json(503, body)
    response.headers["Retry-After"] = "30"
    return response


def _accepted(client: DurableClient, req: func.HttpRequest, iid: str, **extra: Any) -> func.HttpResponse:
    """Durable's check-status response with our fields added to its JSON body."""
    base = client.create_check_status_response(req, iid)
    try:
        body = json.loads(base.get_body() or b"{}")
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    body.update(extra)
    return func.HttpResponse(json.dumps(body), status_code=base.status_code, headers=dict(base.headers))


async def receive_incident(
    req: func.HttpRequest, client: DurableClient, *, services: wiring.Services, now: datetime, invocation_id: str = ""
) -> func.HttpResponse:
    """Validate, de-duplicate and start; logs one line saying what happened."""
    incident: SentinelIncident | None = None
    outcome, response = "rejected", None
    try:
        try:
            settings = services.settings()
        except SettingsError as error:
            outcome = "bad_settings"
            response = _json(500, {"error": "the Function App's settings are missing or wrong", "settings": list(error.problems)})
            return response
        try:
            body = incident_body(req.get_body())
            incident = parse_incident(body, received_at=now, max_accounts=settings.max_accounts)
        except InputError as error:
            response = _json(413 if isinstance(error, BodyTooLarge) else 400, {"error": str(error)})
            return response
        if incident.workspace_id and settings.workspace_id and incident.workspace_id != settings.workspace_id:
            response = _json(
                400,
                {
                    "error": f"the incident is from workspace {incident.workspace_id}; this app queries {settings.workspace_id} (REPLAY_WORKSPACE_ID)"
                },
            )
            return response
        delivered = deliveries.alert_ids(body)
        try:
            delivery = await _delivery(client, incident, delivered, now)
        except Exception as error:
            if not _refused(error):
                raise
            outcome = "status_failed"
            response = _retry_later({"error": f"the orchestration status could not be read: {str(error)[:300]}"})
            return response
        if isinstance(delivery, deliveries.Later):
            outcome = "in_progress"
            response = _retry_later({"error": delivery.reason, "id": delivery.instance_id, "incident": incident.number})
            return response
        iid, reason = delivery.instance_id, delivery.reason if isinstance(delivery, deliveries.Duplicate) else None
        if isinstance(delivery, deliveries.Start):
            try:
                await client.start_new(ORCHESTRATOR, iid, codec.encode(delivery.run_input))
            except Exception as error:
                if not _refused(error):
                    raise
                # Another delivery may have started it a moment ago; look again before failing.
                reason = duplicate_reason(await client.get_status(iid), now)
                if reason is None:
                    outcome = "start_failed"
                    response = _retry_later({"error": f"the orchestration could not be started: {str(error)[:300]}"})
                    return response
        follow_up = delivery.run_input.follow_up if isinstance(delivery, deliveries.Start) else None
        extra: dict[str, Any] = {"new_alerts": len(follow_up.new_alert_ids)} if follow_up is not None else {}
        if reason is not None:
            outcome = "duplicate"
            response = _accepted(client, req, iid, duplicate=True, reason=reason, incident=incident.number)
        else:
            outcome = "follow_up" if follow_up is not None else "started"
            response = _accepted(client, req, iid, duplicate=False, incident=incident.number, **extra)
        return response
    finally:
        _log.info(
            "incident_received",
            invocation_id=invocation_id,
            incident=incident.number if incident else None,
            incident_id=incident.name if incident else None,
            outcome=outcome,
            status=response.status_code if response is not None else None,
        )


@bp.route(route="incidents", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)  # type: ignore[untyped-decorator]
@bp.durable_client_input(client_name="client")  # type: ignore[untyped-decorator]
async def incident_http_start(
    req: func.HttpRequest, client: df.DurableOrchestrationClient, context: func.Context
) -> func.HttpResponse:
    """The HTTP trigger the Logic App calls."""
    return await receive_incident(
        req, client, services=wiring.current(), now=datetime.now(UTC), invocation_id=context.invocation_id
    )
