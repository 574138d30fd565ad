#!/usr/bin/env python3
"""
Build the approval bot's Teams app package: infra/teams/dist/approval-bot.zip.

A Teams app package is a zip of `manifest.json` and two icons. The manifest is filled from
`infra/teams/manifest.template.json` (manifest schema v1.30) with this deployment's values (the bot's
app id, which is the bot identity's client id, and the Function App's host), checked against the rules
Teams applies on upload, so a bad value fails here with its name instead of as "manifest invalid" in the
admin centre; CI also validates it against the official schema (`infra/teams/schema/`). The icons are the
committed files `infra/teams/icons/color.png` (192x192) and `outline.png` (32x32, white on transparent).

Standard library only: it runs in Cloud Shell or any Python 3.11+ without the project's packages.
Values come from flags, else from the environment (`azd env get-values` provides REPLAY_BOT_APP_ID and
AZURE_FUNCTION_URL). The zip is reproducible: the same values give the same bytes.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
import tomllib
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "teams" / "manifest.template.json"
ICONS = ROOT / "infra" / "teams" / "icons"
OUT = ROOT / "infra" / "teams" / "dist" / "approval-bot.zip"
#: The manifest schema version the template is written for (and the committed schema validates).
MANIFEST_VERSION = (1, 30)
#: Fixed zip entry time (the earliest a zip can hold), so a rebuild with the same values is byte-identical.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)

_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_HOST = re.compile(r"(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
_PLACEHOLDER = re.compile(r"\{\{([A-Z0-9_]+)\}\}")


class PackageError(Exception):
    """The values or the filled manifest break a rule Teams enforces; `problems` names every one."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


# ---- manifest ----------------------------------------------------------------------------------


def _fill(node: Any, values: Mapping[str, str], missing: set[str]) -> Any:
    """Replace {{NAME}} in every string of the parsed template (never in JSON text, so no value can break it)."""
    if isinstance(node, dict):
        return {key: _fill(value, values, missing) for key, value in node.items()}
    if isinstance(node, list):
        return [_fill(value, values, missing) for value in node]
    if isinstance(node, str):

        def value(match: re.Match[str]) -> str:
            if match.group(1) not in values:
                missing.add(match.group(1))
                return match.group(0)
            return values[match.group(1)]

        return _PLACEHOLDER.sub(value, node)
    return node


def _https(url: object) -> bool:
    parts = urlsplit(str(url))
    return parts.scheme == "https" and bool(parts.netloc)


def validate(manifest: Mapping[str, Any]) -> list[str]:
    """The upload rules of the Teams manifest schema (v1.30) this package relies on, one problem per line."""
    problems = [
        f"{key}: required"
        for key in (
            "$schema",
            "manifestVersion",
            "version",
            "id",
            "developer",
            "name",
            "description",
            "icons",
            "accentColor",
            "bots",
        )
        if key not in manifest
    ]
    if problems:
        return problems
    major, _, minor = str(manifest["manifestVersion"]).partition(".")
    if not (major.isdigit() and minor.isdigit() and (int(major), int(minor)) >= MANIFEST_VERSION):
        problems.append(f"manifestVersion: {manifest['manifestVersion']} is older than {'.'.join(map(str, MANIFEST_VERSION))}")
    if not re.fullmatch(r"\d{1,9}\.\d{1,9}\.\d{1,9}", str(manifest["version"])):
        problems.append(f"version: {manifest['version']!r} is not MAJOR.MINOR.PATCH")
    if not _GUID.fullmatch(str(manifest["id"])):
        problems.append(f"id (Teams app id): {manifest['id']!r} is not a GUID")
    developer = manifest["developer"]
    if not str(developer.get("name", "")).strip() or len(str(developer.get("name"))) > 32:
        problems.append("developer.name: 1 to 32 characters")
    problems += [
        f"developer.{key}: must be an https URL"
        for key in ("websiteUrl", "privacyUrl", "termsOfUseUrl")
        if not _https(developer.get(key))
    ]
    for key, limit in (("name.short", 30), ("name.full", 100), ("description.short", 80), ("description.full", 4000)):
        group, field = key.split(".")
        text = str(manifest[group].get(field, ""))
        if not text.strip() or len(text) > limit:
            problems.append(f"{key}: 1 to {limit} characters")
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", str(manifest["accentColor"])):
        problems.append("accentColor: must be #RRGGBB")
    bots = manifest["bots"]
    if len(bots) != 1:
        problems.append("bots: exactly one (the approval bot)")
    else:
        bot = bots[0]
        if not _GUID.fullmatch(str(bot.get("botId"))):
            problems.append(f"bots[0].botId: {bot.get('botId')!r} is not a GUID (REPLAY_BOT_APP_ID)")
        if bot.get("scopes") != ["team"]:
            problems.append("bots[0].scopes: the approval bot posts to a team's channel: ['team']")
        if bot.get("isNotificationOnly") is not False:
            problems.append("bots[0].isNotificationOnly: must be false, or Teams never delivers the Approve click")
        if bot.get("supportsFiles") is not False:
            problems.append("bots[0].supportsFiles: must be false")
    domains = manifest.get("validDomains", [])
    if not domains:
        problems.append("validDomains: the Function App's host is required")
    problems += [f"validDomains: {domain!r} is not a host name" for domain in domains if not _HOST.fullmatch(str(domain))]
    return problems


