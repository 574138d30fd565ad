"""
Every question the product asks of the logs: one constant KQL body each, and the values bound to it.

A `Query` is a body that never changes plus named `Binding`s (the accounts, the window, the row
cap). Log Analytics receives one `let` line per binding and then the body (`Query.text`); the
embedded engine declares the same names as `query_parameters`, translates the body once and binds
the values through DuckDB (`Query.declared`). Both engines therefore run the very same body text,
and because the body is the same for every incident, a translation is done once and reused.

The body keeps to the KQL both engines understand (no `make_set_if`, no `column_ifexists`, no
window functions, no user-defined `let` functions). Windows are `datetime()` values anchored at the
incident time, never `ago()`, so an old incident replays exactly. Nothing from an incident or a
sign-in row is pasted into a body: values are validated (UPNs, object ids, aliases) and written only
as escaped literals in the `let` lines, or bound as parameters.

Adding a question: write its body as a module constant naming its bindings (lower-case snake_case,
so they can never be mistaken for a table's PascalCase columns), and a builder that validates its
inputs and returns `Query(name, BODY, bindings)`; set `subjects` when the body reads the sign-in
tables only for those accounts, which lets an engine narrow the tables to them first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from common.identifiers import is_guid
from enrichment.domain.model import Account, Table, TimeWindow
from enrichment.domain.optional_tables import (
    AUDIT_LOGS,
    CLOUD_APP_EVENTS,
    GRAPH_ACTIVITY,
    IDENTITY_INFO,
    OFFICE_ACTIVITY,
    RISK_EVENTS,
    RISKY_USERS,
)

#: Groups of identical sign-ins are binned this finely: fine enough for concurrency and
#: odd-hour signals, coarse enough that token-refresh floods collapse.
EVIDENCE_BIN = "10m"

#: UniqueTokenIdentifiers kept per evidence group: enough to tie the token's use in other logs to its
#: sign-in (the scope question), bounded bytes.
TOKEN_IDS_PER_GROUP = 4

#: How far back the identity tables are read: IdentityInfo is rewritten for every user at least every
#: 14 days; a user's Entra ID risk stands until it changes, and detections stay relevant for weeks.
IDENTITY_LOOKBACK = timedelta(days=14)
RISK_LOOKBACK = timedelta(days=90)

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


# --------------------------------------------------------------------------------------------
# Bindings and queries
# --------------------------------------------------------------------------------------------

_BINDING_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

#: What a binding may hold, by its KQL type; `dynamic` is an array of strings.
BindingValue = str | int | datetime | tuple[str, ...]
_KINDS: dict[str, type | tuple[type, ...]] = {"string": str, "long": int, "datetime": datetime, "dynamic": tuple}


@dataclass(frozen=True, slots=True)
class Binding:
    """
    One named value a query body reads: `kind` is its KQL type (`string`, `long`, `datetime`, or
    `dynamic` for an array of strings).

    The name is lower-case snake_case, so it can never be read as one of a table's PascalCase
    columns; the value is checked against the kind, and strings must be writable as KQL literals.
    """

    name: str
    kind: str
    value: BindingValue

    def __post_init__(self) -> None:
        if not _BINDING_NAME.fullmatch(self.name):
            msg = f"binding name must be lower-case snake_case: {self.name!r}"
            raise InvalidQueryInput(msg)
        expected = _KINDS.get(self.kind)
        if expected is None:
            msg = f"binding {self.name}: unknown kind {self.kind!r} (one of {', '.join(_KINDS)})"
            raise InvalidQueryInput(msg)
        if not isinstance(self.value, expected) or isinstance(self.value, bool):
            msg = f"binding {self.name}: a {self.kind} needs a {expected}, got {type(self.value).__name__}"
            raise InvalidQueryInput(msg)
        if self.kind == "dynamic" and not all(isinstance(item, str) for item in self.value):  # type: ignore[union-attr]
            msg = f"binding {self.name}: a dynamic binding is an array of strings"
            raise InvalidQueryInput(msg)
        self.literal()  # refuses values no literal can hold (control characters, naive times)

    def literal(self) -> str:
        """The value as a KQL literal, for the `let` line Log Analytics receives."""
        if self.kind == "string":
            return string_literal(str(self.value))
        if self.kind == "long":
            return f"long({self.value})"
        if self.kind == "datetime":
            return datetime_literal(self.value)  # type: ignore[arg-type]
        return f"dynamic([{', '.join(map(string_literal, self.value))}])"  # type: ignore[arg-type]

    def parameter(self) -> object:
        """The value as the embedded engine binds it: a dynamic array as JSON text, times in UTC."""
        if self.kind == "dynamic":
            return json.dumps(list(self.value), ensure_ascii=False)  # type: ignore[arg-type]
        if self.kind == "datetime":
            return self.value.astimezone(UTC).replace(tzinfo=None)  # type: ignore[union-attr]
        return self.value


@dataclass(frozen=True, slots=True)
class Subjects:
    """
    The accounts a question reads sign-ins of, lower-cased and validated.

    A query that carries them promises that its body reads `SigninLogs` and
    `AADNonInteractiveUserSignInLogs` only where `UserPrincipalName in~ (upns) or UserId in~
    (object_ids)`, so an engine may narrow those tables to these accounts before running it (the
    embedded engine does: its cache indexes the sign-ins by user).
    """

    upns: tuple[str, ...]
    object_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Query:
    """
    A question asked with values: its constant body, the values bound to it, and a name for logs
    and counters. `Query(name, text)` with no bindings is a plain KQL text (`text` is the body).
    """

    name: str
    body: str
    bindings: tuple[Binding, ...] = ()
    subjects: Subjects | None = field(default=None)

    def __post_init__(self) -> None:
        names = [b.name for b in self.bindings]
        if len(set(names)) != len(names):
            msg = f"query {self.name}: a binding is named twice ({', '.join(sorted(names))})"
            raise InvalidQueryInput(msg)

    @property
    def text(self) -> str:
        """What Log Analytics receives: one `let` line per binding, then the body."""
        return "".join(f"let {b.name} = {b.literal()};\n" for b in self.bindings) + self.body

    @property
    def declared(self) -> str:
        """What the embedded engine translates, the same for every value: the bindings declared as parameters, then the body."""
        return _declare(self.body, tuple((b.name, b.kind) for b in self.bindings))

    def parameters(self) -> dict[str, object]:
        """The bound values by name, as the embedded engine passes them to DuckDB."""
        return {b.name: b.parameter() for b in self.bindings}


def _declare(body: str, parameters: tuple[tuple[str, str], ...]) -> str:
    if not parameters:
        return body
    names = ", ".join(f"{name}:{kind}" for name, kind in parameters)
    return f"declare query_parameters({names});\n{body}"


@dataclass(frozen=True, slots=True)
class Question:
    """
    One question the product asks: a constant body and the bindings it reads, by name and kind.

    `ask` binds values to it; `declared` is the text an engine that translates ahead of time (the
    embedded engine) translates once, whatever the values.
    """

    name: str
    body: str
    parameters: tuple[tuple[str, str], ...]

    @property
    def declared(self) -> str:
        return _declare(self.body, self.parameters)

    def ask(self, values: dict[str, BindingValue], subjects: Subjects | None = None) -> Query:
        """A `Query` of this question with `values` bound; every parameter needs exactly one value."""
        names = [name for name, _ in self.parameters]
        if sorted(values) != sorted(names):
            msg = f"question {self.name}: needs values for {', '.join(names)}, got {', '.join(sorted(values))}"
            raise InvalidQueryInput(msg)
        bindings = tuple(Binding(name, kind, values[name]) for name, kind in self.parameters)
        return Query(self.name, self.body, bindings, subjects)


def subjects_of(accounts: Sequence[Account]) -> Subjects:
    """The accounts' UPNs and object ids, validated, lower-cased and sorted; at least one name is required."""
    upns = tuple(sorted({validate_upn(a.upn) for a in accounts if a.upn}))
    ids = tuple(sorted({validate_object_id(a.object_id) for a in accounts if a.object_id}))
    if not upns and not ids:
        msg = "a query needs at least one account"
        raise InvalidQueryInput(msg)
    return Subjects(upns, ids)


