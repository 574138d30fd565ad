"""
Does a narrowed question stay flat as the tenant grows? The user lookup the cache's layout promises,
measured at growing tenant sizes with each user's own volume fixed.

    .venv/bin/python bench/user_index.py [--users 2000 20000 50000] [--rows-per-user 500] [--lookups 50]

For each size, a sign-in table of `users x rows-per-user` rows (in time order, as exports arrive:
every user's rows spread over the whole table) is written the way the loader writes
`AADNonInteractiveUserSignInLogs`, a user key column under an ART index, with a wide JSON-text column
beside it, then read the way a narrowed question reads it: through `open_database`'s view, after
`narrow_to` one user. Printed: the median time to fetch one user's rows and the plan's scan type and
row groups read. Flat means the time does not grow with the number of users; a scan would grow with it.
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


def build(path: Path, users: int, rows_per_user: int) -> None:
    """A cache-shaped file: `users * rows_per_user` sign-ins in time order, keyed and indexed by user."""
    con = duckdb.connect(str(path))
    con.execute("SET preserve_insertion_order=false")
    con.execute(
        f"CREATE TABLE \"{TABLE}\" AS SELECT TIMESTAMP '2026-06-01' + INTERVAL (i) SECOND AS TimeGenerated,"
        f" 'user' || (i % {users}) || '@contoso.example' AS UserPrincipalName,"
        f" '{{\"deviceId\": \"' || md5(i::VARCHAR) || '\", \"displayName\": \"' || repeat('x', 200) || '\"}}' AS DeviceDetail,"
        f" 'user' || (i % {users}) || '@contoso.example' AS {USER_KEY}"
        f" FROM range({users * rows_per_user}) AS t(i)"
    )
    con.execute(f'CREATE INDEX "{INTERNAL_PREFIX}{TABLE}{USER_KEY}" ON "{TABLE}" ({USER_KEY})')
    con.execute(f"CREATE TABLE {DIRECTORY_TABLE} (user_key VARCHAR, user_id VARCHAR)")
    con.execute("CHECKPOINT")
    con.close()


def lookups(path: Path, users: int, count: int) -> tuple[float, str]:
    """Median seconds to read one user's rows through the narrowed view, and the plan's scan line."""
    con, _ = open_database(path)
    try:
        cursor = con.cursor()
        times = []
        plan = ""
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
    print(f"{'users':>8}  {'rows':>12}  {'one user (p50)':>14}  plan")
    with tempfile.TemporaryDirectory(prefix="user-index-") as scratch:
        for users in args.users:
            path = Path(scratch) / f"{users}.duckdb"
            build(path, users, args.rows_per_user)
            seconds, plan = lookups(path, users, args.lookups)
            print(f"{users:>8,}  {users * args.rows_per_user:>12,}  {seconds * 1000:>11.2f} ms  {plan}", flush=True)
            path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
