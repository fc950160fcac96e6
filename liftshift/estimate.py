"""Estimates: transfer time from a sample moved through the real path, and BigQuery cost."""

import hashlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from liftshift import fingerprint as fp
from liftshift.assess_report import Estimate
from liftshift.chunking import chunk_rows_for, integer_key
from liftshift.connectors.base import KeyRange, Table, TableRef, Target
from liftshift.connectors.postgres import PostgresSource, read_binary
from liftshift.errors import ConnectError, LiftshiftError
from liftshift.extract import arrow_fingerprint, load_fingerprint, native_proof
from liftshift.plan import Plan
from liftshift.redact import redact
from liftshift.types import target_mapping

T = TypeVar("T")
SMALL_PROBE_ROWS = 1_000
VALIDATION_PASSES = 2  # validate reads every column twice: aggregates, then fingerprints
MIN_QUERY_BYTES = 10 * 2**20  # BigQuery bills at least 10 MiB per table a query reads
_FIXED_WIDTH = {"INT64": 8, "FLOAT64": 8, "DATE": 8, "DATETIME": 8, "TIMESTAMP": 8, "TIME": 8,
                "NUMERIC": 16, "BIGNUMERIC": 32, "BOOL": 1}  # fmt: skip


@dataclass(frozen=True)
class Probe:
    """Seconds to move n rows: read and fingerprint at the source, write and fingerprint at the target."""

    rows: int
    source_seconds: float
    target_seconds: float


@dataclass(frozen=True)
class Cost:
    """A linear cost model: seconds = fixed per chunk + per_row × rows."""

    fixed: float
    per_row: float

    @classmethod
    def fit(cls, small: float, small_rows: int, large: float, large_rows: int) -> "Cost":
        """The line through two probes; the large probe's average where the line would not rise (timings
        are noisy, and the first table's small probe also pays for warming up)."""
        if large_rows <= small_rows or large <= small:
            return cls(0.0, large / max(large_rows, 1))
        per_row = (large - small) / (large_rows - small_rows)
        return cls(max(small - per_row * small_rows, 0.0), per_row)

    def seconds(self, rows: int, chunks: int) -> float:
        """Time for rows split into chunks."""
        return chunks * self.fixed + rows * self.per_row


def _timed(work: Callable[[], T]) -> tuple[T, float]:
    t0 = time.perf_counter()
    result = work()
    return result, time.perf_counter() - t0


def probe(
    source: PostgresSource, target: Target, table: Table, rows: int, verify: str = "extract"
) -> tuple[Probe, pa.Table]:
    """Move the first `rows` rows into a scratch table in the target, as transfer would, and time it.

    The checksum at extract is timed where transfer.verify computes it: over the Arrow sample, or
    inside PostgreSQL.
    """
    data, read = _timed(lambda: _read_sample(source, table, rows, verify))
    native = native_proof(target.dialect, verify, table)
    if verify == "source":
        sample = f"(SELECT * FROM {source.relation(table)} LIMIT {int(rows)}) AS sample"
        sql = fp.fingerprint_sql("postgres", sample, table.columns, None)
        _, hashed = _timed(lambda: source.conn.execute(sql).fetchone())
    else:
        _, hashed = _timed(lambda: arrow_fingerprint(table, data, native))
    scratch = replace(table, ref=TableRef(table.ref.schema, scratch_name(table.name)))
    key = integer_key(table)
    key_range = KeyRange(key) if key and not target.stages_chunks else None  # as transfer writes a chunk
    try:
        target.prepare(scratch)
        try:
            _, written = _timed(lambda: target.write(scratch, data, key_range))
            _, checked = _timed(lambda: load_fingerprint(target, scratch, key_range, native))
        finally:
            target.drop(scratch)
    except LiftshiftError:
        raise
    except Exception as exc:  # noqa: BLE001 - any engine error means the target refused the probe
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise ConnectError(
            f"assess could not time a sample of {table.name} in the target ({type(exc).__name__}: "
            f"{redact(first_line)[:300]}); the target user must be allowed to create and drop tables"
        ) from None
    return Probe(data.num_rows, read + hashed, written + checked), data


