"""The canonical text of an Arrow chunk's rows (liftshift.fingerprint), built by numba kernels.

Why not DuckDB's SQL for it, as before: a chunk bound for BigQuery or PostgreSQL is proved by the
canonical row hash over its Arrow data, and DuckDB's SQL for the hash took 0.70-0.77 CPU-s per 1M
rows of the transfer benchmark table, ~0.5 of it building the text (printf of hex digits, a regular
expression per decimal, a string per column and row). These kernels write each column's text in one
pass and join the rows (~0.25), and DuckDB hashes them (~0.26): 0.5 in all. A column of a kind or
Arrow type they do not know (JSON, decimals wider than 18 digits) has its text built by DuckDB's
SQL, as before. The tests hold both to the same bytes, row by row.
"""

import duckdb
import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numba.core.unsafe.bytes import memcpy_region

from liftshift import fingerprint as fp
from liftshift.connectors.base import Column
from liftshift.types import Canonical as C

_INT64_DIGITS = 18  # decimals this wide hold their unscaled value in the low word of decimal128


# The kinds of fixed-width text _fixed writes.
_NUMBER, _HEX64, _FLOAT, _BOOL = range(4)
_WIDEST = np.array([22, 16, 16, 1])  # by kind: sign, 19 digits, point, a leading 0; hex; hex; t or f


@numba.njit(cache=True, nogil=True, inline="always")
def _digits(out: np.ndarray, pos: int, value: int, scale: int, digits: np.ndarray) -> int:
    """Write an integer, or with scale > 0 a decimal's unscaled value, as canonical decimal text:
    no trailing fractional zeros, no point without a fraction, '0' before a bare fraction.
    digits: room for 20, the caller's (an array per value costs more than the rest)."""
    magnitude = np.uint64(-value) if value < 0 else np.uint64(value)  # -2**63 has no int64 opposite
    count = 0
    while magnitude > 0 or count <= scale:
        digits[count] = ord("0") + np.uint8(magnitude % np.uint64(10))
        magnitude //= np.uint64(10)
        count += 1
    skip = 0
    while skip < scale and digits[skip] == ord("0"):
        skip += 1
    if value < 0:
        out[pos] = ord("-")
        pos += 1
    for i in range(count - 1, skip - 1, -1):
        if i == scale - 1:
            out[pos] = ord(".")
            pos += 1
        out[pos] = digits[i]
        pos += 1
    return pos


@numba.njit(cache=True, nogil=True, inline="always")
def _hex(out: np.ndarray, pos: int, bits: int, width: int) -> int:
    """Write the low 4 * width bits as width lower-case hex digits."""
    word = np.uint64(bits)
    for i in range(width):
        nibble = np.uint8(word & np.uint64(15))
        out[pos + width - 1 - i] = nibble + (ord("0") if nibble < 10 else ord("a") - 10)
        word >>= np.uint64(4)
    return pos + width


@numba.njit(cache=True, nogil=True, inline="always")
def _marker(out: np.ndarray, pos: int, lead: int, valid: bool) -> int:
    """Write the column's lead (0: none) and '1' for a value or '0' for NULL."""
    if lead:
        out[pos] = lead
        pos += 1
    out[pos] = ord("1") if valid else ord("0")
    return pos + 1


@numba.njit(cache=True, nogil=True)
def _fixed(
    kind: int, param: int, values: np.ndarray, valid: np.ndarray, lead: int
) -> tuple[np.ndarray, np.ndarray]:
    """A column of int64 values (numbers, hex, float bits, booleans) as canonical text per row."""
    rows = values.size
    offsets = np.zeros(rows + 1, np.int64)
    out = np.empty(rows * (2 + _WIDEST[kind]), np.uint8)
    digits = np.empty(20, np.uint8)
    pos = 0
    for r in range(rows):
        pos = _marker(out, pos, lead, valid[r])
        if not valid[r]:
            pass
        elif kind == _NUMBER:
            pos = _digits(out, pos, values[r], param, digits)
        elif kind == _HEX64:
            pos = _hex(out, pos, values[r] - param, 16)
        elif kind == _BOOL:
            out[pos] = ord("t") if values[r] else ord("f")
            pos += 1
        elif (values[r] >> 52) & 0x7FF == 0x7FF and values[r] & 0xFFFFFFFFFFFFF != 0:  # NaN, any payload
            out[pos], out[pos + 1], out[pos + 2] = ord("N"), ord("a"), ord("N")
            pos += 3
        else:  # a float's bits
            pos = _hex(out, pos, values[r], 16)
        offsets[r + 1] = pos
    return offsets, out[:pos]


