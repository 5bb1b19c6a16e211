"""Lab recordings in: a folder of passband WAV files -> a raw batch in the contract, plus its truth.

`import_lab(src_dir, raw_out, truth_out, cfg, labels_csv=..., folder_labels=...)` walks src_dir for
*.wav (mono or multichannel; 16/24/32-bit integer or float; any rate from min_rate_hz up: cfg is
params ingest.lab_import),
labels each file from a CSV (file, event_type, motion_class, optional t0_s/t1_s, carrier_hz) or from
its folder name mapped by a small YAML ({folder: {event_type, motion_class}}, read by the CLI), finds
the carrier from the spectrum when none is given (estimate_carrier: the strongest stable tone from
tone_min_hz up; when both exist the estimate is reported and checked against the given one) and writes
raw_out/{captures.jsonl, dialogue.jsonl (empty), pcm/<capture_id>.wav (float32)} and truth_out/
{events.jsonl, lab_import.json (capture -> source file, carrier estimate)}. Captures are lab
`collection` takes on a lab profile (params ingest.lab_profiles: lab1 for mono, lab_multi otherwise).
Bad files are quarantined with file and reason (quarantine.jsonl beside a copy, ingest/quarantine.py);
nothing is dropped silently: imported + quarantined = found.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.io import atomic_dir, atomic_write_bytes, atomic_write_json, atomic_write_jsonl
from ingest.config import LabImportConfig
from ingest.contract import LAB_TRIGGER, Reject
from ingest.quarantine import QuarantineLog
from runtime.demod import GUARD_HZ
from runtime.labels import CLASSES

LAB_FIRMWARE = "lab-import"
MONO_PROFILE, MULTI_PROFILE = "lab1", "lab_multi"


class LabImportError(ValueError):
    """The import cannot run at all (no source folder, unreadable label file)."""


@dataclass(frozen=True)
class Label:
    event_type: str
    motion_class: str
    t0_s: float | None = None
    t1_s: float | None = None
    carrier_hz: float | None = None

    @property
    def is_presence(self) -> bool:
        return self.motion_class != "none"


@dataclass(frozen=True)
class CarrierEstimate:
    carrier_hz: float | None  # None: no stable tone
    snr_db: float
    stable_fraction: float


class Refused(Exception):
    def __init__(self, reason: str, field: str | None, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reject = Reject(reason, field, detail)


# --- reading ------------------------------------------------------------------------------------------


def read_wav(path: Path) -> tuple[float, np.ndarray]:
    """(rate, pcm float32 [n_channels, n] in full-scale units) of any PCM or float WAV; Refused otherwise."""
    import scipy.io.wavfile

    with open(path, "rb") as fh:
        head = fh.read(12)
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        raise Refused("not_a_wav", "file", f"{path.name}: no RIFF/WAVE header")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.io.wavfile.WavFileWarning)
            rate, data = scipy.io.wavfile.read(path, mmap=False)  # [n] or [n, ch]
    except Exception as exc:  # untrusted bytes: scipy's parser fails in many ways (even UnboundLocalError)
        raise Refused(
            "unreadable_wav", "file", f"{path.name}: {type(exc).__name__}: {str(exc)[:120]}"
        ) from None
    pcm = np.atleast_2d(np.asarray(data).T)  # [ch, n]
    if np.issubdtype(pcm.dtype, np.integer):
        info = np.iinfo(pcm.dtype)
        if info.min == 0:  # 8-bit WAV is unsigned
            pcm = (pcm.astype(np.float32) - 128.0) / 128.0
        else:  # 24-bit arrives left-justified in int32, so int32's full scale is right for it too
            pcm = pcm.astype(np.float32) / float(-info.min)
    pcm = pcm.astype(np.float32, copy=False)
    if not np.isfinite(pcm).all():
        raise Refused("nonfinite_samples", "file", f"{path.name}: NaN/Inf samples")
    return float(rate), pcm


def read_labels_csv(path: Path) -> dict[str, Label]:
    """file (relative to the source folder) -> Label, from a CSV with a header row."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabImportError(f"{path}: cannot read ({exc})") from None
    rows = list(csv.DictReader(io.StringIO(text)))
    need = {"file", "event_type", "motion_class"}
    header = set(rows[0]) if rows else set()
    if not need <= header:
        raise LabImportError(
            f"{path}: columns {sorted(need - header)} missing (need file, event_type, motion_class)"
        )
    labels = {}
    for n, row in enumerate(rows, 2):
        try:
            labels[row["file"].strip()] = Label(
                row["event_type"].strip(),
                row["motion_class"].strip(),
                _opt_float(row.get("t0_s")),
                _opt_float(row.get("t1_s")),
                _opt_float(row.get("carrier_hz")),
            )
        except ValueError as exc:
            raise LabImportError(f"{path}:{n}: {exc}") from None
    return labels


