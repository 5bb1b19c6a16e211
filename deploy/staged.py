"""Staged rollout of one bundle over a fleet folder, step by step (no Prefect; flows/rollout.py wires it).

    plan_rollout      targets (right profile, not already at this release), seeded canary cohort
    install_canaries  install on the canaries, remembering what each ran before
    observe_canaries  the canaries' next logs with the new bundle vs the same period with the previous one
                      (from a CanaryLogSource: flows.simulated_fleet's simulator stands in for uploads)
    gate              deploy.rollout.canary_gate (truth-free: the logs alone) + "every canary installed";
                      when the log source also knows the truth (a simulator), the truth-based decision
                      is recorded beside it (`reference_proceed`, `agrees_with_reference`), never used
    finish_rollout    proceed: install on the rest of the fleet; halt: roll the canaries back
Every step records its decision and numbers in a DecisionLog (JSON, rewritten atomically per entry).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from common.io import atomic_write_json
from deploy.agent import read_state
from deploy.fleet import list_fleet
from deploy.layout import MANIFEST_NAME
from deploy.rollout import (
    DEFAULT_LIMITS,
    FIELD_COUNTS,
    FIELD_LIMITS,
    GateDecision,
    canary_gate,
    install_cohort,
    plan_cohorts,
    rollback_device,
    truth_based_gate,
)

ROLLED_OUT, PARTIAL, HALTED = "rolled_out", "rolled_out_partial", "halted"


class DecisionLog:
    """Append-only {at, step, decision, reasons, numbers} entries; the file is rewritten atomically."""

    def __init__(self, path: str | os.PathLike, header: dict, notify: Callable[[str], None] | None = None):
        self.path = Path(path)
        self.doc = {**header, "decisions": [], "outcome": None}
        self.notify = notify
        atomic_write_json(self.path, self.doc)

    def record(self, step: str, decision: str, reasons: list[str] | None = None, numbers: dict | None = None):
        entry = {
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "step": step,
            "decision": decision,
            "reasons": list(reasons or []),
            "numbers": dict(numbers or {}),
        }
        self.doc["decisions"].append(entry)
        atomic_write_json(self.path, self.doc)
        if self.notify is not None:
            self.notify(format_entry(entry))
        return entry

    def finish(self, outcome: str, summary: dict) -> dict:
        self.doc["outcome"] = outcome
        self.doc["summary"] = summary
        atomic_write_json(self.path, self.doc)
        return self.doc


def format_entry(entry: dict) -> str:
    numbers = ", ".join(
        f"{k}={_fmt(v)}" for k, v in entry["numbers"].items() if not isinstance(v, list | dict)
    )
    reasons = "; ".join(entry["reasons"])
    return (
        f"[{entry['step']}] {entry['decision']}"
        + (f": {reasons}" if reasons else "")
        + (f" ({numbers})" if numbers else "")
    )


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def decisions_markdown(doc: dict) -> str:
    """The decision log as a markdown table (the Prefect artifact)."""
    lines = [
        f"# Rollout of {doc['bundle_version']} (release {doc['release_counter']}, {doc['profile']})",
        "",
        f"Outcome: **{doc['outcome']}**",
        "",
        "| step | decision | reasons | numbers |",
        "|---|---|---|---|",
    ]
    for e in doc["decisions"]:
        numbers = "<br>".join(
            f"{k}: {_fmt(v)}" for k, v in e["numbers"].items() if not isinstance(v, list | dict)
        )
        lines.append(f"| {e['step']} | {e['decision']} | {'; '.join(e['reasons'])} | {numbers} |")
    return "\n".join(lines) + "\n"


def read_bundle_manifest(bundle_path: str | os.PathLike) -> dict:
    """The manifest inside a bundle tar, unverified (planning only; every device verifies for itself)."""
    with tarfile.open(bundle_path) as tar:
        member = tar.extractfile(MANIFEST_NAME)
        if member is None:
            raise ValueError(f"{bundle_path}: no {MANIFEST_NAME}")
        return json.loads(member.read())


def plan_rollout(
    bundle_path: str | os.PathLike, fleet_dir: str | os.PathLike, canary_fraction: float, seed: int
):
    """Targets, skipped devices (other profile / already at this release) and the seeded canary cohort."""
    manifest = read_bundle_manifest(bundle_path)
    devices, skipped = {}, []
    for ident in list_fleet(fleet_dir):
        state = read_state(ident["dir"])
        if state["profile"] != manifest["profile"]:
            skipped.append({"device": ident["device_id"], "reason": f"profile {state['profile']}"})
        elif state["release_counter"] >= manifest["release_counter"]:
            skipped.append({"device": ident["device_id"], "reason": f"at release {state['release_counter']}"})
        else:
            devices[ident["device_id"]] = ident
    if not devices:
        raise ValueError(
            f"no device in {fleet_dir} can take {manifest['profile']} release {manifest['release_counter']}"
        )
    cohorts = plan_cohorts(list(devices), canary_fraction, seed)
    return {
        "bundle": str(bundle_path),
        "bundle_version": manifest["version"],
        "release_counter": manifest["release_counter"],
        "profile": manifest["profile"],
        "devices": devices,
        "canary": cohorts["canary"],
        "rest": cohorts["rest"],
        "skipped": skipped,
    }


def _previous(device_dir: str) -> dict:
    """What the device runs now: its active good slot (path, version, counter), or the factory detector."""
    state = read_state(device_dir)
    slot = state["active_slot"] if state["good"] else None
    if slot is None:
        return {"slot": None, "path": None, "version": "factory", "release_counter": 0}
    info = state["slots"][slot]
    path = str(Path(device_dir) / "slots" / slot)
    return {
        "slot": slot,
        "path": path,
        "version": info["version"],
        "release_counter": info["release_counter"],
    }


def install_canaries(plan: dict) -> list[dict]:
    """Install on every canary; each result carries what the device ran before."""
    previous = {d: _previous(plan["devices"][d]["dir"]) for d in plan["canary"]}
    results = install_cohort(plan["bundle"], [plan["devices"][d]["dir"] for d in plan["canary"]])
    return [
        {**r, "device_id": d, "previous": previous[d]} for d, r in zip(plan["canary"], results, strict=True)
    ]


class CanaryLogSource(Protocol):
    """Where a cohort's next logs come from, counted from the logs alone: {device_hours,
    routine_friction, presence_failures, occupied_hours, motion_routines_occupied, lights_on_hours, ...}
    (mining.field_metrics counts, summed over the units). A source that knows the truth (a simulator)
    may add "reference": truth-based counts {hours, false_alarms, false_present_hours, detections, ...}."""

    def collect(
        self,
        fleet_indices: list[int],
        bundle_path: str | os.PathLike | None,  # None: the factory detector
        out_dir: str | os.PathLike,
        batch_id: str,
    ) -> dict: ...


def sum_stats(parts: list[dict]) -> dict:
    """Totals of log statistics over groups of devices (hours, counts); rates are recomputed by the gate."""
    keys = [k for k, v in parts[0].items() if isinstance(v, int | float) and not isinstance(v, bool)]
    out = {k: sum(p[k] for p in parts) for k in keys}
    if all("reference" in p for p in parts):
        out["reference"] = sum_stats([p["reference"] for p in parts])
    return out


def observe_canaries(plan: dict, installs: list[dict], logs: CanaryLogSource, work_dir: str | os.PathLike):
    """The canaries' next period with the new bundle and with what they ran before, both counted.

    Returns {"canary": stats, "baseline": stats, "groups": [...]} (stats: CanaryLogSource counts).
    """
    work_dir = Path(work_dir)
    installed = [r for r in installs if r["installed"]]
    if not installed:
        empty = dict.fromkeys(FIELD_COUNTS, 0)
        return {"canary": empty, "baseline": empty, "groups": []}
    index_of = {r["device_id"]: plan["devices"][r["device_id"]]["fleet_index"] for r in installed}
    canary = logs.collect(list(index_of.values()), plan["bundle"], work_dir / "new", "canary-new")
    groups: dict[tuple, list[dict]] = {}
    for r in installed:  # canaries that ran different bundles before are compared group by group
        groups.setdefault((r["previous"]["version"], r["previous"]["release_counter"]), []).append(r)
    parts, group_rows = [], []
    for n, ((version, counter), members) in enumerate(sorted(groups.items(), key=lambda kv: kv[0][1])):
        indices = [index_of[m["device_id"]] for m in members]
        prev_path = members[0]["previous"]["path"]
        stats = logs.collect(indices, prev_path, work_dir / f"baseline-{n}", f"canary-baseline-{n}")
        parts.append(stats)
        group_rows.append({"version": version, "release_counter": counter, "devices": len(members), **stats})
    return {"canary": canary, "baseline": sum_stats(parts), "groups": group_rows}


def reference_decision(observed: dict, rollout: dict) -> GateDecision | None:
    """The truth-based gate on the observation's reference counts (None when the source has no truth)."""
    if "reference" not in observed["canary"] or "reference" not in observed["baseline"]:
        return None
    limits = {k: rollout[k] for k in DEFAULT_LIMITS if k in rollout}
    return truth_based_gate(observed["canary"]["reference"], observed["baseline"]["reference"], limits)


