"""
A Microsoft Graph v1.0 endpoint on 127.0.0.1 for the calls containment and approval make.

Plain http is enough here: kiota sends bearer tokens over http to localhost names only (facts
2.3), so the real `GraphServiceClient`, its middleware (retry, headers) and its serialisation run
against this server in every test. Bodies follow the Graph docs' JSON shapes (@odata.type on
authentication methods, OData error payloads with innerError.request-id, @odata.nextLink paging).

State is plain dicts the test fills (users with profile and manager, methods, role assignments,
group members, registered devices, inbox rules, Entra ID Protection risk and detections). Every
request is recorded. Faults are scripted per test: `fail(method, path_regex, status, times=...)`
answers the next matching requests with that status (and Retry-After when given), then the
endpoint behaves normally again. `refuse_sensitive(user_id)` makes revoke, PATCH and method
deletion (PATCH covers disabling and the password profile) answer 403 Authorization_RequestDenied for that user, as Entra ID does for an
administrator target when the caller lacks a higher directory role.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from azure.core.credentials import AccessToken

_METHOD_COLLECTIONS = {
    "emailMethods": "email",
    "externalAuthenticationMethods": "external",
    "fido2Methods": "fido2",
    "microsoftAuthenticatorMethods": "microsoftAuthenticator",
    "phoneMethods": "phone",
    "platformCredentialMethods": "platformCredential",
    "softwareOathMethods": "softwareOath",
    "temporaryAccessPassMethods": "temporaryAccessPass",
    "windowsHelloForBusinessMethods": "windowsHelloForBusiness",
}
_FILTER = re.compile(r"^principalId eq '([^']*)'$")
_RISK_FILTER = re.compile(r"^userId eq '([^']*)' and detectedDateTime ge (\S+)$")


class FakeCredential:
    """An azure.identity.aio-style credential: returns a dummy token and records the scopes asked for."""

    def __init__(self, token: str = "dummy-graph-token") -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []
        self.closed = False

    async def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)

    async def close(self) -> None:
        self.closed = True


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request as received: `path` is unquoted and without the /v1.0 prefix, header names lower-case."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    at: float
    status: int
    request_id: str


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    times: int
    retry_after: str | None
    code: str
    message: str
    delay: float


@dataclass
class FakeGraph:
    """The directory state and the script of faults; `base_url` is what REPLAY_GRAPH_ENDPOINT points at."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    methods: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    roles: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    groups: dict[str, set[str]] = field(default_factory=dict)
    confirmed: list[str] = field(default_factory=list)
    protected: set[str] = field(default_factory=set)
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    owners: dict[str, list[str]] = field(default_factory=dict)  # user id -> device object ids
    rules: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    risky: dict[str, dict[str, Any]] = field(default_factory=dict)
    detections: list[dict[str, Any]] = field(default_factory=list)
    page_size: int = 50
    requests: list[Recorded] = field(default_factory=list)
    _faults: list[_Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1.0"

    # -- state -------------------------------------------------------------------------------
    def add_user(self, object_id: str, upn: str, *, enabled: bool = True, user_type: str = "Member", **profile: Any) -> None:
        """`profile`: displayName, department, jobTitle, manager (the manager's object id)."""
        self.users[object_id.lower()] = {
            "id": object_id,
            "userPrincipalName": upn,
            "accountEnabled": enabled,
            "userType": user_type,
            **profile,
        }
        self.methods.setdefault(object_id.lower(), [])

    def add_device(self, user_id: str, object_id: str, name: str, **properties: Any) -> None:
        """A device the user registered (registeredDevices); `properties` as Graph names them."""
        self.devices[object_id.lower()] = {
            "@odata.type": "#microsoft.graph.device",
            "id": object_id,
            "displayName": name,
            **properties,
        }
        self.owners.setdefault(user_id.lower(), []).append(object_id.lower())

    def add_rule(self, user_id: str, rule_id: str, name: str, **properties: Any) -> None:
        self.rules.setdefault(user_id.lower(), []).append({"id": rule_id, "displayName": name, "isEnabled": True, **properties})

    def set_risk(self, user_id: str, level: str, state: str) -> None:
        self.risky[user_id.lower()] = {"id": user_id, "riskLevel": level, "riskState": state, "isDeleted": False}

    def add_detection(self, user_id: str, kind: str, level: str, detected: str, ip: str = "") -> None:
        self.detections.append(
            {
                "id": str(uuid.uuid4()),
                "userId": user_id,
                "riskEventType": kind,
                "riskLevel": level,
                "riskState": "atRisk",
                "detectedDateTime": detected,
                "ipAddress": ip,
            }
        )

    def add_method(self, user_id: str, kind: str, method_id: str, **properties: Any) -> None:
        """`kind` as in @odata.type without the suffix: "microsoftAuthenticator", "phone", "password", ..."""
        body = {"@odata.type": f"#microsoft.graph.{kind}AuthenticationMethod", "id": method_id, **properties}
        self.methods.setdefault(user_id.lower(), []).append(body)

    def assign_role(self, user_id: str, template_id: str, name: str) -> None:
        self.roles.setdefault(user_id.lower(), []).append(
            {
                "id": str(uuid.uuid4()),
                "principalId": user_id,
                "roleDefinitionId": template_id,
                "directoryScopeId": "/",
                "roleDefinition": {"id": template_id, "templateId": template_id, "displayName": name, "isBuiltIn": True},
            }
        )

    def add_member(self, group_id: str, user_id: str) -> None:
        self.groups.setdefault(group_id.lower(), set()).add(user_id.lower())

    def refuse_sensitive(self, user_id: str) -> None:
        self.protected.add(user_id.lower())

    def fail(
        self,
        method: str,
        path: str,
        status: int,
        *,
        times: int = 1,
        retry_after: int | None = None,
        code: str = "",
        message: str = "",
        delay: float = 0.0,
    ) -> None:
        """Answer the next `times` requests matching (method, path regex) with `status` (or stall them `delay` s first)."""
        defaults = {
            403: ("Authorization_RequestDenied", "Insufficient privileges to complete the operation."),
            404: (
                "Request_ResourceNotFound",
                "Resource does not exist or one of its queried reference-property objects are not present.",
            ),
            429: ("TooManyRequests", "Too many requests."),
            500: ("InternalServerError", "Internal server error."),
            503: ("serviceNotAvailable", "Service unavailable."),
        }
        default_code, default_message = defaults.get(status, ("generalException", "Error."))
        self._faults.append(
            _Fault(
                method.upper(),
                re.compile(path),
                status,
                times,
                str(retry_after) if retry_after is not None else None,
                code or default_code,
                message or default_message,
                delay,
            )
        )

    # -- inspection --------------------------------------------------------------------------
    def calls(self, method: str, path: str = "") -> list[Recorded]:
        """Recorded requests with this HTTP method whose path matches the regex `path`."""
        return [r for r in self.requests if r.method == method.upper() and re.search(path, r.path)]

    # -- dispatch ----------------------------------------------------------------------------
    def _fault_for(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method == method and fault.pattern.search(path) and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def _user(self, ref: str) -> dict[str, Any] | None:
        key = ref.lower()
        if key in self.users:
            return self.users[key]
        return next((u for u in self.users.values() if u["userPrincipalName"].lower() == key), None)

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any, dict[str, str]]:
        """Route one request; returns (status, JSON body or None, extra headers)."""
        fault = self._fault_for(method, path)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return fault.status, error_body(fault.code, fault.message), headers
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts[:1] == ["users"] and len(parts) >= 2:
            return self._users(method, parts[1], parts[2:], query, body)
        if parts == ["roleManagement", "directory", "roleAssignments"] and method == "GET":
            match = _FILTER.match(query.get("$filter", [""])[0])
            if match is None:
                return 400, error_body("BadRequest", "principalId filter required"), {}
            assignments = self.roles.get(match.group(1).lower(), [])
            return (
                200,
                {
                    "@odata.context": f"{self.base_url}/$metadata#roleManagement/directory/roleAssignments(roleDefinition())",
                    "value": assignments,
                },
                {},
            )
        if parts == ["identityProtection", "riskyUsers", "confirmCompromised"] and method == "POST":
            self.confirmed.extend(body.get("userIds", []))
            return 204, None, {}
        if parts[:2] == ["identityProtection", "riskyUsers"] and len(parts) == 3 and method == "GET":
            risky = self.risky.get(parts[2].lower())
            if risky is None:
                return 404, error_body("ResourceNotFound", f"riskyUser {parts[2]} not found"), {}
            return 200, {"@odata.context": f"{self.base_url}/$metadata#riskyUsers/$entity", **risky}, {}
        if parts == ["identityProtection", "riskDetections"] and method == "GET":
            match = _RISK_FILTER.match(query.get("$filter", [""])[0])
            if match is None:
                return 400, error_body("BadRequest", "userId and detectedDateTime filter required"), {}
            since = datetime.fromisoformat(match.group(2))
            found = [
                d
                for d in self.detections
                if d["userId"].lower() == match.group(1).lower() and datetime.fromisoformat(d["detectedDateTime"]) >= since
            ]
            return 200, {"@odata.context": f"{self.base_url}/$metadata#riskDetections", "value": found}, {}
        if parts[:1] == ["devices"] and len(parts) == 2 and method == "DELETE":
            if self.devices.pop(parts[1].lower(), None) is None:
                return 404, error_body("Request_ResourceNotFound", f"Resource '{parts[1]}' does not exist."), {}
            for owned in self.owners.values():
                if parts[1].lower() in owned:
                    owned.remove(parts[1].lower())
            return 204, None, {}
        return 404, error_body("UnknownError", f"no route for {method} {path}"), {}

    def _page(self, path: str, listed: list[dict[str, Any]], query: dict[str, list[str]]) -> dict[str, Any]:
        """One page of `listed` (`page_size` items) with @odata.nextLink to the next, as Graph pages collections."""
        skip = int(query.get("$skiptoken", ["0"])[0])
        page: dict[str, Any] = {
            "@odata.context": f"{self.base_url}/$metadata#{path}",
            "value": listed[skip : skip + self.page_size],
        }
        if skip + self.page_size < len(listed):
            page["@odata.nextLink"] = f"{self.base_url}/{path}?$skiptoken={skip + self.page_size}"
        return page

    def _users(
        self, method: str, ref: str, rest: list[str], query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        user = self._user(ref)
        if user is None:
            return (
                404,
                error_body(
                    "Request_ResourceNotFound",
                    f"Resource '{ref}' does not exist or one of its queried reference-property objects are not present.",
                ),
                {},
            )
        key = user["id"].lower()
        sensitive_refused = key in self.protected
        if not rest and method == "GET":
            shown = {k: v for k, v in user.items() if k != "manager"}
            if "manager($select=displayName)" in query.get("$expand", [""])[0].split(",") and user.get("manager"):
                manager = self.users[user["manager"].lower()]
                shown["manager"] = {
                    "@odata.type": "#microsoft.graph.user",
                    "id": manager["id"],
                    "displayName": manager.get("displayName"),
                }
            return 200, {"@odata.context": f"{self.base_url}/$metadata#users/$entity", **shown}, {}
        if not rest and method == "PATCH":
            if sensitive_refused:
                return 403, error_body("Authorization_RequestDenied", "Insufficient privileges to complete the operation."), {}
            user.update({k: v for k, v in body.items() if k in ("accountEnabled", "passwordProfile")})
            return 204, None, {}
        if rest == ["registeredDevices"] and method == "GET":
            return (
                200,
                self._page(f"users/{key}/registeredDevices", [self.devices[d] for d in self.owners.get(key, [])], query),
                {},
            )
        if rest == ["mailFolders", "inbox", "messageRules"] and method == "GET":
            return 200, self._page(f"users/{key}/mailFolders/inbox/messageRules", self.rules.get(key, []), query), {}
        if rest[:3] == ["mailFolders", "inbox", "messageRules"] and len(rest) == 4 and method == "DELETE":
            listed = self.rules.get(key, [])
            for index, entry in enumerate(listed):
                if entry["id"] == rest[3]:
                    del listed[index]
                    return 204, None, {}
            return 404, error_body("ErrorItemNotFound", "The specified object was not found in the store."), {}
        if rest == ["revokeSignInSessions"] and method == "POST":
            if sensitive_refused:
                return (
                    403,
                    error_body("Authorization_RequestDenied", "Access to invalidate refresh tokens operation is denied."),
                    {},
                )
            user["signInSessionsValidFromDateTime"] = datetime.now(UTC).isoformat()
            return 200, {"@odata.context": f"{self.base_url}/$metadata#Edm.Boolean", "value": True}, {}
        if rest == ["checkMemberGroups"] and method == "POST":
            wanted = [g.lower() for g in body.get("groupIds", [])]
            member_of = [g for g in wanted if key in self.groups.get(g, set())]
            return 200, {"@odata.context": f"{self.base_url}/$metadata#Collection(Edm.String)", "value": member_of}, {}
        if rest == ["authentication", "methods"] and method == "GET":
            return 200, self._page(f"users/{key}/authentication/methods", self.methods.get(key, []), query), {}
        if len(rest) == 3 and rest[0] == "authentication" and rest[1] in _METHOD_COLLECTIONS and method == "DELETE":
            if sensitive_refused:
                return 403, error_body("Authorization_RequestDenied", "Insufficient privileges to complete the operation."), {}
            kind = _METHOD_COLLECTIONS[rest[1]]
            listed = self.methods.get(key, [])
            for index, entry in enumerate(listed):
                if entry["id"] == rest[2] and entry["@odata.type"] == f"#microsoft.graph.{kind}AuthenticationMethod":
                    del listed[index]
                    return 204, None, {}
            return 404, error_body("itemNotFound", f"{kind} method {rest[2]} not found"), {}
        return 404, error_body("UnknownError", f"no route for {method} users/{'/'.join(rest)}"), {}


def error_body(code: str, message: str) -> dict[str, Any]:
    """Graph's OData error payload; the request-id inside is filled in by the handler."""
    return {"error": {"code": code, "message": message, "innerError": {"date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")}}}


def _handler(graph: FakeGraph) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the recorded requests are the log."""

        def _serve(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            request_id = str(uuid.uuid4())
            path = split.path.removeprefix("/v1.0")
            query = parse_qs(split.query)
            if not self.headers.get("Authorization", "").startswith("Bearer "):
                status, payload, extra = 401, error_body("InvalidAuthenticationToken", "Access token is empty."), {}
            else:
                status, payload, extra = graph.handle(self.command, path, query, body)
            graph.requests.append(
                Recorded(
                    self.command,
                    unquote(path),
                    query,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.monotonic(),
                    status,
                    request_id,
                )
            )
            if isinstance(payload, dict) and "error" in payload:
                payload["error"]["innerError"].update(
                    {"request-id": request_id, "client-request-id": self.headers.get("client-request-id", "")}
                )
            data = json.dumps(payload).encode() if payload is not None else b""
            try:
                self.send_response(status)
                self.send_header("request-id", request_id)
                self.send_header("client-request-id", self.headers.get("client-request-id", ""))
                for name, value in extra.items():
                    self.send_header(name, value)
                if data:
                    self.send_header("Content-Type", "application/json;odata.metadata=minimal")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                return

        do_GET = do_POST = do_PATCH = do_DELETE = _serve

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (timeout tests) is not a server failure."""


@contextmanager
def running(graph: FakeGraph | None = None) -> Iterator[FakeGraph]:
    """Serve `graph` on an ephemeral port for the duration of the block."""
    state = graph or FakeGraph()
    server = _Server(("127.0.0.1", 0), _handler(state))
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-graph", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
