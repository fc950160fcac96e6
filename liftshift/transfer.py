"""Transfer: copy tables in chunks on Dask, in one snapshot per table, proving each chunk by checksum."""

import fnmatch
import re
import time
from contextlib import suppress
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Protocol

from distributed import Client
from pydantic import BaseModel, ConfigDict

from liftshift import pgpool
from liftshift.assembly import assemble, discard_parts, lost_parts, staged, target_lost
from liftshift.chunkcopy import ChunkCopy
from liftshift.chunking import chunk_rows_for, from_record, integer_key, plan_chunks, plan_table, to_record
from liftshift.cluster import dask_client
from liftshift.connectors import open_source, open_target
from liftshift.connectors.base import CtidRange, Source, Table, Target
from liftshift.connectors.duckdb import DuckDBTarget
from liftshift.errors import (
    LiftshiftError,
    MissingTableError,
    PlanError,
    SchemaDriftError,
    SourceReadError,
    UnsupportedTypeError,
)
from liftshift.extract import plan_proof
from liftshift.lanes import Lane, ReadSlots, opened_lanes, run_lanes
from liftshift.ledger import ChunkRecord, Ledger, StoredReport
from liftshift.names import merged_tables
from liftshift.plan import Plan
from liftshift.redact import redact
from liftshift.report import GateResult, StageReport
from liftshift.resume import written_since
from liftshift.schema import schema_issues
from liftshift.types import Verdict, target_mapping
from liftshift.watermarks import remember_marks
from liftshift.xids import snapshot_xmin

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
    vanished: list[str] = []  # tables of the plan the latest assessment saw, no longer in the source

    def items(self) -> list[BaseModel]:
        """One line per table."""
        return list(self.tables)


def gate(report: TransferReport) -> GateResult:
    """Pass when every chunk of every table landed with a matching checksum."""
    reasons = [f"{t.table}: {failure}" for t in report.tables for failure in t.failed]
    reasons += [
        f"{name}: assessed, but no longer in the source (dropped or renamed since); if that is meant, run "
        "`liftshift assess` again, else restore it and rerun the transfer"
        for name in report.vanished
    ]
    return GateResult(passed=not reasons, reasons=reasons)


def run(
    plan: Plan, ledger: Ledger, progress: Progress | None = None, wave: int | None = None
) -> TransferReport:
    """Copy every selected table, or one wave of the latest assessment; chunks done earlier are skipped."""
    started, t0 = datetime.now(UTC), time.perf_counter()
    assessed = ledger.latest_report(plan.name, "assess")
    _refuse_failed_assessment(plan, assessed, wave)
    if wave is not None:
        plan = plan.model_copy(update={"tables": _wave_tables(plan, assessed, wave)})
    estimates = _estimates(assessed)
    source = open_source(plan)
    try:
        tables = _catalog(source, plan.tables, wave)
        first = open_target(plan)
        try:
            _refuse_blockers(tables, first.dialect)
            remember_marks(plan, ledger, source, tables)
            _announce(tables, progress)
            lanes = opened_lanes(plan, source, first, _lane_count(plan, first, len(tables)),
                                 _writer_count(plan, first))  # fmt: skip
            with lanes as opened, dask_client(plan.transfer.dask_address) as client:
                reads = ReadSlots(plan.transfer.max_source_connections)
                copy = partial(_copy_present, plan, ledger, client, reads)
                try:
                    lines = run_lanes(opened, tables, copy, progress)
                finally:
                    _close_kept(client)
        finally:
            first.close()
    finally:
        source.close()
    draft = TransferReport(
        stage="transfer", plan=plan.name, started_at=started,
        seconds=time.perf_counter() - t0, gate=GateResult(passed=True),
        rows=sum(t.rows for t in lines), wave=wave, vanished=_vanished(assessed, plan, tables),
        tables=[t.model_copy(update={"estimated_seconds": estimates.get(t.table)}) for t in lines],
    )  # fmt: skip
    return draft.model_copy(update={"gate": gate(draft)})


