"""
The attack families: AiTM session-cookie replay, stolen refresh-token replay, device-code phishing.

Each variant draws its own infrastructure (hosting or consumer VPN abroad or at home, residential or
mobile proxies, Azure VMs), tools, apps, timing and volume, so no single shape identifies an attack;
what stays true to the technique is the SessionId reuse, the token-only authentication, the missing
or unknown device and, for device-code phishing, the device registration and PRT that follow.
"""

from __future__ import annotations

import random

from sample_tenant import catalog, ids, routes
from sample_tenant.activity import BROWSER, NATIVE, DayPlan, Override, Simulation
from sample_tenant.catalog import App, Network, Resource
from sample_tenant.events import HOUR, MINUTE, Auth, Role, SignIn
from sample_tenant.scenarios import (
    Scenario,
    Script,
    attacker_egress,
    attacker_network,
    decoy_travel,
    pick_day,
    time_between,
    working,
)
from sample_tenant.tenant import Device, Egress, User

_RISKS = (
    ("none", ()),
    ("none", ()),
    ("low", ("unfamiliarFeatures",)),
    ("medium", ("unfamiliarFeatures",)),
    ("high", ("anomalousToken",)),
)


def _unregistered(operating_system: str, browser: str, user_agent: str) -> Device:
    """A device Entra does not know: OS and browser parsed from the agent, no id, not compliant."""
    return Device("", "", operating_system, browser, user_agent, (), compliant=False, managed=False, trust_type="")


def _workday_override(scenario: Scenario, sim: Simulation) -> dict[int, Override]:
    scenario.day = pick_day(scenario, sim)

    def override(plan: DayPlan) -> DayPlan:
        scenario.plan = working(plan, sim, scenario.rng)
        return scenario.plan

    return {scenario.day: override}


def _stolen_then_replayed(scenario: Scenario, plan: DayPlan) -> tuple[int, int]:
    """
    When a session is stolen (phished through a proxy, or taken off the laptop) and when its replay
    starts, minutes later, in or just after the victim's working day; sets the incident time after both.
    """
    rng = scenario.rng
    at = time_between(rng, plan.start + HOUR, plan.end + 2 * HOUR, scenario.earliest, scenario.latest)
    stolen = at - int(rng.uniform(20, 180) * MINUTE)
    replay = stolen + int(rng.uniform(2, max(3, min(90, (at - stolen) / MINUTE - 2))) * MINUTE)
    scenario.at = max(at, replay + MINUTE)
    return stolen, replay


def _spread(rng: random.Random, start: int, duration: int, count: int) -> list[int]:
    """`count` times in [start, start + duration], bunched the way a person or a script works."""
    return sorted(start + int(rng.betavariate(1.2, 2.0) * duration) for _ in range(count))


_LANDING: tuple[tuple[App, Resource], ...] = (
    (catalog.OFFICE_HOME, catalog.OFFICE_HOME_RESOURCE),
    (catalog.ONE_OUTLOOK_WEB, catalog.EXCHANGE),
    (catalog.OFFICE_HOME, catalog.SHAREPOINT),
)
_MAILBOX: tuple[tuple[App, Resource], ...] = (
    (catalog.ONE_OUTLOOK_WEB, catalog.EXCHANGE),
    (catalog.ONE_OUTLOOK_WEB, catalog.EXCHANGE),
    (catalog.ONE_OUTLOOK_WEB, catalog.SUBSTRATE),
    (catalog.OFFICE_HOME, catalog.GRAPH),
    (catalog.OFFICE_HOME, catalog.SHAREPOINT),
)


