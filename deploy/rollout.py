"""Staged rollout building blocks (pure functions; the Prefect flow in flows/ strings them together).

1. plan_cohorts: a seeded canary cohort and the rest of the fleet.
2. install_cohort: install a bundle on every device folder of a cohort, one result per device.
3. canary_gate: compare the canaries' next logs with the previous bundle's from the logs alone (no
   truth): routine friction and presence failure points per device-day, detections per occupied hour,
   the share of time the routines leave the lights on (field_rates; counts from mining.field_metrics),
   against limits from params `deploy.rollout`; every decision carries its numbers.
   truth_based_gate makes the same call from counts only a simulator can know (false alarms per empty
   hour, detections against truth): rollouts report how often the two agree, never decide by it.
4. rollback_device: operator rollback of a canary to its other (previous, still good) slot. The release
   counter stays where it is: the rolled-back bundle can never be reinstalled, a fix needs a new counter.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from common.io import atomic_write_json
from deploy.agent import device_trust, install_bundle, read_state
from deploy.errors import BundleError
from deploy.verify import verify_slot

DEFAULT_LIMITS = {
    "max_false_alarm_ratio": 1.5,  # canary FA/h may be at most this times the baseline's ...
    "false_alarm_slack_per_hour": 0.2,  # ... plus this absolute slack (a baseline of 0 FA/h is common)
    "min_detection_ratio": 0.9,  # canary detections/h at least this times the baseline's
    "min_canary_hours": 1.0,  # not enough exposure -> halt rather than guess
    # share of the canary hours the detector says "present" away from any presence: a detector stuck
    # "present" makes one onset only, so false alarms per hour alone would let it through
    "max_false_present_ratio": 1.5,
    "false_present_slack": 0.02,
}


def plan_cohorts(device_ids: list[str], canary_fraction: float, seed: int, min_canaries: int = 1) -> dict:
    """{"canary": [...], "rest": [...]}: a seeded random canary cohort, both lists sorted."""
    if not 0 < canary_fraction <= 1:
        raise ValueError("canary_fraction must be in (0, 1]")
    ids = sorted(set(device_ids))
    if not ids:
        raise ValueError("no devices to roll out to")
    n_canary = min(len(ids), max(min_canaries, math.ceil(canary_fraction * len(ids))))
    order = np.random.default_rng(seed).permutation(len(ids))
    canary = sorted(ids[i] for i in order[:n_canary])
    return {"canary": canary, "rest": sorted(set(ids) - set(canary))}


def install_cohort(bundle_path: str | os.PathLike, device_dirs: list[str | os.PathLike]) -> list[dict]:
    """Install on each device; a refusal on one device does not stop the others."""
    results = []
    for device_dir in device_dirs:
        result = install_bundle(bundle_path, device_dir).to_dict()
        results.append({"device": str(device_dir), **result})
    return results


@dataclass(frozen=True)
class GateDecision:
    proceed: bool
    reasons: list[str]
    numbers: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


FIELD_LIMITS = {
    "min_canary_hours": 1.0,
    "max_friction_ratio": 1.5,  # routine friction per device-day at most this times the baseline's ...
    "friction_slack_per_device_day": 0.5,  # ... plus this
    "max_presence_failure_ratio": 1.5,  # presence failure points per device-day, likewise
    "presence_failure_slack_per_device_day": 0.5,
    "min_occupied_detection_ratio": 0.7,  # detections per occupied hour at least this times the baseline's
    "max_lights_on_ratio": 1.5,  # share of the time the lights are on, vs the baseline's ...
    "lights_on_slack": 0.05,  # ... plus this (a detector stuck on never lets them go off)
}
FIELD_COUNTS = (
    "device_hours",
    "routine_friction",
    "presence_failures",
    "occupied_hours",
    "motion_routines_occupied",
    "lights_on_hours",
)


def field_rates(stats: dict) -> dict:
    """Rates of a cohort's (or device's) field counts: the figures the truth-free gate compares."""
    hours = stats["device_hours"]
    days = hours / 24.0
    return {
        "routine_friction_per_device_day": stats["routine_friction"] / days if days else 0.0,
        "presence_failures_per_device_day": stats["presence_failures"] / days if days else 0.0,
        "detections_per_occupied_hour": (
            stats["motion_routines_occupied"] / stats["occupied_hours"] if stats["occupied_hours"] else None
        ),
        "lights_on_share": stats["lights_on_hours"] / hours if hours else 0.0,
    }


def canary_gate(canary: dict, baseline: dict, limits: dict | None = None) -> GateDecision:
    """Decide from the canaries' logs versus the previous bundle's, with no truth: field_rates of both.

    canary/baseline: FIELD_COUNTS summed over the cohort (mining.field_metrics.cohort_totals).
    """
    lim = {**FIELD_LIMITS, **(limits or {})}
    for name, stats in (("canary", canary), ("baseline", baseline)):
        missing = [k for k in FIELD_COUNTS if k not in stats]
        if missing or any(stats[k] < 0 for k in FIELD_COUNTS):
            raise ValueError(f"{name} stats need non-negative {', '.join(FIELD_COUNTS)} (missing {missing})")
        if stats["device_hours"] == 0:
            return GateDecision(False, [f"no {name} logs (0 h observed)"], {f"{name}_hours": 0.0})
    rc, rb = field_rates(canary), field_rates(baseline)
    numbers = {"canary_hours": canary["device_hours"], "baseline_hours": baseline["device_hours"]}
    numbers |= {f"canary_{k}": v for k, v in rc.items() if v is not None}
    numbers |= {f"baseline_{k}": v for k, v in rb.items() if v is not None}
    reasons = []
    if canary["device_hours"] < lim["min_canary_hours"] - 1e-9:
        reasons.append(
            f"only {canary['device_hours']:.2f} h of canary logs (< {lim['min_canary_hours']:g} h)"
        )
    for key, label, ratio, slack in (
        (
            "routine_friction_per_device_day",
            "routine friction",
            "max_friction_ratio",
            "friction_slack_per_device_day",
        ),
        (
            "presence_failures_per_device_day",
            "presence failure points",
            "max_presence_failure_ratio",
            "presence_failure_slack_per_device_day",
        ),
        ("lights_on_share", "lights-on share", "max_lights_on_ratio", "lights_on_slack"),
    ):
        limit = rb[key] * lim[ratio] + lim[slack]
        numbers[f"{key}_limit"] = limit
        if rc[key] > limit:
            reasons.append(f"{label} {rc[key]:.3f} above the limit {limit:.3f} (baseline {rb[key]:.3f})")
    base_det = rb["detections_per_occupied_hour"]
    if base_det:  # no occupied time in the baseline's logs: nothing to hold detections against
        floor = base_det * lim["min_occupied_detection_ratio"]
        numbers["detections_per_occupied_hour_floor"] = floor
        det = rc["detections_per_occupied_hour"] or 0.0
        if det < floor:
            reasons.append(
                f"detections {det:.2f} per occupied hour below the floor {floor:.2f} "
                f"(baseline {base_det:.2f})"
            )
    if reasons:
        return GateDecision(False, reasons, numbers)
    return GateDecision(True, ["canaries within limits"], numbers)


def truth_based_gate(canary: dict, baseline: dict, limits: dict | None = None) -> GateDecision:
    """The same decision from truth-based counts (simulated canaries only; reported, never gating).

    canary/baseline: {"hours": float, "false_alarms": int, "detections": int} (summed over devices),
    optionally "false_present_hours" (compared as a share of the hours observed).
    """
    lim = {**DEFAULT_LIMITS, **(limits or {})}
    for name, stats in (("canary", canary), ("baseline", baseline)):
        if any(stats.get(k, -1) < 0 for k in ("hours", "false_alarms", "detections")):
            raise ValueError(f"{name} stats need non-negative hours, false_alarms, detections")
    for name, stats in (("canary", canary), ("baseline", baseline)):
        if stats["hours"] == 0:  # nothing to compare: never proceed on no evidence
            return GateDecision(False, [f"no {name} logs (0 h observed)"], {f"{name}_hours": 0.0})
    fa_canary = canary["false_alarms"] / canary["hours"]
    fa_base = baseline["false_alarms"] / baseline["hours"]
    det_canary = canary["detections"] / canary["hours"]
    det_base = baseline["detections"] / baseline["hours"]
    fa_limit = fa_base * lim["max_false_alarm_ratio"] + lim["false_alarm_slack_per_hour"]
    det_floor = det_base * lim["min_detection_ratio"]
    numbers = {
        "canary_hours": canary["hours"],
        "baseline_hours": baseline["hours"],
        "canary_false_alarms": canary["false_alarms"],
        "baseline_false_alarms": baseline["false_alarms"],
        "canary_detections": canary["detections"],
        "baseline_detections": baseline["detections"],
        "canary_false_alarms_per_hour": fa_canary,
        "baseline_false_alarms_per_hour": fa_base,
        "false_alarms_per_hour_limit": fa_limit,
        "canary_detections_per_hour": det_canary,
        "baseline_detections_per_hour": det_base,
        "detections_per_hour_floor": det_floor,
    }
    reasons = []
    if canary["hours"] < lim["min_canary_hours"] - 1e-9:  # hours are sums of clip lengths: allow rounding
        reasons.append(f"only {canary['hours']:.2f} h of canary logs (< {lim['min_canary_hours']:g} h)")
    if fa_canary > fa_limit:
        reasons.append(
            f"false alarms {fa_canary:.3f}/h above the limit {fa_limit:.3f}/h (baseline {fa_base:.3f})"
        )
    fp_canary = canary.get("false_present_hours", 0.0) / canary["hours"]
    fp_base = baseline.get("false_present_hours", 0.0) / baseline["hours"]
    fp_limit = fp_base * lim["max_false_present_ratio"] + lim["false_present_slack"]
    numbers.update(
        canary_false_present_share=fp_canary,
        baseline_false_present_share=fp_base,
        false_present_share_limit=fp_limit,
    )
    if fp_canary > fp_limit:
        reasons.append(
            f"false presence {100 * fp_canary:.1f} % of the time above the limit {100 * fp_limit:.1f} % "
            f"(baseline {100 * fp_base:.1f} %)"
        )
    if det_canary < det_floor:
        reasons.append(
            f"detections {det_canary:.2f}/h below the floor {det_floor:.2f}/h (baseline {det_base:.2f})"
        )
    if reasons:
        return GateDecision(False, reasons, numbers)
    return GateDecision(True, ["canaries within limits"], numbers)


def rollback_device(device_dir: str | os.PathLike, reason: str, allow_factory: bool = False) -> dict:
    """Switch back to the other slot if it is good and verifies; mark the current one bad.

    allow_factory: a device whose first bundle is rolled back (no other good slot) goes back to the
    factory detector (no active slot) instead of refusing.
    """
    device_dir = Path(device_dir)
    state = read_state(device_dir)
    current = state["active_slot"]
    if current is None:
        raise BundleError("nothing installed: no slot to roll back from")
    other = "A" if current == "B" else "B"
    if state["slots"][other]["state"] == "good":
        trusted, _ = device_trust(device_dir)
        verify_slot(device_dir / "slots" / other, trusted)
    elif allow_factory:
        other = None
    else:
        raise BundleError(f"slot {other} holds no good bundle to roll back to")
    state["slots"][current]["state"] = "bad"
    state["active_slot"] = other
    state["good"] = other is not None
    state["previous_slot"] = None
    state["bundle_version"] = state["slots"][other]["version"] if other else None
    state["last_rollback"] = {"from": current, "to": other, "reason": reason}
    atomic_write_json(device_dir / "state.json", state)
    return {"device": str(device_dir), "from": current, "to": other, "version": state["bundle_version"]}
