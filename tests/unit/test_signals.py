"""The replay signals, one by one: each fires on its evidence and stays silent on the look-alike."""

from __future__ import annotations

from types import ModuleType

import pytest

from common.settings import Settings
from enrichment.domain.explanations import explain
from enrichment.domain.model import Column, Signal, SignIn, UserEvidence
from enrichment.domain.picture import ReferenceSource, picture
from enrichment.domain.signals import CATALOGUE, FAMILIES, RULES, Cover, browser_family, detect, haversine_km, rule
from enrichment.domain.signals.catalogue import collect
from tests.unit.factories import (
    ATTACKER,
    ATTACKER_2,
    AZURE_CLI,
    HOME,
    LAPTOP,
    MICROSOFT,
    NO_HISTORY,
    NORDVPN,
    OFFICE,
    PHONE,
    baseline,
    evidence,
    interactive,
    ordinary_day,
    registered,
    settings,
    signin,
)


def fired(ev: UserEvidence, config: Settings | None = None) -> dict[str, Signal]:
    view = picture(ev)
    return {s.id: s for s in detect(view, Cover.of(explain(view, config or Settings())))}


class TestCatalogue:
    def test_every_rule_has_a_weight_and_a_reason(self) -> None:
        """Each declared rule is in the catalogue under its function's name, with a positive weight and a reason."""
        assert [r.id for r in RULES] == list(CATALOGUE)
        assert all(r.id == r.detector.__name__ and r.weight > 0 and r.reason for r in RULES)

    def test_report_order_is_family_then_declaration_order(self) -> None:
        """The catalogue is collected from the family modules, in the order signals have always been reported."""
        assert list(CATALOGUE) == [
            "session_ip_switch",
            "session_left_device",
            "session_born_on_rented_network",
            "session_browser_switch",
            "non_interactive_unknown_network",
            "concurrent_streams",
            "impossible_travel",
            "anonymizing_network",
            "token_only_new_context",
            "device_code_flow",
            "prt_unknown_device",
            "scripted_client",
            "public_client_new_network",
            "unmanaged_device",
            "unbound_session_new_network",
            "new_app",
            "unusual_hours",
            "volume_jump",
            "risk_attacker_in_the_middle",
            "risk_anomalous_token",
            "risk_unfamiliar_sign_in",
            "security_info_from_suspect_ip",
            "security_info_changed",
            "inbox_rule_hides_mail",
            "mail_forwarded_outside",
            "mass_mail_access_scripted",
            "consent_to_unknown_app",
        ]

    def test_a_rule_imported_into_another_family_is_counted_once(self) -> None:
        """A family module that imports another's rule does not declare it again."""
        sessions = FAMILIES[0]
        borrower = ModuleType("tests.borrowing_family")
        borrower.session_ip_switch = sessions.session_ip_switch  # type: ignore[attr-defined]
        assert collect((sessions, borrower)) == collect((sessions,))
        assert collect(FAMILIES) == RULES

    def test_one_id_declared_twice_is_refused(self) -> None:
        """Two declarations of one signal id are refused: an id names exactly one rule."""
        with pytest.raises(ValueError, match=r"declared twice: .*session_ip_switch"):
            collect((FAMILIES[0], FAMILIES[0]))

    def test_a_rule_needs_a_weight_and_a_reason(self) -> None:
        """A declaration without points, columns or a reason is refused when its module is imported."""
        with pytest.raises(ValueError, match="positive weight, the columns it reads and a reason"):
            rule(weight=0, covered_by=frozenset(), reads={Column.ASN}, reason="none")(lambda p, check: None)
        with pytest.raises(ValueError, match="positive weight, the columns it reads and a reason"):
            rule(weight=5, covered_by=frozenset(), reads=(), reason="none")(lambda p, check: None)

    def test_signals_carry_the_catalogue_weight(self) -> None:
        """A fired signal's weight is its rule's, so the declaration is the only place weights live."""
        found = fired(evidence(*ordinary_day(), signin(ATTACKER, 10, session_id="session-home", user_agent="curl/8.4")))
        assert found
        assert all(s.weight == CATALOGUE[s.id].weight for s in found.values())


