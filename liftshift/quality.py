"""Great Expectations gates: each table's suite from expectations/, run on the source and the target."""

import json
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import great_expectations as gx
import pandas as pd
import pyarrow as pa
from great_expectations.data_context.types.base import ProgressBarsConfig
from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.types import UserDefinedType

from liftshift import fingerprint as fp
from liftshift.connectors.base import Table
from liftshift.errors import PlanError
from liftshift.outcomes import ExpectationOutcome
from liftshift.redact import redact
from liftshift.suites import suite_path

SEVERITIES = ("error", "warning")
_CONTEXT_LOCK = threading.Lock()  # _quiet sets a logger's level: one thread at a time
MAX_SAMPLE = 5


def load_suite(folder: Path, table: str) -> gx.ExpectationSuite | None:
    """A table's suite, or None when it has none; an expectation GX does not know is an error.

    GX logs and drops an unknown expectation type, which would pass a gate that checks nothing,
    so each expectation is counted after loading.
    """
    path = suite_path(folder, table)
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8")).get("expectations", [])
    except (json.JSONDecodeError, AttributeError) as exc:
        raise PlanError(f"{path} is not a suite: {exc}; fix the JSON or delete the file") from None
    for item in raw:
        severity = (item.get("meta") or {}).get("severity", "error")
        if severity not in SEVERITIES:
            raise PlanError(f"{path}: {item.get('type')} has severity '{severity}'; use error or warning")
        if _build([item]) is None:
            raise PlanError(
                f"{path}: Great Expectations cannot load expectation '{item.get('type')}' with kwargs "
                f"{item.get('kwargs')}; correct its type or arguments, or remove it"
            )
    return _build(raw, name=table)


def _build(raw: list[Any], name: str = "check") -> gx.ExpectationSuite | None:
    with _CONTEXT_LOCK, _quiet("great_expectations"):
        suite = gx.ExpectationSuite(name=name, expectations=raw)
    return suite if len(suite.expectations) == len(raw) else None


@contextmanager
def _quiet(logger: str) -> Iterator[None]:
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


class SideChecks:
    """Runs suites on one side (source or target): one GX context and one datasource for all tables."""

    def __init__(self, side: str, engine: Any) -> None:
        self.side, self.engine = side, engine
        self.ctx = context()
        self._source: Any = None

    def check(self, table: Table, suite: gx.ExpectationSuite) -> list[ExpectationOutcome]:
        """Run a table's suite on this side."""
        engine = self.engine
        if engine.dialect == "duckdb":  # GX's DuckDB datasource is broken (GX issue #11579): pandas
            frame = arrow_frame(engine.conn.sql(f"SELECT * FROM {engine.relation(table)}").to_arrow_table())
            batch = pandas_batch(self._datasource(), table.name, frame)
            return run_suite(self.side, batch, table, pandas_suite(suite, frame))
        return run_suite(self.side, self._batch(table), table, suite)

    def _batch(self, table: Table) -> Any:
        """The whole table as a GX batch of a SQL datasource."""
        engine = self.engine
        if engine.dialect == "postgres":
            _name_types_for_sqlalchemy(table)
        quoted = fp.quote("postgres", table.name) if engine.dialect == "postgres" else table.name
        # Names are qualified by schema/dataset: the local endpoint ignores a query's default dataset.
        schema = engine.schema if engine.dialect == "postgres" else engine.dataset
        asset = self._datasource().add_table_asset(table.name, table_name=quoted, schema_name=schema)
        return asset.add_batch_definition_whole_table("all").get_batch()

    def _datasource(self) -> Any:
        if self._source is None:
            self._source = _datasource(self.ctx, self.side, self.engine)
        return self._source


class _NamedType(UserDefinedType[Any]):
    """A PostgreSQL type SQLAlchemy does not know, spelled by its name in any DDL."""

    cache_ok = True
    pg_name = ""

    def get_col_spec(self, **kw: Any) -> str:
        return self.pg_name


def _name_types_for_sqlalchemy(table: Table) -> None:
    """Teach SQLAlchemy the table's types it does not know (point, line, composite types...).

    It reflects them as NullType, which it cannot render, so GX failed every expectation of a
    table holding one, on any column. Registered by name for the process, as SQLAlchemy asks.
    """
    for column in table.columns:
        name = re.sub(r"\(.*\)|\[\]", "", column.source_type).strip().lower()
        if name not in ischema_names:
            ischema_names[name] = type(f"PG_{name}", (_NamedType,), {"pg_name": name})


