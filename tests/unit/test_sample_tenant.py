"""The sample-tenant generator: reproducible, schema-true exports whose scenarios carry their own ground truth."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import ipaddress
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from common.settings import Settings
from enrichment.domain import networks
from sample_tenant import catalog
from sample_tenant.cli import main
from sample_tenant.generate import Options, generate
from sample_tenant.scenarios import Family
from sample_tenant.tenant import build_tenant
from sample_tenant.workloads import WORKLOAD_TABLES

SMALL = {"users": 34, "days": 3, "variants": 2}
END = datetime(2026, 6, 15, 23, 59, 59, tzinfo=UTC)
SCHEMAS = Path(__file__).resolve().parents[2] / "enrichment" / "schemas"
INTERACTIVE, NON_INTERACTIVE, AUDIT = "SigninLogs", "AADNonInteractiveUserSignInLogs", "AuditLogs"
OFFICE, GRAPH = "OfficeActivity", "MicrosoftGraphActivityLogs"
#: Every table the generator writes.
ALL_TABLES = (INTERACTIVE, NON_INTERACTIVE, AUDIT, *WORKLOAD_TABLES)
#: The columns the brief names as JSON strings in the non-interactive table (objects in SigninLogs).
MIXED = (
    "LocationDetails",
    "DeviceDetail",
    "Status",
    "MfaDetail",
    "TokenProtectionStatusDetails",
    "ConditionalAccessPolicies",
    "Agent",
)
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def _schema(table: str) -> dict[str, dict[str, Any]]:
    document = json.loads((SCHEMAS / f"{table}.json").read_text(encoding="utf-8"))
    return {c["name"]: c for c in document["columns"]}


def _object(row: dict[str, Any], name: str) -> Any:
    """A mixed column's value whichever table the row is from (object in SigninLogs, JSON text otherwise)."""
    value = row[name]
    return json.loads(value) if isinstance(value, str) else value


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Export:
    """One generated folder, parsed."""

    folder: Path
    tables: dict[str, list[dict[str, Any]]]
    scenarios: list[dict[str, Any]]
    settings: Settings
    travel: list[dict[str, str]]

    def rows_of(self, user_id: str, table: str | None = None) -> list[dict[str, Any]]:
        tables = [table] if table else [INTERACTIVE, NON_INTERACTIVE]
        return [r for t in tables for r in self.tables[t] if r["UserId"] == user_id]

    def in_window(self, scenario: dict[str, Any], table: str | None = None) -> list[dict[str, Any]]:
        at = _time(scenario["at"])
        low, high = at - timedelta(hours=24), at + timedelta(hours=6)
        return [r for r in self.rows_of(scenario["user_id"], table) if low <= _time(r["TimeGenerated"]) <= high]

    def family(self, family: Family) -> list[dict[str, Any]]:
        found = [s for s in self.scenarios if s["family"] == family.value]
        assert found, f"no {family.value} scenario generated"
        return found


def _user(scenario: dict[str, Any]) -> Any:
    """The tenant's user a SMALL scenario is bound to (profiles never depend on scenarios)."""
    return next(u for u in build_tenant(7, SMALL["users"]).users if u.upn == scenario["user"])


def _sessions_of(rows: list[dict[str, Any]], ips: set[str]) -> set[str]:
    return {r["SessionId"] for r in rows if r["IPAddress"] in ips}


def _read(folder: Path) -> Export:
    tables = {}
    for table in ALL_TABLES:
        path = folder / f"{table}.jsonl"
        tables[table] = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    with (folder / "watchlists" / "TravelRecords.csv").open(encoding="utf-8", newline="") as handle:
        travel = list(csv.DictReader(handle))
    return Export(
        folder=folder,
        tables=tables,
        scenarios=json.loads((folder / "scenarios.json").read_text(encoding="utf-8")),
        settings=Settings.from_file(folder / "settings.json"),
        travel=travel,
    )


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    folder = tmp_path_factory.mktemp("tenant")
    generate(Options(out=folder, **SMALL))
    return _read(folder)


# --------------------------------------------------------------------------------------------


@pytest.mark.slow
class TestDeterminism:
    def test_same_arguments_write_byte_identical_files(self, export: Export, tmp_path: Path) -> None:
        """A second run with the same arguments reproduces every file byte for byte."""
        generate(Options(out=tmp_path, **SMALL))
        assert _digests(tmp_path) == _digests(export.folder)

    def test_compressed_output_is_reproducible_and_holds_the_same_lines(self, export: Export, tmp_path: Path) -> None:
        """--compress writes reproducible gzip whose content is exactly the uncompressed export."""
        first, second = tmp_path / "a", tmp_path / "b"
        generate(Options(out=first, compress=True, **SMALL))
        generate(Options(out=second, compress=True, **SMALL))
        assert _digests(first) == _digests(second)
        for table in ALL_TABLES:
            assert not (first / f"{table}.jsonl").exists()
            assert gzip.decompress((first / f"{table}.jsonl.gz").read_bytes()) == (export.folder / f"{table}.jsonl").read_bytes()

    def test_another_seed_writes_a_different_tenant(self, export: Export, tmp_path: Path) -> None:
        """A different seed changes the sign-ins, the scenario users and the tenant ids."""
        generate(Options(out=tmp_path, seed=8, **SMALL))
        other = _read(tmp_path)
        assert (tmp_path / f"{NON_INTERACTIVE}.jsonl").read_bytes() != (export.folder / f"{NON_INTERACTIVE}.jsonl").read_bytes()
        assert [s["user"] for s in other.scenarios] != [s["user"] for s in export.scenarios]
        assert other.settings.tenant_id != export.settings.tenant_id

    def test_adding_users_leaves_existing_users_unchanged(self) -> None:
        """Each user comes from their own seeded generator, so more users never reshuffle earlier ones."""
        assert build_tenant(7, 40).users[:25] == build_tenant(7, 25).users