class TestSessionIpSwitch:
    def test_session_used_from_a_new_as_implicates_the_new_side(self) -> None:
        """The home session refreshed from a DigitalOcean address: the attacker IP, not home, is implicated."""
        found = fired(evidence(*ordinary_day(), signin(ATTACKER, 30, session_id="session-home")))
        assert found["session_ip_switch"].ips == (ATTACKER[0],)
        assert "AS14061" in found["session_ip_switch"].detail
        assert HOME[0] in found["session_ip_switch"].detail

    def test_session_moving_between_known_networks_is_ordinary(self) -> None:
        """Laptop from home to office and phone on the usual carrier, one session: nothing moved to a new network."""
        history = baseline(asns=frozenset({HOME[1], PHONE[1]}), ips=frozenset({HOME[0], OFFICE[0], PHONE[0]}))
        ev = evidence(*ordinary_day(), signin(OFFICE, 60), signin(PHONE, 90), history=history)
        assert "session_ip_switch" not in fired(ev)

    def test_session_inside_one_as_is_roaming(self) -> None:
        """A new address in the same AS as the rest of the session is not a switch of network."""
        same_as = ("198.51.100.77", HOME[1], "US", "Seattle", 47.61, -122.33)
        assert "session_ip_switch" not in fired(evidence(*ordinary_day(), signin(same_as, 30)))


class TestSessionLeftDevice:
    NEIGHBOUR = ("198.51.100.77", HOME[1], "US", "Seattle", 47.61, -122.33)  # same ISP, same /24 as HOME
    SAME_ISP = ("192.0.2.201", HOME[1], "US", "Seattle", 47.61, -122.33)  # same ISP, another part of it

    def _laptop_day(self) -> tuple[SignIn, ...]:
        return tuple(signin(HOME, m, device_id=LAPTOP, is_compliant=True, session_id="s-laptop") for m in (-240, -120, -60))

    def test_laptop_session_used_without_a_device_elsewhere_in_the_same_isp(self) -> None:
        """The laptop's session replayed by a device-less client from another address of the user's own ISP is caught."""
        history = baseline(device_ids=frozenset({LAPTOP}), ips=frozenset({HOME[0]}))
        thief = signin(self.SAME_ISP, 30, session_id="s-laptop", user_agent="python-requests/2.31")
        found = fired(evidence(*self._laptop_day(), thief, history=history))
        assert found["session_left_device"].ips == (self.SAME_ISP[0],)
        assert "python-requests/2.31" in found["session_left_device"].detail

    def test_a_lifted_address_is_not_familiar_even_in_a_known_network(self) -> None:
        """Once the session is lifted to it, an address in the user's own AS counts as new for the other signals."""
        history = baseline(device_ids=frozenset({LAPTOP}), ips=frozenset({HOME[0]}))
        view = picture(evidence(*self._laptop_day(), signin(self.SAME_ISP, 30, session_id="s-laptop"), history=history))
        assert self.SAME_ISP[0] in view.unfamiliar
        assert not view.familiar(self.SAME_ISP[0])

    def test_the_devices_own_cli_beside_it_is_not_a_lift(self) -> None:
        """A device-less tool on the same machine, leaving through a sibling address of the same /24, is the user."""
        history = baseline(device_ids=frozenset({LAPTOP}), ips=frozenset({HOME[0]}))
        cli = signin(self.NEIGHBOUR, 30, session_id="s-laptop", app_id=AZURE_CLI, user_agent="python/3.11 azure-cli")
        found = fired(evidence(*self._laptop_day(), cli, history=history))
        assert "session_left_device" not in found

    def test_a_session_never_seen_on_a_device_says_nothing(self) -> None:
        """Without the user's device in the session there is nothing it could have left."""
        history = baseline(ips=frozenset({HOME[0]}))
        rows = (signin(HOME, -60, session_id="s-browser"), signin(self.SAME_ISP, 30, session_id="s-browser"))
        assert "session_left_device" not in fired(evidence(*rows, history=history))

    def test_microsoft_acting_for_the_user_is_covered(self) -> None:
        """A Microsoft service refreshing the user's session carries no device; its explanation covers the signal."""
        history = baseline(device_ids=frozenset({LAPTOP}), ips=frozenset({HOME[0]}))
        service = signin(MICROSOFT, 30, session_id="s-laptop", user_agent="", app="Office 365 Exchange Online")
        assert "session_left_device" not in fired(evidence(*self._laptop_day(), service, history=history))


