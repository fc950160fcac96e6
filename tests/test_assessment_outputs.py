"""The assessment's outputs: the self-contained HTML page, the saved files, and the notebook."""

import re
import sys
from datetime import UTC, datetime
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from liftshift import report as stage_report
from liftshift.assess_report import (
    Advice,
    AssessReport,
    ColumnAssessment,
    Estimate,
    ForeignKey,
    SequenceInfo,
    TableAssessment,
    ValueProblem,
    ViewInfo,
    Wave,
)
from liftshift.errors import PlanError
from liftshift.html_report import human_bytes, render_assessment
from liftshift.ledger import Ledger
from liftshift.notebook import load_report
from liftshift.report import GateResult
from liftshift.types import Verdict
from tests.conftest import REPO, write_plan

NOTEBOOK = REPO / "notebooks" / "assessment.ipynb"
GROSSE = 'Größe "x"'
SCRIPT = "<script>alert('t')</script>"
NAMES = ["customers", "orders", GROSSE, SCRIPT, "order_items"]


def _table(
    name: str, wave: int, rows: int, mib: float, seconds: float | None, **extra: object
) -> TableAssessment:
    total = int(mib * 2**20)
    estimate = None
    if seconds is not None:
        estimate = Estimate(
            sample_rows=min(rows, 10_000), read_rows_per_second=rows / seconds * 1.6,
            write_rows_per_second=rows / seconds * 2.2, seconds=seconds, bigquery_bytes=int(total * 0.7),
            storage_usd_month=total * 0.7 / 2**30 * 0.02, validation_usd=total / 2**40 * 6.25,
        )  # fmt: skip
    fields: dict[str, object] = {
        "table": name, "rows": rows, "rows_estimate": int(rows * 0.97), "heap_bytes": int(total * 0.6),
        "toast_bytes": int(total * 0.1), "index_bytes": total - int(total * 0.6) - int(total * 0.1),
        "total_bytes": total, "columns": 4, "primary_key": ["id"], "unique_keys": [], "foreign_keys": [],
        "indexes": [f"{name}_pkey"], "partition_key": None, "partitions": [], "triggers": [],
        "inserts": rows, "updates": rows // 10, "deletes": 0, "hot": False, "blockers": 0, "lossy": 0,
        "wave": wave, "estimate": estimate, "advice": None,
    }  # fmt: skip
    return TableAssessment.model_validate({**fields, **extra})


def _column(
    table: str, column: str, source: str, target: str, verdict: Verdict, **extra: object
) -> ColumnAssessment:
    fields = {"table": table, "column": column, "source_type": source, "nullable": True, "default": None,
              "target_type": target, "verdict": verdict, "note": ""}  # fmt: skip
    return ColumnAssessment.model_validate({**fields, **extra})


