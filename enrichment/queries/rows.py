"""
Query rows -> evidence values: the only module that knows the result columns of the queries.

Both engines hand back rows as dicts, but not identically: Log Analytics gives aware datetimes and
dynamic values already decoded, DuckDB gives naive UTC datetimes and JSON text. Everything is
normalised here so the two engines produce equal values from equal data.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import datetime

from common.times import as_utc, parse_utc
from enrichment.domain.activity import ActivityRecord, ActKind, DirectoryChange, Forwarding, InboxRule
from enrichment.domain.directory_roles import privileged
from enrichment.domain.identity import Answer, Facet, IdentityContext, RiskDetection
from enrichment.domain.model import (
    Account,
    Baseline,
    DailyActivity,
    SecurityEvent,
    SignIn,
    Table,
    TableBaseline,
    TimeWindow,
    TravelRecord,
)
from enrichment.domain.optional_tables import IDENTITY_INFO, RISK_EVENTS, RISKY_USERS, TableAnswer, gap

Row = Mapping[str, object]


class RowError(ValueError):
    """A row lacks a value the product cannot do without; the message names the column."""


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _time(value: object, column: str) -> datetime:
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, str) and value:
        return parse_utc(value)
    msg = f"column {column} has no time: {value!r}"
    raise RowError(msg)


def _optional_time(value: object, column: str) -> datetime | None:
    return None if value in (None, "") else _time(value, column)


def _int(value: object) -> int | None:
    text = _text(value).strip().upper().removeprefix("AS")
    try:
        return int(float(text)) if text else None
    except ValueError:
        return None


def _float(value: object) -> float | None:
    if value is None or value == "":
        return None
    try:
        result = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(result) else result  # NaN means absent


def _flag(value: object) -> bool | None:
    text = _text(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    return None


def _array(value: object) -> list[object]:
    """A dynamic array as a list, whether it arrived decoded or as JSON text."""
    if isinstance(value, list):
        return value
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            return []
        return decoded if isinstance(decoded, list) else []
    return []


def _strings(value: object) -> frozenset[str]:
    return frozenset(s for s in (_text(v) for v in _array(value)) if s)


def _ints(value: object) -> frozenset[int]:
    return frozenset(i for i in (_int(v) for v in _array(value)) if i is not None)


def _trusted_networks(value: object) -> tuple[str, ...]:
    """Names of trusted named locations from NetworkLocationDetails (JSON text of an array)."""
    names: set[str] = set()
    for item in _array(value):
        if isinstance(item, dict) and str(item.get("networkType", "")).lower() == "trustednamedlocation":
            names.update(_text(n) for n in item.get("networkNames") or [] if _text(n))
    return tuple(sorted(names))


def signin(row: Row) -> SignIn:
    """One evidence row as a `SignIn`."""
    table_name = _text(row.get("SourceTable"))
    try:
        table = Table(table_name)
    except ValueError as error:
        msg = f"column SourceTable names no sign-in table: {table_name!r}"
        raise RowError(msg) from error
    return SignIn(
        user=_text(row.get("User")).lower(),
        user_id=_text(row.get("UserId")).lower(),
        table=table,
        first=_time(row.get("FirstSeen"), "FirstSeen"),
        last=_time(row.get("LastSeen"), "LastSeen"),
        count=_int(row.get("Count")) or 1,
        ip=_text(row.get("IPAddress")),
        asn=_int(row.get("Asn")),
        country=_text(row.get("Country")).upper(),
        city=_text(row.get("City")),
        latitude=_float(row.get("Latitude")),
        longitude=_float(row.get("Longitude")),
        session_id=_text(row.get("SessionId")),
        token_ids=tuple(sorted(_strings(row.get("TokenIds")))),
        app_id=_text(row.get("AppId")).lower(),
        app=_text(row.get("AppDisplayName")),
        resource_id=_text(row.get("ResourceId")).lower(),
        resource=_text(row.get("ResourceDisplayName")),
        user_agent=_text(row.get("UserAgent")),
        client_app=_text(row.get("ClientAppUsed")),
        auth_protocol=_text(row.get("AuthenticationProtocol")),
        incoming_token_type=_text(row.get("IncomingTokenType")),
        device_id=_text(row.get("DeviceId")).lower(),
        device_name=_text(row.get("DeviceName")),
        operating_system=_text(row.get("OperatingSystem")),
        browser=_text(row.get("Browser")),
        is_compliant=_flag(row.get("IsCompliant")),
        result_type=_text(row.get("ResultType")) or "0",
        token_only=_flag(row.get("TokenOnly")) is True,
        token_protection=_text(row.get("TokenProtection")),
        risk_events=tuple(sorted(_strings(row.get("RiskEvents")))),
        trusted_networks=_trusted_networks(row.get("NetworkLocations")),
    )


def table_baseline(row: Row) -> TableBaseline:
    return TableBaseline(
        table=Table(_text(row.get("SourceTable"))),
        events=_int(row.get("Events")) or 0,
        days_active=_int(row.get("DaysActive")) or 0,
        first=_optional_time(row.get("FirstSeen"), "FirstSeen"),
        last=_optional_time(row.get("LastSeen"), "LastSeen"),
        distinct_ips=_int(row.get("DistinctIps")) or 0,
        ips=_strings(row.get("Ips")),
        asns=_ints(row.get("Asns")),
        countries=frozenset(c.upper() for c in _strings(row.get("Countries"))),
        app_ids=frozenset(a.lower() for a in _strings(row.get("AppIds"))),
        resources=_strings(row.get("Resources")),
        user_agents=_strings(row.get("UserAgents")),
        device_ids=frozenset(d.lower() for d in _strings(row.get("DeviceIds"))),
        compliant_device_ids=frozenset(d.lower() for d in _strings(row.get("CompliantDeviceIds"))),
        hours=_ints(row.get("Hours")),
        auth_protocols=_strings(row.get("AuthProtocols")),
    )


def daily_activity(row: Row) -> DailyActivity:
    return DailyActivity(
        day=_time(row.get("Day"), "Day"),
        table=Table(_text(row.get("SourceTable"))),
        events=_int(row.get("Events")) or 0,
        distinct_ips=_int(row.get("DistinctIps")) or 0,
        distinct_apps=_int(row.get("DistinctApps")) or 0,
        distinct_asns=_int(row.get("DistinctAsns")) or 0,
    )


def baseline(rows: Iterable[Row], window: TimeWindow) -> Baseline:
    """One user's baseline rows (Scope "table" and "day") as a `Baseline`."""
    per_table: dict[Table, TableBaseline] = {}
    daily: list[DailyActivity] = []
    for row in rows:
        scope = _text(row.get("Scope"))
        if scope == "table":
            part = table_baseline(row)
            per_table[part.table] = part
        elif scope == "day":
            daily.append(daily_activity(row))
    return Baseline(
        window=window,
        interactive=per_table.get(Table.INTERACTIVE),
        non_interactive=per_table.get(Table.NON_INTERACTIVE),
        daily=tuple(sorted(daily, key=lambda d: (d.day, d.table.value))),
    )


