"""The outbound Teams connector against the fake Bot Framework: posting and updating cards, retries, the bot's credential."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from common.errors import InputError, TransientUpstreamError, UpstreamError
from common.settings import Settings
from playbooks.adapters import bot_connector as teams
from playbooks.adapters.bot_connector import Retries
from playbooks.domain import codec
from playbooks.domain.workflow import MessageReference
from playbooks.render.card import card_for
from tests.fakes.botframework_server import BOT_APP_ID, CHANNEL_ID, TENANT_ID, BotFrameworkFake, Scripted
from tests.fakes.graph_server import FakeGraph
from tests.unit import card_samples as s

GROUP = "bbbbbbbb-0000-4000-8000-000000000001"
FAST = Retries(attempts=3, wait_initial=0.01, wait_max=0.02, retry_after_max=0.05, timeout=2.0)


class FakeTokens:
    """The bot's credential in tests: a fixed token, recording what it was asked for."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, list[str]]] = []

    @property
    def configuration(self) -> Any:
        from microsoft_agents.hosting.core import AgentAuthConfiguration

        return AgentAuthConfiguration(client_id=BOT_APP_ID, tenant_id=TENANT_ID)

    async def get_access_token(self, resource_url: str, scopes: list[str], force_refresh: bool = False) -> str:
        self.asked.append((resource_url, scopes))
        return "fake-bot-token"

    def get_token_credential(self) -> Any:
        raise AssertionError("the bot never asks for an azure-core credential")


def settings_for(bf: BotFrameworkFake, graph: FakeGraph | None = None, **extra: str) -> Settings:
    """The bot's app settings pointed at the fakes."""
    values = {
        "REPLAY_BOT_APP_ID": BOT_APP_ID,
        "REPLAY_TENANT_ID": TENANT_ID,
        "REPLAY_TEAMS_CHANNEL_ID": CHANNEL_ID,
        "REPLAY_TEAMS_SERVICE_URL": bf.url,
        "REPLAY_APPROVER_GROUP_ID": GROUP,
        "REPLAY_OPTIONAL_ACTIONS": "disable_account",
        "REPLAY_APPROVAL_TIMEOUT_HOURS": "4",
    }
    if graph is not None:
        values["REPLAY_GRAPH_ENDPOINT"] = graph.base_url
    values.update(extra)
    return Settings.from_values(values)


def _card() -> dict[str, Any]:
    evidence, assessment = s.typical()
    return card_for(s.INCIDENT, evidence, assessment, s.plan_for(assessment), instance_id=s.INSTANCE_ID, expires_at=s.EXPIRES)


async def test_post_card_creates_a_channel_thread_with_the_card(bf: BotFrameworkFake) -> None:
    """The card is posted as a new thread in the configured channel of the tenant, with the bot's token."""
    tokens = FakeTokens()
    card = _card()
    reference = await teams.post_card(settings_for(bf), card, token_provider=tokens, retries=FAST)
    (request,) = bf.connector_requests()
    assert (request.method, request.path) == ("POST", "/v3/conversations")
    assert request.headers["Authorization"] == "Bearer fake-bot-token"
    assert request.body["isGroup"] is True
    assert request.body["channelData"] == {"channel": {"id": CHANNEL_ID}, "tenant": {"id": TENANT_ID}}
    assert request.body["tenantId"] == TENANT_ID
    assert request.body["bot"]["id"] == f"28:{BOT_APP_ID}"
    attachment = request.body["activity"]["attachments"][0]
    assert attachment == {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
    assert reference.activity_id == "1730815200001"
    assert reference.conversation_id == f"{CHANNEL_ID};messageid=1730815200001"
    assert reference.service_url == bf.service_url
    assert tokens.asked == [("https://api.botframework.com", ["https://api.botframework.com/.default"])]


async def test_update_card_replaces_the_posted_message(bf: BotFrameworkFake) -> None:
    """Updating puts the new card on the same message id of the same conversation."""
    tokens = FakeTokens()
    reference = await teams.post_card(settings_for(bf), _card(), token_provider=tokens, retries=FAST)
    refreshed = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "done"}]}
    stored = codec.decode(MessageReference, codec.encode(reference))  # as the orchestration keeps it in history
    await teams.update_card(stored, refreshed, token_provider=tokens, retries=FAST)
    update = bf.connector_requests()[-1]
    assert update.method == "PUT"
    assert update.path == f"/v3/conversations/{reference.conversation_id}/activities/{reference.activity_id}"
    assert update.body["attachments"][0]["content"] == refreshed
    assert update.body["id"] == reference.activity_id


