"""
Static knowledge about networks and clients that the scorer reads: facts, not settings.

Every table names where its facts come from. The lists are deliberately short and conservative: a
missing entry costs a little recall or leaves one explanation unsaid, a wrong entry would explain away
an attacker or accuse a user. Organisation-specific knowledge (corporate ranges, the VPN egress, ASNs
the organisation trusts) is not here: it comes from settings.
"""

from __future__ import annotations

import bisect
import gzip
import ipaddress
import re
import socket
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Final


class NetworkKind(StrEnum):
    """What kind of operator announces an ASN, as far as these tables know."""

    MICROSOFT = "microsoft"
    CONSUMER_VPN = "consumer_vpn"
    HOSTING = "hosting"
    MOBILE_CARRIER = "mobile_carrier"
    PRIVACY_RELAY = "privacy_relay"
    SECURITY_SERVICE_EDGE = "security_service_edge"
    UNKNOWN = "unknown"


#: Microsoft's own networks: sign-ins from them are Microsoft services acting for the user (Exchange
#: Online, Cloud PC / Windows 365, Edge Secure Network) rather than a new place the user went.
#: Source: RIR WHOIS "Microsoft Corporation" (AS8068-AS8075 as tracked from RIPEstat by
#: aalex954/MSFT-IP-Tracker); AS3598 and AS12076 per the project's field survey (Elastic excludes
#: MICROSOFT-CORP-MSN-AS-BLOCK, AS8075, from its session rules for the same reason).
MICROSOFT_ASNS: Final[dict[int, str]] = {
    3598: "MICROSOFT-CORP-AS",
    8068: "Microsoft Corporation",
    8069: "Microsoft Corporation",
    8070: "Microsoft Corporation",
    8071: "Microsoft Corporation",
    8072: "Microsoft Corporation",
    8073: "Microsoft Corporation",
    8074: "Microsoft Corporation",
    8075: "MICROSOFT-CORP-MSN-AS-BLOCK",
    12076: "Microsoft Corporation (Azure ExpressRoute)",
}

#: Commercial VPN operators: anonymising egress the public can buy, never an organisation's own VPN.
#: Source: RIR WHOIS organisation names, cross-checked against bountyyfi/bad-asn-list all.txt (MIT).
CONSUMER_VPN_ASNS: Final[dict[int, str]] = {
    9009: "M247 (hosts many VPN brands)",
    16247: "M247 Ltd",
    39351: "31173 Services AB (Mullvad)",
    60068: "Datacamp Limited (CDN77, VPN egress)",
    136787: "TEFINCOM S.A. (NordVPN)",
    141039: "Packethub S.A. (NordVPN)",
    147049: "PacketHub S.A. (NordVPN)",
    207137: "PacketHub S.A. (NordVPN)",
    209103: "Proton AG (Proton VPN)",
    212238: "Datacamp Limited (VPN egress)",
}

#: Hosting, VPS and public-cloud providers: rented servers, where replayed tokens are typically used from.
#: Source: RIR WHOIS organisation names, cross-checked against bountyyfi/bad-asn-list all.txt (MIT) and
#: znixbtw/cloudflare-firewall-rules block-rules/ASNs.md (cloud providers).
#: Microsoft's Azure ASN is deliberately not here: it is in MICROSOFT_ASNS and handled there.
HOSTING_ASNS: Final[dict[int, str]] = {
    8100: "QuadraNet Enterprises",
    8560: "IONOS SE",
    12876: "Online S.A.S. (Scaleway)",
    14061: "DigitalOcean",
    14618: "Amazon (AWS)",
    15169: "Google LLC",
    16276: "OVH SAS",
    16509: "Amazon (AWS)",
    20473: "The Constant Company (Vultr)",
    24940: "Hetzner Online GmbH",
    31898: "Oracle Cloud",
    36351: "IBM Cloud (SoftLayer)",
    36352: "ColoCrossing",
    37963: "Alibaba Cloud (Hangzhou Alibaba Advertising)",
    40676: "Psychz Networks",
    45090: "Tencent Cloud (Shenzhen Tencent Computer Systems)",
    45102: "Alibaba (US) Technology",
    47583: "Hostinger International",
    51167: "Contabo GmbH",
    60781: "LeaseWeb Netherlands",
    62240: "Clouvider",
    63949: "Akamai Technologies (Linode)",
    132203: "Tencent Cloud",
    136907: "Huawei Cloud",
    203020: "HostRoyale Technologies",
    396982: "Google LLC (Google Cloud)",
}

