"""Delta sync against real PostgreSQL into DuckDB and the local BigQuery endpoint."""

import psycopg
import pytest

from liftshift import lifecycle
from liftshift.connectors import opened
from liftshift.errors import PlanError
from liftshift.ledger import Ledger
from tests.conftest import bigquery_url, new_database, write_plan

# Distinct watermarks per row, so only the row holding the mark sits at it.
_SOURCE = """
CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, price numeric(10,2),
                    updated_at timestamptz NOT NULL);
INSERT INTO items SELECT g, 'item ' || g, g * 1.25, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 s'
FROM generate_series(1, 1000) g;
CREATE TABLE tags (item_id bigint, tag text, updated_at timestamp NOT NULL, PRIMARY KEY (item_id, tag));
INSERT INTO tags SELECT g, t, timestamp '2024-01-01' + g * interval '1 min'
FROM generate_series(1, 50) g, unnest(ARRAY['red', 'blue']) t;
CREATE TABLE notes (body text);
"""
_CHANGES = """
INSERT INTO items SELECT g, 'new ' || g, 1, now() FROM generate_series(1001, 1010) g;
UPDATE items SET name = 'changed', updated_at = now() WHERE id IN (3, 400, 999);
DELETE FROM items WHERE id IN (5, 500, 1000);
DELETE FROM tags WHERE item_id = 7 AND tag = 'red';
INSERT INTO tags VALUES (7, 'green', now());
"""
WATERMARKS = {"items": "updated_at", "tags": "updated_at"}


def _sql(url: str, statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statements)


@pytest.fixture(params=["duckdb", "bigquery", "postgres"])
def target_url(request):
    if request.param == "duckdb":
        return "duckdb:///warehouse.duckdb"
    if request.param == "postgres":
        return new_database(request.getfixturevalue("pg_admin_url"))
    return bigquery_url(request.getfixturevalue("bq_endpoint"))


def _delta(plan):
    report = lifecycle.run_stage("transfer", plan, delta=True).report
    assert report.gate.passed, report.gate.reasons
    return {t.table: t for t in report.tables}  # type: ignore[attr-defined]


def test_inserts_updates_and_deletes_arrive_and_a_quiet_delta_moves_nothing(pg_url, target_url, tmp_path):
    _sql(pg_url, _SOURCE)
    transfer = {"chunk_rows": 100, "watermarks": WATERMARKS}
    plan = write_plan(tmp_path, pg_url, target_url, tables=["items", "tags"], transfer=transfer)
    assert lifecycle.run_stage("transfer", plan).report.gate.passed
    _sql(pg_url, _CHANGES)
    assert not lifecycle.run_stage("validate", plan).report.gate.passed

    first = _delta(plan)
    assert (first["items"].upserted, first["items"].deleted, first["items"].late) == (13, 3, 0)
    assert (first["tags"].upserted, first["tags"].deleted) == (1, 1)
    assert first["items"].since == "2024-01-01 00:16:40+00"  # row 1000's, taken before the full copy
    # 1,007 ids over 1..1010 in ranges of about 100: ids 5, 500 and 1000 fall in three of the 11.
    assert (first["items"].ranges, first["items"].differing) == (11, 3)
    validated = lifecycle.run_stage("validate", plan).report
    assert validated.gate.passed, validated.gate.reasons

    again = _delta(plan)
    assert [(t.upserted, t.deleted, t.late, t.differing) for t in again.values()] == [(0, 0, 0, 0)] * 2
    assert again["items"].since == first["items"].mark
    ledger = Ledger(plan.ledger_url())
    assert ledger.latest_report(plan.name, "delta").body["tables"][0]["mark"] == first["items"].mark
    assert (tmp_path / ".liftshift" / "reports" / "test-plan-delta.md").read_text().startswith("# delta")
    rerun = lifecycle.run_stage("transfer", plan).report  # synced by deltas: the chunks stay done
    assert [t.moved for t in rerun.tables] == [0, 0]  # type: ignore[attr-defined]


