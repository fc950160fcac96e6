"""The estate's inventory from PostgreSQL's catalog: sizes, keys, indexes, partitions, views, activity."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from liftshift.assess_report import CatalogFacts, ForeignKey, SequenceInfo, ViewInfo
from liftshift.connectors.base import Table
from liftshift.errors import LiftshiftError
from liftshift.redact import redact


class AccessError(LiftshiftError):
    """The source user may not read a table or a catalog the assessment needs."""


class TableInventory(CatalogFacts):
    """The catalog facts of a table, with its column defaults and recent modifications."""

    defaults: dict[str, str]
    modified_since_analyze: int


_OID = """
SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s
"""
# Partitioned parents hold no rows themselves: sizes, estimates and activity sum over the tree.
_SIZES = """
SELECT coalesce(sum(pg_table_size(t.relid) - coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0)),
                0)::int8,
       coalesce(sum(pg_total_relation_size(nullif(c.reltoastrelid, 0))), 0)::int8,
       coalesce(sum(pg_indexes_size(t.relid)), 0)::int8,
       coalesce(sum(greatest(c.reltuples, 0)) FILTER (WHERE c.relkind = 'r'), 0)::int8,
       coalesce(sum(s.n_tup_ins), 0)::int8, coalesce(sum(s.n_tup_upd), 0)::int8,
       coalesce(sum(s.n_tup_del), 0)::int8, coalesce(sum(s.n_mod_since_analyze), 0)::int8
FROM (SELECT relid FROM pg_partition_tree(%(oid)s) UNION SELECT %(oid)s::regclass) t
JOIN pg_class c ON c.oid = t.relid
LEFT JOIN pg_stat_all_tables s ON s.relid = t.relid
"""
_DEFAULTS = """
SELECT a.attname, CASE
  WHEN a.attidentity <> '' THEN 'identity'
  WHEN a.attgenerated <> '' THEN 'generated: ' || pg_get_expr(d.adbin, d.adrelid)
  ELSE pg_get_expr(d.adbin, d.adrelid) END
FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = %(oid)s AND a.attnum > 0 AND NOT a.attisdropped
  AND (d.adbin IS NOT NULL OR a.attidentity <> '')
"""
_UNIQUE = """
SELECT array_agg(a.attname ORDER BY k.ord) FROM pg_index i
JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON TRUE
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = %(oid)s AND i.indisunique AND NOT i.indisprimary AND k.ord <= i.indnkeyatts
  AND i.indexprs IS NULL AND i.indpred IS NULL
GROUP BY i.indexrelid ORDER BY i.indexrelid
"""
_FOREIGN = """
SELECT c.conname, r.relname,
  (SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(c.conkey) WITH ORDINALITY k(n, ord)
     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n),
  (SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(c.confkey) WITH ORDINALITY k(n, ord)
     JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n),
  (SELECT bool_or(NOT a.attnotnull) FROM unnest(c.conkey) k(n)
     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n)
FROM pg_constraint c JOIN pg_class r ON r.oid = c.confrelid
WHERE c.conrelid = %(oid)s AND c.contype = 'f' AND c.conparentid = 0 ORDER BY c.conname
"""
_INDEXES = "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %(oid)s ORDER BY indexrelid"
_PARTITIONS = """
SELECT c.relname || ' ' || pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %(oid)s ORDER BY c.relname
"""
_PARTKEY = "SELECT pg_get_partkeydef(%(oid)s)"
_TRIGGERS = """
SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = %(oid)s AND NOT tgisinternal ORDER BY tgname
"""
_VIEWS = """
SELECT v.relname, CASE v.relkind WHEN 'm' THEN 'materialized view' ELSE 'view' END,
  coalesce(array_agg(DISTINCT t.relname) FILTER (WHERE t.oid IS NOT NULL), '{}')
