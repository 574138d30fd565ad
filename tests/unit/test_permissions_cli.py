"""The permissions command line: required list, grant plan from Graph's JSON, generated docs (pure parts)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from common.errors import InputError
from common.settings import OPTIONAL_ACTIONS, Settings
from playbooks.cli import permissions as cli
from playbooks.domain.permissions import AZURE_ROLES, Feature, Identity, required_graph_permissions

GRAPH_SP = "a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d"


def role(value: str, role_id: str, *, members: tuple[str, ...] = ("Application",), enabled: bool = True) -> dict[str, object]:
    return {"id": role_id, "value": value, "allowedMemberTypes": list(members), "isEnabled": enabled}


def sp(*roles: dict[str, object]) -> dict[str, object]:
    return {"id": GRAPH_SP, "appId": cli.GRAPH_APP_ID, "appRoles": list(roles)}


ROLES = {
    "User.Read.All": "00000000-0000-4000-8000-000000000001",
    "User.RevokeSessions.All": "00000000-0000-4000-8000-000000000002",
    "Mail.Send": "00000000-0000-4000-8000-000000000003",
}


def test_every_feature_and_azure_role_says_what_breaks_without_it() -> None:
    """WITHOUT covers every Feature and ROLE_WITHOUT every Azure role, so a new one cannot reach the docs unexplained."""
    assert set(cli.WITHOUT) == set(Feature)
    assert set(cli.ROLE_WITHOUT) == {r.name for r in AZURE_ROLES}


def test_feature_switches_are_settings_and_each_changes_the_permissions() -> None:
    """The env names the script passes are real settings, and each one alters the required set."""
    assert set(cli.FEATURE_SWITCHES) <= set(Settings.names())
    base = required_graph_permissions(Settings())
    changed = {
        "REPLAY_CONTAINMENT_ENABLED": "false",
        "REPLAY_APPROVER_GROUP_ID": "7f3e2d1c-0b9a-4876-9543-210fedcba987",
        "REPLAY_OPTIONAL_ACTIONS": "disable_account",
    }
    for name in cli.FEATURE_SWITCHES:
        assert required_graph_permissions(cli.settings_from(None, {name: changed[name]})) != base, name


def test_only_the_feature_switches_are_read_from_the_environment() -> None:
    """An unrelated bad variable in the environment does not fail the permission list."""
    settings = cli.settings_from(None, {"REPLAY_ROW_CAP": "lots", "REPLAY_OPTIONAL_ACTIONS": "confirm_compromised"})

    assert "IdentityRiskyUser.ReadWrite.All" in cli.required_lines(settings)


def test_the_plan_grants_the_missing_keeps_the_held_and_removes_only_graphs_unneeded() -> None:
    """Held roles are kept, missing ones granted by app role id, other resources' assignments ignored."""
    graph = sp(*(role(name, role_id) for name, role_id in ROLES.items()))
    held = [
        {"id": "10000000-0000-4000-8000-000000000001", "resourceId": GRAPH_SP, "appRoleId": ROLES["User.Read.All"]},
        {"id": "10000000-0000-4000-8000-000000000002", "resourceId": GRAPH_SP, "appRoleId": ROLES["Mail.Send"]},
        {
            "id": "10000000-0000-4000-8000-000000000003",
            "resourceId": "20000000-0000-4000-8000-000000000000",
            "appRoleId": ROLES["Mail.Send"],
        },
    ]

    plan = cli.grant_plan(["User.Read.All", "User.RevokeSessions.All"], graph, held)

    assert plan.grant == (("User.RevokeSessions.All", ROLES["User.RevokeSessions.All"]),)
    assert plan.keep == (cli.Assignment("User.Read.All", "10000000-0000-4000-8000-000000000001"),)
    assert plan.remove == (cli.Assignment("Mail.Send", "10000000-0000-4000-8000-000000000002"),)
    assert plan.lines()[0] == f"resource\t-\t{GRAPH_SP}"


def test_delegated_or_disabled_roles_do_not_count_as_application_permissions() -> None:
    """A delegated scope or a disabled app role of the right name is refused before anything is written."""
    for graph in (
        sp(role("User.Read.All", ROLES["User.Read.All"], members=("User",))),
        sp(role("User.Read.All", ROLES["User.Read.All"], enabled=False)),
    ):
        with pytest.raises(InputError, match=r"no application permission named User\.Read\.All"):
            cli.grant_plan(["User.Read.All"], graph, [])


def test_ids_outside_graphs_shapes_never_reach_the_script() -> None:
    """A service principal id that is not a GUID, or an assignment id outside base64url, is refused: ids go into URLs."""
    with pytest.raises(InputError, match="not a GUID"):
        cli.grant_plan([], {"id": "x/../../users", "appRoles": []}, [])
    for bad in ("a b", "../../users/x", "id?$select=x", ""):
        with pytest.raises(InputError, match="assignment id"):
            cli.grant_plan(
                [],
                sp(role("Mail.Send", ROLES["Mail.Send"])),
                [{"id": bad, "resourceId": GRAPH_SP, "appRoleId": ROLES["Mail.Send"]}],
            )