def sample_report(plan: str = "test-plan") -> AssessReport:
    """An assessment of five tables with awkward names, a blocker, lossy columns and three waves."""
    fk = ForeignKey(
        name="orders_customer_fk", columns=["customer_id"], references="customers",
        referenced_columns=["id"], nullable=False,
    )  # fmt: skip
    orders = _table(
        "orders", 2, 2_400_000, 610.0, 41.5, hot=True, foreign_keys=[fk], partition_key="created_at",
        partitions=[f"orders_2025_{m:02d}" for m in range(1, 13)], triggers=["orders_audit"],
        advice=Advice(partition_by="created_at", partition_reason="range-partitioned by month in PostgreSQL",
                      cluster_by=["customer_id"], cluster_reason="joined to customers in 4 workload queries"),
    )  # fmt: skip
    tables = [
        _table("customers", 1, 120_000, 24.0, 2.1, unique_keys=[["email"]]),
        orders,
        _table(GROSSE, 1, 3_000, 0.4, 0.2, lossy=1),
        _table(SCRIPT, 2, 50, 0.02, None, blockers=1, primary_key=[]),
        _table("order_items", 3, 9_800_000, 1900.0, 160.0, foreign_keys=[fk.model_copy(update={
            "name": "items_order_fk", "columns": ["order_id"], "references": "orders"})]),
    ]  # fmt: skip
    columns = [
        _column("customers", "id", "bigint", "INT64", Verdict.EXACT),
        _column("customers", "email", "character varying(200)", "STRING", Verdict.EXACT),
        _column("orders", "total", "numeric(12,2)", "NUMERIC(12, 2)", Verdict.EXACT),
        _column("orders", "created_at", "timestamp with time zone", "TIMESTAMP", Verdict.EXACT),
        _column(GROSSE, "Maß <b>", "numeric(50,20)", "BIGNUMERIC", Verdict.LOSSY, accepted=True,
                note="scale 20 kept; 50 digits exceed 38 before the point"),
        _column(SCRIPT, "payload", "interval", "—", Verdict.BLOCKER, note="no BigQuery type for interval"),
        _column("order_items", "qty", "integer", "INT64", Verdict.WIDENED, note="stored as INT64"),
        _column("order_items", "weight", "real", "FLOAT64", Verdict.LOSSY, note="float rounding"),
    ]  # fmt: skip
    waves = [
        Wave(number=n, tables=[t.table for t in tables if t.wave == n],
             bytes=sum(t.total_bytes for t in tables if t.wave == n),
             rows=sum(t.rows for t in tables if t.wave == n),
             estimated_seconds=sum(t.estimate.seconds for t in tables if t.wave == n and t.estimate))
        for n in (1, 2, 3)
    ]  # fmt: skip
    reasons = [
        f"1 blocker column: {SCRIPT}.payload (interval)",
        "1 lossy column not accepted: order_items.weight",
    ]
    return AssessReport(
        stage="assess", plan=plan, started_at=datetime(2026, 11, 20, 9, 30, tzinfo=UTC), seconds=12.5,
        gate=GateResult(passed=False, reasons=reasons), rows=sum(t.rows for t in tables),
        tables=tables, columns=columns, waves=waves,
        value_problems=[ValueProblem(table=GROSSE, column="Maß <b>", problem="41 digits before the point",
                                     rows=3)],
        cycles=["employees.manager_id → employees (broken at employees_manager_fk, nullable)"],
        views=[ViewInfo(name="order_totals", kind="view", depends_on=["orders", "order_items"]),
               ViewInfo(name="mv_<daily>", kind="materialized view", depends_on=["orders"])],
        sequences=[SequenceInfo(name="customers_id_seq", owned_by="customers.id", last_value=120_000),
                   SequenceInfo(name="spare_seq", owned_by=None, last_value=None)],
        suites_written=["customers", "orders"], suites_kept=[GROSSE], unused_accepts=["legacy.old_col"],
        estimated_seconds=sum(w.estimated_seconds for w in waves), bigquery_bytes=int(1.8 * 2**30),
        storage_usd_month=0.036, validation_usd=0.0118, pricing_note="On-demand list prices, US.",
    )  # fmt: skip


class _Structure(HTMLParser):
    """Checks that every element is closed in order, and collects the text of the page."""

    VOID = {"meta", "br", "rect", "line"}  # rect/line close themselves ("/>") in the SVG

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pass

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID and (not self.stack or self.stack[-1] != tag):
            return
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1:]}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parsed(page: str) -> _Structure:
    parser = _Structure()
    parser.feed(page)
    parser.close()
    assert parser.stack == [], f"unclosed: {parser.stack}"
    return parser


def _svg(page: str) -> str:
    charts = re.findall(r"<svg\b.*?</svg>", page, flags=re.S)
    assert len(charts) == 1
    return charts[0]


def _section(page: str, title: str) -> str:
    """The text of one section of the page, tags stripped and entities decoded."""
    match = re.search(rf'<h2 id="s\d+">{re.escape(title)}</h2>(.*?)(?=<h2|</body>)', page, flags=re.S)
    assert match, title
    return "".join(_parsed(match[1]).text)


