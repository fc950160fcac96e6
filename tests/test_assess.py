"""Assess on an estate with every structural oddity, checked against expectations worked out by hand."""

import json
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from liftshift import assess, inventory, lifecycle
from liftshift import estimate as assess_estimate
from liftshift.connectors import open_target
from liftshift.connectors.postgres import PostgresSource
from liftshift.errors import ConnectError, PlanError
from liftshift.inventory import AccessError
from liftshift.ledger import Ledger
from liftshift.profile import profile
from liftshift.types import Verdict
from liftshift.waves import Edge, plan_waves
from tests.conftest import REPO, bigquery_url, new_database, write_plan

ESTATE = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0);
CREATE TABLE regions (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE "Kunden" (
  id bigint PRIMARY KEY,
  region_id integer NOT NULL REFERENCES regions (id),
  referrer_id bigint REFERENCES "Kunden" (id),
  "Größe" numeric(10,2) DEFAULT 0,
  "order" integer,
  tier positive_int
);
CREATE TABLE products (sku text, variant integer, price money, PRIMARY KEY (sku, variant));
CREATE TABLE orders (
  id bigint PRIMARY KEY,
  kunde_id bigint NOT NULL REFERENCES "Kunden" (id),
  placed_at timestamptz NOT NULL,
  status mood NOT NULL,
  doc json
);
CREATE TABLE order_lines (
  order_id bigint REFERENCES orders (id), sku text, variant integer, qty smallint,
  FOREIGN KEY (sku, variant) REFERENCES products (sku, variant)
);
CREATE TABLE employees (id integer PRIMARY KEY, dept_id integer);
CREATE TABLE departments (id integer PRIMARY KEY, manager_id integer NOT NULL REFERENCES employees (id));
ALTER TABLE employees ADD CONSTRAINT works_in FOREIGN KEY (dept_id) REFERENCES departments (id);
CREATE TABLE events (id bigint, happened date NOT NULL, kind text, PRIMARY KEY (id, happened))
  PARTITION BY RANGE (happened);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE VIEW order_summary AS
  SELECT o.id, k."Größe" FROM orders o JOIN "Kunden" k ON k.id = o.kunde_id;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER orders_touch BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION touch();

INSERT INTO regions (name) VALUES ('north'), ('south');
INSERT INTO "Kunden" SELECT g, 1 + g % 2, NULLIF(g - 1, 0), g * 1.5, g, 1 + g % 3
  FROM generate_series(1, 200) g;
INSERT INTO products VALUES ('a', 1, 9.99), ('a', 2, 10.5), ('b', 1, 0);
INSERT INTO orders SELECT g, 1 + g % 200,
  '2024-03-01 12:00:00.000001+02'::timestamptz + g * interval '1 hour',
  (ARRAY['sad', 'ok', 'happy'])[1 + g % 3]::mood, '{"n": 1,  "n": 2}' FROM generate_series(1, 500) g;
INSERT INTO order_lines SELECT 1 + g % 500, 'a', 1 + g % 2, g % 7 FROM generate_series(1, 1000) g;
INSERT INTO employees VALUES (1, NULL), (2, NULL);
INSERT INTO departments VALUES (10, 1);
UPDATE employees SET dept_id = 10;
INSERT INTO events SELECT g, DATE '2024-06-01' + g % 400, 'k' || g % 4 FROM generate_series(1, 300) g;
ANALYZE;
"""
ODD_VALUES = """
CREATE DOMAIN amount AS numeric;
CREATE TABLE odd (id integer PRIMARY KEY, d date, amount numeric, t time, big amount, loc tid);
INSERT INTO odd VALUES
  (1, 'infinity', 'NaN', '24:00:00', 1e40, '(0,1)'),
  (2, '2024-01-01', 1.5000000000000000000000000000000000000000000000, '12:00:00', 1e29, '(0,2)'),
  (3, '0044-03-15 BC', 2.123456789012, '00:00:00', 1, '(0,3)'),
  (4, '9999-12-31', 3, '23:59:59.999999', 2, '(0,4)');
"""
ALL_TABLES = ["Kunden", "departments", "employees", "events", "order_lines", "orders", "products", "regions"]


def as_user(url: str, user: str) -> str:
    """The same database URL, logging in as another user."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}@" + parts.netloc.rsplit("@", 1)[-1]))


