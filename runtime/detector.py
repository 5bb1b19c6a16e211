"""Detector state machine over classifier probabilities (one step per frame).

Per emission-on frame with probs p = (p_none, p_minor, p_major):
- strict positive: p_major >= strict_threshold (major motion; it also marks the room occupied);
- lenient positive: while the last strict positive is at most occupied_window_s old,
  p_minor + p_major >= lenient_threshold (minor motion of someone known to be there); with
  lenient_reentry false, only while presence is on (it holds a presence, it never starts one: only
  a strict positive does; docs/runtime.md has the measured trade-off);
- present while the last positive is at most hold_s old; an onset is an absent -> present step. Every
  onset happens on a positive frame, so it is either an entry (strict positive: major motion from an
  empty room) or a re-entry (lenient positive in the occupied window after presence lapsed);
- duty cycling (duty_cycling and emission_off_s > 0): once presence has lasted confirm_s, emission
  switches off for emission_off_s; those frames are ignored and the state is held (clocks frozen).
  After emission returns, the classifier needs context_frames fresh frames, so the next
  context_frames - 1 frames are ignored too (warm-up) before decisions resume.
Times are counted in frames of frame_hop_s, so a state machine on the DSP gets the same answers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from runtime.config import config_from_dict
from runtime.labels import MAJOR, MINOR
from runtime.windows import STREAM_START_MODES, decides_from_stream_start

_NEVER = 1 << 60  # "frames since" for an event that has not happened
# The one key a bundle's detector.json carries that DetectorConfig does not model: the rare-event
# trigger's threshold (mining.rare_event), which belongs to payload/rare_event.onnx, not the state machine.
RARE_EVENT_THRESHOLD_KEY = "rare_event_threshold"


@dataclass(frozen=True)
class DetectorConfig:
    """The `detector` section of params.yaml with the frame hop and context (from_params), and a bundle's
    detector.json. Every field a detector.json has always carried is required; the defaults are the
    behaviour of bundles written before the key."""

    strict_threshold: float
    lenient_threshold: float
    occupied_window_s: float
    hold_s: float
    confirm_s: float
    emission_off_s: float
    duty_cycling: bool
    frame_hop_s: float
    context_frames: int
    # True (a detector.json without the key, as bundles built before it): a lenient positive in the
    # occupied window re-enters presence after a lapse; False: it only holds a presence that is on
    lenient_reentry: bool = True
    # frames before the stream's first full context (runtime.windows.STREAM_START_MODES): "wait" (no
    # decision there, the default, so a detector.json without the key keeps its behaviour) or a padded
    # first context ("pad_min", "pad_first")
    stream_start: str = "wait"

    def __post_init__(self) -> None:
        if not (0 <= self.lenient_threshold <= 1 and 0 <= self.strict_threshold <= 1):
            raise ValueError("thresholds must lie in [0, 1]")
        if min(self.occupied_window_s, self.hold_s, self.confirm_s, self.emission_off_s) < 0:
            raise ValueError("durations must be >= 0")
        if self.frame_hop_s <= 0 or self.context_frames < 1:
            raise ValueError("frame_hop_s must be > 0 and context_frames >= 1")
        if self.stream_start not in STREAM_START_MODES:
            raise ValueError(
                f"stream_start {self.stream_start!r} is not one of {', '.join(STREAM_START_MODES)}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DetectorConfig:
        return config_from_dict(cls, d, "detector")

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DetectorConfig:
        """A detector.json (a checkpoint's or a bundle's): from_dict without RARE_EVENT_THRESHOLD_KEY."""
        return cls.from_dict({k: v for k, v in d.items() if k != RARE_EVENT_THRESHOLD_KEY})

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> DetectorConfig:
        """Detector section of params.yaml plus frame hop (frontend) and context (ingest); every one of
        them must be there (no silent default for a section a stage did not declare)."""
        fe = params["frontend"]
        hop_s = float(fe["hop"]) / float(fe["baseband_fs_hz"])
        context = int(params["ingest"]["context_frames"])
        return cls.from_dict({"frame_hop_s": hop_s, "context_frames": context, **params["detector"]})

    @property
    def decides_from_stream_start(self) -> bool:
        """True when frames before the first full context get a (padded) decision too."""
        return decides_from_stream_start(self.stream_start)

    def no_decision_frames(self) -> int:
        """Frames at a stream's start that are never present: context_frames - 1 when waiting, else 0."""
        return 0 if self.decides_from_stream_start else self.context_frames - 1

    def frames(self, seconds: float) -> int:
        """A duration in whole frames (rounded)."""
        return round(seconds / self.frame_hop_s)


