"""
The approval bot's Teams side, on the Microsoft 365 Agents SDK: clicks in, cards out.

Inbound (`ApprovalBot.handle`, behind POST /api/messages): every request is authenticated as the Bot
Framework's before anything is read from it (JWT signed with a key from the Bot Framework's OpenID
metadata that endorses Teams, issuer https://api.botframework.com, audience the bot's app id, 5 min
clock skew, `serviceurl` claim equal to the activity's). A click (invoke `adaptiveCard/action` from
Action.Execute, or a message with a `value` from the Action.Submit fallback) is checked for shape;
then the facts are gathered (the request and any decision from the orchestration's custom status,
the clicker's approver-group membership from the directory, within a time budget) and
`playbooks.domain.authorization.authorise` says whether this person may decide. An authorised click becomes
one `ApprovalDecision` event for the waiting orchestration; the answer is a short card saying what
happened. Containment runs in the orchestration, which refreshes the card for everyone
(`update_card`), so Teams gets its answer within its few seconds.

Outbound (`post_card`, `update_card`): the SDK's connector client with the bot's own credentials
(its user-assigned managed identity in Azure). The connector client does not retry, so tenacity
does, here and only here (429 with Retry-After, 5xx, timeouts).

The contract with the orchestration lives here too, as pure functions: what it publishes as custom
status while it waits (`pending_approval`, `decided_approval`, `expired_approval`) and the event
payload (`decision_payload`, `decision_from_payload`). The SDK is imported only when a request is
handled or a card sent, so importing this module stays cheap and connects nowhere.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from common.errors import InputError, TransientUpstreamError, UpstreamError
from common.logs import get_logger
from common.settings import Settings
from enrichment.domain.model import Account
from playbooks.domain.authorization import (
    AlreadyDecided,
    ApprovalRequest,
    Attempt,
    Authorised,
    Expired,
    Refused,
    audit_line,
    authorise,
)
from playbooks.domain.plan import Decision
from playbooks.render.card import (
    APPROVE,
    ActionData,
    Card,
    already_decided_card,
    expired_card,
    is_approval_data,
    parse_action_data,
    recorded_card,
    refused_card,
    stale_card,
)

if TYPE_CHECKING:
    from microsoft_agents.activity import Activity, TurnContextProtocol
    from microsoft_agents.hosting.core import AccessTokenProviderBase, ClaimsIdentity

    from playbooks.adapters.graph import Reply

SERVICE = "Teams"
DURABLE = "Durable Functions"

#: The event the orchestration waits for (`context.wait_for_external_event(APPROVAL_EVENT)`).
APPROVAL_EVENT = "ApprovalDecision"
#: The event that tells the orchestration about a refused click, so the incident records it.
ATTEMPT_EVENT = "ApprovalAttempt"
#: The key of the orchestration's custom status that holds the approval state the bot reads.
APPROVAL_STATUS_KEY = "approval"

#: Where the Bot Framework publishes its signing keys (its `jwks_uri`).
BOTFRAMEWORK_OPENID_METADATA = "https://login.botframework.com/v1/.well-known/openidconfiguration"
#: The only issuer accepted on inbound calls.
BOTFRAMEWORK_ISSUER = "https://api.botframework.com"
#: The token audience of the Bot Connector service for outbound calls.
BOTFRAMEWORK_AUDIENCE = "https://api.botframework.com"
TEAMS_CHANNEL = "msteams"
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


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------------------------------
# The contract with the orchestration (pure)


def decision_payload(decision: Decision, decided_by_name: str = "") -> dict[str, Any]:
    """The `ApprovalDecision` event data: the `Decision` fields plus the decider's display name for the card."""
    return {
        "approved": decision.approved,
        "plan_digest": decision.plan_digest,
        "decided_by_object_id": decision.decided_by_object_id,
        "decided_by_upn": decision.decided_by_upn,
        "decided_by_name": decided_by_name,
        "decided_at": _iso(decision.decided_at),
    }


def _json_object(payload: object, what: str) -> Mapping[str, Any]:
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except json.JSONDecodeError as error:
            msg = f"{what} is not JSON: {error.msg}"
            raise InputError(msg) from error
    if not isinstance(payload, Mapping):
        msg = f"{what} is not an object"
        raise InputError(msg)
    return payload


