"""POST /api/incidents through the decorated function, with a hand-written Durable client port."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus
from structlog.testing import capture_logs

from enrichment.domain.model import Verdict
from playbooks import wiring
from playbooks.domain import codec
from playbooks.domain.incident import MAX_BODY_BYTES, TITLE_CHARS, parse_incident
from playbooks.domain.workflow import (
    ApprovalEnd,
    ApprovalOutcome,
    EarlierRequest,
    Failure,
    IncidentRunInput,
    IncidentRunResult,
    IncidentRunStatus,
    RunEnd,
    RunFailed,
)
from playbooks.functions.http_api import duplicate_reason
from playbooks.functions.orchestrator import ORCHESTRATOR
from tests.app.indexed import functions

SUB = "d0cfe6b2-9ac0-4464-9919-dccaee2e48c0"
NAME = "73e01a99-5cd7-4139-a149-9f2736ff2ab5"
WORKSPACE = "8a1b2c3d-0000-4000-8000-000000000001"
INSTANCE = f"incident-{NAME}"
ENVIRON = {"REPLAY_WORKSPACE_ID": WORKSPACE, "REPLAY_CONTAINMENT_ENABLED": "false"}
FAILED_RUN = IncidentRunResult(84, NAME, RunEnd.FAILED, Verdict.BENIGN, failure=Failure("write the incident comment", "409"))


def _incident() -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{SUB}/resourceGroups/soc-rg/providers/Microsoft.OperationalInsights/workspaces/soc-ws/providers/Microsoft.SecurityInsights/Incidents/{NAME}",
        "name": NAME,
        "properties": {
            "title": "Token replay",
            "severity": "Medium",
            "status": "New",
            "incidentNumber": 84,
            "firstActivityTimeUtc": "2026-03-01T09:00:00Z",
            "relatedEntities": [{"kind": "Account", "properties": {"accountName": "alice", "upnSuffix": "contoso.com"}}],
        },
    }


def _trigger(**extra: Any) -> dict[str, Any]:
    return {"objectSchemaType": "Incident", "objectEventType": "Create", "workspaceId": WORKSPACE, "object": _incident(), **extra}


def _trigger_with(**properties: Any) -> dict[str, Any]:
    """The trigger body with some incident properties replaced."""
    incident = _incident()
    return _trigger(object={**incident, "properties": {**incident["properties"], **properties}})


def durable_status(
    runtime: str,
    minutes_ago: float = 1,
    output: Any = None,
    *,
    instance_id: str | None = None,
    run_input: Any = None,
    custom: Any = None,
) -> DurableOrchestrationStatus:
    """A status as the extension answers it (input only when given, as for `show_input=True`)."""
    updated = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()
    return DurableOrchestrationStatus.from_json(
        {
            "name": ORCHESTRATOR,
            "instanceId": instance_id or INSTANCE,
            "createdTime": updated,
            "lastUpdatedTime": updated,
            "runtimeStatus": runtime,
            **({"output": output} if output is not None else {}),
            **({"input": run_input} if run_input is not None else {}),
            **({"customStatus": custom} if custom is not None else {}),
        }
    )


class FakeDurableClient:
    """
    Our port of the Durable client: records starts, answers statuses like the extension does.

    `statuses` answer for the incident's first run in turn (the last one stays); `instances` are
    further instances by id (follow-ups), listed by `get_status_by` on their id prefix. A started
    instance is Pending with its input from then on.
    """

    def __init__(
        self,
        statuses: list[DurableOrchestrationStatus] | None = None,
        start_error: Exception | None = None,
        instances: dict[str, DurableOrchestrationStatus] | None = None,
    ) -> None:
        self.statuses = list(statuses or [])
        self.start_error = start_error
        self.instances = dict(instances or {})
        self.started: list[tuple[str, str | None, Any]] = []
        self.status_reads: list[str] = []
        self.listed: list[str] = []

    async def get_status(self, instance_id: str, *, show_input: bool = False) -> DurableOrchestrationStatus:
        self.status_reads.append(instance_id)
        if instance_id in self.instances:
            return self.instances[instance_id]
        if self.statuses and ":" not in instance_id:
            return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return DurableOrchestrationStatus.from_json("")  # what get_status gives for an unknown id (404)

    async def get_status_by(self, *, instance_id_prefix: str | None = None) -> list[DurableOrchestrationStatus]:
        self.listed.append(instance_id_prefix or "")
        return [status for iid, status in self.instances.items() if iid.startswith(instance_id_prefix or "")]

    async def start_new(self, orchestration_function_name: str, instance_id: str | None = None, client_input: Any = None) -> str:
        self.started.append((orchestration_function_name, instance_id, client_input))
        if self.start_error is not None:
            raise self.start_error
        self.instances[instance_id or "generated"] = durable_status("Pending", 0, instance_id=instance_id, run_input=client_input)
        return instance_id or "generated"

    def create_check_status_response(self, request: func.HttpRequest, instance_id: str) -> func.HttpResponse:
        uri = f"https://app.example/runtime/webhooks/durabletask/instances/{instance_id}"
        body = {"id": instance_id, "statusQueryGetUri": uri, "terminatePostUri": uri + "/terminate"}
        return func.HttpResponse(
            json.dumps(body), status_code=202, headers={"Content-Type": "application/json", "Location": uri, "Retry-After": "10"}
        )


class FakeContext:
    """The part of func.Context the trigger reads."""

    invocation_id = "inv-0001"
    function_name = "incident_http_start"


@pytest.fixture(autouse=True)
def services() -> Iterator[wiring.Services]:
    installed = wiring.Services(ENVIRON)
    previous = wiring.install(installed)
    yield installed
    wiring.install(previous)


def _request(body: Any) -> func.HttpRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return func.HttpRequest("POST", "https://app.example/api/incidents", headers={"Content-Type": "application/json"}, body=raw)


async def _post(body: Any, client: FakeDurableClient) -> tuple[func.HttpResponse, dict[str, Any]]:
    user_code = functions()["incident_http_start"].get_user_function().client_function
    response = await user_code(req=_request(body), client=client, context=FakeContext())
    return response, json.loads(response.get_body())


class TestStart:
    async def test_trigger_body_starts_one_orchestration(self) -> None:
        """The trigger body starts the orchestrator under the incident's instance id and answers 202 with the status URL."""
        client = FakeDurableClient()

        response, body = await _post(_trigger(), client)

        assert response.status_code == 202
        assert [(name, iid) for name, iid, _ in client.started] == [(ORCHESTRATOR, INSTANCE)]
        assert client.started[0][2]["incident"]["accounts"] == [{"upn": "alice@contoso.com", "object_id": ""}]
        assert (body["id"], body["duplicate"], body["incident"]) == (INSTANCE, False, 84)
        assert response.headers["Location"] == body["statusQueryGetUri"]

    async def test_bare_incident_resource_is_accepted(self) -> None:
        """A bare incident resource (GET shape) is accepted the same way."""
        client = FakeDurableClient()

        response, _body = await _post(_incident(), client)

        assert response.status_code == 202
        assert len(client.started) == 1

    async def test_second_delivery_is_a_duplicate(self) -> None:
        """The same incident delivered twice in a row starts one orchestration; the second answer says duplicate."""
        client = FakeDurableClient()

        await _post(_trigger(), client)
        response, body = await _post(_trigger(objectEventType="Update"), client)

        assert response.status_code == 202
        assert len(client.started) == 1
        assert (body["duplicate"], body["id"]) == (True, INSTANCE)
        assert "pending" in body["reason"]

    @pytest.mark.parametrize(
        ("runtime", "minutes_ago", "starts"),
        [
            ("Running", 1, False),
            ("Pending", 1, False),
            ("Suspended", 300, False),
            ("Completed", 10, False),
            ("Completed", 120, True),
            ("Failed", 1, True),
            ("Terminated", 1, True),
        ],
    )
    async def test_existing_instance_decides(self, runtime: str, minutes_ago: float, starts: bool) -> None:
        """Running or recently completed: duplicate. Failed, terminated or older: started again."""
        client = FakeDurableClient([durable_status(runtime, minutes_ago)])

        response, body = await _post(_trigger(), client)

        assert response.status_code == 202
        assert (len(client.started) == 1, body["duplicate"]) == (starts, not starts)

    @pytest.mark.parametrize(
        ("output", "starts"),
        [
            (codec.encode(IncidentRunResult(84, NAME, RunEnd.ENRICHED, Verdict.BENIGN)), False),
            (codec.encode(IncidentRunResult(84, NAME, RunEnd.NO_ACCOUNT)), False),
            (f"Orchestrator function 'incident_orchestrator' failed: {RunFailed(FAILED_RUN)}", True),
            ({"outcome": "failed", "failure": {"what": "query the sign-in logs"}}, True),
        ],
        ids=["enriched", "no account", "failed run", "failed run of an earlier version"],
    )
    async def test_only_a_successful_recent_run_suppresses_a_delivery(self, output: Any, starts: bool) -> None:
        """A run that failed never blocks the re-run its failure notice asks for; a successful one does."""
        client = FakeDurableClient([durable_status("Completed", 5, output)])

        _response, body = await _post(_trigger(), client)

        assert (len(client.started) == 1, body["duplicate"]) == (starts, not starts)

    async def test_lost_start_race_is_a_duplicate(self) -> None:
        """start_new refused because another delivery just started it: answered as a duplicate, not an error."""
        client = FakeDurableClient(
            [DurableOrchestrationStatus.from_json(""), durable_status("Running", 0)], start_error=Exception("instance exists")
        )

        response, body = await _post(_trigger(), client)

        assert (response.status_code, body["duplicate"]) == (202, True)

    async def test_failed_start_is_503_for_the_logic_app_to_retry(self) -> None:
        """start_new failing with no instance behind it answers 503 with Retry-After."""
        client = FakeDurableClient(start_error=Exception("task hub unavailable"))

        response, body = await _post(_trigger(), client)

        assert response.status_code == 503
        assert response.headers["Retry-After"] == "30"
        assert "task hub unavailable" in body["error"]


