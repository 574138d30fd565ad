"""
The replay indicators: one small pure function per signal over the user's picture.

A signal is like a detection rule's hit: a stable id, the points it adds (from `CATALOGUE`, the one
table of weights), a sentence naming the facts, and the IPs it implicates. Signals read a `Picture`
built once per user (the evidence rows grouped and the user's *reference*: what is known about them),
and a `Cover` saying which IPs benign explanations cover for which signals, so an explained IP is
never called suspect by a signal its explanation accounts for, and nothing else is waived.

The picture and the reference are `enrichment.domain.picture`'s. Without any reference the signals that need
one ("new for the user") stay silent rather than call everything new.

Everything here is pure: no clock (the incident time is `evidence.at`), no I/O, no settings beyond
what is passed in. Costs stay O(n log n) in the number of rows: sweeps over time-sorted rows, groups
by IP and by session, never pairs of rows.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import attrgetter

from enrichment.domain import networks
from enrichment.domain.model import Explanation, ExplanationKind, Signal, SignIn, Table
from enrichment.domain.picture import Picture, ReferenceSource, utc_text

# ----------------------------------------------------------------------------------------------------
# The one table of weights
# ----------------------------------------------------------------------------------------------------

_ALL = frozenset(ExplanationKind)
#: Explanations by which the organisation itself vouches for the traffic: its networks, its VPN, the
#: ASNs and named locations it trusts, its managed device. They say who is behind the IP, not only where.
_ORGANISATION = frozenset(
    {
        ExplanationKind.CORPORATE_NETWORK,
        ExplanationKind.CORPORATE_VPN,
        ExplanationKind.TRUSTED_ASN,
        ExplanationKind.NAMED_LOCATION,
        ExplanationKind.DEVICE_CONTINUITY,
    }
)
_NOTHING: frozenset[ExplanationKind] = frozenset()
#: A Microsoft service acting for the user has no device, binds no session and calls services the
#: user never opened: the explanation accounts for exactly those absences.
_SERVICE = frozenset({ExplanationKind.MICROSOFT_NETWORK})


@dataclass(frozen=True, slots=True)
class Spec:
    """A signal's weight, the explanations that can cover it for an IP, and why it weighs what it does."""

    weight: int
    covered_by: frozenset[ExplanationKind]
    reason: str


#: Signal id -> weight, what explains it away, and the reason. The order is the order signals are reported in.
CATALOGUE: Mapping[str, Spec] = {
    # Network novelty: every benign explanation of the IP covers these.
    "session_ip_switch": Spec(35, _ALL, "one Entra session used from another AS is the token itself moving to a new network"),
    "session_left_device": Spec(
        30,
        _ORGANISATION | _SERVICE,
        "a session issued to the user's own device, used with no device from another address, is the token lifted off it",
    ),
    "session_browser_switch": Spec(
        30,
        _ORGANISATION,
        "a browser session cookie moves to another browser only when it is copied: the AiTM or stolen-cookie replay",
    ),
    "non_interactive_unknown_network": Spec(
        25, _ALL, "refreshing tokens where the user never signed in is what a stolen refresh token looks like"
    ),
    "concurrent_streams": Spec(25, _ALL, "one person does not refresh tokens from two networks at once"),
    "impossible_travel": Spec(30, _ALL, "a person cannot cover that distance in that time"),
    "anonymizing_network": Spec(
        15,
        _ORGANISATION,
        "replayed tokens are used from rented servers and commercial VPNs; only the organisation can vouch for one",
    ),
    # Token, client and device evidence: explanations of the network do not explain these. Only the
    # organisation's own network or device vouches for a token-only sign-in's context, and only a
    # Microsoft service explains the absence of a device, a binding or a familiar app.
    "token_only_new_context": Spec(
        30, _ORGANISATION, "an MFA claim carried in from elsewhere, on a new network and device, is the AiTM cookie replay"
    ),
    "device_code_flow": Spec(25, _NOTHING, "device-code phishing hands the attacker tokens; few users ever use the flow"),
    "prt_unknown_device": Spec(20, _NOTHING, "a primary refresh token from a device the user never had is a planted device"),
    "scripted_client": Spec(20, _NOTHING, "people use browsers and Office apps; token replay tools are scripts"),
    "public_client_new_network": Spec(
        15, _NOTHING, "first-party public clients (CLI, PowerShell, Graph Explorer) accept stolen family refresh tokens"
    ),
    "unmanaged_device": Spec(12, _SERVICE, "a user who always works on compliant devices suddenly appears without one"),
    "unbound_session_new_network": Spec(5, _SERVICE, "an unbound session can be lifted and replayed; weak on its own"),
    "new_app": Spec(8, _SERVICE, "attackers browse what the user never opens; weak, users try new apps too"),
    "unusual_hours": Spec(
        8, frozenset({ExplanationKind.TRAVEL}), "activity at hours the user is never active; travel shifts hours"
    ),
    "volume_jump": Spec(10, _NOTHING, "token harvesting multiplies refreshes and apps against the user's usual day"),
    # Corroboration from Microsoft and from the directory.
    "risk_attacker_in_the_middle": Spec(
        30, _NOTHING, "Identity Protection linked the session to a reverse proxy (high precision)"
    ),
    "risk_anomalous_token": Spec(20, _NOTHING, "Identity Protection found the token itself anomalous"),
    "risk_unfamiliar_sign_in": Spec(10, _NOTHING, "Identity Protection found the sign-in unfamiliar or anonymous; noisy alone"),
    "security_info_from_suspect_ip": Spec(
        25, _NOTHING, "persistence: methods or devices registered from an IP already implicated"
    ),
    "security_info_changed": Spec(10, _NOTHING, "methods or devices registered in the window; users do this too"),
    # What the suspect sessions did (enrichment.domain.activity_signals): acts, not networks, so nothing explains them away.
    "inbox_rule_hides_mail": Spec(
        30, _NOTHING, "an inbox rule that moves or deletes mail, made from a stolen session, hides the attacker's conversation"
    ),
    "mail_forwarded_outside": Spec(
        35, _NOTHING, "forwarding to another domain from a stolen session exfiltrates every new message"
    ),
    "mass_mail_access_scripted": Spec(
        25, _NOTHING, "people read mail in a client; a script reading the mailbox in bulk is collection"
    ),
    "consent_to_unknown_app": Spec(
        30, _NOTHING, "consent to an application from a stolen session gives the attacker access that outlives it"
    ),
}

