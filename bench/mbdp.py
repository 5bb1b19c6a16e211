"""`flywheel bench mbdp`: the MBDP's DSP figures, peers side by side, and the detector's false alarms
during music with and without the MBDP, measured on the fleet simulator.

DSP figures (dsp_figures): crossover flatness, true-peak ceiling, CPU, fixed point (the real CMSIS-DSP
kernels, bench.cmsis), bass gain at equal peak, loudspeaker THD and ultrasonic-band distortion.
Two presets per profile trade off: the playback preset (`mbdp.profile`) raises bass at equal peak,
the sensing preset (`mbdp.sensing_profile`) holds the low band down while presence sensing runs;
`bass_gain_db` comes from the first, `ultrasonic_distortion_reduction_db` from the second, and
`by_preset` gives both figures for both.

Signals: a synthetic bass-heavy music clip (kick, bass line, chords, hi-hat noise), bass tones,
an impulse (crossover transfer) and a log sweep at 0.25 FS (fixed point). Peers run as external
programs: sox `mcompand` and the LSP multiband compressor through lv2apply, both with an identity
transfer so only their crossovers show (REFERENCE.md recipes). Missing ones are installed first, once,
as `make bench-peers` does (bench/peers.py; `bench.mbdp.install_peers: false` turns that off); a peer
that still cannot run is reported skipped with the reason, and `peers.install` says what was tried.

False alarms during music (music_false_alarms). Every size and seed is in params.yaml bench.mbdp
(bench.mbdp.music for the detector, `quick` overrides for --quick).

- Batches: fleet.simulate.simulate_batch('eval') on the same held-out eval units with the same seed,
  twice: units playing raw (no tuning) and units playing through the MBDP tuning (the bundle's
  payload/mbdp.json when the detector comes from a bundle, else runtime.mbdp.bundle_tuning of
  mbdp.profile, what the package stage ships). The eval timeline is restricted to music
  (simulate.eval.kinds = [music], no combinations): music episodes at volumes 2-10 with empty gaps,
  rendered on every mic and kept. Music drives the cone through runtime.loudspeaker; with a tuning it
  goes through the sensing-mode MBDP first (fleet.events.music). Both batches have the same plan, so
  the same music at the same volumes at the same times; only the playback chain differs.
- Detector: the first bundle of bench.mbdp.music.bundles that exists ({turn} = turn.id), run with its
  own front-end and detector configs. Without one, a stand-in is trained on the spot through the real
  stage functions (flows.stages simulate -> ingest -> label_seed -> train -> export, int8, thresholds
  as training chose them; a small held-out batch of the same kind feeds export's float-vs-int8 gate)
  on oracle-labeled eval-like episodes of every event type except music: music stays out of its
  training data, as rare events stay out of the seed set. Why not the lab seed set (what
  bench/runtime.py trains): at the bench's training sizes that model reports "present" in an
  empty room nearly all the time. Why not bench.model's synthetic frames: their levels sit some
  50 dB away from the simulator's runtime features. `music_detector` says which detector ran.
- Counting: training.evaluate.run_batch with the device pipeline (runtime.pipeline.DevicePipeline,
  what evaluate_detector runs; back-to-back captures as one stream) and training.metrics' rules:
  `music_false_alarms_per_hour_*` = false triggers during music per hour of music in an empty room
  (false_triggers_by_type.music). Onsets miss a detector that stays "present" through a whole song,
  so `music_present_fraction_*` gives the share of empty-room music frames at which the detector says
  present, and `music_gaps_*` the same figures for the empty gaps between songs (a detector that
  stays on through the gaps is stuck, not fooled by each song); `music_entry_recall_*` is the entry
  recall of arrivals while music plays. `music_by_volume` splits them by the playback volume of the
  capture each song starts in (the songs relabelled music@VOLUME before counting) and adds the median
  Doppler-band (15-900 Hz) level of the music captures at mic 0 (dBFS): what the MBDP did to the
  distortion the detector sees. `music_chain` measures each link from the loudspeaker to the
  classifier's input (bench/music_chain.py): the distortion at the front-end with and without the
  canceller, what is left above the empty gaps' floor, and its direct-path share.
"""