ALERT_A, ALERT_B, ALERT_C = (f"{n}a1e0000-0000-4000-8000-00000000000{n}" for n in (1, 2, 3))
DIGEST, OTHER_DIGEST = "d" * 32, "e" * 32


def _with_alerts(*ids: str, event: str = "Update") -> dict[str, Any]:
    """The trigger body with these alerts, in the shape of Sentinel's alert entities (`properties.systemAlertId`)."""
    alerts = [{"kind": "SecurityAlert", "name": i, "properties": {"systemAlertId": i.upper()}} for i in ids]
    body = _trigger_with(alerts=alerts)
    return {**body, "objectEventType": event}


def _run_input(*ids: str) -> dict[str, Any]:
    """What the first run was started with, had it been delivered with alerts `ids` (as `show_input=True` answers it)."""
    return codec.encode(IncidentRunInput(parse_incident(_trigger()), tuple(sorted(ids))))  # type: ignore[no-any-return]


def _follow_up_id(*ids: str) -> str:
    """The follow-up's id, computed here from its definition: the sorted alert set's sha256, 16 hex digits."""
    return f"{INSTANCE}:alerts-" + hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:16]


def _enriched_run(
    *ids: str, requests: tuple[EarlierRequest, ...] = (), runtime: str = "Completed", **result: Any
) -> DurableOrchestrationStatus:
    """The first run, done with its enrichment: its input, its custom status and (Completed) its output (`result`)."""
    done = IncidentRunResult(84, NAME, RunEnd.ENRICHED, Verdict.REPLAY_LIKELY, **result)
    custom = codec.encode(IncidentRunStatus(tuple(sorted(ids)), True, requests))
    return durable_status(
        runtime, 5, codec.encode(done) if runtime == "Completed" else None, run_input=_run_input(*ids), custom=custom
    )