#: Mobile network operators whose AS carries (almost) only mobile customers: their addresses churn
#: between sign-ins and geolocate to a gateway, and roaming phones are routed home through them, so
#: an address here says nothing about where the person is.
#: Source: RIR WHOIS (ARIN, RIPE NCC, APNIC, AFRINIC) registrations of each operator's mobile ASN.
MOBILE_CARRIER_ASNS: Final[dict[int, str]] = {
    6167: "Cellco Partnership (Verizon Wireless)",
    9605: "NTT DOCOMO",
    12576: "EE Limited",
    20057: "AT&T Mobility",
    21928: "T-Mobile USA",
    22394: "Cellco Partnership (Verizon Wireless)",
    25135: "Vodafone UK",
    29465: "MTN Nigeria",
    35228: "Telefonica UK (O2)",
    36873: "Airtel Networks Nigeria",
    45609: "Bharti Airtel (mobile)",
    51207: "Free Mobile",
    55836: "Reliance Jio",
    206067: "Hutchison 3G UK (Three)",
}

#: Operators that announce mobile and fixed-line customers from one AS: a new address inside the
#: user's usual one is ordinary churn, but an address here may also be a home broadband line.
#: Source: RIR WHOIS registrations; the mobile ranges of these operators are announced by these ASes.
MIXED_OPERATOR_ASNS: Final[dict[int, str]] = {
    812: "Rogers Communications",
    1136: "KPN",
    1221: "Telstra",
    1267: "Wind Tre",
    2119: "Telenor Norge",
    2860: "NOS Comunicacoes",
    3209: "Vodafone GmbH",
    3215: "Orange France",
    3243: "MEO (Altice Portugal)",
    3269: "Telecom Italia",
    3292: "TDC",
    3301: "Telia Sverige",
    3303: "Swisscom",
    3320: "Deutsche Telekom",
    3352: "Telefonica de Espana",
    5410: "Bouygues Telecom",
    5432: "Proximus",
    5617: "Orange Polska",
    6805: "Telefonica Germany (O2)",
    8447: "A1 Telekom Austria",
    12430: "Vodafone Espana",
    12479: "Orange Espagne",
    15557: "SFR",
    30722: "Vodafone Italia",
    31615: "T-Mobile Netherlands (Odido)",
    33915: "Vodafone Libertel",
}

#: Operators whose addresses carry consumer privacy relays: iCloud Private Relay (Safari and Mail on
#: Apple devices), Cloudflare WARP and Microsoft Edge Secure Network (powered by Cloudflare). Anyone's
#: traffic leaves from them, geolocated only roughly; which addresses are relay egress is decided by the
#: published lists below, the ASN only says the operator carries relays.
#: Source: Apple, "Prepare your network or web server for iCloud Private Relay" (egress partners Akamai,
#: Cloudflare and Fastly) and RIR WHOIS of each ASN; AS36183 announces only Private Relay egress.
PRIVACY_RELAY_ASNS: Final[dict[int, str]] = {
    13335: "Cloudflare (WARP, Edge Secure Network, iCloud Private Relay)",
    36183: "Akamai (iCloud Private Relay egress)",
    54113: "Fastly (iCloud Private Relay egress)",
}

#: Security service edges (SSE/SASE) that proxy an organisation's devices to the internet: every
#: customer's users leave from the same service edges, so an address here says which provider, not
#: which organisation. An organisation names its own in REPLAY_SSE_PROVIDER.
#: Source: the providers' registered ASNs as listed by rezmoss/cloud-provider-ip-addresses (zscaler/README,
#: "derived from live BGP announcements of Zscaler's officially registered ASNs", 2026-07-26) and RIR
#: WHOIS (NETSKOPE, Netskope Inc, AS55256, as-set AS-NETSKOPE).
SSE_ASNS: Final[dict[int, str]] = {
    22616: "Zscaler",
    53444: "Zscaler",
    53813: "Zscaler",
    62907: "Zscaler",
    55256: "Netskope",
}


@dataclass(frozen=True, slots=True)
class SseProvider:
    """A security service edge an organisation can name in REPLAY_SSE_PROVIDER, and the ASNs its traffic leaves from."""

    name: str
    asns: frozenset[int]


