"""Chunks done by an earlier run, checked against the snapshot a resumed run reads in.

A resumed transfer reads its pending chunks in a new snapshot, while the chunks done before hold
rows as of theirs. A done chunk whose key range has been written to since its snapshot moves again,
so the whole table lands as of the resumed run's snapshot. Written to since: a row there carries a
transaction id (xmin) its snapshot could not see, or the range holds another number of rows (a
delete leaves no row behind). Checking reads the range in PostgreSQL without sending it anywhere.
"""

from dataclasses import replace

from liftshift import fingerprint as fp
from liftshift.chunking import from_record
from liftshift.connectors.base import KeyRange, Source, Table
from liftshift.ledger import ChunkRecord

_XIDS = 1 << 32  # a row's xmin is a 32-bit transaction id that wraps around
_HALF = 1 << 31  # as PostgreSQL compares them: the 2**31 ids after one follow it
_NORMAL = 3  # ids below are the bootstrap's and frozen rows': older than any snapshot

_WRITTEN = (
    "SELECT count(*) AS n, count(*) FILTER (WHERE xmin::text::bigint >= {normal} AND "
    "(xmin::text::bigint - {since} + {xids}) % {xids} < {half}) AS written FROM {rel} WHERE {where}"
)


def snapshot_xmin(source: Source) -> int:
    """The oldest transaction the current snapshot could not see (64 bits, with its epoch)."""
    found = source.query("SELECT txid_snapshot_xmin(txid_current_snapshot()) AS x").column("x")
    return int(found[0].as_py())


def written_since(source: Source, table: Table, records: list[ChunkRecord], now: int) -> list[ChunkRecord]:
    """Done key-range chunks whose rows changed after the snapshot they were read in, as pending.

    Conservative: a row written by any transaction not older than that snapshot's oldest running
    one counts as new; a chunk without a recorded snapshot (an older ledger) counts as changed.
    """
    changed = []
    for record in (r for r in records if r.state == "done"):
        chunk = from_record(table, record)
        if isinstance(chunk, KeyRange) and _written(source, table, chunk, record, now):
            changed.append(replace(record, state="pending"))
    return changed


def _written(source: Source, table: Table, chunk: KeyRange, record: ChunkRecord, now: int) -> bool:
    since = record.snapshot_xmin
    if since is None or now - since >= _HALF:  # unknown, or so long ago that ids have wrapped
        return True
    sql = _WRITTEN.format(
        normal=_NORMAL, since=since % _XIDS, xids=_XIDS, half=_HALF, rel=source.relation(table),
        where=fp.range_predicate("postgres", chunk),
    )  # fmt: skip
    found = source.query(sql).to_pylist()[0]
    return bool(found["written"]) or found["n"] != record.rows
