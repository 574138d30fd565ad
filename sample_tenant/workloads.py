"""
What the sign-ins were for: Microsoft 365 audit, Graph requests and the identity tables of the sample tenant.

Everyone's own sign-ins leave mailbox audit behind them (mail read through Outlook, mail sent, files
downloaded) and, for people with their own Graph-using apps, Graph requests, each carrying the
session and the token of the sign-in it used, as Exchange and Graph record them. Some people make
their own inbox rules from their laptop, forward mail to a personal address, or consent to an app:
the look-alikes a triage must never pin on an attacker.

The attack families' stolen sessions do what business-email-compromise crews do (Microsoft's
token-theft playbook): an inbox rule that hides replies, forwarding to an outside address, the mailbox
read in bulk through Graph with the stolen tokens, mail sent, and for device-code phishing consent to
an application. The rows carry the attacker's address (with the port Exchange writes), the replayed
session and the token of the attacker's own sign-in, so the scope question can tie them.

The identity tables: IdentityInfo (Microsoft Sentinel UEBA's weekly snapshot of each account),
AADRiskyUsers and AADUserRiskEvents (Entra ID Protection, from the risky sign-ins).

Every draw comes from this module's own generator per user, so adding these tables left every other
table of a tenant byte-identical. Rows carry every column of their table, as an export does.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sample_tenant import catalog, ids
from sample_tenant.activity import Simulation
from sample_tenant.events import DAY, HOUR, MINUTE, Actor, AuditEvent, Role, SignIn, Target, iso
from sample_tenant.records import schema
from sample_tenant.scenarios import Family, Kind, Scenario
from sample_tenant.tenant import Tenant, User

OFFICE_TABLE = "OfficeActivity"
GRAPH_TABLE = "MicrosoftGraphActivityLogs"
IDENTITY_TABLE = "IdentityInfo"
RISKY_USERS_TABLE = "AADRiskyUsers"
RISK_EVENTS_TABLE = "AADUserRiskEvents"
#: The tables this module writes, in the order files are listed.
WORKLOAD_TABLES = (OFFICE_TABLE, GRAPH_TABLE, IDENTITY_TABLE, RISKY_USERS_TABLE, RISK_EVENTS_TABLE)

_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode
#: Share of people whose own apps call Graph (a reporting script, a sync tool, Power Automate).
OWN_GRAPH_SHARE = 0.25
#: Share of people who make an inbox rule of their own in the period; people in a scenario (victims and
#: look-alikes) more often, on the incident's day.
OWN_RULE_SHARE = 0.05
OWN_RULE_SHARE_IN_SCENARIO = 0.5
#: Share of people with an older risk detection they cleared themselves.
CLEARED_RISK_SHARE = 0.08
#: The most mail-access records one person leaves per day, one per session and four hours at most
#: (Exchange aggregates them per session); enough to read as a mailbox in use, few enough to stay light.
MAIL_RECORDS_PER_DAY = 4
_MAIL_BLOCK = 4 * HOUR

_DEPARTMENTS = (
    ("Finance", ("Accountant", "Financial Controller", "Accounts Payable Specialist", "CFO")),
    ("Sales", ("Account Executive", "Sales Manager", "Inside Sales Representative")),
    ("Engineering", ("Software Engineer", "Site Reliability Engineer", "Engineering Manager")),
    ("Human Resources", ("HR Business Partner", "Recruiter")),
    ("Operations", ("Operations Analyst", "Logistics Coordinator")),
    ("Legal", ("Counsel", "Paralegal")),
)
_ADMIN_ROLES = (
    ("Global Administrator",),
    ("Exchange Administrator", "User Administrator"),
    ("Security Administrator",),
    ("Application Administrator", "Reports Reader"),
)
_HIDING_FOLDERS = ("RSS Subscriptions", "Conversation History", "RSS Feeds", "Archive")
_HIDING_NAMES = (".", "..", ",", "RSS", "x", "Archive")
_HIDING_WORDS = (
    "invoice;payment;wire;bank details",
    "security;phish;hacked;compromised;suspicious",
    "purchase order;remittance;overdue",
)
_EXFIL_DOMAINS = ("mailbox-sync.example", "secure-docs.example", "proton-relay.example")
_PERSONAL_DOMAINS = ("outlook.example", "gmail.example", "icloud.example")
_CONSENT_APPS = ("Mail Backup Sync", "PDF Signer Pro", "Secure Doc Viewer")
_SUBJECTS = ("Re: Q3 forecast", "Meeting notes", "Updated contract", "Re: travel booking", "Weekly report")
_ATTACKER_SUBJECTS = ("Updated banking details", "Urgent: invoice payment", "Shared document: please review")
_FILES = ("Q3 forecast.xlsx", "Board deck.pptx", "Contract draft.docx", "Payroll export.csv", "Roadmap.pdf")
_OWN_GRAPH_AGENTS = ("Microsoft Graph PowerShell/2.25.0", "python-requests/2.31.0", "Mozilla/5.0 Power Automate")
_RISK_ORDER = ("none", "low", "medium", "high")
_MAILBOX_APPS = {catalog.ONE_OUTLOOK_WEB.app_id, catalog.OUTLOOK_MOBILE.app_id, catalog.OFFICE.app_id}


@dataclass(frozen=True, slots=True)
class Used:
    """One sign-in as written, with the UniqueTokenIdentifier its row carries."""

    event: SignIn
    token: str


@dataclass(slots=True)
class UserRows:
    """One person's rows per table (JSON lines) and the directory changes to add to their AuditLogs."""

    lines: dict[str, list[str]] = field(default_factory=lambda: {table: [] for table in WORKLOAD_TABLES})
    audits: list[AuditEvent] = field(default_factory=list)


