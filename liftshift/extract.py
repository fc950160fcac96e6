"""Extracting one chunk on a Dask worker: read it in the table's snapshot, and prove what was read.

verify decides where the chunk's "checksum at extract" is computed:

- "extract" (default): over the Arrow chunk just read, by an in-process DuckDB running the same
  canonical row-hash SQL as the targets. PostgreSQL only streams the rows; the hashing runs on the
  worker, in parallel with other chunks, and proves the bytes that will be written.
- "source": inside PostgreSQL, in the same snapshot. It proves the source's own values with the
  source's own engine (independent of liftshift's COPY and parsing), at the price of a second
  pass over the range in the database — the choice when a reviewer wants PostgreSQL's word.
"""

from contextlib import AbstractContextManager

import duckdb
import pyarrow as pa

from liftshift import fingerprint as fp
from liftshift.connectors.base import Chunk, Fingerprint, Table
from liftshift.connectors.duckdb import readable
from liftshift.connectors.postgres import PostgresSource

VERIFY = ("extract", "source")


def arrow_fingerprint(table: Table, data: pa.Table) -> Fingerprint:
    """Row count and checksum of an Arrow chunk, as every engine's fingerprint SQL computes them."""
    conn = duckdb.connect(config={"threads": 1})  # one Dask worker is one core
    try:
        conn.register("liftshift_chunk", readable(data))
        sql = fp.fingerprint_sql("duckdb", "liftshift_chunk", table.columns, None)
        (n, hi, lo), *_ = conn.execute(sql).fetchall() or [(0, 0, 0)]
        return fp.combine(n, hi, lo)
    finally:
        conn.close()


def extract_chunk(
    url: str, schema: str, table: Table, chunk: Chunk, snapshot_id: str | None, verify: str = "extract"
) -> tuple[pa.Table, Fingerprint]:
    """Read a chunk in the exported snapshot and its checksum (runs on a Dask worker)."""
    source = PostgresSource(url, schema)
    try:
        scope: AbstractContextManager[None] = (
            source.joined_snapshot(snapshot_id) if snapshot_id else source.snapshot()
        )
        with scope:
            data = source.read_table(table, chunk)
            if verify == "source":
                return data, source.fingerprint(table, chunk)
        return data, arrow_fingerprint(table, data)
    finally:
        source.close()
