"""
Views derived from the evidence rows: the per-IP timeline and the per-session picture.

Pure functions over `SignIn` values; the scorer, the triage document and the incident comment all
read these, so the figures an analyst sees are the ones the score was computed from.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from enrichment.domain.model import SignIn, Table


@dataclass(frozen=True, slots=True)
class IpActivity:
    """Everything one IP did for one user inside the window."""

    ip: str
    first: datetime
    last: datetime
    interactive: int
    non_interactive: int
    failures: int
    asns: tuple[int, ...]
    countries: tuple[str, ...]
    cities: tuple[str, ...]
    apps: tuple[str, ...]
    resources: tuple[str, ...]
    user_agents: tuple[str, ...]
    device_ids: tuple[str, ...]
    session_ids: tuple[str, ...]

    @property
    def total(self) -> int:
        return self.interactive + self.non_interactive

    @property
    def asn(self) -> int | None:
        """The IP's ASN (an IP has one; the first is kept if rows disagree)."""
        return self.asns[0] if self.asns else None


@dataclass(frozen=True, slots=True)
class SessionActivity:
    """One Entra SessionId: which IPs, ASNs and tables used it, and when."""

    session_id: str
    first: datetime
    last: datetime
    ips: tuple[str, ...]
    asns: tuple[int, ...]
    countries: tuple[str, ...]
    tables: tuple[Table, ...]
    interactive_ips: tuple[str, ...]
    events: int


def _ordered(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({v for v in values if v}))


def ip_timeline(signins: Iterable[SignIn]) -> tuple[IpActivity, ...]:
    """Per-IP activity, ordered by first appearance."""
    groups: dict[str, list[SignIn]] = defaultdict(list)
    for signin in signins:
        groups[signin.ip].append(signin)
    activities = []
    for ip, rows in groups.items():
        activities.append(
            IpActivity(
                ip=ip,
                first=min(r.first for r in rows),
                last=max(r.last for r in rows),
                interactive=sum(r.count for r in rows if r.table is Table.INTERACTIVE),
                non_interactive=sum(r.count for r in rows if r.table is Table.NON_INTERACTIVE),
                failures=sum(r.count for r in rows if not r.succeeded),
                asns=tuple(sorted({r.asn for r in rows if r.asn is not None})),
                countries=_ordered(r.country for r in rows),
                cities=_ordered(r.city for r in rows),
                apps=_ordered(r.app or r.app_id for r in rows),
                resources=_ordered(r.resource or r.resource_id for r in rows),
                user_agents=_ordered(r.user_agent for r in rows),
                device_ids=_ordered(r.device_id for r in rows),
                session_ids=_ordered(r.session_id for r in rows),
            )
        )
    return tuple(sorted(activities, key=lambda a: (a.first, a.ip)))


def sessions(signins: Iterable[SignIn]) -> tuple[SessionActivity, ...]:
    """Per-SessionId activity (rows without a SessionId are left out), ordered by first use."""
    groups: dict[str, list[SignIn]] = defaultdict(list)
    for signin in signins:
        if signin.session_id:
            groups[signin.session_id].append(signin)
    result = []
    for session_id, rows in groups.items():
        result.append(
            SessionActivity(
                session_id=session_id,
                first=min(r.first for r in rows),
                last=max(r.last for r in rows),
                ips=_ordered(r.ip for r in rows),
                asns=tuple(sorted({r.asn for r in rows if r.asn is not None})),
                countries=_ordered(r.country for r in rows),
                tables=tuple(sorted({r.table for r in rows}, key=lambda t: t.value)),
                interactive_ips=_ordered(r.ip for r in rows if r.table is Table.INTERACTIVE),
                events=sum(r.count for r in rows),
            )
        )
    return tuple(sorted(result, key=lambda s: (s.first, s.session_id)))