#: Signal id -> points, the view most callers need.
WEIGHTS: Mapping[str, int] = {name: spec.weight for name, spec in CATALOGUE.items()}

# Thresholds, named where they matter.
CONCURRENCY_GAP = timedelta(minutes=10)  # two streams closer than this are "at the same time"
TRAVEL_SPEED_KMH = 900.0  # a commercial flight, gate to gate, is slower than this
TRAVEL_MIN_KM = 500.0  # geolocation of one network can be off by a few hundred km
TRAVEL_HORIZON = timedelta(hours=24)  # no two places on earth are further apart than this at that speed
HOURS_MIN_DAYS = 5  # days of history before "never active at this hour" means anything
VOLUME_MIN_DAYS = 5  # days of history before a daily volume is "usual"
VOLUME_FACTOR = 3.0
VOLUME_MIN_EXTRA = 50
APPS_FACTOR = 2.0
APPS_MIN_EXTRA = 5

_DEVICE_CODE = "devicecode"
_PRT = "primaryrefreshtoken"
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


# ----------------------------------------------------------------------------------------------------
# Which explanation covers which signal for which IP
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cover:
    """The explanations found per IP, asked per signal: an explanation covers what it explains and no more."""

    kinds: Mapping[str, frozenset[ExplanationKind]] = field(default_factory=dict)

    @classmethod
    def of(cls, explanations: Iterable[Explanation]) -> Cover:
        found: dict[str, set[ExplanationKind]] = defaultdict(set)
        for explanation in explanations:
            found[explanation.ip].add(explanation.kind)
        return cls({ip: frozenset(kinds) for ip, kinds in found.items()})

    def covers(self, signal_id: str, ip: str) -> bool:
        return bool(self.kinds.get(ip, frozenset()) & CATALOGUE[signal_id].covered_by)

    def explained(self, ip: str) -> bool:
        return bool(self.kinds.get(ip))


# ----------------------------------------------------------------------------------------------------
# Formatting helpers for the detail sentences
# ----------------------------------------------------------------------------------------------------


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _listing(items: Sequence[str], limit: int = 3) -> str:
    shown = list(items[:limit])
    more = len(items) - len(shown)
    text = ", ".join(shown)
    return text + (f" and {more} more" if more > 0 else "")


def _signal(signal_id: str, detail: str, ips: Iterable[str] = ()) -> Signal:
    return Signal(signal_id, CATALOGUE[signal_id].weight, detail, tuple(sorted(set(ips))))


def _labels(p: Picture, ips: Iterable[str]) -> list[str]:
    return [p.ips[ip].label() if ip in p.ips else ip for ip in sorted(ips)]


def _app_name(signin: SignIn) -> str:
    return signin.app or signin.app_id or "an unnamed app"


def _uncovered_unfamiliar(p: Picture, cover: Cover, signal_id: str) -> frozenset[str]:
    """The unfamiliar IPs whose explanations (if any) do not cover `signal_id`."""
    return frozenset(ip for ip in p.unfamiliar if not cover.covers(signal_id, ip))


def _managed_device(p: Picture, signin: SignIn) -> bool:
    """The sign-in came from the user's own device or one Entra reports compliant: not a token lifted off it."""
    return bool(signin.device_id) and (signin.device_id in p.reference.device_ids or signin.is_compliant is True)


