"""
The user's picture: the evidence rows grouped once, and the reference they are compared with.

Every signal and every explanation reads the same `Picture`, built in one pass over the rows: the
successful and failed sign-ins, per-IP facts (first/last, counts per table, networks, devices), the
user's *reference* (the baseline when there is one; with no history at all, the user's own activity
at the start of the window, before a second network appears and before the incident time) and which
addresses are unfamiliar: on a network the user is not known on, or where a session of the user's
own device was used with no device at all (`lifted`).

Pure: no clock (the incident time is `evidence.at`), no I/O, no settings.
"""

from __future__ import annotations

import ipaddress
import socket
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from common.times import utc_text
from enrichment.domain import networks
from enrichment.domain.model import Column, SignIn, Table, UserEvidence

_SESSION_TABLES = frozenset(t.value for t in Table)
#: A session's device is known from these two columns.
_SESSION_COLUMNS = frozenset({Column.DEVICE.value, Column.SESSION_ID.value})
#: Read once here: on Python 3.11 each `Table.INTERACTIVE` is a descriptor call (about 0.2 us), and the
#: loops below test it for every row.
_INTERACTIVE = Table.INTERACTIVE


class ReferenceSource(StrEnum):
    """Where the user's reference came from: the baseline, the start of the window, or nowhere."""

    BASELINE = "baseline"
    WINDOW_START = "window_start"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Reference:
    """What is known about the user: the baseline, or with no history the start of the window."""

    source: ReferenceSource
    ips: frozenset[str] = frozenset()
    asns: frozenset[int] = frozenset()
    countries: frozenset[str] = frozenset()
    interactive_ips: frozenset[str] = frozenset()
    interactive_asns: frozenset[int] = frozenset()
    app_ids: frozenset[str] = frozenset()
    resources: frozenset[str] = frozenset()
    client_families: frozenset[str] = frozenset()
    device_ids: frozenset[str] = frozenset()
    compliant_device_ids: frozenset[str] = frozenset()
    auth_protocols: frozenset[str] = frozenset()
    hours: frozenset[int] | None = None
    days: int = 0
    until: datetime | None = None  # WINDOW_START: rows before this time are the reference

    @property
    def known(self) -> bool:
        return self.source is not ReferenceSource.NONE

    def describe(self) -> str:
        """How the reference was made, for detail sentences."""
        if self.source is ReferenceSource.BASELINE:
            return f"the {self.days}-day baseline" if self.days else "the baseline"
        if self.source is ReferenceSource.WINDOW_START and self.until is not None:
            return f"the user's activity before {utc_text(self.until)} (no baseline history)"
        return "no history"


@dataclass(frozen=True, slots=True)
class IpFacts:
    """One IP's part of the window, over successful sign-ins unless a field says otherwise."""

    ip: str
    asns: frozenset[int]
    countries: frozenset[str]
    cities: frozenset[str]
    first: datetime
    last: datetime
    interactive: int
    non_interactive: int
    failures: int  # failed sign-ins, counted but not used as token use
    device_ids: frozenset[str]
    trusted_networks: frozenset[str]
    familiar: bool

    @property
    def asn(self) -> int | None:
        return min(self.asns) if self.asns else None

    @property
    def country(self) -> str:
        return min(self.countries) if self.countries else ""

    def label(self) -> str:
        """'203.0.113.9 (AS14061 DigitalOcean, NL)': the IP with what is known about its network."""
        parts = []
        if self.asn is not None:
            name = networks.operator_name(self.asn)
            parts.append(f"AS{self.asn}" + (f" {name}" if name else ""))
        if self.countries:
            parts.append("/".join(sorted(self.countries)))
        return f"{self.ip} ({', '.join(parts)})" if parts else self.ip


