"""Delta sync: upsert rows changed since the last sync by watermark, and propagate deletes.

Per table, in one repeatable-read snapshot of the source: the new high-water mark and the rows
at or above the last one are read and upserted into the target by primary key; then the key
space is cut into the transfer's ranges, each range's fingerprint over the key columns alone is
compared on both sides, and where they differ the keys are fetched from both: target keys the
source no longer has are deleted, source keys the target lacks (a row committed late with an
older watermark) are copied.
"""

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from liftshift.chunking import chunk_rows_for, integer_key, integer_ranges
from liftshift.connectors import opened
from liftshift.connectors.base import KeyRange, Source, Table, Target
from liftshift.errors import PlanError
from liftshift.ledger import Ledger
from liftshift.pgvalues import python_values
from liftshift.plan import Plan
from liftshift.redact import redact
from liftshift.report import GateResult, StageReport
from liftshift.transfer import Progress
from liftshift.watermarks import current_mark, rows_at_mark_unchanged, watermarked
from liftshift.xids import usable


class TableDelta(BaseModel):
    """How one table's delta went."""

    model_config = ConfigDict(frozen=True)

    table: str
    watermark: str
    since: str | None
    mark: str | None
    upserted: int
    deleted: int
    late: int
    ranges: int
    differing: int
    unresolved: int
    seconds: float
    note: str = ""
    error: str = ""


class DeltaReport(StageReport):
    """A delta sync: one line per table with a watermark."""

    tables: list[TableDelta]

    def items(self) -> list[BaseModel]:
        """One line per table."""
        return list(self.tables)


@dataclass(frozen=True)
class _Reconciled:
    deleted: int
    late: int
    ranges: int
    differing: int
    unresolved: int


def gate(report: DeltaReport) -> GateResult:
    """Pass when every table synced and its differing key ranges agreed once fixed."""
    reasons = [f"{t.table}: {t.error}" for t in report.tables if t.error]
    reasons += [
        f"{t.table}: {t.unresolved} key range(s) still differ after the delta"
        for t in report.tables
        if t.unresolved
    ]
    return GateResult(passed=not reasons, reasons=reasons)


def run(plan: Plan, ledger: Ledger, progress: Progress | None = None) -> DeltaReport:
    """Sync every table of transfer.watermarks; each must have had a full transfer already."""
    started, t0 = datetime.now(UTC), time.perf_counter()
    if not plan.transfer.watermarks:
        raise PlanError(
            "delta sync needs transfer.watermarks in the plan, e.g. "
            "transfer: {watermarks: {orders: updated_at}}"
        )
    with opened(plan) as (source, target):
        chosen = watermarked(plan, source.catalog(plan.tables))
        for table, _ in chosen:
            _require_full_transfer(plan, ledger, table)
        lines = [_sync_or_fail(plan, ledger, source, target, t, c, progress) for t, c in chosen]
    draft = DeltaReport(
        stage="delta", plan=plan.name, started_at=started, seconds=time.perf_counter() - t0,
        gate=GateResult(passed=True), rows=sum(t.upserted + t.deleted + t.late for t in lines), tables=lines,
    )  # fmt: skip
    return draft.model_copy(update={"gate": gate(draft)})


def _require_full_transfer(plan: Plan, ledger: Ledger, table: Table) -> None:
    """Refuse a delta of a table whose full transfer has not finished: there is no base to sync."""
    records = ledger.chunk_records(plan.name, table.name)
    if not records or any(r.state != "done" for r in records):
        raise PlanError(
            f"table '{table.name}' has not been fully transferred yet, so there is nothing to sync "
            "from; run `liftshift transfer PLAN` without --delta first"
        )


def _sync_or_fail(
    plan: Plan, ledger: Ledger, source: Source, target: Target, table: Table, column: str,
    progress: Progress | None,
) -> TableDelta:  # fmt: skip
    """Sync a table; an engine error fails its line (the mark stays, so a rerun repeats it)."""
    try:
        return sync_table(plan, ledger, source, target, table, column, progress)
    except Exception as exc:  # noqa: BLE001 - the table fails with the engine's message
        error = redact(f"{type(exc).__name__}: {exc}")[:2000]
        return TableDelta(
            table=table.name, watermark=column, since=None, mark=None, upserted=0, deleted=0, late=0,
            ranges=0, differing=0, unresolved=0, seconds=0.0, error=error,
        )  # fmt: skip


