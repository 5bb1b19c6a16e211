"""A dialogue-only fleet: many device-days of voice and routine logs in seconds, for self-learning.

Rendering ultrasound is what makes fleet.simulate slow, and the dialogue self-learning needs many
device-days of sessions. Here each unit of the field population plans its day as usual
(fleet.timeline.plan: the same rooms, people, playback) and a stand-in for the presence detector
decides motion from the plan itself: it sees every major motion, each minor-motion event with
`minor_detect_prob` (so still readers are missed now and then) and fires on each nuisance event
with `nuisance_trigger_prob`. The dialogue (fleet.dialogue.build_dialogue, the fleet's confusion
table) follows, and what really failed goes to truth_dir/dialogue_truth.jsonl.

Writes raw_dir/dialogue.jsonl only (no captures: ingest would quarantine it as a capture batch;
flows.field_logs reads such a batch as dialogue-only) and truth_dir/dialogue_truth.jsonl.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from common.io import atomic_write_jsonl
from fleet.config import sim_section
from fleet.dialogue import DialogueLog, build_dialogue, confusion_table
from fleet.simulate import DIALOGUE_TRUTH_FILE, PRESET_CODE, day_start, fleet_unit
from fleet.timeline import plan, presence_intervals

PRESET = "field"


def stand_in_motion(events, n_blocks: int, block_s: float, rng, cfg: dict) -> np.ndarray:
    """bool [n_blocks]: what the stand-in detector calls motion, block by block."""
    motion = np.zeros(n_blocks, dtype=bool)
    for e in events:
        a, b = int(e.t0 / block_s), min(int(np.ceil(e.t1 / block_s)), n_blocks)
        if b <= a:
            continue
        if e.motion_class == "major":
            motion[a:b] = True
        elif e.motion_class == "minor":
            if rng.random() < cfg["minor_detect_prob"]:
                motion[a:b] = True
        elif rng.random() < cfg["nuisance_trigger_prob"]:
            motion[int(rng.integers(a, b))] = True
    return motion


def simulate_dialogue_fleet(
    n_devices: int,
    hours: float,
    seed: int,
    raw_dir: str | Path,
    truth_dir: str | Path,
    sim: dict | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Dialogue logs of field units 0..n_devices-1 over `hours` each → counts of what was generated.

    progress: called with the number of devices done after each one.
    """
    sim = sim_section(sim)
    cfg = sim["dialogue_fleet"]
    if n_devices < 1 or hours <= 0:
        raise ValueError("n_devices must be >= 1 and hours > 0")
    block_s = float(sim["policy"]["energy_block_s"])
    n_blocks = round(hours * 3600 / block_s)
    confusions = confusion_table(int(sim["fleet_seed"]), sim["dialogue"])
    rows, truth, counts = [], [], {}
    batch_id = Path(raw_dir).name
    for index in range(n_devices):
        dev, room = fleet_unit(PRESET, index, {**sim, "calibration": {"enabled": False}})
        rng = np.random.default_rng([int(seed), PRESET_CODE[PRESET], index, 0xD1A])
        the_plan = plan(PRESET, hours * 3600.0, rng, room, sim)
        motion = stand_in_motion(the_plan.events, n_blocks, block_s, rng, cfg)
        log = DialogueLog(dev.device_id, day_start(sim, seed, index), batch_id)
        device_truth: list[dict] = []
        part = build_dialogue(
            log,
            presence_intervals(the_plan.events),
            the_plan.playback,
            the_plan.voice_started,
            motion,
            block_s,
            rng,
            sim["dialogue"],
            device_truth,
            confusions,
        )
        rows += log.sorted_rows()
        truth += [{**r, "device_id": dev.device_id} for r in device_truth]
        for k, v in part.items():
            counts[k] = counts.get(k, 0) + v
        if progress is not None:
            progress(index + 1)
    atomic_write_jsonl(Path(raw_dir) / "dialogue.jsonl", rows)
    atomic_write_jsonl(Path(truth_dir) / DIALOGUE_TRUTH_FILE, truth)
    return {"devices": n_devices, "hours": hours, "events": len(rows), "interactions": len(truth), **counts}
