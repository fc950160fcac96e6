"""Transfer: copy tables in chunks on Dask, in one snapshot per table, proving each chunk by checksum."""

import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol

from distributed import Client, Future, as_completed
from pydantic import BaseModel, ConfigDict

from liftshift.chunking import describe, from_record, integer_key, plan_chunks, plan_table, to_record
from liftshift.cluster import dask_client
from liftshift.connectors import open_source, open_target
from liftshift.connectors.base import Chunk, CtidRange, KeyRange, Source, Table, Target, staging
from liftshift.errors import PlanError, UnsupportedTypeError
from liftshift.extract import extract_chunk
from liftshift.ledger import ChunkRecord, Ledger
from liftshift.plan import Plan
from liftshift.redact import redact
from liftshift.report import GateResult, StageReport
from liftshift.types import Verdict, target_mapping
from liftshift.watermarks import remember_marks

MAX_ATTEMPTS = 3
__all__ = ["integer_key", "plan_chunks", "run"]  # integer_key and plan_chunks: for older importers


class Progress(Protocol):
    """Told how far a table has got: rows done, rows in all, and bytes moved so far (if known)."""

    def __call__(self, table: str, done: int, total: int, nbytes: int = 0) -> None: ...


class TableTransfer(BaseModel):
    """How one table's copy went."""

    model_config = ConfigDict(frozen=True)

    table: str
    rows: int
    chunks: int
    moved: int
    skipped: int
    retried: int
    failed: list[str]
    seconds: float
    estimated_seconds: float | None = None


class TransferReport(StageReport):
    """The transfer: one line per table, with assess's estimate beside the time it took."""

    tables: list[TableTransfer]
    wave: int | None = None

    def items(self) -> list[BaseModel]:
        """One line per table."""
        return list(self.tables)


def gate(report: TransferReport) -> GateResult:
    """Pass when every chunk of every table landed with a matching checksum."""
    reasons = [f"{t.table}: {failure}" for t in report.tables for failure in t.failed]
    return GateResult(passed=not reasons, reasons=reasons)


def run(
    plan: Plan, ledger: Ledger, progress: Progress | None = None, wave: int | None = None
) -> TransferReport:
    """Copy every selected table, or one wave of the latest assessment; chunks done earlier are skipped."""
    started, t0 = datetime.now(UTC), time.perf_counter()
    if wave is not None:
        plan = plan.model_copy(update={"tables": _wave_tables(ledger, plan, wave)})
    estimates = _estimates(ledger, plan)
    source = open_source(plan)
    try:
        tables = source.catalog(plan.tables)
        target = open_target(plan)
        try:
            _refuse_blockers(tables, target.dialect)
            remember_marks(plan, ledger, source, tables)
            _announce(tables, progress)
            with dask_client(plan.transfer.dask_address) as client:
                lines = [_copy_table(plan, ledger, source, target, client, t, progress) for t in tables]
        finally:
            target.close()
    finally:
        source.close()
    draft = TransferReport(
        stage="transfer", plan=plan.name, started_at=started,
        seconds=time.perf_counter() - t0, gate=GateResult(passed=True),
        rows=sum(t.rows for t in lines), wave=wave,
        tables=[t.model_copy(update={"estimated_seconds": estimates.get(t.table)}) for t in lines],
    )  # fmt: skip
    return draft.model_copy(update={"gate": gate(draft)})


def _announce(tables: list[Table], progress: Progress | None) -> None:
    """Give every table's estimated size up front, so an overall bar knows its total."""
    if progress is None:
        return
    for t in tables:
        progress(t.name, 0, t.row_estimate)


def _wave_tables(ledger: Ledger, plan: Plan, number: int) -> list[str]:
    """The tables of one wave of the plan's latest assessment."""
    stored = ledger.latest_report(plan.name, "assess")
    if stored is None:
        raise PlanError(f"no assessment of plan '{plan.name}' in the ledger; run `liftshift assess` first")
    if not stored.passed:
        reasons = "; ".join(stored.body.get("gate", {}).get("reasons", [])[:3])
        raise PlanError(
            f"the latest assessment of plan '{plan.name}' failed its gate ({reasons}); "
            "fix or accept what it lists and run `liftshift assess` again before moving waves"
        )
    waves = stored.body.get("waves", [])
    if not 1 <= number <= len(waves):
        raise PlanError(f"wave {number} does not exist; the latest assessment has waves 1–{len(waves)}")
    return [fnmatch_escape(name) for name in waves[number - 1]["tables"]]


