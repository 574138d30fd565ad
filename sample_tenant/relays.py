"""
The look-alikes of the next years: privacy relays and the organisation's own security service edge.

iCloud Private Relay (Safari on a Mac or an iPhone), Cloudflare WARP and Microsoft Edge Secure Network,
and the organisation's SSE (Zscaler, Netskope, Entra Global Secure Access) put ordinary users behind
shared, anonymising-looking addresses that rotate and geolocate only roughly. What keeps them benign
in the logs is the device: every sign-in through them carries the user's own registered device.
"""

from __future__ import annotations

import random
from dataclasses import replace

from sample_tenant import addresses, catalog, routes
from sample_tenant.activity import BROWSER, DayPlan, Override, Simulation
from sample_tenant.catalog import Network
from sample_tenant.events import HOUR, MINUTE, Auth, SignIn
from sample_tenant.lookalikes import at_in_day, nearest
from sample_tenant.routes import Route
from sample_tenant.scenarios import Scenario, Script, pick_day, working
from sample_tenant.tenant import Device, Egress, User


def _pool(networks: tuple[Network, ...], country: str) -> tuple[Network, ...]:
    """The relay or edge networks in `country`, or all of them where the operator has none there."""
    return catalog.networks(networks, country) or networks


def _habit_days(scenario: Scenario, sim: Simulation, trait: str) -> range:
    """The days the user is behind the relay or edge: the whole period, or only since it was switched on."""
    rng = scenario.rng
    new = rng.random() < 0.3
    scenario.traits[trait] = new
    first = max(0, scenario.day - rng.randrange(0, 2)) if new else 0
    return range(first, sim.days)


def _laptop_with(user: User, browser: catalog.Browser, name: str, agents: tuple[str, ...], trust: str) -> User:
    """The user's laptop (same device id, so the same history) running `browser`."""
    laptop = replace(
        user.laptop,
        name=name,
        operating_system=browser.operating_system,
        browser=browser.browser,
        user_agent=browser.user_agent,
        app_agents=agents,
        trust_type=trust,
    )
    return replace(user, laptop=laptop)


def _mac(rng: random.Random, user: User) -> User:
    """The user with a Mac whose browser is Safari."""
    if user.laptop.operating_system == "MacOs" and user.laptop.browser.startswith("Safari"):
        return user
    safari = catalog.MAC_BROWSERS[rng.randrange(2)]
    name = f"MBP-{user.first_name.upper()[:6]}-{rng.randrange(1000):03d}"
    return _laptop_with(user, safari, name, catalog.MAC_NATIVE_AGENTS, "Azure AD registered")


def _iphone(rng: random.Random, user: User) -> User:
    """The user with an iPhone (same device id) whose browser is Mobile Safari."""
    if user.phone.operating_system == "Ios":
        return user
    model = catalog.PHONES[rng.randrange(2)]
    phone = replace(
        user.phone,
        name=f"{user.first_name}'s {model.model}",
        operating_system=model.operating_system,
        browser=model.browser,
        user_agent=model.user_agent,
        app_agents=(model.app_agent,),
    )
    return replace(user, phone=phone)


def _edge(rng: random.Random, user: User) -> User:
    """The user with a Windows laptop browsing in Microsoft Edge."""
    if user.laptop.windows and user.laptop.browser.startswith("Edge"):
        return user
    edge = catalog.WINDOWS_BROWSERS[rng.randrange(3)]
    name = f"LT-{user.office.place.city[:3].upper()}-{rng.randrange(10000):04d}"
    return _laptop_with(user, edge, name, catalog.WINDOWS_NATIVE_AGENTS, "Azure AD joined")