class TestSessionBrowserSwitch:
    EDGE = {"operating_system": "Windows10", "browser": "Edge 137.0.3296"}
    CHROME_LINUX = {"operating_system": "Linux", "browser": "Chrome 137.0.0"}

    def _phish(self) -> tuple[SignIn, ...]:
        """The victim's MFA sign-in, logged at the proxy, then the proxy's own refreshes: Edge on Windows."""
        return (
            interactive(ATTACKER, -60, session_id="s-phish", **self.EDGE),
            signin(ATTACKER, -59, session_id="s-phish", **self.EDGE),
        )

    def test_the_phished_session_replayed_in_another_browser(self) -> None:
        """A session opened in Edge on Windows and used by Chrome on Linux with no device implicates the Chrome side."""
        replay = (
            interactive(ATTACKER_2, -30, session_id="s-phish", token_only=True, **self.CHROME_LINUX),
            signin(ATTACKER_2, -29, session_id="s-phish", **self.CHROME_LINUX),
        )
        signal = fired(evidence(*ordinary_day(), *self._phish(), *replay))["session_browser_switch"]
        assert signal.ips == (ATTACKER_2[0],)
        assert "Edge on windows to Chrome on linux" in signal.detail

    def test_a_browser_update_inside_a_session_is_the_same_browser(self) -> None:
        """Edge 137 then Edge 138 in one session is one browser updating, not a copied cookie."""
        update = signin(ATTACKER_2, -20, session_id="s-phish", operating_system="Windows", browser="Edge 138.0.3351")
        assert "session_browser_switch" not in fired(evidence(*ordinary_day(), *self._phish(), update))

    def test_native_clients_share_the_session_of_their_device(self) -> None:
        """Office and scripts on the same machine ("Rich Client", "Python Requests") say nothing about the browser."""
        rows = [
            signin(ATTACKER_2, -20 + i, session_id="s-phish", operating_system="Windows", browser=name)
            for i, name in enumerate(("Rich Client 5.2.8", "Python Requests 2.32", "IE 7.0", ""))
        ]
        assert "session_browser_switch" not in fired(evidence(*ordinary_day(), *self._phish(), *rows))

    def test_the_users_own_device_may_carry_one_session_in_two_browsers(self) -> None:
        """Edge and Chrome on one Windows device share its primary refresh token's session: not a copy."""
        history = baseline(device_ids=frozenset({LAPTOP}), ips=frozenset({HOME[0]}))
        edge = interactive(HOME, -60, session_id="s-laptop", device_id=LAPTOP, is_compliant=True, **self.EDGE)
        chrome = signin(
            PHONE, -30, session_id="s-laptop", device_id=LAPTOP, operating_system="Windows10", browser="Chrome 137.0.0"
        )
        assert "session_browser_switch" not in fired(evidence(edge, chrome, history=history))

    def test_an_address_the_sessions_own_browser_used_is_not_implicated(self) -> None:
        """A second browser at the address where the session's own browser works is not called the thief."""
        other = signin(ATTACKER, -20, session_id="s-phish", **self.CHROME_LINUX)
        assert "session_browser_switch" not in fired(evidence(*ordinary_day(), *self._phish(), other))

    def test_the_organisations_network_vouches_for_the_second_browser(self) -> None:
        """Inside the corporate VPN the organisation vouches for who holds the session; nothing else does."""
        replay = signin(ATTACKER_2, -29, session_id="s-phish", **self.CHROME_LINUX)
        ev = evidence(*ordinary_day(), *self._phish(), replay)
        assert "session_browser_switch" in fired(ev)
        assert "session_browser_switch" not in fired(ev, settings(REPLAY_VPN_CIDRS=f"{ATTACKER_2[0]}/32"))

    @pytest.mark.parametrize(
        ("operating_system", "browser", "family"),
        [
            ("Windows10", "Edge 137.0.3296", ("windows", "edge")),
            ("Windows", "Chrome 138.0.0", ("windows", "chrome")),
            ("Ios", "Mobile Safari", ("ios", "mobile safari")),
            ("MacOs", "Safari 18.4", ("macos", "safari")),
            ("Windows10", "Rich Client 5.2.8.0", None),
            ("Windows", "Python Requests 2.32", None),
            ("", "", None),
        ],
    )
    def test_browser_family_drops_versions_and_native_clients(
        self, operating_system: str, browser: str, family: tuple[str, str] | None
    ) -> None:
        """Versions and Windows editions collapse into one family; native clients and services have none."""
        assert browser_family(signin(operating_system=operating_system, browser=browser)) == family


