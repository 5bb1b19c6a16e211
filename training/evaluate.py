"""Evaluate a detector (front-end + ONNX classifier + state machine) or the CFAR baseline on a raw batch.

Reads any batch that follows the raw log contract (captures.jsonl + iq/*.npy, allow_pickle=False; lab
pcm/*.wav) and its truth (truth_dir/events.jsonl). Captures a device recorded back to back are one
continuous *stream*, as the device runs it: front-end state, classifier context and state machine
carry over, and the stream is fed capture by capture, so a day never sits in memory. Truth events are
rebuilt into *episodes* across the captures (their episode id and extent), and training.metrics counts
per episode (occupancy_metrics), never per capture fragment. A capture whose line or samples are
unreadable is skipped with the reason and splits its stream; lab recordings (one capture per episode)
are streams of one capture.

A batch splits into *shards*, one device's streams each (list_shards; the captures no device stream
holds form the last shard): run_models_shard / run_cfar_shard evaluate one on its own, in any process
and any order, to picklable decisions; merge_shards puts the parts back in shard order, and
models_figures / compare_figures / cfar_figures count them with the same bytes as one pass over the
whole batch (streams come out in the same order; each stream's run depends on its own captures).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from operator import methodcaller
from pathlib import Path
from typing import Protocol

import numpy as np

from training.metrics import Episode, StreamOutcome, det_point, occupancy_metrics

log = logging.getLogger(__name__)

CONTIGUOUS_TOLERANCE_S = 0.002  # t_start may differ from the previous capture's end by this much


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
            try:
                ev = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EvaluationError(f"{path}:{n}: not JSON ({exc.msg})") from exc
            missing = {"capture_id", "t0_s", "t1_s", "event_type", "is_presence"} - set(ev)
            if missing:
                raise EvaluationError(f"{path}:{n}: missing {sorted(missing)}")
            events.append(ev)
    return events


# --- reading captures ---------------------------------------------------------------------------------


def _load_wav_as_baseband(path: Path, record: dict, baseband_fs_hz: float) -> tuple[np.ndarray, float]:
    """Passband PCM (lab captures) demodulated by runtime.demod at the record's carrier (settled edges,
    as ingest reads them)."""
    from scipy.io import wavfile

    from runtime.demod import demodulate

    rate, data = wavfile.read(path)
    if float(rate) != record["fs_hz"]:
        raise ValueError(f"wav rate {rate} != fs_hz {record['fs_hz']}")
    if np.issubdtype(data.dtype, np.integer):
        data = data.astype(np.float32) / float(np.iinfo(data.dtype).max)
    pcm = np.asarray(data, np.float32).T  # [n_channels, n] or [n]
    iq = demodulate(pcm, float(rate), record["carrier_hz"], baseband_fs_hz, edge="settled")
    return iq, baseband_fs_hz


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


def _stream_device(record: dict) -> str | None:
    """The device whose stream a record joins; None for a record that is a stream of its own (lab WAV,
    no device or time)."""
    if _start_s(record) is None or "device_id" not in record:
        return None
    return str(record["device_id"]) if str(record.get("file", "")).endswith(".npy") else None


def contiguous_groups(records: list[dict]) -> list[list[dict]]:
    """Records a device recorded back to back (same device, rate, carrier, mics; baseband files), in time
    order; every other record (lab WAV, no device or time) is a group of its own."""
    keyed, alone = [], []
    for r in records:
        if _stream_device(r) is None:
            alone.append([r])
        else:
            keyed.append((str(r["device_id"]), _start_s(r), r["_line"], r))
    groups: list[list[dict]] = []
    end = 0.0
    for device, start, _, r in sorted(keyed, key=lambda k: k[:3]):
        prev = groups[-1][-1] if groups else None
        same_stream = (
            prev is not None
            and str(prev["device_id"]) == device
            and (prev["fs_hz"], prev["carrier_hz"], prev.get("n_mics"))
            == (r["fs_hz"], r["carrier_hz"], r.get("n_mics"))
            and abs(start - end) <= CONTIGUOUS_TOLERANCE_S
        )
        if same_stream:
            groups[-1].append(r)
        else:
            groups.append([r])
        end = start + float(r["duration_s"])
    return groups + alone


@dataclass(frozen=True)
class Shard:
    """A part of a batch evaluated on its own: one device's streams, or (device_id None) the captures that
    are streams of their own. Shard 0 also reports the index lines that could not be read."""

    index: int
    device_id: str | None

    def holds(self, record: dict) -> bool:
        return _stream_device(record) == self.device_id


def list_shards(raw_dir: str | Path) -> list[Shard]:
    """The batch's shards in merge order: its devices sorted (the order streams come in), then the
    captures no device stream holds; one shard at least."""
    records = _read_index(Path(raw_dir), [])
    devices = {_stream_device(r) for r in records}
    keyed = sorted(d for d in devices if d is not None)
    loose = [None] if None in devices or not keyed else []
    return [Shard(k, d) for k, d in enumerate([*keyed, *loose])]


def iter_stream_captures(
    raw_dir: str | Path, skipped: list[dict], baseband_fs_hz: float = 2000.0, shard: Shard | None = None
) -> Iterator[tuple[int, dict, np.ndarray]]:
    """(stream index, record, iq) for every readable capture, stream by stream, in time order.

    A new index starts a new stream: a device's next capture that does not start where the last ended,
    and the capture after an unreadable one ({capture_id, reason} appended to skipped). iq/*.npy is
    complex baseband at the record's fs_hz; pcm/*.wav (lab) is demodulated to baseband_fs_hz, and the
    yielded record's fs_hz says which rate the samples have. With a shard, only its captures."""
    raw_dir = Path(raw_dir)
    unread: list[dict] = []
    records = _read_index(raw_dir, unread)
    if shard is not None:
        records = [r for r in records if shard.holds(r)]
    if shard is None or shard.index == 0:
        skipped.extend(unread)
    stream = -1
    for group in contiguous_groups(records):
        stream += 1
        for record in group:
            try:
                iq, fs_hz = _load_iq(raw_dir, record, baseband_fs_hz)
            except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
                skipped.append(
                    {"capture_id": str(record["capture_id"]), "reason": f"{type(exc).__name__}: {exc}"[:200]}
                )
                stream += 1
                continue
            yield stream, {**record, "fs_hz": fs_hz}, iq


def iter_captures(
    raw_dir: str | Path, skipped: list[dict], baseband_fs_hz: float = 2000.0
) -> Iterator[tuple[dict, np.ndarray]]:
    """Yield (capture record, iq) for every readable capture, one at a time (see iter_stream_captures)."""
    for _, record, iq in iter_stream_captures(raw_dir, skipped, baseband_fs_hz):
        yield record, iq


# --- what a detector does over a stream ---------------------------------------------------------------


class StreamRun(Protocol):
    """A detector running over one stream: fed capture by capture, then asked for its decisions."""

    def feed(self, iq: np.ndarray) -> None: ...

    def decisions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """(frame times [T] s from the stream start, present [T], onset times [k], onset_strict [k] | None)"""
        ...


Decider = Callable[[float, float, int], StreamRun]  # (fs_hz, carrier_hz, n_mics) -> a run of one stream


@dataclass
class EvaluatedStream:
    """One stream a detector ran over: where its captures sit, its truth episodes, and the run."""

    stream_id: str
    device_id: str
    duration_s: float
    captures: list[tuple[str, float]]  # (capture_id, start s in the stream)
    episodes: list[Episode]
    run: StreamRun


@dataclass
class Evaluation:
    """A detector over a batch: its streams and the captures it could not read."""

    streams: list[EvaluatedStream]
    skipped: list[dict] = field(default_factory=list)

    @property
    def n_captures(self) -> int:
        return sum(len(s.captures) for s in self.streams)


def stream_episodes(truth: dict[str, list[dict]], captures: list[tuple[str, float]]) -> list[Episode]:
    """The truth episodes of a stream in stream seconds, rebuilt from every capture's fragments.

    A fragment with an episode id (and the episode's whole extent, episode_t0_s/episode_t1_s, seconds from
    its capture's start) is one piece of that episode; a fragment without one (lab recordings, older
    batches) is an episode of its own."""
    episodes: dict[str, Episode] = {}
    for capture_id, start in captures:
        for n, ev in enumerate(truth.get(capture_id, [])):
            eid = str(ev.get("episode_id") or f"{capture_id}#{n}")
            if eid in episodes:
                continue
            t0 = float(ev["episode_t0_s"]) if "episode_t0_s" in ev else float(ev["t0_s"])
            t1 = float(ev["episode_t1_s"]) if "episode_t1_s" in ev else float(ev["t1_s"])
            episodes[eid] = Episode(
                eid, str(ev["event_type"]), bool(ev["is_presence"]), start + t0, start + t1,
                str(ev.get("motion_class") or "none"),
            )  # fmt: skip
    return sorted(episodes.values(), key=lambda e: (e.t0, e.episode_id))


def run_batch(
    decider: Decider, raw_dir, truth_dir, baseband_fs_hz: float = 2000.0, shard: Shard | None = None
) -> Evaluation:
    """Run a detector over every stream of a batch, or of one of its shards (each capture read once, in
    order)."""
    truth: dict[str, list[dict]] = {}
    for ev in read_truth(truth_dir):
        truth.setdefault(str(ev["capture_id"]), []).append(ev)
    skipped: list[dict] = []
    streams: list[EvaluatedStream] = []
    current = None
    for index, record, iq in iter_stream_captures(raw_dir, skipped, baseband_fs_hz, shard):
        if current is None or current[0] != index:
            run = decider(float(record["fs_hz"]), float(record["carrier_hz"]), int(iq.shape[0]))
            current = (
                index,
                EvaluatedStream(
                    str(record["capture_id"]), str(record.get("device_id", "")), 0.0, [], [], run
                ),
            )
            streams.append(current[1])
        stream = current[1]
        stream.captures.append((str(record["capture_id"]), stream.duration_s))
        stream.run.feed(iq)
        stream.duration_s += iq.shape[1] / float(record["fs_hz"])
    for stream in streams:
        stream.episodes = stream_episodes(truth, stream.captures)
    if skipped and shard is None:  # a sharded batch says so once, when merged
        log.warning("skipped %d unreadable captures in %s", len(skipped), raw_dir)
    return Evaluation(streams, skipped)


# --- shards: decisions taken where the streams ran, figures once the parts are merged -------------------


Variants = dict[object, Callable[[StreamRun], tuple]]  # key -> decisions of a run (StreamRun.decisions)


@dataclass
class DecidedStream:
    """A stream's place and truth with the detector's decisions under each variant (no run: picklable,
    so a shard's part travels between processes)."""

    stream_id: str
    device_id: str
    duration_s: float
    captures: list[tuple[str, float]]
    episodes: list[Episode]
    decisions: dict[object, tuple]  # variant key -> (times, present, onsets, onset_strict)


@dataclass
class ShardPart:
    """What one shard's evaluation leaves for the merge: its streams' decisions and unread captures."""

    shard: Shard | None  # None: the whole batch in one part
    streams: list[DecidedStream]
    skipped: list[dict]


def decide(evaluation: Evaluation, variants: Variants, shard: Shard | None = None) -> ShardPart:
    """Every stream's decisions under every variant (frame times shared when equal, so pickled once)."""
    streams = []
    for s in evaluation.streams:
        decisions: dict[object, tuple] = {}
        times = None
        for key, fn in variants.items():
            t, present, onsets, strict = fn(s.run)
            if times is not None and np.array_equal(t, times):
                t = times
            times = t
            decisions[key] = (t, present, onsets, strict)
        streams.append(
            DecidedStream(s.stream_id, s.device_id, s.duration_s, s.captures, s.episodes, decisions)
        )
    return ShardPart(shard, streams, list(evaluation.skipped))


def merge_shards(parts: list[ShardPart], raw_dir=None) -> Evaluation:
    """One batch's parts (any order) back in shard order: the streams and skipped captures of one pass."""
    if any(p.shard is None for p in parts) and len(parts) > 1:
        raise ValueError("a whole-batch part cannot be merged with others")
    ordered = sorted(parts, key=lambda p: p.shard.index if p.shard is not None else 0)
    indices = [p.shard.index for p in ordered if p.shard is not None]
    if len(set(indices)) != len(indices):
        raise ValueError(f"shards merged twice: {indices}")
    skipped = [x for p in ordered for x in p.skipped]
    if skipped and raw_dir is not None:
        log.warning("skipped %d unreadable captures in %s", len(skipped), raw_dir)
    return Evaluation([s for p in ordered for s in p.streams], skipped)


def decided_outcomes(evaluation: Evaluation, key) -> list[StreamOutcome]:
    """The decided streams' outcomes under one variant."""
    return [outcome(s, s.decisions[key]) for s in evaluation.streams]


def outcome(stream: EvaluatedStream, decisions=None) -> StreamOutcome:
    times, present, onsets, strict = stream.run.decisions() if decisions is None else decisions
    return StreamOutcome(
        stream.stream_id, stream.device_id, stream.duration_s, times, present, onsets, strict, stream.captures
    )


def metrics_of(
    evaluation: Evaluation, outcomes: list[StreamOutcome] | None = None
) -> tuple[dict, list[dict]]:
    """(figures, per-episode rows) of an evaluation (outcomes: the streams' decisions, if re-derived)."""
    outcomes = outcomes if outcomes is not None else [outcome(s) for s in evaluation.streams]
    metrics, rows = occupancy_metrics(
        [(o, s.episodes) for o, s in zip(outcomes, evaluation.streams, strict=True)]
    )
    metrics["n_captures"] = evaluation.n_captures
    metrics["n_captures_skipped"] = len(evaluation.skipped)
    metrics["skipped"] = evaluation.skipped
    return metrics, rows


# --- the learned detector -----------------------------------------------------------------------------


def _configs(frontend_cfg, detector_cfg):
    from runtime.detector import DetectorConfig
    from runtime.frontend import FrontendConfig

    fe = frontend_cfg if isinstance(frontend_cfg, FrontendConfig) else FrontendConfig.from_dict(frontend_cfg)
    det = detector_cfg if isinstance(detector_cfg, DetectorConfig) else DetectorConfig.from_json(detector_cfg)
    return fe, det


class PipelineRun:
    """The device pipeline over one stream for one or more models on the same front-end frames."""

    def __init__(self, pipelines, fs_hz: float, carrier_hz: float, n_mics: int):
        from runtime.frontend import StreamingFrontend

        self.pipelines = pipelines
        self.frontend = StreamingFrontend(pipelines[0].frontend_cfg, fs_hz, carrier_hz, n_mics)
        self.streams = [p.stream() for p in pipelines]
        self._probs: list[list[np.ndarray]] = [[] for _ in pipelines]

    def feed(self, iq: np.ndarray) -> None:
        frames = self.frontend.process(iq)  # [k, V]
        for k, stream in enumerate(self.streams):
            self._probs[k].append(stream.feed_frames(frames))

    def probs(self, k: int = 0) -> np.ndarray:
        """[T, 3] class probabilities of model k over the stream."""
        parts = self._probs[k]
        if len(parts) > 1:
            self._probs[k] = [np.concatenate(parts)]
        return self._probs[k][0] if self._probs[k] else np.zeros((0, 3), np.float32)

    def decisions(self, k: int = 0, detector_cfg=None):
        from runtime.detector import run_detector
        from runtime.frontend import frame_end_times

        pipeline = self.pipelines[k]
        cfg = detector_cfg or pipeline.detector_cfg
        trace = run_detector(self.probs(k), cfg)
        trace.present[: cfg.no_decision_frames()] = False  # waiting for the first full context
        times = frame_end_times(len(trace.present), pipeline.frontend_cfg)
        return times, trace.present, times[trace.onsets], trace.onset_strict


def _detector(detector_cfg):
    """runtime.detector.DetectorConfig of a config or a detector.json dict."""
    from runtime.detector import DetectorConfig

    if isinstance(detector_cfg, DetectorConfig):
        return detector_cfg
    return DetectorConfig.from_json(detector_cfg)


def pipeline_decider(models: list, frontend_cfg, detector_cfg) -> tuple[Decider, float]:
    """(a Decider running runtime.pipeline.DevicePipeline for each model on shared frames, baseband rate)."""
    from runtime.pipeline import DevicePipeline

    fe, det = _configs(frontend_cfg, detector_cfg)
    pipelines = [DevicePipeline(m if isinstance(m, bytes) else str(m), fe, det) for m in models]
    return (lambda fs, carrier, n_mics: PipelineRun(pipelines, fs, carrier, n_mics)), fe.baseband_fs_hz


def evaluate_detector(model_path, frontend_cfg, detector_cfg, raw_dir, truth_dir) -> dict:
    """Figures of the device pipeline (model path or bytes, front-end and detector configs) on a batch."""
    metrics, _ = evaluate_detector_rows(model_path, frontend_cfg, detector_cfg, raw_dir, truth_dir)
    return metrics


def evaluate_detector_rows(
    model_path, frontend_cfg, detector_cfg, raw_dir, truth_dir
) -> tuple[dict, list[dict]]:
    """(figures, per-episode rows) of the device pipeline on a batch."""
    decider, fs = pipeline_decider([model_path], frontend_cfg, detector_cfg)
    return metrics_of(run_batch(decider, raw_dir, truth_dir, fs))


def _strict_config(detector_cfg, strict: float):
    """The detector at another strict threshold (lenient threshold min(its own, strict))."""
    return dataclasses.replace(
        detector_cfg,
        strict_threshold=float(strict),
        lenient_threshold=min(detector_cfg.lenient_threshold, float(strict)),
    )


def _curve_thresholds(det, det_thresholds) -> list[float]:
    return sorted({float(t) for t in det_thresholds} | {det.strict_threshold}) if det_thresholds else []


def strict_curve(evaluation: Evaluation, detector_cfg, thresholds: list[float], k: int = 0) -> list[dict]:
    """The detection-error trade-off of model k: one det_point per strict threshold, the state machine
    re-run on the stored probs (lenient threshold min(its own, strict))."""
    curve = []
    for strict in thresholds:
        cfg = _strict_config(detector_cfg, strict)
        outcomes = [outcome(s, s.run.decisions(k, cfg)) for s in evaluation.streams]
        curve.append(det_point(metrics_of(evaluation, outcomes)[0], strict))
    return curve


def run_models_shard(
    models: dict[str, object], frontend_cfg, detector_cfg, raw_dir, truth_dir, shard=None, det_thresholds=()
) -> ShardPart:
    """Several models (name -> path or bytes) of one detector config over one shard of a batch (None: the
    whole batch) in one pass: each stream's decisions at the operating point, key (name, None), and at
    every strict threshold of the detection-error trade-off, key (name, threshold)."""
    fe, det = _configs(frontend_cfg, detector_cfg)
    names = list(models)
    decider, fs = pipeline_decider([models[n] for n in names], fe, det)
    variants: Variants = {}
    for k, name in enumerate(names):
        variants[(name, None)] = methodcaller("decisions", k)
        for t in _curve_thresholds(det, det_thresholds):
            variants[(name, t)] = methodcaller("decisions", k, _strict_config(det, t))
    return decide(run_batch(decider, raw_dir, truth_dir, fs, shard), variants, shard)


def models_figures(evaluation: Evaluation, names, detector_cfg, det_thresholds=()) -> dict[str, dict]:
    """name -> {"metrics": figures (with det_curve and operating_point), "rows": per-episode rows,
    "present": [frames] bool per stream concatenated (for decision agreement)} of a merged
    run_models_shard evaluation."""
    det = _detector(detector_cfg)
    thresholds = _curve_thresholds(det, det_thresholds)
    out = {}
    for name in names:
        outcomes = decided_outcomes(evaluation, (name, None))
        metrics, rows = metrics_of(evaluation, outcomes)
        if thresholds:
            metrics["det_curve"] = [
                det_point(metrics_of(evaluation, decided_outcomes(evaluation, (name, t)))[0], t)
                for t in thresholds
            ]
            metrics["operating_point"] = det_point(metrics, det.strict_threshold)
        present = np.concatenate([o.present for o in outcomes]) if outcomes else np.zeros(0, bool)
        out[name] = {"metrics": metrics, "rows": rows, "present": present}
    return out


def evaluate_models(
    models: dict[str, object], frontend_cfg, detector_cfg, raw_dir, truth_dir, det_thresholds=()
) -> dict[str, dict]:
    """Several models (name -> path or bytes) of one detector config over a batch in one pass
    (models_figures says what comes back)."""
    part = run_models_shard(models, frontend_cfg, detector_cfg, raw_dir, truth_dir, None, det_thresholds)
    return models_figures(merge_shards([part]), list(models), detector_cfg, det_thresholds)


def compare_figures(evaluation: Evaluation, detector_cfg, det_thresholds=()) -> dict:
    """Float vs int8 side by side (a merged run_models_shard evaluation of models "float" and "int8"):
    both figure sets, their per-episode rows, and the frame-level decision agreement (the int8 gate)."""
    both = models_figures(evaluation, ("float", "int8"), detector_cfg, det_thresholds)
    a, b = both["float"]["present"], both["int8"]["present"]
    return {
        "float": both["float"]["metrics"],
        "int8": both["int8"]["metrics"],
        "rows": {name: both[name]["rows"] for name in ("float", "int8")},
        "decision_agreement": float((a == b).mean()) if a.size else None,
        "n_frames": int(a.size),
    }


def compare_models(
    float_model, int8_model, frontend_cfg, detector_cfg, raw_dir, truth_dir, det_thresholds=()
) -> dict:
    """Float vs int8 side by side on a batch (compare_figures says what comes back)."""
    models = {"float": float_model, "int8": int8_model}
    part = run_models_shard(models, frontend_cfg, detector_cfg, raw_dir, truth_dir, None, det_thresholds)
    return compare_figures(merge_shards([part]), detector_cfg, det_thresholds)


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


def evaluate_bundle_rows(bundle_path, raw_dir, truth_dir) -> tuple[dict, list[dict]]:
    """(figures, per-episode rows) of a bundle's detector (int8 model, front-end, state machine)."""
    model, frontend, detector = read_bundle_payload(bundle_path)
    metrics, rows = evaluate_detector_rows(model, frontend, detector, raw_dir, truth_dir)
    metrics["bundle"] = str(bundle_path)
    return metrics, rows


def evaluate_bundle(bundle_path, raw_dir, truth_dir) -> dict:
    """Figures of a bundle's detector on a batch it has not seen."""
    return evaluate_bundle_rows(bundle_path, raw_dir, truth_dir)[0]


# --- the classical baseline ---------------------------------------------------------------------------


class CfarRun:
    """runtime.cfar over one stream: the front-end's band energy per frame, CFAR state across captures."""

    def __init__(self, fe, cfg, fs_hz: float, carrier_hz: float, n_mics: int):
        import dataclasses

        from runtime.frontend import StreamingFrontend

        self.fe, self.cfg = fe, cfg
        power_only = dataclasses.replace(fe, channels=("power",))  # CFAR reads band power only
        self.frontend = StreamingFrontend(power_only, fs_hz, carrier_hz, n_mics)
        self._energy: list[np.ndarray] = []

    def feed(self, iq: np.ndarray) -> None:
        from runtime.cfar import band_energy

        self._energy.append(band_energy(self.frontend.process(iq), self.cfg))

    def decisions(self, cfg=None):
        from runtime.cfar import CfarDetector
        from runtime.frontend import frame_end_times
        from training.metrics import onsets_from_present

        energy = np.concatenate(self._energy) if self._energy else np.zeros(0)
        detector = CfarDetector(cfg or self.cfg)
        present = np.fromiter((detector.step_energy(float(e)) for e in energy), dtype=bool, count=len(energy))
        times = frame_end_times(len(present), self.fe)
        return times, present, onsets_from_present(times, present), None


def cfar_config(frontend_cfg, cfar_cfg):
    """runtime.cfar.CfarConfig: as given, or the front-end's hop and axis with a (whole) `runtime.cfar`
    section."""
    from runtime import cfar
    from runtime.frontend import FrontendConfig

    fe = frontend_cfg if isinstance(frontend_cfg, FrontendConfig) else FrontendConfig.from_dict(frontend_cfg)
    if isinstance(cfar_cfg, cfar.CfarConfig):
        return fe, cfar_cfg
    derived = {
        "frame_hop_s": fe.hop / fe.baseband_fs_hz,
        "n_velocity_bins": fe.n_velocity_bins,
        "v_axis_max_mps": fe.v_max_mps,
    }
    return fe, cfar.CfarConfig.from_dict({**derived, **cfar_cfg})


def _cfar_thresholds(cfg, det_thresholds_db) -> list[float]:
    return sorted({float(t) for t in det_thresholds_db} | {cfg.threshold_db}) if det_thresholds_db else []


def run_cfar_shard(raw_dir, truth_dir, frontend_cfg, cfar_cfg, shard=None, det_thresholds_db=()) -> ShardPart:
    """The classical CFAR baseline (runtime.cfar) over one shard of a batch (None: the whole batch): each
    stream's decisions at its threshold, key None, and at every det_thresholds_db point, key the
    threshold."""
    fe, cfg = cfar_config(frontend_cfg, cfar_cfg)
    variants: Variants = {None: methodcaller("decisions")}
    for th in _cfar_thresholds(cfg, det_thresholds_db):
        variants[th] = methodcaller("decisions", dataclasses.replace(cfg, threshold_db=th))
    evaluation = run_batch(
        lambda fs, carrier, n: CfarRun(fe, cfg, fs, carrier, n), raw_dir, truth_dir, fe.baseband_fs_hz, shard
    )
    return decide(evaluation, variants, shard)


def cfar_figures(
    evaluation: Evaluation, frontend_cfg, cfar_cfg, det_thresholds_db=()
) -> tuple[dict, list[dict]]:
    """(figures, per-episode rows) of a merged run_cfar_shard evaluation; with det_thresholds_db its
    detection-error trade-off over threshold_db."""
    _, cfg = cfar_config(frontend_cfg, cfar_cfg)
    metrics, rows = metrics_of(evaluation, decided_outcomes(evaluation, None))
    if det_thresholds_db:
        metrics["det_curve"] = [
            det_point(metrics_of(evaluation, decided_outcomes(evaluation, th))[0], th)
            for th in _cfar_thresholds(cfg, det_thresholds_db)
        ]
        metrics["operating_point"] = det_point(metrics, cfg.threshold_db)
    return metrics, rows


def evaluate_cfar_rows(
    raw_dir, truth_dir, frontend_cfg, cfar_cfg, det_thresholds_db=()
) -> tuple[dict, list[dict]]:
    """(figures, per-episode rows) of the classical CFAR baseline (runtime.cfar), same counting rules;
    with det_thresholds_db its detection-error trade-off over threshold_db."""
    part = run_cfar_shard(raw_dir, truth_dir, frontend_cfg, cfar_cfg, None, det_thresholds_db)
    return cfar_figures(merge_shards([part]), frontend_cfg, cfar_cfg, det_thresholds_db)


def evaluate_cfar(raw_dir, truth_dir, frontend_cfg, cfar_cfg) -> dict:
    """Figures of the classical CFAR baseline with the same counting rules."""
    return evaluate_cfar_rows(raw_dir, truth_dir, frontend_cfg, cfar_cfg)[0]
