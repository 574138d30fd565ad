"""
Benign explanations, checked per IP before anything is called suspect.

Each check names the fact it rests on (the corporate range, the named location, the travel record,
the device) so an analyst can verify it. An explanation covers what it explains and no more: which
signals it covers is declared by each signal's rule (`enrichment.domain.signals`), not here; a travel record explains a country and
dates, not a scripting client, and a commercial VPN or hosting provider is never "the corporate VPN".
Private (RFC 1918) addresses get no special treatment: they are corporate only if settings say so.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from common.times import utc_text
from enrichment.domain import networks
from enrichment.domain.model import Column, Explanation, ExplanationKind, SignIn, Table, TravelRecord
from enrichment.domain.picture import Address, IpFacts, Picture, fresh

if TYPE_CHECKING:
    # Only annotations: the signal registry imports this module for READS, and settings import the registry.
    from common.settings import Settings

#: The columns each explanation reads. An explanation that reads an absent column is not checked
#: (`explain(skip=...)`): the Microsoft-network check, for one, reads "no device, no user agent" as a
#: service acting for the user, which an export without DeviceDetail would make of every attacker.
READS: Mapping[ExplanationKind, frozenset[Column]] = {
    ExplanationKind.CORPORATE_NETWORK: frozenset({Column.IP_ADDRESS}),
    ExplanationKind.CORPORATE_VPN: frozenset({Column.IP_ADDRESS}),
    ExplanationKind.TRUSTED_ASN: frozenset({Column.ASN}),
    ExplanationKind.NAMED_LOCATION: frozenset({Column.NETWORK_LOCATIONS}),
    ExplanationKind.MICROSOFT_NETWORK: frozenset({Column.ASN, Column.USER_AGENT, Column.DEVICE}),
    ExplanationKind.MOBILE_CARRIER: frozenset({Column.ASN, Column.LOCATION}),
    ExplanationKind.DUAL_STACK: frozenset({Column.IP_ADDRESS, Column.ASN, Column.LOCATION}),
    ExplanationKind.TRAVEL: frozenset({Column.LOCATION, Column.ASN, Column.DEVICE}),
    ExplanationKind.PRIVACY_RELAY: frozenset({Column.IP_ADDRESS, Column.ASN, Column.DEVICE}),
    ExplanationKind.SECURITY_SERVICE_EDGE: frozenset({Column.IP_ADDRESS, Column.ASN, Column.DEVICE}),
    ExplanationKind.NEW_DEVICE: frozenset(
        {Column.SESSION_ID, Column.DEVICE, Column.AUTH_DETAILS, Column.ASN, Column.LOCATION, Column.NETWORK_LOCATIONS}
    ),
    ExplanationKind.DEVICE_CONTINUITY: frozenset({Column.DEVICE}),
}

#: Travel is refuted when the user is seen at home this close in time to a sign-in at the destination.
HOME_PRESENCE_TOLERANCE = timedelta(hours=1)
#: Slack around a trip's dates: watchlist dates are local days, sign-in times are UTC.
TRIP_SLACK = timedelta(days=1)
#: IPv4 and IPv6 of one network count as "at the same time" within this gap.
DUAL_STACK_GAP = timedelta(minutes=30)

#: Read once here: on Python 3.11 each enum member lookup (`Table.NON_INTERACTIVE`) is a descriptor call
#: (about 0.2 us), and the checks below make it per row or per ASN.
_NON_INTERACTIVE = Table.NON_INTERACTIVE
_MICROSOFT = networks.NetworkKind.MICROSOFT
_MOBILE_CARRIER = networks.NetworkKind.MOBILE_CARRIER


def _corporate(facts: IpFacts, settings: Settings) -> Iterable[Explanation]:
    for kind, cidrs, setting in (
        (ExplanationKind.CORPORATE_NETWORK, settings.corporate_cidrs, "REPLAY_CORPORATE_CIDRS"),
        (ExplanationKind.CORPORATE_VPN, settings.vpn_cidrs, "REPLAY_VPN_CIDRS"),
    ):
        matched = [str(net) for net in cidrs if networks.in_networks(facts.ip, (net,))]
        if matched:
            what = "corporate network" if kind is ExplanationKind.CORPORATE_NETWORK else "corporate VPN egress"
            yield Explanation(facts.ip, kind, f"{facts.ip} is inside the {what} {matched[0]} ({setting}).")


def _trusted_asn(facts: IpFacts, settings: Settings) -> Explanation | None:
    trusted = sorted(facts.asns & settings.trusted_asns)
    if not trusted:
        return None
    return Explanation(
        facts.ip,
        ExplanationKind.TRUSTED_ASN,
        f"{facts.ip} is announced by AS{trusted[0]}, which the organisation trusts (REPLAY_TRUSTED_ASNS).",
    )


def _named_location(facts: IpFacts) -> Explanation | None:
    if not facts.trusted_networks:
        return None
    names = ", ".join(sorted(facts.trusted_networks)[:3])
    return Explanation(
        facts.ip, ExplanationKind.NAMED_LOCATION, f"Entra matched {facts.ip} to the trusted named location(s) {names}."
    )


def _service_like(signin: SignIn) -> bool:
    """A Microsoft service acting for the user: non-interactive, no user agent, no device."""
    return signin.table is _NON_INTERACTIVE and not signin.user_agent and not signin.device_id


def _microsoft(p: Picture, facts: IpFacts, rows: Sequence[SignIn]) -> Explanation | None:
    """
    Microsoft's own network, when what comes from it is Microsoft's services or the user's own (cloud) device.

    Anyone can rent a virtual machine on Azure, so the ASN alone explains nothing: every sign-in from
    the address must look like a service acting for the user, or come from the user's own device or
    a device the organisation manages (compliance is Entra's verdict, not the client's claim).
    """
    owned = sorted(a for a in facts.asns if networks.network_kind(a) is _MICROSOFT)
    if not owned or not rows:
        return None
    if not all(_service_like(s) or p.own_device(s) for s in rows):
        return None
    return Explanation(
        facts.ip,
        ExplanationKind.MICROSOFT_NETWORK,
        f"{facts.ip} is Microsoft's own network (AS{owned[0]} {networks.operator_name(owned[0])}) and its sign-ins are "
        "Microsoft services acting for the user or the user's own cloud device, not a place the user went.",
    )


def _mobile_carrier(p: Picture, facts: IpFacts, rows: Sequence[SignIn], carried: frozenset[Carried]) -> Explanation | None:
    """
    A mobile carrier in the user's country: the user's usual one (ordinary churn), or a new one that
    only the user's own known device used, carrying on a session it also used where the user is known.

    A phone leaving home Wi-Fi for cellular keeps its session and its device id, which Entra writes
    only when the device proves its registration key; a carrier the user never had is then the phone
    moving, not the token. A replay from a mobile proxy has no device id or another device on the
    address, or a session the device never used elsewhere, and stays unexplained.
    """
    ref = p.reference
    carriers = sorted(a for a in facts.asns if networks.network_kind(a) is _MOBILE_CARRIER)
    if not carriers or not facts.countries or not facts.countries <= ref.countries:
        return None
    usual = [a for a in carriers if a in ref.asns]
    if usual:
        asn = usual[0]
        return Explanation(
            facts.ip,
            ExplanationKind.MOBILE_CARRIER,
            f"{facts.ip} is on {networks.operator_name(asn)} (AS{asn}) in {facts.country}, the user's usual mobile carrier "
            f"and country in {ref.describe()}.",
        )
    if not rows or not all(_carried_key(s) in carried for s in rows):
        return None
    asn = carriers[0]
    device = min(s.device_name or s.device_id for s in rows)
    return Explanation(
        facts.ip,
        ExplanationKind.MOBILE_CARRIER,
        f"{facts.ip} is on {networks.operator_name(asn)} (AS{asn}) in {facts.country}, a mobile carrier new to the user, "
        f"used only by the user's own device {device} (in {ref.describe()}), carrying on the session it also used where "
        "the user is known: the device moving onto cellular, not the token.",
    )


#: (session, device id, operating system family) of a session one of the user's known devices used from a familiar address.
Carried = tuple[str, str, str]


def _carried_key(s: SignIn) -> Carried:
    return (s.session_id, s.device_id.lower(), _system(s.operating_system))


def _carried_sessions(p: Picture) -> frozenset[Carried]:
    """Sessions of the user's known devices seen from addresses where the user is known (not taken)."""
    known = p.reference.device_ids
    return frozenset(
        _carried_key(s)
        for s in p.rows
        if s.session_id and s.device_id and s.device_id.lower() in known and p.familiar(s.ip) and s.ip not in p.taken
    )


