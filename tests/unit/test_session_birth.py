"""Where a session was born: at a phishing proxy (every new address using it is the attacker's) or on the user's new device."""

from __future__ import annotations

from enrichment.domain.model import ExplanationKind, Verdict
from enrichment.domain.scoring import assess
from tests.unit.factories import (
    ATTACKER,
    ATTACKER_2,
    HOME,
    LAPTOP,
    NORDVPN,
    PHONE,
    baseline,
    evidence,
    interactive,
    ordinary_day,
    registered,
    settings,
    signin,
)

#: A residential address of the user's own ISP (AS7922), another site than home: a residential proxy.
NEIGHBOUR = ("198.18.44.9", 7922, "US", "Tacoma", 47.25, -122.44)
#: A new home line (an ISP the user was never seen on) and its IPv6 address.
NEW_HOME = ("198.18.200.5", 64501, "US", "Seattle", 47.61, -122.33)
NEW_HOME_V6 = ("2001:db8:6450::5", 64501, "US", "Seattle", 47.61, -122.33)
IPHONE = {"operating_system": "Ios", "browser": "Mobile Safari 18.5", "user_agent": "Outlook-iOS/728.4913406.prod.iphone"}
NEW_PHONE = "5b0a9e3c-8d2f-4f61-a7c4-2e9d0b1f6a38"
#: The user knows the carrier from their old phone.
WITH_PHONE = baseline(ips=frozenset({HOME[0], PHONE[0]}), asns=frozenset({HOME[1], PHONE[1]}), device_ids=frozenset({LAPTOP}))


def aitm(replay: tuple[str, int, str, str, float, float] = NEIGHBOUR, proxy: tuple[str, int, str, str, float, float] = ATTACKER):
    """The victim's password and MFA typed through a proxy, then the session used from `replay` with a claim in the token."""
    return (
        interactive(proxy, -60, session_id="s-aitm"),
        signin(proxy, -59, session_id="s-aitm"),
        interactive(replay, -40, session_id="s-aitm", token_only=True),
        signin(replay, -35, session_id="s-aitm", count=40),
    )


def new_phone(*, then: tuple[str, int, str, str, float, float] = PHONE, device: str = NEW_PHONE):
    """A new phone set up on a home line never seen before (IPv4 and IPv6), then on the user's carrier, one session."""
    return (
        interactive(
            NEW_HOME_V6,
            -120,
            session_id="s-phone",
            client_app="Mobile Apps and Desktop clients",
            **IPHONE,
        ),
        interactive(NEW_HOME, -118, session_id="s-phone", token_only=True, device_id=device, **IPHONE),
        signin(NEW_HOME, -110, session_id="s-phone", device_id=device, **IPHONE),
        signin(NEW_HOME_V6, -100, session_id="s-phone", device_id=device, **IPHONE),
        signin(then, -30, session_id="s-phone", device_id=device, **IPHONE),
        signin(then, 10, session_id="s-phone", device_id=device, **IPHONE),
    )


