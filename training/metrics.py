"""The occupancy-sensor figures of a detector: one pure function per figure family, over streams.

A *stream* is what a device ran continuously: its back-to-back captures stitched together
(training.evaluate builds them). Truth arrives as *episodes* (one event from its start to its end,
rebuilt across captures from its episode id) in stream seconds. Definitions (docs/evaluation.md):

- occupied time: the union of presence episodes (merged across gaps up to MERGE_GAP_S); every
  occupancy interval that starts inside the stream is an *arrival* into an empty room; empty time is
  the stream's coverage outside occupancy (TOLERANCE_S kept clear of every occupancy edge).
- false trigger: a detector onset (absent -> present) with nobody in the room, i.e. not within
  TOLERANCE_S of an occupancy interval; attributed to the nuisance active then (the latest-starting
  one) or to "empty". Rates per empty hour, per nuisance-hour of each type (the type's time in empty
  rooms), per device-day (24 h of stream).
- entries: an arrival is detected when the detector is present at a frame of its arrival episode
  (the first presence episode of the interval, TOLERANCE_S of slack at its end); entry latency is
  measured from the arrival's physical onset (the episode's start: the person's motion is in the
  signal from then on) to the first present frame, for arrivals the detector met idle (not already
  present). A stream that starts with someone present has no arrival there: a continuation is not
  an entry.
- continued presence: a false absence is a present -> absent step while someone is in the room
  (inside an occupancy interval, more than TOLERANCE_S before its end); per occupied hour; the share
  of occupied frames reported absent; the share of empty frames reported present.
- the detection-error trade-off (det_curve): false triggers per empty hour against the missed-entry
  rate, one point per strict threshold (training.evaluate re-runs only the state machine).

Every figure that any report, gate, benchmark or experiment shows comes from `occupancy_metrics`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TOLERANCE_S = 1.0  # fixed by the evaluation contract, not a tunable
MERGE_GAP_S = 1.0  # presence episodes this close together are one occupancy (back-to-back activities)
EMPTY = "empty"
HOURS_PER_DAY = 24.0


@dataclass(frozen=True)
class Episode:
    """One truth event in stream seconds (t0 < 0 or t1 > duration: it runs over the stream's edges)."""

    episode_id: str
    event_type: str
    is_presence: bool
    t0: float
    t1: float
    motion_class: str = "none"


@dataclass
class StreamOutcome:
    """What the detector did over one stream, and where its captures sit in it."""

    stream_id: str
    device_id: str
    duration_s: float
    times_s: np.ndarray  # [T] frame end times, seconds from the stream's start
    present: np.ndarray  # [T] bool
    onset_times_s: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [k]
    onset_strict: np.ndarray | None = None  # [k] bool: entry on a strict positive, else a lenient re-entry
    captures: list[tuple[str, float]] = field(default_factory=list)  # (capture_id, start s in the stream)


def occupancy_intervals(
    episodes: list[Episode], gap_s: float = MERGE_GAP_S
) -> list[tuple[float, float, int]]:
    """Merged presence intervals [(start, end, index of the arrival episode in `episodes`)], sorted."""
    spans = sorted((e.t0, e.t1, i) for i, e in enumerate(episodes) if e.is_presence)
    merged: list[list] = []
    for a, b, i in spans:
        if merged and a <= merged[-1][1] + gap_s:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b, i])
    return [(float(a), float(b), int(i)) for a, b, i in merged]


