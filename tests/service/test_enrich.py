"""The whole pipeline: real queries on exported logs, real activities, the real Sentinel adapter against the fake."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import duckdb
import pytest
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus
from structlog.testing import capture_logs

from common.settings import Settings
from enrichment.adapters.embedded import WATCHLIST_FUNCTION, EmbeddedEngine
from enrichment.adapters.loganalytics import LogAnalyticsEngine, Retries
from enrichment.domain.model import Verdict
from enrichment.ports import QueryEngine
from playbooks import wiring
from playbooks.adapters.sentinel import SentinelIncidents, SentinelRetries
from playbooks.domain import codec
from playbooks.domain.incident import TITLE_CHARS, comment_id, parse_incident
from playbooks.domain.workflow import (
    Enriched,
    EnrichInput,
    Failure,
    IncidentRunResult,
    LabelState,
    RunEnd,
    RunFailed,
    RunRef,
    read_activity_result,
    run_result_of,
)
from playbooks.functions.http_api import receive_incident
from playbooks.functions.orchestrator import ACTIVITY_COMMENT, ACTIVITY_ENTITIES
from playbooks.functions.steps import ACTIVITY_RETRY
from playbooks.services import enrich
from tests.app.durable_history import T0, drive, play
from tests.app.indexed import functions
from tests.app.test_http import FakeDurableClient, durable_status
from tests.fakes import loganalytics_server as la
from tests.fakes.sentinel_server import FakeCredential, SentinelServer, conflict, forbidden, throttled
from tests.service import replay_data as data

pytestmark = pytest.mark.slow

ENVIRON = {
    "REPLAY_WORKSPACE_ID": data.WORKSPACE_ID,
    "REPLAY_TENANT_ID": "0f0e0d0c-0000-4000-8000-000000000009",
    "REPLAY_BOT_APP_ID": "bot",
    "REPLAY_TEAMS_CHANNEL_ID": "19:abc@thread.tacv2",
    "REPLAY_APPROVER_GROUP_ID": "a0a0a0a0-0000-4000-8000-000000000010",
    "REPLAY_RAISE_SEVERITY": "true",
}
SENTINEL_RETRIES = SentinelRetries(
    sdk_total=2,
    sdk_backoff_factor=0.01,
    sdk_backoff_max=0.05,
    read_timeout=5.0,
    conflict_wait_initial=0.01,
    conflict_wait_max=0.02,
)


class FakeContext:
    """The part of func.Context the activities read."""

    def __init__(self, invocation_id: str) -> None:
        self.invocation_id = invocation_id


class Wired:
    """Services pointed at the fakes, counting how often the engine was asked for."""

    def __init__(self, sentinel: SentinelServer, engine: QueryEngine, environ: dict[str, str] | None = None) -> None:
        self.engine_builds = 0
        self.credential = FakeCredential()

        def build_engine(_settings: Settings) -> QueryEngine:
            self.engine_builds += 1
            return engine

        def build_sentinel(settings: Settings) -> SentinelIncidents:
            return SentinelIncidents.create(
                settings, self.credential, endpoint=sentinel.url, connection_verify=sentinel.ca_path, retries=SENTINEL_RETRIES
            )

        # Containment is off here: these tests pin the enrichment; tests/service/test_approval_pipeline.py runs the approval.
        self.services = wiring.Services(
            environ or {**ENVIRON, "REPLAY_CONTAINMENT_ENABLED": "false"}, engine=build_engine, sentinel=build_sentinel
        )


@pytest.fixture
def wired(sentinel: SentinelServer, database: Path) -> Iterator[Wired]:
    engine = EmbeddedEngine.open(database)
    wired = Wired(sentinel, engine)
    previous = wiring.install(wired.services)
    yield wired
    wiring.install(previous)
    engine.close()


def execute(name: str, payload: dict[str, Any]) -> Any:
    """What the Functions host does for a scheduled activity: call its function with the input (and await it)."""
    result = functions()[name].get_user_function()(payload=payload, context=FakeContext(f"inv-{name}"))
    return asyncio.run(result) if inspect.iscoroutine(result) else result


INSTANCE = "incident-test"
FIRST, SECOND = "2026-04-14T09:30:00.000000Z", "2026-04-14T11:00:00.000000Z"


def _record_id(record: str, started: str = T0) -> str:
    """The comment id of `record` of the run that started at `started` (what the orchestration names it)."""
    run = RunRef(INSTANCE, datetime.fromisoformat(started))
    return comment_id(parse_incident(data.incident_resource()), run.key, record)


def _stored_comment(server: SentinelServer, record: str = "enrichment", started: str = T0) -> dict[str, Any]:
    """The one comment on the incident: the given record of the given run."""
    comments = server.comments(data.INCIDENT_NAME)
    assert list(comments) == [_record_id(record, started)]
    return next(iter(comments.values()))


def _result(output: Any) -> IncidentRunResult:
    """The run's result from its Durable output (a Failed run's is in its error text)."""
    result = run_result_of(output)
    assert result is not None
    return result


class TestPipeline:
    def test_enrich_assesses_and_plans_each_account(self, database: Path) -> None:
        """On the exported logs Alice's replay is likely and needs approval; Bob is benign with no plan."""
        incident = parse_incident(data.trigger_body(data.ENTITIES))
        with EmbeddedEngine.open(database) as engine:
            result = enrich.enrich(incident, engine, Settings.from_values(ENVIRON))

        outcomes = {o.evidence.account.upn: o for o in result.accounts}
        assert (outcomes[data.ALICE_UPN].assessment.verdict, outcomes[data.BOB_UPN].assessment.verdict) == (
            Verdict.REPLAY_LIKELY,
            Verdict.BENIGN,
        )
        assert data.ATTACKER_IP in outcomes[data.ALICE_UPN].assessment.suspect_ips
        assert (outcomes[data.ALICE_UPN].plan.needs_approval, outcomes[data.BOB_UPN].plan.needs_approval) == (True, False)
        assert result.verdict is Verdict.REPLAY_LIKELY

    def test_orchestration_writes_the_comment_and_labels(self, wired: Wired, sentinel: SentinelServer) -> None:
        """Trigger to end: one comment with both accounts (hostile values escaped), our label, severity raised."""
        incident = parse_incident(data.trigger_body(data.ENTITIES))

        output, called = drive(codec.encode(incident), execute)

        result = _result(output)
        assert (result.outcome, result.verdict, result.labels) == (RunEnd.ENRICHED, Verdict.REPLAY_LIKELY, LabelState.UPDATED)
        assert ACTIVITY_ENTITIES not in called
        message = _stored_comment(sentinel)["message"]
        assert message.index(data.ALICE_UPN) < message.index(data.BOB_UPN)
        assert data.ATTACKER_IP in message
        assert "<img" not in message
        assert "&lt;img src=x onerror=alert(1)&gt;" in message
        assert "Anomalous token &lt;b&gt;for&lt;/b&gt; Alice" in message
        stored = sentinel.incident(data.INCIDENT_NAME)
        assert [label["labelName"] for label in stored.properties["labels"]] == ["vip", "token-replay:likely"]
        assert stored.properties["severity"] == "High"
        assert wired.credential.scopes[:1] == [("https://management.azure.com/.default",)]

    def test_a_later_run_adds_its_own_record_and_never_rewrites_the_first(self, wired: Wired, sentinel: SentinelServer) -> None:
        """The incident delivered again later: a second enrichment comment; the first stays as written; labels not duplicated."""
        incident = parse_incident(data.trigger_body(data.ENTITIES))

        drive(codec.encode(incident), execute, started=FIRST)
        first = sentinel.comments(data.INCIDENT_NAME)
        output, _called = drive(codec.encode(incident), execute, started=SECOND)

        comments = sentinel.comments(data.INCIDENT_NAME)
        assert list(comments) == [_record_id("enrichment", FIRST), _record_id("enrichment", SECOND)]
        assert comments[_record_id("enrichment", FIRST)] == first[_record_id("enrichment", FIRST)]
        assert [c["writes"] for c in comments.values()] == [1, 1]
        assert _result(output).labels is LabelState.UNCHANGED
        assert sentinel.count("put_incident") == 1

    def test_a_replayed_run_writes_its_record_once(self, wired: Wired, sentinel: SentinelServer) -> None:
        """The same run played again (a retried write, a redelivered activity) lands on its own comment: never a duplicate."""
        incident = parse_incident(data.trigger_body(data.ENTITIES))

        drive(codec.encode(incident), execute)
        drive(codec.encode(incident), execute)

        assert _stored_comment(sentinel)["writes"] == 2
        assert [label["labelName"] for label in sentinel.incident(data.INCIDENT_NAME).properties["labels"]] == [
            "vip",
            "token-replay:likely",
        ]

    def test_entities_are_read_when_the_trigger_has_none(self, wired: Wired, sentinel: SentinelServer) -> None:
        """A bare incident: the entities come from POST .../entities, then the enrichment runs on them."""
        incident = parse_incident(data.incident_resource())

        output, called = drive(codec.encode(incident), execute)

        assert called[0] == ACTIVITY_ENTITIES
        assert sentinel.count("entities") == 1
        assert [a.account.upn for a in _result(output).accounts] == [data.ALICE_UPN, data.BOB_UPN]

    def test_an_incident_without_accounts_gets_a_notice_and_no_query(self, wired: Wired, sentinel: SentinelServer) -> None:
        """Only an IP entity: the "no account" comment is written and no engine is ever built."""
        incident = parse_incident(data.trigger_body([data.ENTITIES[0]]))

        output, called = drive(codec.encode(incident), execute)

        assert (_result(output).outcome, called) == (RunEnd.NO_ACCOUNT, [ACTIVITY_COMMENT])
        assert "No account to assess" in _stored_comment(sentinel, "no_account")["message"]
        assert wired.engine_builds == 0

    def test_huge_title_keeps_every_payload_small(self, wired: Wired, sentinel: SentinelServer) -> None:
        """A 2 MB title: the input and every activity payload of the run together stay under 16 KB (capped at intake)."""
        body = data.trigger_body(data.ENTITIES)
        body["object"]["properties"]["title"] = "T" * 2_000_000
        incident = parse_incident(body)
        sizes = [len(json.dumps(codec.encode(incident)))]

        def measured(name: str, payload: dict[str, Any]) -> Any:
            result = execute(name, payload)
            sizes.extend((len(json.dumps(payload)), len(json.dumps(result))))
            return result

        output, _called = drive(codec.encode(incident), measured)

        assert _result(output).outcome is RunEnd.ENRICHED
        assert sum(sizes) < 16_000
        message = _stored_comment(sentinel)["message"]
        assert "T" * 100 in message
        assert "T" * (TITLE_CHARS + 1) not in message

    def test_accounts_read_from_sentinel_are_capped_by_the_setting(self, sentinel: SentinelServer, database: Path) -> None:
        """Entities read from Sentinel with REPLAY_MAX_ACCOUNTS=1: one account assessed, the other named in the comment."""
        incident = parse_incident(data.incident_resource())
        with EmbeddedEngine.open(database) as engine:
            wired = Wired(sentinel, engine, {**ENVIRON, "REPLAY_CONTAINMENT_ENABLED": "false", "REPLAY_MAX_ACCOUNTS": "1"})
            previous = wiring.install(wired.services)
            try:
                output, called = drive(codec.encode(incident), execute)
            finally:
                wiring.install(previous)

        assert called[0] == ACTIVITY_ENTITIES
        assert [a.account.upn for a in _result(output).accounts] == [data.ALICE_UPN]
        message = _stored_comment(sentinel)["message"]
        assert f"REPLAY_MAX_ACCOUNTS: the first 1 accounts were assessed, 1 more were not: {data.BOB_UPN}" in message

    def test_each_activity_logs_one_line_with_its_invocation(self, wired: Wired) -> None:
        """Every activity invocation logs one summary line with its invocation id and outcome."""
        incident = parse_incident(data.trigger_body(data.ENTITIES))
        with capture_logs() as logs:
            drive(codec.encode(incident), execute)

        lines = [(e["activity"], e["invocation_id"], e["outcome"], e["incident"]) for e in logs if e["event"] == "activity_done"]
        assert lines == [
            ("enrich_incident", "inv-enrich_incident", "ok", 4242),
            ("label_incident", "inv-label_incident", "ok", 4242),
        ]


