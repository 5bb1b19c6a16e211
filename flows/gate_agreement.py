"""How often the truth-free canary gate decides as the truth-based one would, on simulated rollouts.

Each case is (name, previous bundle or None for the factory detector, candidate bundle). Per case and
observe seed: a fresh simulated fleet (flows.simulated_fleet) is provisioned, the previous bundle
installed on its units, and the candidate rolled out (deploy.staged.run_staged_rollout); the gate entry
records the truth-free decision and the truth-based reference beside it (`agrees_with_reference`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mining.config import SelfLearningConfig


def rollout_once(
    previous: str | os.PathLike | None,
    candidate: str | os.PathLike,
    work_dir: Path,
    n_devices: int,
    rollout: dict,
    sim: dict,
    learning: SelfLearningConfig,
    trusted_keys,
) -> dict:
    """One simulated rollout of `candidate` over units that run `previous` → its gate entry's verdicts."""
    from deploy.fleet import list_fleet
    from deploy.rollout import install_cohort
    from deploy.staged import read_bundle_manifest, run_staged_rollout
    from flows.simulated_fleet import SimulatedCanaryLogs, provision_field_fleet

    if work_dir.exists():
        shutil.rmtree(work_dir)
    fleet = work_dir / "fleet"
    provision_field_fleet(fleet, n_devices, trusted_keys, sim)
    profile = read_bundle_manifest(candidate)["profile"]
    if previous is not None:
        install_cohort(previous, [d["dir"] for d in list_fleet(fleet) if d["profile"] == profile])
    doc = run_staged_rollout(
        candidate, fleet, rollout, SimulatedCanaryLogs.from_params(sim, rollout, learning)
    )
    gate = next(e for e in doc["decisions"] if e["step"] == "gate")
    numbers = gate["numbers"]
    return {
        "proceed": gate["decision"] == "proceed",
        "reference_proceed": numbers.get("reference_proceed"),
        "agrees": numbers.get("agrees_with_reference"),
        "reasons": gate["reasons"],
        "reference_reasons": numbers.get("reference", {}).get("reasons"),
    }


def gate_agreement(
    cases: list[tuple[str, str | None, str]],
    seeds: list[int],
    work_dir: str | os.PathLike,
    n_devices: int,
    rollout: dict,
    sim: dict,
    learning: SelfLearningConfig,
    trusted_keys,
    progress=None,
) -> dict:
    """Rollouts of every case for every observe seed → rows and the share where both gates agree."""
    rows = []
    for name, previous, candidate in cases:
        for seed in seeds:
            verdict = rollout_once(
                previous,
                candidate,
                Path(work_dir) / f"{name}-{seed}",
                n_devices,
                {**rollout, "observe_seed": int(seed)},
                sim,
                learning,
                trusted_keys,
            )
            rows.append({"case": name, "observe_seed": int(seed), **verdict})
            if progress is not None:
                progress(rows[-1])
    agreed = sum(bool(r["agrees"]) for r in rows)
    return {
        "rollouts": len(rows),
        "agreed": agreed,
        "agreement": agreed / len(rows) if rows else None,
        "rows": rows,
    }
