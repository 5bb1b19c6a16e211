"""Shared by the ingest tests: ingest_batch on the typed configs of a params dict, as the stage runs it."""

from __future__ import annotations

from ingest.config import IngestConfig
from ingest.pipeline import ingest_batch


def ingest(raw_dir, curated_root, params: dict) -> dict:
    """ingest_batch(raw_dir, curated_root) with params' ingest and frontend sections."""
    from runtime.frontend import FrontendConfig

    return ingest_batch(
        raw_dir, curated_root, IngestConfig.from_params(params), FrontendConfig.from_dict(params["frontend"])
    )
