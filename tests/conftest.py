"""Real components for the tests: an embedded PostgreSQL, the local BigQuery endpoint, Dask."""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml

from liftshift.connectors.bigquery_local import ensure_endpoint, stop_endpoint
from liftshift.demo import start_postgres
from liftshift.plan import Plan, load_plan

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
REPO = Path(__file__).resolve().parent.parent
BQ_PROJECT = "liftshift-test"


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A PostgreSQL server for the whole run; the URL of its 'legacy' database."""
    return start_postgres(tmp_path_factory.mktemp("pg") / "data")


def new_database(pg_admin_url: str, encoding: str = "UTF8") -> str:
    """Create an empty database on the session's server; returns its URL."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    # The server's locale is UTF-8: a database in another encoding needs the C locale.
    locale = "" if encoding == "UTF8" else " LC_COLLATE 'C' LC_CTYPE 'C'"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} ENCODING '{encoding}'{locale} TEMPLATE template0")
    return pg_admin_url.replace("/legacy?", f"/{name}?", 1)


@pytest.fixture
def pg_url(pg_admin_url: str) -> str:
    """A fresh, empty database of its own for one test."""
    return new_database(pg_admin_url)


@pytest.fixture(scope="session")
def bq_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The local BigQuery endpoint for the whole run; its REST URL."""
    data_dir = tmp_path_factory.mktemp("bq")
    yield ensure_endpoint(data_dir, BQ_PROJECT).rest_url
    stop_endpoint(data_dir)


@pytest.fixture(scope="session", autouse=True)
def dask_cluster() -> Iterator[str]:
    """One two-worker Dask cluster for every transfer in the run (LIFTSHIFT_DASK_ADDRESS)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        os.environ["LIFTSHIFT_DASK_ADDRESS"] = cluster.scheduler_address
        yield cluster.scheduler_address
        os.environ.pop("LIFTSHIFT_DASK_ADDRESS", None)


def bigquery_url(endpoint: str) -> str:
    """A target URL for a dataset of its own on the local endpoint."""
    return f"bigquery://{BQ_PROJECT}/ds_{uuid.uuid4().hex[:10]}?endpoint={endpoint}"


# The demo's customers.profile is jsonb, which BigQuery stores lossily (2.50 becomes 2.5).
DEMO_ACCEPT = ["customers.profile"]


def write_plan(folder: Path, source_url: str, target_url: str, **extra: object) -> Plan:
    """Write a plan file (with the repo's workload) into folder and load it."""
    body = {
        "name": "test-plan",
        "source": {"url": source_url},
        "target": {"url": target_url},
        "workload": str(REPO / "workload"),
        **extra,
    }
    path = folder / "plan.yaml"
    path.write_text(yaml.safe_dump(body))
    return load_plan(path)
