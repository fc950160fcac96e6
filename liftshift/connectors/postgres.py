"""PostgreSQL as a source: catalog, Arrow reads by COPY, fingerprints pushed down as SQL."""

import fnmatch
from collections.abc import Generator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import psycopg
import pyarrow as pa
from psycopg import sql as pgsql
from psycopg.types.string import TextLoader

from liftshift import fingerprint as fp
from liftshift.connectors.base import Bound, Chunk, Column, Fingerprint, KeyRange, Table, TableRef
from liftshift.errors import ConnectError, MissingTableError, PlanError
from liftshift.pgbinary import projection
from liftshift.pgloaders import LOADERS
from liftshift.pgread import binary_copy, copy_arrow, copy_batches
from liftshift.pgtypes import BUILTIN_RANGES, PgType, map_postgres
from liftshift.pgvalues import literal_values
from liftshift.redact import redact
from liftshift.xids import written_since_sql

# IntervalStyle: intervals travel and are hashed as ISO 8601 text, which BigQuery can CAST.
# standard_conforming_strings: liftshift's literals (key bounds, patterns) double quotes only; a server
# set off would read their backslashes as escapes, and a chunk would select another key range.
# client_encoding: text arrives in UTF-8, which binary COPY is parsed as, whatever the database's encoding.
_SESSION = (
    "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 1; "
    "SET IntervalStyle = 'iso_8601'; SET standard_conforming_strings = on; SET client_encoding = 'UTF8'"
)

# A table's heaps: the table itself, or a partitioned table's leaf partitions (its own size is 0).
_HEAPS = """(SELECT p.relid FROM pg_partition_tree({rel}) p WHERE p.isleaf
  UNION SELECT {rel}::regclass WHERE NOT EXISTS (SELECT FROM pg_partition_tree({rel})))"""
# Per heap, rows per page at its last ANALYZE times its pages now; how many heaps hold pages but
# no such figure (never analyzed, or empty then), which only a count can size.
_PLANNED_ROWS = f"""
SELECT sum((reltuples / relpages * (pg_relation_size(oid) / current_setting('block_size')::int))::int8)
         FILTER (WHERE relpages > 0 AND reltuples > 0),
       count(*) FILTER (WHERE NOT (relpages > 0 AND reltuples > 0) AND pg_relation_size(oid) > 0)
FROM pg_class WHERE oid IN {_HEAPS.format(rel="%(rel)s::regclass")}
"""
_PARALLEL = "SET LOCAL parallel_setup_cost = 0; SET LOCAL parallel_tuple_cost = 0.001"

# Types psycopg loads as Python objects Arrow cannot take (dicts and lists mixed, UUID, ipaddress,
# Range): query() returns PostgreSQL's text of them instead.
_LOADED_AS_TEXT = ("json", "jsonb", "uuid", "inet", "cidr", *BUILTIN_RANGES)

_PAGES_SQL = f"""
SELECT coalesce(max(pg_relation_size(h)), 0) / current_setting('block_size')::int
FROM {_HEAPS.format(rel="%(rel)s::regclass")} h(h)
"""
_TABLE_HEAPS = _HEAPS.format(rel="c.oid")
_TABLES_SQL = f"""
SELECT c.oid, c.relname,
  (SELECT coalesce(sum(greatest(h.reltuples, 0)), 0)::bigint FROM pg_class h WHERE h.oid IN {_TABLE_HEAPS}),
  (SELECT coalesce(sum(pg_total_relation_size(h)), 0)::bigint FROM {_TABLE_HEAPS} h(h)),
  EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY c.relname
"""
# What pg_type says of a type: typtype, typcategory, built in?, typelem, typbasetype, the
# domain's typmod, enum labels in order. Element and base types are looked up by _TYPE_SQL.
_TYPE_FIELDS = """t.typtype::text, t.typcategory::text, t.oid < 16384, t.typelem, t.typbasetype,
  t.typtypmod, ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid
                     ORDER BY e.enumsortorder)"""
