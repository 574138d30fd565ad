"""
checkov over infra/: no failed check, and every suppression says why.

checkov lives in its own venv (.venv-checkov, built by `scripts/setup.sh --dev` from requirements-checkov.txt)
because it pins many packages of its own. The test fails, never skips, when that venv is missing: CI builds
it, so a skip could only hide a broken setup. checkov runs offline: nothing is downloaded from the Prisma
Cloud platform (--skip-download, BC_SKIP_MAPPING) and there is no version check against PyPI
(CKV_SKIP_PACKAGE_UPDATE_CHECK).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
CONFIG = INFRA / ".checkov.yaml"
#: `// checkov:skip=CKV_X: reason` (checkov's own pattern, with the reason required).
SKIP = re.compile(r"checkov:skip=\s*(?P<ids>[A-Za-z_\d-]+(?:,[A-Za-z_\d-]+)*)?(?::(?P<reason>[^\n]*))?")
MIN_REASON_WORDS = 6


@cache
def report() -> dict[str, Any]:
    """checkov's JSON report on infra/, produced once per session."""
    assert CHECKOV.is_file(), f"{CHECKOV} is missing: run `bash scripts/setup.sh --dev` (it builds .venv-checkov)"
    environment = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "TRUE", "LOG_LEVEL": "WARNING"}
    completed = subprocess.run(
        [str(CHECKOV), "--config-file", str(CONFIG), "-d", str(INFRA), "--framework", "bicep", "--compact", "-o", "json"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode in (0, 1), f"checkov crashed ({completed.returncode}): {completed.stderr[-2000:]}"
    parsed = json.loads(completed.stdout)
    assert isinstance(parsed, dict), "checkov ran more than the bicep framework"
    assert parsed["check_type"] == "bicep"
    return parsed


def source_suppressions() -> list[tuple[str, str, str]]:
    """(file, check id, reason) of every `checkov:skip=` comment under infra/."""
    found = []
    for path in sorted(INFRA.rglob("*.bicep")):
        for line in path.read_text(encoding="utf-8").splitlines():
            match = SKIP.search(line)
            if match:
                assert line.lstrip().startswith("// checkov:skip="), f"{path.name}: suppression outside a // comment: {line}"
                for check_id in (match["ids"] or "").split(","):
                    found.append((path.relative_to(INFRA).as_posix(), check_id, (match["reason"] or "").strip()))
    return found


#: Files checkov cannot read, each with the reason; tests/infra/test_bicep.py parses them with the newer pycep.
CHECKOV_CANNOT_PARSE = {
    "modules/graph-grants.bicep": "checkov 3.3.30 bundles pycep-parser 0.5.1, which predates Bicep's `extension` "
    "statement and lambdas; the file holds only Microsoft.Graph resources, for which checkov has no check",
}


def test_no_check_fails() -> None:
    """checkov parses every Bicep file but the listed ones, runs its checks, and none fails."""
    summary = report()["summary"]
    failed = [
        f"{check['check_id']} {check['check_name']} ({check['file_path']} {check['resource']})"
        for check in report()["results"].get("failed_checks", [])
    ]
    assert failed == []
    assert summary["failed"] == 0
    unparsed = {Path(path).resolve().relative_to(INFRA).as_posix() for path in report()["results"].get("parsing_errors", [])}
    assert unparsed == set(CHECKOV_CANNOT_PARSE)
    assert summary["passed"] >= 10, "checkov checked (almost) nothing"


def test_every_suppression_gives_a_reason() -> None:
    """Each `checkov:skip` names a check and explains in a sentence why it does not apply."""
    suppressions = source_suppressions()
    assert suppressions
    for relative, check_id, reason in suppressions:
        assert re.fullmatch(r"CKV2?_AZURE_\d+", check_id), f"{relative}: bad check id {check_id!r}"
        assert len(reason.split()) >= MIN_REASON_WORDS, f"{relative} {check_id}: reason too short: {reason!r}"


def test_suppressions_are_the_checks_checkov_skipped() -> None:
    """Every suppression in the source silences a check that really fires, and checkov skipped nothing else."""
    skipped = {(check["file_path"].lstrip("/"), check["check_id"]) for check in report()["results"].get("skipped_checks", [])}
    declared = {(relative, check_id) for relative, check_id, _ in source_suppressions()}
    assert skipped == declared
    assert report()["summary"]["skipped"] == len(report()["results"]["skipped_checks"])


def test_config_suppresses_nothing() -> None:
    """infra/.checkov.yaml only configures the run; suppressions live next to the resource with their reason."""
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    assert config["framework"] == ["bicep"]
    assert config["skip-download"] is True
    assert not {"skip-check", "soft-fail", "soft-fail-on", "skip-path", "hard-fail-on"} & set(config)