# --------------------------------------------------------------------------------------------
# The bodies
# --------------------------------------------------------------------------------------------


def _lines(parts: Iterable[str]) -> str:
    return "\n".join(parts)


def _text(column: str) -> str:
    """
    A string column's value as text: `coalesce(X, "")`.

    For a column that is a string in every table it is read from, Kusto gives the same value for
    `tostring(X)` (its strings are never null); duckdb-kql, which cannot know the column's type,
    writes `tostring()` as a switch over every type (about 1 KB of SQL each, bound and optimised on
    every run) and `coalesce()` as a few lines, with a NULL (a column the export lacked) as "".
    """
    return f'coalesce({column}, "")'


#: JSON columns each sign-in branch reads once, by the name the flattened columns use.
#: `todynamic()` parses the JSON text of the non-interactive table and passes the dynamic columns of
#: the interactive one through, so both branches project the same scalar columns and the union
#: never splits a column into `X_dynamic` / `X_string`.
_PARSED = {
    "_loc": "todynamic(LocationDetails)",
    "_dev": "todynamic(DeviceDetail)",
    "_tp": "todynamic(TokenProtectionStatusDetails)",
    "_auth": "todynamic(AuthenticationDetails)",
    "_authText": _text("AuthenticationDetails"),
}

#: Every column a sign-in is flattened to and grouped by, as KQL over either table's row (plus `_PARSED`).
_FLAT = {
    "User": f"tolower({_text('UserPrincipalName')})",
    "UserId": f"tolower({_text('UserId')})",
    "IPAddress": _text("IPAddress"),
    "Asn": _text("AutonomousSystemNumber"),
    "Country": "tostring(_loc.countryOrRegion)",
    "City": "tostring(_loc.city)",
    "Latitude": "todouble(_loc.geoCoordinates.latitude)",
    "Longitude": "todouble(_loc.geoCoordinates.longitude)",
    "SessionId": _text("SessionId"),
    "AppId": _text("AppId"),
    "AppDisplayName": _text("AppDisplayName"),
    "ResourceId": _text("ResourceIdentity"),
    "ResourceDisplayName": _text("ResourceDisplayName"),
    "UserAgent": _text("UserAgent"),
    "ClientAppUsed": _text("ClientAppUsed"),
    "AuthenticationProtocol": _text("AuthenticationProtocol"),
    "IncomingTokenType": _text("IncomingTokenType"),
    "DeviceId": "tostring(_dev.deviceId)",
    "DeviceName": "tostring(_dev.displayName)",
    "OperatingSystem": "tostring(_dev.operatingSystem)",
    "Browser": "tostring(_dev.browser)",
    "IsCompliant": "tostring(_dev.isCompliant)",
    "IsManaged": "tostring(_dev.isManaged)",
    "TrustType": "tostring(_dev.trustType)",
    "ResultType": _text("ResultType"),
    "AuthenticationRequirement": _text("AuthenticationRequirement"),
    "AuthMethod": "tostring(_auth[0].authenticationMethod)",
    "TokenOnly": '_authText contains "satisfied by claim in the token" or _authText contains "Previously satisfied"',
    "TokenProtection": "tostring(_tp.signInSessionStatus)",
    "RiskLevel": _text("RiskLevelDuringSignIn"),
    "RiskEvents": _text("RiskEventTypes_V2"),
    "NetworkLocations": _text("NetworkLocationDetails"),
}