def _new_device(p: Picture, signin: SignIn) -> bool:
    return not signin.device_id or signin.device_id not in p.reference.device_ids


# ----------------------------------------------------------------------------------------------------
# Network novelty
# ----------------------------------------------------------------------------------------------------


def session_ip_switch(p: Picture, cover: Cover) -> Signal | None:
    """
    One SessionId used from more than one AS: the unfamiliar IPs in it are where the token went.

    Grouped by session, so the cost is linear. The IPs the user is known on are the session's owner
    side and are never implicated; sessions that stay inside one AS are roaming, not replay.
    """
    asns_by_session: dict[str, set[int]] = defaultdict(set)
    ips_by_session: dict[str, set[str]] = defaultdict(set)
    for s in p.rows:
        if s.session_id:
            ips_by_session[s.session_id].add(s.ip)
            if s.asn is not None:
                asns_by_session[s.session_id].add(s.asn)
    implicated: set[str] = set()
    sessions = 0
    for session_id, asns in asns_by_session.items():
        if len(asns) < 2:
            continue
        moved = {ip for ip in ips_by_session[session_id] if not p.familiar(ip) and not cover.covers("session_ip_switch", ip)}
        if moved:
            implicated |= moved
            sessions += 1
    if not implicated:
        return None
    owners = sorted({ip for sid, ips in ips_by_session.items() if len(asns_by_session[sid]) > 1 for ip in ips} - implicated)
    detail = (
        f"{_count(sessions, 'Entra session')} used from more than one AS; new network(s) "
        f"{_listing(_labels(p, implicated))}"
        + (f" joined a session also used from {_listing(_labels(p, owners))}" if owners else "")
        + "."
    )
    return _signal("session_ip_switch", detail, implicated)


def session_left_device(p: Picture, cover: Cover) -> Signal | None:
    """A session of the user's own device used with no device from other addresses (see `_lifted_sessions`)."""
    implicated = {ip for ips in p.lifted.values() for ip in ips if not cover.covers("session_left_device", ip)}
    if not implicated:
        return None
    sessions = sum(1 for ips in p.lifted.values() if ips & implicated)
    agents = sorted({s.user_agent for s in p.rows if s.ip in implicated and not s.device_id and s.user_agent})
    detail = (
        f"{_count(sessions, 'Entra session')} of the user's own device used with no device from "
        f"{_listing(_labels(p, implicated))}" + (f" (client {_listing(agents, 2)})" if agents else "") + "."
    )
    return _signal("session_left_device", detail, implicated)


#: Web browsers as Entra names them in DeviceDetail.browser ("Edge 137.0.3296", "Mobile Safari"), longest
#: first so "mobile safari" is not read as "safari". Native clients ("Rich Client 5.2", "Python Requests
#: 2.32", "IE 7.0" for PowerShell) share a device's session with its browser, so only web browsers say
#: which browser a session cookie lives in.
_WEB_BROWSERS = ("samsung browser", "mobile safari", "firefox", "vivaldi", "chrome", "safari", "opera", "brave", "edge")
#: Operating-system prefixes -> family: "Windows10" and "Windows" are one system.
_SYSTEMS: tuple[tuple[str, str], ...] = (
    ("windows", "windows"),
    ("macos", "macos"),
    ("mac os", "macos"),
    ("ios", "ios"),
    ("android", "android"),
    ("linux", "linux"),
    ("chrome os", "chrome os"),
)


def browser_family(signin: SignIn) -> tuple[str, str] | None:
    """
    (operating system, web browser) of a sign-in, versions dropped; None for native clients and services.

    "Windows10" and "Windows" are one system, and "Edge 137" and "Edge 138" one browser: an update in
    the middle of a session is not a new browser.
    """
    return _family(signin.operating_system, signin.browser)


def _family(operating_system: str, browser: str) -> tuple[str, str] | None:
    """`browser_family` on the two DeviceDetail fields, so callers can cache it per distinct pair."""
    name = browser.strip().lower()
    found = next((b for b in _WEB_BROWSERS if name.startswith(b)), None)
    if found is None:
        return None
    system = operating_system.strip().lower()
    return next((family for prefix, family in _SYSTEMS if system.startswith(prefix)), system), found


