"""The static network and client knowledge: classification, and what it refuses to guess."""

from __future__ import annotations

import gzip
import ipaddress
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common import settings
from enrichment.domain import networks
from enrichment.domain.networks import NetworkKind
from enrichment.domain.picture import Address, parsed, site

ROOT = Path(__file__).resolve().parents[2]


class TestNetworkKind:
    @pytest.mark.parametrize(
        ("asn", "kind"),
        [
            (8075, NetworkKind.MICROSOFT),
            (136787, NetworkKind.CONSUMER_VPN),
            (14061, NetworkKind.HOSTING),
            (21928, NetworkKind.MOBILE_CARRIER),
            (3320, NetworkKind.MOBILE_CARRIER),
            (36183, NetworkKind.PRIVACY_RELAY),
            (13335, NetworkKind.PRIVACY_RELAY),
            (53813, NetworkKind.SECURITY_SERVICE_EDGE),
            (55256, NetworkKind.SECURITY_SERVICE_EDGE),
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
            networks.PRIVACY_RELAY_ASNS,
            networks.SSE_ASNS,
        ]
        seen: set[int] = set()
        for table in tables:
            assert not seen & set(table)
            seen |= set(table)

    def test_every_listed_asn_has_its_tables_kind(self) -> None:
        """The lookup table behind `network_kind` classifies every ASN of every list as that list says."""
        for table, kind in (
            (networks.MICROSOFT_ASNS, NetworkKind.MICROSOFT),
            (networks.CONSUMER_VPN_ASNS, NetworkKind.CONSUMER_VPN),
            (networks.HOSTING_ASNS, NetworkKind.HOSTING),
            (networks.MOBILE_CARRIER_ASNS, NetworkKind.MOBILE_CARRIER),
            (networks.MIXED_OPERATOR_ASNS, NetworkKind.MOBILE_CARRIER),
            (networks.PRIVACY_RELAY_ASNS, NetworkKind.PRIVACY_RELAY),
            (networks.SSE_ASNS, NetworkKind.SECURITY_SERVICE_EDGE),
        ):
            assert {asn: networks.network_kind(asn) for asn in table} == dict.fromkeys(table, kind)

    def test_shared_infrastructure(self) -> None:
        """Clouds, hosting, commercial VPNs, privacy relays and SSEs are shared by anyone; carriers and ISPs are not."""
        assert networks.shared_infrastructure(8075)
        assert networks.shared_infrastructure(16509)
        assert networks.shared_infrastructure(36183)
        assert networks.shared_infrastructure(53813)
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

    @pytest.mark.parametrize(
        "text",
        [
            "192.0.2.1",
            "0.0.0.0",
            "255.255.255.255",
            "192.0.2.01",
            "192.0.2.256",
            "192.0.2",
            "192.0.2.1.5",
            " 192.0.2.1",
            "192.0.2.1/24",
            "١٩٢.0.2.1",
            "2001:db8::1",
            "2001:DB8:0:0:0:0:0:1",
            "2001:db8:21928::1",
            "2001:db8::1::2",
            "::",
            "::ffff:192.0.2.1",
            "::ffff:192.0.2.01",
            "2001:db8::192.0.2.1",
            "fe80::1%eth0",
            "fe80::1%",
            "2001:0db8:0000:0000:0000:0000:0000:00001",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8:9",
            ":1:2:3:4:5:6:7",
            "",
            "x",
            "<script>",
        ],
    )
    def test_addresses_parse_as_ipaddress_parses_them(self, text: str) -> None:
        """The fast parser gives what `ipaddress.ip_address` gives (equal address, or None), hostile text included."""
        try:
            expected: Address | None = ipaddress.ip_address(text)
        except ValueError:
            expected = None
        found = parsed(text, {})
        assert found == expected
        assert type(found) is type(expected)
        if isinstance(found, ipaddress.IPv6Address) and isinstance(expected, ipaddress.IPv6Address):
            assert found.scope_id == expected.scope_id

    @given(st.integers(min_value=0, max_value=2**128 - 1), st.sampled_from(["compressed", "exploded"]))
    def test_any_ipv6_parses_to_itself_and_sits_in_its_48(self, value: int, form: str) -> None:
        """Any IPv6 address, in either written form, parses to itself, and its site is the /48 `IPv6Network` writes."""
        address = ipaddress.IPv6Address(value)
        text = getattr(address, form)
        assert parsed(text, {}) == address
        assert site(text) == str(ipaddress.IPv6Network((value >> 80 << 80, 48)))

    @given(st.integers(min_value=0, max_value=2**32 - 1))
    def test_any_ipv4_parses_to_itself_and_sits_in_its_24(self, value: int) -> None:
        """Any IPv4 address parses to itself, and its site is its /24."""
        address = ipaddress.IPv4Address(value)
        assert parsed(str(address), {}) == address
        assert site(str(address)) == str(ipaddress.IPv4Network((value >> 8 << 8, 24)))


class TestSecurityServiceEdges:
    def test_every_provider_the_settings_accept_has_its_egress_asns(self) -> None:
        """REPLAY_SSE_PROVIDER's values and the providers the scorer knows are the same set, each with ASNs."""
        assert set(networks.SSE_PROVIDERS) == set(settings.SSE_PROVIDERS)
        assert all(provider.asns for provider in networks.SSE_PROVIDERS.values())

    def test_global_secure_access_egresses_from_microsoft(self) -> None:
        """Entra Global Secure Access is recognised by Microsoft's own ASNs."""
        assert networks.SSE_PROVIDERS["entra_gsa"].asns == frozenset(networks.MICROSOFT_ASNS)


class TestRelays:
    @pytest.mark.parametrize(
        ("ip", "asn", "operator"),
        [
            ("172.224.237.5", 36183, "iCloud Private Relay"),
            ("2a02:26f7:b38a:4000::1", 36183, "iCloud Private Relay"),
            ("104.28.30.9", 13335, "iCloud Private Relay"),
            ("146.75.128.7", 54113, "iCloud Private Relay"),
            ("104.28.192.9", 13335, "Cloudflare WARP or Microsoft Edge Secure Network"),
        ],
    )
    def test_a_relay_is_found_by_its_published_list_or_its_relay_only_asn(self, ip: str, asn: int, operator: str) -> None:
        """Apple's list names Private Relay whoever carries it; off the list, Cloudflare's ASN is WARP or Edge Secure Network."""
        found = networks.relay(ip, asn)
        assert found is not None
        assert found.operator == operator

    @pytest.mark.parametrize(("ip", "asn"), [("146.75.1.1", 54113), ("172.224.237.5", 7922), ("172.224.237.5", None)])
    def test_a_cdn_address_off_the_list_or_another_asn_is_no_relay(self, ip: str, asn: int | None) -> None:
        """Fastly's CDN is a relay only where Apple lists it, and an address announced by an ISP is never a relay."""
        assert networks.relay(ip, asn) is None

    def test_the_shipped_list_names_its_source_and_date(self) -> None:
        """The Private Relay list carries Apple's feed as its source and the date it was taken, and thousands of prefixes."""
        listed = networks.egress_list("icloud-private-relay")
        assert "mask-api.icloud.com/egress-ip-ranges.csv" in listed.source
        assert listed.retrieved == "2026-08-17"
        assert len(listed.starts[0]) > 1000
        assert len(listed.starts[1]) > 1000

    def test_every_line_of_the_shipped_list_is_a_prefix_it_contains(self) -> None:
        """Each shipped prefix's first and last addresses are on the list; a documentation address and a non-address are not."""
        listed = networks.egress_list("icloud-private-relay")
        text = gzip.decompress((networks.EGRESS_FOLDER / "icloud-private-relay.txt.gz").read_bytes()).decode("ascii")
        prefixes = [ipaddress.ip_network(line) for line in text.splitlines() if line and not line.startswith("#")]
        for prefix in prefixes[::50]:
            assert listed.contains(str(prefix[0]))
            assert listed.contains(str(prefix[-1]))
        assert not listed.contains("192.0.2.1")
        assert not listed.contains("not-an-address")

    def test_importing_and_meeting_no_relay_reads_no_list(self) -> None:
        """The lists are read on first use by a relay operator's address, never at import."""
        code = (
            "from enrichment.domain import networks as n; n.relay('192.0.2.1', 7922); "
            "assert n.egress_list.cache_info().currsize == 0; n.relay('172.224.237.5', 36183); "
            "assert n.egress_list.cache_info().currsize == 1"
        )
        subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
