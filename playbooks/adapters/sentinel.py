"""
The Sentinel adapter: reads and writes one incident through the ARM REST API (api-version 2025-12-01).

azure-mgmt-securityinsight is pinned to 2021-10-01, so this speaks REST through azure-core's own
`PipelineClient`: a bearer token for the ARM audience (`{settings.arm_endpoint}/.default`, never the
host the requests go to, so a test server cannot change the scope) and azure-core's `RetryPolicy`.

Who retries what (one owner per failure):

* **azure-core's RetryPolicy** owns HTTP-level retries: GET and PUT on 408/429/5xx and read or
  connection failures, honouring `Retry-After`. Listing entities is a read that ARM exposes as a
  POST, so that one call opts POST into the same policy (`retry_on_methods`). A `Retry-After`
  longer than `retry_after_max` is not slept: it surfaces as `TransientUpstreamError` at once
  (the shared `common.azure_retry.bounded_retry_policy`, also used by Log Analytics).
* **tenacity** owns only what azure-core never retries, 409 and 412 (the incident was being changed
  by someone else), on the two writes: `write_comment` PUTs the same comment again, and
  `update_incident` does the whole GET, merge, PUT again (a 412 means someone changed the incident
  between our GET and PUT, which no HTTP retry can fix), a bounded number of times.

What is still failing after its owner's budget surfaces as `TransientUpstreamError`, and the
orchestration's retry options reschedule the whole activity later (minutes, on a durable timer,
holding no worker); a write that fails for good ends the run Failed, and the next delivery of the
incident writes it again.

Failures become `UpstreamError` (or `TransientUpstreamError` for throttling, 5xx and timeouts)
with a hint an operator can act on. Nothing Azure is imported until an adapter is created.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from common.azure_retry import bounded_retry_policy
from common.credentials import default_credential
from common.errors import SettingsError, TransientUpstreamError, UpstreamError
from common.settings import Settings
from playbooks.domain.incident import SentinelIncident

if TYPE_CHECKING:
    from azure.core import PipelineClient
    from azure.core.credentials import TokenCredential
    from azure.core.rest import HttpResponse

SERVICE = "Sentinel"
API_VERSION = "2025-12-01"

HINT_ACCESS = (
    "grant the Function App's managed identity 'Microsoft Sentinel Responder' on the workspace or its resource group "
    "(role assignments can take up to 60 minutes to apply)"
)
HINT_NOT_FOUND = "the incident or its workspace was not found: check that the Logic App sends an incident of this app's workspace"
HINT_THROTTLED = "Azure Resource Manager is throttling this identity; run the playbook again later"
HINT_UNAVAILABLE = "Sentinel (Azure Resource Manager) is failing or unreachable; run the playbook again later"
HINT_CREDENTIAL = (
    "no token for Azure Resource Manager: check the Function App's managed identity and AZURE_CLIENT_ID (or az login locally)"
)
HINT_CONFLICT = "the incident kept changing while it was written to; run the playbook again"


@dataclass(frozen=True, slots=True)
class SentinelRetries:
    """Retry and timeout bounds (see the module docstring); tests shrink them to milliseconds."""

    sdk_total: int = 4
    sdk_backoff_factor: float = 0.8
    sdk_backoff_max: float = 30.0
    retry_after_max: float = 60.0
    connection_timeout: float = 10.0
    read_timeout: float = 60.0
    conflict_attempts: int = 4
    conflict_wait_initial: float = 0.5
    conflict_wait_max: float = 4.0


@dataclass(frozen=True, slots=True)
class IncidentResource:
    """An incident as read for an update: its etag and its properties."""

    etag: str
    properties: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CommentWrite:
    """The outcome of an upsert: `created` is False when an existing comment was replaced."""

    comment_id: str
    created: bool


class _Conflict(TransientUpstreamError):
    """HTTP 409 or 412 on a write: write again (re-read and merge first, for the incident); the one thing tenacity retries here."""


def arm_scope(arm_endpoint: str) -> str:
    """The token scope of an ARM audience: `https://management.azure.com/.default` for the public cloud."""
    return arm_endpoint.rstrip("/") + "/.default"


def _retry_policy(retries: SentinelRetries) -> Any:
    """azure-core's RetryPolicy, except that it will not sleep a Retry-After beyond the cap."""
    return bounded_retry_policy(
        total=retries.sdk_total,
        backoff_factor=retries.sdk_backoff_factor,
        backoff_max=retries.sdk_backoff_max,
        retry_after_max=retries.retry_after_max,
    )


