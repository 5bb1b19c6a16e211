"""Implicit feedback from the dialogue log, joined to windows per device by time (polars join_asof).

Weak signals (each row keeps its source and a confidence; labels are runtime.labels.CLASSES indices):
- weak:talking         a turn (someone talking to the device) within talk_window_s of the window's end:
                       a person is present. Label `minor` = "present, at least minor": speech says
                       nothing about how much they move, and minor is the class that means present
                       without claiming large motion. confidence = talk_confidence × asr_confidence.
- weak:lights_back_on  a lights-on turn within lights_back_on_s after a no_motion routine on the same
                       device: the routine missed a still person. Windows from lights_lookback_s before
                       the routine up to the turn are labelled `minor` (present, still).
- weak:false_trigger   explicit feedback (value in false_trigger_values) on a motion routine: the
                       windows from false_trigger_before_s before to false_trigger_after_s after that
                       routine were `none`.
Playback state (playback_on, playback_volume, playback_source) is set for every window: the latest
playback event of the device at or before the window, else the capture's own playback_volume.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from ingest.config import FeedbackConfig

WEAK_SCHEMA = {"window_id": pl.String, "label": pl.Int8, "source": pl.String, "confidence": pl.Float64}
WINDOW_FEEDBACK_SCHEMA = {
    "playback_volume": pl.Float64,
    "playback_source": pl.String,
    "playback_on": pl.Boolean,
    "weak_label": pl.Int8,
    "weak_source": pl.String,
    "weak_confidence": pl.Float64,
    "weak_conflict": pl.Boolean,
}
INTERVAL_SCHEMA = {
    "device_id": pl.String,
    "start": pl.Datetime("us", "UTC"),
    "end": pl.Datetime("us", "UTC"),
    "label": pl.Int8,
    "source": pl.String,
    "confidence": pl.Float64,
}


def _class_index(name: str) -> int:
    from runtime.labels import CLASSES

    return CLASSES.index(name)


def _seconds(value: float) -> dt.timedelta:
    return dt.timedelta(seconds=float(value))


def lights_on_turns(turns: pl.DataFrame, intents: tuple[str, ...] | list[str]) -> pl.DataFrame:
    """Turns asking for the lights to come (back) on: by intent, by a lights intent with action "on" in
    its slots, or by the utterance (a "lights" word and an "on" word)."""
    utterance = pl.col("utterance").str.to_lowercase()
    by_text = utterance.str.contains(r"\blights?\b") & utterance.str.contains(r"\bon\b")
    by_slots = pl.col("intent").str.to_lowercase().str.contains("light") & pl.col("slots").str.contains(
        r'"action": "on"'
    ).fill_null(False)
    by_intent = pl.col("intent").str.to_lowercase().is_in([i.lower() for i in intents])
    return turns.filter(by_intent | by_text | by_slots)


def missed_presence_intervals(
    turns: pl.DataFrame, routines: pl.DataFrame, cfg: FeedbackConfig
) -> pl.DataFrame:
    """[routine - lookback, lights-on turn] for every lights-on turn right after a no_motion routine."""
    lights = lights_on_turns(turns, cfg.lights_on_intents).select("device_id", "ts").sort("ts")
    no_motion = (
        routines.filter(pl.col("trigger") == "no_motion")
        .select("device_id", pl.col("ts").alias("routine_ts"))
        .sort("routine_ts")
    )
    if lights.is_empty() or no_motion.is_empty():
        return pl.DataFrame(schema=INTERVAL_SCHEMA)
    pairs = lights.join_asof(
        no_motion,
        left_on="ts",
        right_on="routine_ts",
        by="device_id",
        strategy="backward",
        tolerance=_seconds(cfg.lights_back_on_s),
        check_sortedness=False,
    ).drop_nulls("routine_ts")
    return pairs.select(
        "device_id",
        (pl.col("routine_ts") - _seconds(cfg.lights_lookback_s)).alias("start"),
        pl.col("ts").alias("end"),
        pl.lit(_class_index("minor"), pl.Int8).alias("label"),
        pl.lit("weak:lights_back_on").alias("source"),
        pl.lit(float(cfg.lights_confidence)).alias("confidence"),
    )


def false_trigger_intervals(
    feedback: pl.DataFrame, routines: pl.DataFrame, cfg: FeedbackConfig
) -> pl.DataFrame:
    """Windows around every motion routine the user reported as a false trigger."""
    values = [str(v).lower() for v in cfg.false_trigger_values]
    reports = feedback.filter(pl.col("value").is_in(values)).select("device_id", "target_event_id")
    motion = routines.filter(pl.col("trigger") == "motion").select("device_id", "event_id", "ts")
    hits = reports.join(motion, left_on=["device_id", "target_event_id"], right_on=["device_id", "event_id"])
    return hits.select(
        "device_id",
        (pl.col("ts") - _seconds(cfg.false_trigger_before_s)).alias("start"),
        (pl.col("ts") + _seconds(cfg.false_trigger_after_s)).alias("end"),
        pl.lit(_class_index("none"), pl.Int8).alias("label"),
        pl.lit("weak:false_trigger").alias("source"),
        pl.lit(float(cfg.false_trigger_confidence)).alias("confidence"),
    ).unique()


def _windows_in_intervals(windows: pl.DataFrame, intervals: pl.DataFrame) -> pl.DataFrame:
    """Weak rows for windows whose end lies inside an interval of the same device."""
    if intervals.is_empty() or windows.is_empty():
        return pl.DataFrame(schema=WEAK_SCHEMA)
    out = []
    # one asof join per source keeps overlapping intervals of different sources apart
    for _, group in intervals.group_by("source", maintain_order=True):
        joined = windows.select("window_id", "device_id", "t_end_utc").join_asof(
            group.sort("start"),
            left_on="t_end_utc",
            right_on="start",
            by="device_id",
            strategy="backward",
            check_sortedness=False,  # both sides are sorted by time above; polars cannot check with `by`
        )
        out.append(joined.filter(pl.col("t_end_utc") <= pl.col("end")).select(list(WEAK_SCHEMA)))
    return pl.concat(out).cast(WEAK_SCHEMA)


def talking_labels(windows: pl.DataFrame, turns: pl.DataFrame, cfg: FeedbackConfig) -> pl.DataFrame:
    if turns.is_empty() or windows.is_empty():
        return pl.DataFrame(schema=WEAK_SCHEMA)
    talk = turns.select("device_id", "ts", pl.col("asr_confidence").fill_null(1.0)).sort("ts")
    joined = (
        windows.select("window_id", "device_id", "t_end_utc")
        .join_asof(
            talk,
            left_on="t_end_utc",
            right_on="ts",
            by="device_id",
            strategy="nearest",
            tolerance=_seconds(cfg.talk_window_s),
            check_sortedness=False,
        )
        .drop_nulls("ts")
    )
    return joined.select(
        "window_id",
        pl.lit(_class_index("minor"), pl.Int8).alias("label"),
        pl.lit("weak:talking").alias("source"),
        (float(cfg.talk_confidence) * pl.col("asr_confidence")).alias("confidence"),
    ).cast(WEAK_SCHEMA)


def playback_state(windows: pl.DataFrame, playback_events: pl.DataFrame) -> pl.DataFrame:
    """Adds playback_on, playback_volume, playback_source to every window."""
    events = playback_events.select(
        "device_id", "ts", pl.col("action").alias("pb_action"), pl.col("volume").alias("pb_volume")
    )
    joined = windows.join_asof(
        events.sort("ts"),
        left_on="t_end_utc",
        right_on="ts",
        by="device_id",
        strategy="backward",
        check_sortedness=False,
    ).drop("ts")
    from_dialogue = pl.col("pb_action").is_not_null()
    volume = (
        pl.when(from_dialogue)
        .then(pl.when(pl.col("pb_action") == "start").then(pl.col("pb_volume").fill_null(0.0)).otherwise(0.0))
        .otherwise(pl.col("capture_playback_volume"))
    )
    return (
        joined.with_columns(
            volume.alias("playback_volume"),
            pl.when(from_dialogue)
            .then(pl.lit("dialogue"))
            .otherwise(pl.lit("capture"))
            .alias("playback_source"),
        )
        .with_columns((pl.col("playback_volume") > 0).alias("playback_on"))
        .drop("pb_action", "pb_volume")
    )


def join_feedback(windows: pl.DataFrame, tables, cfg: FeedbackConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(windows with playback and weak-label columns, weak_labels rows) for one or more devices."""
    windows = windows.sort("t_end_utc")
    intervals = pl.concat(
        [
            missed_presence_intervals(tables.turns, tables.routines, cfg).cast(INTERVAL_SCHEMA),
            false_trigger_intervals(tables.feedback, tables.routines, cfg).cast(INTERVAL_SCHEMA),
        ]
    )
    weak = pl.concat(
        [talking_labels(windows, tables.turns, cfg), _windows_in_intervals(windows, intervals)]
    ).sort(["window_id", "source"])
    strongest = (
        weak.sort(["confidence", "source"], descending=[True, False])
        .group_by("window_id", maintain_order=True)
        .agg(
            pl.col("label").first().alias("weak_label"),
            pl.col("source").first().alias("weak_source"),
            pl.col("confidence").first().alias("weak_confidence"),
            (pl.col("label").n_unique() > 1).alias("weak_conflict"),
        )
    )
    out = playback_state(windows, tables.playback_events).join(strongest, on="window_id", how="left")
    out = out.with_columns(pl.col("weak_conflict").fill_null(False))
    return out.sort(["capture_id", "end_frame"]), weak
