"""`python -m enrichment triage` over a generated tenant: --cache, --table, the load line on stderr, companion files."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from common.command import EXIT_BAD_INPUT, EXIT_OK
from enrichment.adapters.exports import CACHE_NAME, load_exports
from enrichment.cli.triage import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scenario(tenant: Path) -> dict[str, Any]:
    scenarios = json.loads((tenant / "scenarios.json").read_text(encoding="utf-8"))
    return next(s for s in scenarios if s["family"] == "aitm_cookie_replay")


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["triage", *argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _load_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("load:")]


def _copy(tenant: Path, target: Path) -> Path:
    shutil.copytree(tenant, target, ignore=shutil.ignore_patterns(CACHE_NAME))
    return target


def test_stdout_is_the_document_and_the_load_line_goes_to_stderr(tenant: Path, scenario: dict[str, Any], tmp_path: Path) -> None:
    """The first run says it parsed, the second that it used the cache; stdout holds only the JSON document."""
    folder = _copy(tenant, tmp_path / "exports")
    args = ("--data", str(folder), "--user", scenario["user"], "--at", scenario["at"])
    code, out, err = _run(*args)
    assert code == EXIT_OK
    assert json.loads(out)["user"] == scenario["user"]
    (first,) = _load_lines(err)
    assert "parsed the exports" in first
    assert "AADNonInteractiveUserSignInLogs" in first
    assert "SigninLogs" in first
    code, out_again, err_again = _run(*args)
    assert code == EXIT_OK
    (second,) = _load_lines(err_again)
    assert "from the cache" in second
    assert json.loads(out_again) == json.loads(out)
    assert "load:" not in out + out_again


def test_generator_companion_files_are_skipped_without_a_word(tenant: Path, tmp_path: Path) -> None:
    """scenarios.json, settings.json and incidents/ are neither loaded, nor listed as ignored, nor warned about."""
    folder = _copy(tenant, tmp_path / "exports")
    assert (folder / "scenarios.json").is_file()
    assert (folder / "settings.json").is_file()
    assert (folder / "incidents").is_dir()
    report = load_exports(folder).report
    assert report.ignored == ()
    assert {f.path for f in report.files} >= {"SigninLogs.jsonl.gz", "AADNonInteractiveUserSignInLogs.jsonl.gz"}
    assert not any("scenarios" in f.path or "settings" in f.path or "incidents" in f.path for f in report.files)


def test_other_stray_files_are_still_reported_as_ignored(tenant: Path, tmp_path: Path) -> None:
    """Only the known companions are silent: an unknown JSON file is still listed as ignored, with its reason."""
    folder = _copy(tenant, tmp_path / "exports")
    (folder / "SecurityEvent.json").write_text("[]", encoding="utf-8")
    report = load_exports(folder).report
    assert [entry.split(":")[0] for entry in report.ignored] == ["SecurityEvent.json"]


def test_cache_option_puts_the_cache_where_it_is_told(tenant: Path, scenario: dict[str, Any], tmp_path: Path) -> None:
    """--cache FILE builds the DuckDB cache at FILE and leaves the exports folder untouched."""
    folder = _copy(tenant, tmp_path / "exports")
    cache = tmp_path / "elsewhere" / "triage.duckdb"
    code, _out, err = _run("--data", str(folder), "--cache", str(cache), "--user", scenario["user"], "--at", scenario["at"])
    assert code == EXIT_OK, err
    assert cache.is_file()
    assert not (folder / CACHE_NAME).exists()
    code, _, err = _run("--data", str(folder), "--cache", str(cache), "--user", scenario["user"], "--at", scenario["at"])
    assert code == EXIT_OK
    assert "from the cache" in _load_lines(err)[0]


def test_table_option_loads_files_whose_names_do_not_say_their_table(
    tenant: Path, scenario: dict[str, Any], tmp_path: Path
) -> None:
    """Renamed exports mapped with --table give the same document as the original names."""
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    shutil.copy(tenant / "SigninLogs.jsonl.gz", renamed / "interactive-export.jsonl.gz")
    shutil.copy(tenant / "AADNonInteractiveUserSignInLogs.jsonl.gz", renamed / "silent.jsonl.gz")
    shutil.copy(tenant / "AuditLogs.jsonl.gz", renamed / "AuditLogs.jsonl.gz")
    shutil.copytree(tenant / "watchlists", renamed / "watchlists")
    at = ("--user", scenario["user"], "--at", scenario["at"])
    code, mapped, err = _run(
        "--data",
        str(renamed),
        "--table",
        "interactive-export.jsonl.gz=SigninLogs",
        "--table",
        str(renamed / "silent.jsonl.gz") + "=AADNonInteractiveUserSignInLogs",
        *at,
    )
    assert code == EXIT_OK, err
    assert "ignored" not in _load_lines(err)[0]
    original = _copy(tenant, tmp_path / "original")
    code, expected, _ = _run("--data", str(original), *at)
    assert code == EXIT_OK
    document, reference = json.loads(mapped), json.loads(expected)
    assert document["signins"]
    assert document["signins"] == reference["signins"]
    assert document["verdict"] == reference["verdict"]


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (("--table", "no-equals-sign"), "--table: expected FILE=TABLE"),
        (("--table", "SigninLogs.jsonl.gz=SecurityEvent"), "is not one of"),
        (("--table", "missing.csv=SigninLogs"), "no file named"),
        (("--table", "/somewhere/else/x.csv=SigninLogs"), "is not in the --data folder"),
    ],
)
def test_bad_table_options_are_one_line_of_bad_input(
    tenant: Path, scenario: dict[str, Any], tmp_path: Path, extra: tuple[str, ...], fragment: str
) -> None:
    """A malformed, unknown or out-of-folder --table exits 2 with one line naming the problem."""
    folder = _copy(tenant, tmp_path / "exports")
    code, out, err = _run("--data", str(folder), *extra, "--user", scenario["user"], "--at", scenario["at"])
    assert code == EXIT_BAD_INPUT
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("error: ")
    assert fragment in err


def test_cache_and_table_need_a_folder_of_exports(tenant: Path, scenario: dict[str, Any], tmp_path: Path) -> None:
    """--cache or --table with --workspace, or with a DuckDB file as --data, is bad input, not silently ignored."""
    code, _, err = _run("--workspace", "w", "--cache", str(tmp_path / "c.duckdb"), "--user", "a@b.c", "--at", scenario["at"])
    assert code == EXIT_BAD_INPUT
    assert "go with --data" in err
    database = load_exports(_copy(tenant, tmp_path / "exports")).database
    code, _, err = _run("--data", str(database), "--table", "x.csv=SigninLogs", "--user", "a@b.c", "--at", scenario["at"])
    assert code == EXIT_BAD_INPUT
    assert "folder of exports" in err


# --------------------------------------------------------------------------------------------
# several incident times in one run
# --------------------------------------------------------------------------------------------


def _scenarios(tenant: Path, count: int) -> list[dict[str, Any]]:
    scenarios = json.loads((tenant / "scenarios.json").read_text(encoding="utf-8"))
    return scenarios[:count]


def test_repeated_at_triages_every_user_at_each_time_like_single_runs(
    tenant: Path, scenario: dict[str, Any], tmp_path: Path
) -> None:
    """`--at T1 --at T2` prints an array, times in the order given, each document the one a single run prints."""
    folder = _copy(tenant, tmp_path / "exports")
    later = (datetime.fromisoformat(scenario["at"].replace("Z", "+00:00")) + timedelta(hours=30)).isoformat()
    code, out, err = _run("--data", str(folder), "--user", scenario["user"], "--at", scenario["at"], "--at", later)
    assert code == EXIT_OK, err
    batch = json.loads(out)
    singles = [
        json.loads(_run("--data", str(folder), "--user", scenario["user"], "--at", at)[1]) for at in (scenario["at"], later)
    ]
    assert batch == singles
    assert batch[0]["at"] != batch[1]["at"]


def test_pairs_file_triages_each_line_in_its_order_like_single_runs(tenant: Path, tmp_path: Path) -> None:
    """`--pairs FILE` of user,time lines (header, comments and blank lines allowed) gives one document per line, in order."""
    folder = _copy(tenant, tmp_path / "exports")
    chosen = _scenarios(tenant, 3)
    lines = ["user,at", "# the night shift's three alerts", "", *(f"{s['user']},{s['at']}" for s in reversed(chosen))]
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out, err = _run("--data", str(folder), "--pairs", str(pairs))
    assert code == EXIT_OK, err
    assert len(_load_lines(err)) == 1
    batch = json.loads(out)
    assert [(d["user"], d["at"]) for d in batch] == [
        (s["user"], json.loads(_run("--data", str(folder), "--user", s["user"], "--at", s["at"])[1])["at"])
        for s in reversed(chosen)
    ]
    for document, s in zip(batch, reversed(chosen), strict=True):
        assert document == json.loads(_run("--data", str(folder), "--user", s["user"], "--at", s["at"])[1])


@pytest.mark.parametrize(
    ("content", "extra", "fragment"),
    [
        ("alice@contoso.com\n", (), "line 1: expected `user,time`"),
        ("user,at\nalice@contoso.com,yesterday\n", (), "line 2: --at: not an ISO 8601 time"),
        ("# nothing\n", (), "holds no `user,time` line"),
        ("alice@contoso.com,2026-06-15T10:00:00Z\n", ("--user", "bob@contoso.com"), "--pairs replaces --user and --at"),
    ],
)
def test_a_bad_pairs_file_is_one_line_of_bad_input(
    tenant: Path, tmp_path: Path, content: str, extra: tuple[str, ...], fragment: str
) -> None:
    """A pairs file that is not user,time lines exits 2 with one line naming the file's line; nothing is triaged."""
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(content, encoding="utf-8")
    code, out, err = _run("--data", str(tenant), "--pairs", str(pairs), *extra)
    assert (code, out) == (EXIT_BAD_INPUT, "")
    assert err.count("\n") == 1
    assert fragment in err


