"""Great Expectations gates: each table's suite from expectations/, run on the source and the target."""

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import great_expectations as gx
import pandas as pd
from great_expectations.data_context.types.base import ProgressBarsConfig
from pydantic import BaseModel, ConfigDict

from liftshift.connectors.base import Table
from liftshift.errors import PlanError
from liftshift.redact import redact
from liftshift.suites import suite_path

SEVERITIES = ("error", "warning")
MAX_SAMPLE = 5


class ExpectationOutcome(BaseModel):
    """One expectation of one table's suite, run on one side."""

    model_config = ConfigDict(frozen=True)

    table: str
    side: str  # "source" or "target"
    expectation: str
    column: str | None
    severity: str
    passed: bool
    observed: str = ""  # the observed value, or how many rows broke it
    sample: list[str] = []  # a few of the values that broke it

    def describe(self) -> str:
        """One line: which expectation failed where, and how."""
        where = f" on {self.column}" if self.column else ""
        example = f"; e.g. {', '.join(self.sample)}" if self.sample else ""
        return f"{self.table}: {self.expectation}{where} failed in the {self.side} ({self.observed}){example}"


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


def _build(raw: list[dict[str, Any]], name: str = "check") -> gx.ExpectationSuite | None:
    with _quiet("great_expectations"):
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


def check(
    ctx: Any, side: str, engine: Any, table: Table, suite: gx.ExpectationSuite
) -> list[ExpectationOutcome]:
    """Run a table's suite on the engine (source or target) that holds it."""
    return run_suite(side, batch(ctx, side, engine, table, suite), table, suite)


def run_suite(side: str, batch: Any, table: Table, suite: gx.ExpectationSuite) -> list[ExpectationOutcome]:
    """Validate one batch against a suite; one outcome per expectation."""
    result = batch.validate(suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5})
    return [_outcome(side, table.name, r) for r in result.results]


def _outcome(side: str, table: str, r: Any) -> ExpectationOutcome:
    config = r.expectation_config
    found = r.result or {}
    if r.exception_info and r.exception_info.get("raised_exception"):
        observed = "could not run: " + redact(str(r.exception_info.get("exception_message")))[:300]
    elif found.get("unexpected_count") is not None:
        observed = f"{found['unexpected_count']:,} rows unexpected"
    else:
        observed = str(found.get("observed_value", ""))
    sample = [str(v) for v in (found.get("partial_unexpected_list") or [])[:MAX_SAMPLE]]
    return ExpectationOutcome(
        table=table, side=side, expectation=config.type, column=config.kwargs.get("column"),
        severity=(config.meta or {}).get("severity", "error"), passed=bool(r.success),
        observed=observed, sample=sample,
    )  # fmt: skip


def context() -> Any:
    """An ephemeral GX context: nothing is written to disk."""
    with _quiet("great_expectations"):
        ctx = gx.get_context(mode="ephemeral")
    # metric_calculations too: GX ignores 'globally' when it is the only flag (GX issue #9166)
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return ctx


def batch(ctx: Any, side: str, engine: Any, table: Table, suite: gx.ExpectationSuite) -> Any:
    """The whole table as a GX batch on the engine that holds it (a source or a target)."""
    name = f"{side}_{table.name}"
    if engine.dialect == "postgres":
        url = engine.url.replace("postgresql://", "postgresql+psycopg://", 1)
        asset = ctx.data_sources.add_sql(name, connection_string=url).add_table_asset(
            table.name, table_name=_pg_quote(table.name), schema_name=engine.schema
        )
    elif engine.dialect == "bigquery":
        # Names are qualified by dataset: the local endpoint ignores a query's default dataset.
        source = ctx.data_sources.add_bigquery(
            name, connection_string=f"bigquery://{engine.project}/{engine.dataset}?user_supplied_client=True",
            kwargs={"connect_args": {"client": engine.client}},
        )  # fmt: skip
        asset = source.add_table_asset(table.name, table_name=table.name, schema_name=engine.dataset)
    else:  # GX's DuckDB datasource is broken (GX issue #11579); DuckDB is a development target
        frame = engine.conn.execute(f"SELECT * FROM {engine.relation(table)}").df()
        return pandas_batch(ctx, name, frame, suite)
    return asset.add_batch_definition_whole_table("all").get_batch()


def _pg_quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def pandas_batch(ctx: Any, name: str, frame: pd.DataFrame, suite: gx.ExpectationSuite) -> Any:
    """A pandas batch; DATE columns compared with date bounds are given as dates.

    GX turns ISO text bounds into date objects, which pandas cannot compare with datetime64.
    """
    for expectation in suite.expectations:
        column = getattr(expectation, "column", None)
        bounds = [getattr(expectation, b, None) for b in ("min_value", "max_value")]
        is_date = any(isinstance(b, date) and not isinstance(b, datetime) for b in bounds)
        if is_date and column in frame.columns and pd.api.types.is_datetime64_any_dtype(frame[column]):
            frame[column] = frame[column].dt.date
    asset = ctx.data_sources.add_pandas(name).add_dataframe_asset(name)
    return asset.add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": frame})


def failures(outcomes: list[ExpectationOutcome]) -> list[str]:
    """Gate reasons: every failed error-level expectation."""
    return [o.describe() for o in outcomes if o.severity == "error" and not o.passed]
