"""Names a target cannot take: assess lists them before transfer creates anything.

PostgreSQL names are case-sensitive and may hold any character. DuckDB matches table and column
names without regard to case, so "Orders" and "orders" would land in one table; BigQuery does so
for column names, and allows fewer characters in names than PostgreSQL does.
"""

import unicodedata
from collections import defaultdict

from liftshift.connectors.base import Table

# BigQuery table names: letters, marks, numbers, connectors (_), dashes and spaces; 1,024 bytes.
_BIGQUERY_TABLE_CATEGORIES = ("L", "M", "N", "Pc", "Pd", "Zs")
_BIGQUERY_TABLE_BYTES = 1024
# BigQuery column names (flexible column names): 300 characters, none of these, no reserved prefix.
_BIGQUERY_COLUMN_CHARS = set("!\"$()*,./;?@[\\]^`{}~")
_BIGQUERY_COLUMN_LENGTH = 300
_BIGQUERY_RESERVED = ("_TABLE_", "_FILE_", "_PARTITION", "_ROW_TIMESTAMP", "__ROOT__", "_COLIDENTIFIER")
_LEAVE_OUT = "leave the table out of the plan's tables"
_FIX = f"rename it in the source, or {_LEAVE_OUT}"


def name_problems(tables: list[Table], dialect: str) -> dict[str, list[str]]:
    """Per table, why the target cannot take its name or a column's (tables without problems absent)."""
    found: dict[str, list[str]] = defaultdict(list)
    for name, problem in merged_tables(tables, dialect):
        found[name].append(problem)
    for table in tables:
        found[table.name] += _table_problems(table, dialect)
    return {name: problems for name, problems in found.items() if problems}


def merged_tables(tables: list[Table], dialect: str) -> list[tuple[str, str]]:
    """Tables whose names the target would take for an earlier table's, each with why."""
    if dialect != "duckdb":
        return []
    return [
        (name, f"table {name!r} and table {other!r} would be one table in DuckDB, which ignores case "
               f"in names; {_FIX}")
        for name, other in _same_but_case([t.name for t in tables])
    ]  # fmt: skip


def _table_problems(table: Table, dialect: str) -> list[str]:
    problems = []
    if dialect == "bigquery":
        problems += _bigquery_table_name(table.name)
        problems += [p for c in table.columns for p in _bigquery_column_name(c.name)]
    if dialect in ("duckdb", "bigquery"):
        engine = "DuckDB" if dialect == "duckdb" else "BigQuery"
        problems += [
            f"columns {name!r} and {other!r} would be one column in {engine}, which ignores case in "
            f"column names; rename one in the source, or {_LEAVE_OUT}"
            for name, other in _same_but_case([c.name for c in table.columns])
        ]
    return problems


def _bigquery_table_name(name: str) -> list[str]:
    odd = sorted({ch for ch in name if not unicodedata.category(ch).startswith(_BIGQUERY_TABLE_CATEGORIES)})
    problems = []
    if odd:
        problems.append(f"BigQuery table names cannot hold {' '.join(map(repr, odd))}; {_FIX}")
    if len(name.encode()) > _BIGQUERY_TABLE_BYTES:
        problems.append(f"BigQuery table names are at most {_BIGQUERY_TABLE_BYTES} bytes; {_FIX}")
    return problems


def _bigquery_column_name(name: str) -> list[str]:
    odd = sorted(set(name) & _BIGQUERY_COLUMN_CHARS)
    why = []
    if odd:
        why.append(f"holds {' '.join(map(repr, odd))}")
    if len(name) > _BIGQUERY_COLUMN_LENGTH:
        why.append(f"is longer than {_BIGQUERY_COLUMN_LENGTH} characters")
    if name.upper().startswith(_BIGQUERY_RESERVED):
        why.append("starts with a prefix BigQuery reserves")
    return [f"column {name!r} {' and '.join(why)}, which BigQuery does not allow; {_FIX}"] if why else []


def _same_but_case(names: list[str]) -> list[tuple[str, str]]:
    """Each name that equals an earlier one but for case, with that earlier one."""
    first: dict[str, str] = {}
    clashes = []
    for name in names:
        seen = first.setdefault(name.casefold(), name)
        if seen != name:
            clashes.append((name, seen))
    return clashes