def build(values: Mapping[str, str], template: Path = TEMPLATE, icons: Path = ICONS) -> bytes:
    """The zip's bytes: filled, validated manifest plus the two committed icons; `PackageError` lists every problem."""
    missing: set[str] = set()
    manifest = _fill(json.loads(template.read_text(encoding="utf-8")), values, missing)
    problems = [f"{name}: no value (flag or environment variable)" for name in sorted(missing)] or validate(manifest)
    if problems:
        raise PackageError(problems)
    files = {
        "manifest.json": json.dumps(manifest, indent=2, ensure_ascii=False).encode() + b"\n",
        manifest["icons"]["color"]: (icons / manifest["icons"]["color"]).read_bytes(),
        manifest["icons"]["outline"]: (icons / manifest["icons"]["outline"]).read_bytes(),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as package:
        for name, data in files.items():
            entry = zipfile.ZipInfo(name, ZIP_TIME)
            entry.external_attr = 0o644 << 16
            package.writestr(entry, data, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


# ---- command line ------------------------------------------------------------------------------


def _host(value: str) -> str:
    """A host from a bare host or a URL (AZURE_FUNCTION_URL is https://<host>)."""
    text = value.strip()
    return (urlsplit(text).hostname or "") if "://" in text else text.rstrip("/").lower()


def _project_version() -> str:
    document = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return str(document["project"]["version"])


#: The values with no default, and where they come from.
REQUIRED = {
    "REPLAY_BOT_APP_ID": "--bot-app-id or $REPLAY_BOT_APP_ID (the azd output; the managed identity's client id)",
    "FUNCTION_HOST": "--function-host or $FUNCTION_APP_HOST / $AZURE_FUNCTION_URL (the azd output)",
}


def values_from(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, str]:
    """Placeholder -> value: a flag, else its environment variable, else the documented default."""

    def pick(flag: str | None, *names: str) -> str:
        return (flag or next((environ[n] for n in names if environ.get(n)), "")).strip()

    host = _host(pick(args.function_host, "FUNCTION_APP_HOST", "AZURE_FUNCTION_URL"))
    bot = pick(args.bot_app_id, "REPLAY_BOT_APP_ID").lower()
    home = f"https://{host}/" if host else ""
    values = {
        "REPLAY_BOT_APP_ID": bot,
        "TEAMS_APP_ID": pick(args.app_id, "TEAMS_APP_ID").lower() or bot,
        "FUNCTION_HOST": host,
        "VERSION": pick(args.version, "TEAMS_APP_VERSION") or _project_version(),
        "DEVELOPER_NAME": pick(args.developer_name, "TEAMS_DEVELOPER_NAME") or "Security Operations",
        "WEBSITE_URL": pick(args.website_url, "TEAMS_WEBSITE_URL") or home,
        "PRIVACY_URL": pick(args.privacy_url, "TEAMS_PRIVACY_URL") or home,
        "TERMS_URL": pick(args.terms_url, "TEAMS_TERMS_URL") or home,
    }
    return {name: value for name, value in values.items() if value}


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the approval bot's Teams app package (manifest.json + icons).")
    parser.add_argument("--bot-app-id", help="the bot's app id (default: $REPLAY_BOT_APP_ID)")
    parser.add_argument(
        "--function-host", help="the Function App's host or URL (default: $FUNCTION_APP_HOST, $AZURE_FUNCTION_URL)"
    )
    parser.add_argument("--app-id", help="the Teams app id (default: $TEAMS_APP_ID, else the bot's app id)")
    parser.add_argument("--version", help="the app version MAJOR.MINOR.PATCH (default: $TEAMS_APP_VERSION, else pyproject's)")
    parser.add_argument(
        "--developer-name", help="publisher shown in Teams (default: $TEAMS_DEVELOPER_NAME or 'Security Operations')"
    )
    parser.add_argument("--website-url", help="default: $TEAMS_WEBSITE_URL, else https://<function host>/")
    parser.add_argument("--privacy-url", help="default: $TEAMS_PRIVACY_URL, else https://<function host>/")
    parser.add_argument("--terms-url", help="default: $TEAMS_TERMS_URL, else https://<function host>/")
    parser.add_argument("--template", type=Path, default=TEMPLATE, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=OUT, help=f"the zip to write (default: {OUT.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    values = values_from(args, os.environ if environ is None else environ)
    try:
        absent = [f"{REQUIRED[name]}: required" for name in REQUIRED if name not in values]
        if absent:
            raise PackageError(absent)
        package = build(values, args.template)
    except PackageError as error:
        for problem in error.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(package)
    print(f"wrote {args.out} ({len(package)} bytes): upload it in Teams (Apps > Manage your apps > Upload an app)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
