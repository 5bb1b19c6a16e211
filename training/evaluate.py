"""Evaluate a detector (front-end + ONNX classifier + state machine) or the CFAR baseline on a raw batch.

Reads any batch that follows the raw log contract (captures.jsonl + iq/*.npy, allow_pickle=False) and
its truth (truth_dir/events.jsonl). Captures whose line or samples are unreadable are skipped and
counted with the reason. Counting follows training.metrics (issue 2's rules).
"""

from __future__ import annotations

import json
import logging
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from training.metrics import CaptureOutcome, count_outcomes, onsets_from_present

log = logging.getLogger(__name__)

# (iq [n_mics, n], fs_hz, carrier_hz) -> (times_s [T], present [T], onset_times_s [k])
DecideFn = Callable[[np.ndarray, float, float], tuple[np.ndarray, np.ndarray, np.ndarray]]


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


def iter_captures(
    raw_dir: str | Path, skipped: list[dict], baseband_fs_hz: float = 2000.0
) -> Iterator[tuple[dict, np.ndarray]]:
    """Yield (capture record, iq) for every readable capture; append {capture_id, reason} to skipped.

    iq/*.npy is complex baseband at the record's fs_hz; pcm/*.wav (lab) is demodulated to
    baseband_fs_hz, and the yielded record's fs_hz says which rate the samples have.
    """
    raw_dir = Path(raw_dir)
    index = raw_dir / "captures.jsonl"
    if not index.exists():
        raise EvaluationError(f"{index}: missing")
    with open(index, encoding="utf-8") as fh:
        lines = fh.readlines()
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
            record = {**record, "fs_hz": fs_hz, "carrier_hz": carrier_hz}
            iq, record["fs_hz"] = _load_iq(raw_dir, record, baseband_fs_hz)
        except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
            skipped.append({"capture_id": cid, "reason": f"{type(exc).__name__}: {exc}"[:200]})
            continue
        yield record, iq


def evaluate_with(
    decide: DecideFn, raw_dir: str | Path, truth_dir: str | Path, baseband_fs_hz: float = 2000.0
) -> tuple[dict, list[CaptureOutcome]]:
    """Run `decide` on every readable capture and count; return (metrics, per-capture outcomes)."""
    events = read_truth(truth_dir)
    skipped: list[dict] = []
    outcomes = []
    for record, iq in iter_captures(raw_dir, skipped, baseband_fs_hz):
        times_s, present, onsets = decide(iq, record["fs_hz"], record["carrier_hz"])
        duration = iq.shape[1] / record["fs_hz"]
        outcomes.append(CaptureOutcome(str(record["capture_id"]), duration, times_s, present, onsets))
    metrics = count_outcomes(outcomes, events)
    metrics["n_captures_skipped"] = len(skipped)
    metrics["skipped"] = skipped
    if skipped:
        log.warning("skipped %d unreadable captures in %s", len(skipped), raw_dir)
    return metrics, outcomes


def _configs(frontend_cfg, detector_cfg):
    from runtime.detector import DetectorConfig
    from runtime.frontend import FrontendConfig

    fe = frontend_cfg if isinstance(frontend_cfg, FrontendConfig) else FrontendConfig.from_dict(frontend_cfg)
    det = detector_cfg if isinstance(detector_cfg, DetectorConfig) else DetectorConfig.from_dict(detector_cfg)
    return fe, det


def _pipeline_decide(model: str | Path | bytes, frontend_cfg, detector_cfg) -> tuple[DecideFn, float]:
    """(decide function running runtime.pipeline.DevicePipeline, its baseband rate)."""
    from runtime.pipeline import DevicePipeline

    fe, det = _configs(frontend_cfg, detector_cfg)
    pipeline = DevicePipeline(model if isinstance(model, bytes) else str(model), fe, det)

    def decide(iq: np.ndarray, fs_hz: float, carrier_hz: float):
        d = pipeline.run_capture(iq, fs_hz, carrier_hz)
        return np.asarray(d.times_s), np.asarray(d.present, bool), np.asarray(d.onset_times_s)

    return decide, fe.baseband_fs_hz


def evaluate_detector(model_path, frontend_cfg, detector_cfg, raw_dir, truth_dir) -> dict:
    """Metrics of the device pipeline (model path or bytes, front-end and detector configs) on a batch."""
    decide, baseband_fs_hz = _pipeline_decide(model_path, frontend_cfg, detector_cfg)
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
        decide, baseband_fs_hz = _pipeline_decide(model, frontend_cfg, detector_cfg)
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