class TestNonInteractiveUnknownNetwork:
    def test_refreshes_where_the_user_never_signed_in(self) -> None:
        """Only token refreshes from a network with no interactive sign-in, now or in the baseline."""
        found = fired(evidence(*ordinary_day(), signin(ATTACKER, 30, session_id="other", count=40)))
        signal = found["non_interactive_unknown_network"]
        assert signal.ips == (ATTACKER[0],)
        assert "40 non-interactive sign-ins" in signal.detail

    def test_network_with_an_interactive_sign_in_is_not_flagged(self) -> None:
        """A new network where the user also signed in interactively is a new place, not a stolen token."""
        ev = evidence(*ordinary_day(), interactive(ATTACKER, 20), signin(ATTACKER, 30, session_id="other"))
        assert "non_interactive_unknown_network" not in fired(ev)


class TestConcurrentStreams:
    def test_two_ases_refreshing_at_once(self) -> None:
        """Refreshes from home and from another AS within minutes implicate only the unfamiliar side."""
        ev = evidence(*ordinary_day(), signin(ATTACKER, -297, session_id="other"))
        assert fired(ev)["concurrent_streams"].ips == (ATTACKER[0],)

    def test_streams_hours_apart_are_not_concurrent(self) -> None:
        """A new network two hours after home went quiet is not a second stream."""
        rows = (interactive(HOME, -300), signin(HOME, -300), signin(ATTACKER, -180, session_id="other"))
        assert "concurrent_streams" not in fired(evidence(*rows))

    def test_laptop_and_phone_on_known_networks(self) -> None:
        """Home broadband and the usual mobile carrier at once is one person with two devices."""
        history = baseline(asns=frozenset({HOME[1], PHONE[1]}))
        ev = evidence(*ordinary_day(), signin(PHONE, -297, session_id="phone"), history=history)
        assert "concurrent_streams" not in fired(ev)


class TestImpossibleTravel:
    def test_seattle_then_amsterdam_in_half_an_hour(self) -> None:
        """About 7,800 km in 30 minutes between successful sign-ins is impossible travel."""
        rows = (interactive(HOME, 0), interactive(ATTACKER, 35, session_id="other"))
        signal = fired(evidence(*rows))["impossible_travel"]
        assert signal.ips == (ATTACKER[0],)
        assert "km" in signal.detail

    def test_a_day_apart_is_a_flight(self) -> None:
        """The same two places twenty hours apart is an ordinary flight."""
        rows = (interactive(HOME, -1300), interactive(ATTACKER, -100, session_id="other"))
        assert "impossible_travel" not in fired(evidence(*rows))

    def test_haversine_matches_a_known_distance(self) -> None:
        """Paris to London is about 344 km on the great circle."""
        assert haversine_km(48.8566, 2.3522, 51.5074, -0.1278) == pytest.approx(344, abs=3)


