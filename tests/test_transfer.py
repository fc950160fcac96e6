"""Transfer on a real Dask cluster: every key shape, one snapshot, idempotent reruns, faults."""

import math
import threading
import time
from dataclasses import replace

import psycopg
import pyarrow as pa
import pytest

from liftshift import lifecycle, transfer
from liftshift.chunking import MIN_CHUNK_ROWS, chunk_rows_for, from_record, plan_table, to_record
from liftshift.connectors import open_target
from liftshift.connectors.base import CtidRange, KeyRange, staging
from liftshift.connectors.postgres import PostgresSource
from liftshift.errors import SourceReadError
from liftshift.extract import arrow_fingerprint
from liftshift.ledger import Ledger
from tests.conftest import bigquery_url, new_database, write_plan
from tests.test_connectors import EDGE_TABLE, FRACTIONS, MORE_TYPES, WIDE_NUMBERS, ZEROS

# Keys that are awkward as literals: quotes, backslashes, newlines, non-ASCII, and upper case
# sorting before lower case (byte order). The embedded server's databases are C.UTF-8 and it has no
# ICU, so a column collated otherwise (which key_expr's COLLATE "C" is for) cannot be built here.
SHAPES = """
CREATE TABLE composite (region text, day date, seq int, amount numeric(10,2), PRIMARY KEY (region, day, seq));
INSERT INTO composite SELECT (ARRAY['a''b', 'c\\d', E'e\\nf', 'é', 'Z', 'a'])[1 + g % 6],
  date '2024-01-01' + g % 5, g, g * 0.5 FROM generate_series(1, 600) g;
CREATE TABLE uuids (u uuid PRIMARY KEY, ts timestamptz, note text);
INSERT INTO uuids SELECT md5(g::text)::uuid,
  timestamptz '2024-01-01 00:00:00.000001+00' + g * interval '1 us', 'n' || g FROM generate_series(1, 500) g;
CREATE TABLE stamps (at timestamp PRIMARY KEY, v float8);
INSERT INTO stamps SELECT timestamp '2000-01-01 00:00:00.000001' + g * interval '1.5 s', g / 7.0
  FROM generate_series(1, 500) g;
CREATE TABLE keyless (a int, b text);
INSERT INTO keyless SELECT g % 50, repeat('x', g % 300) FROM generate_series(1, 3000) g;
CREATE TABLE sparse (id bigint PRIMARY KEY, v text);
INSERT INTO sparse SELECT g, 'v' || g FROM generate_series(1, 1000) g;
INSERT INTO sparse VALUES (-9223372036854775808, 'least'), (9223372036854775807, 'most');
ANALYZE sparse;
CREATE TABLE parted (a int, day date NOT NULL, b text) PARTITION BY RANGE (day);
CREATE TABLE parted_2024 PARTITION OF parted FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE parted_2025 PARTITION OF parted FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO parted SELECT g, date '2024-01-01' + g % 700, repeat('p', g % 200)
  FROM generate_series(1, 3000) g;
"""
# parted: a keyless partitioned table, whose own size is 0 and whose ctid ranges run in every partition.
# sparse: an integer key whose two sentinels stretch its span far beyond its rows, so equal-width
# ranges would put every other row into one chunk.


def _target_url(kind: str, tmp_path, bq_endpoint, pg_admin_url) -> str:
    if kind == "duckdb":
        return "duckdb:///warehouse.duckdb"
    return bigquery_url(bq_endpoint) if kind == "bigquery" else new_database(pg_admin_url)