@dataclass(frozen=True, slots=True)
class _Presence:
    """Merged time intervals (widened by a tolerance) with one example IP each, searchable by bisection."""

    starts: list[datetime]
    ends: list[datetime]
    examples: list[str]

    @classmethod
    def of(cls, spans: Iterable[tuple[datetime, datetime, str]], slack: timedelta) -> _Presence:
        starts: list[datetime] = []
        ends: list[datetime] = []
        examples: list[str] = []
        for first, last, ip in sorted(spans):
            start, end = first - slack, last + slack
            if ends and start <= ends[-1]:
                ends[-1] = max(ends[-1], end)
            else:
                starts.append(start)
                ends.append(end)
                examples.append(ip)
        return cls(starts, ends, examples)

    def during(self, first: datetime, last: datetime) -> str | None:
        """An example IP active between `first` and `last` (within the slack), or None."""
        index = bisect.bisect_right(self.starts, last) - 1
        return self.examples[index] if index >= 0 and self.ends[index] >= first else None


def _dual_stack_presence(p: Picture) -> dict[tuple[int, int, str], _Presence]:
    """(AS, IP version, country) -> when familiar addresses of that network were in use."""
    spans: dict[tuple[int, int, str], list[tuple[datetime, datetime, str]]] = defaultdict(list)
    for facts in p.ips.values():
        address = p.address(facts.ip) if facts.familiar else None
        if address is None:
            continue
        version = address.version
        for asn in facts.asns:
            for country in facts.countries or {""}:
                spans[(asn, version, country)].append((facts.first, facts.last, facts.ip))
    return {key: _Presence.of(found, DUAL_STACK_GAP) for key, found in spans.items()}