@pytest.fixture
def workspace(sentinel: SentinelServer, database: Path) -> Iterator[la.LogAnalyticsServer]:
    """The pipeline on the real Log Analytics engine against the workspace fake (faults scripted per test)."""
    con = duckdb.connect(str(database), read_only=True)
    with la.LogAnalyticsServer(con, workspace_id=data.WORKSPACE_ID, functions=[WATCHLIST_FUNCTION]) as server:
        settings = Settings.from_values({**ENVIRON, "REPLAY_LOGS_ENDPOINT": server.url})
        retries = Retries(
            sdk_total=1, sdk_backoff_factor=0.01, sdk_backoff_max=0.05, attempts=1, wait_initial=0.01, wait_max=0.02
        )
        engine = LogAnalyticsEngine.create(settings, la.FakeCredential(), connection_verify=server.ca_path, retries=retries)
        wired = Wired(sentinel, engine, {**ENVIRON, "REPLAY_LOGS_ENDPOINT": server.url, "REPLAY_CONTAINMENT_ENABLED": "false"})
        previous = wiring.install(wired.services)
        try:
            yield server
        finally:
            wiring.install(previous)
    con.close()


def _deliver(output: Any, runtime: str) -> dict[str, Any]:
    """POST /api/incidents again while the last run's status is `runtime` with `output`: the starter's answer."""
    updated = (datetime.now(UTC) - timedelta(minutes=2)).isoformat()
    status = DurableOrchestrationStatus.from_json(
        {
            "name": "incident_orchestrator",
            "instanceId": INSTANCE,
            "createdTime": updated,
            "lastUpdatedTime": updated,
            "runtimeStatus": runtime,
            "output": output,
        }
    )
    client = FakeDurableClient([status])
    request = func.HttpRequest(
        "POST", "https://app.example/api/incidents", body=json.dumps(data.trigger_body(data.ENTITIES)).encode()
    )
    response = asyncio.run(receive_incident(request, client, services=wiring.current(), now=datetime.now(UTC)))
    return {**json.loads(response.get_body()), "started": len(client.started)}