@pytest.fixture
def shapes(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(SHAPES)
    return pg_url


def _assert_copied(plan, tables):
    source = PostgresSource(plan.source.url)
    target = open_target(plan)
    try:
        for table in source.catalog(tables):
            assert target.fingerprint(table, None) == source.fingerprint(table, None), table.name
    finally:
        source.close()
        target.close()


@pytest.mark.parametrize("kind", ["duckdb", "postgres", "bigquery"])
def test_every_key_shape_is_chunked_copied_exactly_and_a_rerun_never_doubles(
    shapes, kind, tmp_path, bq_endpoint, pg_admin_url
):
    url = _target_url(kind, tmp_path, bq_endpoint, pg_admin_url)
    plan = write_plan(tmp_path, shapes, url, transfer={"chunk_rows": 150},
                      tables=["composite", "uuids", "stamps", "keyless", "sparse", "parted"])  # fmt: skip
    report = transfer.run(plan, Ledger(plan.ledger_url()))
    assert report.gate.passed, report.gate.reasons
    chunks = {t.table: t.chunks for t in report.tables}
    assert all(n >= 3 for n in chunks.values()), chunks
    _assert_copied(plan, ["composite", "uuids", "stamps", "keyless", "sparse", "parted"])

    ledger = Ledger(plan.ledger_url())
    for name in ("composite", "keyless"):  # redo two chunks of each, as if they had not landed
        for record in ledger.chunk_records(plan.name, name)[1:3]:
            ledger.save_chunk(plan.name, replace(record, state="pending"))
    again = {t.table: t for t in transfer.run(plan, ledger).tables}
    # A keyless table's page ranges are read again in one snapshot: rows move between pages. Into
    # BigQuery a table is assembled from parts, dropped after: redoing any chunk redoes them all.
    redone = again["composite"].chunks if kind == "bigquery" else 2
    assert (again["composite"].moved, again["uuids"].moved) == (redone, 0)
    assert again["keyless"].moved == again["keyless"].chunks
    _assert_copied(plan, ["composite", "keyless"])
    target = open_target(plan)
    (keyless,) = PostgresSource(shapes).catalog(["keyless"])
    assert target.columns(staging(keyless, 0)) == []  # staging tables are gone after assembly
    target.close()


def test_chunks_hold_about_chunk_bytes_of_the_table_unless_the_plan_fixes_their_rows(shapes, tmp_path):
    with psycopg.connect(shapes, autocommit=True) as conn:  # rows of ~1 KB and of ~40 bytes
        rows = "FROM generate_series(1, 40000) g"
        conn.execute(f"CREATE TABLE wide AS SELECT g AS id, repeat('w', 1000) AS pad {rows}")
        conn.execute(f"CREATE TABLE narrow AS SELECT g AS id {rows}")
    source = PostgresSource(shapes)
    narrow, wide = source.catalog(["wide", "narrow"])  # in name order
    spec = write_plan(tmp_path, shapes, "duckdb:///w.duckdb", transfer={"chunk_bytes": "512KiB"}).transfer
    wide_rows, narrow_rows = (chunk_rows_for(spec, t, source.row_count(t)) for t in (wide, narrow))
    assert wide_rows == MIN_CHUNK_ROWS  # 512 KiB of 1 KB rows is ~500 rows: raised to the least
    assert narrow_rows == round(2**19 * 40000 / narrow.total_bytes) and narrow_rows > 10000
    fixed = write_plan(tmp_path, shapes, "duckdb:///w.duckdb", transfer={"chunk_rows": 123}).transfer
    assert chunk_rows_for(fixed, wide, 40000) == 123
    source.close()


def test_chunk_boundaries_survive_the_ledger_and_cover_the_table(shapes):
    source = PostgresSource(shapes)
    for table in source.catalog(["composite", "uuids", "stamps", "keyless", "sparse", "parted"]):
        chunks = plan_table(source, table, source.row_count(table), 100)
        assert len(chunks) >= 3
        restored = [from_record(table, to_record(table, i, c)) for i, c in enumerate(chunks)]
        assert restored == chunks
        assert table.total_bytes > 0, table.name  # a partitioned table's summed over its partitions
        expected = CtidRange if table.name in ("keyless", "parted") else KeyRange
        assert all(isinstance(c, expected) for c in restored)
        counts = [source.fingerprint(table, c).rows for c in restored]
        assert sum(counts) == source.row_count(table) and min(counts) > 0, counts
        if expected is KeyRange:
            assert max(counts) <= 2 * 100, (table.name, counts)
    source.close()


@pytest.mark.parametrize("name", ["edge", "more", "wide", "fractions", "zeros"])
def test_the_checksum_at_extract_equals_postgresql_s_own(pg_url, name):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(EDGE_TABLE + MORE_TYPES + WIDE_NUMBERS + FRACTIONS + ZEROS)
    source = PostgresSource(pg_url)
    (table,) = source.catalog([name])
    data = source.read_table(table, None)
    assert arrow_fingerprint(table, data) == source.fingerprint(table, None)
    for column in table.columns:
        one = replace(table, columns=(column,))
        expected = source.fingerprint(one, None)
        assert arrow_fingerprint(one, data.select([column.name])) == expected, column.name
    source.close()


def test_a_table_written_during_the_transfer_is_copied_as_of_one_moment(pg_url, tmp_path):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text);"
                     "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 2000) g")  # fmt: skip
    source = PostgresSource(pg_url)
    (table,) = source.catalog(["t"])
    before = source.fingerprint(table, None)
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb",
                      transfer={"chunk_rows": 200, "max_source_connections": 1})  # fmt: skip
    writes = []

    def write_between_chunks(_table: str, done: int, _total: int, _nbytes: int = 0) -> None:
        if 0 < done < 2000:  # after each landed chunk, change rows in chunks not yet read
            with psycopg.connect(pg_url, autocommit=True) as conn:
                conn.execute("UPDATE t SET v = 'changed' WHERE id > %s", (done,))
                conn.execute("DELETE FROM t WHERE id = 2000")
                conn.execute("INSERT INTO t VALUES (%s, 'new')", (5000 + done,))
            writes.append(done)

    report = transfer.run(plan, Ledger(plan.ledger_url()), progress=write_between_chunks)
    assert report.gate.passed and len(writes) >= 5
    target = open_target(plan)
    assert target.fingerprint(table, None) == before != source.fingerprint(table, None)
    target.close()
    source.close()


