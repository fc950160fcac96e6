"""`liftshift …`: the command line (typer + rich)."""

import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from liftshift import lifecycle, transfer
from liftshift.errors import LiftshiftError, PlanError
from liftshift.ledger import Ledger
from liftshift.plan import Plan, load_plan
from liftshift.progress import transfer_bars

# Rich keeps a help text's line breaks: each paragraph is one line.
_HELP = "\n\n".join((
    "Move a PostgreSQL estate into BigQuery (or DuckDB, or PostgreSQL) and prove nothing changed.",
    "The stages run in order: assess → transfer → validate → benchmark → golive → monitor. Each takes a plan "
    "(YAML: source, target, tables; see the README), records its report in the plan's ledger and writes it "
    "to .liftshift/reports beside the plan. A rerun carries on where the last one stopped.",
    "Exit codes: 0 every gate passed; 1 a gate failed (its reasons are printed); 2 the plan, a connection or "
    "the input needs changing (one line says what).",
))
_STAGE_HELP = {
    "assess": "Inventory the source and judge each column against the target: exact, lossy or blocked. "
    "Times a sample, plans waves (parents first), writes expectation suites. Fails on a blocker or a lossy "
    "column the plan does not accept.",
    "validate": "Prove the target holds exactly the source's rows: schema, row counts, column aggregates and "
    "fingerprints per key range, then the expectation suites. Fails on any difference and names the rows.",
    "benchmark": "Replay the plan's workload (.sql files) on source and target: the results must agree; "
    "reports both latencies (gates.max_latency_ratio can fail it).",
    "golive": "Record the target as the serving side, once assess, transfer, validate and benchmark "
    "passed and no transfer or delta ran after the validation.",
    "monitor": "Compare the target's row counts and fingerprints with the last validation: fails on drift.",
}
app = typer.Typer(add_completion=False, no_args_is_help=True, help=_HELP)
console = Console()
PlanArg = Annotated[Path, typer.Argument(help="the plan file (YAML)")]


@contextmanager
def _user_errors() -> Iterator[None]:
    """Print liftshift's own errors as one line and exit 2, with no traceback."""
    try:
        yield
    except LiftshiftError as exc:
        # soft_wrap: the message stays one line in a log or CI, however narrow the console.
        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        console.print("[yellow]interrupted:[/] the ledger keeps what was done (a transfer's chunks); run the "
                      "same command again to carry on", soft_wrap=True)  # fmt: skip
        raise typer.Exit(130) from None


def _summary(outcomes: list[lifecycle.StageOutcome]) -> None:
    table = RichTable(title="liftshift")
    for column in ("stage", "gate", "rows", "seconds", "report"):
        table.add_column(column)
    for o in outcomes:
        gate = "[green]passed[/]" if o.report.gate.passed else "[red]FAILED[/]"
        page = o.path.with_suffix(".html")
        files = o.path.name + (f", {page.name}" if page.is_file() else "")
        table.add_row(o.report.stage, gate, f"{o.report.rows:,}", f"{o.report.seconds:.1f}", files)
    console.print(table)
    if outcomes:
        console.print(f"reports: {outcomes[0].path.parent}")
    for o in outcomes:
        for reason in o.report.gate.reasons:
            console.print(f"[red]{o.report.stage}:[/] {reason}")


def _finish(outcomes: list[lifecycle.StageOutcome]) -> None:
    _summary(outcomes)
    if not all(o.report.gate.passed for o in outcomes):
        raise typer.Exit(1)


def _stage_command(name: str) -> Callable[[Path], None]:
    def command(plan: PlanArg) -> None:
        with _user_errors():
            loaded = load_plan(plan)
            _finish([lifecycle.run_stage(name, loaded)])

    command.__doc__ = _STAGE_HELP[name]
    return command


for _name in ("assess", "validate", "benchmark", "golive", "monitor"):
    app.command(name=_name)(_stage_command(_name))


def _progress() -> AbstractContextManager[transfer.Progress]:
    """A rich progress bar per table and overall: rows, MB/s, ETA."""
    return transfer_bars(console)