def trigger_with_alerts(*ids: str) -> dict[str, Any]:
    """The trigger body of the incident carrying alerts `ids` (Sentinel's alert entity shape)."""
    body = data.trigger_body(data.ENTITIES)
    body["object"]["properties"]["alerts"] = [
        {"kind": "SecurityAlert", "name": i, "properties": {"systemAlertId": i}} for i in ids
    ]
    return body


def start_delivery(body: dict[str, Any], client: FakeDurableClient) -> tuple[str, Any]:
    """POST /api/incidents with `body`: the instance id the starter started and its input."""
    request = func.HttpRequest("POST", "https://app.example/api/incidents", body=json.dumps(body).encode())
    response = asyncio.run(receive_incident(request, client, services=wiring.current(), now=datetime.now(UTC)))
    assert response.status_code == 202, response.get_body()
    [(_name, iid, run_input)] = client.started
    return str(iid), run_input


class TestAlertsAdded:
    ALERT_A, ALERT_B = "7a1e0000-0000-4000-8000-00000000000a", "7a1e0000-0000-4000-8000-00000000000b"

    def test_a_follow_up_writes_a_new_comment_and_the_first_stays_as_written(
        self, wired: Wired, sentinel: SentinelServer
    ) -> None:
        """Alert B added within the hour: the starter's follow-up writes its own comment saying why; the first run's is untouched."""
        first_id, first_input = start_delivery(trigger_with_alerts(self.ALERT_A), FakeDurableClient())
        first = play(first_input, execute, [], instance_id=first_id, started=FIRST)
        before = sentinel.comments(data.INCIDENT_NAME)
        status = durable_status(
            "Completed", 5, first.output, instance_id=first_id, run_input=first_input, custom=first.statuses[-1]
        )

        follow_id, follow_input = start_delivery(trigger_with_alerts(self.ALERT_A, self.ALERT_B), FakeDurableClient([status]))
        follow = play(follow_input, execute, [], instance_id=follow_id, started=SECOND)

        assert follow_id.startswith(f"{first_id}:alerts-")
        assert (_result(first.output).outcome, _result(follow.output).outcome) == (RunEnd.ENRICHED, RunEnd.ENRICHED)
        comments = sentinel.comments(data.INCIDENT_NAME)
        incident = parse_incident(data.incident_resource())
        first_comment = comment_id(incident, RunRef(first_id, datetime.fromisoformat(FIRST)).key, "enrichment")
        second_comment = comment_id(incident, RunRef(follow_id, datetime.fromisoformat(SECOND)).key, "enrichment")
        assert list(comments) == [first_comment, second_comment]
        assert comments[first_comment] == before[first_comment]
        assert [c["writes"] for c in comments.values()] == [1, 1]
        assert "Follow-up for 1 newly added alert(s)" in comments[second_comment]["message"]
        assert self.ALERT_B in comments[second_comment]["message"]
        assert "Follow-up" not in comments[first_comment]["message"]
        assert data.BOB_UPN in comments[second_comment]["message"]  # the incident as it is now: every account


