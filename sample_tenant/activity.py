"""
One user's ordinary days: laptop and phone sign-ins, token refreshes, a little directory noise.

A day is planned first (working or not, office or home, which networks each device uses), then
played out. Scenarios change a user's life by replacing the plan of chosen days (a trip, a VPN day,
a day on the road) and by adding their own events afterwards, so the user's ordinary traffic keeps
flowing around the incident exactly as it would.

Volumes follow real tenants: a few interactive sign-ins a day, token refreshes every 10-60 minutes
per active client (10-100x the interactive count), each refresh carrying the SessionId of the
interactive session it descends from.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from sample_tenant import addresses, catalog, ids, routes
from sample_tenant.catalog import App, Resource
from sample_tenant.events import DAY, HOUR, MINUTE, Actor, AuditEvent, Auth, Role, SignIn, Target, from_ms
from sample_tenant.routes import Route
from sample_tenant.tenant import Device, Egress, Tenant, User

BROWSER = "Browser"
NATIVE = "Mobile Apps and Desktop clients"

#: A device nobody registered: how Entra shows a service, a script or an attacker's machine.
UNKNOWN_DEVICE = Device("", "", "", "", "", (), compliant=False, managed=False, trust_type="")

#: Non-interactive refreshes a Windows laptop makes: (app, resource, agent index or -1 = browser, client).
_WINDOWS_REFRESHES: tuple[tuple[App, Resource, int, str], ...] = (
    (catalog.TEAMS, catalog.TEAMS_SERVICES, 2, NATIVE),
    (catalog.TEAMS, catalog.SKYPE, 2, NATIVE),
    (catalog.OFFICE, catalog.EXCHANGE, 0, NATIVE),
    (catalog.OFFICE, catalog.GRAPH, 0, NATIVE),
    (catalog.OFFICE, catalog.SUBSTRATE, 0, NATIVE),
    (catalog.ONEDRIVE_SYNC, catalog.SHAREPOINT, 1, NATIVE),
    (catalog.OFFICE_HOME, catalog.OFFICE_HOME_RESOURCE, -1, BROWSER),
    (catalog.ONE_OUTLOOK_WEB, catalog.EXCHANGE, -1, BROWSER),
    (catalog.EDGE, catalog.GRAPH, -1, BROWSER),
)
_MAC_REFRESHES: tuple[tuple[App, Resource, int, str], ...] = (
    (catalog.TEAMS, catalog.TEAMS_SERVICES, 1, NATIVE),
    (catalog.OFFICE, catalog.EXCHANGE, 0, NATIVE),
    (catalog.OFFICE, catalog.GRAPH, 0, NATIVE),
    (catalog.OFFICE_HOME, catalog.OFFICE_HOME_RESOURCE, -1, BROWSER),
    (catalog.ONE_OUTLOOK_WEB, catalog.EXCHANGE, -1, BROWSER),
    (catalog.OFFICE_HOME, catalog.SHAREPOINT, -1, BROWSER),
)
_BROWSER_SIGNINS: tuple[tuple[App, Resource], ...] = (
    (catalog.ONE_OUTLOOK_WEB, catalog.EXCHANGE),
    (catalog.OFFICE_HOME, catalog.SHAREPOINT),
    (catalog.TEAMS_WEB, catalog.TEAMS_SERVICES),
    (catalog.OFFICE_HOME, catalog.OFFICE_HOME_RESOURCE),
)
_ADMIN_TOOLS: tuple[tuple[App, Resource], ...] = (
    (catalog.AZURE_CLI, catalog.AZURE_MANAGEMENT),
    (catalog.AZURE_CLI, catalog.GRAPH),
    (catalog.AZURE_POWERSHELL, catalog.AZURE_MANAGEMENT),
    (catalog.GRAPH_EXPLORER, catalog.GRAPH),
)
_ADMIN_AGENT = "python/3.11.9 (Windows-10-10.0.26100-SP0) AZURECLI/2.73.0 (MSI)"
_SERVICES: tuple[tuple[App, Resource], ...] = (
    (catalog.EXCHANGE_APP, catalog.GRAPH),
    (catalog.TEAMS_SERVICES_APP, catalog.GRAPH),
    (catalog.SHAREPOINT_APP, catalog.GRAPH),
    (catalog.FLOW_SERVICE, catalog.EXCHANGE),
)
_REFRESH_FAILURES = ("50173", "70044", "9002341", "50199")


@dataclass(slots=True)
class DayPlan:
    """
    What one local day looks like; `start`/`end` bound laptop use (UTC ms) when `laptop` is true.

    `phone_day` serves the phone during working hours, `phone_out` on the way to the office and
    during `outings` (UTC ms spans), `phone_home` at home. `new_session` makes the first laptop
    sign-in a fresh MFA sign-in. `browser_route`, when set, carries the laptop's web browser
    (a privacy relay in Safari or Edge) while its native apps keep `laptop_route`.
    """

    day: int
    midnight: int
    laptop: bool
    start: int
    end: int
    at_office: bool
    laptop_route: Route
    phone_day: Route
    phone_out: Route
    phone_home: Route
    new_session: bool
    outings: tuple[tuple[int, int], ...] = ()
    phone_awake_mean: float = 60.0
    refresh_mean: float = 30.0
    browser_route: Route | None = None


Override = Callable[[DayPlan], DayPlan]


class Simulation:
    """Plays out one user's days; `events` and `audits` collect what happened (unsorted)."""

    def __init__(self, tenant: Tenant, user: User, rng: random.Random, start: int, end: int) -> None:
        self.tenant = tenant
        self.user = user
        self.rng = rng
        self.start = start
        self.end = end
        self.offset = user.utc_offset_minutes * MINUTE
        self.first_date = from_ms(start + self.offset).date()
        self.days = (from_ms(end + self.offset).date() - self.first_date).days + 1
        self.events: list[SignIn] = []
        self.audits: list[AuditEvent] = []
        self.plans: dict[int, DayPlan] = {}
        self._laptop_sessions: list[tuple[int, str]] = [(start - DAY, ids.guid(rng))]
        self._phone_sessions: list[tuple[int, str]] = [(start - DAY, ids.guid(rng))]

    # ---- time -------------------------------------------------------------------------------

    def midnight(self, day: int) -> int:
        """UTC ms of the user's local midnight starting local day `day`."""
        local = self.first_date + timedelta(days=day)
        return int((local - date(1970, 1, 1)).days) * DAY - self.offset

    def day_of(self, ms: int) -> int:
        """The local day index of a UTC time."""
        return (from_ms(ms + self.offset).date() - self.first_date).days

    def local(self, day: int, minute: float) -> int:
        """UTC ms of local `minute` after midnight of local day `day`."""
        return self.midnight(day) + int(minute * MINUTE)

    def weekday(self, day: int) -> int:
        return (self.first_date + timedelta(days=day)).weekday()

    def laptop_session(self, at: int) -> str:
        """The laptop's SessionId at time `at`."""
        position = bisect.bisect_right(self._laptop_sessions, (at, "\uffff")) - 1
        return self._laptop_sessions[max(position, 0)][1]

    def phone_session(self, at: int) -> str:
        position = bisect.bisect_right(self._phone_sessions, (at, "\uffff")) - 1
        return self._phone_sessions[max(position, 0)][1]

    # ---- planning ---------------------------------------------------------------------------

    def default_plan(self, day: int) -> DayPlan:
        """The day as the user would live it with nothing special going on."""
        rng, user = self.rng, self.user
        midnight = self.midnight(day)
        weekend = self.weekday(day) >= 5
        working = (not weekend and rng.random() < 0.93) or (weekend and rng.random() < 0.12)
        at_office = working and not weekend and rng.random() < user.office_share
        if weekend:
            start_minute = rng.uniform(10 * 60, 16 * 60)
            length = rng.uniform(60, 180)
        else:
            start_minute = user.work_start_minute + rng.uniform(-20, 20)
            length = user.work_minutes + rng.uniform(-40, 40)
        start = midnight + int(start_minute * MINUTE)
        at_home = routes.home(rng, user, day)
        laptop_route: Route
        if at_office:
            laptop_route = routes.office(self.tenant, user)
        elif user.uses_vpn and rng.random() < 0.5:
            laptop_route = routes.Mixed((at_home, routes.Fixed(routes.vpn(self.tenant, user))), (0.35, 0.65))
        else:
            laptop_route = at_home
        outings = []
        if not working and rng.random() < 0.6:
            outings.append((midnight + int(rng.uniform(10, 14) * HOUR), midnight + int(rng.uniform(15, 19) * HOUR)))
        elif working and not at_office and rng.random() < 0.4:
            lunch = midnight + int(rng.uniform(12, 12.5) * HOUR)
            outings.append((lunch, lunch + int(rng.uniform(45, 90) * MINUTE)))
        if rng.random() < 0.25:
            evening = midnight + int(rng.uniform(18.5, 20) * HOUR)
            outings.append((evening, evening + int(rng.uniform(1.5, 3) * HOUR)))
        out = routes.carrier(user)
        phone_day: Route = out
        if at_office and user.phone_on_office_wifi:
            phone_day = routes.office(self.tenant, user)
        elif working and not at_office:
            phone_day = at_home
        return DayPlan(
            day=day,
            midnight=midnight,
            laptop=working,
            start=start,
            end=start + int(length * MINUTE),
            at_office=at_office,
            laptop_route=laptop_route,
            phone_day=phone_day,
            phone_out=out,
            phone_home=routes.home(rng, user, day, ipv6_share=0.85),
            new_session=rng.random() < 0.25,
            outings=tuple(outings),
        )

    # ---- playing out ------------------------------------------------------------------------

    def run(self, overrides: Mapping[int, Override] | None = None) -> None:
        """Every local day of the period, with `overrides` replacing the plans of some days."""
        for day in range(self.days):
            plan = self.default_plan(day)
            if overrides and day in overrides:
                plan = overrides[day](plan)
            self.plans[day] = plan
            if plan.laptop:
                self._laptop_day(plan)
            self._phone_day(plan)
            self._noise(plan)

    def _laptop_day(self, plan: DayPlan) -> None:
        rng, user, laptop = self.rng, self.user, self.user.laptop
        t = plan.start
        if laptop.windows:
            self.events.append(
                SignIn(
                    t,
                    True,
                    plan.laptop_route(rng, t),
                    self.laptop_session(t),
                    catalog.WINDOWS_SIGN_IN,
                    catalog.AAD_GRAPH,
                    laptop,
                    catalog.WINDOWS_NATIVE_AGENTS[0],
                    NATIVE,
                    Auth.PASSWORDLESS,
                    binding="bound",
                )
            )
            t += int(rng.uniform(0.5, 4) * MINUTE)
        browser = plan.browser_route or plan.laptop_route
        if plan.new_session:
            self._laptop_sessions.append((t, ids.guid(rng)))
            self._fresh_browser_sign_in(t, browser, laptop, self.laptop_session(t))
        else:
            self._browser_sign_in(t, browser(rng, t), catalog.OFFICE_HOME, catalog.OFFICE_HOME_RESOURCE, Auth.SSO)
        for _ in range(rng.randrange(3)):
            when = int(rng.uniform(plan.start, plan.end))
            app, resource = rng.choice(_BROWSER_SIGNINS)
            self._browser_sign_in(when, browser(rng, when), app, resource, Auth.SSO)
        self.refreshes(
            plan.start + int(rng.uniform(1, 5) * MINUTE),
            plan.end,
            plan.laptop_route,
            mean_minutes=plan.refresh_mean,
            browser_route=plan.browser_route,
        )
        if user.admin_tools and rng.random() < 0.35:
            self._admin_tools(plan)
        if rng.random() < 0.04:
            self.microsoft_service_rows(
                int(rng.uniform(plan.start, plan.end)), rng.randrange(1, 7), rng.choice(catalog.MICROSOFT_SERVICE)
            )

    def _fresh_browser_sign_in(self, t: int, route: Route, device: Device, session: str) -> int:
        """A browser sign-in with password and MFA, sometimes after a typo or an MFA interrupt; returns its time."""
        rng = self.rng
        home, resource = catalog.OFFICE_HOME, catalog.OFFICE_HOME_RESOURCE
        if rng.random() < 0.03:
            self._browser(
                t, route(rng, t), home, resource, auth=Auth.WRONG_CREDENTIALS, result="50126", device=device, session=session
            )
            t += int(rng.uniform(10, 60) * 1000)
        if rng.random() < 0.15:
            self._browser(t, route(rng, t), home, resource, auth=Auth.INTERRUPTED, result="50074", device=device, session=session)
            t += int(rng.uniform(5, 40) * 1000)
        self._browser(t, route(rng, t), home, resource, auth=Auth.MFA, result="0", device=device, session=session)
        if rng.random() < 0.05:
            self._browser(
                t + 2000, route(rng, t), home, resource, auth=Auth.INTERRUPTED, result="50140", device=device, session=session
            )
        return t

    def _browser_sign_in(self, t: int, egress: Egress, app: App, resource: Resource, auth: Auth) -> None:
        """An interactive browser sign-in on the laptop, in the laptop's session."""
        self._browser(t, egress, app, resource, auth=auth, result="0", device=self.user.laptop, session=self.laptop_session(t))

    def _browser(
        self,
        t: int,
        egress: Egress,
        app: App,
        resource: Resource,
        *,
        auth: Auth,
        result: str,
        device: Device,
        session: str,
    ) -> None:
        agent = device.user_agent or self.user.laptop.user_agent
        # A joined Windows device signs the browser in with its primary refresh token.
        incoming = "primaryRefreshToken" if auth == Auth.SSO and device.windows and device.device_id else "none"
        self.events.append(
            SignIn(t, True, egress, session, app, resource, device, agent, BROWSER, auth, result, incoming=incoming)
        )

    def refreshes(
        self,
        t: int,
        until: int,
        route: Route,
        *,
        mean_minutes: float = 30.0,
        device: Device | None = None,
        session: str = "",
        browser_route: Route | None = None,
    ) -> None:
        """
        A computer's clients refreshing tokens from `t` to `until`, every 10-60 minutes (the laptop's session unless told).

        With `browser_route`, the web browser's refreshes leave through it and the native apps' through `route`.
        """
        rng = self.rng
        laptop = device or self.user.laptop
        table = _WINDOWS_REFRESHES if laptop.windows else _MAC_REFRESHES
        low, high = max(mean_minutes - 20, 5), mean_minutes + 30
        while t < until:
            egress = route(rng, t)
            current = session or self.laptop_session(t)
            for _ in range(1 + (rng.random() < 0.55) + (rng.random() < 0.25)):
                app, resource, agent, client = rng.choice(table)
                browser = agent < 0
                prt = laptop.windows and not browser and rng.random() < 0.6
                failed = rng.random() < 0.006
                self.events.append(
                    SignIn(
                        t + int(rng.uniform(0, 90_000)),
                        False,
                        browser_route(rng, t) if browser and browser_route is not None else egress,
                        current,
                        app,
                        resource,
                        laptop,
                        laptop.user_agent if browser else laptop.app_agents[agent % len(laptop.app_agents)],
                        client,
                        Auth.INTERRUPTED if failed else Auth.CLAIM,
                        rng.choice(_REFRESH_FAILURES) if failed else "0",
                        incoming="primaryRefreshToken" if prt else "refreshToken",
                        binding="bound" if prt else "unbound",
                    )
                )
            t += int(rng.uniform(low, high) * MINUTE)

    def _admin_tools(self, plan: DayPlan) -> None:
        """An administrator's command-line session: Azure CLI / PowerShell tokens, no device id."""
        rng = self.rng
        t = int(rng.uniform(plan.start, max(plan.start, plan.end - HOUR)))
        app, resource = rng.choice(_ADMIN_TOOLS)
        session = self.laptop_session(t)
        for _ in range(rng.randrange(2, 11)):
            self.events.append(
                SignIn(
                    t,
                    False,
                    plan.laptop_route(rng, t),
                    session,
                    app,
                    resource,
                    UNKNOWN_DEVICE,
                    _ADMIN_AGENT,
                    NATIVE,
                    Auth.CLAIM,
                    incoming="refreshToken",
                )
            )
            t += int(rng.uniform(1, 12) * MINUTE)

    def microsoft_service_rows(self, t: int, count: int, network: catalog.Network, spread_minutes: float = 20.0) -> list[str]:
        """Microsoft services acting for the user (Exchange, Teams, SharePoint, Flow) from Microsoft's network; returns their IPs."""
        rng = self.rng
        session = self.laptop_session(t)
        used = []
        for _ in range(count):
            egress = routes.network_egress(rng, network, self.user.home_place)
            app, resource = rng.choice(_SERVICES)
            self.events.append(SignIn(t, False, egress, session, app, resource, UNKNOWN_DEVICE, "", NATIVE, Auth.CLAIM))
            used.append(egress.ip)
            t += int(rng.uniform(0.2, spread_minutes) * MINUTE)
        return used

    def _phone_day(self, plan: DayPlan) -> None:
        rng, phone = self.rng, self.user.phone
        day_end = plan.midnight + DAY
        commute = 45 * MINUTE
        wake = plan.midnight + int(rng.uniform(6.5, 8) * HOUR)
        sleep = plan.midnight + int(rng.uniform(22, 23.8) * HOUR)
        if rng.random() < 0.03:
            self._phone_sessions.append((wake, ids.guid(rng)))
        interactive_at = wake + int(rng.uniform(0, 2) * HOUR) if rng.random() < 0.15 else -1
        t = plan.midnight + int(rng.uniform(0, 3) * HOUR)
        while t < day_end:
            if any(begin <= t <= until for begin, until in plan.outings):
                route = plan.phone_out
            elif plan.laptop and plan.start <= t <= plan.end:
                route = plan.phone_day
            elif plan.laptop and (plan.start - commute <= t < plan.start or plan.end < t <= plan.end + commute):
                route = plan.phone_out if plan.at_office else plan.phone_home
            else:
                route = plan.phone_home
            egress = route(rng, t)
            session = self.phone_session(t)
            if 0 <= interactive_at <= t:
                fresh = rng.random() < 0.2
                self.events.append(
                    SignIn(
                        t,
                        True,
                        egress,
                        session,
                        catalog.OUTLOOK_MOBILE,
                        catalog.EXCHANGE,
                        phone,
                        phone.user_agent,
                        NATIVE,
                        Auth.MFA if fresh else Auth.SSO,
                    )
                )
                interactive_at = -1
            pick = rng.random()
            if pick < 0.6:
                app, resource, agent = catalog.OUTLOOK_MOBILE, catalog.EXCHANGE, phone.app_agents[0]
            elif pick < 0.9:
                app, resource = catalog.TEAMS, rng.choice((catalog.TEAMS_SERVICES, catalog.SKYPE))
                agent = f"{phone.user_agent} TeamsMobile-{'iOS' if phone.operating_system == 'Ios' else 'Android'}"
            else:
                app, resource, agent = catalog.OFFICE, rng.choice((catalog.GRAPH, catalog.SHAREPOINT)), phone.user_agent
            failed = rng.random() < 0.01
            self.events.append(
                SignIn(
                    t,
                    False,
                    egress,
                    session,
                    app,
                    resource,
                    phone,
                    agent,
                    NATIVE,
                    Auth.INTERRUPTED if failed else Auth.CLAIM,
                    "50199" if failed else "0",
                    incoming="refreshToken",
                )
            )
            awake = wake <= t <= sleep
            mean = plan.phone_awake_mean if awake else 200.0
            t += int(rng.uniform(mean * 0.4, mean * 1.6) * MINUTE)

    def _noise(self, plan: DayPlan) -> None:
        """Directory changes that have nothing to do with an attack, so the security filter has work to do."""
        rng, user = self.rng, self.user
        me = Target("User", user.user_id, user.display_name, user.upn)
        if rng.random() < 0.02:
            t = plan.midnight + int(rng.uniform(8, 18) * HOUR)
            self.audits.append(
                AuditEvent(
                    t,
                    "Update user",
                    "UserManagement",
                    "Core Directory",
                    "Update",
                    Actor(app="Microsoft Substrate Management", app_id=""),
                    (me,),
                )
            )
        if rng.random() < 0.01:
            t = plan.midnight + int(rng.uniform(8, 18) * HOUR)
            group = Target("Group", ids.guid(rng), rng.choice(("All Staff", "Project Atlas", "Finance Readers", "VPN Users")))
            hq = self.tenant.offices[0]
            admin = Actor(
                upn=f"it.admin@{self.tenant.domain}",
                user_id=ids.guid(ids.generator(self.tenant.seed, "it-admin")),
                ip=addresses.host(hq.cidr, 1),
            )
            self.audits.append(
                AuditEvent(t, "Add member to group", "GroupManagement", "Core Directory", "Assign", admin, (me, group))
            )
        if plan.laptop and rng.random() < 0.004:
            # A new phone: registered from the user's own network during the day.
            t = int(rng.uniform(plan.start, plan.end))
            self.security_info_registered(t, plan.laptop_route(rng, t).ip, "Authenticator App")

    def security_info_registered(self, t: int, ip: str, method: str, who: Role = Role.USER) -> None:
        """The user (or whoever holds their session) registers an MFA method; the MFA service then updates the user."""
        user = self.user
        me = Target("User", user.user_id, user.display_name, user.upn)
        self.audits.append(
            AuditEvent(
                t - 90_000,
                "User started security info registration",
                "UserManagement",
                "Authentication Methods",
                "Add",
                Actor(upn=user.upn, user_id=user.user_id, ip=ip),
                (me,),
                "User started the registration for Authenticator App with Notification and Code",
                role=who,
            )
        )
        self.audits.append(
            AuditEvent(
                t,
                "User registered security info",
                "UserManagement",
                "Authentication Methods",
                "Add",
                Actor(upn=user.upn, user_id=user.user_id, ip=ip),
                (me,),
                f"User registered {method}",
                (("Method", method),),
                role=who,
            )
        )
        self.audits.append(
            AuditEvent(
                t + 3000,
                "Update user",
                "UserManagement",
                "Core Directory",
                "Update",
                Actor(app="Azure MFA StrongAuthenticationService", app_id=""),
                (me,),
                role=who,
            )
        )

    def device_registered(self, t: int, ip: str, device: Device, object_id: str, who: Role = Role.USER) -> None:
        """The user (or whoever holds their session) registers `device` in Entra: the Device Registration Service's audit rows."""
        user = self.user
        target = Target("Device", object_id, device.name)
        me = Target("User", user.user_id, user.display_name, user.upn)
        system = "Windows" if device.windows else device.operating_system.replace("Ios", "iOS")
        details = (
            ("Device Profile", "RegisteredDevice"),
            ("Device Trust Type", device.trust_type),
            ("Device OS", system),
            ("Device Id", device.device_id),
        )
        actor = Actor(upn=user.upn, user_id=user.user_id, ip=ip)
        service = Actor(app="Device Registration Service", app_id=catalog.DEVICE_REGISTRATION.resource_id)
        self.audits.append(
            AuditEvent(
                t, "Register device", "Device", "Device Registration Service", "Add", actor, (target,), details=details, role=who
            )
        )
        for offset, operation in ((1000, "Add registered owner to device"), (1500, "Add registered users to device")):
            self.audits.append(
                AuditEvent(t + offset, operation, "Device", "Core Directory", "Assign", service, (target, me), role=who)
            )
