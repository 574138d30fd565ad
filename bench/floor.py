"""
The floor: what the product is measured against, in DuckDB alone.

* `answer`: the triage's four questions in hand-written DuckDB SQL over the cache file (evidence,
  baseline, context with the identity tables the cache holds, and, given suspect addresses, tokens or
  sessions, the scope over the activity tables it holds), returning the product's rows
  (`tests/service/test_bench_floor.py` checks that they are the same), with nothing in between:
  neither duckdb-kql nor our engine.
* `load`: DuckDB's own `read_json` / `read_csv` of the export files into a DuckDB file, auto-detecting
  everything: the floor of the loader.

The module imports only DuckDB and the standard library, so as a script it is also the smallest
process that answers the triage's questions, or loads the exports:

    .venv/bin/python bench/floor.py ask CACHE.duckdb USER AT [--before-hours 24] [--after-hours 6] [--baseline-days 14]
        [--suspect-ip IP ...] [--token-id ID ...] [--session-id ID ...]
    .venv/bin/python bench/floor.py load EXPORTS_FOLDER OUT.duckdb

`bench/near_floor.py` runs them beside the product.

The questions read the cache as the loader lays it out: each sign-in row keyed by `_user_key` (the
lower-case UPN) under an ART index, so the equality filter on `_user_key` fetches only the users' rows
(with the product's index-scan bound, `INDEX_SCAN_MAX_ROWS`), and each row's JSON columns parsed once.
The values follow the product's columns: strings never NULL, JSON fields as their text, 10-minute
bins, the per-user cut at `row_cap` + 1 groups nearest the incident (ties kept). The scope question
filters each activity table by the window, and by the accounts and operations where plain columns hold
them, before it reads JSON (CloudAppEvents names its user only in RawEventData); it reads all the
fields it needs from one JSON column in one `json_extract_string` call, and keeps a group's first
`SCOPE_SAMPLE_CAP` samples in the product's order (that of their JSON-quoted text).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

#: The tables a folder of exports may hold, as Log Analytics names them (`exports.KNOWN_TABLES`,
#: restated; tests/service/test_bench_floor.py fails if the two differ), and the folder of watchlists:
#: `load` reads every file the product's loader reads.
TABLES = (
    "SigninLogs",
    "AADNonInteractiveUserSignInLogs",
    "AuditLogs",
    "MicrosoftGraphActivityLogs",
    "OfficeActivity",
    "CloudAppEvents",
    "IdentityInfo",
    "AADRiskyUsers",
    "AADUserRiskEvents",
)
WATCHLISTS = "watchlists"
#: `exports.INDEX_SCAN_MAX_ROWS`, restated: the product's bound on rows fetched through the user index.
INDEX_SCAN_MAX_ROWS = 100_000

#: `enrichment.queries.kql.SECURITY_OPERATIONS`, restated: the floor imports nothing of ours, and
#: tests/service/test_bench_floor.py fails if the two ever answer differently.
SECURITY_OPERATIONS = (
    "User registered security info",
    "User registered all required security info",
    "User changed default security info",
    "User deleted security info",
    "Admin registered security info",
    "Admin updated security info",
    "Admin deleted security info",
    "Register device",
    "Add registered owner to device",
    "Add registered users to device",
    "Update StsRefreshTokenValidFrom Timestamp",
)


def _signins(table: str, columns: str) -> str:
    """One sign-in table in the window for the users, flattened (`columns` read `loc`, `dev`, `tp`, `auth`)."""
    return f"""
    SELECT TimeGenerated, '{table}' AS SourceTable, {columns}
    FROM (
        SELECT *, TRY_CAST(LocationDetails AS JSON) AS loc, TRY_CAST(DeviceDetail AS JSON) AS dev,
            TRY_CAST(TokenProtectionStatusDetails AS JSON) AS tp, TRY_CAST(AuthenticationDetails AS JSON) AS auth
        FROM "{table}"
        WHERE list_contains($keys, _user_key) AND TimeGenerated BETWEEN $start AND $end
            AND (list_contains($upns, lower(UserPrincipalName)) OR list_contains($ids, lower(UserId)))
    )"""


_WHO = "lower(coalesce(UserPrincipalName, '')) AS User, lower(coalesce(UserId, '')) AS UserId"

_EVIDENCE_COLUMNS = f"""{_WHO},
        coalesce(IPAddress, '') AS IPAddress, coalesce(AutonomousSystemNumber, '') AS Asn,
        coalesce(json_extract_string(loc, '$.countryOrRegion'), '') AS Country,
        coalesce(json_extract_string(loc, '$.city'), '') AS City,
        TRY_CAST(json_extract_string(loc, '$.geoCoordinates.latitude') AS DOUBLE) AS Latitude,
        TRY_CAST(json_extract_string(loc, '$.geoCoordinates.longitude') AS DOUBLE) AS Longitude,
        coalesce(SessionId, '') AS SessionId, coalesce(AppId, '') AS AppId, coalesce(AppDisplayName, '') AS AppDisplayName,
        coalesce(ResourceIdentity, '') AS ResourceId, coalesce(ResourceDisplayName, '') AS ResourceDisplayName,
        coalesce(UserAgent, '') AS UserAgent, coalesce(ClientAppUsed, '') AS ClientAppUsed,
        coalesce(AuthenticationProtocol, '') AS AuthenticationProtocol, coalesce(IncomingTokenType, '') AS IncomingTokenType,
        coalesce(json_extract_string(dev, '$.deviceId'), '') AS DeviceId,
        coalesce(json_extract_string(dev, '$.displayName'), '') AS DeviceName,
        coalesce(json_extract_string(dev, '$.operatingSystem'), '') AS OperatingSystem,
        coalesce(json_extract_string(dev, '$.browser'), '') AS Browser,
        coalesce(json_extract_string(dev, '$.isCompliant'), '') AS IsCompliant,
        coalesce(json_extract_string(dev, '$.isManaged'), '') AS IsManaged,
        coalesce(json_extract_string(dev, '$.trustType'), '') AS TrustType,
        coalesce(ResultType, '') AS ResultType, coalesce(AuthenticationRequirement, '') AS AuthenticationRequirement,
        coalesce(json_extract_string(auth, '$[0].authenticationMethod'), '') AS AuthMethod,
        coalesce(AuthenticationDetails, '') ILIKE '%satisfied by claim in the token%'
            OR coalesce(AuthenticationDetails, '') ILIKE '%Previously satisfied%' AS TokenOnly,
        coalesce(json_extract_string(tp, '$.signInSessionStatus'), '') AS TokenProtection,
        coalesce(RiskLevelDuringSignIn, '') AS RiskLevel, coalesce(RiskEventTypes_V2, '') AS RiskEvents,
        coalesce(NetworkLocationDetails, '') AS NetworkLocations, coalesce(UniqueTokenIdentifier, '') AS TokenId"""

EVIDENCE = f"""
WITH groups AS (
    SELECT * EXCLUDE (Bin), abs(date_diff('second', $at, FirstSeen)) AS Distance
    FROM (
        SELECT * EXCLUDE (TimeGenerated, TokenId), floor(epoch(TimeGenerated) / 600) AS Bin, count(*) AS Count,
            min(TimeGenerated) AS FirstSeen, max(TimeGenerated) AS LastSeen, list_sort(list(DISTINCT TokenId))[1:4] AS TokenIds
        FROM ({_signins("SigninLogs", _EVIDENCE_COLUMNS)}
            UNION ALL {_signins("AADNonInteractiveUserSignInLogs", _EVIDENCE_COLUMNS)})
        GROUP BY ALL
    )
)
SELECT * EXCLUDE (Distance, Nearness)
FROM (SELECT *, rank() OVER (PARTITION BY User ORDER BY Distance) AS Nearness FROM groups)
WHERE Nearness <= $row_cap + 1
"""

_BASELINE_COLUMNS = f"""{_WHO},
        coalesce(IPAddress, '') AS IPAddress, coalesce(AutonomousSystemNumber, '') AS Asn,
        coalesce(json_extract_string(loc, '$.countryOrRegion'), '') AS Country, coalesce(AppId, '') AS AppId,
        coalesce(ResourceDisplayName, '') AS ResourceDisplayName, coalesce(UserAgent, '') AS UserAgent,
        coalesce(json_extract_string(dev, '$.deviceId'), '') AS DeviceId,
        coalesce(json_extract_string(dev, '$.isCompliant'), '') AS IsCompliant,
        coalesce(AuthenticationProtocol, '') AS AuthenticationProtocol"""

BASELINE = f"""
WITH signins AS MATERIALIZED (
    {_signins("SigninLogs", _BASELINE_COLUMNS)}
    UNION ALL {_signins("AADNonInteractiveUserSignInLogs", _BASELINE_COLUMNS)}
)
SELECT User, UserId, SourceTable, count(*) AS Events, count(DISTINCT date_trunc('day', TimeGenerated)) AS DaysActive,
    min(TimeGenerated) AS FirstSeen, max(TimeGenerated) AS LastSeen, count(DISTINCT IPAddress) AS DistinctIps,
    list(DISTINCT IPAddress) AS Ips, list(DISTINCT Asn) AS Asns, list(DISTINCT Country) AS Countries,
    list(DISTINCT AppId) AS AppIds, list(DISTINCT ResourceDisplayName) AS Resources, list(DISTINCT UserAgent) AS UserAgents,
    list(DISTINCT DeviceId) AS DeviceIds, list(DISTINCT CASE WHEN IsCompliant = 'true' THEN DeviceId ELSE '' END) AS CompliantDeviceIds,
    list(DISTINCT hour(TimeGenerated)) AS Hours, list(DISTINCT AuthenticationProtocol) AS AuthProtocols, 'table' AS Scope