def _prefix64(address: Address | None) -> int | None:
    """
    The /64 an IPv6 address is in, as its upper 64 bits (None for IPv4 or no address): a key that
    costs a shift, where an `IPv6Network` costs 10 us and is built only to be written (`_lan_text`).
    """
    if address is None or address.version != 6:
        return None
    return int(address) >> 64


def _lan_text(prefix: int) -> str:
    """The /64 of `_prefix64` as people read it, e.g. "2001:db8:1:2::/64"."""
    return str(ipaddress.IPv6Network((prefix << 64, 64)))


def _paired(p: Picture, facts: IpFacts, presence: dict[tuple[int, int, str], _Presence]) -> tuple[int, str] | None:
    """(AS, the other family's address) when the other address family of the same AS was in use at the same time."""
    address = p.address(facts.ip)
    if address is None:
        return None
    for asn in sorted(facts.asns):
        for country in sorted(facts.countries or {""}):
            known = presence.get((asn, 10 - address.version, country))  # 4 <-> 6
            peer = known.during(facts.first, facts.last) if known is not None else None
            if peer is not None:
                return asn, peer
    return None


#: IPv6 /64 (`_prefix64`) -> AS -> how the user is known on it, for the detail sentence.
Lans = dict[int, dict[int, str]]


def _dual_stack(p: Picture, facts: IpFacts, presence: dict[tuple[int, int, str], _Presence], lans: Lans) -> Explanation | None:
    """
    The other address family of a network the user is known on.

    Either the other family of the same AS is in use at the same time, or (IPv6) the address is a
    new privacy address inside a home /64 (`_home_lans`) of an AS where the user also uses IPv4:
    one household router handing out rotating IPv6 addresses next to its IPv4 one.
    """
    address = p.address(facts.ip)
    if address is None:
        return None
    paired = _paired(p, facts, presence)
    if paired is not None:
        asn, peer = paired
        version = address.version
        return Explanation(
            facts.ip,
            ExplanationKind.DUAL_STACK,
            f"{facts.ip} and {peer} are the IPv{version} and IPv{10 - version} addresses of AS{asn} in use at the "
            "same time, and the user is known on that network.",
        )
    lan = _prefix64(address)
    if lan is not None:
        known = lans.get(lan, {})
        for asn in sorted(facts.asns & known.keys()):
            if any(key[0] == asn and key[1] == 4 for key in presence):
                return Explanation(
                    facts.ip,
                    ExplanationKind.DUAL_STACK,
                    f"{facts.ip} is inside {_lan_text(lan)}, {known[asn]}, of AS{asn} where the user also signs in over IPv4: the "
                    "household router's rotating IPv6 addresses.",
                )
    return None