def session_browser_switch(p: Picture, cover: Cover) -> Signal | None:
    """
    One session opened in one web browser and later used by another, without any of the user's devices.

    A session cookie lives in the browser it was issued to; the same SessionId in another browser or
    operating system is the cookie copied (the AiTM proxy logs the victim's browser, the replay the
    attacker's). Sign-ins carrying the user's own device are left out (one Windows device's browsers
    can share its primary refresh token's session), and so are addresses where the session's own
    browser was also seen. One pass, grouped by session.
    """
    families: dict[tuple[str, str], tuple[str, str] | None] = {}  # few distinct clients, many rows
    opened: dict[str, tuple[datetime, tuple[str, str], str]] = {}
    used: dict[str, list[tuple[tuple[str, str], SignIn]]] = defaultdict(list)
    for s in p.rows:
        if not s.session_id or not s.browser:
            continue
        key = (s.operating_system, s.browser)
        if key not in families:
            families[key] = _family(*key)
        family = families[key]
        if family is None:
            continue
        used[s.session_id].append((family, s))
        first = opened.get(s.session_id)
        if first is None or (s.first, family, s.ip) < first:
            opened[s.session_id] = (s.first, family, s.ip)
    implicated: set[str] = set()
    switches: set[tuple[tuple[str, str], tuple[str, str]]] = set()
    for session_id, rows in used.items():
        _, owner, _ = opened[session_id]
        owner_ips = {s.ip for family, s in rows if family == owner}
        for family, s in rows:
            if family == owner or s.ip in owner_ips or _managed_device(p, s):
                continue
            if cover.covers("session_browser_switch", s.ip):
                continue
            implicated.add(s.ip)
            switches.add((owner, family))
    if not implicated:
        return None
    moves = [
        f"{a[1].title()} on {a[0] or 'an unknown system'} to {b[1].title()} on {b[0] or 'an unknown system'}"
        for a, b in sorted(switches)
    ]
    detail = (
        f"an Entra session moved from {_listing(moves, 2)}: the second browser, with none of the user's devices, used it "
        f"from {_listing(_labels(p, implicated))}."
    )
    return _signal("session_browser_switch", detail, implicated)


def non_interactive_unknown_network(p: Picture, cover: Cover) -> Signal | None:
    """Token refreshes from an IP and AS where the user never signed in interactively (window + reference)."""
    interactive_ips = p.window_interactive_ips | p.reference.interactive_ips
    interactive_asns = p.window_interactive_asns | p.reference.interactive_asns
    found = []
    for ip, facts in p.ips.items():
        if facts.non_interactive == 0 or facts.familiar or ip in interactive_ips:
            continue
        if facts.asns & interactive_asns:
            continue
        if cover.covers("non_interactive_unknown_network", ip):
            continue
        found.append(facts)
    if not found:
        return None
    found.sort(key=lambda f: (-f.non_interactive, f.ip))
    parts = [
        f"{_count(f.non_interactive, 'non-interactive sign-in')} from {f.label()} ({utc_text(f.first)} to {utc_text(f.last)})"
        for f in found
    ]
    detail = (
        f"{_listing(parts)}; the user never signed in interactively from these networks "
        f"in the window or {p.reference.describe()}."
    )
    return _signal("non_interactive_unknown_network", detail, (f.ip for f in found))


def _activity(rows: Iterable[SignIn], unfamiliar: frozenset[str]) -> list[tuple[datetime, datetime, str, int | None, str, str]]:
    """
    Activity as merged time intervals per stream, sorted by start: (start, end, owner, AS, country, example IP).

    A stream is one unfamiliar IP, or all the user's known addresses of one AS and country together
    (owner ""): a phone churning through carrier addresses is one stream, not thousands. Two rows are
    within a gap of each other exactly when the merged intervals holding them are, so sweeping
    intervals gives the same pairs as sweeping rows, for a fraction of the work.
    """
    by_stream: dict[tuple[str, int | None, str], list[tuple[datetime, datetime, str]]] = defaultdict(list)
    for s in rows:
        owner = s.ip if s.ip in unfamiliar else ""
        by_stream[(owner, s.asn, s.country)].append((s.first, s.last, s.ip))
    merged: list[tuple[datetime, datetime, str, int | None, str, str]] = []
    for (owner, asn, country), spans in by_stream.items():
        spans.sort()
        start, end, example = spans[0]
        for first, last, ip in spans[1:]:
            if first <= end:
                end = max(end, last)
            else:
                merged.append((start, end, owner, asn, country, example))
                start, end, example = first, last, ip
        merged.append((start, end, owner, asn, country, example))
    merged.sort(key=lambda item: (item[0], item[2], item[5]))
    return merged


