"""The Prefect flows, run under Prefect's test harness against real PostgreSQL and DuckDB."""

import asyncio
from collections.abc import Iterator

import pytest
from prefect.client.orchestration import get_client
from prefect.testing.utilities import prefect_test_harness

from flows.assess import assess
from flows.common import GateFailed, artifact_key
from flows.lifecycle import lifecycle
from liftshift.demo import seed
from tests.conftest import DEMO_ACCEPT, write_plan


@pytest.fixture(scope="module", autouse=True)
def harness() -> Iterator[None]:
    with prefect_test_harness(server_startup_timeout=120):
        yield


async def _artifact(key: str) -> str:
    async with get_client() as client:
        found = await client.read_latest_artifacts()
    return next(str(a.data) for a in found if a.key == key)


def test_lifecycle_flow_runs_every_stage_and_publishes_reports(pg_url, tmp_path):
    seed(pg_url, rows=400)
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", accept=DEMO_ACCEPT)
    reports = lifecycle(plan=str(tmp_path / "plan.yaml"))
    assert [r["stage"] for r in reports] == [
        "assess", "transfer", "validate", "benchmark", "golive", "monitor",
    ]  # fmt: skip
    assert all(r["gate"]["passed"] for r in reports)
    markdown = asyncio.run(_artifact(artifact_key(plan.name, "validate")))
    assert "# validate — test-plan" in markdown and "order_items" in markdown


def test_a_failed_gate_fails_the_flow_with_its_reasons(pg_url, tmp_path):
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE shapes (id int PRIMARY KEY, p tid)")
    write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", accept=DEMO_ACCEPT)
    with pytest.raises(GateFailed, match="assess gate failed: shapes.p: tid — no mapping"):
        assess(plan=str(tmp_path / "plan.yaml"))


async def _artifact_of(key: str) -> tuple[str, object]:
    async with get_client() as client:
        found = await client.read_latest_artifacts()
    return next((a.type or "", a.data) for a in found if a.key == key)


def test_transfer_flow_keeps_a_progress_artifact_and_runs_a_delta(pg_url, tmp_path):
    import psycopg

    from flows.transfer import transfer
    from tests.test_delta import _CHANGES, _SOURCE, WATERMARKS

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(_SOURCE)
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", tables=["items", "tags"],
                      transfer={"chunk_rows": 200, "watermarks": WATERMARKS})  # fmt: skip
    path = str(tmp_path / "plan.yaml")
    assert transfer(plan=path)["rows"] == 1100
    kind, data = asyncio.run(_artifact_of(artifact_key(plan.name, "transfer-progress")))
    assert (kind, data) == ("progress", 100.0)

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(_CHANGES)
    report = transfer(plan=path, delta=True)
    assert report["stage"] == "delta" and report["tables"][0]["deleted"] == 3
    assert asyncio.run(_artifact_of(artifact_key(plan.name, "delta-progress"))) == ("progress", 100.0)
    assert "| items | updated_at |" in asyncio.run(_artifact(artifact_key(plan.name, "delta")))
