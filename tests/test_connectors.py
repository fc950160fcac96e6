"""The connector contract, run against every target: types land exactly and fingerprints agree.

The local BigQuery endpoint has no BIGNUMERIC (its DuckDB stops at 38 digits), so the edge tables'
decimals stay within NUMERIC; real BigQuery takes BIGNUMERIC.
"""

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta

import psycopg
import pyarrow as pa
import pytest

from liftshift.connectors import TARGETS
from liftshift.connectors.base import KeyRange, Target, staging
from liftshift.connectors.postgres import PostgresSource
from liftshift.errors import ConnectError, PlanError, UnsupportedTypeError
from tests.conftest import bigquery_url, new_database

EDGE_TABLE = """
CREATE TABLE edge (
  id bigint PRIMARY KEY, i2 smallint, i4 integer, n numeric(12,2), big numeric(30,8),
  f8 double precision, f4 real, b boolean, t text, vc varchar(10), ch char(3), by bytea,
  d date, ts timestamp, tz timestamptz, j jsonb, u uuid);
INSERT INTO edge VALUES
  (1, -32768, 2147483647, 9999999999.99, 1234567890123456789012.01234567, 'NaN', 'Infinity',
   true, '', 'ünï', 'ab', '\\x00ff', '0001-01-01', '1999-12-31 23:59:59.999999',
   '2024-02-29 12:00:00.000001+05:30', '{"b": [1, "x y"], "a": null}', gen_random_uuid()),
  (2, NULL, NULL, -0.01, 0, '-0', '-Infinity', false, 'line\nbreak "quoted", comma', NULL,
   NULL, ''::bytea, '9999-12-31', '1970-01-01 00:00:00', '1970-01-01 00:00:00+00', '{}', NULL),
  (3, 0, 0, 0, -1.5, 5e-324, 3.4028235e38, NULL, NULL, '', '', NULL, NULL, NULL, NULL,
   NULL, NULL),
  (4, 7, -7, 1.10, 1e-8, 0.1, -0.0, true, '渡辺 ☕ emoji 🎉', 'x', 'x  ', '\\x5c27',
   '2000-02-29', '2038-01-19 03:14:08', '1901-12-13 20:45:52-08', '[1, 2.5, "é"]', NULL),
  (5, 1, 1, 1, 1, 1.7976931348623157e308, 1.17549435e-38, false, ' trailing ', NULL, NULL,
   NULL, NULL, NULL, NULL, '"just a string"', NULL);
"""

# Types that ride on a canonical type through a cast, and the native time.
MORE_TYPES = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE pair AS (b text, a integer);
CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
CREATE TABLE more (
  id bigint PRIMARY KEY, t time, t3 time(3), tz timetz, iv interval, m money, ia integer[],
  ta text[], e mood, r int4range, dr datemultirange, ip inet, p point, c pair, dom positive,
  bits bit varying(8), mac macaddr, ch "char");
INSERT INTO more VALUES
  (1, '00:00:00', '23:59:59.999', '12:34:56.789+05:30', '1 year 2 months -3 days 04:05:06.000001',
   '-92233720368547758.08', '{1,NULL,3}', '{"a b",NULL,"é\\"\\\\",""}', 'happy', '[1,5)',
   '{[2024-01-01,2024-02-01),[2024-03-01,)}', '192.168.0.1/24', '(1.5,-2)', ROW('x', 1), 7, B'101',
   '08:00:2b:01:02:03', 'x'),
  (2, '23:59:59.999999', NULL, '00:00:00-14', '-1 days +02:00', 0, '{}', '{}', 'sad', 'empty',
   '{}', '::1', '(0.1,1e300)', ROW(NULL, NULL), NULL, B'', NULL, NULL),
  (3, '12:00:00.000001', '00:00:00', NULL, '0', 12.34, '{{1,2},{3,NULL}}', '{NULL}', NULL, '(,)',
   NULL, NULL, '(-0,0)', ROW('{"k": 1}', -1), 1, NULL, NULL, ''),
  (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL);
