"""
Minimal reproductions of what costs time, or answers wrongly, in duckdb-kql's translation.

    .venv/bin/python bench/duckdb_kql_repro.py

Each finding prints what duckdb-kql does and what Kusto does; docs/duckdb-kql-upstream.md explains
them and carries the patch offered upstream. Nothing from this repository is imported: the script is
meant to be attached to an upstream issue as it is.
"""

from __future__ import annotations

import time

import duckdb_kql

COLUMNS = [f"C{i}" for i in range(30)]


def _bind_seconds(con: object, sql: str, repeats: int = 5) -> float:
    """Median seconds DuckDB spends parsing, binding and planning `sql` (EXPLAIN runs nothing)."""
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        con.execute("EXPLAIN " + sql).fetchall()  # type: ignore[attr-defined]
        timings.append(time.perf_counter() - started)
    return sorted(timings)[len(timings) // 2]


def typed_columns_still_get_a_type_switch(con: object) -> None:
    """1. `tostring(x)` on a VARCHAR column renders a switch over every type, for every reference."""
    con.execute(f"CREATE OR REPLACE TABLE T ({', '.join(f'{c} VARCHAR' for c in COLUMNS)})")  # type: ignore[attr-defined]
    schema = {"T": COLUMNS}
    for label, wrap in (("tostring(x)", "tostring({})"), ('coalesce(x, "")', 'coalesce({}, "")')):
        kql = "T | project " + ", ".join(f"{c}s = {wrap.format(c)}" for c in COLUMNS)
        sql = str(duckdb_kql.to_sql(kql, schema=schema))
        print(f"   {label:<16} 30 columns: {len(sql):>6} bytes of SQL, {_bind_seconds(con, sql) * 1000:6.1f} ms to bind")


def numbers_sort_as_text(con: object) -> None:
    """2. `array_sort_asc` of numbers sorts their JSON text: 10 before 9."""
    found = duckdb_kql.kql(con, "print s = array_sort_asc(dynamic([10, 9, 100, 2.5]))").fetchall()[0][0]  # type: ignore[arg-type]
    print(f"   array_sort_asc(dynamic([10, 9, 100, 2.5])) -> {found}   (Kusto: [2.5,9,10,100])")


def make_set_parses_strings(con: object) -> None:
    """3. `make_set` of a string column parses every value as JSON: one that looks like an array fails the query."""
    query = 'datatable(UserAgent: string)["curl/8", "[1,2]"] | summarize s = make_set(UserAgent)'
    try:
        found = duckdb_kql.kql(con, query).fetchall()[0][0]  # type: ignore[arg-type]
        print(f"   make_set over ['curl/8', '[1,2]'] -> {found}   (Kusto: [\"curl/8\",\"[1,2]\"])")
    except Exception as error:
        print(f"   make_set over ['curl/8', '[1,2]'] -> {type(error).__name__}: {str(error).splitlines()[0][:90]}")
    capped = duckdb_kql.kql(con, 'datatable(x: string)["a", "b", "c"] | summarize s = make_set(x, 2)').fetchall()[0][0]  # type: ignore[arg-type]
    print(f"   make_set(x, 2) over a, b, c -> {capped}   (Kusto: at most 2 elements)")


def relation_binds_twice(con: object) -> None:
    """4. `kql()` returns a relation: `.columns` binds the statement, `.fetchall()` binds it again."""
    con.execute(f"CREATE OR REPLACE TABLE T ({', '.join(f'{c} VARCHAR' for c in COLUMNS)})")  # type: ignore[attr-defined]
    kql = "T | project " + ", ".join(f"{c}s = tostring({c})" for c in COLUMNS)
    sql = str(duckdb_kql.to_sql(kql, schema={"T": COLUMNS}))
    relation_times, cursor_times = [], []
    for _ in range(5):
        started = time.perf_counter()
        relation = con.sql(sql)  # type: ignore[attr-defined]
        _ = relation.columns
        relation.fetchall()
        relation_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        cursor = con.execute(sql)  # type: ignore[attr-defined]
        _ = [d[0] for d in cursor.description]
        cursor.fetchall()
        cursor_times.append(time.perf_counter() - started)
    relation_ms, cursor_ms = (sorted(t)[2] * 1000 for t in (relation_times, cursor_times))
    print(
        f"   relation (.columns, .fetchall): {relation_ms:6.1f} ms; cursor (execute, description, fetchall): {cursor_ms:6.1f} ms"
    )


def main() -> int:
    con = duckdb_kql.connect()
    print(f"duckdb-kql {duckdb_kql.__version__}")
    for finding in (typed_columns_still_get_a_type_switch, numbers_sort_as_text, make_set_parses_strings, relation_binds_twice):
        print((finding.__doc__ or "").strip().splitlines()[0])
        finding(con)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
