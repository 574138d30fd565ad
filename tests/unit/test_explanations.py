"""Benign explanations per IP, and the honesty rules: an explanation covers what it explains and no more."""

from __future__ import annotations

from common.settings import Settings
from enrichment.domain.explanations import explain
from enrichment.domain.model import ExplanationKind, SignIn, UserEvidence, Verdict
from enrichment.domain.picture import picture
from enrichment.domain.scoring import assess
from tests.unit.factories import (
    ATTACKER,
    ATTACKER_2,
    HOME,
    HOME_V6,
    HOTEL_FR,
    LAPTOP,
    MICROSOFT,
    NORDVPN,
    PHONE,
    baseline,
    evidence,
    interactive,
    ordinary_day,
    settings,
    signin,
    trip,
)

PRIVATE = ("10.0.0.1", 64501, "US", "Seattle", 47.61, -122.33)


def kinds(ev: UserEvidence, ip: str, config: Settings | None = None) -> set[ExplanationKind]:
    return {e.kind for e in explain(picture(ev), config or Settings()) if e.ip == ip}


def travelling(*extra: SignIn, country: str = "FR") -> UserEvidence:
    """A day at home yesterday, then the hotel in Paris today, with a travel record for `country`."""
    rows = [interactive(HOME, -1300), signin(HOME, -1290)]
    rows += [interactive(HOTEL_FR, 0, session_id="trip"), signin(HOTEL_FR, 10, session_id="trip", count=20)]
    rows += list(extra)
    return evidence(*rows, travel=(trip(country),))


class TestOrganisationNetworks:
    def test_corporate_network_by_cidr(self) -> None:
        """An address inside REPLAY_CORPORATE_CIDRS is the corporate network, and the detail names the range."""
        config = settings(REPLAY_CORPORATE_CIDRS="203.0.113.0/25")
        found = explain(picture(evidence(signin(ATTACKER))), config)
        assert [(e.kind, "203.0.113.0/25" in e.detail) for e in found] == [(ExplanationKind.CORPORATE_NETWORK, True)]

    def test_outside_the_corporate_range(self) -> None:
        """An address outside the configured ranges is not corporate."""
        assert kinds(evidence(signin(ATTACKER)), ATTACKER[0], settings(REPLAY_CORPORATE_CIDRS="198.18.0.0/15")) == set()

    def test_corporate_vpn_by_cidr(self) -> None:
        """The corporate VPN egress range explains its addresses."""
        config = settings(REPLAY_VPN_CIDRS="203.0.113.128/25")
        assert kinds(evidence(signin(NORDVPN)), NORDVPN[0], config) == {ExplanationKind.CORPORATE_VPN}

    def test_consumer_vpn_is_not_the_corporate_vpn(self) -> None:
        """NordVPN is a VPN, but not the organisation's: without configuration nothing explains it."""
        assert kinds(evidence(signin(NORDVPN)), NORDVPN[0]) == set()

    def test_private_addresses_are_not_automatically_corporate(self) -> None:
        """10.0.0.1 is corporate only if settings say so (the real capture anonymised its IPs into RFC 1918)."""
        assert kinds(evidence(signin(PRIVATE)), PRIVATE[0]) == set()
        assert kinds(evidence(signin(PRIVATE)), PRIVATE[0], settings(REPLAY_CORPORATE_CIDRS="10.0.0.0/8")) == {
            ExplanationKind.CORPORATE_NETWORK
        }

    def test_trusted_asn(self) -> None:
        """An ASN listed in REPLAY_TRUSTED_ASNS explains its addresses; others stay unexplained."""
        config = settings(REPLAY_TRUSTED_ASNS="AS14061")
        assert kinds(evidence(signin(ATTACKER)), ATTACKER[0], config) == {ExplanationKind.TRUSTED_ASN}
        assert kinds(evidence(signin(ATTACKER_2)), ATTACKER_2[0], config) == set()

    def test_named_location(self) -> None:
        """Entra's trusted named location match explains the address; without a match nothing does."""
        assert kinds(evidence(signin(ATTACKER, trusted_networks=("HQ Seattle",))), ATTACKER[0]) == {
            ExplanationKind.NAMED_LOCATION
        }
        assert kinds(evidence(signin(ATTACKER)), ATTACKER[0]) == set()


