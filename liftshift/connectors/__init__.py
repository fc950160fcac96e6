"""Connectors: open the plan's source and target by URL scheme."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from liftshift.connectors.base import Source, Target
from liftshift.plan import Plan


class Opener(Protocol):
    """Opens a target from its URL; state_dir holds what liftshift keeps beside the plan."""

    def __call__(self, url: str, state_dir: Path, stage: str | None = None) -> Target: ...


def _bigquery(url: str, state_dir: Path, stage: str | None = None) -> Target:
    from liftshift.connectors.bigquery import BigQueryTarget, parse_url
    from liftshift.connectors.bigquery_local import ensure_endpoint

    project, dataset, endpoint = parse_url(url)
    if endpoint == "local":
        endpoint = ensure_endpoint(state_dir / "bigquery", project).rest_url
    return BigQueryTarget(project, dataset, endpoint, stage)


def _duckdb(url: str, state_dir: Path, stage: str | None = None) -> Target:
    from liftshift.connectors.duckdb import DuckDBTarget

    # As in SQLAlchemy URLs: duckdb:///rel/path is beside the plan, duckdb:////abs/path is not.
    path = url.removeprefix("duckdb:///")
    if path == ":memory:" or Path(path).is_absolute():
        return DuckDBTarget(path)
    return DuckDBTarget(str(state_dir.parent / path))


def _postgres(url: str, state_dir: Path, stage: str | None = None) -> Target:
    from liftshift.connectors.postgres_target import PostgresTarget

    return PostgresTarget(url)


# One line per target connector: URL scheme -> opener.
TARGETS: dict[str, Opener] = {
    "bigquery": _bigquery,
    "duckdb": _duckdb,
    "postgresql": _postgres,
    "postgres": _postgres,
}


def open_source(plan: Plan) -> Source:
    """Connect to the plan's source."""
    from liftshift.connectors.postgres import PostgresSource

    return PostgresSource(plan.source.url, plan.source.schema_name)


def open_target(plan: Plan) -> Target:
    """Connect to the plan's target, starting the local BigQuery endpoint if the plan asks."""
    scheme = plan.target.url.split("://", 1)[0]
    return TARGETS[scheme](plan.target.url, plan.state_dir(), plan.target.stage)


@contextmanager
def opened(plan: Plan) -> Iterator[tuple[Source, Target]]:
    """The plan's source and target, both closed on the way out."""
    source = open_source(plan)
    try:
        target = open_target(plan)
        try:
            yield source, target
        finally:
            target.close()
    finally:
        source.close()
