"""
Events -> export rows: one JSON object per line, with every column of the project's schema fixture.

Rows look like what the Log Analytics query API returns: `dynamic` columns as JSON values, columns
marked `json_text` as strings holding JSON (so the same LocationDetails is an object in SigninLogs
and a string in AADNonInteractiveUserSignInLogs), datetimes as ISO 8601 UTC with `Z`. Every row has
every column, because readers learn a file's columns from its first rows.

Encoding is the generator's hot loop (millions of rows), so the columns that never change are
serialised once per table and the nested values that repeat (a device, a place, a status) once per
distinct value; only what varies per row is encoded per row.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from json.encoder import encode_basestring_ascii as _quote
from pathlib import Path
from typing import Any

import enrichment
from enrichment.domain.model import Table
from sample_tenant import catalog, ids
from sample_tenant.catalog import App, Place, Resource
from sample_tenant.events import AuditEvent, Auth, SignIn, iso
from sample_tenant.tenant import Device, Tenant, User

SCHEMA_FOLDER = Path(enrichment.__file__).resolve().parent / "schemas"
AUDIT_TABLE = "AuditLogs"

#: The tenant that owns Microsoft's first-party apps.
MICROSOFT_SERVICES_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"

_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode

_AUTH_STEPS: dict[Auth, tuple[tuple[str, str, str, bool], ...]] = {
    # (method, method detail, result detail, succeeded)
    Auth.MFA: (
        ("Password", "Password in the cloud", "Correct password", True),
        ("Mobile app notification", "", "MFA successfully completed", True),
    ),
    Auth.PASSWORDLESS: (("Windows Hello for Business", "", "Windows Hello for Business", True),),
    Auth.SSO: (
        ("Previously satisfied", "", "First factor requirement satisfied by claim in the token", True),
        ("Previously satisfied", "", "MFA requirement satisfied by claim in the token", True),
    ),
    Auth.CLAIM: (("Previously satisfied", "", "MFA requirement satisfied by claim in the token", True),),
    Auth.CLAIM_SINGLE_FACTOR: (("Previously satisfied", "", "First factor requirement satisfied by claim in the token", True),),
    Auth.WRONG_CREDENTIALS: (
        ("Password", "Password in the cloud", "Invalid username or password or Invalid on-premise username or password.", False),
    ),
    Auth.INTERRUPTED: (),
    Auth.BLOCKED: (("Previously satisfied", "", "MFA requirement satisfied by claim in the token", True),),
}
_STATUS_DETAIL = {
    Auth.MFA: "MFA completed in Azure AD",
    Auth.PASSWORDLESS: "MFA requirement satisfied by strong authentication",
    Auth.SSO: "MFA requirement satisfied by claim in the token",
    Auth.CLAIM: "MFA requirement satisfied by claim in the token",
    Auth.CLAIM_SINGLE_FACTOR: "",
    Auth.WRONG_CREDENTIALS: "The user didn't enter the right credentials. It's expected to see some number of these errors in your logs due to users making mistakes.",
    Auth.INTERRUPTED: "",
    Auth.BLOCKED: "",
}
#: Stands for the row time inside cached AuthenticationDetails; replaced by "<date>T<time>.fff" per row.
_STEP_TIME = "@@STEP_TIME@@"


def schema(table: str) -> list[dict[str, Any]]:
    """The fixture's columns of `table`, in fixture order."""
    document = json.loads((SCHEMA_FOLDER / f"{table}.json").read_text(encoding="utf-8"))
    return list(document["columns"])


def _fragment(value: object, mode: str) -> str:
    """One value as JSON: `mode` is "raw" (already JSON text), "text" (a string holding JSON) or "plain"."""
    if value is None:
        return "null"
    if mode == "raw":
        return str(value)
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return _DUMPS(value)