def replay_session(
    scenario: Scenario,
    sim: Simulation,
    *,
    session: str,
    device: Device,
    egresses: list[Egress],
    replay: int,
    risk: tuple[str, tuple[str, ...]],
) -> None:
    """
    A stolen browser session used: token-only interactive landings ("MFA requirement satisfied by claim
    in the token"), then the mailbox read through refreshes from `egresses` in turn, and sometimes an
    MFA method registered for persistence. Sets the traits `replay_rows` and `mfa_method_registered`.
    """
    rng = scenario.rng
    attacker = egresses[0]
    risk_level, risk_events = risk
    t = replay
    for app, resource in _LANDING[: rng.randrange(1, 4)]:
        sim.events.append(
            SignIn(
                t,
                True,
                attacker,
                session,
                app,
                resource,
                device,
                device.user_agent,
                BROWSER,
                Auth.SSO,
                risk_level=risk_level,
                risk_events=risk_events,
                role=Role.ATTACKER,
            )
        )
        t += int(rng.uniform(5, 90) * 1000)
    duration = int(rng.uniform(0.5, 4.5) * HOUR)
    count = rng.randrange(5, 81)
    scenario.traits["replay_rows"] = count
    for position, when in enumerate(_spread(rng, t, duration, count)):
        app, resource = _MAILBOX[rng.randrange(len(_MAILBOX))]
        egress = egresses[position % len(egresses)] if position else attacker
        sim.events.append(
            SignIn(
                when,
                False,
                egress,
                session,
                app,
                resource,
                device,
                device.user_agent,
                BROWSER,
                Auth.CLAIM,
                incoming="refreshToken",
                role=Role.ATTACKER,
            )
        )
    if rng.random() < 0.45:
        registered = replay + int(rng.uniform(5, 45) * MINUTE)
        for before, interactive, auth in ((60_000, True, Auth.SSO), (30_000, False, Auth.CLAIM)):
            sim.events.append(
                SignIn(
                    registered - before,
                    interactive,
                    attacker,
                    session,
                    catalog.MY_SIGNINS,
                    catalog.GRAPH,
                    device,
                    device.user_agent,
                    BROWSER,
                    auth,
                    incoming="none" if interactive else "refreshToken",
                    role=Role.ATTACKER,
                )
            )
        sim.security_info_registered(
            registered,
            attacker.ip,
            rng.choice(("Authenticator App", "Mobile Phone SMS", "Software OATH token")),
            Role.ATTACKER,
        )
        scenario.traits["mfa_method_registered"] = True


def proxied_sign_in(sim: Simulation, rng: random.Random, *, at: int, proxy: Egress, session: str, browser: Device) -> None:
    """
    The victim's own sign-in relayed by an AiTM proxy: password and MFA typed by the victim, logged at
    the proxy's address with the victim's browser and no device, then the proxy's first refreshes.
    """
    sim.events.append(
        SignIn(
            at,
            True,
            proxy,
            session,
            catalog.OFFICE_HOME,
            catalog.OFFICE_HOME_RESOURCE,
            browser,
            browser.user_agent,
            BROWSER,
            Auth.MFA,
            role=Role.ATTACKER,
        )
    )
    for step in range(rng.randrange(1, 4)):
        sim.events.append(
            SignIn(
                at + (step + 1) * 4000,
                False,
                proxy,
                session,
                catalog.OFFICE_HOME,
                catalog.OFFICE_HOME_RESOURCE,
                browser,
                browser.user_agent,
                BROWSER,
                Auth.CLAIM,
                incoming="refreshToken",
                role=Role.ATTACKER,
            )
        )


