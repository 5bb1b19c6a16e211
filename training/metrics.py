"""Counting rules of the evaluation (issue 2), as one pure function over truth events and detections.

- A false alarm is a detection onset (the detector entering "present") with no presence event within
  `tolerance_s` of it (onset in [t0_s - tol, t1_s + tol] of some presence event of that capture).
  It is attributed to the non-presence event active at the onset (the latest-starting one if several)
  or to "empty".
- A presence event is detected when the detector is present at some frame time in [t0_s, t1_s + tol];
  latency = that first time - t0_s, for events the detector was not already reporting present at
  t0_s - tolerance_s (someone arriving while the last person is still held "present" has no latency).
- hours_without_presence = capture time not covered by any presence event; false_alarms_per_hour is
  false alarms / hours_without_presence.
- false_present_hours: time the detector reports present at frames more than `tolerance_s` away
  from every presence event (frames weighted by the frame spacing); false_present_fraction is its
  share of hours_without_presence. Onsets alone miss a detector that is stuck "present".
- false alarms by how the detector entered "present" (when the outcomes carry onset kinds, as the
  runtime.detector state machine's do): *entries* on a strict positive (major motion from an empty
  room) and *re-entries* on a lenient positive (the occupied window after presence lapsed); the
  counts and rates are None for detectors without kinds (CFAR).
- by_event_type[type]: hours (event time, clipped to the capture), count, false_alarms, detections
  (presence types: detected per the rule above; other types: present at some frame during the event).
  "empty" is the time covered by no event; its count is the number of such gaps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TOLERANCE_S = 1.0  # fixed by the evaluation contract (issue 2), not a tunable
EMPTY = "empty"


@dataclass
class CaptureOutcome:
    """What the detector did over one capture."""

    capture_id: str
    duration_s: float
    times_s: np.ndarray  # [T] frame times (s from capture start)
    present: np.ndarray  # [T] bool
    onset_times_s: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [k]
    onset_strict: np.ndarray | None = None  # [k] bool: entry on a strict positive, else a lenient re-entry


def _union_length(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, -np.inf
    for a, b in sorted(intervals):
        if b <= a:
            continue
        if a > end:
            total += b - a
            end = b
        elif b > end:
            total += b - end
            end = b
    return total


def _gaps(intervals: list[tuple[float, float]], duration: float) -> int:
    """Number of maximal sub-intervals of [0, duration] covered by none of the intervals."""
    n, cursor = 0, 0.0
    for a, b in sorted(intervals):
        if a > cursor:
            n += 1
        cursor = max(cursor, b)
    return n + (1 if cursor < duration else 0)


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def count_outcomes(
    outcomes: list[CaptureOutcome], events: list[dict], tolerance_s: float = TOLERANCE_S
) -> dict:
    """Evaluation figures for the captures in `outcomes`; events of other captures are ignored."""
    by_capture: dict[str, list[dict]] = {}
    for ev in events:
        by_capture.setdefault(str(ev["capture_id"]), []).append(ev)
    by_type: dict[str, dict] = {}

    def bucket(name: str) -> dict:
        return by_type.setdefault(name, {"hours": 0.0, "count": 0, "false_alarms": 0, "detections": 0})

    hours_total = hours_without = false_present_s = 0.0
    false_alarms, latencies = 0, []
    fa_by_kind = {"strict": 0, "lenient": 0}
    kinds_known = all(out.onset_strict is not None for out in outcomes)
    n_presence = {"major": 0, "minor": 0, "other": 0}
    n_detected = {"major": 0, "minor": 0, "other": 0}
    for out in outcomes:
        dur = float(out.duration_s)
        evs = by_capture.get(out.capture_id, [])
        presence = [e for e in evs if bool(e["is_presence"])]
        others = [e for e in evs if not bool(e["is_presence"])]
        times = np.asarray(out.times_s, dtype=np.float64)
        present_t = times[np.asarray(out.present, dtype=bool)]
        if present_t.size and times.size > 1:
            near = np.zeros(present_t.size, dtype=bool)
            for e in presence:
                near |= (present_t >= float(e["t0_s"]) - tolerance_s) & (
                    present_t <= float(e["t1_s"]) + tolerance_s
                )
            false_present_s += float((~near).sum()) * float(np.median(np.diff(times)))
        clipped = [(max(0.0, float(e["t0_s"])), min(dur, float(e["t1_s"]))) for e in evs]
        presence_len = _union_length(
            [(max(0.0, float(e["t0_s"])), min(dur, float(e["t1_s"]))) for e in presence]
        )
        hours_total += dur / 3600.0
        hours_without += (dur - presence_len) / 3600.0
        empty = bucket(EMPTY)
        empty["hours"] += (dur - _union_length(clipped)) / 3600.0
        empty["count"] += _gaps(clipped, dur)

        for i, onset in enumerate(np.asarray(out.onset_times_s, dtype=np.float64)):
            if any(
                float(e["t0_s"]) - tolerance_s <= onset <= float(e["t1_s"]) + tolerance_s for e in presence
            ):
                continue
            false_alarms += 1
            if out.onset_strict is not None:
                fa_by_kind["strict" if bool(out.onset_strict[i]) else "lenient"] += 1
            active = [e for e in others if float(e["t0_s"]) <= onset <= float(e["t1_s"])]
            name = max(active, key=lambda e: float(e["t0_s"]))["event_type"] if active else EMPTY
            bucket(str(name))["false_alarms"] += 1

        for e in evs:
            t0, t1 = float(e["t0_s"]), float(e["t1_s"])
            b = bucket(str(e["event_type"]))
            b["hours"] += max(0.0, min(dur, t1) - max(0.0, t0)) / 3600.0
            b["count"] += 1
            if bool(e["is_presence"]):
                hits = present_t[(present_t >= t0) & (present_t <= t1 + tolerance_s)]
                cls = e.get("motion_class") if e.get("motion_class") in ("major", "minor") else "other"
                n_presence[cls] += 1
                if hits.size:
                    b["detections"] += 1
                    n_detected[cls] += 1
                    before = np.flatnonzero(times <= t0 - tolerance_s)
                    if before.size == 0 or not bool(np.asarray(out.present)[before[-1]]):
                        latencies.append(float(hits[0] - t0))  # a decision made from idle
            elif ((present_t >= t0) & (present_t <= t1)).any():
                b["detections"] += 1

    n_events = sum(n_presence.values())
    return {
        "n_captures": len(outcomes),
        "hours_total": hours_total,
        "hours_without_presence": hours_without,
        "false_alarms": false_alarms,
        "false_alarms_per_hour": false_alarms / hours_without if hours_without > 0 else None,
        **{f"false_alarms_{kind}": (n if kinds_known else None) for kind, n in fa_by_kind.items()},
        **{
            f"false_alarms_per_hour_{kind}": (
                n / hours_without if kinds_known and hours_without > 0 else None
            )
            for kind, n in fa_by_kind.items()
        },
        "false_present_hours": false_present_s / 3600.0,
        "false_present_fraction": false_present_s / 3600.0 / hours_without if hours_without > 0 else None,
        "n_presence_events": n_events,
        "n_detected": sum(n_detected.values()),
        "recall": _ratio(sum(n_detected.values()), n_events),
        "recall_major": _ratio(n_detected["major"], n_presence["major"]),
        "recall_minor": _ratio(n_detected["minor"], n_presence["minor"]),
        "n_major_events": n_presence["major"],
        "n_minor_events": n_presence["minor"],
        "median_latency_s": float(np.median(latencies)) if latencies else None,
        "by_event_type": dict(sorted(by_type.items())),
    }


def onsets_from_present(times_s: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Times [k] of the frames where `present` goes from False to True (frame 0 counts if present)."""
    present = np.asarray(present, dtype=bool)
    prev = np.concatenate([[False], present[:-1]])
    return np.asarray(times_s, dtype=np.float64)[present & ~prev]
