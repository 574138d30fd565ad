"""The declared needs: Graph permissions per feature, Azure roles, and targets out of the app's reach."""

from __future__ import annotations

import re

import pytest

from common.settings import OPTIONAL_ACTIONS, Settings
from playbooks.domain.permissions import (
    AZURE_ROLES,
    GLOBAL_ADMINISTRATOR,
    GRAPH_NEEDS,
    PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
    DirectoryRole,
    Feature,
    Identity,
    missing_permission_hint,
    privileged_target_note,
    protected_roles,
    required_graph_permissions,
)
from playbooks.domain.plan import ActionKind

GUID = re.compile(r"^[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}$")
CORE = {
    "User.Read.All",
    "User.RevokeSessions.All",
    "UserAuthenticationMethod.Read.All",
    "RoleManagement.Read.Directory",
    "IdentityRiskyUser.Read.All",
    "IdentityRiskEvent.Read.All",
}


class TestRequiredGraphPermissions:
    def test_default_containment_needs_only_the_core_reads_and_revoke(self) -> None:
        """Containment on, no group, no optional action: lookup, revoke, MFA read, role read, identity context reads."""
        assert required_graph_permissions(Settings()) == CORE

    def test_enrichment_only_needs_no_graph_permission(self) -> None:
        """With containment disabled nothing is granted in Graph."""
        assert required_graph_permissions(Settings(containment_enabled=False)) == frozenset()

    def test_approver_group_adds_group_member_read(self) -> None:
        """Checking the approver group adds GroupMember.Read.All (User.Read.All is already there)."""
        settings = Settings.from_values({"REPLAY_APPROVER_GROUP_ID": "0f0f0f0f-1111-2222-3333-444444444444"})
        assert required_graph_permissions(settings) == CORE | {"GroupMember.Read.All"}

    @pytest.mark.parametrize(
        ("action", "added"),
        [
            ("disable_account", {"User.EnableDisableAccount.All"}),
            ("require_password_change", {"User-PasswordProfile.ReadWrite.All"}),
            ("delete_attacker_devices", {"Device.ReadWrite.All"}),
            ("remove_inbox_rules", {"MailboxSettings.ReadWrite"}),
        ],
    )
    def test_each_optional_action_adds_exactly_its_permission(self, action: str, added: set[str]) -> None:
        """An optional action enabled in settings adds its permission and nothing else."""
        settings = Settings.from_values({"REPLAY_OPTIONAL_ACTIONS": action})
        assert required_graph_permissions(settings) == CORE | added

    def test_confirming_compromised_replaces_the_risk_read_with_read_write(self) -> None:
        """IdentityRiskyUser.ReadWrite.All covers the identity context's risk read: the Read one is not granted beside it."""
        settings = Settings.from_values({"REPLAY_OPTIONAL_ACTIONS": "confirm_compromised"})
        assert required_graph_permissions(settings) == (CORE - {"IdentityRiskyUser.Read.All"}) | {
            "IdentityRiskyUser.ReadWrite.All"
        }

    def test_deleting_methods_replaces_the_read_permission_with_read_write(self) -> None:
        """ReadWrite covers Read: with method deletion on, UserAuthenticationMethod.Read.All is not granted beside it."""
        settings = Settings.from_values({"REPLAY_OPTIONAL_ACTIONS": "delete_flagged_methods"})
        assert required_graph_permissions(settings) == (CORE - {"UserAuthenticationMethod.Read.All"}) | {
            "UserAuthenticationMethod.ReadWrite.All"
        }

    def test_each_identity_holds_only_its_features_permissions(self) -> None:
        """The bot identity gets the approver check's reads; the containment identity the rest; the app identity none."""
        settings = Settings.from_values(
            {
                "REPLAY_APPROVER_GROUP_ID": "0f0f0f0f-1111-2222-3333-444444444444",
                "REPLAY_OPTIONAL_ACTIONS": ",".join(OPTIONAL_ACTIONS),
            }
        )
        bot = required_graph_permissions(settings, Identity.BOT)
        containment = required_graph_permissions(settings, Identity.CONTAINMENT)
        assert bot == {"GroupMember.Read.All", "User.Read.All"}
        assert required_graph_permissions(settings, Identity.APP) == frozenset()
        assert bot | containment == required_graph_permissions(settings)
        assert not {"User.RevokeSessions.All", "UserAuthenticationMethod.ReadWrite.All", "User.EnableDisableAccount.All"} & bot

    def test_only_the_approver_check_runs_as_the_bot(self) -> None:
        """Every feature but the approver check is the containment identity's; nothing is the app identity's."""
        assert {f for f, need in GRAPH_NEEDS.items() if need.identity is Identity.BOT} == {Feature.APPROVER_CHECK}
        assert all(need.identity is not Identity.APP for need in GRAPH_NEEDS.values())

    def test_no_feature_asks_for_a_broad_permission(self) -> None:
        """The table never falls back to the broad permissions old playbooks grant."""
        broad = {"User.ReadWrite.All", "Directory.ReadWrite.All", "Directory.Read.All", "RoleManagement.ReadWrite.Directory"}
        everything = {p for need in GRAPH_NEEDS.values() for p in need.permissions}
        assert not everything & broad

    def test_every_action_and_optional_setting_has_a_graph_need(self) -> None:
        """Each ActionKind and each REPLAY_OPTIONAL_ACTIONS name is a Feature with a table entry."""
        for name in {kind.value for kind in ActionKind} | set(OPTIONAL_ACTIONS):
            assert Feature(name) in GRAPH_NEEDS

    def test_every_need_documents_its_calls_reason_and_source(self) -> None:
        """Every row says which calls it covers, why, and where the least-privilege claim comes from."""
        for feature, need in GRAPH_NEEDS.items():
            assert need.feature is feature
            assert need.calls
            assert need.why
            assert need.source.startswith("https://learn.microsoft.com/")


