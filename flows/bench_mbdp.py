"""`flywheel bench mbdp`: runtime.bench_mbdp's DSP figures plus the detector's false alarms during music,
with and without the MBDP, measured on the fleet simulator.

runtime/ may import numpy, scipy and onnxruntime only, so the measurement that needs the simulator and
a trained detector lives here. Every size and seed is in params.yaml mbdp.bench.music (`quick` overrides
for --quick).

- Batches: fleet.simulate.simulate_batch('eval') on the same held-out eval units with the same seed,
  twice: units playing raw (no tuning) and units playing through the MBDP tuning (the bundle's
  payload/mbdp.json when the detector comes from a bundle, else runtime.mbdp.bundle_tuning of
  mbdp.profile, what the package stage ships). The eval timeline is restricted to music
  (simulate.eval.kinds = [music], no combinations): music episodes at volumes 2-10 with empty gaps,
  rendered on every mic and kept. Music drives the cone through runtime.loudspeaker; with a tuning it
  goes through the sensing-mode MBDP first (fleet.events.music). Both batches have the same plan, so
  the same music at the same volumes at the same times; only the playback chain differs.
- Detector: the first bundle of mbdp.bench.music.bundles that exists ({turn} = turn.id), run with its
  own front-end and detector configs. Without one, a stand-in is trained on the spot through the real
  stage functions (flows.stages simulate -> ingest -> label_seed -> train -> export, int8, thresholds
  as training chose them; a small held-out batch of the same kind feeds export's float-vs-int8 gate)
  on oracle-labeled eval-like episodes of every event type except music: music stays out of its
  training data, as rare events stay out of the seed set. Why not the lab seed set (what
  flows/bench_runtime.py trains): at the bench's training sizes that model reports "present" in an
  empty room nearly all the time. Why not training.bench's synthetic frames: their levels sit some
  50 dB away from the simulator's runtime features. `music_detector` says which detector ran.
- Counting: training.evaluate.evaluate_with with the device pipeline (runtime.pipeline.DevicePipeline,
  what evaluate_detector runs; back-to-back captures as one stream) and training.metrics' rules:
  `music_false_alarms_per_hour_*` = by_event_type.music.false_alarms / by_event_type.music.hours.
  Onsets miss a detector that stays "present" through a whole song, so `music_present_fraction_*`
  gives the share of frames inside music events at which the detector says present, and
  `music_gaps_*` the same figures for the empty gaps between songs (a detector that stays on through
  the gaps is stuck, not fooled by each song). `music_by_volume` splits them by the captures'
  playback_volume and adds the median Doppler-band (15-900 Hz) level of the music captures at mic 0
  (dBFS): what the MBDP did to the distortion the detector sees.
"""

from __future__ import annotations

import copy
import json
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from flows.bench_models import DeviceModel, bench_section, bundle_model, train_model

MEASURED_NOTE = "false alarms per hour during music"
EMPTY = "empty"  # training.metrics' name for time covered by no event


def _bundle_tuning_json(path: Path) -> dict | None:
    """payload/mbdp.json of a bundle folder or tar, None when it has none."""
    if path.is_dir():
        f = path / "payload" / "mbdp.json"
        return json.loads(f.read_text()) if f.exists() else None
    with tarfile.open(path, "r:*") as tar:
        members = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}
        if "payload/mbdp.json" not in members:
            return None
        fh = tar.extractfile(members["payload/mbdp.json"])
        return json.loads(fh.read()) if fh else None


# --- measurement ----------------------------------------------------------------------------------


def _music_sim(params: dict, b: dict) -> dict:
    sim = copy.deepcopy(params["simulate"])
    sim["eval"].update(
        kinds=["music"], combo_prob=0.0, episode_s=list(b["episode_s"]), gap_s=list(b["gap_s"])
    )
    return sim