def fnmatch_escape(name: str) -> str:
    """A pattern that matches exactly this table name."""
    return "".join(f"[{ch}]" if ch in "*?[]" else ch for ch in name)


def _estimates(ledger: Ledger, plan: Plan) -> dict[str, float]:
    """Each table's estimated transfer seconds from the latest assessment."""
    stored = ledger.latest_report(plan.name, "assess")
    tables = stored.body.get("tables", []) if stored else []
    return {t["table"]: t["estimate"]["seconds"] for t in tables if t.get("estimate")}


def _refuse_blockers(tables: list[Table], dialect: str) -> None:
    blocked = [
        f"{t.name}.{c.name} ({c.source_type})"
        for t in tables
        for c in t.columns
        if target_mapping(c.mapping, dialect).verdict is Verdict.BLOCKER
    ]
    if blocked:
        raise UnsupportedTypeError(
            "these columns have no target type: "
            + ", ".join(blocked)
            + "; run assess for details, or leave their tables out of 'tables' in the plan"
        )


def _chunk_records(plan: Plan, ledger: Ledger, source: Source, table: Table, rows: int) -> list[ChunkRecord]:
    """The table's chunks from the ledger, or a new chunk plan recorded there."""
    records = ledger.chunk_records(plan.name, table.name)
    if records and _resumable(table, records):
        return records
    if records:
        # Page ranges hold other rows in another snapshot (an update moves a row to a later page),
        # so chunks done in an earlier run could double or lose rows: all are read again.
        records = [replace(r, state="pending") for r in records]
        ledger.save_chunks(plan.name, records)
        return records
    chunks = plan_table(source, table, rows, plan.transfer.chunk_rows)
    records = [to_record(table, i, chunk) for i, chunk in enumerate(chunks)]
    ledger.save_chunks(plan.name, records)  # one transaction: a kill never leaves half a plan
    return records


def _resumable(table: Table, records: list[ChunkRecord]) -> bool:
    """Whether chunks done in an earlier run still hold: always for key ranges, for ctid ranges only
    when none or all are done."""
    states = {r.state == "done" for r in records}
    return len(states) == 1 or not isinstance(from_record(table, records[0]), CtidRange)


def _destination(table: Table, record: ChunkRecord, chunk: Chunk) -> tuple[Table, KeyRange | None]:
    """Where a chunk lands: its key range of the table, or (ctid chunks) a staging table of its own."""
    if isinstance(chunk, CtidRange):
        return staging(table, record.chunk), None
    return table, chunk


def _copy_table(
    plan: Plan, ledger: Ledger, source: Source, target: Target, client: Client,
    table: Table, progress: Progress | None,
) -> TableTransfer:  # fmt: skip
    """Copy one table: every chunk reads the snapshot the driver exports and holds open."""
    t0 = time.perf_counter()
    with source.exported_snapshot() as snapshot_id:
        rows = source.row_count(table)
        records = _chunk_records(plan, ledger, source, table, rows)
        target.prepare(table)
        done_rows = sum(r.rows or 0 for r in records if r.state == "done")
        pending = [r for r in records if r.state != "done"]
        if progress:
            progress(table.name, done_rows, max(done_rows, rows))
        copy = _ChunkCopy(plan, ledger, target, client, table, snapshot_id)
        moved_rows, retried, failed = copy.run(
            pending, lambda n, nbytes: _tick(progress, table, done_rows, rows, n, nbytes)
        )
    if not failed:
        _assemble(target, table, records)
    return TableTransfer(
        table=table.name, rows=done_rows + moved_rows, chunks=len(records),
        moved=len(pending) - len(failed), skipped=len(records) - len(pending), retried=retried,
        failed=failed, seconds=time.perf_counter() - t0,
    )  # fmt: skip


def _tick(progress: Progress | None, table: Table, done: int, rows: int, moved: int, nbytes: int) -> None:
    if progress:
        progress(table.name, done + moved, max(rows, done + moved), nbytes)


