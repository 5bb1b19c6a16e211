"""bench.mbdp: false alarms during music with and without the MBDP, on small simulated batches."""

import copy

import numpy as np
import pytest
from bench_testkit import small_params

from bench.mbdp import _by_volume, _music_figures, doppler_band_db, music_false_alarms, run_bench
from bench.models import bench_section
from common.params import load_params
from training.evaluate import EvaluatedStream, Evaluation, metrics_of
from training.metrics import Episode


def test_quick_overrides_merge_into_the_section():
    p = copy.deepcopy(load_params())
    p["bench"]["mbdp"]["music"]["quick"] = {"devices": 1, "train": {"epochs": 1}}
    section = p["bench"]["mbdp"]["music"]
    full, quick = bench_section(section, False), bench_section(section, True)
    assert "quick" not in full and "quick" not in quick
    assert quick["devices"] == 1 and quick["train"]["epochs"] == 1
    assert quick["train"]["hours"] == full["train"]["hours"]  # nested keys not overridden are kept


class Held:
    """A StreamRun stand-in: present from 25 s to 27 s of a 60 s stream (frames every 0.1 s)."""

    def decisions(self):
        times = np.arange(1, 600) * 0.1
        present = (times >= 25.0) & (times <= 27.0)
        return times, present, times[present][:1], None


def test_songs_are_counted_per_playback_volume_of_the_capture_they_start_in():
    songs = [Episode("m1", "music", False, 5.0, 15.0), Episode("m2", "music", False, 22.0, 40.0)]
    stream = EvaluatedStream("s", "d", 60.0, [("c0", 0.0), ("c1", 20.0), ("c2", 40.0)], songs, Held())
    evaluation = Evaluation([stream])
    by_volume = _by_volume(evaluation, {"c0": 3.0, "c1": 8.0, "c2": 0.0})
    assert [e.event_type for e in by_volume.streams[0].episodes] == ["music@3", "music@8"]
    m, rows = metrics_of(by_volume)
    loud, quiet = _music_figures(m, rows, by_volume, "music@8"), _music_figures(m, rows, by_volume, "music@3")
    assert loud["music_false_alarms"] == 1 and quiet["music_false_alarms"] == 0  # the onset at 25 s
    assert loud["music_hours"] == pytest.approx(18.0 / 3600)
    assert loud["music_present_fraction"] == pytest.approx(2.0 / 18.0, abs=0.01)
    assert loud["music_entries"] == 0 and loud["music_entry_recall"] is None


def test_doppler_band_level_of_a_tone():
    fs, n = 2000.0, 2000
    t = np.arange(n) / fs
    iq = (0.01 * np.exp(2j * np.pi * 100.0 * t) + 1.0)[None]  # -40 dBFS tone on a static path
    assert doppler_band_db(iq, fs) == pytest.approx(-40.0, abs=0.1)
    assert doppler_band_db(np.ones((1, n)), fs) < -200  # the static path alone is out of the band


@pytest.mark.parametrize(
    ("bias", "present"),
    [([6.0, 0.0, 0.0], 0.0), ([-6.0, 0.0, 6.0], 1.0)],
    ids=["never-fires", "always-fires"],
)
def test_music_false_alarms_from_a_bundle(tmp_path, bias, present):
    out = music_false_alarms(small_params(tmp_path, bias))
    assert out["music_detector"]["source"] == "bundle"
    assert out["music_hours_measured"] == out["music_hours_with_mbdp"] > 0  # the same plan twice
    for name in ("with_mbdp", "without_mbdp"):
        fa = out[f"music_false_alarms_{name}"]
        assert out[f"music_false_alarms_per_hour_{name}"] == pytest.approx(fa / out["music_hours_measured"])
        assert out[f"music_present_fraction_{name}"] == pytest.approx(present, abs=0.05)
        fa_empty = out["music_gaps_empty_false_alarms_per_hour"][name]
        assert out["music_gaps_empty_present_fraction"][name] == pytest.approx(present, abs=0.05)
        assert (fa + fa_empty > 0) == (present > 0)  # a detector stuck on has one onset per stream
    loud = [v for vol, v in out["music_by_volume"].items() if float(vol) >= 7]
    assert loud  # loud music: the sensing MBDP's compression shows in the band level the detector sees
    assert all(v["doppler_band_dbfs_with_mbdp"] < v["doppler_band_dbfs_without_mbdp"] for v in loud)


@pytest.mark.slow  # simulates two music batches end to end (about 15 s)
def test_run_bench_merges_the_dsp_and_music_figures(tmp_path, monkeypatch):
    import bench.mbdp

    monkeypatch.setattr(bench.mbdp, "dsp_figures", lambda params, quick=False: {"bass_gain_db": 5.0})
    out = run_bench(small_params(tmp_path, [6.0, 0.0, 0.0]), quick=True)
    assert out["bass_gain_db"] == 5.0 and "not_measured" not in out
    assert {"music_false_alarms_per_hour_with_mbdp", "music_false_alarms_per_hour_without_mbdp"} <= set(out)
