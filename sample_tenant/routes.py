"""
Where a device's traffic leaves from: fixed addresses, mixes (split tunnel, dual stack), carrier churn.

A route is asked for an egress at each sign-in, in time order, and may change its answer over the
day the way the real network would: a phone's carrier hands out a new CGNAT address every so often,
a split-tunnel VPN sends some requests direct and some through the concentrator.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Protocol

from sample_tenant import addresses, catalog
from sample_tenant.catalog import Network, Place
from sample_tenant.events import MINUTE
from sample_tenant.tenant import Egress, Tenant, User


class Route(Protocol):
    """An egress for a sign-in at time `t` (calls come in time order)."""

    def __call__(self, rng: random.Random, t: int) -> Egress: ...


@dataclass(frozen=True, slots=True)
class Fixed:
    """Always the same address."""

    egress: Egress

    def __call__(self, rng: random.Random, t: int) -> Egress:
        return self.egress


@dataclass(frozen=True, slots=True)
class Mixed:
    """Each request independently through one of several routes, by weight."""

    routes: tuple[Route, ...]
    weights: tuple[float, ...]

    def __call__(self, rng: random.Random, t: int) -> Egress:
        pick = rng.random() * sum(self.weights)
        for route, weight in zip(self.routes, self.weights, strict=True):
            pick -= weight
            if pick < 0:
                return route(rng, t)
        return self.routes[-1](rng, t)


@dataclass(frozen=True, slots=True)
class Switch:
    """One route until time `at`, another from then on (a flight, a train arriving)."""

    at: int
    before: Route
    after: Route

    def __call__(self, rng: random.Random, t: int) -> Egress:
        return self.before(rng, t) if t < self.at else self.after(rng, t)


def _next_change(rng: random.Random, t: int, mean_minutes: float) -> int:
    """When an address handed out at `t` is replaced: exponential with `mean_minutes`, at least a minute on."""
    return t + int(rng.expovariate(1 / mean_minutes) * MINUTE) + MINUTE


@dataclass(slots=True)
class Churn:
    """
    A mobile carrier: a new address (and maybe a new geolocation) every `mean_minutes` on average.

    Carriers' geo-IP points at their gateways, so the city jumps between the country's big cities
    while the phone has not moved; IPv6-capable carriers hand out IPv6 most of the time.
    """

    network: Network
    places: tuple[Place, ...]
    mean_minutes: float
    ipv6_share: float = 0.0
    _current: Egress | None = field(default=None, init=False)
    _until: int = field(default=0, init=False)

    def __call__(self, rng: random.Random, t: int) -> Egress:
        if self._current is None or t >= self._until:
            v6 = bool(self.network.v6) and rng.random() < self.ipv6_share
            ip = addresses.random_host(rng, self.network.v6 if v6 else self.network.v4)
            # Geo-IP of carrier gateways is sticky but not stable: now and then the city jumps.
            keep = self._current is not None and rng.random() < 0.7
            place = self._current.place if keep and self._current is not None else rng.choice(self.places)
            self._current = Egress(ip, self.network.asn, place)
            self._until = _next_change(rng, t, self.mean_minutes)
        return self._current


@dataclass(slots=True)
class Rotating:
    """
    A privacy relay's egress pool: a fresh address of one of `networks` every `mean_minutes` on
    average, placed wherever the network's geolocation says (roughly the user's region, rarely their city).
    """

    networks: tuple[Network, ...]
    mean_minutes: float
    ipv6_share: float = 0.0
    _current: Egress | None = field(default=None, init=False)
    _until: int = field(default=0, init=False)

    def __call__(self, rng: random.Random, t: int) -> Egress:
        if self._current is None or t >= self._until:
            network = self.networks[rng.randrange(len(self.networks))]
            v6 = bool(network.v6) and rng.random() < self.ipv6_share
            ip = addresses.random_host(rng, network.v6 if v6 else network.v4)
            self._current = Egress(ip, network.asn, catalog.place_in(network.country, network.city))
            self._until = _next_change(rng, t, self.mean_minutes)
        return self._current


def office(tenant: Tenant, user: User) -> Route:
    """The user's office: two addresses of the office NAT pool, tagged with the office's named location."""
    cidr = user.office.cidr
    name = user.office.name
    asn = user.office.network.asn
    place = user.office.place
    first = Egress(addresses.host(cidr, user.index * 3), asn, place, name)
    second = Egress(addresses.host(cidr, user.index * 3 + 5), asn, place, name)
    return Mixed((Fixed(first), Fixed(second)), (0.75, 0.25))


def other_office(target: catalog.Place, tenant: Tenant, user: User) -> Route:
    """Another of the organisation's offices (a visit), or the user's own when `target` is not an office."""
    for candidate in tenant.offices:
        if candidate.place == target:
            return Fixed(
                Egress(addresses.host(candidate.cidr, user.index), candidate.network.asn, candidate.place, candidate.name)
            )
    return office(tenant, user)


def home_ipv4(user: User, day: int) -> Egress:
    """The home router's IPv4 address on `day` (some ISPs renew it once in the period)."""
    ip = user.home_ipv4_renewed if day >= user.home_ipv4_renewed_day else user.home_ipv4
    return Egress(ip, user.home_isp.asn, user.home_place)


def home_ipv6(rng: random.Random, user: User) -> Egress:
    """A temporary (privacy) IPv6 address in the home /64: a new one every day, same /64 and ASN."""
    return Egress(addresses.random_host(rng, user.home_ipv6_64), user.home_isp.asn, user.home_place)


def home(rng: random.Random, user: User, day: int, ipv6_share: float = 0.7) -> Route:
    """The home network: dual stack where the ISP gives the user IPv6, IPv4 only otherwise."""
    v4 = Fixed(home_ipv4(user, day))
    if not user.home_ipv6_64:
        return v4
    return Mixed((Fixed(home_ipv6(rng, user)), v4), (ipv6_share, 1 - ipv6_share))


def carrier(user: User, mean_minutes: float = 90.0, places: tuple[Place, ...] = ()) -> Churn:
    """The user's own mobile carrier."""
    return Churn(user.carrier, places or user.carrier_places, mean_minutes, ipv6_share=0.6)


def vpn(tenant: Tenant, user: User) -> Egress:
    """The corporate VPN's egress address this user's tunnel lands on."""
    return Egress(addresses.host(tenant.vpn.cidr, user.index % 29), tenant.vpn.network.asn, tenant.vpn.place)


def network_egress(rng: random.Random, network: Network, fallback: Place) -> Egress:
    """A random address of a catalog network, placed at the network's city (or `fallback`)."""
    place = catalog.place_in(network.country, network.city) if network.city else fallback
    return Egress(addresses.random_host(rng, network.v4), network.asn, place)
