"""
What happened, before it is written as a log row: sign-ins and directory changes of one user.

Times are integer milliseconds since the epoch (UTC): the simulation adds and compares millions of
them, and a row is formatted once, when it is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sample_tenant.catalog import App, Resource
from sample_tenant.tenant import Device, Egress

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR


class Role(StrEnum):
    """Whose action a row records; ground truth is computed from it, the rows never show it."""

    USER = "user"
    ATTACKER = "attacker"


class Auth(StrEnum):
    """How a sign-in was authenticated, which decides AuthenticationDetails, MfaDetail and Status."""

    MFA = "mfa"  # password, then an Authenticator push
    PASSWORDLESS = "passwordless"  # Windows Hello for Business
    SSO = "sso"  # interactive, both factors satisfied by claims in the token
    CLAIM = "claim"  # non-interactive refresh, MFA satisfied by claim in the token
    CLAIM_SINGLE_FACTOR = "claim_single_factor"  # non-interactive, resource does not need MFA
    WRONG_CREDENTIALS = "wrong_credentials"  # a mistyped password (50126)
    INTERRUPTED = "interrupted"  # an interrupt (50074, 50140, 50199...) the client resolves next
    BLOCKED = "blocked"  # a Conditional Access block (53003)


@dataclass(slots=True)
class SignIn:
    """One sign-in event (a row in SigninLogs when interactive, else in AADNonInteractiveUserSignInLogs)."""

    time: int
    interactive: bool
    egress: Egress
    session_id: str
    app: App
    resource: Resource
    device: Device
    user_agent: str
    client_app: str
    auth: Auth
    result: str = "0"
    protocol: str = "none"
    incoming: str = "none"
    binding: str = "unbound"
    risk_level: str = "none"
    risk_events: tuple[str, ...] = ()
    role: Role = Role.USER


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a directory change: a user (UPN, id, address) or, when `app` is set, a service."""

    upn: str = ""
    user_id: str = ""
    ip: str = ""
    app: str = ""
    app_id: str = ""


@dataclass(frozen=True, slots=True)
class Target:
    """What a directory change was made to."""

    kind: str  # "User", "Device", "Group"
    target_id: str
    name: str
    upn: str = ""


@dataclass(slots=True)
class AuditEvent:
    """One AuditLogs row."""

    time: int
    operation: str
    category: str
    service: str
    operation_type: str
    actor: Actor
    targets: tuple[Target, ...]
    result_reason: str = ""
    details: tuple[tuple[str, str], ...] = ()
    role: Role = Role.USER


def to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime."""
    return int(moment.astimezone(UTC).timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    """The aware UTC datetime of a millisecond timestamp."""
    return datetime.fromtimestamp(ms / 1000, UTC)


_DAY_TEXT: dict[int, str] = {}


def iso(ms: int) -> str:
    """ISO 8601 UTC with milliseconds and Z, as the Log Analytics query API writes datetimes."""
    day, rest = divmod(ms, DAY)
    text = _DAY_TEXT.get(day)
    if text is None:
        text = from_ms(day * DAY).strftime("%Y-%m-%d")
        _DAY_TEXT[day] = text
    seconds, millis = divmod(rest, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{text}T{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}Z"
