"""Extracting one chunk on a Dask worker: read it in the table's snapshot, and prove what was read.

verify decides where the chunk's "checksum at extract" is computed:

- "extract" (default): over the Arrow chunk just read, by an in-process DuckDB. PostgreSQL only
  streams the rows; the hashing runs on the worker, in parallel with other chunks, and proves
  the bytes that will be written. Into BigQuery or PostgreSQL it is the canonical row hash every
  engine computes alike; into DuckDB it is DuckDB's own, cheaper row hash (native=True), which
  the target computes after the load (liftshift.connectors.duckdb.native_fingerprint_sql).
- "source": inside PostgreSQL, in the same snapshot. It proves the source's own values with the
  source's own engine (independent of liftshift's COPY and parsing), at the price of a second
  pass over the range in the database — the choice when a reviewer wants PostgreSQL's word.
"""

import threading
from contextlib import AbstractContextManager

import duckdb
import pyarrow as pa

from liftshift import fingerprint as fp
from liftshift.connectors.base import Chunk, Column, Fingerprint, KeyRange, Table, Target
from liftshift.connectors.duckdb import DuckDBTarget, native_fingerprint_sql, readable
from liftshift.connectors.postgres import PostgresSource, read_binary
from liftshift.plan import Plan
from liftshift.schema import accepted_lossy
from liftshift.types import Verdict, target_mapping

VERIFY = ("extract", "source")
_THREAD = threading.local()


def native_proof(
    target_dialect: str, verify: str, table: Table, accepted: frozenset[str] = frozenset()
) -> bool:
    """Whether a table's chunks are proved by DuckDB's own row hash: into DuckDB, checksummed at
    extract, and every column held there as it is read, or lossily where the plan accepts it
    (accepted: column names). Both sides hash the values cast to the target's types, so a lossy
    cast (a numeric rounded to 10 places) looks alike on both: what an accepted column should
    prove. Otherwise the canonical hash compares the values read with the values stored, and
    fails the chunk on it."""
    def held(column: Column) -> bool:
        exact = target_mapping(column.mapping, "duckdb").verdict in (Verdict.EXACT, Verdict.WIDENED)
        return exact and not isinstance(column.arrow_type(), pa.Decimal256Type)

    return (
        target_dialect == "duckdb"
        and verify == "extract"
        and all(c.name in accepted or held(c) for c in table.columns)
    )


def plan_proof(plan: Plan, table: Table, target_dialect: str) -> bool:
    """native_proof for a table of the plan: its verify setting, its accepted lossy columns."""
    accepted = accepted_lossy(plan, table, target_dialect)
    return native_proof(target_dialect, plan.transfer.verify, table, accepted)


def arrow_fingerprint(table: Table, data: pa.Table, native: bool = False, target: str = "") -> Fingerprint:
    """Row count and checksum of an Arrow chunk, as the target (its dialect) computes them after the load."""
    conn = _hasher()
    conn.register("liftshift_chunk", readable(data))
    try:
        if native:
            sql = native_fingerprint_sql("liftshift_chunk", table, None)
        else:
            sql = fp.fingerprint_sql("duckdb", "liftshift_chunk", table.columns, None, target == "bigquery")
        (n, hi, lo), *_ = conn.execute(sql).fetchall() or [(0, 0, 0)]
        return fp.combine(n, hi, lo)
    finally:
        conn.unregister("liftshift_chunk")


def _hasher() -> duckdb.DuckDBPyConnection:
    """This thread's in-process DuckDB: opening one costs ~30 ms, so a worker thread keeps its own."""
    conn: duckdb.DuckDBPyConnection | None = getattr(_THREAD, "duckdb", None)
    if conn is None:
        conn = _THREAD.duckdb = duckdb.connect(config={"threads": 1})  # one Dask worker is one core
    return conn


def extract_chunk(
    url: str, schema: str, table: Table, chunk: Chunk, snapshot_id: str | None,
    verify: str = "extract", native: bool = False, target: str = "",
) -> tuple[pa.Table, Fingerprint]:  # fmt: skip
    """Read a chunk in the exported snapshot and its checksum as the target (its dialect) will compute
    it (runs on a Dask worker)."""
    if verify == "extract":
        where = f"WHERE {fp.range_predicate('postgres', chunk)}"
        data = read_binary(url, schema, table, where, snapshot_id, keep=True)  # closed as the transfer ends
        return data, arrow_fingerprint(table, data, native, target)
    source = PostgresSource(url, schema)  # verify "source": PostgreSQL proves the rows it sent
    try:
        scope: AbstractContextManager[None] = (
            source.joined_snapshot(snapshot_id) if snapshot_id else source.snapshot()
        )
        with scope:
            return source.read_table(table, chunk), source.fingerprint(table, chunk)
    finally:
        source.close()


def load_fingerprint(target: Target, table: Table, key_range: KeyRange | None, native: bool) -> Fingerprint:
    """The checksum after the load, computed as arrow_fingerprint computed it at extract."""
    if native and isinstance(target, DuckDBTarget):
        return target.native_fingerprint(table, key_range)
    return target.fingerprint(table, key_range)
