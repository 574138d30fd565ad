"""The score and verdict: bounds, thresholds, determinism, and evidence that only ever adds."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from common.settings import Settings
from enrichment.domain.model import Assessment, Baseline, SignIn, Table, UserEvidence, Verdict
from enrichment.domain.scoring import MAX_SCORE, WEIGHTS, assess, score_of, verdict_for
from tests.unit.factories import (
    ATTACKER,
    ATTACKER_2,
    AZURE_CLI,
    FIREFOX,
    HOME,
    HOTEL_FR,
    LAPTOP,
    MICROSOFT,
    NORDVPN,
    OFFICE,
    OUTLOOK_WEB,
    PHONE,
    TEAMS_WEB,
    baseline,
    evidence,
    interactive,
    ordinary_day,
    registered,
    settings,
    signin,
    trip,
)

NETWORKS = (HOME, OFFICE, PHONE, ATTACKER, ATTACKER_2, NORDVPN, HOTEL_FR, MICROSOFT)


def replay() -> UserEvidence:
    """A clear replay: the home session refreshed from DigitalOcean with a script and the Azure CLI."""
    return evidence(
        *ordinary_day(),
        signin(ATTACKER, -240, session_id="session-home", count=30, user_agent="python-requests/2.32.3"),
        signin(ATTACKER, -200, session_id="session-home", app_id=AZURE_CLI, app="Microsoft Azure CLI"),
        interactive(ATTACKER, -190, session_id="session-home", token_only=True),
        security=(registered(-180, ATTACKER[0]),),
    )


class TestScore:
    def test_ordinary_day_is_benign_with_no_signals(self) -> None:
        """A user at home all day scores zero."""
        result = assess(evidence(*ordinary_day()), Settings())
        assert (result.score, result.verdict, result.signals, result.suspect_ips) == (0, Verdict.BENIGN, (), ())

    def test_user_without_sign_ins(self) -> None:
        """No sign-ins in the window is a result: benign, nothing implicated, nothing explained."""
        result = assess(evidence(), Settings())
        assert (result.score, result.verdict, result.signals, result.explanations) == (0, Verdict.BENIGN, (), ())

    def test_clear_replay_is_likely_and_capped(self) -> None:
        """Many signals add up past 100 and the score stops at 100; only the attacker is suspect."""
        result = assess(replay(), Settings())
        assert sum(s.weight for s in result.signals) > MAX_SCORE
        assert result.score == MAX_SCORE
        assert result.verdict is Verdict.REPLAY_LIKELY
        assert result.suspect_ips == (ATTACKER[0],)

    def test_score_is_the_sum_of_weights(self) -> None:
        """Below the cap the score is exactly the sum of the fired signals' weights."""
        result = assess(evidence(*ordinary_day(), signin(NORDVPN, 30, session_id="x", asn=NORDVPN[1])), Settings())
        assert result.score == sum(WEIGHTS[s.id] for s in result.signals) < MAX_SCORE

    def test_verdict_follows_the_thresholds_in_settings(self) -> None:
        """The same score reads differently under different thresholds."""
        strict = settings(REPLAY_THRESHOLD_LIKELY="30", REPLAY_THRESHOLD_SUSPICIOUS="10")
        assert verdict_for(35, strict) is Verdict.REPLAY_LIKELY
        assert verdict_for(35, Settings()) is Verdict.BENIGN
        assert verdict_for(40, Settings()) is Verdict.SUSPICIOUS
        assert verdict_for(70, Settings()) is Verdict.REPLAY_LIKELY
        assert score_of(()) == 0

    def test_suspects_heaviest_first(self) -> None:
        """Suspect IPs are ordered by the weight held against them."""
        ev = evidence(
            *ordinary_day(),
            signin(ATTACKER, 30, session_id="session-home", count=10),
            signin(NORDVPN, 100, session_id="vpn"),
        )
        result = assess(ev, Settings())
        weights = {ip: sum(s.weight for s in result.signals if ip in s.ips) for ip in result.suspect_ips}
        assert list(result.suspect_ips) == sorted(weights, key=lambda ip: (-weights[ip], ip))
        assert result.suspect_ips[0] == ATTACKER[0]

    def test_strongest_signals_for_the_summary(self) -> None:
        """The assessment's strongest signals are the heaviest ones."""
        result = assess(replay(), Settings())
        assert [s.weight for s in result.strongest(3)] == sorted((s.weight for s in result.signals), reverse=True)[:3]


class TestDeterminism:
    def test_same_input_same_assessment(self) -> None:
        """Assessing the same evidence twice gives equal values."""
        assert assess(replay(), Settings()) == assess(replay(), Settings())

    def test_row_order_does_not_matter(self) -> None:
        """Shuffled rows give the same assessment, details included."""
        ev = replay()
        expected = assess(ev, Settings())
        shuffler = random.Random(7)
        for _ in range(5):
            rows = list(ev.signins)
            shuffler.shuffle(rows)
            assert assess(replace(ev, signins=tuple(rows)), Settings()) == expected

    def test_shifting_every_time_by_whole_days_changes_nothing(self) -> None:
        """No clock is read: the same story a week later scores the same, for the same reasons."""
        week = timedelta(days=7)
        ev = replay()
        later = replace(
            ev,
            at=ev.at + week,
            window=replace(ev.window, start=ev.window.start + week, end=ev.window.end + week),
            signins=tuple(replace(s, first=s.first + week, last=s.last + week) for s in ev.signins),
            baseline=replace(
                ev.baseline,
                window=replace(ev.baseline.window, start=ev.baseline.window.start + week, end=ev.baseline.window.end + week),
            ),
            security_events=tuple(replace(e, time=e.time + week) for e in ev.security_events),
        )
        before, after = assess(ev, Settings()), assess(later, Settings())
        assert [(s.id, s.weight, s.ips) for s in before.signals] == [(s.id, s.weight, s.ips) for s in after.signals]
        assert (before.score, before.suspect_ips) == (after.score, after.suspect_ips)


