"""Fingerprint SQL that gives the same 64-bit row hashes in PostgreSQL, BigQuery and DuckDB.

A row's hash is the first 64 bits of MD5 over its canonical text in UTF-8: for each column '0' when NULL,
else '1' followed by the value's canonical text, columns joined by '|'. Canonical text: integers in
decimal; decimals without trailing fractional zeros; floats as the 16 lower-case hex digits of their
IEEE-754 binary64 bits, or NaN; booleans t/f; strings as they are; bytes as lower-case hex; dates as
days since 1970-01-01; times and timestamps as the 16 hex digits of their microseconds since
midnight or since 2000-01-01 (in UTC for an instant); JSON as compact text. In PostgreSQL a column's
cast (liftshift.types.Mapping.cast) is applied first, as the COPY that reads it does.
A range's checksum is the sum of its rows' hashes modulo 2**64: BigQuery sums the two 32-bit halves
separately so neither overflows; PostgreSQL sums the 64 bits as one signed int8, exactly (in
numeric), and DuckDB as one unsigned, in a HUGEINT: the same sum modulo 2**64. combine() folds any
of them into it.
All three rule sets live in this one file because they must agree: change them together.
"""

from decimal import Decimal

import pyarrow as pa

from liftshift.connectors.base import Chunk, Column, CtidRange, Fingerprint, KeyRange
from liftshift.types import Canonical as C

# Which canonical text checksums were made with: stored with each validation, so monitor never
# compares checksums of two formats. 2: floats and timestamps in hex, columns joined by '|'. 3: DuckDB
# compacts JSON text as PostgreSQL does, rather than re-printing it (2.50 stays 2.50).
CANONICAL_VERSION = 3

_TRIM_ZEROS = "REGEXP_REPLACE(REGEXP_REPLACE({t}, {q}(\\.\\d*?)0+$', {q}\\1'), {q}\\.$', '')"
# One pass: a fraction's trailing zeros go, and the point with them when nothing else is left of it
# (text without a point, a scale-0 decimal's, is left alone). ~40% cheaper in DuckDB than two passes.
_DUCK_TRIM_ZEROS = "REGEXP_REPLACE(CAST({c} AS VARCHAR), '(\\.\\d*[1-9])0+$|\\.0+$', '\\1')"
# JSON text without the whitespace outside strings. DuckDB holds PostgreSQL's jsonb text as it is, so
# both compact that text; json() would print 2.50 as 2.5, and tell an exact copy from its source.
_JSON_COMPACT = "regexp_replace({text}, '(\"(?:[^\"\\\\]|\\\\.)*\")|\\s+', '\\1', 'g')"
# A chunk bound for BigQuery is hashed as BigQuery will hold it: its JSON type re-prints numbers
# (2.50 as 2.5), a loss assess reports, which DuckDB's json() re-prints alike.
_DUCK_JSON_AS_BIGQUERY = "CAST(json({c}) AS VARCHAR)"
# Floats as the 16 hex digits of their IEEE-754 binary64 bits (float4 widened first), NaN as 'NaN'
# (its payload is not data). Exact, keeps -0 and ±Infinity, and in PostgreSQL a seventh of the cost
# of printing 17 digits, which was the dearest text of a row. BigQuery cannot see a float's bits, so
# it computes them: the exponent from LOG, corrected by one where LOG rounded across a power of two,
# then the fraction, exact because scaling by a power of two is; sign and exponent print as 3 hex
# digits, the fraction as 13, so no INT64 ever holds the sign bit.
_PG_FLOAT = "CASE WHEN {c}::float8 = 'NaN' THEN 'NaN' ELSE encode(float8send({c}::float8), 'hex') END"
_DUCK_FLOAT = (
    "CASE WHEN isnan({c}) THEN 'NaN' ELSE printf('%016x', CAST(CAST({c}::DOUBLE AS BIT) AS UBIGINT)) END"
)
_BQ_ABS = "ABS({c})"
# At most 1023: LOG(x, 2) of the largest doubles rounds to 1024, and POW(2, 1024) overflows.
_BQ_E0 = f"LEAST(CAST(FLOOR(LOG({_BQ_ABS}, 2)) AS INT64), 1023)"
_BQ_M0 = f"({_BQ_ABS} / POW(2.0, {_BQ_E0}))"
_BQ_EXP = f"({_BQ_E0} + CASE WHEN {_BQ_M0} >= 2 THEN 1 WHEN {_BQ_M0} < 1 THEN -1 ELSE 0 END)"
_BQ_BITS = "FORMAT('%03x%013x', IF({{c}} < 0, 2048, 0) + {field}, CAST({fraction} * POW(2.0, 52) AS INT64))"
_BQ_NORMAL = _BQ_BITS.format(field=f"{_BQ_EXP} + 1023", fraction=f"({_BQ_ABS} / POW(2.0, {_BQ_EXP}) - 1)")
# Below 2**-1022 a float is subnormal: its exponent field is 0, its fraction has no leading 1.
_BQ_SUBNORMAL = _BQ_BITS.format(field=0, fraction=f"{_BQ_ABS} * POW(2.0, 1022)")
_BQ_FLOAT = (
    "CASE WHEN IS_NAN({c}) THEN 'NaN' WHEN {c} = CAST('inf' AS FLOAT64) THEN '7ff0000000000000' "
    "WHEN {c} = CAST('-inf' AS FLOAT64) THEN 'fff0000000000000' "
    "WHEN {c} = 0 THEN IF(IEEE_DIVIDE(1, {c}) < 0, '8000000000000000', '0000000000000000') "
    f"WHEN {_BQ_ABS} < 2.2250738585072014e-308 THEN {_BQ_SUBNORMAL} ELSE {_BQ_NORMAL} END"
)
# Times and timestamps as the 16 hex digits of their microseconds (two's complement) since midnight,
# or since 2000-01-01 00:00 (UTC for an instant): PostgreSQL's own binary form, a third of the cost of
# printing the epoch's microseconds in decimal.
_Y2K_MICROS = 946684800000000
_DUCK_HEX64 = "printf('%016x', CAST(CAST({v} AS BIT) AS UBIGINT))"
_BQ_HEX64 = "FORMAT('%08x%08x', ({v} >> 32) & 0xFFFFFFFF, ({v}) & 0xFFFFFFFF)"
_INTS = (C.INT16, C.INT32, C.INT64)

