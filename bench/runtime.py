"""`flywheel bench runtime`: the DSP figures (dsp_figures: canceller suppression and walker loss on a
synthetic 4-mic scene, front-end and demodulator speed per core) and the detector's figures on
the simulator (detector_figures: latency and emission duty cycle). Measures and returns figures.

Suppression is the Doppler-band power of the playback distortion with the canceller off over
on. The canceller's signature is estimated adaptively from the whole scene (direct path + room
reflections with temperature drift + distortion + walker + noise), and so is its per-bin gate
(runtime.canceller); the front-end is linear in power once the signature and the gate are fixed,
so each component's own contribution is measured by passing its clutter residual through the
same frames with the whole scene's signature and gate. Room reflections carry the distortion
sidebands with a delay, hence a different spatial signature than the carrier: they bound the
suppression (about the direct-to-room ratio). `canceller_suppression_db_rank_one` is the ideal
direct-path-only case. `canceller_plain_*` are the same figures for the ungated rank-one
projection (every bin projected), for comparison.

Walker loss: a plane-wave walker echo swept over walker_sweep_deg (start, stop, step; 1 degree by
default: the losses peak in lobes a few degrees wide), with music at the loudest volume and
without music. `walker_loss_db` is the worst over the sweep (all of it is 30 degrees or more off
the direct path), `walker_loss_db_median` the median, `walker_loss_db_per_angle` the listed
walker_angles_deg. Why some angles lose a lot: 4 mics on a 3.5 cm circle at 40 kHz are about 8
wavelengths round, so the array is spatially aliased; an echo from angle a overlaps the direct
path's signature u by |u^H a(angle)|^2, e.g. cos^2(kr), about 0.8, at 90 degrees, and nearly 1 in
grating lobes (near 89, 103 and 165 degrees for the bench unit). Whatever is along u cannot be told
from playback distortion by its spatial signature, so any canceller that removes the
distortion removes that part of such an echo: 1 - |u^H a|^2 is kept, an inherent loss of this
geometry, not of the algorithm. The plain projection pays it at every angle all the time; the gated
canceller only in the bins where the energy is direct-path-like (music, or echoes in a grating lobe).

Detector figures (detector_figures):

- model: the last turn's bundle when one exists (bench.runtime.detector.bundles, {turn} = turn.id),
  run through runtime.pipeline.DevicePipeline with the bundle's own front-end and detector configs, as
  fleet/bundle_runner.py and training/evaluate.py do; otherwise a seed model trained on the spot
  through the real stage functions (flows.stages: simulate + ingest of a small seed batch and of a
  small eval batch for export's int8 agreement gate -> label_seed -> train -> export), int8, with the
  thresholds training chose. The JSON says which (`detector_model`).
- latency_median_s, latency_p95_s: walk-ins into an empty room on held-out eval units
  (fleet.simulate.fleet_unit('eval', i), fleet.events.make_event('walk_in'), fleet.scenes.DeviceScene).
  Each clip is a stream with its walk-in as the one episode, counted by training.metrics'
  occupancy_metrics: entry latency from the walk's physical onset to the first present frame. Each
  clip starts lead_s before the walk so the detector is warm (a device runs continuously). A missed
  walk-in has no latency; latency_n and latency_missed say how many. Why not simulate_batch('eval'):
  walk-ins are one visit type in 20 there, so 40 of them would mean hours of 4-mic eval baseband
  written to disk; the clips use the same generators and units without the files.
- the household day (`day_*`, emission_duty_cycle, duty_cycling_*): one held-out household unit's
  day (fleet.timeline.plan('household', day.hours long), the planner of the household eval batch:
  sessions, still people, nuisances for hours). Stretches with events are rendered (scene.render per
  capture_s chunk, the samples simulate_batch would write) and run through the pipeline once; each is
  a stream with its episodes; the rest of the day is empty and absent (the simulator's own energy gate
  assumes the same), counted as one quiet stream. The detector runs twice on the same classifier
  outputs, duty cycling off and on (emission_off_s): frames while emission is off are ignored and the
  next context_frames - 1 frames too (warm-up), so the classifier only ever sees fresh frames. Not
  modelled: the clutter filter's transient when emission returns. Figures per training.metrics: false
  triggers per device-day, entry recall and latency, false absences per occupied hour, empty time
  reported present; duty cycle = emission-on time / day; `duty_cycling_*` say what switching emission
  off costs (held presence counts as present, as the device reports it; `*_fresh_decisions` counts only
  frames where the detector decided afresh).

Every size and seed is in params.yaml bench.runtime.detector (`quick` overrides for --quick).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bench.models import DeviceModel, bench_section, bundle_model, train_model
from bench.suites import merged_figures
from runtime.canceller import MIN_GATE_DB
from runtime.clutter import ClutterFilter
from runtime.demod import demodulate
from runtime.frontend import FrontendConfig, StreamingFrontend, extract_features, n_frames_for, velocity_axis
from runtime.synthetic import (
    ArrayGeometry,
    BassMusic,
    StaticPath,
    multipath_playback,
    passband_tone,
    room_paths,
    static_channel,
    walker_echo,
)

SETTLE_S = 1.0  # ignore the first second (clutter filter settling) in power measurements


@contextlib.contextmanager
def one_core() -> Iterator[None]:
    """Pin this process to one CPU while timing (Linux); elsewhere run unpinned."""
    if not hasattr(os, "sched_getaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _best_time(fn: Callable[[], Any], repeats: int) -> float:
    """Least CPU time (s) of this process over repeats: per-core work, robust to other load."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return max(best, 1e-9)


