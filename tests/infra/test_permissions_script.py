"""infra/scripts/grant-graph-permissions.sh against a fake `az` on PATH: each identity gets exactly the code's permissions, run after run."""

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
from playbooks.domain.permissions import GRAPH_NEEDS, Identity, required_graph_permissions
from tests.fakes import az_cli

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "infra" / "scripts" / "grant-graph-permissions.sh"
BOT = "5d2c6a1e-0b7f-4c55-9a3e-2f8d1c7b9e40"
CONTAINMENT = "6e3d7b2f-1c80-4d66-8b4f-3a9e2d8cae51"
APP = "7f4e8c30-2d91-4e77-9c50-4bafe39dbf62"
PRINCIPALS = {"bot": BOT, "containment": CONTAINMENT, "app": APP}
#: The azd environment after `azd provision`: one variable per identity.
AZD = {"AZURE_BOT_PRINCIPAL_ID": BOT, "AZURE_CONTAINMENT_PRINCIPAL_ID": CONTAINMENT, "AZURE_IDENTITY_PRINCIPAL_ID": APP}
GRAPH_SP_ID = "a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d"
OTHER_RESOURCE = "11111111-2222-4333-8444-555555555555"
GROUP = "7f3e2d1c-0b9a-4876-9543-210fedcba987"

