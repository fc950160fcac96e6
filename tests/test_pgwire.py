"""Binary COPY read off the socket (liftshift.pgwire), or, when encrypted, through asyncpg or psycopg:
the same rows whichever way, the server's errors as its messages, a broken reply refused."""

import time
from urllib.parse import parse_qs, urlsplit

import numpy as np
import psycopg
import pyarrow as pa
import pytest

from liftshift import pgread
from liftshift.connectors.postgres import PostgresSource, read_binary, select_sql
from liftshift.errors import SourceReadError
from liftshift.pgbinary import decode_messages
from liftshift.pgread import binary_copy, copy_arrow
from liftshift.pgwire import _frames, copy_out

_ODD = """CREATE TABLE odd AS SELECT g AS id,
  CASE WHEN g % 5 = 0 THEN NULL ELSE repeat('é', g % 40) || g END AS tag,
  (g * 1.25)::numeric(12,2) AS amount, CASE WHEN g % 3 = 0 THEN 'NaN'::float8 ELSE -g / 7.0 END AS ratio,
  timestamptz '2024-02-29 23:59:59.999999+00' + g * interval '1 s' AS at, g % 2 = 0 AS flag
FROM generate_series(1, {rows}) g"""


def rows(data: pa.Table) -> list[str]:
    """The rows as text that tells NaN and -0.0 apart (NaN is not equal to itself)."""
    return [repr(row) for row in data.to_pylist()]


def catalog(url: str, name: str) -> object:
    source = PostgresSource(url, "public")
    try:
        (table,) = source.catalog([name])
    finally:
        source.close()
    return table