def test_user_and_at_are_both_needed_without_pairs(tenant: Path) -> None:
    """Without --pairs, a missing --user or --at is one line of bad input."""
    code, _, err = _run("--data", str(tenant), "--user", "a@b.com")
    assert code == EXIT_BAD_INPUT
    assert "give --user and --at" in err


# --------------------------------------------------------------------------------------------
# the cache is ours or it is refused (issue 11)
# --------------------------------------------------------------------------------------------


def test_a_folder_or_a_foreign_file_at_the_cache_path_exits_2_in_one_line(
    tenant: Path, scenario: dict[str, Any], tmp_path: Path
) -> None:
    """A folder or somebody's file where the cache goes: exit 2, one line, the file untouched, no traceback."""
    folder = _copy(tenant, tmp_path / "exports")
    at = ("--user", scenario["user"], "--at", scenario["at"])
    (folder / CACHE_NAME).mkdir()
    code, out, err = _run("--data", str(folder), *at)
    assert (code, out, err.count("\n")) == (EXIT_BAD_INPUT, "", 1)
    assert "the cache path is a folder" in err
    notes = tmp_path / "notes.txt"
    notes.write_text("precious", encoding="utf-8")
    code, out, err = _run("--data", str(folder), "--cache", str(notes), *at)
    assert (code, out, err.count("\n")) == (EXIT_BAD_INPUT, "", 1)
    assert "refusing to overwrite it" in err
    assert notes.read_text(encoding="utf-8") == "precious"


