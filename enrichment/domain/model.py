"""
The evidence vocabulary: frozen values that every layer speaks.

Rows from either engine are parsed once, at the edge (`enrichment.queries.rows`), into these values; after
that nothing walks dicts or knows a raw column name. Every string that came from a sign-in row is
attacker-controlled (user agent, app name, city, device name) and stays raw here: escaping is the
job of whoever renders it (HTML comment, card markdown, KQL literal).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from enrichment.domain.activity import Scope
from enrichment.domain.identity import IdentityContext


class Table(StrEnum):
    """The two Entra ID sign-in tables; the value is the Log Analytics table name."""

    INTERACTIVE = "SigninLogs"
    NON_INTERACTIVE = "AADNonInteractiveUserSignInLogs"


#: Read once here for `SignIn.interactive`: on Python 3.11 each `Table.INTERACTIVE` is a descriptor call.
_INTERACTIVE = Table.INTERACTIVE

#: The directory's audit table: security-info and device registrations.
AUDIT_LOGS = "AuditLogs"
#: Every table the evidence comes from, in the order coverage is reported.
SOURCES: tuple[str, ...] = (Table.INTERACTIVE.value, Table.NON_INTERACTIVE.value, AUDIT_LOGS)


class Column(StrEnum):
    """
    A source column the rules and explanations read; the value is its Log Analytics name.

    Rules declare the columns they read, so a column that is absent (an export without it) makes
    the rules that read it "not evaluated" instead of letting them read its absence as a fact: "no
    device" is not "the DeviceDetail column is absent".
    """

    TIME_GENERATED = "TimeGenerated"
    USER_PRINCIPAL_NAME = "UserPrincipalName"
    IP_ADDRESS = "IPAddress"
    RESULT_TYPE = "ResultType"
    ASN = "AutonomousSystemNumber"
    LOCATION = "LocationDetails"
    NETWORK_LOCATIONS = "NetworkLocationDetails"
    SESSION_ID = "SessionId"
    APP_ID = "AppId"
    RESOURCE = "ResourceDisplayName"
    USER_AGENT = "UserAgent"
    AUTH_PROTOCOL = "AuthenticationProtocol"
    INCOMING_TOKEN_TYPE = "IncomingTokenType"  # noqa: S105 - a column name
    DEVICE = "DeviceDetail"
    AUTH_DETAILS = "AuthenticationDetails"
    TOKEN_PROTECTION = "TokenProtectionStatusDetails"  # noqa: S105 - a column name
    RISK_EVENTS = "RiskEventTypes_V2"
    AUDIT_OPERATION = "OperationName"
    AUDIT_INITIATED_BY = "InitiatedBy"
    AUDIT_TARGETS = "TargetResources"

    @property
    def tables(self) -> tuple[str, ...]:
        """The tables that hold this column."""
        return (AUDIT_LOGS,) if self in _AUDIT_COLUMNS else (Table.INTERACTIVE.value, Table.NON_INTERACTIVE.value)


_AUDIT_COLUMNS = frozenset({Column.AUDIT_OPERATION, Column.AUDIT_INITIATED_BY, Column.AUDIT_TARGETS})
#: Without these a sign-in table cannot be read at all: no row can be placed in time, matched to
#: the user, located on a network or told apart from a failure.
KEY_COLUMNS = frozenset({Column.TIME_GENERATED, Column.USER_PRINCIPAL_NAME, Column.IP_ADDRESS, Column.RESULT_TYPE})


@dataclass(frozen=True, slots=True)
class TableCoverage:
    """
    What one table gave for one user: whether it could be read whole, how many of the user's rows
    came from it, and which columns the rules read that it does not have.

    `read` is False when the table holds no rows at all for the window, the workspace answered 204,
    a query over it came back partial, or a key column is absent; `problem` says which, for people.
    """

    table: str
    read: bool
    rows: int = 0
    missing_columns: tuple[str, ...] = ()
    problem: str = ""


@dataclass(frozen=True, slots=True)
class Coverage:
    """
    Which evidence the engines could give, per table. An empty coverage means nothing is known to be
    missing (evidence built by hand); `gather_evidence` always reports every table.
    """

    tables: tuple[TableCoverage, ...] = ()

    def table(self, name: str) -> TableCoverage | None:
        return next((t for t in self.tables if t.table == name), None)


@dataclass(frozen=True, slots=True)
class Account:
    """
    A suspect account as named by the incident.

    Either field may be empty, not both: sign-in rows are matched on the UPN (case-insensitive) or
    on the Entra object id, so a guest whose UPN differs between tenants is still found by id.
    """

    upn: str = ""
    object_id: str = ""

    @property
    def key(self) -> str:
        """The stable name of the account in documents and logs: the UPN when known."""
        return self.upn or self.object_id


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A closed time range, always timezone-aware UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            msg = "TimeWindow needs timezone-aware datetimes"
            raise ValueError(msg)
        if self.end < self.start:
            msg = f"TimeWindow ends ({self.end.isoformat()}) before it starts ({self.start.isoformat()})"
            raise ValueError(msg)

    @classmethod
    def around(cls, at: datetime, *, before: timedelta, after: timedelta) -> TimeWindow:
        """The evidence window anchored at the incident time."""
        return cls(at - before, at + after)

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment <= self.end


@dataclass(frozen=True, slots=True)
class SignIn:
    """
    One evidence row: identical sign-ins of one user grouped inside a ten-minute bin.

    Non-interactive sign-ins arrive by the thousand (every token refresh is a row), so the query
    groups rows that agree on every field the scorer reads; `count`, `first` and `last` keep the
    volume and the timing. An interactive row is usually a group of one.
    """

    user: str  # lower-case UPN as recorded on the row
    user_id: str
    table: Table
    first: datetime
    last: datetime
    count: int
    ip: str
    asn: int | None = None
    country: str = ""
    city: str = ""
    latitude: float | None = None
    longitude: float | None = None
    session_id: str = ""
    token_ids: tuple[str, ...] = ()  # UniqueTokenIdentifiers of the group (a few), for pivots to other logs
    app_id: str = ""
    app: str = ""
    resource_id: str = ""
    resource: str = ""
    user_agent: str = ""
    client_app: str = ""
    auth_protocol: str = ""
    incoming_token_type: str = ""
    device_id: str = ""
    device_name: str = ""
    operating_system: str = ""
    browser: str = ""
    is_compliant: bool | None = None
    result_type: str = "0"
    token_only: bool = False  # "MFA requirement satisfied by claim in the token" / "Previously satisfied"
    token_protection: str = ""  # TokenProtectionStatusDetails.signInSessionStatus: bound / unbound / ...
    risk_events: tuple[str, ...] = ()
    trusted_networks: tuple[str, ...] = ()  # names of trusted named locations the IP matched

    @property
    def interactive(self) -> bool:
        return self.table is _INTERACTIVE

    @property
    def succeeded(self) -> bool:
        return self.result_type in ("0", "")


@dataclass(frozen=True, slots=True)
class TableBaseline:
    """What one table says about the user over the baseline days, summarised in KQL."""

    table: Table
    events: int
    days_active: int
    first: datetime | None
    last: datetime | None
    distinct_ips: int
    ips: frozenset[str] = frozenset()
    asns: frozenset[int] = frozenset()
    countries: frozenset[str] = frozenset()
    app_ids: frozenset[str] = frozenset()
    resources: frozenset[str] = frozenset()
    user_agents: frozenset[str] = frozenset()
    device_ids: frozenset[str] = frozenset()
    compliant_device_ids: frozenset[str] = frozenset()
    hours: frozenset[int] = frozenset()
    auth_protocols: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class DailyActivity:
    """One day of one table: volume and breadth, for spotting jumps against the baseline."""

    day: datetime
    table: Table
    events: int
    distinct_ips: int
    distinct_apps: int
    distinct_asns: int


@dataclass(frozen=True, slots=True)
class Baseline:
    """The user's previous N days before the evidence window."""

    window: TimeWindow
    interactive: TableBaseline | None = None
    non_interactive: TableBaseline | None = None
    daily: tuple[DailyActivity, ...] = ()

    @property
    def empty(self) -> bool:
        return self.interactive is None and self.non_interactive is None

    def known(self, attribute: str) -> frozenset[str] | frozenset[int]:
        """The union of one set-valued attribute over both tables (e.g. `"ips"`, `"asns"`)."""
        values: set[object] = set()
        for part in (self.interactive, self.non_interactive):
            if part is not None:
                values |= getattr(part, attribute)
        return frozenset(values)  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """An AuditLogs change to the user's authentication methods or devices inside the window."""

    time: datetime
    operation: str
    result: str
    actor: str
    actor_ip: str
    target: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class TravelRecord:
    """A watchlist row saying the user travels to `country` (ISO alpha-2) between two dates."""

    user: str
    country: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class UserEvidence:
    """Everything gathered for one account around one incident time."""

    account: Account
    at: datetime
    window: TimeWindow
    signins: tuple[SignIn, ...]
    baseline: Baseline
    security_events: tuple[SecurityEvent, ...] = ()
    travel: tuple[TravelRecord, ...] = ()
    truncated: bool = False
    warnings: tuple[str, ...] = ()
    coverage: Coverage = field(default_factory=Coverage)
    identity: IdentityContext = field(default_factory=IdentityContext)  # who the account is (workspace tables, then Graph)
    scope: Scope | None = None  # what the suspect sessions did; None until the scope question was asked


