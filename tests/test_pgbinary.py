"""Binary COPY read through asyncpg and parsed by liftshift.pgbinary: values exact, bad input refused."""

import asyncio
import random
import struct
from decimal import Decimal

import psycopg
import pytest

from liftshift.connectors.postgres import PostgresSource, read_binary, select_sql
from liftshift.errors import SourceReadError
from liftshift.pgbinary import decode
from liftshift.pgread import asyncpg_reads, binary_copy

# (precision, scale): the int64 kernel (≤ 18 digits, scales 0 to 18), and text cast exactly to
# decimal128 (19…38 digits) or decimal256.
_DECIMALS = [(12, 2), (18, 0), (18, 17), (18, 18), (15, 5), (9, 4), (4, 0), (30, 10), (38, 3), (50, 20)]


def random_decimal(rng: random.Random, precision: int, scale: int) -> Decimal:
    """A decimal of up to precision digits, often with trailing zeros, or an edge of the type."""
    roll = rng.random()
    if roll < 0.05:
        return exact((10**precision - 1) * rng.choice((1, -1)), scale)  # the largest
    if roll < 0.1:
        return exact(rng.choice((0, 1, -1)), scale)  # zero and the smallest step
    digits = rng.randint(1, precision)
    unscaled = rng.randint(0, 10**digits - 1) // 10 ** rng.randint(0, digits - 1) * 10 ** rng.randint(0, 3)
    unscaled = min(unscaled, 10**precision - 1) * rng.choice((1, -1))
    return exact(unscaled, scale)


def exact(unscaled: int, scale: int) -> Decimal:
    """unscaled × 10^-scale, whatever the decimal context's precision."""
    return Decimal(f"{unscaled}e-{scale}")


def read_all(url: str, name: str) -> tuple[list[dict[str, object]], list[tuple[object, ...]]]:
    """A table read by read_binary (as dicts) and by psycopg (as tuples), in key order."""
    source = PostgresSource(url, "public")
    try:
        (table,) = source.catalog([name])
        data = read_binary(url, "public", table, "ORDER BY 1").to_pylist()
        rows = source.conn.execute(f"SELECT * FROM {name} ORDER BY 1").fetchall()
    finally:
        source.close()
    return data, rows


