"""The raw log contract (docs/DESIGN.md) as code: field types, ranges and allowed values.

Every check returns `Reject` problems instead of raising, so one bad record never stops a batch.
`reason` is a stable machine code (counted in the summary); `detail` is the human-readable sentence.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from ingest.config import IngestConfig

CAPTURE_FIELDS: dict[str, tuple[type, ...]] = {
    "capture_id": (str,),
    "device_id": (str,),
    "profile": (str,),
    "t_start": (str,),
    "duration_s": (int, float),
    "carrier_hz": (int, float),
    "fs_hz": (int, float),
    "n_mics": (int,),
    "emission_db": (int, float),
    "firmware": (str,),
    "trigger": (str,),
    "playback_volume": (int, float),
    "file": (str,),
}
TRIGGERS = ("sample", "detection", "rare_event", "collection")
LAB_TRIGGER = "collection"
DIALOGUE_FIELDS: dict[str, tuple[type, ...]] = {
    "event_id": (str,),
    "device_id": (str,),
    "ts": (str,),
    "kind": (str,),
}
DIALOGUE_KINDS = ("turn", "routine", "playback", "feedback")
# Fields each dialogue kind must carry, with their types; optional ones are type-checked when present.
DIALOGUE_KIND_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "turn": {"utterance": (str,), "intent": (str,)},
    "routine": {"routine_id": (str,), "trigger": (str,), "action": (str,)},
    "playback": {"action": (str,)},
    "feedback": {"target_event_id": (str,), "value": (str, int, float, bool)},
}
DIALOGUE_OPTIONAL_FIELDS: dict[str, tuple[type, ...]] = {
    "asr_confidence": (int, float),
    "nlu_confidence": (int, float),
    "response": (str,),
    "barge_in": (bool,),
    "slots": (dict,),
    "volume": (int, float),
}
ROUTINE_TRIGGERS = ("motion", "no_motion")
PLAYBACK_ACTIONS = ("start", "stop")


@dataclass(frozen=True)
class Reject:
    """One reason a record (or file) cannot be ingested."""

    reason: str  # stable code, e.g. "carrier_out_of_range"
    field: str | None
    detail: str  # human-readable


@dataclass(frozen=True)
class CaptureLimits:
    """The numeric side of the contract, from the ingest config."""

    known_profiles: tuple[str, ...]
    device_carrier_hz: tuple[float, float]
    lab_min_carrier_hz: float
    max_n_mics: int
    max_duration_s: float
    # lab rigs (params ingest.lab_profiles): name -> mic count (None: any), no array geometry;
    # accepted for `collection` captures only
    lab_profiles: dict[str, int | None] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_config(cls, ing: IngestConfig) -> CaptureLimits:
        lo, hi = ing.device_carrier_hz
        return cls(
            known_profiles=ing.known_profiles,
            device_carrier_hz=(lo, hi),
            lab_min_carrier_hz=ing.lab_min_carrier_hz,
            max_n_mics=ing.max_n_mics,
            max_duration_s=ing.max_duration_s,
            lab_profiles=lab_profile_mics(ing),
        )


def lab_profile_mics(ing: IngestConfig) -> dict[str, int | None]:
    """Lab profiles (ingest.lab_profiles): name -> mic count (None: any count)."""
    return {name: profile.n_mics for name, profile in ing.lab_profiles.items()}


def accepted_profiles(ing: IngestConfig) -> list[str]:
    """Every profile a capture record may name: device profiles, then lab profiles."""
    return [*ing.known_profiles, *lab_profile_mics(ing)]


def parse_utc(text: str) -> dt.datetime:
    """ISO-8601 timestamp → aware UTC datetime; naive timestamps are rejected (ValueError)."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("no time zone")
    return value.astimezone(dt.UTC)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_fields(record: Any, fields: dict[str, tuple[type, ...]]) -> list[Reject]:
    """Presence and type of every field; bools never pass as numbers."""
    if not isinstance(record, dict):
        return [Reject("not_an_object", None, f"line is JSON {type(record).__name__}, not an object")]
    problems = []
    for name, types in fields.items():
        if name not in record or record[name] is None:
            problems.append(Reject("missing_field", name, f"required field {name!r} is missing"))
            continue
        value = record[name]
        numeric = int in types or float in types
        bad_bool = isinstance(value, bool) and bool not in types
        if (
            not isinstance(value, types)
            or bad_bool
            or (numeric and isinstance(value, float) and not math.isfinite(value))
        ):
            problems.append(
                Reject(
                    "wrong_field_type",
                    name,
                    f"{name!r} is {type(value).__name__} {value!r:.40}, expected "
                    + "/".join(t.__name__ for t in types),
                )
            )
    return problems


