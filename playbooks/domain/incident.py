"""
The incident as this app sees it: parsed once from what Sentinel sends, plus the label decision.

Pure functions over plain JSON. Two body shapes arrive at `POST /api/incidents`: the Logic App
"Microsoft Sentinel incident" trigger body (`{"object": <incident>, "workspaceId", ...}`) and a bare
incident ARM resource (what `GET .../incidents/{id}` returns). Both become one `SentinelIncident`.

Suspect accounts are read from the Account entities BY KIND and by property name, never by position:
an entity names a person through `aadUserId`, `accountName`+`upnSuffix`, a UPN-shaped
`accountName`/`friendlyName`/`displayName`, or (last resort) `objectGuid`. Entities that name the
same person (same object id, or same UPN once case and the guest `#EXT#` form are normalised) are
merged into one `Account`.

The incident id becomes part of ARM URLs, so the resource id is parsed segment by segment against
strict patterns and rebuilt canonically; nothing from the body is pasted into a URL as received.

Intake is bounded, because the body is the sender's and the `SentinelIncident` is copied into every
Durable payload of the run: a body over `MAX_BODY_BYTES` or nested too deeply is refused before it
is used; free text (title, severity, entity names and kinds) is cleaned of hidden characters and
capped (`TITLE_CHARS`, `NAME_CHARS`, ...); at most `max_accounts` accounts (REPLAY_MAX_ACCOUNTS) are
assessed and the rest are carried as "not assessed"; an incident time outside `EARLIEST`-`LATEST`
is refused. Merging the entities is linear in their number.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from common.errors import InputError
from common.identifiers import GUID, is_guid
from common.settings import MAX_ACCOUNTS_DEFAULT
from common.text import capped_text
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

#: Largest body taken: a Sentinel incident with its 150 alerts and their entities is a few MB at most.
MAX_BODY_BYTES = 8 * 1024 * 1024
#: Free text kept from the incident: enough for a person to recognise it, small in every payload.
TITLE_CHARS = 300
SEVERITY_CHARS = 32
#: The name shown for an Account entity without an Entra identity, and for an entity kind.
NAME_CHARS = 200
KIND_CHARS = 64
#: Names listed: unresolved Account entities, accounts over the cap; the rest are counted, not named.
LISTED = 50
#: Distinct entity kinds counted by name (Sentinel has about 30); further kinds count as "other".
KINDS = 40
OTHER_KINDS = "other kinds"
#: Incident labels kept (Sentinel shows a handful; Defender adds its tags) and the length of each.
LABELS = 20
LABEL_CHARS = 100
#: Incident times accepted: sign-in logs exist inside this range, and the query windows around a
#: time inside it can never leave the calendar (year 9999 + 6 hours overflows).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)

#: Our labels, one per verdict; the stale sibling is removed when the verdict changes.
LABEL_PREFIX = "token-replay:"
VERDICT_LABELS: dict[Verdict, str] = {verdict: LABEL_PREFIX + verdict.slug for verdict in Verdict}

_SEVERITY_ORDER = {"informational": 0, "low": 1, "medium": 2, "high": 3}

#: Incident properties the service computes; they are dropped from the PUT body (read-only in the spec).
READ_ONLY_PROPERTIES = frozenset(
    {
        "additionalData",
        "createdTimeUtc",
        "lastModifiedTimeUtc",
        "incidentNumber",
        "incidentUrl",
        "providerIncidentUrl",
        "relatedAnalyticRuleIds",
    }
)


@dataclass(frozen=True, slots=True)
class SentinelIncident:
    """
    One Sentinel incident: where it lives, what to call it, when it happened, and who it names.

    `accounts` is None when the body carried no entities at all (a bare ARM resource, or a trigger
    without `relatedEntities`): the orchestration then reads them from Sentinel. `unresolved` names
    Account entities that carry no Entra identity (e.g. `domain\\administrator`), and `entity_kinds`
    counts the entities by kind, so the "no account" comment can say what the incident did contain.
    `not_assessed` holds the accounts over the per-incident cap (REPLAY_MAX_ACCOUNTS); it,
    `unresolved` and `ips` list at most `LISTED` entries, and the `*_total` fields count them all.
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
    url: str = ""  # the Azure portal link (`incidentUrl`), when it is a plain https URL
    provider_url: str = ""  # the provider's link (`providerIncidentUrl`: the Defender portal), when offered
    not_assessed: tuple[Account, ...] = ()
    not_assessed_total: int = 0
    unresolved_total: int = 0
    ips: tuple[str, ...] = ()  # addresses of the incident's Ip entities: the comment answers each
    display_names: tuple[tuple[str, str], ...] = ()  # (account key, display name) from Account entities
    ips_total: int = 0
    labels: tuple[str, ...] = ()  # the incident's label names (Defender tags sync as labels), at most LABELS

    @property
    def link(self) -> str:
        """
        The link people should follow: the Defender portal's (`providerIncidentUrl`) when the incident
        offers one, since Sentinel lives there from 2027 and the Azure portal experience retires;
        else the Azure portal's.
        """
        return self.provider_url or self.url

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

    def with_accounts(self, resolution: AccountResolution) -> SentinelIncident:
        """The same incident with the accounts read from Sentinel's entities."""
        return dataclasses.replace(
            self,
            accounts=resolution.accounts,
            unresolved=resolution.unresolved,
            entity_kinds=resolution.kinds,
            not_assessed=resolution.not_assessed,
            not_assessed_total=resolution.not_assessed_total,
            unresolved_total=resolution.unresolved_total,
            ips=resolution.ips or self.ips,
            display_names=resolution.names or self.display_names,
            ips_total=resolution.ips_total or self.ips_total,
        )

    def intake_notes(self) -> tuple[str, ...]:
        """What intake left out, in words for the comment and result.json (empty when nothing was)."""
        notes = []
        if self.not_assessed_total:
            assessed = len(self.accounts or ())
            listed = ", ".join(a.upn or a.object_id for a in self.not_assessed)
            unlisted = self.not_assessed_total - len(self.not_assessed)
            notes.append(
                f"REPLAY_MAX_ACCOUNTS: the first {assessed} accounts were assessed, "
                f"{self.not_assessed_total} more were not: {listed}" + (f" and {unlisted} more" if unlisted > 0 else "")
            )
        unlisted_names = self.unresolved_total - len(self.unresolved)
        if unlisted_names > 0:
            notes.append(f"{unlisted_names} more account entities without an Entra identity are not listed")
        unlisted_ips = self.ips_total - len(self.ips)
        if unlisted_ips > 0:
            notes.append(f"the incident names {self.ips_total} IP addresses; only the first {len(self.ips)} are answered")
        return tuple(notes)

    def display_name(self, account: Account) -> str:
        """The person's display name as the incident's Account entity gave it ("" when it did not)."""
        keys = {account.key.lower(), account.upn.lower(), account.object_id.lower()} - {""}
        return next((name for key, name in self.display_names if key in keys), "")

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
            "provider_url": self.provider_url,
            "not_assessed": [account_json(a) for a in self.not_assessed],
            "not_assessed_total": self.not_assessed_total,
            "unresolved_total": self.unresolved_total,
            "ips": list(self.ips),
            "display_names": [[key, name] for key, name in self.display_names],
            "ips_total": self.ips_total,
            "labels": list(self.labels),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SentinelIncident:
        """The inverse of `to_json`; validates and bounds again, since orchestration input is stored text."""
        number = data.get("number")
        if number is not None and (isinstance(number, bool) or not isinstance(number, int)):
            msg = f"not a stored incident reference: number {number!r} is not an integer"
            raise InputError(msg)
        try:
            accounts = data.get("accounts")
            unresolved = tuple(capped_text(u, NAME_CHARS) for u in (data.get("unresolved") or ())[:LISTED])
            not_assessed = tuple(account_from_json(a) for a in (data.get("not_assessed") or ())[:LISTED])
            ips = tuple(ip for ip in (_ip(v) for v in (data.get("ips") or ())[:LISTED]) if ip)
            ref = cls(
                subscription_id=_checked(data["subscription_id"], GUID, "subscription id").lower(),
                resource_group=_checked(data["resource_group"], _RESOURCE_GROUP, "resource group"),
                workspace_name=_checked(data["workspace_name"], _WORKSPACE, "workspace name"),
                name=_checked(data["name"], GUID, "incident id").lower(),
                number=number,
                title=capped_text(data.get("title") or "", TITLE_CHARS),
                severity=capped_text(data.get("severity") or "", SEVERITY_CHARS),
                at=_time(data["at"], "at"),
                accounts=None if accounts is None else tuple(account_from_json(a) for a in accounts),
                unresolved=unresolved,
                entity_kinds=tuple((capped_text(k, KIND_CHARS), int(c)) for k, c in (data.get("entity_kinds") or ())[:KINDS]),
                workspace_id=str(data.get("workspace_id") or ""),
                url=https_url(data.get("url")),
                provider_url=https_url(data.get("provider_url")),
                not_assessed=not_assessed,
                not_assessed_total=max(int(data.get("not_assessed_total") or 0), len(not_assessed)),
                unresolved_total=max(int(data.get("unresolved_total") or 0), len(unresolved)),
                ips=ips,
                display_names=tuple((str(k), _display_name(n)) for k, n in data.get("display_names") or ()),
                ips_total=max(int(data.get("ips_total") or 0), len(ips)),
                labels=tuple(capped_text(label, LABEL_CHARS) for label in (data.get("labels") or ())[:LABELS]),
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


def comment_id(incident: SentinelIncident, run: str, record: str, account: str = "") -> str:
    """
    The id of one record on the incident: the comment for `record` (a state change: "enrichment",
    "pending", "decided", ...) of `run` (one run of the orchestration, or one approval request),
    about `account` (empty for incident-wide records).

    Records are append-only: each state change is a new comment, because the Defender portal never
    shows an edit of a comment. The id is deterministic, so a retried write lands on the same
    comment instead of adding a duplicate, and a later run writes new comments instead of
    overwriting the earlier run's.
    """
    return str(uuid.uuid5(COMMENT_NAMESPACE, f"{incident.name}|{run}|{account.lower()}|{record}"))


def instance_id(incident: SentinelIncident) -> str:
    """The Durable instance id: one orchestration per incident, so duplicate deliveries collide."""
    return f"incident-{incident.name}"


# -- parsing the body ---------------------------------------------------------------------------


class BodyTooLarge(InputError):
    """A body over `MAX_BODY_BYTES`: refused unread (HTTP 413)."""


def incident_body(raw: bytes | str) -> object:
    """
    The JSON value of a request body or an incident file, or None when it is empty.

    Refused with `InputError` before anything else looks at it: a body over `MAX_BODY_BYTES`
    (`BodyTooLarge`), one that is not JSON (bytes that are not UTF-8 included), and one nested more
    deeply than the JSON decoder can follow (100,000 brackets would otherwise end in RecursionError).
    """
    if len(raw) > MAX_BODY_BYTES:
        msg = f"the body is {len(raw):,} bytes; an incident is at most {MAX_BODY_BYTES:,}"
        raise BodyTooLarge(msg)
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except RecursionError:
        msg = "the body is not an incident: its JSON is nested too deeply"
        raise InputError(msg) from None
    except json.JSONDecodeError as error:
        msg = f"the body is not JSON ({error.msg} at line {error.lineno} column {error.colno})"
        raise InputError(msg) from None
    except ValueError as error:  # not UTF-8, or an integer too long to convert
        msg = f"the body is not JSON ({str(error)[:120]})"
        raise InputError(msg) from None


def parse_incident(
    body: object, *, received_at: datetime | None = None, max_accounts: int = MAX_ACCOUNTS_DEFAULT
) -> SentinelIncident:
    """
    A `SentinelIncident` from a trigger body or a bare incident resource; `InputError` says what is wrong.

    The incident time is `firstActivityTimeUtc` (stable when later alerts join the incident, so a
    re-run queries the same window), else `createdTimeUtc`, else `received_at`. At most
    `max_accounts` accounts are kept to assess (REPLAY_MAX_ACCOUNTS); the rest are "not assessed".
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
            msg = f"objectSchemaType is {str(schema)[:60]!r}: this endpoint takes incidents only"
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
    if number is not None:
        number = _incident_number(number)
    entities = properties.get("relatedEntities")
    if entities is not None and not isinstance(entities, list):
        msg = "relatedEntities must be a list"
        raise InputError(msg)
    ref = SentinelIncident(
        subscription_id=subscription,
        resource_group=group,
        workspace_name=workspace,
        name=name,
        number=number,
        title=capped_text(properties.get("title") or "", TITLE_CHARS),
        severity=capped_text(properties.get("severity") or "", SEVERITY_CHARS),
        at=at,
        accounts=None,
        workspace_id=workspace_id,
        url=https_url(properties.get("incidentUrl")),
        provider_url=https_url(properties.get("providerIncidentUrl")),
        labels=label_names(properties.get("labels")),
    )
    # An empty or missing list is "not told", not "none": the function asks Sentinel then.
    return ref.with_accounts(resolve_accounts(entities, max_accounts=max_accounts)) if entities else ref


def label_names(labels: object) -> tuple[str, ...]:
    """
    The names of an incident's labels (`properties.labels[].labelName`), cleaned and capped.

    Labels are free text anyone with Sentinel Contributor can set, so they are capped like the title
    and read only for what they can tell (e.g. Defender's "Attack Disruption" tag); anything that is
    not a label object is skipped rather than refused, since labels are not what the playbook is for.
    """
    if not isinstance(labels, list):
        return ()
    names = (label.get("labelName") for label in labels if isinstance(label, Mapping))
    kept = (name for name in names if isinstance(name, str) and name.strip())
    return tuple(capped_text(name, LABEL_CHARS) for name in islice(kept, LABELS))


def _incident_number(value: object) -> int:
    """Sentinel's incident number: a whole number that JSON carries exactly (below 2**53)."""
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if number is None and isinstance(value, str) and re.fullmatch(r"[0-9]{1,16}", value.strip()):
        number = int(value.strip())
    if number is None or not 0 <= number < 2**53:
        msg = f"incidentNumber is not a number: {str(value)[:40]!r}"
        raise InputError(msg)
    return number


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
    """A UTC time between `EARLIEST` and `LATEST`; `InputError` for anything else, never OverflowError."""
    if not isinstance(value, str):
        msg = f"{role}: not a time: {str(value)[:60]!r}"
        raise InputError(msg)
    try:
        utc: datetime | None = parse_utc(value)
    except ValueError:
        msg = f"{role}: not an ISO 8601 time: {value[:60]!r}"
        raise InputError(msg) from None
    except OverflowError:  # 0001-01-01T00:00+01:00 falls in year 0 once in UTC
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        msg = f"{role}: {value[:60]!r} is not the time of a Sentinel incident (years {EARLIEST.year}-{LATEST.year - 1})"
        raise InputError(msg)
    return utc


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
    """
    Accounts found among entities (at most the cap), the accounts over the cap, the Account entities
    that named nobody usable, and the kinds seen. The two lists of names hold at most `LISTED`
    entries; the totals count them all.
    """

    accounts: tuple[Account, ...]
    unresolved: tuple[str, ...] = ()
    kinds: tuple[tuple[str, int], ...] = field(default=())
    not_assessed: tuple[Account, ...] = ()
    not_assessed_total: int = 0
    unresolved_total: int = 0
    ips: tuple[str, ...] = ()  # Ip entities' addresses, valid ones only, in order, at most `LISTED`
    names: tuple[tuple[str, str], ...] = ()  # (UPN or object id, display name) of the accounts assessed
    ips_total: int = 0


#: Longest display name kept from an entity (a name is for reading, not a payload).
DISPLAY_NAME_CHARS = 120


def _ip(value: object) -> str:
    """An IP address in its canonical form, or '' when `value` is not one."""
    if not isinstance(value, str):
        return ""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return ""


def _display_name(value: object) -> str:
    """A person's display name: one line of printable text, capped; '' for anything else or a UPN."""
    if not isinstance(value, str) or "@" in value:
        return ""
    text = " ".join("".join(c for c in value if c.isprintable()).split())
    return text[:DISPLAY_NAME_CHARS]


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


@dataclass(slots=True)
class _Person:
    object_id: str
    upns: dict[str, None]  # insertion-ordered set: the first is the one queried

    @property
    def account(self) -> Account:
        return Account(next(iter(self.upns), ""), self.object_id)


class _People:
    """
    The distinct people named so far, with indexes so each entity merges in constant time.

    Entities with the same object id are one person; an entity with only a UPN joins the person who
    already has that UPN; a person known by UPN alone adopts the object id of a later entity with the
    same UPN. Two different object ids are never merged, even if they share a UPN.
    """

    def __init__(self) -> None:
        self.ordered: list[_Person] = []
        self._by_object_id: dict[str, _Person] = {}
        self._upn_only: dict[str, _Person] = {}  # people known by one UPN and no object id
        self._held: set[str] = set()  # every UPN some person holds

    def add(self, object_id: str, upn: str) -> None:
        if not object_id:
            if upn not in self._held:
                self._new("", upn)
            return
        same = self._by_object_id.get(object_id)
        if same is None:
            same = self._upn_only.pop(upn, None) if upn else None
            if same is None:
                self._new(object_id, upn)
                return
            same.object_id = object_id
            self._by_object_id[object_id] = same
        if upn and upn not in same.upns:
            same.upns[upn] = None
            self._held.add(upn)

    def _new(self, object_id: str, upn: str) -> None:
        person = _Person(object_id, {upn: None} if upn else {})
        self.ordered.append(person)
        if object_id:
            self._by_object_id[object_id] = person
        elif upn:
            self._upn_only[upn] = person
        if upn:
            self._held.add(upn)


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


def resolve_accounts(entities: Iterable[object], *, max_accounts: int = MAX_ACCOUNTS_DEFAULT) -> AccountResolution:
    """
    The distinct accounts the entities name, in the order they first appear, at most `max_accounts`.

    One pass, constant work per entity (`_People`), so 40,000 entities cost what 40 do, times 1,000.
    Accounts past `max_accounts` are returned as not assessed; every name kept is cleaned and capped.
    """
    people = _People()
    unresolved: dict[str, None] = {}
    kinds: dict[str, int] = {}
    ips: dict[str, None] = {}
    names: dict[str, str] = {}
    for entity in entities:
        if not isinstance(entity, Mapping):
            continue
        flat = _lowered(entity)
        kind = capped_text(flat.get("kind") or flat.get("type") or "unknown", KIND_CHARS)
        kind = "Account" if kind.lower() == "account" else kind
        if kind != "Account" and kind not in kinds and len(kinds) >= KINDS:
            kind = OTHER_KINDS
        kinds[kind] = kinds.get(kind, 0) + 1
        nested = entity.get("properties")
        properties: Mapping[str, Any] = nested if isinstance(nested, Mapping) else entity
        if kind.lower() == "ip":
            address = _ip(_lowered(properties).get("address"))
            if address:
                ips[address] = None
        if kind != "Account":
            continue
        object_id, upn, shown = _identity(properties)
        if not object_id and not upn:
            unresolved[capped_text(shown, NAME_CHARS) or "an account without a name"] = None
            continue
        people.add(object_id, upn)
        name = _display_name(shown)
        for key in (upn, object_id):
            if key and name:
                names.setdefault(key, name)
    accounts = [p.account for p in people.ordered]
    assessed, over = accounts[:max_accounts], accounts[max_accounts:]
    # Display names travel in every payload: only those of the accounts assessed, under the keys they are looked up by.
    keys = {key for account in assessed for key in (account.upn, account.object_id) if key}
    return AccountResolution(
        accounts=tuple(assessed),
        unresolved=tuple(list(unresolved)[:LISTED]),
        kinds=tuple(sorted(kinds.items())),
        not_assessed=tuple(over[:LISTED]),
        not_assessed_total=len(over),
        unresolved_total=len(unresolved),
        ips=tuple(list(ips)[:LISTED]),
        names=tuple((key, name) for key, name in names.items() if key in keys),
        ips_total=len(ips),
    )


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
