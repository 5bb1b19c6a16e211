"""Stage `report`: the turn's report (markdown, JSON, plots) from every stage's outputs and records."""

from __future__ import annotations

import time

from common.paths import Paths
from flows.stages.base import MODELS, StageTemplate, find_stage_records


def report(params: dict, paths: Paths) -> dict:
    from flows.report import write_turn_report

    started = time.perf_counter()
    summary = write_turn_report(params, paths, find_stage_records(paths))
    return {"stage": "report", "seconds": round(time.perf_counter() - started, 3), "summary": summary}


TEMPLATES = (
    StageTemplate(
        "report",
        report,
        lambda p: (
            [p.evaluation(m) for m in (*MODELS, "cfar")]
            + [p.deployment, p.bundle_dir, p.labels("field-picks"), p.labels("field")]
            + [p.curated("field"), p.curated("eval")]
        ),
        lambda p: [p.report_dir / "report.md", p.report_dir / "index.html", p.report_dir / "plots"],
        ("turn", "mining.budget", "report", "frontend", "ingest.context_frames"),
        metrics=lambda p: [p.report_dir / "report.json"],
    ),
)
