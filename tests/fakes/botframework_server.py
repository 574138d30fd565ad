"""
A fake Bot Framework on 127.0.0.1: OpenID metadata, signing keys, the Bot Connector and a managed-identity endpoint.

It is a real HTTP server the real SDK clients talk to: the bot fetches its signing keys here, the
connector client creates conversations and updates activities here, and MSAL asks it for the bot's
token as it asks App Service's identity endpoint. Tests get from it what Teams would send (signed
tokens, invoke and message activities) and read back what arrived (`requests`). The published key
endorses the Teams channel; `forged` tokens are signed with a key nobody published.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ISSUER = "https://api.botframework.com"
CHANNEL_ID = "19:approvals0000000000000000000000@thread.tacv2"
TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
BOT_APP_ID = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
KID = "bf-key-1"


@functools.cache
def _key(name: str) -> rsa.RSAPrivateKey:
    """One RSA key per name per test process (generation is the slow part)."""
    del name
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Recorded:
    """One request that reached the fake."""

    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    body: Any


@dataclass(frozen=True)
class Scripted:
    """A canned answer for the next connector call (status, headers, JSON body, delay before answering)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    delay: float = 0.0


class BotFrameworkFake:
    """Start with `async with BotFrameworkFake() as fake:`; `fake.url` is the base of every endpoint."""

    def __init__(self, *, endorsements: tuple[str, ...] = ("msteams", "webchat")) -> None:
        self.endorsements = list(endorsements)
        self.requests: list[Recorded] = []
        self.script: deque[Scripted] = deque()
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._messages = 0

    # -- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> BotFrameworkFake:
        app = web.Application()
        app.router.add_get("/v1/.well-known/openidconfiguration", self._metadata)
        app.router.add_get("/v1/.well-known/keys", self._keys)
        app.router.add_post("/v3/conversations", self._create_conversation)
        app.router.add_put("/v3/conversations/{conversation}/activities/{activity}", self._update_activity)
        app.router.add_post("/v3/conversations/{conversation}/activities/{activity}", self._reply)
        app.router.add_post("/v3/conversations/{conversation}/activities", self._send)
        app.router.add_get("/msi/token", self._managed_identity_token)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- what tests use --------------------------------------------------------------------------

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/v1/.well-known/openidconfiguration"

    @property
    def service_url(self) -> str:
        """The Bot Connector base a Teams activity names as its serviceUrl."""
        return f"{self.url}/"

    def token(self, *, key: str = "botframework", kid: str = KID, **claims: Any) -> str:
        """A Bot Framework-style JWT; claims override the defaults (issuer, audience, serviceurl, lifetime)."""
        now = int(time.time())
        payload = {
            "iss": ISSUER,
            "aud": BOT_APP_ID,
            "serviceurl": self.service_url,
            "nbf": now - 60,
            "iat": now - 60,
            "exp": now + 3600,
        }
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(payload, _key(key), algorithm="RS256", headers={"kid": kid})

    def connector_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.startswith("/v3/")]

    def invoke(self, data: dict[str, Any], *, verb: str | None = None, **who: Any) -> dict[str, Any]:
        """The invoke activity Teams sends when someone presses an Action.Execute button."""
        activity = self._activity("invoke", **who)
        activity["name"] = "adaptiveCard/action"
        activity["value"] = {"action": {"type": "Action.Execute", "verb": verb or data.get("verb"), "data": data}}
        return activity

    def submit(self, data: dict[str, Any], **who: Any) -> dict[str, Any]:
        """The message activity an older client sends for the Action.Submit fallback."""
        activity = self._activity("message", **who)
        activity["text"] = ""
        activity["value"] = data
        return activity

    def _activity(
        self,
        kind: str,
        *,
        clicker_id: str = "",
        clicker_name: str = "Alex Wilber",
        tenant_id: str = TENANT_ID,
        channel_id: str = CHANNEL_ID,
        service_url: str | None = None,
        message_id: str = "1730815200000",
    ) -> dict[str, Any]:
        return {
            "type": kind,
            "id": f"f:{uuid.uuid4()}",
            "timestamp": "2026-11-05T14:30:00.000Z",
            "channelId": "msteams",
            "serviceUrl": service_url or self.service_url,
            "from": {"id": f"29:{uuid.uuid4()}", "name": clicker_name, "aadObjectId": clicker_id},
            "conversation": {
                "isGroup": True,
                "conversationType": "channel",
                "tenantId": tenant_id,
                "id": f"{channel_id};messageid={message_id}",
            },
            "recipient": {"id": f"28:{BOT_APP_ID}", "name": "Replay approvals"},
            "channelData": {"tenant": {"id": tenant_id}, "channel": {"id": channel_id}, "team": {"id": channel_id}},
            "replyToId": message_id,
            "locale": "en-GB",
        }

    # -- handlers --------------------------------------------------------------------------------

    async def _record(self, request: web.Request) -> Recorded:
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = await request.json() if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
        recorded = Recorded(request.method, request.path, dict(request.headers), dict(request.query), body)
        self.requests.append(recorded)
        return recorded

    async def _metadata(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response(
            {
                "issuer": ISSUER,
                "authorization_endpoint": "https://invalid.example/not-used",
                "jwks_uri": f"{self.url}/v1/.well-known/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            }
        )

    async def _keys(self, request: web.Request) -> web.Response:
        await self._record(request)
        jwk = RSAAlgorithm.to_jwk(_key("botframework").public_key(), as_dict=True)
        jwk.update({"kid": KID, "use": "sig", "alg": "RS256", "endorsements": self.endorsements})
        return web.json_response({"keys": [jwk]})

    async def _scripted(self) -> web.Response | None:
        if not self.script:
            return None
        answer = self.script.popleft()
        if answer.delay:
            await asyncio.sleep(answer.delay)
        return web.json_response(answer.body or {}, status=answer.status, headers=answer.headers)

    async def _create_conversation(self, request: web.Request) -> web.Response:
        await self._record(request)
        scripted = await self._scripted()
        if scripted is not None:
            return scripted
        self._messages += 1
        message_id = str(1730815200000 + self._messages)
        return web.json_response({"id": f"{CHANNEL_ID};messageid={message_id}", "activityId": message_id}, status=201)

    async def _update_activity(self, request: web.Request) -> web.Response:
        await self._record(request)
        scripted = await self._scripted()
        return scripted or web.json_response({"id": request.match_info["activity"]})

    async def _reply(self, request: web.Request) -> web.Response:
        await self._record(request)
        scripted = await self._scripted()
        return scripted or web.json_response({"id": f"reply-{len(self.requests)}"}, status=201)

    async def _send(self, request: web.Request) -> web.Response:
        await self._record(request)
        scripted = await self._scripted()
        return scripted or web.json_response({"id": f"sent-{len(self.requests)}"}, status=201)

    async def _managed_identity_token(self, request: web.Request) -> web.Response:
        """App Service's identity endpoint (IDENTITY_ENDPOINT): a token for the resource asked, if the header is right."""
        recorded = await self._record(request)
        if recorded.headers.get("X-IDENTITY-HEADER") != "fake-identity-header":
            return web.json_response({"statusCode": 401, "message": "bad identity header"}, status=401)
        resource = recorded.query.get("resource", "")
        client_id = recorded.query.get("client_id", "")
        return web.json_response(
            {
                "access_token": f"mi-token-for-{client_id}",
                "expires_on": str(int(time.time()) + 3600),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": client_id,
            }
        )