class AitmCookieReplay(Script):
    """
    A phishing proxy relays the victim's password and MFA and keeps the session cookie; the attacker
    replays it from elsewhere: token-only interactive sign-ins, then refreshes, same SessionId.
    """

    def overrides(self, scenario: Scenario, sim: Simulation) -> dict[int, Override]:
        return _workday_override(scenario, sim)

    def play(self, scenario: Scenario, sim: Simulation) -> None:
        rng, user, plan = scenario.rng, sim.user, scenario.plan
        assert plan is not None
        phish, replay = _stolen_then_replayed(scenario, plan)
        weights = {
            "hosting_foreign": 0.4,
            "hosting_local": 0.15,
            "vpn_local": 0.2,
            "vpn_foreign": 0.1,
            "residential_local": 0.08,
            "azure": 0.07,
        }
        network = attacker_network(rng, user, weights)
        attacker = attacker_egress(rng, network, user)
        scenario.traits.update(infrastructure=network.kind.value, attacker_asn=network.asn, attacker_country=network.country)
        session = ids.guid(rng)
        laptop = user.laptop
        victim_browser = _unregistered(laptop.operating_system, laptop.browser, laptop.user_agent)

        # The victim's own sign-in, through the proxy (logged at the proxy) or seen from their own network.
        if rng.random() < 0.55:
            proxy_network = (
                network if rng.random() < 0.3 else attacker_network(rng, user, {"hosting_foreign": 0.7, "hosting_local": 0.3})
            )
            proxy = attacker_egress(rng, proxy_network, user)
            proxied_sign_in(sim, rng, at=phish, proxy=proxy, session=session, browser=victim_browser)
            scenario.traits["proxy_logged"] = True
        else:
            own = plan.laptop_route(rng, phish)
            sim.events.append(
                SignIn(
                    phish,
                    True,
                    own,
                    session,
                    catalog.OFFICE_HOME,
                    catalog.OFFICE_HOME_RESOURCE,
                    laptop,
                    laptop.user_agent,
                    BROWSER,
                    Auth.MFA,
                )
            )
            scenario.traits["proxy_logged"] = False

        # The replay.
        same_agent = rng.random() < 0.25
        browser = catalog.ATTACKER_BROWSERS[rng.randrange(len(catalog.ATTACKER_BROWSERS))]
        device = victim_browser if same_agent else _unregistered(browser.operating_system, browser.browser, browser.user_agent)
        scenario.traits["copies_user_agent"] = same_agent
        risk = _RISKS[rng.randrange(len(_RISKS))]
        egresses = [attacker]
        if rng.random() < 0.25:
            egresses.append(attacker_egress(rng, network, user))
        replay_session(scenario, sim, session=session, device=device, egresses=egresses, replay=replay, risk=risk)
        scenario.incident_ip = attacker.ip
        decoy_travel(scenario, user, {network.country}, sim)


class RefreshTokenReplay(Script):
    """
    A refresh token stolen from the victim's laptop, driven by a script: non-interactive only, the
    victim's SessionId, admin-tool client ids, often at night while the victim's devices keep refreshing.
    """

    def overrides(self, scenario: Scenario, sim: Simulation) -> dict[int, Override]:
        return _workday_override(scenario, sim)

    def play(self, scenario: Scenario, sim: Simulation) -> None:
        rng, user, plan = scenario.rng, sim.user, scenario.plan
        assert plan is not None
        night = rng.random() < 0.55
        if night:
            # Victim-local night or late evening, inside the allowed incident window.
            windows = [
                (plan.midnight - 2 * HOUR, plan.midnight + 5 * HOUR),
                (plan.midnight + 20 * HOUR, plan.midnight + 29 * HOUR),
            ]
            low, high = windows[rng.randrange(2)]
            start = time_between(rng, low, high, scenario.earliest, scenario.latest - 2 * HOUR)
        else:
            start = time_between(rng, plan.start + 30 * MINUTE, plan.end - HOUR, scenario.earliest, scenario.latest - 2 * HOUR)
        scenario.traits["odd_hours"] = night
        session = sim.laptop_session(start)
        weights = {
            "hosting_foreign": 0.35,
            "hosting_local": 0.15,
            "vpn_local": 0.2,
            "residential_local": 0.08,
            "mobile_local": 0.07,
            "azure": 0.15,
        }
        network = attacker_network(rng, user, weights)
        attacker = attacker_egress(rng, network, user)
        scenario.traits.update(infrastructure=network.kind.value, attacker_asn=network.asn, attacker_country=network.country)
        client = catalog.SCRIPTED_CLIENTS[rng.randrange(len(catalog.SCRIPTED_CLIENTS))]
        device = _unregistered(client.operating_system, client.browser, client.user_agent)
        apps = rng.sample(catalog.SCRIPTED_APPS, rng.randrange(1, 4))
        scenario.traits["client_ids"] = sorted({app.app_id for app, _ in apps})
        duration = int(rng.uniform(0.3, 5) * HOUR)
        count = rng.randrange(5, 151)
        scenario.traits["replay_rows"] = count
        egresses: list[Egress] = [attacker]
        if network.kind.value == "mobile" or rng.random() < 0.2:
            egresses.append(attacker_egress(rng, network, user))
        for position, when in enumerate(_spread(rng, start, duration, count)):
            app, resource = apps[rng.randrange(len(apps))]
            blocked = position > 0 and rng.random() < 0.05
            sim.events.append(
                SignIn(
                    when,
                    False,
                    egresses[position % len(egresses)],
                    session,
                    app,
                    resource,
                    device,
                    client.user_agent,
                    NATIVE,
                    Auth.BLOCKED if blocked else Auth.CLAIM,
                    "53003" if blocked else "0",
                    incoming="refreshToken",
                    role=Role.ATTACKER,
                )
            )
        # The victim's own devices keep refreshing the same session meanwhile (a laptop left on at home).
        if night:
            home = sim.plans[scenario.day].phone_home
            sim.refreshes(start - int(rng.uniform(10, 60) * MINUTE), start + duration, home, mean_minutes=35.0, session=session)
        scenario.at = start + int(rng.uniform(10, max(11, min(120, duration / MINUTE))) * MINUTE)
        scenario.incident_ip = attacker.ip
        decoy_travel(scenario, user, {network.country}, sim)


