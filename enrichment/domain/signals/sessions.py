"""
Session evidence: one Entra SessionId seen where its owner never was.

A session belongs to the browser or app it was issued to. Seen from another AS, without the device
it was issued on, or in another web browser, it is the cookie or refresh token moving: the signals
that catch a replay most directly. Each is one pass over the rows, grouped by session.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from enrichment.domain.model import Column, Signal, SignIn
from enrichment.domain.picture import Picture
from enrichment.domain.signals.rule import EVERY_EXPLANATION, MICROSOFT_SERVICE, NETWORK, ORGANISATION, Check, rule
from enrichment.domain.signals.wording import count, ip_listing, listing


@rule(
    weight=35,
    covered_by=EVERY_EXPLANATION,
    reads=NETWORK | {Column.SESSION_ID},
    reason="one Entra session used from another AS is the token itself moving to a new network",
)
def session_ip_switch(p: Picture, check: Check) -> Signal | None:
    """
    One SessionId used from more than one AS: the unfamiliar IPs in it are where the token went.

    Grouped by session, so the cost is linear. The IPs the user is known on are the session's owner
    side and are never implicated; sessions that stay inside one AS are roaming, not replay. Nor is a
    session's birthplace, where it was created with fresh credentials: replay is the session used
    somewhere else later (a phishing proxy's birthplace is `session_born_on_rented_network`'s).
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
        birthplace = p.birthplace(session_id)
        moved = {ip for ip in ips_by_session[session_id] if not p.familiar(ip) and not check.covers(ip) and ip != birthplace}
        if moved:
            implicated |= moved
            sessions += 1
    if not implicated:
        return None
    owners = sorted({ip for sid, ips in ips_by_session.items() if len(asns_by_session[sid]) > 1 for ip in ips} - implicated)
    detail = (
        f"{count(sessions, 'Entra session')} used from more than one AS; new network(s) "
        f"{ip_listing(p, implicated)}" + (f" joined a session also used from {ip_listing(p, owners)}" if owners else "") + "."
    )
    return check.hit(detail, implicated)


@rule(
    weight=30,
    covered_by=ORGANISATION | MICROSOFT_SERVICE,
    reads={Column.SESSION_ID, Column.DEVICE, Column.IP_ADDRESS},
    reason="a session issued to the user's own device, used with no device from another address, is the token lifted off it",
)
def session_left_device(p: Picture, check: Check) -> Signal | None:
    """A session of the user's own device used with no device from other addresses (see `Picture.lifted`)."""
    implicated = {ip for ips in p.lifted.values() for ip in ips if not check.covers(ip)}
    if not implicated:
        return None
    sessions = sum(1 for ips in p.lifted.values() if ips & implicated)
    agents = sorted({s.user_agent for s in p.rows_from(implicated) if not s.device_id and s.user_agent})
    detail = (
        f"{count(sessions, 'Entra session')} of the user's own device used with no device from "
        f"{ip_listing(p, implicated)}" + (f" (client {listing(agents, 2)})" if agents else "") + "."
    )
    return check.hit(detail, implicated)


@rule(
    weight=35,
    covered_by=ORGANISATION,
    reads=NETWORK | {Column.SESSION_ID, Column.DEVICE, Column.AUTH_DETAILS},
    reason="a session born with fresh credentials on a rented server or commercial VPN, with none of the user's devices, "
    "was born at a phishing proxy: every address new to the user that uses it is the attacker's",
)
def session_born_on_rented_network(p: Picture, check: Check) -> Signal | None:
    """Sessions whose first sign-in typed the password and MFA at a proxy (see `Picture.hijacked`), and where they went."""
    implicated = {ip for ips in p.hijacked.values() for ip in ips if not check.covers(ip)}
    if not implicated:
        return None
    births = sorted({p.starts[sid].ip for sid, ips in p.hijacked.items() if ips & implicated})
    later = sorted(implicated - set(births))
    detail = (
        f"{count(len(births), 'Entra session')} began with a fresh password and MFA sign-in from "
        f"{ip_listing(p, births)}, a hosting provider, commercial VPN or cloud the user never used, with none of "
        "the user's devices: where an AiTM proxy logs the victim"
        + (f"; the session was then used from {ip_listing(p, later)}" if later else "")
        + "."
    )
    return check.hit(detail, implicated)


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


@rule(
    weight=30,
    covered_by=ORGANISATION,
    reads={Column.SESSION_ID, Column.DEVICE, Column.IP_ADDRESS},
    reason="a browser session cookie moves to another browser only when it is copied: the AiTM or stolen-cookie replay",
)
def session_browser_switch(p: Picture, check: Check) -> Signal | None:
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
            if family == owner or s.ip in owner_ips or p.own_device(s):
                continue
            if check.covers(s.ip):
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
        f"an Entra session moved from {listing(moves, 2)}: the second browser, with none of the user's devices, used it "
        f"from {ip_listing(p, implicated)}."
    )
    return check.hit(detail, implicated)
