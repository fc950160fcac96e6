"""A transfer's chunk reads run on source connections kept between them (liftshift.pgpool), closed when
the transfer ends; a kept connection the server closed meanwhile is replaced without failing the read."""

import time

import psycopg
import pytest

from liftshift import pgpool, pgread, transfer
from liftshift.connectors.postgres import PostgresSource, read_binary
from liftshift.errors import SourceReadError
from liftshift.ledger import Ledger
from tests.conftest import write_plan
from tests.test_pgwire import catalog

_KEPT = """SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
AND query LIKE '%COPY (SELECT%' AND backend_type = 'client backend'"""


def _kept_backends(url: str) -> list[int]:
    """The backends still open whose last query was a chunk's COPY."""
    with psycopg.connect(url, autocommit=True) as conn:
        return [pid for (pid,) in conn.execute(_KEPT).fetchall()]


def _counting_connects(monkeypatch) -> list[str]:
    """Record each new connection binary_copy opens in this process (the real one is opened)."""
    opened: list[str] = []
    real = pgread._connect

    def connect(url: str, params: dict[str, object]) -> psycopg.Connection[object]:
        opened.append(url)
        return real(url, params)

    monkeypatch.setattr(pgread, "_connect", connect)
    return opened


def _sessions(url: str) -> int:
    """Sessions the server has counted in this database, once the count has settled (statistics
    arrive up to a second late)."""
    counts: list[int] = []
    with psycopg.connect(url, autocommit=True) as conn:
        while len(counts) < 8 or len(set(counts[-6:])) > 1:
            conn.execute("SELECT pg_stat_clear_snapshot()")
            query = "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
            counts.append(conn.execute(query).fetchone()[0])  # type: ignore[index]
            time.sleep(0.2)
    return counts[-1]


def _one_table(url: str, sql: str, name: str) -> object:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)
    return catalog(url, name)


def test_chunks_are_read_on_kept_connections_which_close_when_the_transfer_ends(pg_url, tmp_path):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE many (id int PRIMARY KEY, v text)")
        conn.execute("INSERT INTO many SELECT g, md5(g::text) FROM generate_series(1, 20000) g")
    plan = write_plan(tmp_path, pg_url, "duckdb:///k.duckdb",
                      transfer={"chunk_rows": 1000, "max_source_connections": 2})  # fmt: skip
    before = _sessions(pg_url)
    report = transfer.run(plan, Ledger(plan.ledger_url()))
    assert report.gate.passed and report.tables[0].chunks == 20
    # The workers' reads (two at once) and the transfer's own few, where each chunk opened one before.
    assert _sessions(pg_url) - before - 1 <= 10  # - 1: _sessions' own
    deadline = time.monotonic() + 10
    while _kept_backends(pg_url) and time.monotonic() < deadline:  # a backend leaves as its socket closes
        time.sleep(0.05)
    assert _kept_backends(pg_url) == []


def test_a_kept_connection_the_server_closed_is_replaced_and_the_read_succeeds(pg_url, monkeypatch):
    table = _one_table(pg_url, "CREATE TABLE kept AS SELECT g AS id FROM generate_series(1, 3000) g", "kept")
    opened = _counting_connects(monkeypatch)
    try:
        assert read_binary(pg_url, "public", table, "", keep=True).num_rows == 3000
        assert read_binary(pg_url, "public", table, "WHERE id <= 10", keep=True).num_rows == 10
        assert len(opened) == 1  # the second read ran on the kept connection
        (pid,) = _kept_backends(pg_url)
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))  # as a restart or an idle timeout does
        assert read_binary(pg_url, "public", table, "WHERE id > 2990", keep=True).num_rows == 10
        assert len(opened) == 2
    finally:
        pgpool.close_idle()


def test_a_read_that_fails_does_not_keep_its_connection(pg_url):
    table = _one_table(pg_url, "CREATE TABLE shaky AS SELECT g AS id FROM generate_series(1, 100) g", "shaky")
    try:
        assert read_binary(pg_url, "public", table, "", keep=True).num_rows == 100  # type: ignore[arg-type]
        assert len(_kept_backends(pg_url)) == 1
        with pytest.raises(SourceReadError, match="division by zero"):  # on the kept connection
            read_binary(pg_url, "public", table, "WHERE 1 / (id - 50) > 0", keep=True)  # type: ignore[arg-type]
        assert pgpool.close_idle() == 0  # a transaction that failed is not handed to the next read
    finally:
        pgpool.close_idle()


def test_reads_in_an_exported_snapshot_share_a_kept_connection_and_see_only_the_snapshot(pg_url):
    table = _one_table(
        pg_url, "CREATE TABLE moving AS SELECT g AS id FROM generate_series(1, 1000) g", "moving"
    )
    source = PostgresSource(pg_url, "public")
    try:
        with source.exported_snapshot() as snapshot:
            with psycopg.connect(pg_url, autocommit=True) as conn:
                conn.execute("DELETE FROM moving WHERE id > 500")  # after the snapshot: not seen
            for _ in range(3):
                assert read_binary(pg_url, "public", table, "", snapshot, keep=True).num_rows == 1000  # type: ignore[arg-type]
            assert len(_kept_backends(pg_url)) == 1
            # A failure inside the snapshot's transaction:
            with pytest.raises(SourceReadError, match="division by zero"):
                read_binary(pg_url, "public", table, "WHERE 1 / (id - 7) > 0", snapshot, keep=True)  # type: ignore[arg-type]
            assert pgpool.close_idle() == 0
        assert read_binary(pg_url, "public", table, "", keep=True).num_rows == 500  # type: ignore[arg-type]
    finally:
        source.close()
        pgpool.close_idle()


def test_only_connections_idle_long_enough_are_closed_by_age(pg_url):
    table = _one_table(pg_url, "CREATE TABLE aged AS SELECT g AS id FROM generate_series(1, 10) g", "aged")
    try:
        read_binary(pg_url, "public", table, "", keep=True)  # type: ignore[arg-type]
        assert pgpool.close_idle(older_than=3600) == 0  # what the reaper runs every IDLE_SECONDS / 2
        assert pgpool.close_idle(older_than=0) == 1
    finally:
        pgpool.close_idle()
