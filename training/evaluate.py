"""Evaluate a detector (front-end + ONNX classifier + state machine) or the CFAR baseline on a raw batch.

Reads any batch that follows the raw log contract (captures.jsonl + iq/*.npy, allow_pickle=False) and
its truth (truth_dir/events.jsonl). Captures whose line or samples are unreadable are skipped and
counted with the reason. Captures a device recorded back to back are run as one continuous stream,
as the device runs (iter_runs); results are still counted per capture, following training.metrics
(issue 2's rules).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from training.metrics import CaptureOutcome, count_outcomes, onsets_from_present

log = logging.getLogger(__name__)

# (iq [n_mics, n], fs_hz, carrier_hz) -> (times_s [T], present [T], onset_times_s [k]) or, from the
# runtime state machine, the same plus onset_strict [k] (entry on a strict positive, else a re-entry)
DecideFn = Callable[[np.ndarray, float, float], tuple[np.ndarray, ...]]


class EvaluationError(ValueError):
    """The batch or bundle cannot be evaluated at all (missing captures.jsonl, truth, payload...)."""


def read_truth(truth_dir: str | Path) -> list[dict]:
    path = Path(truth_dir) / "events.jsonl"
    if not path.exists():
        raise EvaluationError(f"{path}: missing")
    events = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            ev = json.loads(line)
            missing = {"capture_id", "t0_s", "t1_s", "event_type", "is_presence"} - set(ev)
            if missing:
                raise EvaluationError(f"{path}:{n}: missing {sorted(missing)}")
            events.append(ev)
    return events


def _load_wav_as_baseband(path: Path, record: dict, baseband_fs_hz: float) -> tuple[np.ndarray, float]:
    """Passband PCM (lab captures) demodulated by runtime.demod at the record's carrier."""
    from scipy.io import wavfile

    from runtime.demod import demodulate

    rate, data = wavfile.read(path)
    if float(rate) != record["fs_hz"]:
        raise ValueError(f"wav rate {rate} != fs_hz {record['fs_hz']}")
    if np.issubdtype(data.dtype, np.integer):
        data = data.astype(np.float32) / float(np.iinfo(data.dtype).max)
    pcm = np.asarray(data, np.float32).T  # [n_channels, n] or [n]
    return demodulate(pcm, float(rate), record["carrier_hz"], baseband_fs_hz), baseband_fs_hz


def _load_iq(raw_dir: Path, record: dict, baseband_fs_hz: float) -> tuple[np.ndarray, float]:
    """(complex64 [n_mics, n], its sample rate) for a capture record."""
    rel = Path(str(record["file"]))
    path = (raw_dir / rel).resolve()
    if rel.is_absolute() or raw_dir.resolve() not in path.parents:
        raise ValueError(f"file {rel} escapes the batch folder")
    if path.suffix == ".wav":
        iq, fs_hz = _load_wav_as_baseband(path, record, baseband_fs_hz)
    else:
        iq, fs_hz = np.load(path, allow_pickle=False), record["fs_hz"]
    if not np.iscomplexobj(iq) or iq.ndim != 2 or iq.shape[1] == 0:
        raise ValueError(f"expected complex [n_mics, n], got {iq.dtype} {iq.shape}")
    if not np.isfinite(iq).all():
        raise ValueError("non-finite samples")
    return iq.astype(np.complex64, copy=False), fs_hz


MAX_RUN_S = 1800.0  # longest stretch of back-to-back captures evaluated as one continuous stream
CONTIGUOUS_TOLERANCE_S = 0.002  # t_start may differ from the previous capture's end by this much


def _read_index(raw_dir: Path, skipped: list[dict]) -> list[dict]:
    """Capture records with parseable rate and carrier (others go to skipped), with their line number."""
    index = raw_dir / "captures.jsonl"
    if not index.exists():
        raise EvaluationError(f"{index}: missing")
    with open(index, encoding="utf-8") as fh:
        lines = fh.readlines()
    records = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        cid = f"line {n}"
        try:
            record = json.loads(line)
            cid = str(record["capture_id"])
            fs_hz, carrier_hz = float(record["fs_hz"]), float(record["carrier_hz"])
            if fs_hz <= 0:
                raise ValueError(f"fs_hz {fs_hz} <= 0")
        except (ValueError, KeyError, TypeError) as exc:
            skipped.append({"capture_id": cid, "reason": f"{type(exc).__name__}: {exc}"[:200]})
            continue
        records.append({**record, "fs_hz": fs_hz, "carrier_hz": carrier_hz, "_line": n})
    return records


def _start_s(record: dict) -> float | None:
    try:
        stamp = dt.datetime.fromisoformat(str(record["t_start"]).replace("Z", "+00:00"))
        return stamp.timestamp()
    except (KeyError, TypeError, ValueError):
        return None