class TestAnonymizingNetwork:
    def test_commercial_vpn_is_flagged(self) -> None:
        """A NordVPN address the user is not known on is where replays come from."""
        found = fired(evidence(*ordinary_day(), signin(NORDVPN, 30, session_id="other")))
        assert found["anonymizing_network"].ips == (NORDVPN[0],)
        assert "NordVPN" in found["anonymizing_network"].detail

    def test_asn_the_organisation_trusts_is_not(self) -> None:
        """When the organisation lists the ASN as its own, the VPN is vouched for."""
        ev = evidence(*ordinary_day(), signin(NORDVPN, 30, session_id="other"))
        assert "anonymizing_network" not in fired(ev, settings(REPLAY_TRUSTED_ASNS="136787"))


class TestTokenOnlyNewContext:
    def test_claim_in_token_from_new_network_and_device(self) -> None:
        """The AiTM signature: an interactive sign-in satisfied by a token claim, from a new network."""
        found = fired(evidence(*ordinary_day(), interactive(ATTACKER, 30, token_only=True, session_id="stolen")))
        assert found["token_only_new_context"].ips == (ATTACKER[0],)

    def test_claim_in_token_at_home_is_single_sign_on(self) -> None:
        """The same claim from the user's own network is ordinary SSO and must not count."""
        found = fired(evidence(*ordinary_day(), interactive(HOME, 30, token_only=True)))
        assert "token_only_new_context" not in found
        assert found == {}

    def test_claim_in_token_on_the_users_own_device(self) -> None:
        """On a new network but from the user's known device, the context is not new."""
        history = baseline(device_ids=frozenset({LAPTOP}))
        ev = evidence(*ordinary_day(), interactive(ATTACKER, 30, token_only=True, device_id=LAPTOP), history=history)
        assert "token_only_new_context" not in fired(ev)

    def test_claim_on_a_new_compliant_laptop_tethered_to_the_usual_carrier(self) -> None:
        """A managed laptop the baseline never saw, on a new address of the user's carrier: its own session's claim, not a copied one."""
        history = baseline(asns=frozenset({HOME[1], PHONE[1]}))
        row = interactive(PHONE, 30, token_only=True, session_id="s-mac", device_id="mac-new", is_compliant=True)
        assert "token_only_new_context" not in fired(evidence(*ordinary_day(), row, history=history))

    def test_claim_without_a_device_on_a_new_address_of_the_usual_carrier_still_counts(self) -> None:
        """A copied cookie replayed through a mobile proxy of the user's own carrier carries no device: still somewhere new."""
        history = baseline(asns=frozenset({HOME[1], PHONE[1]}))
        registered_only = interactive(PHONE, 30, token_only=True, session_id="s-x", device_id="planted", is_compliant=False)
        for row in (interactive(PHONE, 30, token_only=True, session_id="stolen"), registered_only):
            assert fired(evidence(*ordinary_day(), row, history=history))["token_only_new_context"].ips == (PHONE[0],)


class TestDeviceCodeFlow:
    def test_device_code_never_seen_before(self) -> None:
        """Device-code authentication absent from the baseline fires."""
        found = fired(evidence(*ordinary_day(), interactive(ATTACKER, 30, auth_protocol="deviceCode")))
        assert found["device_code_flow"].ips == (ATTACKER[0],)

    def test_device_code_in_the_baseline(self) -> None:
        """A user who routinely uses the flow (a developer on a CLI) is not flagged for it."""
        history = baseline(auth_protocols=frozenset({"none", "deviceCode"}))
        ev = evidence(*ordinary_day(), interactive(HOME, 30, auth_protocol="deviceCode"), history=history)
        assert "device_code_flow" not in fired(ev)


