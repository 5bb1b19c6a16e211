"""What the turn page shows beyond report.md's tables, read from what the stages left on disk.

One small reader per page section, each returning a JSON-able dict for report.json, or None when the
turn did not produce it (the page then says "not measured in this turn"). The evaluation's episode
figures are read, never computed here: the key names live in EPISODE_KEYS and the readers below.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from common.io import read_json
from common.paths import Paths

# Episode-based figures of an evaluation summary (training/evaluate.py), shown per detector: key -> label
EPISODE_FIGURES = {
    "false_triggers_per_empty_hour": "false triggers per empty hour (1/h)",
    "false_triggers_per_device_day": "false triggers per device-day (1/day)",
    "entry_recall": "entry recall",
    "entry_latency_median_s": "entry latency, median (s)",
    "entry_latency_p95_s": "entry latency, 95th percentile (s)",
    "false_absences_per_occupied_hour": "false absences per occupied hour (1/h)",
    "occupied_absent_fraction": "occupied time reported absent (fraction)",
    "empty_present_fraction": "empty time reported present (fraction)",
    "empty_hours": "empty hours measured (h)",
    "occupied_hours": "occupied hours measured (h)",
    "device_days": "device-days measured (day)",
}
EPISODE_KEYS = tuple(EPISODE_FIGURES)
# evaluation JSON per detector shown on the page: (name on the page, evaluation folder, file)
DETECTORS = (
    ("seed", "seed", "int8.json"),
    ("retrained", "retrained", "int8.json"),
    ("cfar", "cfar", "cfar.json"),
    # the same detectors on the household eval set (docs/evaluation.md): per device-day
    ("seed household", "seed", "household.json"),
    ("retrained household", "retrained", "household.json"),
    ("cfar household", "cfar", "household.json"),
)
EPISODES_FILE = "episodes.jsonl"


def in_detector_order(by_detector: dict) -> dict:
    """by_detector re-ordered seed, retrained, cfar (report.json stores keys sorted), others after."""
    rank = {name: i for i, (name, _, _) in enumerate(DETECTORS)}
    return dict(sorted(by_detector.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))


def _load(path: Path) -> dict | None:
    return read_json(path) if path.exists() else None


def detector_results(paths: Paths) -> dict[str, dict]:
    """The evaluation summary of each detector of DETECTORS that this turn evaluated."""
    out = {}
    for name, folder, file in DETECTORS:
        result = _load(paths.evaluation(folder) / file)
        if result is not None:
            out[name] = result
    return out


def episode_metrics(result: dict) -> dict | None:
    """EPISODE_KEYS of one evaluation summary; None when the evaluation has none of them."""
    if not any(k in result for k in EPISODE_KEYS):
        return None
    return {k: result.get(k) for k in EPISODE_KEYS}


def det_curve(result: dict) -> dict | None:
    """{"curve": [points], "operating_point": point | None} of one detector, or None when not measured."""
    curve = result.get("det_curve")
    if not curve:
        return None
    return {"curve": list(curve), "operating_point": result.get("operating_point")}


def false_triggers_by_type(result: dict) -> dict | None:
    """{nuisance type: {"count", "hours", "per_hour"}} of one detector, or None when not measured."""
    by_type = result.get("false_triggers_by_type")
    return dict(by_type) if by_type else None


def episodes_path(paths: Paths, folder: str) -> Path:
    """The episode rows (one per entry, false trigger, ...) beside a detector's evaluation summary."""
    return paths.evaluation(folder) / EPISODES_FILE


def bundle_manifest(paths: Paths) -> dict | None:
    """The turn bundle's manifest (unverified: the page only shows it), or None without a bundle."""
    if not paths.bundle.exists():
        return None
    from deploy.staged import read_bundle_manifest

    return read_bundle_manifest(paths.bundle)


def bundle_member_json(paths: Paths, name: str) -> dict | None:
    """A JSON file of the bundle's payload (e.g. mbdp.json), or None when the bundle or file is missing."""
    import json
    import tarfile

    if not paths.bundle.exists():
        return None
    with tarfile.open(paths.bundle) as tar:
        try:
            member = tar.extractfile(f"payload/{name}")
        except KeyError:
            return None
        return json.loads(member.read()) if member is not None else None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def lineage(paths: Paths, manifest: dict | None) -> dict | None:
    """Bundle sha256 and the manifest's lineage: git revision, params hash, hashes of the training data."""
    if manifest is None:
        return None
    return {
        "bundle": str(paths.bundle),
        "bundle_sha256": file_sha256(paths.bundle),
        "version": manifest.get("version"),
        "release_counter": manifest.get("release_counter"),
        "model": (manifest.get("release") or {}).get("model"),
        "git_revision": manifest.get("git_revision"),
        "params_hash": manifest.get("params_hash"),
        "data_hashes": manifest.get("data_hashes") or {},
    }


def rollout(paths: Paths, manifest: dict | None, fleet_dir: Path) -> dict | None:
    """The staged rollout of this turn's bundle (deploy.staged's decision log), when one ran."""
    if manifest is None:
        return None
    from deploy.staged import decision_log_path

    log_file = decision_log_path(fleet_dir, {"release_counter": int(manifest["release_counter"])})
    log = _load(log_file)
    if log is None:
        return None
    summary = log.get("summary") or {}
    gate = summary.get("gate") or {}
    return {
        "decision_log": str(log_file),
        "outcome": log.get("outcome"),
        "proceed": summary.get("proceed"),
        "canaries": summary.get("canaries"),
        "rest_installed": summary.get("rest_installed"),
        "rest_refused": summary.get("rest_refused"),
        "rolled_back": summary.get("rolled_back"),
        "gate_reasons": gate.get("reasons"),
        "canary_numbers": gate.get("numbers"),
        "decisions": [
            {k: e.get(k) for k in ("step", "decision", "reasons")} for e in log.get("decisions", [])
        ],
    }


def calibration_units(paths: Paths, deployment: dict | None, fleet_dir: Path) -> list[dict]:
    """Chosen carrier and emission level per calibrated unit: the turn's device, then the fleet's."""
    units = []
    if deployment and deployment.get("calibration"):
        cal = deployment["calibration"]
        device = Path(str((deployment.get("status") or {}).get("device", "turn device"))).name
        units.append(
            {
                "device": device,
                "source": "deploy.json",
                "carrier_hz": cal["carrier_hz"],
                "emission_db": cal["emission_db"],
                "snr_db": cal.get("snr_db"),
                "interferers": cal.get("interferers"),
                "action": cal.get("action"),
            }
        )
    if fleet_dir.is_dir():
        for record_file in sorted(fleet_dir.glob("*/calibration.json")):
            rec = read_json(record_file)
            units.append(
                {
                    "device": record_file.parent.name,
                    "source": str(record_file),
                    "carrier_hz": rec["carrier_hz"],
                    "emission_db": rec["emission_db"],
                    "snr_db": rec.get("snr_db_at_emission"),
                    "interferers": len(rec.get("interferers", [])),
                    "action": "calibrated",
                }
            )
    return units


def crossover(paths: Paths) -> dict | None:
    """The shipped MBDP crossover (bundle's mbdp.json): profile, sample rate, crossover frequencies."""
    tuning = bundle_member_json(paths, "mbdp.json")
    if tuning is None:
        return None
    from runtime.mbdp import tuning_configs

    cfg = tuning_configs(tuning)["playback"]
    return {"profile": tuning.get("profile"), "fs_hz": cfg.fs_hz, "crossovers_hz": list(cfg.crossovers_hz)}
