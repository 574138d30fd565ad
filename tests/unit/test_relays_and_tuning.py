"""Privacy relays and the organisation's SSE are explained by the user's own device, never trusted over other evidence; weights are tunable."""

from __future__ import annotations

from enrichment.domain.model import ExplanationKind, Verdict
from enrichment.domain.scoring import assess
from tests.unit.factories import HOME, LAPTOP, baseline, evidence, interactive, ordinary_day, settings, signin

#: An iCloud Private Relay egress address (on Apple's shipped list), announced by Akamai's relay AS.
RELAY = ("172.224.237.5", 36183, "US", "New York", 40.71, -74.01)
#: A Cloudflare address off Apple's list: WARP or Edge Secure Network.
WARP = ("104.28.192.9", 13335, "US", "Ashburn", 39.04, -77.49)
#: A Zscaler service edge.
ZSCALER = ("165.225.20.9", 53813, "FR", "Paris", 48.86, 2.35)
SAFARI = {"operating_system": "MacOs", "browser": "Safari 18.5", "device_id": LAPTOP, "is_compliant": True}
KNOWN_LAPTOP = baseline(device_ids=frozenset({LAPTOP}), compliant_device_ids=frozenset({LAPTOP}))


def behind(network: tuple[str, int, str, str, float, float], **device: object) -> tuple:
    """The laptop's browser session going on through `network` while its apps stay at home."""
    return (
        interactive(HOME, -200, session_id="s-mac", **SAFARI),
        signin(HOME, -190, session_id="s-mac", **SAFARI),
        interactive(network, -60, session_id="s-mac", token_only=True, **device),
        signin(network, -55, session_id="s-mac", count=20, **device),
    )


def kinds(result, ip: str) -> set[ExplanationKind]:  # type: ignore[no-untyped-def]
    return {e.kind for e in result.explanations if e.ip == ip}


class TestPrivacyRelay:
    def test_private_relay_with_the_users_own_device_is_explained(self) -> None:
        """Safari behind iCloud Private Relay on the user's Mac: the relay is named from Apple's list, nothing is suspect."""
        result = assess(evidence(*ordinary_day(), *behind(RELAY, **SAFARI), history=KNOWN_LAPTOP), settings())

        assert ExplanationKind.PRIVACY_RELAY in kinds(result, RELAY[0])
        relay = next(e for e in result.explanations if e.kind is ExplanationKind.PRIVACY_RELAY)
        assert "iCloud Private Relay" in relay.detail
        assert "published egress list (taken 2026-08-17)" in relay.detail
        assert result.suspect_ips == ()

    def test_warp_with_the_users_own_device_is_explained(self) -> None:
        """Cloudflare's relay (WARP, Edge Secure Network) with the user's device is a privacy relay too."""
        result = assess(evidence(*ordinary_day(), *behind(WARP, **SAFARI), history=KNOWN_LAPTOP), settings())

        assert ExplanationKind.PRIVACY_RELAY in kinds(result, WARP[0])
        assert result.verdict is Verdict.BENIGN

    def test_a_relay_without_the_users_device_is_anonymising_not_explained(self) -> None:
        """A relay address carrying no device of the user's is not explained, and counts as an anonymising network."""
        rows = (
            *ordinary_day(),
            interactive(RELAY, -60, session_id="s-other"),
            signin(RELAY, -50, session_id="s-other"),
        )
        result = assess(evidence(*rows, history=KNOWN_LAPTOP), settings())

        assert not kinds(result, RELAY[0])
        assert RELAY[0] in next(s for s in result.signals if s.id == "anonymizing_network").ips

    def test_a_relay_never_vouches_for_a_session_lifted_off_the_users_device(self) -> None:
        """The laptop's session used with no device from a relay address stays the attacker's: no explanation, suspect."""
        result = assess(evidence(*ordinary_day(), *behind(RELAY), history=KNOWN_LAPTOP), settings())

        assert not kinds(result, RELAY[0])
        assert RELAY[0] in next(s for s in result.signals if s.id == "session_left_device").ips
        assert result.suspect_ips[0] == RELAY[0]


