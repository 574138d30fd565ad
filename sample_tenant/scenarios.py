"""
Scripted scenarios: which user gets which story, when the incident fires, and the ground truth.

A scenario is bound to one user and plays in three steps around that user's ordinary simulation:
`adapt` changes the user (gives them a VPN habit, IPv6 at home), `overrides` replaces the plans of
chosen days (a trip, a day on the road), and `play` adds the scripted events once the ordinary ones
exist, so an attacker can reuse the victim's real SessionId and a look-alike can sit inside the
user's real day. The truth (`Truth`) is read back from the events, not restated by hand.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum
from typing import Any

from enrichment.domain.model import ExplanationKind, Verdict
from sample_tenant import catalog, ids, routes
from sample_tenant.activity import DayPlan, Override, Simulation
from sample_tenant.catalog import Network
from sample_tenant.events import HOUR, MINUTE, Role, SignIn, iso
from sample_tenant.tenant import Egress, User

#: The incident time is drawn this far before the end of the data at most...
LATEST_BEFORE_END = 6 * HOUR
#: ...and this far at most: "inside the last 2 days".
EARLIEST_BEFORE_END = 48 * HOUR
#: The evidence window the ground truth is stated over (the product's defaults: 24 h before, 6 h after).
WINDOW_BEFORE = 24 * HOUR
WINDOW_AFTER = 6 * HOUR


class Family(StrEnum):
    AITM_COOKIE_REPLAY = "aitm_cookie_replay"
    REFRESH_TOKEN_REPLAY = "refresh_token_replay"  # noqa: S105 - a scenario family, not a secret
    DEVICE_CODE_PHISHING = "device_code_phishing"
    AITM_RESIDENTIAL_REPLAY = "aitm_residential_replay"
    RELAY_REPLAY = "relay_replay"
    VPN_SPLIT_TUNNEL = "vpn_split_tunnel"
    TRAVEL_WITH_RECORD = "travel_with_record"
    MOBILE_CARRIER_CHURN = "mobile_carrier_churn"
    IPV6_DUAL_STACK = "ipv6_dual_stack"
    MICROSOFT_SERVICE_IPS = "microsoft_service_ips"
    NEW_PHONE_ENROLMENT = "new_phone_enrolment"
    ICLOUD_PRIVATE_RELAY = "icloud_private_relay"
    WARP_EDGE_SECURE_NETWORK = "warp_edge_secure_network"
    ORGANISATION_SSE = "organisation_sse"
    ORDINARY = "ordinary"
    NEW_ISP_NEW_DEVICE = "new_isp_new_device"
    TRAVEL_WITHOUT_RECORD = "travel_without_record"


class Kind(StrEnum):
    ATTACK = "attack"
    BENIGN = "benign"
    GREY = "grey"  # benign, but nothing in the evidence can say so: the honest verdict is `suspicious`
    ORDINARY = "ordinary"


KIND = {
    Family.AITM_COOKIE_REPLAY: Kind.ATTACK,
    Family.REFRESH_TOKEN_REPLAY: Kind.ATTACK,
    Family.DEVICE_CODE_PHISHING: Kind.ATTACK,
    Family.AITM_RESIDENTIAL_REPLAY: Kind.ATTACK,
    Family.RELAY_REPLAY: Kind.ATTACK,
    Family.VPN_SPLIT_TUNNEL: Kind.BENIGN,
    Family.TRAVEL_WITH_RECORD: Kind.BENIGN,
    Family.MOBILE_CARRIER_CHURN: Kind.BENIGN,
    Family.IPV6_DUAL_STACK: Kind.BENIGN,
    Family.MICROSOFT_SERVICE_IPS: Kind.BENIGN,
    Family.NEW_PHONE_ENROLMENT: Kind.BENIGN,
    Family.ICLOUD_PRIVATE_RELAY: Kind.BENIGN,
    Family.WARP_EDGE_SECURE_NETWORK: Kind.BENIGN,
    Family.ORGANISATION_SSE: Kind.BENIGN,
    Family.NEW_ISP_NEW_DEVICE: Kind.GREY,
    Family.TRAVEL_WITHOUT_RECORD: Kind.GREY,
    Family.ORDINARY: Kind.ORDINARY,
}

#: The verdict a correct triage gives each kind: grey stories are the user, but only the user can say so.
EXPECTED_VERDICT = {
    Kind.ATTACK: Verdict.REPLAY_LIKELY,
    Kind.BENIGN: Verdict.BENIGN,
    Kind.GREY: Verdict.SUSPICIOUS,
    Kind.ORDINARY: Verdict.BENIGN,
}

EXPECTED = {
    Family.VPN_SPLIT_TUNNEL: ExplanationKind.CORPORATE_VPN,
    Family.TRAVEL_WITH_RECORD: ExplanationKind.TRAVEL,
    Family.MOBILE_CARRIER_CHURN: ExplanationKind.MOBILE_CARRIER,
    Family.IPV6_DUAL_STACK: ExplanationKind.DUAL_STACK,
    Family.MICROSOFT_SERVICE_IPS: ExplanationKind.MICROSOFT_NETWORK,
    Family.NEW_PHONE_ENROLMENT: ExplanationKind.NEW_DEVICE,
    Family.ICLOUD_PRIVATE_RELAY: ExplanationKind.PRIVACY_RELAY,
    Family.WARP_EDGE_SECURE_NETWORK: ExplanationKind.PRIVACY_RELAY,
    Family.ORGANISATION_SSE: ExplanationKind.SECURITY_SERVICE_EDGE,
}


@dataclass(frozen=True, slots=True)
class TravelRecord:
    """One row of the TravelRecords watchlist (dates are ISO dates, end exclusive of activity)."""

    upn: str
    country: str
    start: str
    end: str


@dataclass(slots=True)
class Scenario:
    """One seeded variant bound to one user; scripts fill in the times, addresses and records."""

    scenario_id: str
    family: Family
    user_index: int
    rng: random.Random
    earliest: int
    latest: int
    at: int = 0
    day: int = -1
    plan: DayPlan | None = None
    incident_ip: str = ""
    explains: Callable[[SignIn], bool] = field(default=lambda event: False)
    travel: list[TravelRecord] = field(default_factory=list)
    traits: dict[str, object] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> Kind:
        return KIND[self.family]


@dataclass(frozen=True, slots=True)
class Truth:
    """What a correct triage should conclude, as written to scenarios.json."""

    scenario_id: str
    family: str
    kind: str
    user: str
    user_id: str
    at: str
    attacker_ips: tuple[str, ...]
    victim_ips: tuple[str, ...]
    explained_ips: tuple[str, ...]
    expected_explanation: str | None
    expected_verdict: str
    incident: str
    incident_ip: str
    traits: dict[str, object]

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.scenario_id,
            "family": self.family,
            "kind": self.kind,
            "user": self.user,
            "user_id": self.user_id,
            "at": self.at,
            "attacker_ips": list(self.attacker_ips),
            "victim_ips": list(self.victim_ips),
            "expected_explanation": self.expected_explanation,
            "expected_verdict": self.expected_verdict,
            "incident": self.incident,
            "incident_ip": self.incident_ip,
            "explained_ips": list(self.explained_ips),
            "traits": self.traits,
        }


class Script:
    """A family's story; the defaults leave the user's life unchanged."""

    def adapt(self, scenario: Scenario, user: User) -> User:
        """The user as this story needs them (a VPN habit, IPv6 at home), before anything is simulated."""
        return user

    def overrides(self, scenario: Scenario, sim: Simulation) -> dict[int, Override]:
        """Day plans to replace, by local day index; also the place to choose the incident day."""
        return {}

    def play(self, scenario: Scenario, sim: Simulation) -> None:
        """Add the story's events to the simulated ones; set the incident time, its IP and what explains it."""


