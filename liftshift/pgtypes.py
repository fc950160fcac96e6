"""PostgreSQL's types: the canonical type and cast each one travels as, and its verdict per target.

The verdicts are explained in liftshift.types. A PostgreSQL target keeps a built-in type as it
is; a type the target database may not have (an enum, a composite, an extension's range) lands
as text or jsonb there, and arrays land as jsonb because they travel as JSON.
"""

import re
from dataclasses import dataclass

from liftshift.types import (
    BIGNUMERIC_MAX,
    DUCKDB_DECIMAL_MAX,
    NUMERIC_MAX,
    Canonical,
    Mapping,
    TargetMapping,
    Verdict,
    bigquery_type,
    duckdb_type,
)

C, V = Canonical, Verdict
Outcome = tuple[Verdict, str]  # a verdict and its note; {type} in the note is the target's type


@dataclass(frozen=True)
class PgType:
    """What pg_type says about a column's type: its kind, and what it is built from."""

    name: str  # format_type(), typmod included: 'numeric(12,2)', 'integer[]', 'mood', '"Größe"'
    kind: str = "b"  # typtype: b base, c composite, d domain, e enum, m multirange, p pseudo, r range
    category: str = ""  # typcategory: 'A' for arrays
    builtin: bool = True  # PostgreSQL's own type (oid below 16384): every server has it
    element: "PgType | None" = None  # an array's element type
    base: "PgType | None" = None  # a domain's base type, with the domain's typmod
    labels: tuple[str, ...] = ()  # an enum's labels, in order


_RANGES = ("int4range", "int8range", "numrange", "daterange", "tsrange", "tstzrange")
_MULTIRANGES = tuple(r.replace("range", "multirange") for r in _RANGES)
BUILTIN_RANGES = _RANGES + _MULTIRANGES  # PostgreSQL's own range and multirange types


def builtin_type(name: str) -> PgType:
    """A built-in type known by its format_type() name alone: 'integer', 'numeric(12,2)', 'text[]'."""
    if name.endswith("[]"):
        return PgType(name, category="A", element=builtin_type(name[:-2]))
    return PgType(name, kind="m" if name in _MULTIRANGES else "r" if name in _RANGES else "b")


@dataclass(frozen=True)
class _Rule:
    """How a built-in type travels, and its verdict in BigQuery, DuckDB and a PostgreSQL target."""

    canonical: Canonical
    bigquery: Outcome
    duckdb: Outcome | None = None  # None: as in BigQuery
    postgres: Outcome | None = None  # None: exact when it keeps the type, else as in DuckDB
    cast: str | None = None


_TEXT = "{c}::text"
_FLOAT_KEPT = "NaN, ±Infinity and -0 are kept"
_DATES = "±infinity and years outside 0001–9999 cannot be moved (assess checks the data)"
_DUCKDB_DATES = (
    "BC and years past 9999 are kept; ±infinity and timestamps past year 294246 cannot be moved "
    "(assess checks the data)"
)
_JSONB_NUMBERS = (
    "numbers are stored as JSON numbers: 2.50 becomes 2.5; beyond ~15–17 significant digits they round"
)
# DuckDB keeps a JSON value's text as written; only its JSON functions read numbers as doubles.
_JSONB_TEXT = "PostgreSQL's jsonb text, kept as it is (DuckDB's JSON functions read numbers as doubles)"
_JSON_TEXT = "whitespace, key order and duplicate keys are not kept"
_GEOMETRY = (V.WIDENED, "as text: planar geometry, not GEOGRAPHY")
_NETWORK = (V.WIDENED, "as text with the prefix length (10.0.0.1/32); network operators lost")
_AS_TEXT = (V.WIDENED, "as text")
_SEARCH = (V.WIDENED, "as text; full-text search operators lost")
_BITS = (V.WIDENED, "as text of 0s and 1s; bit operators lost")