async def test_throttled_post_waits_the_retry_after_and_succeeds(bf: BotFrameworkFake) -> None:
    """A 429 with Retry-After is retried after that wait, not after the (long) exponential backoff."""
    bf.script.append(Scripted(429, headers={"Retry-After": "0"}, body={"error": {"code": "Throttled"}}))
    slow_backoff = Retries(attempts=3, wait_initial=60, wait_max=60, retry_after_max=1, timeout=2)
    async with asyncio.timeout(10):
        reference = await teams.post_card(settings_for(bf), _card(), token_provider=FakeTokens(), retries=slow_backoff)
    assert len(bf.connector_requests()) == 2
    assert reference.activity_id


async def test_retry_after_is_capped(bf: BotFrameworkFake) -> None:
    """An absurd Retry-After is capped at retry_after_max instead of stalling the orchestration."""
    bf.script.append(Scripted(503, headers={"Retry-After": "86400"}))
    async with asyncio.timeout(10):
        await teams.post_card(settings_for(bf), _card(), token_provider=FakeTokens(), retries=FAST)
    assert len(bf.connector_requests()) == 2


async def test_persistent_server_errors_become_a_transient_error_after_the_attempts(bf: BotFrameworkFake) -> None:
    """5xx on every attempt ends as TransientUpstreamError (safe to retry the activity) after exactly `attempts` calls."""
    bf.script.extend(Scripted(502) for _ in range(5))
    with pytest.raises(TransientUpstreamError) as raised:
        await teams.post_card(settings_for(bf), _card(), token_provider=FakeTokens(), retries=FAST)
    assert raised.value.status == 502
    assert len(bf.connector_requests()) == FAST.attempts


async def test_blocked_bot_is_not_retried_and_says_what_to_fix(bf: BotFrameworkFake) -> None:
    """403 (bot blocked or not installed in the team) fails at once with a hint, without retries."""
    bf.script.append(Scripted(403, body={"error": {"code": "MessageWritesBlocked", "message": "blocked"}}))
    with pytest.raises(UpstreamError) as raised:
        await teams.post_card(settings_for(bf), _card(), token_provider=FakeTokens(), retries=FAST)
    assert not isinstance(raised.value, TransientUpstreamError)
    assert raised.value.status == 403
    assert "install the bot's Teams app" in raised.value.hint
    assert len(bf.connector_requests()) == 1


@pytest.mark.slow
async def test_hung_connector_times_out_and_is_retried(bf: BotFrameworkFake) -> None:
    """A connector call that never answers is cut at the timeout and retried; then it fails as transient."""
    bf.script.extend(Scripted(200, delay=1.0) for _ in range(2))
    bounded = Retries(attempts=2, wait_initial=0.01, wait_max=0.01, timeout=0.3)
    reference = MessageReference(bf.service_url, f"{CHANNEL_ID};messageid=1", "1", BOT_APP_ID, TENANT_ID)
    with pytest.raises(TransientUpstreamError):
        await teams.update_card(reference, _card(), token_provider=FakeTokens(), retries=bounded)
    assert len(bf.connector_requests()) == 2


async def test_post_card_without_channel_settings_is_refused_before_any_call(bf: BotFrameworkFake) -> None:
    """Missing bot settings are named in the error and nothing is sent."""
    with pytest.raises(InputError, match="REPLAY_TEAMS_CHANNEL_ID"):
        await teams.post_card(settings_for(bf, REPLAY_TEAMS_CHANNEL_ID=""), _card(), token_provider=FakeTokens())
    assert bf.requests == []


def test_message_reference_refuses_a_damaged_dict() -> None:
    """A stored reference missing a field is an input error naming the fields, not a KeyError later."""
    with pytest.raises(InputError, match="MessageReference: missing field"):
        codec.decode(MessageReference, {"service_url": "https://x/", "conversation_id": "c"})


async def test_managed_identity_token_is_fetched_once_and_sent(bf: BotFrameworkFake, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a test credential the bot uses MSAL's managed identity (App Service endpoint) for the Bot Connector audience, cached."""
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{bf.url}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", "fake-identity-header")
    teams.managed_identity.cache_clear()
    try:
        await teams.post_card(settings_for(bf), _card(), retries=FAST)
        await teams.post_card(settings_for(bf), _card(), retries=FAST)
    finally:
        teams.managed_identity.cache_clear()
    identity_calls = [r for r in bf.requests if r.path == "/msi/token"]
    assert len(identity_calls) == 1
    assert identity_calls[0].query["resource"] == "https://api.botframework.com"
    assert identity_calls[0].query["client_id"] == BOT_APP_ID
    assert {r.headers["Authorization"] for r in bf.connector_requests()} == {f"Bearer mi-token-for-{BOT_APP_ID}"}