def test_a_row_committed_late_at_the_mark_and_a_lost_row_are_both_caught(pg_url, tmp_path):
    _sql(pg_url, _SOURCE)
    transfer = {"chunk_rows": 250, "watermarks": {"items": "updated_at"}}
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", tables=["items"], transfer=transfer)
    assert lifecycle.run_stage("transfer", plan).report.gate.passed
    # Same watermark as the mark (row 1000's), as a transaction committing late would leave it;
    # and a row whose watermark is older than the mark: it was written since the mark's snapshot.
    _sql(pg_url, "INSERT INTO items VALUES (2000, 'late', 1, '2024-01-01 00:16:40+00'), "
                 "(3000, 'older', 1, '2023-06-01 00:00:00+00')")  # fmt: skip
    items = _delta(plan)["items"]
    assert (items.upserted, items.late) == (3, 0)  # rows 1000 and 2000 at the mark, 3000 written since
    assert lifecycle.run_stage("validate", plan).report.gate.passed


def test_an_update_committed_after_a_delta_with_a_watermark_before_its_mark_arrives_next_time(
    pg_url, tmp_path
):
    _sql(pg_url, _SOURCE)
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", tables=["items"],
                      transfer={"watermarks": {"items": "updated_at"}})  # fmt: skip
    assert lifecycle.run_stage("transfer", plan).report.gate.passed
    with psycopg.connect(pg_url) as slow:  # a transaction open across the next delta
        slow.execute("UPDATE items SET name = 'slow', updated_at = now() WHERE id = 1")
        _sql(pg_url, "UPDATE items SET name = 'quick', updated_at = now() WHERE id = 2")
        assert _delta(plan)["items"].upserted == 1  # row 2: row 1's change is not committed
        slow.commit()  # row 1's watermark, its transaction's start, is now below the mark
    assert _delta(plan)["items"].upserted >= 1
    validated = lifecycle.run_stage("validate", plan).report
    assert validated.gate.passed, validated.gate.reasons


def test_a_delta_of_an_emptied_table_keeps_its_mark_and_records_its_snapshot(pg_url, tmp_path):
    _sql(pg_url, _SOURCE)
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", tables=["items"],
                      transfer={"watermarks": {"items": "updated_at"}})  # fmt: skip
    assert lifecycle.run_stage("transfer", plan).report.gate.passed
    ledger = Ledger(plan.ledger_url())
    before = ledger.watermark(plan.name, "items")
    _sql(pg_url, "DELETE FROM items")
    assert _delta(plan)["items"].deleted == 1000
    after = ledger.watermark(plan.name, "items")
    assert before is not None and after is not None and after.mark == before.mark
    assert after.snapshot_xmin is not None and after.snapshot_xmin > (before.snapshot_xmin or 0)


def test_deletes_among_sparse_keys_are_found_in_ranges_of_about_chunk_rows(pg_url, tmp_path):
    # One id far from the rest: ranges of equal width would hold every other row in one range.
    _sql(pg_url, _SOURCE + "INSERT INTO items VALUES (9000000000000000000, 'far', 1, '2024-01-01');")
    transfer = {"chunk_rows": 100, "watermarks": {"items": "updated_at"}}
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", tables=["items"], transfer=transfer)
    assert lifecycle.run_stage("transfer", plan).report.gate.passed
    _sql(pg_url, "DELETE FROM items WHERE id IN (5, 500)")
    items = _delta(plan)["items"]
    assert (items.deleted, items.ranges >= 9, items.differing) == (2, True, 2)
    assert lifecycle.run_stage("validate", plan).report.gate.passed


def test_unknown_watermark_column_is_one_clear_error(pg_url, tmp_path):
    _sql(pg_url, _SOURCE)
    plan = write_plan(
        tmp_path, pg_url, "duckdb:///w.duckdb", transfer={"watermarks": {"items": "changed_at"}}
    )
    with pytest.raises(PlanError, match="watermarks.items: table 'items' has no column 'changed_at'"):
        lifecycle.run_stage("transfer", plan)
    with pytest.raises(PlanError, match="has no column 'changed_at'"):
        lifecycle.run_stage("transfer", plan, delta=True)


def test_a_table_without_primary_key_cannot_have_a_watermark(pg_url, tmp_path):
    _sql(pg_url, _SOURCE + "ALTER TABLE notes ADD COLUMN at date;")
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", transfer={"watermarks": {"notes": "at"}})
    with pytest.raises(PlanError, match="table 'notes' has no primary key"):
        lifecycle.run_stage("transfer", plan, delta=True)


def test_delta_before_any_full_transfer_says_to_transfer_first(pg_url, tmp_path):
    _sql(pg_url, _SOURCE)
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", transfer={"watermarks": WATERMARKS})
    with pytest.raises(PlanError, match=r"run `liftshift transfer PLAN` without --delta first"):
        lifecycle.run_stage("transfer", plan, delta=True)
    assert Ledger(plan.ledger_url()).latest_report(plan.name, "delta") is None


