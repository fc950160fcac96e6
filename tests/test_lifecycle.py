"""The whole lifecycle on the demo database into the local BigQuery endpoint, and what breaks it."""


import psycopg
import pytest

from liftshift import lifecycle, monitor, transfer
from liftshift.connectors import open_target
from liftshift.demo import seed
from liftshift.errors import PlanError
from liftshift.fingerprint import CANONICAL_VERSION
from liftshift.ledger import Ledger
from tests.conftest import DEMO_ACCEPT, REPO, bigquery_url, write_plan


@pytest.fixture
def demo_plan(pg_url, bq_endpoint, tmp_path):
    seed(pg_url, rows=3000)
    target = bigquery_url(bq_endpoint)
    return write_plan(tmp_path, pg_url, target, transfer={"chunk_rows": 500}, accept=DEMO_ACCEPT)


def test_all_six_stages_pass_and_a_hand_edited_row_fails_validate(demo_plan):
    outcomes = lifecycle.run_all(demo_plan)
    assert [o.report.stage for o in outcomes] == list(lifecycle.STAGES)
    assert all(o.report.gate.passed for o in outcomes), [o.report.gate for o in outcomes]
    moved = {t.table: t for t in outcomes[1].report.tables}  # type: ignore[attr-defined]
    assert moved["order_items"].rows == 3000 and moved["order_items"].chunks == 6
    assert all(o.path.read_text().startswith(f"# {o.report.stage}") for o in outcomes)
    checks = outcomes[2].report.expectations  # type: ignore[attr-defined]  # assess wrote the suites
    assert {(o.table, o.side) for o in checks} >= {("orders", "source"), ("orders", "target")}
    assert [o.describe() for o in checks if not o.passed] == []
    ledger = Ledger(demo_plan.ledger_url())
    assert ledger.latest_report(demo_plan.name, "golive").body["serving"].startswith("target")

    target = open_target(demo_plan)
    target.query(f"UPDATE {target.dataset}.orders SET note = 'edited' WHERE id = 7")  # type: ignore[attr-defined]
    target.close()
    validated = lifecycle.run_stage("validate", demo_plan)
    report = validated.report
    assert not report.gate.passed
    assert report.gate.reasons == [
        "orders: same row count but 1 row differs; e.g. (id='7') changed: note: 'Anmerkung № 7' → 'edited'"
    ]
    drift = lifecycle.run_stage("monitor", demo_plan).report
    assert drift.gate.passed  # monitor compares with the latest validation, which saw the edit
    page = validated.path.with_suffix(".html").read_text(encoding="utf-8")
    assert "&#x27;edited&#x27;" in page and "Anmerkung № 7" in page and "http" not in page

    # A validation stored by a liftshift whose fingerprints differed (before the field existed):
    # monitor says to validate again rather than report every table as drifted.
    older = ledger.latest_report(demo_plan.name, "validate")
    assert older is not None and older.body["fingerprint"] == CANONICAL_VERSION
    ledger.save_report(demo_plan.name, "validate", older.passed, {**older.body, "fingerprint": 1})
    with pytest.raises(PlanError, match="run validate again, then monitor"):
        monitor.run(demo_plan, ledger)


