"""PostgreSQL as a target: the source's own types, rows loaded by COPY."""

import pyarrow as pa

from liftshift import fingerprint as fp
from liftshift.connectors.base import Column, KeyRange, Table, TargetColumn
from liftshift.connectors.postgres import _COLUMNS_SQL, PostgresSource


class PostgresTarget(PostgresSource):
    """A PostgreSQL schema liftshift writes into; it reads and fingerprints as a source does."""

    def prepare(self, table: Table) -> None:
        """Create the table with the source's column types unless it exists."""
        cols = ", ".join(
            f"{fp.quote('postgres', c.name)} {c.source_type}{'' if c.nullable else ' NOT NULL'}"
            for c in table.columns
        )
        self.conn.execute(f"CREATE TABLE IF NOT EXISTS {self.relation(table)} ({cols})")

    def write(self, table: Table, data: pa.Table, key_range: KeyRange | None) -> int:
        """Replace a key range with data in one transaction."""
        names = ", ".join(fp.quote("postgres", c.name) for c in table.columns)
        where = fp.range_predicate("postgres", key_range)
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute(f"DELETE FROM {self.relation(table)} WHERE {where}")
            with cur.copy(f"COPY {self.relation(table)} ({names}) FROM STDIN") as copy:
                for batch in data.to_batches():
                    for row in zip(*(col.to_pylist() for col in batch.columns), strict=True):
                        copy.write_row(row)
        return data.num_rows

    def columns(self, table: Table) -> list[TargetColumn]:
        """The table's columns with their declared types (empty when it does not exist)."""
        oid = self.conn.execute("SELECT to_regclass(%s)::oid", (self.relation(table),)).fetchone()
        if not oid or oid[0] is None:
            return []
        rows = self.conn.execute(_COLUMNS_SQL, (oid[0],)).fetchall()
        return [TargetColumn(name, typ, nullable) for name, typ, nullable in rows]

    def expected_type(self, column: Column) -> str:
        """The source type: a PostgreSQL target keeps it."""
        return column.source_type
