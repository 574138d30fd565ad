"""
What a cache sorted by user would cost to build (issue 16, item 3), measured on a real cache.

    .venv/bin/python bench/sort_cost.py CACHE [--table AADNonInteractiveUserSignInLogs] [--memory 1GB] [--passes 1 4 16]

CACHE is a product cache (`triage --data DIR` leaves one at DIR/.triage-cache.duckdb). Its sign-in
table is copied into a scratch DuckDB file beside it, under the loader's memory bound, three ways:

* as it is (what the loader's insert costs without the read: the floor of any rewrite);
* sorted by (user key, time) in one statement, as a sorted layout would write it;
* sorted in N key-range passes (for N in `--passes`), the way to bound the sort's memory: each pass
  sorts 1/N of the rows but scans the whole table again, since every row group holds every range.

Each line prints the seconds, or DuckDB's error when the copy failed (its sort of wide rows needs
memory that grows with the rows, so past some size one statement cannot finish under the bound).
Compare the times with the product's cold load (`bench/near_floor.py`): the target leaves the
layout 10% of DuckDB's own read to spend.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from enrichment.adapters.exports import USER_KEY  # noqa: E402 - after the path is set

_BUILD_MEMORY_LIMIT = "1GB"


def copy(con: duckdb.DuckDBPyConnection, source: str, passes: int | None) -> str:
    """Copy `source` into a fresh table: unsorted (`passes` None) or sorted in `passes` key ranges; the time or the error."""
    con.execute(f"CREATE OR REPLACE TABLE copied AS SELECT * FROM {source} LIMIT 0")
    started = time.perf_counter()
    try:
        if passes is None:
            con.execute(f"INSERT INTO copied SELECT * FROM {source}")
        else:
            for low, high in key_ranges(con, source, passes):
                con.execute(
                    f"INSERT INTO copied SELECT * FROM {source}"
                    f" WHERE ($low IS NULL OR {USER_KEY} >= $low) AND ($high IS NULL OR {USER_KEY} < $high)"
                    f" ORDER BY {USER_KEY}, TimeGenerated",
                    {"low": low, "high": high},
                )
        con.execute("CHECKPOINT")
    except duckdb.Error as error:
        return f"failed after {time.perf_counter() - started:.1f} s: {str(error).splitlines()[0]}"
    return f"{time.perf_counter() - started:.1f} s"


def key_ranges(con: duckdb.DuckDBPyConnection, source: str, passes: int) -> list[tuple[str | None, str | None]]:
    """
    `passes` (low, high) user-key ranges (None: open) holding about equal numbers of rows, together all of them.

    From each key's row count (one row per user), not `quantile_disc` over every row, which holds
    every key in memory and alone overflows the bound at 25 M rows.
    """
    if passes == 1:
        return [(None, None)]
    counts = con.execute(f"SELECT {USER_KEY}, count(*) FROM {source} GROUP BY ALL ORDER BY ALL").fetchall()
    total = sum(count for _, count in counts)
    bounds: list[str | None] = [None]
    seen = 0
    for key, count in counts:
        if seen >= total * len(bounds) / passes and len(bounds) < passes:
            bounds.append(str(key))
        seen += count
    bounds.append(None)
    return list(itertools.pairwise(bounds))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("cache", type=Path, help="a product cache (DIR/.triage-cache.duckdb)")
    parser.add_argument("--table", default="AADNonInteractiveUserSignInLogs")
    parser.add_argument("--memory", default=_BUILD_MEMORY_LIMIT, help="DuckDB's memory limit (default the loader's, 1GB)")
    parser.add_argument("--passes", type=int, nargs="+", default=[1, 4, 16], help="key-range passes of the sorted copies")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sort-cost-", dir=args.cache.parent) as scratch:
        con = duckdb.connect(str(Path(scratch) / "copy.duckdb"))
        con.execute(f"SET memory_limit='{args.memory}'")
        con.execute(f"SET temp_directory='{Path(scratch) / 'spill'}'")
        con.execute("SET preserve_insertion_order=false")  # as the loader builds
        con.execute(f"ATTACH '{args.cache}' AS cache (READ_ONLY)")
        source = f'cache.main."{args.table}"'
        (rows,) = con.execute(f"SELECT count(*) FROM {source}").fetchone() or (0,)
        print(f"{args.cache}: {args.table}, {rows:,} rows; memory limit {args.memory}; DuckDB {duckdb.__version__}")
        print(f"  copied as it is:                {copy(con, source, None)}", flush=True)
        for passes in args.passes:
            label = "sorted in one statement:" if passes == 1 else f"sorted in {passes} key-range passes:"
            print(f"  {label:<31} {copy(con, source, passes)}", flush=True)
        con.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
