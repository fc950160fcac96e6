"""Chunks done by an earlier run, checked against the snapshot a resumed run reads in.

A resumed transfer reads its pending chunks in a new snapshot, while the chunks done before hold
rows as of theirs. A done chunk whose key range has been written to since its snapshot moves again,
so the whole table lands as of the resumed run's snapshot. Written to since: a row there carries a
transaction id its snapshot could not see (liftshift.xids), or the range holds another number of
rows (a delete leaves no row behind). Checking reads the range in PostgreSQL without sending it.
"""

from dataclasses import replace

from liftshift import fingerprint as fp
from liftshift.chunking import from_record
from liftshift.connectors.base import KeyRange, Source, Table
from liftshift.ledger import ChunkRecord
from liftshift.xids import usable, written_since_sql


def written_since(source: Source, table: Table, records: list[ChunkRecord], now: int) -> list[ChunkRecord]:
    """Done key-range chunks whose rows changed after the snapshot they were read in, as pending.

    now is the current snapshot's xmin. A chunk without a recorded snapshot (an older ledger)
    counts as changed.
    """
    changed = []
    for record in (r for r in records if r.state == "done"):
        chunk = from_record(table, record)
        if isinstance(chunk, KeyRange) and _written(source, table, chunk, record, now):
            changed.append(replace(record, state="pending"))
    return changed


def _written(source: Source, table: Table, chunk: KeyRange, record: ChunkRecord, now: int) -> bool:
    since = usable(record.snapshot_xmin, now)
    if since is None:
        return True
    sql = (
        f"SELECT count(*) AS n, count(*) FILTER (WHERE {written_since_sql(since)}) AS written "
        f"FROM {source.relation(table)} WHERE {fp.range_predicate('postgres', chunk)}"
    )
    found = source.query(sql).to_pylist()[0]
    return bool(found["written"]) or found["n"] != record.rows