class _ComponentMeter:
    """Band power of one linear component of a scene, through the front-end with the scene's
    signature and the scene's per-bin canceller gate."""

    def __init__(self, cfg: FrontendConfig, carrier_hz: float, scene: np.ndarray, band_mps: float):
        self.cfg, self.carrier_hz = cfg, carrier_hz
        self.n_mics, n = scene.shape
        self.frontend = StreamingFrontend(cfg, cfg.baseband_fs_hz, carrier_hz, self.n_mics)
        residual, static = ClutterFilter(self.n_mics, cfg.clutter_tau_s, cfg.baseband_fs_hz).process(scene)
        self.n_frames = n_frames_for(n, cfg)
        self.scene_static = self.frontend._static_at_frame_ends(static, self.n_frames)  # [M, F]
        p_perp, p_along = self.frontend._bin_powers(residual, self.scene_static, self.n_frames)
        self.keep_along = self.frontend.canceller.keep_along(p_perp, p_along)  # the scene's gate [F, B]
        self.band = np.abs(velocity_axis(cfg)) >= band_mps
        self.skip = int(SETTLE_S * cfg.baseband_fs_hz / cfg.hop)

    def band_power(self, component: np.ndarray, canceller: bool) -> float:
        residual, _ = ClutterFilter(self.n_mics, self.cfg.clutter_tau_s, self.cfg.baseband_fs_hz).process(
            component
        )
        p_perp, p_along = self.frontend._bin_powers(residual, self.scene_static, self.n_frames)
        if canceller and self.frontend.canceller.active:
            power = np.where(self.keep_along, p_perp + p_along, p_perp)
        else:
            power = p_perp + p_along
        features = self.frontend._to_features(power)  # [F, V] dB
        return float(np.mean(10.0 ** (features[self.skip :, self.band] / 10.0)))


def sweep_angles(b: dict[str, Any], quick: bool) -> list[float]:
    """Walker angles of the sweep: walker_sweep_deg = [start, stop, step] (stop included), step x 5 quick."""
    start, stop, step = (float(x) for x in b["walker_sweep_deg"])
    step *= 5 if quick else 1
    angles = np.arange(start, stop + step / 2, step)
    listed = [float(a) for a in b["walker_angles_deg"]]
    return sorted({round(float(a), 3) for a in angles} | set(listed))


