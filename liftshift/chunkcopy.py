"""Moving one table's pending chunks: extracts as Dask futures, landings on the target's writers.

Extraction runs on the Dask workers, at most max_source_connections chunks at once. Each
extracted chunk is landed (written, checksummed in the target, compared) by one of the target's
writers, several at once: a DuckDB insert of 250k rows uses one core, so two writers double
what the target takes in. The ledger is written on the calling thread only.
"""

import queue
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from distributed import Client, Future

from liftshift.assembly import destination
from liftshift.chunking import describe, from_record
from liftshift.connectors.base import Table, Target
from liftshift.extract import extract_chunk, load_fingerprint, plan_proof
from liftshift.ledger import ChunkRecord, Ledger
from liftshift.plan import Plan
from liftshift.redact import redact

MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Landed:
    """A chunk's outcome: its record as it now stands, the error if any, the bytes it moved."""

    record: ChunkRecord
    error: str
    nbytes: int


@dataclass
class Moved:
    """What moving a table's pending chunks did."""

    rows: int = 0
    nbytes: int = 0
    retried: int = 0
    failed: list[str] = field(default_factory=list)


class ChunkCopy:
    """A table's pending chunks, extracted on Dask and landed by the target's writers."""

    def __init__(
        self, plan: Plan, ledger: Ledger, writers: list[Target], client: Client, table: Table,
        snapshot_id: str, in_parts: bool,
    ) -> None:  # fmt: skip
        self.plan, self.ledger, self.client, self.table = plan, ledger, client, table
        self.snapshot_id, self.writers, self.in_parts = snapshot_id, writers, in_parts
        self.native = plan_proof(plan, table, writers[0].dialect)
        self.events: queue.Queue[tuple[str, ChunkRecord, Any]] = queue.Queue()
        self.free: queue.Queue[Target] = queue.Queue()
        for writer in writers:
            self.free.put(writer)

    def submit(self, record: ChunkRecord) -> None:
        """Start extracting a chunk on a worker; its completion arrives as an event."""
        chunk = from_record(self.table, record)
        args = (self.plan.source.url, self.plan.source.schema_name, self.table, chunk, self.snapshot_id,
                self.plan.transfer.verify, self.native, self.writers[0].dialect)  # fmt: skip
        key = f"{self.table.name}-{record.chunk}-{record.attempts}-{uuid.uuid4().hex[:8]}"
        future = self.client.submit(extract_chunk, *args, pure=False, key=key)
        future.add_done_callback(lambda done: self.events.put(("extracted", record, done)))

    def run(self, pending: list[ChunkRecord], tick: Callable[[int, int], None]) -> Moved:
        """Move the pending chunks; returns rows and bytes moved, retries and failures."""
        todo, moved = list(pending), Moved()
        reading, landing = 0, 0
        reads = self.plan.transfer.max_source_connections
        # Extracted chunks wait in memory for a writer: at most one per writer beyond the reads.
        room = reads + len(self.writers)
        with ThreadPoolExecutor(len(self.writers), thread_name_prefix="liftshift-land") as pool:
            while todo or reading or landing:
                while todo and reading < reads and reading + landing < room:
                    self.submit(todo.pop(0))
                    reading += 1
                kind, record, payload = self.events.get()
                if kind == "extracted":
                    reading, landing = reading - 1, landing + 1
                    pool.submit(self.land, record, payload).add_done_callback(self._landed(record))
                    continue
                landing -= 1
                self.record(payload.result(), todo, moved, tick)
        return moved

    def _landed(self, record: ChunkRecord) -> Callable[[Any], None]:
        return lambda done: self.events.put(("landed", record, done))

    def record(
        self, landed: Landed, todo: list[ChunkRecord], moved: Moved, tick: Callable[[int, int], None]
    ) -> None:
        """Write a landing's outcome to the ledger; queue the chunk again if it may be retried."""
        outcome = landed.record
        self.ledger.save_chunk(self.plan.name, outcome, landed.error or None)
        if outcome.state == "done":
            moved.rows += outcome.rows or 0
            moved.nbytes += landed.nbytes
            tick(moved.rows, moved.nbytes)
        elif outcome.attempts < MAX_ATTEMPTS:
            moved.retried += 1
            todo.insert(0, outcome)
        else:
            chunk = describe(from_record(self.table, outcome))
            moved.failed.append(f"chunk {outcome.chunk} {chunk}: {landed.error}")

    def land(self, record: ChunkRecord, future: Future) -> Landed:
        """Write an extracted chunk with a free writer, and compare its checksums (a writer thread)."""
        writer = self.free.get()
        try:
            return land_chunk(writer, self.table, record, future, self.native, self.in_parts)
        finally:
            future.release()  # the chunk's Arrow table leaves the worker's memory
            self.free.put(writer)


def land_chunk(
    target: Target, table: Table, record: ChunkRecord, future: Future, native: bool, in_parts: bool
) -> Landed:
    """Write an extracted chunk and compare checksums; the chunk fails with the engine's message."""
    attempt = replace(record, attempts=record.attempts + 1)
    try:
        data, source_fp = future.result()
        into, key_range = destination(target, table, record, in_parts)
        if into is not table:
            target.prepare(into)
        target.write(into, data, key_range)
        target_fp = load_fingerprint(target, into, key_range, native)
    except Exception as exc:  # noqa: BLE001 - the chunk fails with the engine's message
        return Landed(replace(attempt, state="failed"), redact(f"{type(exc).__name__}: {exc}")[:2000], 0)
    matched = source_fp == target_fp
    outcome = replace(
        attempt, state="done" if matched else "mismatch", rows=source_fp.rows,
        source_checksum=source_fp.checksum, target_checksum=target_fp.checksum,
    )  # fmt: skip
    error = (
        ""
        if matched
        else f"target has {target_fp.rows} rows / checksum {target_fp.checksum:016x}, "
        f"source {source_fp.rows} / {source_fp.checksum:016x}"
    )
    return Landed(outcome, error, data.nbytes)