class TestPrtUnknownDevice:
    def test_prt_from_a_device_the_user_never_had(self) -> None:
        """A primary refresh token from an unknown device (a planted registration) fires, naming the device."""
        row = signin(ATTACKER, 30, incoming_token_type="primaryRefreshToken", device_id="dev-new", device_name="DESKTOP-X1")
        found = fired(evidence(*ordinary_day(), row))
        assert "DESKTOP-X1" in found["prt_unknown_device"].detail

    def test_prt_from_a_new_managed_device(self) -> None:
        """A new device Entra reports compliant (a replacement laptop, a Cloud PC) is managed, not planted."""
        row = signin(ATTACKER, 30, incoming_token_type="primaryRefreshToken", device_id="dev-new", is_compliant=True)
        assert "prt_unknown_device" not in fired(evidence(*ordinary_day(), row))

    def test_prt_from_the_users_laptop(self) -> None:
        """The PRT of the user's own joined laptop is how Windows signs in."""
        history = baseline(device_ids=frozenset({LAPTOP}))
        row = signin(HOME, 30, incoming_token_type="primaryRefreshToken", device_id=LAPTOP)
        assert "prt_unknown_device" not in fired(evidence(*ordinary_day(), row, history=history))


class TestScriptedClient:
    def test_python_requests_is_flagged(self) -> None:
        """python-requests where the user only ever used a browser."""
        found = fired(evidence(*ordinary_day(), signin(HOME, 30, user_agent="python-requests/2.32.3")))
        assert "python-requests" in found["scripted_client"].detail
        assert found["scripted_client"].ips == (HOME[0],)

    def test_scripts_the_user_always_runs(self) -> None:
        """A user whose baseline shows python-requests (another version) is not flagged for it."""
        history = baseline(user_agents=frozenset({"python-requests/2.31.0"}))
        ev = evidence(*ordinary_day(), signin(HOME, 30, user_agent="python-requests/2.32.3"), history=history)
        assert "scripted_client" not in fired(ev)

    def test_empty_user_agent_counts_only_interactively(self) -> None:
        """Service refreshes often carry no user agent; a person's interactive sign-in always has one."""
        quiet = fired(evidence(*ordinary_day(), signin(HOME, 30, user_agent="")))
        loud = fired(evidence(*ordinary_day(), interactive(HOME, 30, user_agent="")))
        assert "scripted_client" not in quiet
        assert "empty user agent" in loud["scripted_client"].detail


class TestPublicClientNewNetwork:
    def test_azure_cli_from_a_new_network(self) -> None:
        """Azure CLI, never used by the user, from a new network: the FOCI token replay tool of choice."""
        found = fired(evidence(*ordinary_day(), signin(ATTACKER, 30, app_id=AZURE_CLI, app="Microsoft Azure CLI")))
        assert "Microsoft Azure CLI" in found["public_client_new_network"].detail

    def test_azure_cli_from_a_new_address_in_the_users_isp(self) -> None:
        """A new address inside the user's own ISP is not a new network (privacy addresses, the phished browser)."""
        same_isp = ("198.51.100.123", HOME[1], "US", "Seattle", 47.61, -122.33)
        found = fired(evidence(*ordinary_day(), signin(same_isp, 30, app_id=AZURE_CLI, app="Microsoft Azure CLI")))
        assert "public_client_new_network" not in found

    def test_azure_cli_on_a_managed_device(self) -> None:
        """The client running on a device Entra reports compliant is the user's tool, not a lifted token."""
        row = signin(ATTACKER, 30, app_id=AZURE_CLI, app="Microsoft Azure CLI", device_id="dev-new", is_compliant=True)
        assert "public_client_new_network" not in fired(evidence(*ordinary_day(), row))

    def test_azure_cli_at_home(self) -> None:
        """The same client from the user's own network is the user trying a tool."""
        ev = evidence(*ordinary_day(), signin(HOME, 30, app_id=AZURE_CLI, app="Microsoft Azure CLI"))
        assert "public_client_new_network" not in fired(ev)