@dataclass(frozen=True, slots=True)
class QueryOutcome:
    """
    Rows from one query run, with what the engine said about their completeness.

    A Log Analytics partial result or a 204 is data, not an exception: the rows that did come back
    are kept, `warnings` says what is missing, so the incident comment can say it too, and
    `complete` is False, so no verdict rests on the absence of what did not come back.
    `missing_columns` names, per table, source columns the data does not have at all (an export
    without them): their absence is not a fact about the user.
    """

    rows: tuple[dict[str, object], ...]
    warnings: tuple[str, ...] = field(default=())
    complete: bool = True
    missing_columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


class Verdict(StrEnum):
    """
    How the product reads the evidence; thresholds come from settings.

    `INSUFFICIENT_EVIDENCE` is what would otherwise be `BENIGN` when evidence the verdict needs is
    missing (a table with no rows for the window, a 204, a partial query, absent columns): missing
    evidence is not innocence. The other three keep their meaning.
    """

    REPLAY_LIKELY = "replay_likely"
    SUSPICIOUS = "suspicious"
    INSUFFICIENT_EVIDENCE = "insufficient_evidence"
    BENIGN = "benign"

    @property
    def words(self) -> str:
        """The verdict for a person ('token replay likely'); headlines and comments case it as they need."""
        return _VERDICT_NAMES[self][0]

    @property
    def slug(self) -> str:
        """The short stable name in incident labels ('likely' in `token-replay:likely`)."""
        return _VERDICT_NAMES[self][1]

    @property
    def concern(self) -> int:
        """How much the verdict asks of an analyst: the higher, the sooner it is read (benign is 0)."""
        return _VERDICT_NAMES[self][2]