class TestSchema:
    @pytest.mark.parametrize("table", ALL_TABLES)
    def test_every_row_has_exactly_the_schema_columns(self, export: Export, table: str) -> None:
        """Readers learn a file's columns from its first rows, so every row carries every fixture column and no other."""
        columns = set(_schema(table))
        assert export.tables[table]
        for row in export.tables[table]:
            assert set(row) == columns

    @pytest.mark.parametrize("table", ALL_TABLES)
    def test_values_have_the_shape_of_their_column_type(self, export: Export, table: str) -> None:
        """Dynamic columns are JSON values, JSON-text columns are strings holding JSON, datetimes are ISO UTC with Z."""
        schema = _schema(table)
        for row in export.tables[table]:
            for name, value in row.items():
                column = schema[name]
                if value is None:
                    continue
                if column["type"] == "dynamic":
                    assert isinstance(value, (dict, list)), (table, name, value)
                elif column.get("json_text"):
                    assert isinstance(value, str), (table, name, value)
                    json.loads(value)
                elif column["type"] == "datetime":
                    assert ISO_Z.match(value), (table, name, value)
                elif column["type"] == "string":
                    assert isinstance(value, str), (table, name, value)
                elif column["type"] == "bool":
                    assert isinstance(value, bool), (table, name, value)
                else:
                    assert type(value) in {int, float}, (table, name, value)

    def test_mixed_columns_are_objects_in_signinlogs_and_json_strings_in_the_non_interactive_table(self, export: Export) -> None:
        """LocationDetails, DeviceDetail, Status... are dynamic in SigninLogs and JSON text in AADNonInteractiveUserSignInLogs."""
        for name in MIXED:
            assert all(isinstance(r[name], (dict, list)) for r in export.tables[INTERACTIVE]), name
            assert all(isinstance(json.loads(r[name]), (dict, list)) for r in export.tables[NON_INTERACTIVE]), name
        for table in (INTERACTIVE, NON_INTERACTIVE):
            for row in export.tables[table]:
                assert isinstance(json.loads(row["AuthenticationDetails"]), list)
                assert isinstance(json.loads(row["NetworkLocationDetails"]), list)

    @pytest.mark.parametrize("table", [INTERACTIVE, NON_INTERACTIVE])
    def test_sign_in_rows_populate_the_fields_triage_reads(self, export: Export, table: str) -> None:
        """Every sign-in names its user, address, ASN, place, session, app, resource and outcome."""
        for row in export.tables[table]:
            location = _object(row, "LocationDetails")
            device = _object(row, "DeviceDetail")
            assert GUID.match(row["UserId"])
            assert GUID.match(row["SessionId"])
            assert GUID.match(row["Id"])
            assert row["UserPrincipalName"].endswith("@" + row["UserPrincipalName"].split("@")[1])
            ipaddress.ip_address(row["IPAddress"])
            assert row["AutonomousSystemNumber"] == str(int(row["AutonomousSystemNumber"]))
            assert set(location) == {"city", "state", "countryOrRegion", "geoCoordinates"}
            assert set(location["geoCoordinates"]) == {"latitude", "longitude"}
            assert {"deviceId", "operatingSystem", "browser", "isCompliant", "isManaged"} <= set(device)
            assert row["AppId"]
            assert row["AppDisplayName"]
            assert row["ResourceIdentity"]
            assert row["ResourceDisplayName"]
            assert row["ResultType"] == str(int(row["ResultType"]))
            assert row["AuthenticationRequirement"] in {"multiFactorAuthentication", "singleFactorAuthentication"}
            assert row["IsInteractive"] is (table == INTERACTIVE)
            assert row["TimeGenerated"] == row["CreatedDateTime"]
            assert len(row["UniqueTokenIdentifier"]) == 22

    def test_audit_rows_name_actor_and_targets_as_dynamic_values(self, export: Export) -> None:
        """AuditLogs rows carry InitiatedBy.user (id, UPN, address) or .app, and a TargetResources list."""
        assert export.tables[AUDIT]
        for row in export.tables[AUDIT]:
            assert ("user" in row["InitiatedBy"]) != ("app" in row["InitiatedBy"])
            if "user" in row["InitiatedBy"]:
                assert {"id", "userPrincipalName", "ipAddress"} <= set(row["InitiatedBy"]["user"])
            assert row["TargetResources"]
            assert all({"id", "displayName", "type"} <= set(t) for t in row["TargetResources"])