_KILL_COPY = """SELECT pg_terminate_backend(pid), pid FROM pg_stat_activity
WHERE state = 'active' AND query LIKE '%COPY (%big%' AND pid <> pg_backend_pid() LIMIT 1"""


def test_a_source_connection_dropped_mid_chunk_is_retried(pg_url, tmp_path):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE big (id int PRIMARY KEY, pad text)")
        conn.execute("INSERT INTO big SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 400000) g")
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", transfer={"chunk_rows": 100000})
    killed: list[int] = []
    stop = threading.Event()

    def kill_first_copy() -> None:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            while not stop.is_set() and not killed:
                row = conn.execute(_KILL_COPY).fetchone()
                killed.extend([row[1]] if row and row[0] else [])
                time.sleep(0.002)

    killer = threading.Thread(target=kill_first_copy)
    killer.start()
    try:
        report = transfer.run(plan, Ledger(plan.ledger_url()))
    finally:
        stop.set()
        killer.join()
    assert killed, "no COPY was caught in flight to terminate"
    assert report.gate.passed and report.tables[0].retried >= 1
    _assert_copied(plan, ["big"])


def test_a_chunk_the_target_rejects_fails_with_its_message_and_a_rerun_completes_it(
    pg_url, pg_admin_url, tmp_path
):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v int);"
                     "INSERT INTO t SELECT g, g FROM generate_series(1, 1000) g")  # fmt: skip
    target_url = new_database(pg_admin_url)
    with psycopg.connect(target_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int NOT NULL, v int CONSTRAINT small_v CHECK (v < 700))")
    plan = write_plan(tmp_path, pg_url, target_url, transfer={"chunk_rows": 250})
    first = transfer.run(plan, Ledger(plan.ledger_url()))
    assert not first.gate.passed
    (line,) = first.tables
    assert (line.chunks, line.moved, len(line.failed)) == (4, 2, 2)
    assert all('violates check constraint "small_v"' in f for f in line.failed), line.failed
    with psycopg.connect(target_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE t DROP CONSTRAINT small_v")
    again = transfer.run(plan, Ledger(plan.ledger_url()))
    assert again.gate.passed and (again.tables[0].moved, again.tables[0].skipped) == (2, 2)
    _assert_copied(plan, ["t"])


def test_a_table_dropped_before_its_turn_fails_alone_saying_so_and_a_rerun_without_it_passes(
    pg_url, tmp_path
):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE aa (id int PRIMARY KEY); INSERT INTO aa SELECT generate_series(1, 1000)")
        conn.execute("CREATE TABLE zz (id int PRIMARY KEY); INSERT INTO zz SELECT generate_series(1, 10)")
    chunks = {"chunk_rows": 250, "tables_at_once": 1}  # zz's turn comes after aa's
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", tables=["aa", "zz"], transfer=chunks)
    dropped = []

    def drop_zz_while_aa_moves(table: str, done: int, total: int, nbytes: int = 0) -> None:
        if table == "aa" and nbytes and not dropped:  # after aa's first chunk landed: zz was catalogued
            with psycopg.connect(pg_url, autocommit=True) as conn:
                dropped.append(conn.execute("DROP TABLE zz"))

    report = transfer.run(plan, Ledger(plan.ledger_url()), progress=drop_zz_while_aa_moves)
    assert dropped and not report.gate.passed
    assert [(t.table, t.rows) for t in report.tables] == [("aa", 1000), ("zz", 0)]
    (reason,) = report.gate.reasons
    assert reason.startswith("zz: the table is gone from the source schema") and "'tables'" in reason
    rerun = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", tables=["aa"], transfer=chunks)
    again = transfer.run(rerun, Ledger(rerun.ledger_url()))
    assert again.gate.passed and (again.tables[0].skipped, again.tables[0].moved) == (4, 0)


def test_both_places_of_the_checksum_at_extract_record_the_same_proofs(pg_url, pg_admin_url, tmp_path):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(EDGE_TABLE)
    proofs = []
    for verify in ("extract", "source"):
        folder = tmp_path / verify
        folder.mkdir()
        # Into PostgreSQL, both places compute the canonical row hash (into DuckDB, extract is native).
        plan = write_plan(folder, pg_url, new_database(pg_admin_url), tables=["edge"],
                          transfer={"chunk_rows": 2, "verify": verify})  # fmt: skip
        assert transfer.run(plan, Ledger(plan.ledger_url())).gate.passed
        records = Ledger(plan.ledger_url()).chunk_records(plan.name, "edge")
        proofs.append([(r.rows, r.source_checksum) for r in records])
    assert proofs[0] == proofs[1] and len(proofs[0]) == 3


NATIVE_EDITS = [
    "UPDATE edge SET f8 = 1e-323 WHERE id = 3",  # a float's last bit
    "UPDATE edge SET tz = tz + INTERVAL 1 MICROSECOND WHERE id = 1",
    "UPDATE edge SET t = NULL WHERE id = 1",  # '' became NULL
    "UPDATE edge SET big = big + 0.00000001 WHERE id = 1",
    "UPDATE edge SET j = '{\"a\": null}' WHERE id = 1",
]


@pytest.mark.parametrize("edit", NATIVE_EDITS)
def test_into_duckdb_chunks_are_proved_by_duckdbs_own_hash_which_sees_every_change(pg_url, tmp_path, edit):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(EDGE_TABLE)
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", tables=["edge"], transfer={"chunk_rows": 2})
    assert transfer.run(plan, Ledger(plan.ledger_url())).gate.passed
    records = Ledger(plan.ledger_url()).chunk_records(plan.name, "edge")
    assert all(r.source_checksum == r.target_checksum for r in records)
    source = PostgresSource(pg_url)
    (table,) = source.catalog(["edge"])
    whole = source.read_table(table, None)
    source.close()
    target = open_target(plan)
    try:
        assert target.native_fingerprint(table, None) == arrow_fingerprint(table, whole, native=True)
        target.query(edit)
        assert target.native_fingerprint(table, None) != arrow_fingerprint(table, whole, native=True)
    finally:
        target.close()
    # DuckDB's UPDATE keeps -0 when told to write 0 (they compare equal), so the sign is flipped in Arrow.
    values = [0.0 if v == 0 else v for v in whole.column("f8").to_pylist()]
    assert math.copysign(1, whole.column("f8")[1].as_py()) == -1  # row 2 holds -0
    flipped = whole.set_column(whole.schema.get_field_index("f8"), "f8", pa.array(values, pa.float64()))
    assert arrow_fingerprint(table, flipped, native=True) != arrow_fingerprint(table, whole, native=True)


def test_a_ledger_from_before_json_bounds_opens_and_keeps_its_chunks(tmp_path):
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "CREATE TABLE chunks (plan VARCHAR(200), table_name VARCHAR(200), chunk INTEGER, low BIGINT, "
            "high BIGINT, state VARCHAR(20) NOT NULL, rows BIGINT, source_checksum VARCHAR(20), "
            "target_checksum VARCHAR(20), attempts INTEGER NOT NULL, error TEXT, "
            "updated_at DATETIME NOT NULL, PRIMARY KEY (plan, table_name, chunk))"
        ))  # fmt: skip
        conn.execute(sa.text("INSERT INTO chunks VALUES ('p', 't', 0, 1, 5, 'done', 4, '7', '7', 1, NULL, "
                             "'2026-01-01 00:00:00')"))  # fmt: skip
    engine.dispose()
    ledger = Ledger(url)
    (old,) = ledger.chunk_records("p", "t")
    assert (old.low, old.high, old.rows, old.source_checksum, old.bounds) == (1, 5, 4, 7, None)
    ledger.save_chunk("p", replace(old, chunk=1, bounds='{"ctid": [0, 8]}'))
    assert from_record(None, ledger.chunk_records("p", "t")[1]) == CtidRange(0, 8)  # type: ignore[arg-type]


