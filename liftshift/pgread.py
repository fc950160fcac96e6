"""Reading PostgreSQL fast and exactly: binary COPY, parsed into Arrow by liftshift.pgbinary.

Transfer's chunks and assess's samples come through binary_copy: off the socket of an unencrypted
connection (liftshift.pgwire; transfer's kept between chunks, liftshift.pgpool), else through
asyncpg, or psycopg where asyncpg cannot take the URL.
Other reads come through psycopg (copy_arrow; delta's changed rows in batches, copy_batches).
Chunks are read on Dask workers in parallel, so each is parsed whole on its worker's own thread.
"""

import asyncio
import sys
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import asyncpg
import psycopg
import pyarrow as pa
from psycopg import sql as pgsql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from liftshift import pgpool
from liftshift.connectors.base import Table
from liftshift.errors import SourceReadError
from liftshift.pgbinary import body_start, decode, decode_messages
from liftshift.pgwire import ConnectionLost, Received, copy_out, unencrypted
from liftshift.redact import redact

# URL parameters asyncpg reads as libpq does; any other it would send the server as a setting.
_ASYNCPG_PARAMS = {
    "host", "port", "dbname", "database", "user", "password", "passfile", "service", "servicefile",
    "sslmode", "sslcert", "sslkey", "sslrootcert", "sslcrl", "sslpassword", "sslnegotiation",
    "ssl_min_protocol_version", "ssl_max_protocol_version", "target_session_attrs", "krbsrvname",
    "gsslib", "application_name",
}  # fmt: skip
_CONNECT_SECONDS = 10  # as long as liftshift's own psycopg connections wait
_UNACKED_MS = 60_000
_TRAILER = b"\xff\xff"  # the end of a binary COPY: a field count of -1
_ENCRYPTED: set[str] = set()  # URLs whose connections may be encrypted: read through asyncpg or psycopg


def copy_arrow(conn: psycopg.Connection[Any], sql: str, table: Table) -> pa.Table:
    """Run sql (a COPY … TO STDOUT (FORMAT binary)) on conn; its rows in the table's schema."""
    return next(copy_batches(conn, sql, table, sys.maxsize))


def copy_batches(
    conn: psycopg.Connection[Any], sql: str, table: Table, batch_bytes: int
) -> Generator[pa.Table, None, None]:
    """Run sql (a COPY … TO STDOUT (FORMAT binary)) on conn; its rows in tables of about batch_bytes
    of COPY each (at least one table, maybe empty), so memory holds one batch, not the result."""
    header, batch, sent = b"", bytearray(), False
    with conn.cursor() as cur, cur.copy(sql) as copy:
        # PostgreSQL sends one row per message (the first also holds the header, the last is the
        # trailer), so a batch cut before a message ends with a whole row.
        for message in copy:
            if not header:
                header = bytes(message[: body_start(message)])
            elif len(batch) >= batch_bytes:
                batch += _TRAILER
                yield decode(batch, table)
                batch, sent = bytearray(header), True
            batch += message  # a bytearray grows in amortised constant time
    rows = decode(batch, table)
    if rows.num_rows or not sent:
        yield rows