#: Columns a sign-in carries into its group without splitting it (aggregated, not grouped by).
_CARRIED = {"TokenId": _text("UniqueTokenIdentifier")}
_EXPRESSIONS = {**_FLAT, **_CARRIED}


#: Columns a sign-in carries without being grouped on: the evidence keeps a few of each group's values.
_CARRIED = {"TokenId": "tostring(UniqueTokenIdentifier)"}
_EXPRESSIONS = {**_FLAT, **_CARRIED}


_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"')
_COLUMN = re.compile(r"\b([A-Z][A-Za-z0-9_]*)\b(?!\s*\()")


def _columns_read(expression: str) -> list[str]:
    """The table columns a KQL expression names (PascalCase identifiers that are not calls), in order."""
    return list(dict.fromkeys(_COLUMN.findall(_LITERAL.sub('""', expression))))


def _signins(columns: Sequence[str]) -> str:
    """
    Both sign-in tables in the window for the subjects, flattened to `TimeGenerated`, `SourceTable` and `columns`.

    Each branch first keeps only the table columns those columns read (a sign-in row has about 90),
    and parses only the JSON columns they need, once.
    """
    parsed = [name for name in _PARSED if any(re.search(rf"\b{name}\b", _EXPRESSIONS[c]) for c in columns)]
    read = ["TimeGenerated", "UserPrincipalName", "UserId"]
    for expression in (*(_PARSED[name] for name in parsed), *(_EXPRESSIONS[c] for c in columns)):
        read.extend(_columns_read(expression))
    read = list(dict.fromkeys(read))
    branches = []
    for table in (Table.INTERACTIVE, Table.NON_INTERACTIVE):
        lines = [
            f"    ({table.value}",
            f"    | project {', '.join(read)}",
            "    | where TimeGenerated between (window_start .. window_end)",
            "    | where UserPrincipalName in~ (upns) or UserId in~ (object_ids)",
        ]
        if parsed:
            lines.append(f"    | extend {', '.join(f'{name} = {_PARSED[name]}' for name in parsed)}")
        lines.append(f"    | project TimeGenerated, SourceTable = {string_literal(table.value)},")
        flat = [f"{c} = {_EXPRESSIONS[c]}" for c in columns]
        lines.extend(f"        {item}," for item in flat[:-1])
        lines.append(f"        {flat[-1]})")
        branches.append(_lines(lines))
    return "union\n" + ",\n".join(branches)


#: The evidence columns, in the order rows carry them (`rows.signin` reads them by name).
EVIDENCE_KEYS = ("SourceTable", *_FLAT)


def _set_of(column: str, *, attacker_chosen: bool = False) -> str:
    """
    `make_set` of a string column, capped.

    A value the attacker chooses (a user agent, the name of a resource app they registered) is
    collected as a one-element array: Kusto unions the arrays it is given, so the set is the same,
    while duckdb-kql parses every string given to `make_set` as JSON and fails the query on one that
    is JSON-array text (a user agent of `[1,2]` stopped the baseline on the embedded engine; see
    docs/duckdb-kql-upstream.md). Only those columns pay for it: `pack_array` costs duckdb-kql about
    3 KB of SQL each, and the others come from the service (addresses, countries, GUIDs).
    """
    value = f"pack_array({column})" if attacker_chosen else column
    return f"make_set({value}, {BASELINE_SET_CAP})"


#: Added to a distance (seconds) before it is sorted as text: every sorted value then has the same
#: number of digits, so text order is number order in both engines (duckdb-kql sorts the numbers of
#: a dynamic array as text; see docs/duckdb-kql-upstream.md).
_DISTANCE_OFFSET = 100_000_000_000

#: Both sign-in tables for every account in one round trip, grouped, and capped per account: each
#: user keeps the groups nearest the incident time, and one more than `row_cap` when there are more,
#: so the caller knows that account's evidence was cut. (Kusto's `partition` and window functions
#: would say it shorter; the embedded engine runs neither, and a sorted list's element does the same.)
EVIDENCE_BODY = _lines(
    (
        "let groups = materialize(" + _signins((*_FLAT, *_CARRIED)),
        "| summarize Count = count(), FirstSeen = min(TimeGenerated), LastSeen = max(TimeGenerated),",
        "    TokenIds = make_set(TokenId)",
        f"    by {', '.join(EVIDENCE_KEYS)}, Bin = bin(TimeGenerated, {EVIDENCE_BIN})",
        # The smallest few, sorted before the cut: make_set's own cap keeps whichever come first, which
        # differs between runs and engines (and duckdb-kql ignores it).
        f"| extend TokenIds = array_slice(array_sort_asc(TokenIds), 0, {TOKEN_IDS_PER_GROUP - 1}),",
        '    Distance = abs(datetime_diff("second", FirstSeen, incident_time)));',
        "groups",
        "| join kind=leftouter (groups",
        f"    | summarize Distances = make_list(tostring(Distance + {_DISTANCE_OFFSET})) by User",
        f"    | project User, Cutoff = tolong(array_sort_asc(Distances)[row_cap]) - {_DISTANCE_OFFSET}) on User",
        "| where isnull(Cutoff) or Distance <= Cutoff",
        "| project-away Distance, Bin, Cutoff, User1",
    )
)

