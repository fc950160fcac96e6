"""The benchmark replays the workload on both sides; a query one side cannot run fails alone."""

import psycopg

from liftshift import benchmark, transfer
from liftshift.ledger import Ledger
from tests.conftest import write_plan


def test_a_query_a_side_cannot_run_fails_alone_saying_which_side_and_why(pg_url, tmp_path):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE moved (id int PRIMARY KEY); CREATE TABLE left_behind (id int PRIMARY KEY);"
                     "INSERT INTO moved SELECT generate_series(1, 5)")  # fmt: skip
    workload = tmp_path / "workload"
    workload.mkdir()
    queries = {"1_ok": "SELECT count(*) FROM moved", "2_gone": "SELECT count(*) FROM left_behind",
               "3_nowhere": "SELECT count(*) FROM nowhere", "4_ok": "SELECT max(id) FROM moved"}  # fmt: skip
    for name, sql in queries.items():
        (workload / f"{name}.sql").write_text(sql)
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", tables=["moved"], workload=str(workload))
    ledger = Ledger(plan.ledger_url())
    assert transfer.run(plan, ledger).gate.passed

    report = benchmark.run(plan, ledger)
    assert [q.equal for q in report.queries] == [True, False, False, True]  # the source carries on
    target_reason, source_reason = report.gate.reasons
    assert target_reason.startswith("2_gone.sql: the target cannot run it") and "left_behind" in target_reason
    assert source_reason.startswith("3_nowhere.sql: the source cannot run it") and "nowhere" in source_reason
