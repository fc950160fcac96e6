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


NULLS_AND_NANS = """
CREATE TABLE "Kunden" (id int PRIMARY KEY, x float8 NOT NULL, y float4, a int, b text, UNIQUE (a, b),
                       n numeric(30,8) NOT NULL, g int8 NOT NULL);
INSERT INTO "Kunden" VALUES (1, 'NaN', 'NaN', 1, NULL, 1234567890123456789012.01234567, 9007199254740993),
  (2, 1.5, 'NaN', 1, NULL, -1234567890123456789012.01234567, -9007199254740993),
  (3, 2, 1, NULL, 'x', 0, 0), (4, 2, 1, NULL, 'x', 0, 0), (5, 3, 1, NULL, NULL, 0, 0),
  (6, 3, 1, NULL, NULL, 0, 0), (7, 4, 1, 2, 'y', 0, 0);
"""


def test_a_duckdb_target_is_checked_as_sql_sees_it_nan_is_no_null_and_keys_holding_null_repeat(
    pg_url, tmp_path
):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(NULLS_AND_NANS)
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", assess={"sample_rows": 10})
    assert lifecycle.run_stage("assess", plan).report.gate.passed
    assert lifecycle.run_stage("transfer", plan).report.gate.passed
    report = lifecycle.run_stage("validate", plan).report
    checks = report.expectations  # type: ignore[attr-defined]
    kinds = {(o.expectation, o.column) for o in checks}
    assert {
        ("expect_column_values_to_not_be_null", "x"),
        ("expect_column_values_to_not_be_null", "y"),
        ("expect_compound_columns_to_be_unique", None),
        ("expect_column_values_to_be_between", "n"),
        ("expect_column_values_to_be_between", "g"),
    } <= kinds
    # NaN is a value, keys holding a NULL repeat, and bounds beyond 2**53 hold, on both sides.
    assert [o.describe() for o in checks if not o.passed] == [] and report.gate.passed

    moved = open_target(plan)
    moved.query('UPDATE "Kunden" SET y = NULL WHERE id = 2')
    moved.query("""UPDATE "Kunden" SET a = 2, b = 'y' WHERE id = 3""")
    moved.close()
    broken = lifecycle.run_stage("validate", plan).report.expectations  # type: ignore[attr-defined]
    assert {(o.side, o.expectation, o.column, o.observed) for o in broken if not o.passed} == {
        ("target", "expect_column_values_to_not_be_null", "y", "1 rows unexpected"),
        ("target", "expect_compound_columns_to_be_unique", None, "2 rows unexpected"),
    }


BEYOND_PYTHON = """
CREATE TABLE "Kunden" (id int PRIMARY KEY, d date NOT NULL, t timestamp, tz timestamptz);
INSERT INTO "Kunden" VALUES (1, '0044-03-15 BC', '0044-03-15 12:00 BC', '12000-01-01 00:00+00'),
  (2, '12000-01-01', '12000-01-01 01:02:03', '2024-01-01 00:00+00'),
  (3, '2024-01-01', '2024-01-01', '0001-01-01 00:00+00 BC');
"""
WITHIN_PYTHON = {
    "d": ("0001-01-01", "9999-12-31"),
    "t": ("0001-01-01T00:00:00", "9999-12-31T23:59:59"),
    "tz": ("0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00"),
}