def test_a_table_that_fails_keeps_its_mark_and_the_others_still_sync(pg_url, tmp_path):
    _sql(pg_url, _SOURCE)
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", tables=["items", "tags"],
                      transfer={"watermarks": WATERMARKS})  # fmt: skip
    assert lifecycle.run_stage("transfer", plan).report.gate.passed
    ledger = Ledger(plan.ledger_url())
    before = ledger.watermark(plan.name, "tags")
    _sql(pg_url, _CHANGES)
    import duckdb

    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        conn.execute("DROP TABLE tags")  # the target lost a table: the engine's error, not ours
    report = lifecycle.run_stage("transfer", plan, delta=True).report
    assert not report.gate.passed
    assert report.gate.reasons[0].startswith("tags: CatalogException")
    assert {t.table: t.upserted for t in report.tables}["items"] == 13  # type: ignore[attr-defined]
    assert ledger.watermark(plan.name, "tags") == before


def test_delta_and_wave_together_is_refused_before_connecting(tmp_path):
    plan = write_plan(tmp_path, "postgresql://app@127.0.0.1:1/shop", "duckdb:///w.duckdb")
    with pytest.raises(PlanError, match="give --delta or --wave, not both"):
        lifecycle.run_stage("transfer", plan, wave=1, delta=True)


def test_a_watermark_named_after_the_full_transfer_upserts_every_row_once(pg_url, tmp_path):
    _sql(pg_url, _SOURCE)
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", tables=["items"])
    assert lifecycle.run_stage("transfer", plan).report.gate.passed
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", tables=["items"],
                      transfer={"chunk_rows": 250, "watermarks": {"items": "updated_at"}})  # fmt: skip
    calls = []
    report = lifecycle.run_stage(
        "transfer", plan, delta=True, progress=lambda t, done, total, nbytes=0: calls.append((done, total))
    ).report
    first = report.tables[0]  # type: ignore[attr-defined]
    assert first.upserted == 1000 and first.since is None and "every row was upserted" in first.note
    assert calls == [(0, 1000), (250, 1000), (500, 1000), (750, 1000), (1000, 1000)]  # a range at a time
    assert _delta(plan)["items"].upserted == 0
    assert lifecycle.run_stage("validate", plan).report.gate.passed


def test_changes_move_in_batches_and_a_batch_the_target_rejects_leaves_the_source_usable(pg_url, tmp_path):
    _sql(pg_url, _SOURCE)
    transfer = {"chunk_rows": 250, "chunk_bytes": "8KiB", "watermarks": WATERMARKS}
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", tables=["items", "tags"], transfer=transfer)
    assert lifecycle.run_stage("transfer", plan).report.gate.passed
    _sql(pg_url, "UPDATE items SET name = 'changed ' || id, updated_at = now()")
    calls = []
    report = lifecycle.run_stage(
        "transfer", plan, delta=True, progress=lambda t, done, total, nbytes=0: calls.append((t, done))
    ).report
    assert report.gate.passed and report.tables[0].upserted == 1000  # type: ignore[attr-defined]
    done = [n for t, n in calls if t == "items"]
    assert len(done) > 5 and done == sorted(set(done)) and done[-1] == 1000  # ~8 KiB of rows at a time
    assert lifecycle.run_stage("validate", plan).report.gate.passed

    # items fails at its first batch, its COPY unfinished; tags reads next on the same connection.
    _sql(pg_url, "UPDATE items SET updated_at = now(); INSERT INTO tags VALUES (7, 'green', now())")
    import duckdb

    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        conn.execute("DROP TABLE items")
    report = lifecycle.run_stage("transfer", plan, delta=True).report
    assert [r.split(":")[0] for r in report.gate.reasons] == ["items"], report.gate.reasons
    assert {t.table: t.upserted for t in report.tables}["tags"] == 1  # type: ignore[attr-defined]