@dataclass(frozen=True, slots=True)
class Picture:
    """The evidence of one user, grouped once for every signal and explanation to read."""

    evidence: UserEvidence
    reference: Reference
    rows: tuple[SignIn, ...]  # successful sign-ins, in the evidence's order
    failed: tuple[SignIn, ...]
    ips: Mapping[str, IpFacts]  # IPs with successful sign-ins: the ones that used the user's tokens
    failed_only: Mapping[str, IpFacts]  # IPs seen only failing: explained if they can be, never token use
    window_interactive_ips: frozenset[str]
    window_interactive_asns: frozenset[int]
    unfamiliar: frozenset[str]  # IPs of successful sign-ins on networks the user is not known on
    lifted: Mapping[str, frozenset[str]] = field(default_factory=dict)  # session -> IPs it was used from with no device
    starts: Mapping[str, SignIn] = field(default_factory=dict)  # session -> its first successful sign-in in the window
    hijacked: Mapping[str, frozenset[str]] = field(default_factory=dict)  # session born on rented infrastructure -> its new IPs
    known_sites: frozenset[str] = frozenset()  # the /24 and /48 sites of the reference's addresses
    #: Addresses the user's sessions were taken to: lifted off the user's device, or used from a session born at a proxy.
    taken: frozenset[str] = frozenset()
    interactive: tuple[SignIn, ...] = ()  # the successful rows of the interactive table
    non_interactive: tuple[SignIn, ...] = ()  # the successful rows of the non-interactive table
    risky: tuple[SignIn, ...] = ()  # successful, then failed, rows carrying Identity Protection risk events
    _rows_by_ip: Mapping[str, Sequence[SignIn]] = field(default_factory=dict, repr=False, compare=False)
    #: Each address parsed once per picture (`address`): a user has thousands of rows but few addresses.
    _addresses: dict[str, Address | None] = field(default_factory=dict, repr=False, compare=False)
    #: Each address's site (`site`) once per picture: rules ask it of every token-only row.
    _sites: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def rows_from(self, ips: Iterable[str]) -> Iterator[SignIn]:
        """The successful rows of the given IPs: a rule about a few addresses need not walk every row."""
        for ip in ips:
            yield from self._rows_by_ip.get(ip, ())

    def address(self, ip: str) -> Address | None:
        """`ip` parsed (None when it is not an address: anonymised or malformed), once per picture."""
        return parsed(ip, self._addresses)

    def familiar(self, ip: str) -> bool:
        """Whether a successful sign-in came from `ip` on a network the user is known on."""
        return ip in self.ips and ip not in self.unfamiliar

    def own_device(self, signin: SignIn) -> bool:
        """
        The sign-in came from a device the user had before or one Entra reports compliant (managed
        by the organisation, e.g. a Cloud PC): not a token lifted off it. Compliance is Entra's
        verdict, not the client's claim.
        """
        return bool(signin.device_id) and (signin.device_id in self.reference.device_ids or signin.is_compliant is True)

    def new_device(self, signin: SignIn) -> bool:
        """The sign-in carries no device, or one the user's reference does not know."""
        return not signin.device_id or signin.device_id not in self.reference.device_ids

    def birthplace(self, session_id: str) -> str | None:
        """
        The address where the session was born with fresh credentials (its first sign-in is an
        interactive password, MFA or passwordless sign-in, not a claim carried in a token), or None.
        """
        start = self.starts.get(session_id)
        return start.ip if start is not None and fresh(start) else None

    def known_site(self, ip: str) -> bool:
        """Whether `ip` is, or sits in the same /24 (/48) as, an address of the user's reference."""
        return ip in self.reference.ips or self.site(ip) in self.known_sites

    def site(self, ip: str) -> str:
        """`site(ip)`, each address parsed once per picture."""
        return site(ip, self._addresses, self._sites)

    def label(self, ip: str) -> str:
        """The IP with what is known about its network (`IpFacts.label`), or the bare IP."""
        facts = self.ips.get(ip)
        return facts.label() if facts is not None else ip


def _network_known(reference: Reference, ip: str, asns: Iterable[int], countries: Iterable[str]) -> bool:
    """An IP the user is known on: seen before, or inside an AS and country the user is known in."""
    if ip in reference.ips:
        return True
    # A cloud, hosting provider or commercial VPN is shared by anyone who pays: the user's history
    # there vouches for the addresses the user used, not for the whole AS.
    known_asn = any(a in reference.asns and not networks.shared_infrastructure(a) for a in asns)
    if not known_asn:
        return False
    return all(c in reference.countries for c in countries if c)


