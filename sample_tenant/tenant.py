"""
The sample organisation: offices, corporate VPN, workspace and users with their homes, phones and laptops.

Built from the seed alone. Each user is drawn from a generator seeded by (seed, user index), so
asking for more users adds people without changing the ones already there, and a user's profile
never depends on how many scenarios or days were requested.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sample_tenant import addresses, catalog, ids
from sample_tenant.catalog import Network, Place


@dataclass(frozen=True, slots=True)
class Egress:
    """One public address as a sign-in row shows it: the address, its ASN, where geo-IP puts it."""

    ip: str
    asn: int
    place: Place
    named_location: str = ""


@dataclass(frozen=True, slots=True)
class Device:
    """A device as DeviceDetail describes it; `device_id` is empty for a device Entra does not know."""

    device_id: str
    name: str
    operating_system: str
    browser: str
    user_agent: str
    app_agents: tuple[str, ...]
    compliant: bool
    managed: bool
    trust_type: str

    @property
    def windows(self) -> bool:
        return self.operating_system.startswith("Windows")


@dataclass(frozen=True, slots=True)
class Office:
    """An office: its egress /28 behind one business ISP, a trusted named location in Entra."""

    name: str
    place: Place
    network: Network
    cidr: str
    utc_offset_minutes: int


@dataclass(frozen=True, slots=True)
class CorporateVpn:
    """The corporate VPN's egress: a /27 at headquarters, deliberately not a named location."""

    cidr: str
    network: Network
    place: Place


@dataclass(frozen=True, slots=True)
class User:
    """A member of staff and everything their sign-ins come from."""

    index: int
    upn: str
    user_id: str
    first_name: str
    display_name: str
    office: Office
    home_place: Place
    home_isp: Network
    home_ipv4: str
    home_ipv4_renewed: str
    home_ipv4_renewed_day: int
    home_ipv6_64: str
    carrier: Network
    carrier_places: tuple[Place, ...]
    laptop: Device
    phone: Device
    uses_vpn: bool
    office_share: float
    work_start_minute: int
    work_minutes: int
    admin_tools: bool
    phone_on_office_wifi: bool

    @property
    def utc_offset_minutes(self) -> int:
        return self.office.utc_offset_minutes

    @property
    def country(self) -> str:
        return self.office.place.country


@dataclass(frozen=True, slots=True)
class Workspace:
    """The Sentinel workspace the incidents name."""

    subscription_id: str
    resource_group: str
    name: str
    workspace_id: str

    @property
    def arm_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.OperationalInsights/workspaces/{self.name}"
        )


@dataclass(frozen=True, slots=True)
class SecurityServiceEdge:
    """
    The organisation's security service edge: the provider REPLAY_SSE_PROVIDER names and, when the
    organisation bought dedicated egress addresses, that block (REPLAY_SSE_CIDRS); its users leave
    through the provider's service edge nearest them.
    """

    provider: str
    dedicated: str = ""


@dataclass(frozen=True, slots=True)
class Tenant:
    """The organisation; `users` are in index order."""

    seed: int
    organisation: str
    domain: str
    tenant_id: str
    offices: tuple[Office, ...]
    vpn: CorporateVpn
    workspace: Workspace
    users: tuple[User, ...]
    sse: SecurityServiceEdge


def _offices(rng: random.Random) -> tuple[Office, ...]:
    hq_country = rng.choice(catalog.OFFICE_COUNTRIES)
    others = [c for c in catalog.OFFICE_COUNTRIES if c != hq_country]
    countries = [hq_country, *rng.sample(others, 2)] if rng.random() < 0.5 else [hq_country, hq_country, rng.choice(others)]
    offices: list[Office] = []
    used: set[str] = set()
    for position, code in enumerate(countries):
        country = catalog.COUNTRIES[code]
        city = country.cities[0] if position == 0 else rng.choice([p for p in country.cities if p.city not in used])
        used.add(city.city)
        network = rng.choice(catalog.networks(catalog.BUSINESS, code))
        cidr = addresses.subnet(network.v4, 28, rng.randrange(1, 4000))
        name = f"HQ {city.city}" if position == 0 else f"{city.city} Office"
        offices.append(Office(name, city, network, cidr, country.utc_offset_minutes))
    return tuple(offices)


def _vpn(rng: random.Random, hq: Office) -> CorporateVpn:
    candidates = catalog.networks(catalog.BUSINESS, hq.place.country)
    network = next((n for n in candidates if n.v4 != hq.network.v4), candidates[0])
    while True:
        cidr = addresses.subnet(network.v4, 27, rng.randrange(4001, 8000))
        if not addresses.contains(cidr, hq.cidr.split("/")[0]) and not addresses.contains(hq.cidr, cidr.split("/")[0]):
            return CorporateVpn(cidr, network, hq.place)


