"""
Requests and bytes per incident against a local Log Analytics endpoint, over a generated sample tenant.

Three targets of the read side, measured rather than asserted in a timed test:

* requests per incident stay at most 4 (evidence, baseline, context, then the scope of the suspect
  sessions) whatever the number of accounts;
* the bytes the baseline query returns for a user stay flat when that user's raw sign-in volume
  grows tenfold (it is summarised in KQL, with capped sets), so a busy account cannot blow up
  the Function's memory or the query API's 64 MB answer limit;
* the bytes the scope question returns for an attacked account stay flat when its activity (Graph
  requests, mailbox audit) grows tenfold: it is summarised in KQL too.
* the bytes an incident's three answers take stay flat (within 5%) when the other users' audit
  volume grows tenfold: the context query returns the incident's accounts' rows only.

It generates a tenant (`python -m sample_tenant --out DIR --users N`), loads it with
`enrichment.adapters.exports.load_exports`, serves it through the fake Log Analytics endpoint of the tests
(duckdb-kql behind the real REST wire format, over HTTPS) and runs `gather_evidence` through the
real `LogAnalyticsEngine`. `--exports DIR` uses an existing folder of exports instead.

    .venv/bin/python bench/la_requests.py [--users 60] [--variants 2] [--exports DIR]

Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb_kql  # noqa: E402

from common.logs import configure_logging  # noqa: E402
from common.settings import Settings  # noqa: E402
from enrichment.adapters.embedded import WATCHLIST_FUNCTION  # noqa: E402
from enrichment.adapters.exports import KNOWN_TABLES, USER_KEY, WATCHLIST_TABLE, load_exports  # noqa: E402
from enrichment.adapters.loganalytics import LogAnalyticsEngine  # noqa: E402
from enrichment.domain.attribution import attribute  # noqa: E402
from enrichment.domain.model import Account  # noqa: E402
from enrichment.queries import kql  # noqa: E402
from enrichment.services.gather import baseline_window, evidence_window, gather_evidence  # noqa: E402
from enrichment.services.investigate import investigate  # noqa: E402
from tests.fakes.loganalytics_server import FakeCredential, LogAnalyticsServer  # noqa: E402

WORKSPACE = "00000000-0000-4000-8000-00000000be5c"
MAX_REQUESTS = 4
#: Baseline bytes may wobble a little (counts gain digits); more than this is growth, not noise.
FLAT_TOLERANCE = 0.10
#: An incident's bytes when the rest of the tenant's audit volume grows: flat, not merely bounded.
AUDIT_TOLERANCE = 0.05
NON_INTERACTIVE = "AADNonInteractiveUserSignInLogs"


def generate(out: Path, users: int, variants: int) -> None:
    """Run the sample tenant generator; say plainly when it is not there or refuses."""
    if not (ROOT / "sample_tenant" / "__main__.py").exists():
        sys.exit("bench/la_requests.py needs the generator: `python -m sample_tenant` is not available (or pass --exports DIR)")
    command = [sys.executable, "-m", "sample_tenant", "--out", str(out), "--users", str(users), "--variants", str(variants)]
    if subprocess.run(command, cwd=ROOT, check=False).returncode != 0:
        sys.exit(f"the generator failed: {' '.join(command[1:])}")


def copy_into_memory(database: Path) -> Any:
    """A writable in-memory copy of the loaded exports as a workspace holds them (no cache columns), so volumes can grow."""
    con = duckdb_kql.connect()
    con.execute("ATTACH ? AS src (READ_ONLY)", [str(database)])
    present = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'src'").fetchall()}
    for table in (*KNOWN_TABLES, WATCHLIST_TABLE):
        if table in present:
            columns = [
                row[0]
                for row in con.execute(
                    "SELECT column_name FROM duckdb_columns() WHERE database_name = 'src' AND table_name = ? ORDER BY column_index",
                    [table],
                ).fetchall()
                if row[0] != USER_KEY
            ]
            con.execute(
                f'CREATE TABLE "{table}" AS SELECT {", ".join(f"{chr(34)}{c}{chr(34)}" for c in columns)} FROM src."{table}"'
            )
    con.execute("DETACH src")
    return con


def busiest_users(con: Any, count: int) -> list[str]:
    rows = con.execute(
        f'SELECT lower(UserPrincipalName) AS u, count(*) AS n FROM "{NON_INTERACTIVE}" '
        "WHERE UserPrincipalName IS NOT NULL AND UserPrincipalName <> '' GROUP BY u ORDER BY n DESC, u LIMIT ?",
        [count],
    ).fetchall()
    return [row[0] for row in rows]


def incident_time(con: Any, settings: Settings) -> datetime:
    """Late enough that the evidence window and the baseline days both hold data."""
    latest = con.execute(f'SELECT max(TimeGenerated) FROM "{NON_INTERACTIVE}"').fetchone()[0]
    return latest.replace(tzinfo=UTC) - timedelta(hours=settings.window_after_hours)


def multiply(con: Any, user: str, factor: int) -> int:
    """Make the user's non-interactive rows `factor` times as many (copies seconds apart, a refresh flood); returns them."""
    table = f'"{NON_INTERACTIVE}"'
    con.execute(f"CREATE TEMP TABLE original AS SELECT * FROM {table} WHERE lower(UserPrincipalName) = ?", [user])
    for copy in range(1, factor):
        con.execute(
            f"INSERT INTO {table} SELECT * REPLACE (TimeGenerated + to_seconds(?) AS TimeGenerated) FROM original", [copy * 7]
        )
    con.execute("DROP TABLE original")
    return int(con.execute(f"SELECT count(*) FROM {table} WHERE lower(UserPrincipalName) = ?", [user]).fetchone()[0])