def _families(user_agents: Iterable[str]) -> frozenset[str]:
    return frozenset(f for f in (networks.scripted_client(ua) for ua in user_agents) if f)


def _baseline_reference(evidence: UserEvidence) -> Reference:
    base = evidence.baseline
    parts = [p for p in (base.interactive, base.non_interactive) if p is not None]
    hours: frozenset[int] = frozenset().union(*(p.hours for p in parts)) if parts else frozenset()
    days = max((p.days_active for p in parts), default=0)
    interactive = base.interactive
    return Reference(
        source=ReferenceSource.BASELINE,
        ips=frozenset().union(*(p.ips for p in parts)),
        asns=frozenset().union(*(p.asns for p in parts)),
        countries=frozenset(c.upper() for p in parts for c in p.countries),
        interactive_ips=interactive.ips if interactive else frozenset(),
        interactive_asns=interactive.asns if interactive else frozenset(),
        app_ids=frozenset(a.lower() for p in parts for a in p.app_ids),
        resources=frozenset().union(*(p.resources for p in parts)),
        client_families=_families(ua for p in parts for ua in p.user_agents),
        device_ids=frozenset(d.lower() for p in parts for d in p.device_ids),
        compliant_device_ids=frozenset(d.lower() for p in parts for d in p.compliant_device_ids),
        auth_protocols=frozenset(a.lower() for p in parts for a in p.auth_protocols),
        hours=hours,
        days=days,
    )


def _network_key(signin: SignIn) -> str:
    return f"AS{signin.asn}" if signin.asn is not None else f"IP{signin.ip}"


def _window_start_reference(rows: Sequence[SignIn], at: datetime) -> Reference:
    """
    With no history: the first network's sign-ins before any other network appears (and before `at`).

    The earliest row decides which network is "the user's"; if two networks start at the same moment
    nothing can be said and the reference is empty.
    """
    if not rows:
        return Reference(ReferenceSource.NONE)
    earliest = min(rows, key=lambda s: (s.first, _network_key(s), s.ip))
    home = _network_key(earliest)
    cutoff = min((s.first for s in rows if _network_key(s) != home), default=at)
    cutoff = min(cutoff, at)
    prefix = [s for s in rows if s.first < cutoff]
    if not prefix:
        return Reference(ReferenceSource.NONE)
    interactive = [s for s in prefix if s.interactive]
    return Reference(
        source=ReferenceSource.WINDOW_START,
        ips=frozenset(s.ip for s in prefix),
        asns=frozenset(s.asn for s in prefix if s.asn is not None),
        countries=frozenset(s.country for s in prefix if s.country),
        interactive_ips=frozenset(s.ip for s in interactive),
        interactive_asns=frozenset(s.asn for s in interactive if s.asn is not None),
        app_ids=frozenset(s.app_id for s in prefix if s.app_id),
        resources=frozenset(s.resource for s in prefix if s.resource),
        client_families=_families({s.user_agent for s in prefix}),
        device_ids=frozenset(s.device_id for s in prefix if s.device_id),
        compliant_device_ids=frozenset(s.device_id for s in prefix if s.device_id and s.is_compliant),
        auth_protocols=frozenset(s.auth_protocol.lower() for s in prefix if s.auth_protocol),
        until=cutoff,
    )


def reference_for(evidence: UserEvidence, rows: Sequence[SignIn]) -> Reference:
    """The baseline if the user has one, else the start of the window (see the module docstring)."""
    base = evidence.baseline
    events = sum(p.events for p in (base.interactive, base.non_interactive) if p is not None)
    if events > 0:
        return _baseline_reference(evidence)
    return _window_start_reference(rows, evidence.at)


class _Tally:
    """A mutable per-IP accumulator, used only while `picture` makes its one pass over the rows."""

    __slots__ = (
        "asns",
        "cities",
        "countries",
        "devices",
        "first",
        "interactive",
        "last",
        "non_interactive",
        "rows",
        "trusted",
    )

    def __init__(self, first: SignIn) -> None:
        self.first = first.first
        self.last = first.last
        self.interactive = 0
        self.non_interactive = 0
        self.asns: set[int] = set()
        self.countries: set[str] = set()
        self.cities: set[str] = set()
        self.devices: set[str] = set()
        self.trusted: set[str] = set()
        self.rows: list[SignIn] = []


