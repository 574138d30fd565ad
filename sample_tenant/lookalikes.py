"""
The benign look-alikes, and the ordinary users with incidents.

Each is a real situation that makes naive replay detection fire (a new IP, a new ASN or country
inside one session) together with exactly what its benign explanation needs: VPN addresses inside
REPLAY_VPN_CIDRS, a TravelRecords row for the country and dates, the user's usual carrier ASN, IPv6
and IPv4 of the same home ISP, Microsoft's ASNs. Variants differ in how obvious that is.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from sample_tenant import addresses, catalog, ids, routes
from sample_tenant.activity import BROWSER, NATIVE, DayPlan, Override, Simulation
from sample_tenant.events import DAY, HOUR, MINUTE, Auth, Role, SignIn
from sample_tenant.routes import Route
from sample_tenant.scenarios import WINDOW_AFTER, WINDOW_BEFORE, Scenario, Script, TravelRecord, pick_day, time_between, working
from sample_tenant.tenant import Device, Egress, User


def at_in_day(scenario: Scenario) -> int:
    plan = scenario.plan
    assert plan is not None
    return time_between(scenario.rng, plan.start + HOUR, plan.end, scenario.earliest, scenario.latest)


def nearest(scenario: Scenario, sim: Simulation, wanted: set[str]) -> str:
    """The wanted IP the user used nearest before the incident time (else soonest after), inside the evidence window."""
    best: tuple[int, str] | None = None
    low, high = scenario.at - WINDOW_BEFORE, scenario.at + WINDOW_AFTER
    for event in sim.events:
        if event.egress.ip in wanted and event.role == Role.USER and low <= event.time <= high:
            distance = scenario.at - event.time if event.time <= scenario.at else DAY + event.time - scenario.at
            if best is None or distance < best[0]:
                best = (distance, event.egress.ip)
    return best[1] if best else sorted(wanted)[0]


class VpnSplitTunnel(Script):
    """A day at home on the corporate VPN with split tunnelling: one session alternates home ISP and VPN egress."""

    def adapt(self, scenario: Scenario, user: User) -> User:
        first_time = scenario.rng.random() < 0.3
        scenario.traits["first_vpn_use"] = first_time
        return replace(user, uses_vpn=not first_time)

    def overrides(self, scenario: Scenario, sim: Simulation) -> dict[int, Override]:
        rng = scenario.rng
        scenario.day = pick_day(scenario, sim)
        tunnel = [routes.vpn(sim.tenant, sim.user)]
        if rng.random() < 0.4:
            second = routes.vpn(sim.tenant, replace(sim.user, index=sim.user.index + 7))
            tunnel.append(second)
        scenario.state["vpn_ips"] = {egress.ip for egress in tunnel}
        share = rng.uniform(0.35, 0.75)
        scenario.traits["vpn_share"] = round(share, 2)
        scenario.traits["vpn_country_differs"] = sim.tenant.vpn.place.country != sim.user.country

        def override(plan: DayPlan) -> DayPlan:
            plan = working(plan, sim, rng)
            home = routes.home(rng, sim.user, plan.day)
            through: Route = (
                routes.Fixed(tunnel[0]) if len(tunnel) == 1 else routes.Mixed(tuple(routes.Fixed(e) for e in tunnel), (0.6, 0.4))
            )
            plan = replace(plan, at_office=False, laptop_route=routes.Mixed((home, through), (1 - share, share)), phone_day=home)
            scenario.plan = plan
            return plan

        return {scenario.day: override}

    def play(self, scenario: Scenario, sim: Simulation) -> None:
        cidr = sim.tenant.vpn.cidr
        scenario.explains = lambda event: ":" not in event.egress.ip and addresses.contains(cidr, event.egress.ip)
        scenario.at = at_in_day(scenario)
        scenario.incident_ip = nearest(scenario, sim, scenario.state["vpn_ips"])


class TravelWithRecord(Script):
    """
    A business trip with a TravelRecords row: hotel ISP abroad, own compliant laptop, local working hours;
    the phone either roams through the home carrier (home country, same hours) or uses hotel Wi-Fi.

    Abroad activity stays within the record's dates: arrival on the start date (local evening),
    departure by 17:00 local on the day before the end date.
    """

    def overrides(self, scenario: Scenario, sim: Simulation) -> dict[int, Override]:
        rng, user = scenario.rng, sim.user
        day = pick_day(scenario, sim, 9, 16)
        scenario.day = day
        depart = max(day - rng.randrange(1, 5), 0)
        if depart >= day:
            msg = "a trip needs at least one day of data before the incident day (use --days 3 or more)"
            raise ValueError(msg)
        back = day + rng.randrange(2, 6)
        destination = catalog.COUNTRIES[rng.choice([c for c in catalog.TRAVEL_COUNTRIES if c != user.country])]
        city = rng.choice(destination.cities)
        hotel_network = rng.choice(catalog.networks(catalog.RESIDENTIAL, destination.code))
        hotels = [Egress(addresses.random_host(rng, hotel_network.v4), hotel_network.asn, city)]
        if rng.random() < 0.2:
            other = rng.choice(catalog.networks(catalog.RESIDENTIAL, destination.code))
            hotels.append(Egress(addresses.random_host(rng, other.v4), other.asn, city))
        venues = catalog.networks(catalog.BUSINESS, destination.code)
        venue = None
        if venues and rng.random() < 0.4:
            # A client's or a conference's network; never inside the tenant's own office blocks.
            corporate = [sim.tenant.vpn.cidr, *(o.cidr for o in sim.tenant.offices)]
            address = addresses.random_host(rng, venues[0].v4)
            while any(addresses.contains(cidr, address) for cidr in corporate):
                address = addresses.random_host(rng, venues[0].v4)
            venue = Egress(address, venues[0].asn, city)
        roaming = rng.random() < 0.5
        local_carriers = catalog.networks(catalog.MOBILE, destination.code)
        shift = destination.utc_offset_minutes - user.utc_offset_minutes
        scenario.traits.update(
            destination=destination.code,
            phone_roaming=roaming,
            hour_shift=shift // 60,
            hotel_asn=hotel_network.asn,
            trip_days=back - depart,
        )
        scenario.travel.append(TravelRecord(user.upn, destination.code, _iso_date(sim, depart), _iso_date(sim, back)))
        home_phone = routes.carrier(user)

        def hotel_for(plan_day: int) -> Egress:
            return hotels[0] if len(hotels) == 1 or plan_day < day else hotels[-1]

        def abroad_phone(plan_day: int) -> Route:
            hotel = routes.Fixed(hotel_for(plan_day))
            if roaming:
                return routes.Mixed((routes.carrier(user, 60.0), hotel), (0.6, 0.4))
            if local_carriers:
                local = routes.Churn(local_carriers[0], destination.cities, 60.0, 0.3)
                return routes.Mixed((local, hotel), (0.5, 0.5))
            return hotel

        def local_minute(plan: DayPlan, minute: float) -> int:
            return plan.midnight + int((minute - shift) * MINUTE)

        def override(plan: DayPlan) -> DayPlan:
            hotel = routes.Fixed(hotel_for(plan.day))
            laptop: Route = hotel if venue is None else routes.Mixed((hotel, routes.Fixed(venue)), (0.4, 0.6))
            if plan.day == depart:
                arrive = local_minute(plan, rng.uniform(16.5, 18) * 60)
                phone: Route = routes.Switch(arrive, home_phone, abroad_phone(plan.day))
                start = arrive + int(rng.uniform(45, 120) * MINUTE)
                return replace(
                    plan,
                    laptop=True,
                    start=start,
                    end=start + int(rng.uniform(60, 150) * MINUTE),
                    at_office=False,
                    laptop_route=hotel,
                    phone_day=phone,
                    phone_out=phone,
                    phone_home=phone,
                    new_session=True,
                )
            leave = local_minute(plan, 17 * 60) if plan.day == back - 1 else plan.midnight + 2 * DAY
            start = local_minute(plan, user.work_start_minute + rng.uniform(-30, 30))
            end = min(start + user.work_minutes * MINUTE, leave - 30 * MINUTE)
            phone = routes.Switch(leave, abroad_phone(plan.day), home_phone)
            planned = replace(
                plan,
                laptop=True,
                start=start,
                end=end,
                at_office=False,
                laptop_route=laptop,
                phone_day=phone,
                phone_out=phone,
                phone_home=phone,
                new_session=False,
            )
            if plan.day == day:
                scenario.plan = planned
            return planned

        return dict.fromkeys(range(depart, back), override)

    def play(self, scenario: Scenario, sim: Simulation) -> None:
        destination = str(scenario.traits["destination"])
        scenario.explains = lambda event: event.egress.place.country == destination
        scenario.at = at_in_day(scenario)
        hotel_ips = {e.egress.ip for e in sim.events if e.egress.place.country == destination and not e.egress.named_location}
        scenario.incident_ip = nearest(scenario, sim, hotel_ips)


def _iso_date(sim: Simulation, day: int) -> str:
    return date.fromordinal(sim.first_date.toordinal() + day).isoformat()


class MobileCarrierChurn(Script):
    """A day on the road: the phone (and sometimes the tethered laptop) hops across the usual carrier's addresses and cities."""

    def overrides(self, scenario: Scenario, sim: Simulation) -> dict[int, Override]:
        rng, user = scenario.rng, sim.user
        scenario.day = pick_day(scenario, sim, history_days=1)
        cities = catalog.COUNTRIES[user.country].cities
        places = tuple(dict.fromkeys((*user.carrier_places, *rng.sample(cities, min(3, len(cities))))))
        mean = rng.uniform(8, 30)
        ipv6 = rng.choice((0.0, 0.4, 0.8)) if user.carrier.v6 else 0.0
        tether = rng.random() < 0.55
        scenario.traits.update(churn_minutes=round(mean), tethered_laptop=tether, carrier_asn=user.carrier.asn, ipv6_share=ipv6)

        def override(plan: DayPlan) -> DayPlan:
            churn = routes.Churn(user.carrier, places, mean, ipv6)
            plan = working(plan, sim, rng)
            road = (plan.start - 45 * MINUTE, plan.end + 45 * MINUTE)
            plan = replace(
                plan, at_office=False, phone_out=churn, outings=(*plan.outings, road), phone_awake_mean=rng.uniform(12, 30)
            )
            plan = replace(plan, laptop_route=churn) if tether else replace(plan, laptop=False)
            scenario.plan = plan
            return plan

        def out_as_usual(plan: DayPlan) -> DayPlan:
            # The carrier is the user's usual one: on the days before, the phone was out on it too.
            lunch = plan.midnight + int(rng.uniform(11.5, 12.5) * HOUR)
            evening = plan.midnight + int(rng.uniform(18, 19.5) * HOUR)
            outings = ((lunch, lunch + int(rng.uniform(45, 90) * MINUTE)), (evening, evening + int(rng.uniform(1.5, 3) * HOUR)))
            return replace(plan, outings=(*plan.outings, *outings))

        before = dict.fromkeys(range(max(0, scenario.day - 3), scenario.day), out_as_usual)
        return {**before, scenario.day: override}

    def play(self, scenario: Scenario, sim: Simulation) -> None:
        carrier = sim.user.carrier
        prefixes = tuple(p for p in (carrier.v4, carrier.v6) if p)
        scenario.explains = lambda event: (
            event.egress.asn == carrier.asn
            and any((":" in event.egress.ip) == (":" in p) and addresses.contains(p, event.egress.ip) for p in prefixes)
        )
        plan = scenario.plan
        assert plan is not None
        scenario.at = time_between(scenario.rng, plan.start + HOUR, plan.end, scenario.earliest, scenario.latest)
        day_ips = {
            e.egress.ip
            for e in sim.events
            if scenario.explains(e) and plan.midnight <= e.time < plan.midnight + DAY and e.egress.place != sim.user.home_place
        }
        scenario.incident_ip = nearest(scenario, sim, day_ips or {e.egress.ip for e in sim.events if scenario.explains(e)})


