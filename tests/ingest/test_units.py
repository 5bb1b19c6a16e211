"""Unit tests of the ingest building blocks: feature store, contract, reader, drift, bench batch."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io.wavfile
from conftest import T0, capture_record, write_raw_batch

from bench.ingest import synthesize_batch
from ingest.config import DriftConfig, IngestConfig
from ingest.contract import CaptureLimits, check_capture_record, check_dialogue_record
from ingest.drift import compare_profiles
from ingest.features import FeatureStore
from ingest.reader import Rejected, SampleLimits, iter_jsonl, load_pcm_as_iq, resolve_in_batch
from runtime.demod import demodulate

CHECKER = Path("/work/shared/tools/check_raw_batch.py")


def test_feature_store_appends_and_rewrites_its_header(tmp_path):
    rng = np.random.default_rng(0)
    chunks = [rng.standard_normal((n, 5)).astype(np.float32) for n in (3, 0, 7, 1)]
    store = FeatureStore(tmp_path / "a.npy", 5)
    offsets = [store.append(c) for c in chunks]
    assert store.close() == 11 and offsets == [0, 3, 3, 10]
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy", allow_pickle=False), np.concatenate(chunks))
    merged = FeatureStore(tmp_path / "b.npy", 5)
    assert merged.append_from(tmp_path / "a.npy", chunk_rows=4) == 0
    assert merged.append(chunks[0]) == 11
    merged.close()
    loaded = np.load(tmp_path / "b.npy", allow_pickle=False, mmap_mode="r")
    assert loaded.shape == (14, 5) and loaded.dtype == np.float32
    with pytest.raises(ValueError):
        FeatureStore(tmp_path / "c.npy", 5).append(np.zeros((2, 4), np.float32))


def test_capture_contract_accepts_good_records_and_lab_carriers(params):
    limits = CaptureLimits.from_config(IngestConfig.from_params(params))
    assert check_capture_record(capture_record("c", "d", T0), limits) == []
    lab = capture_record("c", "d", T0, carrier_hz=18000.0, trigger="collection")
    assert check_capture_record(lab, limits) == []
    device = capture_record("c", "d", T0, carrier_hz=18000.0, trigger="detection")
    assert [r.reason for r in check_capture_record(device, limits)] == ["carrier_out_of_range"]
    several = capture_record("c", "d", T0, profile="x", playback_volume=12)
    assert {r.reason for r in check_capture_record(several, limits)} == {
        "unknown_profile",
        "volume_out_of_range",
    }
    for edge in (32000.0, 48000.0):
        assert check_capture_record(capture_record("c", "d", T0, carrier_hz=edge), limits) == []


def test_dialogue_contract_per_kind():
    base = {"event_id": "e", "device_id": "d", "ts": "2026-11-21T08:00:00.000Z"}
    assert check_dialogue_record(base | {"kind": "playback", "action": "start", "volume": 3}) == []
    assert [r.reason for r in check_dialogue_record(base | {"kind": "playback", "action": "pause"})] == [
        "bad_playback_action"
    ]
    assert [r.field for r in check_dialogue_record(base | {"kind": "feedback", "value": "x"})] == [
        "target_event_id"
    ]
    assert [
        r.reason for r in check_dialogue_record(base | {"kind": "turn", "utterance": 3, "intent": "x"})
    ] == ["wrong_field_type"]


def test_jsonl_reader_survives_bad_bytes_and_skips_blank_lines(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"a": 1}\n\n   \n\xff\xfe\n[1, 2]\n{"b": Infinity}\n')
    rows = list(iter_jsonl(path))
    assert [n for n, _, _ in rows] == [1, 4, 5, 6]
    assert rows[0][2] == {"a": 1} and rows[2][2] == [1, 2]
    assert rows[1][2].reason == "malformed_json" and rows[3][2].reason == "malformed_json"


def test_paths_must_stay_inside_the_batch(tmp_path):
    raw = tmp_path / "batch"
    (raw / "iq").mkdir(parents=True)
    (raw / "iq" / "ok.npy").write_bytes(b"x")
    assert resolve_in_batch(raw, "iq/ok.npy") == (raw / "iq" / "ok.npy").resolve()
    for bad in ("../batch2/x.npy", "iq/../../x.npy", "/abs.npy", ""):
        with pytest.raises(Rejected) as info:
            resolve_in_batch(raw, bad)
        assert info.value.reject.reason == "path_outside_batch"


def test_pcm_wav_is_demodulated_by_the_runtime(params, tmp_path):
    fs, carrier, seconds = 96000, 40000.0, 0.5
    t = np.arange(int(fs * seconds)) / fs
    pcm = np.stack(
        [0.3 * np.cos(2 * np.pi * (carrier + 50.0) * t), 0.2 * np.cos(2 * np.pi * carrier * t)]
    )  # [2, n]
    path = tmp_path / "c.wav"
    scipy.io.wavfile.write(path, fs, pcm.T.astype(np.float32))
    record = capture_record("c", "d", T0, fs_hz=float(fs), duration_s=seconds, file="pcm/c.wav")
    limits = SampleLimits.from_config(IngestConfig.from_params(params))
    iq = load_pcm_as_iq(path, record, limits, 2000.0)
    # recordings read from files are demodulated with settled edges
    expected = demodulate(pcm.astype(np.float32), float(fs), carrier, 2000.0, edge="settled")
    assert iq.dtype == np.complex64 and iq.shape == expected.shape == (2, 1000)
    np.testing.assert_allclose(iq, expected, atol=1e-5)
    with pytest.raises(Rejected) as info:
        load_pcm_as_iq(path, record | {"n_mics": 3}, limits, 2000.0)
    assert info.value.reject.reason == "n_mics_mismatch"
    with pytest.raises(Rejected) as info:
        load_pcm_as_iq(path, record | {"fs_hz": 48000.0}, limits, 2000.0)
    assert info.value.reject.reason == "sample_rate_mismatch"


def test_drift_flags_level_shifts_and_rate_changes():
    cfg = DriftConfig(reference_batch=None, feature_z_max=3.0, rate_ratio_max=3.0, min_events=5)
    device = {"hours": 1.0, "counts": {"trigger:detection": 10, "kind:turn": 20}}
    reference = {"n_frames": 100, "bin_mean": [-40.0] * 4, "bin_std": [1.0] * 4, "devices": {"d": device}}
    assert compare_profiles(copy.deepcopy(reference), reference, cfg) == []
    shifted = copy.deepcopy(reference) | {"bin_mean": [-40.0, -40.0, -40.0, -30.0]}
    assert any("velocity bins" in w for w in compare_profiles(shifted, reference, cfg))
    busier = copy.deepcopy(reference)
    busier["devices"]["d"]["counts"]["trigger:detection"] = 50
    warnings = compare_profiles(busier, reference, cfg)
    assert len(warnings) == 1 and warnings[0].startswith("d: trigger:detection")
    sparse = copy.deepcopy(reference)
    sparse["devices"]["d"]["counts"] = {"trigger:detection": 10, "kind:turn": 20, "kind:feedback": 4}
    assert compare_profiles(sparse, reference, cfg) == []  # too few events to compare


@pytest.mark.skipif(not CHECKER.exists(), reason="shared contract checker not present")
def test_test_batches_and_bench_batches_pass_the_independent_contract_checker(params, tmp_path):
    write_raw_batch(tmp_path / "fixture")
    cfg = params["bench"]["ingest"] | {"capture_s": 2.0, "distinct_clips": 2}
    info = synthesize_batch(tmp_path / "bench", devices=2, hours=0.05, cfg=cfg, fs_hz=2000.0)
    assert (
        info["n_captures"] == 2 * int(0.05 * 3600 // cfg["capture_every_s"]) and info["device_hours"] == 0.1
    )
    for raw in (tmp_path / "fixture", tmp_path / "bench"):
        out = subprocess.run(
            [sys.executable, str(CHECKER), str(raw)], capture_output=True, text=True, check=False
        )
        assert out.returncode == 0, out.stdout