from __future__ import annotations

import copy
import json
import resource
import shutil
import subprocess
import tarfile
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from scipy import signal
from scipy.io import wavfile

from bench.cmsis import cmsis_available, fixed_vs_float_db
from bench.models import DeviceModel, bench_section, bundle_model, train_model
from bench.music_chain import chain_figures
from bench.peers import ensure_peers
from bench.suites import merged_figures
from runtime.loudspeaker import (
    LoudspeakerParams,
    simulate_cone,
    ultrasonic_distortion_dbc,
    volts_for_excursion,
)
from runtime.mbdp import (
    MbdpConfig,
    MultibandProcessor,
    crossover_only,
    design_crossover,
    load_preset,
    true_peak,
)


def synth_music(seconds: float, fs: float, rng: np.random.Generator) -> np.ndarray:
    """Bass-heavy music-like test clip [n], peak about 1."""
    n = int(seconds * fs)
    t = np.arange(n) / fs
    beat = 60.0 / 118.0
    k = np.floor(t / beat)
    since = t - k * beat
    kick = np.exp(-since / 0.09) * np.sin(2 * np.pi * (50 + 60 * np.exp(-since / 0.02)) * since)
    notes = rng.choice([41.2, 49.0, 55.0, 61.7, 73.4, 82.4], int(k.max()) + 2)
    f_bass = notes[(k // 2).astype(np.int64)]
    bass = np.sin(2 * np.pi * np.cumsum(f_bass) / fs) * (0.6 + 0.4 * np.exp(-since / 0.3))
    chord_f = np.array([261.6, 329.6, 392.0, 523.3])
    chords = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6.28)) for f in chord_f) * 0.06
    hat = signal.sosfilt(signal.butter(4, 6000, "high", fs=fs, output="sos"), rng.standard_normal(n))
    hat *= np.exp(-((t + beat / 2) % (beat / 2)) / 0.03) * 0.15
    x = 0.7 * kick + 0.5 * bass + chords + hat
    return x / np.max(np.abs(x))


def loudness_lufs(x: np.ndarray, fs: float) -> float:
    import pyloudnorm

    return float(pyloudnorm.Meter(int(fs)).integrated_loudness(x))


def at_loudness(x: np.ndarray, fs: float, lufs: float) -> np.ndarray:
    return x * 10 ** ((lufs - loudness_lufs(x, fs)) / 20)


def thd_db(y: np.ndarray, fs: float, f0: float, harmonics: int = 5) -> float:
    """Harmonics 2..harmonics over the fundamental, from a windowed spectrum (dB)."""
    w = signal.windows.blackmanharris(y.size)
    spec = np.abs(np.fft.rfft(y * w)) ** 2
    f = np.fft.rfftfreq(y.size, 1.0 / fs)

    def power(fh):
        sel = np.abs(f - fh) <= 3.0
        return spec[sel].sum()

    fund = power(f0)
    return float(10 * np.log10(sum(power(h * f0) for h in range(2, harmonics + 1)) / fund))


def transfer_flatness_db(impulse_response: np.ndarray, fs: float, band=(20.0, 20000.0)) -> float:
    spec = np.fft.rfft(impulse_response, 1 << 17)
    f = np.fft.rfftfreq(1 << 17, 1.0 / fs)
    sel = (f >= band[0]) & (f <= band[1])
    mag = 20 * np.log10(np.abs(spec[sel]))
    return float(np.max(np.abs(mag)))


def _impulse(fs: float, seconds: float = 1.0) -> np.ndarray:
    x = np.zeros(int(fs * seconds))
    x[int(0.1 * fs)] = 0.5
    return x


