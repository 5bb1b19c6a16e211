"""Evaluation over a raw batch: reading the contract, skipping bad captures, bundles, CFAR baseline."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
from training_testkit import band_energy_model, write_raw_batch

from training.evaluate import (
    EvaluationError,
    compare_models,
    evaluate_bundle,
    evaluate_cfar,
    evaluate_detector,
    evaluate_operating_curve,
    evaluate_with,
)

FRONTEND = {
    "baseband_fs_hz": 2000.0,
    "frame_len": 128,
    "hop": 64,
    "n_fft": 256,
    "v_max_mps": 2.5,
    "n_velocity_bins": 48,
    "clutter_tau_s": 0.5,
    "canceller": True,
    "speed_of_sound_mps": 343.0,
}
DETECTOR = {
    "strict_threshold": 0.8,
    "lenient_threshold": 0.5,
    "occupied_window_s": 60.0,
    "hold_s": 1.0,
    "confirm_s": 2.0,
    "emission_off_s": 0.0,
    "duty_cycling": False,
    "frame_hop_s": 0.032,
    "context_frames": 32,
}


@pytest.fixture(scope="module")
def raw_batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    write_raw_batch(root / "raw", root / "truth")
    return root / "raw", root / "truth"


@pytest.fixture(scope="module")
def model_bytes(raw_batch):
    """Band-energy model whose midpoint sits between the empty and the walking capture's levels."""
    from runtime.frontend import FrontendConfig, extract_features

    cfg = FrontendConfig.from_dict(FRONTEND)
    raw, _ = raw_batch
    v = np.abs(np.linspace(-2.5, 2.5, 48)) >= 0.3
    walk = extract_features(np.load(raw / "iq" / "walk.npy"), 2000.0, 40000.0, cfg)
    empty = extract_features(np.load(raw / "iq" / "empty.npy"), 2000.0, 40000.0, cfg)
    loud = float(walk[int(6 / 0.032) : int(8 / 0.032)][:, v].mean())
    quiet = float(empty[64:][:, v].mean())
    assert loud > quiet + 3  # the walker really is visible in the features
    return band_energy_model(32, 48, 2.5, quiet, loud)


def test_reader_skips_and_counts_bad_captures(raw_batch):
    raw, truth = raw_batch
    seen = []

    def decide(iq, fs, carrier):
        seen.append(iq.shape)
        times = np.arange(1, 11) * 1.0
        present = np.zeros(10, bool)
        return times, present, np.zeros(0)

    metrics, outcomes = evaluate_with(decide, raw, truth)
    assert [o.capture_id for o in outcomes] == ["walk", "empty"]
    assert metrics["n_captures_skipped"] == 3  # missing file, wrong dtype, malformed line
    reasons = " ".join(s["reason"] for s in metrics["skipped"])
    assert "complex" in reasons
    assert {s["capture_id"] for s in metrics["skipped"]} == {"missing", "wrongdtype", "line 5"}
    assert metrics["n_presence_events"] == 1  # the missing capture's event is not counted
    assert metrics["recall_major"] == 0.0
    assert metrics["hours_total"] == pytest.approx(24.0 / 3600)


def test_missing_truth_or_index_raise(tmp_path, raw_batch):
    raw, truth = raw_batch
    with pytest.raises(EvaluationError, match=r"events\.jsonl"):
        evaluate_with(lambda *a: None, raw, tmp_path)
    with pytest.raises(EvaluationError, match=r"captures\.jsonl"):
        evaluate_with(lambda *a: None, tmp_path, truth)


def test_detector_finds_the_walker_and_not_the_empty_room(raw_batch, model_bytes):
    raw, truth = raw_batch
    m = evaluate_detector(model_bytes, FRONTEND, DETECTOR, raw, truth)
    assert m["recall_major"] == 1.0
    assert m["false_alarms"] == 0
    assert 0.0 <= m["median_latency_s"] <= 2.0
    assert m["by_event_type"]["walk"]["detections"] == 1
    assert m["by_event_type"]["ceiling_fan"]["detections"] == 0
    for key in ("false_alarms_per_hour", "hours_without_presence", "recall_minor", "n_presence_events"):
        assert key in m


