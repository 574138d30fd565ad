"""
Every KQL text the product runs, built from validated values and escaped literals.

The same text runs on Log Analytics and on the embedded DuckDB engine, so it keeps to the KQL
both understand (no `make_set_if`, no `column_ifexists`, no user-defined `let` functions). Windows are
`datetime()` literals anchored at the incident time, never `ago()`, so an old incident replays
exactly. Nothing from an incident or a sign-in row is pasted into a query: identifiers are
validated against a strict pattern and every string goes through `string_literal`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from common.identifiers import is_guid
from enrichment.domain.model import Account, Table, TimeWindow

#: Groups of identical sign-ins are binned this finely: fine enough for concurrency and
#: odd-hour signals, coarse enough that token-refresh floods collapse.
EVIDENCE_BIN = "10m"

#: UniqueTokenIdentifiers kept per evidence group: enough to pivot to the token's other logs, bounded bytes.
TOKEN_IDS_PER_GROUP = 4

#: Caps on the sets the baseline returns, so its size does not grow with the user's volume.
BASELINE_SET_CAP = 256

#: AuditLogs operations that change how the user authenticates or which devices hold their tokens.
SECURITY_OPERATIONS = (
    "User registered security info",
    "User registered all required security info",
    "User changed default security info",
    "User deleted security info",
    "Admin registered security info",
    "Admin updated security info",
    "Admin deleted security info",
    "Register device",
    "Add registered owner to device",
    "Add registered users to device",
    "Update StsRefreshTokenValidFrom Timestamp",
)

# A UPN as Entra issues it (guests included: `name_domain#EXT#@tenant`), and nothing that could
# leave a string literal or start a new statement.
_UPN = re.compile(r"^[A-Za-z0-9._%+#'!&*=^`{}|~$/?-]{1,113}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?$")
_WATCHLIST_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


class InvalidQueryInput(ValueError):
    """A value meant for a query failed validation; the message names the value's role."""


def string_literal(value: str) -> str:
    """
    Quote `value` as a KQL string literal that means exactly `value`.

    Kusto's double-quoted literals take backslash escapes; every character that could end the
    literal or break the line is escaped, so no input can change the query around it.
    """
    out = ['"']
    for char in value:
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            # Kusto reads \uXXXX, duckdb-kql does not: refuse rather than mean two things.
            msg = f"control character U+{ord(char):04X} cannot be written in a KQL literal"
            raise InvalidQueryInput(msg)
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def datetime_literal(moment: datetime) -> str:
    """A `datetime()` literal in UTC with microsecond precision."""
    if moment.tzinfo is None:
        msg = "datetime literals need a timezone-aware datetime"
        raise InvalidQueryInput(msg)
    return f"datetime({moment.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')})"


def validate_upn(upn: str) -> str:
    """Return the UPN lower-cased, or raise `InvalidQueryInput` saying why it was refused."""
    if not _UPN.fullmatch(upn) or ".." in upn:
        msg = f"not a user principal name: {upn!r}"
        raise InvalidQueryInput(msg)
    return upn.lower()


def validate_object_id(object_id: str) -> str:
    if not is_guid(object_id):
        msg = f"not an Entra object id (GUID): {object_id!r}"
        raise InvalidQueryInput(msg)
    return object_id.lower()


def validate_watchlist_alias(alias: str) -> str:
    if not _WATCHLIST_ALIAS.fullmatch(alias):
        msg = f"not a watchlist alias: {alias!r}"
        raise InvalidQueryInput(msg)
    return alias


@dataclass(frozen=True, slots=True)
class Query:
    """A named query text; `name` labels logs, warnings and the fake endpoint's counters."""

    name: str
    text: str


def _user_filter(accounts: Sequence[Account]) -> str:
    if not accounts:
        msg = "a query needs at least one account"
        raise InvalidQueryInput(msg)
    upns = sorted({validate_upn(a.upn) for a in accounts if a.upn})
    ids = sorted({validate_object_id(a.object_id) for a in accounts if a.object_id})
    clauses = []
    if upns:
        clauses.append(f"UserPrincipalName in~ ({', '.join(map(string_literal, upns))})")
    if ids:
        clauses.append(f"UserId in~ ({', '.join(map(string_literal, ids))})")
    if not clauses:
        msg = "a query needs at least one account"
        raise InvalidQueryInput(msg)
    return " or ".join(clauses)


def _between(window: TimeWindow) -> str:
    return f"TimeGenerated between ({datetime_literal(window.start)} .. {datetime_literal(window.end)})"


def _lines(parts: Iterable[str]) -> str:
    return "\n".join(parts)