# Per column: name, type, nullable, the planner's estimate of its distinct values (a count, or
# minus a fraction of the rows; NULL where never analyzed), then what _pg_type reads.
_COLUMNS_SQL = f"""
SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
  (SELECT s.n_distinct FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname
   WHERE c.oid = a.attrelid AND s.attname = a.attname AND s.inherited = (c.relkind = 'p')),
  a.atttypmod, {_TYPE_FIELDS}
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""
_TYPE_SQL = f"SELECT format_type(t.oid, %s), %s, {_TYPE_FIELDS} FROM pg_type t WHERE t.oid = %s"
_PKEY_SQL = """
SELECT a.attname FROM pg_index i
JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON TRUE
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = %s AND i.indisprimary AND k.ord <= i.indnkeyatts ORDER BY k.ord
"""
_FKEY_SQL = """
SELECT DISTINCT confrelid::regclass::text FROM pg_constraint
WHERE conrelid = %s AND contype = 'f' AND confrelid <> conrelid
"""


def select_sql(schema: str, table: Table, clause: str) -> str:
    """The SELECT of a table's rows (those clause selects), each column as its wire type."""
    select = ", ".join(projection(c) for c in table.columns)
    relation = f"{fp.quote('postgres', schema)}.{fp.quote('postgres', table.name)}"
    return f"SELECT {select} FROM {relation} {clause}"


def read_binary(
    url: str, schema: str, table: Table, clause: str, snapshot_id: str | None = None, keep: bool = False
) -> pa.Table:  # fmt: skip
    """The rows clause selects, as read_table reads them but faster (liftshift.pgread.binary_copy), in
    the exported snapshot if given; keep: on a connection kept for the next read (liftshift.pgpool)."""
    # A chunk is a large slice of the table: a bitmap heap scan reads its pages once each, in their
    # order on disk, where an index scan visits them tuple by tuple through the index (PostgreSQL
    # spent 0.2-0.3 s more CPU per 5M rows of the transfer benchmark). One backend reads a chunk: a
    # parallel plan, which PostgreSQL chose for chunks of 200k rows of that table, would start more
    # (past max_source_connections) and pass every row between them: the table in such chunks took
    # PostgreSQL 4.1-4.5 CPU-s so, 2.9 with one backend per chunk.
    statements = [_SESSION, "SET enable_indexscan = off; SET max_parallel_workers_per_gather = 0"]
    return binary_copy(url, statements, select_sql(schema, table, clause), table, snapshot_id, keep)


def connect(url: str, key: str = "source.url") -> psycopg.Connection[Any]:
    """Open a connection in UTC with ISO dates, or raise ConnectError saying what to check (key)."""
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        reason = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
        raise ConnectError(
            f"cannot connect to PostgreSQL at {redact(url)}: {reason}; "
            f"check {key} (host, port, database, user) and that the server is running"
        ) from None
    conn.execute(_SESSION)
    for name, loader in LOADERS.items():
        conn.adapters.register_loader(name, loader)
    return conn


_KEY_SAMPLE = 200_000  # keys sampled to place chunk boundaries in a big table


def _per_row(distinct: float | None, rows: int) -> float | None:
    """The planner's n_distinct as distinct values per row."""
    if distinct is None:
        return None
    return -distinct if distinct < 0 else distinct / max(rows, 1)


def _plain_key(value: object) -> object:
    """A key value as the ledger stores it: ints as ints, everything else as its ISO or plain text."""
    if isinstance(value, int):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return format(value, "f") if isinstance(value, Decimal) else str(value)