class TestRealism:
    def test_non_interactive_sign_ins_are_10_to_100_times_the_interactive_ones(self, export: Export) -> None:
        """Token refreshes dominate, as in a real tenant."""
        ratio = len(export.tables[NON_INTERACTIVE]) / len(export.tables[INTERACTIVE])
        assert 10 <= ratio <= 100

    def test_refreshes_mostly_descend_from_an_interactive_session_in_the_export(self, export: Export) -> None:
        """Most refreshes carry the SessionId of an interactive sign-in in the export (long-lived phone sessions may predate it)."""
        sessions = defaultdict(set)
        for row in export.tables[INTERACTIVE]:
            sessions[row["UserId"]].add(row["SessionId"])
        rows = export.tables[NON_INTERACTIVE]
        traced = sum(1 for r in rows if r["SessionId"] in sessions[r["UserId"]])
        assert traced / len(rows) >= 0.5

    def test_office_rows_are_named_locations_inside_the_corporate_cidrs(self, export: Export) -> None:
        """Every trusted named location row comes from a corporate egress CIDR of settings.json, and vice versa."""
        corporate = export.settings.corporate_cidrs
        assert corporate
        seen = 0
        for table in (INTERACTIVE, NON_INTERACTIVE):
            for row in export.tables[table]:
                named = json.loads(row["NetworkLocationDetails"])
                inside = any(ipaddress.ip_address(row["IPAddress"]) in net for net in corporate)
                assert bool(named) == inside, row["IPAddress"]
                seen += inside
        assert seen

    def test_first_party_app_ids_are_the_real_ones(self) -> None:
        """The apps the brief names keep their real first-party ids."""
        assert catalog.OFFICE_HOME.app_id == "4765445b-32c6-49b0-83e6-1d93765276ca"
        assert catalog.TEAMS.app_id == "1fec8e78-bce4-4aaf-ab1b-5451cc387264"
        assert catalog.AZURE_CLI.app_id == "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
        assert catalog.AUTH_BROKER.app_id == "29d9ed98-a469-4536-ade2-f981bc1d605e"
        assert catalog.EXCHANGE.resource_id == "00000002-0000-0ff1-ce00-000000000000"

    def test_relay_blocks_are_real_egress_addresses_the_product_recognises(self) -> None:
        """Every iCloud Private Relay block lies on Apple's shipped list; the WARP blocks are Cloudflare's, off that list."""
        for network in catalog.ICLOUD_PRIVATE_RELAY:
            for prefix in (network.v4, network.v6):
                if not prefix:
                    continue
                block = ipaddress.ip_network(prefix)
                for address in (block[0], block[-1]):
                    found = networks.relay(str(address), network.asn)
                    assert found is not None, (prefix, address)
                    assert found.operator == "iCloud Private Relay", (prefix, address)
        for network in catalog.CLOUDFLARE_WARP:
            block = ipaddress.ip_network(network.v4)
            for address in (block[0], block[-1]):
                found = networks.relay(str(address), network.asn)
                assert found is not None, (network.v4, address)
                assert "Cloudflare" in found.operator, (network.v4, address)

    def test_service_edges_belong_to_their_providers_asns(self) -> None:
        """Each provider's service-edge blocks are announced by an ASN the product lists for that provider."""
        assert set(catalog.SECURITY_SERVICE_EDGES) <= set(networks.SSE_PROVIDERS)
        for provider, edges in catalog.SECURITY_SERVICE_EDGES.items():
            assert all(n.asn in networks.SSE_PROVIDERS[provider].asns for n in edges), provider

    def test_catalog_address_blocks_never_overlap(self) -> None:
        """Disjoint blocks keep ground truth unambiguous: an address belongs to exactly one network."""
        blocks = [ipaddress.ip_network(p) for n in catalog.ALL_NETWORKS for p in (n.v4, n.v6) if p]
        for position, block in enumerate(blocks):
            for other in blocks[position + 1 :]:
                assert block.version != other.version or not block.overlaps(other), (block, other)


class TestScenarios:
    def test_every_family_has_the_requested_variants_on_distinct_users(self, export: Export) -> None:
        """17 families x --variants scenarios, each bound to its own user, each with its incident file."""
        by_family = defaultdict(list)
        for scenario in export.scenarios:
            by_family[scenario["family"]].append(scenario)
            assert (export.folder / scenario["incident"]).is_file()
        assert {f: len(s) for f, s in by_family.items()} == {f.value: SMALL["variants"] for f in Family}
        assert len({s["user"] for s in export.scenarios}) == len(export.scenarios)
        assert len({s["id"] for s in export.scenarios}) == len(export.scenarios)

    def test_incident_times_are_inside_the_last_two_days(self, export: Export) -> None:
        """Every incident time falls in the last 48 hours of the export."""
        for scenario in export.scenarios:
            assert END - timedelta(hours=48) <= _time(scenario["at"]) <= END, scenario["id"]

    def test_kind_and_expected_explanation_follow_the_family(self, export: Export) -> None:
        """Attacks, grey stories and ordinary users expect no explanation; each look-alike its own; every kind its verdict."""
        expected = {
            "vpn_split_tunnel": "corporate_vpn",
            "travel_with_record": "travel",
            "mobile_carrier_churn": "mobile_carrier",
            "ipv6_dual_stack": "dual_stack",
            "microsoft_service_ips": "microsoft_network",
            "new_phone_enrolment": "new_device",
            "icloud_private_relay": "privacy_relay",
            "warp_edge_secure_network": "privacy_relay",
            "organisation_sse": "security_service_edge",
        }
        attacks = {
            "aitm_cookie_replay",
            "refresh_token_replay",
            "device_code_phishing",
            "aitm_residential_replay",
            "relay_replay",
        }
        grey = {"new_isp_new_device", "travel_without_record"}
        verdicts = {"attack": "replay_likely", "benign": "benign", "grey": "suspicious", "ordinary": "benign"}
        for scenario in export.scenarios:
            family = scenario["family"]
            kind = "attack" if family in attacks else "benign" if family in expected else "grey" if family in grey else "ordinary"
            assert scenario["kind"] == kind, scenario["id"]
            assert scenario["expected_explanation"] == expected.get(family)
            assert scenario["expected_verdict"] == verdicts[kind], scenario["id"]
            assert bool(scenario["attacker_ips"]) == (kind == "attack"), scenario["id"]
            assert bool(scenario["explained_ips"]) == (kind == "benign"), scenario["id"]

    def test_the_users_id_and_upn_match_their_rows(self, export: Export) -> None:
        """Each scenario's user and user_id are the UPN and object id on that user's rows."""
        for scenario in export.scenarios:
            rows = export.rows_of(scenario["user_id"])
            assert rows
            assert {r["UserPrincipalName"] for r in rows} == {scenario["user"]}