def folder_labels_from(spec: object, source: str = "folder map") -> dict[str, Label]:
    """folder name -> Label from a mapping {folder: {event_type, motion_class[, carrier_hz]}} (the
    YAML the CLI reads)."""
    if not isinstance(spec, dict):
        raise LabImportError(f"{source}: expected a mapping folder -> {{event_type, motion_class}}")
    labels = {}
    for folder, entry in spec.items():
        if not isinstance(entry, dict) or not {"event_type", "motion_class"} <= set(entry):
            raise LabImportError(f"{source}: folder {folder!r} needs event_type and motion_class")
        try:
            carrier = _opt_float(entry.get("carrier_hz"))
        except ValueError as exc:
            raise LabImportError(f"{source}: folder {folder!r}: {exc}") from None
        labels[str(folder)] = Label(str(entry["event_type"]), str(entry["motion_class"]), carrier_hz=carrier)
    return labels


def _opt_float(value) -> float | None:
    if value is None or str(value).strip() == "":
        return None
    return float(value)


# --- the carrier ---------------------------------------------------------------------------------------


def estimate_carrier(pcm: np.ndarray, rate: float, cfg: LabImportConfig) -> CarrierEstimate:
    """The strongest stable tone from cfg.tone_min_hz up in pcm [ch, n] at rate.

    Whole clip: Hann window, zero-padded FFT (4x), power summed over channels, parabolic interpolation
    of the log power around the peak (sub-hertz on a tone). Stable: the peak of at least
    tone_stable_fraction of tone_segments equal segments lies within tone_stable_hz of it. SNR: the
    peak over the median power of the band."""
    n = pcm.shape[1]
    n_fft = 1 << int(np.ceil(np.log2(4 * n)))
    spectrum = _power_spectrum(pcm, n_fft)  # [n_fft // 2 + 1]
    freqs = np.fft.rfftfreq(n_fft, 1.0 / rate)
    band = np.flatnonzero(freqs >= cfg.tone_min_hz)
    if band.size < 3:
        return CarrierEstimate(None, 0.0, 0.0)
    k = band[np.argmax(spectrum[band])]
    snr_db = 10 * np.log10(spectrum[k] / max(float(np.median(spectrum[band])), 1e-30))
    if 0 < k < len(spectrum) - 1:
        a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-30)
        offset = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) < 0 else 0.0
    else:
        offset = 0.0
    f_hat = float((k + offset) * rate / n_fft)
    seg_len = n // cfg.tone_segments
    hits = 0
    for s in range(cfg.tone_segments):
        seg = pcm[:, s * seg_len : (s + 1) * seg_len]
        seg_fft = 1 << int(np.ceil(np.log2(max(seg.shape[1], 2))))
        seg_power = _power_spectrum(seg, seg_fft)
        seg_freqs = np.fft.rfftfreq(seg_fft, 1.0 / rate)
        seg_band = np.flatnonzero(seg_freqs >= cfg.tone_min_hz)
        if seg_band.size:
            peak = seg_freqs[seg_band[np.argmax(seg_power[seg_band])]]
            hits += abs(peak - f_hat) <= max(cfg.tone_stable_hz, rate / seg_fft)
    stable = hits / cfg.tone_segments
    ok = snr_db >= cfg.tone_min_snr_db and stable >= cfg.tone_stable_fraction
    return CarrierEstimate(f_hat if ok else None, round(float(snr_db), 2), stable)


