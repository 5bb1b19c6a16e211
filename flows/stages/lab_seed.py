"""Stage `lab_seed`: an imported lab batch as the seed set (issue 18).

params `turn.seed_data` says what the seed model learns from: `simulated` (the simulated lab batch
`seed`, labelled by label_seed), `lab` (an imported lab batch: `flywheel lab import DIR --out
data/raw/lab --truth-out data/truth/lab`) or `both`. The retrained model learns from the seed
model's data plus the field batch. `flywheel turn --seed-data lab` sets it for one turn.

The lab_seed stage ingests data/raw/lab (ingest.pipeline, the same checks and front-end as every
batch) and labels every window from the recordings' own labels (data/truth/lab: the lab protocol,
source "lab", no labelling error), like label_seed does for the simulated batch. With seed_data
`simulated` it only records that it is off (its outputs are then empty folders).
"""

from __future__ import annotations

import time
from pathlib import Path

from common.io import atomic_write_json
from common.paths import Paths
from flows.stages.base import LAB_BATCH, SEED_DATA, STAGE_RECORD, StageTemplate, lab_seed_outputs, seed_data


def windows_to_label(curated_dir: Path, params: dict):
    """The windows a label stage labels: windows.parquet, plus the stream-start windows of clips that
    are streams of their own when detector.stream_start decides there (training.datamodule pads them)."""
    import polars as pl

    from runtime.windows import decides_from_stream_start

    windows = pl.read_parquet(curated_dir / "windows.parquet")
    if not decides_from_stream_start(params["detector"]["stream_start"]):
        return windows
    from runtime.frontend import FrontendConfig
    from training.datamodule import stream_start_rows

    ing = params["ingest"]
    starts = stream_start_rows(
        curated_dir,
        int(ing["context_frames"]),
        int(ing["window_stride"]),
        FrontendConfig.from_dict(params["frontend"]),
    )
    return pl.concat([windows.select(starts.columns), starts.cast(windows.select(starts.columns).schema)])


def lab_seed(params: dict, paths: Paths) -> dict:
    """Ingest and label the imported lab batch when the seed model learns from it."""
    started = time.perf_counter()
    mode = seed_data(params)
    if LAB_BATCH not in SEED_DATA[mode]:
        for out in [*lab_seed_outputs(paths), paths.quarantine(LAB_BATCH)]:
            out.mkdir(parents=True, exist_ok=True)
        return _record(paths, started, {"seed_data": mode, "lab_batch": "off"})
    from common.io import atomic_write_parquet
    from ingest.config import IngestConfig
    from ingest.pipeline import ingest_batch
    from mining.labels import label_windows
    from runtime.frontend import FrontendConfig

    raw, truth = paths.raw(LAB_BATCH), paths.truth(LAB_BATCH)
    for need in (raw / "captures.jsonl", truth / "events.jsonl"):
        if not need.exists():
            raise FileNotFoundError(
                f"{need}: missing; turn.seed_data {mode!r} needs an imported lab batch "
                f"(flywheel lab import DIR --out {raw} --truth-out {truth} --labels LABELS.csv)"
            )
    ing, frontend = IngestConfig.from_params(params), FrontendConfig.from_dict(params["frontend"])
    summary = ingest_batch(raw, paths.curated_root, ing, frontend)
    windows = windows_to_label(paths.curated(LAB_BATCH), params)
    table = label_windows(
        windows, truth, source="lab", error_rate=0.0, seed=params["labeling"]["seed"], batch_id=LAB_BATCH
    )
    atomic_write_parquet(paths.labels(LAB_BATCH) / "labels.parquet", table)
    counts = dict(table.group_by("label").len().sort("label").iter_rows())
    return _record(
        paths,
        started,
        {"seed_data": mode, "ingested": summary["ingested"], "quarantined": summary["quarantined"],
         "labels": table.height, "by_class": counts},
    )  # fmt: skip


def _record(paths: Paths, started: float, summary: dict) -> dict:
    # microseconds: when off the stage takes well under a millisecond, and a turn shows every stage ran
    record = {"stage": "lab_seed", "seconds": round(time.perf_counter() - started, 6), "summary": summary}
    atomic_write_json(paths.labels(LAB_BATCH) / STAGE_RECORD, record)
    return record


TEMPLATES = (
    StageTemplate(
        "lab_seed",
        lab_seed,
        lambda p: [],
        lambda p: [*lab_seed_outputs(p), p.quarantine(LAB_BATCH)],
        ("turn.seed_data", "frontend", "ingest", "labeling", "detector.stream_start"),
    ),
)
