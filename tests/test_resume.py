"""A real transfer killed with SIGKILL mid-copy, Dask workers and all, then run again."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import psutil
import psycopg
import pytest

from liftshift import lifecycle, transfer
from liftshift.connectors import open_target
from liftshift.connectors.postgres import PostgresSource
from liftshift.demo import seed
from liftshift.ledger import Ledger
from liftshift.plan import Plan
from tests.conftest import DEMO_ACCEPT, bigquery_url, write_plan

LIFTSHIFT = str(Path(sys.executable).parent / "liftshift")


def _chunk_states(ledger_file: Path, table: str) -> tuple[int, int]:
    """Chunks done and chunks planned for a table, read straight from the ledger's SQLite file."""
    if not ledger_file.exists():
        return 0, 0
    try:
        with sqlite3.connect(ledger_file, timeout=30) as conn:
            row = conn.execute(
                "SELECT count(*), coalesce(sum(state = 'done'), 0) FROM chunks WHERE table_name = ?", (table,)
            ).fetchone()
    except sqlite3.OperationalError:  # the run has not created the ledger's tables yet
        return 0, 0
    return int(row[1]), int(row[0])


def _wait_until_part_done(proc: subprocess.Popen[bytes], ledger_file: Path, table: str) -> tuple[int, int]:
    """Poll the ledger until some of the table's chunks are done and some are not."""
    while proc.poll() is None:
        done, planned = _chunk_states(ledger_file, table)
        if 3 <= done < planned - 3:
            return done, planned
        time.sleep(0.05)  # polling interval only; nothing is asserted about time
    raise AssertionError("the transfer finished before it could be killed: give it more chunks")


def _live_members(group: int) -> list[psutil.Process]:
    """Processes of a process group that are still running (zombies awaiting reaping excluded)."""
    members = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == group and proc.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(proc)
        except (ProcessLookupError, psutil.Error):
            continue
    return members


@pytest.fixture(params=["duckdb", "bigquery"])
def target_url(request):
    if request.param == "duckdb":
        return "duckdb:///warehouse.duckdb"
    return bigquery_url(request.getfixturevalue("bq_endpoint"))


