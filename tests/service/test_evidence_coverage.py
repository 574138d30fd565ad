"""Missing evidence through the real loader, queries and CLI: absent columns and empty exports never give benign."""

from __future__ import annotations

import gzip
import io
import json
import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from common.command import EXIT_OK
from common.settings import Settings
from common.times import parse_utc
from enrichment.adapters.embedded import EmbeddedEngine
from enrichment.cli.triage import main
from enrichment.domain.model import Account, Coverage, Verdict
from enrichment.domain.scoring import assess
from enrichment.services.gather import gather_evidence

NON_INTERACTIVE = "AADNonInteractiveUserSignInLogs"
STRIPPED = ("AutonomousSystemNumber", "DeviceDetail", "SessionId")


@pytest.fixture(scope="module")
def stripped(tenant: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same tenant exported without DeviceDetail, SessionId and AutonomousSystemNumber in the non-interactive table."""
    folder = tmp_path_factory.mktemp("stripped")
    shutil.copytree(tenant, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".triage-cache*"))
    source = folder / f"{NON_INTERACTIVE}.jsonl.gz"
    with gzip.open(tenant / source.name, "rt", encoding="utf-8") as rows, gzip.open(source, "wt", encoding="utf-8") as out:
        for line in rows:
            row = json.loads(line)
            for column in STRIPPED:
                row.pop(column)
            out.write(json.dumps(row) + "\n")
    return folder


def _not_attacks(folder: Path) -> list[dict[str, Any]]:
    scenarios = json.loads((folder / "scenarios.json").read_text(encoding="utf-8"))
    found = [s for s in scenarios if s["kind"] != "attack"]
    assert found
    return found


@pytest.mark.slow  # generates a tenant and loads its exports
def test_absent_columns_never_turn_a_benign_user_into_a_replay(stripped: Path) -> None:
    """Every look-alike and ordinary user of the stripped export is insufficient_evidence, naming the three columns."""
    settings = Settings.from_file(stripped / "settings.json")
    verdicts: Counter[Verdict] = Counter()
    blind: Counter[Verdict] = Counter()
    with EmbeddedEngine.open(stripped) as engine:
        for scenario in _not_attacks(stripped):
            (evidence,) = gather_evidence(engine, [Account(scenario["user"])], parse_utc(scenario["at"]), settings)
            result = assess(evidence, settings)
            verdicts[result.verdict] += 1
            gap = next(g for g in result.gaps if g.table == NON_INTERACTIVE)
            assert gap.what == f"column(s) {', '.join(STRIPPED)} absent"
            assert {"session_ip_switch", "session_left_device", "impossible_travel"} <= set(gap.signals)
            blind[assess(replace(evidence, coverage=Coverage()), settings).verdict] += 1
    assert set(verdicts) == {Verdict.INSUFFICIENT_EVIDENCE}
    # What the same evidence gave when absent columns were read as empty values: benign users accused.
    assert blind[Verdict.REPLAY_LIKELY] + blind[Verdict.SUSPICIOUS] > 0


@pytest.mark.slow  # generates a tenant and loads its exports
def test_the_full_export_reports_nothing_missing(tenant: Path) -> None:
    """With every column present the same users have no gap and none is insufficient_evidence: the gap was the columns."""
    settings = Settings.from_file(tenant / "settings.json")
    with EmbeddedEngine.open(tenant) as engine:
        for scenario in _not_attacks(tenant):
            (evidence,) = gather_evidence(engine, [Account(scenario["user"])], parse_utc(scenario["at"]), settings)
            result = assess(evidence, settings)
            assert (scenario["id"], result.gaps) == (scenario["id"], ())
            assert result.verdict is not Verdict.INSUFFICIENT_EVIDENCE
            assert all(t.read and not t.missing_columns for t in evidence.coverage.tables)


def _triage(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["triage", *argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.slow
def test_an_empty_export_folder_is_insufficient_evidence(tmp_path: Path) -> None:
    """No exports at all: exit 0 with insufficient_evidence, every table not read, never benign."""
    folder = tmp_path / "empty"
    folder.mkdir()
    code, out, _err = _triage("--data", str(folder), "--user", "alice@contoso.example", "--at", "2026-06-15T12:00:00Z")
    document = json.loads(out)
    assert code == EXIT_OK
    assert (document["verdict"], document["score"]) == ("insufficient_evidence", 0)
    assert [(t["table"], t["read"], t["rows"]) for t in document["coverage"]] == [
        ("SigninLogs", False, 0),
        (NON_INTERACTIVE, False, 0),
        ("AuditLogs", False, 0),
    ]
    assert all(t["gap"].startswith("not read: no rows between") for t in document["coverage"])
    code, text, _err = _triage(
        "--data", str(folder), "--user", "alice@contoso.example", "--at", "2026-06-15T12:00:00Z", "--format", "text"
    )
    assert text.startswith("INSUFFICIENT EVIDENCE: SCORE 0/100 for alice@contoso.example")
    assert f"MISSING EVIDENCE: {NON_INTERACTIVE}: not read: no rows between" in text


@pytest.mark.slow  # generates a tenant and loads its exports
def test_a_user_without_sign_ins_in_a_tenant_with_data_is_benign(tenant: Path) -> None:
    """A user the exports never mention, while the tables hold the window's rows: benign, every table read."""
    scenario = _not_attacks(tenant)[0]
    code, out, _err = _triage("--data", str(tenant), "--user", "nobody@adventure-works.com", "--at", scenario["at"])
    document = json.loads(out)
    assert (code, document["verdict"], document["signins"]) == (EXIT_OK, "benign", 0)
    assert all(t["read"] and t["gap"] is None for t in document["coverage"])
