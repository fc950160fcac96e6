"""Reading PostgreSQL fast and exactly: binary COPY, parsed into Arrow by liftshift.pgbinary.

Transfer's chunks and assess's samples come through asyncpg (binary_copy); other reads (delta rows,
keys) through psycopg (copy_arrow), as does everything when asyncpg cannot take the source URL.
Chunks are read on Dask workers in parallel, so each is parsed whole on its worker's own thread.
"""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import asyncpg
import psycopg
import pyarrow as pa

from liftshift.connectors.base import Table
from liftshift.errors import SourceReadError
from liftshift.pgbinary import decode
from liftshift.redact import redact

# URL parameters asyncpg reads as libpq does; any other it would send the server as a setting.
_ASYNCPG_PARAMS = {
    "host", "port", "dbname", "database", "user", "password", "passfile", "service", "servicefile",
    "sslmode", "sslcert", "sslkey", "sslrootcert", "sslcrl", "sslpassword", "sslnegotiation",
    "ssl_min_protocol_version", "ssl_max_protocol_version", "target_session_attrs", "krbsrvname",
    "gsslib", "application_name",
}  # fmt: skip
_CONNECT_SECONDS = 10  # as long as liftshift's own psycopg connections wait


def copy_arrow(conn: psycopg.Connection[Any], sql: str, table: Table) -> pa.Table:
    """Run sql (a COPY … TO STDOUT (FORMAT binary)) on conn; its rows in the table's schema."""
    data = bytearray()
    with conn.cursor() as cur, cur.copy(sql) as copy:
        for row in copy:  # one row per message: a bytearray grows in amortised constant time
            data += row
    return decode(data, table)


def binary_copy_ready(url: str) -> bool:
    """Whether binary_copy can connect with url as libpq would (a URL with parameters asyncpg knows)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        return False  # a key=value conninfo: psycopg reads it
    return all(key in _ASYNCPG_PARAMS for key, _ in parse_qsl(parts.query, keep_blank_values=True))


def binary_copy(url: str, statements: list[str], select: str, table: Table) -> pa.Table:
    """Run statements, then COPY (select) TO STDOUT (FORMAT binary), on a new connection; parse the rows.

    Why asyncpg and not psycopg: libpq hands COPY over one row per call, and psycopg spends ~0.6 µs
    of Python per row (3 s of CPU for 5M rows, as long as the whole binary COPY). asyncpg's Cython
    protocol joins the rows of each network read into one piece: on the transfer benchmark it
    takes 0.9 CPU-s where psql and the pipe from it took 1.9.
    """
    coroutine = _copy_bytes(url, statements, select)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return decode(asyncio.run(coroutine), table)
    with ThreadPoolExecutor(1) as thread:  # a notebook's thread already runs a loop
        return decode(thread.submit(asyncio.run, coroutine).result(), table)


async def _copy_bytes(url: str, statements: list[str], select: str) -> bytes:
    try:
        conn = await asyncpg.connect(url, timeout=_CONNECT_SECONDS)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise SourceReadError(redact(f"cannot connect to PostgreSQL at {url}: {exc}")) from None
    try:
        for statement in statements:
            await conn.execute(statement)
        parts: list[bytes] = []

        async def keep(part: bytes) -> None:
            parts.append(part)

        await conn.copy_from_query(select, output=keep, format="binary")
        return b"".join(parts)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise SourceReadError(redact(str(exc) or type(exc).__name__)) from None
    finally:
        try:
            await conn.close(timeout=_CONNECT_SECONDS)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            conn.terminate()  # the connection broke: nothing left to say goodbye on
