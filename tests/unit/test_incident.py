"""Incident parsing, account resolution by kind, deterministic ids and the label decision."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from common.errors import InputError
from enrichment.domain.model import Account, Verdict
from playbooks.domain.incident import (
    SentinelIncident,
    comment_id,
    incident_update,
    instance_id,
    overall_verdict,
    parse_incident,
    resolve_accounts,
)
from tests.reference import REFERENCE

PAYLOADS = REFERENCE / "payloads"
needs_payloads = pytest.mark.skipif(not PAYLOADS.is_dir(), reason="reference payloads not available")

SUB = "d0cfe6b2-9ac0-4464-9919-dccaee2e48c0"
NAME = "73e01a99-5cd7-4139-a149-9f2736ff2ab5"
INCIDENT_ID = (
    f"/subscriptions/{SUB}/resourceGroups/soc-rg/providers/Microsoft.OperationalInsights/workspaces/soc-ws"
    f"/providers/Microsoft.SecurityInsights/Incidents/{NAME.upper()}"
)
OID = "2046feea-040d-4a46-9e2b-91c2941bfa70"


def _incident(entities: list[Any] | None = None, **properties: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "title": "Token replay from a new ASN",
        "severity": "Medium",
        "status": "New",
        "incidentNumber": 84,
        "firstActivityTimeUtc": "2026-03-01T09:15:00Z",
        "createdTimeUtc": "2026-03-01T10:00:00.1234567Z",
        "incidentUrl": "https://portal.azure.com/#asset/x",
        **properties,
    }
    if entities is not None:
        props["relatedEntities"] = entities
    return {"id": INCIDENT_ID, "name": NAME, "type": "Microsoft.SecurityInsights/Incidents", "properties": props}


def _trigger(entities: list[Any] | None = None, **properties: Any) -> dict[str, Any]:
    return {
        "eventUniqueId": "b2c1a0e4-0000-0000-0000-000000000000",
        "objectSchemaType": "Incident",
        "objectEventType": "Create",
        "workspaceInfo": {"SubscriptionId": SUB, "ResourceGroupName": "soc-rg", "WorkspaceName": "soc-ws"},
        "workspaceId": "8A1B2C3D-0000-4000-8000-000000000001",
        "object": _incident(entities, **properties),
    }


def _account(**properties: Any) -> dict[str, Any]:
    return {"id": "/x/Entities/1", "type": "Microsoft.SecurityInsights/Entities", "kind": "Account", "properties": properties}


def _host() -> dict[str, Any]:
    return {"kind": "Host", "properties": {"hostName": "pc1", "friendlyName": "alice@contoso.com"}}


class TestParse:
    def test_trigger_body(self) -> None:
        """The Logic App trigger body gives the incident, its workspace GUID and its accounts."""
        incident = parse_incident(_trigger([_account(aadUserId=OID, accountName="alice", upnSuffix="contoso.com")]))

        assert (incident.name, incident.number, incident.title, incident.severity) == (
            NAME,
            84,
            "Token replay from a new ASN",
            "Medium",
        )
        assert incident.workspace_id == "8a1b2c3d-0000-4000-8000-000000000001"
        assert incident.accounts == (Account("alice@contoso.com", OID),)
        assert incident.url == "https://portal.azure.com/#asset/x"

    def test_the_defender_portal_link_is_preferred_when_offered(self) -> None:
        """providerIncidentUrl (the Defender portal) is the link people follow; the Azure portal's is the fallback."""
        offered = parse_incident(_trigger([], providerIncidentUrl="https://security.microsoft.com/incidents/3177?tid=x"))
        plain = parse_incident(_trigger([]))
        hostile = parse_incident(_trigger([], providerIncidentUrl="javascript:alert(1)"))

        assert (offered.link, offered.url) == (
            "https://security.microsoft.com/incidents/3177?tid=x",
            "https://portal.azure.com/#asset/x",
        )
        assert plain.link == "https://portal.azure.com/#asset/x"
        assert hostile.link == "https://portal.azure.com/#asset/x"
        assert SentinelIncident.from_json(offered.to_json()) == offered

    def test_resource_id_is_rebuilt_canonically(self) -> None:
        """`Incidents` in any case and an upper-case GUID become the canonical lower-case path."""
        incident = parse_incident(_trigger([]))

        assert incident.resource_id == (
            f"/subscriptions/{SUB}/resourceGroups/soc-rg/providers/Microsoft.OperationalInsights/workspaces/soc-ws"
            f"/providers/Microsoft.SecurityInsights/incidents/{NAME}"
        )

    def test_incident_time_is_the_first_activity(self) -> None:
        """firstActivityTimeUtc anchors the window, so later alerts joining the incident do not move it."""
        assert parse_incident(_incident()).at == datetime(2026, 3, 1, 9, 15, tzinfo=UTC)

    def test_created_time_when_there_is_no_activity_time(self) -> None:
        """Without firstActivityTimeUtc the creation time (seven fraction digits) is used."""
        body = _incident()
        del body["properties"]["firstActivityTimeUtc"]

        assert parse_incident(body).at == datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)

    def test_received_time_is_the_last_resort(self) -> None:
        """No time on the incident at all: the time the request arrived, when the caller gives one."""
        body = _incident()
        del body["properties"]["firstActivityTimeUtc"], body["properties"]["createdTimeUtc"]
        received = datetime(2026, 3, 2, tzinfo=UTC)

        assert parse_incident(body, received_at=received).at == received
        with pytest.raises(InputError, match="neither firstActivityTimeUtc nor createdTimeUtc"):
            parse_incident(body)

    def test_missing_or_empty_entities_mean_not_told(self) -> None:
        """A bare resource or an empty relatedEntities list leaves accounts unknown (None), to be read from Sentinel."""
        assert parse_incident(_incident()).accounts is None
        assert parse_incident(_trigger([])).accounts is None

    def test_entities_without_accounts_mean_no_account(self) -> None:
        """Entities of other kinds only: no account (not None), and the kinds are counted for the comment."""
        incident = parse_incident(_trigger([_host(), _host(), {"kind": "Ip", "properties": {"address": "10.0.0.1"}}]))

        assert incident.accounts == ()
        assert incident.entity_kinds == (("Host", 2), ("Ip", 1))

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            (None, "empty body"),
            ({}, "empty body"),
            ("", "empty body"),
            ([1, 2], "must be a JSON object"),
            ({**_trigger(), "objectSchemaType": "Alert"}, "incidents only"),
            ({"object": "x"}, "must be a JSON object"),
            ({"properties": {}}, "no ARM 'id'"),
            ({"id": "/subscriptions/x/resourceGroups/y", "properties": {}}, "not a Sentinel incident resource id"),
            ({"id": INCIDENT_ID.replace(NAME.upper(), "../../other"), "properties": {}}, "not a Sentinel incident resource id"),
            ({"id": INCIDENT_ID.replace(NAME.upper(), "not-a-guid"), "properties": {}}, "not a valid incident id"),
            (
                {"id": INCIDENT_ID.replace(SUB, "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"), "properties": {}},
                "not a valid subscription id",
            ),
            ({"id": INCIDENT_ID.replace("soc-ws", "a"), "properties": {}}, "not a valid workspace name"),
            ({"id": INCIDENT_ID}, "no 'properties'"),
            (_incident(firstActivityTimeUtc="yesterday"), "firstActivityTimeUtc: not an ISO 8601 time"),
            (_incident(relatedEntities={"kind": "Account"}), "relatedEntities must be a list"),
            (_incident(incidentNumber="eighty"), "incidentNumber is not a number"),
            ({**_trigger(), "workspaceId": "workspace'; drop"}, "not a valid workspaceId"),
        ],
    )
    def test_bad_bodies_are_refused_with_the_reason(self, body: Any, message: str) -> None:
        """Each malformed body raises InputError saying what is wrong."""
        with pytest.raises(InputError, match=message):
            parse_incident(body)

    def test_round_trip_through_orchestration_input(self) -> None:
        """to_json / from_json keep every field, so the orchestration sees what the starter parsed."""
        incident = parse_incident(_trigger([_account(aadUserId=OID), _account(accountName="domain-only")]))

        again = SentinelIncident.from_json(json.loads(json.dumps(incident.to_json())))

        assert incident == again

    def test_stored_input_is_validated_again(self) -> None:
        """A tampered orchestration input (path in the workspace name) is refused, not used in a URL."""
        stored = parse_incident(_trigger([])).to_json()
        stored["workspace_name"] = "soc-ws/../../x"

        with pytest.raises(InputError, match="not a valid workspace name"):
            SentinelIncident.from_json(stored)


