"""
Habits: when and how much the user signs in, against the baseline days.

Both need real history (`HOURS_MIN_DAYS`, `VOLUME_MIN_DAYS`): a user's first days say nothing about
their usual hours or volume.
"""

from __future__ import annotations

from collections import defaultdict

from enrichment.domain.model import Column, Signal, Table
from enrichment.domain.picture import Picture, ReferenceSource
from enrichment.domain.signals.rule import NETWORK, NOTHING, TRAVEL, Check, rule
from enrichment.domain.signals.wording import addresses, ip_listing

HOURS_MIN_DAYS = 5  # days of history before "never active at this hour" means anything
VOLUME_MIN_DAYS = 5  # days of history before a daily volume is "usual"
VOLUME_FACTOR = 3.0
VOLUME_MIN_EXTRA = 50
APPS_FACTOR = 2.0
APPS_MIN_EXTRA = 5


@rule(
    weight=8,
    covered_by=TRAVEL,
    reads=NETWORK,
    reason="activity at hours the user is never active; travel shifts hours",
)
def unusual_hours(p: Picture, check: Check) -> Signal | None:
    """
    Sign-ins from a new network at UTC hours the user was never active in `HOURS_MIN_DAYS`+ days of history.

    The user's own networks at 2 a.m. are the user awake; a replay run from another time zone shows
    up as odd hours on the attacker's network.
    """
    ref = p.reference
    if ref.source is not ReferenceSource.BASELINE or ref.hours is None or ref.days < HOURS_MIN_DAYS or len(ref.hours) >= 24:
        return None
    candidates = check.uncovered(p.unfamiliar)
    found: dict[int, set[str]] = defaultdict(set)
    for s in p.rows_from(candidates):
        if s.first.hour not in ref.hours:
            found[s.first.hour].add(s.ip)
    if not found:
        return None
    ips = addresses(found.values())
    hours = ", ".join(f"{h:02d}:00" for h in sorted(found))
    detail = f"activity at {hours} UTC from {ip_listing(p, ips)}; the user was never active at these hours in {ref.describe()}."
    return check.hit(detail, ips)


@rule(
    weight=10,
    covered_by=NOTHING,
    reads={Column.APP_ID},
    reason="token harvesting multiplies refreshes and apps against the user's usual day",
)
def volume_jump(p: Picture, check: Check) -> Signal | None:
    """Non-interactive volume or distinct apps per day far above the user's busiest baseline day."""
    daily = [d for d in p.evidence.baseline.daily if d.table is Table.NON_INTERACTIVE]
    if len(daily) < VOLUME_MIN_DAYS:
        return None
    window = p.evidence.window
    days = max((window.end - window.start).total_seconds() / 86400, 1 / 24)
    rows = p.non_interactive
    rate = sum(s.count for s in rows) / days
    apps = len({s.app_id or s.app for s in rows})
    busiest = max(d.events for d in daily)
    widest = max(d.distinct_apps for d in daily)
    parts = []
    if rate > VOLUME_FACTOR * busiest and rate - busiest >= VOLUME_MIN_EXTRA:
        parts.append(f"{rate:,.0f} non-interactive sign-ins a day against at most {busiest:,} on any baseline day")
    if apps > APPS_FACTOR * widest and apps - widest >= APPS_MIN_EXTRA:
        parts.append(f"{apps} distinct apps against at most {widest} on any baseline day")
    if not parts:
        return None
    return check.hit("; ".join(parts) + ".")