def _power_spectrum(x: np.ndarray, n_fft: int) -> np.ndarray:
    window = np.hanning(x.shape[1]).astype(np.float32)
    return np.sum(np.abs(np.fft.rfft(x * window, n=n_fft, axis=1)) ** 2, axis=0)  # [n_fft // 2 + 1]


# --- one file -------------------------------------------------------------------------------------------


def check_recording(
    name: str, rate: float, pcm: np.ndarray, label: Label, cfg: LabImportConfig, valid_classes=CLASSES
) -> CarrierEstimate:
    """Every check of one recording and its label; returns the carrier estimate or raises Refused."""
    if label.motion_class not in valid_classes:
        raise Refused(
            "bad_label",
            "motion_class",
            f"{name}: motion class {label.motion_class!r} not one of {valid_classes}",
        )
    if rate < cfg.min_rate_hz:
        raise Refused("rate_too_low", "fs_hz", f"{name}: {rate:g} Hz < {cfg.min_rate_hz:g} Hz")
    duration = pcm.shape[1] / rate
    if duration < cfg.min_duration_s:
        raise Refused("too_short", "duration_s", f"{name}: {duration:.3f} s < {cfg.min_duration_s:g} s")
    if label.t0_s is not None and label.t1_s is not None and not 0 <= label.t0_s < label.t1_s:
        raise Refused("bad_label", "t0_s", f"{name}: t0_s {label.t0_s} / t1_s {label.t1_s} out of order")
    clipped = float(np.mean(np.abs(pcm) >= cfg.clip_level))
    if clipped > cfg.max_clipped_fraction:
        raise Refused(
            "clipped",
            "file",
            f"{name}: {100 * clipped:.2f} % of samples at full scale "
            f"(> {100 * cfg.max_clipped_fraction:g} %)",
        )
    estimate = estimate_carrier(pcm, rate, cfg)
    carrier = label.carrier_hz if label.carrier_hz is not None else estimate.carrier_hz
    if carrier is not None and rate < 2 * (carrier + GUARD_HZ):
        raise Refused(
            "rate_too_low_for_carrier",
            "fs_hz",
            f"{name}: {rate:g} Hz cannot carry {carrier:.0f} Hz + {GUARD_HZ:.0f} Hz of Doppler band",
        )
    if estimate.carrier_hz is None:
        raise Refused(
            "no_tone",
            "carrier_hz",
            f"{name}: no stable tone from {cfg.tone_min_hz:g} Hz up (SNR {estimate.snr_db:.1f} dB, "
            f"stable in {100 * estimate.stable_fraction:.0f} % of segments)",
        )
    if (
        label.carrier_hz is not None
        and abs(label.carrier_hz - estimate.carrier_hz) > cfg.carrier_tolerance_hz
    ):
        raise Refused(
            "carrier_mismatch",
            "carrier_hz",
            f"{name}: given carrier {label.carrier_hz:g} Hz, "
            f"the strongest tone is at {estimate.carrier_hz:.1f} Hz",
        )
    return estimate


def _wav_bytes(rate: float, pcm: np.ndarray) -> bytes:
    import scipy.io.wavfile

    buf = io.BytesIO()
    scipy.io.wavfile.write(buf, round(rate), np.ascontiguousarray(pcm.T.astype(np.float32)))
    return buf.getvalue()


# --- the batch -------------------------------------------------------------------------------------------


