"""
What the product needs to be allowed to do: Graph application permissions per feature and per
identity, the Azure roles of the Function App's identity, and which target roles no Graph permission
alone covers.

Three managed identities, each holding only what its code path uses:

* the app identity (`AZURE_CLIENT_ID`): the Functions host, Log Analytics and Sentinel; no Graph permission;
* the bot identity (`REPLAY_BOT_APP_ID`): the Azure Bot's registration and the approver check, so the
  code that handles clicks arriving from Teams can read group membership and nothing more;
* the containment identity (`REPLAY_CONTAINMENT_CLIENT_ID`): the Graph reads and writes of containment,
  used only by the activity that runs an approved plan.

One table, read by four readers: the infra tests and the template (the deployment grants exactly this),
the grant script, the Graph adapter (a 403 names the permission the failing operation needs) and
containment (a target holding a privileged directory role is named before Graph refuses with an opaque
403). Keeping it in one place means a permission is never granted "just in case" and never missing
without a clear message.

Pure data and pure functions; nothing here talks to Graph or Azure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from common.settings import Settings

GRAPH_DOCS = "https://learn.microsoft.com/graph/api"


class Identity(StrEnum):
    """A managed identity of the deployment; each holds only the Graph permissions of its own features."""

    APP = "app"
    BOT = "bot"
    CONTAINMENT = "containment"


class Feature(StrEnum):
    """A thing the product does through Graph; optional containment actions share ActionKind's values."""

    TARGET_LOOKUP = "target_lookup"
    REVOKE_SESSIONS = "revoke_sessions"
    AUDIT_MFA_METHODS = "audit_mfa_methods"
    APPROVER_CHECK = "approver_check"
    PRIVILEGED_ROLE_CHECK = "privileged_role_check"
    CONFIRM_COMPROMISED = "confirm_compromised"
    DISABLE_ACCOUNT = "disable_account"
    DELETE_FLAGGED_METHODS = "delete_flagged_methods"
    REQUIRE_PASSWORD_CHANGE = "require_password_change"  # noqa: S105 (an action name, not a password)
    DELETE_ATTACKER_DEVICES = "delete_attacker_devices"
    REMOVE_INBOX_RULES = "remove_inbox_rules"
    AUDIT_DEVICES = "audit_devices"
    IDENTITY_CONTEXT = "identity_context"


@dataclass(frozen=True, slots=True)
class GraphNeed:
    """
    The least-privileged Graph application permissions one feature needs, all of them together.

    `identity` is the managed identity that makes the calls (and so holds the permissions), `calls`
    the HTTP calls the adapter makes for it, `why` the sentence for the README and the consent review,
    `caveat` what the permission alone does not cover, `source` the page that lists the permission as
    least privileged.
    """

    feature: Feature
    identity: Identity
    permissions: tuple[str, ...]
    calls: tuple[str, ...]
    why: str
    source: str
    caveat: str = ""


_SENSITIVE = (
    "On a user who holds an administrator role Entra ID also requires the app's identity to hold a directory role "
    "that may perform sensitive actions on that role (Privileged Authentication Administrator covers every role); "
    "see 'Who can perform sensitive actions' in the Entra built-in roles docs."
)

