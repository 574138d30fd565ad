"""
`python -m playbooks.permissions`: what `playbooks.domain.permissions` derives, printed for scripts and docs.

The deployment script (`infra/scripts/grant-graph-permissions.sh`) and the README must never retype
a permission, a role or a setting name: a retyped list drifts from the code the day a feature is
added. So this command prints, from the same tables the code uses:

* (default) the Graph application permissions the settings need, sorted, one per line, for one
  identity (`--identity bot|containment|app`) or for all of them together (`all`, the default: a
  deployment that runs as one identity);
* `--plan`: given Graph's answers (the Microsoft Graph service principal and the identity's
  app-role assignments, as JSON files), which assignments to add, keep and remove;
* `--markdown settings|permissions`: the README's generated tables (`--update-readme` rewrites them);
* `--template-json`: the table `infra/main.bicep` reads (`infra/graph-permissions.json`) when the
  template grants the Graph permissions itself.

Only the standard library and `common.settings` are imported, so it runs on a deployer's laptop
or Cloud Shell with a bare Python 3.11+, and nothing here talks to Graph: the script does the calls.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TextIO

from common.command import EXIT_BAD_INPUT, EXIT_OK, ArgumentParser
from common.errors import InputError, SettingsError
from common.identifiers import is_guid
from common.settings import OPTIONAL_ACTIONS, Settings
from playbooks.domain.permissions import (
    AZURE_ROLES,
    GRAPH_NEEDS,
    IDENTITY_NAMES,
    ROLES_ANY_ADMIN_MAY_ACT_ON,
    SENSITIVE_ACTION_ROLE,
    Feature,
    Identity,
    enabled_features,
    required_graph_permissions,
)

#: appId of the Microsoft Graph service principal, the same in every tenant.
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"

#: An app-role assignment id as Graph returns it: base64url, e.g. `41W1zT6z1U-kJxf62svfp1HFE8pMZhxDun-ThPczmJE`
#: (not a GUID). Only these characters can reach the DELETE URL the script builds.
_ASSIGNMENT_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")

#: `--identity` values: one identity's permissions, or `all` of them together.
ALL_IDENTITIES = "all"

#: What an operator sees when a feature's permissions are missing (read from playbooks.adapters.graph,
#: containment, authorization): the README states it next to each permission.
WITHOUT: dict[Feature, str] = {
    Feature.TARGET_LOOKUP: "Containment cannot read the suspect: it acts on the incident's object id or UPN blind (a note "
    "says so), a guest is not recognised as one, and disabling an already disabled account is not detected.",
    Feature.REVOKE_SESSIONS: "Revoke sessions fails with 403: the refresh tokens and session cookies the attacker replays "
    "stay valid.",
    Feature.AUDIT_MFA_METHODS: "The MFA audit fails with 403: a method the attacker registered for persistence is not found.",
    Feature.APPROVER_CHECK: "Group membership cannot be checked: every click by a group member is refused ('membership of "
    "the approver group could not be checked'); only people listed in REPLAY_APPROVER_OBJECT_IDS can decide.",
    Feature.PRIVILEGED_ROLE_CHECK: "Directory roles cannot be read: containment still runs, but a refusal on an "
    "administrator is reported as a bare 403 instead of naming the role.",
    Feature.CONFIRM_COMPROMISED: "Confirm compromised fails with 403: user risk is not raised, so risk-based Conditional "
    "Access does not block the user.",
    Feature.DISABLE_ACCOUNT: "Disable account fails with 403: the account can still sign in.",
    Feature.DELETE_FLAGGED_METHODS: "Deleting flagged methods fails with 403: the attacker's method stays registered until "
    "an administrator removes it.",
    Feature.REQUIRE_PASSWORD_CHANGE: "Requiring a password change fails with 403: the phished password keeps working.",
    Feature.DELETE_ATTACKER_DEVICES: "Deleting the attacker's devices fails with 403: a device registered from a suspect "
    "address keeps its Primary Refresh Token until an administrator deletes it.",
    Feature.REMOVE_INBOX_RULES: "Removing the attacker's inbox rules fails with 403: a rule hiding or moving replies stays "
    "until someone deletes it in Outlook or Exchange Online.",
    Feature.AUDIT_DEVICES: "The devices the user registered cannot be listed: the card says so, and a device registered "
    "from a suspect address is not shown before approval.",
    Feature.IDENTITY_CONTEXT: "Where the workspace has no IdentityInfo or risk tables, the card and comment say the "
    "profile or the Entra ID Protection risk could not be read (naming the missing permission).",
}

#: The same for the Azure roles of the Function App's managed identity, by role name.
ROLE_WITHOUT: dict[str, str] = {
    "Log Analytics Reader": "Every query is refused (403): no evidence and no score; the incident gets a failure comment "
    "naming the query step instead of the enrichment.",
    "Microsoft Sentinel Responder": "The incident cannot be read, commented on or labelled (403): the enrichment never "
    "reaches the incident, and neither does the failure notice; only the Function App's logs show it.",
    "Storage Blob Data Owner": "The Functions host cannot take its leases or read the deployment package: nothing runs.",
    "Storage Queue Data Contributor": "Orchestrations are never scheduled: incidents are accepted (202) and then stall.",
    "Storage Table Data Contributor": "Durable Functions cannot record history: orchestrations fail to start.",
    "Monitoring Metrics Publisher": "Application Insights rejects the telemetry: the app runs, but no logs, requests or "
    "failures reach App Insights, so nothing can be diagnosed there.",
}

#: The settings that decide which Graph permissions are needed (the script's flags set them).
FEATURE_SWITCHES = ("REPLAY_CONTAINMENT_ENABLED", "REPLAY_APPROVER_GROUP_ID", "REPLAY_OPTIONAL_ACTIONS")

#: README markers around each generated block: "<!-- BEGIN generated: {kind} -->" ... "<!-- END generated: {kind} -->".
BLOCKS = ("settings", "permissions")


def begin_marker(kind: str) -> str:
    return f"<!-- BEGIN generated: {kind} (python -m playbooks.permissions --update-readme README.md) -->"


def end_marker(kind: str) -> str:
    return f"<!-- END generated: {kind} -->"


# ---- required permissions ----------------------------------------------------------------------


def required_lines(settings: Settings, identity: Identity | None = None) -> list[str]:
    """The script's input: one permission per line, sorted so the output is stable (None: every identity's)."""
    return sorted(required_graph_permissions(settings, identity))


def settings_from(path: Path | None, environ: Mapping[str, str]) -> Settings:
    """
    The deployment's settings: the whole `local.settings.json` when given (every value validated),
    else only the feature switches from the environment, so an unrelated variable cannot fail it.
    """
    if path is not None:
        return Settings.from_file(path)
    return Settings.from_values({name: environ[name] for name in FEATURE_SWITCHES if name in environ})


# ---- plan: Graph's answers -> assignments to add, keep and remove -------------------------------


@dataclass(frozen=True, slots=True)
class Assignment:
    """One app-role assignment the identity holds on Graph: `permission` is the app role's value."""

    permission: str
    assignment_id: str


