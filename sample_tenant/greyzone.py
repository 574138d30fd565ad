"""
The grey zone: benign stories whose evidence honestly cannot clear the user, so they land `suspicious`.

Nothing explains them: no record, no device the organisation vouches for, no network the user is
known on. An analyst reading the comment has to ask the user, which is what `suspicious` is for;
calling them `benign` would be trusting what no evidence supports, and `replay_likely` would send an
approval for a user doing nothing wrong. Each story is one of the look-alikes with the one fact that
would explain it taken away, on a user with nothing else going on (no administrator's command-line tools),
so the verdict is the story's.
"""

from __future__ import annotations

from dataclasses import replace

from enrichment.domain.signals import haversine_km
from sample_tenant import catalog, ids, routes
from sample_tenant.activity import BROWSER, DayPlan, Override, Simulation
from sample_tenant.events import HOUR, MINUTE, Auth, SignIn
from sample_tenant.scenarios import Scenario, Script, pick_day, time_between
from sample_tenant.tenant import Egress, User

#: A flight is slower than this, gate to gate, so the phone's silence in the air outlasts the product's travel check.
_FLIGHT_KMH = 750.0
#: The incident comes this soon after departure at most, so the evidence window still holds the phone at home.
_WINDOW_HOLDS_HOME = 22 * HOUR


class NewIspNewDevice(Script):
    """
    A user works from home on a new broadband line (moved house, or switched ISP) on a new laptop of
    their own: registered in Entra, not compliant, never seen before. A fresh password-and-MFA
    sign-in, then single sign-on to the web apps in the browser; the phone stays on mobile data and
    the office laptop is not used. No security-info change, no travel, no organisation network: a
    new network and a new device with nothing to say it is the user. The organisation manages the
    user's phone as well as the office laptop, so the personal laptop is its one unmanaged device.
    """

    def adapt(self, scenario: Scenario, user: User) -> User:
        return replace(user, phone=replace(user.phone, compliant=True, managed=True), admin_tools=False)

    def overrides(self, scenario: Scenario, sim: Simulation) -> dict[int, Override]:
        scenario.day = pick_day(scenario, sim, 9, 15, history_days=2)
        carrier = routes.carrier(sim.user)

        def at_home(plan: DayPlan) -> DayPlan:
            scenario.plan = replace(plan, laptop=False, at_office=False, phone_day=carrier, phone_out=carrier, phone_home=carrier)
            return scenario.plan

        return {scenario.day: at_home}

    def play(self, scenario: Scenario, sim: Simulation) -> None:
        rng, user, plan = scenario.rng, sim.user, scenario.plan
        assert plan is not None
        known = {user.home_isp.asn, user.carrier.asn, user.office.network.asn} | {e.egress.asn for e in sim.events}
        broadband = [n for n in catalog.RESIDENTIAL if n.country == user.country and n.asn not in known]
        # Where the user already knows every broadband ISP of the catalog, the new line is a 5G home router.
        routers = [n for n in catalog.MOBILE if n.country == user.country and n.asn not in known]
        lines = (
            broadband or routers or [n for n in catalog.RESIDENTIAL if n.country == user.country and n.asn != user.home_isp.asn]
        )
        line = routes.network_egress(rng, rng.choice(lines), user.home_place)
        laptop = replace(
            user.laptop,
            device_id=ids.guid(rng),
            name=f"{user.first_name.upper()}-HOME",
            compliant=False,
            managed=False,
            trust_type="Azure AD registered",
        )
        scenario.traits.update(new_isp_asn=line.asn, home_router="broadband" if broadband else "5g")
        start = time_between(
            rng, plan.midnight + 9 * HOUR, plan.midnight + 14 * HOUR, scenario.earliest, scenario.latest - 3 * HOUR
        )
        session = ids.guid(rng)

        def browser(t: int, app: catalog.App, resource: catalog.Resource, auth: Auth) -> None:
            sim.events.append(SignIn(t, True, line, session, app, resource, laptop, laptop.user_agent, BROWSER, auth))

        browser(start, catalog.OFFICE_HOME, catalog.OFFICE_HOME_RESOURCE, Auth.MFA)
        t = start
        for app, resource in rng.sample(_WEB_APPS, rng.randrange(2, len(_WEB_APPS) + 1)):
            t += int(rng.uniform(2, 40) * MINUTE)
            browser(t, app, resource, Auth.SSO)
        scenario.at = time_between(rng, t, t + 3 * HOUR, scenario.earliest, scenario.latest)
        scenario.incident_ip = line.ip