def concurrent_streams(p: Picture, cover: Cover) -> Signal | None:
    """
    Non-interactive sign-ins from two ASes or countries at the same time (within `CONCURRENCY_GAP`).

    A sweep over each stream's merged activity, sorted by start, keeps the streams still active (a
    heap of end times); only those are compared, so the cost is O(n log n) plus the (small) number
    of simultaneous streams. The unfamiliar, unexplained side of each pair is implicated; two
    networks the user is known on (laptop at home, phone on the carrier) are ordinary.
    """
    intervals = _activity((s for s in p.rows if s.table is Table.NON_INTERACTIVE), p.unfamiliar)
    active: dict[tuple[str, int | None, str], tuple[datetime, str]] = {}
    expiry: list[tuple[datetime, tuple[str, int | None, str]]] = []
    pairs: set[tuple[str, str]] = set()
    for first, last, owner, asn, country, example in intervals:
        horizon = first - CONCURRENCY_GAP
        while expiry and expiry[0][0] < horizon:
            end, key = heapq.heappop(expiry)
            if key in active and active[key][0] == end:
                del active[key]
        for (other, other_asn, other_country), (_, other_example) in active.items():
            if (other == owner and owner) or (not other and not owner):
                continue  # the same unfamiliar IP, or two networks the user is known on
            if (asn is not None and other_asn is not None and asn != other_asn) or (
                country and other_country and country != other_country
            ):
                me, them = owner or example, other or other_example
                pairs.add((min(me, them), max(me, them)))
        key = (owner, asn, country)
        previous = active.get(key)
        end = max(previous[0], last) if previous else last
        active[key] = (end, previous[1] if previous else example)
        heapq.heappush(expiry, (end, key))
    implicated: set[str] = set()
    partners: set[str] = set()
    for a, b in pairs:
        for ip, other in ((a, b), (b, a)):
            if ip in p.unfamiliar and not cover.covers("concurrent_streams", ip):
                implicated.add(ip)
                partners.add(other)
    if not implicated:
        return None
    detail = (
        f"token refreshes from {_listing(_labels(p, implicated))} ran at the same time as refreshes from "
        f"{_listing(_labels(p, partners - implicated) or _labels(p, partners))} (another AS or country, "
        f"within {int(CONCURRENCY_GAP.total_seconds() // 60)} minutes)."
    )
    return _signal("concurrent_streams", detail, implicated)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km on a spherical earth (radius 6371 km)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))


def impossible_travel(p: Picture, cover: Cover) -> Signal | None:
    """
    Successful sign-ins from places too far apart for the time between them, explained IPs removed first.

    Rows are swept in time order. Each place (coordinates rounded to ~10 km) remembers when it was
    last seen, separately for every unfamiliar IP and once for all the user's known networks
    together (a phone churning through thousands of carrier addresses stays one entry). A sign-in is
    compared with every place seen in the last `TRAVEL_HORIZON`; places are few, so this is
    O(n log n). A later sign-in at a place only makes a jump harder, so an added row can reveal a
    jump but never hide one.
    """
    explained = {ip for ip in p.ips if cover.covers("impossible_travel", ip)}
    located = sorted(
        (s for s in p.rows if s.latitude is not None and s.longitude is not None and s.ip not in explained),
        key=attrgetter("first"),
    )
    known = ""  # the owner of every place entry made by a network the user is known on
    places: dict[tuple[tuple[float, float], str], tuple[datetime, float, float, str]] = {}
    expiry: list[tuple[datetime, tuple[tuple[float, float], str]]] = []
    worst: dict[tuple[str, str], tuple[float, float, float, str, str]] = {}
    for s in located:
        lat, lon = s.latitude, s.longitude
        assert lat is not None  # filtered above; narrows the type
        assert lon is not None
        owner = s.ip if s.ip in p.unfamiliar else known
        place = ((round(lat, 1), round(lon, 1)), owner)
        while expiry and expiry[0][0] < s.first - TRAVEL_HORIZON:
            last, key = heapq.heappop(expiry)
            if key in places and places[key][0] == last:
                del places[key]
        for (cell, other), (last, plat, plon, shown) in places.items():
            if cell == place[0] or (other == owner and owner != known) or (other == known and owner == known):
                continue
            distance = haversine_km(plat, plon, lat, lon)
            if distance < TRAVEL_MIN_KM:
                continue
            hours = max((s.first - last).total_seconds(), 0.0) / 3600
            speed = math.inf if hours == 0 else distance / hours
            if speed > TRAVEL_SPEED_KMH:
                pair = (min(other, owner), max(other, owner))
                first_ip, second_ip = sorted((shown, s.ip))
                candidate = (speed, distance, hours, first_ip, second_ip)
                if pair not in worst or candidate > worst[pair]:
                    worst[pair] = candidate
        seen = places.get(place)
        if seen is None or (s.last, s.ip) > (seen[0], seen[3]):
            places[place] = (s.last, lat, lon, s.ip)
            heapq.heappush(expiry, (s.last, place))
    implicated = {owner for pair in worst for owner in pair if owner != known}
    if not implicated:
        return None
    ranked = sorted(worst.values(), key=lambda item: (-item[0], item[3], item[4]))
    sentences = []
    for speed, distance, hours, a, b in ranked:
        pace = "at the same time" if speed == math.inf else f"{hours * 60:.0f} minutes apart ({speed:,.0f} km/h)"
        sentences.append(f"{_labels(p, [a])[0]} and {_labels(p, [b])[0]}: {distance:,.0f} km {pace}")
    detail = f"successful sign-ins too far apart for the time between them: {_listing(sentences)}."
    return _signal("impossible_travel", detail, implicated)