class TestUnmanagedDevice:
    def test_no_device_where_every_device_is_compliant(self) -> None:
        """A user always on a compliant laptop appears from a new network with no device."""
        history = baseline(device_ids=frozenset({LAPTOP}), compliant_device_ids=frozenset({LAPTOP}))
        rows = (*[signin(HOME, m, device_id=LAPTOP, is_compliant=True) for m in (-60, -30)], signin(ATTACKER, 30))
        assert fired(evidence(*rows, history=history))["unmanaged_device"].ips == (ATTACKER[0],)

    def test_user_with_unmanaged_devices_in_the_baseline(self) -> None:
        """When the baseline already holds a non-compliant device, a device-less sign-in says nothing."""
        history = baseline(device_ids=frozenset({LAPTOP, "byod-1"}), compliant_device_ids=frozenset({LAPTOP}))
        assert "unmanaged_device" not in fired(evidence(*ordinary_day(), signin(ATTACKER, 30), history=history))


class TestUnboundSession:
    def test_unbound_session_on_a_new_network(self) -> None:
        """An unbound session used from a new network and device is weak evidence of a lifted cookie."""
        found = fired(evidence(*ordinary_day(), signin(ATTACKER, 30, token_protection="unbound")))
        assert found["unbound_session_new_network"].ips == (ATTACKER[0],)

    def test_unbound_session_at_home(self) -> None:
        """Most sessions are unbound; at home it means nothing."""
        assert "unbound_session_new_network" not in fired(evidence(*ordinary_day(), signin(HOME, 30, token_protection="unbound")))


class TestNewApp:
    def test_new_app_from_a_new_network(self) -> None:
        """An app the user never opened, reached from a new network."""
        row = signin(ATTACKER, 30, app_id="aaaaaaaa-0000-4000-8000-000000000001", app="M365ChatClient")
        assert "M365ChatClient" in fired(evidence(*ordinary_day(), row))["new_app"].detail

    def test_new_app_at_home(self) -> None:
        """Trying a new app at home is not replay evidence."""
        row = signin(HOME, 30, app_id="aaaaaaaa-0000-4000-8000-000000000001", app="M365ChatClient")
        assert "new_app" not in fired(evidence(*ordinary_day(), row))


class TestUnusualHours:
    def test_activity_at_an_hour_never_seen(self) -> None:
        """Sign-ins at 03:00 UTC from a new network, for a user active 06:00-20:00 for two weeks."""
        found = fired(evidence(*ordinary_day(), signin(ATTACKER, -660, session_id="x")))  # AT is 14:00, so 03:00
        assert "03:00" in found["unusual_hours"].detail
        assert found["unusual_hours"].ips == (ATTACKER[0],)

    def test_the_user_awake_at_home(self) -> None:
        """The user's own network at 03:00 is the user awake, not someone else's time zone."""
        assert "unusual_hours" not in fired(evidence(*ordinary_day(), signin(HOME, -660)))

    def test_round_the_clock_user(self) -> None:
        """A user whose devices refresh at every hour has no unusual hour."""
        history = baseline(hours=frozenset(range(24)))
        assert "unusual_hours" not in fired(evidence(*ordinary_day(), signin(ATTACKER, -660, session_id="x"), history=history))

    def test_too_little_history(self) -> None:
        """Three days of history cannot say which hours are unusual."""
        history = baseline(days_active=3)
        assert "unusual_hours" not in fired(evidence(*ordinary_day(), signin(ATTACKER, -660, session_id="x"), history=history))


class TestVolumeJump:
    def test_refresh_flood_against_quiet_baseline(self) -> None:
        """Thousands of refreshes a day against at most 100 on any baseline day."""
        rows = [signin(HOME, -600 + 10 * i, count=100) for i in range(30)]
        assert "against at most 100" in fired(evidence(*ordinary_day(), *rows))["volume_jump"].detail

    def test_ordinary_volume(self) -> None:
        """An ordinary day's refreshes do not fire."""
        assert "volume_jump" not in fired(evidence(*ordinary_day()))


