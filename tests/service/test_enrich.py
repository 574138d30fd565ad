"""The whole pipeline: real queries on exported logs, real activities, the real Sentinel adapter against the fake."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from structlog.testing import capture_logs

from common.settings import Settings
from enrichment.adapters.embedded import WATCHLIST_FUNCTION, EmbeddedEngine
from enrichment.adapters.loganalytics import LogAnalyticsEngine, Retries
from enrichment.domain.model import Verdict
from enrichment.ports import QueryEngine
from playbooks import wiring
from playbooks.adapters.sentinel import SentinelIncidents, SentinelRetries
from playbooks.domain.incident import TITLE_CHARS, comment_id, parse_incident
from playbooks.functions.orchestrator import ACTIVITY_ENTITIES, ACTIVITY_NOTICE
from playbooks.services import enrich
from tests.app.durable_history import drive
from tests.app.indexed import functions
from tests.fakes import loganalytics_server as la
from tests.fakes.sentinel_server import FakeCredential, SentinelServer, forbidden
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
    """What the Functions host does for a scheduled activity: call its function with the input."""
    return functions()[name].get_user_function()(payload=payload, context=FakeContext(f"inv-{name}"))


def _stored_comment(server: SentinelServer) -> dict[str, Any]:
    comments = server.comments(data.INCIDENT_NAME)
    assert list(comments) == [comment_id(parse_incident(data.incident_resource()), "enrichment")]
    return next(iter(comments.values()))


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

        output, called = drive(incident.to_json(), execute)

        assert (output["outcome"], output["verdict"], output["labels"]) == ("enriched", "replay_likely", "updated")
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

    def test_duplicate_delivery_updates_the_one_comment(self, wired: Wired, sentinel: SentinelServer) -> None:
        """The same incident run twice: one comment id, written twice; labels not duplicated, no second PUT."""
        incident = parse_incident(data.trigger_body(data.ENTITIES))

        drive(incident.to_json(), execute)
        output, _called = drive(incident.to_json(), execute)

        assert _stored_comment(sentinel)["writes"] == 2
        assert output["labels"] == "unchanged"
        assert sentinel.count("put_incident") == 1
        assert [label["labelName"] for label in sentinel.incident(data.INCIDENT_NAME).properties["labels"]] == [
            "vip",
            "token-replay:likely",
        ]

    def test_entities_are_read_when_the_trigger_has_none(self, wired: Wired, sentinel: SentinelServer) -> None:
        """A bare incident: the entities come from POST .../entities, then the enrichment runs on them."""
        incident = parse_incident(data.incident_resource())

        output, called = drive(incident.to_json(), execute)

        assert called[0] == ACTIVITY_ENTITIES
        assert sentinel.count("entities") == 1
        assert [a["account"]["upn"] for a in output["accounts"]] == [data.ALICE_UPN, data.BOB_UPN]

    def test_an_incident_without_accounts_gets_a_notice_and_no_query(self, wired: Wired, sentinel: SentinelServer) -> None:
        """Only an IP entity: the "no account" comment is written and no engine is ever built."""
        incident = parse_incident(data.trigger_body([data.ENTITIES[0]]))

        output, called = drive(incident.to_json(), execute)

        assert (output["outcome"], called) == ("no_account", [ACTIVITY_NOTICE])
        assert "No account to assess" in _stored_comment(sentinel)["message"]
        assert wired.engine_builds == 0

    def test_huge_title_keeps_every_payload_small(self, wired: Wired, sentinel: SentinelServer) -> None:
        """A 2 MB title: the input and every activity payload of the run together stay under 16 KB (capped at intake)."""
        body = data.trigger_body(data.ENTITIES)
        body["object"]["properties"]["title"] = "T" * 2_000_000
        incident = parse_incident(body)
        sizes = [len(json.dumps(incident.to_json()))]

        def measured(name: str, payload: dict[str, Any]) -> Any:
            result = execute(name, payload)
            sizes.extend((len(json.dumps(payload)), len(json.dumps(result))))
            return result

        output, _called = drive(incident.to_json(), measured)

        assert output["outcome"] == "enriched"
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
                output, called = drive(incident.to_json(), execute)
            finally:
                wiring.install(previous)

        assert called[0] == ACTIVITY_ENTITIES
        assert [a["account"]["upn"] for a in output["accounts"]] == [data.ALICE_UPN]
        message = _stored_comment(sentinel)["message"]
        assert f"REPLAY_MAX_ACCOUNTS: the first 1 accounts were assessed, 1 more were not: {data.BOB_UPN}" in message

    def test_each_activity_logs_one_line_with_its_invocation(self, wired: Wired) -> None:
        """Every activity invocation logs one summary line with its invocation id and outcome."""
        incident = parse_incident(data.trigger_body(data.ENTITIES))
        with capture_logs() as logs:
            drive(incident.to_json(), execute)

        lines = [(e["activity"], e["invocation_id"], e["outcome"], e["incident"]) for e in logs if e["event"] == "activity_done"]
        assert lines == [
            ("enrich_incident", "inv-enrich_incident", "ok", 4242),
            ("label_incident", "inv-label_incident", "ok", 4242),
        ]


class TestFailures:
    def test_workspace_403_then_rerun_replaces_the_failure_comment(self, sentinel: SentinelServer, database: Path) -> None:
        """Log Analytics refuses (403): the comment says what failed and what to check; a re-run replaces it."""
        con = duckdb.connect(str(database), read_only=True)
        with la.LogAnalyticsServer(con, workspace_id=data.WORKSPACE_ID, functions=[WATCHLIST_FUNCTION]) as workspace:
            settings = Settings.from_values({**ENVIRON, "REPLAY_LOGS_ENDPOINT": workspace.url})
            retries = Retries(
                sdk_total=1, sdk_backoff_factor=0.01, sdk_backoff_max=0.05, attempts=1, wait_initial=0.01, wait_max=0.02
            )
            engine = LogAnalyticsEngine.create(
                settings, la.FakeCredential(), connection_verify=workspace.ca_path, retries=retries
            )
            wired = Wired(sentinel, engine, {**ENVIRON, "REPLAY_LOGS_ENDPOINT": workspace.url})
            previous = wiring.install(wired.services)
            try:
                workspace.fail(la.forbidden())
                incident = parse_incident(data.trigger_body(data.ENTITIES))

                failed, _ = drive(incident.to_json(), execute)
                failure_message = _stored_comment(sentinel)["message"]
                rerun, _ = drive(incident.to_json(), execute)
            finally:
                wiring.install(previous)
        con.close()

        assert (failed["outcome"], failed["failure"]["status"], failed["comment_written"]) == ("failed", 403, True)
        assert "The enrichment failed" in failure_message
        assert "Log Analytics Reader" in failure_message
        assert rerun["outcome"] == "enriched"
        final = _stored_comment(sentinel)
        assert "The enrichment failed" not in final["message"]
        assert final["writes"] == 2

    @pytest.mark.parametrize("queries", [("evidence",), ("evidence", "baseline", "context")], ids=["evidence", "all"])
    def test_workspace_204_is_insufficient_evidence_never_benign(
        self, sentinel: SentinelServer, database: Path, queries: tuple[str, ...]
    ) -> None:
        """A 204 (no data) from Log Analytics: verdict and label insufficient evidence, the comment says what was missing."""
        con = duckdb.connect(str(database), read_only=True)
        with la.LogAnalyticsServer(con, workspace_id=data.WORKSPACE_ID, functions=[WATCHLIST_FUNCTION]) as workspace:
            settings = Settings.from_values({**ENVIRON, "REPLAY_LOGS_ENDPOINT": workspace.url})
            engine = LogAnalyticsEngine.create(settings, la.FakeCredential(), connection_verify=workspace.ca_path)
            wired = Wired(
                sentinel, engine, {**ENVIRON, "REPLAY_LOGS_ENDPOINT": workspace.url, "REPLAY_CONTAINMENT_ENABLED": "false"}
            )
            previous = wiring.install(wired.services)
            try:
                for query in queries:
                    workspace.fail(la.no_content(), query=query)
                incident = parse_incident(data.trigger_body(data.ENTITIES))
                output, _ = drive(incident.to_json(), execute)
            finally:
                wiring.install(previous)
        con.close()

        assert (output["outcome"], output["verdict"]) == ("enriched", "insufficient_evidence")
        assert {a["verdict"] for a in output["accounts"]} == {"insufficient_evidence"}
        labels = [label["labelName"] for label in sentinel.incident(data.INCIDENT_NAME).properties["labels"]]
        assert labels == ["vip", "token-replay:insufficient-evidence"]
        message = _stored_comment(sentinel)["message"]
        assert "Missing evidence" in message
        assert "SigninLogs: not read: evidence query: workspace returned no data (204)" in message
        assert "Benign" not in message

    def test_sentinel_refusing_every_write_ends_cleanly(self, wired: Wired, sentinel: SentinelServer) -> None:
        """Comment PUTs forbidden: the enrichment fails, the failure notice fails too, and the orchestration still ends."""
        sentinel.fail("put_comment", forbidden(), forbidden())
        incident = parse_incident(data.trigger_body(data.ENTITIES))

        output, called = drive(incident.to_json(), execute)

        assert (output["outcome"], output["comment_written"]) == ("failed", False)
        assert output["failure"]["what"] == "write the incident comment"
        assert "Microsoft Sentinel Responder" in output["failure"]["hint"]
        assert called == ["enrich_incident", ACTIVITY_NOTICE]
        assert sentinel.comments(data.INCIDENT_NAME) == {}

    def test_bad_settings_fail_as_a_value(self, wired: Wired, sentinel: SentinelServer) -> None:
        """Settings missing in Azure: the activity returns a failure naming them instead of raising."""
        wiring.install(wiring.Services({"REPLAY_CONTAINMENT_ENABLED": "false"}))
        incident = parse_incident(data.trigger_body(data.ENTITIES))

        result = execute("enrich_incident", {"incident": incident.to_json()})

        assert result["ok"] is False
        assert result["failure"]["what"] == "read the app settings"
        assert "REPLAY_WORKSPACE_ID" in result["failure"]["error"]
