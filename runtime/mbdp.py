"""Multiband dynamics processor (MBDP) for playback: LR4 crossover cascade, per-band dynamics,
full-band lookahead true-peak limiter. Block-based streaming; state is carried across blocks.

Signal flow for N bands and crossovers f1 < f2 < ... < f(N-1):

    x ─ split f1 ─ LP ─────────────────────────── AP(f2)…AP(fN-1) ─ comp/lim ─┐
                └ HP ─ split f2 ─ LP ───────────── AP(f3)…        ─ comp/lim ─┤
                                └ HP ─ … ─ HP ─────────────────────── comp/lim ─┴─ Σ ─ TP limiter ─ y

Each split is LR4 (two identical Butterworth biquads per branch). LP + HP of an LR4 pair is a
2nd-order all-pass, so each lower band gets one all-pass biquad per later split: all bands then
share the same phase and sum to a pure all-pass (flat magnitude).

Dynamics run at a control rate (`control_interval` samples): the band's peak over the interval
goes through a soft-knee gain computer; the dB gain is smoothed with one-pole attack/release whose
time constants are the t63 of the dB gain; the linear gain is ramped across the next interval.
The per-band limiter is the same computer with ratio ∞ after compressor and makeup.
The full-band limiter estimates the 4x-oversampled true peak, takes the gain it needs, releases
it with a one-pole, holds the minimum over the lookahead window and smooths it with a boxcar of
the same length: the ramp reaches the needed gain before the peak leaves the delay line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import signal

from runtime.config import config_from_dict
from runtime.crossover import lr4_sections

try:  # numba makes the per-sample kernel firmware-speed; without it the same code runs in Python
    from numba import njit
except ImportError:  # pragma: no cover - exercised only where numba is absent

    def njit(*args, **kwargs):
        if args and callable(args[0]):
            return args[0]
        return lambda f: f


PRESETS_FILE = Path(__file__).with_name("mbdp_presets.json")
TRUE_PEAK_OVERSAMPLE = 4
MBDP_RUNTIME_VERSION = "mbdp-stream-2"  # the bundle's mbdp.json format and this processor
MODES = ("playback", "sensing")  # sensing: the low band held down while presence sensing runs


@dataclass(frozen=True)
class BandDynamics:
    threshold_db: float = -18.0
    ratio: float = 4.0
    knee_db: float = 6.0
    attack_ms: float = 5.0
    release_ms: float = 200.0
    makeup_db: float = 0.0
    limit_db: float = 0.0
    limit_attack_ms: float = 0.5
    limit_release_ms: float = 50.0

    @classmethod
    def from_dict(cls, d: dict) -> BandDynamics:
        return config_from_dict(cls, d, "mbdp band")


@dataclass(frozen=True)
class MbdpConfig:
    fs_hz: float = 48000.0
    crossovers_hz: tuple[float, ...] = (120.0, 800.0, 4000.0)
    bands: tuple[BandDynamics, ...] = field(default_factory=lambda: tuple(BandDynamics() for _ in range(4)))
    ceiling_dbtp: float = -1.0
    lookahead_ms: float = 1.5
    limiter_release_ms: float = 60.0
    control_interval: int = 16
    true_peak_taps: int = 24  # taps per polyphase branch of the true-peak interpolator

    def __post_init__(self) -> None:
        xs = list(self.crossovers_hz)
        if xs != sorted(xs) or len(set(xs)) != len(xs):
            raise ValueError(f"crossovers must be strictly increasing, got {xs}")
        if any(not 0 < f < self.fs_hz / 2 for f in xs):
            raise ValueError(f"crossovers {xs} must lie between 0 and Nyquist")
        if len(self.bands) != len(xs) + 1:
            raise ValueError(f"{len(xs)} crossovers make {len(xs) + 1} bands, got {len(self.bands)}")
        if any(b.ratio < 1 for b in self.bands):
            raise ValueError("compressor ratio must be >= 1")
        if self.control_interval < 1 or self.lookahead_ms <= 0:
            raise ValueError("control_interval must be >= 1 and lookahead_ms > 0")

    @classmethod
    def from_dict(cls, d: dict) -> MbdpConfig:
        """A preset or an mbdp.json mode (to_dict): every key is a field (runtime.config's policy)."""
        return config_from_dict(cls, d, "mbdp")

    def to_dict(self) -> dict:
        return {
            "fs_hz": self.fs_hz,
            "crossovers_hz": list(self.crossovers_hz),
            "bands": [dict(vars(b)) for b in self.bands],
            "ceiling_dbtp": self.ceiling_dbtp,
            "lookahead_ms": self.lookahead_ms,
            "limiter_release_ms": self.limiter_release_ms,
            "control_interval": self.control_interval,
            "true_peak_taps": self.true_peak_taps,
        }


def load_preset(
    profile: str, presets_file: str | Path = PRESETS_FILE, fs_hz: float | None = None
) -> MbdpConfig:
    """Tuning preset of a device profile from the presets data file."""
    presets = json.loads(Path(presets_file).read_text(encoding="utf-8"))
    presets.pop("_doc", None)
    if profile not in presets:
        raise KeyError(f"no MBDP preset for profile {profile!r} (known: {', '.join(sorted(presets))})")
    d = dict(presets[profile])
    if fs_hz is not None:
        d["fs_hz"] = fs_hz
    return MbdpConfig.from_dict(d)


def bundle_tuning(profile: str, presets_file: str | Path = PRESETS_FILE) -> dict:
    """mbdp.json of a bundle for a device profile: its playback and sensing presets.

    Both modes run on the same crossover biquads (one fixed-point export serves both); only the
    band dynamics differ, so a preset pair with different crossovers is refused.
    """
    modes = {
        "playback": load_preset(profile, presets_file),
        "sensing": load_preset(f"{profile}_sensing", presets_file),
    }
    xs = {mode: (cfg.fs_hz, cfg.crossovers_hz) for mode, cfg in modes.items()}
    if len(set(xs.values())) != 1:
        raise ValueError(f"MBDP presets of {profile!r} must share fs and crossovers, got {xs}")
    return {
        "runtime_version": MBDP_RUNTIME_VERSION,
        "profile": profile,
        "modes": {mode: cfg.to_dict() for mode, cfg in modes.items()},
    }


def tuning_configs(tuning: dict) -> dict[str, MbdpConfig]:
    """Parse a bundle's mbdp.json into one MbdpConfig per mode; ValueError names what is wrong."""
    if not isinstance(tuning, dict) or tuning.get("runtime_version") != MBDP_RUNTIME_VERSION:
        got = tuning.get("runtime_version") if isinstance(tuning, dict) else type(tuning).__name__
        raise ValueError(f"mbdp.json runtime_version {got!r} is not {MBDP_RUNTIME_VERSION!r}")
    modes = tuning.get("modes")
    if not isinstance(modes, dict) or set(modes) != set(MODES):
        raise ValueError(f"mbdp.json modes must be exactly {list(MODES)}")
    configs = {}
    for mode in MODES:
        try:
            configs[mode] = MbdpConfig.from_dict(modes[mode])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"mbdp.json modes.{mode}: {exc}") from exc
    return configs


