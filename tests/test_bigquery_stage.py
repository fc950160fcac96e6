"""BigQuery load files staged where the plan says, against the local endpoint (which reads file:// URIs).

Cloud Storage itself cannot run here: gs:// stages go through the same code with pyarrow's
GcsFileSystem in place of its LocalFileSystem, and are checked only as far as the plan.
"""

import os
import signal
import subprocess
import sys
import time

import psutil
import psycopg
import pytest

from liftshift import lifecycle, transfer
from liftshift.connectors import open_target
from liftshift.errors import ConnectError, PlanError
from liftshift.ledger import Ledger
from tests.conftest import REPO, bigquery_url, write_plan

_ITEMS = """
CREATE TABLE items (id bigint PRIMARY KEY, name text, updated_at timestamptz NOT NULL);
INSERT INTO items SELECT g, 'item ' || g, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 s'
FROM generate_series(1, 1000) g;
"""


def _load_uris(plan) -> list[list[str]]:
    """The source URIs of the load jobs into the plan's dataset (the endpoint serves the whole run)."""
    target = open_target(plan)
    try:
        jobs = [job for job in target.client.list_jobs() if job.job_type == "load"]
        return [job.source_uris for job in jobs if job.destination.dataset_id == target.dataset]
    finally:
        target.close()


def test_load_files_wait_in_the_plans_stage_and_are_removed_after_their_load(pg_url, bq_endpoint, tmp_path):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(_ITEMS)
    stage = f"file://{tmp_path}/stage"
    target = {"url": bigquery_url(bq_endpoint), "stage": stage}
    moves = {"chunk_rows": 250, "watermarks": {"items": "updated_at"}}
    plan = write_plan(tmp_path, pg_url, "", target=target, tables=["items"], transfer=moves)

    report = transfer.run(plan, Ledger(plan.ledger_url()))
    assert report.gate.passed and report.tables[0].chunks == 4, report.gate.reasons
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE items SET name = 'changed', updated_at = now() WHERE id IN (3, 600)")
    assert lifecycle.run_stage("transfer", plan, delta=True).report.gate.passed
    assert lifecycle.run_stage("validate", plan).report.gate.passed

    uris = _load_uris(plan)
    assert len(uris) == 5  # a load per chunk, and the delta's staging table
    assert all(len(u) == 1 and u[0].startswith(f"{stage}/liftshift-") for u in uris), uris
    assert list((tmp_path / "stage").iterdir()) == []


def test_a_stage_is_refused_where_it_cannot_work_saying_why(pg_url, bq_endpoint, tmp_path):
    refused = {
        ("duckdb:///w.duckdb", "gs://b/p"): "other targets take none",
        ("bigquery://p/d", "file:///tmp/s"): "BigQuery cannot read this machine's files",
        (bigquery_url(bq_endpoint), "s3://b/p"): "stage must be gs://BUCKET/PREFIX",
    }
    for (url, stage), reason in refused.items():
        with pytest.raises(PlanError, match=reason):
            write_plan(tmp_path, pg_url, "", target={"url": url, "stage": stage})
    (tmp_path / "a-file").write_text("")
    plan = write_plan(tmp_path, pg_url, "", target={"url": bigquery_url(bq_endpoint),
                                                     "stage": f"file://{tmp_path}/a-file/stage"})  # fmt: skip
    with pytest.raises(ConnectError, match="cannot stage load files in .*a-file/stage.*check target.stage"):
        open_target(plan)


def test_a_local_endpoint_stops_when_the_process_that_started_it_is_killed(tmp_path):
    start = (
        "from pathlib import Path; from liftshift.connectors.bigquery_local import ensure_endpoint; "
        f"print(ensure_endpoint(Path({str(tmp_path)!r}), 'p').pid, flush=True); import time; time.sleep(300)"
    )
    starter = subprocess.Popen([sys.executable, "-c", start], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert starter.stdout is not None
    endpoint = psutil.Process(int(starter.stdout.readline()))
    assert endpoint.is_running()
    os.kill(starter.pid, signal.SIGKILL)  # no atexit runs: the endpoint must notice by itself
    starter.wait()
    deadline = time.monotonic() + 30
    while _serving(endpoint) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _serving(endpoint)


def _serving(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