class _Grouped:
    """
    The one pass over the evidence rows: successful and failed rows, per-IP tallies, the rows of each
    table and the rows Identity Protection flagged. Every row is visited once here; rules then read
    these groups instead of walking all rows again (a user's rows are scattered in memory, so each
    walk costs more than its arithmetic).
    """

    __slots__ = ("failed", "failed_risky", "failed_tallies", "interactive", "non_interactive", "risky", "rows", "tallies")

    def __init__(self, signins: Iterable[SignIn]) -> None:
        self.rows: list[SignIn] = []
        self.failed: list[SignIn] = []
        self.interactive: list[SignIn] = []
        self.non_interactive: list[SignIn] = []
        self.risky: list[SignIn] = []
        self.failed_risky: list[SignIn] = []
        self.tallies: dict[str, _Tally] = {}
        self.failed_tallies: dict[str, _Tally] = {}
        # One loop body for every row, the tally inlined: a function call per row cost a sixth of it.
        for s in signins:
            interactive = s.table is _INTERACTIVE
            if s.result_type in ("0", ""):
                self.rows.append(s)
                tallies = self.tallies
                (self.interactive if interactive else self.non_interactive).append(s)
                if s.risk_events:
                    self.risky.append(s)
            else:
                self.failed.append(s)
                tallies = self.failed_tallies
                if s.risk_events:
                    self.failed_risky.append(s)
            tally = tallies.get(s.ip)
            if tally is None:
                tally = tallies[s.ip] = _Tally(s)
            else:
                if s.first < tally.first:  # noqa: PLR1730 - a comparison is cheaper than min() in this hot loop
                    tally.first = s.first
                if s.last > tally.last:  # noqa: PLR1730
                    tally.last = s.last
            tally.rows.append(s)
            if interactive:
                tally.interactive += s.count
            else:
                tally.non_interactive += s.count
            if s.asn is not None:
                tally.asns.add(s.asn)
            if s.country:
                tally.countries.add(s.country)
            if s.city:
                tally.cities.add(s.city)
            if s.device_id:
                tally.devices.add(s.device_id)
            if s.trusted_networks:
                tally.trusted.update(s.trusted_networks)


def _facts(ip: str, tally: _Tally, reference: Reference, *, failures: int, succeeded: bool) -> IpFacts:
    asns, countries = frozenset(tally.asns), frozenset(tally.countries)
    return IpFacts(
        ip=ip,
        asns=asns,
        countries=countries,
        cities=frozenset(tally.cities),
        first=tally.first,
        last=tally.last,
        interactive=tally.interactive if succeeded else 0,
        non_interactive=tally.non_interactive if succeeded else 0,
        failures=failures,
        device_ids=frozenset(tally.devices),
        trusted_networks=frozenset(tally.trusted),
        familiar=_network_known(reference, ip, asns, countries),
    )


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parsed(ip: str, known: dict[str, Address | None]) -> Address | None:
    """
    `ip` as an address (None if it is not one), remembered in `known`.

    The C parser (`networks.address_value`) reads the usual forms, and the address is built from its integer:
    `ipaddress` parsing a string costs about 13 us, and a user's churning phone brings thousands of
    addresses. What it refuses (a scope id such as "fe80::1%eth0", or no address at all) is left to
    `ipaddress.ip_address`, which has the last word; tests/unit/test_networks.py holds the two to the
    same answers.
    """
    if ip in known:
        return known[ip]
    address: Address | None
    found = networks.address_value(ip)
    if found is not None:
        side, value = found
        address = ipaddress.IPv6Address(value) if side else ipaddress.IPv4Address(value)
    else:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            address = None
    known[ip] = address
    return address