class TestMicrosoftNetwork:
    def test_microsoft_service_acting_for_the_user(self) -> None:
        """AS8075 sign-ins without user agent or device, non-interactive, are Microsoft's services."""
        row = signin(MICROSOFT, user_agent="", app="Office 365 Exchange Online")
        assert kinds(evidence(row), MICROSOFT[0]) == {ExplanationKind.MICROSOFT_NETWORK}

    def test_users_cloud_pc_on_microsofts_network(self) -> None:
        """The user's own Cloud PC (a device in the baseline) signing in from AS8075 is explained."""
        history = baseline(device_ids=frozenset({"cloud-pc-1"}))
        row = interactive(MICROSOFT, device_id="cloud-pc-1")
        assert kinds(evidence(row, history=history), MICROSOFT[0]) == {ExplanationKind.MICROSOFT_NETWORK}

    def test_new_managed_cloud_pc(self) -> None:
        """A first-day Cloud PC: new to the user, but a device Entra reports compliant."""
        row = interactive(MICROSOFT, device_id="cpc-new", is_compliant=True)
        assert kinds(evidence(row), MICROSOFT[0]) == {ExplanationKind.MICROSOFT_NETWORK}

    def test_a_browser_on_azure_is_not_microsoft(self) -> None:
        """Anyone can rent an Azure VM: a person at a browser on AS8075 is not a Microsoft service."""
        assert kinds(evidence(interactive(MICROSOFT, token_only=True)), MICROSOFT[0]) == set()
        assert kinds(evidence(signin(MICROSOFT, user_agent="curl/8.4.0")), MICROSOFT[0]) == set()

    def test_other_cloud_is_not_microsoft(self) -> None:
        """DigitalOcean is a hosting provider, not Microsoft."""
        assert ExplanationKind.MICROSOFT_NETWORK not in kinds(evidence(signin(ATTACKER, user_agent="")), ATTACKER[0])


class TestMobileCarrier:
    def test_new_address_in_the_usual_carrier(self) -> None:
        """A new T-Mobile address when T-Mobile in the US is in the user's baseline is carrier churn."""
        history = baseline(asns=frozenset({HOME[1], PHONE[1]}))
        assert kinds(evidence(signin(PHONE), history=history), PHONE[0]) == {ExplanationKind.MOBILE_CARRIER}

    def test_carrier_the_user_never_used(self) -> None:
        """A carrier absent from the baseline explains nothing: being a carrier is not a reason."""
        assert kinds(evidence(signin(PHONE)), PHONE[0]) == set()

    def test_usual_carrier_in_another_country(self) -> None:
        """The usual carrier's ASN geolocated to another country is not the usual carrier and country."""
        abroad = (PHONE[0], PHONE[1], "MX", "Tijuana", 32.5, -117.0)
        history = baseline(asns=frozenset({HOME[1], PHONE[1]}))
        assert kinds(evidence(signin(abroad), history=history), PHONE[0]) == set()

    def test_an_address_the_laptops_session_was_lifted_to_is_not_churn(self) -> None:
        """The laptop's session used with no device from an address of the usual carrier: not the user's phone churning."""
        history = baseline(asns=frozenset({HOME[1], PHONE[1]}), device_ids=frozenset({LAPTOP}))
        laptop = [signin(HOME, m, session_id="s-laptop", device_id=LAPTOP, is_compliant=True) for m in (-60, 0)]
        lifted = signin(PHONE, 2, session_id="s-laptop", user_agent="python-requests/2.31")
        assert kinds(evidence(*laptop, lifted, history=history), PHONE[0]) == set()

    def test_a_tethered_laptops_tool_on_the_phones_own_address_is_churn(self) -> None:
        """The laptop's CLI with no device id leaves through the carrier address the user's own phone signs in from: not lifted."""
        history = baseline(asns=frozenset({HOME[1], PHONE[1]}), device_ids=frozenset({LAPTOP, IPHONE}))
        laptop = signin(HOME, 0, session_id="s-laptop", device_id=LAPTOP, is_compliant=True)
        cli = signin(PHONE, 2, session_id="s-laptop", user_agent="python/3.11.9", app="Microsoft Azure CLI")
        phone = signin(PHONE, 3, session_id="s-phone", device_id=IPHONE, operating_system="Ios")
        view = picture(evidence(laptop, cli, phone, history=history))
        assert PHONE[0] not in view.taken
        assert {e.kind for e in explain(view, Settings()) if e.ip == PHONE[0]} == {ExplanationKind.MOBILE_CARRIER}


