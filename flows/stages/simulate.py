"""Stage family `simulate@<batch>`: one simulated batch of raw logs and its ground truth. A batch spec
with a `bundle` (a bundle folder or tar, fleet.bundle_runner) has its units run that bundle: its
detections and rare-event trigger decide what they upload (the experiment's closed loop)."""

from __future__ import annotations

import time

from common.paths import Paths
from flows.stages.base import SIMULATED, StageTemplate, record


def simulate(params: dict, paths: Paths, batch: str) -> dict:
    from fleet.simulate import simulate_batch

    started = time.perf_counter()
    spec = params["simulate"]["batches"][batch]
    summary = simulate_batch(
        spec["preset"],
        int(spec["devices"]),
        float(spec["hours"]),
        int(spec["seed"]),
        paths.raw(batch),
        paths.truth(batch),
        batch_id=batch,
        bundle_path=spec.get("bundle"),
        sim_params=params["simulate"],
        calibration=params["calibration"]["config"],
    )
    return record(paths.raw(batch), f"simulate@{batch}", started, summary)


TEMPLATES = (
    StageTemplate(
        "simulate",
        simulate,
        lambda p, b: [],
        lambda p, b: [p.raw(b), p.truth(b)],
        ("simulate", "calibration.config"),
        items=SIMULATED,
    ),
)