def _peer_ir(cmd: list[str], x: np.ndarray, fs: float, tmp: Path) -> np.ndarray:
    wavfile.write(tmp / "in.wav", int(fs), x.astype(np.float32))
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    with warnings.catch_warnings():  # sox writes a LIST chunk scipy does not parse
        warnings.simplefilter("ignore", wavfile.WavFileWarning)
        _, y = wavfile.read(tmp / "out.wav")
    y = np.asarray(y, dtype=np.float64).reshape(y.shape[0], -1)[:, 0]
    return y[: x.size] / 0.5


def _not_installed(program: str, why: str | None) -> dict:
    return {"skipped": f"{program} not installed" + (f" ({why})" if why else "")}


def sox_peer(bench: dict, fs: float, music: np.ndarray, why: str | None = None) -> dict:
    if shutil.which("sox") is None:
        return _not_installed("sox", why)
    xs = bench["sox_mcompand_crossovers_hz"]
    band = "0.005,0.1 -90,-90,0,0"
    args = ["mcompand", band]
    for f in xs:
        args += [str(f), band]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        cmd = ["sox", str(tmp / "in.wav"), "-b", "32", "-e", "floating-point", str(tmp / "out.wav"), *args]
        ir = _peer_ir(cmd, _impulse(fs), fs, tmp)
        flat = transfer_flatness_db(ir[int(0.1 * fs) :], fs)
        wavfile.write(tmp / "in.wav", int(fs), (0.5 * music).astype(np.float32))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(cmd, check=True, capture_output=True, timeout=300)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        cpu = 1000 * used / (music.size / fs)
    return {
        "crossover_flatness_db": flat,
        "cpu_ms_per_audio_s": cpu,
        "crossovers_hz": xs,
        "cpu_note": "child CPU time incl. wav io",
    }


def lsp_peer(bench: dict, fs: float, why: str | None = None) -> dict:
    if shutil.which("lv2apply") is None:
        return _not_installed("lv2apply (lilv-utils)", why)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        cmd = ["lv2apply", "-i", str(tmp / "in.wav"), "-o", str(tmp / "out.wav"), "-c", "mode", "0"]
        cmd.append(bench["lsp_plugin"])
        try:
            ir = _peer_ir(cmd, _impulse(fs, 0.6), fs, tmp)
        except (
            subprocess.CalledProcessError,
            subprocess.TimeoutExpired,
            FileNotFoundError,
            ValueError,
        ) as exc:
            return {"skipped": f"lv2apply failed: {type(exc).__name__}" + (f" ({why})" if why else "")}
    lag = int(np.argmax(np.abs(ir)))  # the plugin adds latency: align on the impulse peak
    ir = ir[max(lag - 2048, 0) :]
    return {
        "crossover_flatness_db": transfer_flatness_db(ir, fs),
        "crossovers_hz": [100, 632, 3984],
        "mode": "classic LR8 + all-pass (mode 0)",
        "cpu_ms_per_audio_s": None,
        "cpu_note": "lv2apply runs one sample per call: not a CPU figure",
    }