def gate(installs: list[dict], observed: dict, rollout: dict) -> GateDecision:
    """canary_gate on the observed logs; any canary that refused the bundle halts the rollout too."""
    limits = {k: rollout[k] for k in FIELD_LIMITS if k in rollout}
    refused = [r for r in installs if not r["installed"]]
    if len(refused) == len(installs):
        reasons = [f"{r['device_id']} refused: {r['reason']}" for r in refused]
        return GateDecision(
            False, ["no canary installed the bundle", *reasons], {"canaries_refused": len(refused)}
        )
    decision = canary_gate(observed["canary"], observed["baseline"], limits)
    numbers = {**decision.numbers, "canaries": len(installs), "canaries_refused": len(refused)}
    reference = reference_decision(observed, rollout)
    if reference is not None:
        numbers |= {
            "reference_proceed": reference.proceed,
            "agrees_with_reference": reference.proceed == decision.proceed,
            "reference": {"reasons": reference.reasons, **reference.numbers},
        }
    reasons = [f"{r['device_id']} refused: {r['reason']}" for r in refused]
    if reasons:
        return GateDecision(
            False, [*reasons, *[x for x in decision.reasons if x != "canaries within limits"]], numbers
        )
    return GateDecision(decision.proceed, decision.reasons, numbers)