def _union(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for a, b in sorted(intervals):
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def _length(intervals: list[tuple[float, float]]) -> float:
    return float(sum(b - a for a, b in _union(intervals)))


def _intersect(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out = []
    for a0, a1 in _union(a):
        for b0, b1 in _union(b):
            lo, hi = max(a0, b0), min(a1, b1)
            if hi > lo:
                out.append((lo, hi))
    return out


def _complement(intervals: list[tuple[float, float]], lo: float, hi: float) -> list[tuple[float, float]]:
    out, cursor = [], lo
    for a, b in _union(intervals):
        if a > cursor:
            out.append((cursor, min(a, hi)))
        cursor = max(cursor, b)
    if cursor < hi:
        out.append((cursor, hi))
    return [(a, b) for a, b in out if b > a]


def _inside(t: np.ndarray, intervals: list[tuple[float, float]]) -> np.ndarray:
    """Mask [n] of the times t [n] inside any of the closed intervals (O(n log k))."""
    spans = _union(intervals)
    if not spans:
        return np.zeros(np.shape(t), dtype=bool)
    starts = np.array([a for a, _ in spans])
    ends = np.array([b for _, b in spans])
    idx = np.searchsorted(starts, t, side="right") - 1
    return (idx >= 0) & (np.asarray(t) <= ends[np.maximum(idx, 0)])


class _Frames:
    """Frame times [T] (sorted) with running counts of present frames, for counts over intervals."""

    def __init__(self, times: np.ndarray, present: np.ndarray):
        self.times, self.present = times, present
        self.cum = np.concatenate([[0], np.cumsum(present, dtype=np.int64)])  # [T + 1]

    def span(self, a: float, b: float) -> tuple[int, int]:
        """Frame index range [lo, hi) of the frames with a <= time <= b."""
        return int(np.searchsorted(self.times, a, "left")), int(np.searchsorted(self.times, b, "right"))

    def counts(self, intervals: list[tuple[float, float]]) -> tuple[int, int]:
        """(frames, present frames) inside the union of intervals."""
        frames = present = 0
        for a, b in _union(intervals):
            lo, hi = self.span(a, b)
            frames += hi - lo
            present += int(self.cum[hi] - self.cum[lo])
        return frames, present


def _locate(outcome: StreamOutcome, t: float) -> tuple[str | None, float]:
    """(capture id, seconds from that capture's start) of stream time t."""
    best: tuple[str | None, float] = (None, t)
    for capture_id, start in outcome.captures:
        if start <= t or best[0] is None:
            best = (capture_id, t - start)
    return best[0], round(float(best[1]), 3)


@dataclass
class StreamCounts:
    """Per-stream tallies that occupancy_metrics adds up (kept apart so streams can be merged)."""

    stream_hours: float = 0.0
    empty_hours: float = 0.0
    occupied_hours: float = 0.0
    false_triggers: int = 0
    false_triggers_by_kind: dict = field(default_factory=lambda: {"strict": 0, "lenient": 0})
    kinds_known: bool = True
    by_type: dict = field(default_factory=dict)  # type -> {hours, count, false_triggers, present_s}
    presence_types: set = field(default_factory=set)
    entries: int = 0
    entries_detected: int = 0
    entries_already_present: int = 0
    latencies: list = field(default_factory=list)
    false_absences: int = 0
    occupied_frames: int = 0
    occupied_absent_frames: int = 0
    empty_frames: int = 0
    empty_present_frames: int = 0
    rows: list = field(default_factory=list)


def _bucket(counts: StreamCounts, name: str) -> dict:
    return counts.by_type.setdefault(name, {"hours": 0.0, "count": 0, "false_triggers": 0, "present_s": 0.0})


def count_stream(
    outcome: StreamOutcome, episodes: list[Episode], tolerance_s: float = TOLERANCE_S
) -> StreamCounts:
    """Tallies of one stream by the rules in the module docstring (pure)."""
    counts = StreamCounts()
    times = np.asarray(outcome.times_s, dtype=np.float64)
    present = np.asarray(outcome.present, dtype=bool)
    onsets = np.asarray(outcome.onset_times_s, dtype=np.float64)
    frames = _Frames(times, present)
    duration = float(outcome.duration_s)
    frame_s = float(np.median(np.diff(times))) if times.size > 1 else 0.0
    occupancy = occupancy_intervals(episodes)
    occupied = [(max(a, 0.0), min(b, duration)) for a, b, _ in occupancy if b > 0 and a < duration]
    guarded = [(a - tolerance_s, b + tolerance_s) for a, b, _ in occupancy]
    empty = _complement(guarded, 0.0, duration)
    counts.stream_hours = duration / 3600.0
    counts.empty_hours = _length(empty) / 3600.0
    counts.occupied_hours = _length(occupied) / 3600.0
    nuisances = [e for e in episodes if not e.is_presence]

    # false triggers: onsets with nobody in the room
    counts.kinds_known = outcome.onset_strict is not None
    with_someone = _inside(onsets, guarded)
    for i, t in enumerate(onsets):
        if with_someone[i]:
            continue
        counts.false_triggers += 1
        strict = None if outcome.onset_strict is None else bool(outcome.onset_strict[i])
        if strict is not None:
            counts.false_triggers_by_kind["strict" if strict else "lenient"] += 1
        active = [e for e in nuisances if e.t0 <= t <= e.t1]
        cause = max(active, key=lambda e: e.t0).event_type if active else EMPTY
        _bucket(counts, cause)["false_triggers"] += 1
        capture_id, t_s = _locate(outcome, float(t))
        counts.rows.append(
            {
                "kind": "false_trigger",
                "device_id": outcome.device_id,
                "capture_id": capture_id,
                "t_s": t_s,
                "stream_t_s": round(float(t), 3),
                "event_type": cause,
                "strict": strict,
            }
        )

    # exposure per nuisance type (its time in empty rooms) and the no-nuisance remainder ("empty")
    covered: list[tuple[float, float]] = []
    for etype in sorted({e.event_type for e in nuisances}):
        spans = _intersect([(e.t0, e.t1) for e in nuisances if e.event_type == etype], empty)
        covered += spans
        b = _bucket(counts, etype)
        b["hours"] += _length(spans) / 3600.0
        b["count"] += sum(1 for e in nuisances if e.event_type == etype and e.t1 > 0 and e.t0 < duration)
        b["present_s"] += frames.counts(spans)[1] * frame_s
    quiet = _intersect(_complement(covered, 0.0, duration), empty)
    b = _bucket(counts, EMPTY)
    b["hours"] += _length(quiet) / 3600.0
    b["count"] += len(quiet)
    b["present_s"] += frames.counts(quiet)[1] * frame_s

    counts.empty_frames, counts.empty_present_frames = frames.counts(empty)
    counts.occupied_frames, occupied_present = frames.counts(occupied)
    counts.occupied_absent_frames = counts.occupied_frames - occupied_present

    # entries: arrivals into an empty room
    for o0, o1, arrival_index in occupancy:
        arrival = episodes[arrival_index]
        if o0 < 0 or o0 >= duration:
            continue  # the stream began with someone there: a continuation, not an arrival
        counts.entries += 1
        lo, hi = frames.span(o0, min(arrival.t1, o1) + tolerance_s)
        hit = np.flatnonzero(present[lo:hi])
        idle = lo == 0 or not present[lo - 1]
        latency = float(times[lo + hit[0]] - o0) if hit.size and idle else None
        if hit.size:
            counts.entries_detected += 1
            if idle:
                counts.latencies.append(latency)
            else:
                counts.entries_already_present += 1
        capture_id, t_s = _locate(outcome, o0)
        counts.rows.append(
            {
                "kind": "entry",
                "device_id": outcome.device_id,
                "capture_id": capture_id,
                "t_s": t_s,
                "stream_t_s": round(o0, 3),
                "episode_id": arrival.episode_id,
                "event_type": arrival.event_type,
                "detected": bool(hit.size),
                "latency_s": None if latency is None else round(latency, 4),
                "already_present": bool(hit.size) and not idle,
            }
        )

    # false absences: presence lapsing while someone is in the room
    if present.size > 1:
        offsets = times[1:][present[:-1] & ~present[1:]]
        lapses = offsets[_inside(offsets, [(a, b - tolerance_s) for a, b, _ in occupancy])]
        for t in lapses:
            counts.false_absences += 1
            active = [e for e in episodes if e.is_presence and e.t0 <= t <= e.t1]
            capture_id, t_s = _locate(outcome, float(t))
            counts.rows.append(
                {
                    "kind": "false_absence",
                    "device_id": outcome.device_id,
                    "capture_id": capture_id,
                    "t_s": t_s,
                    "stream_t_s": round(float(t), 3),
                    "event_type": max(active, key=lambda e: e.t0).event_type if active else None,
                }
            )

    # presence episodes by type: how much of each the detector reported present
    for e in episodes:
        if not e.is_presence or e.t1 <= 0 or e.t0 >= duration:
            continue
        counts.presence_types.add(e.event_type)
        b = _bucket(counts, e.event_type)
        span = [(max(e.t0, 0.0), min(e.t1, duration))]
        b["hours"] += _length(span) / 3600.0
        b["count"] += 1
        b["present_s"] += frames.counts(span)[1] * frame_s
    return counts


def _rate(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def summarise_counts(parts: list[StreamCounts]) -> dict:
    """The evaluation's figures from per-stream tallies (the keys every report reads)."""
    total = StreamCounts()
    total.kinds_known = all(p.kinds_known for p in parts)
    for p in parts:
        for name in (
            "stream_hours", "empty_hours", "occupied_hours", "false_triggers", "entries", "entries_detected",
            "entries_already_present", "false_absences", "occupied_frames", "occupied_absent_frames",
            "empty_frames", "empty_present_frames",
        ):  # fmt: skip
            setattr(total, name, getattr(total, name) + getattr(p, name))
        for kind, n in p.false_triggers_by_kind.items():
            total.false_triggers_by_kind[kind] += n
        total.latencies += p.latencies
        total.presence_types |= p.presence_types
        for name, b in p.by_type.items():
            t = _bucket(total, name)
            for k, v in b.items():
                t[k] += v
    lat = np.asarray(total.latencies, dtype=np.float64)
    device_days = total.stream_hours / HOURS_PER_DAY
    by_type = {
        name: {
            "hours": b["hours"],
            "count": b["count"],
            "false_triggers": b["false_triggers"],
            "per_hour": _rate(b["false_triggers"], b["hours"]),
            "present_fraction": _rate(b["present_s"] / 3600.0, b["hours"]),
        }
        for name, b in sorted(total.by_type.items())
    }
    kinds = total.false_triggers_by_kind if total.kinds_known else {"strict": None, "lenient": None}
    return {
        "n_streams": len(parts),
        "stream_hours": total.stream_hours,
        "device_days": device_days,
        "empty_hours": total.empty_hours,
        "occupied_hours": total.occupied_hours,
        "false_triggers": total.false_triggers,
        "false_triggers_per_empty_hour": _rate(total.false_triggers, total.empty_hours),
        "false_triggers_per_device_day": _rate(total.false_triggers, device_days),
        "false_triggers_strict": kinds["strict"],
        "false_triggers_lenient": kinds["lenient"],
        "false_triggers_by_type": {
            name: {k: b[k] for k in ("count", "hours", "per_hour")} | {"false_triggers": b["false_triggers"]}
            for name, b in by_type.items()
            if name not in total.presence_types
        },
        "entries": total.entries,
        "entries_detected": total.entries_detected,
        "entries_already_present": total.entries_already_present,
        "entry_recall": _rate(total.entries_detected, total.entries),
        "entry_latency_median_s": float(np.median(lat)) if lat.size else None,
        "entry_latency_p95_s": float(np.percentile(lat, 95)) if lat.size else None,
        "n_latencies": int(lat.size),
        "false_absences": total.false_absences,
        "false_absences_per_occupied_hour": _rate(total.false_absences, total.occupied_hours),
        "occupied_absent_fraction": _rate(total.occupied_absent_frames, total.occupied_frames),
        "empty_present_fraction": _rate(total.empty_present_frames, total.empty_frames),
        "by_event_type": by_type,
    }


ALWAYS_PRESENT_SHARE = 0.99  # present in at least this share of empty and of occupied time


def degenerate_reason(metrics: dict) -> str | None:
    """Why a detector's figures cannot be ranked, or None: "never fires" (no trigger and no arrival
    detected, though there were arrivals or occupied time) or "always present" (present in at least
    ALWAYS_PRESENT_SHARE of the empty time and of the occupied time)."""
    empty_present = metrics.get("empty_present_fraction")
    occupied_absent = metrics.get("occupied_absent_fraction")
    had_people = bool(metrics.get("entries")) or bool(metrics.get("occupied_hours"))
    silent = not metrics.get("false_triggers") and not metrics.get("entries_detected")
    if had_people and silent and (occupied_absent is None or occupied_absent >= ALWAYS_PRESENT_SHARE):
        return "never fires"
    always_on = empty_present is not None and empty_present >= ALWAYS_PRESENT_SHARE
    if always_on and (occupied_absent is None or occupied_absent <= 1.0 - ALWAYS_PRESENT_SHARE):
        return "always present"
    return None


def occupancy_metrics(
    streams: list[tuple[StreamOutcome, list[Episode]]], tolerance_s: float = TOLERANCE_S
) -> tuple[dict, list[dict]]:
    """(figures, per-episode rows) of a detector over streams with their truth episodes."""
    parts = [count_stream(outcome, episodes, tolerance_s) for outcome, episodes in streams]
    metrics = summarise_counts(parts)
    metrics["degenerate"] = degenerate_reason(metrics)
    rows = [row for p in parts for row in p.rows]
    return metrics, rows


def det_point(metrics: dict, threshold: float) -> dict:
    """One point of the detection-error trade-off: false triggers per empty hour vs missed entries."""
    recall = metrics.get("entry_recall")
    return {
        "threshold": float(threshold),
        "false_triggers_per_empty_hour": metrics.get("false_triggers_per_empty_hour"),
        "missed_entry_rate": None if recall is None else 1.0 - recall,
        "false_absences_per_occupied_hour": metrics.get("false_absences_per_occupied_hour"),
        "empty_present_fraction": metrics.get("empty_present_fraction"),
    }


def onsets_from_present(times_s: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Times [k] of the frames where `present` goes from False to True (frame 0 counts if present)."""
    present = np.asarray(present, dtype=bool)
    prev = np.concatenate([[False], present[:-1]])
    return np.asarray(times_s, dtype=np.float64)[present & ~prev]
