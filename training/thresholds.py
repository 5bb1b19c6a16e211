"""Operating thresholds chosen on validation windows for a target false-alarm rate per hour.

The detector (runtime.detector) fires on a strict threshold for major motion and, while the room is
known to be occupied, a lenient one for minor motion. Scores: strict uses p_major, lenient uses
p_minor + p_major (any presence). False alarms per hour are estimated on validation windows labelled
`none`: each window stands for window_stride * frame_hop_s seconds of empty room, and a run of
consecutive over-threshold windows of one capture counts as one onset (without capture ids every
over-threshold window counts: an upper bound).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from runtime.labels import MAJOR, MINOR, NONE
from training.config import TrainRun
from training.metrics import TOLERANCE_S

log = logging.getLogger(__name__)

MAX_THRESHOLD = 0.99


def strict_score(probs: np.ndarray) -> np.ndarray:
    return probs[:, MAJOR]  # [N]


def lenient_score(probs: np.ndarray) -> np.ndarray:
    return probs[:, MINOR] + probs[:, MAJOR]  # [N]


def count_onsets(over: np.ndarray, capture_ids: np.ndarray | None) -> int:
    """Rising edges of a boolean sequence [N]; a new capture starts a new run."""
    if over.size == 0:
        return 0
    if capture_ids is None:
        return int(over.sum())
    prev = np.concatenate([[False], over[:-1]])
    new_capture = np.concatenate([[True], capture_ids[1:] != capture_ids[:-1]])
    return int((over & (~prev | new_capture)).sum())


def false_alarms_per_hour(
    score: np.ndarray,
    labels: np.ndarray,
    threshold: float,
    window_s: float,
    capture_ids: np.ndarray | None,
    ignore: np.ndarray | None = None,
) -> float:
    """Onsets per hour over `none` windows; `ignore` [N] drops windows (e.g. next to presence)."""
    none = labels == NONE
    if ignore is not None:
        none &= ~ignore
    hours = none.sum() * window_s / 3600.0
    if hours <= 0:
        return float("inf")
    ids = None if capture_ids is None else capture_ids[none]
    return float(count_onsets(score[none] >= threshold, ids) / hours)


def _lowest_threshold_meeting(
    score: np.ndarray,
    labels: np.ndarray,
    target: float,
    window_s: float,
    capture_ids: np.ndarray | None,
    ignore: np.ndarray | None,
    min_threshold: float,
) -> tuple[float, bool]:
    """(threshold, target met). Unreachable target: the lowest threshold with the fewest alarms."""
    none_scores = np.sort(score[labels == NONE])[-256:]  # only the highest none scores can matter
    grid = np.linspace(min_threshold, MAX_THRESHOLD, 100)
    candidates = np.unique(np.concatenate([grid, none_scores + 1e-6]))
    candidates = candidates[(candidates >= min_threshold) & (candidates <= MAX_THRESHOLD)]
    rates = np.array(
        [false_alarms_per_hour(score, labels, float(th), window_s, capture_ids, ignore) for th in candidates]
    )
    meeting = np.flatnonzero(rates <= target)
    if meeting.size:  # ascending: the first that meets the target keeps the most recall
        return float(candidates[meeting[0]]), True
    return float(candidates[np.flatnonzero(rates == rates.min())[0]]), False


def near_presence(
    labels: np.ndarray, capture_ids: np.ndarray, end_times_s: np.ndarray, margin_s: float
) -> np.ndarray:
    """Mask [N] of `none` windows within margin_s of a presence window of the same capture.

    The evaluation does not count an onset within 1 s of a presence event as a false alarm, and a
    window still holds frames of a presence that ended up to one context length before its end.
    """
    out = np.zeros(len(labels), bool)
    for cid in np.unique(capture_ids):
        rows = np.flatnonzero(capture_ids == cid)
        presence_t = end_times_s[rows][labels[rows] != NONE]
        if presence_t.size == 0:
            continue
        t = end_times_s[rows]
        dist = np.abs(t[:, None] - presence_t[None, :]).min(1)  # [n_rows]
        out[rows] = (labels[rows] == NONE) & (dist <= margin_s)
    return out


def choose_thresholds(
    probs: np.ndarray,
    labels: np.ndarray,
    frame_hop_s: float,
    target_fa_per_hour: float,
    *,
    window_stride: int = 1,
    capture_ids: np.ndarray | None = None,
    lenient_fa_per_hour: float | None = None,
    base_detector: dict | None = None,
    ignore: np.ndarray | None = None,
    min_strict: float = 0.5,
    min_lenient: float = 0.3,
    lenient_minor_recall: float | None = None,
) -> dict:
    """Detector config (base_detector with strict/lenient thresholds replaced) for the target FA/h.

    probs [N,3] and labels [N] are validation windows in capture/time order when capture_ids [N] is
    given. The lenient threshold acts only while the room is known to be occupied, so its false alarms
    happen in the minute after someone left, exposure that validation windows cannot measure: with
    lenient_minor_recall it keeps that share of the validation minor windows (the still person is not
    lost); otherwise it targets lenient_fa_per_hour over every none window (default 10x the strict
    target; pessimistic). It never exceeds the strict one. ignore [N] marks `none` windows
    left out of the estimate (see near_presence). When a target cannot be met on this validation set,
    the lowest threshold with the fewest false alarms is used and a warning is logged. Thresholds never
    go below min_strict / min_lenient: a small validation set with no false alarms at all would
    otherwise pick a threshold no better than chance.
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    if probs.ndim != 2 or probs.shape[1] != 3 or probs.shape[0] != labels.shape[0]:
        raise ValueError(f"probs must be [N,3] matching labels [N]; got {probs.shape} and {labels.shape}")
    usable = labels == NONE if ignore is None else (labels == NONE) & ~np.asarray(ignore, bool)
    if not usable.any():
        raise ValueError("no validation windows labelled none: false alarms per hour cannot be estimated")
    if target_fa_per_hour < 0 or frame_hop_s <= 0 or window_stride < 1:
        raise ValueError("target_fa_per_hour >= 0, frame_hop_s > 0 and window_stride >= 1 required")
    ids = None if capture_ids is None else np.asarray(capture_ids).astype(str)
    window_s = window_stride * frame_hop_s
    lenient_target = 10.0 * target_fa_per_hour if lenient_fa_per_hour is None else lenient_fa_per_hour
    strict, strict_met = _lowest_threshold_meeting(
        strict_score(probs), labels, target_fa_per_hour, window_s, ids, ignore, min_strict
    )
    minor = labels == MINOR
    if lenient_minor_recall is not None and minor.any():
        if not 0 < lenient_minor_recall <= 1:
            raise ValueError(f"lenient_minor_recall must be in (0, 1], got {lenient_minor_recall}")
        keep = float(np.quantile(lenient_score(probs)[minor], 1.0 - lenient_minor_recall))
        lenient, lenient_met = float(np.clip(keep, min_lenient, MAX_THRESHOLD)), True
    else:
        lenient, lenient_met = _lowest_threshold_meeting(
            lenient_score(probs), labels, lenient_target, window_s, ids, ignore, min_lenient
        )
    if not (strict_met and lenient_met):
        log.warning(
            "false-alarm target not reachable on %.3f h of validation none windows; using the fewest-alarm "
            "thresholds (strict %.3f, lenient %.3f)",
            (labels == NONE).sum() * window_s / 3600.0,
            strict,
            lenient,
        )
    out = dict(base_detector or {})
    # rounded up (never down: a threshold just above a false alarm's score must stay above it)
    out["strict_threshold"] = min(float(np.ceil(strict * 1e6) / 1e6), 1.0)
    out["lenient_threshold"] = min(float(np.ceil(min(lenient, strict) * 1e6) / 1e6), 1.0)
    return out


