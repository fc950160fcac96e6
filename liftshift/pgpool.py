"""Source connections kept open between the chunk reads of a transfer, and closed when it ends.

Why: a chunk read on a new connection is a new PostgreSQL backend, forked, with its caches to fill
and its memory and shared buffers to map page by page. The 12 chunks of the transfer benchmark
cost PostgreSQL 0.16-0.2 CPU-s more so (47k page faults against 11k) than on kept connections.
Only connections read off the socket (liftshift.pgwire) are kept: the reply is read to its end, so
each is idle and in step when it is given back.
"""

import threading
from typing import Any

import psycopg

_IDLE: dict[str, list[psycopg.Connection[Any]]] = {}
_LOCK = threading.Lock()


def take(url: str) -> psycopg.Connection[Any] | None:
    """An idle connection to url kept from an earlier read, if there is one."""
    with _LOCK:
        idle = _IDLE.get(url)
        return idle.pop() if idle else None


def give_back(url: str, conn: psycopg.Connection[Any]) -> None:
    """Keep a connection for the next read of url, unless the read closed it."""
    if conn.closed:
        return
    with _LOCK:
        _IDLE.setdefault(url, []).append(conn)


def close_idle() -> int:
    """Close every kept connection (run where reads ran when a transfer ends); how many there were."""
    with _LOCK:
        kept = [conn for idle in _IDLE.values() for conn in idle]
        _IDLE.clear()
    for conn in kept:
        conn.close()
    return len(kept)