def _close_kept(client: Client) -> None:
    """Close the source connections the workers kept between chunk reads (liftshift.pgpool)."""
    # It runs while another error may be on its way out; a worker out of reach took its connections with it.
    with suppress(Exception):
        client.run(pgpool.close_idle)


def _vanished(stored: StoredReport | None, plan: Plan, tables: list[Table]) -> list[str]:
    """Tables of the latest assessment the plan still selects but the source no longer has."""
    assessed = [t["table"] for t in stored.body.get("tables", [])] if stored else []
    present = {t.name for t in tables}
    return [n for n in assessed if n not in present and any(fnmatch.fnmatchcase(n, p) for p in plan.tables)]


def _writer_count(plan: Plan, target: Target) -> int:
    """How many connections land a table's chunks: one for an in-memory DuckDB, which another would
    not share."""
    return 1 if _private(target) else plan.transfer.target_writers


def _lane_count(plan: Plan, target: Target, tables: int) -> int:
    """How many tables move at once (liftshift.lanes): tables_at_once, else max_source_connections."""
    wanted = plan.transfer.tables_at_once or plan.transfer.max_source_connections
    return 1 if _private(target) else max(1, min(wanted, tables))


def _private(target: Target) -> bool:
    """Whether the target is an in-memory DuckDB, which another connection would not see."""
    return isinstance(target, DuckDBTarget) and target.path == ":memory:"


def _announce(tables: list[Table], progress: Progress | None) -> None:
    """Give every table's estimated size up front, so an overall bar knows its total."""
    if progress is None:
        return
    for t in tables:
        progress(t.name, 0, t.row_estimate)


def _catalog(source: Source, names: list[str], wave: int | None) -> list[Table]:
    """The tables to move; one of a wave that left the source since the assessment says so."""
    try:
        return source.catalog(names)
    except MissingTableError as gone:
        if wave is None:
            raise
        raise PlanError(
            f"table '{_unescape(gone.pattern)}' of wave {wave} is no longer in the source (it was when the "
            "latest assessment ran); run `liftshift assess` again, then move the waves"
        ) from None


def _refuse_failed_assessment(plan: Plan, stored: StoredReport | None, wave: int | None) -> None:
    """Stop before anything moves when the latest assessment failed its gate: what it found (a value
    the target cannot hold, an unaccepted lossy column) would fail chunks or change values. A plan
    never assessed may move its tables; waves need an assessment."""
    if stored is None and wave is not None:
        raise PlanError(f"no assessment of plan '{plan.name}' in the ledger; run `liftshift assess` first")
    if stored is not None and not stored.passed:
        reasons = "; ".join(stored.body.get("gate", {}).get("reasons", [])[:3])
        raise PlanError(
            f"the latest assessment of plan '{plan.name}' failed its gate ({reasons}); "
            "fix or accept what it lists and run `liftshift assess` again before the transfer"
        )


def _wave_tables(plan: Plan, stored: StoredReport | None, number: int) -> list[str]:
    """The tables of one wave of the plan's latest assessment."""
    waves = stored.body.get("waves", []) if stored else []
    if not 1 <= number <= len(waves):
        raise PlanError(f"wave {number} does not exist; the latest assessment has waves 1–{len(waves)}")
    return [fnmatch_escape(name) for name in waves[number - 1]["tables"]]


def fnmatch_escape(name: str) -> str:
    """A pattern that matches exactly this table name."""
    return "".join(f"[{ch}]" if ch in "*?[]" else ch for ch in name)


def _unescape(pattern: str) -> str:
    """The table name fnmatch_escape made a pattern of."""
    return re.sub(r"\[([*?\[\]])\]", r"\1", pattern)


