"""The canonical row text built by liftshift.rowtext's kernels, against DuckDB's SQL for it, byte for byte."""

import duckdb
import psycopg
import pytest

from liftshift import fingerprint as fp
from liftshift.connectors.duckdb import readable
from liftshift.connectors.postgres import PostgresSource
from liftshift.rowtext import _text, row_texts
from liftshift.types import Canonical as C
from tests.test_connectors import EDGE_TABLE, FRACTIONS, MORE_TYPES, WIDE_NUMBERS, ZEROS

# Values at the ends of each kind's range, where text is easiest to get wrong.
EXTREMES = """
CREATE TABLE extremes (id bigint PRIMARY KEY, i8 bigint, i2 smallint, n18 numeric(18,0), f18 numeric(18,18),
  n5 numeric(10,5), d date, ts timestamp, tz timestamptz, t time, f4 real, f8 float8, by bytea, tx text);
INSERT INTO extremes VALUES
  (1, -9223372036854775808, -32768, 999999999999999999, 0.999999999999999999, -12345.00001, '4713-01-01 BC',
   '4713-01-01 00:00:00 BC', '1999-12-31 23:59:59.999999+00', '00:00:00.000001', 'NaN', '-Infinity',
   '\\x0001fe7f80', 'a|b|1|0'),
  (2, 9223372036854775807, 32767, -999999999999999999, -0.000000000000000001, 0.00000, '1969-12-31',
   '9999-12-31 23:59:59.999999', '1970-01-01 00:00:00.000001+00', '23:59:59.999999', '-0', 'NaN',
   '\\x', '0'),
  (3, -1, -1, 0, 0, 99999.10000, '5874897-12-31', '1999-12-31 23:59:59', '2000-01-01 00:00:00+00',
   '12:00:00', 1.4e-45, 2.2250738585072009e-308, NULL, NULL);
"""


@pytest.fixture
def tables(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(EDGE_TABLE + MORE_TYPES + WIDE_NUMBERS + FRACTIONS + ZEROS + EXTREMES)
    source = PostgresSource(pg_url)
    yield source, source.catalog(["edge", "more", "wide", "fractions", "zeros", "extremes"])
    source.close()


@pytest.mark.parametrize("bigquery_json", [False, True])
def test_each_row_s_text_is_what_duckdb_s_sql_builds(tables, bigquery_json):
    source, catalog = tables
    conn = duckdb.connect()
    for table in catalog:
        data = source.read_table(table, None).slice(1)  # an array offset, as a slice of a chunk has
        conn.register("liftshift_chunk", readable(data))
        row = fp.row_hash("duckdb", table.columns, bigquery_json).removeprefix("md5(").removesuffix(")")
        expected = conn.sql(f"SELECT {row} FROM liftshift_chunk").to_arrow_table().column(0).to_pylist()
        assert row_texts(conn, table.columns, data, bigquery_json).to_pylist() == expected, table.name


def test_the_kernels_build_every_common_kind_without_duckdb(tables):
    source, catalog = tables
    table = next(t for t in catalog if t.name == "extremes")
    data = source.read_table(table, None)
    for column in table.columns:  # a column left to DuckDB would still hash alike, only slower
        assert _text(column, data.column(column.name).combine_chunks(), 0) is not None, column.name
    json = next(c for t in catalog for c in t.columns if c.canonical is C.JSON)
    edge = source.read_table(next(t for t in catalog if t.name == "edge"), None)
    assert _text(json, edge.column(json.name).combine_chunks(), 0) is None  # JSON is DuckDB's to print