#: The columns the baseline summarises; the rest of a sign-in is not read.
_BASELINE_COLUMNS = (
    "User",
    "UserId",
    "IPAddress",
    "Asn",
    "Country",
    "AppId",
    "ResourceDisplayName",
    "UserAgent",
    "DeviceId",
    "IsCompliant",
    "AuthenticationProtocol",
)


#: The users' previous days summarised per table (sets, capped) and per day (counts only), so the
#: bytes returned stay flat however many sign-ins the user makes.
BASELINE_BODY = _lines(
    (
        "let signins = materialize(" + _signins(_BASELINE_COLUMNS) + ");",
        "union",
        "    (signins",
        "    | summarize Events = count(), DaysActive = dcount(startofday(TimeGenerated)),",
        "        FirstSeen = min(TimeGenerated), LastSeen = max(TimeGenerated), DistinctIps = dcount(IPAddress),",
        f"        Ips = {_set_of('IPAddress')}, Asns = {_set_of('Asn')},",
        f"        Countries = {_set_of('Country')}, AppIds = {_set_of('AppId')},",
        f"        Resources = {_set_of('ResourceDisplayName', attacker_chosen=True)},",
        f"        UserAgents = {_set_of('UserAgent', attacker_chosen=True)}, DeviceIds = {_set_of('DeviceId')},",
        f'        CompliantDeviceIds = {_set_of("""iff(IsCompliant == "true", DeviceId, "")""")},',
        "        Hours = make_set(hourofday(TimeGenerated), 24),",
        f"        AuthProtocols = {_set_of('AuthenticationProtocol')}",
        "        by User, UserId, SourceTable",
        '    | extend Scope = "table"),',
        "    (signins",
        "    | summarize Events = count(), DistinctIps = dcount(IPAddress), DistinctApps = dcount(AppId),",
        "        DistinctAsns = dcount(Asn)",
        "        by User, UserId, SourceTable, Day = startofday(TimeGenerated)",
        '    | extend Scope = "day")',
    )
)

#: The tables whose presence in the window the context query reports (`Kind` "presence").
PRESENCE_TABLES = (Table.INTERACTIVE.value, Table.NON_INTERACTIVE.value, "AuditLogs")

#: How many raw objects (rules, subjects, paths, targets) each summarised scope row keeps.
SCOPE_SAMPLE_CAP = 20
#: Longest text kept from one audit field (rule parameters, modified properties); rule definitions are short.
SCOPE_TEXT_CAP = 4000
#: Most recent risk detections returned per user.
RISK_DETECTIONS_CAP = 50


def _packed_text(column: str, packed: str) -> tuple[str, str, str]:
    """
    The lines that give every row `column`, the JSON text of `packed` (a `pack(...)`) as a one-element
    array, ready for a summarize to collect with `_text_set(column)`. Each step is its own `extend`: the
    same values in Kusto, and on the embedded engine the difference between a few KB of SQL and
    megabytes (duckdb-kql repeats a nested expression once per type it might have, so
    `make_set(pack_array(tostring(pack(...))))` written inline took 11 s per query to plan).
    """
    return (
        f"    | extend {column} = {packed}",
        f"    | extend {column} = tostring({column})",
        f"    | extend {column} = pack_array({column})",
    )


def _text_set(column: str) -> str:
    """
    The distinct JSON texts of `column` (made by `_packed_text`) per group, uncapped (`_first` cuts
    them). Each text arrives as a one-element array: Kusto unions the arrays, and duckdb-kql, which
    parses every string given to `make_set` as JSON and fails on one that is JSON-array text, always
    gets an array. The packed keys are named in alphabetical order, so the text reads the same whichever
    order an engine writes a bag's keys in.
    """
    return f"make_set({column})"


def _first(column: str, count: int, *, newest: bool = False) -> str:
    """
    The first `count` texts of a set in text order (the last, `newest`, for texts that start with their
    time): make_set's own cap keeps whichever came first, which differs between runs and engines.
    """
    order = "array_sort_desc" if newest else "array_sort_asc"
    return f"array_slice({order}({column}), 0, {count - 1})"


def _coverage(table: str, since: str) -> str:
    """
    A branch answering one row, the table's rows since `since` for the whole tenant, when the table
    exists. In a fuzzy union a table the workspace lacks drops its branch, so no row means "not collected".
    """
    return (
        f"    ({table} | where TimeGenerated between ({since} .. window_end) | summarize Rows = count()\n"
        f'    | project Kind = "coverage", Source = {string_literal(table)}, Rows)'
    )


