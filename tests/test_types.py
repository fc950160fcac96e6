"""Type mapping: every common PostgreSQL type, its type and verdict in each target, worked out by hand."""

import psycopg
import pyarrow as pa
import pytest

from liftshift.connectors.postgres import PostgresSource
from liftshift.pgtypes import map_postgres
from liftshift.types import Canonical, Verdict, arrow_type, target_mapping

E, W, L, B = Verdict.EXACT, Verdict.WIDENED, Verdict.LOSSY, Verdict.BLOCKER
_SAME = "same"  # the PostgreSQL target keeps the source type

# format_type() name → (BigQuery type, verdict), (DuckDB type, verdict), (PostgreSQL target type, verdict)
BUILTIN = {
    "smallint": (("INT64", W), ("SMALLINT", E), (_SAME, E)),
    "integer": (("INT64", W), ("INTEGER", E), (_SAME, E)),
    "bigint": (("INT64", E), ("BIGINT", E), (_SAME, E)),
    "numeric(12,2)": (("NUMERIC", E), ("DECIMAL(12,2)", E), (_SAME, E)),
    "numeric(38,9)": (("NUMERIC", E), ("DECIMAL(38,9)", E), (_SAME, E)),
    "numeric(20,12)": (("BIGNUMERIC", W), ("DECIMAL(20,12)", E), (_SAME, E)),
    "numeric(40,2)": (("BIGNUMERIC", W), ("", B), (_SAME, E)),
    "numeric(76,38)": (("BIGNUMERIC", W), ("", B), (_SAME, E)),
    "numeric(60,0)": (("", B), ("", B), (_SAME, E)),
    "numeric(80,2)": (("", B), ("", B), ("", B)),
    "numeric": (("BIGNUMERIC", W), ("DECIMAL(38,10)", L), (_SAME, W)),
    "real": (("FLOAT64", W), ("REAL", E), (_SAME, E)),
    "double precision": (("FLOAT64", E), ("DOUBLE", E), (_SAME, E)),
    "money": (("NUMERIC", W), ("DECIMAL(38,9)", W), (_SAME, E)),
    "boolean": (("BOOL", E), ("BOOLEAN", E), (_SAME, E)),
    "text": (("STRING", E), ("VARCHAR", E), (_SAME, E)),
    "character varying(10)": (("STRING", W), ("VARCHAR", W), (_SAME, E)),
    "character varying": (("STRING", W), ("VARCHAR", W), (_SAME, E)),
    "character(3)": (("STRING", W), ("VARCHAR", W), (_SAME, E)),
    '"char"': (("STRING", W), ("VARCHAR", W), (_SAME, E)),
    "name": (("STRING", W), ("VARCHAR", W), (_SAME, E)),
    "bytea": (("BYTES", E), ("BLOB", E), (_SAME, E)),
    "date": (("DATE", E), ("DATE", E), (_SAME, E)),
    "timestamp without time zone": (("DATETIME", E), ("TIMESTAMP", E), (_SAME, E)),
    "timestamp(3) without time zone": (("DATETIME", E), ("TIMESTAMP", E), (_SAME, E)),
    "timestamp with time zone": (("TIMESTAMP", E), ("TIMESTAMPTZ", E), (_SAME, E)),
    "timestamp(0) with time zone": (("TIMESTAMP", E), ("TIMESTAMPTZ", E), (_SAME, E)),
    "time without time zone": (("TIME", E), ("TIME", E), (_SAME, E)),
    "time(3) without time zone": (("TIME", E), ("TIME", E), (_SAME, E)),
    "time with time zone": (("STRING", W), ("VARCHAR", W), (_SAME, E)),
    "interval": (("STRING", W), ("VARCHAR", W), (_SAME, E)),
    "interval year to month": (("STRING", W), ("VARCHAR", W), (_SAME, E)),
    "uuid": (("STRING", W), ("VARCHAR", W), (_SAME, E)),
    "json": (("JSON", L), ("JSON", L), (_SAME, L)),
    "jsonb": (("JSON", L), ("JSON", E), (_SAME, E)),
    "integer[]": (("JSON", W), ("JSON", W), ("jsonb", W)),
    "text[]": (("JSON", W), ("JSON", W), ("jsonb", W)),
    "timestamp with time zone[]": (("JSON", W), ("JSON", W), ("jsonb", W)),
    "numeric(12,2)[]": (("JSON", L), ("JSON", L), ("jsonb", L)),
    "double precision[]": (("JSON", L), ("JSON", L), ("jsonb", L)),
    "jsonb[]": (("JSON", L), ("JSON", L), ("jsonb", L)),
    "oid[]": (("", B), ("", B), ("", B)),
    **{
        name: (("STRING", W), ("VARCHAR", W), (_SAME, E))
        for name in (
            "int4range", "int8range", "numrange", "daterange", "tsrange", "tstzrange",
            "int4multirange", "int8multirange", "nummultirange", "datemultirange",
            "tsmultirange", "tstzmultirange",
            "inet", "cidr", "macaddr", "macaddr8", "bit(8)", "bit varying(5)", "bit varying",
            "xml", "tsvector", "tsquery",
            "point", "line", "lseg", "box", "path", "polygon", "circle", "pg_lsn",
        )
    },  # fmt: skip
    "oid": (("", B), ("", B), ("", B)),
    "tid": (("", B), ("", B), ("", B)),
    "txid_snapshot": (("", B), ("", B), ("", B)),
}

