"""
Pivots: the KQL an analyst runs to see the evidence for themselves, and the links that open it.

The query reproduces what the score rests on: every sign-in, in both tables, of the lifted sessions
and of the suspect addresses, with the SessionId and UniqueTokenIdentifier of each row. It is built by
the rules of `enrichment.queries.kql` (validated identifiers, `string_literal` for every string,
`datetime()` anchors, never `ago()`), so a hostile session id or address cannot change its shape, and
the same text runs on Log Analytics and on the embedded engine.

Links: Log Analytics (the portal's "link to query" form: the query gzip-compressed, base64-encoded and
URL-encoded into the path, with the workspace's resource id and the window as an ISO 8601 interval),
Defender advanced hunting (the query as UTF-16LE, gzip, base64url in `query=`; Sentinel's tables are
there when the workspace is connected to the Defender portal) and the user's Entra sign-in logs.
"""

from __future__ import annotations

import base64
import gzip
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from enrichment.domain.model import Account, Table, TimeWindow
from enrichment.queries.kql import InvalidQueryInput, datetime_literal, string_literal, validate_object_id, validate_upn

#: Most sessions and addresses one pivot names: beyond that the query would be a dump, not a pivot.
PIVOT_VALUES = 50

# SessionIds are GUIDs in Entra's logs; anything else of printable, quote-free text up to 128
# characters is still escaped, never pasted.
_SESSION = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_ARM_ID = re.compile(
    r"^/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[-\w.()]{1,90}/providers/Microsoft\.OperationalInsights/workspaces/[A-Za-z0-9-]{4,63}$"
)
_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")

_COLUMNS = (
    "TimeGenerated, SourceTable, IPAddress, AutonomousSystemNumber, Location, AppDisplayName, ResourceDisplayName,"
    " UserAgent, SessionId, UniqueTokenIdentifier, ResultType, DeviceDetail = tostring(DeviceDetail),"
    " AuthenticationRequirement"
)


@dataclass(frozen=True, slots=True)
class Pivot:
    """The evidence query and the links that open it; a link is "" when its target cannot be named."""

    query: str
    log_analytics: str = ""
    advanced_hunting: str = ""
    entra_signins: str = ""


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError as error:
        msg = f"not an IP address: {value!r}"
        raise InvalidQueryInput(msg) from error


def _session(value: str) -> str:
    if not _SESSION.fullmatch(value):
        msg = f"not a session id: {value!r}"
        raise InvalidQueryInput(msg)
    return value


def _capped(values: Iterable[str]) -> list[str]:
    return sorted(dict.fromkeys(values))[:PIVOT_VALUES]


def pivot_query(account: Account, window: TimeWindow, *, session_ids: Iterable[str], ips: Iterable[str]) -> str:
    """
    Both sign-in tables for `account` in `window`, limited to the sessions and addresses given.

    Raises `InvalidQueryInput` for a value that is not what it claims to be; with neither a session
    nor an address the query would be the user's whole window, so that is refused too.
    """
    sessions = _capped(_session(s) for s in session_ids if s)
    addresses = _capped(_ip(ip) for ip in ips if ip)
    if not sessions and not addresses:
        msg = "a pivot needs a session id or an address"
        raise InvalidQueryInput(msg)
    users = []
    if account.upn:
        users.append(f"UserPrincipalName =~ {string_literal(validate_upn(account.upn))}")
    if account.object_id:
        users.append(f"UserId =~ {string_literal(validate_object_id(account.object_id))}")
    if not users:
        msg = "a pivot needs the account's UPN or object id"
        raise InvalidQueryInput(msg)
    scope = []
    if sessions:
        scope.append(f"SessionId in ({', '.join(map(string_literal, sessions))})")
    if addresses:
        scope.append(f"IPAddress in ({', '.join(map(string_literal, addresses))})")
    between = f"TimeGenerated between ({datetime_literal(window.start)} .. {datetime_literal(window.end)})"
    branches = [
        "\n".join(
            (
                f"    ({table.value}",
                f"    | where {between}",
                f"    | where {' or '.join(users)}",
                f"    | where {' or '.join(scope)}",
                f"    | extend SourceTable = {string_literal(table.value)}",
                f"    | project {_COLUMNS})",
            )
        )
        for table in (Table.INTERACTIVE, Table.NON_INTERACTIVE)
    ]
    return "\n".join(("union", branches[0] + ",", branches[1], "| order by TimeGenerated asc"))


def log_analytics_link(query: str, workspace_resource_id: str, window: TimeWindow, *, tenant_id: str = "") -> str:
    """
    The Azure portal's link that opens `query` in the workspace's Logs blade over `window`.

    The query travels gzip-compressed and base64-encoded in a path segment, URL-encoded twice as the
    portal's own "Copy link to query" does (so `/`, `+` and `=` survive the portal's decoding).
    """
    if not _ARM_ID.fullmatch(workspace_resource_id):
        return ""
    tenant = f"@{tenant_id.lower()}/" if _GUID.fullmatch(tenant_id) else ""
    encoded = base64.b64encode(gzip.compress(query.encode("utf-8"), mtime=0)).decode("ascii")
    timespan = f"{_iso(window.start)}/{_iso(window.end)}"
    return (
        f"https://portal.azure.com/#{tenant}blade/Microsoft_Azure_Monitoring_Logs/LogsBlade/resourceId/"
        f"{quote(workspace_resource_id, safe='')}/source/LogsBlade.AnalyticsShareLinkToQuery/q/"
        f"{quote(quote(encoded, safe=''), safe='')}/timespan/{quote(timespan, safe='')}"
    )


def advanced_hunting_link(query: str) -> str:
    """The Defender portal's advanced hunting with `query` loaded (its own time filters apply)."""
    packed = gzip.compress(query.encode("utf-16-le"), mtime=0)
    encoded = base64.urlsafe_b64encode(packed).decode("ascii").rstrip("=")
    return f"https://security.microsoft.com/v2/advanced-hunting?query={encoded}&timeRangeId=month"


def entra_signins_link(object_id: str) -> str:
    """The user's sign-in logs in the Entra admin center ("" without a valid object id)."""
    if not _GUID.fullmatch(object_id):
        return ""
    return f"https://entra.microsoft.com/#view/Microsoft_AAD_UsersAndTenants/UserProfileMenuBlade/~/SignIns/userId/{object_id.lower()}"


def _iso(moment: datetime) -> str:
    return datetime_literal(moment)[len("datetime(") : -1]


def pivot(
    account: Account,
    window: TimeWindow,
    *,
    session_ids: Iterable[str],
    ips: Iterable[str],
    workspace_resource_id: str = "",
    tenant_id: str = "",
) -> Pivot | None:
    """The query and its links, or None when there is nothing to pivot on (no session, no address)."""
    sessions, addresses = list(session_ids), list(ips)
    if not any(sessions) and not any(addresses):
        return None
    query = pivot_query(account, window, session_ids=sessions, ips=addresses)
    return Pivot(
        query=query,
        log_analytics=log_analytics_link(query, workspace_resource_id, window, tenant_id=tenant_id),
        advanced_hunting=advanced_hunting_link(query),
        entra_signins=entra_signins_link(account.object_id),
    )
