"""Source connections kept open between the chunk reads of a transfer, and closed when it ends.

Why: a chunk read on a new connection is a new PostgreSQL backend, forked, with its caches to fill
and its memory and shared buffers to map page by page. The 12 chunks of the transfer benchmark
cost PostgreSQL 0.16-0.2 CPU-s more so (47k page faults against 11k) than on kept connections.
Only connections read off the socket (liftshift.pgwire) are kept: the reply is read to its end, so
each is idle and in step when it is given back. A connection idle for IDLE_SECONDS is closed even if
no transfer ends to close it (a read that finished after its transfer was stopped gives one back).
"""

import threading
import time
from typing import Any

import psycopg

IDLE_SECONDS = 30.0
_IDLE: dict[str, list[tuple[psycopg.Connection[Any], float]]] = {}  # key: [(connection, idle since)]
_LOCK = threading.Lock()
_REAPER: list[threading.Thread] = []  # the thread closing connections idle too long, once started


def take(key: str) -> psycopg.Connection[Any] | None:
    """An idle connection kept under key by an earlier read, if there is one."""
    with _LOCK:
        idle = _IDLE.get(key)
        return idle.pop()[0] if idle else None


def give_back(key: str, conn: psycopg.Connection[Any]) -> None:
    """Keep a connection for the next read under key, unless the read closed it."""
    if conn.closed:
        return
    with _LOCK:
        _IDLE.setdefault(key, []).append((conn, time.monotonic()))
        if not _REAPER:
            _REAPER.append(threading.Thread(target=_reap, name="liftshift-pgpool", daemon=True))
            _REAPER[0].start()


def close_idle(older_than: float = 0.0) -> int:
    """Close the kept connections idle for more than older_than seconds (all by default: run where
    reads ran when a transfer ends); how many were closed."""
    now, closing = time.monotonic(), []
    with _LOCK:
        for key, idle in list(_IDLE.items()):
            closing += [conn for conn, since in idle if now - since >= older_than]
            _IDLE[key] = [(conn, since) for conn, since in idle if now - since < older_than]
    for conn in closing:
        conn.close()
    return len(closing)


def _reap() -> None:
    while True:
        time.sleep(IDLE_SECONDS / 2)
        close_idle(IDLE_SECONDS)
