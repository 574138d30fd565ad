#!/usr/bin/env python3
"""
Build the approval bot's Teams app package: infra/teams/dist/approval-bot.zip.

A Teams app package is a zip of `manifest.json` and two icons. The manifest is filled from
`infra/teams/manifest.template.json` with this deployment's values (the bot's app id, which is the
managed identity's client id, and the Function App's host), checked against the rules Teams applies on
upload, so a bad value fails here with its name instead of as "manifest invalid" in the admin centre.
The icons are drawn here (a shield with a check mark) so no binary lives in the repository.

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
import struct
import sys
import tomllib
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "teams" / "manifest.template.json"
OUT = ROOT / "infra" / "teams" / "dist" / "approval-bot.zip"

COLOR_SIZE, OUTLINE_SIZE = 192, 32
ACCENT = (0x1F, 0x4E, 0x79)
WHITE = (0xFF, 0xFF, 0xFF)
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


# ---- icons -------------------------------------------------------------------------------------


def png(width: int, height: int, pixel: Callable[[int, int], tuple[int, int, int, int]]) -> bytes:
    """An 8-bit RGBA PNG: signature, IHDR, one zlib IDAT of unfiltered rows, IEND."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + bytes(v for x in range(width) for v in pixel(x, y)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def _in_shield(u: float, v: float) -> bool:
    """The unit shield: straight sides over the top 55 %, then curving to a point at the bottom."""
    if not (0.0 <= u <= 1.0 and 0.0 <= v <= 1.0):
        return False
    half = 0.5 if v <= 0.55 else 0.5 * (1.0 - ((v - 0.55) / 0.45) ** 1.6)
    return abs(u - 0.5) <= half


def _near_segment(u: float, v: float, a: tuple[float, float], b: tuple[float, float], width: float) -> bool:
    (ax, ay), (bx, by) = a, b
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((u - ax) * dx + (v - ay) * dy) / (dx * dx + dy * dy)))
    return (u - ax - t * dx) ** 2 + (v - ay - t * dy) ** 2 <= (width / 2) ** 2


def _in_check(u: float, v: float, width: float) -> bool:
    return _near_segment(u, v, (0.28, 0.47), (0.44, 0.63), width) or _near_segment(u, v, (0.44, 0.63), (0.74, 0.31), width)


def _coverage(x: int, y: int, size: int, box: tuple[float, float, float], inside: Callable[[float, float], bool]) -> float:
    """Share of a 4x4 supersampled pixel inside the shape, in the unit square placed at `box` (left, top, side)."""
    left, top, side = box
    hits = 0
    for sy in range(4):
        for sx in range(4):
            u = ((x + (sx + 0.5) / 4) / size - left) / side
            v = ((y + (sy + 0.5) / 4) / size - top) / side
            hits += inside(u, v)
    return hits / 16


def _blend(under: tuple[int, int, int], over: tuple[int, int, int], share: float) -> tuple[int, int, int]:
    r, g, b = (round(a + (c - a) * share) for a, c in zip(under, over, strict=True))
    return r, g, b


def color_icon() -> bytes:
    """192x192, opaque: a white shield with the accent-coloured check on the accent colour (symbol in the middle 96 px)."""
    box = (0.25, 0.25, 0.5)

    def pixel(x: int, y: int) -> tuple[int, int, int, int]:
        shield = _coverage(x, y, COLOR_SIZE, box, _in_shield)
        check = _coverage(x, y, COLOR_SIZE, box, lambda u, v: _in_check(u, v, 0.11))
        return (*_blend(_blend(ACCENT, WHITE, shield), ACCENT, check), 255)

    return png(COLOR_SIZE, COLOR_SIZE, pixel)


def outline_icon() -> bytes:
    """32x32, white on transparent as Teams requires: a shield outline with a check mark."""
    box = (0.12, 0.08, 0.8)

    def ring(u: float, v: float) -> bool:
        inner = 0.1
        return _in_shield(u, v) and not _in_shield((u - inner) / (1 - 2 * inner), (v - inner) / (1 - 2 * inner) + 0.01)

    def pixel(x: int, y: int) -> tuple[int, int, int, int]:
        share = max(
            _coverage(x, y, OUTLINE_SIZE, box, ring), _coverage(x, y, OUTLINE_SIZE, box, lambda u, v: _in_check(u, v, 0.12))
        )
        return (*WHITE, round(255 * share))

    return png(OUTLINE_SIZE, OUTLINE_SIZE, pixel)


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
    """The upload rules of the Teams manifest schema (v1.17) this package relies on, one problem per line."""
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
    if not (major.isdigit() and minor.isdigit() and (int(major), int(minor)) >= (1, 17)):
        problems.append(f"manifestVersion: {manifest['manifestVersion']} is older than 1.17")
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


def build(values: Mapping[str, str], template: Path = TEMPLATE) -> bytes:
    """The zip's bytes: filled, validated manifest plus the two icons; `PackageError` lists every problem."""
    missing: set[str] = set()
    manifest = _fill(json.loads(template.read_text(encoding="utf-8")), values, missing)
    problems = [f"{name}: no value (flag or environment variable)" for name in sorted(missing)] or validate(manifest)
    if problems:
        raise PackageError(problems)
    files = {
        "manifest.json": json.dumps(manifest, indent=2, ensure_ascii=False).encode() + b"\n",
        manifest["icons"]["color"]: color_icon(),
        manifest["icons"]["outline"]: outline_icon(),
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