def _lifted_sessions(
    rows: Sequence[SignIn],
    reference: Reference,
    known: dict[str, Address | None],
    memo: dict[str, str],
    blind: frozenset[Table] = frozenset(),
) -> dict[str, frozenset[str]]:
    """
    Sessions seen on one of the user's own devices (known or compliant) and, from other addresses,
    with no device at all: session -> those other addresses.

    An Entra session belongs to the browser or app it was issued to, whose sign-ins carry its device
    id; the same SessionId arriving without any device from an address that device never used is the
    cookie or refresh token replayed elsewhere. Not elsewhere: the session's own sites, and any
    address one of the user's own devices signed in from (a laptop's command-line tool tethered to
    the user's phone leaves through the phone's carrier address, in no site the laptop used). Rows of
    `blind` tables (whose data has no DeviceDetail or no SessionId column) never count as "no device":
    there it is an absent column. One pass, grouped by session.
    """
    on_device: dict[str, set[str]] = defaultdict(set)
    bare: dict[str, set[str]] = defaultdict(set)
    devices_at: set[str] = set()
    for s in rows:
        if s.device_id:
            if s.device_id in reference.device_ids or s.is_compliant is True:
                devices_at.add(s.ip)
                if s.session_id:
                    on_device[s.session_id].add(s.ip)
        elif s.session_id and s.table not in blind:
            bare[s.session_id].add(s.ip)
    lifted: dict[str, frozenset[str]] = {}
    for sid, device_ips in on_device.items():
        bare_ips = bare.get(sid)
        if not bare_ips:
            continue
        sites = {site(ip, known, memo) for ip in device_ips}
        elsewhere = frozenset(ip for ip in bare_ips if site(ip, known, memo) not in sites and ip not in devices_at)
        if elsewhere:
            lifted[sid] = elsewhere
    return lifted


def fresh(signin: SignIn) -> bool:
    """An interactive sign-in that asked for credentials (password and MFA, or passwordless), not one satisfied by a token."""
    return signin.table is _INTERACTIVE and not signin.token_only and signin.result_type in ("0", "")


def _start_order(s: SignIn) -> tuple[object, ...]:
    """
    Earliest first; at the same moment and address, a sign-in carrying a device before one without
    (the device was there), then every field a session's start is judged on, so that no order of the
    rows picks another start.
    """
    return (
        s.first,
        s.ip,
        not s.device_id,
        s.device_id,
        s.is_compliant is not True,
        s.table.value,
        s.token_only,
        s.result_type,
        s.operating_system,
        s.app_id,
        s.user_agent,
    )


def _starts(rows: Sequence[SignIn]) -> dict[str, SignIn]:
    """Each session's first successful sign-in (`_start_order`)."""
    starts: dict[str, SignIn] = {}
    for s in rows:
        if not s.session_id:
            continue
        first = starts.get(s.session_id)
        # (s.first, s.ip) against (first.first, first.ip), without building the two tuples per row.
        if first is None or s.first < first.first or (s.first == first.first and s.ip < first.ip):
            starts[s.session_id] = s
        elif s.first == first.first and s.ip == first.ip and _start_order(s) < _start_order(first):
            starts[s.session_id] = s  # a tie: the full order, only here, keeps the hot loop cheap
    return starts


#: Networks an AiTM proxy runs on: rented servers, commercial VPNs, clouds.
_RENTED = frozenset({networks.NetworkKind.HOSTING, networks.NetworkKind.CONSUMER_VPN, networks.NetworkKind.MICROSOFT})


def _hijacked_sessions(
    rows: Sequence[SignIn], reference: Reference, starts: Mapping[str, SignIn], blind: frozenset[Table] = frozenset()
) -> dict[str, frozenset[str]]:
    """
    Sessions born on rented infrastructure: the first sign-in asked for fresh credentials from a
    hosting provider, commercial VPN or cloud address the user never used, with none of the user's
    devices. That is where an AiTM proxy logs the victim's password and MFA; the victim's own
    address never appears in such a session, so every address new to the user that uses it is the
    attacker's, whatever network it is on (a residential proxy in the victim's own ISP included).
    Session -> those addresses, the birthplace first among them. Rows of `blind` tables (no DeviceDetail
    or SessionId column) cannot say whether they carried the user's device and are left out.
    """

    def own(s: SignIn) -> bool:
        return bool(s.device_id) and (s.device_id in reference.device_ids or s.is_compliant is True)

    born = {
        sid
        for sid, start in starts.items()
        if fresh(start) and not own(start) and start.ip not in reference.ips and networks.network_kind(start.asn) in _RENTED
    }
    if not born:
        return {}
    used: dict[str, set[str]] = defaultdict(set)
    for s in rows:
        if s.session_id in born and s.table not in blind and s.ip not in reference.ips and not own(s):
            used[s.session_id].add(s.ip)
    return {sid: frozenset(ips) for sid, ips in used.items()}


