"""Simulate a batch of device uploads for a preset (seed | field | eval) → raw logs + truth.

Per device: draw the unit and its room (stable per fleet seed, so field devices stay the same
across turns; eval devices are a held-out set), plan the timeline, then walk the day capture by
capture: the device's detector looks at one microphone, the upload policy decides, and only the
kept captures are rendered on all microphones and streamed to disk. Dialogue follows from the
plan, the truth and the device's own motion decisions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.io import atomic_save_npy, atomic_write_bytes, atomic_write_jsonl
from fleet.config import factory_calibration, sim_section
from fleet.devices import Device, make_device
from fleet.dialogue import DialogueLog, build_dialogue, confusion_table, iso_ms
from fleet.passband import render_passband, wav_bytes
from fleet.policy import EnergyDetector, UploadPolicy
from fleet.rooms import Room, make_room
from fleet.scenes import DeviceScene
from fleet.timeline import plan, presence_intervals
from fleet.writer import open_batch, truth_rows

PRESET_CODE = {"seed": 1, "field": 2, "eval": 3, "household": 4}
ID_PREFIX = {"seed": "lab", "field": "dev", "eval": "evl", "household": "hh"}
CONTINUOUS = ("eval", "household")  # every capture rendered and uploaded: held-out evaluation sets


def fleet_unit(preset: str, index: int, sim: dict, calibration: dict | None = None) -> tuple[Device, Room]:
    """The physical unit and room of device `index` in the preset's population.

    Field and eval units calibrate at first boot with runtime.calibration (the config of the bundle
    they run, `calibration`, or fleet.config.factory_calibration when None): the record's carrier and emission
    level are what the unit emits and logs. simulate.calibration.enabled false falls back to the
    factory heuristic (any candidate carrier within 3 dB of the unit's loudest, factory level).
    Lab units record at the lab carriers.
    """
    if preset not in PRESET_CODE:
        raise ValueError(f"unknown preset {preset!r} (known: {', '.join(PRESET_CODE)})")
    rng = np.random.default_rng(unit_key(preset, index, sim))
    names = list(sim["profiles_mix"])
    weights = np.array([sim["profiles_mix"][k] for k in names], dtype=float)
    prof = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    dev = make_device(prof, f"{ID_PREFIX[preset]}-{index:04d}", float(sim["carriers_hz"][0]), rng)
    cal = sim.get("calibration", {})
    if preset == "seed":
        dev = dataclasses.replace(
            dev, carrier_hz=float(sim["lab_carriers_hz"][index % len(sim["lab_carriers_hz"])])
        )
    elif cal.get("enabled", False):
        record = _first_boot_calibration(
            dev, cal, calibration, [int(sim["fleet_seed"]), PRESET_CODE[preset], index]
        )
        dev = dataclasses.replace(dev, carrier_hz=record.carrier_hz, emission_db=record.emission_db)
    else:
        carriers = np.asarray(sim["carriers_hz"], dtype=float)
        response = dev.speaker_db(carriers)
        dev = dataclasses.replace(
            dev, carrier_hz=float(rng.choice(carriers[response >= response.max() - 3.0]))
        )
    return dev, make_room(dev.height_m, rng)


def _first_boot_calibration(dev: Device, cal: dict, config: dict | None, key: list[int]):
    """The unit's calibration record: sweep and silent capture through its simulated hardware."""
    from fleet.calibration_hal import calibrate_unit, unit_hal
    from runtime.calibration import CalibrationConfig

    cfg = CalibrationConfig.from_dict(config or factory_calibration())
    return calibrate_unit(dev, cfg, unit_hal(dev, cal, key, cfg.fs_hz))


def sensing_mbdp(tuning: dict | None):
    """The MBDP config a unit plays through while it senses presence: the tuning's sensing mode."""
    if tuning is None:
        return None
    from runtime.mbdp import tuning_configs

    return tuning_configs(tuning)["sensing"]


def unit_key(preset: str, index: int, sim: dict) -> list[int]:
    """The seed key of a unit: its manufacturing draws, its room and its home's interferer."""
    return [int(sim["fleet_seed"]), PRESET_CODE[preset], index]


def day_start(sim: dict, seed: int, index: int) -> dt.datetime:
    epoch = dt.datetime.fromisoformat(str(sim["epoch"]).replace("Z", "+00:00"))
    return epoch + dt.timedelta(days=int(seed) % 3650, minutes=7 * index)


@dataclass
class DeviceJob:
    preset: str
    index: int
    n_chunks: int
    seed: int
    batch_id: str
    raw_tmp: str
    sim: dict
    bundle_path: str | None
    calibration: dict | None = None  # factory calibration config (a bundle brings its own)
    mbdp: dict | None = None  # MBDP tuning (a bundle's mbdp.json) when no bundle brings its own


@dataclass
class DeviceOutput:
    captures: list[dict] = field(default_factory=list)
    truth: list[dict] = field(default_factory=list)
    dialogue: list[dict] = field(default_factory=list)
    dialogue_truth: list[dict] = field(default_factory=list)  # what really failed, per interaction
    triggers: dict = field(default_factory=dict)
    event_s: dict = field(default_factory=dict)
    dialogue_counts: dict = field(default_factory=dict)
    firmware: str = "factory"
    cpu_s: float = 0.0


def simulate_device(job: DeviceJob) -> DeviceOutput:
    """One device's day: plan, detector + upload policy per capture, kept captures to disk, dialogue."""
    cpu0 = time.process_time()
    sim, preset, i = job.sim, job.preset, job.index
    fs, capture_s, pol = float(sim["fs_hz"]), float(sim["capture_s"]), sim["policy"]
    n_per = round(capture_s * fs)
    out = DeviceOutput()
    runner = None
    if job.bundle_path is not None and preset != "seed":
        from fleet.bundle_runner import BundleRunner

        runner = BundleRunner(job.bundle_path, fs, pol["energy_block_s"], pol["rare_event_threshold"])
        out.firmware = runner.version
    dev, room = fleet_unit(preset, i, sim, runner.calibration if runner is not None else job.calibration)
    rng = np.random.default_rng([int(job.seed), PRESET_CODE[preset], i])
    tuning = runner.mbdp_tuning if runner is not None else job.mbdp
    the_plan = plan(preset, job.n_chunks * capture_s, rng, room, sim, sensing_mbdp(tuning))
    episode_ids = {id(e): f"{dev.device_id}-e{k:05d}" for k, e in enumerate(the_plan.events)}
    for e in the_plan.events:
        out.event_s[e.event_type] = out.event_s.get(e.event_type, 0.0) + e.t1 - e.t0
    scene = DeviceScene(dev, room, the_plan.events, fs, int(rng.integers(2**62)))
    start = day_start(sim, job.seed, i)
    detector = EnergyDetector(fs, pol)
    policy = UploadPolicy(pol, capture_s, np.random.default_rng(rng.integers(2**62)))
    motion_all = []
    n_pcm = 0
    for c in range(job.n_chunks):
        t0 = c * capture_s
        full = None if preset == "field" else scene.render(c, n_per)
        if full is None and not scene.overlapping(t0, t0 + capture_s):
            motion = detector.quiet(n_per, dev.noise_sigma())  # nothing there: skip rendering
        else:
            first = scene.render(c, n_per, mics=np.array([0])) if full is None else full[:1]
            motion = detector.process(first[0])
        detected, rare = bool(motion.any()), False
        if (
            runner is not None
            and detector.last_scores.max() > pol["energy_threshold_db"] - pol["bundle_gate_margin_db"]
        ):
            full = scene.render(c, n_per) if full is None else full
            res = runner.run(full, dev.carrier_hz)
            motion, detected = res.motion_blocks, res.detected
            rare = res.rare_score > runner.rare_threshold
        elif runner is not None:
            motion = np.zeros_like(motion)  # the bundle's pipeline sleeps while the energy gate is closed
        motion_all.append(motion)
        if preset == "seed":
            trigger = "collection"
        elif preset in CONTINUOUS:
            trigger = "sample"
        else:
            trigger = policy.decide(t0, detected, rare)
        if trigger is None:
            continue
        cid = f"{job.batch_id}-{dev.device_id}-{c:06d}"
        file_fs = fs
        if (
            preset == "seed"
            and n_pcm < sim["seed_preset"]["pcm_clips_per_device"]
            and scene.overlapping(t0, t0 + capture_s)
        ):
            # a lab take recorded as raw passband: ingest demodulates it with runtime.demod
            file_fs = float(sim["passband_fs_hz"])
            rel = f"pcm/{cid}.wav"
            pcm = render_passband(scene, t0, capture_s, file_fs)
            atomic_write_bytes(Path(job.raw_tmp) / rel, wav_bytes(pcm, file_fs))
            n_pcm += 1
        else:
            full = scene.render(c, n_per) if full is None else full
            rel = f"iq/{cid}.npy"
            atomic_save_npy(Path(job.raw_tmp) / rel, full)
        out.captures.append(
            {
                "capture_id": cid,
                "device_id": dev.device_id,
                "profile": dev.profile,
                "t_start": iso_ms(start + dt.timedelta(seconds=t0)),
                "duration_s": capture_s,
                "carrier_hz": dev.carrier_hz,
                "fs_hz": file_fs,
                "n_mics": dev.n_mics,
                "emission_db": dev.emission_db,
                "firmware": out.firmware,
                "trigger": trigger,
                "playback_volume": scene.playback_volume(t0, t0 + capture_s),
                "file": rel,
            }
        )
        out.truth += truth_rows(cid, scene.overlapping(t0, t0 + capture_s), t0, capture_s, episode_ids)
        out.triggers[trigger] = out.triggers.get(trigger, 0) + 1
    if preset != "seed":  # lab sessions: scripted takes, no household and no voice assistant
        log = DialogueLog(dev.device_id, start, job.batch_id)
        out.dialogue_counts = build_dialogue(
            log,
            presence_intervals(the_plan.events),
            the_plan.playback,
            the_plan.voice_started,
            np.concatenate(motion_all),
            pol["energy_block_s"],
            rng,
            sim["dialogue"],
            out.dialogue_truth,
            confusion_table(int(sim["fleet_seed"]), sim["dialogue"]),
        )
        out.dialogue = log.sorted_rows()
        for row in out.dialogue_truth:
            row["device_id"] = dev.device_id
    out.cpu_s = time.process_time() - cpu0
    return out


DIALOGUE_TRUTH_FILE = "dialogue_truth.jsonl"


def write_dialogue_truth(truth_dir: Path, rows: list[dict]) -> None:
    """truth_dir/dialogue_truth.jsonl: per interaction, its event ids and the component that really failed."""
    atomic_write_jsonl(Path(truth_dir) / DIALOGUE_TRUTH_FILE, rows)


def _add(total: dict, part: dict) -> None:
    for k, v in part.items():
        total[k] = total.get(k, 0) + v


def simulate_batch(
    preset: str,
    n_devices: int,
    hours: float,
    seed: int,
    raw_dir: str | Path,
    truth_dir: str | Path,
    batch_id: str | None = None,
    bundle_path: str | Path | None = None,
    sim_params: dict | None = None,
    calibration: dict | None = None,
    mbdp: dict | None = None,
) -> dict:
    """Write raw_dir/{captures.jsonl, dialogue.jsonl, iq/*.npy} and truth_dir/{events,dialogue_truth}.jsonl.

    calibration: the factory calibration config units calibrate with at first boot (params
    `calibration.config`; None: fleet.config.factory_calibration); units running a bundle use its own.
    mbdp: an MBDP tuning (runtime.mbdp.bundle_tuning's format) every unit plays music through while
    it senses; units running a bundle use the bundle's payload/mbdp.json; None: raw playback.

    Devices are independent and run in `simulate.workers` processes; the output does not depend
    on the number of workers (each device has its own seeds; rows are merged in device order).
    """
    sim = sim_section(sim_params)
    if preset not in PRESET_CODE:
        raise ValueError(f"unknown preset {preset!r} (known: {', '.join(PRESET_CODE)})")
    if n_devices < 1 or hours <= 0:
        raise ValueError("n_devices must be >= 1 and hours > 0")
    if bundle_path is not None and not Path(bundle_path).exists():
        raise FileNotFoundError(f"bundle {bundle_path} not found")
    sensing_mbdp(mbdp)  # a bad tuning fails here, not in a worker
    batch_id = batch_id or Path(raw_dir).name
    capture_s = float(sim["capture_s"])
    n_chunks = max(1, round(hours * 3600 / capture_s))
    wall0 = time.perf_counter()
    workers = max(1, min(int(sim.get("workers", 1)), n_devices))
    totals: dict[str, dict] = {"triggers": {}, "event_s": {}, "dialogue": {}}
    cpu, firmware = 0.0, "factory"
    dialogue_truth: list[dict] = []
    with open_batch(raw_dir, truth_dir) as writer:
        jobs = [
            DeviceJob(
                preset,
                i,
                n_chunks,
                int(seed),
                batch_id,
                str(writer.raw),
                sim,
                bundle_path and str(bundle_path),
                calibration,
                mbdp,
            )
            for i in range(n_devices)
        ]
        if workers == 1:
            outputs = map(simulate_device, jobs)
            pool = None
        else:
            # fork (Linux's default in 3.11): "spawn" would re-import the caller's __main__, which
            # breaks plain scripts; workers only run numpy code and this package. Forking a process
            # with other threads running (a Prefect task runner) can deadlock on a lock another
            # thread held, so from a non-main thread use forkserver (a clean single-threaded parent).
            in_main_thread = threading.current_thread() is threading.main_thread()
            method = (
                "fork"
                if in_main_thread and "fork" in multiprocessing.get_all_start_methods()
                else "forkserver"
            )
            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method))
            outputs = pool.map(simulate_device, jobs)
        try:
            for res in outputs:
                writer.captures += res.captures
                writer.events += res.truth
                writer.add_dialogue(res.dialogue)
                dialogue_truth += res.dialogue_truth
                _add(totals["triggers"], res.triggers)
                _add(totals["event_s"], res.event_s)
                _add(totals["dialogue"], res.dialogue_counts)
                cpu += res.cpu_s
                firmware = res.firmware
        finally:
            if pool is not None:
                pool.shutdown()
        write_dialogue_truth(writer.truth, dialogue_truth)
        n_caps, n_dialogue, n_truth = len(writer.captures), len(writer.dialogue), len(writer.events)
    simulated_s = n_devices * n_chunks * capture_s
    return {
        "batch_id": batch_id,
        "preset": preset,
        "n_devices": n_devices,
        "hours": hours,
        "seed": seed,
        "firmware": firmware,
        "n_captures": n_caps,
        "n_truth_events": n_truth,
        "n_dialogue_events": n_dialogue,
        "triggers": totals["triggers"],
        "simulated_s": simulated_s,
        "uploaded_s": n_caps * capture_s,
        "upload_fraction": n_caps * capture_s / simulated_s,
        "event_fraction": {k: v / simulated_s for k, v in sorted(totals["event_s"].items())},
        "dialogue": totals["dialogue"],
        "workers": workers,
        "cpu_s": cpu,
        "wall_s": time.perf_counter() - wall0,
        "device_seconds_per_cpu_second": simulated_s / max(cpu, 1e-9),
    }
