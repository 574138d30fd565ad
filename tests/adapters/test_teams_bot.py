"""The approval bot against a fake Bot Framework and a fake Graph: authentication, then the click flow."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest

from common.errors import InputError, TransientUpstreamError
from playbooks.adapters.botframework_auth import BotFrameworkKeys
from playbooks.adapters.graph import GraphDirectory, create_graph_directory
from playbooks.adapters.teams_bot import ApprovalBot, BotResponse
from playbooks.domain import codec
from playbooks.domain.approval import ApprovalState, approval_state, approval_status
from playbooks.domain.authorization import ApprovalRequest
from playbooks.domain.plan import ContainmentPlan, Decision
from playbooks.domain.workflow import ApprovalAttempt, ApprovalDecision, ApprovalPhase
from playbooks.render.card import APPROVE, REJECT, ActionData
from tests.adapters.test_bot_connector import FakeTokens, settings_for
from tests.fakes.botframework_server import BOT_APP_ID, CHANNEL_ID, KID, BotFrameworkFake
from tests.fakes.graph_server import FakeCredential, FakeGraph, running
from tests.unit import card_samples as s

APPROVER = "aaaaaaaa-0000-4000-8000-000000000001"
SECOND_APPROVER = "aaaaaaaa-0000-4000-8000-000000000002"
OUTSIDER = "aaaaaaaa-0000-4000-8000-000000000009"
GROUP = "bbbbbbbb-0000-4000-8000-000000000001"


# ---------------------------------------------------------------------------------------------- fixtures


def published(request: ApprovalRequest, phase: ApprovalPhase, decision: Decision | None = None, name: str = "") -> Any:
    """The custom status the orchestration publishes, as the Durable client hands it back."""
    return codec.encode(approval_status(request, phase, decision, name))


class FakeOrchestrations:
    """
    The durable side of the bot: per instance a runtime status and custom status, read through the
    real `approval_state`. Raising the decision records it and, as the orchestrator does on receipt,
    publishes it as decided.
    """

    def __init__(self) -> None:
        self.status: dict[str, tuple[str | None, Any]] = {}
        self.raised: list[tuple[str, ApprovalDecision]] = []
        self.attempts: list[tuple[str, ApprovalAttempt]] = []
        self.fail_raise: Exception | None = None
        self.fail_status: Exception | None = None

    def waiting(self, instance_id: str, request: ApprovalRequest) -> None:
        self.status[instance_id] = ("Running", published(request, ApprovalPhase.PENDING))

    async def approval_state(self, instance_id: str) -> ApprovalState:
        if self.fail_status is not None:
            raise self.fail_status
        runtime, custom = self.status.get(instance_id, (None, None))
        return approval_state(runtime, custom)

    async def raise_decision(self, instance_id: str, decision: ApprovalDecision) -> None:
        if self.fail_raise is not None:
            raise self.fail_raise
        self.raised.append((instance_id, decision))
        runtime, custom = self.status[instance_id]
        state = approval_state(runtime, custom)
        assert state.request is not None
        if state.decision is None:  # the orchestration takes the first decision only
            self.status[instance_id] = (
                runtime,
                published(state.request, ApprovalPhase.DECIDED, decision.decision, decision.decided_by_name),
            )

    async def raise_attempt(self, instance_id: str, attempt: ApprovalAttempt) -> None:
        if self.fail_raise is not None:
            raise self.fail_raise
        self.attempts.append((instance_id, attempt))


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with running() as fake:
        fake.add_user(APPROVER, "alex@contoso.example")
        fake.add_user(SECOND_APPROVER, "bianca@contoso.example")
        fake.add_user(OUTSIDER, "mallory@contoso.example")
        fake.add_user(s.USER_ID, s.UPN)
        fake.add_member(GROUP, APPROVER)
        fake.add_member(GROUP, SECOND_APPROVER)
        yield fake


@pytest.fixture
async def directory(bf: BotFrameworkFake, graph: FakeGraph) -> AsyncIterator[GraphDirectory]:
    adapter = create_graph_directory(settings_for(bf, graph), credential=FakeCredential(), max_retries=0, timeout_seconds=2)
    yield adapter
    await adapter.close()


class World:
    """One bot wired to the fakes, with a plan waiting for approval."""

    def __init__(self, bf: BotFrameworkFake, graph: FakeGraph, directory: GraphDirectory, **settings: str) -> None:
        self.bf = bf
        self.graph = graph
        self.settings = settings_for(bf, graph, **settings)
        self.tokens = FakeTokens()
        self.now = s.AT + timedelta(minutes=30)
        self.bot = ApprovalBot(
            self.settings, directory, keys=BotFrameworkKeys(bf.metadata_url), token_provider=self.tokens, clock=lambda: self.now
        )
        self.orchestrations = FakeOrchestrations()
        self.plan: ContainmentPlan = s.plan_for(s.typical()[1])
        self.request = ApprovalRequest.for_plan(self.plan, s.AT)
        self.orchestrations.waiting(s.INSTANCE_ID, self.request)
        self.data = ActionData.for_plan(s.INCIDENT, self.plan, instance_id=s.INSTANCE_ID, expires_at=s.EXPIRES)

    async def send(self, activity: dict[str, Any], token: str | None = None) -> BotResponse:
        authorization = None if token == "" else f"Bearer {token or self.bf.token()}"
        return await self.bot.handle(authorization, json.dumps(activity).encode(), self.orchestrations)

    async def click(self, verb: str = APPROVE, clicker: str = APPROVER, **who: Any) -> BotResponse:
        return await self.send(self.bf.invoke(self.data.to_data(verb), clicker_id=clicker, **who))


@pytest.fixture
async def world(bf: BotFrameworkFake, graph: FakeGraph, directory: GraphDirectory) -> World:
    return World(bf, graph, directory)


def card_text(response: BotResponse) -> str:
    assert response.status == 200
    assert response.body is not None
    assert response.body["type"] == "application/vnd.microsoft.card.adaptive"
    texts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "TextBlock":
                texts.append(node["text"])
            if node.get("type") == "RichTextBlock":
                texts.append("".join(run["text"] for run in node["inlines"]))
                return
            if node.get("type") == "FactSet":
                texts.extend(f"{f['title']}: {f['value']}" for f in node["facts"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(response.body["value"])
    return "\n".join(texts).replace("\\", "")


def unsigned(**claims: Any) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT', 'kid': KID})}.{part(claims)}."


# ---------------------------------------------------------------------------------------------- authentication


async def test_valid_bot_framework_token_is_accepted(world: World) -> None:
    """A token signed with the published Teams-endorsed key, for this bot and service URL, gets the click handled."""
    response = await world.click()
    assert "Approved by alex@contoso.example" in card_text(response)
    assert len(world.orchestrations.raised) == 1


@pytest.mark.parametrize(
    ("token", "why"),
    [
        (lambda bf: "", "no Authorization header"),
        (lambda bf: unsigned(iss="https://api.botframework.com", aud=BOT_APP_ID, exp=int(time.time()) + 600), "unsigned"),
        (lambda bf: bf.token(key="forged"), "signed with a key nobody published, same kid"),
        (lambda bf: bf.token(aud="00000000-1111-2222-3333-444444444444"), "another bot's audience"),
        (lambda bf: bf.token(exp=int(time.time()) - 400, nbf=int(time.time()) - 4000), "expired beyond the 5 min skew"),
        (lambda bf: bf.token(nbf=int(time.time()) + 600), "not valid for another 10 minutes"),
        (lambda bf: bf.token(iss="https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/"), "an Entra issuer"),
        (lambda bf: bf.token(iss="https://evil.example"), "an unknown issuer"),
        (lambda bf: bf.token(serviceurl="https://smba.trafficmanager.net/emea/"), "issued for another service URL"),
        (lambda bf: bf.token(kid="unknown-key"), "a key id the Bot Framework does not publish"),
        (lambda bf: bf.token(exp=None), "no expiry at all (it would never expire)"),
    ],
)
async def test_unauthenticated_requests_are_refused_and_change_nothing(world: World, token: Any, why: str) -> None:
    """Each forged or unfit token is answered 401; no event is raised, no directory lookup and no connector call happen."""
    response = await world.send(world.bf.invoke(world.data.to_data(APPROVE), clicker_id=APPROVER), token=token(world.bf))
    assert response.status == 401, why
    assert world.orchestrations.raised == []
    assert world.bf.connector_requests() == []
    assert world.graph.requests == []
    assert world.tokens.asked == []


async def test_token_expired_within_the_clock_skew_is_still_accepted(world: World) -> None:
    """A token that expired two minutes ago is inside the 5 min tolerance the Bot Framework allows."""
    response = await world.send(
        world.bf.invoke(world.data.to_data(APPROVE), clicker_id=APPROVER),
        token=world.bf.token(exp=int(time.time()) - 120, nbf=int(time.time()) - 3600),
    )
    assert response.status == 200
    assert len(world.orchestrations.raised) == 1


async def test_key_that_does_not_endorse_teams_is_refused(graph: FakeGraph) -> None:
    """A correctly signed token whose key is endorsed only for other channels is refused."""
    async with BotFrameworkFake(endorsements=("webchat", "directline")) as bf:
        adapter = create_graph_directory(settings_for(bf, graph), credential=FakeCredential(), max_retries=0)
        try:
            world = World(bf, graph, adapter)
            response = await world.click()
        finally:
            await adapter.close()
    assert response.status == 401
    assert world.orchestrations.raised == []


async def test_activity_from_another_channel_is_refused(world: World) -> None:
    """A validly signed activity that did not come through Teams is refused."""
    activity = world.bf.invoke(world.data.to_data(APPROVE), clicker_id=APPROVER)
    activity["channelId"] = "webchat"
    assert (await world.send(activity)).status == 401
    assert world.orchestrations.raised == []


async def test_signing_keys_are_fetched_once_and_reused(world: World) -> None:
    """The OpenID metadata and keys are read once, not on every click."""
    for verb in (APPROVE, APPROVE, REJECT):
        await world.click(verb)
    fetched = [r.path for r in world.bf.requests if r.path.startswith("/v1/")]
    assert fetched == ["/v1/.well-known/openidconfiguration", "/v1/.well-known/keys"]


async def test_body_that_is_no_activity_is_a_bad_request(world: World) -> None:
    """An authenticated caller sending something that is not an activity gets 400 and nothing happens."""
    response = await world.bot.handle(f"Bearer {world.bf.token()}", b"{not json", world.orchestrations)
    assert response.status == 400
    assert world.orchestrations.raised == []


def test_bot_refuses_to_run_without_an_app_id(bf: BotFrameworkFake) -> None:
    """Without an app id the SDK would accept anyone, so the bot will not start."""
    with pytest.raises(InputError, match="REPLAY_BOT_APP_ID"):
        ApprovalBot(settings_for(bf, REPLAY_BOT_APP_ID=""), directory=None)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- the click flow


async def test_authorised_approval_raises_one_event_bound_to_the_plan(world: World) -> None:
    """An approver's click raises ApprovalDecision once, with the plan digest, who decided and when."""
    response = await world.click()
    assert [instance for instance, _ in world.orchestrations.raised] == [s.INSTANCE_ID]
    decided = world.orchestrations.raised[0][1]
    assert decided == ApprovalDecision(
        True, world.plan.digest, APPROVER, "alex@contoso.example", s.AT + timedelta(minutes=30), "Alex Wilber"
    )
    text = card_text(response)
    assert "Approved by alex@contoso.example at 2026-11-05 14:30 UTC" in text
    assert "Containment is running" in text
    assert response.body is not None
    assert [a["type"] for a in response.body["value"].get("actions", [])] == ["Action.OpenUrl"]