def _browsing(sim: Simulation, rng: random.Random, start: int, route: Route, device: Device) -> None:
    """A few minutes of a phone's browser through `route`: a single sign-on to Outlook on the web, then its refreshes."""
    session = sim.phone_session(start)
    sim.events.append(
        SignIn(
            start,
            True,
            route(rng, start),
            session,
            catalog.ONE_OUTLOOK_WEB,
            catalog.EXCHANGE,
            device,
            device.user_agent,
            BROWSER,
            Auth.SSO,
        )
    )
    t = start
    for _ in range(rng.randrange(1, 5)):
        t += int(rng.uniform(4, 25) * MINUTE)
        sim.events.append(
            SignIn(
                t,
                False,
                route(rng, t),
                session,
                catalog.ONE_OUTLOOK_WEB,
                catalog.EXCHANGE,
                device,
                device.user_agent,
                BROWSER,
                Auth.CLAIM,
                incoming="refreshToken",
            )
        )


def _at_home(scenario: Scenario, sim: Simulation, plan: DayPlan, *, line: bool = True) -> DayPlan:
    """On the incident day, a working day at home (`line`: the laptop on the home line); other days unchanged."""
    if plan.day != scenario.day:
        return plan
    if not line:
        return replace(working(plan, sim, scenario.rng), at_office=False)
    home = routes.home(scenario.rng, sim.user, plan.day)
    return replace(working(plan, sim, scenario.rng), at_office=False, laptop_route=home)


def _kept(scenario: Scenario, plan: DayPlan) -> DayPlan:
    """`plan`, remembered as the scenario's plan when it is the incident day's."""
    if plan.day == scenario.day:
        scenario.plan = plan
    return plan


def _explained_by(networks: tuple[Network, ...]) -> frozenset[int]:
    return frozenset(n.asn for n in networks)


class PrivateRelay(Script):
    """
    iCloud Private Relay: Safari on the user's Mac, or Mobile Safari on their iPhone, leaves through
    Apple's relay partners (Akamai, Cloudflare, Fastly) while the native apps do not; the Mac's or the
    iPhone's device id is on every sign-in. Some offices block the relay.
    """

    def adapt(self, scenario: Scenario, user: User) -> User:
        rng = scenario.rng
        variant = "mac_safari" if rng.random() < 0.55 else "iphone_safari"
        scenario.traits["variant"] = variant
        return _mac(rng, user) if variant == "mac_safari" else _iphone(rng, user)

    def overrides(self, scenario: Scenario, sim: Simulation) -> dict[int, Override]:
        rng = scenario.rng
        scenario.day = pick_day(scenario, sim, history_days=2)
        days = _habit_days(scenario, sim, "relay_new")
        relay = routes.Rotating(_pool(catalog.ICLOUD_PRIVATE_RELAY, sim.user.country), rng.uniform(15, 60), 0.4)
        scenario.state["relay"] = relay
        office_blocks = rng.random() < 0.4
        scenario.traits["office_blocks_relay"] = office_blocks
        mac = scenario.traits["variant"] == "mac_safari"

        def override(plan: DayPlan) -> DayPlan:
            plan = _at_home(scenario, sim, plan)
            if mac and not (plan.at_office and office_blocks):
                plan = replace(plan, browser_route=relay)
            return _kept(scenario, plan)

        return dict.fromkeys((*days, scenario.day), override)

    def play(self, scenario: Scenario, sim: Simulation) -> None:
        rng = scenario.rng
        relay: Route = scenario.state["relay"]
        asns = _explained_by(catalog.ICLOUD_PRIVATE_RELAY)
        scenario.explains = lambda event: event.egress.asn in asns
        if scenario.traits["variant"] == "iphone_safari":
            first = scenario.day if scenario.traits["relay_new"] else 0
            for day in range(first, sim.days):
                for _ in range(rng.randrange(1, 4)):
                    _browsing(sim, rng, sim.midnight(day) + int(rng.uniform(7.5, 22.5) * HOUR), relay, sim.user.phone)
        scenario.at = at_in_day(scenario)
        scenario.incident_ip = nearest(scenario, sim, {e.egress.ip for e in sim.events if e.egress.asn in asns})