def _signin_branch(table: Table, window: TimeWindow, users: str) -> str:
    """
    One table filtered and flattened to the shared shape.

    `todynamic()` parses the JSON-text columns of the non-interactive table and passes the dynamic
    columns of the interactive one through, so both branches project the same scalar columns and
    the union never splits a column into `X_dynamic` / `X_string`.
    """
    return _lines(
        (
            f"    ({table.value}",
            f"    | where {_between(window)}",
            f"    | where {users}",
            "    | extend _loc = todynamic(LocationDetails), _dev = todynamic(DeviceDetail),"
            " _tp = todynamic(TokenProtectionStatusDetails), _auth = tostring(AuthenticationDetails)",
            "    | project TimeGenerated,",
            f"        SourceTable = {string_literal(table.value)},",
            "        User = tolower(UserPrincipalName), UserId = tolower(tostring(UserId)),",
            "        IPAddress = tostring(IPAddress), Asn = tostring(AutonomousSystemNumber),",
            "        Country = tostring(_loc.countryOrRegion), City = tostring(_loc.city),",
            "        Latitude = todouble(_loc.geoCoordinates.latitude), Longitude = todouble(_loc.geoCoordinates.longitude),",
            "        SessionId = tostring(SessionId), TokenId = tostring(UniqueTokenIdentifier),",
            "        AppId = tostring(AppId), AppDisplayName = tostring(AppDisplayName),",
            "        ResourceId = tostring(ResourceIdentity), ResourceDisplayName = tostring(ResourceDisplayName),",
            "        UserAgent = tostring(UserAgent), ClientAppUsed = tostring(ClientAppUsed),",
            "        AuthenticationProtocol = tostring(AuthenticationProtocol), IncomingTokenType = tostring(IncomingTokenType),",
            "        DeviceId = tostring(_dev.deviceId), DeviceName = tostring(_dev.displayName),",
            "        OperatingSystem = tostring(_dev.operatingSystem), Browser = tostring(_dev.browser),",
            "        IsCompliant = tostring(_dev.isCompliant), IsManaged = tostring(_dev.isManaged),",
            "        TrustType = tostring(_dev.trustType),",
            "        ResultType = tostring(ResultType), AuthenticationRequirement = tostring(AuthenticationRequirement),",
            "        AuthMethod = tostring(todynamic(AuthenticationDetails)[0].authenticationMethod),",
            '        TokenOnly = _auth contains "satisfied by claim in the token" or _auth contains "Previously satisfied",',
            "        TokenProtection = tostring(_tp.signInSessionStatus),",
            "        RiskLevel = tostring(RiskLevelDuringSignIn), RiskEvents = tostring(RiskEventTypes_V2),",
            "        NetworkLocations = tostring(NetworkLocationDetails))",
        )
    )


EVIDENCE_KEYS = (
    "SourceTable",
    "User",
    "UserId",
    "IPAddress",
    "Asn",
    "Country",
    "City",
    "Latitude",
    "Longitude",
    "SessionId",
    "AppId",
    "AppDisplayName",
    "ResourceId",
    "ResourceDisplayName",
    "UserAgent",
    "ClientAppUsed",
    "AuthenticationProtocol",
    "IncomingTokenType",
    "DeviceId",
    "DeviceName",
    "OperatingSystem",
    "Browser",
    "IsCompliant",
    "IsManaged",
    "TrustType",
    "ResultType",
    "AuthenticationRequirement",
    "AuthMethod",
    "TokenOnly",
    "TokenProtection",
    "RiskLevel",
    "RiskEvents",
    "NetworkLocations",
)


def evidence_query(accounts: Sequence[Account], window: TimeWindow, at: datetime, *, row_cap: int) -> Query:
    """
    Both sign-in tables for every account in one round trip, grouped and capped.

    The cap keeps the groups nearest the incident time and asks for one row more than it keeps:
    if that extra row arrives, the caller knows the result was cut and says so.
    """
    if row_cap < 1:
        msg = "row_cap must be positive"
        raise InvalidQueryInput(msg)
    users = _user_filter(accounts)
    text = _lines(
        (
            "union",
            _signin_branch(Table.INTERACTIVE, window, users) + ",",
            _signin_branch(Table.NON_INTERACTIVE, window, users),
            "| summarize Count = count(), FirstSeen = min(TimeGenerated), LastSeen = max(TimeGenerated),",
            f"    TokenIds = make_set(TokenId, {TOKEN_IDS_PER_GROUP})",
            f"    by {', '.join(EVIDENCE_KEYS)}, Bin = bin(TimeGenerated, {EVIDENCE_BIN})",
            f'| extend Distance = abs(datetime_diff("second", FirstSeen, {datetime_literal(at)}))',
            f"| top {row_cap + 1} by Distance asc",
            "| project-away Distance, Bin",
        )
    )
    return Query("evidence", text)