async def test_rejection_is_delivered_as_a_decision_too(world: World) -> None:
    """Reject raises the same event with approved false."""
    response = await world.click(REJECT)
    assert world.orchestrations.raised[0][1].approved is False
    assert "Rejected by alex@contoso.example" in card_text(response)


async def test_second_click_is_answered_already_decided_without_a_second_event(world: World) -> None:
    """Another approver clicking after the decision is told who decided; no second event is raised."""
    await world.click(APPROVE, APPROVER)
    response = await world.click(REJECT, SECOND_APPROVER, clicker_name="Bianca Pires")
    assert "Already approved by alex@contoso.example at 2026-11-05 14:30 UTC" in card_text(response)
    assert len(world.orchestrations.raised) == 1


async def test_teams_retrying_the_same_click_gets_the_same_answer_and_no_second_event(world: World) -> None:
    """The same person's same click again (Teams retries slow invokes) is answered 'recorded' again, idempotently."""
    first = await world.click()
    second = await world.click()
    assert card_text(first) == card_text(second)
    assert len(world.orchestrations.raised) == 1


async def test_decision_recorded_by_another_instance_is_respected(world: World) -> None:
    """A decision the orchestration already published (made through another app instance) stops this click."""
    decision = Decision(False, world.plan.digest, SECOND_APPROVER, "bianca@contoso.example", s.AT + timedelta(minutes=5))
    world.orchestrations.status[s.INSTANCE_ID] = ("Running", published(world.request, ApprovalPhase.DECIDED, decision))
    response = await world.click()
    assert "Already rejected by bianca@contoso.example at 2026-11-05 14:05 UTC" in card_text(response)
    assert world.orchestrations.raised == []


