"""infra/scripts/grant-graph-permissions.sh against a fake `az` on PATH: exactly the code's permissions, idempotent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from common.settings import Settings
from playbooks.domain.permissions import GRAPH_NEEDS, required_graph_permissions
from tests.fakes import az_cli

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "infra" / "scripts" / "grant-graph-permissions.sh"
PRINCIPAL = "5d2c6a1e-0b7f-4c55-9a3e-2f8d1c7b9e40"
GRAPH_SP_ID = "a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d"
OTHER_RESOURCE = "11111111-2222-4333-8444-555555555555"
GROUP = "7f3e2d1c-0b9a-4876-9543-210fedcba987"

CORE = {"RoleManagement.Read.Directory", "User.Read.All", "User.RevokeSessions.All", "UserAuthenticationMethod.Read.All"}
OPTIONAL = {"IdentityRiskyUser.ReadWrite.All", "User.EnableDisableAccount.All", "UserAuthenticationMethod.ReadWrite.All"}
COMBOS = {
    "containment off": ({"REPLAY_CONTAINMENT_ENABLED": "false"}, set()),
    "default": ({}, CORE),
    "approver group": ({"REPLAY_APPROVER_GROUP_ID": GROUP}, CORE | {"GroupMember.Read.All"}),
    "optional actions": (
        {"REPLAY_OPTIONAL_ACTIONS": "confirm_compromised,disable_account,delete_flagged_methods"},
        (CORE - {"UserAuthenticationMethod.Read.All"}) | OPTIONAL,
    ),
    "one optional action": ({"REPLAY_OPTIONAL_ACTIONS": "disable_account"}, CORE | {"User.EnableDisableAccount.All"}),
}
#: Graph offers more than the product needs; the script must pick only what the code asks for.
EXTRA_ROLES = ("Directory.Read.All", "User.ReadWrite.All", "Mail.Send")


def role_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"approle.{name}"))


def graph_sp(*, without: str = "") -> dict[str, object]:
    names = sorted({p for need in GRAPH_NEEDS.values() for p in need.permissions} | set(EXTRA_ROLES))
    roles = [
        {"id": role_id(n), "value": n, "allowedMemberTypes": ["Application"], "isEnabled": True} for n in names if n != without
    ]
    roles.append({"id": role_id("User.Read"), "value": "User.Read", "allowedMemberTypes": ["User"], "isEnabled": True})
    return {"id": GRAPH_SP_ID, "appId": az_cli.GRAPH_APP_ID, "displayName": "Microsoft Graph", "appRoles": roles}


def assignment(name: str, resource: str = GRAPH_SP_ID) -> dict[str, str]:
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"assignment.{resource}.{name}")),
        "principalId": PRINCIPAL,
        "resourceId": resource,
        "appRoleId": role_id(name),
    }


@dataclass
class FakeTenant:
    """The fake Graph's state file and call log, and how to run the script against it."""

    tmp: Path

    def __post_init__(self) -> None:
        launcher = self.tmp / "bin" / "az"
        launcher.parent.mkdir()
        launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{az_cli.__file__}" "$@"\n')
        launcher.chmod(0o755)
        self.state_file, self.log_file = self.tmp / "graph.json", self.tmp / "calls.jsonl"
        self.set_state([])

    def set_state(self, assignments: list[dict[str, str]], *, page_size: int = 100, sp: dict[str, object] | None = None) -> None:
        state = {"principal": PRINCIPAL, "graph_sp": sp or graph_sp(), "assignments": assignments, "page_size": page_size}
        self.state_file.write_text(json.dumps(state))
        self.log_file.write_text("")

    @property
    def assignments(self) -> list[dict[str, str]]:
        held: list[dict[str, str]] = json.loads(self.state_file.read_text())["assignments"]
        return held

    @property
    def calls(self) -> list[dict[str, str]]:
        return [json.loads(line) for line in self.log_file.read_text().splitlines()]

    @property
    def writes(self) -> list[dict[str, str]]:
        return [call for call in self.calls if call["method"] != "get"]

    def run(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("REPLAY_") and k != "AZURE_IDENTITY_PRINCIPAL_ID"}
        clean |= {
            "PATH": f"{self.tmp / 'bin'}{os.pathsep}{clean['PATH']}",
            "PYTHON": sys.executable,
            "FAKE_AZ_STATE": str(self.state_file),
            "FAKE_AZ_LOG": str(self.log_file),
        }
        return subprocess.run(
            ["bash", str(SCRIPT), *args],
            env=clean | (env or {}),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def outcome(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """Permission -> what the script said about it."""
    assert done.returncode == 0, done.stderr
    lines = [line.removeprefix("[dry run] ") for line in done.stdout.splitlines()]
    return dict(line.split(": ", 1) for line in lines if line.split(": ", 1)[0] in role_names())


def role_names() -> set[str]:
    return {str(role["value"]) for role in graph_sp()["appRoles"]}  # type: ignore[attr-defined]


def with_status(said: dict[str, str], status: str) -> set[str]:
    return {name for name, what in said.items() if what == status}


@pytest.fixture
def tenant(tmp_path: Path) -> FakeTenant:
    return FakeTenant(tmp_path)


@pytest.mark.parametrize("combo", list(COMBOS))
def test_the_cli_prints_the_codes_permissions_for_each_switch_combination(combo: str) -> None:
    """`python -m playbooks.permissions` prints sorted(required_graph_permissions(settings)), one per line."""
    values, expected = COMBOS[combo]
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLAY_")} | values
    done = subprocess.run(
        [sys.executable, "-m", "playbooks.permissions"], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )

    assert done.stdout.splitlines() == sorted(required_graph_permissions(Settings.from_values(values)))
    assert set(done.stdout.splitlines()) == expected


@pytest.mark.parametrize("combo", list(COMBOS))
def test_dry_run_plans_exactly_the_required_permissions_and_writes_nothing(tenant: FakeTenant, combo: str) -> None:
    """--dry-run lists every permission the switches need as 'would be granted' and calls no write endpoint."""
    values, expected = COMBOS[combo]

    said = outcome(tenant.run("--principal-id", PRINCIPAL, "--dry-run", env=values))

    assert said == dict.fromkeys(expected, "would be granted")
    assert tenant.writes == []
    assert tenant.assignments == []


def test_flags_set_the_same_switches_as_the_environment(tenant: FakeTenant) -> None:
    """--approver-group-id and --optional-actions add GroupMember.Read.All and the action's permission."""
    done = tenant.run(
        "--principal-id", PRINCIPAL, "--dry-run", "--approver-group-id", GROUP, "--optional-actions", "confirm_compromised"
    )

    assert with_status(outcome(done), "would be granted") == CORE | {"GroupMember.Read.All", "IdentityRiskyUser.ReadWrite.All"}


def test_settings_file_decides_the_features(tenant: FakeTenant, tmp_path: Path) -> None:
    """--settings reads the switches from a local.settings.json's Values."""
    settings = tmp_path / "local.settings.json"
    values = {
        "REPLAY_CONTAINMENT_ENABLED": "true",
        "REPLAY_APPROVER_GROUP_ID": GROUP,
        "REPLAY_OPTIONAL_ACTIONS": "delete_flagged_methods",
    }
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": values}))

    said = outcome(tenant.run("--principal-id", PRINCIPAL, "--dry-run", "--settings", str(settings)))

    # ReadWrite covers Read, so Read.All is not asked for beside it.
    expected = (CORE - {"UserAuthenticationMethod.Read.All"}) | {"GroupMember.Read.All", "UserAuthenticationMethod.ReadWrite.All"}
    assert with_status(said, "would be granted") == expected


def test_grants_only_the_missing_permissions_and_a_rerun_writes_nothing(tenant: FakeTenant) -> None:
    """Held permissions are 'already granted' and not re-posted; the POSTs carry Graph's app role ids; a re-run is a no-op."""
    tenant.set_state([assignment("User.Read.All"), assignment("User.RevokeSessions.All")])

    first = outcome(tenant.run("--principal-id", PRINCIPAL, env={"REPLAY_APPROVER_GROUP_ID": GROUP}))

    assert with_status(first, "already granted") == {"User.Read.All", "User.RevokeSessions.All"}
    assert with_status(first, "granted") == {
        "GroupMember.Read.All",
        "RoleManagement.Read.Directory",
        "UserAuthenticationMethod.Read.All",
    }
    posts = [json.loads(call["body"]) for call in tenant.writes]
    assert all(call["method"] == "post" for call in tenant.writes)
    assert sorted(post["appRoleId"] for post in posts) == sorted(role_id(n) for n in with_status(first, "granted"))
    assert {(post["principalId"], post["resourceId"]) for post in posts} == {(PRINCIPAL, GRAPH_SP_ID)}
    assert {a["appRoleId"] for a in tenant.assignments} == {role_id(n) for n in CORE | {"GroupMember.Read.All"}}

    tenant.log_file.write_text("")
    again = outcome(tenant.run("--principal-id", PRINCIPAL, env={"REPLAY_APPROVER_GROUP_ID": GROUP}))

    assert again == dict.fromkeys(CORE | {"GroupMember.Read.All"}, "already granted")
    assert tenant.writes == []


def test_without_prune_unneeded_permissions_are_reported_and_kept(tenant: FakeTenant) -> None:
    """A Graph permission no feature needs is named 'not needed' but not deleted unless --prune is given."""
    tenant.set_state([assignment("User.ReadWrite.All"), *(assignment(n) for n in CORE)])

    said = outcome(tenant.run("--principal-id", PRINCIPAL))

    assert said["User.ReadWrite.All"] == "not needed (kept; --prune removes it)"
    assert tenant.writes == []


def test_prune_removes_only_graph_assignments_no_feature_needs(tenant: FakeTenant) -> None:
    """--prune deletes the stale Graph assignments and leaves the needed ones and other APIs' assignments alone."""
    stale = [assignment("User.ReadWrite.All"), assignment("Directory.Read.All"), assignment("GroupMember.Read.All")]
    other_api = assignment("User.ReadWrite.All", resource=OTHER_RESOURCE)
    tenant.set_state([*stale, other_api, *(assignment(n) for n in CORE)])

    said = outcome(tenant.run("--principal-id", PRINCIPAL, "--prune"))

    assert with_status(said, "removed (no longer needed)") == {"User.ReadWrite.All", "Directory.Read.All", "GroupMember.Read.All"}
    assert with_status(said, "already granted") == CORE
    assert sorted(call["url"].rsplit("/", 1)[1] for call in tenant.writes) == sorted(a["id"] for a in stale)
    assert {call["method"] for call in tenant.writes} == {"delete"}
    assert other_api in tenant.assignments
    assert {a["appRoleId"] for a in tenant.assignments if a["resourceId"] == GRAPH_SP_ID} == {role_id(n) for n in CORE}


def test_prune_with_containment_off_takes_back_every_graph_permission(tenant: FakeTenant) -> None:
    """Rolling back: features off + --prune removes all Graph assignments (the dry run first writes nothing)."""
    tenant.set_state([*(assignment(n) for n in CORE), assignment("Mail.Send", resource=OTHER_RESOURCE)])
    off = {"REPLAY_CONTAINMENT_ENABLED": "false"}

    planned = outcome(tenant.run("--principal-id", PRINCIPAL, "--prune", "--dry-run", env=off))
    assert planned == dict.fromkeys(CORE, "would be removed (no longer needed)")
    assert tenant.writes == []

    done = tenant.run("--principal-id", PRINCIPAL, "--prune", env=off)
    assert outcome(done) == dict.fromkeys(CORE, "removed (no longer needed)")
    assert "no Graph permission is needed" in done.stdout
    assert [a["resourceId"] for a in tenant.assignments] == [OTHER_RESOURCE]


def test_every_page_of_assignments_is_read(tenant: FakeTenant) -> None:
    """The script follows @odata.nextLink, so a permission held on a later page is not granted twice."""
    tenant.set_state([assignment(n) for n in sorted(CORE)], page_size=1)

    said = outcome(tenant.run("--principal-id", PRINCIPAL))

    assert said == dict.fromkeys(CORE, "already granted")
    assert len([c for c in tenant.calls if "appRoleAssignments" in c["url"]]) == len(CORE)
    assert tenant.writes == []


def test_a_permission_graph_does_not_offer_stops_before_any_write(tenant: FakeTenant) -> None:
    """When Graph has no app role of that name, the script fails naming it and grants nothing."""
    tenant.set_state([], sp=graph_sp(without="User.RevokeSessions.All"))

    done = tenant.run("--principal-id", PRINCIPAL)

    assert done.returncode != 0
    assert "User.RevokeSessions.All" in done.stderr
    assert tenant.writes == []


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ((), {}, "--principal-id is required"),
        (("--principal-id", "my-identity"), {}, "not a GUID"),
        (("--principal-id", PRINCIPAL), {"REPLAY_OPTIONAL_ACTIONS": "wipe_mailbox"}, "unknown action(s) wipe_mailbox"),
        (("--principal-id", PRINCIPAL, "--settings", "x.json", "--containment-enabled", "false"), {}, "not both"),
        (("--principal-id", PRINCIPAL, "--settings", "missing.json"), {}, "no such file"),
        (("--principal-id", PRINCIPAL, "--graph", "http://graph.example"), {}, "https URL"),
    ],
)
def test_bad_input_is_refused_before_graph_is_called(
    tenant: FakeTenant, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    """A bad principal id, switch, file or endpoint exits 2 with a clear message and no az call."""
    (tenant.tmp / "x.json").write_text(json.dumps({"Values": {}}))

    done = tenant.run(*args, env=env, cwd=tenant.tmp)

    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert tenant.calls == []