def _estimates(stored: StoredReport | None) -> dict[str, float]:
    """Each table's estimated transfer seconds from the latest assessment."""
    tables = stored.body.get("tables", []) if stored else []
    return {t["table"]: t["estimate"]["seconds"] for t in tables if t.get("estimate")}


def _refuse_blockers(tables: list[Table], dialect: str) -> None:
    blocked = [
        f"{t.name}.{c.name} ({c.source_type})"
        for t in tables
        for c in t.columns
        if target_mapping(c.mapping, dialect).verdict is Verdict.BLOCKER
    ]
    merged = [why for _, why in merged_tables(tables, dialect)]
    if merged:  # each table's chunks would replace the other's rows
        raise PlanError("; ".join(merged))
    if blocked:
        raise UnsupportedTypeError(
            "these columns have no target type: "
            + ", ".join(blocked)
            + "; run assess for details, or leave their tables out of 'tables' in the plan"
        )


def _chunk_records(
    plan: Plan, ledger: Ledger, source: Source, target: Target, table: Table, rows: int, now: int
) -> list[ChunkRecord]:
    """The table's chunks from the ledger, or a new chunk plan recorded there. Resumed, chunks done
    before move again if their part is lost or their rows changed since (now: this snapshot's xmin)."""
    records = ledger.chunk_records(plan.name, table.name)
    if records and all(r.state != "done" for r in records):
        # None landed for good, so the table is planned afresh: a changed chunk size applies.
        discard_parts(target, table, records)
        ledger.forget_chunks(plan.name, table.name)
        records = []
    if records and _resumable(table, records):
        again = {r.chunk for r in lost_parts(target, table, records)}
        # A table under delta sync holds other rows than its chunks landed: its deltas prove it instead.
        if not again and table.name not in plan.transfer.watermarks and target_lost(target, table, records):
            again = {r.chunk for r in records}  # the target's copy cannot be trusted: all move again
        if again or any(r.state != "done" for r in records):
            kept = [r for r in records if r.chunk not in again]
            again |= {r.chunk for r in written_since(source, table, kept, now)}
        records = [replace(r, state="pending") if r.chunk in again else r for r in records]
        ledger.save_chunks(plan.name, [r for r in records if r.chunk in again])
        return records
    if records:
        # Page ranges hold other rows in another snapshot (an update moves a row to a later page),
        # so chunks done in an earlier run could double or lose rows: all are read again.
        records = [replace(r, state="pending") for r in records]
        ledger.save_chunks(plan.name, records)
        return records
    chunks = plan_table(source, table, rows, chunk_rows_for(plan.transfer, table, rows))
    records = [to_record(table, i, chunk) for i, chunk in enumerate(chunks)]
    ledger.save_chunks(plan.name, records)  # one transaction: a kill never leaves half a plan
    return records


def _resumable(table: Table, records: list[ChunkRecord]) -> bool:
    """Whether chunks done in an earlier run still hold: always for key ranges, for ctid ranges only
    when none or all are done."""
    states = {r.state == "done" for r in records}
    return len(states) == 1 or not isinstance(from_record(table, records[0]), CtidRange)


_GONE = (
    "the table is gone from the source schema (dropped or renamed since the transfer started); restore "
    "it, or leave it out of 'tables' in the plan; a rerun keeps what the other tables moved"
)


def _copy_present(
    plan: Plan, ledger: Ledger, client: Client, reads: ReadSlots, lane: Lane,
    table: Table, progress: Progress | None,
) -> TableTransfer:  # fmt: skip
    """Copy one table in a lane; one that fails (dropped or renamed since the catalog was read, or
    refused by the target) fails alone, saying why, and the others move."""
    t0 = time.perf_counter()
    try:
        return _copy_table(plan, ledger, client, reads, lane, table, progress)
    except Exception as exc:  # noqa: BLE001 - the table fails alone, with the engine's message
        failure = _failure(lane.source, table, exc)
    return TableTransfer(
        table=table.name, rows=0, chunks=0, moved=0, skipped=0, retried=0, failed=[failure],
        seconds=time.perf_counter() - t0,
    )  # fmt: skip