def security_event(row: Row) -> SecurityEvent:
    return SecurityEvent(
        time=_time(row.get("TimeGenerated"), "TimeGenerated"),
        operation=_text(row.get("OperationName")),
        result=_text(row.get("Result")),
        actor=_text(row.get("Actor")).lower(),
        actor_ip=_text(row.get("ActorIp")),
        target=_text(row.get("Target")).lower(),
        detail=_text(row.get("Detail")),
    )


def travel_record(row: Row) -> TravelRecord:
    return TravelRecord(
        user=_text(row.get("User")).lower(),
        country=_text(row.get("Country")).upper(),
        start=_time(row.get("StartTime"), "StartTime"),
        end=_time(row.get("EndTime"), "EndTime"),
    )


def row_user(row: Row) -> tuple[str, str]:
    """The (lower-case UPN, object id) a baseline or evidence row belongs to."""
    return _text(row.get("User")).lower(), _text(row.get("UserId")).lower()


def concerns(account: Account, row: Row) -> bool:
    """Whether a context row (audit: actor or target; travel: user) names `account`."""
    names = {_text(row.get(column)).lower() for column in ("Actor", "Target", "User")}
    return bool(account.upn and account.upn.lower() in names)


def belongs_to(account: Account, user: str, user_id: str = "") -> bool:
    """Whether a row's user (lower-case UPN) or object id names `account`."""
    return bool(
        (account.upn and user == account.upn.lower()) or (account.object_id and user_id and user_id == account.object_id.lower())
    )