"""

WIDE_NUMBERS = """
CREATE TABLE wide (id bigint PRIMARY KEY, n numeric, n40 numeric(40,2), n60 numeric(60,0));
INSERT INTO wide VALUES (1, 1.50, 1.5, 1), (2, -0.000123, NULL, NULL),
  (3, 12345678901234567890.0123456789, 0, 0), (4, NULL, -12345678901234567890123456789012345678.12, NULL),
  (5, 0, NULL, NULL), (10, 0.0000001, NULL, NULL), (11, -1.2e-9, NULL, NULL);
"""

# Decimals all fraction (precision = scale): DuckDB prints them without the leading zero ('.5000').
FRACTIONS = """
CREATE TABLE fractions (id bigint PRIMARY KEY, r numeric(4,4), r9 numeric(9,9));
INSERT INTO fractions VALUES (1, 0.5, 0.000000001), (2, 0, 0), (3, -0.0001, -0.5), (4, NULL, NULL),
  (5, 0.9999, 0.123456789);
"""

# Decimals whose text ends in zeros: each engine trims a fraction's, never an integer's.
ZEROS = """
CREATE TABLE zeros (id bigint PRIMARY KEY, n0 numeric(10,0), n2 numeric(12,2), n4 numeric(20,4));
INSERT INTO zeros VALUES (1, 100, 100.00, 1000.0000), (2, -10, -0.50, 10.5000), (3, 0, 0, 0.0001),
  (4, 1000000, 1.05, -100.1000), (5, 9999999990, 10.10, 0.0010);