def test_the_page_is_self_contained_escaped_and_complete() -> None:
    report = sample_report()
    page = render_assessment(report)
    for external in ("http://", "https://", "src=", "<link", "<script", "@import", "url("):
        assert external not in page.lower(), external
    text = "".join(_parsed(page).text)
    for name in [*NAMES, "Maß <b>", "mv_<daily>"]:
        assert name in text  # shown as written once the page is parsed...
        assert escape(name) in page and (name == escape(name) or name not in page)  # ...as it is escaped
    gate = _section(page, "Gate")
    assert "Gate FAILED" in gate and all(reason in gate for reason in report.gate.reasons)
    problems = _section(page, "Blockers, lossy columns and value problems")
    assert "payload" in problems and "blocker" in problems and "Maß <b>" in problems
    assert "41 digits before the point" in problems and "legacy.old_col" in problems
    assert problems.index("payload") < problems.index("weight")  # blockers before lossy columns
    waves = _section(page, "Waves")
    for wave in report.waves:
        assert all(t in waves for t in wave.tables) and human_bytes(wave.bytes) in waves
    assert "employees_manager_fk" in _section(page, "Foreign-key cycles broken")
    assert "order_items" in _section(page, "Views and materialized views")
    assert "120,000" in _section(page, "Sequences") and GROSSE in _section(page, "Expectation suites")
    tables = _section(page, "Tables")
    assert "1.9 GiB" in tables and "orders_2025_01" in tables and "cluster by customer_id" in tables
    assert '<span class="badge">hot</span>' in page and "0.04 / month" in _section(page, "Totals")
    assert "8 columns" in _section(page, "All column mappings")


def test_the_chart_has_one_bar_per_table_per_series_from_1_to_200_tables() -> None:
    report = sample_report()
    svg = _svg(render_assessment(report))
    assert svg.count('class="bar bytes"') == svg.count('class="bar secs"') == len(report.tables)
    assert all(escape(name) in svg for name in NAMES) and "no estimate" in svg
    one = report.model_copy(update={"tables": report.tables[:1]})
    assert _svg(render_assessment(one)).count('class="bar bytes"') == 1
    many = [t.model_copy(update={"table": f"t{i:03d}_{t.table}"}) for i in range(40) for t in report.tables]
    big = _svg(render_assessment(report.model_copy(update={"tables": many})))
    assert big.count('class="bar bytes"') == big.count('class="bar secs"') == 200
    height = re.search(r'height="(\d+)"', big)
    assert height and int(height[1]) >= 200 * 16  # a readable row per table, not a fixed box


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, AssessReport, Path]:
    """A plan in tmp_path whose ledger holds sample_report(); the plan file, report and Markdown file."""
    plan = write_plan(tmp_path, "postgresql://nobody@localhost:1/not-connected", "duckdb:///target.duckdb")
    report = sample_report(plan.name)
    markdown = stage_report.save(Ledger(plan.ledger_url()), report, plan.state_dir())
    return tmp_path / "plan.yaml", report, markdown


def test_saving_writes_the_html_page_beside_the_markdown(saved: tuple[Path, AssessReport, Path]) -> None:
    _, report, markdown = saved
    assert markdown.is_file()
    page = markdown.with_name(f"{report.plan}-assess.html")
    assert page.read_text(encoding="utf-8") == render_assessment(report)


def test_the_notebook_runs_against_the_ledger(
    saved: tuple[Path, AssessReport, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    plan_path, report, _ = saved
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "commit the notebook cleared"
    notebook.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.prefix)"))
    monkeypatch.setenv("LIFTSHIFT_PLAN", str(plan_path))
    client = NotebookClient(
        notebook, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, if a cell fails
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2  # per table and per wave
    text = "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)
    assert all(name in text for name in NAMES) and "payload" in text and "gate FAILED" in text
    assert notebook.cells[-1].outputs[0].text.strip() == sys.prefix  # the kernel is this venv's Python


def test_loading_a_plan_that_was_never_assessed_says_what_to_run(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, "postgresql://nobody@localhost:1/not-connected", "duckdb:///target.duckdb")
    with pytest.raises(PlanError, match=r"no ledger yet .*run `liftshift assess .*plan.yaml` first"):
        load_report(tmp_path / "plan.yaml")
    assert not plan.state_dir().exists()  # looking did not create an empty ledger
    Ledger(plan.ledger_url()).save_report(plan.name, "validate", True, {})
    with pytest.raises(PlanError, match=r"no assess report in .*run `liftshift assess .*plan.yaml` first"):
        load_report(tmp_path / "plan.yaml")
