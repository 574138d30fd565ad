"""infra/scripts/build-teams-package.py: a Teams app zip whose manifest the official v1.30 schema accepts, with the committed icons."""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import subprocess
import sys
import tomllib
import zipfile
import zlib
from pathlib import Path

import jsonschema
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "infra" / "scripts" / "build-teams-package.py"
TEAMS = ROOT / "infra" / "teams"
SCHEMA = TEAMS / "schema" / "MicrosoftTeams.schema.json"
BOT = "0e6f3c2a-91d4-4b7e-8a5c-3d2f1e0b9a87"
URL = "https://func-abc123.azurewebsites.net"


def build(tmp: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("REPLAY_", "TEAMS_", "AZURE_", "FUNCTION_APP_"))}
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp / "approval-bot.zip"), *args],
        env=clean | (env or {}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """Every PNG chunk (tag, data), checking each CRC on the way."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    found, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(tag + body) & 0xFFFFFFFF, tag
        found.append((tag, body))
        pos += 12 + length
    return found


def pixels(data: bytes) -> tuple[int, int, list[tuple[int, int, int, int]]]:
    """Width, height and RGBA pixels of an 8-bit RGBA PNG with unfiltered rows."""
    parts = chunks(data)
    assert parts[0][0] == b"IHDR"
    assert parts[-1][0] == b"IEND"
    width, height, depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", parts[0][1])
    assert (depth, color_type, interlace) == (8, 6, 0)
    raw = zlib.decompress(b"".join(body for tag, body in parts if tag == b"IDAT"))
    stride = width * 4 + 1
    assert len(raw) == stride * height
    out = []
    for y in range(height):
        row = raw[y * stride : (y + 1) * stride]
        assert row[0] == 0
        out += [tuple(row[1 + 4 * x : 5 + 4 * x]) for x in range(width)]
    return width, height, out  # type: ignore[return-value]


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    tmp = tmp_path_factory.mktemp("teams")
    done = build(tmp, env={"REPLAY_BOT_APP_ID": BOT, "AZURE_FUNCTION_URL": URL})
    assert done.returncode == 0, done.stderr
    return zipfile.ZipFile(tmp / "approval-bot.zip")


def schema_validator() -> jsonschema.protocols.Validator:
    """The official schema (draft-04, as it declares) with `const` enforced, as Teams' own tooling (ajv) enforces it."""
    schema = json.loads(SCHEMA.read_text(encoding="utf-8-sig"))
    draft4_with_const = jsonschema.validators.extend(
        jsonschema.Draft4Validator, {"const": jsonschema.Draft7Validator.VALIDATORS["const"]}
    )
    validator: jsonschema.protocols.Validator = draft4_with_const(schema)
    return validator


def test_the_manifest_is_valid_against_the_official_schema(package: zipfile.ZipFile) -> None:
    """The built manifest.json has no error against Microsoft's Teams manifest schema v1.30 committed in infra/teams/schema."""
    manifest = json.loads(package.read("manifest.json"))

    assert [f"{list(e.path)}: {e.message}" for e in schema_validator().iter_errors(manifest)] == []


def test_the_schema_check_catches_what_teams_refuses(package: zipfile.ZipFile) -> None:
    """The validation is not vacuous: a missing botId, an unknown field or another manifest version are errors."""
    manifest = json.loads(package.read("manifest.json"))
    broken = [
        {**manifest, "bots": [{k: v for k, v in manifest["bots"][0].items() if k != "botId"}]},
        {**manifest, "approvalChannel": "x"},
        {**manifest, "manifestVersion": "1.17"},
    ]

    for wrong in broken:
        assert list(schema_validator().iter_errors(wrong)), wrong


def test_the_template_is_at_the_committed_schemas_version() -> None:
    """manifestVersion and $schema name the version the committed schema is for (its const), the newest the repo holds."""
    template = json.loads((TEAMS / "manifest.template.json").read_text(encoding="utf-8"))
    schema = json.loads(SCHEMA.read_text(encoding="utf-8-sig"))
    version = schema["properties"]["manifestVersion"]["const"]

    assert template["manifestVersion"] == version == "1.30"
    assert template["$schema"] == f"https://developer.microsoft.com/json-schemas/teams/v{version}/MicrosoftTeams.schema.json"


def test_the_schema_file_is_the_one_its_note_names() -> None:
    """The committed schema's sha256 is the one infra/teams/schema/README.md records with its source and licence."""
    note = (TEAMS / "schema" / "README.md").read_text(encoding="utf-8")
    digest = hashlib.sha256(SCHEMA.read_bytes()).hexdigest()

    assert f"sha256 `{digest}`" in note
    assert "MIT License" in note
    assert re.search(r"@microsoft/app-manifest. 1\.1\.2", note)


def test_the_icons_are_the_committed_files(package: zipfile.ZipFile) -> None:
    """The zip carries infra/teams/icons/*.png byte for byte: nothing is drawn at build time."""
    assert package.read("color.png") == (TEAMS / "icons" / "color.png").read_bytes()
    assert package.read("outline.png") == (TEAMS / "icons" / "outline.png").read_bytes()


def test_the_zip_holds_the_manifest_and_the_two_icons_at_its_root(package: zipfile.ZipFile) -> None:
    """Teams reads manifest.json and the icons it names from the zip's root, nothing else."""
    manifest = json.loads(package.read("manifest.json"))

    assert sorted(package.namelist()) == ["color.png", "manifest.json", "outline.png"]
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}