#: The user's iPhone: registered in Entra, not compliant, known to the baseline.
IPHONE = "24fcdeee-89fc-415a-9211-e22a27abde30"
PHONE_HISTORY = {"device_ids": frozenset({IPHONE})}


def _iphone(network: tuple[str, int, str, str, float, float], minutes: float, **fields: object) -> SignIn:
    values: dict[str, object] = {"session_id": "s-iphone", "device_id": IPHONE, "operating_system": "Ios", "is_compliant": False}
    values.update(fields)
    return signin(network, minutes, **values)


def _leaves_home(*at_carrier: SignIn) -> UserEvidence:
    """A day at home, the iPhone refreshing on the home line, then sign-ins from T-Mobile, a carrier the user never had."""
    return evidence(*ordinary_day(), _iphone(HOME, -120), _iphone(HOME, -60), *at_carrier, history=baseline(**PHONE_HISTORY))


class TestNewMobileCarrier:
    def test_the_users_own_phone_continuing_its_session_onto_cellular(self) -> None:
        """The registered iPhone the baseline knows, in the session it used at home, on a new US carrier: the phone, not the token."""
        ev = _leaves_home(_iphone(PHONE, 0), _iphone(PHONE, 40))
        assert kinds(ev, PHONE[0]) == {ExplanationKind.MOBILE_CARRIER}
        assessment = assess(ev, Settings())
        assert (assessment.verdict, assessment.suspect_ips) == (Verdict.BENIGN, ())
        assert "new to the user" in next(e.detail for e in assessment.explanations if e.ip == PHONE[0])

    def test_a_token_replayed_from_a_mobile_proxy_with_no_device_still_scores(self) -> None:
        """The iPhone's session used with no device id from the carrier is the token lifted off the phone."""
        ev = _leaves_home(_iphone(PHONE, 0, device_id="", operating_system="", user_agent="python-requests/2.31"))
        assert kinds(ev, PHONE[0]) == set()
        assessment = assess(ev, Settings())
        assert assessment.verdict is Verdict.REPLAY_LIKELY
        assert PHONE[0] in assessment.suspect_ips

    def test_another_device_on_the_carrier_still_scores(self) -> None:
        """The iPhone's session in another device's hands on the carrier is not the phone moving."""
        ev = _leaves_home(_iphone(PHONE, 0, device_id="a6b1c0de-0000-4000-8000-000000000001", operating_system="Android"))
        assert kinds(ev, PHONE[0]) == set()
        assert assess(ev, Settings()).verdict is Verdict.REPLAY_LIKELY

    def test_the_phone_beside_a_device_less_sign_in_on_the_same_address_is_not_enough(self) -> None:
        """Every sign-in from the address must be the phone carrying on its session: one stranger there and nothing is explained."""
        ev = _leaves_home(_iphone(PHONE, 0), signin(PHONE, 5, session_id="s-other", user_agent="python-requests/2.31"))
        assert kinds(ev, PHONE[0]) == set()

    def test_the_phone_in_a_session_it_never_used_at_home(self) -> None:
        """The phone's device id in a session never seen where the user is known is not the session carrying on."""
        assert kinds(_leaves_home(_iphone(PHONE, 0, session_id="s-elsewhere")), PHONE[0]) == set()

    def test_a_new_carrier_abroad(self) -> None:
        """A carrier in a country the user is not known in is travel to explain, not the phone leaving home Wi-Fi."""
        abroad = ("192.0.2.88", 3215, "FR", "Paris", 48.86, 2.35)
        assert kinds(_leaves_home(_iphone(abroad, 0)), abroad[0]) == set()