class TestAlertsAdded:
    """Alerts added to an incident a run already covers start one follow-up run; the same alerts again start nothing."""

    async def test_new_alerts_within_the_window_start_exactly_one_follow_up(self) -> None:
        """The first run succeeded 5 minutes ago with alert A; A and B arrive: one follow-up, id from the sorted set {A, B}."""
        client = FakeDurableClient([_enriched_run(ALERT_A)])

        response, body = await _post(_with_alerts(ALERT_A, ALERT_B), client)

        assert response.status_code == 202
        assert [(name, iid) for name, iid, _ in client.started] == [(ORCHESTRATOR, _follow_up_id(ALERT_A, ALERT_B))]
        assert (body["id"], body["duplicate"], body["new_alerts"]) == (_follow_up_id(ALERT_A, ALERT_B), False, 1)
        started = codec.decode(IncidentRunInput, client.started[0][2])
        assert started.alert_ids == (ALERT_A, ALERT_B)
        assert started.follow_up is not None
        assert (started.follow_up.new_alert_ids, started.follow_up.earlier_runs) == ((ALERT_B,), (INSTANCE,))
        assert client.status_reads[0] == INSTANCE
        assert client.listed == [f"{INSTANCE}:alerts-"]

    async def test_the_same_redelivery_again_is_a_duplicate_of_the_follow_up(self) -> None:
        """A and B delivered twice: the second finds the follow-up it started and starts nothing."""
        client = FakeDurableClient([_enriched_run(ALERT_A)])

        await _post(_with_alerts(ALERT_A, ALERT_B), client)
        response, body = await _post(_with_alerts(ALERT_B, ALERT_A), client)

        assert len(client.started) == 1
        assert (response.status_code, body["duplicate"], body["id"]) == (202, True, _follow_up_id(ALERT_A, ALERT_B))
        assert "pending" in body["reason"]

    async def test_the_same_alert_set_is_a_duplicate_of_the_first_run(self) -> None:
        """The alerts the first run saw, delivered again (an update that added none): a duplicate, no follow-up, no listing."""
        client = FakeDurableClient([_enriched_run(ALERT_A, ALERT_B)])

        response, body = await _post(_with_alerts(ALERT_B, ALERT_A), client)

        assert (response.status_code, body["duplicate"], body["id"]) == (202, True, INSTANCE)
        assert "enriched 5 minute(s) ago" in body["reason"]
        assert client.started == []
        assert client.listed == []

    async def test_a_delivery_without_alert_ids_is_decided_as_before(self) -> None:
        """The Defender portal's incidents often carry `alerts: []`: nothing to compare, a duplicate within the window."""
        client = FakeDurableClient([_enriched_run(ALERT_A)])

        _response, body = await _post(_with_alerts(), client)

        assert (body["duplicate"], client.started) == (True, [])

    async def test_a_failed_first_run_runs_again_with_every_alert(self) -> None:
        """The first run failed: the delivery re-runs it under its own id (as before), not as a follow-up."""
        failed = f"Orchestrator function 'incident_orchestrator' failed: {RunFailed(FAILED_RUN)}"
        client = FakeDurableClient([durable_status("Failed", 5, failed, run_input=_run_input(ALERT_A))])

        _response, body = await _post(_with_alerts(ALERT_A, ALERT_B), client)

        assert [iid for _, iid, _ in client.started] == [INSTANCE]
        started = codec.decode(IncidentRunInput, client.started[0][2])
        assert (started.alert_ids, started.follow_up, body["duplicate"]) == ((ALERT_A, ALERT_B), None, False)

    async def test_a_failed_follow_up_runs_again_under_its_own_id(self) -> None:
        """A follow-up that failed blocks nothing: the same alert set delivered again runs it again, under the same id."""
        target = _follow_up_id(ALERT_A, ALERT_B)
        failed = durable_status("Failed", 3, f"failed: {RunFailed(FAILED_RUN)}", instance_id=target)
        client = FakeDurableClient([_enriched_run(ALERT_A)], instances={target: failed})

        _response, body = await _post(_with_alerts(ALERT_A, ALERT_B), client)

        assert ([iid for _, iid, _ in client.started], body["duplicate"]) == ([target], False)

    async def test_new_alerts_while_the_first_run_still_enriches_are_asked_again_later(self) -> None:
        """First run running, enrichment not done (its approvals unknown): new alerts get 503 + Retry-After; the same alerts a duplicate."""
        running = durable_status("Running", 0, run_input=_run_input(ALERT_A), custom=codec.encode(IncidentRunStatus((ALERT_A,))))
        client = FakeDurableClient([running])

        response, body = await _post(_with_alerts(ALERT_A, ALERT_B), client)
        again, same = await _post(_with_alerts(ALERT_A), client)

        assert (response.status_code, response.headers["Retry-After"], body["id"]) == (503, "30", INSTANCE)
        assert "still enriching" in body["error"]
        assert (again.status_code, same["duplicate"]) == (202, True)
        assert client.started == []

    async def test_a_follow_up_while_the_first_run_waits_for_approval_asks_no_second_card(self) -> None:
        """First run running, its card pending: the follow-up starts, carrying that request so the same plan is not asked again."""
        pending = EarlierRequest(f"{INSTANCE}:approval:0:20260301T090000", DIGEST)
        client = FakeDurableClient([_enriched_run(ALERT_A, requests=(pending,), runtime="Running")])

        _response, body = await _post(_with_alerts(ALERT_A, ALERT_B), client)

        assert body["duplicate"] is False
        assert codec.decode(IncidentRunInput, client.started[0][2]).earlier_requests == (pending,)

    async def test_an_expired_request_may_be_asked_again_a_decided_one_not(self) -> None:
        """A completed first run: its approved request is passed on (no second card), its expired one is not."""
        approved = EarlierRequest(f"{INSTANCE}:approval:0:20260301T090000", DIGEST)
        expired = EarlierRequest(f"{INSTANCE}:approval:1:20260301T090000", OTHER_DIGEST)
        outcomes = (
            ApprovalOutcome(approved.instance_id, ApprovalEnd.APPROVED),
            ApprovalOutcome(expired.instance_id, ApprovalEnd.EXPIRED),
        )
        client = FakeDurableClient([_enriched_run(ALERT_A, requests=(approved, expired), approvals=outcomes)])

        await _post(_with_alerts(ALERT_A, ALERT_B), client)

        assert codec.decode(IncidentRunInput, client.started[0][2]).earlier_requests == (approved,)

    async def test_a_third_alert_set_follows_every_run_that_counts(self) -> None:
        """A follow-up covered {A, B} and asked for a card; C arrives: a second follow-up for C alone, carrying both runs' requests."""
        first_card = EarlierRequest(f"{INSTANCE}:approval:0:20260301T090000", DIGEST)
        second = _follow_up_id(ALERT_A, ALERT_B)
        second_card = EarlierRequest(f"{second}:approval:1:20260301T091000", OTHER_DIGEST)
        follow_up = durable_status(
            "Running", 1, instance_id=second, custom=codec.encode(IncidentRunStatus((ALERT_A, ALERT_B), True, (second_card,)))
        )
        approval = durable_status("Running", 1, instance_id=second_card.instance_id)  # its sub-orchestration shares the prefix
        client = FakeDurableClient(
            [_enriched_run(ALERT_A, requests=(first_card,))], instances={second: follow_up, second_card.instance_id: approval}
        )

        _response, body = await _post(_with_alerts(ALERT_A, ALERT_B, ALERT_C), client)

        assert body["id"] == _follow_up_id(ALERT_A, ALERT_B, ALERT_C)
        started = codec.decode(IncidentRunInput, client.started[0][2])
        assert started.follow_up is not None
        assert (started.follow_up.new_alert_ids, started.follow_up.earlier_runs) == ((ALERT_C,), (INSTANCE, second))
        assert started.earlier_requests == (first_card, second_card)


