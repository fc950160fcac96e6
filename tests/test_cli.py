"""The command line: user errors are one line and exit 2; gates decide the exit code."""

import json
import re

import psycopg
from rich.console import Console
from typer.testing import CliRunner

from liftshift import cli
from liftshift.cli import app
from liftshift.demo import seed
from tests.conftest import DEMO_ACCEPT, write_plan

runner = CliRunner()


def test_bad_plan_is_one_clear_line_without_traceback(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text("name: x\nsource: {url: 'postgresql://h/d'}\ntarget: {url: 'oracle://x'}\n")
    result = runner.invoke(app, ["assess", str(path)])
    assert result.exit_code == 2
    assert "key 'target.url'" in result.output and "Traceback" not in result.output


def test_unreachable_source_keeps_the_password_out(tmp_path):
    write_plan(tmp_path, "postgresql://app:hunter2@127.0.0.1:1/shop", "duckdb:///w.duckdb")
    result = runner.invoke(app, ["transfer", str(tmp_path / "plan.yaml")])
    assert result.exit_code == 2
    assert "cannot connect to PostgreSQL" in result.output and "hunter2" not in result.output
    assert "all tables" not in result.output  # no empty progress bar before the error


def test_run_then_status_and_a_failing_gate_exits_1(pg_url, tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "console", Console(width=200))  # a summary line of its own per stage
    seed(pg_url, rows=300)
    write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", accept=DEMO_ACCEPT)
    plan = str(tmp_path / "plan.yaml")
    ran = runner.invoke(app, ["run", plan])
    assert ran.exit_code == 0
    assert "test-plan-assess.md, test-plan-assess.html" in ran.output  # each report's page is named
    status = json.loads(runner.invoke(app, ["status", plan, "--json"]).output)
    assert status["validate"]["gate"]["passed"] is True
    assert status["transfer"]["rows"] == 300 + 75 + 10 + 500
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DELETE FROM order_items WHERE id = 5")
    result = runner.invoke(app, ["validate", plan])
    assert result.exit_code == 1
    assert "order_items: 299 rows in source, 300 in target" in result.output.replace("\n", " ")


def test_status_reads_the_ledger_without_the_sources_password(tmp_path, monkeypatch):
    monkeypatch.setenv("PGPASSWORD_S19", "hunter2")
    write_plan(tmp_path, "postgresql://app:${PGPASSWORD_S19}@127.0.0.1:1/shop", "duckdb:///w.duckdb")
    plan = str(tmp_path / "plan.yaml")
    monkeypatch.delenv("PGPASSWORD_S19")  # a later shell, where only the ledger is read
    status = runner.invoke(app, ["status", plan, "--json"])
    assert status.exit_code == 0, status.output
    assert json.loads(status.output)["assess"] is None
    transfer = runner.invoke(app, ["transfer", plan])  # a command that connects still needs it
    assert transfer.exit_code == 2 and "uses ${PGPASSWORD_S19}, which is not set" in transfer.output


def test_a_reports_or_suites_folder_liftshift_cannot_write_is_one_line_and_exit_2(pg_url, tmp_path):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    write_plan(tmp_path, pg_url, "duckdb:///w.duckdb")
    plan = str(tmp_path / "plan.yaml")
    # A file where the folder should be: unwritable even for root, who runs these tests.
    (tmp_path / "expectations").write_text("")
    result = runner.invoke(app, ["assess", plan])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert f"cannot write {tmp_path / 'expectations' / 't.json'}" in " ".join(result.output.split())
    (tmp_path / "expectations").unlink()
    (tmp_path / ".liftshift" / "reports").write_text("")  # the ledger beside it made .liftshift
    result = runner.invoke(app, ["assess", plan])
    assert result.exit_code == 2 and "cannot write" in result.output and "writable" in result.output
    assert json.loads(runner.invoke(app, ["status", plan, "--json"]).output)["assess"]["gate"]["passed"]


def test_run_without_a_workload_stops_before_the_first_stage(pg_url, tmp_path):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", workload="queries")  # a folder that is not there
    plan = str(tmp_path / "plan.yaml")
    result = runner.invoke(app, ["run", plan])
    assert result.exit_code == 2 and "no workload: put .sql files" in " ".join(result.output.split())
    assert "assess …" not in result.output  # before: assess, transfer and validate ran, then it stopped
    assert json.loads(runner.invoke(app, ["status", plan, "--json"]).output)["assess"] is None


def test_transfer_of_a_wave_before_any_assessment_says_to_assess_first(tmp_path):
    write_plan(tmp_path, "postgresql://app@127.0.0.1:1/shop", "duckdb:///w.duckdb")
    result = runner.invoke(app, ["transfer", str(tmp_path / "plan.yaml"), "--wave", "1"])
    assert result.exit_code == 2
    assert "run `liftshift assess` first" in " ".join(result.output.split())


def test_transfer_shows_rows_and_throughput_per_table_and_overall_then_a_delta(pg_url, tmp_path):
    from tests.test_delta import _CHANGES, _SOURCE, WATERMARKS

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(_SOURCE)
    write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", tables=["items", "tags"],
               transfer={"chunk_rows": 200, "watermarks": WATERMARKS})  # fmt: skip
    plan = str(tmp_path / "plan.yaml")
    result = runner.invoke(app, ["transfer", plan])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    overall = next(line for line in lines if line.startswith("all tables"))
    assert "1,100/1,100 rows" in overall and re.search(r"\d+\.\d\d MB/s", overall), overall
    assert any(line.startswith("items") and "1,000/1,000 rows" in line for line in lines)
    page = (tmp_path / ".liftshift" / "reports" / "test-plan-transfer.md").read_text()
    assert "| items | 1,000 |" in page and "None" not in page  # no estimate without an assessment: empty

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(_CHANGES)
    delta = runner.invoke(app, ["transfer", plan, "--delta"])
    assert delta.exit_code == 0, delta.output
    assert "13/13 rows" in delta.output and "test-plan-delta.md" in delta.output
    assert re.search(r"items .* 13/13 rows +\d+\.\d\d MB/s", delta.output), delta.output


def test_delta_with_an_unknown_watermark_column_is_one_line_and_exit_2(pg_url, tmp_path):
    from tests.test_delta import _SOURCE

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(_SOURCE)
    write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", transfer={"watermarks": {"items": "nope"}})
    result = runner.invoke(app, ["transfer", str(tmp_path / "plan.yaml"), "--delta"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "has no column 'nope'" in " ".join(result.output.split())


def test_demo_without_its_plan_says_where_before_starting_anything(tmp_path):
    result = runner.invoke(app, ["demo", "--plan", str(tmp_path / "migration.yaml")])
    assert result.exit_code == 2
    assert "no demo plan at" in result.output and "starting" not in result.output
    assert not (tmp_path / ".liftshift").exists()  # no server was started, nothing was seeded


def test_help_says_what_each_stage_does_and_what_the_exit_codes_mean():
    result = runner.invoke(app, ["--help"])
    text = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 0 and "Exit codes: 0 every gate passed; 1 a gate failed" in text
    assert "exact, lossy or blocked" in text and "fails on drift" in text


def test_an_error_is_one_line_however_narrow_the_console(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "console", Console(width=40))
    write_plan(tmp_path, "postgresql://app:hunter2@127.0.0.1:1/shop", "duckdb:///w.duckdb")
    result = runner.invoke(app, ["assess", str(tmp_path / "plan.yaml")])
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: cannot connect to PostgreSQL") and line.endswith("the server is running")