# ----------------------------------------------------------------------------------------------------
# Properties over generated evidence
# ----------------------------------------------------------------------------------------------------

_USER_AGENTS = (FIREFOX, FIREFOX, "python-requests/2.32.3", "curl/8.4.0", "")
_APPS = (OUTLOOK_WEB, TEAMS_WEB, AZURE_CLI, "aaaaaaaa-0000-4000-8000-000000000001")


@st.composite
def rows(draw: st.DrawFn) -> SignIn:
    network = draw(st.sampled_from(NETWORKS))
    table = draw(st.sampled_from((Table.INTERACTIVE, Table.NON_INTERACTIVE)))
    return signin(
        network,
        draw(st.integers(-1400, 350)),
        table=table,
        count=draw(st.integers(1, 60)),
        session_id=draw(st.sampled_from(("session-home", "s2", "s3", ""))),
        user_agent=draw(st.sampled_from(_USER_AGENTS)),
        app_id=draw(st.sampled_from(_APPS)),
        token_only=draw(st.booleans()),
        auth_protocol=draw(st.sampled_from(("none", "none", "deviceCode"))),
        incoming_token_type=draw(st.sampled_from(("refreshToken", "none", "primaryRefreshToken"))),
        device_id=draw(st.sampled_from(("", LAPTOP, "dev-x"))) if network is not ATTACKER_2 else "",
        is_compliant=draw(st.sampled_from((None, True, False))),
        token_protection=draw(st.sampled_from(("", "unbound", "bound"))),
        risk_events=draw(st.sampled_from(((), (), ("unfamiliarFeatures",), ("anomalousToken",)))),
        result_type=draw(st.sampled_from(("0", "0", "0", "50126"))),
    )


@st.composite
def histories(draw: st.DrawFn) -> Baseline:
    devices = draw(st.sampled_from((frozenset(), frozenset({LAPTOP}))))
    return baseline(
        device_ids=devices,
        compliant_device_ids=devices if draw(st.booleans()) else frozenset(),
        asns=draw(st.sampled_from((frozenset({HOME[1]}), frozenset({HOME[1], PHONE[1]})))),
        hours=draw(st.sampled_from((frozenset(range(6, 21)), frozenset(range(24))))),
    )


@st.composite
def evidences(draw: st.DrawFn) -> UserEvidence:
    found = draw(st.lists(rows(), max_size=25))
    return evidence(
        *found,
        history=draw(histories()),
        travel=(trip("FR"),) if draw(st.booleans()) else (),
        security=(registered(draw(st.integers(-600, 300)), draw(st.sampled_from(NETWORKS))[0]),) if draw(st.booleans()) else (),
    )


CONFIGS = (Settings(), settings(REPLAY_VPN_CIDRS="198.51.100.0/24"), settings(REPLAY_TRUSTED_ASNS="21928"))


@pytest.mark.slow
class TestProperties:
    @hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(evidences(), st.sampled_from(CONFIGS))
    def test_score_within_bounds_and_verdict_consistent(self, ev: UserEvidence, config: Settings) -> None:
        """Whatever the evidence, 0 <= score <= 100, the verdict matches it, and suspects come from signals."""
        result = assess(ev, config)
        assert 0 <= result.score <= MAX_SCORE
        assert result.verdict is verdict_for(result.score, config)
        assert set(result.suspect_ips) == {ip for s in result.signals for ip in s.ips}

    @hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        evidences(),
        st.sampled_from(CONFIGS),
        st.integers(-1400, 350),
        st.integers(1, 100),
        st.sampled_from(("session-home", "s2", "new")),
        st.sampled_from(_USER_AGENTS),
    )
    def test_an_unexplained_attacker_refresh_never_lowers_the_score(
        self, ev: UserEvidence, config: Settings, minutes: int, count: int, session: str, agent: str
    ) -> None:
        """Adding a token refresh from a network nothing explains can raise the score, never lower it."""
        extra = signin(ATTACKER_2, minutes, count=count, session_id=session, user_agent=agent)
        more = replace(ev, signins=(*ev.signins, extra))
        after = assess(more, config)
        assume(ATTACKER_2[0] not in {e.ip for e in after.explanations})
        before = assess(ev, config)
        assert after.score >= before.score
        if not any(s.ip == ATTACKER_2[0] and s.table is Table.INTERACTIVE and s.succeeded for s in more.signins):
            assert ATTACKER_2[0] in after.suspect_ips  # a refresh where the user never signed in is always held against

    @hypothesis_settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(evidences(), st.randoms(use_true_random=False))
    def test_input_order_does_not_matter(self, ev: UserEvidence, shuffler: random.Random) -> None:
        """Any permutation of the rows gives an equal assessment."""
        shuffled = list(ev.signins)
        shuffler.shuffle(shuffled)
        expected: Assessment = assess(ev, Settings())
        assert assess(replace(ev, signins=tuple(shuffled)), Settings()) == expected