def _walker_loss(meter_scene: np.ndarray, walker: np.ndarray, cfg: FrontendConfig, f0: float, band: float):
    meter = _ComponentMeter(cfg, f0, (meter_scene + walker).astype(np.complex64), band)
    off, on = (meter.band_power(walker.astype(np.complex64), flag) for flag in (False, True))
    return float(10 * np.log10(off / on))


def _suppression_and_loss(
    cfg: FrontendConfig,
    b: dict[str, Any],
    quick: bool,
    room_level_db: float | None,
    angles: list[float] | None = None,
) -> tuple[list[float], dict[float, float], dict[float, float]]:
    """Per-volume distortion suppression (dB) and per-angle walker loss (dB) with music at the loudest
    volume and without music, for one room model. angles: None = walker_angles_deg."""
    rng = np.random.default_rng(int(b["seed"]))
    fs, f0, c = cfg.baseband_fs_hz, float(b["carrier_hz"]), cfg.speed_of_sound_mps
    n = int(float(b["capture_s"]) * fs / (2 if quick else 1))
    if n < 3 * SETTLE_S * fs:
        raise ValueError(f"bench capture_s too short: need {3 * SETTLE_S * (2 if quick else 1)} s or more")
    geometry = ArrayGeometry(int(b["n_mics"]), float(b["array_radius_m"]))
    paths = [StaticPath(static_channel(geometry, f0, c, rng), float(b["direct_path_m"]) / c)]
    if room_level_db is not None:
        paths += room_paths(geometry, f0, c, rng, int(b["room_paths"]), room_level_db)
    drift = np.linspace(0.0, float(b["temperature_drift_rad"]), n)
    noise_amp = float(b["noise_amplitude"])
    noise = noise_amp * (
        rng.standard_normal((geometry.n_mics, n)) + 1j * rng.standard_normal((geometry.n_mics, n))
    )
    silent = multipath_playback(paths, BassMusic.random(0.0, rng), n, fs, f0, c, drift)  # static paths only
    listed = [float(a) for a in b["walker_angles_deg"]]
    angles = listed if angles is None else angles
    speed, amplitude, band = (
        float(b["walker_speed_mps"]),
        float(b["walker_amplitude"]),
        float(b["motion_band_mps"]),
    )
    suppression = []
    for excursion_mm in b["excursion_mm"]:
        music = BassMusic.random(float(excursion_mm) * 1e-3, rng)
        playing = multipath_playback(paths, music, n, fs, f0, c, drift)
        distortion = (playing - silent).astype(np.complex64)
        walker = walker_echo(geometry, n, fs, f0, c, listed[0], speed, amplitude)
        meter = _ComponentMeter(cfg, f0, (playing + walker + noise).astype(np.complex64), band)
        off, on = (meter.band_power(distortion, flag) for flag in (False, True))
        suppression.append(float(10 * np.log10(off / on)))
    with_music, without_music = {}, {}
    for angle in angles:  # walker loss with music at the loudest volume, and in silence
        walker = walker_echo(geometry, n, fs, f0, c, angle, speed, amplitude)
        with_music[angle] = _walker_loss(playing + noise, walker, cfg, f0, band)
        without_music[angle] = _walker_loss(silent + noise, walker, cfg, f0, band)
    return suppression, with_music, without_music


def _loss_summary(prefix: str, loss: dict[float, float], listed: list[float]) -> dict[str, Any]:
    values = np.array(list(loss.values()))
    worst = max(loss, key=loss.get)
    return {
        f"{prefix}_db": float(values.max()),
        f"{prefix}_worst_angle_deg": worst,
        f"{prefix}_db_median": float(np.median(values)),
        f"{prefix}_share_over_3db": float(np.mean(values > 3.0)),
        f"{prefix}_db_per_angle": {f"{a:g}": round(loss[a], 3) for a in listed if a in loss},
    }