_BUILTIN: dict[str, _Rule] = {
    "smallint": _Rule(C.INT16, (V.WIDENED, "as INT64"), (V.EXACT, "")),
    "integer": _Rule(C.INT32, (V.WIDENED, "as INT64"), (V.EXACT, "")),
    "bigint": _Rule(C.INT64, (V.EXACT, "")),
    "real": _Rule(
        C.FLOAT32, (V.WIDENED, f"as FLOAT64 (exact widening); {_FLOAT_KEPT}"), (V.EXACT, _FLOAT_KEPT)
    ),
    "double precision": _Rule(C.FLOAT64, (V.EXACT, _FLOAT_KEPT)),
    "money": _Rule(C.DECIMAL, (V.WIDENED, "as {type}: currency symbol and locale formatting dropped"),
                   cast="{c}::numeric"),
    "boolean": _Rule(C.BOOL, (V.EXACT, "")),
    "text": _Rule(C.STRING, (V.EXACT, "")),
    "character varying": _Rule(C.STRING, (V.WIDENED, "length limit not enforced")),
    "character": _Rule(C.STRING, (V.WIDENED, "blank padding removed"), cast=_TEXT),
    '"char"': _Rule(C.STRING, (V.WIDENED, 'a one-byte "char" as {type}'), cast=_TEXT),
    "name": _Rule(C.STRING, (V.WIDENED, "as {type}; the 63-byte limit is not enforced"), cast=_TEXT),
    "bytea": _Rule(C.BYTES, (V.EXACT, "")),
    "date": _Rule(C.DATE, (V.EXACT, _DATES), (V.EXACT, _DUCKDB_DATES), (V.EXACT, _DATES)),
    "timestamp without time zone": _Rule(
        C.TIMESTAMP, (V.EXACT, _DATES), (V.EXACT, _DUCKDB_DATES), (V.EXACT, _DATES)
    ),
    "timestamp with time zone": _Rule(
        C.TIMESTAMPTZ, (V.EXACT, f"an instant, as in PostgreSQL; {_DATES}"),
        (V.EXACT, f"an instant, as in PostgreSQL; {_DUCKDB_DATES}"), (V.EXACT, _DATES),
    ),
    "time without time zone": _Rule(
        C.TIME, (V.EXACT, "24:00:00 cannot be moved (assess checks the data)"),
        postgres=(V.EXACT, "24:00:00 cannot be moved (assess checks the data)"),
    ),
    "time with time zone": _Rule(
        C.STRING, (V.WIDENED, "no zoned TIME type: kept as text 'HH:MM:SS+HH'"), cast=_TEXT
    ),
    "interval": _Rule(
        C.STRING,
        (V.WIDENED, "ISO 8601 text like P1Y2M3DT4H5M6S (BigQuery INTERVAL is not used); "
                    "CAST(col AS INTERVAL) reads it"),
        (V.WIDENED, "ISO 8601 text like P1Y2M3DT4H5M6S; DuckDB cannot cast it to INTERVAL"),
        cast=_TEXT,
    ),
    "uuid": _Rule(C.STRING, (V.WIDENED, "canonical lower-case text"), cast=_TEXT),
    "json": _Rule(C.JSON, (V.LOSSY, _JSON_TEXT), postgres=(V.LOSSY, _JSON_TEXT), cast="{c}::jsonb"),
    "jsonb": _Rule(C.JSON, (V.LOSSY, _JSONB_NUMBERS), (V.EXACT, _JSONB_TEXT)),
    "inet": _Rule(C.STRING, _NETWORK, cast=_TEXT),
    "cidr": _Rule(C.STRING, _NETWORK, cast=_TEXT),
    "macaddr": _Rule(C.STRING, _AS_TEXT, cast=_TEXT),
    "macaddr8": _Rule(C.STRING, _AS_TEXT, cast=_TEXT),
    "bit": _Rule(C.STRING, _BITS, cast=_TEXT),
    '"bit"': _Rule(C.STRING, _BITS, cast=_TEXT),
    "bit varying": _Rule(C.STRING, _BITS, cast=_TEXT),
    "xml": _Rule(C.STRING, (V.WIDENED, "as text; no longer checked as XML"), cast=_TEXT),
    "tsvector": _Rule(C.STRING, _SEARCH, cast=_TEXT),
    "tsquery": _Rule(C.STRING, _SEARCH, cast=_TEXT),
    "pg_lsn": _Rule(C.STRING, _AS_TEXT, cast=_TEXT),
    **{g: _Rule(C.STRING, _GEOMETRY, cast=_TEXT)
       for g in ("point", "line", "lseg", "box", "path", "polygon", "circle")},
}  # fmt: skip
_ENUM = _Rule(C.STRING, (V.WIDENED, "labels as {type}; the label set is not enforced"), cast=_TEXT)
_RANGE = _Rule(C.STRING, (V.WIDENED, "as text; range operators lost"), cast=_TEXT)
# Field types are not looked at: any numeric field would be rewritten, so all composites are lossy.
_COMPOSITE = _Rule(
    C.JSON,
    (V.LOSSY, "its fields as a JSON object; numeric fields become JSON numbers (2.50 becomes 2.5, "
              "-0 becomes 0); accept it when its fields hold no numbers or their form does not matter"),
    cast="to_json({c})",
)
_MONEY = (NUMERIC_MAX[0], NUMERIC_MAX[1])  # money is an int64 of cents: 17 integer digits
_TYPMOD = re.compile(r"\(\d+(?:,-?\d+)?\)")
_NUMERIC = re.compile(r"^numeric(?:\((\d+),(-?\d+)\))?$")
_LEAVE_OUT = "change its type in the source, or leave the table out of the plan"
ARRAY_CAST = "array_to_json({c})"  # how every array travels: as a JSON array, without its bounds


