"""Plan loading: valid plans load, and every mistake names the key and what is allowed."""

from pathlib import Path

import pytest

from liftshift.errors import PlanError
from liftshift.plan import load_plan


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return path


GOOD = """
name: shop
source: {url: "postgresql://app:${PGPASS}@db:5432/shop", schema: sales}
target: {url: "bigquery://proj/ds"}
tables: ["orders*", customers]
transfer: {chunk_rows: 1000}
"""


def test_valid_plan_loads_with_defaults_and_expands_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("PGPASS", "s3cret")
    plan = load_plan(write(tmp_path, GOOD))
    assert plan.source.url == "postgresql://app:s3cret@db:5432/shop"
    assert plan.source.schema_name == "sales"
    assert plan.tables == ["orders*", "customers"]
    assert plan.transfer.chunk_rows == 1000
    assert plan.transfer.max_source_connections == 2
    assert plan.ledger_url() == f"sqlite:///{tmp_path / '.liftshift' / 'shop.db'}"


def test_missing_variable_names_key_and_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("PGPASS", raising=False)
    with pytest.raises(PlanError, match=r"key 'source.url' uses \$\{PGPASS\}, which is not set"):
        load_plan(write(tmp_path, GOOD))


def test_unknown_key_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PGPASS", "x")
    with pytest.raises(PlanError, match="key 'transfer.chunk_size' is not a plan setting"):
        load_plan(write(tmp_path, GOOD.replace("chunk_rows", "chunk_size")))


def test_bad_target_scheme_says_what_is_allowed(tmp_path, monkeypatch):
    monkeypatch.setenv("PGPASS", "x")
    with pytest.raises(PlanError, match="key 'target.url': must be one of .*bigquery://PROJECT/DATASET"):
        load_plan(write(tmp_path, GOOD.replace("bigquery://proj/ds", "snowflake://x")))


def test_bad_value_and_missing_key(tmp_path):
    text = "name: x\nsource: {url: 'postgresql://h/d'}\ntarget: {url: 'duckdb:///w.duckdb'}\n"
    with pytest.raises(PlanError, match="key 'transfer.chunk_rows'"):
        load_plan(write(tmp_path, text + "transfer: {chunk_rows: -5}\n"))
    with pytest.raises(PlanError, match="key 'target' is required"):
        load_plan(write(tmp_path, "name: x\nsource: {url: 'postgresql://h/d'}\n"))


def test_not_a_plan(tmp_path):
    with pytest.raises(PlanError, match="no such plan file"):
        load_plan(tmp_path / "absent.yaml")
    with pytest.raises(PlanError, match="must be a mapping"):
        load_plan(write(tmp_path, "- just\n- a list\n"))
    with pytest.raises(PlanError, match="not valid YAML"):
        load_plan(write(tmp_path, "name: [unclosed\n"))


def test_a_password_with_url_characters_reaches_the_driver_whole(tmp_path, monkeypatch):
    import psycopg

    monkeypatch.setenv("PGPASS", "p@ss/w:rd#1?")
    plan = load_plan(write(tmp_path, GOOD))
    parsed = psycopg.conninfo.conninfo_to_dict(plan.source.url)  # libpq's own reading of the URL
    assert parsed["password"] == "p@ss/w:rd#1?" and parsed["host"] == "db" and parsed["dbname"] == "shop"


def test_a_key_given_twice_is_refused_and_a_relative_ledger_is_beside_the_plan(tmp_path, monkeypatch):
    monkeypatch.setenv("PGPASS", "x")
    with pytest.raises(PlanError, match="key 'transfer' is given twice; keep one"):
        load_plan(write(tmp_path, GOOD + "transfer: {chunk_bytes: 32MiB}\n"))
    plan = load_plan(write(tmp_path, GOOD + "ledger: sqlite:///state/ledger.db\n"))
    assert plan.ledger_url() == f"sqlite:///{tmp_path / 'state' / 'ledger.db'}"
    plan = load_plan(write(tmp_path, GOOD + "ledger: sqlite:////var/ledger.db\n"))
    assert plan.ledger_url() == "sqlite:////var/ledger.db"