class TestAttackTruth:
    def test_attacker_ips_appear_in_the_users_non_interactive_rows_in_the_window(self, export: Export) -> None:
        """Every attacker IP is in the victim's non-interactive sign-ins within the evidence window, never among the victim's own IPs."""
        for scenario in export.scenarios:
            if scenario["kind"] != "attack":
                continue
            seen = {r["IPAddress"] for r in export.in_window(scenario, NON_INTERACTIVE)}
            assert set(scenario["attacker_ips"]) <= seen, scenario["id"]
            assert not set(scenario["attacker_ips"]) & set(scenario["victim_ips"]), scenario["id"]
            assert scenario["incident_ip"] in scenario["attacker_ips"]

    def test_aitm_replay_uses_the_phished_session_with_token_only_sign_ins_and_no_device(self, export: Export) -> None:
        """The attacker's interactive sign-ins are satisfied by claims in the token, carry no device id and reuse the phished SessionId."""
        for scenario in export.family(Family.AITM_COOKIE_REPLAY):
            rows = export.in_window(scenario)
            replay = [r for r in rows if r["IPAddress"] == scenario["incident_ip"]]
            interactive = [r for r in replay if r["IsInteractive"]]
            assert interactive
            assert all("satisfied by claim in the token" in r["AuthenticationDetails"] for r in interactive)
            assert all(r["DeviceDetail"]["deviceId"] == "" for r in interactive)
            sessions = {r["SessionId"] for r in replay}
            phished = [
                r
                for r in rows
                if r["SessionId"] in sessions
                and r["AppId"] == catalog.OFFICE_HOME.app_id
                and '"Mobile app notification"' in r["AuthenticationDetails"]
            ]
            assert phished, scenario["id"]
            assert any(not r["IsInteractive"] for r in replay)
            assert len({r["IPAddress"] for r in rows if r["SessionId"] in sessions}) >= 2, "one session, two networks"

    def test_aitm_residential_session_is_born_at_the_proxy_and_replayed_from_the_victims_country(self, export: Export) -> None:
        """The session starts with the victim's MFA at a hosting or VPN proxy, no victim address ever uses it, and a residential or mobile address of the victim's country replays it token-only."""
        rented = {n.asn for n in (*catalog.HOSTING, *catalog.VPN_PROVIDERS)}
        for scenario in export.family(Family.AITM_RESIDENTIAL_REPLAY):
            rows = export.in_window(scenario)
            attacker = set(scenario["attacker_ips"])
            (session,) = _sessions_of(rows, attacker)
            used = sorted((r for r in rows if r["SessionId"] == session), key=lambda r: r["TimeGenerated"])
            birth = used[0]
            assert birth["IsInteractive"], scenario["id"]
            assert '"Mobile app notification"' in birth["AuthenticationDetails"], scenario["id"]
            assert int(birth["AutonomousSystemNumber"]) in rented
            assert {r["IPAddress"] for r in used} <= attacker
            country = _user(scenario).country
            local = {(n.asn, n.country) for n in (*catalog.RESIDENTIAL, *catalog.MOBILE)}
            replay = attacker - {birth["IPAddress"]}
            assert replay
            for row in (r for r in used if r["IPAddress"] in replay):
                assert (int(row["AutonomousSystemNumber"]), country) in local
                assert _object(row, "LocationDetails")["countryOrRegion"] == country
            assert any(
                r["IsInteractive"] and "MFA requirement satisfied by claim in the token" in r["AuthenticationDetails"]
                for r in used
                if r["IPAddress"] in replay
            )

    def test_relay_replay_uses_rotating_relay_addresses_and_no_device(self, export: Export) -> None:
        """The replayed session's relay addresses are Private Relay or Cloudflare egress, every sign-in from them without a device id."""
        for scenario in export.family(Family.RELAY_REPLAY):
            rows = export.in_window(scenario)
            relayed = {
                r["IPAddress"]
                for r in rows
                if r["IPAddress"] in scenario["attacker_ips"] and networks.relay(r["IPAddress"], int(r["AutonomousSystemNumber"]))
            }
            assert relayed, scenario["id"]
            assert scenario["incident_ip"] in relayed
            assert all(_object(r, "DeviceDetail")["deviceId"] == "" for r in rows if r["IPAddress"] in relayed)

    def test_refresh_token_replay_is_non_interactive_in_the_victims_own_session(self, export: Export) -> None:
        """A scripted client refreshes the victim's SessionId, which the victim's compliant device also uses."""
        scripted = {c.user_agent for c in catalog.SCRIPTED_CLIENTS}
        for scenario in export.family(Family.REFRESH_TOKEN_REPLAY):
            rows = export.in_window(scenario)
            attacker = [r for r in rows if r["IPAddress"] in scenario["attacker_ips"]]
            assert attacker
            assert not any(r["IsInteractive"] for r in attacker)
            assert {r["UserAgent"] for r in attacker} <= scripted
            sessions = {r["SessionId"] for r in attacker}
            assert len(sessions) == 1
            own = [r for r in rows if r["SessionId"] in sessions and r["IPAddress"] not in scenario["attacker_ips"]]
            assert own
            assert any(_object(r, "DeviceDetail")["isCompliant"] for r in own)

    def test_device_code_phishing_registers_a_device_then_uses_its_prt(self, export: Export) -> None:
        """A deviceCode sign-in from the attacker IP, a Register device from that IP, then primaryRefreshToken use."""
        for scenario in export.family(Family.DEVICE_CODE_PHISHING):
            ip = scenario["incident_ip"]
            rows = export.in_window(scenario)
            code = [
                r for r in rows if r["IsInteractive"] and r["AuthenticationProtocol"] == "deviceCode" and r["IPAddress"] == ip
            ]
            assert code, scenario["id"]
            registered = [
                a
                for a in export.tables[AUDIT]
                if a["OperationName"] == "Register device" and a["InitiatedBy"]["user"]["userPrincipalName"] == scenario["user"]
            ]
            assert registered
            assert registered[0]["InitiatedBy"]["user"]["ipAddress"] == ip
            prt = [
                r
                for r in rows
                if not r["IsInteractive"] and r["IPAddress"] == ip and r["IncomingTokenType"] == "primaryRefreshToken"
            ]
            assert prt
            assert min(r["TimeGenerated"] for r in prt) > registered[0]["TimeGenerated"] > code[0]["TimeGenerated"]
            devices = {json.loads(r["DeviceDetail"])["deviceId"] for r in prt}
            assert len(devices) == 1
            assert devices != {""}


