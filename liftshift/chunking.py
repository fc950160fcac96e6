"""Chunk planning for every key shape, and chunks' exact boundaries in the ledger.

- a single integer primary key: ranges of equal width between its min and max when its keys fill at
  least half of that span, else ranges between keys sampled in key order;
- any other primary key whose columns can be compared as literals (text, uuid, decimal, dates,
  timestamps; composite keys as row values): keyset ranges between keys sampled in key order;
- no primary key (or one that cannot be compared): ctid page ranges of the source, each landing
  in a staging table of its own (liftshift.connectors.base.staging).

Boundaries are stored in the ledger, so a rerun reads exactly the same chunks.
"""

import json
import math

from liftshift import fingerprint as fp
from liftshift.connectors.base import Chunk, CtidRange, KeyRange, Source, Table
from liftshift.intbuckets import DENSE
from liftshift.ledger import ChunkRecord
from liftshift.plan import TransferSpec
from liftshift.types import Canonical

_INTEGER_KEYS = (Canonical.INT16, Canonical.INT32, Canonical.INT64)


def integer_key(table: Table) -> str | None:
    """The table's primary key column when it is a single integer column."""
    if len(table.primary_key) == 1 and table.column(table.primary_key[0]).canonical in _INTEGER_KEYS:
        return table.primary_key[0]
    return None


def key_types(table: Table) -> tuple[Canonical, ...] | None:
    """The canonical types of the primary key, when ranges over it can be written in every dialect."""
    if not table.primary_key:
        return None
    columns = [table.column(k) for k in table.primary_key]
    # A cast key (other than to text) is compared as stored, which its canonical literal may not match.
    if any(c.canonical not in fp.KEY_TYPES or (c.mapping.cast and c.canonical is not Canonical.STRING)
           for c in columns):  # fmt: skip
        return None
    return tuple(c.canonical for c in columns)


MIN_CHUNK_ROWS = 1_000  # below this, a chunk's fixed costs (a connection, a transaction) dominate
UNSIZED_CHUNK_ROWS = 250_000  # for a table whose size the catalog does not know


def chunk_rows_for(spec: TransferSpec, table: Table, rows: int) -> int:
    """Rows per chunk: the plan's chunk_rows if set, else as many as hold about chunk_bytes of the table.

    Why bytes: a fixed row count makes chunks of wide rows huge (memory) and of narrow ones small
    (a connection and a transaction per few megabytes). Bytes per row count the table's indexes
    and TOAST too, which errs towards smaller chunks.
    """
    if spec.chunk_rows:
        return spec.chunk_rows
    if rows <= 0 or table.total_bytes <= 0:
        return UNSIZED_CHUNK_ROWS
    return max(MIN_CHUNK_ROWS, round(spec.chunk_bytes * rows / table.total_bytes))


def plan_chunks(
    key: str | None, bounds: tuple[int, int] | None, rows: int, chunk_rows: int
) -> list[KeyRange | None]:
    """Split [min, max] of an integer key into ranges of about chunk_rows rows, open at both ends."""
    if key is None or bounds is None:
        return [None]
    low, high = bounds
    count = max(1, math.ceil(rows / chunk_rows))
    step = max(1, math.ceil((high - low + 1) / count))
    return _between(key, [low + i * step for i in range(1, count) if low + i * step <= high])


def _between(key: str, cuts: list[int]) -> list[KeyRange | None]:
    """Ranges of an integer key between ascending cuts, open at both ends."""
    edges: list[int | None] = [None, *cuts, None]
    return [KeyRange(key, a, b) for a, b in zip(edges, edges[1:], strict=False)]


def integer_ranges(
    source: Source, table: Table, key: str, rows: int, chunk_rows: int
) -> list[KeyRange | None]:
    """Ranges of an integer key holding about chunk_rows rows each: of equal width when the keys are
    dense, else between keys sampled in key order.

    Why not always equal widths: keys spread thinly (a sequence that jumped, a sentinel id far
    from the rest) would leave most ranges empty and put most rows into one, a chunk as big as the
    table, held in memory at once and read by one worker.
    """
    bounds = source.key_bounds(table, key)
    if bounds is None or bounds[1] - bounds[0] + 1 <= DENSE * max(rows, 1):
        return plan_chunks(key, bounds, rows, chunk_rows)
    return _between(key, [int(cut[0]) for cut in source.key_cuts(table, rows, chunk_rows)])


def plan_table(source: Source, table: Table, rows: int, chunk_rows: int) -> list[Chunk]:
    """The table's chunks: integer ranges, keyset ranges, or ctid page ranges."""
    key = integer_key(table)
    if key is not None:
        return list(integer_ranges(source, table, key, rows, chunk_rows))
    types = key_types(table)
    if types is not None:
        cuts = [tuple(c) for c in source.key_cuts(table, rows, chunk_rows)]
        edges: list[tuple[object, ...] | None] = [None, *cuts, None]
        return [KeyRange(table.primary_key, a, b, types) for a, b in zip(edges, edges[1:], strict=False)]
    pages = source.pages(table)
    count = max(1, math.ceil(rows / chunk_rows))
    step = max(1, math.ceil(pages / count))
    page_cuts = list(range(step, pages, step))
    page_edges: list[int | None] = [None, *page_cuts, None]
    return [CtidRange(a, b) for a, b in zip(page_edges, page_edges[1:], strict=False)]


def to_record(table: Table, number: int, chunk: Chunk) -> ChunkRecord:
    """A new pending ledger row for a chunk: integer bounds in low/high, others as JSON."""
    if isinstance(chunk, CtidRange):
        bounds = json.dumps({"ctid": [chunk.low, chunk.high]})
        return ChunkRecord(table.name, number, None, None, "pending", None, None, None, 0, bounds)
    if chunk is None or integer_key(table):
        low, high = (chunk.low, chunk.high) if chunk else (None, None)
        return ChunkRecord(table.name, number, low, high, "pending", None, None, None, 0)
    low, high = chunk.bound(chunk.low), chunk.bound(chunk.high)
    bounds = json.dumps({"key": list(chunk.columns), "low": low, "high": high})
    return ChunkRecord(table.name, number, None, None, "pending", None, None, None, 0, bounds)


def from_record(table: Table, record: ChunkRecord) -> Chunk:
    """The chunk a ledger row describes."""
    if record.bounds:
        stored = json.loads(record.bounds)
        if "ctid" in stored:
            return CtidRange(*stored["ctid"])
        low, high = (None if b is None else tuple(b) for b in (stored["low"], stored["high"]))
        return KeyRange(tuple(stored["key"]), low, high, key_types(table) or ())
    key = integer_key(table)
    return None if key is None else KeyRange(key, record.low, record.high)


def describe(chunk: Chunk) -> str:
    """A chunk's boundaries for messages."""
    if chunk is None or (chunk.low is None and chunk.high is None):
        return "(the whole table)"
    low, high = ("…" if bound is None else bound for bound in (chunk.low, chunk.high))
    if isinstance(chunk, CtidRange):
        return f"pages [{low}, {high})"
    return f"[{low}, {high})"
