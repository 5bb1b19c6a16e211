"""The simulator standing in for a real fleet in rollouts: device identities and the canaries' next logs.

deploy/ knows devices only as folders and logs only as numbers (deploy.staged takes a CanaryLogSource);
this module joins it to fleet/ (simulation) and training/ (counting), as flows/ may.

- field_identities / provision_field_fleet: fleet folders for units of the simulator's field population,
  so a device's logs can be simulated as that same physical unit and room.
- SimulatedCanaryLogs: simulate a short field period for chosen units, then count from it. A canary
  cohort is simulated twice over the same period with the same seed (same rooms, people and noise):
  once running the new bundle, once running what it ran before (a previous bundle, or the factory
  energy detector when none). What the gate sees is counted from the uploaded logs alone
  (flows.field_logs: routine friction, presence failure points, detections per occupied hour, lights-on
  time). The simulator's truth only adds a "reference" (truth_stats: training.evaluate's counting over
  every capture, `canary_sample_prob`), so a rollout can report whether a truth-based gate would have
  decided the same.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deploy.fleet import provision_fleet
from deploy.keystore import PublicKeyLike
from deploy.verify import DEFAULT_MAX_ENTRY_BYTES
from mining.config import SelfLearningConfig

FLEET_PRESET = "field"  # rollouts run on units of the simulator's field population


def field_identities(n_devices: int, sim: dict | None = None) -> list[dict]:
    """{device_id, fleet_index, profile} of field units 0..n_devices-1 (profile from the population mix)."""
    from fleet.config import sim_section
    from fleet.simulate import fleet_unit

    if n_devices < 1:
        raise ValueError("a fleet needs at least one device")
    sim = sim_section(sim)
    identities = []
    for index in range(n_devices):
        device, _ = fleet_unit(FLEET_PRESET, index, sim)
        identities.append({"device_id": device.device_id, "fleet_index": index, "profile": device.profile})
    return identities


def provision_field_fleet(
    fleet_dir: str | os.PathLike,
    n_devices: int,
    trusted_keys: dict[str, PublicKeyLike] | list[PublicKeyLike],
    sim: dict | None = None,
    max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES,
) -> list[dict]:
    """Provision field units 0..n_devices-1 that are missing (factory state); return every identity."""
    return provision_fleet(fleet_dir, field_identities(n_devices, sim), trusted_keys, max_entry_bytes)


@dataclass(frozen=True)
class SimulatedCanaryLogs:
    """deploy.staged.CanaryLogSource backed by the simulator: the same (units, hours, seed) world for
    whichever bundle runs, so a new and a previous bundle differ only by their decisions."""

    sim: dict  # simulate section with the canaries' upload rate
    hours: float  # simulated field hours per unit
    seed: int  # the period's simulation seed
    learning: SelfLearningConfig  # how the logs are counted (flows.field_logs.learning_params)

    @classmethod
    def from_params(
        cls, sim: dict, rollout: dict, learning: SelfLearningConfig | None = None
    ) -> SimulatedCanaryLogs:
        """From the simulate section and deploy.rollout (canary_sample_prob, canary_hours, observe_seed);
        learning: flows.field_logs.learning_params (None: from the repository's params.yaml)."""
        if learning is None:
            from common.params import load_params
            from fleet.config import REPO_PARAMS
            from flows.field_logs import learning_params

            learning = learning_params(load_params(REPO_PARAMS))
        return cls(
            canary_sim_params(sim, float(rollout["canary_sample_prob"])),
            float(rollout["canary_hours"]),
            int(rollout["observe_seed"]),
            learning,
        )

    def collect(
        self,
        fleet_indices: list[int],
        bundle_path: str | os.PathLike | None,
        out_dir: str | os.PathLike,
        batch_id: str,
    ) -> dict:
        """Simulate the units' period running the bundle (factory detector if None); count the logs
        (flows.field_logs.field_counts) and, as the reference only, the truth (truth_stats)."""
        from flows.field_logs import field_counts

        raw, truth = Path(out_dir) / "raw", Path(out_dir) / "truth"
        simulate_units(fleet_indices, self.hours, self.seed, raw, truth, bundle_path, self.sim, batch_id)
        counts = field_counts(raw, self.learning)
        counts.pop("per_device")
        return {**counts, "reference": truth_stats(raw, truth, bundle_path, self.sim)}


def canary_sim_params(sim: dict, sample_prob: float) -> dict:
    """The simulate section with the canaries' upload rate (every capture when sample_prob = 1)."""
    from fleet.config import sim_section

    sim = sim_section(sim)
    if not 0 < sample_prob <= 1:
        raise ValueError("canary sample_prob must be in (0, 1]")
    return {**sim, "policy": {**sim["policy"], "sample_prob": float(sample_prob)}, "workers": 1}


def simulate_units(
    fleet_indices: list[int],
    hours: float,
    seed: int,
    raw_dir: str | os.PathLike,
    truth_dir: str | os.PathLike,
    bundle_path: str | os.PathLike | None,
    sim: dict,
    batch_id: str,
) -> dict:
    """fleet.simulate_batch for chosen field units (not units 0..n-1): raw batch + truth → summary.

    Runs in this process, one unit after the other; the same (indices, hours, seed) gives the same world
    whatever bundle runs, so two runs differ only by the detector's decisions.
    """
    from fleet.simulate import DeviceJob, simulate_device, write_dialogue_truth
    from fleet.writer import open_batch

    if not fleet_indices or hours <= 0:
        raise ValueError("need at least one unit and hours > 0")
    if bundle_path is not None and not Path(bundle_path).exists():
        raise FileNotFoundError(f"bundle {bundle_path} not found")
    n_chunks = max(1, round(hours * 3600 / float(sim["capture_s"])))
    firmware, dialogue_truth = "factory", []
    with open_batch(raw_dir, truth_dir) as writer:
        for index in sorted(set(fleet_indices)):
            job = DeviceJob(
                FLEET_PRESET,
                int(index),
                n_chunks,
                int(seed),
                batch_id,
                str(writer.raw),
                sim,
                None if bundle_path is None else str(bundle_path),
            )
            out = simulate_device(job)
            writer.captures += out.captures
            writer.events += out.truth
            writer.add_dialogue(out.dialogue)
            dialogue_truth += out.dialogue_truth
            firmware = out.firmware
        write_dialogue_truth(writer.truth, dialogue_truth)
        n_captures = len(writer.captures)
    return {
        "batch_id": batch_id,
        "units": sorted(set(fleet_indices)),
        "device_hours": len(set(fleet_indices)) * n_chunks * float(sim["capture_s"]) / 3600.0,
        "n_captures": n_captures,
        "firmware": firmware,
    }


class FactoryRun:
    """training.evaluate StreamRun of the factory energy detector (what a device runs with no bundle):
    one microphone, the detector's noise tracking carried across the stream's captures."""

    def __init__(self, pol: dict, fs_hz: float):
        from fleet.policy import EnergyDetector

        self.block_s = float(pol["energy_block_s"])
        self.detector = EnergyDetector(fs_hz, pol)
        self.motion: list[np.ndarray] = []

    def feed(self, iq: np.ndarray) -> None:
        self.motion.append(self.detector.process(iq[0]))  # [B] bool, one mic like the device

    def decisions(self):
        from training.metrics import onsets_from_present

        motion = np.concatenate(self.motion) if self.motion else np.zeros(0, bool)
        times = (np.arange(motion.size) + 1) * self.block_s  # block end times [B]
        return times, motion, onsets_from_present(times, motion), None


def truth_stats(
    raw_dir: str | os.PathLike, truth_dir: str | os.PathLike, bundle_path: str | os.PathLike | None, sim: dict
) -> dict:
    """A cohort's counts on a batch, counted against the simulator's truth (the one place that reads
    training.evaluate's metric keys for the rollout): {"hours" (empty-room hours), "false_alarms" (false
    triggers), "detections" (entries detected), ...} of a bundle (factory detector if None)."""
    from training.evaluate import evaluate_bundle, metrics_of, run_batch

    if bundle_path is None:
        pol = sim["policy"]
        decider = lambda fs, carrier, n_mics: FactoryRun(pol, fs)  # noqa: E731
        metrics, _ = metrics_of(run_batch(decider, raw_dir, truth_dir, float(sim["fs_hz"])))
    else:
        metrics = evaluate_bundle(bundle_path, raw_dir, truth_dir)
    empty_hours = float(metrics["empty_hours"])
    return {
        "hours": empty_hours,
        "false_alarms": int(metrics["false_triggers"]),
        "false_present_hours": float(metrics["empty_present_fraction"] or 0.0) * empty_hours,
        "detections": int(metrics["entries_detected"]),
        "presence_events": int(metrics["entries"]),
        "n_captures": int(metrics["n_captures"]),
        "n_captures_skipped": int(metrics["n_captures_skipped"]),
        "false_alarms_per_empty_hour": metrics["false_triggers_per_empty_hour"],
        "recall": metrics["entry_recall"],
    }
