"""
Static knowledge about networks and clients that the scorer reads: facts, not settings.

Every table names where its facts come from. The lists are deliberately short and conservative: a
missing entry costs a little recall or leaves one explanation unsaid, a wrong entry would explain away
an attacker or accuse a user. Organisation-specific knowledge (corporate ranges, the VPN egress, ASNs
the organisation trusts) is not here: it comes from settings.
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import Final


class NetworkKind(StrEnum):
    """What kind of operator announces an ASN, as far as these tables know."""

    MICROSOFT = "microsoft"
    CONSUMER_VPN = "consumer_vpn"
    HOSTING = "hosting"
    MOBILE_CARRIER = "mobile_carrier"
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


def network_kind(asn: int | None) -> NetworkKind:
    """Classify an ASN by the tables above; an ASN in none of them is `UNKNOWN`, not benign."""
    if asn is None:
        return NetworkKind.UNKNOWN
    if asn in MICROSOFT_ASNS:
        return NetworkKind.MICROSOFT
    if asn in CONSUMER_VPN_ASNS:
        return NetworkKind.CONSUMER_VPN
    if asn in HOSTING_ASNS:
        return NetworkKind.HOSTING
    if asn in MOBILE_CARRIER_ASNS or asn in MIXED_OPERATOR_ASNS:
        return NetworkKind.MOBILE_CARRIER
    return NetworkKind.UNKNOWN


def operator_name(asn: int | None) -> str:
    """The operator's name from the tables, or "" when the ASN is in none of them."""
    if asn is None:
        return ""
    for table in (MICROSOFT_ASNS, CONSUMER_VPN_ASNS, HOSTING_ASNS, MOBILE_CARRIER_ASNS, MIXED_OPERATOR_ASNS):
        if asn in table:
            return table[asn]
    return ""


#: Networks shared by anyone who pays: knowing the user was on one says nothing about who is on it now.
SHARED_INFRASTRUCTURE: Final[frozenset[NetworkKind]] = frozenset(
    {NetworkKind.MICROSOFT, NetworkKind.CONSUMER_VPN, NetworkKind.HOSTING}
)

#: Operating systems of phones and tablets: their address is wherever their carrier routes them.
_HANDHELD = ("ios", "ipados", "android", "windows phone")


def shared_infrastructure(asn: int | None) -> bool:
    """Whether the AS is a cloud, hosting provider or commercial VPN (see `SHARED_INFRASTRUCTURE`)."""
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
