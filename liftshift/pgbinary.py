"""PostgreSQL's binary COPY format, parsed into Arrow with the table's exact schema.

Why our own parser: PostgreSQL writes binary COPY with a third less CPU than CSV (its send
functions print nothing), but no library we measured turns it into Arrow cheaply. On the 5M-row
benchmark table, two streams, server, client and parse together (NOTES.md): ADBC's PostgreSQL
driver 6.0–6.9 CPU-s; CSV COPY through psql parsed by pyarrow ~5.0; binary COPY read by asyncpg
(2.8) and parsed here (0.8) ~3.6. The parser is a few numba kernels (liftshift.pgkernels): one walk
over the rows that decodes every fixed-width value, then one pass per variable-width column.

Each column is selected as the wire type of its canonical type (cast to it unless it is of it
already), so its bytes have one layout whatever the source type was. Decimals of up to 18 digits
travel as PostgreSQL's base-10000 digits; wider ones as text, which pyarrow casts exactly.
"""

import re
import threading
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from liftshift import fingerprint as fp
from liftshift import pgkernels as pk
from liftshift.connectors.base import Column, Table
from liftshift.errors import SourceReadError
from liftshift.types import Canonical as C

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_DAYS_1970_TO_2000 = 10_957  # PostgreSQL counts dates and timestamps from 2000-01-01
_MICROS_1970_TO_2000 = _DAYS_1970_TO_2000 * 86_400 * 1_000_000
_MICROS_PER_DAY = 86_400 * 1_000_000
_INT64_DIGITS = 18  # decimals this wide fit an int64 unscaled
_THREAD = threading.local()
# Values narrower than 64 bits: the walk's int64 is cut to their bits, then read as their type.
_NARROW = {
    C.INT16: (np.uint16, np.int16), C.INT32: (np.uint32, np.int32), C.FLOAT32: (np.uint32, np.float32),
    C.DATE: (np.uint32, np.int32),
}  # fmt: skip

# Canonical type: (wire type, bytes of a value; 0 when variable).
_WIRE = {
    C.INT16: ("int2", 2), C.INT32: ("int4", 4), C.INT64: ("int8", 8), C.FLOAT32: ("float4", 4),
    C.FLOAT64: ("float8", 8), C.BOOL: ("bool", 1), C.DATE: ("date", 4), C.TIME: ("time", 8),
    C.TIMESTAMP: ("timestamp", 8), C.TIMESTAMPTZ: ("timestamptz", 8), C.STRING: ("text", 0),
    C.JSON: ("text", 0), C.BYTES: ("bytea", 0),
}  # fmt: skip


# Source types (format_type, typmod left out) whose binary form is their wire type's: a column of one
# is selected bare. Why: a cast, even one that changes nothing, is an expression PostgreSQL evaluates
# for every row before COPY sends it (~0.1 CPU-s per 5M rows of the transfer benchmark, 5% of the
# server's work); bare columns are passed on as the scan read them.
_SENT_AS_IS = {
    "smallint": "int2", "integer": "int4", "bigint": "int8", "real": "float4", "double precision": "float8",
    "boolean": "bool", "date": "date", "time without time zone": "time",
    "timestamp without time zone": "timestamp", "timestamp with time zone": "timestamptz",
    "text": "text", "character varying": "text", "bytea": "bytea", "numeric": "numeric",
}  # fmt: skip


def projection(column: Column) -> str:
    """How a column is selected: its canonical value (the cast fingerprints hash) as its wire type."""
    value = fp.canonical_value("postgres", column)
    if column.canonical is C.JSON:
        return f"{value}::jsonb::text"  # jsonb's key order and spacing: the text that is hashed
    if _sent_as_is(column):
        return value
    return f"CAST({value} AS {_wire_type(column)})"


def _sent_as_is(column: Column) -> bool:
    """Whether the column is a built-in type whose binary form is its wire type's, read without a cast."""
    pg = column.pg_type
    if column.mapping.cast or pg is None or pg.kind != "b" or not pg.builtin:
        return False
    return _SENT_AS_IS.get(re.sub(r"\(\d+(,\d+)?\)", "", pg.name)) == _wire_type(column)


