"""The Graph adapter through the real msgraph-sdk client against a local Graph endpoint."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from common.errors import TransientUpstreamError
from common.settings import Settings
from playbooks.adapters.graph import AuthMethod, GraphDirectory, GraphError, TransientGraphError, create_graph_directory
from tests.fakes.graph_server import FakeCredential, FakeGraph, running

USER = "11111111-2222-3333-4444-555555555555"
UPN = "victim@contoso.com"
GROUP = "0f0f0f0f-1111-2222-3333-444444444444"
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with running() as fake:
        fake.add_user(USER, UPN)
        yield fake


@pytest.fixture
def credential() -> FakeCredential:
    return FakeCredential()


def settings_for(graph: FakeGraph) -> Settings:
    return Settings.from_values({"REPLAY_GRAPH_ENDPOINT": graph.base_url})


@pytest.fixture
async def directory(graph: FakeGraph, credential: FakeCredential) -> AsyncIterator[GraphDirectory]:
    adapter = create_graph_directory(settings_for(graph), credential=credential)
    yield adapter
    await adapter.close()


class TestCalls:
    async def test_get_user_by_id_or_upn_reads_the_fields_containment_needs(
        self, graph: FakeGraph, directory: GraphDirectory
    ) -> None:
        """GET /users/{id} with $select; the UPN works as the id; the reply carries Graph's request-id."""
        by_id = await directory.get_user(USER)
        by_upn = await directory.get_user(UPN)
        assert by_id.value == by_upn.value
        assert (by_id.value.object_id, by_id.value.upn, by_id.value.account_enabled) == (USER, UPN, True)
        first = graph.calls("GET", "^/users/")[0]
        assert first.query["$select"] == ["id,userPrincipalName,accountEnabled,userType"]
        assert by_id.request_id == first.request_id

    async def test_identify_reads_the_id_and_upn_without_the_user_model(
        self, graph: FakeGraph, directory: GraphDirectory
    ) -> None:
        """The bot's read selects id and userPrincipalName, by id or UPN; an unknown user is a not-found GraphError."""
        reply = await directory.identify(USER)
        by_upn = await directory.identify(UPN)
        assert (reply.value.object_id, reply.value.upn) == (USER, UPN)
        assert by_upn.value == reply.value
        call = graph.calls("GET", "^/users/")[0]
        assert call.query["$select"] == ["id,userPrincipalName"]
        assert reply.request_id == call.request_id
        with pytest.raises(GraphError) as missing:
            await directory.identify("99999999-2222-3333-4444-555555555555")
        assert missing.value.not_found

    async def test_token_is_for_the_graph_scope_and_sent_as_bearer(
        self, graph: FakeGraph, directory: GraphDirectory, credential: FakeCredential
    ) -> None:
        """The credential is asked for https://graph.microsoft.com/.default only, never the test host."""
        await directory.get_user(USER)
        assert set(credential.scopes) == {("https://graph.microsoft.com/.default",)}
        assert graph.requests[0].headers["authorization"] == "Bearer dummy-graph-token"

    async def test_revoke_posts_revoke_sign_in_sessions(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """POST /users/{id}/revokeSignInSessions; Graph's {"value": true} becomes True."""
        reply = await directory.revoke_sessions(USER)
        assert reply.value is True
        (call,) = graph.calls("POST", "revokeSignInSessions")
        assert call.path == f"/users/{USER}/revokeSignInSessions"
        assert reply.request_id == call.request_id

    async def test_methods_are_listed_with_kind_label_and_creation_time_across_pages(
        self, graph: FakeGraph, directory: GraphDirectory
    ) -> None:
        """Kinds come from @odata.type, labels from the kind's own property, paging follows @odata.nextLink."""
        graph.page_size = 2
        graph.add_method(USER, "password", "pw", createdDateTime="2024-01-02T03:04:05Z")
        graph.add_method(
            USER,
            "microsoftAuthenticator",
            "ma",
            displayName="Pixel 8",
            deviceTag="SoftwareTokenActivated",
            createdDateTime="2026-06-15T16:03:00Z",
        )
        graph.add_method(
            USER, "phone", "ph", phoneNumber="+1 206 555 0100", phoneType="mobile", smsSignInState="notAllowedByPolicy"
        )
        reply = await directory.list_auth_methods(USER)
        assert [(m.id, m.kind, m.label) for m in reply.value] == [
            ("pw", "password", ""),
            ("ma", "microsoftAuthenticator", "Pixel 8"),
            ("ph", "phone", "+1 206 555 0100"),
        ]
        assert reply.value[1].created_at is not None
        assert reply.value[1].created_at.isoformat() == "2026-06-15T16:03:00+00:00"
        assert reply.value[2].created_at is None
        assert len(graph.calls("GET", "authentication/methods")) == 2

    async def test_hostile_display_names_are_kept_as_data(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """Markup and control characters an attacker puts in a method name come back unchanged."""
        hostile = '<img src=x onerror="alert(1)">\u202e | **bold** [x](javascript:1)'
        graph.add_method(USER, "fido2", "f1", displayName=hostile, model="YubiKey 5")
        (method,) = (await directory.list_auth_methods(USER)).value
        assert method.label == hostile

    async def test_membership_is_checked_with_check_member_groups(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """POST checkMemberGroups with the group id: True when Graph returns it, False otherwise."""
        assert (await directory.is_member_of(GROUP, USER)).value is False
        graph.add_member(GROUP, USER)
        assert (await directory.is_member_of(GROUP.upper(), USER)).value is True
        assert graph.calls("POST", "checkMemberGroups")[-1].body == {"groupIds": [GROUP]}

    async def test_roles_are_read_with_a_principal_filter_and_expanded_definitions(
        self, graph: FakeGraph, directory: GraphDirectory
    ) -> None:
        """GET roleAssignments?$filter=principalId eq '{id}'&$expand=roleDefinition; names and template ids."""
        graph.assign_role(USER, GLOBAL_ADMIN, "Global Administrator")
        reply = await directory.privileged_roles(USER.upper())
        assert [(r.template_id, r.name) for r in reply.value] == [(GLOBAL_ADMIN, "Global Administrator")]
        (call,) = graph.calls("GET", "roleAssignments")
        assert call.query == {"$filter": [f"principalId eq '{USER}'"], "$expand": ["roleDefinition"]}

    async def test_confirm_compromised_sends_the_user_ids(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """POST identityProtection/riskyUsers/confirmCompromised {"userIds": [...]} (204)."""
        reply = await directory.confirm_compromised(USER)
        assert reply.value is None
        assert reply.request_id
        assert graph.calls("POST", "confirmCompromised")[0].body == {"userIds": [USER]}
        assert graph.confirmed == [USER]

    async def test_disable_patches_account_enabled_false(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """PATCH /users/{id} changing accountEnabled to false and nothing else."""
        await directory.disable_account(USER)
        (call,) = graph.calls("PATCH", "^/users/")
        assert call.body == {"@odata.type": "#microsoft.graph.user", "accountEnabled": False}
        assert (await directory.get_user(USER)).value.account_enabled is False

    @pytest.mark.parametrize(
        ("kind", "collection"),
        [
            ("microsoftAuthenticator", "microsoftAuthenticatorMethods"),
            ("phone", "phoneMethods"),
            ("fido2", "fido2Methods"),
            ("email", "emailMethods"),
            ("softwareOath", "softwareOathMethods"),
            ("temporaryAccessPass", "temporaryAccessPassMethods"),
            ("windowsHelloForBusiness", "windowsHelloForBusinessMethods"),
            ("platformCredential", "platformCredentialMethods"),
        ],
    )
    async def test_delete_uses_the_kinds_endpoint(
        self, graph: FakeGraph, directory: GraphDirectory, kind: str, collection: str
    ) -> None:
        """Each method kind is deleted through its own collection (DELETE .../{kind}Methods/{id})."""
        graph.add_method(USER, kind, "m-1")
        await directory.delete_auth_method(USER, AuthMethod("m-1", kind))
        (call,) = graph.calls("DELETE")
        assert call.path == f"/users/{USER}/authentication/{collection}/m-1"
        assert graph.methods[USER] == []

    async def test_password_cannot_be_deleted_and_nothing_is_sent(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """The password method has no delete endpoint: refused before any request."""
        with pytest.raises(ValueError, match="password method cannot be deleted"):
            await directory.delete_auth_method(USER, AuthMethod("pw", "password"))
        assert graph.requests == []

    @pytest.mark.parametrize("user_id", ["a/../../groups", "victim@contoso.com?$select=x", "a#b", "x y", ""])
    async def test_ids_that_would_change_the_path_are_refused_before_sending(
        self, graph: FakeGraph, directory: GraphDirectory, user_id: str
    ) -> None:
        """Input never reshapes the request: path separators, queries and quotes are refused."""
        with pytest.raises(ValueError, match="not a user id"):
            await directory.get_user(user_id)
        assert graph.requests == []

    async def test_upn_with_an_apostrophe_is_a_valid_id(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """O'Brien's UPN is legal and reaches Graph unchanged as the path id."""
        graph.add_user("33333333-2222-3333-4444-555555555555", "o'brien@contoso.com")
        assert (await directory.get_user("o'brien@contoso.com")).value.upn == "o'brien@contoso.com"
        assert graph.requests[-1].path == "/users/o'brien@contoso.com"

    async def test_role_filter_only_takes_an_object_id(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """The $filter is built from a validated GUID only; a UPN or an injection attempt is refused."""
        for value in (UPN, f"{USER}' or principalId ne '"):
            with pytest.raises(ValueError, match="not an Entra object id"):
                await directory.privileged_roles(value)
        assert graph.requests == []

    async def test_concurrent_calls_keep_their_own_request_ids(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """Two calls in flight at once each report the request-id of their own response."""
        graph.add_user("22222222-2222-3333-4444-555555555555", "other@contoso.com")
        first, second = await asyncio.gather(directory.get_user(USER), directory.get_user("other@contoso.com"))
        ids = {call.path: call.request_id for call in graph.calls("GET")}
        assert first.request_id == ids[f"/users/{USER}"]
        assert second.request_id == ids["/users/other@contoso.com"]

    async def test_close_releases_the_credential(self, graph: FakeGraph, credential: FakeCredential) -> None:
        """close() closes the credential the adapter was given."""
        adapter = create_graph_directory(settings_for(graph), credential=credential)
        await adapter.get_user(USER)
        await adapter.close()
        assert credential.closed


class TestRetriesBelongToTheSdk:
    async def test_429_with_retry_after_is_retried_once_by_kiota(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """A 429 with Retry-After: 1 is retried by the SDK after about a second, and the call succeeds."""
        graph.fail("POST", "revokeSignInSessions", 429, retry_after=1)
        started = time.monotonic()
        reply = await directory.revoke_sessions(USER)
        elapsed = time.monotonic() - started
        first, second = graph.calls("POST", "revokeSignInSessions")
        assert (first.status, second.status) == (429, 200)
        assert second.headers["retry-attempt"] == "1"
        assert second.at - first.at >= 0.9
        assert elapsed < 2.5
        assert reply.request_id == second.request_id

    async def test_503_with_retry_after_is_retried(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """A 503 is one of kiota's retried statuses: the second attempt answers."""
        graph.fail("GET", "authentication/methods", 503, retry_after=1)
        await directory.list_auth_methods(USER)
        assert [c.status for c in graph.calls("GET", "authentication/methods")] == [503, 200]

    async def test_persistent_503_is_transient_after_the_sdks_attempts_only(
        self, graph: FakeGraph, credential: FakeCredential
    ) -> None:
        """With one SDK retry configured, two requests are made and a TransientGraphError surfaces."""
        graph.fail("POST", "revokeSignInSessions", 503, retry_after=1, times=5)
        adapter = create_graph_directory(settings_for(graph), credential=credential, max_retries=1)
        try:
            with pytest.raises(TransientGraphError) as caught:
                await adapter.revoke_sessions(USER)
        finally:
            await adapter.close()
        assert isinstance(caught.value, TransientUpstreamError)
        assert caught.value.status == 503
        assert len(graph.calls("POST", "revokeSignInSessions")) == 2
        assert caught.value.request_id == graph.requests[-1].request_id

    async def test_a_stalled_graph_is_a_transient_timeout(self, graph: FakeGraph, credential: FakeCredential) -> None:
        """No answer within the client timeout becomes a TransientGraphError, not a hang."""
        graph.fail("GET", "^/users/", 200, delay=1.5)
        adapter = create_graph_directory(settings_for(graph), credential=credential, timeout_seconds=0.3)
        try:
            with pytest.raises(TransientGraphError, match="timed out"):
                await adapter.get_user(USER)
        finally:
            await adapter.close()


class TestErrors:
    async def test_403_names_the_missing_permission_for_the_operation(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """Authorization_RequestDenied on revoke names User.RevokeSessions.All, with Graph's request-id."""
        graph.fail("POST", "revokeSignInSessions", 403)
        with pytest.raises(GraphError) as caught:
            await directory.revoke_sessions(USER)
        error = caught.value
        assert (error.status, error.code, error.forbidden) == (403, "Authorization_RequestDenied", True)
        assert error.missing_permissions == ("User.RevokeSessions.All",)
        assert "grant the Microsoft Graph application permission User.RevokeSessions.All" in error.hint
        assert error.request_id == graph.requests[-1].request_id
        assert not isinstance(error, TransientUpstreamError)

    @pytest.mark.parametrize(
        ("method", "path", "call", "permission"),
        [
            ("GET", "authentication/methods", "list_auth_methods", "UserAuthenticationMethod.Read.All"),
            ("PATCH", "^/users/", "disable_account", "User.EnableDisableAccount.All"),
            ("GET", "^/users/", "get_user", "User.Read.All"),
        ],
    )
    async def test_each_operation_names_its_own_permission(
        self, graph: FakeGraph, directory: GraphDirectory, method: str, path: str, call: str, permission: str
    ) -> None:
        """The permission named on a 403 is the one the failing operation needs."""
        graph.fail(method, path, 403)
        with pytest.raises(GraphError) as caught:
            await getattr(directory, call)(USER)
        assert permission in caught.value.missing_permissions

    async def test_404_is_user_not_found(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """An unknown user is a GraphError with not_found and a plain message."""
        with pytest.raises(GraphError, match=r"user not found: ghost@contoso\.com") as caught:
            await directory.revoke_sessions("ghost@contoso.com")
        assert caught.value.not_found
        assert caught.value.code == "Request_ResourceNotFound"
        assert caught.value.request_id == graph.requests[-1].request_id

    async def test_deleting_a_method_that_is_gone_is_not_found(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """A 404 on delete says the method is already gone, so containment can count it as done."""
        with pytest.raises(GraphError, match="already deleted") as caught:
            await directory.delete_auth_method(USER, AuthMethod("gone", "phone"))
        assert caught.value.not_found

    async def test_500_without_retry_is_transient(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """kiota does not retry a 500; it surfaces once as a transient error for the orchestrator."""
        graph.fail("GET", "^/users/", 500)
        with pytest.raises(TransientGraphError):
            await directory.get_user(USER)
        assert len(graph.requests) == 1


def test_importing_the_adapter_does_not_import_the_graph_sdk() -> None:
    """playbooks.adapters.graph is cheap to import: msgraph, kiota and azure.identity load only when a client is built."""
    code = "import sys, playbooks.adapters.graph, playbooks.services.containment; print(sorted(m for m in sys.modules if m.split('.')[0] in ('msgraph', 'msgraph_core', 'kiota_http', 'kiota_abstractions') or m.startswith('azure.identity')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2])
    assert out.stdout.strip() == "[]"
