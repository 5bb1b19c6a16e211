"""dialogue.jsonl → the dialogue tables: turns, routine events, playback events and intervals, feedback.

Every line is checked against the contract; bad lines and events for devices this batch does not
know go to quarantine. Timestamps become UTC datetimes; each table is sorted by device and time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ingest.contract import Reject, check_dialogue_record, parse_utc
from ingest.quarantine import QuarantineLog
from ingest.reader import iter_jsonl

TS = pl.Datetime("us", "UTC")
TURN_SCHEMA = {
    "event_id": pl.String,
    "device_id": pl.String,
    "batch_id": pl.String,
    "ts": TS,
    "utterance": pl.String,
    "asr_confidence": pl.Float64,
    "intent": pl.String,
    "nlu_confidence": pl.Float64,
    "slots": pl.String,
    "response": pl.String,
    "barge_in": pl.Boolean,
}
ROUTINE_SCHEMA = {
    "event_id": pl.String,
    "device_id": pl.String,
    "batch_id": pl.String,
    "ts": TS,
    "routine_id": pl.String,
    "trigger": pl.String,
    "action": pl.String,
}
PLAYBACK_EVENT_SCHEMA = {
    "event_id": pl.String,
    "device_id": pl.String,
    "batch_id": pl.String,
    "ts": TS,
    "action": pl.String,
    "volume": pl.Float64,
}
FEEDBACK_SCHEMA = {
    "event_id": pl.String,
    "device_id": pl.String,
    "batch_id": pl.String,
    "ts": TS,
    "target_event_id": pl.String,
    "value": pl.String,
}


@dataclass
class DialogueTables:
    turns: pl.DataFrame
    routines: pl.DataFrame
    playback_events: pl.DataFrame
    playback: pl.DataFrame  # intervals
    feedback: pl.DataFrame
    received: int
    ingested: int
    quarantined: int

    def counts(self) -> dict:
        return {
            "received": self.received,
            "ingested": self.ingested,
            "quarantined": self.quarantined,
            "turns": self.turns.height,
            "routines": self.routines.height,
            "playback_events": self.playback_events.height,
            "playback_intervals": self.playback.height,
            "feedback": self.feedback.height,
        }


def read_dialogue(
    raw_dir: Path, batch_id: str, known_devices: set[str], quarantine: QuarantineLog
) -> DialogueTables:
    """Parse and check dialogue.jsonl (absent file → empty tables)."""
    rows: dict[str, list[dict]] = {"turn": [], "routine": [], "playback": [], "feedback": []}
    seen: set[str] = set()
    received = quarantined = 0
    path = raw_dir / "dialogue.jsonl"
    for line_no, raw, record in iter_jsonl(path) if path.exists() else ():
        received += 1
        problems = [record] if isinstance(record, Reject) else check_dialogue_record(record)
        if not problems and record["device_id"] not in known_devices:
            problems = [
                Reject("unknown_device", "device_id", f"device {record['device_id']!r:.40} has no captures")
            ]
        if not problems and record["event_id"] in seen:
            problems = [
                Reject("duplicate_event_id", "event_id", f"event_id {record['event_id']!r:.40} seen before")
            ]
        if problems:
            quarantined += 1
            quarantine.add("dialogue.jsonl", line_no, problems[0], raw=raw, also=problems[1:])
            continue
        seen.add(record["event_id"])
        row = {
            "event_id": record["event_id"],
            "device_id": record["device_id"],
            "batch_id": batch_id,
            "ts": parse_utc(record["ts"]),
        }
        kind = record["kind"]
        if kind == "turn":
            slots = record.get("slots")
            row |= {
                "utterance": record["utterance"],
                "asr_confidence": _float(record.get("asr_confidence")),
                "intent": record["intent"],
                "nlu_confidence": _float(record.get("nlu_confidence")),
                "slots": None if slots is None else json.dumps(slots, sort_keys=True),
                "response": record.get("response"),
                "barge_in": record.get("barge_in"),
            }
        elif kind == "routine":
            row |= {k: record[k] for k in ("routine_id", "trigger", "action")}
        elif kind == "playback":
            row |= {"action": record["action"], "volume": _float(record.get("volume"))}
        else:
            row |= {"target_event_id": record["target_event_id"], "value": str(record["value"]).lower()}
        rows[kind].append(row)
    playback_events = _table(rows["playback"], PLAYBACK_EVENT_SCHEMA)
    return DialogueTables(
        turns=_table(rows["turn"], TURN_SCHEMA),
        routines=_table(rows["routine"], ROUTINE_SCHEMA),
        playback_events=playback_events,
        playback=playback_intervals(playback_events),
        feedback=_table(rows["feedback"], FEEDBACK_SCHEMA),
        received=received,
        ingested=received - quarantined,
        quarantined=quarantined,
    )


def _float(value) -> float | None:
    return None if value is None else float(value)


def _table(rows: list[dict], schema: dict) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema, orient="row").sort(["device_id", "ts", "event_id"])


def playback_intervals(events: pl.DataFrame) -> pl.DataFrame:
    """start/stop events → one row per playback interval (end_ts null while still playing)."""
    ordered = events.sort(["device_id", "ts", "event_id"]).with_columns(
        pl.col("ts").shift(-1).over("device_id").alias("next_ts"),
    )
    return (
        ordered.filter(pl.col("action") == "start")
        .select(
            "device_id",
            "batch_id",
            pl.col("ts").alias("start_ts"),
            pl.col("next_ts").alias("end_ts"),
            pl.col("volume").fill_null(0.0),
            pl.col("event_id").alias("start_event_id"),
        )
        .sort(["device_id", "start_ts"])
    )