def doppler_band_db(iq: np.ndarray, fs_hz: float, band_hz=(15.0, 900.0)) -> float:
    """Power (dBFS) of mic 0 at |f| in band_hz, the capture's mean (static paths) removed."""
    x = np.asarray(iq[0], dtype=np.complex128)
    spec = np.abs(np.fft.fft(x - x.mean())) ** 2 / x.size**2
    f = np.abs(np.fft.fftfreq(x.size, 1.0 / fs_hz))
    return float(10 * np.log10(max(spec[(f >= band_hz[0]) & (f <= band_hz[1])].sum(), 1e-30)))


def _present_in(outcomes, events: list[dict], event_type: str) -> tuple[int, int]:
    """(frames at which the detector is present, frames) inside events of event_type; "empty": frames
    inside no event at all."""
    by_capture: dict[str, list[dict]] = {}
    for ev in events:
        if event_type == EMPTY or ev["event_type"] == event_type:
            by_capture.setdefault(str(ev["capture_id"]), []).append(ev)
    hits = total = 0
    for out in outcomes:
        times = np.asarray(out.times_s, dtype=np.float64)
        inside = np.zeros(times.size, dtype=bool)
        for ev in by_capture.get(out.capture_id, []):
            inside |= (times >= float(ev["t0_s"])) & (times <= float(ev["t1_s"]))
        if event_type == EMPTY:
            inside = ~inside
        hits += int(np.count_nonzero(np.asarray(out.present, dtype=bool) & inside))
        total += int(np.count_nonzero(inside))
    return hits, total


def _evaluate(det: DeviceModel, raw: Path, truth: Path) -> dict[str, Any]:
    """Music figures of one batch: overall and per playback volume (training.metrics' rules)."""
    from training.evaluate import evaluate_with, pipeline_decide, read_truth
    from training.metrics import count_outcomes

    decide, baseband_fs_hz = pipeline_decide(det.model, det.frontend, det.detector)
    metrics, outcomes = evaluate_with(decide, raw, truth, baseband_fs_hz)
    events = read_truth(truth)
    records = [json.loads(line) for line in (raw / "captures.jsonl").read_text().splitlines() if line.strip()]
    volume = {str(r["capture_id"]): float(r["playback_volume"]) for r in records}
    band: dict[float, list[float]] = {}
    for r in records:
        if volume[str(r["capture_id"])] > 0:
            iq = np.load(raw / str(r["file"]), allow_pickle=False)
            band.setdefault(volume[str(r["capture_id"])], []).append(doppler_band_db(iq, float(r["fs_hz"])))

    def figures(m: dict, outs) -> dict[str, Any]:
        music = m["by_event_type"].get("music", {"hours": 0.0, "false_alarms": 0})
        hits, frames = _present_in(outs, events, "music")
        return {
            "music_hours": music["hours"],
            "music_false_alarms": music["false_alarms"],
            "music_false_alarms_per_hour": music["false_alarms"] / music["hours"] if music["hours"] else None,
            "music_present_fraction": hits / frames if frames else None,
        }

    out = figures(metrics, outcomes)
    empty = metrics["by_event_type"].get("empty", {"hours": 0.0, "false_alarms": 0})
    out["empty_false_alarms_per_hour"] = empty["false_alarms"] / empty["hours"] if empty["hours"] else None
    hits, frames = _present_in(outcomes, events, EMPTY)
    out["empty_present_fraction"] = hits / frames if frames else None
    out["n_captures"] = metrics["n_captures"]
    out["by_volume"] = {}
    for v in sorted(band):
        subset = [o for o in outcomes if volume.get(o.capture_id) == v]
        out["by_volume"][f"{v:g}"] = {
            **figures(count_outcomes(subset, events), subset),
            "doppler_band_dbfs": float(np.median(band[v])),
        }
    return out