class TestWritesThatSurvive:
    @pytest.mark.parametrize("status", [409, 412])
    def test_comment_conflicts_are_written_again_and_the_run_completes(
        self, wired: Wired, sentinel: SentinelServer, status: int
    ) -> None:
        """409/412 on the comment PUT: written again (tenacity), one enrichment comment, the run enriched."""
        sentinel.fail("put_comment", conflict(status), conflict(status))
        incident = parse_incident(data.trigger_body(data.ENTITIES))

        output, _called = drive(codec.encode(incident), execute)

        assert _result(output).outcome is RunEnd.ENRICHED
        assert [r.status for r in sentinel.requests if r.route == "put_comment"] == [status, status, 201]
        assert _stored_comment(sentinel)["writes"] == 1

    def test_label_conflicts_and_throttling_are_retried(self, wired: Wired, sentinel: SentinelServer) -> None:
        """409 then 429 on the incident PUT: read, merged and written again; the label is set once."""
        sentinel.fail("put_incident", conflict(409), throttled(0))
        incident = parse_incident(data.trigger_body(data.ENTITIES))

        output, _called = drive(codec.encode(incident), execute)

        assert (_result(output).outcome, _result(output).labels) == (RunEnd.ENRICHED, LabelState.UPDATED)
        assert [label["labelName"] for label in sentinel.incident(data.INCIDENT_NAME).properties["labels"]] == [
            "vip",
            "token-replay:likely",
        ]

    def test_a_comment_that_cannot_be_written_fails_the_run_and_the_redelivery_writes_it(
        self, wired: Wired, sentinel: SentinelServer
    ) -> None:
        """Conflicts past every retry: Failed with the enrichment in its output, no notice in its place; the next delivery writes it."""
        spent = SENTINEL_RETRIES.conflict_attempts * (1 + ACTIVITY_RETRY.max_number_of_attempts)
        sentinel.fail("put_comment", *[conflict()] * spent)
        incident = parse_incident(data.trigger_body(data.ENTITIES))

        failed, called = drive(codec.encode(incident), execute, started=FIRST)

        result = _result(failed)
        assert (result.outcome, result.verdict, result.comment_written) == (RunEnd.FAILED, Verdict.REPLAY_LIKELY, False)
        assert result.failure is not None
        assert (result.failure.status, result.failure.transient) == (409, True)
        assert called.count(ACTIVITY_COMMENT) == ACTIVITY_RETRY.max_number_of_attempts  # after the enrichment's own write
        assert sentinel.comments(data.INCIDENT_NAME) == {}

        again = _deliver(failed, "Failed")
        rerun, _called = drive(codec.encode(incident), execute, started=SECOND)

        assert (again["duplicate"], again["started"]) == (False, 1)
        assert _result(rerun).outcome is RunEnd.ENRICHED
        assert "Token replay enrichment" in _stored_comment(sentinel, "enrichment", SECOND)["message"]

    def test_only_a_successful_run_suppresses_the_redelivery(self, wired: Wired) -> None:
        """A completed enrichment answers the next delivery as a duplicate; the same delivery after a failed run starts one."""
        incident = parse_incident(data.trigger_body(data.ENTITIES))
        output, _called = drive(codec.encode(incident), execute)

        assert _deliver(output, "Completed")["duplicate"] is True
        failed = IncidentRunResult(4242, data.INCIDENT_NAME, RunEnd.FAILED, failure=Failure("query the sign-in logs", "403"))
        assert _deliver(str(RunFailed(failed)), "Failed")["duplicate"] is False