def test_decimals_of_every_width_and_scale_arrive_exactly(pg_url):
    rng = random.Random(11)
    columns = ", ".join(f"d{i} numeric({p},{s})" for i, (p, s) in enumerate(_DECIMALS))
    rows = [[i] + [random_decimal(rng, p, s) if rng.random() > 0.05 else None for p, s in _DECIMALS]
            for i in range(3000)]  # fmt: skip
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE decimals (id int PRIMARY KEY, {columns})")
        with conn.cursor().copy("COPY decimals FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    data, stored = read_all(pg_url, "decimals")
    assert len(data) == 3000
    for got, want in zip(data, stored, strict=True):
        assert list(got.values())[1:] == list(want[1:])


def test_every_fixed_width_type_keeps_its_bits(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE fixed AS SELECT * FROM (VALUES "
            "(1, '-32768'::int2, -2147483648, '-9223372036854775808'::int8, '-0'::float4, 'NaN'::float8, "
            " true, '0001-01-01'::date, '00:00:00'::time, '0001-01-01 00:00:00'::timestamp, "
            " '1999-12-31 23:59:59.999999+00'::timestamptz, '\\x00ff'::bytea),"
            "(2, 32767::int2, 2147483647, 9223372036854775807::int8, '-Infinity'::float4, '-0'::float8, "
            " false, '9999-12-31'::date, '23:59:59.999999'::time, '9999-12-31 23:59:59.999999'::timestamp, "
            " '2000-01-01 00:00:00.000001+00'::timestamptz, ''::bytea),"
            "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)) AS v"
        )
    data, stored = read_all(pg_url, "fixed")
    for got, want in zip(data, stored, strict=True):
        values = list(got.values())
        # == takes -0.0 for 0.0 and never NaN for NaN: floats compare by their bits
        assert [struct.pack(">d", v) if isinstance(v, float) else v for v in values] == [
            struct.pack(">d", w) if isinstance(w, float) else w for w in want
        ]


def test_columns_already_of_their_wire_type_are_read_without_a_cast(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE DOMAIN positive AS int CHECK (VALUE > 0)")
        conn.execute(
            "CREATE TABLE plain (id bigint PRIMARY KEY, amount numeric(12,2), "
            "at timestamp(3) with time zone, code varchar(8), n positive, big numeric(30,10), tag char(3))"
        )
        conn.execute(
            "INSERT INTO plain VALUES (1, 12.34, '2024-01-02 03:04:05.678+00', 'ab', 7, 1.5, 'x'), "
            "(2, NULL, NULL, NULL, NULL, NULL, NULL)"
        )
    source = PostgresSource(pg_url, "public")
    try:
        (table,) = source.catalog(["plain"])
    finally:
        source.close()
    # Bare where the cast would change nothing; a domain, a decimal sent as text, and blank-padded
    # char keep theirs.
    assert select_sql("public", table, "").startswith(
        'SELECT "id", "amount", "at", "code", CAST("n" AS int4), CAST("big" AS text), '
        'CAST(("tag"::text) AS text) '
    )
    data, stored = read_all(pg_url, "plain")
    unpadded = [(*row[:-1], row[-1] and row[-1].rstrip()) for row in stored]
    assert [tuple(row.values()) for row in data] == unpadded


@pytest.mark.parametrize(
    ("column", "value", "says"),
    [("date", "'infinity'", "±infinity"), ("timestamptz", "'-infinity'", "±infinity"),
     ("time", "'24:00:00'", "24:00:00"), ("numeric(10,2)", "'NaN'", "NaN")],
)  # fmt: skip
def test_a_value_arrow_cannot_hold_is_refused_by_name(pg_url, column, value, says):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE odd AS SELECT 1 AS id, {value}::{column} AS odd_value")
    with pytest.raises(SourceReadError, match=f"odd_value holds .*{says}"):
        read_all(pg_url, "odd")


def test_a_cut_short_copy_is_an_error_not_a_crash(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE cut AS SELECT g AS id, md5(g::text) AS tag FROM generate_series(1, 100) g")
    source = PostgresSource(pg_url, "public")
    (table,) = source.catalog(["cut"])
    sql = f"COPY ({select_sql('public', table, '')}) TO STDOUT (FORMAT binary)"
    with source.conn.cursor() as cur, cur.copy(sql) as copy:
        whole = b"".join(bytes(part) for part in copy)
    source.close()
    assert decode(whole, table).num_rows == 100
    for cut in (len(whole) - 1, len(whole) - 3, len(whole) // 2, 21):
        with pytest.raises(SourceReadError, match="cut short or malformed"):
            decode(whole[:cut], table)
    with pytest.raises(SourceReadError, match="not a binary COPY"):
        decode(b"1,abc\n" * 10, table)


def test_which_urls_asyncpg_reads_and_which_go_to_psycopg():
    assert asyncpg_reads("postgresql://app:pw@db:5432/shop?sslmode=require&application_name=x")
    assert asyncpg_reads("postgres://app@/shop?host=/var/run/postgresql")
    assert not asyncpg_reads("host=db dbname=shop user=app")  # key=value: psycopg
    assert not asyncpg_reads("postgresql://app@db/shop?connect_timeout=5")  # asyncpg would SET it
    assert not asyncpg_reads("postgresql://app@db/shop?options=-csearch_path%3Dx")


def test_an_unreachable_source_says_so_without_its_password(pg_url):
    with pytest.raises(SourceReadError, match="cannot connect") as raised:
        binary_copy("postgresql://app:s3cretpw@127.0.0.1:1/shop", [], "SELECT 1", None)  # type: ignore[arg-type]
    assert "s3cretpw" not in str(raised.value)


def test_a_server_error_arrives_as_one_message(pg_url):
    with pytest.raises(SourceReadError, match="does not exist"):
        binary_copy(pg_url, [], "SELECT * FROM vanished_table", None)  # type: ignore[arg-type]


def test_it_reads_from_inside_a_running_event_loop_as_a_notebook_has(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE loop_t AS SELECT g AS id FROM generate_series(1, 5) g")
    source = PostgresSource(pg_url, "public")
    (table,) = source.catalog(["loop_t"])
    source.close()

    async def in_a_loop() -> int:
        return read_binary(pg_url, "public", table, "").num_rows

    assert asyncio.run(in_a_loop()) == 5


_MIXED = (
    "CREATE TABLE {name} AS SELECT g * 10 + {salt} AS id, (g + {salt}) * 1.5::float8 AS ratio,"
    " (g % 1000) * 0.01::numeric(9,2) AS amount,"
    " CASE WHEN g % 7 = 0 THEN NULL ELSE md5((g + {salt})::text) END AS tag,"
    " time '01:02:03' + (g + {salt}) * interval '1 s' AS at, date '2020-01-01' + g AS day"
    " FROM generate_series(1, {rows}) g"
)


def copy_bytes(url: str, name: str, rows: int, salt: int = 0) -> tuple[bytes, object]:
    """A mixed table's binary COPY, as transfer selects it, and its catalog entry."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_MIXED.format(name=name, rows=rows, salt=salt))
    source = PostgresSource(url, "public")
    (table,) = source.catalog([name])
    sql = f"COPY ({select_sql('public', table, 'ORDER BY 1')}) TO STDOUT (FORMAT binary)"
    with source.conn.cursor() as cur, cur.copy(sql) as copy:
        whole = b"".join(bytes(part) for part in copy)
    source.close()
    return whole, table


def test_a_decoded_table_keeps_its_values_when_the_thread_reads_the_next(pg_url):
    # The read buffer and the walk's arrays are reused by the thread's next chunk (a smaller one here,
    # so they are not replaced by larger ones): no decoded table may point into them.
    _, big = copy_bytes(pg_url, "first", 5000)
    _, small = copy_bytes(pg_url, "second", 3000, salt=7)
    first = read_binary(pg_url, "public", big, "ORDER BY 1")  # type: ignore[arg-type]
    kept = first.to_pylist()
    second = read_binary(pg_url, "public", small, "ORDER BY 1")  # type: ignore[arg-type]
    assert first.to_pylist() == kept
    with psycopg.connect(pg_url) as conn:
        for data, name in ((first, "first"), (second, "second")):
            stored = conn.execute(f"SELECT * FROM {name} ORDER BY id").fetchall()
            assert [tuple(row.values()) for row in data.to_pylist()] == stored


def test_a_damaged_copy_is_an_error_or_a_table_never_a_crash(pg_url):
    whole, table = copy_bytes(pg_url, "damaged", 400)
    rng = random.Random(5)
    outcomes = {"decoded": 0, "refused": 0}
    for _ in range(600):
        data = bytearray(whole[: rng.randrange(19, len(whole) + 1)] if rng.random() < 0.3 else whole)
        for _ in range(rng.randrange(1, 4)):  # overwrite a byte, often one of a length's
            data[rng.randrange(19, len(data))] = rng.choice([0x00, 0x7F, 0x80, 0xFF, rng.randrange(256)])
        try:
            decoded = decode(bytes(data), table)  # type: ignore[arg-type]
        except SourceReadError:
            outcomes["refused"] += 1
        else:
            assert decoded.num_rows <= 400
            outcomes["decoded"] += 1
    assert outcomes["refused"] > 100 and outcomes["decoded"] > 10, outcomes