# Types a database defines: (DDL of the column type, its format_type()) → as BUILTIN.
USER_TYPES = """
CREATE EXTENSION citext;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE "Größe" AS ENUM ('S', 'M', 'L');
CREATE TYPE pair AS (b text, a integer);
CREATE TYPE floatrange AS RANGE (subtype = float8);
CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0);
CREATE DOMAIN price AS numeric(12,2) CHECK (VALUE >= 0);
CREATE DOMAIN tags AS text[];
CREATE DOMAIN nick AS citext;
"""
USER_DEFINED = {
    "mood": (("STRING", W), ("VARCHAR", W), ("text", W)),
    '"Größe"': (("STRING", W), ("VARCHAR", W), ("text", W)),
    "mood[]": (("JSON", W), ("JSON", W), ("jsonb", W)),
    "pair": (("JSON", L), ("JSON", L), ("jsonb", L)),  # field types are not inspected
    "pair[]": (("JSON", L), ("JSON", L), ("jsonb", L)),
    "floatrange": (("STRING", W), ("VARCHAR", W), ("text", W)),
    "positive_int": (("INT64", W), ("INTEGER", E), ("integer", E)),
    "price": (("NUMERIC", E), ("DECIMAL(12,2)", E), ("numeric(12,2)", E)),
    "tags": (("JSON", W), ("JSON", W), ("jsonb", W)),
    "citext": (("", B), ("", B), ("", B)),
    "nick": (("", B), ("", B), ("", B)),
}


_DIALECTS = ("bigquery", "duckdb", "postgres")


def _verdicts(mapping):
    return tuple((target_mapping(mapping, d).type, target_mapping(mapping, d).verdict) for d in _DIALECTS)


def _expected(source_type, table):
    return tuple((source_type if t == _SAME else t, v) for t, v in table[source_type])


@pytest.mark.parametrize("source", list(BUILTIN))
def test_every_builtin_type_has_its_type_and_verdict_in_each_target(source):
    assert _verdicts(map_postgres(source)) == _expected(source, BUILTIN)


@pytest.mark.parametrize("source", list(BUILTIN))
def test_every_verdict_but_exact_says_why(source):
    mapping = map_postgres(source)
    for dialect in _DIALECTS:
        mapped = target_mapping(mapping, dialect)
        assert mapped.verdict is E or mapped.note, (dialect, mapped)
        assert len(mapped.note) <= 160, mapped.note


def test_blockers_say_what_to_do_and_name_the_type():
    for source in ("oid", "numeric(80,2)", "oid[]"):
        note = target_mapping(map_postgres(source), "bigquery").note
        assert "oid" in note or "numeric(80,2)" in note
        assert "change its type in the source, or leave the table out of the plan" in note


def test_casts_turn_source_values_into_canonical_ones():
    casts = {
        "money": "{c}::numeric", "interval": "{c}::text", "integer[]": "array_to_json({c})",
        "json": "{c}::jsonb", "character(3)": "{c}::text", "inet": "{c}::text", "uuid": "{c}::text",
        "integer": None, "time without time zone": None, "jsonb": None,
    }  # fmt: skip
    assert {source: map_postgres(source).cast for source in casts} == casts


def test_arrow_types_are_exact():
    m = map_postgres("numeric(12,2)")
    assert arrow_type(Canonical.DECIMAL, m.precision, m.scale) == pa.decimal128(12, 2)
    assert map_postgres("numeric(40,2)").precision == 40
    bare = map_postgres("numeric")
    assert arrow_type(Canonical.DECIMAL, bare.precision, bare.scale) == pa.decimal256(76, 38)
    money = map_postgres("money")
    assert arrow_type(Canonical.DECIMAL, money.precision, money.scale) == pa.decimal128(38, 9)
    assert arrow_type(Canonical.TIME, None, None) == pa.time64("us")
    assert arrow_type(Canonical.TIMESTAMPTZ, None, None) == pa.timestamp("us", tz="UTC")


def test_notes_are_concrete():
    assert "NULL elements" in map_postgres("integer[]").note
    assert "2.50 becomes 2.5" in map_postgres("jsonb").note
    assert "rounds past 10 fractional digits" in target_mapping(map_postgres("numeric"), "duckdb").note
    assert "CAST(col AS INTERVAL)" in map_postgres("interval").note
    assert "GEOGRAPHY" in map_postgres("point").note


def test_the_catalog_tells_the_mapper_each_columns_kind(pg_url):
    """One column of every type in a real table; the catalogued verdicts are the table's above."""
    types = {**BUILTIN, **USER_DEFINED}
    columns = ", ".join(f'"c{i}" {name}' for i, name in enumerate(types))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(USER_TYPES)
        conn.execute(f"CREATE TABLE every_type ({columns})")
    source = PostgresSource(pg_url)
    try:
        (table,) = source.catalog(["every_type"])
    finally:
        source.close()
    got = {c.source_type: _verdicts(c.mapping) for c in table.columns}
    assert list(got) == list(types)  # format_type() names, quoting and all
    for source_type, table_of in ((s, BUILTIN if s in BUILTIN else USER_DEFINED) for s in types):
        assert got[source_type] == _expected(source_type, table_of), source_type
    by_type = {c.source_type: c for c in table.columns}
    assert by_type["mood"].pg_type.labels == ("sad", "ok", "happy")
    assert by_type["mood[]"].pg_type.element.labels == ("sad", "ok", "happy")
    assert by_type["price"].pg_type.base.name == "numeric(12,2)"
    assert by_type["price"].mapping.note.startswith(
        "domain price over numeric(12,2); its CHECK constraints are not carried"
    )
    assert by_type["tags"].mapping.cast == "array_to_json({c})"
    assert by_type["pair"].mapping.cast == "to_json({c})"
    assert by_type["citext"].mapping.note.startswith("citext is an extension's type")
