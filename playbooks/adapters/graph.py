"""
Microsoft Graph adapter: the directory reads and writes containment and approval need, via msgraph-sdk.

`GraphDirectory` speaks in the product's values (DirectoryUser, AuthMethod, DirectoryRole,
Reply) and one error type (GraphError), so nothing outside this module touches msgraph models or
kiota. Every call returns or raises with Graph's `request-id`, which is what Microsoft support
asks for and what `ActionResult.request_id` records.

Retries: msgraph-sdk's kiota RetryHandler already retries 429/503/504 (POST included) and honours
Retry-After. It is the only retry owner: nothing here retries again. What is still failing after
it surfaces as `TransientGraphError`, which the orchestrator may retry as a whole activity.

Importing this module is cheap: msgraph, kiota, httpx and azure.identity are imported inside the
factory and the methods, so the CLI and the pure core can import the value types freely.
"""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import urlparse

from common.errors import TransientUpstreamError, UpstreamError
from common.identifiers import is_guid
from common.settings import Settings
from enrichment.domain.identity import Answer, Facet, IdentityContext, RiskDetection
from playbooks.domain.directory import DELETABLE_METHOD_KINDS, AuthMethod, MessageRule, RegisteredDevice
from playbooks.domain.permissions import (
    DirectoryRole,
    Feature,
    missing_permission_hint,
    permissions_for,
    protected_roles,
)

__all__ = [
    "AuthMethod",
    "DirectoryUser",
    "GraphDirectory",
    "GraphError",
    "Reply",
    "TransientGraphError",
    "create_graph_directory",
]

if TYPE_CHECKING:
    import ssl

    import httpx
    from azure.core.credentials_async import AsyncTokenCredential

T = TypeVar("T")

SERVICE = "Microsoft Graph"
#: The only scope ever requested: without it the SDK derives the scope from the request host.
GRAPH_SCOPE = "https://graph.microsoft.com/.default"

_TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})

#: The request-ids of the responses seen by the call running in this task (see `_capture`).
_REQUEST_IDS: ContextVar[list[str] | None] = ContextVar("graph_request_ids", default=None)


@dataclass(frozen=True, slots=True)
class Reply(Generic[T]):
    """A successful call's value with Graph's request-id (empty when Graph sent none)."""

    value: T
    request_id: str


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    """The target as the directory knows it; `account_enabled` is None when Graph did not say."""

    object_id: str
    upn: str
    account_enabled: bool | None
    user_type: str = ""

    @property
    def external(self) -> bool:
        """Guests sign in at their home tenant, where revoking here has no effect."""
        return self.user_type.lower() == "guest" or "#ext#" in self.upn.lower()


#: The SDK request-builder attribute and item selector of each deletable authentication method kind.
_DELETABLE: dict[str, tuple[str, str]] = {
    "email": ("email_methods", "by_email_authentication_method_id"),
    "external": ("external_authentication_methods", "by_external_authentication_method_id"),
    "fido2": ("fido2_methods", "by_fido2_authentication_method_id"),
    "microsoftAuthenticator": ("microsoft_authenticator_methods", "by_microsoft_authenticator_authentication_method_id"),
    "phone": ("phone_methods", "by_phone_authentication_method_id"),
    "platformCredential": ("platform_credential_methods", "by_platform_credential_authentication_method_id"),
    "softwareOath": ("software_oath_methods", "by_software_oath_authentication_method_id"),
    "temporaryAccessPass": ("temporary_access_pass_methods", "by_temporary_access_pass_authentication_method_id"),
    "windowsHelloForBusiness": (
        "windows_hello_for_business_methods",
        "by_windows_hello_for_business_authentication_method_id",
    ),
}
assert set(_DELETABLE) == DELETABLE_METHOD_KINDS, "the domain's deletable kinds and the SDK's builders disagree"

#: How many recent risk detections the identity context keeps (newest first).
RISK_DETECTIONS_KEPT = 10
#: The device fields the device audit reads.
_DEVICE_FIELDS = ["id", "deviceId", "displayName", "operatingSystem", "registrationDateTime", "accountEnabled", "trustType"]