_WEB_APPS = (
    (catalog.ONE_OUTLOOK_WEB, catalog.EXCHANGE),
    (catalog.TEAMS_WEB, catalog.TEAMS_SERVICES),
    (catalog.SHAREPOINT_APP, catalog.SHAREPOINT),
)


class TravelWithoutRecord(Script):
    """
    A short personal trip abroad with no TravelRecords row: the laptop stays at home, the phone flies
    (silent in the air) and, on the hotel's Wi-Fi, keeps refreshing Outlook and Teams in the session
    it had at home. The user's own phone in its own session, in a country the user was never seen in,
    with nothing to say the user went there. The phone is the user's own (registered in Entra, not
    managed), so no compliant device vouches for the hotel either.
    """

    def adapt(self, scenario: Scenario, user: User) -> User:
        phone = replace(user.phone, compliant=False, managed=False, trust_type="Azure AD registered")
        return replace(user, phone=phone, admin_tools=False)

    def overrides(self, scenario: Scenario, sim: Simulation) -> dict[int, Override]:
        rng, user = scenario.rng, sim.user
        scenario.day = pick_day(scenario, sim, 6, 12, history_days=2)
        destination = catalog.COUNTRIES[rng.choice([c for c in catalog.TRAVEL_COUNTRIES if c != user.country])]
        city = rng.choice(destination.cities)
        hotel_network = rng.choice(catalog.networks(catalog.RESIDENTIAL, destination.code))
        hotel = routes.network_egress(rng, hotel_network, city)
        hotel = Egress(hotel.ip, hotel.asn, city)
        hours = haversine_km(user.home_place.latitude, user.home_place.longitude, city.latitude, city.longitude) / _FLIGHT_KMH
        scenario.state.update(hotel=hotel, flight=int((hours + 1) * HOUR))
        scenario.traits.update(destination=destination.code, hotel_asn=hotel_network.asn, flight_hours=round(hours + 1, 1))
        home_phone = routes.carrier(user)

        def away(plan: DayPlan) -> DayPlan:
            latest = scenario.latest - scenario.state["flight"] - 2 * HOUR
            depart = min(plan.midnight + int(rng.uniform(5, 9) * HOUR), latest)
            scenario.state["depart"] = depart
            phone = routes.Switch(depart, home_phone, routes.Fixed(hotel))
            scenario.plan = replace(plan, laptop=False, at_office=False, phone_day=phone, phone_out=phone, phone_home=phone)
            return scenario.plan

        def stay(plan: DayPlan) -> DayPlan:
            there = routes.Fixed(hotel)
            return replace(plan, laptop=False, at_office=False, phone_day=there, phone_out=there, phone_home=there)

        return {scenario.day: away, **dict.fromkeys(range(scenario.day + 1, scenario.day + 4), stay)}

    def play(self, scenario: Scenario, sim: Simulation) -> None:
        rng, phone = scenario.rng, sim.user.phone
        hotel: Egress = scenario.state["hotel"]
        depart: int = scenario.state["depart"]
        landed = depart + scenario.state["flight"]
        # In the air the phone is silent; at the hotel it only refreshes (the apps were open already), in the
        # session it last used at home (the simulation may have begun a new one on the morning of the flight).
        home = max((e for e in sim.events if e.device.device_id == phone.device_id and e.time < depart), key=lambda e: e.time)
        sim.events = [
            replace(e, session_id=home.session_id) if e.device.device_id == phone.device_id and e.time >= landed else e
            for e in sim.events
            if e.device.device_id != phone.device_id or e.time < depart or (e.time >= landed and not e.interactive)
        ]
        # Mail checked at the airport, on the home carrier, before boarding.
        boarding = depart - int(rng.uniform(10, 40) * MINUTE)
        airport = routes.carrier(sim.user)(rng, boarding)
        sim.events.append(
            replace(home, time=boarding, interactive=False, egress=airport, auth=Auth.CLAIM, incoming="refreshToken")
        )
        last = min(landed + 8 * HOUR, depart + _WINDOW_HOLDS_HOME)
        scenario.at = time_between(rng, landed + HOUR, last, scenario.earliest, scenario.latest)
        scenario.incident_ip = hotel.ip
