"""The Graph adapter through the real msgraph-sdk client against a local Graph endpoint."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from common.errors import TransientUpstreamError
from common.settings import Settings
from enrichment.domain.identity import Facet
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_importing_the_adapter_does_not_import_the_graph_sdk() -> None:
    """playbooks.adapters.graph is cheap to import: msgraph, kiota and azure.identity load only when a client is built."""
    code = "import sys, playbooks.adapters.graph, playbooks.services.containment; print(sorted(m for m in sys.modules if m.split('.')[0] in ('msgraph', 'msgraph_core', 'kiota_http', 'kiota_abstractions') or m.startswith('azure.identity')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2])
    assert out.stdout.strip() == "[]"


DEVICE = "d0d0d0d0-1111-2222-3333-444444444444"
MANAGER = "99999999-2222-3333-4444-555555555555"


class TestFullerContainmentCalls:
    async def test_password_change_patches_only_the_password_profile(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """PATCH /users/{id} {passwordProfile: {forceChangePasswordNextSignIn: true}}: no password is sent."""
        reply = await directory.require_password_change(USER)
        (call,) = graph.calls("PATCH", "^/users/")
        assert call.body["passwordProfile"] == {"forceChangePasswordNextSignIn": True}
        assert set(call.body) == {"@odata.type", "passwordProfile"}
        assert reply.request_id == call.request_id

    async def test_password_change_403_names_the_password_profile_permission(
        self, graph: FakeGraph, directory: GraphDirectory
    ) -> None:
        """A refusal names User-PasswordProfile.ReadWrite.All, not the broad User.ReadWrite.All."""
        graph.fail("PATCH", "^/users/", 403)
        with pytest.raises(GraphError) as caught:
            await directory.require_password_change(USER)
        assert caught.value.missing_permissions == ("User-PasswordProfile.ReadWrite.All",)
        assert "User-PasswordProfile.ReadWrite.All" in caught.value.hint

    async def test_registered_devices_are_listed_with_their_registration_time_across_pages(
        self, graph: FakeGraph, directory: GraphDirectory
    ) -> None:
        """GET registeredDevices with $select; typed devices with name, OS, trust type and registration time."""
        graph.page_size = 1
        graph.add_device(
            USER,
            DEVICE,
            "DESKTOP-ATTACK",
            operatingSystem="Windows",
            registrationDateTime="2026-06-15T15:52:00Z",
            trustType="Workplace",
            accountEnabled=True,
        )
        graph.add_device(USER, "d1d1d1d1-1111-2222-3333-444444444444", "Own laptop", operatingSystem="Windows")
        reply = await directory.list_registered_devices(USER)
        first = reply.value[0]
        assert (first.id, first.name, first.operating_system, first.trust_type, first.enabled) == (
            DEVICE,
            "DESKTOP-ATTACK",
            "Windows",
            "Workplace",
            True,
        )
        assert first.registered_at is not None
        assert first.registered_at.isoformat() == "2026-06-15T15:52:00+00:00"
        assert [d.name for d in reply.value] == ["DESKTOP-ATTACK", "Own laptop"]
        calls = graph.calls("GET", "registeredDevices")
        assert len(calls) == 2
        assert calls[0].query["$select"] == [
            "id,deviceId,displayName,operatingSystem,registrationDateTime,accountEnabled,trustType"
        ]

    async def test_device_is_deleted_by_its_object_id_and_a_second_delete_is_not_found(
        self, graph: FakeGraph, directory: GraphDirectory
    ) -> None:
        """DELETE /devices/{id} (204); the same again is a 404 the caller can count as done."""
        graph.add_device(USER, DEVICE, "DESKTOP-ATTACK")
        device = (await directory.list_registered_devices(USER)).value[0]
        await directory.delete_device(device)
        assert graph.calls("DELETE")[0].path == f"/devices/{DEVICE}"
        assert graph.devices == {}
        with pytest.raises(GraphError, match="already deleted") as caught:
            await directory.delete_device(device)
        assert caught.value.not_found

    async def test_device_delete_403_names_device_read_write(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """A refused device delete names Device.ReadWrite.All and the containment identity."""
        graph.add_device(USER, DEVICE, "DESKTOP-ATTACK")
        device = (await directory.list_registered_devices(USER)).value[0]
        graph.fail("DELETE", "^/devices/", 403)
        with pytest.raises(GraphError) as caught:
            await directory.delete_device(device)
        assert caught.value.missing_permissions == ("Device.ReadWrite.All",)
        assert "REPLAY_CONTAINMENT_CLIENT_ID" in caught.value.hint

    async def test_inbox_rules_are_listed_with_what_they_do_and_deleted_by_id(
        self, graph: FakeGraph, directory: GraphDirectory
    ) -> None:
        """GET and DELETE mailFolders/inbox/messageRules; actions read as words (moves, deletes, forwards to whom)."""
        graph.add_rule(USER, "r-own", "Newsletters", actions={"moveToFolder": "AAMk-news"})
        graph.add_rule(
            USER,
            "r-evil",
            "..",
            actions={"delete": True, "markAsRead": True, "forwardTo": [{"emailAddress": {"address": "drop@evil.example"}}]},
        )
        rules = (await directory.list_inbox_rules(USER)).value
        assert [(r.id, r.name, r.actions) for r in rules] == [
            ("r-own", "Newsletters", ("moves to another folder",)),
            ("r-evil", "..", ("deletes", "forward to drop@evil.example", "marks as read")),
        ]
        await directory.delete_inbox_rule(USER, rules[1])
        assert graph.calls("DELETE")[0].path == f"/users/{USER}/mailFolders/inbox/messageRules/r-evil"
        assert [r["id"] for r in graph.rules[USER]] == ["r-own"]
        with pytest.raises(GraphError, match="already deleted") as caught:
            await directory.delete_inbox_rule(USER, rules[1])
        assert caught.value.not_found

    async def test_inbox_rule_403_names_mailbox_settings_read_write(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """Listing rules without the permission names MailboxSettings.ReadWrite."""
        graph.fail("GET", "messageRules", 403, code="ErrorAccessDenied", message="Access is denied.")
        with pytest.raises(GraphError) as caught:
            await directory.list_inbox_rules(USER)
        assert caught.value.missing_permissions == ("MailboxSettings.ReadWrite",)

    @pytest.mark.slow
    async def test_throttled_rule_listing_is_retried_by_the_sdk_after_retry_after(
        self, graph: FakeGraph, directory: GraphDirectory
    ) -> None:
        """A 429 with Retry-After on a new call is kiota's to retry too: one retry, then the answer."""
        graph.add_rule(USER, "r-1", "x")
        graph.fail("GET", "messageRules", 429, retry_after=1)
        assert [r.id for r in (await directory.list_inbox_rules(USER)).value] == ["r-1"]
        first, second = graph.calls("GET", "messageRules")
        assert (first.status, second.status, second.headers["retry-attempt"]) == (429, 200, "1")
        assert second.at - first.at >= 0.9