def _aware_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def decision_from_payload(payload: object) -> tuple[Decision, str]:
    """
    The decision and the decider's display name from event data, or `InputError` naming the bad fields.

    Accepts the object or its JSON text: the Durable client JSON-encodes event data before posting
    it, so what the orchestrator receives depends on the host's decoding.
    """
    data = _json_object(payload, "approval decision")
    texts = ("plan_digest", "decided_by_object_id", "decided_by_upn", "decided_by_name")
    bad = [] if isinstance(data.get("approved"), bool) else ["approved"]
    bad += [key for key in texts if not isinstance(data.get(key, ""), str) or (key != "decided_by_name" and key not in data)]
    decided_at = _aware_time(data.get("decided_at"))
    if decided_at is None:
        bad.append("decided_at")
    if bad or decided_at is None:
        msg = f"approval decision has bad or missing fields: {', '.join(bad)}"
        raise InputError(msg)
    decision = Decision(
        approved=bool(data["approved"]),
        plan_digest=str(data["plan_digest"]),
        decided_by_object_id=str(data["decided_by_object_id"]),
        decided_by_upn=str(data["decided_by_upn"]),
        decided_at=decided_at,
    )
    return decision, str(data.get("decided_by_name", ""))


@dataclass(frozen=True, slots=True)
class RefusedAttempt:
    """A click that was refused, as the orchestration records it on the incident (UPN resolved there)."""

    person_object_id: str
    person_name: str
    approve: bool
    at: datetime
    reason: str


def attempt_payload(attempt: RefusedAttempt) -> dict[str, Any]:
    """The `ApprovalAttempt` event data."""
    return {
        "person_object_id": attempt.person_object_id,
        "person_name": attempt.person_name,
        "approve": attempt.approve,
        "at": _iso(attempt.at),
        "reason": attempt.reason,
    }


def attempt_from_payload(payload: object) -> RefusedAttempt:
    """The refused attempt from event data, or `InputError` naming the bad fields."""
    data = _json_object(payload, "refused attempt")
    texts = ("person_object_id", "person_name", "reason")
    bad = [key for key in texts if not isinstance(data.get(key), str)]
    bad += [] if isinstance(data.get("approve"), bool) else ["approve"]
    at = _aware_time(data.get("at"))
    if at is None:
        bad.append("at")
    if bad or at is None:
        msg = f"refused attempt has bad or missing fields: {', '.join(bad)}"
        raise InputError(msg)
    return RefusedAttempt(str(data["person_object_id"]), str(data["person_name"]), bool(data["approve"]), at, str(data["reason"]))


class ApprovalPhase(StrEnum):
    """Where one orchestration stands on its approval, as the bot sees it."""

    PENDING = "pending"
    DECIDED = "decided"
    EXPIRED = "expired"
    CLOSED = "closed"  # no such instance, it never waited, or it finished without a decision


@dataclass(frozen=True, slots=True)
class ApprovalState:
    """
    The approval as the orchestration published it: the request it waits on (never taken from a
    click), the decision once made, or why it is closed.
    """

    phase: ApprovalPhase
    request: ApprovalRequest | None = None
    decision: Decision | None = None
    decided_by_name: str = ""
    detail: str = ""


def _request_fields(request: ApprovalRequest) -> dict[str, Any]:
    return {
        "incident_id": request.incident_id,
        "target_upn": request.target.upn,
        "target_object_id": request.target.object_id,
        "plan_digest": request.plan_digest,
        "created_at": _iso(request.created_at),
    }


def pending_approval(request: ApprovalRequest) -> dict[str, Any]:
    """
    The approval status the orchestration publishes before it posts the card and waits.

    It goes under `APPROVAL_STATUS_KEY` of the custom status:
    `context.set_custom_status({APPROVAL_STATUS_KEY: pending_approval(request), ...})`.
    """
    return {"phase": ApprovalPhase.PENDING.value, **_request_fields(request)}


def decided_approval(request: ApprovalRequest, decision: Decision, decided_by_name: str = "") -> dict[str, Any]:
    """The approval status once the event arrived, so later clicks anywhere are told who decided."""
    return {
        "phase": ApprovalPhase.DECIDED.value,
        **_request_fields(request),
        "decision": decision_payload(decision, decided_by_name),
    }


def expired_approval(request: ApprovalRequest) -> dict[str, Any]:
    """The approval status once the approval timer fired first."""
    return {"phase": ApprovalPhase.EXPIRED.value, **_request_fields(request)}