class GraphError(UpstreamError):
    """
    A Graph call failed after the SDK's own retries.

    `code` and `message` are Graph's error payload, `request_id` the response header (or the one in
    the payload), `missing_permissions` what a 403 on this operation most likely lacks.
    """

    def __init__(
        self,
        operation: str,
        message: str,
        *,
        status: int | None = None,
        code: str = "",
        request_id: str = "",
        hint: str = "",
        missing_permissions: tuple[str, ...] = (),
    ) -> None:
        self.operation = operation
        self.code = code
        self.graph_message = message
        self.request_id = request_id
        self.missing_permissions = missing_permissions
        detail = f"{operation}: {code + ': ' if code else ''}{message}"
        if request_id:
            detail += f" [request-id {request_id}]"
        super().__init__(SERVICE, detail, status=status, hint=hint)

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def forbidden(self) -> bool:
        return self.status == 403


class TransientGraphError(GraphError, TransientUpstreamError):
    """Throttling, 5xx or a network failure that outlived the SDK's retries: worth retrying the activity later."""


def _kind(odata_type: str | None) -> str:
    name = (odata_type or "").removeprefix("#").removeprefix("microsoft.graph.")
    return name.removesuffix("AuthenticationMethod") or "unknown"


def _label(method: Any) -> str:
    """The human-readable identity of a method, whichever property its kind has."""
    for attribute in ("display_name", "phone_number", "email_address", "model", "device_tag"):
        value = getattr(method, attribute, None)
        if isinstance(value, str) and value:
            return value
    return ""


def _role(assignment: Any) -> DirectoryRole:
    definition = getattr(assignment, "role_definition", None)
    template = getattr(definition, "template_id", None) or getattr(assignment, "role_definition_id", None) or ""
    name = getattr(definition, "display_name", None) or ""
    return DirectoryRole(str(template).lower(), str(name))


def _enum(value: Any) -> str:
    """An SDK enum's wire value ("high", "atRisk"), or the text Graph sent."""
    return str(getattr(value, "value", value) or "")


def _device(item: Any) -> RegisteredDevice:
    return RegisteredDevice(
        id=str(getattr(item, "id", None) or "").lower(),
        name=str(getattr(item, "display_name", None) or ""),
        device_id=str(getattr(item, "device_id", None) or ""),
        operating_system=str(getattr(item, "operating_system", None) or ""),
        registered_at=getattr(item, "registration_date_time", None),
        enabled=getattr(item, "account_enabled", None),
        trust_type=str(getattr(item, "trust_type", None) or ""),
    )


def _message_rule(item: Any) -> MessageRule:
    """A rule with what it does in words: moves, deletes, forwards (to whom), marks read."""
    actions = getattr(item, "actions", None)
    said: list[str] = []
    if actions is not None:
        if getattr(actions, "delete", None) or getattr(actions, "permanent_delete", None):
            said.append("deletes")
        if getattr(actions, "move_to_folder", None):
            said.append("moves to another folder")
        for attribute in ("forward_to", "forward_as_attachment_to", "redirect_to"):
            for recipient in getattr(actions, attribute, None) or ():
                address = getattr(getattr(recipient, "email_address", None), "address", None) or ""
                said.append(f"{attribute.replace('_', ' ')} {address}".strip())
        if getattr(actions, "mark_as_read", None):
            said.append("marks as read")
    enabled = getattr(item, "is_enabled", None)
    return MessageRule(
        id=str(getattr(item, "id", None) or ""),
        name=str(getattr(item, "display_name", None) or ""),
        enabled=enabled is not False,
        actions=tuple(said),
    )


