"""DuckDB as a target: a local warehouse for development and fast tests."""

import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from liftshift import fingerprint as fp
from liftshift.connectors.base import Column, Fingerprint, KeyRange, Table, TargetColumn
from liftshift.errors import ConnectError
from liftshift.types import Canonical, target_mapping

# information_schema spells some types differently from the DDL the mapping gives.
_DECLARED = {"TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ", "FLOAT": "REAL"}


class DuckDBTarget:
    """A DuckDB database file liftshift writes into."""

    dialect = "duckdb"
    stages_chunks = False  # a key range is replaced in the table itself, in one transaction

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.conn = duckdb.connect(path)
        except (duckdb.Error, OSError) as exc:
            raise ConnectError(_open_failed(path, exc)) from None
        # Chunks land as separate appends, each ending in a part-filled row group. DuckDB's vacuum
        # would merge those at the next checkpoint by rewriting nearly every row group: 2.2 CPU-s
        # and 120 MB of dead file per 5M rows. Left as they are, they cost scans almost nothing.
        self.conn.execute("SET max_vacuum_tasks = 0")
        # Rows need no order inside a table; keeping it serialises part of each insert.
        self.conn.execute("SET preserve_insertion_order = false")

    def close(self) -> None:
        """Close the database."""
        self.conn.close()

    def relation(self, table: Table) -> str:
        """The quoted table name."""
        return fp.quote("duckdb", table.name)

    def prepare(self, table: Table) -> None:
        """Create the table with mapped types unless it exists."""
        cols = ", ".join(
            f"{fp.quote('duckdb', c.name)} {c.target_type(self.dialect)}{_storage(c)}"
            f"{'' if c.nullable else ' NOT NULL'}"
            for c in table.columns
        )
        self.conn.execute(f"CREATE TABLE IF NOT EXISTS {self.relation(table)} ({cols})")

    def drop(self, table: Table) -> None:
        """Drop the table if it exists."""
        self.conn.execute(f"DROP TABLE IF EXISTS {self.relation(table)}")

    def assemble(self, table: Table, parts: list[Table]) -> None:
        """Replace the table by its staging tables' rows in one transaction."""
        union = " UNION ALL ".join(f"SELECT * FROM {self.relation(p)}" for p in parts)
        self.conn.execute("BEGIN")
        try:
            self.conn.execute(f"DELETE FROM {self.relation(table)}")
            if parts:
                self.conn.execute(f"INSERT INTO {self.relation(table)} {union}")
            self.conn.execute("COMMIT")
        except Exception:
            self.conn.execute("ROLLBACK")
            raise

    def write(self, table: Table, data: pa.Table, key_range: KeyRange | None) -> int:
        """Replace a key range with data in one transaction (a rerun never doubles rows)."""
        where = fp.range_predicate("duckdb", key_range)
        self.conn.execute("BEGIN")
        try:
            self.conn.execute(f"DELETE FROM {self.relation(table)} WHERE {where}")
            self.conn.register("liftshift_batch", readable(data))
            self.conn.execute(f"INSERT INTO {self.relation(table)} SELECT * FROM liftshift_batch")
            self.conn.unregister("liftshift_batch")
            self.conn.execute("COMMIT")
        except Exception:
            self.conn.execute("ROLLBACK")
            raise
        return data.num_rows

    def fingerprint(self, table: Table, key_range: KeyRange | None) -> Fingerprint:
        """Row count and checksum of a key range, computed inside DuckDB."""
        sql = fp.fingerprint_sql("duckdb", self.relation(table), table.columns, key_range)
        # fetchall: a result left unfinished blocks the connection's next statement
        (n, hi, lo), *_ = self.conn.execute(sql).fetchall() or [(0, 0, 0)]
        return fp.combine(n, hi, lo)

    def native_fingerprint(self, table: Table, key_range: KeyRange | None) -> Fingerprint:
        """A key range's row count and DuckDB's own row-hash checksum (see native_fingerprint_sql)."""
        sql = native_fingerprint_sql(self.relation(table), table, key_range)
        (n, hi, lo), *_ = self.conn.execute(sql).fetchall()
        return fp.combine(n, hi, lo)

    def columns(self, table: Table) -> list[TargetColumn]:
        """The table's columns as DuckDB describes them (empty when it does not exist)."""
        rows = self.conn.execute(
            "SELECT column_name, data_type, is_nullable = 'YES' FROM information_schema.columns "
            "WHERE table_name = ? ORDER BY ordinal_position",
            [table.name],
        ).fetchall()
        return [TargetColumn(name, _DECLARED.get(typ, typ), nullable) for name, typ, nullable in rows]

    def table_names(self) -> set[str]:
        """The names of the tables in the database."""
        rows = self.conn.execute("SELECT table_name FROM information_schema.tables").fetchall()
        return {name for (name,) in rows}

    def expected_type(self, column: Column) -> str:
        """The type name this target reports for a mapped column."""
        return target_mapping(column.mapping, self.dialect).type

    def query(self, sql: str) -> pa.Table:
        """Run a query and return its result as Arrow."""
        relation = self.conn.sql(sql)  # None for statements that return no rows
        return relation.to_arrow_table() if relation is not None else pa.table({})

    def upsert(self, table: Table, data: pa.Table, key: tuple[str, ...]) -> int:
        """Replace the rows whose primary key is in data by data, in one transaction."""
        # Registered outside the transaction: unregistering inside an aborted one would hide its error.
        self.conn.register("liftshift_batch", readable(data))
        try:
            self.conn.execute("BEGIN")
            try:
                self._delete_matching(table, "liftshift_batch", key)
                self.conn.execute(f"INSERT INTO {self.relation(table)} SELECT * FROM liftshift_batch")
                self.conn.execute("COMMIT")
            except Exception:
                self.conn.execute("ROLLBACK")
                raise
        finally:
            self.conn.unregister("liftshift_batch")
        return data.num_rows

    def delete_keys(self, table: Table, keys: pa.Table) -> int:
        """Delete the rows whose key columns equal a row of keys; returns how many went."""
        if keys.num_rows == 0:
            return 0
        self.conn.register("liftshift_keys", keys)
        try:
            return self._delete_matching(table, "liftshift_keys", tuple(keys.column_names))
        finally:
            self.conn.unregister("liftshift_keys")

    def keys(self, table: Table, columns: tuple[str, ...], key_range: KeyRange | None) -> pa.Table:
        """The key columns of the rows in a key range."""
        names = ", ".join(fp.quote("duckdb", c) for c in columns)
        where = fp.range_predicate("duckdb", key_range)
        return self.conn.sql(f"SELECT {names} FROM {self.relation(table)} WHERE {where}").to_arrow_table()

    def _delete_matching(self, table: Table, view: str, key: tuple[str, ...]) -> int:
        """Delete the rows whose key columns equal a row of a registered view; returns how many went."""
        rel = self.relation(table)
        match = " AND ".join(f"{rel}.{c} = k.{c}" for c in (fp.quote("duckdb", name) for name in key))
        found = self.conn.execute(f"DELETE FROM {rel} USING {view} AS k WHERE {match}").fetchone()
        return int(found[0]) if found else 0