def test_off_the_socket_through_asyncpg_and_through_psycopg_the_rows_are_the_same(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(_ODD.format(rows=20_000))
    table = catalog(pg_url, "odd")
    select = select_sql("public", table, "ORDER BY 1")  # type: ignore[arg-type]
    copy = f"COPY ({select}) TO STDOUT (FORMAT binary)"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        off_socket = decode_messages(*copy_out(conn, copy), table)  # type: ignore[arg-type]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        through_psycopg = copy_arrow(conn, copy, table)  # type: ignore[arg-type]
    through_asyncpg = pgread._read(pg_url, [], select, table)  # type: ignore[arg-type]
    assert off_socket.num_rows == 20_000
    assert rows(off_socket) == rows(through_psycopg) == rows(through_asyncpg)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM odd WHERE tag IS NULL").fetchone()[0] == 4000
    assert off_socket.column("tag").null_count == 4000


def test_an_error_after_rows_were_sent_arrives_as_the_server_s_message(pg_url):
    # The server fails at row 30000 of its scan, after it has sent thousands of rows (no ORDER BY).
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE late AS SELECT g AS id FROM generate_series(1, 50000) g")
    table = catalog(pg_url, "late")
    with pytest.raises(SourceReadError, match="division by zero"):
        binary_copy(pg_url, [], "SELECT 10 / (30000 - id) AS id FROM late", table)  # type: ignore[arg-type]


def test_notices_sent_between_rows_are_passed_over(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE noisy AS SELECT g AS id FROM generate_series(1, 5000) g")
        conn.execute(
            "CREATE FUNCTION loud(v int) RETURNS int LANGUAGE plpgsql AS "
            "$$ BEGIN IF v % 100 = 0 THEN RAISE NOTICE 'row %', v; END IF; RETURN v; END $$"
        )
    table = catalog(pg_url, "noisy")
    # No ORDER BY: a sort would call loud() for every row before the first is sent.
    data = binary_copy(pg_url, [], "SELECT loud(id) AS id FROM noisy", table)  # type: ignore[arg-type]
    assert sorted(data.column("id").to_pylist()) == list(range(1, 5001))


def test_a_reply_cut_short_is_refused(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE cut AS SELECT g AS id, md5(g::text) AS tag FROM generate_series(1, 300) g")
    table = catalog(pg_url, "cut")
    copy = f"COPY ({select_sql('public', table, '')}) TO STDOUT (FORMAT binary)"  # type: ignore[arg-type]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        reply, first = copy_out(conn, copy)
        whole = bytes(reply)
    assert decode_messages(memoryview(whole), first, table).num_rows == 300  # type: ignore[arg-type]
    assert _frames(np.frombuffer(whole, np.uint8), 0, -1, -1) == (len(whole), first, -1, ord("I"))
    walked = (0, -1, -1, -1)  # as copy_out walks it, read by read: here 7 bytes at a time
    for end in range(7, len(whole) + 7, 7):
        walked = _frames(np.frombuffer(whole[:end], np.uint8), *walked[:3])
    assert walked == (len(whole), first, -1, ord("I"))
    for cut in (len(whole) - 40, len(whole) // 2, first + 40):  # inside the rows: no trailer reached
        with pytest.raises(SourceReadError, match="cut short or malformed"):
            decode_messages(memoryview(whole[:cut]), first, table)  # type: ignore[arg-type]
        stopped, *_, status = _frames(np.frombuffer(whole[:cut], np.uint8), 0, -1, -1)
        assert status == -1 and stopped <= cut  # copy_out reads on, or the connection closed during a read


def test_an_encrypted_connection_is_read_through_asyncpg_or_psycopg_with_the_same_rows(pg_url, monkeypatch):
    # Mocked: the embedded PostgreSQL is built without TLS, so the test makes liftshift.pgread see
    # its plain connections as encrypted; the readers they go to then run for real.
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(_ODD.format(rows=3000))
    table = catalog(pg_url, "odd")
    monkeypatch.setattr(pgread, "_ENCRYPTED", set())  # this test's own memory of encrypted URLs
    plain = read_binary(pg_url, "public", table, "ORDER BY 1")  # type: ignore[arg-type]
    assert pg_url not in pgread._ENCRYPTED
    monkeypatch.setattr(pgread, "unencrypted", lambda conn: False)
    through_asyncpg = read_binary(pg_url, "public", table, "ORDER BY 1")  # type: ignore[arg-type]
    assert pg_url in pgread._ENCRYPTED  # the next read goes to asyncpg without trying the socket
    assert read_binary(pg_url, "public", table, "ORDER BY 1").num_rows == 3000  # type: ignore[arg-type]
    parts = urlsplit(pg_url)
    conninfo = f"host={parse_qs(parts.query)['host'][0]} dbname={parts.path[1:]} user={parts.username}"
    assert not pgread.asyncpg_reads(conninfo)
    through_psycopg = read_binary(conninfo, "public", table, "ORDER BY 1")  # type: ignore[arg-type]
    assert rows(through_asyncpg) == rows(plain) == rows(through_psycopg)


def _parallel_workers_launched(admin_url: str, database: str) -> int:
    # Asked from another database: a query in this one, where parallel plans cost nothing, would launch some.
    with psycopg.connect(admin_url) as conn:
        found = conn.execute(
            "SELECT parallel_workers_launched FROM pg_stat_database WHERE datname = %s", (database,)
        ).fetchone()
    return int(found[0])  # type: ignore[index]


def _launched_by(admin_url: str, database: str, read: object) -> int:
    """How many parallel workers the server launched for read(), once its count has settled."""
    before = _parallel_workers_launched(admin_url, database)
    read()  # type: ignore[operator]
    counts = [before]
    while len(counts) < 8 or len(set(counts[-6:])) > 1:  # statistics arrive as backends end: 0.3 s still
        time.sleep(0.05)
        counts.append(_parallel_workers_launched(admin_url, database))
    return counts[-1] - before


_WIDE = "CREATE TABLE wide AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 99999) g"


def test_a_chunk_is_read_by_one_backend_even_where_the_planner_would_go_parallel(pg_admin_url, pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(_WIDE)
        conn.execute("ALTER TABLE wide ADD PRIMARY KEY (id)")
        conn.execute("VACUUM ANALYZE wide")
        database = conn.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
        for setting in ("parallel_setup_cost", "parallel_tuple_cost", "min_parallel_table_scan_size"):
            conn.execute(f"ALTER DATABASE {database} SET {setting} = 0")  # parallel whenever it can be
    table = catalog(pg_url, "wide")
    clause = "WHERE id >= 1000 AND id < 60000"
    copy = f"COPY ({select_sql('public', table, clause)}) TO STDOUT (FORMAT binary)"  # type: ignore[arg-type]

    def plainly() -> None:
        with psycopg.connect(pg_url) as conn, conn.cursor().copy(copy) as rows:
            for _ in rows:
                pass

    assert _launched_by(pg_admin_url, database, plainly) > 0  # the test's premise: this query goes parallel
    data = read_binary(pg_url, "public", table, clause)  # type: ignore[arg-type]
    assert data.num_rows == 59000
    chunk = lambda: read_binary(pg_url, "public", table, clause)  # type: ignore[arg-type]  # noqa: E731
    assert _launched_by(pg_admin_url, database, chunk) == 0
