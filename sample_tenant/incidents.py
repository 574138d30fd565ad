"""
Sample Sentinel incidents, in the body the Logic App "Microsoft Sentinel incident" trigger delivers.

Titles, severities and rule names are drawn from one pool for every family, so nothing in an
incident says whether it is an attack or a look-alike; only the evidence in the logs can.
"""

from __future__ import annotations

import random
from typing import Any

from sample_tenant import ids
from sample_tenant.catalog import ALL_NETWORKS
from sample_tenant.events import iso
from sample_tenant.scenarios import Scenario
from sample_tenant.tenant import Egress, Tenant, User

_RULES = (
    (
        "Anomalous token",
        "Sign-in with an anomalous token: the token's characteristics are unusual for this user.",
        ("CredentialAccess",),
    ),
    (
        "Unfamiliar sign-in properties",
        "Sign-in properties (IP, ASN, location, device, user agent) are unfamiliar for this user.",
        ("InitialAccess",),
    ),
    (
        "Interactive and non-interactive sign-ins from different ASNs",
        "A session's token refreshes came from an ASN its interactive sign-in did not.",
        ("InitialAccess", "CredentialAccess"),
    ),
    (
        "Sign-in from a new country after MFA",
        "A successful sign-in satisfied MFA from a country not seen for this user in 14 days.",
        ("InitialAccess",),
    ),
    ("Atypical travel", "Two sign-ins from locations too far apart for the time between them.", ("InitialAccess",)),
    (
        "Suspicious session reuse",
        "One SessionId was used from more than one network within a short time.",
        ("CredentialAccess", "LateralMovement"),
    ),
)


def _owner(asn: int) -> str:
    return next((n.owner for n in ALL_NETWORKS if n.asn == asn), "")


def _entity(tenant: Tenant, rng: random.Random, kind: str, properties: dict[str, Any]) -> dict[str, Any]:
    name = ids.guid(rng)
    return {
        "id": f"{tenant.workspace.arm_id}/providers/Microsoft.SecurityInsights/Entities/{name}",
        "name": name,
        "type": "Microsoft.SecurityInsights/Entities",
        "kind": kind,
        "properties": properties,
    }


def incident_body(
    tenant: Tenant, scenario: Scenario, user: User, *, egress: Egress | None, first: int, last: int, number: int
) -> dict[str, Any]:
    """The trigger body of the incident for `scenario` (deterministic: ids come from the scenario's generator)."""
    rng = ids.generator(tenant.seed, "incident", scenario.scenario_id)
    workspace = tenant.workspace
    incident_id = ids.guid(rng)
    arm_id = f"{workspace.arm_id}/providers/Microsoft.SecurityInsights/Incidents/{incident_id}"
    title, description, tactics = rng.choice(_RULES)
    rule_id = f"{workspace.arm_id}/providers/Microsoft.SecurityInsights/alertRules/{ids.guid(ids.generator(tenant.seed, 'rule', title))}"
    account_name, _, suffix = user.upn.partition("@")
    account = _entity(
        tenant,
        rng,
        "Account",
        {
            "accountName": account_name,
            "upnSuffix": suffix,
            "aadTenantId": tenant.tenant_id,
            "aadUserId": user.user_id,
            "displayName": user.display_name,
            "isDomainJoined": False,
            "friendlyName": user.display_name,
        },
    )
    entities = [account]
    if egress is not None:
        location = {
            "asn": egress.asn,
            "city": egress.place.city,
            "countryCode": egress.place.country,
            "state": egress.place.state,
            "latitude": egress.place.latitude,
            "longitude": egress.place.longitude,
            "organization": _owner(egress.asn),
        }
        entities.append(_entity(tenant, rng, "Ip", {"address": egress.ip, "location": location, "friendlyName": egress.ip}))
    created = iso(scenario.at)
    severity = rng.choice(("Medium", "Medium", "High", "Low"))
    return {
        "eventUniqueId": ids.guid(rng),
        "objectSchemaType": "Incident",
        "objectEventType": "Create",
        "workspaceInfo": {
            "SubscriptionId": workspace.subscription_id,
            "ResourceGroupName": workspace.resource_group,
            "WorkspaceName": workspace.name,
        },
        "workspaceId": workspace.workspace_id,
        "object": {
            "id": arm_id,
            "name": incident_id,
            "etag": f'"{ids.guid(rng)}"',
            "type": "Microsoft.SecurityInsights/Incidents",
            "properties": {
                "title": title,
                "description": f"{description} Account: {user.upn}." + (f" IP: {egress.ip}." if egress else ""),
                "severity": severity,
                "status": "New",
                "owner": {"objectId": None, "email": None, "assignedTo": None, "userPrincipalName": None},
                "labels": [],
                "incidentNumber": number,
                "incidentUrl": f"https://portal.azure.com/#asset/Microsoft_Azure_Security_Insights/Incident{arm_id}",
                "providerName": "Azure Sentinel",
                "providerIncidentId": str(number),
                "createdTimeUtc": created,
                "lastModifiedTimeUtc": created,
                "firstActivityTimeUtc": iso(first),
                "lastActivityTimeUtc": iso(last),
                "additionalData": {
                    "alertsCount": 1,
                    "bookmarksCount": 0,
                    "commentsCount": 0,
                    "alertProductNames": ["Azure Sentinel"],
                    "tactics": list(tactics),
                },
                "relatedAnalyticRuleIds": [rule_id],
                "alerts": [],
                "bookmarks": [],
                "relatedEntities": entities,
                "comments": [],
            },
        },
    }