def check_capture_record(record: Any, limits: CaptureLimits) -> list[Reject]:
    """Everything about one captures.jsonl record that can be checked without the samples."""
    problems = check_fields(record, CAPTURE_FIELDS)
    if problems:
        return problems
    try:
        parse_utc(record["t_start"])
    except ValueError:
        problems.append(
            Reject("bad_timestamp", "t_start", f"t_start {record['t_start']!r:.40} is not ISO-8601 UTC")
        )
    trigger = record["trigger"]
    profile = record["profile"]
    if profile in limits.lab_profiles:
        problems += _check_lab_profile(record, limits.lab_profiles[profile])
    elif profile not in limits.known_profiles:
        known = (*limits.known_profiles, *limits.lab_profiles)
        problems.append(
            Reject("unknown_profile", "profile", f"profile {profile!r:.40} is not one of {', '.join(known)}")
        )
    if trigger not in TRIGGERS:
        problems.append(
            Reject("bad_trigger", "trigger", f"trigger {trigger!r:.40} is not one of {', '.join(TRIGGERS)}")
        )
    carrier = float(record["carrier_hz"])
    lo, hi = limits.device_carrier_hz
    lab_ok = trigger == LAB_TRIGGER and carrier >= limits.lab_min_carrier_hz
    if not (lo <= carrier <= hi or lab_ok):
        problems.append(
            Reject(
                "carrier_out_of_range",
                "carrier_hz",
                f"carrier {carrier:g} Hz outside {lo:g}–{hi:g} Hz "
                f"(lab collection: from {limits.lab_min_carrier_hz:g} Hz)",
            )
        )
    duration = float(record["duration_s"])
    if duration <= 0:
        problems.append(Reject("nonpositive_duration", "duration_s", f"duration {duration:g} s is not > 0"))
    elif duration > limits.max_duration_s:
        problems.append(
            Reject(
                "duration_too_long", "duration_s", f"duration {duration:g} s > {limits.max_duration_s:g} s"
            )
        )
    if float(record["fs_hz"]) <= 0:
        problems.append(Reject("bad_sample_rate", "fs_hz", f"fs_hz {record['fs_hz']:g} is not > 0"))
    if not 1 <= record["n_mics"] <= limits.max_n_mics:
        problems.append(
            Reject("bad_n_mics", "n_mics", f"n_mics {record['n_mics']} outside 1–{limits.max_n_mics}")
        )
    if not 0 <= float(record["playback_volume"]) <= 10:
        problems.append(
            Reject(
                "volume_out_of_range",
                "playback_volume",
                f"playback_volume {record['playback_volume']:g} outside 0–10",
            )
        )
    return problems


def _check_lab_profile(record: dict, n_mics: int | None) -> list[Reject]:
    """A lab profile is for lab `collection` captures, with its mic count when the profile fixes one."""
    problems = []
    if record["trigger"] != LAB_TRIGGER:
        problems.append(
            Reject(
                "lab_profile_not_collection",
                "trigger",
                f"lab profile {record['profile']!r} with trigger {record['trigger']!r:.40} "
                f"(lab profiles are for {LAB_TRIGGER!r} captures)",
            )
        )
    if n_mics is not None and record["n_mics"] != n_mics:
        problems.append(
            Reject(
                "profile_n_mics_mismatch",
                "n_mics",
                f"n_mics {record['n_mics']} but lab profile {record['profile']!r} has {n_mics}",
            )
        )
    return problems


def check_dialogue_record(record: Any) -> list[Reject]:
    """Fields and allowed values of one dialogue.jsonl event (device membership is checked by the caller)."""
    problems = check_fields(record, DIALOGUE_FIELDS)
    if problems:
        return problems
    try:
        parse_utc(record["ts"])
    except ValueError:
        problems.append(Reject("bad_timestamp", "ts", f"ts {record['ts']!r:.40} is not ISO-8601 UTC"))
    kind = record["kind"]
    if kind not in DIALOGUE_KINDS:
        return [
            *problems,
            Reject(
                "bad_dialogue_kind", "kind", f"kind {kind!r:.40} is not one of {', '.join(DIALOGUE_KINDS)}"
            ),
        ]
    problems += check_fields(record, DIALOGUE_KIND_FIELDS[kind])
    optional = {k: t for k, t in DIALOGUE_OPTIONAL_FIELDS.items() if record.get(k) is not None}
    problems += check_fields(record, optional)
    if problems:
        return problems
    for name in ("asr_confidence", "nlu_confidence"):
        if name in optional and not 0 <= record[name] <= 1:
            problems.append(Reject("confidence_out_of_range", name, f"{name} {record[name]:g} outside 0–1"))
    if kind == "routine" and record["trigger"] not in ROUTINE_TRIGGERS:
        problems.append(
            Reject(
                "bad_trigger",
                "trigger",
                f"routine trigger {record['trigger']!r:.40} is not one of {', '.join(ROUTINE_TRIGGERS)}",
            )
        )
    if kind == "playback":
        if record["action"] not in PLAYBACK_ACTIONS:
            problems.append(
                Reject("bad_playback_action", "action", f"playback action {record['action']!r:.40}")
            )
        volume = record.get("volume")
        if volume is not None and not 0 <= volume <= 10:
            problems.append(
                Reject("volume_out_of_range", "volume", f"playback volume {volume:g} outside 0–10")
            )
    return problems