class TestDualStack:
    def test_ipv6_of_the_home_network_at_the_same_time(self) -> None:
        """Home IPv4 and a new IPv6 of the same AS at the same time are one router."""
        found = explain(picture(evidence(signin(HOME, 0), signin(HOME_V6, 2))), Settings())
        assert [e.kind for e in found if e.ip == HOME_V6[0]] == [ExplanationKind.DUAL_STACK]

    def test_dual_stack_of_a_network_the_user_is_not_known_on(self) -> None:
        """An attacker's own IPv4 and IPv6 do not vouch for each other."""
        v6 = ("2001:db8:1406::66", ATTACKER[1], "NL", "Amsterdam", 52.37, 4.89)
        ev = evidence(signin(ATTACKER, 0), signin(v6, 2))
        assert kinds(ev, v6[0]) == set()

    def test_new_privacy_address_in_a_known_lan(self) -> None:
        """A new IPv6 address in a /64 the baseline knows, of an AS where the user also uses IPv4, is the router."""
        history = baseline(ips=frozenset({HOME[0], "2001:db8:7922::1"}))
        ev = evidence(signin(HOME, -600), signin(HOME_V6, 0), history=history)
        assert kinds(ev, HOME_V6[0]) == {ExplanationKind.DUAL_STACK}
        detail = next(e.detail for e in explain(picture(ev), Settings()) if e.ip == HOME_V6[0])
        assert f"{HOME_V6[0]} is inside 2001:db8:7922::/64, an IPv6 network the user is known on" in detail

    def test_an_address_the_laptops_session_was_lifted_to_is_not_the_router(self) -> None:
        """The other family of the home AS, used by the laptop's session with no device, is not the home router."""
        laptop = signin(HOME, 0, session_id="s-laptop", device_id=LAPTOP, is_compliant=True)
        history = baseline(device_ids=frozenset({LAPTOP}))
        lifted = evidence(laptop, signin(HOME_V6, 2, session_id="s-laptop"), history=history)
        own = evidence(laptop, signin(HOME_V6, 2, session_id="s-laptop", device_id=LAPTOP), history=history)
        assert ExplanationKind.DUAL_STACK not in kinds(lifted, HOME_V6[0])
        assert ExplanationKind.DUAL_STACK in kinds(own, HOME_V6[0])

    def test_a_sibling_privacy_address_of_a_lan_seen_beside_the_home_ipv4(self) -> None:
        """Hours later, another address of the /64 whose address was in use beside the home IPv4 is the same router."""
        sibling = ("2001:db8:7922::beef", *HOME_V6[1:])
        elsewhere = ("2001:db8:7922:1::5", *HOME_V6[1:])
        ev = evidence(signin(HOME, 0), signin(HOME_V6, 2), signin(sibling, 300), signin(elsewhere, 300))
        assert kinds(ev, sibling[0]) == {ExplanationKind.DUAL_STACK}
        assert HOME_V6[0] in next(e.detail for e in explain(picture(ev), Settings()) if e.ip == sibling[0])
        assert ExplanationKind.DUAL_STACK not in kinds(ev, elsewhere[0])

    def test_ipv6_of_home_hours_later(self) -> None:
        """The same AS's other family hours apart is not "at the same time"."""
        ev = evidence(signin(HOME, -600), signin(HOME_V6, 0))
        assert ExplanationKind.DUAL_STACK not in kinds(ev, HOME_V6[0])