def test_the_validation_notebook_shows_the_differing_row(demo_plan, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    assert lifecycle.run_stage("transfer", demo_plan).report.gate.passed
    target = open_target(demo_plan)
    target.query(f"DELETE FROM {target.dataset}.orders WHERE id = 9")  # type: ignore[attr-defined]
    target.close()
    assert not lifecycle.run_stage("validate", demo_plan).report.gate.passed
    notebook = nbformat.read(REPO / "notebooks" / "validation.ipynb", as_version=4)
    monkeypatch.setenv("LIFTSHIFT_PLAN", str(demo_plan.base_dir / "plan.yaml"))
    NotebookClient(notebook, timeout=60, resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    text = "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)
    assert "missing in target" in text and "id='9'" in text


class Stopped(KeyboardInterrupt):
    """Stands for a run stopped part-way (Ctrl-C, a lost driver): no handler of errors catches it."""


def test_rerun_skips_chunks_already_done_and_redoes_the_rest(demo_plan):
    landed: list[int] = []

    def stop_after_two_chunks(table: str, done: int, total: int, nbytes: int = 0) -> None:
        if table == "order_items" and nbytes:
            landed.append(done)
            if len(landed) == 2:
                raise Stopped

    ledger = Ledger(demo_plan.ledger_url())
    with pytest.raises(Stopped):
        transfer.run(demo_plan, ledger, progress=stop_after_two_chunks)
    done = sum(r.state == "done" for r in ledger.chunk_records(demo_plan.name, "order_items"))
    assert done == 2
    assert not lifecycle.run_stage("validate", demo_plan).report.gate.passed
    again = {t.table: t for t in lifecycle.run_stage("transfer", demo_plan).report.tables}  # type: ignore[attr-defined]
    assert (again["order_items"].moved, again["order_items"].skipped) == (4, 2)
    assert again["customers"].moved == 0
    assert lifecycle.run_stage("validate", demo_plan).report.gate.passed


def test_golive_refuses_without_earlier_gates(demo_plan):
    report = lifecycle.run_stage("golive", demo_plan).report
    assert not report.gate.passed
    assert "assess has not run for this plan" in report.gate.reasons
    assert report.serving == "source"  # type: ignore[attr-defined]


def test_duckdb_target_and_a_failed_gate_stops_the_lifecycle(pg_url, tmp_path):
    seed(pg_url, rows=500)
    plan = write_plan(tmp_path, pg_url, "duckdb:///warehouse.duckdb", accept=DEMO_ACCEPT)
    assert all(o.report.gate.passed for o in lifecycle.run_all(plan))
    assert (tmp_path / "warehouse.duckdb").exists()
    with psycopg_conn(pg_url) as conn:
        conn.execute("ALTER TABLE products ADD COLUMN colour text")
    drifted = lifecycle.run_stage("validate", plan).report
    assert drifted.gate.reasons == ["products: column colour is missing in the target"]
    with psycopg_conn(pg_url) as conn:
        conn.execute("ALTER TABLE products ADD COLUMN span tid")
    outcomes = lifecycle.run_all(plan)
    assert [o.report.stage for o in outcomes] == ["assess"]
    assert outcomes[0].report.gate.reasons == [
        "products.span: tid — no mapping for PostgreSQL type 'tid': change its type in the source, "
        "or leave the table out of the plan"
    ]


def test_golive_refuses_a_validation_older_than_the_last_write_to_the_target(pg_url, tmp_path):
    seed(pg_url, rows=200)
    plan = write_plan(tmp_path, pg_url, "duckdb:///warehouse.duckdb", accept=DEMO_ACCEPT)
    assert all(o.report.gate.passed for o in lifecycle.run_all(plan))
    with psycopg_conn(pg_url) as conn:
        conn.execute("UPDATE orders SET note = 'late' WHERE id = 3")
    lifecycle.run_stage("transfer", plan)  # moves nothing: its chunks are done, the edit unproved
    stale = lifecycle.run_stage("golive", plan).report
    assert stale.gate.reasons == [
        "the target changed after the last validation (a transfer ran since); run validate again"
    ]
    assert stale.serving.startswith("target")  # type: ignore[attr-defined]  # the earlier go-live stands
    assert not lifecycle.run_stage("validate", plan).report.gate.passed  # and validate finds the edit


def psycopg_conn(url):
    import psycopg

    return psycopg.connect(url, autocommit=True)


_LOSSY = """
CREATE TABLE acc (id int PRIMARY KEY, amount {amount}, doc jsonb, note text);
INSERT INTO acc SELECT g, 2.123456789012 + g, jsonb_build_object('price', 2.50 + g), 'n' || g
  FROM generate_series(1, 40) g;
"""


@pytest.mark.parametrize("target", ["duckdb", "bigquery"])
def test_accepted_lossy_columns_move_and_validate_compares_the_rest(pg_url, tmp_path, request, target):
    duck = target == "duckdb"
    with psycopg.connect(pg_url, autocommit=True) as conn:  # the local endpoint has no BIGNUMERIC
        conn.execute(_LOSSY.format(amount="numeric" if duck else "numeric(20,6)"))
    # DuckDB rounds the numeric to 10 places; BigQuery's JSON prints 2.50 as 2.5.
    url = "duckdb:///acc.duckdb" if duck else bigquery_url(request.getfixturevalue("bq_endpoint"))
    lossy = "acc.amount" if duck else "acc.doc"
    plan = write_plan(tmp_path, pg_url, url, accept=[lossy], transfer={"chunk_rows": 10})
    for stage in ("assess", "transfer", "validate"):  # before: every chunk, or validate, failed
        report = lifecycle.run_stage(stage, plan).report
        assert report.gate.passed, (stage, report.gate.reasons)
    (line,) = report.tables  # type: ignore[attr-defined]
    assert line.accepted_lossy == [lossy.split(".")[1]] and line.source_rows == 40
    assert "Accepted lossy (values not compared)" in report.html()
    assert lifecycle.run_stage("monitor", plan).report.gate.passed  # it fingerprints what validate did
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE acc SET note = 'edited' WHERE id = 7")
    again = lifecycle.run_stage("validate", plan).report
    assert not again.gate.passed and "acc: same row count but 1 row differs" in again.gate.reasons[0]