def test_the_plan_names_the_scheduler_chunks_run_on(pg_url, tmp_path, dask_cluster, monkeypatch):
    from distributed import Client

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 100) g")
    monkeypatch.delenv("LIFTSHIFT_DASK_ADDRESS")
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", transfer={"dask_address": dask_cluster})
    with Client(dask_cluster) as client:
        before = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter)
        assert transfer.run(plan, Ledger(plan.ledger_url())).gate.passed
        after = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter)
    assert after > before


def test_the_source_lost_mid_transfer_is_one_error_and_a_rerun_carries_on(pg_url, tmp_path):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE a (id int PRIMARY KEY, v text); CREATE TABLE b (id int PRIMARY KEY);"
                     "INSERT INTO a SELECT g, 'v' || g FROM generate_series(1, 2000) g;"
                     "INSERT INTO b SELECT generate_series(1, 10)")  # fmt: skip
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", transfer={"chunk_rows": 200})
    database = psycopg.conninfo.conninfo_to_dict(pg_url)["dbname"]

    def lose_the_source(table: str, done: int, _total: int, _nbytes: int = 0) -> None:
        if table == "a" and done == 400:  # as a failover does: every connection to it drops
            with psycopg.connect(pg_url.replace(f"/{database}?", "/postgres?"), autocommit=True) as conn:
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                             (database,))  # fmt: skip

    ledger = Ledger(plan.ledger_url())
    with pytest.raises(SourceReadError, match=r"lost the connection to the source .*rerun the transfer"):
        transfer.run(plan, ledger, progress=lose_the_source)
    assert sum(r.state == "done" for r in ledger.chunk_records(plan.name, "a")) >= 2

    report = transfer.run(plan, ledger)
    assert report.gate.passed, report.gate.reasons
    assert [t.rows for t in report.tables] == [2000, 10]


