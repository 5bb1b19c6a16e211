"""The table a person reads at the end of a turn: stage timings, labels, seed vs retrained detectors."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from common.io import read_json
from common.params import load_params
from common.paths import Paths


def print_turn_summary(records: dict, params_file: Path, preset: str | None, data_dir: Path) -> None:
    params = load_params(params_file, preset)
    paths = Paths.for_params(params, data_dir)
    console = Console()
    stages = Table(title=f"Turn {paths.turn}: stages")
    stages.add_column("stage")
    stages.add_column("seconds", justify="right")
    for name, record in records.items():
        stages.add_row(name, "skipped (up to date)" if record.get("skipped") else f"{record['seconds']:.1f}")
    console.print(stages)
    report_path = paths.report_dir / "report.json"
    if not report_path.exists():
        return
    report = read_json(report_path)
    labels = report["labels"]
    console.print(
        f"labels: seed (lab) {labels['seed_lab']}, field paid {labels['field_paid']} of budget "
        f"{labels['budget']}, field weak {labels['field_weak']}"
    )
    det = Table(title="Detectors on the held-out eval batch")
    columns = {
        "false triggers / empty h": "false_triggers_per_empty_hour",
        "entry recall": "entry_recall",
        "entry latency median s": "entry_latency_median_s",
        "p95 s": "entry_latency_p95_s",
        "false absences / occupied h": "false_absences_per_occupied_hour",
    }
    for col in ("detector", *columns):
        det.add_column(col, justify="right" if col != "detector" else "left")
    for name, row in report["evaluation"].items():
        det.add_row(name, *(_fmt(row.get(k)) for k in columns.values()))
    console.print(det)
    release = report.get("release")
    if release:
        console.print(f"bundle ships [bold]{release['shipped']}[/bold]: {release['reason']}")
    console.print(f"report: {paths.report_dir / 'report.md'}")


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.3f}"
