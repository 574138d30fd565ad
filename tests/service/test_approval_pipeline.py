"""
Incident to containment end to end: real queries, real activities, the real Sentinel, Graph and Bot
Connector clients against their local fakes; the Durable extension's part played from history.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from common.settings import Settings
from enrichment.adapters.embedded import EmbeddedEngine
from enrichment.ports import QueryEngine
from playbooks import wiring
from playbooks.adapters.graph import GraphDirectory, create_graph_directory
from playbooks.adapters.sentinel import SentinelIncidents
from playbooks.adapters.teams import APPROVAL_EVENT, ATTEMPT_EVENT, RefusedAttempt, Teams, attempt_payload, decision_payload
from playbooks.domain.approval import APPROVAL_ORCHESTRATOR
from playbooks.domain.incident import comment_id, parse_incident
from playbooks.domain.plan import Decision
from playbooks.functions.approval_flow import COMMENT_PURPOSE
from tests.adapters.test_teams import FAST, FakeTokens
from tests.app.durable_history import Happening, play
from tests.app.indexed import functions
from tests.fakes import graph_server
from tests.fakes.botframework_server import BOT_APP_ID, CHANNEL_ID, TENANT_ID, BotFrameworkFake
from tests.fakes.sentinel_server import FakeCredential, SentinelServer
from tests.service import replay_data as data
from tests.service.test_enrich import ENVIRON, SENTINEL_RETRIES, FakeContext

pytestmark = pytest.mark.slow

APPROVER = "aaaaaaaa-0000-4000-8000-000000000001"
OUTSIDER = "aaaaaaaa-0000-4000-8000-000000000009"
GROUP = "a0a0a0a0-0000-4000-8000-000000000010"


@pytest.fixture
def graph() -> Iterator[graph_server.FakeGraph]:
    with graph_server.running() as fake:
        fake.add_user(data.ALICE_ID, data.ALICE_UPN)
        fake.add_user(APPROVER, "alex@contoso.com")
        fake.add_user(OUTSIDER, "mallory@contoso.com")
        fake.add_member(GROUP, APPROVER)
        fake.add_method(data.ALICE_ID, "microsoftAuthenticator", "m-1", displayName="Alice's phone")
        yield fake


@pytest.fixture
def teams() -> Iterator[BotFrameworkFake]:
    """The Bot Connector fake on its own event loop thread, so the activities' loop can call it like a remote service."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-teams", daemon=True)
    thread.start()
    fake = BotFrameworkFake()
    asyncio.run_coroutine_threadsafe(fake.__aenter__(), loop).result(10)
    yield fake
    asyncio.run_coroutine_threadsafe(fake.__aexit__(None, None, None), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


class Pipeline:
    """The Function App's services pointed at the fakes, and the host's part: run activities, play sub-orchestrations."""

    def __init__(self, database: Path, sentinel: SentinelServer, graph: graph_server.FakeGraph, teams: BotFrameworkFake) -> None:
        self.engine = EmbeddedEngine.open(database)
        self.runner = asyncio.Runner()
        self.graph_adapter: GraphDirectory | None = None
        environ = {
            **ENVIRON,
            "REPLAY_BOT_APP_ID": BOT_APP_ID,
            "REPLAY_TENANT_ID": TENANT_ID,
            "REPLAY_TEAMS_CHANNEL_ID": CHANNEL_ID,
            "REPLAY_TEAMS_SERVICE_URL": teams.url,
            "REPLAY_GRAPH_ENDPOINT": graph.base_url,
            "REPLAY_APPROVER_GROUP_ID": GROUP,
        }

        def engine(_settings: Settings) -> QueryEngine:
            return self.engine

        def sentinel_adapter(settings: Settings) -> SentinelIncidents:
            return SentinelIncidents.create(
                settings, FakeCredential(), endpoint=sentinel.url, connection_verify=sentinel.ca_path, retries=SENTINEL_RETRIES
            )

        def graph_adapter(settings: Settings) -> GraphDirectory:
            self.graph_adapter = create_graph_directory(
                settings, credential=graph_server.FakeCredential(), max_retries=0, timeout_seconds=5
            )
            return self.graph_adapter

        def teams_adapter(settings: Settings) -> Teams:
            return Teams(settings, token_provider=FakeTokens(), retries=FAST)

        self.services = wiring.Services(
            environ, engine=engine, sentinel=sentinel_adapter, graph=graph_adapter, teams=teams_adapter
        )
        self.approvals: list[Any] = []

    def close(self) -> None:
        if self.graph_adapter is not None:
            self.runner.run(self.graph_adapter.close())
        self.runner.close()
        self.engine.close()

    def run(self, script: Callable[[dict[str, Any]], list[Happening]]) -> dict[str, Any]:
        """The incident orchestration to its end; each approval sub-orchestration gets `script(its input)`."""

        def execute(name: str, payload: dict[str, Any]) -> Any:
            if name == APPROVAL_ORCHESTRATOR:
                played = play(
                    payload, execute, script(payload), orchestrator=APPROVAL_ORCHESTRATOR, instance_id=payload["instance_id"]
                )
                self.approvals.append(played)
                return played.output
            result = functions()[name].get_user_function()(payload=payload, context=FakeContext(f"inv-{name}"))
            return self.runner.run(result) if inspect.iscoroutine(result) else result

        incident = parse_incident(data.trigger_body(data.ENTITIES))
        return play(incident.to_json(), execute, [], instance_id=f"incident-{incident.name}").output  # type: ignore[no-any-return]


@pytest.fixture
def pipeline(
    database: Path, sentinel: SentinelServer, graph: graph_server.FakeGraph, teams: BotFrameworkFake
) -> Iterator[Pipeline]:
    wired = Pipeline(database, sentinel, graph, teams)
    previous = wiring.install(wired.services)
    yield wired
    wiring.install(previous)
    wired.close()


def _decided(approved: bool, who: str = APPROVER) -> Callable[[dict[str, Any]], list[Happening]]:
    def script(request: dict[str, Any]) -> list[Happening]:
        decision = Decision(approved, request["plan"]["digest"], who, "", data.AT)
        return [("event", APPROVAL_EVENT, decision_payload(decision, "Alex Wilber"))]

    return script


def _approval_comment(sentinel: SentinelServer) -> str:
    incident = parse_incident(data.incident_resource())
    comments = sentinel.comments(data.INCIDENT_NAME)
    assert set(comments) == {comment_id(incident, "enrichment"), comment_id(incident, COMMENT_PURPOSE, data.ALICE_UPN)}
    return str(comments[comment_id(incident, COMMENT_PURPOSE, data.ALICE_UPN)]["message"])


def test_approved_replay_revokes_sessions_and_records_everything(
    pipeline: Pipeline, sentinel: SentinelServer, graph: graph_server.FakeGraph, teams: BotFrameworkFake
) -> None:
    """Replay likely -> card posted to Teams -> approved -> sessions revoked in Graph -> card and incident show each result."""
    output = pipeline.run(_decided(True))

    assert [a["outcome"] for a in output["approvals"]] == ["approved"]
    assert [c.path for c in graph.calls("POST", "revokeSignInSessions")] == [f"/users/{data.ALICE_ID}/revokeSignInSessions"]
    posted = [r for r in teams.connector_requests() if r.method == "POST"]
    updated = [r for r in teams.connector_requests() if r.method == "PUT"]
    assert (len(posted), len(updated)) == (1, 2)
    final_card = str(updated[-1].body)
    assert "Revoke sessions: succeeded" in final_card
    comment = _approval_comment(sentinel)
    assert "Approved</b> by alex@contoso.com (Alex Wilber)" in comment
    assert "revoke_sessions</td><td>done" in comment
    assert "MFA audit" in comment


def test_rejected_replay_changes_nothing_in_the_directory(
    pipeline: Pipeline, sentinel: SentinelServer, graph: graph_server.FakeGraph
) -> None:
    """A rejection is recorded with who and when, and Graph receives no write."""
    output = pipeline.run(_decided(False))

    assert [a["outcome"] for a in output["approvals"]] == ["rejected"]
    assert graph.calls("POST", "revokeSignInSessions") == []
    assert "Rejected</b> by alex@contoso.com" in _approval_comment(sentinel)


def test_unanswered_request_expires_with_nothing_done(
    pipeline: Pipeline, sentinel: SentinelServer, graph: graph_server.FakeGraph
) -> None:
    """No decision before the deadline: the incident says so, the card shows expired, nothing is contained."""
    output = pipeline.run(lambda _request: [("timeout",)])

    assert [a["outcome"] for a in output["approvals"]] == ["expired"]
    assert graph.calls("POST", "revokeSignInSessions") == []
    assert "the request expired and nothing was done" in _approval_comment(sentinel)


def test_refused_click_is_on_the_incident_with_the_persons_upn(pipeline: Pipeline, sentinel: SentinelServer) -> None:
    """A refused attempt is recorded by UPN (looked up in the directory) and time; the approver's decision still counts."""

    def script(request: dict[str, Any]) -> list[Happening]:
        refused = RefusedAttempt(OUTSIDER, "Mallory", True, data.AT, "only members of the approver group may decide")
        return [("event", ATTEMPT_EVENT, attempt_payload(refused)), *_decided(True)(request)]

    output = pipeline.run(script)

    assert [a["outcome"] for a in output["approvals"]] == ["approved"]
    comment = _approval_comment(sentinel)
    assert "mallory@contoso.com (Mallory) tried to approve and was refused" in comment
    assert "2026-04-14 09:00 UTC" in comment


def test_a_second_delivery_of_the_incident_rewrites_the_same_comments(pipeline: Pipeline, sentinel: SentinelServer) -> None:
    """Run twice (the incident delivered again after the first run ended): still one enrichment and one approval comment."""
    pipeline.run(_decided(False))
    pipeline.run(_decided(False))

    assert "Rejected" in _approval_comment(sentinel)