def _transfer_one(pg_url: str, tmp_path, sql: str, target_url: str, table: str, **plan: object):
    """Create a table in the source with sql, and transfer it alone; the report."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql)
    written = write_plan(tmp_path, pg_url, target_url, tables=[table], **plan)
    return transfer.run(written, Ledger(written.ledger_url()))


def test_a_key_column_called_n_is_cut_into_chunks(pg_url, tmp_path):
    sql = ("CREATE TABLE named (n text PRIMARY KEY, v int);"
           "INSERT INTO named SELECT 'k' || g, g FROM generate_series(1, 20) g")
    report = _transfer_one(pg_url, tmp_path, sql, "duckdb:///w.duckdb", "named", transfer={"chunk_rows": 7})
    assert report.gate.passed, report.gate.reasons
    assert report.tables[0].rows == 20 and report.tables[0].chunks >= 3


def test_a_table_the_target_refuses_fails_alone_with_the_target_s_message(pg_url, bq_endpoint, tmp_path):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute('CREATE TABLE "say ""hi""" (id int PRIMARY KEY); CREATE TABLE fine (id int PRIMARY KEY);'
                     'INSERT INTO fine SELECT generate_series(1, 10)')  # fmt: skip
    plan = write_plan(tmp_path, pg_url, bigquery_url(bq_endpoint), tables=["fine", 'say "hi"'])
    report = transfer.run(plan, Ledger(plan.ledger_url()))
    (reason,) = report.gate.reasons
    assert reason.startswith('say "hi": BadRequest') and "table" in reason.lower(), reason
    assert next(t for t in report.tables if t.table == "fine").rows == 10


