"""
A Sentinel (ARM) incident endpoint on 127.0.0.1 over HTTPS, holding incidents, entities and comments.

It serves the four calls the app makes, with api-version 2025-12-01 and a bearer token required:
`GET .../incidents/{id}`, `PUT .../incidents/{id}` (etag checked: a stale etag gets 412),
`POST .../incidents/{id}/entities` and `PUT .../incidents/{id}/comments/{commentId}` (201 created,
200 replaced). The real azure-core pipeline of `SentinelIncidents` is pointed at it, so the tests
exercise the retry policy, Retry-After, timeouts and the etag loop rather than a mock of them.

Faults are scripted per route (`get_incident`, `put_incident`, `entities`, `put_comment`): each
answers one request, in order. `interfere` simulates another writer: before the next incident PUT
it changes the stored incident and its etag, so that PUT carries a stale etag and gets 412.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from azure.core.credentials import AccessToken

from tests.fakes.tls import fake_tls

API_VERSION = "2025-12-01"

_INCIDENT = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.OperationalInsights/"
    r"workspaces/(?P<ws>[^/]+)/providers/Microsoft\.SecurityInsights/incidents/(?P<name>[^/]+)"
    r"(?:/(?P<sub_kind>entities|comments)(?:/(?P<comment>[^/]+))?)?$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Fault:
    """One scripted answer: a status with an ARM error body (or none), headers, and a delay."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    body: dict[str, Any] | None = None
    then_serve: bool = False  # after the delay, answer normally (a slow, not failed, request)


def _arm_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def throttled(retry_after: float | None = None) -> Fault:
    headers = (("Retry-After", str(retry_after)),) if retry_after is not None else ()
    return Fault(429, headers, body=_arm_error("TooManyRequests", "The request was throttled"))


def server_error(status: int = 500) -> Fault:
    return Fault(status, body=_arm_error("InternalServerError", f"the service answered {status}"))


def forbidden() -> Fault:
    return Fault(
        403,
        body=_arm_error(
            "AuthorizationFailed",
            "The client does not have authorization to perform action 'Microsoft.SecurityInsights/incidents/write'",
        ),
    )


def conflict(status: int = 409) -> Fault:
    """409 (the incident is being changed) or 412 (a precondition, the etag, no longer holds)."""
    code = "Conflict" if status == 409 else "PreconditionFailed"
    return Fault(status, body=_arm_error(code, "The incident was changed by another request"))


def slow(seconds: float) -> Fault:
    """Answer normally after `seconds` (past a short client read timeout, this is a timeout)."""
    return Fault(200, delay=seconds, then_serve=True)


@dataclass(frozen=True, slots=True)
class Recorded:
    method: str
    route: str
    path: str
    api_version: str
    authorization: str
    body: Any
    status: int


@dataclass
class StoredIncident:
    subscription: str
    resource_group: str
    workspace: str
    name: str
    properties: dict[str, Any]
    entities: list[dict[str, Any]] = field(default_factory=list)
    comments: dict[str, dict[str, Any]] = field(default_factory=dict)
    etag: str = field(default_factory=lambda: f'"{uuid.uuid4()}"')

    @property
    def resource_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}/providers/Microsoft.OperationalInsights/"
            f"workspaces/{self.workspace}/providers/Microsoft.SecurityInsights/incidents/{self.name}"
        )

    def resource(self) -> dict[str, Any]:
        return {
            "id": self.resource_id,
            "name": self.name,
            "type": "Microsoft.SecurityInsights/incidents",
            "etag": self.etag,
            "properties": copy.deepcopy(self.properties),
        }


