"""Validate finds every planted difference, with its key and columns, in every target."""

import math
import uuid
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import duckdb
import numpy as np
import psycopg
import pyarrow as pa
import pytest

from liftshift import aggregates, diff, intbuckets
from liftshift.connectors import TARGETS
from liftshift.connectors.base import Target
from liftshift.connectors.postgres import PostgresSource
from liftshift.connectors.postgres_target import PostgresTarget
from liftshift.validate import compare_table
from tests.conftest import bigquery_url, new_database
from tests.test_connectors import EDGE_TABLE, MORE_TYPES

KEYS = """
CREATE TABLE pairs (a int, b text, v text, PRIMARY KEY (b, a));
INSERT INTO pairs VALUES (1, 'x', 'one'), (2, 'x', 'two'), (1, 'y', 'three');
CREATE TABLE loose (n int, s text);
INSERT INTO loose VALUES (1, 'a'), (1, 'a'), (2, NULL), (3, '');
CREATE TABLE negs (id bigint PRIMARY KEY, v text);  -- integer keys bucket by modulo, signs and all
INSERT INTO negs SELECT g * 4093, 'v' || g FROM generate_series(-300, 300) g;
CREATE TABLE sums (id int PRIMARY KEY, x float8, r real, n numeric(27,9));  -- sums over many buckets
INSERT INTO sums SELECT g, sin(g) * 1e18 + 0.5, sin(g)::real * 1e6, 1e17 + g / 7.0
  FROM generate_series(1, 6000) g;
"""


@pytest.fixture
def source(pg_url: str) -> Iterator[PostgresSource]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(EDGE_TABLE + MORE_TYPES + KEYS)
    src = PostgresSource(pg_url)
    yield src
    src.close()


@pytest.fixture(params=["duckdb", "bigquery", "postgresql"])
def target(request, tmp_path, bq_endpoint, pg_admin_url) -> Iterator[Target]:
    urls = {"duckdb": f"duckdb:///{tmp_path}/w.duckdb", "bigquery": bigquery_url(bq_endpoint),
            "postgresql": new_database(pg_admin_url)}  # fmt: skip
    opened = TARGETS[request.param](urls[request.param], tmp_path / ".liftshift")
    yield opened
    opened.close()


def changed(value: Any, arrow: pa.DataType) -> Any:
    """A value that differs from value by the smallest step its type allows."""
    if value is None:
        return str(uuid.uuid4()) if pa.types.is_string(arrow) else None
    if isinstance(value, bool):
        return not value
    toward = 0.0 if value else 1.0  # the last bit, never past the largest float
    if pa.types.is_float32(arrow):
        return float(np.nextafter(np.float32(value), np.float32(toward)))
    if isinstance(value, float):
        return math.nextafter(value, toward)
    if isinstance(value, int):
        return value + 1
    if isinstance(value, Decimal):
        return value + Decimal(1).scaleb(-arrow.scale)
    if isinstance(value, str):
        return value + "x" if not value.startswith(("{", "[", '"')) else '{"changed": true}'
    if isinstance(value, bytes):
        return value + b"\x01"
    if isinstance(value, time):
        return (datetime.combine(date.min, value) + timedelta(microseconds=1)).time()
    return value + timedelta(days=1) if not hasattr(value, "hour") else value + timedelta(microseconds=1)


def plant(data: pa.Table, row: int, columns: list[str], change=changed) -> pa.Table:
    """The table with some columns of one row changed."""
    for name in columns:
        field = data.schema.field(name)
        values = data.column(name).to_pylist()
        values[row] = change(values[row], field.type)
        data = data.set_column(data.schema.get_field_index(name), field, pa.array(values, field.type))
    return data


def land(source: PostgresSource, target: Target, name: str, edit) -> tuple[Any, list[Any]]:
    line, rows, _ = land_measured(source, target, name, edit)
    return line, rows


def land_measured(source: PostgresSource, target: Target, name: str, edit) -> tuple[Any, ...]:
    (table,) = source.catalog([name])
    target.prepare(table)
    target.write(table, edit(source.read_table(table, None)), None)
    return compare_table(table, source, target)