@pytest.mark.parametrize("into", ["bigquery", "duckdb"])
def test_jsonb_numbers_land_as_each_target_holds_them_and_the_chunk_proves_it(
    pg_url, bq_endpoint, tmp_path, into
):
    sql = """CREATE TABLE docs (id int PRIMARY KEY, j jsonb);
             INSERT INTO docs VALUES (1, '{"n": 2.50, "s": "a  b"}'), (2, '[1.0, 1e2, 0.000]')"""
    url = bigquery_url(bq_endpoint) if into == "bigquery" else "duckdb:///w.duckdb"
    # BigQuery's JSON prints 2.50 as 2.5 (accepted as lossy); DuckDB keeps jsonb's text.
    report = _transfer_one(pg_url, tmp_path, sql, url, "docs", accept=["docs.j"])
    assert report.gate.passed, report.gate.reasons


def test_a_table_none_of_whose_chunks_landed_is_planned_again_with_the_plan_s_new_chunk_size(
    pg_url, tmp_path
):
    # DuckDB keeps 10 fractional digits: every chunk fails its checksum until the plan accepts that.
    # No primary key: the chunks are page ranges, each landing in a part of its own.
    sql = (
        "CREATE TABLE wide (id int, x numeric);"
        "INSERT INTO wide SELECT g, 1.23456789012345 FROM generate_series(1, 3000) g"
    )
    first = _transfer_one(pg_url, tmp_path, sql, "duckdb:///w.duckdb", "wide", transfer={"chunk_rows": 1000})
    assert not first.gate.passed and first.tables[0].chunks > 2, first.gate.reasons
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", tables=["wide"], transfer={"chunk_rows": 3000},
                      accept=["wide.x"])  # fmt: skip
    ledger = Ledger(plan.ledger_url())
    report = transfer.run(plan, ledger)
    assert report.gate.passed and report.tables[0].chunks == 1, report.gate.reasons
    assert [r.rows for r in ledger.chunk_records(plan.name, "wide")] == [3000]
    landed = open_target(plan)
    try:
        assert landed.table_names() == {"wide"}  # the first plan's parts are gone
        assert landed.query("SELECT COUNT(*) AS n FROM wide")["n"].to_pylist() == [3000]
    finally:
        landed.close()


def test_a_value_duckdb_rounds_on_the_way_in_fails_its_chunk_unless_the_plan_accepts_it(pg_url, tmp_path):
    # DuckDB keeps 10 fractional digits.
    sql = "CREATE TABLE wide (id int PRIMARY KEY, x numeric); INSERT INTO wide VALUES (1, 1.23456789012345)"
    report = _transfer_one(pg_url, tmp_path, sql, "duckdb:///w.duckdb", "wide")
    assert not report.gate.passed and "checksum" in report.gate.reasons[0], report.gate.reasons
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", tables=["wide"], accept=["wide.x"])
    assert transfer.run(plan, Ledger(plan.ledger_url())).gate.passed  # accepted: proved as DuckDB holds it
    landed = open_target(plan)
    try:
        assert landed.query("SELECT CAST(x AS VARCHAR) AS x FROM wide")["x"].to_pylist() == ["1.2345678901"]
    finally:
        landed.close()