def map_postgres(source: PgType | str) -> Mapping:
    """The mapping of a PostgreSQL type; a bare string is taken as a built-in type's name."""
    pg = builtin_type(source) if isinstance(source, str) else source
    if pg.kind == "d" and pg.base is not None:
        return _domain(pg.name, pg.base)
    if pg.category == "A" and pg.element is not None:
        return _array(pg.name, pg.element)
    if pg.kind == "e":
        return _mapping(pg.name, _ENUM, keep=False)
    if pg.kind in ("r", "m"):
        return _mapping(pg.name, _RANGE, keep=pg.builtin)
    if pg.kind == "c":
        return _mapping(pg.name, _COMPOSITE, keep=False)
    if pg.kind == "b" and pg.builtin:
        return _builtin(pg.name)
    what = "an extension's type" if pg.kind == "b" else "a pseudo-type"
    return blocker(f"{pg.name} is {what} with no mapping: {_LEAVE_OUT}")


def blocker(note: str) -> Mapping:
    """A mapping that no target can take."""
    none = TargetMapping("", V.BLOCKER, note)
    return Mapping(None, none, none, none)


def _builtin(name: str) -> Mapping:
    numeric = _NUMERIC.match(name)
    if numeric:
        precision, scale = numeric.groups()
        return _numeric(name, None if precision is None else int(precision), int(scale or 0))
    key = _TYPMOD.sub("", name)
    key = "interval" if key.startswith("interval") else key  # 'interval year to month' and so on
    rule = _BUILTIN.get(key)
    if rule is None:
        return blocker(f"no mapping for PostgreSQL type '{name}': {_LEAVE_OUT}")
    if rule.canonical is C.DECIMAL:
        return _mapping(name, rule, keep=True, precision=_MONEY[0], scale=_MONEY[1])
    return _mapping(name, rule, keep=True)