FROM signins GROUP BY User, UserId, SourceTable
UNION ALL BY NAME
SELECT User, UserId, SourceTable, date_trunc('day', TimeGenerated)::TIMESTAMP AS Day, count(*) AS Events,
    count(DISTINCT IPAddress) AS DistinctIps, count(DISTINCT AppId) AS DistinctApps, count(DISTINCT Asn) AS DistinctAsns,
    'day' AS Scope
FROM signins GROUP BY ALL
"""

CONTEXT = f"""
SELECT 'audit' AS Kind, TimeGenerated, coalesce(OperationName, '') AS OperationName, coalesce(Result, '') AS Result,
    Actor, ActorIp, Target, Detail
FROM (
    SELECT TimeGenerated, OperationName, Result,
        lower(coalesce(json_extract_string(InitiatedBy, '$.user.userPrincipalName'), '')) AS Actor,
        coalesce(json_extract_string(InitiatedBy, '$.user.id'), '') AS ActorId,
        coalesce(json_extract_string(InitiatedBy, '$.user.ipAddress'), '') AS ActorIp,
        lower(coalesce(json_extract_string(TargetResources, '$[0].userPrincipalName'), '')) AS Target,
        coalesce(json_extract_string(TargetResources, '$[0].id'), '') AS TargetId,
        coalesce(json_extract_string(TargetResources, '$[0].displayName'), '') AS Detail
    FROM AuditLogs
    WHERE TimeGenerated BETWEEN $start AND $end
        AND lower(OperationName) IN ({", ".join("'" + op.lower() + "'" for op in SECURITY_OPERATIONS)})
)
WHERE list_contains($upns, Actor) OR list_contains($upns, Target)
    OR list_contains($ids, lower(ActorId)) OR list_contains($ids, lower(TargetId))