def _datasource(ctx: Any, name: str, engine: Any) -> Any:
    if engine.dialect == "postgres":
        _, rest = engine.url.split("://", 1)  # postgres:// and postgresql:// alike
        # GX reads $NAME in a connection string as a variable to substitute; %24 is libpq's $ too.
        rest = rest.replace("$", "%24")
        return ctx.data_sources.add_sql(name, connection_string=f"postgresql+psycopg://{rest}")
    if engine.dialect == "bigquery":
        return ctx.data_sources.add_bigquery(
            name, connection_string=f"bigquery://{engine.project}/{engine.dataset}?user_supplied_client=True",
            kwargs={"connect_args": {"client": engine.client}},
        )  # fmt: skip
    return ctx.data_sources.add_pandas(name)


def run_suite(side: str, batch: Any, table: Table, suite: gx.ExpectationSuite) -> list[ExpectationOutcome]:
    """Validate one batch against a suite; one outcome per expectation."""
    result_format = {"result_format": "SUMMARY", "partial_unexpected_count": MAX_SAMPLE}
    result = batch.validate(suite, result_format=result_format)
    return [_outcome(side, table.name, r) for r in result.results]


def _outcome(side: str, table: str, r: Any) -> ExpectationOutcome:
    config = r.expectation_config
    found = r.result or {}
    error = _exception(r.exception_info)
    if error is not None:
        observed = "could not run: " + redact((error.strip().splitlines() or [""])[0])[:300]
    elif found.get("unexpected_count") is not None:
        observed = f"{found['unexpected_count']:,} rows unexpected"
    else:
        observed = str(found.get("observed_value", ""))
    sample = [_text(v) for v in (found.get("partial_unexpected_list") or [])[:MAX_SAMPLE]]
    return ExpectationOutcome(
        table=table, side=side, expectation=config.type, column=config.kwargs.get("column"),
        severity=(config.meta or {}).get("severity", "error"), passed=bool(r.success),
        observed=observed, sample=sample,
    )  # fmt: skip


def _text(value: Any) -> str:
    """A value as text; a Timestamp beyond Python's years 1…9999 as numpy writes it (in UTC)."""
    if isinstance(value, pd.Timestamp) and not 1 <= value.year <= 9999:
        return f"{value.to_datetime64()}{'+00:00' if value.tzinfo else ''}"
    return str(value)


def _exception(info: Any) -> str | None:
    """The message of an exception GX caught, flat or (GX 1.x) nested under a metric's id."""
    if not isinstance(info, dict):
        return None
    entries = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    raised = [e for e in entries if e.get("raised_exception")]
    return str(raised[0].get("exception_message")) if raised else None


def context() -> Any:
    """An ephemeral GX context: nothing is written to disk."""
    with _CONTEXT_LOCK, _quiet("great_expectations"):
        ctx = gx.get_context(mode="ephemeral")
    # metric_calculations too: GX ignores 'globally' when it is the only flag (GX issue #9166)
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return ctx


def arrow_frame(data: pa.Table) -> pd.DataFrame:
    """A pandas frame holding the values as the target does.

    Arrow-backed columns keep a NULL apart from NaN (numpy floats hold both as NaN, which GX counts
    as null) and decimals exact; dates and timestamps become datetime64, which holds years Python's
    date and datetime cannot (before 1, after 9999).
    """
    return data.to_pandas(types_mapper=_arrow_backed, date_as_object=False)


def _arrow_backed(kind: pa.DataType) -> pd.ArrowDtype | None:
    return None if pa.types.is_date(kind) or pa.types.is_timestamp(kind) else pd.ArrowDtype(kind)


def pandas_batch(source: Any, name: str, frame: pd.DataFrame) -> Any:
    """A pandas batch of the whole frame."""
    asset = source.add_dataframe_asset(name)
    return asset.add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": frame})


def pandas_suite(suite: gx.ExpectationSuite, frame: pd.DataFrame) -> gx.ExpectationSuite:
    """The suite with date and datetime bounds on datetime64 columns given as pandas Timestamps.

    GX turns ISO text bounds into dates and datetimes; a Timestamp beyond Python's years compares
    with neither, and pandas compares no Timestamp with a date, but Timestamps with each other.
    """
    expectations = []
    for expectation in suite.expectations:
        column = getattr(expectation, "column", None)
        if column in frame.columns and pd.api.types.is_datetime64_any_dtype(frame[column]):
            bounds = {
                name: pd.Timestamp(bound)
                for name in ("min_value", "max_value")
                if isinstance(bound := getattr(expectation, name, None), date)
            }
            expectation = expectation.copy(update=bounds)
        expectations.append(expectation)
    return _build(expectations, name=suite.name) or suite