def test_operating_curve_reruns_only_the_state_machine(raw_batch, model_bytes):
    raw, truth = raw_batch
    thresholds = [0.3, 0.8, 0.99, 1.0]
    out = evaluate_operating_curve(model_bytes, FRONTEND, DETECTOR, raw, truth, thresholds)
    direct = evaluate_detector(model_bytes, FRONTEND, DETECTOR, raw, truth)
    assert out["metrics"]["false_alarms"] == direct["false_alarms"]
    assert out["metrics"]["recall_major"] == direct["recall_major"]
    assert out["metrics"]["false_present_hours"] == pytest.approx(direct["false_present_hours"])
    for m in (out["metrics"], direct):  # both paths carry the runtime state machine's onset kinds
        assert m["false_alarms_strict"] + m["false_alarms_lenient"] == m["false_alarms"]
    assert out["metrics"]["false_alarms_strict"] == direct["false_alarms_strict"]
    curve = out["curve"]
    assert [p["strict_threshold"] for p in curve] == thresholds
    assert [p["lenient_threshold"] for p in curve] == [0.3, 0.5, 0.5, 0.5]  # never above strict
    at_own = curve[1]  # the detector's own thresholds
    assert at_own["recall_major"] == direct["recall_major"]
    assert at_own["false_alarms_per_hour"] == direct["false_alarms_per_hour"]
    # a higher strict threshold gives a subset of the positives: recall and time present never grow
    majors = [p["recall_major"] for p in curve]
    present = [p["false_present_fraction"] for p in curve]
    assert majors == sorted(majors, reverse=True) and present == sorted(present, reverse=True)
    assert curve[-1]["recall_major"] == 0.0  # nothing reaches p_major >= 1


def _bundle_tar(path, model: bytes) -> None:
    with tarfile.open(path, "w") as tar:
        for name, blob in [
            ("manifest.json", b"{}"),
            ("payload/model_int8.onnx", model),
            ("payload/frontend.json", json.dumps(FRONTEND).encode()),
            ("payload/detector.json", json.dumps(DETECTOR).encode()),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))


def test_bundle_tar_and_folder_give_the_same_metrics(tmp_path, raw_batch, model_bytes, monkeypatch):
    raw, truth = raw_batch
    _bundle_tar(tmp_path / "bundle.tar", model_bytes)
    folder = tmp_path / "unpacked"
    with tarfile.open(tmp_path / "bundle.tar") as tar:
        tar.extractall(folder, filter="data")
    monkeypatch.chdir(tmp_path / "unpacked")  # nothing may be extracted into the working directory
    before = sorted(p.name for p in (tmp_path / "unpacked").iterdir())
    from_tar = evaluate_bundle(tmp_path / "bundle.tar", raw, truth)
    from_dir = evaluate_bundle(folder, raw, truth)
    assert sorted(p.name for p in (tmp_path / "unpacked").iterdir()) == before
    from_tar.pop("bundle"), from_dir.pop("bundle")
    assert from_tar == from_dir
    assert from_tar["recall_major"] == 1.0


def test_bundle_missing_payload_raises(tmp_path, raw_batch):
    raw, truth = raw_batch
    (tmp_path / "b" / "payload").mkdir(parents=True)
    with pytest.raises(EvaluationError, match=r"model_int8\.onnx"):
        evaluate_bundle(tmp_path / "b", raw, truth)


def test_compare_models_identical_agree(raw_batch, model_bytes):
    raw, truth = raw_batch
    out = compare_models(model_bytes, model_bytes, FRONTEND, DETECTOR, raw, truth)
    assert out["decision_agreement"] == 1.0
    assert out["float"]["recall_major"] == out["int8"]["recall_major"]


def test_cfar_baseline_same_counting(raw_batch):
    raw, truth = raw_batch
    m = evaluate_cfar(raw, truth, FRONTEND, {"hold_s": 1.0})
    assert m["n_presence_events"] == 1 and m["n_captures_skipped"] == 3
    assert m["recall_major"] == 1.0


def test_lab_wav_capture_is_demodulated_and_evaluated(tmp_path):
    """A pcm/*.wav passband capture (lab) goes through runtime.demod and is counted like iq/."""
    from scipy.io import wavfile

    fs, carrier, dur = 96000, 40000.0, 4.0
    t = np.arange(int(fs * dur)) / fs
    doppler = 2 * 1.0 * carrier / 343.0  # a 1 m/s walker
    pcm = 0.5 * np.cos(2 * np.pi * carrier * t) + 0.05 * np.cos(2 * np.pi * (carrier + doppler) * t) * (t > 2)
    (tmp_path / "raw" / "pcm").mkdir(parents=True)
    (tmp_path / "truth").mkdir()
    wavfile.write(tmp_path / "raw" / "pcm" / "lab0.wav", fs, (pcm * 32767).astype(np.int16))
    rec = {
        "capture_id": "lab0",
        "device_id": "lab",
        "profile": "speaker4",
        "t_start": "2026-01-01T00:00:00.000Z",
        "duration_s": dur,
        "carrier_hz": carrier,
        "fs_hz": fs,
        "n_mics": 1,
        "emission_db": -6.0,
        "firmware": "0.0.0",
        "trigger": "collection",
        "playback_volume": 0,
        "file": "pcm/lab0.wav",
    }
    (tmp_path / "raw" / "captures.jsonl").write_text(json.dumps(rec) + "\n")
    (tmp_path / "truth" / "events.jsonl").write_text(
        json.dumps(
            {
                "capture_id": "lab0",
                "t0_s": 2.0,
                "t1_s": 4.0,
                "event_type": "walk",
                "is_presence": True,
                "motion_class": "major",
            }
        )
        + "\n"
    )
    rates = []

    def decide(iq, fs_hz, carrier_hz):
        rates.append((fs_hz, iq.shape))
        return np.array([1.0]), np.array([False]), np.zeros(0)

    metrics, _ = evaluate_with(decide, tmp_path / "raw", tmp_path / "truth", baseband_fs_hz=2000.0)
    assert metrics["n_captures_skipped"] == 0
    assert rates[0][0] == 2000.0 and rates[0][1][0] == 1
    assert metrics["hours_total"] == pytest.approx(dur / 3600, rel=0.01)


