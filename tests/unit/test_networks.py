"""The static network and client knowledge: classification, and what it refuses to guess."""

from __future__ import annotations

import ipaddress

import pytest

from enrichment.domain import networks
from enrichment.domain.networks import NetworkKind
from enrichment.domain.picture import Address, parsed


class TestNetworkKind:
    @pytest.mark.parametrize(
        ("asn", "kind"),
        [
            (8075, NetworkKind.MICROSOFT),
            (136787, NetworkKind.CONSUMER_VPN),
            (14061, NetworkKind.HOSTING),
            (21928, NetworkKind.MOBILE_CARRIER),
            (3320, NetworkKind.MOBILE_CARRIER),
            (7922, NetworkKind.UNKNOWN),
            (None, NetworkKind.UNKNOWN),
        ],
    )
    def test_classification(self, asn: int | None, kind: NetworkKind) -> None:
        """Each table classifies its ASNs; an ASN in none of them is unknown, never assumed benign."""
        assert networks.network_kind(asn) is kind

    def test_tables_do_not_overlap(self) -> None:
        """No ASN is both Microsoft and a VPN, hosting or carrier: one fact per ASN."""
        tables = [
            networks.MICROSOFT_ASNS,
            networks.CONSUMER_VPN_ASNS,
            networks.HOSTING_ASNS,
            networks.MOBILE_CARRIER_ASNS,
            networks.MIXED_OPERATOR_ASNS,
        ]
        seen: set[int] = set()
        for table in tables:
            assert not seen & set(table)
            seen |= set(table)

    def test_shared_infrastructure(self) -> None:
        """Clouds, hosting and commercial VPNs are shared by anyone; carriers and ISPs are not."""
        assert networks.shared_infrastructure(8075)
        assert networks.shared_infrastructure(16509)
        assert not networks.shared_infrastructure(21928)
        assert not networks.shared_infrastructure(None)

    def test_operator_names(self) -> None:
        """Known ASNs carry their operator's name for the comment; unknown ones carry nothing."""
        assert "NordVPN" in networks.operator_name(136787)
        assert networks.operator_name(64512) == ""


class TestClients:
    @pytest.mark.parametrize(
        ("agent", "family"),
        [
            ("python-requests/2.32.3", "python-requests"),
            ("Go-http-client/1.1", "go-http-client"),
            ("curl/8.4.0", "curl"),
            ("Mozilla/5.0 (Windows NT; Windows NT 10.0; en-US) WindowsPowerShell/5.1.22621.2506", "powershell"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36", None),
            ("Outlook-iOS/728.4913406.prod.iphone (4.2429.0)", None),
            ("", None),
        ],
    )
    def test_scripted_client(self, agent: str, family: str | None) -> None:
        """Library default agents are scripts; browsers, Office apps and an empty agent are not classified."""
        assert networks.scripted_client(agent) == family

    def test_public_clients_are_lower_case_guids(self) -> None:
        """Client ids are stored lower-case, as rows.py normalises AppId."""
        assert all(app_id == app_id.lower() and len(app_id) == 36 for app_id in networks.FIRST_PARTY_PUBLIC_CLIENTS)

    @pytest.mark.parametrize(("system", "expected"), [("iOS 17.5", True), ("Android", True), ("Windows10", False), ("", False)])
    def test_handheld(self, system: str, expected: bool) -> None:
        """Phones and tablets are recognised by their operating system."""
        assert networks.handheld(system) is expected


class TestAddresses:
    def test_in_networks(self) -> None:
        """Membership is by address family and range; unparseable addresses are in nothing."""
        nets = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8::/32"))
        assert networks.in_networks("10.1.2.3", nets)
        assert networks.in_networks("2001:db8::1", nets)
        assert not networks.in_networks("192.168.1.1", nets)
        assert not networks.in_networks("not-an-ip", nets)
        assert not networks.in_networks("10.1.2.3", ())

    def test_addresses_are_parsed_once_and_garbage_is_no_address(self) -> None:
        """IPv4 and IPv6 parse to their version; what is not an address (anonymised, malformed) is None, remembered."""
        known: dict[str, Address | None] = {}
        assert [a.version if a else None for a in (parsed(ip, known) for ip in ("192.0.2.1", "2001:db8::1", "x"))] == [4, 6, None]
        assert set(known) == {"192.0.2.1", "2001:db8::1", "x"}
        assert parsed("192.0.2.1", known) is known["192.0.2.1"]