def test_the_manifest_carries_this_deployments_bot_and_host(package: zipfile.ZipFile) -> None:
    """botId is REPLAY_BOT_APP_ID, validDomains the Function App's host, scopes team, not notification-only."""
    manifest = json.loads(package.read("manifest.json"))
    bot = manifest["bots"][0]

    assert (bot["botId"], bot["scopes"], bot["isNotificationOnly"], bot["supportsFiles"]) == (BOT, ["team"], False, False)
    assert manifest["validDomains"] == ["func-abc123.azurewebsites.net"]
    assert manifest["id"] == BOT
    assert manifest["manifestVersion"] == "1.30"
    assert manifest["version"] == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert manifest["developer"]["privacyUrl"] == URL + "/"
    assert "{{" not in json.dumps(manifest)


def test_the_colour_icon_is_an_opaque_192_png(package: zipfile.ZipFile) -> None:
    """color.png: 192x192 RGBA, every pixel opaque, not one flat colour."""
    width, height, rgba = pixels(package.read("color.png"))

    assert (width, height) == (192, 192)
    assert {a for *_, a in rgba} == {255}
    assert len({p[:3] for p in rgba}) > 2


def test_the_outline_icon_is_white_on_transparent_32_png(package: zipfile.ZipFile) -> None:
    """outline.png: 32x32, only white at any opacity; some pixels drawn, the corners transparent."""
    width, height, rgba = pixels(package.read("outline.png"))

    assert (width, height) == (32, 32)
    assert {p[:3] for p in rgba if p[3]} == {(255, 255, 255)}
    assert any(p[3] == 255 for p in rgba)
    assert rgba[0][3] == rgba[31][3] == rgba[-1][3] == 0


def test_a_rebuild_with_the_same_values_is_byte_identical(tmp_path: Path) -> None:
    """The zip is reproducible (fixed entry times, committed icons)."""
    env = {"REPLAY_BOT_APP_ID": BOT, "FUNCTION_APP_HOST": "func-abc123.azurewebsites.net"}
    first = build(tmp_path, env=env)
    one = (tmp_path / "approval-bot.zip").read_bytes()
    second = build(tmp_path, env=env)

    assert first.returncode == second.returncode == 0
    assert (tmp_path / "approval-bot.zip").read_bytes() == one


def test_flags_override_the_environment_and_values_cannot_break_the_json(tmp_path: Path) -> None:
    """Flags win over environment variables; a quote in a value stays a value in manifest.json."""
    other = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
    done = build(
        tmp_path,
        "--bot-app-id", BOT, "--function-host", "func-x.azurewebsites.net", "--app-id", other,
        "--developer-name", 'Sec "Ops"', "--version", "2.3.4",
        env={"REPLAY_BOT_APP_ID": "not-this-one"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    manifest = json.loads(zipfile.ZipFile(tmp_path / "approval-bot.zip").read("manifest.json"))

    assert (manifest["id"], manifest["bots"][0]["botId"], manifest["version"]) == (other, BOT, "2.3.4")
    assert manifest["developer"]["name"] == 'Sec "Ops"'
    assert manifest["validDomains"] == ["func-x.azurewebsites.net"]


@pytest.mark.parametrize(
    ("args", "env", "problems"),
    [
        ((), {}, ["--bot-app-id or $REPLAY_BOT_APP_ID", "--function-host or $FUNCTION_APP_HOST"]),
        (("--bot-app-id", "approval-bot", "--function-host", "func.example.net"), {}, ["bots[0].botId", "id (Teams app id)"]),
        (("--bot-app-id", BOT, "--function-host", "func.example.net/api"), {}, ["validDomains: 'func.example.net/api'"]),
        (
            ("--bot-app-id", BOT, "--function-host", "func.example.net", "--privacy-url", "http://x.example"),
            {},
            ["developer.privacyUrl"],
        ),
        (("--bot-app-id", BOT, "--function-host", "func.example.net", "--version", "1.0"), {}, ["version: '1.0'"]),
    ],
)
def test_bad_values_are_refused_by_name_and_nothing_is_written(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], problems: list[str]
) -> None:
    """Every problem is named on stderr, the exit status is 2 and no zip is left behind."""
    done = build(tmp_path, *args, env=env)

    assert done.returncode == 2
    for problem in problems:
        assert problem in done.stderr
    assert not (tmp_path / "approval-bot.zip").exists()


def test_the_dist_folder_is_ignored_by_git() -> None:
    """The built package is an artefact: infra/teams/dist/ is in .gitignore."""
    ignored = {line.strip() for line in (ROOT / ".gitignore").read_text().splitlines()}

    assert "infra/teams/dist/" in ignored