async def test_concurrent_clicks_raise_one_event(world: World) -> None:
    """Two approvers clicking at the same moment: one event, the other answered 'already decided'."""
    answers = await asyncio.gather(world.click(APPROVE, APPROVER), world.click(REJECT, SECOND_APPROVER))
    assert len(world.orchestrations.raised) == 1
    assert sum("Already" in card_text(a) for a in answers) == 1


async def test_unauthorised_click_is_refused_without_an_event(world: World) -> None:
    """Someone outside the approver group is told they may not decide; nothing is raised and the request stays open."""
    response = await world.click(APPROVE, OUTSIDER, clicker_name="Mallory")
    text = card_text(response)
    assert "Mallory may not decide on this containment" in text
    assert "Only members of the approver group" in text
    assert world.orchestrations.raised == []
    assert "Approved by" in card_text(await world.click(APPROVE, APPROVER))  # still open for approvers


async def test_refused_click_is_handed_to_the_orchestration_for_the_incident(world: World) -> None:
    """A refused click becomes one ApprovalAttempt event with who, when, what they tried and why, for the audit trail."""
    await world.click(REJECT, OUTSIDER, clicker_name="Mallory")
    [(instance, attempt)] = world.orchestrations.attempts
    assert (attempt.person_object_id, attempt.person_name, attempt.approve) == (OUTSIDER, "Mallory", False)
    assert "approver group" in attempt.reason
    assert attempt.at.tzinfo is not None
    assert instance == s.INSTANCE_ID