# --- crossover design --------------------------------------------------------------------------


def allpass_section(fc_hz: float, fs_hz: float) -> np.ndarray:
    """[1, 6] sos of the 2nd-order all-pass equal to LR4 LP + HP at fc (same poles, mirrored zeros)."""
    lp = lr4_sections(fc_hz, fs_hz)["lowpass"][0]  # Butterworth biquad: a = lp[3:]
    a = lp[3:] / lp[3]
    return np.concatenate([a[::-1], a])[None, :]


@dataclass(frozen=True)
class CrossoverDesign:
    """Per split: LR4 sos; per band: the chain of sos a band passes through (splits + all-passes)."""

    fs_hz: float
    crossovers_hz: tuple[float, ...]
    lowpass: list[np.ndarray]  # K × [2, 6]
    highpass: list[np.ndarray]  # K × [2, 6]
    allpass: list[list[np.ndarray]]  # per band: [1, 6] sections for each later split

    @property
    def n_bands(self) -> int:
        return len(self.crossovers_hz) + 1

    def band_chain(self, band: int) -> np.ndarray:
        """[S, 6] all sections from input to band output (for analysis and export)."""
        parts = [self.highpass[k] for k in range(band)]
        if band < len(self.crossovers_hz):
            parts.append(self.lowpass[band])
        parts += self.allpass[band]
        return np.vstack(parts) if parts else np.array([[1.0, 0, 0, 1.0, 0, 0]])


