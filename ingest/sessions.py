"""Dialogue sessions: a device's turns, routines and feedback grouped by time gap.

A session starts when a device's next turn or routine comes more than `gap_s` after the previous
one. Feedback (a thumbs down, an undo) can come minutes after what it is about, so it joins the
session of its target event; feedback whose target is not in the batch gets a session of its own.
The presence detector's routine triggers are events of their sessions like the turns, so the
self-learning in mining/ sees "lights off, then 'turn the lights back on'" as one session.

Tables: `session_events` (event_id, device_id, batch_id, ts, kind, session_id) and `sessions`
(session_id, device_id, batch_id, start, end, n_turns, n_motion_routines, n_no_motion_routines,
n_feedback).
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from ingest.dialogue import TS  # the dialogue tables' timestamp type

SESSION_EVENT_SCHEMA = {
    "event_id": pl.String,
    "device_id": pl.String,
    "batch_id": pl.String,
    "ts": TS,
    "kind": pl.String,
    "session_id": pl.String,
}
SESSION_SCHEMA = {
    "session_id": pl.String,
    "device_id": pl.String,
    "batch_id": pl.String,
    "start": TS,
    "end": TS,
    "n_turns": pl.UInt32,
    "n_motion_routines": pl.UInt32,
    "n_no_motion_routines": pl.UInt32,
    "n_feedback": pl.UInt32,
}


def _events(turns: pl.DataFrame, routines: pl.DataFrame) -> pl.DataFrame:
    cols = ["event_id", "device_id", "batch_id", "ts"]
    kind = pl.when(pl.col("trigger") == "motion").then(pl.lit("motion_routine"))
    return pl.concat(
        [
            turns.select(*cols, pl.lit("turn").alias("kind")),
            routines.select(*cols, kind.otherwise(pl.lit("no_motion_routine")).alias("kind")),
        ]
    ).sort(["device_id", "ts", "event_id"])


def session_events(
    turns: pl.DataFrame, routines: pl.DataFrame, feedback: pl.DataFrame, gap_s: float
) -> pl.DataFrame:
    """Every turn, routine and feedback event with its session_id (`<batch>:<device>:<n>`)."""
    events = _events(turns, routines)
    gap = dt.timedelta(seconds=float(gap_s))
    new = (pl.col("ts").diff().over("device_id") > gap).fill_null(True)
    events = events.with_columns(
        (
            pl.col("batch_id")
            + ":"
            + pl.col("device_id")
            + ":"
            + (new.cast(pl.UInt32).cum_sum().over("device_id")).cast(pl.String).str.zfill(5)
        ).alias("session_id")
    )
    fb = feedback.join(
        events.select(pl.col("event_id").alias("target_event_id"), "session_id"),
        on="target_event_id",
        how="left",
    ).select(
        "event_id",
        "device_id",
        "batch_id",
        "ts",
        pl.lit("feedback").alias("kind"),
        pl.col("session_id").fill_null(
            pl.col("batch_id") + ":" + pl.col("device_id") + ":fb-" + pl.col("event_id")
        ),
    )
    return pl.concat([events, fb]).cast(SESSION_EVENT_SCHEMA).sort(["device_id", "ts", "event_id"])


def sessions(events: pl.DataFrame) -> pl.DataFrame:
    """One row per session: its device, span and what it holds."""
    return (
        events.group_by("session_id")
        .agg(
            pl.col("device_id").first(),
            pl.col("batch_id").first(),
            pl.col("ts").min().alias("start"),
            pl.col("ts").max().alias("end"),
            (pl.col("kind") == "turn").sum().alias("n_turns"),
            (pl.col("kind") == "motion_routine").sum().alias("n_motion_routines"),
            (pl.col("kind") == "no_motion_routine").sum().alias("n_no_motion_routines"),
            (pl.col("kind") == "feedback").sum().alias("n_feedback"),
        )
        .cast(SESSION_SCHEMA)
        .select(list(SESSION_SCHEMA))
        .sort(["device_id", "start", "session_id"])
    )
