"""Reading PostgreSQL fast and exactly: CSV COPY parsed by pyarrow as it arrives, one snapshot.

Measured on 5M rows (NOTES.md, bench/transfer.py): CSV COPY parsed by pyarrow with an explicit
schema keeps every value exact (decimals, microseconds, NaN/±Inf/-0, int32) and costs less than
parsing binary COPY in Python. Reading and parsing overlap: a thread pumps COPY's blocks into a
pipe while pyarrow's streaming reader parses what has arrived.
"""

import os
import threading
from typing import Any, BinaryIO

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from liftshift import fingerprint as fp
from liftshift.connectors.base import Column, Table
from liftshift.types import Canonical

_BLOCK = 1 << 22  # pyarrow parses in blocks of this many bytes


def projection(column: Column) -> str:
    """How a column is selected: its canonical value (the cast fingerprints hash), as CSV text."""
    value = fp.canonical_value("postgres", column)
    if column.canonical is Canonical.BYTES:
        return f"encode({value}, 'hex')"
    if column.canonical is Canonical.JSON:
        return f"{value}::jsonb::text"  # jsonb's key order and spacing: the text that is hashed
    return value


def copy_arrow(conn: psycopg.Connection[Any], sql: str, table: Table) -> pa.Table:
    """Run sql (a COPY … TO STDOUT (FORMAT csv)) and parse its rows with the table's schema."""
    read_fd, write_fd = os.pipe()
    state: dict[str, Any] = {"bytes": 0, "error": None}
    pump = threading.Thread(target=_pump, args=(conn, sql, write_fd, state), daemon=True)
    pump.start()
    parsed: pa.Table | None = None
    parse_error: Exception | None = None
    with os.fdopen(read_fd, "rb") as stream:
        try:
            parsed = _parse(stream, table)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            parse_error = exc
    pump.join()
    # The connection's error comes first: a stream cut short also fails to parse.
    if state["error"] is not None and not isinstance(state["error"], BrokenPipeError):
        raise state["error"]
    if state["bytes"] == 0:
        return table.arrow_schema().empty_table()
    if parse_error is not None or parsed is None:
        raise parse_error or RuntimeError("COPY produced no table")
    return parsed


def _pump(conn: psycopg.Connection[Any], sql: str, write_fd: int, state: dict[str, Any]) -> None:
    """Copy COPY's blocks into the pipe; the pipe's close tells the parser the stream ended."""
    try:
        with os.fdopen(write_fd, "wb") as pipe, conn.cursor() as cur, cur.copy(sql) as copy:
            for block in copy:
                pipe.write(block)
                state["bytes"] += len(block)
    except BaseException as exc:  # noqa: BLE001 - handed to the parsing thread, which raises it
        state["error"] = exc


def _read_type(arrow: pa.DataType) -> pa.DataType:
    """The type the CSV reader parses a column as: it has no bytes from hex and no decimal256."""
    return pa.string() if arrow == pa.binary() or isinstance(arrow, pa.Decimal256Type) else arrow


def _options(table: Table) -> tuple[pacsv.ReadOptions, pacsv.ConvertOptions]:
    schema = table.arrow_schema()
    read = pacsv.ReadOptions(column_names=schema.names, block_size=_BLOCK)
    convert = pacsv.ConvertOptions(
        column_types={f.name: _read_type(f.type) for f in schema},
        true_values=["t"],
        false_values=["f"],
        # COPY writes NULL as an unquoted empty field and '' as a quoted one; the default
        # null spellings would also turn the float 'NaN' into NULL.
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )
    return read, convert


def _parse(stream: BinaryIO, table: Table) -> pa.Table:
    """Parse COPY's CSV as it arrives; bytes and wide decimals are converted after."""
    read, convert = _options(table)
    parse = pacsv.ParseOptions(newlines_in_values=True)
    try:
        reader = pacsv.open_csv(stream, read_options=read, parse_options=parse, convert_options=convert)
    except pa.ArrowInvalid:
        stream.read()  # empty: let the pump finish
        raise
    parsed = reader.read_all()
    return conform(parsed, table)


def parse_buffer(data: bytes, table: Table) -> pa.Table:
    """Parse a whole CSV COPY output at once (small reads: samples)."""
    read, convert = _options(table)
    parse = pacsv.ParseOptions(newlines_in_values=True)
    parsed = pacsv.read_csv(pa.py_buffer(data), read_options=read, parse_options=parse,
                            convert_options=convert)  # fmt: skip
    return conform(parsed, table)


def conform(parsed: pa.Table, table: Table) -> pa.Table:
    """A parsed table in the table's exact schema."""
    schema = table.arrow_schema()
    columns = [_convert(parsed.column(f.name), f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def _convert(column: pa.ChunkedArray, arrow: pa.DataType) -> pa.ChunkedArray | pa.Array:
    """A parsed column in its schema type."""
    if arrow == pa.binary():
        return _unhex(column)
    if isinstance(arrow, pa.Decimal256Type):
        return pc.cast(column, arrow)
    return column


def _unhex(column: pa.ChunkedArray) -> pa.Array:
    """Decode hex text into bytes (bytea travels as hex in CSV)."""
    return pa.array([None if v is None else bytes.fromhex(v) for v in column.to_pylist()], pa.binary())