# --------------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------------


def plan_scenarios(seed: int, user_count: int, variants: int, end: int) -> dict[int, Scenario]:
    """
    Bind `variants` scenarios of every family to distinct users; keyed by user index.

    Users are drawn from a seeded shuffle, so the same seed binds the same users; each variant has
    its own generator, so its choices do not shift when other variants change.
    """
    families = list(Family)
    needed = len(families) * variants
    if needed > user_count:
        msg = f"{variants} variants of {len(families)} families need {needed} users; only {user_count} requested"
        raise ValueError(msg)
    order = list(range(user_count))
    ids.generator(seed, "scenario-users").shuffle(order)
    planned: dict[int, Scenario] = {}
    position = 0
    for number in range(1, variants + 1):
        for family in families:
            scenario_id = f"{family.value}-{number:02d}"
            index = order[position]
            position += 1
            planned[index] = Scenario(
                scenario_id=scenario_id,
                family=family,
                user_index=index,
                rng=ids.generator(seed, "scenario", scenario_id),
                earliest=end - EARLIEST_BEFORE_END,
                latest=end - LATEST_BEFORE_END,
            )
    return planned


# --------------------------------------------------------------------------------------------
# Helpers shared by the scripts
# --------------------------------------------------------------------------------------------


def pick_day(scenario: Scenario, sim: Simulation, first_hour: float = 8, last_hour: float = 18, *, history_days: int = 0) -> int:
    """
    A local day whose hours `first_hour`..`last_hour` overlap the allowed incident times.

    With `history_days`, prefer days preceded by that many whole days of data, for stories whose
    explanation rests on what the user did before (a carrier they always use).
    """
    days = [
        day
        for day in range(sim.days)
        if sim.local(day, first_hour * 60) < scenario.latest and sim.local(day, last_hour * 60) > scenario.earliest
    ]
    with_history = [day for day in days if sim.midnight(day - history_days) >= sim.start]
    return scenario.rng.choice(with_history or days or [sim.day_of(scenario.latest)])