class TestIdentityProtection:
    @pytest.mark.parametrize(
        ("event", "signal_id"),
        [
            ("attackerinTheMiddle", "risk_attacker_in_the_middle"),
            ("anomalousToken", "risk_anomalous_token"),
            ("unfamiliarFeatures", "risk_unfamiliar_sign_in"),
        ],
    )
    def test_risk_event_corroborates(self, event: str, signal_id: str) -> None:
        """Each Identity Protection detection class maps to its own signal, naming the event."""
        found = fired(evidence(*ordinary_day(), signin(ATTACKER, 30, risk_events=(event,))))
        assert event in found[signal_id].detail

    def test_no_risk_no_signal(self) -> None:
        """Rows without detections add no risk signal."""
        assert not {k for k in fired(evidence(*ordinary_day())) if k.startswith("risk_")}


class TestSecurityInfo:
    def test_method_registered_from_the_replaying_ip(self) -> None:
        """An Authenticator registered from the IP replaying the session is persistence."""
        ev = evidence(*ordinary_day(), signin(ATTACKER, 30, session_id="session-home"), security=(registered(40, ATTACKER[0]),))
        found = fired(ev)
        assert found["security_info_from_suspect_ip"].ips == (ATTACKER[0],)
        assert "security_info_changed" not in found

    def test_method_registered_at_home(self) -> None:
        """A registration from home is worth a mention, not an accusation."""
        found = fired(evidence(*ordinary_day(), security=(registered(40, HOME[0]),)))
        assert found["security_info_changed"].ips == ()
        assert "security_info_from_suspect_ip" not in found

    def test_deleting_a_method_is_not_registration(self) -> None:
        """Deleting security info adds no way in."""
        ev = evidence(*ordinary_day(), security=(registered(40, HOME[0], "User deleted security info"),))
        assert not {k for k in fired(ev) if k.startswith("security_info")}


class TestReference:
    def test_no_history_uses_the_start_of_the_window(self) -> None:
        """Without a baseline, the first network's activity before another appears is the reference."""
        rows = (
            interactive(HOME, -300),
            signin(HOME, -290, user_agent="python-requests/2.32.3"),
            signin(ATTACKER, 10, session_id="session-home"),
            interactive(ATTACKER, 12, session_id="session-home", token_only=True),
        )
        view = picture(evidence(*rows, history=NO_HISTORY))
        assert view.reference.source is ReferenceSource.WINDOW_START
        found = fired(evidence(*rows, history=NO_HISTORY))
        assert "scripted_client" not in found  # the script ran from home before anything else
        assert found["token_only_new_context"].ips == (ATTACKER[0],)
        assert "no baseline history" in found["token_only_new_context"].detail

    def test_no_reference_silences_novelty(self) -> None:
        """Two networks from the first moment: nothing is "new for the user", so novelty signals stay silent."""
        rows = (signin(HOME, 0, user_agent="curl/8.4"), signin(ATTACKER_2, 0, user_agent="curl/8.4", session_id="x"))
        view = picture(evidence(*rows, history=NO_HISTORY))
        assert view.reference.source is ReferenceSource.NONE
        assert "scripted_client" not in fired(evidence(*rows, history=NO_HISTORY))

    def test_failed_sign_ins_are_not_token_use(self) -> None:
        """A failed sign-in from a new network does not count as that network using the user's tokens."""
        rows = (*ordinary_day(), signin(ATTACKER, 30, session_id="session-home", result_type="50126"))
        view = picture(evidence(*rows))
        assert ATTACKER[0] not in view.ips
        assert "session_ip_switch" not in fired(evidence(*rows))

    def test_interactive_rows_count_in_the_picture(self) -> None:
        """The per-IP facts add event counts per table."""
        view = picture(evidence(*ordinary_day()))
        assert view.ips[HOME[0]].interactive == 1
        assert view.ips[HOME[0]].non_interactive == 36
        assert view.ips[HOME[0]].familiar
