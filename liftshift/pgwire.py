"""A binary COPY read straight off the socket of a libpq connection, into one reused buffer.

Why: asyncpg handles each row's CopyData message in its Cython protocol and hands over the rows of
each network read as a new bytes object, which is copied again: 0.81 CPU-s for the 5M rows of the
transfer benchmark in 20 chunks. Received off the socket into one buffer and parsed messages and
all (liftshift.pgbinary.decode_messages), the same bytes cost 0.31-0.38 CPU-s. psycopg (libpq)
still opens the connection, so every URL form, authentication method and TLS setting libpq knows
works; only a connection without encryption is read this way (an encrypted socket holds no
messages to parse), the others through asyncpg or psycopg (liftshift.pgread).
"""

import os
import socket
import threading
import time

import numba
import numpy as np
import psycopg

from liftshift.errors import SourceReadError
from liftshift.pgkernels import u8, u32
from liftshift.redact import redact

# A read smaller than this means the reader has caught up with the server; it naps before the next.
# Why: PostgreSQL sends 8 KiB at a time, and each network read costs CPU of its own, about what
# the server spent producing the bytes. Napping 0.2 ms lets ~60 KiB gather in the socket: a quarter
# of the reads, and no slower, as the server keeps writing into the socket meanwhile.
_CAUGHT_UP_BYTES = 64 * 1024
_NAP_SECONDS = 0.0002
# A chunk's COPY fits (transfer's chunks are ~64 MiB); pages the read does not reach are never mapped.
_FIRST_BUFFER_BYTES = 128 * 2**20
_ROOM_BYTES = 2**20  # free space kept ahead of a socket read


class Received:
    """Bytes from the server, gathered in this thread's buffer, which its next read reuses.

    Why reuse: a fresh buffer for each chunk (~60 MB at the default chunk size) is memory the
    kernel must map and zero page by page, chunk after chunk.
    """

    _thread = threading.local()

    def __init__(self) -> None:
        kept: np.ndarray | None = getattr(self._thread, "buffer", None)
        self.buffer = np.empty(0, np.uint8) if kept is None else kept
        self.size = 0

    def keep(self, part: bytes) -> None:
        """Append bytes read elsewhere (asyncpg's); nap if they were few (see _NAP_SECONDS)."""
        end = self.size + len(part)
        self._room(len(part))
        self.buffer[self.size : end] = np.frombuffer(part, np.uint8)
        self.size = end
        if len(part) < _CAUGHT_UP_BYTES:
            time.sleep(_NAP_SECONDS)

    def receive(self, sock: socket.socket) -> bool:
        """Append what the socket has, waiting for some; False once the server has closed it."""
        self._room(_ROOM_BYTES)
        got = sock.recv_into(self.buffer.data[self.size :])
        self.size += got
        if 0 < got < _CAUGHT_UP_BYTES:
            time.sleep(_NAP_SECONDS)
        return got > 0

    def view(self) -> memoryview:
        """The bytes received."""
        return self.buffer.data[: self.size]

    def _room(self, wanted: int) -> None:
        if self.size + wanted > self.buffer.size:
            grown = np.empty(max(2 * (self.size + wanted), _FIRST_BUFFER_BYTES), np.uint8)
            grown[: self.size] = self.buffer[: self.size]
            self.buffer = self._thread.buffer = grown


def unencrypted(conn: psycopg.Connection[object]) -> bool:
    """Whether the connection's socket carries the protocol's messages in the clear: no TLS (GSS
    encryption is left out where liftshift.pgread opens the connection)."""
    return not conn.pgconn.ssl_in_use


class ConnectionLost(SourceReadError):
    """The connection to PostgreSQL broke or closed before the server's reply ended; before_rows:
    before any of the COPY's rows arrived."""

    def __init__(self, message: str, before_rows: bool) -> None:
        super().__init__(message)
        self.before_rows = before_rows


def copy_out(conn: psycopg.Connection[object], sql: str) -> tuple[memoryview, int]:
    """Run sql (one or more statements, one a COPY … TO STDOUT) in a simple query; returns the server's
    reply, its messages as sent, and where its first CopyData message starts.

    The reply is read until its ReadyForQuery, walking the messages as they arrive, so the connection
    is then idle and can run the next read (liftshift.pgpool). It is closed instead when the reply
    holds an error, when the server is left inside a transaction, or when more than the reply arrived.
    """
    query = sql.encode() + b"\0"
    received = Received()
    walked = (0, -1, -1, _UNFINISHED)  # where the walk stopped, first CopyData, first error, status
    try:
        with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:  # libpq keeps its own
            sock.setblocking(True)
            sock.sendall(b"Q" + (len(query) + 4).to_bytes(4, "big") + query)
            while walked[3] == _UNFINISHED and received.receive(sock):
                walked = _frames(received.buffer[: received.size], *walked[:3])
    except OSError as exc:
        conn.close()
        message = f"the connection to PostgreSQL broke during a read: {exc}; run again"
        raise ConnectionLost(message, walked[1] < 0) from None
    end, first, error, status = walked
    reply = received.view()
    if error >= 0 or status != _IDLE or end != received.size:
        conn.close()
    said = redact(_error_text(reply, error)) if error >= 0 else ""
    if status == _UNFINISHED:  # a backend terminated says why before it closes the connection
        why = f" ({said})" if said else ""
        raise ConnectionLost(f"the connection to PostgreSQL closed during a read{why}; run again", first < 0)
    if said:
        raise SourceReadError(said)
    if status == _MALFORMED or first < 0:
        raise SourceReadError("the reply of PostgreSQL to a COPY is malformed; run again")
    return reply, first


def _error_text(reply: memoryview, at: int) -> str:
    """The message of the ErrorResponse at `at`, with its detail if it has one."""
    end = at + 1 + int.from_bytes(reply[at + 1 : at + 5], "big")
    fields = {f[:1]: f[1:].decode("utf-8", "replace") for f in bytes(reply[at + 5 : end]).split(b"\0") if f}
    return ". ".join(fields[k] for k in (b"M", b"D") if k in fields) or "PostgreSQL reported an error"


_UNFINISHED, _MALFORMED = -1, -2  # _frames' status before ReadyForQuery, and for a broken message
_IDLE = 0x49  # ReadyForQuery's status outside a transaction: 'I'


@numba.njit(cache=True, nogil=True)
def _frames(buf: np.ndarray, pos: int, first: int, error: int) -> tuple[int, int, int, int]:
    """Walks the whole messages from pos on; returns where the walk stopped, where the first CopyData
    message and the first ErrorResponse start (-1: none yet), and the ReadyForQuery's status byte once
    the walk reached it (_UNFINISHED before, _MALFORMED for a broken message). Called after each
    read with what the last call returned, so each message is walked once."""
    while pos + 5 <= buf.size:
        length = u32(buf, pos + 1)
        if length < 4:
            return pos, first, error, -2
        if pos + 1 + length > buf.size:
            break
        kind = u8(buf, pos)
        if kind == 0x64 and first < 0:  # 'd'
            first = pos
        elif kind == 0x45 and error < 0:  # 'E'
            error = pos
        elif kind == 0x5A:  # 'Z'
            return pos + 1 + length, first, error, (int(u8(buf, pos + 5)) if length == 5 else -2)
        pos += 1 + length
    return pos, first, error, -1
