"""Incident parsing (bounded, hostile bodies refused), account resolution by kind, deterministic ids and the label decision."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.errors import InputError
from common.settings import Settings
from enrichment.domain.model import Account, Verdict
from playbooks.domain.incident import (
    EARLIEST,
    KINDS,
    LABEL_CHARS,
    LABELS,
    LISTED,
    MAX_BODY_BYTES,
    NAME_CHARS,
    OTHER_KINDS,
    TITLE_CHARS,
    BodyTooLarge,
    SentinelIncident,
    comment_id,
    incident_body,
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


def _oid(index: int) -> str:
    return str(uuid.UUID(int=index + 1, version=4))


def _people(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [_account(aadUserId=_oid(i), accountName=f"user{i}", upnSuffix="contoso.com") for i in range(start, start + count)]


class TestMergeAtScale:
    def test_forty_thousand_entities_merge_into_distinct_people(self) -> None:
        """40,000 entities naming 20,000 people twice (id+UPN, then UPN alone) give 20,000 people, in first-seen order."""
        twice = _people(20_000) + [_account(accountName=f"user{i}", upnSuffix="contoso.com") for i in range(20_000)]

        resolution = resolve_accounts(twice, max_accounts=500)

        assert resolution.accounts[:2] == (Account("user0@contoso.com", _oid(0)), Account("user1@contoso.com", _oid(1)))
        assert (len(resolution.accounts), resolution.not_assessed_total) == (500, 19_500)
        assert resolution.kinds == (("Account", 40_000),)

    def test_upn_only_person_adopts_a_later_object_id_once(self) -> None:
        """A person first named by UPN takes the object id of a later entity with that UPN; a third id stays separate."""
        other = "5f0e7c1a-1111-4222-8333-944455566677"
        resolution = resolve_accounts(
            [
                _account(accountName="alice", upnSuffix="contoso.com"),
                _account(aadUserId=OID, accountName="alice", upnSuffix="contoso.com"),
                _account(aadUserId=other, accountName="alice", upnSuffix="contoso.com"),
                _account(accountName="alice", upnSuffix="contoso.com"),
            ]
        )

        assert resolution.accounts == (Account("alice@contoso.com", OID), Account("alice@contoso.com", other))

    def test_upn_held_by_an_id_person_is_not_a_new_person(self) -> None:
        """A UPN-only entity whose UPN an id-person already holds (as its second UPN) adds nobody."""
        resolution = resolve_accounts(
            [
                _account(aadUserId=OID, accountName="alice", upnSuffix="contoso.com"),
                _account(aadUserId=OID, friendlyName="alice.alt@contoso.com"),
                _account(friendlyName="Alice.Alt@contoso.com"),
            ]
        )

        assert resolution.accounts == (Account("alice@contoso.com", OID),)


class TestAccountCap:
    def test_accounts_over_the_cap_are_not_assessed_but_named(self) -> None:
        """With 60 people and a cap of 50, the first 50 are assessed and the other 10 listed as not assessed."""
        incident = parse_incident(_trigger(_people(60)), max_accounts=50)

        assert incident.accounts is not None
        assert len(incident.accounts) == 50
        assert incident.not_assessed == tuple(Account(f"user{i}@contoso.com", _oid(i)) for i in range(50, 60))
        assert incident.not_assessed_total == 10
        (note,) = incident.intake_notes()
        assert note.startswith("REPLAY_MAX_ACCOUNTS: the first 50 accounts were assessed, 10 more were not: user50@contoso.com")

    def test_default_cap_is_the_settings_default(self) -> None:
        """Without a cap given, the parser applies REPLAY_MAX_ACCOUNTS' default (50)."""
        assert len(parse_incident(_trigger(_people(51))).accounts or ()) == Settings().max_accounts == 50

    def test_a_late_entity_of_an_early_person_is_not_a_new_account(self) -> None:
        """The cap counts people, not entities: person 1 named again after 60 others is still assessed once."""
        entities = [*_people(3), *_people(60, start=3), _account(aadUserId=_oid(1), friendlyName="x")]

        incident = parse_incident(_trigger(entities), max_accounts=3)

        assert [a.object_id for a in incident.accounts or ()] == [_oid(0), _oid(1), _oid(2)]
        assert incident.not_assessed_total == 60

    def test_not_assessed_list_is_bounded_and_says_how_many_more(self) -> None:
        """40,000 people over the cap: LISTED of them named, the count of the rest said, the payload stays small."""
        incident = parse_incident(_trigger(_people(40_050)), max_accounts=50)

        assert (len(incident.not_assessed), incident.not_assessed_total) == (LISTED, 40_000)
        assert incident.intake_notes()[0].endswith(f"and {40_000 - LISTED} more")
        assert len(json.dumps(incident.to_json())) < 20_000
        assert SentinelIncident.from_json(json.loads(json.dumps(incident.to_json()))) == incident

    def test_unresolved_names_are_bounded_and_counted(self) -> None:
        """Thousands of Account entities without an identity: LISTED names kept, the rest counted in a note."""
        entities = [_account(accountName=f"svc{i}", ntDomain="CORP") for i in range(1_000)]

        incident = parse_incident(_trigger(entities))

        assert (len(incident.unresolved), incident.unresolved_total) == (LISTED, 1_000)
        assert incident.unresolved[0] == "CORP\\svc0"
        assert incident.intake_notes() == (f"{1_000 - LISTED} more account entities without an Entra identity are not listed",)

    def test_ip_entities_are_deduplicated_bounded_and_counted(self) -> None:
        """40,000 Ip entities (each twice): the first LISTED distinct addresses kept, the rest counted in a note."""
        ips = [{"kind": "Ip", "properties": {"address": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"}} for i in range(40_000)]

        incident = parse_incident(_trigger(ips + ips + _people(1)))

        assert (incident.ips[:2], len(incident.ips), incident.ips_total) == (("10.0.0.0", "10.0.0.1"), LISTED, 40_000)
        assert incident.intake_notes() == (f"the incident names 40000 IP addresses; only the first {LISTED} are answered",)

    def test_display_names_only_for_the_accounts_assessed(self) -> None:
        """Display names travel in every payload: those of accounts over the cap are not kept."""
        entities = [
            _account(aadUserId=_oid(i), accountName=f"user{i}", upnSuffix="contoso.com", friendlyName=f"User {i}")
            for i in range(60)
        ]

        incident = parse_incident(_trigger(entities), max_accounts=2)

        assert incident.display_name(Account("user1@contoso.com", _oid(1))) == "User 1"
        assert {key for key, _name in incident.display_names} == {"user0@contoso.com", _oid(0), "user1@contoso.com", _oid(1)}

    def test_nothing_left_out_means_no_note(self) -> None:
        """An ordinary incident has no intake note."""
        assert parse_incident(_trigger(_people(2))).intake_notes() == ()


class TestFreeText:
    def test_title_is_capped(self) -> None:
        """A 2 MB title becomes TITLE_CHARS characters ending in an ellipsis, so every payload stays small."""
        incident = parse_incident(_trigger(_people(1), title="A" * 2_000_000))

        assert (len(incident.title), incident.title[-1]) == (TITLE_CHARS, "\u2026")
        assert len(json.dumps(incident.to_json())) < 2_000

    def test_hidden_characters_are_removed_from_every_kept_text(self) -> None:
        """NUL, ESC and bidi overrides leave the title, the severity, unresolved names and entity kinds."""
        incident = parse_incident(
            _trigger(
                [_account(accountName="ad\u202emin\x00", ntDomain="CO\x1bRP"), {"kind": "Ho\u2066st", "properties": {}}],
                title="Token\x00 replay \x1b[31m\u202etxt.exe",
                severity="Hi\u200bgh",
            )
        )

        assert (incident.title, incident.severity) == ("Token replay [31mtxt.exe", "High")
        assert incident.unresolved == ("CORP\\admin",)
        assert dict(incident.entity_kinds) == {"Account": 1, "Host": 1}

    def test_lone_surrogate_in_the_title_is_replaced(self) -> None:
        """A `\\ud800` escape in the title becomes U+FFFD: the incident encodes as UTF-8 wherever it goes."""
        body = json.loads(json.dumps(_trigger(_people(1), title="x")).replace('"title": "x"', '"title": "a\\ud800b"'))

        incident = parse_incident(body)

        assert incident.title == "a\ufffdb"
        json.dumps(incident.to_json(), ensure_ascii=False).encode("utf-8")

    def test_long_names_and_many_kinds_are_bounded(self) -> None:
        """A 1 MB entity name and 1,000 invented kinds: names capped, kinds past KINDS counted as other, Account kept."""
        entities: list[Any] = [{"kind": f"Kind{i}", "properties": {}} for i in range(1_000)]
        entities += [_account(accountName="n" * 1_000_000, ntDomain="CORP"), _account(aadUserId=OID), {"kind": "K" * 10_000}]

        incident = parse_incident(_trigger(entities))

        kinds = dict(incident.entity_kinds)
        assert len(kinds) == KINDS + 2  # the first KINDS kinds, Account, and "other kinds"
        assert (kinds["Account"], kinds[OTHER_KINDS]) == (2, 1_000 - KINDS + 1)
        assert incident.accounts == (Account("", OID),)
        assert len(incident.unresolved[0]) == NAME_CHARS

    def test_stored_input_is_bounded_again(self) -> None:
        """A stored orchestration input with a huge title or hidden characters is bounded and cleaned when read."""
        stored = parse_incident(_trigger([])).to_json()
        stored.update(title="\u202e" + "T" * 100_000, unresolved=["x\x00"] * 500, entity_kinds=[["Host\x1b", 1]])

        incident = SentinelIncident.from_json(stored)

        assert len(incident.title) == TITLE_CHARS
        assert (incident.unresolved[0], len(incident.unresolved), incident.unresolved_total) == ("x", LISTED, LISTED)
        assert incident.entity_kinds == (("Host", 1),)


class TestHostileBodies:
    def test_a_body_over_the_limit_is_refused_unparsed(self) -> None:
        """More than MAX_BODY_BYTES is BodyTooLarge (an InputError the HTTP function answers with 413)."""
        with pytest.raises(BodyTooLarge, match="an incident is at most 8,388,608"):
            incident_body(b" " * (MAX_BODY_BYTES + 1))

    def test_deep_nesting_is_bad_input_not_a_recursion_error(self) -> None:
        """100,000 nested brackets are an InputError saying so, never an uncaught RecursionError."""
        with pytest.raises(InputError, match="nested too deeply"):
            incident_body(b"[" * 100_000 + b"]" * 100_000)

    @pytest.mark.parametrize(
        ("raw", "message"),
        [
            (b"{not json", "the body is not JSON"),
            (b"\xff\xfe\xfa", "the body is not JSON"),
            (b'{"n": ' + b"9" * 5_000 + b"}", "the body is not JSON"),
        ],
    )
    def test_bytes_that_are_not_json(self, raw: bytes, message: str) -> None:
        """Malformed JSON, bytes that are not UTF-8 and an integer of 5,000 digits are InputErrors."""
        with pytest.raises(InputError, match=message):
            incident_body(raw)

    def test_empty_body_and_byte_order_mark(self) -> None:
        """Whitespace is no body (parse says "empty body"); a UTF-8 byte-order mark is accepted."""
        assert incident_body(b"  \n") is None
        assert incident_body(b"\xef\xbb\xbf" + json.dumps(_trigger([])).encode()) == _trigger([])

    @pytest.mark.parametrize(
        "moment",
        [
            "9999-12-31T23:59:59Z",
            "9999-12-31T23:00:00-05:00",
            "0001-01-01T00:00:00Z",
            "0001-01-01T00:00:00+01:00",
            "1999-12-31T23:59:59Z",
            "2100-01-01T00:00:00Z",
        ],
    )
    def test_times_outside_the_sentinel_era_are_refused(self, moment: str) -> None:
        """Years 0001 and 9999 (with or without an offset) and anything outside 2000-2099 are InputErrors, not OverflowError."""
        with pytest.raises(InputError, match="is not the time of a Sentinel incident"):
            parse_incident(_incident(firstActivityTimeUtc=moment))
        with pytest.raises(InputError, match="is not the time of a Sentinel incident"):
            parse_incident(_incident(firstActivityTimeUtc=None, createdTimeUtc=moment))

    def test_edges_of_the_accepted_range(self) -> None:
        """2000-01-01 and the last moment of 2099 are accepted."""
        assert parse_incident(_incident(firstActivityTimeUtc="2000-01-01T00:00:00Z")).at == EARLIEST
        assert parse_incident(_incident(firstActivityTimeUtc="2099-12-31T23:59:59+00:00")).at.year == 2099

    @pytest.mark.parametrize("number", [True, 1.5, -1, 2**53, "1e3", "٣", {"n": 1}, "9" * 17])
    def test_incident_numbers_that_are_not_whole_json_numbers(self, number: object) -> None:
        """Booleans, fractions, negatives, numbers JSON cannot carry exactly and non-ASCII digits are refused."""
        with pytest.raises(InputError, match="incidentNumber is not a number"):
            parse_incident(_incident(incidentNumber=number))

    def test_incident_number_as_text(self) -> None:
        """A number sent as a string of digits is read as the number."""
        assert parse_incident(_incident(incidentNumber=" 84 ")).number == 84

    def test_long_values_are_not_echoed_whole_in_errors(self) -> None:
        """A 1 MB objectSchemaType is quoted in the error by its first characters only."""
        with pytest.raises(InputError) as raised:
            parse_incident({**_trigger(), "objectSchemaType": "A" * 1_000_000})

        assert len(str(raised.value)) < 200


#: Any JSON value: what a hostile or broken sender can put anywhere in the body.
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
_ENTITY_KEYS = ("kind", "type", "Type", "properties", "aadUserId", "accountName", "upnSuffix", "friendlyName", "objectGuid")
_PROPERTY_KEYS = ("title", "severity", "incidentNumber", "firstActivityTimeUtc", "createdTimeUtc", "incidentUrl")
ENTITY = st.dictionaries(st.sampled_from(_ENTITY_KEYS), JSON | st.sampled_from(["Account", OID, "a@contoso.com"]), max_size=5)
PROPERTIES = st.fixed_dictionaries(
    {"relatedEntities": st.lists(ENTITY, max_size=6) | JSON},
    optional={key: JSON | st.sampled_from(["2026-03-01T09:15:00Z", "9999-12-31T23:59:59Z", "84"]) for key in _PROPERTY_KEYS},
)


def _parses_or_refuses(body: object) -> None:
    try:
        incident = parse_incident(body, received_at=datetime(2026, 3, 1, tzinfo=UTC), max_accounts=3)
    except InputError:
        return
    stored = json.loads(json.dumps(incident.to_json(), ensure_ascii=False).encode("utf-8"))
    assert SentinelIncident.from_json(stored) == incident


class TestArbitraryBodies:
    @given(JSON)
    def test_any_json_parses_or_is_refused(self, body: object) -> None:
        """Any JSON value at all gives an SentinelIncident or an InputError, never another exception."""
        _parses_or_refuses(body)

    @given(PROPERTIES)
    def test_any_incident_shaped_body_parses_or_is_refused(self, properties: dict[str, Any]) -> None:
        """A well-formed id with arbitrary properties and entities parses (and round-trips as UTF-8) or is an InputError."""
        _parses_or_refuses(_trigger() | {"object": {"id": INCIDENT_ID, "properties": properties}})

    @given(st.binary(max_size=200) | JSON.map(lambda value: json.dumps(value).encode()))
    def test_any_bytes_are_json_or_an_input_error(self, raw: bytes) -> None:
        """Any bytes give their JSON value (None when blank) or an InputError from incident_body."""
        try:
            value = incident_body(raw)
        except InputError:
            return
        assert json.dumps(value) == ("null" if not raw.strip() else json.dumps(json.loads(raw)))


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


class TestLabels:
    def test_label_names_are_read_from_the_sentinel_shape(self) -> None:
        """`properties.labels[].labelName` is kept (Defender's tags arrive as labels); non-objects are skipped."""
        body = _trigger(_people(1))
        body["object"]["properties"]["labels"] = [
            {"labelName": "Attack Disruption", "labelType": "System"},
            {"labelName": "  "},
            "not-a-label",
            {"labelType": "User"},
            {"labelName": "token-replay:suspicious", "labelType": "User"},
        ]

        incident = parse_incident(body)

        assert incident.labels == ("Attack Disruption", "token-replay:suspicious")

    def test_labels_are_capped_and_survive_the_stored_input(self) -> None:
        """At most LABELS labels of LABEL_CHARS characters each, and `from_json(to_json())` keeps them."""
        body = _trigger(_people(1))
        body["object"]["properties"]["labels"] = [{"labelName": f"L{i}" + "x" * 500} for i in range(100)]

        incident = parse_incident(body)

        assert len(incident.labels) == LABELS
        assert all(len(label) == LABEL_CHARS for label in incident.labels)
        assert SentinelIncident.from_json(incident.to_json()).labels == incident.labels

    def test_no_labels_is_an_empty_tuple(self) -> None:
        """An incident without labels (or with a non-list) has none."""
        body = _trigger(_people(1))
        body["object"]["properties"]["labels"] = {"labelName": "Attack Disruption"}

        assert parse_incident(body).labels == ()
        assert parse_incident(_trigger(_people(1))).labels == ()