CORE = {
    "RoleManagement.Read.Directory",
    "User.Read.All",
    "User.RevokeSessions.All",
    "UserAuthenticationMethod.Read.All",
    "IdentityRiskyUser.Read.All",
    "IdentityRiskEvent.Read.All",
}
OPTIONAL = {"IdentityRiskyUser.ReadWrite.All", "User.EnableDisableAccount.All", "UserAuthenticationMethod.ReadWrite.All"}
APPROVER = {"GroupMember.Read.All", "User.Read.All"}
#: switches -> (bot identity, containment identity)
COMBOS = {
    "containment off": ({"REPLAY_CONTAINMENT_ENABLED": "false"}, set(), set()),
    "default": ({}, set(), CORE),
    "approver group": ({"REPLAY_APPROVER_GROUP_ID": GROUP}, APPROVER, CORE),
    "optional actions": (
        {"REPLAY_OPTIONAL_ACTIONS": "confirm_compromised,disable_account,delete_flagged_methods"},
        set(),
        (CORE - {"UserAuthenticationMethod.Read.All", "IdentityRiskyUser.Read.All"}) | OPTIONAL,
    ),
    "one optional action": ({"REPLAY_OPTIONAL_ACTIONS": "disable_account"}, set(), CORE | {"User.EnableDisableAccount.All"}),
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


def assignment(name: str, principal: str = CONTAINMENT, resource: str = GRAPH_SP_ID, *, id_: str = "") -> dict[str, str]:
    """An assignment as Graph lists it: its id is base64url (Graph's shape), never a GUID."""
    return {
        "id": id_ or az_cli.assignment_id(principal, role_id(name) + resource),
        "principalId": principal,
        "resourceId": resource,
        "appRoleId": role_id(name),
    }


@dataclass
class FakeTenant:
    """The fake Graph's state file and call log, and how to run the script against it."""

    tmp: Path

    def __post_init__(self) -> None:
        az_cli.install(self.tmp)
        self.state_file, self.log_file = self.tmp / "state.json", self.tmp / "calls.jsonl"
        self.set_state([])

    def set_state(self, assignments: list[dict[str, str]], *, page_size: int = 100, sp: dict[str, object] | None = None) -> None:
        state = {"principals": [BOT, CONTAINMENT, APP], "graph_sp": sp or graph_sp(), "assignments": assignments}
        self.state_file.write_text(json.dumps(state | {"page_size": page_size}))
        self.log_file.write_text("")

    def held(self, principal: str) -> set[str]:
        """The permission names a principal holds on Graph now."""
        names = {role_id(n): n for n in {p for need in GRAPH_NEEDS.values() for p in need.permissions} | set(EXTRA_ROLES)}
        state = json.loads(self.state_file.read_text())
        return {
            names[a["appRoleId"]]
            for a in state["assignments"]
            if a["principalId"] == principal and a["resourceId"] == GRAPH_SP_ID
        }

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
        return az_cli.run_script(SCRIPT, args, folder=self.tmp, drop=("REPLAY_", "AZURE_"), env=env, cwd=cwd)


def outcome(done: subprocess.CompletedProcess[str]) -> dict[str, dict[str, str]]:
    """Identity -> permission -> what the script said about it."""
    assert done.returncode == 0, done.stderr
    said: dict[str, dict[str, str]] = {}
    section: dict[str, str] = {}
    for line in done.stdout.splitlines():
        if line.endswith("):") and " identity (" in line:
            section = said.setdefault(line.split(" identity (")[0], {})
            continue
        head, _, status = line.removeprefix("[dry run] ").partition(": ")
        if head in role_names():
            section[head] = status
    return said


def role_names() -> set[str]:
    return {str(role["value"]) for role in graph_sp()["appRoles"]}  # type: ignore[attr-defined]


def with_status(said: dict[str, str], status: str) -> set[str]:
    return {name for name, what in said.items() if what == status}


@pytest.fixture
def tenant(tmp_path: Path) -> FakeTenant:
    return FakeTenant(tmp_path)


@pytest.mark.parametrize("combo", list(COMBOS))
def test_the_cli_prints_each_identitys_permissions_for_each_switch_combination(combo: str) -> None:
    """`python -m playbooks.permissions --identity X` prints sorted(required_graph_permissions(settings, X)), one per line."""
    values, bot, containment = COMBOS[combo]
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLAY_")} | values
    printed = {}
    for identity in ("bot", "containment", "app", "all"):
        done = subprocess.run(
            [sys.executable, "-m", "playbooks.permissions", "--identity", identity],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        printed[identity] = done.stdout.splitlines()

    settings = Settings.from_values(values)
    assert printed["bot"] == sorted(required_graph_permissions(settings, Identity.BOT))
    assert (set(printed["bot"]), set(printed["containment"]), printed["app"]) == (bot, containment, [])
    assert set(printed["all"]) == bot | containment


@pytest.mark.parametrize("combo", list(COMBOS))
def test_dry_run_plans_exactly_each_identitys_permissions_and_writes_nothing(tenant: FakeTenant, combo: str) -> None:
    """--dry-run over the azd environment lists, per identity, what the switches need as 'would be granted'; no write."""
    values, bot, containment = COMBOS[combo]

    said = outcome(tenant.run("--dry-run", env=AZD | values))

    assert said == {
        "bot": dict.fromkeys(bot, "would be granted"),
        "containment": dict.fromkeys(containment, "would be granted"),
        "app": {},
    }
    assert tenant.writes == []
    assert tenant.assignments == []


def test_the_bot_identity_never_gets_a_containment_write(tenant: FakeTenant) -> None:
    """With every feature on, the bot identity is planned only the approver check's reads."""
    everything = {
        "REPLAY_APPROVER_GROUP_ID": GROUP,
        "REPLAY_OPTIONAL_ACTIONS": "confirm_compromised,disable_account,delete_flagged_methods",
    }

    said = outcome(tenant.run("--dry-run", env=AZD | everything))

    assert set(said["bot"]) == APPROVER
    assert not {"User.RevokeSessions.All", "UserAuthenticationMethod.ReadWrite.All"} & set(said["bot"])


def test_flags_set_the_same_switches_as_the_environment(tenant: FakeTenant) -> None:
    """--approver-group-id and --optional-actions add GroupMember.Read.All (bot) and the action's permission (containment)."""
    done = tenant.run("--dry-run", "--approver-group-id", GROUP, "--optional-actions", "confirm_compromised", env=AZD)

    said = outcome(done)
    assert set(said["bot"]) == APPROVER
    assert set(said["containment"]) == (CORE - {"IdentityRiskyUser.Read.All"}) | {"IdentityRiskyUser.ReadWrite.All"}


def test_settings_file_decides_the_features(tenant: FakeTenant, tmp_path: Path) -> None:
    """--settings reads the switches from a local.settings.json's Values."""
    settings = tmp_path / "local.settings.json"
    values = {
        "REPLAY_CONTAINMENT_ENABLED": "true",
        "REPLAY_APPROVER_GROUP_ID": GROUP,
        "REPLAY_OPTIONAL_ACTIONS": "delete_flagged_methods",
    }
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": values}))

    said = outcome(
        tenant.run("--principal-id", CONTAINMENT, "--identity", "containment", "--dry-run", "--settings", str(settings))
    )

    # ReadWrite covers Read, so Read.All is not asked for beside it.
    expected = (CORE - {"UserAuthenticationMethod.Read.All"}) | {"UserAuthenticationMethod.ReadWrite.All"}
    assert with_status(said["containment"], "would be granted") == expected


def test_grants_only_the_missing_permissions_and_a_rerun_writes_nothing(tenant: FakeTenant) -> None:
    """Held permissions (Graph's base64url ids) are 'already granted'; the POSTs carry Graph's app role ids; a re-run is a no-op."""
    tenant.set_state([assignment("User.Read.All"), assignment("User.RevokeSessions.All", id_=az_cli.REAL_ASSIGNMENT_ID)])
    env = AZD | {"REPLAY_APPROVER_GROUP_ID": GROUP}

    first = outcome(tenant.run(env=env))

    assert with_status(first["containment"], "already granted") == {"User.Read.All", "User.RevokeSessions.All"}
    assert with_status(first["containment"], "granted") == CORE - {"User.Read.All", "User.RevokeSessions.All"}
    assert with_status(first["bot"], "granted") == APPROVER
    posts = [json.loads(call["body"]) for call in tenant.writes]
    assert all(call["method"] == "post" for call in tenant.writes)
    assert {(post["principalId"], post["resourceId"]) for post in posts} == {(BOT, GRAPH_SP_ID), (CONTAINMENT, GRAPH_SP_ID)}
    assert (tenant.held(BOT), tenant.held(CONTAINMENT), tenant.held(APP)) == (APPROVER, CORE, set())

    tenant.log_file.write_text("")
    again = outcome(tenant.run(env=env))

    assert again == {
        "bot": dict.fromkeys(APPROVER, "already granted"),
        "containment": dict.fromkeys(CORE, "already granted"),
        "app": {},
    }
    assert tenant.writes == []


def test_enabling_an_optional_action_later_grants_only_its_permission(tenant: FakeTenant) -> None:
    """A second run after a switch changes reads the ids Graph made on the first run and adds only the new permission."""
    assert outcome(tenant.run(env=AZD))["containment"] == dict.fromkeys(CORE, "granted")
    created = {a["id"] for a in tenant.assignments}
    assert created
    assert not any(_is_guid(i) for i in created)

    tenant.log_file.write_text("")
    later = outcome(tenant.run(env=AZD | {"REPLAY_OPTIONAL_ACTIONS": "disable_account"}))

    assert later["containment"] == dict.fromkeys(CORE, "already granted") | {"User.EnableDisableAccount.All": "granted"}
    assert [json.loads(call["body"])["appRoleId"] for call in tenant.writes] == [role_id("User.EnableDisableAccount.All")]


def test_without_prune_unneeded_permissions_are_reported_and_kept(tenant: FakeTenant) -> None:
    """A Graph permission no feature needs is named 'not needed' but not deleted unless --prune is given."""
    tenant.set_state([assignment("User.ReadWrite.All"), *(assignment(n) for n in CORE)])

    said = outcome(tenant.run(env=AZD))

    assert said["containment"]["User.ReadWrite.All"] == "not needed (kept; --prune removes it)"
    assert tenant.writes == []


def test_prune_removes_only_graph_assignments_no_feature_needs(tenant: FakeTenant) -> None:
    """--prune deletes the stale Graph assignments by Graph's own ids and leaves the needed ones and other APIs' alone."""
    stale = [
        assignment("User.ReadWrite.All", id_=az_cli.REAL_ASSIGNMENT_ID),
        assignment("Directory.Read.All"),
        assignment("GroupMember.Read.All"),
    ]
    other_api = assignment("User.ReadWrite.All", resource=OTHER_RESOURCE)
    tenant.set_state([*stale, other_api, *(assignment(n) for n in CORE)])

    said = outcome(tenant.run("--principal-id", CONTAINMENT, "--identity", "containment", "--prune"))

    assert with_status(said["containment"], "removed (no longer needed)") == {
        "User.ReadWrite.All",
        "Directory.Read.All",
        "GroupMember.Read.All",
    }
    assert with_status(said["containment"], "already granted") == CORE
    assert sorted(call["url"].rsplit("/", 1)[1] for call in tenant.writes) == sorted(a["id"] for a in stale)
    assert {call["method"] for call in tenant.writes} == {"delete"}
    assert other_api in tenant.assignments
    assert tenant.held(CONTAINMENT) == CORE


def test_prune_takes_back_what_a_single_identity_deployment_gave_the_app_identity(tenant: FakeTenant) -> None:
    """The app identity needs no Graph permission: --prune removes the ones an older one-identity deployment granted it."""
    tenant.set_state([*(assignment(n, APP) for n in CORE | {"GroupMember.Read.All"})])

    said = outcome(tenant.run("--prune", env=AZD | {"REPLAY_APPROVER_GROUP_ID": GROUP}))

    assert said["app"] == dict.fromkeys(CORE | {"GroupMember.Read.All"}, "removed (no longer needed)")
    assert (tenant.held(APP), tenant.held(BOT), tenant.held(CONTAINMENT)) == (set(), APPROVER, CORE)


def test_prune_with_containment_off_takes_back_every_graph_permission(tenant: FakeTenant) -> None:
    """Rolling back: features off + --prune removes all Graph assignments (the dry run first writes nothing)."""
    tenant.set_state(
        [
            *(assignment(n) for n in CORE),
            *(assignment(n, BOT) for n in APPROVER),
            assignment("Mail.Send", resource=OTHER_RESOURCE),
        ]
    )
    off = AZD | {"REPLAY_CONTAINMENT_ENABLED": "false"}

    planned = outcome(tenant.run("--prune", "--dry-run", env=off))
    assert planned["containment"] == dict.fromkeys(CORE, "would be removed (no longer needed)")
    assert planned["bot"] == dict.fromkeys(APPROVER, "would be removed (no longer needed)")
    assert tenant.writes == []

    done = tenant.run("--prune", env=off)
    assert outcome(done)["containment"] == dict.fromkeys(CORE, "removed (no longer needed)")
    assert "no Graph permission is needed by the containment identity" in done.stdout
    assert [a["resourceId"] for a in tenant.assignments] == [OTHER_RESOURCE]


def test_one_principal_with_identity_all_gets_every_features_permissions(tenant: FakeTenant) -> None:
    """--principal-id alone keeps the one-identity behaviour: the union of every identity's permissions."""
    said = outcome(tenant.run("--principal-id", CONTAINMENT, "--dry-run", env={"REPLAY_APPROVER_GROUP_ID": GROUP}))

    assert set(said["all"]) == CORE | APPROVER


def test_every_page_of_assignments_is_read(tenant: FakeTenant) -> None:
    """The script follows @odata.nextLink, so a permission held on a later page is not granted twice."""
    tenant.set_state([assignment(n) for n in sorted(CORE)], page_size=1)

    said = outcome(tenant.run("--principal-id", CONTAINMENT, "--identity", "containment"))

    assert said["containment"] == dict.fromkeys(CORE, "already granted")
    assert len([c for c in tenant.calls if "appRoleAssignments" in c["url"]]) == len(CORE)
    assert tenant.writes == []


def test_a_permission_graph_does_not_offer_stops_before_any_write(tenant: FakeTenant) -> None:
    """When Graph has no app role of that name, the script fails naming it and grants nothing."""
    tenant.set_state([], sp=graph_sp(without="User.RevokeSessions.All"))

    done = tenant.run(env=AZD)

    assert done.returncode != 0
    assert "User.RevokeSessions.All" in done.stderr
    assert tenant.writes == []


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ((), {}, "--principal-id is required"),
        (("--principal-id", "my-identity"), {}, "not a GUID"),
        (("--identity", "bot"), AZD, "--identity needs --principal-id"),
        (("--principal-id", BOT, "--identity", "admin"), {}, "--identity must be"),
        (("--principal-id", BOT), {"REPLAY_OPTIONAL_ACTIONS": "wipe_mailbox"}, "unknown action(s) wipe_mailbox"),
        (("--principal-id", BOT, "--settings", "x.json", "--containment-enabled", "false"), {}, "not both"),
        (("--principal-id", BOT, "--settings", "missing.json"), {}, "no such file"),
        (("--principal-id", BOT, "--graph", "http://graph.example"), {}, "https URL"),
    ],
)
def test_bad_input_is_refused_before_graph_is_called(
    tenant: FakeTenant, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    """A bad principal id, identity, switch, file or endpoint exits 2 with a clear message and no az call."""
    (tenant.tmp / "x.json").write_text(json.dumps({"Values": {}}))

    done = tenant.run(*args, env=env, cwd=tenant.tmp)

    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert tenant.calls == []


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