class RowEncoder:
    """
    One table's column layout: constant columns serialised once, the rest encoded in segments.

    `segment(values)` encodes some of the variable columns as `"name":value,...`; a row is the
    concatenation of segments covering every variable column, then `finish` adds the constant
    columns. Values of dynamic and JSON-text columns are passed as JSON text; the encoder embeds
    it as a JSON value or as a string, whichever the table's schema says.
    """

    def __init__(self, table: str, constants: dict[str, object], variable: tuple[str, ...]) -> None:
        columns = schema(table)
        self.table = table
        self.columns = tuple(c["name"] for c in columns)
        self._modes = {c["name"]: "raw" if c["type"] == "dynamic" else "text" if c.get("json_text") else "plain" for c in columns}
        unknown = (set(variable) | set(constants)) - set(self.columns)
        if unknown:
            msg = f"{table} has no column(s) {', '.join(sorted(unknown))}"
            raise ValueError(msg)
        self.variable = variable
        fixed = []
        for column in columns:
            name = column["name"]
            if name in variable or name == "_BilledSize":
                continue
            fixed.append(_quote(name) + ":" + _fragment(constants.get(name, _empty(column)), self._modes[name]))
        self._constant = ",".join(fixed)
        self._billed = "_BilledSize" in self.columns

    def segment(self, values: dict[str, object]) -> str:
        """`"name":value` pairs for some variable columns, each followed by a comma."""
        return "".join(f"{_quote(name)}:{_fragment(value, self._modes[name])}," for name, value in values.items())

    def key(self, name: str) -> str:
        """The `"name":` prefix of one column, for values encoded per row."""
        return _quote(name) + ":"

    def is_text(self, name: str) -> bool:
        """Whether a JSON value for `name` is written as a string (JSON-text column) rather than as JSON."""
        return self._modes[name] == "text"

    def finish(self, body: str) -> str:
        """A whole row from the concatenated segments (which end with a comma)."""
        line = "{" + body + self._constant
        if self._billed:
            return f'{line},"_BilledSize":{len(line) + 16}.0}}'
        return line + "}"


def _empty(column: dict[str, Any]) -> object:
    """What an unset column holds in a query result: empty text, or null for typed columns."""
    if column["type"] == "string":
        return "[]" if column.get("json_text") else ""
    return None


#: Columns written per row, grouped by what they depend on (the groups are cached segments).
_PER_ROW = (
    "TimeGenerated",
    "CreatedDateTime",
    "Id",
    "OriginalRequestId",
    "CorrelationId",
    "UniqueTokenIdentifier",
    "IPAddress",
    "AutonomousSystemNumber",
    "SessionId",
    "UserAgent",
)
_PER_USER = ("UserPrincipalName", "AlternateSignInName", "UserId", "UserDisplayName", "Identity")
_PER_PLACE = ("Location", "LocationDetails")
_PER_NAMED = ("NetworkLocationDetails",)
_PER_TARGET = ("AppId", "AppDisplayName", "ResourceDisplayName", "ResourceIdentity", "ResourceServicePrincipalId")
_PER_DEVICE = ("DeviceDetail",)
_PER_OUTCOME = (
    "ClientAppUsed",
    "AuthenticationProtocol",
    "IncomingTokenType",
    "ResultType",
    "ResultDescription",
    "Status",
    "AuthenticationRequirement",
    "AuthenticationMethodsUsed",
    "MfaDetail",
    "ConditionalAccessStatus",
    "ConditionalAccessPolicies",
    "TokenProtectionStatusDetails",
    "RiskLevelDuringSignIn",
    "RiskLevelAggregated",
    "RiskState",
    "RiskDetail",
    "RiskEventTypes",
    "RiskEventTypes_V2",
    "IsRisky",
    "IsInteractive",
    "AuthenticationDetails",
)
_SIGNIN_VARIABLE = (*_PER_ROW, *_PER_USER, *_PER_PLACE, *_PER_NAMED, *_PER_TARGET, *_PER_DEVICE, *_PER_OUTCOME)