def _laptop(rng: random.Random, first: str, office: Office) -> Device:
    agents: tuple[str, ...]
    if rng.random() < 0.8:
        browser = rng.choice(catalog.WINDOWS_BROWSERS)
        name = f"LT-{office.place.city[:3].upper()}-{rng.randrange(10000):04d}"
        trust = "Azure AD joined" if rng.random() < 0.7 else "Hybrid Azure AD joined"
        agents = catalog.WINDOWS_NATIVE_AGENTS
    else:
        browser = rng.choice(catalog.MAC_BROWSERS)
        name = f"MBP-{first.upper()[:6]}-{rng.randrange(1000):03d}"
        trust = "Azure AD registered"
        agents = catalog.MAC_NATIVE_AGENTS
    return Device(
        device_id=ids.guid(rng),
        name=name,
        operating_system=browser.operating_system,
        browser=browser.browser,
        user_agent=browser.user_agent,
        app_agents=agents,
        compliant=True,
        managed=True,
        trust_type=trust,
    )


def _phone(rng: random.Random, first: str) -> Device:
    model = rng.choice(catalog.PHONES)
    enrolled = rng.random() < 0.6
    return Device(
        device_id=ids.guid(rng),
        name=f"{first}'s {model.model}",
        operating_system=model.operating_system,
        browser=model.browser,
        user_agent=model.user_agent,
        app_agents=(model.app_agent,),
        compliant=enrolled,
        managed=enrolled,
        trust_type="Azure AD registered",
    )


def _user(seed: int, index: int, offices: tuple[Office, ...], domain: str, taken: set[str]) -> User:
    rng = ids.generator(seed, "user", index)
    office = offices[0] if rng.random() < 0.5 else rng.choice(offices[1:])
    country = office.place.country
    first = rng.choice(catalog.FIRST_NAMES[country])
    last = rng.choice(catalog.LAST_NAMES[country])
    local = f"{first}.{last}".lower().replace(" ", "")
    candidate, suffix = local, 1
    while candidate in taken:
        suffix += 1
        candidate = f"{local}{suffix}"
    taken.add(candidate)
    cities = catalog.COUNTRIES[country].cities
    home_place = office.place if rng.random() < 0.7 else rng.choice(cities)
    isp = rng.choice(catalog.networks(catalog.RESIDENTIAL, country))
    home_ipv4 = addresses.random_host(rng, isp.v4)
    renewed = addresses.random_host(rng, isp.v4) if rng.random() < 0.25 else home_ipv4
    ipv6 = addresses.random_subnet(rng, isp.v6, 64) if isp.v6 and rng.random() < 0.6 else ""
    carrier = rng.choice(catalog.networks(catalog.MOBILE, country))
    carrier_places = tuple(dict.fromkeys((home_place, *cities[:3])))
    return User(
        index=index,
        upn=f"{candidate}@{domain}",
        user_id=ids.guid(rng),
        first_name=first,
        display_name=f"{first} {last}",
        office=office,
        home_place=home_place,
        home_isp=isp,
        home_ipv4=home_ipv4,
        home_ipv4_renewed=renewed,
        home_ipv4_renewed_day=rng.randrange(1, 30),
        home_ipv6_64=ipv6,
        carrier=carrier,
        carrier_places=carrier_places,
        laptop=_laptop(rng, first, office),
        phone=_phone(rng, first),
        uses_vpn=rng.random() < 0.3,
        office_share=rng.uniform(0.3, 0.9),
        work_start_minute=rng.randrange(7 * 60, 9 * 60 + 31),
        work_minutes=rng.randrange(450, 571),
        admin_tools=rng.random() < 0.08,
        phone_on_office_wifi=rng.random() < 0.5,
    )


def _sse(seed: int, hq: Office) -> SecurityServiceEdge:
    """The SSE, drawn from its own generator so adding it changed nothing else about an organisation."""
    rng = ids.generator(seed, "security-service-edge")
    provider = rng.choice(sorted(catalog.SECURITY_SERVICE_EDGES))
    if provider != "zscaler" or rng.random() >= 0.4:
        return SecurityServiceEdge(provider)
    edges = catalog.SECURITY_SERVICE_EDGES[provider]
    edge = next((n for n in edges if n.country == hq.place.country), edges[0])
    return SecurityServiceEdge(provider, addresses.subnet(edge.v4, 29, rng.randrange(1, 64)))


def build_tenant(seed: int, user_count: int) -> Tenant:
    """The organisation for `seed` with `user_count` users."""
    rng = ids.generator(seed, "organisation")
    organisation, domain = rng.choice(catalog.ORGANISATIONS)
    offices = _offices(rng)
    vpn = _vpn(rng, offices[0])
    short = domain.split(".")[0].replace("-", "")
    workspace = Workspace(
        subscription_id=ids.guid(rng),
        resource_group=f"rg-{short}-soc",
        name=f"law-{short}-sentinel",
        workspace_id=ids.guid(rng),
    )
    tenant_id = ids.guid(rng)
    taken: set[str] = set()
    users = tuple(_user(seed, index, offices, domain, taken) for index in range(user_count))
    return Tenant(seed, organisation, domain, tenant_id, offices, vpn, workspace, users, _sse(seed, offices[0]))