def _contiguous_groups(records: list[dict], max_run_s: float) -> list[list[dict]]:
    """Records a device recorded back to back (same device, rate, carrier, mics; baseband files), in time
    order; every other record is a group of its own. A group spans at most max_run_s."""
    keyed, alone = [], []
    for r in records:
        start = _start_s(r)
        if start is None or "device_id" not in r or not str(r.get("file", "")).endswith(".npy"):
            alone.append([r])
        else:
            keyed.append((str(r["device_id"]), start, r["_line"], r))
    groups: list[list[dict]] = []
    end = span = 0.0
    for device, start, _, r in sorted(keyed, key=lambda k: k[:3]):
        prev = groups[-1][-1] if groups and len(groups[-1]) else None
        same_stream = (
            prev is not None
            and str(prev["device_id"]) == device
            and (prev["fs_hz"], prev["carrier_hz"], prev.get("n_mics"))
            == (r["fs_hz"], r["carrier_hz"], r.get("n_mics"))
            and abs(start - end) <= CONTIGUOUS_TOLERANCE_S
            and span + float(r["duration_s"]) <= max_run_s
        )
        if same_stream:
            groups[-1].append(r)
            span += float(r["duration_s"])
        else:
            groups.append([r])
            span = float(r["duration_s"])
        end = start + float(r["duration_s"])
    return groups + alone


def iter_runs(
    raw_dir: str | Path, skipped: list[dict], baseband_fs_hz: float = 2000.0, max_run_s: float = MAX_RUN_S
) -> Iterator[list[tuple[dict, np.ndarray]]]:
    """Yield runs of readable captures [(record, iq)] that a device recorded back to back.

    The device runs continuously, so its front-end, classifier context and state machine carry over
    from one capture to the next one that starts where it ended; a run is evaluated as one stream.
    An unreadable capture ({capture_id, reason} appended to skipped) splits its run. iq/*.npy is complex
    baseband at the record's fs_hz; pcm/*.wav (lab) is demodulated to baseband_fs_hz, and the yielded
    record's fs_hz says which rate the samples have.
    """
    raw_dir = Path(raw_dir)
    for group in _contiguous_groups(_read_index(raw_dir, skipped), max_run_s):
        run: list[tuple[dict, np.ndarray]] = []
        for record in group:
            try:
                iq, fs_hz = _load_iq(raw_dir, record, baseband_fs_hz)
            except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
                skipped.append(
                    {"capture_id": str(record["capture_id"]), "reason": f"{type(exc).__name__}: {exc}"[:200]}
                )
                if run:
                    yield run
                run = []
                continue
            run.append(({**record, "fs_hz": fs_hz}, iq))
        if run:
            yield run


def iter_captures(
    raw_dir: str | Path, skipped: list[dict], baseband_fs_hz: float = 2000.0
) -> Iterator[tuple[dict, np.ndarray]]:
    """Yield (capture record, iq) for every readable capture, one at a time (see iter_runs)."""
    for run in iter_runs(raw_dir, skipped, baseband_fs_hz, max_run_s=0.0):
        yield from run


def _split_run(
    captures: list[tuple[dict, int]],
    times_s: np.ndarray,
    present: np.ndarray,
    onsets: np.ndarray,
    onset_strict: np.ndarray | None = None,
) -> list[tuple[int, CaptureOutcome]]:
    """A stream's decisions cut back into its captures [(record, n_samples)]: [(line, outcome)].

    A frame belongs to the capture its end time falls in, (start, end]; the first and the last capture
    keep whatever the stream reported before or after them. onset_strict [k] travels with its onsets."""
    times_s, present, onsets = np.asarray(times_s), np.asarray(present, bool), np.asarray(onsets)
    kinds = None if onset_strict is None else np.asarray(onset_strict, bool)
    fs_hz = captures[0][0]["fs_hz"]
    out, offset = [], 0.0
    for k, (record, n_samples) in enumerate(captures):
        duration = n_samples / fs_hz
        lower = -np.inf if k == 0 else offset
        upper = np.inf if k == len(captures) - 1 else offset + duration
        sel = (times_s > lower) & (times_s <= upper)
        in_capture = (onsets > lower) & (onsets <= upper)
        outcome = CaptureOutcome(
            str(record["capture_id"]),
            duration,
            times_s[sel] - offset,
            present[sel],
            onsets[in_capture] - offset,
            None if kinds is None else kinds[in_capture],
        )
        out.append((int(record["_line"]), outcome))
        offset += duration
    return out


def _count(
    outcomes: list[tuple[int, CaptureOutcome]], events: list[dict], skipped: list[dict], raw_dir
) -> dict:
    ordered = [o for _, o in sorted(outcomes, key=lambda x: x[0])]
    metrics = count_outcomes(ordered, events)
    metrics["n_captures_skipped"] = len(skipped)
    metrics["skipped"] = skipped
    if skipped:
        log.warning("skipped %d unreadable captures in %s", len(skipped), raw_dir)
    return metrics


