"""PostgreSQL transaction ids: which rows were written since a snapshot, from their xmin.

Every row version carries the 32-bit id of the transaction that wrote it (xmin), which wraps
around; a snapshot's xmin is the oldest transaction it could not see, with its epoch (64 bits).
A row written by that transaction or a later one was, conservatively, written since the snapshot:
whatever its other columns say (a watermark set at a transaction's start, then committed late).
"""

from liftshift.connectors.base import Source

_XIDS = 1 << 32
_HALF = 1 << 31  # as PostgreSQL compares ids: the 2**31 after one follow it
_NORMAL = 3  # ids below are the bootstrap's and frozen rows': older than any snapshot


def snapshot_xmin(source: Source) -> int:
    """The oldest transaction the source's current snapshot could not see (64 bits, with its epoch)."""
    found = source.query("SELECT txid_snapshot_xmin(txid_current_snapshot()) AS x").column("x")
    return int(found[0].as_py())


def usable(since: int | None, now: int) -> int | None:
    """since, unless unknown or so long before now that 32-bit ids have wrapped around since."""
    return None if since is None or now - since >= _HALF else since


def written_since_sql(since: int) -> str:
    """A PostgreSQL condition: the row was written by transaction since (64-bit) or a later one."""
    xmin = "xmin::text::bigint"
    return f"({xmin} >= {_NORMAL} AND ({xmin} - {since % _XIDS} + {_XIDS}) % {_XIDS} < {_HALF})"