def multiply_other_audit(con: Any, users: list[str], factor: int) -> int:
    """Make every audit row that names none of `users` `factor` times as many (copies a second apart); returns the audit rows."""
    named = " OR ".join(
        ["lower(CAST(InitiatedBy AS VARCHAR)) LIKE ?"] * len(users)
        + ["lower(CAST(TargetResources AS VARCHAR)) LIKE ?"] * len(users)
    )
    patterns = [f"%{user}%" for user in users] * 2
    con.execute(f"CREATE TEMP TABLE others AS SELECT * FROM AuditLogs WHERE NOT ({named})", patterns)
    for copy in range(1, factor):
        con.execute("INSERT INTO AuditLogs SELECT * REPLACE (TimeGenerated + to_seconds(?) AS TimeGenerated) FROM others", [copy])
    con.execute("DROP TABLE others")
    return int(con.execute("SELECT count(*) FROM AuditLogs").fetchone()[0])


def bytes_by_query(server: LogAnalyticsServer, since: int) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for request in server.requests[since:]:
        sizes[request.query_name] = sizes.get(request.query_name, 0) + request.response_bytes
    return sizes


def _attacks(folder: Path) -> list[dict[str, Any]]:
    path = folder / "scenarios.json"
    if not path.is_file():
        return []
    return [s for s in json.loads(path.read_text(encoding="utf-8")) if s["kind"] == "attack"]