def design_crossover(crossovers_hz, fs_hz: float) -> CrossoverDesign:
    xs = tuple(float(f) for f in crossovers_hz)
    secs = [lr4_sections(f, fs_hz) for f in xs]
    allpass = [[allpass_section(xs[j], fs_hz) for j in range(b + 1, len(xs))] for b in range(len(xs) + 1)]
    return CrossoverDesign(
        fs_hz=float(fs_hz),
        crossovers_hz=xs,
        lowpass=[s["lowpass"] for s in secs],
        highpass=[s["highpass"] for s in secs],
        allpass=allpass,
    )


def band_responses(design: CrossoverDesign, freqs_hz: np.ndarray) -> np.ndarray:
    """Complex response of every band at freqs_hz: [n_bands, F]."""
    return np.stack(
        [
            signal.sosfreqz(design.band_chain(b), worN=freqs_hz, fs=design.fs_hz)[1]
            for b in range(design.n_bands)
        ]
    )


def true_peak_interpolator(taps_per_phase: int, oversample: int = TRUE_PEAK_OVERSAMPLE) -> np.ndarray:
    """[oversample, taps] polyphase windowed-sinc interpolator (phase 0 reproduces the sample)."""
    n = taps_per_phase * oversample
    h = signal.firwin(n + 1, 1.0 / oversample, window=("kaiser", 8.0)) * oversample  # [n + 1]
    h = h[:n]
    return np.ascontiguousarray(h.reshape(taps_per_phase, oversample).T[:, ::-1])


# --- streaming kernel --------------------------------------------------------------------------


@njit(cache=True, fastmath=True)
def _biquad(coef, z, i, x):
    # DF2T, scipy sign convention: y = b0 x + z0; z0 = b1 x - a1 y + z1; z1 = b2 x - a2 y
    y = coef[i, 0] * x + z[i, 0]
    z[i, 0] = coef[i, 1] * x - coef[i, 3] * y + z[i, 1]
    z[i, 1] = coef[i, 2] * x - coef[i, 4] * y
    return y


@njit(cache=True, fastmath=True)
def _gain_computer(level_db, thr, ratio_inv, knee):
    over = level_db - thr
    if 2.0 * over < -knee:
        return 0.0
    if knee > 0.0 and 2.0 * abs(over) <= knee:
        return (ratio_inv - 1.0) * (over + knee / 2.0) ** 2 / (2.0 * knee)
    return (ratio_inv - 1.0) * over


