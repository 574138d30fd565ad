"""
Bot Framework token validation: is this POST /api/messages provably from the Bot Framework, for this bot?

Every request to the approval bot is authenticated before anything is read from it. The Agents SDK's
`JwtTokenValidator` checks the JWT: signed with a key from the Bot Framework's OpenID metadata
(`BotFrameworkKeys`, which trusts only keys that endorse Teams), issuer https://api.botframework.com,
audience the bot's app id, lifetime with 5 minutes of clock skew. `BotAuthenticator` adds what the
validator leaves to the host: a token must carry an expiry (PyJWT checks `exp` only when present),
and the activity must come through Teams from the service URL the token was issued for.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from common.errors import InputError

if TYPE_CHECKING:
    from microsoft_agents.activity import Activity
    from microsoft_agents.hosting.core import ClaimsIdentity

#: Where the Bot Framework publishes its signing keys (its `jwks_uri`).
BOTFRAMEWORK_OPENID_METADATA = "https://login.botframework.com/v1/.well-known/openidconfiguration"
#: The only issuer accepted on inbound calls.
BOTFRAMEWORK_ISSUER = "https://api.botframework.com"
TEAMS_CHANNEL = "msteams"


class BotAuthError(Exception):
    """A request that is not provably from the Bot Framework for this bot; answered 401, nothing else happens."""


class BotFrameworkKeys:
    """
    The Bot Framework's signing keys, found through its OpenID metadata and cached.

    It stands in for the key source of the SDK's `JwtTokenValidator`, which hard-codes the public
    JWKS URL: this one follows the metadata URL it is given (tests point it at a local fake), trusts
    no other issuer's keys, and accepts only keys that endorse the Teams channel. Keys are kept for
    `lifespan` seconds; an unknown key id refreshes them at most once per `cooldown`.
    """

    def __init__(
        self,
        metadata_url: str = BOTFRAMEWORK_OPENID_METADATA,
        *,
        channel: str = TEAMS_CHANNEL,
        ssl_context: ssl.SSLContext | None = None,
        lifespan: float = 24 * 3600,
        cooldown: float = 30,
        timeout: float = 10,
    ) -> None:
        self._metadata_url = metadata_url
        self._channel = channel
        self._ssl_context = ssl_context
        self._lifespan = lifespan
        self._cooldown = cooldown
        self._timeout = timeout
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    def _get_json(self, url: str) -> Any:
        from jwt.exceptions import PyJWKClientConnectionError

        if not url.startswith(("https://", "http://")):
            msg = f"refusing to fetch signing keys from {url!r}"
            raise PyJWKClientConnectionError(msg)
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=self._ssl_context))
        try:
            with opener.open(
                urllib.request.Request(url, headers={"Accept": "application/json"}),  # noqa: S310 - scheme checked above
                timeout=self._timeout,
            ) as response:
                return json.load(response)
        except (urllib.error.URLError, TimeoutError, OSError, json.JSONDecodeError) as error:
            msg = f"cannot fetch {url}: {error}"
            raise PyJWKClientConnectionError(msg) from error

    def _refresh(self) -> None:
        from jwt.exceptions import PyJWKClientConnectionError

        metadata = self._get_json(self._metadata_url)
        jwks_uri = metadata.get("jwks_uri") if isinstance(metadata, dict) else None
        if not isinstance(jwks_uri, str):
            msg = "the OpenID metadata names no jwks_uri"
            raise PyJWKClientConnectionError(msg)
        jwks = self._get_json(jwks_uri)
        keys = jwks.get("keys") if isinstance(jwks, dict) else None
        if not isinstance(keys, list):
            msg = "the JWKS document has no keys"
            raise PyJWKClientConnectionError(msg)
        self._keys = {str(k["kid"]): k for k in keys if isinstance(k, dict) and "kid" in k}
        self._fetched_at = time.monotonic()

    def _key(self, kid: str) -> dict[str, Any] | None:
        with self._lock:
            now = time.monotonic()
            age = None if self._fetched_at is None else now - self._fetched_at
            if age is None or age > self._lifespan or (kid not in self._keys and age > self._cooldown):
                self._refresh()
            return self._keys.get(kid)

    async def get_signing_key(self, jwks_uri: str, header: dict[str, Any]) -> Any:
        """The key for a token's `kid`; called by the SDK's validator with the JWKS URL it derived from the issuer."""
        from jwt import PyJWK
        from jwt.exceptions import PyJWKClientError
        from microsoft_agents.hosting.core.authorization import AuthenticationConstants

        if jwks_uri != AuthenticationConstants.PUBLIC_ABS_JWKS_URL:
            msg = "only Bot Framework signing keys are trusted"
            raise PyJWKClientError(msg)
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            msg = "the token names no signing key"
            raise PyJWKClientError(msg)
        jwk = await asyncio.to_thread(self._key, kid)
        if jwk is None:
            msg = "the token's signing key is not published by the Bot Framework"
            raise PyJWKClientError(msg)
        endorsements = jwk.get("endorsements")
        if not isinstance(endorsements, list) or self._channel not in endorsements:
            msg = f"the signing key does not endorse the {self._channel} channel"
            raise PyJWKClientError(msg)
        return PyJWK(jwk, algorithm="RS256")


def _same_service_url(claimed: object, actual: object) -> bool:
    if not isinstance(claimed, str) or not isinstance(actual, str) or not claimed or not actual:
        return False
    return claimed.rstrip("/").lower() == actual.rstrip("/").lower()


class BotAuthenticator:
    """The SDK's `JwtTokenValidator` configured for this bot, plus the checks it leaves to the host."""

    def __init__(self, app_id: str, keys: BotFrameworkKeys) -> None:
        from microsoft_agents.hosting.core import AgentAuthConfiguration, JwtTokenValidator

        if not app_id:
            # An empty app id would make the SDK skip authentication; never allowed here.
            msg = "REPLAY_BOT_APP_ID is required to authenticate Bot Framework calls"
            raise InputError(msg)
        config = AgentAuthConfiguration(
            client_id=app_id, issuers=[BOTFRAMEWORK_ISSUER], validate_issuer=True, anonymous_allowed=False
        )
        self._validator = JwtTokenValidator(config)
        # The one seam: the validator's key source, so the metadata URL is ours to set (see BotFrameworkKeys).
        self._validator._jwk_client_manager = keys  # type: ignore[assignment]

    async def authenticate(self, authorization: str | None) -> ClaimsIdentity:
        """The caller's verified claims, or `BotAuthError` (signature, issuer, audience, a lifetime with 5 min skew)."""
        from jwt.exceptions import PyJWTError

        parts = (authorization or "").split()
        if len(parts) != 2 or parts[0].lower() != "bearer":
            msg = "no bearer token"
            raise BotAuthError(msg)
        try:
            identity = await self._validator.validate_token(parts[1])
        except (PyJWTError, ValueError) as error:
            msg = f"token refused ({type(error).__name__}: {error})"
            raise BotAuthError(msg) from error
        if identity.get_claim_value("iss") != BOTFRAMEWORK_ISSUER:
            msg = "token not issued by the Bot Framework"
            raise BotAuthError(msg)
        expiry = identity.get_claim_value("exp")
        if isinstance(expiry, bool) or not isinstance(expiry, int | float):
            # PyJWT checks `exp` only when the token has one: a token without it would never expire.
            msg = "token carries no expiry (exp)"
            raise BotAuthError(msg)
        return identity

    @staticmethod
    def check_activity(identity: ClaimsIdentity, activity: Activity) -> None:
        """The activity must come through Teams, from the service URL the token was issued for."""
        if not _same_service_url(identity.get_claim_value("serviceurl"), activity.service_url):
            msg = "the activity's serviceUrl is not the one the token was issued for"
            raise BotAuthError(msg)
        if str(activity.channel_id or "") != TEAMS_CHANNEL:
            msg = "the activity did not come through Teams"
            raise BotAuthError(msg)