def _request_from(status: Mapping[str, Any]) -> ApprovalRequest | None:
    texts = [status.get(k) for k in ("incident_id", "target_upn", "target_object_id", "plan_digest")]
    created_at = _aware_time(status.get("created_at"))
    if created_at is None or not all(isinstance(t, str) for t in texts):
        return None
    incident_id, upn, object_id, digest = (str(t) for t in texts)
    return ApprovalRequest(incident_id, Account(upn, object_id), digest, created_at)


_WAITING = frozenset({"Running", "Pending"})


def approval_state(runtime_status: str | None, custom_status: object) -> ApprovalState:
    """Read an orchestration's runtime status and custom status into an `ApprovalState`."""
    if runtime_status is None:
        return ApprovalState(ApprovalPhase.CLOSED, detail="no containment request with this id is known")
    try:
        custom = _json_object(custom_status, "custom status")
    except InputError:
        custom = {}
    approval = custom.get(APPROVAL_STATUS_KEY)
    phase = approval.get("phase") if isinstance(approval, Mapping) else None
    request = _request_from(approval) if isinstance(approval, Mapping) else None
    if phase is None or request is None:
        detail = (
            "the request is not waiting for a decision"
            if runtime_status in _WAITING
            else f"the request is {runtime_status.lower()}"
        )
        return ApprovalState(ApprovalPhase.CLOSED, detail=detail)
    if phase == ApprovalPhase.DECIDED.value and isinstance(approval, Mapping):
        try:
            decision, name = decision_from_payload(approval.get("decision"))
        except InputError:
            return ApprovalState(ApprovalPhase.CLOSED, request, detail="the request's recorded decision is unreadable")
        return ApprovalState(ApprovalPhase.DECIDED, request, decision, name)
    if phase == ApprovalPhase.EXPIRED.value:
        return ApprovalState(ApprovalPhase.EXPIRED, request)
    if phase == ApprovalPhase.PENDING.value and runtime_status in _WAITING:
        return ApprovalState(ApprovalPhase.PENDING, request)
    return ApprovalState(ApprovalPhase.CLOSED, request, detail=f"the request is {runtime_status.lower()}")


# --------------------------------------------------------------------------------------------------
# Ports


class Orchestrations(Protocol):
    """The two things the bot needs from Durable Functions; `DurableOrchestrations` is the real one."""

    async def approval_state(self, instance_id: str) -> ApprovalState: ...

    async def raise_decision(self, instance_id: str, payload: Mapping[str, Any]) -> None: ...

    async def raise_attempt(self, instance_id: str, payload: Mapping[str, Any]) -> None: ...


class DurableOrchestrations:
    """`Orchestrations` over the Durable Functions client binding of the HTTP function."""

    def __init__(self, client: Any) -> None:
        self._client = client

    async def approval_state(self, instance_id: str) -> ApprovalState:
        try:
            status = await self._client.get_status(instance_id)
        except Exception as error:  # the durable client raises bare Exception for unexpected statuses
            msg = f"cannot read the status of {instance_id}: {error}"
            raise TransientUpstreamError(DURABLE, msg) from error
        runtime = getattr(status, "runtime_status", None) if status else None
        custom = getattr(status, "custom_status", None) if status else None
        return approval_state(None if runtime is None else str(getattr(runtime, "value", runtime)), custom)

    async def raise_decision(self, instance_id: str, payload: Mapping[str, Any]) -> None:
        await self._raise(instance_id, APPROVAL_EVENT, payload)

    async def raise_attempt(self, instance_id: str, payload: Mapping[str, Any]) -> None:
        await self._raise(instance_id, ATTEMPT_EVENT, payload)

    async def _raise(self, instance_id: str, event: str, payload: Mapping[str, Any]) -> None:
        import aiohttp

        try:
            await self._client.raise_event(instance_id, event, dict(payload))
        except (aiohttp.ClientError, TimeoutError) as error:  # the host did not answer: worth a retry
            msg = f"cannot reach the Durable host to deliver the decision to {instance_id}: {error}"
            raise TransientUpstreamError(DURABLE, msg) from error
        except Exception as error:  # 404 / 410 arrive as bare Exception with the host's words
            msg = f"cannot deliver the decision to {instance_id}: {error}"
            raise UpstreamError(DURABLE, msg, hint="the request may have finished or been purged") from error


class ApproverDirectory(Protocol):
    """What the bot asks the directory about a clicker; `playbooks.adapters.graph.GraphDirectory` is the real one."""

    async def is_member_of(self, group_id: str, user_id: str) -> Reply[bool]: ...