class SentinelIncidents:
    """Incident reads and writes for one ARM endpoint; `create` builds it, tests may pass a client."""

    def __init__(self, client: PipelineClient[Any, Any], base_url: str, *, retries: SentinelRetries) -> None:
        self._client = client
        self._base_url = base_url.rstrip("/")
        self._retries = retries

    @classmethod
    def create(
        cls,
        settings: Settings,
        credential: TokenCredential | None = None,
        *,
        endpoint: str | None = None,
        connection_verify: bool | str = True,
        retries: SentinelRetries | None = None,
    ) -> SentinelIncidents:
        """
        An adapter for `settings.arm_endpoint` (or `endpoint`, where requests go instead).

        The token scope always comes from `settings.arm_endpoint`. Without a credential the
        Function App's managed identity is used (the user-assigned one named by AZURE_CLIENT_ID
        when set, else DefaultAzureCredential).
        """
        from azure.core import PipelineClient
        from azure.core.pipeline.policies import (
            BearerTokenCredentialPolicy,
            HeadersPolicy,
            RequestIdPolicy,
            UserAgentPolicy,
        )
        from azure.core.pipeline.transport import RequestsTransport

        if not settings.arm_endpoint:
            raise SettingsError(["REPLAY_ARM_ENDPOINT: required to write to Sentinel"])
        if credential is None:
            credential = default_credential(settings)
        chosen = retries or SentinelRetries()
        policies = [
            RequestIdPolicy(),
            HeadersPolicy({"Accept": "application/json"}),
            UserAgentPolicy(base_user_agent="token-replay-playbook"),
            _retry_policy(chosen),
            BearerTokenCredentialPolicy(credential, arm_scope(settings.arm_endpoint)),
        ]
        base_url = (endpoint or settings.arm_endpoint).rstrip("/")
        client: PipelineClient[Any, Any] = PipelineClient(
            base_url, policies=policies, transport=RequestsTransport(connection_verify=connection_verify)
        )
        return cls(client, base_url, retries=chosen)

    def close(self) -> None:
        self._client.close()

    # -- operations ------------------------------------------------------------------------------

    def get_incident(self, incident: SentinelIncident) -> IncidentResource:
        """The incident's current etag and properties."""
        body = self._call("GET", incident.resource_id, "read the incident")
        properties = body.get("properties")
        if not isinstance(properties, dict):
            raise UpstreamError(SERVICE, "the incident came back without properties", hint=HINT_UNAVAILABLE)
        return IncidentResource(str(body.get("etag") or ""), properties)

    def list_entities(self, incident: SentinelIncident) -> list[dict[str, Any]]:
        """The incident's entities (`POST .../entities`), as ARM entity objects."""
        body = self._call("POST", incident.resource_id + "/entities", "list the incident's entities", retry_post=True)
        entities = body.get("entities")
        if not isinstance(entities, list):
            raise UpstreamError(SERVICE, "the entities answer has no 'entities' list", hint=HINT_UNAVAILABLE)
        return [e for e in entities if isinstance(e, dict)]

    def write_comment(self, incident: SentinelIncident, comment_id: str, message: str) -> CommentWrite:
        """
        Write the comment `comment_id`. Each record has its own deterministic id, so a retried write
        of the same record lands on the same comment (`created` is then False) instead of adding a
        duplicate; 409 and 412 are written again within the conflict budget.
        """
        path = f"{incident.resource_id}/comments/{quote(comment_id, safe='')}"
        body = {"properties": {"message": message}}
        for attempt in self._conflicts():
            with attempt:
                status, _body = self._call_status("PUT", path, "write the incident comment", body)
                return CommentWrite(comment_id, created=status == 201)
        msg = "unreachable: tenacity returned without an attempt"
        raise AssertionError(msg)

    def update_incident(self, incident: SentinelIncident, change: Callable[[Mapping[str, Any]], dict[str, Any] | None]) -> bool:
        """
        GET, apply `change` to the properties, PUT back with the etag; True if anything was written.

        `change` returns None when the incident already says what we want (no PUT, no etag churn).
        On 409 or 412 the whole read-merge-write is repeated, so a label someone added meanwhile is kept.
        """
        for attempt in self._conflicts():
            with attempt:
                current = self.get_incident(incident)
                updated = change(current.properties)
                if updated is None:
                    return False
                body: dict[str, Any] = {"properties": updated}
                if current.etag:
                    body["etag"] = current.etag
                self._call_status("PUT", incident.resource_id, "update the incident", body)
        return True

    # -- plumbing ----------------------------------------------------------------------------------

    def _conflicts(self) -> Any:
        """tenacity's attempts for a write that met 409 or 412: bounded, jittered, the last error re-raised."""
        import tenacity

        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self._retries.conflict_attempts),
            wait=tenacity.wait_exponential_jitter(
                multiplier=self._retries.conflict_wait_initial,
                max=self._retries.conflict_wait_max,
                jitter=self._retries.conflict_wait_initial,
            ),
            retry=tenacity.retry_if_exception_type(_Conflict),
            reraise=True,
        )

    def _call(self, method: str, path: str, what: str, body: object = None, *, retry_post: bool = False) -> dict[str, Any]:
        _status, parsed = self._call_status(method, path, what, body, retry_post=retry_post)
        return parsed

    def _call_status(
        self, method: str, path: str, what: str, body: object = None, *, retry_post: bool = False
    ) -> tuple[int, dict[str, Any]]:
        from azure.core.exceptions import AzureError, ClientAuthenticationError, ServiceRequestError, ServiceResponseError
        from azure.core.rest import HttpRequest

        request = HttpRequest(
            method,
            self._base_url + path,
            params={"api-version": API_VERSION},
            json=body,
        )
        options: dict[str, Any] = {
            "connection_timeout": self._retries.connection_timeout,
            "read_timeout": self._retries.read_timeout,
        }
        if retry_post:
            options["retry_on_methods"] = frozenset({"GET", "PUT", "POST"})
        try:
            response = self._client.send_request(request, **options)
            response.read()
        except ClientAuthenticationError as error:
            raise UpstreamError(SERVICE, f"could not {what}: no token ({_first_line(error)})", hint=HINT_CREDENTIAL) from error
        except (ServiceRequestError, ServiceResponseError) as error:
            raise TransientUpstreamError(SERVICE, f"could not {what}: {_first_line(error)}", hint=HINT_UNAVAILABLE) from error
        except AzureError as error:
            raise TransientUpstreamError(SERVICE, f"could not {what}: {_first_line(error)}", hint=HINT_UNAVAILABLE) from error
        status = response.status_code
        if status >= 400:
            raise _failure(response, what)
        try:
            parsed = json.loads(response.text()) if response.content else {}
        except ValueError as error:
            raise UpstreamError(
                SERVICE, f"could not {what}: the answer is not JSON", status=status, hint=HINT_UNAVAILABLE
            ) from error
        return status, parsed if isinstance(parsed, dict) else {}


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


def _arm_message(response: HttpResponse) -> str:
    try:
        body = json.loads(response.text())
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            return f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")[:300]
    except ValueError:
        pass
    return response.reason or f"HTTP {response.status_code}"


def _failure(response: HttpResponse, what: str) -> UpstreamError:
    status = response.status_code
    message = f"could not {what}: {_arm_message(response)}"
    if status in (409, 412):
        return _Conflict(SERVICE, message, status=status, hint=HINT_CONFLICT)
    if status in (401, 403):
        return UpstreamError(SERVICE, message, status=status, hint=HINT_ACCESS)
    if status == 404:
        return UpstreamError(SERVICE, message, status=status, hint=HINT_NOT_FOUND)
    if status == 429:
        return TransientUpstreamError(SERVICE, message, status=status, hint=HINT_THROTTLED)
    if status >= 500 or status == 408:
        return TransientUpstreamError(SERVICE, message, status=status, hint=HINT_UNAVAILABLE)
    return UpstreamError(SERVICE, message, status=status, hint="Sentinel refused the request; report the message")