def test_a_transfer_killed_with_sigkill_resumes_to_exactly_the_source(pg_url, target_url, tmp_path):
    rows = 200_000 if target_url.startswith("duckdb") else 50_000  # the endpoint is slower per chunk
    seed(pg_url, rows=rows)
    transfer = {"chunk_rows": rows // 100, "max_source_connections": 1}
    plan = write_plan(tmp_path, pg_url, target_url, accept=DEMO_ACCEPT, transfer=transfer)
    # A cluster of its own, so the kill takes the run's Dask workers with it.
    env = {k: v for k, v in os.environ.items() if k != "LIFTSHIFT_DASK_ADDRESS"}
    env["LIFTSHIFT_DASK_WORKERS"] = "2"
    command = [LIFTSHIFT, "transfer", str(tmp_path / "plan.yaml")]
    run = subprocess.Popen(command, env=env, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    ledger_file = tmp_path / ".liftshift" / "test-plan.db"
    try:
        done, planned = _wait_until_part_done(run, ledger_file, "order_items")
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    assert run.returncode == -signal.SIGKILL
    while _live_members(run.pid):  # the kill reaches every process of the group; wait for them to go
        time.sleep(0.05)
    assert 0 < done < planned == 100

    again = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    ledger = Ledger(plan.ledger_url())
    records = ledger.chunk_records(plan.name, "order_items")
    assert len(records) == planned and all(r.state == "done" for r in records)
    report = ledger.latest_report(plan.name, "transfer")
    assert report is not None and report.passed
    moved = {t["table"]: t for t in report.body["tables"]}
    assert moved["order_items"]["skipped"] >= done  # resumed, not started over
    assert moved["order_items"]["rows"] == rows
    validated = lifecycle.run_stage("validate", plan).report
    assert validated.gate.passed, validated.gate.reasons


class Stopped(KeyboardInterrupt):
    """Stands for a run stopped part-way: no handler of errors catches it."""


@pytest.mark.parametrize("target", ["duckdb", "bigquery"])
def test_a_resumed_transfer_moves_again_the_done_chunks_written_since(pg_url, bq_endpoint, tmp_path, target):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE acct (id int PRIMARY KEY, v text);"
                     "INSERT INTO acct SELECT g, 'v' || g FROM generate_series(1, 2000) g")  # fmt: skip
    url = "duckdb:///w.duckdb" if target == "duckdb" else bigquery_url(bq_endpoint)
    plan = write_plan(tmp_path, pg_url, url, tables=["acct"], transfer={"chunk_rows": 200})
    ledger = Ledger(plan.ledger_url())

    def stop(_table: str, done: int, _total: int, _nbytes: int = 0) -> None:
        if done >= 600:
            raise Stopped

    with pytest.raises(Stopped):
        transfer.run(plan, ledger, progress=stop)
    done = [r for r in ledger.chunk_records(plan.name, "acct") if r.state == "done"]
    first = 1 if done[-1].low is None else done[-1].low
    with psycopg.connect(pg_url, autocommit=True) as conn:  # rows of a chunk already done change
        conn.execute("DELETE FROM acct WHERE id = %s", (first,))
        conn.execute("UPDATE acct SET v = 'changed' WHERE id = %s", (first + 1,))

    report = transfer.run(plan, ledger)
    assert report.gate.passed, report.gate.reasons
    assert report.tables[0].skipped == len(done) - 1  # the unchanged ones stay
    source = PostgresSource(pg_url)
    (table,) = source.catalog(["acct"])
    landed = open_target(plan)
    try:
        assert landed.fingerprint(table, None) == source.fingerprint(table, None)
    finally:
        landed.close()
        source.close()


def test_a_ledger_from_before_chunks_and_marks_had_snapshots_is_migrated(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # the chunks table as the first ledgers made it
        conn.execute("CREATE TABLE chunks (plan VARCHAR(200), table_name VARCHAR(200), chunk INTEGER,"
                     " low BIGINT, high BIGINT, state VARCHAR(20) NOT NULL, rows BIGINT, source_checksum"
                     " VARCHAR(20), target_checksum VARCHAR(20), attempts INTEGER NOT NULL, error TEXT,"
                     " updated_at DATETIME NOT NULL, PRIMARY KEY (plan, table_name, chunk))")  # fmt: skip
        row = "('p', 't', 0, 1, 9, 'done', 8, '5', '5', 1, NULL, '2025-01-01')"
        conn.execute(f"INSERT INTO chunks VALUES {row}")
        conn.execute("CREATE TABLE watermarks (plan VARCHAR(200), table_name VARCHAR(200), column_name"
                     " VARCHAR(200) NOT NULL, mark TEXT, at_mark VARCHAR(60), updated_at DATETIME NOT NULL,"
                     " PRIMARY KEY (plan, table_name))")  # fmt: skip
        conn.execute("INSERT INTO watermarks VALUES ('p', 't', 'at', '5', '1:2', '2025-01-01')")
    ledger = Ledger(f"sqlite:///{path}")
    (old,) = ledger.chunk_records("p", "t")
    assert (old.rows, old.bounds, old.snapshot_xmin) == (8, None, None)  # resumed, it moves again
    ledger.save_chunk("p", replace(old, snapshot_xmin=2**40 + 7))
    assert ledger.chunk_records("p", "t")[0].snapshot_xmin == 2**40 + 7
    mark = ledger.watermark("p", "t")
    assert mark is not None and (mark.mark, mark.snapshot_xmin) == ("5", None)  # a delta reads by mark only
    ledger.save_watermark("p", "t", replace(mark, snapshot_xmin=12))
    assert ledger.watermark("p", "t") == replace(mark, snapshot_xmin=12)


def _touch_target(plan, table, sql: str) -> None:
    landed = open_target(plan)
    try:
        if sql == "drop":
            landed.drop(table)
        else:
            landed.query(sql.format(t=landed.relation(table)))
    finally:
        landed.close()


def _acct_moved(pg_url, target_url, tmp_path, rows: int) -> tuple[Plan, Ledger]:
    """A table acct of rows rows moved into the target in chunks of 200; its plan and ledger."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE acct (id int PRIMARY KEY, v text);"
                     f"INSERT INTO acct SELECT g, 'v' || g FROM generate_series(1, {rows}) g")  # fmt: skip
    plan = write_plan(tmp_path, pg_url, target_url, tables=["acct"], transfer={"chunk_rows": 200})
    ledger = Ledger(plan.ledger_url())
    assert transfer.run(plan, ledger).gate.passed
    return plan, ledger


def test_a_rerun_moves_again_a_table_the_target_lost_rows_of(pg_url, target_url, tmp_path):
    plan, ledger = _acct_moved(pg_url, target_url, tmp_path, 2000)
    source = PostgresSource(pg_url)
    (table,) = source.catalog(["acct"])
    expected = source.fingerprint(table, None)
    source.close()
    for loss in ("DELETE FROM {t} WHERE id <= 10", "drop"):  # rows edited away; the table itself gone
        _touch_target(plan, table, loss)
        report = transfer.run(plan, ledger)
        assert report.gate.passed and (report.tables[0].moved, report.tables[0].skipped) == (10, 0)
        landed = open_target(plan)
        try:
            assert landed.fingerprint(table, None) == expected
        finally:
            landed.close()
    assert transfer.run(plan, ledger).tables[0].skipped == 10  # the target holds it all: nothing moves


def test_a_column_added_in_the_source_after_the_copy_stops_the_rerun_until_the_target_table_goes(
    pg_url, target_url, tmp_path
):
    plan, ledger = _acct_moved(pg_url, target_url, tmp_path, 1000)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE acct ADD COLUMN note text DEFAULT 'n'")
    report = transfer.run(plan, ledger)  # before: every chunk was done, so it passed on the old shape
    assert not report.gate.passed and report.tables[0].moved == 0
    (reason,) = report.gate.reasons
    assert "column note is missing in the target" in reason and "drop that table in the target" in reason
    source = PostgresSource(pg_url)
    (table,) = source.catalog(["acct"])
    expected = source.fingerprint(table, None)
    source.close()
    _touch_target(plan, table, "drop")
    report = transfer.run(plan, ledger)
    assert report.gate.passed and report.tables[0].moved == 5
    landed = open_target(plan)
    try:
        assert landed.fingerprint(table, None) == expected  # the new column arrived with its values
    finally:
        landed.close()


def test_ctrl_c_says_how_to_carry_on_and_exits_130(pg_url, tmp_path):
    seed(pg_url, rows=200_000)
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", accept=DEMO_ACCEPT,
                      transfer={"chunk_rows": 2_000, "max_source_connections": 1})  # fmt: skip
    run = subprocess.Popen([LIFTSHIFT, "transfer", str(tmp_path / "plan.yaml")], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip
    try:
        _wait_until_part_done(run, tmp_path / ".liftshift" / "test-plan.db", "order_items")
    finally:
        os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C sends the terminal's foreground group
    output, _ = run.communicate(timeout=120)
    assert run.returncode == 130, output
    assert "interrupted: the ledger keeps what was done" in " ".join(output.split())
    assert lifecycle.run_stage("transfer", plan).report.gate.passed
