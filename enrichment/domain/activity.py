"""
What the suspect sessions did: the scope question's answer, as values.

After "is this a token replay?" comes "what was the token used for?". The scope question reads the
workspace's activity tables for the suspect addresses, the tokens issued to the suspect sign-ins and
the lifted sessions, summarised in KQL, and each summarised row becomes an `ActivityRecord`: Graph
requests by method and resource family, Microsoft 365 audit operations (inbox rules, forwarding,
mail access, sent mail, file downloads) and directory changes (consents, application credentials,
role assignments). `Scope` holds them with the tables' coverage, so an absent table is said, never
read as "nothing happened".

Everything here that came from a log row is attacker-controlled (rule names, folder names, addresses,
subjects, request paths, user agents) and stays raw: escaping is the renderer's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from enrichment.domain.optional_tables import TableAnswer


class ActKind(StrEnum):
    """Which workload recorded the activity."""

    GRAPH = "graph"  # MicrosoftGraphActivityLogs
    MAILBOX = "mailbox"  # OfficeActivity / CloudAppEvents
    DIRECTORY = "directory"  # AuditLogs


class GraphFamily(StrEnum):
    """Graph requests summarised by what they touch (the request path decides)."""

    MAIL_READ = "mail_read"
    MAIL_SEND = "mail_send"
    MAIL_SETTINGS = "mail_settings"  # inbox rules and mailbox settings through Graph
    FILES = "files"
    DIRECTORY = "directory"
    APPLICATIONS = "applications"
    OTHER = "other"


class Tie(StrEnum):
    """How a record was tied to a suspect: its address, the token of a suspect sign-in, or the lifted session."""

    ADDRESS = "address"
    TOKEN = "token"  # noqa: S105 - a tie's name, not a secret
    SESSION = "session"


@dataclass(frozen=True, slots=True)
class InboxRule:
    """
    An inbox rule created or changed, as the audit records it (`New-InboxRule`, `Set-InboxRule`,
    `UpdateInboxRules`, ...). `identity` is the audit's object id for the rule (mailbox\\name, or the
    rule id of a change), which is what containment matches when it removes the rule.
    """

    operation: str
    name: str
    identity: str
    mailbox: str
    time: datetime
    move_to: str = ""
    delete: bool = False
    forward_to: tuple[str, ...] = ()
    mark_read: bool = False
    stop_processing: bool = False
    conditions: tuple[tuple[str, str], ...] = ()

    @property
    def hides_mail(self) -> bool:
        """The rule takes mail out of sight: moves it to another folder or deletes it."""
        return bool(self.move_to) or self.delete


@dataclass(frozen=True, slots=True)
class Forwarding:
    """Forwarding set on the mailbox itself (`Set-Mailbox -ForwardingSmtpAddress` / `-ForwardingAddress`)."""

    mailbox: str
    address: str
    time: datetime
    deliver_and_forward: bool | None = None


@dataclass(frozen=True, slots=True)
class DirectoryChange:
    """A directory change from AuditLogs: consent, new credential, role assignment; the target as recorded."""

    operation: str
    time: datetime
    target: str = ""
    target_id: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ActivityRecord:
    """
    One summarised row of the scope question: who, from where, with which session or token, what,
    how often, when.

    `operation` is the Graph family, the audit operation or the AuditLogs operation; `items` counts the
    mail items a `MailItemsAccessed` record names (otherwise the events); `samples` are a few raw
    objects (request paths, subjects, file names) for a person to read.
    """

    kind: ActKind
    source: str
    user: str
    ip: str
    operation: str
    count: int
    first: datetime
    last: datetime
    session_id: str = ""
    token_id: str = ""
    method: str = ""
    client: str = ""
    app_id: str = ""
    items: int = 0
    bytes: int = 0
    failures: int = 0
    samples: tuple[str, ...] = ()
    rules: tuple[InboxRule, ...] = ()
    forwarding: tuple[Forwarding, ...] = ()
    changes: tuple[DirectoryChange, ...] = ()


@dataclass(frozen=True, slots=True)
class Scope:
    """
    What the scope question found for one account, and which tables could answer.

    `asked` is False when there was no suspect address or session to follow (nothing was read);
    `problems` say what went wrong reading (a failed query, unreadable rows).
    """

    asked: bool
    coverage: tuple[TableAnswer, ...] = ()
    records: tuple[ActivityRecord, ...] = ()
    problems: tuple[str, ...] = ()
