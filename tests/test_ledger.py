"""Opening the ledger: PostgreSQL URLs as users write them, and places it cannot be."""

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from liftshift.connectors import TARGETS
from liftshift.connectors.bigquery import BigQueryTarget
from liftshift.errors import ConnectError
from liftshift.ledger import Ledger
from tests.test_assess import as_user


def test_a_postgresql_ledger_url_without_a_driver_uses_psycopg(pg_url):
    ledger = Ledger(pg_url)  # postgresql://…: SQLAlchemy alone would look for psycopg2
    ledger.save_report("p", "assess", True, {"rows": 1})
    stored = ledger.latest_report("p", "assess")
    assert stored is not None and stored.body == {"rows": 1}


def test_a_ledger_or_duckdb_file_where_no_folder_can_be_is_one_clear_error(tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    with pytest.raises(ConnectError, match="cannot open the ledger"):
        Ledger(f"sqlite:///{tmp_path}/afile/ledger.db")
    with pytest.raises(ConnectError, match="cannot open DuckDB file .*check target.url"):
        TARGETS["duckdb"](f"duckdb:///{tmp_path}/afile/w.duckdb", tmp_path / ".liftshift")


def test_a_duckdb_file_another_process_holds_says_which_and_to_close_it(tmp_path):
    path = tmp_path / "w.duckdb"
    holder = subprocess.Popen(  # a second process, as a notebook would be: DuckDB locks per process
        [sys.executable, "-c", f"import duckdb, sys; c = duckdb.connect({str(path)!r}); print(1, flush=True);"
         " sys.stdin.read()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout and holder.stdout.readline().strip() == "1"
        with pytest.raises(ConnectError, match=f"open in another process .*PID {holder.pid}.*close it there"):
            TARGETS["duckdb"](f"duckdb:///{path}", tmp_path / ".liftshift")
    finally:
        holder.kill()
        holder.wait()


def test_an_unreachable_postgresql_target_says_to_check_the_target(tmp_path):
    with pytest.raises(ConnectError, match="check target.url") as err:
        TARGETS["postgresql"]("postgresql://app:hunter2@127.0.0.1:1/none", tmp_path / ".liftshift")
    assert "hunter2" not in str(err.value)


def test_a_bigquery_endpoint_nothing_listens_at_is_one_line_at_once(tmp_path):
    # Before: the client retried for a minute, then said "Timeout of 60.0s exceeded" over several lines.
    with pytest.raises(ConnectError, match=r"reach the BigQuery endpoint http://127.0.0.1:1: .* endpoint="):
        TARGETS["bigquery"]("bigquery://p/d?endpoint=http://127.0.0.1:1", tmp_path / ".liftshift")


def test_bigquery_without_google_credentials_says_how_to_get_them(monkeypatch, tmp_path):
    # The real client's own lookup of credentials, pointed at a key file that does not exist.
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing-key.json"))
    with pytest.raises(ConnectError, match="gcloud auth application-default login"):
        BigQueryTarget("my-project", "shop")


def test_a_ledger_user_who_cannot_create_its_tables_gets_one_line_saying_so(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS ledger_reader; CREATE ROLE ledger_reader LOGIN PASSWORD 's3cret'")
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    url = as_user(pg_url, "ledger_reader:s3cret")
    with pytest.raises(ConnectError) as err:
        Ledger(url)
    said = str(err.value)
    assert "permission denied for schema public" in said and "allowed to create its tables" in said
    assert "\n" not in said and "CREATE TABLE" not in said and "s3cret" not in said


def test_report_times_come_back_in_utc_with_their_zone(tmp_path, pg_url):
    for url in (f"sqlite:///{tmp_path}/ledger.db", pg_url):  # SQLite stores no zone; PostgreSQL its own
        before = datetime.now(UTC)
        ledger = Ledger(url)
        ledger.save_report("p", "validate", True, {"rows": 1})
        stored = ledger.latest_report("p", "validate")
        assert stored is not None and stored.created_at.utcoffset() == timedelta(0)
        assert before - timedelta(seconds=1) <= stored.created_at <= datetime.now(UTC)