def test_every_kind_of_difference_is_found_with_key_and_columns(source, target):
    def edit(data: pa.Table) -> pa.Table:
        every = [n for n in data.column_names if n not in ("id", "u")]
        data = plant(data, 3, every)  # id 4: every type changed by its smallest step
        data = plant(data, 0, ["t"], lambda v, t: None)  # id 1: '' becomes NULL
        data = plant(data, 1, ["tz"])  # id 2: a timestamp 1 µs later
        data = plant(data, 4, ["f8"])  # id 5: the float's last bit
        extra = data.slice(4, 1).set_column(0, data.schema.field("id"), pa.array([6], pa.int64()))
        return pa.concat_tables([data.slice(0, 2), data.slice(3), extra])  # id 3 missing, 6 extra

    line, rows = land(source, target, "edge", edit)
    assert not line.passed and (line.source_rows, line.target_rows) == (5, 5)
    found = {(r.key["id"], r.kind): [c.column for c in r.columns] for r in rows}
    every = ["i2", "i4", "n", "big", "f8", "f4", "b", "t", "vc", "ch", "by", "d", "ts", "tz", "j"]
    assert found == {
        ("1", "changed"): ["t"], ("2", "changed"): ["tz"], ("3", "missing in target"): [],
        ("4", "changed"): every, ("5", "changed"): ["f8"], ("6", "extra in target"): [],
    }  # fmt: skip
    null_vs_empty = next(r for r in rows if r.key["id"] == "1").columns[0]
    assert (null_vs_empty.source, null_vs_empty.target) == ("", None)
    assert "edge (id='1') changed: t: '' → NULL" in [r.describe() for r in rows]


def test_types_that_travel_through_casts_are_compared_too(source, target):
    # Old value → new one, each valid in every target (a PostgreSQL target parses them back).
    new = {"P1Y2M-3DT4H5M6.000001S": "P1Y2M-3DT4H5M6.000002S", "happy": "ok",
           "192.168.0.1/24": "192.168.0.2/24",
           Decimal("-92233720368547758.08"): Decimal("-92233720368547758.07")}  # money: cents  # fmt: skip

    def edit(data: pa.Table) -> pa.Table:
        return plant(data, 0, ["t", "iv", "m", "e", "ip", "dom"], lambda v, t: new.get(v, changed(v, t)))

    _, rows = land(source, target, "more", edit)
    assert [(r.key, [c.column for c in r.columns]) for r in rows] == [
        ({"id": "1"}, ["t", "iv", "m", "e", "ip", "dom"])
    ]


def test_composite_keys_and_tables_without_a_key(source, target):
    _, rows = land(source, target, "pairs", lambda d: plant(d, 1, ["v"]))
    assert [(r.key, r.kind, r.columns[0].target) for r in rows] == [({"a": "2", "b": "x"}, "changed", "twox")]
    # Without a key rows are a multiset: one copy fewer, one more, and NULL is not ''.
    _, rows = land(source, target, "loose", lambda d: pa.concat_tables([d.slice(1), d.slice(3)]))
    assert sorted((r.kind, r.key["s"], r.copies) for r in rows) == [
        ("extra in target", "", 1), ("missing in target", "a", 1)
    ]


@pytest.mark.parametrize("name", ["edge", "more", "pairs", "loose", "negs", "sums"])
def test_an_identical_copy_of_edge_values_has_no_differences(source, target, name):
    line, rows, measured = land_measured(source, target, name, lambda d: d)
    assert line.passed and rows == [] and line.differing_buckets == 0 and measured == []
    # Aggregates are measured only where rows differ, so they must agree on equal rows in every engine:
    # counts, sums, min and max, non-ASCII text included.
    (table,) = source.catalog([name])
    stored = target.stored(table) if isinstance(target, PostgresTarget) else table
    sides = [(source, table), (target, stored)]
    ours, theirs = (
        aggregates.read(table, side.query(aggregates.aggregate_sql(side.dialect, side.relation(t), t)))
        for side, t in sides
    )
    assert aggregates.compare(table, ours, theirs, 1e-9) == []
    assert ours[(table.columns[0].name, "count")] > 0


def test_column_aggregates_name_the_column_and_floats_get_a_tolerance(source, target):
    def edit(data: pa.Table) -> pa.Table:
        for row in range(100, 160 + diff.MAX_ROWS_REPORTED):  # more than the report lists, not min or max
            data = plant(data, row, ["n"])  # the last of 9 decimal places, one step up
        return plant(data, 7, ["x"])  # the next float: within the tolerance

    line, rows, measured = land_measured(source, target, "sums", edit)
    assert not line.passed and len(rows) == diff.MAX_ROWS_REPORTED
    assert [(a.column, a.measure) for a in measured] == [("n", "sum")]
    (n_sum,) = measured
    assert Decimal(n_sum.target) - Decimal(n_sum.source) == (60 + diff.MAX_ROWS_REPORTED) * Decimal("1e-9")


def test_buckets_too_large_to_read_row_by_row_are_summed_up_by_aggregates(source, target, monkeypatch):
    monkeypatch.setattr(diff, "MAX_BUCKET_ROWS", 0)  # every bucket is too large: none is drilled
    line, rows, measured = land_measured(source, target, "edge", lambda data: plant(data, 3, ["n"]))
    assert not line.passed and not line.complete and rows == []
    assert [(a.column, a.measure) for a in measured] == [("n", "sum")]


def test_aggregates_are_not_measured_when_every_differing_row_is_listed(source, target):
    _, rows, measured = land_measured(source, target, "edge", lambda data: plant(data, 3, ["n", "d"]))
    assert [c.column for c in rows[0].columns] == ["n", "d"] and measured == []