def _read_sample(source: PostgresSource, table: Table, rows: int, verify: str) -> pa.Table:
    """The first rows rows, read the way transfer reads a chunk (liftshift.extract.extract_chunk)."""
    if verify == "extract":
        return read_binary(source.url, source.schema, table, f"LIMIT {int(rows)}")
    return source.read_sample(table, rows)


def scratch_name(table: str) -> str:
    """A short name for the probe's scratch table, unique to this table and this process."""
    digest = hashlib.sha1(table.encode()).hexdigest()[:10]
    return f"_ls_probe_{digest}_{os.getpid()}"


def estimate(
    plan: Plan, source: PostgresSource, target: Target, table: Table, rows: int, workers: int
) -> Estimate:
    """Time to transfer a table and its BigQuery cost, measured on samples of it."""
    verify = plan.transfer.verify
    small, _ = probe(source, target, table, min(SMALL_PROBE_ROWS, plan.assess.sample_rows), verify)
    large, data = probe(source, target, table, plan.assess.sample_rows, verify)
    read = Cost.fit(small.source_seconds, small.rows, large.source_seconds, large.rows)
    write = Cost.fit(small.target_seconds, small.rows, large.target_seconds, large.rows)
    chunks = max(1, math.ceil(rows / chunk_rows_for(plan.transfer, table, rows)))
    streams = max(1, min(plan.transfer.max_source_connections, workers))
    reading, writing = read.seconds(rows, chunks), write.seconds(rows, chunks)
    writers = max(1, min(plan.transfer.target_writers, chunks))
    # Workers read chunks in parallel while the driver's writers land them, several at once.
    seconds = max(reading / streams, writing / writers) + reading / chunks
    bq_bytes = round(bigquery_bytes(table, data) * rows / max(data.num_rows, 1))
    prices = plan.prices
    scanned = VALIDATION_PASSES * max(bq_bytes, MIN_QUERY_BYTES)
    return Estimate(
        sample_rows=data.num_rows, read_rows_per_second=_rate(read), write_rows_per_second=_rate(write),
        seconds=seconds, bigquery_bytes=bq_bytes,
        storage_usd_month=bq_bytes / 2**30 * prices.storage_gib_month,
        validation_usd=scanned / 2**40 * prices.query_tib,
    )  # fmt: skip


def _rate(cost: Cost) -> float:
    return 1 / cost.per_row if cost.per_row > 0 else 0.0


def bigquery_bytes(table: Table, data: pa.Table) -> int:
    """BigQuery's logical bytes for these rows: fixed widths, 2 + length for text, NULLs free."""
    total = 0
    for column in table.columns:
        values = data.column(column.name)
        kind = target_mapping(column.mapping, "bigquery").type
        present = len(values) - values.null_count
        if kind in _FIXED_WIDTH:
            total += _FIXED_WIDTH[kind] * present
        elif _has_length(values.type):
            lengths = pc.binary_length(values.cast(pa.binary()) if kind == "BYTES" else values)
            total += int(pc.sum(lengths).as_py() or 0) + (0 if kind == "JSON" else 2 * present)
        else:  # wide decimals, and anything else Arrow holds at a fixed width
            total += _width(values.type) * present
    return total


def _has_length(arrow: pa.DataType) -> bool:
    return bool(pa.types.is_string(arrow) or pa.types.is_large_string(arrow) or pa.types.is_binary(arrow))


def _width(arrow: pa.DataType) -> int:
    try:
        return int(arrow.byte_width)
    except ValueError:  # a nested type: count it as BigQuery's widest scalar
        return _FIXED_WIDTH["BIGNUMERIC"]