@pytest.fixture(scope="module")
def estate_url(pg_admin_url: str) -> str:
    url = new_database(pg_admin_url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(ESTATE)
    with psycopg.connect(url, autocommit=True) as conn:  # activity counters arrive asynchronously
        for _ in range(50):
            found = conn.execute("SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'orders'")
            if (found.fetchone() or (0,))[0] >= 500:
                break
            conn.execute("SELECT pg_stat_clear_snapshot(), pg_sleep(0.1)")
    return url


@pytest.fixture(scope="module")
def assessed(estate_url, bq_endpoint, tmp_path_factory):
    """One assessment of the estate into the local BigQuery endpoint, json accepted."""
    folder = tmp_path_factory.mktemp("estate")
    plan = write_plan(
        folder, estate_url, bigquery_url(bq_endpoint), accept=["orders.doc", "nothing.*"],
        assess={"sample_rows": 400, "advise_bytes": "8KiB"},
    )  # fmt: skip
    return plan, lifecycle.run_stage("assess", plan)


def test_inventory_of_every_table_matches_the_catalog(assessed):
    _, outcome = assessed
    report = outcome.report
    tables = {t.table: t for t in report.tables}
    assert sorted(tables) == ALL_TABLES  # partitions are inside their parent, not beside it
    assert {name: t.rows for name, t in tables.items()} == {
        "Kunden": 200, "departments": 1, "employees": 2, "events": 300, "order_lines": 1000,
        "orders": 500, "products": 3, "regions": 2,
    }  # fmt: skip
    assert tables["products"].primary_key == ["sku", "variant"]
    assert tables["order_lines"].primary_key == []
    assert tables["regions"].unique_keys == [["name"]]
    kunden = tables["Kunden"]
    assert [(fk.columns, fk.references, fk.nullable) for fk in kunden.foreign_keys] == [
        (["referrer_id"], "Kunden", True),
        (["region_id"], "regions", False),
    ]
    lines = tables["order_lines"]
    assert {(tuple(fk.columns), fk.references) for fk in lines.foreign_keys} == {
        (("order_id",), "orders"),
        (("sku", "variant"), "products"),
    }
    events = tables["events"]
    assert events.partition_key == "RANGE (happened)"
    assert [p.split(" ")[0] for p in events.partitions] == ["events_2024", "events_2025"]
    assert events.heap_bytes > 0 and events.index_bytes > 0  # summed over the partitions
    assert any("orders_touch" in t for t in tables["orders"].triggers)
    assert any("UNIQUE INDEX" in i and "(name)" in i for i in tables["regions"].indexes)
    assert tables["orders"].inserts == 500 and tables["employees"].updates == 2
    columns = {(c.table, c.column): c for c in report.columns}
    assert columns[("Kunden", "Größe")].default == "0"
    assert columns[("regions", "id")].default.startswith("nextval(")
    assert columns[("Kunden", "order")].source_type == "integer"
    views = {v.name: v for v in report.views}
    assert views["order_summary"].depends_on == ["Kunden", "orders"]
    assert [(s.name, s.owned_by) for s in report.sequences] == [("regions_id_seq", "regions.id")]


def test_verdicts_per_column_for_bigquery(assessed):
    _, outcome = assessed
    got = {(c.table, c.column): (c.target_type, c.verdict) for c in outcome.report.columns}
    assert got[("Kunden", "id")] == ("INT64", Verdict.EXACT)
    assert got[("Kunden", "region_id")] == ("INT64", Verdict.WIDENED)
    assert got[("Kunden", "Größe")] == ("NUMERIC", Verdict.EXACT)
    assert got[("Kunden", "tier")][1] is Verdict.WIDENED  # a domain over integer
    assert got[("products", "price")] == ("NUMERIC", Verdict.WIDENED)  # money
    assert got[("orders", "placed_at")] == ("TIMESTAMP", Verdict.EXACT)
    assert got[("orders", "status")] == ("STRING", Verdict.WIDENED)  # enum
    assert got[("orders", "doc")] == ("JSON", Verdict.LOSSY)
    doc = next(c for c in outcome.report.columns if c.column == "doc")
    assert doc.accepted


def test_waves_put_parents_first_and_break_the_cycle_at_the_nullable_key(assessed):
    _, outcome = assessed
    report = outcome.report
    assert [w.tables for w in report.waves] == [
        ["employees", "events", "products", "regions"],
        ["Kunden", "departments"],
        ["orders"],
        ["order_lines"],
    ]
    assert len(report.cycles) == 1 and "employees.works_in → departments (nullable" in report.cycles[0]
    assert {t.table: t.wave for t in report.tables}["order_lines"] == 4


def test_waves_balance_by_size_without_breaking_the_order():
    sizes = {"a": 60, "b": 50, "c": 30, "d": 10, "e": 70}
    edges = [Edge("c", "a", "fk", False), Edge("d", "c", "fk", True), Edge("e", "b", "fk", False)]
    assert plan_waves(sizes, edges, None).waves == [["a", "b"], ["c", "e"], ["d"]]
    # a and b do not fit together in 100; c waits for a, e for b, d for c.
    assert plan_waves(sizes, edges, 100).waves == [["a"], ["b", "c"], ["d", "e"]]
    # A table bigger than the limit gets a wave of its own rather than being refused.
    assert plan_waves({"big": 500, "small": 5}, [], 100).waves == [["big"], ["small"]]


def test_gate_passes_with_json_accepted_and_reports_the_unused_accept(assessed):
    _, outcome = assessed
    report = outcome.report
    assert report.gate.passed, report.gate.reasons
    assert report.unused_accepts == ["nothing.*"]
    assert report.value_problems == []


def test_estimates_and_costs_come_from_samples(assessed):
    plan, outcome = assessed
    report = outcome.report
    lines = {t.table: t for t in report.tables}
    orders = lines["orders"].estimate
    assert orders is not None and orders.sample_rows == 400
    assert orders.read_rows_per_second > 0 and orders.seconds > 0
    # 500 rows: 2 × INT64 + TIMESTAMP (8 bytes each), status 2 + 2…5 bytes, doc '{"n": 2}' (8 bytes).
    assert 500 * (24 + 4 + 8) <= orders.bigquery_bytes <= 500 * (24 + 7 + 17)
    assert report.estimated_seconds == pytest.approx(sum(t.estimate.seconds for t in report.tables))
    assert "on demand" in report.pricing_note
    target = open_target(plan)
    try:  # the probes' scratch tables are gone
        assert not [t.table_id for t in target.client.list_tables(target.dataset) if "probe" in t.table_id]
    finally:
        target.close()
    advice = lines["orders"].advice
    assert advice is not None and "kunde_id" in advice.cluster_by
    assert lines["events"].advice is None or lines["events"].advice.partition_by in (None, "DAY(happened)")


def test_suites_are_written_once_and_never_overwritten(assessed):
    plan, outcome = assessed
    folder = plan.expectations_dir()
    orders = json.loads((folder / "orders.json").read_text())
    kinds = {(e["type"], e["kwargs"].get("column")) for e in orders["expectations"]}
    assert ("expect_column_values_to_be_unique", "id") in kinds
    assert ("expect_column_values_to_not_be_null", "placed_at") in kinds
    status = next(e for e in orders["expectations"] if e["kwargs"].get("column") == "status"
                  and e["type"] == "expect_column_values_to_be_in_set")  # fmt: skip
    assert status["kwargs"]["value_set"] == ["happy", "ok", "sad"]
    count = orders["expectations"][0]
    assert count["kwargs"] == {"min_value": 450, "max_value": 550}
    products = json.loads((folder / "products.json").read_text())
    assert {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["sku", "variant"]},
            "meta": {"severity": "error"}} in products["expectations"]  # fmt: skip
    assert (folder / "Kunden.json").exists() and sorted(outcome.report.suites_written) == ALL_TABLES

    (folder / "orders.json").write_text('{"name": "orders", "expectations": []}')
    again = assess.run(plan, Ledger(plan.ledger_url()))
    assert (folder / "orders.json").read_text() == '{"name": "orders", "expectations": []}'
    assert sorted(again.suites_kept) == ALL_TABLES and again.suites_written == []