class ConsumerRelay(Script):
    """
    Cloudflare WARP on the whole laptop (and sometimes the phone), or Microsoft Edge Secure Network in
    the browser only: Cloudflare's addresses, rotating, placed at Cloudflare's data centres.
    """

    def adapt(self, scenario: Scenario, user: User) -> User:
        rng = scenario.rng
        variant = "warp" if rng.random() < 0.5 else "edge_secure_network"
        scenario.traits["variant"] = variant
        return user if variant == "warp" else _edge(rng, user)

    def overrides(self, scenario: Scenario, sim: Simulation) -> dict[int, Override]:
        rng = scenario.rng
        scenario.day = pick_day(scenario, sim, history_days=2)
        days = _habit_days(scenario, sim, "relay_new")
        relay = routes.Rotating(_pool(catalog.CLOUDFLARE_WARP, sim.user.country), rng.uniform(20, 90))
        warp = scenario.traits["variant"] == "warp"
        phone_too = warp and rng.random() < 0.4
        scenario.traits["phone_on_warp"] = phone_too

        def override(plan: DayPlan) -> DayPlan:
            plan = _at_home(scenario, sim, plan)
            if not plan.at_office:
                plan = replace(plan, laptop_route=relay) if warp else replace(plan, browser_route=relay)
            if phone_too:
                plan = replace(plan, phone_home=relay, phone_out=relay, phone_day=plan.phone_day if plan.at_office else relay)
            return _kept(scenario, plan)

        return dict.fromkeys((*days, scenario.day), override)

    def play(self, scenario: Scenario, sim: Simulation) -> None:
        asns = _explained_by(catalog.CLOUDFLARE_WARP)
        scenario.explains = lambda event: event.egress.asn in asns
        scenario.at = at_in_day(scenario)
        scenario.incident_ip = nearest(scenario, sim, {e.egress.ip for e in sim.events if e.egress.asn in asns})


class OrganisationSse(Script):
    """
    The organisation's security service edge (REPLAY_SSE_PROVIDER): the managed laptop's traffic leaves
    through the provider's service edge nearest the user (Zscaler, Netskope, or Entra Global Secure
    Access from Microsoft's network), sometimes a second edge abroad when the first is busy; from some
    offices it goes direct. Some users were only just moved onto it.
    """

    def overrides(self, scenario: Scenario, sim: Simulation) -> dict[int, Override]:
        rng, user, tenant = scenario.rng, sim.user, sim.tenant
        scenario.day = pick_day(scenario, sim, history_days=2)
        days = _habit_days(scenario, sim, "sse_new")
        edges = catalog.SECURITY_SERVICE_EDGES[tenant.sse.provider]
        nearest_edge = next((n for n in edges if n.country == user.country), edges[0])
        block = tenant.sse.dedicated or nearest_edge.v4
        place = catalog.place_in(nearest_edge.country, nearest_edge.city)
        egress = Egress(addresses.random_host(rng, block), nearest_edge.asn, place)
        route: Route = routes.Fixed(egress)
        if rng.random() < 0.25 and len(edges) > 1:
            other = rng.choice([n for n in edges if n is not nearest_edge])
            spare = Egress(
                addresses.random_host(rng, tenant.sse.dedicated or other.v4),
                other.asn,
                catalog.place_in(other.country, other.city),
            )
            route = routes.Mixed((route, routes.Fixed(spare)), (0.75, 0.25))
            scenario.traits["second_edge"] = other.country
        direct_at_office = rng.random() < 0.5
        scenario.traits.update(
            provider=tenant.sse.provider, dedicated=bool(tenant.sse.dedicated), direct_at_office=direct_at_office
        )
        scenario.state["sse_asns"] = frozenset(n.asn for n in edges)

        def override(plan: DayPlan) -> DayPlan:
            plan = _at_home(scenario, sim, plan, line=False)
            if not (plan.at_office and direct_at_office):
                plan = replace(plan, laptop_route=route)
            return _kept(scenario, plan)

        return dict.fromkeys((*days, scenario.day), override)

    def play(self, scenario: Scenario, sim: Simulation) -> None:
        laptop = sim.user.laptop.device_id
        edge_ips = {
            e.egress.ip for e in sim.events if e.device.device_id == laptop and e.egress.asn in scenario.state["sse_asns"]
        }
        scenario.explains = lambda event: event.egress.ip in edge_ips
        scenario.at = at_in_day(scenario)
        scenario.incident_ip = nearest(scenario, sim, edge_ips)