_RULES: dict[str, dict[C, str]] = {
    "postgres": {
        **{k: "{c}::text" for k in _INTS},
        C.DECIMAL: "trim_scale({c})::text",
        C.FLOAT32: _PG_FLOAT, C.FLOAT64: _PG_FLOAT,
        C.BOOL: "CASE WHEN {c} THEN 't' ELSE 'f' END",
        C.STRING: "{c}::text",
        C.BYTES: "encode({c}, 'hex')",
        C.DATE: "({c} - DATE '1970-01-01')::text",
        C.TIME: "encode(time_send({c}), 'hex')",
        C.TIMESTAMP: "encode(timestamp_send({c}), 'hex')",
        C.TIMESTAMPTZ: "encode(timestamptz_send({c}), 'hex')",
        C.JSON: _JSON_COMPACT.format(text="{c}::jsonb::text"),
    },
    "bigquery": {
        **{k: "CAST({c} AS STRING)" for k in _INTS},
        C.DECIMAL: _TRIM_ZEROS.format(t="CAST({c} AS STRING)", q="r'"),
        C.FLOAT32: _BQ_FLOAT, C.FLOAT64: _BQ_FLOAT,
        C.BOOL: "IF({c}, 't', 'f')",
        C.STRING: "{c}",
        C.BYTES: "TO_HEX({c})",
        C.DATE: "CAST(UNIX_DATE({c}) AS STRING)",
        C.TIME: _BQ_HEX64.format(v="TIME_DIFF({c}, TIME '00:00:00', MICROSECOND)"),
        C.TIMESTAMP: _BQ_HEX64.format(v="DATETIME_DIFF({c}, DATETIME '2000-01-01', MICROSECOND)"),
        C.TIMESTAMPTZ: _BQ_HEX64.format(v=f"(UNIX_MICROS({{c}}) - {_Y2K_MICROS})"),
        C.JSON: "TO_JSON_STRING({c})",
    },
    "duckdb": {
        **{k: "CAST({c} AS VARCHAR)" for k in _INTS},
        C.DECIMAL: _DUCK_TRIM_ZEROS,
        C.FLOAT32: _DUCK_FLOAT, C.FLOAT64: _DUCK_FLOAT,
        C.BOOL: "CASE WHEN {c} THEN 't' ELSE 'f' END",
        C.STRING: "{c}",
        C.BYTES: "lower(hex({c}))",
        C.DATE: "CAST({c} - DATE '1970-01-01' AS VARCHAR)",
        C.TIME: _DUCK_HEX64.format(v="epoch_us({c})"),
        C.TIMESTAMP: _DUCK_HEX64.format(v=f"epoch_us({{c}}) - {_Y2K_MICROS}"),
        C.TIMESTAMPTZ: _DUCK_HEX64.format(v=f"epoch_us({{c}}) - {_Y2K_MICROS}"),
        C.JSON: _JSON_COMPACT.format(text="CAST({c} AS VARCHAR)"),
    },
}  # fmt: skip