def finish_rollout(plan: dict, installs: list[dict], decision: GateDecision) -> dict:
    """Proceed: install on the rest. Halt: roll back every canary that installed (to its previous slot,
    or to the factory detector for a canary that had no bundle before)."""
    if decision.proceed:
        results = install_cohort(plan["bundle"], [plan["devices"][d]["dir"] for d in plan["rest"]])
        results = [{**r, "device_id": d} for d, r in zip(plan["rest"], results, strict=True)]
        refused = [r for r in results if not r["installed"]]
        return {"outcome": PARTIAL if refused else ROLLED_OUT, "rest": results, "rolled_back": []}
    reason = "canary gate halted the rollout: " + "; ".join(decision.reasons)
    rolled_back = []
    for r in installs:
        if r["installed"]:
            back = rollback_device(r["device"], reason, allow_factory=r["previous"]["slot"] is None)
            rolled_back.append({**back, "device_id": r["device_id"]})
    return {"outcome": HALTED, "rest": [], "rolled_back": rolled_back}


def log_header(plan: dict) -> dict:
    return {k: plan[k] for k in ("bundle", "bundle_version", "release_counter", "profile")}


def record_plan(log: DecisionLog, plan: dict) -> None:
    log.record(
        "plan",
        "canary cohort chosen",
        [f"canaries: {', '.join(plan['canary'])}"]
        + [f"skipped {s['device']}: {s['reason']}" for s in plan["skipped"]],
        {
            "targets": len(plan["devices"]),
            "canaries": len(plan["canary"]),
            "rest": len(plan["rest"]),
            "skipped": len(plan["skipped"]),
        },
    )


def record_installs(log: DecisionLog, step: str, results: list[dict]) -> None:
    ok = [r for r in results if r["installed"]]
    reasons = [
        f"{r['device_id']} refused at {r['step']}: {r['reason']}" for r in results if not r["installed"]
    ]
    log.record(
        step, f"{len(ok)}/{len(results)} installed", reasons, {"installed": len(ok), "refused": len(reasons)}
    )


def record_observation(log: DecisionLog, observed: dict) -> None:
    numbers = {f"canary_{k}": v for k, v in observed["canary"].items() if k != "reference"}
    numbers |= {f"baseline_{k}": v for k, v in observed["baseline"].items() if k != "reference"}
    reasons = [
        f"baseline {g['version']} (release {g['release_counter']}) on {g['devices']} devices"
        for g in observed["groups"]
    ]
    log.record("observe", "canary logs counted", reasons, numbers)


def record_finish(log: DecisionLog, plan: dict, decision: GateDecision, finished: dict) -> dict:
    log.record("gate", "proceed" if decision.proceed else "halt", decision.reasons, decision.numbers)
    if decision.proceed:
        record_installs(log, "install_rest", finished["rest"])
    else:
        log.record(
            "rollback",
            f"{len(finished['rolled_back'])} canaries rolled back",
            [
                f"{b['device_id']}: slot {b['from']} -> {b['to'] or 'factory'} ({b['version'] or 'factory'})"
                for b in finished["rolled_back"]
            ],
            {"rolled_back": len(finished["rolled_back"])},
        )
    installed = sum(r["installed"] for r in finished["rest"])
    summary = {
        "proceed": decision.proceed,
        "canaries": plan["canary"],
        "rest_installed": installed,
        "rest_refused": len(finished["rest"]) - installed,
        "rolled_back": [b["device_id"] for b in finished["rolled_back"]],
        "gate": decision.to_dict(),
    }
    return log.finish(finished["outcome"], summary)


def decision_log_path(fleet_dir: str | os.PathLike, plan: dict) -> Path:
    return Path(fleet_dir) / "rollouts" / f"release-{plan['release_counter']:06d}" / "decisions.json"


def run_staged_rollout(
    bundle_path: str | os.PathLike,
    fleet_dir: str | os.PathLike,
    rollout: dict,
    logs: CanaryLogSource,
    notify: Callable[[str], None] | None = None,
) -> dict:
    """The whole rollout in one call (what the Prefect flow does, task by task). Returns the decision log."""
    plan = plan_rollout(bundle_path, fleet_dir, float(rollout["canary_fraction"]), int(rollout["seed"]))
    log_path = decision_log_path(fleet_dir, plan)
    log = DecisionLog(log_path, log_header(plan), notify)
    record_plan(log, plan)
    installs = install_canaries(plan)
    record_installs(log, "install_canaries", installs)
    observed = observe_canaries(plan, installs, logs, log_path.parent / "canary_logs")
    record_observation(log, observed)
    decision = gate(installs, observed, rollout)
    finished = finish_rollout(plan, installs, decision)
    return record_finish(log, plan, decision, finished)