def _assemble(target: Target, table: Table, records: list[ChunkRecord]) -> None:
    """Assemble a keyless table from its staging tables, unless an earlier run did already."""
    chunks = [from_record(table, r) for r in records]
    if not chunks or not isinstance(chunks[0], CtidRange):
        return
    parts = [staging(table, r.chunk) for r in records]
    # Part 0 is dropped first after assembling: while it exists, the assembly has not finished.
    if target.columns(parts[0]):
        target.assemble(table, parts)


class _ChunkCopy:
    """Chunks of one table as Dask futures, at most max_source_connections reading at once."""

    def __init__(
        self, plan: Plan, ledger: Ledger, target: Target, client: Client, table: Table, snapshot_id: str
    ) -> None:
        self.plan, self.ledger, self.target, self.client = plan, ledger, target, client
        self.table, self.snapshot_id = table, snapshot_id

    def submit(self, record: ChunkRecord) -> Future:
        """Start extracting a chunk on a worker."""
        chunk = from_record(self.table, record)
        args = (self.plan.source.url, self.plan.source.schema_name, self.table, chunk, self.snapshot_id,
                self.plan.transfer.verify)  # fmt: skip
        key = f"{self.table.name}-{record.chunk}-{record.attempts}-{uuid.uuid4().hex[:8]}"
        return self.client.submit(extract_chunk, *args, pure=False, key=key)

    def run(self, pending: list[ChunkRecord], tick: Callable[[int, int], None]) -> tuple[int, int, list[str]]:
        """Move the pending chunks; returns rows moved, retries and failures."""
        queue = list(pending)
        in_flight: dict[Future, ChunkRecord] = {}
        stream = as_completed()

        def start() -> None:
            record = queue.pop(0)
            future = self.submit(record)
            in_flight[future] = record
            stream.add(future)

        for _ in range(min(self.plan.transfer.max_source_connections, len(queue))):
            start()
        moved, moved_bytes, retried, failed = 0, 0, 0, []
        for future in stream:
            record = in_flight.pop(future)
            if queue:  # the next read starts before this chunk is written: workers never wait on the target
                start()
            landed = _land_chunk(self.plan, self.ledger, self.target, self.table, record, future)
            outcome, error, nbytes = landed
            future.release()  # the chunk's Arrow table leaves the worker's memory
            if outcome.state == "done":
                moved += outcome.rows or 0
                moved_bytes += nbytes
                tick(moved, moved_bytes)
            elif outcome.attempts < MAX_ATTEMPTS:
                retried += 1
                queue.insert(0, outcome)
                if len(in_flight) < self.plan.transfer.max_source_connections:
                    start()
            else:
                failed.append(f"chunk {record.chunk} {describe(from_record(self.table, record))}: {error}")
        return moved, retried, failed


def _land_chunk(
    plan: Plan, ledger: Ledger, target: Target, table: Table, record: ChunkRecord, future: Future
) -> tuple[ChunkRecord, str, int]:
    """Write an extracted chunk, compare checksums, record the outcome; returns it, its error, its bytes."""
    attempt = replace(record, attempts=record.attempts + 1)
    try:
        data, source_fp = future.result()
        into, key_range = _destination(table, record, from_record(table, record))
        if into is not table:
            target.prepare(into)
        target.write(into, data, key_range)
        target_fp = target.fingerprint(into, key_range)
    except Exception as exc:  # noqa: BLE001 - the chunk fails with the engine's message
        error = redact(f"{type(exc).__name__}: {exc}")[:2000]
        ledger.save_chunk(plan.name, replace(attempt, state="failed"), error)
        return replace(attempt, state="failed"), error, 0
    matched = source_fp == target_fp
    outcome = replace(
        attempt,
        state="done" if matched else "mismatch",
        rows=source_fp.rows,
        source_checksum=source_fp.checksum,
        target_checksum=target_fp.checksum,
    )
    error = (
        ""
        if matched
        else f"target has {target_fp.rows} rows / checksum {target_fp.checksum:016x}, "
        f"source {source_fp.rows} / {source_fp.checksum:016x}"
    )
    ledger.save_chunk(plan.name, outcome, error or None)
    return outcome, error, data.nbytes