async def test_refusal_that_cannot_be_delivered_still_answers_the_clicker(world: World) -> None:
    """When the Durable host cannot take the refusal event, the clicker is still told they may not decide."""
    world.orchestrations.fail_raise = TransientUpstreamError("Durable Functions", "host unreachable")
    response = await world.click(APPROVE, OUTSIDER, clicker_name="Mallory")
    assert "Mallory may not decide on this containment" in card_text(response)


async def test_suspect_cannot_approve_their_own_containment(world: World) -> None:
    """The suspect user is refused even when they are an approver."""
    world.graph.add_member(GROUP, s.USER_ID)
    response = await world.click(APPROVE, s.USER_ID, clicker_name="Adele Vance")
    assert "The suspect user cannot decide their own containment" in card_text(response)
    assert world.orchestrations.raised == []


async def test_group_membership_unknown_is_a_refusal(world: World) -> None:
    """When Graph cannot say whether the clicker is an approver, the click is refused, not passed."""
    world.graph.fail("POST", "checkMemberGroups", 503, times=5)
    response = await world.click()
    assert "could not be checked" in card_text(response)
    assert world.orchestrations.raised == []


@pytest.mark.slow
async def test_slow_directory_is_cut_off_so_teams_gets_an_answer(bf: BotFrameworkFake, graph: FakeGraph) -> None:
    """A directory slower than the lookup budget gives a refusal within the budget, not a Teams timeout."""
    graph.fail("POST", "checkMemberGroups", 200, delay=3.0)
    adapter = create_graph_directory(settings_for(bf, graph), credential=FakeCredential(), max_retries=0, timeout_seconds=10)
    try:
        world = World(bf, graph, adapter)
        world.bot.clicks.lookup_budget = 0.3
        started = time.monotonic()
        response = await world.click()
        elapsed = time.monotonic() - started
    finally:
        await adapter.close()
    assert "could not be checked" in card_text(response)
    assert elapsed < 2.5
    assert world.orchestrations.raised == []