def music_false_alarms(params: dict, quick: bool = False) -> dict[str, Any]:
    """False alarms per hour during music with and without the MBDP (see the module docstring)."""
    from fleet.events import EVENT_INFO
    from fleet.simulate import simulate_batch
    from runtime.mbdp import bundle_tuning

    b = bench_section(params["mbdp"]["bench"]["music"], quick)
    started = time.perf_counter()
    mp = params["mbdp"]
    default_tuning = bundle_tuning(mp["profile"], mp["presets_file"])
    sim = _music_sim(params, b)
    out: dict[str, Any] = {}
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-mbdp-music-") as tmp:
        tmp = Path(tmp)
        det = bundle_model(params, b["bundles"])
        tuning = (_bundle_tuning_json(det.bundle) if det is not None else None) or default_tuning
        if det is None:  # stand-in: eval-like episodes of every type but music, labeled from truth
            no_music = [k for k in EVENT_INFO if k != "music"]
            det = train_model(params, b["train"], tmp / "train", training_preset="eval", kinds=no_music)
        det.description["mbdp_tuning"] = tuning["profile"]
        for name, played in (("without_mbdp", None), ("with_mbdp", tuning)):
            raw, truth = tmp / "raw" / name, tmp / "truth" / name
            summary = simulate_batch(
                "eval", int(b["devices"]), float(b["hours"]), int(b["seed"]), raw, truth,
                sim_params=sim, calibration=params["calibration"]["config"], mbdp=played,
            )  # fmt: skip
            runs[name] = _evaluate(det, raw, truth)
            runs[name]["sim_device_seconds_per_cpu_second"] = summary["device_seconds_per_cpu_second"]
            runs[name]["music_fraction"] = summary["event_fraction"].get("music", 0.0)
    with_, without = runs["with_mbdp"], runs["without_mbdp"]
    for key in ("music_false_alarms_per_hour", "music_false_alarms", "music_present_fraction"):
        out[f"{key}_with_mbdp"] = with_[key]
        out[f"{key}_without_mbdp"] = without[key]
    out["music_hours_measured"] = without["music_hours"]  # the same plan in both batches
    out["music_hours_with_mbdp"] = with_["music_hours"]
    for key in ("empty_false_alarms_per_hour", "empty_present_fraction"):  # the gaps between songs
        out[f"music_gaps_{key}"] = {name: runs[name][key] for name in ("with_mbdp", "without_mbdp")}
    out["music_by_volume"] = {
        v: {
            f"{k}_{name}": runs[name]["by_volume"][v][k]
            for k in ("music_false_alarms", "music_present_fraction", "doppler_band_dbfs")
            for name in ("with_mbdp", "without_mbdp")
        }
        | {"music_hours": without["by_volume"][v]["music_hours"]}
        for v in without["by_volume"]
    }
    out["music_sim_device_seconds_per_cpu_second"] = {
        name: runs[name]["sim_device_seconds_per_cpu_second"] for name in runs
    }
    out["music_detector"] = det.description
    out["music_setup"] = (
        f"{int(b['devices'])} held-out eval units x {float(b['hours']):g} h, seed {int(b['seed'])}: music "
        f"episodes {b['episode_s'][0]:g}-{b['episode_s'][1]:g} s (volume 2-10) with {b['gap_s'][0]:g}-"
        f"{b['gap_s'][1]:g} s empty gaps ({without['music_fraction']:.0%} music), every capture rendered on "
        f"every mic; MBDP: the tuning's sensing mode ({tuning.get('profile')}); "
        f"{without['n_captures']} captures per batch"
    )
    out["music_bench_seconds"] = round(time.perf_counter() - started, 1)
    return out


def run_bench(params: dict, quick: bool = False) -> dict[str, Any]:
    """runtime.bench_mbdp.run_bench's figures merged with music_false_alarms'."""
    from runtime.bench_mbdp import run_bench as dsp_bench

    figures = dsp_bench(params, quick=quick)
    figures.update(music_false_alarms(params, quick=quick))
    left = [n for n in figures.pop("not_measured", []) if not n.startswith(MEASURED_NOTE)]
    if left:
        figures["not_measured"] = left
    return figures