def _canceller_figures(cfg: FrontendConfig, b: dict[str, Any], quick: bool) -> dict[str, Any]:
    room_db = b.get("room_reflection_db")
    room = None if room_db is None else float(room_db)
    listed = [float(a) for a in b["walker_angles_deg"]]
    angles = sweep_angles(b, quick)
    if min(angles) < 30.0:
        raise ValueError("walker angles must be 30 degrees or more off the direct path")
    out: dict[str, Any] = {}
    plain_cfg = FrontendConfig.from_dict({**cfg.to_dict(), "canceller_gate_db": MIN_GATE_DB})
    for prefix, c in (("", cfg), ("plain_", plain_cfg)):
        suppression, music, silence = _suppression_and_loss(c, b, quick, room, angles)
        rank_one, _, _ = _suppression_and_loss(c, b, quick, None, [listed[0]])
        out.update(
            {
                f"canceller_{prefix}suppression_db": min(suppression),
                f"canceller_{prefix}suppression_db_per_volume": [round(x, 2) for x in suppression],
                f"canceller_{prefix}suppression_db_rank_one": min(rank_one),
                **_loss_summary(f"{prefix}walker_loss", music, listed),
                **_loss_summary(f"{prefix}walker_loss_no_music", silence, listed),
            }
        )
    gate = StreamingFrontend(cfg, cfg.baseband_fs_hz, float(b["carrier_hz"]), int(b["n_mics"])).canceller
    out["canceller"] = gate.describe()["canceller"]
    out["canceller_room_reflection_db"] = room_db
    out["walker_loss_worst_db"] = out["walker_loss_db"]
    out["walker_sweep"] = (
        f"{len(angles)} angles {min(angles):g}-{max(angles):g} deg; walker_loss_* with music at "
        f"{max(float(x) for x in b['excursion_mm'])} mm excursion, *_no_music in silence"
    )
    return out


def _speed_figures(cfg: FrontendConfig, b: dict[str, Any], quick: bool) -> dict[str, Any]:
    rng = np.random.default_rng(int(b["seed"]) + 1)
    f0, n_mics = float(b["carrier_hz"]), int(b["n_mics"])
    capture_s = float(b["speed_capture_s"]) / (6 if quick else 1)
    n = int(capture_s * cfg.baseband_fs_hz)
    iq = (rng.standard_normal((n_mics, n)) + 1j * rng.standard_normal((n_mics, n))).astype(np.complex64)
    iq += np.exp(1j * rng.uniform(0, 2 * np.pi, (n_mics, 1))).astype(np.complex64)
    fs_pcm = float(b["demod_fs_hz"])
    demod_s = float(b["demod_capture_s"]) / (5 if quick else 1)
    pcm = passband_tone(int(demod_s * fs_pcm), fs_pcm, f0 + 150.0, n_channels=n_mics)
    repeats = 3 if quick else 7  # least CPU time of these: robust to other load on a shared machine
    hop_block = np.array_split(iq[:, : cfg.hop * 200], 200, axis=1)

    def stream_hops() -> None:
        frontend = StreamingFrontend(cfg, cfg.baseband_fs_hz, f0, n_mics)
        for block in hop_block:
            frontend.process(block)

    with one_core():
        t_frontend = _best_time(lambda: extract_features(iq, cfg.baseband_fs_hz, f0, cfg), repeats)
        t_stream = _best_time(stream_hops, repeats)
        t_demod = _best_time(lambda: demodulate(pcm, fs_pcm, f0, cfg.baseband_fs_hz), repeats)
    return {
        "frontend_realtime_factor": capture_s / t_frontend,
        "frontend_streaming_realtime_factor": (200 * cfg.hop / cfg.baseband_fs_hz) / t_stream,
        "demod_realtime_factor": demod_s / t_demod,
        "speed_setup": f"{n_mics} mics, baseband {cfg.baseband_fs_hz:.0f} Hz, demod {n_mics} ch at "
        f"{fs_pcm:.0f} Hz, one pinned core, least process CPU time of {repeats}; "
        "streaming = one hop per call",
    }