def test_into_duckdb_text_that_repeats_is_compressed_and_text_that_does_not_is_stored_as_it_is(
    pg_url, tmp_path
):
    # The source's statistics tell them apart; a column never analyzed is left to DuckDB.
    sql = (
        "CREATE TABLE texts (id int PRIMARY KEY, status text, token text, untold text);"
        "INSERT INTO texts SELECT g, 'status-' || g % 5, md5(g::text), md5(g::text) "
        "FROM generate_series(1, 30000) g; ANALYZE texts (status, token)"
    )
    report = _transfer_one(pg_url, tmp_path, sql, "duckdb:///w.duckdb", "texts")
    assert report.gate.passed, report.gate.reasons
    landed = open_target(write_plan(tmp_path, pg_url, "duckdb:///w.duckdb"))
    try:
        stored = landed.query(
            "SELECT column_name, list(DISTINCT compression) AS used FROM pragma_storage_info('texts') "
            "WHERE segment_type = 'VARCHAR' GROUP BY column_name"
        ).to_pylist()
        rows = landed.query("SELECT count(*) AS n, count(DISTINCT status) AS s FROM texts").to_pylist()
    finally:
        landed.close()
    used = {row["column_name"]: row["used"] for row in stored}
    assert used["token"] == ["Uncompressed"], used
    assert "Uncompressed" not in used["status"] and "Uncompressed" not in used["untold"], used
    assert rows == [{"n": 30000, "s": 5}]


def test_date_and_time_keys_reaching_back_bc_are_cut_into_duckdb_chunks_and_a_rerun_keeps_them(
    pg_url, tmp_path
):
    sql = (
        "CREATE TABLE eras (d date, t timestamptz, v int, PRIMARY KEY (d, t));"
        "INSERT INTO eras SELECT date '0100-01-01 BC' + g * 20, timestamptz '0100-01-01 12:00:00.5+00 BC' "
        "+ g * interval '20 days 1 hour', g FROM generate_series(1, 5000) g"
    )
    report = _transfer_one(pg_url, tmp_path, sql, "duckdb:///w.duckdb", "eras", transfer={"chunk_rows": 1000})
    assert report.gate.passed and report.tables[0].moved == 6, report.gate.reasons
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", tables=["eras"], transfer={"chunk_rows": 1000})
    ledger = Ledger(plan.ledger_url())
    bounds = [r.bounds for r in ledger.chunk_records(plan.name, "eras")]
    assert any(b and " BC" in b for b in bounds), bounds  # chunks end on BC keys
    again = transfer.run(plan, ledger)
    assert again.gate.passed and again.tables[0].skipped == 6, again.gate.reasons
    landed = open_target(plan)
    try:
        bc_rows = "COUNT(*) FILTER (WHERE d < DATE '0001-01-01') AS bc"
        found = landed.query(f"SELECT COUNT(*) AS n, {bc_rows} FROM eras")
    finally:
        landed.close()
    with psycopg.connect(pg_url) as conn:
        (bc,) = conn.execute("SELECT COUNT(*) FROM eras WHERE d < '0001-01-01'").fetchone() or (0,)
    assert found.to_pylist() == [{"n": 5000, "bc": bc}] and bc > 1000


def test_dates_and_times_from_bc_to_past_year_9999_land_in_postgresql_exactly_and_a_rerun_keeps_them(
    pg_url, tmp_path, pg_admin_url
):
    sql = (
        "CREATE TABLE ages (d date, t timestamptz, ts timestamp, v int, PRIMARY KEY (d, t));"
        "INSERT INTO ages SELECT date '4000-01-01 BC' + g * 400, "
        "timestamptz '4000-01-01 00:00:00.000001+00 BC' + g * interval '400 days 1 hour 0.000007 s', "
        "timestamp '9000-01-01 23:59:59.999999' + g * interval '400 days', g FROM generate_series(1, 3000) g;"
        "INSERT INTO ages VALUES ('5874897-12-31', '294246-12-31 23:59:59.999999+00', "
        "'4713-11-24 00:00:00 BC', 0)"  # the latest date, and the latest timestamp Arrow holds
    )
    target_url = new_database(pg_admin_url)
    report = _transfer_one(pg_url, tmp_path, sql, target_url, "ages", transfer={"chunk_rows": 500})
    assert report.gate.passed and report.tables[0].moved >= 6, report.gate.reasons
    plan = write_plan(tmp_path, pg_url, target_url, tables=["ages"], transfer={"chunk_rows": 500})
    again = transfer.run(plan, Ledger(plan.ledger_url()))
    assert again.gate.passed and again.tables[0].moved == 0, again.gate.reasons
    as_text = "SELECT d::text, t::text, ts::text, v FROM ages ORDER BY v"
    with psycopg.connect(pg_url) as source, psycopg.connect(target_url) as target:
        source.execute("SET TIME ZONE 'UTC'"), target.execute("SET TIME ZONE 'UTC'")
        sent, landed = source.execute(as_text).fetchall(), target.execute(as_text).fetchall()
    assert landed == sent and len(sent) == 3001
    spans = [row for row in sent if row[0].endswith(" BC")], [row for row in sent if row[2].index("-") > 4]
    assert all(len(rows) > 100 for rows in spans), [len(rows) for rows in spans]


