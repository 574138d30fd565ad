"""
Incident to containment end to end: real queries, real activities, the real Sentinel, Graph and Bot
Connector clients against their local fakes; the Durable extension's part played from history. The
approval bot is pointed at the live approval orchestration, so a click goes through the bot's real
authentication and rules into the orchestration, and what the orchestration publishes is what the
bot answers from.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import threading
from collections.abc import Callable, Coroutine, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from common.settings import Settings
from enrichment.adapters.embedded import EmbeddedEngine
from enrichment.ports import QueryEngine
from playbooks import wiring
from playbooks.adapters.bot_connector import BotConnector
from playbooks.adapters.botframework_auth import BotFrameworkKeys
from playbooks.adapters.graph import GraphDirectory, create_graph_directory
from playbooks.adapters.sentinel import SentinelIncidents
from playbooks.adapters.teams_bot import ApprovalBot, BotResponse
from playbooks.domain import codec
from playbooks.domain.approval import ApprovalState, approval_state
from playbooks.domain.footholds import AttackerForwarding, AttackerInboxRule
from playbooks.domain.incident import comment_id, parse_incident
from playbooks.domain.plan import ACTION_DESCRIPTIONS, ActionKind, Decision, ProposedAction
from playbooks.domain.workflow import (
    APPROVAL_EVENT,
    APPROVAL_ORCHESTRATOR,
    ATTEMPT_EVENT,
    ApprovalAttempt,
    ApprovalDecision,
    ApprovalEnd,
    ApprovalInput,
    ApprovalOutcome,
    Contained,
    ContainInput,
    IncidentRunResult,
    read_activity_result,
    run_result_of,
)
from playbooks.render.card import APPROVE, REJECT, parse_action_data
from tests.adapters.test_bot_connector import FAST, FakeTokens
from tests.app.durable_history import Happening, Instance, Played, play
from tests.app.indexed import functions
from tests.app.test_http import FakeDurableClient, durable_status
from tests.fakes import graph_server
from tests.fakes.botframework_server import BOT_APP_ID, CHANNEL_ID, TENANT_ID, BotFrameworkFake
from tests.fakes.sentinel_server import FakeCredential, SentinelServer
from tests.service import replay_data as data
from tests.service.test_enrich import ENVIRON, SENTINEL_RETRIES, FakeContext, start_delivery, trigger_with_alerts

pytestmark = pytest.mark.slow

APPROVER = "aaaaaaaa-0000-4000-8000-000000000001"
SECOND_APPROVER = "aaaaaaaa-0000-4000-8000-000000000002"
OUTSIDER = "aaaaaaaa-0000-4000-8000-000000000009"
GROUP = "a0a0a0a0-0000-4000-8000-000000000010"
#: Alice named by UPN only (no aadUserId), for the exports whose rows carry no UserId either.
ALICE_BY_UPN = [{"kind": "Account", "properties": {"accountName": "alice", "upnSuffix": "contoso.com"}}]
T = TypeVar("T")
#: When the pipeline's runs start (the incident's time), and when the bots' approvers click.
RUN_START = "2026-04-14T09:00:00.000000Z"
CLICKED = data.AT + timedelta(minutes=5)


class Loop:
    """An event loop on a thread of its own: the activities' (as the Functions worker's), or a bot instance's."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(120)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def graph() -> Iterator[graph_server.FakeGraph]:
    with graph_server.running() as fake:
        fake.add_user(data.ALICE_ID, data.ALICE_UPN)
        fake.add_user(APPROVER, "alex@contoso.com")
        fake.add_user(SECOND_APPROVER, "bianca@contoso.com")
        fake.add_user(OUTSIDER, "mallory@contoso.com")
        fake.add_member(GROUP, APPROVER)
        fake.add_member(GROUP, SECOND_APPROVER)
        fake.add_member(GROUP, data.ALICE_ID)  # the suspect is an approver too: they still may not decide
        fake.add_method(data.ALICE_ID, "microsoftAuthenticator", "m-1", displayName="Alice's phone")
        yield fake


@pytest.fixture
def teams() -> Iterator[BotFrameworkFake]:
    """The Bot Connector fake on its own event loop thread, so the activities' loop can call it like a remote service."""
    loop = Loop("fake-teams")
    fake = BotFrameworkFake()
    loop.run(fake.__aenter__())
    yield fake
    loop.run(fake.__aexit__(None, None, None))
    loop.close()


