"""Validation benchmark: full-row comparison against the physical limit, binary COPY of the table.

Creates the transfer benchmark's table (ROWS rows, default 5,000,000; `python bench/validate.py
1000000`) in an embedded PostgreSQL, copies it into DuckDB with liftshift, then measures in the
same run, each the best of two: `COPY … TO STDOUT (FORMAT binary)` (the floor); validating the
identical copy (every row's fingerprint, both sides at once); and finding five planted differences
(two updates, an insert, a delete, a NULL where '' was). Prints seconds, the ratio to the floor
and peak RSS of this process and its children but PostgreSQL's (DuckDB runs inside this process).
"""

import sys
import time
from pathlib import Path

import yaml

from liftshift import transfer
from liftshift.connectors import open_source, open_target
from liftshift.demo import start_postgres
from liftshift.ledger import Ledger
from liftshift.plan import Plan, load_plan
from liftshift.validate import compare_table

sys.path.insert(0, str(Path(__file__).parent))
from transfer import PeakRss, copy_floor, create_table, scratch_folder  # noqa: E402 - the transfer benchmark's table, RSS, floor

PLANTED = [  # {rows} is the table's row count: ids run from 1 to it
    "UPDATE bench SET amount = amount + 0.01 WHERE id = 17",
    "UPDATE bench SET created_at = created_at + INTERVAL 1 MICROSECOND WHERE id = {rows} // 2",
    "INSERT INTO bench SELECT * REPLACE (id + {rows} AS id) FROM bench WHERE id = 42",
    "DELETE FROM bench WHERE id = {rows} * 4 // 5",
    "UPDATE bench SET note = NULL WHERE id = 3",
]


def copied_plan(folder: Path, url: str) -> Plan:
    plan_path = folder / "plan.yaml"
    body = {"name": "bench-validate", "source": {"url": url}, "target": {"url": "duckdb:///bench.duckdb"},
            "tables": ["bench"]}  # fmt: skip
    plan_path.write_text(yaml.safe_dump(body))
    plan = load_plan(plan_path)
    report = transfer.run(plan, Ledger(plan.ledger_url()))
    assert report.gate.passed, report.gate.reasons
    return plan


def timed_compare(plan: Plan) -> tuple[float, int, bool]:
    """Seconds to validate the table, the rows found to differ, and whether it passed."""
    source, target = open_source(plan), open_target(plan)
    try:
        (table,) = source.catalog(["bench"])
        t0 = time.perf_counter()
        line, rows, _ = compare_table(table, source, target)
        return time.perf_counter() - t0, len(rows), line.passed
    finally:
        source.close()
        target.close()


def best_of_two(plan: Plan) -> tuple[float, int, bool]:
    """timed_compare twice, as the floor is measured: the faster run, which found what the other did."""
    first, second = timed_compare(plan), timed_compare(plan)
    assert first[1:] == second[1:], (first, second)
    return min(first, second)


def main(rows: int) -> None:
    folder = scratch_folder("liftshift-bench-validate-")
    url = start_postgres(folder / "pg")
    create_table(url, rows)
    plan = copied_plan(folder, url)
    floor = min(copy_floor(url) for _ in range(2))
    print(f"rows: {rows:,}   floor (binary COPY, best of two): {floor:.2f} s")
    with PeakRss() as rss:
        seconds, found, passed = best_of_two(plan)
    assert passed and found == 0
    print(f"identical copy: {seconds:.2f} s, {seconds / floor:.2f}x the floor, "
          f"peak RSS {rss.peak / 2**20:.0f} MB")  # fmt: skip
    target = open_target(plan)
    for statement in PLANTED:
        target.query(statement.format(rows=rows))
    target.close()
    with PeakRss() as rss:
        seconds, found, passed = best_of_two(plan)
    assert not passed and found == len(PLANTED), found
    print(f"5 planted differences found: {seconds:.2f} s, {seconds / floor:.2f}x the floor, "
          f"peak RSS {rss.peak / 2**20:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5_000_000)
