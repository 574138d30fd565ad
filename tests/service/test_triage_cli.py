"""`python -m enrichment triage` over a generated tenant: --cache, --table, the load line on stderr, companion files."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from common.command import EXIT_BAD_INPUT, EXIT_OK
from enrichment.adapters.exports import CACHE_NAME, load_exports
from enrichment.cli.triage import main


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
    (folder / "OfficeActivity.json").write_text("[]", encoding="utf-8")
    report = load_exports(folder).report
    assert [entry.split(":")[0] for entry in report.ignored] == ["OfficeActivity.json"]


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
        (("--table", "SigninLogs.jsonl.gz=OfficeActivity"), "is not one of"),
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