# One byte, printable (the local BigQuery endpoint's MD5 mishashes strings with control characters).
# MD5 works in 64-byte blocks and is a third of a row's hashing cost in every engine: the 3 bytes of
# U+241F, used before, made the benchmark's rows a block longer. Like any separator left unescaped,
# it lets two rows share a text only if their strings hold '|0' or '|1' placed to line up exactly.
_SEPARATOR = "|"
# PostgreSQL's md5(text) hashes the database encoding's bytes, DuckDB's and BigQuery's UTF-8: a database in
# another encoding (LATIN1, …) hashes its row converted to UTF-8. The test runs once per query (an
# InitPlan), so a UTF-8 database is spared convert_to: 8% more CPU per row hash (bench table).
_PG_HASH = (
    "CASE WHEN (SELECT getdatabaseencoding() = 'UTF8') THEN md5({row}) "
    "ELSE md5(convert_to({row}, 'UTF8')) END"
)
_HASH = {
    "postgres": _PG_HASH,
    "bigquery": "TO_HEX(MD5({row}))",
    "duckdb": "md5({row})",
}
# BigQuery sums the hash's two 32-bit halves apart, so neither sum overflows an INT64. PostgreSQL sums
# the 64 bits as one int8 (its sum is exact, in numeric), from one reference to h: PostgreSQL copies
# a subquery's expression into every reference to it, so two halves of an unfenced h would be two
# MD5s of the row. DuckDB sums them unsigned into a 128-bit HUGEINT: one conversion, not two.
_BQ_HALF = "CAST(CONCAT('0x', SUBSTR(h, {start}, 8)) AS INT64)"
_SUMS = {
    "postgres": "0 AS hi, SUM(('x' || substr(h, 1, 16))::bit(64)::int8) AS lo",
    "duckdb": "0 AS hi, SUM(CAST('0x' || substr(h, 1, 16) AS UBIGINT)) AS lo",
    "bigquery": f"SUM({_BQ_HALF.format(start=1)}) AS hi, SUM({_BQ_HALF.format(start=9)}) AS lo",
}
_QUOTE = {"postgres": '"', "bigquery": "`", "duckdb": '"'}


def quote(dialect: str, name: str) -> str:
    """Quote an identifier for the dialect."""
    q = _QUOTE[dialect]
    return f"{q}{name.replace(q, q + q)}{q}"


def canonical_value(dialect: str, column: Column) -> str:
    """SQL for a column's canonical value: in PostgreSQL with the column's cast applied."""
    col = quote(dialect, column.name)
    cast = column.mapping.cast
    return f"({cast.format(c=col)})" if dialect == "postgres" and cast else col