@njit(cache=True, fastmath=True)
def _process_kernel(
    x,
    out,
    coef,
    z,
    lp_idx,
    hp_idx,
    ap_ptr,
    ap_list,
    bp,
    bstate,
    interval,
    tp_h,
    tp_hist,
    delay,
    lim_state,
    limp,
    ring_min,
    ring_idx,
    ring_avg,
    istate,
):
    # bp [B, 9]: thr, ratio_inv, knee, att, rel, makeup, lim_db, lim_att, lim_rel (coefs at control rate)
    # bstate [B, 5]: peak, comp_gs_db, lim_gs_db, gain_prev, gain_cur
    # istate: [ctrl_pos, write_pos, deque_head, deque_tail, phase-0 centre tap]
    # lim_state: [release_gain, running_sum, prev_tp]; limp: [ceiling, release coef]
    n_bands = bp.shape[0]
    n_split = lp_idx.shape[0]
    n_taps = tp_h.shape[1]
    look = ring_min.shape[0]
    n_delay = delay.shape[0]
    bands = np.empty(n_bands)
    for n in range(x.shape[0]):
        rest = x[n]
        for k in range(n_split):
            lo = _biquad(coef, z, lp_idx[k, 1], _biquad(coef, z, lp_idx[k, 0], rest))
            rest = _biquad(coef, z, hp_idx[k, 1], _biquad(coef, z, hp_idx[k, 0], rest))
            bands[k] = lo
        bands[n_split] = rest
        pos = istate[0]
        frac = (pos + 1.0) / interval
        total = 0.0
        for b in range(n_bands):
            v = bands[b]
            for a in range(ap_ptr[b], ap_ptr[b + 1]):
                v = _biquad(coef, z, ap_list[a], v)
            if abs(v) > bstate[b, 0]:
                bstate[b, 0] = abs(v)
            total += v * (bstate[b, 3] + (bstate[b, 4] - bstate[b, 3]) * frac)
        if pos + 1 == interval:  # control-rate update from the interval's peak
            for b in range(n_bands):
                level = 20.0 * np.log10(max(bstate[b, 0], 1e-12))
                gc = _gain_computer(level, bp[b, 0], bp[b, 1], bp[b, 2])
                c = bp[b, 3] if gc < bstate[b, 1] else bp[b, 4]
                bstate[b, 1] = c * bstate[b, 1] + (1.0 - c) * gc
                post = level + bstate[b, 1] + bp[b, 5]
                gl = min(0.0, bp[b, 6] - post)
                c = bp[b, 7] if gl < bstate[b, 2] else bp[b, 8]
                bstate[b, 2] = c * bstate[b, 2] + (1.0 - c) * gl
                bstate[b, 3] = bstate[b, 4]
                bstate[b, 4] = 10.0 ** ((bstate[b, 1] + bp[b, 5] + bstate[b, 2]) / 20.0)
                bstate[b, 0] = 0.0
            istate[0] = 0
        else:
            istate[0] = pos + 1
        # full-band lookahead true-peak limiter
        w = istate[1]
        h0 = w % n_taps
        tp_hist[h0] = total  # doubled ring: the window is always tp_hist[h0 + 1 : h0 + 1 + n_taps]
        tp_hist[h0 + n_taps] = total
        tp = abs(tp_hist[h0 + 1 + istate[4]])  # phase 0 is the (delayed) sample itself
        acc1 = 0.0
        acc2 = 0.0
        acc3 = 0.0
        for t in range(n_taps):  # the three fractional phases of the 4x interpolator
            v = tp_hist[h0 + 1 + t]
            acc1 += tp_h[1, t] * v
            acc2 += tp_h[2, t] * v
            acc3 += tp_h[3, t] * v
        tp = max(tp, abs(acc1), abs(acc2), abs(acc3))
        peak = max(tp, lim_state[2])  # inter-sample peaks sit between this and the previous sample
        lim_state[2] = tp
        need = 1.0 if peak <= limp[0] else limp[0] / peak
        r = lim_state[0]
        r = need if need < r else r + (1.0 - limp[1]) * (need - r)
        lim_state[0] = r
        # sliding minimum over the last `look` values: monotonic deque in a ring (istate[2:4])
        head, tail = istate[2], istate[3]
        if tail > head and ring_idx[head % look] <= w - look:
            head += 1
        while tail > head and ring_min[(tail - 1) % look] >= r:
            tail -= 1
        ring_min[tail % look] = r
        ring_idx[tail % look] = w
        tail += 1
        istate[2], istate[3] = head, tail
        hold = ring_min[head % look]
        lim_state[1] += hold - ring_avg[w % look]
        ring_avg[w % look] = hold
        gain = lim_state[1] / look
        delay[w % n_delay] = total
        out[n] = gain * delay[(w + 1) % n_delay]
        istate[1] = w + 1