GRAPH_NEEDS: dict[Feature, GraphNeed] = {
    need.feature: need
    for need in (
        GraphNeed(
            Feature.TARGET_LOOKUP,
            Identity.CONTAINMENT,
            ("User.Read.All",),
            ("GET /users/{id}?$select=id,userPrincipalName,accountEnabled,userType",),
            "Resolve the suspect to an object id, tell 'user not found' from other failures, and read accountEnabled so "
            "disabling is idempotent (User.ReadBasic.All cannot read accountEnabled).",
            f"{GRAPH_DOCS}/user-get",
        ),
        GraphNeed(
            Feature.REVOKE_SESSIONS,
            Identity.CONTAINMENT,
            ("User.RevokeSessions.All",),
            ("POST /users/{id}/revokeSignInSessions",),
            "Invalidate the refresh tokens and session cookies a token thief replays; no broader permission is needed "
            "(older docs and playbooks ask for User.ReadWrite.All).",
            f"{GRAPH_DOCS}/user-revokesigninsessions",
            caveat=_SENSITIVE + " External (guest) users are not revoked: their sessions live in their home tenant.",
        ),
        GraphNeed(
            Feature.AUDIT_MFA_METHODS,
            Identity.CONTAINMENT,
            ("UserAuthenticationMethod.Read.All",),
            ("GET /users/{id}/authentication/methods",),
            "List the user's authentication methods to find one an attacker registered for persistence (read only).",
            f"{GRAPH_DOCS}/authentication-list-methods",
        ),
        GraphNeed(
            Feature.APPROVER_CHECK,
            Identity.BOT,
            ("GroupMember.Read.All", "User.Read.All"),
            ("POST /users/{id}/checkMemberGroups", "GET /users/{id}?$select=id,userPrincipalName"),
            "Check that the person who clicked Approve is a (transitive) member of the approver group, and read their "
            "UPN so the suspect is refused by UPN as well as by object id; resolve a suspect named only by UPN to an "
            "object id before an approval card is posted. Graph documents User.Read.All together with "
            "GroupMember.Read.All as the least-privileged pair for a user.",
            f"{GRAPH_DOCS}/directoryobject-checkmembergroups",
        ),
        GraphNeed(
            Feature.PRIVILEGED_ROLE_CHECK,
            Identity.CONTAINMENT,
            ("RoleManagement.Read.Directory",),
            ("GET /roleManagement/directory/roleAssignments?$filter=principalId eq '{id}'&$expand=roleDefinition",),
            "Name the directory roles the suspect holds before acting, so a refusal on an administrator is explained "
            "instead of an opaque 403. RoleManagement.Read.Directory is the first (least-privileged) application "
            "permission the role-assignment list documents; Directory.Read.All would also expose every other object.",
            f"{GRAPH_DOCS}/rbacapplication-list-roleassignments",
            caveat="The v1.0 list shows direct assignments; a role held through a role-assignable group is not listed "
            "(the beta transitiveRoleAssignments would), so Graph's own 403 remains the final word.",
        ),
        GraphNeed(
            Feature.CONFIRM_COMPROMISED,
            Identity.CONTAINMENT,
            ("IdentityRiskyUser.ReadWrite.All",),
            ("POST /identityProtection/riskyUsers/confirmCompromised",),
            "Set the user's risk to high in Entra ID Protection so risk-based Conditional Access blocks the user.",
            f"{GRAPH_DOCS}/riskyuser-confirmcompromised",
            caveat="Needs a Microsoft Entra ID P2 licence.",
        ),
        GraphNeed(
            Feature.DISABLE_ACCOUNT,
            Identity.CONTAINMENT,
            ("User.EnableDisableAccount.All", "User.Read.All"),
            ("PATCH /users/{id} {accountEnabled: false}",),
            "Block every new sign-in. User.EnableDisableAccount.All with User.Read.All is the documented least-privileged "
            "combination for accountEnabled; it replaces User.ReadWrite.All.",
            f"{GRAPH_DOCS}/user-update",
            caveat=_SENSITIVE + " A user synchronised from on-premises AD is re-enabled by the next sync unless it is "
            "disabled on-premises too.",
        ),
        GraphNeed(
            Feature.DELETE_FLAGGED_METHODS,
            Identity.CONTAINMENT,
            ("UserAuthenticationMethod.ReadWrite.All",),
            ("DELETE /users/{id}/authentication/{kind}Methods/{method-id}",),
            "Remove the methods the audit flagged (the attacker's persistence). It is the one permission that covers "
            "every method kind; it also allows reading, so it supersedes UserAuthenticationMethod.Read.All.",
            f"{GRAPH_DOCS}/resources/authenticationmethods-overview",
            caveat=_SENSITIVE + " The password method cannot be deleted.",
        ),
        GraphNeed(
            Feature.REQUIRE_PASSWORD_CHANGE,
            Identity.CONTAINMENT,
            ("User-PasswordProfile.ReadWrite.All",),
            ("PATCH /users/{id} {passwordProfile: {forceChangePasswordNextSignIn: true}}",),
            "Make the password the AiTM proxy captured useless: the user must choose a new one at the next sign-in. "
            "User-PasswordProfile.ReadWrite.All is the least-privileged permission for passwordProfile; User.ReadWrite.All "
            "does not include it.",
            f"{GRAPH_DOCS}/user-update",
            caveat=_SENSITIVE + " Graph's user-update page also asks an app-only caller that changes passwordProfile to "
            "hold a directory role that may reset the user's password (User Administrator for ordinary users). A user "
            "whose password is synchronised from on-premises AD or federated changes it there, not in Entra ID.",
        ),
        GraphNeed(
            Feature.DELETE_ATTACKER_DEVICES,
            Identity.CONTAINMENT,
            ("Device.ReadWrite.All",),
            ("GET /users/{id}/registeredDevices", "DELETE /devices/{id}"),
            "Remove the device the attacker registered or joined (device-code phishing registers one to obtain a "
            "Primary Refresh Token that revoking sessions does not end). Deleting, not disabling: app-only callers may "
            "update only extensionAttributes of a non-Windows device, while DELETE works for every platform. "
            "Device.ReadWrite.All is the only application permission DELETE /devices accepts; listing the user's "
            "devices needs User.Read.All (target lookup).",
            f"{GRAPH_DOCS}/device-delete",
            caveat="Device.ReadWrite.All covers every device of the tenant: no narrower application permission exists. "
            "A deleted device cannot be restored; its owner registers it again.",
        ),
        GraphNeed(
            Feature.REMOVE_INBOX_RULES,
            Identity.CONTAINMENT,
            ("MailboxSettings.ReadWrite",),
            ("GET /users/{id}/mailFolders/inbox/messageRules", "DELETE /users/{id}/mailFolders/inbox/messageRules/{rule-id}"),
            "Delete the inbox rules the mailbox audit attributes to the attacker's session (rules that hide or move "
            "replies); listing them needs MailboxSettings.Read, which MailboxSettings.ReadWrite includes.",
            f"{GRAPH_DOCS}/messagerule-delete",
            caveat="It reaches every mailbox's settings: an Exchange Online application access policy (or RBAC for "
            "Applications) can limit the identity to the mailboxes in scope. Forwarding set with Set-Mailbox "
            "(ForwardingSmtpAddress) is not writable through Graph v1.0: the comment gives the Exchange Online command.",
        ),
        GraphNeed(
            Feature.AUDIT_DEVICES,
            Identity.CONTAINMENT,
            ("User.Read.All",),
            ("GET /users/{id}/registeredDevices?$select=id,deviceId,displayName,operatingSystem,registrationDateTime,...",),
            "List the devices the user registered or joined, so the card shows which were registered from a suspect "
            "address before anyone approves (read only; the same permission as the target lookup).",
            f"{GRAPH_DOCS}/user-list-registereddevices",
        ),
        GraphNeed(
            Feature.IDENTITY_CONTEXT,
            Identity.CONTAINMENT,
            ("User.Read.All", "IdentityRiskyUser.Read.All", "IdentityRiskEvent.Read.All"),
            (
                "GET /users/{id}?$select=displayName,department,jobTitle&$expand=manager($select=displayName)",
                "GET /identityProtection/riskyUsers/{id}",
                "GET /identityProtection/riskDetections?$filter=userId eq '{id}'",
            ),
            "Who the suspect is before the click, where the workspace's IdentityInfo, AADRiskyUsers and "
            "AADUserRiskEvents tables are absent: profile and manager (User.Read.All), Entra ID Protection user risk "
            "(IdentityRiskyUser.Read.All) and recent risk detections (IdentityRiskEvent.Read.All), each the "
            "least-privileged read; directory roles come from the privileged role check. Held by the containment "
            "identity, which already reads the user and its roles, rather than a fourth identity.",
            f"{GRAPH_DOCS}/riskyuser-get",
            caveat="Risk needs a Microsoft Entra ID P2 licence; without it Graph refuses the risk reads and the card says so.",
        ),
    )
}

