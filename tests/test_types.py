"""Type mapping: each PostgreSQL type gets the right canonical type, target type and verdict."""

import pyarrow as pa
import pytest

from liftshift.types import Canonical, Verdict, arrow_type, bigquery_type, duckdb_type, map_postgres


@pytest.mark.parametrize(
    ("source", "canonical", "verdict", "bigquery"),
    [
        ("integer", Canonical.INT32, Verdict.WIDENED, "INT64"),
        ("bigint", Canonical.INT64, Verdict.EXACT, "INT64"),
        ("numeric(12,2)", Canonical.DECIMAL, Verdict.EXACT, "NUMERIC"),
        ("numeric(38,9)", Canonical.DECIMAL, Verdict.EXACT, "NUMERIC"),
        ("numeric(40,2)", Canonical.DECIMAL, Verdict.WIDENED, "BIGNUMERIC"),
        ("numeric(20,12)", Canonical.DECIMAL, Verdict.WIDENED, "BIGNUMERIC"),
        ("numeric", Canonical.DECIMAL, Verdict.WIDENED, "BIGNUMERIC"),
        ("double precision", Canonical.FLOAT64, Verdict.EXACT, "FLOAT64"),
        ("real", Canonical.FLOAT32, Verdict.WIDENED, "FLOAT64"),
        ("character varying(20)", Canonical.STRING, Verdict.WIDENED, "STRING"),
        ("character(2)", Canonical.STRING, Verdict.WIDENED, "STRING"),
        ("timestamp(3) with time zone", Canonical.TIMESTAMPTZ, Verdict.EXACT, "TIMESTAMP"),
        ("timestamp without time zone", Canonical.TIMESTAMP, Verdict.EXACT, "DATETIME"),
        ("jsonb", Canonical.JSON, Verdict.EXACT, "JSON"),
        ("bytea", Canonical.BYTES, Verdict.EXACT, "BYTES"),
    ],
)
def test_mapping(source, canonical, verdict, bigquery):
    m = map_postgres(source)
    assert (m.canonical, m.verdict) == (canonical, verdict)
    assert bigquery_type(canonical, m.precision, m.scale) == bigquery


@pytest.mark.parametrize("source", ["numeric(80,2)", "interval", "point", "integer[]", "tsvector"])
def test_unmappable_types_are_blockers_that_name_the_type(source):
    m = map_postgres(source)
    assert m.verdict is Verdict.BLOCKER and m.canonical is None
    assert source.split("(")[0] in m.note


def test_exact_types_on_the_arrow_and_duckdb_side():
    m = map_postgres("numeric(12,2)")
    assert arrow_type(Canonical.DECIMAL, m.precision, m.scale) == pa.decimal128(12, 2)
    assert duckdb_type(Canonical.DECIMAL, m.precision, m.scale) == "DECIMAL(12,2)"
    assert arrow_type(Canonical.TIMESTAMPTZ, None, None) == pa.timestamp("us", tz="UTC")
    assert arrow_type(Canonical.INT32, None, None) == pa.int32()