@dataclass
class DetectorTrace:
    present: np.ndarray  # [T] bool
    onsets: np.ndarray  # [k] int frame indices where presence starts
    emission_on: np.ndarray  # [T] bool
    onset_strict: np.ndarray | None = None  # [k] bool: entry on a strict positive (else lenient re-entry)


class Detector:
    """Streaming state machine: step(p) per frame -> (present, onset, emission_on)."""

    def __init__(self, cfg: DetectorConfig):
        self.cfg = cfg
        self._hold = cfg.frames(cfg.hold_s)
        self._occupied = cfg.frames(cfg.occupied_window_s)
        self._confirm = cfg.frames(cfg.confirm_s)
        self._off = cfg.frames(cfg.emission_off_s) if cfg.duty_cycling else 0
        self._warmup = cfg.context_frames - 1
        self.reset()

    def reset(self) -> None:
        self.present = False
        self.since_positive = _NEVER  # emission-on frames since the last positive
        self.since_major = _NEVER  # emission-on frames since the last strict positive
        self.present_run = 0  # emission-on frames of uninterrupted presence (since onset or re-enable)
        self.off_left = 0  # frames of emission off still to come
        self.warmup_left = 0  # frames after re-enable still ignored
        self.strict_positive = False  # the last decided frame was a strict positive

    def step(self, probs: np.ndarray) -> tuple[bool, bool, bool]:
        """One frame's probs [3] -> (present, onset, emission_on)."""
        if self.off_left > 0:
            self.off_left -= 1
            if self.off_left == 0:
                self.warmup_left = self._warmup
            return self.present, False, False
        if self.warmup_left > 0:
            self.warmup_left -= 1
            return self.present, False, True
        cfg = self.cfg
        p_minor, p_major = float(probs[MINOR]), float(probs[MAJOR])
        self.since_positive = min(self.since_positive + 1, _NEVER)
        self.since_major = min(self.since_major + 1, _NEVER)
        self.strict_positive = p_major >= cfg.strict_threshold
        if self.strict_positive:
            self.since_major = 0
            self.since_positive = 0
        elif (
            self.since_major <= self._occupied
            and (cfg.lenient_reentry or self.present)
            and p_minor + p_major >= cfg.lenient_threshold
        ):
            self.since_positive = 0
        was_present = self.present
        self.present = self.since_positive <= self._hold
        onset = self.present and not was_present
        self.present_run = self.present_run + 1 if self.present else 0
        if self.present and self._off > 0 and self.present_run >= max(self._confirm, 1):
            self.off_left = self._off  # emission goes off from the next frame
            self.present_run = 0
        return self.present, onset, True


def _frames_since(flags: np.ndarray) -> np.ndarray:
    """[T] int64: frames since the last True at or before each frame (_NEVER-ish when none yet)."""
    idx = np.arange(flags.size, dtype=np.int64)
    last = np.maximum.accumulate(np.where(flags, idx, -_NEVER))
    return idx - last