class TestFailures:
    def test_a_throttled_workspace_is_retried_by_durable_and_the_run_enriches(
        self, workspace: la.LogAnalyticsServer, sentinel: SentinelServer
    ) -> None:
        """Log Analytics 503 past the SDK's retry: Durable runs the enrichment again, which succeeds; one enrichment comment."""
        # Both of the evidence question's attempts (the three questions run side by side, each with its own retry).
        workspace.fail(la.server_error(503), la.server_error(503), query="evidence")
        incident = parse_incident(data.trigger_body(data.ENTITIES))

        output, called = drive(codec.encode(incident), execute)

        assert _result(output).outcome is RunEnd.ENRICHED
        assert called.count("enrich_incident") == 2
        assert _stored_comment(sentinel)["writes"] == 1

    def test_workspace_403_then_a_rerun_adds_the_enrichment(
        self, workspace: la.LogAnalyticsServer, sentinel: SentinelServer
    ) -> None:
        """Log Analytics refuses (403): the run ends Failed and its notice says what to check; a re-run adds the enrichment."""
        workspace.fail(la.forbidden())
        incident = parse_incident(data.trigger_body(data.ENTITIES))

        failed, called = drive(codec.encode(incident), execute, started=FIRST)
        failure_message = _stored_comment(sentinel, "failure", FIRST)["message"]
        rerun, _ = drive(codec.encode(incident), execute, started=SECOND)

        assert called.count("enrich_incident") == 1  # a refusal is not retried

        failed_run = _result(failed)
        assert failed_run.failure is not None
        assert (failed_run.outcome, failed_run.failure.status, failed_run.comment_written) == (RunEnd.FAILED, 403, True)
        assert "The enrichment failed" in failure_message
        assert "Log Analytics Reader" in failure_message
        assert _result(rerun).outcome is RunEnd.ENRICHED
        comments = sentinel.comments(data.INCIDENT_NAME)
        assert list(comments) == [_record_id("failure", FIRST), _record_id("enrichment", SECOND)]
        assert comments[_record_id("failure", FIRST)]["message"] == failure_message  # the failed run's record stays
        assert "The enrichment failed" not in comments[_record_id("enrichment", SECOND)]["message"]

    @pytest.mark.parametrize("queries", [("evidence",), ("evidence", "baseline", "context")], ids=["evidence", "all"])
    def test_workspace_204_is_insufficient_evidence_never_benign(
        self, workspace: la.LogAnalyticsServer, sentinel: SentinelServer, queries: tuple[str, ...]
    ) -> None:
        """A 204 (no data) from Log Analytics: verdict and label insufficient evidence, the comment says what was missing."""
        for query in queries:
            workspace.fail(la.no_content(), query=query)
        incident = parse_incident(data.trigger_body(data.ENTITIES))

        output, _ = drive(codec.encode(incident), execute)

        result = _result(output)
        assert (result.outcome, result.verdict) == (RunEnd.ENRICHED, Verdict.INSUFFICIENT_EVIDENCE)
        assert {a.verdict for a in result.accounts} == {Verdict.INSUFFICIENT_EVIDENCE}
        labels = [label["labelName"] for label in sentinel.incident(data.INCIDENT_NAME).properties["labels"]]
        assert labels == ["vip", "token-replay:insufficient-evidence"]
        message = _stored_comment(sentinel)["message"]
        assert "Missing evidence" in message
        assert "SigninLogs: not read: evidence query: workspace returned no data (204)" in message
        assert "Benign" not in message

    def test_sentinel_refusing_every_write_ends_failed_with_the_enrichment(self, wired: Wired, sentinel: SentinelServer) -> None:
        """Comment PUTs forbidden: no failure notice is tried in its place; the run ends Failed with the enrichment in its output."""
        sentinel.fail("put_comment", forbidden(), forbidden())
        incident = parse_incident(data.trigger_body(data.ENTITIES))

        output, called = drive(codec.encode(incident), execute)

        result = _result(output)
        assert (result.outcome, result.comment_written, result.verdict) == (RunEnd.FAILED, False, Verdict.REPLAY_LIKELY)
        assert [a.account.upn for a in result.accounts] == [data.ALICE_UPN, data.BOB_UPN]
        assert result.failure is not None
        assert result.failure.what == "write the incident comment"
        assert "Microsoft Sentinel Responder" in result.failure.hint
        assert called == ["enrich_incident"]  # a refusal is not written again, and no notice is tried in its place
        assert sentinel.comments(data.INCIDENT_NAME) == {}

    def test_bad_settings_fail_as_a_value(self, wired: Wired, sentinel: SentinelServer) -> None:
        """Settings missing in Azure: the activity returns a failure naming them instead of raising."""
        wiring.install(wiring.Services({"REPLAY_CONTAINMENT_ENABLED": "false"}))
        incident = parse_incident(data.trigger_body(data.ENTITIES))

        run = RunRef(INSTANCE, data.AT)
        result = read_activity_result(Enriched, execute("enrich_incident", codec.encode(EnrichInput(incident, run, data.AT))))

        assert isinstance(result, Failure)
        assert result.what == "read the app settings"
        assert "REPLAY_WORKSPACE_ID" in result.error