def _home_lans(p: Picture, presence: dict[tuple[int, int, str], _Presence]) -> Lans:
    """
    The /64 networks a household router hands the user's devices: those of IPv6 addresses in the
    user's reference, and those of a window address whose AS's IPv4 was in use at the same time
    (its sibling privacy addresses rotate in when no IPv4 sign-in happens to be near). Only ASes
    seen in the window that are nobody's shared infrastructure, and never an address a session was
    taken to.
    """
    reference = {lan for lan in (_prefix64(p.address(ip)) for ip in p.reference.ips) if lan is not None}
    lans: Lans = defaultdict(dict)
    for _, facts in sorted(p.ips.items()):  # the first paired address in address order names the LAN, whatever the row order
        lan = _prefix64(p.address(facts.ip))
        if lan is None or facts.ip in p.taken:
            continue
        asns = sorted(a for a in facts.asns if not networks.shared_infrastructure(a))
        if lan in reference:
            for asn in asns:
                lans[lan][asn] = "an IPv6 network the user is known on"
        paired = _paired(p, facts, presence)
        if paired is not None and paired[0] in asns:
            lans[lan].setdefault(paired[0], f"the IPv6 network of {facts.ip}, in use at the same time as {paired[1]}")
    return dict(lans)


def _devices_there(p: Picture, rows: Sequence[SignIn]) -> tuple[list[str], bool]:
    """The user's own devices seen in `rows` (names, else ids), and whether any other device was."""
    own = sorted({s.device_name or s.device_id for s in rows if p.own_device(s)})
    foreign = any(s.device_id and not p.own_device(s) for s in rows)
    return own, foreign


def _privacy_relay(p: Picture, facts: IpFacts, rows: Sequence[SignIn]) -> Explanation | None:
    """
    A consumer privacy relay (iCloud Private Relay, WARP, Edge Secure Network) used by the user's own device.

    Relays are shared by anyone, so the address proves nothing by itself: what makes it the user is
    their own registered or compliant device on its sign-ins, and no other device's. A session lifted
    or hijacked to a relay stays the attacker's (`Picture.taken`), and the relay explains only where
    the traffic came from: no signal about the token, the client or the device is waived by it.
    """
    relay = next((r for a in sorted(facts.asns) if (r := networks.relay(facts.ip, a)) is not None), None)
    if relay is None:
        return None
    own, foreign = _devices_there(p, rows)
    if not own or foreign:
        return None
    return Explanation(
        facts.ip,
        ExplanationKind.PRIVACY_RELAY,
        f"{facts.ip} is {relay.operator} egress ({relay.evidence}), and its sign-ins came from the user's own device "
        f"{own[0]}: the user's traffic behind a privacy relay, geolocated only roughly.",
    )


def _security_service_edge(p: Picture, facts: IpFacts, rows: Sequence[SignIn], settings: Settings) -> Explanation | None:
    """
    The organisation's security service edge (REPLAY_SSE_PROVIDER, REPLAY_SSE_CIDRS), used by the user's own device.

    Every customer of a provider leaves from the same service edges, so here too the user's own
    device on the address is what says it is the user; a dedicated egress block is the organisation's.
    """
    dedicated = [str(net) for net in settings.sse_cidrs if networks.in_networks(facts.ip, (net,))]
    providers = sorted(name for name in settings.sse_providers if facts.asns & networks.SSE_PROVIDERS[name].asns)
    if not dedicated and not providers:
        return None
    own, foreign = _devices_there(p, rows)
    if not own or foreign:
        return None
    where = (
        f"inside the organisation's SSE egress {dedicated[0]} (REPLAY_SSE_CIDRS)"
        if dedicated
        else f"{networks.SSE_PROVIDERS[providers[0]].name}'s service edge (REPLAY_SSE_PROVIDER)"
    )
    return Explanation(
        facts.ip,
        ExplanationKind.SECURITY_SERVICE_EDGE,
        f"{facts.ip} is {where}, and its sign-ins came from the user's own device {own[0]}.",
    )


def _system(operating_system: str) -> str:
    """An operating system's family, versions dropped ("Ios 18.5" and "iOS" are one)."""
    lowered = operating_system.strip().lower()
    return next((name for name in ("windows", "mac", "ios", "android", "linux") if lowered.startswith(name)), lowered)


def _established(p: Picture, s: SignIn, settings: Settings) -> bool:
    """
    A sign-in from where the user is established: an address of the user's history, the organisation's
    network, or (for a phone or tablet) the user's own mobile carrier in the user's country.
    """
    if s.ip in p.taken:
        return False
    if s.ip in p.reference.ips or s.trusted_networks or s.asn in settings.trusted_asns:
        return True
    if networks.in_networks(s.ip, settings.corporate_cidrs) or networks.in_networks(s.ip, settings.vpn_cidrs):
        return True
    return (
        networks.handheld(s.operating_system)
        and networks.network_kind(s.asn) is _MOBILE_CARRIER
        and s.asn in p.reference.asns
        and s.country in p.reference.countries
    )


