"""
Corroboration from Microsoft and from the directory: Identity Protection detections and security-info changes.

No explanation of the network waives these: they are Microsoft's own findings about the session
and the token, and changes to how the user signs in. The security-info rules are decided after
every other rule, because "from a suspect IP" means implicated by one of them.
"""

from __future__ import annotations

from collections import defaultdict

from common.times import utc_text
from enrichment.domain.model import Column, SecurityEvent, Signal
from enrichment.domain.picture import Picture
from enrichment.domain.signals.rule import AUDIT, NOTHING, Check, rule
from enrichment.domain.signals.wording import addresses, ip_listing, listing

_RISK_AITM = frozenset({"attackerinthemiddle"})
_RISK_TOKEN = frozenset({"anomaloustoken", "tokenissueranomaly", "attemptedprtaccess"})
_RISK_UNFAMILIAR = frozenset(
    {
        "unfamiliarfeatures",
        "anonymizedipaddress",
        "maliciousipaddress",
        "unlikelytravel",
        "mcasimpossibletravel",
        "suspiciousbrowser",
        "nationstateip",
        "riskyipaddress",
        "newcountry",
        "investigationsthreatintelligence",
    }
)
#: AuditLogs operations that add a way in: methods registered or changed, devices joined.
_REGISTRATIONS = ("registered", "register device", "changed default security info", "updated security info")


def _risk(p: Picture, check: Check, events: frozenset[str], what: str) -> Signal | None:
    found: dict[str, set[str]] = defaultdict(set)
    for s in p.risky:
        for event in s.risk_events:
            if event.lower() in events:
                found[event].add(s.ip)
    if not found:
        return None
    ips = addresses(found.values())
    detail = f"Identity Protection flagged {what}: {listing(sorted(found))} on sign-ins from {ip_listing(p, ips)}."
    return check.hit(detail, ips)


@rule(
    weight=30,
    covered_by=NOTHING,
    reads={Column.RISK_EVENTS},
    reason="Identity Protection linked the session to a reverse proxy (high precision)",
)
def risk_attacker_in_the_middle(p: Picture, check: Check) -> Signal | None:
    """Identity Protection's attackerinTheMiddle detection on the user's sign-ins."""
    return _risk(p, check, _RISK_AITM, "an attacker-in-the-middle session")


@rule(
    weight=20,
    covered_by=NOTHING,
    reads={Column.RISK_EVENTS},
    reason="Identity Protection found the token itself anomalous",
)
def risk_anomalous_token(p: Picture, check: Check) -> Signal | None:
    """Identity Protection's token detections (anomalousToken, tokenIssuerAnomaly, attemptedPrtAccess)."""
    return _risk(p, check, _RISK_TOKEN, "an anomalous token")


@rule(
    weight=10,
    covered_by=NOTHING,
    reads={Column.RISK_EVENTS},
    reason="Identity Protection found the sign-in unfamiliar or anonymous; noisy alone",
)
def risk_unfamiliar_sign_in(p: Picture, check: Check) -> Signal | None:
    """Identity Protection's sign-in detections (unfamiliar features, anonymous or malicious IP, travel)."""
    return _risk(p, check, _RISK_UNFAMILIAR, "unfamiliar or anonymous sign-ins")


def _registrations(p: Picture) -> list[SecurityEvent]:
    """Authentication methods or devices registered in the window (deletions are not a way in)."""
    return [
        e
        for e in p.evidence.security_events
        if any(word in e.operation.lower() for word in _REGISTRATIONS) and "delete" not in e.operation.lower()
    ]


@rule(
    weight=25,
    covered_by=NOTHING,
    reads=AUDIT,
    reason="persistence: methods or devices registered from an IP already implicated",
    after_others=True,
)
def security_info_from_suspect_ip(p: Picture, check: Check) -> Signal | None:
    """Methods or devices registered in the window from an IP the other signals implicate."""
    from_suspects = [e for e in _registrations(p) if e.actor_ip and e.actor_ip in check.suspects]
    if not from_suspects:
        return None
    ips = sorted({e.actor_ip for e in from_suspects})
    parts = [f"{e.operation} at {utc_text(e.time)}" + (f" ({e.detail})" if e.detail else "") for e in from_suspects]
    detail = f"{listing(parts)} from {ip_listing(p, ips)}, an IP other signals implicate."
    return check.hit(detail, ips)


@rule(
    weight=10,
    covered_by=NOTHING,
    reads=AUDIT,
    reason="methods or devices registered in the window; users do this too",
    after_others=True,
)
def security_info_changed(p: Picture, check: Check) -> Signal | None:
    """Methods or devices registered in the window, none from an implicated IP (that is the stronger rule above)."""
    events = _registrations(p)
    if not events or any(e.actor_ip and e.actor_ip in check.suspects for e in events):
        return None
    parts = [f"{e.operation} at {utc_text(e.time)}" + (f" from {e.actor_ip}" if e.actor_ip else "") for e in events]
    return check.hit(f"{listing(parts)}.")