# --------------------------------------------------------------------------------------------------
# Inbound authentication


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
        """The caller's verified claims, or `BotAuthError` (signature, issuer, audience, lifetime with 5 min skew)."""
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


# --------------------------------------------------------------------------------------------------
# The bot


@dataclass(frozen=True, slots=True)
class BotResponse:
    """What POST /api/messages answers: a status and, for invokes, a JSON body."""

    status: int
    body: dict[str, Any] | None = None


def _error_body(status: int, code: str, message: str) -> dict[str, Any]:
    """An Universal Actions error answer (shown by Teams as an error on the card)."""
    return {"statusCode": status, "type": "application/vnd.microsoft.error", "value": {"code": code, "message": message}}


def _card_body(card: Card) -> dict[str, Any]:
    return {"statusCode": 200, "type": ADAPTIVE_CARD, "value": card}


@dataclass(frozen=True, slots=True)
class _Clicker:
    object_id: str
    name: str


@dataclass(slots=True)
class _Recorded:
    decision: Decision
    name: str


@dataclass(frozen=True, slots=True)
class _ClickOutcome:
    """The answer to a click: a card, or an error for Teams to show (bad data, failure to record)."""

    card: Card | None = None
    error: dict[str, Any] | None = None


_RECENT_DECISIONS = 1000


@functools.cache
def _managed_identity(client_id: str, tenant_id: str) -> AccessTokenProviderBase:
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


def _client_factory(token_provider: AccessTokenProviderBase, app_id: str, tenant_id: str) -> Any:
    """The SDK's connector-client factory over one credential."""
    from microsoft_agents.hosting.core import AgentAuthConfiguration, ConnectionManager, RestChannelServiceClientFactory
    from microsoft_agents.hosting.core.authorization import AuthTypes

    config = AgentAuthConfiguration(auth_type=AuthTypes.user_managed_identity, client_id=app_id, tenant_id=tenant_id or None)
    connections = ConnectionManager(lambda _config: token_provider, {"SERVICE_CONNECTION": config})
    return RestChannelServiceClientFactory(connections)


