"""The contracts every connector keeps: Arrow at the boundary, fingerprints that agree."""

import hashlib
from collections.abc import Generator, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import pyarrow as pa

from liftshift.errors import UnsupportedTypeError
from liftshift.pgtypes import PgType
from liftshift.types import Canonical, Mapping, Verdict, arrow_type, target_mapping


@dataclass(frozen=True)
class TableRef:
    """A table's schema and name in the source."""

    schema: str
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class Column:
    """One column: its source type and where that type maps to."""

    name: str
    source_type: str
    nullable: bool
    mapping: Mapping
    pg_type: PgType | None = None  # what pg_type says of it (enum labels, domain base, element)
    # Distinct values per row as the source's statistics estimate them; None where never analyzed.
    distinct_ratio: float | None = None

    @property
    def canonical(self) -> Canonical:
        """The canonical type; only columns without a blocker are ever moved."""
        if self.mapping.canonical is None:
            raise ValueError(f"column {self.name} ({self.source_type}) has no mapping")
        return self.mapping.canonical

    def arrow_type(self) -> pa.DataType:
        """The Arrow type values of this column travel as."""
        return arrow_type(self.canonical, self.mapping.precision, self.mapping.scale)

    def target_type(self, dialect: str) -> str:
        """The column's type in a target dialect; UnsupportedTypeError if it cannot go there."""
        mapped = target_mapping(self.mapping, dialect)
        if mapped.verdict is Verdict.BLOCKER:
            raise UnsupportedTypeError(
                f"column {self.name} ({self.source_type}) cannot be moved to {dialect}: {mapped.note}"
            )
        return mapped.type


@dataclass(frozen=True)
class Table:
    """A source table as the catalog describes it."""

    ref: TableRef
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    row_estimate: int = 0
    total_bytes: int = 0
    foreign_keys: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        """The table's name, which is also its name in the target."""
        return self.ref.name

    def column(self, name: str) -> Column:
        """The column called name."""
        return next(c for c in self.columns if c.name == name)

    def arrow_schema(self) -> pa.Schema:
        """The Arrow schema batches of this table carry."""
        return pa.schema([pa.field(c.name, c.arrow_type(), c.nullable) for c in self.columns])


# A bound of a key: one value per key column (int, or text for decimals, dates, timestamps, uuids).
Bound = tuple[Any, ...]


@dataclass(frozen=True)
class KeyRange:
    """Rows whose key is in [low, high); None leaves that side open.

    The key is one column (bounds may then be plain values) or several, compared as a row value,
    column by column. types gives each key column's canonical type, so bounds are written as
    literals of that type; empty means integers.
    """

    column: str | tuple[str, ...]
    low: Any = None
    high: Any = None
    types: tuple[Canonical, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        """The key's columns, in key order."""
        return (self.column,) if isinstance(self.column, str) else tuple(self.column)

    def bound(self, value: Any) -> Bound | None:
        """A bound as one value per key column."""
        if value is None:
            return None
        return tuple(value) if isinstance(value, (tuple, list)) else (value,)


@dataclass(frozen=True)
class CtidRange:
    """Rows of the source in heap pages [low, high) (for tables without a primary key).

    The target has no ctid, so such a chunk lands in a staging table of its own (see staging())
    and the table is assembled from all of them at the end (liftshift.assembly).
    """

    low: int | None = None
    high: int | None = None


Chunk = KeyRange | CtidRange | None  # None: the whole table


# PostgreSQL cuts longer names to 63 bytes: the parts of a long-named table would become one.
_NAME_BYTES = 63


_PART = "__liftshift_part_"


def staging(table: Table, chunk: int) -> Table:
    """The staging table (part) a chunk lands in before the table is assembled (liftshift.assembly):
    TABLE__liftshift_part_N, or for a long name its first bytes and a hash of it in place of TABLE."""
    name = f"{table.name}{_PART}{chunk}"
    if len(name.encode()) > _NAME_BYTES:
        digest = hashlib.sha1(table.name.encode()).hexdigest()[:8]
        name = f"{table.name.encode()[:24].decode(errors='ignore')}_{digest}{_PART}{chunk}"
    return replace(table, ref=TableRef(table.ref.schema, name))


def is_part(table: Table) -> bool:
    """Whether the table is a part staging() named."""
    return _PART in table.name


@dataclass(frozen=True)
class Fingerprint:
    """A range's row count and the sum modulo 2**64 of its rows' 64-bit hashes."""

    rows: int
    checksum: int


@dataclass(frozen=True)
class TargetColumn:
    """A column as the target reports it, for schema parity."""

    name: str
    type: str
    nullable: bool


class Source(Protocol):
    """A database liftshift migrates from."""

    dialect: str

    def relation(self, table: Table) -> str: ...
    def catalog(self, patterns: Iterable[str] = ("*",)) -> list[Table]: ...
    def has_table(self, table: Table) -> bool: ...
    def read(self, table: Table, key_range: KeyRange | None) -> Iterator[pa.RecordBatch]: ...
    def fingerprint(self, table: Table, key_range: KeyRange | None) -> Fingerprint: ...
    def key_bounds(self, table: Table, column: str) -> tuple[int, int] | None: ...
    def key_cuts(self, table: Table, rows: int, chunk_rows: int) -> list[Bound]: ...
    def pages(self, table: Table) -> int: ...
    def exported_snapshot(self) -> AbstractContextManager[str]: ...
    def row_count(self, table: Table) -> int: ...
    def planned_rows(self, table: Table) -> int: ...
    def query(self, sql: str) -> pa.Table: ...
    def close(self) -> None: ...
    def snapshot(self) -> AbstractContextManager[None]: ...
    def max_value(self, table: Table, column: str) -> str | None: ...
    def read_since(
        self, table: Table, column: str, mark: str | None, inclusive: bool = True,
        key_range: KeyRange | None = None, batch_bytes: int = 64 * 2**20, written_since: int | None = None,
    ) -> Generator[pa.Table, None, None]: ...  # fmt: skip
    def fingerprint_at(self, table: Table, column: str, mark: str) -> Fingerprint: ...
    def keys(self, table: Table, columns: tuple[str, ...], key_range: KeyRange | None) -> pa.Table: ...
    def read_keys(self, table: Table, keys: pa.Table) -> pa.Table: ...


class Target(Protocol):
    """A warehouse liftshift migrates into."""

    dialect: str
    stages_chunks: bool  # every chunk lands in a part of its own (liftshift.assembly)

    def relation(self, table: Table) -> str: ...
    def prepare(self, table: Table) -> None: ...
    def drop(self, table: Table) -> None: ...
    def assemble(self, table: Table, parts: list[Table]) -> None: ...
    def write(self, table: Table, data: pa.Table, key_range: KeyRange | None) -> int: ...
    def fingerprint(self, table: Table, key_range: KeyRange | None) -> Fingerprint: ...
    def columns(self, table: Table) -> list[TargetColumn]: ...
    def table_names(self) -> set[str]: ...
    def expected_type(self, column: Column) -> str: ...
    def query(self, sql: str) -> pa.Table: ...
    def close(self) -> None: ...
    def upsert(self, table: Table, data: pa.Table, key: tuple[str, ...]) -> int: ...
    def delete_keys(self, table: Table, keys: pa.Table) -> int: ...
    def keys(self, table: Table, columns: tuple[str, ...], key_range: KeyRange | None) -> pa.Table: ...
