"""A raw batch's dialogue logs → sessions, failure points, rewrites' request paths and field counts.

The truth-free side of the self-learning: everything here reads only what devices upload
(captures.jsonl for each device's observed period, dialogue.jsonl for turns, routines and
feedback), through ingest/ (tables, sessions) and mining/ (isolation, field metrics). The canary
gate of a rollout (flows.simulated_fleet) and the self-learning report (flows.self_learning) use it.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from mining.config import SelfLearningConfig
from mining.failure_points import learning_params

__all__ = ["FieldLogs", "field_counts", "learning_params", "read_field_logs"]


@dataclass
class FieldLogs:
    turns: pl.DataFrame
    routines: pl.DataFrame
    feedback: pl.DataFrame
    events: pl.DataFrame  # ingest.sessions.session_events
    periods: pl.DataFrame  # device_id, start, end
    isolation: pl.DataFrame  # mining.failure_points.isolate
    quarantined: int  # dialogue and capture lines the contract refused (not counted)


def device_periods(raw_dir: Path) -> tuple[pl.DataFrame, int]:
    """Each device's observed period from its captures: first start to last end; and refused lines."""
    from ingest.contract import Reject, parse_utc
    from ingest.reader import iter_jsonl

    spans: dict[str, list[dt.datetime]] = {}
    refused = 0
    for _, _, record in iter_jsonl(raw_dir / "captures.jsonl"):
        try:
            if isinstance(record, Reject):
                raise ValueError(record.detail)
            start = parse_utc(record["t_start"])
            end = start + dt.timedelta(seconds=float(record["duration_s"]))
            device = str(record["device_id"])
        except (KeyError, TypeError, ValueError):
            refused += 1
            continue
        span = spans.setdefault(device, [start, end])
        span[0], span[1] = min(span[0], start), max(span[1], end)
    rows = [(d, a, b) for d, (a, b) in sorted(spans.items())]
    return pl.DataFrame(rows, schema=PERIOD_SCHEMA, orient="row"), refused


PERIOD_SCHEMA = {"device_id": pl.String, "start": pl.Datetime("us", "UTC"), "end": pl.Datetime("us", "UTC")}


def device_periods_empty() -> pl.DataFrame:
    return pl.DataFrame(schema=PERIOD_SCHEMA)


def dialogue_devices(path: Path) -> set[str]:
    from ingest.reader import iter_jsonl

    return {str(r["device_id"]) for _, _, r in iter_jsonl(path) if isinstance(r, dict) and "device_id" in r}


def read_field_logs(
    raw_dir: str | os.PathLike, learning: SelfLearningConfig, batch_id: str | None = None
) -> FieldLogs:
    """Tables, sessions and failure points of one raw batch (bad dialogue lines are counted, not used)."""
    from ingest.dialogue import read_dialogue
    from ingest.quarantine import QuarantineLog
    from ingest.sessions import session_events
    from mining.failure_points import isolate

    raw_dir = Path(raw_dir)
    batch_id = batch_id or raw_dir.name
    if (raw_dir / "captures.jsonl").exists():
        periods, refused = device_periods(raw_dir)
        devices = set(periods["device_id"].to_list())
    else:  # a dialogue-only batch (fleet.dialogue_fleet): every device of the log, no periods
        periods, refused = device_periods_empty(), 0
        devices = dialogue_devices(raw_dir / "dialogue.jsonl")
    quarantine = QuarantineLog(batch_id, raw_dir, 0)
    tables = read_dialogue(raw_dir, batch_id, devices, quarantine)
    events = session_events(tables.turns, tables.routines, tables.feedback, learning.session_gap_s)
    isolation = isolate(events, tables.turns, tables.routines, tables.feedback, learning)
    return FieldLogs(
        tables.turns,
        tables.routines,
        tables.feedback,
        events,
        periods,
        isolation,
        refused + tables.quarantined,
    )


def field_counts(raw_dir: str | os.PathLike, learning: SelfLearningConfig) -> dict:
    """Cohort totals of mining.field_metrics over a batch's devices, with the per-device rows."""
    from mining.field_metrics import cohort_totals, device_field_metrics

    logs = read_field_logs(raw_dir, learning)
    devices = device_field_metrics(
        logs.turns, logs.routines, logs.feedback, logs.isolation, logs.periods, learning
    )
    return {**cohort_totals(devices), "quarantined_lines": logs.quarantined, "per_device": devices}
