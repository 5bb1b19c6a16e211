"""Event generators: each returns an Event whose draw(t, ctx) renders its baseband contribution.

Presence (major: walk_in, walk_out, walk_through, pacing, sit_stand; minor: typing, page_turn, reach,
hand_gesture, shift_in_chair, and `still`: a person sitting or lying still, reading, watching TV or
asleep, whose only motion is breathing) are people made of point scatterers. An occupancy session
starts with walk_in (from the door) and ends with walk_out (back through the door); walk_through is a
visit of its own (in at the door, across, out). Non-presence nuisances are
fans (rotating blades → micro-Doppler at the blade-pass rate), curtains, HVAC (slow random phase
on the room's static paths), pets, robot vacuums, another device's tone, pest-repeller sweeps,
clatter (impulsive) and music (loudspeaker nonlinearity through the direct path).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fleet.motion import BODY_GAIN, Path, SmoothNoise, fade, pulse_train, walker
from fleet.rooms import Room
from fleet.scatterers import (
    Acoustics,
    coarse_times,
    expj_cycles,
    render_scatterers,
    steering,
    upsample,
)
from runtime.loudspeaker import LoudspeakerParams, bl_ratio, carrier_phase_cycles, quasi_static_excursion
from runtime.mbdp import MbdpConfig, MultibandProcessor

# event_type → (is_presence, motion_class)
EVENT_INFO: dict[str, tuple[bool, str]] = {
    "walk_in": (True, "major"),
    "walk_out": (True, "major"),
    "walk_through": (True, "major"),
    "pacing": (True, "major"),
    "sit_stand": (True, "major"),
    "typing": (True, "minor"),
    "page_turn": (True, "minor"),
    "reach": (True, "minor"),
    "hand_gesture": (True, "minor"),
    "shift_in_chair": (True, "minor"),
    "still": (True, "minor"),
    "ceiling_fan": (False, "none"),
    "pedestal_fan": (False, "none"),
    "curtain": (False, "none"),
    "hvac": (False, "none"),
    "pet": (False, "none"),
    "robot_vacuum": (False, "none"),
    "other_device": (False, "none"),
    "pest_repeller": (False, "none"),
    "clatter": (False, "none"),
    "music": (False, "none"),
}
MAJOR = [k for k, v in EVENT_INFO.items() if v[1] == "major"]
MINOR = [k for k, v in EVENT_INFO.items() if v[1] == "minor"]
RARE = [k for k, v in EVENT_INFO.items() if not v[0]]


@dataclass(frozen=True)
class RenderCtx:
    ac: Acoustics
    mics: np.ndarray  # [M'] which microphones to render
    direct: np.ndarray  # [M'] complex static direct path
    reflections: np.ndarray  # [K, M'] complex static room paths


Draw = Callable[[np.ndarray, RenderCtx], np.ndarray]


@dataclass(frozen=True)
class Event:
    event_type: str
    t0: float  # absolute device seconds
    t1: float
    draw: Draw  # t [n] (inside [t0, t1]) → [M', n] complex64
    volume: float = 0.0  # playback volume (music only)
    meta: dict = field(default_factory=dict)  # generator parameters worth knowing (e.g. blade_pass_hz)

    @property
    def is_presence(self) -> bool:
        return EVENT_INFO[self.event_type][0]

    @property
    def motion_class(self) -> str:
        return EVENT_INFO[self.event_type][1]


def _scatter(
    pos_fn: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], t0: float, t1: float, decim: int = 4
) -> Draw:
    """Draw for scatterers from pos_fn(t) → (pos [S, n, 3], gain [S] or [S, n]), faded in/out.

    Trajectories are evaluated every `decim` samples (they are smooth on that scale: the path-length
    interpolation error is ≈ a·(decim/fs)²/8, 0.1 rad of phase for a pedestal fan's blade).
    """

    def draw(t: np.ndarray, ctx: RenderCtx) -> np.ndarray:
        tc = coarse_times(t, decim, ctx.ac.fs)
        pos, gain = pos_fn(tc)
        g = np.asarray(gain, dtype=np.float64).reshape(pos.shape[0], -1) * fade(tc, t0, t1)
        return render_scatterers(pos, g, ctx.ac, ctx.mics, decim, t.size)

    return draw


def _toward_device(p: np.ndarray) -> np.ndarray:
    d = -p.copy()
    d[2] = 0.0
    return d / max(np.linalg.norm(d), 1e-6)


def _seated(room: Room, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, SmoothNoise]:
    """(chest position, unit vector towards the device, breathing) for a person at the seat."""
    chest = room.seat + np.array([rng.normal(0, 0.15), rng.normal(0, 0.15), 0.0])
    breath = SmoothNoise(rng, 0.2, 0.33, n_tones=2)
    breath.amp *= rng.uniform(0.001, 0.003)  # radial chest displacement, metres RMS
    return chest, _toward_device(chest), breath


def _body_still(chest, fwd, breath, t) -> tuple[list[np.ndarray], list[float]]:
    torso = np.repeat(chest[None], t.size, 0) + breath(t)[:, None] * fwd
    return [torso], [BODY_GAIN["torso"]]


# ---------------------------------------------------------------- presence, major


def walk_in(t0, dur, rng, room):
    stop = room.seat + np.array([rng.normal(0, 0.3), rng.normal(0, 0.3), 0.1])
    path = Path.walk(t0, [room.door, stop], speed=rng.uniform(0.6, 1.4))
    gait, ph = rng.uniform(0.8, 1.0), rng.uniform(0, 2 * np.pi)
    t1 = path.t_end + 0.5
    return t1, _scatter(lambda t: walker(path, t, gait, ph), t0, t1)


def walk_out(t0, dur, rng, room):
    """Leaving: stand up from the seat, then walk out through the door; the room is empty after t1."""
    start = room.seat + np.array([rng.normal(0, 0.3), rng.normal(0, 0.3), 0.1])
    rise = rng.uniform(0.4, 0.9)
    path = Path.walk(t0 + rise, [start, room.door], speed=rng.uniform(0.6, 1.4))
    gait, ph = rng.uniform(0.8, 1.0), rng.uniform(0, 2 * np.pi)
    t1 = path.t_end + 0.3  # through the doorway: the echo fades as the body leaves the room
    return t1, _scatter(lambda t: walker(path, t, gait, ph), t0, t1)


def walk_through(t0, dur, rng, room):
    z = room.door[2]
    a = room.door
    b = room.random_point(rng, z)
    b[1] = room.lo[1] + 0.1 if a[1] > 0 else room.hi[1] - 0.1
    mid = room.random_point(rng, z)
    path = Path.walk(t0, [a, mid, b], speed=rng.uniform(0.8, 1.5))
    gait, ph = rng.uniform(0.85, 1.05), rng.uniform(0, 2 * np.pi)
    return path.t_end, _scatter(lambda t: walker(path, t, gait, ph), t0, path.t_end)


def pacing(t0, dur, rng, room):
    z = room.door[2]
    a, b = room.random_point(rng, z), room.random_point(rng, z)
    n_legs = max(2, int(dur * 0.8 / max(np.linalg.norm(b - a), 0.5)))
    pts = [a if i % 2 == 0 else b for i in range(n_legs + 1)]
    path = Path.walk(t0, pts, speed=rng.uniform(0.5, 1.0), pause_s=0.6)
    gait, ph = rng.uniform(0.7, 0.9), rng.uniform(0, 2 * np.pi)
    return path.t_end, _scatter(lambda t: walker(path, t, gait, ph), t0, path.t_end)


def sit_stand(t0, dur, rng, room):
    chest, fwd, _ = _seated(room, rng)
    n = max(1, int(dur / 6))
    onsets = np.sort(t0 + 0.5 + rng.uniform(0, max(dur - 3, 0.5), n))
    rise = rng.uniform(0.5, 0.9)

    def pos_fn(t):
        # standing up: chest rises 0.45 m and leans forward then back; alternate sit/stand
        level = np.zeros_like(t)
        for i, on in enumerate(onsets):
            bump = pulse_train(t, np.array([on]), rise, 1e9)
            level += bump if i % 2 == 0 else -bump
        lean = pulse_train(t, onsets, rise * 0.6, 0.1)
        torso = chest + level[:, None] * np.array([0, 0, 0.45]) + (0.25 * lean)[:, None] * fwd
        thighs = chest + np.array([0, 0, -0.35]) + (0.3 * level)[:, None] * np.array([0, 0, 0.3])
        arms = torso + 0.2 * np.array([fwd[1], -fwd[0], 0]) - np.array([0, 0, 0.15])
        return np.stack([torso, thighs, arms]), np.array([0.12, 0.05, 0.03])

    t1 = t0 + max(dur, onsets[-1] - t0 + 3.0)
    return t1, _scatter(pos_fn, t0, t1)


# ---------------------------------------------------------------- presence, minor


def _typing_keys(t0: float, dur: float, rng: np.random.Generator) -> np.ndarray:
    """Key-press times of one hand: bursts of 3–20 s at 2–4 keys/s, pauses of 3–60 s (reading, thinking)."""
    keys, t = [], t0 + rng.uniform(0, 3)
    while t < t0 + dur:
        burst = rng.uniform(3, 20)
        keys.append(t + np.sort(rng.uniform(0, burst, int(burst * rng.uniform(2, 4)))))
        t += burst + rng.uniform(3, 60)
    return np.clip(np.concatenate(keys), t0, t0 + dur) if keys else np.zeros(0)


def typing(t0, dur, rng, room):
    chest, fwd, breath = _seated(room, rng)
    hands = chest + 0.35 * fwd - np.array([0, 0, 0.3])
    side = np.array([fwd[1], -fwd[0], 0.0])
    keys = [_typing_keys(t0, dur, rng) for _ in range(2)]

    wander = [SmoothNoise(rng, 0.5, 2.5, n_tones=4) for _ in range(2)]

    def pos_fn(t):
        (torso,), _ = _body_still(chest, fwd, breath, t)
        parts = [torso]
        for i, s in enumerate((1.0, -1.0)):
            press = pulse_train(t, keys[i], 0.03, 0.02)
            # the hand moves over the keyboard while typing (≈1.5 cm), fingers dip ≈8 mm per key
            active = np.clip(pulse_train(t, keys[i], 0.3, 0.4), 0, 1)
            drift = (0.015 * active * wander[i](t))[:, None] * (side + 0.5 * fwd)
            parts.append(hands + 0.12 * s * side + drift - (0.008 * press)[:, None] * np.array([0, 0, 1.0]))
        return np.stack(parts), np.array([0.12, 0.02, 0.02])

    return t0 + dur, _scatter(pos_fn, t0, t0 + dur)


def page_turn(t0, dur, rng, room):
    chest, fwd, breath = _seated(room, rng)
    turns = np.sort(t0 + rng.uniform(0, dur, max(1, int(dur / rng.uniform(20, 120)))))
    side = np.array([fwd[1], -fwd[0], 0.0])
    book = chest + 0.3 * fwd - np.array([0, 0, 0.2])

    def pos_fn(t):
        (torso,), _ = _body_still(chest, fwd, breath, t)
        sweep = pulse_train(t, turns, 0.4, 0.05)
        hand = book + (0.25 * sweep)[:, None] * side + (0.05 * sweep)[:, None] * np.array([0, 0, 1.0])
        return np.stack([torso, hand]), np.array([0.12, 0.03])

    return t0 + dur, _scatter(pos_fn, t0, t0 + dur)


def reach(t0, dur, rng, room):
    chest, fwd, breath = _seated(room, rng)
    reaches = np.sort(t0 + rng.uniform(0, max(dur - 2, 0.5), max(1, int(dur / 8))))
    target = rng.uniform(0.3, 0.5) * (fwd + 0.5 * rng.normal(size=3) * np.array([1, 1, 0]))

    def pos_fn(t):
        (torso,), _ = _body_still(chest, fwd, breath, t)
        ext = pulse_train(t, reaches, 0.6, 1.0)
        arm = chest - np.array([0, 0, 0.1]) + ext[:, None] * target
        return np.stack([torso, arm]), np.array([0.12, 0.04])

    return t0 + dur, _scatter(pos_fn, t0, t0 + dur)


def hand_gesture(t0, dur, rng, room):
    spot = room.random_point(rng, 1.1 - 0.9)
    spot *= min(1.0, 1.8 / max(np.linalg.norm(spot), 1e-6))
    fwd = _toward_device(spot)
    side = np.array([fwd[1], -fwd[0], 0.0])
    f_wave = rng.uniform(1.5, 3.0)
    bursts = np.sort(t0 + rng.uniform(0, max(dur - 3, 0.5), max(1, int(dur / 10))))

    def pos_fn(t):
        on = pulse_train(t, bursts, 0.3, rng_hold)
        wave = on * np.sin(2 * np.pi * f_wave * t)
        hand = spot + 0.3 * fwd + (0.12 * wave)[:, None] * side + (0.04 * wave)[:, None] * fwd
        torso = np.repeat(spot[None], t.size, 0)
        return np.stack([torso, hand]), np.array([0.12, 0.03])

    rng_hold = rng.uniform(1.5, 3.5)
    return t0 + dur, _scatter(pos_fn, t0, t0 + dur)


def shift_in_chair(t0, dur, rng, room):
    chest, fwd, breath = _seated(room, rng)
    shifts = np.sort(t0 + rng.uniform(0, max(dur - 2, 0.5), max(1, int(dur / 10))))
    direction = rng.normal(size=3) * np.array([1, 1, 0.3])
    direction *= rng.uniform(0.05, 0.12) / np.linalg.norm(direction)

    def pos_fn(t):
        (torso,), _ = _body_still(chest, fwd, breath, t)
        # alternate: shift there, later shift back
        s = pulse_train(t, shifts, rng_rise, 2.0)
        torso = torso + s[:, None] * direction
        hips = torso - np.array([0, 0, 0.35])
        return np.stack([torso, hips]), np.array([0.12, 0.06])

    rng_rise = rng.uniform(0.4, 0.8)
    return t0 + dur, _scatter(pos_fn, t0, t0 + dur)


def still(t0, dur, rng, room):
    """Someone sitting or lying still (reading, watching TV, asleep): breathing and, every few
    minutes, a small settling of the body (2-5 cm over about a second)."""
    chest, fwd, breath = _seated(room, rng)
    n_shifts = rng.poisson(max(dur, 1.0) / 240.0)
    shifts = np.sort(t0 + rng.uniform(0, max(dur - 2, 0.5), n_shifts))
    direction = rng.normal(size=3) * np.array([1, 1, 0.3])
    direction *= rng.uniform(0.02, 0.05) / np.linalg.norm(direction)

    def pos_fn(t):
        (torso,), _ = _body_still(chest, fwd, breath, t)
        torso = torso + pulse_train(t, shifts, 0.8, 1e9)[:, None] * direction
        return np.stack([torso]), np.array([BODY_GAIN["torso"]])

    return t0 + dur, _scatter(pos_fn, t0, t0 + dur)


# ---------------------------------------------------------------- nuisances (no presence)


def _rotor(hub, axis_a, axis_b, n_blades, rev_hz, radii, gain, flash_dir):
    """Blade points rotating in the plane (axis_a, axis_b) about hub; specular flash toward flash_dir."""

    def pos_fn(t):
        parts, gains = [], []
        for b in range(n_blades):
            theta = 2 * np.pi * rev_hz * t + 2 * np.pi * b / n_blades
            radial = np.cos(theta)[:, None] * axis_a + np.sin(theta)[:, None] * axis_b
            # a blade is brightest when its face turns to the device: |cos| of the angle to flash_dir
            facing = np.abs(radial @ flash_dir)
            flash = 0.25 + 0.75 * (1 - facing) ** 4
            for r in radii:
                parts.append(hub + r * radial)
                gains.append(gain * flash)
        return np.stack(parts), np.stack(gains)

    return pos_fn


def ceiling_fan(t0, dur, rng, room):
    hub = room.random_point(rng, room.hi[2] - 0.45, margin=1.0)
    los = -hub / np.linalg.norm(hub)
    n_blades = int(rng.integers(3, 6))
    rev = rng.uniform(0.7, 2.2)
    pos_fn = _rotor(hub, np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), n_blades, rev, (0.45,), 0.04, los)
    return t0 + dur, _scatter(pos_fn, t0, t0 + dur), {"blade_pass_hz": n_blades * rev, "rev_hz": rev}


def pedestal_fan(t0, dur, rng, room):
    base = room.random_point(rng, 1.0 - 0.9 + rng.uniform(-0.2, 0.2), margin=0.6)
    n_blades = int(rng.integers(3, 6))
    rev = rng.uniform(5.0, 10.0)
    yaw0 = np.arctan2(-base[1], -base[0])
    osc_hz, osc_amp = rng.uniform(0.04, 0.1), np.deg2rad(rng.uniform(0, 45))

    def pos_fn(t):
        yaw = yaw0 + osc_amp * np.sin(2 * np.pi * osc_hz * t)
        # oscillation is slow: use the chunk-mean yaw for the rotor plane, move the hub with the yaw
        y = float(np.mean(yaw))
        facing = np.array([np.cos(y), np.sin(y), 0.0])
        a, b = np.array([-facing[1], facing[0], 0.0]), np.array([0.0, 0.0, 1.0])
        rotor = _rotor(base, a, b, n_blades, rev, (0.1,), 0.035, facing)
        pos, g = rotor(t)
        housing = base + 0.05 * np.stack([np.cos(yaw), np.sin(yaw), 0 * yaw], axis=1)
        return np.concatenate([pos, housing[None]]), np.concatenate([g, np.full((1, t.size), 0.03)])

    meta = {"blade_pass_hz": n_blades * rev, "rev_hz": rev}
    return t0 + dur, _scatter(pos_fn, t0, t0 + dur), meta


def curtain(t0, dur, rng, room):
    n_pts = 5
    offsets = np.stack(
        [np.zeros(n_pts), rng.uniform(-0.6, 0.6, n_pts), rng.uniform(-0.5, 0.6, n_pts)], axis=1
    )
    sway = [SmoothNoise(rng, 0.15, 0.8, n_tones=3) for _ in range(n_pts)]
    gust = SmoothNoise(rng, 0.01, 0.05, n_tones=2)
    amp = rng.uniform(0.02, 0.08)

    def pos_fn(t):
        g = 0.6 + 0.4 * gust(t)
        pts = [
            room.window + o + (amp * g * s(t))[:, None] * np.array([-1.0, 0, 0])
            for o, s in zip(offsets, sway, strict=True)
        ]
        return np.stack(pts), np.full(n_pts, 0.05)

    return t0 + dur, _scatter(pos_fn, t0, t0 + dur)


def hvac(t0, dur, rng, room):
    depth = rng.uniform(0.02, 0.2)  # rad of phase wander on the room paths (airflow changes c)
    drift = [SmoothNoise(rng, 0.05, 3.0, n_tones=6) for _ in range(16)]
    decim = 8

    def draw(t, ctx):
        tc = coarse_times(t, decim, ctx.ac.fs)
        env = fade(tc, t0, t1, ramp_s=3.0)
        out = np.zeros((ctx.mics.size, t.size), dtype=np.complex64)
        for k, refl in enumerate(ctx.reflections):
            phi = upsample(depth * env * drift[k % len(drift)](tc), decim, t.size)
            out += refl[:, None].astype(np.complex64) * (expj_cycles(phi / (2 * np.pi)) - 1)[None]
        phi_d = upsample(0.05 * depth * env * drift[-1](tc), decim, t.size)
        out += ctx.direct[:, None].astype(np.complex64) * (expj_cycles(phi_d / (2 * np.pi)) - 1)[None]
        return out

    t1 = t0 + dur
    return t1, draw


def pet(t0, dur, rng, room):
    z = room.lo[2] + rng.uniform(0.2, 0.4)
    pts = [room.random_point(rng, z) for _ in range(max(2, int(dur / 6)))]
    path = Path.walk(t0, pts, speed=rng.uniform(0.3, 1.2), pause_s=rng.uniform(0.5, 4.0))
    gait = rng.uniform(1.8, 3.0)

    def pos_fn(t):
        body = path.position(t)
        vel = path.velocity(t)
        sw = np.sin(2 * np.pi * gait * t)[:, None]
        legs = [body - np.array([0, 0, 0.15]) + s * 0.08 * sw * vel for s in (1.0, -1.0)]
        return np.stack([body, *legs]), np.array([0.04, 0.012, 0.012])

    t1 = min(t0 + dur, path.t_end) if path.t_end > t0 + 1 else t0 + dur
    return t1, _scatter(pos_fn, t0, t1)


def robot_vacuum(t0, dur, rng, room):
    z = room.lo[2] + 0.05
    pts = [room.random_point(rng, z, margin=0.2) for _ in range(max(2, int(dur / 8)))]
    path = Path.walk(t0, pts, speed=rng.uniform(0.22, 0.35), pause_s=1.0)
    brush_hz = rng.uniform(1.5, 3.0)

    def pos_fn(t):
        body = path.position(t)
        th = 2 * np.pi * brush_hz * t
        brush = body + 0.17 * np.stack([np.cos(th), np.sin(th), 0 * th], axis=1)
        return np.stack([body, brush]), np.array([0.04, 0.006])

    t1 = min(t0 + dur, path.t_end)
    return t1, _scatter(pos_fn, t0, t1)


def other_device(t0, dur, rng, room):
    offset_hz = rng.choice([-1.0, 1.0]) * rng.uniform(30.0, 850.0)
    level = 10 ** (rng.uniform(-100.0, -75.0) / 20)
    where = room.random_point(rng, rng.uniform(-0.5, 1.0))
    pulsed = rng.random() < 0.5
    period, duty = rng.uniform(0.1, 0.6), rng.uniform(0.2, 0.6)
    wobble = SmoothNoise(rng, 0.01, 0.1, n_tones=2)

    def draw(t, ctx):
        cycles = offset_hz * t + 2.0 * wobble(t) / (2 * np.pi)  # slow drift of a few Hz
        env = fade(t, t0, t1, ramp_s=0.05)
        if pulsed:
            env = env * fade(np.mod(t, period), 0.0, duty * period, ramp_s=0.005)
        sig = (level * env).astype(np.float32) * expj_cycles(cycles)
        return steering(where, ctx.ac.f0 + offset_hz, ctx.ac, ctx.mics)[:, None].astype(np.complex64) * sig

    t1 = t0 + dur
    return t1, draw


def pest_repeller(t0, dur, rng, room):
    f_lo = rng.uniform(25000.0, 45000.0)
    span = rng.uniform(3000.0, 20000.0)
    period = rng.uniform(0.3, 2.0)
    level = 10 ** (rng.uniform(-92.0, -65.0) / 20)
    where = room.random_point(rng, room.lo[2] + 0.3)

    def draw(t, ctx):
        # instantaneous frequency f_lo + span·frac(t/T); its exact integral keeps phase continuous
        n_per, frac = np.divmod(t / period, 1.0)
        f_inst = f_lo + span * frac
        cycles = (f_lo - ctx.ac.f0) * t + span * period * (n_per / 2 + frac**2 / 2)
        f_bb = f_inst - ctx.ac.f0
        in_band = np.clip((0.45 * ctx.ac.fs - np.abs(f_bb)) / (0.05 * ctx.ac.fs), 0, 1)
        env = (level * in_band * fade(t, t0, t1, ramp_s=0.05)).astype(np.float32)
        sig = env * expj_cycles(np.mod(cycles, 1.0))
        return steering(where, ctx.ac.f0, ctx.ac, ctx.mics)[:, None].astype(np.complex64) * sig

    t1 = t0 + dur
    return t1, draw


def clatter(t0, dur, rng, room):
    n_hits = int(rng.integers(1, 5))
    hits = np.sort(t0 + rng.uniform(0, max(dur - 0.3, 0.1), n_hits))
    taus = rng.uniform(0.005, 0.04, n_hits)
    levels = 10 ** (rng.uniform(-72.0, -45.0, n_hits) / 20)
    seeds = rng.integers(0, 2**31, n_hits)
    where = room.random_point(rng, rng.uniform(-0.9, 0.3))

    def draw(t, ctx):
        fs = ctx.ac.fs
        sig = np.zeros(t.size, dtype=np.complex64)
        for t_hit, tau, lev, sd in zip(hits, taus, levels, seeds, strict=True):
            n_burst = int(8 * tau * fs) + 1
            i_hit = int(np.ceil((t_hit - t[0]) * fs))
            lo, hi = max(i_hit, 0), min(i_hit + n_burst, t.size)
            if hi <= lo:
                continue
            g = np.random.default_rng(int(sd))  # same burst whichever chunk renders it
            burst = (g.standard_normal(n_burst) + 1j * g.standard_normal(n_burst)) / np.sqrt(2)
            burst *= lev * np.exp(-np.arange(n_burst) / (tau * fs))
            sig[lo:hi] += burst[lo - i_hit : hi - i_hit].astype(np.complex64)
        return steering(where, ctx.ac.f0, ctx.ac, ctx.mics)[:, None].astype(np.complex64) * sig[None]

    t1 = t0 + dur
    return t1, draw


@dataclass(frozen=True)
class BassLine:
    """Normalised bass drive b(t) in [-1, 1]: a kick drum on every beat plus a bass line, one note per
    two beats. Both restart on the beat, so b is a sequence of beat-long waveforms, one per note."""

    t0: float  # absolute s of the first beat
    beat_s: float
    kick_hz: float
    kick_tau_s: float
    notes_hz: np.ndarray  # [512] the note of beats 2i and 2i + 1 (cycled)

    @classmethod
    def draw(cls, rng: np.random.Generator, t0: float) -> BassLine:
        beat = 60.0 / rng.uniform(80.0, 135.0)
        f_kick, tau = rng.uniform(45.0, 65.0), rng.uniform(0.05, 0.12)
        notes = rng.choice([41.2, 43.65, 49.0, 55.0, 61.7, 65.4, 73.4, 82.4, 98.0, 110.0], 512)
        return cls(float(t0), float(beat), float(f_kick), float(tau), notes)

    def beats(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(beat index k [n], seconds since that beat started [n]) at absolute times t."""
        k = np.floor((t - self.t0) / self.beat_s)
        return k, t - self.t0 - k * self.beat_s

    def note_index(self, k: np.ndarray) -> np.ndarray:
        return (np.asarray(k) // 2).astype(np.int64) % self.notes_hz.size

    def wave(self, since: np.ndarray, f_note: np.ndarray | float) -> np.ndarray:
        kick = np.exp(-since / self.kick_tau_s) * np.sin(2 * np.pi * self.kick_hz * since)
        return 0.6 * kick + 0.4 * np.sin(2 * np.pi * f_note * since)

    def __call__(self, t: np.ndarray) -> np.ndarray:
        k, since = self.beats(t)
        return self.wave(since, self.notes_hz[self.note_index(k)])


def bass_waveform(rng: np.random.Generator, t0: float) -> BassLine:
    """Normalised bass drive b(t) in [-1, 1]: kick drum on the beat plus a bass line."""
    return BassLine.draw(rng, t0)


MBDP_WARMUP_BEATS = 2  # beats of a note the MBDP runs before the beat whose output is kept
MBDP_TABLE_DECIMATION = 4  # kept beats are stored at the MBDP rate / this (12 kHz at 48 kHz)


class MbdpBass:
    """The MBDP's output y(t) for a bass line played at digital level `level` (peak re full scale).

    Runs the device's streaming runtime.mbdp.MultibandProcessor at its own rate (48 kHz), once per event
    and distinct note, not per capture sample: the bass is a sequence of beat-long waveforms, one per
    note, so for every note the MBDP processes MBDP_WARMUP_BEATS beats of it and then the beat that is
    kept, whose output (latency removed) stands for every beat of that note. What this leaves out: the
    compressor's state carried over a note change (its release, 0.3 s on the sensing presets, is shorter
    than the warm-up) and the fade of the event's edges (applied to the output, not the input). The
    table is built at the first draw (events never rendered cost nothing) and is a pure function of
    the bass line, the level and the tuning, so renders stay deterministic.
    """

    def __init__(self, bass: BassLine, level: float, cfg: MbdpConfig, t1: float) -> None:
        self.bass, self.level, self.cfg, self.t1 = bass, float(level), cfg, float(t1)
        self._table: np.ndarray | None = None  # [n_notes, n_tab] float64 output per distinct note
        self._row: np.ndarray | None = None  # [512] table row of every entry of bass.notes_hz

    def _build(self) -> None:
        bass, fs = self.bass, float(self.cfg.fs_hz)
        n_beats = int(np.ceil((self.t1 - bass.t0) / bass.beat_s)) + 1
        used = np.unique(bass.note_index(np.arange(n_beats)))  # entries of notes_hz the event plays
        freqs, row_of = np.unique(bass.notes_hz[used], return_inverse=True)
        n_beat = round(bass.beat_s * fs)
        since = np.arange(n_beat) / fs
        per = MBDP_WARMUP_BEATS + 1
        ref = np.concatenate([np.tile(self.level * bass.wave(since, f), per) for f in freqs])
        y = MultibandProcessor(self.cfg).process_aligned(ref)
        kept = y.reshape(freqs.size, per, n_beat)[:, -1]  # [n_notes, n_beat]
        self._table = np.ascontiguousarray(kept[:, ::MBDP_TABLE_DECIMATION])
        self._row = np.zeros(bass.notes_hz.size, dtype=np.int64)
        self._row[used] = row_of
        self._table_hz = fs / MBDP_TABLE_DECIMATION

    def __call__(self, t: np.ndarray) -> np.ndarray:
        if self._table is None:
            self._build()
        k, since = self.bass.beats(t)
        n_tab = self._table.shape[1]
        pos = np.clip(since * self._table_hz, 0.0, n_tab - 1.0)
        i = np.minimum(pos.astype(np.int64), n_tab - 2)
        frac = pos - i
        flat = self._table.reshape(-1)
        base = self._row[self.bass.note_index(k)] * n_tab + i
        return flat[base] * (1.0 - frac) + flat[base + 1] * frac


def music(t0, dur, rng, room, volume: float = 5.0, excursion_mm: float = 1.2, mbdp: MbdpConfig | None = None):
    """Playback bass moves the cone by X(t); the carrier gets phase β(t) = 2π·f0·X(t)/c.

    X(t) and the Bl(x) carrier gain come from runtime.loudspeaker (the model the MBDP bench uses).
    The modulated emission reaches the mics through the direct path, so the distortion is
    direct[m]·(Bl(X)/Bl0·exp(jβ) − 1): rank one across mics with exactly the direct path's signature.

    Volume v plays the bass at digital level (v/10)² of full scale, and full scale moves the cone by
    `excursion_mm` (small signal). Without `mbdp` that drives the loudspeaker as it is (raw playback);
    with the device's MBDP tuning (the sensing-mode preset: it plays while presence sensing runs) the
    bass goes through runtime.mbdp first (MbdpBass), so the excursion, and the distortion in the
    Doppler band, follow the MBDP's output.
    """
    x_peak = excursion_mm * 1e-3 * (volume / 10.0) ** 2
    b = bass_waveform(rng, t0)
    speaker = LoudspeakerParams()
    t1 = t0 + dur
    processed = None if mbdp is None else MbdpBass(b, (volume / 10.0) ** 2, mbdp, t1)
    x_full_scale = excursion_mm * 1e-3

    def draw(t, ctx):
        # shared loudspeaker model: Kms(x)/Bl(x) shape the excursion, Bl(x) scales the carrier
        env = fade(t, t0, t1, ramp_s=0.5)
        x_lin = x_peak * b(t) * env if processed is None else x_full_scale * processed(t) * env
        x = quasi_static_excursion(x_lin, speaker)
        beta_cycles = carrier_phase_cycles(x, ctx.ac.f0, ctx.ac.c)
        gain = bl_ratio(x, speaker) * expj_cycles(np.mod(beta_cycles, 1.0))
        return ctx.direct[:, None].astype(np.complex64) * (gain - 1).astype(np.complex64)[None]

    return t1, draw, {"mbdp": mbdp is not None}


GENERATORS = {
    "walk_in": walk_in,
    "walk_out": walk_out,
    "walk_through": walk_through,
    "pacing": pacing,
    "sit_stand": sit_stand,
    "typing": typing,
    "page_turn": page_turn,
    "reach": reach,
    "hand_gesture": hand_gesture,
    "shift_in_chair": shift_in_chair,
    "still": still,
    "ceiling_fan": ceiling_fan,
    "pedestal_fan": pedestal_fan,
    "curtain": curtain,
    "hvac": hvac,
    "pet": pet,
    "robot_vacuum": robot_vacuum,
    "other_device": other_device,
    "pest_repeller": pest_repeller,
    "clatter": clatter,
    "music": music,
}


def make_event(
    event_type: str, t0: float, duration: float, rng: np.random.Generator, room: Room, **kw
) -> Event:
    """Draw one event of `event_type` starting at t0 (absolute s); its end may differ from t0+duration."""
    if event_type not in GENERATORS:
        raise ValueError(f"unknown event type {event_type!r}")
    t1, draw, *meta = GENERATORS[event_type](t0, duration, rng, room, **kw)
    return Event(
        event_type, float(t0), float(t1), draw, float(kw.get("volume", 0.0)), meta[0] if meta else {}
    )