class TestRefusals:
    @pytest.mark.parametrize(
        ("body", "message"),
        [
            (b"", "Run Trigger"),
            (b"{not json", "the body is not JSON"),
            ({"object": {"id": "/subscriptions/x", "properties": {}}}, "not a Sentinel incident resource id"),
            ({**_trigger(), "objectSchemaType": "Alert"}, "incidents only"),
            (_trigger(workspaceId="11111111-2222-4333-8444-555555555555"), "REPLAY_WORKSPACE_ID"),
            (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
            (b"\xff\xfe{}", "the body is not JSON"),
            (_trigger_with(firstActivityTimeUtc="9999-12-31T23:59:59Z"), "not the time of a Sentinel incident"),
            (_trigger_with(firstActivityTimeUtc="0001-01-01T00:00:00+01:00"), "not the time of a Sentinel incident"),
        ],
    )
    async def test_bad_input_is_400_with_the_reason(self, body: Any, message: str) -> None:
        """Each bad body (deep nesting, not UTF-8, years 9999/0001 included) gets 400 with {"error": reason}; nothing is started."""
        client = FakeDurableClient()

        response, answer = await _post(body, client)

        assert response.status_code == 400
        assert message in answer["error"]
        assert client.started == []

    async def test_bad_settings_are_500_naming_each_setting(self) -> None:
        """Bad settings answer 500 listing every problem by name, without echoing values."""
        wiring.install(wiring.Services({"REPLAY_WORKSPACE_ID": "my-secret-looking-value", "REPLAY_THRESHOLD_LIKELY": "500"}))
        client = FakeDurableClient()

        response, body = await _post(_trigger(), client)

        assert response.status_code == 500
        assert sorted(p.split(":")[0] for p in body["settings"]) == ["REPLAY_THRESHOLD_LIKELY", "REPLAY_WORKSPACE_ID"]
        assert "my-secret-looking-value" not in response.get_body().decode()
        assert client.started == []

    async def test_settings_needed_in_azure_are_required(self) -> None:
        """A missing workspace id (and containment settings while enabled) is reported before anything starts."""
        wiring.install(wiring.Services({}))

        response, body = await _post(_trigger(), FakeDurableClient())

        assert response.status_code == 500
        assert any(p.startswith("REPLAY_WORKSPACE_ID") for p in body["settings"])
        assert any(p.startswith("REPLAY_BOT_APP_ID") for p in body["settings"])


class TestHostileIntake:
    """Bodies built to hurt the intake: each gets a clear 4xx, or is cleaned and bounded before it is stored."""

    async def test_body_over_the_limit_is_413(self) -> None:
        """A body over MAX_BODY_BYTES answers 413 without being parsed; nothing starts."""
        client = FakeDurableClient()

        response, answer = await _post(b" " * (MAX_BODY_BYTES + 1), client)

        assert response.status_code == 413
        assert "an incident is at most" in answer["error"]
        assert client.started == []

    async def test_huge_title_is_capped_before_the_orchestration_input(self) -> None:
        """A 2 MB title is started as TITLE_CHARS characters: the stored input stays a few hundred bytes."""
        client = FakeDurableClient()
        response, _answer = await _post(_trigger_with(title="T" * 2_000_000), client)

        assert response.status_code == 202
        stored = client.started[0][2]["incident"]
        assert len(stored["title"]) == TITLE_CHARS
        assert len(json.dumps(stored)) < 2_000

    async def test_hidden_characters_and_lone_surrogates_are_cleaned(self) -> None:
        """NUL, ESC, a bidi override and a lone surrogate in the title: started, cleaned, encodable as UTF-8."""
        raw = json.dumps(_trigger()).replace('"title": "Token replay"', '"title": "Tok\\u0000en\\u001b[2J \\u202ere\\ud800"')
        client = FakeDurableClient()

        response, _answer = await _post(raw.encode(), client)

        assert response.status_code == 202
        stored = client.started[0][2]["incident"]
        assert stored["title"] == "Token[2J re\ufffd"
        json.dumps(stored, ensure_ascii=False).encode("utf-8")

    async def test_account_cap_comes_from_the_setting(self, services: wiring.Services) -> None:
        """REPLAY_MAX_ACCOUNTS=2 with three accounts: two in the orchestration input, the third named as not assessed."""
        wiring.install(wiring.Services({**ENVIRON, "REPLAY_MAX_ACCOUNTS": "2"}))
        people = [
            {"kind": "Account", "properties": {"accountName": name, "upnSuffix": "contoso.com"}} for name in ("a", "b", "c")
        ]
        client = FakeDurableClient()

        response, _answer = await _post(_trigger_with(relatedEntities=people), client)

        assert response.status_code == 202
        stored = client.started[0][2]["incident"]
        assert [a["upn"] for a in stored["accounts"]] == ["a@contoso.com", "b@contoso.com"]
        assert (stored["not_assessed"], stored["not_assessed_total"]) == ([{"upn": "c@contoso.com", "object_id": ""}], 1)


class TestLogging:
    async def test_one_summary_line_per_invocation(self) -> None:
        """Each invocation logs one line with the incident number, the invocation id and the outcome."""
        with capture_logs() as logs:
            await _post(_trigger(), FakeDurableClient())
            await _post(b"{", FakeDurableClient())

        lines = [
            (e["incident"], e["invocation_id"], e["outcome"], e["status"]) for e in logs if e["event"] == "incident_received"
        ]
        assert lines == [(84, "inv-0001", "started", 202), (None, "inv-0001", "rejected", 400)]


def test_duplicate_reason_for_a_missing_instance_is_none() -> None:
    """No instance yet (the extension's empty 404 answer) means a run may start."""
    assert duplicate_reason(DurableOrchestrationStatus.from_json(""), datetime.now(UTC)) is None