class TestGreyTruth:
    def test_a_new_home_line_on_a_new_unmanaged_laptop(self, export: Export) -> None:
        """The grey line is an ISP the user never used, reached only by one new, registered, non-compliant laptop, fresh MFA first."""
        for scenario in export.family(Family.NEW_ISP_NEW_DEVICE):
            line = scenario["incident_ip"]
            assert line in scenario["victim_ips"]
            rows = sorted((r for r in export.in_window(scenario) if r["IPAddress"] == line), key=lambda r: r["TimeGenerated"])
            before = {r["AutonomousSystemNumber"] for r in export.rows_of(scenario["user_id"]) if r["IPAddress"] != line}
            assert rows[0]["AutonomousSystemNumber"] not in before, scenario["id"]
            devices = {(d["deviceId"], d["isCompliant"], d["trustType"]) for d in (_object(r, "DeviceDetail") for r in rows)}
            assert len(devices) == 1
            ((device_id, compliant, trust),) = devices
            assert device_id
            assert (compliant, trust) == (False, "Azure AD registered")
            assert _object(rows[0], "MfaDetail")["authMethod"], scenario["id"]
            assert not any(line in json.dumps(r) for r in export.tables[AUDIT]), scenario["id"]

    def test_a_trip_with_no_record_on_the_users_own_phone(self, export: Export) -> None:
        """Abroad only the user's registered, unmanaged phone signs in, in the session it had at home, and no record names the trip."""
        for scenario in export.family(Family.TRAVEL_WITHOUT_RECORD):
            hotel = scenario["incident_ip"]
            rows = export.in_window(scenario)
            abroad = [r for r in rows if r["IPAddress"] == hotel]
            assert abroad
            assert {r["Location"] for r in abroad} == {scenario["traits"]["destination"]}
            sessions = {r["SessionId"] for r in abroad}
            assert sessions <= {r["SessionId"] for r in rows if r["IPAddress"] != hotel}, scenario["id"]
            details = [_object(r, "DeviceDetail") for r in abroad]
            assert {(d["isCompliant"], d["trustType"]) for d in details} == {(False, "Azure AD registered")}
            trips = [t for t in export.travel if t["UserPrincipalName"] == scenario["user"]]
            assert scenario["traits"]["destination"] not in {t["Country"] for t in trips}


