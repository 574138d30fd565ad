"""
The two sweeps over time-sorted activity: streams at the same time, and places too far apart too fast.

Comparing every row with every other row is quadratic, and one user's token refreshes run to tens
of thousands of rows. Both sweeps walk the activity once in time order and keep only what is still
"recent" (a heap of end times), so the cost is O(n log n) plus the (small) number of streams or
places alive at once. They find the same pairs as comparing all rows would: tests/unit/test_sweeps.py
checks that against the all-pairs definition with generated evidence.

Pure functions over `SignIn` values; the rules in `network` decide what a pair implicates.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from operator import attrgetter, itemgetter
from typing import Any, NamedTuple

from enrichment.domain.model import SignIn

#: A stream of activity: (owner, AS, country). The owner is the unfamiliar IP, or "" for all the
#: user's known addresses of that AS and country together.
Stream = tuple[str, int | None, str]
#: Merged activity of one stream: (start, end, owner, AS, country, the first row's IP).
Interval = tuple[datetime, datetime, str, int | None, str, str]

#: The owner of every stream or place made by the networks the user is known on.
KNOWN = ""
_FIRST = attrgetter("first")
_START = itemgetter(0)


def owner_of(signin: SignIn, unfamiliar: frozenset[str]) -> str:
    """The row's unfamiliar IP, or `KNOWN` when it comes from a network the user is known on."""
    return signin.ip if signin.ip in unfamiliar else KNOWN


def activity(rows: Iterable[SignIn], unfamiliar: frozenset[str]) -> list[Interval]:
    """
    Activity as merged time intervals per stream, sorted by start.

    A phone churning through carrier addresses is one stream, not thousands. Two rows are within a
    gap of each other exactly when the merged intervals holding them are (a merged interval is
    covered by its rows without holes), so sweeping intervals gives the same pairs as sweeping rows.
    One pass over the rows in time order: each stream's open interval grows until a row starts after
    its end. An interval's example IP is that
    of its earliest row (the shortest, then the lowest IP, among rows starting together).
    """
    open_: dict[Stream, list[Any]] = {}  # stream -> [start, end, example's last, example IP]
    merged: list[Interval] = []
    # Plain tuples, read in memory order and then sorted: far cheaper than visiting rows out of order.
    spans = [(s.first, s.last, s.ip, s.asn, s.country) for s in rows]
    spans.sort(key=_START)
    for first, last, ip, asn, country in spans:
        key = (ip if ip in unfamiliar else KNOWN, asn, country)
        current = open_.get(key)
        if current is None:
            open_[key] = [first, last, last, ip]
        elif first <= current[1]:
            if last > current[1]:  # noqa: PLR1730 - a comparison is cheaper than max() in this hot loop
                current[1] = last
            if first == current[0] and (last, ip) < (current[2], current[3]):
                current[2], current[3] = last, ip
        else:
            merged.append((current[0], current[1], *key, current[3]))
            open_[key] = [first, last, last, ip]
    merged.extend((current[0], current[1], *key, current[3]) for key, current in open_.items())
    rank = {key: index for index, key in enumerate(open_)}  # streams in order of first appearance
    merged.sort(key=lambda item: (item[0], item[2], item[5], rank[(item[2], item[3], item[4])]))
    return merged


def concurrent_pairs(rows: Iterable[SignIn], unfamiliar: frozenset[str], gap: timedelta) -> set[tuple[str, str]]:
    """
    Pairs of streams active within `gap` of each other from different ASes or countries.

    Each pair is (IP, IP) sorted: an unfamiliar stream by its IP, a known one by an example IP of it.
    Two known networks (laptop at home, phone on the carrier) are never a pair, nor is one
    unfamiliar IP with itself.
    """
    active: dict[Stream, tuple[datetime, str]] = {}
    # (end, push number, stream): the number breaks ties, so streams (whose AS may be None) are never compared.
    expiry: list[tuple[datetime, int, Stream]] = []
    pairs: set[tuple[str, str]] = set()
    for pushed, (first, last, owner, asn, country, example) in enumerate(activity(rows, unfamiliar)):
        horizon = first - gap
        while expiry and expiry[0][0] < horizon:
            end, _, key = heapq.heappop(expiry)
            if key in active and active[key][0] == end:
                del active[key]
        for (other, other_asn, other_country), (_, other_example) in active.items():
            if (other == owner and owner) or (not other and not owner):
                continue  # the same unfamiliar IP, or two networks the user is known on
            if (asn is not None and other_asn is not None and asn != other_asn) or (
                country and other_country and country != other_country
            ):
                me, them = owner or example, other or other_example
                pairs.add((min(me, them), max(me, them)))
        key = (owner, asn, country)
        previous = active.get(key)
        end = max(previous[0], last) if previous else last
        active[key] = (end, previous[1] if previous else example)
        heapq.heappush(expiry, (end, pushed, key))
    return pairs


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km on a spherical earth (radius 6371 km)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))


class Jump(NamedTuple):
    """The fastest move between two owners: km/h (inf at the same time), km, hours, and the two IPs sorted."""

    speed: float
    distance: float
    hours: float
    first_ip: str
    second_ip: str


#: A place: a ~10 km cell (coordinates rounded to 0.1 degree) and the owner seen there.
Place = tuple[tuple[float, float], str]


def travel_jumps(
    rows: Iterable[SignIn], unfamiliar: frozenset[str], *, speed_kmh: float, min_km: float, horizon: timedelta
) -> dict[tuple[str, str], Jump]:
    """
    (owner, owner) -> the fastest move between them faster than `speed_kmh` over at least `min_km`.

    Rows without coordinates are left out. Rows are swept in time order; each place remembers when it
    was last seen, separately for every unfamiliar IP and once for all the user's known networks
    together (a phone churning through thousands of carrier addresses stays one entry). A sign-in is
    compared with every place seen in the last `horizon`, which must be long enough that no move
    beyond it can be faster than `speed_kmh`. A later sign-in at a place only makes a jump harder to
    explain, so an added row can reveal a jump but never hide one.
    """
    located = sorted((s for s in rows if s.latitude is not None and s.longitude is not None), key=_FIRST)
    places: dict[Place, tuple[datetime, float, float, str]] = {}
    expiry: list[tuple[datetime, Place]] = []
    worst: dict[tuple[str, str], Jump] = {}
    for s in located:
        lat, lon = s.latitude, s.longitude
        assert lat is not None  # filtered above; narrows the type
        assert lon is not None
        owner = owner_of(s, unfamiliar)
        place = ((round(lat, 1), round(lon, 1)), owner)
        while expiry and expiry[0][0] < s.first - horizon:
            last, key = heapq.heappop(expiry)
            if key in places and places[key][0] == last:
                del places[key]
        for (cell, other), (last, plat, plon, shown) in places.items():
            if cell == place[0] or (other == owner and owner != KNOWN) or (other == KNOWN and owner == KNOWN):
                continue
            distance = haversine_km(plat, plon, lat, lon)
            if distance < min_km:
                continue
            hours = max((s.first - last).total_seconds(), 0.0) / 3600
            speed = math.inf if hours == 0 else distance / hours
            if speed > speed_kmh:
                pair = (min(other, owner), max(other, owner))
                candidate = Jump(speed, distance, hours, *sorted((shown, s.ip)))
                if pair not in worst or candidate > worst[pair]:
                    worst[pair] = candidate
        seen = places.get(place)
        if seen is None or (s.last, s.ip) > (seen[0], seen[3]):
            places[place] = (s.last, lat, lon, s.ip)
            heapq.heappush(expiry, (s.last, place))
    return worst
