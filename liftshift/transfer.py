"""Transfer: copy tables in primary-key-range chunks on Dask, proving each chunk by checksum."""

import math
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol

import pyarrow as pa
from distributed import Client, Future, as_completed
from pydantic import BaseModel, ConfigDict

from liftshift.cluster import dask_client
from liftshift.connectors import open_source, open_target
from liftshift.connectors.base import Fingerprint, KeyRange, Source, Table, Target
from liftshift.connectors.postgres import PostgresSource
from liftshift.errors import PlanError, UnsupportedTypeError
from liftshift.ledger import ChunkRecord, Ledger
from liftshift.plan import Plan
from liftshift.redact import redact
from liftshift.report import GateResult, StageReport
from liftshift.types import Canonical, Verdict, target_mapping
from liftshift.watermarks import remember_marks

MAX_ATTEMPTS = 3
_INTEGER_KEYS = (Canonical.INT16, Canonical.INT32, Canonical.INT64)


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


def integer_key(table: Table) -> str | None:
    """The table's primary key column when it is a single integer column."""
    if len(table.primary_key) == 1 and table.column(table.primary_key[0]).canonical in _INTEGER_KEYS:
        return table.primary_key[0]
    return None


def plan_chunks(
    key: str | None, bounds: tuple[int, int] | None, rows: int, chunk_rows: int
) -> list[KeyRange | None]:
    """Split [min, max] of an integer key into ranges of about chunk_rows rows, open at both ends."""
    if key is None or bounds is None:
        return [None]
    low, high = bounds
    count = max(1, math.ceil(rows / chunk_rows))
    step = max(1, math.ceil((high - low + 1) / count))
    cuts = [low + i * step for i in range(1, count) if low + i * step <= high]
    edges: list[int | None] = [None, *cuts, None]
    return [KeyRange(key, a, b) for a, b in zip(edges, edges[1:], strict=False)]


def extract_chunk(
    url: str, schema: str, table: Table, key_range: KeyRange | None
) -> tuple[pa.Table, Fingerprint]:
    """Read a range and its checksum in one snapshot (runs on a Dask worker)."""
    source = PostgresSource(url, schema)
    try:
        with source.snapshot():
            return source.read_table(table, key_range), source.fingerprint(table, key_range)
    finally:
        source.close()


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
            with dask_client() as client:
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


def _chunk_records(plan: Plan, ledger: Ledger, source: Source, table: Table) -> list[ChunkRecord]:
    """The table's chunks from the ledger, or a new chunk plan recorded there."""
    records = ledger.chunk_records(plan.name, table.name)
    if records:
        return records
    key = integer_key(table)
    bounds = source.key_bounds(table, key) if key else None
    ranges = plan_chunks(key, bounds, source.row_count(table), plan.transfer.chunk_rows)
    records = [
        ChunkRecord(table.name, i, r.low if r else None, r.high if r else None, "pending",
                    None, None, None, 0)
        for i, r in enumerate(ranges)
    ]  # fmt: skip
    ledger.save_chunks(plan.name, records)
    return records


def _key_range(table: Table, record: ChunkRecord) -> KeyRange | None:
    key = integer_key(table)
    return None if key is None else KeyRange(key, record.low, record.high)


def _copy_table(
    plan: Plan, ledger: Ledger, source: Source, target: Target, client: Client,
    table: Table, progress: Progress | None,
) -> TableTransfer:  # fmt: skip
    t0 = time.perf_counter()
    records = _chunk_records(plan, ledger, source, table)
    target.prepare(table)
    done_rows = sum(r.rows or 0 for r in records if r.state == "done")
    total = max(done_rows, source.row_count(table))
    pending = [r for r in records if r.state != "done"]
    if progress:
        progress(table.name, done_rows, total)

    def submit(record: ChunkRecord) -> Future:
        args = (plan.source.url, plan.source.schema_name, table, _key_range(table, record))
        return client.submit(
            extract_chunk, *args, pure=False, key=f"{table.name}-{record.chunk}-{record.attempts}"
        )

    queue = list(pending)
    in_flight: dict[Future, ChunkRecord] = {}
    stream = as_completed()
    for _ in range(min(plan.transfer.max_source_connections, len(queue))):
        record = queue.pop(0)
        future = submit(record)
        in_flight[future] = record
        stream.add(future)
    retried, failed, done_bytes = 0, [], 0
    for future in stream:
        record = in_flight.pop(future)
        outcome, error, nbytes = _land_chunk(plan, ledger, target, table, record, future)
        if outcome.state == "done":
            done_rows += outcome.rows or 0
            done_bytes += nbytes
            if progress:
                progress(table.name, done_rows, max(total, done_rows), done_bytes)
        elif outcome.attempts < MAX_ATTEMPTS:
            retried += 1
            queue.insert(0, outcome)
        else:
            failed.append(f"chunk {record.chunk} [{record.low}, {record.high}): {error}")
        if queue:
            nxt = queue.pop(0)
            new = submit(nxt)
            in_flight[new] = nxt
            stream.add(new)
    return TableTransfer(
        table=table.name, rows=done_rows, chunks=len(records), moved=len(pending) - len(failed),
        skipped=len(records) - len(pending), retried=retried, failed=failed,
        seconds=time.perf_counter() - t0,
    )  # fmt: skip


def _land_chunk(
    plan: Plan, ledger: Ledger, target: Target, table: Table, record: ChunkRecord, future: Future
) -> tuple[ChunkRecord, str, int]:
    """Write an extracted chunk, compare checksums, record the outcome; returns it, its error, its bytes."""
    attempt = replace(record, attempts=record.attempts + 1)
    try:
        data, source_fp = future.result()
        key_range = _key_range(table, record)
        target.write(table, data, key_range)
        target_fp = target.fingerprint(table, key_range)
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