def site(ip: str, known: dict[str, Address | None] | None = None, memo: dict[str, str] | None = None) -> str:
    """
    The network an address sits in at one site: its /24 (IPv4) or /48 (IPv6), e.g. "198.51.100.0/24".
    A device's own tools (a CLI beside the browser) send no device id and leave through a sibling
    address of the same NAT pool or prefix; an attacker's address is not in it. `known` (parsed
    addresses) and `memo` (sites) spare a user's thousands of rows from parsing the same address again.
    """
    if memo is not None and ip in memo:
        return memo[ip]
    address = parsed(ip, known if known is not None else {})
    if address is None:
        found = ip
    elif address.version == 4:
        a, b, c, _ = address.packed
        found = f"{a}.{b}.{c}.0/24"
    else:
        # The /48's network address in the compressed form `IPv6Network` writes, by the C formatter: building
        # the network in Python cost 10 us an address (tests/unit/test_networks.py holds the two equal).
        found = socket.inet_ntop(socket.AF_INET6, (int(address) >> 80 << 80).to_bytes(16, "big")) + "/48"
    if memo is not None:
        memo[ip] = found
    return found


def picture(evidence: UserEvidence) -> Picture:
    """Group the evidence once: successful rows, per-IP facts (one pass), the reference."""
    grouped = _Grouped(evidence.signins)
    rows, failed, tallies, failed_tallies = grouped.rows, grouped.failed, grouped.tallies, grouped.failed_tallies
    interactive = grouped.interactive
    reference = reference_for(evidence, rows)

    failures = {ip: t.interactive + t.non_interactive for ip, t in failed_tallies.items()}
    facts = {ip: _facts(ip, t, reference, failures=failures.get(ip, 0), succeeded=True) for ip, t in tallies.items()}
    failed_only = {
        ip: _facts(ip, t, reference, failures=failures[ip], succeeded=False)
        for ip, t in failed_tallies.items()
        if ip not in tallies
    }
    blind = frozenset(
        Table(t.table)
        for t in evidence.coverage.tables
        if t.table in _SESSION_TABLES and _SESSION_COLUMNS.intersection(t.missing_columns)
    )
    addresses: dict[str, Address | None] = {}
    sites: dict[str, str] = {}
    lifted = _lifted_sessions(rows, reference, addresses, sites, blind)
    starts = _starts(rows)
    hijacked = _hijacked_sessions(rows, reference, starts, blind)
    taken = frozenset().union(*lifted.values(), *hijacked.values())
    return Picture(
        evidence=evidence,
        reference=reference,
        rows=tuple(rows),
        failed=tuple(failed),
        ips=facts,
        failed_only=failed_only,
        window_interactive_ips=frozenset(s.ip for s in interactive),
        window_interactive_asns=frozenset(s.asn for s in interactive if s.asn is not None),
        # An address a session was lifted or hijacked to is not the user, whatever network it is on:
        # an attacker in the victim's own ISP or carrier is still an attacker.
        unfamiliar=frozenset(ip for ip, f in facts.items() if not f.familiar) | taken,
        lifted=lifted,
        starts=starts,
        hijacked=hijacked,
        taken=taken,
        known_sites=frozenset(site(ip, addresses, sites) for ip in reference.ips),
        interactive=tuple(interactive),
        non_interactive=tuple(grouped.non_interactive),
        risky=(*grouped.risky, *grouped.failed_risky),
        _rows_by_ip={ip: t.rows for ip, t in tallies.items()},
        _addresses=addresses,
        _sites=sites,
    )