def dsp_figures(params: dict[str, Any], quick: bool = False) -> dict[str, Any]:
    """The signal chain's own figures (no model, no simulator); params is the whole params dict."""
    cfg = FrontendConfig.from_dict(params["frontend"])
    bench = params["bench"]["runtime"]
    results: dict[str, Any] = {"quick": quick}
    results.update(_canceller_figures(cfg, bench, quick))
    results.update(_speed_figures(cfg, bench, quick))
    return results


# --- pure helpers ---------------------------------------------------------------------------------


def latency_stats(metrics: dict) -> dict[str, Any]:
    """The bench's latency keys from training.metrics' figures of the walk-in streams."""
    return {
        "latency_median_s": metrics["entry_latency_median_s"],
        "latency_p95_s": metrics["entry_latency_p95_s"],
        "latency_n": metrics["n_latencies"],
        "latency_missed": metrics["entries"] - metrics["entries_detected"],
    }


def active_segments(
    spans: list[tuple[float, float]], day_s: float, pre_s: float, post_s: float, chunk_s: float
) -> list[tuple[int, int]]:
    """Chunk ranges [c0, c1) of a day (chunks of chunk_s) covering every span padded by pre_s before
    and post_s after, merged where they touch; spans in absolute seconds."""
    n_chunks = int(np.ceil(day_s / chunk_s))
    ranges: list[list[int]] = []
    for a, b in sorted(spans):
        c0 = max(0, int(np.floor((a - pre_s) / chunk_s)))
        c1 = min(n_chunks, int(np.ceil((b + post_s) / chunk_s)))
        if c1 <= c0:
            continue
        if ranges and c0 <= ranges[-1][1]:
            ranges[-1][1] = max(ranges[-1][1], c1)
        else:
            ranges.append([c0, c1])
    return [(a, b) for a, b in ranges]


def observed_frames(emission_on: np.ndarray, context_frames: int) -> np.ndarray:
    """Frames [T] where the detector decided afresh: emission on and not in the context_frames - 1
    warm-up frames after emission returns (runtime.detector holds its state in both)."""
    on = np.asarray(emission_on, bool)
    observed = on.copy()
    returns = np.flatnonzero(on[1:] & ~on[:-1]) + 1  # first emission-on frame after an off run
    for start in returns:
        observed[start : start + context_frames - 1] = False
    return observed


# --- latency --------------------------------------------------------------------------------------


def _episodes(events, offset_s: float, tag: str) -> list:
    """training.metrics episodes of fleet events, in seconds from a stream starting at offset_s."""
    from training.metrics import Episode

    return [
        Episode(f"{tag}:{k}", e.event_type, e.is_presence, e.t0 - offset_s, e.t1 - offset_s, e.motion_class)
        for k, e in enumerate(events)
    ]


def _outcome(name: str, device_id: str, duration_s: float, times, present, onsets, strict=None):
    from training.metrics import StreamOutcome

    return StreamOutcome(name, device_id, duration_s, times, present, onsets, strict, [(name, 0.0)])