class Ipv6DualStack(Script):
    """A day at home on a dual-stack line: new temporary IPv6 addresses and the IPv4 address of the same ISP, one session."""

    def adapt(self, scenario: Scenario, user: User) -> User:
        rng = scenario.rng
        if not user.home_ipv6_64:
            isp = rng.choice([n for n in catalog.networks(catalog.RESIDENTIAL, user.country) if n.v6])
            ipv4 = addresses.random_host(rng, isp.v4)
            user = replace(
                user, home_isp=isp, home_ipv4=ipv4, home_ipv4_renewed=ipv4, home_ipv6_64=addresses.random_subnet(rng, isp.v6, 64)
            )
        scenario.state["ipv6_64"] = user.home_ipv6_64
        new = rng.random() < 0.5
        scenario.traits["ipv6_new_in_baseline"] = new
        scenario.traits["isp_asn"] = user.home_isp.asn
        return replace(user, home_ipv6_64="") if new else user

    def overrides(self, scenario: Scenario, sim: Simulation) -> dict[int, Override]:
        rng = scenario.rng
        scenario.day = pick_day(scenario, sim)
        prefix = str(scenario.state["ipv6_64"])
        share = rng.uniform(0.35, 0.75)
        scenario.traits["ipv6_share"] = round(share, 2)

        def override(plan: DayPlan) -> DayPlan:
            user = replace(sim.user, home_ipv6_64=prefix)
            temporary = tuple(routes.Fixed(routes.home_ipv6(rng, user)) for _ in range(rng.randrange(1, 4)))
            v6: Route = temporary[0] if len(temporary) == 1 else routes.Mixed(temporary, tuple(1.0 for _ in temporary))
            v4 = routes.Fixed(routes.home_ipv4(user, plan.day))
            line = routes.Mixed((v6, v4), (share, 1 - share))
            plan = working(plan, sim, rng)
            plan = replace(plan, at_office=False, laptop_route=line, phone_day=line, phone_home=line)
            scenario.plan = plan
            return plan

        return {scenario.day: override}

    def play(self, scenario: Scenario, sim: Simulation) -> None:
        prefix = str(scenario.state["ipv6_64"])
        scenario.explains = lambda event: ":" in event.egress.ip and addresses.contains(prefix, event.egress.ip)
        scenario.at = at_in_day(scenario)
        plan = scenario.plan
        assert plan is not None
        day_ips = {e.egress.ip for e in sim.events if scenario.explains(e) and plan.midnight <= e.time < plan.midnight + DAY}
        scenario.incident_ip = nearest(scenario, sim, day_ips)