class SigninRows:
    """Sign-in events of a tenant -> lines of SigninLogs and AADNonInteractiveUserSignInLogs."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.last_token = ""  # the UniqueTokenIdentifier of the row `line` wrote last (workloads tie to it)
        common: dict[str, object] = {
            "TenantId": tenant.workspace.workspace_id,
            "AADTenantId": tenant.tenant_id,
            "SourceSystem": "Azure AD",
            "OperationName": "Sign-in activity",
            "OperationVersion": "1.0",
            "Level": "4",
            "ResourceGroup": "Microsoft.aadiam",
            "HomeTenantId": tenant.tenant_id,
            "ResourceTenantId": tenant.tenant_id,
            "AppOwnerTenantId": MICROSOFT_SERVICES_TENANT,
            "ResourceOwnerTenantId": MICROSOFT_SERVICES_TENANT,
            "UserType": "Member",
            "TokenIssuerType": "AzureAD",
            "CrossTenantAccessType": "none",
            "IsTenantRestricted": False,
            "IsThroughGlobalSecureAccess": False,
            "ClientCredentialType": "none",
            "ResultSignature": "None",
            "DurationMs": 0,
            "OriginalTransferMethod": "none",
            "SignInIdentifierType": "userPrincipalName",
            "Agent": '{"agentType":"notAgentic","agentSubjectType":"notAgentic"}',
            "AppliedEventListeners": "[]",
            "AuthenticationProcessingDetails": '[{"key":"Legacy TLS (TLS 1.0, 1.1, 3DES)","value":"False"},{"key":"Is CAE Token","value":"False"}]',
            "_IsBillable": "True",
        }
        interactive = {
            **common,
            "Category": "SignInLogs",
            "Type": Table.INTERACTIVE.value,
            "Resource": "Microsoft.aadiam",
            "ResourceProvider": "Microsoft.aadiam",
            "ResourceId": f"/tenants/{tenant.tenant_id}/providers/Microsoft.aadiam",
            "FlaggedForReview": False,
            "ProcessingTimeInMilliseconds": "0",
        }
        non_interactive = {
            **common,
            "Category": "NonInteractiveUserSignInLogs",
            "Type": Table.NON_INTERACTIVE.value,
            "ProcessingTimeInMs": "0",
            "SignInEventTypes": '["nonInteractiveUser"]',
        }
        self._encoders = (
            RowEncoder(Table.NON_INTERACTIVE.value, non_interactive, _SIGNIN_VARIABLE),
            RowEncoder(Table.INTERACTIVE.value, interactive, (*_SIGNIN_VARIABLE, "SignInIdentifier")),
        )
        self._keys = tuple(tuple(encoder.key(name) for name in _PER_ROW) for encoder in self._encoders)
        self._cache: dict[tuple[object, ...], str] = {}
        self._outcomes: dict[tuple[object, ...], list[str]] = {}
        self._service_principals: dict[str, str] = {}

    @property
    def interactive(self) -> RowEncoder:
        return self._encoders[1]

    @property
    def non_interactive(self) -> RowEncoder:
        return self._encoders[0]

    def line(self, user: User, event: SignIn, rng: random.Random) -> tuple[bool, str]:
        """(interactive?, JSON line) for one event; `rng` draws the row's own identifiers."""
        table = 1 if event.interactive else 0
        encoder = self._encoders[table]
        k = self._keys[table]
        when = _quote(iso(event.time))
        request = ids.guid(rng)
        correlation = ids.guid(rng)
        self.last_token = ids.token_identifier(rng)
        egress = event.egress
        outcome = self._outcome(table, event)
        body = (
            f'{k[0]}{when},{k[1]}{when},{k[2]}"{request}",{k[3]}"{request}",'
            f'{k[4]}"{correlation}",{k[5]}"{self.last_token}",'
            f'{k[6]}{_quote(egress.ip)},{k[7]}"{egress.asn}",{k[8]}"{event.session_id}",{k[9]}{_quote(event.user_agent)},'
            f"{self._user(table, user)}{self._place(table, egress.place)}{self._named(table, egress.named_location)}"
            f"{self._target(table, event.app, event.resource)}{self._device(table, event.device)}"
            f"{when[1:-2].join(outcome)}"
        )
        return event.interactive, encoder.finish(body)

    def _segment(self, key: tuple[object, ...], table: int, build: Callable[[], dict[str, object]]) -> str:
        found = self._cache.get(key)
        if found is None:
            found = self._encoders[table].segment(build())
            self._cache[key] = found
        return found

    def _user(self, table: int, user: User) -> str:
        def build() -> dict[str, object]:
            values: dict[str, object] = {
                "UserPrincipalName": user.upn,
                "AlternateSignInName": user.upn,
                "UserId": user.user_id,
                "UserDisplayName": user.display_name,
                "Identity": user.display_name,
            }
            if table:
                values["SignInIdentifier"] = user.upn
            return values

        return self._segment(("user", table, user.upn, user.user_id), table, build)

    def _place(self, table: int, place: Place) -> str:
        def build() -> dict[str, object]:
            details = {
                "city": place.city,
                "state": place.state,
                "countryOrRegion": place.country,
                "geoCoordinates": {"latitude": place.latitude, "longitude": place.longitude},
            }
            return {"Location": place.country, "LocationDetails": _DUMPS(details)}

        return self._segment(("place", table, place), table, build)

    def _named(self, table: int, name: str) -> str:
        def build() -> dict[str, object]:
            text = _DUMPS([{"networkType": "trustedNamedLocation", "networkNames": [name]}]) if name else "[]"
            return {"NetworkLocationDetails": text}

        return self._segment(("named", table, name), table, build)

    def _target(self, table: int, app: App, resource: Resource) -> str:
        def build() -> dict[str, object]:
            return {
                "AppId": app.app_id,
                "AppDisplayName": app.name,
                "ResourceDisplayName": resource.name,
                "ResourceIdentity": resource.resource_id,
                "ResourceServicePrincipalId": self._service_principal(resource),
            }

        return self._segment(("target", table, app, resource), table, build)

    def _device(self, table: int, device: Device) -> str:
        def build() -> dict[str, object]:
            detail: dict[str, object] = {
                "deviceId": device.device_id,
                "displayName": device.name,
                "operatingSystem": device.operating_system,
                "browser": device.browser,
                "isCompliant": device.compliant,
                "isManaged": device.managed,
            }
            if device.trust_type:
                detail["trustType"] = device.trust_type
            return {"DeviceDetail": _DUMPS(detail)}

        return self._segment(("device", table, device), table, build)

    def _outcome(self, table: int, event: SignIn) -> list[str]:
        """How the sign-in went, split around the authentication step time (the one per-row value inside it)."""
        auth, result = event.auth, event.result
        key = (
            "outcome",
            table,
            auth,
            result,
            event.client_app,
            event.protocol,
            event.incoming,
            event.binding,
            event.risk_level,
            event.risk_events,
        )
        parts = self._outcomes.get(key)
        if parts is None:
            risky = event.risk_level not in ("none", "low")
            risk_events = _DUMPS(list(event.risk_events))
            status = _ca_status(auth, result)
            found = self._encoders[table].segment(
                {
                    "ClientAppUsed": event.client_app,
                    "AuthenticationProtocol": event.protocol,
                    "IncomingTokenType": event.incoming,
                    "ResultType": result,
                    "ResultDescription": catalog.RESULT_DESCRIPTIONS.get(result, ""),
                    "Status": _status(auth, result),
                    "AuthenticationRequirement": "singleFactorAuthentication"
                    if auth in (Auth.CLAIM_SINGLE_FACTOR, Auth.WRONG_CREDENTIALS)
                    else "multiFactorAuthentication",
                    "AuthenticationMethodsUsed": _methods(auth),
                    "MfaDetail": '{"authMethod":"Mobile app notification"}' if auth == Auth.MFA else "{}",
                    "ConditionalAccessStatus": status,
                    "ConditionalAccessPolicies": _ca_policies(status),
                    "TokenProtectionStatusDetails": _token_protection(event.binding),
                    "RiskLevelDuringSignIn": event.risk_level,
                    "RiskLevelAggregated": event.risk_level,
                    "RiskState": "atRisk" if risky else "none",
                    "RiskDetail": "none",
                    "RiskEventTypes": risk_events,
                    "RiskEventTypes_V2": risk_events,
                    "IsRisky": risky,
                    "IsInteractive": event.interactive,
                    "AuthenticationDetails": _auth_steps(auth),
                }
            )
            parts = found.split(_STEP_TIME)
            self._outcomes[key] = parts
        return parts

    def _service_principal(self, resource: Resource) -> str:
        """The tenant's service principal of a first-party resource: one id per (tenant, resource), whatever the row order."""
        found = self._service_principals.get(resource.resource_id)
        if found is None:
            found = ids.guid(ids.generator(self.tenant.seed, "service-principal", resource.resource_id))
            self._service_principals[resource.resource_id] = found
        return found