def _new_devices(p: Picture, settings: Settings) -> dict[str, Explanation]:
    """
    Where the user set up a new device: IP -> the explanation.

    A session born with fresh credentials (password and MFA, not a claim in a token) on one device
    the user never had, on an address of no rented or shared network, that then went on from where
    the user is established (`_established`) and from nowhere else. The addresses it used on the
    network it was born on (the home line's IPv4 and IPv6 addresses) are where the user set up a
    new phone or laptop: no replay location, and what was registered from there is shown, not
    convicted. Every sign-in from such an address must belong to such a session.
    """
    candidates = {
        sid: start
        for sid, start in p.starts.items()
        if fresh(start) and p.new_device(start) and start.ip not in p.taken and not networks.shared_infrastructure(start.asn)
    }
    if not candidates:
        return {}
    by_session: dict[str, list[SignIn]] = defaultdict(list)
    for s in p.rows:
        if s.session_id in candidates:
            by_session[s.session_id].append(s)
    setups: dict[str, tuple[str, SignIn, list[SignIn]]] = {}  # IP -> (session, its start, where it went on)
    for sid, start in sorted(candidates.items(), key=lambda item: (item[1].first, item[0])):
        rows = by_session[sid]
        devices = {s.device_id for s in rows if s.device_id}
        if len(devices) > 1 or devices & p.reference.device_ids or len({_system(s.operating_system) for s in rows}) > 1:
            continue
        born = [s for s in rows if s.asn == start.asn and s.country == start.country]
        elsewhere = [s for s in rows if s.asn != start.asn or s.country != start.country]
        if elsewhere:
            if not all(_established(p, s, settings) for s in elsewhere):
                continue
            went_on = elsewhere
        else:
            went_on = [s for s in born if _established(p, s, settings) and p.site(s.ip) != p.site(start.ip)]
            if not went_on:
                continue
        for s in born:
            if s.ip not in p.reference.ips:
                setups.setdefault(s.ip, (sid, start, went_on))
    if not setups:
        return {}
    sessions_at: dict[str, set[str]] = defaultdict(set)
    for s in p.rows:
        if s.ip in setups:
            sessions_at[s.ip].add(s.session_id)
    found: dict[str, Explanation] = {}
    for ip, (sid, start, went_on) in setups.items():
        if sessions_at[ip] - {sid}:
            continue
        device = next((s.device_name or s.device_id for s in by_session[sid] if s.device_id), "") or (
            start.operating_system or "an unregistered device"
        )
        registered = sorted({e.operation for e in p.evidence.security_events if e.actor_ip in setups})
        found[ip] = Explanation(
            ip,
            ExplanationKind.NEW_DEVICE,
            f"{ip} is where the user set up a new device ({device}): a fresh sign-in with credentials from "
            f"{start.ip} at {utc_text(start.first)}"
            + (f", then {', '.join(registered)} from there" if registered else "")
            + f"; the same session went on from {', '.join(sorted({s.ip for s in went_on})[:3])}, where the user is "
            "established. A new device's first address, not a replay.",
        )
    return found


def _device_continuity(p: Picture, facts: IpFacts) -> Explanation | None:
    devices = sorted(facts.device_ids & p.reference.compliant_device_ids)
    if not devices:
        return None
    return Explanation(
        facts.ip,
        ExplanationKind.DEVICE_CONTINUITY,
        f"sign-ins from {facts.ip} came from device {devices[0]}, the user's own compliant device in {p.reference.describe()}.",
    )


def _home_presence(p: Picture, settings: Settings, destination: str) -> _Presence:
    """
    When the user was provably at home: home-country sign-ins from networks that place a person.

    Not placing anyone: clouds, hosting and commercial VPNs, the corporate VPN, mobile-only carriers,
    and phones or tablets on any network (a roaming phone is routed home by its carrier).
    """
    home = p.reference.countries - {destination}
    spans = []
    for s in p.rows:
        if s.country not in home or networks.shared_infrastructure(s.asn) or s.asn in networks.MOBILE_CARRIER_ASNS:
            continue
        if networks.handheld(s.operating_system) or networks.in_networks(s.ip, settings.vpn_cidrs):
            continue
        spans.append((s.first, s.last, s.ip))
    return _Presence.of(spans, HOME_PRESENCE_TOLERANCE)


