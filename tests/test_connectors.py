"""The connector contract, run against every target: types land exactly and fingerprints agree.

The local BigQuery endpoint has no BIGNUMERIC (its DuckDB stops at 38 digits), so the edge table's
decimals stay within NUMERIC; real BigQuery takes BIGNUMERIC.
"""

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import psycopg
import pyarrow as pa
import pytest

from liftshift.connectors import TARGETS
from liftshift.connectors.base import KeyRange, Target
from liftshift.connectors.postgres import PostgresSource
from liftshift.errors import ConnectError, PlanError
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


@pytest.fixture
def source(pg_url: str) -> Iterator[PostgresSource]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(EDGE_TABLE)
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


def test_edge_values_land_exactly_and_fingerprints_agree(source, target):
    (table,) = source.catalog(["edge"])
    target.prepare(table)
    assert target.write(table, source.read_table(table, None), None) == 5
    assert target.fingerprint(table, None) == source.fingerprint(table, None)
    for column in table.columns:  # each column on its own, so a failure names it
        one = replace(table, columns=(column,))
        assert target.fingerprint(one, None) == source.fingerprint(one, None), column.name


def test_a_timestamp_shifted_by_one_microsecond_in_the_target_is_caught(source, target):
    (table,) = source.catalog(["edge"])
    target.prepare(table)
    data = source.read_table(table, None)
    tz = data.column("tz").to_pylist()
    tz[0] = tz[0] + timedelta(microseconds=1)
    shifted = data.set_column(data.schema.get_field_index("tz"), "tz", pa.array(tz, data["tz"].type))
    target.write(table, shifted, None)
    expected = source.fingerprint(table, None)
    assert target.fingerprint(table, None).rows == expected.rows
    assert target.fingerprint(table, None).checksum != expected.checksum


def test_rewriting_a_range_replaces_it_and_never_doubles_rows(source, target):
    (table,) = source.catalog(["edge"])
    target.prepare(table)
    low, high = KeyRange("id", None, 3), KeyRange("id", 3, None)
    for key_range in (low, high, low, low):
        target.write(table, source.read_table(table, key_range), key_range)
    assert target.fingerprint(table, None) == source.fingerprint(table, None)
    assert target.fingerprint(table, low).rows == 2


def test_schema_as_the_target_reports_it(source, target):
    (table,) = source.catalog(["edge"])
    target.prepare(table)
    reported = {c.name: c for c in target.columns(table)}
    assert list(reported) == [c.name for c in table.columns]
    for column in table.columns:
        assert reported[column.name].type.upper() == target.expected_type(column).upper()
    assert reported["id"].nullable is False and reported["n"].nullable is True


def test_catalog_describes_keys_types_and_references(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE parent (a int, b text, PRIMARY KEY (b, a));"
            'CREATE TABLE "Child" (id serial PRIMARY KEY, pa int, pb text, "select" interval,'
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