def _failure(source: Source, table: Table, exc: Exception) -> str:
    """Why a table failed: it is gone, or the engine's message; SourceReadError if the source is."""
    try:
        present = source.has_table(table)
    except Exception as lost:  # noqa: BLE001 - whatever the driver raises, no table can move now
        raise SourceReadError(redact(
            f"lost the connection to the source ({type(lost).__name__}: {lost}); the chunks done are "
            "in the ledger: rerun the transfer when the source is back"
        )) from None  # fmt: skip
    if not present:
        return _GONE
    return redact(str(exc) if isinstance(exc, LiftshiftError) else f"{type(exc).__name__}: {exc}")[:2000]


def _copy_table(
    plan: Plan, ledger: Ledger, client: Client, reads: ReadSlots, lane: Lane,
    table: Table, progress: Progress | None,
) -> TableTransfer:  # fmt: skip
    """Copy one table: every chunk reads the snapshot the lane's source exports and holds open."""
    t0, source, writers, target = time.perf_counter(), lane.source, lane.writers, lane.writers[0]
    with source.exported_snapshot() as snapshot_id:
        rows, now = source.planned_rows(table), snapshot_xmin(source)
        target.prepare(table)
        _refuse_drift(target, table)
        records = _chunk_records(plan, ledger, source, target, table, rows, now)
        done_rows = sum(r.rows or 0 for r in records if r.state == "done")
        pending = [replace(r, snapshot_xmin=now) for r in records if r.state != "done"]
        if progress:
            progress(table.name, done_rows, max(done_rows, rows))
        in_parts = staged(target, table, records)
        copy = ChunkCopy(plan, ledger, writers, client, table, snapshot_id, in_parts, reads)
        moved = copy.run(pending, lambda n, nbytes: _tick(progress, table, done_rows, rows, n, nbytes))
    failed = moved.failed or _assemble(plan, ledger, target, table)
    return TableTransfer(
        table=table.name, rows=done_rows + moved.rows, chunks=len(records),
        moved=len(pending) - len(moved.failed), skipped=len(records) - len(pending), retried=moved.retried,
        failed=failed, seconds=time.perf_counter() - t0,
    )  # fmt: skip


def _refuse_drift(target: Target, table: Table) -> None:
    """Stop a table whose target copy no longer has the source's columns (a column added, dropped or
    retyped in the source since it was copied): chunks would fail, or a rerun would pass on the old
    shape. The target's copy is the user's to drop, not ours."""
    issues = schema_issues(table, target, target.columns(table))
    if issues:
        raise SchemaDriftError(
            f"the source's columns changed since the target table {target.relation(table)} was made "
            f"({'; '.join(issues)}); drop that table in the target and rerun the transfer to copy it again"
        )


def _assemble(plan: Plan, ledger: Ledger, target: Target, table: Table) -> list[str]:
    """Assemble a table landed in parts; if it does not hold their rows, every chunk moves again."""
    records = ledger.chunk_records(plan.name, table.name)
    try:
        error = assemble(target, table, records, plan_proof(plan, table, target.dialect))
    except Exception as exc:  # noqa: BLE001 - the table fails alone, with the engine's message
        # Its chunks stay done: their parts are kept, and a rerun assembles again (or moves lost ones).
        failure = f"assembling it from its parts failed: {type(exc).__name__}: {exc}; rerun the transfer"
        return [redact(failure)[:2000]]
    if error:
        ledger.save_chunks(plan.name, [replace(r, state="pending") for r in records])
    return [error] if error else []


def _tick(progress: Progress | None, table: Table, done: int, rows: int, moved: int, nbytes: int) -> None:
    if progress:
        progress(table.name, done + moved, max(rows, done + moved), nbytes)