class TestHints:
    def test_hint_names_the_permission_and_the_admin_caveat(self) -> None:
        """A 403 on revoke tells the operator what to grant and that admins need more than that."""
        hint = missing_permission_hint(Feature.REVOKE_SESSIONS)
        assert "User.RevokeSessions.All" in hint
        assert "Privileged Authentication Administrator" in hint

    def test_hint_for_a_pair_names_both(self) -> None:
        """A feature needing two permissions names both."""
        hint = missing_permission_hint(Feature.APPROVER_CHECK)
        assert "GroupMember.Read.All and User.Read.All" in hint


class TestAzureRoles:
    def test_the_six_roles_with_built_in_ids(self) -> None:
        """Workspace reader, Sentinel responder, the three Durable Functions storage roles and the telemetry publisher, by id."""
        by_name = {role.name: role.role_id for role in AZURE_ROLES}
        assert by_name == {
            "Log Analytics Reader": "73c42c96-874c-492b-b04d-ab87d138a893",
            "Microsoft Sentinel Responder": "3e150937-b8fe-4cfb-8069-0eaf05ecd056",
            "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
            "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
            "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
            "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
        }

    def test_every_role_says_where_and_why(self) -> None:
        """Each role has a GUID id, a scope and a reason."""
        for role in AZURE_ROLES:
            assert GUID.match(role.role_id)
            assert role.scope
            assert role.why


class TestPrivilegedTargets:
    def test_global_administrator_is_named_first(self) -> None:
        """Global Administrator leads the list whatever order Graph returned the roles in."""
        roles = [
            DirectoryRole("fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator"),
            DirectoryRole(GLOBAL_ADMINISTRATOR.upper(), "Global Administrator"),
            DirectoryRole(PRIVILEGED_AUTHENTICATION_ADMINISTRATOR, "Privileged Authentication Administrator"),
        ]
        assert [r.name for r in protected_roles(roles)] == [
            "Global Administrator",
            "Privileged Authentication Administrator",
            "User Administrator",
        ]

    def test_roles_every_admin_may_act_on_do_not_protect(self) -> None:
        """Directory Readers or Reports Reader do not put a user out of reach."""
        roles = [
            DirectoryRole("88d8e3e3-8f55-4a1e-953a-9b9898b8876b", "Directory Readers"),
            DirectoryRole("4a5d8f65-41da-4de4-8968-e035b65339cf", "Reports Reader"),
        ]
        assert protected_roles(roles) == ()
        assert privileged_target_note(roles) == ""

    def test_custom_role_protects(self) -> None:
        """A role not in the table (custom or new) is treated as out of reach: fail towards explaining."""
        assert protected_roles([DirectoryRole("9a9a9a9a-0000-0000-0000-000000000000", "Custom Helpdesk")])

    def test_note_names_roles_and_the_role_that_may_act(self) -> None:
        """The note names the target's roles and the Entra role that could act on them."""
        note = privileged_target_note([DirectoryRole(GLOBAL_ADMINISTRATOR, "Global Administrator")])
        assert "Global Administrator" in note
        assert "Privileged Authentication Administrator" in note
        assert "application permissions alone are not enough" in note