@dataclass(frozen=True, slots=True)
class GrantPlan:
    """
    What the script does: `grant` (permission, appRoleId) pairs to POST, `keep` assignments already
    right, `remove` Graph assignments no enabled feature needs. `resource_id` is the Graph service
    principal's object id, the `resourceId` of every assignment.
    """

    resource_id: str
    grant: tuple[tuple[str, str], ...]
    keep: tuple[Assignment, ...]
    remove: tuple[Assignment, ...]

    def lines(self) -> list[str]:
        """Tab-separated lines the script reads: kind, permission, id (appRoleId to grant, assignment id otherwise)."""
        return [
            f"resource\t-\t{self.resource_id}",
            *(f"grant\t{name}\t{role_id}" for name, role_id in self.grant),
            *(f"keep\t{a.permission}\t{a.assignment_id}" for a in self.keep),
            *(f"remove\t{a.permission}\t{a.assignment_id}" for a in self.remove),
        ]


def _guid(value: object, what: str) -> str:
    """Ids go into URLs and request bodies the script builds, so anything but a GUID is refused."""
    if not isinstance(value, str) or not is_guid(value):
        msg = f"{what} is not a GUID: {value!r}"
        raise InputError(msg)
    return value.lower()


def _assignment_id(value: object, what: str) -> str:
    """
    An app-role assignment id, kept exactly as Graph wrote it (base64url: case matters).

    It goes into the DELETE URL the script builds, so anything outside base64url (a slash, a dot, a
    space) is refused: Graph never returns one, and it could redirect the call.
    """
    if not isinstance(value, str) or not _ASSIGNMENT_ID.fullmatch(value):
        msg = f"{what} is not a Graph app-role assignment id (base64url): {value!r}"
        raise InputError(msg)
    return value