def test_escaping_file_paths_are_skipped(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "truth").mkdir()
    (tmp_path / "truth" / "events.jsonl").write_text("")
    rec = {"capture_id": "x", "fs_hz": 2000.0, "carrier_hz": 40000.0, "file": "../outside.npy"}
    np.save(tmp_path / "outside.npy", np.zeros((1, 10), np.complex64))
    (tmp_path / "raw" / "captures.jsonl").write_text(json.dumps(rec) + "\n")
    metrics, outcomes = evaluate_with(lambda *a: None, tmp_path / "raw", tmp_path / "truth")
    assert outcomes == [] and "escapes" in metrics["skipped"][0]["reason"]


def _stream_batch(root, starts_s: list[float], files_ok: list[bool] | None = None, device: str = "d1"):
    """Captures of 2 s (4000 samples at 2 kHz, one mic) whose sample value is their index."""
    import datetime as dt

    (root / "raw" / "iq").mkdir(parents=True)
    (root / "truth").mkdir()
    (root / "truth" / "events.jsonl").write_text("")
    epoch = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    lines = []
    for k, start in enumerate(starts_s):
        cid = f"c{k}"
        if files_ok is None or files_ok[k]:
            np.save(root / "raw" / "iq" / f"{cid}.npy", np.full((1, 4000), k, np.complex64))
        stamp = (
            (epoch + dt.timedelta(seconds=start)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        )
        rec = {"capture_id": cid, "device_id": device, "t_start": stamp, "duration_s": 2.0, "fs_hz": 2000.0}
        lines.append(json.dumps({**rec, "carrier_hz": 40000.0, "n_mics": 1, "file": f"iq/{cid}.npy"}))
    (root / "raw" / "captures.jsonl").write_text("\n".join(lines) + "\n")
    return root / "raw", root / "truth"


def _recording_decide(calls):
    def decide(iq, fs_hz, carrier_hz):
        calls.append(np.unique(iq.real).astype(int).tolist())
        times = np.arange(1, iq.shape[1] // 100 + 1) * 0.05  # a frame every 50 ms, to the stream's end
        present = np.zeros(times.size, bool)
        present[times.size // 2] = True
        return times, present, times[present]

    return decide


def test_back_to_back_captures_run_as_one_stream(tmp_path):
    raw, truth = _stream_batch(tmp_path, [0.0, 2.0, 4.0, 10.0])  # c3 starts after a gap
    calls = []
    _, outcomes = evaluate_with(_recording_decide(calls), raw, truth)
    assert calls == [[0, 1, 2], [3]]  # c0..c2 are one stream, c3 its own
    assert [o.capture_id for o in outcomes] == ["c0", "c1", "c2", "c3"]
    for o in outcomes:  # per capture again: times from the capture's own start
        assert o.duration_s == 2.0 and o.times_s.min() > 0 and o.times_s.max() <= 2.0 + 1e-9
    assert [len(o.onset_times_s) for o in outcomes] == [0, 1, 0, 1]  # the stream's onset fell in c1
    assert sum(len(o.times_s) for o in outcomes[:3]) == 120


def test_unreadable_capture_splits_the_stream_and_limits_apply(tmp_path):
    raw, truth = _stream_batch(tmp_path, [0.0, 2.0, 4.0, 6.0], files_ok=[True, False, True, True])
    calls = []
    metrics, _ = evaluate_with(_recording_decide(calls), raw, truth)
    assert calls == [[0], [2, 3]] and metrics["n_captures_skipped"] == 1
    calls.clear()
    evaluate_with(_recording_decide(calls), raw, truth, max_run_s=2.0)
    assert calls == [[0], [2], [3]]