def _wire_type(column: Column) -> str:
    if column.canonical is C.DECIMAL:
        return "numeric" if _digits_fit(column.arrow_type()) else "text"
    return _WIRE[column.canonical][0]


def _digits_fit(arrow: pa.DataType) -> bool:
    return isinstance(arrow, pa.Decimal128Type) and arrow.precision <= _INT64_DIGITS


def _width(column: Column) -> int:
    return 0 if column.canonical is C.DECIMAL else _WIRE[column.canonical][1]


def decode(data: bytes | bytearray | memoryview, table: Table) -> pa.Table:
    """The rows of a COPY … TO STDOUT (FORMAT binary) of table's projections, in its Arrow schema."""
    if not data:
        return table.arrow_schema().empty_table()
    buf = np.frombuffer(data, np.uint8)
    return _decoded(buf, body_start(data), buf.size, False, table)


def decode_messages(reply: memoryview, first: int, table: Table) -> pa.Table:
    """The rows of a binary COPY as the server sent them, in messages (liftshift.pgwire): its CopyData
    messages from the one at first on. Each holds one row, as the protocol promises; the first also
    starts with the COPY's header, or is the header alone."""
    buf = np.frombuffer(reply, np.uint8)
    payload, end = first + 5, first + 1 + int.from_bytes(reply[first + 1 : first + 5], "big")
    start = payload + body_start(reply[payload:end])
    if start > end or end > buf.size:
        raise SourceReadError(f"the binary COPY of {table.name} is cut short or malformed; run it again")
    return _decoded(buf, start, end, True, table)