def _latency_figures(m: DeviceModel, params: dict, lat: dict) -> dict[str, Any]:
    from fleet.config import sim_section
    from fleet.events import make_event
    from fleet.scenes import DeviceScene
    from fleet.simulate import fleet_unit
    from runtime.pipeline import DevicePipeline
    from training.metrics import occupancy_metrics

    sim = sim_section(params)
    fs = float(sim["fs_hz"])
    pipeline = DevicePipeline(m.model, m.frontend, m.detector)
    rng = np.random.default_rng(int(lat["seed"]))
    lead, tail = float(lat["lead_s"]), float(lat["tail_s"])
    streams, profiles = [], {}
    units = [fleet_unit("eval", i, sim) for i in range(int(lat["units"]))]  # (device, room), calibrated
    for k in range(int(lat["walk_ins"])):
        dev, room = units[k % len(units)]
        t0 = lead + float(rng.uniform(0.0, 1.0))
        walk = make_event("walk_in", t0, 0.0, rng, room)
        n = int(np.ceil((walk.t1 + tail) * fs))
        scene = DeviceScene(dev, room, [walk], fs, int(rng.integers(2**62)))
        iq = scene.render_times(np.arange(n) / fs, noise_key=k)
        d = pipeline.run_capture(iq, fs, dev.carrier_hz)
        name = f"walkin-{k:04d}"
        out = _outcome(name, dev.device_id, n / fs, d.times_s, d.present, d.onset_times_s, d.onset_strict)
        streams.append((out, _episodes([walk], 0.0, name)))
        profiles[dev.profile] = profiles.get(dev.profile, 0) + 1
    stats = latency_stats(occupancy_metrics(streams)[0])
    stats["latency_setup"] = (
        f"{len(streams)} walk-ins into an empty room on the first {int(lat['units'])} held-out eval units "
        f"({', '.join(f'{v} on {k}' for k, v in sorted(profiles.items()))}), walk starting "
        f"{lead:g}-{lead + 1:g} s into each clip; latency = first present frame end time - the walk's "
        "onset (training.metrics)"
    )
    return stats


# --- household day ----------------------------------------------------------------------------------

DAY_FIGURES = (  # training.metrics figures reported for the household day, always on and duty cycled
    "false_triggers_per_device_day",
    "false_triggers_per_empty_hour",
    "entry_recall",
    "entry_latency_median_s",
    "entry_latency_p95_s",
    "false_absences_per_occupied_hour",
    "occupied_absent_fraction",
    "empty_present_fraction",
)


