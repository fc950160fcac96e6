"""Transfer benchmark: liftshift against the physical limit, binary COPY of the same table.

Creates a table of ROWS rows (default 1,000,000; `python bench/transfer.py 5000000`) with ~10
mixed-type columns and ~5% NULLs in an embedded PostgreSQL, then measures in the same run:
`COPY … TO STDOUT (FORMAT binary)` (the floor), and liftshift's transfer into DuckDB and into the
local BigQuery endpoint. Prints seconds, rows/s, the ratio to the floor and peak RSS.
"""

import resource
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import yaml

from liftshift import transfer
from liftshift.demo import start_postgres
from liftshift.ledger import Ledger
from liftshift.plan import load_plan

TABLE = """
CREATE TABLE bench AS SELECT g::bigint AS id,
  CASE WHEN g % 20 = 0 THEN NULL ELSE (g % 100000) * 0.01 END::numeric(12,2) AS amount,
  CASE WHEN g % 20 = 1 THEN NULL ELSE g / 3.0 END::float8 AS ratio,
  (g % 1000)::int AS bucket, md5(g::text) AS label,
  CASE WHEN g % 20 = 2 THEN NULL ELSE 'Ünïcode ' || (g % 97) END AS note,
  timestamptz '2024-01-01 00:00:00+00' + g * interval '1.000001 s' AS created_at,
  date '2020-01-01' + g % 2000 AS day, g % 3 = 0 AS flag,
  CASE WHEN g % 20 = 3 THEN NULL ELSE g % 7 END::smallint AS small
FROM generate_series(1, {rows}) g;
ALTER TABLE bench ADD PRIMARY KEY (id); ANALYZE bench;
"""


def copy_floor(url: str) -> float:
    """Seconds for COPY (FORMAT binary) of the whole table to this process."""
    t0 = time.perf_counter()
    with (
        psycopg.connect(url) as conn,
        conn.cursor() as cur,
        cur.copy("COPY bench TO STDOUT (FORMAT binary)") as copy,
    ):
        for _ in copy:
            pass
    return time.perf_counter() - t0


def timed_transfer(folder: Path, url: str, target: str) -> float:
    """Seconds for liftshift's transfer of the table into target."""
    plan_path = folder / f"{target.split(':')[0]}.yaml"
    body = {"name": f"bench-{target.split(':')[0]}", "source": {"url": url},
            "target": {"url": target}, "tables": ["bench"]}  # fmt: skip
    plan_path.write_text(yaml.safe_dump(body))
    plan = load_plan(plan_path)
    t0 = time.perf_counter()
    report = transfer.run(plan, Ledger(plan.ledger_url()))
    seconds = time.perf_counter() - t0
    assert report.gate.passed, report.gate.reasons
    return seconds


def main(rows: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="liftshift-bench-"))
    url = start_postgres(folder / "pg")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(TABLE.format(rows=rows))
    floor = copy_floor(url)
    print(f"rows: {rows:,}   floor (binary COPY): {floor:.2f} s, {rows / floor:,.0f} rows/s")
    for target in ("duckdb:///bench.duckdb", "bigquery://bench/bench?endpoint=local"):
        seconds = timed_transfer(folder, url, target)
        print(f"{target.split(':')[0]:>9}: {seconds:.2f} s, {rows / seconds:,.0f} rows/s, "
              f"{seconds / floor:.2f}x the floor")  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS: this process {peak:.0f} MB, largest child (worker/endpoint) {workers:.0f} MB")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