#: How the docs and hints name each identity.
IDENTITY_NAMES: dict[Identity, str] = {
    Identity.APP: "Function App's managed identity (AZURE_CLIENT_ID)",
    Identity.BOT: "approval bot's managed identity (REPLAY_BOT_APP_ID)",
    Identity.CONTAINMENT: "containment managed identity (REPLAY_CONTAINMENT_CLIENT_ID)",
}

#: Features every deployment with containment enabled uses.
_CORE_FEATURES = (
    Feature.TARGET_LOOKUP,
    Feature.REVOKE_SESSIONS,
    Feature.AUDIT_MFA_METHODS,
    Feature.PRIVILEGED_ROLE_CHECK,
    Feature.AUDIT_DEVICES,
    Feature.IDENTITY_CONTEXT,
)


def enabled_features(settings: Settings) -> tuple[Feature, ...]:
    """The Graph features the settings switch on, in table order."""
    if not settings.containment_enabled:
        return ()
    features = set(_CORE_FEATURES)
    if settings.approver_group_id:
        features.add(Feature.APPROVER_CHECK)
    features |= {Feature(name) for name in settings.optional_actions}
    return tuple(feature for feature in Feature if feature in features)


#: Permission -> the narrower one it includes; when both are needed only the broader is granted.
SUPERSEDES = {
    "UserAuthenticationMethod.ReadWrite.All": "UserAuthenticationMethod.Read.All",
    "IdentityRiskyUser.ReadWrite.All": "IdentityRiskyUser.Read.All",
}