def working(plan: DayPlan, sim: Simulation, rng: random.Random) -> DayPlan:
    """The plan as a working day (a weekend or day off becomes one; routes kept)."""
    if plan.laptop and plan.end - plan.start >= 6 * HOUR:
        return plan
    start = plan.midnight + int((sim.user.work_start_minute + rng.uniform(-15, 15)) * MINUTE)
    return replace(plan, laptop=True, start=start, end=start + sim.user.work_minutes * MINUTE)


def time_between(rng: random.Random, low: int, high: int, earliest: int, latest: int) -> int:
    """A time in [low, high] ∩ [earliest, latest], or the allowed time nearest the range if they do not meet."""
    lo, hi = max(low, earliest), min(high, latest)
    if lo <= hi:
        return int(rng.uniform(lo, hi))
    return min(max(low, earliest), latest)


def attacker_network(rng: random.Random, victim: User, weights: dict[str, float]) -> Network:
    """
    Where an attacker operates from, by weighted kind.

    Kinds: hosting or a consumer VPN abroad or in the victim's own country (the look-alikes of
    travel and corporate VPN), a residential or mobile proxy in the victim's country (the
    look-alike of home and carrier churn), an Azure VM (the look-alike of Microsoft's own network).
    """
    country = victim.country
    kinds = list(weights)
    kind = rng.choices(kinds, weights=[weights[k] for k in kinds])[0]
    pools: dict[str, Iterable[Network]] = {
        "hosting_foreign": (n for n in catalog.HOSTING if n.country != country),
        "hosting_local": (n for n in catalog.HOSTING if n.country == country),
        "vpn_local": (n for n in catalog.VPN_PROVIDERS if n.country == country),
        "vpn_foreign": (n for n in catalog.VPN_PROVIDERS if n.country != country),
        "residential_local": (n for n in catalog.RESIDENTIAL if n.country == country and n.asn != victim.home_isp.asn),
        "mobile_local": (n for n in catalog.MOBILE if n.country == country),
        "azure": iter(catalog.MICROSOFT_CLOUD),
    }
    pool = list(pools[kind]) or [n for n in catalog.HOSTING if n.country != country]
    return rng.choice(pool)


def attacker_egress(rng: random.Random, network: Network, victim: User) -> Egress:
    """An address of `network`, never one the victim uses."""
    fallback = rng.choice(catalog.COUNTRIES[network.country].cities)
    while True:
        egress = routes.network_egress(rng, network, fallback)
        if egress.ip not in (victim.home_ipv4, victim.home_ipv4_renewed):
            return egress


def decoy_travel(scenario: Scenario, user: User, avoid: set[str], sim: Simulation) -> None:
    """Sometimes give an attack victim a genuine travel record for some other country, covering the incident."""
    rng = scenario.rng
    if rng.random() >= 0.25:
        return
    country = rng.choice([c for c in catalog.TRAVEL_COUNTRIES if c not in avoid and c != user.country])
    start = sim.first_date.toordinal() + scenario.day - rng.randrange(1, 4)
    end = sim.first_date.toordinal() + scenario.day + rng.randrange(2, 6)
    scenario.travel.append(TravelRecord(user.upn, country, _date(start), _date(end)))
    scenario.traits["decoy_travel_country"] = country


def _date(ordinal: int) -> str:
    return date.fromordinal(ordinal).isoformat()


# --------------------------------------------------------------------------------------------
# Ground truth
# --------------------------------------------------------------------------------------------


def truth(scenario: Scenario, user: User, events: list[SignIn]) -> Truth:
    """The scenario's ground truth, read from the user's events inside the evidence window."""
    low, high = scenario.at - WINDOW_BEFORE, scenario.at + WINDOW_AFTER
    inside = [e for e in events if low <= e.time <= high]
    attacker = sorted({e.egress.ip for e in inside if e.role == Role.ATTACKER})
    victim = sorted({e.egress.ip for e in inside if e.role == Role.USER} - set(attacker))
    explained = sorted({e.egress.ip for e in inside if e.role == Role.USER and scenario.explains(e)})
    expected = EXPECTED.get(scenario.family)
    return Truth(
        scenario_id=scenario.scenario_id,
        family=scenario.family.value,
        kind=scenario.kind.value,
        user=user.upn,
        user_id=user.user_id,
        at=iso(scenario.at).replace(".000Z", "Z"),
        attacker_ips=tuple(attacker),
        victim_ips=tuple(victim),
        explained_ips=tuple(explained),
        expected_explanation=expected.value if expected else None,
        expected_verdict=EXPECTED_VERDICT[scenario.kind].value,
        incident=f"incidents/{scenario.scenario_id}.json",
        incident_ip=scenario.incident_ip,
        traits=dict(sorted(scenario.traits.items())),
    )


def activity_span(scenario: Scenario, events: list[SignIn]) -> tuple[int, int]:
    """First and last use of the incident's IP up to the incident time (the alert's activity span)."""
    times = [
        e.time for e in events if e.egress.ip == scenario.incident_ip and scenario.at - WINDOW_BEFORE <= e.time <= scenario.at
    ]
    if not times:
        return scenario.at, scenario.at
    return min(times), max(times)