def graph_service_principal(document: Mapping[str, Any]) -> Mapping[str, Any]:
    """The Microsoft Graph service principal from a `$filter=appId eq '...'` answer (or the object itself)."""
    found = document["value"] if isinstance(document.get("value"), list) else [document]
    graph = [sp for sp in found if isinstance(sp, Mapping) and str(sp.get("appId", GRAPH_APP_ID)).lower() == GRAPH_APP_ID]
    if len(graph) != 1:
        msg = f"expected one Microsoft Graph service principal (appId {GRAPH_APP_ID}), found {len(graph)}"
        raise InputError(msg)
    return graph[0]


def grant_plan(required: Iterable[str], graph_sp: Mapping[str, Any], assignments: Iterable[Mapping[str, Any]]) -> GrantPlan:
    """
    Diff what the features need against what the identity holds, on Graph only.

    Assignments to other resources (another API the identity was granted) are never touched. A
    required permission Graph does not offer as an application role is an error before anything is
    written, so a typo or a sovereign cloud without the permission cannot leave a half-granted identity.
    """
    resource_id = _guid(graph_sp.get("id"), "the Graph service principal id")
    roles: dict[str, str] = {}
    for role in graph_sp.get("appRoles", []):
        if "Application" in role.get("allowedMemberTypes", ["Application"]) and role.get("isEnabled", True):
            roles[str(role["value"])] = _guid(role.get("id"), f"the app role id of {role.get('value')}")
    names_by_id = {role_id: name for name, role_id in roles.items()}
    wanted = sorted(set(required))
    unknown = [name for name in wanted if name not in roles]
    if unknown:
        msg = f"Microsoft Graph offers no application permission named {', '.join(unknown)}"
        raise InputError(msg)
    held: dict[str, Assignment] = {}
    for item in assignments:
        if str(item.get("resourceId", "")).lower() != resource_id:
            continue
        role_id = str(item.get("appRoleId", "")).lower()
        name = names_by_id.get(role_id, role_id)
        held.setdefault(name, Assignment(name, _assignment_id(item.get("id"), f"the assignment id of {name}")))
    return GrantPlan(
        resource_id=resource_id,
        grant=tuple((name, roles[name]) for name in wanted if name not in held),
        keep=tuple(held[name] for name in wanted if name in held),
        remove=tuple(held[name] for name in sorted(held) if name not in wanted),
    )