@pytest.fixture(scope="module")
def database_without_ids(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same exports with no UserId in any row."""
    return data.build_database(tmp_path_factory.mktemp("exports") / "no-ids.duckdb", user_ids=False)


class Pipeline:
    """The Function App's services pointed at the fakes, and the host's part: run activities, play sub-orchestrations."""

    def __init__(self, database: Path, sentinel: SentinelServer, graph: graph_server.FakeGraph, teams: BotFrameworkFake) -> None:
        self.engine = EmbeddedEngine.open(database)
        self.activities = Loop("activities")
        self.graph_adapters: list[GraphDirectory] = []
        self.teams = teams
        self.environ = {
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
            """Graph as the containment identity, and as the bot's (the fake knows no identities)."""
            self.graph_adapters.append(
                create_graph_directory(settings, credential=graph_server.FakeCredential(), max_retries=0, timeout_seconds=5)
            )
            return self.graph_adapters[-1]

        def connector(settings: Settings) -> BotConnector:
            return BotConnector(settings, token_provider=FakeTokens(), retries=FAST)

        self.services = wiring.Services(
            self.environ,
            engine=engine,
            sentinel=sentinel_adapter,
            graph=graph_adapter,
            connector=connector,
            bot_graph=graph_adapter,
        )
        self.approvals: list[Instance] = []
        self.played = Played(None)

    def close(self) -> None:
        for adapter in self.graph_adapters:
            self.activities.run(adapter.close())
        self.activities.close()
        self.engine.close()

    def execute(self, name: str, payload: dict[str, Any]) -> Any:
        """What the host does for a scheduled activity: call its function, awaited on the worker's loop."""
        result = functions()[name].get_user_function()(payload=payload, context=FakeContext(f"inv-{name}"))
        return self.activities.run(result) if inspect.iscoroutine(result) else result

    def run(
        self,
        approve: Callable[[Instance, ApprovalInput], None],
        *,
        entities: list[dict[str, Any]] | None = None,
        started: str = RUN_START,
        title: str | None = None,
        given: tuple[str, dict[str, Any]] | None = None,
    ) -> Any:
        """
        The incident orchestration to its end (its output, or a Failed run's error text). Each
        approval sub-orchestration is a live `Instance` handed to `approve` with its input, which
        plays it (clicks, events, the deadline); it is then finished by firing its deadline.
        `given` is (instance id, input) as the HTTP starter started it; `self.played` keeps the run.
        """

        def execute(name: str, payload: dict[str, Any]) -> Any:
            if name != APPROVAL_ORCHESTRATOR:
                return self.execute(name, payload)
            request = codec.decode(ApprovalInput, payload)
            instance = Instance(
                payload, execute, orchestrator=APPROVAL_ORCHESTRATOR, instance_id=request.instance_id, started=started
            )
            self.approvals.append(instance)
            instance.advance()
            approve(instance, request)
            instance.advance()
            if not instance.done:
                instance.fire_timers()
                instance.advance()
            return instance.played.output

        if given is None:
            incident = parse_incident(data.trigger_body(data.ENTITIES if entities is None else entities))
            if title is not None:
                incident = dataclasses.replace(incident, title=title)
            given = (f"incident-{incident.name}", codec.encode(incident))
        self.played = play(given[1], execute, [], instance_id=given[0], started=started)
        return self.played.output

    def outcomes(self) -> list[ApprovalOutcome]:
        return [codec.decode(ApprovalOutcome, a.played.output) for a in self.approvals]


@pytest.fixture
def pipeline(
    database: Path, sentinel: SentinelServer, graph: graph_server.FakeGraph, teams: BotFrameworkFake
) -> Iterator[Pipeline]:
    wired = Pipeline(database, sentinel, graph, teams)
    previous = wiring.install(wired.services)
    yield wired
    wiring.install(previous)
    wired.close()


def scripted(*happenings: Callable[[ApprovalInput], list[Happening]]) -> Callable[[Instance, ApprovalInput], None]:
    """Deliver scripted events (as the bot would raise them) to the live approval, in order, playing each."""

    def approve(instance: Instance, request: ApprovalInput) -> None:
        for happening in happenings:
            for event in happening(request):
                if event[0] == "event":
                    instance.raise_event(event[1], event[2])
                else:
                    instance.fire_timers()
                instance.advance()

    return approve


def decided(approved: bool, who: str = APPROVER) -> Callable[[ApprovalInput], list[Happening]]:
    def script(request: ApprovalInput) -> list[Happening]:
        decision = Decision(approved, request.plan.digest, who, "", data.AT)
        return [("event", APPROVAL_EVENT, codec.encode(ApprovalDecision.of(decision, "Alex Wilber")))]

    return script


def deadline(_request: ApprovalInput) -> list[Happening]:
    return [("timeout",)]


def approval_comments(sentinel: SentinelServer, request: ApprovalInput) -> dict[str, str]:
    """The approval's records on the incident, by state, in the order they were written."""
    incident = parse_incident(data.incident_resource())
    comments = sentinel.comments(data.INCIDENT_NAME)
    states = [
        "not_posted",
        "pending",
        *(f"refused-{n}" for n in range(1, 11)),
        "decided",
        *(f"result-{a.kind.value}" for a in request.plan.actions),
        "expired",
    ]
    ids = {comment_id(incident, request.instance_id, state, request.account.key): state for state in states}
    return {ids[cid]: str(comment["message"]) for cid, comment in comments.items() if cid in ids}


def _request(pipeline: Pipeline) -> ApprovalInput:
    return codec.decode(ApprovalInput, pipeline.approvals[0].history.input)


class TestDecisions:
    def test_approved_replay_revokes_sessions_and_records_every_state(
        self, pipeline: Pipeline, sentinel: SentinelServer, graph: graph_server.FakeGraph, teams: BotFrameworkFake
    ) -> None:
        """Replay likely -> card posted -> approved -> sessions revoked -> card and incident show each state, one comment each."""
        pipeline.run(scripted(decided(True)))

        assert [o.outcome for o in pipeline.outcomes()] == [ApprovalEnd.APPROVED]
        assert [c.path for c in graph.calls("POST", "revokeSignInSessions")] == [f"/users/{data.ALICE_ID}/revokeSignInSessions"]
        posted = [r for r in teams.connector_requests() if r.method == "POST"]
        updated = [r for r in teams.connector_requests() if r.method == "PUT"]
        assert (len(posted), len(updated)) == (1, 2)
        assert "Revoke sessions: succeeded" in str(updated[-1].body)
        records = approval_comments(sentinel, _request(pipeline))
        assert list(records) == ["pending", "decided", "result-revoke_sessions", "result-audit_mfa_methods"]
        assert "Approved</b> by alex@contoso.com (Alex Wilber)" in records["decided"]
        assert "revoke_sessions</td><td>done" in records["result-revoke_sessions"]
        assert "audit_mfa_methods</td><td>done" in records["result-audit_mfa_methods"]
        assert "method(s) registered" in records["result-audit_mfa_methods"]

    def test_rejected_replay_changes_nothing_in_the_directory(
        self, pipeline: Pipeline, sentinel: SentinelServer, graph: graph_server.FakeGraph
    ) -> None:
        """A rejection is recorded with who and when, and Graph receives no write."""
        pipeline.run(scripted(decided(False)))

        assert [o.outcome for o in pipeline.outcomes()] == [ApprovalEnd.REJECTED]
        assert graph.calls("POST", "revokeSignInSessions") == []
        assert "Rejected</b> by alex@contoso.com" in approval_comments(sentinel, _request(pipeline))["decided"]

    def test_unanswered_request_expires_with_nothing_done(
        self, pipeline: Pipeline, sentinel: SentinelServer, graph: graph_server.FakeGraph
    ) -> None:
        """No decision before the deadline: the incident says so, the card shows expired, nothing is contained."""
        pipeline.run(scripted(deadline))

        assert [o.outcome for o in pipeline.outcomes()] == [ApprovalEnd.EXPIRED]
        assert graph.calls("POST", "revokeSignInSessions") == []
        records = approval_comments(sentinel, _request(pipeline))
        assert list(records) == ["pending", "expired"]
        assert "the request expired and nothing was done" in records["expired"]

    def test_refused_click_is_on_the_incident_with_the_persons_upn(self, pipeline: Pipeline, sentinel: SentinelServer) -> None:
        """A refused attempt is recorded by UPN (looked up in the directory) and time; the approver's decision still counts."""

        def refused(_request: ApprovalInput) -> list[Happening]:
            attempt = ApprovalAttempt(OUTSIDER, "Mallory", True, data.AT, "only members of the approver group may decide")
            return [("event", ATTEMPT_EVENT, codec.encode(attempt))]

        pipeline.run(scripted(refused, decided(True)))

        assert [o.outcome for o in pipeline.outcomes()] == [ApprovalEnd.APPROVED]
        records = approval_comments(sentinel, _request(pipeline))
        assert "mallory@contoso.com (Mallory) tried to approve and was refused" in records["refused-1"]
        assert "2026-04-14 09:00 UTC" in records["refused-1"]
        assert "mallory@contoso.com (Mallory) tried to approve" in records["decided"]

    def test_a_later_run_never_overwrites_the_earlier_runs_records(self, pipeline: Pipeline, sentinel: SentinelServer) -> None:
        """The incident delivered again after the first run ended: the first run's approval records stay exactly as written."""
        pipeline.run(scripted(decided(True)), started="2026-04-14T09:30:00.000000Z")
        first = approval_comments(sentinel, _request(pipeline))
        before = sentinel.comments(data.INCIDENT_NAME)
        pipeline.approvals.clear()

        pipeline.run(scripted(deadline), started="2026-04-14T11:00:00.000000Z")

        after = sentinel.comments(data.INCIDENT_NAME)
        assert {cid: after[cid] for cid in before} == before  # nothing earlier was rewritten
        assert len(after) == 2 * len(before) - 2  # a new enrichment, pending and expired record of the second run
        assert "Approved</b>" in first["decided"]
        assert "the request expired" in approval_comments(sentinel, _request(pipeline))["expired"]


class TestAlertsAdded:
    def test_a_follow_up_asks_no_second_card_for_a_plan_already_decided(
        self, pipeline: Pipeline, sentinel: SentinelServer, graph: graph_server.FakeGraph, teams: BotFrameworkFake
    ) -> None:
        """Alice's containment approved in the first run; an alert added later: the follow-up comments, posts no card, acts nothing."""
        first_id, first_input = start_delivery(trigger_with_alerts("alert-a"), FakeDurableClient())
        output = pipeline.run(scripted(decided(True)), given=(first_id, first_input), started="2026-04-14T09:30:00.000000Z")
        custom = pipeline.played.statuses[-1]
        before = sentinel.comments(data.INCIDENT_NAME)
        pipeline.approvals.clear()
        status = durable_status("Completed", 5, output, instance_id=first_id, run_input=first_input, custom=custom)

        follow_up = start_delivery(trigger_with_alerts("alert-a", "alert-b"), FakeDurableClient([status]))
        pipeline.run(scripted(decided(True)), given=follow_up, started="2026-04-14T10:00:00.000000Z")

        assert pipeline.approvals == []  # no approval sub-orchestration, so no card and no decision to take
        assert len([r for r in teams.connector_requests() if r.method == "POST"]) == 1
        assert len(graph.calls("POST", "revokeSignInSessions")) == 1
        after = sentinel.comments(data.INCIDENT_NAME)
        assert {cid: after[cid] for cid in before} == before
        [added] = [after[cid]["message"] for cid in after if cid not in before]
        assert "Follow-up for 1 newly added alert(s)" in added
        assert f"already requested by an earlier run of this playbook (request {first_id}:approval:0:" in added


class TestContainmentRetries:
    def test_a_throttled_revoke_is_tried_again_without_repeating_the_audit(
        self, pipeline: Pipeline, sentinel: SentinelServer, graph: graph_server.FakeGraph
    ) -> None:
        """Graph 503 on the revoke (after its own retries): containment runs again later, revokes, and does not audit twice."""
        graph.fail("POST", "revokeSignInSessions", 503)

        pipeline.run(scripted(decided(True)))

        assert len(graph.calls("POST", "revokeSignInSessions")) == 2
        # One listing before the click (the card's Who), one by containment's audit: never a second audit.
        assert len(graph.calls("GET", "authentication/methods")) == 2
        outcome = pipeline.outcomes()[0]
        assert [(r.kind.value, r.status.value) for r in outcome.results] == [
            ("revoke_sessions", "succeeded"),
            ("audit_mfa_methods", "succeeded"),
        ]
        records = approval_comments(sentinel, _request(pipeline))
        assert list(records)[-2:] == ["result-audit_mfa_methods", "result-revoke_sessions"]  # each when it was final
        assert "revoke_sessions</td><td>done" in records["result-revoke_sessions"]


class TestBeforeTheClick:
    def test_the_card_and_the_comment_say_who_the_suspect_is(
        self, pipeline: Pipeline, sentinel: SentinelServer, graph: graph_server.FakeGraph, teams: BotFrameworkFake
    ) -> None:
        """The enrichment reads the suspect's profile, risk and methods from Graph before the card: the card and the comment show them."""
        graph.add_user(data.ALICE_ID, data.ALICE_UPN, displayName="Alice Liddell", department="Finance", jobTitle="Controller")
        graph.add_method(data.ALICE_ID, "microsoftAuthenticator", "m-1", displayName="Alice's phone")
        graph.set_risk(data.ALICE_ID, "high", "atRisk")

        pipeline.run(scripted(deadline))

        (posted,) = [r for r in teams.connector_requests() if r.method == "POST"]
        card = str(posted.body)
        assert "Controller, Finance (Microsoft Graph)" in card
        assert "high, atRisk" in card
        enrichment = [
            str(c["message"]) for c in sentinel.comments(data.INCIDENT_NAME).values() if "Controller" in str(c["message"])
        ]
        assert len(enrichment) == 1
        assert "Alice Liddell" in enrichment[0]
        assert {r.method for r in graph.requests if "/users/" in r.path and "revoke" not in r.path} == {"GET"}

    def test_graph_refusing_the_reads_is_said_and_the_card_is_still_posted(
        self, pipeline: Pipeline, sentinel: SentinelServer, graph: graph_server.FakeGraph, teams: BotFrameworkFake
    ) -> None:
        """A 403 on the MFA methods before the click is named in the Who facts; the card still goes out and waits."""
        graph.fail("GET", "authentication/methods", 403)

        pipeline.run(scripted(deadline))

        (posted,) = [r for r in teams.connector_requests() if r.method == "POST"]
        assert "the MFA methods could not be read" in str(posted.body)
        assert [o.outcome for o in pipeline.outcomes()] == [ApprovalEnd.EXPIRED]

    def test_an_incident_defender_disrupted_does_not_propose_disabling_again(
        self, pipeline: Pipeline, sentinel: SentinelServer, graph: graph_server.FakeGraph
    ) -> None:
        """Title says attack disruption acted: disabling is not proposed, the plan keeps why through history, the record says so."""
        pipeline.environ["REPLAY_OPTIONAL_ACTIONS"] = "disable_account"  # read when the run first asks for settings

        pipeline.run(scripted(decided(True)), title="Anomalous token (attack disruption)")

        request = _request(pipeline)
        assert ActionKind.DISABLE_ACCOUNT not in {a.kind for a in request.plan.actions}
        assert [kind for kind, _who in request.plan.already_done] == [ActionKind.DISABLE_ACCOUNT]
        assert graph.calls("PATCH", f"users/{data.ALICE_ID}") == []
        assert "Not repeated: disable account, already done by Defender" in approval_comments(sentinel, request)["pending"]

    def test_defenders_attack_disruption_tag_is_read_from_the_incident_labels(
        self, pipeline: Pipeline, sentinel: SentinelServer, graph: graph_server.FakeGraph
    ) -> None:
        """The 'Attack Disruption' tag Defender syncs as a label (title unmarked): disabling is not proposed again."""
        pipeline.environ["REPLAY_OPTIONAL_ACTIONS"] = "disable_account"
        body = data.trigger_body(data.ENTITIES)
        body["object"]["properties"]["labels"] = [{"labelName": "Attack Disruption", "labelType": "System"}]
        incident = parse_incident(body)
        assert "attack disruption" not in incident.title.lower()

        pipeline.run(scripted(decided(True)), given=(f"incident-{incident.name}", codec.encode(incident)))

        request = _request(pipeline)
        assert ActionKind.DISABLE_ACCOUNT not in {a.kind for a in request.plan.actions}
        [(kind, who)] = request.plan.already_done
        assert (kind, "'Attack Disruption' tag" in who) == (ActionKind.DISABLE_ACCOUNT, True)
        assert graph.calls("PATCH", f"users/{data.ALICE_ID}") == []
        assert "Not repeated: disable account, already done by Defender" in approval_comments(sentinel, request)["pending"]


class TestMailboxFootholds:
    def test_the_contain_activity_removes_the_attackers_inbox_rule_and_names_the_forwarding(
        self, pipeline: Pipeline, graph: graph_server.FakeGraph
    ) -> None:
        """The typed contain input carries the attacker's rule and forwarding: the rule is deleted, the user's own kept, the forwarding a step by hand."""
        pipeline.run(scripted(decided(False)))
        request = _request(pipeline)
        graph.add_rule(data.ALICE_ID, "r-evil", "..")
        graph.add_rule(data.ALICE_ID, "r-own", "Newsletters")
        removal = ProposedAction(ActionKind.REMOVE_INBOX_RULES, ACTION_DESCRIPTIONS[ActionKind.REMOVE_INBOX_RULES])
        plan = dataclasses.replace(request.plan, actions=(*request.plan.actions, removal))
        decision = ApprovalDecision.of(Decision(True, plan.digest, APPROVER, "alex@contoso.com", CLICKED), "Alex Wilber")
        rule = AttackerInboxRule(data.ALICE_UPN, "..", data.AT - timedelta(minutes=5), "203.0.113.9")
        forwarding = AttackerForwarding(data.ALICE_UPN, "drop@evil.example", data.AT - timedelta(minutes=4), "203.0.113.9")
        done = (ActionKind.REVOKE_SESSIONS, ActionKind.AUDIT_MFA_METHODS)
        payload = ContainInput(request.incident, request.instance_id, plan, decision, done, (rule,), (forwarding,))

        answer = pipeline.execute("contain_account", codec.encode(payload))

        contained = read_activity_result(Contained, answer)
        assert isinstance(contained, Contained)
        (removed,) = [r for r in contained.results if r.kind is ActionKind.REMOVE_INBOX_RULES]
        assert removed.status.value == "succeeded"
        assert [c.path.rsplit("/", 1)[-1] for c in graph.calls("DELETE", "messageRules")] == ["r-evil"]
        assert any("drop@evil.example" in note for note in contained.notes)


class TestSuspectObjectId:
    @pytest.fixture
    def pipeline(
        self, database_without_ids: Path, sentinel: SentinelServer, graph: graph_server.FakeGraph, teams: BotFrameworkFake
    ) -> Iterator[Pipeline]:
        wired = Pipeline(database_without_ids, sentinel, graph, teams)
        previous = wiring.install(wired.services)
        yield wired
        wiring.install(previous)
        wired.close()

    def test_a_plan_without_the_object_id_resolves_it_before_the_card(self, pipeline: Pipeline, teams: BotFrameworkFake) -> None:
        """The rows carry no UserId: the directory names the suspect's object id, and the posted card is bound to it."""
        pipeline.run(scripted(decided(False)), entities=ALICE_BY_UPN)

        request = _request(pipeline)
        assert request.plan.account.object_id == data.ALICE_ID
        assert request.card is not None
        _verb, card_data = parse_action_data(request.card["actions"][0]["data"])
        assert card_data.user_object_id == data.ALICE_ID
        assert len([r for r in teams.connector_requests() if r.method == "POST"]) == 1

    def test_a_suspect_the_directory_cannot_resolve_gets_no_card_and_the_incident_says_why(
        self, pipeline: Pipeline, sentinel: SentinelServer, graph: graph_server.FakeGraph, teams: BotFrameworkFake
    ) -> None:
        """Unresolvable suspect: no card is posted (it could not tell the suspect from an approver); the record says why."""
        del graph.users[data.ALICE_ID]

        pipeline.run(scripted(), entities=ALICE_BY_UPN)

        assert [o.outcome for o in pipeline.outcomes()] == [ApprovalEnd.CARD_NOT_POSTED]
        assert teams.connector_requests() == []
        record = approval_comments(sentinel, _request(pipeline))["not_posted"]
        assert "has no Entra object id" in record
        assert "cannot tell the suspect apart from an approver" in record


# -- the bot against the live orchestration -----------------------------------------------------------


class Live:
    """
    The bot's Durable client over the live approval orchestration: it reads what the orchestration
    published, and an event raised is played the next time anyone looks (as the orchestration runs
    beside the bot). `barrier` holds each reader's first look until that many bots have looked.
    """

    def __init__(self, instance: Instance, barrier: int = 0) -> None:
        self.instance = instance
        self.barrier = barrier
        self.looked: set[int] = set()
        self.everyone_looked: asyncio.Event | None = None
        self.raised: list[tuple[str, Any]] = []

    def port(self, reader: int) -> LivePort:
        return LivePort(self, reader)


class LivePort:
    """One bot instance's view of `Live`."""

    def __init__(self, live: Live, reader: int) -> None:
        self.live, self.reader = live, reader

    async def approval_state(self, instance_id: str) -> ApprovalState:
        live = self.live
        live.instance.advance()
        state = approval_state(live.instance.runtime_status, live.instance.custom_status)
        if live.barrier and self.reader not in live.looked:
            live.everyone_looked = live.everyone_looked or asyncio.Event()
            live.looked.add(self.reader)
            if len(live.looked) >= live.barrier:
                live.everyone_looked.set()
            await live.everyone_looked.wait()
        return state

    async def raise_decision(self, instance_id: str, decision: ApprovalDecision) -> None:
        self.live.raised.append((APPROVAL_EVENT, decision))
        self.live.instance.raise_event(APPROVAL_EVENT, codec.encode(decision))

    async def raise_attempt(self, instance_id: str, attempt: ApprovalAttempt) -> None:
        self.live.raised.append((ATTEMPT_EVENT, attempt))
        self.live.instance.raise_event(ATTEMPT_EVENT, codec.encode(attempt))


class Bots:
    """App instances running the approval bot, each with its own caches, on a loop of their own; they share the Graph fake."""

    def __init__(self, pipeline: Pipeline, count: int = 1) -> None:
        self.loop = Loop("bots")
        self.teams = pipeline.teams
        settings = Settings.from_values(pipeline.environ)

        async def build() -> tuple[GraphDirectory, list[ApprovalBot]]:
            directory = create_graph_directory(
                settings, credential=graph_server.FakeCredential(), max_retries=0, timeout_seconds=5
            )
            bots = [
                ApprovalBot(
                    settings,
                    directory,
                    keys=BotFrameworkKeys(self.teams.metadata_url),
                    token_provider=FakeTokens(),
                    clock=lambda: CLICKED,
                    lookup_budget=30,
                )
                for _ in range(count)
            ]
            for bot in bots:
                bot.clicks.confirm_budget = 0.2
            return directory, bots

        self.directory, self.bots = self.loop.run(build())

    def close(self) -> None:
        self.loop.run(self.directory.close())
        self.loop.close()

    async def handle(
        self, request: ApprovalInput, port: LivePort, clicker: str, verb: str = APPROVE, *, bot: int = 0, **token: Any
    ) -> BotResponse:
        """One click on the request's posted card, as Teams delivers it to app instance `bot`."""
        assert request.card is not None
        _verb, card_data = parse_action_data(request.card["actions"][0]["data"])
        activity = self.teams.invoke(card_data.to_data(verb), clicker_id=clicker, clicker_name=clicker[:8])
        return await self.bots[bot].handle(f"Bearer {self.teams.token(**token)}", _json(activity), port)

    def click(self, request: ApprovalInput, port: LivePort, clicker: str, verb: str = APPROVE, **token: Any) -> BotResponse:
        return self.loop.run(self.handle(request, port, clicker, verb, **token))

    def together(self, *clicks: Coroutine[Any, Any, BotResponse]) -> list[BotResponse]:
        async def all_of_them() -> list[BotResponse]:
            return list(await asyncio.gather(*clicks))

        return self.loop.run(all_of_them())


def _json(activity: dict[str, Any]) -> bytes:
    import json

    return json.dumps(activity).encode()


def answer(response: BotResponse) -> str:
    """The texts of the card the bot answered with."""
    assert response.status == 200, response
    assert response.body is not None
    return str(response.body["value"]).replace("\\\\", "\\").replace("\\", "")


@pytest.fixture
def bots(pipeline: Pipeline) -> Iterator[Callable[[int], Bots]]:
    made: list[Bots] = []

    def make(count: int = 1) -> Bots:
        made.append(Bots(pipeline, count))
        return made[-1]

    yield make
    for built in made:
        built.close()


class TestOneDecision:
    def test_two_approvers_on_two_app_instances_are_each_told_the_decision_that_stands(
        self, pipeline: Pipeline, bots: Callable[[int], Bots], graph: graph_server.FakeGraph, sentinel: SentinelServer
    ) -> None:
        """Both read "pending" before either decides: the orchestration takes the first; the other approver is told it, not their own."""
        fleet = bots(2)
        answers: list[BotResponse] = []

        def approve(instance: Instance, request: ApprovalInput) -> None:
            live = Live(instance, barrier=2)
            answers.extend(
                fleet.together(
                    fleet.handle(request, live.port(0), APPROVER, APPROVE, bot=0),
                    fleet.handle(request, live.port(1), SECOND_APPROVER, REJECT, bot=1),
                )
            )
            assert [event for event, _ in live.raised] == [APPROVAL_EVENT, APPROVAL_EVENT]  # both were authorised and raised

        pipeline.run(approve)

        outcome = pipeline.outcomes()[0]
        winner = "approved" if outcome.outcome is ApprovalEnd.APPROVED else "rejected"
        texts = [answer(a) for a in answers]
        assert sum(f"{winner.capitalize()} by" in t and "Already" not in t for t in texts) == 1
        assert sum(f"Already {winner} by" in t and "Your click changed nothing" in t for t in texts) == 1
        assert len(graph.calls("POST", "revokeSignInSessions")) == (1 if winner == "approved" else 0)
        assert list(approval_comments(sentinel, _request(pipeline)))[:2] == ["pending", "decided"]

    def test_the_suspect_is_refused_even_as_an_approver_and_it_is_recorded(
        self, pipeline: Pipeline, bots: Callable[[int], Bots], graph: graph_server.FakeGraph, sentinel: SentinelServer
    ) -> None:
        """The suspect (an approver group member) clicks approve: refused, recorded on the incident, nothing contained."""
        fleet = bots(1)
        texts: list[str] = []

        def approve(instance: Instance, request: ApprovalInput) -> None:
            texts.append(answer(fleet.click(request, Live(instance).port(0), data.ALICE_ID)))
            instance.advance()

        pipeline.run(approve)

        assert "The suspect user cannot decide their own containment" in texts[0]
        assert pipeline.outcomes()[0].outcome is ApprovalEnd.EXPIRED
        assert graph.calls("POST", "revokeSignInSessions") == []
        records = approval_comments(sentinel, _request(pipeline))
        assert "alice@contoso.com" in records["refused-1"]
        assert "the suspect user cannot decide their own containment" in records["refused-1"]

    def test_a_token_without_expiry_decides_nothing(
        self, pipeline: Pipeline, bots: Callable[[int], Bots], graph: graph_server.FakeGraph
    ) -> None:
        """A Bot Framework token with no exp is refused (401): no event reaches the orchestration, which still waits."""
        fleet = bots(1)
        seen: list[tuple[int, str]] = []

        def approve(instance: Instance, request: ApprovalInput) -> None:
            response = fleet.click(request, Live(instance).port(0), APPROVER, exp=None)
            instance.advance()
            seen.append((response.status, approval_state(instance.runtime_status, instance.custom_status).phase.value))

        pipeline.run(approve)

        assert seen == [(401, "pending")]
        assert pipeline.outcomes()[0].outcome is ApprovalEnd.EXPIRED
        assert graph.calls("POST", "revokeSignInSessions") == []

    def test_forty_refused_clicks_cost_two_directory_lookups_and_one_record(
        self, pipeline: Pipeline, bots: Callable[[int], Bots], graph: graph_server.FakeGraph, sentinel: SentinelServer
    ) -> None:
        """One outsider clicking 40 times: one UPN and one membership look-up, one refusal event, one refused record."""
        fleet = bots(1)

        def approve(instance: Instance, request: ApprovalInput) -> None:
            port = Live(instance).port(0)
            for _ in range(40):
                assert "may not decide" in answer(fleet.click(request, port, OUTSIDER))
            instance.advance()

        pipeline.run(approve)

        outsider = [r for r in graph.requests if OUTSIDER in r.path]
        assert len(outsider) == 2
        records = approval_comments(sentinel, _request(pipeline))
        assert [state for state in records if state.startswith("refused")] == ["refused-1"]
        assert "mallory@contoso.com" in records["refused-1"]


def test_the_run_ends_failed_when_an_approval_record_cannot_be_written(pipeline: Pipeline, sentinel: SentinelServer) -> None:
    """Sentinel refuses the decided record for good: containment stands, the run ends Failed naming the record."""
    from tests.fakes.sentinel_server import forbidden

    def approve(instance: Instance, request: ApprovalInput) -> None:
        sentinel.fail("put_comment", forbidden())  # the next write: the decided record
        scripted(decided(False))(instance, request)

    output = pipeline.run(approve)

    result = run_result_of(output)
    assert isinstance(result, IncidentRunResult)
    assert result.failure is not None
    assert result.approvals[0].unrecorded == ("decided",)
    assert "decided" in result.failure.error