def _detection(item: Any) -> RiskDetection:
    detected = getattr(item, "detected_date_time", None) or getattr(item, "activity_date_time", None)
    return RiskDetection(
        kind=str(getattr(item, "risk_event_type", None) or ""),
        level=_enum(getattr(item, "risk_level", None)),
        detected_at=detected if isinstance(detected, datetime) else datetime.min.replace(tzinfo=UTC),
        ip=str(getattr(item, "ip_address", None) or ""),
        state=_enum(getattr(item, "risk_state", None)),
    )


def _problem(error: GraphError | ValueError) -> str:
    """A facet's problem for the card: what failed, and the fix when a permission is missing."""
    if isinstance(error, GraphError) and error.hint:
        return f"{error}. Fix: {error.hint}"
    return str(error)


def _checked_id(user_id: str, *, guid: bool = False) -> str:
    """
    Refuse ids that could change the request's path or filter.

    Path ids are object ids or UPNs (an apostrophe is legal in a UPN and harmless in a path);
    anything pasted into a $filter must be a GUID (`guid=True`).
    """
    value = user_id.strip()
    if guid and not is_guid(value):
        msg = f"not an Entra object id: {user_id!r}"
        raise ValueError(msg)
    if not value or any(c in value for c in "/?#%\\ \t\r\n"):
        msg = f"not a user id or UPN: {user_id!r}"
        raise ValueError(msg)
    return value


async def _remember_request_id(response: httpx.Response) -> None:
    """httpx response hook: note Graph's request-id for the call running in this task."""
    ids = _REQUEST_IDS.get()
    if ids is not None:
        ids.append(response.headers.get("request-id", ""))


@contextmanager
def _capture() -> Iterator[list[str]]:
    """
    Collect the request-ids of the responses one call receives.

    The hook runs inside the awaiting task, after kiota's retries, so the last id is the final
    response's; a ContextVar keeps concurrent calls apart.
    """
    ids: list[str] = []
    token = _REQUEST_IDS.set(ids)
    try:
        yield ids
    finally:
        _REQUEST_IDS.reset(token)


def _error(
    operation: str,
    feature: Feature,
    error: Exception,
    request_id: str,
    *,
    not_found: str,
    permissions: tuple[str, ...] = (),
) -> GraphError:
    """Translate whatever the SDK or the transport raised into a GraphError with an operator's hint."""
    import httpx
    from azure.core.exceptions import ClientAuthenticationError
    from kiota_abstractions.api_error import APIError

    if isinstance(error, ClientAuthenticationError):
        return GraphError(
            operation,
            f"could not get a token: {error.message}",
            hint="check the managed identity (AZURE_CLIENT_ID) and that the Function App has it assigned",
        )
    if isinstance(error, httpx.TimeoutException):
        return TransientGraphError(operation, f"timed out ({type(error).__name__})", hint="Graph did not answer in time")
    if isinstance(error, httpx.TransportError):
        return TransientGraphError(operation, f"network error: {error}", hint="check outbound access to Graph")
    if not isinstance(error, APIError):
        raise error
    status = error.response_status_code
    main = getattr(error, "error", None)
    code = str(getattr(main, "code", None) or "")
    message = str(getattr(main, "message", None) or error.message or "no error message")
    inner = getattr(main, "inner_error", None)
    request_id = request_id or str(getattr(inner, "request_id", None) or "")
    if status == 404:
        return GraphError(operation, not_found, status=404, code=code or "Request_ResourceNotFound", request_id=request_id)
    if status == 403:
        return GraphError(
            operation,
            message,
            status=403,
            code=code,
            request_id=request_id,
            hint=missing_permission_hint(feature, permissions or None),
            missing_permissions=permissions or permissions_for(feature),
        )
    if status == 401:
        return GraphError(
            operation, message, status=401, code=code, request_id=request_id, hint="the token was refused: check its audience"
        )
    kind = TransientGraphError if status in _TRANSIENT_STATUS else GraphError
    return kind(operation, message, status=status, code=code, request_id=request_id)