def anonymizing_network(p: Picture, cover: Cover) -> Signal | None:
    """Sign-ins from a commercial VPN or a hosting provider the user is not known on."""
    found = []
    for ip, facts in p.ips.items():
        kinds = {networks.network_kind(a) for a in facts.asns}
        if not kinds & {networks.NetworkKind.CONSUMER_VPN, networks.NetworkKind.HOSTING}:
            continue
        if facts.asns & p.reference.asns or cover.covers("anonymizing_network", ip):
            continue
        found.append(facts)
    if not found:
        return None
    detail = (
        f"sign-ins from {_listing([f.label() for f in sorted(found, key=attrgetter('ip'))])}: "
        "a commercial VPN or hosting provider, not a network the user or the organisation is known on."
    )
    return _signal("anonymizing_network", detail, (f.ip for f in found))


# ----------------------------------------------------------------------------------------------------
# Token, client and device evidence
# ----------------------------------------------------------------------------------------------------


def token_only_new_context(p: Picture, cover: Cover) -> Signal | None:
    """
    An interactive sign-in satisfied only by a claim in a token, from a new network and device.

    "MFA requirement satisfied by claim in the token" on its own is ordinary single sign-on; it is
    the AiTM cookie replay only when the claim arrives somewhere the user has never been, on a device
    the user never had.
    """
    if not p.reference.known:
        return None
    rows = [
        s
        for s in p.rows
        if s.table is Table.INTERACTIVE
        and s.token_only
        and s.ip in p.unfamiliar
        and _new_device(p, s)
        and not cover.covers("token_only_new_context", s.ip)
    ]
    if not rows:
        return None
    ips = sorted({s.ip for s in rows})
    apps = sorted({_app_name(s) for s in rows})
    detail = (
        f"{_count(sum(s.count for s in rows), 'interactive sign-in')} to {_listing(apps)} passed MFA only by a claim "
        f"carried in an existing token, from {_listing(_labels(p, ips))}: a network and device not in "
        f"{p.reference.describe()}."
    )
    return _signal("token_only_new_context", detail, ips)


def device_code_flow(p: Picture, cover: Cover) -> Signal | None:
    """Device-code authentication, when the user's reference never shows the flow."""
    if _DEVICE_CODE in p.reference.auth_protocols:
        return None
    rows = [s for s in p.rows if s.auth_protocol.lower() == _DEVICE_CODE]
    if not rows:
        return None
    ips = sorted({s.ip for s in rows})
    first = min(s.first for s in rows)
    detail = (
        f"device-code authentication to {_listing(sorted({_app_name(s) for s in rows}))} from {_listing(_labels(p, ips))} "
        f"(first at {utc_text(first)}); the flow does not appear in {p.reference.describe()}."
    )
    return _signal("device_code_flow", detail, ips)


def prt_unknown_device(p: Picture, cover: Cover) -> Signal | None:
    """
    A primary refresh token from a device the user never had and the organisation does not manage.

    Compliance is decided by Entra and Intune, not claimed by the client: a new compliant device is
    a new managed laptop or Cloud PC; a planted registration is not compliant.
    """
    if not p.reference.known:
        return None
    rows = [s for s in p.rows if s.incoming_token_type.lower() == _PRT and _new_device(p, s) and s.is_compliant is not True]
    if not rows:
        return None
    ips = sorted({s.ip for s in rows})
    devices = sorted({s.device_name or s.device_id or "no device id" for s in rows})
    unbound = any(s.token_protection.lower() == "unbound" for s in rows)
    detail = (
        f"primary refresh token used from device {_listing(devices)} at {_listing(_labels(p, ips))}; "
        f"the device is not in {p.reference.describe()}" + (" and the session is not bound to it." if unbound else ".")
    )
    return _signal("prt_unknown_device", detail, ips)


def scripted_client(p: Picture, cover: Cover) -> Signal | None:
    """
    Scripting clients (python-requests, curl, PowerShell, ...) the user's reference never shows.

    An empty user agent counts only on an interactive sign-in: many non-interactive service
    sign-ins carry none, while every browser and Office app sends one when a person signs in.
    """
    if not p.reference.known:
        return None
    known = p.reference.client_families
    families = {agent: networks.scripted_client(agent) for agent in {s.user_agent for s in p.rows}}
    found: dict[str, set[str]] = defaultdict(set)
    for s in p.rows:
        family = families[s.user_agent]
        if family is None and not s.user_agent and s.table is Table.INTERACTIVE:
            family = "empty user agent"
        if family is not None and family not in known:
            found[family].add(s.ip)
    if not found:
        return None
    ips = sorted({ip for group in found.values() for ip in group})
    parts = [f"{family} from {_listing(_labels(p, found[family]))}" for family in sorted(found)]
    detail = f"scripted client(s) not in {p.reference.describe()}: {_listing(parts)}."
    return _signal("scripted_client", detail, ips)


