"""The sorted-layout cost bench (bench/sort_cost.py) copies every row, in (user, time) order, in any number of passes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from enrichment.adapters.exports import load_exports

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
import sort_cost  # noqa: E402 - bench/ is not a package: importable once on the path

ROWS = [
    {
        "TimeGenerated": f"2026-06-15T{index % 24:02d}:{index % 60:02d}:00Z",
        "UserPrincipalName": f"user{index % 9}@contoso.example",
    }
    for index in range(300)
] + [{"TimeGenerated": "2026-06-15T01:00:00Z", "UserPrincipalName": "o'brien@contoso.example"}]


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "AADNonInteractiveUserSignInLogs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    return load_exports(folder, cache=tmp_path / "cache.duckdb").database


@pytest.mark.parametrize("passes", [1, 4, 7])
def test_a_sorted_copy_in_key_range_passes_holds_every_row_once_in_user_and_time_order(cache: Path, passes: int) -> None:
    """Whatever the passes, the copy is the source's rows, each once, ordered by user key then time (a quote in a key included)."""
    con = duckdb.connect()
    con.execute(f"ATTACH '{cache}' AS cache (READ_ONLY)")
    source = 'cache.main."AADNonInteractiveUserSignInLogs"'
    assert sort_cost.copy(con, source, passes).endswith(" s")
    copied = con.execute("SELECT _user_key, TimeGenerated FROM copied").fetchall()
    assert copied == sorted(con.execute(f"SELECT _user_key, TimeGenerated FROM {source}").fetchall())
    assert len(copied) == len(ROWS)


def test_the_bench_prints_each_copy_with_its_time(cache: Path) -> None:
    """One run prints the unsorted copy and a line per number of passes, each with seconds, and leaves no scratch file."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "sort_cost.py"), str(cache), "--passes", "1", "3"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert f"{len(ROWS):,} rows" in lines[0]
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "copied as it is",
        "sorted in one statement",
        "sorted in 3 key-range passes",
    ]
    assert all(line.endswith(" s") for line in lines[1:])
    assert sorted(p.name for p in cache.parent.iterdir()) == ["cache.duckdb", "exports"]