def present_tables(found: Iterable[Row]) -> frozenset[str]:
    """The tables the context query's "presence" rows say hold rows in the window."""
    return frozenset(_text(r.get("SourceTable")) for r in found if r.get("Kind") == "presence")


# --------------------------------------------------------------------------------------------
# Coverage, identity context and the scope question
# --------------------------------------------------------------------------------------------


def coverage_counts(rows: Iterable[Row]) -> dict[str, int]:
    """Table -> rows counted, from a question's `Kind == "coverage"` rows (a table with no row is absent)."""
    return {_text(r.get("Source")): _int(r.get("Rows")) or 0 for r in rows if _text(r.get("Kind")) == "coverage"}


def table_coverage(tables: Iterable[str], counts: Mapping[str, int]) -> tuple[TableAnswer, ...]:
    """Each table's coverage: collected when the question counted it, with its count."""
    return tuple(TableAnswer(t, t in counts, counts.get(t)) for t in tables)


def _objects(value: object) -> list[dict[str, object]]:
    """A summarised set of `pack(...)` objects, however the engine returned it (decoded, JSON text, or a list of JSON texts)."""
    out: list[dict[str, object]] = []
    for item in _array(value):
        decoded = item
        if isinstance(item, str):
            try:
                decoded = json.loads(item)
            except json.JSONDecodeError:
                continue
        if isinstance(decoded, dict):
            out.append(decoded)
    return out


_PAIR = re.compile(r'"Name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"Value"\s*:\s*"((?:[^"\\]|\\.)*)"')


def name_values(text: str) -> dict[str, str]:
    """
    An audit record's `[{"Name": ..., "Value": ...}]` list (Parameters, OperationProperties) as a dict.

    Read leniently: a list cut short by the query's length cap still gives its complete pairs.
    """
    if not text:
        return {}
    try:
        decoded = json.loads(text)
    except json.JSONDecodeError:
        return {json.loads(f'"{n}"'): json.loads(f'"{v}"') for n, v in _PAIR.findall(text)}
    pairs: dict[str, str] = {}
    if isinstance(decoded, list):
        for item in decoded:
            if isinstance(item, dict) and "Name" in item:
                pairs[_text(item.get("Name"))] = _text(item.get("Value"))
    return pairs


_ADDRESS_IN_TEXT = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def _addresses(text: str) -> tuple[str, ...]:
    """Mail addresses in a rule or mailbox parameter (`a@x.com;b@y.com`, `smtp:a@x.com`, `Name [SMTP:a@x.com]`)."""
    return tuple(dict.fromkeys(a.lower() for a in _ADDRESS_IN_TEXT.findall(text)))


def _true(text: str) -> bool:
    return text.strip().lower() in ("true", "1", "$true")


#: Rule parameters that are conditions (who and what the rule matches), shown with the rule.
_RULE_CONDITIONS = (
    "From",
    "FromAddressContainsWords",
    "SentTo",
    "SubjectContainsWords",
    "SubjectOrBodyContainsWords",
    "BodyContainsWords",
    "HeaderContainsWords",
    "MyNameInToOrCcBox",
)
_FORWARD_PARAMETERS = ("ForwardTo", "RedirectTo", "ForwardAsAttachmentTo")