def test_an_in_memory_duckdb_target_is_written_by_one_connection(pg_url, tmp_path):
    sql = "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT g FROM generate_series(1, 1000) g"
    report = _transfer_one(pg_url, tmp_path, sql, "duckdb:///:memory:", "t", transfer={"chunk_rows": 100})
    assert report.gate.passed and report.tables[0].rows == 1000, report.gate.reasons


def test_the_default_cluster_runs_chunks_without_the_workers_profiler():
    from distributed import Client

    from liftshift.cluster import local_cluster

    with local_cluster(1) as cluster, Client(cluster) as client:
        assert client.submit(sum, [1, 2]).result() == 3
        callbacks = [set(w.periodic_callbacks) for w in cluster.workers.values()]
    assert callbacks and all("profile" not in names and "heartbeat" in names for names in callbacks)


def test_a_database_without_standard_conforming_strings_reads_and_proves_backslash_keys(
    pg_admin_url, tmp_path
):
    url = new_database(pg_admin_url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE s (k text PRIMARY KEY, v int); INSERT INTO s SELECT "
                     "(ARRAY[E'a\\\\', E'b\\\\''', E'c\\\\n', 'd'])[1 + g % 4] || lpad(g::text, 5, '0'), g "
                     "FROM generate_series(1, 20000) g")  # fmt: skip
        (name,) = conn.execute("SELECT current_database()").fetchone()
        conn.execute(f"ALTER DATABASE {name} SET standard_conforming_strings = off")
    plan = write_plan(tmp_path, url, "duckdb:///w.duckdb", transfer={"chunk_rows": 1000})
    moved = lifecycle.run_stage("transfer", plan).report
    assert moved.gate.passed and moved.rows == 20000, moved.gate.reasons
    validated = lifecycle.run_stage("validate", plan).report
    assert validated.gate.passed, validated.gate.reasons


WORDS = """
CREATE TABLE words (w text PRIMARY KEY, note varchar(20), doc jsonb);
INSERT INTO words SELECT (ARRAY['café', 'naïve', 'Æsir', 'ÿ½', 'plain'])[1 + g % 5] || g, 'crème brûlée',
  '{"à": "ÿ"}' FROM generate_series(1, 300) g;
"""


@pytest.mark.parametrize("verify", ["extract", "source"])
@pytest.mark.parametrize("kind", ["duckdb", "postgres", "bigquery"])
def test_a_latin1_database_s_text_arrives_exact_and_validates(
    pg_admin_url, bq_endpoint, tmp_path, kind, verify
):
    # PostgreSQL hashes and sends text in the database's encoding unless told otherwise: a chunk's
    # checksum in PostgreSQL (verify: source) and validate's would hash LATIN1, the targets UTF-8.
    url = new_database(pg_admin_url, "LATIN1")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(WORDS)
        expected = sorted(conn.execute("SELECT w, note, doc::text FROM words").fetchall())
    target_url = _target_url(kind, tmp_path, bq_endpoint, pg_admin_url)
    plan = write_plan(tmp_path, url, target_url, transfer={"chunk_rows": 100, "verify": verify})
    moved = lifecycle.run_stage("transfer", plan).report
    assert moved.gate.passed and moved.rows == 300, moved.gate.reasons
    validated = lifecycle.run_stage("validate", plan).report
    assert validated.gate.passed, validated.gate.reasons
    source, target = PostgresSource(url), open_target(plan)
    try:
        (table,) = source.catalog(["words"])
        landed = target.query(f"SELECT w, note, doc FROM {target.relation(table)}").to_pylist()
    finally:
        source.close()
        target.close()
    compact = [(w, note, doc.replace(" ", "")) for w, note, doc in expected]  # BigQuery's JSON is compact
    assert sorted((r["w"], r["note"], r["doc"].replace(" ", "")) for r in landed) == compact
