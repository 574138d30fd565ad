"""
Compact builders of evidence values for the scoring tests: a user with a home network and a baseline.

Names say what a value is for ("home", "attacker", "phone"), every default is a plausible fact about
one imaginary user, and each test overrides only what it is about. Addresses come from the
documentation ranges (RFC 5737 / RFC 3849) so nothing here names a real host.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from common.settings import Settings
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
    UserEvidence,
)

USER = "alice@contoso.example"
USER_ID = "0c7f6a1e-52a3-4d7e-9b55-1f0e9d3c2b10"
AT = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)

OUTLOOK_WEB = "9199bf20-a13f-4107-85dc-02114787ef48"
TEAMS_WEB = "5e3ce6c0-2b1f-4285-8d4b-75ee78787346"
AZURE_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0"
LAPTOP = "7d3e5b2a-0f41-4c8e-a1d2-6b9c0e4f8a71"

# Networks: (ip, asn, country, city, latitude, longitude)
HOME = ("198.51.100.10", 7922, "US", "Seattle", 47.61, -122.33)
HOME_V6 = ("2001:db8:7922::10", 7922, "US", "Seattle", 47.61, -122.33)
OFFICE = ("198.51.100.200", 7922, "US", "Seattle", 47.61, -122.33)
PHONE = ("192.0.2.77", 21928, "US", "Seattle", 47.61, -122.33)  # T-Mobile USA
ATTACKER = ("203.0.113.66", 14061, "NL", "Amsterdam", 52.37, 4.89)  # DigitalOcean
ATTACKER_2 = ("203.0.113.99", 64500, "NG", "Lagos", 6.45, 3.39)  # a network no table knows
NORDVPN = ("203.0.113.140", 136787, "DE", "Frankfurt", 50.11, 8.68)
HOTEL_FR = ("192.0.2.150", 3215, "FR", "Paris", 48.86, 2.35)  # Orange, on a trip to France
MICROSOFT = ("203.0.113.8", 8075, "US", "Quincy", 47.23, -119.85)


def signin(network: tuple[str, int, str, str, float, float] = HOME, minutes: float = 0, **fields: Any) -> SignIn:
    """One evidence row from `network`, `minutes` after `AT` (negative: before), as a browser on the laptop."""
    ip, asn, country, city, latitude, longitude = network
    first = AT + timedelta(minutes=minutes)
    values: dict[str, Any] = {
        "user": USER,
        "user_id": USER_ID,
        "table": Table.NON_INTERACTIVE,
        "first": first,
        "last": first + timedelta(minutes=5),
        "count": 3,
        "ip": ip,
        "asn": asn,
        "country": country,
        "city": city,
        "latitude": latitude,
        "longitude": longitude,
        "session_id": "session-home",
        "app_id": OUTLOOK_WEB,
        "app": "One Outlook Web",
        "resource": "Office 365 Exchange Online",
        "user_agent": FIREFOX,
        "auth_protocol": "none",
        "incoming_token_type": "refreshToken",
        "device_id": "",
    }
    values.update(fields)
    if "last" not in fields:
        values["last"] = values["first"] + timedelta(minutes=5)
    return SignIn(**values)


def interactive(network: tuple[str, int, str, str, float, float] = HOME, minutes: float = 0, **fields: Any) -> SignIn:
    """An interactive sign-in (a person at a browser), one event."""
    fields.setdefault("count", 1)
    fields.setdefault("incoming_token_type", "none")
    return signin(network, minutes, table=Table.INTERACTIVE, **fields)


def table_baseline(table: Table, **fields: Any) -> TableBaseline:
    """Fourteen ordinary days at home on the laptop, office hours, browser apps."""
    values: dict[str, Any] = {
        "table": table,
        "events": 1400 if table is Table.NON_INTERACTIVE else 40,
        "days_active": 14,
        "first": AT - timedelta(days=15),
        "last": AT - timedelta(days=1),
        "distinct_ips": 2,
        "ips": frozenset({HOME[0], OFFICE[0]}),
        "asns": frozenset({HOME[1]}),
        "countries": frozenset({"US"}),
        "app_ids": frozenset({OUTLOOK_WEB, TEAMS_WEB}),
        "resources": frozenset({"Office 365 Exchange Online", "Microsoft Teams Services"}),
        "user_agents": frozenset({FIREFOX}),
        "device_ids": frozenset(),
        "compliant_device_ids": frozenset(),
        "hours": frozenset(range(6, 21)),
        "auth_protocols": frozenset({"none"}),
    }
    values.update(fields)
    return TableBaseline(**values)


def baseline(*, daily: tuple[DailyActivity, ...] | None = None, **fields: Any) -> Baseline:
    """Both tables with the same known facts (`fields` override both), and quiet daily counts."""
    window = TimeWindow(AT - timedelta(days=15), AT - timedelta(days=1))
    days = daily
    if days is None:
        days = tuple(
            DailyActivity(
                day=window.start + timedelta(days=i),
                table=Table.NON_INTERACTIVE,
                events=100,
                distinct_ips=2,
                distinct_apps=4,
                distinct_asns=1,
            )
            for i in range(14)
        )
    return Baseline(
        window=window,
        interactive=table_baseline(Table.INTERACTIVE, **fields),
        non_interactive=table_baseline(Table.NON_INTERACTIVE, **fields),
        daily=days,
    )


NO_HISTORY = Baseline(window=TimeWindow(AT - timedelta(days=15), AT - timedelta(days=1)))


def evidence(
    *signins: SignIn,
    history: Baseline | None = None,
    travel: tuple[TravelRecord, ...] = (),
    security: tuple[SecurityEvent, ...] = (),
    at: datetime = AT,
) -> UserEvidence:
    """The evidence of the test user around `at`, with the default baseline unless one is given."""
    return UserEvidence(
        account=Account(USER, USER_ID),
        at=at,
        window=TimeWindow(at - timedelta(hours=24), at + timedelta(hours=6)),
        signins=tuple(signins),
        baseline=baseline() if history is None else history,
        security_events=security,
        travel=travel,
    )


def trip(country: str, start_days: int = -2, end_days: int = 3) -> TravelRecord:
    """A travel record for the test user, dates relative to `AT`."""
    return TravelRecord(
        user=USER,
        country=country,
        start=(AT + timedelta(days=start_days)).replace(hour=0, minute=0),
        end=AT + timedelta(days=end_days),
    )


def registered(minutes: float, actor_ip: str, operation: str = "User registered security info") -> SecurityEvent:
    return SecurityEvent(
        time=AT + timedelta(minutes=minutes),
        operation=operation,
        result="success",
        actor=USER,
        actor_ip=actor_ip,
        target=USER,
        detail="Authenticator app",
    )


def settings(**values: str) -> Settings:
    """Settings from app-setting names, e.g. `settings(REPLAY_VPN_CIDRS="198.18.0.0/24")`."""
    return Settings.from_values(values)


def ordinary_day() -> tuple[SignIn, ...]:
    """A normal day for the test user: interactive MFA in the morning, refreshes from home all day."""
    rows = [interactive(HOME, -300, session_id="session-home")]
    rows += [signin(HOME, -300 + 30 * i) for i in range(12)]
    return tuple(rows)


def moved(signin_value: SignIn, minutes: float) -> SignIn:
    """The same row, `minutes` later."""
    delta = timedelta(minutes=minutes)
    return replace(signin_value, first=signin_value.first + delta, last=signin_value.last + delta)
