"""
Does a narrowed question stay flat as the tenant grows? The user lookup the cache's layout promises,
measured at growing tenant sizes with each user's own volume fixed.

    .venv/bin/python bench/user_index.py [--users 2000 20000 50000] [--rows-per-user 500] [--lookups 50]

For each size, a sign-in table of `users x rows-per-user` rows is written in two layouts: `indexed`,
the loader's (rows in time order, as exports arrive, so every user's rows are spread over the whole
table, and a user key column under an ART index), and `sorted`, the layout before it (sorted by the
user key, no index), each with a wide JSON-text column beside the key. Each is read the way a narrowed
question reads it: through `open_database`'s view, after `narrow_to` one user. Printed: the build time,
the median time to fetch one user's rows in a warm process, and the plan's scan type and row groups read.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from enrichment.adapters.exports import (  # noqa: E402 - after the path is set
    DIRECTORY_TABLE,
    INTERNAL_PREFIX,
    USER_KEY,
    narrow_to,
    open_database,
)

TABLE = "AADNonInteractiveUserSignInLogs"


def build(path: Path, users: int, rows_per_user: int, layout: str) -> float:
    """A cache-shaped file of `users * rows_per_user` sign-ins in `layout`; the seconds it took."""
    started = time.perf_counter()
    con = duckdb.connect(str(path))
    con.execute("SET preserve_insertion_order=false")
    order = f" ORDER BY {USER_KEY}, TimeGenerated" if layout == "sorted" else ""
    con.execute(
        f"CREATE TABLE \"{TABLE}\" AS SELECT TIMESTAMP '2026-06-01' + INTERVAL (i) SECOND AS TimeGenerated,"
        f" 'user' || (i % {users}) || '@contoso.example' AS UserPrincipalName,"
        f" '{{\"deviceId\": \"' || md5(i::VARCHAR) || '\", \"displayName\": \"' || repeat('x', 200) || '\"}}' AS DeviceDetail,"
        f" 'user' || (i % {users}) || '@contoso.example' AS {USER_KEY}"
        f" FROM range({users * rows_per_user}) AS t(i){order}"
    )
    if layout == "indexed":
        con.execute(f'CREATE INDEX "{INTERNAL_PREFIX}{TABLE}{USER_KEY}" ON "{TABLE}" ({USER_KEY})')
    con.execute(f"CREATE TABLE {DIRECTORY_TABLE} (user_key VARCHAR, user_id VARCHAR)")
    con.execute("CHECKPOINT")
    con.close()
    return time.perf_counter() - started


def lookups(path: Path, users: int, count: int) -> tuple[float, str]:
    """Median seconds to read one user's rows through the narrowed view, and the plan's scan line."""
    con, _ = open_database(path)
    try:
        cursor = con.cursor()
        times = []
        for index in range(count):
            narrow_to(cursor, [f"user{(index * 7919) % users}@contoso.example"], [])
            started = time.perf_counter()
            cursor.execute(f'SELECT TimeGenerated, DeviceDetail FROM "{TABLE}"').fetchall()
            times.append(time.perf_counter() - started)
        (row,) = cursor.execute(f'EXPLAIN ANALYZE SELECT TimeGenerated, DeviceDetail FROM "{TABLE}"').fetchall()
        plan = " / ".join(line.strip("│ ") for line in row[1].splitlines() if "Type:" in line or "Row Groups" in line)
        return statistics.median(times), plan
    finally:
        con.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[2_000, 20_000, 50_000])
    parser.add_argument("--rows-per-user", type=int, default=500)
    parser.add_argument("--lookups", type=int, default=50)
    args = parser.parse_args()
    print(f"{'users':>8}  {'rows':>12}  {'layout':>8}  {'build':>8}  {'one user (p50)':>14}  plan")
    with tempfile.TemporaryDirectory(prefix="user-index-") as scratch:
        for users in args.users:
            for layout in ("indexed", "sorted"):
                path = Path(scratch) / f"{users}-{layout}.duckdb"
                built = build(path, users, args.rows_per_user, layout)
                seconds, plan = lookups(path, users, args.lookups)
                rows = users * args.rows_per_user
                print(f"{users:>8,}  {rows:>12,}  {layout:>8}  {built:>6.1f} s  {seconds * 1000:>11.2f} ms  {plan}", flush=True)
                path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