def sync_table(
    plan: Plan, ledger: Ledger, source: Source, target: Target, table: Table, column: str,
    progress: Progress | None = None,
) -> TableDelta:  # fmt: skip
    """Upsert one table's changed rows and delete its vanished keys; record the new mark."""
    t0 = time.perf_counter()
    stored = ledger.watermark(plan.name, table.name)
    known = stored is not None and stored.column == column
    since = stored.mark if stored is not None and known else None
    with source.snapshot():
        mark = current_mark(source, table, column)
        inclusive = not (stored is not None and known and rows_at_mark_unchanged(source, table, stored))
        ranges, rows = key_ranges(plan, source, table)
        # Rows written since the last mark's snapshot also move, whatever their watermark: one set
        # to now() by a transaction that began before that mark and committed after it.
        late = usable(stored.snapshot_xmin, mark.snapshot_xmin or 0) if stored and known else None
        changes = _Changes(table, column, since, inclusive, late)
        upserted = _upsert_changes(plan, source, target, changes, ranges, rows, progress)
        done = reconcile(source, target, table, ranges)
    # An emptied table keeps the old mark, and this snapshot: rows written after it still move.
    ledger.save_watermark(plan.name, table.name, mark if mark.mark is not None else replace(mark, mark=since))
    return TableDelta(
        table=table.name, watermark=column, since=since, mark=mark.mark, upserted=upserted,
        deleted=done.deleted, late=done.late, ranges=done.ranges, differing=done.differing,
        unresolved=done.unresolved, seconds=time.perf_counter() - t0,
        note="" if known else f"no mark recorded for {column}: every row was upserted",
    )  # fmt: skip


@dataclass(frozen=True)
class _Changes:
    """The rows a table's delta moves: its column at (if inclusive) or above since, or written since a
    snapshot; all if since is None."""

    table: Table
    column: str
    since: str | None
    inclusive: bool
    written_since: int | None = None  # a snapshot's xmin (liftshift.xids)


def _upsert_changes(
    plan: Plan, source: Source, target: Target, changes: _Changes, ranges: list[KeyRange | None], rows: int,
    progress: Progress | None,
) -> int:  # fmt: skip
    """Upsert the changed rows (every row when there is no mark yet); returns how many.

    Read range by range, or the changes in one query, a batch of about a chunk's bytes at a time:
    memory holds one batch, not the table or all its changes.
    """
    table, since = changes.table, changes.since
    reads = [(None, since)] if since is not None else [(r, None) for r in ranges]
    upserted, nbytes = 0, 0
    if progress:
        progress(table.name, 0, rows if since is None else 0)
    for key_range, after in reads:
        read = source.read_since(
            table, changes.column, after, changes.inclusive, key_range, plan.transfer.chunk_bytes,
            changes.written_since,
        )
        with closing(read) as batches:  # a failed upsert ends the COPY before the snapshot rolls back
            for changed in batches:
                upserted += target.upsert(table, changed, table.primary_key)
                nbytes += changed.nbytes
                if progress:
                    progress(table.name, upserted, rows if since is None else upserted, nbytes)
    return upserted


def key_ranges(plan: Plan, source: Source, table: Table) -> tuple[list[KeyRange | None], int]:
    """The transfer's key ranges for the table as it is now, and about how many rows it has."""
    key = integer_key(table)
    rows = source.planned_rows(table)
    if key is None:
        return [None], rows
    return integer_ranges(source, table, key, rows, chunk_rows_for(plan.transfer, table, rows)), rows


def reconcile(source: Source, target: Target, table: Table, ranges: list[KeyRange | None]) -> _Reconciled:
    """Compare key-only fingerprints range by range; fix the ranges that differ."""
    keys_only = replace(table, columns=tuple(table.column(k) for k in table.primary_key))
    deleted = late = unresolved = 0
    differing = _differing(source, target, keys_only, ranges)
    for key_range in differing:
        gone, missing = key_difference(
            source.keys(table, table.primary_key, key_range), target.keys(table, table.primary_key, key_range)
        )
        deleted += target.delete_keys(table, gone)
        if missing.num_rows:
            rows = source.read_keys(table, missing)
            late += target.upsert(table, rows, table.primary_key)
        unresolved += _still_differs(source, target, keys_only, key_range)
    return _Reconciled(deleted, late, len(ranges), len(differing), unresolved)


def _differing(
    source: Source, target: Target, keys_only: Table, ranges: list[KeyRange | None]
) -> list[KeyRange | None]:
    """The ranges whose key fingerprints differ; the target computes its side while the source does."""
    with ThreadPoolExecutor(max_workers=1) as pool:  # one thread: a target connection is not shared
        theirs = [pool.submit(target.fingerprint, keys_only, r) for r in ranges]
        ours = [source.fingerprint(keys_only, r) for r in ranges]
        return [r for r, mine, their in zip(ranges, ours, theirs, strict=True) if mine != their.result()]


def _still_differs(source: Source, target: Target, keys_only: Table, key_range: KeyRange | None) -> int:
    return int(source.fingerprint(keys_only, key_range) != target.fingerprint(keys_only, key_range))


def key_difference(source_keys: pa.Table, target_keys: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Target keys absent in the source, and source keys absent in the target."""
    in_source, in_target = set(_rows(source_keys)), set(_rows(target_keys))
    gone = target_keys.filter(pa.array([r not in in_source for r in _rows(target_keys)], pa.bool_()))
    missing = source_keys.filter(pa.array([r not in in_target for r in _rows(source_keys)], pa.bool_()))
    return gone, missing


def _rows(keys: pa.Table) -> list[tuple[object, ...]]:
    return list(zip(*(python_values(keys.column(i)) for i in range(keys.num_columns)), strict=True))
