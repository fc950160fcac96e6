"""Reading PostgreSQL fast and exactly: binary COPY, parsed into Arrow by liftshift.pgbinary.

Transfer's chunks and assess's samples come through asyncpg (binary_copy); other reads through
psycopg (copy_arrow; delta's changed rows in batches, copy_batches), as does everything when asyncpg
cannot take the source URL.
Chunks are read on Dask workers in parallel, so each is parsed whole on its worker's own thread.
"""

import asyncio
import sys
import threading
import time
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import asyncpg
import numpy as np
import psycopg
import pyarrow as pa

from liftshift.connectors.base import Table
from liftshift.errors import SourceReadError
from liftshift.pgbinary import body_start, decode
from liftshift.redact import redact

# URL parameters asyncpg reads as libpq does; any other it would send the server as a setting.
_ASYNCPG_PARAMS = {
    "host", "port", "dbname", "database", "user", "password", "passfile", "service", "servicefile",
    "sslmode", "sslcert", "sslkey", "sslrootcert", "sslcrl", "sslpassword", "sslnegotiation",
    "ssl_min_protocol_version", "ssl_max_protocol_version", "target_session_attrs", "krbsrvname",
    "gsslib", "application_name",
}  # fmt: skip
_CONNECT_SECONDS = 10  # as long as liftshift's own psycopg connections wait
# A read smaller than this means the reader has caught up with the server; it naps before the next.
# Why: PostgreSQL sends 8 KiB at a time, and each network read costs ~18 µs of event loop and
# protocol, about what the server spent producing the bytes. Holding the (private) loop for 0.2 ms
# lets ~60 KiB gather in the socket: a quarter of the CPU (0.021 s for 250k rows of the transfer
# benchmark, not 0.076), and no slower, as the server keeps writing into the socket meanwhile.
_CAUGHT_UP_BYTES = 64 * 1024
_NAP_SECONDS = 0.0002
# A chunk's COPY fits (transfer's chunks are ~64 MiB); pages the read does not reach are never mapped.
_FIRST_BUFFER_BYTES = 128 * 2**20
_TRAILER = b"\xff\xff"  # the end of a binary COPY: a field count of -1


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
    takes 0.4 CPU-s where psql and the pipe from it took 1.9.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _read(url, statements, select, table)
    with ThreadPoolExecutor(1) as thread:  # a notebook's thread already runs a loop
        return thread.submit(_read, url, statements, select, table).result()


def _read(url: str, statements: list[str], select: str, table: Table) -> pa.Table:
    received = _Received()
    asyncio.run(_copy(url, statements, select, received))
    return decode(received.view(), table)  # the Arrow table holds copies: the buffer can be reused


class _Received:
    """The bytes of a COPY, gathered in this thread's buffer, which its next COPY reuses.

    Why reuse: a fresh buffer for each chunk (~60 MB at the default chunk size) is memory the
    kernel must map and zero page by page, chunk after chunk.
    """

    _thread = threading.local()

    def __init__(self) -> None:
        kept: np.ndarray | None = getattr(self._thread, "buffer", None)
        self.buffer = np.empty(0, np.uint8) if kept is None else kept
        self.size = 0

    async def keep(self, part: bytes) -> None:
        """Append a network read; nap if it was small (see _NAP_SECONDS)."""
        end = self.size + len(part)
        if end > self.buffer.size:
            grown = np.empty(max(2 * end, _FIRST_BUFFER_BYTES), np.uint8)
            grown[: self.size] = self.buffer[: self.size]
            self.buffer = self._thread.buffer = grown
        self.buffer[self.size : end] = np.frombuffer(part, np.uint8)
        self.size = end
        if len(part) < _CAUGHT_UP_BYTES:
            time.sleep(_NAP_SECONDS)

    def view(self) -> memoryview:
        """The bytes received."""
        return self.buffer.data[: self.size]


async def _copy(url: str, statements: list[str], select: str, received: _Received) -> None:
    try:
        conn = await asyncpg.connect(url, timeout=_CONNECT_SECONDS)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise SourceReadError(redact(f"cannot connect to PostgreSQL at {url}: {exc}")) from None
    try:
        for statement in statements:
            await conn.execute(statement)
        await conn.copy_from_query(select, output=received.keep, format="binary")
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise SourceReadError(redact(str(exc) or type(exc).__name__)) from None
    finally:
        try:
            await conn.close(timeout=_CONNECT_SECONDS)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            conn.terminate()  # the connection broke: nothing left to say goodbye on