class TestResolveAccounts:
    def test_each_way_an_entity_names_a_person(self) -> None:
        """aadUserId, accountName+upnSuffix, a UPN-shaped accountName or friendlyName, and objectGuid all resolve."""
        other = "5f0e7c1a-1111-4222-8333-944455566677"
        resolution = resolve_accounts(
            [
                _account(aadUserId=OID),
                _account(accountName="bob", upnSuffix="Contoso.com"),
                _account(accountName="carol@contoso.com"),
                _account(friendlyName="Dave@Contoso.com", accountName="dave"),
                _account(objectGuid=other),
            ]
        )

        assert resolution.accounts == (
            Account("", OID),
            Account("bob@contoso.com", ""),
            Account("carol@contoso.com", ""),
            Account("dave@contoso.com", ""),
            Account("", other),
        )

    def test_by_kind_not_by_position(self) -> None:
        """A Host whose friendlyName looks like a UPN is not an account; the Account after it is."""
        resolution = resolve_accounts([_host(), {"kind": "Ip", "properties": {"address": "1.1.1.1"}}, _account(aadUserId=OID)])

        assert resolution.accounts == (Account("", OID),)

    def test_the_same_person_named_twice_is_merged(self) -> None:
        """Same object id, or the same UPN in another case, is one account holding both names."""
        resolution = resolve_accounts(
            [
                _account(accountName="Alice", upnSuffix="CONTOSO.COM"),
                _account(aadUserId=OID.upper(), accountName="alice", upnSuffix="contoso.com"),
                _account(aadUserId=OID, friendlyName="Alice Example"),
                _account(friendlyName="ALICE@contoso.com"),
            ]
        )

        assert resolution.accounts == (Account("alice@contoso.com", OID),)

    def test_two_object_ids_are_never_merged(self) -> None:
        """Distinct object ids stay distinct accounts even when an entity gives both the same UPN."""
        other = "5f0e7c1a-1111-4222-8333-944455566677"
        resolution = resolve_accounts(
            [_account(aadUserId=OID, accountName="a@contoso.com"), _account(aadUserId=other, accountName="a@contoso.com")]
        )

        assert [a.object_id for a in resolution.accounts] == [OID, other]

    def test_guest_ext_upn_becomes_the_home_upn(self) -> None:
        """`alice_fabrikam.com#EXT#@contoso.onmicrosoft.com` is queried as alice@fabrikam.com (the id still matches)."""
        resolution = resolve_accounts(
            [
                _account(aadUserId=OID, accountName="alice_fabrikam.com#EXT#", upnSuffix="contoso.onmicrosoft.com"),
                _account(friendlyName="Alice@Fabrikam.com"),
            ]
        )

        assert resolution.accounts == (Account("alice@fabrikam.com", OID),)

    def test_alert_style_pascal_case_entities(self) -> None:
        """Alert entities (`Type: account`, `AadUserId`, `UPNSuffix`) are read the same way."""
        resolution = resolve_accounts([{"Type": "account", "Name": "erin", "UPNSuffix": "contoso.com", "AadUserId": OID}])

        assert resolution.accounts == (Account("erin@contoso.com", OID),)

    def test_hostile_names_are_not_accounts(self) -> None:
        """A KQL-breaking name and a non-GUID id resolve to nobody; they are listed as unresolved, not queried."""
        resolution = resolve_accounts(
            [
                _account(accountName='x" or 1==1 //', upnSuffix="contoso.com", aadUserId="not-a-guid"),
                _account(accountName="administrator", ntDomain="CORP"),
            ]
        )

        assert resolution.accounts == ()
        assert resolution.unresolved == ('x" or 1==1 //', "CORP\\administrator")

    def test_objectguid_is_ignored_when_a_upn_names_the_person(self) -> None:
        """objectGuid (on-premises for synced users) is not taken as the Entra id when a UPN exists."""
        resolution = resolve_accounts([_account(accountName="frank", upnSuffix="contoso.com", objectGuid=OID)])

        assert resolution.accounts == (Account("frank@contoso.com", ""),)