def canonical_text(dialect: str, column: Column, lead: str = "", bigquery_json: bool = False) -> str:
    """SQL for a column's canonical text after lead: '0' for NULL, else '1' and the value's text.
    bigquery_json: DuckDB prints JSON as BigQuery holds it (see _DUCK_JSON_AS_BIGQUERY)."""
    # The cast value is tested, not the column: a composite of NULL fields IS NULL, its JSON is not.
    col = canonical_value(dialect, column)
    rule = _RULES[dialect][column.canonical]
    if bigquery_json and dialect == "duckdb" and column.canonical is C.JSON:
        rule = _DUCK_JSON_AS_BIGQUERY
    value = rule.format(c=col)
    if dialect == "duckdb" and _all_fraction(column):
        # DuckDB prints a DECIMAL(p,p) without its leading zero ('.5000', '-.5000', '.0000').
        value = f"CASE WHEN {col} = 0 THEN '0' ELSE regexp_replace({value}, '^(-?)\\.', '\\10.') END"
    if dialect == "bigquery":
        return f"IF({col} IS NULL, '{lead}0', CONCAT('{lead}1', {value}))"
    return f"(CASE WHEN {col} IS NULL THEN '{lead}0' ELSE '{lead}1' || {value} END)"


def _all_fraction(column: Column) -> bool:
    kind = column.arrow_type() if column.canonical is C.DECIMAL else None
    return isinstance(kind, pa.Decimal128Type | pa.Decimal256Type) and kind.precision == kind.scale


def row_hash(dialect: str, columns: tuple[Column, ...], bigquery_json: bool = False) -> str:
    """SQL for the hex MD5 of a row's canonical text: its columns' texts joined by the separator."""
    # The separator rides in the next column's constants, sparing PostgreSQL a concatenation per
    # column; DuckDB's concat() builds the row in one pass, where each || would make a string.
    leads = [_SEPARATOR if i else "" for i in range(len(columns))]
    parts = [canonical_text(dialect, c, lead, bigquery_json) for c, lead in zip(columns, leads, strict=True)]
    row = " || ".join(parts) if dialect == "postgres" else f"CONCAT({', '.join(parts)})"
    return _HASH[dialect].format(row=row)


def range_predicate(dialect: str, key_range: Chunk) -> str:
    """A WHERE condition selecting a key range or (source only) a ctid range; 'TRUE' for all."""
    if key_range is None:
        return "TRUE"
    if isinstance(key_range, CtidRange):
        return _ctid_predicate(dialect, key_range)
    conds = []
    if (low := key_range.bound(key_range.low)) is not None:
        conds.append(_compare(dialect, key_range, low, ">="))
    if (high := key_range.bound(key_range.high)) is not None:
        conds.append(_compare(dialect, key_range, high, "<"))
    return " AND ".join(conds) or "TRUE"


def _ctid_predicate(dialect: str, pages: CtidRange) -> str:
    if dialect != "postgres":
        raise ValueError("a ctid range selects rows of the PostgreSQL source only")
    conds = [f"ctid >= '({int(pages.low)},0)'::tid"] if pages.low is not None else []
    conds += [f"ctid < '({int(pages.high)},0)'::tid"] if pages.high is not None else []
    return " AND ".join(conds) or "TRUE"


def _compare(dialect: str, key_range: KeyRange, bound: tuple[object, ...], op: str) -> str:
    """key op bound, the key compared column by column as a row value."""
    types = key_range.types or (C.INT64,) * len(key_range.columns)
    cols = [key_expr(dialect, name, kind) for name, kind in zip(key_range.columns, types, strict=True)]
    vals = [literal(dialect, kind, v) for kind, v in zip(types, bound, strict=True)]
    if len(cols) == 1:
        return f"{cols[0]} {op} {vals[0]}"
    if dialect == "postgres":  # a row comparison PostgreSQL can answer from the key's index
        return f"({', '.join(cols)}) {op} ({', '.join(vals)})"
    # BigQuery cannot order STRUCTs: spell the row comparison out, column by column.
    strict = op.rstrip("=")
    terms = [f"{cols[-1]} {op} {vals[-1]}"]
    for col, val in zip(reversed(cols[:-1]), reversed(vals[:-1]), strict=True):
        terms = [f"{col} {strict} {val} OR ({col} = {val} AND ({terms[0]}))"]
    return f"({terms[0]})"