# Text of at most one distinct value per this many rows (as the source's statistics estimate).
_REPETITIVE_ROWS = 500


def _storage(column: Column) -> str:
    """How DuckDB stores a column: text of many distinct values uncompressed, all else as it chooses.

    Why: DuckDB tries dictionary-plus-FSST on text, which for values that seldom repeat (ids, hashes,
    free text) more than doubles an insert's CPU (0.75 CPU-s against 0.27 per 5M rows of 22-byte
    text) to store it 1.5-3x smaller. Text that repeats (codes, statuses, countries) compresses
    7-12x as a dictionary at no extra CPU, so DuckDB keeps choosing there; so it does where the
    source has no statistics to tell.
    """
    if column.canonical is not Canonical.STRING or column.distinct_ratio is None:
        return ""
    return "" if column.distinct_ratio * _REPETITIVE_ROWS <= 1 else " USING COMPRESSION uncompressed"


def _open_failed(path: str, exc: Exception) -> str:
    """Why a DuckDB file did not open, and what to change."""
    held = re.search(r"Conflicting lock is held in (.*?) \(PID (\d+)\)", str(exc))
    if held:  # DuckDB lets one process write a file: a notebook or the DuckDB CLI still has it open
        return (
            f"DuckDB file {path} is open in another process ({held[1]}, PID {held[2]}); close it there "
            "(a notebook's connection, the DuckDB CLI) and run again"
        )
    return f"cannot open DuckDB file {path}: {exc}; check target.url"


def native_fingerprint_sql(relation: str, table: Table, key_range: KeyRange | None) -> str:
    """(rows, 0, checksum): the sum of DuckDB's hash() of each row, its values cast to the target types.

    Why not the canonical row hash: a chunk written into DuckDB is proved by DuckDB on both sides
    (over the Arrow chunk before the write, over the table after), so one engine's own hash is
    enough, and it costs 0.04 s per 1M rows against 1.1 s for MD5 over canonical text. hash()
    makes -0 equal to 0, so a float's sign bit is hashed beside it. Validate still proves the
    table against PostgreSQL with the canonical hash.
    """
    values = []
    for column in table.columns:
        name = fp.quote("duckdb", column.name)
        values.append(f"CAST({name} AS {column.target_type('duckdb')})")
        if column.canonical in (Canonical.FLOAT32, Canonical.FLOAT64):
            values.append(f"signbit({name})")
    where = fp.range_predicate("duckdb", key_range)
    return f"SELECT COUNT(*), 0, SUM(hash({', '.join(values)})) FROM {relation} WHERE {where}"


def readable(data: pa.Table) -> pa.Table:
    """The batch with 256-bit decimals as plain text, which DuckDB cannot scan but casts on insert."""
    for i, field in enumerate(data.schema):
        if isinstance(field.type, pa.Decimal256Type):
            data = data.set_column(i, field.name, _plain_text(data.column(i)))
    return data


def _plain_text(decimals: pa.ChunkedArray) -> pa.Array:
    """Decimals as digits with a point. Arrow writes one under 1e-6 in scientific notation (0E-38),
    which DuckDB reads but which hashes apart from every engine's '0': those few are redone."""
    text = decimals.combine_chunks().cast(pa.string())
    scientific = pc.fill_null(pc.match_substring(text, "E"), False)
    if not pc.any(scientific).as_py():
        return text
    redone = [format(d, "f") for d in pc.filter(decimals, scientific).to_pylist()]
    return pc.replace_with_mask(text, scientific, pa.array(redone, pa.string()))