@needs_payloads
class TestRealPayloads:
    def test_rest_spec_incident_as_a_bare_resource(self) -> None:
        """The spec's GET incident body parses as a bare resource: entities to be read, time = first activity."""
        body = json.loads((PAYLOADS / "rest_api_spec_examples" / "GetIncidentById.json").read_text())["responses"]["200"]["body"]

        incident = parse_incident(body)

        assert (incident.number, incident.title, incident.accounts) == (3177, "My incident", None)
        assert incident.at == datetime(2019, 1, 1, 13, 0, 30, tzinfo=UTC)
        assert instance_id(incident) == "incident-73e01a99-5cd7-4139-a149-9f2736ff2ab5"

    def test_rest_spec_entities_name_nobody_in_entra(self) -> None:
        """`domain\\administrator` (no aadUserId, no UPN suffix) is an unresolved account, not a query."""
        body = json.loads((PAYLOADS / "rest_api_spec_examples" / "GetAllIncidentEntities.json").read_text())["responses"]["200"][
            "body"
        ]

        resolution = resolve_accounts(body["entities"])

        assert (resolution.accounts, resolution.unresolved, resolution.kinds) == ((), ("administrator",), (("Account", 1),))

    def test_real_trigger_related_entities_without_an_account(self) -> None:
        """The real Logic App relatedEntities (Host, File, FileHash) inside a trigger body: no account."""
        entities = json.loads(
            (PAYLOADS / "hisashin0728_SentinelSOARWorkshopJP" / "incident_trigger_relatedEntities_MDE_eicar.json").read_text()
        )

        incident = parse_incident(_trigger(entities))

        assert incident.accounts == ()
        assert dict(incident.entity_kinds) == {"File": 1, "FileHash": 1, "Host": 1}

    def test_real_demo_workspace_incident_with_capitalised_path(self) -> None:
        """The demo workspace's incident (path segment `Incidents`) parses once its masked subscription is a GUID."""
        data = json.loads(
            (PAYLOADS / "ibm_resilient_fn_microsoft_sentinel" / "rest_responses_AzureSentinelDemo.json").read_text()
        )
        body = copy.deepcopy(data["update_incident_response"])
        with pytest.raises(InputError, match="subscription id"):
            parse_incident(body)
        body["id"] = body["id"].replace("xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", SUB)

        incident = parse_incident(body)

        assert (incident.number, incident.workspace_name, incident.resource_group) == (3946, "AzureSentinelDemo", "demoassets")
        assert incident.at == datetime(2024, 2, 6, 18, 31, 1, 928840, tzinfo=UTC)

    def test_real_alert_entities_have_no_account(self) -> None:
        """Ip, AzureResource and Host entities from a real workspace resolve to no account."""
        data = json.loads(
            (PAYLOADS / "ibm_resilient_fn_microsoft_sentinel" / "rest_responses_AzureSentinelDemo.json").read_text()
        )

        resolution = resolve_accounts(data["alert_entities_expand_response"]["value"]["entities"])

        assert resolution.accounts == ()
        assert dict(resolution.kinds) == {"AzureResource": 1, "Host": 1, "Ip": 1}