def key_expr(dialect: str, name: str, kind: C) -> str:
    """A key column as ranges compare it: text by code point, as BigQuery and DuckDB compare it."""
    col = quote(dialect, name)
    return f'({col}::text COLLATE "C")' if dialect == "postgres" and kind is C.STRING else col


_LITERAL_TYPES: dict[str, dict[C, str]] = {
    "postgres": {C.DATE: "DATE", C.TIME: "TIME", C.TIMESTAMP: "TIMESTAMP", C.TIMESTAMPTZ: "TIMESTAMPTZ",
                 C.DECIMAL: "NUMERIC"},
    "duckdb": {C.DATE: "DATE", C.TIME: "TIME", C.TIMESTAMP: "TIMESTAMP", C.TIMESTAMPTZ: "TIMESTAMPTZ"},
    "bigquery": {C.DATE: "DATE", C.TIME: "TIME", C.TIMESTAMP: "DATETIME", C.TIMESTAMPTZ: "TIMESTAMP",
                 C.DECIMAL: "BIGNUMERIC"},
}  # fmt: skip
_BQ_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r"}
KEY_TYPES = (*_INTS, C.STRING, C.DECIMAL, C.DATE, C.TIME, C.TIMESTAMP, C.TIMESTAMPTZ)


_DATED = (C.DATE, C.TIMESTAMP, C.TIMESTAMPTZ)


def literal(dialect: str, kind: C, value: object) -> str:
    """A key value as a SQL literal of its canonical type in the dialect."""
    if kind in _INTS:
        return str(int(value))  # type: ignore[call-overload]
    if kind not in KEY_TYPES:
        raise ValueError(f"no range literal for {kind} keys")
    text = str(value)
    if dialect == "duckdb" and kind in _DATED and text.endswith(" BC"):  # PostgreSQL's text of a BC key
        day, _, time_of_day = text.removesuffix(" BC").partition(" ")
        text = f"{day} (BC) {time_of_day}".rstrip()  # DuckDB's: 0044-03-15 (BC) 12:00:00+00
    if kind is C.DECIMAL and dialect != "bigquery":
        return format(Decimal(text), "f")  # a numeric literal both engines read exactly
    if dialect == "bigquery":
        escaped = "".join(_BQ_ESCAPES.get(ch, ch) for ch in text)
    else:
        escaped = text.replace("'", "''")
    if kind is C.STRING:
        return f"'{escaped}'"
    return f"{_LITERAL_TYPES[dialect][kind]} '{escaped}'"


def fingerprint_sql(
    dialect: str, relation: str, columns: tuple[Column, ...], key_range: Chunk, bigquery_json: bool = False
) -> str:
    """A query returning (rows, hi, lo) for a range of a relation (bigquery_json: see canonical_text)."""
    where = range_predicate(dialect, key_range)
    inner = f"SELECT {row_hash(dialect, columns, bigquery_json)} AS h FROM {relation} WHERE {where}"
    return f"SELECT COUNT(*) AS n, {checksum_sums(dialect)} FROM ({inner}) AS r"


def combine(rows: int, hi: int | None, lo: int | None) -> Fingerprint:
    """Fold the sums hi and lo of checksum_sums() into one checksum modulo 2**64."""
    checksum = ((int(hi or 0) << 32) + int(lo or 0)) % (1 << 64)
    return Fingerprint(rows=int(rows), checksum=checksum)


# The first three hex digits of a hash: a bucket number in 0…4095, the same in every engine.
_BUCKET = {
    "postgres": "('x' || lpad(substr({h}, 1, 3), 8, '0'))::bit(32)::int4",
    "bigquery": "CAST(CONCAT('0x', SUBSTR({h}, 1, 3)) AS INT64)",
    "duckdb": "CAST('0x' || substr({h}, 1, 3) AS BIGINT)",
}


def bucket_of(dialect: str, hex_hash: str) -> str:
    """SQL for the bucket (0…4095) of a hex hash expression."""
    return _BUCKET[dialect].format(h=hex_hash)


def checksum_sums(dialect: str) -> str:
    """SQL for the sums hi and lo over a hex hash column named h, which combine() folds."""
    return _SUMS[dialect]
