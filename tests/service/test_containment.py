"""Containment of an approved plan: the real Graph adapter against a local Graph endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from common.settings import Settings
from enrichment.domain.model import Account, Assessment, Baseline, SecurityEvent, SignIn, Table, TimeWindow, UserEvidence, Verdict
from playbooks.adapters.graph import GraphDirectory, create_graph_directory
from playbooks.domain.footholds import AttackerForwarding, AttackerInboxRule
from playbooks.domain.plan import ActionKind, ActionStatus, ContainmentPlan, Decision, attack_disruption, plan_containment
from playbooks.services.containment import ContainmentReport, contain
from tests.fakes.graph_server import FakeCredential, FakeGraph, running

USER = "11111111-2222-3333-4444-555555555555"
UPN = "victim@contoso.com"
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
SUSPECT_IP = "203.0.113.9"
HOME_IP = "198.51.100.7"
AT = datetime(2026, 6, 15, 16, 0, tzinfo=UTC)
NOW = AT + timedelta(hours=1)
ALL_OPTIONAL = "confirm_compromised,disable_account,delete_flagged_methods"

SUSPECT = Account(UPN, USER)
ASSESSMENT = Assessment(92, Verdict.REPLAY_LIKELY, (), (), (SUSPECT_IP,))


def evidence(account: Account = SUSPECT) -> UserEvidence:
    """A replay: home sign-ins all day, the suspect IP from 15:40, and a method registered from it at 15:50."""
    window = TimeWindow(AT - timedelta(hours=24), AT + timedelta(hours=6))
    signins = (
        SignIn(UPN, USER, Table.INTERACTIVE, AT - timedelta(hours=6), AT - timedelta(hours=6), 1, HOME_IP, session_id="s1"),
        SignIn(UPN, USER, Table.NON_INTERACTIVE, AT - timedelta(minutes=20), AT, 14, SUSPECT_IP, session_id="s1"),
    )
    events = (
        SecurityEvent(AT - timedelta(minutes=10), "User registered security info", "success", UPN, SUSPECT_IP, UPN),
        SecurityEvent(AT - timedelta(days=300), "User registered security info", "success", UPN, HOME_IP, UPN),
    )
    return UserEvidence(account, AT, window, signins, Baseline(window), security_events=events)


def plan_for(optional: str = "", account: Account = SUSPECT) -> ContainmentPlan:
    settings = Settings.from_values({"REPLAY_OPTIONAL_ACTIONS": optional} if optional else {})
    return plan_containment("INC-7", account, ASSESSMENT, settings)


def approval(plan: ContainmentPlan, *, approved: bool = True) -> Decision:
    return Decision(
        approved, plan.digest, "a1a1a1a1-1111-2222-3333-444444444444", "analyst@contoso.com", AT + timedelta(minutes=30)
    )


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with running() as fake:
        fake.add_user(USER, UPN)
        fake.add_method(USER, "password", "pw", createdDateTime="2023-01-01T00:00:00Z")
        fake.add_method(USER, "microsoftAuthenticator", "old", displayName="Own iPhone", createdDateTime="2025-08-19T09:00:00Z")
        fake.add_method(
            USER, "microsoftAuthenticator", "new", displayName="Pixel <b>7</b>", createdDateTime="2026-06-15T15:51:30Z"
        )
        fake.add_method(USER, "phone", "ph", phoneNumber="+1 206 555 0100", phoneType="mobile")
        yield fake


@pytest.fixture
async def directory(graph: FakeGraph) -> AsyncIterator[GraphDirectory]:
    adapter = create_graph_directory(Settings.from_values({"REPLAY_GRAPH_ENDPOINT": graph.base_url}), credential=FakeCredential())
    yield adapter
    await adapter.close()


async def run(plan: ContainmentPlan, directory: GraphDirectory, **kwargs: object) -> ContainmentReport:
    decision = kwargs.pop("decision", None) or approval(plan)
    return await contain(plan, decision, evidence(), directory, NOW, assessment=ASSESSMENT, **kwargs)  # type: ignore[arg-type]


def by_kind(report: ContainmentReport) -> dict[ActionKind, tuple[ActionStatus, str, str]]:
    return {r.kind: (r.status, r.detail, r.request_id) for r in report.results}


def writes(graph: FakeGraph) -> list[str]:
    return [f"{r.method} {r.path}" for r in graph.requests if r.method != "GET" and not r.path.endswith("checkMemberGroups")]


class TestApprovedPlan:
    async def test_revokes_and_audits_flagging_only_the_attackers_method(
        self, graph: FakeGraph, directory: GraphDirectory
    ) -> None:
        """Default plan: sessions revoked, the method registered from the suspect IP flagged, the old one not."""
        report = await run(plan_for(), directory)
        results = by_kind(report)
        assert list(results) == [ActionKind.REVOKE_SESSIONS, ActionKind.AUDIT_MFA_METHODS]
        assert results[ActionKind.REVOKE_SESSIONS][0] is ActionStatus.SUCCEEDED
        assert report.audit is not None
        assert [f.method.id for f in report.audit.flagged] == ["new"]
        assert f"registered from suspect IP {SUSPECT_IP} at 2026-06-15 15:50 UTC" in report.audit.flagged[0].reasons
        status, detail, _ = results[ActionKind.AUDIT_MFA_METHODS]
        assert status is ActionStatus.SUCCEEDED
        assert detail.startswith("4 method(s) registered; 1 flagged: microsoftAuthenticator method 'Pixel <b>7</b>'")
        assert writes(graph) == [f"POST /users/{USER}/revokeSignInSessions"]

    async def test_every_result_carries_the_request_id_of_its_graph_call(
        self, graph: FakeGraph, directory: GraphDirectory
    ) -> None:
        """ActionResult.request_id is Graph's request-id header of the call that did the action."""
        results = by_kind(await run(plan_for(), directory))
        ids = {r.path: r.request_id for r in graph.requests}
        assert results[ActionKind.REVOKE_SESSIONS][2] == ids[f"/users/{USER}/revokeSignInSessions"]
        assert results[ActionKind.AUDIT_MFA_METHODS][2] == ids[f"/users/{USER}/authentication/methods"]

    async def test_optional_actions_run_only_when_planned(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """With all optional actions: confirm, disable, and delete exactly the flagged method (one listing)."""
        report = await run(plan_for(ALL_OPTIONAL), directory)
        assert all(r.status is ActionStatus.SUCCEEDED for r in report.results), report.results
        assert writes(graph) == [
            f"POST /users/{USER}/revokeSignInSessions",
            "POST /identityProtection/riskyUsers/confirmCompromised",
            f"PATCH /users/{USER}",
            f"DELETE /users/{USER}/authentication/microsoftAuthenticatorMethods/new",
        ]
        assert [m["id"] for m in graph.methods[USER]] == ["pw", "old", "ph"]
        assert len(graph.calls("GET", "authentication/methods")) == 1
        assert graph.users[USER]["accountEnabled"] is False

    async def test_the_suspect_is_found_by_upn_when_the_incident_had_no_object_id(
        self, graph: FakeGraph, directory: GraphDirectory
    ) -> None:
        """An account known only by UPN is resolved to its object id, which later calls use."""
        plan = plan_for("confirm_compromised", Account(UPN))
        report = await contain(plan, approval(plan), evidence(Account(UPN)), directory, NOW, assessment=ASSESSMENT)
        assert report.target is not None
        assert report.target.object_id == USER
        assert graph.confirmed == [USER]
        assert f"POST /users/{USER}/revokeSignInSessions" in writes(graph)

    @pytest.mark.slow
    async def test_throttling_is_absorbed_by_the_sdk(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """A 429 with Retry-After on revoke is retried by kiota; the action still succeeds."""
        graph.fail("POST", "revokeSignInSessions", 429, retry_after=1)
        results = by_kind(await run(plan_for(), directory))
        assert results[ActionKind.REVOKE_SESSIONS][0] is ActionStatus.SUCCEEDED
        assert len(graph.calls("POST", "revokeSignInSessions")) == 2


class TestPrivilegedTarget:
    async def test_refusal_on_an_administrator_is_explained_not_opaque(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """A Global Administrator target: Graph's 403 on revoke is reported with the role and what could act."""
        graph.assign_role(USER, GLOBAL_ADMIN, "Global Administrator")
        graph.refuse_sensitive(USER)
        report = await run(plan_for(ALL_OPTIONAL), directory)
        results = by_kind(report)
        status, detail, request_id = results[ActionKind.REVOKE_SESSIONS]
        assert status is ActionStatus.FAILED
        assert (
            "Graph refused: Access to invalidate refresh tokens operation is denied. (HTTP 403, Authorization_RequestDenied)"
            in detail
        )
        assert "Global Administrator" in detail
        assert "Privileged Authentication Administrator" in detail
        assert request_id == graph.calls("POST", "revokeSignInSessions")[0].request_id
        assert results[ActionKind.DISABLE_ACCOUNT][0] is ActionStatus.FAILED
        assert results[ActionKind.AUDIT_MFA_METHODS][0] is ActionStatus.SUCCEEDED
        assert results[ActionKind.CONFIRM_COMPROMISED][0] is ActionStatus.SUCCEEDED
        assert [r.name for r in report.roles] == ["Global Administrator"]
        assert any("Global Administrator" in note for note in report.notes)

    async def test_success_on_an_administrator_still_says_who_it_was(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """If the app's identity may act on admins, the action succeeds and the result notes the role."""
        graph.assign_role(USER, GLOBAL_ADMIN, "Global Administrator")
        status, detail, _ = by_kind(await run(plan_for(), directory))[ActionKind.REVOKE_SESSIONS]
        assert status is ActionStatus.SUCCEEDED
        assert detail.endswith("(note: the user holds Global Administrator)")

    async def test_unreadable_roles_do_not_stop_containment(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """Without RoleManagement.Read.Directory the role check is noted and the actions still run."""
        graph.fail("GET", "roleAssignments", 403)
        report = await run(plan_for(), directory)
        assert all(r.status is ActionStatus.SUCCEEDED for r in report.results)
        assert any(
            "could not read the user's directory roles" in note and "RoleManagement.Read.Directory" in note
            for note in report.notes
        )


class TestFailures:
    async def test_user_not_found_fails_every_action_with_the_request_id(
        self, graph: FakeGraph, directory: GraphDirectory
    ) -> None:
        """A suspect who is not in the directory: every action FAILED, nothing written."""
        plan = plan_for(ALL_OPTIONAL, Account("ghost@contoso.com"))
        report = await contain(
            plan, approval(plan), evidence(Account("ghost@contoso.com")), directory, NOW, assessment=ASSESSMENT
        )
        lookup = graph.calls("GET", "^/users/ghost")[0]
        assert {r.status for r in report.results} == {ActionStatus.FAILED}
        assert {r.detail for r in report.results} == {"not attempted: user not found in the directory (ghost@contoso.com)"}
        assert {r.request_id for r in report.results} == {lookup.request_id}
        assert writes(graph) == []

    async def test_one_failing_action_does_not_stop_the_others(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """The audit failing on a missing permission still lets revoke succeed, and names the permission."""
        graph.fail("GET", "authentication/methods", 403)
        results = by_kind(await run(plan_for(), directory))
        assert results[ActionKind.REVOKE_SESSIONS][0] is ActionStatus.SUCCEEDED
        status, detail, _ = results[ActionKind.AUDIT_MFA_METHODS]
        assert status is ActionStatus.FAILED
        assert "UserAuthenticationMethod.Read.All" in detail

    @pytest.mark.slow
    async def test_persistent_graph_outage_is_a_failed_result_not_an_exception(self, graph: FakeGraph) -> None:
        """5xx after the SDK's retries becomes a FAILED result with Graph's message."""
        graph.fail("POST", "revokeSignInSessions", 503, retry_after=1, times=3)
        adapter = create_graph_directory(
            Settings.from_values({"REPLAY_GRAPH_ENDPOINT": graph.base_url}), credential=FakeCredential(), max_retries=1
        )
        try:
            status, detail, request_id = by_kind(await run(plan_for(), adapter))[ActionKind.REVOKE_SESSIONS]
        finally:
            await adapter.close()
        assert status is ActionStatus.FAILED
        assert detail == "failed: Service unavailable. (HTTP 503, serviceNotAvailable)"
        assert request_id == graph.calls("POST", "revokeSignInSessions")[-1].request_id


class TestNothingWithoutApproval:
    async def test_rejected_plan_does_nothing(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """A rejection skips every action and sends no request."""
        plan = plan_for(ALL_OPTIONAL)
        report = await run(plan, directory, decision=approval(plan, approved=False))
        assert {(r.status, r.detail) for r in report.results} == {
            (ActionStatus.SKIPPED, "not attempted: rejected by analyst@contoso.com")
        }
        assert graph.requests == []

    async def test_decision_for_another_plan_does_nothing(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """An approval of a different digest cannot trigger this plan."""
        report = await run(plan_for(ALL_OPTIONAL), directory, decision=approval(plan_for()))
        assert {r.status for r in report.results} == {ActionStatus.SKIPPED}
        assert graph.requests == []


class TestIdempotency:
    async def test_completed_actions_are_skipped_on_redelivery(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """A second delivery with the first run's completed kinds writes nothing again."""
        plan = plan_for(ALL_OPTIONAL)
        first = await run(plan, directory)
        before = writes(graph)
        second = await run(plan, directory, completed=first.completed)
        assert writes(graph) == before
        assert {(r.status, r.detail) for r in second.results} == {
            (ActionStatus.SKIPPED, "already completed by an earlier delivery of this approval")
        }

    async def test_only_the_missing_actions_run_after_a_partial_delivery(
        self, graph: FakeGraph, directory: GraphDirectory
    ) -> None:
        """With revoke already done, the retry audits and deletes but does not revoke again."""
        report = await run(plan_for("delete_flagged_methods"), directory, completed={ActionKind.REVOKE_SESSIONS})
        results = by_kind(report)
        assert results[ActionKind.REVOKE_SESSIONS][0] is ActionStatus.SKIPPED
        assert results[ActionKind.DELETE_FLAGGED_METHODS][0] is ActionStatus.SUCCEEDED
        assert writes(graph) == [f"DELETE /users/{USER}/authentication/microsoftAuthenticatorMethods/new"]

    async def test_disabled_account_is_not_patched_again(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """accountEnabled already false: the action succeeds without a PATCH."""
        graph.users[USER]["accountEnabled"] = False
        status, detail, request_id = by_kind(await run(plan_for("disable_account"), directory))[ActionKind.DISABLE_ACCOUNT]
        assert (status, detail) == (ActionStatus.SUCCEEDED, "account already disabled; nothing changed")
        assert request_id == graph.calls("GET", f"^/users/{USER}$")[0].request_id
        assert graph.calls("PATCH") == []

    async def test_method_already_deleted_counts_as_done(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """If the flagged method disappears between listing and deleting, the 404 is success."""
        graph.fail("DELETE", "microsoftAuthenticatorMethods/new", 404, code="itemNotFound")
        status, detail, _ = by_kind(await run(plan_for("delete_flagged_methods"), directory))[ActionKind.DELETE_FLAGGED_METHODS]
        assert status is ActionStatus.SUCCEEDED
        assert detail == "microsoftAuthenticator method 'Pixel <b>7</b>' was already gone"

    async def test_nothing_flagged_means_nothing_deleted(self, graph: FakeGraph, directory: GraphDirectory) -> None:
        """Without a flagged method the delete action is skipped and sends no DELETE."""
        graph.methods[USER] = [m for m in graph.methods[USER] if m["id"] != "new"]
        status, detail, _ = by_kind(await run(plan_for("delete_flagged_methods"), directory))[ActionKind.DELETE_FLAGGED_METHODS]
        assert (status, detail) == (ActionStatus.SKIPPED, "the audit flagged no method to delete")
        assert graph.calls("DELETE") == []


ATTACKER_DEVICE = "d0d0d0d0-1111-2222-3333-444444444444"
OWN_DEVICE = "d1d1d1d1-1111-2222-3333-444444444444"
EVIL_RULE = AttackerInboxRule(UPN, "..", AT - timedelta(minutes=5), SUSPECT_IP)
FORWARDING = AttackerForwarding(UPN, "drop@evil.example", AT - timedelta(minutes=4), SUSPECT_IP)
FULLER = "require_password_change,delete_attacker_devices,remove_inbox_rules"


def with_device_registration(base: UserEvidence) -> UserEvidence:
    """The device-code sample: a device registered from the suspect IP at 15:52."""
    event = SecurityEvent(AT - timedelta(minutes=8), "Register device", "success", UPN, SUSPECT_IP, "", "DESKTOP-ATTACK")
    return replace(base, security_events=(*base.security_events, event))


@pytest.fixture
def footholds(graph: FakeGraph) -> FakeGraph:
    graph.add_device(
        USER, ATTACKER_DEVICE, "DESKTOP-ATTACK", operatingSystem="Windows", registrationDateTime="2026-06-15T15:52:20Z"
    )
    graph.add_device(USER, OWN_DEVICE, "Vic's laptop", operatingSystem="Windows", registrationDateTime="2025-02-01T09:00:00Z")
    graph.add_rule(USER, "r-own", "Newsletters", actions={"moveToFolder": "news"})
    graph.add_rule(USER, "r-evil", "..", actions={"delete": True})
    return graph


async def run_fuller(directory: GraphDirectory, optional: str = FULLER, **kwargs: object) -> ContainmentReport:
    plan = plan_for(optional)
    return await contain(
        plan,
        approval(plan),
        with_device_registration(evidence()),
        directory,
        NOW,
        assessment=ASSESSMENT,
        attacker_rules=(EVIL_RULE,),
        **kwargs,  # type: ignore[arg-type]
    )


class TestFullerContainment:
    async def test_password_devices_and_rules_only_the_attackers(self, footholds: FakeGraph, directory: GraphDirectory) -> None:
        """Password change required; only the suspect-IP device and the attacker's rule are deleted; the user's own stay."""
        report = await run_fuller(directory)
        results = by_kind(report)
        assert {k: v[0] for k, v in results.items()} == dict.fromkeys(
            [
                ActionKind.REVOKE_SESSIONS,
                ActionKind.AUDIT_MFA_METHODS,
                ActionKind.REQUIRE_PASSWORD_CHANGE,
                ActionKind.DELETE_ATTACKER_DEVICES,
                ActionKind.REMOVE_INBOX_RULES,
            ],
            ActionStatus.SUCCEEDED,
        )
        assert writes(footholds) == [
            f"POST /users/{USER}/revokeSignInSessions",
            f"PATCH /users/{USER}",
            f"DELETE /devices/{ATTACKER_DEVICE}",
            f"DELETE /users/{USER}/mailFolders/inbox/messageRules/r-evil",
        ]
        assert footholds.users[USER]["passwordProfile"] == {"forceChangePasswordNextSignIn": True}
        assert list(footholds.devices) == [OWN_DEVICE]
        assert [r["id"] for r in footholds.rules[USER]] == ["r-own"]
        assert results[ActionKind.DELETE_ATTACKER_DEVICES][1] == f"deleted device 'DESKTOP-ATTACK' ({ATTACKER_DEVICE}, Windows)"
        assert results[ActionKind.REMOVE_INBOX_RULES][1] == "deleted inbox rule '..'"
        assert results[ActionKind.REMOVE_INBOX_RULES][2] == footholds.calls("DELETE", "messageRules")[0].request_id
        assert report.devices is not None
        assert [f.device.id for f in report.devices.flagged] == [ATTACKER_DEVICE]

    async def test_the_report_says_what_revoking_leaves_and_what_a_person_must_do(
        self, footholds: FakeGraph, directory: GraphDirectory
    ) -> None:
        """Access tokens until expiry (60-90 minutes, CAE) and the Set-Mailbox command for the forwarding."""
        report = await run_fuller(directory, forwarding=(FORWARDING,))
        assert any(
            "access tokens already issued" in n and "60-90 minutes" in n and "continuous access evaluation" in n
            for n in report.notes
        )
        (step,) = [n for n in report.notes if n.startswith("By hand:")]
        assert "Set-Mailbox -Identity 'victim@contoso.com' -ForwardingSmtpAddress $null" in step
        revoke = by_kind(report)[ActionKind.REVOKE_SESSIONS][1]
        assert "not access tokens already issued" in revoke

    async def test_already_deleted_device_and_rule_count_as_done(self, footholds: FakeGraph, directory: GraphDirectory) -> None:
        """A 404 on DELETE (gone between listing and deleting) is success, said as 'already gone'."""
        footholds.fail("DELETE", "^/devices/", 404)
        footholds.fail("DELETE", "messageRules/r-evil", 404, code="ErrorItemNotFound")
        results = by_kind(await run_fuller(directory))
        assert results[ActionKind.DELETE_ATTACKER_DEVICES][:2] == (
            ActionStatus.SUCCEEDED,
            f"device 'DESKTOP-ATTACK' ({ATTACKER_DEVICE}, Windows) was already gone",
        )
        assert results[ActionKind.REMOVE_INBOX_RULES][:2] == (ActionStatus.SUCCEEDED, "inbox rule '..' was already gone")

    async def test_a_rule_removed_before_containment_is_reported_gone(
        self, footholds: FakeGraph, directory: GraphDirectory
    ) -> None:
        """The attacker's rule no longer in the inbox: nothing deleted, the result says so."""
        footholds.rules[USER] = [r for r in footholds.rules[USER] if r["id"] != "r-evil"]
        status, detail, _ = by_kind(await run_fuller(directory))[ActionKind.REMOVE_INBOX_RULES]
        assert (status, detail) == (ActionStatus.SUCCEEDED, "rule '..' is no longer in the inbox")
        assert footholds.calls("DELETE", "messageRules") == []

    async def test_without_attacker_rules_in_the_evidence_no_rule_is_touched(
        self, footholds: FakeGraph, directory: GraphDirectory
    ) -> None:
        """No rule attributed to a suspect session: the action is skipped without even listing the inbox."""
        plan = plan_for("remove_inbox_rules")
        report = await contain(plan, approval(plan), evidence(), directory, NOW, assessment=ASSESSMENT)
        status, detail, _ = by_kind(report)[ActionKind.REMOVE_INBOX_RULES]
        assert (status, detail) == (ActionStatus.SKIPPED, "the mailbox audit attributes no inbox rule to a suspect session")
        assert footholds.calls("GET", "messageRules") == []

    async def test_no_device_from_a_suspect_ip_means_none_deleted(self, footholds: FakeGraph, directory: GraphDirectory) -> None:
        """Without a suspect-IP registration in AuditLogs every device is the user's: skipped, no DELETE."""
        plan = plan_for("delete_attacker_devices")
        report = await contain(plan, approval(plan), evidence(), directory, NOW, assessment=ASSESSMENT)
        status, detail, _ = by_kind(report)[ActionKind.DELETE_ATTACKER_DEVICES]
        assert status is ActionStatus.SKIPPED
        assert detail.startswith("no device registered from a suspect IP: 2 device(s) registered")
        assert footholds.calls("DELETE") == []

    async def test_missing_permissions_fail_their_action_only_and_name_the_permission(
        self, footholds: FakeGraph, directory: GraphDirectory
    ) -> None:
        """403s on the password, device and rule calls each name their permission; revoke still succeeds."""
        footholds.fail("PATCH", "^/users/", 403)
        footholds.fail("DELETE", "^/devices/", 403)
        footholds.fail("GET", "messageRules", 403, code="ErrorAccessDenied", message="Access is denied.")
        results = by_kind(await run_fuller(directory))
        assert results[ActionKind.REVOKE_SESSIONS][0] is ActionStatus.SUCCEEDED
        for kind, permission in (
            (ActionKind.REQUIRE_PASSWORD_CHANGE, "User-PasswordProfile.ReadWrite.All"),
            (ActionKind.DELETE_ATTACKER_DEVICES, "Device.ReadWrite.All"),
            (ActionKind.REMOVE_INBOX_RULES, "MailboxSettings.ReadWrite"),
        ):
            status, detail, _ = results[kind]
            assert status is ActionStatus.FAILED
            assert f"grant the Microsoft Graph application permission {permission}" in detail

    @pytest.mark.slow
    async def test_throttled_device_delete_is_retried_by_the_sdk(self, footholds: FakeGraph, directory: GraphDirectory) -> None:
        """A 429 with Retry-After on DELETE /devices is kiota's to retry; the device is deleted once."""
        footholds.fail("DELETE", "^/devices/", 429, retry_after=1)
        results = by_kind(await run_fuller(directory, optional="delete_attacker_devices"))
        assert results[ActionKind.DELETE_ATTACKER_DEVICES][0] is ActionStatus.SUCCEEDED
        assert [c.status for c in footholds.calls("DELETE", "^/devices/")] == [429, 204]

    async def test_password_change_on_an_administrator_names_the_role(
        self, footholds: FakeGraph, directory: GraphDirectory
    ) -> None:
        """Entra ID refuses a password change on a Global Administrator from app permissions: the result says why."""
        footholds.assign_role(USER, GLOBAL_ADMIN, "Global Administrator")
        footholds.refuse_sensitive(USER)
        status, detail, _ = by_kind(await run_fuller(directory, optional="require_password_change"))[
            ActionKind.REQUIRE_PASSWORD_CHANGE
        ]
        assert status is ActionStatus.FAILED
        assert "Global Administrator" in detail
        assert "Privileged Authentication Administrator" in detail

    async def test_a_disabled_account_and_disruption_are_said_not_repeated(
        self, graph: FakeGraph, directory: GraphDirectory
    ) -> None:
        """Attack disruption marked disabling done: no PATCH; the report names who did it and that the account is disabled."""
        graph.users[USER]["accountEnabled"] = False
        settings = Settings.from_values({"REPLAY_OPTIONAL_ACTIONS": "disable_account"})
        plan = plan_containment("INC-7", SUSPECT, ASSESSMENT, settings, disruption=attack_disruption("AiTM (attack disruption)"))
        report = await contain(plan, approval(plan), evidence(), directory, NOW, assessment=ASSESSMENT)
        assert ActionKind.DISABLE_ACCOUNT not in by_kind(report)
        assert graph.calls("PATCH") == []
        assert any(
            n.startswith("Not repeated: disable account, already done by Defender's automatic attack disruption")
            for n in report.notes
        )
        assert any("already disabled when containment ran" in n for n in report.notes)

    async def test_redelivery_repeats_none_of_the_new_writes(self, footholds: FakeGraph, directory: GraphDirectory) -> None:
        """With the first run's completed kinds, a second delivery deletes and patches nothing again."""
        first = await run_fuller(directory)
        before = writes(footholds)
        await run_fuller(directory, completed=first.completed)
        assert writes(footholds) == before

    async def test_the_audit_lists_devices_again_registered_while_the_card_waited(
        self, footholds: FakeGraph, directory: GraphDirectory
    ) -> None:
        """The read-only audit re-lists devices at containment time; a refused device listing is only noted."""
        report = await run_fuller(directory, optional="")
        detail = by_kind(report)[ActionKind.AUDIT_MFA_METHODS][1]
        assert "; devices: 2 device(s) registered; 1 from a suspect address: device 'DESKTOP-ATTACK'" in detail
        assert footholds.calls("DELETE") == []
        footholds.fail("GET", "registeredDevices", 403)
        again = await run_fuller(directory, optional="")
        assert by_kind(again)[ActionKind.AUDIT_MFA_METHODS][0] is ActionStatus.SUCCEEDED
        assert any("could not list the user's devices again" in n and "User.Read.All" in n for n in again.notes)