class TestSecurityServiceEdge:
    def test_the_named_providers_edge_with_the_users_device_is_explained(self) -> None:
        """With REPLAY_SSE_PROVIDER=zscaler, the laptop behind a Zscaler service edge in another country is the user."""
        rows = (*ordinary_day(), *behind(ZSCALER, **SAFARI))
        result = assess(evidence(*rows, history=KNOWN_LAPTOP), settings(REPLAY_SSE_PROVIDER="zscaler"))

        edge = next(e for e in result.explanations if e.kind is ExplanationKind.SECURITY_SERVICE_EDGE)
        assert edge.ip == ZSCALER[0]
        assert "Zscaler's service edge (REPLAY_SSE_PROVIDER)" in edge.detail
        assert result.suspect_ips == ()

    def test_another_organisations_sse_explains_nothing(self) -> None:
        """Without the setting, a Zscaler address is just a shared network: no SSE explanation."""
        rows = (*ordinary_day(), *behind(ZSCALER, **SAFARI))
        result = assess(evidence(*rows, history=KNOWN_LAPTOP), settings(REPLAY_SSE_PROVIDER="netskope"))

        assert ExplanationKind.SECURITY_SERVICE_EDGE not in kinds(result, ZSCALER[0])

    def test_dedicated_egress_addresses_are_the_organisations(self) -> None:
        """REPLAY_SSE_CIDRS names the organisation's dedicated egress block."""
        rows = (*ordinary_day(), *behind(ZSCALER, **SAFARI))
        result = assess(evidence(*rows, history=KNOWN_LAPTOP), settings(REPLAY_SSE_CIDRS="165.225.20.8/29"))

        edge = next(e for e in result.explanations if e.kind is ExplanationKind.SECURITY_SERVICE_EDGE)
        assert "165.225.20.8/29 (REPLAY_SSE_CIDRS)" in edge.detail


class TestTunedWeights:
    ATTACK = (
        interactive(("203.0.113.66", 14061, "NL", "Amsterdam", 52.37, 4.89), 30, token_only=True, session_id="session-home"),
    )

    def test_a_weight_override_changes_the_points_and_the_score(self) -> None:
        """REPLAY_SIGNAL_WEIGHTS replaces a signal's points; the score is the sum of the tuned points."""
        stock = assess(evidence(*ordinary_day(), *self.ATTACK), settings())
        tuned = assess(evidence(*ordinary_day(), *self.ATTACK), settings(REPLAY_SIGNAL_WEIGHTS="anonymizing_network=40"))

        assert next(s for s in tuned.signals if s.id == "anonymizing_network").weight == 40
        assert tuned.score == min(100, stock.score + 25)

    def test_a_signal_weighed_zero_is_off(self) -> None:
        """A signal weighed 0 is neither reported nor counted."""
        tuned = assess(evidence(*ordinary_day(), *self.ATTACK), settings(REPLAY_SIGNAL_WEIGHTS="anonymizing_network=0"))

        assert "anonymizing_network" not in {s.id for s in tuned.signals}

    def test_thresholds_decide_the_verdict(self) -> None:
        """The same evidence is replay_likely or suspicious depending on REPLAY_THRESHOLD_LIKELY."""
        rows = (*ordinary_day(), signin(RELAY, -50, session_id="s-other"))
        stock = assess(evidence(*rows), settings())
        assert 40 <= stock.score < 100
        lenient = assess(evidence(*rows), settings(REPLAY_THRESHOLD_SUSPICIOUS="30", REPLAY_THRESHOLD_LIKELY=str(stock.score)))
        strict = assess(evidence(*rows), settings(REPLAY_THRESHOLD_SUSPICIOUS="30", REPLAY_THRESHOLD_LIKELY=str(stock.score + 1)))

        assert lenient.score == strict.score == stock.score
        assert lenient.verdict is Verdict.REPLAY_LIKELY
        assert strict.verdict is Verdict.SUSPICIOUS