class TestLookalikeTruth:
    def test_explained_ips_are_the_users_own_addresses_used_in_the_window(self, export: Export) -> None:
        """Each look-alike names the IPs its explanation covers; they are the user's, used inside the window."""
        for scenario in export.scenarios:
            if scenario["kind"] != "benign":
                continue
            used = {r["IPAddress"] for r in export.in_window(scenario)}
            assert scenario["explained_ips"], scenario["id"]
            assert set(scenario["explained_ips"]) <= set(scenario["victim_ips"]) <= used
            assert scenario["incident_ip"] in scenario["explained_ips"]

    def test_vpn_ips_are_inside_the_vpn_cidrs_and_alternate_with_home_in_one_session(self, export: Export) -> None:
        """Split-tunnel VPN addresses are inside REPLAY_VPN_CIDRS and share a SessionId with a non-VPN address."""
        vpn = export.settings.vpn_cidrs
        for scenario in export.family(Family.VPN_SPLIT_TUNNEL):
            assert all(any(ipaddress.ip_address(ip) in net for net in vpn) for ip in scenario["explained_ips"])
            rows = export.in_window(scenario)
            sessions = defaultdict(set)
            for row in rows:
                sessions[row["SessionId"]].add(row["IPAddress"] in scenario["explained_ips"])
            assert any(kinds == {True, False} for kinds in sessions.values()), scenario["id"]

    def test_travel_rows_match_a_watchlist_record_for_that_user_country_and_dates(self, export: Export) -> None:
        """Every row from the destination lies within a TravelRecords row for that user and country, on the user's own laptop."""
        for scenario in export.family(Family.TRAVEL_WITH_RECORD):
            records = [t for t in export.travel if t["UserPrincipalName"] == scenario["user"]]
            assert records
            explained = set(scenario["explained_ips"])
            abroad = [r for r in export.rows_of(scenario["user_id"]) if r["IPAddress"] in explained]
            assert abroad
            for row in abroad:
                location = _object(row, "LocationDetails")
                day = _time(row["TimeGenerated"]).date()
                assert any(
                    t["Country"] == location["countryOrRegion"]
                    and date.fromisoformat(t["StartTime"]) <= day < date.fromisoformat(t["EndTime"])
                    for t in records
                ), (scenario["id"], row["TimeGenerated"])
            laptops = {
                json.loads(r["DeviceDetail"])["deviceId"]
                for r in abroad
                if not r["IsInteractive"] and '"isCompliant":true' in r["DeviceDetail"]
            }
            assert laptops, scenario["id"]

    def test_carrier_ips_belong_to_the_users_usual_carrier(self, export: Export) -> None:
        """Churned addresses are all in one mobile ASN of the user's country, which the user was on the day before too."""
        mobile = {(n.asn, n.country) for n in catalog.MOBILE}
        for scenario in export.family(Family.MOBILE_CARRIER_CHURN):
            rows = export.rows_of(scenario["user_id"])
            explained = [r for r in rows if r["IPAddress"] in scenario["explained_ips"]]
            asns = {r["AutonomousSystemNumber"] for r in explained}
            assert len(asns) == 1, scenario["id"]
            assert len(scenario["explained_ips"]) >= 3, scenario["id"]
            country = _object(explained[0], "LocationDetails")
            assert (int(next(iter(asns))), country["countryOrRegion"]) in mobile
            earlier = _time(scenario["at"]) - timedelta(hours=12)
            assert any(r["AutonomousSystemNumber"] in asns and _time(r["TimeGenerated"]) < earlier for r in rows), scenario["id"]

    def test_dual_stack_ipv6_shares_a_session_and_asn_with_the_users_ipv4(self, export: Export) -> None:
        """Explained addresses are IPv6 of one ASN, used in a session that also uses an IPv4 address of that ASN."""
        for scenario in export.family(Family.IPV6_DUAL_STACK):
            rows = export.in_window(scenario)
            explained = [r for r in rows if r["IPAddress"] in scenario["explained_ips"]]
            assert all(ipaddress.ip_address(r["IPAddress"]).version == 6 for r in explained)
            asns = {r["AutonomousSystemNumber"] for r in explained}
            assert len(asns) == 1
            sessions = {r["SessionId"] for r in explained}
            assert any(
                r["SessionId"] in sessions
                and ipaddress.ip_address(r["IPAddress"]).version == 4
                and r["AutonomousSystemNumber"] in asns
                for r in rows
            ), scenario["id"]

    def test_microsoft_service_ips_are_in_microsoft_asns(self, export: Export) -> None:
        """Every explained address of the Microsoft look-alike is announced by AS8075, AS8068 or AS3598."""
        for scenario in export.family(Family.MICROSOFT_SERVICE_IPS):
            rows = [r for r in export.in_window(scenario) if r["IPAddress"] in scenario["explained_ips"]]
            assert rows
            assert {r["AutonomousSystemNumber"] for r in rows} <= {"8075", "8068", "3598"}

    def test_new_phone_is_set_up_on_a_home_line_never_seen_then_moves_to_the_usual_carrier(self, export: Export) -> None:
        """The home line never appears before the set-up; the new session opens with password and MFA there, an Authenticator is registered from it, and the session goes on from the user's carrier."""
        for scenario in export.family(Family.NEW_PHONE_ENROLMENT):
            home = set(scenario["explained_ips"])
            rows = sorted(export.rows_of(scenario["user_id"]), key=lambda r: r["TimeGenerated"])
            first = next(i for i, r in enumerate(rows) if r["IPAddress"] in home)
            assert not any(r["IPAddress"] in home for r in rows[:first])
            birth = rows[first]
            assert birth["IsInteractive"], scenario["id"]
            assert '"Mobile app notification"' in birth["AuthenticationDetails"], scenario["id"]
            session = [r for r in rows if r["SessionId"] == birth["SessionId"]]
            carrier = str(_user(scenario).carrier.asn)
            assert any(r["AutonomousSystemNumber"] == carrier and r["TimeGenerated"] > birth["TimeGenerated"] for r in session)
            assert any(r["AutonomousSystemNumber"] == carrier for r in rows[:first]), "the carrier is the user's usual one"
            registered = [
                a
                for a in export.tables[AUDIT]
                if a["OperationName"] == "User registered security info"
                and a["InitiatedBy"].get("user", {}).get("userPrincipalName") == scenario["user"]
            ]
            assert any(a["InitiatedBy"]["user"]["ipAddress"] in home for a in registered)

    @pytest.mark.parametrize("family", [Family.ICLOUD_PRIVATE_RELAY, Family.WARP_EDGE_SECURE_NETWORK, Family.ORGANISATION_SSE])
    def test_relay_and_service_edge_addresses_carry_the_users_own_device(self, export: Export, family: Family) -> None:
        """Each relayed or SSE address has sign-ins from one of the user's own registered devices."""
        for scenario in export.family(family):
            user = _user(scenario)
            own = {user.laptop.device_id, user.phone.device_id}
            rows = export.in_window(scenario)
            for ip in scenario["explained_ips"]:
                devices = {_object(r, "DeviceDetail")["deviceId"] for r in rows if r["IPAddress"] == ip}
                assert devices & own, (scenario["id"], ip)

    def test_relay_addresses_are_recognised_by_the_product(self, export: Export) -> None:
        """Private Relay users' addresses are on Apple's shipped list; WARP and Edge Secure Network users' are Cloudflare's."""
        for family, operator in (
            (Family.ICLOUD_PRIVATE_RELAY, "iCloud Private Relay"),
            (Family.WARP_EDGE_SECURE_NETWORK, "Cloudflare"),
        ):
            for scenario in export.family(family):
                rows = {r["IPAddress"]: int(r["AutonomousSystemNumber"]) for r in export.in_window(scenario)}
                for ip in scenario["explained_ips"]:
                    found = networks.relay(ip, rows[ip])
                    assert found is not None, (scenario["id"], ip)
                    assert operator in found.operator, (scenario["id"], ip)

    def test_service_edge_addresses_are_the_configured_providers(self, export: Export) -> None:
        """SSE users leave from an ASN of the provider REPLAY_SSE_PROVIDER names, inside REPLAY_SSE_CIDRS when that is set."""
        (provider,) = export.settings.sse_providers
        asns = networks.SSE_PROVIDERS[provider].asns
        for scenario in export.family(Family.ORGANISATION_SSE):
            rows = {r["IPAddress"]: int(r["AutonomousSystemNumber"]) for r in export.in_window(scenario)}
            for ip in scenario["explained_ips"]:
                assert rows[ip] in asns
                if export.settings.sse_cidrs:
                    assert any(ipaddress.ip_address(ip) in net for net in export.settings.sse_cidrs)

    def test_ordinary_users_have_no_attacker_and_no_expectation(self, export: Export) -> None:
        """Ordinary incidents are the false-positive baseline: nothing to find, nothing to explain."""
        for scenario in export.family(Family.ORDINARY):
            assert scenario["attacker_ips"] == []
            assert scenario["expected_explanation"] is None
            assert scenario["incident_ip"] in scenario["victim_ips"]