def asyncpg_reads(url: str) -> bool:
    """Whether asyncpg can connect with url as libpq would (a URL with parameters asyncpg knows)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        return False  # a key=value conninfo: psycopg reads it
    return all(key in _ASYNCPG_PARAMS for key, _ in parse_qsl(parts.query, keep_blank_values=True))


def binary_copy(
    url: str, statements: list[str], select: str, table: Table, snapshot_id: str | None = None,
    keep: bool = False,
) -> pa.Table:  # fmt: skip
    """Run statements, then COPY (select) TO STDOUT (FORMAT binary), in the exported snapshot if given;
    parse the rows. keep: leave the connection open for the next read of url with the same statements
    (liftshift.pgpool), where it is read off the socket.

    Off the socket if the connection is unencrypted (liftshift.pgwire). Else through asyncpg: libpq
    hands COPY over one row per call, and psycopg spends ~0.6 µs of Python per row (3 s of CPU for
    5M rows, as long as the whole binary COPY), where asyncpg's Cython protocol joins the rows of
    each network read. psycopg only where asyncpg cannot take the URL.
    """
    copy, opening = f"COPY ({select}) TO STDOUT (FORMAT binary)", _in_snapshot(snapshot_id)
    if url in _ENCRYPTED and asyncpg_reads(url):
        return _asyncpg_copy(url, [*statements, *opening], select, table)
    kept_as = f"{url}\0{'; '.join(statements)}" if keep else ""
    if kept_as and (kept := pgpool.take(kept_as)) is not None:
        try:
            return _off_socket(kept, opening, copy, table, kept_as)
        except ConnectionLost as lost:
            if not lost.before_rows:
                raise  # it broke during the read: the chunk fails and is retried, as on a new one
            # It closed while kept (a restart, an idle timeout): a new connection reads.
    params = _params(url)
    conn = _connect(url, params)
    try:
        # libpq does not report GSS encryption: the socket is known clear only where _connect left it out
        clear = unencrypted(conn) and params.get("gssencmode", "disable") == "disable"
        if clear or not asyncpg_reads(url):
            # Each on its own, before the COPY's query: they may decide how its text is read.
            _run(conn, [*statements, *([] if clear else opening)])
    except BaseException:
        conn.close()
        raise
    if clear:
        return _off_socket(conn, opening, copy, table, kept_as)
    _ENCRYPTED.add(url)
    try:
        if not asyncpg_reads(url):
            return copy_arrow(conn, copy, table)
    finally:
        conn.close()
    return _asyncpg_copy(url, [*statements, *opening], select, table)


def _in_snapshot(snapshot_id: str | None) -> list[str]:
    """The statements that start a transaction in an exported snapshot (none without one)."""
    if not snapshot_id:
        return []
    join = pgsql.SQL("SET TRANSACTION SNAPSHOT {}").format(pgsql.Literal(snapshot_id)).as_string()
    return ["BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", join]


def _off_socket(
    conn: psycopg.Connection[Any], opening: list[str], copy: str, table: Table, kept_as: str
) -> pa.Table:
    """The COPY's rows read off the socket, in one query with the statements that open its transaction;
    the connection is then kept as kept_as if given (and the read left it open), else closed."""
    try:
        reply, first = copy_out(conn, "; ".join([*opening, copy, *(["COMMIT"] if opening else [])]))
        rows = decode_messages(reply, first, table)
    except BaseException:
        conn.close()
        raise
    if kept_as:
        pgpool.give_back(kept_as, conn)
    else:
        conn.close()
    return rows


def _asyncpg_copy(url: str, statements: list[str], select: str, table: Table) -> pa.Table:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _read(url, statements, select, table)
    with ThreadPoolExecutor(1) as thread:  # a notebook's thread already runs a loop
        return thread.submit(_read, url, statements, select, table).result()


def _connect(url: str, params: dict[str, Any]) -> psycopg.Connection[Any]:
    """A psycopg connection to url (params: its parameters) in UTF-8 (liftshift.pgwire sends its
    queries so), without GSS encryption unless the URL asks for it."""
    gss = {} if "gssencmode" in params else {"gssencmode": "disable"}
    # A kept connection whose peer vanished (a failover) fails its next query within a minute, not
    # after TCP's retries (~15 minutes): sent bytes may stay unacknowledged this long (TCP only).
    unacked = {} if "tcp_user_timeout" in params else {"tcp_user_timeout": _UNACKED_MS}
    conninfo = make_conninfo(url, client_encoding="UTF8", **gss, **unacked)
    try:
        return psycopg.connect(conninfo, autocommit=True, connect_timeout=_CONNECT_SECONDS)
    except psycopg.Error as exc:
        raise SourceReadError(redact(f"cannot connect to PostgreSQL at {url}: {exc}")) from None


def _params(url: str) -> dict[str, Any]:
    try:
        return conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise SourceReadError(redact(f"cannot read the PostgreSQL URL {url}: {exc}")) from None


def _run(conn: psycopg.Connection[Any], statements: list[str]) -> None:
    try:
        for statement in statements:
            conn.execute(statement)
    except psycopg.Error as exc:
        raise SourceReadError(redact(str(exc).strip() or type(exc).__name__)) from None


def _read(url: str, statements: list[str], select: str, table: Table) -> pa.Table:
    received = Received()
    asyncio.run(_copy(url, statements, select, received))
    return decode(received.view(), table)  # the Arrow table holds copies: the buffer can be reused


async def _copy(url: str, statements: list[str], select: str, received: Received) -> None:
    async def keep(part: bytes) -> None:
        received.keep(part)

    try:
        conn = await asyncpg.connect(url, timeout=_CONNECT_SECONDS)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise SourceReadError(redact(f"cannot connect to PostgreSQL at {url}: {exc}")) from None
    try:
        for statement in statements:
            await conn.execute(statement)
        await conn.copy_from_query(select, output=keep, format="binary")
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise SourceReadError(redact(str(exc) or type(exc).__name__)) from None
    finally:
        try:
            await conn.close(timeout=_CONNECT_SECONDS)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            conn.terminate()  # the connection broke: nothing left to say goodbye on
