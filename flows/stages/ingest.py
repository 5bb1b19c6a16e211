"""Stage family `ingest@<batch>`: raw logs validated, featurised and windowed into a curated batch."""

from __future__ import annotations

import time

from common.paths import Paths
from flows.stages.base import BATCHES, StageTemplate, record


def ingest(params: dict, paths: Paths, batch: str) -> dict:
    from ingest.config import IngestConfig
    from ingest.pipeline import ingest_batch
    from runtime.frontend import FrontendConfig

    started = time.perf_counter()
    ing, frontend = IngestConfig.from_params(params), FrontendConfig.from_dict(params["frontend"])
    summary = ingest_batch(paths.raw(batch), paths.curated_root, ing, frontend)
    return record(paths.curated(batch), f"ingest@{batch}", started, summary)


TEMPLATES = (
    StageTemplate(
        "ingest",
        ingest,
        lambda p, b: [p.raw(b)],
        lambda p, b: [p.curated(b), p.quarantine(b)],
        ("frontend", "ingest"),
        items=BATCHES,
    ),
)