class MicrosoftServiceIps(Script):
    """
    Sign-ins from Microsoft's own network: services acting for the user in the user's session, or the
    user's Windows 365 Cloud PC (an Azure address, a compliant Entra-joined device).
    """

    def overrides(self, scenario: Scenario, sim: Simulation) -> dict[int, Override]:
        rng = scenario.rng
        scenario.day = pick_day(scenario, sim)

        def override(plan: DayPlan) -> DayPlan:
            scenario.plan = working(plan, sim, rng)
            return scenario.plan

        return {scenario.day: override}

    def play(self, scenario: Scenario, sim: Simulation) -> None:
        rng = scenario.rng
        scenario.explains = lambda event: event.egress.asn in catalog.MICROSOFT_ASNS
        scenario.at = at_in_day(scenario)
        if rng.random() < 0.25:
            used = self._cloud_pc(scenario, sim)
        else:
            scenario.traits["variant"] = "service"
            start = scenario.at - int(rng.uniform(0.5, 3) * HOUR)
            count = rng.randrange(5, 61)
            spread = rng.uniform(1, 6) * 60 / count
            weights = [0.7 if n.asn == 8075 else 0.15 for n in catalog.MICROSOFT_SERVICE]
            networks = rng.choices(catalog.MICROSOFT_SERVICE, weights=weights, k=1 + (rng.random() < 0.2))
            used = []
            for position, network in enumerate(networks):
                used += sim.microsoft_service_rows(start + position * 7 * MINUTE, count, network, spread)
            scenario.traits["service_asns"] = sorted({n.asn for n in networks})
            scenario.traits["service_rows"] = count * len(networks)
        scenario.incident_ip = nearest(scenario, sim, set(used))

    def _cloud_pc(self, scenario: Scenario, sim: Simulation) -> list[str]:
        """A Windows 365 Cloud PC used on the incident day (and, unless it is new, on earlier working days)."""
        rng, user = scenario.rng, sim.user
        scenario.traits["variant"] = "cloud_pc"
        regional = [n for n in catalog.MICROSOFT_CLOUD if n.country == user.country] or list(catalog.MICROSOFT_CLOUD)
        network = rng.choice(regional)
        egress = routes.network_egress(rng, network, user.home_place)
        browser = catalog.WINDOWS_BROWSERS[rng.randrange(3)]
        cloud_pc = Device(
            ids.guid(rng),
            f"CPC-{user.first_name[:5].lower()}-{rng.randrange(10**5):05d}",
            "Windows10",
            browser.browser,
            browser.user_agent,
            catalog.WINDOWS_NATIVE_AGENTS,
            compliant=True,
            managed=True,
            trust_type="Azure AD joined",
        )
        session = ids.guid(rng)
        new = rng.random() < 0.2
        scenario.traits["cloud_pc_new"] = new
        days = [scenario.day] if new else [d for d in range(max(0, scenario.day - 6), scenario.day + 1) if sim.plans[d].laptop]
        route = routes.Fixed(egress)
        for day in days:
            plan = sim.plans[day]
            t = plan.start + int(rng.uniform(5, 60) * MINUTE)
            sim.events.append(
                SignIn(
                    t,
                    True,
                    egress,
                    session,
                    catalog.WINDOWS_SIGN_IN,
                    catalog.AAD_GRAPH,
                    cloud_pc,
                    catalog.WINDOWS_NATIVE_AGENTS[0],
                    NATIVE,
                    Auth.PASSWORDLESS,
                )
            )
            first = day == days[0]
            sim.events.append(
                SignIn(
                    t + 60_000,
                    True,
                    egress,
                    session,
                    catalog.OFFICE_HOME,
                    catalog.OFFICE_HOME_RESOURCE,
                    cloud_pc,
                    cloud_pc.user_agent,
                    BROWSER,
                    Auth.MFA if first else Auth.SSO,
                )
            )
            sim.refreshes(t + 2 * MINUTE, plan.end, route, mean_minutes=30.0, device=cloud_pc, session=session)
        return [egress.ip]