FROM pg_class v JOIN pg_namespace n ON n.oid = v.relnamespace
LEFT JOIN pg_rewrite r ON r.ev_class = v.oid
LEFT JOIN pg_depend d ON d.objid = r.oid AND d.classid = 'pg_rewrite'::regclass
  AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> v.oid
LEFT JOIN pg_class t ON t.oid = d.refobjid
WHERE n.nspname = %s AND v.relkind IN ('v', 'm') GROUP BY v.relname, v.relkind ORDER BY v.relname
"""
_SEQUENCES = """
SELECT s.relname,
  (SELECT t.relname || '.' || a.attname FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid
     JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
   WHERE d.objid = s.oid AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') LIMIT 1),
  ps.last_value
FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace
LEFT JOIN pg_sequences ps ON ps.schemaname = n.nspname AND ps.sequencename = s.relname
WHERE n.nspname = %s AND s.relkind = 'S' ORDER BY s.relname
"""


@contextmanager
def readable(what: str, user: str) -> Iterator[None]:
    """Turn 'permission denied' into one AccessError naming what to grant."""
    try:
        yield
    except psycopg.errors.InsufficientPrivilege as exc:
        reason = redact(str(exc).strip().splitlines()[0])
        raise AccessError(
            f"cannot read {what} as user '{user}': {reason}; grant it SELECT (and USAGE on its "
            "schema), or leave it out of 'tables' in the plan"
        ) from None


def describe(conn: psycopg.Connection[Any], table: Table) -> TableInventory:
    """The inventory of one table (its rows as the planner estimates them)."""
    row = conn.execute(_OID, (table.ref.schema, table.name)).fetchone()
    if row is None:
        raise AccessError(f"table {table.ref} vanished from the source catalog; rerun assess")
    args = {"oid": row[0]}
    heap, toast, index, estimate, ins, upd, dele, modified = _one(conn, _SIZES, args)
    return TableInventory(
        rows_estimate=estimate, heap_bytes=heap, toast_bytes=toast, index_bytes=index,
        defaults=dict(conn.execute(_DEFAULTS, args).fetchall()),
        unique_keys=[list(r[0]) for r in conn.execute(_UNIQUE, args).fetchall()],
        foreign_keys=[_foreign_key(r) for r in conn.execute(_FOREIGN, args).fetchall()],
        indexes=_column(conn, _INDEXES, args), partition_key=_one(conn, _PARTKEY, args)[0],
        partitions=_column(conn, _PARTITIONS, args), triggers=_column(conn, _TRIGGERS, args),
        inserts=ins, updates=upd, deletes=dele, modified_since_analyze=modified,
    )  # fmt: skip


def views(conn: psycopg.Connection[Any], schema: str) -> list[ViewInfo]:
    """The schema's views and materialized views with the relations they read."""
    rows = conn.execute(_VIEWS, (schema,)).fetchall()
    return [ViewInfo(name=name, kind=kind, depends_on=sorted(deps)) for name, kind, deps in rows]


def sequences(conn: psycopg.Connection[Any], schema: str) -> list[SequenceInfo]:
    """The schema's sequences, their owning columns and last values."""
    rows = conn.execute(_SEQUENCES, (schema,)).fetchall()
    return [SequenceInfo(name=n, owned_by=owner, last_value=last) for n, owner, last in rows]


def _foreign_key(row: tuple[Any, ...]) -> ForeignKey:
    name, parent, columns, parent_columns, nullable = row
    return ForeignKey(
        name=name, columns=list(columns), references=parent,
        referenced_columns=list(parent_columns), nullable=bool(nullable),
    )  # fmt: skip


def _one(conn: psycopg.Connection[Any], sql: str, args: dict[str, Any]) -> tuple[Any, ...]:
    row = conn.execute(sql, args).fetchone()
    return tuple(row) if row else ()


def _column(conn: psycopg.Connection[Any], sql: str, args: dict[str, Any]) -> list[str]:
    return [r[0] for r in conn.execute(sql, args).fetchall()]