class TestTravel:
    def test_travel_record_matching_country_and_dates(self) -> None:
        """A travel record for France explains the Paris hotel during the trip."""
        assert kinds(travelling(), HOTEL_FR[0]) == {ExplanationKind.TRAVEL}

    def test_travel_record_for_france_does_not_explain_nigeria(self) -> None:
        """A trip to France explains France and no more: a Lagos address stays unexplained."""
        ev = travelling(signin(ATTACKER_2, 20, session_id="trip"))
        assert kinds(ev, ATTACKER_2[0]) == set()
        assert ATTACKER_2[0] in assess(ev, Settings()).suspect_ips

    def test_travel_record_for_other_dates(self) -> None:
        """A trip to France last month does not explain France today."""
        rows = (interactive(HOTEL_FR, 0), signin(HOTEL_FR, 10))
        assert kinds(evidence(*rows, travel=(trip("FR", -40, -30),)), HOTEL_FR[0]) == set()

    def test_travel_refuted_by_activity_from_home_at_the_same_time(self) -> None:
        """Signing in from Seattle broadband while "in Paris" refutes the trip for that address."""
        ev = travelling(signin(HOME, 5, session_id="home-now"))
        assert kinds(ev, HOTEL_FR[0]) == set()
        assert "impossible_travel" in {s.id for s in assess(ev, Settings()).signals}

    def test_a_phone_at_home_does_not_refute(self) -> None:
        """A phone's address is wherever its carrier routes it; only a fixed place (laptop on broadband) refutes."""
        phone_at_home = signin(HOME, 5, session_id="p", operating_system="iOS 17.5")
        laptop_at_home = signin(HOME, 5, session_id="p", operating_system="Windows10")
        assert ExplanationKind.TRAVEL in kinds(travelling(phone_at_home), HOTEL_FR[0])
        assert ExplanationKind.TRAVEL not in kinds(travelling(laptop_at_home), HOTEL_FR[0])

    def test_roaming_phone_routed_home_does_not_refute(self) -> None:
        """A phone roaming abroad egresses through its home carrier; that is no proof the user is home."""
        history = baseline(asns=frozenset({HOME[1], PHONE[1]}))
        rows = [interactive(HOME, -1300), interactive(HOTEL_FR, 0, session_id="trip"), signin(PHONE, 5, session_id="p")]
        ev = evidence(*rows, travel=(trip("FR"),), history=history)
        assert ExplanationKind.TRAVEL in kinds(ev, HOTEL_FR[0])


class TestDeviceContinuity:
    def test_users_compliant_laptop_on_a_new_network(self) -> None:
        """The user's own compliant laptop at a café explains the café's address."""
        history = baseline(device_ids=frozenset({LAPTOP}), compliant_device_ids=frozenset({LAPTOP}))
        ev = evidence(signin(ATTACKER_2, device_id=LAPTOP, is_compliant=True), history=history)
        assert kinds(ev, ATTACKER_2[0]) == {ExplanationKind.DEVICE_CONTINUITY}

    def test_unknown_device(self) -> None:
        """A device the baseline never saw is no continuity."""
        history = baseline(device_ids=frozenset({LAPTOP}), compliant_device_ids=frozenset({LAPTOP}))
        ev = evidence(signin(ATTACKER_2, device_id="another-device"), history=history)
        assert kinds(ev, ATTACKER_2[0]) == set()


class TestCoverage:
    def test_ips_seen_only_failing_are_explained_too(self) -> None:
        """An address that only failed (a stale token refused) still gets its explanation in the list."""
        history = baseline(asns=frozenset({HOME[1], PHONE[1]}))
        view = picture(evidence(*ordinary_day(), signin(PHONE, 30, result_type="50173"), history=history))
        assert PHONE[0] not in view.ips
        assert {e.kind for e in explain(view, Settings()) if e.ip == PHONE[0]} == {ExplanationKind.MOBILE_CARRIER}