#: Security-info changes from AuditLogs, the users' travel records, who they are (IdentityInfo,
#: AADRiskyUsers, AADUserRiskEvents) and which tables hold any row (anyone's) in the window, in one
#: round trip: "the user has no sign-ins" is a result only when the table does hold data for the
#: window (evidence coverage); `take 1` stops at the first row. Rows carry `Kind` ("presence", "audit",
#: "travel", "identity", "risky_user", "risk_events", "coverage"); the shapes share little else. An
#: empty list matches nothing, so an account known only by UPN never matches the audit rows that have
#: no user id. The identity tables exist only where a connector fills them: the union is fuzzy, and a
#: coverage row per table says which ones the workspace has.
CONTEXT_BODY = _lines(
    (
        "union isfuzzy=true",
        *(
            f"    ({table} | where TimeGenerated between (window_start .. window_end) | take 1"
            f' | project Kind = "presence", SourceTable = {string_literal(table)}),'
            for table in PRESENCE_TABLES
        ),
        "    (AuditLogs",
        "    | where TimeGenerated between (window_start .. window_end)",
        f"    | where OperationName in~ ({', '.join(map(string_literal, SECURITY_OPERATIONS))})",
        "    | extend _ini = todynamic(InitiatedBy), _tgt = todynamic(TargetResources)",
        "    | extend Actor = tolower(tostring(_ini.user.userPrincipalName)), ActorId = tostring(_ini.user.id),",
        "        ActorIp = tostring(_ini.user.ipAddress), Target = tolower(tostring(_tgt[0].userPrincipalName)),",
        "        TargetId = tostring(_tgt[0].id)",
        "    | where Actor in (upns) or Target in (upns) or ActorId in~ (object_ids) or TargetId in~ (object_ids)",
        f'    | project Kind = "audit", TimeGenerated, OperationName = {_text("OperationName")},',
        f"        Result = {_text('Result')}, Actor, ActorIp, Target, Detail = tostring(_tgt[0].displayName)),",
        "    (_GetWatchlist(travel_watchlist)",
        "    | extend User = tolower(tostring(UserPrincipalName))",
        "    | where User in (upns)",
        '    | project Kind = "travel", User, Country = toupper(tostring(Country)),',
        "        StartTime = todatetime(StartTime), EndTime = todatetime(EndTime)),",
        f"    ({IDENTITY_INFO}",
        "    | where TimeGenerated between (identity_since .. window_end)",
        "    | extend User = tolower(tostring(AccountUPN)), UserId = tolower(tostring(AccountObjectId))",
        "    | where User in (upns) or UserId in (object_ids)",
        "    | summarize arg_max(TimeGenerated, AccountDisplayName, Department, JobTitle, Manager, AssignedRoles) by User, UserId",
        '    | project Kind = "identity", User, UserId, TimeGenerated, DisplayName = tostring(AccountDisplayName),',
        "        Department = tostring(Department), JobTitle = tostring(JobTitle), Manager = tostring(Manager),",
        "        Roles = AssignedRoles),",
        f"    ({RISKY_USERS}",
        "    | where TimeGenerated between (risk_since .. window_end)",
        "    | extend User = tolower(tostring(UserPrincipalName)), UserId = tolower(tostring(Id))",
        "    | where User in (upns) or UserId in (object_ids)",
        "    | summarize arg_max(TimeGenerated, RiskLevel, RiskState, RiskDetail) by User, UserId",
        '    | project Kind = "risky_user", User, UserId, TimeGenerated, RiskLevel = tostring(RiskLevel),',
        "        RiskState = tostring(RiskState), RiskDetail = tostring(RiskDetail)),",
        f"    ({RISK_EVENTS}",
        "    | where TimeGenerated between (risk_since .. window_end)",
        "    | extend User = tolower(tostring(UserPrincipalName)), UserId = tolower(tostring(UserId))",
        "    | where User in (upns) or UserId in (object_ids)",
        "    | summarize arg_max(TimeGenerated, RiskEventType, RiskLevel, RiskState, DetectedDateTime, IpAddress) by User, UserId, Id",
        *_packed_text(
            "_detection",
            'pack("detected", DetectedDateTime, "ip", tostring(IpAddress), "kind", tostring(RiskEventType),'
            ' "level", tostring(RiskLevel), "state", tostring(RiskState))',
        ),
        f"    | summarize Detections = {_text_set('_detection')} by User, UserId",
        f'    | project Kind = "risk_events", User, UserId, Detections = {_first("Detections", RISK_DETECTIONS_CAP, newest=True)}),',
        _coverage(IDENTITY_INFO, "identity_since") + ",",
        _coverage(RISKY_USERS, "risk_since") + ",",
        _coverage(RISK_EVENTS, "risk_since"),
    )
)

#: The Microsoft 365 audit operations the scope question reads: inbox rules, forwarding, mail access,
#: sent and deleted mail, file downloads.
RULE_OPERATIONS = (
    "New-InboxRule",
    "Set-InboxRule",
    "Enable-InboxRule",
    "Disable-InboxRule",
    "Remove-InboxRule",
    "UpdateInboxRules",
    "Set-Mailbox",
)
MAILBOX_OPERATIONS = (
    *RULE_OPERATIONS,
    "MailItemsAccessed",
    "Send",
    "SendAs",
    "SendOnBehalf",
    "SoftDelete",
    "HardDelete",
    "MoveToDeletedItems",
    "FileDownloaded",
    "FileSyncDownloadedFull",
    "FileSyncDownloadedPartial",
)

#: AuditLogs operations that give an attacker a way back in or more reach: consent to an application,
#: a new credential on an application, a role assigned. (Device and security-info registrations are
#: read by the context question.)
DIRECTORY_OPERATIONS = (
    "Consent to application",
    "Add delegated permission grant",
    "Add app role assignment to service principal",
    "Add service principal credentials",
    "Add member to role",
    "Add eligible member to role",
)
#: Credential changes on an application are logged under this prefix (an en dash, as Entra writes it).
APPLICATION_CREDENTIALS = "Update application – Certificates and secrets management"