class TestIdentityContext:
    SINCE = datetime(2026, 5, 15, tzinfo=UTC)

    async def test_profile_manager_roles_and_risk_each_answered_by_graph(
        self, graph: FakeGraph, directory: GraphDirectory
    ) -> None:
        """Display name, department, title, manager, protected roles, risk level/state and recent detections."""
        graph.add_user(MANAGER, "boss@contoso.com", displayName="Ana Boss")
        graph.users[USER.lower()].update(displayName="Vic Tim", department="Finance", jobTitle="CFO", manager=MANAGER)
        graph.assign_role(USER, GLOBAL_ADMIN, "Global Administrator")
        graph.assign_role(USER, "88d8e3e3-8f55-4a1e-953a-9b9898b8876b", "Directory Readers")
        graph.set_risk(USER, "high", "atRisk")
        graph.add_detection(USER, "anomalousToken", "high", "2026-06-15T15:55:00+00:00", "203.0.113.9")
        graph.add_detection(USER, "unfamiliarFeatures", "medium", "2026-06-15T15:40:00+00:00")
        context = await directory.identity_context(USER, since=self.SINCE)
        assert (context.display_name, context.department, context.job_title, context.manager) == (
            "Vic Tim",
            "Finance",
            "CFO",
            "Ana Boss",
        )
        assert context.privileged_roles == ("Global Administrator",)
        assert (context.risk_level, context.risk_state) == ("high", "atRisk")
        assert [(d.kind, d.level, d.ip) for d in context.risk_detections] == [
            ("anomalousToken", "high", "203.0.113.9"),
            ("unfamiliarFeatures", "medium", ""),
        ]
        assert [(a.facet, a.source, a.problem) for a in context.answers] == [
            (Facet.PROFILE, "Microsoft Graph", ""),
            (Facet.ROLES, "Microsoft Graph", ""),
            (Facet.RISK, "Microsoft Graph", ""),
        ]
        profile = graph.calls("GET", f"^/users/{USER}$")[0]
        assert profile.query["$expand"] == ["manager($select=displayName)"]
        (detections,) = graph.calls("GET", "riskDetections")
        assert detections.query["$filter"] == [f"userId eq '{USER}' and detectedDateTime ge 2026-05-15T00:00:00Z"]

    async def test_a_user_without_risk_is_answered_none_not_unknown(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """riskyUsers/{id} answering 404 means Entra ID Protection holds no risk: answered, level none."""
        context = await directory.identity_context(UPN, since=self.SINCE)
        assert (context.risk_level, context.risk_state, context.risk_detections) == ("none", "none", ())
        assert context.unanswered == ()

    async def test_a_403_on_risk_names_the_missing_permission_and_keeps_the_other_facets(
        self, graph: FakeGraph, directory: GraphDirectory
    ) -> None:
        """Without IdentityRiskyUser.Read.All the risk facet carries the problem naming it; profile and roles still answer."""
        graph.fail("GET", "riskyUsers/", 403)
        context = await directory.identity_context(USER, since=self.SINCE)
        risk = context.answer(Facet.RISK)
        assert risk is not None
        assert not risk.answered
        assert "grant the Microsoft Graph application permission IdentityRiskyUser.Read.All" in risk.problem
        assert "IdentityRiskEvent.Read.All" not in risk.problem
        assert context.unanswered == (Facet.RISK,)

    async def test_a_403_on_detections_names_identity_risk_event_read(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """The detections read names its own permission, IdentityRiskEvent.Read.All."""
        graph.fail("GET", "riskDetections", 403)
        context = await directory.identity_context(USER, since=self.SINCE)
        risk = context.answer(Facet.RISK)
        assert risk is not None
        assert "IdentityRiskEvent.Read.All" in risk.problem

    async def test_an_unreadable_profile_leaves_roles_and_risk_to_the_object_id(
        self, graph: FakeGraph, directory: GraphDirectory
    ) -> None:
        """Known only by UPN and the profile refused: every facet says why, nothing is guessed."""
        graph.fail("GET", "^/users/", 403)
        context = await directory.identity_context(UPN, since=self.SINCE)
        assert context.unanswered == (Facet.PROFILE, Facet.ROLES, Facet.RISK)
        profile = context.answer(Facet.PROFILE)
        assert profile is not None
        assert "User.Read.All" in profile.problem
        assert graph.calls("GET", "riskyUsers") == []
