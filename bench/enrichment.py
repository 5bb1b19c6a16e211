"""Measure the rare-event trigger's effect: share of rare events among uploads, factory vs bundle.

The same simulated devices and seeds run twice: with the factory policy (energy detector + random
sample) and with a bundle folder carrying the classifier, its detector config and the rare-event
trigger. A capture counts as a rare event when its truth holds any event of a type in fleet's
RARE list (every non-presence type: fans, curtains, HVAC, pets, vacuums, other devices, repellers,
clatter, music); evaluation-side code, so reading truth here is allowed (it only scores the result).
It drives the simulator, so it lives in bench/ (mining/ runs on a real fleet's logs). Both fleets
calibrate at first boot with the run's calibration config, as the turn's simulate stage does.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from common.io import atomic_write_bytes, atomic_write_json


def rare_upload_share(raw_dir: str | Path, truth_dir: str | Path) -> dict:
    """Uploaded captures, how many hold a rare event, the share, and counts by trigger."""
    from fleet.events import RARE

    captures = [
        json.loads(x) for x in (Path(raw_dir) / "captures.jsonl").read_text().splitlines() if x.strip()
    ]
    rare_ids: set[str] = set()
    truth = Path(truth_dir) / "events.jsonl"
    for line in truth.read_text().splitlines() if truth.exists() else []:
        if line.strip():
            ev = json.loads(line)
            if ev["event_type"] in RARE:
                rare_ids.add(ev["capture_id"])
    by_trigger: dict[str, dict[str, int]] = {}
    for c in captures:
        t = by_trigger.setdefault(c["trigger"], {"captures": 0, "rare": 0})
        t["captures"] += 1
        t["rare"] += int(c["capture_id"] in rare_ids)
    n_rare = sum(int(c["capture_id"] in rare_ids) for c in captures)
    return {
        "captures": len(captures),
        "rare_captures": n_rare,
        "rare_share": n_rare / len(captures) if captures else 0.0,
        "by_trigger": by_trigger,
    }


def write_bundle_folder(
    out_dir: Path, model: Path, frontend: dict, detector: dict, rare_event_onnx: bytes | None
) -> Path:
    """A minimal unsigned bundle folder (payload/) that fleet.bundle_runner can run on a simulated device."""
    payload = Path(out_dir) / "payload"
    payload.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(payload / "model_int8.onnx", Path(model).read_bytes())
    atomic_write_json(payload / "frontend.json", frontend)
    atomic_write_json(payload / "detector.json", detector)
    if rare_event_onnx is not None:
        atomic_write_bytes(payload / "rare_event.onnx", rare_event_onnx)
    return Path(out_dir)


def measure_enrichment(
    params: dict,
    work_dir: str | Path,
    bundle_dir: str | Path,
    n_devices: int,
    hours: float,
    seed: int,
    factory_batch: tuple[Path, Path] | None = None,
) -> dict:
    """Simulate the field fleet with the factory policy and with the bundle; compare rare shares.

    factory_batch: (raw_dir, truth_dir) of an already simulated factory batch with the same devices,
    hours and seed (saves one simulation).
    """
    from fleet.simulate import simulate_batch

    work_dir = Path(work_dir)
    sim = params["simulate"]
    calibration = params.get("calibration", {}).get("config")
    if factory_batch is None:
        factory_batch = (work_dir / "raw" / "factory", work_dir / "truth" / "factory")
        simulate_batch(
            "field",
            n_devices,
            hours,
            seed,
            *factory_batch,
            batch_id="factory",
            sim_params=sim,
            calibration=calibration,
        )
    with_bundle = (work_dir / "raw" / "rare-trigger", work_dir / "truth" / "rare-trigger")
    if with_bundle[0].exists():  # simulate_batch refuses to overwrite a batch
        shutil.rmtree(with_bundle[0])
        shutil.rmtree(with_bundle[1], ignore_errors=True)
    simulate_batch(
        "field",
        n_devices,
        hours,
        seed,
        *with_bundle,
        batch_id="rare-trigger",
        bundle_path=bundle_dir,
        sim_params=sim,
        calibration=calibration,
    )
    before, after = rare_upload_share(*factory_batch), rare_upload_share(*with_bundle)
    return {"factory": before, "rare_trigger": after, **enrichment_figures(before, after)}


def enrichment_figures(before: dict, after: dict) -> dict:
    """enrichment: rare share of all uploads, with the trigger over without (the issue's definition);
    enrichment_vs_sample: rare share of the trigger's own uploads over that of the random sample, the
    other channel a fleet can collect rare events with (detection uploads are there for detections);
    rare_captures_ratio: rare captures uploaded, with over without."""

    def share(doc: dict, trigger: str) -> float | None:
        t = doc["by_trigger"].get(trigger)
        return t["rare"] / t["captures"] if t and t["captures"] else None

    trigger_share, sample_share = share(after, "rare_event"), share(before, "sample")
    return {
        "enrichment": after["rare_share"] / before["rare_share"] if before["rare_share"] > 0 else None,
        "trigger_rare_share": trigger_share,
        "sample_rare_share": sample_share,
        "enrichment_vs_sample": trigger_share / sample_share if trigger_share and sample_share else None,
        "rare_captures_ratio": (
            after["rare_captures"] / before["rare_captures"] if before["rare_captures"] else None
        ),
    }
