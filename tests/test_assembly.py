"""Tables landed in parts. Into BigQuery (the local endpoint) a table of several chunks lands in
parts, one load job each, and is assembled once: parts lost before the assembly are moved again,
and an assembly that does not hold its parts' rows is caught. Into PostgreSQL, the parts of a
long-named keyless table keep names of their own."""

import psycopg
import pytest

from liftshift import transfer
from liftshift.connectors import open_target
from liftshift.connectors.base import staging
from liftshift.connectors.bigquery import BigQueryTarget
from liftshift.connectors.postgres import PostgresSource
from liftshift.ledger import Ledger
from tests.conftest import bigquery_url, new_database, write_plan

_TABLES = """
CREATE TABLE items (id bigint PRIMARY KEY, name text);
INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 1000) g;
CREATE TABLE small (id bigint PRIMARY KEY, name text);
INSERT INTO small SELECT g, 'small ' || g FROM generate_series(1, 10) g;
"""


class Interrupted(KeyboardInterrupt):
    """Stands for a run stopped part-way (Ctrl-C, a lost driver): no handler of errors catches it."""


@pytest.fixture
def plan(pg_url, bq_endpoint, tmp_path):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(_TABLES)
    return write_plan(tmp_path, pg_url, bigquery_url(bq_endpoint), tables=["items", "small"],
                      transfer={"chunk_rows": 250})  # fmt: skip


def _catalog(plan, name):
    source = PostgresSource(plan.source.url)
    try:
        (table,) = source.catalog([name])
        return table, source.fingerprint(table, None)
    finally:
        source.close()


def _interrupt_after_two_chunks(plan) -> Ledger:
    """Run the transfer until two chunks of items are done, then stop it, as a kill would."""

    def stop(table: str, done: int, total: int, nbytes: int = 0) -> None:
        if table == "items" and done >= 500:
            raise Interrupted

    ledger = Ledger(plan.ledger_url())
    with pytest.raises(Interrupted):
        transfer.run(plan, ledger, progress=stop)
    return ledger


def test_each_chunk_is_one_load_job_into_a_part_of_its_own_and_the_table_is_assembled_once(plan):
    report = transfer.run(plan, Ledger(plan.ledger_url()))
    assert report.gate.passed, report.gate.reasons
    target = open_target(plan)
    try:
        jobs = target.client.list_jobs()  # the endpoint serves the whole test run: this plan's dataset only
        loads = [j for j in jobs if j.job_type == "load" and j.destination.dataset_id == target.dataset]
        into = sorted(job.destination.table_id for job in loads)
        # items: 4 chunks, each one load job replacing its part; small: one chunk, loaded whole.
        assert into == ["items__liftshift_part_0", "items__liftshift_part_1", "items__liftshift_part_2",
                        "items__liftshift_part_3", "small"], into  # fmt: skip
        assert all(job.write_disposition == "WRITE_TRUNCATE" for job in loads)
        assert target.table_names() == {"items", "small"}  # the parts are gone
        for name in ("items", "small"):
            table, source_fp = _catalog(plan, name)
            assert target.fingerprint(table, None) == source_fp
    finally:
        target.close()


def test_a_part_lost_before_the_assembly_is_moved_again(plan):
    ledger = _interrupt_after_two_chunks(plan)
    table, source_fp = _catalog(plan, "items")
    done = [r.chunk for r in ledger.chunk_records(plan.name, "items") if r.state == "done"]
    assert len(done) >= 2
    target = open_target(plan)
    target.drop(staging(table, done[0]))  # dropped by hand, or written by an older liftshift
    report = transfer.run(plan, ledger)
    assert report.gate.passed, report.gate.reasons
    line = next(t for t in report.tables if t.table == "items")
    assert (line.moved, line.skipped) == (4 - len(done) + 1, len(done) - 1)
    assert target.fingerprint(table, None) == source_fp
    assert "items__liftshift_part_0" not in target.table_names()
    target.close()


