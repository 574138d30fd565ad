"""
POST /api/messages: the approval bot's HTTP endpoint, as a Durable Functions blueprint.

The Bot Framework proves itself with a JWT the bot checks (`playbooks.adapters.botframework_auth`), so the function is
anonymous at the Functions level: a function key would lock Teams out, and the JWT check refuses
everyone else before anything is read. The durable client binding is wrapped in the `Orchestrations`
port per request; the bot itself is built once, on the first request, by the factory the app passes
in, so importing this module connects nowhere and the bot's key, token and decision caches live as
long as the worker.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import azure.durable_functions as df
import azure.functions as func
import structlog

from playbooks.adapters.durable_client import DurableOrchestrations
from playbooks.adapters.teams_bot import ApprovalBot, BotResponse
from playbooks.services.approval_clicks import Orchestrations

#: The route under the Functions prefix: the Azure Bot's messaging endpoint is https://<app>/api/messages.
MESSAGES_ROUTE = "messages"
FUNCTION_NAME = "bot_messages"


def http_response(response: BotResponse) -> func.HttpResponse:
    """The bot's answer as the Functions HTTP response (JSON body for invokes and errors, empty for 202)."""
    if response.body is None:
        return func.HttpResponse(status_code=response.status)
    return func.HttpResponse(json.dumps(response.body), status_code=response.status, mimetype="application/json")


async def answer(bot: ApprovalBot, request: func.HttpRequest, orchestrations: Orchestrations) -> func.HttpResponse:
    """Hand one request to the bot: only the Authorization header and the raw body are read here."""
    response = await bot.handle(request.headers.get("Authorization"), request.get_body(), orchestrations)
    return http_response(response)


def approval_blueprint(bot: Callable[[], ApprovalBot]) -> df.Blueprint:
    """
    The blueprint to register with `app.register_functions(...)`.

    `bot` returns the app's one `ApprovalBot` (e.g. a `functools.cache`d factory reading the
    settings and wiring the authoriser); it is called per request and must not rebuild the bot.
    """
    blueprint = df.Blueprint()

    # azure-functions-durable ships no type information, so its decorators are untyped to mypy.
    @blueprint.function_name(FUNCTION_NAME)  # type: ignore[untyped-decorator]
    @blueprint.route(route=MESSAGES_ROUTE, methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)  # type: ignore[untyped-decorator]
    @blueprint.durable_client_input(client_name="client")  # type: ignore[untyped-decorator]
    async def bot_messages(
        req: func.HttpRequest, client: df.DurableOrchestrationClient, context: func.Context
    ) -> func.HttpResponse:
        with structlog.contextvars.bound_contextvars(invocation_id=context.invocation_id):
            return await answer(bot(), req, DurableOrchestrations(client))

    return blueprint
