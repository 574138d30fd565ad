"""POST /api/messages through the blueprint's decorated function, with a hand-written Durable client and the fake Bot Framework."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus

from common.settings import Settings
from playbooks.adapters.botframework_auth import BotFrameworkKeys
from playbooks.adapters.graph import GraphDirectory, create_graph_directory
from playbooks.adapters.teams_bot import ApprovalBot
from playbooks.domain import codec
from playbooks.domain.approval import approval_status
from playbooks.domain.authorization import ApprovalRequest
from playbooks.domain.workflow import APPROVAL_EVENT, ApprovalDecision, ApprovalPhase, ApprovalStatus
from playbooks.functions.bot_api import FUNCTION_NAME, MESSAGES_ROUTE, approval_blueprint
from playbooks.render.card import APPROVE, ActionData
from tests.fakes.botframework_server import BOT_APP_ID, CHANNEL_ID, TENANT_ID, BotFrameworkFake
from tests.fakes.graph_server import FakeCredential, FakeGraph, running
from tests.unit import card_samples as s

APPROVER = "aaaaaaaa-0000-4000-8000-000000000001"
GROUP = "bbbbbbbb-0000-4000-8000-000000000001"


class FakeDurableClient:
    """The durable client binding as the bot uses it: statuses as the extension answers them, events recorded."""

    def __init__(self, status: DurableOrchestrationStatus, *, raise_error: Exception | None = None) -> None:
        self.status = status
        self.raise_error = raise_error
        self.events: list[tuple[str, str, Any]] = []

    async def get_status(self, instance_id: str) -> DurableOrchestrationStatus:
        return self.status

    async def raise_event(self, instance_id: str, event_name: str, event_data: Any = None) -> None:
        if self.raise_error is not None:
            raise self.raise_error
        self.events.append((instance_id, event_name, event_data))
        if event_name == APPROVAL_EVENT and self.status.custom_status is not None:
            # What the orchestration does on receipt of the first decision: publish it as the one that stands.
            waiting = codec.decode(ApprovalStatus, self.status.custom_status)
            if waiting.decision is None:
                decided = codec.decode(ApprovalDecision, event_data)
                published = dataclasses.replace(waiting, phase=ApprovalPhase.DECIDED, decision=decided)
                self.status = DurableOrchestrationStatus.from_json(
                    {**self.status.to_json(), "customStatus": codec.encode(published)}
                )


class Tokens:
    """The bot's credential in tests."""

    configuration = None

    async def get_access_token(self, resource_url: str, scopes: list[str], force_refresh: bool = False) -> str:
        return "fake-bot-token"

    def get_token_credential(self) -> Any:
        raise AssertionError("not used")


@pytest.fixture
async def bf() -> AsyncIterator[BotFrameworkFake]:
    async with BotFrameworkFake() as fake:
        yield fake


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with running() as fake:
        fake.add_user(APPROVER, "alex@contoso.example")
        fake.add_member(GROUP, APPROVER)
        yield fake


@pytest.fixture
def settings(bf: BotFrameworkFake, graph: FakeGraph) -> Settings:
    return Settings.from_values(
        {
            "REPLAY_BOT_APP_ID": BOT_APP_ID,
            "REPLAY_TENANT_ID": TENANT_ID,
            "REPLAY_TEAMS_CHANNEL_ID": CHANNEL_ID,
            "REPLAY_TEAMS_SERVICE_URL": bf.url,
            "REPLAY_APPROVER_GROUP_ID": GROUP,
            "REPLAY_GRAPH_ENDPOINT": graph.base_url,
        }
    )


@pytest.fixture
async def directory(settings: Settings) -> AsyncIterator[GraphDirectory]:
    adapter = create_graph_directory(settings, credential=FakeCredential(), max_retries=0)
    yield adapter
    await adapter.close()


@pytest.fixture
def endpoint(bf: BotFrameworkFake, settings: Settings, directory: GraphDirectory) -> Any:
    """The decorated function's user code, from a DFApp with the approval blueprint registered."""
    built: list[ApprovalBot] = []

    def bot() -> ApprovalBot:
        if not built:
            built.append(
                ApprovalBot(
                    settings,
                    directory,
                    keys=BotFrameworkKeys(bf.metadata_url),
                    token_provider=Tokens(),
                    clock=lambda: s.AT + timedelta(minutes=30),
                )
            )
        return built[0]

    app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
    app.register_functions(approval_blueprint(bot))
    (function,) = app.get_functions()
    return Endpoint(function.get_user_function().client_function, function, built)


class Endpoint:
    """The bot function as the host calls it: the request, the durable client and an invocation context."""

    def __init__(self, function: Any, definition: Any, built: list[Any]) -> None:
        self.function, self.definition, self.built = function, definition, built

    async def __call__(self, **bindings: Any) -> Any:
        return await self.function(context=Invocation("inv-bot"), **bindings)


class Invocation:
    """The part of func.Context the function reads."""

    def __init__(self, invocation_id: str) -> None:
        self.invocation_id = invocation_id


def _waiting() -> tuple[ActionData, DurableOrchestrationStatus]:
    plan = s.plan_for(s.typical()[1])
    request = ApprovalRequest.for_plan(plan, s.AT)
    status = DurableOrchestrationStatus.from_json(
        {
            "name": "incident_orchestrator",
            "instanceId": s.INSTANCE_ID,
            "createdTime": "2026-11-05T14:00:00Z",
            "lastUpdatedTime": "2026-11-05T14:01:00Z",
            "runtimeStatus": "Running",
            "customStatus": codec.encode(approval_status(request, ApprovalPhase.PENDING)),
        }
    )
    return ActionData.for_plan(s.INCIDENT, plan, instance_id=s.INSTANCE_ID, expires_at=s.EXPIRES), status