"""


@pytest.fixture
def source(pg_url: str) -> Iterator[PostgresSource]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(EDGE_TABLE)
        conn.execute(MORE_TYPES)
        conn.execute(WIDE_NUMBERS)
        conn.execute(ZEROS)
        conn.execute(FRACTIONS)
    src = PostgresSource(pg_url)
    yield src
    src.close()


@pytest.fixture(params=["duckdb", "bigquery", "postgresql"])
def target(request, tmp_path, bq_endpoint, pg_admin_url) -> Iterator[Target]:
    if request.param == "duckdb":
        url = f"duckdb:///{tmp_path}/w.duckdb"
    elif request.param == "bigquery":
        url = bigquery_url(bq_endpoint)
    else:
        url = new_database(pg_admin_url)  # not the source's database
    opened = TARGETS[request.param](url, tmp_path / ".liftshift")
    yield opened
    opened.close()


@pytest.mark.parametrize(("name", "rows"), [("edge", 5), ("more", 4), ("zeros", 5), ("fractions", 5)])
def test_edge_values_land_exactly_and_fingerprints_agree(source, target, name, rows):
    (table,) = source.catalog([name])
    target.prepare(table)
    assert target.write(table, source.read_table(table, None), None) == rows
    assert target.fingerprint(table, None) == source.fingerprint(table, None)
    for column in table.columns:  # each column on its own, so a failure names it
        one = replace(table, columns=(column,))
        assert target.fingerprint(one, None) == source.fingerprint(one, None), column.name


@pytest.mark.parametrize(
    ("name", "column", "row", "change"),
    [
        ("edge", "tz", 0, lambda v: v + timedelta(microseconds=1)),
        # 12:00:00.000001 becomes 12:00:00
        ("more", "t", 2, lambda v: (datetime.combine(datetime.min, v) - timedelta(microseconds=1)).time()),
    ],
    ids=["timestamptz", "time"],
)
def test_a_value_moved_by_one_microsecond_in_the_target_is_caught(source, target, name, column, row, change):
    (table,) = source.catalog([name])
    target.prepare(table)
    data = source.read_table(table, None)
    values = data.column(column).to_pylist()
    values[row] = change(values[row])
    changed = data.set_column(
        data.schema.get_field_index(column), column, pa.array(values, data[column].type)
    )
    target.write(table, changed, None)
    expected = source.fingerprint(table, None)
    assert target.fingerprint(table, None).rows == expected.rows
    assert target.fingerprint(table, None).checksum != expected.checksum


def test_an_unconstrained_numeric_lands_and_duckdb_rounding_it_is_caught(source, target):
    if target.dialect == "bigquery":
        pytest.skip("the local BigQuery endpoint has no BIGNUMERIC (its DuckDB stops at 38 digits)")
    (wide,) = source.catalog(["wide"])
    table = replace(wide, columns=wide.columns[:2])  # n40 is a blocker in DuckDB
    target.prepare(table)
    target.write(table, source.read_table(table, None), None)
    assert target.fingerprint(table, None) == source.fingerprint(table, None)
    source.conn.execute("INSERT INTO wide VALUES (6, 1.00000000001)")  # an 11th fractional digit
    target.write(table, source.read_table(table, None), None)
    rounded = target.fingerprint(table, None) != source.fingerprint(table, None)
    assert rounded is (target.dialect == "duckdb")


def test_jsonb_numbers_keep_their_text_in_every_target_but_bigquery(source, target):
    source.conn.execute(
        """CREATE TABLE docs (id bigint PRIMARY KEY, j jsonb);
        INSERT INTO docs VALUES (1, '{"n": 2.50, "s": "a  b", "t": "\\" x"}'), (2, '[1.0, 1e2, 0.000]')"""
    )
    (table,) = source.catalog(["docs"])
    target.prepare(table)
    target.write(table, source.read_table(table, None), None)
    # DuckDB and PostgreSQL hold jsonb's text; BigQuery's JSON prints 2.50 as 2.5 (lossy, as assess says)
    same = target.fingerprint(table, None) == source.fingerprint(table, None)
    assert same is (target.dialect != "bigquery")


def test_a_column_the_target_cannot_hold_is_refused_saying_what_to_do(source, target):
    (wide,) = source.catalog(["wide"])  # n40 is too wide for DuckDB, n60 for BigQuery too
    if target.dialect == "postgres":
        target.prepare(wide)  # both are at home in PostgreSQL
        return
    refused = rf"\(numeric\(\d0,\d\)\) cannot be moved to {target.dialect}: .*leave the table out"
    with pytest.raises(UnsupportedTypeError, match=refused):
        target.prepare(wide)


def test_rewriting_a_range_replaces_it_and_never_doubles_rows(source, target):
    (table,) = source.catalog(["edge"])
    target.prepare(table)
    low, high = KeyRange("id", None, 3), KeyRange("id", 3, None)
    ranges: tuple[KeyRange | None, ...] = (low, high, low, low)
    if target.stages_chunks:  # BigQuery: a chunk replaces a table of its own whole (liftshift.assembly)
        with pytest.raises(ValueError, match="parts of their own"):
            target.write(table, source.read_table(table, low), low)
        ranges = (None, None)
    for key_range in ranges:
        target.write(table, source.read_table(table, key_range), key_range)
    assert target.fingerprint(table, None) == source.fingerprint(table, None)
    assert target.fingerprint(table, low).rows == 2


@pytest.mark.parametrize("name", ["edge", "more"])
def test_schema_as_the_target_reports_it(source, target, name):
    (table,) = source.catalog([name])
    target.prepare(table)
    reported = {c.name: c for c in target.columns(table)}
    assert list(reported) == [c.name for c in table.columns]
    for column in table.columns:
        assert reported[column.name].type == target.expected_type(column), column.name
    assert reported["id"].nullable is False and reported[table.columns[1].name].nullable is True


def test_a_sample_reads_as_a_range_does_and_a_dropped_table_is_gone(source, target):
    (table,) = source.catalog(["more"])
    sample = source.read_sample(table, 2)
    assert sample.num_rows == 2 and sample.schema == table.arrow_schema()
    target.prepare(table)
    target.drop(table)
    assert target.columns(table) == []
    target.drop(table)  # nothing left to drop is not an error


def test_planned_rows_scale_the_last_analyze_to_the_size_now_and_count_a_table_never_analyzed(source):
    with psycopg.connect(source.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE grows (id bigint PRIMARY KEY, pad text)")
        conn.execute("INSERT INTO grows SELECT g, repeat('x', 50) FROM generate_series(1, 3000) g")
        (grows,) = source.catalog(["grows"])
        assert source.planned_rows(grows) == 3000  # never analyzed: counted
        conn.execute("ANALYZE grows")
        conn.execute("INSERT INTO grows SELECT g, repeat('x', 50) FROM generate_series(3001, 9000) g")
    assert 8500 <= source.planned_rows(grows) <= 9500  # 3,000 rows' pages, then three times as many
    with psycopg.connect(source.url, autocommit=True) as conn:  # analyzed empty, then filled
        conn.execute("DELETE FROM grows")
        conn.execute("ANALYZE grows")
        conn.execute("INSERT INTO grows SELECT g, repeat('x', 50) FROM generate_series(1, 5000) g")
    assert source.planned_rows(grows) == 5000  # no rows per page to scale: counted


def test_queries_read_intervals_in_the_iso_8601_style_the_session_uses(source):
    sql = "SELECT interval '1 year 2 months -3 days 04:05:06.000001' AS i, interval '-1.5 seconds' AS j"
    assert source.query(sql).to_pylist() == [
        {"i": timedelta(days=365 + 60 - 3, hours=4, minutes=5, seconds=6, microseconds=1),
         "j": timedelta(seconds=-1.5)}
    ]  # fmt: skip


def test_a_scan_may_go_parallel_and_leaves_the_session_as_it_was(source):
    sql = "SELECT current_setting('parallel_tuple_cost') AS cost"
    default = source.query(sql).to_pylist()
    assert source.scan(sql).to_pylist() == [{"cost": "0.001"}]  # rows costly to compute: worth workers
    assert source.query(sql).to_pylist() == default != [{"cost": "0.001"}]


def test_catalog_describes_keys_types_and_references(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE parent (a int, b text, PRIMARY KEY (b, a));"
            'CREATE TABLE "Child" (id serial PRIMARY KEY, pa int, pb text, "select" tid,'
            " FOREIGN KEY (pb, pa) REFERENCES parent (b, a))"
        )
    src = PostgresSource(pg_url)
    child, parent = src.catalog()
    assert parent.primary_key == ("b", "a")
    assert child.name == "Child" and child.foreign_keys == ("parent",)
    assert child.column("select").mapping.verdict == "blocker"
    with pytest.raises(PlanError, match="no table in source schema 'public' matches 'orders'"):
        src.catalog(["orders"])
    src.close()


def test_unreachable_source_says_what_to_check():
    with pytest.raises(ConnectError, match="check source.url") as err:
        PostgresSource("postgresql://app:hunter2@127.0.0.1:1/none?password=hunter2")
    assert "hunter2" not in str(err.value)


def test_a_bigquery_staging_table_expires_if_a_killed_run_cannot_drop_it(source, bq_endpoint, tmp_path):
    from google.cloud import bigquery

    (table,) = source.catalog(["edge"])  # only its name is used: _liftshift_stage_edge_…
    target = TARGETS["bigquery"](bigquery_url(bq_endpoint), tmp_path / ".liftshift")
    data = pa.table({"id": pa.array([1, 2], pa.int64())})
    # The local endpoint ignores a table's expiration time, so the table the real client is asked
    # to create is recorded on its way (the call goes through) and its expiry checked here.
    created, create = [], target.client.create_table
    target.client.create_table = lambda t, **kw: created.append(t) or create(t, **kw)  # type: ignore[method-assign]
    try:
        with target._staged(table, data, [bigquery.SchemaField("id", "INT64")]) as stage:
            assert target.client.get_table(stage.strip("`")).num_rows == 2
        (made,) = created
        assert made.table_id.startswith("_liftshift_stage_edge_") and made.expires is not None
        assert timedelta(hours=23) < made.expires - datetime.now(made.expires.tzinfo) <= timedelta(days=1)
        assert made.table_id not in [t.table_id for t in target.client.list_tables(target.dataset)]
    finally:
        target.close()


def test_a_bigquery_part_expires_after_a_week_and_the_table_itself_never(source, bq_endpoint, tmp_path):
    (table,) = source.catalog(["edge"])
    target = TARGETS["bigquery"](bigquery_url(bq_endpoint), tmp_path / ".liftshift")
    # The local endpoint ignores expiration times: the tables the real client is asked to create
    # are recorded on their way (the calls go through) and their expiry checked here.
    created, create = [], target.client.create_table
    target.client.create_table = lambda t, **kw: created.append(t) or create(t, **kw)  # type: ignore[method-assign]
    try:
        target.prepare(staging(table, 3))
        target.prepare(table)
        part, whole = created
        assert part.table_id == "edge__liftshift_part_3" and whole.table_id == "edge"
        left = part.expires - datetime.now(part.expires.tzinfo)
        assert timedelta(days=6, hours=23) < left <= timedelta(days=7)
        assert whole.expires is None
    finally:
        target.drop(staging(table, 3))
        target.close()