def _read_json(path: Path) -> Mapping[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as error:
        msg = f"{path}: cannot read ({error.strerror})"
        raise InputError(msg) from error
    except json.JSONDecodeError as error:
        msg = f"{path}: not JSON ({error.msg} at line {error.lineno})"
        raise InputError(msg) from error
    if not isinstance(document, Mapping):
        msg = f"{path}: expected a JSON object"
        raise InputError(msg)
    return document


def _pages(paths: Sequence[Path]) -> list[Mapping[str, Any]]:
    """Every assignment of every page (`{"value": [...]}` as Graph lists them)."""
    return [item for path in paths for item in _read_json(path).get("value", []) if isinstance(item, Mapping)]


# ---- markdown ----------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _env(field_name: str) -> str:
    return str(next(f.metadata["env"] for f in fields(Settings) if f.name == field_name))


def _default(value: object) -> str:
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value in ("", (), frozenset()):
        return "(empty)"
    return f"`{value}`"


def _required_in_azure() -> dict[str, str]:
    """Setting -> when the Function App cannot run without it, read from `Settings.missing_for_azure`."""

    def named(problems: Iterable[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for problem in problems:
            head = problem.split(":", 1)[0]
            names = re.findall(r"[A-Z][A-Z0-9_]{2,}", head)
            for name in names:
                others = [f"`{other}`" for other in names if other != name]
                found[name] = f" (or {', '.join(others)})" if others else ""
        return found

    always = named(Settings(containment_enabled=False).missing_for_azure())
    with_containment = named(Settings().missing_for_azure())
    required = {name: "yes" + alternative for name, alternative in always.items()}
    for name, alternative in with_containment.items():
        required.setdefault(name, f"with containment{alternative}")
    return required


def settings_markdown() -> str:
    """Every app setting, its default, whether Azure needs it and what it sets, in declaration order."""
    required = _required_in_azure()
    rows = [
        "| setting | default | required in Azure | what it sets |",
        "|---|---|---|---|",
    ]
    for spec in fields(Settings):
        name = spec.metadata["env"]
        rows.append(
            f"| `{name}` | {_cell(_default(spec.default))} | {required.get(name, 'no')} | {_cell(spec.metadata['doc'])} |"
        )
    return "\n".join(rows) + "\n"


def _probe(feature: Feature) -> str:
    """The switch that turns a feature on, found by asking `enabled_features`, so the docs cannot claim another."""
    if feature in enabled_features(Settings()):
        return f"containment (`{_env('containment_enabled')}=true`, the default)"
    if feature in enabled_features(Settings(approver_group_id="00000000-0000-0000-0000-000000000001")):
        return f"`{_env('approver_group_id')}` is set"
    for action in OPTIONAL_ACTIONS:
        if feature in enabled_features(Settings(optional_actions=frozenset({action}))):
            return f"`{_env('optional_actions')}` includes `{action}`"
    msg = f"no setting switches on {feature}"
    raise ValueError(msg)


def _label(feature: Feature) -> str:
    return feature.value.replace("_", " ")


def _combinations() -> list[tuple[str, Settings]]:
    containment, group, actions = _env("containment_enabled"), _env("approver_group_id"), _env("optional_actions")
    return [
        (f"`{containment}=false` (enrichment only)", Settings(containment_enabled=False)),
        ("defaults (containment on)", Settings()),
        (f"defaults + `{group}`", Settings(approver_group_id="00000000-0000-0000-0000-000000000001")),
        (
            f"defaults + `{group}` + `{actions}={','.join(OPTIONAL_ACTIONS)}`",
            Settings(approver_group_id="00000000-0000-0000-0000-000000000001", optional_actions=frozenset(OPTIONAL_ACTIONS)),
        ),
    ]


def permissions_markdown() -> str:
    """The README's permission tables: Graph per permission, per switch combination, caveats, Azure roles."""
    needed_by: dict[str, list[Feature]] = {}
    for feature in Feature:
        for permission in GRAPH_NEEDS[feature].permissions:
            needed_by.setdefault(permission, []).append(feature)
    identities = ", ".join(f"{identity.value}: the {IDENTITY_NAMES[identity]}" for identity in Identity)
    out = [
        f"Three managed identities ({identities}). Microsoft Graph application permissions are app-role assignments on "
        "the identity that makes the calls; `infra/scripts/grant-graph-permissions.sh` (or the template, with "
        "`grantGraphPermissions=true`) grants exactly these, and the app identity holds none:",
        "",
        "| permission | held by | needed by (switched on by) | what breaks without it |",
        "|---|---|---|---|",
    ]
    for permission in sorted(needed_by):
        users = needed_by[permission]
        holders = ", ".join(sorted({GRAPH_NEEDS[f].identity.value for f in users}))
        by = "; ".join(f"{_label(f)} ({_probe(f)})" for f in users)
        breaks = " ".join(f"{_label(f).capitalize()}: {WITHOUT[f]}" if len(users) > 1 else WITHOUT[f] for f in users)
        out.append(f"| `{permission}` | {holders} | {_cell(by)} | {_cell(breaks)} |")
    out += [
        "",
        "What each combination of switches holds, and nothing more:",
        "",
        "| settings | bot identity | containment identity |",
        "|---|---|---|",
    ]
    for label, settings in _combinations():
        held = [
            ", ".join(f"`{p}`" for p in required_lines(settings, who)) or "none" for who in (Identity.BOT, Identity.CONTAINMENT)
        ]
        out.append(f"| {label} | {held[0]} | {held[1]} |")
    out += [
        "",
        "Per feature: the identity, the calls it makes, why this permission is the least one, and what it does not cover.",
        "",
    ]
    for feature in Feature:
        need = GRAPH_NEEDS[feature]
        calls = ", ".join(f"`{call}`" for call in need.calls)
        line = (
            f"- **{_label(feature)}** ({', '.join(f'`{p}`' for p in need.permissions)}; {need.identity.value} identity): "
            f"{calls}. {need.why} [docs]({need.source})"
        )
        if need.caveat:
            line += f" Caveat: {need.caveat}"
        out.append(line)
    exempt = ", ".join(sorted(ROLES_ANY_ADMIN_MAY_ACT_ON.values()))
    out += [
        "",
        f"Privileged targets: on a user holding any directory role other than {exempt}, Entra ID refuses revoke, "
        f"disable and method changes from an identity that holds only Graph application permissions. Containment names "
        f"the role in the card and the comment; an administrator acts by hand, or the organisation assigns "
        f"{SENSITIVE_ACTION_ROLE} to the containment identity (a broad, privileged role: weigh it).",
        "",
        "Azure roles of the app identity (assigned by `infra/`; the bot and containment identities hold none):",
        "",
        "| role | role id | scope | for | what breaks without it |",
        "|---|---|---|---|---|",
    ]
    out += [
        f"| {role.name} | `{role.role_id}` | {role.scope} | {_cell(role.why)} | {_cell(ROLE_WITHOUT[role.name])} |"
        for role in AZURE_ROLES
    ]
    return "\n".join(out) + "\n"


MARKDOWN = {"settings": settings_markdown, "permissions": permissions_markdown}

#: Where the template's copy of the table lives, and the command that regenerates it.
TEMPLATE_TABLE = "infra/graph-permissions.json"
TEMPLATE_COMMAND = f"python -m playbooks.permissions --template-json > {TEMPLATE_TABLE}"


def action_key(actions: Iterable[str]) -> str:
    """The template's key for a set of optional actions: their names in OPTIONAL_ACTIONS order, comma-joined."""
    chosen = set(actions)
    return ",".join(action for action in OPTIONAL_ACTIONS if action in chosen)


def template_table() -> dict[str, Any]:
    """
    What `infra/main.bicep` reads to grant Graph permissions itself (`grantGraphPermissions=true`).

    Bicep cannot run this code, so the table is precomputed for every setting it can meet: the
    containment identity's permissions per set of optional actions (keyed by `action_key`), and the
    bot identity's when an approver group is set; both only while containment is enabled, which the
    template checks itself. A test compares the committed file with this output.
    """
    subsets = [
        frozenset(a for i, a in enumerate(OPTIONAL_ACTIONS) if mask >> i & 1) for mask in range(2 ** len(OPTIONAL_ACTIONS))
    ]
    group = "00000000-0000-0000-0000-000000000001"
    return {
        "generatedBy": TEMPLATE_COMMAND,
        "optionalActions": list(OPTIONAL_ACTIONS),
        "containment": {
            action_key(subset): required_lines(Settings(optional_actions=subset), Identity.CONTAINMENT)
            for subset in sorted(subsets, key=action_key)
        },
        "botWithApproverGroup": required_lines(Settings(approver_group_id=group), Identity.BOT),
    }


def template_json() -> str:
    return json.dumps(template_table(), indent=2) + "\n"


def generated_block(kind: str) -> str:
    """One block with its markers, as it appears in the README."""
    return f"{begin_marker(kind)}\n{MARKDOWN[kind]()}{end_marker(kind)}"


def update_readme(text: str) -> str:
    """The README with every generated block replaced by its current text; a missing marker is an error."""
    for kind in BLOCKS:
        begin, end = begin_marker(kind), end_marker(kind)
        start, stop = text.find(begin), text.find(end)
        if start < 0 or stop < start:
            msg = f"README has no '{begin}' ... '{end}' block"
            raise InputError(msg)
        text = text[:start] + generated_block(kind) + text[stop + len(end) :]
    return text


# ---- command line ------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m playbooks.permissions", description="What playbooks.domain.permissions derives, for scripts and docs."
    )
    parser.add_argument("--settings", type=Path, help="a local.settings.json; default: the feature switches from the environment")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--plan", action="store_true", help="print the grant plan from --graph-sp and --assignments")
    mode.add_argument("--markdown", choices=BLOCKS, help="print one of the README's generated blocks")
    mode.add_argument("--update-readme", type=Path, metavar="README", help="rewrite the generated blocks in README")
    mode.add_argument("--template-json", action="store_true", help=f"print {TEMPLATE_TABLE}, the table the template reads")
    parser.add_argument(
        "--identity",
        choices=[*(identity.value for identity in Identity), ALL_IDENTITIES],
        default=ALL_IDENTITIES,
        help="whose Graph permissions: bot, containment, app (none), or all together (default)",
    )
    parser.add_argument("--graph-sp", type=Path, help="Graph's answer for the Microsoft Graph service principal (JSON)")
    parser.add_argument("--assignments", type=Path, action="append", default=[], help="a page of appRoleAssignments (JSON)")
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None, out: TextIO | None = None) -> int:
    """Run the command; errors are one line on stderr and exit 2 (nothing is ever half printed)."""
    out = out or sys.stdout
    try:
        args = _parser().parse_args(argv)
        if args.markdown:
            out.write(MARKDOWN[args.markdown]())
            return EXIT_OK
        if args.template_json:
            out.write(template_json())
            return EXIT_OK
        if args.update_readme:
            readme: Path = args.update_readme
            readme.write_text(update_readme(readme.read_text(encoding="utf-8")), encoding="utf-8")
            return EXIT_OK
        settings = settings_from(args.settings, os.environ if environ is None else environ)
        identity = None if args.identity == ALL_IDENTITIES else Identity(args.identity)
        if args.plan:
            if args.graph_sp is None:
                msg = "--plan needs --graph-sp FILE (and one --assignments FILE per page)"
                raise InputError(msg)
            plan = grant_plan(
                required_lines(settings, identity), graph_service_principal(_read_json(args.graph_sp)), _pages(args.assignments)
            )
            lines = plan.lines()
        else:
            lines = required_lines(settings, identity)
    except (InputError, SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    out.write("".join(f"{line}\n" for line in lines))
    return EXIT_OK
