"""
The incident as this app sees it: parsed once from what Sentinel sends, plus the label decision.

Pure functions over plain JSON. Two body shapes arrive at `POST /api/incidents`: the Logic App
"Microsoft Sentinel incident" trigger body (`{"object": <incident>, "workspaceId", ...}`) and a bare
incident ARM resource (what `GET .../incidents/{id}` returns). Both become one `IncidentRef`.

Suspect accounts are read from the Account entities BY KIND and by property name, never by position:
an entity names a person through `aadUserId`, `accountName`+`upnSuffix`, a UPN-shaped
`accountName`/`friendlyName`/`displayName`, or (last resort) `objectGuid`. Entities that name the
same person (same object id, or same UPN once case and the guest `#EXT#` form are normalised) are
merged into one `Account`.

The incident id becomes part of ARM URLs, so the resource id is parsed segment by segment against
strict patterns and rebuilt canonically; nothing from the body is pasted into a URL as received.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from common.errors import InputError
from common.identifiers import GUID, is_guid
from common.times import parse_utc
from common.urls import https_url
from enrichment.domain.model import Account, Verdict
from enrichment.queries import kql

# ARM naming rules: resource groups 1-90 of letters, digits, `_ - . ( )` not ending in `.`;
# Log Analytics workspaces 4-63 of letters, digits and `-`.
_RESOURCE_GROUP = re.compile(r"^[-\w.()]{0,89}[-\w()]$")
_WORKSPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{2,61}[A-Za-z0-9]$")
_INCIDENT_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.OperationalInsights/"
    r"workspaces/(?P<ws>[^/]+)/providers/Microsoft\.SecurityInsights/incidents/(?P<name>[^/]+)/?$",
    re.IGNORECASE,
)

#: Our labels, one per verdict; the stale sibling is removed when the verdict changes.
LABEL_PREFIX = "token-replay:"
VERDICT_LABELS: dict[Verdict, str] = {verdict: LABEL_PREFIX + verdict.slug for verdict in Verdict}

_SEVERITY_ORDER = {"informational": 0, "low": 1, "medium": 2, "high": 3}

#: Incident properties the service computes; they are dropped from the PUT body (read-only in the spec).
READ_ONLY_PROPERTIES = frozenset(
    {"additionalData", "createdTimeUtc", "lastModifiedTimeUtc", "incidentNumber", "incidentUrl", "relatedAnalyticRuleIds"}
)


@dataclass(frozen=True, slots=True)
class IncidentRef:
    """
    One Sentinel incident: where it lives, what to call it, when it happened, and who it names.

    `accounts` is None when the body carried no entities at all (a bare ARM resource, or a trigger
    without `relatedEntities`): the orchestration then reads them from Sentinel. `unresolved` names
    Account entities that carry no Entra identity (e.g. `domain\\administrator`), and `entity_kinds`
    counts the entities by kind, so the "no account" comment can say what the incident did contain.
    """

    subscription_id: str
    resource_group: str
    workspace_name: str
    name: str  # the incident id (GUID), lower-case
    number: int | None
    title: str
    severity: str
    at: datetime
    accounts: tuple[Account, ...] | None
    unresolved: tuple[str, ...] = ()
    entity_kinds: tuple[tuple[str, int], ...] = ()
    workspace_id: str = ""  # the Log Analytics workspace GUID, when the trigger said
    url: str = ""  # the portal link (`incidentUrl`), when it is a plain https URL

    @property
    def resource_id(self) -> str:
        """The canonical ARM id, rebuilt from validated segments."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.OperationalInsights/workspaces/{self.workspace_name}"
            f"/providers/Microsoft.SecurityInsights/incidents/{self.name}"
        )

    @property
    def label(self) -> str:
        """How logs and comments name the incident: its number when known."""
        return f"#{self.number}" if self.number is not None else self.name

    def with_accounts(self, resolution: AccountResolution) -> IncidentRef:
        """The same incident with the accounts read from Sentinel's entities."""
        return IncidentRef(
            self.subscription_id,
            self.resource_group,
            self.workspace_name,
            self.name,
            self.number,
            self.title,
            self.severity,
            self.at,
            resolution.accounts,
            resolution.unresolved,
            resolution.kinds,
            self.workspace_id,
            self.url,
        )

    def to_json(self) -> dict[str, Any]:
        """Plain JSON for the orchestration input (Durable stores it in its history)."""
        return {
            "subscription_id": self.subscription_id,
            "resource_group": self.resource_group,
            "workspace_name": self.workspace_name,
            "name": self.name,
            "number": self.number,
            "title": self.title,
            "severity": self.severity,
            "at": self.at.isoformat(),
            "accounts": None if self.accounts is None else [account_json(a) for a in self.accounts],
            "unresolved": list(self.unresolved),
            "entity_kinds": [[kind, count] for kind, count in self.entity_kinds],
            "workspace_id": self.workspace_id,
            "url": self.url,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IncidentRef:
        """The inverse of `to_json`; validates again, since orchestration input is stored text."""
        try:
            accounts = data.get("accounts")
            ref = cls(
                subscription_id=_checked(data["subscription_id"], GUID, "subscription id").lower(),
                resource_group=_checked(data["resource_group"], _RESOURCE_GROUP, "resource group"),
                workspace_name=_checked(data["workspace_name"], _WORKSPACE, "workspace name"),
                name=_checked(data["name"], GUID, "incident id").lower(),
                number=data.get("number"),
                title=str(data.get("title") or ""),
                severity=str(data.get("severity") or ""),
                at=_time(data["at"], "at"),
                accounts=None if accounts is None else tuple(account_from_json(a) for a in accounts),
                unresolved=tuple(str(u) for u in data.get("unresolved") or ()),
                entity_kinds=tuple((str(k), int(c)) for k, c in data.get("entity_kinds") or ()),
                workspace_id=str(data.get("workspace_id") or ""),
                url=https_url(data.get("url")),
            )
        except (KeyError, TypeError, ValueError) as error:
            msg = f"not a stored incident reference: {error}"
            raise InputError(msg) from error
        return ref


def account_json(account: Account) -> dict[str, str]:
    return {"upn": account.upn, "object_id": account.object_id}


def account_from_json(data: Mapping[str, Any]) -> Account:
    upn, object_id = str(data.get("upn") or ""), str(data.get("object_id") or "")
    if not upn and not object_id:
        msg = "an account needs a UPN or an object id"
        raise ValueError(msg)
    return Account(upn, object_id)


#: Namespace of our comment ids; changing it would orphan every comment already written.
COMMENT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:token-replay-playbook:incident-comment")


def comment_id(incident: IncidentRef, purpose: str, account: str = "") -> str:
    """
    The id of our comment for (incident, account, purpose): the same on every run, so a re-run or a
    duplicate delivery replaces the comment instead of adding another. `account` is empty for the
    incident-wide enrichment comment; the approval step names the account it writes about.
    """
    return str(uuid.uuid5(COMMENT_NAMESPACE, f"{incident.name}|{account.lower()}|{purpose}"))


def instance_id(incident: IncidentRef) -> str:
    """The Durable instance id: one orchestration per incident, so duplicate deliveries collide."""
    return f"incident-{incident.name}"


# -- parsing the body ---------------------------------------------------------------------------


def parse_incident(body: object, *, received_at: datetime | None = None) -> IncidentRef:
    """
    An `IncidentRef` from a trigger body or a bare incident resource; `InputError` says what is wrong.

    The incident time is `firstActivityTimeUtc` (stable when later alerts join the incident, so a
    re-run queries the same window), else `createdTimeUtc`, else `received_at`.
    """
    if body is None or body in ({}, ""):
        msg = (
            "empty body: send the Logic App 'Microsoft Sentinel incident' trigger body or an incident resource "
            "(the connector's 'Run Trigger' button sends nothing; run the playbook on an incident instead)"
        )
        raise InputError(msg)
    if not isinstance(body, Mapping):
        msg = f"the body must be a JSON object, not {type(body).__name__}"
        raise InputError(msg)
    workspace_id = ""
    if "object" in body:
        schema = body.get("objectSchemaType")
        if schema is not None and str(schema).lower() != "incident":
            msg = f"objectSchemaType is {schema!r}: this endpoint takes incidents only"
            raise InputError(msg)
        resource = body["object"]
        raw_workspace = body.get("workspaceId")
        if raw_workspace:
            workspace_id = _checked(raw_workspace, GUID, "workspaceId").lower()
    else:
        resource = body
    if not isinstance(resource, Mapping):
        msg = "the incident ('object') must be a JSON object"
        raise InputError(msg)
    raw_id = resource.get("id")
    if not isinstance(raw_id, str) or not raw_id:
        msg = "the incident has no ARM 'id' (/subscriptions/.../providers/Microsoft.SecurityInsights/incidents/<guid>)"
        raise InputError(msg)
    subscription, group, workspace, name = parse_resource_id(raw_id)
    properties = resource.get("properties")
    if not isinstance(properties, Mapping):
        msg = "the incident has no 'properties' object"
        raise InputError(msg)

    at = _incident_time(properties, received_at)
    number = properties.get("incidentNumber")
    if number is not None and (isinstance(number, bool) or not isinstance(number, int)):
        try:
            number = int(str(number))
        except ValueError:
            msg = f"incidentNumber is not a number: {number!r}"
            raise InputError(msg) from None
    entities = properties.get("relatedEntities")
    if entities is not None and not isinstance(entities, list):
        msg = "relatedEntities must be a list"
        raise InputError(msg)
    ref = IncidentRef(
        subscription_id=subscription,
        resource_group=group,
        workspace_name=workspace,
        name=name,
        number=number,
        title=str(properties.get("title") or ""),
        severity=str(properties.get("severity") or ""),
        at=at,
        accounts=None,
        workspace_id=workspace_id,
        url=https_url(properties.get("incidentUrl")),
    )
    # An empty or missing list is "not told", not "none": the function asks Sentinel then.
    return ref.with_accounts(resolve_accounts(entities)) if entities else ref


def parse_resource_id(raw_id: str) -> tuple[str, str, str, str]:
    """(subscription, resource group, workspace, incident id) of a Sentinel incident ARM id, validated."""
    match = _INCIDENT_ID.match(raw_id.strip())
    if not match:
        msg = f"not a Sentinel incident resource id: {raw_id[:200]!r}"
        raise InputError(msg)
    return (
        _checked(match["sub"], GUID, "subscription id").lower(),
        _checked(match["rg"], _RESOURCE_GROUP, "resource group"),
        _checked(match["ws"], _WORKSPACE, "workspace name"),
        _checked(match["name"], GUID, "incident id").lower(),
    )


def _checked(value: object, pattern: re.Pattern[str], role: str) -> str:
    text = str(value).strip() if value is not None else ""
    if not pattern.fullmatch(text):
        msg = f"not a valid {role}: {text[:100]!r}"
        raise InputError(msg)
    return text


def _time(value: object, role: str) -> datetime:
    if not isinstance(value, str):
        msg = f"{role}: not a time: {value!r}"
        raise InputError(msg)
    try:
        return parse_utc(value)
    except ValueError:
        msg = f"{role}: not an ISO 8601 time: {value[:60]!r}"
        raise InputError(msg) from None


def _incident_time(properties: Mapping[str, Any], received_at: datetime | None) -> datetime:
    for key in ("firstActivityTimeUtc", "createdTimeUtc"):
        value = properties.get(key)
        if value:
            return _time(value, key)
    if received_at is None:
        msg = "the incident has neither firstActivityTimeUtc nor createdTimeUtc"
        raise InputError(msg)
    return received_at.astimezone(UTC)


# -- accounts from entities ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountResolution:
    """Accounts found among entities, the Account entities that named nobody usable, and kinds seen."""

    accounts: tuple[Account, ...]
    unresolved: tuple[str, ...] = ()
    kinds: tuple[tuple[str, int], ...] = field(default=())


def _lowered(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in mapping.items()}


def _upn(value: object) -> str:
    """A UPN (lower-case, guest `#EXT#` form turned into the home UPN) or '' if `value` is not one."""
    if not isinstance(value, str):
        return ""
    text = value.strip()
    if text.count("@") != 1:
        return ""
    if "#ext#" in text.lower():
        # name_contoso.com#EXT#@fabrikam.onmicrosoft.com -> name@contoso.com: sign-in logs of the
        # resource tenant record the guest's home UPN; the object id still matches either way.
        local = text[: text.lower().index("#ext#")]
        head, sep, domain = local.rpartition("_")
        if not sep or not head or not domain:
            return ""
        text = f"{head}@{domain}"
    try:
        return kql.validate_upn(text)
    except kql.InvalidQueryInput:
        return ""


def _guid(value: object) -> str:
    return value.strip().lower() if isinstance(value, str) and is_guid(value.strip()) else ""


@dataclass
class _Person:
    object_id: str
    upns: list[str]


def _identity(properties: Mapping[str, Any]) -> tuple[str, str, str]:
    """(object id, UPN, display name) named by one Account entity's properties."""
    props = _lowered(properties)
    object_id = _guid(props.get("aaduserid"))
    name = props.get("accountname") or props.get("name")
    suffix = props.get("upnsuffix")
    upn = ""
    if isinstance(name, str) and isinstance(suffix, str) and name and suffix and "@" not in name:
        upn = _upn(f"{name}@{suffix}")
    for candidate in (name, props.get("userprincipalname"), props.get("friendlyname"), props.get("displayname")):
        if upn:
            break
        upn = _upn(candidate)
    if not object_id and not upn:
        # objectGuid is the on-premises AD GUID for synced users, so it is trusted only when
        # nothing better names the person; for cloud-only users it equals the Entra object id.
        object_id = _guid(props.get("objectguid"))
    domain = props.get("ntdomain")
    qualified = f"{domain}\\{name}" if isinstance(domain, str) and domain and isinstance(name, str) and name else name
    shown = next(
        (str(v) for v in (props.get("friendlyname"), props.get("displayname"), qualified) if isinstance(v, str) and v.strip()), ""
    )
    return object_id, upn, shown


def resolve_accounts(entities: Iterable[object]) -> AccountResolution:
    """
    The distinct accounts the entities name, in the order they first appear.

    Entities with the same object id are one person; an entity with only a UPN joins the person who
    already has that UPN. Two different object ids are never merged, even if they share a UPN.
    """
    people: list[_Person] = []
    unresolved: list[str] = []
    kinds: dict[str, int] = {}
    for entity in entities:
        if not isinstance(entity, Mapping):
            continue
        flat = _lowered(entity)
        kind = str(flat.get("kind") or flat.get("type") or "unknown")
        kind = "Account" if kind.lower() == "account" else kind
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind != "Account":
            continue
        nested = entity.get("properties")
        properties: Mapping[str, Any] = nested if isinstance(nested, Mapping) else entity
        object_id, upn, shown = _identity(properties)
        if not object_id and not upn:
            unresolved.append(shown or "an account without a name")
            continue
        _merge(people, object_id, upn)
    accounts = tuple(Account(p.upns[0] if p.upns else "", p.object_id) for p in people)
    return AccountResolution(accounts, tuple(dict.fromkeys(unresolved)), tuple(sorted(kinds.items())))


def _merge(people: list[_Person], object_id: str, upn: str) -> None:
    if object_id:
        same = next((p for p in people if p.object_id == object_id), None)
        if same is None:
            # A UPN-only person seen earlier may be this one: adopt the id if the UPN matches.
            same = next((p for p in people if not p.object_id and upn and upn in p.upns), None)
            if same is None:
                people.append(_Person(object_id, [upn] if upn else []))
                return
            same.object_id = object_id
        if upn and upn not in same.upns:
            same.upns.append(upn)
        return
    holders = [p for p in people if upn in p.upns]
    if not holders:
        people.append(_Person("", [upn]))


# -- labels and severity ------------------------------------------------------------------------


def overall_verdict(verdicts: Iterable[Verdict]) -> Verdict | None:
    """The most severe verdict among the accounts (None when nothing was assessed)."""
    chosen = list(verdicts)
    return max(chosen, key=lambda v: v.concern) if chosen else None


def incident_update(properties: Mapping[str, Any], verdict: Verdict, *, raise_severity: bool) -> dict[str, Any] | None:
    """
    The incident properties to PUT back, or None when nothing would change.

    Our label for `verdict` is added once (labels compare case-insensitively), our other verdict
    labels are removed, every other label is kept as it was. With `raise_severity`, a likely
    replay raises the severity to High; a severity is never lowered.
    """
    wanted = VERDICT_LABELS[verdict]
    labels = properties.get("labels") or []
    kept: list[Any] = []
    seen: set[str] = set()
    for label in labels:
        name = str(label.get("labelName", "")) if isinstance(label, Mapping) else ""
        lowered = name.lower()
        if lowered.startswith(LABEL_PREFIX) and lowered != wanted:
            continue
        if lowered in seen:
            continue
        seen.add(lowered)
        kept.append(label)
    if wanted not in seen:
        kept.append({"labelName": wanted, "labelType": "User"})
    severity = str(properties.get("severity") or "")
    new_severity = severity
    if (
        raise_severity
        and verdict is Verdict.REPLAY_LIKELY
        and _SEVERITY_ORDER.get(severity.lower(), -1) < _SEVERITY_ORDER["high"]
    ):
        new_severity = "High"
    if kept == list(labels) and new_severity == severity:
        return None
    updated = {k: v for k, v in properties.items() if k not in READ_ONLY_PROPERTIES}
    updated["labels"] = kept
    updated["severity"] = new_severity
    return updated


def entity_summary(kinds: Sequence[tuple[str, int]]) -> str:
    """'2 Host, 1 File' style text of the entity kinds an incident carried."""
    return ", ".join(f"{count} {kind}" for kind, count in kinds) or "no entities"