@app.command("transfer")
def transfer_command(
    plan: PlanArg,
    wave: Annotated[
        int | None, typer.Option(help="move only this wave of the latest assessment", min=1)
    ] = None,
    delta: Annotated[
        bool, typer.Option("--delta", help="move only rows changed since the last sync (transfer.watermarks)")
    ] = False,
) -> None:
    """Copy the plan's tables into the target in chunks, each checked after it lands; a rerun finishes
    a killed one. --wave N moves one wave of the latest assessment; --delta only what changed."""
    with _user_errors(), _progress() as progress:
        outcome = lifecycle.run_stage("transfer", load_plan(plan), progress=progress, wave=wave, delta=delta)
    _finish([outcome])


def _run_lifecycle(plan: Plan) -> list[lifecycle.StageOutcome]:
    with _progress() as progress:
        return lifecycle.run_all(plan, progress=progress, announce=lambda s: console.print(f"[bold]{s}[/] …"))


@app.command("run")
def run_command(plan: PlanArg) -> None:
    """Run every stage of PLAN in order, stopping at the first failed gate."""
    with _user_errors():
        _finish(_run_lifecycle(load_plan(plan)))


@app.command("status")
def status_command(
    plan: PlanArg, as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False
) -> None:
    """Show each stage's latest report from the plan's ledger: gate, when, rows."""
    with _user_errors():
        loaded = load_plan(plan, ledger_only=True)
        ledger = Ledger(loaded.ledger_url())
        latest = {s: ledger.latest_report(loaded.name, s) for s in [*lifecycle.STAGES, "delta"]}
        if as_json:
            print(json.dumps({s: r.body if r else None for s, r in latest.items()}, indent=2))
            return
        table = RichTable(title=f"{loaded.name} — ledger {ledger.location()}")
        for column in ("stage", "gate", "when", "rows"):
            table.add_column(column)
        for stage, r in latest.items():
            if r is None:
                table.add_row(stage, "-", "never", "-")
            else:
                gate = "[green]passed[/]" if r.passed else "[red]FAILED[/]"
                when = f"{r.created_at:%Y-%m-%d %H:%M:%S %Z}"
                table.add_row(stage, gate, when, f"{r.body.get('rows', 0):,}")
        console.print(table)


@app.command("demo")
def demo_command(
    rows: Annotated[int, typer.Option(help="rows in the fact table")] = 1_000_000,
    plan: Annotated[Path, typer.Option(help="the demo plan")] = Path("migration.yaml"),
) -> None:
    """Start an embedded PostgreSQL, seed a legacy shop, and run every stage into local BigQuery."""
    from liftshift import demo

    with _user_errors():
        if not plan.is_file():  # before a server starts and a database is seeded for nothing
            raise PlanError(
                f"no demo plan at {plan.resolve()}: run the demo in a clone of liftshift (its "
                "migration.yaml), or pass --plan PATH"
            )
        state = plan.resolve().parent / ".liftshift"
        console.print("[bold]starting[/] embedded PostgreSQL …")
        url = demo.start_postgres(state / "demo-postgres")
        console.print(f"[bold]seeding[/] {rows:,} order items …")
        demo.seed(url, rows)
        os.environ["LIFTSHIFT_DEMO_SOURCE_URL"] = url
        loaded = load_plan(plan)
        _forget_state(loaded)
        _finish(_run_lifecycle(loaded))


def _forget_state(plan: Plan) -> None:
    """Start the demo afresh: its ledger, its local warehouse and the suites assess wrote go."""
    ledger_file = plan.state_dir() / f"{plan.name}.db"
    ledger_file.unlink(missing_ok=True)
    shutil.rmtree(plan.state_dir() / "bigquery", ignore_errors=True)
    for suite in plan.expectations_dir().glob("*.json"):
        if '"written_by": "liftshift assess"' in suite.read_text(errors="replace"):
            suite.unlink()


def main() -> None:
    """Entry point."""
    app()


if __name__ == "__main__":
    main()
