"""
Network novelty: token use from networks the user is not known on, at once, too far apart, or rented.

Every benign explanation of an IP (the organisation's networks, Microsoft's, the user's carrier, a
dual-stack sibling, a trip) says who is behind it, so each one covers these rules for that IP,
except the anonymizing network, for which only the organisation can vouch.
"""

from __future__ import annotations

import math
from datetime import timedelta
from operator import attrgetter

from common.times import utc_text
from enrichment.domain import networks
from enrichment.domain.model import Column, Signal
from enrichment.domain.picture import Picture
from enrichment.domain.signals.rule import EVERY_EXPLANATION, NETWORK, ORGANISATION, RELAY_OR_SSE, Check, rule
from enrichment.domain.signals.sweeps import concurrent_pairs, travel_jumps
from enrichment.domain.signals.wording import count, ip_listing, listing

CONCURRENCY_GAP = timedelta(minutes=10)  # two streams closer than this are "at the same time"
TRAVEL_SPEED_KMH = 900.0  # a commercial flight, gate to gate, is slower than this
TRAVEL_MIN_KM = 500.0  # geolocation of one network can be off by a few hundred km
TRAVEL_HORIZON = timedelta(hours=24)  # no two places on earth are further apart than this at that speed


@rule(
    weight=25,
    covered_by=EVERY_EXPLANATION,
    reads=NETWORK,
    reason="refreshing tokens where the user never signed in is what a stolen refresh token looks like",
)
def non_interactive_unknown_network(p: Picture, check: Check) -> Signal | None:
    """Token refreshes from an IP and AS where the user never signed in interactively (window + reference)."""
    interactive_ips = p.window_interactive_ips | p.reference.interactive_ips
    interactive_asns = p.window_interactive_asns | p.reference.interactive_asns
    found = []
    for ip, facts in p.ips.items():
        if facts.non_interactive == 0 or facts.familiar or ip in interactive_ips:
            continue
        if facts.asns & interactive_asns:
            continue
        if check.covers(ip):
            continue
        found.append(facts)
    if not found:
        return None
    found.sort(key=lambda f: (-f.non_interactive, f.ip))
    parts = [
        f"{count(f.non_interactive, 'non-interactive sign-in')} from {f.label()} ({utc_text(f.first)} to {utc_text(f.last)})"
        for f in found
    ]
    detail = (
        f"{listing(parts)}; the user never signed in interactively from these networks in the window or {p.reference.describe()}."
    )
    return check.hit(detail, (f.ip for f in found))


@rule(
    weight=25, covered_by=EVERY_EXPLANATION, reads=NETWORK, reason="one person does not refresh tokens from two networks at once"
)
def concurrent_streams(p: Picture, check: Check) -> Signal | None:
    """
    Non-interactive sign-ins from two ASes or countries at the same time (within `CONCURRENCY_GAP`).

    The unfamiliar, unexplained side of each pair (`sweeps.concurrent_pairs`) is implicated; two
    networks the user is known on (laptop at home, phone on the carrier) are ordinary.
    """
    if not check.uncovered(p.unfamiliar):
        return None  # only an unfamiliar, unexplained address is ever implicated: no sweep can find one
    pairs = concurrent_pairs(p.non_interactive, p.unfamiliar, CONCURRENCY_GAP)
    implicated: set[str] = set()
    partners: set[str] = set()
    for a, b in pairs:
        for ip, other in ((a, b), (b, a)):
            if ip in p.unfamiliar and not check.covers(ip):
                implicated.add(ip)
                partners.add(other)
    if not implicated:
        return None
    detail = (
        f"token refreshes from {ip_listing(p, implicated)} ran at the same time as refreshes from "
        f"{ip_listing(p, (partners - implicated) or partners)} (another AS or country, "
        f"within {int(CONCURRENCY_GAP.total_seconds() // 60)} minutes)."
    )
    return check.hit(detail, implicated)


@rule(weight=30, covered_by=EVERY_EXPLANATION, reads=NETWORK, reason="a person cannot cover that distance in that time")
def impossible_travel(p: Picture, check: Check) -> Signal | None:
    """Successful sign-ins from places too far apart for the time between them (`sweeps.travel_jumps`), explained IPs removed first."""
    explained = {ip for ip in p.ips if check.covers(ip)}
    worst = travel_jumps(
        (s for s in p.rows if s.ip not in explained),
        p.unfamiliar,
        speed_kmh=TRAVEL_SPEED_KMH,
        min_km=TRAVEL_MIN_KM,
        horizon=TRAVEL_HORIZON,
    )
    implicated = {owner for pair in worst for owner in pair if owner}
    if not implicated:
        return None
    ranked = sorted(worst.values(), key=lambda jump: (-jump.speed, jump.first_ip, jump.second_ip))
    sentences = []
    for speed, distance, hours, a, b in ranked:
        pace = "at the same time" if speed == math.inf else f"{hours * 60:.0f} minutes apart ({speed:,.0f} km/h)"
        sentences.append(f"{p.label(a)} and {p.label(b)}: {distance:,.0f} km {pace}")
    detail = f"successful sign-ins too far apart for the time between them: {listing(sentences)}."
    return check.hit(detail, implicated)


_ANONYMISING = frozenset({networks.NetworkKind.CONSUMER_VPN, networks.NetworkKind.HOSTING, networks.NetworkKind.PRIVACY_RELAY})


@rule(
    weight=15,
    covered_by=ORGANISATION | RELAY_OR_SSE,
    reads={Column.ASN},
    reason="replayed tokens are used from rented servers, commercial VPNs and relays; only the organisation, or the user's "
    "own device behind a relay, vouches for one",
)
def anonymizing_network(p: Picture, check: Check) -> Signal | None:
    """Sign-ins from a commercial VPN, a hosting provider or a privacy relay the user is not known on."""
    found = []
    for ip, facts in p.ips.items():
        kinds = {networks.network_kind(a) for a in facts.asns}
        if not kinds & _ANONYMISING:
            continue
        if facts.asns & p.reference.asns or check.covers(ip):
            continue
        found.append(facts)
    if not found:
        return None
    detail = (
        f"sign-ins from {listing([f.label() for f in sorted(found, key=attrgetter('ip'))])}: "
        "a commercial VPN, hosting provider or privacy relay, not a network the user or the organisation is known on."
    )
    return check.hit(detail, (f.ip for f in found))