def test_a_cache_planted_in_a_loose_private_folder_decides_nothing(
    tenant: Path, scenario: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read-only evidence whose private cache folder others can write: exit 2 naming the folder, never a verdict from it."""
    folder = _copy(tenant, tmp_path / "exports")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    planted = scratch / f"triage-cache-{os.getuid()}"
    planted.mkdir(mode=0o777)
    planted.chmod(0o777)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        code, out, err = _run("--data", str(folder), "--user", scenario["user"], "--at", scenario["at"])
    finally:
        folder.chmod(stat.S_IRWXU)
    assert (code, out, err.count("\n")) == (EXIT_BAD_INPUT, "", 1)
    assert "open to other users" in err


def test_another_tables_rows_under_a_tables_name_exit_2_naming_the_table(
    tenant: Path, scenario: dict[str, Any], tmp_path: Path
) -> None:
    """AuditLogs rows saved as SigninLogs: exit 2 with one line that names AuditLogs, instead of a silent wrong load."""
    folder = _copy(tenant, tmp_path / "exports")
    shutil.copy(tenant / "AuditLogs.jsonl.gz", folder / "SigninLogs.jsonl.gz")
    code, out, err = _run("--data", str(folder), "--user", scenario["user"], "--at", scenario["at"])
    assert (code, out, err.count("\n")) == (EXIT_BAD_INPUT, "", 1)
    assert "SigninLogs.jsonl.gz: holds AuditLogs rows, not SigninLogs" in err


def test_links_that_lead_nowhere_are_named_on_the_load_line(tenant: Path, scenario: dict[str, Any], tmp_path: Path) -> None:
    """A symlink loop among the exports is named, with the reason, on the one load line; the triage still runs."""
    folder = _copy(tenant, tmp_path / "exports")
    (folder / "AuditLogs.part2.jsonl").symlink_to(folder / "AuditLogs.part2.jsonl")
    code, _, err = _run("--data", str(folder), "--user", scenario["user"], "--at", scenario["at"])
    assert code == EXIT_OK, err
    (line,) = _load_lines(err)
    assert line.endswith(
        "1 file(s) ignored: AuditLogs.part2.jsonl: a link that leads nowhere readable (a symlink loop), not read"
    )