def _numeric(name: str, p: int | None, s: int) -> Mapping:
    if p is None:
        wide = "values with more than 38 integer or 38 fractional digits, NaN or ±Infinity cannot be held"
        rule = _Rule(
            C.DECIMAL, (V.WIDENED, f"as BIGNUMERIC; {wide} (assess checks the data)"),
            (V.LOSSY, "as DECIMAL(38,10): rounds past 10 fractional digits; more than 28 integer "
                      "digits, NaN or ±Infinity cannot be held"),
            (V.WIDENED, f"trailing fractional zeros are not kept (1.50 becomes 1.5); {wide}"),
        )  # fmt: skip
        return _mapping(name, rule, keep=True)
    if s < 0 or s > p or p > BIGNUMERIC_MAX[0]:
        return blocker(f"{name} has no Arrow decimal (at most 76 digits, scale 0 to precision): {_LEAVE_OUT}")
    nan = "NaN cannot be held (assess checks the data)"
    if p - s <= NUMERIC_MAX[0] - NUMERIC_MAX[1] and s <= NUMERIC_MAX[1]:
        bq: Outcome = (V.EXACT, nan)
    elif p - s <= BIGNUMERIC_MAX[0] - BIGNUMERIC_MAX[1] and s <= BIGNUMERIC_MAX[1]:
        bq = (V.WIDENED, f"as BIGNUMERIC; {nan}")
    else:
        bq = (V.BLOCKER, f"{name} exceeds BIGNUMERIC (38 integer and 38 fractional digits): {_LEAVE_OUT}")
    duck: Outcome = (V.EXACT, nan) if p <= DUCKDB_DECIMAL_MAX else (
        V.BLOCKER, f"DuckDB DECIMAL holds at most 38 digits: {_LEAVE_OUT}"
    )  # fmt: skip
    rule = _Rule(C.DECIMAL, bq, duck, (V.EXACT, nan))
    return _mapping(name, rule, keep=True, precision=p, scale=s)


def _array(name: str, element: PgType) -> Mapping:
    inner = map_postgres(element)
    if inner.canonical is None:
        return blocker(f"no mapping for its element type {element.name}: {_LEAVE_OUT}")
    cast = ARRAY_CAST
    if inner.canonical in (C.DECIMAL, C.FLOAT32, C.FLOAT64) or inner.verdict is V.LOSSY:
        why = "numbers become JSON numbers: 2.50 becomes 2.5, -0 becomes 0, past ~15–17 digits they round"
        rule = _Rule(C.JSON, (V.LOSSY, f"kept as a {{type}} array; {why}"), cast=cast)
    else:
        no_nulls = "BigQuery ARRAY cannot hold NULL elements or NULL arrays, so kept as a JSON array"
        rule = _Rule(C.JSON, (V.WIDENED, no_nulls), (V.WIDENED, "kept as a {type} array"), cast=cast)
    return _mapping(name, rule, keep=False)


def _domain(name: str, base: PgType) -> Mapping:
    inner = map_postgres(base)
    prefix = f"domain {name} over {base.name}; its CHECK constraints are not carried"

    def noted(t: TargetMapping) -> TargetMapping:
        return TargetMapping(t.type, t.verdict, f"{prefix}; {t.note}" if t.note else prefix)

    return Mapping(
        inner.canonical, noted(inner.bigquery), noted(inner.duckdb), noted(inner.postgres),
        inner.precision, inner.scale, inner.cast,
    )  # fmt: skip


_POSTGRES_HOLDER = {C.STRING: "text", C.JSON: "jsonb"}
POSTGRES_HOLDERS = frozenset(_POSTGRES_HOLDER.values())  # what a PostgreSQL target holds others in


def _mapping(
    name: str, rule: _Rule, keep: bool, precision: int | None = None, scale: int | None = None
) -> Mapping:
    """Spell a rule out per target; keep=False when a PostgreSQL target may not have the type."""
    pg_type = name if keep else _POSTGRES_HOLDER[rule.canonical]
    in_duckdb = rule.duckdb or rule.bigquery
    targets = (
        (bigquery_type(rule.canonical, precision, scale), rule.bigquery),
        (duckdb_type(rule.canonical, precision, scale), in_duckdb),
        (pg_type, rule.postgres or ((V.EXACT, "") if keep else in_duckdb)),
    )
    bq, duck, pg = (
        TargetMapping("" if v is V.BLOCKER else t, v, note.format(type=t)) for t, (v, note) in targets
    )
    return Mapping(rule.canonical, bq, duck, pg, precision, scale, rule.cast)