_ODD_KEYS = """
CREATE TABLE spans (k interval PRIMARY KEY, v text, updated_at timestamptz NOT NULL);
INSERT INTO spans SELECT g * interval '1 day 1 hour', 'v', '2024-01-01' FROM generate_series(1, 30) g;
CREATE TABLE codes (k char(4) PRIMARY KEY, v text, updated_at timestamptz NOT NULL);
INSERT INTO codes SELECT 'a' || g, 'v', '2024-01-01' FROM generate_series(1, 30) g;
CREATE TABLE amounts (k numeric(20,5) PRIMARY KEY, v text, updated_at timestamptz NOT NULL);
INSERT INTO amounts SELECT g * 1.5, 'v', '2024-01-01' FROM generate_series(1, 30) g;
"""
_ODD_CHANGES = """
UPDATE spans SET v = 'changed', updated_at = now() WHERE k = interval '2 days 2 hours';
DELETE FROM spans WHERE k = interval '3 days 3 hours';
UPDATE codes SET v = 'changed', updated_at = now() WHERE k = 'a2';
DELETE FROM codes WHERE k = 'a3';
UPDATE amounts SET v = 'changed', updated_at = now() WHERE k = 3;
DELETE FROM amounts WHERE k = 4.5;
"""


def test_keys_held_otherwise_in_the_target_match_only_the_rows_that_changed(pg_url, target_url, tmp_path):
    # interval lands as ISO text, char(4) without its padding, numeric(20,5) as a 128-bit decimal:
    # compared as PostgreSQL returns them, no key matched and every row was deleted and copied again.
    _sql(pg_url, _ODD_KEYS)
    marks = {"spans": "updated_at", "codes": "updated_at", "amounts": "updated_at"}
    plan = write_plan(tmp_path, pg_url, target_url, tables=list(marks), transfer={"watermarks": marks})
    assert lifecycle.run_stage("transfer", plan).report.gate.passed
    _sql(pg_url, _ODD_CHANGES)
    for table in _delta(plan).values():
        # since is the watermark every row was copied at: the rows still at it are upserted again
        assert (table.upserted, table.deleted, table.late) == (29, 1, 0), table
    _sql(pg_url, "DELETE FROM spans WHERE k = interval '4 days 4 hours'")
    with opened(plan) as (source, target):  # a row the target lost: the source's key must match it
        for table in source.catalog(list(marks)):
            target.delete_keys(table, target.keys(table, table.primary_key, None).sort_by("k").slice(9, 1))
    moved = {name: (t.upserted, t.deleted, t.late) for name, t in _delta(plan).items()}
    assert moved == {"amounts": (0, 0, 1), "codes": (0, 0, 1), "spans": (0, 1, 1)}
    validated = lifecycle.run_stage("validate", plan).report
    assert validated.gate.passed, validated.gate.reasons


def test_a_delta_into_postgresql_matches_keys_dated_bc_and_past_year_9999(pg_url, pg_admin_url, tmp_path):
    # psycopg's Python dates end at 9999 and begin at year 1: such keys are matched as PostgreSQL's text.
    _sql(pg_url, """
CREATE TABLE ages (d date PRIMARY KEY, v text, updated_at timestamptz NOT NULL);
INSERT INTO ages SELECT date '0500-01-01 BC' + g * 3000, 'v' || g,
  timestamptz '2024-01-01 00:00+00' + g * interval '1 s' FROM generate_series(1, 2000) g;
""")  # fmt: skip
    target_url = new_database(pg_admin_url)
    plan = write_plan(tmp_path, pg_url, target_url, tables=["ages"],
                      transfer={"chunk_rows": 300, "watermarks": {"ages": "updated_at"}})  # fmt: skip
    assert lifecycle.run_stage("transfer", plan).report.gate.passed
    _sql(pg_url, """
UPDATE ages SET v = 'changed', updated_at = now()
  WHERE d IN (date '0500-01-01 BC' + 3000, date '0500-01-01 BC' + 5997000);
DELETE FROM ages WHERE d IN (date '0500-01-01 BC' + 6000, date '0500-01-01 BC' + 5994000);
""")  # fmt: skip
    moved = _delta(plan)["ages"]
    assert (moved.upserted, moved.deleted) == (2, 2), moved
    as_text = "SELECT d::text, v FROM ages ORDER BY ages.d"
    with psycopg.connect(pg_url) as source, psycopg.connect(target_url) as target:
        sent, landed = source.execute(as_text).fetchall(), target.execute(as_text).fetchall()
    assert landed == sent and len(sent) == 1998
    (first, first_v), (*_, before_last_v), (last, last_v) = sent[0], sent[-2], sent[-1]
    assert first.endswith(" BC") and len(last) == 10 + 1 and (first_v, before_last_v, last_v) == (
        "changed", "changed", "v2000"), sent[:1] + sent[-2:]  # fmt: skip