class GraphDirectory:
    """
    The directory operations containment and approval use, each one Graph call (plus paging).

    Construct with `create_graph_directory`; tests pass the same factory a fake credential and a
    local endpoint, so the real SDK, middleware and serialisation run in every test.
    """

    def __init__(
        self, client: Any, credential: AsyncTokenCredential | None = None, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._client = client
        self._credential = credential
        self._transport = transport

    async def close(self) -> None:
        """
        Release the connection pool and the credential's session.

        The pool is closed directly: msgraph's AsyncGraphTransport, which wraps it, does not
        forward `aclose`, so closing the httpx client alone leaks the sockets.
        """
        if self._transport is not None:
            await self._transport.aclose()
        if self._credential is not None:
            await self._credential.close()

    async def _call(
        self,
        operation: str,
        feature: Feature,
        call: Callable[[], Awaitable[T]],
        *,
        not_found: str,
        permissions: tuple[str, ...] = (),
    ) -> Reply[T]:
        """One call with its request-id; `permissions` narrows what a 403 names when a feature needs several."""
        with _capture() as ids:
            try:
                value = await call()
            except Exception as error:
                request_id = ids[-1] if ids else ""
                raise _error(operation, feature, error, request_id, not_found=not_found, permissions=permissions) from error
        return Reply(value, ids[-1] if ids else "")

    async def _every_page(self, builder: Any, first: Callable[[], Awaitable[Any]], convert: Callable[[Any], T]) -> tuple[T, ...]:
        """Every item of a collection, following @odata.nextLink from the first page."""
        found: list[T] = []
        page = await first()
        while page is not None:
            found.extend(convert(item) for item in page.value or ())
            link = page.odata_next_link
            page = await builder.with_url(link).get() if link else None
        return tuple(found)

    def _user(self, user_id: str) -> Any:
        return self._client.users.by_user_id(_checked_id(user_id))

    async def get_user(self, user_id: str) -> Reply[DirectoryUser]:
        """The user by object id or UPN; a 404 raises GraphError with `not_found`."""
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

        query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(
            select=["id", "userPrincipalName", "accountEnabled", "userType"]
        )
        builder = self._user(user_id)
        reply = await self._call(
            "get user",
            Feature.TARGET_LOOKUP,
            lambda: builder.get(request_configuration=RequestConfiguration(query_parameters=query)),
            not_found=f"user not found: {user_id}",
        )
        user = reply.value
        found = DirectoryUser(
            object_id=str(getattr(user, "id", None) or "").lower(),
            upn=str(getattr(user, "user_principal_name", None) or ""),
            account_enabled=getattr(user, "account_enabled", None),
            user_type=str(getattr(user, "user_type", None) or ""),
        )
        return Reply(found, reply.request_id)

    async def identify(self, user_id: str) -> Reply[DirectoryUser]:
        """
        The user's object id and UPN (by object id or UPN), read from the answer as plain JSON, with
        the bot's identity's permission (the approver check). The bot asks it within Teams' few
        seconds, and parsing a msgraph `User` costs seconds on a cold worker (its model imports
        hundreds of modules the first time one is parsed); this read parses none.
        `account_enabled` is not read (None).
        """
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError
        from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

        query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=["id", "userPrincipalName"])
        request = self._user(user_id).to_get_request_information(RequestConfiguration(query_parameters=query))
        adapter = self._client.request_adapter
        reply = await self._call(
            "get user",
            Feature.APPROVER_CHECK,
            lambda: adapter.send_primitive_async(request, "bytes", {"XXX": ODataError}),
            not_found=f"user not found: {user_id}",
        )
        operation = "get user"
        try:
            found = json.loads(reply.value or b"{}")
            object_id, upn = found.get("id"), found.get("userPrincipalName")
        except (ValueError, AttributeError) as error:
            message = f"the answer is not a user ({type(error).__name__})"
            raise GraphError(operation, message, request_id=reply.request_id) from error
        if not isinstance(object_id, str) or not object_id or not isinstance(upn, str) or not upn:
            message = "the answer names no id or userPrincipalName"
            raise GraphError(operation, message, request_id=reply.request_id)
        return Reply(DirectoryUser(object_id.lower(), upn, None), reply.request_id)

    async def revoke_sessions(self, user_id: str) -> Reply[bool]:
        """Invalidate every refresh token and session cookie; repeating it is harmless."""
        builder = self._user(user_id).revoke_sign_in_sessions
        reply = await self._call("revoke sessions", Feature.REVOKE_SESSIONS, builder.post, not_found=f"user not found: {user_id}")
        # Graph documents 200 {"value": true}, but a known issue returns other 2xx codes without a body.
        value = getattr(reply.value, "value", None)
        return Reply(value is not False, reply.request_id)

    async def list_auth_methods(self, user_id: str) -> Reply[tuple[AuthMethod, ...]]:
        """Every registered method, following @odata.nextLink."""
        builder = self._user(user_id).authentication.methods

        def method(item: Any) -> AuthMethod:
            created = getattr(item, "created_date_time", None)
            return AuthMethod(id=str(item.id or ""), kind=_kind(item.odata_type), label=_label(item), created_at=created)

        return await self._call(
            "list authentication methods",
            Feature.AUDIT_MFA_METHODS,
            lambda: self._every_page(builder, builder.get, method),
            not_found=f"user not found: {user_id}",
        )

    async def is_member_of(self, group_id: str, user_id: str) -> Reply[bool]:
        """Transitive membership of one group (checkMemberGroups follows nested groups)."""
        from msgraph.generated.users.item.check_member_groups.check_member_groups_post_request_body import (
            CheckMemberGroupsPostRequestBody,
        )

        group = _checked_id(group_id, guid=True).lower()
        body = CheckMemberGroupsPostRequestBody(group_ids=[group])
        builder = self._user(user_id).check_member_groups
        reply = await self._call(
            "check approver group membership",
            Feature.APPROVER_CHECK,
            lambda: builder.post(body),
            not_found=f"user not found: {user_id}",
        )
        groups = {str(g).lower() for g in (getattr(reply.value, "value", None) or ())}
        return Reply(group in groups, reply.request_id)

    async def privileged_roles(self, user_object_id: str) -> Reply[tuple[DirectoryRole, ...]]:
        """The directory roles assigned to the user (direct assignments, see permissions.GRAPH_NEEDS)."""
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.role_management.directory.role_assignments.role_assignments_request_builder import (
            RoleAssignmentsRequestBuilder,
        )

        principal = _checked_id(user_object_id, guid=True).lower()
        query = RoleAssignmentsRequestBuilder.RoleAssignmentsRequestBuilderGetQueryParameters(
            filter=f"principalId eq '{principal}'", expand=["roleDefinition"]
        )
        builder = self._client.role_management.directory.role_assignments

        async def every_page() -> tuple[DirectoryRole, ...]:
            first = functools.partial(builder.get, request_configuration=RequestConfiguration(query_parameters=query))
            return tuple(dict.fromkeys(await self._every_page(builder, first, _role)))

        return await self._call(
            "list directory roles", Feature.PRIVILEGED_ROLE_CHECK, every_page, not_found=f"user not found: {principal}"
        )

    async def confirm_compromised(self, user_object_id: str) -> Reply[None]:
        """Mark the user compromised in Entra ID Protection (risk high); needs Entra ID P2."""
        from msgraph.generated.identity_protection.risky_users.confirm_compromised.confirm_compromised_post_request_body import (
            ConfirmCompromisedPostRequestBody,
        )

        body = ConfirmCompromisedPostRequestBody(user_ids=[_checked_id(user_object_id, guid=True).lower()])
        builder = self._client.identity_protection.risky_users.confirm_compromised
        return await self._call(
            "confirm user compromised",
            Feature.CONFIRM_COMPROMISED,
            lambda: builder.post(body),
            not_found=f"risky user not found: {user_object_id}",
        )

    async def disable_account(self, user_id: str) -> Reply[None]:
        """Set accountEnabled to false (204)."""
        from msgraph.generated.models.user import User

        builder = self._user(user_id)

        async def patch() -> None:
            await builder.patch(User(account_enabled=False))

        return await self._call("disable account", Feature.DISABLE_ACCOUNT, patch, not_found=f"user not found: {user_id}")

    async def delete_auth_method(self, user_id: str, method: AuthMethod) -> Reply[None]:
        """Delete one method through its kind's endpoint; a 404 means it is already gone (GraphError.not_found)."""
        if not method.deletable:
            msg = f"a {method.kind} method cannot be deleted through Graph"
            raise ValueError(msg)
        collection, selector = _DELETABLE[method.kind]
        authentication = self._user(user_id).authentication
        item = getattr(getattr(authentication, collection), selector)(_checked_id(method.id))
        return await self._delete(f"delete {method.kind} method", Feature.DELETE_FLAGGED_METHODS, item, f"method {method.id}")

    async def _delete(self, operation: str, feature: Feature, builder: Any, what: str) -> Reply[None]:
        """DELETE through an item builder (204); a 404 says `what` is already gone (GraphError.not_found)."""

        async def delete() -> None:
            await builder.delete()

        return await self._call(operation, feature, delete, not_found=f"{what} not found (already deleted?)")

    async def require_password_change(self, user_id: str) -> Reply[None]:
        """Set passwordProfile.forceChangePasswordNextSignIn (204); the password itself is not touched."""
        from msgraph.generated.models.password_profile import PasswordProfile
        from msgraph.generated.models.user import User

        builder = self._user(user_id)

        async def patch() -> None:
            await builder.patch(User(password_profile=PasswordProfile(force_change_password_next_sign_in=True)))

        return await self._call(
            "require a password change", Feature.REQUIRE_PASSWORD_CHANGE, patch, not_found=f"user not found: {user_id}"
        )

    async def list_registered_devices(self, user_id: str) -> Reply[tuple[RegisteredDevice, ...]]:
        """The devices the user registered or joined (registeredDevices), following @odata.nextLink."""
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.users.item.registered_devices.registered_devices_request_builder import (
            RegisteredDevicesRequestBuilder,
        )

        query = RegisteredDevicesRequestBuilder.RegisteredDevicesRequestBuilderGetQueryParameters(select=_DEVICE_FIELDS)
        builder = self._user(user_id).registered_devices
        first = functools.partial(builder.get, request_configuration=RequestConfiguration(query_parameters=query))
        return await self._call(
            "list registered devices",
            Feature.AUDIT_DEVICES,
            lambda: self._every_page(builder, first, _device),
            not_found=f"user not found: {user_id}",
        )

    async def delete_device(self, device: RegisteredDevice) -> Reply[None]:
        """DELETE /devices/{object id} (204); a 404 means it is already gone (GraphError.not_found)."""
        builder = self._client.devices.by_device_id(_checked_id(device.id, guid=True).lower())
        return await self._delete("delete device", Feature.DELETE_ATTACKER_DEVICES, builder, f"device {device.id}")

    def _inbox_rules(self, user_id: str) -> Any:
        return self._user(user_id).mail_folders.by_mail_folder_id("inbox").message_rules

    async def list_inbox_rules(self, user_id: str) -> Reply[tuple[MessageRule, ...]]:
        """The rules of the user's inbox (messageRules), following @odata.nextLink."""
        builder = self._inbox_rules(user_id)
        return await self._call(
            "list inbox rules",
            Feature.REMOVE_INBOX_RULES,
            lambda: self._every_page(builder, builder.get, _message_rule),
            not_found=f"mailbox not found: {user_id}",
        )

    async def delete_inbox_rule(self, user_id: str, rule: MessageRule) -> Reply[None]:
        """DELETE one inbox rule (204); a 404 means it is already gone (GraphError.not_found)."""
        builder = self._inbox_rules(user_id).by_message_rule_id(_checked_id(rule.id))
        return await self._delete("delete inbox rule", Feature.REMOVE_INBOX_RULES, builder, f"inbox rule {rule.id}")

    async def identity_context(self, user_id: str, *, since: datetime) -> IdentityContext:
        """
        Who the user is, read-only: profile and manager, privileged directory roles, Entra ID
        Protection risk and the detections since `since`. Each facet is answered by "Microsoft
        Graph" or carries its problem (a 403 names the permission that facet lacks); one failing
        facet never hides the others.
        """
        context = IdentityContext()
        answers: list[Answer] = []
        object_id = user_id if is_guid(user_id.strip()) else ""
        try:
            context, object_id = await self._profile(user_id)
            answers.append(Answer(Facet.PROFILE, SERVICE))
        except (GraphError, ValueError) as error:
            answers.append(Answer(Facet.PROFILE, problem=_problem(error)))
        for facet, read in ((Facet.ROLES, self._roles_facet), (Facet.RISK, self._risk_facet)):
            if not object_id:
                answers.append(Answer(facet, problem="the user's object id is unknown (the profile could not be read)"))
                continue
            try:
                context = replace(context, **await read(object_id, since))
                answers.append(Answer(facet, SERVICE))
            except (GraphError, ValueError) as error:
                answers.append(Answer(facet, problem=_problem(error)))
        return replace(context, answers=tuple(answers))

    async def _profile(self, user_id: str) -> tuple[IdentityContext, str]:
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

        query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(
            select=["id", "displayName", "department", "jobTitle"], expand=["manager($select=displayName)"]
        )
        builder = self._user(user_id)
        reply = await self._call(
            "read the user's profile",
            Feature.IDENTITY_CONTEXT,
            lambda: builder.get(request_configuration=RequestConfiguration(query_parameters=query)),
            not_found=f"user not found: {user_id}",
            permissions=("User.Read.All",),
        )
        user = reply.value
        manager = getattr(user, "manager", None)
        found = IdentityContext(
            display_name=str(getattr(user, "display_name", None) or ""),
            department=str(getattr(user, "department", None) or ""),
            job_title=str(getattr(user, "job_title", None) or ""),
            manager=str(getattr(manager, "display_name", None) or ""),
        )
        return found, str(getattr(user, "id", None) or "").lower()

    async def _roles_facet(self, object_id: str, _since: datetime) -> dict[str, Any]:
        roles = (await self.privileged_roles(object_id)).value
        return {"privileged_roles": tuple(role.name or role.template_id for role in protected_roles(roles))}

    async def _risk_facet(self, object_id: str, since: datetime) -> dict[str, Any]:
        """riskyUsers/{id} (404: Entra ID Protection holds no risk for the user) and the detections since `since`."""
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.identity_protection.risk_detections.risk_detections_request_builder import (
            RiskDetectionsRequestBuilder,
        )

        principal = _checked_id(object_id, guid=True).lower()
        risky = self._client.identity_protection.risky_users.by_risky_user_id(principal)
        level, state = "none", "none"
        try:
            user = (
                await self._call(
                    "read the user's risk",
                    Feature.IDENTITY_CONTEXT,
                    risky.get,
                    not_found=f"no risk recorded for {principal}",
                    permissions=("IdentityRiskyUser.Read.All",),
                )
            ).value
            level, state = _enum(getattr(user, "risk_level", None)) or "none", _enum(getattr(user, "risk_state", None)) or "none"
        except GraphError as error:
            if not error.not_found:
                raise
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        query = RiskDetectionsRequestBuilder.RiskDetectionsRequestBuilderGetQueryParameters(
            filter=f"userId eq '{principal}' and detectedDateTime ge {stamp}"
        )
        builder = self._client.identity_protection.risk_detections
        first = functools.partial(builder.get, request_configuration=RequestConfiguration(query_parameters=query))
        detections = (
            await self._call(
                "list the user's risk detections",
                Feature.IDENTITY_CONTEXT,
                lambda: self._every_page(builder, first, _detection),
                not_found=f"user not found: {principal}",
                permissions=("IdentityRiskEvent.Read.All",),
            )
        ).value
        newest = sorted(detections, key=lambda d: d.detected_at, reverse=True)[:RISK_DETECTIONS_KEPT]
        return {"risk_level": level, "risk_state": state, "risk_detections": tuple(newest)}