def test_lossy_column_without_accept_and_values_the_target_cannot_hold_fail_the_gate(
    pg_url, bq_endpoint, tmp_path
):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(ODD_VALUES + "CREATE TABLE notes (id int PRIMARY KEY, body json);")
    plan = write_plan(tmp_path, pg_url, bigquery_url(bq_endpoint), assess={"sample_rows": 10})
    outcome = lifecycle.run_stage("assess", plan)
    report = outcome.report
    assert not report.gate.passed
    # 1.5 with 46 trailing zeros fits (min_scale), 1e29 fits BIGNUMERIC; the domain is checked too.
    problems = {(p.column, p.rows) for p in report.value_problems}
    assert problems == {("d", 2), ("amount", 1), ("t", 1), ("big", 1)}
    joined = "\n".join(report.gate.reasons)
    assert "odd.d: 2 rows hold dates outside" in joined
    assert "odd.loc: tid — " in joined  # a blocker column is listed, not sampled
    assert "notes.body: json → JSON is lossy" in joined and "under accept:" in joined
    odd = json.loads((plan.expectations_dir() / "odd.json").read_text())
    ranges = {e["kwargs"]["column"]: e["kwargs"] for e in odd["expectations"]
              if e["type"] == "expect_column_values_to_be_between"}  # fmt: skip
    # 9999-12-31 is no problem (d's two are infinity and 44 BC), but Python holds neither of those: no range.
    assert "d" not in ranges and ranges["amount"]["max_value"] is not None
    for wave in (1, None):  # a whole transfer waits for a passing assessment too: nothing moves
        with pytest.raises(PlanError, match="latest assessment of plan .* failed its gate .*odd.d: 2 rows"):
            lifecycle.run_stage("transfer", plan, wave=wave)
    assert Ledger(plan.ledger_url()).chunk_records(plan.name, "odd") == []