async def test_allow_listed_approver_needs_no_group_lookup(
    bf: BotFrameworkFake, graph: FakeGraph, directory: GraphDirectory
) -> None:
    """An object id on REPLAY_APPROVER_OBJECT_IDS is authorised without asking Graph about groups."""
    world = World(bf, graph, directory, REPLAY_APPROVER_OBJECT_IDS=OUTSIDER)
    response = await world.click(APPROVE, OUTSIDER, clicker_name="Mallory Cortez")
    assert "Approved by mallory@contoso.example" in card_text(response)
    assert graph.calls("POST", "checkMemberGroups") == []


async def test_click_after_the_deadline_is_answered_expired(world: World) -> None:
    """After the orchestration's deadline the click is answered 'expired' and raises nothing."""
    world.now = s.AT + timedelta(hours=4, minutes=1)
    response = await world.click()
    assert "This request expired at 2026-11-05 18:00 UTC" in card_text(response)
    assert world.orchestrations.raised == []


async def test_expired_request_is_answered_expired(world: World) -> None:
    """Once the orchestration published 'expired', clicks are answered so."""
    world.orchestrations.status[s.INSTANCE_ID] = ("Running", published(world.request, ApprovalPhase.EXPIRED))
    assert "expired" in card_text(await world.click())
    assert world.orchestrations.raised == []


async def test_card_of_a_replaced_plan_cannot_approve_the_new_one(world: World) -> None:
    """A card whose plan digest differs from the waiting request's is refused."""
    newer = ApprovalRequest(world.request.incident_id, world.request.target, "f" * 32, world.request.created_at)
    world.orchestrations.waiting(s.INSTANCE_ID, newer)
    response = await world.click()
    assert "belongs to a different incident, user or plan" in card_text(response)
    assert world.orchestrations.raised == []


@pytest.mark.parametrize(
    ("runtime", "custom", "expected"),
    [
        (None, None, "no containment request with this id is known"),
        ("Completed", None, "the request is completed"),
        ("Running", {"phase": "enriching"}, "the request is not waiting for a decision"),
    ],
)
async def test_click_on_a_closed_request_is_answered_stale(world: World, runtime: Any, custom: Any, expected: str) -> None:
    """Unknown, finished or not-yet-waiting orchestrations get a 'no longer matches' answer and no event."""
    world.orchestrations.status[s.INSTANCE_ID] = (runtime, custom)
    text = card_text(await world.click())
    assert "no longer matches a waiting request" in text
    assert expected.capitalize() in text
    assert world.orchestrations.raised == []