class TestIncidents:
    def test_incidents_are_trigger_bodies_whose_account_entity_names_the_scenario_user(self, export: Export) -> None:
        """Each incident parses as the Sentinel trigger body; its Account entity is the scenario user, its Ip entity the incident IP."""
        names = set()
        for scenario in export.scenarios:
            body = json.loads((export.folder / scenario["incident"]).read_text(encoding="utf-8"))
            assert body["objectSchemaType"] == "Incident"
            assert body["objectEventType"] == "Create"
            assert set(body["workspaceInfo"]) == {"SubscriptionId", "ResourceGroupName", "WorkspaceName"}
            incident = body["object"]
            assert incident["id"].endswith(f"/providers/Microsoft.SecurityInsights/Incidents/{incident['name']}")
            assert f"/workspaces/{body['workspaceInfo']['WorkspaceName']}/" in incident["id"]
            properties = incident["properties"]
            assert {
                "title",
                "description",
                "severity",
                "status",
                "incidentNumber",
                "incidentUrl",
                "createdTimeUtc",
                "labels",
            } <= set(properties)
            accounts = [e for e in properties["relatedEntities"] if e["kind"] == "Account"]
            assert len(accounts) == 1
            account = accounts[0]["properties"]
            assert f"{account['accountName']}@{account['upnSuffix']}" == scenario["user"]
            assert account["aadUserId"] == scenario["user_id"]
            ips = [e["properties"]["address"] for e in properties["relatedEntities"] if e["kind"] == "Ip"]
            assert ips == [scenario["incident_ip"]]
            assert _time(properties["createdTimeUtc"]) == _time(scenario["at"])
            assert _time(properties["firstActivityTimeUtc"]) <= _time(properties["lastActivityTimeUtc"]) <= _time(scenario["at"])
            names.add(incident["name"])
        assert len(names) == len(export.scenarios)

    def test_settings_file_is_a_functions_local_settings_the_product_reads(self, export: Export) -> None:
        """settings.json parses with the product's reader and names the tenant's networks and watchlist."""
        document = json.loads((export.folder / "settings.json").read_text(encoding="utf-8"))
        assert document["IsEncrypted"] is False
        assert len(export.settings.corporate_cidrs) == 3
        assert len(export.settings.vpn_cidrs) == 1
        assert export.settings.travel_watchlist == "TravelRecords"
        assert export.settings.trusted_asns == frozenset()
        assert len(export.settings.sse_providers) == 1


