"""Ultrasound self-calibration on the device: sweep, silent capture, carrier and level choice.

Band: an exponential sine sweep 30–47 kHz at 96 kHz (the issue's 50 kHz is above Nyquist).

1. Silent capture (nothing emitted): noise PSD over the band and the interferers in it (another
   device's tone, a pest repeller's sweep): bins that stand well above the local noise floor;
   a run of such bins whose per-frame peak wanders is a sweep, otherwise a tone.
2. Exponential sine sweep over the band; H = FFT(y⊛inv) / FFT(x⊛inv): dividing by the sweep
   convolved with its own inverse removes the sweep's band-edge ripple. Bins the silent capture
   flagged are masked (an interferer would bias |H| there by several dB).
3. Per candidate carrier: |H| and noise power in fc ± noise_halfwidth; candidates with an
   interferer within ± interferer_guard are rejected; the carrier with the largest SNR at full
   emission wins, and the emission level is the lowest (in steps) that reaches the target SNR.
4. The record (per-band gains, not one scalar: |H| varies by tens of dB near the tweeter
   roll-off) is persisted as JSON; a later quick probe re-calibrates when the response drifts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import ndimage, signal

from runtime.config import config_from_dict

RECORD_VERSION = "calibration-sweep-1"


@dataclass(frozen=True)
class DetectionNeed:
    """What the detector needs of the carrier, so the calibration's target SNR is the detector's need.

    A person at range r returns an echo echo_1m_db - 40 log10(r) - 2 air_db_per_m r dB re the carrier
    (two-way spreading and air absorption), spread over reflectivity (reflectivity_margin_db covers the
    weak ones). The front-end's features are dB re the carrier, so what the emission level changes is
    the noise under them: the noise in one Doppler bin (equivalent noise bandwidth doppler_bin_hz:
    1.5 fs / frame_len for the Hann frame) re the carrier is the calibration's carrier SNR (noise in
    fc ± noise_halfwidth_hz) less 10 log10(2 noise_halfwidth_hz / doppler_bin_hz).
    """

    echo_1m_db: float
    air_db_per_m: float
    max_range_m: float
    reflectivity_margin_db: float
    detect_snr_db: float  # echo over the noise of one Doppler bin that a detection needs
    doppler_bin_hz: float

    def echo_db(self, range_m):
        """Echo re the carrier (dB) of an average person at range_m (scalar or array)."""
        r = np.asarray(range_m, dtype=np.float64)
        return self.echo_1m_db - 40.0 * np.log10(r) - 2.0 * self.air_db_per_m * r

    def bin_snr_db(self, carrier_snr_db, noise_halfwidth_hz: float, range_m, reflectivity_db=0.0):
        """Echo over the noise of one Doppler bin, from the carrier SNR in fc ± noise_halfwidth_hz."""
        bandwidth_db = 10.0 * np.log10(2.0 * noise_halfwidth_hz / self.doppler_bin_hz)
        return carrier_snr_db + self.echo_db(range_m) + reflectivity_db + bandwidth_db

    def required_carrier_snr_db(self, noise_halfwidth_hz: float) -> float:
        """The carrier SNR at which a weak reflector at max_range_m reaches detect_snr_db in its bin."""
        at_zero = self.bin_snr_db(0.0, noise_halfwidth_hz, self.max_range_m, -self.reflectivity_margin_db)
        return float(self.detect_snr_db - at_zero)


@dataclass(frozen=True)
class CalibrationConfig:
    """params.yaml `calibration.config`, a bundle's calibration.json: every field required (every
    calibration.json has carried them all)."""

    fs_hz: float
    sweep_f1_hz: float
    sweep_f2_hz: float  # 50 kHz would exceed Nyquist (48 kHz) at 96 kHz
    sweep_s: float
    sweep_level_db: float  # drive level of the sweep, dB re DAC full scale
    silent_s: float
    analysis_nperseg: int  # STFT of the silent capture (≈ 94 Hz bins at 96 kHz)
    candidates_hz: tuple[float, ...]
    noise_halfwidth_hz: float
    interferer_guard_hz: float
    interferer_threshold_db: float  # above the local (median-filtered) noise floor
    emission_min_db: float
    emission_max_db: float
    emission_step_db: float
    margin_db: float
    drift_db: float
    # the carrier SNR the level is chosen for: the detector's need (detection) or, in calibration.json
    # files written before it existed, a number (target_snr_db); exactly one of the two is set
    target_snr_db: float | None = None
    detection: DetectionNeed | None = None

    def __post_init__(self) -> None:
        if not 0 < self.sweep_f1_hz < self.sweep_f2_hz < 0.49 * self.fs_hz:
            raise ValueError(
                f"sweep {self.sweep_f1_hz}-{self.sweep_f2_hz} Hz must lie below Nyquist of {self.fs_hz} Hz"
            )
        if (self.target_snr_db is None) == (self.detection is None):
            raise ValueError("calibration needs exactly one of target_snr_db and detection")
        inside = self.sweep_f1_hz + self.noise_halfwidth_hz, self.sweep_f2_hz - self.noise_halfwidth_hz
        if not all(inside[0] <= f <= inside[1] for f in self.candidates_hz):
            raise ValueError("every candidate carrier must lie inside the sweep band")

    @property
    def required_snr_db(self) -> float:
        """The carrier SNR (fc ± noise_halfwidth_hz) the emission level must reach."""
        if self.detection is not None:
            return self.detection.required_carrier_snr_db(self.noise_halfwidth_hz)
        return float(self.target_snr_db)

    def to_dict(self) -> dict:
        """calibration.json of a bundle: the settings plus the runtime version that reads them."""
        return {"runtime_version": RECORD_VERSION, **asdict(self), "candidates_hz": list(self.candidates_hz)}

    @classmethod
    def from_dict(cls, d: dict) -> CalibrationConfig:
        # a bundle's calibration.json also names the runtime version that reads it (to_dict)
        return config_from_dict(
            cls, {k: v for k, v in d.items() if k != "runtime_version"}, "calibration.config"
        )


@dataclass
class CalibrationRecord:
    device_id: str
    carrier_hz: float
    emission_db: float
    snr_db_at_emission: float
    band_gains_db: dict[str, float]  # candidate carrier (str Hz) → |H| in dB (mic re drive)
    band_noise_db: dict[str, float]  # candidate carrier → noise power in fc ± halfwidth (dB)
    interferers: list[dict] = field(default_factory=list)  # {kind, f_lo_hz, f_hi_hz}
    version: str = RECORD_VERSION

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> CalibrationRecord:
        if d.get("version") != RECORD_VERSION:
            raise ValueError(f"calibration record version {d.get('version')!r} is not {RECORD_VERSION!r}")
        return config_from_dict(cls, d, "calibration record")

    def capture_settings(self) -> dict:
        """What the emitter and front-end use: carrier to emit and demodulate at, and its level."""
        return {"carrier_hz": self.carrier_hz, "emission_db": self.emission_db}


# --- measurement -------------------------------------------------------------------------------


def exponential_sweep(cfg: CalibrationConfig) -> tuple[np.ndarray, np.ndarray]:
    """(sweep [n], inverse filter [n]) of a Farina exponential sine sweep, unit amplitude."""
    n = round(cfg.sweep_s * cfg.fs_hz)
    t = np.arange(n) / cfg.fs_hz
    w1, w2 = 2 * np.pi * cfg.sweep_f1_hz, 2 * np.pi * cfg.sweep_f2_hz
    rate = np.log(w2 / w1)
    sweep = np.sin(w1 * cfg.sweep_s / rate * (np.exp(t * rate / cfg.sweep_s) - 1.0))
    fade = signal.windows.tukey(n, 0.05)
    sweep *= fade
    # inverse: time reversal with an amplitude envelope falling 6 dB/octave of instantaneous frequency
    inverse = sweep[::-1] * np.exp(-t * rate / cfg.sweep_s)
    return sweep, inverse


def estimate_response(recorded: np.ndarray, sweep: np.ndarray, inverse: np.ndarray, fs_hz: float):
    """(freqs [F], H [F] complex): H = FFT(y⊛inv) / FFT(x⊛inv) with a common FFT length."""
    n = recorded.size + inverse.size - 1
    n_fft = 1 << int(np.ceil(np.log2(n)))
    inv_f = np.fft.rfft(inverse, n_fft)
    y_ir = np.fft.rfft(recorded, n_fft) * inv_f
    x_ir = np.fft.rfft(sweep, n_fft) * inv_f
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(np.abs(x_ir) > 1e-12 * np.abs(x_ir).max(), y_ir / x_ir, 0.0)
    return np.fft.rfftfreq(n_fft, 1.0 / fs_hz), h


@dataclass(frozen=True)
class NoiseAnalysis:
    freqs_hz: np.ndarray  # [F]
    psd: np.ndarray  # [F] one-sided power density (mean over frames), units²/Hz
    interferers: list[dict]  # {kind: tone|sweep, f_lo_hz, f_hi_hz}


def analyse_silence(silent: np.ndarray, cfg: CalibrationConfig) -> NoiseAnalysis:
    """Noise PSD and the interferers present in a capture made with the emitter off."""
    # Kaiser β=14: sidelobes near −100 dB, so a loud tone does not leak over the whole band
    window = ("kaiser", 14.0)
    f, _, z = signal.stft(silent, fs=cfg.fs_hz, nperseg=cfg.analysis_nperseg, window=window, boundary=None)
    win = signal.get_window(window, cfg.analysis_nperseg)
    power = np.abs(z) ** 2 * (np.sum(win) ** 2) / (cfg.fs_hz * np.sum(win**2))  # [F, T] density
    power[1:-1] *= 2.0  # one-sided
    psd = power.mean(axis=1)
    floor = ndimage.median_filter(np.median(power, axis=1), size=31, mode="nearest")  # [F]
    hot = 10 * np.log10(power / floor[:, None] + 1e-30) > cfg.interferer_threshold_db  # [F, T]
    band = (f >= cfg.sweep_f1_hz - 2000) & (f <= min(cfg.sweep_f2_hz + 2000, 0.49 * cfg.fs_hz))
    hot &= band[:, None]
    # one interferer leaves a few hot runs a bin or two apart (main lobe, ripple): close small gaps
    occupied = ndimage.binary_closing(hot.any(axis=1), structure=np.ones(9, dtype=bool)) | hot.any(axis=1)
    labels, n_runs = ndimage.label(occupied)
    df = f[1] - f[0]
    interferers = []
    for run in range(1, n_runs + 1):
        bins = np.flatnonzero(labels == run)
        active = hot[bins].any(axis=0)  # [T]
        if active.sum() < 2:  # a single hot cell is a noise outlier (p ≈ 2e-5 per cell), not a source
            continue
        peak_bins = np.array([bins[np.argmax(power[bins, t])] for t in np.flatnonzero(active)])
        moving = peak_bins.max() - peak_bins.min() > 2
        interferers.append(
            {
                "kind": "sweep" if moving else "tone",
                "f_lo_hz": float(f[bins[0]] - df),
                "f_hi_hz": float(f[bins[-1]] + df),
            }
        )
    return NoiseAnalysis(freqs_hz=f, psd=psd, interferers=interferers)


def _band(freqs: np.ndarray, fc: float, half: float) -> np.ndarray:
    return (freqs >= fc - half) & (freqs <= fc + half)


def masked_band_gain_db(
    freqs: np.ndarray, h: np.ndarray, fc: float, half: float, interferers: list[dict]
) -> float:
    """Median |H|² (dB) over fc ± half, leaving out bins an interferer occupies."""
    sel = _band(freqs, fc, half)
    clean = sel.copy()
    for itf in interferers:
        clean &= ~((freqs >= itf["f_lo_hz"]) & (freqs <= itf["f_hi_hz"]))
    use = clean if clean.any() else sel
    return float(10 * np.log10(np.median(np.abs(h[use]) ** 2) + 1e-30))


def band_noise_db(noise: NoiseAnalysis, fc: float, half: float) -> float:
    """Noise power (dB) integrated over fc ± half."""
    sel = _band(noise.freqs_hz, fc, half)
    df = noise.freqs_hz[1] - noise.freqs_hz[0]
    return float(10 * np.log10(np.sum(noise.psd[sel]) * df + 1e-30))


def carrier_blocked(fc: float, interferers: list[dict], guard_hz: float) -> bool:
    return any(itf["f_lo_hz"] - guard_hz <= fc <= itf["f_hi_hz"] + guard_hz for itf in interferers)


def choose_carrier(
    freqs: np.ndarray, h: np.ndarray, noise: NoiseAnalysis, cfg: CalibrationConfig, device_id: str = ""
) -> CalibrationRecord:
    """Carrier with the most SNR at full emission away from interferers, at the lowest sufficient level."""
    gains, noises, snr_max = {}, {}, {}
    for fc in cfg.candidates_hz:
        key = f"{fc:g}"
        gains[key] = masked_band_gain_db(freqs, h, fc, cfg.noise_halfwidth_hz, noise.interferers)
        noises[key] = band_noise_db(noise, fc, cfg.noise_halfwidth_hz)
        if not carrier_blocked(fc, noise.interferers, cfg.interferer_guard_hz):
            # a sine of drive amplitude 10^(E/20) has power 10^(E/10)/2 at the mic times |H|²
            snr_max[key] = cfg.emission_max_db - 3.01 + gains[key] - noises[key]
    if not snr_max:
        raise ValueError("every candidate carrier is blocked by an interferer")
    best = max(snr_max, key=snr_max.get)
    required = cfg.required_snr_db + cfg.margin_db - (snr_max[best] - cfg.emission_max_db)
    step = cfg.emission_step_db
    emission = float(np.clip(np.ceil(required / step) * step, cfg.emission_min_db, cfg.emission_max_db))
    return CalibrationRecord(
        device_id=device_id,
        carrier_hz=float(best),
        emission_db=emission,
        snr_db_at_emission=float(snr_max[best] - cfg.emission_max_db + emission),
        band_gains_db=gains,
        band_noise_db=noises,
        interferers=noise.interferers,
    )


def calibrate(
    silent: np.ndarray, recorded_sweep: np.ndarray, cfg: CalibrationConfig, device_id: str = ""
) -> CalibrationRecord:
    """Full calibration from the two captures (the sweep was played at cfg.sweep_level_db)."""
    noise = analyse_silence(silent, cfg)
    sweep, inverse = exponential_sweep(cfg)
    freqs, h = estimate_response(recorded_sweep, sweep * 10 ** (cfg.sweep_level_db / 20), inverse, cfg.fs_hz)
    return choose_carrier(freqs, h, noise, cfg, device_id)


def drift_check(
    record: CalibrationRecord, freqs: np.ndarray, h: np.ndarray, noise: NoiseAnalysis, cfg: CalibrationConfig
) -> dict:
    """Compare a fresh probe with the record: re-calibrate on gain drift or an interferer near the carrier."""
    fc = record.carrier_hz
    now = masked_band_gain_db(freqs, h, fc, cfg.noise_halfwidth_hz, noise.interferers)
    drift = now - record.band_gains_db[f"{fc:g}"]
    blocked = carrier_blocked(fc, noise.interferers, cfg.interferer_guard_hz)
    reasons = []
    if abs(drift) > cfg.drift_db:
        reasons.append(f"gain at carrier drifted {drift:+.1f} dB")
    if blocked:
        reasons.append("interferer near the carrier")
    return {"recalibrate": bool(reasons), "drift_db": float(drift), "reasons": reasons}