#: REPLAY_SSE_PROVIDER's values. Microsoft Entra Global Secure Access egresses from Microsoft's own ASNs
#: (unless the tenant restores the source IP, in which case the user's own address is logged);
#: Cloudflare One from Cloudflare's. None of them publishes its egress addresses as a list that could
#: be shipped (Zscaler's service-edge ranges are served live at config.zscaler.com, per cloud): an
#: organisation with dedicated egress addresses lists them in REPLAY_SSE_CIDRS.
SSE_PROVIDERS: Final[dict[str, SseProvider]] = {
    "zscaler": SseProvider("Zscaler", frozenset(a for a, name in SSE_ASNS.items() if name == "Zscaler")),
    "netskope": SseProvider("Netskope", frozenset(a for a, name in SSE_ASNS.items() if name == "Netskope")),
    "entra_gsa": SseProvider("Microsoft Entra Global Secure Access", frozenset(MICROSOFT_ASNS)),
    "cloudflare_one": SseProvider("Cloudflare One", frozenset({13335})),
}

#: First-party public clients that anyone can sign in with, no app registration needed; the family
#: of client ids that share refresh tokens (FOCI) and the tools token thieves replay with.
#: Source: Microsoft Learn "Verify first-party Microsoft applications in sign-in reports" and the
#: client-id lists published with the FOCI research (secureworks/family-of-client-ids-research).
FIRST_PARTY_PUBLIC_CLIENTS: Final[dict[str, str]] = {
    "04b07795-8ddb-461a-bbee-02f9e1bf7b46": "Microsoft Azure CLI",
    "1950a258-227b-4e31-a9cf-717495945fc2": "Microsoft Azure PowerShell",
    "1b730954-1685-4b74-9bfd-dac224a7b894": "Azure Active Directory PowerShell",
    "14d82eec-204b-4c2f-b7e8-296a70dab67e": "Microsoft Graph Command Line Tools",
    "de8bc8b5-d9f9-48b1-a8ad-b748da725064": "Graph Explorer",
    "d3590ed6-52b3-4102-aeff-aad2292ab01c": "Microsoft Office",
    "1fec8e78-bce4-4aaf-ab1b-5451cc387264": "Microsoft Teams",
    "27922004-5251-4030-b22d-91ecd9a37ea4": "Outlook Mobile",
    "29d9ed98-a469-4536-ade2-f981bc1d605e": "Microsoft Authentication Broker",
    "0ec893e0-5785-4de6-99da-4ed124e5296c": "Office UWP PWA",
    "872cd9fa-d31f-45e0-9eab-6e460a02d1f1": "Visual Studio",
    "9ba1a5c7-f17a-4de9-a1f1-6178c8d51223": "Microsoft Intune Company Portal",
    "ab9b8c07-8f02-4f72-87fa-80105867a763": "OneDrive SyncEngine",
}

#: User agents that scripts and HTTP libraries send by default; a person's browser or Office app
#: never does. Source: each library's default User-Agent as written in its own source (requests
#: `default_user_agent`, urllib `Python-urllib/x.y`, Go net/http `Go-http-client/1.1`, curl, Wget,
#: PowerShell `WindowsPowerShell/` and `PowerShell/`, aiohttp, httpx, Java `Java/`, okhttp, axios,
#: node-fetch, libwww-perl).
SCRIPTED_USER_AGENTS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    ("python-requests", re.compile(r"python-requests/", re.IGNORECASE)),
    ("python-urllib", re.compile(r"python-urllib/", re.IGNORECASE)),
    ("python-aiohttp", re.compile(r"aiohttp/", re.IGNORECASE)),
    ("python-httpx", re.compile(r"python-httpx/", re.IGNORECASE)),
    ("go-http-client", re.compile(r"go-http-client/", re.IGNORECASE)),
    ("curl", re.compile(r"(?:^|\s)curl/", re.IGNORECASE)),
    ("wget", re.compile(r"(?:^|\s)wget/", re.IGNORECASE)),
    ("powershell", re.compile(r"(?:windows)?powershell/", re.IGNORECASE)),
    ("java", re.compile(r"^java/", re.IGNORECASE)),
    ("okhttp", re.compile(r"okhttp/", re.IGNORECASE)),
    ("axios", re.compile(r"axios/", re.IGNORECASE)),
    ("node-fetch", re.compile(r"node-fetch", re.IGNORECASE)),
    ("libwww-perl", re.compile(r"libwww-perl/", re.IGNORECASE)),
)