def operating_point(
    probs: np.ndarray,
    labels: np.ndarray,
    detector: dict,
    frame_hop_s: float,
    window_stride: int = 1,
    capture_ids: np.ndarray | None = None,
    ignore: np.ndarray | None = None,
) -> dict:
    """Validation figures at the chosen thresholds: estimated FA/h and window-level recall."""
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    ids = None if capture_ids is None else np.asarray(capture_ids).astype(str)
    window_s = window_stride * frame_hop_s
    strict, lenient = float(detector["strict_threshold"]), float(detector["lenient_threshold"])
    major, minor = labels == MAJOR, labels == MINOR
    return {
        "hours_none": float((labels == NONE).sum() * window_s / 3600.0),
        "n_none_windows_near_presence": int(0 if ignore is None else ignore.sum()),
        "fa_per_hour_strict": false_alarms_per_hour(
            strict_score(probs), labels, strict, window_s, ids, ignore
        ),
        "fa_per_hour_lenient": false_alarms_per_hour(
            lenient_score(probs), labels, lenient, window_s, ids, ignore
        ),
        "recall_major_strict": float((strict_score(probs)[major] >= strict).mean()) if major.any() else None,
        "recall_minor_lenient": float((lenient_score(probs)[minor] >= lenient).mean())
        if minor.any()
        else None,
    }


def thresholds_from_run(out_dir: str | Path, run: TrainRun) -> tuple[dict, dict]:
    """Read out_dir/val_predictions.parquet (train_classifier) and choose thresholds (run.training).

    Returns (run.detector's config with the chosen thresholds, validation operating point).
    """
    import polars as pl

    preds = pl.read_parquet(Path(out_dir) / "val_predictions.parquet").sort(["capture_id", "end_frame"])
    probs = preds.select("p_none", "p_minor", "p_major").to_numpy()
    labels = preds["label"].to_numpy()
    ids = preds["capture_id"].to_numpy().astype(str)
    tr = run.training
    frame_hop_s = run.detector.frame_hop_s
    stride = run.window_stride
    context_s = run.detector.context_frames * frame_hop_s
    end_times = preds["end_frame"].to_numpy() * frame_hop_s
    ignore = near_presence(labels, ids, end_times, TOLERANCE_S + context_s)
    sources = tr.threshold_sources
    if sources and "source" in preds.columns:
        # false alarms per hour need empty-room windows that sample time uniformly: mined picks are the
        # hardest windows by construction, and counting them as hours of empty room overstates the rate
        uniform = np.isin(preds["source"].to_numpy().astype(str), [str(s) for s in sources])
        ignore = ignore | ((labels == NONE) & ~uniform)
    detector = choose_thresholds(
        probs,
        labels,
        frame_hop_s,
        tr.target_false_alarms_per_hour,
        window_stride=stride,
        capture_ids=ids,
        lenient_fa_per_hour=tr.lenient_false_alarms_per_hour,
        base_detector=run.detector.to_dict(),
        ignore=ignore,
        min_strict=tr.min_strict_threshold,
        min_lenient=tr.min_lenient_threshold,
        lenient_minor_recall=tr.lenient_minor_recall,
    )
    point = operating_point(probs, labels, detector, frame_hop_s, stride, ids, ignore)
    point["target_false_alarms_per_hour"] = tr.target_false_alarms_per_hour
    return detector, point