class TestIds:
    def test_comment_id_is_stable_and_specific(self) -> None:
        """Same incident, run, record and account (any case) give the same GUID; anything else a different one."""
        incident = parse_incident(_trigger([]))
        again = parse_incident(_incident())
        run = "incident-x@20260301T090000.000000Z"

        assert comment_id(incident, run, "enrichment") == comment_id(again, run, "enrichment")
        assert comment_id(incident, run, "pending", "Alice@Contoso.com") == comment_id(
            incident, run, "pending", "alice@contoso.com"
        )
        assert (
            len(
                {
                    comment_id(incident, run, "enrichment"),
                    comment_id(incident, run, "failure"),
                    comment_id(incident, run, "enrichment", "a@b.c"),
                    comment_id(incident, "incident-x@20260301T100000.000000Z", "enrichment"),
                }
            )
            == 4
        )


def _labels(*names: str, kind: str = "User") -> list[dict[str, str]]:
    return [{"labelName": n, "labelType": kind} for n in names]


class TestIncidentUpdate:
    def test_adds_our_label_and_keeps_theirs(self) -> None:
        """Our verdict label is appended; other labels, auto-assigned ones included, are kept in order."""
        updated = incident_update(
            {"severity": "Low", "labels": [*_labels("vip"), *_labels("auto", kind="AutoAssigned")]},
            Verdict.SUSPICIOUS,
            raise_severity=True,
        )

        assert updated is not None
        assert [lab["labelName"] for lab in updated["labels"]] == ["vip", "auto", "token-replay:suspicious"]
        assert updated["severity"] == "Low"

    def test_stale_sibling_label_is_replaced(self) -> None:
        """A verdict that changed replaces our old label instead of adding a second verdict."""
        updated = incident_update(
            {"severity": "Low", "labels": _labels("token-replay:benign", "vip")}, Verdict.REPLAY_LIKELY, raise_severity=False
        )

        assert updated is not None
        assert [lab["labelName"] for lab in updated["labels"]] == ["vip", "token-replay:likely"]

    def test_duplicates_collapse_case_insensitively(self) -> None:
        """`Token-Replay:Likely` already there counts as ours; duplicate labels are dropped."""
        updated = incident_update(
            {"severity": "High", "labels": _labels("Token-Replay:Likely", "vip", "VIP")},
            Verdict.REPLAY_LIKELY,
            raise_severity=True,
        )

        assert updated is not None
        assert [lab["labelName"] for lab in updated["labels"]] == ["Token-Replay:Likely", "vip"]

    def test_nothing_to_change_is_none(self) -> None:
        """The label already present and the severity already right: no update at all."""
        assert (
            incident_update(
                {"severity": "High", "labels": _labels("token-replay:likely")}, Verdict.REPLAY_LIKELY, raise_severity=True
            )
            is None
        )

    @pytest.mark.parametrize(
        ("severity", "verdict", "raise_severity", "expected"),
        [
            ("Medium", Verdict.REPLAY_LIKELY, True, "High"),
            ("Informational", Verdict.REPLAY_LIKELY, True, "High"),
            ("Medium", Verdict.REPLAY_LIKELY, False, "Medium"),
            ("Medium", Verdict.SUSPICIOUS, True, "Medium"),
            ("High", Verdict.BENIGN, True, "High"),
        ],
    )
    def test_severity_only_ever_raised(self, severity: str, verdict: Verdict, raise_severity: bool, expected: str) -> None:
        """Raised to High on a likely replay when configured; never lowered, whatever the verdict."""
        updated = incident_update({"severity": severity, "labels": []}, verdict, raise_severity=raise_severity)

        assert updated is not None
        assert updated["severity"] == expected

    def test_read_only_properties_are_not_sent_back(self) -> None:
        """incidentNumber, additionalData and the like are dropped from the PUT; writable ones kept."""
        updated = incident_update(
            {
                "severity": "Low",
                "title": "t",
                "status": "Active",
                "incidentNumber": 3,
                "additionalData": {},
                "owner": {"objectId": OID},
            },
            Verdict.BENIGN,
            raise_severity=False,
        )

        assert updated is not None
        assert set(updated) == {"severity", "title", "status", "owner", "labels"}

    def test_overall_verdict_is_the_most_severe(self) -> None:
        """Several accounts: the incident carries the worst verdict; none assessed gives None."""
        assert overall_verdict([Verdict.BENIGN, Verdict.REPLAY_LIKELY, Verdict.SUSPICIOUS]) is Verdict.REPLAY_LIKELY
        assert overall_verdict([]) is None