class DeviceCodePhishing(Script):
    """
    The victim enters an attacker's device code: a deviceCode sign-in from the attacker's address,
    a device registered in the victim's name, then that device's primary refresh token in use.
    """

    def overrides(self, scenario: Scenario, sim: Simulation) -> dict[int, Override]:
        return _workday_override(scenario, sim)

    def play(self, scenario: Scenario, sim: Simulation) -> None:
        rng, user, plan = scenario.rng, sim.user, scenario.plan
        assert plan is not None
        at = time_between(rng, plan.start + HOUR, plan.end + HOUR, scenario.earliest, scenario.latest)
        code = at - int(rng.uniform(15, 180) * MINUTE)
        weights = {
            "hosting_foreign": 0.35,
            "hosting_local": 0.15,
            "vpn_local": 0.25,
            "vpn_foreign": 0.1,
            "residential_local": 0.1,
            "azure": 0.05,
        }
        network = attacker_network(rng, user, weights)
        attacker = attacker_egress(rng, network, user)
        scenario.traits.update(infrastructure=network.kind.value, attacker_asn=network.asn, attacker_country=network.country)
        tool = rng.choice(
            (
                catalog.SCRIPTED_CLIENTS[0],
                catalog.SCRIPTED_CLIENTS[5],
                catalog.SCRIPTED_CLIENTS[6],
                catalog.ScriptedClient(catalog.WINDOWS_BROWSERS[1].user_agent, "Windows10", catalog.WINDOWS_BROWSERS[1].browser),
            )
        )
        tool_device = _unregistered(tool.operating_system, tool.browser, tool.user_agent)
        session = ids.guid(rng)
        app, resource = rng.choice(
            (
                (catalog.AUTH_BROKER, catalog.DEVICE_REGISTRATION),
                (catalog.AUTH_BROKER, catalog.DEVICE_REGISTRATION),
                (catalog.OFFICE, catalog.GRAPH),
                (catalog.AZURE_CLI, catalog.GRAPH),
            )
        )
        scenario.traits["device_code_client"] = app.name
        sim.events.append(
            SignIn(
                code,
                True,
                attacker,
                session,
                app,
                resource,
                tool_device,
                tool.user_agent,
                NATIVE,
                Auth.MFA,
                protocol="deviceCode",
                role=Role.ATTACKER,
            )
        )
        if app != catalog.AUTH_BROKER:
            # Tools obtain a broker token from the family refresh token before registering a device.
            sim.events.append(
                SignIn(
                    code + 20_000,
                    False,
                    attacker,
                    session,
                    catalog.AUTH_BROKER,
                    catalog.DEVICE_REGISTRATION,
                    tool_device,
                    tool.user_agent,
                    NATIVE,
                    Auth.CLAIM,
                    incoming="refreshToken",
                    role=Role.ATTACKER,
                )
            )
        registered_at = code + int(rng.uniform(1, 20) * MINUTE)
        name = ids.windows_device_name(rng)
        device_object = ids.guid(rng)
        rogue = Device(
            ids.guid(rng), name, "Windows10", "", "", (), compliant=False, managed=False, trust_type="Azure AD registered"
        )
        sim.device_registered(registered_at, attacker.ip, rogue, device_object, Role.ATTACKER)
        scenario.traits["registered_device"] = name

        # The new device's primary refresh token, used from the attacker's machine.
        prt_agent = "Windows-AzureAD-Authentication-Provider/1.0" if rng.random() < 0.6 else tool.user_agent
        uses: tuple[tuple[App, Resource], ...] = (
            (catalog.OFFICE, catalog.EXCHANGE),
            (catalog.OFFICE, catalog.GRAPH),
            (catalog.OFFICE, catalog.SHAREPOINT),
            (catalog.TEAMS, catalog.TEAMS_SERVICES),
            (catalog.EDGE, catalog.GRAPH),
        )
        first_use = registered_at + int(rng.uniform(2, 30) * MINUTE)
        duration = int(rng.uniform(0.5, 5) * HOUR)
        count = rng.randrange(10, 121)
        scenario.traits["replay_rows"] = count
        for when in _spread(rng, first_use, duration, count):
            use_app, use_resource = uses[rng.randrange(len(uses))]
            sim.events.append(
                SignIn(
                    when,
                    False,
                    attacker,
                    session,
                    use_app,
                    use_resource,
                    rogue,
                    prt_agent,
                    NATIVE,
                    Auth.CLAIM,
                    incoming="primaryRefreshToken",
                    role=Role.ATTACKER,
                )
            )
        for _ in range(rng.randrange(0, 3)):
            when = first_use + int(rng.uniform(0, duration))
            sim.events.append(
                SignIn(
                    when,
                    True,
                    attacker,
                    session,
                    catalog.OFFICE_HOME,
                    catalog.OFFICE_HOME_RESOURCE,
                    rogue,
                    catalog.WINDOWS_BROWSERS[0].user_agent,
                    BROWSER,
                    Auth.SSO,
                    incoming="primaryRefreshToken",
                    role=Role.ATTACKER,
                )
            )
        if rng.random() < 0.3:
            sim.security_info_registered(
                first_use + int(rng.uniform(5, 60) * MINUTE), attacker.ip, "Authenticator App", Role.ATTACKER
            )
            scenario.traits["mfa_method_registered"] = True
        scenario.at = max(at, code + 5 * MINUTE)
        scenario.incident_ip = attacker.ip
        decoy_travel(scenario, user, {network.country}, sim)


