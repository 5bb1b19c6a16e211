"""Simulated playback through the device's MBDP: the music event's bass goes through runtime.mbdp (the
tuning's sensing mode) before it drives the loudspeaker model; without a tuning playback stays raw."""

import json
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from config_testkit import detector_config, frontend_config
from test_batch import digest

from fleet.config import sim_section
from fleet.devices import make_device
from fleet.events import MbdpBass, bass_waveform, make_event
from fleet.rooms import make_room
from fleet.scenes import DeviceScene
from fleet.simulate import sensing_mbdp, simulate_batch
from fleet.timeline import plan
from runtime.loudspeaker import LoudspeakerParams, quasi_static_excursion, ultrasonic_distortion_dbc
from runtime.mbdp import MultibandProcessor, bundle_tuning, crossover_only, load_preset

FS = 2000.0
SENSING = load_preset("speaker4_sensing")


@pytest.fixture(scope="module")
def unit():
    rng = np.random.default_rng(3)
    dev = make_device("speaker4", "t-0000", 40000.0, rng)
    return dev, make_room(dev.height_m, rng)


def distortion(unit, seconds: float, seed: int, **kw) -> np.ndarray:
    """Music distortion alone [M, n] (scene with the music minus the quiet scene, noise-free)."""
    dev, room = unit
    ev = make_event("music", 0.0, seconds, np.random.default_rng(seed), room, excursion_mm=1.2, **kw)
    t = np.arange(1.0 * FS, (seconds - 1.0) * FS) / FS  # clear of the fades
    quiet = DeviceScene(dev, room, [], FS, 1)
    return DeviceScene(dev, room, [ev], FS, 1).render_times(t) - quiet.render_times(t)


def doppler_band_db(d: np.ndarray, band=(15.0, 900.0)) -> float:
    spec = np.abs(np.fft.fft(d[0])) ** 2
    f = np.abs(np.fft.fftfreq(d.shape[1], 1 / FS))
    return float(10 * np.log10(spec[(f >= band[0]) & (f <= band[1])].sum()))


@pytest.mark.parametrize("volume", [8.0, 10.0])
def test_sensing_mbdp_lowers_the_ultrasonic_sidebands_of_loud_music(unit, volume):
    raw = doppler_band_db(distortion(unit, 12.0, 5, volume=volume))
    with_mbdp = doppler_band_db(distortion(unit, 12.0, 5, volume=volume, mbdp=SENSING))
    # the sensing preset compresses the low band hard above -30 dBFS: loud bass moves the cone less
    assert with_mbdp < raw - 3.0, (raw, with_mbdp)


def test_mbdp_distortion_keeps_the_direct_path_signature(unit):
    dev, room = unit
    d = distortion(unit, 8.0, 6, volume=10.0, mbdp=SENSING)
    u, s, _ = np.linalg.svd(d, full_matrices=False)
    assert s[1] / s[0] < 1e-3  # rank one across mics: what the canceller exploits
    direct = DeviceScene(dev, room, [], FS, 1).direct
    assert abs(np.vdot(direct / np.linalg.norm(direct), u[:, 0])) > 0.999


def test_neutral_mbdp_plays_at_the_raw_level(unit):
    """An MBDP whose dynamics do nothing (crossover only, an all-pass) leaves the sideband level as raw:
    the digital level the MBDP sees and the excursion it maps back to match the raw chain."""
    raw = doppler_band_db(distortion(unit, 12.0, 7, volume=7.0))
    neutral = doppler_band_db(distortion(unit, 12.0, 7, volume=7.0, mbdp=crossover_only(SENSING)))
    assert abs(neutral - raw) < 0.5, (raw, neutral)


def test_per_note_table_matches_streaming_the_whole_event():
    """MbdpBass (the MBDP run once per distinct note) against the MBDP over the whole bass at 48 kHz."""
    fs, t0, seconds, level = SENSING.fs_hz, 2.0, 16.0, 0.81
    bass = bass_waveform(np.random.default_rng(11), t0)
    t = t0 + np.arange(int(seconds * fs)) / fs
    full = MultibandProcessor(SENSING).process_aligned(level * bass(t))
    table = MbdpBass(bass, level, SENSING, t0 + seconds)(t)
    steady = slice(int(2 * fs), None)
    speaker = LoudspeakerParams()

    def dbc(y):
        x = quasi_static_excursion(1.2e-3 * y[steady][::24], speaker)  # at the 2 kHz baseband rate
        return ultrasonic_distortion_dbc(x, 2000.0, 40000.0, speaker)

    rms = [float(np.sqrt(np.mean(y[steady] ** 2))) for y in (full, table)]
    assert 20 * np.log10(rms[1] / rms[0]) == pytest.approx(0.0, abs=0.1)
    assert dbc(table) == pytest.approx(dbc(full), abs=0.1)
    assert 20 * np.log10(rms[0] / np.sqrt(np.mean((level * bass(t[steady])) ** 2))) < -3  # it compressed


def music_sim(**eval_kw) -> dict:
    sim = json.loads(json.dumps(sim_section(None)))
    sim.update(capture_s=4.0, workers=1)
    sim["calibration"]["enabled"] = False
    sim["eval"].update(kinds=["music"], combo_prob=0.0, episode_s=[8.0, 12.0], gap_s=[9.0, 12.0], **eval_kw)
    return sim


