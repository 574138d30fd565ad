"""
Times as the product reads and writes them: UTC always, ISO 8601 on the wire, minutes for people.

Every sign-in log is in UTC, so a time written without an offset is taken as UTC, never as the
machine's local time.
"""

from __future__ import annotations

from datetime import UTC, datetime


def parse_utc(text: str) -> datetime:
    """An ISO 8601 time ('Z' accepted; no offset means UTC) as an aware UTC datetime; ValueError if it is not one."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return as_utc(moment)


def as_utc(moment: datetime) -> datetime:
    """The same instant in UTC; a naive time is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso_z(moment: datetime) -> str:
    """ISO 8601 in UTC with a 'Z' ('2026-06-15T12:00:00Z'), the form every JSON field of ours uses."""
    return as_utc(moment).isoformat().replace("+00:00", "Z")


def utc_text(moment: datetime, *, seconds: bool = False) -> str:
    """A time for a person: '2026-06-15 12:00 UTC' (with seconds when asked)."""
    return as_utc(moment).strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")
