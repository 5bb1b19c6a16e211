"""`flywheel bench runtime`: runtime.bench's DSP figures plus the detector's, measured on the simulator.

The detector figures need a trained model and the fleet simulator, so they live here (runtime/ may
import numpy, scipy and onnxruntime only):

- model: the last turn's bundle when one exists (runtime.bench.detector.bundles, {turn} = turn.id),
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

Every size and seed is in params.yaml runtime.bench.detector (`quick` overrides for --quick).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from flows.bench_models import DeviceModel, bench_section, bundle_model, train_model
from training.metrics import TOLERANCE_S, CaptureOutcome, count_outcomes

MEASURED = ("latency_median_s", "latency_p95_s", "emission_duty_cycle", "duty_cycling_recall_cost")


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
    b = bench_section(params["runtime"]["bench"]["detector"], quick)
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
    """runtime.bench.run_bench's figures merged with detector_figures'."""
    from runtime.bench import run_bench as runtime_bench

    figures = runtime_bench(params, quick=quick)
    figures.update(detector_figures(params, quick=quick))
    not_measured = {k: v for k, v in figures.pop("not_measured", {}).items() if k not in MEASURED}
    if not_measured:
        figures["not_measured"] = not_measured
    return figures
