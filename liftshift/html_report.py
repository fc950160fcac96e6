"""The assessment as one self-contained HTML page: inline CSS and SVG, no scripts, opens offline."""

from collections.abc import Iterable, Sequence
from html import escape

from liftshift.assess_report import (
    AssessReport,
    ColumnAssessment,
    ForeignKey,
    TableAssessment,
)
from liftshift.report import StageReport
from liftshift.types import Verdict

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_NONE = '<span class="muted">—</span>'
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2430;margin:0 auto;
 max-width:1400px;padding:1rem 1.5rem}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.15rem;margin:1.8rem 0 .5rem;border-bottom:1px solid #d5dae1}
nav a{margin-right:.8rem}.muted{color:#6b7380}.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:12.5px}th,td{border:1px solid #d5dae1;padding:3px 6px;
 vertical-align:top;text-align:left}th{background:#eef1f5;position:sticky;top:0}td.n{text-align:right;
 white-space:nowrap;font-variant-numeric:tabular-nums}tr:nth-child(even) td{background:#fafbfc}
.gate{display:inline-block;padding:.25rem .8rem;border-radius:4px;font-weight:700;color:#fff}
.pass{background:#1e7b3c}.fail{background:#b3261e}.badge{font-size:11px;padding:0 .35rem;border-radius:3px;
 color:#fff;background:#b85c00;margin-left:.3rem}
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1.2rem}dt{color:#4a5361}dd{margin:0}
td.blocker{color:#b3261e;font-weight:700}td.wide{min-width:17rem}td.lossy{color:#b85c00;font-weight:700}
svg.chart{max-width:100%;height:auto;font-size:11px}.chart .bytes{fill:#3b6fb6}.chart .secs{fill:#d08a2c}
.chart .stripe{fill:#f3f5f8}.chart .muted{fill:#6b7380}.chart .axis{stroke:#9aa3af}.chart text{fill:#1d2430}
details summary{cursor:pointer;font-weight:600}
"""


def render_assessment(report: AssessReport) -> str:
    """The whole assessment report as one HTML page that needs nothing but a browser."""
    sections = [
        ("Gate", gate_html(report)),
        ("Totals", _totals(report)),
        ("Blockers, lossy columns and value problems", _problems(report)),
        ("Size and estimated time per table", _chart(report.tables)),
        ("Tables", _inventory(report)),
        ("Left out", html_list(report.left_out)),
        ("Waves", _waves(report)),
        ("Foreign-key cycles broken", html_list(report.cycles)),
        ("Views and materialized views", _views(report)),
        ("Sequences", _sequences(report)),
        ("Expectation suites", _suites(report)),
        ("All column mappings", _all_columns(report.columns)),
    ]
    return page(f"Assessment — {report.plan}", report, f"{len(report.tables):,} tables", sections)


def page(title: str, report: StageReport, summary: str, sections: list[tuple[str, str]]) -> str:
    """One self-contained page: a title, when the stage ran, a menu, and the sections' HTML."""
    nav = " ".join(f'<a href="#s{i}">{escape(title)}</a>' for i, (title, _) in enumerate(sections))
    body = "\n".join(f'<h2 id="s{i}">{escape(t)}</h2>\n{html}' for i, (t, html) in enumerate(sections))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>\n"
        f'<h1>{escape(title)}</h1>\n<p class="muted">started {report.started_at:%Y-%m-%d %H:%M:%S} UTC'
        f" · took {human_seconds(report.seconds)} · {escape(summary)}</p>\n"
        f"<nav>{nav}</nav>\n{body}\n</body></html>\n"
    )


def human_bytes(n: float) -> str:
    """A byte count in binary units: 512 B, 1.5 KiB, 3.2 GiB."""
    value = float(n)
    unit = _UNITS[0]
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            break
        value /= 1024
    return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"


def human_seconds(seconds: float) -> str:
    """A duration for people: 850 ms, 12.3 s, 4 min 5 s, 2 h 3 min, 3 d 4 h."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def usd(amount: float) -> str:
    """Dollars with cents; amounts under a cent say so rather than showing $0.00."""
    return "< $0.01" if 0 < amount < 0.01 else f"${amount:,.2f}"


def table_seconds(table: TableAssessment) -> float:
    """A table's estimated transfer time, 0 when it has no estimate."""
    return table.estimate.seconds if table.estimate else 0.0


# --- building blocks -------------------------------------------------------------------------


# A cell is already-escaped HTML, or (css class, HTML) for a cell styled on its own (verdicts).
Cell = str | tuple[str, str]


def html_table(headers: Sequence[str], rows: Iterable[Sequence[Cell]], numeric: Iterable[int] = ()) -> str:
    """An HTML table: headers are plain text, cells already-escaped HTML; numeric columns align right."""
    right = set(numeric)
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = ["<tr>" + "".join(_td(cell, i in right) for i, cell in enumerate(row)) + "</tr>" for row in rows]
    if not body:
        return '<p class="muted">None.</p>'
    lines = "\n".join(body)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead>\n<tbody>{lines}</tbody></table></div>'


def _td(cell: Cell, numeric: bool) -> str:
    if isinstance(cell, tuple):
        return f'<td class="{cell[0]}">{cell[1]}</td>'
    return f'<td class="n">{cell}</td>' if numeric else f"<td>{cell}</td>"


def html_list(items: Sequence[str]) -> str:
    if not items:
        return '<p class="muted">None.</p>'
    return "<ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>"


def _names(names: Sequence[str], limit: int = 6) -> str:
    """Escaped names joined by commas; long lists show the first few and how many more."""
    if not names:
        return _NONE
    shown = ", ".join(escape(n) for n in names[:limit])
    rest = len(names) - limit
    return shown + (f' <span class="muted">… +{rest:,} more</span>' if rest > 0 else "")


def _cols(columns: Sequence[str]) -> str:
    return "(" + ", ".join(escape(c) for c in columns) + ")"


# --- sections --------------------------------------------------------------------------------


def gate_html(report: StageReport) -> str:
    """The gate's verdict and its reasons."""
    css, word = ("pass", "passed") if report.gate.passed else ("fail", "FAILED")
    return f'<p><span class="gate {css}">Gate {word}</span></p>\n' + (
        html_list(report.gate.reasons) if report.gate.reasons else ""
    )


def _totals(report: AssessReport) -> str:
    tables = report.tables
    blockers = sum(1 for c in report.columns if c.verdict == Verdict.BLOCKER)
    lossy = sum(1 for c in report.columns if c.verdict == Verdict.LOSSY)
    rows = f"{sum(t.rows for t in tables):,} (planner's estimate {sum(t.rows_estimate for t in tables):,})"
    facts = [
        ("Tables", f"{len(tables):,} ({sum(1 for t in tables if t.hot):,} hot)"),
        ("Rows", rows),
        ("Source size", human_bytes(sum(t.total_bytes for t in tables)) + " (heap + TOAST + indexes)"),
        ("Estimated transfer time", human_seconds(report.estimated_seconds)),
    ]
    if report.target == "bigquery":
        facts += [
            ("BigQuery bytes", human_bytes(report.bigquery_bytes)),
            ("BigQuery storage", usd(report.storage_usd_month) + " / month"),
            ("Validation queries", usd(report.validation_usd)),
        ]
    facts += [
        ("Blockers / lossy columns", f"{blockers:,} / {lossy:,}"),
        ("Value problems", f"{len(report.value_problems):,}"),
    ]
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts)
    note = f'<p class="muted">{escape(report.pricing_note)}</p>' if report.pricing_note else ""
    return f"<dl>{items}</dl>\n{note}"


def _column_rows(columns: Iterable[ColumnAssessment]) -> list[list[Cell]]:
    return [
        [
            escape(c.table), escape(c.column), escape(c.source_type), escape(c.target_type),
            (c.verdict.value, escape(c.verdict.value)), "yes" if c.accepted else "no",
            "yes" if c.nullable else "no", escape(c.default) if c.default is not None else _NONE,
            escape(c.note),
        ]
        for c in columns
    ]  # fmt: skip


_COLUMN_HEADERS = ("Table", "Column", "Source type", "Target type", "Verdict", "Accepted", "Nullable",
                   "Default", "Note")  # fmt: skip


def _problems(report: AssessReport) -> str:
    severity = {Verdict.BLOCKER: 0, Verdict.LOSSY: 1}
    flagged = sorted(
        (c for c in report.columns if c.verdict in severity),
        key=lambda c: (severity[c.verdict], c.accepted, c.table, c.column),
    )
    values = [
        [escape(v.table), escape(v.column), escape(v.problem), f"{v.rows:,}"] for v in report.value_problems
    ]
    parts = [
        "<h3>Blockers and lossy columns</h3>",
        html_table(_COLUMN_HEADERS, _column_rows(flagged)),
        "<h3>Values the target cannot hold</h3>",
        html_table(("Table", "Column", "Problem", "Rows"), values, numeric=[3]),
    ]
    names = [n for t in report.tables for n in t.names]
    if names:
        parts += ["<h3>Names the target cannot take</h3>", html_list(names)]
    if report.unused_accepts:
        parts += ["<h3>Accepted in the plan but matching no column</h3>", html_list(report.unused_accepts)]
    return "\n".join(parts)


def _all_columns(columns: Sequence[ColumnAssessment]) -> str:
    table = html_table(_COLUMN_HEADERS, _column_rows(columns))
    return f"<details><summary>{len(columns):,} columns</summary>\n{table}\n</details>"


def _inventory(report: AssessReport) -> str:
    headers = ("Table", "Wave", "Rows", "Size", "Columns", "Keys", "Foreign keys", "Indexes", "Partitions",
               "Triggers", "Inserts / updates / deletes", "Blockers / lossy", "Estimate",
               "Advice")  # fmt: skip
    rows: list[list[Cell]] = [
        [
            escape(t.table) + ('<span class="badge">hot</span>' if t.hot else ""), str(t.wave),
            f'{t.rows:,}<br><span class="muted">planner ≈ {t.rows_estimate:,}</span>', _size(t),
            str(t.columns), _keys(t), "<br>".join(_foreign_key(fk) for fk in t.foreign_keys) or _NONE,
            _names(t.indexes), _partitions(t), _names(t.triggers),
            f"{t.inserts:,} / {t.updates:,} / {t.deletes:,}", f"{t.blockers} / {t.lossy}",
            ("wide", _estimate(t, report.target == "bigquery")), ("wide", _advice(t)),
        ]
        for t in report.tables
    ]  # fmt: skip
    return html_table(headers, rows, numeric=[1, 2, 3, 4, 10, 11])


def _size(t: TableAssessment) -> str:
    parts = [f"heap {human_bytes(t.heap_bytes)}", f"TOAST {human_bytes(t.toast_bytes)}",
             f"indexes {human_bytes(t.index_bytes)}"]  # fmt: skip
    return f'<b>{human_bytes(t.total_bytes)}</b><br><span class="muted">{"<br>".join(parts)}</span>'


def _keys(t: TableAssessment) -> str:
    keys = [f"PK {_cols(t.primary_key)}"] if t.primary_key else ['<span class="muted">no primary key</span>']
    keys += [f"UNIQUE {_cols(u)}" for u in t.unique_keys]
    return "<br>".join(keys)


def _foreign_key(fk: ForeignKey) -> str:
    nullable = ' <span class="muted">nullable</span>' if fk.nullable else ""
    target = f"{escape(fk.references)} {_cols(fk.referenced_columns)}"
    return f"{escape(fk.name)}: {_cols(fk.columns)} → {target}{nullable}"


def _partitions(t: TableAssessment) -> str:
    if t.partition_key is None and not t.partitions:
        return _NONE
    key = f"by {escape(t.partition_key)}: " if t.partition_key else ""
    return f"{key}{len(t.partitions):,} — {_names(t.partitions, limit=3)}"


def _estimate(t: TableAssessment, bigquery: bool) -> str:
    e = t.estimate
    if e is None:
        return _NONE
    costs = (
        f" · {human_bytes(e.bigquery_bytes)} in BigQuery<br>{usd(e.storage_usd_month)}/month · "
        f"validation {usd(e.validation_usd)}"
        if bigquery else ""
    )  # fmt: skip
    return (
        f"<b>{human_seconds(e.seconds)}</b>{costs}<br>"
        f'<span class="muted">sample {e.sample_rows:,} rows · read {e.read_rows_per_second:,.0f} rows/s'
        f" · write {e.write_rows_per_second:,.0f} rows/s</span>"
    )


def _advice(t: TableAssessment) -> str:
    a = t.advice
    if a is None:
        return _NONE
    lines = []
    if a.partition_by:
        lines.append(f"partition by <b>{escape(a.partition_by)}</b> — {escape(a.partition_reason)}")
    if a.cluster_by:
        lines.append(
            f"cluster by <b>{', '.join(escape(c) for c in a.cluster_by)}</b> — {escape(a.cluster_reason)}"
        )
    return "<br>".join(lines) or _NONE


def _waves(report: AssessReport) -> str:
    rows = [
        [str(w.number), f"{len(w.tables):,}: " + _names(w.tables, limit=12), f"{w.rows:,}",
         human_bytes(w.bytes), human_seconds(w.estimated_seconds)]
        for w in report.waves
    ]  # fmt: skip
    return html_table(("Wave", "Tables", "Rows", "Bytes", "Estimated time"), rows, numeric=[0, 2, 3, 4])


def _views(report: AssessReport) -> str:
    rows = [[escape(v.name), escape(v.kind), _names(v.depends_on, limit=20)] for v in report.views]
    return html_table(("Name", "Kind", "Reads"), rows)


def _sequences(report: AssessReport) -> str:
    rows = [
        [escape(s.name), escape(s.owned_by) if s.owned_by else _NONE,
         f"{s.last_value:,}" if s.last_value is not None else _NONE]
        for s in report.sequences
    ]  # fmt: skip
    return html_table(("Name", "Owned by", "Last value"), rows, numeric=[2])


def _suites(report: AssessReport) -> str:
    kept = html_list(report.suites_kept)
    return f"<h3>Written</h3>\n{html_list(report.suites_written)}\n<h3>Kept (edited by hand)</h3>\n{kept}"


# --- the chart -------------------------------------------------------------------------------

_ROW, _TOP, _LABEL, _PANEL, _VALUE, _CLIP = 18, 34, 240, 300, 90, 36


def _chart(tables: Sequence[TableAssessment]) -> str:
    """Two horizontal bar series per table, size and estimated time, largest table first."""
    if not tables:
        return '<p class="muted">No tables.</p>'
    ordered = sorted(tables, key=lambda t: (-t.total_bytes, t.table))
    width = _LABEL + 2 * (_PANEL + _VALUE)
    height = _TOP + _ROW * len(ordered) + 6
    x_bytes, x_secs = _LABEL, _LABEL + _PANEL + _VALUE
    max_bytes = max(t.total_bytes for t in ordered) or 1
    max_secs = max(table_seconds(t) for t in ordered) or 1.0
    parts = [
        f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        "<title>Size and estimated transfer time per table</title>",
        f'<text x="{x_bytes}" y="14" font-weight="bold">Size (heap + TOAST + indexes)</text>',
        f'<text x="{x_secs}" y="14" font-weight="bold">Estimated transfer time</text>',
        f'<text x="{x_bytes}" y="28" class="muted">0 – {human_bytes(max_bytes)}</text>',
        f'<text x="{x_secs}" y="28" class="muted">0 – {human_seconds(max_secs)}</text>',
    ]
    for i, t in enumerate(ordered):
        y = _TOP + i * _ROW
        if i % 2:
            parts.append(f'<rect class="stripe" x="0" y="{y}" width="{width}" height="{_ROW}"/>')
        name = t.table if len(t.table) <= _CLIP else t.table[: _CLIP - 1] + "…"
        parts.append(
            f'<text x="{_LABEL - 6}" y="{y + 13}" text-anchor="end">{escape(name)}'
            f"<title>{escape(t.table)}</title></text>"
        )
        seconds = table_seconds(t)
        parts.append(
            _bar("bytes", x_bytes, y, t.total_bytes / max_bytes, human_bytes(t.total_bytes), t.table)
        )
        label = human_seconds(seconds) if t.estimate else "no estimate"
        parts.append(_bar("secs", x_secs, y, seconds / max_secs, label, t.table))
    bottom = height - 6
    for x in (x_bytes, x_secs):
        parts.append(f'<line class="axis" x1="{x}" y1="{_TOP}" x2="{x}" y2="{bottom}"/>')
    return "\n".join([*parts, "</svg>"])


def _bar(series: str, x: int, y: int, fraction: float, label: str, table: str) -> str:
    """One bar with its value written after it and a tooltip naming the table."""
    width = round(_PANEL * fraction, 1)
    tip = escape(f"{table}: {label}")
    return (
        f'<rect class="bar {series}" x="{x}" y="{y + 3}" width="{width}" height="{_ROW - 6}">'
        f"<title>{tip}</title></rect>"
        f'<text x="{x + width + 4}" y="{y + 13}">{escape(label)}</text>'
    )