def _rule_object_name(identity: str) -> str:
    """The rule's name as the audit's object id ends with it (`.../Mailbox\\Rule name`)."""
    return identity.rsplit("\\", 1)[-1] if "\\" in identity else ""


def inbox_rule(operation: str, sample: Mapping[str, object], user: str) -> InboxRule:
    """
    A rule change from one audit sample. Cmdlets (`New-InboxRule`, `Set-InboxRule`, ...) name their
    parameters; Outlook's `UpdateInboxRules` describes the rule in OperationProperties instead.
    """
    parameters = name_values(_text(sample.get("parameters")))
    properties = name_values(_text(sample.get("properties")))
    identity = _text(sample.get("object")) or parameters.get("Identity", "")
    actions = properties.get("RuleActions", "")
    forward = [a for p in _FORWARD_PARAMETERS for a in _addresses(parameters.get(p, ""))]
    if "forward" in actions.lower() or "redirect" in actions.lower():
        forward.extend(_addresses(actions))
    return InboxRule(
        operation=operation,
        name=parameters.get("Name") or properties.get("RuleName") or _rule_object_name(identity),
        identity=identity,
        mailbox=_text(sample.get("mailbox")).lower() or user,
        time=_time(sample.get("at"), "at"),
        move_to=parameters.get("MoveToFolder", "") or ("a folder" if "movetofolder" in actions.lower() else ""),
        delete=_true(parameters.get("DeleteMessage", ""))
        or _true(parameters.get("SoftDeleteMessage", ""))
        or "delete" in actions.lower(),
        forward_to=tuple(dict.fromkeys(forward)),
        mark_read=_true(parameters.get("MarkAsRead", "")),
        stop_processing=_true(parameters.get("StopProcessingRules", "")),
        conditions=tuple((name, parameters[name]) for name in _RULE_CONDITIONS if parameters.get(name)),
    )


def forwarding(sample: Mapping[str, object], user: str) -> Forwarding | None:
    """Forwarding set by one `Set-Mailbox` sample, or None when it set no forwarding (or removed it)."""
    parameters = name_values(_text(sample.get("parameters")))
    targets = [a for p in ("ForwardingSmtpAddress", "ForwardingAddress") for a in _addresses(parameters.get(p, ""))]
    if not targets:
        return None
    deliver = parameters.get("DeliverToMailboxAndForward")
    return Forwarding(
        mailbox=_text(sample.get("mailbox")).lower() or user,
        address=targets[0],
        time=_time(sample.get("at"), "at"),
        deliver_and_forward=None if deliver is None else _true(deliver),
    )


def _sample_text(kind: ActKind, sample: Mapping[str, object]) -> str:
    """The readable part of one sample: a request path, a subject, a file, how mail was accessed."""
    if kind is ActKind.GRAPH:
        return _text(sample.get("path"))
    if "access" in sample:
        return name_values(_text(sample.get("access"))).get("MailAccessType", "")
    return _text(sample.get("subject") or sample.get("file"))