def _client_ip(ip: str, rng: random.Random) -> str:
    """The address as an Exchange cmdlet's audit writes it: with the client's port (IPv6 in brackets)."""
    port = rng.randrange(1024, 65535)
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _parameters(**values: str) -> str:
    return _DUMPS([{"Name": name, "Value": value} for name, value in values.items()])


class Workloads:
    """Workload rows for one tenant, person by person (see the module docstring)."""

    def __init__(self, tenant: Tenant, seed: int) -> None:
        self.tenant = tenant
        self.seed = seed
        self._empty = {
            table: {c["name"]: "" if c["type"] == "string" else None for c in schema(table)} for table in WORKLOAD_TABLES
        }

    def _row(self, table: str, values: dict[str, Any]) -> str:
        """A whole row of `table`: every schema column, in schema order (readers learn a file's columns from its first rows)."""
        row = dict(self._empty[table])
        unknown = set(values) - set(row)
        if unknown:
            msg = f"{table} has no column(s) {', '.join(sorted(unknown))}"
            raise ValueError(msg)
        row.update(values)
        return _DUMPS(row)

    def user(
        self, user: User, used: Sequence[Used], scenario: Scenario | None, sim: Simulation, *, start: int, end: int
    ) -> UserRows:
        """Everything `user` leaves in the workload tables between `start` and `end`."""
        rng = ids.generator(self.seed, "workloads", user.index)
        rows = UserRows()
        own = [u for u in used if u.event.role is Role.USER and u.event.result == "0"]
        self._mailbox(user, own, rng, rows)
        if rng.random() < OWN_GRAPH_SHARE or user.admin_tools:
            self._own_graph(user, own, rng, rows)
        share = OWN_RULE_SHARE_IN_SCENARIO if scenario is not None else OWN_RULE_SHARE
        if own and rng.random() < share:
            # In a scenario the rule is made on the incident's day, so it sits in the evidence window beside the story.
            window = [u for u in own if scenario is not None and scenario.at - DAY <= u.event.time <= scenario.at]
            self._own_rule(user, window or own, rng, rows)
        self._identity(user, rng, start, end, rows)
        if scenario is not None and scenario.kind is Kind.ATTACK:
            stolen = [u for u in used if u.event.role is Role.ATTACKER and u.event.result == "0"]
            if stolen:
                self._attacker(user, scenario, stolen, rng, rows)
        self._risk(user, used, rng, rows)
        sim.audits.extend(rows.audits)
        return rows

    # -- rows -------------------------------------------------------------------------------------------

    def _office(self, user: User, time: int, operation: str, used: Used, client_ip: str, **fields: Any) -> str:
        event = used.event
        row: dict[str, Any] = {
            "TenantId": self.tenant.workspace.workspace_id,
            "TimeGenerated": iso(time),
            "Operation": operation,
            "UserId": user.upn,
            "UserType": "Regular",
            "OfficeWorkload": "Exchange",
            "RecordType": "ExchangeItem",
            "ResultStatus": "Succeeded",
            "ClientIP": client_ip,
            "OrganizationId": self.tenant.tenant_id,
            "OrganizationName": self.tenant.domain,
            "AppAccessContext": {
                "AADSessionId": event.session_id,
                "IssuedAtTime": iso(event.time).replace("Z", "0000Z"),
                "UniqueTokenId": used.token,
            },
            "AppId": event.app.app_id,
            "ClientAppId": event.app.app_id,
            "Start_Time": iso(time + 4 * MINUTE),
            "Type": OFFICE_TABLE,
            "SourceSystem": "OfficeActivityManager",
        }
        row.update(fields)
        return self._row(OFFICE_TABLE, row)

    def _graph(
        self, user: User, time: int, used: Used, method: str, uri: str, *, size: int, rng: random.Random, agent: str = ""
    ) -> str:
        event = used.event
        return self._row(
            GRAPH_TABLE,
            {
                "TenantId": self.tenant.workspace.workspace_id,
                "AadTenantId": self.tenant.tenant_id,
                "TimeGenerated": iso(time),
                "UserId": user.user_id,
                "IPAddress": event.egress.ip,
                "SignInActivityId": used.token,
                "AppId": event.app.app_id,
                "RequestMethod": method,
                "RequestUri": uri,
                "ResponseStatusCode": 200,
                "ResponseSizeBytes": size,
                "DurationMs": rng.randrange(40, 900),
                "RequestId": ids.guid(rng),
                "ClientRequestId": ids.guid(rng),
                "UserAgent": agent or event.user_agent,
                "TokenIssuedAt": iso(event.time),
                "ApiVersion": "v1.0",
                "Location": "West Europe",
                "Type": GRAPH_TABLE,
            },
        )

    # -- everyone's own ---------------------------------------------------------------------------------

    def _mailbox(self, user: User, own: Sequence[Used], rng: random.Random, rows: UserRows) -> None:
        """Mail read and sent through the user's own Outlook sessions, files downloaded through SharePoint."""
        per_day: dict[int, int] = {}
        seen: set[tuple[str, int]] = set()
        for used in own:
            event = used.event
            block = (event.session_id, event.time // _MAIL_BLOCK)
            day = event.time // DAY
            if event.resource == catalog.SHAREPOINT and rng.random() < 0.15:
                rows.lines[OFFICE_TABLE].append(
                    self._office(
                        user,
                        event.time + rng.randrange(5, 120) * 1000,
                        "FileDownloaded",
                        used,
                        event.egress.ip,
                        OfficeWorkload="SharePoint",
                        RecordType="SharePointFileOperation",
                        SourceFileName=rng.choice(_FILES),
                        UserAgent=event.user_agent,
                    )
                )
            if event.app.app_id not in _MAILBOX_APPS or block in seen or per_day.get(day, 0) >= MAIL_RECORDS_PER_DAY:
                continue
            seen.add(block)
            per_day[day] = per_day.get(day, 0) + 1
            web = event.app == catalog.ONE_OUTLOOK_WEB
            items = rng.randrange(1, 13)
            folders = [{"FolderItems": [{"Id": ids.guid(rng)} for _ in range(items)], "Id": ids.guid(rng), "Path": "\\Inbox"}]
            rows.lines[OFFICE_TABLE].append(
                self._office(
                    user,
                    event.time + rng.randrange(1, 60) * 1000,
                    "MailItemsAccessed",
                    used,
                    event.egress.ip,
                    RecordType="ExchangeItemAggregated",
                    ClientInfoString=f"Client=OWA;{event.user_agent};" if web else "Client=REST;Client=RESTSystem;;",
                    Client_IPAddress=event.egress.ip,
                    MailboxOwnerUPN=user.upn,
                    Logon_Type="Owner",
                    Folders=_DUMPS(folders),
                    OperationProperties=[{"Name": "MailAccessType", "Value": "Bind"}],
                )
            )
            if rng.random() < 0.3:
                rows.lines[OFFICE_TABLE].append(
                    self._office(
                        user,
                        event.time + rng.randrange(60, 600) * 1000,
                        "Send",
                        used,
                        event.egress.ip,
                        ClientInfoString=f"Client=OWA;{event.user_agent};" if web else "Client=REST;Client=RESTSystem;;",
                        MailboxOwnerUPN=user.upn,
                        Item=_DUMPS({"Subject": rng.choice(_SUBJECTS), "ParentFolder": {"Path": "\\Drafts"}}),
                    )
                )

    def _own_graph(self, user: User, own: Sequence[Used], rng: random.Random, rows: UserRows) -> None:
        """The person's own Graph-using app: a few requests a day from their own address, with their own tokens."""
        agent = rng.choice(_OWN_GRAPH_AGENTS)
        days: dict[int, Used] = {}
        for used in own:
            days.setdefault(used.event.time // DAY, used)
        for used in days.values():
            for _ in range(rng.randrange(2, 7)):
                uri = rng.choice(
                    (
                        "https://graph.microsoft.com/v1.0/me/messages?$top=25&$select=subject,from",
                        "https://graph.microsoft.com/v1.0/me/events",
                        "https://graph.microsoft.com/v1.0/me/drive/recent",
                        "https://graph.microsoft.com/v1.0/users?$select=displayName",
                    )
                )
                time = used.event.time + rng.randrange(1, 3600) * 1000
                rows.lines[GRAPH_TABLE].append(
                    self._graph(user, time, used, "GET", uri, size=rng.randrange(800, 40_000), rng=rng, agent=agent)
                )

    def _own_rule(self, user: User, own: Sequence[Used], rng: random.Random, rows: UserRows) -> None:
        """An inbox rule the person makes from their own laptop; sometimes forwarding to their personal address."""
        used = rng.choice([u for u in own if u.event.device == user.laptop] or list(own))
        event = used.event
        last = user.display_name.split()[-1].lower()
        fields = {
            "Name": rng.choice(("Newsletters", "Receipts", "Team updates")),
            "MoveToFolder": rng.choice(("Newsletters", "Receipts", "Later")),
            "From": f"news@{rng.choice(('shop', 'airline', 'bank'))}.example",
        }
        if rng.random() < 0.3:
            fields["ForwardTo"] = f"{user.first_name.lower()}.{last}@{rng.choice(_PERSONAL_DOMAINS)}"
        rows.lines[OFFICE_TABLE].append(
            self._office(
                user,
                event.time + rng.randrange(10, 300) * 1000,
                "New-InboxRule",
                used,
                _client_ip(event.egress.ip, rng),
                RecordType="ExchangeAdmin",
                UserType="Admin",
                ResultStatus="True",
                OfficeObjectId=f"{user.upn.split('@')[0]}\\{fields['Name']}",
                MailboxOwnerUPN=user.upn,
                Parameters=_parameters(AlwaysDeleteOutlookRulesBlob="False", Force="False", **fields),
                AppPoolName="MSExchangeOwaServerNetCore",
            )
        )

    # -- the attacker's -------------------------------------------------------------------------------

    def _attacker(self, user: User, scenario: Scenario, stolen: Sequence[Used], rng: random.Random, rows: UserRows) -> None:
        """What the stolen session does: hide replies, forward mail out, read the mailbox through Graph, send mail."""
        ordered = sorted(stolen, key=lambda u: u.event.time)
        first = ordered[0].event.time

        def near(moment: int) -> Used:
            return min(ordered, key=lambda u: abs(u.event.time - moment))

        name = rng.choice(_HIDING_NAMES)
        folder = rng.choice(_HIDING_FOLDERS)
        address = f"{rng.choice(('ap', 'billing', 'docs', 'sync'))}{rng.randrange(10, 99)}@{rng.choice(_EXFIL_DOMAINS)}"
        rule_at = first + rng.randrange(3, 20) * MINUTE
        used = near(rule_at)
        scripted = scenario.family is Family.REFRESH_TOKEN_REPLAY
        rule = {"Name": name, "MoveToFolder": folder, "SubjectContainsWords": rng.choice(_HIDING_WORDS), "MarkAsRead": "True"}
        if scripted:
            rule["ForwardTo"] = address  # a script cannot run Set-Mailbox: it forwards with the rule it creates through Graph
        rows.lines[OFFICE_TABLE].append(
            self._office(
                user,
                rule_at,
                "New-InboxRule",
                used,
                _client_ip(used.event.egress.ip, rng),
                RecordType="ExchangeAdmin",
                UserType="Admin",
                ResultStatus="True",
                OfficeObjectId=f"{user.upn.split('@')[0]}\\{name}",
                MailboxOwnerUPN=user.upn,
                Parameters=_parameters(AlwaysDeleteOutlookRulesBlob="False", Force="False", StopProcessingRules="True", **rule),
                AppPoolName="MSExchangeOwaServerNetCore",
            )
        )
        if scripted:
            rows.lines[GRAPH_TABLE].append(
                self._graph(
                    user,
                    rule_at - 2000,
                    used,
                    "POST",
                    "https://graph.microsoft.com/v1.0/me/mailFolders/inbox/messageRules",
                    size=612,
                    rng=rng,
                )
            )
        else:
            forward_at = rule_at + rng.randrange(2, 25) * MINUTE
            forwarder = near(forward_at)
            rows.lines[OFFICE_TABLE].append(
                self._office(
                    user,
                    forward_at,
                    "Set-Mailbox",
                    forwarder,
                    _client_ip(forwarder.event.egress.ip, rng),
                    RecordType="ExchangeAdmin",
                    UserType="Admin",
                    ResultStatus="True",
                    OfficeObjectId=user.upn.split("@")[0],
                    MailboxOwnerUPN=user.upn,
                    Parameters=_parameters(ForwardingSmtpAddress=f"smtp:{address}", DeliverToMailboxAndForward="True"),
                    AppPoolName="MSExchangeOwaServerNetCore",
                )
            )
        # The mailbox read in bulk with the stolen tokens.
        reads = rng.randrange(25, 121)
        span = max(ordered[-1].event.time - first, 20 * MINUTE)
        for n in range(reads):
            moment = first + int(span * n / reads) + rng.randrange(0, 30) * 1000
            reader = near(moment)
            skip = 50 * n
            uri = rng.choice(
                (
                    f"https://graph.microsoft.com/v1.0/me/messages?$top=50&$skip={skip}",
                    f"https://graph.microsoft.com/v1.0/me/mailFolders/inbox/messages?$top=50&$skip={skip}",
                    "https://graph.microsoft.com/v1.0/me/mailFolders",
                )
            )
            rows.lines[GRAPH_TABLE].append(
                self._graph(user, moment, reader, "GET", uri, size=rng.randrange(20_000, 250_000), rng=rng)
            )
        if not scripted:
            reader = near(first + 30 * MINUTE)
            items = rng.randrange(40, 300)
            folders = [{"FolderItems": [{"Id": ids.guid(rng)} for _ in range(items)], "Id": ids.guid(rng), "Path": "\\Inbox"}]
            rows.lines[OFFICE_TABLE].append(
                self._office(
                    user,
                    first + 30 * MINUTE,
                    "MailItemsAccessed",
                    reader,
                    reader.event.egress.ip,
                    RecordType="ExchangeItemAggregated",
                    ClientInfoString=f"Client=OWA;{reader.event.user_agent};",
                    MailboxOwnerUPN=user.upn,
                    Logon_Type="Owner",
                    Folders=_DUMPS(folders),
                    OperationProperties=[{"Name": "MailAccessType", "Value": "Bind"}],
                )
            )
        sender = near(first + 45 * MINUTE)
        for k in range(rng.randrange(1, 4)):
            rows.lines[OFFICE_TABLE].append(
                self._office(
                    user,
                    first + 45 * MINUTE + k * 90_000,
                    "Send",
                    sender,
                    sender.event.egress.ip,
                    ClientInfoString=f"Client={'REST' if scripted else 'OWA'};{sender.event.user_agent};",
                    MailboxOwnerUPN=user.upn,
                    Item=_DUMPS({"Subject": rng.choice(_ATTACKER_SUBJECTS), "ParentFolder": {"Path": "\\Drafts"}}),
                )
            )
        consented = ""
        if scenario.family is Family.DEVICE_CODE_PHISHING:
            consenter = near(first + 15 * MINUTE)
            consented = rng.choice(_CONSENT_APPS)
            rows.audits.append(
                AuditEvent(
                    first + 15 * MINUTE,
                    "Consent to application",
                    "ApplicationManagement",
                    "Core Directory",
                    "Assign",
                    Actor(upn=user.upn, user_id=user.user_id, ip=consenter.event.egress.ip),
                    (Target("ServicePrincipal", ids.guid(rng), consented),),
                    details=(("User-Agent", consenter.event.user_agent),),
                    role=Role.ATTACKER,
                )
            )
        scenario.traits["workloads"] = {
            "inbox_rule": name,
            "inbox_rule_folder": folder,
            "forwarding_to": address,
            "forwarding_by": "inbox rule" if scripted else "Set-Mailbox",
            "graph_mail_reads": reads,
            "session": ordered[0].event.session_id,
            "consented_app": consented,
        }

    # -- who they are ---------------------------------------------------------------------------------

    def _identity(self, user: User, rng: random.Random, start: int, end: int, rows: UserRows) -> None:
        """IdentityInfo: UEBA's snapshot of the account, written weekly."""
        department, titles = rng.choice(_DEPARTMENTS)
        title = rng.choice(titles)
        roles = list(rng.choice(_ADMIN_ROLES)) if user.admin_tools else []
        manager = self.tenant.users[rng.randrange(len(self.tenant.users))]
        first_name, _, last_name = user.display_name.partition(" ")
        moment = start + rng.randrange(0, DAY)
        while moment <= end:
            rows.lines[IDENTITY_TABLE].append(
                self._row(
                    IDENTITY_TABLE,
                    {
                        "TenantId": self.tenant.workspace.workspace_id,
                        "TimeGenerated": iso(moment),
                        "AccountUPN": user.upn,
                        "AccountObjectId": user.user_id,
                        "AccountTenantId": self.tenant.tenant_id,
                        "AccountName": user.upn.split("@")[0],
                        "AccountDomain": self.tenant.domain,
                        "AccountDisplayName": user.display_name,
                        "GivenName": first_name,
                        "Surname": last_name,
                        "Department": department,
                        "JobTitle": title,
                        "Manager": manager.display_name if manager.index != user.index else "",
                        "MailAddress": user.upn,
                        "AssignedRoles": roles,
                        "Country": user.country,
                        "IsAccountEnabled": True,
                        "UserType": "Member",
                        "Type": IDENTITY_TABLE,
                    },
                )
            )
            moment += 7 * DAY

    def _risk(self, user: User, used: Sequence[Used], rng: random.Random, rows: UserRows) -> None:
        """
        Entra ID Protection: one detection per risk type seen on the user's sign-ins, and the user's risk
        after it. Some people carry an older detection they cleared themselves (an MFA prompt passed): risk
        on record that is not this incident's.
        """
        risky = [u.event for u in used if u.event.risk_events]
        detected: dict[str, SignIn] = {}
        for event in sorted(risky, key=lambda e: e.time):
            for kind in event.risk_events:
                detected.setdefault(kind, event)
        level = "none"
        for kind, event in detected.items():
            this = event.risk_level if event.risk_level in _RISK_ORDER else "medium"
            level = max(level, this, key=_RISK_ORDER.index)
            self._detection(user, event, kind, (this, level, "atRisk", "none"), rng=rng, rows=rows)
        own = [u.event for u in used if u.event.role is Role.USER and u.event.result == "0"]
        if not detected and own and rng.random() < CLEARED_RISK_SHARE:
            event = own[rng.randrange(len(own))]
            self._detection(
                user,
                event,
                "unfamiliarFeatures",
                ("low", "none", "remediated", "userPassedMFADrivenByRiskBasedPolicy"),
                rng=rng,
                rows=rows,
            )

    def _detection(
        self, user: User, event: SignIn, kind: str, risk: tuple[str, str, str, str], *, rng: random.Random, rows: UserRows
    ) -> None:
        """One AADUserRiskEvents row and the AADRiskyUsers row it leads to; `risk` is (detection level, user level, state, detail)."""
        detection_level, user_level, state, detail = risk
        when = event.time + rng.randrange(2, 15) * MINUTE
        rows.lines[RISK_EVENTS_TABLE].append(
            self._row(
                RISK_EVENTS_TABLE,
                {
                    "TenantId": self.tenant.workspace.workspace_id,
                    "TimeGenerated": iso(when),
                    "Id": ids.guid(rng),
                    "UserPrincipalName": user.upn,
                    "UserId": user.user_id,
                    "UserDisplayName": user.display_name,
                    "RiskEventType": kind,
                    "RiskLevel": detection_level,
                    "RiskState": state,
                    "RiskDetail": detail,
                    "IpAddress": event.egress.ip,
                    "DetectedDateTime": iso(event.time),
                    "ActivityDateTime": iso(event.time),
                    "Activity": "signin",
                    "DetectionTimingType": "realtime",
                    "Source": "IdentityProtection",
                    "TokenIssuerType": "AzureAD",
                    "Type": RISK_EVENTS_TABLE,
                },
            )
        )
        rows.lines[RISKY_USERS_TABLE].append(
            self._row(
                RISKY_USERS_TABLE,
                {
                    "TenantId": self.tenant.workspace.workspace_id,
                    "TimeGenerated": iso(when + MINUTE),
                    "Id": user.user_id,
                    "UserPrincipalName": user.upn,
                    "UserDisplayName": user.display_name,
                    "RiskLevel": user_level,
                    "RiskState": state,
                    "RiskDetail": detail,
                    "RiskLastUpdatedDateTime": iso(when + MINUTE),
                    "IsDeleted": False,
                    "IsProcessing": False,
                    "OperationName": "Risky user",
                    "Type": RISKY_USERS_TABLE,
                },
            )
        )