def _auth_steps(auth: Auth) -> str:
    steps = []
    for sequence, (method, detail, outcome, succeeded) in enumerate(_AUTH_STEPS[auth]):
        steps.append(
            {
                "authenticationStepDateTime": _STEP_TIME + "0000+00:00",
                "authenticationMethod": method,
                "authenticationMethodDetail": detail,
                "succeeded": succeeded,
                "authenticationStepResultDetail": outcome,
                "authenticationStepRequirement": "Primary authentication" if sequence == 0 else "Multifactor authentication",
                "StatusSequence": 0,
                "RequestSequence": 0 if method == "Previously satisfied" else 1,
            }
        )
    return _DUMPS(steps)


def _status(auth: Auth, result: str) -> str:
    status: dict[str, object] = {"errorCode": int(result)}
    if result != "0":
        status["failureReason"] = catalog.RESULT_DESCRIPTIONS.get(result, "Other.")
    detail = _STATUS_DETAIL[auth]
    if detail:
        status["additionalDetails"] = detail
    return _DUMPS(status)


def _methods(auth: Auth) -> str:
    if auth == Auth.MFA:
        return '["Password","Mobile app notification"]'
    if auth == Auth.PASSWORDLESS:
        return '["Windows Hello for Business"]'
    if auth == Auth.WRONG_CREDENTIALS:
        return '["Password"]'
    return "[]"


