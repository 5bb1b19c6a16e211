"""Evaluation over a raw batch: reading the contract, skipping bad captures, bundles, CFAR baseline."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
from config_testkit import cfar_section
from training_testkit import band_energy_model, write_raw_batch

from training.evaluate import (
    EvaluationError,
    compare_models,
    evaluate_bundle,
    evaluate_cfar,
    evaluate_cfar_rows,
    evaluate_detector,
    evaluate_models,
    metrics_of,
    run_batch,
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


class RecordingRun:
    """A StreamRun that records what it was fed: one frame every 50 ms, present at the stream's middle."""

    def __init__(self, calls, fs):
        self.calls, self.fs, self.parts = calls, fs, []
        calls.append(self.parts)

    def feed(self, iq):
        self.parts.append(np.unique(iq.real).astype(int).tolist() if iq.shape[0] == 1 else list(iq.shape))
        self.n = getattr(self, "n", 0) + iq.shape[1]

    def decisions(self):
        times = np.arange(1, int(self.n / self.fs / 0.05) + 1) * 0.05
        present = np.zeros(times.size, bool)
        present[times.size // 2] = True
        return times, present, times[present], None


def recording(calls):
    return lambda fs, carrier, n_mics: RecordingRun(calls, fs)


def test_reader_skips_and_counts_bad_captures(raw_batch):
    raw, truth = raw_batch
    calls = []
    evaluation = run_batch(recording(calls), raw, truth)
    metrics, _ = metrics_of(evaluation)
    assert [s.captures[0][0] for s in evaluation.streams] == ["walk", "empty"]
    assert metrics["n_captures_skipped"] == 3  # missing file, wrong dtype, malformed line
    reasons = " ".join(s["reason"] for s in metrics["skipped"])
    assert "complex" in reasons
    assert {s["capture_id"] for s in metrics["skipped"]} == {"missing", "wrongdtype", "line 5"}
    assert metrics["entries"] == 1  # the missing capture's walker is not counted
    assert metrics["stream_hours"] == pytest.approx(24.0 / 3600)


def test_missing_truth_or_index_raise(tmp_path, raw_batch):
    raw, truth = raw_batch
    with pytest.raises(EvaluationError, match=r"events\.jsonl"):
        run_batch(recording([]), raw, tmp_path)
    with pytest.raises(EvaluationError, match=r"captures\.jsonl"):
        run_batch(recording([]), tmp_path, truth)


def test_detector_finds_the_walker_and_not_the_empty_room(raw_batch, model_bytes):
    raw, truth = raw_batch
    m = evaluate_detector(model_bytes, FRONTEND, DETECTOR, raw, truth)
    assert m["entry_recall"] == 1.0 and m["entries"] == 1
    assert m["false_triggers"] == 0
    assert 0.0 <= m["entry_latency_median_s"] <= 2.0
    assert m["by_event_type"]["walk"]["present_fraction"] > 0.5
    assert m["by_event_type"]["ceiling_fan"]["present_fraction"] == 0.0
    assert m["false_triggers_by_type"]["ceiling_fan"]["false_triggers"] == 0


def test_det_curve_reruns_only_the_state_machine(raw_batch, model_bytes):
    raw, truth = raw_batch
    thresholds = [0.3, 0.99, 1.0]
    out = evaluate_models({"m": model_bytes}, FRONTEND, DETECTOR, raw, truth, det_thresholds=thresholds)["m"]
    direct = evaluate_detector(model_bytes, FRONTEND, DETECTOR, raw, truth)
    m = out["metrics"]
    for key in ("false_triggers", "entry_recall", "empty_present_fraction", "false_absences"):
        assert m[key] == direct[key]
    curve = m["det_curve"]
    assert [p["threshold"] for p in curve] == [0.3, 0.8, 0.99, 1.0]  # the detector's own one added
    assert m["operating_point"] == curve[1]
    assert m["operating_point"]["false_triggers_per_empty_hour"] == direct["false_triggers_per_empty_hour"]
    # a higher strict threshold gives a subset of the positives: misses never fall, time present never grows
    missed = [p["missed_entry_rate"] for p in curve]
    present = [p["empty_present_fraction"] for p in curve]
    assert missed == sorted(missed) and present == sorted(present, reverse=True)
    assert curve[-1]["missed_entry_rate"] == 1.0  # nothing reaches p_major >= 1


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
    assert from_tar["entry_recall"] == 1.0


def test_bundle_missing_payload_raises(tmp_path, raw_batch):
    raw, truth = raw_batch
    (tmp_path / "b" / "payload").mkdir(parents=True)
    with pytest.raises(EvaluationError, match=r"model_int8\.onnx"):
        evaluate_bundle(tmp_path / "b", raw, truth)


def test_compare_models_identical_agree(raw_batch, model_bytes):
    raw, truth = raw_batch
    out = compare_models(model_bytes, model_bytes, FRONTEND, DETECTOR, raw, truth)
    assert out["decision_agreement"] == 1.0
    assert out["float"]["entry_recall"] == out["int8"]["entry_recall"]
    assert out["n_frames"] > 600 and out["rows"]["int8"][0]["kind"] == "entry"


def test_cfar_baseline_same_counting(raw_batch):
    raw, truth = raw_batch
    m = evaluate_cfar(raw, truth, FRONTEND, cfar_section(hold_s=1.0))
    assert m["entries"] == 1 and m["n_captures_skipped"] == 3
    assert m["entry_recall"] == 1.0 and m["false_triggers_strict"] is None
    curve, _ = evaluate_cfar_rows(
        raw, truth, FRONTEND, cfar_section(hold_s=1.0), det_thresholds_db=[3.0, 60.0]
    )
    assert [p["threshold"] for p in curve["det_curve"]] == [3.0, 6.0, 60.0]
    assert curve["det_curve"][-1]["missed_entry_rate"] == 1.0


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
    rates, calls = [], []

    def decider(fs_hz, carrier_hz, n_mics):
        rates.append((fs_hz, n_mics))
        return RecordingRun(calls, fs_hz)

    metrics, _ = metrics_of(run_batch(decider, tmp_path / "raw", tmp_path / "truth", baseband_fs_hz=2000.0))
    assert metrics["n_captures_skipped"] == 0
    assert rates == [(2000.0, 1)]
    assert metrics["stream_hours"] == pytest.approx(dur / 3600, rel=0.01)
    assert metrics["entries"] == 1  # a lab clip is a stream of its own, its take one episode


def test_escaping_file_paths_are_skipped(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "truth").mkdir()
    (tmp_path / "truth" / "events.jsonl").write_text("")
    rec = {"capture_id": "x", "fs_hz": 2000.0, "carrier_hz": 40000.0, "file": "../outside.npy"}
    np.save(tmp_path / "outside.npy", np.zeros((1, 10), np.complex64))
    (tmp_path / "raw" / "captures.jsonl").write_text(json.dumps(rec) + "\n")
    evaluation = run_batch(recording([]), tmp_path / "raw", tmp_path / "truth")
    assert evaluation.streams == [] and "escapes" in evaluation.skipped[0]["reason"]


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


def test_back_to_back_captures_run_as_one_stream(tmp_path):
    raw, truth = _stream_batch(tmp_path, [0.0, 2.0, 4.0, 10.0])  # c3 starts after a gap
    calls = []
    evaluation = run_batch(recording(calls), raw, truth)
    assert calls == [[[0], [1], [2]], [[3]]]  # c0..c2 fed in order to one stream, c3 its own
    first = evaluation.streams[0]
    assert first.captures == [("c0", 0.0), ("c1", 2.0), ("c2", 4.0)] and first.duration_s == 6.0
    _, rows = metrics_of(evaluation)
    # the stream's one onset (a false trigger: nobody there) is placed in the capture it fell in
    triggers = [(r["capture_id"], r["t_s"]) for r in rows if r["kind"] == "false_trigger"]
    assert triggers == [("c1", pytest.approx(1.0, abs=0.06)), ("c3", pytest.approx(1.0, abs=0.06))]


def test_unreadable_capture_splits_the_stream(tmp_path):
    raw, truth = _stream_batch(tmp_path, [0.0, 2.0, 4.0, 6.0], files_ok=[True, False, True, True])
    calls = []
    evaluation = run_batch(recording(calls), raw, truth)
    assert calls == [[[0]], [[2], [3]]] and len(evaluation.skipped) == 1


def test_episode_ids_rebuild_an_episode_across_captures(tmp_path):
    raw, truth = _stream_batch(tmp_path, [0.0, 2.0, 4.0])
    rows = [  # one walk from 1.5 s to 4.5 s of the stream, cut into three fragments
        {
            "capture_id": "c0",
            "t0_s": 1.5,
            "t1_s": 2.0,
            "episode_id": "w",
            "episode_t0_s": 1.5,
            "episode_t1_s": 4.5,
        },
        {
            "capture_id": "c1",
            "t0_s": 0.0,
            "t1_s": 2.0,
            "episode_id": "w",
            "episode_t0_s": -0.5,
            "episode_t1_s": 2.5,
        },
        {
            "capture_id": "c2",
            "t0_s": 0.0,
            "t1_s": 0.5,
            "episode_id": "w",
            "episode_t0_s": -2.5,
            "episode_t1_s": 0.5,
        },
    ]
    (truth / "events.jsonl").write_text(
        "".join(
            json.dumps({**r, "event_type": "walk_in", "is_presence": True, "motion_class": "major"}) + "\n"
            for r in rows
        )
    )
    evaluation = run_batch(recording([]), raw, truth)
    (episode,) = evaluation.streams[0].episodes
    assert (episode.t0, episode.t1) == (1.5, 4.5)
    m, _ = metrics_of(evaluation)
    assert m["entries"] == 1 and m["occupied_hours"] == pytest.approx(3.0 / 3600)