def test_an_assembly_that_does_not_hold_its_parts_rows_fails_and_a_rerun_moves_the_table_again(plan):
    ledger = _interrupt_after_two_chunks(plan)
    table, source_fp = _catalog(plan, "items")
    done = [r.chunk for r in ledger.chunk_records(plan.name, "items") if r.state == "done"]
    target = open_target(plan)
    part = target.relation(staging(table, done[0]))
    target.query(f"INSERT INTO {part} (id, name) VALUES (5000, 'not in the source')")

    report = transfer.run(plan, ledger)
    assert not report.gate.passed
    (reason,) = report.gate.reasons
    assert reason.startswith("items: the table assembled from its 4 staging tables") and "1001 rows" in reason
    assert {r.state for r in ledger.chunk_records(plan.name, "items")} == {"pending"}

    again = transfer.run(plan, ledger)
    assert again.gate.passed, again.gate.reasons
    assert next(t for t in again.tables if t.table == "items").moved == 4
    assert target.fingerprint(table, None) == source_fp
    target.close()


def test_an_assembly_the_target_rejects_fails_its_table_alone_and_a_rerun_finishes_it(plan):
    target = open_target(plan)
    table, source_fp = _catalog(plan, "items")

    def lose_a_part_at_the_end(name: str, done: int, total: int, nbytes: int = 0) -> None:
        if name == "items" and done == 1000:  # every chunk landed: the assembly comes next
            target.drop(staging(table, 2))

    ledger = Ledger(plan.ledger_url())
    report = transfer.run(plan, ledger, progress=lose_a_part_at_the_end)
    assert not report.gate.passed
    (reason,) = report.gate.reasons  # the endpoint's own error, not a made-up one
    assert reason.startswith("items: assembling it from its parts failed: NotFound") and "rerun" in reason
    assert next(t for t in report.tables if t.table == "small").failed == []

    again = transfer.run(plan, ledger)
    assert again.gate.passed, again.gate.reasons
    assert next(t for t in again.tables if t.table == "items").moved == 1  # the lost part only
    assert target.fingerprint(table, None) == source_fp
    assert target.table_names() == {"items", "small"}
    target.close()


def test_parts_left_by_a_run_stopped_while_dropping_them_are_dropped_by_the_rerun(plan, monkeypatch):
    dropped: list[str] = []
    real_drop = BigQueryTarget.drop

    def drop_two_then_stop(self, table):  # stands for a kill between two drops
        if len(dropped) == 2:
            raise Interrupted
        real_drop(self, table)
        dropped.append(table.name)

    monkeypatch.setattr(BigQueryTarget, "drop", drop_two_then_stop)
    ledger = Ledger(plan.ledger_url())
    with pytest.raises(Interrupted):
        transfer.run(plan, ledger)
    monkeypatch.setattr(BigQueryTarget, "drop", real_drop)
    target = open_target(plan)
    assert dropped == ["items__liftshift_part_0", "items__liftshift_part_1"]
    assert {"items__liftshift_part_2", "items__liftshift_part_3"} <= target.table_names()

    report = transfer.run(plan, ledger)
    assert report.gate.passed, report.gate.reasons
    assert next(t for t in report.tables if t.table == "items").moved == 0  # assembled already
    assert target.table_names() == {"items", "small"}
    table, source_fp = _catalog(plan, "items")
    assert target.fingerprint(table, None) == source_fp
    target.close()


def test_the_parts_of_a_table_whose_name_fills_postgresqls_63_bytes_stay_apart(
    pg_url, pg_admin_url, tmp_path
):
    name = "measurements_" + "é" * 25  # 63 bytes: with a part's suffix, PostgreSQL would cut it
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{name}" (a int, pad text)')  # no key: ctid chunks land in parts
        conn.execute(f"INSERT INTO \"{name}\" SELECT g, repeat('x', 200) FROM generate_series(1, 3000) g")
    target_url, chunks = new_database(pg_admin_url), {"chunk_rows": 150}
    plan = write_plan(tmp_path, pg_url, target_url, tables=[name], transfer=chunks)
    report = transfer.run(plan, Ledger(plan.ledger_url()))
    assert report.gate.passed, report.gate.reasons
    assert report.tables[0].chunks > 10  # parts 1 and 10 would share a cut name
    table, source_fp = _catalog(plan, name)
    parts = {staging(table, n).name for n in range(report.tables[0].chunks)}
    assert len(parts) == report.tables[0].chunks and all(len(p.encode()) <= 63 for p in parts)
    target = open_target(plan)
    assert target.fingerprint(table, None) == source_fp and target.table_names() == {name}
    target.close()