def public_client_new_network(p: Picture, cover: Cover) -> Signal | None:
    """
    First-party public clients (Azure CLI, PowerShell, Graph Explorer, Office...) new to the user, on a new network.

    A new network, not merely a new address: IPv6 privacy addresses and carriers rotate, and the
    device-code flow logs the phished client from the victim's own browser on the victim's network.
    Sign-ins that carry the user's own or a compliant device are the client running on that device.
    """
    if not p.reference.known:
        return None
    found: dict[str, set[str]] = defaultdict(set)
    for s in p.rows:
        name = networks.FIRST_PARTY_PUBLIC_CLIENTS.get(s.app_id)
        if name and s.app_id not in p.reference.app_ids and s.ip in p.unfamiliar and not _managed_device(p, s):
            found[name].add(s.ip)
    if not found:
        return None
    ips = sorted({ip for group in found.values() for ip in group})
    detail = (
        f"first-party public client(s) {_listing(sorted(found))} used from {_listing(_labels(p, ips))}; "
        f"neither the client nor the network is in {p.reference.describe()}."
    )
    return _signal("public_client_new_network", detail, ips)


def unmanaged_device(p: Picture, cover: Cover) -> Signal | None:
    """Sign-ins without the user's devices, from a new network, when every device the user had is compliant."""
    ref = p.reference
    if not ref.compliant_device_ids or not ref.device_ids <= ref.compliant_device_ids:
        return None
    candidates = _uncovered_unfamiliar(p, cover, "unmanaged_device")
    with_known: set[str] = set()
    without: dict[str, int] = defaultdict(int)
    for s in p.rows:
        if s.device_id and s.device_id in ref.device_ids and s.is_compliant is not False:
            with_known.add(s.ip)
        elif s.ip in candidates:
            without[s.ip] += s.count
    ips = sorted(set(without) - with_known)
    if not ips:
        return None
    detail = (
        f"{_count(sum(without[ip] for ip in ips), 'sign-in')} from {_listing(_labels(p, ips))} came from no compliant "
        f"device of the user's; every device in {ref.describe()} is compliant."
    )
    return _signal("unmanaged_device", detail, ips)


def unbound_session_new_network(p: Picture, cover: Cover) -> Signal | None:
    """Sessions not bound to a device (token protection "unbound"), on a new network and device."""
    if not p.reference.known:
        return None
    candidates = _uncovered_unfamiliar(p, cover, "unbound_session_new_network")
    ips = sorted({s.ip for s in p.rows if s.ip in candidates and s.token_protection.lower() == "unbound" and _new_device(p, s)})
    if not ips:
        return None
    detail = f"sign-ins from {_listing(_labels(p, ips))} used a session not bound to any device (token protection unbound)."
    return _signal("unbound_session_new_network", detail, ips)


def new_app(p: Picture, cover: Cover) -> Signal | None:
    """Apps or resources the user never used, reached from a network the user is not known on."""
    if not p.reference.known:
        return None
    ref = p.reference
    candidates = _uncovered_unfamiliar(p, cover, "new_app")
    found: dict[str, set[str]] = defaultdict(set)
    for s in p.rows:
        if s.ip not in candidates:
            continue
        if s.app_id and s.app_id not in ref.app_ids:
            found[_app_name(s)].add(s.ip)
        elif s.resource and ref.resources and s.resource not in ref.resources:
            found[s.resource].add(s.ip)
    if not found:
        return None
    ips = sorted({ip for group in found.values() for ip in group})
    detail = f"apps or resources not in {ref.describe()}: {_listing(sorted(found), 5)}, from {_listing(_labels(p, ips))}."
    return _signal("new_app", detail, ips)


def unusual_hours(p: Picture, cover: Cover) -> Signal | None:
    """
    Sign-ins from a new network at UTC hours the user was never active in `HOURS_MIN_DAYS`+ days of history.

    The user's own networks at 2 a.m. are the user awake; a replay run from another time zone shows
    up as odd hours on the attacker's network.
    """
    ref = p.reference
    if ref.source is not ReferenceSource.BASELINE or ref.hours is None or ref.days < HOURS_MIN_DAYS or len(ref.hours) >= 24:
        return None
    candidates = _uncovered_unfamiliar(p, cover, "unusual_hours")
    found: dict[int, set[str]] = defaultdict(set)
    for s in p.rows:
        if s.ip in candidates and s.first.hour not in ref.hours:
            found[s.first.hour].add(s.ip)
    if not found:
        return None
    ips = sorted({ip for group in found.values() for ip in group})
    hours = ", ".join(f"{h:02d}:00" for h in sorted(found))
    detail = (
        f"activity at {hours} UTC from {_listing(_labels(p, ips))}; the user was never active at these hours in {ref.describe()}."
    )
    return _signal("unusual_hours", detail, ips)