def test_duckdb_rounds_decimals_it_accepts_but_cannot_take_wide_ones_or_infinity(pg_url, tmp_path):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(ODD_VALUES + "ALTER TABLE odd DROP COLUMN loc;")
    plan = write_plan(tmp_path, pg_url, "duckdb:///odd.duckdb", assess={"sample_rows": 10})
    report = assess.run(plan, Ledger(plan.ledger_url()))
    # 12 fractional digits are the lossy verdict (rounded to 10), not a value problem; 1e29 is. DuckDB
    # holds 44 BC, not infinity.
    problems = {(p.column, p.rows, p.problem.split(" ")[0]) for p in report.value_problems}
    assert problems == {("d", 1, "dates"), ("amount", 1, "NaN"), ("t", 1, "the"), ("big", 2, "values")}
    verdicts = {c.column: c.verdict for c in report.columns}
    assert verdicts["amount"] is Verdict.LOSSY


_ARRAYS = """
CREATE DOMAIN ints AS int[];
CREATE TABLE arrays (id int PRIMARY KEY, flat int[], grid text[], named ints);
INSERT INTO arrays VALUES
  (1, '[0:1]={7,8}', '{{a,b},{c,d}}', '{1}'),
  (2, '{1,2}', '[1:1][2:3]={{x,y}}', '[-1:0]={1,2}'),
  (3, '[2:2]={9}', '{}', NULL),
  (4, NULL, '[1:2][1:1]={{p},{q}}', '{}');
"""