def dsp_figures(params: dict, quick: bool = False) -> dict:
    """The MBDP's own figures (no detector, no simulator)."""
    mp = params["mbdp"]
    bench = params["bench"]["mbdp"]
    fs = float(bench["fs_hz"])
    rng = np.random.default_rng(int(bench["seed"]))
    cfg: MbdpConfig = load_preset(mp["profile"], mp["presets_file"], fs_hz=fs)
    music = synth_music(float(bench["music_s_quick" if quick else "music_s"]), fs, rng)
    ceiling = cfg.ceiling_dbtp
    out: dict = {
        "profile": mp["profile"],
        "crossovers_hz": list(cfg.crossovers_hz),
        "keys_from": {
            "bass_gain_db": mp["profile"],
            "ultrasonic_distortion_reduction_db": mp["sensing_profile"],
        },
    }

    # crossover flatness through the streaming kernel (dynamics neutral)
    ir = MultibandProcessor(crossover_only(cfg)).process_aligned(_impulse(fs) / 0.5)
    out["crossover_flatness_db"] = transfer_flatness_db(ir[int(0.1 * fs) :], fs)

    # true-peak ceiling: music driven hot into the full processor
    hot = music * 10 ** (float(bench["drive_db"]) / 20)
    proc = MultibandProcessor(cfg)
    proc.process(hot[:480])  # compile outside the timing
    block = int(bench["block"])
    best = np.inf
    for _ in range(int(bench["cpu_repeats"])):  # CPU time of this process, best of N (shared machine)
        proc.reset()
        started = time.process_time()
        processed = np.concatenate([proc.process(hot[i : i + block]) for i in range(0, hot.size, block)])
        best = min(best, time.process_time() - started)
    out["cpu_ms_per_audio_s"] = 1000 * best / (hot.size / fs)
    # the same work in one call per second of audio: the kernel without the Python reference's
    # per-block dispatch (about 5 us a call), which firmware does not pay
    kernel = np.inf
    for _ in range(int(bench["cpu_repeats"])):
        proc.reset()
        started = time.process_time()
        for i in range(0, hot.size, int(fs)):
            proc.process(hot[i : i + int(fs)])
        kernel = min(kernel, time.process_time() - started)
    out["cpu_ms_per_audio_s_kernel"] = 1000 * kernel / (hot.size / fs)
    out["true_peak_overshoot_db"] = max(0.0, 20 * np.log10(true_peak(processed)) - ceiling)
    out["true_peak_out_dbtp"] = 20 * np.log10(true_peak(processed))
    out["true_peak_in_dbtp"] = 20 * np.log10(true_peak(hot))

    # fixed point against the real CMSIS-DSP kernels
    if cmsis_available():
        t = np.arange(int(fs)) / fs
        sweep = 0.25 * signal.chirp(t, 20, t[-1], 20000, method="logarithmic")
        errs = fixed_vs_float_db(design_crossover(cfg.crossovers_hz, fs), sweep)
        out["fixed_vs_float_db"] = max(errs.values())
        out["fixed_vs_float_per_cascade_db"] = errs
        for xs in bench["fixed_point_crossovers_hz"]:
            e = fixed_vs_float_db(design_crossover(xs, fs), sweep)
            out[f"fixed_vs_float_db_at_{'_'.join(str(int(f)) for f in xs)}"] = max(e.values())
    else:
        out["fixed_vs_float_db"] = None
        out["fixed_vs_float_note"] = "cmsisdsp not installed"

    # per preset (playback and sensing): bass gained at equal true peak (raw music at the ceiling vs
    # the MBDP's output, also at the ceiling) and ultrasonic-band distortion at equal loudness
    raw = music * 10 ** (ceiling / 20) / true_peak(music)
    lp = signal.butter(4, float(bench["bass_cutoff_hz"]), "low", fs=fs, output="sos")

    def bass_db(x):
        return 10 * np.log10(np.mean(signal.sosfilt(lp, x) ** 2))

    speaker = LoudspeakerParams()
    v_fs = volts_for_excursion(float(bench["excursion_at_full_scale_mm"]) * 1e-3, speaker)
    lufs = float(bench["loudness_lufs"])
    carrier = float(bench["carrier_hz"])
    band = tuple(bench["doppler_band_hz"])

    def ultrasonic(x):
        cone_x, _ = simulate_cone(at_loudness(x, fs, lufs) * v_fs, fs, speaker)
        return ultrasonic_distortion_dbc(cone_x, fs, carrier, speaker, band), float(
            np.max(np.abs(cone_x)) * 1e3
        )

    raw_dbc, raw_mm = ultrasonic(raw)
    by_preset = {}
    for preset in (mp["profile"], mp["sensing_profile"]):
        y = MultibandProcessor(load_preset(preset, mp["presets_file"], fs_hz=fs)).process_aligned(hot)
        dbc, mm = ultrasonic(y)
        by_preset[preset] = {
            "bass_gain_db": bass_db(y) - bass_db(raw),
            "ultrasonic_distortion_dbc": dbc,
            "ultrasonic_distortion_reduction_db": raw_dbc - dbc,
            "peak_excursion_mm": mm,
            "true_peak_dbtp": 20 * np.log10(true_peak(y)),
        }
    out["bass_gain_db"] = by_preset[mp["profile"]]["bass_gain_db"]
    out["ultrasonic_distortion_reduction_db"] = by_preset[mp["sensing_profile"]][
        "ultrasonic_distortion_reduction_db"
    ]
    out["ultrasonic_distortion_dbc_raw"] = raw_dbc
    out["peak_excursion_mm_raw"] = raw_mm
    out["by_preset"] = by_preset
    out["loudness_lufs"] = lufs

    # THD at the loudspeaker (cone acceleration) for bass tones at equal loudness
    thd = {}
    for f0 in bench["bass_tones_hz"]:
        t = np.arange(int(fs * (1.0 if quick else 2.0))) / fs
        tone = np.sin(2 * np.pi * f0 * t) * 10 ** (float(bench["drive_db"]) / 20)
        steady = slice(t.size // 2, t.size)
        for name, x in (("raw", tone), (mp["profile"], MultibandProcessor(cfg).process_aligned(tone))):
            xl = at_loudness(x[steady], fs, lufs)
            _, acc = simulate_cone(xl * v_fs, fs, speaker)
            thd[f"{name}_{int(f0)}hz"] = thd_db(acc[acc.size // 4 :], fs, f0)
    out["thd_db"] = thd

    # peers, installed first when missing (bench.peers: what `make bench-peers` does)
    setup = ensure_peers(bench["lsp_plugin"]) if bench.get("install_peers", True) else {}
    why = setup.get("error") or (None if setup else "bench.mbdp.install_peers is off: make bench-peers")
    out["peers"] = {
        "sox_mcompand": sox_peer(bench, fs, music, why),
        "lsp_mb_compressor": lsp_peer(bench, fs, why),
        "install": setup,
    }
    return out


# --- false alarms during music ----------------------------------------------------------------------


def _bundle_tuning_json(path: Path) -> dict | None:
    """payload/mbdp.json of a bundle folder or tar, None when it has none."""
    if path.is_dir():
        f = path / "payload" / "mbdp.json"
        return json.loads(f.read_text()) if f.exists() else None
    with tarfile.open(path, "r:*") as tar:
        members = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}
        if "payload/mbdp.json" not in members:
            return None
        fh = tar.extractfile(members["payload/mbdp.json"])
        return json.loads(fh.read()) if fh else None


# --- measurement ----------------------------------------------------------------------------------


def _music_sim(params: dict, b: dict) -> dict:
    sim = copy.deepcopy(params["simulate"])
    sim["eval"].update(
        kinds=["music"], combo_prob=0.0, episode_s=list(b["episode_s"]), gap_s=list(b["gap_s"])
    )
    return sim


def doppler_band_db(iq: np.ndarray, fs_hz: float, band_hz=(15.0, 900.0)) -> float:
    """Power (dBFS) of mic 0 at |f| in band_hz, the capture's mean (static paths) removed."""
    x = np.asarray(iq[0], dtype=np.complex128)
    spec = np.abs(np.fft.fft(x - x.mean())) ** 2 / x.size**2
    f = np.abs(np.fft.fftfreq(x.size, 1.0 / fs_hz))
    return float(10 * np.log10(max(spec[(f >= band_hz[0]) & (f <= band_hz[1])].sum(), 1e-30)))


def _by_volume(evaluation, volume: dict[str, float]):
    """The evaluation with every song relabelled music@VOLUME (its capture's playback volume)."""
    import dataclasses

    def vol(captures: list[tuple[str, float]], t0: float) -> float:
        at = [cid for cid, t in captures if t <= max(t0, 0.0)]
        return volume.get(at[-1] if at else captures[0][0], 0.0)

    streams = []
    for stream in evaluation.streams:
        episodes = [
            dataclasses.replace(e, event_type=f"music@{vol(stream.captures, e.t0):g}")
            if e.event_type == "music"
            else e
            for e in stream.episodes
        ]
        streams.append(dataclasses.replace(stream, episodes=episodes))
    return dataclasses.replace(evaluation, streams=streams)


def _music_figures(m: dict, rows: list[dict], evaluation, name: str = "music") -> dict[str, Any]:
    """Music figures of training.metrics' results for the songs labelled `name`."""
    music = m["false_triggers_by_type"].get(name, {"hours": 0.0, "false_triggers": 0, "per_hour": None})
    during = {  # (device, stream start) -> song intervals, for arrivals while music plays
        s.stream_id: [(e.t0, e.t1) for e in s.episodes if e.event_type == name] for s in evaluation.streams
    }
    stream_of = {cid: s.stream_id for s in evaluation.streams for cid, _ in s.captures}
    entries = [
        r for r in rows
        if r["kind"] == "entry"
        and any(a <= r["stream_t_s"] <= b for a, b in during.get(stream_of.get(r["capture_id"]), []))
    ]  # fmt: skip
    return {
        "music_hours": music["hours"],
        "music_false_alarms": music["false_triggers"],
        "music_false_alarms_per_hour": music["per_hour"],
        "music_present_fraction": m["by_event_type"].get(name, {}).get("present_fraction"),
        "music_entries": len(entries),
        "music_entry_recall": (sum(r["detected"] for r in entries) / len(entries)) if entries else None,
    }


def _evaluate(det: DeviceModel, raw: Path, truth: Path) -> dict[str, Any]:
    """Music figures of one batch: overall and per playback volume (training.metrics' rules)."""
    from training.evaluate import metrics_of, pipeline_decider, run_batch

    decider, baseband_fs_hz = pipeline_decider([det.model], det.frontend, det.detector)
    evaluation = run_batch(decider, raw, truth, baseband_fs_hz)
    metrics, rows = metrics_of(evaluation)
    records = [json.loads(line) for line in (raw / "captures.jsonl").read_text().splitlines() if line.strip()]
    volume = {str(r["capture_id"]): float(r["playback_volume"]) for r in records}
    band: dict[float, list[float]] = {}
    for r in records:
        if volume[str(r["capture_id"])] > 0:
            iq = np.load(raw / str(r["file"]), allow_pickle=False)
            band.setdefault(volume[str(r["capture_id"])], []).append(doppler_band_db(iq, float(r["fs_hz"])))

    out = _music_figures(metrics, rows, evaluation)
    empty = metrics["false_triggers_by_type"].get("empty", {"per_hour": None})
    out["empty_false_alarms_per_hour"] = empty["per_hour"]
    out["empty_present_fraction"] = metrics["by_event_type"].get("empty", {}).get("present_fraction")
    out["n_captures"] = metrics["n_captures"]
    by_volume = _by_volume(evaluation, volume)
    per_volume, volume_rows = metrics_of(by_volume)
    out["by_volume"] = {
        f"{v:g}": {
            **_music_figures(per_volume, volume_rows, by_volume, f"music@{v:g}"),
            "doppler_band_dbfs": float(np.median(band[v])),
        }
        for v in sorted(band)
    }
    return out


def music_false_alarms(params: dict, quick: bool = False) -> dict[str, Any]:
    """False alarms per hour during music with and without the MBDP (see the module docstring)."""
    from fleet.events import EVENT_INFO
    from fleet.simulate import simulate_batch
    from runtime.mbdp import bundle_tuning

    b = bench_section(params["bench"]["mbdp"]["music"], quick)
    started = time.perf_counter()
    mp = params["mbdp"]
    default_tuning = bundle_tuning(mp["profile"], mp["presets_file"])
    sim = _music_sim(params, b)
    out: dict[str, Any] = {}
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-mbdp-music-") as tmp:
        tmp = Path(tmp)
        det = bundle_model(params, b["bundles"])
        tuning = (_bundle_tuning_json(det.bundle) if det is not None else None) or default_tuning
        if det is None:  # stand-in: eval-like episodes of every type but music, labeled from truth
            no_music = [k for k in EVENT_INFO if k != "music"]
            det = train_model(params, b["train"], tmp / "train", training_preset="eval", kinds=no_music)
        det.description["mbdp_tuning"] = tuning["profile"]
        for name, played in (("without_mbdp", None), ("with_mbdp", tuning)):
            raw, truth = tmp / "raw" / name, tmp / "truth" / name
            summary = simulate_batch(
                "eval", int(b["devices"]), float(b["hours"]), int(b["seed"]), raw, truth,
                sim_params=sim, calibration=params["calibration"]["config"], mbdp=played,
            )  # fmt: skip
            runs[name] = _evaluate(det, raw, truth)
            runs[name]["chain"] = chain_figures(
                raw, truth, det.frontend, float(b["motion_band_mps"]), int(b["chain_max_captures"])
            )
            runs[name]["sim_device_seconds_per_cpu_second"] = summary["device_seconds_per_cpu_second"]
            runs[name]["music_fraction"] = summary["event_fraction"].get("music", 0.0)
    with_, without = runs["with_mbdp"], runs["without_mbdp"]
    for key in (
        "music_false_alarms_per_hour",
        "music_false_alarms",
        "music_present_fraction",
        "music_entry_recall",
    ):
        out[f"{key}_with_mbdp"] = with_[key]
        out[f"{key}_without_mbdp"] = without[key]
    out["music_hours_measured"] = without["music_hours"]  # the same plan in both batches
    out["music_hours_with_mbdp"] = with_["music_hours"]
    for key in ("empty_false_alarms_per_hour", "empty_present_fraction"):  # the gaps between songs
        out[f"music_gaps_{key}"] = {name: runs[name][key] for name in ("with_mbdp", "without_mbdp")}
    out["music_by_volume"] = {
        v: {
            f"{k}_{name}": runs[name]["by_volume"][v][k]
            for k in ("music_false_alarms", "music_present_fraction", "doppler_band_dbfs")
            for name in ("with_mbdp", "without_mbdp")
        }
        | {"music_hours": without["by_volume"][v]["music_hours"]}
        for v in without["by_volume"]
    }
    out["music_sim_device_seconds_per_cpu_second"] = {
        name: runs[name]["sim_device_seconds_per_cpu_second"] for name in runs
    }
    out["music_chain"] = {name: runs[name]["chain"] for name in ("without_mbdp", "with_mbdp")}
    out["music_detector"] = det.description
    out["music_setup"] = (
        f"{int(b['devices'])} held-out eval units x {float(b['hours']):g} h, seed {int(b['seed'])}: music "
        f"episodes {b['episode_s'][0]:g}-{b['episode_s'][1]:g} s (volume 2-10) with {b['gap_s'][0]:g}-"
        f"{b['gap_s'][1]:g} s empty gaps ({without['music_fraction']:.0%} music), every capture rendered on "
        f"every mic; MBDP: the tuning's sensing mode ({tuning.get('profile')}); "
        f"{without['n_captures']} captures per batch"
    )
    out["music_bench_seconds"] = round(time.perf_counter() - started, 1)
    return out


def run_bench(params: dict, quick: bool = False) -> dict[str, Any]:
    """dsp_figures merged with music_false_alarms'."""
    return merged_figures(params, quick, dsp_figures, music_false_alarms)