def _ca_status(auth: Auth, result: str) -> str:
    if auth == Auth.BLOCKED:
        return "failure"
    if result != "0" and auth != Auth.CLAIM:
        return "notApplied"
    return "success"


_CA_POLICIES: dict[str, str] = {}


def _ca_policies(status: str) -> str:
    """The tenant's two Conditional Access policies and how each applied."""
    text = _CA_POLICIES.get(status)
    if text is None:
        text = _DUMPS(
            [
                {
                    "id": "6f5a1c5e-3b0e-4d7c-9a51-1f2a8e0c7b11",
                    "displayName": "CA001: Require MFA for all users",
                    "enforcedGrantControls": ["Mfa"],
                    "result": status,
                },
                {
                    "id": "a93c0f18-2d45-4e6b-8f07-3b1d6c2e9a55",
                    "displayName": "CA007: Require compliant device for admin portals",
                    "enforcedGrantControls": ["RequireCompliantDevice"],
                    "result": "failure" if status == "failure" else "notApplied",
                },
            ]
        )
        _CA_POLICIES[status] = text
    return text


def _token_protection(status: str) -> str:
    code = 0 if status == "bound" else 1002
    return f'{{"signInSessionStatus":"{status}","signInSessionStatusCode":{code}}}'


_ID_PREFIX = {"Core Directory": "Directory"}


class AuditRows:
    """Directory changes -> AuditLogs lines (few rows: plain full encoding)."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.columns = tuple(c["name"] for c in schema(AUDIT_TABLE))

    def line(self, event: AuditEvent, rng: random.Random) -> str:
        correlation = ids.guid(rng)
        when = iso(event.time)
        actor = event.actor
        if actor.app:
            initiated: dict[str, object] = {
                "app": {
                    "appId": actor.app_id or None,
                    "displayName": actor.app,
                    "servicePrincipalId": ids.guid(rng),
                    "servicePrincipalName": None,
                }
            }
            identity = actor.app
        else:
            initiated = {
                "user": {
                    "id": actor.user_id,
                    "displayName": None,
                    "userPrincipalName": actor.upn,
                    "ipAddress": actor.ip,
                    "roles": [],
                }
            }
            identity = actor.upn
        targets = []
        for target in event.targets:
            entry: dict[str, object] = {
                "id": target.target_id,
                "displayName": target.name,
                "type": target.kind,
                "modifiedProperties": [],
                "administrativeUnits": [],
            }
            if target.upn:
                entry["userPrincipalName"] = target.upn
            targets.append(entry)
        short = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(5))
        values: dict[str, object] = {
            "TenantId": self.tenant.workspace.workspace_id,
            "SourceSystem": "Azure AD",
            "TimeGenerated": when,
            "ResourceId": f"/tenants/{self.tenant.tenant_id}/providers/Microsoft.aadiam",
            "OperationName": event.operation,
            "OperationVersion": "1.0",
            "Category": event.category,
            "ResultType": "",
            "ResultSignature": "None",
            "ResultDescription": "",
            "DurationMs": 0,
            "CorrelationId": correlation,
            "Resource": "Microsoft.aadiam",
            "ResourceGroup": "Microsoft.aadiam",
            "ResourceProvider": "",
            "Identity": identity,
            "Level": "4",
            "Location": "",
            "AdditionalDetails": [{"key": key, "value": value} for key, value in event.details],
            "Id": f"{_ID_PREFIX.get(event.service, event.service)}_{correlation}_{short}_{rng.randrange(10**8, 10**9)}",
            "InitiatedBy": initiated,
            "LoggedByService": event.service,
            "Result": "success",
            "ResultReason": event.result_reason,
            "TargetResources": targets,
            "AADTenantId": self.tenant.tenant_id,
            "ActivityDisplayName": event.operation,
            "ActivityDateTime": when,
            "AADOperationType": event.operation_type,
            "Type": AUDIT_TABLE,
        }
        return json.dumps({name: values[name] for name in self.columns}, separators=(",", ":"))