def required_graph_permissions(settings: Settings, identity: Identity | None = None) -> frozenset[str]:
    """
    Exactly the Graph application permissions the enabled features need, for one identity (None: all
    of them together, a deployment that runs everything as one identity): nothing for enrichment only,
    and never a permission next to a broader one that includes it (ReadWrite covers Read).
    """
    needed = {
        permission
        for feature in enabled_features(settings)
        if identity is None or GRAPH_NEEDS[feature].identity is identity
        for permission in GRAPH_NEEDS[feature].permissions
    }
    return frozenset(needed - {narrower for broader, narrower in SUPERSEDES.items() if broader in needed})


def permissions_for(feature: Feature) -> tuple[str, ...]:
    return GRAPH_NEEDS[feature].permissions


def missing_permission_hint(feature: Feature, permissions: tuple[str, ...] | None = None) -> str:
    """
    The sentence a 403 on this feature shows an operator: what to grant, and what granting does not
    cover. `permissions` names the one call's own when the feature needs several for different calls.
    """
    need = GRAPH_NEEDS[feature]
    names = " and ".join(permissions or need.permissions)
    hint = f"grant the Microsoft Graph application permission {names} to the {IDENTITY_NAMES[need.identity]} ({need.source})"
    return f"{hint}. {need.caveat}" if need.caveat else hint


@dataclass(frozen=True, slots=True)
class AzureRole:
    """An Azure RBAC role the Function App's (app) managed identity needs; `role_id` is the built-in role definition id."""

    name: str
    role_id: str
    scope: str
    why: str