def _warm(client: Any) -> None:
    """
    Build (without sending) every request builder the adapter uses, importing their modules once.

    msgraph's generated builders warn "This class is deprecated" (and kiota "GetQueryParameters is
    deprecated") from class bodies at import. We use none of those classes; importing them here,
    at construction, keeps the warnings out of the first containment of a process and out of logs.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(msgraph|kiota_abstractions)(\.|$)")
        import msgraph.generated.identity_protection.risk_detections.risk_detections_request_builder
        import msgraph.generated.identity_protection.risky_users.confirm_compromised.confirm_compromised_post_request_body
        import msgraph.generated.models.password_profile
        import msgraph.generated.models.user
        import msgraph.generated.users.item.check_member_groups.check_member_groups_post_request_body
        import msgraph.generated.users.item.registered_devices.registered_devices_request_builder
        import msgraph.generated.users.item.user_item_request_builder  # noqa: F401

        user = client.users.by_user_id("warm-up")
        for builder in (user.revoke_sign_in_sessions, user.check_member_groups, user.authentication.methods):
            builder.with_url("http://localhost/warm-up")
        for collection, selector in _DELETABLE.values():
            getattr(getattr(user.authentication, collection), selector)("warm-up")
        for builder in (
            user.registered_devices,
            user.mail_folders.by_mail_folder_id("inbox").message_rules,
            user.mail_folders.by_mail_folder_id("inbox").message_rules.by_message_rule_id("warm-up"),
            client.role_management.directory.role_assignments,
            client.identity_protection.risky_users.confirm_compromised,
            client.identity_protection.risky_users.by_risky_user_id("warm-up"),
            client.identity_protection.risk_detections,
            client.devices.by_device_id("warm-up"),
        ):
            builder.with_url("http://localhost/warm-up")


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context per process: building it reads the CA bundle, which costs tens of milliseconds."""
    import httpx

    return httpx.create_ssl_context()


