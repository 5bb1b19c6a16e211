"""`flywheel self-learning`: failure points and rewrites from dialogue logs, scored against the truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def self_learning(
    out: Annotated[Path, typer.Option("--out", help="folder for the report (and the simulated logs)")],
    raw: Annotated[Path | None, typer.Option(help="raw batch to learn from (default: simulate one)")] = None,
    truth: Annotated[Path | None, typer.Option(help="its truth folder (with dialogue_truth.jsonl)")] = None,
    devices: Annotated[int | None, typer.Option(help="dialogue-only fleet: units")] = None,
    hours: Annotated[float | None, typer.Option(help="dialogue-only fleet: hours per unit")] = None,
    seed: Annotated[int | None, typer.Option(help="dialogue-only fleet: seed")] = None,
    params: Annotated[Path, typer.Option("--params", help="params.yaml to read")] = Path("params.yaml"),
) -> None:
    """Isolate failure points and mine rewrites from a batch's dialogue logs, then score both against
    the simulator's truth (without --raw: a dialogue-only fleet, simulate.dialogue_fleet in params)."""
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from common.io import atomic_write_json, atomic_write_text
    from common.params import load_params
    from flows.field_logs import learning_params
    from flows.self_learning import plot_confusion, report_markdown, self_learning_report

    p = load_params(params)
    if (raw is None) != (truth is None):
        typer.secho("error: give both --raw and --truth, or neither", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    if raw is None:
        from fleet.dialogue_fleet import simulate_dialogue_fleet

        cfg = p["simulate"]["dialogue_fleet"]
        n, h, s = devices or int(cfg["devices"]), hours or float(cfg["hours"]), seed
        s = int(cfg["seed"]) if s is None else s
        raw, truth = out / "raw" / "dialogue", out / "truth" / "dialogue"
        with Progress() as bar:
            task = bar.add_task(f"dialogue-only fleet: {n} units x {h:g} h", total=n)
            simulate_dialogue_fleet(
                n, h, s, raw, truth, p["simulate"], progress=lambda k: bar.update(task, completed=k)
            )
    report = self_learning_report(raw, truth, learning_params(p))
    atomic_write_json(out / "self_learning.json", report)
    atomic_write_text(out / "self_learning.md", report_markdown(report))
    plot_confusion(report["isolation"], out / "isolation_confusion.png")
    table = Table(title=f"Failure-point isolation ({report['isolation']['sessions']} friction sessions)")
    for col in ("failure point", "support", "accuracy", "precision"):
        table.add_column(col)
    for c, sc in report["isolation"]["per_class"].items():
        fmt = ["-" if v is None else f"{v:.3f}" for v in (sc["accuracy"], sc["precision"])]
        table.add_row(c, str(sc["support"]), *fmt)
    console = Console()
    console.print(table)
    rw = report["rewrites"]
    console.print(f"overall accuracy {report['isolation']['accuracy']:.3f}")
    console.print(f"rewrites: {rw['wins']} correct, {rw['losses']} incorrect; report in {out}")