def _stream(run: list[tuple[dict, np.ndarray]]) -> tuple[np.ndarray, float, float]:
    """(iq of the whole run [n_mics, n], its rate, its carrier)."""
    iq = run[0][1] if len(run) == 1 else np.concatenate([part for _, part in run], axis=1)
    return iq, run[0][0]["fs_hz"], run[0][0]["carrier_hz"]


def evaluate_with(
    decide: DecideFn,
    raw_dir: str | Path,
    truth_dir: str | Path,
    baseband_fs_hz: float = 2000.0,
    max_run_s: float = MAX_RUN_S,
) -> tuple[dict, list[CaptureOutcome]]:
    """Run `decide` on every run of back-to-back captures and count per capture; return (metrics,
    per-capture outcomes in captures.jsonl order)."""
    events = read_truth(truth_dir)
    skipped: list[dict] = []
    outcomes: list[tuple[int, CaptureOutcome]] = []
    for run in iter_runs(raw_dir, skipped, baseband_fs_hz, max_run_s):
        outcomes += _split_run([(r, p.shape[1]) for r, p in run], *decide(*_stream(run)))
    metrics = _count(outcomes, events, skipped, raw_dir)
    return metrics, [o for _, o in sorted(outcomes, key=lambda x: x[0])]


def evaluate_operating_curve(
    model_path, frontend_cfg, detector_cfg, raw_dir, truth_dir, strict_thresholds: list[float]
) -> dict:
    """Metrics at the detector's own thresholds plus a false-alarm/recall curve over strict thresholds.

    The classifier runs once per stream; only the state machine is re-run per threshold (the lenient
    threshold stays min(its own, strict)). Returns {"metrics": ..., "curve": [{strict_threshold,
    lenient_threshold, false_alarms_per_hour, recall_major, recall_minor, false_present_fraction}]}.
    Points on the curve are read off the eval batch's truth: they compare models at equal recall, they
    are not operating points to ship (those come from training.thresholds on validation windows)."""
    from runtime.detector import DetectorConfig, run_detector
    from runtime.frontend import extract_features
    from runtime.pipeline import DevicePipeline

    fe, det = _configs(frontend_cfg, detector_cfg)
    pipeline = DevicePipeline(model_path if isinstance(model_path, bytes) else str(model_path), fe, det)
    events = read_truth(truth_dir)
    skipped: list[dict] = []
    streams = []  # (captures [(record, n_samples)], frame times [T], probs [T, 3]); the samples are dropped
    for run in iter_runs(raw_dir, skipped, fe.baseband_fs_hz):
        decisions = pipeline.run_frames(extract_features(*_stream(run), fe))
        streams.append(([(r, p.shape[1]) for r, p in run], decisions.times_s, decisions.probs))

    def metrics_at(cfg: DetectorConfig) -> dict:
        outcomes = []
        for captures, times, probs in streams:
            trace = run_detector(probs, cfg)
            trace.present[: cfg.context_frames - 1] = False  # as DevicePipeline.run_frames
            outcomes += _split_run(captures, times, trace.present, times[trace.onsets], trace.onset_strict)
        return _count(outcomes, events, skipped, raw_dir)

    curve = []
    for strict in strict_thresholds:
        cfg = dataclasses.replace(
            det, strict_threshold=float(strict), lenient_threshold=min(det.lenient_threshold, float(strict))
        )
        m = metrics_at(cfg)
        curve.append(
            {
                "strict_threshold": cfg.strict_threshold,
                "lenient_threshold": cfg.lenient_threshold,
                **{k: m[k] for k in CURVE_KEYS},
            }
        )
    return {"metrics": metrics_at(det), "curve": curve}


CURVE_KEYS = (
    "false_alarms_per_hour",
    "false_alarms_per_hour_strict",
    "false_alarms_per_hour_lenient",
    "recall_major",
    "recall_minor",
    "false_present_fraction",
)


def _configs(frontend_cfg, detector_cfg):
    from runtime.detector import DetectorConfig
    from runtime.frontend import FrontendConfig

    fe = frontend_cfg if isinstance(frontend_cfg, FrontendConfig) else FrontendConfig.from_dict(frontend_cfg)
    det = detector_cfg if isinstance(detector_cfg, DetectorConfig) else DetectorConfig.from_dict(detector_cfg)
    return fe, det