class AitmResidentialReplay(Script):
    """
    AiTM whose session is born at the phishing proxy and replayed from a residential address in the
    victim's own country: the victim's password and MFA pass through a proxy on rented or anonymising
    infrastructure (the victim's own address never appears in the session), then the attacker uses the
    session through a residential (sometimes mobile) proxy of another ISP, often one whose ASN the user
    already knows from their mobile carrier, with "MFA requirement satisfied by claim in the token".
    """

    def overrides(self, scenario: Scenario, sim: Simulation) -> dict[int, Override]:
        return _workday_override(scenario, sim)

    def play(self, scenario: Scenario, sim: Simulation) -> None:
        rng, user, plan = scenario.rng, sim.user, scenario.plan
        assert plan is not None
        phish, replay = _stolen_then_replayed(scenario, plan)
        proxy_network = attacker_network(
            rng, user, {"hosting_foreign": 0.45, "hosting_local": 0.2, "vpn_foreign": 0.2, "vpn_local": 0.15}
        )
        proxy = attacker_egress(rng, proxy_network, user)
        session = ids.guid(rng)
        laptop = user.laptop
        victim_browser = _unregistered(laptop.operating_system, laptop.browser, laptop.user_agent)
        proxied_sign_in(sim, rng, at=phish, proxy=proxy, session=session, browser=victim_browser)

        network = self._residential(rng, user)
        egresses = [attacker_egress(rng, network, user) for _ in range(1 + (rng.random() < 0.35) + (rng.random() < 0.15))]
        scenario.traits.update(
            proxy_infrastructure=proxy_network.kind.value,
            proxy_asn=proxy_network.asn,
            replay_infrastructure=network.kind.value,
            replay_asn=network.asn,
            replay_asn_known_to_user=network.asn in (user.carrier.asn, user.home_isp.asn, user.office.network.asn),
            replay_addresses=len(egresses),
        )
        same_agent = rng.random() < 0.45
        browser = catalog.ATTACKER_BROWSERS[rng.randrange(len(catalog.ATTACKER_BROWSERS))]
        device = victim_browser if same_agent else _unregistered(browser.operating_system, browser.browser, browser.user_agent)
        scenario.traits["copies_user_agent"] = same_agent
        replay_session(scenario, sim, session=session, device=device, egresses=egresses, replay=replay, risk=_RISKS[0])
        scenario.incident_ip = egresses[0].ip

    @staticmethod
    def _residential(rng: random.Random, user: User) -> Network:
        """A residential or mobile network of the victim's country other than their home line, often one of an ASN they know."""
        local = [n for n in catalog.RESIDENTIAL if n.country == user.country and n.asn != user.home_isp.asn]
        known = [n for n in local if n.asn in (user.carrier.asn, user.office.network.asn)]
        pick = rng.random()
        if known and pick < 0.45:
            return rng.choice(known)
        mobile = [n for n in catalog.MOBILE if n.country == user.country and n.asn != user.carrier.asn]
        if mobile and pick > 0.85:
            return rng.choice(mobile)
        return rng.choice(local)


