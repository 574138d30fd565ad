"""
The evidence vocabulary: frozen values that every layer speaks.

Rows from either engine are parsed once, at the edge (`enrichment.queries.rows`), into these values; after
that nothing walks dicts or knows a raw column name. Every string that came from a sign-in row is
attacker-controlled (user agent, app name, city, device name) and stays raw here: escaping is the
job of whoever renders it (HTML comment, card markdown, KQL literal).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class Table(StrEnum):
    """The two Entra ID sign-in tables; the value is the Log Analytics table name."""

    INTERACTIVE = "SigninLogs"
    NON_INTERACTIVE = "AADNonInteractiveUserSignInLogs"


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
    app_id: str = ""
    app: str = ""
    resource_id: str = ""
    resource: str = ""
    user_agent: str = ""
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
        return self.table is Table.INTERACTIVE

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


@dataclass(frozen=True, slots=True)
class QueryOutcome:
    """
    Rows from one query run, with what the engine said about their completeness.

    A Log Analytics partial result or a 204 is data, not an exception: the rows that did come back
    are kept and `warnings` says what is missing, so the incident comment can say it too.
    """

    rows: tuple[dict[str, object], ...]
    warnings: tuple[str, ...] = field(default=())


class Verdict(StrEnum):
    """How the product reads the evidence; thresholds come from settings."""

    REPLAY_LIKELY = "replay_likely"
    SUSPICIOUS = "suspicious"
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
    Verdict.REPLAY_LIKELY: ("token replay likely", "likely", 2),
    Verdict.SUSPICIOUS: ("suspicious", "suspicious", 1),
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
class Assessment:
    """The decision for one user: score 0-100, verdict, and the itemised reasons behind it."""

    score: int
    verdict: Verdict
    signals: tuple[Signal, ...]
    explanations: tuple[Explanation, ...]
    suspect_ips: tuple[str, ...]

    def strongest(self, n: int = 3) -> tuple[Signal, ...]:
        """The `n` heaviest signals, heaviest first (ties keep their stable order)."""
        return tuple(sorted(self.signals, key=lambda s: -s.weight)[:n])