def _client_ip(expression: str) -> str:
    """
    KQL for the address in an audit client field: Exchange writes `10.0.0.1:32231` and `[2001:db8::1]:443`
    with the port, IPv6 without brackets has no port. Both engines give the bare address.
    """
    return (
        f'case({expression} startswith "[", tostring(split(substring({expression}, 1), "]")[0]),'
        f' countof({expression}, ":") == 1, tostring(split({expression}, ":")[0]), {expression})'
    )


def _tied(ip: str) -> str:
    """The scope filter: a suspect address, the token of a suspect sign-in, or the lifted session where no address was recorded."""
    return f"{ip} in (suspect_ips) or TokenId in (token_ids) or (isempty({ip}) and SessionId in (session_ids))"


def _mailbox_branch(source: str, columns: Sequence[str], lines: Sequence[str]) -> str:
    """
    One audit table's branch, after `lines` have given every row User, Operation, _cip, SessionId,
    TokenId, Client, AppId and the raw fields, from `columns` (the only ones the branch reads: on the
    embedded engine every later step would otherwise carry the table's 180 columns).
    """
    rules = ", ".join(map(string_literal, RULE_OPERATIONS))
    return _lines(
        (
            f"    ({source}",
            "    | where TimeGenerated between (window_start .. window_end)",
            f"    | project {', '.join(columns)}",
            *lines,
            f"    | where Operation in~ ({', '.join(map(string_literal, MAILBOX_OPERATIONS))})",
            f"    | extend Ip = {_client_ip(_text('_cip'))}",
            f"    | where {_tied('Ip')}",
            # Each text is cut from `coalesce(X, "")`, the same string: duckdb-kql writes a bare column
            # as a switch over every type it might have, once per use (three in a `substring`).
            f"    | extend _parameters = substring({_text('_parameters')}, 0, {SCOPE_TEXT_CAP}),",
            f"        _change = substring({_text('_properties')}, 0, {SCOPE_TEXT_CAP}), _access = substring({_text('_properties')}, 0, 300),",
            f"        _file = substring({_text('_object')}, 0, 300), _subject = substring({_text('_subject')}, 0, 200)",
            '    | extend Items = iff(Operation =~ "MailItemsAccessed",',
            "        countof(_folders, '\"Id\":') - countof(_folders, '\"FolderItems\":'), 1),",
            f"        Sample = case(Operation in~ ({rules}),",
            '            pack("at", TimeGenerated, "mailbox", _mailbox, "object", _object, "parameters", _parameters, "properties", _change),',
            '            Operation startswith "File", pack("file", _file),',
            '            Operation =~ "MailItemsAccessed", pack("access", _access),',
            '            pack("subject", _subject))',
            "    | extend Sample = tostring(Sample)",
            "    | extend Sample = pack_array(Sample)",
            "    | summarize Count = count(), Items = sum(Items), FirstSeen = min(TimeGenerated), LastSeen = max(TimeGenerated),",
            f"        Samples = {_text_set('Sample')}",
            '        by User, Ip, SessionId, TokenKey = iff(TokenId in (token_ids), TokenId, ""), Operation, Client, AppId',
            f'    | extend Kind = "mailbox", Source = {string_literal(source)}, Samples = {_first("Samples", SCOPE_SAMPLE_CAP)})',
        )
    )