class ApprovalBot:
    """
    The approval bot: authenticates a POST /api/messages and turns an approval click into one event.

    Who may decide is `playbooks.domain.authorization.authorise`, fed with facts gathered here: the click
    (activity), the request and any recorded decision (the orchestration's custom status), and the
    clicker's approver-group membership (`directory`, within `lookup_budget` seconds so Teams gets
    its answer in time; an unanswered membership is a refusal). `token_provider` is the bot's
    credential for the replies the SDK sends (its managed identity by default); `clock` gives the time
    of a click. Decisions are remembered per orchestration, so a second click, or Teams retrying a slow
    invoke, is answered without a second event; across instances of the app the custom status says
    the same, and the orchestration takes only the first event anyway.
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
        self._directory = directory
        self._authenticator = BotAuthenticator(settings.bot_app_id, keys or BotFrameworkKeys())
        self._token_provider = token_provider
        self._clock = clock
        self._lookup_budget = lookup_budget
        self._recorded: OrderedDict[str, _Recorded] = OrderedDict()
        self._lock: asyncio.Lock | None = None
        self._adapter: Any = None

    def _sdk_adapter(self) -> Any:
        if self._adapter is None:
            from microsoft_agents.hosting.core import ChannelServiceAdapter

            provider = self._token_provider or _managed_identity(self._settings.bot_app_id, self._settings.tenant_id)
            self._adapter = ChannelServiceAdapter(_client_factory(provider, self._settings.bot_app_id, self._settings.tenant_id))
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

    async def click(self, activity: Activity, verb: str, raw: Mapping[str, Any], orchestrations: Orchestrations) -> _ClickOutcome:
        """Validate one click, gather the facts, apply `authorise`, raise the event at most once, say what happened."""
        try:
            data_verb, data = parse_action_data(raw)
        except InputError as error:
            _log.warning("bot.bad_click", error=str(error))
            return _ClickOutcome(error=_error_body(400, "BadRequest", str(error)))
        if verb and verb != data_verb:
            return _ClickOutcome(error=_error_body(400, "BadRequest", "the action's verb and its data disagree"))
        clicker = activity.from_property
        clicker_id = (clicker.aad_object_id or "").strip().lower() if clicker else ""
        clicker_name = (clicker.name or "") if clicker else ""
        tenant = _mapping(activity.channel_data).get("tenant")
        tenant_id = str(_mapping(tenant).get("id", "")).lower()
        if not self._settings.tenant_id or tenant_id != self._settings.tenant_id:
            return _ClickOutcome(refused_card(data, clicker_name, "the click came from another tenant"))
        conversation = activity.conversation.id if activity.conversation else ""
        if self._settings.teams_channel_id and not conversation.startswith(self._settings.teams_channel_id):
            return _ClickOutcome(stale_card(data, "the card was not posted by this playbook in its channel"))

        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            return await self._decide(data_verb == APPROVE, data, _Clicker(clicker_id, clicker_name), orchestrations)

    async def _in_approver_group(self, clicker_id: str) -> bool | None:
        """
        Whether the clicker is in the approver group: None when not asked (no group, or allow-listed)
        or not answered within the budget, which `authorise` treats as a refusal.

        Only membership is asked (one small Graph call): reading the user's UPN as well costs seconds
        on a cold worker (msgraph loads its whole model on the first User it parses), which Teams'
        few seconds cannot afford; cards name the decider by their Teams display name instead.
        """
        group = self._settings.approver_group_id
        if not group or clicker_id in self._settings.approver_object_ids:
            return None
        try:
            async with asyncio.timeout(self._lookup_budget):
                return (await self._directory.is_member_of(group, clicker_id)).value
        except TimeoutError:
            _log.warning("bot.directory_slow", clicker=clicker_id, budget=self._lookup_budget)
        except UpstreamError as error:
            _log.warning("bot.directory_failed", clicker=clicker_id, error=str(error))
        return None

    async def _decide(self, approved: bool, data: ActionData, clicker: _Clicker, orchestrations: Orchestrations) -> _ClickOutcome:
        log = _log.bind(instance_id=data.instance_id, incident_id=data.incident_id, clicker=clicker.object_id)
        recorded = self._recorded.get(data.instance_id)
        if recorded is not None:
            repeat = recorded.decision.decided_by_object_id == clicker.object_id and recorded.decision.approved == approved
            log.info("bot.click_after_decision", repeat=repeat)
            if repeat:  # Teams retrying a slow invoke, or a double click: the same answer again
                return _ClickOutcome(recorded_card(data, recorded.decision, name=recorded.name))
            return _ClickOutcome(already_decided_card(data, recorded.decision, name=recorded.name))
        try:
            state = await orchestrations.approval_state(data.instance_id)
        except UpstreamError as error:
            log.error("bot.state_unavailable", error=str(error))
            return _ClickOutcome(
                error=_error_body(503, "ServiceUnavailable", "the request's state cannot be read now; try again")
            )
        if state.request is None or state.phase is ApprovalPhase.CLOSED:
            return _ClickOutcome(stale_card(data, state.detail or "the request is closed"))
        if state.phase is ApprovalPhase.EXPIRED:
            return _ClickOutcome(expired_card(data, expired_at=state.request.expires_at(self._settings)))

        in_group = None if state.phase is ApprovalPhase.DECIDED else await self._in_approver_group(clicker.object_id)
        now = self._clock()
        attempt = Attempt(
            incident_id=data.incident_id,
            target_object_id=data.user_object_id,
            plan_digest=data.plan_digest,
            approve=approved,
            person_object_id=clicker.object_id,
            person_upn="",
            at=now,
            in_approver_group=in_group,
            target_upn=data.user_upn,
        )
        outcome = authorise(state.request, attempt, decided=state.decision, settings=self._settings, now=now)
        log.info("approval.audit", line=audit_line(state.request, attempt, outcome), outcome=type(outcome).__name__)
        match outcome:
            case AlreadyDecided(decision):
                return _ClickOutcome(already_decided_card(data, decision, name=state.decided_by_name))
            case Expired(expired_at):
                return _ClickOutcome(expired_card(data, expired_at=expired_at))
            case Refused(reason):
                await self._report_refusal(
                    data.instance_id, RefusedAttempt(clicker.object_id, clicker.name, approved, now, reason), orchestrations
                )
                return _ClickOutcome(refused_card(data, clicker.name, reason))
            case Authorised(decision):
                return await self._record(data, decision, clicker, orchestrations)
        msg = f"unexpected authorisation outcome {outcome!r}"
        raise AssertionError(msg)

    async def _report_refusal(self, instance_id: str, attempt: RefusedAttempt, orchestrations: Orchestrations) -> None:
        """
        Hand a refused click to the waiting orchestration, which writes it on the incident.

        The clicker's answer does not depend on it, so a failure to deliver is logged (with the
        audit facts, so the log still holds the attempt) rather than turned into an error for them.
        """
        try:
            await orchestrations.raise_attempt(instance_id, attempt_payload(attempt))
        except UpstreamError as error:
            _log.warning(
                "bot.refusal_not_delivered",
                instance_id=instance_id,
                clicker=attempt.person_object_id,
                at=_iso(attempt.at),
                reason=attempt.reason,
                error=str(error),
            )

    async def _record(
        self, data: ActionData, decision: Decision, clicker: _Clicker, orchestrations: Orchestrations
    ) -> _ClickOutcome:
        """Hand the decision to the orchestration, remember it, and answer the clicker."""
        log = _log.bind(instance_id=data.instance_id, incident_id=data.incident_id, clicker=clicker.object_id)
        try:
            await orchestrations.raise_decision(data.instance_id, decision_payload(decision, clicker.name))
        except TransientUpstreamError as error:
            log.error("bot.decision_not_delivered", error=str(error))
            return _ClickOutcome(error=_error_body(503, "ServiceUnavailable", "the decision could not be recorded; try again"))
        except UpstreamError as error:
            log.warning("bot.decision_not_delivered", error=str(error))
            return _ClickOutcome(stale_card(data, "the request is no longer waiting for a decision"))
        self._recorded[data.instance_id] = _Recorded(decision, clicker.name)
        while len(self._recorded) > _RECENT_DECISIONS:
            self._recorded.popitem(last=False)
        log.info("bot.decision_recorded", approved=decision.approved)
        return _ClickOutcome(recorded_card(data, decision, name=clicker.name))


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


@functools.cache
def _handler_class() -> type[Any]:
    """The SDK activity handler for approval clicks, defined on first use so the SDK loads lazily."""
    from microsoft_agents.activity import Activity, Attachment, InvokeResponse
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
                return InvokeResponse(status=200, body=_error_body(400, "BadRequest", "not an approval card action"))
            verb = action.get("verb")
            outcome = await self._bot.click(activity, verb if isinstance(verb, str) else "", data, self._orchestrations)
            body = outcome.error if outcome.card is None else _card_body(outcome.card)
            return InvokeResponse(status=200, body=body)

        async def on_message_activity(self, turn_context: TurnContextProtocol[Any]) -> None:
            # The Action.Submit fallback of older clients: a message whose value is the button's data.
            value = turn_context.activity.value
            if not isinstance(value, Mapping) or not is_approval_data(value):
                return
            outcome = await self._bot.click(turn_context.activity, "", value, self._orchestrations)
            if outcome.card is not None:
                attachment = Attachment(content_type=ADAPTIVE_CARD, content=outcome.card)
                await turn_context.send_activity(Activity(type="message", attachments=[attachment]))
            elif outcome.error is not None:
                await turn_context.send_activity(Activity(type="message", text=str(outcome.error["value"]["message"])))

    return ApprovalHandler


# --------------------------------------------------------------------------------------------------
# Outbound: post and update the card


@dataclass(frozen=True, slots=True)
class MessageReference:
    """Where a posted card lives, enough to update it later; `to_dict` is what the orchestration stores."""

    service_url: str
    conversation_id: str
    activity_id: str
    bot_app_id: str
    tenant_id: str

    def to_dict(self) -> dict[str, str]:
        return {
            "service_url": self.service_url,
            "conversation_id": self.conversation_id,
            "activity_id": self.activity_id,
            "bot_app_id": self.bot_app_id,
            "tenant_id": self.tenant_id,
        }

    @classmethod
    def from_dict(cls, value: object) -> MessageReference:
        fields_ = ("service_url", "conversation_id", "activity_id", "bot_app_id", "tenant_id")
        if not isinstance(value, Mapping) or any(not isinstance(value.get(f), str) for f in fields_):
            msg = f"not a message reference (needs string fields {', '.join(fields_)})"
            raise InputError(msg)
        return cls(*(str(value[f]) for f in fields_))


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

    provider = token_provider or _managed_identity(app_id, tenant_id)
    identity = ClaimsIdentity({"aud": app_id, "appid": app_id})
    factory = _client_factory(provider, app_id, tenant_id)
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


class Teams:
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