def test_plan_threads_the_tuning_to_music_events_only(unit):
    _, room = unit
    sim = music_sim()
    rng = [np.random.default_rng(4), np.random.default_rng(4)]
    raw, with_mbdp = plan("eval", 120.0, rng[0], room, sim), plan("eval", 120.0, rng[1], room, sim, SENSING)
    assert raw.events and {e.event_type for e in raw.events} == {"music"}
    assert [(e.t0, e.t1, e.volume) for e in raw.events] == [(e.t0, e.t1, e.volume) for e in with_mbdp.events]
    assert not any(e.meta["mbdp"] for e in raw.events) and all(e.meta["mbdp"] for e in with_mbdp.events)


@pytest.fixture(scope="module")
def music_batches(tmp_path_factory):
    root = tmp_path_factory.mktemp("music")
    sim, tuning = music_sim(), bundle_tuning("speaker4")
    out = {}
    for name, mbdp, workers in (("raw", None, 1), ("mbdp", tuning, 1), ("mbdp_again", tuning, 2)):
        s = {**sim, "workers": workers}
        raw, truth = root / name / "raw", root / name / "truth"
        simulate_batch("eval", 2, 0.02, 9, raw, truth, sim_params=s, mbdp=mbdp)
        out[name] = (raw, truth)
    return out


def test_batches_with_mbdp_are_deterministic(music_batches):
    (raw_a, truth_a), (raw_b, truth_b) = music_batches["mbdp"], music_batches["mbdp_again"]
    assert digest(raw_a) == digest(raw_b)  # same seed → same bytes, whatever the number of workers
    assert digest(truth_a) == digest(truth_b)


def test_mbdp_changes_only_the_music_samples(music_batches):
    (raw_r, truth_r), (raw_m, truth_m) = music_batches["raw"], music_batches["mbdp"]
    assert digest(truth_r) == digest(truth_m)  # the same plan
    caps = [json.loads(x) for x in (raw_r / "captures.jsonl").read_text().splitlines()]
    changed = {c["capture_id"]: c["playback_volume"] > 0 for c in caps}
    assert any(changed.values()) and not all(changed.values())
    for c in caps:
        a = np.load(raw_r / c["file"], allow_pickle=False)
        b = np.load(raw_m / c["file"], allow_pickle=False)
        assert (not np.array_equal(a, b)) == changed[c["capture_id"]], c["capture_id"]


def test_bad_tuning_fails_before_simulating(tmp_path):
    tuning = bundle_tuning("speaker4")
    tuning["runtime_version"] = "mbdp-v0"
    raw, truth = tmp_path / "r", tmp_path / "t"
    with pytest.raises(ValueError, match="runtime_version"):
        simulate_batch("eval", 1, 0.01, 1, raw, truth, sim_params=music_sim(), mbdp=tuning)
    assert not (raw / "captures.jsonl").exists()
    assert sensing_mbdp(None) is None
    assert sensing_mbdp(bundle_tuning("speaker4")) == SENSING


def never_fires() -> bytes:
    """ONNX classifier whose logits always say "none"."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from bench_testkit import classifier

    return classifier([6.0, 0.0, 0.0])


def make_bundle(root, mbdp_json: str | None):

    (root / "payload").mkdir(parents=True)
    (root / "manifest.json").write_text(json.dumps({"version": "9.9.9-test"}))
    (root / "payload" / "frontend.json").write_text(json.dumps(frontend_config().to_dict()))
    (root / "payload" / "detector.json").write_text(json.dumps(detector_config().to_dict()))
    (root / "payload" / "model_int8.onnx").write_bytes(never_fires())
    if mbdp_json is not None:
        (root / "payload" / "mbdp.json").write_text(mbdp_json)
    return root


def test_bundle_runner_reads_the_bundles_mbdp(tmp_path):
    from fleet.bundle_runner import BundleLoadError, BundleRunner

    tuning = bundle_tuning("display2")
    folder = make_bundle(tmp_path / "b", json.dumps(tuning))
    tar_path = tmp_path / "b.tar"
    with tarfile.open(tar_path, "w") as tar:
        tar.add(folder, arcname=".")
    for path in (folder, tar_path):
        assert BundleRunner(path, FS, 0.25, 0.5).mbdp_tuning == tuning
    assert BundleRunner(make_bundle(tmp_path / "none", None), FS, 0.25, 0.5).mbdp_tuning is None
    with pytest.raises(BundleLoadError, match=r"mbdp\.json"):
        BundleRunner(make_bundle(tmp_path / "bad", '{"modes": {}}'), FS, 0.25, 0.5)


def test_units_running_a_bundle_play_through_its_mbdp(tmp_path, music_batches):
    """An installed bundle's payload/mbdp.json gives the same music as passing that tuning in."""
    bundle = make_bundle(tmp_path / "b", json.dumps(bundle_tuning("speaker4")))
    raw, truth = tmp_path / "raw", tmp_path / "truth"
    simulate_batch("eval", 2, 0.02, 9, raw, truth, bundle_path=bundle, sim_params=music_sim())
    raw_m, _ = music_batches["mbdp"]
    caps = [json.loads(x) for x in (raw / "captures.jsonl").read_text().splitlines()]
    assert caps and any(c["playback_volume"] > 0 for c in caps)
    for c in caps:
        a = np.load(raw / c["file"], allow_pickle=False)
        assert np.array_equal(a, np.load(raw_m / c["file"], allow_pickle=False)), c["capture_id"]