def _at(scenario: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(scenario["at"].replace("Z", "+00:00"))


def attack_incidents(engine: LogAnalyticsEngine, server: LogAnalyticsServer, folder: Path, settings: Settings) -> bool:
    """Each generated attack incident, investigated on its own: its requests (the scope question included). True when one exceeds the target."""
    attacks = _attacks(folder)
    if not attacks:
        print("(no scenarios.json: the per-incident count is skipped)")
        return False
    print()
    print("attack incident                   requests  scope bytes  suspect sessions")
    worst = 0
    for scenario in attacks:
        before = len(server.requests)
        ((evidence, assessment),) = investigate(engine, [Account(scenario["user"], scenario["user_id"])], _at(scenario), settings)
        requests = len(server.requests) - before
        worst = max(worst, requests)
        sessions = len(attribute(evidence, assessment.suspect_ips))
        print(f"{scenario['id']:<32}  {requests:>8}  {bytes_by_query(server, before).get('scope', 0):>11}  {sessions:>16}")
    print(f"at most {worst} requests per incident (target: at most {MAX_REQUESTS})")
    return worst > MAX_REQUESTS


def multiply_activity(con: Any, user: str, user_id: str, factor: int) -> int:
    """
    Make the user's Graph requests and mailbox activity `factor` times as many (copies seconds apart);
    returns them. Rule and mailbox-setting changes are not copied: more activity is more reading and
    sending, not ten copies of each rule (each of which the scope lists, as it should).
    """
    found = 0
    rules = ", ".join(f"'{operation}'" for operation in kql.RULE_OPERATIONS)
    for table, where, value in (
        ("MicrosoftGraphActivityLogs", "lower(UserId) = ?", user_id),
        ("OfficeActivity", f"lower(UserId) = ? AND Operation NOT IN ({rules})", user),
    ):
        con.execute(f'CREATE TEMP TABLE original AS SELECT * FROM "{table}" WHERE {where}', [value])
        for copy in range(1, factor):
            con.execute(
                f'INSERT INTO "{table}" SELECT * REPLACE (TimeGenerated + to_seconds(?) AS TimeGenerated) FROM original',
                [copy * 3],
            )
        con.execute("DROP TABLE original")
        found += int(con.execute(f'SELECT count(*) FROM "{table}" WHERE {where}', [value]).fetchone()[0])
    return found


def scope_growth(con: Any, engine: LogAnalyticsEngine, server: LogAnalyticsServer, folder: Path, settings: Settings) -> bool:
    """The scope bytes of one attacked account, with its activity x1 then x10. True when they grew beyond the tolerance."""
    attacks = _attacks(folder)
    present = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if not attacks or not {"MicrosoftGraphActivityLogs", "OfficeActivity"} <= present:
        print("(no attack scenario with activity tables: the scope growth is skipped)")
        return False
    scenario = attacks[0]
    account = Account(scenario["user"], scenario["user_id"])
    print()
    print(f"one attacked account ({scenario['id']}), its Graph and mailbox activity x1 then x10")
    print("volume  activity rows  scope bytes")
    measured = {}
    rows = multiply_activity(con, scenario["user"], scenario["user_id"], 1)
    for factor in (1, 10):
        if factor > 1:
            rows = multiply_activity(con, scenario["user"], scenario["user_id"], factor)
        before = len(server.requests)
        investigate(engine, [account], _at(scenario), settings)
        measured[factor] = bytes_by_query(server, before).get("scope", 0)
        print(f"{'x' + str(factor):>6}  {rows:>13}  {measured[factor]:>11}")
    growth = measured[10] / max(1, measured[1]) - 1
    print(f"scope bytes grew {growth:+.1%} for 10x the activity (target: within {FLAT_TOLERANCE:.0%})")
    return growth > FLAT_TOLERANCE


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=60, help="users in the generated tenant")
    parser.add_argument("--variants", type=int, default=2, help="seeded variants of each attack scenario in the tenant")
    parser.add_argument("--exports", type=Path, help="use this folder of exports instead of generating one")
    args = parser.parse_args()
    configure_logging(level=logging.WARNING)  # the table is the output; per-query log lines would interleave

    with tempfile.TemporaryDirectory(prefix="la-bench-") as scratch:
        folder = args.exports
        if folder is None:
            folder = Path(scratch) / "tenant"
            generate(folder, args.users, args.variants)
        loaded = load_exports(folder, cache=Path(scratch) / "cache.duckdb")
        con = copy_into_memory(loaded.database)
        settings = Settings.from_values({"REPLAY_WORKSPACE_ID": WORKSPACE})
        at = incident_time(con, settings)
        users = busiest_users(con, 10)
        if len(users) < 10:
            sys.exit(f"the tenant has {len(users)} users with non-interactive sign-ins; 10 are needed")
        missed = False

        with LogAnalyticsServer(con, workspace_id=WORKSPACE, functions=[WATCHLIST_FUNCTION]) as server:
            engine = LogAnalyticsEngine.create(
                Settings.from_values({"REPLAY_WORKSPACE_ID": WORKSPACE, "REPLAY_LOGS_ENDPOINT": server.url}),
                FakeCredential(),
                connection_verify=server.ca_path,
            )
            print(f"incident at {at.isoformat()}, tenant from {folder}")
            print()
            print("accounts  requests  evidence bytes  baseline bytes  context bytes  scope bytes  signins  elapsed ms")
            for count in (1, 3, 10):
                accounts = [Account(upn, "") for upn in users[:count]]
                before = len(server.requests)
                started = time.perf_counter()
                investigated = investigate(engine, accounts, at, settings)
                elapsed = (time.perf_counter() - started) * 1000
                requests = len(server.requests) - before
                sizes = bytes_by_query(server, before)
                signins = sum(len(e.signins) for e, _ in investigated)
                print(
                    f"{count:>8}  {requests:>8}  {sizes.get('evidence', 0):>14}  {sizes.get('baseline', 0):>14}"
                    f"  {sizes.get('context', 0):>13}  {sizes.get('scope', 0):>11}  {signins:>7}  {elapsed:>10.0f}"
                )
                missed |= requests > MAX_REQUESTS
            missed |= attack_incidents(engine, server, folder, settings)

            print()
            user = users[0]
            window = evidence_window(at, settings)
            account = [Account(user, "")]
            queries = {
                "baseline": kql.baseline_query(account, baseline_window(window, settings)),
                "evidence": kql.evidence_query(account, window, at, row_cap=settings.row_cap),
            }
            print(f"one user ({user}), raw non-interactive volume x1 then x10")
            print("volume  user rows  baseline bytes  evidence bytes")
            measured: dict[int, dict[str, int]] = {}
            rows = multiply(con, user, 1)
            for factor in (1, 10):
                if factor > 1:
                    rows = multiply(con, user, factor)
                before = len(server.requests)
                for query in queries.values():
                    engine.run(query)
                measured[factor] = bytes_by_query(server, before)
                print(
                    f"{'x' + str(factor):>6}  {rows:>9}  {measured[factor]['baseline']:>14}  {measured[factor]['evidence']:>14}"
                )
            growth = measured[10]["baseline"] / max(1, measured[1]["baseline"]) - 1
            print(f"baseline bytes grew {growth:+.1%} for 10x the rows (target: within {FLAT_TOLERANCE:.0%})")
            missed |= growth > FLAT_TOLERANCE

            print()
            incident = [Account(upn, "") for upn in users[:3]]
            print(f"one incident ({len(incident)} accounts), the other users' audit volume x1 then x10")
            print("audit rows  requests  incident bytes  context bytes")
            per_incident: dict[int, int] = {}
            for factor in (1, 10):
                audit_rows = multiply_other_audit(con, [a.upn for a in incident], factor)
                before = len(server.requests)
                gather_evidence(engine, incident, at, settings)
                sizes = bytes_by_query(server, before)
                per_incident[factor] = sum(sizes.values())
                print(
                    f"{audit_rows:>10}  {len(server.requests) - before:>8}  {per_incident[factor]:>14}  {sizes.get('context', 0):>13}"
                )
            change = per_incident[10] / max(1, per_incident[1]) - 1
            print(
                f"incident bytes changed {change:+.1%} for 10x the other users' audit rows (target: within {AUDIT_TOLERANCE:.0%})"
            )
            missed |= abs(change) > AUDIT_TOLERANCE
            missed |= scope_growth(con, engine, server, folder, settings)
        con.close()
    print("targets met" if not missed else "TARGET MISSED")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