#: What the suspect sessions did, in one round trip for every account: Graph requests tied to the
#: tokens of the suspect sign-ins (`SignInActivityId` is the sign-in's `UniqueTokenIdentifier`) or
#: made from the suspect addresses, Microsoft 365 audit operations from those addresses, tokens or
#: sessions (`AppAccessContext`), and directory changes by the user from those addresses. Everything is
#: summarised (per address, session, token, operation and client, with a few samples), so the answer's
#: size follows the number of distinct things done, not their volume. The union is fuzzy: a table the
#: workspace lacks drops its branches, and the coverage rows say which tables answered.
SCOPE_BODY = _lines(
    (
        "union isfuzzy=true",
        f"    ({GRAPH_ACTIVITY}",
        "    | where TimeGenerated between (window_start .. window_end)",
        "    | project TimeGenerated, UserId, SignInActivityId, IPAddress, RequestUri, RequestMethod, ResponseSizeBytes,",
        "        ResponseStatusCode, UserAgent, AppId",
        "    | where UserId in~ (object_ids)",
        f"    | extend TokenId = {_text('SignInActivityId')}, Ip = {_text('IPAddress')}",
        "    | where Ip in (suspect_ips) or TokenId in (token_ids)",
        f'    | extend Path = tolower(tostring(split({_text("RequestUri")}, "?")[0])), Method = toupper({_text("RequestMethod")})',
        '    | extend Family = case(Path matches regex "/messagerules|/mailboxsettings", "mail_settings",',
        '        Path contains "/sendmail" or (Method == "POST" and Path matches regex "/(send|reply|replyall|forward)$"), "mail_send",',
        '        Path matches regex "/messages|/mailfolders", "mail_read",',
        '        Path matches regex "/drive|/sites/", "files",',
        '        Path matches regex "/applications|/serviceprincipals|/oauth2permissiongrants|/approleassignments", "applications",',
        '        Path matches regex "/users|/groups|/directoryroles|/rolemanagement|/organization|/devices", "directory",',
        '        "other")',
        f"    | extend _path = substring({_text('Path')}, 0, 300)",
        *_packed_text("Sample", 'pack("path", _path)'),
        "    | summarize Count = count(), Bytes = sum(ResponseSizeBytes), Failures = countif(ResponseStatusCode >= 400),",
        "        FirstSeen = min(TimeGenerated), LastSeen = max(TimeGenerated),",
        f"        Samples = {_text_set('Sample')}",
        f'        by User = tolower({_text("UserId")}), Ip, TokenKey = iff(TokenId in (token_ids), TokenId, ""),',
        f"        Method, Operation = Family, Client = {_text('UserAgent')}, AppId = {_text('AppId')}",
        f'    | extend Kind = "graph", Source = {string_literal(GRAPH_ACTIVITY)}, Samples = {_first("Samples", SCOPE_SAMPLE_CAP)}),',
        _mailbox_branch(
            OFFICE_ACTIVITY,
            (
                "TimeGenerated",
                "UserId",
                "Operation",
                "AppAccessContext",
                "ClientIP",
                "Client_IPAddress",
                "ActorIpAddress",
                "ClientInfoString",
                "UserAgent",
                "AppId",
                "ClientAppId",
                "Folders",
                "OfficeObjectId",
                "SourceFileName",
                "MailboxOwnerUPN",
                "Parameters",
                "OperationProperties",
                "Item",
            ),
            (
                f"    | extend User = tolower({_text('UserId')}), Operation = {_text('Operation')}",
                "    | where User in (upns)",
                "    | extend _ctx = todynamic(AppAccessContext)",
                "    | extend SessionId = tostring(_ctx.AADSessionId), TokenId = tostring(_ctx.UniqueTokenId),",
                '        _cip = coalesce(ClientIP, Client_IPAddress, ActorIpAddress, ""),',
                '        Client = coalesce(ClientInfoString, UserAgent, ""), AppId = coalesce(AppId, ClientAppId, ""),',
                f'        _folders = {_text("Folders")}, _object = coalesce(OfficeObjectId, SourceFileName, ""),',
                f'        _mailbox = tolower(coalesce(MailboxOwnerUPN, UserId, "")), _parameters = {_text("Parameters")},',
                "        _properties = tostring(OperationProperties), _subject = tostring(todynamic(Item).Subject)",
            ),
        )
        + ",",
        _mailbox_branch(
            CLOUD_APP_EVENTS,
            ("TimeGenerated", "RawEventData", "ActionType", "AccountObjectId", "IPAddress", "UserAgent", "ObjectName"),
            (
                "    | extend _raw = todynamic(RawEventData)",
                "    | extend User = tolower(tostring(_raw.UserId)), Operation = tostring(ActionType)",
                "    | where User in (upns) or tolower(tostring(AccountObjectId)) in (object_ids)",
                "    | extend SessionId = tostring(_raw.AppAccessContext.AADSessionId),",
                "        TokenId = tostring(_raw.AppAccessContext.UniqueTokenId),",
                "        _cip = tostring(coalesce(tostring(_raw.ClientIP), tostring(_raw.ClientIPAddress), IPAddress)),",
                "        Client = tostring(coalesce(tostring(_raw.ClientInfoString), UserAgent)),",
                "        AppId = tostring(coalesce(tostring(_raw.AppId), tostring(_raw.ClientAppId))),",
                "        _folders = tostring(_raw.Folders), _object = tostring(coalesce(tostring(_raw.ObjectId), ObjectName)),",
                "        _mailbox = tolower(tostring(coalesce(tostring(_raw.MailboxOwnerUPN), tostring(_raw.UserId)))),",
                "        _parameters = tostring(_raw.Parameters), _properties = tostring(_raw.OperationProperties),",
                "        _subject = tostring(_raw.Item.Subject)",
            ),
        )
        + ",",
        f"    ({AUDIT_LOGS}",
        "    | where TimeGenerated between (window_start .. window_end)",
        "    | project TimeGenerated, OperationName, InitiatedBy, TargetResources",
        f"    | where OperationName in~ ({', '.join(map(string_literal, DIRECTORY_OPERATIONS))})",
        f"        or OperationName startswith {string_literal(APPLICATION_CREDENTIALS)}",
        "    | extend _ini = todynamic(InitiatedBy), _tgt = todynamic(TargetResources)",
        "    | extend User = tolower(tostring(_ini.user.userPrincipalName)), ActorId = tolower(tostring(_ini.user.id)),",
        "        Ip = tostring(_ini.user.ipAddress)",
        "    | where (User in (upns) or ActorId in (object_ids)) and Ip in (suspect_ips)",
        f"    | extend _detail = substring(tostring(_tgt[0].modifiedProperties), 0, {SCOPE_TEXT_CAP}),",
        "        _id = tostring(_tgt[0].id), _target = tostring(_tgt[0].displayName)",
        *_packed_text(
            "Sample",
            'pack("at", TimeGenerated, "detail", _detail, "id", _id, "target", _target)',
        ),
        "    | summarize Count = count(), FirstSeen = min(TimeGenerated), LastSeen = max(TimeGenerated),",
        f"        Samples = {_text_set('Sample')}",
        "        by User, Ip, Operation = tostring(OperationName)",
        f'    | extend Kind = "directory", Source = {string_literal(AUDIT_LOGS)}, Samples = {_first("Samples", SCOPE_SAMPLE_CAP)}),',
        _coverage(GRAPH_ACTIVITY, "window_start") + ",",
        _coverage(OFFICE_ACTIVITY, "window_start") + ",",
        _coverage(CLOUD_APP_EVENTS, "window_start") + ",",
        _coverage(AUDIT_LOGS, "window_start"),
    )
)