UNION ALL BY NAME
SELECT 'travel' AS Kind, lower(coalesce(UserPrincipalName, '')) AS User, upper(coalesce(Country, '')) AS Country,
    TRY_CAST(StartTime AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS StartTime, TRY_CAST(EndTime AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS EndTime
FROM Watchlists
WHERE WatchlistAlias = $watchlist AND list_contains($upns, lower(coalesce(UserPrincipalName, '')))
UNION ALL BY NAME
(SELECT 'presence' AS Kind, 'SigninLogs' AS SourceTable FROM SigninLogs WHERE TimeGenerated BETWEEN $start AND $end LIMIT 1)
UNION ALL BY NAME
(SELECT 'presence' AS Kind, 'AADNonInteractiveUserSignInLogs' AS SourceTable FROM AADNonInteractiveUserSignInLogs WHERE TimeGenerated BETWEEN $start AND $end LIMIT 1)
UNION ALL BY NAME
(SELECT 'presence' AS Kind, 'AuditLogs' AS SourceTable FROM AuditLogs WHERE TimeGenerated BETWEEN $start AND $end LIMIT 1)
"""

#: `enrichment.queries.kql.IDENTITY_LOOKBACK`, `RISK_LOOKBACK` and `RISK_DETECTIONS_CAP`, restated.
IDENTITY_LOOKBACK = timedelta(days=14)
RISK_LOOKBACK = timedelta(days=90)
RISK_DETECTIONS_CAP = 50

#: The context question's identity branches, by the optional table each reads: a workspace (or a
#: folder of exports) without the table answers neither its rows nor its coverage row.
IDENTITY_BRANCHES = {
    "IdentityInfo": """
SELECT 'identity' AS Kind, User, UserId, max(TimeGenerated) AS TimeGenerated,
    coalesce(arg_max(AccountDisplayName, TimeGenerated), '') AS DisplayName,
    coalesce(arg_max(Department, TimeGenerated), '') AS Department,
    coalesce(arg_max(JobTitle, TimeGenerated), '') AS JobTitle,
    coalesce(arg_max(Manager, TimeGenerated), '') AS Manager,
    arg_max(AssignedRoles, TimeGenerated) AS Roles
FROM (
    SELECT *, lower(coalesce(AccountUPN, '')) AS User, lower(coalesce(AccountObjectId, '')) AS UserId
    FROM IdentityInfo WHERE TimeGenerated BETWEEN $identity_since AND $end
)
WHERE list_contains($upns, User) OR list_contains($ids, UserId)
GROUP BY User, UserId
UNION ALL BY NAME
SELECT 'coverage' AS Kind, 'IdentityInfo' AS Source, count(*) AS Rows
FROM IdentityInfo WHERE TimeGenerated BETWEEN $identity_since AND $end
""",
    "AADRiskyUsers": """
SELECT 'risky_user' AS Kind, User, UserId, max(TimeGenerated) AS TimeGenerated,
    coalesce(arg_max(RiskLevel, TimeGenerated), '') AS RiskLevel,
    coalesce(arg_max(RiskState, TimeGenerated), '') AS RiskState,
    coalesce(arg_max(RiskDetail, TimeGenerated), '') AS RiskDetail
FROM (
    SELECT *, lower(coalesce(UserPrincipalName, '')) AS User, lower(coalesce(Id, '')) AS UserId
    FROM AADRiskyUsers WHERE TimeGenerated BETWEEN $risk_since AND $end
)
WHERE list_contains($upns, User) OR list_contains($ids, UserId)
GROUP BY User, UserId
UNION ALL BY NAME
SELECT 'coverage' AS Kind, 'AADRiskyUsers' AS Source, count(*) AS Rows
FROM AADRiskyUsers WHERE TimeGenerated BETWEEN $risk_since AND $end
""",
    "AADUserRiskEvents": f"""
SELECT 'risk_events' AS Kind, User, UserId,
    list_slice(list_reverse_sort(list(DISTINCT Detection)), 1, {RISK_DETECTIONS_CAP}) AS Detections
FROM (
    SELECT User, UserId, json_object(
        'detected', strftime(arg_max(DetectedDateTime, TimeGenerated), '%Y-%m-%dT%H:%M:%S.%f') || '0Z',
        'ip', coalesce(arg_max(IpAddress, TimeGenerated), ''),
        'kind', coalesce(arg_max(RiskEventType, TimeGenerated), ''),
        'level', coalesce(arg_max(RiskLevel, TimeGenerated), ''),
        'state', coalesce(arg_max(RiskState, TimeGenerated), ''))::VARCHAR AS Detection
    FROM (
        SELECT *, lower(coalesce(UserPrincipalName, '')) AS User, lower(coalesce(UserId, '')) AS UserId
        FROM AADUserRiskEvents WHERE TimeGenerated BETWEEN $risk_since AND $end
    )
    WHERE list_contains($upns, User) OR list_contains($ids, UserId)
    GROUP BY User, UserId, Id
)
GROUP BY User, UserId
UNION ALL BY NAME
SELECT 'coverage' AS Kind, 'AADUserRiskEvents' AS Source, count(*) AS Rows
FROM AADUserRiskEvents WHERE TimeGenerated BETWEEN $risk_since AND $end
""",
}


def context_sql(present: set[str]) -> str:
    """The context question over the tables the cache holds: audit, travel and each identity table present."""
    return "\nUNION ALL BY NAME\n".join([CONTEXT, *(sql for table, sql in IDENTITY_BRANCHES.items() if table in present)])


#: `enrichment.queries.kql.SCOPE_SAMPLE_CAP`, `SCOPE_TEXT_CAP`, the operations and the binding bounds, restated.
SCOPE_SAMPLE_CAP = 20
SCOPE_TEXT_CAP = 4000
RULE_OPERATIONS = (
    "New-InboxRule",
    "Set-InboxRule",
    "Enable-InboxRule",
    "Disable-InboxRule",
    "Remove-InboxRule",
    "UpdateInboxRules",
    "Set-Mailbox",
)
MAILBOX_OPERATIONS = (
    *RULE_OPERATIONS,
    "MailItemsAccessed",
    "Send",
    "SendAs",
    "SendOnBehalf",
    "SoftDelete",
    "HardDelete",
    "MoveToDeletedItems",
    "FileDownloaded",
    "FileSyncDownloadedFull",
    "FileSyncDownloadedPartial",
)
DIRECTORY_OPERATIONS = (
    "Consent to application",
    "Add delegated permission grant",
    "Add app role assignment to service principal",
    "Add service principal credentials",
    "Add member to role",
    "Add eligible member to role",
)
APPLICATION_CREDENTIALS = "Update application – Certificates and secrets management"
SCOPE_BINDING_CAP = 500
_ADDRESS = re.compile(r"^[0-9A-Fa-f:.]{2,45}$")
_TOKEN_ID = re.compile(r"^[A-Za-z0-9_\-=+/.]{1,128}$")
_SESSION_ID = re.compile(r"^[A-Za-z0-9_\-=+/.:{}]{1,128}$")


def _bounded(values: Sequence[str], shape: re.Pattern[str]) -> list[str]:
    """The distinct values of `shape`, sorted, at most `SCOPE_BINDING_CAP` (what the product binds)."""
    return sorted({v for v in values if v and shape.fullmatch(v)})[:SCOPE_BINDING_CAP]


def _lowered(values: Sequence[str]) -> str:
    return ", ".join("'" + value.lower().replace("'", "''") + "'" for value in values)


#: An event time as the product writes it in a sample: ISO 8601 with seven fractional digits.
_AT = "strftime(TimeGenerated, '%Y-%m-%dT%H:%M:%S.%f') || '0Z'"

#: The distinct samples of a group as the product returns them: a JSON array of the sample texts, the
#: first `SCOPE_SAMPLE_CAP` in the order of their JSON-quoted text.
_SAMPLES = f"to_json(list_sort(list(DISTINCT to_json(Sample)))[1:{SCOPE_SAMPLE_CAP}]) AS Samples"

_TOKEN_KEY = "CASE WHEN list_contains($tokens, TokenId) THEN TokenId ELSE '' END AS TokenKey"

_GRAPH = f"""
SELECT 'graph' AS Kind, 'MicrosoftGraphActivityLogs' AS Source, User, Ip, TokenKey, Method, Operation, Client, AppId,
    count(*) AS Count, coalesce(sum(ResponseSizeBytes), 0) AS Bytes, count(*) FILTER (WHERE ResponseStatusCode >= 400) AS Failures,
    min(TimeGenerated) AS FirstSeen, max(TimeGenerated) AS LastSeen, {_SAMPLES}
FROM (
    SELECT TimeGenerated, ResponseSizeBytes, ResponseStatusCode, lower(coalesce(UserId, '')) AS User, Ip, {_TOKEN_KEY}, Method,
        CASE WHEN contains(Path, '/messagerules') OR contains(Path, '/mailboxsettings') THEN 'mail_settings'
            WHEN contains(Path, '/sendmail') OR (Method = 'POST' AND (suffix(Path, '/send') OR suffix(Path, '/reply')
                OR suffix(Path, '/replyall') OR suffix(Path, '/forward'))) THEN 'mail_send'
            WHEN contains(Path, '/messages') OR contains(Path, '/mailfolders') THEN 'mail_read'
            WHEN contains(Path, '/drive') OR contains(Path, '/sites/') THEN 'files'
            WHEN contains(Path, '/applications') OR contains(Path, '/serviceprincipals') OR contains(Path, '/oauth2permissiongrants')
                OR contains(Path, '/approleassignments') THEN 'applications'
            WHEN contains(Path, '/users') OR contains(Path, '/groups') OR contains(Path, '/directoryroles')
                OR contains(Path, '/rolemanagement') OR contains(Path, '/organization') OR contains(Path, '/devices') THEN 'directory'
            ELSE 'other' END AS Operation,
        coalesce(UserAgent, '') AS Client, coalesce(AppId, '') AS AppId, json_object('path', substring(Path, 1, 300))::VARCHAR AS Sample
    FROM (
        SELECT *, lower(split_part(coalesce(RequestUri, ''), '?', 1)) AS Path, upper(coalesce(RequestMethod, '')) AS Method
        FROM (
            SELECT *, coalesce(IPAddress, '') AS Ip, coalesce(SignInActivityId, '') AS TokenId
            FROM MicrosoftGraphActivityLogs
            WHERE TimeGenerated BETWEEN $start AND $end AND list_contains($ids, lower(UserId))
        )
        WHERE list_contains($ips, Ip) OR list_contains($tokens, TokenId)
    )
)
GROUP BY ALL
"""


def _mailbox(source: str, rows: str) -> str:
    """
    One audit table's mailbox branch; `rows` selects its rows of the window for the users and the
    mailbox operations, with TimeGenerated, User, Operation, SessionId, TokenId, Cip (the client
    field), Client, AppId, Folders, Object, Mailbox, Parameters, Properties and Subject.
    """
    return f"""
SELECT 'mailbox' AS Kind, '{source}' AS Source, User, Ip, SessionId, TokenKey, Operation, Client, AppId, count(*) AS Count,
    coalesce(sum(Items), 0) AS Items, min(TimeGenerated) AS FirstSeen, max(TimeGenerated) AS LastSeen, {_SAMPLES}
FROM (
    SELECT TimeGenerated, User, Ip, SessionId, {_TOKEN_KEY}, Operation, Client, AppId,
        CASE WHEN lower(Operation) = 'mailitemsaccessed'
            THEN (length(Folders) - length(replace(Folders, '"Id":', ''))) // 5
                - (length(Folders) - length(replace(Folders, '"FolderItems":', ''))) // 14
            ELSE 1 END AS Items,
        CASE WHEN lower(Operation) IN ({_lowered(RULE_OPERATIONS)})
                THEN json_object('at', {_AT}, 'mailbox', Mailbox, 'object', Object,
                    'parameters', substring(Parameters, 1, {SCOPE_TEXT_CAP}), 'properties', substring(Properties, 1, {SCOPE_TEXT_CAP}))
            WHEN Operation ILIKE 'File%' THEN json_object('file', substring(Object, 1, 300))
            WHEN lower(Operation) = 'mailitemsaccessed' THEN json_object('access', substring(Properties, 1, 300))
            ELSE json_object('subject', substring(Subject, 1, 200)) END::VARCHAR AS Sample
    FROM (
        SELECT *, CASE WHEN starts_with(Cip, '[') THEN split_part(substring(Cip, 2), ']', 1)
                WHEN length(Cip) - length(replace(Cip, ':', '')) = 1 THEN split_part(Cip, ':', 1)
                ELSE Cip END AS Ip
        FROM ({rows})
    )
    WHERE list_contains($ips, Ip) OR list_contains($tokens, TokenId) OR (Ip = '' AND list_contains($sessions, SessionId))
)
GROUP BY ALL
"""


_OFFICE = _mailbox(
    "OfficeActivity",
    f"""
        SELECT TimeGenerated, lower(coalesce(UserId, '')) AS User, coalesce(Operation, '') AS Operation,
            coalesce(ctx[1], '') AS SessionId, coalesce(ctx[2], '') AS TokenId,
            coalesce(nullif(ClientIP, ''), nullif(Client_IPAddress, ''), nullif(ActorIpAddress, ''), '') AS Cip,
            coalesce(nullif(ClientInfoString, ''), nullif(UserAgent, ''), '') AS Client,
            coalesce(nullif(AppId, ''), nullif(ClientAppId, ''), '') AS AppId, coalesce(Folders, '') AS Folders,
            coalesce(nullif(OfficeObjectId, ''), nullif(SourceFileName, ''), '') AS Object,
            lower(coalesce(nullif(MailboxOwnerUPN, ''), nullif(UserId, ''), '')) AS Mailbox,
            coalesce(Parameters, '') AS Parameters, coalesce(OperationProperties ->> '$', '') AS Properties,
            coalesce(json_extract_string(TRY_CAST(Item AS JSON), '$.Subject'), '') AS Subject
        FROM (
            SELECT *, json_extract_string(AppAccessContext, ['$.AADSessionId', '$.UniqueTokenId']) AS ctx
            FROM OfficeActivity
            WHERE TimeGenerated BETWEEN $start AND $end AND list_contains($upns, lower(coalesce(UserId, '')))
                AND lower(Operation) IN ({_lowered(MAILBOX_OPERATIONS)})
        )""",
)

#: The fields of CloudAppEvents' RawEventData the mailbox branch reads, parsed in one pass per row.
_RAW = (
    "UserId",
    "AppAccessContext.AADSessionId",
    "AppAccessContext.UniqueTokenId",
    "ClientIP",
    "ClientIPAddress",
    "ClientInfoString",
    "AppId",
    "ClientAppId",
    "Folders",
    "ObjectId",
    "MailboxOwnerUPN",
    "Parameters",
    "OperationProperties",
    "Item.Subject",
)


def _raw(field: str) -> str:
    return f"raw[{_RAW.index(field) + 1}]"


_CLOUD_APP = _mailbox(
    "CloudAppEvents",
    f"""
        SELECT TimeGenerated, User, coalesce(ActionType, '') AS Operation,
            coalesce({_raw("AppAccessContext.AADSessionId")}, '') AS SessionId,
            coalesce({_raw("AppAccessContext.UniqueTokenId")}, '') AS TokenId,
            coalesce(nullif({_raw("ClientIP")}, ''), nullif({_raw("ClientIPAddress")}, ''), nullif(IPAddress, ''), '') AS Cip,
            coalesce(nullif({_raw("ClientInfoString")}, ''), nullif(UserAgent, ''), '') AS Client,
            coalesce(nullif({_raw("AppId")}, ''), nullif({_raw("ClientAppId")}, ''), '') AS AppId,
            coalesce({_raw("Folders")}, '') AS Folders,
            coalesce(nullif({_raw("ObjectId")}, ''), nullif(ObjectName, ''), '') AS Object,
            lower(coalesce(nullif({_raw("MailboxOwnerUPN")}, ''), nullif({_raw("UserId")}, ''), '')) AS Mailbox,
            coalesce({_raw("Parameters")}, '') AS Parameters, coalesce({_raw("OperationProperties")}, '') AS Properties,
            coalesce({_raw("Item.Subject")}, '') AS Subject
        FROM (
            SELECT *, lower(coalesce({_raw("UserId")}, '')) AS User
            FROM (
                SELECT *, json_extract_string(RawEventData, [{", ".join(f"'$.{field}'" for field in _RAW)}]) AS raw
                FROM CloudAppEvents
                WHERE TimeGenerated BETWEEN $start AND $end AND lower(ActionType) IN ({_lowered(MAILBOX_OPERATIONS)})
            )
        )
        WHERE list_contains($upns, User) OR list_contains($ids, lower(coalesce(AccountObjectId, '')))""",
)

_DIRECTORY = f"""
SELECT 'directory' AS Kind, 'AuditLogs' AS Source, User, Ip, Operation, count(*) AS Count,
    min(TimeGenerated) AS FirstSeen, max(TimeGenerated) AS LastSeen, {_SAMPLES}
FROM (
    SELECT TimeGenerated, User, Ip, Operation,
        json_object('at', {_AT}, 'detail', substring(coalesce(tgt[1], ''), 1, {SCOPE_TEXT_CAP}),
            'id', coalesce(tgt[2], ''), 'target', coalesce(tgt[3], ''))::VARCHAR AS Sample
    FROM (
        SELECT TimeGenerated, coalesce(OperationName, '') AS Operation, lower(coalesce(ini[1], '')) AS User,
            lower(coalesce(ini[2], '')) AS ActorId, coalesce(ini[3], '') AS Ip,
            json_extract_string(TargetResources, ['$[0].modifiedProperties', '$[0].id', '$[0].displayName']) AS tgt
        FROM (
            SELECT *, json_extract_string(InitiatedBy, ['$.user.userPrincipalName', '$.user.id', '$.user.ipAddress']) AS ini
            FROM AuditLogs
            WHERE TimeGenerated BETWEEN $start AND $end
                AND (lower(OperationName) IN ({_lowered(DIRECTORY_OPERATIONS)}) OR OperationName ILIKE '{APPLICATION_CREDENTIALS}%')
        )
    )
    WHERE (list_contains($upns, User) OR list_contains($ids, ActorId)) AND list_contains($ips, Ip)
)
GROUP BY ALL
"""

#: The scope question's branches, by the table each reads: like the product's fuzzy union, a cache
#: without the table answers neither the branch nor its coverage row.
SCOPE_BRANCHES = {
    "MicrosoftGraphActivityLogs": _GRAPH,
    "OfficeActivity": _OFFICE,
    "CloudAppEvents": _CLOUD_APP,
    "AuditLogs": _DIRECTORY,
}


def scope_sql(present: set[str]) -> str:
    """What the suspect sessions did, over the activity tables the cache holds: each one's rows and its coverage row."""
    return "\nUNION ALL BY NAME\n".join(
        part
        for table, sql in SCOPE_BRANCHES.items()
        if table in present
        for part in (
            sql,
            f"SELECT 'coverage' AS Kind, '{table}' AS Source, count(*) AS Rows FROM {table} WHERE TimeGenerated BETWEEN $start AND $end",
        )
    )


def suspect_keywords(request: Any) -> dict[str, list[str]]:
    """`answer`'s suspect keywords from a request shaped like the product's `gather.ScopeRequest` (not imported)."""
    return {
        "suspect_ips": sorted(request.suspect_ips),
        "token_ids": sorted(request.token_ids),
        "session_ids": sorted(request.session_ids),
    }


def connect(cache: str) -> duckdb.DuckDBPyConnection:
    """The cache file, read-only, in UTC (its times are UTC)."""
    con = duckdb.connect(cache, read_only=True)
    con.execute("SET TimeZone='UTC'")
    con.execute(f"SET index_scan_max_count={INDEX_SCAN_MAX_ROWS}")
    return con


def options(settings: Any) -> dict[str, Any]:
    """`answer`'s keyword arguments from an object with the product's setting names (`common.settings.Settings`)."""
    return {
        "before_hours": settings.window_before_hours,
        "after_hours": settings.window_after_hours,
        "baseline_days": settings.baseline_days,
        "row_cap": settings.row_cap,
        "watchlist": settings.travel_watchlist,
    }


def answer(
    con: duckdb.DuckDBPyConnection,
    upns: list[str],
    object_ids: list[str],
    at: datetime,
    *,
    before_hours: float = 24,
    after_hours: float = 6,
    baseline_days: float = 14,
    row_cap: int = 20_000,
    watchlist: str = "TravelRecords",
    suspect_ips: Sequence[str] = (),
    token_ids: Sequence[str] = (),
    session_ids: Sequence[str] = (),
) -> dict[str, list[dict[str, Any]]]:
    """
    The questions' rows for lower-case UPNs and object ids at `at` (aware), by question: evidence,
    baseline and context, and the scope of the suspect addresses, tokens and sessions when any is given
    (the product asks no scope question for an account without suspects).
    """
    naive = at.astimezone(UTC).replace(tzinfo=None)
    start, end = naive - timedelta(hours=before_hours), naive + timedelta(hours=after_hours)
    keys = {
        row[0]
        for row in con.execute(
            "SELECT user_key FROM _triage_users WHERE list_contains($ids, user_id)", {"ids": object_ids}
        ).fetchall()
    }
    people = {"keys": sorted(keys | set(upns)), "upns": upns, "ids": object_ids}
    present = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    asked = {
        "evidence": (EVIDENCE, {**people, "start": start, "end": end, "at": naive, "row_cap": row_cap}),
        "baseline": (BASELINE, {**people, "start": start - timedelta(days=baseline_days), "end": start}),
        "context": (
            context_sql(present),
            {
                "upns": upns,
                "ids": object_ids,
                "start": start,
                "end": end,
                "watchlist": watchlist,
                "identity_since": end - IDENTITY_LOOKBACK,
                "risk_since": end - RISK_LOOKBACK,
            },
        ),
    }
    if suspect_ips or token_ids or session_ids:
        asked["scope"] = (
            scope_sql(present),
            {
                "upns": upns,
                "ids": object_ids,
                "start": start,
                "end": end,
                "ips": _bounded(suspect_ips, _ADDRESS),
                "tokens": _bounded(token_ids, _TOKEN_ID),
                "sessions": _bounded(session_ids, _SESSION_ID),
            },
        )
    out: dict[str, list[dict[str, Any]]] = {}
    for name, (sql, values) in asked.items():
        cursor = con.execute(sql, {key: value for key, value in values.items() if f"${key}" in sql})
        columns = [column[0] for column in cursor.description or ()]
        out[name] = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    return out


def load(folder: Path, database: Path, *, resampled: list[str] | None = None) -> dict[str, int]:
    """
    Every `<Table>.*` export of `folder`, and every watchlist in its `watchlists/` folder, read by
    DuckDB with its defaults into a table of `database`; rows per table.

    DuckDB guesses each column's type from the first rows of a file; where a later row does not fit
    the guess (at 50,000 users, a column of ids that holds an empty string after the sampled rows),
    its read fails, and the file is read again with every row sampled (`sample_size=-1`). Those
    tables are appended to `resampled`: their floor includes the failed read and a second pass.
    """
    files = [(path.name.partition(".")[0], path) for path in sorted(folder.iterdir())]
    files = [(table, path) for table, path in files if path.is_file() and table in TABLES and "." in path.name]
    if (folder / WATCHLISTS).is_dir():
        files += [(f"watchlist_{path.stem}", path) for path in sorted((folder / WATCHLISTS).iterdir()) if path.is_file()]
    rows: dict[str, int] = {}
    with duckdb.connect(str(database)) as con:
        for table, path in files:
            reader = "read_csv" if ".csv" in path.name else "read_json"
            try:
                con.execute(f'CREATE TABLE "{table}" AS SELECT * FROM {reader}(?)', [str(path)])
            except duckdb.InvalidInputException:
                con.execute(f'DROP TABLE IF EXISTS "{table}"')
                con.execute(f'CREATE TABLE "{table}" AS SELECT * FROM {reader}(?, sample_size=-1)', [str(path)])
                if resampled is not None:
                    resampled.append(table)
            found = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()
            rows[table] = int(found[0]) if found else 0
        con.execute("CHECKPOINT")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    ask = commands.add_parser("ask", help="the questions for one user at one time, over a cache file")
    ask.add_argument("cache")
    ask.add_argument("user", help="a UPN (or an object id)")
    ask.add_argument("at", help="ISO 8601 time")
    ask.add_argument("--before-hours", type=float, default=24)
    ask.add_argument("--after-hours", type=float, default=6)
    ask.add_argument("--baseline-days", type=float, default=14)
    ask.add_argument("--suspect-ip", action="append", default=[], help="a suspect address (repeatable): asks the scope question")
    ask.add_argument("--token-id", action="append", default=[], help="a suspect sign-in's token id (repeatable)")
    ask.add_argument("--session-id", action="append", default=[], help="a suspect sign-in's session id (repeatable)")
    loading = commands.add_parser("load", help="DuckDB's own read of the exports into a DuckDB file")
    loading.add_argument("folder", type=Path)
    loading.add_argument("database", type=Path)
    args = parser.parse_args()
    started = time.perf_counter()
    if args.command == "load":
        counted = load(args.folder, args.database)
        print(" ".join(f"{table}={rows}" for table, rows in counted.items()), f"{time.perf_counter() - started:.3f}s")
        return 0
    at = datetime.fromisoformat(args.at.replace("Z", "+00:00"))
    user = args.user.lower()
    upns, ids = ([user], []) if "@" in user else ([], [user])
    with connect(args.cache) as con:
        found = answer(
            con,
            upns,
            ids,
            at,
            before_hours=args.before_hours,
            after_hours=args.after_hours,
            baseline_days=args.baseline_days,
            suspect_ips=args.suspect_ip,
            token_ids=args.token_id,
            session_ids=args.session_id,
        )
    print(" ".join(f"{name}={len(rows)}" for name, rows in found.items()), f"{time.perf_counter() - started:.3f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