async def test_click_from_another_tenant_is_refused(world: World) -> None:
    """A click carrying another tenant id is refused before anything is looked up."""
    response = await world.click(tenant_id="11111111-2222-3333-4444-555555555555")
    assert "The click came from another tenant" in card_text(response)
    assert world.orchestrations.raised == []
    assert world.graph.requests == []


async def test_click_outside_the_approval_channel_is_stale(world: World) -> None:
    """A card clicked in another conversation than the approval channel is not acted on."""
    response = await world.click(channel_id="19:elsewhere@thread.tacv2")
    assert "not posted by this playbook" in card_text(response)
    assert world.orchestrations.raised == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("plan_digest", "not-a-digest"), ("instance_id", "a/b"), ("verb", "delete-everything"), ("user_object_id", "x")],
)
async def test_malformed_card_data_is_a_bad_request(world: World, field: str, value: str) -> None:
    """Data that is not the card's shape gets a Universal Actions 400 error, and nothing happens."""
    data = world.data.to_data(APPROVE)
    data[field] = value
    response = await world.send(world.bf.invoke(data, verb=APPROVE, clicker_id=APPROVER))
    assert response.status == 200
    assert response.body is not None
    assert response.body["statusCode"] == 400
    assert response.body["type"] == "application/vnd.microsoft.error"
    assert field in response.body["value"]["message"]
    assert world.orchestrations.raised == []


async def test_verb_and_data_must_agree(world: World) -> None:
    """An Execute whose verb says approve while its data says reject is refused."""
    response = await world.send(world.bf.invoke(world.data.to_data(REJECT), verb=APPROVE, clicker_id=APPROVER))
    assert response.body is not None
    assert response.body["statusCode"] == 400
    assert world.orchestrations.raised == []


async def test_durable_outage_asks_teams_to_retry_and_remembers_nothing(world: World) -> None:
    """If the event cannot be delivered the clicker gets a 503 error and a later click still goes through."""
    world.orchestrations.fail_raise = TransientUpstreamError("Durable Functions", "host busy")
    response = await world.click()
    assert response.body is not None
    assert response.body["statusCode"] == 503
    world.orchestrations.fail_raise = None
    assert "Approved by" in card_text(await world.click())
    assert len(world.orchestrations.raised) == 1


async def test_unreadable_state_is_a_retryable_error(world: World) -> None:
    """When the orchestration's status cannot be read, nothing is decided and Teams is told to retry."""
    world.orchestrations.fail_status = TransientUpstreamError("Durable Functions", "status unavailable")
    response = await world.click()
    assert response.body is not None
    assert response.body["statusCode"] == 503
    assert world.orchestrations.raised == []


async def test_action_submit_fallback_records_the_decision_and_replies_in_the_thread(world: World) -> None:
    """An old client's Action.Submit message is handled like the invoke; the answer card is replied with the bot's token."""
    response = await world.send(world.bf.submit(world.data.to_data(APPROVE), clicker_id=APPROVER))
    assert response == BotResponse(202)
    assert len(world.orchestrations.raised) == 1
    replies = world.bf.connector_requests()
    assert len(replies) == 1
    assert replies[0].method == "POST"
    assert replies[0].path.startswith(f"/v3/conversations/{CHANNEL_ID};messageid=")
    assert replies[0].headers["Authorization"] == "Bearer fake-bot-token"
    attachment = replies[0].body["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert "Approved by alex@contoso.example" in json.dumps(attachment["content"])
    assert ("https://api.botframework.com", ["https://api.botframework.com/.default"]) in world.tokens.asked


async def test_plain_messages_to_the_bot_are_acknowledged_and_ignored(world: World) -> None:
    """A message without approval data (someone @mentions the bot) is accepted and does nothing."""
    activity = world.bf.submit({"hello": "bot"}, clicker_id=APPROVER)
    assert (await world.send(activity)) == BotResponse(202)
    assert world.orchestrations.raised == []
    assert world.bf.connector_requests() == []