class PostgresSource:
    """A PostgreSQL schema liftshift reads from."""

    dialect = "postgres"
    plan_key = "source.url"  # what an error tells the user to check

    def __init__(self, url: str, schema: str = "public") -> None:
        self.url = url
        self.schema = schema
        self.conn = connect(url, self.plan_key)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def catalog(self, patterns: Iterable[str] = ("*",)) -> list[Table]:
        """The schema's tables matching any pattern, bar those of no column (see columnless); a
        literal name that is absent is an error."""
        patterns = list(patterns)
        rows = self.conn.execute(_TABLES_SQL, (self.schema,)).fetchall()
        if not rows and not self._schema_exists():
            raise PlanError(f"source schema '{self.schema}' does not exist; check source.schema")
        names = [r[1] for r in rows]
        for pattern in patterns:
            if not fnmatch.filter(names, pattern):
                raise MissingTableError(
                    f"no table in source schema '{self.schema}' matches '{pattern}' "
                    f"(tables: {', '.join(names) or 'none'}); correct 'tables' in the plan", pattern
                )
        wanted = [r for r in rows if r[4] and _matches(r[1], patterns)]
        return [self._describe(oid, name, est, size) for oid, name, est, size, _ in wanted]

    def columnless(self, patterns: Iterable[str] = ("*",)) -> list[str]:
        """The schema's tables matching any pattern that have no column, which no target can hold."""
        rows = self.conn.execute(_TABLES_SQL, (self.schema,)).fetchall()
        return [r[1] for r in rows if not r[4] and _matches(r[1], list(patterns))]

    def has_table(self, table: Table) -> bool:
        """Whether the table is (still) there."""
        found = self.conn.execute("SELECT to_regclass(%s)", (self.relation(table),)).fetchone()
        return found is not None and found[0] is not None

    def _schema_exists(self) -> bool:
        sql = "SELECT 1 FROM pg_namespace WHERE nspname = %s"
        return self.conn.execute(sql, (self.schema,)).fetchone() is not None

    def _describe(self, oid: int, name: str, estimate: int, size: int) -> Table:
        rows = self.conn.execute(_COLUMNS_SQL, (oid,)).fetchall()
        types = [self._pg_type(typ, *info) for _, typ, _, _, *info in rows]
        columns = tuple(
            Column(col, typ, nullable, map_postgres(pg), pg, _per_row(distinct, estimate))
            for (col, typ, nullable, distinct, *_), pg in zip(rows, types, strict=True)
        )
        pkey = tuple(r[0] for r in self.conn.execute(_PKEY_SQL, (oid,)).fetchall())
        fkeys = tuple(r[0] for r in self.conn.execute(_FKEY_SQL, (oid,)).fetchall())
        return Table(TableRef(self.schema, name), columns, pkey, estimate, size, fkeys)

    def _pg_type(
        self, name: str, typmod: int, kind: str, category: str, builtin: bool,
        element: int, base: int, base_typmod: int, labels: list[str],
    ) -> PgType:  # fmt: skip
        """A type as pg_type describes it, with its array element or domain base looked up."""
        return PgType(
            name, kind, category, builtin,
            element=self._type_of(element, typmod) if category == "A" and element else None,
            base=self._type_of(base, base_typmod) if kind == "d" else None,
            labels=tuple(labels),
        )  # fmt: skip

    def _type_of(self, oid: int, typmod: int) -> PgType:
        row = self.conn.execute(_TYPE_SQL, (typmod, typmod, oid)).fetchone()
        if row is None:
            raise PlanError(f"type oid {oid} vanished from pg_type while cataloguing; run again")
        return self._pg_type(*row)

    def relation(self, table: Table) -> str:
        """The quoted schema-qualified name."""
        return f"{fp.quote('postgres', self.schema)}.{fp.quote('postgres', table.name)}"

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Run the enclosed reads in one repeatable-read snapshot."""
        with self.conn.transaction():
            self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield

    @contextmanager
    def exported_snapshot(self) -> Iterator[str]:
        """Hold a repeatable-read snapshot open and yield its id, for workers to read in it too."""
        with self.conn.transaction():
            self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            row = self.conn.execute("SELECT pg_export_snapshot()").fetchone()
            yield str(row[0]) if row else ""

    @contextmanager
    def joined_snapshot(self, snapshot_id: str) -> Iterator[None]:
        """Run the enclosed reads in a snapshot another connection exported."""
        with self.conn.transaction():
            self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            self.conn.execute(pgsql.SQL("SET TRANSACTION SNAPSHOT {}").format(pgsql.Literal(snapshot_id)))
            yield

    def read(self, table: Table, key_range: Chunk) -> Iterator[pa.RecordBatch]:
        """Read a key range as Arrow record batches with the table's exact schema."""
        yield from self.read_table(table, key_range).to_batches()

    def read_table(self, table: Table, key_range: Chunk) -> pa.Table:
        """Read a key or ctid range into one Arrow table: binary COPY parsed with an explicit schema."""
        return self._copy(table, f"WHERE {fp.range_predicate('postgres', key_range)}")

    def read_sample(self, table: Table, rows: int) -> pa.Table:
        """Read the first rows rows the table yields (no order), as read_table reads them."""
        return self._copy(table, f"LIMIT {int(rows)}")

    def _copy(self, table: Table, clause: str) -> pa.Table:
        return copy_arrow(self.conn, self._copy_sql(table, clause), table)

    def _copy_sql(self, table: Table, clause: str) -> str:
        return f"COPY ({select_sql(self.schema, table, clause)}) TO STDOUT (FORMAT binary)"

    def fingerprint(self, table: Table, key_range: Chunk) -> Fingerprint:
        """Row count and checksum of a key range, computed inside PostgreSQL."""
        sql = fp.fingerprint_sql("postgres", self.relation(table), table.columns, key_range)
        n, hi, lo = self.conn.execute(sql).fetchone() or (0, 0, 0)
        return fp.combine(n, hi, lo)

    def key_bounds(self, table: Table, column: str) -> tuple[int, int] | None:
        """The smallest and largest value of an integer key, or None when the table is empty."""
        col = fp.quote("postgres", column)
        row = self.conn.execute(f"SELECT min({col}), max({col}) FROM {self.relation(table)}")
        low, high = row.fetchone() or (None, None)
        return None if low is None or high is None else (int(low), int(high))

    def key_cuts(self, table: Table, rows: int, chunk_rows: int) -> list[Bound]:
        """Keys that cut the table into chunks of about chunk_rows rows, in key order.

        The keys are sorted as ranges compare them (liftshift.fingerprint.key_expr); big tables
        are sampled, so chunks are about, not exactly, chunk_rows rows.
        """
        kinds = [table.column(k).canonical for k in table.primary_key]
        pairs = zip(table.primary_key, kinds, strict=True)
        keys = ", ".join(fp.key_expr("postgres", k, kind) for k, kind in pairs)
        share = min(1.0, _KEY_SAMPLE / max(rows, 1))
        sample = f"TABLESAMPLE BERNOULLI ({share * 100:.6f}) REPEATABLE (0)" if share < 1 else ""
        step = max(1, round(chunk_rows * share))
        rank = "liftshift_key_rank"  # not a plain n: a key column may be called that
        sql = (f"SELECT * FROM (SELECT {keys}, row_number() OVER (ORDER BY {keys}) AS {rank} "
               f"FROM {self.relation(table)} {sample}) s "
               f"WHERE {rank} % {step} = 0 ORDER BY {rank}")  # fmt: skip
        cuts = [tuple(_plain_key(v) for v in row[:-1]) for row in self.conn.execute(sql).fetchall()]
        return [c for i, c in enumerate(cuts) if i == 0 or c != cuts[i - 1]]

    def pages(self, table: Table) -> int:
        """The table's size in heap pages, which ctid ranges split; for a partitioned table, its largest
        partition's (a ctid range selects those pages of every partition)."""
        row = self.conn.execute(_PAGES_SQL, {"rel": self.relation(table)}).fetchone()
        return int(row[0]) if row else 0

    def planned_rows(self, table: Table) -> int:
        """About how many rows the table has now, as the planner reckons it (rows per page at the last
        ANALYZE times pages now); counted exactly when it was never analyzed or was empty then."""
        # Not count(*): that reads the whole table (minutes, for a large one) only to size chunks and
        # a progress bar, which need only be near.
        row = self.conn.execute(_PLANNED_ROWS, {"rel": self.relation(table)}).fetchone()
        estimated, unsized = row or (0, 1)
        return self.row_count(table) if unsized else int(estimated or 0)

    def row_count(self, table: Table) -> int:
        """The exact number of rows."""
        row = self.conn.execute(f"SELECT count(*) FROM {self.relation(table)}").fetchone()
        return int(row[0]) if row else 0

    def query(self, sql: str) -> pa.Table:
        """Run a query and return its result as Arrow."""
        with self.conn.cursor() as cur:
            for name in _LOADED_AS_TEXT:
                cur.adapters.register_loader(name, TextLoader)
            cur.execute(sql)
            names = [d.name for d in cur.description or []]
            rows = cur.fetchall()
        return pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})

    def scan(self, sql: str) -> pa.Table:
        """Run a query over rows costly to compute (hashes), in parallel if the server allows."""
        # The planner costs an MD5 like an addition, so it judges parallel workers not worth starting
        # or feeding; told otherwise, it uses as many as max_parallel_workers_per_gather allows.
        with self.conn.transaction():
            self.conn.execute(_PARALLEL)
            return self.query(sql)

    def max_value(self, table: Table, column: str) -> str | None:
        """The column's largest value as PostgreSQL's text of it, or None when the table is empty."""
        col = fp.quote("postgres", column)
        found = self.conn.execute(f"SELECT max({col})::text FROM {self.relation(table)}").fetchone()
        return None if found is None else found[0]

    def read_since(
        self, table: Table, column: str, mark: str | None, inclusive: bool = True,
        key_range: KeyRange | None = None, batch_bytes: int = 64 * 2**20, written_since: int | None = None,
    ) -> Generator[pa.Table, None, None]:  # fmt: skip
        """A key range's rows whose column is at (if inclusive) or above mark (all when mark is None),
        or that were written since that snapshot xmin, in tables of about batch_bytes of COPY each."""
        where = fp.range_predicate("postgres", key_range)
        if mark is not None:
            literal = pgsql.Literal(mark).as_string(self.conn)
            op = ">=" if inclusive else ">"
            since = f"{fp.quote('postgres', column)} {op} {literal}::{table.column(column).source_type}"
            late = "" if written_since is None else f" OR {written_since_sql(written_since)}"
            where += f" AND ({since}{late})"
        return copy_batches(self.conn, self._copy_sql(table, f"WHERE {where}"), table, batch_bytes)

    def fingerprint_at(self, table: Table, column: str, mark: str) -> Fingerprint:
        """Row count and checksum of the rows whose column equals mark."""
        literal = pgsql.Literal(mark).as_string(self.conn)
        where = f"{fp.quote('postgres', column)} = {literal}::{table.column(column).source_type}"
        rows = f"(SELECT * FROM {self.relation(table)} WHERE {where}) AS at_mark"
        query = fp.fingerprint_sql("postgres", rows, table.columns, None)
        n, hi, lo = self.conn.execute(query).fetchone() or (0, 0, 0)
        return fp.combine(n, hi, lo)

    def keys(self, table: Table, columns: tuple[str, ...], key_range: KeyRange | None) -> pa.Table:
        """The key columns of the rows in a key range, read as read_table reads them: delta compares
        them with the target's keys value by value (char(n) unpadded, interval as ISO text)."""
        keys_only = replace(table, columns=tuple(table.column(c) for c in columns))
        return self._copy(keys_only, f"WHERE {fp.range_predicate('postgres', key_range)}")

    def read_keys(self, table: Table, keys: pa.Table) -> pa.Table:
        """The rows whose key columns equal a row of keys, as read_table reads them."""
        return self._copy(table, f"WHERE {_key_match(self.conn, table, keys, 'source')}")


def _matches(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _key_match(conn: psycopg.Connection[Any], table: Table, keys: pa.Table, side: str) -> str:
    """A condition true for rows whose key columns equal a row of keys (as unnested literal arrays)."""
    names = ", ".join(fp.quote("postgres", c) for c in keys.column_names)
    arrays = []
    for name in keys.column_names:
        column = table.column(name)
        typ = column.source_type if side == "source" else column.target_type("postgres")
        values = pgsql.Literal(literal_values(keys.column(name))).as_string(conn)
        arrays.append(f"{values}::{typ}[]")
    return f"({names}) IN (SELECT * FROM unnest({', '.join(arrays)}))"