AZURE_ROLES: tuple[AzureRole, ...] = (
    AzureRole(
        "Log Analytics Reader",
        "73c42c96-874c-492b-b04d-ab87d138a893",
        "the Sentinel Log Analytics workspace",
        "run the evidence, baseline and context KQL queries over api.loganalytics.io",
    ),
    AzureRole(
        "Microsoft Sentinel Responder",
        "3e150937-b8fe-4cfb-8069-0eaf05ecd056",
        "the Sentinel Log Analytics workspace",
        "write the enrichment comment and update the incident (Reader cannot write comments)",
    ),
    AzureRole(
        "Storage Blob Data Owner",
        "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
        "the Function App's storage account",
        "Functions host and Durable Functions leases, task hub blobs and large messages over an identity connection",
    ),
    AzureRole(
        "Storage Queue Data Contributor",
        "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
        "the Function App's storage account",
        "Durable Functions control and work-item queues",
    ),
    AzureRole(
        "Storage Table Data Contributor",
        "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
        "the Function App's storage account",
        "Durable Functions history and instance tables",
    ),
    AzureRole(
        "Monitoring Metrics Publisher",
        "3913510d-42f4-4e42-8a64-420c390055eb",
        "the Function App's Application Insights component",
        "send telemetry with Entra ID auth (APPLICATIONINSIGHTS_AUTHENTICATION_STRING): the component has local "
        "(instrumentation key) auth disabled",
    ),
)


# Entra built-in role template ids (learn.microsoft.com/entra/identity/role-based-access-control/permissions-reference).
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
PRIVILEGED_AUTHENTICATION_ADMINISTRATOR = "7be44c8a-adaf-4e2a-84d6-ab2649e08a13"

#: The role that may perform sensitive actions (disable, revoke, change methods) on holders of every other role.
SENSITIVE_ACTION_ROLE = "Privileged Authentication Administrator"

#: Roles on which every role that may perform sensitive actions may act ("Who can perform sensitive actions"
#: table, rows ticked in all four columns). Holding only these does not put a user out of reach; any other
#: role, built-in or custom, does.
ROLES_ANY_ADMIN_MAY_ACT_ON: dict[str, str] = {
    "88d8e3e3-8f55-4a1e-953a-9b9898b8876b": "Directory Readers",
    "95e79109-95c0-4d8e-aee3-d01accf2d47b": "Guest Inviter",
    "790c1fb9-7f7d-4f88-86a1-ef1f95c05c1b": "Message Center Reader",
    "966707d0-3269-4727-9be2-8c3a10f19b9d": "Password Administrator",
    "4a5d8f65-41da-4de4-8968-e035b65339cf": "Reports Reader",
    "27460883-1df1-4691-b032-3b79643e5e63": "User Experience Success Manager",
    "75934031-6c7e-415a-99d7-48dbd49e875e": "Usage Summary Reports Reader",
}


@dataclass(frozen=True, slots=True)
class DirectoryRole:
    """A directory role a user holds: `template_id` identifies built-in roles across tenants."""

    template_id: str
    name: str


def protected_roles(roles: Iterable[DirectoryRole]) -> tuple[DirectoryRole, ...]:
    """
    The roles that put a user out of reach of an app holding only Graph application permissions.

    Entra ID treats disabling, revoking refresh tokens and changing authentication methods as
    sensitive actions: on a holder of an administrator role they need the caller to hold a higher
    directory role, which an application permission is not. Global Administrator is listed first
    because it is the case analysts most need to hear about.
    """
    found = {role.template_id.lower(): role for role in roles if role.template_id.lower() not in ROLES_ANY_ADMIN_MAY_ACT_ON}
    first = [found.pop(GLOBAL_ADMINISTRATOR)] if GLOBAL_ADMINISTRATOR in found else []
    return (*first, *sorted(found.values(), key=lambda role: role.name.lower()))


def privileged_target_note(roles: Iterable[DirectoryRole]) -> str:
    """The sentence for a target out of reach, or "" when the app's permissions suffice."""
    protected = protected_roles(roles)
    if not protected:
        return ""
    names = ", ".join(role.name or role.template_id for role in protected)
    return (
        f"the user holds the directory role(s) {names}: Entra ID lets only an identity holding "
        f"{SENSITIVE_ACTION_ROLE} (or Global Administrator) revoke, disable or change the methods of such a user, "
        "and Graph application permissions alone are not enough. Act manually with such an account, or assign "
        f"{SENSITIVE_ACTION_ROLE} to the containment managed identity if the organisation accepts that"
    )
