"""The numba kernels that parse PostgreSQL's binary COPY bytes (liftshift.pgbinary decodes with them).

numba compiles them on first use (~3 s) and caches the machine code.
"""

import numba
import numpy as np
from numba.core.unsafe.bytes import memcpy_region

NULL = 0xFFFFFFFF  # a field length that marks a NULL
MALFORMED = -2  # numeric's answer when a value's bytes are not a NUMERIC


# The kernels index with unsigned integers: a signed index makes numba add a branch for negative
# indices (from the end) to every access, which halved the walk's speed.
@numba.njit(cache=True, nogil=True, inline="always")
def u8(buf: np.ndarray, pos: int) -> np.int64:
    """The byte at pos."""
    return np.int64(buf[np.uint64(pos)])


@numba.njit(cache=True, nogil=True, inline="always")
def u16(buf: np.ndarray, pos: int) -> np.int64:
    """The big-endian unsigned 16-bit integer at pos."""
    return (u8(buf, pos) << 8) | u8(buf, pos + 1)


@numba.njit(cache=True, nogil=True, inline="always")
def u32(buf: np.ndarray, pos: int) -> int:
    """The big-endian unsigned 32-bit integer at pos."""
    return int((u16(buf, pos) << 16) | u16(buf, pos + 2))


@numba.njit(cache=True, nogil=True, inline="always")
def bits(buf: np.ndarray, pos: int, width: int) -> int:
    """The big-endian value of width (8, 4, 2 or 1) bytes at pos, as int64 bits."""
    if width == 8:
        return int((np.int64(u32(buf, pos)) << 32) | np.int64(u32(buf, pos + 4)))
    if width == 4:
        return u32(buf, pos)
    if width == 2:
        return int(u16(buf, pos))
    return int(u8(buf, pos))


@numba.njit(cache=True, nogil=True, inline="always")
def next_data(buf: np.ndarray, pos: int) -> tuple[int, int]:
    """Where the payload of the CopyData message at pos (or after notices there) starts and ends;
    (-1, -1) if none does. Why skip notices: the server may send them at any time."""
    while pos + 5 <= buf.size:
        end = pos + 1 + u32(buf, pos + 1)
        if end < pos + 5 or end > buf.size:
            return -1, -1
        kind = u8(buf, pos)
        if kind == 0x64:  # 'd'
            return pos + 5, end
        if kind != 0x4E and kind != 0x53:  # not 'N' (notice) or 'S' (parameter status)
            return -1, -1
        pos = end
    return -1, -1


@numba.njit(cache=True, nogil=True)
def walk(
    buf: np.ndarray, pos: int, until: int, framed: bool, widths: np.ndarray, values: np.ndarray,
    nulls: np.ndarray,
) -> int:  # fmt: skip
    """Fills values and nulls per field and row: a fixed-width value's big-endian bits, or a
    variable value's offset; and whether it is NULL. Returns the rows before the trailer, or -1
    if a length leaves the data (cut short or malformed).

    Rows run until `until`: the buffer's end, or if framed, the end of the CopyData message pos is
    in, where they go on in the next message. One pass, so the row count is not known before it:
    the arrays have room for the most rows the buffer could hold (every field NULL).
    """
    fields = widths.size
    rows = 0
    while True:
        if framed and pos == until:
            pos, until = next_data(buf, pos)
            if pos < 0:
                return -1
        if pos + 2 > until:
            return -1
        count = u16(buf, pos)
        if count != fields:
            return rows if count == 0xFFFF and pos + 2 == until else -1  # the trailer, or malformed
        if rows == values.shape[1]:
            return -1
        pos += 2
        row = np.uint64(rows)
        for f in range(fields):
            field = np.uint64(f)
            if pos + 4 > until:
                return -1
            length = u32(buf, pos)
            pos += 4
            nulls[field, row] = length == NULL
            if length == NULL:
                values[field, row] = 0  # the reused array holds the last chunk's values
                continue
            width = widths[field]
            if pos + length > until or (width > 0 and length != width):
                return -1
            values[field, row] = pos if width == 0 else bits(buf, pos, width)
            pos += length
        rows += 1


@numba.njit(cache=True, nogil=True)
def gather(buf: np.ndarray, starts: np.ndarray, nulls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A variable-width column's values laid end to end, and their offsets."""
    rows = starts.size
    offsets = np.zeros(rows + 1, np.int64)
    for r in range(rows):
        offsets[r + 1] = offsets[r] + (0 if nulls[r] else u32(buf, starts[r] - 4))
    payload = np.empty(offsets[rows], np.uint8)
    # memcpy, not a loop over bytes: half the time for the benchmark's text (the walk checked the bounds).
    # mypy sees the intrinsic's Python signature, which starts with numba's typing context.
    for r in range(rows):
        size = offsets[r + 1] - offsets[r]
        memcpy_region(payload.ctypes, offsets[r], buf.ctypes, starts[r], size, 1)  # type: ignore[call-arg]
    return offsets, payload


@numba.njit(cache=True, nogil=True, inline="always")
def grow(value: np.int64, times: int | np.int64, add: int | np.int64, limit: int) -> np.int64:
    """value * times + add if that is below limit, else -1 (value -1 stays -1); never overflows."""
    if value < 0 or value > (limit - 1 - add) // times:
        return np.int64(-1)
    return np.int64(value * times + add)


@numba.njit(cache=True, nogil=True)
def numeric(
    buf: np.ndarray, starts: np.ndarray, nulls: np.ndarray, scale: int, limit: int
) -> tuple[np.ndarray, int]:
    """NUMERIC values as int64 unscaled by 10^scale, and -1; or the first row that does not fit,
    or MALFORMED if a value's bytes are not a NUMERIC.

    A value is ndigits, weight, sign, dscale (int16 each), then ndigits base-10000 digits: digit i
    is worth 10000^(weight - i), so scaled by 10^scale it is worth 10^(4 * (weight - i) + scale).
    """
    out = np.zeros(starts.size, np.int64)
    for r in range(starts.size):
        if nulls[r]:
            continue
        at = starts[r]
        length = u32(buf, at - 4)
        if length < 8 or length != 8 + 2 * u16(buf, at):
            return out, MALFORMED
        ndigits = (length - 8) // 2
        weight = u16(buf, at + 2)
        weight = weight - 65536 if weight >= 32768 else weight
        sign = u16(buf, at + 4)
        if sign != 0 and sign != 0x4000:  # NaN, +Infinity, -Infinity
            return out, r
        value, power = np.int64(0), 4 * weight + scale
        for i in range(ndigits):
            digit = u16(buf, at + 8 + 2 * i)
            if digit > 9999:
                return out, MALFORMED
            if power >= 0:
                value = grow(value, 10000, digit, limit)
            elif power > -4:  # the digit straddles the scale: its low places must be zeros
                cut = 10 ** (-power)
                value = grow(value, 10000 // cut, digit // cut, limit) if digit % cut == 0 else np.int64(-1)
            elif digit != 0:
                value = np.int64(-1)
            if value < 0:
                return out, r
            power -= 4
        # power is now that of the digit after the last: scale the last one up to 10^0
        for _ in range(power + 4):
            value = grow(value, 10, 0, limit)
            if value < 0:  # past 10^18 every value but 0 has reached the limit: stop early
                break
        if value < 0:
            return out, r
        out[r] = -value if sign == 0x4000 else value
    return out, -1
