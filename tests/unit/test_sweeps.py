"""The two sweeps find the same pairs as comparing every row with every other row (generated evidence)."""

from __future__ import annotations

import math
from datetime import timedelta
from itertools import combinations

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from enrichment.domain.model import SignIn
from enrichment.domain.signals.network import CONCURRENCY_GAP, TRAVEL_HORIZON, TRAVEL_MIN_KM, TRAVEL_SPEED_KMH
from enrichment.domain.signals.sweeps import KNOWN, concurrent_pairs, haversine_km, owner_of, travel_jumps
from tests.unit.factories import signin

#: Addresses: the first three are the user's known ones unless drawn as unfamiliar.
_IPS = ("198.51.100.10", "198.51.100.11", "192.0.2.77", "203.0.113.66", "203.0.113.99", "2001:db8::1")
#: Places on the 0.1-degree grid the travel sweep buckets by: Seattle, Portland (235 km away: too near
#: to count), Amsterdam, Lagos and Frankfurt; every place is exactly one cell.
_PLACES = ((47.6, -122.3), (45.5, -122.7), (52.4, 4.9), (6.5, 3.4), (50.1, 8.7))

_SWEEP_SETTINGS = hypothesis_settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def evidence_rows(draw: st.DrawFn) -> list[SignIn]:
    """
    Up to 30 rows from a few networks (address, AS, country, place), starting within 30 hours (often
    the first 5) and lasting up to an hour, on a five-minute grid: rows of one network often touch,
    nest and fall exactly the gap apart from another's.
    """
    networks = draw(
        st.lists(
            st.tuples(
                st.sampled_from(_IPS),
                st.sampled_from((7922, 21928, 14061, None)),
                st.sampled_from(("US", "NL", "")),
                st.sampled_from((*_PLACES, None)),
            ),
            min_size=1,
            max_size=5,
        )
    )
    rows = []
    for _ in range(draw(st.integers(0, 30))):
        ip, asn, country, place = draw(st.sampled_from(networks))
        start = 5 * draw(st.integers(0, 60) | st.integers(0, 360))
        first = signin(minutes=start).first
        rows.append(
            signin(
                minutes=start,
                ip=ip,
                asn=asn,
                country=country,
                latitude=place[0] if place else None,
                longitude=place[1] if place else None,
                last=first + timedelta(minutes=5 * draw(st.integers(0, 12))),
            )
        )
    return rows


unfamiliar_sets = st.frozensets(st.sampled_from(_IPS)).map(frozenset)


def _owners(pairs: set[tuple[str, str]], unfamiliar: frozenset[str]) -> set[frozenset[str]]:
    """IP pairs as owner pairs: an unfamiliar IP stands for itself, any known address for `KNOWN`."""
    return {frozenset(ip if ip in unfamiliar else KNOWN for ip in pair) for pair in pairs}


def _comparable(a: SignIn, b: SignIn, unfamiliar: frozenset[str]) -> tuple[str, str] | None:
    """The two rows' owners, unless they are one unfamiliar IP or two known networks."""
    first, second = owner_of(a, unfamiliar), owner_of(b, unfamiliar)
    if (first == second and first != KNOWN) or (first == KNOWN and second == KNOWN):
        return None
    return first, second


def all_pairs_concurrent(rows: list[SignIn], unfamiliar: frozenset[str], gap: timedelta) -> set[frozenset[str]]:
    """Every two rows of different AS or country whose activity comes within `gap`: their owners."""
    found: set[frozenset[str]] = set()
    for a, b in combinations(rows, 2):
        owners = _comparable(a, b, unfamiliar)
        if owners is None:
            continue
        different = (a.asn is not None and b.asn is not None and a.asn != b.asn) or (
            bool(a.country) and bool(b.country) and a.country != b.country
        )
        if different and a.first <= b.last + gap and b.first <= a.last + gap:
            found.add(frozenset(owners))
    return found


def all_pairs_travel(rows: list[SignIn], unfamiliar: frozenset[str]) -> dict[frozenset[str], tuple[float, float]]:
    """Every two located rows too far apart for the time between them: owners -> the fastest (km/h, km)."""
    found: dict[frozenset[str], tuple[float, float]] = {}
    located = [(s, (s.latitude, s.longitude)) for s in rows if s.latitude is not None and s.longitude is not None]
    for (a, here), (b, there) in combinations(located, 2):
        owners = _comparable(a, b, unfamiliar)
        if owners is None or here == there:
            continue
        distance = haversine_km(*here, *there)
        early, late = (a, b) if a.first <= b.first else (b, a)
        hours = max((late.first - early.last).total_seconds(), 0.0) / 3600
        speed = math.inf if hours == 0 else distance / hours
        if distance >= TRAVEL_MIN_KM and speed > TRAVEL_SPEED_KMH:
            key = frozenset(owners)
            found[key] = max(found.get(key, (0.0, 0.0)), (speed, distance))
    return found