def pipeline_decide(model: str | Path | bytes, frontend_cfg, detector_cfg) -> tuple[DecideFn, float]:
    """(decide function running runtime.pipeline.DevicePipeline, its baseband rate)."""
    from runtime.pipeline import DevicePipeline

    fe, det = _configs(frontend_cfg, detector_cfg)
    pipeline = DevicePipeline(model if isinstance(model, bytes) else str(model), fe, det)

    def decide(iq: np.ndarray, fs_hz: float, carrier_hz: float):
        d = pipeline.run_capture(iq, fs_hz, carrier_hz)
        return np.asarray(d.times_s), np.asarray(d.present, bool), np.asarray(d.onset_times_s), d.onset_strict

    return decide, fe.baseband_fs_hz


def evaluate_detector(model_path, frontend_cfg, detector_cfg, raw_dir, truth_dir) -> dict:
    """Metrics of the device pipeline (model path or bytes, front-end and detector configs) on a batch."""
    decide, baseband_fs_hz = pipeline_decide(model_path, frontend_cfg, detector_cfg)
    metrics, _ = evaluate_with(decide, raw_dir, truth_dir, baseband_fs_hz)
    return metrics


def read_bundle_payload(bundle_path: str | Path) -> tuple[bytes, dict, dict]:
    """(model_int8.onnx bytes, frontend dict, detector dict) from a bundle folder or tar, no extraction."""
    bundle_path = Path(bundle_path)
    names = ("payload/model_int8.onnx", "payload/frontend.json", "payload/detector.json")
    blobs: dict[str, bytes] = {}
    if bundle_path.is_dir():
        for name in names:
            if not (bundle_path / name).exists():
                raise EvaluationError(f"{bundle_path}: {name} missing")
            blobs[name] = (bundle_path / name).read_bytes()
    elif tarfile.is_tarfile(bundle_path):
        with tarfile.open(bundle_path, "r:*") as tar:
            members = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}
            for name in names:
                if name not in members:
                    raise EvaluationError(f"{bundle_path}: {name} missing")
                fh = tar.extractfile(members[name])
                blobs[name] = fh.read() if fh else b""
    else:
        raise EvaluationError(f"{bundle_path}: neither a bundle folder nor a tar file")
    return blobs[names[0]], json.loads(blobs[names[1]]), json.loads(blobs[names[2]])


def evaluate_bundle(bundle_path, raw_dir, truth_dir) -> dict:
    """Metrics of a bundle's detector (int8 model, front-end, state machine) on a batch it has not seen."""
    model, frontend, detector = read_bundle_payload(bundle_path)
    metrics = evaluate_detector(model, frontend, detector, raw_dir, truth_dir)
    metrics["bundle"] = str(bundle_path)
    return metrics


def compare_models(float_model, int8_model, frontend_cfg, detector_cfg, raw_dir, truth_dir) -> dict:
    """Float vs int8 side by side on a batch: both metric sets and frame-level decision agreement."""
    runs = {}
    for name, model in (("float", float_model), ("int8", int8_model)):
        decide, baseband_fs_hz = pipeline_decide(model, frontend_cfg, detector_cfg)
        runs[name] = evaluate_with(decide, raw_dir, truth_dir, baseband_fs_hz)
    (float_metrics, float_out), (int8_metrics, int8_out) = runs["float"], runs["int8"]
    same = total = 0
    for a, b in zip(float_out, int8_out, strict=True):
        same += int((np.asarray(a.present) == np.asarray(b.present)).sum())
        total += len(a.present)
    return {
        "float": float_metrics,
        "int8": int8_metrics,
        "decision_agreement": same / total if total else None,
        "n_frames": total,
    }


def evaluate_cfar(raw_dir, truth_dir, frontend_cfg, cfar_params) -> dict:
    """Metrics of the classical CFAR baseline (runtime.cfar) with the same counting rules."""
    from runtime import cfar
    from runtime.frontend import FrontendConfig, extract_features, frame_end_times

    fe = frontend_cfg if isinstance(frontend_cfg, FrontendConfig) else FrontendConfig.from_dict(frontend_cfg)
    cfg = cfar_params
    if isinstance(cfar_params, dict):  # the front-end fixes the frame hop and the velocity axis
        derived = {
            "frame_hop_s": fe.hop / fe.baseband_fs_hz,
            "n_velocity_bins": fe.n_velocity_bins,
            "v_axis_max_mps": fe.v_max_mps,
        }
        cfg = cfar.CfarConfig.from_dict({**derived, **cfar_params})

    def decide(iq: np.ndarray, fs_hz: float, carrier_hz: float):
        frames = extract_features(iq, fs_hz, carrier_hz, fe)  # [T, V]
        present = np.asarray(cfar.run_cfar(frames, cfg), dtype=bool)  # [T]
        times = frame_end_times(len(frames), fe)
        return times, present, onsets_from_present(times, present)

    metrics, _ = evaluate_with(decide, raw_dir, truth_dir, fe.baseband_fs_hz)
    return metrics