def test_arrays_indexed_from_other_than_1_are_value_problems_for_every_target(pg_url, tmp_path):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(_ARRAYS)
    source = PostgresSource(pg_url)
    try:
        (table,) = source.catalog()
        for dialect in ("bigquery", "duckdb", "postgres"):  # every bound of every dimension counts
            profiled = profile(source.conn, source.relation(table), table, dialect)
            found = {column: rows for column, (_, rows) in profiled.problems.items()}
            assert found == {"flat": 2, "grid": 1, "named": 1}, dialect
    finally:
        source.close()
    plan = write_plan(tmp_path, pg_url, "duckdb:///arrays.duckdb", assess={"sample_rows": 10})
    reasons = lifecycle.run_stage("assess", plan).report.gate.reasons
    assert reasons[0] == (
        "arrays.flat: 2 rows hold arrays indexed from other than 1, like '[0:1]={7,8}' (JSON arrays keep "
        "no bounds: it arrives as [7,8]), which the target cannot hold; correct those rows in the source, "
        "or leave the table out of the plan's tables"
    )
    with pytest.raises(PlanError, match="latest assessment of plan .* failed its gate"):
        lifecycle.run_stage("transfer", plan, wave=1)


def test_json_holding_nul_is_a_value_problem_and_the_rest_is_profiled(pg_url, tmp_path):
    with psycopg.connect(pg_url, autocommit=True) as conn:  # an escaped backslash before u0000 is no NUL
        conn.execute(r"""CREATE TABLE notes (id int PRIMARY KEY, body json, bodies json[], n int, b jsonb);
            INSERT INTO notes VALUES (1, '{"a": "x\u0000y"}', '{}', 5, '{"a": "\\u0000"}'),
              (2, '{"a": "\\u0000"}', ARRAY['"\u0000"'::json], 7, '{}'), (3, '"\\\u0000"', NULL, 6, NULL)""")
    plan = write_plan(tmp_path, pg_url, "duckdb:///notes.duckdb", assess={"sample_rows": 10},
                      accept=["notes.*"])  # fmt: skip
    report = lifecycle.run_stage("assess", plan).report
    assert {(p.column, p.rows) for p in report.value_problems} == {("body", 2), ("bodies", 1)}
    assert report.gate.reasons[0] == (
        r"notes.body: 2 rows hold \u0000 in JSON strings (JSON travels as jsonb, which has no \u0000), "
        "which the target cannot hold; correct those rows in the source, or leave the table out of the "
        "plan's tables"
    )
    suite = json.loads((plan.expectations_dir() / "notes.json").read_text())
    ranges = {e["kwargs"]["column"]: e["kwargs"] for e in suite["expectations"]
              if e["type"] == "expect_column_values_to_be_between"}  # fmt: skip
    assert (ranges["n"]["min_value"], ranges["n"]["max_value"]) == (5, 7)


def test_an_assessment_for_duckdb_shows_no_bigquery_costs_or_design(pg_url, tmp_path):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE sales (id bigint PRIMARY KEY, sold date NOT NULL, amount numeric(9,2));")
        conn.execute("INSERT INTO sales SELECT g, DATE '2024-01-01' + g % 300, g FROM "
                     "generate_series(1, 3000) g")
    assessing = {"sample_rows": 2000, "advise_bytes": 0}
    plan = write_plan(tmp_path, pg_url, "duckdb:///sales.duckdb", assess=assessing)
    report = assess.run(plan, Ledger(plan.ledger_url()))
    (sales,) = report.tables
    assert report.target == "duckdb" and sales.advice is None and report.pricing_note == ""
    assert sales.estimate is not None and sales.estimate.read_rows_per_second > 0
    markdown, page = "\n".join(report.sections()), report.html()
    assert "Transfer ~" in markdown and "BigQuery" not in markdown and "$" not in markdown
    assert "BigQuery" not in page and "partition by" not in page


def test_an_estimate_that_does_not_rise_with_rows_uses_the_larger_probe():
    warming_up = assess_estimate.Cost.fit(0.5, 1_000, 0.2, 50_000)  # the first probe paid for warming up
    assert warming_up.per_row == pytest.approx(0.2 / 50_000) and warming_up.fixed == 0
    line = assess_estimate.Cost.fit(0.1, 1_000, 1.1, 101_000)
    assert line.per_row == pytest.approx(1e-5) and line.fixed == pytest.approx(0.09)