def import_lab(
    src_dir: str | Path,
    raw_out: str | Path,
    truth_out: str | Path,
    cfg: LabImportConfig,
    *,
    labels_csv: str | Path | None = None,
    folder_labels: dict | None = None,
    quarantine_root: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Import every *.wav under src_dir as a lab batch; return the summary (see the module docstring).

    quarantine_root defaults to <data>/curated/quarantine next to raw_out's <data>/raw; the log goes to
    quarantine_root/<batch>-import/. folder_labels: {folder: {event_type, motion_class}}; progress is
    called with each file's name as it is read."""
    src_dir, raw_out, truth_out = Path(src_dir), Path(raw_out), Path(truth_out)
    if not src_dir.is_dir():
        raise LabImportError(f"{src_dir}: not a folder")
    if (labels_csv is None) == (folder_labels is None):
        raise LabImportError("give exactly one of a labels CSV and a folder-label YAML")
    by_file = read_labels_csv(Path(labels_csv)) if labels_csv else {}
    by_folder = folder_labels_from(folder_labels) if folder_labels is not None else {}
    batch = raw_out.name
    quarantine_root = (
        Path(quarantine_root) if quarantine_root else raw_out.parent.parent / "curated" / "quarantine"
    )
    quarantine = QuarantineLog(f"{batch}-import", src_dir, max_copy_bytes=1 << 30)
    files = sorted(p for p in src_dir.rglob("*") if p.is_file() and p.suffix.lower() == ".wav")
    captures, events, sources = [], [], []
    start = dt.datetime.fromisoformat(cfg.epoch.replace("Z", "+00:00"))
    with atomic_dir(raw_out) as raw_tmp, atomic_dir(truth_out) as truth_tmp:
        for path in files:
            if progress is not None:
                progress(path.name)
            rel = path.relative_to(src_dir).as_posix()
            label = by_file.get(rel) if labels_csv else by_folder.get(path.parent.name)
            try:
                if label is None:
                    where = (
                        "the labels CSV" if labels_csv else f"the folder map (folder {path.parent.name!r})"
                    )
                    raise Refused("no_label", "file", f"{rel}: no label in {where}")
                rate, pcm = read_wav(path)
                estimate = check_recording(rel, rate, pcm, label, cfg)
            except Refused as exc:
                quarantine.add(rel, None, exc.reject, offending_file=path)
                continue
            carrier = label.carrier_hz if label.carrier_hz is not None else round(estimate.carrier_hz, 1)
            capture_id = f"{batch}-{len(captures):05d}"
            n_mics, n = pcm.shape
            duration = n / rate
            atomic_write_bytes(raw_tmp / "pcm" / f"{capture_id}.wav", _wav_bytes(rate, pcm))
            captures.append(
                {
                    "capture_id": capture_id,
                    "device_id": cfg.device_id,
                    "profile": MONO_PROFILE if n_mics == 1 else MULTI_PROFILE,
                    "t_start": start.isoformat().replace("+00:00", "Z"),
                    "duration_s": duration,
                    "carrier_hz": float(carrier),
                    "fs_hz": float(rate),
                    "n_mics": int(n_mics),
                    "emission_db": cfg.emission_db,
                    "firmware": LAB_FIRMWARE,
                    "trigger": LAB_TRIGGER,
                    "playback_volume": 0.0,
                    "file": f"pcm/{capture_id}.wav",
                }
            )
            start += dt.timedelta(seconds=duration + cfg.gap_s)
            t0 = label.t0_s if label.t0_s is not None else 0.0
            t1 = min(label.t1_s if label.t1_s is not None else duration, duration)
            events.append(
                {
                    "capture_id": capture_id,
                    "t0_s": round(t0, 3),
                    "t1_s": round(t1, 3),
                    "event_type": label.event_type,
                    "is_presence": label.is_presence,
                    "motion_class": label.motion_class,
                }
            )
            sources.append(
                {
                    "capture_id": capture_id,
                    "source": rel,
                    "carrier_hz": float(carrier),
                    "carrier_given_hz": label.carrier_hz,
                    "carrier_estimate_hz": round(estimate.carrier_hz, 2),
                    "tone_snr_db": estimate.snr_db,
                    "duration_s": round(duration, 4),
                }
            )
        atomic_write_jsonl(raw_tmp / "captures.jsonl", captures)
        atomic_write_jsonl(raw_tmp / "dialogue.jsonl", [])
        atomic_write_jsonl(truth_tmp / "events.jsonl", events)
        summary = {
            "batch": batch,
            "found": len(files),
            "imported": len(captures),
            "quarantined": len(quarantine.entries),
            "reasons": quarantine.reasons(),
            "captures": sources,
        }
        atomic_write_json(truth_tmp / "lab_import.json", summary)
    summary["quarantine"] = str(quarantine.write(quarantine_root))
    return summary