def test_graphs_real_assignment_ids_are_kept_exactly() -> None:
    """Graph's app-role assignment ids are base64url, not GUIDs, and case matters: the plan keeps them as Graph wrote them."""
    real = "41W1zT6z1U-kJxf62svfp1HFE8pMZhxDun-ThPczmJE"
    graph = sp(role("Mail.Send", ROLES["Mail.Send"]), role("User.Read.All", ROLES["User.Read.All"]))
    held = [
        {"id": real, "resourceId": GRAPH_SP, "appRoleId": ROLES["Mail.Send"]},
        {"id": "Ab_-" + real[4:], "resourceId": GRAPH_SP, "appRoleId": ROLES["User.Read.All"]},
    ]

    plan = cli.grant_plan(["User.Read.All"], graph, held)

    assert plan.remove == (cli.Assignment("Mail.Send", real),)
    assert plan.keep == (cli.Assignment("User.Read.All", "Ab_-" + real[4:]),)
    assert f"remove\tMail.Send\t{real}" in plan.lines()


def test_the_template_table_is_the_codes_for_every_setting() -> None:
    """infra/graph-permissions.json equals --template-json, and each entry is required_graph_permissions for that setting."""
    committed = json.loads((Path(__file__).resolve().parents[2] / cli.TEMPLATE_TABLE).read_text(encoding="utf-8"))
    assert committed == cli.template_table(), f"regenerate it: {cli.TEMPLATE_COMMAND}"
    group = "7f3e2d1c-0b9a-4876-9543-210fedcba987"
    for mask in range(2 ** len(OPTIONAL_ACTIONS)):
        actions = frozenset(a for i, a in enumerate(OPTIONAL_ACTIONS) if mask >> i & 1)
        settings = Settings(optional_actions=actions, approver_group_id=group)
        assert committed["containment"][cli.action_key(actions)] == sorted(
            required_graph_permissions(settings, Identity.CONTAINMENT)
        )
        assert committed["botWithApproverGroup"] == sorted(required_graph_permissions(settings, Identity.BOT))
    assert committed["optionalActions"] == list(OPTIONAL_ACTIONS)


def test_the_graph_service_principal_is_found_by_app_id() -> None:
    """The $filter answer must hold exactly one service principal with Graph's appId."""
    assert cli.graph_service_principal({"value": [sp()]})["id"] == GRAPH_SP
    with pytest.raises(InputError, match="found 0"):
        cli.graph_service_principal({"value": []})
    with pytest.raises(InputError, match="found 0"):
        cli.graph_service_principal({"value": [{"id": GRAPH_SP, "appId": "00000002-0000-0000-c000-000000000000"}]})


def test_main_prints_the_plan_and_reports_bad_input_as_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--plan prints tab-separated lines; --plan without --graph-sp or with a non-JSON file exits 2 with one line."""
    (tmp_path / "sp.json").write_text(json.dumps({"value": [sp(role("User.Read.All", ROLES["User.Read.All"]))]}))
    (tmp_path / "page.json").write_text(json.dumps({"value": []}))
    out = io.StringIO()

    code = cli.main(
        ["--plan", "--graph-sp", str(tmp_path / "sp.json"), "--assignments", str(tmp_path / "page.json")],
        environ={"REPLAY_CONTAINMENT_ENABLED": "false"},
        out=out,
    )

    assert (code, out.getvalue()) == (0, f"resource\t-\t{GRAPH_SP}\n")
    assert cli.main(["--plan"], environ={}, out=io.StringIO()) == 2
    (tmp_path / "bad.json").write_text("{")
    assert cli.main(["--plan", "--graph-sp", str(tmp_path / "bad.json")], environ={}, out=io.StringIO()) == 2
    assert capsys.readouterr().err.count("\n") == 2


def test_update_readme_replaces_only_the_blocks_and_needs_their_markers() -> None:
    """Text around the markers is kept; a README without a block is an error, not a silent no-op."""
    stale = "\n".join(f"{cli.begin_marker(k)}\nold\n{cli.end_marker(k)}" for k in cli.BLOCKS)
    text = f"intro\n{stale}\noutro\n"

    updated = cli.update_readme(text)

    assert updated.startswith("intro\n")
    assert updated.endswith("\noutro\n")
    assert "\nold\n" not in updated
    assert cli.update_readme(updated) == updated
    with pytest.raises(InputError, match="settings"):
        cli.update_readme("no markers")


def test_the_settings_table_marks_what_azure_requires() -> None:
    """REPLAY_WORKSPACE_ID is always required; the bot, channel and tenant only with containment."""
    rows = {line.split(" | ")[0].strip("| `"): line for line in cli.settings_markdown().splitlines()[2:]}

    assert "| yes |" in rows["REPLAY_WORKSPACE_ID"]
    assert "| with containment |" in rows["REPLAY_BOT_APP_ID"]
    assert "(or `REPLAY_APPROVER_OBJECT_IDS`)" in rows["REPLAY_APPROVER_GROUP_ID"]
    assert "| no |" in rows["REPLAY_ROW_CAP"]
