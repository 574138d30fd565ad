"""The triage CLI's pure helpers: `--table` values and the one-line load report."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import InputError
from enrichment.adapters.exports import LoadReport
from enrichment.cli.triage import load_line, table_options

ROWS = (("SigninLogs", 60458), ("AADNonInteractiveUserSignInLogs", 1010684), ("AuditLogs", 0), ("Watchlists", 3))


def test_table_options_map_bare_names_and_paths_in_the_folder(tmp_path: Path) -> None:
    """A bare name and a path inside the folder both become the file's name; spaces around the parts are dropped."""
    mapping = table_options(["a.csv=SigninLogs", f"{tmp_path / 'b.jsonl.gz'} = AADNonInteractiveUserSignInLogs"], tmp_path)
    assert mapping == {"a.csv": "SigninLogs", "b.jsonl.gz": "AADNonInteractiveUserSignInLogs"}


def test_table_options_split_on_the_last_equals_sign(tmp_path: Path) -> None:
    """A file name holding '=' keeps it: the table is what follows the last one."""
    assert table_options(["x=1.csv=AuditLogs"], tmp_path) == {"x=1.csv": "AuditLogs"}


@pytest.mark.parametrize("value", ["SigninLogs", "=SigninLogs", "a.csv=", " = "])
def test_table_options_refuse_what_is_not_file_equals_table(tmp_path: Path, value: str) -> None:
    """A value without a file or a table is bad input naming the expected form."""
    with pytest.raises(InputError, match="expected FILE=TABLE"):
        table_options([value], tmp_path)


def test_table_options_refuse_a_file_outside_the_folder(tmp_path: Path) -> None:
    """The loader reads one folder; a file elsewhere would be silently missed, so it is refused."""
    with pytest.raises(InputError, match="not in the --data folder"):
        table_options([f"{tmp_path.parent / 'other' / 'a.csv'}=SigninLogs"], tmp_path)


def test_load_line_of_a_parse_names_every_table_its_rows_and_the_time() -> None:
    """A first load says it parsed, with rows per table (thousands separated) and seconds."""
    line = load_line(LoadReport(files=(), table_rows=ROWS), Path("x"), 41.234)
    assert line == (
        "load: SigninLogs 60,458, AADNonInteractiveUserSignInLogs 1,010,684, AuditLogs 0, Watchlists 3 rows;"
        " parsed the exports and cached them in 41.2 s"
    )


def test_load_line_of_a_cached_load_says_so_and_names_ignored_files() -> None:
    """A cached load says 'from the cache'; files left out are counted and named with the reason, on the same line."""
    ignored = ("notes.txt: not a .json ...", "AuditLogs.jsonl: a link that leads nowhere readable (a symlink loop), not read")
    report = LoadReport(files=(), ignored=ignored, table_rows=ROWS, from_cache=True)
    line = load_line(report, Path("x"), 0.04)
    assert "from the cache in 0.0 s" in line
    assert line.endswith(f"; 2 file(s) ignored: {ignored[0]} | {ignored[1]}")
    assert "\n" not in line


def test_load_line_of_a_duckdb_file_names_it() -> None:
    """A DuckDB file given as --data has no load report: the line says it was opened."""
    assert load_line(None, Path("/cases/tenant.duckdb"), 0.25) == "load: opened the DuckDB file /cases/tenant.duckdb in 0.2 s"
