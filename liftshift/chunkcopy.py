"""Moving one table's pending chunks: extracts as Dask futures, landings on the target's writers.

Extraction runs on the Dask workers, at most max_source_connections chunks at once over all the
tables moving at once (liftshift.lanes.ReadSlots). Each extracted chunk is landed (written,
checksummed in the target, compared) by one of the table's writers, several at once: a DuckDB
insert of 250k rows uses one core, so two writers double what the target takes in. The table's
ledger rows are written on the calling thread only.
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
from liftshift.lanes import ReadSlots
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
        snapshot_id: str, in_parts: bool, reads: ReadSlots,
    ) -> None:  # fmt: skip
        self.plan, self.ledger, self.client, self.table = plan, ledger, client, table
        self.reads = reads  # shared by the tables moving at once: max_source_connections
        self.snapshot_id, self.writers, self.in_parts = snapshot_id, writers, in_parts
        self.native = plan_proof(plan, table, writers[0].dialect)
        self.events: queue.Queue[tuple[str, Any, Any]] = queue.Queue()
        self.reading, self.landing, self.asked = 0, 0, False  # chunks in flight, a read asked for
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
        # Extracted chunks wait in memory for a writer: at most one per writer beyond the reads.
        room = self.plan.transfer.max_source_connections + len(self.writers)
        with ThreadPoolExecutor(len(self.writers), thread_name_prefix="liftshift-land") as pool:
            try:
                while todo or self.reading or self.landing or self.asked:
                    while todo and not self.asked and self.reading + self.landing < room:
                        self.asked = not self.reads.ask(self._granted)
                        if not self.asked:
                            self.read(todo)
                    kind, record, payload = self.events.get()
                    if kind == "granted":
                        self.asked = False
                        if todo and self.reading + self.landing < room:
                            self.read(todo)
                        else:
                            self.reads.give_back()
                    elif kind == "extracted":
                        self.reads.give_back()
                        self.reading, self.landing = self.reading - 1, self.landing + 1
                        pool.submit(self.land, record, payload).add_done_callback(self._landed(record))
                    else:
                        self.landing -= 1
                        self.record(payload.result(), todo, moved, tick)
            finally:
                self._return_reads()
        return moved

    def read(self, todo: list[ChunkRecord]) -> None:
        """Start reading the next chunk, with a read already taken."""
        self.reading += 1
        self.submit(todo.pop(0))

    def _granted(self) -> None:
        self.events.put(("granted", None, None))

    def _return_reads(self) -> None:
        """Give back the reads this table holds or is queued for: a failure must not starve the others."""
        for _ in range(self.reading):
            self.reads.give_back()
        if self.asked and not self.reads.withdraw(self._granted):
            self.reads.give_back()

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