def create_graph_directory(
    settings: Settings,
    *,
    credential: AsyncTokenCredential | None = None,
    max_retries: int = 3,
    retry_delay_seconds: float = 3.0,
    timeout_seconds: float = 60.0,
) -> GraphDirectory:
    """
    Build the adapter: msgraph GraphServiceClient, kiota default middleware, base URL from settings.

    The credential defaults to the managed identity named by AZURE_CLIENT_ID (DefaultAzureCredential
    without it). Tokens are requested for the Graph scope only and sent only to the configured
    host. `max_retries` and `retry_delay_seconds` configure kiota's RetryHandler, the single retry
    owner (a Retry-After header overrides the delay).
    """
    import httpx
    from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
    from kiota_http.middleware.options import RetryHandlerOption
    from msgraph.graph_request_adapter import GraphRequestAdapter
    from msgraph.graph_service_client import GraphServiceClient
    from msgraph_core import GraphClientFactory  # type: ignore[import-untyped]

    if credential is None:
        from common.credentials import default_async_credential

        credential = default_async_credential(settings)
    host = urlparse(settings.graph_endpoint).hostname or ""
    transport = httpx.AsyncHTTPTransport(verify=_tls())
    http = httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 15.0)),
        event_hooks={"response": [_remember_request_id]},
    )
    retry = RetryHandlerOption(delay=retry_delay_seconds, max_retries=max_retries, should_retry=max_retries > 0)
    http = GraphClientFactory.create_with_default_middleware(client=http, options={RetryHandlerOption.get_key(): retry})
    auth = AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH_SCOPE], allowed_hosts=[host])
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = settings.graph_endpoint
    client = GraphServiceClient(request_adapter=adapter)
    _warm(client)
    return GraphDirectory(client, credential, transport)