_NAMES = """
CREATE TABLE "T" (id int PRIMARY KEY); CREATE TABLE t (id int PRIMARY KEY);
CREATE TABLE pairs (id int PRIMARY KEY, "A" int, a int, "x.y" int, "_TABLE_x" int);
CREATE TABLE "a.b" (id int PRIMARY KEY); CREATE TABLE "Größe-Übersicht 2" (id int PRIMARY KEY);
"""


def test_names_the_target_cannot_take_fail_the_gate_and_transfer_never_merges_two_tables(
    pg_url, bq_endpoint, tmp_path
):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(_NAMES)
    into_duckdb = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb")
    reasons = lifecycle.run_stage("assess", into_duckdb).report.gate.reasons
    keep = "leave the table out of the plan's tables"
    assert reasons == [
        f"pairs: columns 'a' and 'A' would be one column in DuckDB, which ignores case in column names; "
        f"rename one in the source, or {keep}",
        f"t: table 't' and table 'T' would be one table in DuckDB, which ignores case in names; "
        f"rename it in the source, or {keep}",
    ]
    with pytest.raises(PlanError, match="table 't' and table 'T' would be one table"):
        lifecycle.run_stage("transfer", into_duckdb)  # t's chunks would have replaced T's rows

    into_bigquery = write_plan(tmp_path, pg_url, bigquery_url(bq_endpoint))
    reasons = lifecycle.run_stage("assess", into_bigquery).report.gate.reasons
    assert reasons == [  # letters of any script, dashes and spaces are fine; tables differing in case too
        f"a.b: BigQuery table names cannot hold '.'; rename it in the source, or {keep}",
        f"pairs: column 'x.y' holds '.', which BigQuery does not allow; rename it in the source, or {keep}",
        "pairs: column '_TABLE_x' starts with a prefix BigQuery reserves, which BigQuery does not allow; "
        f"rename it in the source, or {keep}",
        f"pairs: columns 'a' and 'A' would be one column in BigQuery, which ignores case in column names; "
        f"rename one in the source, or {keep}",
    ]


def test_a_target_user_who_cannot_create_tables_is_told_so(pg_admin_url, pg_url, tmp_path):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
    target = new_database(pg_admin_url)
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS looker; CREATE ROLE looker LOGIN")
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    plan = write_plan(tmp_path, pg_url, as_user(target, "looker"))
    expected = "could not time a sample of t in the target.*create and drop tables"
    with pytest.raises(ConnectError, match=expected):
        assess.run(plan, Ledger(plan.ledger_url()))