class RelayReplay(Script):
    """
    A stolen session replayed from behind a consumer privacy relay (iCloud Private Relay, Cloudflare
    WARP, Edge Secure Network): either an AiTM session born at the phishing proxy, or the laptop's
    browser session taken by an infostealer. The relay's addresses rotate and geolocate only roughly.
    """

    def overrides(self, scenario: Scenario, sim: Simulation) -> dict[int, Override]:
        return _workday_override(scenario, sim)

    def play(self, scenario: Scenario, sim: Simulation) -> None:
        rng, user, plan = scenario.rng, sim.user, scenario.plan
        assert plan is not None
        stolen, replay = _stolen_then_replayed(scenario, plan)
        laptop = user.laptop
        victim_browser = _unregistered(laptop.operating_system, laptop.browser, laptop.user_agent)
        aitm = rng.random() < 0.5
        if aitm:
            proxy_network = attacker_network(rng, user, {"hosting_foreign": 0.6, "hosting_local": 0.4})
            session = ids.guid(rng)
            proxy = attacker_egress(rng, proxy_network, user)
            proxied_sign_in(sim, rng, at=stolen, proxy=proxy, session=session, browser=victim_browser)
        else:
            session = sim.laptop_session(replay)
        apple = rng.random() < 0.5
        pool = catalog.ICLOUD_PRIVATE_RELAY if apple else catalog.CLOUDFLARE_WARP
        abroad = rng.random() < 0.5
        country = rng.choice([c for c in catalog.OFFICE_COUNTRIES if c != user.country]) if abroad else user.country
        networks = catalog.networks(pool, country) or pool
        relay = routes.Rotating(networks, mean_minutes=rng.uniform(10, 40), ipv6_share=0.4 if apple else 0.0)
        egresses: list[Egress] = []
        for position in range(rng.randrange(2, 6)):
            egress = relay(rng, replay + position * int(rng.uniform(15, 45) * MINUTE))
            if egress not in egresses:
                egresses.append(egress)
        agent = catalog.MAC_BROWSERS[rng.randrange(2)] if apple else catalog.WINDOWS_BROWSERS[rng.randrange(3)]
        device = _unregistered(agent.operating_system, agent.browser, agent.user_agent)
        scenario.traits.update(
            origin="aitm" if aitm else "infostealer",
            relay="icloud_private_relay" if apple else "cloudflare",
            relay_country=country,
            relay_addresses=len(egresses),
        )
        risk = _RISKS[rng.randrange(len(_RISKS))]
        replay_session(scenario, sim, session=session, device=device, egresses=egresses, replay=replay, risk=risk)
        scenario.incident_ip = egresses[0].ip