class Ordinary(Script):
    """A random user with an incident and nothing special going on: the false-positive baseline."""

    def overrides(self, scenario: Scenario, sim: Simulation) -> dict[int, Override]:
        scenario.day = pick_day(scenario, sim)
        return {}

    def play(self, scenario: Scenario, sim: Simulation) -> None:
        rng = scenario.rng
        scenario.at = int(rng.uniform(scenario.earliest, scenario.latest))
        low = scenario.at - 24 * HOUR
        recent = {e.egress.ip for e in sim.events if low <= e.time <= scenario.at and e.role == Role.USER}
        scenario.incident_ip = nearest(scenario, sim, recent) if recent else routes.home_ipv4(sim.user, scenario.day).ip


class NewPhoneEnrolment(Script):
    """
    A user whose laptop always tunnels through the corporate VPN (so their home line never appeared,
    and their old phone lived on mobile data) sets up a new phone at home: a fresh password-and-MFA
    sign-in over the home Wi-Fi, the Authenticator registered as a method (often the phone registered
    as a device too), Outlook signed in; then the phone leaves home on the user's usual carrier, in the
    same session, and the old phone falls silent.
    """

    def adapt(self, scenario: Scenario, user: User) -> User:
        return replace(user, uses_vpn=True)

    def overrides(self, scenario: Scenario, sim: Simulation) -> dict[int, Override]:
        scenario.day = pick_day(scenario, sim, 7, 17, history_days=3)
        tunnel = routes.Fixed(routes.vpn(sim.tenant, sim.user))

        def full_tunnel(plan: DayPlan) -> DayPlan:
            carrier = routes.carrier(sim.user)
            planned = replace(
                plan,
                laptop_route=plan.laptop_route if plan.at_office else tunnel,
                phone_day=plan.phone_day if plan.at_office else carrier,
                phone_home=carrier,
            )
            if plan.day == scenario.day:
                scenario.plan = planned
            return planned

        return dict.fromkeys(range(sim.days), full_tunnel)

    def play(self, scenario: Scenario, sim: Simulation) -> None:
        rng, user, plan = scenario.rng, sim.user, scenario.plan
        assert plan is not None
        setup = time_between(
            rng, plan.midnight + 7 * HOUR, plan.midnight + 17 * HOUR, scenario.earliest - HOUR, scenario.latest - HOUR
        )
        leave = setup + int(rng.uniform(0.5, 3) * HOUR)
        scenario.at = time_between(rng, setup + 15 * MINUTE, leave + 4 * HOUR, scenario.earliest, scenario.latest)
        old = user.phone
        sim.events = [e for e in sim.events if e.device.device_id != old.device_id or e.time < setup]

        model = rng.choice([m for m in catalog.PHONES if m.user_agent != old.user_agent])
        registered = rng.random() < 0.6
        fresh = Device(
            "",
            "",
            model.operating_system,
            model.browser,
            model.user_agent,
            (model.app_agent,),
            compliant=False,
            managed=False,
            trust_type="",
        )
        phone = (
            replace(fresh, device_id=ids.guid(rng), name=f"{user.first_name}'s {model.model}", trust_type="Azure AD registered")
            if registered
            else fresh
        )
        home = routes.home(rng, user, plan.day)
        session = ids.guid(rng)
        scenario.traits.update(device_registered=registered, home_ipv6=bool(user.home_ipv6_64), phone_model=model.model)

        def native(t: int, app: catalog.App, resource: catalog.Resource, device: Device, auth: Auth) -> None:
            sim.events.append(SignIn(t, True, home(rng, t), session, app, resource, device, model.app_agent, NATIVE, auth))

        native(setup, catalog.AUTHENTICATOR, catalog.GRAPH, fresh, Auth.MFA)
        t = setup + int(rng.uniform(1, 3) * MINUTE)
        sim.events.append(
            SignIn(t, True, home(rng, t), session, catalog.MY_SIGNINS, catalog.GRAPH, fresh, model.user_agent, BROWSER, Auth.SSO)
        )
        t += int(rng.uniform(1, 3) * MINUTE)
        sim.security_info_registered(t, home(rng, t).ip, "Authenticator App")
        if registered:
            t += int(rng.uniform(1, 4) * MINUTE)
            sim.device_registered(t, home(rng, t).ip, phone, ids.guid(rng))
        t += int(rng.uniform(1, 5) * MINUTE)
        native(t, catalog.OUTLOOK_MOBILE, catalog.EXCHANGE, phone, Auth.SSO)

        carrier = routes.carrier(user)
        while t < sim.end:
            t += int(rng.uniform(10, 50 if plan.midnight + 22 * HOUR > t else 180) * MINUTE)
            egress = home(rng, t) if t < leave else carrier(rng, t)
            app, resource = (
                (catalog.OUTLOOK_MOBILE, catalog.EXCHANGE) if rng.random() < 0.65 else (catalog.TEAMS, catalog.TEAMS_SERVICES)
            )
            sim.events.append(
                SignIn(
                    t, False, egress, session, app, resource, phone, model.app_agent, NATIVE, Auth.CLAIM, incoming="refreshToken"
                )
            )
        home_ips = {e.egress.ip for e in sim.events if e.session_id == session and setup <= e.time < leave}
        scenario.explains = lambda event: event.egress.ip in home_ips
        scenario.incident_ip = nearest(scenario, sim, {ip for ip in home_ips if ":" not in ip} or home_ips)
