"""
The approval bot's Teams side, on the Microsoft 365 Agents SDK: POST /api/messages in, an answer card out.

Every request is authenticated as the Bot Framework's before anything is read from it
(`playbooks.adapters.botframework_auth`). A click (invoke `adaptiveCard/action` from Action.Execute,
or a message with a `value` from the Action.Submit fallback) is checked for shape and handed, as a
`Click`, to `playbooks.services.approval_clicks.ApprovalClicks`, which decides what it means. The
answer goes back the way Teams expects it: an invoke response carrying a card (or an error), or,
for the Action.Submit fallback, a reply in the thread sent with the bot's own credential.

The SDK is imported only when a request is handled, so importing this module stays cheap.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from common.errors import InputError
from common.logs import get_logger
from common.settings import Settings
from playbooks.adapters.bot_connector import ADAPTIVE_CARD, client_factory, managed_identity
from playbooks.adapters.botframework_auth import BotAuthenticator, BotAuthError, BotFrameworkKeys
from playbooks.render.card import APPROVE, Card, is_approval_data, parse_action_data
from playbooks.services.approval_clicks import ApprovalClicks, ApproverDirectory, Click, ClickAnswer, ClickError, Orchestrations

if TYPE_CHECKING:
    from microsoft_agents.activity import Activity, TurnContextProtocol
    from microsoft_agents.hosting.core import AccessTokenProviderBase

_log = get_logger("teams")


@dataclass(frozen=True, slots=True)
class BotResponse:
    """What POST /api/messages answers: a status and, for invokes, a JSON body."""

    status: int
    body: dict[str, Any] | None = None


def _error_body(error: ClickError) -> dict[str, Any]:
    """A Universal Actions error answer (shown by Teams as an error on the card)."""
    return {
        "statusCode": error.status,
        "type": "application/vnd.microsoft.error",
        "value": {"code": error.code, "message": error.message},
    }


def _answer_body(answer: ClickAnswer) -> dict[str, Any]:
    if answer.card is not None:
        return {"statusCode": 200, "type": ADAPTIVE_CARD, "value": answer.card}
    return _error_body(answer.error or ClickError(500, "InternalError", "the click could not be answered"))


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


class ApprovalBot:
    """
    The approval bot: authenticates a POST /api/messages and hands an approval click to the decisions.

    `directory` answers who may decide (through `ApprovalClicks`, within `lookup_budget` seconds);
    `token_provider` is the bot's credential for the replies the SDK sends (its managed identity by
    default); `clock` gives the time of a click.
    """

    def __init__(
        self,
        settings: Settings,
        directory: ApproverDirectory,
        *,
        keys: BotFrameworkKeys | None = None,
        token_provider: AccessTokenProviderBase | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        lookup_budget: float = 3.0,
    ) -> None:
        self._settings = settings
        self._authenticator = BotAuthenticator(settings.bot_app_id, keys or BotFrameworkKeys())
        self._token_provider = token_provider
        self.clicks = ApprovalClicks(settings, directory, clock=clock, lookup_budget=lookup_budget)
        self._adapter: Any = None

    def _sdk_adapter(self) -> Any:
        if self._adapter is None:
            from microsoft_agents.hosting.core import ChannelServiceAdapter

            provider = self._token_provider or managed_identity(self._settings.bot_app_id, self._settings.tenant_id)
            self._adapter = ChannelServiceAdapter(client_factory(provider, self._settings.bot_app_id, self._settings.tenant_id))
        return self._adapter

    async def handle(self, authorization: str | None, body: bytes, orchestrations: Orchestrations) -> BotResponse:
        """Answer one POST /api/messages: 401 unless authenticated, 400 for a body that is no activity."""
        from microsoft_agents.activity import Activity

        try:
            identity = await self._authenticator.authenticate(authorization)
        except BotAuthError as error:
            _log.warning("bot.request_refused", reason=str(error))
            return BotResponse(401, {"error": "unauthorized"})
        try:
            activity = Activity.model_validate(json.loads(body))
        except ValueError as error:  # bad JSON, bad UTF-8 and pydantic's ValidationError are all ValueErrors
            _log.warning("bot.bad_activity", error=type(error).__name__)
            return BotResponse(400, {"error": "the body is not a Bot Framework activity"})
        if not activity.type or activity.conversation is None or not activity.conversation.id:
            return BotResponse(400, {"error": "the activity has no type or conversation"})
        try:
            self._authenticator.check_activity(identity, activity)
        except BotAuthError as error:
            _log.warning("bot.request_refused", reason=str(error))
            return BotResponse(401, {"error": "unauthorized"})

        handler = _handler_class()(self, orchestrations)
        response = await self._sdk_adapter().process_activity(identity, activity, handler.on_turn)
        if activity.type == "invoke":
            if response is None:
                return BotResponse(501)
            return BotResponse(int(response.status or 200), response.body if isinstance(response.body, dict) else None)
        return BotResponse(202)

    async def click(self, activity: Activity, verb: str, raw: Mapping[str, Any], orchestrations: Orchestrations) -> ClickAnswer:
        """Read one click from the activity (its data checked for shape) and have it decided."""
        try:
            data_verb, data = parse_action_data(raw)
        except InputError as error:
            _log.warning("bot.bad_click", error=str(error))
            return ClickAnswer(error=ClickError(400, "BadRequest", str(error)))
        if verb and verb != data_verb:
            return ClickAnswer(error=ClickError(400, "BadRequest", "the action's verb and its data disagree"))
        clicker = activity.from_property
        tenant = _mapping(activity.channel_data).get("tenant")
        click = Click(
            data=data,
            approve=data_verb == APPROVE,
            clicker_object_id=(clicker.aad_object_id or "").strip().lower() if clicker else "",
            clicker_name=(clicker.name or "") if clicker else "",
            tenant_id=str(_mapping(tenant).get("id", "")).lower(),
            conversation_id=activity.conversation.id if activity.conversation else "",
        )
        return await self.clicks.click(click, orchestrations)


def _reply(card: Card) -> Activity:
    from microsoft_agents.activity import Activity, Attachment

    return Activity(type="message", attachments=[Attachment(content_type=ADAPTIVE_CARD, content=card)])


@functools.cache
def _handler_class() -> type[Any]:
    """The SDK activity handler for approval clicks, defined on first use so the SDK loads lazily."""
    from microsoft_agents.activity import Activity, InvokeResponse
    from microsoft_agents.hosting.core import ActivityHandler

    class ApprovalHandler(ActivityHandler):
        """Routes the two kinds of click to `ApprovalBot.click`; everything else is acknowledged and ignored."""

        def __init__(self, bot: ApprovalBot, orchestrations: Orchestrations) -> None:
            super().__init__()
            self._bot = bot
            self._orchestrations = orchestrations

        async def on_invoke_activity(self, turn_context: TurnContextProtocol[Any]) -> Any:
            activity = turn_context.activity
            if activity.name != "adaptiveCard/action":
                return InvokeResponse(status=501)
            action = _mapping(_mapping(activity.value).get("action"))
            data = action.get("data")
            if action.get("type") != "Action.Execute" or not isinstance(data, Mapping) or not is_approval_data(data):
                return InvokeResponse(status=200, body=_error_body(ClickError(400, "BadRequest", "not an approval card action")))
            verb = action.get("verb")
            answer = await self._bot.click(activity, verb if isinstance(verb, str) else "", data, self._orchestrations)
            return InvokeResponse(status=200, body=_answer_body(answer))

        async def on_message_activity(self, turn_context: TurnContextProtocol[Any]) -> None:
            # The Action.Submit fallback of older clients: a message whose value is the button's data.
            value = turn_context.activity.value
            if not isinstance(value, Mapping) or not is_approval_data(value):
                return
            answer = await self._bot.click(turn_context.activity, "", value, self._orchestrations)
            if answer.card is not None:
                await turn_context.send_activity(_reply(answer.card))
            elif answer.error is not None:
                await turn_context.send_activity(Activity(type="message", text=answer.error.message))

    return ApprovalHandler