def _day_figures(m: DeviceModel, params: dict, day: dict) -> dict[str, Any]:
    from fleet.config import sim_section
    from fleet.scenes import DeviceScene
    from fleet.simulate import PRESET_CODE, fleet_unit
    from fleet.timeline import plan
    from runtime.detector import DetectorConfig, run_detector
    from runtime.pipeline import DevicePipeline
    from training.metrics import occupancy_metrics

    sim = sim_section(params)
    fs, chunk_s = float(sim["fs_hz"]), float(sim["capture_s"])
    n_per = round(chunk_s * fs)
    day_s = float(day["hours"]) * 3600.0
    always = DetectorConfig.from_dict({**m.detector, "duty_cycling": False})
    off_s = float(m.detector.get("emission_off_s") or 0.0) or float(day["emission_off_s"])
    duty = DetectorConfig.from_dict({**m.detector, "duty_cycling": True, "emission_off_s": off_s})
    pipeline = DevicePipeline(m.model, m.frontend, always)
    dev, room = fleet_unit("household", int(day["device"]), sim)
    rng = np.random.default_rng([int(day["seed"]), PRESET_CODE["household"], int(day["device"])])
    the_plan = plan("household", day_s, rng, room, sim)
    scene = DeviceScene(dev, room, the_plan.events, fs, int(rng.integers(2**62)))
    post = always.hold_s + off_s + always.context_frames * always.frame_hop_s + float(day["pad_s"])
    segments = active_segments(
        [(e.t0, e.t1) for e in the_plan.events], day_s, float(day["pad_s"]), post, chunk_s
    )
    hop = always.frame_hop_s
    runs: dict[str, dict[str, Any]] = {
        name: {"streams": [], "fresh": [], "on_s": 0.0} for name in ("always", "duty")
    }
    rendered_s = 0.0
    context = always.context_frames
    for c0, c1 in segments:
        iq = np.concatenate([scene.render(c, n_per) for c in range(c0, c1)], axis=1)
        seg_s = iq.shape[1] / fs
        rendered_s += seg_s
        name = f"day-{c0:06d}"
        episodes = _episodes(scene.overlapping(c0 * chunk_s, c1 * chunk_s), c0 * chunk_s, name)
        decisions = pipeline.run_capture(iq, fs, dev.carrier_hz)  # probs do not depend on duty cycling
        for run, cfg in (("always", always), ("duty", duty)):
            trace = run_detector(decisions.probs, cfg)
            present = trace.present.copy()
            present[: context - 1] = False  # no decision before the first full context (DevicePipeline)
            times = decisions.times_s
            onsets = times[trace.onsets[trace.onsets >= context - 1]]
            strict = trace.onset_strict[trace.onsets >= context - 1]
            fresh = present & observed_frames(trace.emission_on, context)  # held frames do not count
            runs[run]["streams"].append(
                (_outcome(name, dev.device_id, seg_s, times, present, onsets, strict), episodes)
            )
            runs[run]["fresh"].append(
                (_outcome(name, dev.device_id, seg_s, times, fresh, onsets, strict), episodes)
            )
            runs[run]["on_s"] += float(np.count_nonzero(trace.emission_on)) * hop
    # the unrendered rest of the day: nobody there, nothing running, the detector absent (emission on)
    quiet = (
        _outcome("day-quiet", dev.device_id, day_s - rendered_s, np.zeros(0), np.zeros(0, bool), np.zeros(0)),
        [],
    )
    metrics = {run: occupancy_metrics([*r["streams"], quiet])[0] for run, r in runs.items()}
    fresh = {run: occupancy_metrics([*r["fresh"], quiet])[0] for run, r in runs.items()}
    occupied = metrics["always"]["occupied_hours"] * 3600.0
    out: dict[str, Any] = {
        "emission_duty_cycle": (runs["duty"]["on_s"] + day_s - rendered_s) / day_s,
        "emission_duty_cycle_always_on": (runs["always"]["on_s"] + day_s - rendered_s) / day_s,
        "day_entries": metrics["always"]["entries"],
        "day_false_triggers": {run: mt["false_triggers"] for run, mt in metrics.items()},
        "day_false_triggers_by_type": metrics["always"]["false_triggers_by_type"],
    }
    for key in DAY_FIGURES:
        out[f"day_{key}"] = {run: mt[key] for run, mt in metrics.items()}
    for key in ("entry_recall", "false_absences_per_occupied_hour"):
        a, d = metrics["always"][key], metrics["duty"][key]
        out[f"duty_cycling_{key}_change"] = None if a is None or d is None else float(d - a)
        fa, fd = fresh["always"][key], fresh["duty"][key]
        out[f"duty_cycling_{key}_change_fresh_decisions"] = (
            None if fa is None or fd is None else float(fd - fa)
        )
    out["duty_cycling_recall_cost"] = (
        None if out["duty_cycling_entry_recall_change"] is None else -out["duty_cycling_entry_recall_change"]
    )
    out["duty_setup"] = (
        f"household unit {dev.device_id} ({dev.profile}, {dev.carrier_hz:.0f} Hz), {day['hours']:g} h "
        f"of its day, occupied {occupied / day_s:.1%} of it, {len(the_plan.events)} events; emission off "
        f"{off_s:g} s after {duty.confirm_s:g} s of presence; {rendered_s / 3600.0:.2f} h with events "
        "rendered and run, the rest empty (emission on)"
    )
    return out


# --- entry points -----------------------------------------------------------------------------------


def detector_figures(params: dict, quick: bool = False) -> dict[str, Any]:
    """Latency, emission duty cycle and duty-cycling recall cost (see the module docstring)."""
    b = bench_section(params["bench"]["runtime"]["detector"], quick)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-runtime-") as tmp:
        m = bundle_model(params, b["bundles"]) or train_model(params, b["train"], Path(tmp))
    out: dict[str, Any] = {"detector_model": m.description}
    t = time.perf_counter()
    out.update(_latency_figures(m, params, b["latency"]))
    out["latency_seconds"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    out.update(_day_figures(m, params, b["day"]))
    out["duty_seconds"] = round(time.perf_counter() - t, 1)
    out["detector_bench_seconds"] = round(time.perf_counter() - started, 1)
    return out


def run_bench(params: dict, quick: bool = False) -> dict[str, Any]:
    """dsp_figures merged with detector_figures'."""
    return merged_figures(params, quick, dsp_figures, detector_figures)
