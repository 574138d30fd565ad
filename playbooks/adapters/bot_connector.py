"""
The outbound Teams connector: post the approval card to the channel, and replace it later.

The Microsoft 365 Agents SDK's connector client, with the bot's own credentials (its user-assigned
managed identity in Azure, through MSAL). The connector client does not retry, so tenacity does,
here and only here: 429 with Retry-After (capped), 5xx, timeouts and dropped connections, a
bounded number of attempts. What still fails is an `UpstreamError` with a hint, transient
(`TransientUpstreamError`) when a later attempt of the whole activity may succeed.

The SDK is imported only when a card is sent, so importing this module stays cheap and connects nowhere.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from common.errors import InputError, TransientUpstreamError, UpstreamError
from common.logs import get_logger
from common.settings import Settings
from playbooks.domain.workflow import MessageReference
from playbooks.render.card import Card

if TYPE_CHECKING:
    from microsoft_agents.activity import Activity
    from microsoft_agents.hosting.core import AccessTokenProviderBase

SERVICE = "Teams"
#: The token audience of the Bot Connector service for outbound calls.
BOTFRAMEWORK_AUDIENCE = "https://api.botframework.com"
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"

HINT_FORBIDDEN = (
    "the bot may not post there: install the bot's Teams app in the team of REPLAY_TEAMS_CHANNEL_ID "
    "(403 MessageWritesBlocked means it was blocked or uninstalled)"
)
HINT_UNAUTHORISED = (
    "the Bot Connector refused the bot's token: REPLAY_BOT_APP_ID must be the client id of the user-assigned "
    "managed identity the Azure Bot is registered with (msaAppType UserAssignedMSI), assigned to the Function App"
)
HINT_NOT_FOUND = "no such conversation: check REPLAY_TEAMS_CHANNEL_ID (19:...@thread.tacv2) and REPLAY_TEAMS_SERVICE_URL"
HINT_THROTTLED = "Teams is throttling the bot or failing; retry the operation later"

_log = get_logger("teams")


@functools.cache
def managed_identity(client_id: str, tenant_id: str) -> AccessTokenProviderBase:
    """
    The bot's credential in Azure: the user-assigned managed identity the Azure Bot is registered with
    (its msaAppId is that identity's client id, REPLAY_BOT_APP_ID). One per process, so MSAL's token
    cache serves every call.
    """
    from microsoft_agents.authentication.msal import MsalAuth
    from microsoft_agents.hosting.core import AgentAuthConfiguration
    from microsoft_agents.hosting.core.authorization import AuthTypes

    return MsalAuth(
        AgentAuthConfiguration(auth_type=AuthTypes.user_managed_identity, client_id=client_id, tenant_id=tenant_id or None)
    )


def client_factory(token_provider: AccessTokenProviderBase, app_id: str, tenant_id: str) -> Any:
    """The SDK's connector-client factory over one credential."""
    from microsoft_agents.hosting.core import AgentAuthConfiguration, ConnectionManager, RestChannelServiceClientFactory
    from microsoft_agents.hosting.core.authorization import AuthTypes

    config = AgentAuthConfiguration(auth_type=AuthTypes.user_managed_identity, client_id=app_id, tenant_id=tenant_id or None)
    connections = ConnectionManager(lambda _config: token_provider, {"SERVICE_CONNECTION": config})
    return RestChannelServiceClientFactory(connections)


@dataclass(frozen=True, slots=True)
class Retries:
    """Bounds of the one retry loop around Bot Connector calls; tests shrink them to milliseconds."""

    attempts: int = 4
    wait_initial: float = 1.0
    wait_max: float = 30.0
    retry_after_max: float = 60.0
    timeout: float = 30.0


_RETRIED = frozenset({429, 500, 502, 503, 504})


def _retry_after(error: BaseException, now: Callable[[], datetime]) -> float | None:
    headers = getattr(error, "headers", None)
    raw = headers.get("Retry-After") if headers is not None else None
    if not raw:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max((when - now()).total_seconds(), 0.0) if when.tzinfo else None


def _transient(error: BaseException) -> bool:
    import aiohttp

    if isinstance(error, aiohttp.ClientResponseError):
        return error.status in _RETRIED
    return isinstance(error, aiohttp.ClientConnectionError | TimeoutError)


def _upstream(error: BaseException, what: str) -> UpstreamError:
    """The connector client's failure as our error, with what to check."""
    import aiohttp

    if isinstance(error, aiohttp.ClientResponseError):
        status = error.status
        if status == 401:
            return UpstreamError(SERVICE, f"{what} refused", status=status, hint=HINT_UNAUTHORISED)
        if status == 403:
            return UpstreamError(SERVICE, f"{what} forbidden", status=status, hint=HINT_FORBIDDEN)
        if status == 404:
            return UpstreamError(SERVICE, f"{what}: not found", status=status, hint=HINT_NOT_FOUND)
        if status in _RETRIED:
            return TransientUpstreamError(SERVICE, f"{what} failed after retries", status=status, hint=HINT_THROTTLED)
        return UpstreamError(SERVICE, f"{what} failed", status=status)
    return TransientUpstreamError(SERVICE, f"{what} failed: {type(error).__name__}", hint=HINT_THROTTLED)


async def _with_retries(call: Callable[[], Awaitable[Any]], what: str, retries: Retries) -> Any:
    """Run one connector call under tenacity: Retry-After when Teams sends one, else exponential backoff with jitter."""
    from tenacity import AsyncRetrying, RetryError, retry_if_exception, stop_after_attempt, wait_exponential_jitter

    backoff = wait_exponential_jitter(multiplier=retries.wait_initial, max=retries.wait_max, jitter=retries.wait_initial)

    def wait(state: Any) -> float:
        error = state.outcome.exception() if state.outcome else None
        after = _retry_after(error, lambda: datetime.now(UTC)) if error is not None else None
        return min(after, retries.retry_after_max) if after is not None else float(backoff(state))

    async def attempt() -> Any:
        async with asyncio.timeout(retries.timeout):
            return await call()

    try:
        async for attempt_state in AsyncRetrying(
            retry=retry_if_exception(_transient), stop=stop_after_attempt(retries.attempts), wait=wait, reraise=False
        ):
            with attempt_state:
                return await attempt()
    except RetryError as error:
        last = error.last_attempt.exception()
        raise _upstream(last if last is not None else error, what) from last
    except Exception as error:
        if isinstance(error, UpstreamError):
            raise
        import aiohttp

        if isinstance(error, aiohttp.ClientError | TimeoutError):
            raise _upstream(error, what) from error
        raise
    msg = "unreachable: tenacity returned without an attempt"
    raise AssertionError(msg)


async def _connector(service_url: str, app_id: str, tenant_id: str, token_provider: AccessTokenProviderBase | None) -> Any:
    """A connector client for `service_url` holding a token of the bot's identity."""
    from microsoft_agents.hosting.core import ClaimsIdentity

    provider = token_provider or managed_identity(app_id, tenant_id)
    identity = ClaimsIdentity({"aud": app_id, "appid": app_id})
    factory = client_factory(provider, app_id, tenant_id)
    try:
        return await factory.create_connector_client(None, identity, service_url, BOTFRAMEWORK_AUDIENCE)
    except Exception as error:
        msg = f"no token for the Bot Connector: {type(error).__name__}: {error}"
        raise UpstreamError(SERVICE, msg, hint=HINT_UNAUTHORISED) from error


def _card_activity(card: Card) -> Activity:
    from microsoft_agents.activity import Activity, Attachment

    activity = Activity(type="message", attachments=[Attachment(content_type=ADAPTIVE_CARD, content=card)])
    summary = card.get("fallbackText")
    if isinstance(summary, str):
        activity.summary = summary  # the notification text of clients that cannot show the card
    return activity


def _message_id(conversation_id: str) -> str:
    """A channel thread's conversation id ends with `;messageid=<id of the root message>`."""
    _, found, tail = conversation_id.partition(";messageid=")
    return tail if found else ""


async def post_card(
    settings: Settings,
    card: Card,
    *,
    token_provider: AccessTokenProviderBase | None = None,
    retries: Retries = Retries(),
) -> MessageReference:
    """
    Post `card` as a new thread in the approval channel and return where it lives.

    A retry after a failure the service may have half-done can post the card twice; that is
    harmless, as every copy names the same request and only the first decision counts.
    """
    from microsoft_agents.activity import ChannelAccount, ConversationParameters

    missing = [
        name
        for name, value in (
            ("REPLAY_BOT_APP_ID", settings.bot_app_id),
            ("REPLAY_TENANT_ID", settings.tenant_id),
            ("REPLAY_TEAMS_CHANNEL_ID", settings.teams_channel_id),
        )
        if not value
    ]
    if missing:
        msg = f"cannot post the approval card: {', '.join(missing)} not set"
        raise InputError(msg)
    service_url = settings.teams_service_url.rstrip("/") + "/"
    parameters = ConversationParameters(
        is_group=True,
        bot=ChannelAccount(id=f"28:{settings.bot_app_id}"),
        channel_data={"channel": {"id": settings.teams_channel_id}, "tenant": {"id": settings.tenant_id}},
        tenant_id=settings.tenant_id,
        activity=_card_activity(card),
    )
    client = await _connector(service_url, settings.bot_app_id, settings.tenant_id, token_provider)
    try:
        result = await _with_retries(
            lambda: client.conversations.create_conversation(parameters), "posting the approval card", retries
        )
    finally:
        await client.close()
    conversation_id = str(result.id or "")
    activity_id = str(result.activity_id or "") or _message_id(conversation_id)
    if not conversation_id or not activity_id:
        msg = "posting the approval card: the answer named no conversation or message"
        raise UpstreamError(SERVICE, msg)
    reference = MessageReference(
        str(result.service_url or service_url), conversation_id, activity_id, settings.bot_app_id, settings.tenant_id
    )
    _log.info("teams.card_posted", conversation_id=conversation_id, activity_id=activity_id)
    return reference


async def update_card(
    reference: MessageReference,
    card: Card,
    *,
    token_provider: AccessTokenProviderBase | None = None,
    retries: Retries = Retries(),
) -> None:
    """Replace the posted card for everyone (after a decision, with the outcome; or when the request expires)."""
    from microsoft_agents.activity import ConversationAccount

    activity = _card_activity(card)
    activity.id = reference.activity_id
    activity.conversation = ConversationAccount(id=reference.conversation_id)
    client = await _connector(reference.service_url, reference.bot_app_id, reference.tenant_id, token_provider)
    try:
        await _with_retries(
            lambda: client.conversations.update_activity(reference.conversation_id, reference.activity_id, activity),
            "updating the approval card",
            retries,
        )
    finally:
        await client.close()
    _log.info("teams.card_updated", conversation_id=reference.conversation_id, activity_id=reference.activity_id)


class BotConnector:
    """
    The approval channel as the orchestration's activities use it: post a card, refresh it.

    Holds the settings, the bot's credential (its managed identity unless a test passes one) and the
    retry bounds, so an activity says only what to send.
    """

    def __init__(
        self, settings: Settings, *, token_provider: AccessTokenProviderBase | None = None, retries: Retries = Retries()
    ) -> None:
        self._settings = settings
        self._token_provider = token_provider
        self._retries = retries

    async def post(self, card: Card) -> MessageReference:
        return await post_card(self._settings, card, token_provider=self._token_provider, retries=self._retries)

    async def update(self, reference: MessageReference, card: Card) -> None:
        await update_card(reference, card, token_provider=self._token_provider, retries=self._retries)