def _travel(
    facts: IpFacts, rows: Sequence[SignIn], records: Sequence[TravelRecord], home: Callable[[str], _Presence]
) -> Explanation | None:
    """
    A travel record for the user whose country and dates match the IP, unless the user was at home meanwhile.

    The refutation is what keeps this honest: a record for France explains sign-ins from France, and
    only while the user is not also signing in from home at the same time.
    """
    for record in records:
        if record.country not in facts.countries:
            continue
        if not (record.start - TRIP_SLACK <= facts.first and facts.last <= record.end + TRIP_SLACK):
            continue
        presence = home(record.country)
        if any(presence.during(s.first, s.last) is not None for s in rows):
            continue
        return Explanation(
            facts.ip,
            ExplanationKind.TRAVEL,
            f"{facts.ip} is in {record.country}, and the travel record puts the user in {record.country} "
            f"from {record.start:%Y-%m-%d} to {record.end:%Y-%m-%d}; no sign-in placed the user at home meanwhile.",
        )
    return None


def explain(p: Picture, settings: Settings, skip: frozenset[ExplanationKind] = frozenset()) -> tuple[Explanation, ...]:
    """Every benign explanation found, per IP (sorted), in `ExplanationKind` order; `skip` ones are not checked."""
    user = p.evidence.account.upn.lower()
    records = [t for t in p.evidence.travel if not user or not t.user or t.user.lower() == user]
    every = {**p.failed_only, **p.ips}
    travel_ips = {ip for ip, f in every.items() if any(t.country in f.countries for t in records)}
    microsoft_ips = {ip for ip, f in every.items() if any(networks.network_kind(a) is _MICROSOFT for a in f.asns)}
    relay_ips = {ip for ip, f in every.items() if f.asns & networks.PRIVACY_RELAY_ASNS.keys()}
    sse_asns = frozenset().union(*(networks.SSE_PROVIDERS[name].asns for name in settings.sse_providers))
    sse_ips = {
        ip
        for ip, f in every.items()
        if f.asns & sse_asns or (settings.sse_cidrs and networks.in_networks(ip, settings.sse_cidrs))
    }
    carrier_ips = {
        ip
        for ip, f in every.items()
        if ip not in p.taken and any(networks.network_kind(a) is _MOBILE_CARRIER and a not in p.reference.asns for a in f.asns)
    }
    wanted = travel_ips | microsoft_ips | relay_ips | sse_ips | carrier_ips
    rows_by_ip: dict[str, list[SignIn]] = defaultdict(list)
    if wanted:
        for s in (*p.rows, *p.failed):
            if s.ip in wanted:
                rows_by_ip[s.ip].append(s)
    presence = _dual_stack_presence(p)
    lans = _home_lans(p, presence)
    homes: dict[str, _Presence] = {}

    def home(destination: str) -> _Presence:
        if destination not in homes:
            homes[destination] = _home_presence(p, settings, destination)
        return homes[destination]

    # Carrier churn and dual stack say the user's own device moved to a sibling address; an address
    # one of the user's device sessions was lifted to carries none of the user's devices, so neither
    # explains it (an attacker inside the victim's own carrier or ISP is not churn).
    taken = p.taken
    new_devices = _new_devices(p, settings)
    carried = _carried_sessions(p) if carrier_ips else frozenset()
    found: list[Explanation] = []
    for ip in sorted(every):
        facts = every[ip]
        churn = ip not in taken
        found.extend(_corporate(facts, settings))
        for candidate in (
            _trusted_asn(facts, settings),
            _named_location(facts),
            _microsoft(p, facts, rows_by_ip.get(ip, [])) if ip in microsoft_ips else None,
            _mobile_carrier(p, facts, rows_by_ip.get(ip, []), carried) if churn else None,
            _dual_stack(p, facts, presence, lans) if churn else None,
            _travel(facts, rows_by_ip.get(ip, []), records, home) if ip in travel_ips else None,
            _privacy_relay(p, facts, rows_by_ip.get(ip, [])) if churn and ip in relay_ips else None,
            _security_service_edge(p, facts, rows_by_ip.get(ip, []), settings) if churn and ip in sse_ips else None,
            new_devices.get(ip),
            _device_continuity(p, facts),
        ):
            if candidate is not None:
                found.append(candidate)
    return tuple(e for e in found if e.kind not in skip) if skip else tuple(found)