class TestBornAtAProxy:
    def test_every_new_address_using_a_session_born_at_a_hosting_proxy_is_named(self) -> None:
        """The proxy and the residential replay address, inside the user's own ISP, are both suspects, and the verdict is replay_likely."""
        result = assess(evidence(*ordinary_day(), *aitm()), settings())

        born = next(s for s in result.signals if s.id == "session_born_on_rented_network")
        assert born.ips == (NEIGHBOUR[0], ATTACKER[0])
        assert {NEIGHBOUR[0], ATTACKER[0]} <= set(result.suspect_ips)
        assert HOME[0] not in result.suspect_ips
        assert result.verdict is Verdict.REPLAY_LIKELY

    def test_a_replay_address_inside_the_users_carrier_is_not_churn(self) -> None:
        """An address of the user's own carrier that used the proxy-born session gets no mobile-carrier explanation."""
        carrier_proxy = ("192.0.2.210", PHONE[1], "US", "Seattle", 47.61, -122.33)
        result = assess(evidence(*ordinary_day(), *aitm(replay=carrier_proxy), history=WITH_PHONE), settings())

        assert carrier_proxy[0] in result.suspect_ips
        assert not [e for e in result.explanations if e.ip == carrier_proxy[0]]

    def test_the_claim_in_the_token_from_a_new_address_of_a_known_network_is_evidence(self) -> None:
        """A token-only interactive sign-in with no device from another site of the user's ISP fires token_only_new_context."""
        result = assess(evidence(*ordinary_day(), *aitm()), settings())

        assert next(s for s in result.signals if s.id == "token_only_new_context").ips == (NEIGHBOUR[0],)

    def test_a_session_born_on_the_users_own_device_behind_a_vpn_is_not_a_proxy(self) -> None:
        """Fresh credentials from a commercial VPN on the user's own compliant laptop are not an AiTM birth."""
        rows = (
            interactive(NORDVPN, -60, session_id="s-vpn", device_id=LAPTOP, is_compliant=True),
            signin(NORDVPN, -50, session_id="s-vpn", device_id=LAPTOP, is_compliant=True),
        )
        result = assess(evidence(*ordinary_day(), *rows, history=baseline(device_ids=frozenset({LAPTOP}))), settings())

        assert "session_born_on_rented_network" not in {s.id for s in result.signals}

    def test_the_organisation_vouches_for_its_own_egress(self) -> None:
        """A proxy-born session whose addresses the organisation trusts (REPLAY_TRUSTED_ASNS) is not called a proxy's."""
        result = assess(evidence(*ordinary_day(), *aitm(replay=ATTACKER_2)), settings(REPLAY_TRUSTED_ASNS="14061,64500"))

        assert "session_born_on_rented_network" not in {s.id for s in result.signals}

    def test_a_birth_tied_with_the_users_own_device_is_the_devices_whatever_the_row_order(self) -> None:
        """Two first sign-ins of a session at one moment and address, one on the user's compliant laptop: the same verdict either way."""
        on_laptop = interactive(ATTACKER, -60, session_id="s-tie", device_id=LAPTOP, is_compliant=True)
        bare = interactive(ATTACKER, -60, session_id="s-tie")
        first, second = assess(evidence(on_laptop, bare), settings()), assess(evidence(bare, on_laptop), settings())
        assert first == second
        assert "session_born_on_rented_network" not in {s.id for s in first.signals}


class TestNewDevice:
    def test_a_new_phone_set_up_at_home_then_on_the_usual_carrier_is_the_user(self) -> None:
        """The new home line (IPv4 and IPv6) is explained as the new device's first address; only the registration is shown."""
        rows = (*ordinary_day(), *new_phone())
        security = (registered(-115, NEW_HOME_V6[0]),)
        result = assess(evidence(*rows, history=WITH_PHONE, security=security), settings())

        kinds = {(e.ip, e.kind) for e in result.explanations}
        assert (NEW_HOME[0], ExplanationKind.NEW_DEVICE) in kinds
        assert (NEW_HOME_V6[0], ExplanationKind.NEW_DEVICE) in kinds
        assert [s.id for s in result.signals] == ["security_info_changed"]
        assert result.verdict is Verdict.BENIGN
        assert result.suspect_ips == ()

    def test_the_birthplace_alone_is_no_replay_location(self) -> None:
        """Without anything explaining it, a session's fresh-credential birthplace is not named by session_ip_switch."""
        rows = (*ordinary_day(), *new_phone(then=ATTACKER_2))
        result = assess(evidence(*rows, history=WITH_PHONE), settings())

        switch = next(s for s in result.signals if s.id == "session_ip_switch")
        assert NEW_HOME_V6[0] not in switch.ips
        assert ATTACKER_2[0] in switch.ips

    def test_a_session_that_goes_on_from_an_unknown_network_is_no_new_device(self) -> None:
        """If the new device's session continues from a network the user is not established on, its birthplace is not explained."""
        rows = (*ordinary_day(), *new_phone(then=ATTACKER_2))
        result = assess(evidence(*rows, history=WITH_PHONE), settings())

        assert not [e for e in result.explanations if e.kind is ExplanationKind.NEW_DEVICE]

    def test_a_device_the_user_already_had_is_not_new(self) -> None:
        """The user's own laptop signing in afresh from a new address is not explained as a new device."""
        rows = (*ordinary_day(), *new_phone(device=LAPTOP))
        result = assess(evidence(*rows, history=WITH_PHONE), settings())

        assert not [e for e in result.explanations if e.kind is ExplanationKind.NEW_DEVICE]