def _kinds_by_asn() -> dict[int, NetworkKind]:
    """Each listed ASN's kind; where tables overlap, the first of this order wins (Microsoft before all)."""
    kinds: dict[int, NetworkKind] = {}
    for table, kind in (
        (MICROSOFT_ASNS, NetworkKind.MICROSOFT),
        (CONSUMER_VPN_ASNS, NetworkKind.CONSUMER_VPN),
        (HOSTING_ASNS, NetworkKind.HOSTING),
        (MOBILE_CARRIER_ASNS, NetworkKind.MOBILE_CARRIER),
        (MIXED_OPERATOR_ASNS, NetworkKind.MOBILE_CARRIER),
        (PRIVACY_RELAY_ASNS, NetworkKind.PRIVACY_RELAY),
        (SSE_ASNS, NetworkKind.SECURITY_SERVICE_EDGE),
    ):
        for asn in table:
            kinds.setdefault(asn, kind)
    return kinds


#: One lookup per classification: rules classify every ASN of every address, and on Python 3.11 each
#: `NetworkKind.MEMBER` read is a descriptor call (about 0.2 us).
_KIND_BY_ASN: Final[dict[int, NetworkKind]] = _kinds_by_asn()
_UNKNOWN: Final = NetworkKind.UNKNOWN


def network_kind(asn: int | None) -> NetworkKind:
    """Classify an ASN by the tables above; an ASN in none of them (or None) is `UNKNOWN`, not benign."""
    return _KIND_BY_ASN.get(asn, _UNKNOWN) if asn is not None else _UNKNOWN


def operator_name(asn: int | None) -> str:
    """The operator's name from the tables, or "" when the ASN is in none of them."""
    if asn is None:
        return ""
    for table in (
        MICROSOFT_ASNS,
        CONSUMER_VPN_ASNS,
        HOSTING_ASNS,
        MOBILE_CARRIER_ASNS,
        MIXED_OPERATOR_ASNS,
        PRIVACY_RELAY_ASNS,
        SSE_ASNS,
    ):
        if asn in table:
            return table[asn]
    return ""


#: Networks shared by anyone who pays: knowing the user was on one says nothing about who is on it now.
SHARED_INFRASTRUCTURE: Final[frozenset[NetworkKind]] = frozenset(
    {
        NetworkKind.MICROSOFT,
        NetworkKind.CONSUMER_VPN,
        NetworkKind.HOSTING,
        NetworkKind.PRIVACY_RELAY,
        NetworkKind.SECURITY_SERVICE_EDGE,
    }
)

#: Operating systems of phones and tablets: their address is wherever their carrier routes them.
_HANDHELD = ("ios", "ipados", "android", "windows phone")


def shared_infrastructure(asn: int | None) -> bool:
    """Whether the AS is a cloud, hosting provider, commercial VPN, privacy relay or SSE (see `SHARED_INFRASTRUCTURE`)."""
    return network_kind(asn) in SHARED_INFRASTRUCTURE


def handheld(operating_system: str) -> bool:
    """Whether a sign-in's operating system is a phone's or a tablet's."""
    lowered = operating_system.lower()
    return any(lowered.startswith(name) for name in _HANDHELD)


def scripted_client(user_agent: str) -> str | None:
    """
    The scripting family a user agent belongs to ("python-requests", "curl", ...), or None.

    An empty user agent is not classified here: it is normal for many non-interactive service
    sign-ins, so whether it matters depends on the sign-in, which is the signal's decision.
    """
    if not user_agent:
        return None
    for family, pattern in SCRIPTED_USER_AGENTS:
        if pattern.search(user_agent):
            return family
    return None


def in_networks(ip: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    """Whether `ip` lies in one of `networks`; an unparseable address lies in none."""
    if not networks:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address.version == net.version and address in net for net in networks)


# ----------------------------------------------------------------------------------------------------
# Published egress lists, shipped as data
# ----------------------------------------------------------------------------------------------------

#: The shipped lists by file name (enrichment/egress_lists/NAME.txt.gz) -> what they list. Each file names
#: its source and the date it was taken in its header; rebuild one from the publisher's file with
#: `python scripts/egress_lists.py`. Apple publishes iCloud Private Relay's egress ranges; Cloudflare
#: publishes only its anycast edge ranges, not where WARP or Edge Secure Network traffic leaves from, so
#: those relays are recognised by Cloudflare's ASN (see `relay`).
EGRESS_FOLDER: Final[Path] = Path(__file__).resolve().parents[1] / "egress_lists"
EGRESS_LISTS: Final[dict[str, str]] = {"icloud-private-relay": "iCloud Private Relay"}


