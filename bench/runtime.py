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
  (fleet.simulate.fleet_unit('eval', i), fleet.events.make_event('walk_in'), fleet.scenes.DeviceScene,
  truth from fleet.writer.truth_rows). Latency is training.metrics' rule: the first frame (frame end
  time) the detector is present in [t0_s, t1_s + 1 s], minus t0_s; each walk-in is counted by
  count_outcomes on its own, so the per-event latencies follow the evaluation's rules exactly. Each
  clip starts lead_s before the walk so the detector is warm (a device runs continuously). A missed
  walk-in has no latency; latency_n and latency_missed say how many. Why not simulate_batch('eval'):
  walk-ins are one episode type in 19 there, so 40 of them would mean hours of 4-mic eval baseband
  written to disk; the clips use the same generators, units and truth format without the files.
- emission_duty_cycle, duty_cycling_recall_cost: one field unit's household timeline
  (fleet.timeline.plan('field', day.hours long), the planner simulate_batch uses; it has no
  time-of-day pattern, so some hours stand for a day). Stretches with events are rendered
  (scene.render per capture_s chunk, the same samples simulate_batch would write) and run through
  the pipeline once; the detector then runs twice on the same classifier outputs, duty cycling off and
  on (emission_off_s). That is what the device computes: frames while emission is off are ignored and
  the next context_frames - 1 frames too (warm-up), so the classifier only ever sees fresh frames.
  Not modelled: the clutter filter's transient when emission returns (the device can freeze its state
  while off; the static path comes back the same). Event-free stretches are not rendered: an empty
  room is taken as absent with emission on (the simulator's own energy gate assumes the same; false
  alarms per hour are evaluation's business). Duty cycle = emission-on time / day. Recall per
  training.metrics (presence held while emission is off counts as present, as the device reports it),
  so duty_cycling_recall_cost can come out negative: the held state covers events the always-on
  detector misses. `duty_cycling_recall_cost_fresh_decisions` counts only frames where the detector
  decided afresh (emission on, warm-up over). The price of holding shows in
  `duty_present_while_empty_h`: hours the detector said present with nobody there, on vs off.

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
from training.metrics import TOLERANCE_S, CaptureOutcome, count_outcomes

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


def event_latencies(outcomes: list[CaptureOutcome], events: list[dict]) -> list[float | None]:
    """Latency (s) of every presence event of the outcomes' captures, None where it was missed.

    Each event is counted by training.metrics.count_outcomes on its own (its capture's outcome, that
    event alone), so detection and latency follow the evaluation's rules exactly."""
    by_id = {o.capture_id: o for o in outcomes}
    latencies: list[float | None] = []
    for ev in events:
        out = by_id.get(str(ev["capture_id"]))
        if out is None or not bool(ev["is_presence"]):
            continue
        latencies.append(count_outcomes([out], [ev])["median_latency_s"])
    return latencies


def latency_stats(latencies: list[float | None]) -> dict[str, Any]:
    """Median and 95th percentile of the detected events' latencies, with counts."""
    hits = np.array([x for x in latencies if x is not None], dtype=np.float64)
    return {
        "latency_median_s": float(np.median(hits)) if hits.size else None,
        "latency_p95_s": float(np.percentile(hits, 95)) if hits.size else None,
        "latency_n": int(hits.size),
        "latency_missed": int(len(latencies) - hits.size),
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


def present_while_empty_s(outcome: CaptureOutcome, events: list[dict], hop_s: float) -> float:
    """Seconds of frames the detector says present while no presence event (padded by the evaluation
    tolerance) covers the frame time."""
    times = np.asarray(outcome.times_s, dtype=np.float64)
    covered = np.zeros(times.size, bool)
    for ev in events:
        if bool(ev["is_presence"]) and str(ev["capture_id"]) == outcome.capture_id:
            covered |= (times >= float(ev["t0_s"])) & (times <= float(ev["t1_s"]) + TOLERANCE_S)
    return float(np.count_nonzero(np.asarray(outcome.present, bool) & ~covered) * hop_s)


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


def _latency_figures(m: DeviceModel, params: dict, lat: dict) -> dict[str, Any]:
    from fleet.config import sim_section
    from fleet.events import make_event
    from fleet.scenes import DeviceScene
    from fleet.simulate import fleet_unit
    from fleet.writer import truth_rows
    from runtime.pipeline import DevicePipeline

    sim = sim_section(params)
    fs = float(sim["fs_hz"])
    pipeline = DevicePipeline(m.model, m.frontend, m.detector)
    rng = np.random.default_rng(int(lat["seed"]))
    lead, tail = float(lat["lead_s"]), float(lat["tail_s"])
    outcomes, events, profiles = [], [], {}
    units = [fleet_unit("eval", i, sim) for i in range(int(lat["units"]))]  # (device, room), calibrated
    for k in range(int(lat["walk_ins"])):
        dev, room = units[k % len(units)]
        t0 = lead + float(rng.uniform(0.0, 1.0))
        walk = make_event("walk_in", t0, 0.0, rng, room)
        n = int(np.ceil((walk.t1 + tail) * fs))
        scene = DeviceScene(dev, room, [walk], fs, int(rng.integers(2**62)))
        iq = scene.render_times(np.arange(n) / fs, noise_key=k)
        d = pipeline.run_capture(iq, fs, dev.carrier_hz)
        cid = f"walkin-{k:04d}"
        outcomes.append(CaptureOutcome(cid, n / fs, d.times_s, d.present, d.onset_times_s))
        events += truth_rows(cid, [walk], 0.0, n / fs)
        profiles[dev.profile] = profiles.get(dev.profile, 0) + 1
    stats = latency_stats(event_latencies(outcomes, events))
    stats["latency_setup"] = (
        f"{len(outcomes)} walk-ins into an empty room on the first {int(lat['units'])} held-out eval units "
        f"({', '.join(f'{v} on {k}' for k, v in sorted(profiles.items()))}), walk starting "
        f"{lead:g}-{lead + 1:g} s into each clip; latency = first present frame end time - t0 "
        "(training.metrics)"
    )
    return stats


# --- household day ----------------------------------------------------------------------------------


def _day_figures(m: DeviceModel, params: dict, day: dict) -> dict[str, Any]:
    from fleet.config import sim_section
    from fleet.scenes import DeviceScene
    from fleet.simulate import PRESET_CODE, fleet_unit
    from fleet.timeline import plan
    from fleet.writer import truth_rows
    from runtime.detector import DetectorConfig, run_detector
    from runtime.pipeline import DevicePipeline

    sim = sim_section(params)
    fs, chunk_s = float(sim["fs_hz"]), float(sim["capture_s"])
    n_per = round(chunk_s * fs)
    day_s = float(day["hours"]) * 3600.0
    always = DetectorConfig.from_dict({**m.detector, "duty_cycling": False})
    off_s = float(m.detector.get("emission_off_s") or 0.0) or float(day["emission_off_s"])
    duty = DetectorConfig.from_dict({**m.detector, "duty_cycling": True, "emission_off_s": off_s})
    pipeline = DevicePipeline(m.model, m.frontend, always)
    dev, room = fleet_unit("field", int(day["device"]), sim)
    rng = np.random.default_rng([int(day["seed"]), PRESET_CODE["field"], int(day["device"])])
    the_plan = plan("field", day_s, rng, room, sim)
    scene = DeviceScene(dev, room, the_plan.events, fs, int(rng.integers(2**62)))
    post = always.hold_s + off_s + always.context_frames * always.frame_hop_s + float(day["pad_s"])
    segments = active_segments(
        [(e.t0, e.t1) for e in the_plan.events], day_s, float(day["pad_s"]), post, chunk_s
    )
    hop = always.frame_hop_s
    runs: dict[str, dict[str, Any]] = {
        name: {"outcomes": [], "observed": [], "on_s": 0.0, "empty_s": 0.0} for name in ("always", "duty")
    }
    truth: list[dict] = []
    rendered_s = 0.0
    for c0, c1 in segments:
        iq = np.concatenate([scene.render(c, n_per) for c in range(c0, c1)], axis=1)
        seg_s = iq.shape[1] / fs
        rendered_s += seg_s
        cid = f"day-{c0:06d}"
        rows = truth_rows(cid, scene.overlapping(c0 * chunk_s, c1 * chunk_s), c0 * chunk_s, seg_s)
        truth += rows
        decisions = pipeline.run_capture(iq, fs, dev.carrier_hz)  # probs do not depend on duty cycling
        context = always.context_frames
        for name, cfg in (("always", always), ("duty", duty)):
            trace = run_detector(decisions.probs, cfg)
            present = trace.present.copy()
            present[: context - 1] = False  # no decision before the first full context (DevicePipeline)
            times = decisions.times_s
            onsets = times[trace.onsets[trace.onsets >= context - 1]]
            out = CaptureOutcome(cid, seg_s, times, present, onsets)
            runs[name]["outcomes"].append(out)
            fresh = present & observed_frames(trace.emission_on, context)  # held frames do not count
            runs[name]["observed"].append(CaptureOutcome(cid, seg_s, times, fresh, onsets))
            runs[name]["on_s"] += float(np.count_nonzero(trace.emission_on)) * hop
            runs[name]["empty_s"] += present_while_empty_s(out, rows, hop)
    unrendered = day_s - rendered_s  # empty room: emission on
    metrics = {name: count_outcomes(r["outcomes"], truth) for name, r in runs.items()}
    recall = {name: mt["recall"] for name, mt in metrics.items()}
    observed = {name: count_outcomes(r["observed"], truth)["recall"] for name, r in runs.items()}
    occupied = sum(b - a for a, b in _presence_union(the_plan.events, day_s))
    return {
        "emission_duty_cycle": (runs["duty"]["on_s"] + unrendered) / day_s,
        "emission_duty_cycle_always_on": (runs["always"]["on_s"] + unrendered) / day_s,
        "duty_cycling_recall_cost": (
            None if None in recall.values() else float(recall["always"] - recall["duty"])
        ),
        "duty_cycling_recall_cost_fresh_decisions": (
            None if None in observed.values() else float(observed["always"] - observed["duty"])
        ),
        "duty_recall_always_on": recall["always"],
        "duty_recall_duty_cycled": recall["duty"],
        "duty_recall_minor_always_on": metrics["always"]["recall_minor"],
        "duty_recall_minor_duty_cycled": metrics["duty"]["recall_minor"],
        "duty_presence_events": metrics["always"]["n_presence_events"],
        "duty_false_alarms_always_on": metrics["always"]["false_alarms"],
        "duty_false_alarms_duty_cycled": metrics["duty"]["false_alarms"],
        "duty_present_while_empty_h": {k: round(r["empty_s"] / 3600.0, 4) for k, r in runs.items()},
        "duty_setup": (
            f"field unit {dev.device_id} ({dev.profile}, {dev.carrier_hz:.0f} Hz), {day['hours']:g} h of its "
            "household timeline, "
            f"occupied {occupied / day_s:.1%} of it, {len(the_plan.events)} events; "
            f"emission off {off_s:g} s after {duty.confirm_s:g} s of presence; "
            f"{rendered_s / 3600.0:.2f} h with events rendered and run, the rest empty (emission on)"
        ),
    }


def _presence_union(events, day_s: float) -> list[tuple[float, float]]:
    from fleet.timeline import presence_intervals

    return [(max(0.0, a), min(day_s, b)) for a, b in presence_intervals(events) if b > 0 and a < day_s]


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