def baseline_query(accounts: Sequence[Account], window: TimeWindow) -> Query:
    """
    The users' previous days summarised per table (sets, capped) and per day (counts only).

    Summarised in KQL so the bytes returned stay flat however many sign-ins the user makes.
    """
    users = _user_filter(accounts)
    cap = BASELINE_SET_CAP
    text = _lines(
        (
            "let B = materialize(union",
            _signin_branch(Table.INTERACTIVE, window, users) + ",",
            _signin_branch(Table.NON_INTERACTIVE, window, users) + ");",
            "union",
            "    (B",
            "    | summarize Events = count(), DaysActive = dcount(startofday(TimeGenerated)),",
            "        FirstSeen = min(TimeGenerated), LastSeen = max(TimeGenerated), DistinctIps = dcount(IPAddress),",
            f"        Ips = make_set(IPAddress, {cap}), Asns = make_set(Asn, {cap}), Countries = make_set(Country, {cap}),",
            f"        AppIds = make_set(AppId, {cap}), Resources = make_set(ResourceDisplayName, {cap}),",
            f"        UserAgents = make_set(UserAgent, {cap}), DeviceIds = make_set(DeviceId, {cap}),",
            f'        CompliantDeviceIds = make_set(iff(IsCompliant == "true", DeviceId, ""), {cap}),',
            "        Hours = make_set(hourofday(TimeGenerated), 24),",
            f"        AuthProtocols = make_set(AuthenticationProtocol, {cap})",
            "        by User, UserId, SourceTable",
            '    | extend Scope = "table"),',
            "    (B",
            "    | summarize Events = count(), DistinctIps = dcount(IPAddress), DistinctApps = dcount(AppId),",
            "        DistinctAsns = dcount(Asn)",
            "        by User, UserId, SourceTable, Day = startofday(TimeGenerated)",
            '    | extend Scope = "day")',
        )
    )
    return Query("baseline", text)


#: The tables whose presence in the window the context query reports (`Kind` "presence").
PRESENCE_TABLES = (Table.INTERACTIVE.value, Table.NON_INTERACTIVE.value, "AuditLogs")


def _presence_branches(window: TimeWindow) -> list[str]:
    """
    One row per table that holds any row in the window: "the user has no sign-ins" is a result only
    when the table does hold data for the window (evidence coverage). `take 1` stops at the first row.
    """
    return [
        f'    ({table} | where {_between(window)} | take 1 | project Kind = "presence", SourceTable = {string_literal(table)}),'
        for table in PRESENCE_TABLES
    ]


def context_query(accounts: Sequence[Account], window: TimeWindow, *, travel_watchlist: str) -> Query:
    """
    Security-info changes from AuditLogs, the users' travel records, and which tables hold rows in
    the window, in one round trip.

    Rows carry `Kind` ("audit", "travel" or "presence"); the shapes share nothing else.
    """
    alias = validate_watchlist_alias(travel_watchlist)
    upns = sorted({validate_upn(a.upn) for a in accounts if a.upn})
    ids = sorted({validate_object_id(a.object_id) for a in accounts if a.object_id})
    if not upns and not ids:
        msg = "a query needs at least one account"
        raise InvalidQueryInput(msg)
    upn_list = ", ".join(map(string_literal, upns)) or '""'
    id_list = ", ".join(map(string_literal, ids)) or '""'
    operations = ", ".join(map(string_literal, SECURITY_OPERATIONS))
    text = _lines(
        (
            "union",
            *_presence_branches(window),
            "    (AuditLogs",
            f"    | where {_between(window)}",
            f"    | where OperationName in~ ({operations})",
            "    | extend _ini = todynamic(InitiatedBy), _tgt = todynamic(TargetResources)",
            "    | extend Actor = tolower(tostring(_ini.user.userPrincipalName)), ActorId = tostring(_ini.user.id),",
            "        ActorIp = tostring(_ini.user.ipAddress), Target = tolower(tostring(_tgt[0].userPrincipalName)),",
            "        TargetId = tostring(_tgt[0].id)",
            f"    | where Actor in ({upn_list}) or Target in ({upn_list}) or ActorId in~ ({id_list}) or TargetId in~ ({id_list})",
            '    | project Kind = "audit", TimeGenerated, OperationName = tostring(OperationName),',
            "        Result = tostring(Result), Actor, ActorIp, Target, Detail = tostring(_tgt[0].displayName)),",
            f"    (_GetWatchlist({string_literal(alias)})",
            "    | extend User = tolower(tostring(UserPrincipalName))",
            f"    | where User in ({upn_list})",
            '    | project Kind = "travel", User, Country = toupper(tostring(Country)),',
            "        StartTime = todatetime(StartTime), EndTime = todatetime(EndTime))",
        )
    )
    return Query("context", text)
