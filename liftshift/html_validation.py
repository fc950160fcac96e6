"""The validation as one self-contained HTML page (GX Data Docs need the internet; this does not)."""

from collections.abc import Sequence
from html import escape

from liftshift.aggregates import AggregateDifference
from liftshift.diff import RowDifference
from liftshift.html_report import Cell, gate_html, html_table, page
from liftshift.outcomes import ExpectationOutcome
from liftshift.validate import TableValidation, ValidateReport


def render_validation(report: ValidateReport) -> str:
    """Verdicts per table, the rows and column aggregates that differ, and every expectation."""
    failed = [o for o in report.expectations if not o.passed]
    sections = [
        ("Gate", gate_html(report)),
        ("Tables", _tables(report.tables)),
        ("Rows that differ", _rows(report.differences)),
        ("Column aggregates that differ", _aggregates(report.aggregates)),
        ("Expectations that failed", _expectations(failed)),
        ("All expectations", _expectations(report.expectations)),
    ]
    summary = f"{len(report.tables):,} tables · {report.rows:,} source rows"
    return page(f"Validation — {report.plan}", report, summary, sections)


def _verdict(passed: bool) -> Cell:
    return ("n", "equal") if passed else ("blocker", "DIFFERS")


def _tables(tables: Sequence[TableValidation]) -> str:
    rows = [
        [
            escape(t.table), _verdict(t.passed), f"{t.source_rows:,}", f"{t.target_rows:,}",
            f"{t.differing_buckets:,}", escape(t.source_checksum), escape(t.target_checksum),
            escape("; ".join(t.schema_issues)), escape(", ".join(t.accepted_lossy)),
        ]
        for t in tables
    ]  # fmt: skip
    headers = ("Table", "Rows", "Source rows", "Target rows", "Differing buckets", "Source checksum",
               "Target checksum", "Schema", "Accepted lossy (values not compared)")  # fmt: skip
    return html_table(headers, rows, numeric=[2, 3, 4])


def _rows(found: Sequence[RowDifference]) -> str:
    rows: list[list[Cell]] = []
    for d in found:
        key = escape(d.key_text())
        if not d.columns:
            rows.append([escape(d.table), key, escape(d.kind) + (f" ×{d.copies}" if d.copies > 1 else ""),
                         "", "", ""])  # fmt: skip
        for c in d.columns:
            rows.append([escape(d.table), key, escape(d.kind), escape(c.column), _value(c.source),
                         _value(c.target)])  # fmt: skip
    return html_table(("Table", "Key", "What", "Column", "Source", "Target"), rows)


def _value(value: str | None) -> str:
    return '<span class="muted">NULL</span>' if value is None else f"<code>{escape(repr(value))}</code>"


def _aggregates(found: Sequence[AggregateDifference]) -> str:
    rows = [[escape(a.table), escape(a.column), escape(a.measure), _value(a.source), _value(a.target)]
            for a in found]  # fmt: skip
    return html_table(("Table", "Column", "Measure", "Source", "Target"), rows)


def _expectations(outcomes: Sequence[ExpectationOutcome]) -> str:
    rows: list[list[Cell]] = [
        [
            escape(o.table), escape(o.side), escape(o.expectation), escape(o.column or ""),
            escape(o.severity), _result(o), escape(o.observed), escape(", ".join(o.sample)),
        ]
        for o in outcomes
    ]  # fmt: skip
    headers = ("Table", "Side", "Expectation", "Column", "Severity", "Result", "Observed", "Examples")
    return html_table(headers, rows)


def _result(outcome: ExpectationOutcome) -> Cell:
    if outcome.passed:
        return ("n", "passed")
    return ("blocker" if outcome.severity == "error" else "lossy", "failed")