def run_detector(probs: np.ndarray, cfg: DetectorConfig) -> DetectorTrace:
    """probs [T, 3] -> DetectorTrace: the streaming Detector's answers for every frame.

    Without duty cycling the state machine has no feedback from its output, so it is evaluated with
    array operations (frames since the last strict / any positive); with duty cycling the Detector is
    stepped frame by frame. Both give identical traces (tested)."""
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim != 2 or probs.shape[1] != 3:
        raise ValueError(f"probs must be [T, 3], got {probs.shape}")
    if not (cfg.duty_cycling and cfg.emission_off_s > 0):
        return _run_vectorised(probs, cfg)
    return run_detector_stepwise(probs, cfg)


def _run_vectorised(probs: np.ndarray, cfg: DetectorConfig) -> DetectorTrace:
    n = len(probs)
    p_minor = probs[:, MINOR].astype(np.float64)
    p_major = probs[:, MAJOR].astype(np.float64)
    strict = p_major >= cfg.strict_threshold  # [T]
    # frames since the last strict positive *before* this frame, as Detector.step sees it
    since_major_before = np.concatenate([[_NEVER], _frames_since(strict)[:-1] + 1]) if n else np.zeros(0)
    since_major_before = np.minimum(since_major_before, _NEVER)
    lenient = ~strict & (since_major_before <= cfg.frames(cfg.occupied_window_s))
    lenient &= p_minor + p_major >= cfg.lenient_threshold
    if cfg.lenient_reentry:
        present = _frames_since(strict | lenient) <= cfg.frames(cfg.hold_s)
    else:
        present = _held_from_strict(strict, lenient, cfg.frames(cfg.hold_s))
    onsets = np.flatnonzero(present & ~np.concatenate([[False], present[:-1]]))
    return DetectorTrace(
        present=present,
        onsets=onsets.astype(np.int64),
        emission_on=np.ones(n, bool),
        onset_strict=strict[onsets],
    )


def _held_from_strict(strict: np.ndarray, lenient: np.ndarray, hold: int) -> np.ndarray:
    """present [T] when lenient positives only hold a presence: positives (strict or lenient) chained at
    most hold + 1 frames apart form a run; presence starts at the run's first strict positive and lasts
    until hold frames after its last positive (a lenient positive before it starts nothing)."""
    n = strict.size
    idx = np.flatnonzero(strict | lenient)  # [P] positive frames
    present = np.zeros(n, bool)
    if idx.size == 0:
        return present
    starts = np.concatenate([[True], np.diff(idx) > hold + 1])  # [P] first positive of each run
    run = np.cumsum(starts) - 1  # [P] run index
    n_runs = int(run[-1]) + 1
    last = idx[np.concatenate([np.flatnonzero(starts)[1:] - 1, [idx.size - 1]])]  # [R] last positive
    first_strict = np.full(n_runs, -1)
    strict_runs, where = np.unique(run[strict[idx]], return_index=True)
    first_strict[strict_runs] = idx[strict[idx]][where]
    on = first_strict >= 0
    edges = np.zeros(n + 1, np.int64)
    np.add.at(edges, first_strict[on], 1)
    np.add.at(edges, np.minimum(last[on] + hold + 1, n), -1)
    return np.cumsum(edges)[:n] > 0


def run_detector_stepwise(probs: np.ndarray, cfg: DetectorConfig) -> DetectorTrace:
    """probs [T, 3] -> DetectorTrace, stepping the streaming Detector over every frame."""
    probs = np.asarray(probs, dtype=np.float32)
    detector = Detector(cfg)
    n = len(probs)
    present = np.zeros(n, bool)
    emission_on = np.zeros(n, bool)
    onsets, strict = [], []
    for t in range(n):
        present[t], onset, emission_on[t] = detector.step(probs[t])
        if onset:
            onsets.append(t)
            strict.append(detector.strict_positive)
    return DetectorTrace(
        present=present,
        onsets=np.asarray(onsets, dtype=np.int64),
        emission_on=emission_on,
        onset_strict=np.asarray(strict, dtype=bool),
    )
