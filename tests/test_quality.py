"""Great Expectations suites run on the source and the target by validate, with severities."""

import json

import psycopg
import pytest

from liftshift import lifecycle, quality
from liftshift.connectors import open_target
from liftshift.errors import PlanError
from tests.conftest import bigquery_url, write_plan

TABLE = """
CREATE TABLE "Kunden" (id int PRIMARY KEY, "Größe" numeric(10,2) NOT NULL, tier text,
                       joined date, seen timestamptz);
INSERT INTO "Kunden" SELECT g, g * 1.5, 't' || g % 3, DATE '2024-01-01' + g,
  TIMESTAMPTZ '2024-01-01 00:00:00.000001+00' + g * INTERVAL '1 hour' FROM generate_series(1, 300) g;
"""
SUITE = [
    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 290, "max_value": 310}},
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "Größe"}},
    {"type": "expect_column_values_to_be_in_set",
     "kwargs": {"column": "tier", "value_set": ["t0", "t1"]}, "meta": {"severity": "warning"}},
    {"type": "expect_column_values_to_be_between",
     "kwargs": {"column": "joined", "min_value": "2024-01-02", "max_value": "2024-10-27"}},
    {"type": "expect_column_values_to_be_between",
     "kwargs": {"column": "seen", "min_value": "2024-01-01T01:00:00.000001+00:00",
                "max_value": "2024-01-13T12:00:00.000001+00:00"}},
]  # fmt: skip


def write_suite(plan, expectations) -> None:
    folder = plan.expectations_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Kunden.json").write_text(json.dumps({"name": "Kunden", "expectations": expectations}))


@pytest.mark.parametrize("target", ["duckdb", "bigquery"])
def test_suites_run_on_both_sides_and_only_errors_fail_the_gate(pg_url, bq_endpoint, tmp_path, target):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(TABLE)
    url = "duckdb:///w.duckdb" if target == "duckdb" else bigquery_url(bq_endpoint)
    plan = write_plan(tmp_path, pg_url, url)
    write_suite(plan, SUITE)
    assert lifecycle.run_stage("transfer", plan).report.gate.passed
    report = lifecycle.run_stage("validate", plan).report
    checks = report.expectations  # type: ignore[attr-defined]
    assert len(checks) == 2 * len(SUITE)
    # Only the warning fails, on both sides, with rows and examples: the gate still passes.
    failed = [(o.side, o.expectation, o.observed, o.sample[:1]) for o in checks if not o.passed]
    unexpected = ("expect_column_values_to_be_in_set", "100 rows unexpected", ["t2"])
    assert failed == [("source", *unexpected), ("target", *unexpected)]
    assert report.gate.passed, report.gate.reasons

    moved = open_target(plan)
    where = f"{moved.dataset}.Kunden" if target == "bigquery" else '"Kunden"'  # type: ignore[attr-defined]
    moved.query(f"UPDATE {where} SET joined = DATE '2030-01-01' WHERE id = 7")
    moved.close()
    broken = lifecycle.run_stage("validate", plan).report
    assert not broken.gate.passed
    expected = "Kunden: expect_column_values_to_be_between on joined failed in the target (1 rows"
    assert [r for r in broken.gate.reasons if r.startswith(expected)], broken.gate.reasons
    assert "## Expectations" in lifecycle.run_stage("validate", plan).path.read_text()


def test_an_unknown_expectation_or_severity_is_an_error_naming_the_file(tmp_path, pg_url):
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb")
    write_suite(plan, [*SUITE, {"type": "expect_column_to_be_lovely", "kwargs": {"column": "id"}}])
    expected = r"Kunden.json: Great Expectations cannot load .*expect_column_to_be_lovely"
    with pytest.raises(PlanError, match=expected):
        quality.load_suite(plan.expectations_dir(), "Kunden")
    write_suite(plan, [{**SUITE[0], "meta": {"severity": "fatal"}}])
    with pytest.raises(PlanError, match="severity 'fatal'; use error or warning"):
        quality.load_suite(plan.expectations_dir(), "Kunden")
    assert quality.load_suite(plan.expectations_dir(), "nothing") is None


def test_an_expectation_that_cannot_run_says_why_and_postgres_urls_work(pg_url, tmp_path):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(TABLE)
    # postgres:// is PostgreSQL's other spelling; GX's SQLAlchemy needs it rewritten too.
    plan = write_plan(tmp_path, pg_url.replace("postgresql://", "postgres://", 1), "duckdb:///w.duckdb")
    write_suite(plan, [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "gone"},
                        "meta": {"severity": "warning"}}])  # fmt: skip
    assert lifecycle.run_stage("transfer", plan).report.gate.passed
    report = lifecycle.run_stage("validate", plan).report
    assert report.gate.passed  # a warning, even one that cannot run
    observed = {o.side: o.observed for o in report.expectations}  # type: ignore[attr-defined]
    assert observed["source"].startswith("could not run: ") and "gone" in observed["source"]
    assert observed["target"].startswith("could not run: ")


def test_a_password_with_a_dollar_sign_reaches_great_expectations_as_it_is(pg_url, tmp_path, monkeypatch):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(TABLE)
    # The embedded server trusts local connections, so any password connects; GX would read
    # $ecret as a config variable to substitute, and fail, before connecting at all.
    monkeypatch.setenv("PGPASSWORD_FOR_TEST", "pa$ecret")
    url = pg_url.replace("postgres:@", "postgres:${PGPASSWORD_FOR_TEST}@", 1)
    plan = write_plan(tmp_path, url, "duckdb:///w.duckdb")
    write_suite(plan, [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}}])
    assert lifecycle.run_stage("transfer", plan).report.gate.passed
    report = lifecycle.run_stage("validate", plan).report
    assert report.gate.passed, report.gate.reasons
    assert {o.side for o in report.expectations} == {"source", "target"}  # type: ignore[attr-defined]
    assert "pa$ecret" not in report.model_dump_json()


def test_a_table_with_types_sqlalchemy_does_not_know_is_checked_on_both_sides(pg_url, tmp_path):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("""CREATE TYPE pair AS (a int, b text);
            CREATE TABLE "Kunden" (id int PRIMARY KEY, p point, q pair, ln line, ps point[]);
            INSERT INTO "Kunden" SELECT g, point(g, 2), ROW(g, 'x')::pair, line '{1,2,3}', ARRAY[point(1, g)]
            FROM generate_series(1, 20) g""")  # fmt: skip
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb")
    write_suite(plan, [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": c}}
                       for c in ("id", "p", "q")])  # fmt: skip
    assert lifecycle.run_stage("transfer", plan).report.gate.passed
    report = lifecycle.run_stage("validate", plan).report
    assert report.gate.passed, report.gate.reasons  # SQLAlchemy reflected point as NullType: GX failed all
    assert len(report.expectations) == 6  # type: ignore[attr-defined]