class TestHonesty:
    def test_python_client_from_a_travel_ip_is_still_a_python_client(self) -> None:
        """Travel removes the network novelty of the hotel, not the scripting client used from it."""
        ev = travelling(signin(HOTEL_FR, 30, session_id="trip", user_agent="python-requests/2.32.3"))
        result = assess(ev, Settings())
        ids = {s.id for s in result.signals}
        assert ExplanationKind.TRAVEL in {e.kind for e in result.explanations if e.ip == HOTEL_FR[0]}
        assert "scripted_client" in ids
        assert HOTEL_FR[0] in result.suspect_ips

    def test_a_script_in_the_victims_own_carrier_is_still_a_replay(self) -> None:
        """The laptop's session driven by a script from the user's usual carrier scores as a replay, not churn."""
        history = baseline(
            asns=frozenset({HOME[1], PHONE[1]}), device_ids=frozenset({LAPTOP}), compliant_device_ids=frozenset({LAPTOP})
        )
        laptop = [signin(HOME, m, session_id="s-laptop", device_id=LAPTOP, is_compliant=True) for m in range(-60, 60, 15)]
        thief = [signin(PHONE, m, session_id="s-laptop", user_agent="python-requests/2.31") for m in range(-50, 50, 10)]
        result = assess(evidence(*laptop, *thief, history=history), Settings())
        assert result.verdict is Verdict.REPLAY_LIKELY
        assert result.suspect_ips == (PHONE[0],)

    def test_travel_removes_network_novelty(self) -> None:
        """The trip's hotel joining the user's session is not a session switch once the trip explains it."""
        ev = travelling(signin(HOTEL_FR, 30, session_id="session-home"))
        plain = evidence(*ev.signins)  # the same rows without the travel record
        assert "session_ip_switch" not in {s.id for s in assess(ev, Settings()).signals}
        assert "session_ip_switch" in {s.id for s in assess(plain, Settings()).signals}

    def test_travel_does_not_excuse_a_commercial_vpn(self) -> None:
        """A trip to Germany explains being in Germany, not signing in through NordVPN there."""
        rows = (interactive(HOME, -1300), signin(NORDVPN, 0, session_id="trip"))
        result = assess(evidence(*rows, travel=(trip("DE"),)), Settings())
        assert ExplanationKind.TRAVEL in {e.kind for e in result.explanations}
        assert "anonymizing_network" in {s.id for s in result.signals}

    def test_corporate_vpn_removes_network_signals(self) -> None:
        """The corporate VPN joining the home session is the user connecting to work."""
        vpn = ("198.18.0.20", 64502, "US", "Seattle", 47.61, -122.33)
        ev = evidence(*ordinary_day(), signin(vpn, 30, session_id="session-home", count=10))
        plain = assess(ev, Settings())
        covered = assess(ev, settings(REPLAY_VPN_CIDRS="198.18.0.0/24"))
        assert {"session_ip_switch", "non_interactive_unknown_network"} <= {s.id for s in plain.signals}
        assert covered.signals == ()
        assert covered.suspect_ips == ()

    def test_history_on_a_cloud_does_not_vouch_for_the_whole_cloud(self) -> None:
        """A user who once used a DigitalOcean address is not thereby known on every DigitalOcean address."""
        history = baseline(asns=frozenset({HOME[1], ATTACKER[1]}), countries=frozenset({"US", "NL"}))
        result = assess(evidence(*ordinary_day(), signin(ATTACKER, 30, session_id="session-home"), history=history), Settings())
        assert "session_ip_switch" in {s.id for s in result.signals}
        assert result.suspect_ips == (ATTACKER[0],)

    def test_explained_ips_are_removed_before_impossible_travel(self) -> None:
        """Seattle then a Microsoft datacentre far away is not travel: the service is not the person."""
        far_microsoft = ("203.0.113.9", 8075, "IE", "Dublin", 53.35, -6.26)
        ev = evidence(interactive(HOME, 0), signin(far_microsoft, 5, session_id="svc", user_agent=""))
        ids = {s.id for s in assess(ev, Settings()).signals}
        assert "impossible_travel" not in ids
        assert "impossible_travel" in {
            s.id for s in assess(evidence(interactive(HOME, 0), signin(ATTACKER, 5)), Settings()).signals
        }