def volume_jump(p: Picture, cover: Cover) -> Signal | None:
    """Non-interactive volume or distinct apps per day far above the user's busiest baseline day."""
    daily = [d for d in p.evidence.baseline.daily if d.table is Table.NON_INTERACTIVE]
    if len(daily) < VOLUME_MIN_DAYS:
        return None
    window = p.evidence.window
    days = max((window.end - window.start).total_seconds() / 86400, 1 / 24)
    rows = [s for s in p.rows if s.table is Table.NON_INTERACTIVE]
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
    return _signal("volume_jump", "; ".join(parts) + ".")


# ----------------------------------------------------------------------------------------------------
# Corroboration
# ----------------------------------------------------------------------------------------------------


def _risk(p: Picture, signal_id: str, events: frozenset[str], what: str) -> Signal | None:
    found: dict[str, set[str]] = defaultdict(set)
    for s in (*p.rows, *p.failed):
        for event in s.risk_events:
            if event.lower() in events:
                found[event].add(s.ip)
    if not found:
        return None
    ips = sorted({ip for group in found.values() for ip in group})
    detail = f"Identity Protection flagged {what}: {_listing(sorted(found))} on sign-ins from {_listing(_labels(p, ips))}."
    return _signal(signal_id, detail, ips)


def risk_attacker_in_the_middle(p: Picture, cover: Cover) -> Signal | None:
    """Identity Protection's attackerinTheMiddle detection on the user's sign-ins."""
    return _risk(p, "risk_attacker_in_the_middle", _RISK_AITM, "an attacker-in-the-middle session")


def risk_anomalous_token(p: Picture, cover: Cover) -> Signal | None:
    """Identity Protection's token detections (anomalousToken, tokenIssuerAnomaly, attemptedPrtAccess)."""
    return _risk(p, "risk_anomalous_token", _RISK_TOKEN, "an anomalous token")


def risk_unfamiliar_sign_in(p: Picture, cover: Cover) -> Signal | None:
    """Identity Protection's sign-in detections (unfamiliar features, anonymous or malicious IP, travel)."""
    return _risk(p, "risk_unfamiliar_sign_in", _RISK_UNFAMILIAR, "unfamiliar or anonymous sign-ins")


def security_info(p: Picture, suspects: frozenset[str]) -> Signal | None:
    """
    Authentication methods or devices registered in the window; stronger from an IP already implicated.

    Decided after every other signal, because "from a suspect IP" means implicated by one of them.
    """
    events = [
        e
        for e in p.evidence.security_events
        if any(word in e.operation.lower() for word in _REGISTRATIONS) and "delete" not in e.operation.lower()
    ]
    if not events:
        return None
    from_suspects = [e for e in events if e.actor_ip and e.actor_ip in suspects]
    if from_suspects:
        ips = sorted({e.actor_ip for e in from_suspects})
        parts = [f"{e.operation} at {utc_text(e.time)}" + (f" ({e.detail})" if e.detail else "") for e in from_suspects]
        detail = f"{_listing(parts)} from {_listing(_labels(p, ips))}, an IP other signals implicate."
        return _signal("security_info_from_suspect_ip", detail, ips)
    parts = [f"{e.operation} at {utc_text(e.time)}" + (f" from {e.actor_ip}" if e.actor_ip else "") for e in events]
    return _signal("security_info_changed", f"{_listing(parts)}.")


#: Every signal that reads only the picture and the cover, in report order.
DETECTORS: tuple[Callable[[Picture, Cover], Signal | None], ...] = (
    session_ip_switch,
    session_left_device,
    session_browser_switch,
    non_interactive_unknown_network,
    concurrent_streams,
    impossible_travel,
    anonymizing_network,
    token_only_new_context,
    device_code_flow,
    prt_unknown_device,
    scripted_client,
    public_client_new_network,
    unmanaged_device,
    unbound_session_new_network,
    new_app,
    unusual_hours,
    volume_jump,
    risk_attacker_in_the_middle,
    risk_anomalous_token,
    risk_unfamiliar_sign_in,
)


def detect(p: Picture, cover: Cover) -> tuple[Signal, ...]:
    """Every signal that fires, in catalogue order; the security-info signal last, as it reads the others."""
    found = [signal for detector in DETECTORS if (signal := detector(p, cover)) is not None]
    suspects = frozenset(ip for signal in found for ip in signal.ips)
    extra = security_info(p, suspects)
    if extra is not None:
        found.append(extra)
    order = {name: index for index, name in enumerate(CATALOGUE)}
    return tuple(sorted(found, key=lambda s: order[s.id]))
