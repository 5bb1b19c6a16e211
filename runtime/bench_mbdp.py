"""MBDP benchmark (`flywheel bench mbdp`): crossover flatness, true-peak ceiling, CPU, fixed point,
bass gain at equal peak, loudspeaker THD and ultrasonic-band distortion, with peers side by side.

Two presets per profile trade off: the playback preset (`mbdp.profile`) raises bass at equal peak,
the sensing preset (`mbdp.sensing_profile`) holds the low band down while presence sensing runs;
`bass_gain_db` comes from the first, `ultrasonic_distortion_reduction_db` from the second, and
`by_preset` gives both figures for both.

Signals: a synthetic bass-heavy music clip (kick, bass line, chords, hi-hat noise), bass tones,
an impulse (crossover transfer) and a log sweep at 0.25 FS (fixed point). Peers run as external
programs where installed: sox `mcompand` and the LSP multiband compressor through lv2apply, both
with an identity transfer so only their crossovers show (REFERENCE.md recipes).

The detector's false alarms per hour during music with and without the MBDP need the fleet simulator
and a trained detector, which runtime/ may not import: flows/bench_mbdp.py measures them and merges
them with these figures (`flywheel bench mbdp` runs that wrapper).
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import signal
from scipy.io import wavfile

from runtime.fixed_point import cmsis_available, fixed_vs_float_db
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


def sox_peer(bench: dict, fs: float, music: np.ndarray) -> dict:
    if shutil.which("sox") is None:
        return {"skipped": "sox not installed"}
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


def lsp_peer(bench: dict, fs: float) -> dict:
    if shutil.which("lv2apply") is None:
        return {"skipped": "lv2apply (lilv-utils) not installed"}
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
            return {"skipped": f"lv2apply failed: {type(exc).__name__}"}
    lag = int(np.argmax(np.abs(ir)))  # the plugin adds latency: align on the impulse peak
    ir = ir[max(lag - 2048, 0) :]
    return {
        "crossover_flatness_db": transfer_flatness_db(ir, fs),
        "crossovers_hz": [100, 632, 3984],
        "mode": "classic LR8 + all-pass (mode 0)",
        "cpu_ms_per_audio_s": None,
        "cpu_note": "lv2apply runs one sample per call: not a CPU figure",
    }


def run_bench(params: dict, quick: bool = False) -> dict:
    mp = params["mbdp"]
    bench = mp["bench"]
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

    # peers
    out["peers"] = {"sox_mcompand": sox_peer(bench, fs, music), "lsp_mb_compressor": lsp_peer(bench, fs)}
    out["not_measured"] = [
        "false alarms per hour during music with/without MBDP (needs the fleet simulator and a detector: "
        "flows/bench_mbdp.py measures it, `flywheel bench mbdp`)"
    ]
    return out