#: The bindings every question about accounts in a window reads.
_ACCOUNTS_IN_WINDOW = (("upns", "dynamic"), ("object_ids", "dynamic"), ("window_start", "datetime"), ("window_end", "datetime"))

EVIDENCE = Question("evidence", EVIDENCE_BODY, (*_ACCOUNTS_IN_WINDOW, ("incident_time", "datetime"), ("row_cap", "long")))
BASELINE = Question("baseline", BASELINE_BODY, _ACCOUNTS_IN_WINDOW)
CONTEXT = Question(
    "context",
    CONTEXT_BODY,
    (*_ACCOUNTS_IN_WINDOW, ("travel_watchlist", "string"), ("identity_since", "datetime"), ("risk_since", "datetime")),
)
SCOPE = Question(
    "scope",
    SCOPE_BODY,
    (*_ACCOUNTS_IN_WINDOW, ("suspect_ips", "dynamic"), ("token_ids", "dynamic"), ("session_ids", "dynamic")),
)

#: Every question, for whoever prepares them ahead of time (the embedded engine translates each once).
QUESTIONS = (EVIDENCE, BASELINE, CONTEXT, SCOPE)


def _accounts_in(accounts: Sequence[Account], window: TimeWindow) -> tuple[Subjects, dict[str, BindingValue]]:
    subjects = subjects_of(accounts)
    values: dict[str, BindingValue] = {
        "upns": subjects.upns,
        "object_ids": subjects.object_ids,
        "window_start": window.start,
        "window_end": window.end,
    }
    return subjects, values


# --------------------------------------------------------------------------------------------
# The questions, asked
# --------------------------------------------------------------------------------------------


def evidence_query(accounts: Sequence[Account], window: TimeWindow, at: datetime, *, row_cap: int) -> Query:
    """
    Both sign-in tables for every account in one round trip, grouped and capped per account.

    Each account keeps at most `row_cap + 1` groups, the nearest the incident time (ties at the
    cut are kept): when an account has more than `row_cap`, the caller knows its evidence was cut.
    """
    if row_cap < 1:
        msg = "row_cap must be positive"
        raise InvalidQueryInput(msg)
    subjects, values = _accounts_in(accounts, window)
    return EVIDENCE.ask({**values, "incident_time": at, "row_cap": row_cap}, subjects)


def baseline_query(accounts: Sequence[Account], window: TimeWindow) -> Query:
    """The users' previous days summarised per table and per day (`BASELINE_BODY`)."""
    subjects, values = _accounts_in(accounts, window)
    return BASELINE.ask(values, subjects)


def context_query(accounts: Sequence[Account], window: TimeWindow, *, travel_watchlist: str) -> Query:
    """
    Security-info changes, travel records and identity context of the accounts, and which tables
    hold rows in the window (`CONTEXT_BODY`); reads sign-ins of no account, so no engine narrows it to
    the accounts. The identity tables are read further back than the window: IdentityInfo is refreshed
    every 14 days at least, and a user's risk stands until it changes.
    """
    alias = validate_watchlist_alias(travel_watchlist)
    _, values = _accounts_in(accounts, window)
    return CONTEXT.ask(
        {
            **values,
            "travel_watchlist": alias,
            "identity_since": window.end - IDENTITY_LOOKBACK,
            "risk_since": window.end - RISK_LOOKBACK,
        }
    )


#: The most addresses, token ids and session ids bound to one scope question: a suspect set this large
#: is already the whole story, and the `let` lines stay far below the query API's size limit.
SCOPE_BINDING_CAP = 500


def _bounded(values: Iterable[str], shape: re.Pattern[str]) -> tuple[str, ...]:
    """
    The distinct values that have `shape`, at most `SCOPE_BINDING_CAP` of them (sorted, so the cut is
    stable). A value of another shape came from a row no log of this kind could match, and is left out.
    """
    return tuple(sorted({v for v in values if v and shape.fullmatch(v)})[:SCOPE_BINDING_CAP])


_ADDRESS = re.compile(r"^[0-9A-Fa-f:.]{2,45}$")
_TOKEN_ID = re.compile(r"^[A-Za-z0-9_\-=+/.]{1,128}$")
_SESSION_ID = re.compile(r"^[A-Za-z0-9_\-=+/.:{}]{1,128}$")


def scope_query(
    accounts: Sequence[Account],
    window: TimeWindow,
    *,
    suspect_ips: Iterable[str],
    token_ids: Iterable[str] = (),
    session_ids: Iterable[str] = (),
) -> Query:
    """
    What the suspect sessions did (`SCOPE_BODY`), for every account in one round trip.

    The accounts need their object ids where known (Graph activity names users by id only). Addresses,
    token ids and session ids come from sign-in rows, so from the attacker: only values of their shape
    are bound, as lists; an empty list matches nothing.
    """
    _, values = _accounts_in(accounts, window)
    return SCOPE.ask(
        {
            **values,
            "suspect_ips": _bounded(suspect_ips, _ADDRESS),
            "token_ids": _bounded(token_ids, _TOKEN_ID),
            "session_ids": _bounded(session_ids, _SESSION_ID),
        }
    )
