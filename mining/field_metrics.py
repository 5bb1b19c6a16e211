"""Field metrics that need no truth: what the dialogue logs say about the presence detector, per device.

Counts and hours only (the canary gate, deploy.rollout.field_rates, turns them into rates):
- device_hours           the device's observed period (first capture start to last capture end)
- motion_routines        the detector's motion triggers (lights on); no_motion_routines likewise
- negative_routines      motion routines thumbed down or undone
- lights_on_requests     someone asking for the lights: back on after a no-motion routine, or on arrival
- lights_back_on         those within lights_back_on_s after a no-motion routine
- routine_friction       negative_routines + lights_on_requests
- presence_failures      sessions isolated as presence_false_trigger or presence_missed
- occupied_hours         the union of [turn - occupied_margin_s, turn + occupied_margin_s] (people talk
                         only where they are), and motion_routines_occupied: motion triggers inside it
- lights_on_hours        time the routine log leaves the lights on (motion or a lights request turns
                         them on, a no-motion routine off; on at the end of the period counts to its end)
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from mining.config import SelfLearningConfig
from mining.dialogue_chains import is_lights_on
from mining.failure_points import PRESENCE_FAILURES

COUNTS = (
    "device_hours",
    "motion_routines",
    "no_motion_routines",
    "negative_routines",
    "lights_on_requests",
    "lights_back_on",
    "routine_friction",
    "presence_failures",
    "occupied_hours",
    "motion_routines_occupied",
    "lights_on_hours",
)


def _union_hours(times: list[dt.datetime], margin: dt.timedelta, start, end) -> list[tuple]:
    spans: list[list] = []
    for t in sorted(times):
        a, b = max(t - margin, start), min(t + margin, end)
        if spans and a <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], b)
        elif a < b:
            spans.append([a, b])
    return [(a, b) for a, b in spans]


def _lights_on_hours(events: list[tuple[dt.datetime, str]], end: dt.datetime) -> float:
    on_since, total = None, 0.0
    for t, what in sorted(events):
        if what == "on" and on_since is None:
            on_since = t
        elif what == "off" and on_since is not None:
            total += (t - on_since).total_seconds()
            on_since = None
    if on_since is not None:
        total += max((end - on_since).total_seconds(), 0.0)
    return total / 3600.0


def device_field_metrics(
    turns: pl.DataFrame,
    routines: pl.DataFrame,
    feedback: pl.DataFrame,
    isolation: pl.DataFrame,
    periods: pl.DataFrame,
    cfg: SelfLearningConfig,
) -> list[dict]:
    """One dict per device of `periods` (device_id, start, end): {device_id, **COUNTS}."""
    negative = [str(v).lower() for v in cfg.negative_feedback]
    complained = set(feedback.filter(pl.col("value").is_in(negative))["target_event_id"].to_list())
    margin = dt.timedelta(seconds=float(cfg.occupied_margin_s))
    back_on = dt.timedelta(seconds=float(cfg.lights_back_on_s))
    out = []
    for period in periods.sort("device_id").iter_rows(named=True):
        dev, start, end = period["device_id"], period["start"], period["end"]
        dev_turns = turns.filter(pl.col("device_id") == dev).sort("ts").iter_rows(named=True)
        dev_routines = list(routines.filter(pl.col("device_id") == dev).sort("ts").iter_rows(named=True))
        motion = [r for r in dev_routines if r["trigger"] == "motion"]
        offs = [r["ts"] for r in dev_routines if r["trigger"] == "no_motion"]
        turn_times, requests = [], []
        for t in dev_turns:
            turn_times.append(t["ts"])
            if is_lights_on(t["utterance"]):
                requests.append(t["ts"])
        spans = _union_hours(turn_times, margin, start, end)
        in_spans = sum(any(a <= r["ts"] <= b for a, b in spans) for r in motion)
        switches = [(r["ts"], "on" if r["trigger"] == "motion" else "off") for r in dev_routines]
        switches += [(t, "on") for t in requests]
        n_negative = sum(r["event_id"] in complained for r in motion)
        iso = isolation.filter(pl.col("device_id") == dev)
        out.append(
            {
                "device_id": dev,
                "device_hours": (end - start).total_seconds() / 3600.0,
                "motion_routines": len(motion),
                "no_motion_routines": len(offs),
                "negative_routines": n_negative,
                "lights_on_requests": len(requests),
                "lights_back_on": sum(
                    any(dt.timedelta(0) < t - o <= back_on for o in offs) for t in requests
                ),
                "routine_friction": n_negative + len(requests),
                "presence_failures": iso.filter(pl.col("failure_point").is_in(PRESENCE_FAILURES)).height,
                "occupied_hours": sum((b - a).total_seconds() for a, b in spans) / 3600.0,
                "motion_routines_occupied": in_spans,
                "lights_on_hours": _lights_on_hours(switches, end),
            }
        )
    return out


def cohort_totals(devices: list[dict]) -> dict:
    """Sums of every count over a cohort's devices (rates are recomputed from the sums)."""
    return {k: sum(d[k] for d in devices) for k in COUNTS} | {"devices": len(devices)}
