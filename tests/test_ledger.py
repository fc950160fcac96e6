"""Opening the ledger: PostgreSQL URLs as users write them, and places it cannot be."""

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


def test_an_unreachable_postgresql_target_says_to_check_the_target(tmp_path):
    with pytest.raises(ConnectError, match="check target.url") as err:
        TARGETS["postgresql"]("postgresql://app:hunter2@127.0.0.1:1/none", tmp_path / ".liftshift")
    assert "hunter2" not in str(err.value)


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