class MultibandProcessor:
    """Streaming MBDP. `process(block)` takes any block size; output is delayed by `latency` samples."""

    def __init__(self, cfg: MbdpConfig) -> None:
        self.cfg = cfg
        self.design = design_crossover(cfg.crossovers_hz, cfg.fs_hz)
        sections: list[np.ndarray] = []

        def add(sos: np.ndarray) -> list[int]:
            start = len(sections)
            sections.extend(sos)
            return list(range(start, start + len(sos)))

        k = len(cfg.crossovers_hz)
        self._lp = np.array([add(self.design.lowpass[i]) for i in range(k)], dtype=np.int64).reshape(k, 2)
        self._hp = np.array([add(self.design.highpass[i]) for i in range(k)], dtype=np.int64).reshape(k, 2)
        ap_list, ap_ptr = [], [0]
        for b in range(self.design.n_bands):
            for sec in self.design.allpass[b]:
                ap_list += add(sec)
            ap_ptr.append(len(ap_list))
        self._ap_list = np.array(ap_list, dtype=np.int64)
        self._ap_ptr = np.array(ap_ptr, dtype=np.int64)
        sos = np.array(sections, dtype=np.float64).reshape(-1, 6)  # [nbq, 6]
        self._coef = np.ascontiguousarray(sos[:, [0, 1, 2, 4, 5]] / sos[:, 3:4])
        ctrl_fs = cfg.fs_hz / cfg.control_interval

        def coef(ms: float) -> float:
            return float(np.exp(-1.0 / (max(ms, 1e-6) * 1e-3 * ctrl_fs)))

        self._bp = np.array(
            [
                [
                    b.threshold_db,
                    1.0 / b.ratio,
                    b.knee_db,
                    coef(b.attack_ms),
                    coef(b.release_ms),
                    b.makeup_db,
                    b.limit_db,
                    coef(b.limit_attack_ms),
                    coef(b.limit_release_ms),
                ]
                for b in cfg.bands
            ]
        )
        self._tp_h = true_peak_interpolator(cfg.true_peak_taps)
        self.lookahead = max(1, round(cfg.lookahead_ms * 1e-3 * cfg.fs_hz))
        self._tp_centre = int(np.argmax(np.abs(self._tp_h[0])))
        self.tp_delay = cfg.true_peak_taps - 1 - self._tp_centre
        self.latency = self.tp_delay + self.lookahead - 1
        self._limp = np.array(
            [10 ** (cfg.ceiling_dbtp / 20), np.exp(-1.0 / (cfg.limiter_release_ms * 1e-3 * cfg.fs_hz))]
        )
        self.reset()

    @property
    def n_biquads(self) -> int:
        return int(self._coef.shape[0])

    def reset(self) -> None:
        nb = self.design.n_bands
        self._z = np.zeros((self.n_biquads, 2))
        self._bstate = np.zeros((nb, 5))
        self._bstate[:, 3:] = 10 ** (self._bp[:, 5:6] / 20)
        self._tp_hist = np.zeros(2 * self.cfg.true_peak_taps)
        self._delay = np.zeros(self.latency + 1)
        self._lim_state = np.array([1.0, float(self.lookahead), 0.0])
        self._ring_min = np.ones(self.lookahead)
        self._ring_idx = np.zeros(self.lookahead, dtype=np.int64)
        self._ring_avg = np.ones(self.lookahead)
        self._istate = np.array([0, 0, 0, 0, self._tp_centre], dtype=np.int64)

    def process(self, block: np.ndarray) -> np.ndarray:
        """block [n] float → [n] float64, `latency` samples behind the input."""
        x = np.ascontiguousarray(np.asarray(block, dtype=np.float64).reshape(-1))
        if not np.all(np.isfinite(x)):
            raise ValueError("MBDP input must be finite")
        out = np.empty_like(x)
        _process_kernel(
            x, out, self._coef, self._z, self._lp, self._hp, self._ap_ptr, self._ap_list, self._bp,
            self._bstate, self.cfg.control_interval, self._tp_h, self._tp_hist, self._delay,
            self._lim_state, self._limp, self._ring_min, self._ring_idx, self._ring_avg, self._istate,
        )  # fmt: skip
        return out

    def process_aligned(self, x: np.ndarray, block: int = 512) -> np.ndarray:
        """Whole signal in blocks, latency removed (output[i] corresponds to input[i])."""
        x = np.asarray(x, dtype=np.float64)
        padded = np.concatenate([x, np.zeros(self.latency)])
        out = np.concatenate([self.process(padded[i : i + block]) for i in range(0, padded.size, block)])
        return out[self.latency :]


def crossover_only(cfg: MbdpConfig) -> MbdpConfig:
    """Same crossover, dynamics neutral (no compression, no band limit, ceiling out of reach)."""
    neutral = BandDynamics(threshold_db=200.0, ratio=1.0, knee_db=0.0, makeup_db=0.0, limit_db=200.0)
    return MbdpConfig(
        fs_hz=cfg.fs_hz,
        crossovers_hz=cfg.crossovers_hz,
        bands=tuple(neutral for _ in cfg.bands),
        ceiling_dbtp=200.0,
        lookahead_ms=cfg.lookahead_ms,
        limiter_release_ms=cfg.limiter_release_ms,
        control_interval=cfg.control_interval,
        true_peak_taps=cfg.true_peak_taps,
    )


def true_peak(x: np.ndarray, oversample: int = TRUE_PEAK_OVERSAMPLE) -> float:
    """Peak of |x| after oversampling (scipy resample_poly), the measurement reference."""
    return float(np.max(np.abs(signal.resample_poly(np.asarray(x, dtype=np.float64), oversample, 1))))


def static_curve_db(level_db: np.ndarray, band: BandDynamics) -> np.ndarray:
    """Compressor output level for a steady input level (gain computer + makeup), in dB."""
    return np.array(
        [
            lv + _gain_computer(float(lv), band.threshold_db, 1.0 / band.ratio, band.knee_db) + band.makeup_db
            for lv in np.atleast_1d(level_db)
        ]
    )
