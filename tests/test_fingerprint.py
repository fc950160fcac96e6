"""Canonical text, engine by engine: a float's or a timestamp's text is its exact binary form in all three."""

import hashlib
import math
import random
import struct
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import duckdb
import psycopg
import pytest

from liftshift import fingerprint as fp
from liftshift.connectors.bigquery import BigQueryTarget
from liftshift.connectors.postgres import PostgresSource
from liftshift.types import Canonical as C
from tests.conftest import BQ_PROJECT, new_database

Y2K = datetime(2000, 1, 1, tzinfo=UTC)


@pytest.fixture
def bigquery(bq_endpoint: str) -> Iterator[BigQueryTarget]:
    target = BigQueryTarget(BQ_PROJECT, "canonical", bq_endpoint)
    yield target
    target.close()


def some_doubles() -> list[float]:
    """Edge doubles, then random ones over every exponent (subnormals too), then random bit patterns."""
    rng = random.Random(7)
    edges = [0.0, -0.0, math.inf, -math.inf, 5e-324, -5e-324, 2.2250738585072014e-308, 2.225073858507201e-308,
             1.7976931348623157e308, 1.0, 2.0, 0.5, 1.0000000000000002, 1.9999999999999998, 0.1, 1 / 3,
             2.0**-1022, 2.0**1023, 9007199254740993.0, 1e22, 1e23]  # fmt: skip
    spread = [math.ldexp(rng.random(), rng.randint(-1074, 1024)) * rng.choice((1, -1)) for _ in range(300)]
    patterns = [struct.unpack(">d", struct.pack(">Q", rng.getrandbits(64)))[0] for _ in range(300)]
    return [x for x in edges + spread + patterns if not math.isnan(x)]


def bits(x: float) -> str:
    return struct.pack(">d", x).hex()


def bigquery_float(x: float) -> str:
    if math.isinf(x):
        return f"CAST('{'-' if x < 0 else ''}inf' AS FLOAT64)"
    return "-0.0" if x == 0 and math.copysign(1, x) < 0 else f"CAST('{x!r}' AS FLOAT64)"


def in_postgres(pg_url: str, rule: str, values: list[object], pg_type: str) -> list[str]:
    """The rule applied to each value in PostgreSQL, in order."""
    numbered = f"unnest(%s::{pg_type}[]) WITH ORDINALITY AS v(x, i)"
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(f"SELECT {rule.format(c='x')} FROM {numbered} ORDER BY i", [values]).fetchall()
    return [row[0] for row in rows]


def in_duckdb(rule: str, values: list[object], duck_type: str) -> list[str]:
    numbered = f"SELECT unnest($v::{duck_type}[]) AS x, generate_subscripts($v, 1) AS i"
    return [row[0] for row in duckdb.execute(f"SELECT {rule.format(c='x')} FROM ({numbered}) ORDER BY i",
                                             {"v": values}).fetchall()]  # fmt: skip


def in_bigquery(target: BigQueryTarget, rule: str, literals: list[str]) -> list[str]:
    rows = " UNION ALL ".join(f"SELECT {i} AS i, {literal} AS x" for i, literal in enumerate(literals))
    result = target.query(f"SELECT i, {rule.format(c='x')} AS t FROM ({rows}) ORDER BY i")
    return [r["t"] for r in result.to_pylist()]


@pytest.mark.parametrize("engine", ["postgres", "duckdb", "bigquery"])
def test_a_float_is_the_hex_of_its_ieee_bits_in_every_engine(engine, pg_url, bigquery):
    values = some_doubles()
    rule = fp._RULES[engine][C.FLOAT64]
    if engine == "postgres":
        texts = in_postgres(pg_url, rule, values, "float8")  # type: ignore[arg-type]
    elif engine == "duckdb":
        texts = in_duckdb(rule, values, "DOUBLE")  # type: ignore[arg-type]
    else:
        texts = in_bigquery(bigquery, rule, [bigquery_float(x) for x in values])
    wrong = [(x, text, bits(x)) for x, text in zip(values, texts, strict=True) if text != bits(x)]
    assert not wrong, wrong[:5]
    assert bits(-0.0) in texts and bits(0.0) in texts and bits(-0.0) != bits(0.0)


def test_nan_is_one_text_whatever_its_payload(pg_url):
    negative_nan = struct.unpack(">d", bytes.fromhex("fff8000000000000"))[0]  # what 0 * inf gives on x86
    assert in_postgres(pg_url, fp._RULES["postgres"][C.FLOAT64], [negative_nan, math.nan], "float8") == [
        "NaN",
        "NaN",
    ]
    assert in_duckdb(fp._RULES["duckdb"][C.FLOAT64], [negative_nan, math.nan], "DOUBLE") == ["NaN", "NaN"]


TIMESTAMP_TYPES = [  # canonical, then the type in PostgreSQL, BigQuery and DuckDB
    (C.TIMESTAMPTZ, "timestamptz", "TIMESTAMP", "TIMESTAMPTZ"),
    (C.TIMESTAMP, "timestamp", "DATETIME", "TIMESTAMP"),
]


@pytest.mark.parametrize(("kind", "pg_type", "bq_type", "duck_type"), TIMESTAMP_TYPES)
def test_timestamps_are_the_hex_of_microseconds_since_2000(
    kind, pg_type, bq_type, duck_type, pg_url, bigquery
):
    last = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    moments = [datetime(1, 1, 1, tzinfo=UTC), datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), Y2K,
               Y2K - timedelta(microseconds=1), last]  # fmt: skip
    expected = [((m - Y2K) // timedelta(microseconds=1) % 2**64).to_bytes(8, "big").hex() for m in moments]
    texts = [m.strftime("%Y-%m-%d %H:%M:%S.%f").rjust(26, "0") for m in moments]
    zoned = [t + "+00" if kind is C.TIMESTAMPTZ else t for t in texts]
    assert in_postgres(pg_url, fp._RULES["postgres"][kind], zoned, pg_type) == expected  # type: ignore[arg-type]
    assert in_duckdb(fp._RULES["duckdb"][kind], zoned, duck_type) == expected  # type: ignore[arg-type]
    literals = [f"{bq_type} '{t}'" for t in texts]
    assert in_bigquery(bigquery, fp._RULES["bigquery"][kind], literals) == expected


@pytest.mark.parametrize("encoding", ["UTF8", "LATIN1"])
def test_postgresql_hashes_a_row_s_utf8_text_whatever_the_database_encoding(pg_admin_url, encoding):
    # DuckDB and BigQuery hash UTF-8; PostgreSQL's md5(text) would hash LATIN1's bytes ('é' one byte).
    url = new_database(pg_admin_url, encoding)
    words = ["café", "naïve ÿ½ Æ", "plain"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE w (id int, t text)")
        conn.execute("INSERT INTO w SELECT i, t FROM unnest(%s::text[]) WITH ORDINALITY AS u(t, i)", [words])
    source = PostgresSource(url)
    try:
        (table,) = source.catalog(["w"])
        hashes = source.query(f"SELECT {fp.row_hash('postgres', table.columns)} AS h FROM w ORDER BY id")
    finally:
        source.close()
    expected = [hashlib.md5(f"1{i}|1{w}".encode()).hexdigest() for i, w in enumerate(words, 1)]
    assert hashes.column("h").to_pylist() == expected
