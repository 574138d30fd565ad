"""
Query rows -> evidence values: the only module that knows the result columns of the queries.

Both engines hand back rows as dicts, but not identically: Log Analytics gives aware datetimes and
dynamic values already decoded, DuckDB gives naive UTC datetimes and JSON text. Everything is
normalised here so the two engines produce equal values from equal data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import datetime

from common.times import as_utc, parse_utc
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
