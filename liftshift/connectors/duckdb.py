"""DuckDB as a target: a local warehouse for development and fast tests."""

from pathlib import Path

import duckdb
import pyarrow as pa

from liftshift import fingerprint as fp
from liftshift.connectors.base import Column, Fingerprint, KeyRange, Table, TargetColumn
from liftshift.errors import ConnectError
from liftshift.types import duckdb_type

# information_schema spells some types differently from DDL.
_REPORTED = {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE", "REAL": "FLOAT"}


class DuckDBTarget:
    """A DuckDB database file liftshift writes into."""

    dialect = "duckdb"

    def __init__(self, path: str) -> None:
        self.path = path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = duckdb.connect(path)
        except duckdb.Error as exc:
            raise ConnectError(f"cannot open DuckDB file {path}: {exc}; check target.url") from None

    def close(self) -> None:
        """Close the database."""
        self.conn.close()

    def relation(self, table: Table) -> str:
        """The quoted table name."""
        return fp.quote("duckdb", table.name)

    def prepare(self, table: Table) -> None:
        """Create the table with mapped types unless it exists."""
        cols = ", ".join(
            f"{fp.quote('duckdb', c.name)} "
            f"{duckdb_type(c.canonical, c.mapping.precision, c.mapping.scale)}"
            f"{'' if c.nullable else ' NOT NULL'}"
            for c in table.columns
        )
        self.conn.execute(f"CREATE TABLE IF NOT EXISTS {self.relation(table)} ({cols})")

    def write(self, table: Table, data: pa.Table, key_range: KeyRange | None) -> int:
        """Replace a key range with data in one transaction (a rerun never doubles rows)."""
        where = fp.range_predicate("duckdb", key_range)
        self.conn.execute("BEGIN")
        try:
            self.conn.execute(f"DELETE FROM {self.relation(table)} WHERE {where}")
            self.conn.register("liftshift_batch", data)
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
        n, hi, lo = self.conn.execute(sql).fetchone() or (0, 0, 0)
        return fp.combine(n, hi, lo)

    def columns(self, table: Table) -> list[TargetColumn]:
        """The table's columns as DuckDB describes them (empty when it does not exist)."""
        rows = self.conn.execute(
            "SELECT column_name, data_type, is_nullable = 'YES' FROM information_schema.columns "
            "WHERE table_name = ? ORDER BY ordinal_position",
            [table.name],
        ).fetchall()
        return [TargetColumn(name, typ, nullable) for name, typ, nullable in rows]

    def expected_type(self, column: Column) -> str:
        """The type name this target reports for a mapped column."""
        declared = duckdb_type(column.canonical, column.mapping.precision, column.mapping.scale)
        return _REPORTED.get(declared, declared)

    def query(self, sql: str) -> pa.Table:
        """Run a query and return its result as Arrow."""
        relation = self.conn.sql(sql)  # None for statements that return no rows
        return relation.to_arrow_table() if relation is not None else pa.table({})
