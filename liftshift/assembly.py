"""Tables landed in parts: each chunk into a staging table of its own, assembled when all are done.

A table of several chunks lands in parts when the target cannot replace a chunk in the table
itself: its chunks are ctid ranges (the target has no ctid), or the target stages chunks
(BigQuery, see BigQueryTarget.stages_chunks). A table of one chunk replaces the table whole.
Parts are dropped once the assembled table has been proved to hold their rows, in order, part 0
first: while part 0 exists, the assembly has not finished, and while the last part exists after
that, a run stopped while dropping them.
"""

from liftshift.chunking import from_record
from liftshift.connectors.base import CtidRange, Fingerprint, KeyRange, Table, Target, staging
from liftshift.extract import load_fingerprint
from liftshift.ledger import ChunkRecord


def staged(target: Target, table: Table, records: list[ChunkRecord]) -> bool:
    """Whether a table's chunks land in parts: several, and the target cannot replace their ranges."""
    if len(records) < 2:
        return False
    return target.stages_chunks or isinstance(from_record(table, records[0]), CtidRange)


def destination(
    target: Target, table: Table, record: ChunkRecord, in_parts: bool
) -> tuple[Table, KeyRange | None]:
    """Where a chunk lands: a part of its own, the whole table, or its key range of the table."""
    if in_parts:
        return staging(table, record.chunk), None
    chunk = from_record(table, record)
    if isinstance(chunk, KeyRange) and not target.stages_chunks:
        return table, chunk
    return table, None


def lost_parts(target: Target, table: Table, records: list[ChunkRecord]) -> list[ChunkRecord]:
    """Done chunks whose part is gone, to be moved again: none once the table is assembled.

    A part goes missing when a run stopped while dropping parts, when someone dropped it, or when
    an older liftshift wrote the chunk straight into the table.
    """
    done = [r for r in records if r.state == "done"]
    if not done or not staged(target, table, records):
        return []
    present = target.table_names()
    if _assembled(table, records, present):
        return []
    return [r for r in done if staging(table, r.chunk).name not in present]


def _assembled(table: Table, records: list[ChunkRecord], present: set[str]) -> bool:
    """Whether a table landing in parts is assembled: every chunk done and part 0 gone (present: the
    target's table names)."""
    return all(r.state == "done" for r in records) and staging(table, 0).name not in present


def target_lost(target: Target, table: Table, records: list[ChunkRecord]) -> bool:
    """Whether the target table no longer holds the rows its done chunks landed: it was emptied,
    dropped or edited, or the plan now names another target. One COUNT(*) (free in BigQuery); a
    table still in parts is left to lost_parts. With chunks pending, rows one of them wrote before a
    kill may be there too, so only fewer rows than done count."""
    done = [r for r in records if r.state == "done"]
    if not done:
        return False
    if staged(target, table, records) and not _assembled(table, records, target.table_names()):
        return False  # its rows are in the parts
    (held,) = target.query(f"SELECT COUNT(*) AS n FROM {target.relation(table)}").column(0).to_pylist()
    landed = sum(r.rows or 0 for r in done)
    return held != landed if len(done) == len(records) else held < landed


def assemble(target: Target, table: Table, records: list[ChunkRecord], native: bool) -> str:
    """Assemble a table from its parts, prove it holds their rows, drop them; the error, or ''.

    Skipped when an earlier run assembled it already (part 0 is gone); the parts that run left
    are dropped. On a mismatch the parts are kept and the caller marks every chunk to move again.
    """
    if not staged(target, table, records):
        return ""
    parts = [staging(table, r.chunk) for r in records]
    if not target.columns(parts[0]):  # one look-up, not a listing of every table there
        if target.columns(parts[-1]):
            _drop(target, parts[1:])
        return ""
    target.assemble(table, parts)
    expected = Fingerprint(
        rows=sum(r.rows or 0 for r in records),
        checksum=sum(r.target_checksum or 0 for r in records) % (1 << 64),
    )
    found = load_fingerprint(target, table, None, native)
    if found != expected:
        return (
            f"the table assembled from its {len(parts)} staging tables ({parts[0].name} …) has "
            f"{found.rows} rows / checksum {found.checksum:016x}, its chunks {expected.rows} / "
            f"{expected.checksum:016x} (was a staging table written to?); every chunk will move "
            "again: rerun the transfer"
        )
    _drop(target, parts)
    return ""


def discard_parts(target: Target, table: Table, records: list[ChunkRecord]) -> None:
    """Drop the parts a table's chunks may have left, before the table is planned again."""
    if staged(target, table, records):
        _drop(target, [staging(table, r.chunk) for r in records])


def _drop(target: Target, parts: list[Table]) -> None:
    for part in parts:
        target.drop(part)