@dataclass(frozen=True, slots=True)
class EgressList:
    """One published egress list: who it lists, where it came from, when it was taken, its ranges."""

    name: str
    operator: str
    source: str
    retrieved: str
    starts: tuple[tuple[int, ...], tuple[int, ...]]  # per IP version (4, 6): sorted first addresses
    ends: tuple[tuple[int, ...], tuple[int, ...]]  # the matching last addresses

    def contains(self, ip: str) -> bool:
        """Whether `ip` is inside one of the list's prefixes; an unparseable address never is."""
        parsed = address_value(ip)
        if parsed is None:
            return False
        side, value = parsed
        index = bisect.bisect_right(self.starts[side], value) - 1
        return index >= 0 and value <= self.ends[side][index]


def address_value(ip: str) -> tuple[int, int] | None:
    """
    (0 for IPv4 or 1 for IPv6, the address as an integer), or None when the C parser (`inet_pton`)
    refuses `ip`: a fraction of what `ipaddress` costs, for lookups made per address.
    """
    family, side = (socket.AF_INET6, 1) if ":" in ip else (socket.AF_INET, 0)
    try:
        return side, int.from_bytes(socket.inet_pton(family, ip), "big")
    except (OSError, ValueError):
        return None


@cache
def egress_list(name: str) -> EgressList:
    """
    A shipped list, read once per process on first use (static package data, like a constant table).

    Lazily: importing this module stays cheap, and only a triage that meets a relay operator's
    address pays the few milliseconds of reading it.
    """
    header: dict[str, str] = {}
    spans: tuple[list[tuple[int, int]], list[tuple[int, int]]] = ([], [])
    text = gzip.decompress((EGRESS_FOLDER / f"{name}.txt.gz").read_bytes()).decode("ascii")
    for line in text.splitlines():
        if line.startswith("#"):
            key, _, value = line[1:].partition(":")
            header[key.strip()] = value.strip()
            continue
        address, _, length = line.partition("/")
        parsed = address_value(address)
        if parsed is None:
            msg = f"{name}: {line!r} is not an address prefix"
            raise ValueError(msg)
        side, first = parsed
        spans[side].append((first, first + (1 << ((32 if side == 0 else 128) - int(length))) - 1))
    for found in spans:
        found.sort()
    return EgressList(
        name=name,
        operator=EGRESS_LISTS[name],
        source=header.get("source", ""),
        retrieved=header.get("retrieved", ""),
        starts=(tuple(a for a, _ in spans[0]), tuple(a for a, _ in spans[1])),
        ends=(tuple(b for _, b in spans[0]), tuple(b for _, b in spans[1])),
    )


@dataclass(frozen=True, slots=True)
class Relay:
    """A privacy relay an address belongs to, and what says so (a published list, or the operator's ASN)."""

    operator: str
    evidence: str


#: Relay operators whose ASN carries nothing but relay egress, or whose relay egress is published nowhere.
_RELAY_BY_ASN: Final[dict[int, str]] = {
    13335: "Cloudflare WARP or Microsoft Edge Secure Network",
    36183: "iCloud Private Relay",
}


def relay(ip: str, asn: int | None) -> Relay | None:
    """
    The privacy relay `ip` leaves from, or None.

    Only addresses announced by a relay operator's ASN are looked up, so a triage that never meets
    one never reads the lists. An address on Apple's published list is iCloud Private Relay whatever
    operator carries it; otherwise Cloudflare's ASN (WARP, Edge Secure Network: no published egress
    list) and Akamai's relay-only AS36183 still say "relay"; Fastly's CDN ASN alone does not.
    """
    if asn not in PRIVACY_RELAY_ASNS:
        return None
    for name, operator in EGRESS_LISTS.items():
        listed = egress_list(name)
        if listed.contains(ip):
            return Relay(operator, f"on {operator}'s published egress list (taken {listed.retrieved})")
    if asn in _RELAY_BY_ASN:
        return Relay(_RELAY_BY_ASN[asn], f"announced by AS{asn} {PRIVACY_RELAY_ASNS[asn]}")
    return None