@pytest.mark.slow
class TestConcurrentPairs:
    @_SWEEP_SETTINGS
    @given(evidence_rows(), unfamiliar_sets)
    def test_the_sweep_finds_the_pairs_all_rows_would(self, rows: list[SignIn], unfamiliar: frozenset[str]) -> None:
        """The interval sweep pairs exactly the owners that some two rows pair when every row meets every other."""
        swept = concurrent_pairs(rows, unfamiliar, CONCURRENCY_GAP)
        assert _owners(swept, unfamiliar) == all_pairs_concurrent(rows, unfamiliar, CONCURRENCY_GAP)

    @_SWEEP_SETTINGS
    @given(evidence_rows(), unfamiliar_sets)
    def test_a_known_side_is_named_by_one_of_its_addresses(self, rows: list[SignIn], unfamiliar: frozenset[str]) -> None:
        """Every IP in a pair is one of the rows' addresses, and the known side is an address the user is known on."""
        addresses = {s.ip for s in rows}
        for pair in concurrent_pairs(rows, unfamiliar, CONCURRENCY_GAP):
            assert set(pair) <= addresses
            assert any(ip in unfamiliar for ip in pair)

    def test_rows_exactly_the_gap_apart_are_concurrent(self) -> None:
        """The gap is inclusive: a refresh ten minutes after another network's last one still counts."""
        home = signin(minutes=0, ip=_IPS[0], asn=7922, country="US", last=signin(minutes=5).first)
        away = signin(minutes=15, ip=_IPS[3], asn=14061, country="NL")
        assert concurrent_pairs([home, away], frozenset({_IPS[3]}), CONCURRENCY_GAP) == {(_IPS[0], _IPS[3])}
        later = signin(minutes=15.01, ip=_IPS[3], asn=14061, country="NL")
        assert concurrent_pairs([home, later], frozenset({_IPS[3]}), CONCURRENCY_GAP) == set()

    def test_a_row_nested_in_a_longer_one_does_not_shorten_it(self) -> None:
        """An hour-long refresh run with a short one inside it is still active when the other network starts."""
        long_run = signin(minutes=0, ip=_IPS[0], asn=7922, country="US", last=signin(minutes=60).first)
        inside = signin(minutes=10, ip=_IPS[1], asn=7922, country="US", last=signin(minutes=20).first)
        away = signin(minutes=40, ip=_IPS[3], asn=14061, country="NL")
        rows = [long_run, inside, away]
        assert _owners(concurrent_pairs(rows, frozenset({_IPS[3]}), CONCURRENCY_GAP), frozenset({_IPS[3]})) == {
            frozenset({KNOWN, _IPS[3]})
        }

    def test_a_stream_seen_again_outlives_its_earlier_end(self) -> None:
        """A network back after a short pause stays active until its new end, not its first one."""
        first = signin(minutes=0, ip=_IPS[0], asn=7922, country="US", last=signin(minutes=10).first)
        again = signin(minutes=15, ip=_IPS[0], asn=7922, country="US", last=signin(minutes=25).first)
        away = signin(minutes=30, ip=_IPS[3], asn=14061, country="NL")
        assert concurrent_pairs([first, again, away], frozenset({_IPS[3]}), CONCURRENCY_GAP) == {(_IPS[0], _IPS[3])}


@pytest.mark.slow
class TestTravelJumps:
    @_SWEEP_SETTINGS
    @given(evidence_rows(), unfamiliar_sets)
    def test_the_sweep_finds_the_jumps_all_rows_would(self, rows: list[SignIn], unfamiliar: frozenset[str]) -> None:
        """The place sweep flags exactly the owner pairs, at the same top speed and distance, as comparing all rows."""
        swept = travel_jumps(rows, unfamiliar, speed_kmh=TRAVEL_SPEED_KMH, min_km=TRAVEL_MIN_KM, horizon=TRAVEL_HORIZON)
        found = {frozenset(pair): (jump.speed, jump.distance) for pair, jump in swept.items()}
        assert found == all_pairs_travel(rows, unfamiliar)

    @_SWEEP_SETTINGS
    @given(evidence_rows(), unfamiliar_sets)
    def test_a_jump_names_two_addresses_that_made_it(self, rows: list[SignIn], unfamiliar: frozenset[str]) -> None:
        """The two IPs a jump names are sorted, and each belongs to one side of the pair."""
        swept = travel_jumps(rows, unfamiliar, speed_kmh=TRAVEL_SPEED_KMH, min_km=TRAVEL_MIN_KM, horizon=TRAVEL_HORIZON)
        for (a, b), jump in swept.items():
            assert jump.first_ip <= jump.second_ip
            sides = {owner_of(s, unfamiliar) for s in rows if s.ip in (jump.first_ip, jump.second_ip)}
            assert {a, b} <= sides

    def test_a_place_seen_again_is_remembered_from_its_latest_visit(self) -> None:
        """Seattle at dawn and again 20 hours later, Amsterdam 5 hours after that: the second visit makes the jump."""
        seattle = signin(minutes=0, ip=_IPS[0], latitude=47.6, longitude=-122.3)
        again = signin(minutes=20 * 60, ip=_IPS[0], latitude=47.6, longitude=-122.3)
        amsterdam = signin(minutes=25 * 60, ip=_IPS[3], latitude=52.4, longitude=4.9)
        swept = travel_jumps(
            [seattle, again, amsterdam],
            frozenset({_IPS[3]}),
            speed_kmh=TRAVEL_SPEED_KMH,
            min_km=TRAVEL_MIN_KM,
            horizon=TRAVEL_HORIZON,
        )
        assert set(swept) == {(KNOWN, _IPS[3])}

    def test_the_horizon_hides_no_jump(self) -> None:
        """No two places are far enough apart to beat the speed limit after the horizon, so forgetting older places is safe."""
        assert math.pi * 6371.0 / TRAVEL_HORIZON.total_seconds() * 3600 < TRAVEL_SPEED_KMH
