"""
One settings object, read from app settings (the environment) or a `local.settings.json`.

`Settings.from_values` is pure: it takes a mapping, so tests pass a dict and nothing here reads the
environment except `from_environ`. Every bad or missing setting is collected and reported together,
by name, so a deployment is fixed in one round instead of one error at a time.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from common.errors import SettingsError
from common.identifiers import is_guid

T = TypeVar("T")

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


#: Optional containment actions; each is off unless named in REPLAY_OPTIONAL_ACTIONS.
OPTIONAL_ACTIONS = (
    "confirm_compromised",
    "disable_account",
    "delete_flagged_methods",
    "require_password_change",
    "delete_attacker_devices",
    "remove_inbox_rules",
)
#: Accounts assessed per incident unless REPLAY_MAX_ACCOUNTS says otherwise (the parser's default too).
MAX_ACCOUNTS_DEFAULT = 50
#: Security service edges REPLAY_SSE_PROVIDER may name (their egress ASNs: enrichment.domain.networks.SSE_PROVIDERS).
SSE_PROVIDERS = ("zscaler", "netskope", "entra_gsa", "cloudflare_one")


def _text(raw: str) -> str:
    return raw.strip()


def _int(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw.strip())
        if not low <= value <= high:
            msg = f"must be between {low} and {high}"
            raise ValueError(msg)
        return value

    return parse


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    msg = "must be true or false"
    raise ValueError(msg)


def _items(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def _cidrs(raw: str) -> tuple[IpNetwork, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in _items(raw))


def _asns(raw: str) -> frozenset[int]:
    values = set()
    for item in _items(raw):
        value = int(item.upper().removeprefix("AS"))
        if not 0 < value < 2**32:
            msg = f"{item} is not an ASN"
            raise ValueError(msg)
        values.add(value)
    return frozenset(values)


def _guid(raw: str) -> str:
    value = raw.strip()
    if value and not is_guid(value):
        msg = "must be a GUID"
        raise ValueError(msg)
    return value.lower()


def _guids(raw: str) -> frozenset[str]:
    return frozenset(_guid(item) for item in _items(raw))


def _url(raw: str) -> str:
    value = raw.strip().rstrip("/")
    if not re.match(r"^https?://[^\s/]+", value):
        msg = "must be an http(s) URL"
        raise ValueError(msg)
    return value


def _choices(known: tuple[str, ...], noun: str) -> Callable[[str], frozenset[str]]:
    """A parser of comma-separated names out of `known` (any case), naming the unknown ones and the known."""

    def parse(raw: str) -> frozenset[str]:
        names = frozenset(item.lower() for item in _items(raw))
        unknown = names - set(known)
        if unknown:
            msg = f"unknown {noun}(s) {', '.join(sorted(unknown))}; known: {', '.join(known)}"
            raise ValueError(msg)
        return names

    return parse


def _weights(raw: str) -> tuple[tuple[str, int], ...]:
    """`id=points` pairs; every id must be a registered signal (0 turns a signal off, 100 is the most one signal adds)."""
    # The signal registry names the ids; imported here, not at module level, so settings stay free of the scorer.
    from enrichment.domain.signals import WEIGHTS

    found: dict[str, int] = {}
    for item in _items(raw):
        name, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not name:
            msg = f"{item!r} is not signal_id=points"
            raise ValueError(msg)
        if name not in WEIGHTS:
            msg = f"unknown signal {name!r}; known: {', '.join(WEIGHTS)}"
            raise ValueError(msg)
        try:
            points = int(value)
        except ValueError:
            points = -1
        if not 0 <= points <= 100:
            msg = f"{name}: points must be a whole number from 0 to 100, not {value!r}"
            raise ValueError(msg)
        found[name] = points
    return tuple(sorted(found.items()))


def _setting(name: str, parse: Callable[[str], Any], default: Any, doc: str) -> Any:
    return field(default=default, metadata={"env": name, "parse": parse, "doc": doc})


@dataclass(frozen=True, slots=True)
class Settings:
    """Every app setting the product reads; the field metadata names the setting."""

    # Where the sign-in logs live.
    workspace_id: str = _setting("REPLAY_WORKSPACE_ID", _guid, "", "Log Analytics workspace id (GUID) of the Sentinel workspace")
    logs_endpoint: str = _setting("REPLAY_LOGS_ENDPOINT", _url, "https://api.loganalytics.io", "Log Analytics query endpoint")
    query_timeout_seconds: int = _setting("REPLAY_QUERY_TIMEOUT_SECONDS", _int(10, 600), 180, "server-side timeout of one query")
    # The evidence window and its limits.
    window_before_hours: int = _setting(
        "REPLAY_WINDOW_BEFORE_HOURS", _int(1, 720), 24, "hours of sign-ins before the incident time"
    )
    window_after_hours: int = _setting("REPLAY_WINDOW_AFTER_HOURS", _int(0, 168), 6, "hours of sign-ins after the incident time")
    baseline_days: int = _setting("REPLAY_BASELINE_DAYS", _int(1, 90), 14, "days of history summarised as the baseline")
    row_cap: int = _setting("REPLAY_ROW_CAP", _int(100, 400_000), 20_000, "most evidence rows kept per account")
    max_accounts: int = _setting(
        "REPLAY_MAX_ACCOUNTS",
        _int(1, 500),
        MAX_ACCOUNTS_DEFAULT,
        "most accounts of one incident assessed; the rest are listed as not assessed",
    )
    # Benign explanations.
    corporate_cidrs: tuple[IpNetwork, ...] = _setting("REPLAY_CORPORATE_CIDRS", _cidrs, (), "corporate egress networks")
    vpn_cidrs: tuple[IpNetwork, ...] = _setting("REPLAY_VPN_CIDRS", _cidrs, (), "corporate VPN egress networks")
    trusted_asns: frozenset[int] = _setting(
        "REPLAY_TRUSTED_ASNS", _asns, frozenset(), "ASNs whose traffic is the organisation's own"
    )
    sse_providers: frozenset[str] = _setting(
        "REPLAY_SSE_PROVIDER",
        _choices(SSE_PROVIDERS, "provider"),
        frozenset(),
        f"the organisation's security service edge(s): {', '.join(SSE_PROVIDERS)}",
    )
    sse_cidrs: tuple[IpNetwork, ...] = _setting(
        "REPLAY_SSE_CIDRS", _cidrs, (), "the organisation's SSE egress networks (dedicated egress addresses)"
    )
    travel_watchlist: str = _setting(
        "REPLAY_TRAVEL_WATCHLIST", _text, "TravelRecords", "alias of the Sentinel watchlist of travel records"
    )
    # Verdict thresholds.
    threshold_likely: int = _setting(
        "REPLAY_THRESHOLD_LIKELY", _int(1, 100), 70, "score at or above which the verdict is replay_likely"
    )
    threshold_suspicious: int = _setting(
        "REPLAY_THRESHOLD_SUSPICIOUS", _int(1, 100), 40, "score at or above which the verdict is suspicious"
    )
    signal_weights: tuple[tuple[str, int], ...] = _setting(
        "REPLAY_SIGNAL_WEIGHTS",
        _weights,
        (),
        "per-signal weight overrides, signal_id=points comma-separated (0 turns a signal off)",
    )
    # Writing to the incident.
    arm_endpoint: str = _setting("REPLAY_ARM_ENDPOINT", _url, "https://management.azure.com", "Azure Resource Manager endpoint")
    comment_max_chars: int = _setting("REPLAY_COMMENT_MAX_CHARS", _int(1000, 100_000), 30_000, "longest incident comment written")
    raise_severity: bool = _setting("REPLAY_RAISE_SEVERITY", _bool, False, "raise the incident to High when a replay is likely")
    # Approval and containment.
    containment_enabled: bool = _setting(
        "REPLAY_CONTAINMENT_ENABLED", _bool, True, "ask for approval of containment on replay_likely"
    )
    optional_actions: frozenset[str] = _setting(
        "REPLAY_OPTIONAL_ACTIONS", _choices(OPTIONAL_ACTIONS, "action"), frozenset(), "optional containment actions offered"
    )
    approval_timeout_hours: int = _setting(
        "REPLAY_APPROVAL_TIMEOUT_HOURS", _int(1, 168), 4, "hours an approval request stays open"
    )
    approver_group_id: str = _setting("REPLAY_APPROVER_GROUP_ID", _guid, "", "Entra group whose members may decide")
    approver_object_ids: frozenset[str] = _setting(
        "REPLAY_APPROVER_OBJECT_IDS", _guids, frozenset(), "object ids allowed to decide"
    )
    graph_endpoint: str = _setting("REPLAY_GRAPH_ENDPOINT", _url, "https://graph.microsoft.com/v1.0", "Microsoft Graph endpoint")
    tenant_id: str = _setting("REPLAY_TENANT_ID", _guid, "", "Entra tenant id")
    bot_app_id: str = _setting("REPLAY_BOT_APP_ID", _text, "", "app (client) id of the approval bot")
    teams_channel_id: str = _setting(
        "REPLAY_TEAMS_CHANNEL_ID", _text, "", "Teams channel id (19:...@thread.tacv2) for approval cards"
    )
    teams_service_url: str = _setting(
        "REPLAY_TEAMS_SERVICE_URL", _url, "https://smba.trafficmanager.net/teams", "Bot Framework service URL for the tenant"
    )
    managed_identity_client_id: str = _setting(
        "AZURE_CLIENT_ID",
        _text,
        "",
        "client id of the Function App's user-assigned managed identity (host, Log Analytics, Sentinel)",
    )
    containment_client_id: str = _setting(
        "REPLAY_CONTAINMENT_CLIENT_ID",
        _guid,
        "",
        "client id of the managed identity that holds the Graph containment permissions; empty = the AZURE_CLIENT_ID rule",
    )

    @classmethod
    def names(cls) -> dict[str, str]:
        """Setting name -> one-line description, for docs and for the infra consistency test."""
        return {f.metadata["env"]: f.metadata["doc"] for f in fields(cls)}

    @classmethod
    def from_values(cls, values: Mapping[str, str]) -> Settings:
        """Parse every recognised setting; raise `SettingsError` listing all the bad ones."""
        parsed: dict[str, Any] = {}
        problems: list[str] = []
        for spec in fields(cls):
            name = spec.metadata["env"]
            raw = values.get(name)
            if raw is None or (isinstance(raw, str) and raw.strip() == "" and spec.default not in ("",)):
                continue
            try:
                parsed[spec.name] = spec.metadata["parse"](str(raw))
            except ValueError as error:
                problems.append(f"{name}: {error}")
        settings = cls(**parsed) if not problems else None
        if settings is not None and settings.threshold_suspicious > settings.threshold_likely:
            problems.append("REPLAY_THRESHOLD_SUSPICIOUS: must not exceed REPLAY_THRESHOLD_LIKELY")
        if problems or settings is None:
            raise SettingsError(problems)
        return settings

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        return cls.from_values(os.environ if environ is None else environ)

    @classmethod
    def from_file(cls, path: Path) -> Settings:
        """Read a Functions `local.settings.json`; its `Values` are the app settings."""
        try:
            document = json.loads(path.read_text(encoding="utf-8-sig"))
        except OSError as error:
            raise SettingsError([f"{path}: cannot read ({error.strerror})"]) from error
        except json.JSONDecodeError as error:
            raise SettingsError([f"{path}: not JSON ({error.msg} at line {error.lineno})"]) from error
        values = document.get("Values") if isinstance(document, dict) else None
        if not isinstance(values, dict):
            raise SettingsError([f"{path}: has no 'Values' object"])
        return cls.from_values({str(k): str(v) for k, v in values.items()})

    def scoring_changes(self) -> tuple[str, ...]:
        """The scoring settings changed from their defaults, one sentence each, for the incident comment."""
        from enrichment.domain.signals import WEIGHTS

        default = Settings()
        changes = [
            f"{name} is {getattr(self, attr)} (default {getattr(default, attr)})"
            for name, attr in (
                ("REPLAY_THRESHOLD_LIKELY", "threshold_likely"),
                ("REPLAY_THRESHOLD_SUSPICIOUS", "threshold_suspicious"),
            )
            if getattr(self, attr) != getattr(default, attr)
        ]
        changes += [
            f"signal {name} weighs {points} (default {WEIGHTS[name]})"
            for name, points in self.signal_weights
            if points != WEIGHTS[name]
        ]
        return tuple(changes)

    def missing_for_azure(self) -> list[str]:
        """Settings the Function App cannot run without, by name."""
        missing = []
        if not self.workspace_id:
            missing.append("REPLAY_WORKSPACE_ID: required")
        if self.containment_enabled:
            for name, value in (
                ("REPLAY_TENANT_ID", self.tenant_id),
                ("REPLAY_BOT_APP_ID", self.bot_app_id),
                ("REPLAY_TEAMS_CHANNEL_ID", self.teams_channel_id),
            ):
                if not value:
                    missing.append(f"{name}: required while REPLAY_CONTAINMENT_ENABLED is true")
            if not self.approver_group_id and not self.approver_object_ids:
                missing.append(
                    "REPLAY_APPROVER_GROUP_ID or REPLAY_APPROVER_OBJECT_IDS: one is required while containment is enabled"
                )
        return missing
