"""PostgreSQL as a target: built-in types kept, others as text or jsonb, rows loaded by COPY."""

from dataclasses import replace
from decimal import Decimal

import pyarrow as pa

from liftshift import fingerprint as fp
from liftshift.connectors.base import Chunk, Column, Fingerprint, KeyRange, Table, TargetColumn
from liftshift.connectors.postgres import _COLUMNS_SQL, PostgresSource, _key_match
from liftshift.pgtypes import POSTGRES_HOLDERS
from liftshift.pgvalues import python_values
from liftshift.types import Canonical, target_mapping


class PostgresTarget(PostgresSource):
    """A PostgreSQL schema liftshift writes into; it reads and fingerprints as a source does."""

    stages_chunks = False  # a key range is replaced in the table itself, in one transaction
    plan_key = "target.url"

    def prepare(self, table: Table) -> None:
        """Create the table with the mapped column types unless it exists."""
        cols = ", ".join(
            f"{fp.quote('postgres', c.name)} {c.target_type(self.dialect)}{'' if c.nullable else ' NOT NULL'}"
            for c in table.columns
        )
        self.conn.execute(f"CREATE TABLE IF NOT EXISTS {self.relation(table)} ({cols})")

    def drop(self, table: Table) -> None:
        """Drop the table if it exists."""
        self.conn.execute(f"DROP TABLE IF EXISTS {self.relation(table)}")

    def assemble(self, table: Table, parts: list[Table]) -> None:
        """Replace the table by its staging tables' rows in one transaction."""
        union = " UNION ALL ".join(f"SELECT * FROM {self.relation(p)}" for p in parts)
        with self.conn.transaction():
            self.conn.execute(f"DELETE FROM {self.relation(table)}")
            if parts:
                self.conn.execute(f"INSERT INTO {self.relation(table)} {union}")

    def write(self, table: Table, data: pa.Table, key_range: KeyRange | None) -> int:
        """Replace a key range with data in one transaction."""
        where = fp.range_predicate("postgres", key_range)
        with self.conn.transaction():
            self.conn.execute(f"DELETE FROM {self.relation(table)} WHERE {where}")
            self._copy_in(table, data)
        return data.num_rows

    def fingerprint(self, table: Table, key_range: Chunk) -> Fingerprint:
        """Row count and checksum of a key range, over the values as this target stores them."""
        return super().fingerprint(self.stored(table), key_range)

    def read_table(self, table: Table, key_range: Chunk) -> pa.Table:
        """Read a key range as the source would, over the values as this target stores them."""
        return super().read_table(self.stored(table), key_range)

    def columns(self, table: Table) -> list[TargetColumn]:
        """The table's columns with their declared types (empty when it does not exist)."""
        oid = self.conn.execute("SELECT to_regclass(%s)::oid", (self.relation(table),)).fetchone()
        if not oid or oid[0] is None:
            return []
        rows = self.conn.execute(_COLUMNS_SQL, (oid[0],)).fetchall()
        return [TargetColumn(name, typ, nullable) for name, typ, nullable, *_ in rows]

    def table_names(self) -> set[str]:
        """The names of the tables in the target schema."""
        rows = self.conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (self.schema,))
        return {name for (name,) in rows.fetchall()}

    def stored(self, table: Table) -> Table:
        """The table as stored here: a column held as text or jsonb holds its canonical value already."""
        return _stored(table)

    def expected_type(self, column: Column) -> str:
        """The mapped type: the source's own for built-in types."""
        return target_mapping(column.mapping, self.dialect).type

    def upsert(self, table: Table, data: pa.Table, key: tuple[str, ...]) -> int:
        """Replace the rows whose primary key is in data by data, in one transaction."""
        with self.conn.transaction():
            self.delete_keys(table, data.select(list(key)))
            self._copy_in(table, data)
        return data.num_rows

    def delete_keys(self, table: Table, keys: pa.Table) -> int:
        """Delete the rows whose key columns equal a row of keys; returns how many went."""
        if keys.num_rows == 0:
            return 0
        where = _key_match(self.conn, table, keys, "target")
        return self.conn.execute(f"DELETE FROM {self.relation(table)} WHERE {where}").rowcount

    def _copy_in(self, table: Table, data: pa.Table) -> None:
        """Append data to the table by COPY."""
        names = ", ".join(fp.quote("postgres", c.name) for c in table.columns)
        decimals = [c.canonical is Canonical.DECIMAL for c in table.columns]
        with self.conn.cursor() as cur, cur.copy(f"COPY {self.relation(table)} ({names}) FROM STDIN") as copy:
            for batch in data.to_batches():
                columns = [
                    [_plain(v) for v in col.to_pylist()] if decimal else python_values(col)
                    for col, decimal in zip(batch.columns, decimals, strict=True)
                ]
                for row in zip(*columns, strict=True):
                    copy.write_row(row)


def _stored(table: Table) -> Table:
    return replace(
        table,
        columns=tuple(
            replace(c, mapping=replace(c.mapping, cast=None))
            if target_mapping(c.mapping, "postgres").type in POSTGRES_HOLDERS
            else c
            for c in table.columns
        ),
    )


def _plain(value: Decimal | None) -> str | None:
    """A decimal as plain digits without trailing fractional zeros, which numeric and money read.

    Arrow pads a value to its type's scale (an unconstrained numeric to 38 digits); str() would
    write 0E-9, which money refuses.
    """
    if value is None:
        return None
    text = format(value, "f")  # not normalize(): it rounds to the context's 28 digits
    return text.rstrip("0").rstrip(".") if "." in text else text