class TestCli:
    def test_cli_writes_the_tenant_and_prints_one_summary_line(self, tmp_path: Path) -> None:
        """`python -m sample_tenant` succeeds with one line naming the rows per table and the scenarios."""
        out, err = io.StringIO(), io.StringIO()
        code = main(
            ["--out", str(tmp_path), "--users", "20", "--days", "3", "--variants", "1", "--seed", "3", "--compress"], out, err
        )
        assert code == 0
        assert err.getvalue() == ""
        lines = out.getvalue().splitlines()
        assert len(lines) == 1
        assert INTERACTIVE in lines[0]
        assert NON_INTERACTIVE in lines[0]
        assert "17 scenarios" in lines[0]
        assert (tmp_path / f"{NON_INTERACTIVE}.jsonl.gz").is_file()

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["--users", "10", "--variants", "2"], "needs at least 34 users"),
            (["--days", "2"], "--days must be at least 3"),
            (["--end", "yesterday"], "not an ISO 8601 time"),
        ],
    )
    def test_cli_rejects_bad_arguments_with_exit_2_and_one_line(self, tmp_path: Path, argv: list[str], message: str) -> None:
        """Bad input exits 2 with one line on stderr and writes nothing."""
        out, err = io.StringIO(), io.StringIO()
        code = main(["--out", str(tmp_path / "never"), *argv], out, err)
        assert code == 2
        assert out.getvalue() == ""
        assert message in err.getvalue()
        assert len(err.getvalue().splitlines()) == 1
        assert not (tmp_path / "never").exists()

    @pytest.mark.slow
    def test_a_rerun_replaces_earlier_exports_instead_of_leaving_both(self, tmp_path: Path) -> None:
        """Switching --compress on a folder removes the other format, so a loader never reads the rows twice."""
        generate(Options(out=tmp_path, **SMALL))
        generate(Options(out=tmp_path, compress=True, **SMALL))
        assert sorted(p.name for p in tmp_path.glob("*.jsonl*")) == [f"{t}.jsonl.gz" for t in sorted(ALL_TABLES)]


class TestWorkloads:
    def _attacker_tokens(self, export: Export, scenario: dict[str, Any]) -> set[str]:
        return {r["UniqueTokenIdentifier"] for r in export.in_window(scenario) if r["IPAddress"] in scenario["attacker_ips"]}

    def _office(self, export: Export, scenario: dict[str, Any], operation: str) -> list[dict[str, Any]]:
        return [r for r in export.tables[OFFICE] if r["UserId"] == scenario["user"] and r["Operation"] == operation]

    @pytest.mark.parametrize("family", [Family.AITM_COOKIE_REPLAY, Family.REFRESH_TOKEN_REPLAY, Family.DEVICE_CODE_PHISHING])
    def test_the_stolen_session_hides_mail_forwards_it_and_reads_it_through_graph(self, export: Export, family: Family) -> None:
        """The attacker's rule and forwarding come from the attacker's address with a port, in the replayed session, with its token."""
        for scenario in export.family(family):
            made = scenario["traits"]["workloads"]
            tokens = self._attacker_tokens(export, scenario)
            (rule,) = [
                r
                for r in self._office(export, scenario, "New-InboxRule")
                if r["ClientIP"].rsplit(":", 1)[0].strip("[]") in scenario["attacker_ips"]
            ]
            parameters = {p["Name"]: p["Value"] for p in json.loads(rule["Parameters"])}
            assert (parameters["Name"], parameters["MoveToFolder"]) == (made["inbox_rule"], made["inbox_rule_folder"])
            assert rule["AppAccessContext"]["AADSessionId"] == made["session"]
            assert rule["AppAccessContext"]["UniqueTokenId"] in tokens
            if made["forwarding_by"] == "Set-Mailbox":
                (forwarding,) = self._office(export, scenario, "Set-Mailbox")
                assert f"smtp:{made['forwarding_to']}" in forwarding["Parameters"]
            else:
                assert parameters["ForwardTo"] == made["forwarding_to"]
            reads = [r for r in export.tables[GRAPH] if r["UserId"] == scenario["user_id"] and r["SignInActivityId"] in tokens]
            assert len([r for r in reads if r["RequestMethod"] == "GET"]) == made["graph_mail_reads"]
            assert {r["IPAddress"] for r in reads} <= set(scenario["attacker_ips"])

    def test_device_code_phishing_consents_to_an_application_from_the_attackers_address(self, export: Export) -> None:
        """The consent is an AuditLogs row by the victim, from the attacker's address, naming the app."""
        for scenario in export.family(Family.DEVICE_CODE_PHISHING):
            consents = [
                r
                for r in export.tables[AUDIT]
                if r["OperationName"] == "Consent to application" and r["InitiatedBy"]["user"]["id"] == scenario["user_id"]
            ]
            assert [c["InitiatedBy"]["user"]["ipAddress"] in scenario["attacker_ips"] for c in consents] == [True]
            assert consents[0]["TargetResources"][0]["displayName"] == scenario["traits"]["workloads"]["consented_app"]

    def test_peoples_own_rules_and_graph_use_come_from_their_own_addresses(self, export: Export) -> None:
        """No rule, forwarding or Graph request of anyone's own carries an attacker's address or token."""
        attacker_ips = {ip for s in export.scenarios for ip in s["attacker_ips"]}
        tokens = {t for s in export.scenarios if s["kind"] == "attack" for t in self._attacker_tokens(export, s)}
        own_rules = [
            r
            for r in export.tables[OFFICE]
            if r["Operation"] == "New-InboxRule" and r["ClientIP"].rsplit(":", 1)[0].strip("[]") not in attacker_ips
        ]
        assert own_rules, "the look-alike: people make their own rules"
        assert all(r["AppAccessContext"]["UniqueTokenId"] not in tokens for r in own_rules)
        own_graph = [r for r in export.tables[GRAPH] if r["IPAddress"] not in attacker_ips]
        assert own_graph, "the look-alike: people's own Graph-using apps"
        assert all(r["SignInActivityId"] not in tokens for r in own_graph)

    def test_every_person_has_an_identity_snapshot(self, export: Export) -> None:
        """IdentityInfo names every account with a department and a title; administrators carry their roles."""
        users = {r["UserId"] for r in export.tables[INTERACTIVE]}
        snapshots = {r["AccountObjectId"]: r for r in export.tables["IdentityInfo"]}
        assert users <= set(snapshots)
        assert all(r["Department"] and r["JobTitle"] for r in snapshots.values())
