"""Bootstrap expectation suites (Great Expectations 1.x JSON) from the source profile."""

import json
import math
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from liftshift.connectors.base import Table
from liftshift.files import write_text
from liftshift.profile import TableProfile

ROW_COUNT_SLACK_PERCENT = 10  # the bootstrap lets the row count drift this much either way


def suite_path(folder: Path, table: str) -> Path:
    """The suite file of a table: expectations/<table>.json (a '/' in the name becomes '_')."""
    return folder / f"{table.replace('/', '_')}.json"


def bootstrap(folder: Path, table: Table, unique_keys: list[list[str]], profile: TableProfile) -> bool:
    """Write a table's suite unless one exists (users edit them); True when written."""
    path = suite_path(folder, table.name)
    if path.exists():
        return False
    suite = {
        "name": table.name,
        "expectations": expectations(table, unique_keys, profile),
        "meta": {"written_by": "liftshift assess", "profiled_rows": profile.rows},
    }
    write_text(path, json.dumps(suite, indent=2, ensure_ascii=False) + "\n")
    return True


def expectations(table: Table, unique_keys: list[list[str]], profile: TableProfile) -> list[dict[str, Any]]:
    """Row count range, not-null and unique columns, small value sets, and value ranges."""
    rows = profile.rows
    out = [
        _expect(
            "expect_table_row_count_to_be_between",
            "warning",
            min_value=rows * (100 - ROW_COUNT_SLACK_PERCENT) // 100,
            max_value=-(-rows * (100 + ROW_COUNT_SLACK_PERCENT) // 100),
        )
    ]
    nullable = {c.name for c in table.columns if c.nullable}
    for key in [list(table.primary_key), *unique_keys] if table.primary_key else unique_keys:
        if len(key) == 1:
            out.append(_expect("expect_column_values_to_be_unique", "error", column=key[0]))
        else:  # SQL's UNIQUE lets keys holding a NULL repeat; on pandas GX would take NULLs as equal
            skip = {"ignore_row_if": "any_value_is_missing"} if nullable & set(key) else {}
            out.append(_expect("expect_compound_columns_to_be_unique", "error", column_list=key, **skip))
    for column in table.columns:
        found = profile.columns.get(column.name)
        if found is None:
            continue
        if not column.nullable or (rows and found.nulls == 0):
            severity = "warning" if column.nullable else "error"
            out.append(_expect("expect_column_values_to_not_be_null", severity, column=column.name))
        if found.values is not None:
            values = [_json(v) for v in found.values]
            out.append(
                _expect("expect_column_values_to_be_in_set", "warning", column=column.name, value_set=values)
            )
        elif found.minimum is not None and found.maximum is not None:
            out.append(
                _expect(
                    "expect_column_values_to_be_between", "warning", column=column.name,
                    min_value=_json(found.minimum, down=True), max_value=_json(found.maximum, down=False),
                )
            )  # fmt: skip
    return out


def _expect(kind: str, severity: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs, "meta": {"severity": severity}}


def _json(value: Any, down: bool | None = None) -> Any:
    """A JSON value; a numeric bound (down: the lower one) widens so it still holds (see _widened)."""
    if isinstance(value, Decimal | int) and down is not None:
        return _widened(value, down)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return value


def _widened(value: Decimal | int, down: bool) -> int:
    """The nearest whole number at or beyond value that a float holds exactly.

    GX reads every numeric bound as a float: rounded, a bound above 2**53 could cut off the very
    values it was drawn from, wherever they are compared exactly (pandas batches of decimals).
    """
    whole = math.floor(value) if down else math.ceil(value)
    near = float(whole)
    if (near > whole) if down else (near < whole):
        near = math.nextafter(near, -math.inf if down else math.inf)
    return int(near)