def test_dates_beyond_python_years_are_checked_in_a_duckdb_target_and_validate_carries_on(pg_url, tmp_path):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(BEYOND_PYTHON)
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb")
    between = [
        {"type": "expect_column_values_to_be_between", "meta": {"severity": "warning"},
         "kwargs": {"column": c, "min_value": low, "max_value": high}}
        for c, (low, high) in WITHIN_PYTHON.items()
    ]  # fmt: skip
    write_suite(plan, [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "d"}}, *between])
    assert lifecycle.run_stage("transfer", plan).report.gate.passed
    report = lifecycle.run_stage("validate", plan).report
    assert [(t.table, t.passed) for t in report.tables] == [("Kunden", True)]  # type: ignore[attr-defined]
    checks = report.expectations  # type: ignore[attr-defined]
    target = {o.column: (o.observed, sorted(o.sample)) for o in checks if o.side == "target" and not o.passed}
    # 44 BC is year -43 (ISO 8601 counts a year 0); a time zone's Timestamp is written in UTC.
    two = "2 rows unexpected"
    assert target == {
        "d": (two, ["-043-03-15T00:00:00.000", "12000-01-01T00:00:00.000"]),
        "t": (two, ["-043-03-15T12:00:00.000000", "12000-01-01T01:02:03.000000"]),
        "tz": (two, ["0000-01-01T00:00:00.000000+00:00", "12000-01-01T00:00:00.000000+00:00"]),
    }
    # The source's driver cannot hold them either: said in one line, a warning, so the gate passes.
    source = [o.observed for o in checks if o.side == "source" and not o.passed]
    assert len(source) == 3 and all(o.startswith("could not run: (psycopg.DataError) ") for o in source)
    assert not [o for o in source if "\n" in o] and report.gate.passed, report.gate.reasons


def test_bc_and_far_future_dates_pass_assess_for_duckdb_move_exactly_and_a_change_is_shown(
    pg_url, bq_endpoint, tmp_path
):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(BEYOND_PYTHON)
    into_bigquery = write_plan(tmp_path, pg_url, bigquery_url(bq_endpoint))
    assert not lifecycle.run_stage("assess", into_bigquery).report.gate.passed
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb")
    for stage in ("assess", "transfer", "validate"):
        gate = lifecycle.run_stage(stage, plan).report.gate
        assert gate.passed, (stage, gate.reasons)
    suite = json.loads((plan.expectations_dir() / "Kunden.json").read_text())
    # The ranges Python cannot state are left out, not narrowed to the dates it can.
    ranged = {e["kwargs"].get("column") for e in suite["expectations"] if "between" in e["type"]}
    assert ranged == {None, "id"}
    landed = open_target(plan)
    try:
        landed.query("SET TimeZone = 'UTC'")
        text = "SELECT id, CAST(d AS VARCHAR) AS d, CAST(t AS VARCHAR) AS t, CAST(tz AS VARCHAR) AS tz FROM"
        assert landed.query(f'{text} "Kunden" ORDER BY id').to_pylist()[:2] == [
            {"id": 1, "d": "0044-03-15 (BC)", "t": "0044-03-15 (BC) 12:00:00",
             "tz": "12000-01-01 00:00:00+00"},
            {"id": 2, "d": "12000-01-01", "t": "12000-01-01 01:02:03", "tz": "2024-01-01 00:00:00+00"},
        ]
        landed.query("""UPDATE "Kunden" SET d = DATE '0045-03-15 (BC)' WHERE id = 1""")
    finally:
        landed.close()
    report = lifecycle.run_stage("validate", plan).report
    assert report.gate.reasons == [
        "Kunden: same row count but 1 row differs; e.g. (id='1') changed: "
        "d: '0044-03-15 BC' → '0045-03-15 BC'"
    ]


def test_duckdb_cannot_take_infinite_dates_or_timestamps_past_its_last_year(pg_url, tmp_path):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("""CREATE TABLE ends (id int PRIMARY KEY, d date, t timestamp);
            INSERT INTO ends VALUES (1, 'infinity', '294247-01-01'), (2, '-infinity', '294246-12-31'),
                                    (3, '4713-01-01 BC', '-infinity')""")
    report = lifecycle.run_stage("assess", write_plan(tmp_path, pg_url, "duckdb:///w.duckdb")).report
    assert {(p.column, p.rows) for p in report.value_problems} == {("d", 2), ("t", 2)}  # type: ignore[attr-defined]