def _request(bf: BotFrameworkFake, body: dict[str, Any], token: str | None) -> func.HttpRequest:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return func.HttpRequest("POST", "https://app.example/api/messages", headers=headers, body=json.dumps(body).encode())


def test_route_is_an_anonymous_post_on_api_messages_with_a_durable_client(endpoint: Any) -> None:
    """Teams reaches the bot at POST /api/messages without a function key; the durable client binding is attached."""
    bindings = [json.loads(b) for b in endpoint.definition.get_raw_bindings()]
    trigger = next(b for b in bindings if b["type"] == "httpTrigger")
    assert endpoint.definition.get_function_name() == FUNCTION_NAME
    assert (trigger["route"], trigger["methods"], trigger["authLevel"]) == (MESSAGES_ROUTE, ["POST"], "ANONYMOUS")
    assert any(b["type"] == "durableClient" for b in bindings)


async def test_click_through_the_function_raises_the_event_and_answers_the_card(bf: BotFrameworkFake, endpoint: Any) -> None:
    """An authenticated approval click raises ApprovalDecision on the durable client and answers with the recorded card."""
    data, status = _waiting()
    client = FakeDurableClient(status)
    request = _request(bf, bf.invoke(data.to_data(APPROVE), clicker_id=APPROVER), bf.token())
    response = await endpoint(req=request, client=client)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = json.loads(response.get_body())
    assert body["type"] == "application/vnd.microsoft.card.adaptive"
    assert "Approved by alex@contoso.example" in json.dumps(body["value"])
    (instance, event, payload), *rest = client.events
    assert rest == []
    assert (instance, event) == (s.INSTANCE_ID, APPROVAL_EVENT)
    decided = codec.decode(ApprovalDecision, payload)
    assert (decided.approved, decided.plan_digest, decided.decided_by_object_id) == (True, data.plan_digest, APPROVER)


async def test_unauthenticated_post_is_401_and_raises_nothing(bf: BotFrameworkFake, endpoint: Any) -> None:
    """Without a Bot Framework token the function answers 401 and the durable client is not touched."""
    data, status = _waiting()
    client = FakeDurableClient(status)
    response = await endpoint(req=_request(bf, bf.invoke(data.to_data(APPROVE), clicker_id=APPROVER), None), client=client)
    assert response.status_code == 401
    assert client.events == []


async def test_gone_orchestration_is_answered_stale(bf: BotFrameworkFake, endpoint: Any) -> None:
    """When the durable extension says the instance is gone, the clicker is told the request no longer waits."""
    data, status = _waiting()
    client = FakeDurableClient(
        status, raise_error=Exception(f"Instance with ID {s.INSTANCE_ID} is gone: either completed or failed")
    )
    response = await endpoint(req=_request(bf, bf.invoke(data.to_data(APPROVE), clicker_id=APPROVER), bf.token()), client=client)
    body = json.loads(response.get_body())
    assert response.status_code == 200
    assert "no longer waiting for a decision" in json.dumps(body["value"])


async def test_unknown_instance_is_answered_stale(bf: BotFrameworkFake, endpoint: Any) -> None:
    """A click naming an instance the extension does not know raises nothing."""
    data, _ = _waiting()
    client = FakeDurableClient(DurableOrchestrationStatus.from_json(""))
    response = await endpoint(req=_request(bf, bf.invoke(data.to_data(APPROVE), clicker_id=APPROVER), bf.token()), client=client)
    assert "No containment request with this id is known" in json.dumps(json.loads(response.get_body())["value"])
    assert client.events == []


async def test_non_invoke_activity_is_accepted_with_an_empty_202(bf: BotFrameworkFake, endpoint: Any) -> None:
    """A conversation update (the bot being installed) is acknowledged with 202 and no body."""
    data, status = _waiting()
    activity = bf.invoke(data.to_data(APPROVE), clicker_id=APPROVER)
    activity["type"] = "conversationUpdate"
    del activity["name"], activity["value"]
    response = await endpoint(req=_request(bf, activity, bf.token()), client=FakeDurableClient(status))
    assert response.status_code == 202
    assert response.get_body() == b""


async def test_bot_is_built_once_for_many_requests(bf: BotFrameworkFake, endpoint: Any) -> None:
    """The factory's bot (and its key, token and decision caches) serves every request of the worker."""
    data, status = _waiting()
    for _ in range(3):
        await endpoint(
            req=_request(bf, bf.invoke(data.to_data(APPROVE), clicker_id=APPROVER), bf.token()), client=FakeDurableClient(status)
        )
    assert len(endpoint.built) == 1
    assert len([r for r in bf.requests if r.path == "/v1/.well-known/keys"]) == 1


async def test_unreachable_durable_host_asks_teams_to_retry(bf: BotFrameworkFake, endpoint: Any) -> None:
    """A connection failure to the Durable host is transient: Teams gets a 503 error and a later click can still decide."""
    import aiohttp

    data, status = _waiting()
    client = FakeDurableClient(status, raise_error=aiohttp.ClientConnectionError("connection refused"))
    request = _request(bf, bf.invoke(data.to_data(APPROVE), clicker_id=APPROVER), bf.token())
    body = json.loads((await endpoint(req=request, client=client)).get_body())
    assert body["statusCode"] == 503
    client.raise_error = None
    retry = _request(bf, bf.invoke(data.to_data(APPROVE), clicker_id=APPROVER), bf.token())
    assert json.loads((await endpoint(req=retry, client=client)).get_body())["type"] == "application/vnd.microsoft.card.adaptive"
    assert len(client.events) == 1