def activity_record(row: Row) -> ActivityRecord:
    """One summarised row of the scope question as an `ActivityRecord` (rules, forwarding and changes parsed)."""
    try:
        kind = ActKind(_text(row.get("Kind")))
    except ValueError as error:
        msg = f"column Kind names no activity: {_text(row.get('Kind'))!r}"
        raise RowError(msg) from error
    user = _text(row.get("User")).lower()
    operation = _text(row.get("Operation"))
    samples = _objects(row.get("Samples"))
    rules: list[InboxRule] = []
    forwards: list[Forwarding] = []
    changes: list[DirectoryChange] = []
    texts: list[str] = []
    for sample in samples:
        if kind is ActKind.DIRECTORY:
            changes.append(
                DirectoryChange(
                    operation=operation,
                    time=_time(sample.get("at"), "at"),
                    target=_text(sample.get("target")),
                    target_id=_text(sample.get("id")),
                    detail=_text(sample.get("detail")),
                )
            )
        elif kind is ActKind.MAILBOX and "parameters" in sample:
            if operation.lower() == "set-mailbox":
                found = forwarding(sample, user)
                if found is not None:
                    forwards.append(found)
            else:
                rules.append(inbox_rule(operation, sample, user))
        elif text := _sample_text(kind, sample):
            texts.append(text)
    return ActivityRecord(
        kind=kind,
        source=_text(row.get("Source")),
        user=user,
        ip=_text(row.get("Ip")),
        operation=operation,
        count=_int(row.get("Count")) or 0,
        first=_time(row.get("FirstSeen"), "FirstSeen"),
        last=_time(row.get("LastSeen"), "LastSeen"),
        session_id=_text(row.get("SessionId")),
        token_id=_text(row.get("TokenKey")),
        method=_text(row.get("Method")),
        client=_text(row.get("Client")),
        app_id=_text(row.get("AppId")).lower(),
        items=_int(row.get("Items")) or 0,
        bytes=_int(row.get("Bytes")) or 0,
        failures=_int(row.get("Failures")) or 0,
        samples=tuple(sorted(set(texts))),
        rules=tuple(sorted(rules, key=lambda r: (r.time, r.name))),
        forwarding=tuple(sorted(forwards, key=lambda f: (f.time, f.address))),
        changes=tuple(sorted(changes, key=lambda c: (c.time, c.target))),
    )


def identity_context(rows: Iterable[Row], counts: Mapping[str, int], *, identity_days: int) -> IdentityContext:
    """
    One account's identity context from its context rows (`Kind` identity, risky_user, risk_events) and
    the identity tables' coverage: each facet says which table answered, or why none could.
    """
    mine = list(rows)
    profile = next((r for r in mine if _text(r.get("Kind")) == "identity"), None)
    risky = next((r for r in mine if _text(r.get("Kind")) == "risky_user"), None)
    events = [e for r in mine if _text(r.get("Kind")) == "risk_events" for e in _objects(r.get("Detections"))]

    def missing(table: str) -> str:
        """Why `table` cannot answer: not collected (empty when it is)."""
        return "" if table in counts else gap(TableAnswer(table, collected=False), "", "")

    answers: list[Answer] = []
    if profile is None:
        problem = missing(IDENTITY_INFO) or f"{IDENTITY_INFO} holds no record of the account in the last {identity_days} days"
        answers += [Answer(Facet.PROFILE, problem=problem), Answer(Facet.ROLES, problem=problem)]
    else:
        answers += [Answer(Facet.PROFILE, IDENTITY_INFO), Answer(Facet.ROLES, IDENTITY_INFO)]
    risk_sources = [t for t in (RISKY_USERS, RISK_EVENTS) if t in counts]
    risk_problems = [missing(t) for t in (RISKY_USERS, RISK_EVENTS) if t not in counts]
    answers.append(Answer(Facet.RISK, ", ".join(risk_sources), "; ".join(risk_problems)))
    detections = sorted(
        (
            RiskDetection(
                kind=_text(e.get("kind")),
                level=_text(e.get("level")).lower(),
                detected_at=_time(e.get("detected"), "detected"),
                ip=_text(e.get("ip")),
                state=_text(e.get("state")),
            )
            for e in events
            if e.get("detected")
        ),
        key=lambda d: d.detected_at,
        reverse=True,
    )
    roles = sorted(_strings(profile.get("Roles"))) if profile is not None else []
    return IdentityContext(
        display_name=_text(profile.get("DisplayName")) if profile else "",
        department=_text(profile.get("Department")) if profile else "",
        job_title=_text(profile.get("JobTitle")) if profile else "",
        manager=_text(profile.get("Manager")) if profile else "",
        privileged_roles=privileged(roles),
        risk_level=(_text(risky.get("RiskLevel")).lower() or "none") if risky else ("none" if RISKY_USERS in counts else ""),
        risk_state=_text(risky.get("RiskState")) if risky else "",
        risk_detections=tuple(detections),
        answers=tuple(answers),
    )