@numba.njit(cache=True, nogil=True)
def _bytes(
    starts: np.ndarray, data: np.ndarray, valid: np.ndarray, lead: int, hexed: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Strings as their bytes, or (hexed) bytes as lower-case hex; starts: Arrow's offsets."""
    rows = starts.size - 1
    offsets = np.zeros(rows + 1, np.int64)
    out = np.empty(rows * 2 + (2 if hexed else 1) * (starts[rows] - starts[0]), np.uint8)
    pos = 0
    for r in range(rows):
        pos = _marker(out, pos, lead, valid[r])
        if valid[r] and hexed:
            for i in range(starts[r], starts[r + 1]):
                pos = _hex(out, pos, data[i], 2)
        elif valid[r]:
            size = starts[r + 1] - starts[r]
            memcpy_region(out.ctypes, pos, data.ctypes, starts[r], size, 1)  # type: ignore[call-arg]
            pos += size
        offsets[r + 1] = pos
    return offsets, out[:pos]


@numba.njit(cache=True, nogil=True)
def _join(starts: np.ndarray, texts: np.ndarray) -> np.ndarray:
    """Each row's texts of the columns, one after another. starts: a row of offsets per column
    into texts, all the columns' texts end to end."""
    columns, rows = starts.shape[0], starts.shape[1] - 1
    out = np.empty(texts.size, np.uint8)
    pos = 0
    for r in range(rows):
        for c in range(columns):
            size = starts[c, r + 1] - starts[c, r]
            memcpy_region(out.ctypes, pos, texts.ctypes, starts[c, r], size, 1)  # type: ignore[call-arg]
            pos += size
    return out


def row_texts(
    conn: duckdb.DuckDBPyConnection, columns: tuple[Column, ...], data: pa.Table, bigquery_json: bool
) -> pa.Array:
    """Each row's canonical text (fingerprint.row_hash before the hash), as a large_string array.

    conn has data registered as liftshift_chunk: it builds the text of the columns no kernel
    here knows (bigquery_json: see fingerprint.canonical_text).
    """
    texts = [
        _text(c, data.column(c.name).combine_chunks(), ord(fp.SEPARATOR) if i else 0)
        for i, c in enumerate(columns)
    ]
    missing = [i for i, text in enumerate(texts) if text is None]
    if missing:
        sql = [
            fp.canonical_text("duckdb", columns[i], fp.SEPARATOR if i else "", bigquery_json) for i in missing
        ]
        built = conn.sql(f"SELECT {', '.join(sql)} FROM liftshift_chunk").to_arrow_table()
        for i, text in zip(missing, built.columns, strict=True):
            texts[i] = _payload(text.combine_chunks())
    rows, starts, base = data.num_rows, np.empty((len(columns), data.num_rows + 1), np.int64), 0
    for i, (offsets, _) in enumerate(filter(None, texts)):
        starts[i] = offsets - offsets[0] + base
        base += int(offsets[-1] - offsets[0])
    joined = np.concatenate([text[offsets[0] : offsets[-1]] for offsets, text in filter(None, texts)])
    offsets = np.zeros(rows + 1, np.int64)
    offsets[1:] = np.sum(np.diff(starts, axis=1), axis=0).cumsum()
    return pa.LargeStringArray.from_buffers(rows, pa.py_buffer(offsets), pa.py_buffer(_join(starts, joined)))


def _text(column: Column, array: pa.Array, lead: int) -> tuple[np.ndarray, np.ndarray] | None:
    """A column's canonical text per row (offsets, bytes), or None when no kernel here knows its
    kind and Arrow type."""
    kind, arrow = column.canonical, array.type
    valid = pc.is_valid(array).to_numpy(zero_copy_only=False)
    laid = _laid_out(kind, array)
    if laid is not None:
        return _fixed(laid[0], laid[1], laid[2], valid, lead)
    if kind is C.STRING and (pa.types.is_string(arrow) or pa.types.is_large_string(arrow)):
        return _bytes(*_payload(array), valid, lead, False)
    if kind is C.BYTES and (pa.types.is_binary(arrow) or pa.types.is_large_binary(arrow)):
        return _bytes(*_payload(array), valid, lead, True)
    return None


def _laid_out(kind: C, array: pa.Array) -> tuple[int, int, np.ndarray] | None:
    """A fixed-width column for _fixed: its kind there, scale or shift, and values as int64."""
    arrow = array.type
    if kind in (C.INT16, C.INT32, C.INT64) and pa.types.is_signed_integer(arrow):
        return _NUMBER, 0, _values(array, arrow.to_pandas_dtype()).astype(np.int64)
    if kind is C.DATE and pa.types.is_date32(arrow):  # days since 1970-01-01
        return _NUMBER, 0, _values(array, np.int32).astype(np.int64)
    if (
        kind is C.DECIMAL
        and pa.types.is_decimal128(arrow)
        and 0 <= arrow.scale <= arrow.precision <= _INT64_DIGITS
    ):
        return _NUMBER, arrow.scale, _values(array, np.int64, 2)[::2].copy()  # the low words
    if kind in (C.FLOAT32, C.FLOAT64) and pa.types.is_floating(arrow):
        floats = _values(array, arrow.to_pandas_dtype()).astype(np.float64)  # float4 widened, exactly
        return _FLOAT, 0, floats.view(np.int64)
    if kind is C.BOOL and pa.types.is_boolean(arrow):
        return _BOOL, 0, pc.fill_null(array, False).to_numpy(zero_copy_only=False).astype(np.int64)
    if kind is C.TIME and arrow == pa.time64("us"):
        return _HEX64, 0, _values(array, np.int64)
    if kind in (C.TIMESTAMP, C.TIMESTAMPTZ) and pa.types.is_timestamp(arrow) and arrow.unit == "us":
        return _HEX64, fp.Y2K_MICROS, _values(array, np.int64)
    return None


def _values(array: pa.Array, dtype: type, per_value: int = 1) -> np.ndarray:
    """The array's value buffer as numpy (values under NULLs are whatever the buffer holds)."""
    buffer = array.buffers()[1]
    if buffer is None:
        return np.zeros(len(array) * per_value, dtype)
    values: np.ndarray = np.frombuffer(buffer, dtype)
    return values[array.offset * per_value : (array.offset + len(array)) * per_value]


def _payload(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A string or binary array's offsets (as int64) and its bytes."""
    large = pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type)
    offsets = np.frombuffer(array.buffers()[1], np.int64 if large else np.int32)
    starts = offsets[array.offset : array.offset + len(array) + 1].astype(np.int64)
    data = array.buffers()[2]
    return starts, np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