#: Verdict -> (words, label slug, concern): the one table every rendering and label reads.
_VERDICT_NAMES: dict[str, tuple[str, str, int]] = {
    Verdict.REPLAY_LIKELY: ("token replay likely", "likely", 3),
    Verdict.SUSPICIOUS: ("suspicious", "suspicious", 2),
    Verdict.INSUFFICIENT_EVIDENCE: ("insufficient evidence", "insufficient-evidence", 1),
    Verdict.BENIGN: ("benign", "benign", 0),
}


class ExplanationKind(StrEnum):
    """The benign explanations checked per IP before anything is called suspect."""

    CORPORATE_NETWORK = "corporate_network"
    CORPORATE_VPN = "corporate_vpn"
    TRUSTED_ASN = "trusted_asn"
    NAMED_LOCATION = "named_location"
    MICROSOFT_NETWORK = "microsoft_network"
    MOBILE_CARRIER = "mobile_carrier"
    DUAL_STACK = "dual_stack"
    TRAVEL = "travel"
    PRIVACY_RELAY = "privacy_relay"
    SECURITY_SERVICE_EDGE = "security_service_edge"
    NEW_DEVICE = "new_device"
    DEVICE_CONTINUITY = "device_continuity"


@dataclass(frozen=True, slots=True)
class Signal:
    """
    One piece of replay evidence, like a detection rule's hit.

    `id` is stable (weights, logs, tests and comments refer to it), `weight` is the points it adds,
    `detail` is a sentence for a person naming the facts (IP, ASN, app, counts, times), and `ips`
    are the addresses it implicates.
    """

    id: str
    weight: int
    detail: str
    ips: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Explanation:
    """A benign reason that covers one IP, with the fact that supports it."""

    ip: str
    kind: ExplanationKind
    detail: str


@dataclass(frozen=True, slots=True)
class Gap:
    """
    Evidence one table could not give, and what could not be evaluated without it.

    `what` says it for a person ("no rows between ... and ...", "columns DeviceDetail, SessionId
    absent"); `signals` and `explanations` name the rules and explanations it left unevaluated.
    """

    table: str
    what: str
    signals: tuple[str, ...] = ()
    explanations: tuple[ExplanationKind, ...] = ()

    def sentence(self) -> str:
        """'AADNonInteractiveUserSignInLogs: column(s) DeviceDetail absent; not evaluated: ...', for people."""
        return gap_sentence(self.table, self.what, [*self.signals, *self.explanations])


def gap_sentence(table: str, what: str, unevaluated: Sequence[str]) -> str:
    """One gap for people: the table, what it could not give, and the signals and explanations left unevaluated."""
    return f"{table}: {what}" + (f"; not evaluated: {', '.join(unevaluated)}" if unevaluated else "")


@dataclass(frozen=True, slots=True)
class Assessment:
    """
    The decision for one user: score 0-100, verdict, and the itemised reasons behind it.

    `gaps` lists the evidence that was missing; with any gap that could have changed the verdict the
    verdict is `INSUFFICIENT_EVIDENCE` rather than `BENIGN`.
    """

    score: int
    verdict: Verdict
    signals: tuple[Signal, ...]
    explanations: tuple[Explanation, ...]
    suspect_ips: tuple[str, ...]
    gaps: tuple[Gap, ...] = ()

    def strongest(self, n: int = 3) -> tuple[Signal, ...]:
        """The `n` heaviest signals, heaviest first (ties keep their stable order)."""
        return tuple(sorted(self.signals, key=lambda s: -s.weight)[:n])