def test_dense_integer_keys_bucket_by_range_and_every_difference_is_still_found(source, target):
    with psycopg.connect(source.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE dense (id bigint PRIMARY KEY, v text)")
        conn.execute("INSERT INTO dense SELECT g, 'v' || g FROM generate_series(-1000, 4999) g ORDER BY g")
        conn.execute("ANALYZE dense")
    (dense,) = source.catalog(["dense"])
    layout = diff._layout(dense, ("postgres", source.relation(dense), source.query, dense))
    assert layout == intbuckets.Ranges(-1000, 4999, 2)

    def edit(data: pa.Table) -> pa.Table:
        data = plant(plant(data, 0, ["v"]), 3000, ["v"])  # ids -1000 (the first bucket) and 2000
        far = pa.table({"id": [10**15, -(10**15)], "v": ["far", "far"]}, schema=data.schema)
        return pa.concat_tables([data.slice(0, data.num_rows - 1), far])  # 4999 missing; beyond both ends

    line, rows = land(source, target, "dense", edit)
    assert not line.passed
    assert {(r.key["id"], r.kind) for r in rows} == {
        ("-1000", "changed"), ("2000", "changed"), ("4999", "missing in target"),
        (str(10**15), "extra in target"), (str(-(10**15)), "extra in target"),
    }  # fmt: skip


def test_keys_filling_less_than_half_their_span_keep_modulo_buckets_and_ranges_merge_neighbours():
    assert intbuckets.layout((1, 10_000), 4_000) is intbuckets.MODULO  # sparse: ranges could be uneven
    assert intbuckets.layout(None, 100) is intbuckets.MODULO  # an empty table
    ranges = intbuckets.layout((1, 10_000), 5_000)
    assert ranges == intbuckets.Ranges(1, 10_000, 3) and ranges.last == 3333
    smallint = intbuckets.Ranges(-1, 32767, 8).bucket("duckdb", "k")  # widened: 32767 - -1 fits
    assert duckdb.sql(f"SELECT {smallint} FROM (SELECT 32767::SMALLINT AS k)").fetchall() == [(4096,)]
    selected = ranges.select("postgres", "k", [0, 1, 2, 7, 3333])  # the ends are open
    assert selected == "((k < 10) OR (k >= 22 AND k < 25) OR (k >= 10000))"


def test_integer_keys_in_steps_still_spread_over_the_buckets(source):
    # Keys 4096 apart would share one bucket modulo 4096; modulo the prime 4093 they spread.
    with psycopg.connect(source.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE steps (id bigint PRIMARY KEY)")
        conn.execute("INSERT INTO steps SELECT g * 4096 FROM generate_series(1, 2000) g")
    (steps,) = source.catalog(["steps"])
    buckets = source.query(diff.bucket_sql("postgres", source.relation(steps), steps))
    assert buckets.num_rows == 2000  # every row in a bucket of its own


def test_a_retyped_column_is_a_schema_issue_and_the_other_columns_still_compare(source, tmp_path):
    target = TARGETS["duckdb"](f"duckdb:///{tmp_path}/w.duckdb", tmp_path / ".liftshift")
    try:
        (table,) = source.catalog(["edge"])
        target.prepare(table)
        target.write(table, source.read_table(table, None), None)
        target.query('ALTER TABLE edge ALTER i4 TYPE BIGINT; UPDATE edge SET t = \'x\' WHERE id = 3')
        line, rows, _ = compare_table(table, source, target)
    finally:
        target.close()
    assert line.schema_issues == ["column i4 is BIGINT in the target, expected INTEGER"]
    assert [(r.key, [c.column for c in r.columns]) for r in rows] == [({"id": "3"}, ["t"])]


ALIKE = """
CREATE TABLE alike (id int PRIMARY KEY, j jsonb, t text);
INSERT INTO alike VALUES (1, '{"n": 2.50}', 'a'), (2, '{}', repeat('x', 300));
"""


def test_values_that_print_alike_show_their_canonical_texts_from_where_they_part(
    source, bq_endpoint, tmp_path
):
    # The local BigQuery endpoint returns JSON as loaded but hashes it re-printed (2.50 as 2.5); a long
    # value is cut short in a report, so a change past the cut would print alike too.
    with psycopg.connect(source.url, autocommit=True) as conn:
        conn.execute(ALIKE)

    def past_the_cut(value: str, _: pa.DataType) -> str:
        return value[:250] + "y" + value[251:]

    target = TARGETS["bigquery"](bigquery_url(bq_endpoint), tmp_path / ".liftshift")
    try:
        _, rows = land(source, target, "alike", lambda data: plant(data, 1, ["t"], past_the_cut))
    finally:
        target.close()
    assert [r.describe() for r in rows] == [
        "alike (id='1') changed: j: '{\"n\":2.50}' → '{\"n\":2.5}'",
        f"alike (id='2') changed: t: '…{'x' * 70}' → '…{'x' * 20}y{'x' * 49}'",
    ]
