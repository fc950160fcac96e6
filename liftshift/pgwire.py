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
_TERMINATE = b"X\x00\x00\x00\x04"


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


def copy_out(conn: psycopg.Connection[object], sql: str) -> tuple[memoryview, int]:
    """Run sql (a COPY … TO STDOUT) and end the session; returns the server's reply, its messages as
    sent, and where its first CopyData message starts.

    Why end the session: the server closes the socket once it has replied, which marks where the
    reply ends without reading its messages as they come. The connection is then only to be closed.
    """
    query = sql.encode() + b"\0"
    received = Received()
    try:
        with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:  # libpq keeps its own
            sock.setblocking(True)
            sock.sendall(b"Q" + (len(query) + 4).to_bytes(4, "big") + query + _TERMINATE)
            while received.receive(sock):
                pass
    except OSError as exc:
        raise SourceReadError(f"the connection to PostgreSQL broke during a read: {exc}; run again") from None
    reply = received.view()
    first, error, whole = _frames(np.frombuffer(reply, np.uint8))
    if error >= 0:
        raise SourceReadError(redact(_error_text(reply, error)))
    if not whole or first < 0:
        raise SourceReadError("the connection to PostgreSQL closed during a read; run again")
    return reply, first


def _error_text(reply: memoryview, at: int) -> str:
    """The message of the ErrorResponse at `at`, with its detail if it has one."""
    end = at + 1 + int.from_bytes(reply[at + 1 : at + 5], "big")
    fields = {f[:1]: f[1:].decode("utf-8", "replace") for f in bytes(reply[at + 5 : end]).split(b"\0") if f}
    return ". ".join(fields[k] for k in (b"M", b"D") if k in fields) or "PostgreSQL reported an error"


@numba.njit(cache=True, nogil=True)
def _frames(buf: np.ndarray) -> tuple[int, int, bool]:
    """Where the reply's first CopyData message and first ErrorResponse start (-1: none), and
    whether it is whole: messages end to end, the last a ReadyForQuery."""
    pos, first, error = 0, -1, -1
    while pos + 5 <= buf.size:
        length = u32(buf, pos + 1)
        if length < 4 or pos + 1 + length > buf.size:
            break
        kind = u8(buf, pos)
        if kind == 0x64 and first < 0:  # 'd'
            first = pos
        elif kind == 0x45 and error < 0:  # 'E'
            error = pos
        elif kind == 0x5A:  # 'Z'
            return first, error, pos + 1 + length == buf.size
        pos += 1 + length
    return first, error, False
