"""Shared by the Label Studio tests (module and CLI): tiny params, a curated batch, a completed export."""

from __future__ import annotations

import copy
from pathlib import Path

import polars as pl
from config_testkit import repo_params

from mining.config import LabelStudioConfig
from runtime.frontend import FrontendConfig

LS_PARAMS = {
    "frontend": {**repo_params()["frontend"], "n_velocity_bins": 16},
    "ingest": {"context_frames": 8, "window_stride": 4},
    "mining": {"label_studio": {"image_px": [96, 64], "dpi": 32}},
}
# export_tasks' label_studio, frontend and context arguments, built from LS_PARAMS as the CLI builds them
LS_CONFIGS = (
    LabelStudioConfig.from_params(LS_PARAMS),
    FrontendConfig.from_dict(LS_PARAMS["frontend"]),
    LS_PARAMS["ingest"]["context_frames"],
)


def curated_batch(root: Path) -> Path:
    """A synthetic curated batch: 2 captures × 24 frames × 16 bins, 8-frame windows every 4 frames."""
    from training.synthetic import make_synthetic_batch

    curated, _ = make_synthetic_batch(
        root, batch_id="ls", n_captures=2, frames_per_capture=24, context_frames=8, window_stride=4, n_bins=16
    )
    return curated


def picks_for(curated: Path, n: int) -> pl.DataFrame:
    """The last n windows of the batch, in reverse table order, each with a strategy."""
    ids = pl.read_parquet(curated / "windows.parquet")["window_id"].to_list()[::-1][:n]
    return pl.DataFrame({"window_id": ids, "strategy": [f"s{i % 2}" for i in range(n)], "p_present": 0.5})


def result(choice: str, from_name: str = "presence") -> dict:
    return {
        "id": "r1",
        "from_name": from_name,
        "to_name": "spectrogram",
        "type": "choices",
        "value": {"choices": [choice]},
    }


def annotation(choice: str | None, cancelled: bool = False, ann_id: int = 1) -> dict:
    return {
        "id": ann_id,
        "completed_by": 1,
        "was_cancelled": cancelled,
        "result": [] if choice is None else [result(choice)],
    }


def completed_export(tasks: list[dict]) -> list[dict]:
    """Label Studio's JSON export of the exported tasks, as annotators would leave it:

    task 1 major; task 2 none then corrected to minor (the latest wins); task 3 skipped (cancelled
    only); task 4 untouched; task 5 a cancelled empty annotation, then none; later tasks none.
    """
    per_task = [
        [annotation("major")],
        [annotation("none", ann_id=2), annotation("minor", ann_id=3)],
        [annotation(None, cancelled=True, ann_id=4)],
        [],
        [annotation(None, cancelled=True, ann_id=5), annotation("none", ann_id=6)],
    ]
    out = []
    for i, task in enumerate(copy.deepcopy(tasks)):
        anns = per_task[i] if i < len(per_task) else [annotation("none", ann_id=100 + i)]
        out.append({**task, "annotations": anns, "predictions": [], "project": 1})
    return out


EXPECTED_LABELS = [2, 1, None, None, 0]  # per task of completed_export; None: left out