def test_missing_table_and_unreadable_table_name_what_to_change(estate_url, pg_admin_url, tmp_path):
    plan = write_plan(tmp_path, estate_url, "duckdb:///w.duckdb", tables=["orders", "nope"])
    with pytest.raises(PlanError, match="no table in source schema 'public' matches 'nope'"):
        assess.run(plan, Ledger(plan.ledger_url()))

    with psycopg.connect(estate_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS auditor; CREATE ROLE auditor LOGIN")
        conn.execute("GRANT SELECT ON regions TO auditor")
    auditor = as_user(estate_url, "auditor")
    plan = write_plan(tmp_path, auditor, "duckdb:///w.duckdb", tables=["regions", "orders"])
    expected = r"cannot read table public.orders as user 'auditor'.*grant it SELECT"
    with pytest.raises(AccessError, match=expected):
        assess.run(plan, Ledger(plan.ledger_url()))


def test_transfer_of_one_wave_moves_exactly_its_tables(assessed):
    plan, _ = assessed
    report = lifecycle.run_stage("transfer", plan, wave=1).report
    assert report.gate.passed, report.gate.reasons
    moved = {t.table: t for t in report.tables}  # type: ignore[attr-defined]
    assert sorted(moved) == ["employees", "events", "products", "regions"]
    assert moved["events"].rows == 300  # both partitions, read through the parent
    assert all(t.estimated_seconds and t.estimated_seconds > 0 for t in moved.values())
    with pytest.raises(PlanError, match="wave 9 does not exist; the latest assessment has waves 1–4"):
        lifecycle.run_stage("transfer", plan, wave=9)


def test_a_table_of_a_wave_dropped_after_the_assessment_asks_for_a_new_one(pg_url, tmp_path):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute('CREATE TABLE "a[1]" (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY)')
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", assess={"sample_rows": 10})
    assert lifecycle.run_stage("assess", plan).report.gate.passed
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute('DROP TABLE "a[1]"')
    gone = r"table 'a\[1\]' of wave 1 is no longer in the source .*run `liftshift assess` again"
    with pytest.raises(PlanError, match=gone):
        lifecycle.run_stage("transfer", plan, wave=1)
    whole = lifecycle.run_stage("transfer", plan).report  # b moves; the gate says what went missing
    assert [t.table for t in whole.tables] == ["b"]  # type: ignore[attr-defined]
    assert whole.gate.reasons == [
        "a[1]: assessed, but no longer in the source (dropped or renamed since); if that is meant, run "
        "`liftshift assess` again, else restore it and rerun the transfer"
    ]
    assert lifecycle.run_stage("assess", plan).report.gate.passed  # the ledger carries on
    assert lifecycle.run_stage("transfer", plan, wave=1).report.gate.passed


def test_the_html_page_and_the_notebook_show_the_real_assessment(assessed, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    plan, outcome = assessed
    page = outcome.path.with_suffix(".html").read_text(encoding="utf-8")
    assert "Größe" in page and "order_lines" in page and "http" not in page.replace("xmlns", "")
    notebook = nbformat.read(REPO / "notebooks" / "assessment.ipynb", as_version=4)
    monkeypatch.setenv("LIFTSHIFT_PLAN", str(plan.base_dir / "plan.yaml"))
    NotebookClient(notebook, timeout=60, resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2
    text = "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)
    assert "order_lines" in text and "Kunden" in text


def test_include_columns_are_not_keys_and_toast_is_measured(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE wide (id int, code int, tag text, note text,"
                     " PRIMARY KEY (id) INCLUDE (tag), UNIQUE (code) INCLUDE (tag))")
        # Random text does not compress, so it is stored out of line in TOAST.
        conn.execute("INSERT INTO wide SELECT g, g, 't', string_agg(md5(random()::text), '') "
                     "FROM generate_series(1, 20) g, generate_series(1, 200) r GROUP BY g")
    source = PostgresSource(pg_url)
    try:
        (table,) = source.catalog(["wide"])
        found = inventory.describe(source.conn, table)
    finally:
        source.close()
    assert table.primary_key == ("id",) and found.unique_keys == [["code"]]
    assert found.toast_bytes > 20 * 6000 and found.heap_bytes < found.toast_bytes


def test_a_table_without_columns_is_left_out_and_the_others_move_and_validate(pg_url, tmp_path):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE empty_cols (); INSERT INTO empty_cols DEFAULT VALUES; "
                     "CREATE TABLE b (id int PRIMARY KEY); INSERT INTO b VALUES (1)")  # fmt: skip
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", assess={"sample_rows": 10})
    assessed = lifecycle.run_stage("assess", plan)
    report = assessed.report
    assert report.gate.passed and [t.table for t in report.tables] == ["b"]  # type: ignore[attr-defined]
    line = ("empty_cols: has no columns, so it is left out (a target table needs one); give it a column in "
            "the source to move it")  # fmt: skip
    assert report.left_out == [line] and f"- {line}" in assessed.path.read_text()  # type: ignore[attr-defined]
    assert f"<li>{line}</li>" in assessed.path.with_suffix(".html").read_text()
    moved = lifecycle.run_stage("transfer", plan).report
    assert moved.gate.passed and [t.table for t in moved.tables] == ["b"]  # type: ignore[attr-defined]
    validated = lifecycle.run_stage("validate", plan).report
    assert validated.gate.passed and [t.table for t in validated.tables] == ["b"]  # type: ignore[attr-defined]
    assert {o.side for o in validated.expectations} == {"source", "target"}  # type: ignore[attr-defined]