class FakeCredential:
    """A TokenCredential handing out a dummy token and recording the scopes asked for."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("fake-arm-token", int(time.time()) + 3600)


class SentinelServer:
    """The endpoint; use as a context manager (`with SentinelServer() as server:`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.incidents: dict[str, StoredIncident] = {}
        self.requests: list[Recorded] = []
        self._faults: list[tuple[str, Fault]] = []
        self._interference: dict[str, list[Callable[[dict[str, Any]], None]]] = {}
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> SentinelServer:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        httpd.daemon_threads = True
        httpd.socket = fake_tls().server_context().wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SentinelServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start the server first"
        return f"https://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def ca_path(self) -> str:
        return fake_tls().ca_path

    # -- test set-up and inspection ---------------------------------------------------------------

    def add_incident(
        self,
        subscription: str,
        resource_group: str,
        workspace: str,
        name: str,
        properties: dict[str, Any],
        entities: list[dict[str, Any]] | None = None,
    ) -> StoredIncident:
        stored = StoredIncident(
            subscription.lower(), resource_group, workspace, name.lower(), copy.deepcopy(properties), list(entities or [])
        )
        with self._lock:
            self.incidents[stored.name] = stored
        return stored

    def fail(self, route: str, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend((route, fault) for fault in faults)

    def interfere(self, name: str, change: Callable[[dict[str, Any]], None], times: int = 1) -> None:
        """Before each of the next `times` incident PUTs, another writer applies `change` (new etag)."""
        with self._lock:
            self._interference.setdefault(name.lower(), []).extend([change] * times)

    def count(self, route: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.route == route)

    def comments(self, name: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self.incidents[name.lower()].comments)

    def incident(self, name: str) -> StoredIncident:
        with self._lock:
            return copy.deepcopy(self.incidents[name.lower()])

    # -- request handling --------------------------------------------------------------------------

    def _take_fault(self, route: str) -> Fault | None:
        with self._lock:
            for index, (wanted, fault) in enumerate(self._faults):
                if wanted == route:
                    del self._faults[index]
                    return fault
        return None

    def _record(self, entry: Recorded) -> None:
        with self._lock:
            self.requests.append(entry)

    def _serve(self, method: str, route: str, match: re.Match[str], body: Any) -> tuple[int, dict[str, Any]]:
        with self._lock:
            stored = self.incidents.get(match["name"].lower())
            if stored is None or stored.subscription != match["sub"].lower() or stored.workspace.lower() != match["ws"].lower():
                return 404, _arm_error("NotFound", f"Incident {match['name']} was not found")
            if route == "get_incident":
                return 200, stored.resource()
            if route == "entities":
                kinds: dict[str, int] = {}
                for entity in stored.entities:
                    kinds[entity.get("kind", "")] = kinds.get(entity.get("kind", ""), 0) + 1
                return 200, {
                    "entities": copy.deepcopy(stored.entities),
                    "metaData": [{"entityKind": k, "count": c} for k, c in kinds.items()],
                }
            if route == "put_comment":
                message = body.get("properties", {}).get("message") if isinstance(body, dict) else None
                if not isinstance(message, str) or not message:
                    return 400, _arm_error("BadRequest", "properties.message is required")
                comment_id = match["comment"]
                created = comment_id not in stored.comments
                now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                previous = stored.comments.get(comment_id, {})
                stored.comments[comment_id] = {
                    "message": message,
                    "createdTimeUtc": previous.get("createdTimeUtc", now),
                    "lastModifiedTimeUtc": now,
                    "writes": previous.get("writes", 0) + 1,
                }
                resource = {
                    "id": f"{stored.resource_id}/comments/{comment_id}",
                    "name": comment_id,
                    "type": "Microsoft.SecurityInsights/incidents/comments",
                    "etag": f'"{uuid.uuid4()}"',
                    "properties": {"message": message, "createdTimeUtc": stored.comments[comment_id]["createdTimeUtc"]},
                }
                return (201 if created else 200), resource
            # put_incident
            pending = self._interference.get(stored.name)
            if pending:
                pending.pop(0)(stored.properties)
                stored.etag = f'"{uuid.uuid4()}"'
            if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
                return 400, _arm_error("BadRequest", "a body with 'properties' is required")
            properties = body["properties"]
            missing = [k for k in ("title", "severity", "status") if not properties.get(k)]
            if missing:
                return 400, _arm_error("BadRequest", f"required properties missing: {', '.join(missing)}")
            etag = body.get("etag")
            if etag is not None and etag != stored.etag:
                return 412, _arm_error("PreconditionFailed", "The etag does not match the incident's current etag")
            kept = {
                k: v
                for k, v in stored.properties.items()
                if k in ("incidentNumber", "createdTimeUtc", "additionalData", "incidentUrl")
            }
            stored.properties = {**copy.deepcopy(properties), **kept}
            stored.etag = f'"{uuid.uuid4()}"'
            return 200, stored.resource()


def _route(method: str, match: re.Match[str]) -> str:
    kind = (match["sub_kind"] or "").lower()
    if kind == "entities":
        return "entities" if method == "POST" else "unsupported"
    if kind == "comments":
        return "put_comment" if method == "PUT" and match["comment"] else "unsupported"
    return {"GET": "get_incident", "PUT": "put_incident"}.get(method, "unsupported")


def _handler_for(server: SentinelServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: object) -> None:
            return

        def do_GET(self) -> None:
            self._handle("GET")

        def do_PUT(self) -> None:
            self._handle("PUT")

        def do_POST(self) -> None:
            self._handle("POST")

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            api_version = (parse_qs(parts.query).get("api-version") or [""])[0]
            authorization = self.headers.get("Authorization") or ""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = "<not json>"
            match = _INCIDENT.match(parts.path)
            route = _route(method, match) if match else "unknown"

            def answer(status: int, payload: dict[str, Any] | None, headers: tuple[tuple[str, str], ...] = ()) -> None:
                server._record(Recorded(method, route, parts.path, api_version, authorization, body, status))
                data = json.dumps(payload).encode() if payload is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            if match is None or route == "unsupported":
                answer(404, _arm_error("NotFound", f"no route for {method} {parts.path}"))
                return
            if not authorization.startswith("Bearer ") or len(authorization) <= len("Bearer "):
                answer(401, _arm_error("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."))
                return
            if api_version != API_VERSION:
                answer(
                    400, _arm_error("InvalidApiVersionParameter", f"api-version {api_version!r} is not supported by this fake")
                )
                return
            fault = server._take_fault(route)
            if fault is not None and fault.delay:
                server._stopping.wait(fault.delay)
            if fault is not None and not fault.then_serve:
                answer(fault.status, fault.body, fault.headers)
                return
            status, payload = server._serve(method, route, match, body)
            try:
                answer(status, payload)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                return

    return Handler
