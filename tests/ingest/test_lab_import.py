"""Lab WAV import on recordings the tests make: carrier estimation, every quarantine reason, the
lab profile, and import -> ingest -> evaluate of a 44.1 kHz, 20 kHz-tone moving reflector."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fleet.lab_recording import LabTake, labels_csv, render_take, wav_bytes
from ingest.config import IngestConfig, LabImportConfig
from ingest.contract import CaptureLimits, check_capture_record
from ingest.lab_import import LabImportError, estimate_carrier, import_lab, read_wav
from tests.runtime.runtime_tiny_onnx import build_linear_model

REPO = Path(__file__).resolve().parents[2]
MOTION = LabTake(duration_s=0.8, onset_s=0.1, motion_s=0.5, peak_v_mps=1.2, seed=1)
STILL = LabTake(duration_s=2.0, onset_s=None, seed=2)


def _write(src: Path, takes: list[tuple[str, LabTake]], fmt: str = "int16") -> Path:
    for name, take in takes:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(wav_bytes(render_take(take), take.fs_hz, fmt))
    csv = src.parent / "labels.csv"
    csv.write_text(labels_csv(takes))
    return csv


@pytest.mark.parametrize(
    ("fs_hz", "carrier_hz", "fmt", "n_mics"),
    [(44100.0, 20000.0, "int16", 1), (48000.0, 18500.0, "int32", 2), (44100.0, 21000.0, "float32", 1),
     (96000.0, 40000.0, "int16", 4)],
)  # fmt: skip
def test_carrier_estimate_within_10_hz(tmp_path, params, fs_hz, carrier_hz, fmt, n_mics) -> None:
    take = dataclasses.replace(MOTION, fs_hz=fs_hz, carrier_hz=carrier_hz, n_mics=n_mics)
    path = tmp_path / "take.wav"
    path.write_bytes(wav_bytes(render_take(take), fs_hz, fmt))
    rate, pcm = read_wav(path)
    assert rate == fs_hz and pcm.shape == (n_mics, round(take.duration_s * fs_hz)) and pcm.dtype == np.float32
    assert 0.2 < np.abs(pcm).max() < 0.4  # full scale kept for 16- and 32-bit and float
    estimate = estimate_carrier(pcm, rate, LabImportConfig.from_params(params))
    assert estimate.carrier_hz is not None and abs(estimate.carrier_hz - carrier_hz) < 10.0


def test_import_writes_a_contract_batch_with_truth(tmp_path, params) -> None:
    csv = _write(tmp_path / "src", [("motion/a.wav", MOTION), ("empty/b.wav", STILL)])
    summary = import_lab(
        tmp_path / "src",
        tmp_path / "raw" / "lab",
        tmp_path / "truth" / "lab",
        LabImportConfig.from_params(params),
        labels_csv=csv,
    )
    assert (summary["found"], summary["imported"], summary["quarantined"]) == (2, 2, 0)
    tool = REPO.parent / "shared/tools/check_raw_batch.py"
    check = subprocess.run(
        [sys.executable, str(tool), tmp_path / "raw/lab", tmp_path / "truth/lab"],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout
    records = [json.loads(line) for line in (tmp_path / "raw/lab/captures.jsonl").read_text().splitlines()]
    assert {r["profile"] for r in records} == {"lab1"} and {r["trigger"] for r in records} == {"collection"}
    assert all(abs(r["carrier_hz"] - 20000.0) < 10 for r in records)
    events = [json.loads(line) for line in (tmp_path / "truth/lab/events.jsonl").read_text().splitlines()]
    motion = next(e for e in events if e["is_presence"])
    assert (motion["t0_s"], motion["t1_s"], motion["motion_class"]) == (0.1, 0.6, "major")
    assert (tmp_path / "raw/lab/dialogue.jsonl").read_text() == ""


def _motion_model(context: int, n_bins: int = 48, v_max: float = 2.5) -> bytes:
    """'major' logit: the mean dB in |v| >= 0.3 m/s over the window, 5 dB above the quiet floor."""
    v = np.abs(np.linspace(-v_max, v_max, n_bins))
    w = np.zeros((n_bins, 3), np.float32)
    w[v >= 0.3, 2] = 1.0 / np.sum(v >= 0.3)
    return build_linear_model(context, n_bins, w, np.array([-83.0, -200.0, 0.0]))


@pytest.mark.slow
def test_import_ingest_evaluate_and_stream_start(tmp_path, params) -> None:
    """A 0.8 s take with a moving reflector is found only with a stream-start mode; the still take never."""
    from ingest_testkit import ingest

    from runtime.detector import DetectorConfig
    from training.evaluate import evaluate_detector_rows

    takes = [("motion/a.wav", MOTION), ("motion/c.wav", dataclasses.replace(MOTION, duration_s=0.6, seed=3)),
             ("empty/b.wav", STILL)]  # fmt: skip
    csv = _write(tmp_path / "src", takes)
    raw, truth = tmp_path / "raw" / "lab", tmp_path / "truth" / "lab"
    import_lab(tmp_path / "src", raw, truth, LabImportConfig.from_params(params), labels_csv=csv)
    summary = ingest(raw, tmp_path / "curated", params)
    assert (summary["ingested"], summary["quarantined"]) == (3, 0)
    det = DetectorConfig.from_params(params)
    figures = {}
    for mode in ("wait", "pad_mirror"):
        cfg = dataclasses.replace(det, stream_start=mode, strict_threshold=0.5, lenient_threshold=0.5)
        metrics, _ = evaluate_detector_rows(
            _motion_model(det.context_frames), params["frontend"], cfg, raw, truth
        )
        figures[mode] = metrics
        assert metrics["n_captures"] == 3 and metrics["entries"] == 2
        assert metrics["false_triggers"] == 0
    assert figures["wait"]["entries_detected"] == 0  # under a context long: never decided
    assert figures["pad_mirror"]["entries_detected"] == 2
    assert figures["pad_mirror"]["entry_latency_p95_s"] <= 0.5


def _quarantine_reasons(tmp_path, params, build) -> dict:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    csv_rows = build(src)
    (tmp_path / "labels.csv").write_text(
        "file,event_type,motion_class,t0_s,t1_s,carrier_hz\n" + "\n".join(csv_rows)
    )
    summary = import_lab(
        src,
        tmp_path / "raw/lab",
        tmp_path / "truth/lab",
        LabImportConfig.from_params(params),
        labels_csv=tmp_path / "labels.csv",
    )
    log = [json.loads(x) for x in (Path(summary["quarantine"]) / "quarantine.jsonl").read_text().splitlines()]
    assert summary["imported"] + summary["quarantined"] == summary["found"]
    return {e["file"]: e for e in log}


def test_every_quarantine_reason(tmp_path, params) -> None:
    def take_bytes(**kw) -> bytes:
        take = dataclasses.replace(MOTION, **kw)
        return wav_bytes(render_take(take), take.fs_hz)

    def build(src: Path) -> list[str]:
        (src / "not_a_wav.wav").write_text("hello")
        (src / "unreadable.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunk")
        (src / "too_short.wav").write_bytes(take_bytes(duration_s=0.2, onset_s=0.05, motion_s=0.1))
        (src / "rate_too_low.wav").write_bytes(take_bytes(fs_hz=32000.0, carrier_hz=12000.0))
        (src / "clipped.wav").write_bytes(take_bytes(tone_level=3.0))
        (src / "no_tone.wav").write_bytes(take_bytes(tone_level=0.0, onset_s=None, noise_dbfs=-20.0))
        (src / "low_rate_for_carrier.wav").write_bytes(take_bytes())
        (src / "mismatch.wav").write_bytes(take_bytes())
        (src / "unlabelled.wav").write_bytes(take_bytes())
        (src / "bad_label.wav").write_bytes(take_bytes())
        (src / "ok.wav").write_bytes(take_bytes())
        nan = render_take(MOTION)
        nan[0, 100] = np.nan
        (src / "nan.wav").write_bytes(wav_bytes(nan, MOTION.fs_hz, "float32"))
        plain = ("not_a_wav", "unreadable", "too_short", "rate_too_low", "clipped", "no_tone", "ok", "nan")
        rows = [f"{name}.wav,reach,minor,,," for name in plain]
        return [*rows, "low_rate_for_carrier.wav,reach,minor,,,21500", "mismatch.wav,reach,minor,,,19000",
                "bad_label.wav,reach,sideways,,,"]  # fmt: skip

    entries = _quarantine_reasons(tmp_path, params, build)
    expected = {
        "not_a_wav.wav": "not_a_wav", "unreadable.wav": "unreadable_wav", "too_short.wav": "too_short",
        "rate_too_low.wav": "rate_too_low", "clipped.wav": "clipped", "no_tone.wav": "no_tone",
        "low_rate_for_carrier.wav": "rate_too_low_for_carrier", "mismatch.wav": "carrier_mismatch",
        "unlabelled.wav": "no_label", "bad_label.wav": "bad_label", "nan.wav": "nonfinite_samples",
    }  # fmt: skip
    assert {f: e["reason"] for f, e in entries.items()} == expected
    for name, entry in entries.items():
        assert name in entry["detail"] and entry["copied_as"] == f"files/{name}"
    assert "19000" in entries["mismatch.wav"]["detail"] and "20000" in entries["mismatch.wav"]["detail"]


def test_folder_labels_and_bad_label_sources(tmp_path, params) -> None:
    src = tmp_path / "src"
    _write(src, [("swipe/a.wav", MOTION), ("quiet/b.wav", STILL), ("unknown/c.wav", MOTION)])
    folders = {"swipe": {"event_type": "hand_gesture", "motion_class": "minor"},
               "quiet": {"event_type": "empty", "motion_class": "none", "carrier_hz": 20000}}  # fmt: skip
    summary = import_lab(
        src,
        tmp_path / "raw/lab",
        tmp_path / "truth/lab",
        LabImportConfig.from_params(params),
        folder_labels=folders,
    )
    assert (summary["imported"], summary["reasons"]) == (2, {"no_label": 1})
    given = {c["source"]: c["carrier_given_hz"] for c in summary["captures"]}
    assert given == {"quiet/b.wav": 20000.0, "swipe/a.wav": None}
    with pytest.raises(LabImportError, match="exactly one"):
        import_lab(src, tmp_path / "r2", tmp_path / "t2", LabImportConfig.from_params(params))
    with pytest.raises(LabImportError, match="needs event_type"):
        import_lab(
            src,
            tmp_path / "r2",
            tmp_path / "t2",
            LabImportConfig.from_params(params),
            folder_labels={"swipe": {"event_type": "x"}},
        )
    (tmp_path / "bad.csv").write_text("file,label\na.wav,x\n")
    with pytest.raises(LabImportError, match="motion_class"):
        import_lab(
            src,
            tmp_path / "r2",
            tmp_path / "t2",
            LabImportConfig.from_params(params),
            labels_csv=tmp_path / "bad.csv",
        )


def test_lab_profiles_in_the_contract(params) -> None:
    limits = CaptureLimits.from_config(IngestConfig.from_params(params))
    base = {
        "capture_id": "c", "device_id": "d", "profile": "lab1", "t_start": "2026-10-01T09:00:00Z",
        "duration_s": 1.0, "carrier_hz": 20000.0, "fs_hz": 44100.0, "n_mics": 1, "emission_db": 0.0,
        "firmware": "x", "trigger": "collection", "playback_volume": 0.0, "file": "pcm/c.wav",
    }  # fmt: skip
    assert check_capture_record(base, limits) == []
    assert check_capture_record({**base, "profile": "lab_multi", "n_mics": 3}, limits) == []
    reasons = [r.reason for r in check_capture_record({**base, "n_mics": 2, "trigger": "sample"}, limits)]
    assert "profile_n_mics_mismatch" in reasons and "lab_profile_not_collection" in reasons
    assert [r.reason for r in check_capture_record({**base, "profile": "phone9"}, limits)] == [
        "unknown_profile"
    ]


def test_cli_lab_import(tmp_path) -> None:
    from typer.testing import CliRunner

    from flows.cli import app

    csv = _write(tmp_path / "src", [("motion/a.wav", MOTION)])
    result = CliRunner().invoke(
        app,
        ["lab", "import", str(tmp_path / "src"), "--out", str(tmp_path / "raw/lab"), "--truth-out",
         str(tmp_path / "truth/lab"), "--labels", str(csv), "--params", str(REPO / "params.yaml")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "imported 1, quarantined 0" in result.output and "20000.0 Hz estimated" in result.output
    bad = CliRunner().invoke(app, ["lab", "import", str(tmp_path / "nope"), "--out", "x", "--truth-out", "y",
                                   "--labels", str(csv), "--params", str(REPO / "params.yaml")])  # fmt: skip
    assert bad.exit_code == 2 and "not a folder" in bad.output


def test_one_mic_lab_capture_bypasses_the_canceller(params) -> None:
    from runtime.frontend import FrontendConfig, StreamingFrontend

    described = StreamingFrontend(FrontendConfig.from_dict(params["frontend"]), 2000.0, 20000.0, 1).describe()
    assert "bypassed: single microphone" in str(described)