def _decoded(buf: np.ndarray, start: int, until: int, framed: bool, table: Table) -> pa.Table:
    """The rows from start on (see pgkernels.walk for until and framed), in the table's Arrow schema."""
    widths = np.array([_width(c) for c in table.columns], np.int64)
    values, nulls = _scratch(widths.size, max(buf.size - start, 0) // (2 + 4 * widths.size) + 1)
    rows = pk.walk(buf, start, until, framed, widths, values, nulls)
    if rows < 0:
        raise SourceReadError(f"the binary COPY of {table.name} is cut short or malformed; run it again")
    arrays = [_column(buf, values[i, :rows], nulls[i, :rows], c) for i, c in enumerate(table.columns)]
    return pa.Table.from_arrays(arrays, schema=table.arrow_schema())


def _scratch(fields: int, most: int) -> tuple[np.ndarray, np.ndarray]:
    """This thread's arrays for the walk's values and NULL flags, at least fields × most, reused.

    Why reuse: the walk's values take 8 bytes per field and row, ~40 MB per chunk, which fresh
    memory the kernel would map and zero page by page for every chunk. Each column's array is
    computed or copied from them, so no decoded table points into them.
    """
    values: np.ndarray | None = getattr(_THREAD, "values", None)
    if values is None or values.shape[0] < fields or values.shape[1] < most:
        shape = (max(fields, 0 if values is None else values.shape[0]), most)
        values = _THREAD.values = np.empty(shape, np.int64)  # pages past the rows are never touched
        _THREAD.nulls = np.empty(shape, np.bool_)
    return values[:fields], _THREAD.nulls[:fields]


def body_start(data: bytes | bytearray | memoryview) -> int:
    """Where the first row starts: after the signature, the flags and the header extension."""
    if data[: len(_SIGNATURE)] != _SIGNATURE:
        raise SourceReadError("PostgreSQL's output is not a binary COPY")
    extension = int.from_bytes(data[len(_SIGNATURE) + 4 : len(_SIGNATURE) + 8], "big")
    return len(_SIGNATURE) + 8 + extension


def _column(buf: np.ndarray, values: np.ndarray, nulls: np.ndarray, column: Column) -> pa.Array:
    """One column's Arrow array from the walk's values (or offsets) and NULL flags."""
    arrow = column.arrow_type()
    valid = pa.py_buffer(np.packbits(~nulls, bitorder="little")) if nulls.any() else None
    if _width(column) == 0:
        if column.canonical is C.DECIMAL and _digits_fit(arrow):
            return _decimal(buf, values, nulls, valid, column, arrow)
        return _variable(buf, values, nulls, valid, column, arrow)
    fixed = _fixed_values(values, nulls, column)
    if column.canonical is C.BOOL:
        bits = np.packbits(fixed != 0, bitorder="little")
        return pa.Array.from_buffers(arrow, len(values), [valid, pa.py_buffer(bits)])
    return pa.Array.from_buffers(arrow, len(values), [valid, pa.py_buffer(fixed)])


def _fixed_values(values: np.ndarray, nulls: np.ndarray, column: Column) -> np.ndarray:
    """A fixed-width column's values in Arrow's representation (the walk gives raw bits as int64)."""
    kind = column.canonical
    if kind in _NARROW:
        bits, as_type = _NARROW[kind]
        narrow = values.astype(bits).view(as_type)
        if kind is C.DATE:
            _refuse(column, nulls, (narrow == np.iinfo(np.int32).max) | (narrow == np.iinfo(np.int32).min),
                    "±infinity")  # fmt: skip
            return narrow + np.int32(_DAYS_1970_TO_2000)
        return narrow
    if kind in (C.TIMESTAMP, C.TIMESTAMPTZ):
        infinite = (values == np.iinfo(np.int64).max) | (values == np.iinfo(np.int64).min)
        _refuse(column, nulls, infinite, "±infinity")
        return values + np.int64(_MICROS_1970_TO_2000)
    if kind is C.TIME:
        _refuse(column, nulls, values >= _MICROS_PER_DAY, "the time 24:00:00")
    # Copies: the walk's arrays are reused for the next chunk.
    return values.view(np.float64).copy() if kind is C.FLOAT64 else values.copy()


def _refuse(column: Column, nulls: np.ndarray, bad: np.ndarray, what: str) -> None:
    if (bad & ~nulls).any():
        raise SourceReadError(
            f"column {column.name} holds {what}, which Arrow cannot hold; run assess to find the rows"
        )


def _variable(
    buf: np.ndarray, values: np.ndarray, nulls: np.ndarray, valid: Any, column: Column, target: pa.DataType
) -> pa.Array:
    """Text, JSON, bytea, and decimals too wide for the int64 kernel (as text, then cast exactly)."""
    offsets, payload = pk.gather(buf, values, nulls)
    binary = column.canonical is C.BYTES
    wide = offsets[-1] > np.iinfo(np.int32).max  # over 2 GiB in one chunk: 64-bit offsets
    if wide:
        arrow = pa.large_binary() if binary else pa.large_string()
    else:
        arrow, offsets = (pa.binary() if binary else pa.string()), offsets.astype(np.int32)
    array = pa.Array.from_buffers(arrow, len(values), [valid, pa.py_buffer(offsets), pa.py_buffer(payload)])
    if not binary:
        try:
            array.validate(full=True)  # UTF-8: a SQL_ASCII database stores any bytes
        except pa.ArrowInvalid as exc:
            raise SourceReadError(f"column {column.name} holds text that is not UTF-8: {exc}") from None
    if column.canonical is C.DECIMAL:
        try:
            return pc.cast(array, target)
        except pa.ArrowInvalid as exc:
            raise SourceReadError(f"column {column.name} holds a value {target} cannot hold: {exc}") from None
    return array.cast(target) if wide else array


def _decimal(
    buf: np.ndarray, values: np.ndarray, nulls: np.ndarray, valid: Any, column: Column,
    arrow: pa.Decimal128Type,
) -> pa.Array:  # fmt: skip
    """A decimal of up to 18 digits, decoded from PostgreSQL's base-10000 digits."""
    unscaled, bad = pk.numeric(buf, values, nulls, arrow.scale, 10**arrow.precision)
    if bad == pk.MALFORMED:
        raise SourceReadError(f"the binary COPY of column {column.name} is malformed; run it again")
    if bad >= 0:
        raise SourceReadError(
            f"column {column.name} holds a value {arrow} cannot hold (NaN, ±Infinity, or more digits); "
            "run assess to find the rows"
        )
    words = np.empty((len(values), 2), np.int64)  # decimal128: little-endian low word, then high
    words[:, 0] = unscaled
    words[:, 1] = unscaled >> 63
    return pa.Array.from_buffers(arrow, len(values), [valid, pa.py_buffer(words)])
