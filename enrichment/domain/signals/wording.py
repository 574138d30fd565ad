"""Small helpers for the detail sentences the rules write: counts, short listings, app names."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from enrichment.domain.model import SignIn
from enrichment.domain.picture import Picture


def count(n: int, noun: str) -> str:
    """'1 sign-in', '1,204 sign-ins'."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def listing(items: Sequence[str], limit: int = 3) -> str:
    """The first `limit` items joined, and how many more there are."""
    shown = list(items[:limit])
    more = len(items) - len(shown)
    text = ", ".join(shown)
    return text + (f" and {more} more" if more > 0 else "")


def ip_listing(p: Picture, ips: Iterable[str], limit: int = 3) -> str:
    """The first `limit` IPs (by address), each with what is known about its network, and how many more."""
    ordered = sorted(ips)
    return listing([p.label(ip) for ip in ordered[:limit]], limit) + (
        f" and {len(ordered) - limit} more" if len(ordered) > limit else ""
    )


def app_name(signin: SignIn) -> str:
    """The app as a person reads it: its name, else its id."""
    return signin.app or signin.app_id or "an unnamed app"


def addresses(groups: Iterable[Iterable[str]]) -> list[str]:
    """Every IP in groups of IPs (per app, per hour, ...), sorted, once each."""
    return sorted({ip for group in groups for ip in group})
