"""
A small exported-logs database for the pipeline tests: one replayed user, one ordinary user.

Alice signs in from home (ASN 7922), then her session's refresh token is replayed from another ASN
by a scripted client, inside the same SessionId, with an app name that is hostile HTML. Bob only
ever signs in from his office. Written as a DuckDB file so both `EmbeddedEngine.open` and the
`python -m playbooks run --data` command read it. Addresses are documentation ranges.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from tests.fakes.workspace_tables import create_schema_tables, insert_rows

AT = datetime(2026, 4, 14, 9, 0, tzinfo=UTC)
ALICE_UPN, ALICE_ID = "alice@contoso.com", "a11ce000-0000-4000-8000-000000000001"
BOB_UPN, BOB_ID = "bob@contoso.com", "b0b00000-0000-4000-8000-000000000002"
HOME_IP, ATTACKER_IP, OFFICE_IP = "192.0.2.10", "203.0.113.66", "198.51.100.20"
SESSION = "5e55a000-0000-4000-8000-00000000beef"
HOSTILE_APP = '<img src=x onerror=alert(1)>"Outlook"'

SUBSCRIPTION = "d0cfe6b2-9ac0-4464-9919-dccaee2e48c0"
RESOURCE_GROUP, WORKSPACE_NAME = "soc-rg", "soc-ws"
INCIDENT_NAME = "73e01a99-5cd7-4139-a149-9f2736ff2ab5"
WORKSPACE_ID = "6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d"


def _location(city: str, country: str, lat: float, lon: float) -> dict[str, Any]:
    return {"city": city, "state": "", "countryOrRegion": country, "geoCoordinates": {"latitude": lat, "longitude": lon}}


PARIS = _location("Paris", "FR", 48.8566, 2.3522)
LAGOS = _location("Lagos", "NG", 6.4550, 3.3941)


def _row(upn: str, oid: str, at: datetime, ip: str, asn: str, where: dict[str, Any], **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "TimeGenerated": at,
        "UserPrincipalName": upn,
        "UserId": oid,
        "IPAddress": ip,
        "AutonomousSystemNumber": asn,
        "LocationDetails": where,
        "SessionId": SESSION if upn == ALICE_UPN else "b0b5e55-0",
        "AppId": "d3590ed6-52b3-4102-aeff-aad2292ab01c",
        "AppDisplayName": "Microsoft Office",
        "ResourceIdentity": "00000002-0000-0ff1-ce00-000000000000",
        "ResourceDisplayName": "Office 365 Exchange Online",
        "UserAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Edg/124.0",
        "ClientAppUsed": "Browser",
        "AuthenticationProtocol": "none",
        "IncomingTokenType": "none",
        "DeviceDetail": {
            "deviceId": "dev-1",
            "displayName": "LAPTOP",
            "operatingSystem": "Windows 11",
            "browser": "Edge 124.0",
            "isCompliant": True,
            "isManaged": True,
            "trustType": "Azure AD joined",
        },
        "ResultType": "0",
        "AuthenticationRequirement": "multiFactorAuthentication",
        "AuthenticationDetails": json.dumps([{"authenticationMethod": "Password", "succeeded": True}]),
        "TokenProtectionStatusDetails": {"signInSessionStatus": "unbound"},
        "RiskLevelDuringSignIn": "none",
        "RiskEventTypes_V2": "[]",
        "NetworkLocationDetails": "[]",
    }
    row.update(extra)
    return row


REFRESH = {
    "AuthenticationDetails": json.dumps([{"authenticationMethod": "Previously satisfied", "succeeded": True}]),
    "AuthenticationRequirement": "singleFactorAuthentication",
    "IncomingTokenType": "refreshToken",
    "ClientAppUsed": "Mobile Apps and Desktop clients",
}


def build_database(path: Path, *, user_ids: bool = True) -> Path:
    """Write the DuckDB file at `path` and return it; without `user_ids` the rows carry no UserId (some exports lack it)."""
    interactive = [
        _row(ALICE_UPN, ALICE_ID, AT - timedelta(hours=2), HOME_IP, "7922", PARIS),
        _row(BOB_UPN, BOB_ID, AT - timedelta(hours=1), OFFICE_IP, "3215", PARIS),
    ]
    non_interactive: list[dict[str, Any]] = []
    for day in range(1, 13):
        interactive.append(_row(ALICE_UPN, ALICE_ID, AT - timedelta(days=day, hours=3), HOME_IP, "7922", PARIS))
        interactive.append(_row(BOB_UPN, BOB_ID, AT - timedelta(days=day, hours=2), OFFICE_IP, "3215", PARIS))
        non_interactive.append(_row(ALICE_UPN, ALICE_ID, AT - timedelta(days=day, hours=2), HOME_IP, "7922", PARIS, **REFRESH))
        non_interactive.append(_row(BOB_UPN, BOB_ID, AT - timedelta(days=day, hours=1), OFFICE_IP, "3215", PARIS, **REFRESH))
    for minutes in (0, 3, 7, 31):
        non_interactive.append(
            _row(ALICE_UPN, ALICE_ID, AT - timedelta(hours=2) + timedelta(minutes=minutes), HOME_IP, "7922", PARIS, **REFRESH)
        )
    for minutes in (0, 20):
        non_interactive.append(
            _row(BOB_UPN, BOB_ID, AT - timedelta(hours=1) + timedelta(minutes=minutes), OFFICE_IP, "3215", PARIS, **REFRESH)
        )
    for minutes in (5, 6, 9, 12, 40):
        non_interactive.append(
            _row(
                ALICE_UPN,
                ALICE_ID,
                AT - timedelta(minutes=50) + timedelta(minutes=minutes),
                ATTACKER_IP,
                "136787",
                LAGOS,
                UserAgent="python-requests/2.32",
                AppDisplayName=HOSTILE_APP,
                DeviceDetail={
                    "deviceId": "",
                    "displayName": "",
                    "operatingSystem": "Linux",
                    "browser": "",
                    "isCompliant": False,
                    "isManaged": False,
                    "trustType": "",
                },
                RiskLevelDuringSignIn="medium",
                RiskEventTypes_V2='["anomalousToken"]',
                **REFRESH,
            )
        )
    if not user_ids:
        for row in (*interactive, *non_interactive):
            row["UserId"] = ""
    for row in non_interactive:  # the non-interactive table stores these JSON columns as text
        for column in ("LocationDetails", "DeviceDetail", "TokenProtectionStatusDetails"):
            row[column] = json.dumps(row[column])
    con = duckdb.connect(str(path))
    try:
        create_schema_tables(con)
        insert_rows(con, "SigninLogs", interactive)
        insert_rows(con, "AADNonInteractiveUserSignInLogs", non_interactive)
    finally:
        con.close()
    return path


def incident_resource(entities: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The incident as ARM returns it (GET), optionally with related entities (trigger copy)."""
    properties: dict[str, Any] = {
        "title": "Anomalous token <b>for</b> Alice",
        "severity": "Medium",
        "status": "New",
        "incidentNumber": 4242,
        "firstActivityTimeUtc": AT.isoformat().replace("+00:00", "Z"),
        "labels": [{"labelName": "vip", "labelType": "User"}],
    }
    if entities is not None:
        properties["relatedEntities"] = entities
    return {
        "id": (
            f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.OperationalInsights/"
            f"workspaces/{WORKSPACE_NAME}/providers/Microsoft.SecurityInsights/Incidents/{INCIDENT_NAME}"
        ),
        "name": INCIDENT_NAME,
        "type": "Microsoft.SecurityInsights/Incidents",
        "properties": properties,
    }


ENTITIES = [
    {"kind": "Ip", "properties": {"address": ATTACKER_IP}},
    {"kind": "Account", "properties": {"accountName": "alice", "upnSuffix": "contoso.com", "aadUserId": ALICE_ID}},
    {"kind": "Account", "properties": {"friendlyName": "BOB@contoso.com"}},
    {"kind": "Account", "properties": {"aadUserId": ALICE_ID.upper(), "friendlyName": "Alice"}},
]


def trigger_body(entities: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The Logic App trigger body around `incident_resource`."""
    return {
        "objectSchemaType": "Incident",
        "objectEventType": "Create",
        "workspaceId": WORKSPACE_ID,
        "object": incident_resource(entities),
    }
